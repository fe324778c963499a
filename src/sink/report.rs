//! The replay report: what `mailtap replay` prints when it is done, as a table or as JSON.

use crate::config::Protocol;
use crate::engine::{packet_result_label, Health, PACKET_RESULTS};
use crate::flow::table::{CloseReason, FlowInfo};
use crate::record::{Encryption, SessionRecord};
use crate::sink::tls_summary::{ProtectionRow, ProtectionTable, TlsSummary};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{self, Write};

#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub files: Vec<FileReport>,
    pub protocols: Vec<ProtocolReport>,
    /// Per protocol and attack (DESIGN.md's protection table as counts).
    pub protection: Vec<ProtectionRow>,
    pub tls: TlsSummary,
    pub health: HealthReport,
    #[serde(skip)]
    protection_table: ProtectionTable,
}

#[derive(Clone, Debug, Serialize)]
pub struct FileReport {
    pub name: String,
    pub packets: u64,
    /// Why reading stopped early; the packets before it were used.
    pub error: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ProtocolReport {
    pub protocol: Protocol,
    /// Connections that carried at least one payload byte (sessions).
    pub connections: u64,
    pub packets: u64,
    pub bytes: u64,
    /// Sessions by encryption outcome (every outcome listed, zeros included).
    pub sessions: BTreeMap<&'static str, u64>,
    pub starttls_offered: u64,
    pub starttls_attempted: u64,
    /// Sessions with a login in clear.
    pub cleartext_auth_sessions: u64,
    pub cleartext_messages: u64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct HealthReport {
    pub packets: BTreeMap<&'static str, u64>,
    pub reassembly_gaps: u64,
    pub reassembly_gap_bytes: u64,
    pub flows_closed: BTreeMap<&'static str, u64>,
    /// The closes the sensor forced (timeouts, a full table): a subset of `flows_closed`.
    pub flows_evicted: BTreeMap<&'static str, u64>,
    pub flows_peak: usize,
    /// The process's peak resident memory (Linux `VmHWM`), when the platform tells.
    pub peak_rss_bytes: Option<u64>,
    /// Connections without a single payload byte (scans, refused, SYN floods): not sessions.
    pub connections_without_payload: u64,
    pub anomalies: BTreeMap<&'static str, u64>,
}

impl ProtocolReport {
    fn new(protocol: Protocol) -> Self {
        ProtocolReport {
            protocol,
            connections: 0,
            packets: 0,
            bytes: 0,
            sessions: Encryption::ALL.iter().map(|e| (e.label(), 0)).collect(),
            starttls_offered: 0,
            starttls_attempted: 0,
            cleartext_auth_sessions: 0,
            cleartext_messages: 0,
        }
    }

    fn add(&mut self, info: &FlowInfo, r: &SessionRecord) {
        self.connections += 1;
        self.packets += info.packets.iter().sum::<u64>();
        self.bytes += info.bytes.iter().sum::<u64>();
        *self.sessions.entry(r.encryption.label()).or_default() += 1;
        self.starttls_offered += u64::from(r.starttls_offered);
        self.starttls_attempted += u64::from(r.starttls_attempted);
        self.cleartext_auth_sessions += u64::from(!r.cleartext_auth.is_empty());
        self.cleartext_messages += r.cleartext_messages;
    }

    /// Sessions protected by TLS, of those whose outcome is known.
    fn encrypted_share(&self) -> Option<f64> {
        let get = |e: Encryption| self.sessions.get(e.label()).copied().unwrap_or(0);
        let known = self.connections - get(Encryption::Unknown);
        let encrypted = get(Encryption::Starttls) + get(Encryption::ImplicitTls);
        (known > 0).then(|| encrypted as f64 / known as f64)
    }
}

impl Report {
    pub fn new() -> Self {
        Report {
            protocols: Protocol::ALL
                .iter()
                .map(|p| ProtocolReport::new(*p))
                .collect(),
            ..Report::default()
        }
    }

    /// One finished connection, with its record when it was a session.
    pub fn add(&mut self, info: &FlowInfo, record: Option<&SessionRecord>) {
        let Some(r) = record else {
            self.health.connections_without_payload += 1;
            return;
        };
        if let Some(p) = self.protocols.iter_mut().find(|p| p.protocol == r.protocol) {
            p.add(info, r);
        }
        for a in r.anomalies.iter() {
            *self.health.anomalies.entry(a.label()).or_default() += 1;
        }
        self.tls.add(r);
        self.protection_table.add(r);
    }

    /// The end of the replay: the sensor's health, and the protection rows (built once here,
    /// not per session).
    pub fn set_health(&mut self, h: &Health) {
        self.protection = self.protection_table.rows();
        self.health.packets = (0..PACKET_RESULTS)
            .map(|i| (packet_result_label(i), h.packets[i]))
            .collect();
        self.health.reassembly_gaps = h.gaps;
        self.health.reassembly_gap_bytes = h.gap_bytes;
        self.health.flows_closed = CloseReason::ALL
            .iter()
            .map(|r| (r.label(), h.closed[r.index()]))
            .collect();
        self.health.flows_evicted = CloseReason::ALL
            .iter()
            .filter(|r| r.is_eviction())
            .map(|r| (r.label(), h.closed[r.index()]))
            .collect();
        self.health.flows_peak = h.peak_flows;
        self.health.peak_rss_bytes = peak_rss_bytes();
    }

    pub fn write_json(&self, out: &mut dyn Write) -> io::Result<()> {
        serde_json::to_writer_pretty(&mut *out, self)?;
        out.write_all(b"\n")
    }

    pub fn write_table(&self, out: &mut dyn Write) -> io::Result<()> {
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
            let get = |e: Encryption| p.sessions.get(e.label()).copied().unwrap_or(0);
            let share = p
                .encrypted_share()
                .map_or_else(|| "-".to_string(), |s| format!("{:.1}%", s * 100.0));
            writeln!(
                out,
                "{:<12} {:>8} {:>9} {:>12} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>7} {:>6}",
                p.protocol.name(),
                p.connections,
                p.packets,
                p.bytes,
                share,
                get(Encryption::Plaintext),
                get(Encryption::StarttlsRefused),
                get(Encryption::StarttlsStripped),
                get(Encryption::TlsFailed),
                get(Encryption::Unknown),
                p.cleartext_auth_sessions,
                p.cleartext_messages
            )?;
        }
        writeln!(out)?;
        self.protection_table.write_table(out)?;
        writeln!(out)?;
        self.tls.write_table(out)?;
        writeln!(out)?;
        let h = &self.health;
        let list = |m: &BTreeMap<&'static str, u64>| {
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
        };
        writeln!(out, "packets:   {}", list(&h.packets))?;
        writeln!(
            out,
            "flows:     peak={} without_payload={} closed: {}",
            h.flows_peak,
            h.connections_without_payload,
            list(&h.flows_closed)
        )?;
        writeln!(
            out,
            "gaps:      {} ({} bytes)",
            h.reassembly_gaps, h.reassembly_gap_bytes
        )?;
        writeln!(out, "anomalies: {}", list(&h.anomalies))?;
        let packets: u64 = self.files.iter().map(|f| f.packets).sum();
        writeln!(
            out,
            "files:     {} read, {packets} packets",
            self.files.len()
        )?;
        for f in self.files.iter().filter(|f| f.error.is_some()) {
            let e = f.error.as_deref().unwrap_or_default();
            writeln!(out, "  ERROR {e} ({} packets used)", f.packets)?;
        }
        Ok(())
    }
}

/// Peak resident set size of this process, from `/proc/self/status` (Linux); `None` elsewhere.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    kib.checked_mul(1024)
}
