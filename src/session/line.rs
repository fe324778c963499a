//! CRLF-terminated lines from a byte stream, bounded.
//!
//! A line that fits inside one delivered chunk is returned as a borrow of that chunk (no copy).
//! Only a line split across chunks is copied, into a buffer that never holds more than
//! `max + 1` bytes. A line longer than `max` is returned once, cut to `max` and flagged.
//! After a gap, call [`LineReader::reset`]: the partial line is dropped and reading resumes
//! after the next line end, since the bytes before it are the tail of an unknown line.

/// One line without its terminator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Line<'a> {
    pub text: &'a [u8],
    /// Ended by LF alone (RFC 5321 §2.3.8 wants CRLF).
    pub bare_lf: bool,
    /// Longer than the reader's limit: `text` is its first `max` bytes.
    pub too_long: bool,
}

/// Raw bytes consumed by count ([`LineReader::skip_raw_seen`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Raw<'a> {
    Bytes(&'a [u8]),
    /// Bytes of a held line beyond what the buffer keeps.
    Lost,
}

#[derive(Debug)]
pub struct LineReader {
    /// The start of an unfinished line, at most `max + 1` bytes of it.
    buf: Vec<u8>,
    /// The unfinished line's true length so far (may exceed what `buf` keeps).
    held: usize,
    /// Its true last byte, to see a CR whose LF comes in the next chunk.
    last: u8,
    max: usize,
    /// Dropping bytes up to the next LF (after a gap).
    resync: bool,
    /// `buf` was handed out as the previous line; clear it before reading on.
    buf_is_line: bool,
}

impl LineReader {
    pub fn new(max: usize) -> Self {
        LineReader {
            buf: Vec::new(),
            held: 0,
            last: 0,
            max: max.max(1),
            resync: false,
            buf_is_line: false,
        }
    }

    /// The next complete line of `input`, advancing `input` past it. `None` once `input` is
    /// used up; an unfinished line is kept for the next call.
    pub fn next_line<'s, 'i: 's>(&'s mut self, input: &mut &'i [u8]) -> Option<Line<'s>> {
        if self.buf_is_line {
            self.clear();
        }
        loop {
            let Some(nl) = memchr::memchr(b'\n', input) else {
                self.hold(input);
                *input = &[];
                return None;
            };
            let (head, rest) = input.split_at(nl);
            *input = rest.get(1..).unwrap_or_default();
            if self.resync {
                self.resync = false;
                self.clear();
                continue;
            }
            if self.held == 0 {
                return Some(self.line_in_chunk(head));
            }
            self.hold(head);
            return Some(self.line_in_buf());
        }
    }

    /// Consume up to `*remaining` raw bytes (a BDAT chunk, an IMAP literal, a body counted by
    /// length) from what is held and from `input`, without looking at them.
    pub fn skip_raw(&mut self, remaining: &mut u64, input: &mut &[u8]) {
        self.skip_raw_seen(remaining, input, |_| {});
    }

    /// [`LineReader::skip_raw`], showing the bytes consumed to `seen` in order (held bytes the
    /// buffer could not keep show as [`Raw::Lost`]).
    pub fn skip_raw_seen(
        &mut self,
        remaining: &mut u64,
        input: &mut &[u8],
        mut seen: impl FnMut(Raw<'_>),
    ) {
        if self.buf_is_line {
            self.clear();
        }
        let held = self.held.min(clamp(*remaining));
        if held > 0 {
            let kept = held.min(self.buf.len());
            seen(Raw::Bytes(self.buf.get(..kept).unwrap_or_default()));
            if kept < held {
                seen(Raw::Lost);
            }
            self.buf.drain(..kept);
            self.held -= held;
            *remaining -= held as u64;
        }
        let n = input.len().min(clamp(*remaining));
        let (taken, rest) = input.split_at(n);
        if !taken.is_empty() {
            seen(Raw::Bytes(taken));
        }
        *input = rest;
        *remaining -= n as u64;
    }

    /// Bytes are missing from the stream: drop the partial line and resync at the next LF.
    pub fn reset(&mut self) {
        self.clear();
        self.resync = true;
    }

    /// Resyncing after a gap: whether the bytes since the gap (those held, then `input`)
    /// begin with `prefix`, however the stream was cut; false while too few have come to
    /// tell, or once more came than `buf` keeps.
    pub fn resumes_with(&self, input: &[u8], prefix: &[u8]) -> bool {
        if !self.resync || self.held > self.buf.len() {
            return false;
        }
        self.buf
            .iter()
            .chain(input)
            .take(prefix.len())
            .eq(prefix.iter())
    }

    /// Bytes of the unfinished line (or, resyncing, since the gap) held so far.
    pub fn held_len(&self) -> usize {
        self.held
    }

    /// The stream is known to be at a line start again although a gap came before (the peer's
    /// reply shows the lost line was whole): stop resyncing.
    pub fn at_line_start(&mut self) {
        if self.resync {
            // What was held since the gap ended the lost line.
            self.clear();
        }
        self.resync = false;
    }

    /// After a gap, data resumes at a segment's start. When its first line is one that only
    /// starts a line (a command or reply the dialogue recognises, `starts_a_line`), the gap
    /// ended at a line end: read it rather than drop it as a lost line's tail. That line may
    /// come in pieces: what is held of it (all of it since the gap, which `reset` cleared)
    /// and `input` up to its LF are judged together, so the verdict is the same however the
    /// stream was cut.
    pub fn resume_at(&mut self, input: &[u8], starts_a_line: impl Fn(&[u8]) -> bool) {
        if !self.resync {
            return;
        }
        let room = self.max.saturating_sub(self.held);
        let Some(nl) = memchr::memchr(b'\n', input.get(..room).unwrap_or(input)) else {
            return;
        };
        let head = input.get(..nl).unwrap_or_default();
        let judge = |line: &[u8]| starts_a_line(line.strip_suffix(b"\r").unwrap_or(line));
        let whole = if self.held == 0 {
            judge(head)
        } else {
            judge(&[self.buf.as_slice(), head].concat())
        };
        if whole {
            self.resync = false;
        }
    }

    /// After a gap, drop the rest of the lost line from `input`, through its LF, so that the
    /// caller sees what follows at a line start (a TLS record, say) before reading the next
    /// line. Does nothing when not resyncing.
    pub fn drop_lost_tail(&mut self, input: &mut &[u8]) {
        if !self.resync {
            return;
        }
        match memchr::memchr(b'\n', input) {
            Some(nl) => {
                *input = input.get(nl + 1..).unwrap_or_default();
                self.resync = false;
                self.clear();
            }
            None => {
                self.hold(input);
                *input = &[];
            }
        }
    }

    /// True while an unfinished line is held.
    pub fn has_partial(&self) -> bool {
        self.held > 0 && !self.buf_is_line
    }

    fn line_in_chunk<'i>(&self, head: &'i [u8]) -> Line<'i> {
        let (text, bare_lf) = match head.strip_suffix(b"\r") {
            Some(t) => (t, false),
            None => (head, true),
        };
        Line {
            text: text.get(..self.max).unwrap_or(text),
            bare_lf,
            too_long: text.len() > self.max,
        }
    }

    fn line_in_buf(&mut self) -> Line<'_> {
        let cr = self.last == b'\r';
        let len = self.held - usize::from(cr);
        self.buf_is_line = true;
        let keep = len.min(self.max).min(self.buf.len());
        Line {
            text: self.buf.get(..keep).unwrap_or_default(),
            bare_lf: !cr,
            too_long: len > self.max,
        }
    }

    /// Keep the start of an unfinished line. While resyncing too: what follows a gap may
    /// turn out to be a whole line (`resume_at`); if not, its LF drops it.
    fn hold(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let room = (self.max + 1).saturating_sub(self.buf.len());
        self.buf
            .extend_from_slice(bytes.get(..room).unwrap_or(bytes));
        self.held = self.held.saturating_add(bytes.len());
        self.last = bytes.last().copied().unwrap_or(self.last);
    }

    fn clear(&mut self) {
        self.buf.clear();
        self.held = 0;
        self.last = 0;
        self.buf_is_line = false;
    }
}

fn clamp(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feed `chunks` one by one; collect (text, bare_lf, too_long) of every line.
    fn lines(max: usize, chunks: &[&[u8]]) -> Vec<(String, bool, bool)> {
        let mut r = LineReader::new(max);
        let mut out = Vec::new();
        for chunk in chunks {
            let mut input = *chunk;
            while let Some(l) = r.next_line(&mut input) {
                out.push((
                    String::from_utf8_lossy(l.text).into_owned(),
                    l.bare_lf,
                    l.too_long,
                ));
            }
        }
        out
    }

    #[test]
    fn lines_within_one_chunk() {
        let got = lines(512, &[b"220 hi\r\n250 ok\r\n"]);
        assert_eq!(
            got,
            [
                ("220 hi".into(), false, false),
                ("250 ok".into(), false, false)
            ]
        );
    }

    #[test]
    fn line_split_byte_by_byte() {
        let text = b"220 2.0.0 Ready to start TLS\r\n";
        let chunks: Vec<&[u8]> = text.chunks(1).collect();
        let got = lines(512, &chunks);
        assert_eq!(got, [("220 2.0.0 Ready to start TLS".into(), false, false)]);
    }

    #[test]
    fn crlf_split_between_chunks_is_not_bare() {
        let got = lines(512, &[b"EHLO a\r", b"\nQUIT\r\n"]);
        assert_eq!(
            got,
            [
                ("EHLO a".into(), false, false),
                ("QUIT".into(), false, false)
            ]
        );
    }

    #[test]
    fn bare_lf_is_flagged() {
        let got = lines(512, &[b"HELO x\nQUIT\r\n", b"ab", b"c\n"]);
        assert_eq!(
            got,
            [
                ("HELO x".into(), true, false),
                ("QUIT".into(), false, false),
                ("abc".into(), true, false)
            ]
        );
    }

    #[test]
    fn over_long_line_is_cut_and_flagged_in_one_chunk_and_across_chunks() {
        let long = [b'a'; 20];
        assert_eq!(
            lines(8, &[&long, b"\r\n"]),
            [("aaaaaaaa".into(), false, true)]
        );
        let mut one = long.to_vec();
        one.extend(b"\r\nok\r\n");
        assert_eq!(
            lines(8, &[&one]),
            [
                ("aaaaaaaa".into(), false, true),
                ("ok".into(), false, false)
            ]
        );
    }

    #[test]
    fn held_bytes_stay_bounded_for_a_megabyte_line() {
        let mut r = LineReader::new(1000);
        let chunk = [b'x'; 1460];
        for _ in 0..720 {
            let mut input = &chunk[..];
            assert!(r.next_line(&mut input).is_none());
        }
        assert!(r.buf.len() <= 1001);
        let mut end = &b"\r\n"[..];
        let l = r.next_line(&mut end).unwrap();
        assert_eq!((l.text.len(), l.too_long), (1000, true));
    }

    #[test]
    fn reset_resyncs_at_the_next_line_end() {
        let mut r = LineReader::new(512);
        let mut input = &b"MAIL FROM:<a"[..];
        assert!(r.next_line(&mut input).is_none());
        r.reset();
        let mut input = &b"tail of something\r\nRCPT TO:<b>\r\n"[..];
        let l = r.next_line(&mut input).unwrap();
        assert_eq!(l.text, b"RCPT TO:<b>");
    }

    #[test]
    fn the_first_line_after_a_gap_is_judged_whole_however_it_is_cut() {
        let after_gap = b"* OK ready\r\nnext\r\n";
        let reply = |l: &[u8]| l.starts_with(b"* OK");
        for cut in 0..after_gap.len() {
            let mut r = LineReader::new(512);
            r.reset();
            let mut lines = Vec::new();
            for piece in [&after_gap[..cut], &after_gap[cut..]] {
                r.resume_at(piece, reply);
                let mut input = piece;
                while let Some(l) = r.next_line(&mut input) {
                    lines.push(l.text.to_vec());
                }
            }
            assert_eq!(
                lines,
                [b"* OK ready".to_vec(), b"next".to_vec()],
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn skip_raw_takes_held_then_input() {
        let mut r = LineReader::new(512);
        let mut input = &b"BDAT 10 LAST\r\n0123"[..];
        assert_eq!(r.next_line(&mut input).unwrap().text, b"BDAT 10 LAST");
        assert!(r.next_line(&mut input).is_none()); // "0123" held
        let mut remaining = 10;
        let mut more = &b"456789QUIT\r\n"[..];
        r.skip_raw(&mut remaining, &mut more);
        assert_eq!(remaining, 0);
        assert_eq!(more, b"QUIT\r\n");
        assert_eq!(r.next_line(&mut more).unwrap().text, b"QUIT");
    }
}
