//! `--metrics-file` for node_exporter's textfile collector (issue 16): rewritten while the
//! sensor runs, never written through a planted link, never replacing what is not a regular
//! file, and refused at start when it could never be written.

mod common;

use common::{case, fixtures, mailtap, scratch};
use std::os::unix::fs::{symlink, FileTypeExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn sessions_in(text: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with("mailtap_sessions_total{"))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<u64>().ok())
        .sum()
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn the_file_is_rewritten_while_the_sensor_runs() {
    let dir = scratch("rewrite");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("mailtap.prom");
    let mut sensor = Command::new(env!("CARGO_BIN_EXE_mailtap"))
        .args(["replay", "--quiet", "--loop", "0", "--format", "json"])
        .args(["--metrics-file-interval", "200ms", "--metrics-file"])
        .arg(&file)
        .arg(fixtures())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("mailtap starts");
    // Seen rewritten with more sessions each time, before the sensor is stopped.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut counts = Vec::new();
    while counts.len() < 3 {
        assert!(Instant::now() < deadline, "rewrites seen: {counts:?}");
        std::thread::sleep(Duration::from_millis(50));
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        assert!(text.ends_with('\n'), "a whole file, every time");
        let n = sessions_in(&text);
        if counts.last() != Some(&n) {
            assert!(
                counts.last().is_none_or(|&last| n > last),
                "{counts:?} then {n}"
            );
            counts.push(n);
        }
    }
    assert!(sensor.try_wait().unwrap().is_none(), "still running");
    let ok = Command::new("kill")
        .args(["-TERM", &sensor.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let out = sensor.wait_with_output().unwrap();
    assert!(out.status.success(), "{:?}", out.status);
    // The last write holds the final numbers, and no temporary file is left behind.
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let reported: u64 = report["protocols"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["connections"].as_u64().unwrap())
        .sum();
    assert_eq!(
        sessions_in(&std::fs::read_to_string(&file).unwrap()),
        reported
    );
    assert_eq!(names_in(&dir), ["mailtap.prom"]);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_link_planted_at_the_temporary_name_is_not_written_through() {
    let dir = scratch("planted");
    std::fs::create_dir_all(&dir).unwrap();
    let victim = dir.join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    let file = dir.join("mailtap.prom");
    // The name a writer that appends `.tmp` would use, and the hidden names of the form
    // this one uses with every random part an attacker might try first.
    let mut planted = vec![dir.join("mailtap.prom.tmp")];
    for guess in [
        "000000000000",
        "aaaaaaaaaaaa",
        "AAAAAAAAAAAA",
        "zzzzzzzzzzzz",
    ] {
        planted.push(dir.join(format!(".mailtap.prom.{guess}")));
    }
    for p in &planted {
        symlink(&victim, p).unwrap();
    }
    for _ in 0..3 {
        let out = mailtap(&[
            "replay",
            "--quiet",
            "--metrics-file",
            &file.to_string_lossy(),
            &case("smtp-starttls-25")
                .join("capture.pcap")
                .to_string_lossy(),
        ]);
        assert!(out.status.success(), "{out:?}");
    }
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    for p in &planted {
        assert!(std::fs::symlink_metadata(p)
            .unwrap()
            .file_type()
            .is_symlink());
    }
    let meta = std::fs::symlink_metadata(&file).unwrap();
    assert!(meta.file_type().is_file(), "the target is a regular file");
    assert!(std::fs::read_to_string(&file)
        .unwrap()
        .contains("mailtap_sessions_total"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_target_that_is_not_a_regular_file_is_refused_at_start() {
    let dir = scratch("not-regular");
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("fifo.prom");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let victim = dir.join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    let link = dir.join("link.prom");
    symlink(&victim, &link).unwrap();
    let subdir = dir.join("dir.prom");
    std::fs::create_dir(&subdir).unwrap();
    let input = case("smtp-starttls-25").join("capture.pcap");
    for (target, kind) in [
        (fifo.as_path(), "a FIFO"),
        (link.as_path(), "a symbolic link"),
        (subdir.as_path(), "a directory"),
        (Path::new("/dev/null"), "a character device"),
    ] {
        let out = mailtap(&[
            "replay",
            "--quiet",
            "--metrics-file",
            &target.to_string_lossy(),
            &input.to_string_lossy(),
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{target:?}: {stderr}");
        assert!(
            stderr.contains(&format!("exists and is not a regular file (it is {kind})")),
            "{stderr}"
        );
        assert!(out.stdout.is_empty(), "refused before the replay");
    }
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert!(std::fs::metadata("/dev/null")
        .unwrap()
        .file_type()
        .is_char_device());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_file_that_can_never_be_written_is_refused_at_start() {
    let missing = scratch("no-such-dir").join("mailtap.prom");
    let out = mailtap(&[
        "replay",
        "--quiet",
        "--metrics-file",
        &missing.to_string_lossy(),
        &case("smtp-starttls-25")
            .join("capture.pcap")
            .to_string_lossy(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("No such file or directory"), "{stderr}");
    assert!(out.stdout.is_empty(), "refused before the replay");
}
