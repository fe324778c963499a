//! IPv4 (with options) and IPv6 (with extension headers) → the TCP bytes inside.

use super::Skip;
use etherparse::{err, IpNumber, Ipv4HeaderSlice, Ipv6ExtensionsSlice, Ipv6HeaderSlice};
use std::net::IpAddr;

/// The transport part of an IP packet: captured bytes and the length the header promises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpPayload<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// Captured transport bytes, with link-layer padding cut off.
    pub bytes: &'a [u8],
    /// Transport length on the wire; more than `bytes.len()` when the snap length cut it.
    pub wire_len: u32,
}

pub fn parse(packet: &[u8]) -> Result<IpPayload<'_>, Skip> {
    match packet.first().map(|b| b >> 4) {
        Some(4) => ipv4(packet),
        Some(6) => ipv6(packet),
        Some(_) => Err(Skip::Malformed),
        None => Err(Skip::Truncated),
    }
}

fn ipv4(packet: &[u8]) -> Result<IpPayload<'_>, Skip> {
    let h = Ipv4HeaderSlice::from_slice(packet).map_err(|e| match e {
        err::ipv4::HeaderSliceError::Len(_) => Skip::Truncated,
        err::ipv4::HeaderSliceError::Content(_) => Skip::Malformed,
    })?;
    if h.is_fragmenting_payload() {
        return Err(Skip::Fragment);
    }
    if h.protocol() != IpNumber::TCP {
        return Err(Skip::NotTcp);
    }
    let header_len = h.slice().len();
    // A total length of 0 is what segmentation offload leaves in captures taken on the sending
    // host; the captured length is then the best there is (Wireshark does the same).
    let total = match usize::from(h.total_len()) {
        0 => packet.len(),
        n => n,
    };
    let wire_len = total.checked_sub(header_len).ok_or(Skip::Malformed)?;
    transport(
        h.source_addr().into(),
        h.destination_addr().into(),
        packet,
        header_len,
        wire_len,
    )
}

fn ipv6(packet: &[u8]) -> Result<IpPayload<'_>, Skip> {
    let h = Ipv6HeaderSlice::from_slice(packet).map_err(|e| match e {
        err::ipv6::HeaderSliceError::Len(_) => Skip::Truncated,
        err::ipv6::HeaderSliceError::Content(_) => Skip::Malformed,
    })?;
    let fixed = h.slice().len();
    let after_fixed = packet.get(fixed..).unwrap_or_default();
    let (exts, next, rest) = Ipv6ExtensionsSlice::from_slice(h.next_header(), after_fixed)
        .map_err(|e| match e {
            err::ipv6_exts::HeaderSliceError::Len(_) => Skip::Truncated,
            err::ipv6_exts::HeaderSliceError::Content(_) => Skip::Malformed,
        })?;
    if exts.is_fragmenting_payload() {
        return Err(Skip::Fragment);
    }
    if next != IpNumber::TCP {
        return Err(Skip::NotTcp);
    }
    let header_len = packet.len() - rest.len();
    // Payload length 0 means a jumbogram (RFC 2675) or offload: use what was captured.
    let total = match usize::from(h.payload_length()) {
        0 => packet.len(),
        n => fixed + n,
    };
    let wire_len = total.checked_sub(header_len).ok_or(Skip::Malformed)?;
    transport(
        h.source_addr().into(),
        h.destination_addr().into(),
        packet,
        header_len,
        wire_len,
    )
}

fn transport(
    src: IpAddr,
    dst: IpAddr,
    packet: &[u8],
    header_len: usize,
    wire_len: usize,
) -> Result<IpPayload<'_>, Skip> {
    let captured = packet.get(header_len..).unwrap_or_default();
    let bytes = captured.get(..wire_len).unwrap_or(captured);
    Ok(IpPayload {
        src,
        dst,
        bytes,
        wire_len: u32::try_from(wire_len).map_err(|_| Skip::Malformed)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn tcp_v4(payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(40000, 25, 1, 1000)
            .write(&mut out, payload)
            .unwrap();
        out
    }

    #[test]
    fn ipv4_padding_is_cut_off() {
        let mut p = tcp_v4(b"EHLO");
        p.extend([0, 0, 0, 0, 0, 0]);
        let ip = parse(&p).unwrap();
        assert_eq!(ip.bytes.len(), 20 + 4);
        assert_eq!(ip.wire_len, 24);
    }

    #[test]
    fn ipv4_snapped_short_keeps_wire_length() {
        let p = tcp_v4(b"EHLO example");
        let ip = parse(&p[..p.len() - 5]).unwrap();
        assert_eq!(ip.bytes.len(), 20 + 7);
        assert_eq!(ip.wire_len, 32);
    }

    #[test]
    fn ipv4_fragment_is_skipped() {
        let mut p = tcp_v4(b"x");
        p[6] = 0x20; // more fragments
        p[10] = 0;
        p[11] = 0; // checksum is not checked
        assert_eq!(parse(&p), Err(Skip::Fragment));
    }

    #[test]
    fn ipv4_udp_is_not_tcp() {
        let mut out = Vec::new();
        PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(53, 53)
            .write(&mut out, b"q")
            .unwrap();
        assert_eq!(parse(&out), Err(Skip::NotTcp));
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
        let ip = parse(&p).unwrap();
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
