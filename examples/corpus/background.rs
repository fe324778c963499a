//! Non-mail traffic made up from scratch: HTTPS-like TCP flows on 443 and DNS over UDP.
//!
//! Sizes follow what such traffic looks like on a link: a TLS handshake (a real ClientHello
//! taken from a fixture when there is one), a request of a few hundred bytes, a response
//! log-uniform between 1 KiB and 4 MiB in MSS-sized segments with an ACK every second segment,
//! then FIN both ways; DNS queries of 40–70 bytes and answers of 80–500.

use super::fixtures::MSS;
use super::packet::{ethernet, ipv4_header, Rng};

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;

#[derive(Clone, Copy, Debug)]
enum Fill {
    None,
    ClientHello,
    /// TLS records of this content type (22 handshake, 23 application data).
    Records(u8),
}

/// One packet of a synthetic TCP flow.
#[derive(Clone, Copy, Debug)]
struct Step {
    gap_ns: u32,
    from_client: bool,
    flags: u8,
    len: u16,
    fill: Fill,
}

/// What the synthetic flows borrow: pseudo-random payload bytes and a real ClientHello.
pub struct Material {
    noise: Vec<u8>,
    client_hello: Vec<u8>,
}

impl Material {
    pub fn new(rng: &mut Rng, client_hello: Option<Vec<u8>>) -> Material {
        let noise = (0..(1 << 16) + 2 * MSS)
            .map(|_| rng.next_u64() as u8)
            .collect();
        let client_hello = client_hello.unwrap_or_else(|| {
            let mut ch = vec![0x16, 0x03, 0x01, 0x02, 0x00];
            ch.extend(std::iter::repeat_n(0u8, 512));
            ch
        });
        Material {
            noise,
            client_hello,
        }
    }
}

/// An HTTPS-like flow being written out.
pub struct Https {
    steps: Vec<Step>,
    next: usize,
    seq: [u32; 2],
    ts_val: u32,
    ip_id: u16,
}

impl Https {
    pub fn new(rng: &mut Rng, m: &Material) -> Https {
        let rtt = rng.range(2_000_000, 80_000_000) as u32;
        let burst = || 15_000u32;
        let mut steps = Vec::new();
        let mut push = |from_client: bool, flags: u8, len: usize, fill: Fill, gap: u32| {
            steps.push(Step {
                gap_ns: gap,
                from_client,
                flags,
                len: len as u16,
                fill,
            })
        };
        push(true, SYN, 0, Fill::None, 0);
        push(false, SYN | ACK, 0, Fill::None, rtt / 2);
        push(true, ACK, 0, Fill::None, rtt / 2);
        push(
            true,
            PSH | ACK,
            m.client_hello.len().min(MSS),
            Fill::ClientHello,
            50_000,
        );
        push(false, ACK, 0, Fill::None, rtt / 2);
        let flight = rng.range(2_500, 5_500) as usize;
        data(
            &mut push,
            false,
            flight,
            Fill::Records(22),
            1_000_000,
            burst(),
        );
        push(true, PSH | ACK, 126, Fill::Records(22), 100_000);
        let request = rng.range(200, 900) as usize;
        push(true, PSH | ACK, request, Fill::Records(23), 30_000);
        let response = rng.log_uniform(1 << 10, 4 << 20) as usize;
        data(
            &mut push,
            false,
            response,
            Fill::Records(23),
            rtt / 2,
            burst(),
        );
        push(
            true,
            FIN | ACK,
            0,
            Fill::None,
            rng.range(1_000_000, 50_000_000) as u32,
        );
        push(false, FIN | ACK, 0, Fill::None, rtt / 2);
        push(true, ACK, 0, Fill::None, rtt / 2);
        Https {
            steps,
            next: 0,
            seq: [rng.next_u64() as u32, rng.next_u64() as u32],
            ts_val: rng.next_u64() as u32,
            ip_id: rng.next_u64() as u16,
        }
    }

    /// Bytes of all frames of this flow.
    pub fn frame_bytes(&self) -> u64 {
        self.steps
            .iter()
            .map(|s| 14 + 20 + tcp_header_len(s.flags) as u64 + u64::from(s.len))
            .sum()
    }

    /// Nanoseconds before the next packet, if there is one.
    pub fn next_gap(&self) -> Option<u64> {
        self.steps.get(self.next).map(|s| u64::from(s.gap_ns))
    }

    /// Write the next frame into `out`; false when the flow is over.
    pub fn write(&mut self, ends: &Ends, rng: &mut Rng, m: &Material, out: &mut Vec<u8>) -> bool {
        let Some(s) = self.steps.get(self.next).copied() else {
            return false;
        };
        self.next += 1;
        let (me, peer) = if s.from_client { (0, 1) } else { (1, 0) };
        let seq = self.seq[me];
        let ack = if s.flags & SYN != 0 && s.flags & ACK == 0 {
            0
        } else {
            self.seq[peer]
        };
        self.seq[me] = seq
            .wrapping_add(u32::from(s.len))
            .wrapping_add(u32::from(s.flags & (SYN | FIN) != 0));
        self.ts_val = self.ts_val.wrapping_add(1 + (s.gap_ns >> 20));
        self.ip_id = self.ip_id.wrapping_add(1);
        let tcp_len = tcp_header_len(s.flags);
        let start = out.len();
        ethernet(out, s.from_client);
        let ip_at = out.len();
        let (src, dst, sp, dp) = ends.oriented(s.from_client);
        ipv4_header(out, src, dst, 6, tcp_len + usize::from(s.len), self.ip_id);
        out.extend_from_slice(&sp.to_be_bytes());
        out.extend_from_slice(&dp.to_be_bytes());
        out.extend_from_slice(&seq.to_be_bytes());
        out.extend_from_slice(&ack.to_be_bytes());
        out.push(((tcp_len / 4) as u8) << 4);
        out.push(s.flags);
        out.extend_from_slice(&502u16.to_be_bytes());
        out.extend_from_slice(&[0, 0, 0, 0]);
        if s.flags & SYN != 0 {
            out.extend_from_slice(&[2, 4, 0x05, 0xb4, 4, 2]);
            timestamps(out, self.ts_val);
            out.extend_from_slice(&[1, 3, 3, 7]);
        } else {
            out.extend_from_slice(&[1, 1]);
            timestamps(out, self.ts_val);
        }
        fill(out, s.fill, usize::from(s.len), rng, m);
        super::packet::fix_checksums(&mut out[ip_at..]);
        debug_assert!(out.len() - start <= 1514);
        true
    }
}

/// Segments of `total` bytes one way, the other side acknowledging every second one.
fn data(
    push: &mut impl FnMut(bool, u8, usize, Fill, u32),
    from_client: bool,
    total: usize,
    fill: Fill,
    first_gap: u32,
    gap: u32,
) {
    let mut left = total;
    let mut n = 0;
    while left > 0 {
        let len = left.min(MSS);
        left -= len;
        let flags = if left == 0 { PSH | ACK } else { ACK };
        push(
            from_client,
            flags,
            len,
            fill,
            if n == 0 { first_gap } else { gap },
        );
        n += 1;
        if n % 2 == 0 || left == 0 {
            push(!from_client, ACK, 0, Fill::None, 20_000);
        }
    }
}

fn tcp_header_len(flags: u8) -> usize {
    if flags & SYN != 0 {
        40
    } else {
        32
    }
}

fn timestamps(out: &mut Vec<u8>, ts_val: u32) {
    out.extend_from_slice(&[8, 10]);
    out.extend_from_slice(&ts_val.to_be_bytes());
    out.extend_from_slice(&ts_val.wrapping_sub(7).to_be_bytes());
}

fn fill(out: &mut Vec<u8>, fill: Fill, len: usize, rng: &mut Rng, m: &Material) {
    match fill {
        Fill::None => {}
        Fill::ClientHello => out.extend_from_slice(&m.client_hello[..len]),
        Fill::Records(kind) => {
            // A record header at the start of the segment, then ciphertext-like bytes.
            let header = [kind, 3, 3, (len >> 8) as u8, len as u8];
            let at = rng.range(0, (m.noise.len() - len) as u64) as usize;
            let noise = &m.noise[at..at + len];
            let n = len.min(header.len());
            out.extend_from_slice(&header[..n]);
            out.extend_from_slice(&noise[n..]);
        }
    }
}

/// The two endpoints of a flow.
#[derive(Clone, Copy, Debug)]
pub struct Ends {
    pub client: [u8; 4],
    pub server: [u8; 4],
    pub client_port: u16,
    pub server_port: u16,
}

impl Ends {
    /// (source address, destination address, source port, destination port).
    pub fn oriented(&self, from_client: bool) -> ([u8; 4], [u8; 4], u16, u16) {
        if from_client {
            (self.client, self.server, self.client_port, self.server_port)
        } else {
            (self.server, self.client, self.server_port, self.client_port)
        }
    }
}

/// One DNS lookup: a query and its answer.
pub struct Dns {
    id: u16,
    name: Vec<u8>,
    answers: u16,
    next: u8,
    gap_ns: u64,
}

impl Dns {
    pub fn new(rng: &mut Rng) -> Dns {
        // A name of two to four labels, 20 to 45 bytes in wire form.
        let mut name = Vec::new();
        let labels = rng.range(2, 5);
        for i in 0..labels {
            let len = if i + 1 == labels { 3 } else { rng.range(3, 12) };
            name.push(len as u8);
            name.extend((0..len).map(|_| b'a' + rng.range(0, 26) as u8));
        }
        name.push(0);
        Dns {
            id: rng.next_u64() as u16,
            name,
            answers: rng.range(1, 28) as u16,
            next: 0,
            gap_ns: rng.range(500_000, 40_000_000),
        }
    }

    fn query_len(&self) -> usize {
        12 + self.name.len() + 4
    }

    fn answer_len(&self) -> usize {
        self.query_len() + usize::from(self.answers) * 16
    }

    pub fn frame_bytes(&self) -> u64 {
        (2 * (14 + 20 + 8) + self.query_len() + self.answer_len()) as u64
    }

    pub fn next_gap(&self) -> Option<u64> {
        match self.next {
            0 => Some(0),
            1 => Some(self.gap_ns),
            _ => None,
        }
    }

    pub fn write(&mut self, ends: &Ends, out: &mut Vec<u8>) -> bool {
        let from_client = match self.next {
            0 => true,
            1 => false,
            _ => return false,
        };
        self.next += 1;
        let mut msg = Vec::with_capacity(self.answer_len());
        msg.extend_from_slice(&self.id.to_be_bytes());
        let (flags, ancount) = if from_client {
            (0x0100u16, 0)
        } else {
            (0x8180, self.answers)
        };
        msg.extend_from_slice(&flags.to_be_bytes());
        msg.extend_from_slice(&1u16.to_be_bytes());
        msg.extend_from_slice(&ancount.to_be_bytes());
        msg.extend_from_slice(&[0, 0, 0, 0]);
        msg.extend_from_slice(&self.name);
        msg.extend_from_slice(&[0, 1, 0, 1]);
        for i in 0..ancount {
            // A pointer to the question's name, type A, class IN, TTL 300, one address.
            msg.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 1, 44, 0, 4]);
            msg.extend_from_slice(&[192, 0, 2, i as u8]);
        }
        ethernet(out, from_client);
        let ip_at = out.len();
        let (src, dst, sp, dp) = ends.oriented(from_client);
        ipv4_header(
            out,
            src,
            dst,
            17,
            8 + msg.len(),
            self.id ^ u16::from(self.next),
        );
        out.extend_from_slice(&sp.to_be_bytes());
        out.extend_from_slice(&dp.to_be_bytes());
        out.extend_from_slice(&((8 + msg.len()) as u16).to_be_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&msg);
        super::packet::fix_checksums(&mut out[ip_at..]);
        true
    }
}
