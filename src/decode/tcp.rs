//! TCP header → [`Segment`], after the port check that turns away non-mail traffic cheaply.

use super::ip::IpPayload;
use super::{Segment, Skip};
use crate::config::PortMap;
use etherparse::{err, TcpHeaderSlice};
use std::fmt;
use std::net::SocketAddr;

/// The TCP flags mailtap acts on, as one byte (the header's low flag byte).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct TcpFlags(u8);

impl TcpFlags {
    pub const FIN: TcpFlags = TcpFlags(0x01);
    pub const SYN: TcpFlags = TcpFlags(0x02);
    pub const RST: TcpFlags = TcpFlags(0x04);
    pub const PSH: TcpFlags = TcpFlags(0x08);
    pub const ACK: TcpFlags = TcpFlags(0x10);

    pub const fn from_bits(bits: u8) -> Self {
        TcpFlags(bits)
    }

    pub const fn bits(self) -> u8 {
        self.0
    }

    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }

    pub const fn union(self, other: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | other.0)
    }

    pub const fn syn(self) -> bool {
        self.contains(Self::SYN)
    }
    pub const fn ack(self) -> bool {
        self.contains(Self::ACK)
    }
    pub const fn fin(self) -> bool {
        self.contains(Self::FIN)
    }
    pub const fn rst(self) -> bool {
        self.contains(Self::RST)
    }
}

impl fmt::Debug for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (0x02, 'S'),
            (0x10, '.'),
            (0x08, 'P'),
            (0x01, 'F'),
            (0x04, 'R'),
        ];
        let s: String = names
            .iter()
            .filter(|(b, _)| self.0 & b != 0)
            .map(|(_, c)| *c)
            .collect();
        write!(f, "[{s}]")
    }
}

pub fn parse<'a>(ip: IpPayload<'a>, ports: &PortMap) -> Result<Segment<'a>, Skip> {
    let port_bytes = ip.bytes.get(..4).ok_or(Skip::Truncated)?;
    let src_port = u16::from_be_bytes([port_bytes[0], port_bytes[1]]);
    let dst_port = u16::from_be_bytes([port_bytes[2], port_bytes[3]]);
    let protocol = ports
        .get(dst_port)
        .or_else(|| ports.get(src_port))
        .ok_or(Skip::NotMailPort)?;

    let h = TcpHeaderSlice::from_slice(ip.bytes).map_err(|e| match e {
        err::tcp::HeaderSliceError::Len(_) => Skip::Truncated,
        err::tcp::HeaderSliceError::Content(_) => Skip::Malformed,
    })?;
    let header_len = h.slice().len();
    let payload_len = ip
        .wire_len
        .checked_sub(u32::try_from(header_len).map_err(|_| Skip::Malformed)?)
        .ok_or(Skip::Malformed)?;
    let flags = [
        (h.fin(), TcpFlags::FIN),
        (h.syn(), TcpFlags::SYN),
        (h.rst(), TcpFlags::RST),
        (h.psh(), TcpFlags::PSH),
        (h.ack(), TcpFlags::ACK),
    ]
    .into_iter()
    .filter(|(set, _)| *set)
    .fold(TcpFlags::default(), |acc, (_, f)| acc.union(f));

    Ok(Segment {
        src: SocketAddr::new(ip.src, src_port),
        dst: SocketAddr::new(ip.dst, dst_port),
        seq: h.sequence_number(),
        ack: h.acknowledgment_number(),
        flags,
        window: h.window_size(),
        payload: ip.bytes.get(header_len..).unwrap_or_default(),
        payload_len,
        protocol,
        fragment_overlap: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Protocol;
    use crate::decode::ip;
    use etherparse::PacketBuilder;

    fn whole(p: &[u8]) -> ip::IpPayload<'_> {
        match ip::parse(p) {
            Ok(ip::Ip::Whole(ip)) => ip,
            other => panic!("not a whole packet: {other:?}"),
        }
    }

    fn packet(src_port: u16, dst_port: u16, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ipv4([192, 0, 2, 1], [198, 51, 100, 7], 64)
            .tcp(src_port, dst_port, 4_294_957_296, 65535)
            .syn()
            .ack(7)
            .write(&mut out, payload)
            .unwrap();
        out
    }

    #[test]
    fn mail_port_segment_carries_its_fields() {
        let p = packet(51234, 25, b"EHLO x\r\n");
        let seg = parse(whole(&p), &PortMap::default()).unwrap();
        assert_eq!(seg.src, "192.0.2.1:51234".parse().unwrap());
        assert_eq!(seg.dst, "198.51.100.7:25".parse().unwrap());
        assert_eq!(seg.seq, 4_294_957_296);
        assert_eq!(seg.ack, 7);
        assert_eq!(seg.flags, TcpFlags::SYN.union(TcpFlags::ACK));
        assert_eq!(seg.payload, b"EHLO x\r\n");
        assert_eq!(seg.payload_len, 8);
        assert_eq!(seg.protocol, Protocol::Smtp);
    }

    #[test]
    fn source_port_matches_for_server_replies() {
        let p = packet(993, 40000, b"");
        let seg = parse(whole(&p), &PortMap::default()).unwrap();
        assert_eq!(seg.protocol, Protocol::Imaps);
    }

    #[test]
    fn other_ports_are_turned_away() {
        let p = packet(40000, 443, b"");
        assert_eq!(
            parse(whole(&p), &PortMap::default()),
            Err(Skip::NotMailPort)
        );
    }

    #[test]
    fn data_offset_below_five_is_malformed() {
        let mut p = packet(40000, 25, b"");
        p[20 + 12] = 0x40;
        assert_eq!(parse(whole(&p), &PortMap::default()), Err(Skip::Malformed));
    }

    #[test]
    fn flags_print_like_tcpdump() {
        assert_eq!(format!("{:?}", TcpFlags::SYN.union(TcpFlags::ACK)), "[S.]");
    }
}
