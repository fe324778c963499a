//! What `replay` and `capture` share: the options of both, and the outputs they open.

use super::size;
use clap::builder::TypedValueParser as _;
use mailtap::anonymize::Anonymizer;
use mailtap::config::{Limits, PortMapping};
use mailtap::decode::defrag::DefragLimits;
use mailtap::session::tls::TlsContext;
use mailtap::signals::Signals;
use mailtap::sink::append::{AppendFile, Opened};
use mailtap::sink::http::{self, HttpConfig, HttpError, Server};
use mailtap::sink::inventory::{self, Inventory};
use mailtap::sink::log::{LogFormat, SessionLog};
use mailtap::sink::metrics::Metrics;
use mailtap::sink::metrics_file::{MetricsFile, Periodic};
use mailtap::sink::outputs::Outputs;
use mailtap::sink::report::SharedReport;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

#[derive(clap::Args)]
pub(crate) struct Common {
    /// Write every session as a JSON line to FILE (- for stdout).
    #[arg(long, value_name = "FILE|-", env = "MAILTAP_SESSIONS")]
    pub(crate) sessions: Option<String>,
    /// How --sessions writes each session: JSON lines, or CSV under a header line.
    #[arg(
        long = "sessions-format",
        value_enum,
        value_name = "FORMAT",
        default_value = "json",
        env = "MAILTAP_SESSIONS_FORMAT"
    )]
    pub(crate) sessions_format: SessionsFormat,
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
    /// Write the metrics in the text exposition format to FILE, every
    /// --metrics-file-interval and at the end (for node_exporter's textfile collector: each
    /// time to a new file in the same directory, then renamed over FILE).
    #[arg(
        long = "metrics-file",
        value_name = "FILE",
        env = "MAILTAP_METRICS_FILE"
    )]
    pub(crate) metrics_file: Option<PathBuf>,
    /// How often --metrics-file is rewritten while the sensor runs, e.g. 15s or 1m (0: only
    /// at the end).
    #[arg(
        long = "metrics-file-interval",
        value_name = "DURATION",
        env = "MAILTAP_METRICS_FILE_INTERVAL",
        default_value = "15s"
    )]
    pub(crate) metrics_file_interval: humantime::Duration,
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
    /// HTTP connections open at once, from all clients; beyond it new ones are closed.
    #[arg(
        long = "web.max-connections",
        value_name = "N",
        default_value_t = http::DEFAULT_MAX_CONNECTIONS,
        env = "MAILTAP_WEB_MAX_CONNECTIONS",
        value_parser = clap::value_parser!(u32).range(1..=65_536).map(|n| n as usize)
    )]
    pub(crate) web_max_connections: usize,
    /// HTTP connections open at once from one client address (an IPv6 client: its /64).
    #[arg(
        long = "web.max-connections-per-client",
        value_name = "N",
        default_value_t = http::DEFAULT_MAX_CONNECTIONS_PER_CLIENT,
        env = "MAILTAP_WEB_MAX_CONNECTIONS_PER_CLIENT",
        value_parser = clap::value_parser!(u32).range(1..=65_536).map(|n| n as usize)
    )]
    pub(crate) web_max_connections_per_client: usize,
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
    /// IP datagrams in reassembly at once (fragments of more are dropped, counted as
    /// `over_cap`). Suricata's `defrag.trackers` default.
    #[arg(
        long,
        value_name = "N",
        env = "MAILTAP_DEFRAG_MAX_DATAGRAMS",
        default_value = "65535",
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub(crate) defrag_max_datagrams: u32,
    /// Bytes held for IP datagrams in reassembly, e.g. 32MiB. Suricata's `defrag.memcap`
    /// default.
    #[arg(
        long,
        value_name = "SIZE",
        env = "MAILTAP_DEFRAG_MAX_BYTES",
        default_value = "32MiB",
        value_parser = size::bytes(64 * 1024, u32::MAX)
    )]
    pub(crate) defrag_max_bytes: u32,
    /// A fragmented IP datagram not complete this long (packet time) after its first
    /// fragment is dropped, counted as `timeout`. Suricata's `defrag.timeout` default.
    #[arg(
        long,
        value_name = "DURATION",
        env = "MAILTAP_DEFRAG_TIMEOUT",
        default_value = "60s"
    )]
    pub(crate) defrag_timeout: humantime::Duration,
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

/// `--sessions-format`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(crate) enum SessionsFormat {
    Json,
    Csv,
}

impl From<SessionsFormat> for LogFormat {
    fn from(f: SessionsFormat) -> Self {
        match f {
            SessionsFormat::Json => LogFormat::Json,
            SessionsFormat::Csv => LogFormat::Csv,
        }
    }
}

impl Common {
    pub(crate) fn limits(&self, workers: usize) -> Limits {
        Limits {
            max_flows: usize::try_from(self.max_flows).unwrap_or(usize::MAX),
            idle_timeout: *self.flow_timeout,
            defrag: DefragLimits {
                max_datagrams: self.defrag_max_datagrams as usize,
                max_bytes: self.defrag_max_bytes as usize,
                timeout: *self.defrag_timeout,
            },
            ..Limits::default()
        }
        .per_worker(workers)
    }
}

/// What both commands record into: the session log (pseudonymized with `--anonymize`), the
/// metrics, the server inventory and the metrics file.
pub(crate) struct Sinks {
    pub(crate) log: Option<SessionLog>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) inventory: Arc<Inventory>,
    pub(crate) metrics_file: Option<Arc<MetricsFile>>,
    /// The report so far, shown at `/` and `/report.json`.
    pub(crate) report: Arc<SharedReport>,
}

impl Common {
    /// Open the sinks; the session log file is reopened on every SIGHUP. On failure, the
    /// exit code after saying why: 1 for a session log that cannot be opened, 2 for a
    /// metrics file that can never be written.
    pub(crate) fn sinks(&self, signals: &Signals) -> Result<Sinks, ExitCode> {
        // First the check that can refuse the command line, before any file is created.
        let metrics_file = match &self.metrics_file {
            Some(path) => match MetricsFile::new(path) {
                Ok(f) => Some(Arc::new(f)),
                Err(e) => return Err(fail(2, &e)),
            },
            None => None,
        };
        let anonymizer = self.anonymize.as_deref().map(Anonymizer::new);
        let log = match open_log(self.sessions.as_deref(), signals) {
            Ok(l) => l.map(|l| {
                l.anonymized(anonymizer)
                    .formatted(self.sessions_format.into())
            }),
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
            metrics_file,
            report: Arc::new(SharedReport::new()),
        })
    }

    /// The metrics file rewritten every `--metrics-file-interval` from now on.
    pub(crate) fn rewrite_metrics_file(
        &self,
        file: Option<&Arc<MetricsFile>>,
        metrics: &Arc<Metrics>,
    ) -> Option<Periodic> {
        file.map(|f| {
            Periodic::start(
                Arc::clone(f),
                Arc::clone(metrics),
                *self.metrics_file_interval,
            )
        })
    }

    pub(crate) fn http_config(&self, address: &str) -> HttpConfig {
        HttpConfig {
            listen_address: address.to_string(),
            telemetry_path: self.web_telemetry_path.clone(),
            web_config: self.web_config_file.clone(),
            max_connections: self.web_max_connections,
            max_connections_per_client: self.web_max_connections_per_client,
        }
    }
}

/// After a run: the last write of the metrics file, and what the session log lost. Says
/// what failed; true when every output is complete.
pub(crate) fn finish_outputs(outputs: &Outputs, metrics_file: Option<Periodic>) -> bool {
    let mut complete = true;
    let lost = outputs.log_failures.lost();
    if lost > 0 {
        fail(
            1,
            &format!(
                "{}: {lost} session records could not be written",
                outputs.log_failures.name()
            ),
        );
        complete = false;
    }
    if let Some(periodic) = metrics_file {
        let path = periodic.path().to_path_buf();
        if let Err(e) = periodic.finish() {
            fail(1, &format!("--metrics-file {}: {e}", path.display()));
            complete = false;
        }
    }
    complete
}

/// Start the HTTP server on `--web.listen-address`, or on `default` when the flag is absent
/// (`None`: then serve nothing). Says where on stderr.
pub(crate) fn serve(
    common: &Common,
    default: Option<&str>,
    metrics: &Arc<Metrics>,
    inventory: &Arc<Inventory>,
    report: &Arc<SharedReport>,
) -> Result<Option<Server>, ExitCode> {
    let Some(address) = common.web_listen_address.as_deref().or(default) else {
        return Ok(None);
    };
    let cfg = common.http_config(address);
    match Server::start(
        &cfg,
        Arc::clone(metrics),
        Arc::clone(inventory),
        Arc::clone(report),
    ) {
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

pub(crate) fn trust(paths: &[PathBuf]) -> Result<Arc<TlsContext>, String> {
    let pems = paths
        .iter()
        .map(|p| std::fs::read(p).map_err(|e| format!("--trust-anchor {}: {e}", p.display())))
        .collect::<Result<Vec<_>, _>>()?;
    TlsContext::new(&pems)
        .map(Arc::new)
        .map_err(|e| format!("--trust-anchor: {e}"))
}

/// The session log: stdout (`-`), or a file appended to and reopened on SIGHUP.
fn open_log(target: Option<&str>, signals: &Signals) -> Result<Option<SessionLog>, String> {
    let path = match target {
        None => return Ok(None),
        Some("-") => return Ok(Some(SessionLog::new(Box::new(io::stdout())))),
        Some(path) => Path::new(path),
    };
    let (file, opened) =
        AppendFile::open(path).map_err(|e| format!("--sessions {}: {e}", path.display()))?;
    say_cut(path, opened);
    let file = Arc::new(file);
    let reopened = Arc::clone(&file);
    signals.on_hangup(Box::new(move || match reopened.reopen() {
        Ok(opened) => say_cut(reopened.path(), opened),
        Err(e) => eprintln!(
            "mailtap: SIGHUP: cannot reopen --sessions {}: {e}; still writing to the file \
             open before",
            reopened.path().display()
        ),
    }));
    Ok(Some(SessionLog::file(file)))
}

/// A partial last line, left by a process killed in the middle of a write, was cut off.
fn say_cut(path: &Path, opened: Opened) {
    if opened.cut > 0 {
        eprintln!(
            "mailtap: --sessions {}: cut off a partial last line ({} bytes) left by an \
             earlier run; appending after the last whole line",
            path.display(),
            opened.cut
        );
    }
}

pub(crate) fn fail(code: u8, msg: &str) -> ExitCode {
    eprintln!("mailtap: {msg}");
    ExitCode::from(code)
}
