//! `mailtap replay`: read captures in order through one engine, then report.
//!
//! Flows may span files (rotated captures), so all inputs of a pass feed one engine. A file
//! that cannot be read to its end stops that file only: what was read is kept, the error is
//! reported, and the run's exit code says that something was lost.
//!
//! `--loop` reads the inputs several times in a row (as tcpreplay does), to keep a sensor busy
//! for soak and load tests. Each pass runs in an engine of its own, finished (every open flow
//! closed, as at the end of a capture) before the next pass starts. Packet time jumps back at
//! the start of a pass and the connections repeat: a flow table kept across passes would take
//! the packets of pass 2 for late packets of pass 1's flows, and its clock (which never runs
//! back) would fire no timeout until packet time passed pass 1's end. Shifting each pass's
//! times by the span of the one before would keep one table, but its open flows would then
//! close by idle timeout instead of at the end of the capture, so pass 2 would count
//! differently from pass 1. With a fresh engine, every pass is exactly the first: N passes
//! count exactly N times what one does. The price is starting the worker threads once per pass.

use crate::engine::{Engine, EngineConfig, Health};
use crate::sink::outputs::Outputs;
use crate::sink::report::FileReport;
use crate::source::compressed;
use crate::source::file::Input;
use crate::source::walk::Skipped;
use crate::source::TimeSpan;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{self, IsTerminal};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the health counters reach the metrics while a replay runs (wall time), so a
/// scrape in the middle of a long replay sees packets counted so far.
const HEALTH_EVERY: Duration = Duration::from_secs(1);

/// How many times the inputs are read (`--loop`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Passes {
    Times(u64),
    /// Until the stop flag is set (`--loop 0`).
    UntilStopped,
}

impl Passes {
    /// `--loop N`: 0 is forever.
    pub fn from_loop(n: u64) -> Self {
        match n {
            0 => Passes::UntilStopped,
            n => Passes::Times(n),
        }
    }

    fn another_after(self, done: u64) -> bool {
        match self {
            Passes::Times(n) => done < n,
            Passes::UntilStopped => true,
        }
    }
}

pub struct ReplayConfig {
    pub inputs: Vec<Input>,
    /// What the directory walks passed over (for the report's count).
    pub skipped: Vec<Skipped>,
    pub engine: EngineConfig,
    pub progress: bool,
    pub passes: Passes,
    /// Set by SIGINT/SIGTERM: stop after the file being read (its flows are closed into the
    /// outputs as at the end of a pass).
    pub stop: Option<Arc<AtomicBool>>,
}

/// Replay every input into `outputs`; they come back with the report filled in.
pub fn run(cfg: ReplayConfig, mut outputs: Outputs) -> Outputs {
    let metrics = outputs.metrics.clone();
    // The report so far, as `/` and `/report.json` show it during the replay.
    let report = Arc::clone(&outputs.report);
    // One entry per input, its packets summed over the passes: the report stays the same size
    // however long the loop runs.
    let mut files: Vec<FileReport> = cfg
        .inputs
        .iter()
        .map(|input| FileReport {
            name: input.name(),
            packets: 0,
            span: None,
            error: None,
            error_offset: None,
            compression: None,
        })
        .collect();
    report.lock().set_files_skipped(&cfg.skipped);
    let stopped = || cfg.stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed));
    let mut before = Health::default();
    let mut published = Instant::now();
    let mut passes = 0u64;
    while cfg.passes.another_after(passes) && !stopped() {
        let mut engine = Engine::for_files(cfg.engine.clone(), outputs);
        for (i, input) in cfg.inputs.iter().enumerate() {
            let Some(file) = files.get_mut(i) else {
                break;
            };
            if stopped() {
                break;
            }
            let mut publish = |health: &dyn Fn() -> Health| {
                if published.elapsed() >= HEALTH_EVERY {
                    let now = before.then(&health());
                    if let Some(m) = &metrics {
                        m.health(&now);
                    }
                    report.lock().set_health(&now);
                    published = Instant::now();
                }
            };
            read(input, file, cfg.progress, &mut engine, &mut publish);
            report.lock().files.clone_from(&files);
        }
        let (done, health) = engine.finish();
        outputs = done;
        before = before.then(&health);
        if let Some(m) = &metrics {
            m.health(&before);
        }
        report.lock().set_health(&before);
        passes += 1;
    }
    {
        let mut r = report.lock();
        r.set_health(&before);
        r.files = files;
    }
    outputs
}

/// One pass over one input; its packets and its first error go to `file`.
fn read(
    input: &Input,
    file: &mut FileReport,
    progress: bool,
    engine: &mut Engine<Outputs>,
    publish: &mut dyn FnMut(&dyn Fn() -> Health),
) {
    let bar = progress_bar(progress, input);
    let mut cut = 0;
    let read = engine.read_input(input, &mut |p| {
        cut = p.cut;
        bar.set_position(p.offset);
        let secs = bar.elapsed().as_secs_f64().max(1e-3);
        let rate = p.packets as f64 / secs;
        bar.set_message(format!("{} packets, {rate:.0} packets/s", p.packets));
        publish(p.health);
    });
    bar.finish_and_clear();
    // Once per file (not per pass of --loop).
    if cut > 0 && file.packets == 0 {
        eprintln!("{}", snaplen_note(&input.name(), cut, read.packets));
    }
    file.packets += read.packets;
    file.compression = file.compression.or(read.compression);
    file.span = TimeSpan::join(file.span, read.span);
    if let Err(e) = read.result {
        file.compression = file.compression.or(e.compression());
        if file.error.is_none() {
            file.error_offset = e.offset();
            file.error = Some(e.to_string());
        }
    }
}

/// What a user reads when the snap length cut frames: the bytes cut become gaps, so what
/// depends on them (TLS fields, messages, logins) is a lower bound.
fn snaplen_note(name: &str, cut: u64, packets: u64) -> String {
    format!(
        "mailtap: {name}: the snap length cut {cut} of {packets} packets; their missing bytes \
         are gaps, so the results from them are lower bounds (capture with -s 0 for whole \
         frames)"
    )
}

fn progress_bar(enabled: bool, input: &Input) -> ProgressBar {
    if !enabled || !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    // Of a compressed file, the offsets read are the decompressed stream's, whose size is
    // known only at its end.
    let size = match input {
        Input::Path(p) if !compressed::is_compressed(p) => {
            std::fs::metadata(p).ok().map(|m| m.len())
        }
        Input::Path(_) | Input::Stdin => None,
    };
    let bar = match size {
        Some(size) => ProgressBar::new(size),
        None => ProgressBar::no_length(),
    };
    let template = format!(
        "{} {{bar:30}} {{bytes}}/{{total_bytes}} {{binary_bytes_per_sec}} {{msg}} eta {{eta}}",
        input.name()
    );
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style);
    }
    bar
}
