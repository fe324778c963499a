//! What `replay` and `capture` share: the options of both, and the outputs they open.

use clap::builder::TypedValueParser as _;
use mailtap::anonymize::Anonymizer;
use mailtap::config::{Limits, PortMapping};
use mailtap::session::tls::TlsContext;
use mailtap::sink::http::{self, HttpConfig, HttpError, Server};
use mailtap::sink::inventory::{self, Inventory};
use mailtap::sink::log::SessionLog;
use mailtap::sink::metrics::Metrics;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(clap::Args)]
pub(crate) struct Common {
    /// Write every session as a JSON line to FILE (- for stdout).
    #[arg(long, value_name = "FILE|-", env = "MAILTAP_SESSIONS")]
    pub(crate) sessions: Option<String>,
    /// Map an extra TCP port to a protocol, or override a default (repeatable), e.g. 2525=smtp.
    #[arg(
        long = "port",
        value_name = "PORT=PROTOCOL",
        env = "MAILTAP_PORT",
        value_delimiter = ','
    )]
    pub(crate) ports: Vec<PortMapping>,
    /// Extra CA certificate(s) (PEM) trusted besides the Mozilla roots (repeatable).
    #[arg(
        long = "trust-anchor",
        value_name = "PEM",
        env = "MAILTAP_TRUST_ANCHOR",
        value_delimiter = ','
    )]
    pub(crate) trust_anchors: Vec<PathBuf>,
    /// Write the metrics in the text exposition format to FILE at the end (for
    /// node_exporter's textfile collector: written to FILE.tmp, then renamed).
    #[arg(
        long = "metrics-file",
        value_name = "FILE",
        env = "MAILTAP_METRICS_FILE"
    )]
    pub(crate) metrics_file: Option<PathBuf>,
    /// Worker threads. replay: the workers take turns reading the file and share the decoding
    /// and the analysis, so N workers use N cores (default: the number of cores; 0 and 1 run
    /// everything on one thread). capture: the capture thread reads and decodes, and N workers
    /// analyse beside it (default: the number of cores minus one; 0 runs everything on the
    /// capture thread, the default on one core).
    #[arg(long, value_name = "N", env = "MAILTAP_WORKERS", value_parser = clap::value_parser!(u16).range(0..=256))]
    pub(crate) workers: Option<u16>,
    /// Serve the metrics and the server inventory over HTTP on ADDR (`:PORT` is every
    /// interface). replay serves only when this is given; capture always serves (default
    /// :10587).
    #[arg(
        long = "web.listen-address",
        value_name = "ADDR",
        env = "MAILTAP_WEB_LISTEN_ADDRESS"
    )]
    pub(crate) web_listen_address: Option<String>,
    /// Path under which the metrics are served.
    #[arg(
        long = "web.telemetry-path",
        value_name = "PATH",
        default_value = http::DEFAULT_TELEMETRY_PATH,
        env = "MAILTAP_WEB_TELEMETRY_PATH"
    )]
    pub(crate) web_telemetry_path: String,
    /// TLS and basic authentication for the HTTP server (Prometheus exporter-toolkit format).
    #[arg(
        long = "web.config.file",
        value_name = "FILE",
        env = "MAILTAP_WEB_CONFIG_FILE"
    )]
    pub(crate) web_config_file: Option<PathBuf>,
    /// Servers kept in the inventory (`/servers`); beyond that the least recently seen go.
    #[arg(
        long = "inventory-size",
        value_name = "N",
        default_value_t = inventory::DEFAULT_CAPACITY,
        env = "MAILTAP_INVENTORY_SIZE",
        value_parser = clap::value_parser!(u32).range(1..).map(|n| n as usize)
    )]
    pub(crate) inventory_size: usize,
    /// Connections tracked at once, across all workers; beyond it the stalest is evicted.
    #[arg(long, value_name = "N", env = "MAILTAP_MAX_FLOWS", default_value = "1000000", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) max_flows: u64,
    /// A connection silent this long (in packet time) is closed, e.g. 300s or 5m.
    #[arg(
        long,
        value_name = "DURATION",
        env = "MAILTAP_FLOW_TIMEOUT",
        default_value = "5m"
    )]
    pub(crate) flow_timeout: humantime::Duration,
    /// Pseudonymize client addresses in the session log with this key (keyed, prefix
    /// preserving; see `mailtap::anonymize`).
    #[arg(
        long,
        value_name = "KEY",
        env = "MAILTAP_ANONYMIZE",
        hide_env_values = true
    )]
    pub(crate) anonymize: Option<String>,
}

impl Common {
    pub(crate) fn limits(&self, workers: usize) -> Limits {
        Limits {
            max_flows: usize::try_from(self.max_flows).unwrap_or(usize::MAX),
            idle_timeout: *self.flow_timeout,
            ..Limits::default()
        }
        .per_worker(workers)
    }
}

/// What both commands record into: the session log (pseudonymized with `--anonymize`), the
/// metrics and the server inventory.
pub(crate) struct Sinks {
    pub(crate) log: Option<SessionLog>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) inventory: Arc<Inventory>,
}

impl Common {
    /// Open the sinks; `open_log` picks how the session log is buffered (per file, or per
    /// session for a live run). On failure, the exit code after saying why.
    pub(crate) fn sinks(
        &self,
        open_log: fn(Option<&str>) -> Result<Option<SessionLog>, String>,
    ) -> Result<Sinks, ExitCode> {
        let anonymizer = self.anonymize.as_deref().map(Anonymizer::new);
        let log = match open_log(self.sessions.as_deref()) {
            Ok(l) => l.map(|l| l.anonymized(anonymizer)),
            Err(e) => return Err(fail(1, &e)),
        };
        let metrics = match Metrics::new() {
            Ok(m) => Arc::new(m),
            Err(e) => return Err(fail(1, &format!("metrics: {e}"))),
        };
        Ok(Sinks {
            log,
            metrics,
            inventory: Arc::new(Inventory::new(self.inventory_size)),
        })
    }
}

/// Start the HTTP server on `--web.listen-address`, or on `default` when the flag is absent
/// (`None`: then serve nothing). Says where on stderr.
pub(crate) fn serve(
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

/// Who reads the packets, which decides how many workers make use of the cores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reader {
    /// replay: the workers take turns; one per core.
    Workers,
    /// capture: a thread of its own, which takes a core; one worker per other core (on one
    /// core: none, everything on that core's one thread).
    #[cfg_attr(not(feature = "live"), allow(dead_code))]
    OwnThread,
}

/// `--workers`, or by default as many as the cores allow beside the reader.
pub(crate) fn workers(n: Option<u16>, reader: Reader) -> usize {
    n.map_or_else(
        || {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            match reader {
                Reader::Workers => cores,
                Reader::OwnThread => cores - 1,
            }
        },
        usize::from,
    )
}

/// Write to `path.tmp`, then rename: a reader (the textfile collector) never sees half a file.
pub(crate) fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

pub(crate) fn trust(paths: &[PathBuf]) -> Result<Arc<TlsContext>, String> {
    let pems = paths
        .iter()
        .map(|p| std::fs::read(p).map_err(|e| format!("--trust-anchor {}: {e}", p.display())))
        .collect::<Result<Vec<_>, _>>()?;
    TlsContext::new(&pems)
        .map(Arc::new)
        .map_err(|e| format!("--trust-anchor: {e}"))
}

pub(crate) fn open_log(target: Option<&str>) -> Result<Option<SessionLog>, String> {
    let out: Box<dyn Write + Send> = match target {
        None => return Ok(None),
        Some("-") => Box::new(BufWriter::new(io::stdout())),
        Some(path) => Box::new(BufWriter::new(create(path)?)),
    };
    Ok(Some(SessionLog::new(out)))
}

pub(crate) fn create(path: &str) -> Result<std::fs::File, String> {
    std::fs::File::create(path).map_err(|e| format!("--sessions {path}: {e}"))
}

pub(crate) fn fail(code: u8, msg: &str) -> ExitCode {
    eprintln!("mailtap: {msg}");
    ExitCode::from(code)
}
