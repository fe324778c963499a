//! Everything on one thread (`--workers 0` and `1`), or workers taking turns reading (2 and
//! more): the same records (order aside) and the same metrics.

mod common;

use common::{capture_of, case_args, cases, mailtap, scratch};

fn replay(workers: &str) -> (Vec<String>, String) {
    let sessions = scratch(&format!("workers-{workers}.jsonl"));
    let metrics = scratch(&format!("workers-{workers}.prom"));
    let mut records: Vec<String> = Vec::new();
    let mut exposition = String::new();
    // Case by case, because some cases need their own options (trust anchors).
    for dir in cases() {
        let capture = capture_of(&dir).unwrap();
        let mut args: Vec<String> = vec!["replay".into(), "--quiet".into()];
        args.extend(["--workers".into(), workers.into()]);
        args.extend(case_args(&dir));
        args.extend(["--sessions".into(), sessions.to_string_lossy().into()]);
        args.extend(["--metrics-file".into(), metrics.to_string_lossy().into()]);
        args.push(capture.to_string_lossy().into());
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = mailtap(&argv);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // mailtap's own series: the process_* ones measure the process, not the traffic.
        let text = std::fs::read_to_string(&metrics).unwrap();
        for line in text.lines().filter(|l| l.contains("mailtap_")) {
            exposition.push_str(line);
            exposition.push('\n');
        }
    }
    // The session log is appended to, run after run: it holds every case now.
    records.extend(
        std::fs::read_to_string(&sessions)
            .unwrap()
            .lines()
            .map(String::from),
    );
    let _ = std::fs::remove_file(sessions);
    let _ = std::fs::remove_file(metrics);
    records.sort();
    (records, exposition)
}

#[test]
fn worker_threads_give_what_one_thread_gives() {
    let (inline_records, inline_metrics) = replay("0");
    assert!(inline_records.len() > 50);
    for workers in ["1", "2", "3", "4"] {
        let (records, metrics) = replay(workers);
        assert_eq!(inline_records, records, "--workers {workers}");
        assert_eq!(inline_metrics, metrics, "--workers {workers}");
    }
}

#[test]
fn a_whole_directory_gives_the_same_with_worker_threads() {
    let fixtures = common::fixtures();
    let run = |w: &str| {
        let s = scratch(&format!("dir-{w}.jsonl"));
        let out = mailtap(&[
            "replay",
            "--quiet",
            "--format",
            "json",
            "--workers",
            w,
            "--sessions",
            &s.to_string_lossy(),
            &fixtures.to_string_lossy(),
        ]);
        assert!(out.status.success());
        let mut lines: Vec<String> = std::fs::read_to_string(&s)
            .unwrap()
            .lines()
            .map(String::from)
            .collect();
        lines.sort();
        let _ = std::fs::remove_file(s);
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (
            lines,
            report["protocols"].clone(),
            report["health"]["packets"].clone(),
        )
    };
    let inline = run("0");
    assert_eq!(inline, run("1"));
    assert_eq!(inline, run("4"));
}
