//! `mailtap capture`: an interface in, sessions out as they close, until a signal.

#[cfg(feature = "live")]
use super::common::{create, trust, workers, write_atomically, Reader, Sinks};
use super::common::{fail, Common};
#[cfg(feature = "live")]
use mailtap::config::PortMap;
#[cfg(feature = "live")]
use mailtap::engine::EngineConfig;
#[cfg(feature = "live")]
use mailtap::sink::http::{self, HttpConfig, Server};
#[cfg(feature = "live")]
use mailtap::sink::log::SessionLog;
#[cfg(feature = "live")]
use mailtap::sink::outputs::Outputs;
#[cfg(feature = "live")]
use std::io::{self, Write};
use std::process::ExitCode;
#[cfg(feature = "live")]
use std::sync::Arc;

pub(crate) const CAPTURE_EXIT_CODES: &str = "\
Exit status:
  0  stopped by SIGINT/SIGTERM; every open session was closed into the outputs
  1  the capture could not be opened or failed while running, or an output could not be
     written (what was captured until then is in the outputs)
  2  bad usage or configuration (bad --port or --filter, unknown --user, a build without
     the `live` feature)";

#[derive(clap::Args)]
pub(crate) struct CaptureArgs {
    /// The interface to capture on (`any`: all of them, without promiscuous mode).
    #[arg(short = 'i', long, value_name = "IFACE", env = "MAILTAP_INTERFACE")]
    pub(crate) interface: String,
    /// Do not put the interface into promiscuous mode (see only traffic to and from this host).
    #[arg(long, env = "MAILTAP_NO_PROMISCUOUS")]
    pub(crate) no_promiscuous: bool,
    /// Bytes kept of each frame.
    #[arg(long, value_name = "BYTES", default_value_t = 262_144, env = "MAILTAP_SNAPLEN",
          value_parser = clap::value_parser!(u32).range(96..=262_144))]
    pub(crate) snaplen: u32,
    /// The kernel's capture buffer: what absorbs bursts while mailtap is busy.
    #[arg(long, value_name = "BYTES", default_value_t = 32 << 20, env = "MAILTAP_BUFFER_SIZE",
          value_parser = clap::value_parser!(u32).range(65_536..=(1 << 31)))]
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

    let tls = match trust(&args.common.trust_anchors) {
        Ok(t) => t,
        Err(e) => return fail(2, &e),
    };
    let Sinks {
        log,
        metrics,
        inventory,
    } = match args.common.sinks(open_live_log) {
        Ok(s) => s,
        Err(code) => return code,
    };
    // The server lives as long as the capture; the hook fills this once the capture is open.
    let server: Arc<std::sync::Mutex<Option<Server>>> = Arc::default();
    let bind = {
        let (server, metrics, inventory) = (
            Arc::clone(&server),
            Arc::clone(&metrics),
            Arc::clone(&inventory),
        );
        let common = HttpConfig {
            listen_address: args
                .common
                .web_listen_address
                .clone()
                .unwrap_or_else(|| http::DEFAULT_LISTEN_ADDRESS.to_string()),
            telemetry_path: args.common.web_telemetry_path.clone(),
            web_config: args.common.web_config_file.clone(),
        };
        move || -> Result<(), String> {
            let s = Server::start(&common, metrics, inventory).map_err(|e| e.to_string())?;
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
    };
    let outputs = Outputs::new(log, Some(Arc::clone(&metrics))).with_inventory(inventory);
    let outcome = match capture::run_live(cfg, outputs) {
        Ok(o) => o,
        Err(e) => return fail(if is_usage(&e) { 2 } else { 1 }, &e.to_string()),
    };
    let mut outputs = outcome.outputs;
    let flushed = outputs.log.as_mut().map_or(Ok(()), SessionLog::flush);
    let mut code = ExitCode::SUCCESS;
    if let Err(e) = &outcome.result {
        code = fail(1, &e.to_string());
    }
    if let Some(e) = outputs.log_error.take().or(flushed.err()) {
        code = fail(1, &format!("writing the session log: {e}"));
    }
    if let Some(path) = &args.common.metrics_file {
        if let Err(e) = write_atomically(path, metrics.render().as_bytes()) {
            code = fail(1, &format!("--metrics-file {}: {e}", path.display()));
        }
    }
    code
}

/// Start-up failures that are the command line's fault: an unknown user, a bad filter.
#[cfg(feature = "live")]
fn is_usage(e: &mailtap::capture::StartError) -> bool {
    use mailtap::capture::{PrivilegeError, StartError};
    use mailtap::source::live::LiveError;
    matches!(
        e,
        StartError::Privileges(PrivilegeError::NoSuchUser(_))
            | StartError::Capture(LiveError::Filter { .. })
    )
}

/// The session log of a live run: each record is written when its session closes, so that
/// `tail -f` and log shippers see it then (one write per session, not per packet).
#[cfg(feature = "live")]
fn open_live_log(target: Option<&str>) -> Result<Option<SessionLog>, String> {
    let out: Box<dyn Write + Send> = match target {
        None => return Ok(None),
        Some("-") => Box::new(io::stdout()),
        Some(path) => Box::new(io::LineWriter::new(create(path)?)),
    };
    Ok(Some(SessionLog::new(out)))
}
