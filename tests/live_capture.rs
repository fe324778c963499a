//! Live capture end to end (feature `live`, root): real clients and servers in two network
//! namespaces joined by a veth pair, `mailtap capture` on the client's end, then SIGTERM.
//!
//! Each test makes its own namespaces (named after the test process and a counter), so tests
//! run in parallel and leave nothing behind; the host's own interfaces are never touched.
//! Needs `ip` (iproute2), `python3` and `openssl`. Without root the tests say so and pass.
#![cfg(feature = "live")]

mod common;

use common::{read_jsonl, scratch};
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

const SMTP_PORT: u16 = 2525;
const SMTPS_PORT: u16 = 4650;

fn is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    uids(&status).get(1).is_some_and(|euid| euid == "0")
}

/// The `Uid:` line of a `/proc/<pid>/status`: real, effective, saved, filesystem.
fn uids(status: &str) -> Vec<String> {
    field(status, "Uid:")
}

fn field(status: &str, name: &str) -> Vec<String> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .map(|rest| rest.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

macro_rules! require_root {
    () => {
        if !is_root() {
            eprintln!("SKIPPED: live capture tests need root (network namespaces, raw sockets)");
            return;
        }
    };
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn ip(args: &[&str]) {
    run(Command::new("ip").args(args));
}

/// Two namespaces, client and server, joined by a veth pair: client 192.0.2.1, server
/// 192.0.2.2. Deleted (with the pair) when dropped.
struct Link {
    client_ns: String,
    server_ns: String,
    client_if: String,
}

const CLIENT_IP: &str = "192.0.2.1";
const SERVER_IP: &str = "192.0.2.2";

impl Link {
    fn new() -> Link {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let tag = format!(
            "{}x{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let link = Link {
            client_ns: format!("mailtap-{tag}-c"),
            server_ns: format!("mailtap-{tag}-s"),
            client_if: format!("mt{tag}c"),
        };
        let server_if = format!("mt{tag}s");
        assert!(server_if.len() <= 15, "interface name {server_if} too long");
        for ns in [&link.client_ns, &link.server_ns] {
            ip(&["netns", "add", ns]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        ip(&[
            "link",
            "add",
            &link.client_if,
            "netns",
            &link.client_ns,
            "type",
            "veth",
            "peer",
            "name",
            &server_if,
            "netns",
            &link.server_ns,
        ]);
        for (ns, dev, addr) in [
            (&link.client_ns, &link.client_if, CLIENT_IP),
            (&link.server_ns, &server_if, SERVER_IP),
        ] {
            ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", dev]);
            ip(&["-n", ns, "link", "set", dev, "up"]);
        }
        link
    }

    /// A command run inside a namespace (`ip netns exec` execs it: same pid).
    fn cmd(&self, ns: &str, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns, program]);
        c
    }

    fn client(&self, program: &str) -> Command {
        self.cmd(&self.client_ns, program)
    }

    fn server(&self, program: &str) -> Command {
        self.cmd(&self.server_ns, program)
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        for ns in [&self.client_ns, &self.server_ns] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// A child killed when dropped (a failed assertion must not leave servers running).
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Lines of a child's stream, as they come.
fn lines_of<R: std::io::Read + Send + 'static>(r: R) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Wait for a line containing `want`; every line seen is returned for error messages.
fn wait_for_line(rx: &Receiver<String>, want: &str, seen: &mut Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) => {
                let found = line.contains(want);
                seen.push(line);
                if found {
                    return;
                }
            }
            Err(_) => break,
        }
    }
    panic!("no line with {want:?}; saw: {seen:#?}");
}

fn first_line(out: ChildStdout) -> String {
    let mut line = String::new();
    BufReader::new(out).read_line(&mut line).expect("read");
    line.trim().to_string()
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "mailtap did not exit within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn sigterm(child: &Child) {
    run(Command::new("kill").args(["-TERM", &child.id().to_string()]));
}

fn support(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/live")
        .join(file)
}

/// A self-signed P-256 certificate for mail.example.test: (cert, key).
fn certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    run(Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=mail.example.test",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert));
    (cert, key)
}

/// `mailtap capture` on the client's end of the link, started and ready (its stderr says so).
fn start_mailtap(link: &Link, extra: &[&str]) -> (Guard, Receiver<String>, Vec<String>) {
    let mut cmd = link.client(env!("CARGO_BIN_EXE_mailtap"));
    cmd.args(["capture", "-i", &link.client_if])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("mailtap starts");
    let stderr = lines_of(child.stderr.take().expect("stderr"));
    let mut seen = Vec::new();
    wait_for_line(&stderr, "capturing on", &mut seen);
    (Guard(child), stderr, seen)
}

fn records_by_client_port(records: &[Value]) -> Vec<(String, &Value)> {
    records
        .iter()
        .map(|r| {
            let client = r["client"].as_str().unwrap_or_default();
            let port = client.rsplit(':').next().unwrap_or_default().to_string();
            (port, r)
        })
        .collect()
}

/// Every field named in `want` matches in `got` (objects compared field by field).
fn assert_fields(what: &str, got: &Value, want: &Value) {
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => {
            for (k, v) in w {
                assert_fields(&format!("{what}.{k}"), g.get(k).unwrap_or(&Value::Null), v);
            }
        }
        _ => assert_eq!(got, want, "{what}"),
    }
}

fn wait_for_records(path: &Path, n: usize, within: Duration) -> Vec<Value> {
    let deadline = Instant::now() + within;
    loop {
        let records = if path.exists() {
            read_jsonl(path)
        } else {
            Vec::new()
        };
        if records.len() >= n || Instant::now() >= deadline {
            return records;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// mailtap's and Prometheus' HTTP ports inside the client namespace (private to it).
const WEB_PORT: u16 = 19110;
const PROMETHEUS_PORT: u16 = 19111;

/// Debian's `prometheus` in the client namespace, scraping mailtap every second; `None` when it
/// is not installed (CI sets MAILTAP_REQUIRE_PROMETHEUS=1, which makes that a failure).
fn start_prometheus(link: &Link, dir: &Path) -> Option<Guard> {
    let installed = Command::new("prometheus")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !installed {
        assert!(
            std::env::var_os("MAILTAP_REQUIRE_PROMETHEUS").is_none_or(|v| v != "1"),
            "MAILTAP_REQUIRE_PROMETHEUS=1 but `prometheus` is not installed"
        );
        eprintln!("prometheus part skipped: `prometheus` is not installed");
        return None;
    }
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: mailtap\n    static_configs:\n\
             \x20     - targets: ['127.0.0.1:{WEB_PORT}']\n"
        ),
    )
    .expect("prometheus.yml");
    let mut cmd = link.client("prometheus");
    cmd.arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{PROMETHEUS_PORT}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    Some(Guard(cmd.spawn().expect("prometheus starts")))
}

/// One instant query through Prometheus' HTTP API (from inside the namespace).
fn promql(link: &Link, query: &str) -> Option<Value> {
    let fetch = format!(
        "import sys, urllib.parse, urllib.request\n\
         q = urllib.parse.quote(sys.argv[1])\n\
         u = 'http://127.0.0.1:{PROMETHEUS_PORT}/api/v1/query?query=' + q\n\
         print(urllib.request.urlopen(u, timeout=5).read().decode())"
    );
    let out = link
        .client("python3")
        .args(["-c", &fetch, query])
        .output()
        .ok()?;
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    (v["status"] == "success").then(|| v["data"]["result"].clone())
}

/// The value of a query whose result is one sample, as a whole number.
fn scalar(link: &Link, query: &str) -> Option<u64> {
    let r = promql(link, query)?;
    r.get(0)?["value"][1]
        .as_str()?
        .parse::<f64>()
        .ok()
        .map(|f| f as u64)
}

fn assert_prometheus_sees_the_sessions(link: &Link, _prometheus: &Guard) {
    // Scraped at least once after the three sessions were counted.
    let start = std::time::Instant::now();
    while scalar(link, "sum(mailtap_sessions_total)") != Some(3) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "Prometheus never saw 3 sessions: {:?}",
            promql(link, "mailtap_sessions_total > 0")
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let by_outcome = promql(
        link,
        "sum by (protocol, encryption) (mailtap_sessions_total) > 0",
    )
    .expect("query runs");
    let mut outcomes: Vec<(String, String, String)> = by_outcome
        .as_array()
        .expect("vector")
        .iter()
        .map(|s| {
            let m = &s["metric"];
            let v = s["value"][1].as_str().unwrap_or_default().to_string();
            (
                m["protocol"].as_str().unwrap_or_default().into(),
                m["encryption"].as_str().unwrap_or_default().into(),
                v,
            )
        })
        .collect();
    outcomes.sort();
    let want = [
        ("smtp", "plaintext", "1"),
        ("smtp", "starttls", "1"),
        ("submissions", "implicit_tls", "1"),
    ];
    let want: Vec<(String, String, String)> = want
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect();
    assert_eq!(outcomes, want);
    let tls = promql(
        link,
        "sum by (protocol, version, cipher_suite) (mailtap_tls_sessions_total) > 0",
    )
    .expect("query runs");
    let mut suites: Vec<String> = tls
        .as_array()
        .expect("vector")
        .iter()
        .map(|s| {
            let m = &s["metric"];
            format!(
                "{} {} {} {}",
                m["protocol"].as_str().unwrap_or_default(),
                m["version"].as_str().unwrap_or_default(),
                m["cipher_suite"].as_str().unwrap_or_default(),
                s["value"][1].as_str().unwrap_or_default()
            )
        })
        .collect();
    suites.sort();
    assert_eq!(
        suites,
        [
            "smtp TLSv1.2 TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 1",
            "submissions TLSv1.3 TLS_CHACHA20_POLY1305_SHA256 1",
        ]
    );
    assert_eq!(
        scalar(
            link,
            r#"sum(mailtap_cleartext_auth_total{mechanism="PLAIN"})"#
        ),
        Some(1)
    );
}

#[test]
fn real_sessions_through_a_veth_pair_are_logged_with_their_protection() {
    require_root!();
    let link = Link::new();
    let dir = scratch("live-sessions");
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let (cert, key) = certificate(&dir);
    let sessions = dir.join("sessions.jsonl");
    let metrics = dir.join("metrics.prom");

    let mut smtp = link.server("python3");
    smtp.arg(support("smtp_server.py"))
        .arg(&cert)
        .arg(&key)
        .arg(SMTP_PORT.to_string())
        .stdout(Stdio::piped());
    let mut smtp = Guard(smtp.spawn().expect("python3 runs"));
    assert_eq!(first_line(smtp.0.stdout.take().expect("stdout")), "ready");

    let mut smtps = link.server("openssl");
    smtps
        .args([
            "s_server",
            "-accept",
            &SMTPS_PORT.to_string(),
            "-naccept",
            "1",
        ])
        .args(["-tls1_3", "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256"])
        .args(["-groups", "X25519"])
        .arg("-cert")
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut smtps = Guard(smtps.spawn().expect("openssl runs"));
    let smtps_out = lines_of(smtps.0.stdout.take().expect("stdout"));
    wait_for_line(&smtps_out, "ACCEPT", &mut Vec::new());

    // A real Prometheus in the same namespace scrapes the sensor every second.
    let prometheus = start_prometheus(&link, &dir);
    let (mut mailtap, stderr, mut seen) = start_mailtap(
        &link,
        &[
            "--web.listen-address",
            &format!("127.0.0.1:{WEB_PORT}"),
            "--port",
            &format!("{SMTP_PORT}=smtp"),
            "--port",
            &format!("{SMTPS_PORT}=submissions"),
            "--workers",
            "2",
            "--sessions",
            sessions.to_str().expect("utf-8 path"),
            "--metrics-file",
            metrics.to_str().expect("utf-8 path"),
        ],
    );

    // 1. STARTTLS with a message inside; 2. AUTH PLAIN and a message in clear.
    let client = |mode: &str| {
        let out = link
            .client("python3")
            .arg(support("smtp_client.py"))
            .args([mode, SERVER_IP, &SMTP_PORT.to_string()])
            .output()
            .expect("python3 runs");
        assert!(
            out.status.success(),
            "{mode}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let starttls_port = client("starttls");
    let plain_port = client("plain-auth");

    // 3. Implicit TLS 1.3 on a port mapped to submissions.
    let out = link
        .client("openssl")
        .args(["s_client", "-connect", &format!("{SERVER_IP}:{SMTPS_PORT}")])
        .args(["-servername", "mail.example.test", "-tls1_3"])
        .args([
            "-ciphersuites",
            "TLS_CHACHA20_POLY1305_SHA256",
            "-groups",
            "X25519",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "s_client: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // 4. A session still open when mailtap is stopped.
    let mut hold = link.client("python3");
    hold.arg(support("smtp_client.py"))
        .args(["hold", SERVER_IP, &SMTP_PORT.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    let mut hold = Guard(hold.spawn().expect("python3 runs"));
    let hold_port = first_line(hold.0.stdout.take().expect("stdout"));

    // The three closed sessions reach the log while the link is quiet (closing flows linger
    // 5 s of packet time): packet time passes without packets.
    let closed = wait_for_records(&sessions, 3, Duration::from_secs(20));
    assert_eq!(
        closed.len(),
        3,
        "closed sessions logged while running: {closed:#?}"
    );

    if let Some(prom) = &prometheus {
        assert_prometheus_sees_the_sessions(&link, prom);
    }

    sigterm(&mailtap.0);
    let status = wait_exit(&mut mailtap.0, Duration::from_secs(10));
    seen.extend(stderr.try_iter());
    assert!(status.success(), "mailtap exit: {status:?}\n{seen:#?}");
    drop(hold.0.stdin.take());

    let records = read_jsonl(&sessions);
    assert_eq!(records.len(), 4, "exactly the four sessions: {records:#?}");
    let by_port = records_by_client_port(&records);
    let find = |port: &str| {
        by_port
            .iter()
            .find(|(p, _)| p == port)
            .map(|(_, r)| *r)
            .unwrap_or_else(|| panic!("no session from client port {port}: {records:#?}"))
    };
    let smtp_server = format!("{SERVER_IP}:{SMTP_PORT}");
    assert_fields(
        "starttls",
        find(&starttls_port),
        &serde_json::json!({
            "server": smtp_server, "protocol": "smtp", "encryption": "starttls",
            "starttls_offered": true, "starttls_attempted": true,
            "cleartext_auth": [], "cleartext_messages": 0,
            "tls": {"version": "TLSv1.2",
                    "cipher_suite": "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
                    "group": "secp256r1", "forward_secret": true, "established": true,
                    "certificate": {"status": "self_signed"}}
        }),
    );
    assert_fields(
        "plaintext",
        find(&plain_port),
        &serde_json::json!({
            "server": smtp_server, "protocol": "smtp", "encryption": "plaintext",
            "starttls_offered": true, "starttls_attempted": false,
            "cleartext_auth": ["PLAIN"], "cleartext_messages": 1, "tls": null
        }),
    );
    assert_fields(
        "held open",
        find(&hold_port),
        &serde_json::json!({
            "server": smtp_server, "protocol": "smtp",
            "starttls_offered": true, "starttls_attempted": false, "cleartext_messages": 0
        }),
    );
    let implicit = records
        .iter()
        .find(|r| r["server"] == format!("{SERVER_IP}:{SMTPS_PORT}"))
        .unwrap_or_else(|| panic!("no implicit TLS session: {records:#?}"));
    assert_fields(
        "implicit TLS",
        implicit,
        &serde_json::json!({
            "protocol": "submissions", "encryption": "implicit_tls",
            "tls": {"version": "TLSv1.3", "cipher_suite": "TLS_CHACHA20_POLY1305_SHA256",
                    "group": "x25519", "forward_secret": true, "established": true,
                    "server_name": "mail.example.test",
                    "certificate": {"status": "hidden"}}
        }),
    );

    let text = std::fs::read_to_string(&metrics).expect("--metrics-file written at exit");
    for line in [
        r#"mailtap_sessions_total{encryption="starttls",protocol="smtp"} 1"#,
        r#"mailtap_sessions_total{encryption="implicit_tls",protocol="submissions"} 1"#,
        r#"mailtap_cleartext_auth_total{mechanism="PLAIN",protocol="smtp"} 1"#,
        r#"mailtap_capture_dropped_packets_total{where="kernel"} 0"#,
        r#"mailtap_capture_dropped_packets_total{where="interface"} 0"#,
    ] {
        assert!(text.lines().any(|l| l == line), "{line} not in:\n{text}");
    }
    drop(smtps.0.stdin.take());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn user_drops_root_once_the_capture_is_open() {
    require_root!();
    let link = Link::new();
    let dir = scratch("live-user");
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let sessions = dir.join("sessions.jsonl");
    let (mut mailtap, stderr, mut seen) = start_mailtap(
        &link,
        &[
            "--user",
            "nobody",
            "--sessions",
            sessions.to_str().expect("utf-8 path"),
        ],
    );
    assert!(
        seen.iter().any(|l| l.contains("as user nobody")),
        "{seen:#?}"
    );
    let status = std::fs::read_to_string(format!("/proc/{}/status", mailtap.0.id()))
        .expect("mailtap's /proc status");
    let nobody = |flag: &str| {
        let out = Command::new("id")
            .args([flag, "nobody"])
            .output()
            .expect("id");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let (uid, gid) = (nobody("-u"), nobody("-g"));
    assert_eq!(uids(&status), vec![uid.clone(); 4], "{status}");
    assert_eq!(field(&status, "Gid:"), vec![gid; 4], "{status}");
    assert_eq!(field(&status, "Groups:"), Vec::<String>::new(), "{status}");
    assert_ne!(uid, "0");

    // The capture still works unprivileged: one plaintext session through it.
    let mut server = link.server("python3");
    server
        .args(["-c", SINGLE_GREETING_SERVER])
        .stdout(Stdio::piped());
    let mut server = Guard(server.spawn().expect("python3 runs"));
    assert_eq!(first_line(server.0.stdout.take().expect("stdout")), "ready");
    let mut client = link
        .client("python3")
        .args(["-c", SINGLE_GREETING_CLIENT])
        .stdin(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    client
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"")
        .expect("write");
    assert!(client.wait().expect("client").success());

    sigterm(&mailtap.0);
    let exit = wait_exit(&mut mailtap.0, Duration::from_secs(10));
    seen.extend(stderr.try_iter());
    assert!(exit.success(), "{exit:?}\n{seen:#?}");
    let records = read_jsonl(&sessions);
    assert_eq!(records.len(), 1, "{records:#?}");
    assert_eq!(records[0]["server"], format!("{SERVER_IP}:25"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn drops_are_counted_and_reported_when_they_start_and_stop() {
    require_root!();
    let link = Link::new();
    let dir = scratch("live-drops");
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let metrics = dir.join("metrics.prom");
    let mut sink = link.server("python3");
    sink.args(["-c", DISCARD_SERVER]).stdout(Stdio::piped());
    let mut sink = Guard(sink.spawn().expect("python3 runs"));
    assert_eq!(first_line(sink.0.stdout.take().expect("stdout")), "ready");
    // The smallest kernel buffer, and mailtap stopped while 20,000 packets go by: the kernel
    // must drop most of them.
    let (mut mailtap, stderr, mut seen) = start_mailtap(
        &link,
        &[
            "--buffer-size",
            "65536",
            "--snaplen",
            "2048",
            "--metrics-file",
            metrics.to_str().expect("utf-8 path"),
        ],
    );
    let pid = mailtap.0.id().to_string();
    run(Command::new("kill").args(["-STOP", &pid]));
    let blast = link.client("python3").args(["-c", BLAST_CLIENT]).status();
    run(Command::new("kill").args(["-CONT", &pid]));
    assert!(blast.expect("python3 runs").success());
    wait_for_line(&stderr, "capture is dropping packets", &mut seen);
    wait_for_line(&stderr, "capture stopped dropping packets", &mut seen);
    sigterm(&mailtap.0);
    let exit = wait_exit(&mut mailtap.0, Duration::from_secs(10));
    seen.extend(stderr.try_iter());
    assert!(exit.success(), "{exit:?}\n{seen:#?}");
    let warning = seen
        .iter()
        .find(|l| l.contains("capture is dropping packets"))
        .expect("seen above");
    assert!(
        warning.contains("dropped by the kernel in the last second; all numbers are lower bounds"),
        "{warning}"
    );
    let text = std::fs::read_to_string(&metrics).expect("--metrics-file written at exit");
    let kernel = text
        .lines()
        .find_map(|l| l.strip_prefix(r#"mailtap_capture_dropped_packets_total{where="kernel"} "#))
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no kernel drop counter in:\n{text}"));
    assert!(kernel > 1000, "kernel drops: {kernel}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Port 25: accepts connections and throws their bytes away.
const DISCARD_SERVER: &str = r#"
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 25)); s.listen(1); print("ready", flush=True)
while True:
    c, _ = s.accept()
    while c.recv(1 << 20):
        pass
    c.close()
"#;

/// 20,000 small segments to port 25, as fast as Python sends them.
const BLAST_CLIENT: &str = r#"
import socket
c = socket.create_connection(("192.0.2.2", 25), 10)
c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
for _ in range(20000):
    c.sendall(b"x" * 1000)
c.close()
"#;

/// Port 25, one connection: greeting, one reply to QUIT.
const SINGLE_GREETING_SERVER: &str = r#"
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 25)); s.listen(1); print("ready", flush=True)
c, _ = s.accept(); c.sendall(b"220 mail.example.test ESMTP\r\n")
f = c.makefile("rb"); f.readline(); c.sendall(b"221 2.0.0 Bye\r\n"); c.close()
"#;

const SINGLE_GREETING_CLIENT: &str = r#"
import socket
c = socket.create_connection(("192.0.2.2", 25), 10); f = c.makefile("rb"); f.readline()
c.sendall(b"QUIT\r\n"); f.readline(); c.close()
"#;

#[test]
fn a_filter_that_does_not_compile_is_a_usage_error() {
    require_root!();
    let link = Link::new();
    let out = link
        .client(env!("CARGO_BIN_EXE_mailtap"))
        .args(["capture", "-i", &link.client_if, "--filter", "tcp port"])
        .output()
        .expect("mailtap runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--filter `tcp port`"), "{stderr}");
}

#[test]
fn an_unknown_interface_fails_with_its_name() {
    require_root!();
    let link = Link::new();
    let out = link
        .client(env!("CARGO_BIN_EXE_mailtap"))
        .args(["capture", "-i", "no-such-if0"])
        .output()
        .expect("mailtap runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot capture on no-such-if0"), "{stderr}");
}

/// One plaintext SMTP session through the link (a greeting, QUIT); its server was started
/// and said ready.
fn one_session(link: &Link) {
    let mut server = link.server("python3");
    server
        .args(["-c", SINGLE_GREETING_SERVER])
        .stdout(Stdio::piped());
    let mut server = Guard(server.spawn().expect("python3 runs"));
    assert_eq!(first_line(server.0.stdout.take().expect("stdout")), "ready");
    let client = link
        .client("python3")
        .args(["-c", SINGLE_GREETING_CLIENT])
        .status()
        .expect("python3 runs");
    assert!(client.success());
}

fn sessions_counted(text: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with("mailtap_sessions_total{"))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<u64>().ok())
        .sum()
}

#[test]
fn the_metrics_file_is_rewritten_while_capturing() {
    require_root!();
    let link = Link::new();
    let dir = scratch("live-metrics-file");
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let metrics = dir.join("mailtap.prom");
    let (mut mailtap, stderr, mut seen) = start_mailtap(
        &link,
        &[
            "--metrics-file",
            metrics.to_str().expect("utf-8 path"),
            "--metrics-file-interval",
            "1s",
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while !metrics.exists() {
        assert!(Instant::now() < deadline, "never written while capturing");
        std::thread::sleep(Duration::from_millis(100));
    }
    let first = std::fs::read_to_string(&metrics).unwrap();
    assert_eq!(sessions_counted(&first), 0);
    one_session(&link);
    // The session closes (5 s of lingering, in packet time) and the next rewrite shows it,
    // while the capture still runs.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(&metrics).unwrap_or_default();
        if sessions_counted(&text) == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the session never reached the file:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(mailtap.0.try_wait().unwrap().is_none(), "still capturing");
    sigterm(&mailtap.0);
    let exit = wait_exit(&mut mailtap.0, Duration::from_secs(10));
    seen.extend(stderr.try_iter());
    assert!(exit.success(), "{exit:?}\n{seen:#?}");
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["mailtap.prom"], "no temporary file left behind");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sighup_reopens_the_log_while_capturing() {
    require_root!();
    let link = Link::new();
    let dir = scratch("live-sighup");
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let sessions = dir.join("sessions.jsonl");
    let rotated = dir.join("sessions.jsonl.1");
    let (mut mailtap, stderr, mut seen) = start_mailtap(
        &link,
        &["--sessions", sessions.to_str().expect("utf-8 path")],
    );
    one_session(&link);
    assert_eq!(
        wait_for_records(&sessions, 1, Duration::from_secs(20)).len(),
        1
    );
    std::fs::rename(&sessions, &rotated).unwrap();
    run(Command::new("kill").args(["-HUP", &mailtap.0.id().to_string()]));
    one_session(&link);
    assert_eq!(
        wait_for_records(&sessions, 1, Duration::from_secs(20)).len(),
        1
    );
    assert!(
        mailtap.0.try_wait().unwrap().is_none(),
        "SIGHUP did not end the capture"
    );
    sigterm(&mailtap.0);
    let exit = wait_exit(&mut mailtap.0, Duration::from_secs(10));
    seen.extend(stderr.try_iter());
    assert!(exit.success(), "{exit:?}\n{seen:#?}");
    assert_eq!(read_jsonl(&rotated).len(), 1);
    assert_eq!(read_jsonl(&sessions).len(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn user_must_be_able_to_write_the_metrics_file() {
    require_root!();
    let link = Link::new();
    // Made by root, mode 0755: nobody cannot create files in it.
    let dir = scratch("live-user-metrics");
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let metrics = dir.join("mailtap.prom");
    let out = link
        .client(env!("CARGO_BIN_EXE_mailtap"))
        .args(["capture", "-i", &link.client_if, "--user", "nobody"])
        .arg("--metrics-file")
        .arg(&metrics)
        .output()
        .expect("mailtap runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "--user nobody: --metrics-file {} cannot be written as this user: Permission denied",
            metrics.display()
        )),
        "{stderr}"
    );
    assert!(
        !stderr.contains("capturing on"),
        "refused before capturing: {stderr}"
    );
    // Given to nobody, the same directory works, and the file is nobody's.
    run(Command::new("chown").arg("nobody").arg(&dir));
    let (mut mailtap, stderr, mut seen) = start_mailtap(
        &link,
        &[
            "--user",
            "nobody",
            "--metrics-file",
            metrics.to_str().expect("utf-8 path"),
        ],
    );
    sigterm(&mailtap.0);
    let exit = wait_exit(&mut mailtap.0, Duration::from_secs(10));
    seen.extend(stderr.try_iter());
    assert!(exit.success(), "{exit:?}\n{seen:#?}");
    use std::os::unix::fs::MetadataExt;
    let owner = std::fs::metadata(&metrics).expect("written at exit").uid();
    let nobody = Command::new("id").args(["-u", "nobody"]).output().unwrap();
    assert_eq!(
        owner.to_string(),
        String::from_utf8_lossy(&nobody.stdout).trim()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
