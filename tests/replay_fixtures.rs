//! End to end: replay every real capture in fixtures/ and compare with what its generator
//! recorded (transport facts from tshark, outcomes from the case's own configuration).

mod common;

use common::{assert_subset, case, cases, read_jsonl, replay_case};
use serde_json::Value;
use std::path::Path;

/// Every field the expected record names must match exactly, inside nested objects too; the
/// record may carry more (fields its generator cannot derive independently, e.g. `ja4`).
fn assert_records(dir: &Path, got: &[Value], want: &[Value]) {
    let name = dir.file_name().unwrap().to_string_lossy();
    assert_eq!(
        got.len(),
        want.len(),
        "{name}: number of sessions\n got: {got:#?}"
    );
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_subset(&format!("{name}: session {i}\n record: {g:#}\n at"), g, w);
    }
}

#[test]
fn every_fixture_gives_its_expected_records() {
    let all = cases();
    assert!(all.len() >= 10, "fixtures/ holds the cases");
    for dir in all {
        let expected = dir.join("expected.jsonl");
        if !expected.exists() {
            continue;
        }
        let (got, _) = replay_case(&dir);
        assert_records(&dir, &got, &read_jsonl(&expected));
    }
}

/// The report's per-protocol transport totals and packet counts agree with tshark's.
#[test]
fn every_fixture_report_matches_its_summary() {
    for dir in cases() {
        let Ok(text) = std::fs::read_to_string(dir.join("summary.json")) else {
            continue;
        };
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let want: Value = serde_json::from_str(&text).expect("summary is JSON");
        let (_, report) = replay_case(&dir);
        let packets = &report["health"]["packets"];
        let total: u64 = packets
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(total, want["packets"].as_u64().unwrap(), "{name}: packets");
        assert_eq!(
            total - packets["mail"].as_u64().unwrap(),
            want["other_packets"].as_u64().unwrap(),
            "{name}: packets not on a mail connection"
        );
        for p in report["protocols"].as_array().unwrap() {
            let proto = p["protocol"].as_str().unwrap();
            let zero = serde_json::json!({"connections": 0, "packets": 0, "bytes": 0});
            let w = want["by_protocol"].get(proto).unwrap_or(&zero);
            for field in ["connections", "packets", "bytes"] {
                assert_eq!(p[field], w[field], "{name}: {proto} {field}");
            }
        }
    }
}

fn packets(report: &Value, result: &str) -> u64 {
    report["health"]["packets"][result].as_u64().unwrap()
}

#[test]
fn background_traffic_is_counted_by_reason() {
    let (_, report) = replay_case(&case("mixed-background"));
    assert!(packets(&report, "not_tcp") > 0, "UDP and ICMP");
    assert!(packets(&report, "not_mail_port") > 0, "HTTP");
}

#[test]
fn midstream_pickup_is_named() {
    let (got, _) = replay_case(&case("midstream"));
    assert_eq!(got.len(), 1);
    let anomalies = got[0]["anomalies"].as_array().unwrap();
    assert!(
        anomalies.contains(&Value::from("midstream_pickup")),
        "{:#}",
        got[0]
    );
}

#[test]
fn one_sided_capture_is_named() {
    let (got, _) = replay_case(&case("one-sided"));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["bytes_to_client"], 0);
    let anomalies = got[0]["anomalies"].as_array().unwrap();
    assert!(
        anomalies.contains(&Value::from("one_sided")),
        "{:#}",
        got[0]
    );
}

fn protection(report: &Value, protocol: &str, attack: &str) -> (u64, u64, u64) {
    let row = report["protection"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["protocol"] == protocol && r["attack"] == attack)
        .unwrap_or_else(|| panic!("no {protocol}/{attack} row"));
    let n = |k: &str| row[k].as_u64().unwrap();
    (n("protected"), n("exposed"), n("unknown"))
}

#[test]
fn report_judges_each_attack() {
    let (_, pq) = replay_case(&case("tls13-pq-x25519mlkem768"));
    assert_eq!(protection(&pq, "submissions", "passive"), (1, 0, 0));
    assert_eq!(
        protection(&pq, "submissions", "active"),
        (0, 0, 1),
        "TLS 1.3: hidden"
    );
    assert_eq!(protection(&pq, "submissions", "later"), (1, 0, 0));
    assert_eq!(protection(&pq, "submissions", "quantum_later"), (1, 0, 0));
    assert_eq!(pq["tls"]["post_quantum"], 1);

    let (_, valid) = replay_case(&case("cert-valid-test-ca"));
    assert_eq!(protection(&valid, "submissions", "active"), (1, 0, 0));
    let (_, rsa) = replay_case(&case("tls12-rsa-kx"));
    assert_eq!(protection(&rsa, "pop3s", "later"), (0, 1, 0));
    assert_eq!(rsa["tls"]["weaknesses"]["non_forward_secret"], 1);

    let (_, plain) = replay_case(&case("smtp-plaintext-no-starttls"));
    assert_eq!(protection(&plain, "smtp", "passive"), (0, 1, 0));

    // Past the connection only end-to-end encryption protects: a plain message sent in clear
    // is exposed there; what crossed inside TLS was not seen.
    for attack in ["provider", "at_rest"] {
        assert_eq!(protection(&plain, "smtp", attack), (0, 1, 0), "{attack}");
        assert_eq!(
            protection(&pq, "submissions", attack),
            (0, 0, 1),
            "{attack}"
        );
    }
}
