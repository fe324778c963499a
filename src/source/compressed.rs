//! Compressed captures: gzip (`.gz`, several members too, as `cat a.gz b.gz` makes) and zstd
//! (`.zst`, several frames too), known by their magic bytes, never by their names, and
//! decompressed as they are read: memory is the decompressor's state and window (for zstd, at
//! most the 128 MiB its default limit allows; the usual levels need 8 MiB or less), whatever the
//! file's size, and nothing is written to disk.
//!
//! Offsets are then offsets in the decompressed stream, the only place a block has one; an
//! error that gives one says so ([`Stream`]). A compressed stream that ends early or is
//! corrupt is an error at the offset of the first block not read whole: every packet before it
//! has been handed out.

use flate2::read::MultiGzDecoder;
use std::fmt;
use std::io::{self, Cursor, Read};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// How a capture is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// RFC 1952.
    Gzip,
    /// RFC 8878.
    Zstd,
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
/// Bytes that tell a compressed stream, and a capture, from anything else.
pub const MAGIC_LEN: usize = 4;

impl Compression {
    /// The compression whose magic `head` starts with.
    pub fn detect(head: &[u8]) -> Option<Self> {
        if head.starts_with(&GZIP_MAGIC) {
            Some(Compression::Gzip)
        } else if head.starts_with(&ZSTD_MAGIC) {
            Some(Compression::Zstd)
        } else {
            None
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// What the byte offsets of a capture count: the file's bytes, or those decompressed from it.
/// Displayed as the words that follow an offset in a message (none for the file's own).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Stream {
    #[default]
    File,
    Decompressed(Compression),
}

impl Stream {
    pub fn compression(self) -> Option<Compression> {
        match self {
            Stream::File => None,
            Stream::Decompressed(c) => Some(c),
        }
    }
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stream::File => Ok(()),
            Stream::Decompressed(c) => write!(f, " of the decompressed stream ({c})"),
        }
    }
}

/// The error that ended a byte source, kept for the message.
#[derive(Clone, Debug, Default)]
pub struct Fault(Arc<Mutex<Option<io::Error>>>);

impl Fault {
    fn set(&self, e: &io::Error) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(io::Error::new(e.kind(), e.to_string()));
        }
    }

    /// The error noted, if any (and forget it).
    pub fn take(&self) -> Option<io::Error> {
        self.0.lock().ok().and_then(|mut slot| slot.take())
    }
}

/// A capture's bytes: decompressed when they start like a compressed stream, as they are.
pub struct Opened {
    pub stream: Stream,
    pub reader: Box<dyn Read + Send>,
    /// The error that ended `reader`, once one has: `reader` itself then just ends.
    pub fault: Fault,
}

/// `reader`'s bytes, decompressed if their first bytes say they are compressed. Reading the
/// first bytes is the only read done here.
pub fn open(mut reader: impl Read + Send + 'static) -> io::Result<Opened> {
    let head = read_head(&mut reader)?;
    let compression = Compression::detect(&head);
    let whole = Cursor::new(head).chain(reader);
    let Some(c) = compression else {
        return Ok(plain(whole));
    };
    let fault = Fault::default();
    // A decompressor returns what one step made, often a few KiB: filling the parser's buffer
    // whole makes fewer, longer parsing runs, and gives the parser a file header in its first
    // read, which is all it looks at to tell the format.
    let reader = Box::new(Watched::new(decoder(c, whole)?, &fault, true));
    Ok(Opened {
        stream: Stream::Decompressed(c),
        reader,
        fault,
    })
}

fn decoder(
    c: Compression,
    compressed: impl Read + Send + 'static,
) -> io::Result<Box<dyn Read + Send>> {
    Ok(match c {
        Compression::Gzip => Box::new(MultiGzDecoder::new(compressed)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(compressed)?),
    })
}

/// Whether the file at `path` starts like a compressed stream (`false` when it cannot be read).
pub fn is_compressed(path: &Path) -> bool {
    std::fs::File::open(path)
        .and_then(|mut f| read_head(&mut f))
        .is_ok_and(|head| Compression::detect(&head).is_some())
}

/// `reader`'s bytes as they are, whatever they start with.
pub fn plain(reader: impl Read + Send + 'static) -> Opened {
    let fault = Fault::default();
    Opened {
        stream: Stream::File,
        reader: Box::new(Watched::new(reader, &fault, false)),
        fault,
    }
}

/// The first [`MAGIC_LEN`] bytes of `reader` (fewer when it ends sooner).
pub fn read_head(reader: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(MAGIC_LEN);
    reader.take(MAGIC_LEN as u64).read_to_end(&mut head)?;
    Ok(head)
}

/// The first [`MAGIC_LEN`] bytes a capture file holds once decompressed (fewer when it is
/// shorter): how a directory walk tells a capture, compressed or not, from other files.
pub fn sniff(reader: impl Read + Send + 'static) -> io::Result<Vec<u8>> {
    let mut opened = open(reader)?;
    read_head(&mut opened.reader)
}

/// A byte source that ends at its first error, which it notes in a [`Fault`] (the capture
/// parser takes an error on any read, even one made only to fill its buffer, for the end of
/// everything, and keeps nothing of its cause), and fills the buffer it is given up to the end
/// of the stream when told to (a decompressor). The first read of any source waits for at
/// least [`FIRST_READ`] bytes: the parser tells the format from its first read alone, and the
/// bytes read to find the magic come back on their own.
struct Watched<R> {
    inner: R,
    fault: Fault,
    fill: bool,
    first: bool,
    failed: bool,
}

/// What the first read of an uncompressed source waits for (unless it ends sooner): more than
/// any file header, little enough for a pipe from a live capture to start soon.
const FIRST_READ: usize = 16 * 1024;

impl<R: Read> Watched<R> {
    fn new(inner: R, fault: &Fault, fill: bool) -> Self {
        Watched {
            inner,
            fault: fault.clone(),
            fill,
            first: true,
            failed: false,
        }
    }
}

impl<R: Read> Read for Watched<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Bytes to wait for before returning (fewer at the end of the stream).
        let want = if self.fill {
            buf.len()
        } else if std::mem::take(&mut self.first) {
            buf.len().min(FIRST_READ)
        } else {
            1
        };
        let mut filled = 0;
        while let Some(room) = buf
            .get_mut(filled..)
            .filter(|r| !r.is_empty() && !self.failed)
        {
            match self.inner.read(room) {
                Ok(0) => break,
                Ok(n) => {
                    filled += n;
                    if filled >= want {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.fault.set(&e);
                    self.failed = true;
                }
            }
        }
        Ok(filled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    fn read_all(bytes: Vec<u8>) -> (Stream, io::Result<Vec<u8>>, Option<io::Error>) {
        let mut opened = open(Cursor::new(bytes)).unwrap();
        let mut out = Vec::new();
        let r = opened.reader.read_to_end(&mut out).map(|_| out);
        (opened.stream, r, opened.fault.take())
    }

    #[test]
    fn magic_bytes_tell_the_compression() {
        assert_eq!(
            Compression::detect(&[0x1f, 0x8b, 8, 0]),
            Some(Compression::Gzip)
        );
        assert_eq!(Compression::detect(&ZSTD_MAGIC), Some(Compression::Zstd));
        assert_eq!(Compression::detect(&[0xd4, 0xc3, 0xb2, 0xa1]), None);
        assert_eq!(Compression::detect(&[0x1f]), None);
    }

    #[test]
    fn plain_bytes_pass_through_and_short_ones_too() {
        for bytes in [&b"abcdefgh"[..], b"ab", b""] {
            let (stream, r, fault) = read_all(bytes.to_vec());
            assert_eq!(stream, Stream::File);
            assert_eq!(r.unwrap(), bytes);
            assert!(fault.is_none());
        }
    }

    #[test]
    fn gzip_members_and_zstd_frames_are_read_one_after_another() {
        let data: Vec<u8> = (0..100_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let (a, b) = data.split_at(12_345);
        let (stream, r, _) = read_all([gzip(a), gzip(b)].concat());
        assert_eq!(stream, Stream::Decompressed(Compression::Gzip));
        assert_eq!(r.unwrap(), data);
        let zstd = |b: &[u8]| zstd::stream::encode_all(b, 1).unwrap();
        let (stream, r, _) = read_all([zstd(a), zstd(b)].concat());
        assert_eq!(stream, Stream::Decompressed(Compression::Zstd));
        assert_eq!(r.unwrap(), data);
    }

    /// A cut stream gives every byte it still holds, then ends, with the error in the fault.
    #[test]
    fn a_cut_stream_gives_what_it_holds_then_ends_on_a_fault() {
        let data: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 7).to_le_bytes())
            .collect();
        let zstd = zstd::stream::encode_all(&data[..], 1).unwrap();
        for compressed in [gzip(&data), zstd] {
            let cut = compressed.get(..compressed.len() - 10).unwrap().to_vec();
            let (_, read, fault) = read_all(cut);
            let read = read.unwrap();
            assert!(
                read.len() > data.len() / 2,
                "{} of {}",
                read.len(),
                data.len()
            );
            assert_eq!(read, data[..read.len()]);
            let fault = fault.expect("the error is noted");
            assert_eq!(fault.kind(), io::ErrorKind::UnexpectedEof, "{fault}");
        }
    }

    #[test]
    fn offsets_say_when_they_count_decompressed_bytes() {
        assert_eq!(Stream::File.to_string(), "");
        assert_eq!(
            Stream::Decompressed(Compression::Zstd).to_string(),
            " of the decompressed stream (zstd)"
        );
    }
}
