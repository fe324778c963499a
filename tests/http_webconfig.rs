//! `--web.config.file` end to end: TLS with a certificate made here (the client trusts only
//! it), client certificates, basic authentication, and bad files.

mod http_support;

use base64::Engine as _;
use http_support::{fixture, request, scratch_dir, serve, tls_client};
use rcgen::{BasicConstraints, CertificateParams, CertifiedKey, IsCa, Issuer, KeyPair};
use std::path::Path;

const ALL_VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// A self-signed server certificate for localhost, written as server.crt and server.key.
fn server_cert(dir: &Path) -> String {
    let CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
    std::fs::write(dir.join("server.crt"), cert.pem()).unwrap();
    std::fs::write(dir.join("server.key"), signing_key.serialize_pem()).unwrap();
    cert.pem()
}

/// A client CA (written as clients-ca.crt) and a client certificate it signed (PEM, key).
fn client_ca_and_cert(dir: &Path) -> (String, String) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    std::fs::write(dir.join("clients-ca.crt"), ca_cert.pem()).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let client_key = KeyPair::generate().unwrap();
    let client = CertificateParams::new(vec!["prometheus".to_string()])
        .unwrap()
        .signed_by(&client_key, &issuer)
        .unwrap();
    (client.pem(), client_key.serialize_pem())
}

fn write_config(dir: &Path, yaml: &str) -> String {
    let path = dir.join("web.yml");
    std::fs::write(&path, yaml).unwrap();
    path.to_string_lossy().into_owned()
}

fn basic(user: &str, password: &str) -> String {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {token}")
}

#[test]
fn tls_serves_with_the_configured_certificate() {
    let dir = scratch_dir("tls");
    let ca = server_cert(&dir);
    // Relative paths are relative to the config file.
    let cfg = write_config(
        &dir,
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n",
    );
    let s = serve(
        &["--web.config.file", &cfg, &fixture("smtp-starttls-25")],
        false,
    );
    let client = tls_client(&ca, None, ALL_VERSIONS);
    let r = request(s.addr, "GET", "/metrics", &[], Some(client)).expect("HTTPS works");
    assert_eq!(r.status, 200);
    assert!(r
        .body
        .contains(r#"mailtap_sessions_total{encryption="starttls",protocol="smtp"} 1"#));
    // Plain HTTP on a TLS port gets no metrics.
    let plain = request(s.addr, "GET", "/metrics", &[], None);
    assert!(plain.map_or(true, |r| r.status != 200));
    // A client that does not trust this certificate refuses it.
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let stranger = tls_client(&other.cert.pem(), None, ALL_VERSIONS);
    assert!(request(s.addr, "GET", "/metrics", &[], Some(stranger)).is_err());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn min_version_refuses_older_clients() {
    let dir = scratch_dir("minver");
    let ca = server_cert(&dir);
    let cfg = write_config(
        &dir,
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  min_version: TLS13\n",
    );
    let s = serve(
        &["--web.config.file", &cfg, &fixture("smtp-starttls-25")],
        false,
    );
    let tls12 = tls_client(&ca, None, &[&rustls::version::TLS12]);
    assert!(request(s.addr, "GET", "/", &[], Some(tls12)).is_err());
    let tls13 = tls_client(&ca, None, &[&rustls::version::TLS13]);
    let r = request(s.addr, "GET", "/", &[], Some(tls13)).expect("TLS 1.3 works");
    assert_eq!(r.status, 200);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn client_certificates_are_required_and_verified() {
    let dir = scratch_dir("mtls");
    let ca = server_cert(&dir);
    let (client_cert, client_key) = client_ca_and_cert(&dir);
    let cfg = write_config(
        &dir,
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  \
         client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: clients-ca.crt\n",
    );
    let s = serve(
        &["--web.config.file", &cfg, &fixture("smtp-starttls-25")],
        false,
    );
    let anonymous = tls_client(&ca, None, ALL_VERSIONS);
    let refused = request(s.addr, "GET", "/metrics", &[], Some(anonymous));
    assert!(refused.is_err(), "{refused:?}");
    // A certificate from another CA is refused too.
    let other_dir = scratch_dir("mtls-other");
    let (other_cert, other_key) = client_ca_and_cert(&other_dir);
    let stranger = tls_client(&ca, Some((&other_cert, &other_key)), ALL_VERSIONS);
    assert!(request(s.addr, "GET", "/metrics", &[], Some(stranger)).is_err());
    let known = tls_client(&ca, Some((&client_cert, &client_key)), ALL_VERSIONS);
    let r = request(s.addr, "GET", "/metrics", &[], Some(known)).expect("mTLS works");
    assert_eq!(r.status, 200);
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_dir_all(other_dir);
}

#[test]
fn basic_auth_lets_in_only_the_right_password() {
    let dir = scratch_dir("auth");
    // Cost 4: the test binary is unoptimised, and the cost is not what is tested.
    let hash = bcrypt::hash("correct horse", 4).unwrap();
    let cfg = write_config(&dir, &format!("basic_auth_users:\n  prometheus: {hash}\n"));
    let s = serve(
        &["--web.config.file", &cfg, &fixture("smtp-starttls-25")],
        false,
    );
    let ask = |auth: Option<String>| {
        let headers: Vec<(&str, &str)> = auth
            .as_deref()
            .map(|a| vec![("Authorization", a)])
            .unwrap_or_default();
        request(s.addr, "GET", "/metrics", &headers, None).expect("answered")
    };
    for auth in [
        None,
        Some(basic("prometheus", "wrong")),
        Some(basic("someone", "correct horse")),
        Some("Bearer abc".to_string()),
    ] {
        let r = ask(auth.clone());
        assert_eq!(r.status, 401, "{auth:?}");
        assert_eq!(r.header("www-authenticate"), Some("Basic"), "{auth:?}");
        assert!(!r.body.contains("mailtap_"), "{auth:?}");
    }
    let r = ask(Some(basic("prometheus", "correct horse")));
    assert_eq!(r.status, 200);
    assert!(r
        .body
        .contains(r#"mailtap_sessions_total{encryption="starttls",protocol="smtp"} 1"#));
    // The landing page and the inventory are behind the same door.
    let r = request(s.addr, "GET", "/servers", &[], None).expect("answered");
    assert_eq!(r.status, 401);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn bad_config_files_exit_2_naming_the_file_and_key() {
    let dir = scratch_dir("bad");
    let cases: [(&str, &str); 4] = [
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  clent_auth_type: x\n",
            "clent_auth_type",
        ),
        (
            "basic_auth_users:\n  prometheus: not-a-hash\n",
            "basic_auth_users.prometheus",
        ),
        (
            "tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n",
            "missing.crt",
        ),
        ("tls_server_config: [\n", "web.yml"),
    ];
    for (yaml, named) in cases {
        let cfg = write_config(&dir, yaml);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_mailtap"))
            .args(["replay", "--quiet", "--web.listen-address", "127.0.0.1:0"])
            .args(["--web.config.file", &cfg])
            .arg(fixture("smtp-starttls-25"))
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{yaml}: {stderr}");
        assert!(stderr.contains(&cfg), "{yaml}: names the file: {stderr}");
        assert!(stderr.contains(named), "{yaml}: names {named}: {stderr}");
        assert!(out.stdout.is_empty(), "no report after a bad config");
    }
    let missing = dir.join("absent.yml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mailtap"))
        .args(["replay", "--quiet", "--web.listen-address", "127.0.0.1:0"])
        .arg("--web.config.file")
        .arg(&missing)
        .arg(fixture("smtp-starttls-25"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("absent.yml"));
    let _ = std::fs::remove_dir_all(dir);
}
