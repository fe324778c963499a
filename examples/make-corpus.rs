//! Build a large, deterministic capture for throughput and memory measurements from the real
//! mail sessions in `fixtures/`, mixed with made-up non-mail traffic.
//!
//! ```sh
//! cargo run --release --example make-corpus -- --size 2G --mail-share 0.3 --seed 1 -o corpus.pcap
//! cargo run --release --example make-corpus -- --size 2G --mail-share 1 --seed 1 -o all-mail.pcap
//! cargo run --release --example make-corpus -- --size 1M --idle-connections 100000 -o idle.pcap
//! ```
//!
//! - Every mail connection of every fixture (IPv4) is a template. Each copy gets its own
//!   client (10.0.0.0/8) and server (198.18.0.0/15) address, client port, and initial
//!   sequence numbers; checksums are recomputed. Segments are cut to a 1448-byte MSS.
//! - Up to `--concurrent N` connections are open at a time: each starts at a spread-out time,
//!   and when one ends another starts, so the packets of N sessions interleave. Copies of mail
//!   connections get a round-trip time (5–120 ms) added where the capture turns around.
//! - `--rate R` (default 1G bit/s) paces connection starts so that packet time advances like
//!   a link of that rate: flow timeouts in the sensor (FIN linger, idle) then act as they
//!   would live, and memory reaches its steady state. `--rate 0` does not pace.
//! - `--mail-share S` is the share of frame bytes in mail connections; the rest is HTTPS-like
//!   TCP on 443 and DNS over UDP (see `corpus/background.rs`).
//! - `--idle-connections N` opens N more mail connections first (spread over the first
//!   second): a TLS 1.2 handshake on 465 and the encrypted greeting, then silence, no FIN;
//!   the sensor judges and bypasses them and holds them to the end of the capture.
//! - Output: classic pcap, Ethernet, µs timestamps, written as it is made (memory stays
//!   bounded by the open connections, whatever `--size`).

#[path = "corpus/background.rs"]
mod background;
#[path = "corpus/fixtures.rs"]
mod fixtures;
#[path = "corpus/packet.rs"]
mod packet;

use background::{Dns, Ends, Https, Material};
use clap::Parser;
use fixtures::{tcp_offsets, Template};
use packet::{PcapWriter, Rng};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

/// Packet time of the first packet: 2026-01-01T00:00:00Z.
const START_NS: u64 = 1_767_225_600_000_000_000;
/// Mail connection starts are spread over this much time at first.
const RAMP_NS: u64 = 1_000_000_000;
/// A template's own pauses (a client thinking, a server delaying) are capped at this.
const MAX_GAP_NS: u64 = 200_000_000;
/// The idle template: TLS 1.2 on 465 whose server greets inside TLS.
const IDLE_CASE: &str = "tls12-ecdhe-rsa";
/// Round-trip times of the copies of mail connections.
const MIN_RTT_NS: u64 = 5_000_000;
const MAX_RTT_NS: u64 = 120_000_000;

#[derive(Parser, Debug)]
#[command(about = "Build a large mail/non-mail capture from the fixture sessions")]
struct Args {
    /// Approximate output size: bytes, or with K, M, G (powers of 1024).
    #[arg(long, value_parser = parse_size, default_value = "64M")]
    size: u64,
    /// Share of frame bytes in mail connections (0 to 1).
    #[arg(long, default_value_t = 0.3)]
    mail_share: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Connections open at once (at most).
    #[arg(long, default_value_t = 10_000)]
    concurrent: usize,
    /// Average link rate in bits per packet-time second (K, M, G: powers of 1000); new
    /// connections wait until the bytes so far fit this rate. 0: as fast as `--concurrent`
    /// connections go.
    #[arg(long, value_parser = parse_rate, default_value = "1G")]
    rate: u64,
    /// Extra mail connections that complete a TLS handshake and greeting, then stay idle.
    #[arg(long, default_value_t = 0)]
    idle_connections: usize,
    /// Where the fixture cases are.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures"))]
    fixtures: PathBuf,
    /// Output file, or `-` for stdout.
    #[arg(short, long)]
    output: PathBuf,
}

fn parse_rate(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (digits, scale) = match s.chars().last() {
        Some('K' | 'k') => (&s[..s.len() - 1], 1e3),
        Some('M' | 'm') => (&s[..s.len() - 1], 1e6),
        Some('G' | 'g') => (&s[..s.len() - 1], 1e9),
        _ => (s, 1.0),
    };
    let n: f64 = digits.parse().map_err(|_| format!("bad rate: {s}"))?;
    Ok((n * scale) as u64)
}

fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (digits, unit) = match s.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => s.split_at(i),
        None => (s, ""),
    };
    let n: f64 = digits.parse().map_err(|_| format!("bad size: {s}"))?;
    let scale = match unit
        .to_ascii_uppercase()
        .trim_end_matches("IB")
        .trim_end_matches('B')
    {
        "" => 1u64,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return Err(format!("bad size unit: {s}")),
    };
    Ok((n * scale as f64) as u64)
}

/// A connection being written out.
enum Body {
    Mail {
        template: usize,
        next: usize,
        /// Added to the client's and the server's sequence numbers.
        shift: [u32; 2],
        /// Round-trip time between the copy's client and server.
        rtt_ns: u64,
    },
    Https(Https),
    Dns(Dns),
}

struct Conn {
    ends: Ends,
    body: Body,
    /// Idle connections are not replaced when they end.
    replace: bool,
}

#[derive(Default)]
struct Tally {
    mail_bytes: u64,
    other_bytes: u64,
    mail_conns: u64,
    https_conns: u64,
    dns_conns: u64,
    idle_conns: u64,
}

struct Corpus {
    templates: Vec<Template>,
    idle: Option<Template>,
    material: Material,
    rng: Rng,
    share: f64,
    budget: u64,
    serial: u64,
    tally: Tally,
}

impl Corpus {
    fn committed(&self) -> u64 {
        self.tally.mail_bytes + self.tally.other_bytes
    }

    /// The packet time by which the bytes committed so far fit `rate` bits per second (a
    /// connection just committed starts no earlier).
    fn due(&self, rate: u64) -> u64 {
        if rate == 0 {
            return START_NS;
        }
        let ns = u128::from(self.committed()) * 8 * 1_000_000_000 / u128::from(rate);
        START_NS.saturating_add(u64::try_from(ns).unwrap_or(u64::MAX))
    }

    /// A fresh set of endpoints: client addresses count up through 10.0.0.0/8, so every copy
    /// is its own connection; servers are spread over 198.18.0.0/15.
    fn ends(&mut self, server_port: u16) -> Ends {
        self.serial += 1;
        let k = self.serial;
        let c = (k % (1 << 24)) as u32;
        let s = (self.rng.next_u64() % (1 << 17)) as u32;
        Ends {
            client: [10, (c >> 16) as u8, (c >> 8) as u8, c as u8],
            server: [198, 18 + (s >> 16) as u8, (s >> 8) as u8, s as u8],
            client_port: 1024
                + ((k / (1 << 24)) * 7919 + self.rng.range(0, 64_511)) as u16 % 64_511,
            server_port,
        }
    }

    /// The next connection, chosen to keep the byte share; `None` once the size is reached.
    fn start(&mut self) -> Option<Conn> {
        if self.committed() >= self.budget {
            return None;
        }
        let mail_due = self.share >= 1.0
            || (self.share > 0.0
                && (self.tally.mail_bytes as f64) <= self.share * self.committed() as f64);
        if mail_due {
            let template = self.rng.range(0, self.templates.len() as u64) as usize;
            let t = &self.templates[template];
            let (port, bytes) = (t.server_port, t.frame_bytes);
            self.tally.mail_bytes += bytes;
            self.tally.mail_conns += 1;
            let shift = [self.rng.next_u64() as u32, self.rng.next_u64() as u32];
            let rtt_ns = self.rng.range(MIN_RTT_NS, MAX_RTT_NS);
            Some(Conn {
                ends: self.ends(port),
                body: Body::Mail {
                    template,
                    next: 0,
                    shift,
                    rtt_ns,
                },
                replace: true,
            })
        } else if self.rng.chance(1, 3) {
            let dns = Dns::new(&mut self.rng);
            self.tally.other_bytes += dns.frame_bytes();
            self.tally.dns_conns += 1;
            Some(Conn {
                ends: self.ends(53),
                body: Body::Dns(dns),
                replace: true,
            })
        } else {
            let https = Https::new(&mut self.rng, &self.material);
            self.tally.other_bytes += https.frame_bytes();
            self.tally.https_conns += 1;
            Some(Conn {
                ends: self.ends(443),
                body: Body::Https(https),
                replace: true,
            })
        }
    }

    fn start_idle(&mut self) -> Option<Conn> {
        let t = self.idle.as_ref()?;
        let (port, bytes) = (t.server_port, t.frame_bytes);
        self.tally.mail_bytes += bytes;
        self.tally.idle_conns += 1;
        let shift = [self.rng.next_u64() as u32, self.rng.next_u64() as u32];
        let rtt_ns = self.rng.range(MIN_RTT_NS, MAX_RTT_NS);
        Some(Conn {
            ends: self.ends(port),
            body: Body::Mail {
                template: usize::MAX,
                next: 0,
                shift,
                rtt_ns,
            },
            replace: false,
        })
    }

    fn template(&self, i: usize) -> Option<&Template> {
        if i == usize::MAX {
            self.idle.as_ref()
        } else {
            self.templates.get(i)
        }
    }

    /// Nanoseconds until the connection's next packet; `None` when it is over.
    fn gap(&mut self, c: &Conn) -> Option<u64> {
        match &c.body {
            Body::Mail {
                template,
                next,
                rtt_ns,
                ..
            } => {
                let jitter = self.rng.range(0, 200_000);
                let packets = &self.template(*template)?.packets;
                let p = packets.get(*next)?;
                // The other side answers: half a round trip on top of what the capture shows.
                let turn = match next.checked_sub(1).and_then(|i| packets.get(i)) {
                    Some(prev) if prev.from_client != p.from_client => *rtt_ns / 2,
                    _ => 0,
                };
                Some(p.gap_ns.min(MAX_GAP_NS) + turn + jitter)
            }
            Body::Https(h) => h.next_gap().map(|g| g + self.rng.range(0, 200_000)),
            Body::Dns(d) => d.next_gap(),
        }
    }

    /// Write the connection's next frame into `out`.
    fn write(&mut self, c: &mut Conn, out: &mut Vec<u8>) -> bool {
        match &mut c.body {
            Body::Mail {
                template,
                next,
                shift,
                ..
            } => {
                let Some(t) = self.template(*template) else {
                    return false;
                };
                let Some(p) = t.packets.get(*next) else {
                    return false;
                };
                *next += 1;
                mail_frame(&p.ip, p.from_client, &c.ends, *shift, out);
                true
            }
            Body::Https(h) => h.write(&c.ends, &mut self.rng, &self.material, out),
            Body::Dns(d) => d.write(&c.ends, out),
        }
    }
}

/// A template packet with the copy's addresses, ports and sequence numbers, checksums fixed.
fn mail_frame(ip: &[u8], from_client: bool, ends: &Ends, shift: [u32; 2], out: &mut Vec<u8>) {
    packet::ethernet(out, from_client);
    let at = out.len();
    out.extend_from_slice(ip);
    let p = &mut out[at..];
    let (src, dst, sp, dp) = ends.oriented(from_client);
    p[12..16].copy_from_slice(&src);
    p[16..20].copy_from_slice(&dst);
    let Some((tcp, payload)) = tcp_offsets(p) else {
        return;
    };
    p[tcp..tcp + 2].copy_from_slice(&sp.to_be_bytes());
    p[tcp + 2..tcp + 4].copy_from_slice(&dp.to_be_bytes());
    let (mine, peer) = if from_client {
        (shift[0], shift[1])
    } else {
        (shift[1], shift[0])
    };
    add_u32(p, tcp + 4, mine);
    if p[tcp + 13] & 0x10 != 0 {
        add_u32(p, tcp + 8, peer);
    }
    shift_sack(&mut p[tcp + 20..payload], peer);
    packet::fix_checksums(p);
}

fn add_u32(p: &mut [u8], at: usize, by: u32) {
    let v = u32::from_be_bytes([p[at], p[at + 1], p[at + 2], p[at + 3]]).wrapping_add(by);
    p[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

/// SACK blocks name the peer's sequence numbers: move them with the peer's shift.
fn shift_sack(options: &mut [u8], peer: u32) {
    let mut at = 0;
    while at < options.len() {
        match options[at] {
            0 => return,
            1 => at += 1,
            kind => {
                let len = usize::from(*options.get(at + 1).unwrap_or(&2)).max(2);
                if kind == 5 && at + len <= options.len() {
                    let mut b = at + 2;
                    while b + 4 <= at + len {
                        add_u32(options, b, peer);
                        b += 4;
                    }
                }
                at += len;
            }
        }
    }
}

/// The open connections, by the time of their next packet (then by insertion, so the order
/// is deterministic).
#[derive(Default)]
struct Open {
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    heap: BinaryHeap<Reverse<(u64, u64, usize)>>,
    order: u64,
}

impl Open {
    fn add(&mut self, c: Conn, at: u64) {
        let slot = match self.free.pop() {
            Some(s) => {
                self.conns[s] = Some(c);
                s
            }
            None => {
                self.conns.push(Some(c));
                self.conns.len() - 1
            }
        };
        self.order += 1;
        self.heap.push(Reverse((at, self.order, slot)));
    }

    fn next(&mut self) -> Option<(u64, Conn)> {
        while let Some(Reverse((at, _, slot))) = self.heap.pop() {
            if let Some(c) = self.conns[slot].take() {
                self.free.push(slot);
                return Some((at, c));
            }
        }
        None
    }

    fn len(&self) -> usize {
        self.heap.len()
    }
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(&args) {
        eprintln!("make-corpus: {e}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> Result<(), String> {
    if !(0.0..=1.0).contains(&args.mail_share) {
        return Err("--mail-share must be between 0 and 1".into());
    }
    let templates = fixtures::load(&args.fixtures)?;
    let idle = fixtures::idle(&templates, IDLE_CASE);
    if args.idle_connections > 0 && idle.is_none() {
        return Err(format!("no {IDLE_CASE} fixture for idle connections"));
    }
    let mut rng = Rng::new(args.seed);
    let client_hello = templates
        .iter()
        .filter(|t| t.server_port == 465)
        .flat_map(|t| &t.packets)
        .find_map(|p| {
            let (_, at) = tcp_offsets(&p.ip)?;
            (p.from_client && p.ip.get(at) == Some(&22)).then(|| p.ip[at..].to_vec())
        });
    let material = Material::new(&mut rng, client_hello);
    let mut corpus = Corpus {
        templates,
        idle,
        material,
        rng,
        share: args.mail_share,
        budget: args.size,
        serial: 0,
        tally: Tally::default(),
    };

    let sink: Box<dyn Write> = if args.output.as_os_str() == "-" {
        Box::new(io::stdout().lock())
    } else {
        Box::new(File::create(&args.output).map_err(|e| format!("{}: {e}", args.output.display()))?)
    };
    let mut w =
        PcapWriter::new(BufWriter::with_capacity(1 << 20, sink)).map_err(|e| e.to_string())?;

    let mut open = Open::default();
    for i in 0..args.idle_connections {
        if let Some(c) = corpus.start_idle() {
            let at = START_NS + RAMP_NS * i as u64 / args.idle_connections as u64;
            open.add(c, at);
        }
    }
    for _ in 0..args.concurrent.max(1) {
        let Some(c) = corpus.start() else { break };
        let at = START_NS + corpus.rng.range(0, RAMP_NS);
        open.add(c, at.max(corpus.due(args.rate)));
    }

    let mut frame = Vec::with_capacity(2048);
    let mut peak_open = 0usize;
    let mut last = START_NS;
    while let Some((at, mut c)) = open.next() {
        peak_open = peak_open.max(open.len() + 1);
        last = at;
        frame.clear();
        if corpus.write(&mut c, &mut frame) {
            w.write(at, &frame).map_err(|e| e.to_string())?;
        }
        match corpus.gap(&c) {
            Some(gap) => open.add(c, at + gap),
            None if c.replace => {
                if let Some(n) = corpus.start() {
                    let at = at + corpus.rng.range(0, 5_000_000);
                    open.add(n, at.max(corpus.due(args.rate)));
                }
            }
            None => {}
        }
    }
    let (packets, bytes) = (w.packets, w.bytes);
    w.finish().map_err(|e| e.to_string())?;
    let t = &corpus.tally;
    let total = (t.mail_bytes + t.other_bytes).max(1);
    eprintln!(
        "make-corpus: {packets} packets, {bytes} bytes, {:.3} s of packet time; mail share {:.3} \
         of frame bytes; connections: {} mail from {} templates, {} idle, {} https, {} dns; \
         at most {peak_open} open at once",
        (last - START_NS) as f64 / 1e9,
        t.mail_bytes as f64 / total as f64,
        t.mail_conns,
        corpus.templates.len(),
        t.idle_conns,
        t.https_conns,
        t.dns_conns,
    );
    Ok(())
}
