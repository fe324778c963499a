//! JA4 TLS client fingerprint (FoxIO JA4 specification), e.g.
//! `t13d1516h2_8daaf6152771_e5627efa2ab1`:
//! - `a`: `t` (TCP), the highest offered version (`13`, `12`, `11`, `10`, `s3`, `s2`, `00`),
//!   `d` with SNI or `i` without, the number of cipher suites and of extensions (two digits,
//!   at most 99), and the first and last characters of the first ALPN value (`00` if none;
//!   first and last hex digit when either byte is not alphanumeric);
//! - `b`: SHA-256 of the sorted suites (`1301,1302,…`), first 12 hex digits;
//! - `c`: SHA-256 of the sorted extensions without SNI and ALPN, then `_` and the signature
//!   algorithms in the order sent (no `_` when there are none), first 12 hex digits.
//!
//! GREASE values (RFC 8701) are left out everywhere; an empty list hashes to `000000000000`.

use super::client_hello::{ClientHello, EXT_ALPN, EXT_SERVER_NAME};
use crate::session::cipher::is_grease;
use sha2::{Digest, Sha256};

pub(super) fn ja4(ch: &ClientHello) -> String {
    let suites: Vec<u16> = ch
        .suites
        .iter()
        .copied()
        .filter(|v| !is_grease(*v))
        .collect();
    let exts: Vec<u16> = ch
        .extensions
        .iter()
        .copied()
        .filter(|v| !is_grease(*v))
        .collect();
    let sni = if exts.contains(&EXT_SERVER_NAME) {
        b'd'
    } else {
        b'i'
    };
    // Built byte by byte: this runs once per handshake and `format!` was most of its cost.
    let mut out = Vec::with_capacity(36);
    out.push(b't');
    out.extend_from_slice(version(ch.max_version()).as_bytes());
    out.push(sni);
    two_digits(&mut out, suites.len());
    two_digits(&mut out, exts.len());
    out.extend_from_slice(&alpn(ch.alpn_first.as_deref()));
    out.push(b'_');

    let mut text =
        Vec::with_capacity(5 * (suites.len() + exts.len() + ch.signature_algorithms.len()));
    let mut sorted_suites = suites;
    sorted_suites.sort_unstable();
    hex_list(&mut text, &sorted_suites);
    hash12(&mut out, &text);
    out.push(b'_');

    let mut sorted_exts: Vec<u16> = exts
        .into_iter()
        .filter(|e| *e != EXT_SERVER_NAME && *e != EXT_ALPN)
        .collect();
    sorted_exts.sort_unstable();
    text.clear();
    if !sorted_exts.is_empty() {
        hex_list(&mut text, &sorted_exts);
        let sigs = ch
            .signature_algorithms
            .iter()
            .copied()
            .filter(|v| !is_grease(*v));
        let mark = text.len();
        text.push(b'_');
        for (i, v) in sigs.enumerate() {
            if i > 0 {
                text.push(b',');
            }
            hex4(&mut text, v);
        }
        if text.len() == mark + 1 {
            text.truncate(mark);
        }
    }
    hash12(&mut out, &text);
    // Every byte pushed above is ASCII.
    String::from_utf8(out).unwrap_or_default()
}

fn version(v: u16) -> &'static str {
    match v {
        0x0304 => "13",
        0x0303 => "12",
        0x0302 => "11",
        0x0301 => "10",
        0x0300 => "s3",
        0x0002 => "s2",
        _ => "00",
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex_digit(nibble: u8) -> u8 {
    HEX.get(usize::from(nibble & 0xf)).copied().unwrap_or(b'0')
}

/// At most 99, as two digits.
fn two_digits(out: &mut Vec<u8>, n: usize) {
    let n = n.min(99) as u8;
    out.push(b'0' + n / 10);
    out.push(b'0' + n % 10);
}

fn alpn(first: Option<&[u8]>) -> [u8; 2] {
    let Some((&f, &l)) = first.and_then(|v| v.first().zip(v.last())) else {
        return *b"00";
    };
    if f.is_ascii_alphanumeric() && l.is_ascii_alphanumeric() {
        [f, l]
    } else {
        // First hex digit of the first byte, last hex digit of the last byte.
        [hex_digit(f >> 4), hex_digit(l)]
    }
}

fn hex4(out: &mut Vec<u8>, v: u16) {
    let [hi, lo] = v.to_be_bytes();
    out.extend_from_slice(&[
        hex_digit(hi >> 4),
        hex_digit(hi),
        hex_digit(lo >> 4),
        hex_digit(lo),
    ]);
}

/// `1301,1302,c02b`.
fn hex_list(out: &mut Vec<u8>, items: &[u16]) {
    for (i, v) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        hex4(out, *v);
    }
}

/// First 12 hex digits of SHA-256; `000000000000` for an empty text.
fn hash12(out: &mut Vec<u8>, text: &[u8]) {
    if text.is_empty() {
        out.extend_from_slice(b"000000000000");
        return;
    }
    let digest = Sha256::digest(text);
    for b in digest.iter().take(6) {
        out.extend_from_slice(&[hex_digit(b >> 4), hex_digit(*b)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the FoxIO JA4 technical details (Chrome).
    #[test]
    fn foxio_example() {
        let suites = [
            0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014,
            0x009c, 0x009d, 0x002f, 0x0035,
        ];
        let ch = ClientHello {
            legacy_version: 0x0303,
            suites: [&[0x0a0a][..], &suites].concat(),
            extensions: vec![
                0x1a1a, 0x0000, 0x0017, 0xff01, 0x000a, 0x000b, 0x0023, 0x0010, 0x0005, 0x000d,
                0x0012, 0x0033, 0x002d, 0x002b, 0x001b, 0x0015, 0x4469, 0x2a2a,
            ],
            alpn_first: Some(b"h2".to_vec()),
            supported_versions: vec![0x7a7a, 0x0304, 0x0303],
            signature_algorithms: vec![
                0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601,
            ],
            ..ClientHello::default()
        };
        assert_eq!(ja4(&ch), "t13d1516h2_8daaf6152771_e5627efa2ab1");
    }

    #[test]
    fn alpn_characters() {
        assert_eq!(&alpn(None), b"00");
        assert_eq!(&alpn(Some(b"")), b"00");
        assert_eq!(&alpn(Some(b"imap")), b"ip");
        assert_eq!(&alpn(Some(b"h")), b"hh");
        assert_eq!(&alpn(Some(&[0xab, 0xcd])), b"ad");
    }

    #[test]
    fn empty_lists() {
        let ch = ClientHello {
            legacy_version: 0x0301,
            ..ClientHello::default()
        };
        assert_eq!(ja4(&ch), "t10i000000_000000000000_000000000000");
    }
}
