//! Headless Chromium for the tests, through `cdp.py` (a DevTools-protocol driver beside this
//! file): open a page with scripts on or off and the network off, and get back its rendered
//! DOM, every request it made, and screenshots.
#![allow(dead_code)]

use scraper::{Html, Selector};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The browser, or `None` (the test then skips) when it is not installed and
/// `MAILTAP_REQUIRE_CHROMIUM` is unset; with it set (`.ci/run`), a missing browser fails.
pub fn chromium() -> Option<PathBuf> {
    let found = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(
            std::env::var_os("MAILTAP_REQUIRE_CHROMIUM").is_none(),
            "MAILTAP_REQUIRE_CHROMIUM is set but chromium is not installed"
        );
        eprintln!("SKIPPED: chromium is not installed (apt-get install chromium)");
    }
    found
}

/// What the browser showed.
pub struct Rendered {
    pub requests: Vec<String>,
    pub failed: Vec<String>,
    pub dom: Html,
    pub eval: Value,
}

/// How to open a page.
pub struct Open<'a> {
    pub scripts: bool,
    /// A screenshot of the whole page.
    pub screenshot: Option<&'a Path>,
    /// Screenshots of elements: (CSS selector, file).
    pub sections: &'a [(&'a str, PathBuf)],
    /// An expression evaluated once the page has loaded (scripts on).
    pub eval: Option<&'a str>,
}

pub fn open(chromium: &Path, url: &str, how: &Open<'_>) -> Rendered {
    let driver = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/cdp.py");
    let mut cmd = Command::new("python3");
    cmd.arg(driver).arg(url).arg("--chromium").arg(chromium);
    if !how.scripts {
        cmd.arg("--no-js");
    }
    if let Some(p) = how.screenshot {
        cmd.arg("--screenshot").arg(p);
    }
    for (selector, p) in how.sections {
        cmd.arg("--section")
            .arg(format!("{selector}={}", p.display()));
    }
    if let Some(e) = how.eval {
        cmd.arg("--eval").arg(e);
    }
    let out = cmd.output().expect("python3 runs the driver");
    assert!(
        out.status.success(),
        "cdp.py {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("the driver prints JSON");
    let strings = |k: &str| -> Vec<String> {
        v[k].as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    Rendered {
        requests: strings("requests"),
        failed: strings("failed"),
        dom: Html::parse_document(v["dom"].as_str().unwrap_or_default()),
        eval: v["eval"].clone(),
    }
}

/// Where screenshots go for a person to look at: `target/screenshots/`.
pub fn screenshots() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).expect("target/screenshots");
    dir
}

impl Rendered {
    /// The text of every element `css` selects.
    pub fn texts(&self, css: &str) -> Vec<String> {
        let sel = Selector::parse(css).unwrap_or_else(|e| panic!("{css}: {e:?}"));
        self.dom
            .select(&sel)
            .map(|e| e.text().collect::<String>().trim().to_string())
            .collect()
    }

    /// The text of the one element `css` selects.
    pub fn text(&self, css: &str) -> String {
        let all = self.texts(css);
        assert_eq!(all.len(), 1, "{css}: {all:?}");
        all.into_iter().next().unwrap_or_default()
    }

    pub fn count(&self, css: &str) -> usize {
        self.texts(css).len()
    }
}
