//! Replay on workers that take turns reading: `N` workers use `N` cores, and nothing but the
//! sink runs on a thread of its own.
//!
//! The file is a token passed around the workers in a ring; chunk `k` of the replay is read
//! by worker `k mod N`. A capture file (classic pcap or pcapng) is read in pieces
//! (`source::split`): each worker reads its next piece ahead of its turn, in parallel with the
//! others, and the token only carries where the blocks are; the holder walks the block
//! headers of its piece (a few nanoseconds per block) and passes the token on. Any other
//! capture goes through the whole-file reader, and the holder copies a chunk of its packets
//! out of the reader's buffer before it passes the token on. Either way, what is serial is the least it can be,
//! and decoding, analysis and outputs run on all workers at once. (A reader thread that
//! decodes for the workers, as live capture has, needs a core of its own, and became the
//! limit at about one all-mail worker.)
//!
//! Then the holder decodes its chunk and splits the mail segments by connection (a symmetric
//! hash of the two endpoints, so both directions land together) into one [`Part`] per worker,
//! which refers to the chunk's bytes instead of copying them. Each worker analyses its own
//! connections, taking its parts in chunk order: part `k` comes from worker `k mod N`, over a
//! channel that keeps that worker's order, so every connection sees its packets in capture
//! order.
//!
//! No worker ever blocks on a send (every channel has room for all the chunks that can
//! exist), and a worker waits only when it has neither the token nor its next part. Chunks
//! are reused: every reference to a chunk comes back when its holder is done, and the last
//! one makes it free again. At most `CHUNKS` (and one read ahead per worker) exist, which
//! bounds memory and queueing; in steady state nothing is allocated per packet. Each chunk
//! carries packet time, so idle flows expire on every worker alike.

mod fragments;
mod worker;

use super::chunk::Chunk;
use super::slot::Slot;
use super::threads::{self, named, wait};
use super::{Decoder, EngineConfig, Finished, Health, InputRead, Lane, ReadProgress, Sink};
use crate::source::compressed::Compression;
use crate::source::file::{CaptureFile, Input, SourceError};
use crate::source::split::{Framing, SplitPcap};
use crate::source::{Packet, TimeSpan, Timestamp};
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};
use fragments::Fragments;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;
use worker::Worker;

/// Chunks in flight or free, for all workers together, besides the one each may have read
/// ahead.
const CHUNKS: usize = 16;
/// Finished connections queued for the sink thread.
const FINISHED_QUEUE: usize = 4096;
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// How often a file being read reports its progress.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// One worker's segments from one chunk, in capture order; sent even when empty, so that the
/// worker's clock follows the chunk's.
struct Part {
    chunk: Arc<Chunk>,
    slots: Vec<Slot>,
    /// Payloads reassembled from IP fragments, which are in no frame of the chunk (empty,
    /// and unallocated, without fragments).
    side: Vec<u8>,
}

/// Where the reading is: packet time and how many chunks there have been.
#[derive(Clone, Copy, Default)]
struct Cursor {
    /// The number of the next chunk: it is read by worker `chunks mod N`.
    chunks: usize,
    last_ts: Timestamp,
    last_flush: Timestamp,
}

impl Cursor {
    /// A second of packet time has passed since the last chunk that ended on one: the chunk
    /// being filled ends now, so that idle flows expire on time on every worker.
    fn due(&self) -> bool {
        self.last_ts.since(self.last_flush) >= FLUSH_EVERY
    }

    /// `chunk` is complete: it takes the packet time reached, and gets the next number.
    fn seal(&mut self, chunk: &mut Chunk) {
        if self.due() {
            self.last_flush = self.last_ts;
        }
        chunk.now = self.last_ts;
        chunk.number = self.chunks;
        self.chunks += 1;
    }
}

/// How the file is being read.
enum Source {
    /// A capture file in pieces, each read by the worker whose turn it is to frame it
    /// (or read ahead, see [`Worker::read_ahead`]).
    Split {
        split: Arc<SplitPcap>,
        framing: Framing,
        /// The next piece to frame.
        piece: u64,
    },
    /// Any capture, through the whole-file reader, copying its packets into chunks.
    File(CaptureFile),
}

/// The file being read, with where the reading is; held by one worker at a time.
struct Token {
    source: Source,
    /// Which `read_input` call the file is, so that pieces read ahead for an earlier file are
    /// not taken for this one's.
    file: u64,
    cursor: Cursor,
    packets: u64,
    /// Of those, cut by the snap length.
    cut: u64,
    /// Packet time of the file's earliest and latest packet so far.
    span: Option<TimeSpan>,
}

/// What a worker gets its turn with.
enum Turn {
    /// Read the next chunk of this file.
    File(Box<Token>),
    /// Decode a chunk the caller filled ([`Ring::packets`]).
    Chunk(Arc<Chunk>),
    /// No more turns: the engine is finishing.
    End,
}

/// A file read to its end, or to the block that could not be read.
struct FileEnd {
    token: Box<Token>,
    result: Result<(), SourceError>,
}

/// Progress of the file being read, for the caller's progress bar.
#[derive(Default)]
struct Progress {
    packets: AtomicU64,
    offset: AtomicU64,
}

/// What the workers share.
struct Shared {
    /// Every worker's turn channel, by worker: the token goes from one to the next.
    turns: Vec<Sender<Turn>>,
    ended: Sender<FileEnd>,
    /// References to chunks their holders are done with; any worker takes them back.
    returned: (Sender<Arc<Chunk>>, Receiver<Arc<Chunk>>),
    /// Chunks that exist, and how many may.
    allocated: AtomicUsize,
    limit: usize,
    progress: Progress,
    /// The one defragmenter, fed in chunk order.
    fragments: Fragments,
}

impl Shared {
    /// The turn channel of the worker that reads or decodes chunk number `chunk`.
    fn turn_of(&self, chunk: usize) -> Option<&Sender<Turn>> {
        self.turns.get(chunk % self.turns.len().max(1))
    }

    /// A free chunk without waiting, if there is one or one may still be made.
    fn try_chunk(&self, pool: &mut Vec<Arc<Chunk>>) -> Option<Arc<Chunk>> {
        while let Ok(c) = self.returned.1.try_recv() {
            reclaim(pool, c);
        }
        if let Some(c) = pool.pop() {
            return Some(c);
        }
        let made = self
            .allocated
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < self.limit).then_some(n + 1)
            });
        made.is_ok().then(|| Arc::new(Chunk::new()))
    }
}

/// A file whose workers went away before its end: the packets they had read.
fn stopped(p: &Progress, compression: Option<Compression>) -> InputRead {
    InputRead {
        packets: p.packets.load(Ordering::Relaxed),
        span: None,
        result: Ok(()),
        compression,
    }
}

/// A reference back: the last one makes the chunk free again.
fn reclaim(pool: &mut Vec<Arc<Chunk>>, mut c: Arc<Chunk>) {
    if let Some(chunk) = Arc::get_mut(&mut c) {
        chunk.clear();
        pool.push(c);
    }
}

struct Handle {
    health: Arc<Mutex<Health>>,
    thread: JoinHandle<()>,
}

pub(super) struct Ring<S: Sink> {
    shared: Arc<Shared>,
    ended: Receiver<FileEnd>,
    workers: Vec<Handle>,
    cursor: Cursor,
    /// Files read so far.
    files: u64,
    /// For [`packets`](Self::packets): the chunk being filled, and the caller's free chunks.
    current: Option<Arc<Chunk>>,
    pool: Vec<Arc<Chunk>>,
    sink: JoinHandle<S>,
}

impl<S: Sink> Ring<S> {
    pub(super) fn new(cfg: EngineConfig, sink: S) -> Self {
        let n = cfg.workers.max(1);
        // A chunk read ahead by each worker, besides those in flight.
        let chunks = CHUNKS + n;
        let (done_tx, done_rx) = bounded::<Finished>(FINISHED_QUEUE);
        let (ended_tx, ended) = bounded::<FileEnd>(1);
        let mut turn_rx = Vec::new();
        let mut turns = Vec::new();
        for _ in 0..n {
            // The token, and every chunk the caller may fill.
            let (tx, rx) = bounded::<Turn>(chunks + 1);
            turns.push(tx);
            turn_rx.push(rx);
        }
        let shared = Arc::new(Shared {
            turns,
            ended: ended_tx,
            // Every reference to every chunk fits.
            returned: bounded::<Arc<Chunk>>(chunks * (n + 1)),
            allocated: AtomicUsize::new(0),
            limit: chunks,
            progress: Progress::default(),
            fragments: Fragments::new(cfg.limits.defrag.clone()),
        });
        // parts[i][j]: from worker i to worker j. A channel holds at most one part per chunk.
        let mut to: Vec<Vec<Sender<Part>>> = (0..n).map(|_| Vec::new()).collect();
        let mut from: Vec<Vec<Receiver<Part>>> = (0..n).map(|_| Vec::new()).collect();
        for senders in to.iter_mut() {
            for receivers in from.iter_mut() {
                let (tx, rx) = bounded::<Part>(chunks);
                senders.push(tx);
                receivers.push(rx);
            }
        }
        let workers = to
            .into_iter()
            .zip(from)
            .zip(turn_rx)
            .enumerate()
            .map(|(index, ((to, from), turns))| {
                let health = Arc::new(Mutex::new(Health::default()));
                let worker = Worker {
                    decoder: Decoder::new(cfg.ports.clone(), cfg.limits.defrag.clone()),
                    lane: Lane::new(&cfg),
                    shared: Arc::clone(&shared),
                    turns,
                    to,
                    from,
                    next: 0,
                    pool: Vec::new(),
                    spare: Vec::new(),
                    ahead: None,
                    lists: Vec::with_capacity(n),
                    done: done_tx.clone(),
                    health: Arc::clone(&health),
                };
                // Named, so `top -H` and profilers tell the threads apart.
                let thread = named(format!("worker-{index}"), move || worker.run());
                Handle { health, thread }
            })
            .collect();
        let sink = threads::sink(sink, done_rx);
        Ring {
            shared,
            ended,
            workers,
            cursor: Cursor::default(),
            files: 0,
            current: None,
            pool: Vec::new(),
            sink,
        }
    }

    /// Read a whole file on the workers. `progress` gets the packets read and the file offset
    /// reached, every 100 ms while the file is read. Returns the packets read, and the error
    /// that stopped the file early, if one did.
    pub(super) fn read_input(
        &mut self,
        input: &Input,
        progress: &mut dyn FnMut(ReadProgress<'_>),
    ) -> InputRead {
        let source = match SplitPcap::open(input) {
            Some(split) => {
                let framing = split.framing();
                Source::Split {
                    split: Arc::new(split),
                    framing,
                    piece: 0,
                }
            }
            None => match CaptureFile::open(input) {
                Ok(file) => Source::File(file),
                Err(e) => {
                    return InputRead {
                        packets: 0,
                        span: None,
                        result: Err(e),
                        compression: None,
                    }
                }
            },
        };
        // Compressed files cannot be split: `SplitPcap` takes only files that start like a
        // capture, so they are read whole, by a `CaptureFile` that decompresses them.
        let compression = match &source {
            Source::File(file) => file.compression(),
            Source::Split { .. } => None,
        };
        self.send_current();
        let p = &self.shared.progress;
        p.packets.store(0, Ordering::Relaxed);
        p.offset.store(0, Ordering::Relaxed);
        self.files += 1;
        let token = Box::new(Token {
            source,
            file: self.files,
            cursor: self.cursor,
            packets: 0,
            cut: 0,
            span: None,
        });
        if let Some(first) = self.shared.turn_of(self.cursor.chunks) {
            let _ = first.send(Turn::File(token));
        }
        loop {
            match self.ended.recv_timeout(PROGRESS_EVERY) {
                Ok(end) => {
                    self.cursor = end.token.cursor;
                    let offset = match &end.token.source {
                        Source::File(file) => file.offset(),
                        Source::Split { framing, .. } => framing.offset(),
                    };
                    progress(ReadProgress {
                        packets: end.token.packets,
                        cut: end.token.cut,
                        offset,
                        health: &|| self.health(),
                    });
                    return InputRead {
                        packets: end.token.packets,
                        span: end.token.span,
                        result: end.result,
                        compression,
                    };
                }
                Err(RecvTimeoutError::Timeout) => {
                    progress(ReadProgress {
                        packets: p.packets.load(Ordering::Relaxed),
                        cut: 0,
                        offset: p.offset.load(Ordering::Relaxed),
                        health: &|| self.health(),
                    });
                    // A worker that panicked may have held the token: stop waiting, and let
                    // `finish` report the panic.
                    if self.workers.iter().any(|w| w.thread.is_finished()) {
                        return stopped(p, compression);
                    }
                }
                Err(RecvTimeoutError::Disconnected) => return stopped(p, compression),
            }
        }
    }

    /// Packets from the caller rather than a file: copied into chunks that the workers decode
    /// in turn, as if read from a file.
    pub(super) fn packets(&mut self, mut batch: &[Packet<'_>]) {
        while !batch.is_empty() {
            let mut chunk = match self.current.take() {
                Some(c) => c,
                None => self.free_chunk(),
            };
            let filled = Arc::make_mut(&mut chunk);
            let mut taken = 0;
            for p in batch {
                taken += 1;
                self.cursor.last_ts = self.cursor.last_ts.max(p.ts);
                filled.push(p);
                if filled.is_full() || self.cursor.due() {
                    break;
                }
            }
            let send = filled.is_full() || self.cursor.due();
            batch = batch.get(taken..).unwrap_or_default();
            self.current = Some(chunk);
            if send {
                self.send_current();
            }
        }
    }

    /// Hand the caller's chunk to the worker whose turn it is.
    fn send_current(&mut self) {
        let Some(mut chunk) = self.current.take() else {
            return;
        };
        let turn = self.shared.turn_of(self.cursor.chunks);
        self.cursor.seal(Arc::make_mut(&mut chunk));
        if let Some(to) = turn {
            let _ = to.send(Turn::Chunk(chunk));
        }
    }

    fn free_chunk(&mut self) -> Arc<Chunk> {
        loop {
            if let Some(c) = self.shared.try_chunk(&mut self.pool) {
                return c;
            }
            match self.shared.returned.1.recv() {
                Ok(c) => reclaim(&mut self.pool, c),
                Err(_) => return Arc::new(Chunk::new()),
            }
        }
    }

    pub(super) fn tick(&mut self, now: Timestamp) {
        self.cursor.last_ts = self.cursor.last_ts.max(now);
        if self.current.is_none() {
            self.current = Some(self.free_chunk());
        }
        self.cursor.last_flush = self.cursor.last_ts;
        self.send_current();
    }

    pub(super) fn health(&self) -> Health {
        let mut h = Health {
            datagrams: self.shared.fragments.counts(),
            ..Health::default()
        };
        for w in &self.workers {
            h.merge(&w.health.lock().unwrap_or_else(PoisonError::into_inner));
        }
        h
    }

    pub(super) fn finish(mut self) -> (S, Health) {
        self.send_current();
        // After every chunk in each worker's turn channel: the workers end once they have
        // analysed every part.
        for to in &self.shared.turns {
            let _ = to.send(Turn::End);
        }
        let Ring {
            workers,
            sink,
            shared,
            ..
        } = self;
        let workers = workers.into_iter().map(|w| (w.thread, w.health)).collect();
        let (sink, mut health) = threads::join(workers, Health::default(), sink);
        // Every chunk is done: what is still in reassembly will never complete.
        health.datagrams = shared.fragments.finish();
        (sink, health)
    }
}
