//! The look at the start of a body: its first non-blank line (inline OpenPGP), or the first
//! bytes of a CMS object. Bounded by [`BODY_LOOK_MAX`] body bytes; nothing is kept but a line
//! of at most [`ARMOR_LINE_MAX`] bytes.

use super::class::ContentClass;
use super::decide::{cms_class, CMS_PEEK};
use super::decoder::Decoder;

/// Body bytes (as sent, before transfer decoding) looked at before the look concludes.
pub const BODY_LOOK_MAX: usize = 1024;

/// The longest first line still read as an armor header line (trailing whitespace included).
pub const ARMOR_LINE_MAX: usize = 64;

const PGP_MESSAGE: &[u8] = b"-----BEGIN PGP MESSAGE-----";
const PGP_SIGNED: &[u8] = b"-----BEGIN PGP SIGNED MESSAGE-----";

#[derive(Clone, Debug)]
pub struct Look {
    decoder: Decoder,
    seen: usize,
    what: What,
}

#[derive(Clone, Debug)]
enum What {
    /// Blank lines so far; `indented` when the current line began with whitespace.
    Blank { indented: bool },
    /// The first non-blank line, while it may still be an armor line.
    FirstLine {
        buf: [u8; ARMOR_LINE_MAX],
        len: usize,
    },
    /// The first bytes of a CMS ContentInfo.
    Cms {
        buf: [u8; CMS_PEEK],
        len: usize,
        fallback: ContentClass,
    },
}

impl Look {
    pub fn inline_pgp(decoder: Decoder) -> Look {
        Look {
            decoder,
            seen: 0,
            what: What::Blank { indented: false },
        }
    }

    pub fn cms(decoder: Decoder, fallback: ContentClass) -> Look {
        Look {
            decoder,
            seen: 0,
            what: What::Cms {
                buf: [0; CMS_PEEK],
                len: 0,
                fallback,
            },
        }
    }

    /// Feed body bytes; `Some` once the class is known (the look then ends).
    pub fn feed(&mut self, bytes: &[u8]) -> Option<ContentClass> {
        for &b in bytes {
            self.seen += 1;
            let out = self.decoder.push(b);
            for &d in out.as_slice() {
                if let Some(class) = self.decoded(d) {
                    return Some(class);
                }
            }
            if self.seen >= BODY_LOOK_MAX {
                return Some(self.conclude());
            }
        }
        None
    }

    fn decoded(&mut self, b: u8) -> Option<ContentClass> {
        match &mut self.what {
            What::Blank { indented } => match b {
                b'\n' => *indented = false,
                b' ' | b'\t' => *indented = true,
                b'\r' => {}
                // A first line that starts with whitespace is not an armor line.
                _ if *indented => return Some(ContentClass::None),
                _ => {
                    let mut buf = [0; ARMOR_LINE_MAX];
                    buf[0] = b;
                    self.what = What::FirstLine { buf, len: 1 };
                }
            },
            What::FirstLine { buf, len } => {
                if b == b'\n' {
                    return Some(armor(buf.get(..*len).unwrap_or_default()));
                }
                let slot = buf.get_mut(*len)?;
                *slot = b;
                *len += 1;
                if *len == ARMOR_LINE_MAX {
                    return Some(ContentClass::None);
                }
            }
            What::Cms { buf, len, .. } => {
                let slot = buf.get_mut(*len)?;
                *slot = b;
                *len += 1;
                if *len == CMS_PEEK {
                    return Some(self.conclude());
                }
            }
        }
        None
    }

    /// The class from what was seen: at the end of the message, or of the look.
    pub fn conclude(&self) -> ContentClass {
        match &self.what {
            What::Blank { .. } => ContentClass::None,
            What::FirstLine { buf, len } => armor(buf.get(..*len).unwrap_or_default()),
            What::Cms { buf, len, fallback } => {
                cms_class(buf.get(..*len).unwrap_or_default()).unwrap_or(*fallback)
            }
        }
    }
}

/// An armor header line (RFC 4880 §6.2, §7), trailing whitespace allowed as GnuPG does.
fn armor(line: &[u8]) -> ContentClass {
    let end = line
        .iter()
        .rposition(|&b| !matches!(b, b' ' | b'\t' | b'\r'))
        .map_or(0, |i| i + 1);
    match line.get(..end).unwrap_or_default() {
        PGP_MESSAGE => ContentClass::PgpEncrypted,
        PGP_SIGNED => ContentClass::PgpSigned,
        _ => ContentClass::None,
    }
}
