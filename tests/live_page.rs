//! `/` and `/report.json` on the HTTP server of the real binary: the report so far, the same as
//! the JSON report the replay prints, behind the same `--web.config.file` (TLS and basic
//! authentication) as every other path.

mod common;
mod http_support;

use base64::Engine as _;
use http_support::{fixture, request, scratch_dir, serve, tls_client};
use serde_json::Value;
use std::process::Stdio;

fn basic(user: &str, password: &str) -> String {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {token}")
}

#[test]
fn report_json_is_the_report_the_replay_printed() {
    let dir = scratch_dir("report-json");
    let printed = dir.join("report.json");
    let inputs = [fixture("smtp-starttls-25"), fixture("imap-login-cleartext")];
    let mut args: Vec<&str> = vec!["--format", "json", "--linger", "120"];
    args.extend(inputs.iter().map(String::as_str));
    let mut s = http_support::serve_while_replaying(
        &args,
        Stdio::from(std::fs::File::create(&printed).unwrap()),
    );
    // The report is printed when the replay is done, before the linger.
    let mut report = String::new();
    for _ in 0..600 {
        report = std::fs::read_to_string(&printed).unwrap_or_default();
        if report.ends_with("}\n") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let printed: Value = serde_json::from_str(&report).expect("the printed report");
    let r = request(s.addr, "GET", "/report.json", &[], None).expect("answered");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let served: Value = serde_json::from_str(&r.body).expect("JSON");
    assert_eq!(served, printed);
    // Sessions from the captures (tshark: one STARTTLS SMTP session, one IMAP session with a
    // cleartext LOGIN).
    assert_eq!(served["protocols"][0]["sessions"]["starttls"], 1);
    assert_eq!(served["protocols"][3]["cleartext_auth"]["LOGIN"], 1);
    let page = request(s.addr, "GET", "/", &[], None).expect("answered");
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(page
        .body
        .contains("data-protocol=\"smtp\" data-encryption=\"starttls\">1</td>"));
    s.terminate();
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_page_and_report_json_are_behind_tls_and_basic_auth() {
    let dir = scratch_dir("live-auth");
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
    std::fs::write(dir.join("server.crt"), cert.pem()).unwrap();
    std::fs::write(dir.join("server.key"), signing_key.serialize_pem()).unwrap();
    // Cost 4: the test binary is unoptimised, and the cost is not what is tested.
    let hash = bcrypt::hash("correct horse", 4).unwrap();
    let cfg = dir.join("web.yml");
    std::fs::write(
        &cfg,
        format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n\
             basic_auth_users:\n  analyst: {hash}\n"
        ),
    )
    .unwrap();
    let s = serve(
        &[
            "--web.config.file",
            cfg.to_str().unwrap(),
            &fixture("smtp-starttls-25"),
        ],
        false,
    );
    let tls = tls_client(
        &cert.pem(),
        None,
        &[&rustls::version::TLS13, &rustls::version::TLS12],
    );
    let good = basic("analyst", "correct horse");
    for path in ["/", "/report.json"] {
        let r = request(s.addr, "GET", path, &[], Some(tls.clone())).expect("answered");
        assert_eq!(r.status, 401, "{path}");
        assert!(!r.body.contains("smtp"), "{path}: {}", r.body);
        let r = request(
            s.addr,
            "GET",
            path,
            &[("Authorization", &basic("analyst", "wrong"))],
            Some(tls.clone()),
        )
        .expect("answered");
        assert_eq!(r.status, 401, "{path}");
        let r = request(
            s.addr,
            "GET",
            path,
            &[("Authorization", &good)],
            Some(tls.clone()),
        )
        .expect("answered");
        assert_eq!(r.status, 200, "{path}");
        assert!(r.body.contains("starttls"), "{path}");
    }
    // Plain HTTP is not spoken on a TLS listener.
    assert!(request(s.addr, "GET", "/", &[], None).map_or(true, |r| r.status != 200));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_telemetry_path_cannot_hide_the_json_report() {
    let out = common::mailtap(&[
        "replay",
        "--quiet",
        "--web.listen-address",
        "127.0.0.1:0",
        "--web.telemetry-path",
        "/report.json",
        &fixture("smtp-starttls-25"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/report.json"));
}
