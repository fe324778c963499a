//! Packet → TCP [`Segment`] of a mail connection, or the counted reason why not.
//!
//! Headers are checked once here; nothing downstream indexes raw packet bytes again. A packet
//! of another connection is rejected from its headers alone, without allocating.

pub mod defrag;
mod ip;
mod link;
mod tcp;

use crate::config::{PortMap, Protocol};
use crate::source::Packet;
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
}

impl Skip {
    pub const ALL: [Skip; 7] = [
        Skip::UnsupportedLink,
        Skip::NotIp,
        Skip::NotTcp,
        Skip::Fragment,
        Skip::Malformed,
        Skip::Truncated,
        Skip::NotMailPort,
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

/// Decode one captured frame: link layer, IP, TCP, then the port check.
pub fn decode<'a>(packet: &Packet<'a>, ports: &PortMap) -> Result<Segment<'a>, Skip> {
    let frame = packet.data.get(..MAX_FRAME).unwrap_or(packet.data);
    let ip_packet = link::strip(packet.link, frame)?;
    match ip::parse(ip_packet)? {
        ip::Ip::Whole(ip) if ip.protocol == etherparse::IpNumber::TCP.0 => tcp::parse(ip, ports),
        ip::Ip::Whole(_) => Err(Skip::NotTcp),
        ip::Ip::Fragment(_) => Err(Skip::Fragment),
    }
}
