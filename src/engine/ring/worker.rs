//! One worker of the ring: its turns at reading, its decoding, and its connections.

use super::{reclaim, wait, Cursor, FileEnd, Part, Progress, Shared, Slot, Source, Token, Turn};
use crate::decode::Decoded;
use crate::engine::chunk::Chunk;
use crate::engine::{lane_of, Decoder, Finished, Health, Lane};
use crate::source::file::{CaptureFile, SourceError};
use crate::source::split::{Framed, Framing, SplitPcap};
use crate::source::{Packet, TimeSpan};
use crossbeam_channel::{Receiver, Select, Sender, TryRecvError};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};

/// Where the file goes after a turn's chunk.
enum Step {
    /// On, with the next turn.
    More,
    /// It has ended.
    End,
    /// On, with the whole-file reader from where framing stopped.
    ReadOn(CaptureFile),
}

/// A piece read ahead of the worker's turn to frame it.
pub(super) struct Ahead {
    file: u64,
    piece: u64,
    chunk: Arc<Chunk>,
    /// Bytes read (`None`: fewer than expected; see [`SplitPcap::read_piece`]).
    read: Option<usize>,
}

/// Fill `chunk` from the whole-file reader, until it is full, a second of packet time has
/// passed, or the file ends or fails.
fn fill(
    chunk: &mut Chunk,
    file: &mut CaptureFile,
    cursor: &mut Cursor,
    progress: &Progress,
) -> Result<Step, SourceError> {
    let mut result = Ok(true);
    let mut offset = 0;
    while !chunk.is_full() && !cursor.due() {
        let last_ts = &mut cursor.last_ts;
        result = file.next_batch(chunk.room(), &mut |batch: &[Packet<'_>], at| {
            for p in batch {
                *last_ts = (*last_ts).max(p.ts);
                chunk.push(p);
            }
            offset = at;
        });
        if !matches!(result, Ok(true)) {
            break;
        }
    }
    if offset > 0 {
        progress.offset.store(offset, Ordering::Relaxed);
    }
    result.map(|more| if more { Step::More } else { Step::End })
}

/// What a worker thread owns.
pub(super) struct Worker {
    pub(super) decoder: Decoder,
    pub(super) lane: Lane,
    pub(super) shared: Arc<Shared>,
    pub(super) turns: Receiver<Turn>,
    /// Parts for every worker (this one included), by worker; dropped when no more turns come.
    pub(super) to: Vec<Sender<Part>>,
    /// Parts for this worker, by the worker that decoded them.
    pub(super) from: Vec<Receiver<Part>>,
    /// The chunk number of this worker's next part.
    pub(super) next: usize,
    pub(super) pool: Vec<Arc<Chunk>>,
    /// Emptied slot lists, for the next parts.
    pub(super) spare: Vec<Vec<Slot>>,
    pub(super) ahead: Option<Ahead>,
    /// The lists of the chunk being decoded, one per worker (kept for its allocation).
    pub(super) lists: Vec<Vec<Slot>>,
    pub(super) done: Sender<Finished>,
    pub(super) health: Arc<Mutex<Health>>,
}

impl Worker {
    pub(super) fn run(mut self) {
        let workers = self.from.len();
        loop {
            // Turns first: reading is the one step no other worker can do meanwhile.
            let taking_turns = !self.to.is_empty();
            if taking_turns {
                match self.turns.try_recv() {
                    Ok(turn) => {
                        self.turn(turn);
                        continue;
                    }
                    // The engine is gone without ending the turns (it panicked).
                    Err(TryRecvError::Disconnected) => {
                        self.to.clear();
                        continue;
                    }
                    Err(TryRecvError::Empty) => {}
                }
            }
            match self.try_own_part() {
                Ok(true) => continue,
                Ok(false) => {}
                // The worker that would read the next chunk has had its last turn: the input
                // has ended.
                Err(()) => break,
            }
            // Neither is ready: wait for one (or for a disconnection) and look again.
            let Some(from) = self.from.get(self.next % workers) else {
                break;
            };
            let mut select = Select::new();
            select.recv(from);
            if taking_turns {
                select.recv(&self.turns);
            }
            wait(&mut select);
        }
        let done = &self.done;
        self.lane.finish(&mut |f| {
            let _ = done.send(f);
        });
        self.publish();
    }

    /// Analyse this worker's next part if it has come: `Ok(false)` if not yet, `Err` if it
    /// never will.
    fn try_own_part(&mut self) -> Result<bool, ()> {
        let workers = self.from.len();
        let Some(from) = self.from.get(self.next % workers) else {
            return Err(());
        };
        match from.try_recv() {
            Ok(part) => {
                self.analyse(part);
                self.next += 1;
                Ok(true)
            }
            Err(TryRecvError::Disconnected) => Err(()),
            Err(TryRecvError::Empty) => Ok(false),
        }
    }

    fn turn(&mut self, turn: Turn) {
        match turn {
            Turn::Chunk(chunk) => self.decode(chunk),
            Turn::File(token) => {
                let chunk = self.read(token);
                self.decode(chunk);
            }
            // Let every worker see the end of this one's parts.
            Turn::End => self.to.clear(),
        }
    }

    /// Read the next chunk of the token's file, and pass the token on: to the next worker, or
    /// back to the caller at the end of the file.
    fn read(&mut self, mut token: Box<Token>) -> Arc<Chunk> {
        let file_id = token.file;
        // The split file and the piece of this worker's next turn, to read ahead.
        let mut ahead = None;
        let (mut chunk, step) = match &mut token.source {
            Source::Split {
                split,
                framing,
                piece,
            } => {
                let split = Arc::clone(split);
                let (chunk, framed) = self.frame_piece(&split, framing, file_id, *piece);
                token.cursor.last_ts = token.cursor.last_ts.max(chunk.latest());
                let progress = &self.shared.progress;
                progress.offset.store(framing.offset(), Ordering::Relaxed);
                let step = match framed {
                    Framed::More => {
                        *piece += 1;
                        // The other workers frame the pieces in between.
                        ahead = Some((split, *piece + self.shared.turns.len() as u64 - 1));
                        Ok(Step::More)
                    }
                    Framed::End => Ok(Step::End),
                    Framed::ReadOn(at) => split.read_on(framing, at).map(Step::ReadOn),
                };
                (chunk, step)
            }
            Source::File(file) => {
                let mut chunk = self.free_chunk();
                let filled = Arc::make_mut(&mut chunk);
                let step = fill(filled, file, &mut token.cursor, &self.shared.progress);
                (chunk, step)
            }
        };
        token.packets += chunk.len() as u64;
        token.cut += chunk.cut();
        token.span = TimeSpan::join(token.span, chunk.span());
        self.shared
            .progress
            .packets
            .store(token.packets, Ordering::Relaxed);
        let next = self.shared.turn_of(token.cursor.chunks + 1);
        token.cursor.seal(Arc::make_mut(&mut chunk));
        let result = match step {
            Ok(Step::More) => None,
            Ok(Step::ReadOn(file)) => {
                token.source = Source::File(file);
                None
            }
            Ok(Step::End) => Some(Ok(())),
            Err(e) => Some(Err(e)),
        };
        match (result, next) {
            // A worker's turn channel holds the one token and at most every chunk: this
            // never waits.
            (None, Some(next)) => {
                let _ = next.send(Turn::File(token));
            }
            (None, None) => {}
            (Some(result), _) => {
                let _ = self.shared.ended.send(FileEnd { token, result });
            }
        }
        if let Some((split, k)) = ahead {
            self.read_ahead(&split, file_id, k);
        }
        chunk
    }

    /// Piece `k` of a split file, framed: read ahead already, or read now.
    fn frame_piece(
        &mut self,
        split: &Arc<SplitPcap>,
        framing: &mut Framing,
        file: u64,
        k: u64,
    ) -> (Arc<Chunk>, Framed) {
        let ahead = match self.ahead.take() {
            Some(a) if a.file == file && a.piece == k => Some(a),
            Some(other) => {
                reclaim(&mut self.pool, other.chunk);
                None
            }
            None => None,
        };
        let (mut chunk, read) = match ahead {
            Some(a) => (a.chunk, a.read),
            None => {
                let mut chunk = self.free_chunk();
                let read = split.read_piece(k, Arc::make_mut(&mut chunk).piece().0);
                (chunk, read)
            }
        };
        let (buf, frames) = Arc::make_mut(&mut chunk).piece();
        let framed = match read {
            Some(n) => framing.frame(buf, n, k + 1 >= split.pieces(), frames),
            None => Framed::ReadOn(framing.offset()),
        };
        (chunk, framed)
    }

    /// Read piece `k` ahead of this worker's turn to frame it, if a chunk is free now.
    fn read_ahead(&mut self, split: &SplitPcap, file: u64, k: u64) {
        if k >= split.pieces() {
            return;
        }
        if let Some(old) = self.ahead.take() {
            reclaim(&mut self.pool, old.chunk);
        }
        let Some(mut chunk) = self.shared.try_chunk(&mut self.pool) else {
            return;
        };
        let read = split.read_piece(k, Arc::make_mut(&mut chunk).piece().0);
        self.ahead = Some(Ahead {
            file,
            piece: k,
            chunk,
            read,
        });
    }

    /// A free chunk; while there is none, analyse this worker's own parts (other workers may
    /// be waiting for them before they free a chunk), or wait for a chunk to come back.
    fn free_chunk(&mut self) -> Arc<Chunk> {
        loop {
            if let Some(c) = self.shared.try_chunk(&mut self.pool) {
                return c;
            }
            match self.try_own_part() {
                Ok(true) => continue,
                Ok(false) => {}
                // Cannot happen while this worker holds the token; a chunk of its own then.
                Err(()) => return Arc::new(Chunk::new()),
            }
            let workers = self.from.len();
            let Some(from) = self.from.get(self.next % workers) else {
                return Arc::new(Chunk::new());
            };
            let mut select = Select::new();
            select.recv(from);
            select.recv(&self.shared.returned.1);
            wait(&mut select);
        }
    }

    /// Decode a chunk and send each worker its part.
    fn decode(&mut self, chunk: Arc<Chunk>) {
        let workers = self.to.len();
        let mut slots = std::mem::take(&mut self.lists);
        slots.extend((0..workers).map(|_| self.spare.pop().unwrap_or_default()));
        let mut sides: Vec<Vec<u8>> = (0..workers).map(|_| Vec::new()).collect();
        let shared = Arc::clone(&self.shared);
        let mut ticket = shared.fragments.ticket(chunk.number);
        for p in chunk.packets() {
            let Some(decoded) = self.decoder.decode_via(&p, &mut ticket) else {
                continue;
            };
            let seg = decoded.segment();
            let lane = lane_of(&seg, workers);
            let (Some(list), Some(side)) = (slots.get_mut(lane), sides.get_mut(lane)) else {
                continue;
            };
            match &decoded {
                Decoded::Frame(_) => {
                    if let Some(start) = chunk.offset_of(seg.payload) {
                        list.push(Slot::new(p.ts, &seg, start));
                    }
                }
                // Its bytes are in no frame: copied to the part's side buffer.
                Decoded::Reassembled(_) => {
                    list.push(Slot::in_side(p.ts, &seg, side.len()));
                    side.extend_from_slice(seg.payload);
                }
            }
        }
        // The next chunk's fragments may go in now.
        drop(ticket);
        // Every part holds a reference to the chunk; the last takes this one.
        let mut chunk = Some(chunk);
        for (i, ((to, slots), side)) in self.to.iter().zip(slots.drain(..)).zip(sides).enumerate() {
            let c = if i + 1 == workers {
                chunk.take()
            } else {
                chunk.clone()
            };
            if let Some(chunk) = c {
                // Room for every part of every chunk: this never waits.
                let _ = to.send(Part { chunk, slots, side });
            }
        }
        self.lists = slots;
        self.publish();
    }

    /// Analyse this worker's segments of one chunk.
    fn analyse(&mut self, part: Part) {
        let done = &self.done;
        let mut out = |f: Finished| {
            // The sink thread only goes away when the engine is finishing.
            let _ = done.send(f);
        };
        let Part {
            chunk,
            mut slots,
            side,
        } = part;
        for s in &slots {
            let (start, len) = s.range();
            let payload = if s.is_side() {
                start
                    .checked_add(len)
                    .and_then(|end| side.get(start..end))
                    .unwrap_or_default()
            } else {
                chunk.bytes(start, len)
            };
            let seg = s.segment(payload);
            self.lane.segment(s.ts, &seg, &mut out);
        }
        self.lane.tick(chunk.now, &mut out);
        slots.clear();
        // Each worker takes one part per chunk and makes one per chunk on average, so the
        // lists circulate; the bound only matters if that ever drifts.
        if self.spare.len() < self.shared.limit * self.from.len() {
            self.spare.push(slots);
        }
        self.publish();
        // Freed by whoever holds the last reference.
        let _ = self.shared.returned.0.send(chunk);
    }

    fn publish(&self) {
        let mut h = self.lane.health();
        h.packets = self.decoder.counts();
        *self.health.lock().unwrap_or_else(PoisonError::into_inner) = h;
    }
}
