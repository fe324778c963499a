//! Mail connections taken from the real fixture captures, as templates to replay many times.
//!
//! Every IPv4 TCP connection on a mail port becomes a template: its packets as IPv4 bytes
//! (whatever the fixture's link type), which side sent each, and the time since the previous
//! packet. Loopback captures carry segments of up to 64 KiB; templates cut them to a
//! 1448-byte MSS (and SYNs announce 1460) so the corpus has Ethernet-sized packets.

use mailtap::config::PortMap;
use mailtap::source::file::{CaptureFile, Input};
use mailtap::source::{Linktype, Timestamp};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Payload bytes per segment on a 1500-byte Ethernet with TCP timestamps.
pub const MSS: usize = 1448;
/// Time between the pieces of a cut-up segment (about 1448 bytes at 1 Gbit/s).
const PIECE_GAP_NS: u64 = 12_000;

#[derive(Clone, Debug)]
pub struct TemplatePacket {
    /// Nanoseconds since the template's previous packet.
    pub gap_ns: u64,
    pub from_client: bool,
    /// An IPv4 packet: header, TCP header, payload.
    pub ip: Vec<u8>,
}

#[derive(Clone, Debug)]
pub struct Template {
    /// `case` or `case#n` for the n-th connection of a case.
    pub name: String,
    pub server_port: u16,
    pub packets: Vec<TemplatePacket>,
    /// Bytes of the frames in the corpus (Ethernet header included, pcap record header not).
    pub frame_bytes: u64,
}

/// Offsets in an IPv4/TCP packet: (TCP header start, payload start).
pub fn tcp_offsets(ip: &[u8]) -> Option<(usize, usize)> {
    let ihl = usize::from(ip.first()? & 0x0f) * 4;
    let data_offset = usize::from(ip.get(ihl + 12)? >> 4) * 4;
    let payload = ihl + data_offset;
    (payload <= ip.len() && ihl >= 20 && data_offset >= 20).then_some((ihl, payload))
}

/// Every case folder's capture, in name order.
pub fn captures(dir: &Path) -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    cases.sort();
    cases
        .into_iter()
        .filter_map(|c| {
            ["capture.pcap", "capture.pcapng"]
                .iter()
                .map(|f| c.join(f))
                .find(|p| p.is_file())
        })
        .collect()
}

/// The templates of every fixture under `dir`.
pub fn load(dir: &Path) -> Result<Vec<Template>, String> {
    let ports = PortMap::default();
    let mut out = Vec::new();
    for path in captures(dir) {
        let case = path
            .parent()
            .and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut packets: Vec<(Timestamp, Vec<u8>)> = Vec::new();
        let mut file = CaptureFile::open(&Input::Path(path.clone())).map_err(|e| e.to_string())?;
        file.for_each(&mut |p, _| {
            if let Some(ip) = ipv4_of(p.link, p.data) {
                packets.push((p.ts, ip.to_vec()));
            }
        })
        .map_err(|e| e.to_string())?;
        out.extend(connections(&case, &packets, &ports));
    }
    if out.is_empty() {
        return Err(format!("no IPv4 mail connection in {}", dir.display()));
    }
    Ok(out)
}

/// The IPv4 packet inside a frame, if it is one (not a fragment, TCP or anything else).
fn ipv4_of(link: Linktype, frame: &[u8]) -> Option<&[u8]> {
    let ip = match link {
        Linktype::ETHERNET => {
            let mut at = 12;
            loop {
                let ethertype = u16::from_be_bytes([*frame.get(at)?, *frame.get(at + 1)?]);
                match ethertype {
                    0x8100 | 0x88a8 => at += 4,
                    0x0800 => break frame.get(at + 2..)?,
                    _ => return None,
                }
            }
        }
        Linktype::RAW | Linktype::IPV4 => frame,
        Linktype::NULL | Linktype::LOOP => frame.get(4..)?,
        Linktype::LINUX_SLL => frame.get(16..)?,
        Linktype::LINUX_SLL2 => frame.get(20..)?,
        _ => return None,
    };
    let version = ip.first()? >> 4;
    let total = usize::from(u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]));
    let fragment = u16::from_be_bytes([*ip.get(6)?, *ip.get(7)?]) & 0x3fff != 0;
    (version == 4 && !fragment && total <= ip.len()).then(|| &ip[..total])
}

fn ports_of(ip: &[u8]) -> Option<(u16, u16)> {
    if ip.get(9) != Some(&6) {
        return None;
    }
    let (tcp, _) = tcp_offsets(ip)?;
    Some((
        u16::from_be_bytes([ip[tcp], ip[tcp + 1]]),
        u16::from_be_bytes([ip[tcp + 2], ip[tcp + 3]]),
    ))
}

fn endpoint(ip: &[u8], src: bool, port: u16) -> ([u8; 4], u16) {
    let at = if src { 12 } else { 16 };
    ([ip[at], ip[at + 1], ip[at + 2], ip[at + 3]], port)
}

/// Group a capture's packets by mail connection, in order of first packet.
fn connections(case: &str, packets: &[(Timestamp, Vec<u8>)], ports: &PortMap) -> Vec<Template> {
    type Key = (([u8; 4], u16), ([u8; 4], u16));
    let mut order: Vec<Key> = Vec::new();
    let mut by_key: BTreeMap<Key, Vec<(Timestamp, &[u8])>> = BTreeMap::new();
    for (ts, ip) in packets {
        let Some((sp, dp)) = ports_of(ip) else {
            continue;
        };
        if ports.get(sp).is_none() && ports.get(dp).is_none() {
            continue;
        }
        let (a, b) = (endpoint(ip, true, sp), endpoint(ip, false, dp));
        let key = if a <= b { (a, b) } else { (b, a) };
        by_key
            .entry(key)
            .or_insert_with(|| {
                order.push(key);
                Vec::new()
            })
            .push((*ts, ip));
    }
    let many = order.len() > 1;
    order
        .iter()
        .enumerate()
        .filter_map(|(n, key)| {
            let name = if many {
                format!("{case}#{n}")
            } else {
                case.to_string()
            };
            template(name, by_key.get(key)?, ports)
        })
        .collect()
}

fn template(name: String, packets: &[(Timestamp, &[u8])], ports: &PortMap) -> Option<Template> {
    let (_, first) = packets.first()?;
    let (sp, dp) = ports_of(first)?;
    let (tcp, _) = tcp_offsets(first)?;
    let flags = first[tcp + 13];
    let syn_only = flags & 0x12 == 0x02;
    let syn_ack = flags & 0x12 == 0x12;
    // The client: the SYN sender, else the side not on the mail port.
    let client = if syn_only {
        endpoint(first, true, sp)
    } else if syn_ack || (ports.get(sp).is_some() && ports.get(dp).is_none()) {
        endpoint(first, false, dp)
    } else {
        endpoint(first, true, sp)
    };
    let server_port = if client.1 == sp { dp } else { sp };
    let mut out = Vec::new();
    let mut previous = packets.first()?.0;
    for (ts, ip) in packets {
        let (psp, _) = ports_of(ip)?;
        let from_client = endpoint(ip, true, psp) == client;
        let gap_ns = ts.as_nanos().saturating_sub(previous.as_nanos());
        previous = *ts;
        cut(ip, from_client, gap_ns, &mut out);
    }
    let frame_bytes = out
        .iter()
        .map(|p| (super::packet::ETHERNET_HEADER + p.ip.len()) as u64)
        .sum();
    Some(Template {
        name,
        server_port,
        packets: out,
        frame_bytes,
    })
}

/// One captured segment as MSS-sized segments (SYN: MSS option clamped to 1460).
fn cut(ip: &[u8], from_client: bool, gap_ns: u64, out: &mut Vec<TemplatePacket>) {
    let Some((tcp, payload_at)) = tcp_offsets(ip) else {
        return;
    };
    let mut header = ip[..payload_at].to_vec();
    clamp_mss(&mut header, tcp);
    let payload = &ip[payload_at..];
    if payload.len() <= MSS {
        let mut whole = header;
        whole.extend_from_slice(payload);
        out.push(TemplatePacket {
            gap_ns,
            from_client,
            ip: whole,
        });
        return;
    }
    let flags = ip[tcp + 13];
    let seq = u32::from_be_bytes([ip[tcp + 4], ip[tcp + 5], ip[tcp + 6], ip[tcp + 7]]);
    let pieces = payload.len().div_ceil(MSS);
    for (i, piece) in payload.chunks(MSS).enumerate() {
        let mut p = header.clone();
        let last = i + 1 == pieces;
        // FIN and PSH belong to the last piece only.
        p[tcp + 13] = if last { flags } else { flags & !0x09 };
        let s = seq.wrapping_add((i * MSS) as u32);
        p[tcp + 4..tcp + 8].copy_from_slice(&s.to_be_bytes());
        p.extend_from_slice(piece);
        let total = p.len() as u16;
        p[2..4].copy_from_slice(&total.to_be_bytes());
        out.push(TemplatePacket {
            gap_ns: if i == 0 { gap_ns } else { PIECE_GAP_NS },
            from_client,
            ip: p,
        });
    }
}

fn clamp_mss(header: &mut [u8], tcp: usize) {
    let mut at = tcp + 20;
    while at < header.len() {
        match header[at] {
            0 => return,
            1 => at += 1,
            kind => {
                let Some(&len) = header.get(at + 1) else {
                    return;
                };
                if kind == 2 && len == 4 && at + 4 <= header.len() {
                    let mss = u16::from_be_bytes([header[at + 2], header[at + 3]]);
                    let clamped = mss.min((MSS + 12) as u16);
                    header[at + 2..at + 4].copy_from_slice(&clamped.to_be_bytes());
                }
                at += usize::from(len.max(2));
            }
        }
    }
}

/// The idle-connection template: a TLS 1.2 implicit-TLS connection up to and including the
/// server's first application-data segment (the SMTP greeting inside TLS) and the client's
/// acknowledgment of it, if that is a bare ACK. The handshake is complete and judged, so the
/// sensor bypasses the flow; then nothing more, no FIN.
pub fn idle(templates: &[Template], case: &str) -> Option<Template> {
    let t = templates.iter().find(|t| t.name == case)?;
    let greeting = t.packets.iter().position(|p| {
        let Some((_, at)) = tcp_offsets(&p.ip) else {
            return false;
        };
        !p.from_client && p.ip.get(at) == Some(&23)
    })?;
    let mut end = greeting + 1;
    if let Some(next) = t.packets.get(end) {
        let bare_ack = tcp_offsets(&next.ip).is_some_and(|(tcp, at)| {
            next.from_client && at == next.ip.len() && next.ip[tcp + 13] & 0x07 == 0
        });
        if bare_ack {
            end += 1;
        }
    }
    let packets = t.packets[..end].to_vec();
    let frame_bytes = packets
        .iter()
        .map(|p| (super::packet::ETHERNET_HEADER + p.ip.len()) as u64)
        .sum();
    Some(Template {
        name: format!("{case} (idle)"),
        server_port: t.server_port,
        packets,
        frame_bytes,
    })
}
