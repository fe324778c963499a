//! Keyed, prefix-preserving pseudonyms for IP addresses (`--anonymize KEY`), so that session
//! logs (and the server inventory) can be shared without the client addresses in them.
//!
//! The construction is Crypto-PAn (Xu, Fan, Ammar, Moon: "Prefix-preserving IP address
//! anonymization", ICNP 2002), with AES-128 as the pseudorandom function, as in the authors'
//! reference implementation; IPv6 uses the same construction over 128 bits:
//!
//! - The 32-byte secret is SHA-256 of the user's KEY string. Its first 16 bytes are the AES
//!   key `K`; `pad = AES_K(second 16 bytes)`.
//! - For each bit position `i` of an address of width `w` (32 or 128), the AES input block is
//!   `pad` with its first `w` bits replaced by the address's first `i` bits followed by the
//!   pad's bits `i..w`. Bit `i` of the one-time pad is the most significant bit of `AES_K` of
//!   that block. The pseudonym is the address XOR that one-time pad.
//!
//! Bit `i` of the pseudonym depends only on bits `0..=i` of the address, so two addresses
//! sharing an `n`-bit prefix get pseudonyms sharing exactly an `n`-bit prefix; the mapping is
//! a bijection, deterministic per key, and without the key it cannot be inverted or linked
//! across keys. (A pseudonym keeps prefix structure: someone who knows a few real addresses
//! and sees their pseudonyms learns the mapping of those prefixes, as the paper discusses.)
//!
//! Ports are kept: client ports are ephemeral and say nothing about the host.

use aes::cipher::{generic_array::GenericArray, BlockEncrypt, KeyInit};
use aes::Aes128;
use sha2::{Digest, Sha256};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The pseudonym function of one key.
#[derive(Clone)]
pub struct Anonymizer {
    cipher: Aes128,
    pad: [u8; 16],
}

impl fmt::Debug for Anonymizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Anonymizer(<key>)")
    }
}

impl Anonymizer {
    /// The pseudonym function for `key` (any string; it is hashed into the 32-byte secret).
    pub fn new(key: &str) -> Anonymizer {
        let secret = Sha256::digest(key.as_bytes());
        let (k, p) = secret.split_at(16);
        let cipher = Aes128::new(GenericArray::from_slice(k));
        let mut pad = [0u8; 16];
        pad.copy_from_slice(p);
        let mut block = GenericArray::from(pad);
        cipher.encrypt_block(&mut block);
        pad.copy_from_slice(&block);
        Anonymizer { cipher, pad }
    }

    pub fn ip(&self, ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V4(a) => IpAddr::V4(self.ipv4(a)),
            IpAddr::V6(a) => IpAddr::V6(self.ipv6(a)),
        }
    }

    /// The address replaced by its pseudonym, the port kept. What the session log and the
    /// server inventory call for each client address.
    pub fn socket(&self, addr: SocketAddr) -> SocketAddr {
        SocketAddr::new(self.ip(addr.ip()), addr.port())
    }

    pub fn ipv4(&self, a: Ipv4Addr) -> Ipv4Addr {
        let bits = self.pseudonym(u128::from(u32::from(a)), 32);
        Ipv4Addr::from(u32::try_from(bits).unwrap_or_default())
    }

    pub fn ipv6(&self, a: Ipv6Addr) -> Ipv6Addr {
        Ipv6Addr::from(self.pseudonym(u128::from(a), 128))
    }

    /// `addr` (its low `width` bits) XOR the one-time pad derived bit by bit from its prefixes.
    fn pseudonym(&self, addr: u128, width: u32) -> u128 {
        let bytes = width as usize / 8;
        let pad_bits = self
            .pad
            .iter()
            .take(bytes)
            .fold(0u128, |acc, b| (acc << 8) | u128::from(*b));
        let mut otp = 0u128;
        for i in 0..width {
            let rest = width - i; // bits taken from the pad, 1..=width
            let low = low_mask(rest);
            let input = (addr & !low & low_mask(width)) | (pad_bits & low);
            let mut block = GenericArray::from(self.pad);
            let be = input.to_be_bytes();
            if let (Some(dst), Some(src)) = (block.get_mut(..bytes), be.get(16 - bytes..)) {
                dst.copy_from_slice(src);
            }
            self.cipher.encrypt_block(&mut block);
            let bit = u128::from(block.first().copied().unwrap_or_default() >> 7);
            otp |= bit << (rest - 1);
        }
        addr ^ otp
    }
}

/// The lowest `n` bits set (`n` ≤ 128).
fn low_mask(n: u32) -> u128 {
    u128::MAX.checked_shr(128 - n).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    /// Length of the common leading prefix, in bits.
    fn common(a: u128, b: u128, width: u32) -> u32 {
        ((a ^ b) << (128 - width)).leading_zeros().min(width)
    }

    #[test]
    fn masks() {
        assert_eq!(low_mask(0), 0);
        assert_eq!(low_mask(1), 1);
        assert_eq!(low_mask(32), 0xffff_ffff);
        assert_eq!(low_mask(128), u128::MAX);
    }

    #[test]
    fn addresses_sharing_a_slash_24_get_pseudonyms_sharing_exactly_a_slash_24() {
        let an = Anonymizer::new("test key");
        let (a, b) = (v4("192.0.2.10"), v4("192.0.2.200"));
        let (pa, pb) = (an.ipv4(a), an.ipv4(b));
        assert_ne!(pa, a);
        assert_eq!(pa.octets()[..3], pb.octets()[..3]);
        let c = |x: Ipv4Addr, y: Ipv4Addr| common(u32::from(x).into(), u32::from(y).into(), 32);
        assert_eq!(c(pa, pb), c(a, b));
    }

    #[test]
    fn prefix_length_is_preserved_exactly_v4_and_v6() {
        let an = Anonymizer::new("k");
        let pairs = [
            ("10.1.2.3", "10.1.2.4"),
            ("10.1.2.3", "10.129.0.0"),
            ("10.1.2.3", "138.1.2.3"),
            ("127.0.0.1", "127.0.0.1"),
        ];
        for (x, y) in pairs {
            let (x, y) = (v4(x), v4(y));
            let w = common(u32::from(x).into(), u32::from(y).into(), 32);
            let (px, py) = (an.ipv4(x), an.ipv4(y));
            assert_eq!(
                common(u32::from(px).into(), u32::from(py).into(), 32),
                w,
                "{x} {y}"
            );
        }
        let (x, y): (Ipv6Addr, Ipv6Addr) = (
            "2001:db8::1".parse().unwrap(),
            "2001:db8::8000".parse().unwrap(),
        );
        let (px, py) = (an.ipv6(x), an.ipv6(y));
        assert_ne!(px, x);
        assert_eq!(
            common(px.into(), py.into(), 128),
            common(x.into(), y.into(), 128)
        );
    }

    #[test]
    fn deterministic_per_key_and_keys_differ() {
        let a = v4("198.51.100.7");
        assert_eq!(
            Anonymizer::new("one").ipv4(a),
            Anonymizer::new("one").ipv4(a)
        );
        assert_ne!(
            Anonymizer::new("one").ipv4(a),
            Anonymizer::new("two").ipv4(a)
        );
        let six: Ipv6Addr = "::1".parse().unwrap();
        assert_ne!(
            Anonymizer::new("one").ipv6(six),
            Anonymizer::new("two").ipv6(six)
        );
    }

    #[test]
    fn a_bijection_on_a_small_prefix() {
        let an = Anonymizer::new("k");
        let mut seen: Vec<Ipv4Addr> = (0..=255u8)
            .map(|i| an.ipv4(Ipv4Addr::new(10, 0, 0, i)))
            .collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 256);
    }

    #[test]
    fn the_port_is_kept_and_the_key_is_not_printed() {
        let an = Anonymizer::new("secret");
        let s = an.socket("192.0.2.1:51234".parse().unwrap());
        assert_eq!(s.port(), 51234);
        assert!(!format!("{an:?}").contains("secret"));
    }
}
