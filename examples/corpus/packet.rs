//! Bytes on the wire: a deterministic random source, Internet checksums, IPv4/TCP/UDP frames
//! in Ethernet, and a classic pcap writer.

use std::io::{self, Write};

/// SplitMix64: small, fast, and the same sequence on every platform for a seed.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x6d61_696c_7461_7031)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..hi` (`lo` when the range is empty).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.next_u64() % (hi - lo)
    }

    /// True with probability `num / den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.range(0, den) < num
    }

    /// Log-uniform in `[lo, hi)`: as many small values as large ones per octave.
    pub fn log_uniform(&mut self, lo: u64, hi: u64) -> u64 {
        let octaves = (64 - hi.max(2).leading_zeros()) - (64 - lo.max(1).leading_zeros());
        let k = self.range(0, u64::from(octaves.max(1)));
        let base = lo.max(1) << k;
        self.range(base, (base * 2).min(hi))
    }
}

/// The Internet checksum (RFC 1071) over `parts`, folded and complemented.
pub fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum = 0u64;
    let mut odd: Option<u8> = None;
    for part in parts {
        let mut bytes = *part;
        if let Some(hi) = odd.take() {
            if let Some((&lo, rest)) = bytes.split_first() {
                sum += u64::from(u16::from_be_bytes([hi, lo]));
                bytes = rest;
            } else {
                odd = Some(hi);
                continue;
            }
        }
        let mut chunks = bytes.chunks_exact(2);
        for c in &mut chunks {
            sum += u64::from(u16::from_be_bytes([c[0], c[1]]));
        }
        if let [last] = chunks.remainder() {
            odd = Some(*last);
        }
    }
    if let Some(hi) = odd {
        sum += u64::from(u16::from_be_bytes([hi, 0]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Fix the IPv4 header checksum and the TCP or UDP checksum of the IPv4 packet in `ip`
/// (header lengths and total length must already be right).
pub fn fix_checksums(ip: &mut [u8]) {
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    ip[10] = 0;
    ip[11] = 0;
    let c = checksum(&[&ip[..ihl]]);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let proto = ip[9];
    let (header, l4) = ip.split_at_mut(ihl);
    let at = match proto {
        6 => 16,
        17 => 6,
        _ => return,
    };
    if l4.len() < at + 2 {
        return;
    }
    l4[at] = 0;
    l4[at + 1] = 0;
    let len = (l4.len() as u16).to_be_bytes();
    let pseudo = [&header[12..20], &[0, proto][..], &len[..]];
    let mut c = checksum(&[pseudo[0], pseudo[1], pseudo[2], l4]);
    if proto == 17 && c == 0 {
        c = 0xffff;
    }
    l4[at..at + 2].copy_from_slice(&c.to_be_bytes());
}

pub const ETHERNET_HEADER: usize = 14;

/// An Ethernet header for an IPv4 frame; the MACs say which side sent it.
pub fn ethernet(out: &mut Vec<u8>, from_client: bool) {
    let client = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
    let router = [0x02, 0x00, 0x00, 0x00, 0x00, 0xfe];
    let (dst, src) = if from_client {
        (router, client)
    } else {
        (client, router)
    };
    out.extend_from_slice(&dst);
    out.extend_from_slice(&src);
    out.extend_from_slice(&[0x08, 0x00]);
}

/// An IPv4 header (no options) for `l4_len` bytes of `proto`; checksum left for
/// [`fix_checksums`].
pub fn ipv4_header(
    out: &mut Vec<u8>,
    src: [u8; 4],
    dst: [u8; 4],
    proto: u8,
    l4_len: usize,
    id: u16,
) {
    let total = (20 + l4_len) as u16;
    out.extend_from_slice(&[0x45, 0x00]);
    out.extend_from_slice(&total.to_be_bytes());
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&[0x40, 0x00, 64, proto, 0, 0]);
    out.extend_from_slice(&src);
    out.extend_from_slice(&dst);
}

/// Classic pcap, microseconds, Ethernet, little-endian.
pub struct PcapWriter<W: Write> {
    out: W,
    pub packets: u64,
    pub bytes: u64,
}

impl<W: Write> PcapWriter<W> {
    pub fn new(mut out: W) -> io::Result<Self> {
        out.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
        out.write_all(&2u16.to_le_bytes())?;
        out.write_all(&4u16.to_le_bytes())?;
        out.write_all(&[0; 8])?;
        out.write_all(&65535u32.to_le_bytes())?;
        out.write_all(&1u32.to_le_bytes())?;
        Ok(PcapWriter {
            out,
            packets: 0,
            bytes: 24,
        })
    }

    pub fn write(&mut self, ts_ns: u64, frame: &[u8]) -> io::Result<()> {
        let us = ts_ns / 1_000;
        let len = frame.len() as u32;
        let mut header = [0u8; 16];
        header[0..4].copy_from_slice(&((us / 1_000_000) as u32).to_le_bytes());
        header[4..8].copy_from_slice(&((us % 1_000_000) as u32).to_le_bytes());
        header[8..12].copy_from_slice(&len.to_le_bytes());
        header[12..16].copy_from_slice(&len.to_le_bytes());
        self.out.write_all(&header)?;
        self.out.write_all(frame)?;
        self.packets += 1;
        self.bytes += 16 + u64::from(len);
        Ok(())
    }

    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_of_rfc1071_example() {
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(checksum(&[&data]), !0xddf2);
        assert_eq!(checksum(&[&data[..3], &data[3..]]), !0xddf2);
    }
}
