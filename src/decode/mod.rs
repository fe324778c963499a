//! Packet → TCP [`Segment`] of a mail connection, or the counted reason why not.
//!
//! Headers are checked once here; nothing downstream indexes raw packet bytes again. A packet
//! of another connection is rejected from its headers alone, without allocating.

pub mod defrag;
mod ip;
mod link;
mod reassembled;
mod tcp;
mod tunnel;

use crate::config::{PortMap, Protocol};
use crate::source::{Linktype, Packet, Timestamp};
use defrag::{Datagram, Fragment};
use std::net::SocketAddr;

pub use reassembled::{Decoded, Reassemble, Reassembled};
pub use tcp::TcpFlags;

/// One TCP segment of a connection on a mail port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment<'a> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    pub window: u16,
    /// The payload bytes that were captured.
    pub payload: &'a [u8],
    /// The payload length on the wire (from the IP header); more than `payload.len()` when the
    /// snap length cut the frame, and reassembly reports the missing tail as a gap.
    pub payload_len: u32,
    /// The mail protocol of whichever port matched (destination port first).
    pub protocol: Protocol,
    /// It came in IP fragments that overlapped (the first copy of each byte was kept).
    pub fragment_overlap: bool,
}

/// Why a packet is not a mail segment. A closed set: it is the `result` label of
/// `mailtap_packets_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Skip {
    /// A link type mailtap does not decode.
    UnsupportedLink,
    /// Not IPv4 or IPv6 (ARP, LLDP, ...).
    NotIp,
    /// IP, but not TCP (UDP, ICMP, ...).
    NotTcp,
    /// An IP fragment: held for reassembly ([`decode_reassembling`]; what became of its
    /// datagram is counted apart), or given up by the stateless [`decode`].
    Fragment,
    /// A header that contradicts itself (bad lengths, bad version, bad data offset).
    Malformed,
    /// The capture holds less of the frame than its headers need.
    Truncated,
    /// TCP, but neither port is a mail port.
    NotMailPort,
    /// A tunnel mailtap does not open (GRE version 1 or with routing, GRE carrying another
    /// protocol than Ethernet, IP or ERSPAN, an ERSPAN version that does not match its type,
    /// VXLAN without a VNI).
    UnsupportedEncapsulation,
    /// Tunnels nested deeper than [`MAX_ENCAPSULATIONS`].
    EncapsulationTooDeep,
}

impl Skip {
    pub const ALL: [Skip; 9] = [
        Skip::UnsupportedLink,
        Skip::NotIp,
        Skip::NotTcp,
        Skip::Fragment,
        Skip::Malformed,
        Skip::Truncated,
        Skip::NotMailPort,
        Skip::UnsupportedEncapsulation,
        Skip::EncapsulationTooDeep,
    ];

    /// The metric label value.
    pub const fn label(self) -> &'static str {
        match self {
            Skip::UnsupportedLink => "unsupported_link",
            Skip::NotIp => "not_ip",
            Skip::NotTcp => "not_tcp",
            Skip::Fragment => "fragment",
            Skip::Malformed => "malformed",
            Skip::Truncated => "truncated",
            Skip::NotMailPort => "not_mail_port",
            Skip::UnsupportedEncapsulation => "unsupported_encapsulation",
            Skip::EncapsulationTooDeep => "encapsulation_too_deep",
        }
    }

    pub const fn index(self) -> usize {
        self as usize
    }
}

/// The most of a frame that is decoded: an IP packet carries at most 64 KiB, and the link
/// headers before it are a few dozen bytes, so this is more than any IP packet (segmentation
/// offload's merged frames included). The rest of a larger frame is treated as cut by the snap
/// length. The bound lets the engine copy frames into fixed-size blocks (`engine::chunk`).
pub const MAX_FRAME: usize = 256 * 1024;

/// Tunnels opened inside one another before a frame is given up: a mirror session's GRE
/// around a VXLAN overlay is two; a frame wrapped more often than this is built to make a
/// decoder recurse, not copied by a switch.
pub const MAX_ENCAPSULATIONS: usize = 3;

/// Decode one captured frame: link layer, IP, the tunnels inside it, TCP, then the port check.
/// Stateless: a fragment is [`Skip::Fragment`].
pub fn decode<'a>(packet: &Packet<'a>, ports: &PortMap) -> Result<Segment<'a>, Skip> {
    match decode_reassembling(packet, ports, &mut reassembled::NoReassembly)? {
        Decoded::Frame(seg) => Ok(seg),
        Decoded::Reassembled(_) => Err(Skip::Fragment),
    }
}

/// [`decode`], with IP fragments (of the frame, or of a packet inside a tunnel) handed to `r`:
/// the frame that completes a datagram decodes to the segment inside it.
#[inline]
pub fn decode_reassembling<'a>(
    packet: &Packet<'a>,
    ports: &PortMap,
    r: &mut dyn Reassemble,
) -> Result<Decoded<'a>, Skip> {
    let frame = packet.data.get(..MAX_FRAME).unwrap_or(packet.data);
    let ip_packet = link::strip(packet.link, frame)?;
    walk_with(ip_packet, 0, ports, Decoded::Frame, |f, depth| {
        let d = r.fragment(packet.ts, &f).ok_or(Skip::Fragment)?;
        reassembled::datagram(d, depth, packet.ts, ports, r)
            .map(|d| Decoded::Reassembled(Box::new(d)))
    })
}

/// Where a walk down the layers of a packet ended.
enum Walked<'b> {
    Segment(Segment<'b>),
    /// A fragment completed this datagram, at this tunnel depth.
    Datagram(Box<Datagram>, usize),
}

/// IP packet `ip_packet`, at tunnel depth `from`, down to TCP, with fragments handed to `r`.
fn walk<'b>(
    ip_packet: &'b [u8],
    from: usize,
    ts: Timestamp,
    ports: &PortMap,
    r: &mut dyn Reassemble,
) -> Result<Walked<'b>, Skip> {
    walk_with(ip_packet, from, ports, Walked::Segment, |f, depth| {
        let d = r.fragment(ts, &f).ok_or(Skip::Fragment)?;
        Ok(Walked::Datagram(Box::new(d), depth))
    })
}

/// The walk itself: each IP layer, the tunnel inside it, down to TCP (`segment` makes the
/// result) or to a fragment worth holding (`fragment` goes on from there). Inlined, and
/// generic over the result, so that a frame's segment is built where the caller wants it:
/// through an intermediate result, decoding cost 20 % more.
#[inline(always)]
fn walk_with<'b, T>(
    mut ip_packet: &'b [u8],
    from: usize,
    ports: &PortMap,
    segment: impl FnOnce(Segment<'b>) -> T,
    fragment: impl FnOnce(Fragment<'b>, usize) -> Result<T, Skip>,
) -> Result<T, Skip> {
    for depth in from..=MAX_ENCAPSULATIONS {
        let ip = match ip::parse(ip_packet)? {
            ip::Ip::Whole(ip) => ip,
            ip::Ip::Fragment(f) if !worth_holding(&f) => return Err(Skip::NotTcp),
            ip::Ip::Fragment(f) => return fragment(f, depth),
        };
        match open(&ip)? {
            None => return tcp::parse(ip, ports).map(segment),
            Some(inner) => ip_packet = inner,
        }
    }
    Err(Skip::EncapsulationTooDeep)
}

/// The IP packet inside a tunnel, or `None` for TCP.
#[inline]
fn open<'b>(ip: &ip::IpPayload<'b>) -> Result<Option<&'b [u8]>, Skip> {
    match tunnel::carried(ip)? {
        tunnel::Carried::Tcp => Ok(None),
        tunnel::Carried::Ip(inner) => Ok(Some(inner)),
        tunnel::Carried::Ethernet(inner) => link::strip(Linktype::ETHERNET, inner).map(Some),
    }
}

/// Fragments that may hold a mail connection: TCP, a tunnel, or (IPv6) an extension header
/// before them. Others (ICMP, ESP, ...) are not TCP, and never held.
fn worth_holding(f: &Fragment<'_>) -> bool {
    const IPV6_ROUTE: u8 = 43;
    const IPV6_DEST_OPTIONS: u8 = 60;
    let p = f.key.protocol;
    tunnel::may_carry_tcp(p) || (f.key.src.is_ipv6() && matches!(p, IPV6_ROUTE | IPV6_DEST_OPTIONS))
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn smtp_syn() -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(40000, 25, 1, 1000)
            .syn()
            .write(&mut out, &[])
            .unwrap();
        out
    }

    /// `inner` (an IP packet) in IPv4 protocol 4.
    fn ipip(inner: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64)
            .write(&mut out, etherparse::IpNumber(4), inner)
            .unwrap();
        out
    }

    fn raw(data: &[u8]) -> Packet<'_> {
        Packet {
            ts: crate::source::Timestamp::ZERO,
            link: Linktype::RAW,
            data,
            wire_len: data.len() as u32,
        }
    }

    #[test]
    fn the_inner_connection_is_the_segment() {
        let mut gre = vec![0x20, 0, 0x65, 0x58, 0, 0, 0, 42];
        gre.extend([0u8; 12]);
        gre.extend([0x08, 0x00]);
        gre.extend(ipip(&smtp_syn()));
        let mut outer = Vec::new();
        PacketBuilder::ipv6([0xfe; 16], [0xfd; 16], 64)
            .write(&mut outer, etherparse::IpNumber(47), &gre)
            .unwrap();
        let seg = decode(&raw(&outer), &PortMap::default()).unwrap();
        assert_eq!(seg.src, "10.0.0.1:40000".parse().unwrap());
        assert_eq!(seg.dst, "10.0.0.2:25".parse().unwrap());
        assert!(seg.flags.syn());
    }

    struct Held(defrag::Defrag, defrag::DefragCounts);

    impl Reassemble for Held {
        fn fragment(&mut self, ts: Timestamp, f: &Fragment<'_>) -> Option<Datagram> {
            self.0.add(ts, f, &mut self.1)
        }
    }

    fn held() -> Held {
        Held(defrag::Defrag::new(Default::default()), Default::default())
    }

    /// `packet` (IPv4, 20-byte header) cut into IPv4 fragments of `size` payload bytes.
    fn fragments(packet: &[u8], size: usize) -> Vec<Vec<u8>> {
        let (header, payload) = packet.split_at(20);
        let pieces: Vec<&[u8]> = payload.chunks(size).collect();
        pieces
            .iter()
            .enumerate()
            .map(|(i, piece)| {
                let mut f = header.to_vec();
                let total = (20 + piece.len()) as u16;
                f[2..4].copy_from_slice(&total.to_be_bytes());
                f[4..6].copy_from_slice(&0x4242u16.to_be_bytes());
                let more = if i + 1 < pieces.len() { 0x2000 } else { 0 };
                let offset = ((i * size) / 8) as u16 | more;
                f[6..8].copy_from_slice(&offset.to_be_bytes());
                f.extend_from_slice(piece);
                f
            })
            .collect()
    }

    fn smtp_data(payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(40000, 25, 1, 1000)
            .write(&mut out, payload)
            .unwrap();
        out
    }

    #[test]
    fn fragments_in_any_order_decode_to_the_segment() {
        let payload: Vec<u8> = (0..100u8).collect();
        let parts = fragments(&smtp_data(&payload), 32);
        assert_eq!(parts.len(), 4);
        for order in [[0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1]] {
            let mut r = held();
            let mut out = Vec::new();
            for i in order {
                out.push(decode_reassembling(
                    &raw(&parts[i]),
                    &PortMap::default(),
                    &mut r,
                ));
            }
            let last = out.pop().unwrap().unwrap();
            assert!(out.iter().all(|d| d == &Err(Skip::Fragment)));
            let seg = last.segment();
            assert_eq!(seg.payload, &payload[..]);
            assert_eq!(seg.payload_len, 100);
            assert_eq!(seg.dst, "10.0.0.2:25".parse().unwrap());
            assert!(!seg.fragment_overlap);
            // The stateless decoder gives every one of them up.
            assert_eq!(
                decode(&raw(&parts[order[0]]), &PortMap::default()),
                Err(Skip::Fragment)
            );
        }
    }

    #[test]
    fn a_fragmented_tunnel_with_fragments_inside_it() {
        let payload = [7u8; 200];
        let inner = fragments(&smtp_data(&payload), 64);
        let mut r = held();
        let mut done = None;
        // Each inner fragment in IP-in-IP, itself cut in two.
        for f in &inner {
            for outer in fragments(&ipip(f), 48) {
                match decode_reassembling(&raw(&outer), &PortMap::default(), &mut r) {
                    Ok(Decoded::Reassembled(d)) => {
                        assert!(done.is_none());
                        done = Some(d);
                    }
                    other => assert_eq!(other, Err(Skip::Fragment)),
                }
            }
        }
        let done = done.expect("the last fragment completes the segment");
        let seg = done.segment();
        assert_eq!(seg.payload, &payload[..]);
        // Three outer datagrams (the fourth, 48 bytes, fits one fragment: it is whole), and
        // the inner one.
        assert_eq!(r.1[defrag::DefragEvent::Reassembled.index()], 3 + 1);
    }

    #[test]
    fn overlapping_fragments_mark_the_segment() {
        let parts = fragments(&smtp_data(&[1u8; 64]), 32);
        let mut r = held();
        let pm = PortMap::default();
        assert!(decode_reassembling(&raw(&parts[0]), &pm, &mut r).is_err());
        assert!(decode_reassembling(&raw(&parts[0]), &pm, &mut r).is_err());
        let mut rest = None;
        for p in &parts[1..] {
            rest = decode_reassembling(&raw(p), &pm, &mut r).ok();
        }
        assert!(rest.expect("complete").segment().fragment_overlap);
    }

    #[test]
    fn fragments_that_cannot_hold_tcp_are_not_held() {
        let mut icmp = Vec::new();
        PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .icmpv4_echo_request(1, 1)
            .write(&mut icmp, &[0; 64])
            .unwrap();
        let mut r = held();
        for f in fragments(&icmp, 32) {
            let got = decode_reassembling(&raw(&f), &PortMap::default(), &mut r);
            assert_eq!(got, Err(Skip::NotTcp));
        }
        assert_eq!(r.0.in_flight(), (0, 0));
    }

    #[test]
    fn nesting_through_reassembly_is_bounded() {
        let mut p = smtp_syn();
        for _ in 0..MAX_ENCAPSULATIONS {
            p = ipip(&p);
        }
        // The outermost packet fragmented: reassembly resumes at depth 0, within the bound.
        let mut r = held();
        let frames = fragments(&p, 16);
        let got: Vec<_> = frames
            .iter()
            .map(|f| decode_reassembling(&raw(f), &PortMap::default(), &mut r))
            .collect();
        assert!(got.last().unwrap().is_ok());
        let deeper = fragments(&ipip(&p), 16);
        let got: Vec<_> = deeper
            .iter()
            .map(|f| decode_reassembling(&raw(f), &PortMap::default(), &mut r))
            .collect();
        assert_eq!(got.last().unwrap(), &Err(Skip::EncapsulationTooDeep));
    }

    #[test]
    fn nesting_is_bounded() {
        let mut p = smtp_syn();
        for _ in 0..MAX_ENCAPSULATIONS {
            p = ipip(&p);
        }
        assert!(decode(&raw(&p), &PortMap::default()).is_ok());
        let deeper = ipip(&p);
        assert_eq!(
            decode(&raw(&deeper), &PortMap::default()),
            Err(Skip::EncapsulationTooDeep)
        );
    }
}
