//! Classic pcap files read in fixed-size pieces, by several threads at once.
//!
//! A piece is a byte range of the file, read with `pread` straight into the buffer it will be
//! decoded from: pieces are read in parallel and nothing copies them. Only finding where the
//! records start is sequential: [`Framing`] walks the record headers of one piece after
//! another, carrying the record that a piece boundary cut into the room left before the next
//! piece. Walking headers in a piece that is in the core's cache costs a few nanoseconds per
//! record.
//!
//! Anything out of the ordinary stops the split reading at the exact byte where it happened,
//! and a [`CaptureFile`] reads on from there: a bad or cut record, a record larger than the
//! room before a piece, a read error, a file that changed size. So every error is reported by
//! the one reader that reports errors, with its offset, and every packet before it is kept.
//! pcapng files, the "modified" pcap format, and inputs that are not regular files are not
//! split at all.

use super::file::Input;
use super::file::{legacy_header, read_legacy_record, CaptureFile, Clock, SourceError};
use super::Frame;
use pcap_parser::pcap::{parse_pcap_frame, parse_pcap_frame_be};
use std::fs::File;
use std::io::{Cursor, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

/// Bytes in a piece: a few hundred records, small enough to stay in a core's cache from the
/// read to the decode.
pub const PIECE: usize = 256 * 1024;
/// Room before each piece for the record cut at the end of the one before: one record of
/// tcpdump's default snap length (256 KiB) and its header.
pub const FRONT: usize = 256 * 1024 + 16;
const HEADER: usize = 24;

/// A classic pcap file open for split reading.
pub struct SplitPcap {
    path: PathBuf,
    name: String,
    file: File,
    size: u64,
    header: [u8; HEADER],
    clock: Clock,
    big_endian: bool,
}

impl SplitPcap {
    /// `input` when it is a regular file holding a classic pcap (either byte order,
    /// microseconds or nanoseconds) of at least one piece; otherwise `None`, and it is read
    /// whole by a [`CaptureFile`].
    pub fn open(input: &Input) -> Option<SplitPcap> {
        let Input::Path(path) = input else {
            return None;
        };
        let mut file = File::open(path).ok()?;
        let meta = file.metadata().ok()?;
        if !meta.is_file() || meta.len() < (HEADER + PIECE) as u64 {
            return None;
        }
        let mut header = [0u8; HEADER];
        file.read_exact(&mut header).ok()?;
        let (clock, big_endian) = legacy_header(&header)?;
        Some(SplitPcap {
            path: path.clone(),
            name: input.name(),
            file,
            size: meta.len(),
            header,
            clock,
            big_endian,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// How many pieces the file has.
    pub fn pieces(&self) -> u64 {
        (self.size - HEADER as u64).div_ceil(PIECE as u64)
    }

    /// Read piece `k` into `buf` after its first [`FRONT`] bytes (`buf` must be
    /// `FRONT + PIECE` long); the bytes read, or `None` when fewer came than the file's size
    /// promised (it changed, or cannot be read: the reader that takes over will say).
    pub fn read_piece(&self, k: u64, buf: &mut [u8]) -> Option<usize> {
        let start = k.checked_mul(PIECE as u64)?.checked_add(HEADER as u64)?;
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
            offset: HEADER as u64,
        }
    }

    /// A reader for the rest of the file from `offset`, a record boundary: what happens next
    /// is exactly what reading the whole file would have met there.
    pub fn read_on(&self, offset: u64) -> Result<CaptureFile, SourceError> {
        let open_error = |source| SourceError::Open {
            name: self.name.clone(),
            source,
        };
        let mut file = File::open(&self.path).map_err(open_error)?;
        file.seek(SeekFrom::Start(offset)).map_err(open_error)?;
        let rest = Cursor::new(self.header).chain(file);
        CaptureFile::from_reader_at(self.name.clone(), rest, Some(self.size), offset)
    }
}

/// Where the records are: the part of a record cut by the end of the last piece, and its
/// offset in the file. Passed from piece to piece.
pub struct Framing {
    carry: Vec<u8>,
    offset: u64,
}

/// What framing a piece found.
#[derive(Debug, PartialEq, Eq)]
pub enum Framed {
    /// Every whole record is framed; the next piece goes on.
    More,
    /// The file ended on a record boundary.
    End,
    /// Split reading stops at this offset (a record boundary); a [`CaptureFile`] reads on.
    ReadOn(u64),
}

impl Framing {
    /// The file offset reached.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Frame the records of a piece read into `buf` (`read` bytes after [`FRONT`]), the last
    /// piece when `last`. Frames are appended to `frames`, their bytes being in `buf`.
    pub fn frame(
        &mut self,
        split: &SplitPcap,
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
        let Some(data) = buf.get(start..FRONT.saturating_add(read)) else {
            return Framed::ReadOn(self.offset);
        };
        // Where `buf` starts, to turn the packets' slices back into offsets.
        let base = buf.as_ptr() as usize;
        let mut used = 0;
        while let Some(rest) = data.get(used..) {
            let parsed = if split.big_endian {
                parse_pcap_frame_be(rest)
            } else {
                parse_pcap_frame(rest)
            };
            let block = match parsed {
                Ok((after, block)) => {
                    used += rest.len() - after.len();
                    block
                }
                Err(pcap_parser::nom::Err::Incomplete(_)) => break,
                // A bad record: the whole-file reader reports it.
                Err(_) => return Framed::ReadOn(self.offset + used as u64),
            };
            match read_legacy_record(&split.clock, block) {
                Some(p) => frames.push(Frame {
                    ts: p.ts,
                    link: p.link,
                    start: (p.data.as_ptr() as usize).wrapping_sub(base),
                    len: p.data.len(),
                    wire_len: p.wire_len,
                }),
                None => return Framed::ReadOn(self.offset + (used as u64)),
            }
        }
        let tail = data.get(used..).unwrap_or_default();
        self.offset += used as u64;
        // A record that will not fit before the next piece is the whole-file reader's.
        if last || tail.len() > FRONT - 16 || record_len(tail, split.big_endian) > FRONT {
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
}

/// The length of the record that starts `tail` (header and data), once its header is there.
fn record_len(tail: &[u8], big_endian: bool) -> usize {
    let Some(caplen) = tail.get(8..12).and_then(|b| <[u8; 4]>::try_from(b).ok()) else {
        return 0;
    };
    let caplen = if big_endian {
        u32::from_be_bytes(caplen)
    } else {
        u32::from_le_bytes(caplen)
    };
    usize::try_from(caplen).map_or(usize::MAX, |n| n.saturating_add(16))
}

#[cfg(test)]
mod tests {
    use super::*;
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
                Some(n) => framing.frame(&split, &mut buf, n, k + 1 == split.pieces(), &mut frames),
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
                    let result = split.read_on(at).and_then(|mut f| {
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
        let mut at = HEADER;
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

    #[test]
    fn what_is_not_a_classic_pcap_of_several_pieces_is_not_split() {
        assert!(SplitPcap::open(&Input::Stdin).is_none());
        assert!(
            SplitPcap::open(&Input::Path("fixtures/pcapng-multi/capture.pcapng".into())).is_none()
        );
        let small = std::fs::read("fixtures/imap-starttls/capture.pcap").expect("fixture");
        assert!(SplitPcap::open(&scratch("small", &small)).is_none());
    }
}
