//! The replay report: what `mailtap replay` prints when it is done (a table, JSON, CSV) and
//! writes as an HTML page (`--html`), and what `/` and `/report.json` serve while it runs.
//!
//! [`Report`] adds up finished connections; [`Report::view`] turns it, with the server
//! inventory, into a [`ReportView`], the one value every format renders: the JSON report is
//! that value serialized, and the text, CSV and HTML reports read nothing else, so they cannot
//! disagree.
//!
//! Shares are of all sessions, as on the dashboard: a session whose outcome is unknown counts
//! against the encrypted and protected shares, and the unknown share says how far they could
//! rise.

pub mod csv;
pub mod html;
mod shared;
mod svg;
mod text;
mod timeline;

pub use shared::SharedReport;
pub use timeline::{Bucket, Timeline, TimelineCounter};

use crate::config::Protocol;
use crate::decode::defrag::DefragEvent;
use crate::engine::{packet_result_label, Health, PACKET_RESULTS};
use crate::flow::table::{CloseReason, FlowInfo};
use crate::record::{Encryption, SessionRecord};
use crate::sink::inventory::Snapshot;
use crate::sink::metrics::DropSite;
use crate::sink::tls_summary::{ProtectionRow, ProtectionTable, TlsSummary};
use crate::source::compressed::Compression;
use crate::source::walk::{Skip, Skipped};
use crate::source::TimeSpan;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{self, Write};

/// Finished connections added up; see [`Report::view`] for what the formats show.
#[derive(Clone, Debug)]
pub struct Report {
    /// The inputs of a replay, in the order they were read.
    pub files: Vec<FileReport>,
    protocols: Vec<ProtocolReport>,
    protection: ProtectionTable,
    tls: TlsSummary,
    timeline: TimelineCounter,
    /// From the first session's start to the last one's end.
    sessions_span: Option<TimeSpan>,
    health: HealthReport,
}

/// The report as every format shows it: the report's sections and the server inventory.
#[derive(Clone, Debug, Serialize)]
pub struct ReportView {
    pub files: Vec<FileReport>,
    /// Packet time covered: the files' packets in a replay, the sessions in a live capture.
    pub span: Option<TimeSpan>,
    pub protocols: Vec<ProtocolReport>,
    /// Per protocol and attack (the protection table as counts and shares of all sessions).
    pub protection: Vec<ProtectionRow>,
    pub tls: TlsSummary,
    pub timeline: Timeline,
    pub health: HealthReport,
    /// What makes the numbers lower bounds (empty when nothing does).
    pub lower_bounds: Vec<LowerBound>,
    pub servers: Snapshot,
}

#[derive(Clone, Debug, Serialize)]
pub struct FileReport {
    pub name: String,
    pub packets: u64,
    /// Packet time of the file's earliest and latest packet.
    pub span: Option<TimeSpan>,
    /// Why reading stopped early; the packets before it were used.
    pub error: Option<String>,
    /// The byte offset of the block that could not be read; in the decompressed stream when
    /// the file is compressed.
    pub error_offset: Option<u64>,
    /// `gzip` or `zstd` when the file is compressed.
    pub compression: Option<Compression>,
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
    /// Sessions inside TLS (`starttls` + `implicit_tls`) of all sessions; `None` without any.
    pub encrypted_share: Option<f64>,
    pub starttls_offered: u64,
    pub starttls_attempted: u64,
    /// Sessions with a login in clear.
    pub cleartext_auth_sessions: u64,
    /// Sessions that logged in clear, by mechanism (a session that used two counts in both).
    pub cleartext_auth: BTreeMap<&'static str, u64>,
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
    /// IP datagrams that came in fragments, by what became of them (`reassembled`, or given
    /// up: `timeout`, `over_cap`, `invalid`, `end_of_capture`).
    pub ip_datagrams: BTreeMap<&'static str, u64>,
    /// Fragments that overlapped bytes an earlier fragment brought (the first copy is kept).
    pub ip_fragment_overlaps: u64,
    /// Packets a live capture lost before mailtap saw them, by where (0 in a replay).
    pub capture_dropped: BTreeMap<&'static str, u64>,
    /// The process's peak resident memory (Linux `VmHWM`), when the platform tells.
    pub peak_rss_bytes: Option<u64>,
    /// Connections without a single payload byte (scans, refused, SYN floods): not sessions.
    pub connections_without_payload: u64,
    /// Connections that carried client payload with no sign of a server (spoofed packets,
    /// floods): not sessions.
    pub connections_unanswered: u64,
    pub anomalies: BTreeMap<&'static str, u64>,
    /// Paths in the walked directories that were not read, by why (`not_a_capture`,
    /// `unreadable`, `duplicate`: a file already read under another path).
    pub files_skipped: BTreeMap<&'static str, u64>,
}

/// One reason the numbers are lower bounds, and how much of it there was.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LowerBound {
    /// `unread_files` (files not read to their end), `capture_dropped` (packets),
    /// `reassembly_gaps` (gaps), `cut_frames` (frames cut short of their headers or by the
    /// snap length), `ip_datagrams_given_up` (fragmented datagrams never reassembled),
    /// `flows_evicted` (flows dropped from a full table), `servers_evicted` (servers dropped
    /// from a full inventory).
    pub reason: &'static str,
    pub count: u64,
}

/// Packet results that mean a frame was captured short (the `result` label of
/// `packets_total`).
pub const CUT_FRAME_RESULTS: [&str; 2] = ["truncated", "cut_by_snaplen"];

/// What became of fragmented datagrams whose bytes were lost (the `result` label of
/// `ip_datagrams_total` but `reassembled`).
const DATAGRAMS_GIVEN_UP: [&str; 4] = ["timeout", "over_cap", "invalid", "end_of_capture"];

impl ProtocolReport {
    fn new(protocol: Protocol) -> Self {
        ProtocolReport {
            protocol,
            connections: 0,
            packets: 0,
            bytes: 0,
            sessions: Encryption::ALL.iter().map(|e| (e.label(), 0)).collect(),
            encrypted_share: None,
            starttls_offered: 0,
            starttls_attempted: 0,
            cleartext_auth_sessions: 0,
            cleartext_auth: BTreeMap::new(),
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
        for mechanism in &r.cleartext_auth {
            *self.cleartext_auth.entry(mechanism).or_default() += 1;
        }
        self.cleartext_messages += r.cleartext_messages;
        self.encrypted_share = Some(self.encrypted() as f64 / self.connections as f64);
    }

    pub fn count(&self, e: Encryption) -> u64 {
        self.sessions.get(e.label()).copied().unwrap_or(0)
    }

    /// Sessions whose dialogue ran inside TLS.
    pub fn encrypted(&self) -> u64 {
        self.count(Encryption::Starttls) + self.count(Encryption::ImplicitTls)
    }
}

impl Default for Report {
    fn default() -> Self {
        Self::new()
    }
}

impl Report {
    pub fn new() -> Self {
        Report {
            files: Vec::new(),
            protocols: Protocol::ALL
                .iter()
                .map(|p| ProtocolReport::new(*p))
                .collect(),
            protection: ProtectionTable::default(),
            tls: TlsSummary::default(),
            timeline: TimelineCounter::default(),
            sessions_span: None,
            health: HealthReport {
                capture_dropped: DropSite::ALL.iter().map(|d| (d.label(), 0)).collect(),
                files_skipped: Skip::LABELS.iter().map(|l| (*l, 0)).collect(),
                ..HealthReport::default()
            },
        }
    }

    /// One finished connection, with its record when it was a session.
    pub fn add(&mut self, info: &FlowInfo, record: Option<&SessionRecord>) {
        let Some(r) = record else {
            if info.unanswered() {
                self.health.connections_unanswered += 1;
            } else {
                self.health.connections_without_payload += 1;
            }
            return;
        };
        if let Some(p) = self.protocols.iter_mut().find(|p| p.protocol == r.protocol) {
            p.add(info, r);
        }
        for a in r.anomalies.iter() {
            *self.health.anomalies.entry(a.label()).or_default() += 1;
        }
        self.tls.add(r);
        self.protection.add(r);
        self.timeline.add(r.ts_start, r.encryption);
        let span = TimeSpan {
            first: r.ts_start,
            last: r.ts_end.max(r.ts_start),
        };
        self.sessions_span = TimeSpan::join(self.sessions_span, Some(span));
    }

    /// The sensor's health counters so far (replaced, not added: they are cumulative).
    pub fn set_health(&mut self, h: &Health) {
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
        self.health.ip_datagrams = DefragEvent::FATES
            .iter()
            .map(|e| (e.label(), h.datagrams[e.index()]))
            .collect();
        self.health.ip_fragment_overlaps = h.datagrams[DefragEvent::Overlap.index()];
        self.health.peak_rss_bytes = peak_rss_bytes();
    }

    /// The paths a replay's directory walks passed over.
    pub fn set_files_skipped(&mut self, skipped: &[Skipped]) {
        for l in Skip::LABELS {
            self.health.files_skipped.insert(l, 0);
        }
        for s in skipped {
            *self.health.files_skipped.entry(s.why.label()).or_default() += 1;
        }
    }

    /// Packets a live capture lost, since it started.
    pub fn set_capture_dropped(&mut self, site: DropSite, packets: u64) {
        self.health.capture_dropped.insert(site.label(), packets);
    }

    /// The report as every format shows it, with `servers` (the inventory now).
    pub fn view(&self, servers: Snapshot) -> ReportView {
        let file_span = self
            .files
            .iter()
            .fold(None, |span, f| TimeSpan::join(span, f.span));
        let mut view = ReportView {
            files: self.files.clone(),
            span: file_span.or(self.sessions_span),
            protocols: self.protocols.clone(),
            protection: self.protection.rows(),
            tls: self.tls.clone(),
            timeline: self.timeline.timeline(),
            health: self.health.clone(),
            lower_bounds: Vec::new(),
            servers,
        };
        view.lower_bounds = lower_bounds(&view);
        view
    }
}

/// What in the view makes its numbers lower bounds.
fn lower_bounds(v: &ReportView) -> Vec<LowerBound> {
    let h = &v.health;
    let sum = |m: &BTreeMap<&'static str, u64>, keys: &[&str]| -> u64 {
        m.iter()
            .filter(|(k, _)| keys.contains(k))
            .map(|(_, n)| n)
            .sum()
    };
    let reasons = [
        (
            "unread_files",
            v.files.iter().filter(|f| f.error.is_some()).count() as u64,
        ),
        ("capture_dropped", h.capture_dropped.values().sum()),
        ("reassembly_gaps", h.reassembly_gaps),
        ("cut_frames", sum(&h.packets, &CUT_FRAME_RESULTS)),
        (
            "ip_datagrams_given_up",
            sum(&h.ip_datagrams, &DATAGRAMS_GIVEN_UP),
        ),
        (
            "flows_evicted",
            sum(&h.flows_evicted, &[CloseReason::TableFull.label()]),
        ),
        ("servers_evicted", v.servers.evicted),
    ];
    reasons
        .into_iter()
        .filter(|(_, count)| *count > 0)
        .map(|(reason, count)| LowerBound { reason, count })
        .collect()
}

impl ReportView {
    pub fn write_json(&self, out: &mut dyn Write) -> io::Result<()> {
        serde_json::to_writer_pretty(&mut *out, self)?;
        out.write_all(b"\n")
    }

    /// The encryption outcomes the view counts by, in [`Encryption::ALL`]'s order and any
    /// other after them.
    pub fn encryption_outcomes(&self) -> Vec<&'static str> {
        let mut keys: Vec<&'static str> = self
            .protocols
            .first()
            .map(|p| p.sessions.keys().copied().collect())
            .unwrap_or_default();
        let known = Encryption::ALL.map(Encryption::label);
        keys.sort_by_key(|k| known.iter().position(|x| x == k).unwrap_or(known.len()));
        keys
    }

    /// Sessions in all protocols.
    pub fn sessions(&self) -> u64 {
        self.protocols.iter().map(|p| p.connections).sum()
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
