//! Command line → configuration → engine. No logic lives here.

use clap::{Parser, Subcommand, ValueEnum};
use mailtap::config::{Limits, PortMap, PortMapping};
use mailtap::replay::{self, ReplayConfig};
use mailtap::session::tls::TlsContext;
use mailtap::sink::log::SessionLog;
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
    #[arg(long = "port", value_name = "PORT=PROTOCOL", env = "MAILTAP_PORT", value_delimiter = ',')]
    ports: Vec<PortMapping>,
    /// Extra CA certificate(s) (PEM) trusted besides the Mozilla roots (repeatable).
    #[arg(long = "trust-anchor", value_name = "PEM", env = "MAILTAP_TRUST_ANCHOR", value_delimiter = ',')]
    trust_anchors: Vec<PathBuf>,
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
    let mut log = match open_log(args.common.sessions.as_deref()) {
        Ok(l) => l,
        Err(e) => return fail(1, &e),
    };
    let cfg = ReplayConfig {
        inputs,
        ports: PortMap::new(&args.common.ports),
        limits: Limits::default(),
        tls,
        progress: !args.quiet,
    };
    let outcome = match replay::run(cfg, log.as_mut()) {
        Ok(o) => o,
        Err(e) => return fail(1, &format!("writing the session log: {e}")),
    };
    if let Some(Err(e)) = log.as_mut().map(SessionLog::flush) {
        return fail(1, &format!("writing the session log: {e}"));
    }
    // The report goes to stdout, unless the session log already does.
    let to_stdout = args.common.sessions.as_deref() != Some("-");
    let mut out: Box<dyn Write> = if to_stdout {
        Box::new(io::stdout().lock())
    } else {
        Box::new(io::stderr().lock())
    };
    let written = match args.format {
        Format::Table => outcome.report.write_table(&mut out),
        Format::Json => outcome.report.write_json(&mut out),
    };
    for f in outcome.report.files.iter().filter_map(|f| f.error.as_ref()) {
        eprintln!("mailtap: {f}");
    }
    match (written.and_then(|()| out.flush()), outcome.failed_files) {
        (Err(e), _) if e.kind() != io::ErrorKind::BrokenPipe => fail(1, &e.to_string()),
        (_, 0) => ExitCode::SUCCESS,
        _ => ExitCode::from(1),
    }
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
        Some(path) => Box::new(BufWriter::new(
            std::fs::File::create(path).map_err(|e| format!("--sessions {path}: {e}"))?,
        )),
    };
    Ok(Some(SessionLog::new(out)))
}

fn fail(code: u8, msg: &str) -> ExitCode {
    eprintln!("mailtap: {msg}");
    ExitCode::from(code)
}
