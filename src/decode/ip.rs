//! IPv4 (with options) and IPv6 (with extension headers) → the transport bytes inside, or
//! the fragment they are part of.

use super::defrag::{Datagram, Fragment, FragmentKey};
use super::Skip;
use etherparse::{
    err, ip_number, IpAuthHeaderSlice, Ipv4HeaderSlice, Ipv6FragmentHeaderSlice, Ipv6HeaderSlice,
    Ipv6RawExtHeaderSlice,
};
use std::net::IpAddr;

/// Extension headers walked before giving up on an IPv6 packet (a chain of hundreds is an
/// attack on the decoder, not a mail packet).
const MAX_EXTENSION_HEADERS: usize = 8;

/// The transport part of an IP packet: captured bytes and the length the header promises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpPayload<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IPv4's protocol, or the IPv6 next header after the extension headers.
    pub protocol: u8,
    /// Captured transport bytes, with link-layer padding cut off.
    pub bytes: &'a [u8],
    /// Transport length on the wire; more than `bytes.len()` when the snap length cut it.
    pub wire_len: u32,
}

/// A whole IP payload, or one fragment of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ip<'a> {
    Whole(IpPayload<'a>),
    Fragment(Fragment<'a>),
}

pub fn parse(packet: &[u8]) -> Result<Ip<'_>, Skip> {
    match packet.first().map(|b| b >> 4) {
        Some(4) => ipv4(packet),
        Some(6) => ipv6(packet),
        Some(_) => Err(Skip::Malformed),
        None => Err(Skip::Truncated),
    }
}

fn ipv4(packet: &[u8]) -> Result<Ip<'_>, Skip> {
    let h = Ipv4HeaderSlice::from_slice(packet).map_err(|e| match e {
        err::ipv4::HeaderSliceError::Len(_) => Skip::Truncated,
        err::ipv4::HeaderSliceError::Content(_) => Skip::Malformed,
    })?;
    let header_len = h.slice().len();
    // A total length of 0 is what segmentation offload leaves in captures taken on the sending
    // host; the captured length is then the best there is (Wireshark does the same).
    let total = match usize::from(h.total_len()) {
        0 => packet.len(),
        n => n,
    };
    let wire_len = total.checked_sub(header_len).ok_or(Skip::Malformed)?;
    let payload = transport(
        h.source_addr().into(),
        h.destination_addr().into(),
        h.protocol().0,
        packet.get(header_len..).unwrap_or_default(),
        wire_len,
    )?;
    if !h.is_fragmenting_payload() {
        return Ok(Ip::Whole(payload));
    }
    Ok(Ip::Fragment(fragment(
        payload,
        u32::from(h.identification()),
        h.fragments_offset().byte_offset(),
        h.more_fragments(),
    )))
}

fn ipv6(packet: &[u8]) -> Result<Ip<'_>, Skip> {
    let h = Ipv6HeaderSlice::from_slice(packet).map_err(|e| match e {
        err::ipv6::HeaderSliceError::Len(_) => Skip::Truncated,
        err::ipv6::HeaderSliceError::Content(_) => Skip::Malformed,
    })?;
    let fixed = h.slice().len();
    // Payload length 0 means a jumbogram (RFC 2675) or offload: use what was captured.
    let total = match usize::from(h.payload_length()) {
        0 => packet.len(),
        n => fixed + n,
    };
    let (src, dst) = (h.source_addr().into(), h.destination_addr().into());
    let mut next = h.next_header();
    let mut at = fixed;
    for _ in 0..MAX_EXTENSION_HEADERS {
        let rest = packet.get(at..).unwrap_or_default();
        let len = match next {
            ip_number::IPV6_FRAG => {
                let f = Ipv6FragmentHeaderSlice::from_slice(rest).map_err(|_| Skip::Truncated)?;
                let after = at + f.slice().len();
                let wire_len = total.checked_sub(after).ok_or(Skip::Malformed)?;
                let data = packet.get(after..).unwrap_or_default();
                let payload = transport(src, dst, f.next_header().0, data, wire_len)?;
                if !f.is_fragmenting_payload() {
                    // An atomic fragment (RFC 6946): a whole packet with a fragment header.
                    next = f.next_header();
                    at = after;
                    continue;
                }
                return Ok(Ip::Fragment(fragment(
                    payload,
                    f.identification(),
                    f.fragment_offset().byte_offset(),
                    f.more_fragments(),
                )));
            }
            ip_number::IPV6_HOP_BY_HOP | ip_number::IPV6_ROUTE | ip_number::IPV6_DEST_OPTIONS => {
                let e = Ipv6RawExtHeaderSlice::from_slice(rest).map_err(|_| Skip::Truncated)?;
                next = e.next_header();
                e.slice().len()
            }
            ip_number::AUTH => {
                let e = IpAuthHeaderSlice::from_slice(rest).map_err(|e| match e {
                    err::ip_auth::HeaderSliceError::Len(_) => Skip::Truncated,
                    err::ip_auth::HeaderSliceError::Content(_) => Skip::Malformed,
                })?;
                next = e.next_header();
                e.slice().len()
            }
            _ => {
                let wire_len = total.checked_sub(at).ok_or(Skip::Malformed)?;
                return transport(src, dst, next.0, rest, wire_len).map(Ip::Whole);
            }
        };
        at += len;
    }
    Err(Skip::Malformed)
}

/// A reassembled datagram's transport part. An IPv6 datagram's fragmentable part may start
/// with extension headers (destination options, routing: RFC 8200 §4.5); they are walked as
/// in a whole packet. A second Fragment header inside it is malformed.
pub fn reassembled(d: &Datagram) -> Result<IpPayload<'_>, Skip> {
    let (src, dst) = (d.key.src, d.key.dst);
    let mut next = etherparse::IpNumber(d.key.protocol);
    let mut at = 0usize;
    let wire = usize::try_from(d.wire_len).map_err(|_| Skip::Malformed)?;
    for _ in 0..MAX_EXTENSION_HEADERS {
        let rest = d.bytes.get(at..).unwrap_or_default();
        let ipv6 = src.is_ipv6();
        let len = match next {
            ip_number::IPV6_HOP_BY_HOP | ip_number::IPV6_ROUTE | ip_number::IPV6_DEST_OPTIONS
                if ipv6 =>
            {
                let e = Ipv6RawExtHeaderSlice::from_slice(rest).map_err(|_| Skip::Truncated)?;
                next = e.next_header();
                e.slice().len()
            }
            ip_number::IPV6_FRAG if ipv6 => return Err(Skip::Malformed),
            _ => {
                let wire_len = wire.checked_sub(at).ok_or(Skip::Malformed)?;
                return transport(src, dst, next.0, rest, wire_len);
            }
        };
        at += len;
    }
    Err(Skip::Malformed)
}

fn fragment(p: IpPayload<'_>, id: u32, offset: u16, more: bool) -> Fragment<'_> {
    Fragment {
        key: FragmentKey {
            src: p.src,
            dst: p.dst,
            id,
            protocol: p.protocol,
        },
        offset: u32::from(offset),
        more,
        bytes: p.bytes,
        wire_len: p.wire_len,
    }
}

fn transport(
    src: IpAddr,
    dst: IpAddr,
    protocol: u8,
    captured: &[u8],
    wire_len: usize,
) -> Result<IpPayload<'_>, Skip> {
    let bytes = captured.get(..wire_len).unwrap_or(captured);
    Ok(IpPayload {
        src,
        dst,
        protocol,
        bytes,
        wire_len: u32::try_from(wire_len).map_err(|_| Skip::Malformed)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn whole(p: &[u8]) -> IpPayload<'_> {
        match parse(p) {
            Ok(Ip::Whole(ip)) => ip,
            other => panic!("not a whole packet: {other:?}"),
        }
    }

    fn tcp_v4(payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(40000, 25, 1, 1000)
            .write(&mut out, payload)
            .unwrap();
        out
    }

    #[test]
    fn a_reassembled_ipv6_datagram_walks_its_destination_options() {
        let mut bytes = vec![6, 0, 1, 4, 0, 0, 0, 0]; // dest options: next TCP, PadN
        bytes.extend(b"tcp bytes");
        let d = Datagram {
            key: FragmentKey {
                src: "2001:db8::1".parse().unwrap(),
                dst: "2001:db8::2".parse().unwrap(),
                id: 7,
                protocol: 60,
            },
            wire_len: bytes.len() as u32,
            bytes,
            overlapped: false,
        };
        let ip = reassembled(&d).unwrap();
        assert_eq!(
            (ip.protocol, ip.bytes, ip.wire_len),
            (6, &b"tcp bytes"[..], 9)
        );
        let mut inner = d.clone();
        inner.bytes[0] = 44; // a Fragment header inside the reassembled part
        assert_eq!(reassembled(&inner), Err(Skip::Malformed));
    }

    #[test]
    fn ipv4_padding_is_cut_off() {
        let mut p = tcp_v4(b"EHLO");
        p.extend([0, 0, 0, 0, 0, 0]);
        let ip = whole(&p);
        assert_eq!(ip.bytes.len(), 20 + 4);
        assert_eq!(ip.wire_len, 24);
    }

    #[test]
    fn ipv4_snapped_short_keeps_wire_length() {
        let p = tcp_v4(b"EHLO example");
        let ip = whole(&p[..p.len() - 5]);
        assert_eq!(ip.bytes.len(), 20 + 7);
        assert_eq!(ip.wire_len, 32);
    }

    #[test]
    fn ipv4_fragment_says_where_its_bytes_go() {
        let mut p = tcp_v4(b"x");
        p[4] = 0x12;
        p[5] = 0x34; // identification
        p[6] = 0x20; // more fragments, offset 0x003 (24 bytes)
        p[7] = 0x03;
        p[10] = 0;
        p[11] = 0; // checksum is not checked
        match parse(&p) {
            Ok(Ip::Fragment(f)) => {
                assert_eq!(f.key.id, 0x1234);
                assert_eq!(f.key.protocol, 6);
                assert_eq!((f.offset, f.more, f.wire_len), (24, true, 21));
                assert_eq!(f.bytes.len(), 21);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ipv6_fragment_header_gives_the_fragment() {
        let mut out = Vec::new();
        PacketBuilder::ipv6([0xfe; 16], [0xfd; 16], 64)
            .tcp(40000, 25, 1, 1000)
            .write(&mut out, b"EHLO x\r\n")
            .unwrap();
        let mut p = out[..40].to_vec();
        p[6] = 44; // next header: fragment
        let len = u16::from_be_bytes([p[4], p[5]]) + 8;
        p[4..6].copy_from_slice(&len.to_be_bytes());
        // next: TCP; offset 2 (16 bytes), M set; identification 0xdeadbeef.
        p.extend([6, 0, 0, 0x11, 0xde, 0xad, 0xbe, 0xef]);
        p.extend(&out[40..]);
        match parse(&p) {
            Ok(Ip::Fragment(f)) => {
                assert_eq!(f.key.id, 0xdead_beef);
                assert_eq!((f.offset, f.more, f.wire_len), (16, true, 28));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ipv4_udp_says_its_protocol() {
        let mut out = Vec::new();
        PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(53, 53)
            .write(&mut out, b"q")
            .unwrap();
        assert_eq!(whole(&out).protocol, 17);
    }

    #[test]
    fn ipv4_total_length_below_header_is_malformed() {
        let mut p = tcp_v4(b"");
        p[2] = 0;
        p[3] = 10;
        assert_eq!(parse(&p), Err(Skip::Malformed));
    }

    #[test]
    fn ipv6_with_destination_options_reaches_tcp() {
        let mut out = Vec::new();
        PacketBuilder::ipv6([0xfe; 16], [0xfd; 16], 64)
            .tcp(40000, 143, 1, 1000)
            .write(&mut out, b"a1 NOOP\r\n")
            .unwrap();
        // Splice an 8-byte destination-options header between the fixed header and TCP.
        let mut p = out[..40].to_vec();
        p[6] = 60; // next header: destination options
        let len = u16::from_be_bytes([p[4], p[5]]) + 8;
        p[4..6].copy_from_slice(&len.to_be_bytes());
        p.extend([6, 0, 1, 4, 0, 0, 0, 0]); // next: TCP, 8 bytes, PadN
        p.extend(&out[40..]);
        let ip = whole(&p);
        assert_eq!(ip.wire_len, 20 + 9);
        assert_eq!(ip.bytes.len(), 29);
    }

    #[test]
    fn garbage_version_is_malformed_and_empty_is_truncated() {
        assert_eq!(parse(&[0x75, 0]), Err(Skip::Malformed));
        assert_eq!(parse(&[]), Err(Skip::Truncated));
        assert_eq!(parse(&[0x45, 0, 0]), Err(Skip::Truncated));
    }
}
