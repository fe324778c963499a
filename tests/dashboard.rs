//! The Grafana dashboard and the Prometheus rules in `dashboards/`, held against the exporter
//! they describe: structure, metric and label names, the README's layout table, and every
//! query run on a real Prometheus that scraped `mailtap replay fixtures/`.

#[path = "../examples/dashboard_layout.rs"]
mod layout;

mod common;

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Metrics another change is adding to the exporter. The dashboard and the rules already use
/// them; the checks below hold them to the same standard as soon as the exposition has them.
const PENDING: &[&str] = &[
    "mailtap_capture_dropped_packets_total",
    "mailtap_parse_errors_total",
];

/// Labels of a pending metric, for the checks that need them before it is exported.
fn pending_labels(metric: &str) -> &'static [&'static str] {
    match metric {
        "mailtap_capture_dropped_packets_total" => &["where"],
        "mailtap_parse_errors_total" => &["protocol"],
        _ => &[],
    }
}

const ROWS: &[&str] = &[
    "Coverage",
    "STARTTLS",
    "TLS",
    "Credentials",
    "Sensor health",
];
const DS: &str = "${DS_PROMETHEUS}";
/// Labels Prometheus adds to every scraped series.
const TARGET_LABELS: &[&str] = &["instance", "job"];

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn alerts_text() -> String {
    std::fs::read_to_string(repo().join("dashboards/alerts.yml")).expect("dashboards/alerts.yml")
}

// ------------------------------------------------------------------------ the exposition

/// Metric name → label name → values seen, from the text exposition format.
type Exposition = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

/// What mailtap exports after replaying every fixture (`--metrics-file`).
fn exposition() -> Exposition {
    let file = common::scratch("metrics.prom");
    let out = common::mailtap(&[
        "replay",
        "--quiet",
        "--metrics-file",
        file.to_str().unwrap(),
        common::fixtures().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "mailtap replay: {out:?}");
    let text = std::fs::read_to_string(&file).expect("metrics file written");
    let _ = std::fs::remove_file(&file);
    parse_exposition(&text)
}

fn parse_exposition(text: &str) -> Exposition {
    let mut out = Exposition::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let name = rest.split_whitespace().next().unwrap_or_default();
            out.entry(name.to_string()).or_default();
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let name_end = line.find(['{', ' ']).expect("sample line has a value");
        let labels = out.entry(line[..name_end].to_string()).or_default();
        if line[name_end..].starts_with('{') {
            let body = &line[name_end + 1..line.rfind('}').expect("closing brace")];
            for (name, _, value) in matchers(body) {
                labels.entry(name).or_default().insert(value);
            }
        }
    }
    out
}

// ------------------------------------------------------------------------ PromQL, lightly

/// `name op "value"` pairs of a label list (matchers, or the labels of a sample).
fn matchers(body: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut rest = body.trim();
    while !rest.is_empty() {
        let name_end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or_else(|| panic!("label list {body:?}"));
        let name = rest[..name_end].to_string();
        rest = rest[name_end..].trim_start();
        let op_len = rest
            .find('"')
            .unwrap_or_else(|| panic!("label list {body:?}"));
        let op = rest[..op_len].trim().to_string();
        rest = &rest[op_len + 1..];
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => value.extend(chars.next().map(|(_, c)| c)),
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => panic!("unterminated value in {body:?}"),
            }
        };
        out.push((name, op, value));
        rest = rest[end + 1..]
            .trim_start()
            .trim_start_matches(',')
            .trim_start();
    }
    out
}

/// A `mailtap_…` selector in an expression and its label matchers.
struct Selector {
    metric: String,
    matchers: Vec<(String, String, String)>,
}

fn selectors(expr: &str) -> Vec<Selector> {
    let mut out = Vec::new();
    for name in layout::metric_names(expr) {
        let mut from = 0;
        while let Some(i) = expr[from..].find(&name).map(|i| i + from) {
            let after = i + name.len();
            from = after;
            let boundary_before = !expr[..i]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
            let next = expr[after..].chars().next();
            if !boundary_before || next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                continue;
            }
            let matchers = if next == Some('{') {
                let close = expr[after..].find('}').expect("selector closes") + after;
                matchers(&expr[after + 1..close])
            } else {
                Vec::new()
            };
            out.push(Selector {
                metric: name.clone(),
                matchers,
            });
        }
    }
    out
}

/// The labels of every `by (...)` / `without (...)` / `on (...)` clause.
fn grouping_labels(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    for kw in [
        "by",
        "on",
        "without",
        "ignoring",
        "group_left",
        "group_right",
    ] {
        let mut from = 0;
        while let Some(i) = expr[from..].find(kw).map(|i| i + from) {
            from = i + kw.len();
            let word_start = !expr[..i]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
            let rest = expr[from..].trim_start();
            if word_start && rest.starts_with('(') {
                let close = rest.find(')').expect("clause closes");
                out.extend(
                    rest[1..close]
                        .split(',')
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .map(str::to_string),
                );
            }
        }
    }
    out
}

/// Grafana variables replaced the way a dashboard with everything selected would.
fn substitute(expr: &str) -> String {
    let mut s = expr.to_string();
    for (var, value) in [
        ("${instance}", ".*"),
        ("$instance", ".*"),
        ("${protocol}", ".*"),
        ("$protocol", ".*"),
        ("${__rate_interval}", "1m"),
        ("$__rate_interval", "1m"),
        ("${__range}", "1m"),
        ("$__range", "1m"),
        ("${__interval}", "15s"),
        ("$__interval", "15s"),
    ] {
        s = s.replace(var, value);
    }
    assert!(!s.contains('$'), "unknown variable left in {s}");
    s
}

/// The PromQL of a query variable: `label_values(X, label)` asks which values `label` takes
/// in `X`, i.e. `count by (label) (X)` must return series.
fn variable_query(var: &Value) -> Option<(String, String)> {
    let q = match &var["query"] {
        Value::String(s) => s.clone(),
        v => v["query"].as_str()?.to_string(),
    };
    let inner = q
        .trim()
        .strip_prefix("label_values(")
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or_else(|| panic!("variable query {q:?}: only label_values(X, label) is used"));
    let comma = inner.rfind(',').expect("label_values(X, label)");
    let label = inner[comma + 1..].trim().to_string();
    Some((
        format!("count by ({label}) ({})", inner[..comma].trim()),
        label,
    ))
}

fn dashboard_exprs(d: &Value) -> Vec<String> {
    let mut out: Vec<String> = layout::panels(d)
        .iter()
        .flat_map(|p| p.exprs().into_iter().map(str::to_string))
        .collect();
    out.extend(
        variables(d)
            .iter()
            .filter_map(|v| variable_query(v).map(|(q, _)| q)),
    );
    out
}

fn variables(d: &Value) -> Vec<&Value> {
    d["templating"]["list"]
        .as_array()
        .map(|l| l.iter().filter(|v| v["type"] == "query").collect())
        .unwrap_or_default()
}

/// The `expr:` of every rule in a rules file (block scalars or one line).
fn rule_exprs(yaml: &str) -> Vec<String> {
    let lines: Vec<&str> = yaml.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(rest) = line.trim_start().strip_prefix("expr:") else {
            continue;
        };
        let rest = rest.trim();
        if rest.starts_with('|') || rest.starts_with('>') {
            let body: Vec<&str> = lines[i + 1..]
                .iter()
                .take_while(|l| l.trim().is_empty() || indent(l) > indent(line))
                .map(|l| l.trim())
                .collect();
            out.push(body.join("\n"));
        } else {
            out.push(rest.to_string());
        }
    }
    out
}

// ------------------------------------------------------------------------ structure

#[test]
fn dashboard_imports_anywhere_and_has_the_variables() {
    let d = layout::load();
    assert!(d["uid"].as_str().is_some_and(|u| !u.is_empty()), "uid");
    assert!(d["title"].as_str().is_some_and(|t| !t.is_empty()), "title");
    assert!(
        d["id"].is_null(),
        "an exported dashboard has no database id"
    );
    let schema = d["schemaVersion"].as_u64().expect("schemaVersion");
    assert!(
        schema >= 36,
        "schemaVersion {schema}: the JSON model of Grafana 10/11"
    );

    let inputs = d["__inputs"].as_array().expect("__inputs");
    assert!(
        inputs.iter().any(|i| i["name"] == "DS_PROMETHEUS"
            && i["type"] == "datasource"
            && i["pluginId"] == "prometheus"),
        "__inputs asks for a Prometheus data source as DS_PROMETHEUS"
    );

    let list = d["templating"]["list"].as_array().expect("templating");
    let var = |name: &str| {
        list.iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("variable {name}"))
    };
    let ds = var("DS_PROMETHEUS");
    assert_eq!(ds["type"], "datasource");
    assert_eq!(ds["query"], "prometheus");
    for name in ["instance", "protocol"] {
        let v = var(name);
        assert_eq!(v["type"], "query", "{name}");
        assert_eq!(v["datasource"]["uid"], DS, "{name}");
        assert_eq!(v["includeAll"], true, "{name}: an All option");
        assert_eq!(v["multi"], true, "{name}: several values");
        assert_eq!(v["allValue"], ".*", "{name}: All is a regex, not a list");
        assert!(variable_query(v).is_some(), "{name}: a query");
    }
}

#[test]
fn rows_come_in_order_and_every_panel_is_described_placed_and_aggregated() {
    let d = layout::load();
    let top = d["panels"].as_array().expect("panels");
    let rows: Vec<&str> = top
        .iter()
        .filter(|p| p["type"] == "row")
        .filter_map(|p| p["title"].as_str())
        .collect();
    assert_eq!(rows, ROWS);

    // Ids unique, every panel inside the 24-column grid, no two panels overlapping.
    let mut all: Vec<&Value> = top.iter().collect();
    for r in top.iter().filter(|p| p["type"] == "row") {
        all.extend(r["panels"].as_array().into_iter().flatten());
    }
    let mut ids = BTreeSet::new();
    let mut boxes = Vec::new();
    for p in &all {
        let title = p["title"].as_str().unwrap_or("?");
        assert!(
            ids.insert(p["id"].as_u64().expect("id")),
            "duplicate id: {title}"
        );
        let g = &p["gridPos"];
        let [x, y, w, h] = ["x", "y", "w", "h"].map(|k| g[k].as_u64().expect("gridPos"));
        assert!(w > 0 && h > 0 && x + w <= 24, "{title}: gridPos {g}");
        boxes.push((title, x, y, w, h));
    }
    for (i, a) in boxes.iter().enumerate() {
        for b in &boxes[i + 1..] {
            let apart =
                a.1 + a.3 <= b.1 || b.1 + b.3 <= a.1 || a.2 + a.4 <= b.2 || b.2 + b.4 <= a.2;
            assert!(apart, "panels overlap: {:?} and {:?}", a.0, b.0);
        }
    }

    let panels = layout::panels(&d);
    assert!(panels.len() >= 20, "{} panels", panels.len());
    for row in ROWS {
        assert!(panels.iter().any(|p| p.row == *row), "row {row} has panels");
    }
    for p in &panels {
        let title = p.title();
        assert!(!title.is_empty(), "a panel without a title");
        let desc = p.json["description"].as_str().unwrap_or("");
        assert!(
            desc.len() >= 80,
            "{title}: a description saying what it measures and how to read it"
        );
        assert_eq!(p.json["datasource"]["uid"], DS, "{title}: data source");
        let targets = p.json["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title}: no query");
        let mut refs = BTreeSet::new();
        for t in targets {
            assert_eq!(t["datasource"]["uid"], DS, "{title}: query data source");
            assert!(
                refs.insert(t["refId"].as_str().expect("refId")),
                "{title}: refId"
            );
        }
        for e in p.exprs() {
            // Aggregated, so several sensors add up in one Prometheus.
            let e = e.trim();
            let inner = e.strip_prefix("ceil(").unwrap_or(e);
            assert!(
                ["sum", "max", "min", "count", "topk", "bottomk"]
                    .iter()
                    .any(|a| inner.starts_with(a)),
                "{title}: not aggregated: {e}"
            );
            for s in selectors(e) {
                assert!(
                    s.matchers
                        .iter()
                        .any(|(l, op, v)| l == "instance" && op == "=~" && v == "$instance"),
                    "{title}: {} ignores the instance variable",
                    s.metric
                );
            }
            substitute(e);
        }
    }
}

#[test]
fn readme_layout_table_is_the_generated_one() {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    let range = layout::section(&readme).expect("README has the dashboard layout markers");
    assert_eq!(
        readme[range].trim(),
        layout::table(&layout::load()).trim(),
        "README's dashboard layout is stale: cargo run --example dashboard_layout -- --write README.md"
    );
}

// ------------------------------------------------------------------------ against the exporter

#[test]
fn dashboard_and_rules_use_only_exported_metrics_labels_and_values() {
    let exp = exposition();
    let d = layout::load();
    let mut problems = Vec::new();
    let panel_exprs: Vec<String> = layout::panels(&d)
        .iter()
        .flat_map(|p| p.exprs().into_iter().map(str::to_string))
        .collect();
    let variable_exprs: Vec<String> = variables(&d)
        .iter()
        .filter_map(|v| variable_query(v).map(|(q, _)| q))
        .collect();
    let sources = [
        ("dashboard", panel_exprs),
        ("dashboard variables", variable_exprs),
        ("alerts.yml", rule_exprs(&alerts_text())),
    ];
    assert!(
        sources[2].1.len() >= 6,
        "alert rules found: {:?}",
        sources[2].1
    );
    for (source, exprs) in &sources {
        for e in exprs {
            let mut metric_labels: BTreeSet<String> =
                TARGET_LABELS.iter().map(|s| s.to_string()).collect();
            for s in selectors(e) {
                let labels: Vec<String> = match exp.get(&s.metric) {
                    Some(l) => l.keys().cloned().collect(),
                    None if PENDING.contains(&s.metric.as_str()) => pending_labels(&s.metric)
                        .iter()
                        .map(|s| s.to_string())
                        .collect(),
                    None => {
                        problems.push(format!("{source}: {} is not exported", s.metric));
                        continue;
                    }
                };
                metric_labels.extend(labels.iter().cloned());
                if source == &"dashboard"
                    && labels.iter().any(|l| l == "protocol")
                    && !s
                        .matchers
                        .iter()
                        .any(|(l, _, v)| l == "protocol" && v == "$protocol")
                {
                    problems.push(format!(
                        "{source}: {} ignores the protocol variable",
                        s.metric
                    ));
                }
                for (label, op, value) in &s.matchers {
                    if TARGET_LABELS.contains(&label.as_str()) {
                        continue;
                    }
                    if !labels.contains(label) {
                        problems.push(format!("{source}: {} has no label {label}", s.metric));
                        continue;
                    }
                    let Some(known) = exp.get(&s.metric).and_then(|l| l.get(label)) else {
                        continue; // a pending metric: values unknown yet
                    };
                    if value.contains('$') {
                        continue;
                    }
                    let literal = value
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_-|".contains(c));
                    let values: Vec<&str> = match op.as_str() {
                        "=" | "!=" => vec![value.as_str()],
                        _ if literal => value.split('|').collect(),
                        _ => vec![],
                    };
                    for v in values {
                        if !known.contains(v) {
                            problems.push(format!(
                                "{source}: {}{{{label}{op}\"{value}\"}}: {v:?} is never exported",
                                s.metric
                            ));
                        }
                    }
                }
            }
            for g in grouping_labels(e) {
                if !metric_labels.contains(&g) {
                    problems.push(format!(
                        "{source}: grouping by {g}, a label of none of its metrics: {e}"
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    for p in PENDING {
        if exp.contains_key(*p) {
            eprintln!("note: {p} is exported now; drop it from PENDING in tests/dashboard.rs");
        }
    }
}

#[test]
fn every_exported_metric_is_on_the_dashboard() {
    let exp = exposition();
    let d = layout::load();
    let shown: BTreeSet<String> = dashboard_exprs(&d)
        .iter()
        .flat_map(|e| layout::metric_names(e))
        .collect();
    let missing: Vec<&String> = exp.keys().filter(|m| !shown.contains(*m)).collect();
    assert!(missing.is_empty(), "exported but on no panel: {missing:?}");
    for p in PENDING {
        assert!(shown.contains(*p), "{p} has a panel");
    }
}

// ------------------------------------------------------------------------ a real Prometheus

/// A child process that is killed when the test ends, however it ends.
struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn http_get(port: u16, path: &str) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .map_err(|e| e.to_string())?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").map_err(|e| e.to_string())?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).map_err(|e| e.to_string())?;
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("not HTTP: {raw:.100}"))?;
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    Ok((status, body.to_string()))
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

struct Prometheus {
    port: u16,
}

impl Prometheus {
    /// `Ok(result)` for a query that parsed and ran, `Err(message)` otherwise.
    fn api(&self, path: &str) -> Result<Value, String> {
        let (status, body) = http_get(self.port, path)?;
        let v: Value =
            serde_json::from_str(&body).map_err(|e| format!("{status}: {e}: {body:.200}"))?;
        if v["status"] != "success" {
            return Err(format!("{}: {}", v["errorType"], v["error"]));
        }
        Ok(v["data"]["result"].clone())
    }

    fn instant(&self, q: &str, time: f64) -> Result<Value, String> {
        self.api(&format!(
            "/api/v1/query?query={}&time={time:.3}",
            urlencode(q)
        ))
    }

    fn range(&self, q: &str, end: f64) -> Result<Value, String> {
        self.api(&format!(
            "/api/v1/query_range?query={}&start={:.3}&end={end:.3}&step=1",
            urlencode(q),
            end - 60.0
        ))
    }
}

fn prometheus_installed() -> bool {
    Command::new("prometheus")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Every panel and variable query, variables substituted, runs on a real Prometheus (Debian's
/// package, started here with a temporary TSDB and a 1 s scrape interval) that scraped mailtap
/// serving `/metrics` during and after a replay of the fixtures: each one must parse and
/// return data. Skipped without `prometheus` unless `MAILTAP_REQUIRE_PROMETHEUS=1`.
#[test]
fn every_query_returns_data_from_a_real_prometheus() {
    if !prometheus_installed() {
        assert!(
            std::env::var_os("MAILTAP_REQUIRE_PROMETHEUS").is_none_or(|v| v != "1"),
            "MAILTAP_REQUIRE_PROMETHEUS=1 but `prometheus` is not installed"
        );
        eprintln!("skipped: `prometheus` is not installed (apt-get install prometheus)");
        return;
    }
    let exp = exposition();
    let expected_sessions: usize = {
        // The sessions the replay counts, to know when Prometheus has seen all of them.
        let file = common::scratch("sessions.jsonl");
        let out = common::mailtap(&[
            "replay",
            "--quiet",
            "--sessions",
            file.to_str().unwrap(),
            common::fixtures().to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{out:?}");
        let n = std::fs::read_to_string(&file).unwrap().lines().count();
        let _ = std::fs::remove_file(&file);
        n
    };

    let dir: PathBuf = common::scratch("prometheus");
    std::fs::create_dir_all(&dir).unwrap();
    let mailtap_port = free_port();
    let prom_port = free_port();
    std::fs::write(
        dir.join("prometheus.yml"),
        format!(
            "global: {{scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}}\n\
             scrape_configs:\n  - job_name: mailtap\n    static_configs:\n      \
             - targets: ['127.0.0.1:{mailtap_port}']\n"
        ),
    )
    .unwrap();
    let log = |name: &str| std::fs::File::create(dir.join(name)).unwrap();
    let _prometheus = Reaper(
        Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(log("prometheus.out"))
            .stderr(log("prometheus.err"))
            .spawn()
            .expect("prometheus starts"),
    );
    let prom = Prometheus { port: prom_port };
    wait_for("Prometheus to be ready", Duration::from_secs(60), || {
        http_get(prom_port, "/-/ready")
            .ok()
            .filter(|(s, _)| *s == 200)
    });

    let mut mailtap = Reaper(
        Command::new(env!("CARGO_BIN_EXE_mailtap"))
            .args(["replay", "--quiet", "--web.listen-address"])
            .arg(format!("127.0.0.1:{mailtap_port}"))
            .args(["--linger", "120"])
            .arg(common::fixtures())
            .stdout(Stdio::null())
            .stderr(log("mailtap.err"))
            .spawn()
            .expect("mailtap starts"),
    );

    // Wait until Prometheus holds a few scrapes taken after the replay counted every session;
    // evaluate everything at that moment, so later staleness cannot empty the results.
    let at = wait_for(
        "Prometheus to scrape the finished replay",
        Duration::from_secs(90),
        || {
            if let Ok(Some(status)) = mailtap.0.try_wait() {
                let err = std::fs::read_to_string(dir.join("mailtap.err")).unwrap_or_default();
                panic!(
                "mailtap replay --web.listen-address … --linger … exited early ({status}): {err}\n\
                 (this test needs mailtap's HTTP endpoint and --linger)"
            );
            }
            let q = format!(
            "count_over_time(mailtap_build_info[1m]) >= 3 and on () sum(mailtap_sessions_total) == {expected_sessions}"
        );
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs_f64();
            let r = prom.instant(&q, now).ok()?;
            r.as_array().filter(|a| !a.is_empty()).map(|_| now)
        },
    );

    let d = layout::load();
    let mut failures = Vec::new();
    let mut ran = 0;
    let pending_absent = |e: &str| {
        layout::metric_names(e)
            .iter()
            .any(|m| PENDING.contains(&m.as_str()) && !exp.contains_key(m))
    };
    let mut check = |what: String, q: String, result: Result<Value, String>| {
        ran += 1;
        match result {
            Err(e) => failures.push(format!("{what}: {e}\n    {q}")),
            Ok(r) if r.as_array().is_some_and(|a| a.is_empty()) => {
                if pending_absent(&q) {
                    eprintln!("not yet exported, no data expected: {what}");
                } else {
                    failures.push(format!("{what}: no data\n    {q}"));
                }
            }
            Ok(_) => {}
        }
    };
    for p in layout::panels(&d) {
        let targets = p.json["targets"].as_array().cloned().unwrap_or_default();
        for t in targets {
            let q = substitute(t["expr"].as_str().unwrap_or(""));
            let what = format!("{} / {} {}", p.row, p.title(), t["refId"]);
            let r = if t["instant"] == true {
                prom.instant(&q, at)
            } else {
                prom.range(&q, at)
            };
            check(what, q, r);
        }
    }
    for v in variables(&d) {
        let (q, label) = variable_query(v).unwrap();
        let q = substitute(&q);
        let r = prom.instant(&q, at);
        let has_label = r.as_ref().ok().and_then(|r| r.as_array()).is_some_and(|a| {
            a.iter()
                .all(|s| s["metric"][&label].as_str().is_some_and(|v| !v.is_empty()))
        });
        assert!(
            has_label || r.is_err(),
            "variable {}: series without {label}",
            v["name"]
        );
        check(format!("variable {}", v["name"]), q, r);
    }
    drop(mailtap);
    assert!(ran > 30, "only {ran} queries");
    assert!(
        failures.is_empty(),
        "{} of {ran} queries failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    let _ = std::fs::remove_dir_all(&dir);
}
