//! A decoded segment handed to a worker without its payload bytes, which stay (or are copied
//! once) in a buffer the worker shares: the segment keeps the offset instead of the borrow.

use crate::decode::Segment;
use crate::source::Timestamp;

#[derive(Clone, Copy)]
pub(super) struct Slot {
    pub(super) ts: Timestamp,
    /// The segment with an empty payload.
    seg: Segment<'static>,
    /// Its payload is `start..start + len` of the buffer.
    start: usize,
    len: usize,
}

impl Slot {
    /// `seg` at packet time `ts`, its payload at `start` of the buffer.
    pub(super) fn new(ts: Timestamp, seg: &Segment<'_>, start: usize) -> Self {
        Slot {
            ts,
            seg: Segment {
                payload: &[],
                ..*seg
            },
            start,
            len: seg.payload.len(),
        }
    }

    /// Where the payload is in the buffer: start and length.
    pub(super) fn range(&self) -> (usize, usize) {
        (self.start, self.len)
    }

    /// The segment again, with its payload (`range` of the buffer).
    pub(super) fn segment<'a>(&self, payload: &'a [u8]) -> Segment<'a> {
        Segment {
            payload,
            ..self.seg
        }
    }
}
