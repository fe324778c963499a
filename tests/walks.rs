//! Directory inputs: every file read once whatever links lead to it (a link loop counts
//! nothing twice), name order kept, files passed over listed on stderr with their reason and
//! counted in the report; no capture at all, or a path that does not exist, is an error.

mod common;

use common::{capture_of, case, gzip, mailtap, scratch_dir, zstd};
use serde_json::Value;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Output;

fn replay(inputs: &[&Path]) -> Output {
    let mut args = vec!["replay".to_string(), "--quiet".into(), "--format".into()];
    args.push("json".into());
    args.extend(inputs.iter().map(|p| p.to_string_lossy().into_owned()));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    mailtap(&argv)
}

fn report(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&out.stderr));
    })
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn capture(name: &str) -> PathBuf {
    capture_of(&case(name)).unwrap()
}

fn file_names(report: &Value) -> Vec<String> {
    report["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_string())
        .collect()
}

/// What counts a replay makes, for comparing two replays of the same captures.
fn counts(report: &Value) -> (Value, Value, Value) {
    (
        report["health"]["packets"].clone(),
        report["protocols"].clone(),
        report["health"]["flows_closed"].clone(),
    )
}

/// A directory with two captures (one in a subdirectory), a README, and links back into
/// itself: to itself, to its parent from below, a second name for the subdirectory, a second
/// name for a capture.
fn looping_tree() -> PathBuf {
    let dir = scratch_dir("walk-loop");
    std::fs::create_dir(dir.join("sub")).unwrap();
    std::fs::copy(capture("smtp-starttls-25"), dir.join("a.pcap")).unwrap();
    std::fs::copy(capture("imap-starttls"), dir.join("sub/b.pcap")).unwrap();
    std::fs::write(dir.join("README.md"), "how these were captured\n").unwrap();
    symlink(".", dir.join("self")).unwrap();
    symlink("..", dir.join("sub/up")).unwrap();
    symlink("sub", dir.join("z-again")).unwrap();
    symlink("a.pcap", dir.join("link.pcap")).unwrap();
    dir
}

#[test]
fn a_directory_with_link_loops_reads_each_file_once() {
    let dir = looping_tree();
    let once = report(&common::mailtap_ok(&[
        "replay",
        "--quiet",
        "--format",
        "json",
        &capture("smtp-starttls-25").to_string_lossy(),
        &capture("imap-starttls").to_string_lossy(),
    ]));
    let out = replay(&[&dir]);
    assert!(out.status.success(), "{}", stderr(&out));
    let walked = report(&out);
    let names: Vec<String> = ["a.pcap", "sub/b.pcap"]
        .iter()
        .map(|n| dir.join(n).to_string_lossy().into_owned())
        .collect();
    assert_eq!(file_names(&walked), names);
    assert_eq!(counts(&walked), counts(&once));
    let err = stderr(&out);
    let d = dir.display();
    assert!(
        err.contains(&format!("mailtap: skipped {d}/README.md: not a capture")),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "mailtap: skipped {d}/link.pcap: the same file as {d}/a.pcap"
        )),
        "{err}"
    );
    let skipped = &walked["health"]["files_skipped"];
    assert_eq!(skipped["not_a_capture"], 1);
    assert_eq!(skipped["duplicate"], 1);
    assert_eq!(skipped["unreadable"], 0);
    let _ = std::fs::remove_dir_all(dir);
}

/// Compressed captures are found in directories by their content; a compressed file that is
/// no capture is passed over; a dangling link is unreadable; names keep their order.
#[test]
fn a_walk_reads_compressed_captures_and_lists_what_it_passes_over() {
    let dir = scratch_dir("walk-mixed");
    let bytes = std::fs::read(capture("smtp-starttls-25")).unwrap();
    std::fs::write(dir.join("1-day.pcap.gz"), gzip(&bytes)).unwrap();
    std::fs::write(dir.join("2-day.pcap.zst"), zstd(&bytes)).unwrap();
    std::fs::write(dir.join("3-day.pcap"), &bytes).unwrap();
    std::fs::write(dir.join("notes.txt.gz"), gzip(b"not a capture\n")).unwrap();
    symlink("gone.pcap", dir.join("4-dangling.pcap")).unwrap();
    let out = replay(&[&dir]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r = report(&out);
    let names: Vec<String> = ["1-day.pcap.gz", "2-day.pcap.zst", "3-day.pcap"]
        .iter()
        .map(|n| dir.join(n).to_string_lossy().into_owned())
        .collect();
    assert_eq!(file_names(&r), names);
    let packets: Vec<&Value> = r["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| &f["packets"])
        .collect();
    assert!(packets.iter().all(|p| *p == packets[0]), "{packets:?}");
    let err = stderr(&out);
    let d = dir.display();
    assert!(
        err.contains(&format!("mailtap: skipped {d}/notes.txt.gz: not a capture")),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "mailtap: skipped {d}/4-dangling.pcap: unreadable: "
        )),
        "{err}"
    );
    assert_eq!(r["health"]["files_skipped"]["unreadable"], 1);
    assert_eq!(r["health"]["files_skipped"]["not_a_capture"], 1);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn an_empty_directory_is_an_error() {
    let dir = scratch_dir("walk-empty");
    let out = replay(&[&dir]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "a report of nothing");
    assert_eq!(
        stderr(&out).trim(),
        format!(
            "mailtap: no capture found in {}: they hold no file",
            dir.display()
        )
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_directory_without_captures_lists_its_files_and_fails() {
    let dir = scratch_dir("walk-none");
    std::fs::write(dir.join("README.md"), "notes\n").unwrap();
    std::fs::write(dir.join("expected.json"), "{}\n").unwrap();
    let out = replay(&[&dir]);
    assert_eq!(out.status.code(), Some(1));
    let d = dir.display();
    let lines: Vec<String> = stderr(&out).lines().map(str::to_string).collect();
    assert_eq!(
        lines,
        [
            format!("mailtap: skipped {d}/README.md: not a capture"),
            format!("mailtap: skipped {d}/expected.json: not a capture"),
            format!("mailtap: no capture found in {d}: the 2 files skipped above are all there is"),
        ]
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_path_that_does_not_exist_is_named_and_nothing_is_read() {
    let good = capture("smtp-starttls-25");
    let missing = Path::new("/nonexistent/captures");
    let out = replay(&[&good, missing]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "no report");
    let err = stderr(&out);
    assert!(
        err.starts_with("mailtap: /nonexistent/captures: cannot read: "),
        "{err}"
    );
}

/// A file named on the command line is read whatever its name, and once even when a directory
/// named too holds it.
#[test]
fn named_files_are_read_whatever_their_name_and_once() {
    let dir = scratch_dir("walk-named");
    let odd = dir.join("capture.txt");
    std::fs::copy(capture("smtp-starttls-25"), &odd).unwrap();
    let out = replay(&[&odd, &dir]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r = report(&out);
    assert_eq!(file_names(&r), [odd.to_string_lossy()]);
    assert!(
        stderr(&out).contains(&format!(
            "skipped {}: the same file as {}",
            odd.display(),
            odd.display()
        )),
        "{}",
        stderr(&out)
    );
    let _ = std::fs::remove_dir_all(dir);
}
