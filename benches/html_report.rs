//! The HTML report's cost on a large report: how long building the report's view and
//! rendering the page take, and how big the page is, for the sessions and servers of a real
//! replay.
//!
//! ```sh
//! cargo bench --bench html_report -- CAPTURE [PASSES]
//! ```
//!
//! The capture is replayed PASSES times (default 1) into one report, as `replay --loop`
//! does, so a corpus of 20k sessions read 5 times gives a report of 100k sessions; the
//! servers are the inventory's (at most `--inventory-size`, 10,000 by default).
//! `benches/html.sh` builds such a corpus and runs this. Rendering is timed 5 times; the
//! best and the worst are printed, with the page's size and the JSON report's for scale.

use mailtap::config::{Limits, PortMap};
use mailtap::engine::EngineConfig;
use mailtap::replay::{self, Passes, ReplayConfig};
use mailtap::session::tls::TlsContext;
use mailtap::sink::outputs::Outputs;
use mailtap::sink::report::html;
use mailtap::source::file::Input;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

const RENDERS: usize = 5;

fn main() -> ExitCode {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this too, without it, as
    // a test: there is nothing to check then.
    let all: Vec<String> = std::env::args().skip(1).collect();
    if !all.iter().any(|a| a == "--bench") {
        println!("html_report: a benchmark; run it with cargo bench (see benches/html.sh)");
        return ExitCode::SUCCESS;
    }
    let args: Vec<String> = all.into_iter().filter(|a| a != "--bench").collect();
    let Some(capture) = args.first() else {
        eprintln!("usage: cargo bench --bench html_report -- CAPTURE [PASSES]");
        return ExitCode::from(2);
    };
    let passes = match args.get(1).map(|p| p.parse::<u64>()) {
        None => 1,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("html_report: PASSES is a number of at least 1");
            return ExitCode::from(2);
        }
    };
    let tls = match TlsContext::new(&[]) {
        Ok(t) => Arc::new(t),
        Err(e) => {
            eprintln!("html_report: trust anchors: {e}");
            return ExitCode::from(1);
        }
    };
    let cfg = ReplayConfig {
        inputs: vec![Input::Path(capture.into())],
        engine: EngineConfig {
            ports: PortMap::new(&[]),
            limits: Limits::default(),
            tls,
            workers: 1,
        },
        progress: false,
        passes: Passes::from_loop(passes),
        stop: None,
        skipped: Vec::new(),
    };
    let started = Instant::now();
    let outputs = replay::run(cfg, Outputs::new(None, None));
    let replayed = started.elapsed();

    let started = Instant::now();
    let view = outputs.view();
    let viewed = started.elapsed();
    let sessions: u64 = view.protocols.iter().map(|p| p.connections).sum();
    let servers = view.servers.servers.len();

    let mut times: Vec<Duration> = Vec::with_capacity(RENDERS);
    let mut page = String::new();
    for _ in 0..RENDERS {
        let started = Instant::now();
        page = html::render(&view, &html::Page::default());
        times.push(started.elapsed());
    }
    times.sort();
    let json = serde_json::to_vec(&view).map_or(0, |j| j.len());
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "capture            {capture} x{passes} (replayed in {:.2} s)",
        replayed.as_secs_f64()
    );
    println!("sessions           {sessions}");
    println!("servers            {servers}");
    println!("view               {:.1} ms", ms(viewed));
    println!(
        "render             {:.1} ms best, {:.1} ms worst of {RENDERS}",
        ms(times[0]),
        ms(times[RENDERS - 1])
    );
    println!("html               {:.2} MB", page.len() as f64 / 1e6);
    println!("json report        {:.2} MB", json as f64 / 1e6);
    ExitCode::SUCCESS
}
