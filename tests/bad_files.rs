//! A bad file gets one clear error naming the file and the byte offset; what was read before
//! it is kept; other files are not affected; the exit status says something was lost.

mod common;

use common::{capture_of, case, mailtap, scratch};
use serde_json::Value;

/// Byte offsets where the records of a little-endian classic pcap start.
fn record_offsets(bytes: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        out.push(at);
        let caplen = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        at += 16 + caplen;
    }
    out
}

fn eth_capture() -> Vec<u8> {
    std::fs::read(capture_of(&case("eth-ipv4")).unwrap()).unwrap()
}

fn report_of(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).expect("a report is printed even when a file is bad")
}

fn mail_packets(report: &Value) -> u64 {
    report["health"]["packets"]["mail"].as_u64().unwrap()
}

#[test]
fn truncated_file_names_the_offset_and_keeps_what_was_read() {
    let full = eth_capture();
    let offsets = record_offsets(&full);
    let last = *offsets.last().unwrap();
    let path = scratch("truncated.pcap");
    std::fs::write(&path, &full[..last + 20]).unwrap();
    let p = path.to_string_lossy();

    let out = mailtap(&["replay", "--quiet", "--format", "json", &p]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim(),
        format!("mailtap: {p}: truncated at byte {last}: the last block is cut short")
    );
    let report = report_of(&out);
    assert_eq!(report["files"][0]["packets"], (offsets.len() - 1) as u64);
    assert_eq!(mail_packets(&report), (offsets.len() - 1) as u64);
    let _ = std::fs::remove_file(path);
}

#[test]
fn not_a_capture_is_said_plainly() {
    let path = scratch("notes.txt");
    std::fs::write(&path, b"this is not a capture, just some notes\n").unwrap();
    let p = path.to_string_lossy();
    let out = mailtap(&["replay", "--quiet", &p]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        format!("mailtap: {p}: not a pcap or pcapng file")
    );
    let _ = std::fs::remove_file(path);
}

#[test]
fn corrupt_block_names_its_offset_and_other_files_lose_nothing() {
    let full = eth_capture();
    let offsets = record_offsets(&full);
    let third = offsets[2];
    let mut bad = full.clone();
    // A record claiming 3 GiB of captured data: no capture holds such a frame.
    bad[third + 8..third + 12].copy_from_slice(&0xc000_0000u32.to_le_bytes());
    let bad_path = scratch("corrupt.pcap");
    std::fs::write(&bad_path, &bad).unwrap();
    let good = capture_of(&case("eth-ipv4")).unwrap();
    let (b, g) = (bad_path.to_string_lossy(), good.to_string_lossy());

    let out = mailtap(&["replay", "--quiet", "--format", "json", &b, &g]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!("mailtap: {b}: corrupt block at byte {third}: ")),
        "{stderr}"
    );
    let report = report_of(&out);
    assert_eq!(report["files"][0]["packets"], 2);
    assert_eq!(report["files"][1]["packets"], offsets.len() as u64);
    assert_eq!(report["files"][1]["error"], Value::Null);
    assert_eq!(mail_packets(&report), 2 + offsets.len() as u64);
    let _ = std::fs::remove_file(bad_path);
}

#[test]
fn missing_file_is_an_error_not_a_crash() {
    let out = mailtap(&["replay", "--quiet", "/nonexistent/capture.pcap"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("mailtap: /nonexistent/capture.pcap: cannot read:"),
        "{stderr}"
    );
}

#[test]
fn bad_port_mapping_is_a_usage_error() {
    let out = mailtap(&["replay", "--port", "25=http", "x.pcap"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown protocol `http`"));
}

#[test]
fn stdin_is_read_with_a_dash() {
    let capture = eth_capture();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_mailtap"))
        .args(["replay", "--quiet", "--format", "json", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&capture).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let report = report_of(&out);
    assert_eq!(report["files"][0]["name"], "<stdin>");
    assert_eq!(
        report["files"][0]["packets"],
        record_offsets(&capture).len() as u64
    );
}
