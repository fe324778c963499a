//! Shared helpers for the end-to-end tests: run the real binary on fixture captures.
#![allow(dead_code)]

pub mod library;
pub mod pcapgen;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// Every fixture case folder (one holding a capture), in name order.
pub fn cases() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .expect("fixtures/ exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| capture_of(p).is_some())
        .collect();
    out.sort();
    out
}

pub fn case(name: &str) -> PathBuf {
    fixtures().join(name)
}

/// The capture file of a case folder.
pub fn capture_of(dir: &Path) -> Option<PathBuf> {
    ["capture.pcap", "capture.pcapng"]
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.is_file())
}

/// Run the real binary.
pub fn mailtap(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mailtap"))
        .args(args)
        .output()
        .expect("mailtap runs")
}

/// Run the real binary; it must succeed (its stderr is the failure message).
pub fn mailtap_ok(args: &[&str]) -> Output {
    let out = mailtap(args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Extra arguments a case needs (e.g. `--port 2525=smtp`), from its `args` file if any.
pub fn case_args(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("args"))
        .map(|s| s.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

/// A scratch file path unique to this call: tests of one binary run in parallel threads.
pub fn scratch(tag: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("mailtap-test-{}-{n}-{tag}", std::process::id()))
}

/// Replay one case: its session records (sorted by start) and its JSON report.
pub fn replay_case(dir: &Path) -> (Vec<Value>, Value) {
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    let capture = capture_of(dir).expect("case has a capture");
    let sessions = scratch(&format!("{name}.jsonl"));
    let mut args: Vec<String> = vec!["replay".into(), "--quiet".into()];
    args.extend(["--format".into(), "json".into()]);
    args.extend(case_args(dir));
    args.extend(["--sessions".into(), sessions.to_string_lossy().into_owned()]);
    args.push(capture.to_string_lossy().into_owned());
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = mailtap(&argv);
    assert!(
        out.status.success(),
        "{name}: mailtap failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("report is JSON");
    let mut records = read_jsonl(&sessions);
    let _ = std::fs::remove_file(&sessions);
    records.sort_by(|a, b| a["ts_start"].as_str().cmp(&b["ts_start"].as_str()));
    (records, report)
}

/// Lines of a JSON-lines file.
pub fn read_jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .collect()
}

/// Every field `want` names matches `got` exactly, recursively into objects; `got` may carry
/// more. A field missing from `got` never matches (not even an expected `null`).
pub fn assert_subset(at: &str, got: &Value, want: &Value) {
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => {
            for (field, value) in w {
                let missing = Value::String("<missing>".into());
                assert_subset(
                    &format!("{at}.{field}"),
                    g.get(field).unwrap_or(&missing),
                    value,
                );
            }
        }
        _ => assert_eq!(got, want, "{at}"),
    }
}

/// A scratch directory unique to this call, empty.
pub fn scratch_dir(tag: &str) -> PathBuf {
    let dir = scratch(tag);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// `bytes` gzip-compressed (one member), as `gzip` writes them.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).expect("in memory");
    enc.finish().expect("in memory")
}

/// `bytes` zstd-compressed (one frame, level 3, as `zstd` writes them).
pub fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(bytes, 3).expect("in memory")
}

/// Run the real binary with `stdin` as its standard input.
pub fn mailtap_stdin(args: &[&str], stdin: &[u8]) -> Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailtap"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mailtap runs");
    let mut pipe = child.stdin.take().expect("stdin piped");
    let input = stdin.to_vec();
    // Written from a thread: mailtap writes its report while it reads.
    let writer = std::thread::spawn(move || pipe.write_all(&input));
    let out = child.wait_with_output().expect("mailtap runs");
    let _ = writer.join();
    out
}

/// The session log lines of a replay of `inputs` (`-` for `stdin`) with `extra` arguments,
/// sorted, and the process's output (its stdout holds the JSON report).
pub fn session_lines(
    extra: &[String],
    inputs: &[&Path],
    stdin: Option<&[u8]>,
) -> (Vec<String>, Output) {
    let sessions = scratch("sessions.jsonl");
    let mut args: Vec<String> = ["replay", "--quiet", "--format", "json"]
        .map(String::from)
        .to_vec();
    args.extend(extra.iter().cloned());
    args.extend(["--sessions".into(), sessions.to_string_lossy().into_owned()]);
    args.extend(inputs.iter().map(|p| p.to_string_lossy().into_owned()));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = match stdin {
        Some(bytes) => mailtap_stdin(&argv, bytes),
        None => mailtap(&argv),
    };
    let mut lines: Vec<String> = std::fs::read_to_string(&sessions)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    lines.sort();
    let _ = std::fs::remove_file(&sessions);
    (lines, out)
}
