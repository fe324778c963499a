//! Well-known finite-field Diffie-Hellman primes, so that a TLS ≤ 1.2 DHE key exchange is
//! named by its group (`ffdhe2048`, `modp2048`) rather than only by its size.
//!
//! The table is data: `cipher/dh-primes.txt` holds the primes as their RFCs print them (RFC
//! 2409 §6 `modp768`, `modp1024`; RFC 3526 §2–7 `modp1536` … `modp8192`; RFC 7919 appendix A
//! `ffdhe2048` … `ffdhe8192`), read once at first use. A prime not in it is custom: the
//! record names it `dh<bits>`.

use std::sync::OnceLock;

const PRIMES_TXT: &str = include_str!("cipher/dh-primes.txt");

/// A well-known group: its index in the table (a closed set, small enough for a byte).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DhGroup(u8);

struct Prime {
    name: &'static str,
    bytes: Vec<u8>,
}

fn table() -> &'static [Prime] {
    static TABLE: OnceLock<Vec<Prime>> = OnceLock::new();
    TABLE.get_or_init(|| parse(PRIMES_TXT))
}

/// Blocks of `[name] source`, a `formula` line, then the prime in hexadecimal on indented
/// lines; `#` lines are comments.
fn parse(text: &'static str) -> Vec<Prime> {
    let mut out: Vec<Prime> = Vec::new();
    let mut hex = String::new();
    let mut name: Option<&'static str> = None;
    let flush = |name: Option<&'static str>, hex: &mut String, out: &mut Vec<Prime>| {
        if let Some(n) = name {
            if let Some(bytes) = decode_hex(hex) {
                out.push(Prime { name: n, bytes });
            }
        }
        hex.clear();
    };
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix('[') {
            flush(name.take(), &mut hex, &mut out);
            name = rest.split(']').next();
        } else if line.starts_with(char::is_whitespace) && name.is_some() {
            hex.extend(line.chars().filter(|c| !c.is_whitespace()));
        }
    }
    flush(name, &mut hex, &mut out);
    out
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = hex
        .chars()
        .map(|c| c.to_digit(16).and_then(|d| u8::try_from(d).ok()))
        .collect::<Option<_>>()?;
    if digits.is_empty() || digits.len() % 2 != 0 {
        return None;
    }
    Some(
        digits
            .chunks(2)
            .map(|p| p.iter().fold(0, |a, &d| a << 4 | d))
            .collect(),
    )
}

impl DhGroup {
    /// The group whose prime is `p` (big-endian, leading zeros allowed).
    pub fn of_prime(p: &[u8]) -> Option<DhGroup> {
        let start = p.iter().position(|&b| b != 0)?;
        let p = p.get(start..)?;
        let i = table().iter().position(|w| w.bytes == p)?;
        u8::try_from(i).ok().map(DhGroup)
    }

    /// Its name, as `group` in the record (`ffdhe2048`, `modp1024`).
    pub fn name(self) -> &'static str {
        table().get(usize::from(self.0)).map_or("dh", |w| w.name)
    }

    /// Every well-known group.
    pub fn all() -> impl Iterator<Item = DhGroup> {
        (0..table().len()).filter_map(|i| u8::try_from(i).ok().map(DhGroup))
    }

    /// Every group name (a closed set, for labels).
    pub fn names() -> impl Iterator<Item = &'static str> {
        table().iter().map(|w| w.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_holds_every_rfc_group_at_its_size() {
        let sizes: Vec<(&str, usize)> = table()
            .iter()
            .map(|p| (p.name, p.bytes.len() * 8))
            .collect();
        assert_eq!(
            sizes,
            [
                ("modp768", 768),
                ("modp1024", 1024),
                ("modp1536", 1536),
                ("modp2048", 2048),
                ("modp3072", 3072),
                ("modp4096", 4096),
                ("modp6144", 6144),
                ("modp8192", 8192),
                ("ffdhe2048", 2048),
                ("ffdhe3072", 3072),
                ("ffdhe4096", 4096),
                ("ffdhe6144", 6144),
                ("ffdhe8192", 8192),
            ]
        );
        // Every one of them is a safe-prime of the IKE/FFDHE shape: all ones at both ends.
        for p in table() {
            assert_eq!(p.bytes[..8], [0xff; 8], "{}", p.name);
            assert_eq!(p.bytes[p.bytes.len() - 8..], [0xff; 8], "{}", p.name);
        }
    }

    #[test]
    fn a_prime_is_named_with_or_without_a_leading_zero() {
        let ffdhe2048 = &table()[8].bytes;
        assert_eq!(
            DhGroup::of_prime(ffdhe2048).map(DhGroup::name),
            Some("ffdhe2048")
        );
        let mut padded = vec![0];
        padded.extend_from_slice(ffdhe2048);
        assert_eq!(
            DhGroup::of_prime(&padded).map(DhGroup::name),
            Some("ffdhe2048")
        );
        let mut custom = ffdhe2048.clone();
        custom[100] ^= 1;
        assert_eq!(DhGroup::of_prime(&custom), None);
        assert_eq!(DhGroup::of_prime(&[]), None);
    }

    #[test]
    fn the_copy_matches_the_fixture_generators_table() {
        let generator = include_str!("../../fixtures/gen/dh-primes.txt");
        assert_eq!(PRIMES_TXT, generator);
    }
}
