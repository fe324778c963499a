//! The protection table as a picture: the compromise points a mail crosses (rows, one per
//! attack the view's rows hold) against the protocols (columns), each cell split into the
//! shares of all sessions protected, exposed and unknown, and marked as the design's table
//! marks a compromise point: protected, questionable, exposed.

use super::super::svg;
use super::{escape, percent};
use crate::sink::report::text::PROTECTION_LEGEND;
use crate::sink::report::ReportView;
use crate::sink::tls_summary::ProtectionRow;
use std::fmt::Write;

/// What each attack stands for, where the mail crosses it. An attack the table does not know
/// yet is shown by its name.
fn compromise_point(attack: &str) -> (&str, &str) {
    match attack {
        "passive" => (
            "Eavesdropper on the path",
            "on the user's network (submission, IMAP, POP3) or between providers (SMTP); \
             defeated by any TLS",
        ),
        "active" => (
            "Active attacker on the path",
            "strips STARTTLS or impersonates the server; defeated only by a certificate that \
             validates for the server's name",
        ),
        "later" => (
            "Record now, decrypt later",
            "with the server's key stolen later; defeated by forward secrecy",
        ),
        "quantum_later" => (
            "Record now, decrypt with a quantum computer",
            "defeated by a post-quantum key exchange",
        ),
        "provider" => (
            "Providers and services that store or relay the mail",
            "transport encryption ends there; defeated only by end-to-end encryption \
             (OpenPGP, S/MIME); unknown for mail inside TLS, whose content was not seen",
        ),
        "at_rest" => (
            "The message later, at rest",
            "in a mailbox or a backup; defeated only by end-to-end encryption; unknown for mail \
             inside TLS",
        ),
        other => (other, ""),
    }
}

/// How a cell is marked: every session protected, none protected (and some exposed), or
/// anything in between, unknown included.
fn mark(r: &ProtectionRow) -> (&'static str, &'static str, &'static str) {
    if r.sessions > 0 && r.protected == r.sessions {
        ("m-protected", "\u{2713}", "protected")
    } else if r.protected == 0 && r.exposed > 0 {
        ("m-exposed", "\u{2717}", "exposed")
    } else {
        ("m-questionable", "?", "questionable")
    }
}

fn protocol_name(r: &ProtectionRow) -> &'static str {
    r.protocol.map_or("all", |p| p.name())
}

pub(super) fn section(out: &mut String, view: &ReportView) {
    let rows = &view.protection;
    out.push_str("<section id=\"protection\">\n<h2>Who could read the mail?</h2>\n");
    if rows.is_empty() {
        out.push_str("<p>No sessions yet.</p>\n</section>\n");
        return;
    }
    let attacks = distinct(rows.iter().map(|r| r.attack));
    let protocols = distinct(rows.iter().map(protocol_name));
    out.push_str(
        "<div class=\"scroll\"><table class=\"matrix\" id=\"protection-table\">\n<thead><tr>\
         <th>Compromise point</th>",
    );
    for p in &protocols {
        let _ = write!(out, "<th>{}</th>", escape(p));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for a in &attacks {
        let (name, what) = compromise_point(a);
        let _ = write!(
            out,
            "<tr><th>{} <small>({})</small><br><small>{}</small></th>",
            escape(name),
            escape(a),
            escape(what)
        );
        for p in &protocols {
            match rows
                .iter()
                .find(|r| r.attack == *a && protocol_name(r) == *p)
            {
                Some(r) => cell(out, r),
                None => out.push_str("<td>—</td>"),
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table></div>\n");
    legend(out);
    out.push_str("</section>\n");
}

fn cell(out: &mut String, r: &ProtectionRow) {
    let (class, symbol, word) = mark(r);
    let p = protocol_name(r);
    let tip = |verdict: &str, n: u64, share: f64| {
        format!(
            "{verdict}: {n} of {} sessions ({})",
            r.sessions,
            percent(share)
        )
    };
    let parts = [
        (
            r.protected_share,
            "protected",
            tip("protected", r.protected, r.protected_share),
        ),
        (
            r.exposed_share,
            "exposed",
            tip("exposed", r.exposed, r.exposed_share),
        ),
        (
            r.unknown_share,
            "unknown",
            tip("unknown", r.unknown, r.unknown_share),
        ),
    ];
    let title = format!("{p}, {}: protected, exposed, unknown", r.attack);
    let _ = write!(
        out,
        "<td class=\"{class}\" data-protocol=\"{p}\" data-attack=\"{a}\">\
         <span class=\"mark\">{symbol}</span> {word}{bar}\
         <span class=\"shares\"><span data-verdict=\"protected\">{ps}</span> protected<br>\
         <span data-verdict=\"exposed\">{es}</span> exposed<br>\
         <span data-verdict=\"unknown\">{us}</span> unknown</span>\
         <small data-sessions=\"{n}\">{n} sessions</small></td>",
        p = escape(p),
        a = escape(r.attack),
        bar = svg::stacked(&title, &parts, 140.0),
        ps = percent(r.protected_share),
        es = percent(r.exposed_share),
        us = percent(r.unknown_share),
        n = r.sessions,
    );
}

fn legend(out: &mut String) {
    out.push_str(
        "<ul class=\"legend\"><li><span class=\"swatch v-protected\"></span>protected \
         <span class=\"swatch v-exposed\"></span>exposed <span class=\"swatch v-unknown\">\
         </span>unknown (cannot be judged passively). \u{2713} every session protected, \
         ? questionable (some protected, or unknown), \u{2717} none protected.</li>",
    );
    for line in PROTECTION_LEGEND {
        let _ = write!(out, "<li>{}</li>", escape(line));
    }
    out.push_str("</ul>\n");
}

/// The values in first-seen order, each once.
fn distinct<'a>(values: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for v in values {
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}
