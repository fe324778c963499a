//! `mailtap capture`: an interface in, sessions out as they close, until a signal.

use super::common::{fail, Common};
#[cfg(feature = "live")]
use super::common::{finish_outputs, trust, workers, Reader, Sinks};
use super::size;
use clap::builder::BoolishValueParser;
use clap::ArgAction;
#[cfg(feature = "live")]
use mailtap::config::PortMap;
#[cfg(feature = "live")]
use mailtap::engine::EngineConfig;
#[cfg(feature = "live")]
use mailtap::signals::Signals;
#[cfg(feature = "live")]
use mailtap::sink::http::{self, Server};
#[cfg(feature = "live")]
use mailtap::sink::outputs::Outputs;
use std::process::ExitCode;
#[cfg(feature = "live")]
use std::sync::Arc;

pub(crate) const CAPTURE_EXIT_CODES: &str = "\
Exit status:
  0  stopped by SIGINT/SIGTERM; every open session was closed into the outputs
  1  the capture could not be opened or failed while running, or an output could not be
     written (what was captured until then is in the outputs)
  2  bad usage or configuration (bad --port or --filter, unknown --user, a --metrics-file
     that cannot be written, a build without the `live` feature)";

#[derive(clap::Args)]
pub(crate) struct CaptureArgs {
    /// The interface to capture on (`any`: all of them, without promiscuous mode).
    #[arg(short = 'i', long, value_name = "IFACE", env = "MAILTAP_INTERFACE")]
    pub(crate) interface: String,
    /// Do not put the interface into promiscuous mode (see only traffic to and from this host).
    #[arg(long, env = "MAILTAP_NO_PROMISCUOUS", action = ArgAction::SetTrue,
          value_parser = BoolishValueParser::new())]
    pub(crate) no_promiscuous: bool,
    /// Bytes kept of each frame (units allowed: 64k, 256KiB).
    #[arg(long, value_name = "BYTES", default_value = "256KiB", env = "MAILTAP_SNAPLEN",
          value_parser = size::bytes(96, 262_144))]
    pub(crate) snaplen: u32,
    /// The kernel's capture buffer: what absorbs bursts while mailtap is busy (units allowed:
    /// 128MiB, 1G).
    #[arg(long, value_name = "BYTES", default_value = "32MiB", env = "MAILTAP_BUFFER_SIZE",
          value_parser = size::bytes(65_536, 1 << 31))]
    pub(crate) buffer_size: u32,
    /// A BPF filter instead of the one built from the port map (TCP on the mail ports, plain
    /// and VLAN-tagged). Only TCP on mapped ports is analysed whatever it lets through.
    #[arg(long, value_name = "EXPR", env = "MAILTAP_FILTER")]
    pub(crate) filter: Option<String>,
    /// Give up root for this user once the capture is open (setgroups, setgid, setuid).
    #[arg(long, value_name = "NAME", env = "MAILTAP_USER")]
    pub(crate) user: Option<String>,
    #[command(flatten)]
    pub(crate) common: Common,
}

#[cfg(not(feature = "live"))]
pub(crate) fn run(_: CaptureArgs) -> ExitCode {
    fail(
        2,
        "this mailtap was built without live capture. Build it with \
         `cargo build --release --features live` (needs libpcap-dev, e.g. \
         `apt-get install libpcap-dev`), or capture with tcpdump and use \
         `tcpdump -w - ... | mailtap replay -`",
    )
}

#[cfg(feature = "live")]
pub(crate) fn run(args: CaptureArgs) -> ExitCode {
    use mailtap::capture::{self, LiveRun};
    use mailtap::source::live::{FilterSpec, LiveOptions};
    use std::time::Duration;

    // First: from here on no signal ends the process before its outputs are written.
    let signals = match Signals::install() {
        Ok(s) => s,
        Err(e) => return fail(1, &format!("cannot handle signals: {e}")),
    };
    let tls = match trust(&args.common.trust_anchors) {
        Ok(t) => t,
        Err(e) => return fail(2, &e),
    };
    let Sinks {
        log,
        metrics,
        inventory,
        metrics_file,
        report,
    } = match args.common.sinks(&signals) {
        Ok(s) => s,
        Err(code) => return code,
    };
    // The server lives as long as the capture; the hook fills this once the capture is open.
    let server: Arc<std::sync::Mutex<Option<Server>>> = Arc::default();
    let bind = {
        let (server, metrics, inventory, report) = (
            Arc::clone(&server),
            Arc::clone(&metrics),
            Arc::clone(&inventory),
            Arc::clone(&report),
        );
        let address = args
            .common
            .web_listen_address
            .clone()
            .unwrap_or_else(|| http::DEFAULT_LISTEN_ADDRESS.to_string());
        let common = args.common.http_config(&address);
        move || -> Result<(), String> {
            let s =
                Server::start(&common, metrics, inventory, report).map_err(|e| e.to_string())?;
            eprintln!(
                "mailtap: listening on {} ({}, metrics at {})",
                s.local_addr(),
                s.scheme(),
                common.telemetry_path
            );
            *server
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(s);
            Ok(())
        }
    };
    if let Some(warning) = snaplen_warning(&args.interface, args.snaplen) {
        eprintln!("{warning}");
    }
    let ports = PortMap::new(&args.common.ports);
    let workers = workers(args.common.workers, Reader::OwnThread);
    let cfg = LiveRun {
        capture: LiveOptions {
            interface: args.interface,
            promiscuous: !args.no_promiscuous,
            snaplen: args.snaplen,
            buffer_size: args.buffer_size,
            read_timeout: Duration::from_millis(100),
            filter: args
                .filter
                .map_or_else(|| FilterSpec::Ports(ports.clone()), FilterSpec::Expr),
        },
        engine: EngineConfig {
            ports,
            limits: args.common.limits(workers),
            tls,
            workers,
        },
        user: args.user,
        // The HTTP endpoint (/metrics) is bound here: after the capture opened, before root
        // is given up (so a privileged port works).
        on_capture_open: Some(Box::new(bind)),
        metrics_file: metrics_file.clone(),
        stop: signals.stop_flag(),
    };
    let outputs = Outputs::new(log, Some(Arc::clone(&metrics)))
        .with_inventory(inventory)
        .with_report(report);
    // Rewritten from now on: the first rewrite, an interval from now, comes after the capture
    // has opened and `--user` has taken over (moments from now), who was checked to be able
    // to write it.
    let rewriting = args
        .common
        .rewrite_metrics_file(metrics_file.as_ref(), &metrics);
    let outcome = match capture::run_live(cfg, outputs) {
        Ok(o) => o,
        Err(e) => return fail(if is_usage(&e) { 2 } else { 1 }, &e.to_string()),
    };
    let mut code = ExitCode::SUCCESS;
    if let Err(e) = &outcome.result {
        code = fail(1, &e.to_string());
    }
    if !finish_outputs(&outcome.outputs, rewriting) {
        code = ExitCode::from(1);
    }
    code
}

/// Start-up failures that are the command line's fault: an unknown user, a bad filter, a
/// metrics file the user cannot write.
#[cfg(feature = "live")]
fn is_usage(e: &mailtap::capture::StartError) -> bool {
    use mailtap::capture::{PrivilegeError, StartError};
    use mailtap::source::live::LiveError;
    matches!(
        e,
        StartError::Privileges(PrivilegeError::NoSuchUser(_))
            | StartError::Privileges(PrivilegeError::NotWritable { .. })
            | StartError::Capture(LiveError::Filter { .. })
    )
}

/// Link headers mailtap reads before IP: Ethernet with two VLAN tags.
#[cfg(feature = "live")]
const LINK_HEADROOM: u32 = 14 + 2 * 4;

/// A warning when `snaplen` cuts frames the analysis needs whole: shorter than the
/// interface's MTU plus link headers (read from sysfs), or than a 64 KiB IP packet when the
/// MTU cannot be read. Cut bytes become gaps, and TLS handshakes, logins and messages in them
/// go uncounted or unknown.
#[cfg(feature = "live")]
fn snaplen_warning(interface: &str, snaplen: u32) -> Option<String> {
    let mtu = std::fs::read_to_string(format!("/sys/class/net/{interface}/mtu"))
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok());
    let need = mtu.map_or(65_535, |m| m.saturating_add(LINK_HEADROOM));
    (snaplen < need).then(|| {
        let why = match mtu {
            Some(m) => format!("{interface}'s MTU {m} plus {LINK_HEADROOM} bytes of link headers"),
            None => "a whole IP packet".to_string(),
        };
        format!(
            "mailtap: warning: --snaplen {snaplen} is less than {why} ({need}): cut frames \
             lose bytes the analysis needs, and the results from them are lower bounds"
        )
    })
}

#[cfg(all(test, feature = "live"))]
mod tests {
    use super::*;

    #[test]
    fn a_snaplen_below_the_mtu_is_warned_about() {
        // Loopback exists on every Linux machine; its MTU is read from sysfs.
        let mtu: u32 = std::fs::read_to_string("/sys/class/net/lo/mtu")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(65_536);
        assert!(snaplen_warning("lo", 96).is_some_and(|w| w.contains("--snaplen 96")));
        assert!(snaplen_warning("lo", mtu + LINK_HEADROOM).is_none());
        assert!(snaplen_warning("no-such-if0", 1600).is_some());
        assert!(snaplen_warning("no-such-if0", 262_144).is_none());
    }
}
