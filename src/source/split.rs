//! Capture files read in fixed-size pieces, by several threads at once.
//!
//! A piece is a byte range of the file, read with `pread` straight into the buffer it will be
//! decoded from: pieces are read in parallel and nothing copies them. Only finding where the
//! blocks start is sequential: [`Framing`] walks the block headers of one piece after another
//! (classic pcap records, or pcapng blocks, whose section and interface blocks it follows),
//! carrying the block that a piece boundary cut into the room left before the next piece.
//! Walking headers in a piece that is in the core's cache costs a few nanoseconds per block.
//!
//! Anything out of the ordinary stops the split reading at the exact byte where it happened,
//! and a [`CaptureFile`] reads on from there, given the file header (classic pcap) or the
//! current section's header and interface blocks (pcapng) first: a bad or cut block, a block
//! larger than the room before a piece, a read error, a file that changed size. So every
//! error is reported by the one reader that reports errors, with its offset, and every packet
//! before it is kept. The "modified" pcap format, and inputs that are not regular files, are
//! not split at all.

use super::file::Input;
use super::file::{
    accept, legacy_header, packet_block, word_at, CaptureFile, Clock, LegacyFormat, SourceError,
    NG_BLOCK_MIN, NG_SECTION_HEADER,
};
use super::Frame;
use pcap_parser::pcapng::{parse_block_be, parse_block_le, Block};
use pcap_parser::PcapBlockOwned;
use std::fs::File;
use std::io::{Cursor, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;

/// Bytes in a piece: a few hundred packets, small enough to stay in a core's cache from the
/// read to the decode.
pub const PIECE: usize = 256 * 1024;
/// Room before each piece for the block cut at the end of the one before: a packet of 64 KiB
/// and its header (any IP packet, offload's merged frames included). A larger block makes the
/// whole-file reader take over. Kept small, as every chunk has it: 256 KiB here took 10 MiB
/// more memory with 2 workers, for no speed.
pub const FRONT: usize = 64 * 1024 + 16;
const LEGACY_HEADER: usize = 24;
/// The byte-order magic of a pcapng section header, as written big-endian.
const NG_BYTE_ORDER_BE: [u8; 4] = [0x1a, 0x2b, 0x3c, 0x4d];
const NG_BYTE_ORDER_LE: [u8; 4] = [0x4d, 0x3c, 0x2b, 0x1a];

/// A capture file open for split reading.
pub struct SplitPcap {
    name: String,
    file: File,
    size: u64,
    /// Where the first piece starts: after a classic pcap's file header, or at 0 (pcapng).
    first: u64,
    /// The clock, and the bytes that set it (the file header), at `first`.
    clock: Clock,
    prefix: Vec<u8>,
}

impl SplitPcap {
    /// `input` when it is a regular file of at least one piece holding a classic pcap (either
    /// byte order, microseconds or nanoseconds) or a pcapng; otherwise `None`, and it is read
    /// whole by a [`CaptureFile`].
    pub fn open(input: &Input) -> Option<SplitPcap> {
        let Input::Path(path) = input else {
            return None;
        };
        let mut file = File::open(path).ok()?;
        let meta = file.metadata().ok()?;
        if !meta.is_file() || meta.len() < (LEGACY_HEADER + PIECE) as u64 {
            return None;
        }
        let mut header = [0u8; LEGACY_HEADER];
        file.read_exact(&mut header).ok()?;
        let (first, clock, prefix) = if header.get(..4) == Some(&NG_SECTION_HEADER[..]) {
            // The section header is the first block of the first piece.
            (0, Clock::Unknown, Vec::new())
        } else {
            let clock = legacy_header(&header)?;
            (LEGACY_HEADER as u64, clock, header.to_vec())
        };
        Some(SplitPcap {
            name: input.name(),
            file,
            size: meta.len(),
            first,
            clock,
            prefix,
        })
    }

    /// How many pieces the file has.
    pub fn pieces(&self) -> u64 {
        (self.size - self.first).div_ceil(PIECE as u64)
    }

    /// Read piece `k` into `buf` after its first [`FRONT`] bytes (`buf` must be
    /// `FRONT + PIECE` long); the bytes read, or `None` when fewer came than the file's size
    /// promised (it changed, or cannot be read: the reader that takes over will say).
    pub fn read_piece(&self, k: u64, buf: &mut [u8]) -> Option<usize> {
        let start = k.checked_mul(PIECE as u64)?.checked_add(self.first)?;
        let want =
            usize::try_from(self.size.checked_sub(start)?).map_or(PIECE, |left| left.min(PIECE));
        let room = buf.get_mut(FRONT..FRONT + want)?;
        self.file.read_exact_at(room, start).ok()?;
        Some(want)
    }

    /// The framing of the first piece.
    pub fn framing(&self) -> Framing {
        Framing {
            carry: Vec::with_capacity(FRONT),
            offset: self.first,
            clock: self.clock.clone(),
            prefix: self.prefix.clone(),
        }
    }

    /// A reader for the rest of the file from `offset`, where `framing` stopped: what happens
    /// next is exactly what reading the whole file would have met there.
    pub fn read_on(&self, framing: &Framing, offset: u64) -> Result<CaptureFile, SourceError> {
        let open_error = |source| SourceError::Open {
            name: self.name.clone(),
            source,
        };
        // The same open file (not the path again, which may name another file by now); the
        // pieces are read with `pread`, which does not use its position.
        let mut file = self.file.try_clone().map_err(open_error)?;
        file.seek(SeekFrom::Start(offset)).map_err(open_error)?;
        let prefix = framing.prefix.clone();
        // The prefix is read first and brings the reader's offset to `offset`.
        let base = offset.saturating_sub(prefix.len() as u64);
        let rest = Cursor::new(prefix).chain(file);
        CaptureFile::from_reader_at(self.name.clone(), rest, base)
    }
}

/// Where the blocks are: the part of a block cut by the end of the last piece and its offset
/// in the file, and what the blocks so far said about the clock. Passed from piece to piece.
pub struct Framing {
    carry: Vec<u8>,
    offset: u64,
    clock: Clock,
    /// The blocks that set the clock (the file header, or the section's header and interface
    /// blocks), for a reader that takes over.
    prefix: Vec<u8>,
}

/// What framing a piece found.
#[derive(Debug, PartialEq, Eq)]
pub enum Framed {
    /// Every whole block is framed; the next piece goes on.
    More,
    /// The file ended on a block boundary.
    End,
    /// Split reading stops at this offset (a block boundary); a [`CaptureFile`] reads on.
    ReadOn(u64),
}

/// The length of the block at the start of some bytes, as far as its header says.
enum BlockLen {
    /// Not enough bytes to tell.
    Short,
    /// A length no block can have, or a block that cannot be here.
    Bad,
    Of(usize),
}

impl Framing {
    /// The file offset reached.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Frame the blocks of a piece read into `buf` (`read` bytes after [`FRONT`]), the last
    /// piece when `last`. Packets are appended to `frames`, their bytes being in `buf`.
    pub fn frame(
        &mut self,
        buf: &mut [u8],
        read: usize,
        last: bool,
        frames: &mut Vec<Frame>,
    ) -> Framed {
        let start = FRONT - self.carry.len();
        let Some(front) = buf.get_mut(start..FRONT) else {
            return Framed::ReadOn(self.offset);
        };
        front.copy_from_slice(&self.carry);
        // Where `buf` starts, to turn the packets' slices back into offsets.
        let base = buf.as_ptr() as usize;
        let Some(data) = buf.get(start..FRONT.saturating_add(read)) else {
            return Framed::ReadOn(self.offset);
        };
        let mut used = 0;
        while let Some(rest) = data.get(used..).filter(|r| !r.is_empty()) {
            if let Some((len, p)) = packet_block(&self.clock, rest) {
                frames.push(Frame {
                    ts: p.ts,
                    link: p.link,
                    start: (p.data.as_ptr() as usize).wrapping_sub(base),
                    len: p.data.len(),
                    wire_len: p.wire_len,
                });
                used += len;
                continue;
            }
            match self.block_len(rest) {
                BlockLen::Short => break,
                BlockLen::Of(len) if len > rest.len() => break,
                BlockLen::Of(len) if self.header_block(rest.get(..len).unwrap_or_default()) => {
                    used += len
                }
                // A bad block, or one the reader handles alone: it reports it.
                BlockLen::Of(_) | BlockLen::Bad => {
                    return Framed::ReadOn(self.offset + used as u64)
                }
            }
        }
        let tail = data.get(used..).unwrap_or_default();
        self.offset += used as u64;
        // A block that will not fit before the next piece is the whole-file reader's.
        let too_large = match self.block_len(tail) {
            BlockLen::Of(len) => len > FRONT,
            BlockLen::Short => false,
            BlockLen::Bad => true,
        };
        if last || too_large {
            return if last && tail.is_empty() {
                Framed::End
            } else {
                Framed::ReadOn(self.offset)
            };
        }
        self.carry.clear();
        self.carry.extend_from_slice(tail);
        Framed::More
    }

    /// The length of the block that starts `rest`, from its header.
    fn block_len(&self, rest: &[u8]) -> BlockLen {
        let len = |at: usize, big_endian: bool, header: u32, least: u32| match word_at(
            rest, at, big_endian,
        ) {
            None => BlockLen::Short,
            Some(n) if n < least => BlockLen::Bad,
            Some(n) => {
                BlockLen::Of(usize::try_from(n.saturating_add(header)).unwrap_or(usize::MAX))
            }
        };
        // The section header declares its own byte order.
        let section = rest.get(..4) == Some(&NG_SECTION_HEADER[..]);
        match &self.clock {
            // The captured length, after the record header.
            Clock::Legacy { format, .. } => {
                let big_endian = matches!(format, LegacyFormat::BigEndian);
                let header = if matches!(format, LegacyFormat::Modified) {
                    24
                } else {
                    16
                };
                len(8, big_endian, header, 0)
            }
            Clock::Unknown | Clock::Ng { .. } if section => match rest.get(8..12) {
                None => BlockLen::Short,
                Some(order) if order == NG_BYTE_ORDER_BE => len(4, true, 0, NG_BLOCK_MIN),
                Some(order) if order == NG_BYTE_ORDER_LE => len(4, false, 0, NG_BLOCK_MIN),
                Some(_) => BlockLen::Bad,
            },
            Clock::Ng { big_endian, .. } => len(4, *big_endian, 0, NG_BLOCK_MIN),
            Clock::Unknown => BlockLen::Bad,
        }
    }

    /// A whole pcapng block that is not a packet: the clock follows it, and section and
    /// interface blocks join the prefix. `false` when it is bad, or a packet after all (the
    /// whole-file reader then deals with it).
    fn header_block(&mut self, block: &[u8]) -> bool {
        let big_endian = matches!(
            self.clock,
            Clock::Ng {
                big_endian: true,
                ..
            }
        );
        let parsed = if big_endian {
            parse_block_be(block)
        } else {
            parse_block_le(block)
        };
        let Ok((rest, parsed)) = parsed else {
            return false;
        };
        if !rest.is_empty() {
            return false;
        }
        let kind = match &parsed {
            Block::SectionHeader(_) => Some(true),
            Block::InterfaceDescription(_) => Some(false),
            _ => None,
        };
        if !matches!(
            accept(&mut self.clock, PcapBlockOwned::NG(parsed)),
            Ok(None)
        ) {
            return false;
        }
        match kind {
            Some(true) => {
                self.prefix.clear();
                self.prefix.extend_from_slice(block);
            }
            Some(false) => self.prefix.extend_from_slice(block),
            None => {}
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::testdata::ng_section;
    use crate::source::Timestamp;

    const FIXTURE: &str = "fixtures/evasion-line-1mb/capture.pcap";

    type Packets = Vec<(Timestamp, Vec<u8>, u32)>;

    /// What the whole-file reader reads from `input`, and how it stops.
    fn whole(input: &Input) -> (Packets, Result<(), String>) {
        let mut out = Vec::new();
        let result = CaptureFile::open(input).and_then(|mut f| {
            f.for_each(&mut |p, _| out.push((p.ts, p.data.to_vec(), p.wire_len)))
        });
        (out, result.map_err(|e| e.to_string()))
    }

    /// What split reading reads: piece by piece, then the whole-file reader from where it
    /// stopped, if it did.
    fn split(input: &Input) -> (Packets, Result<(), String>, Option<u64>) {
        let split = SplitPcap::open(input).expect("a classic pcap of several pieces");
        let mut framing = split.framing();
        let mut out = Vec::new();
        let mut buf = vec![0u8; FRONT + PIECE];
        for k in 0..split.pieces() {
            let mut frames = Vec::new();
            let framed = match split.read_piece(k, &mut buf) {
                Some(n) => framing.frame(&mut buf, n, k + 1 == split.pieces(), &mut frames),
                None => Framed::ReadOn(framing.offset()),
            };
            for f in &frames {
                let data = buf
                    .get(f.start..f.start + f.len)
                    .expect("a frame in the buffer");
                out.push((f.ts, data.to_vec(), f.wire_len));
            }
            match framed {
                Framed::More => {}
                Framed::End => return (out, Ok(()), None),
                Framed::ReadOn(at) => {
                    let result = split.read_on(&framing, at).and_then(|mut f| {
                        f.for_each(&mut |p, _| out.push((p.ts, p.data.to_vec(), p.wire_len)))
                    });
                    return (out, result.map_err(|e| e.to_string()), Some(at));
                }
            }
        }
        panic!("the last piece neither ended the file nor handed it on");
    }

    fn scratch(tag: &str, bytes: &[u8]) -> Input {
        let path =
            std::env::temp_dir().join(format!("mailtap-split-{}-{tag}.pcap", std::process::id()));
        std::fs::write(&path, bytes).expect("scratch file");
        Input::Path(path)
    }

    /// The offsets of the records of a little-endian classic pcap.
    fn records(bytes: &[u8]) -> Vec<usize> {
        let mut at = LEGACY_HEADER;
        let mut out = Vec::new();
        while let Some(len) = bytes.get(at + 8..at + 12) {
            out.push(at);
            at += 16 + u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize;
        }
        out
    }

    #[test]
    fn pieces_of_a_real_capture_hold_what_the_whole_file_reader_reads() {
        let input = Input::Path(FIXTURE.into());
        let (want, ok) = whole(&input);
        assert_eq!(ok, Ok(()));
        assert!(SplitPcap::open(&input).expect("split").pieces() >= 4);
        let (got, result, read_on) = split(&input);
        assert_eq!(result, Ok(()));
        assert_eq!(read_on, None, "every piece framed without help");
        assert_eq!(got.len(), want.len());
        assert!(got == want);
    }

    #[test]
    fn a_file_cut_short_is_read_on_from_the_cut_record() {
        let bytes = std::fs::read(FIXTURE).expect("fixture");
        // Inside a record, well past the first piece.
        let cut = records(&bytes)
            .into_iter()
            .find(|&at| at > 2 * PIECE + 1000)
            .expect("a record after two pieces")
            + 20;
        let input = scratch("cut", bytes.get(..cut).expect("cut"));
        let (want, want_result) = whole(&input);
        let (got, result, read_on) = split(&input);
        assert!(want_result
            .as_ref()
            .is_err_and(|e| e.contains("truncated at byte")));
        assert_eq!(result, want_result);
        assert_eq!(read_on, Some(cut as u64 - 20));
        assert!(got == want);
    }

    #[test]
    fn a_record_too_large_for_the_room_goes_to_the_whole_file_reader() {
        let mut bytes = std::fs::read(FIXTURE).expect("fixture");
        let at = records(&bytes)
            .into_iter()
            .find(|&at| at > PIECE + 5000)
            .expect("a record after the first piece");
        // Its captured length says 1 MiB: more than the room before a piece, and more than
        // the file holds.
        bytes
            .get_mut(at + 8..at + 12)
            .expect("caplen")
            .copy_from_slice(&(1u32 << 20).to_le_bytes());
        let input = scratch("large", &bytes);
        let (want, want_result) = whole(&input);
        let (got, result, read_on) = split(&input);
        assert!(want_result.is_err());
        assert_eq!(result, want_result);
        assert_eq!(read_on, Some(at as u64));
        assert!(got == want);
    }

    /// The little-endian, microsecond, Ethernet captures of the fixtures, record after record,
    /// over and over until there are 700 kB: thousands of records of every size, which piece
    /// boundaries cut anywhere.
    fn many_records() -> &'static [u8] {
        static BYTES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        BYTES.get_or_init(|| {
            let mut records = Vec::new();
            let mut header = None;
            let mut dirs: Vec<_> = std::fs::read_dir("fixtures")
                .expect("fixtures")
                .filter_map(|e| e.ok().map(|e| e.path().join("capture.pcap")))
                .collect();
            dirs.sort();
            for path in dirs {
                let Ok(bytes) = std::fs::read(&path) else {
                    continue;
                };
                let ethernet_le_micros = bytes.get(..4) == Some(&[0xd4, 0xc3, 0xb2, 0xa1][..])
                    && bytes.get(20..24) == Some(&[1, 0, 0, 0][..]);
                if !ethernet_le_micros {
                    continue;
                }
                header.get_or_insert_with(|| bytes.get(..LEGACY_HEADER).expect("header").to_vec());
                for at in records_of(&bytes) {
                    let len = 16
                        + u32::from_le_bytes(
                            bytes
                                .get(at + 8..at + 12)
                                .expect("caplen")
                                .try_into()
                                .expect("4"),
                        ) as usize;
                    records.push(bytes.get(at..at + len).expect("record").to_vec());
                }
            }
            let mut out = header.expect("an Ethernet capture");
            while out.len() < 700_000 {
                for r in &records {
                    out.extend_from_slice(r);
                }
            }
            out
        })
    }

    /// The same packets as [`many_records`], as pcapng: two sections, the second in the other
    /// byte order, so that framing follows a section header in the middle of the file.
    fn many_records_ng() -> &'static [u8] {
        static BYTES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        BYTES.get_or_init(|| {
            let classic = many_records();
            let frames: Vec<Vec<u8>> = records_of(classic)
                .into_iter()
                .filter_map(|at| classic.get(at + 16..at + 16 + caplen(classic, at)))
                .map(<[u8]>::to_vec)
                .collect();
            let (first, second) = frames.split_at(frames.len() / 2);
            let mut out = Vec::new();
            ng_section(&mut out, false, first);
            ng_section(&mut out, true, second);
            out
        })
    }

    fn caplen(bytes: &[u8], at: usize) -> usize {
        bytes
            .get(at + 8..at + 12)
            .map_or(0, |l| u32::from_le_bytes(l.try_into().expect("4")) as usize)
    }

    fn records_of(bytes: &[u8]) -> Vec<usize> {
        records(bytes)
            .into_iter()
            .filter(|&at| {
                bytes.get(at + 8..at + 12).is_some_and(|l| {
                    let len = u32::from_le_bytes(l.try_into().expect("4")) as usize;
                    at + 16 + len <= bytes.len()
                })
            })
            .collect()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

        /// Cut anywhere, four bytes overwritten anywhere, classic pcap or pcapng: split
        /// reading reads what the whole-file reader reads, and stops where and how it stops.
        #[test]
        fn split_reading_reads_what_the_whole_file_reader_reads(
            ng in proptest::prelude::any::<bool>(),
            cut in (LEGACY_HEADER + PIECE + 1)..700_000usize,
            at in 0..700_000usize,
            with in proptest::prelude::any::<[u8; 4]>(),
            damage in proptest::prelude::any::<bool>(),
        ) {
            let source = if ng { many_records_ng() } else { many_records() };
            let mut bytes = source.get(..cut.min(source.len())).expect("cut").to_vec();
            if damage {
                if let Some(b) = bytes.get_mut(at..at + 4) {
                    b.copy_from_slice(&with);
                }
            }
            let input = scratch("prop", &bytes);
            let (want, want_result) = whole(&input);
            let (got, result, _) = split(&input);
            proptest::prop_assert_eq!(result, want_result);
            proptest::prop_assert_eq!(got.len(), want.len());
            proptest::prop_assert!(got == want);
        }
    }

    /// Once found by the proptest above: a classic pcap cut 262,169 bytes in.
    #[test]
    fn a_pcap_cut_past_its_first_pieces_reads_what_the_whole_file_reader_reads() {
        let bytes = many_records().get(..262_169).expect("long enough").to_vec();
        let input = scratch("cut262169", &bytes);
        let (want, want_result) = whole(&input);
        let (got, result, _) = split(&input);
        assert_eq!(result, want_result);
        assert!(got == want);
    }

    #[test]
    fn a_pcapng_file_of_two_sections_frames_what_the_whole_file_reader_reads() {
        let input = scratch("ng", many_records_ng());
        let (want, ok) = whole(&input);
        assert_eq!(ok, Ok(()));
        assert!(want.len() > 1000, "{} packets", want.len());
        let (got, result, read_on) = split(&input);
        assert_eq!(result, Ok(()));
        assert_eq!(read_on, None, "every piece framed without help");
        assert!(got == want);
    }

    #[test]
    fn what_is_not_a_capture_of_several_pieces_is_not_split() {
        assert!(SplitPcap::open(&Input::Stdin).is_none());
        // Too small, whatever the format.
        assert!(
            SplitPcap::open(&Input::Path("fixtures/pcapng-multi/capture.pcapng".into())).is_none()
        );
        let small = std::fs::read("fixtures/imap-starttls/capture.pcap").expect("fixture");
        assert!(SplitPcap::open(&scratch("small", &small)).is_none());
    }
}
