//! Packet sources: where packets come from, and the small value each one yields.
//!
//! A source hands out borrowed [`Packet`]s one at a time; nothing downstream keeps them, so a
//! source can reuse its buffer for every packet. A file is read to its end; a live source
//! ([`LiveSource`]) runs until it is stopped, and says when a read timed out so that its
//! caller can let time pass on a quiet link.

pub mod compressed;
pub mod file;
pub mod filter;
#[cfg(feature = "live")]
pub mod live;
pub mod split;
#[cfg(test)]
mod testdata;
pub mod walk;

pub use pcap_parser::Linktype;

use std::fmt;
use std::time::{Duration, UNIX_EPOCH};

/// Packet time: nanoseconds since the Unix epoch, as the capture recorded it.
///
/// All timeouts run on this clock, never on the wall clock, so a replay is deterministic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(u64);

impl Timestamp {
    pub const ZERO: Timestamp = Timestamp(0);

    pub const fn from_nanos(nanos: u64) -> Self {
        Timestamp(nanos)
    }

    pub const fn from_secs(secs: u64) -> Self {
        Timestamp(secs.saturating_mul(1_000_000_000))
    }

    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// `self + d`, saturating at the end of time.
    pub fn saturating_add(self, d: Duration) -> Self {
        let d = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        Timestamp(self.0.saturating_add(d))
    }

    /// How long after `earlier` this is; zero if it is not later.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

/// RFC 3339, UTC, microseconds: `2026-11-28T20:00:00.123456Z`.
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = UNIX_EPOCH + Duration::from_nanos(self.0);
        write!(f, "{}", humantime::format_rfc3339_micros(t))
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The packet time of the earliest and the latest of some packets (a file, a chunk): the
/// earliest is not always the first read, since captures merged from several interfaces need
/// not be in time order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TimeSpan {
    pub first: Timestamp,
    pub last: Timestamp,
}

impl TimeSpan {
    pub const fn at(ts: Timestamp) -> Self {
        TimeSpan {
            first: ts,
            last: ts,
        }
    }

    /// The span of `times`, `None` when there are none.
    pub fn of(times: impl IntoIterator<Item = Timestamp>) -> Option<Self> {
        times
            .into_iter()
            .fold(None, |span, ts| Self::join(span, Some(Self::at(ts))))
    }

    /// The span covering both (either may be empty).
    pub fn join(a: Option<Self>, b: Option<Self>) -> Option<Self> {
        match (a, b) {
            (Some(a), Some(b)) => Some(TimeSpan {
                first: a.first.min(b.first),
                last: a.last.max(b.last),
            }),
            (a, None) => a,
            (None, b) => b,
        }
    }

    pub fn duration(self) -> Duration {
        self.last.since(self.first)
    }
}

/// One captured frame, borrowed from its source until the next one is read.
#[derive(Clone, Copy, Debug)]
pub struct Packet<'a> {
    pub ts: Timestamp,
    pub link: Linktype,
    /// The captured bytes (at most the snap length).
    pub data: &'a [u8],
    /// The frame's length on the wire; more than `data.len()` when the snap length cut it.
    pub wire_len: u32,
}

/// A captured frame inside a buffer it does not borrow: its bytes are `start..start + len`
/// of that buffer.
#[derive(Clone, Copy, Debug)]
pub struct Frame {
    pub ts: Timestamp,
    pub link: Linktype,
    pub start: usize,
    pub len: usize,
    pub wire_len: u32,
}

/// A capture that runs until stopped (`live.rs` through libpcap; fakes in tests).
pub trait LiveSource {
    type Error: std::error::Error;

    /// The next packet, or `None` when the read timeout passed without one.
    fn next_packet(&mut self) -> Result<Option<Packet<'_>>, Self::Error>;

    /// What the capture counted since it started (cumulative).
    fn stats(&mut self) -> Result<CaptureStats, Self::Error>;
}

/// libpcap's counters, cumulative since the capture started. 32 bits wide, as libpcap keeps
/// them: they wrap on a long, busy run, so differences are taken modulo 2^32.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CaptureStats {
    /// Packets that passed the filter (on Linux: including those dropped later).
    pub received: u32,
    /// Dropped by the kernel: its capture buffer was full.
    pub dropped: u32,
    /// Dropped by the interface or its driver (on Linux: the interface's own counter, all
    /// traffic, since the capture started).
    pub if_dropped: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_prints_rfc3339_micros() {
        let ts = Timestamp::from_nanos(1_795_896_000_123_456_789);
        assert_eq!(ts.to_string(), "2026-11-28T20:00:00.123456Z");
    }

    #[test]
    fn since_never_goes_negative() {
        let a = Timestamp::from_secs(10);
        let b = Timestamp::from_secs(12);
        assert_eq!(b.since(a), Duration::from_secs(2));
        assert_eq!(a.since(b), Duration::ZERO);
    }
}
