//! What operators expect of any long-running exporter (issue 16): SIGTERM/SIGINT end every
//! mode with status 0 once the outputs are complete, SIGHUP ends none, boolean variables take
//! `1/0/true/false/yes/no`, sizes take units, and the exposition carries `process_*` and a
//! `build_info` that says which commit and compiler built the binary.

mod common;

use common::{case, mailtap, scratch};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

fn capture() -> String {
    case("smtp-starttls-25")
        .join("capture.pcap")
        .to_string_lossy()
        .into_owned()
}

/// `mailtap ARGS` with its stderr lines on a channel.
fn spawn(args: &[&str]) -> (Child, Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailtap"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mailtap starts");
    let err = child.stderr.take().unwrap();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (child, rx)
}

fn wait_for(rx: &Receiver<String>, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) if line.contains(want) => return,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    panic!("no stderr line with {want:?}");
}

fn kill(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig}");
}

fn exit_within(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("mailtap did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_and_sigint_during_linger_exit_0() {
    for sig in ["TERM", "INT"] {
        let (mut child, rx) = spawn(&[
            "replay",
            "--quiet",
            "--web.listen-address",
            "127.0.0.1:0",
            "--linger",
            "600",
            &capture(),
        ]);
        wait_for(&rx, "replay done");
        kill(&child, sig);
        let status = exit_within(&mut child, Duration::from_secs(10));
        assert_eq!(status.code(), Some(0), "SIG{sig} during --linger");
    }
}

#[test]
fn an_endless_replay_then_its_linger_end_with_0() {
    let metrics = scratch("loop-linger.prom");
    let (mut child, rx) = spawn(&[
        "replay",
        "--quiet",
        "--loop",
        "0",
        "--web.listen-address",
        "127.0.0.1:0",
        "--linger",
        "600",
        "--metrics-file",
        &metrics.to_string_lossy(),
        &capture(),
    ]);
    wait_for(&rx, "listening on");
    std::thread::sleep(Duration::from_millis(300));
    // The first signal ends the loop: the outputs are written, then it lingers...
    kill(&child, "TERM");
    wait_for(&rx, "replay done");
    assert!(metrics.exists(), "written before lingering");
    // ...and the next one ends the linger, as a first signal again.
    kill(&child, "TERM");
    let status = exit_within(&mut child, Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
    let _ = std::fs::remove_file(metrics);
}

#[test]
fn sighup_ends_no_mode() {
    let (mut child, rx) = spawn(&[
        "replay",
        "--quiet",
        "--web.listen-address",
        "127.0.0.1:0",
        "--linger",
        "600",
        &capture(),
    ]);
    wait_for(&rx, "replay done");
    for _ in 0..3 {
        kill(&child, "HUP");
    }
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        child.try_wait().unwrap().is_none(),
        "SIGHUP ended the process"
    );
    kill(&child, "TERM");
    assert_eq!(
        exit_within(&mut child, Duration::from_secs(10)).code(),
        Some(0)
    );
}

#[test]
fn boolean_variables_take_the_usual_spellings() {
    for v in ["1", "0", "true", "false", "yes", "no", "on", "off"] {
        let out = Command::new(env!("CARGO_BIN_EXE_mailtap"))
            .args(["replay", &capture()])
            .env("MAILTAP_QUIET", v)
            .output()
            .unwrap();
        assert!(out.status.success(), "MAILTAP_QUIET={v}: {out:?}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_mailtap"))
        .args(["replay", &capture()])
        .env("MAILTAP_QUIET", "maybe")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("'maybe' for '--quiet'"));
    // capture parses its flags the same way, whether or not this build can capture.
    for (v, parsed) in [("yes", true), ("1", true), ("maybe", false)] {
        let out = Command::new(env!("CARGO_BIN_EXE_mailtap"))
            .args(["capture", "-i", "no-such-if0", "--workers", "0"])
            .env("MAILTAP_NO_PROMISCUOUS", v)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let refused = stderr.contains("for '--no-promiscuous'");
        assert_eq!(!refused, parsed, "MAILTAP_NO_PROMISCUOUS={v}: {stderr}");
    }
}

#[test]
fn sizes_take_units() {
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_mailtap"))
            .args(["capture", "-i", "no-such-if0"])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    for ok in [
        ["--buffer-size", "128MiB"],
        ["--buffer-size", "1G"],
        ["--snaplen", "64k"],
        ["--snaplen", "65535"],
    ] {
        let stderr = run(&ok);
        assert!(!stderr.contains("invalid value"), "{ok:?}: {stderr}");
    }
    let stderr = run(&["--snaplen", "1MiB"]);
    assert!(
        stderr.contains("1048576 bytes: must be from 96 to 262144 bytes"),
        "{stderr}"
    );
    let stderr = run(&["--buffer-size", "lots"]);
    assert!(stderr.contains("expected a size such as"), "{stderr}");
}

/// `git rev-parse --short=12 HEAD` where the crate was built, or `unknown` when git cannot
/// say (no git, not a clone): what build.rs puts into the revision label.
fn expected_revision() -> String {
    Command::new("git")
        .args([
            "-C",
            env!("CARGO_MANIFEST_DIR"),
            "rev-parse",
            "--short=12",
            "HEAD",
        ])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

#[test]
fn build_info_and_process_metrics_are_exported() {
    let file = scratch("conventions.prom");
    let out = mailtap(&[
        "replay",
        "--quiet",
        "--metrics-file",
        &file.to_string_lossy(),
        &capture(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let text = std::fs::read_to_string(&file).unwrap();
    let rustc = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .arg("--version")
        .output()
        .unwrap();
    let rustc = String::from_utf8_lossy(&rustc.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    let want = format!(
        "mailtap_build_info{{revision=\"{}\",rustc=\"{rustc}\",version=\"{}\"}} 1",
        expected_revision(),
        env!("CARGO_PKG_VERSION")
    );
    assert!(text.lines().any(|l| l == want), "{want} not in:\n{text}");
    let sample = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{name} not in:\n{text}"))
    };
    assert!(sample("process_resident_memory_bytes") > 1e6);
    assert!(sample("process_open_fds") >= 3.0);
    assert!(sample("process_threads") >= 1.0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let started = sample("process_start_time_seconds");
    assert!(
        (now - 3600.0..=now + 1.0).contains(&started),
        "{started} vs {now}"
    );
    assert!(sample("process_cpu_seconds_total") >= 0.0);
    let _ = std::fs::remove_file(file);
}
