//! The report's TLS and protection sections: how the encrypted sessions were encrypted, and
//! what that protected against.

use crate::config::Protocol;
use crate::protection::{judge, Attack, Verdict};
use crate::record::SessionRecord;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{self, Write};

/// Counts by a closed or IANA-named value (version, cipher suite, weakness, status).
type Tally = BTreeMap<String, u64>;

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

/// Per protocol and attack: sessions protected, exposed, and not judgeable.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ProtectionRow {
    pub protocol: Option<Protocol>,
    pub attack: &'static str,
    pub protected: u64,
    pub exposed: u64,
    pub unknown: u64,
}

impl TlsSummary {
    pub fn add(&mut self, r: &SessionRecord) {
        let Some(tls) = &r.tls else {
            return;
        };
        self.sessions += 1;
        count(&mut self.versions, or_unknown(&tls.version));
        count(&mut self.cipher_suites, or_unknown(&tls.cipher_suite));
        count(&mut self.key_exchange, or_unknown(&tls.key_exchange));
        count(&mut self.groups, or_unknown(&tls.group));
        count(&mut self.certificates, &tls.certificate.status);
        for w in &tls.weaknesses {
            count(&mut self.weaknesses, w);
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

fn or_unknown(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("unknown")
}

/// One more of `key`; the key is copied only the first time it is seen.
fn count(tally: &mut Tally, key: &str) {
    match tally.get_mut(key) {
        Some(n) => *n += 1,
        None => {
            tally.insert(key.to_owned(), 1);
        }
    }
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
            .map(|((p, a), [protected, exposed, unknown])| ProtectionRow {
                protocol: Some(*p),
                attack: a.label(),
                protected: *protected,
                exposed: *exposed,
                unknown: *unknown,
            })
            .collect()
    }

    /// Protocols as rows, attacks as columns: `protected/total (unknown)`.
    pub fn write_table(&self, out: &mut dyn Write) -> io::Result<()> {
        write!(out, "{:<12}", "protected")?;
        for a in Attack::ALL {
            write!(out, " {:>16}", a.label())?;
        }
        writeln!(out)?;
        let protocols: Vec<Protocol> = Protocol::ALL
            .into_iter()
            .filter(|p| {
                Attack::ALL
                    .iter()
                    .any(|a| self.rows.contains_key(&(*p, *a)))
            })
            .collect();
        for p in protocols {
            write!(out, "{:<12}", p.name())?;
            for a in Attack::ALL {
                let [prot, exp, unk] = self.rows.get(&(p, a)).copied().unwrap_or_default();
                let cell = match unk {
                    0 => format!("{prot}/{}", prot + exp),
                    u => format!("{prot}/{} ({u}?)", prot + exp),
                };
                write!(out, " {cell:>16}")?;
            }
            writeln!(out)?;
        }
        writeln!(
            out,
            "(protected/judged; (n?) sessions that cannot be judged passively)"
        )
    }
}
