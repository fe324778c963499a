//! Capture files: classic pcap (either byte order, µs or ns) and pcapng (several interfaces,
//! each with its own link type and clock, sections mid-file), from a path or stdin, and either
//! of them gzip- or zstd-compressed (`compressed.rs`: told by their magic bytes, decompressed
//! as they are read). Pure Rust (pcap-parser) but for zstd's C library, which is built with
//! mailtap, so the default build needs no system library.
//!
//! The reader's buffer is reused for every block; a packet is a borrow of it, valid during the
//! callback. A bad file stops with an error naming the file and the byte offset of the block
//! that could not be read (in a compressed file, the offset in the decompressed stream, and the
//! error says so); the packets before it have already been handed out.

use super::compressed::{self, Compression, Fault, Opened, Stream};
use super::{Linktype, Packet, Timestamp};
use crate::recycle::recycle;
use pcap_parser::pcap::{parse_pcap_frame, parse_pcap_frame_be, parse_pcap_frame_modified};
use pcap_parser::pcapng::{parse_block_be, parse_block_le, Block};
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{create_reader, PcapBlockOwned, PcapError};
use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;

/// Read buffer: holds the largest block; grown up to `MAX_BLOCK` for jumbo/odd captures.
/// 128 KiB stays in the core's cache between the read and the decode: replay was 2-4 % faster
/// than with 1 MiB (`examples/bare-read.rs` uses the same size, so it stays the floor).
const BUFFER: usize = 1 << 17;
const MAX_BLOCK: usize = 64 << 20;
/// Packets handed out at once by [`CaptureFile::for_each_batch`]: enough for the engine to
/// look a few packets ahead, few enough to stay in cache.
pub const BATCH: usize = 64;

/// Where captures come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    Path(PathBuf),
    Stdin,
}

impl Input {
    pub fn name(&self) -> String {
        match self {
            Input::Path(p) => p.display().to_string(),
            Input::Stdin => "<stdin>".to_string(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{name}: cannot read: {source}")]
    Open { name: String, source: io::Error },
    #[error("{name}: not a pcap or pcapng file")]
    NotACapture { name: String },
    #[error("{name}: truncated at byte {offset}{stream}: {what}")]
    Truncated {
        name: String,
        offset: u64,
        stream: Stream,
        what: String,
    },
    #[error("{name}: corrupt block at byte {offset}{stream}: {what}")]
    Corrupt {
        name: String,
        offset: u64,
        stream: Stream,
        what: String,
    },
    #[error("{name}: read error at byte {offset}{stream}: {cause}")]
    Read {
        name: String,
        offset: u64,
        stream: Stream,
        cause: String,
    },
}

impl SourceError {
    /// The byte offset of the block that could not be read (`None`: the file did not open, or
    /// is not a capture); of the decompressed stream when the file is compressed.
    pub fn offset(&self) -> Option<u64> {
        match self {
            SourceError::Open { .. } | SourceError::NotACapture { .. } => None,
            SourceError::Truncated { offset, .. }
            | SourceError::Corrupt { offset, .. }
            | SourceError::Read { offset, .. } => Some(*offset),
        }
    }

    /// How the file is compressed, when the error says (offsets then count decompressed bytes).
    pub fn compression(&self) -> Option<Compression> {
        match self {
            SourceError::Open { .. } | SourceError::NotACapture { .. } => None,
            SourceError::Truncated { stream, .. }
            | SourceError::Corrupt { stream, .. }
            | SourceError::Read { stream, .. } => stream.compression(),
        }
    }
}

/// How to read packet times and link types in the current part of the file.
#[derive(Clone, Debug)]
pub(super) enum Clock {
    Unknown,
    Legacy {
        link: Linktype,
        nanos: bool,
        format: LegacyFormat,
    },
    /// A pcapng section: its byte order and the interfaces described so far.
    Ng {
        big_endian: bool,
        ifaces: Vec<Interface>,
    },
}

/// How a classic pcap file lays out its record headers (the file header says).
#[derive(Clone, Copy, Debug)]
pub(super) enum LegacyFormat {
    LittleEndian,
    BigEndian,
    /// Alexey Kuznetsov's "modified" pcap: 8 more bytes per record.
    Modified,
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Interface {
    link: Linktype,
    /// Timestamp units per second.
    resolution: u64,
    /// Seconds added to every timestamp (if_tsoffset).
    offset: i64,
}

/// One open capture.
pub struct CaptureFile {
    name: String,
    reader: Box<dyn PcapReaderIterator + Send>,
    /// What the offsets count: the file's bytes, or the decompressed stream's.
    stream: Stream,
    /// Why the byte source stopped, when it failed.
    fault: Fault,
    clock: Clock,
    /// Bytes of the file consumed so far: the offset of the next block.
    offset: u64,
    /// The allocation of the last batch (see `recycle`).
    spare: Vec<Packet<'static>>,
}

impl CaptureFile {
    /// The capture `input` names, decompressed as it is read if it is compressed.
    pub fn open(input: &Input) -> Result<Self, SourceError> {
        let name = input.name();
        let open_error = |source| SourceError::Open {
            name: name.clone(),
            source,
        };
        let opened = match input {
            Input::Stdin => compressed::open(io::stdin()),
            Input::Path(p) => File::open(p).and_then(compressed::open),
        }
        .map_err(open_error)?;
        Self::from_opened(name, opened, 0)
    }

    /// A capture read from any byte source (a socket, an in-memory buffer in tests and fuzz
    /// targets) as it is, never decompressed; `name` is what errors call it.
    pub fn from_reader(
        name: String,
        reader: impl Read + Send + 'static,
    ) -> Result<Self, SourceError> {
        Self::from_reader_at(name, reader, 0)
    }

    /// A capture that goes on in the middle of a file (see `split.rs`): `reader` gives the
    /// blocks that set the clock there, then the file from where they bring the offset, when
    /// it starts at `base`. Offsets in errors are the file's.
    pub(super) fn from_reader_at(
        name: String,
        reader: impl Read + Send + 'static,
        base: u64,
    ) -> Result<Self, SourceError> {
        Self::from_opened(name, compressed::plain(reader), base)
    }

    fn from_opened(name: String, opened: Opened, base: u64) -> Result<Self, SourceError> {
        let Opened {
            stream,
            reader,
            fault,
        } = opened;
        let reader = match create_reader(BUFFER, reader) {
            Ok(r) => r,
            Err(e) => {
                let fault = fault.take();
                let refused = matches!(
                    e,
                    PcapError::Eof | PcapError::Incomplete(_) | PcapError::HeaderNotRecognized
                );
                return Err(match fault {
                    None if refused => SourceError::NotACapture { name },
                    fault => read_error(name, base, stream, fault),
                });
            }
        };
        Ok(CaptureFile {
            name,
            reader,
            stream,
            fault,
            clock: Clock::Unknown,
            offset: base,
            spare: Vec::with_capacity(BATCH),
        })
    }

    /// How the file is compressed, if it is.
    pub fn compression(&self) -> Option<Compression> {
        self.stream.compression()
    }

    /// Bytes of the file read so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Hand every packet to `on_packet` (with the file offset reached), until the end of the
    /// file or the first block that cannot be read.
    pub fn for_each(
        &mut self,
        on_packet: &mut dyn FnMut(&Packet<'_>, u64),
    ) -> Result<(), SourceError> {
        self.for_each_batch(&mut |batch, offset| {
            for p in batch {
                on_packet(p, offset);
            }
        })
    }

    /// Hand the packets over in batches of up to [`BATCH`], each with the file offset reached
    /// after it, until the end of the file or the first block that cannot be read (the packets
    /// before that block have all been handed over).
    pub fn for_each_batch(
        &mut self,
        on_batch: &mut dyn FnMut(&[Packet<'_>], u64),
    ) -> Result<(), SourceError> {
        while self.next_batch(usize::MAX, on_batch)? {}
        Ok(())
    }

    /// One step of [`for_each_batch`](Self::for_each_batch), for a reader that stops between
    /// batches: at most one batch, of up to [`BATCH`] packets and no more packets once their
    /// captured bytes reach `budget` (at least one packet, though). `false` at the end of the
    /// file. A batch is a run of packet blocks read straight from the buffer; any other block,
    /// and every error, goes through the reader one block at a time.
    pub fn next_batch(
        &mut self,
        budget: usize,
        on_batch: &mut dyn FnMut(&[Packet<'_>], u64),
    ) -> Result<bool, SourceError> {
        // Its allocation is reused for every batch (see `recycle`).
        let mut batch = recycle(std::mem::take(&mut self.spare));
        let data = self.reader.data();
        let (mut used, mut bytes) = (0, 0);
        while batch.len() < BATCH && bytes < budget {
            let Some((len, p)) = data
                .get(used..)
                .and_then(|rest| packet_block(&self.clock, rest))
            else {
                break;
            };
            used += len;
            bytes += p.data.len();
            batch.push(p);
        }
        if !batch.is_empty() {
            self.offset += used as u64;
            on_batch(&batch, self.offset);
            self.spare = recycle(batch);
            self.reader.consume_noshift(used);
            return Ok(true);
        }
        self.spare = recycle(batch);
        if let Some(len) = short_ng_block(&self.clock, self.reader.data()) {
            let what = format!("block length {len}, less than its {NG_BLOCK_MIN} fixed bytes");
            return Err(self.corrupt(what));
        }
        let stop = match self.reader.next() {
            Ok((len, block)) => {
                let packet = accept(&mut self.clock, block)
                    .map_err(|what| corrupt(&self.name, self.offset, self.stream, what))?;
                self.offset += len as u64;
                if let Some(p) = packet {
                    on_batch(&[p], self.offset);
                }
                // `consume` would move the unread half of the buffer to its start each time
                // half of it is read (copying every byte once more: a third of the cost of
                // reading); `refill` moves only the partial block left at the end.
                self.reader.consume_noshift(len);
                return Ok(true);
            }
            // The error borrows the reader's buffer: reduce it to what decides the next step.
            Err(e) => Stop::from(e),
        };
        match stop {
            Stop::Eof => self.at_end(false),
            Stop::Incomplete if self.reader.reader_exhausted() => self.at_end(true),
            Stop::Incomplete => self.refill().map(|()| true),
            Stop::BufferTooSmall => self.grow().map(|()| true),
            Stop::UnexpectedEof => self.at_end(true),
            Stop::Read => Err(self.read_error()),
            Stop::Corrupt(what) => Err(self.corrupt(what)),
        }
    }

    /// The bytes ran out (`cut`: inside a block). The byte source ends at its first error too
    /// (a cut or corrupt compressed stream, a failed read), which it then noted: that error is
    /// what stopped the file.
    fn at_end(&self, cut: bool) -> Result<bool, SourceError> {
        match self.fault.take() {
            Some(e) => Err(read_error(
                self.name.clone(),
                self.offset,
                self.stream,
                Some(e),
            )),
            None if cut => Err(self.truncated()),
            None => Ok(false),
        }
    }

    fn truncated(&self) -> SourceError {
        SourceError::Truncated {
            name: self.name.clone(),
            offset: self.offset,
            stream: self.stream,
            what: "the last block is cut short".into(),
        }
    }

    fn read_error(&self) -> SourceError {
        read_error(
            self.name.clone(),
            self.offset,
            self.stream,
            self.fault.take(),
        )
    }

    fn corrupt(&self, what: String) -> SourceError {
        corrupt(&self.name, self.offset, self.stream, what)
    }

    fn refill(&mut self) -> Result<(), SourceError> {
        match self.reader.refill() {
            Ok(()) => Ok(()),
            // The buffer is full of one incomplete block: it is larger than the buffer.
            Err(PcapError::BufferTooSmall) => self.grow(),
            Err(_) => Err(self.read_error()),
        }
    }

    fn grow(&mut self) -> Result<(), SourceError> {
        let current = self.reader.data().len().max(BUFFER);
        let next = current.saturating_mul(2);
        if next > MAX_BLOCK || !self.reader.grow(next) {
            return Err(self.corrupt(format!("a block larger than {} MiB", MAX_BLOCK >> 20)));
        }
        Ok(())
    }
}

/// Why reading stopped, without the borrow of the reader's buffer that `PcapError` carries.
enum Stop {
    Eof,
    Incomplete,
    UnexpectedEof,
    BufferTooSmall,
    Read,
    Corrupt(String),
}

impl From<PcapError<&[u8]>> for Stop {
    fn from(e: PcapError<&[u8]>) -> Self {
        match e {
            PcapError::Eof => Stop::Eof,
            PcapError::Incomplete(_) => Stop::Incomplete,
            PcapError::UnexpectedEof => Stop::UnexpectedEof,
            PcapError::BufferTooSmall => Stop::BufferTooSmall,
            PcapError::ReadError => Stop::Read,
            PcapError::HeaderNotRecognized => Stop::Corrupt("unknown block".into()),
            PcapError::NomError(_, kind) | PcapError::OwnedNomError(_, kind) => {
                Stop::Corrupt(format!("unparsable block ({})", kind.description()))
            }
        }
    }
}

fn corrupt(name: &str, offset: u64, stream: Stream, what: String) -> SourceError {
    SourceError::Corrupt {
        name: name.to_string(),
        offset,
        stream,
        what,
    }
}

/// The byte source of `name` failed at `offset`. A decompressor that ran out of input in the
/// middle of its stream says so (`UnexpectedEof`): the compressed file is cut.
fn read_error(name: String, offset: u64, stream: Stream, fault: Option<io::Error>) -> SourceError {
    match fault {
        Some(e) if e.kind() == io::ErrorKind::UnexpectedEof && stream != Stream::File => {
            SourceError::Truncated {
                name,
                offset,
                stream,
                what: format!("the compressed file ends early ({e})"),
            }
        }
        fault => SourceError::Read {
            name,
            offset,
            stream,
            cause: fault.map_or_else(|| "no cause given".into(), |e| e.to_string()),
        },
    }
}

/// A pcapng block's type and both its length fields: the least a block total length can be.
pub(super) const NG_BLOCK_MIN: u32 = 12;
pub(super) const NG_SECTION_HEADER: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

/// The 32-bit number at `at` of `data`, in the given byte order.
pub(super) fn word_at(data: &[u8], at: usize, big_endian: bool) -> Option<u32> {
    let bytes: [u8; 4] = data.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(if big_endian {
        u32::from_be_bytes(bytes)
    } else {
        u32::from_le_bytes(bytes)
    })
}

/// The total length of the next pcapng block, when it is shorter than [`NG_BLOCK_MIN`].
/// pcap-parser 0.17 checks this only against each block type's own header size, which for some
/// types (process information: 4) is less, and then subtracts 12 from it.
fn short_ng_block(clock: &Clock, data: &[u8]) -> Option<u32> {
    let Clock::Ng { big_endian, .. } = clock else {
        return None;
    };
    if data.get(..4)? == NG_SECTION_HEADER {
        // In the byte order of the new section, which it declares itself; checked by the parser.
        return None;
    }
    let len = word_at(data, 4, *big_endian)?;
    (len < NG_BLOCK_MIN).then_some(len)
}

/// pcapng block types that carry a packet.
const NG_ENHANCED_PACKET: u32 = 6;
const NG_SIMPLE_PACKET: u32 = 3;

/// The packet block at the start of `data` and its length, when it is whole and needs nothing
/// from the reader: a classic pcap record, or a pcapng enhanced or simple packet block in the
/// current section. Anything else (a header block, a short or bad block, a cut one) is `None`,
/// and the reader handles it, so state changes and errors have one path.
pub(super) fn packet_block<'a>(clock: &Clock, data: &'a [u8]) -> Option<(usize, Packet<'a>)> {
    let block = match clock {
        Clock::Unknown => return None,
        Clock::Legacy { format, .. } => {
            let parsed = match format {
                LegacyFormat::LittleEndian => parse_pcap_frame(data),
                LegacyFormat::BigEndian => parse_pcap_frame_be(data),
                LegacyFormat::Modified => parse_pcap_frame_modified(data),
            };
            let (rest, b) = parsed.ok()?;
            (data.len() - rest.len(), PcapBlockOwned::Legacy(b))
        }
        Clock::Ng { big_endian, .. } => {
            let (kind, len) = (
                word_at(data, 0, *big_endian)?,
                word_at(data, 4, *big_endian)?,
            );
            // pcap-parser panics below 12 bytes (see `short_ng_block`); the reader reports it.
            if !matches!(kind, NG_ENHANCED_PACKET | NG_SIMPLE_PACKET) || len < NG_BLOCK_MIN {
                return None;
            }
            let parsed = if *big_endian {
                parse_block_be(data)
            } else {
                parse_block_le(data)
            };
            let (rest, b) = parsed.ok()?;
            (data.len() - rest.len(), PcapBlockOwned::NG(b))
        }
    };
    let (len, block) = block;
    // A packet the clock cannot place (an undescribed interface) is the reader's to report.
    let packet = read_packet(clock, block).ok()??;
    Some((len, packet))
}

/// The clock of a classic pcap file header; `None` for anything else (pcapng, the "modified"
/// format, garbage).
pub(super) fn legacy_header(bytes: &[u8]) -> Option<Clock> {
    let (_, h) = pcap_parser::pcap::parse_pcap_header(bytes).ok()?;
    if h.is_modified_format() {
        return None;
    }
    let mut clock = Clock::Unknown;
    accept(&mut clock, PcapBlockOwned::LegacyHeader(h)).ok()?;
    Some(clock)
}

/// Update the clock from header blocks; turn packet blocks into packets.
pub(super) fn accept<'a>(
    clock: &mut Clock,
    block: PcapBlockOwned<'a>,
) -> Result<Option<Packet<'a>>, String> {
    match block {
        PcapBlockOwned::LegacyHeader(h) => {
            let format = if h.is_modified_format() {
                LegacyFormat::Modified
            } else if h.is_bigendian() {
                LegacyFormat::BigEndian
            } else {
                LegacyFormat::LittleEndian
            };
            *clock = Clock::Legacy {
                link: h.network,
                nanos: h.is_nanosecond_precision(),
                format,
            };
            Ok(None)
        }
        PcapBlockOwned::NG(Block::SectionHeader(shb)) => {
            // A new section starts a new list of interfaces, maybe in another byte order.
            *clock = Clock::Ng {
                big_endian: shb.big_endian(),
                ifaces: Vec::new(),
            };
            Ok(None)
        }
        PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
            let Clock::Ng { ifaces, .. } = clock else {
                return Err("interface description outside a section".into());
            };
            let resolution = idb
                .ts_resolution()
                .filter(|r| *r > 0)
                .ok_or("interface with an invalid timestamp resolution")?;
            ifaces.push(Interface {
                link: idb.linktype,
                resolution,
                offset: idb.ts_offset(),
            });
            Ok(None)
        }
        other => read_packet(clock, other),
    }
}

/// The packet in a packet block, read with the clock; other blocks are `None`.
fn read_packet<'a>(clock: &Clock, block: PcapBlockOwned<'a>) -> Result<Option<Packet<'a>>, String> {
    match block {
        PcapBlockOwned::Legacy(b) => {
            let Clock::Legacy { link, nanos, .. } = *clock else {
                return Err("packet record before the file header".into());
            };
            let frac = u64::from(b.ts_usec) * if nanos { 1 } else { 1_000 };
            let ts = Timestamp::from_nanos(u64::from(b.ts_sec) * 1_000_000_000 + frac);
            Ok(Some(packet(ts, link, b.data, b.caplen, b.origlen)))
        }
        PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
            let iface = interface(clock, epb.if_id)?;
            let units = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
            let ts = ng_time(units, iface);
            Ok(Some(packet(
                ts,
                iface.link,
                epb.data,
                epb.caplen,
                epb.origlen,
            )))
        }
        PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
            // No timestamp in a simple packet block: the best is "unknown", i.e. zero.
            let iface = interface(clock, 0)?;
            let caplen = u32::try_from(spb.data.len()).unwrap_or(u32::MAX);
            Ok(Some(packet(
                Timestamp::ZERO,
                iface.link,
                spb.data,
                caplen,
                spb.origlen,
            )))
        }
        _ => Ok(None),
    }
}

fn interface(clock: &Clock, id: u32) -> Result<Interface, String> {
    match clock {
        Clock::Ng { ifaces, .. } => usize::try_from(id)
            .ok()
            .and_then(|i| ifaces.get(i))
            .copied()
            .ok_or_else(|| format!("packet on interface {id}, which was never described")),
        _ => Err("packet block outside a pcapng section".into()),
    }
}

fn ng_time(units: u64, iface: Interface) -> Timestamp {
    let nanos = u128::from(units) * 1_000_000_000 / u128::from(iface.resolution);
    let offset = i128::from(iface.offset) * 1_000_000_000;
    let total = (nanos as i128 + offset).clamp(0, i128::from(u64::MAX));
    Timestamp::from_nanos(u64::try_from(total).unwrap_or(u64::MAX))
}

fn packet(ts: Timestamp, link: Linktype, data: &[u8], caplen: u32, origlen: u32) -> Packet<'_> {
    // pcap-parser already cut `data` to the captured length; trust the shorter of the two.
    let data = data.get(..caplen as usize).unwrap_or(data);
    Packet {
        ts,
        link,
        data,
        wire_len: origlen.max(u32::try_from(data.len()).unwrap_or(u32::MAX)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::testdata::ng_section;
    use std::io::Write;
    use std::path::Path;

    /// A little-endian, microsecond classic pcap (Ethernet) holding `frames`.
    fn classic_pcap(frames: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        out.extend_from_slice(&2u16.to_le_bytes());
        out.extend_from_slice(&4u16.to_le_bytes());
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(&65535u32.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
        for (i, frame) in frames.iter().enumerate() {
            let len = u32::try_from(frame.len()).unwrap();
            out.extend_from_slice(&u32::try_from(i).unwrap().to_le_bytes());
            out.extend_from_slice(&7u32.to_le_bytes());
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(frame);
        }
        out
    }

    fn read_all(bytes: Vec<u8>) -> Result<Vec<(Timestamp, Vec<u8>)>, SourceError> {
        let mut file = CaptureFile::from_reader("mem".into(), io::Cursor::new(bytes))?;
        let mut seen = Vec::new();
        file.for_each(&mut |p, _| seen.push((p.ts, p.data.to_vec())))?;
        Ok(seen)
    }

    #[test]
    fn a_capture_in_memory_yields_its_packets() {
        let seen = read_all(classic_pcap(&[b"first", b"second"])).unwrap();
        assert_eq!(
            seen,
            [
                (Timestamp::from_nanos(7_000), b"first".to_vec()),
                (Timestamp::from_nanos(1_000_007_000), b"second".to_vec()),
            ]
        );
    }

    /// Found by fuzzing (pcap_reader): a big-endian section, then a process information block
    /// whose total length (7) is less than 12; the parser would subtract 12 from it.
    #[test]
    fn a_pcapng_block_shorter_than_its_fixed_fields_is_corrupt() {
        let file = b"\x0a\x0d\x0d\x0a\x00\x00\x00\x1c\x1a\x2b\x3c\x4d\x64\x19\x5d\x40\
            \x00\x00\x00\x4d\x3c\x2b\x1a\x00\x00\x00\x00\xbf\x80\x00\x00\x01\x00\x00\x00\x07";
        let err = read_all(file.to_vec()).unwrap_err();
        assert!(
            matches!(err, SourceError::Corrupt { offset: 28, ref what, .. } if what.contains("7")),
            "{err}"
        );
    }

    /// Each batch's frames, with the offset it reached.
    type Batches = Vec<(Vec<Vec<u8>>, u64)>;

    /// Every batch, read from memory, and how reading ended.
    fn read_batches(bytes: Vec<u8>) -> (Batches, Result<(), SourceError>) {
        let mut file =
            CaptureFile::from_reader("mem".into(), io::Cursor::new(bytes)).expect("a capture");
        let mut batches = Vec::new();
        let r = file.for_each_batch(&mut |b, offset| {
            batches.push((b.iter().map(|p| p.data.to_vec()).collect(), offset));
        });
        (batches, r)
    }

    fn numbered_frames(n: usize) -> Vec<Vec<u8>> {
        (0..n).map(|i| format!("frame {i}").into_bytes()).collect()
    }

    #[test]
    fn batches_are_runs_of_packets_and_stop_before_a_cut_block() {
        let frames = numbered_frames(150);
        let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
        let mut bytes = classic_pcap(&refs);
        let whole = bytes.len() as u64;
        // A record header promising more bytes than the file has.
        bytes.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 100, 0, 0, 0, 100, 0, 0, 0, 1, 2]);
        let (batches, r) = read_batches(bytes);
        let sizes: Vec<usize> = batches.iter().map(|(b, _)| b.len()).collect();
        assert_eq!(sizes, [BATCH, BATCH, 150 - 2 * BATCH]);
        let record = |i: usize| 16 + frames[i].len() as u64;
        let after = |n: usize| 24 + (0..n).map(record).sum::<u64>();
        let offsets: Vec<u64> = batches.iter().map(|(_, o)| *o).collect();
        assert_eq!(offsets, [after(BATCH), after(2 * BATCH), whole]);
        let read: Vec<Vec<u8>> = batches.into_iter().flat_map(|(b, _)| b).collect();
        assert_eq!(read, frames);
        assert!(
            matches!(r, Err(SourceError::Truncated { offset, .. }) if offset == whole),
            "{r:?}"
        );
    }

    #[test]
    fn pcapng_batches_follow_sections_in_either_byte_order() {
        let first = numbered_frames(100);
        let second: Vec<Vec<u8>> = numbered_frames(30)
            .into_iter()
            .map(|mut f| {
                f.extend_from_slice(b" (big-endian)");
                f
            })
            .collect();
        let mut bytes = Vec::new();
        ng_section(&mut bytes, false, &first);
        ng_section(&mut bytes, true, &second);
        let (batches, r) = read_batches(bytes);
        r.expect("reads to its end");
        let sizes: Vec<usize> = batches.iter().map(|(b, _)| b.len()).collect();
        // A batch ends at the next section's header, which the reader handles.
        assert_eq!(sizes, [BATCH, 100 - BATCH, 30]);
        let read: Vec<Vec<u8>> = batches.into_iter().flat_map(|(b, _)| b).collect();
        assert_eq!(read, [first, second].concat());
    }

    /// Real captures (dumpcap's two-interface pcapng, a big-endian pcap): the batches carry
    /// exactly the frames pcap-parser's own reader finds, in order.
    #[test]
    fn batches_of_real_captures_hold_what_pcap_parser_reads() {
        for case in ["pcapng-multi/capture.pcapng", "pcap-bigendian/capture.pcap"] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fixtures")
                .join(case);
            let bytes = std::fs::read(&path).expect("fixture");
            let mut want = Vec::new();
            let mut reader = create_reader(BUFFER, io::Cursor::new(bytes.clone())).expect("reader");
            loop {
                match reader.next() {
                    Ok((len, block)) => {
                        match block {
                            PcapBlockOwned::Legacy(b) => want.push(b.data.to_vec()),
                            PcapBlockOwned::NG(Block::EnhancedPacket(b)) => want
                                .push(b.data.get(..b.caplen as usize).unwrap_or(b.data).to_vec()),
                            _ => {}
                        }
                        reader.consume(len);
                    }
                    Err(PcapError::Incomplete(_)) => reader.refill().expect("refill"),
                    Err(PcapError::Eof) => break,
                    Err(e) => panic!("{case}: {e:?}"),
                }
            }
            let (batches, r) = read_batches(bytes);
            r.expect("reads to its end");
            let read: Vec<Vec<u8>> = batches.into_iter().flat_map(|(b, _)| b).collect();
            assert!(want.len() > 10, "{case}: {} frames", want.len());
            assert_eq!(read, want, "{case}");
        }
    }

    /// Every frame read from `bytes` through the decompressing path, and how reading ended.
    fn read_decompressed(bytes: Vec<u8>) -> (Vec<Vec<u8>>, Result<(), SourceError>) {
        let opened = compressed::open(io::Cursor::new(bytes)).expect("opens");
        let mut file = CaptureFile::from_opened("mem".into(), opened, 0).expect("a capture");
        let mut frames = Vec::new();
        let r = file.for_each(&mut |p, _| frames.push(p.data.to_vec()));
        (frames, r)
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn compressed_captures_yield_the_frames_of_the_plain_one() {
        let frames = numbered_frames(3000);
        let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
        let plain = classic_pcap(&refs);
        let zstd = zstd::stream::encode_all(&plain[..], 3).unwrap();
        for (bytes, c) in [(gzip(&plain), Compression::Gzip), (zstd, Compression::Zstd)] {
            let opened = compressed::open(io::Cursor::new(bytes.clone())).unwrap();
            let file = CaptureFile::from_opened("mem".into(), opened, 0).unwrap();
            assert_eq!(file.compression(), Some(c));
            let (read, r) = read_decompressed(bytes);
            r.expect("reads to its end");
            assert_eq!(read, frames, "{c}");
        }
    }

    /// A gzip file cut in the middle: the frames decompressed before the cut are handed out,
    /// then an error at the offset of the first block not read whole, in the decompressed
    /// stream, saying so.
    #[test]
    fn a_cut_gzip_file_keeps_the_frames_before_the_cut() {
        let frames = numbered_frames(20_000);
        let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
        let gz = gzip(&classic_pcap(&refs));
        let cut = gz.get(..gz.len() / 2).unwrap().to_vec();
        let (read, r) = read_decompressed(cut);
        assert!(read.len() > 1000, "{} frames", read.len());
        assert_eq!(read, frames[..read.len()]);
        let record = |i: usize| 16 + frames[i].len() as u64;
        let offset = 24 + (0..read.len()).map(record).sum::<u64>();
        let err = r.unwrap_err();
        assert!(
            matches!(err, SourceError::Truncated { offset: o, .. } if o == offset),
            "{err}"
        );
        let message = err.to_string();
        assert!(
            message.starts_with(&format!(
                "mem: truncated at byte {offset} of the decompressed stream (gzip): \
                 the compressed file ends early"
            )),
            "{message}"
        );
    }

    #[test]
    fn corrupt_compressed_data_is_a_read_error_with_its_cause() {
        // Large enough for the damage to come after the first read.
        let frames = numbered_frames(50_000);
        let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
        let mut gz = gzip(&classic_pcap(&refs));
        let middle = gz.len() / 2;
        for b in gz.get_mut(middle..middle + 64).unwrap() {
            *b = !*b;
        }
        let (read, r) = read_decompressed(gz);
        assert_eq!(read, frames[..read.len()]);
        let err = r.unwrap_err();
        assert!(err.offset().is_some(), "{err}");
        assert!(
            err.to_string().contains("decompressed stream (gzip)"),
            "{err}"
        );
    }

    #[test]
    fn bytes_that_are_no_capture_are_named_as_such() {
        let err = read_all(b"220 mail.example.org ESMTP\r\n".to_vec()).unwrap_err();
        assert!(matches!(err, SourceError::NotACapture { ref name } if name == "mem"));
    }
}
