//! The report as one self-contained HTML page (`mailtap replay --html FILE`, and `/` on the
//! HTTP server while a replay or capture runs).
//!
//! Self-contained: the CSS is inline, the charts are inline SVG drawn by [`super::svg`], and
//! the page makes no request of its own (no font, script, image or style from anywhere). It
//! reads the same without JavaScript; a few lines of inline script only make the tables
//! sortable. It is rendered from the [`ReportView`] alone, the value the JSON report
//! serializes, and breakdowns by a named value (encryption outcomes, certificate statuses,
//! packet results, attacks) list whatever keys the view holds, so a value added to the record
//! or the health counters appears without a change here.
//!
//! Numbers the browser tests read back carry `data-*` attributes naming what they are.

mod capture;
mod coverage;
mod protection;
mod servers;

use super::ReportView;
use crate::record::Encryption;
use std::collections::BTreeMap;
use std::fmt::Write;

/// What differs between the file and the live page.
#[derive(Clone, Copy, Debug, Default)]
pub struct Page<'a> {
    /// `Some` for the live page at `/`.
    pub live: Option<Live<'a>>,
}

/// The live page's links (the endpoint's landing links) and how often it reloads itself.
#[derive(Clone, Copy, Debug)]
pub struct Live<'a> {
    pub telemetry_path: &'a str,
    pub servers_path: &'a str,
    pub report_path: &'a str,
    pub refresh_seconds: u32,
}

/// The whole page.
pub fn render(view: &ReportView, page: &Page<'_>) -> String {
    // The server table dominates: about 300 bytes a server.
    let mut out = String::with_capacity(16_384 + 320 * view.servers.servers.len());
    head(&mut out, page);
    header(&mut out, view, page);
    protection::section(&mut out, view);
    coverage::section(&mut out, view);
    servers::section(&mut out, view);
    capture::section(&mut out, view);
    let _ = write!(
        out,
        "<footer>mailtap {} · the same numbers as <code>--format json</code></footer>\n\
         <script>{SORT_SCRIPT}</script>\n</body>\n</html>\n",
        env!("CARGO_PKG_VERSION")
    );
    out
}

fn head(out: &mut String, page: &Page<'_>) {
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    if let Some(live) = page.live {
        let _ = writeln!(
            out,
            "<meta http-equiv=\"refresh\" content=\"{}\">",
            live.refresh_seconds
        );
    }
    let _ = write!(
        out,
        "<title>mailtap report</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
    );
}

fn header(out: &mut String, view: &ReportView, page: &Page<'_>) {
    out.push_str("<header>\n<h1>mailtap: how mail was protected in transit</h1>\n");
    let source = match (page.live, view.files.len()) {
        (Some(_), 0) => "Live capture, numbers so far".to_string(),
        (Some(_), n) => format!("Replay of {n} file(s), numbers so far"),
        (None, n) => format!("Replay of {n} file(s)"),
    };
    let span = span_text(view, "no packets yet");
    let _ = writeln!(
        out,
        "<p class=\"meta\">{} · <span id=\"span\">{}</span> · <span id=\"total-sessions\" \
         data-sessions=\"{n}\">{n}</span> sessions · <span id=\"server-count\" \
         data-servers=\"{s}\">{s}</span> servers</p>",
        escape(&source),
        escape(&span),
        n = view.sessions(),
        s = view.servers.servers.len(),
    );
    if let Some(live) = page.live {
        let _ = writeln!(
            out,
            "<nav class=\"links\">mailtap {v} · <a href=\"{m}\">Metrics</a> ({m}) · \
             <a href=\"{s}\">Servers</a> ({s}, JSON) · <a href=\"{r}\">Report</a> ({r}, JSON) \
             · reloads every {t} s</nav>",
            v = env!("CARGO_PKG_VERSION"),
            m = escape(live.telemetry_path),
            s = escape(live.servers_path),
            r = escape(live.report_path),
            t = live.refresh_seconds,
        );
    }
    capture::banner(out, view);
    out.push_str(
        "<nav class=\"toc\"><a href=\"#protection\">Protection</a> · <a href=\"#coverage\">\
         Coverage</a> · <a href=\"#tls\">TLS</a> · <a href=\"#logins\">Cleartext logins</a> · \
         <a href=\"#timeline\">Timeline</a> · <a href=\"#servers\">Servers</a> · \
         <a href=\"#capture\">Capture</a></nav>\n</header>\n",
    );
}

/// Text for HTML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A share as the page prints it: `12.5 %`. The browser tests format the JSON's shares the
/// same way to compare.
pub fn percent(share: f64) -> String {
    format!("{:.1} %", share * 100.0)
}

/// `n / of` as a share, 0 when `of` is 0.
fn share(n: u64, of: u64) -> f64 {
    if of == 0 {
        0.0
    } else {
        n as f64 / of as f64
    }
}

/// The capture's time span, first to last packet and how long; `none` before any packet.
fn span_text(view: &ReportView, none: &str) -> String {
    view.span.map_or_else(
        || none.to_string(),
        |s| {
            format!(
                "{} to {} ({})",
                s.first,
                s.last,
                seconds(s.duration().as_secs_f64())
            )
        },
    )
}

fn seconds(s: f64) -> String {
    if s >= 3600.0 {
        format!("{:.1} h", s / 3600.0)
    } else if s >= 60.0 {
        format!("{:.1} min", s / 60.0)
    } else {
        format!("{s:.3} s")
    }
}

/// A map's entries in the order of `known` first, then the rest by key: breakdowns show known
/// values in their natural order and any new value after them.
fn ordered<'m, K: AsRef<str> + Ord, V>(
    map: &'m BTreeMap<K, V>,
    known: &[&str],
) -> Vec<(&'m str, &'m V)> {
    let mut entries: Vec<(&str, &V)> = map.iter().map(|(k, v)| (k.as_ref(), v)).collect();
    entries.sort_by_key(|(k, _)| known.iter().position(|x| x == k).unwrap_or(known.len()));
    entries
}

/// Encryption outcomes in their order of [`Encryption::ALL`].
fn encryption_order() -> [&'static str; Encryption::ALL.len()] {
    Encryption::ALL.map(Encryption::label)
}

/// The CSS class colouring an encryption outcome (any value, known or not, gets one).
fn encryption_class(label: &str) -> String {
    if encryption_order().contains(&label) {
        format!("e-{label}")
    } else {
        "e-other".to_string()
    }
}

/// Sort the tables of class `sortable` by a click on a column head (numbers by `data-v`, or
/// by their text); again for the other direction. Without it the tables read the same, in the
/// order the page gives.
const SORT_SCRIPT: &str = "document.querySelectorAll('table.sortable').forEach(function(t){\
t.querySelectorAll('thead th').forEach(function(th,i){th.tabIndex=0;th.classList.add('sort');\
th.addEventListener('click',function(){var b=t.tBodies[0],rows=Array.prototype.slice.call(b.rows),\
num=th.dataset.type==='num',dir=th.dataset.dir==='asc'?-1:1;\
function v(r){var c=r.cells[i];return c.dataset.v!==undefined?c.dataset.v:c.textContent;}\
rows.sort(function(x,y){return dir*(num?(Number(v(x))-Number(v(y))):v(x).localeCompare(v(y)));});\
th.dataset.dir=dir===1?'asc':'desc';rows.forEach(function(r){b.appendChild(r);});});});});";

const CSS: &str = "\
:root{--protected:#2e7d32;--exposed:#c62828;--unknown:#9e9e9e;--bar:#1565c0}\
*{box-sizing:border-box}\
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;\
color:#1b1b1b;background:#fff;margin:0 auto;padding:0 1.2rem 2rem;max-width:1400px}\
h1{font-size:1.5rem;margin:1rem 0 .2rem}h2{font-size:1.25rem;margin:2rem 0 .5rem;\
border-bottom:2px solid #ddd;padding-bottom:.2rem}h3{font-size:1.05rem;margin:1.2rem 0 .4rem}\
.meta,.links,.toc{margin:.2rem 0;color:#444}a{color:#0d47a1}\
.banner{background:#fff3e0;border:2px solid #ef6c00;padding:.6rem .8rem;margin:.8rem 0;\
border-radius:4px}\
table{border-collapse:collapse;margin:.4rem 0 1rem;font-variant-numeric:tabular-nums}\
th,td{border:1px solid #ddd;padding:.25rem .45rem;text-align:left;vertical-align:top}\
th{background:#f5f5f5}td.n,th.n{text-align:right}\
th.sort{cursor:pointer}th.sort:after{content:' \\2195';color:#999}\
.matrix td{min-width:8rem}.matrix tbody th{min-width:13rem;font-weight:600}.matrix .mark{font-weight:700;font-size:1.1rem}\
.m-protected{background:#e8f5e9}.m-questionable{background:#fff8e1}.m-exposed{background:#ffebee}\
.m-protected .mark{color:var(--protected)}.m-questionable .mark{color:#e65100}\
.m-exposed .mark{color:var(--exposed)}.shares{font-size:.85rem;display:block}\
small{color:#555}.legend{font-size:.9rem;color:#333}.legend li{margin:.15rem 0}\
.swatch{display:inline-block;width:.8rem;height:.8rem;vertical-align:middle;margin-right:.25rem}\
svg{display:block;max-width:100%;height:auto;margin:.2rem 0 .8rem}\
svg text{font-size:11px;fill:#222}.axis{stroke:#888}\
.bar{fill:var(--bar)}.protected{fill:var(--protected)}.exposed{fill:var(--exposed)}\
.unknown{fill:var(--unknown)}\
.e-plaintext{fill:#c62828;background:#c62828}.e-starttls{fill:#2e7d32;background:#2e7d32}\
.e-implicit_tls{fill:#1b5e20;background:#1b5e20}\
.e-starttls_refused{fill:#ef6c00;background:#ef6c00}\
.e-starttls_stripped{fill:#6a1b9a;background:#6a1b9a}.e-tls_failed{fill:#f9a825;background:#f9a825}\
.e-unknown{fill:#9e9e9e;background:#9e9e9e}.e-other{fill:#546e7a;background:#546e7a}\
.v-protected{background:var(--protected)}.v-exposed{background:var(--exposed)}\
.v-unknown{background:var(--unknown)}\
.charts{display:flex;flex-wrap:wrap;gap:0 2rem}.charts>div{flex:1 1 30rem;min-width:0}\
tr.attention td:first-child{border-left:4px solid var(--exposed)}\
.scroll{overflow-x:auto}\
footer{margin-top:2rem;color:#666;font-size:.85rem}\
@media print{body{max-width:none;padding:0;font-size:10pt}nav{display:none}\
section{break-inside:auto}h2{break-after:avoid}tr,svg,.banner{break-inside:avoid}\
*{-webkit-print-color-adjust:exact;print-color-adjust:exact}.scroll{overflow:visible}\
th.sort:after{content:''}}";

#[cfg(test)]
mod tests;
