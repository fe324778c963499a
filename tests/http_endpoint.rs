//! The HTTP endpoint of the real binary, over loopback: landing page, `/metrics` after a
//! replay, `/servers`, methods and unknown paths.

mod http_support;

use http_support::{fixture, get, request, serve};
use serde_json::{json, Value};
use std::collections::BTreeMap;

#[test]
fn landing_page_names_mailtap_and_links_its_paths() {
    // The address comes from the environment this time: every flag has its variable.
    let s = serve(&[&fixture("smtp-starttls-25")], true);
    let r = get(s.addr, "/");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(r.body.contains("mailtap"), "{}", r.body);
    assert!(r.body.contains(env!("CARGO_PKG_VERSION")), "{}", r.body);
    assert!(r.body.contains("href=\"/metrics\""), "{}", r.body);
    assert!(r.body.contains("href=\"/servers\""), "{}", r.body);
}

#[test]
fn metrics_count_the_replayed_sessions() {
    let s = serve(
        &[
            &fixture("smtp-starttls-25"),
            &fixture("submission-starttls-587"),
            &fixture("smtp-plaintext-no-starttls"),
        ],
        false,
    );
    let r = get(s.addr, "/metrics");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let samples: BTreeMap<&str, &str> = r
        .body
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .collect();
    let value = |series: &str| *samples.get(series).unwrap_or(&"<absent>");
    assert_eq!(
        value(r#"mailtap_sessions_total{encryption="starttls",protocol="smtp"}"#),
        "1"
    );
    assert_eq!(
        value(r#"mailtap_sessions_total{encryption="starttls",protocol="submission"}"#),
        "1"
    );
    assert_eq!(
        value(r#"mailtap_sessions_total{encryption="plaintext",protocol="smtp"}"#),
        "1"
    );
    assert_eq!(
        value(r#"mailtap_sessions_total{encryption="plaintext",protocol="imap"}"#),
        "0"
    );
    assert_eq!(
        value(r#"mailtap_starttls_offered_total{protocol="smtp"}"#),
        "1"
    );
    let build: Vec<(&&str, &&str)> = samples
        .iter()
        .filter(|(k, _)| k.starts_with("mailtap_build_info{"))
        .collect();
    assert_eq!(build.len(), 1, "{build:?}");
    assert!(build[0].0.contains(r#"version="0.1.0""#), "{build:?}");
    assert_eq!(*build[0].1, "1");
    // Health counters are published too.
    let decoded: u64 = samples
        .iter()
        .filter(|(k, _)| k.starts_with("mailtap_packets_total{"))
        .map(|(_, v)| v.parse::<u64>().unwrap_or(0))
        .sum();
    assert!(decoded > 0, "{}", r.body);
}

#[test]
fn servers_lists_each_server_most_plaintext_first() {
    let inputs = [
        "smtp-starttls-25",
        "smtp-plaintext-no-starttls",
        "pop3-user-pass",
        "mixed-background",
    ];
    let dir = http_support::scratch_dir("servers");
    let sessions = dir.join("sessions.jsonl");
    let sessions_arg = sessions.to_string_lossy().into_owned();
    let mut args: Vec<String> = vec!["--sessions".into(), sessions_arg];
    args.extend(inputs.iter().map(|c| fixture(c)));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let s = serve(&argv, false);
    let r = get(s.addr, "/servers");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let got: Value = serde_json::from_str(&r.body).expect("JSON");

    // Packet times from the session log: the first start and the last end per server.
    let text = std::fs::read_to_string(&sessions).expect("session log");
    let records: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a record"))
        .collect();
    let seen = |server: &str| {
        let of: Vec<&Value> = records.iter().filter(|r| r["server"] == server).collect();
        let first = of
            .iter()
            .filter_map(|r| r["ts_start"].as_str())
            .min()
            .unwrap();
        let last = of
            .iter()
            .filter_map(|r| r["ts_end"].as_str())
            .max()
            .unwrap();
        (first.to_string(), last.to_string())
    };
    let by_outcome = |outcome: &str, n: u64| {
        let mut m = serde_json::Map::new();
        for o in [
            "implicit_tls",
            "plaintext",
            "starttls",
            "starttls_refused",
            "starttls_stripped",
            "tls_failed",
            "unknown",
        ] {
            m.insert(o.into(), json!(if o == outcome { n } else { 0 }));
        }
        Value::Object(m)
    };
    let entry = |server: &str, protocol: &str, s: Value, offered: u64, tls: Option<[&str; 3]>| {
        let (first, last) = seen(server);
        // Sessions whose record lists a cleartext login.
        let logins = records
            .iter()
            .filter(|r| r["server"] == server)
            .filter(|r| {
                r["cleartext_auth"]
                    .as_array()
                    .is_some_and(|a| !a.is_empty())
            })
            .count();
        json!({
            "server": server, "protocol": protocol, "sessions": s,
            "starttls_offered": offered,
            "cleartext_auth_sessions": logins,
            "last_tls_version": tls.map(|t| t[0]),
            "last_cipher_suite": tls.map(|t| t[1]),
            "last_certificate_status": tls.map(|t| t[2]),
            "first_seen": first, "last_seen": last,
        })
    };
    let want = json!({
        "capacity": 10000,
        "evicted": 0,
        "servers": [
            entry("127.0.0.2:25", "smtp", by_outcome("plaintext", 2), 0, None),
            entry("127.0.0.10:110", "pop3", by_outcome("plaintext", 1), 0, None),
            entry(
                "127.0.0.3:25",
                "smtp",
                by_outcome("starttls", 1),
                1,
                Some(["TLSv1.3", "TLS_AES_256_GCM_SHA384", "hidden"])
            ),
        ],
    });
    assert_eq!(got, want, "{:#}", got);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn head_unknown_paths_and_other_methods() {
    let s = serve(&[&fixture("smtp-starttls-25")], false);
    let get_metrics = get(s.addr, "/metrics");
    let head = request(s.addr, "HEAD", "/metrics", &[], None).expect("answered");
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty(), "HEAD has no body: {:?}", head.body);
    assert_eq!(
        head.header("content-type"),
        get_metrics.header("content-type")
    );
    assert!(head.header("content-length").is_some());

    let missing = get(s.addr, "/nothing-here");
    assert_eq!(missing.status, 404);
    let missing = get(s.addr, "/metrics/");
    assert_eq!(missing.status, 404);

    for method in ["POST", "PUT", "DELETE"] {
        let r = request(s.addr, method, "/metrics", &[("Content-Length", "0")], None)
            .expect("answered");
        assert_eq!(r.status, 405, "{method}");
        assert_eq!(r.header("allow"), Some("GET, HEAD"), "{method}");
    }
}

#[test]
fn telemetry_path_moves_the_metrics() {
    let s = serve(
        &[
            "--web.telemetry-path",
            "/probe",
            &fixture("smtp-starttls-25"),
        ],
        false,
    );
    assert_eq!(get(s.addr, "/metrics").status, 404);
    let r = get(s.addr, "/probe");
    assert_eq!(r.status, 200);
    assert!(r.body.contains("mailtap_sessions_total"));
    assert!(get(s.addr, "/").body.contains("href=\"/probe\""));
}

#[test]
fn replay_report_lists_the_servers() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mailtap"))
        .args(["replay", "--quiet", "--format", "json"])
        .arg(fixture("smtp-plaintext-no-starttls"))
        .output()
        .expect("runs");
    assert!(out.status.success());
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(report["servers"]["servers"][0]["server"], "127.0.0.2:25");
    assert_eq!(report["servers"]["servers"][0]["sessions"]["plaintext"], 1);

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mailtap"))
        .args(["replay", "--quiet"])
        .arg(fixture("smtp-plaintext-no-starttls"))
        .output()
        .expect("runs");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("servers with the most plaintext sessions (top 1 of 1;"),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("127.0.0.2:25") && l.contains("smtp")),
        "{table}"
    );
}
