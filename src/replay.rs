//! `mailtap replay`: read captures in order through one engine, then report.
//!
//! Flows may span files (rotated captures), so all inputs feed one flow table. A file that
//! cannot be read to its end stops that file only: what was read is kept, the error is
//! reported, and the run's exit code says that something was lost.

use crate::config::{Limits, PortMap};
use crate::engine::{Finished, Worker};
use crate::session::tls::TlsContext;
use crate::session::Session;
use crate::sink::log::SessionLog;
use crate::sink::report::{FileReport, Report};
use crate::source::file::{CaptureFile, Input, SourceError};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{self, IsTerminal};
use std::sync::Arc;

pub struct ReplayConfig {
    pub inputs: Vec<Input>,
    pub ports: PortMap,
    pub limits: Limits,
    pub tls: Arc<TlsContext>,
    pub progress: bool,
}

pub struct ReplayOutcome {
    pub report: Report,
    /// Files that could not be read to their end.
    pub failed_files: usize,
}

/// Replay every input; each finished session also goes to `log` when there is one.
pub fn run(cfg: ReplayConfig, mut log: Option<&mut SessionLog>) -> io::Result<ReplayOutcome> {
    let mut worker: Worker<Session> = Worker::new(cfg.ports.clone(), cfg.limits.clone());
    let mut report = Report::new();
    let mut log_error: Option<io::Error> = None;
    let tls = Arc::clone(&cfg.tls);
    let mut make = |info: &crate::flow::table::FlowInfo| Session::new(info.protocol, Arc::clone(&tls));
    let mut done = |f: Finished<Session>| {
        let record = f.handler.record(&f.info);
        if let (Some(r), Some(log)) = (&record, log.as_deref_mut()) {
            if let Err(e) = log.write(r) {
                log_error.get_or_insert(e);
            }
        }
        report.add(&f.info, record.as_ref());
    };

    let mut files = Vec::new();
    for input in &cfg.inputs {
        let mut packets = 0u64;
        let result = CaptureFile::open(input).and_then(|mut file| {
            let bar = progress_bar(cfg.progress, &file);
            let r = file.for_each(&mut |p, offset| {
                packets += 1;
                if packets % 4096 == 0 {
                    bar.set_position(offset);
                }
                worker.packet(p, &mut make, &mut done);
            });
            bar.finish_and_clear();
            r
        });
        files.push(FileReport {
            name: input.name(),
            packets,
            error: result.err().map(|e: SourceError| e.to_string()),
        });
    }
    worker.finish(&mut done);
    if let Some(e) = log_error {
        return Err(e);
    }
    report.set_health(&worker.health());
    let failed_files = files.iter().filter(|f| f.error.is_some()).count();
    report.files = files;
    Ok(ReplayOutcome {
        report,
        failed_files,
    })
}

fn progress_bar(enabled: bool, file: &CaptureFile) -> ProgressBar {
    if !enabled || !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = match file.size() {
        Some(size) => ProgressBar::new(size),
        None => ProgressBar::no_length(),
    };
    let style = ProgressStyle::with_template(
        "{msg} [{elapsed_precise}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(file.name().to_string());
    bar
}
