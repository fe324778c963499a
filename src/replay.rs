//! `mailtap replay`: read captures in order through one engine, then report.
//!
//! Flows may span files (rotated captures), so all inputs feed one engine. A file that cannot
//! be read to its end stops that file only: what was read is kept, the error is reported, and
//! the run's exit code says that something was lost.

use crate::engine::{Engine, EngineConfig};
use crate::sink::outputs::Outputs;
use crate::sink::report::FileReport;
use crate::source::file::{CaptureFile, Input};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{self, IsTerminal};
use std::time::{Duration, Instant};

/// How often the health counters reach the metrics while a replay runs (wall time), so a
/// scrape in the middle of a long replay sees packets counted so far.
const HEALTH_EVERY: Duration = Duration::from_secs(1);

pub struct ReplayConfig {
    pub inputs: Vec<Input>,
    pub engine: EngineConfig,
    pub progress: bool,
}

/// Replay every input into `outputs`; they come back with the report filled in.
pub fn run(cfg: ReplayConfig, outputs: Outputs) -> Outputs {
    let metrics = outputs.metrics.clone();
    let mut engine = Engine::new(cfg.engine, outputs);
    let mut files = Vec::new();
    let mut published = Instant::now();
    for input in &cfg.inputs {
        let mut packets = 0u64;
        let result = CaptureFile::open(input).and_then(|mut file| {
            let bar = progress_bar(cfg.progress, &file);
            let r = file.for_each(&mut |p, offset| {
                packets += 1;
                if packets % 8192 == 0 {
                    bar.set_position(offset);
                    let secs = bar.elapsed().as_secs_f64().max(1e-3);
                    let rate = packets as f64 / secs;
                    bar.set_message(format!("{packets} packets, {rate:.0} packets/s"));
                }
                if packets % 1024 == 0 && published.elapsed() >= HEALTH_EVERY {
                    if let Some(m) = &metrics {
                        m.health(&engine.health());
                    }
                    published = Instant::now();
                }
                engine.packet(p);
            });
            bar.finish_and_clear();
            r
        });
        files.push(FileReport {
            name: input.name(),
            packets,
            error: result.err().map(|e| e.to_string()),
        });
    }
    let (mut outputs, health) = engine.finish();
    if let Some(m) = &outputs.metrics {
        m.health(&health);
    }
    outputs.report.set_health(&health);
    outputs.report.files = files;
    outputs
}

fn progress_bar(enabled: bool, file: &CaptureFile) -> ProgressBar {
    if !enabled || !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = match file.size() {
        Some(size) => ProgressBar::new(size),
        None => ProgressBar::no_length(),
    };
    let template = format!(
        "{} {{bar:30}} {{bytes}}/{{total_bytes}} {{binary_bytes_per_sec}} {{msg}} eta {{eta}}",
        file.name()
    );
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style);
    }
    bar
}
