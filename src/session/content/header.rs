//! The header section of one message, scanned a byte at a time (RFC 5322 §2.2, §3.2.2):
//! field names matched case-insensitively, folded lines unfolded. Only the values of
//! `Content-Type`, `Content-Transfer-Encoding` and `Content-Disposition` are kept, each up to
//! [`FIELD_MAX`] bytes; every other field is skipped as it streams past.
//!
//! The section ends at an empty line, or, as Postfix and Python's `email` read it, at the
//! first line that is not a header field (no colon after a name): that line is the body's
//! first. A second `Content-Type` makes the message `unknown`: RFC 2045 allows one, and
//! readers disagree on which of two to obey. Of two `Content-Transfer-Encoding` or
//! `Content-Disposition` fields the first counts.

use super::decide::{verdict, Verdict};
use super::syntax::{disposition_filename, ContentType, Encoding};
use super::ContentClass;

/// The longest header section read; past it the message is `unknown`.
pub const HEADER_MAX: usize = 64 * 1024;

/// The longest kept field value (unfolded); past it the message is `unknown`.
pub const FIELD_MAX: usize = 8 * 1024;

/// Field name bytes kept: enough for the names looked for, and to replay a non-header line
/// that short (a longer line is no armor line, see `body`).
pub const NAME_MAX: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Other,
    ContentType,
    Encoding,
    Disposition,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum At {
    LineStart,
    /// A CR at a line start: the empty line, if LF follows.
    LineStartCr,
    /// In a field name; `wsp` once whitespace followed it (obsolete syntax before `:`).
    Name {
        wsp: bool,
    },
    Value,
}

/// What a chunk did to the header section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Still inside it.
    More,
    /// It ended after `consumed` bytes of the chunk; when `replay`, the bytes
    /// [`Header::replay`] returns began the body's first line.
    End { consumed: usize, replay: bool },
    /// Past a cap.
    Unknown,
}

#[derive(Clone, Debug)]
pub struct Header {
    at: At,
    field: Field,
    name: [u8; NAME_MAX],
    /// Name bytes seen on this line (may exceed what `name` holds).
    name_len: usize,
    bytes: usize,
    content_type: Option<Vec<u8>>,
    encoding: Option<Vec<u8>>,
    disposition: Option<Vec<u8>>,
    duplicate_content_type: bool,
    overflow: bool,
}

impl Default for Header {
    fn default() -> Self {
        Header {
            at: At::LineStart,
            field: Field::Other,
            name: [0; NAME_MAX],
            name_len: 0,
            bytes: 0,
            content_type: None,
            encoding: None,
            disposition: None,
            duplicate_content_type: false,
            overflow: false,
        }
    }
}

fn is_wsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// RFC 5322 `ftext`: printable US-ASCII but `:`.
fn is_ftext(b: u8) -> bool {
    (33..=126).contains(&b) && b != b':'
}

impl Header {
    pub fn feed(&mut self, bytes: &[u8]) -> Progress {
        for (i, &b) in bytes.iter().enumerate() {
            self.bytes += 1;
            if self.bytes > HEADER_MAX {
                return Progress::Unknown;
            }
            match self.byte(b) {
                Some(false) => {
                    return Progress::End {
                        consumed: i + 1,
                        replay: false,
                    }
                }
                // The byte is the body's: not consumed.
                Some(true) => {
                    return Progress::End {
                        consumed: i,
                        replay: true,
                    }
                }
                None => {}
            }
            if self.overflow {
                return Progress::Unknown;
            }
        }
        Progress::More
    }

    /// One byte; `Some(replay)` when the section ends with it (see [`Progress::End`]).
    fn byte(&mut self, b: u8) -> Option<bool> {
        match self.at {
            At::LineStart => match b {
                b'\n' => return Some(false),
                b'\r' => self.at = At::LineStartCr,
                // A folded line continues the field before.
                _ if is_wsp(b) => {
                    self.at = At::Value;
                    self.keep(b);
                }
                _ => {
                    self.name_len = 0;
                    self.at = At::Name { wsp: false };
                    return self.name_byte(b);
                }
            },
            At::LineStartCr => {
                if b == b'\n' {
                    return Some(false);
                }
                self.name_len = 0;
                self.push_name(b'\r');
                return Some(true);
            }
            At::Name { .. } => return self.name_byte(b),
            At::Value => match b {
                b'\n' => self.at = At::LineStart,
                b'\r' => {}
                _ => self.keep(b),
            },
        }
        None
    }

    fn name_byte(&mut self, b: u8) -> Option<bool> {
        let At::Name { wsp } = self.at else {
            return None;
        };
        match b {
            b':' => {
                self.field = self.resolve();
                self.at = At::Value;
                None
            }
            _ if is_wsp(b) => {
                self.at = At::Name { wsp: true };
                self.push_name(b);
                None
            }
            _ if is_ftext(b) && !wsp => {
                self.push_name(b);
                None
            }
            // Not a header field: the body begins with this line.
            _ => Some(true),
        }
    }

    fn push_name(&mut self, b: u8) {
        if let Some(slot) = self.name.get_mut(self.name_len) {
            *slot = b;
        }
        self.name_len += 1;
    }

    /// The bytes of a non-header line before the one that showed it is not a field.
    pub fn replay(&self) -> &[u8] {
        self.name
            .get(..self.name_len.min(NAME_MAX))
            .unwrap_or_default()
    }

    fn resolve(&mut self) -> Field {
        if self.name_len > NAME_MAX {
            return Field::Other;
        }
        let name = self.replay();
        let end = name.iter().rposition(|&b| !is_wsp(b)).map_or(0, |i| i + 1);
        let name = name.get(..end).unwrap_or_default();
        let (field, slot) = if name.eq_ignore_ascii_case(b"content-type") {
            (Field::ContentType, &mut self.content_type)
        } else if name.eq_ignore_ascii_case(b"content-transfer-encoding") {
            (Field::Encoding, &mut self.encoding)
        } else if name.eq_ignore_ascii_case(b"content-disposition") {
            (Field::Disposition, &mut self.disposition)
        } else {
            return Field::Other;
        };
        if slot.is_some() {
            if field == Field::ContentType {
                self.duplicate_content_type = true;
            }
            return Field::Other;
        }
        *slot = Some(Vec::new());
        field
    }

    /// A value byte of the current field, kept if the field is one looked at.
    fn keep(&mut self, b: u8) {
        let slot = match self.field {
            Field::Other => return,
            Field::ContentType => &mut self.content_type,
            Field::Encoding => &mut self.encoding,
            Field::Disposition => &mut self.disposition,
        };
        if let Some(value) = slot {
            if value.len() < FIELD_MAX {
                value.push(b);
            } else {
                self.overflow = true;
            }
        }
    }

    /// A line lost its end (a line reader cut it at its limit): harmless in a field not
    /// looked at, else the message is `unknown`.
    pub fn cut_is_harmless(&self) -> bool {
        self.at == At::Value && self.field == Field::Other
    }

    /// What the complete section says, and the body's transfer encoding.
    pub fn verdict(&self) -> (Verdict, Encoding) {
        if self.duplicate_content_type || self.overflow {
            return (Verdict::Class(ContentClass::Unknown), Encoding::Identity);
        }
        let ct = self
            .content_type
            .as_deref()
            .map(ContentType::parse)
            .unwrap_or_default();
        let filename = self.disposition.as_deref().and_then(disposition_filename);
        let encoding = self
            .encoding
            .as_deref()
            .map(Encoding::parse)
            .unwrap_or_default();
        (verdict(&ct, filename.as_deref()), encoding)
    }
}
