//! `docs/duckdb.md`'s query, run by DuckDB (Python's `duckdb`) on the session log of a replay
//! of every fixture, gives the JSON report's coverage table of the same replay, number for
//! number.

mod common;
mod python;

use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// The query between the doc's markers, as it stands there.
fn documented_query() -> String {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/duckdb.md"))
        .expect("docs/duckdb.md");
    let block = doc
        .split("<!-- BEGIN coverage.sql")
        .nth(1)
        .and_then(|b| b.split("<!-- END coverage.sql").next())
        .expect("the coverage.sql markers");
    let sql = block
        .split("```sql\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("an sql block between the markers");
    assert!(sql.contains("read_json_auto('sessions.jsonl')"), "{sql}");
    sql.to_string()
}

#[test]
fn the_documented_query_gives_the_reports_coverage_table() {
    if !python::has_module("duckdb", "MAILTAP_REQUIRE_DUCKDB") {
        return;
    }
    let log = common::scratch("duckdb-sessions.jsonl");
    let out = common::mailtap_ok(&[
        "replay",
        "--quiet",
        "--format",
        "json",
        "--sessions",
        log.to_str().unwrap(),
        common::fixtures().to_str().unwrap(),
    ]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let sql = documented_query().replace("sessions.jsonl", log.to_str().unwrap());
    let script = "import duckdb, json, sys\n\
                  r = duckdb.sql(sys.stdin.read())\n\
                  cols = [c for c in r.columns]\n\
                  print(json.dumps([dict(zip(cols, row)) for row in r.fetchall()]))\n";
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(sql.as_bytes())
        .unwrap();
    let done = child.wait_with_output().unwrap();
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let rows: Vec<Value> = serde_json::from_slice(&done.stdout).unwrap();
    let protocols: Vec<&Value> = report["protocols"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["connections"].as_u64() > Some(0))
        .collect();
    assert_eq!(rows.len(), protocols.len(), "{rows:?}");
    assert_eq!(
        protocols.len(),
        7,
        "every protocol has sessions in the fixtures"
    );
    for p in protocols {
        let name = p["protocol"].as_str().unwrap();
        let row = rows
            .iter()
            .find(|r| r["protocol"] == name)
            .unwrap_or_else(|| panic!("{name} missing from {rows:?}"));
        assert_eq!(row["sessions"], p["connections"], "{name}");
        for (encryption, n) in p["sessions"].as_object().unwrap() {
            assert_eq!(&row[encryption], n, "{name} {encryption}");
        }
        // The same division of the same integers: equal to the last bit.
        assert_eq!(row["encrypted_share"], p["encrypted_share"], "{name}");
        for field in [
            "starttls_offered",
            "starttls_attempted",
            "cleartext_auth_sessions",
            "cleartext_messages",
        ] {
            assert_eq!(row[field], p[field], "{name} {field}");
        }
    }
    let _ = std::fs::remove_file(log);
}
