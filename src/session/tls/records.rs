//! TLS record framing (RFC 8446 §5.1, RFC 5246 §6.2) and handshake message framing (§4),
//! over bytes that arrive in pieces. Bounded: a record is at most [`MAX_RECORD_BODY`] bytes,
//! a handshake message at most [`MAX_MESSAGE`].

/// 2^14 + 2048: the largest TLSCiphertext fragment (RFC 5246 §6.2.3).
pub(super) const MAX_RECORD_BODY: usize = (1 << 14) + 2048;
/// The largest handshake message kept (a Certificate chain may be this large).
pub(super) const MAX_MESSAGE: usize = 64 * 1024;

pub(super) const CHANGE_CIPHER_SPEC: u8 = 20;
pub(super) const ALERT: u8 = 21;
pub(super) const HANDSHAKE: u8 = 22;
pub(super) const APPLICATION_DATA: u8 = 23;
pub(super) const HEARTBEAT: u8 = 24;
/// Not a wire value: an SSLv2-framed CLIENT-HELLO (the body starts with its message type).
pub(super) const SSLV2_CLIENT_HELLO: u8 = 0x80;

/// A checked reader over untrusted bytes: every read is bounded, none panics.
#[derive(Clone, Copy, Debug)]
pub(super) struct Reader<'a>(pub &'a [u8]);

impl<'a> Reader<'a> {
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.0.len() {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }

    pub fn u8(&mut self) -> Option<u8> {
        self.take(1).and_then(|b| b.first().copied())
    }

    pub fn u16(&mut self) -> Option<u16> {
        let b = self.take(2)?;
        Some(u16::from_be_bytes([*b.first()?, *b.get(1)?]))
    }

    pub fn u24(&mut self) -> Option<usize> {
        let b = self.take(3)?;
        Some(
            usize::from(*b.first()?) << 16 | usize::from(*b.get(1)?) << 8 | usize::from(*b.get(2)?),
        )
    }

    /// A vector with a one-byte length.
    pub fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = self.u8()?;
        self.take(usize::from(n))
    }

    /// A vector with a two-byte length.
    pub fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The big-endian u16 items of a list.
    pub fn u16_list(mut self) -> Vec<u16> {
        let mut out = Vec::with_capacity(self.0.len() / 2);
        while let Some(v) = self.u16() {
            out.push(v);
        }
        out
    }
}

/// One record, whole, or with holes where a gap in the stream fell inside it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Record {
    pub content_type: u8,
    /// The body; the bytes of a hole are zero.
    pub body: Vec<u8>,
    /// `(offset, length)` in `body` of the bytes the stream lost, in order; empty when whole.
    pub holes: Vec<(usize, usize)>,
}

impl Record {
    /// The body as the seen pieces and the holes between them, in order.
    pub fn pieces(&self) -> impl Iterator<Item = Piece<'_>> + '_ {
        let mut at = 0;
        let mut holes = self.holes.iter().copied().peekable();
        std::iter::from_fn(move || {
            if let Some(&(h, n)) = holes.peek() {
                if at >= h {
                    holes.next();
                    at = h.saturating_add(n);
                    return Some(Piece::Lost(n));
                }
                let seen = self.body.get(at..h).unwrap_or_default();
                at = h;
                return Some(Piece::Seen(seen));
            }
            let seen = self.body.get(at..).filter(|b| !b.is_empty())?;
            at = self.body.len();
            Some(Piece::Seen(seen))
        })
    }
}

/// A stretch of a record's body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Piece<'a> {
    Seen(&'a [u8]),
    Lost(usize),
}

/// Why framing stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum FramingError {
    /// Not a TLS record header (unknown content type or major version).
    Malformed,
    /// A record longer than [`MAX_RECORD_BODY`].
    TooLong,
}

/// Cuts one direction's bytes into records. The first record of the client's stream may be
/// an SSLv2-framed CLIENT-HELLO (RFC 5246 Appendix E.2).
#[derive(Debug)]
pub(super) struct RecordReader {
    allow_sslv2: bool,
    header: Vec<u8>,
    /// Body length and type once the header is complete.
    pending: Option<(u8, usize)>,
    body: Vec<u8>,
    /// Where a gap fell inside the record being read (see [`Record::holes`]).
    holes: Vec<(usize, usize)>,
    /// A gap took a record header: records cannot be cut until a chunk that starts with a
    /// plausible header resynchronises the framing.
    lost: bool,
    /// Zero-length handshake/alert/CCS records seen (RFC 8446 §5.1 forbids them).
    pub zero_length: bool,
}

impl RecordReader {
    /// Give back the buffers' memory (the analyzer is done reading).
    pub fn release(&mut self) {
        self.header = Vec::new();
        self.pending = None;
        self.body = Vec::new();
        self.holes = Vec::new();
    }

    pub fn new(allow_sslv2: bool) -> Self {
        RecordReader {
            allow_sslv2,
            header: Vec::with_capacity(5),
            pending: None,
            body: Vec::new(),
            holes: Vec::new(),
            lost: false,
            zero_length: false,
        }
    }

    /// `len` bytes of the stream were lost. Inside a record's body they become a hole (the
    /// record is still delivered, with its holes); a gap that takes a header loses the
    /// framing. Returns whether it is lost.
    pub fn gap(&mut self, len: u64, out: &mut Vec<Record>) -> bool {
        if len == 0 || self.lost {
            return self.lost;
        }
        self.allow_sslv2 = false;
        let Some((content_type, total)) = self.pending else {
            // At a record boundary (or inside a header): the next header is gone.
            self.header.clear();
            self.lost = true;
            return true;
        };
        let room = total.saturating_sub(self.body.len());
        let n = usize::try_from(len).unwrap_or(usize::MAX).min(room);
        self.holes.push((self.body.len(), n));
        self.body.resize(self.body.len() + n, 0);
        if self.body.len() == total {
            out.push(Record {
                content_type,
                body: std::mem::take(&mut self.body),
                holes: std::mem::take(&mut self.holes),
            });
            self.pending = None;
        }
        if u64::try_from(n).unwrap_or(u64::MAX) < len {
            // The gap runs on past the record's end: the next header is gone.
            self.lost = true;
        }
        self.lost
    }

    /// Give up the framing (after a gap, a header that does not parse): resynchronise at a
    /// chunk that starts with a plausible header.
    pub fn lose(&mut self) {
        self.header.clear();
        self.pending = None;
        self.body.clear();
        self.holes.clear();
        self.lost = true;
    }

    /// Appends `data`, pushing every completed record to `out`. After lost framing, `data`
    /// (the start of a chunk the stream delivered, usually a segment) is taken up again only
    /// if it starts with a plausible record header; otherwise it is skipped.
    pub fn push(&mut self, mut data: &[u8], out: &mut Vec<Record>) -> Result<(), FramingError> {
        if self.lost {
            if !plausible_header(data) {
                return Ok(());
            }
            self.lost = false;
        }
        while !data.is_empty() {
            match self.pending {
                None => {
                    // The first byte decides the header's length, so read it alone.
                    let want = if self.header.is_empty() {
                        1
                    } else {
                        self.header_len().saturating_sub(self.header.len())
                    };
                    let n = want.min(data.len());
                    let (head, rest) = data.split_at(n);
                    self.header.extend_from_slice(head);
                    data = rest;
                    if self.header.len() == self.header_len() {
                        let (content_type, len) = self.parse_header()?;
                        // One allocation of the right size instead of a chain of reallocs as
                        // the body arrives in segments (len ≤ MAX_RECORD_BODY).
                        self.body.reserve_exact(len);
                        self.pending = Some((content_type, len));
                        self.allow_sslv2 = false;
                        self.header.clear();
                        self.complete_empty(out);
                    }
                }
                Some((content_type, len)) => {
                    let n = len.saturating_sub(self.body.len()).min(data.len());
                    let (head, rest) = data.split_at(n);
                    self.body.extend_from_slice(head);
                    data = rest;
                    if self.body.len() == len {
                        out.push(Record {
                            content_type,
                            body: std::mem::take(&mut self.body),
                            holes: std::mem::take(&mut self.holes),
                        });
                        self.pending = None;
                    }
                }
            }
        }
        Ok(())
    }

    /// A zero-length record is complete as soon as its header is.
    fn complete_empty(&mut self, out: &mut Vec<Record>) {
        if let Some((content_type, 0)) = self.pending {
            if content_type != APPLICATION_DATA {
                self.zero_length = true;
            }
            out.push(Record {
                content_type,
                body: Vec::new(),
                holes: Vec::new(),
            });
            self.pending = None;
        }
    }

    /// 5 for a TLS record; 2 for an SSLv2 header (the first byte has its high bit set).
    fn header_len(&self) -> usize {
        match self.header.first() {
            Some(b) if self.allow_sslv2 && b & 0x80 != 0 => 2,
            _ => 5,
        }
    }

    fn parse_header(&self) -> Result<(u8, usize), FramingError> {
        let mut r = Reader(&self.header);
        if self.header_len() == 2 {
            let len = usize::from(r.u16().ok_or(FramingError::Malformed)? & 0x7fff);
            if len < 9 {
                return Err(FramingError::Malformed);
            }
            return Ok((SSLV2_CLIENT_HELLO, len));
        }
        let content_type = r.u8().ok_or(FramingError::Malformed)?;
        let version = r.u16().ok_or(FramingError::Malformed)?;
        let len = usize::from(r.u16().ok_or(FramingError::Malformed)?);
        if !(CHANGE_CIPHER_SPEC..=HEARTBEAT).contains(&content_type) || version >> 8 != 3 {
            return Err(FramingError::Malformed);
        }
        if len > MAX_RECORD_BODY {
            return Err(FramingError::TooLong);
        }
        Ok((content_type, len))
    }
}

/// A whole TLS record header (content type 20–23, version 3.0–3.4, a non-zero length a record
/// may have) at the start of `data`: where framing is taken up again after a gap. Random
/// ciphertext passes this test about once in a million chunks.
fn plausible_header(data: &[u8]) -> bool {
    match data {
        [20..=23, 3, 0..=4, hi, lo, ..] => {
            let len = usize::from(*hi) << 8 | usize::from(*lo);
            len > 0 && len <= MAX_RECORD_BODY
        }
        _ => false,
    }
}

/// Cuts the handshake records of one direction into messages `(type, body)`; messages may
/// span records and a record may hold several. A message longer than [`MAX_MESSAGE`] is kept
/// cut at [`MAX_MESSAGE`] bytes, the rest of it skipped without being held, and delivered when
/// it ends, so what follows it is still read (a 100-certificate chain does not hide the
/// ServerKeyExchange behind it).
#[derive(Debug, Default)]
pub(super) struct MessageReader {
    buf: Vec<u8>,
    /// Bytes of an oversized message still to skip, after its first [`MAX_MESSAGE`] kept.
    skip: usize,
    /// The message in `buf` has a hole (zeros where a gap fell).
    holed: bool,
    /// A gap took a message header: the rest of this direction's handshake cannot be cut into
    /// messages.
    lost: bool,
}

impl MessageReader {
    /// Give back the buffer's memory (the analyzer is done reading).
    pub fn release(&mut self) {
        self.buf = Vec::new();
    }
}

/// Delivers the whole messages at the start of `fragment` (none longer than
/// [`MAX_MESSAGE`]) and returns the rest.
fn take_whole<'a>(mut fragment: &'a [u8], out: &mut Vec<Message>) -> &'a [u8] {
    loop {
        let mut r = Reader(fragment);
        let (Some(msg_type), Some(len)) = (r.u8(), r.u24()) else {
            return fragment;
        };
        if len > MAX_MESSAGE {
            return fragment;
        }
        let Some(body) = r.take(len) else {
            return fragment;
        };
        out.push(Message {
            msg_type,
            body: body.to_vec(),
            cut: false,
            holed: false,
        });
        fragment = r.0;
    }
}

/// One handshake message; `cut` when its body is only the first [`MAX_MESSAGE`] bytes,
/// `holed` when a gap took some of it (its bytes there are zero, or its end is missing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Message {
    pub msg_type: u8,
    pub body: Vec<u8>,
    pub cut: bool,
    pub holed: bool,
}

impl MessageReader {
    /// `n` bytes of handshake were lost. Inside a message whose header was seen they are a
    /// hole in it; otherwise message framing is lost for good, and a message begun is
    /// delivered as far as it came, holed.
    pub fn gap(&mut self, n: usize, out: &mut Vec<Message>) {
        if n == 0 || self.lost {
            return;
        }
        if self.skip > 0 {
            let k = self.skip.min(n);
            self.skip -= k;
            if self.skip == 0 {
                self.finish_cut(out);
            }
            if k < n {
                self.lose(out);
            }
            return;
        }
        let mut r = Reader(&self.buf);
        let (Some(_), Some(len)) = (r.u8(), r.u24()) else {
            self.lose(out);
            return;
        };
        let remaining = len.saturating_add(4).saturating_sub(self.buf.len());
        if n > remaining {
            self.lose(out);
            return;
        }
        self.holed = true;
        let room = MAX_MESSAGE.saturating_add(4).saturating_sub(self.buf.len());
        self.buf.resize(self.buf.len() + n.min(room), 0);
        if n > room {
            self.skip = len.saturating_sub(MAX_MESSAGE).saturating_sub(n - room);
            if self.skip == 0 {
                self.finish_cut(out);
            }
            return;
        }
        self.drain_whole(out);
    }

    /// Framing is gone: what was begun goes out holed, and nothing more is read.
    fn lose(&mut self, out: &mut Vec<Message>) {
        let buf = std::mem::take(&mut self.buf);
        if let Some((&msg_type, rest)) = buf.split_first() {
            out.push(Message {
                msg_type,
                body: rest.get(3..).unwrap_or_default().to_vec(),
                cut: false,
                holed: true,
            });
        }
        self.skip = 0;
        self.holed = false;
        self.lost = true;
    }

    pub fn push(&mut self, mut fragment: &[u8], out: &mut Vec<Message>) {
        if self.lost {
            return;
        }
        loop {
            if self.skip > 0 {
                let n = self.skip.min(fragment.len());
                self.skip -= n;
                fragment = fragment.get(n..).unwrap_or_default();
                if self.skip > 0 {
                    return;
                }
                self.finish_cut(out);
            }
            if self.buf.is_empty() {
                // Whole messages straight from the fragment: no copy through `buf`.
                fragment = take_whole(fragment, out);
            }
            let room = MAX_MESSAGE.saturating_add(4).saturating_sub(self.buf.len());
            let n = room.min(fragment.len());
            self.buf
                .extend_from_slice(fragment.get(..n).unwrap_or_default());
            fragment = fragment.get(n..).unwrap_or_default();
            if !self.drain_whole(out) {
                return;
            }
        }
    }

    /// Deliver every whole message in `buf`. Returns true when an oversized message filled
    /// `buf` and its remainder is now being skipped (the caller feeds it the rest).
    fn drain_whole(&mut self, out: &mut Vec<Message>) -> bool {
        let first = out.len();
        let consumed = self.buf.len() - take_whole(&self.buf, out).len();
        self.buf.drain(..consumed);
        if let Some(m) = out.get_mut(first) {
            // Only the message that began `buf` can hold the hole.
            m.holed = std::mem::take(&mut self.holed);
        }
        // What is left is a message begun, or one too long to keep whole.
        let mut r = Reader(&self.buf);
        let (Some(_), Some(len)) = (r.u8(), r.u24()) else {
            return false;
        };
        // Kept: the type, the length and MAX_MESSAGE bytes of body.
        if len <= MAX_MESSAGE || self.buf.len() < 4 + MAX_MESSAGE {
            return false;
        }
        self.skip = len - MAX_MESSAGE;
        true
    }

    /// The skipped remainder of an oversized message has passed: deliver its kept part.
    fn finish_cut(&mut self, out: &mut Vec<Message>) {
        let buf = std::mem::take(&mut self.buf);
        if let Some((&msg_type, rest)) = buf.split_first() {
            out.push(Message {
                msg_type,
                body: rest.get(3..).unwrap_or_default().to_vec(),
                cut: true,
                holed: std::mem::take(&mut self.holed),
            });
        }
    }

    /// Bytes of a message begun but not finished.
    #[cfg(test)]
    pub fn pending(&self) -> bool {
        !self.buf.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(data: &[&[u8]], sslv2: bool) -> (Vec<Record>, Result<(), FramingError>) {
        let mut rr = RecordReader::new(sslv2);
        let mut out = Vec::new();
        let mut res = Ok(());
        for d in data {
            res = rr.push(d, &mut out);
            if res.is_err() {
                break;
            }
        }
        (out, res)
    }

    #[test]
    fn records_span_pieces_and_pieces_hold_records() {
        let bytes = [22, 3, 1, 0, 2, 0xaa, 0xbb, 23, 3, 3, 0, 1, 0xcc];
        let whole = frame(&[&bytes], false);
        let pieces: Vec<&[u8]> = bytes.chunks(1).collect();
        let split = frame(&pieces, false);
        assert_eq!(whole, split);
        assert_eq!(
            whole.0,
            vec![
                Record {
                    content_type: 22,
                    body: vec![0xaa, 0xbb],
                    holes: vec![],
                },
                Record {
                    content_type: 23,
                    body: vec![0xcc],
                    holes: vec![],
                }
            ]
        );
    }

    #[test]
    fn bad_headers() {
        assert_eq!(
            frame(&[b"EHLO x\r\n"], false).1,
            Err(FramingError::Malformed)
        );
        assert_eq!(
            frame(&[&[22, 2, 0, 0, 1]], false).1,
            Err(FramingError::Malformed)
        );
        assert_eq!(
            frame(&[&[22, 3, 3, 0x48, 0x01]], false).1,
            Err(FramingError::TooLong)
        );
        let mut rr = RecordReader::new(false);
        let mut out = Vec::new();
        assert_eq!(rr.push(&[22, 3, 3, 0, 0], &mut out), Ok(()));
        assert!(rr.zero_length);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn sslv2_header_only_first_and_only_when_allowed() {
        let (out, res) = frame(&[&[0x80, 0x0b, 1, 3, 1, 0, 0, 0, 0, 0, 0, 0, 0]], true);
        assert_eq!(res, Ok(()));
        assert_eq!(
            out.first().map(|r| r.content_type),
            Some(SSLV2_CLIENT_HELLO)
        );
        assert_eq!(
            frame(&[&[0x80, 0x0b, 1, 3, 1]], false).1,
            Err(FramingError::Malformed)
        );
    }

    #[test]
    fn messages_span_records_and_share_them() {
        let mut mr = MessageReader::default();
        let mut out = Vec::new();
        mr.push(&[1, 0, 0, 2, 0xaa], &mut out);
        assert!(out.is_empty() && mr.pending());
        mr.push(&[0xbb, 14, 0, 0, 0], &mut out);
        let whole = |t, b: &[u8]| Message {
            msg_type: t,
            body: b.to_vec(),
            cut: false,
            holed: false,
        };
        assert_eq!(out, vec![whole(1, &[0xaa, 0xbb]), whole(14, &[])]);
        assert!(!mr.pending());
    }

    #[test]
    fn an_oversized_message_is_cut_skipped_and_what_follows_is_read() {
        let len = MAX_MESSAGE + 1000;
        let mut bytes = vec![11, (len >> 16) as u8, (len >> 8) as u8, len as u8];
        bytes.extend((0..len).map(|i| i as u8));
        bytes.extend([14, 0, 0, 0]);
        for piece in [7usize, 4096, 70_000] {
            let mut mr = MessageReader::default();
            let mut out = Vec::new();
            for chunk in bytes.chunks(piece) {
                mr.push(chunk, &mut out);
                assert!(mr.buf.len() <= MAX_MESSAGE + 4, "bounded");
            }
            assert_eq!(out.len(), 2, "piece {piece}");
            assert_eq!(out[0].msg_type, 11);
            assert!(out[0].cut);
            assert_eq!(out[0].body.len(), MAX_MESSAGE);
            assert_eq!(out[0].body[..4], [0, 1, 2, 3]);
            assert_eq!(out[1].msg_type, 14);
            assert!(!out[1].cut && !mr.pending());
        }
    }
}
