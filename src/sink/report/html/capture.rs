//! The capture: the files read (packets, time span, errors with their offsets), and the
//! sensor's own counts (packets by result, gaps, cut frames, drops, evictions), with the
//! banner at the top of the page when they make the numbers lower bounds.

use super::super::svg::{self, Bar};
use super::{escape, percent, seconds, share, span_text};
use crate::sink::report::text::lower_bound_phrase;
use crate::sink::report::{ReportView, CUT_FRAME_RESULTS};
use std::collections::BTreeMap;
use std::fmt::Write;

/// The banner, when anything makes the numbers lower bounds.
pub(super) fn banner(out: &mut String, view: &ReportView) {
    if view.lower_bounds.is_empty() {
        return;
    }
    out.push_str(
        "<div class=\"banner\" id=\"lower-bounds\" role=\"alert\"><strong>These numbers are \
         lower bounds:</strong> not all traffic was seen whole.<ul>",
    );
    for b in &view.lower_bounds {
        let _ = write!(
            out,
            "<li data-reason=\"{}\">{} {}</li>",
            escape(b.reason),
            b.count,
            escape(lower_bound_phrase(b.reason))
        );
    }
    out.push_str("</ul>See <a href=\"#capture\">Capture</a>.</div>\n");
}

pub(super) fn section(out: &mut String, view: &ReportView) {
    out.push_str("<section id=\"capture\">\n<h2>Capture</h2>\n");
    files(out, view);
    totals(out, view);
    let h = &view.health;
    let total: u64 = h.packets.values().sum();
    let max = h.packets.values().copied().max().unwrap_or(0) as f64;
    let bars: Vec<Bar> = h
        .packets
        .iter()
        .map(|(result, n)| Bar {
            label: result,
            value: *n as f64,
            class: if CUT_FRAME_RESULTS.contains(result) {
                "exposed"
            } else {
                "bar"
            },
            text: format!("{n} ({})", percent(share(*n, total))),
        })
        .collect();
    out.push_str("<h3>Packets by result</h3>\n");
    out.push_str(&svg::bars("Packets by result", &bars, max));
    out.push_str("<div class=\"charts\"><div>");
    counts(
        out,
        "Flows closed, by reason",
        &h.flows_closed,
        "flows-closed",
    );
    out.push_str("</div><div>");
    counts(out, "Anomalies", &h.anomalies, "anomalies");
    out.push_str("</div></div>\n</section>\n");
}

fn files(out: &mut String, view: &ReportView) {
    if view.files.is_empty() {
        out.push_str("<p>Live capture: no files.</p>\n");
        return;
    }
    out.push_str(
        "<h3>Files read</h3>\n<div class=\"scroll\"><table id=\"files\"><thead><tr><th>File</th>\
         <th class=\"n\">Packets</th><th>First packet</th><th>Last packet</th>\
         <th class=\"n\">Span</th><th>Error</th><th class=\"n\">At byte</th></tr></thead>\
         <tbody>\n",
    );
    for f in &view.files {
        let (first, last, span) = match f.span {
            Some(s) => (
                s.first.to_string(),
                s.last.to_string(),
                seconds(s.duration().as_secs_f64()),
            ),
            None => ("—".into(), "—".into(), "—".into()),
        };
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td class=\"n\">{}</td><td>{first}</td><td>{last}</td>\
             <td class=\"n\">{span}</td><td>{}</td><td class=\"n\">{}</td></tr>",
            escape(&f.name),
            f.packets,
            escape(f.error.as_deref().unwrap_or("")),
            f.error_offset.map_or(String::new(), |o| o.to_string()),
        );
    }
    out.push_str("</tbody></table></div>\n");
}

fn totals(out: &mut String, view: &ReportView) {
    let h = &view.health;
    let span = span_text(view, "—");
    let cut: u64 = h
        .packets
        .iter()
        .filter(|(k, _)| CUT_FRAME_RESULTS.contains(k))
        .map(|(_, n)| n)
        .sum();
    let list = |m: &BTreeMap<&'static str, u64>| {
        let parts: Vec<String> = m.iter().map(|(k, n)| format!("{k} {n}")).collect();
        if parts.is_empty() {
            "—".to_string()
        } else {
            parts.join(", ")
        }
    };
    let rows = [
        ("Time span", escape(&span)),
        ("Packets", h.packets.values().sum::<u64>().to_string()),
        (
            "Reassembly gaps",
            format!(
                "{} ({} bytes never seen)",
                h.reassembly_gaps, h.reassembly_gap_bytes
            ),
        ),
        ("Frames cut short", cut.to_string()),
        (
            "Fragmented IP datagrams",
            escape(&format!(
                "{}; {} overlapping fragment(s)",
                list(&h.ip_datagrams),
                h.ip_fragment_overlaps
            )),
        ),
        ("Dropped by the capture", escape(&list(&h.capture_dropped))),
        ("Flows evicted", escape(&list(&h.flows_evicted))),
        (
            "Servers evicted from the inventory",
            view.servers.evicted.to_string(),
        ),
        ("Flows tracked at once (peak)", h.flows_peak.to_string()),
        (
            "Connections without payload (not sessions)",
            h.connections_without_payload.to_string(),
        ),
        (
            "Connections no server answered (spoofed or one-sided capture)",
            h.connections_unanswered.to_string(),
        ),
    ];
    out.push_str("<table id=\"capture-totals\"><tbody>\n");
    for (name, value) in rows {
        let _ = writeln!(out, "<tr><th>{name}</th><td>{value}</td></tr>");
    }
    out.push_str("</tbody></table>\n");
}

fn counts(out: &mut String, title: &str, m: &BTreeMap<&'static str, u64>, id: &str) {
    let _ = write!(out, "<h3>{title}</h3><table id=\"{id}\"><tbody>");
    if m.values().all(|n| *n == 0) {
        out.push_str("<tr><td>none</td></tr>");
    }
    for (k, n) in m.iter().filter(|(_, n)| **n > 0) {
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"n\">{n}</td></tr>",
            escape(k)
        );
    }
    out.push_str("</tbody></table>\n");
}
