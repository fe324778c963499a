//! Sequence space as a type: 32-bit TCP sequence numbers → 64-bit stream offsets.
//!
//! A direction's stream starts at offset 0, which is the sequence number after the SYN (ISN+1),
//! or the first sequence number seen when the flow was picked up mid-stream. A 32-bit number
//! names infinitely many 64-bit offsets (one per trip around 2^32); [`SeqSpace`] picks the one
//! nearest to the last offset it was told about, so a stream may wrap any number of times as
//! long as no segment lies more than 2^31 bytes from where the stream is.
//!
//! Nothing here panics: comparisons use wrapping arithmetic, subtraction returns `Option`.

use std::fmt;

/// One 32-bit TCP sequence (or acknowledgment) number.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SeqNumber(pub u32);

impl SeqNumber {
    /// `self + n`, modulo 2^32.
    pub const fn wrapping_add(self, n: u32) -> SeqNumber {
        SeqNumber(self.0.wrapping_add(n))
    }

    /// The signed distance from `other` to `self` (RFC 9293 §3.4 comparison): positive when
    /// `self` comes after `other`, within ±2^31.
    pub const fn distance_from(self, other: SeqNumber) -> i32 {
        // Reinterpreting the wrapped difference as signed is the point of the comparison.
        self.0.wrapping_sub(other.0) as i32
    }

    /// `self` comes strictly before `other` in sequence space.
    pub const fn is_before(self, other: SeqNumber) -> bool {
        self.distance_from(other) < 0
    }

    /// `self` comes strictly after `other` in sequence space.
    pub const fn is_after(self, other: SeqNumber) -> bool {
        self.distance_from(other) > 0
    }

    /// How many sequence numbers `self` lies after `other`; `None` if it lies before.
    pub const fn checked_sub(self, other: SeqNumber) -> Option<u32> {
        let d = self.distance_from(other);
        if d < 0 {
            None
        } else {
            Some(d.unsigned_abs())
        }
    }
}

impl fmt::Debug for SeqNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "seq {}", self.0)
    }
}

/// The map from one direction's sequence numbers to 64-bit offsets into its byte stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeqSpace {
    /// The sequence number of offset 0.
    base: SeqNumber,
    /// The offset the stream is at; a sequence number maps to the offset nearest to it.
    last: u64,
}

impl SeqSpace {
    /// A stream whose offset 0 is `base` (ISN+1, or the first sequence number seen).
    pub const fn new(base: SeqNumber) -> SeqSpace {
        SeqSpace { base, last: 0 }
    }

    pub const fn base(&self) -> SeqNumber {
        self.base
    }

    /// The reference offset (where the stream is).
    pub const fn last(&self) -> u64 {
        self.last
    }

    /// Move the reference offset (the stream progressed, or was bypassed up to here).
    pub fn set_last(&mut self, offset: u64) {
        self.last = offset;
    }

    /// The sequence number at `offset`.
    pub const fn seq_at(&self, offset: u64) -> SeqNumber {
        // Offsets are taken modulo 2^32 by design: this is the inverse of `offset`.
        self.base.wrapping_add(offset as u32)
    }

    /// The signed distance from the reference offset to `seq`, in bytes (within ±2^31).
    pub const fn delta(&self, seq: SeqNumber) -> i64 {
        seq.distance_from(self.seq_at(self.last)) as i64
    }

    /// The offset of `seq`: the one nearest to the reference offset. `None` if that lies
    /// before the start of the stream (offset 0).
    pub fn offset(&self, seq: SeqNumber) -> Option<u64> {
        self.last.checked_add_signed(self.delta(seq))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An ISN 10,000 below the 2^32 wrap.
    const ISN_NEAR_WRAP: u32 = u32::MAX - 9_999;

    #[test]
    fn comparisons_wrap() {
        let a = SeqNumber(u32::MAX - 5);
        let b = a.wrapping_add(10);
        assert_eq!(b, SeqNumber(4));
        assert!(a.is_before(b));
        assert!(b.is_after(a));
        assert_eq!(b.distance_from(a), 10);
        assert_eq!(a.distance_from(b), -10);
        assert_eq!(b.checked_sub(a), Some(10));
        assert_eq!(a.checked_sub(b), None);
        assert_eq!(a.checked_sub(a), Some(0));
    }

    #[test]
    fn offsets_cross_the_wrap() {
        let isn = SeqNumber(ISN_NEAR_WRAP);
        let space = SeqSpace::new(isn.wrapping_add(1));
        assert_eq!(space.offset(isn.wrapping_add(1)), Some(0));
        assert_eq!(space.offset(SeqNumber(u32::MAX)), Some(9_998));
        assert_eq!(space.offset(SeqNumber(0)), Some(9_999));
        assert_eq!(space.offset(SeqNumber(5_000)), Some(14_999));
        assert_eq!(space.seq_at(9_999), SeqNumber(0));
        // Before the base: no offset, but a signed delta.
        assert_eq!(space.offset(isn), None);
        assert_eq!(space.delta(isn), -1);
    }

    #[test]
    fn repeated_wraps_follow_the_reference() {
        let mut space = SeqSpace::new(SeqNumber(ISN_NEAR_WRAP));
        let four_gib = 1u64 << 32;
        // Walk the stream forward 1 GiB at a time for three trips around 2^32.
        let mut off = 0u64;
        while off < 3 * four_gib {
            off += 1 << 30;
            let seq = space.seq_at(off);
            assert_eq!(space.offset(seq), Some(off));
            space.set_last(off);
        }
        // Just behind and just ahead of the reference, after three wraps.
        let here = space.seq_at(off);
        assert_eq!(space.offset(here.wrapping_add(100)), Some(off + 100));
        assert_eq!(
            space.offset(SeqNumber(here.0.wrapping_sub(100))),
            Some(off - 100)
        );
    }

    #[test]
    fn the_nearest_offset_is_within_half_the_space() {
        let mut space = SeqSpace::new(SeqNumber(0));
        space.set_last(1 << 32);
        // 2^31 - 1 ahead is ahead; 2^31 ahead reads as 2^31 behind.
        assert_eq!(
            space.offset(SeqNumber(i32::MAX as u32)),
            Some((1 << 32) + i32::MAX as u64)
        );
        assert_eq!(
            space.offset(SeqNumber(1 << 31)),
            Some((1 << 32) - (1 << 31))
        );
    }

    proptest! {
        #[test]
        fn offset_inverts_seq_at(base in any::<u32>(), last in 0u64..(1 << 40), d in -(1i64 << 31) + 1..(1i64 << 31)) {
            let mut space = SeqSpace::new(SeqNumber(base));
            space.set_last(last);
            let Some(target) = last.checked_add_signed(d) else { return Ok(()) };
            prop_assert_eq!(space.offset(space.seq_at(target)), Some(target));
        }
    }
}
