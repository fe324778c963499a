//! The report's tables as CSV (`--format csv`), for spreadsheets: the [`ReportView`]'s tables
//! one after another, a blank line between them, each with its own header row. The first
//! column of every row names its table, so a filter on it (or a pivot table) takes one table
//! out of the file.
//!
//! Tables: `protocols`, `protection`, `tls`, `logins`, `timeline`, `files`, `health`,
//! `lower_bounds`, `servers`. Shares are fractions (0.25, not 25 %), of all sessions.

use super::{ReportView, Timeline};
use std::collections::BTreeMap;
use std::io::{self, Write};

/// Each table is written to a buffer of its own (a table has its own number of columns).
type Csv = ::csv::Writer<Vec<u8>>;
/// One table's writer.
type Table<'a> = &'a dyn Fn(&mut Csv) -> ::csv::Result<()>;

impl ReportView {
    pub fn write_csv(&self, out: &mut dyn Write) -> io::Result<()> {
        let outcomes = self.encryption_outcomes();
        let tables: [Table<'_>; 9] = [
            &|w| self.protocols_csv(w, &outcomes),
            &|w| self.protection_csv(w),
            &|w| self.tls_csv(w),
            &|w| self.logins_csv(w),
            &|w| timeline_csv(w, &self.timeline, &outcomes),
            &|w| self.files_csv(w),
            &|w| self.health_csv(w),
            &|w| self.lower_bounds_csv(w),
            &|w| self.servers_csv(w, &outcomes),
        ];
        for (i, table) in tables.iter().enumerate() {
            if i > 0 {
                out.write_all(b"\n")?;
            }
            let mut w = ::csv::Writer::from_writer(Vec::new());
            table(&mut w)?;
            out.write_all(&w.into_inner().map_err(|e| e.into_error())?)?;
        }
        Ok(())
    }

    fn protocols_csv(&self, w: &mut Csv, outcomes: &[&str]) -> ::csv::Result<()> {
        let mut head = vec!["table", "protocol", "sessions", "packets", "bytes"];
        head.extend(outcomes);
        head.extend([
            "encrypted_share",
            "starttls_offered",
            "starttls_attempted",
            "cleartext_auth_sessions",
            "cleartext_messages",
        ]);
        w.write_record(&head)?;
        for p in &self.protocols {
            let mut row = vec![
                "protocols".to_string(),
                p.protocol.name().to_string(),
                p.connections.to_string(),
                p.packets.to_string(),
                p.bytes.to_string(),
            ];
            row.extend(outcomes.iter().map(|o| count(&p.sessions, o)));
            row.extend([
                p.encrypted_share.map_or(String::new(), |s| s.to_string()),
                p.starttls_offered.to_string(),
                p.starttls_attempted.to_string(),
                p.cleartext_auth_sessions.to_string(),
                p.cleartext_messages.to_string(),
            ]);
            w.write_record(&row)?;
        }
        Ok(())
    }

    fn protection_csv(&self, w: &mut Csv) -> ::csv::Result<()> {
        w.write_record([
            "table",
            "protocol",
            "attack",
            "sessions",
            "protected",
            "exposed",
            "unknown",
            "protected_share",
            "exposed_share",
            "unknown_share",
        ])?;
        for r in &self.protection {
            w.write_record([
                "protection".to_string(),
                r.protocol.map_or("all", |p| p.name()).to_string(),
                r.attack.to_string(),
                r.sessions.to_string(),
                r.protected.to_string(),
                r.exposed.to_string(),
                r.unknown.to_string(),
                r.protected_share.to_string(),
                r.exposed_share.to_string(),
                r.unknown_share.to_string(),
            ])?;
        }
        Ok(())
    }

    /// One row per TLS parameter and value: `tls,version,TLSv1.3,18`.
    fn tls_csv(&self, w: &mut Csv) -> ::csv::Result<()> {
        let t = &self.tls;
        w.write_record(["table", "parameter", "value", "sessions"])?;
        let totals = [
            ("handshakes", "all", t.sessions),
            ("forward_secret", "true", t.forward_secret),
            ("post_quantum", "true", t.post_quantum),
        ];
        for (parameter, value, n) in totals {
            w.write_record(["tls", parameter, value, &n.to_string()])?;
        }
        for (parameter, tally) in [
            ("version", &t.versions),
            ("cipher_suite", &t.cipher_suites),
            ("key_exchange", &t.key_exchange),
            ("group", &t.groups),
            ("certificate", &t.certificates),
            ("weakness", &t.weaknesses),
        ] {
            for (value, n) in tally {
                w.write_record(["tls", parameter, *value, &n.to_string()])?;
            }
        }
        Ok(())
    }

    fn logins_csv(&self, w: &mut Csv) -> ::csv::Result<()> {
        w.write_record(["table", "protocol", "mechanism", "sessions"])?;
        for p in &self.protocols {
            for (mechanism, n) in &p.cleartext_auth {
                w.write_record(["logins", p.protocol.name(), mechanism, &n.to_string()])?;
            }
        }
        Ok(())
    }

    fn files_csv(&self, w: &mut Csv) -> ::csv::Result<()> {
        w.write_record([
            "table",
            "name",
            "packets",
            "first_packet",
            "last_packet",
            "error",
            "error_offset",
            "compression",
        ])?;
        for f in &self.files {
            let (first, last) = f.span.map_or((String::new(), String::new()), |s| {
                (s.first.to_string(), s.last.to_string())
            });
            w.write_record([
                "files".to_string(),
                f.name.clone(),
                f.packets.to_string(),
                first,
                last,
                f.error.clone().unwrap_or_default(),
                f.error_offset.map_or(String::new(), |o| o.to_string()),
                f.compression.map_or("", |c| c.label()).to_string(),
            ])?;
        }
        Ok(())
    }

    /// One row per counter and key: `health,packets,mail,1681`.
    fn health_csv(&self, w: &mut Csv) -> ::csv::Result<()> {
        let h = &self.health;
        w.write_record(["table", "counter", "key", "value"])?;
        let single = [
            ("reassembly_gaps", h.reassembly_gaps),
            ("reassembly_gap_bytes", h.reassembly_gap_bytes),
            ("flows_peak", h.flows_peak as u64),
            ("ip_fragment_overlaps", h.ip_fragment_overlaps),
            ("connections_without_payload", h.connections_without_payload),
            ("connections_unanswered", h.connections_unanswered),
            ("servers_evicted", self.servers.evicted),
        ];
        for (counter, n) in single {
            w.write_record(["health", counter, "", &n.to_string()])?;
        }
        for (counter, map) in [
            ("packets", &h.packets),
            ("flows_closed", &h.flows_closed),
            ("flows_evicted", &h.flows_evicted),
            ("ip_datagrams", &h.ip_datagrams),
            ("capture_dropped", &h.capture_dropped),
            ("anomalies", &h.anomalies),
            ("files_skipped", &h.files_skipped),
        ] {
            for (key, n) in map {
                w.write_record(["health", counter, key, &n.to_string()])?;
            }
        }
        Ok(())
    }

    fn lower_bounds_csv(&self, w: &mut Csv) -> ::csv::Result<()> {
        w.write_record(["table", "reason", "count"])?;
        for b in &self.lower_bounds {
            w.write_record(["lower_bounds", b.reason, &b.count.to_string()])?;
        }
        Ok(())
    }

    fn servers_csv(&self, w: &mut Csv, outcomes: &[&str]) -> ::csv::Result<()> {
        let mut head = vec!["table", "server", "protocol"];
        head.extend(outcomes);
        head.extend([
            "starttls_offered",
            "cleartext_auth_sessions",
            "last_tls_version",
            "last_cipher_suite",
            "last_certificate_status",
            "first_seen",
            "last_seen",
        ]);
        w.write_record(&head)?;
        for s in &self.servers.servers {
            let mut row = vec![
                "servers".to_string(),
                s.server.to_string(),
                s.protocol.name().to_string(),
            ];
            row.extend(outcomes.iter().map(|o| count(&s.sessions, o)));
            row.extend([
                s.starttls_offered.to_string(),
                s.cleartext_auth_sessions.to_string(),
                s.last_tls_version.clone().unwrap_or_default(),
                s.last_cipher_suite.clone().unwrap_or_default(),
                s.last_certificate_status.clone().unwrap_or_default(),
                s.first_seen.to_string(),
                s.last_seen.to_string(),
            ]);
            w.write_record(&row)?;
        }
        Ok(())
    }
}

fn timeline_csv(w: &mut Csv, t: &Timeline, outcomes: &[&str]) -> ::csv::Result<()> {
    let mut head = vec!["table", "start", "seconds"];
    head.extend(outcomes);
    w.write_record(&head)?;
    for b in &t.buckets {
        let mut row = vec![
            "timeline".to_string(),
            b.start.to_string(),
            t.bucket_seconds.to_string(),
        ];
        row.extend(outcomes.iter().map(|o| count(&b.sessions, o)));
        w.write_record(&row)?;
    }
    Ok(())
}

fn count(m: &BTreeMap<&'static str, u64>, key: &str) -> String {
    m.get(key).copied().unwrap_or(0).to_string()
}
