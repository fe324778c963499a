//! The kernel-side BPF filter for a live capture: only TCP on the mapped mail ports reaches
//! mailtap, so a busy link costs the kernel's filter, not a copy of every frame.
//!
//! Built from the port map, so `--port 2525=smtp` captures 2525 too. On Ethernet the filter
//! also matches the same ports behind an 802.1Q tag (a trunk or a span port that keeps tags):
//! BPF's `vlan` shifts every later offset by the tag, so the plain and the tagged form are
//! alternatives. A second tag (QinQ) would need `vlan and vlan`; a span port seldom forwards
//! those, and `--filter` can say so when one does.
//!
//! Mirror encapsulations pass too, whatever they carry (the filter cannot look inside them):
//! GRE (which carries ERSPAN), VXLAN on UDP 4789, and IP-in-IP. So do IP fragments: only the
//! first fragment of a datagram holds the ports, and BPF's `tcp port` matches no other.

use crate::config::PortMap;

/// The tunnels decoding opens: GRE (and ERSPAN in it), VXLAN, IPv4 and IPv6 in IPv4 or IPv6.
pub const TUNNELS: &str = "ip proto 47 or ip6 proto 47 or udp port 4789 or ip proto 4 \
                           or ip proto 41 or ip6 proto 4 or ip6 proto 41";

/// IP fragments, whatever they carry: IPv4 with More Fragments set or a fragment offset, and
/// IPv6 whose first extension header is a Fragment header.
pub const FRAGMENTS: &str = "(ip[6:2] & 0x3fff != 0) or ip6 proto 44";

/// `(tcp port 25 or tcp port 110 … or ip proto 47 … or (ip[6:2] …)) or (vlan and (…))`; without the `vlan`
/// part when `vlan` is false (link types without tags, e.g. Linux cooked capture on `any`,
/// where libpcap refuses the keyword).
pub fn port_filter(ports: &PortMap, vlan: bool) -> String {
    let list = ports
        .ports()
        .map(|(port, _)| format!("tcp port {port}"))
        .collect::<Vec<_>>()
        .join(" or ");
    let list = format!("{list} or {TUNNELS} or {FRAGMENTS}");
    if vlan {
        format!("({list}) or (vlan and ({list}))")
    } else {
        format!("({list})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PortMapping;

    const DEFAULT_PORTS: &str = "tcp port 25 or tcp port 110 or tcp port 143 or tcp port 465 \
                                 or tcp port 587 or tcp port 993 or tcp port 995 or ip proto 47 \
                                 or ip6 proto 47 or udp port 4789 or ip proto 4 or ip proto 41 \
                                 or ip6 proto 4 or ip6 proto 41 \
                                 or (ip[6:2] & 0x3fff != 0) or ip6 proto 44";

    #[test]
    fn default_ports_plain_and_tagged() {
        assert_eq!(
            port_filter(&PortMap::default(), true),
            format!("({DEFAULT_PORTS}) or (vlan and ({DEFAULT_PORTS}))")
        );
    }

    #[test]
    fn no_vlan_clause_where_the_link_has_no_tags() {
        assert_eq!(
            port_filter(&PortMap::default(), false),
            format!("({DEFAULT_PORTS})")
        );
    }

    #[test]
    fn extra_ports_are_captured_in_order() {
        let extra: PortMapping = "2525=smtp".parse().expect("valid mapping");
        let f = port_filter(&PortMap::new(&[extra]), false);
        assert!(
            f.contains("tcp port 995 or tcp port 2525 or ip proto 47"),
            "{f}"
        );
    }
}
