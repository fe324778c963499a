//! The HTML report in a real browser: headless Chromium (`tests/browser/cdp.py`) opens the
//! file `mailtap replay --html` wrote, and the live page `/` of a replay that lingers, with the
//! network off, scripts on and off. The rendered DOM must show the numbers of the JSON report
//! of the same replay (sessions by protocol and encryption, every cell of the protection table,
//! the servers), the page must ask for nothing but itself, and read the same without
//! JavaScript. Screenshots land in `target/screenshots/` for a person to look at.

mod browser;
mod common;

use browser::{Open, Rendered};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A share as the page prints it (`html::percent`).
fn percent(share: f64) -> String {
    format!("{:.1} %", share * 100.0)
}

/// Click the servers table's "Sessions" head twice (ascending, then descending) and read the
/// first row's sessions: the sort script must bring the busiest server up.
const SORT_BY_SESSIONS: &str = "(function(){var t=document.getElementById('server-table');\
var th=t.tHead.rows[0].cells[3];th.click();th.click();\
return t.tBodies[0].rows[0].cells[3].textContent;})()";

/// The DOM shows what the JSON report says; `in_page_order` when no script has sorted the
/// server table since the page loaded.
fn check_numbers(page: &Rendered, json: &Value, in_page_order: bool) {
    let protocols = json["protocols"].as_array().expect("protocols");
    let total: u64 = protocols
        .iter()
        .map(|p| p["connections"].as_u64().unwrap())
        .sum();
    assert!(total > 50, "{total} sessions");
    assert_eq!(page.text("#total-sessions"), total.to_string());
    for p in protocols {
        let name = p["protocol"].as_str().unwrap();
        let sessions = p["connections"].as_u64().unwrap();
        let cell = format!("#sessions td[data-protocol=\"{name}\"][data-sessions]");
        if sessions == 0 {
            assert_eq!(page.count(&cell), 0, "{name} has no sessions");
            continue;
        }
        assert_eq!(page.text(&cell), sessions.to_string(), "{name}");
        let by_encryption = p["sessions"].as_object().unwrap();
        for (encryption, n) in by_encryption {
            let css =
                format!("#sessions td[data-protocol=\"{name}\"][data-encryption=\"{encryption}\"]");
            assert_eq!(page.text(&css), n.to_string(), "{name} {encryption}");
        }
        let share = p["encrypted_share"].as_f64().unwrap();
        let css = format!("td[data-encrypted-share=\"{name}\"]");
        assert_eq!(page.text(&css), percent(share), "{name} encrypted share");
    }
    let rows = json["protection"].as_array().expect("protection rows");
    assert_eq!(
        page.count("#protection-table td[data-attack]"),
        rows.len(),
        "one cell per row of the JSON"
    );
    for r in rows {
        let (p, a) = (
            r["protocol"].as_str().unwrap(),
            r["attack"].as_str().unwrap(),
        );
        let cell = format!("#protection-table td[data-protocol=\"{p}\"][data-attack=\"{a}\"]");
        let mut sum = 0.0;
        for verdict in ["protected", "exposed", "unknown"] {
            let share = r[format!("{verdict}_share")].as_f64().unwrap();
            let shown = page.text(&format!("{cell} span[data-verdict=\"{verdict}\"]"));
            assert_eq!(shown, percent(share), "{p} {a} {verdict}");
            sum += shown.trim_end_matches(" %").parse::<f64>().unwrap();
        }
        // Each share is rounded to 0.1 %: three of them are within 0.15 of 100.
        assert!((sum - 100.0).abs() <= 0.15, "{p} {a}: {sum}");
        let n = r["sessions"].as_u64().unwrap();
        assert_eq!(page.text(&format!("{cell} small")), format!("{n} sessions"));
    }
    let servers = json["servers"]["servers"].as_array().expect("servers");
    assert!(servers.len() > 20, "{} servers", servers.len());
    assert_eq!(page.text("#server-count"), servers.len().to_string());
    assert_eq!(page.count("#server-table tbody tr"), servers.len());
    // Those without STARTTLS or with cleartext logins first (the third column says why).
    let why = page.texts("#server-table tbody tr td:nth-child(3)");
    let marked = why.iter().filter(|w| !w.is_empty()).count();
    assert!(marked > 0);
    assert_eq!(page.count("#server-table tbody tr.attention"), marked);
    if in_page_order {
        assert!(why[..marked].iter().all(|w| !w.is_empty()), "{why:?}");
    }
    let banner = page.count("#lower-bounds");
    let reasons = json["lower_bounds"].as_array().map_or(0, Vec::len);
    assert_eq!(banner, usize::from(reasons > 0));
    assert_eq!(page.count("#lower-bounds li"), reasons);
}

/// The page asked for itself and nothing else, and nothing failed.
fn check_requests(page: &Rendered, url: &str) {
    assert!(!page.requests.is_empty(), "no request recorded");
    for r in &page.requests {
        assert_eq!(r, url, "a request outside the page: {:?}", page.requests);
    }
    assert!(page.failed.is_empty(), "{:?}", page.failed);
}

/// Both renderings: scripts off (complete, unsorted) and on (the sort script runs).
fn check_page(chromium: &Path, url: &str, json: &Value, name: &str) {
    let shots = browser::screenshots();
    let busiest = json["servers"]["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            s["sessions"]
                .as_object()
                .unwrap()
                .values()
                .map(|n| n.as_u64().unwrap())
                .sum::<u64>()
        })
        .max()
        .unwrap();
    let sections: Vec<(&str, PathBuf)> = ["#protection", "#coverage", "#tls", "#capture"]
        .iter()
        .map(|s| (*s, shots.join(format!("{name}-{}.png", &s[1..]))))
        .collect();
    let off = browser::open(
        chromium,
        url,
        &Open {
            scripts: false,
            screenshot: Some(&shots.join(format!("{name}-no-javascript.png"))),
            sections: &[],
            eval: None,
        },
    );
    check_requests(&off, url);
    check_numbers(&off, json, true);
    // The sort script marks the column heads it made clickable: not without scripts.
    assert_eq!(off.count("th.sort"), 0);
    let on = browser::open(
        chromium,
        url,
        &Open {
            scripts: true,
            screenshot: Some(&shots.join(format!("{name}.png"))),
            sections: &sections,
            eval: Some(SORT_BY_SESSIONS),
        },
    );
    check_requests(&on, url);
    // The sort script has sorted the servers by sessions by now.
    check_numbers(&on, json, false);
    assert!(on.count("th.sort") > 0);
    assert_eq!(on.eval, Value::String(busiest.to_string()));
    for (_, shot) in &sections {
        let size = std::fs::metadata(shot).map(|m| m.len()).unwrap_or(0);
        assert!(size > 1000, "{}: {size} bytes", shot.display());
    }
}

#[test]
fn the_html_report_shows_the_json_reports_numbers_with_and_without_javascript() {
    let Some(chromium) = browser::chromium() else {
        return;
    };
    let dir = common::scratch("html");
    std::fs::create_dir_all(&dir).unwrap();
    let html = dir.join("report.html");
    let fixtures = common::fixtures();
    let out = common::mailtap_ok(&[
        "replay",
        "--quiet",
        "--format",
        "json",
        "--html",
        html.to_str().unwrap(),
        fixtures.to_str().unwrap(),
    ]);
    let json: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let url = format!("file://{}", html.display());
    check_page(&chromium, &url, &json, "html-report");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_html_report_comes_from_the_environment_too() {
    let dir = common::scratch("html-env");
    std::fs::create_dir_all(&dir).unwrap();
    let html = dir.join("report.html");
    let out = Command::new(env!("CARGO_BIN_EXE_mailtap"))
        .args(["replay", "--quiet"])
        .arg(common::case("smtp-starttls-25"))
        .env("MAILTAP_HTML", &html)
        .output()
        .unwrap();
    assert!(out.status.success());
    let page = std::fs::read_to_string(&html).expect("MAILTAP_HTML was written");
    assert!(page.contains("data-protocol=\"smtp\" data-encryption=\"starttls\">1</td>"));
    let _ = std::fs::remove_dir_all(dir);
}

/// `mailtap replay --linger` serving on a free loopback port, its JSON report in a file.
struct Lingering {
    child: Child,
    addr: String,
    report: PathBuf,
}

impl Drop for Lingering {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.report);
    }
}

fn linger(inputs: &Path) -> Lingering {
    let report = common::scratch("live-report.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailtap"))
        .args(["replay", "--quiet", "--format", "json", "--linger", "120"])
        .args(["--web.listen-address", "127.0.0.1:0"])
        .arg(inputs)
        .stdout(std::fs::File::create(&report).unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut addr = String::new();
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(120))
            .expect("mailtap listens, replays, then lingers");
        if let Some(rest) = line.strip_prefix("mailtap: listening on ") {
            addr = rest.split_whitespace().next().unwrap().to_string();
        }
        if line.starts_with("mailtap: replay done") {
            break;
        }
    }
    Lingering {
        child,
        addr,
        report,
    }
}

#[test]
fn the_live_page_of_a_lingering_replay_shows_the_same_numbers() {
    let Some(chromium) = browser::chromium() else {
        return;
    };
    let served = linger(&common::fixtures());
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(&served.report).unwrap()).unwrap();
    let url = format!("http://{}/", served.addr);
    check_page(&chromium, &url, &json, "live-page");
    let page = browser::open(
        &chromium,
        &url,
        &Open {
            scripts: false,
            screenshot: None,
            sections: &[],
            eval: None,
        },
    );
    // The endpoint's landing links, and the reload.
    for link in ["/metrics", "/servers", "/report.json"] {
        assert_eq!(
            page.count(&format!("nav.links a[href=\"{link}\"]")),
            1,
            "{link}"
        );
    }
    assert_eq!(page.count("meta[http-equiv=\"refresh\"]"), 1);
}

#[test]
fn the_driver_sees_a_request_outside_the_page() {
    // The control for `check_requests`: a page that asks for a style sheet beside it and an
    // image elsewhere. With the network off neither loads, and both are recorded.
    let Some(chromium) = browser::chromium() else {
        return;
    };
    let dir = common::scratch("control");
    std::fs::create_dir_all(&dir).unwrap();
    let page = dir.join("page.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><html><head><link rel=\"stylesheet\" href=\"missing.css\"></head>\
         <body><img src=\"http://cdn.example/pixel.png\"></body></html>",
    )
    .unwrap();
    let url = format!("file://{}", page.display());
    let seen = browser::open(
        &chromium,
        &url,
        &Open {
            scripts: false,
            screenshot: None,
            sections: &[],
            eval: None,
        },
    );
    assert!(seen.requests.contains(&url));
    assert!(
        seen.requests.iter().any(|r| r.ends_with("/missing.css")),
        "{:?}",
        seen.requests
    );
    assert!(
        seen.requests
            .contains(&"http://cdn.example/pixel.png".to_string()),
        "{:?}",
        seen.requests
    );
    assert!(
        seen.failed
            .contains(&"http://cdn.example/pixel.png".to_string()),
        "{:?}",
        seen.failed
    );
    let _ = std::fs::remove_dir_all(dir);
}
