//! Packet → TCP [`Segment`] of a mail connection, or the counted reason why not.
//!
//! Headers are checked once here; nothing downstream indexes raw packet bytes again. A packet
//! of another connection is rejected from its headers alone, without allocating.

pub mod defrag;
mod ip;
mod link;
mod tcp;
mod tunnel;

use crate::config::{PortMap, Protocol};
use crate::source::{Linktype, Packet};
use std::net::SocketAddr;

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
    /// An IP fragment. The stateless [`decode`] cannot reassemble it; [`defrag`] can.
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
pub fn decode<'a>(packet: &Packet<'a>, ports: &PortMap) -> Result<Segment<'a>, Skip> {
    let frame = packet.data.get(..MAX_FRAME).unwrap_or(packet.data);
    let mut ip_packet = link::strip(packet.link, frame)?;
    for _ in 0..=MAX_ENCAPSULATIONS {
        let ip = match ip::parse(ip_packet)? {
            ip::Ip::Whole(ip) => ip,
            ip::Ip::Fragment(_) => return Err(Skip::Fragment),
        };
        ip_packet = match tunnel::carried(&ip)? {
            tunnel::Carried::Tcp => return tcp::parse(ip, ports),
            tunnel::Carried::Ip(inner) => inner,
            tunnel::Carried::Ethernet(inner) => link::strip(Linktype::ETHERNET, inner)?,
        };
    }
    Err(Skip::EncapsulationTooDeep)
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
