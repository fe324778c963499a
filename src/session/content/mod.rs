//! The end-to-end protection of one message (issue 19): OpenPGP or S/MIME, encrypted or
//! signed, or neither, from the message's top-level header and the first line of its body.
//!
//! A [`ContentClassifier`] is fed a message's bytes as they cross (un-dot-stuffed by the
//! caller; CRLF or LF lines; cut anywhere) and keeps no mail text: while the header section
//! streams past it holds only the values of `Content-Type`, `Content-Transfer-Encoding` and
//! `Content-Disposition` (`header`), then at most a 64-byte first body line (`body`).
//!
//! # What decides
//! - `multipart/encrypted` with `protocol="application/pgp-encrypted"`: `pgp_encrypted`
//!   (RFC 3156 §4); with another protocol, `none`.
//! - `multipart/signed` with `protocol="application/pgp-signature"`: `pgp_signed`; with
//!   `application/pkcs7-signature` or `application/x-pkcs7-signature`: `smime_signed`.
//! - `application/(x-)pkcs7-mime`: `smime-type` `enveloped-data` or `authEnveloped-data` is
//!   `smime_encrypted`, `signed-data` is `smime_signed`, `certs-only` is `none`, any other
//!   value (`compressed-data`) `unknown` (RFC 8551 §3.2.2). Without `smime-type` the CMS
//!   content type at the start of the body decides (signedData, envelopedData,
//!   authEnvelopedData; base64 or binary); if it cannot be read, the file name (`name`, or
//!   Content-Disposition's `filename`): `.p7s` is `smime_signed`, `.p7c` `none`, and `.p7m`
//!   `unknown`, since RFC 8551 §3.2.1 gives `.p7m` to signed-data and enveloped-data alike.
//! - `text/plain`, or no `Content-Type`, or one that does not parse (RFC 2045 §5.2 defaults
//!   it to text/plain): the first non-blank line of the body, after transfer decoding
//!   (quoted-printable and base64 can carry the armor line, so both are decoded), is
//!   `-----BEGIN PGP MESSAGE-----` (`pgp_encrypted`) or `-----BEGIN PGP SIGNED MESSAGE-----`
//!   (`pgp_signed`), at the start of the line, trailing whitespace allowed. An armor block
//!   further down, or indented, is not. If the first [`BODY_LOOK_MAX`] body bytes hold no
//!   such line end, what they hold decides.
//! - Anything else: `none`. The outer layer decides, so sign-then-encrypt (what RFC 3156
//!   §6.1 and RFC 8551 §3.7 describe, and gpg and S/MIME clients do) counts as encrypted;
//!   encrypt-then-sign shows as signed.
//!
//! Only these header fields are read: a Subject or any other field naming these types
//! changes nothing, nor does a `MIME-Version` (its absence is not held against the
//! message). RFC 2231 encoded parameters are not decoded.
//!
//! # Unknown
//! A gap ([`ContentClassifier::gap`]) in the header section or before the body's first line
//! is read; a header section over [`HEADER_MAX`] bytes, a kept field over [`FIELD_MAX`], a
//! second `Content-Type`; a message that ends before its header section does.

mod body;
mod class;
mod decide;
mod decoder;
mod header;
mod syntax;
#[cfg(test)]
mod tests;

pub use body::{ARMOR_LINE_MAX, BODY_LOOK_MAX};
pub use class::{ContentClass, ContentCounts};
pub use header::{FIELD_MAX, HEADER_MAX};

use body::Look;
use decide::Verdict;
use decoder::Decoder;
use header::{Header, Progress};

/// Classifies one message as its bytes stream past. See the module docs for the rules.
#[derive(Clone, Debug)]
pub struct ContentClassifier {
    stage: Stage,
}

#[derive(Clone, Debug)]
enum Stage {
    Header(Header),
    Body(Look),
    Done(ContentClass),
}

impl Default for ContentClassifier {
    fn default() -> Self {
        Self::new()
    }
}

impl ContentClassifier {
    pub fn new() -> Self {
        ContentClassifier {
            stage: Stage::Header(Header::default()),
        }
    }

    /// The next bytes of the message.
    pub fn feed(&mut self, bytes: &[u8]) {
        match &mut self.stage {
            Stage::Done(_) => {}
            Stage::Body(look) => {
                if let Some(class) = look.feed(bytes) {
                    self.stage = Stage::Done(class);
                }
            }
            Stage::Header(header) => match header.feed(bytes) {
                Progress::More => {}
                Progress::Unknown => self.stage = Stage::Done(ContentClass::Unknown),
                Progress::End { consumed, replay } => {
                    let (verdict, encoding) = header.verdict();
                    let mut first = [0u8; header::NAME_MAX];
                    let kept = header.replay();
                    let n = if replay {
                        kept.len().min(first.len())
                    } else {
                        0
                    };
                    if let (Some(dst), Some(src)) = (first.get_mut(..n), kept.get(..n)) {
                        dst.copy_from_slice(src);
                    }
                    let decoder = Decoder::new(encoding);
                    self.stage = match verdict {
                        Verdict::Class(class) => Stage::Done(class),
                        Verdict::InlinePgp => Stage::Body(Look::inline_pgp(decoder)),
                        Verdict::Cms { fallback } => Stage::Body(Look::cms(decoder, fallback)),
                    };
                    self.feed(first.get(..n).unwrap_or_default());
                    self.feed(bytes.get(consumed..).unwrap_or_default());
                }
            },
        }
    }

    /// Bytes of the message were lost here.
    pub fn gap(&mut self) {
        if !matches!(self.stage, Stage::Done(_)) {
            self.stage = Stage::Done(ContentClass::Unknown);
        }
    }

    /// The line being fed lost its end (a line reader cut it at its limit); the next bytes
    /// fed are those after the line's end.
    pub fn cut_line(&mut self) {
        match &self.stage {
            Stage::Header(h) if h.cut_is_harmless() => {}
            Stage::Header(_) => self.stage = Stage::Done(ContentClass::Unknown),
            // Line limits are longer than the look at a body: it is over already.
            Stage::Body(look) => self.stage = Stage::Done(look.conclude()),
            Stage::Done(_) => {}
        }
    }

    /// Known already: later bytes cannot change it (callers may stop feeding).
    pub fn decided(&self) -> bool {
        matches!(self.stage, Stage::Done(_))
    }

    /// The message ended here.
    pub fn finish(self) -> ContentClass {
        match self.stage {
            Stage::Header(_) => ContentClass::Unknown,
            Stage::Body(look) => look.conclude(),
            Stage::Done(class) => class,
        }
    }
}
