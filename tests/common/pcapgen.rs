//! Captures made at test time (too large to commit): classic pcap, Ethernet, IPv4, TCP with
//! correct lengths and checksums. Used by tests/floods.rs, tests/evasion.rs and
//! examples/make-flood.rs (which includes this file by path).
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;

pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;

/// A classic little-endian microsecond pcap of Ethernet frames.
pub struct PcapWriter<W: Write> {
    out: W,
}

impl<W: Write> PcapWriter<W> {
    pub fn new(mut out: W) -> io::Result<Self> {
        out.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
        out.write_all(&2u16.to_le_bytes())?;
        out.write_all(&4u16.to_le_bytes())?;
        out.write_all(&[0; 8])?;
        out.write_all(&262_144u32.to_le_bytes())?;
        out.write_all(&1u32.to_le_bytes())?;
        Ok(PcapWriter { out })
    }

    /// One frame at `ts_us` microseconds since the epoch.
    pub fn frame(&mut self, ts_us: u64, frame: &[u8]) -> io::Result<()> {
        let len = u32::try_from(frame.len()).expect("frame fits a pcap record");
        let sec = u32::try_from(ts_us / 1_000_000).expect("timestamp fits");
        let usec = (ts_us % 1_000_000) as u32;
        for v in [sec, usec, len, len] {
            self.out.write_all(&v.to_le_bytes())?;
        }
        self.out.write_all(frame)
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum = 0u32;
    let mut odd: Option<u8> = None;
    for part in parts {
        for &b in *part {
            match odd.take() {
                Some(hi) => sum += u32::from(u16::from_be_bytes([hi, b])),
                None => odd = Some(b),
            }
        }
    }
    if let Some(hi) = odd {
        sum += u32::from(u16::from_be_bytes([hi, 0]));
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An Ethernet frame with an IPv4/TCP segment.
pub fn tcp_frame(
    src: SocketAddrV4,
    dst: SocketAddrV4,
    seq: u32,
    ack: u32,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut tcp = Vec::with_capacity(20 + payload.len());
    tcp.extend(src.port().to_be_bytes());
    tcp.extend(dst.port().to_be_bytes());
    tcp.extend(seq.to_be_bytes());
    tcp.extend(ack.to_be_bytes());
    tcp.extend([5 << 4, flags]);
    tcp.extend(65535u16.to_be_bytes());
    tcp.extend([0, 0, 0, 0]);
    tcp.extend_from_slice(payload);
    let tcp_len = u16::try_from(tcp.len()).expect("segment fits IPv4");
    let pseudo: Vec<u8> = [
        &src.ip().octets()[..],
        &dst.ip().octets()[..],
        &[0, 6],
        &tcp_len.to_be_bytes()[..],
    ]
    .concat();
    let c = checksum(&[&pseudo, &tcp]);
    tcp[16..18].copy_from_slice(&c.to_be_bytes());
    let mut ip = vec![0x45, 0];
    ip.extend((20 + tcp_len).to_be_bytes());
    ip.extend([0, 0, 0x40, 0, 64, 6, 0, 0]);
    ip.extend(src.ip().octets());
    ip.extend(dst.ip().octets());
    let c = checksum(&[&ip]);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut frame = vec![0u8; 12];
    frame.extend([0x08, 0x00]);
    frame.extend(ip);
    frame.extend(tcp);
    frame
}

/// One TCP connection written packet by packet, sequence numbers tracked per side.
pub struct Conversation {
    pub client: SocketAddrV4,
    pub server: SocketAddrV4,
    pub ts_us: u64,
    cseq: u32,
    sseq: u32,
    /// Stream bytes per side (what the record's byte counts say).
    pub to_server: u64,
    pub to_client: u64,
}

impl Conversation {
    pub fn new(client: SocketAddrV4, server: SocketAddrV4, ts_us: u64) -> Self {
        Conversation {
            client,
            server,
            ts_us,
            cseq: 1_000,
            sseq: 4_000_000_000,
            to_server: 0,
            to_client: 0,
        }
    }

    fn emit<W: Write>(
        &mut self,
        w: &mut PcapWriter<W>,
        from_client: bool,
        flags: u8,
        payload: &[u8],
    ) -> io::Result<()> {
        let (src, dst, seq, ack) = if from_client {
            (self.client, self.server, self.cseq, self.sseq)
        } else {
            (self.server, self.client, self.sseq, self.cseq)
        };
        let ack = if flags & ACK != 0 { ack } else { 0 };
        w.frame(self.ts_us, &tcp_frame(src, dst, seq, ack, flags, payload))?;
        self.ts_us += 10;
        let n = payload.len() as u32 + u32::from(flags & (SYN | FIN) != 0);
        if from_client {
            self.cseq = self.cseq.wrapping_add(n);
            self.to_server += payload.len() as u64;
        } else {
            self.sseq = self.sseq.wrapping_add(n);
            self.to_client += payload.len() as u64;
        }
        Ok(())
    }

    pub fn handshake<W: Write>(&mut self, w: &mut PcapWriter<W>) -> io::Result<()> {
        self.emit(w, true, SYN, b"")?;
        self.emit(w, false, SYN | ACK, b"")?;
        self.emit(w, true, ACK, b"")
    }

    /// Client bytes in segments of at most 64,000 bytes.
    pub fn client<W: Write>(&mut self, w: &mut PcapWriter<W>, data: &[u8]) -> io::Result<()> {
        for part in data.chunks(64_000) {
            self.emit(w, true, PSH | ACK, part)?;
        }
        Ok(())
    }

    pub fn server<W: Write>(&mut self, w: &mut PcapWriter<W>, data: &[u8]) -> io::Result<()> {
        for part in data.chunks(64_000) {
            self.emit(w, false, PSH | ACK, part)?;
        }
        Ok(())
    }

    pub fn server_ack<W: Write>(&mut self, w: &mut PcapWriter<W>) -> io::Result<()> {
        self.emit(w, false, ACK, b"")
    }

    pub fn close<W: Write>(&mut self, w: &mut PcapWriter<W>) -> io::Result<()> {
        self.emit(w, false, FIN | ACK, b"")?;
        self.emit(w, true, FIN | ACK, b"")?;
        self.emit(w, false, ACK, b"")
    }
}

/// A plaintext SMTP session whose one message carries `body_bytes` of body (lines of 998
/// bytes: within RFC 5321's limit), streamed to the writer: constant memory at both ends.
/// Returns the conversation (its byte counts are the record's).
pub fn big_message<W: Write>(
    w: &mut PcapWriter<W>,
    client: SocketAddrV4,
    server: SocketAddrV4,
    ts_us: u64,
    body_bytes: u64,
) -> io::Result<Conversation> {
    let mut c = Conversation::new(client, server, ts_us);
    c.handshake(w)?;
    c.server(w, b"220 mx.example.test ESMTP\r\n")?;
    c.client(w, b"EHLO client.example.test\r\n")?;
    c.server(w, b"250-mx.example.test\r\n250 8BITMIME\r\n")?;
    c.client(w, b"MAIL FROM:<big.sender@client.example.test>\r\n")?;
    c.server(w, b"250 2.1.0 Ok\r\n")?;
    c.client(w, b"RCPT TO:<big.rcpt@example.test>\r\n")?;
    c.server(w, b"250 2.1.5 Ok\r\n")?;
    c.client(w, b"DATA\r\n")?;
    c.server(w, b"354 End data with <CR><LF>.<CR><LF>\r\n")?;
    c.client(w, b"Subject: big-message-subject\r\n\r\n")?;
    let mut line = vec![b'B'; 998];
    line.extend(b"\r\n");
    let chunk: Vec<u8> = line.iter().copied().cycle().take(line.len() * 64).collect();
    let mut sent = 0u64;
    while sent < body_bytes {
        c.client(w, &chunk)?;
        sent += chunk.len() as u64;
        c.server_ack(w)?;
    }
    c.client(w, b".\r\n")?;
    c.server(w, b"250 2.0.0 Ok: queued\r\n")?;
    c.client(w, b"QUIT\r\n")?;
    c.server(w, b"221 2.0.0 Bye\r\n")?;
    c.close(w)?;
    Ok(c)
}

/// The frames of a classic little-endian microsecond pcap (the fixtures' format).
pub fn read_pcap(path: &Path) -> io::Result<Vec<(u64, Vec<u8>)>> {
    let mut data = Vec::new();
    std::fs::File::open(path)?.read_to_end(&mut data)?;
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "not a LE µs Ethernet pcap");
    if data.get(..4) != Some(&[0xd4, 0xc3, 0xb2, 0xa1][..]) {
        return Err(bad());
    }
    let mut out = Vec::new();
    let mut off = 24;
    while off + 16 <= data.len() {
        let u = |i: usize| u32::from_le_bytes(data[off + i..off + i + 4].try_into().unwrap());
        let (sec, usec, incl) = (u(0), u(4), u(8) as usize);
        let frame = data
            .get(off + 16..off + 16 + incl)
            .ok_or_else(bad)?
            .to_vec();
        out.push((u64::from(sec) * 1_000_000 + u64::from(usec), frame));
        off += 16 + incl;
    }
    Ok(out)
}

/// Rewrite port `from` to `to` in an Ethernet/IPv4/TCP frame (either side), TCP checksum
/// recomputed. Frames of other shapes are left alone.
pub fn rewrite_port(frame: &mut [u8], from: u16, to: u16) {
    if frame.len() < 34 || frame[12..14] != [0x08, 0x00] || frame[23] != 6 {
        return;
    }
    let ihl = usize::from(frame[14] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([frame[16], frame[17]]));
    let t = 14 + ihl;
    if frame.len() < t + 20 || total < ihl + 20 || frame.len() < 14 + total {
        return;
    }
    for at in [t, t + 2] {
        if frame[at..at + 2] == from.to_be_bytes() {
            frame[at..at + 2].copy_from_slice(&to.to_be_bytes());
        }
    }
    frame[t + 16..t + 18].copy_from_slice(&[0, 0]);
    let seg_len = (total - ihl) as u16;
    let pseudo: Vec<u8> = [&frame[26..34], &[0, 6], &seg_len.to_be_bytes()[..]].concat();
    let c = checksum(&[&pseudo, &frame[t..14 + total]]);
    frame[t + 16..t + 18].copy_from_slice(&c.to_be_bytes());
}

/// The flood: `syns` connections that send one SYN and nothing more, and `half_open` whose
/// SYN is answered by a SYN-ACK that is never acknowledged, from distinct clients counted up
/// from `clients` (16 ports per address), to `server`, spread evenly over
/// `[start_us, start_us + span_us)`. Returned unsorted, to be merged with other frames by time.
pub fn flood_frames(
    server: SocketAddrV4,
    clients: Ipv4Addr,
    syns: u32,
    half_open: u32,
    start_us: u64,
    span_us: u64,
) -> impl Iterator<Item = (u64, Vec<u8>)> {
    let total = u64::from(syns) + u64::from(half_open);
    (0..syns + half_open).flat_map(move |i| {
        let ts = start_us + span_us * u64::from(i) / total.max(1);
        let ip = Ipv4Addr::from(u32::from(clients).wrapping_add(i >> 4));
        let client = SocketAddrV4::new(ip, 40_000 + (i & 0xf) as u16);
        let isn = i.wrapping_mul(2_654_435_761);
        let mut out = vec![(ts, tcp_frame(client, server, isn, 0, SYN, b""))];
        if i >= syns {
            let synack = tcp_frame(server, client, !isn, isn.wrapping_add(1), SYN | ACK, b"");
            out.push((ts + 1, synack));
        }
        out
    })
}
