//! `replay --loop N`: every pass is the first one again, so N passes count exactly N times
//! what one pass counts, in the report, the metrics and the session log.

mod common;

use common::{fixtures, mailtap, scratch};
use serde_json::Value;

struct Run {
    report: Value,
    metrics: Vec<(String, f64)>,
    sessions: Vec<String>,
}

/// The whole fixtures/ directory as one input, with two workers (a fresh pair each pass).
fn replay(passes: &str) -> Run {
    let sessions = scratch(&format!("loop-{passes}.jsonl"));
    let metrics = scratch(&format!("loop-{passes}.prom"));
    let out = mailtap(&[
        "replay",
        "--quiet",
        "--format",
        "json",
        "--workers",
        "2",
        "--loop",
        passes,
        "--sessions",
        &sessions.to_string_lossy(),
        "--metrics-file",
        &metrics.to_string_lossy(),
        &fixtures().to_string_lossy(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines: Vec<String> = std::fs::read_to_string(&sessions)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    lines.sort();
    let exposition = std::fs::read_to_string(&metrics).unwrap();
    let _ = std::fs::remove_file(sessions);
    let _ = std::fs::remove_file(metrics);
    Run {
        report: serde_json::from_slice(&out.stdout).expect("report is JSON"),
        metrics: samples(&exposition),
        sessions: lines,
    }
}

fn samples(exposition: &str) -> Vec<(String, f64)> {
    // mailtap's own series: the process_* ones measure the process, not the traffic.
    exposition
        .lines()
        .filter(|l| l.starts_with("mailtap_"))
        .filter_map(|l| l.rsplit_once(' '))
        .map(|(series, v)| (series.to_string(), v.parse().expect("a number")))
        .collect()
}

/// `three` is `one` with every count tripled. What is not a count stays: names, times,
/// shares, the inventory's capacity, the timeline's bucket width, the peak of flows held at once (each pass starts
/// empty), and the files the walk skipped. The process's peak memory is the process's, not the traffic's.
fn assert_tripled(at: &str, one: &Value, three: &Value) {
    match (one, three) {
        (Value::Object(a), Value::Object(b)) => {
            let keys = |m: &serde_json::Map<String, Value>| m.keys().cloned().collect::<Vec<_>>();
            assert_eq!(keys(a), keys(b), "{at}");
            for (k, v) in a {
                let path = format!("{at}.{k}");
                match k.as_str() {
                    "peak_rss_bytes" => {}
                    // Paths the walk passed over: the inputs are found once, whatever the passes.
                    "flows_peak" | "capacity" | "bucket_seconds" | "files_skipped" => {
                        assert_eq!(v, &b[k], "{path}")
                    }
                    _ => assert_tripled(&path, v, &b[k]),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            assert_eq!(a.len(), b.len(), "{at}");
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                assert_tripled(&format!("{at}[{i}]"), x, y);
            }
        }
        (Value::Number(a), _) if a.is_u64() => {
            assert_eq!(Some(a.as_u64().unwrap() * 3), three.as_u64(), "{at}");
        }
        _ => assert_eq!(one, three, "{at}"),
    }
}

/// The fixtures' expected records: how many distinct connections (client, server, start)
/// they name, and how many records.
fn expected_connections() -> (usize, usize) {
    let mut keys = std::collections::BTreeSet::new();
    let mut records = 0;
    for dir in common::cases() {
        let path = dir.join("expected.jsonl");
        if !path.exists() {
            continue;
        }
        for r in common::read_jsonl(&path) {
            records += 1;
            keys.insert((
                r["client"].to_string(),
                r["server"].to_string(),
                r["ts_start"].to_string(),
            ));
        }
    }
    (keys.len(), records)
}

#[test]
fn three_passes_count_three_times_one() {
    let one = replay("1");
    let three = replay("3");
    // Read as one input, a connection that two cases hold (an impaired copy and its base)
    // may be one session or two: at least every distinct connection, at most every record.
    let (distinct, records) = expected_connections();
    assert!(
        (distinct..=records).contains(&one.sessions.len()),
        "fixtures/ as one input: {} sessions, {distinct} connections, {records} records",
        one.sessions.len()
    );

    assert_tripled("report", &one.report, &three.report);

    let tripled: Vec<String> = one
        .sessions
        .iter()
        .flat_map(|r| [r.clone(), r.clone(), r.clone()])
        .collect();
    assert_eq!(
        three.sessions, tripled,
        "each record three times, as it was"
    );

    assert_eq!(one.metrics.len(), three.metrics.len());
    for ((series, a), (series3, b)) in one.metrics.iter().zip(&three.metrics) {
        assert_eq!(series, series3);
        // Counters triple; the gauges (flows_active, build_info) do not.
        let want = if series.split('{').next().unwrap().ends_with("_total") {
            a * 3.0
        } else {
            *a
        };
        assert_eq!(*b, want, "{series}");
    }
}

#[test]
fn loop_refuses_stdin() {
    let out = mailtap(&["replay", "--quiet", "--loop", "2", "-"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--loop"), "{err}");
}
