//! Several workers on their own threads.
//!
//! The caller's thread decodes each packet once to find its worker (a symmetric hash of the
//! two endpoints, so both directions land together) and puts the decoded segment, with a copy
//! of its TCP payload only, into that worker's current batch: the worker does not decode
//! again, and headers and non-mail frames are never copied. Full batches go over a bounded
//! channel. Emptied batches come back on
//! a return channel and are reused: in steady state nothing is allocated per packet. Batches
//! also carry packet time, and every worker gets a batch at least once per second of packet
//! time, so idle flows expire on every worker alike.

use super::slot::Slot;
use super::threads::{self, named};
use super::{lane_of, Decoder, EngineConfig, Finished, Health, Lane, Sink};
use crate::decode::{Decoded, Segment};
use crate::source::{Packet, Timestamp};
use crossbeam_channel::{bounded, Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

const BATCH_PACKETS: usize = 256;
const BATCH_BYTES: usize = 256 * 1024;
/// What one segment can add past `BATCH_BYTES` (an IPv4 or IPv6 payload, jumbograms aside).
const MAX_PAYLOAD: usize = 64 * 1024;
/// Batches per worker in flight or in reserve: the bound on memory and on queueing.
const BATCHES_PER_WORKER: usize = 8;
/// Finished connections queued for the sink thread.
const FINISHED_QUEUE: usize = 4096;
const FLUSH_EVERY: Duration = Duration::from_secs(1);

#[derive(Default)]
struct Batch {
    /// The segments' payloads, one after another.
    bytes: Vec<u8>,
    slots: Vec<Slot>,
    /// Packet time reached by the dispatcher when the batch was sent.
    now: Timestamp,
}

impl Batch {
    /// Sized for a full batch at once: growing by doubling copied the bytes over and over and
    /// faulted in fresh pages each time (3 % of the reader's time).
    fn new() -> Self {
        Batch {
            bytes: Vec::with_capacity(BATCH_BYTES + MAX_PAYLOAD),
            slots: Vec::with_capacity(BATCH_PACKETS),
            now: Timestamp::ZERO,
        }
    }

    fn is_full(&self) -> bool {
        self.slots.len() >= BATCH_PACKETS || self.bytes.len() >= BATCH_BYTES
    }

    fn push(&mut self, ts: Timestamp, seg: &Segment<'_>) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(seg.payload);
        self.slots.push(Slot::new(ts, seg, start));
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.slots.clear();
    }
}

struct LaneHandle {
    tx: Sender<Batch>,
    recycled: Receiver<Batch>,
    current: Batch,
    allocated: usize,
    health: Arc<Mutex<Health>>,
    thread: JoinHandle<()>,
}

impl LaneHandle {
    fn spawn(cfg: &EngineConfig, index: usize, done: Sender<Finished>) -> Self {
        let (tx, rx) = bounded::<Batch>(BATCHES_PER_WORKER);
        let (recycle_tx, recycled) = bounded::<Batch>(BATCHES_PER_WORKER);
        let health = Arc::new(Mutex::new(Health::default()));
        let shared = Arc::clone(&health);
        let mut lane = Lane::new(cfg);
        // Named, so `top -H` and profilers tell the threads apart.
        let thread = named(format!("worker-{index}"), move || {
            let mut out = |f: Finished| {
                // The sink thread only goes away when the engine is finishing.
                let _ = done.send(f);
            };
            while let Some(mut batch) = threads::recv(&rx) {
                for s in &batch.slots {
                    let (start, len) = s.range();
                    let payload = batch.bytes.get(start..start + len);
                    let seg = s.segment(payload.unwrap_or_default());
                    lane.segment(s.ts, &seg, &mut out);
                }
                lane.tick(batch.now, &mut out);
                *shared.lock().unwrap_or_else(PoisonError::into_inner) = lane.health();
                batch.clear();
                let _ = recycle_tx.send(batch);
            }
            lane.finish(&mut out);
            *shared.lock().unwrap_or_else(PoisonError::into_inner) = lane.health();
        });
        LaneHandle {
            tx,
            recycled,
            current: Batch::new(),
            allocated: 1,
            health,
            thread,
        }
    }

    /// Send the current batch and take an empty one: a returned one when there is one, a new
    /// one while fewer than the bound exist, else wait for the worker to hand one back.
    fn send(&mut self, now: Timestamp) {
        let next = match self.recycled.try_recv() {
            Ok(b) => b,
            Err(_) if self.allocated < BATCHES_PER_WORKER => {
                self.allocated += 1;
                Batch::new()
            }
            Err(_) => self.recycled.recv().unwrap_or_default(),
        };
        let mut full = std::mem::replace(&mut self.current, next);
        full.now = now;
        let _ = self.tx.send(full);
    }
}

pub(super) struct Parallel<S: Sink> {
    decoder: Decoder,
    lanes: Vec<LaneHandle>,
    sink: JoinHandle<S>,
    last_ts: Timestamp,
    last_flush: Timestamp,
}

impl<S: Sink> Parallel<S> {
    pub(super) fn new(cfg: EngineConfig, sink: S) -> Self {
        let (done_tx, done_rx) = bounded::<Finished>(FINISHED_QUEUE);
        let lanes = (0..cfg.workers)
            .map(|i| LaneHandle::spawn(&cfg, i, done_tx.clone()))
            .collect();
        let sink = threads::sink(sink, done_rx);
        Parallel {
            decoder: Decoder::new(cfg.ports, cfg.limits.defrag.clone()),
            lanes,
            sink,
            last_ts: Timestamp::ZERO,
            last_flush: Timestamp::ZERO,
        }
    }

    pub(super) fn packets(&mut self, batch: &[Packet<'_>]) {
        let segments = self.decoder.decode_batch(batch);
        for (p, seg) in batch.iter().zip(&segments) {
            self.dispatch(p.ts, seg.as_ref());
        }
        self.decoder.reuse(segments);
    }

    pub(super) fn packet(&mut self, p: &Packet<'_>) {
        let seg = self.decoder.decode(p);
        self.dispatch(p.ts, seg.as_ref());
    }

    fn dispatch(&mut self, ts: Timestamp, decoded: Option<&Decoded<'_>>) {
        self.last_ts = self.last_ts.max(ts);
        if let Some(decoded) = decoded {
            let seg = decoded.segment();
            let i = lane_of(&seg, self.lanes.len());
            if let Some(lane) = self.lanes.get_mut(i) {
                lane.current.push(ts, &seg);
                if lane.current.is_full() {
                    lane.send(self.last_ts);
                }
            }
        }
        if self.last_ts.since(self.last_flush) >= FLUSH_EVERY {
            self.tick(self.last_ts);
        }
    }

    pub(super) fn tick(&mut self, now: Timestamp) {
        self.last_ts = self.last_ts.max(now);
        self.last_flush = self.last_ts;
        for lane in &mut self.lanes {
            lane.send(self.last_ts);
        }
    }

    pub(super) fn health(&self) -> Health {
        let mut h = Health {
            packets: self.decoder.counts(),
            datagrams: self.decoder.defrag_counts(),
            ..Health::default()
        };
        for lane in &self.lanes {
            h.merge(&lane.health.lock().unwrap_or_else(PoisonError::into_inner));
        }
        h
    }

    pub(super) fn finish(mut self) -> (S, Health) {
        self.tick(self.last_ts);
        let mut workers = Vec::new();
        for lane in std::mem::take(&mut self.lanes) {
            // Its channel closed, the worker ends once it has emptied it.
            drop(lane.tx);
            workers.push((lane.thread, lane.health));
        }
        self.decoder.finish();
        let health = Health {
            packets: self.decoder.counts(),
            datagrams: self.decoder.defrag_counts(),
            ..Health::default()
        };
        threads::join(workers, health, self.sink)
    }
}
