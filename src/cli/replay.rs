//! `mailtap replay`: files in, a report out.

use super::common::{
    fail, open_log, serve, trust, workers, write_atomically, Common, Reader, Sinks,
};
use clap::ValueEnum;
use mailtap::config::PortMap;
use mailtap::engine::EngineConfig;
use mailtap::replay::{self, Passes, ReplayConfig};
use mailtap::signals::stop_on_signals;
use mailtap::sink::log::SessionLog;
use mailtap::sink::outputs::Outputs;
use mailtap::source::file;
use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::Arc;

pub(crate) const EXIT_CODES: &str = "\
Exit status:
  0  every input was read to its end (with --loop 0: in every pass until SIGINT/SIGTERM)
  1  an input could not be read to its end (the report covers what was read) or an output
     could not be written
  2  bad usage or configuration (unknown option, bad --port, unreadable --trust-anchor,
     bad --web.config.file or --web.listen-address)";

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum Format {
    Table,
    Json,
}

#[derive(clap::Args)]
pub(crate) struct ReplayArgs {
    /// Capture files, directories (walked in name order) or - for stdin.
    #[arg(required = true, value_name = "PCAP|DIR|-")]
    pub(crate) inputs: Vec<String>,
    /// Report format on stdout.
    #[arg(long, value_enum, default_value = "table", env = "MAILTAP_FORMAT")]
    pub(crate) format: Format,
    /// No progress bar, even on a terminal.
    #[arg(long, env = "MAILTAP_QUIET")]
    pub(crate) quiet: bool,
    /// Keep serving --web.listen-address this long after the replay, so Prometheus can
    /// scrape the final numbers.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 0,
        env = "MAILTAP_LINGER"
    )]
    pub(crate) linger: u64,
    /// Read the inputs N times in a row, each pass as if it were the first (0: until
    /// SIGINT/SIGTERM, then report). Files only: stdin can be read once.
    #[arg(
        long = "loop",
        value_name = "N",
        default_value_t = 1,
        env = "MAILTAP_LOOP"
    )]
    pub(crate) passes: u64,
    #[command(flatten)]
    pub(crate) common: Common,
}

pub(crate) fn run(args: ReplayArgs) -> ExitCode {
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
    let Sinks {
        log,
        metrics,
        inventory,
    } = match args.common.sinks(open_log) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let server = match serve(&args.common, None, &metrics, &inventory) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let workers = workers(args.common.workers, Reader::Workers);
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
