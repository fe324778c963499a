//! Link layers → the IP packet inside, or why there is none.
//!
//! Ethernet and VLAN tags go through etherparse's header slices. Linux cooked capture (SLL,
//! SLL2) and BSD loopback are parsed here: etherparse's SLL slice rejects ARPHRD_LOOPBACK,
//! which is exactly what `tcpdump -i any` writes for `lo`, and it has no SLL2 or NULL/LOOP.

use super::Skip;
use crate::source::Linktype;
use etherparse::{EtherType, Ethernet2HeaderSlice, SingleVlanHeaderSlice};

/// Stacked VLAN tags followed at most (QinQ is two; a few more for odd carrier gear).
const MAX_VLAN_TAGS: usize = 4;
/// 802.1ad service tag and the pre-standard QinQ tag some switches still send.
const ETHERTYPE_QINQ_OLD: u16 = 0x9100;

/// LINKTYPE_RAW (101) and the two DLT_RAW values some systems write (12, 14).
const LINKTYPE_RAW_ALIASES: [i32; 2] = [12, 14];

/// The IP packet carried by a frame of link type `link`.
pub fn strip(link: Linktype, frame: &[u8]) -> Result<&[u8], Skip> {
    match link {
        Linktype::ETHERNET => ethernet(frame),
        Linktype::RAW | Linktype::IPV4 | Linktype::IPV6 => Ok(frame),
        Linktype::LINUX_SLL => cooked(frame, 16, 14),
        Linktype::LINUX_SLL2 => cooked(frame, 20, 0),
        Linktype::NULL => bsd_loopback(frame, u32::from_ne_bytes),
        Linktype::LOOP => bsd_loopback(frame, u32::from_be_bytes),
        Linktype(other) if LINKTYPE_RAW_ALIASES.contains(&other) => Ok(frame),
        _ => Err(Skip::UnsupportedLink),
    }
}

fn ethernet(frame: &[u8]) -> Result<&[u8], Skip> {
    let eth = Ethernet2HeaderSlice::from_slice(frame).map_err(|_| Skip::Truncated)?;
    let mut ether_type = eth.ether_type();
    let mut rest = frame.get(eth.slice().len()..).ok_or(Skip::Truncated)?;
    for _ in 0..MAX_VLAN_TAGS {
        if !is_vlan(ether_type) {
            break;
        }
        let tag = SingleVlanHeaderSlice::from_slice(rest).map_err(|_| Skip::Truncated)?;
        ether_type = tag.ether_type();
        rest = rest.get(tag.slice().len()..).ok_or(Skip::Truncated)?;
    }
    ip_by_ether_type(ether_type.0, rest)
}

fn is_vlan(t: EtherType) -> bool {
    t == EtherType::VLAN_TAGGED_FRAME
        || t == EtherType::PROVIDER_BRIDGING
        || t == EtherType::VLAN_DOUBLE_TAGGED_FRAME
        || t.0 == ETHERTYPE_QINQ_OLD
}

/// SLL (16-byte header, protocol at 14) and SLL2 (20 bytes, protocol at 0) both carry the
/// EtherType of the payload for IP, whatever the ARPHRD type of the interface.
fn cooked(frame: &[u8], header_len: usize, proto_at: usize) -> Result<&[u8], Skip> {
    let header = frame.get(..header_len).ok_or(Skip::Truncated)?;
    let proto = header
        .get(proto_at..proto_at + 2)
        .and_then(|b| <[u8; 2]>::try_from(b).ok())
        .map(u16::from_be_bytes)
        .ok_or(Skip::Truncated)?;
    ip_by_ether_type(proto, frame.get(header_len..).unwrap_or_default())
}

/// BSD loopback: a 4-byte address family, in the capturing host's byte order (NULL) or in
/// network byte order (LOOP). IPv6's value differs between BSDs (24, 28, 30) and Linux (10).
fn bsd_loopback(frame: &[u8], read: fn([u8; 4]) -> u32) -> Result<&[u8], Skip> {
    let family = frame
        .get(..4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .ok_or(Skip::Truncated)?;
    // A capture written on the other byte order still reads right: try both.
    let family = [read(family), read(family).swap_bytes()];
    let payload = frame.get(4..).unwrap_or_default();
    if family.contains(&2) || family.iter().any(|f| [10, 24, 28, 30].contains(f)) {
        Ok(payload)
    } else {
        Err(Skip::NotIp)
    }
}

fn ip_by_ether_type(ether_type: u16, payload: &[u8]) -> Result<&[u8], Skip> {
    match EtherType(ether_type) {
        EtherType::IPV4 | EtherType::IPV6 => Ok(payload),
        _ => Err(Skip::NotIp),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: [u8; 4] = [0x45, 0, 0, 20];

    #[test]
    fn ethernet_with_two_vlan_tags_reaches_ip() {
        let mut f = vec![0u8; 12];
        f.extend([0x88, 0xa8, 0x00, 0xc8, 0x81, 0x00, 0x00, 0x64, 0x08, 0x00]);
        f.extend(IP);
        assert_eq!(strip(Linktype::ETHERNET, &f), Ok(&IP[..]));
    }

    #[test]
    fn arp_is_not_ip() {
        let mut f = vec![0u8; 12];
        f.extend([0x08, 0x06, 1, 2]);
        assert_eq!(strip(Linktype::ETHERNET, &f), Err(Skip::NotIp));
    }

    #[test]
    fn cut_vlan_tag_is_truncated() {
        let mut f = vec![0u8; 12];
        f.extend([0x81, 0x00, 0x00]);
        assert_eq!(strip(Linktype::ETHERNET, &f), Err(Skip::Truncated));
    }

    #[test]
    fn sll_loopback_interface_reaches_ip() {
        // packet type 0 (host), ARPHRD_LOOPBACK 772, address length 6, protocol IPv4.
        let mut f = vec![0, 0, 0x03, 0x04, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x00];
        f.extend(IP);
        assert_eq!(strip(Linktype::LINUX_SLL, &f), Ok(&IP[..]));
    }

    #[test]
    fn sll2_reaches_ip() {
        let mut f = vec![
            0x86, 0xdd, 0, 0, 0, 0, 0, 1, 0x03, 0x04, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        f.extend(IP);
        assert_eq!(strip(Linktype::LINUX_SLL2, &f), Ok(&IP[..]));
    }

    #[test]
    fn bsd_loopback_either_byte_order() {
        let mut le = vec![2, 0, 0, 0];
        le.extend(IP);
        assert_eq!(strip(Linktype::NULL, &le), Ok(&IP[..]));
        let mut be = vec![0, 0, 0, 30];
        be.extend(IP);
        assert_eq!(strip(Linktype::LOOP, &be), Ok(&IP[..]));
        assert_eq!(strip(Linktype::NULL, &[7, 0, 0, 0]), Err(Skip::NotIp));
    }

    #[test]
    fn unknown_link_type_is_counted_not_parsed() {
        assert_eq!(strip(Linktype(147), &IP), Err(Skip::UnsupportedLink));
    }
}
