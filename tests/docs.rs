//! The documents in `docs/` cover what mailtap writes: every field and value of the session
//! record's schema is in `docs/records.md`, every metric mailtap exports (with each of its
//! labels) is in `docs/metrics.md`, and the README points to them, not outside the repository.

mod common;

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every property of `schema` as a dotted path (`tls.certificate.status`), and every enum
/// value, following `$ref`s into `$defs`.
fn walk(
    schema: &Value,
    node: &Value,
    at: &str,
    paths: &mut Vec<String>,
    values: &mut BTreeSet<String>,
) {
    if let Some(r) = node["$ref"].as_str() {
        let name = r.trim_start_matches("#/$defs/");
        return walk(schema, &schema["$defs"][name], at, paths, values);
    }
    for e in node["enum"].as_array().into_iter().flatten() {
        values.insert(e.as_str().unwrap_or_default().to_string());
    }
    for key in ["anyOf", "oneOf"] {
        for alt in node[key].as_array().into_iter().flatten() {
            walk(schema, alt, at, paths, values);
        }
    }
    walk_items(schema, &node["items"], at, paths, values);
    for (name, sub) in node["properties"].as_object().into_iter().flatten() {
        let path = if at.is_empty() {
            name.clone()
        } else {
            format!("{at}.{name}")
        };
        paths.push(path.clone());
        walk(schema, sub, &path, paths, values);
    }
}

fn walk_items(
    schema: &Value,
    items: &Value,
    at: &str,
    paths: &mut Vec<String>,
    values: &mut BTreeSet<String>,
) {
    if items.is_object() {
        walk(schema, items, at, paths, values);
    }
}

#[test]
fn records_md_names_every_field_and_value_of_the_record() {
    let schema: Value = serde_json::from_str(&read("docs/session-record.schema.json")).unwrap();
    let doc = read("docs/records.md");
    let (mut paths, mut values) = (Vec::new(), BTreeSet::new());
    walk(&schema, &schema, "", &mut paths, &mut values);
    assert!(
        paths.len() > 25 && values.len() > 80,
        "{paths:?} {values:?}"
    );
    for p in &paths {
        assert!(
            doc.contains(&format!("| `{p}` |")),
            "records.md has no row for `{p}`"
        );
    }
    for v in &values {
        assert!(
            doc.contains(&format!("`{v}`")),
            "records.md does not name `{v}`"
        );
    }
}

#[test]
fn metrics_md_lists_every_exported_metric_and_its_labels() {
    let prom = common::scratch("docs.prom");
    common::mailtap_ok(&[
        "replay",
        "--quiet",
        "--metrics-file",
        prom.to_str().unwrap(),
        common::fixtures().to_str().unwrap(),
    ]);
    let text = std::fs::read_to_string(&prom).unwrap();
    let _ = std::fs::remove_file(&prom);
    let mut labels: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let name = rest.split_whitespace().next().unwrap().to_string();
            labels.entry(name).or_default();
        } else if !line.starts_with('#') {
            let name = line.split(['{', ' ']).next().unwrap();
            let set = labels.entry(name.to_string()).or_default();
            if let Some(inside) = line.split_once('{').and_then(|(_, r)| r.split_once('}')) {
                for pair in inside.0.split(',') {
                    set.insert(pair.split('=').next().unwrap().to_string());
                }
            }
        }
    }
    assert!(labels.len() >= 19, "{labels:?}");
    let doc = read("docs/metrics.md");
    for (metric, names) in &labels {
        let row = doc
            .lines()
            .find(|l| l.starts_with(&format!("| `{metric}` |")))
            .unwrap_or_else(|| panic!("metrics.md has no row for {metric}"));
        for n in names {
            assert!(
                row.contains(&format!("`{n}`")),
                "{metric}: label {n} not in `{row}`"
            );
            assert!(
                doc.contains(&format!("\n| `{n}` |")) || doc.contains(&format!(", `{n}` |")),
                "metrics.md does not list the values of {n}"
            );
        }
    }
}

#[test]
fn the_readme_points_into_the_repository() {
    let readme = read("README.md");
    assert!(
        !readme.contains("../shared"),
        "README points outside the repository"
    );
    for doc in [
        "docs/records.md",
        "docs/metrics.md",
        "docs/duckdb.md",
        "docs/session-record.schema.json",
        "docs/report.schema.json",
    ] {
        assert!(
            readme.contains(&format!("({doc})")),
            "README does not link {doc}"
        );
        assert!(
            Path::new(env!("CARGO_MANIFEST_DIR")).join(doc).is_file(),
            "{doc}"
        );
    }
}
