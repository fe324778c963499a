//! The report as fixed-width text tables (`--format table`), from the [`ReportView`].

use super::{LowerBound, ReportView};
use crate::record::Encryption;
use crate::sink::tls_summary::ProtectionRow;
use std::collections::BTreeMap;
use std::io::{self, Write};

/// Servers listed under the table (all of them are in the JSON, CSV and HTML reports).
pub const TOP_SERVERS: usize = 10;

/// What the protection table's words mean; the HTML report shows the same legend.
pub const PROTECTION_LEGEND: [&str; 8] = [
    "passive: an eavesdropper on the path (the user's network for submission, IMAP and POP3; \
     between providers for SMTP): defeated by any TLS",
    "active: an attacker on the path who strips STARTTLS or impersonates the server: defeated \
     only by a certificate that validates for the server's name",
    "later: record now, decrypt later with the server's stolen key: defeated by forward \
     secrecy",
    "quantum_later: record now, decrypt later with a quantum computer: defeated by a \
     post-quantum key exchange",
    "provider: the providers and services that store or relay the mail: defeated only by \
     end-to-end encryption (OpenPGP, S/MIME) of every message sent in clear; unknown when the \
     messages crossed inside TLS, unseen",
    "at_rest: the message later, at rest: the same, defeated only by end-to-end encryption",
    "shares are of all sessions, as on the dashboard; (n?): n sessions that cannot be judged \
     passively (a TLS 1.3 certificate is encrypted; a resumed session shows none), counted \
     neither protected nor exposed",
    "the rest of a cell's sessions are exposed: protected + exposed + unknown = 100 % in every cell",
];

impl ReportView {
    pub fn write_table(&self, out: &mut dyn Write) -> io::Result<()> {
        self.write_protocols(out)?;
        writeln!(out)?;
        write_protection(out, &self.protection)?;
        writeln!(out)?;
        self.tls.write_table(out)?;
        writeln!(out)?;
        self.write_health(out)?;
        self.write_top_servers(out)
    }

    fn write_protocols(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(
            out,
            "{:<12} {:>8} {:>9} {:>12} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>7} {:>6}",
            "protocol",
            "sessions",
            "packets",
            "bytes",
            "encrypted",
            "plaintext",
            "refused",
            "stripped",
            "failed",
            "unknown",
            "logins",
            "msgs"
        )?;
        for p in self.protocols.iter().filter(|p| p.connections > 0) {
            let share = p
                .encrypted_share
                .map_or_else(|| "-".to_string(), |s| format!("{:.1}%", s * 100.0));
            writeln!(
                out,
                "{:<12} {:>8} {:>9} {:>12} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>7} {:>6}",
                p.protocol.name(),
                p.connections,
                p.packets,
                p.bytes,
                share,
                p.count(Encryption::Plaintext),
                p.count(Encryption::StarttlsRefused),
                p.count(Encryption::StarttlsStripped),
                p.count(Encryption::TlsFailed),
                p.count(Encryption::Unknown),
                p.cleartext_auth_sessions,
                p.cleartext_messages
            )?;
        }
        writeln!(
            out,
            "(encrypted: STARTTLS or implicit TLS, of all sessions)"
        )
    }

    fn write_health(&self, out: &mut dyn Write) -> io::Result<()> {
        let h = &self.health;
        writeln!(out, "packets:   {}", list(&h.packets))?;
        writeln!(
            out,
            "flows:     peak={} without_payload={} unanswered={} closed: {}",
            h.flows_peak,
            h.connections_without_payload,
            h.connections_unanswered,
            list(&h.flows_closed)
        )?;
        writeln!(
            out,
            "gaps:      {} ({} bytes)",
            h.reassembly_gaps, h.reassembly_gap_bytes
        )?;
        writeln!(
            out,
            "fragments: datagrams: {} overlaps={}",
            list(&h.ip_datagrams),
            h.ip_fragment_overlaps
        )?;
        writeln!(out, "dropped:   {}", list(&h.capture_dropped))?;
        writeln!(out, "anomalies: {}", list(&h.anomalies))?;
        let span = self.span.map_or_else(
            || "no packets".to_string(),
            |s| {
                format!(
                    "{} to {} ({:.3} s)",
                    s.first,
                    s.last,
                    s.duration().as_secs_f64()
                )
            },
        );
        writeln!(out, "time:      {span}")?;
        let packets: u64 = self.files.iter().map(|f| f.packets).sum();
        let skipped = match self.health.files_skipped.values().sum::<u64>() {
            0 => String::new(),
            _ => format!(", skipped: {}", list(&self.health.files_skipped)),
        };
        writeln!(
            out,
            "files:     {} read, {packets} packets{skipped}",
            self.files.len()
        )?;
        for f in self.files.iter().filter(|f| f.error.is_some()) {
            let e = f.error.as_deref().unwrap_or_default();
            writeln!(out, "  ERROR {e} ({} packets used)", f.packets)?;
        }
        if !self.lower_bounds.is_empty() {
            writeln!(
                out,
                "LOWER BOUNDS: {} — not all traffic was seen whole",
                describe_lower_bounds(&self.lower_bounds)
            )?;
        }
        Ok(())
    }

    fn write_top_servers(&self, out: &mut dyn Write) -> io::Result<()> {
        let total = self.servers.servers.len();
        let evicted = match self.servers.evicted {
            0 => String::new(),
            e => format!(", {e} evicted"),
        };
        let top: Vec<_> = self.servers.top_plaintext(TOP_SERVERS).collect();
        writeln!(out)?;
        if top.is_empty() {
            return writeln!(
                out,
                "servers:   none with plaintext sessions ({total} servers{evicted})"
            );
        }
        writeln!(
            out,
            "servers with the most plaintext sessions (top {} of {total}{evicted}; every \
             server is in --format json, --format csv and --html):",
            top.len()
        )?;
        let addresses: Vec<String> = top.iter().map(|s| s.server.to_string()).collect();
        let w = addresses.iter().map(String::len).max().unwrap_or(0).max(6);
        writeln!(
            out,
            "{:<w$} {:<12} {:>8} {:>9} {:>9} {:>8} {:<8} certificate",
            "server", "protocol", "sessions", "plaintext", "encrypted", "offered", "tls"
        )?;
        for (s, address) in top.iter().zip(addresses) {
            let sessions: u64 = s.sessions.values().sum();
            writeln!(
                out,
                "{:<w$} {:<12} {:>8} {:>9} {:>9} {:>8} {:<8} {}",
                address,
                s.protocol.name(),
                sessions,
                s.count(Encryption::Plaintext),
                s.count(Encryption::Starttls) + s.count(Encryption::ImplicitTls),
                s.starttls_offered,
                s.last_tls_version.as_deref().unwrap_or("-"),
                s.last_certificate_status.as_deref().unwrap_or("-"),
            )?;
        }
        Ok(())
    }
}

/// Protocols as rows, attacks as columns (whichever the rows hold, in their order):
/// `protected/all share (unknown?)`.
fn write_protection(out: &mut dyn Write, rows: &[ProtectionRow]) -> io::Result<()> {
    let attacks = distinct(rows.iter().map(|r| r.attack));
    let protocols = distinct(rows.iter().map(|r| r.protocol.map_or("all", |p| p.name())));
    write!(out, "{:<12}", "protected")?;
    for a in &attacks {
        write!(out, " {a:>18}")?;
    }
    writeln!(out)?;
    for p in &protocols {
        write!(out, "{p:<12}")?;
        for a in &attacks {
            let row = rows
                .iter()
                .find(|r| r.attack == *a && r.protocol.map_or("all", |p| p.name()) == *p);
            let cell = match row {
                None => "-".to_string(),
                Some(r) => {
                    let pct = format!("{:.0}%", r.protected_share * 100.0);
                    match r.unknown {
                        0 => format!("{}/{} {pct}", r.protected, r.sessions),
                        u => format!("{}/{} {pct} ({u}?)", r.protected, r.sessions),
                    }
                }
            };
            write!(out, " {cell:>18}")?;
        }
        writeln!(out)?;
    }
    for line in PROTECTION_LEGEND {
        writeln!(out, "  {line}")?;
    }
    Ok(())
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

/// `a=3 b=1` of the non-zero counts, or `none`.
fn list(m: &BTreeMap<&'static str, u64>) -> String {
    let parts: Vec<String> = m
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| format!("{k}={n}"))
        .collect();
    if parts.is_empty() {
        "none".to_string()
    } else {
        parts.join(" ")
    }
}

/// One phrase per reason, as the HTML banner says them.
pub fn describe_lower_bounds(reasons: &[LowerBound]) -> String {
    let parts: Vec<String> = reasons
        .iter()
        .map(|b| format!("{} {}", b.count, lower_bound_phrase(b.reason)))
        .collect();
    parts.join(", ")
}

/// What a [`LowerBound`] reason means, after its count.
pub fn lower_bound_phrase(reason: &str) -> &str {
    match reason {
        "unread_files" => "file(s) not read to their end",
        "capture_dropped" => "packet(s) dropped by the capture",
        "reassembly_gaps" => "reassembly gap(s) (bytes never seen)",
        "cut_frames" => "frame(s) cut short by the snap length",
        "ip_datagrams_given_up" => "fragmented IP datagram(s) never reassembled",
        "flows_evicted" => "flow(s) evicted from a full flow table",
        "servers_evicted" => "server(s) evicted from a full inventory",
        other => other,
    }
}
