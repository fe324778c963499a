//! Issue 8: the HTTP endpoint under load. 50 scrapers, each on its own thread, fetch
//! `/metrics` (and now and then `/servers`) back to back, on a new connection each time, for
//! `MAILTAP_LOAD_SECONDS` (default 60), while the sensor replays fixtures/ in an endless
//! loop with two workers. Every answer must be complete and its counters must never go back;
//! the sensor's memory must level off. Latency and throughput are printed, not asserted: they
//! depend on the machine.

mod common;
mod http_support;

use http_support::{request, serve_while_replaying, Response};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SCRAPERS: usize = 50;
/// One request in this many goes to `/servers` (the inventory's lock, a JSON body).
const SERVERS_EVERY: usize = 5;
/// Memory is compared from this point on: by then the flow tables, the worker batches, the
/// inventory (a few dozen servers) and the HTTP runtime's buffers have reached their size.
const WARM_UP: Duration = Duration::from_secs(10);
/// Growth allowed after the warm-up. What can legitimately come and go: 50 responses in
/// flight (about 40 KiB of exposition each, 2 MiB), a pass's packet batches (2 workers × 8 ×
/// 256 KiB, 4 MiB, freed and allocated again every pass) and the allocator's per-thread
/// arenas holding on to some of it. A leak of 100 bytes per scrape would pass this bound
/// only below ~170,000 scrapes; per pass (a new engine each), of 200 KiB only below 80 passes.
const GROWTH_BOUND_KIB: u64 = 16 * 1024;

fn duration() -> Duration {
    let secs = std::env::var("MAILTAP_LOAD_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    Duration::from_secs(secs)
}

/// What one scraper saw.
#[derive(Default)]
struct Tally {
    scrapes: u64,
    latencies: Vec<Duration>,
    errors: Vec<String>,
    /// Distinct values of the session count, in the order seen.
    session_counts: Vec<u64>,
}

/// Counter samples of a `/metrics` body that must be complete: a known content length that
/// matches, a final newline, every line a comment or `series value`, and every metric family
/// of the first answer.
fn counters(r: &Response, families: &BTreeSet<String>) -> Result<BTreeMap<String, f64>, String> {
    if r.status != 200 {
        return Err(format!("status {}", r.status));
    }
    let length: Option<usize> = r.header("content-length").and_then(|v| v.parse().ok());
    if length != Some(r.body.len()) {
        return Err(format!("body of {} bytes, length {length:?}", r.body.len()));
    }
    if !r.body.ends_with('\n') {
        return Err("no final newline".into());
    }
    let mut seen = BTreeSet::new();
    let mut out = BTreeMap::new();
    for line in r.body.lines() {
        if let Some(ty) = line.strip_prefix("# TYPE ") {
            seen.insert(ty.split(' ').next().unwrap_or_default().to_string());
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').ok_or(format!("bad line {line:?}"))?;
        let value: f64 = value.parse().map_err(|_| format!("bad value {line:?}"))?;
        if series
            .split('{')
            .next()
            .is_some_and(|n| n.ends_with("_total"))
        {
            out.insert(series.to_string(), value);
        }
    }
    if !families.is_subset(&seen) {
        let missing: Vec<_> = families.difference(&seen).collect();
        return Err(format!("families missing: {missing:?}"));
    }
    Ok(out)
}

fn sessions(counters: &BTreeMap<String, f64>) -> u64 {
    counters
        .iter()
        .filter(|(k, _)| k.starts_with("mailtap_sessions_total{"))
        .map(|(_, v)| *v as u64)
        .sum()
}

fn scrape(addr: SocketAddr, n: usize, families: &BTreeSet<String>, stop: &AtomicBool) -> Tally {
    let mut t = Tally::default();
    let mut last: BTreeMap<String, f64> = BTreeMap::new();
    let mut i = n;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let path = if i % SERVERS_EVERY == 0 {
            "/servers"
        } else {
            "/metrics"
        };
        let started = Instant::now();
        let answer = request(addr, "GET", path, &[], None);
        t.latencies.push(started.elapsed());
        t.scrapes += 1;
        let r = match answer {
            Ok(r) => r,
            Err(e) => {
                t.errors.push(format!("{path}: {e}"));
                continue;
            }
        };
        if path == "/servers" {
            let complete = serde_json::from_str::<serde_json::Value>(&r.body)
                .is_ok_and(|v| v["servers"].is_array());
            if r.status != 200 || !complete {
                t.errors
                    .push(format!("/servers: {} {:?}", r.status, r.body));
            }
            continue;
        }
        let now = match counters(&r, families) {
            Ok(c) => c,
            Err(e) => {
                t.errors.push(format!("/metrics: {e}"));
                continue;
            }
        };
        for (series, v) in &now {
            let before = last.get(series).copied().unwrap_or(0.0);
            if *v < before {
                t.errors
                    .push(format!("{series} went back from {before} to {v}"));
            }
        }
        let s = sessions(&now);
        if t.session_counts.last() != Some(&s) {
            t.session_counts.push(s);
        }
        last = now;
    }
    t
}

/// VmRSS and VmHWM of `pid` in KiB.
fn memory(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

#[test]
fn fifty_scrapers_for_a_minute_against_an_endless_replay() {
    let run_for = duration();
    let report_path = common::scratch("load-report.json");
    let metrics_path = common::scratch("load.prom");
    let report_file = std::fs::File::create(&report_path).unwrap();
    // Every scraper comes from 127.0.0.1: one client to the per-client limit, which is
    // raised here to let all fifty in at once (tests/http_hardening.rs tests the limit).
    let mut sensor = serve_while_replaying(
        &[
            "--web.max-connections-per-client",
            "64",
            "--loop",
            "0",
            "--workers",
            "2",
            "--format",
            "json",
            "--metrics-file",
            &metrics_path.to_string_lossy(),
            &common::fixtures().to_string_lossy(),
        ],
        Stdio::from(report_file),
    );
    let addr = sensor.addr;
    let pid = sensor.pid();
    let first = request(addr, "GET", "/metrics", &[], None).expect("the first scrape");
    let families: BTreeSet<String> = first
        .body
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(String::from)
        .collect();
    assert!(
        families.contains("mailtap_sessions_total"),
        "{}",
        first.body
    );

    let stop = Arc::new(AtomicBool::new(false));
    let families = Arc::new(families);
    let started = Instant::now();
    let scrapers: Vec<_> = (0..SCRAPERS)
        .map(|n| {
            let (stop, families) = (Arc::clone(&stop), Arc::clone(&families));
            std::thread::spawn(move || scrape(addr, n, &families, &stop))
        })
        .collect();
    // Memory once a second: (seconds since the start, VmRSS, VmHWM).
    let mut rss = Vec::new();
    while started.elapsed() < run_for {
        std::thread::sleep(Duration::from_secs(1));
        if let Some((now, peak)) = memory(pid) {
            rss.push((started.elapsed(), now, peak));
        }
    }
    stop.store(true, Ordering::Relaxed);
    let tallies: Vec<Tally> = scrapers
        .into_iter()
        .map(|s| s.join().expect("a scraper"))
        .collect();
    let elapsed = started.elapsed();
    let status = sensor.terminate();

    let scrapes: u64 = tallies.iter().map(|t| t.scrapes).sum();
    let mut latencies: Vec<Duration> = tallies.iter().flat_map(|t| t.latencies.clone()).collect();
    latencies.sort();
    let errors: Vec<&String> = tallies.iter().flat_map(|t| &t.errors).collect();
    let increases: usize = tallies
        .iter()
        .map(|t| t.session_counts.len().saturating_sub(1))
        .sum();
    let last_seen = tallies
        .iter()
        .filter_map(|t| t.session_counts.last())
        .max()
        .copied()
        .unwrap_or(0);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap_or_default())
            .expect("the final report is JSON");
    let replayed: u64 = report["protocols"]
        .as_array()
        .map(|ps| ps.iter().filter_map(|p| p["connections"].as_u64()).sum())
        .unwrap_or(0);
    let rss_kib: Vec<u64> = rss.iter().map(|(_, now, _)| *now).collect();
    let hwm = rss.last().map_or(0, |(_, _, peak)| *peak);
    let at_warm_up = rss
        .iter()
        .find(|(t, _, _)| *t >= WARM_UP.min(run_for / 3))
        .map_or(0, |(_, now, _)| *now);
    let after_warm_up = rss
        .iter()
        .filter(|(t, _, _)| *t >= WARM_UP.min(run_for / 3))
        .map(|(_, now, _)| *now)
        .max()
        .unwrap_or(0);
    eprintln!(
        "scrape load: {SCRAPERS} scrapers, {:.1} s: {scrapes} requests ({:.0}/s), latency \
         p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; sensor VmRSS {}..{} KiB (VmHWM {} KiB, \
         {} KiB at {} s, at most {} KiB after); {replayed} sessions replayed, the session \
         count rose {increases} times as seen by the scrapers; {} errors",
        elapsed.as_secs_f64(),
        scrapes as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        rss_kib.iter().min().unwrap_or(&0),
        rss_kib.iter().max().unwrap_or(&0),
        hwm,
        at_warm_up,
        WARM_UP.min(run_for / 3).as_secs(),
        after_warm_up,
        errors.len(),
    );

    assert!(
        errors.is_empty(),
        "{} errors, first: {:?}",
        errors.len(),
        errors.first()
    );
    assert!(
        status.success(),
        "SIGTERM ends a --loop 0 replay cleanly: {status}"
    );
    // The replay went on under the load: many passes, each of 72 sessions.
    assert!(
        increases >= 10,
        "the session count rose only {increases} times"
    );
    assert!(replayed > 72, "{replayed} sessions: not even two passes");
    assert!(
        replayed >= last_seen,
        "{replayed} replayed, {last_seen} scraped"
    );
    // The final exposition agrees with the final report, so the health counters were not
    // counted twice when one pass handed over to the next.
    let exposition = std::fs::read_to_string(&metrics_path).expect("--metrics-file");
    let sample = |series: &str| {
        exposition.lines().find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')?
                .parse::<u64>()
                .ok()
        })
    };
    assert_eq!(
        sample(r#"mailtap_packets_total{result="mail"}"#),
        report["health"]["packets"]["mail"].as_u64()
    );
    let exposed_sessions: u64 = exposition
        .lines()
        .filter(|l| l.starts_with("mailtap_sessions_total{"))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<u64>().ok())
        .sum();
    assert_eq!(exposed_sessions, replayed);
    let _ = std::fs::remove_file(report_path);
    let _ = std::fs::remove_file(metrics_path);
    assert!(
        after_warm_up <= at_warm_up + GROWTH_BOUND_KIB,
        "memory grew from {at_warm_up} KiB to {after_warm_up} KiB after the warm-up"
    );
}
