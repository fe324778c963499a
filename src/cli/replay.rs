//! `mailtap replay`: files in, a report out.

use super::common::{fail, finish_outputs, serve, trust, workers, Common, Reader, Sinks};
use clap::builder::BoolishValueParser;
use clap::{ArgAction, ValueEnum};
use mailtap::config::PortMap;
use mailtap::engine::EngineConfig;
use mailtap::replay::{self, Passes, ReplayConfig};
use mailtap::signals::Signals;
use mailtap::sink::metrics_file::MetricsFile;
use mailtap::sink::outputs::Outputs;
use mailtap::sink::report::{html, ReportView};
use mailtap::source::file;
use mailtap::source::walk::{self, Expanded, Skip, Skipped};
use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::Arc;

pub(crate) const EXIT_CODES: &str = "\
Exit status:
  0  every input was read to its end, or SIGINT/SIGTERM stopped the replay (between files)
     or --linger, and every output was written
  1  an input could not be read to its end (the report covers what was read) or an output
     could not be written (the other outputs are complete); or, before anything is read, an
     input does not exist or the directories named hold no capture
  2  bad usage or configuration (unknown option, bad --port, unreadable --trust-anchor,
     bad --web.config.file or --web.listen-address)";

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum Format {
    Table,
    Json,
    /// The report's tables one after another, for spreadsheets.
    Csv,
}

#[derive(clap::Args)]
pub(crate) struct ReplayArgs {
    /// Capture files (pcap or pcapng, or either gzip- or zstd-compressed), directories (walked
    /// in name order, each file read once) or - for stdin.
    #[arg(required = true, value_name = "PCAP|DIR|-")]
    pub(crate) inputs: Vec<String>,
    /// Report format on stdout.
    #[arg(long, value_enum, default_value = "table", env = "MAILTAP_FORMAT")]
    pub(crate) format: Format,
    /// Also write the report as one self-contained HTML page to FILE (charts, every server).
    #[arg(long, value_name = "FILE", env = "MAILTAP_HTML")]
    pub(crate) html: Option<std::path::PathBuf>,
    /// No progress bar, even on a terminal.
    #[arg(long, env = "MAILTAP_QUIET", action = ArgAction::SetTrue,
          value_parser = BoolishValueParser::new())]
    pub(crate) quiet: bool,
    /// Keep serving --web.listen-address this long after the replay, so Prometheus can
    /// scrape the final numbers (SIGINT/SIGTERM ends it early).
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
    // First: from here on no signal ends the process before its outputs are written.
    let signals = match Signals::install() {
        Ok(s) => s,
        Err(e) => return fail(1, &format!("cannot handle signals: {e}")),
    };
    let tls = match trust(&args.common.trust_anchors) {
        Ok(t) => t,
        Err(e) => return fail(2, &e),
    };
    let Expanded { inputs, skipped } = match walk::expand(&args.inputs) {
        Ok(x) => x,
        Err(e) => return fail(1, &e.to_string()),
    };
    say_skipped(&skipped);
    if inputs.is_empty() {
        return fail(1, &no_capture(&args.inputs, skipped.len()));
    }
    if args.passes != 1 && inputs.contains(&file::Input::Stdin) {
        return fail(2, "--loop: stdin (-) can be read only once");
    }
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
    // Checked now, written at the end: a page that could never be written stops the replay
    // before it starts.
    let html = match args
        .html
        .as_deref()
        .map(|p| MetricsFile::for_option("--html", p))
    {
        Some(Err(e)) => return fail(2, &e),
        checked => checked.and_then(Result::ok),
    };
    let server = match serve(&args.common, None, &metrics, &inventory, &report) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let rewriting = args
        .common
        .rewrite_metrics_file(metrics_file.as_ref(), &metrics);
    let workers = workers(args.common.workers, Reader::Workers);
    let cfg = ReplayConfig {
        inputs,
        skipped,
        engine: EngineConfig {
            ports: PortMap::new(&args.common.ports),
            limits: args.common.limits(workers),
            tls,
            workers,
        },
        progress: !args.quiet,
        passes: Passes::from_loop(args.passes),
        stop: Some(signals.stop_flag()),
    };
    let outputs = Outputs::new(log, Some(Arc::clone(&metrics)))
        .with_inventory(inventory)
        .with_report(report);
    let outputs = replay::run(cfg, outputs);
    // Every output is written whatever happened to the others.
    let mut complete = finish_outputs(&outputs, rewriting);
    let view = outputs.view();
    if let Some(file) = &html {
        let page = html::render(&view, &html::Page::default());
        if let Err(e) = file.write(page.as_bytes()) {
            fail(1, &format!("--html {}: {e}", file.path().display()));
            complete = false;
        }
    }
    complete &= write_report(&args, &view);
    for e in view.files.iter().filter_map(|f| f.error.as_ref()) {
        eprintln!("mailtap: {e}");
    }
    let read_all = view.files.iter().all(|f| f.error.is_none());
    if let Some(server) = server {
        if args.linger > 0 {
            // The signal that ended a --loop 0 replay is not taken as the second one.
            signals.rearm();
            eprintln!("mailtap: replay done; serving {} more seconds", args.linger);
            signals.sleep(std::time::Duration::from_secs(args.linger));
        }
        server.stop();
    }
    if complete && read_all {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// What a user reads when the directories named hold no capture.
fn no_capture(args: &[String], skipped: usize) -> String {
    let found = match skipped {
        0 => "they hold no file".to_string(),
        1 => "the 1 file skipped above is the only one".to_string(),
        n => format!("the {n} files skipped above are all there is"),
    };
    format!("no capture found in {}: {found}", args.join(", "))
}

/// The report on stdout, unless the session log already goes there (then on stderr); true
/// when it was written (a reader that went away, as `| head` does, is no failure).
fn write_report(args: &ReplayArgs, view: &ReportView) -> bool {
    let to_stdout = args.common.sessions.as_deref() != Some("-");
    let mut out: Box<dyn Write> = if to_stdout {
        Box::new(io::stdout().lock())
    } else {
        Box::new(io::stderr().lock())
    };
    let written = match args.format {
        Format::Table => view.write_table(&mut out),
        Format::Json => view.write_json(&mut out),
        Format::Csv => view.write_csv(&mut out),
    };
    match written.and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            fail(1, &format!("writing the report: {e}"));
            false
        }
        _ => true,
    }
}

/// Files a walk passed over: which could not be read, and which were another path to a
/// file already read, each on its line; of those that are not captures (READMEs, expected
/// outputs beside the captures: a fixtures tree has hundreds), the first few, then how many
/// more. The report counts them all (`files_skipped`).
fn say_skipped(skipped: &[Skipped]) {
    let mut not_captures = 0usize;
    for s in skipped {
        if s.why == Skip::NotACapture {
            not_captures += 1;
            if not_captures > LISTED_NOT_CAPTURES {
                continue;
            }
        }
        eprintln!("mailtap: skipped {s}");
    }
    if let Some(more) = not_captures
        .checked_sub(LISTED_NOT_CAPTURES)
        .filter(|n| *n > 0)
    {
        eprintln!("mailtap: skipped {more} more files that are not captures");
    }
}

/// Files that are not captures named one by one on stderr, at most.
const LISTED_NOT_CAPTURES: usize = 5;
