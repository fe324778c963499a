//! The server inventory: every mail server seen, by address and protocol, and how its
//! sessions were protected. Served as JSON at `/servers` and included in the replay report.
//!
//! Server addresses are data here, never metric labels (DESIGN.md: no IP address is a label),
//! so the inventory is bounded by its own entry count instead: when it is full, the servers
//! seen least recently (packet time) make room, and the evictions are counted.
//!
//! One sink thread writes; the HTTP server reads. The map is a `DashMap`, so a scrape of
//! `/servers` never stops the sink for longer than one shard's lock.

use crate::config::Protocol;
use crate::record::{CertStatus, CipherSuite, Encryption, SessionRecord, Version};
use crate::source::Timestamp;
use dashmap::DashMap;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

/// Entries kept unless `--inventory-size` says otherwise.
pub const DEFAULT_CAPACITY: usize = 10_000;

/// One server: its address (with port) and the protocol spoken there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerKey {
    pub server: SocketAddr,
    pub protocol: Protocol,
}

/// What is known about one server.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    /// By [`Encryption::ALL`] index.
    sessions: [u64; Encryption::ALL.len()],
    starttls_offered: u64,
    cleartext_auth_sessions: u64,
    last_tls: Option<LastTls>,
    first_seen: Timestamp,
    last_seen: Timestamp,
}

/// The TLS parameters of the server's latest session that showed a handshake: typed values,
/// spelled as the record spells them (`0x0305` for a version no registry lists) when the
/// summary is made. One per server, so the inventory's capacity bounds them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct LastTls {
    /// The session's start: the latest one wins, whatever order the workers finish in.
    at: Timestamp,
    version: Option<Version>,
    cipher_suite: Option<CipherSuite>,
    certificate_status: CertStatus,
}

/// One server as `/servers` and the JSON report show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ServerSummary {
    pub server: SocketAddr,
    pub protocol: Protocol,
    /// Sessions by encryption outcome (every outcome listed, zeros included).
    pub sessions: BTreeMap<&'static str, u64>,
    pub starttls_offered: u64,
    /// Sessions with a login in clear.
    pub cleartext_auth_sessions: u64,
    pub last_tls_version: Option<String>,
    pub last_cipher_suite: Option<String>,
    pub last_certificate_status: Option<String>,
    /// Packet time of the first session's start and the last session's end.
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
}

impl ServerSummary {
    pub fn count(&self, e: Encryption) -> u64 {
        self.sessions.get(e.label()).copied().unwrap_or(0)
    }
}

/// The whole inventory at one moment, sorted by plaintext sessions (most first), then by
/// server address and protocol.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    pub capacity: usize,
    /// Servers dropped to make room, since the start.
    pub evicted: u64,
    pub servers: Vec<ServerSummary>,
}

pub struct Inventory {
    map: DashMap<ServerKey, Entry>,
    capacity: usize,
    evicted: AtomicU64,
}

impl Inventory {
    /// An empty inventory holding at most `capacity` servers (at least one).
    pub fn new(capacity: usize) -> Self {
        Inventory {
            map: DashMap::new(),
            capacity: capacity.max(1),
            evicted: AtomicU64::new(0),
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Servers dropped to make room so far.
    pub fn evicted(&self) -> u64 {
        self.evicted.load(Ordering::Relaxed)
    }

    /// Count one finished session against its server.
    pub fn record(&self, r: &SessionRecord) {
        let key = ServerKey {
            server: r.server,
            protocol: r.protocol,
        };
        if !self.map.contains_key(&key) && self.map.len() >= self.capacity {
            self.evict();
        }
        let mut e = self.map.entry(key).or_insert_with(|| Entry {
            sessions: [0; Encryption::ALL.len()],
            starttls_offered: 0,
            cleartext_auth_sessions: 0,
            last_tls: None,
            first_seen: r.ts_start,
            last_seen: r.ts_end,
        });
        if let Some(i) = Encryption::ALL.iter().position(|x| *x == r.encryption) {
            e.sessions[i] += 1;
        }
        e.starttls_offered += u64::from(r.starttls_offered);
        e.cleartext_auth_sessions += u64::from(!r.cleartext_auth.is_empty());
        e.first_seen = e.first_seen.min(r.ts_start);
        e.last_seen = e.last_seen.max(r.ts_end);
        if let Some(tls) = &r.tls {
            let latest = LastTls {
                at: r.ts_start,
                version: tls.version,
                cipher_suite: tls.cipher_suite,
                certificate_status: tls.certificate.status,
            };
            match &mut e.last_tls {
                Some(t) if t.at > r.ts_start => {}
                last => *last = Some(latest),
            }
        }
    }

    /// Make room: drop the least recently seen servers, a sixteenth of the capacity at a
    /// time (at least one), so a stream of new servers costs one scan per batch, not per
    /// session.
    fn evict(&self) {
        let batch = (self.capacity / 16).max(1);
        let mut ages: Vec<(Timestamp, ServerKey)> =
            self.map.iter().map(|e| (e.last_seen, *e.key())).collect();
        if ages.len() > batch {
            ages.select_nth_unstable(batch - 1);
            ages.truncate(batch);
        }
        for (_, key) in ages {
            if self.map.remove(&key).is_some() {
                self.evicted.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Every server, most plaintext sessions first.
    pub fn snapshot(&self) -> Snapshot {
        let mut servers: Vec<ServerSummary> = self
            .map
            .iter()
            .map(|e| summary(e.key(), e.value()))
            .collect();
        servers
            .sort_by_key(|s| plaintext_first(s.count(Encryption::Plaintext), s.server, s.protocol));
        Snapshot {
            capacity: self.capacity,
            evicted: self.evicted(),
            servers,
        }
    }

    /// The servers that had plaintext sessions, at most `n`, most first: the head of
    /// [`Inventory::snapshot`]'s list without summarising every server (the replay table
    /// wants ten of up to `capacity`).
    pub fn top_plaintext(&self, n: usize) -> Vec<ServerSummary> {
        let plaintext = Encryption::ALL
            .iter()
            .position(|e| *e == Encryption::Plaintext)
            .unwrap_or(0);
        let mut top: Vec<_> = self
            .map
            .iter()
            .filter_map(|e| {
                let count = e.sessions.get(plaintext).copied().unwrap_or(0);
                (count > 0).then(|| plaintext_first(count, e.key().server, e.key().protocol))
            })
            .collect();
        if top.len() > n && n > 0 {
            top.select_nth_unstable(n - 1);
        }
        top.truncate(n);
        top.sort_unstable();
        top.into_iter()
            .filter_map(|(_, server, protocol)| {
                let key = ServerKey { server, protocol };
                self.map.get(&key).map(|e| summary(&key, e.value()))
            })
            .collect()
    }
}

/// Sort key: most plaintext sessions first, then by server and protocol.
fn plaintext_first(
    plaintext: u64,
    server: SocketAddr,
    protocol: Protocol,
) -> (std::cmp::Reverse<u64>, SocketAddr, Protocol) {
    (std::cmp::Reverse(plaintext), server, protocol)
}

fn summary(key: &ServerKey, e: &Entry) -> ServerSummary {
    let tls = e.last_tls.as_ref();
    ServerSummary {
        server: key.server,
        protocol: key.protocol,
        sessions: Encryption::ALL
            .iter()
            .zip(e.sessions)
            .map(|(enc, n)| (enc.label(), n))
            .collect(),
        starttls_offered: e.starttls_offered,
        cleartext_auth_sessions: e.cleartext_auth_sessions,
        last_tls_version: tls.and_then(|t| t.version).map(|v| v.to_string()),
        last_cipher_suite: tls.and_then(|t| t.cipher_suite).map(|s| s.to_string()),
        last_certificate_status: tls.map(|t| t.certificate_status.label().to_owned()),
        first_seen: e.first_seen,
        last_seen: e.last_seen,
    }
}

impl Snapshot {
    /// The servers that had plaintext sessions, at most `n` of them, most first.
    pub fn top_plaintext(&self, n: usize) -> impl Iterator<Item = &ServerSummary> {
        self.servers
            .iter()
            .take_while(|s| s.count(Encryption::Plaintext) > 0)
            .take(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{CertificateInfo, TlsInfo};
    use crate::session::anomaly::Anomalies;

    fn session(server: &str, enc: Encryption, start: u64) -> SessionRecord {
        SessionRecord {
            ts_start: Timestamp::from_secs(start),
            ts_end: Timestamp::from_secs(start + 1),
            client: "192.0.2.1:50000".parse().unwrap(),
            server: server.parse().unwrap(),
            protocol: Protocol::Smtp,
            encryption: enc,
            starttls_offered: enc == Encryption::Starttls,
            starttls_attempted: enc == Encryption::Starttls,
            tls: None,
            cleartext_auth: Vec::new(),
            cleartext_messages: 0,
            content_protection: Default::default(),
            bytes_to_server: 10,
            bytes_to_client: 10,
            anomalies: Anomalies::default(),
        }
    }

    fn with_tls(mut r: SessionRecord, version: Version) -> SessionRecord {
        r.tls = Some(TlsInfo {
            version: Some(version),
            cipher_suite: Some(CipherSuite(0x1301)),
            certificate: CertificateInfo {
                status: CertStatus::Hidden,
                ..CertificateInfo::default()
            },
            ..TlsInfo::default()
        });
        r
    }

    #[test]
    fn counts_by_outcome_and_sorts_by_plaintext_then_address() {
        let inv = Inventory::new(10);
        inv.record(&session("198.51.100.2:25", Encryption::Plaintext, 10));
        inv.record(&session("198.51.100.1:25", Encryption::Plaintext, 11));
        inv.record(&session("198.51.100.3:25", Encryption::Plaintext, 12));
        inv.record(&session("198.51.100.3:25", Encryption::Plaintext, 5));
        inv.record(&session("198.51.100.3:25", Encryption::Starttls, 13));
        let snap = inv.snapshot();
        let order: Vec<String> = snap.servers.iter().map(|s| s.server.to_string()).collect();
        assert_eq!(
            order,
            ["198.51.100.3:25", "198.51.100.1:25", "198.51.100.2:25"]
        );
        let top = &snap.servers[0];
        assert_eq!(top.count(Encryption::Plaintext), 2);
        assert_eq!(top.count(Encryption::Starttls), 1);
        assert_eq!(top.starttls_offered, 1);
        assert_eq!(top.first_seen, Timestamp::from_secs(5));
        assert_eq!(top.last_seen, Timestamp::from_secs(14));
        assert_eq!(top.sessions.len(), Encryption::ALL.len());
    }

    #[test]
    fn last_tls_is_the_latest_by_packet_time_not_by_arrival() {
        let inv = Inventory::new(10);
        let s = "198.51.100.1:465";
        inv.record(&with_tls(
            session(s, Encryption::ImplicitTls, 20),
            Version::TLS13,
        ));
        inv.record(&with_tls(
            session(s, Encryption::ImplicitTls, 10),
            Version(0x0305),
        ));
        inv.record(&session(s, Encryption::Plaintext, 30));
        let snap = inv.snapshot();
        let e = &snap.servers[0];
        assert_eq!(e.last_tls_version.as_deref(), Some("TLSv1.3"));
        assert_eq!(
            e.last_cipher_suite.as_deref(),
            Some("TLS_AES_128_GCM_SHA256")
        );
        assert_eq!(e.last_certificate_status.as_deref(), Some("hidden"));
    }

    #[test]
    fn full_inventory_evicts_the_least_recently_seen_and_counts() {
        let inv = Inventory::new(3);
        inv.record(&session("198.51.100.1:25", Encryption::Plaintext, 100));
        inv.record(&session("198.51.100.2:25", Encryption::Plaintext, 50));
        inv.record(&session("198.51.100.3:25", Encryption::Plaintext, 200));
        // An update to a known server needs no room.
        inv.record(&session("198.51.100.2:25", Encryption::Plaintext, 300));
        assert_eq!((inv.len(), inv.evicted()), (3, 0));
        inv.record(&session("198.51.100.4:25", Encryption::Plaintext, 400));
        assert_eq!((inv.len(), inv.evicted()), (3, 1));
        let snap = inv.snapshot();
        let kept: Vec<String> = snap.servers.iter().map(|s| s.server.to_string()).collect();
        assert!(!kept.contains(&"198.51.100.1:25".to_string()), "{kept:?}");
        assert_eq!(snap.evicted, 1);
    }

    #[test]
    fn stays_bounded_under_many_new_servers() {
        let inv = Inventory::new(128);
        for i in 0..10_000u64 {
            let addr = format!("10.0.{}.{}:25", i / 256, i % 256);
            inv.record(&session(&addr, Encryption::Plaintext, i));
        }
        assert!(inv.len() <= 128);
        assert_eq!(inv.evicted() + inv.len() as u64, 10_000);
        // The newest server is always kept.
        let snap = inv.snapshot();
        assert!(snap
            .servers
            .iter()
            .any(|s| s.server.to_string() == "10.0.39.15:25"));
    }

    #[test]
    fn top_plaintext_skips_servers_without_plaintext() {
        let inv = Inventory::new(10);
        inv.record(&session("198.51.100.1:25", Encryption::Starttls, 1));
        inv.record(&session("198.51.100.2:25", Encryption::Plaintext, 1));
        let snap = inv.snapshot();
        let top: Vec<_> = snap.top_plaintext(10).collect();
        assert_eq!(top.len(), 1);
        assert_eq!(top[0].server.to_string(), "198.51.100.2:25");
        assert_eq!(inv.top_plaintext(10), vec![top[0].clone()]);
    }

    #[test]
    fn top_plaintext_is_the_head_of_the_snapshot() {
        let inv = Inventory::new(100);
        for i in 0..40u64 {
            let enc = if i % 3 == 0 {
                Encryption::Starttls
            } else {
                Encryption::Plaintext
            };
            for _ in 0..(i % 7) {
                inv.record(&session(&format!("198.51.100.{}:25", i % 23), enc, i));
            }
        }
        let snap = inv.snapshot();
        for n in [0, 1, 5, 10, 100] {
            let head: Vec<_> = snap.top_plaintext(n).cloned().collect();
            assert_eq!(inv.top_plaintext(n), head, "top {n}");
        }
    }
}
