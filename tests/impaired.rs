//! Every real fixture, impaired the way span ports and taps impair captures
//! (`fixtures/gen/impair.py batch`): its frames permuted within windows of 2 to 8 (both
//! directions, three seeds each), every frame duplicated, every frame cut to 96 and to 200
//! bytes. Permuted and duplicated copies must give exactly the records of the original;
//! a cut copy must never turn an encrypted session into `plaintext` or `tls_failed`.
//!
//! The hand-made `evasion-*` cases are left out of the permutations: they send two different
//! payloads for the same sequence numbers, and which copy is "first" (the one kept, as
//! Suricata's default policy does) is decided by capture order, by design.

mod common;

use common::library::{originals, records};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

struct Variant {
    case: String,
    name: String,
    kind: String,
    path: PathBuf,
}

/// Writes every batch variant of every fixture into a scratch folder.
fn variants(out: &Path) -> Vec<Variant> {
    let script = common::fixtures().join("gen/impair.py");
    let status = Command::new("python3")
        .arg(&script)
        .arg("batch")
        .arg(out)
        .status()
        .expect("python3 runs");
    assert!(status.success(), "{} batch failed", script.display());
    let text = std::fs::read_to_string(out.join("manifest.json")).expect("manifest written");
    let manifest: Vec<Value> = serde_json::from_str(&text).expect("manifest is JSON");
    manifest
        .iter()
        .map(|m| Variant {
            case: m["case"].as_str().expect("case").to_string(),
            name: m["variant"].as_str().expect("variant").to_string(),
            kind: m["kind"].as_str().expect("kind").to_string(),
            path: out.join(m["path"].as_str().expect("path")),
        })
        .collect()
}

fn encrypted(record: &Value) -> bool {
    matches!(
        record["encryption"].as_str(),
        Some("starttls" | "implicit_tls")
    )
}

/// A session's identity across copies of a capture: its two endpoints.
fn endpoints(record: &Value) -> (String, String) {
    (record["client"].to_string(), record["server"].to_string())
}

#[test]
fn impaired_copies_keep_the_verdicts() {
    let out = common::scratch("impaired");
    let all = variants(&out);
    let cases: BTreeSet<&str> = all.iter().map(|v| v.case.as_str()).collect();
    assert!(cases.len() >= 90, "{} cases", cases.len());

    let originals = originals(cases.iter().copied());

    let mut failures = Vec::new();
    let mut checked: BTreeMap<&str, usize> = BTreeMap::new();
    for v in &all {
        let (tls, want) = &originals[v.case.as_str()];
        let reorder_exempt = v.kind == "reorder" && v.case.starts_with("evasion-");
        if reorder_exempt {
            continue;
        }
        let got = records(&v.path, tls);
        *checked.entry(v.kind.as_str()).or_default() += 1;
        match v.kind.as_str() {
            "reorder" | "dup" => {
                if &got != want {
                    failures.push(format!(
                        "{} {}: records differ\n got: {got:#?}\n want: {want:#?}",
                        v.case, v.name
                    ));
                }
            }
            "snap" => {
                let cut: BTreeMap<_, _> = got.iter().map(|r| (endpoints(r), r)).collect();
                for w in want.iter().filter(|r| encrypted(r)) {
                    let verdict = cut.get(&endpoints(w)).map(|r| &r["encryption"]);
                    if matches!(
                        verdict.and_then(Value::as_str),
                        None | Some("plaintext" | "tls_failed")
                    ) {
                        failures.push(format!(
                            "{} {}: {} {} was {}, cut it is {verdict:?}",
                            v.case, v.name, w["client"], w["server"], w["encryption"]
                        ));
                    }
                }
            }
            other => panic!("unknown kind {other}"),
        }
    }
    let _ = std::fs::remove_dir_all(&out);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Every kind ran over every case (the evasion cases apart for permutations).
    assert_eq!(checked.get("dup"), Some(&cases.len()));
    assert_eq!(checked.get("snap"), Some(&(2 * cases.len())));
    let evasion = cases.iter().filter(|c| c.starts_with("evasion-")).count();
    assert_eq!(
        checked.get("reorder"),
        Some(&(21 * (cases.len() - evasion)))
    );
}
