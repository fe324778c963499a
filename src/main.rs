//! Command line → configuration → engine. No logic lives here.

use clap::{Parser, Subcommand, ValueEnum};
use mailtap::config::{Limits, PortMap, PortMapping};
use mailtap::engine::EngineConfig;
use mailtap::replay::{self, ReplayConfig};
use mailtap::session::tls::TlsContext;
use mailtap::sink::log::SessionLog;
use mailtap::sink::metrics::Metrics;
use mailtap::sink::outputs::Outputs;
use mailtap::source::file;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

const EXIT_CODES: &str = "\
Exit status:
  0  every input was read to its end
  1  an input could not be read to its end (the report covers what was read) or an output
     could not be written
  2  bad usage or configuration (unknown option, bad --port, unreadable --trust-anchor)";

#[derive(Parser)]
#[command(name = "mailtap", version, about, after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Read pcap/pcapng files (or directories of them, or - for stdin) and report on the mail
    /// sessions in them.
    Replay(ReplayArgs),
    /// Capture live from a network interface until SIGINT/SIGTERM (needs the cargo feature
    /// `live`); sessions are logged and counted as they close.
    #[command(after_help = CAPTURE_EXIT_CODES)]
    Capture(CaptureArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Json,
}

#[derive(clap::Args)]
struct Common {
    /// Write every session as a JSON line to FILE (- for stdout).
    #[arg(long, value_name = "FILE|-", env = "MAILTAP_SESSIONS")]
    sessions: Option<String>,
    /// Map an extra TCP port to a protocol, or override a default (repeatable), e.g. 2525=smtp.
    #[arg(
        long = "port",
        value_name = "PORT=PROTOCOL",
        env = "MAILTAP_PORT",
        value_delimiter = ','
    )]
    ports: Vec<PortMapping>,
    /// Extra CA certificate(s) (PEM) trusted besides the Mozilla roots (repeatable).
    #[arg(
        long = "trust-anchor",
        value_name = "PEM",
        env = "MAILTAP_TRUST_ANCHOR",
        value_delimiter = ','
    )]
    trust_anchors: Vec<PathBuf>,
    /// Write the metrics in the text exposition format to FILE at the end (for
    /// node_exporter's textfile collector: written to FILE.tmp, then renamed).
    #[arg(
        long = "metrics-file",
        value_name = "FILE",
        env = "MAILTAP_METRICS_FILE"
    )]
    metrics_file: Option<PathBuf>,
    /// Worker threads (default: the number of cores).
    #[arg(long, value_name = "N", env = "MAILTAP_WORKERS", value_parser = clap::value_parser!(u16).range(1..=256))]
    workers: Option<u16>,
}

#[derive(clap::Args)]
struct ReplayArgs {
    /// Capture files, directories (walked in name order) or - for stdin.
    #[arg(required = true, value_name = "PCAP|DIR|-")]
    inputs: Vec<String>,
    /// Report format on stdout.
    #[arg(long, value_enum, default_value = "table", env = "MAILTAP_FORMAT")]
    format: Format,
    /// No progress bar, even on a terminal.
    #[arg(long, env = "MAILTAP_QUIET")]
    quiet: bool,
    #[command(flatten)]
    common: Common,
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Replay(args) => run_replay(args),
        Command::Capture(args) => run_capture(args),
    }
}

fn run_replay(args: ReplayArgs) -> ExitCode {
    let tls = match trust(&args.common.trust_anchors) {
        Ok(t) => t,
        Err(e) => return fail(2, &e),
    };
    let inputs = match file::expand(&args.inputs) {
        Ok(i) => i,
        Err(e) => return fail(2, &e.to_string()),
    };
    let log = match open_log(args.common.sessions.as_deref()) {
        Ok(l) => l,
        Err(e) => return fail(1, &e),
    };
    let metrics = match Metrics::new() {
        Ok(m) => Arc::new(m),
        Err(e) => return fail(1, &format!("metrics: {e}")),
    };
    let cfg = ReplayConfig {
        inputs,
        engine: EngineConfig {
            ports: PortMap::new(&args.common.ports),
            limits: Limits::default(),
            tls,
            workers: workers(args.common.workers),
        },
        progress: !args.quiet,
    };
    let mut outputs = replay::run(cfg, Outputs::new(log, Some(Arc::clone(&metrics))));
    let flushed = outputs.log.as_mut().map_or(Ok(()), SessionLog::flush);
    if let Some(e) = outputs.log_error.take().or(flushed.err()) {
        return fail(1, &format!("writing the session log: {e}"));
    }
    if let Some(path) = &args.common.metrics_file {
        if let Err(e) = write_atomically(path, metrics.render().as_bytes()) {
            return fail(1, &format!("--metrics-file {}: {e}", path.display()));
        }
    }
    // The report goes to stdout, unless the session log already does.
    let to_stdout = args.common.sessions.as_deref() != Some("-");
    let mut out: Box<dyn Write> = if to_stdout {
        Box::new(io::stdout().lock())
    } else {
        Box::new(io::stderr().lock())
    };
    let report = &outputs.report;
    let written = match args.format {
        Format::Table => report.write_table(&mut out),
        Format::Json => report.write_json(&mut out),
    };
    for e in report.files.iter().filter_map(|f| f.error.as_ref()) {
        eprintln!("mailtap: {e}");
    }
    let failed = report.files.iter().any(|f| f.error.is_some());
    match written.and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => fail(1, &e.to_string()),
        _ if failed => ExitCode::from(1),
        _ => ExitCode::SUCCESS,
    }
}

const CAPTURE_EXIT_CODES: &str = "\
Exit status:
  0  stopped by SIGINT/SIGTERM; every open session was closed into the outputs
  1  the capture could not be opened or failed while running, or an output could not be
     written (what was captured until then is in the outputs)
  2  bad usage or configuration (bad --port or --filter, unknown --user, a build without
     the `live` feature)";

#[derive(clap::Args)]
struct CaptureArgs {
    /// The interface to capture on (`any`: all of them, without promiscuous mode).
    #[arg(short = 'i', long, value_name = "IFACE", env = "MAILTAP_INTERFACE")]
    interface: String,
    /// Do not put the interface into promiscuous mode (see only traffic to and from this host).
    #[arg(long, env = "MAILTAP_NO_PROMISCUOUS")]
    no_promiscuous: bool,
    /// Bytes kept of each frame.
    #[arg(long, value_name = "BYTES", default_value_t = 262_144, env = "MAILTAP_SNAPLEN",
          value_parser = clap::value_parser!(u32).range(96..=262_144))]
    snaplen: u32,
    /// The kernel's capture buffer: what absorbs bursts while mailtap is busy.
    #[arg(long, value_name = "BYTES", default_value_t = 32 << 20, env = "MAILTAP_BUFFER_SIZE",
          value_parser = clap::value_parser!(u32).range(65_536..=(1 << 31)))]
    buffer_size: u32,
    /// A BPF filter instead of the one built from the port map (TCP on the mail ports, plain
    /// and VLAN-tagged). Only TCP on mapped ports is analysed whatever it lets through.
    #[arg(long, value_name = "EXPR", env = "MAILTAP_FILTER")]
    filter: Option<String>,
    /// Give up root for this user once the capture is open (setgroups, setgid, setuid).
    #[arg(long, value_name = "NAME", env = "MAILTAP_USER")]
    user: Option<String>,
    #[command(flatten)]
    common: Common,
}

#[cfg(not(feature = "live"))]
fn run_capture(_: CaptureArgs) -> ExitCode {
    fail(
        2,
        "this mailtap was built without live capture. Build it with \
         `cargo build --release --features live` (needs libpcap-dev, e.g. \
         `apt-get install libpcap-dev`), or capture with tcpdump and use \
         `tcpdump -w - ... | mailtap replay -`",
    )
}

#[cfg(feature = "live")]
fn run_capture(args: CaptureArgs) -> ExitCode {
    use mailtap::capture::{self, LiveRun};
    use mailtap::source::live::{FilterSpec, LiveOptions};
    use std::time::Duration;

    let tls = match trust(&args.common.trust_anchors) {
        Ok(t) => t,
        Err(e) => return fail(2, &e),
    };
    let log = match open_live_log(args.common.sessions.as_deref()) {
        Ok(l) => l,
        Err(e) => return fail(1, &e),
    };
    let metrics = match Metrics::new() {
        Ok(m) => Arc::new(m),
        Err(e) => return fail(1, &format!("metrics: {e}")),
    };
    let ports = PortMap::new(&args.common.ports);
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
            limits: Limits::default(),
            tls,
            workers: workers(args.common.workers),
        },
        user: args.user,
        // The HTTP endpoint (/metrics) is bound here: after the capture opened, before root
        // is given up.
        on_capture_open: None,
    };
    let outcome = match capture::run_live(cfg, Outputs::new(log, Some(Arc::clone(&metrics)))) {
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

fn workers(n: Option<u16>) -> usize {
    n.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        usize::from,
    )
}

/// Write to `path.tmp`, then rename: a reader (the textfile collector) never sees half a file.
fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

fn trust(paths: &[PathBuf]) -> Result<Arc<TlsContext>, String> {
    let pems = paths
        .iter()
        .map(|p| std::fs::read(p).map_err(|e| format!("--trust-anchor {}: {e}", p.display())))
        .collect::<Result<Vec<_>, _>>()?;
    TlsContext::new(&pems)
        .map(Arc::new)
        .map_err(|e| format!("--trust-anchor: {e}"))
}

fn open_log(target: Option<&str>) -> Result<Option<SessionLog>, String> {
    let out: Box<dyn Write + Send> = match target {
        None => return Ok(None),
        Some("-") => Box::new(BufWriter::new(io::stdout())),
        Some(path) => Box::new(BufWriter::new(create(path)?)),
    };
    Ok(Some(SessionLog::new(out)))
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

fn create(path: &str) -> Result<std::fs::File, String> {
    std::fs::File::create(path).map_err(|e| format!("--sessions {path}: {e}"))
}

fn fail(code: u8, msg: &str) -> ExitCode {
    eprintln!("mailtap: {msg}");
    ExitCode::from(code)
}
