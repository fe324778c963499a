//! Every real fixture as mirror ports and archives deliver it (`fixtures/gen/transform.py
//! batch`): its IP packets cut into fragments (IPv4 in order, reversed, overlapping with the
//! same bytes; IPv6 in order and reversed, for the captures with IPv6 traffic), its frames
//! wrapped in VXLAN, GRE (Ethernet, IP), ERSPAN II and III, IPv4-in-IP and IP-in-IPv6, and
//! the capture file compressed whole with gzip and zstd. Each copy carries the base
//! capture's TCP segments byte for byte at the same times, so it must give exactly the
//! records of the base: every field, timestamps and byte counts included. overlap4's
//! repeated bytes are the same bytes: the first copy is kept and the fragment counted as a
//! defragmentation overlap, which is not a session anomaly, so its records are the base's too.
//!
//! zstd copies need the `zstd` command: without it they are left out with a message, unless
//! `MAILTAP_REQUIRE_ZSTD=1` (CI) makes that a failure.

mod common;

use common::library::{anchors, originals, records, replay};
use mailtap::session::cert::TlsContext;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

/// One line of the batch's manifest.
struct Copy {
    case: String,
    transformation: String,
    kind: String,
    /// `None`: the transformation does not apply, for the reason `skipped` gives.
    path: Option<PathBuf>,
    skipped: Option<String>,
    /// overlap4: the connections with a packet cut into overlapping fragments, as sorted
    /// pairs of their two ends.
    overlapped: BTreeSet<(String, String)>,
}

/// Writes every transformation of every fixture into `out`.
fn batch(out: &Path) -> Vec<Copy> {
    let script = common::fixtures().join("gen/transform.py");
    let status = Command::new("python3")
        .arg(&script)
        .arg("batch")
        .arg(out)
        .status()
        .expect("python3 runs");
    assert!(status.success(), "{} batch failed", script.display());
    let text = std::fs::read_to_string(out.join("manifest.json")).expect("manifest written");
    let manifest: Vec<Value> = serde_json::from_str(&text).expect("manifest is JSON");
    let text = |m: &Value, k: &str| m[k].as_str().map(str::to_string);
    manifest
        .iter()
        .map(|m| Copy {
            case: text(m, "case").expect("case"),
            transformation: text(m, "transformation").expect("transformation"),
            kind: text(m, "kind").expect("kind"),
            path: text(m, "path").map(|p| out.join(p)),
            skipped: text(m, "skipped"),
            overlapped: m["overlapped"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| Some((p[0].as_str()?.to_string(), p[1].as_str()?.to_string())))
                .collect(),
        })
        .collect()
}

const FRAGMENTS_V4: [&str; 3] = ["frag4", "frag4-reverse", "overlap4"];
const FRAGMENTS_V6: [&str; 2] = ["frag6", "frag6-reverse"];
const TUNNELS: [&str; 7] = [
    "vxlan", "gre-eth", "gre-ip", "erspan2", "erspan3", "ipip4", "ipip6",
];
const COMPRESSIONS: [&str; 2] = ["gzip", "zstd"];

/// The anomaly `fragment_overlap` taken out of the records of the connections the copy
/// cut into overlapping fragments; an error if one of them lacks it, or another has it.
fn without_overlap_anomaly(copy: &Copy, records: &mut [Value]) -> Result<(), String> {
    for r in records {
        let ends = |k: &str| r[k].as_str().unwrap_or_default().to_string();
        let (a, b) = (ends("client"), ends("server"));
        let pair = if a <= b { (a, b) } else { (b, a) };
        let expected = copy.overlapped.contains(&pair);
        let Some(list) = r["anomalies"].as_array_mut() else {
            return Err(format!("{pair:?}: no anomalies list"));
        };
        let before = list.len();
        list.retain(|a| a != "fragment_overlap");
        if (before != list.len()) != expected {
            return Err(format!("{pair:?}: fragment_overlap expected: {expected}"));
        }
    }
    Ok(())
}

/// Whether a record's connection is over IPv6 (`[addr]:port`).
fn over_ipv6(record: &Value) -> bool {
    record["client"]
        .as_str()
        .is_some_and(|c| c.starts_with('['))
}

fn zstd_required() -> bool {
    std::env::var("MAILTAP_REQUIRE_ZSTD").is_ok_and(|v| v == "1")
}

/// A transformation may be left out only for the reason that matches the base's records: no
/// IPv6 connection for frag6, no IPv4 one for frag4, a missing `zstd` for zstd.
fn check_skip(copy: &Copy, base: &[Value], failures: &mut Vec<String>) {
    let Some(reason) = &copy.skipped else {
        return;
    };
    let t = copy.transformation.as_str();
    let allowed = if FRAGMENTS_V6.contains(&t) {
        !base.iter().any(over_ipv6)
    } else if FRAGMENTS_V4.contains(&t) {
        base.iter().all(over_ipv6)
    } else if t == "zstd" {
        !zstd_required()
    } else {
        false
    };
    if !allowed {
        failures.push(format!("{} {t}: left out: {reason}", copy.case));
    }
}

#[test]
fn transformed_copies_give_the_records_of_the_original() {
    let out = common::scratch_dir("transformed");
    let all = batch(&out);
    let cases: BTreeSet<&str> = all.iter().map(|c| c.case.as_str()).collect();
    assert!(cases.len() >= 90, "{} cases", cases.len());
    let names: BTreeSet<&str> = all.iter().map(|c| c.transformation.as_str()).collect();
    let every: BTreeSet<&str> = [&FRAGMENTS_V4[..], &FRAGMENTS_V6, &TUNNELS, &COMPRESSIONS]
        .concat()
        .into_iter()
        .collect();
    assert_eq!(names, every, "the transformations");
    // Every case once under every transformation, made or left out.
    assert_eq!(all.len(), cases.len() * every.len());

    let bases = originals(cases.iter().copied());

    let mut failures = Vec::new();
    let mut made: BTreeMap<&str, usize> = BTreeMap::new();
    for copy in &all {
        let (tls, want) = &bases[copy.case.as_str()];
        check_skip(copy, want, &mut failures);
        let Some(path) = &copy.path else {
            continue;
        };
        *made.entry(copy.kind.as_str()).or_default() += 1;
        let (read, mut got) = replay(path, tls);
        if let Err(e) = without_overlap_anomaly(copy, &mut got) {
            failures.push(format!("{} {}: {e}", copy.case, copy.transformation));
        }
        if let Err(e) = read.result {
            failures.push(format!("{} {}: {e}", copy.case, copy.transformation));
        } else if &got != want {
            failures.push(format!(
                "{} {}: records differ\n got: {got:#?}\n want: {want:#?}",
                copy.case, copy.transformation
            ));
        }
    }
    let _ = std::fs::remove_dir_all(&out);
    let no_zstd = all
        .iter()
        .filter(|c| c.transformation == "zstd" && c.path.is_none())
        .count();
    if no_zstd > 0 && !zstd_required() {
        eprintln!("transformed: {no_zstd} zstd copies left out: no zstd command");
    }
    // Every real capture has IPv4 or IPv6 TCP payload, so at least three fragmented copies;
    // two have IPv6 sessions (fixtures/ipv6, smtp-ipv6-starttls).
    let n = cases.len();
    assert!(made.get("fragment").copied().unwrap_or(0) >= 3 * (n - 2) + 2 * 2);
    assert_eq!(made.get("tunnel"), Some(&(TUNNELS.len() * n)));
    assert!(
        made.get("compress").copied().unwrap_or(0) >= n,
        "gzip of every case"
    );
    assert!(
        failures.is_empty(),
        "{} of {} copies:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );
}

/// Where compressed.rs cuts one `.gz` (made by flate2) and reads it with the binary, this cuts
/// the gzip copy of every real capture (made by Python's gzip module) in the middle and reads
/// it with the library: the error names an offset in the decompressed stream, and the records
/// are exactly those of the plain capture cut at that offset — every session the packets
/// before the cut make, each as far as they take it, pcapng included.
#[test]
fn a_cut_gzip_copy_gives_the_records_of_the_capture_up_to_the_offset() {
    let out = common::scratch_dir("transformed-cut");
    let gzips: Vec<Copy> = batch(&out)
        .into_iter()
        .filter(|c| c.transformation == "gzip")
        .collect();
    assert!(gzips.len() >= 90, "{} gzip copies", gzips.len());
    let mut failures = Vec::new();
    for copy in &gzips {
        let dir = common::case(&copy.case);
        let tls = Arc::new(TlsContext::new(&anchors(&dir)).expect("trust anchors load"));
        let gz = copy.path.as_ref().expect("gzip always applies");
        let whole = std::fs::read(gz).expect("gzip copy");
        let cut = out.join(format!("{}-cut.gz", copy.case));
        std::fs::write(&cut, &whole[..whole.len() / 2]).expect("scratch");
        let (read, got) = replay(&cut, &tls);
        let offset = match &read.result {
            Err(e) if e.compression().is_some() => e.offset(),
            other => {
                failures.push(format!("{}: cut gzip read as {other:?}", copy.case));
                continue;
            }
        };
        let Some(offset) = offset else {
            failures.push(format!("{}: no offset in {:?}", copy.case, read.result));
            continue;
        };
        let plain = std::fs::read(common::capture_of(&dir).expect("capture")).expect("capture");
        let prefix = out.join(format!("{}-prefix.cap", copy.case));
        let end = usize::try_from(offset).expect("offset fits");
        std::fs::write(&prefix, &plain[..end.min(plain.len())]).expect("scratch");
        let want = records(&prefix, &tls);
        if got != want {
            failures.push(format!(
                "{}: cut at byte {offset}: records differ\n got: {got:#?}\n want: {want:#?}",
                copy.case
            ));
        }
    }
    let _ = std::fs::remove_dir_all(&out);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
