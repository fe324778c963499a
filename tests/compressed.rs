//! Compressed captures: a gzip'd or zstd'd copy of a capture is read as the capture itself,
//! from a path (whatever its name), from stdin and with one worker or several; a cut `.gz`
//! keeps what was read before the cut, and its error gives the offset in the decompressed
//! stream and says so.

mod common;

use common::{capture_of, case, case_args, cases, gzip, scratch_dir, session_lines, zstd};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The gzip'd and zstd'd copies of `capture`, in `dir`.
fn compressed_copies(capture: &Path, dir: &Path) -> (PathBuf, PathBuf) {
    let bytes = std::fs::read(capture).expect("fixture");
    let name = capture.file_name().unwrap().to_string_lossy();
    let (gz, zst) = (
        dir.join(format!("{name}.gz")),
        dir.join(format!("{name}.zst")),
    );
    std::fs::write(&gz, gzip(&bytes)).unwrap();
    std::fs::write(&zst, zstd(&bytes)).unwrap();
    (gz, zst)
}

fn workers(n: &str, extra: &[String]) -> Vec<String> {
    let mut args = vec!["--workers".to_string(), n.to_string()];
    args.extend(extra.iter().cloned());
    args
}

fn report(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).expect("a JSON report")
}

fn succeeded(what: &str, out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_fixture_compressed_gives_the_records_of_the_original() {
    let dir = scratch_dir("compressed-fixtures");
    let all = cases();
    assert!(all.len() > 50, "{} cases", all.len());
    for case in &all {
        let name = case.file_name().unwrap().to_string_lossy();
        let capture = capture_of(case).unwrap();
        let extra = case_args(case);
        let (gz, zst) = compressed_copies(&capture, &dir);
        let (want, out) = session_lines(&extra, &[&capture], None);
        succeeded(&name, &out);
        // One worker reads on the caller's thread; two take turns reading the stream.
        let (from_gz, out) = session_lines(&workers("1", &extra), &[&gz], None);
        succeeded(&format!("{name} (gzip)"), &out);
        assert_eq!(report(&out)["files"][0]["compression"], "gzip", "{name}");
        let (from_zst, out) = session_lines(&workers("2", &extra), &[&zst], None);
        succeeded(&format!("{name} (zstd)"), &out);
        assert_eq!(report(&out)["files"][0]["compression"], "zstd", "{name}");
        assert_eq!(from_gz, want, "{name}: gzip");
        assert_eq!(from_zst, want, "{name}: zstd");
        let _ = std::fs::remove_file(gz);
        let _ = std::fs::remove_file(zst);
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// The largest fixture is split among the workers when plain; compressed, it is read as one
/// stream. Every way gives the same records, and the same packets.
#[test]
fn a_capture_split_when_plain_reads_the_same_compressed_with_any_workers() {
    let capture = capture_of(&case("evasion-line-1mb")).unwrap();
    assert!(std::fs::metadata(&capture).unwrap().len() > 512 * 1024);
    let dir = scratch_dir("compressed-workers");
    let (gz, zst) = compressed_copies(&capture, &dir);
    let (want, out) = session_lines(&workers("2", &[]), &[&capture], None);
    succeeded("plain", &out);
    assert!(!want.is_empty());
    let packets = report(&out)["files"][0]["packets"].clone();
    for input in [&gz, &zst] {
        for n in ["1", "2"] {
            let (got, out) = session_lines(&workers(n, &[]), &[input], None);
            succeeded(&format!("{} --workers {n}", input.display()), &out);
            assert_eq!(got, want, "{} --workers {n}", input.display());
            assert_eq!(report(&out)["files"][0]["packets"], packets);
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn compressed_stdin_is_read_as_the_plain_capture() {
    let dir = case("smtp-starttls-25");
    let bytes = std::fs::read(capture_of(&dir).unwrap()).unwrap();
    let extra = case_args(&dir);
    let stdin = Path::new("-");
    let (want, out) = session_lines(&extra, &[stdin], Some(&bytes));
    succeeded("plain stdin", &out);
    assert!(!want.is_empty());
    for (kind, compressed) in [("gzip", gzip(&bytes)), ("zstd", zstd(&bytes))] {
        let (got, out) = session_lines(&extra, &[stdin], Some(&compressed));
        succeeded(kind, &out);
        assert_eq!(got, want, "{kind} on stdin");
        let r = report(&out);
        assert_eq!(r["files"][0]["name"], "<stdin>");
        assert_eq!(r["files"][0]["compression"], kind);
    }
}

/// Byte offsets where the records of a little-endian classic pcap start.
fn record_offsets(bytes: &[u8]) -> Vec<u64> {
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        out.push(at as u64);
        let caplen = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        at += 16 + caplen;
    }
    out
}

#[test]
fn a_cut_gz_keeps_what_came_before_and_names_the_decompressed_offset() {
    let capture = capture_of(&case("netns-exim-plain-100k-1500")).unwrap();
    let plain = std::fs::read(&capture).unwrap();
    let gz = gzip(&plain);
    let dir = scratch_dir("compressed-cut");
    let cut = dir.join("cut.pcap.gz");
    std::fs::write(&cut, &gz[..gz.len() * 3 / 4]).unwrap();
    let (records, out) = session_lines(&[], &[&cut], None);
    assert_eq!(out.status.code(), Some(1));
    let r = report(&out);
    let file = &r["files"][0];
    let offset = file["error_offset"].as_u64().expect("an offset");
    // The packets kept are exactly those whose records lie whole before the offset.
    let starts = record_offsets(&plain);
    let before = starts.iter().filter(|&&s| s < offset).count() as u64;
    assert!(starts.contains(&offset), "{offset} is a record's start");
    assert!(before > 10, "{before} packets before the cut");
    assert_eq!(file["packets"].as_u64(), Some(before));
    assert_eq!(file["compression"], "gzip");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let want = format!(
        "mailtap: {}: truncated at byte {offset} of the decompressed stream (gzip): ",
        cut.display()
    );
    assert!(stderr.contains(&want), "{stderr}");
    assert!(file["error"].as_str().unwrap().contains("decompressed"));
    // What was read made its session.
    assert!(
        !records.is_empty(),
        "no session from the packets before the cut"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// A file named on the command line is read whatever its name: compression is told by the
/// first bytes.
#[test]
fn compression_is_told_by_content_not_name() {
    let dir_case = case("smtp-starttls-25");
    let capture = capture_of(&dir_case).unwrap();
    let bytes = std::fs::read(&capture).unwrap();
    let dir = scratch_dir("compressed-names");
    let (odd_gz, odd_zst) = (dir.join("capture.zst"), dir.join("capture"));
    std::fs::write(&odd_gz, gzip(&bytes)).unwrap();
    std::fs::write(&odd_zst, zstd(&bytes)).unwrap();
    let extra = case_args(&dir_case);
    let (want, _) = session_lines(&extra, &[&capture], None);
    for (path, kind) in [(&odd_gz, "gzip"), (&odd_zst, "zstd")] {
        let (got, out) = session_lines(&extra, &[path], None);
        succeeded(kind, &out);
        assert_eq!(got, want, "{}", path.display());
        assert_eq!(report(&out)["files"][0]["compression"], kind);
    }
    let _ = std::fs::remove_dir_all(dir);
}
