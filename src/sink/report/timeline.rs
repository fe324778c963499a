//! Sessions over capture time, by encryption: the report's timeline.
//!
//! The span of a capture is not known in advance (a replay of one minute, a capture of a
//! month), so the buckets widen as it grows: each is a power-of-two number of seconds wide,
//! aligned to the Unix epoch, and when more than [`MAX_BUCKETS`] would be needed, the width
//! doubles and neighbours merge. With epoch-aligned power-of-two widths a merge is exact, and
//! the width reached depends only on the times seen, not on the order the workers finish
//! sessions in, so every replay of a capture gives the same timeline.

use crate::record::Encryption;
use crate::source::Timestamp;
use serde::Serialize;
use std::collections::BTreeMap;

/// At most this many buckets from the first to the last (the picture stays readable, the
/// report small).
pub const MAX_BUCKETS: u64 = 120;

#[derive(Clone, Debug, Serialize)]
pub struct Timeline {
    /// Width of every bucket.
    pub bucket_seconds: u64,
    /// One entry per bucket that saw a session start, in time order.
    pub buckets: Vec<Bucket>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Bucket {
    /// The bucket's start (sessions starting in `[start, start + bucket_seconds)`).
    pub start: Timestamp,
    /// Sessions by encryption outcome (every outcome listed, zeros included).
    pub sessions: BTreeMap<&'static str, u64>,
}

/// The timeline as it grows: counts by bucket number (seconds since the epoch / width).
#[derive(Clone, Debug)]
pub struct TimelineCounter {
    width: u64,
    counts: BTreeMap<u64, [u64; Encryption::ALL.len()]>,
}

impl Default for TimelineCounter {
    fn default() -> Self {
        TimelineCounter {
            width: 1,
            counts: BTreeMap::new(),
        }
    }
}

impl TimelineCounter {
    /// One session that started at `at`.
    pub fn add(&mut self, at: Timestamp, encryption: Encryption) {
        let secs = at.as_nanos() / 1_000_000_000;
        while self.span_with(secs / self.width) > MAX_BUCKETS {
            self.widen();
        }
        let i = Encryption::ALL
            .iter()
            .position(|e| *e == encryption)
            .unwrap_or(Encryption::ALL.len() - 1);
        let cell = self.counts.entry(secs / self.width).or_default();
        if let Some(n) = cell.get_mut(i) {
            *n += 1;
        }
    }

    /// Buckets from the first to the last if `bucket` were added.
    fn span_with(&self, bucket: u64) -> u64 {
        let first = self
            .counts
            .keys()
            .next()
            .map_or(bucket, |k| (*k).min(bucket));
        let last = self
            .counts
            .keys()
            .next_back()
            .map_or(bucket, |k| (*k).max(bucket));
        last - first + 1
    }

    /// Twice as wide: buckets 2k and 2k+1 become bucket k.
    fn widen(&mut self) {
        let mut merged: BTreeMap<u64, [u64; Encryption::ALL.len()]> = BTreeMap::new();
        for (k, counts) in std::mem::take(&mut self.counts) {
            let cell = merged.entry(k / 2).or_default();
            for (a, b) in cell.iter_mut().zip(counts) {
                *a += b;
            }
        }
        self.counts = merged;
        self.width = self.width.saturating_mul(2);
    }

    pub fn timeline(&self) -> Timeline {
        Timeline {
            bucket_seconds: self.width,
            buckets: self
                .counts
                .iter()
                .map(|(k, counts)| Bucket {
                    start: Timestamp::from_secs(k.saturating_mul(self.width)),
                    sessions: Encryption::ALL
                        .iter()
                        .zip(counts)
                        .map(|(e, n)| (e.label(), *n))
                        .collect(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn total(t: &Timeline) -> u64 {
        t.buckets.iter().flat_map(|b| b.sessions.values()).sum()
    }

    #[test]
    fn a_short_capture_has_one_second_buckets() {
        let mut c = TimelineCounter::default();
        c.add(Timestamp::from_secs(1_000), Encryption::Plaintext);
        c.add(Timestamp::from_secs(1_002), Encryption::Starttls);
        c.add(
            Timestamp::from_nanos(1_002_900_000_000),
            Encryption::Starttls,
        );
        let t = c.timeline();
        assert_eq!(t.bucket_seconds, 1);
        assert_eq!(t.buckets.len(), 2);
        assert_eq!(t.buckets[0].start, Timestamp::from_secs(1_000));
        assert_eq!(t.buckets[1].sessions["starttls"], 2);
        assert_eq!(t.buckets[1].sessions["plaintext"], 0);
    }

    #[test]
    fn a_long_capture_widens_and_keeps_every_session() {
        let mut c = TimelineCounter::default();
        // A day, one session a minute.
        for m in 0..1440u64 {
            c.add(
                Timestamp::from_secs(86_400 * 100 + m * 60),
                Encryption::ImplicitTls,
            );
        }
        let t = c.timeline();
        assert!(t.buckets.len() as u64 <= MAX_BUCKETS, "{}", t.buckets.len());
        // 86,400 s / 120 = 720 s: the first power of two above is 1024.
        assert_eq!(t.bucket_seconds, 1024);
        assert_eq!(total(&t), 1440);
    }

    #[test]
    fn the_order_of_sessions_does_not_change_the_timeline() {
        let times: Vec<u64> = (0..500).map(|i| (i * 7919) % 10_000).collect();
        let mut forward = TimelineCounter::default();
        let mut backward = TimelineCounter::default();
        for t in &times {
            forward.add(Timestamp::from_secs(*t), Encryption::Plaintext);
        }
        for t in times.iter().rev() {
            backward.add(Timestamp::from_secs(*t), Encryption::Plaintext);
        }
        let (f, b) = (forward.timeline(), backward.timeline());
        assert_eq!(f.bucket_seconds, b.bucket_seconds);
        assert_eq!(f.buckets, b.buckets);
        assert_eq!(total(&f), 500);
    }
}
