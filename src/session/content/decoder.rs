//! Streaming transfer decoders for the first bytes of a body (RFC 2045 §6.7, §6.8), a byte at
//! a time with a few bits of state: the armor line of an inline OpenPGP message may come
//! quoted-printable or base64, and an S/MIME body is base64.

use super::syntax::Encoding;

/// Up to two decoded bytes from one input byte.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Out {
    bytes: [u8; 2],
    len: u8,
}

impl Out {
    fn one(b: u8) -> Out {
        Out {
            bytes: [b, 0],
            len: 1,
        }
    }

    fn two(a: u8, b: u8) -> Out {
        Out {
            bytes: [a, b],
            len: 2,
        }
    }

    pub fn as_slice(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or_default()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoder {
    Identity,
    /// `=` seen (`Eq(None)`), or `=` and one hex digit.
    Qp {
        eq: bool,
        hex: Option<u8>,
    },
    /// Bits not yet emitted, and how many; `done` after padding or a byte outside the alphabet.
    Base64 {
        acc: u32,
        bits: u8,
        done: bool,
    },
}

impl Decoder {
    pub fn new(encoding: Encoding) -> Decoder {
        match encoding {
            Encoding::Identity => Decoder::Identity,
            Encoding::QuotedPrintable => Decoder::Qp {
                eq: false,
                hex: None,
            },
            Encoding::Base64 => Decoder::Base64 {
                acc: 0,
                bits: 0,
                done: false,
            },
        }
    }

    pub fn push(&mut self, b: u8) -> Out {
        match self {
            Decoder::Identity => Out::one(b),
            Decoder::Qp { eq, hex } => qp(eq, hex, b),
            Decoder::Base64 { acc, bits, done } => base64(acc, bits, done, b),
        }
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

/// `=XX` is a byte, `=` at a line end (after optional whitespace) a soft line break; anything
/// else after `=` passes through as written (RFC 2045 §6.7 note 4's robust decoder).
fn qp(eq: &mut bool, hex: &mut Option<u8>, b: u8) -> Out {
    if !*eq {
        if b == b'=' {
            *eq = true;
            return Out::default();
        }
        return Out::one(b);
    }
    if let Some(hi) = hex.take() {
        *eq = false;
        return match hex_value(b) {
            Some(lo) => Out::one(hi << 4 | lo),
            None => Out::two(b'=', b),
        };
    }
    match b {
        b' ' | b'\t' | b'\r' => Out::default(),
        b'\n' => {
            *eq = false;
            Out::default()
        }
        _ => match hex_value(b) {
            Some(v) => {
                *hex = Some(v);
                Out::default()
            }
            None => {
                *eq = false;
                Out::two(b'=', b)
            }
        },
    }
}

fn base64(acc: &mut u32, bits: &mut u8, done: &mut bool, b: u8) -> Out {
    if *done {
        return Out::default();
    }
    let v = match b {
        b'A'..=b'Z' => b - b'A',
        b'a'..=b'z' => b - b'a' + 26,
        b'0'..=b'9' => b - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        b' ' | b'\t' | b'\r' | b'\n' => return Out::default(),
        _ => {
            *done = true;
            return Out::default();
        }
    };
    *acc = (*acc << 6 | u32::from(v)) & 0xfff;
    *bits += 6;
    if *bits >= 8 {
        *bits -= 8;
        return Out::one((*acc >> *bits) as u8);
    }
    Out::default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(encoding: Encoding, input: &[u8]) -> Vec<u8> {
        let mut d = Decoder::new(encoding);
        input
            .iter()
            .flat_map(|&b| d.push(b).as_slice().to_vec())
            .collect()
    }

    #[test]
    fn quoted_printable() {
        let qp = Encoding::QuotedPrintable;
        assert_eq!(decode(qp, b"=2D=2d-a=\r\nb= \nc=\n"), b"---abc");
        assert_eq!(decode(qp, b"a=zb=4"), b"a=zb");
        assert_eq!(decode(qp, b"=4g"), b"=g");
        assert_eq!(decode(qp, b"x\r\n"), b"x\r\n");
    }

    #[test]
    fn base64() {
        let b64 = Encoding::Base64;
        assert_eq!(decode(b64, b"LS0tLS1C\r\nRUdJTiBQ"), b"-----BEGIN P");
        assert_eq!(decode(b64, b"aGk=IGdhcmJhZ2U="), b"hi");
        assert_eq!(decode(b64, b"aGk*aGk"), b"hi");
        assert_eq!(decode(Encoding::Identity, b"=2D"), b"=2D");
    }
}
