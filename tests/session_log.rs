//! The session log of a sensor that runs for months (issue 16), like Suricata's eve.json:
//! appended to across restarts, whole lines only whatever happens to the process or the
//! disk, reopened on SIGHUP after logrotate moved it, and a failing log that costs no other
//! output.

mod common;

use common::{case, fixtures, mailtap, scratch};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

/// A running mailtap whose stderr lines arrive on a channel; killed when dropped.
struct Running {
    child: Child,
    stderr: Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn start(args: &[&str], stdout: Stdio) -> Running {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mailtap"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::piped())
            .spawn()
            .expect("mailtap starts");
        let err = child.stderr.take().expect("stderr");
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            stderr: rx,
            seen: Vec::new(),
        }
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .expect("kill(1)")
            .success();
        assert!(ok, "kill -{sig}");
    }

    /// Wait for a stderr line containing `want`.
    fn wait_for_line(&mut self, want: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.stderr.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(want) {
                        return line;
                    }
                }
                Err(_) => break,
            }
        }
        panic!("no stderr line with {want:?}; saw {:#?}", self.seen);
    }

    fn wait(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                self.seen.extend(self.stderr.try_iter());
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "mailtap did not exit in {within:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().expect("wait").is_none()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An endless replay of every fixture into `log`, two workers.
fn endless(log: &Path, extra: &[&str], stdout: Stdio) -> Running {
    let log = log.to_string_lossy().into_owned();
    let fixtures = fixtures().to_string_lossy().into_owned();
    let mut args = vec![
        "replay",
        "--quiet",
        "--loop",
        "0",
        "--workers",
        "2",
        "--format",
        "json",
        "--sessions",
        &log,
    ];
    args.extend_from_slice(extra);
    args.push(&fixtures);
    Running::start(&args, stdout)
}

fn len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "{what} within {within:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every line is a whole JSON record and the file ends with a newline (or is empty): the
/// records.
fn whole_lines(path: &Path) -> Vec<Value> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if bytes.is_empty() {
        return Vec::new();
    }
    assert_eq!(
        bytes.last(),
        Some(&b'\n'),
        "{} ends in a partial line: {:?}",
        path.display(),
        String::from_utf8_lossy(&bytes[bytes.len().saturating_sub(200)..])
    );
    bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_slice(l).unwrap_or_else(|e| {
                panic!(
                    "{} line {}: not a whole record ({e}): {:?}",
                    path.display(),
                    i + 1,
                    String::from_utf8_lossy(l)
                )
            })
        })
        .collect()
}

/// The sessions a JSON report counted.
fn reported_sessions(report: &Value) -> u64 {
    report["protocols"]
        .as_array()
        .expect("protocols")
        .iter()
        .map(|p| p["connections"].as_u64().expect("connections"))
        .sum()
}

#[test]
fn a_restart_appends_to_the_log() {
    let log = scratch("restart.jsonl");
    let input = case("smtp-starttls-25").join("capture.pcap");
    let run = || {
        let out = mailtap(&[
            "replay",
            "--quiet",
            "--sessions",
            &log.to_string_lossy(),
            &input.to_string_lossy(),
        ]);
        assert!(out.status.success(), "{out:?}");
    };
    run();
    let first = std::fs::read(&log).unwrap();
    assert!(!first.is_empty());
    run();
    let both = std::fs::read(&log).unwrap();
    assert_eq!(
        both.len(),
        2 * first.len(),
        "the second run added its records"
    );
    assert_eq!(
        &both[..first.len()],
        &first[..],
        "the first run's records are kept"
    );
    assert_eq!(&both[first.len()..], &first[..], "the same records again");
    let _ = std::fs::remove_file(log);
}

#[test]
fn sighup_after_a_move_reopens_the_log_and_loses_no_session() {
    let log = scratch("rotate.jsonl");
    let rotated = log.with_extension("jsonl.1");
    let report = scratch("rotate-report.json");
    let mut sensor = endless(
        &log,
        &[],
        Stdio::from(std::fs::File::create(&report).unwrap()),
    );
    wait_until("the log is written", Duration::from_secs(30), || {
        len(&log) > 0
    });
    // logrotate without copytruncate: move, then SIGHUP.
    std::fs::rename(&log, &rotated).unwrap();
    sensor.signal("HUP");
    wait_until(
        "a new log under the old name",
        Duration::from_secs(10),
        || len(&log) > 0,
    );
    let first = len(&log);
    wait_until("the new log grows", Duration::from_secs(10), || {
        len(&log) > first
    });
    // The old file is closed: it stops growing once the records in flight are written.
    let settled = len(&rotated);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(len(&rotated), settled, "the moved file no longer grows");
    assert!(sensor.alive(), "SIGHUP did not end the sensor");
    // Twice more, without moving: the same file is reopened and appended to.
    sensor.signal("HUP");
    sensor.signal("HUP");
    let before = len(&log);
    wait_until(
        "the log grows after more SIGHUPs",
        Duration::from_secs(10),
        || len(&log) > before,
    );
    sensor.signal("TERM");
    let status = sensor.wait(Duration::from_secs(30));
    assert!(status.success(), "{status:?}: {:#?}", sensor.seen);
    let old = whole_lines(&rotated);
    let new = whole_lines(&log);
    let report_path = report;
    let report: Value = serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
    assert_eq!(
        (old.len() + new.len()) as u64,
        reported_sessions(&report),
        "every session the report counted is in one of the two files"
    );
    for f in [log, rotated, report_path] {
        let _ = std::fs::remove_file(f);
    }
}

/// xorshift64*: delays that differ from run to run, printed so a failure can be replayed.
fn delays(n: usize) -> Vec<Duration> {
    let mut x = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    (0..n)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            Duration::from_millis(200 + x.wrapping_mul(0x2545_f491_4f6c_dd1d) % 600)
        })
        .collect()
}

#[test]
fn kill_9_at_random_moments_leaves_only_whole_lines() {
    let log = scratch("kill9.jsonl");
    let delays = delays(8);
    eprintln!("kill -9 after {delays:?}");
    let mut records = 0;
    for (i, delay) in delays.iter().enumerate() {
        let mut sensor = endless(&log, &[], Stdio::null());
        // Killed while it writes: after the first records of this run.
        let start = len(&log);
        wait_until("this run writes", Duration::from_secs(30), || {
            len(&log) > start
        });
        std::thread::sleep(*delay);
        sensor.signal("KILL");
        let status = sensor.wait(Duration::from_secs(10));
        assert_eq!(status.code(), None, "killed by a signal");
        let now = whole_lines(&log);
        assert!(now.len() > records, "run {i} added records");
        records = now.len();
    }
    let _ = std::fs::remove_file(log);
}

#[test]
fn a_failing_log_loses_no_other_output() {
    // /dev/full: every write fails with ENOSPC.
    let metrics = scratch("full.prom");
    let out = mailtap(&[
        "replay",
        "--quiet",
        "--format",
        "json",
        "--sessions",
        "/dev/full",
        "--metrics-file",
        &metrics.to_string_lossy(),
        &fixtures().to_string_lossy(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).expect("the report is printed");
    let sessions = reported_sessions(&report);
    // The same replay into a file that takes every record: as many sessions.
    let log = scratch("full-ok.jsonl");
    let ok = mailtap(&[
        "replay",
        "--quiet",
        "--format",
        "json",
        "--sessions",
        &log.to_string_lossy(),
        &fixtures().to_string_lossy(),
    ]);
    assert_eq!(ok.status.code(), Some(0));
    let written = whole_lines(&log).len() as u64;
    let _ = std::fs::remove_file(&log);
    assert!(written > 0);
    assert_eq!(sessions, written, "every fixture session is in the report");
    assert!(
        stderr.contains("--sessions /dev/full: cannot write: No space left on device"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "--sessions /dev/full: {sessions} session records could not be written"
        )),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("cannot write:").count(),
        1,
        "said once, not once per record: {stderr}"
    );
    let text = std::fs::read_to_string(&metrics).expect("the metrics file is written");
    let sample = |series: &str| {
        text.lines().find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')?
                .parse::<u64>()
                .ok()
        })
    };
    assert_eq!(
        sample(r#"mailtap_output_errors_total{output="sessions"}"#),
        Some(sessions)
    );
    let counted: u64 = text
        .lines()
        .filter(|l| l.starts_with("mailtap_sessions_total{"))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<u64>().ok())
        .sum();
    assert_eq!(counted, sessions, "the metrics counted every session");
    let _ = std::fs::remove_file(metrics);
}

fn is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        == Some("0")
}

/// A tmpfs of its own, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = scratch("tmpfs");
        std::fs::create_dir_all(&dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .expect("mount(8)")
            .success();
        assert!(ok, "mount -t tmpfs {}", dir.display());
        Tmpfs(dir)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn a_full_disk_is_said_counted_and_survived() {
    if !is_root() {
        eprintln!("SKIPPED: the full-disk test mounts a tmpfs and needs root");
        return;
    }
    let fs = Tmpfs::mount("256k");
    let log = fs.0.join("sessions.jsonl");
    // Room to free later: the disk fills up around it.
    let filler = fs.0.join("filler");
    std::fs::write(&filler, vec![0u8; 96 * 1024]).unwrap();
    let report = scratch("full-disk-report.json");
    let mut sensor = endless(
        &log,
        &["--web.listen-address", "127.0.0.1:0"],
        Stdio::from(std::fs::File::create(&report).unwrap()),
    );
    let listening = sensor.wait_for_line("listening on ", Duration::from_secs(30));
    let addr: std::net::SocketAddr = listening
        .split("listening on ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .expect("an address");
    let failing = sensor.wait_for_line("cannot write", Duration::from_secs(60));
    // Either a write found no room at all, or only part of a line fit (and was taken back).
    assert!(
        failing.contains("No space left on device") || failing.contains("no room left"),
        "{failing}"
    );
    // Still analysing, and counting what it loses.
    let scrape = || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        use std::io::{Read, Write};
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        let get = |series: &str| -> u64 {
            text.lines()
                .filter(|l| l.starts_with(series))
                .filter_map(|l| l.rsplit_once(' ')?.1.parse::<u64>().ok())
                .sum()
        };
        (
            get("mailtap_sessions_total{"),
            get(r#"mailtap_output_errors_total{output="sessions"}"#),
        )
    };
    let (sessions, errors) = scrape();
    assert!(errors > 0, "the errors are counted");
    wait_until(
        "sessions go on being counted",
        Duration::from_secs(20),
        || scrape().0 > sessions + 100,
    );
    std::fs::remove_file(&filler).unwrap();
    let again = sensor.wait_for_line("written again", Duration::from_secs(30));
    assert!(again.contains("lost while it failed"), "{again}");
    sensor.signal("TERM");
    let status = sensor.wait(Duration::from_secs(30));
    assert_eq!(
        status.code(),
        Some(1),
        "records were lost: {:#?}",
        sensor.seen
    );
    let written = whole_lines(&log);
    let report_path = report;
    let report: Value = serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
    let counted = reported_sessions(&report);
    let lost_line = sensor
        .seen
        .iter()
        .find(|l| l.contains("session records could not be written"))
        .unwrap_or_else(|| panic!("{:#?}", sensor.seen));
    let lost: u64 = lost_line
        .split(": ")
        .nth(2)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{lost_line}"));
    assert_eq!(
        written.len() as u64 + lost,
        counted,
        "every session is either a whole line or counted as lost"
    );
    let _ = std::fs::remove_file(report_path);
}

#[test]
fn contrib_logrotate_rotates_a_running_sensor() {
    let installed = Command::new("logrotate")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        assert!(
            std::env::var_os("MAILTAP_REQUIRE_LOGROTATE").is_none_or(|v| v != "1"),
            "MAILTAP_REQUIRE_LOGROTATE=1 but `logrotate` is not installed"
        );
        eprintln!("SKIPPED: `logrotate` is not installed");
        return;
    }
    let shipped =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/logrotate"))
            .unwrap();
    let rules: Vec<&str> = shipped
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .collect();
    assert!(!rules.contains(&"copytruncate"), "{shipped}");
    assert!(rules.contains(&"postrotate"), "{shipped}");

    let dir = scratch("logrotate");
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("sessions.jsonl");
    let report = dir.join("report.json");
    let mut sensor = endless(
        &log,
        &[],
        Stdio::from(std::fs::File::create(&report).unwrap()),
    );
    wait_until("the log is written", Duration::from_secs(30), || {
        len(&log) > 0
    });
    // The shipped file, for this log and this process instead of the systemd unit's.
    let config = shipped
        .replace("/var/log/mailtap/sessions.jsonl", &log.to_string_lossy())
        .replace(
            "systemctl reload mailtap.service 2>/dev/null || true",
            &format!("kill -HUP {}", sensor.child.id()),
        );
    assert_ne!(config, shipped);
    let config_path = dir.join("logrotate.conf");
    std::fs::write(&config_path, config).unwrap();
    let out = Command::new("logrotate")
        .arg("--force")
        .arg("--state")
        .arg(dir.join("state"))
        .arg(&config_path)
        .output()
        .expect("logrotate runs");
    assert!(out.status.success(), "logrotate: {out:?}");
    let rotated: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("sessions.jsonl-"))
        })
        .collect();
    assert_eq!(rotated.len(), 1, "one rotated file: {rotated:?}");
    wait_until("the new log grows", Duration::from_secs(10), || {
        len(&log) > 0
    });
    sensor.signal("TERM");
    let status = sensor.wait(Duration::from_secs(30));
    assert!(status.success(), "{status:?}: {:#?}", sensor.seen);
    let report: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let old = whole_lines(&rotated[0]);
    let new = whole_lines(&log);
    assert!(!old.is_empty() && !new.is_empty());
    assert_eq!(
        (old.len() + new.len()) as u64,
        reported_sessions(&report),
        "no session lost in the rotation"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn truncating_the_log_behind_the_sensor_leaves_no_hole() {
    // What logrotate's copytruncate does. It loses the lines written between the copy and the
    // truncation (contrib/logrotate does not use it), but an appending writer goes on at the
    // new end: no run of NUL bytes where the old content was.
    let log = scratch("truncated.jsonl");
    let mut sensor = endless(&log, &[], Stdio::null());
    wait_until("the log is written", Duration::from_secs(30), || {
        len(&log) > 100_000
    });
    let before = len(&log);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    wait_until("the log grows again", Duration::from_secs(10), || {
        len(&log) > 1000
    });
    sensor.signal("TERM");
    assert!(sensor.wait(Duration::from_secs(30)).success());
    let bytes = std::fs::read(&log).unwrap();
    assert!(
        !bytes.contains(&0),
        "a hole of NUL bytes (the file was {before} bytes before)"
    );
    let _ = std::fs::remove_file(&log);
}
