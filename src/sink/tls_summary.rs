//! The report's TLS and protection sections: how the encrypted sessions were encrypted, and
//! what that protected against.
//!
//! The TLS tallies count sessions by each value's closed label (`label()` of the record's
//! types: registry names, `other` for unlisted code points, `dh_under_2048` / `dh2048` /
//! `dh3072_plus` for custom DH primes, `unknown` where the handshake did not show it), not by
//! the record's spelling: a capture of hostile handshakes cannot grow the report, its JSON,
//! CSV or HTML, by one row per code point. The session log keeps each value as sent.

use crate::config::Protocol;
use crate::protection::{judge, Attack, Verdict};
use crate::record::{CipherSuite, Group, KeyExchange, SessionRecord, Version};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{self, Write};

/// Counts by a closed label (version, cipher suite, weakness, status).
pub type Tally = BTreeMap<&'static str, u64>;

/// The label of a TLS value the handshake did not show.
const UNKNOWN: &str = "unknown";

#[derive(Clone, Debug, Default, Serialize)]
pub struct TlsSummary {
    /// Sessions whose handshake was seen.
    pub sessions: u64,
    pub versions: Tally,
    pub cipher_suites: Tally,
    pub key_exchange: Tally,
    pub groups: Tally,
    pub forward_secret: u64,
    pub post_quantum: u64,
    pub weaknesses: Tally,
    pub certificates: Tally,
}

/// Per protocol and attack: sessions protected, exposed, and not judgeable, and their shares
/// of all the protocol's sessions (the three add up to 1).
#[derive(Clone, Debug, Default, Serialize)]
pub struct ProtectionRow {
    pub protocol: Option<Protocol>,
    pub attack: &'static str,
    pub sessions: u64,
    pub protected: u64,
    pub exposed: u64,
    pub unknown: u64,
    pub protected_share: f64,
    pub exposed_share: f64,
    pub unknown_share: f64,
}

impl TlsSummary {
    pub fn add(&mut self, r: &SessionRecord) {
        let Some(tls) = &r.tls else {
            return;
        };
        self.sessions += 1;
        count(
            &mut self.versions,
            tls.version.map_or(UNKNOWN, Version::label),
        );
        count(
            &mut self.cipher_suites,
            tls.cipher_suite.map_or(UNKNOWN, CipherSuite::label),
        );
        count(
            &mut self.key_exchange,
            tls.key_exchange.map_or(UNKNOWN, KeyExchange::label),
        );
        count(&mut self.groups, tls.group.map_or(UNKNOWN, Group::label));
        count(&mut self.certificates, tls.certificate.status.label());
        for w in &tls.weaknesses {
            count(&mut self.weaknesses, w.label());
        }
        self.forward_secret += u64::from(tls.forward_secret == Some(true));
        self.post_quantum += u64::from(tls.post_quantum == Some(true));
    }

    pub fn write_table(&self, out: &mut dyn Write) -> io::Result<()> {
        if self.sessions == 0 {
            return writeln!(out, "tls:       no handshake seen");
        }
        let pct = |n: u64| 100.0 * n as f64 / self.sessions as f64;
        writeln!(
            out,
            "tls:       {} handshakes, forward secret {:.1}%, post-quantum {:.1}%",
            self.sessions,
            pct(self.forward_secret),
            pct(self.post_quantum)
        )?;
        for (name, tally) in [
            ("versions", &self.versions),
            ("suites", &self.cipher_suites),
            ("kx", &self.key_exchange),
            ("groups", &self.groups),
            ("weak", &self.weaknesses),
            ("certs", &self.certificates),
        ] {
            writeln!(out, "  {name:<8} {}", most_first(tally))?;
        }
        Ok(())
    }
}

/// One more of `key`.
fn count(tally: &mut Tally, key: &'static str) {
    *tally.entry(key).or_default() += 1;
}

/// `a=3 b=1`, most frequent first, then by name.
fn most_first(tally: &Tally) -> String {
    let mut v: Vec<_> = tally.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let parts: Vec<String> = v.iter().map(|(k, n)| format!("{k}={n}")).collect();
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(" ")
    }
}

/// The protection table: one row per protocol and attack, in protocol then attack order.
#[derive(Clone, Debug, Default)]
pub struct ProtectionTable {
    rows: BTreeMap<(Protocol, Attack), [u64; 3]>,
}

impl ProtectionTable {
    pub fn add(&mut self, r: &SessionRecord) {
        for a in Attack::ALL {
            let cell = self.rows.entry((r.protocol, a)).or_default();
            let i = match judge(r, a) {
                Verdict::Protected => 0,
                Verdict::Exposed => 1,
                Verdict::Unknown => 2,
            };
            cell[i] += 1;
        }
    }

    pub fn rows(&self) -> Vec<ProtectionRow> {
        self.rows
            .iter()
            .map(|((p, a), [protected, exposed, unknown])| {
                let sessions = protected + exposed + unknown;
                let share = |n: u64| n as f64 / sessions.max(1) as f64;
                ProtectionRow {
                    protocol: Some(*p),
                    attack: a.label(),
                    sessions,
                    protected: *protected,
                    exposed: *exposed,
                    unknown: *unknown,
                    protected_share: share(*protected),
                    exposed_share: share(*exposed),
                    unknown_share: share(*unknown),
                }
            })
            .collect()
    }
}
