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
use std::fmt::Write;

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
        'd'
    } else {
        'i'
    };
    let a = format!(
        "t{}{}{:02}{:02}{}",
        version(ch.max_version()),
        sni,
        suites.len().min(99),
        exts.len().min(99),
        alpn(ch.alpn_first.as_deref()),
    );
    let mut sorted_suites = suites;
    sorted_suites.sort_unstable();
    let b = hash12(&hex_list(&sorted_suites));
    let mut sorted_exts: Vec<u16> = exts
        .into_iter()
        .filter(|e| *e != EXT_SERVER_NAME && *e != EXT_ALPN)
        .collect();
    sorted_exts.sort_unstable();
    let c = if sorted_exts.is_empty() {
        hash12("")
    } else {
        let sigs: Vec<u16> = ch
            .signature_algorithms
            .iter()
            .copied()
            .filter(|v| !is_grease(*v))
            .collect();
        let mut text = hex_list(&sorted_exts);
        if !sigs.is_empty() {
            text.push('_');
            text.push_str(&hex_list(&sigs));
        }
        hash12(&text)
    };
    format!("{a}_{b}_{c}")
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

fn alpn(first: Option<&[u8]>) -> String {
    let Some((&f, &l)) = first.and_then(|v| v.first().zip(v.last())) else {
        return "00".to_owned();
    };
    if f.is_ascii_alphanumeric() && l.is_ascii_alphanumeric() {
        format!("{}{}", char::from(f), char::from(l))
    } else {
        let f = format!("{f:02x}");
        let l = format!("{l:02x}");
        format!("{}{}", &f[..1], &l[1..])
    }
}

fn hex_list(items: &[u16]) -> String {
    let mut s = String::with_capacity(items.len() * 5);
    for (i, v) in items.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, "{v:04x}");
    }
    s
}

/// First 12 hex digits of SHA-256; `000000000000` for an empty list.
fn hash12(text: &str) -> String {
    if text.is_empty() {
        return "000000000000".to_owned();
    }
    let digest = Sha256::digest(text.as_bytes());
    let mut s = String::with_capacity(12);
    for b in digest.iter().take(6) {
        let _ = write!(s, "{b:02x}");
    }
    s
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
        assert_eq!(alpn(None), "00");
        assert_eq!(alpn(Some(b"")), "00");
        assert_eq!(alpn(Some(b"imap")), "ip");
        assert_eq!(alpn(Some(b"h")), "hh");
        assert_eq!(alpn(Some(&[0xab, 0xcd])), "ad");
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
