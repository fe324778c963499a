//! IP fragments → whole datagrams, bounded the way Suricata's defrag engine is.
//!
//! Fragments arrive in any order and may overlap. The first copy of a byte is kept (Suricata's
//! `first` policy, and what RFC 5722 asks of IPv6: an overlap is an attack, not a repair); an
//! overlap is counted. What cannot be reassembled is dropped and counted by reason:
//!
//! - `timeout`: not complete within [`DefragLimits::timeout`] of packet time after its first
//!   fragment;
//! - `over_cap`: a new datagram beyond [`DefragLimits::max_datagrams`], a datagram that would
//!   take the bytes held past [`DefragLimits::max_bytes`], or one cut into more than
//!   [`MAX_PIECES`] disjoint pieces;
//! - `invalid`: fragments that contradict each other (two ends, bytes past the end, a middle
//!   fragment whose length is not a multiple of 8, a datagram longer than 64 KiB);
//! - `end_of_capture`: still incomplete when the input ended ([`Defrag::finish`]).
//!
//! Packet time moves with the fragments: a datagram times out when a fragment more than the
//! timeout after its first one arrives, or is counted at the end of the capture. Either way
//! what is held stays under the caps.
//!
//! etherparse has a defragmentation buffer, but it keeps the last copy of overlapping bytes,
//! has no byte cap, and cannot tell an overlap apart; this module is the policy around a plain
//! byte buffer instead.
//!
//! A fragment the snap length cut still covers its wire range: the datagram completes, and only
//! the bytes before the first byte not captured are handed on, with the datagram's wire length,
//! so the transport above sees a cut tail exactly as for an unfragmented frame.

use crate::source::Timestamp;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::Duration;

/// The most a reassembled IP payload can be: the 13-bit offset in 8-byte units plus a last
/// fragment (IPv4's total length and IPv6's payload length are 16 bits).
const MAX_DATAGRAM: u32 = 65_535;
/// Disjoint pieces held for one datagram before it is given up: fragments of 8 bytes, sent
/// sparse, would otherwise cost a range each.
pub const MAX_PIECES: usize = 64;

/// How much reassembly may hold. The defaults are Suricata's `defrag` defaults: 65,535
/// trackers, a 32 MiB memcap, a 60 s timeout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefragLimits {
    /// Datagrams in reassembly at once.
    pub max_datagrams: usize,
    /// Bytes held for datagrams in reassembly.
    pub max_bytes: usize,
    /// Packet time after a datagram's first fragment by which it must be complete.
    pub timeout: Duration,
}

impl Default for DefragLimits {
    fn default() -> Self {
        DefragLimits {
            max_datagrams: 65_535,
            max_bytes: 32 * 1024 * 1024,
            timeout: Duration::from_secs(60),
        }
    }
}

/// What became of fragments: the `result` label of `mailtap_ip_datagrams_total` (by datagram)
/// and `overlap`, counted by fragment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefragEvent {
    Reassembled,
    Timeout,
    OverCap,
    Invalid,
    /// Still missing fragments when the input ended.
    EndOfCapture,
    /// A fragment that covered bytes another fragment had already brought (first copy kept).
    Overlap,
}

impl DefragEvent {
    pub const COUNT: usize = 6;
    pub const ALL: [DefragEvent; Self::COUNT] = [
        DefragEvent::Reassembled,
        DefragEvent::Timeout,
        DefragEvent::OverCap,
        DefragEvent::Invalid,
        DefragEvent::EndOfCapture,
        DefragEvent::Overlap,
    ];

    /// What can become of a datagram (every event but `overlap`, which is by fragment).
    pub const FATES: [DefragEvent; 5] = [
        DefragEvent::Reassembled,
        DefragEvent::Timeout,
        DefragEvent::OverCap,
        DefragEvent::Invalid,
        DefragEvent::EndOfCapture,
    ];

    pub const fn label(self) -> &'static str {
        match self {
            DefragEvent::Reassembled => "reassembled",
            DefragEvent::Timeout => "timeout",
            DefragEvent::OverCap => "over_cap",
            DefragEvent::Invalid => "invalid",
            DefragEvent::EndOfCapture => "end_of_capture",
            DefragEvent::Overlap => "overlap",
        }
    }

    pub const fn index(self) -> usize {
        self as usize
    }
}

/// Counts by [`DefragEvent::index`].
pub type DefragCounts = [u64; DefragEvent::COUNT];

/// The fields that say which datagram a fragment belongs to (RFC 791, RFC 8200).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FragmentKey {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub id: u32,
    /// IPv4's protocol, or the next header of IPv6's Fragment header.
    pub protocol: u8,
}

/// One fragment: where its bytes go in the datagram's payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fragment<'a> {
    pub key: FragmentKey,
    /// Byte offset in the datagram's payload.
    pub offset: u32,
    /// More fragments follow (MF).
    pub more: bool,
    /// The captured bytes.
    pub bytes: &'a [u8],
    /// The fragment's length on the wire; more than `bytes.len()` when the snap length cut it.
    pub wire_len: u32,
}

/// A datagram made whole again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Datagram {
    pub key: FragmentKey,
    /// The payload bytes captured, up to the first one that was not.
    pub bytes: Vec<u8>,
    /// The payload's length on the wire.
    pub wire_len: u32,
    /// Fragments of it overlapped (the first copy was kept): an anomaly of the connection.
    pub overlapped: bool,
}

struct Pending {
    data: Vec<u8>,
    /// Wire ranges covered so far, sorted and disjoint.
    covered: Vec<(u32, u32)>,
    /// The end the last fragment (MF clear) set.
    end: Option<u32>,
    /// The first byte a cut fragment did not bring.
    hole: Option<u32>,
    /// Which entry of the expiry queue is this datagram's.
    generation: u64,
    overlapped: bool,
}

/// Datagrams in reassembly. One per engine, shared by the workers that decode (fragments of a
/// datagram may fall into pieces of the capture that different workers decode).
#[derive(Default)]
pub struct Defrag {
    limits: DefragLimits,
    pending: HashMap<FragmentKey, Pending>,
    /// First-fragment times in arrival order, for the timeout; entries of datagrams already
    /// finished are skipped by their generation.
    expiry: VecDeque<(Timestamp, FragmentKey, u64)>,
    bytes: usize,
    generation: u64,
    latest: Timestamp,
}

impl Defrag {
    pub fn new(limits: DefragLimits) -> Self {
        Defrag {
            limits,
            ..Defrag::default()
        }
    }

    /// Datagrams and bytes held now.
    pub fn in_flight(&self) -> (usize, usize) {
        (self.pending.len(), self.bytes)
    }

    /// Take one fragment seen at `ts`; the datagram it completes, if it does. What happened
    /// (to it, and to datagrams that timed out meanwhile) is added to `counts`.
    pub fn add(
        &mut self,
        ts: Timestamp,
        f: &Fragment<'_>,
        counts: &mut DefragCounts,
    ) -> Option<Datagram> {
        self.latest = self.latest.max(ts);
        self.expire(counts);
        let count = |counts: &mut DefragCounts, e: DefragEvent| counts[e.index()] += 1;

        let end = f.offset.saturating_add(f.wire_len);
        let misaligned = f.more && (f.wire_len == 0 || f.wire_len % 8 != 0);
        if end > MAX_DATAGRAM || misaligned {
            self.drop_datagram(&f.key);
            count(counts, DefragEvent::Invalid);
            return None;
        }
        if !self.pending.contains_key(&f.key) {
            if self.pending.len() >= self.limits.max_datagrams {
                count(counts, DefragEvent::OverCap);
                return None;
            }
            self.generation += 1;
            self.expiry.push_back((ts, f.key, self.generation));
            self.pending.insert(
                f.key,
                Pending {
                    data: Vec::new(),
                    covered: Vec::new(),
                    end: None,
                    hole: None,
                    generation: self.generation,
                    overlapped: false,
                },
            );
        }
        let p = self.pending.get_mut(&f.key)?;

        let past_end = |e: u32| end > e || (!f.more && end != e);
        let beyond = !f.more && p.covered.last().is_some_and(|&(_, e)| e > end);
        if p.end.is_some_and(past_end) || beyond {
            self.drop_datagram(&f.key);
            count(counts, DefragEvent::Invalid);
            return None;
        }
        let need = end as usize;
        let grow = need.saturating_sub(p.data.capacity());
        if self.bytes + grow > self.limits.max_bytes {
            self.drop_datagram(&f.key);
            count(counts, DefragEvent::OverCap);
            return None;
        }
        if p.data.len() < need {
            p.data.reserve_exact(need - p.data.len());
            p.data.resize(need, 0);
            self.bytes += grow;
        }

        // Only the bytes no earlier fragment covered are written: the first copy stays.
        let captured_end = f
            .offset
            .saturating_add(u32::try_from(f.bytes.len()).unwrap_or(u32::MAX))
            .min(end);
        let mut overlapped = false;
        let mut at = f.offset;
        for &(s, e) in p.covered.iter().chain(std::iter::once(&(end, end))) {
            if e <= at {
                continue;
            }
            if s >= end {
                write(&mut p.data, f, at, end.min(captured_end));
                break;
            }
            if s > at {
                write(&mut p.data, f, at, s.min(captured_end));
            }
            overlapped |= s < end && e > f.offset;
            at = at.max(e);
            if at >= end {
                break;
            }
        }
        if overlapped {
            count(counts, DefragEvent::Overlap);
            p.overlapped = true;
        }
        if captured_end < end {
            p.hole = Some(p.hole.map_or(captured_end, |h| h.min(captured_end)));
        }
        if !f.more {
            p.end = Some(end);
        }
        merge(&mut p.covered, (f.offset, end));
        if p.covered.len() > MAX_PIECES {
            self.drop_datagram(&f.key);
            count(counts, DefragEvent::OverCap);
            return None;
        }

        let whole = p.end.is_some_and(|e| p.covered == [(0, e)]);
        if !whole {
            return None;
        }
        let p = self.pending.remove(&f.key)?;
        self.bytes = self.bytes.saturating_sub(p.data.capacity());
        count(counts, DefragEvent::Reassembled);
        let wire_len = p.end.unwrap_or_default();
        let mut bytes = p.data;
        bytes.truncate(p.hole.unwrap_or(wire_len) as usize);
        Some(Datagram {
            key: f.key,
            bytes,
            wire_len,
            overlapped: p.overlapped,
        })
    }

    /// The input has ended: every datagram still incomplete is dropped, counted as
    /// `end_of_capture`.
    pub fn finish(&mut self, counts: &mut DefragCounts) {
        counts[DefragEvent::EndOfCapture.index()] += self.pending.len() as u64;
        self.pending.clear();
        self.expiry.clear();
        self.bytes = 0;
    }

    /// Give up on datagrams whose first fragment is older than the timeout.
    fn expire(&mut self, counts: &mut DefragCounts) {
        while let Some(&(first, key, generation)) = self.expiry.front() {
            if self.latest.since(first) <= self.limits.timeout {
                break;
            }
            self.expiry.pop_front();
            if self.pending.get(&key).map(|p| p.generation) == Some(generation) {
                self.drop_datagram(&key);
                counts[DefragEvent::Timeout.index()] += 1;
            }
        }
        // Entries of finished datagrams wait in the queue until their time; a queue much longer
        // than what is pending is compacted so that it stays bounded by the datagram cap.
        if self.expiry.len() > 2 * self.limits.max_datagrams.max(self.pending.len()) + 64 {
            let pending = &self.pending;
            self.expiry
                .retain(|(_, k, g)| pending.get(k).map(|p| p.generation) == Some(*g));
        }
    }

    fn drop_datagram(&mut self, key: &FragmentKey) {
        if let Some(p) = self.pending.remove(key) {
            self.bytes = self.bytes.saturating_sub(p.data.capacity());
        }
    }
}

/// Copy the fragment's captured bytes for datagram offsets `from..to`.
fn write(data: &mut [u8], f: &Fragment<'_>, from: u32, to: u32) {
    if to <= from {
        return;
    }
    let src = (from - f.offset) as usize..(to - f.offset) as usize;
    if let (Some(dst), Some(src)) = (data.get_mut(from as usize..to as usize), f.bytes.get(src)) {
        dst.copy_from_slice(src);
    }
}

/// Add `r` to sorted disjoint ranges, joining those it touches.
fn merge(ranges: &mut Vec<(u32, u32)>, r: (u32, u32)) {
    let (mut s, mut e) = r;
    ranges.retain(|&(a, b)| {
        let touches = a <= e && s <= b;
        if touches {
            s = s.min(a);
            e = e.max(b);
        }
        !touches
    });
    let at = ranges.partition_point(|&(a, _)| a < s);
    ranges.insert(at, (s, e));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: u32) -> FragmentKey {
        FragmentKey {
            src: "192.0.2.1".parse().unwrap(),
            dst: "192.0.2.2".parse().unwrap(),
            id,
            protocol: 6,
        }
    }

    fn frag(id: u32, offset: u32, more: bool, bytes: &[u8]) -> Fragment<'_> {
        Fragment {
            key: key(id),
            offset,
            more,
            bytes,
            wire_len: bytes.len() as u32,
        }
    }

    fn t(s: u64) -> Timestamp {
        Timestamp::from_secs(s)
    }

    #[test]
    fn in_order_and_reverse_give_the_same_datagram() {
        let payload: Vec<u8> = (0..40u8).collect();
        let parts = [
            frag(1, 0, true, &payload[..16]),
            frag(1, 16, true, &payload[16..32]),
            frag(1, 32, false, &payload[32..]),
        ];
        for order in [[0, 1, 2], [2, 1, 0], [1, 2, 0]] {
            let mut d = Defrag::new(DefragLimits::default());
            let mut c = DefragCounts::default();
            let mut out = None;
            for i in order {
                assert!(out.is_none());
                out = d.add(t(1), &parts[i], &mut c);
            }
            let out = out.expect("complete");
            assert_eq!(out.bytes, payload);
            assert_eq!(out.wire_len, 40);
            assert_eq!(c, [1, 0, 0, 0, 0, 0]);
            assert!(!out.overlapped);
            assert_eq!(d.in_flight(), (0, 0));
        }
    }

    #[test]
    fn overlap_keeps_the_first_copy_and_is_counted() {
        let mut d = Defrag::new(DefragLimits::default());
        let mut c = DefragCounts::default();
        assert!(d
            .add(t(1), &frag(1, 0, true, &[b'a'; 16]), &mut c)
            .is_none());
        // Covers 8..24 again with other bytes, then the end.
        assert!(d
            .add(t(1), &frag(1, 8, true, &[b'b'; 16]), &mut c)
            .is_none());
        let out = d.add(t(1), &frag(1, 24, false, b"end"), &mut c).unwrap();
        let mut want = vec![b'a'; 16];
        want.extend([b'b'; 8]);
        want.extend(b"end");
        assert_eq!(out.bytes, want);
        assert_eq!(c[DefragEvent::Overlap.index()], 1);
        assert_eq!(c[DefragEvent::Reassembled.index()], 1);
        assert!(out.overlapped);
    }

    #[test]
    fn a_fragment_inside_a_gap_between_two_others_fills_only_the_gap() {
        let mut d = Defrag::new(DefragLimits::default());
        let mut c = DefragCounts::default();
        d.add(t(1), &frag(1, 0, true, &[1; 8]), &mut c);
        d.add(t(1), &frag(1, 16, false, &[3; 8]), &mut c);
        let out = d.add(t(1), &frag(1, 0, true, &[9; 24]), &mut c);
        // The third copy brings 0..24 with MF set although the end is 24: consistent.
        let out = out.expect("complete");
        assert_eq!(out.bytes, [[1u8; 8], [9; 8], [3; 8]].concat());
        assert_eq!(c[DefragEvent::Overlap.index()], 1);
    }

    #[test]
    fn contradictions_are_invalid_and_drop_the_datagram() {
        let mut d = Defrag::new(DefragLimits::default());
        let mut c = DefragCounts::default();
        d.add(t(1), &frag(1, 0, true, &[0; 8]), &mut c);
        assert!(d.add(t(1), &frag(1, 8, false, &[0; 8]), &mut c).is_some());
        // An end at 16, then a middle fragment past it.
        d.add(t(1), &frag(2, 8, false, &[0; 8]), &mut c);
        assert!(d.add(t(1), &frag(2, 16, true, &[0; 8]), &mut c).is_none());
        assert_eq!(d.in_flight(), (0, 0));
        assert!(d.add(t(1), &frag(3, 0, true, &[0; 7]), &mut c).is_none());
        assert!(d
            .add(t(1), &frag(4, 65_528, false, &[0; 16]), &mut c)
            .is_none());
        assert_eq!(c[DefragEvent::Invalid.index()], 3);
        assert_eq!(c[DefragEvent::Reassembled.index()], 1);
    }

    #[test]
    fn timeout_in_packet_time_drops_and_counts() {
        let mut d = Defrag::new(DefragLimits::default());
        let mut c = DefragCounts::default();
        d.add(t(100), &frag(1, 0, true, &[0; 8]), &mut c);
        d.add(t(160), &frag(2, 0, true, &[0; 8]), &mut c);
        assert_eq!(d.in_flight().0, 2);
        d.add(t(161), &frag(3, 0, true, &[0; 8]), &mut c);
        assert_eq!(d.in_flight().0, 2);
        assert_eq!(c[DefragEvent::Timeout.index()], 1);
        // The late end of datagram 1 starts a new one instead of completing it.
        assert!(d.add(t(161), &frag(1, 8, false, &[0; 8]), &mut c).is_none());
    }

    #[test]
    fn caps_bound_datagrams_and_bytes() {
        let limits = DefragLimits {
            max_datagrams: 10,
            max_bytes: 64 * 1024,
            timeout: Duration::from_secs(60),
        };
        let mut d = Defrag::new(limits);
        let mut c = DefragCounts::default();
        for id in 0..1000 {
            d.add(t(1), &frag(id, 0, true, &[0; 8]), &mut c);
        }
        assert_eq!(d.in_flight().0, 10);
        assert_eq!(c[DefragEvent::OverCap.index()], 990);
        let mut d = Defrag::new(DefragLimits {
            max_datagrams: 1000,
            ..d.limits.clone()
        });
        let mut c = DefragCounts::default();
        for id in 0..1000 {
            d.add(t(1), &frag(id, 30_000, true, &[0; 8]), &mut c);
        }
        assert!(d.in_flight().1 <= 64 * 1024, "{:?}", d.in_flight());
        assert_eq!(d.in_flight().0, 2);
    }

    #[test]
    fn sparse_tiny_fragments_are_given_up() {
        let mut d = Defrag::new(DefragLimits::default());
        let mut c = DefragCounts::default();
        for i in 0..=MAX_PIECES as u32 {
            d.add(t(1), &frag(1, i * 16, true, &[0; 8]), &mut c);
        }
        assert_eq!(d.in_flight(), (0, 0));
        assert_eq!(c[DefragEvent::OverCap.index()], 1);
    }

    #[test]
    fn a_cut_fragment_leaves_the_datagram_short_of_its_wire_length() {
        let mut d = Defrag::new(DefragLimits::default());
        let mut c = DefragCounts::default();
        let mut cut = frag(1, 0, true, &[7; 10]);
        cut.wire_len = 16;
        d.add(t(1), &cut, &mut c);
        let out = d.add(t(1), &frag(1, 16, false, b"tail"), &mut c).unwrap();
        assert_eq!(out.bytes, [7; 10]);
        assert_eq!(out.wire_len, 20);
    }

    #[test]
    fn what_is_incomplete_at_the_end_is_counted_and_freed() {
        let mut d = Defrag::new(DefragLimits::default());
        let mut c = DefragCounts::default();
        d.add(t(1), &frag(1, 0, true, &[0; 8]), &mut c);
        d.add(t(1), &frag(2, 8, false, &[0; 8]), &mut c);
        d.finish(&mut c);
        assert_eq!(d.in_flight(), (0, 0));
        assert_eq!(c[DefragEvent::EndOfCapture.index()], 2);
    }

    #[test]
    fn finished_datagrams_leave_the_expiry_queue_bounded() {
        let mut d = Defrag::new(DefragLimits {
            max_datagrams: 4,
            ..DefragLimits::default()
        });
        let mut c = DefragCounts::default();
        for id in 0..10_000 {
            d.add(t(1), &frag(id, 0, false, &[0; 8]), &mut c);
        }
        assert!(d.expiry.len() <= 2 * 4 + 64 + 1, "{}", d.expiry.len());
        assert_eq!(c[DefragEvent::Reassembled.index()], 10_000);
    }
}
