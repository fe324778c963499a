//! The encapsulations mirror ports deliver → the frame or IP packet inside.
//!
//! Remote span and cloud traffic mirroring wrap each copied frame: VXLAN (RFC 7348, UDP 4789),
//! GRE (RFC 2784/2890) carrying Ethernet (transparent bridging, 0x6558) or IP, ERSPAN type I
//! and II (GRE 0x88BE) and type III (GRE 0x22EB), and IP-in-IP (protocols 4 and 41). The
//! connection is then the inner one: the outer headers are only the path the copy took.

use super::ip::IpPayload;
use super::Skip;

/// What an IP packet carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Carried<'a> {
    /// TCP: the packet is the connection's own.
    Tcp,
    /// An IP packet, tunnelled.
    Ip(&'a [u8]),
    /// An Ethernet frame, tunnelled.
    Ethernet(&'a [u8]),
}

const TCP: u8 = 6;
const UDP: u8 = 17;
const IPV4_IN_IP: u8 = 4;
const IPV6_IN_IP: u8 = 41;
const GRE: u8 = 47;
const VXLAN_PORT: u16 = 4789;

const GRE_ETHERNET: u16 = 0x6558;
const GRE_IPV4: u16 = 0x0800;
const GRE_IPV6: u16 = 0x86dd;
const GRE_ERSPAN_II: u16 = 0x88be;
const GRE_ERSPAN_III: u16 = 0x22eb;

/// What `ip` carries, or why it is neither TCP nor a tunnel mailtap opens.
pub fn carried<'a>(ip: &IpPayload<'a>) -> Result<Carried<'a>, Skip> {
    match ip.protocol {
        TCP => Ok(Carried::Tcp),
        IPV4_IN_IP | IPV6_IN_IP => Ok(Carried::Ip(ip.bytes)),
        GRE => gre(ip.bytes),
        UDP => vxlan(ip.bytes),
        _ => Err(Skip::NotTcp),
    }
}

/// Whether a packet of this protocol can hold a mail connection, directly or in a tunnel:
/// the fragments of others (ICMP, ESP, ...) are not worth holding for reassembly.
pub fn may_carry_tcp(protocol: u8) -> bool {
    matches!(protocol, TCP | UDP | GRE | IPV4_IN_IP | IPV6_IN_IP)
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    let pair = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([*pair.first()?, *pair.get(1)?]))
}

fn rest(b: &[u8], from: usize) -> Result<&[u8], Skip> {
    b.get(from..).ok_or(Skip::Truncated)
}

/// UDP to port 4789 with the VNI flag set: an Ethernet frame after 8 bytes of VXLAN header.
/// Other UDP is not TCP.
fn vxlan(udp: &[u8]) -> Result<Carried<'_>, Skip> {
    let dst = be16(udp, 2).ok_or(Skip::Truncated)?;
    if dst != VXLAN_PORT {
        return Err(Skip::NotTcp);
    }
    let flags = *udp.get(8).ok_or(Skip::Truncated)?;
    if flags & 0x08 == 0 {
        return Err(Skip::UnsupportedEncapsulation);
    }
    Ok(Carried::Ethernet(rest(udp, 16)?))
}

fn gre(g: &[u8]) -> Result<Carried<'_>, Skip> {
    let flags = *g.first().ok_or(Skip::Truncated)?;
    let version = g.get(1).ok_or(Skip::Truncated)? & 0x07;
    let protocol = be16(g, 2).ok_or(Skip::Truncated)?;
    let (checksum, routing, key, sequence) = (
        flags & 0x80 != 0,
        flags & 0x40 != 0,
        flags & 0x20 != 0,
        flags & 0x10 != 0,
    );
    // Version 1 is PPTP's enhanced GRE; source routing (RFC 1701) is long deprecated.
    if version != 0 || routing {
        return Err(Skip::UnsupportedEncapsulation);
    }
    let len = 4 + 4 * (usize::from(checksum) + usize::from(key) + usize::from(sequence));
    let payload = rest(g, len)?;
    match protocol {
        GRE_ETHERNET => Ok(Carried::Ethernet(payload)),
        GRE_IPV4 | GRE_IPV6 => Ok(Carried::Ip(payload)),
        // Type I has no sequence number and no header of its own; type II has both.
        GRE_ERSPAN_II if !sequence => Ok(Carried::Ethernet(payload)),
        GRE_ERSPAN_II => erspan(payload, 1, 8),
        GRE_ERSPAN_III => {
            // The O flag (last bit of the header) announces an 8-byte platform subheader.
            let optional = payload.get(11).ok_or(Skip::Truncated)? & 0x01 != 0;
            erspan(payload, 2, if optional { 20 } else { 12 })
        }
        _ => Err(Skip::UnsupportedEncapsulation),
    }
}

/// An ERSPAN header of version `version` and `len` bytes, then the mirrored Ethernet frame.
fn erspan(h: &[u8], version: u8, len: usize) -> Result<Carried<'_>, Skip> {
    let found = h.first().ok_or(Skip::Truncated)? >> 4;
    if found != version {
        return Err(Skip::UnsupportedEncapsulation);
    }
    Ok(Carried::Ethernet(rest(h, len)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn carrying(protocol: u8, bytes: &[u8]) -> Result<Carried<'_>, Skip> {
        carried(&IpPayload {
            src: "192.0.2.1".parse().unwrap(),
            dst: "192.0.2.2".parse().unwrap(),
            protocol,
            bytes,
            wire_len: bytes.len() as u32,
        })
    }

    const FRAME: &[u8] = b"inner frame";

    fn with(header: &[u8]) -> Vec<u8> {
        [header, FRAME].concat()
    }

    #[test]
    fn vxlan_on_4789_carries_ethernet_and_other_udp_is_not_tcp() {
        let udp = [0x30, 0x39, 0x12, 0xb5, 0, 30, 0, 0];
        let vx = [0x08, 0, 0, 0, 0, 0x10, 0x92, 0];
        let p = with(&[&udp[..], &vx].concat());
        assert_eq!(carrying(17, &p), Ok(Carried::Ethernet(FRAME)));
        let dns = with(&[0x30, 0x39, 0, 53, 0, 30, 0, 0]);
        assert_eq!(carrying(17, &dns), Err(Skip::NotTcp));
        let no_vni = with(&[&udp[..], &[0; 8]].concat());
        assert_eq!(carrying(17, &no_vni), Err(Skip::UnsupportedEncapsulation));
    }

    #[test]
    fn gre_skips_its_optional_fields() {
        // Key and sequence present: 4 + 8 bytes.
        let p = with(&[0x30, 0, 0x08, 0x00, 0, 0, 0, 1, 0, 0, 0, 9]);
        assert_eq!(carrying(47, &p), Ok(Carried::Ip(FRAME)));
        let p = with(&[0x20, 0, 0x65, 0x58, 0, 0, 0, 1]);
        assert_eq!(carrying(47, &p), Ok(Carried::Ethernet(FRAME)));
        let p = with(&[0, 0, 0x86, 0xdd]);
        assert_eq!(carrying(47, &p), Ok(Carried::Ip(FRAME)));
        let pptp = with(&[0x30, 0x01, 0x88, 0x0b, 0, 0, 0, 1, 0, 0, 0, 9]);
        assert_eq!(carrying(47, &pptp), Err(Skip::UnsupportedEncapsulation));
        let mpls = with(&[0, 0, 0x88, 0x47]);
        assert_eq!(carrying(47, &mpls), Err(Skip::UnsupportedEncapsulation));
        assert_eq!(
            carrying(47, &[0x30, 0, 0x08, 0x00, 0, 0]),
            Err(Skip::Truncated)
        );
    }

    #[test]
    fn erspan_types_one_two_and_three() {
        let type1 = with(&[0, 0, 0x88, 0xbe]);
        assert_eq!(carrying(47, &type1), Ok(Carried::Ethernet(FRAME)));
        let type2 = with(&[
            0x10, 0, 0x88, 0xbe, 0, 0, 0, 7, 0x10, 0x64, 0, 0, 0, 0, 0, 0,
        ]);
        assert_eq!(carrying(47, &type2), Ok(Carried::Ethernet(FRAME)));
        let mut type3 = vec![0x10, 0, 0x22, 0xeb, 0, 0, 0, 7, 0x20, 0x64];
        type3.extend([0; 10]);
        assert_eq!(carrying(47, &with(&type3)), Ok(Carried::Ethernet(FRAME)));
        // O flag: the platform subheader follows.
        *type3.last_mut().unwrap() = 0x01;
        type3.extend([0; 8]);
        assert_eq!(carrying(47, &with(&type3)), Ok(Carried::Ethernet(FRAME)));
        let wrong_version = with(&[0x10, 0, 0x88, 0xbe, 0, 0, 0, 7, 0x20, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            carrying(47, &wrong_version),
            Err(Skip::UnsupportedEncapsulation)
        );
    }

    #[test]
    fn ip_in_ip_and_plain_tcp() {
        assert_eq!(carrying(4, FRAME), Ok(Carried::Ip(FRAME)));
        assert_eq!(carrying(41, FRAME), Ok(Carried::Ip(FRAME)));
        assert_eq!(carrying(6, FRAME), Ok(Carried::Tcp));
        assert_eq!(carrying(1, FRAME), Err(Skip::NotTcp));
    }
}
