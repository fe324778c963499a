//! The packet path: source → decode → dispatch → worker (flow table → session) → sink.
//!
//! Each connection belongs to exactly one worker, chosen by a symmetric hash of its endpoints,
//! and the worker owns its flows outright: the per-packet path takes no lock. Every finished
//! connection travels over one channel to a single sink thread, so sinks need neither locks
//! nor merging. How packets reach the workers depends on who reads them:
//!
//! - [`Engine::new`] (live capture, `parallel.rs`): the caller's thread reads and decodes (to
//!   find the worker) and hands the segments over in recycled batches, each worker on its
//!   own thread.
//! - [`Engine::for_files`] (replay, `ring/`): the workers take turns reading the file
//!   themselves and share the decoding, so nothing runs on the caller's thread.
//!
//! With `workers` = 0 (or 1, for files) everything runs on the caller's thread: reading,
//! analysis and output take turns. Either way the sink sees the same records and counts; only
//! their order differs.
//!
//! IP fragments are reassembled as they are decoded: by the decoder's own defragmenter where
//! one thread decodes every packet (inline, live capture), and by one defragmenter the ring's
//! workers feed in chunk order (`ring/fragments.rs`), so that which frame completes a datagram
//! never depends on which worker ran first.

mod chunk;
mod decoder;
mod parallel;
mod ring;
mod slot;
mod threads;
mod worker;

pub use decoder::{packet_result_label, Decoder, PACKET_RESULTS};
pub use worker::Worker;

use crate::config::{Limits, PortMap};
use crate::decode::defrag::DefragCounts;
use crate::decode::{Decoded, Segment};
use crate::flow::table::{CloseReason, FlowInfo};
use crate::record::SessionRecord;
use crate::session::tls::TlsContext;
use crate::session::Session;
use crate::source::compressed::Compression;
use crate::source::file::{CaptureFile, Input, SourceError};
use crate::source::{Packet, TimeSpan, Timestamp};
use parallel::Parallel;
use ring::Ring;
use std::sync::Arc;

/// What the sensor counted about itself: packets by result, reassembly and flow counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Health {
    /// By [`packet_result_label`] index.
    pub packets: [u64; PACKET_RESULTS],
    pub gaps: u64,
    pub gap_bytes: u64,
    /// Flows closed, by [`CloseReason::index`].
    pub closed: [u64; CloseReason::COUNT],
    /// The most flows one worker held at once (summed over workers).
    pub peak_flows: usize,
    pub active_flows: usize,
    /// What became of IP fragments, by [`DefragEvent::index`](crate::decode::defrag::DefragEvent::index).
    pub datagrams: DefragCounts,
}

impl Health {
    pub fn merge(&mut self, other: &Health) {
        for (a, b) in self.packets.iter_mut().zip(other.packets) {
            *a += b;
        }
        for (a, b) in self.closed.iter_mut().zip(other.closed) {
            *a += b;
        }
        for (a, b) in self.datagrams.iter_mut().zip(other.datagrams) {
            *a += b;
        }
        self.gaps += other.gaps;
        self.gap_bytes += other.gap_bytes;
        self.peak_flows += other.peak_flows;
        self.active_flows += other.active_flows;
    }

    /// What two runs one after the other counted (the passes of `replay --loop`): counts add
    /// up, the peak is the higher of the two, and the flows active now are the later run's.
    pub fn then(&self, later: &Health) -> Health {
        let mut sum = self.clone();
        sum.merge(later);
        sum.peak_flows = self.peak_flows.max(later.peak_flows);
        sum.active_flows = later.active_flows;
        sum
    }
}

/// One connection as it left the sensor: transport facts, why it ended, and its record when
/// it carried a payload byte.
#[derive(Clone, Debug)]
pub struct Finished {
    pub info: FlowInfo,
    pub reason: CloseReason,
    pub record: Option<SessionRecord>,
}

/// How far [`Engine::read_input`] has read a file.
pub struct ReadProgress<'a> {
    pub packets: u64,
    /// Packets the snap length cut (frames shorter in the capture than on the wire); exact in
    /// the last call for a file, 0 or a lower bound before.
    pub cut: u64,
    /// Bytes of the file read.
    pub offset: u64,
    /// The engine's health now (for live metrics during a long replay).
    pub health: &'a dyn Fn() -> Health,
}

/// What [`Engine::read_input`] read of one input.
#[derive(Debug)]
pub struct InputRead {
    pub packets: u64,
    /// Packet time of the earliest and latest packet read; `None` without packets.
    pub span: Option<TimeSpan>,
    /// The error that stopped the input before its end, if one did.
    pub result: Result<(), SourceError>,
    /// How the input was compressed (its offsets are then those of the decompressed stream).
    pub compression: Option<Compression>,
}

/// Where finished connections go. Runs on one thread; owned by the engine until it finishes.
pub trait Sink: Send + 'static {
    fn finished(&mut self, f: Finished);
}

#[derive(Clone)]
pub struct EngineConfig {
    pub ports: PortMap,
    /// Per worker.
    pub limits: Limits,
    pub tls: Arc<TlsContext>,
    /// Worker threads; 0 runs everything on the caller's thread.
    pub workers: usize,
}

/// The engine: one inline worker (`workers` = 0), or workers on their own threads.
pub struct Engine<S: Sink> {
    mode: Mode<S>,
}

enum Mode<S: Sink> {
    Inline(Box<Inline<S>>),
    Threads(Box<Parallel<S>>),
    Ring(Ring<S>),
}

impl<S: Sink> Engine<S> {
    pub fn new(cfg: EngineConfig, sink: S) -> Self {
        let mode = if cfg.workers == 0 {
            Mode::Inline(Box::new(Inline::new(cfg, sink)))
        } else {
            Mode::Threads(Box::new(Parallel::new(cfg, sink)))
        };
        Engine { mode }
    }

    /// An engine for reading capture files ([`read_input`](Self::read_input)): with two
    /// workers or more, they take turns reading the file themselves (see `ring.rs`), instead
    /// of a reader thread decoding for them, so `N` workers use `N` cores. One worker is the
    /// caller's thread (as 0 is).
    pub fn for_files(cfg: EngineConfig, sink: S) -> Self {
        let mode = if cfg.workers <= 1 {
            Mode::Inline(Box::new(Inline::new(cfg, sink)))
        } else {
            Mode::Ring(Ring::new(cfg, sink))
        };
        Engine { mode }
    }

    /// Every packet of `input`, until its end or the first block that cannot be read: how
    /// many packets there were, their time span, and the error if one stopped the file.
    /// `progress` is called now and then, and once at the end.
    pub fn read_input(
        &mut self,
        input: &Input,
        progress: &mut dyn FnMut(ReadProgress<'_>),
    ) -> InputRead {
        if let Mode::Ring(r) = &mut self.mode {
            return r.read_input(input, progress);
        }
        let mut file = match CaptureFile::open(input) {
            Ok(file) => file,
            Err(e) => {
                return InputRead {
                    packets: 0,
                    span: None,
                    result: Err(e),
                    compression: None,
                }
            }
        };
        let mut packets = 0u64;
        let mut cut = 0u64;
        let mut span = None;
        let result = file.for_each_batch(&mut |batch, offset| {
            let before = packets;
            packets += batch.len() as u64;
            cut += batch
                .iter()
                .filter(|p| (p.data.len() as u64) < u64::from(p.wire_len))
                .count() as u64;
            span = TimeSpan::join(span, TimeSpan::of(batch.iter().map(|p| p.ts)));
            self.packets(batch);
            if before / 1024 != packets / 1024 {
                progress(ReadProgress {
                    packets,
                    cut,
                    offset,
                    health: &|| self.health(),
                });
            }
        });
        progress(ReadProgress {
            packets,
            cut,
            offset: file.offset(),
            health: &|| self.health(),
        });
        InputRead {
            packets,
            span,
            result,
            compression: file.compression(),
        }
    }

    pub fn packet(&mut self, p: &Packet<'_>) {
        match &mut self.mode {
            Mode::Inline(i) => i.packet(p),
            Mode::Threads(t) => t.packet(p),
            Mode::Ring(r) => r.packets(std::slice::from_ref(p)),
        }
    }

    /// Several packets in capture order: the same as [`packet`](Self::packet) on each, but the
    /// whole batch is decoded before any of it is processed or dispatched.
    pub fn packets(&mut self, batch: &[Packet<'_>]) {
        match &mut self.mode {
            Mode::Inline(i) => i.packets(batch),
            Mode::Threads(t) => t.packets(batch),
            Mode::Ring(r) => r.packets(batch),
        }
    }

    /// Packet time passes without packets (a quiet live link): expire idle flows.
    pub fn tick(&mut self, now: Timestamp) {
        match &mut self.mode {
            Mode::Inline(i) => i.tick(now),
            Mode::Threads(t) => t.tick(now),
            Mode::Ring(r) => r.tick(now),
        }
    }

    /// The health counters so far (for live metrics).
    pub fn health(&self) -> Health {
        match &self.mode {
            Mode::Inline(i) => i.health(),
            Mode::Threads(t) => t.health(),
            Mode::Ring(r) => r.health(),
        }
    }

    /// Close every open connection, stop the workers, and hand back the sink and the health.
    pub fn finish(self) -> (S, Health) {
        match self.mode {
            Mode::Inline(i) => i.finish(),
            Mode::Threads(t) => t.finish(),
            Mode::Ring(r) => r.finish(),
        }
    }
}

/// The worker (of `workers`) that a segment's connection belongs to: a hash of its two
/// endpoints that is the same both ways round, with a fixed seed (so a replay is repeatable).
/// Cheap: each endpoint is one 128-bit word, its address with the port folded into the top
/// bits.
pub fn lane_of(seg: &Segment<'_>, workers: usize) -> usize {
    use std::hash::BuildHasher;
    use std::net::{IpAddr, SocketAddr};
    let word = |a: &SocketAddr| {
        let ip = match a.ip() {
            IpAddr::V4(v4) => u128::from(v4.to_bits()),
            IpAddr::V6(v6) => v6.to_bits(),
        };
        ip ^ (u128::from(a.port()) << 112)
    };
    let (a, b) = (word(&seg.src), word(&seg.dst));
    let hash =
        foldhash::fast::FixedState::with_seed(0x006d_6169_6c74_6170).hash_one((a.min(b), a.max(b)));
    (hash % workers.max(1) as u64) as usize
}

/// A worker's flow table with the mail session as handler, and what it needs to make one.
pub(crate) struct Lane {
    worker: Worker<Session>,
    tls: Arc<TlsContext>,
}

impl Lane {
    pub(crate) fn new(cfg: &EngineConfig) -> Self {
        Lane {
            worker: Worker::new(cfg.limits.clone()),
            tls: Arc::clone(&cfg.tls),
        }
    }

    pub(crate) fn segment(
        &mut self,
        ts: Timestamp,
        seg: &crate::decode::Segment<'_>,
        out: &mut dyn FnMut(Finished),
    ) {
        let tls = &self.tls;
        let make = |info: &FlowInfo| Session::new(info.protocol, Arc::clone(tls));
        self.worker
            .segment(ts, seg, make, &mut |c| out(finished(c)));
    }

    pub(crate) fn tick(&mut self, now: Timestamp, out: &mut dyn FnMut(Finished)) {
        self.worker.tick(now, &mut |c| out(finished(c)));
    }

    pub(crate) fn finish(&mut self, out: &mut dyn FnMut(Finished)) {
        self.worker.finish(&mut |c| out(finished(c)));
    }

    pub(crate) fn health(&self) -> Health {
        self.worker.health()
    }
}

fn finished(c: crate::flow::table::ClosedFlow<Session>) -> Finished {
    Finished {
        record: c.handler.into_record(&c.info),
        info: c.info,
        reason: c.reason,
    }
}

/// Everything on the caller's thread.
struct Inline<S> {
    decoder: Decoder,
    lane: Lane,
    sink: S,
}

impl<S: Sink> Inline<S> {
    fn new(cfg: EngineConfig, sink: S) -> Self {
        Inline {
            decoder: Decoder::new(cfg.ports.clone(), cfg.limits.defrag.clone()),
            lane: Lane::new(&cfg),
            sink,
        }
    }

    fn packets(&mut self, batch: &[Packet<'_>]) {
        let segments = self.decoder.decode_batch(batch);
        for (p, seg) in batch.iter().zip(&segments) {
            self.step(p.ts, seg.as_ref());
        }
        self.decoder.reuse(segments);
    }

    fn packet(&mut self, p: &Packet<'_>) {
        let seg = self.decoder.decode(p);
        self.step(p.ts, seg.as_ref());
    }

    fn step(&mut self, ts: Timestamp, seg: Option<&Decoded<'_>>) {
        let sink = &mut self.sink;
        match seg {
            Some(seg) => self
                .lane
                .segment(ts, &seg.segment(), &mut |f| sink.finished(f)),
            // Time moves on for the flows even when the traffic is not mail.
            None => self.lane.tick(ts, &mut |f| sink.finished(f)),
        }
    }

    fn tick(&mut self, now: Timestamp) {
        let sink = &mut self.sink;
        self.lane.tick(now, &mut |f| sink.finished(f));
    }

    fn health(&self) -> Health {
        let mut h = self.lane.health();
        h.packets = self.decoder.counts();
        h.datagrams = self.decoder.defrag_counts();
        h
    }

    fn finish(mut self) -> (S, Health) {
        self.decoder.finish();
        let sink = &mut self.sink;
        self.lane.finish(&mut |f| sink.finished(f));
        let health = self.health();
        (self.sink, health)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(packets: u64, peak: usize, active: usize) -> Health {
        let mut h = Health {
            gaps: packets / 2,
            peak_flows: peak,
            active_flows: active,
            ..Health::default()
        };
        h.packets[0] = packets;
        h.closed[0] = packets / 4;
        h
    }

    #[test]
    fn both_directions_of_a_connection_go_to_the_same_worker() {
        let seg = |src: &str, dst: &str| Segment {
            src: src.parse().expect("address"),
            dst: dst.parse().expect("address"),
            seq: 0,
            ack: 0,
            flags: crate::decode::TcpFlags::default(),
            window: 0,
            payload: &[],
            payload_len: 0,
            protocol: crate::config::Protocol::Smtp,
            fragment_overlap: false,
        };
        let mut lanes = std::collections::BTreeSet::new();
        for port in 40000..40064u16 {
            let client = format!("192.0.2.7:{port}");
            let up = lane_of(&seg(&client, "198.51.100.25:25"), 4);
            assert_eq!(up, lane_of(&seg("198.51.100.25:25", &client), 4));
            lanes.insert(up);
        }
        let v6 = seg("[2001:db8::1]:50000", "[2001:db8::25]:587");
        let back = seg("[2001:db8::25]:587", "[2001:db8::1]:50000");
        assert_eq!(lane_of(&v6, 3), lane_of(&back, 3));
        // 64 connections spread over every one of 4 workers.
        assert_eq!(lanes.len(), 4);
        assert_eq!(lane_of(&v6, 0), 0);
    }

    #[test]
    fn passes_one_after_another_add_counts_but_not_peaks() {
        let both = health(8, 5, 0).then(&health(4, 3, 2));
        assert_eq!(both.packets[0], 12);
        assert_eq!(both.gaps, 6);
        assert_eq!(both.closed[0], 3);
        assert_eq!(both.peak_flows, 5);
        assert_eq!(both.active_flows, 2);
    }
}
