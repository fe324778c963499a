//! The hot path allocates nothing per packet.
//!
//! A counting global allocator (this test binary only) counts the allocations made on the
//! current thread while the real engine (`workers: 0`, so everything runs on this thread) is
//! fed packets from real fixture captures:
//!
//! - (a) non-mail packets (UDP, ICMP, HTTP from `mixed-background`), after warm-up;
//! - (b) packets of a bypassed flow: the implicit-TLS session of `smtps-465` is replayed up to
//!   its close, so its handshake is judged and the flow bypassed; then more application-data
//!   segments of the same connection, made from its real data packets by moving their
//!   sequence and acknowledgment numbers on, are fed while counting.
//!
//! The counter is per thread, so tests running in parallel do not disturb each other.

use mailtap::config::{Limits, PortMap};
use mailtap::engine::{Engine, EngineConfig, Finished, Sink};
use mailtap::session::tls::TlsContext;
use mailtap::source::file::{CaptureFile, Input};
use mailtap::source::{Linktype, Packet, Timestamp};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::sync::Arc;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn bump() {
    // `try_with`: the thread-local may already be gone while a thread shuts down.
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        bump();
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        bump();
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        bump();
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made on this thread while `f` runs.
fn allocations_during(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

/// A packet of a fixture, owned.
#[derive(Clone)]
struct Frame {
    ts: Timestamp,
    link: Linktype,
    data: Vec<u8>,
}

impl Frame {
    fn packet(&self) -> Packet<'_> {
        Packet {
            ts: self.ts,
            link: self.link,
            data: &self.data,
            wire_len: self.data.len() as u32,
        }
    }
}

fn capture(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(case)
        .join("capture.pcap")
}

fn frames(case: &str) -> Vec<Frame> {
    let mut file = CaptureFile::open(&Input::Path(capture(case))).expect("fixture opens");
    let mut out = Vec::new();
    file.for_each(&mut |p, _| {
        out.push(Frame {
            ts: p.ts,
            link: p.link,
            data: p.data.to_vec(),
        })
    })
    .expect("fixture reads to its end");
    out
}

/// Counts what it is given; its only allocation-free job is to exist.
#[derive(Default)]
struct Counter {
    finished: Vec<Finished>,
}

impl Sink for Counter {
    fn finished(&mut self, f: Finished) {
        self.finished.push(f);
    }
}

fn engine() -> Engine<Counter> {
    let cfg = EngineConfig {
        ports: PortMap::default(),
        limits: Limits::default(),
        tls: Arc::new(TlsContext::new(&[]).expect("Mozilla roots load")),
        workers: 0,
    };
    Engine::new(cfg, Counter::default())
}

/// The offsets of an Ethernet/IPv4/TCP frame: (TCP header start, payload start), or `None`.
fn tcp_offsets(frame: &[u8]) -> Option<(usize, usize)> {
    if frame.get(12..14)? != [0x08, 0x00] {
        return None;
    }
    let ip = 14;
    if *frame.get(ip + 9)? != 6 {
        return None;
    }
    let tcp = ip + usize::from(frame.get(ip)? & 0x0f) * 4;
    let payload = tcp + usize::from(frame.get(tcp + 12)? >> 4) * 4;
    Some((tcp, payload))
}

fn port(frame: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([frame[at], frame[at + 1]])
}

fn get_u32(frame: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([frame[at], frame[at + 1], frame[at + 2], frame[at + 3]])
}

fn put_u32(frame: &mut [u8], at: usize, v: u32) {
    frame[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

fn shifted(f: &Frame, by: std::time::Duration) -> Frame {
    Frame {
        ts: f.ts.saturating_add(by),
        ..f.clone()
    }
}

#[test]
fn non_mail_packets_allocate_nothing() {
    let frames = frames("mixed-background");
    let ports = PortMap::default();
    let background: Vec<Frame> = frames
        .iter()
        .filter(|f| {
            let p = f.packet();
            mailtap::decode::decode(&p, &ports).is_err()
        })
        .cloned()
        .collect();
    assert!(
        background.len() >= 20,
        "mixed-background has its UDP, ICMP and HTTP packets ({})",
        background.len()
    );

    let mut engine = engine();
    // Warm-up: the whole capture (the SMTP session opens, ends and lingers), then the
    // background again an hour later, so the SMTP flow expires and its record is made now.
    for f in &frames {
        engine.packet(&f.packet());
    }
    let later: Vec<Frame> = background
        .iter()
        .map(|f| shifted(f, std::time::Duration::from_secs(3600)))
        .collect();
    for f in &later {
        engine.packet(&f.packet());
    }

    let rounds = 200;
    let n = allocations_during(|| {
        for r in 0..rounds {
            for f in &later {
                let mut p = f.packet();
                p.ts = p.ts.saturating_add(std::time::Duration::from_millis(r));
                engine.packet(&p);
            }
        }
    });
    assert_eq!(
        n,
        0,
        "{n} allocations for {} non-mail packets",
        rounds as usize * later.len()
    );

    // The same in batches, as replay feeds them (`Engine::packets`); the first batch sizes the
    // engine's reused decode buffer.
    let batches: Vec<Vec<_>> = (rounds..2 * rounds)
        .map(|r| {
            later
                .iter()
                .map(|f| {
                    let mut p = f.packet();
                    p.ts = p.ts.saturating_add(std::time::Duration::from_millis(r));
                    p
                })
                .collect()
        })
        .collect();
    let (first, rest) = batches.split_first().expect("batches");
    engine.packets(first);
    let n = allocations_during(|| {
        for b in rest {
            engine.packets(b);
        }
    });
    assert_eq!(
        n,
        0,
        "{n} allocations for {} non-mail packets in batches",
        rest.len() * later.len()
    );

    let (sink, health) = engine.finish();
    assert_eq!(sink.finished.len(), 1, "the one SMTP connection");
    assert!(sink.finished[0].record.is_some());
    let skipped: u64 = health.packets.iter().sum::<u64>() - health.packets[7];
    assert!(skipped >= rounds * later.len() as u64);
}

#[test]
fn packets_of_a_bypassed_flow_allocate_nothing() {
    let frames = frames("smtps-465");
    // The connection up to its first FIN or RST: handshake, then the SMTP dialogue in TLS.
    let open_until = frames
        .iter()
        .position(|f| {
            let (tcp, _) = tcp_offsets(&f.data).expect("Ethernet IPv4 TCP");
            f.data[tcp + 13] & 0x05 != 0
        })
        .expect("the connection closes");
    let opened = &frames[..open_until];
    let server_port = 465;
    // Stream positions: the next sequence number each way (client→server is index 0).
    let mut next = [0u32; 2];
    let mut data_packets = Vec::new();
    for f in opened {
        let (tcp, payload) = tcp_offsets(&f.data).expect("Ethernet IPv4 TCP");
        let dir = usize::from(port(&f.data, tcp) == server_port);
        let len = (f.data.len() - payload) as u32;
        let syn = u32::from(f.data[tcp + 13] & 0x02 != 0);
        next[dir] = get_u32(&f.data, tcp + 4).wrapping_add(len + syn);
        // Segments that start with a TLS application-data record (type 23).
        if len > 0 && f.data[payload] == 23 {
            data_packets.push(f.clone());
        }
    }
    // Keep those after the server's first flight (its handshake records ride in type 23 too
    // in TLS 1.3): the later half of the dialogue is application data for certain.
    let app: Vec<Frame> = data_packets[data_packets.len() / 2..].to_vec();
    assert!(app.len() >= 8, "smtps-465 carries its dialogue in TLS");

    let mut engine = engine();
    for f in opened {
        engine.packet(&f.packet());
    }

    // More of the same connection: its real application-data packets again, each placed at
    // the stream's current end, acknowledging the other direction's end.
    let last_ts = opened.last().expect("packets").ts;
    let mut more = Vec::new();
    let rounds = 100;
    for r in 0..rounds {
        for f in &app {
            let (tcp, payload) = tcp_offsets(&f.data).expect("Ethernet IPv4 TCP");
            let dir = usize::from(port(&f.data, tcp) == server_port);
            let len = (f.data.len() - payload) as u32;
            let mut g = f.clone();
            g.ts = last_ts.saturating_add(std::time::Duration::from_millis(r + 1));
            put_u32(&mut g.data, tcp + 4, next[dir]);
            put_u32(&mut g.data, tcp + 8, next[1 - dir]);
            next[dir] = next[dir].wrapping_add(len);
            more.push(g);
        }
    }

    // Half one packet at a time, half in batches as replay feeds them (`Engine::packets`);
    // the first batch sizes the engine's reused decode buffer.
    let (single, batched) = more.split_at(more.len() / 2);
    let n = allocations_during(|| {
        for f in single {
            engine.packet(&f.packet());
        }
    });
    assert_eq!(
        n,
        0,
        "{n} allocations for {} packets of a bypassed flow",
        single.len()
    );
    let packets: Vec<_> = batched.iter().map(Frame::packet).collect();
    let mut batches = packets.chunks(mailtap::source::file::BATCH);
    engine.packets(batches.next().expect("a batch"));
    let n = allocations_during(|| {
        for b in batches {
            engine.packets(b);
        }
    });
    assert_eq!(
        n,
        0,
        "{n} allocations for {} packets of a bypassed flow in batches",
        batched.len()
    );

    let (sink, _) = engine.finish();
    let [f] = &sink.finished[..] else {
        panic!("one connection, got {}", sink.finished.len());
    };
    assert!(f.info.bypassed, "the flow was bypassed after its handshake");
    let to_server: u64 = app
        .iter()
        .filter(|f| {
            let (tcp, _) = tcp_offsets(&f.data).expect("TCP");
            port(&f.data, tcp) != server_port
        })
        .map(|f| (f.data.len() - tcp_offsets(&f.data).expect("TCP").1) as u64)
        .sum();
    assert!(
        f.info.bytes[0] >= to_server * rounds,
        "bypassed bytes are still counted"
    );
}

#[test]
fn the_counter_counts() {
    let n = allocations_during(|| {
        std::hint::black_box(vec![1u8; 10]);
    });
    assert_eq!(n, 1);
}

/// `frames` repeated `times` times, as a classic pcap (µs, Ethernet).
fn classic_pcap(frames: &[Frame], times: usize) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    for _ in 0..times {
        for f in frames {
            let us = f.ts.as_nanos() / 1000;
            out.extend_from_slice(&((us / 1_000_000) as u32).to_le_bytes());
            out.extend_from_slice(&((us % 1_000_000) as u32).to_le_bytes());
            out.extend_from_slice(&(f.data.len() as u32).to_le_bytes());
            out.extend_from_slice(&(f.data.len() as u32).to_le_bytes());
            out.extend_from_slice(&f.data);
        }
    }
    out
}

/// `frames` repeated `times` times, as pcapng: one section, one Ethernet interface, enhanced
/// packet blocks without options.
fn pcapng(frames: &[Frame], times: usize) -> Vec<u8> {
    let block = |out: &mut Vec<u8>, kind: u32, body: &[u8]| {
        let len = (12 + body.len()) as u32;
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(&len.to_le_bytes());
    };
    let mut out = Vec::new();
    let mut shb = Vec::new();
    shb.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
    shb.extend_from_slice(&1u16.to_le_bytes());
    shb.extend_from_slice(&0u16.to_le_bytes());
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    block(&mut out, 0x0a0d_0d0a, &shb);
    let mut idb = Vec::new();
    idb.extend_from_slice(&1u16.to_le_bytes());
    idb.extend_from_slice(&0u16.to_le_bytes());
    idb.extend_from_slice(&0u32.to_le_bytes());
    block(&mut out, 1, &idb);
    for _ in 0..times {
        for f in frames {
            let us = f.ts.as_nanos() / 1000;
            let mut epb = Vec::new();
            epb.extend_from_slice(&0u32.to_le_bytes());
            epb.extend_from_slice(&((us >> 32) as u32).to_le_bytes());
            epb.extend_from_slice(&(us as u32).to_le_bytes());
            epb.extend_from_slice(&(f.data.len() as u32).to_le_bytes());
            epb.extend_from_slice(&(f.data.len() as u32).to_le_bytes());
            epb.extend_from_slice(&f.data);
            epb.resize(epb.len().next_multiple_of(4), 0);
            block(&mut out, 6, &epb);
        }
    }
    out
}

/// Allocations while reading a whole file, and its packet count.
fn reading(bytes: &[u8], tag: &str) -> (u64, u64) {
    let path = std::env::temp_dir().join(format!("mailtap-alloc-{}-{tag}", std::process::id()));
    std::fs::write(&path, bytes).expect("temp file");
    let mut file = CaptureFile::open(&Input::Path(path.clone())).expect("opens");
    let mut packets = 0u64;
    let n = allocations_during(|| {
        file.for_each(&mut |p, _| {
            packets += 1;
            std::hint::black_box(p);
        })
        .expect("reads to its end");
    });
    let _ = std::fs::remove_file(&path);
    (n, packets)
}

#[test]
fn reading_a_capture_allocates_nothing_per_packet() {
    let frames = frames("mixed-background");
    for (format, write) in [
        ("pcap", classic_pcap as fn(&[Frame], usize) -> Vec<u8>),
        ("pcapng", pcapng),
    ] {
        let (small, p1) = reading(&write(&frames, 1), &format!("small.{format}"));
        let (large, p2) = reading(&write(&frames, 2000), &format!("large.{format}"));
        assert_eq!(p2, 2000 * p1);
        assert_eq!(
            small, large,
            "{format}: {small} allocations reading {p1} packets, {large} reading {p2}"
        );
    }
}
