//! Command line → configuration → engine. No logic lives here.

use clap::builder::TypedValueParser as _;
use clap::{Parser, Subcommand, ValueEnum};
use mailtap::anonymize::Anonymizer;
use mailtap::config::{Limits, PortMap, PortMapping};
use mailtap::engine::EngineConfig;
use mailtap::replay::{self, Passes, ReplayConfig};
use mailtap::session::tls::TlsContext;
use mailtap::signals::stop_on_signals;
use mailtap::sink::http::{self, HttpConfig, HttpError, Server};
use mailtap::sink::inventory::{self, Inventory};
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
  0  every input was read to its end (with --loop 0: in every pass until SIGINT/SIGTERM)
  1  an input could not be read to its end (the report covers what was read) or an output
     could not be written
  2  bad usage or configuration (unknown option, bad --port, unreadable --trust-anchor,
     bad --web.config.file or --web.listen-address)";

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
    /// Serve the metrics and the server inventory over HTTP on ADDR (`:PORT` is every
    /// interface). replay serves only when this is given; capture always serves (default
    /// :10587).
    #[arg(
        long = "web.listen-address",
        value_name = "ADDR",
        env = "MAILTAP_WEB_LISTEN_ADDRESS"
    )]
    web_listen_address: Option<String>,
    /// Path under which the metrics are served.
    #[arg(
        long = "web.telemetry-path",
        value_name = "PATH",
        default_value = http::DEFAULT_TELEMETRY_PATH,
        env = "MAILTAP_WEB_TELEMETRY_PATH"
    )]
    web_telemetry_path: String,
    /// TLS and basic authentication for the HTTP server (Prometheus exporter-toolkit format).
    #[arg(
        long = "web.config.file",
        value_name = "FILE",
        env = "MAILTAP_WEB_CONFIG_FILE"
    )]
    web_config_file: Option<PathBuf>,
    /// Servers kept in the inventory (`/servers`); beyond that the least recently seen go.
    #[arg(
        long = "inventory-size",
        value_name = "N",
        default_value_t = inventory::DEFAULT_CAPACITY,
        env = "MAILTAP_INVENTORY_SIZE",
        value_parser = clap::value_parser!(u32).range(1..).map(|n| n as usize)
    )]
    inventory_size: usize,
    /// Connections tracked at once, across all workers; beyond it the stalest is evicted.
    #[arg(long, value_name = "N", env = "MAILTAP_MAX_FLOWS", default_value = "1000000", value_parser = clap::value_parser!(u64).range(1..))]
    max_flows: u64,
    /// A connection silent this long (in packet time) is closed, e.g. 300s or 5m.
    #[arg(
        long,
        value_name = "DURATION",
        env = "MAILTAP_FLOW_TIMEOUT",
        default_value = "5m"
    )]
    flow_timeout: humantime::Duration,
    /// Pseudonymize client addresses in the session log with this key (keyed, prefix
    /// preserving; see `mailtap::anonymize`).
    #[arg(
        long,
        value_name = "KEY",
        env = "MAILTAP_ANONYMIZE",
        hide_env_values = true
    )]
    anonymize: Option<String>,
}

impl Common {
    fn limits(&self, workers: usize) -> Limits {
        Limits {
            max_flows: usize::try_from(self.max_flows).unwrap_or(usize::MAX),
            idle_timeout: *self.flow_timeout,
            ..Limits::default()
        }
        .per_worker(workers)
    }
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
    /// Keep serving --web.listen-address this long after the replay, so Prometheus can
    /// scrape the final numbers.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 0,
        env = "MAILTAP_LINGER"
    )]
    linger: u64,
    /// Read the inputs N times in a row, each pass as if it were the first (0: until
    /// SIGINT/SIGTERM, then report). Files only: stdin can be read once.
    #[arg(
        long = "loop",
        value_name = "N",
        default_value_t = 1,
        env = "MAILTAP_LOOP"
    )]
    passes: u64,
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
    if args.passes != 1 && inputs.contains(&file::Input::Stdin) {
        return fail(2, "--loop: stdin (-) can be read only once");
    }
    // A loop ends on SIGINT/SIGTERM with its report; a single pass keeps the default (the
    // signal ends the process), as it always did.
    let stop = if args.passes == 1 {
        None
    } else {
        match stop_on_signals() {
            Ok(s) => Some(s),
            Err(e) => return fail(1, &format!("cannot handle SIGINT/SIGTERM: {e}")),
        }
    };
    let anonymizer = args.common.anonymize.as_deref().map(Anonymizer::new);
    let log = match open_log(args.common.sessions.as_deref()) {
        Ok(l) => l.map(|l| l.anonymized(anonymizer)),
        Err(e) => return fail(1, &e),
    };
    let metrics = match Metrics::new() {
        Ok(m) => Arc::new(m),
        Err(e) => return fail(1, &format!("metrics: {e}")),
    };
    let inventory = Arc::new(Inventory::new(args.common.inventory_size));
    let server = match serve(&args.common, None, &metrics, &inventory) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let workers = workers(args.common.workers);
    let cfg = ReplayConfig {
        inputs,
        engine: EngineConfig {
            ports: PortMap::new(&args.common.ports),
            limits: args.common.limits(workers),
            tls,
            workers,
        },
        progress: !args.quiet,
        passes: Passes::from_loop(args.passes),
        stop,
    };
    let outputs = Outputs::new(log, Some(Arc::clone(&metrics))).with_inventory(inventory);
    let mut outputs = replay::run(cfg, outputs);
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
    let written = match args.format {
        Format::Table => outputs.write_table(&mut out),
        Format::Json => outputs.write_json(&mut out),
    };
    let report = &outputs.report;
    for e in report.files.iter().filter_map(|f| f.error.as_ref()) {
        eprintln!("mailtap: {e}");
    }
    let failed = report.files.iter().any(|f| f.error.is_some());
    let code = match written.and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => fail(1, &e.to_string()),
        _ if failed => ExitCode::from(1),
        _ => ExitCode::SUCCESS,
    };
    drop(out);
    if let Some(server) = server {
        if args.linger > 0 {
            eprintln!("mailtap: replay done; serving {} more seconds", args.linger);
            std::thread::sleep(std::time::Duration::from_secs(args.linger));
        }
        server.stop();
    }
    code
}

/// Start the HTTP server on `--web.listen-address`, or on `default` when the flag is absent
/// (`None`: then serve nothing). Says where on stderr.
fn serve(
    common: &Common,
    default: Option<&str>,
    metrics: &Arc<Metrics>,
    inventory: &Arc<Inventory>,
) -> Result<Option<Server>, ExitCode> {
    let Some(address) = common.web_listen_address.as_deref().or(default) else {
        return Ok(None);
    };
    let cfg = HttpConfig {
        listen_address: address.to_string(),
        telemetry_path: common.web_telemetry_path.clone(),
        web_config: common.web_config_file.clone(),
    };
    match Server::start(&cfg, Arc::clone(metrics), Arc::clone(inventory)) {
        Ok(s) => {
            eprintln!(
                "mailtap: listening on {} ({}, metrics at {})",
                s.local_addr(),
                s.scheme(),
                cfg.telemetry_path
            );
            Ok(Some(s))
        }
        Err(e @ HttpError::Config(_)) => Err(fail(2, &e.to_string())),
        Err(e) => Err(fail(1, &e.to_string())),
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
    let anonymizer = args.common.anonymize.as_deref().map(Anonymizer::new);
    let log = match open_live_log(args.common.sessions.as_deref()) {
        Ok(l) => l.map(|l| l.anonymized(anonymizer)),
        Err(e) => return fail(1, &e),
    };
    let metrics = match Metrics::new() {
        Ok(m) => Arc::new(m),
        Err(e) => return fail(1, &format!("metrics: {e}")),
    };
    let inventory = Arc::new(Inventory::new(args.common.inventory_size));
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
    let workers = workers(args.common.workers);
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
