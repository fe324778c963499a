//! Coverage: sessions by protocol and encryption, the encrypted share, the STARTTLS funnel,
//! the TLS parameters, cleartext logins, and sessions over time.

use super::super::svg::{self, Bar, Column};
use super::{encryption_class, encryption_order, escape, ordered, percent, share};
use crate::record::Encryption;
use crate::sink::report::{ProtocolReport, ReportView};
use crate::sink::tls_summary::Tally;
use std::fmt::Write;

/// Cipher suites drawn one by one; the rest share a bar.
const TOP_SUITES: usize = 10;

pub(super) fn section(out: &mut String, view: &ReportView) {
    out.push_str("<section id=\"coverage\">\n<h2>Coverage</h2>\n");
    let active: Vec<&ProtocolReport> = view
        .protocols
        .iter()
        .filter(|p| p.connections > 0)
        .collect();
    sessions_table(out, &active);
    out.push_str("<div class=\"charts\"><div>");
    encrypted_share(out, &active);
    out.push_str("</div><div>");
    funnel(out, &active);
    out.push_str("</div></div>\n</section>\n");
    tls(out, view);
    logins(out, &active);
    timeline(out, view);
}

fn sessions_table(out: &mut String, protocols: &[&ProtocolReport]) {
    out.push_str("<h3>Sessions by protocol and encryption</h3>\n");
    let Some(first) = protocols.first() else {
        out.push_str("<p>No sessions yet.</p>\n");
        return;
    };
    let outcomes: Vec<&str> = ordered(&first.sessions, &encryption_order())
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    out.push_str(
        "<div class=\"scroll\"><table id=\"sessions\" class=\"sortable\"><thead><tr>\
         <th>Protocol</th><th class=\"n\" data-type=\"num\">Sessions</th>",
    );
    for o in &outcomes {
        let _ = write!(
            out,
            "<th class=\"n\" data-type=\"num\"><span class=\"swatch {}\"></span>{}</th>",
            encryption_class(o),
            escape(o)
        );
    }
    out.push_str(
        "<th class=\"n\" data-type=\"num\">Encrypted</th><th>Split</th></tr></thead>\n<tbody>\n",
    );
    for p in protocols {
        let name = p.protocol.name();
        let _ = write!(
            out,
            "<tr><td>{name}</td><td class=\"n\" data-protocol=\"{name}\" data-sessions=\"{n}\">\
             {n}</td>",
            n = p.connections
        );
        for o in &outcomes {
            let n = p.sessions.get(*o).copied().unwrap_or(0);
            let _ = write!(
                out,
                "<td class=\"n\" data-protocol=\"{name}\" data-encryption=\"{}\">{n}</td>",
                escape(o)
            );
        }
        let enc = p.encrypted_share.unwrap_or(0.0);
        let parts: Vec<(f64, String, String)> = ordered(&p.sessions, &encryption_order())
            .into_iter()
            .map(|(k, n)| (*n as f64, encryption_class(k), format!("{k}: {n}")))
            .collect();
        let parts: Vec<(f64, &str, String)> = parts
            .iter()
            .map(|(v, c, t)| (*v, c.as_str(), t.clone()))
            .collect();
        let _ = writeln!(
            out,
            "<td class=\"n\" data-v=\"{enc}\" data-encrypted-share=\"{name}\">{}</td><td>{}</td>\
             </tr>",
            percent(enc),
            svg::stacked(&format!("{name} by encryption"), &parts, 160.0)
        );
    }
    out.push_str(
        "</tbody></table></div>\n<p class=\"legend\">Encrypted: STARTTLS or implicit TLS, of \
         all sessions (unknown outcomes count against it, as on the dashboard).</p>\n",
    );
}

fn encrypted_share(out: &mut String, protocols: &[&ProtocolReport]) {
    out.push_str("<h3>Encrypted share per protocol</h3>\n");
    let bars: Vec<Bar> = protocols
        .iter()
        .map(|p| {
            let s = p.encrypted_share.unwrap_or(0.0);
            Bar {
                label: p.protocol.name(),
                value: s,
                class: "e-starttls",
                text: format!("{} ({} of {})", percent(s), p.encrypted(), p.connections),
            }
        })
        .collect();
    out.push_str(&svg::bars("Encrypted share per protocol", &bars, 1.0));
}

/// Offered → attempted → completed, and what went wrong, per protocol that has STARTTLS.
fn funnel(out: &mut String, protocols: &[&ProtocolReport]) {
    out.push_str("<h3>STARTTLS funnel</h3>\n");
    let with_starttls: Vec<&&ProtocolReport> = protocols
        .iter()
        .filter(|p| !p.protocol.implicit_tls())
        .collect();
    if with_starttls.is_empty() {
        out.push_str("<p>No sessions of a protocol with STARTTLS.</p>\n");
        return;
    }
    for p in with_starttls {
        let n = p.connections;
        let steps = [
            ("offered", p.starttls_offered, "bar"),
            ("attempted", p.starttls_attempted, "bar"),
            ("completed", p.count(Encryption::Starttls), "e-starttls"),
            (
                "refused",
                p.count(Encryption::StarttlsRefused),
                "e-starttls_refused",
            ),
            (
                "stripped",
                p.count(Encryption::StarttlsStripped),
                "e-starttls_stripped",
            ),
        ];
        let bars: Vec<Bar> = steps
            .iter()
            .map(|(label, v, class)| Bar {
                label,
                value: *v as f64,
                class,
                text: format!("{v} of {n} ({})", percent(share(*v, n))),
            })
            .collect();
        let name = p.protocol.name();
        let _ = write!(out, "<p><strong>{name}</strong>, {n} sessions</p>");
        out.push_str(&svg::bars(
            &format!("STARTTLS funnel, {name}"),
            &bars,
            n as f64,
        ));
    }
}

fn tls(out: &mut String, view: &ReportView) {
    let t = &view.tls;
    out.push_str("<section id=\"tls\">\n<h2>TLS</h2>\n");
    let _ = writeln!(
        out,
        "<p><span data-tls-sessions=\"{n}\">{n}</span> sessions showed their TLS handshake.</p>",
        n = t.sessions
    );
    if t.sessions == 0 {
        out.push_str("</section>\n");
        return;
    }
    let shares = [
        ("forward secret", t.forward_secret, "protected"),
        ("post-quantum", t.post_quantum, "protected"),
    ];
    let bars: Vec<Bar> = shares
        .iter()
        .map(|(label, n, class)| Bar {
            label,
            value: share(*n, t.sessions),
            class,
            text: format!("{} ({n} of {})", percent(share(*n, t.sessions)), t.sessions),
        })
        .collect();
    out.push_str("<h3>Forward-secret and post-quantum shares of TLS sessions</h3>\n");
    out.push_str(&svg::bars(
        "Forward-secret and post-quantum shares",
        &bars,
        1.0,
    ));
    out.push_str("<div class=\"charts\">");
    for (title, tally, limit) in [
        ("TLS versions", &t.versions, usize::MAX),
        ("Top cipher suites", &t.cipher_suites, TOP_SUITES),
        ("Key exchange", &t.key_exchange, usize::MAX),
        ("Groups", &t.groups, usize::MAX),
        ("Certificate statuses", &t.certificates, usize::MAX),
        ("Weaknesses", &t.weaknesses, usize::MAX),
    ] {
        out.push_str("<div>");
        tally_chart(out, title, tally, t.sessions, limit);
        out.push_str("</div>");
    }
    out.push_str("</div>\n</section>\n");
}

/// A tally most frequent first (then by name), at most `limit` bars and one for the rest;
/// shares of `of`.
fn tally_chart(out: &mut String, title: &str, tally: &Tally, of: u64, limit: usize) {
    let _ = writeln!(out, "<h3>{}</h3>", escape(title));
    if tally.is_empty() {
        out.push_str("<p>None.</p>\n");
        return;
    }
    let mut entries: Vec<(&str, u64)> = tally.iter().map(|(k, n)| (*k, *n)).collect();
    entries.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let rest: Vec<(&str, u64)> = entries.split_off(entries.len().min(limit));
    let other_label = format!("{} others", rest.len());
    if !rest.is_empty() {
        entries.push((&other_label, rest.iter().map(|e| e.1).sum()));
    }
    let max = entries.iter().map(|e| e.1).max().unwrap_or(0) as f64;
    let bars: Vec<Bar> = entries
        .iter()
        .map(|(label, n)| Bar {
            label,
            value: *n as f64,
            class: "bar",
            text: format!("{n} ({})", percent(share(*n, of))),
        })
        .collect();
    out.push_str(&svg::bars(title, &bars, max));
}

fn logins(out: &mut String, protocols: &[&ProtocolReport]) {
    out.push_str("<section id=\"logins\">\n<h2>Cleartext logins by mechanism</h2>\n");
    let labels: Vec<(String, u64)> = protocols
        .iter()
        .flat_map(|p| {
            p.cleartext_auth
                .iter()
                .map(move |(m, n)| (format!("{} {m}", p.protocol.name()), *n))
        })
        .collect();
    if labels.is_empty() {
        out.push_str("<p>No login was seen in clear.</p>\n</section>\n");
        return;
    }
    let max = labels.iter().map(|l| l.1).max().unwrap_or(0) as f64;
    let bars: Vec<Bar> = labels
        .iter()
        .map(|(label, n)| Bar {
            label,
            value: *n as f64,
            class: "e-plaintext",
            text: format!("{n} sessions"),
        })
        .collect();
    out.push_str(&svg::bars("Cleartext logins by mechanism", &bars, max));
    let sessions: u64 = protocols.iter().map(|p| p.cleartext_auth_sessions).sum();
    let _ = writeln!(
        out,
        "<p><span data-cleartext-login-sessions=\"{sessions}\">{sessions}</span> sessions sent \
         a password or token before any TLS (mechanism names only: mailtap never stores what \
         was sent).</p>\n</section>"
    );
}

fn timeline(out: &mut String, view: &ReportView) {
    let t = &view.timeline;
    out.push_str("<section id=\"timeline\">\n<h2>Sessions over capture time</h2>\n");
    let (Some(first), Some(last)) = (t.buckets.first(), t.buckets.last()) else {
        out.push_str("<p>No sessions yet.</p>\n</section>\n");
        return;
    };
    let width = t.bucket_seconds.max(1);
    let origin = first.start.as_nanos() / 1_000_000_000;
    let slot = |b: &super::super::Bucket| (b.start.as_nanos() / 1_000_000_000 - origin) / width;
    let outcomes: Vec<&str> = ordered(&first.sessions, &encryption_order())
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let classes: Vec<String> = outcomes.iter().map(|o| encryption_class(o)).collect();
    let class_refs: Vec<&str> = classes.iter().map(String::as_str).collect();
    let columns: Vec<Column> = t
        .buckets
        .iter()
        .map(|b| {
            let counts: Vec<u64> = outcomes
                .iter()
                .map(|o| b.sessions.get(*o).copied().unwrap_or(0))
                .collect();
            let parts: Vec<String> = outcomes
                .iter()
                .zip(&counts)
                .filter(|(_, n)| **n > 0)
                .map(|(o, n)| format!("{o} {n}"))
                .collect();
            Column {
                slot: slot(b),
                counts,
                tip: format!("{}: {}", b.start, parts.join(", ")),
            }
        })
        .collect();
    let slots = slot(last) + 1;
    let end = crate::source::Timestamp::from_secs(
        (last.start.as_nanos() / 1_000_000_000).saturating_add(width),
    );
    out.push_str(&svg::timeline(
        "Sessions started per interval, by encryption",
        &columns,
        slots,
        &class_refs,
        &first.start.to_string(),
        &end.to_string(),
    ));
    out.push_str("<p class=\"legend\">");
    for (o, c) in outcomes.iter().zip(&classes) {
        let _ = write!(out, "<span class=\"swatch {c}\"></span>{} ", escape(o));
    }
    let _ = writeln!(
        out,
        "· one column per {width} s (packet time of each session's start)</p>\n</section>"
    );
}
