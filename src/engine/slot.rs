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
    /// The buffer is the side one, of payloads reassembled from IP fragments (the ring's
    /// parts: their frames' bytes are in the chunk, but a reassembled payload is in no frame).
    side: bool,
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
            side: false,
        }
    }

    /// `seg` at packet time `ts`, its payload at `start` of the side buffer.
    pub(super) fn in_side(ts: Timestamp, seg: &Segment<'_>, start: usize) -> Self {
        Slot {
            side: true,
            ..Slot::new(ts, seg, start)
        }
    }

    /// Whether the payload is in the side buffer.
    pub(super) fn is_side(&self) -> bool {
        self.side
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
