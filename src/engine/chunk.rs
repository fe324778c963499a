//! A run of captured frames in one block of bytes, shared (read-only, behind an `Arc`) by
//! every worker: a piece of a split file read straight into it, or frames copied in from
//! another source's buffer (one `memcpy` each, while the buffer is still in the core's cache).
//! A chunk is allocated once at its full size and reused, so filling it allocates nothing.

use crate::decode::MAX_FRAME;
use crate::source::file::BATCH;
use crate::source::split::{FRONT, PIECE};
use crate::source::{Frame, Packet, TimeSpan, Timestamp};

/// Bytes after which a chunk of copied frames is sent: with room for one more frame of the
/// largest size, as much as a piece of a split file and the room before it.
const CHUNK_BYTES: usize = FRONT + PIECE - MAX_FRAME;
/// Frames after which a chunk is sent (small frames fill it before the bytes do).
const CHUNK_FRAMES: usize = 1024;

/// Aligned to two cache lines (the unit the CPU prefetches in pairs): the reader fills one
/// chunk while workers read others, and chunks small enough to share a line would make each of
/// the reader's writes evict it from the workers' caches.
#[derive(Clone, Debug)]
#[repr(align(128))]
pub(super) struct Chunk {
    /// Its full size from the start, never grown or zeroed again.
    bytes: Vec<u8>,
    /// Where the next pushed frame goes.
    fill: usize,
    frames: Vec<Frame>,
    /// Packet time reached by the reader when the chunk was sent: workers expire idle flows up
    /// to it even when none of the chunk's packets is theirs.
    pub(super) now: Timestamp,
    /// Its place among the chunks of the replay (set when it is sealed): the order in which
    /// workers hand their fragments to the shared defragmenter.
    pub(super) number: usize,
}

impl Chunk {
    pub(super) fn new() -> Self {
        Chunk {
            // A piece of a split file and the room for the block cut before it; or copied
            // frames up to `CHUNK_BYTES` and one more of the largest size. Zeroed memory fresh
            // from the allocator is not touched until written: the room before a piece costs
            // only the pages a cut block is copied into.
            bytes: vec![0; FRONT + PIECE],
            fill: 0,
            // A batch of the file reader may start just below the limit. A piece of small
            // packets holds more (up to 4,000 or so); the list grows to it once and keeps it.
            frames: Vec::with_capacity(CHUNK_FRAMES + BATCH),
            now: Timestamp::ZERO,
            number: 0,
        }
    }

    /// Copy `p` in: at most [`MAX_FRAME`] bytes of it, all that decoding reads. A chunk takes
    /// no more once full (a whole batch of the file reader, at most, when it was not), so this
    /// never grows it.
    pub(super) fn push(&mut self, p: &Packet<'_>) {
        let data = p.data.get(..MAX_FRAME).unwrap_or(p.data);
        let start = self.fill;
        let end = start + data.len();
        if let Some(to) = self.bytes.get_mut(start..end) {
            to.copy_from_slice(data);
        }
        self.fill = end;
        self.frames.push(Frame {
            ts: p.ts,
            link: p.link,
            start,
            len: data.len(),
            wire_len: p.wire_len,
        });
    }

    /// Captured bytes that may still be pushed before the chunk is full.
    pub(super) fn room(&self) -> usize {
        CHUNK_BYTES.saturating_sub(self.fill)
    }

    pub(super) fn is_full(&self) -> bool {
        self.fill >= CHUNK_BYTES || self.frames.len() >= CHUNK_FRAMES
    }

    pub(super) fn clear(&mut self) {
        self.fill = 0;
        self.frames.clear();
    }

    /// The whole buffer, to read a piece of a split file into (see `source::split`), and the
    /// frames, to frame it into. Not with [`push`](Self::push) in the same chunk.
    pub(super) fn piece(&mut self) -> (&mut [u8], &mut Vec<Frame>) {
        (&mut self.bytes, &mut self.frames)
    }

    /// The latest time of its frames.
    pub(super) fn latest(&self) -> Timestamp {
        self.frames.iter().map(|f| f.ts).max().unwrap_or_default()
    }

    /// The earliest and latest time of its frames.
    pub(super) fn span(&self) -> Option<TimeSpan> {
        TimeSpan::of(self.frames.iter().map(|f| f.ts))
    }

    pub(super) fn len(&self) -> usize {
        self.frames.len()
    }

    /// Frames the capture holds less of than the wire carried (the snap length cut them).
    pub(super) fn cut(&self) -> u64 {
        self.frames
            .iter()
            .filter(|f| u64::try_from(f.len).unwrap_or(u64::MAX) < u64::from(f.wire_len))
            .count() as u64
    }

    /// The frames, in the order they were pushed.
    pub(super) fn packets(&self) -> impl Iterator<Item = Packet<'_>> {
        self.frames.iter().map(|f| Packet {
            ts: f.ts,
            link: f.link,
            data: self.bytes(f.start, f.len),
            wire_len: f.wire_len,
        })
    }

    /// Where `part` (a slice of one of this chunk's frames) starts in the chunk's bytes, so that
    /// it can be found again from the chunk alone.
    pub(super) fn offset_of(&self, part: &[u8]) -> Option<usize> {
        let start = (part.as_ptr() as usize).checked_sub(self.bytes.as_ptr() as usize)?;
        (start.checked_add(part.len())? <= self.bytes.len()).then_some(start)
    }

    /// `len` bytes at `start`, as [`offset_of`](Self::offset_of) found them.
    pub(super) fn bytes(&self, start: usize, len: usize) -> &[u8] {
        start
            .checked_add(len)
            .and_then(|end| self.bytes.get(start..end))
            .unwrap_or_default()
    }

    #[cfg(test)]
    fn capacity(&self) -> (usize, usize) {
        (self.bytes.capacity(), self.frames.capacity())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::source::Linktype;

    fn packet(data: &[u8], wire_len: u32) -> Packet<'_> {
        Packet {
            ts: Timestamp::from_secs(7),
            link: Linktype::ETHERNET,
            data,
            wire_len,
        }
    }

    #[test]
    fn frames_come_back_as_pushed() {
        let mut c = Chunk::new();
        c.push(&packet(b"first", 5));
        c.push(&packet(b"", 60));
        c.push(&packet(b"third frame", 1500));
        let back: Vec<(Vec<u8>, u32)> =
            c.packets().map(|p| (p.data.to_vec(), p.wire_len)).collect();
        assert_eq!(
            back,
            [
                (b"first".to_vec(), 5),
                (Vec::new(), 60),
                (b"third frame".to_vec(), 1500)
            ]
        );
        assert!(c.packets().all(|p| p.ts == Timestamp::from_secs(7)));
        c.clear();
        assert_eq!(c.packets().count(), 0);
    }

    #[test]
    fn filling_to_full_never_grows_it() {
        let mut c = Chunk::new();
        let before = c.capacity();
        let big = vec![0xab; MAX_FRAME + 1000];
        let mut pushed = 0;
        while !c.is_full() {
            c.push(&packet(&big, 70_000));
            pushed += 1;
        }
        assert_eq!(c.capacity(), before);
        // Each frame is cut to what decoding reads.
        assert_eq!(pushed, 1);
        assert_eq!(c.packets().next().map(|p| p.data.len()), Some(MAX_FRAME));

        let mut c = Chunk::new();
        let small = [1u8; 60];
        while !c.is_full() {
            c.push(&packet(&small, 60));
        }
        assert_eq!(c.packets().count(), CHUNK_FRAMES);
        assert_eq!(c.capacity(), before);
    }
}
