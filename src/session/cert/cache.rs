//! Verdicts already reached, by chain and name.
//!
//! A server presents the same chain to every client, so parsing it and checking its
//! signatures once per (chain, SNI) instead of once per handshake removes most of the
//! certificate cost on busy links. A verdict depends on the time only through the validity
//! periods, so an entry is reused only at moments when *every* certificate of the chain is
//! inside its dates (the `window`): there the verdict cannot change with time (see
//! `reusable_window`). Anything outside the window is judged afresh and not stored.
//!
//! Bounded: at most [`CAPACITY`] entries of at most [`MAX_CHAIN_BYTES`] chain bytes each
//! (≤ 8 MiB, typically ~2 MiB); when full, the older half goes. Keys are the exact bytes
//! (compared, not only hashed) with a per-process random hash seed, so a crafted chain can
//! neither collide into another's verdict nor degrade the table.

use super::MAX_CHAIN_CERTS;
use crate::record::CertificateInfo;
use hashbrown::HashTable;
use std::hash::{BuildHasher, Hasher};
use std::sync::Mutex;

/// Entries kept (distinct server chains in rotation on one sensor).
pub const CAPACITY: usize = 512;
/// Chains bigger than this are judged every time (they are rare and would crowd the cache).
pub const MAX_CHAIN_BYTES: usize = 16 * 1024;

/// The moments (Unix seconds, inclusive) at which a cached verdict holds.
pub type Window = (i64, i64);

struct Entry {
    hash: u64,
    /// Insertion number: the older half is dropped when full.
    seq: u64,
    chain: Vec<Vec<u8>>,
    sni: Option<Box<str>>,
    window: Window,
    info: CertificateInfo,
}

struct Inner {
    table: HashTable<Entry>,
    next_seq: u64,
}

pub struct VerdictCache {
    hasher: foldhash::fast::RandomState,
    inner: Mutex<Inner>,
}

impl Default for VerdictCache {
    fn default() -> Self {
        VerdictCache {
            hasher: foldhash::fast::RandomState::default(),
            inner: Mutex::new(Inner {
                table: HashTable::new(),
                next_seq: 0,
            }),
        }
    }
}

/// The part of a chain a verdict depends on.
fn key(chain: &[Vec<u8>]) -> &[Vec<u8>] {
    chain.get(..MAX_CHAIN_CERTS).unwrap_or(chain)
}

impl VerdictCache {
    fn hash(&self, chain: &[Vec<u8>], sni: Option<&str>) -> u64 {
        let mut h = self.hasher.build_hasher();
        h.write_usize(chain.len());
        for der in chain {
            h.write_usize(der.len());
            h.write(der);
        }
        match sni {
            Some(name) => {
                h.write_u8(1);
                h.write(name.as_bytes());
            }
            None => h.write_u8(0),
        }
        h.finish()
    }

    /// The verdict for `chain` and `sni` at Unix second `now`, if one was stored for a
    /// window containing `now`.
    pub fn get(&self, chain: &[Vec<u8>], sni: Option<&str>, now: i64) -> Option<CertificateInfo> {
        let chain = key(chain);
        let hash = self.hash(chain, sni);
        let inner = self.inner.lock().ok()?;
        let e = inner.table.find(hash, |e| {
            e.hash == hash && e.sni.as_deref() == sni && e.chain.as_slice() == chain
        })?;
        (e.window.0 <= now && now <= e.window.1).then(|| e.info.clone())
    }

    /// Remember `info` for `chain` and `sni` at every moment of `window`.
    pub fn put(
        &self,
        chain: &[Vec<u8>],
        sni: Option<&str>,
        window: Window,
        info: &CertificateInfo,
    ) {
        let chain = key(chain);
        if chain.iter().map(Vec::len).sum::<usize>() > MAX_CHAIN_BYTES {
            return;
        }
        let hash = self.hash(chain, sni);
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        if inner.table.len() >= CAPACITY {
            let cutoff = inner.next_seq.saturating_sub(CAPACITY as u64 / 2);
            inner.table.retain(|e| e.seq >= cutoff);
        }
        let seq = inner.next_seq;
        inner.next_seq += 1;
        let entry = Entry {
            hash,
            seq,
            chain: chain.to_vec(),
            sni: sni.map(Box::from),
            window,
            info: info.clone(),
        };
        match inner.table.entry(
            hash,
            |e| e.hash == hash && e.sni.as_deref() == sni && e.chain.as_slice() == chain,
            |e| e.hash,
        ) {
            hashbrown::hash_table::Entry::Occupied(mut o) => *o.get_mut() = entry,
            hashbrown::hash_table::Entry::Vacant(v) => {
                v.insert(entry);
            }
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.inner.lock().map(|i| i.table.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::cert::CertStatus;

    fn info(status: &str) -> CertificateInfo {
        let status = CertStatus::ALL
            .into_iter()
            .find(|s| s.label() == status)
            .unwrap_or_default();
        CertificateInfo {
            status,
            ..CertificateInfo::default()
        }
    }

    #[test]
    fn hit_only_inside_the_window_and_for_the_same_name_and_bytes() {
        let cache = VerdictCache::default();
        let chain = vec![vec![1, 2, 3], vec![4, 5]];
        cache.put(&chain, Some("a.test"), (100, 200), &info("valid"));
        assert_eq!(cache.get(&chain, Some("a.test"), 100), Some(info("valid")));
        assert_eq!(cache.get(&chain, Some("a.test"), 200), Some(info("valid")));
        assert_eq!(cache.get(&chain, Some("a.test"), 99), None);
        assert_eq!(cache.get(&chain, Some("a.test"), 201), None);
        assert_eq!(cache.get(&chain, Some("b.test"), 150), None);
        assert_eq!(cache.get(&chain, None, 150), None);
        // Same bytes split differently is another chain.
        assert_eq!(
            cache.get(&[vec![1, 2], vec![3, 4, 5]], Some("a.test"), 150),
            None
        );
        assert_eq!(cache.get(&chain[..1], Some("a.test"), 150), None);
    }

    #[test]
    fn bounded_and_keeps_the_newest() {
        let cache = VerdictCache::default();
        for i in 0..(CAPACITY as u32 * 3) {
            cache.put(&[i.to_be_bytes().to_vec()], None, (0, 10), &info("valid"));
        }
        assert!(cache.len() <= CAPACITY, "{} entries", cache.len());
        let newest = (CAPACITY as u32 * 3 - 1).to_be_bytes().to_vec();
        assert_eq!(cache.get(&[newest], None, 5), Some(info("valid")));
        assert_eq!(cache.get(&[0u32.to_be_bytes().to_vec()], None, 5), None);
    }

    #[test]
    fn big_chains_are_not_kept() {
        let cache = VerdictCache::default();
        let big = vec![vec![0u8; MAX_CHAIN_BYTES + 1]];
        cache.put(&big, None, (0, 10), &info("valid"));
        assert_eq!(cache.len(), 0);
    }
}
