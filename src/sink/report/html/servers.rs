//! Every server of the inventory in one table, those that need a look first: no STARTTLS
//! offered while sessions went in clear, or logins in clear. Sortable by a click on a column
//! head with script; in that order without.

use super::{encryption_class, encryption_order, escape, ordered};
use crate::record::Encryption;
use crate::sink::inventory::ServerSummary;
use crate::sink::report::ReportView;
use std::cmp::Reverse;
use std::fmt::Write;

/// Why a server needs a look, if it does.
fn attention(s: &ServerSummary) -> Option<&'static str> {
    let no_starttls =
        !s.protocol.implicit_tls() && s.starttls_offered == 0 && s.count(Encryption::Plaintext) > 0;
    match (no_starttls, s.cleartext_auth_sessions > 0) {
        (true, true) => Some("no STARTTLS, cleartext logins"),
        (true, false) => Some("no STARTTLS"),
        (false, true) => Some("cleartext logins"),
        (false, false) => None,
    }
}

pub(super) fn section(out: &mut String, view: &ReportView) {
    let snapshot = &view.servers;
    let _ = writeln!(
        out,
        "<section id=\"servers\">\n<h2>Servers ({})</h2>",
        snapshot.servers.len()
    );
    if snapshot.evicted > 0 {
        let _ = writeln!(
            out,
            "<p>{} servers were dropped from the full inventory (capacity {}); the least \
             recently seen go first.</p>",
            snapshot.evicted, snapshot.capacity
        );
    }
    let Some(first) = snapshot.servers.first() else {
        out.push_str("<p>No servers yet.</p>\n</section>\n");
        return;
    };
    let mut servers: Vec<&ServerSummary> = snapshot.servers.iter().collect();
    // Stable: within each group, the inventory's order (most plaintext first, then address).
    servers.sort_by_key(|s| Reverse(attention(s).is_some()));
    let outcomes: Vec<&str> = ordered(&first.sessions, &encryption_order())
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    out.push_str(
        "<p class=\"legend\">Servers that offered no STARTTLS while sessions went in clear, or \
         that took logins in clear, come first (marked). A click on a column head sorts (with \
         JavaScript).</p>\n<div class=\"scroll\"><table id=\"server-table\" class=\"sortable\">\
         <thead><tr><th>Server</th><th>Protocol</th><th>Attention</th>\
         <th class=\"n\" data-type=\"num\">Sessions</th>",
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
        "<th class=\"n\" data-type=\"num\">STARTTLS offered</th>\
         <th class=\"n\" data-type=\"num\">Cleartext logins</th><th>Last TLS</th>\
         <th>Last cipher suite</th><th>Certificate</th><th>First seen</th><th>Last seen</th>\
         </tr></thead>\n<tbody>\n",
    );
    for s in servers {
        row(out, s, &outcomes);
    }
    out.push_str("</tbody></table></div>\n</section>\n");
}

fn row(out: &mut String, s: &ServerSummary, outcomes: &[&str]) {
    let why = attention(s);
    let total: u64 = s.sessions.values().sum();
    let _ = write!(
        out,
        "<tr{}><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{total}</td>",
        if why.is_some() {
            " class=\"attention\""
        } else {
            ""
        },
        escape(&s.server.to_string()),
        s.protocol.name(),
        why.unwrap_or(""),
    );
    for o in outcomes {
        let _ = write!(
            out,
            "<td class=\"n\">{}</td>",
            s.sessions.get(*o).copied().unwrap_or(0)
        );
    }
    let offered = if s.protocol.implicit_tls() {
        "<td class=\"n\" data-v=\"-1\">implicit TLS</td>".to_string()
    } else {
        format!("<td class=\"n\">{}</td>", s.starttls_offered)
    };
    let text = |v: &Option<String>| escape(v.as_deref().unwrap_or("—"));
    let _ = writeln!(
        out,
        "{offered}<td class=\"n\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
         </tr>",
        s.cleartext_auth_sessions,
        text(&s.last_tls_version),
        text(&s.last_cipher_suite),
        text(&s.last_certificate_status),
        short_time(&s.first_seen.to_string()),
        short_time(&s.last_seen.to_string()),
    );
}

/// `2026-11-28T20:00:00.123456Z` → `2026-11-28 20:00:00` (the full time is in the JSON).
fn short_time(rfc3339: &str) -> String {
    rfc3339.get(..19).unwrap_or(rfc3339).replace('T', " ")
}
