//! The JSON Schemas in `docs/` hold for real output: every session record of every fixture
//! (`docs/session-record.schema.json`) and the JSON report of every fixture and of all of them
//! at once (`docs/report.schema.json`), validated by Python's `jsonschema`.

mod common;
mod python;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const REQUIRE: &str = "MAILTAP_REQUIRE_JSONSCHEMA";

fn schema(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs")
        .join(name)
}

/// Validate `files` against `schema`; the errors, or how many documents were checked.
fn validate(schema: &Path, files: &[&Path]) -> Result<u64, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/validate.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(schema)
        .args(files)
        .output()
        .expect("python3 runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(text.trim().parse().expect("a count"))
    } else {
        Err(format!("{text}{}", String::from_utf8_lossy(&out.stderr)))
    }
}

fn write_jsonl(path: &Path, docs: &[Value]) {
    let lines: Vec<String> = docs.iter().map(Value::to_string).collect();
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

#[test]
fn every_record_and_report_of_the_fixtures_fits_its_schema() {
    if !python::has_module("jsonschema", REQUIRE) {
        return;
    }
    let mut records = Vec::new();
    let mut reports = Vec::new();
    for dir in common::cases() {
        let (r, report) = common::replay_case(&dir);
        records.extend(r);
        reports.push(report);
    }
    let all = common::mailtap_ok(&[
        "replay",
        "--quiet",
        "--format",
        "json",
        common::fixtures().to_str().unwrap(),
    ]);
    reports.push(serde_json::from_slice(&all.stdout).unwrap());
    // A compressed file's entry says how it is compressed.
    let gz = common::scratch("capture.pcap.gz");
    let plain = std::fs::read(common::capture_of(&common::case("smtp-starttls-25")).unwrap());
    std::fs::write(&gz, common::gzip(&plain.unwrap())).unwrap();
    let compressed = common::mailtap_ok(&[
        "replay",
        "--quiet",
        "--format",
        "json",
        gz.to_str().unwrap(),
    ]);
    let compressed: Value = serde_json::from_slice(&compressed.stdout).unwrap();
    assert_eq!(compressed["files"][0]["compression"], "gzip");
    reports.push(compressed);
    let _ = std::fs::remove_file(gz);
    let (rec_file, rep_file) = (
        common::scratch("records.jsonl"),
        common::scratch("reports.jsonl"),
    );
    write_jsonl(&rec_file, &records);
    write_jsonl(&rep_file, &reports);
    let checked = validate(&schema("session-record.schema.json"), &[&rec_file]);
    assert_eq!(checked, Ok(records.len() as u64));
    assert!(records.len() > 60, "{} records", records.len());
    let checked = validate(&schema("report.schema.json"), &[&rep_file]);
    assert_eq!(checked, Ok(reports.len() as u64));
    let _ = std::fs::remove_file(rec_file);
    let _ = std::fs::remove_file(rep_file);
}

#[test]
fn the_schemas_refuse_what_the_record_does_not_hold() {
    // The control: a real record with one field too many, one value out of its set, and a
    // report without its servers, each fails.
    if !python::has_module("jsonschema", REQUIRE) {
        return;
    }
    let (records, report) = common::replay_case(&common::case("smtp-starttls-25"));
    let mut extra = records[0].clone();
    extra["subject"] = "Hello".into();
    let mut odd = records[0].clone();
    odd["encryption"] = "rot13".into();
    let mut cut = report.clone();
    cut.as_object_mut().unwrap().remove("servers");
    let bad_records = common::scratch("bad.jsonl");
    write_jsonl(&bad_records, &[extra, odd]);
    let errors = validate(&schema("session-record.schema.json"), &[&bad_records]).unwrap_err();
    assert!(errors.contains("'subject' was unexpected"), "{errors}");
    assert!(errors.contains("'rot13' is not one of"), "{errors}");
    let bad_report = common::scratch("bad-report.json");
    std::fs::write(&bad_report, cut.to_string()).unwrap();
    let errors = validate(&schema("report.schema.json"), &[&bad_report]).unwrap_err();
    assert!(
        errors.contains("'servers' is a required property"),
        "{errors}"
    );
    let _ = std::fs::remove_file(bad_records);
    let _ = std::fs::remove_file(bad_report);
}
