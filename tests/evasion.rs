//! End to end: evasion and malformed-input cases (fixtures/evasion-*, made by
//! fixtures/gen/evasion.py from real sessions) give their exact expected records, bad input is
//! counted by reason, and a 100 MB cleartext message goes through in constant memory.

mod common;

use common::pcapgen::{big_message, PcapWriter};
use common::{
    assert_subset, capture_of, fixtures, mailtap, mailtap_ok, read_jsonl, replay_case, scratch,
};
use serde_json::Value;
use std::io::BufWriter;
use std::net::SocketAddrV4;
use std::path::PathBuf;

fn evasion_cases() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("evasion-"))
        })
        .collect();
    out.sort();
    out
}

#[test]
fn every_evasion_case_gives_its_exact_record() {
    let cases = evasion_cases();
    assert!(cases.len() >= 12, "the evasion cases are there");
    for dir in cases {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let want = read_jsonl(&dir.join("expected.jsonl"));
        let (got, _) = replay_case(&dir);
        assert_eq!(got.len(), want.len(), "{name}: sessions\n{got:#?}");
        for (g, w) in got.iter().zip(&want) {
            let keys = |v: &Value| {
                let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
                k.sort();
                k
            };
            assert_eq!(keys(g), keys(w), "{name}: fields");
            // Same top-level fields (above), each matching (nested: the fields named).
            assert_subset(&name, g, w);
        }
    }
}

fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series}"))
}

/// All bad inputs in one run: each yields its record, the run goes on to the end, and the
/// sessions with parse-level anomalies are counted by protocol.
#[test]
fn bad_input_is_counted_by_reason_and_the_sensor_keeps_going() {
    let cases = evasion_cases();
    let metrics = scratch("evasion.prom");
    let sessions = scratch("evasion.jsonl");
    let mut args: Vec<String> = vec![
        "replay".into(),
        "--quiet".into(),
        "--format".into(),
        "json".into(),
    ];
    args.extend([
        "--metrics-file".into(),
        metrics.to_string_lossy().into_owned(),
    ]);
    args.extend(["--sessions".into(), sessions.to_string_lossy().into_owned()]);
    for dir in &cases {
        args.push(capture_of(dir).unwrap().to_string_lossy().into_owned());
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = mailtap(&argv);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let records = read_jsonl(&sessions);
    assert_eq!(records.len(), cases.len(), "one record per case, none lost");
    let text = std::fs::read_to_string(&metrics).unwrap();
    // smtp: the 1 MiB line; submissions: the zero-length and the oversized TLS record.
    assert_eq!(
        metric(&text, r#"mailtap_parse_errors_total{protocol="smtp"}"#),
        1
    );
    assert_eq!(
        metric(
            &text,
            r#"mailtap_parse_errors_total{protocol="submissions"}"#
        ),
        2
    );
    assert_eq!(
        metric(&text, r#"mailtap_parse_errors_total{protocol="imap"}"#),
        0
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let anomalies = &report["health"]["anomalies"];
    for a in [
        "conflicting_overlap",
        "out_of_window",
        "inexact_reset",
        "line_too_long",
        "tls_record_length",
        "handshake_too_large",
        "server_hello_first",
        "client_hello_both_ways",
    ] {
        assert!(anomalies[a].as_u64().unwrap_or(0) >= 1, "{a}: {anomalies}");
    }
    let _ = std::fs::remove_file(metrics);
    let _ = std::fs::remove_file(sessions);
}

/// A 100 MB cleartext message (made here, not committed) is streamed through: the record is
/// right and the replay's peak RSS stays far below the message size.
#[test]
fn a_100_mb_message_goes_through_in_constant_memory() {
    const BODY: u64 = 100 * 1024 * 1024;
    const MAX_RSS: u64 = 50 * 1024 * 1024;
    let pcap = scratch("big-message.pcap");
    let client: SocketAddrV4 = "192.0.2.10:50000".parse().unwrap();
    let server: SocketAddrV4 = "198.51.100.25:25".parse().unwrap();
    let file = BufWriter::new(std::fs::File::create(&pcap).unwrap());
    let mut w = PcapWriter::new(file).unwrap();
    let conv = big_message(&mut w, client, server, 1_795_896_000_000_000, BODY).unwrap();
    drop(w);
    let sessions = scratch("big-message.jsonl");
    let out = mailtap_ok(&[
        "replay",
        "--quiet",
        "--format",
        "json",
        "--sessions",
        sessions.to_str().unwrap(),
        pcap.to_str().unwrap(),
    ]);
    let _ = std::fs::remove_file(&pcap);
    let records = read_jsonl(&sessions);
    let _ = std::fs::remove_file(&sessions);
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!(r["encryption"], "plaintext");
    assert_eq!(r["cleartext_messages"], 1);
    assert_eq!(r["bytes_to_server"], conv.to_server);
    assert_eq!(r["bytes_to_client"], conv.to_client);
    assert_eq!(r["anomalies"], serde_json::json!([]));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rss = report["health"]["peak_rss_bytes"]
        .as_u64()
        .expect("Linux reports VmHWM");
    eprintln!("100 MB message: peak RSS {} KiB", rss / 1024);
    assert!(rss < MAX_RSS, "peak RSS {rss} bytes");
}
