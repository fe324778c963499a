//! One direction's reassembler: bytes in stream order, each once, gaps in-band, memory bounded.
//!
//! - In-order data goes straight from the packet slice to the [`Sink`]: no copy, no allocation.
//! - Out-of-order data is held as a short sorted list of *runs* (maximal contiguous held
//!   ranges; one run per hole after the delivered prefix). Holding is bounded three ways: runs
//!   per direction, bytes per direction, and a [`Budget`] shared by a whole flow table. When a
//!   cap refuses a segment the outcome says which ([`Full`]), `ReassemblyOverflow` is reported,
//!   and the oldest hole is declared a gap so the stream moves on. The next in-order segment
//!   never needs room, so it always gets through.
//! - Retransmissions and overlaps are delivered once: the first copy wins. Overlapping bytes
//!   that differ from a held copy are reported as `ConflictingOverlap` (bytes already delivered
//!   are not kept, so they cannot be compared).
//! - A hole becomes a `Gap(len)` at its place when it can no longer fill: the peer acknowledged
//!   past it, a cap was hit, the stream ended, or the capture cut a segment short (its missing
//!   tail is known missing as soon as the segment is seen).
//! - A segment more than [`MAX_WINDOW`] bytes from where the stream is, is `OutOfWindow` and
//!   ignored.
//!
//! Every call returns an [`Outcome`] saying how far the stream advanced (data + gaps), so the
//! flow table counts stream bytes in sequence space.

use super::seq::{SeqNumber, SeqSpace};
use super::{Interest, StreamEvent};
use crate::config::Limits;
use crate::session::anomaly::Anomaly;
use std::collections::VecDeque;
use std::ops::ControlFlow;

/// Segments (and acknowledgments) farther than this from the stream's position are ignored.
/// Far beyond any TCP window (2^30 is the largest scaled window, RFC 7323 §2.3).
pub const MAX_WINDOW: u64 = 1 << 30;

/// Where reassembled events go: the flow table adapts its handler to this.
pub trait Sink {
    /// The next event of the stream; `Interest::Done` stops delivery (the caller bypasses).
    fn deliver(&mut self, event: StreamEvent<'_>) -> Interest;
    fn anomaly(&mut self, anomaly: Anomaly);
}

/// The caps on held out-of-order data; the byte total is shared by every direction of a table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Budget {
    used: usize,
    total: usize,
    per_direction: usize,
    runs_per_direction: usize,
}

impl Budget {
    pub fn new(limits: &Limits) -> Budget {
        Budget {
            used: 0,
            total: limits.max_buffer_total,
            per_direction: limits.max_buffer_per_direction,
            runs_per_direction: limits.max_segments_per_direction,
        }
    }

    /// Out-of-order bytes held right now, across all directions that share this budget.
    pub fn used(&self) -> usize {
        self.used
    }

    /// Whether `n` more bytes could be held by a direction already holding `held`.
    pub fn has_room(&self, held: usize, n: usize) -> bool {
        held.saturating_add(n) <= self.per_direction && self.fits(n)
    }

    fn fits(&self, n: usize) -> bool {
        self.used.saturating_add(n) <= self.total
    }

    fn take(&mut self, n: usize) {
        self.used = self.used.saturating_add(n);
    }

    fn give(&mut self, n: usize) {
        self.used = self.used.saturating_sub(n);
    }
}

/// Which cap refused an out-of-order segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Full {
    /// `max_segments_per_direction` held ranges.
    Ranges,
    /// `max_buffer_per_direction` bytes.
    DirectionBytes,
    /// `max_buffer_total` bytes across the table.
    TotalBytes,
}

/// What a RST does (RFC 5961 §3.2): ends the connection at the next expected sequence number,
/// draws a challenge ACK elsewhere in the window (the connection lives on), is dropped outside.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResetCheck {
    Accept,
    InWindow,
    OutOfWindow,
}

/// What one call did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// How far the stream advanced: data delivered plus gaps declared (in bypass: the new
    /// highest sequence offset seen). Each stream byte is counted once.
    pub advanced: u64,
    /// Gaps declared, and their total length.
    pub gaps: u64,
    pub gap_bytes: u64,
    /// A cap refused a segment; the oldest hole was declared a gap to make room.
    pub full: Option<Full>,
    pub out_of_window: bool,
    pub conflict: bool,
    /// The sink answered `Interest::Done`: this direction now only counts.
    pub done: bool,
    /// The direction ended (`Eof` delivered) during this call.
    pub ended: bool,
}

/// One segment's part of a direction's stream.
#[derive(Clone, Copy, Debug)]
pub struct Incoming<'a> {
    /// Sequence number of the first payload byte (after the SYN, if the segment has one).
    pub seq: SeqNumber,
    /// The captured payload.
    pub payload: &'a [u8],
    /// The payload length on the wire (≥ `payload.len()` when the capture cut the frame).
    pub wire_len: u32,
    pub fin: bool,
}

/// A held range: `data` at `start`, and bytes up to `wire_end` known missing (cut by the
/// capture) unless another segment supplies them.
#[derive(Debug, Default)]
struct Run {
    start: u64,
    wire_end: u64,
    data: VecDeque<u8>,
}

impl Run {
    fn end(&self) -> u64 {
        self.start.saturating_add(len64(self.data.len()))
    }
}

/// Runs sorted by start, disjoint and not touching (`runs[i].end() < runs[i + 1].start`),
/// all after the delivered prefix.
#[derive(Debug, Default)]
struct Held {
    runs: Vec<Run>,
    bytes: usize,
}

/// One direction of a connection.
#[derive(Debug)]
pub struct Reassembler {
    /// Offsets relative to the first stream byte; the reference offset is `next`: the next
    /// byte to deliver (in bypass: the highest offset seen).
    space: SeqSpace,
    /// Offset of the FIN (one past the last data byte), once seen.
    fin: Option<u64>,
    held: Option<Box<Held>>,
    /// Nothing at or past this offset is delivered, neither data nor gap, until it is raised:
    /// the flow holds this direction back while the other one has not yet delivered what these
    /// bytes answer (cross-direction order, `flow::order`). `u64::MAX` when nothing waits.
    limit: u64,
    /// Bypassed: the highest offset the peer acknowledged. Counted only when the stream ends,
    /// capped at its FIN: the acknowledgment of a FIN is one past it, and may be captured
    /// before the FIN itself.
    acked_mark: u64,
    synced: bool,
    /// Synced at the first data segment seen rather than at a SYN: until a SYN fixes the base
    /// (or the flow stops waiting for one), an earlier segment arriving late moves it back.
    tentative: bool,
    bypass: bool,
    ended: bool,
}

impl Default for Reassembler {
    fn default() -> Self {
        Reassembler {
            space: SeqSpace::default(),
            fin: None,
            held: None,
            limit: u64::MAX,
            acked_mark: 0,
            synced: false,
            tentative: false,
            bypass: false,
            ended: false,
        }
    }
}

impl Reassembler {
    pub fn new() -> Reassembler {
        Reassembler::default()
    }

    /// Offset 0 is at `base` (ISN+1 after a SYN, or the first sequence number seen).
    pub fn sync(&mut self, base: SeqNumber) {
        self.space = SeqSpace::new(base);
        self.synced = true;
    }

    /// The SYN says where the stream starts. A base taken from a data segment moves back to
    /// it (the bytes held so far keep their sequence numbers); either way the base is final.
    pub fn confirm_base(&mut self, base: SeqNumber) {
        if !self.synced {
            self.sync(base);
            return;
        }
        if self.tentative && self.space.last() == 0 {
            if let Some(back) = self.space.base().checked_sub(base) {
                self.move_base_back(u64::from(back));
            }
        }
        self.tentative = false;
    }

    /// The base taken from the first data segment stays: no SYN came in time.
    pub fn settle_base(&mut self) {
        self.tentative = false;
    }

    /// Synced at a data segment, and no SYN has confirmed the base yet.
    pub fn is_tentative(&self) -> bool {
        self.tentative
    }

    /// Offset 0 moves `by` bytes back; what is held keeps its sequence numbers.
    fn move_base_back(&mut self, by: u64) {
        if by == 0 || by > MAX_WINDOW {
            return;
        }
        // Offsets are taken modulo 2^32 by design, as in `SeqSpace::seq_at`.
        let base = SeqNumber(self.space.base().0.wrapping_sub(by as u32));
        self.space = SeqSpace::new(base);
        self.fin = self.fin.map(|f| f.saturating_add(by));
        if let Some(held) = self.held.as_mut() {
            for r in &mut held.runs {
                r.start = r.start.saturating_add(by);
                r.wire_end = r.wire_end.saturating_add(by);
            }
        }
    }

    /// Hold back everything at or past `limit` (see the field); `u64::MAX` lets all through.
    pub fn set_limit(&mut self, limit: u64) {
        self.limit = limit;
    }

    /// The sequence number's offset in this stream, if it is synced and `seq` lies at or after
    /// its start.
    pub fn offset_of(&self, seq: SeqNumber) -> Option<u64> {
        if !self.synced {
            return None;
        }
        self.space.offset(seq)
    }

    /// What the peer's acknowledgment `ack` says this direction holds beyond what it
    /// delivered: the offset it acknowledges (capped at the FIN), when that is ahead of the
    /// next byte to deliver and within the window. The flow waits before declaring those bytes
    /// lost: they may still arrive, when the capture put the acknowledgment first.
    pub fn acked_ahead(&self, ack: SeqNumber) -> Option<u64> {
        if !self.synced || self.ended || self.bypass {
            return None;
        }
        let delta = self.space.delta(ack);
        if delta <= 0 || delta.unsigned_abs() > MAX_WINDOW {
            return None;
        }
        let target = self.next_offset().saturating_add(delta.unsigned_abs());
        let target = self.fin.map_or(target, |f| target.min(f));
        (target > self.next_offset()).then_some(target)
    }

    /// The highest offset this direction knows of: held bytes, cut tails, the FIN.
    pub fn highest_known(&self) -> u64 {
        self.held
            .as_ref()
            .and_then(|h| h.runs.last())
            .map_or(0, |r| r.wire_end.max(r.end()))
            .max(self.fin.unwrap_or(0))
            .max(self.next_offset())
    }

    /// The stream reached its FIN but has not ended yet (its start was tentative).
    pub fn fin_reached(&self) -> bool {
        !self.ended && !self.tentative && self.fin.is_some_and(|f| self.next_offset() >= f)
    }

    /// Held data starts right at the next byte to deliver (it waits only on the limit).
    pub fn held_at_next(&self) -> bool {
        self.first_run_start()
            .is_some_and(|s| s <= self.next_offset())
    }

    /// Deliver what is held contiguously from the next byte, up to the limit: no gap is
    /// declared but for tails the capture cut.
    pub fn deliver_held(&mut self, budget: &mut Budget, sink: &mut dyn Sink) -> Outcome {
        let mut out = Out::new(sink);
        if self.ended || self.bypass {
            return out.o;
        }
        if !self.held_at_next() {
            self.settle(&mut out);
            return out.o;
        }
        let next = self.next_offset();
        let flow = self.drain(next, budget, &mut out);
        self.stop_if_done(flow, budget, &mut out);
        self.settle(&mut out);
        out.o
    }

    /// Start over at a new base (the same ports reused with a new ISN before any byte moved).
    pub fn reset(&mut self, base: SeqNumber, budget: &mut Budget) {
        self.release(budget);
        *self = Reassembler::new();
        self.sync(base);
    }

    pub fn is_synced(&self) -> bool {
        self.synced
    }

    pub fn base(&self) -> Option<SeqNumber> {
        self.synced.then(|| self.space.base())
    }

    /// The next offset to deliver (in bypass: the highest offset seen).
    pub fn next_offset(&self) -> u64 {
        self.space.last()
    }

    /// Nothing delivered, nothing held, no FIN: the direction has not started.
    pub fn is_pristine(&self) -> bool {
        self.space.last() == 0 && self.held.is_none() && self.fin.is_none() && !self.ended
    }

    pub fn is_ended(&self) -> bool {
        self.ended
    }

    pub fn is_bypassed(&self) -> bool {
        self.bypass
    }

    pub fn held_bytes(&self) -> usize {
        self.held.as_ref().map_or(0, |h| h.bytes)
    }

    pub fn held_ranges(&self) -> usize {
        self.held.as_ref().map_or(0, |h| h.runs.len())
    }

    /// `seq` is within [`MAX_WINDOW`] of the stream's position (always true before sync).
    pub fn in_window(&self, seq: SeqNumber) -> bool {
        !self.synced || self.space.delta(seq).unsigned_abs() <= MAX_WINDOW
    }

    /// What a RST with sequence number `seq` does to this direction, per RFC 5961 §3.2 as far
    /// as a passive observer can tell. The receiver's RCV.NXT is not known exactly: the sensor
    /// may have seen bytes the receiver has not (they are in flight), so "at RCV.NXT" is any
    /// offset from the next byte to deliver up to one past the highest byte or FIN seen (a RST
    /// after a FIN carries the FIN's sequence number + 1). A RST while the direction is not yet
    /// synced is taken (nothing to compare with).
    pub fn reset_check(&self, seq: SeqNumber) -> ResetCheck {
        if !self.synced {
            return ResetCheck::Accept;
        }
        let delta = self.space.delta(seq);
        let next = self.next_offset();
        let highest = self
            .held
            .as_ref()
            .and_then(|h| h.runs.last())
            .map_or(next, |r| r.wire_end.max(r.end()))
            .max(self.fin.unwrap_or(0))
            .max(next);
        let ahead = highest.saturating_sub(next).saturating_add(1);
        match u64::try_from(delta) {
            Ok(d) if d <= ahead => ResetCheck::Accept,
            _ if delta.unsigned_abs() <= MAX_WINDOW => ResetCheck::InWindow,
            _ => ResetCheck::OutOfWindow,
        }
    }

    /// Feed one segment (data and/or FIN). Syncs the direction at `seq` if it was not yet.
    pub fn segment(
        &mut self,
        seg: Incoming<'_>,
        budget: &mut Budget,
        sink: &mut dyn Sink,
    ) -> Outcome {
        let mut out = Out::new(sink);
        if self.ended {
            return out.o;
        }
        if !self.synced {
            self.sync(seg.seq);
            self.tentative = true;
        }
        let mut delta = self.space.delta(seg.seq);
        if delta < 0 && self.tentative && self.space.last() == 0 {
            // An earlier segment of a stream synced at a later one: the stream starts here.
            self.move_base_back(delta.unsigned_abs());
            delta = self.space.delta(seg.seq);
        }
        if delta.unsigned_abs() > MAX_WINDOW {
            out.o.out_of_window = true;
            out.sink.anomaly(Anomaly::OutOfWindow);
            return out.o;
        }
        let (off, payload, wire_len) = self.clip_to_start(delta, seg);
        let mut end = off.saturating_add(wire_len);
        if seg.fin {
            self.set_fin(end, budget);
        }
        if let Some(fin) = self.fin {
            end = end.min(fin);
        }
        let captured_len = usize::try_from(end.saturating_sub(off)).unwrap_or(usize::MAX);
        let captured = payload.get(..captured_len).unwrap_or(payload);

        let next = self.next_offset();
        if end > next && end > off {
            if self.bypass {
                out.o.advanced += end - next;
                self.space.set_last(end);
            } else {
                let flow = if off <= next {
                    self.deliver_in_order(off, captured, end, budget, &mut out)
                } else {
                    self.hold(off, captured, end, budget, &mut out)
                };
                self.stop_if_done(flow, budget, &mut out);
            }
        }
        self.settle(&mut out);
        out.o
    }

    /// The peer acknowledged up to `ack`: every hole before it can no longer fill.
    pub fn ack(&mut self, ack: SeqNumber, budget: &mut Budget, sink: &mut dyn Sink) -> Outcome {
        let mut out = Out::new(sink);
        if !self.synced || self.ended {
            return out.o;
        }
        let delta = self.space.delta(ack);
        if delta <= 0 {
            return out.o;
        }
        if delta.unsigned_abs() > MAX_WINDOW {
            out.o.out_of_window = true;
            out.sink.anomaly(Anomaly::OutOfWindow);
            return out.o;
        }
        let next = self.next_offset();
        let mut target = next.saturating_add(delta.unsigned_abs());
        if let Some(fin) = self.fin {
            target = target.min(fin);
        }
        if self.bypass {
            self.acked_mark = self.acked_mark.max(target);
        } else {
            let flow = self.drain(target, budget, &mut out);
            self.stop_if_done(flow, budget, &mut out);
        }
        self.settle(&mut out);
        out.o
    }

    /// The stream ends here (FIN timeout, RST, eviction, end of capture): deliver what is held
    /// with gaps for the holes (and up to a FIN seen beyond them), then `Eof`.
    pub fn finish(&mut self, budget: &mut Budget, sink: &mut dyn Sink) -> Outcome {
        let mut out = Out::new(sink);
        if self.ended {
            return out.o;
        }
        if !self.bypass {
            // The end: nothing waits any more.
            self.limit = u64::MAX;
            let last_held = self
                .held
                .as_ref()
                .and_then(|h| h.runs.last())
                .map_or(0, |r| r.wire_end.max(r.end()));
            let target = last_held.max(self.fin.unwrap_or(0));
            let flow = self.drain(target, budget, &mut out);
            self.stop_if_done(flow, budget, &mut out);
        } else {
            let acked = self.fin.map_or(self.acked_mark, |f| self.acked_mark.min(f));
            let next = self.next_offset();
            if acked > next {
                out.o.advanced += acked - next;
                self.space.set_last(acked);
            }
        }
        self.ended = true;
        out.o.ended = true;
        out.eof();
        self.release(budget);
        out.o
    }

    /// An ended stream's late segment ending at `end`: how far it extends the stream's count
    /// (within the window), nothing delivered.
    pub fn count_late(&mut self, end: SeqNumber) -> u64 {
        if !self.synced {
            return 0;
        }
        let delta = self.space.delta(end);
        if delta <= 0 || delta.unsigned_abs() > MAX_WINDOW {
            return 0;
        }
        let next = self.next_offset();
        self.space
            .set_last(next.saturating_add(delta.unsigned_abs()));
        delta.unsigned_abs()
    }

    /// Stop delivering: drop what is held; from now on only count. Returns how far the
    /// stream advanced: over what was held (holes included), as the end of the stream would
    /// have.
    pub fn bypass(&mut self, budget: &mut Budget) -> u64 {
        let next = self.next_offset();
        let highest = self.highest_known();
        self.release(budget);
        self.bypass = true;
        self.space.set_last(highest);
        highest - next
    }

    /// Give held bytes back to the budget (the flow is going away or bypassed).
    pub fn release(&mut self, budget: &mut Budget) {
        if let Some(held) = self.held.take() {
            budget.give(held.bytes);
        }
    }

    /// Trim a segment that starts before offset 0 (mid-stream pickup, retransmitted SYN data).
    fn clip_to_start<'a>(&self, delta: i64, seg: Incoming<'a>) -> (u64, &'a [u8], u64) {
        let wire_len = u64::from(seg.wire_len);
        let next = self.next_offset();
        match next.checked_add_signed(delta) {
            Some(off) => (off, seg.payload, wire_len),
            None => {
                let before = delta.unsigned_abs().saturating_sub(next);
                let skip = usize::try_from(before).unwrap_or(usize::MAX);
                let payload = seg.payload.get(skip..).unwrap_or_default();
                (0, payload, wire_len.saturating_sub(before))
            }
        }
    }

    fn set_fin(&mut self, at: u64, budget: &mut Budget) {
        if self.fin.is_some() || at < self.next_offset() {
            return;
        }
        self.fin = Some(at);
        if let Some(held) = self.held.as_mut() {
            budget.give(held.truncate(at));
            if held.runs.is_empty() {
                self.held = None;
            }
        }
    }

    /// After the sink said Done: bypass this direction.
    fn stop_if_done(&mut self, flow: ControlFlow<()>, budget: &mut Budget, out: &mut Out<'_>) {
        if flow.is_break() {
            out.o.done = true;
            out.o.advanced += self.bypass(budget);
        }
    }

    /// `Eof` once the stream reached its FIN.
    /// (Not while the start is tentative: the stream may still turn out to begin earlier.)
    fn settle(&mut self, out: &mut Out<'_>) {
        if !self.ended && !self.tentative && self.fin.is_some_and(|f| self.next_offset() >= f) {
            self.ended = true;
            out.o.ended = true;
            out.eof();
        }
    }

    fn consume(&mut self, bytes: &[u8], out: &mut Out<'_>) -> ControlFlow<()> {
        if bytes.is_empty() {
            return ControlFlow::Continue(());
        }
        let next = self.next_offset().saturating_add(len64(bytes.len()));
        self.space.set_last(next);
        out.data(bytes)
    }

    fn gap(&mut self, len: u64, out: &mut Out<'_>) -> ControlFlow<()> {
        if len == 0 {
            return ControlFlow::Continue(());
        }
        let next = self.next_offset().saturating_add(len);
        self.space.set_last(next);
        out.gap(len)
    }

    fn first_run_start(&self) -> Option<u64> {
        self.held.as_ref()?.runs.first().map(|r| r.start)
    }

    /// Consume the first held run where it starts at or before `next`, up to the limit: its
    /// bytes from `next` on are delivered, then its cut tail (known missing) as a gap. Returns
    /// `None` when no run starts there or the limit stops it.
    fn take_held(&mut self, budget: &mut Budget, out: &mut Out<'_>) -> Option<ControlFlow<()>> {
        let next = self.next_offset();
        let limit = self.limit;
        let start = self.first_run_start()?;
        if start > next || next >= limit {
            return None;
        }
        let mut run = self.pop_first_run(budget)?;
        // Bytes before `next` were delivered already (from another copy): skipped.
        let skip = usize::try_from(next - run.start).unwrap_or(usize::MAX);
        let upto = run.end().min(limit);
        let take = usize::try_from(upto.saturating_sub(next)).unwrap_or(usize::MAX);
        let mut flow = ControlFlow::Continue(());
        let (a, b) = run.data.as_slices();
        let mut from = skip;
        let mut left = take;
        for part in [a, b] {
            let piece = part.get(from..).unwrap_or_default();
            from = from.saturating_sub(part.len());
            let piece = piece.get(..left).unwrap_or(piece);
            left -= piece.len();
            if flow.is_continue() {
                flow = self.consume(piece, out);
            }
        }
        let used = skip.saturating_add(take).min(run.data.len());
        run.data.drain(..used);
        run.start = run.start.saturating_add(len64(used));
        if run.data.is_empty() {
            // What is left of the run is its cut tail: a gap up to the limit. Bytes of the
            // tail a held run supplies are not missing: the gap stops where the next run
            // starts, and the rest of the tail goes on past that run's bytes.
            let here = self.next_offset();
            let mut tail_end = run.wire_end.min(limit);
            if let Some(following) = self.held.as_mut().and_then(|h| h.runs.first_mut()) {
                if following.start < tail_end {
                    following.wire_end = following.wire_end.max(run.wire_end);
                    tail_end = following.start.max(here);
                    run.wire_end = tail_end;
                }
            }
            if flow.is_continue() && tail_end > here {
                flow = self.gap(tail_end - here, out);
            }
            run.start = run.start.max(tail_end);
        }
        let keep = !run.data.is_empty() || run.wire_end > run.start.max(self.next_offset());
        if keep {
            self.unpop_first_run(run, budget);
        }
        if flow.is_continue() && used == 0 && keep && self.next_offset() == next {
            // Nothing could move: the run waits on the limit.
            return None;
        }
        Some(flow)
    }

    fn pop_first_run(&mut self, budget: &mut Budget) -> Option<Run> {
        let held = self.held.as_mut()?;
        if held.runs.is_empty() {
            return None;
        }
        let run = held.runs.remove(0);
        held.bytes = held.bytes.saturating_sub(run.data.len());
        budget.give(run.data.len());
        if held.runs.is_empty() {
            self.held = None;
        }
        Some(run)
    }

    /// Put back what is left of the run [`pop_first_run`](Self::pop_first_run) took.
    fn unpop_first_run(&mut self, run: Run, budget: &mut Budget) {
        let n = run.data.len();
        let held = self.held.get_or_insert_with(Box::default);
        held.bytes = held.bytes.saturating_add(n);
        budget.take(n);
        held.runs.insert(0, run);
    }

    /// Move `next` to at least `target` (not past the limit): held runs are delivered, holes
    /// declared gaps; runs that then follow contiguously are delivered too (and their
    /// known-missing tails gapped).
    fn drain(&mut self, target: u64, budget: &mut Budget, out: &mut Out<'_>) -> ControlFlow<()> {
        loop {
            if let Some(flow) = self.take_held(budget, out) {
                flow?;
                continue;
            }
            let next = self.next_offset();
            let target = target.min(self.limit);
            match self.first_run_start() {
                Some(start) if start <= next => return ControlFlow::Continue(()),
                Some(start) if start < target => self.gap(start - next, out)?,
                // Then loop: a run may start right where the gap ends.
                _ if next < target => self.gap(target - next, out)?,
                _ => return ControlFlow::Continue(()),
            }
        }
    }

    /// `data` at `off ≤ next` ends (on the wire) at `end > next`: deliver it from the packet,
    /// except where a held copy came first; what lies past the limit is held.
    fn deliver_in_order(
        &mut self,
        off: u64,
        data: &[u8],
        mut end: u64,
        budget: &mut Budget,
        out: &mut Out<'_>,
    ) -> ControlFlow<()> {
        loop {
            let next = self.next_offset();
            if next >= self.limit {
                // Held back: keep the rest of the segment (and its cut tail) for later.
                return self.hold(off, data, end, budget, out);
            }
            let skip = usize::try_from(next.saturating_sub(off)).unwrap_or(usize::MAX);
            let rest = data.get(skip..).unwrap_or_default();
            if rest.is_empty() {
                break;
            }
            let room = usize::try_from(self.limit - next).unwrap_or(usize::MAX);
            let rest = rest.get(..room).unwrap_or(rest);
            match self.first_run_start() {
                Some(start) if start <= next => {
                    if let Some(r) = self.held.as_ref().and_then(|h| h.runs.first()) {
                        if !run_matches(r, next, rest) {
                            out.conflict();
                        }
                    }
                    // This segment supplies the run's cut tail as far as its data goes: only
                    // what lies past that is known missing (a gap once the segment is in).
                    let supplied = next.saturating_add(len64(rest.len()));
                    if let Some(r) = self.held.as_mut().and_then(|h| h.runs.first_mut()) {
                        if supplied > r.end() && r.wire_end > r.end() {
                            end = end.max(r.wire_end);
                            r.wire_end = r.end();
                        }
                    }
                    match self.take_held(budget, out) {
                        Some(flow) => flow?,
                        None => return self.hold(off, data, end, budget, out),
                    }
                }
                Some(start) if start < next.saturating_add(len64(rest.len())) => {
                    let n = usize::try_from(start - next).unwrap_or(usize::MAX);
                    self.consume(rest.get(..n).unwrap_or(rest), out)?;
                }
                _ => self.consume(rest, out)?,
            }
        }
        if end > self.next_offset() && self.next_offset() >= self.limit {
            return self.hold(off, data, end, budget, out);
        }
        self.drain(end, budget, out)
    }

    /// `data` at `off` that cannot be delivered now (it lies after `next`, or past the limit):
    /// hold it; if a cap refuses, make room (the oldest hole becomes a gap; held bytes waiting
    /// on the other direction are let through: memory wins over order) and retry.
    fn hold(
        &mut self,
        off: u64,
        data: &[u8],
        end: u64,
        budget: &mut Budget,
        out: &mut Out<'_>,
    ) -> ControlFlow<()> {
        loop {
            let next = self.next_offset();
            if off <= next && next < self.limit {
                return self.deliver_in_order(off, data, end, budget, out);
            }
            // Only the part from `next` on is new.
            let skip = usize::try_from(next.saturating_sub(off)).unwrap_or(usize::MAX);
            let (off, data) = (off.max(next), data.get(skip..).unwrap_or_default());
            if end <= off {
                return ControlFlow::Continue(());
            }
            match self.try_hold(off, data, end, budget) {
                Ok(conflict) => {
                    if conflict {
                        out.conflict();
                    }
                    return ControlFlow::Continue(());
                }
                Err(full) => {
                    if out.o.full.is_none() {
                        out.o.full = Some(full);
                        out.sink.anomaly(Anomaly::ReassemblyOverflow);
                    }
                    if self.limit <= next {
                        self.limit = u64::MAX;
                        continue;
                    }
                    // This segment supplies the cut tails of runs before it from `off` on:
                    // making room must not declare those bytes a gap.
                    self.trim_cut_tails(off);
                    let oldest_hole_end = self.first_run_start().map_or(off, |s| s.min(off));
                    self.drain(oldest_hole_end, budget, out)?;
                    if self.next_offset() == next {
                        // Nothing moved (the limit sits before the hole): let it through.
                        self.limit = u64::MAX;
                    }
                }
            }
        }
    }

    /// Held runs that start at or before `off` are known missing (cut by the capture) only up
    /// to it.
    fn trim_cut_tails(&mut self, off: u64) {
        let runs = self.held.as_mut().map_or(&mut [][..], |h| &mut h.runs[..]);
        for r in runs.iter_mut().take_while(|r| r.start <= off) {
            r.wire_end = r.wire_end.min(off.max(r.end()));
        }
    }

    /// Hold `data` at `off` (after `next`), merging with the runs it overlaps or touches.
    /// `Ok(true)` if it overlapped a held copy with different bytes; nothing changes on `Err`.
    fn try_hold(
        &mut self,
        off: u64,
        data: &[u8],
        end: u64,
        budget: &mut Budget,
    ) -> Result<bool, Full> {
        let seg_end = off.saturating_add(len64(data.len()));
        let runs: &[Run] = self.held.as_ref().map_or(&[], |h| &h.runs);
        let held_bytes = self.held_bytes();
        let i = runs.partition_point(|r| r.end() < off);
        let j = runs.partition_point(|r| r.start <= seg_end);
        let touching = runs.get(i..j).unwrap_or_default();
        let covered: u64 = touching.iter().map(|r| overlap(r, off, seg_end)).sum();
        let added =
            usize::try_from(len64(data.len()).saturating_sub(covered)).unwrap_or(usize::MAX);
        if runs.len() + 1 - touching.len() > budget.runs_per_direction {
            return Err(Full::Ranges);
        }
        if held_bytes.saturating_add(added) > budget.per_direction {
            return Err(Full::DirectionBytes);
        }
        if !budget.fits(added) {
            return Err(Full::TotalBytes);
        }
        let conflict = touching.iter().any(|r| !run_matches(r, off, data));

        let held = self.held.get_or_insert_with(Box::default);
        let before: usize = held
            .runs
            .get(i..j)
            .map_or(0, |t| t.iter().map(|r| r.data.len()).sum());
        let merged = merge(held.runs.get_mut(i..j).unwrap_or_default(), off, data, end);
        let after = merged.data.len();
        debug_assert_eq!(after, before + added, "merge accounting");
        held.runs.splice(i..j.max(i), std::iter::once(merged));
        let grown = after.saturating_sub(before);
        held.bytes = held.bytes.saturating_add(grown);
        budget.take(grown);
        Ok(conflict)
    }
}

impl Held {
    /// Drop held bytes at and after `at` (a FIN there); returns how many bytes were dropped.
    fn truncate(&mut self, at: u64) -> usize {
        let before = self.bytes;
        self.runs.retain(|r| r.start < at);
        for r in &mut self.runs {
            let keep = usize::try_from(at.saturating_sub(r.start)).unwrap_or(usize::MAX);
            r.data.truncate(keep);
            r.wire_end = r.wire_end.min(at);
        }
        self.bytes = self.runs.iter().map(|r| r.data.len()).sum();
        before.saturating_sub(self.bytes)
    }
}

/// Merge `data` at `off` (wire end `end`) with the runs it overlaps or touches (held bytes win)
/// into one run. The largest run's buffer is grown in place, so each byte is moved O(log n)
/// times however the segments arrive.
fn merge(touching: &mut [Run], off: u64, data: &[u8], end: u64) -> Run {
    let seg_end = off.saturating_add(len64(data.len()));
    let largest = touching
        .iter()
        .enumerate()
        .max_by_key(|(_, r)| r.data.len())
        .map(|(k, _)| k);
    let Some(t) = largest else {
        return Run {
            start: off,
            wire_end: end.max(seg_end),
            data: VecDeque::from(data.to_vec()),
        };
    };
    let lo = touching.first().map_or(off, |r| r.start.min(off));
    let hi = touching.last().map_or(seg_end, |r| r.end().max(seg_end));
    let wire_end = touching
        .iter()
        .map(|r| r.wire_end)
        .fold(end.max(hi), u64::max);
    let (left, rest) = touching.split_at_mut(t);
    let Some((target, right)) = rest.split_first_mut() else {
        return Run::default();
    };
    let mut body = std::mem::take(&mut target.data);
    let (t_start, t_end) = (target.start, target.start.saturating_add(len64(body.len())));

    let mut front = Vec::new();
    fill(left, off, data, lo, t_start, &mut front);
    for &b in front.iter().rev() {
        body.push_front(b);
    }
    let mut back = Vec::new();
    fill(right, off, data, t_end, hi, &mut back);
    body.extend(back);
    Run {
        start: lo,
        wire_end,
        data: body,
    }
}

/// The bytes of `[from, to)` from `runs` where they have them, else from `data` at `off`.
fn fill(runs: &[Run], off: u64, data: &[u8], from: u64, to: u64, out: &mut Vec<u8>) {
    let seg = |a: u64, b: u64| {
        let a = usize::try_from(a.saturating_sub(off)).unwrap_or(usize::MAX);
        let b = usize::try_from(b.saturating_sub(off)).unwrap_or(usize::MAX);
        data.get(a..b).unwrap_or_default()
    };
    let mut cur = from;
    for r in runs {
        if r.end() <= cur {
            continue;
        }
        if r.start >= to {
            break;
        }
        if r.start > cur {
            out.extend_from_slice(seg(cur, r.start));
            cur = r.start;
        }
        let stop = r.end().min(to);
        let a = usize::try_from(cur - r.start).unwrap_or(usize::MAX);
        let b = usize::try_from(stop - r.start).unwrap_or(usize::MAX);
        if a <= b && b <= r.data.len() {
            out.extend(r.data.range(a..b));
        }
        cur = stop;
    }
    if cur < to {
        out.extend_from_slice(seg(cur, to));
    }
}

/// How many bytes of `[off, seg_end)` the run holds.
fn overlap(r: &Run, off: u64, seg_end: u64) -> u64 {
    r.end().min(seg_end).saturating_sub(r.start.max(off))
}

/// The run's bytes equal `data` (at `off`) where both exist.
fn run_matches(r: &Run, off: u64, data: &[u8]) -> bool {
    let seg_end = off.saturating_add(len64(data.len()));
    let a = r.start.max(off);
    let b = r.end().min(seg_end);
    if a >= b {
        return true;
    }
    let idx = |x: u64, base: u64| usize::try_from(x - base).unwrap_or(usize::MAX);
    let (ra, rb) = (idx(a, r.start), idx(b, r.start));
    let theirs = data.get(idx(a, off)..idx(b, off)).unwrap_or_default();
    rb <= r.data.len() && r.data.range(ra..rb).eq(theirs.iter())
}

fn len64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// The sink plus the tally of one call.
struct Out<'s> {
    sink: &'s mut dyn Sink,
    o: Outcome,
}

impl<'s> Out<'s> {
    fn new(sink: &'s mut dyn Sink) -> Self {
        Out {
            sink,
            o: Outcome::default(),
        }
    }

    fn data(&mut self, bytes: &[u8]) -> ControlFlow<()> {
        self.o.advanced = self.o.advanced.saturating_add(len64(bytes.len()));
        self.send(StreamEvent::Data(bytes))
    }

    fn gap(&mut self, len: u64) -> ControlFlow<()> {
        self.o.advanced = self.o.advanced.saturating_add(len);
        self.o.gaps += 1;
        self.o.gap_bytes = self.o.gap_bytes.saturating_add(len);
        self.send(StreamEvent::Gap(len))
    }

    fn eof(&mut self) {
        // The last event of the direction: whatever the answer, nothing follows.
        let _ = self.sink.deliver(StreamEvent::Eof);
    }

    fn conflict(&mut self) {
        if !self.o.conflict {
            self.o.conflict = true;
            self.sink.anomaly(Anomaly::ConflictingOverlap);
        }
    }

    fn send(&mut self, event: StreamEvent<'_>) -> ControlFlow<()> {
        match self.sink.deliver(event) {
            Interest::More => ControlFlow::Continue(()),
            Interest::Done => ControlFlow::Break(()),
        }
    }
}

#[cfg(test)]
impl Reassembler {
    /// The held ranges `[start, end)` of data, for the model test.
    fn held_spans(&self) -> Vec<(u64, u64)> {
        self.held.as_ref().map_or_else(Vec::new, |h| {
            h.runs.iter().map(|r| (r.start, r.end())).collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An ISN 10,000 below the 2^32 wrap: the stream crosses it after 10,000 bytes.
    const ISN_NEAR_WRAP: u32 = u32::MAX - 9_999;

    #[derive(Clone, Debug, PartialEq, Eq)]
    enum Ev {
        Data(Vec<u8>),
        Gap(u64),
        Eof,
    }

    /// Records events (adjacent `Data` merged), anomalies, and the packet pointers it saw.
    #[derive(Default)]
    struct Rec {
        events: Vec<Ev>,
        anomalies: Vec<Anomaly>,
        pointers: Vec<*const u8>,
        /// Answer `Done` once this many stream bytes went by.
        done_after: Option<u64>,
        seen: u64,
    }

    impl Sink for Rec {
        fn deliver(&mut self, event: StreamEvent<'_>) -> Interest {
            match event {
                StreamEvent::Data(b) => {
                    self.pointers.push(b.as_ptr());
                    self.seen += b.len() as u64;
                    match self.events.last_mut() {
                        Some(Ev::Data(last)) => last.extend_from_slice(b),
                        _ => self.events.push(Ev::Data(b.to_vec())),
                    }
                }
                StreamEvent::Gap(n) => {
                    self.seen += n;
                    self.events.push(Ev::Gap(n));
                }
                StreamEvent::Eof => self.events.push(Ev::Eof),
            }
            match self.done_after {
                Some(d) if self.seen >= d => Interest::Done,
                _ => Interest::More,
            }
        }

        fn anomaly(&mut self, anomaly: Anomaly) {
            self.anomalies.push(anomaly);
        }
    }

    fn limits(per_direction: usize, ranges: usize, total: usize) -> Limits {
        Limits {
            max_buffer_per_direction: per_direction,
            max_segments_per_direction: ranges,
            max_buffer_total: total,
            ..Limits::default()
        }
    }

    fn roomy() -> Budget {
        Budget::new(&limits(1 << 24, 100_000, 1 << 26))
    }

    /// One direction after a SYN with ISN `isn`; offsets are stream offsets.
    struct Stream {
        r: Reassembler,
        budget: Budget,
        rec: Rec,
        base: SeqNumber,
    }

    impl Stream {
        fn after_syn(isn: u32, budget: Budget) -> Stream {
            let base = SeqNumber(isn).wrapping_add(1);
            let mut r = Reassembler::new();
            r.sync(base);
            Stream {
                r,
                budget,
                rec: Rec::default(),
                base,
            }
        }

        fn seq(&self, off: u64) -> SeqNumber {
            self.base.wrapping_add(off as u32)
        }

        fn cut(&mut self, off: u64, captured: &[u8], wire_len: u32, fin: bool) -> Outcome {
            let seg = Incoming {
                seq: self.seq(off),
                payload: captured,
                wire_len,
                fin,
            };
            self.r.segment(seg, &mut self.budget, &mut self.rec)
        }

        fn send(&mut self, off: u64, bytes: &[u8]) -> Outcome {
            self.cut(off, bytes, bytes.len() as u32, false)
        }

        fn fin(&mut self, off: u64) -> Outcome {
            self.cut(off, b"", 0, true)
        }

        fn ack(&mut self, off: u64) -> Outcome {
            let ack = self.seq(off);
            self.r.ack(ack, &mut self.budget, &mut self.rec)
        }

        fn finish(&mut self) -> Outcome {
            self.r.finish(&mut self.budget, &mut self.rec)
        }
    }

    fn data(b: &[u8]) -> Ev {
        Ev::Data(b.to_vec())
    }

    #[test]
    fn in_order_data_is_delivered_from_the_packet() {
        let mut s = Stream::after_syn(ISN_NEAR_WRAP, roomy());
        let first = b"220 mx.example ESMTP\r\n".to_vec();
        let o = s.send(0, &first);
        assert_eq!(o.advanced, first.len() as u64);
        assert_eq!(s.rec.pointers, vec![first.as_ptr()]);
        assert_eq!(s.r.held_bytes(), 0);
        assert_eq!(s.budget.used(), 0);
    }

    #[test]
    fn out_of_order_is_held_until_the_hole_fills() {
        let mut s = Stream::after_syn(ISN_NEAR_WRAP, roomy());
        assert_eq!(s.send(5, b"world").advanced, 0);
        assert_eq!(s.r.held_bytes(), 5);
        assert_eq!(s.budget.used(), 5);
        assert_eq!(s.send(0, b"hello").advanced, 10);
        assert_eq!(s.rec.events, vec![data(b"helloworld")]);
        assert_eq!(s.budget.used(), 0);
        assert_eq!(s.r.held_ranges(), 0);
    }

    #[test]
    fn retransmissions_are_delivered_once() {
        let mut s = Stream::after_syn(7, roomy());
        s.send(0, b"abcd");
        s.send(0, b"abcd");
        s.send(2, b"cdef");
        s.send(8, b"ij");
        s.send(8, b"ij");
        s.send(4, b"efgh");
        assert_eq!(s.rec.events, vec![data(b"abcdefghij")]);
        assert!(s.rec.anomalies.is_empty());
    }

    #[test]
    fn conflicting_overlap_keeps_the_first_copy() {
        let mut s = Stream::after_syn(7, roomy());
        s.send(4, b"EFGH");
        let o = s.send(0, b"abcdefgh");
        assert!(o.conflict);
        assert_eq!(s.rec.events, vec![data(b"abcdEFGH")]);
        assert_eq!(s.rec.anomalies, vec![Anomaly::ConflictingOverlap]);
        // Between two held copies too.
        s.send(12, b"MNOP");
        s.send(10, b"klmnop");
        assert_eq!(s.rec.anomalies.len(), 2);
        s.send(8, b"ij");
        assert_eq!(s.rec.events, vec![data(b"abcdEFGHijklMNOP")]);
    }

    #[test]
    fn an_ack_past_a_hole_declares_the_gap_at_its_place() {
        let mut s = Stream::after_syn(ISN_NEAR_WRAP, roomy());
        s.send(0, b"one ");
        s.send(9, b"three");
        let o = s.ack(14);
        assert_eq!((o.gaps, o.gap_bytes, o.advanced), (1, 5, 10));
        assert_eq!(
            s.rec.events,
            vec![data(b"one "), Ev::Gap(5), data(b"three")]
        );
        // The missing segment arrives late: already declared, ignored.
        s.send(4, b"two! ");
        s.send(14, b"!");
        assert_eq!(s.rec.events.last(), Some(&data(b"three!")));
    }

    #[test]
    fn an_ack_beyond_everything_seen_is_a_trailing_gap() {
        let mut s = Stream::after_syn(1, roomy());
        s.send(0, b"abc");
        s.ack(10);
        assert_eq!(s.rec.events, vec![data(b"abc"), Ev::Gap(7)]);
        assert_eq!(s.r.next_offset(), 10);
    }

    #[test]
    fn the_stream_ending_with_a_hole_flushes_it_as_a_gap() {
        let mut s = Stream::after_syn(1, roomy());
        s.send(0, b"ab");
        s.send(4, b"ef");
        s.cut(8, b"", 0, true); // FIN at 8, bytes 6..8 never seen
        assert!(!s.r.is_ended());
        let o = s.finish();
        assert!(o.ended);
        assert_eq!(
            s.rec.events,
            vec![data(b"ab"), Ev::Gap(2), data(b"ef"), Ev::Gap(2), Ev::Eof]
        );
        assert_eq!(s.budget.used(), 0);
    }

    #[test]
    fn fin_reached_in_sequence_is_eof_once() {
        let mut s = Stream::after_syn(1, roomy());
        s.cut(0, b"quit", 4, true);
        s.fin(4);
        s.finish();
        assert_eq!(s.rec.events, vec![data(b"quit"), Ev::Eof]);
        assert!(s.r.is_ended());
    }

    #[test]
    fn data_after_the_fin_is_ignored() {
        let mut s = Stream::after_syn(1, roomy());
        s.send(6, b"ghij");
        s.fin(8);
        assert_eq!(s.r.held_bytes(), 2);
        assert_eq!(s.budget.used(), 2);
        s.send(0, b"abcdefxyz");
        assert_eq!(s.rec.events, vec![data(b"abcdefgh"), Ev::Eof]);
        assert_eq!(s.budget.used(), 0);
    }

    #[test]
    fn a_segment_cut_by_the_capture_ends_in_a_gap() {
        let mut s = Stream::after_syn(ISN_NEAR_WRAP, roomy());
        let o = s.cut(0, b"abc", 10, false);
        assert_eq!((o.advanced, o.gap_bytes), (10, 7));
        s.send(10, b"next");
        assert_eq!(s.rec.events, vec![data(b"abc"), Ev::Gap(7), data(b"next")]);
    }

    #[test]
    fn a_cut_segment_held_out_of_order_gaps_its_tail_when_reached() {
        let mut s = Stream::after_syn(1, roomy());
        s.cut(4, b"ef", 6, false); // 4..10 on the wire, 4..6 captured
        s.send(10, b"kl");
        s.send(0, b"abcd");
        assert_eq!(s.rec.events, vec![data(b"abcdef"), Ev::Gap(4), data(b"kl")]);
        // Snap length 0: nothing captured, the whole payload is a gap, even out of order.
        let mut s = Stream::after_syn(1, roomy());
        s.cut(5, b"", 5, false);
        s.cut(0, b"", 5, false);
        assert_eq!(s.rec.events, vec![Ev::Gap(5), Ev::Gap(5)]);
        assert_eq!(s.r.next_offset(), 10);
    }

    #[test]
    fn a_cut_tail_is_filled_by_a_later_full_copy() {
        let mut s = Stream::after_syn(1, roomy());
        s.cut(4, b"ef", 6, false);
        s.send(4, b"efghij");
        s.send(0, b"abcd");
        assert_eq!(s.rec.events, vec![data(b"abcdefghij")]);
    }

    /// Found by fuzzing (reassembly): a cut segment's tail that reaches over runs held after
    /// it is missing only where no run supplies the bytes.
    #[test]
    fn a_cut_tail_over_held_runs_is_a_gap_only_between_them() {
        let mut s = Stream::after_syn(ISN_NEAR_WRAP, roomy());
        s.send(16, b"s");
        s.send(17, b"t");
        s.send(20, b"x");
        s.cut(14, b"o", 16, false); // 14..30 on the wire, 14 captured
        s.finish();
        assert_eq!(
            s.rec.events,
            vec![
                Ev::Gap(14),
                data(b"o"),
                Ev::Gap(1),
                data(b"st"),
                Ev::Gap(2),
                data(b"x"),
                Ev::Gap(9),
                Ev::Eof
            ]
        );
    }

    #[test]
    fn an_in_order_segment_supplies_the_cut_tail_of_a_run_it_reaches() {
        let mut s = Stream::after_syn(1, roomy());
        s.cut(4, b"ef", 8, false); // 4..12 on the wire, 4..6 captured
        s.send(0, b"abcdEFghij"); // reaches the run, then supplies 6..10 of its tail
        assert_eq!(s.rec.events, vec![data(b"abcdefghij"), Ev::Gap(2)]);
        assert!(s.rec.anomalies.contains(&Anomaly::ConflictingOverlap));
        assert_eq!(s.r.next_offset(), 12);
        assert_eq!(s.r.held_bytes(), 0);
        // Past the tail: the segment's bytes after it are delivered too.
        let mut s = Stream::after_syn(1, roomy());
        s.cut(4, b"ef", 6, false);
        s.send(0, b"abcdefghijkl");
        assert_eq!(s.rec.events, vec![data(b"abcdefghijkl")]);
        assert_eq!(s.r.next_offset(), 12);
    }

    #[test]
    fn segments_far_out_of_window_are_dropped() {
        let mut s = Stream::after_syn(ISN_NEAR_WRAP, roomy());
        s.send(0, b"ok");
        let o = s.send(2 + MAX_WINDOW + 1, b"far");
        assert!(o.out_of_window);
        assert_eq!(s.r.held_bytes(), 0);
        let o = s.ack(2 + MAX_WINDOW + 5);
        assert!(o.out_of_window);
        assert_eq!(s.r.next_offset(), 2);
        assert_eq!(
            s.rec.anomalies,
            vec![Anomaly::OutOfWindow, Anomaly::OutOfWindow]
        );
    }

    #[test]
    fn the_range_cap_flushes_the_oldest_hole() {
        let mut s = Stream::after_syn(1, Budget::new(&limits(1000, 2, 1000)));
        s.send(0, b"a");
        s.send(2, b"c");
        s.send(4, b"e");
        assert_eq!(s.r.held_ranges(), 2);
        let o = s.send(6, b"g");
        assert_eq!(o.full, Some(Full::Ranges));
        assert_eq!(s.rec.anomalies, vec![Anomaly::ReassemblyOverflow]);
        assert_eq!(s.rec.events, vec![data(b"a"), Ev::Gap(1), data(b"c")]);
        assert_eq!(s.r.held_spans(), vec![(4, 5), (6, 7)]);
    }

    #[test]
    fn the_byte_cap_flushes_until_the_segment_fits() {
        let mut s = Stream::after_syn(1, Budget::new(&limits(8, 10, 1000)));
        s.send(2, b"cd");
        s.send(6, b"ghij");
        let o = s.send(20, b"uvwxy");
        assert_eq!(o.full, Some(Full::DirectionBytes));
        assert_eq!(
            s.rec.events,
            vec![Ev::Gap(2), data(b"cd"), Ev::Gap(2), data(b"ghij")]
        );
        assert_eq!(s.r.held_spans(), vec![(20, 25)]);
        // A segment bigger than the cap by itself: the hole before it becomes a gap.
        let big = [b'z'; 9];
        let o = s.send(30, &big);
        assert_eq!(o.full, Some(Full::DirectionBytes));
        assert_eq!(s.r.next_offset(), 39);
        assert_eq!(s.r.held_bytes(), 0);
    }

    /// Found by fuzzing (reassembly): the segment a cap refused fills the cut tail of the run
    /// before it; making room for it must not declare those bytes a gap.
    #[test]
    fn making_room_keeps_the_bytes_the_refused_segment_brings() {
        let mut s = Stream::after_syn(1, Budget::new(&limits(64, 2, 32)));
        s.cut(3, b"a", 9, false);
        let rest = [b'b'; 32];
        let o = s.cut(4, &rest, 33, true);
        assert_eq!(o.full, Some(Full::TotalBytes));
        let delivered = [&b"a"[..], &rest].concat();
        assert_eq!(
            s.rec.events,
            vec![Ev::Gap(3), data(&delivered), Ev::Gap(1), Ev::Eof]
        );
    }

    /// Found by fuzzing (reassembly): the same, when the cut run starts where the refused
    /// segment does (a segment whose capture kept none of its bytes).
    #[test]
    fn making_room_keeps_the_bytes_the_refused_segment_brings_at_its_start() {
        let mut s = Stream::after_syn(1, Budget::new(&limits(64, 2, 32)));
        s.cut(5, b"", 8, false);
        let whole = [6u8; 33];
        let o = s.cut(5, &whole, 39, false);
        assert_eq!(o.full, Some(Full::TotalBytes));
        assert_eq!(s.rec.events, vec![Ev::Gap(5), data(&whole), Ev::Gap(6)]);
    }

    #[test]
    fn an_exhausted_total_budget_still_lets_in_order_data_through() {
        let shared = limits(1000, 10, 4);
        let mut a = Stream::after_syn(1, Budget::new(&shared));
        a.send(10, b"held");
        let mut b = Stream::after_syn(99, a.budget.clone());
        assert_eq!(b.budget.used(), 4);
        let o = b.send(0, b"in order");
        assert_eq!(o.advanced, 8);
        assert_eq!(o.full, None);
        let o = b.send(20, b"x");
        assert_eq!(o.full, Some(Full::TotalBytes));
        assert_eq!(b.r.next_offset(), 21);
    }

    #[test]
    fn done_bypasses_and_keeps_counting_by_sequence_space() {
        let mut s = Stream::after_syn(ISN_NEAR_WRAP, roomy());
        s.rec.done_after = Some(3);
        s.send(10, b"held");
        let o = s.send(0, b"abc");
        assert!(o.done);
        assert!(s.r.is_bypassed());
        assert_eq!(s.budget.used(), 0);
        // What was held counts (the hole before it too), as the end of the stream would have.
        assert_eq!(o.advanced, 14);
        assert_eq!(s.send(3, b"defghijklmno").advanced, 1);
        assert_eq!(s.send(3, b"defg").advanced, 0);
        assert_eq!(s.send(20, b"xy").advanced, 7);
        s.fin(22);
        s.finish();
        assert_eq!(s.rec.events, vec![data(b"abc"), Ev::Eof]);
    }

    #[test]
    fn picked_up_mid_stream_data_before_the_first_seq_is_trimmed() {
        let mut r = Reassembler::new();
        let mut budget = roomy();
        let mut rec = Rec::default();
        let seg = |seq, payload: &'static [u8]| Incoming {
            seq: SeqNumber(seq),
            payload,
            wire_len: payload.len() as u32,
            fin: false,
        };
        r.segment(seg(3, b"defg"), &mut budget, &mut rec);
        r.segment(seg(0, b"abcdefgh"), &mut budget, &mut rec);
        assert_eq!(r.base(), Some(SeqNumber(3)));
        assert_eq!(rec.events, vec![data(b"defgh")]);
    }

    // ---- properties ----

    fn isn() -> impl Strategy<Value = u32> {
        prop_oneof![any::<u32>(), (u32::MAX - 5_000)..=u32::MAX]
    }

    /// Split `0..n` at random cut points.
    fn pieces(n: usize, cuts: &[usize]) -> Vec<(usize, usize)> {
        let mut b: Vec<usize> = cuts.iter().map(|c| c % (n + 1)).collect();
        b.extend([0, n]);
        b.sort_unstable();
        b.dedup();
        b.windows(2).map(|w| (w[0], w[1])).collect()
    }

    fn feed(s: &mut Stream, src: &[u8], (a, b): (usize, usize)) {
        s.send(a as u64, &src[a..b]);
    }

    /// Stream bytes, and segments covering all of them, overlapping, duplicated, shuffled.
    fn arb_segments() -> impl Strategy<Value = (u32, Vec<u8>, Vec<(usize, usize)>)> {
        (isn(), prop::collection::vec(any::<u8>(), 1..3000))
            .prop_flat_map(|(isn, src)| {
                let n = src.len();
                let cuts = prop::collection::vec(0..=n, 0..40);
                let extra = prop::collection::vec((0..n, 1..300usize), 0..12);
                (Just(isn), Just(src), cuts, extra)
            })
            .prop_flat_map(|(isn, src, cuts, extra)| {
                let n = src.len();
                let mut segs = pieces(n, &cuts);
                segs.extend(extra.iter().map(|&(s, l)| (s, (s + l).min(n))));
                (Just(isn), Just(src), Just(segs).prop_shuffle())
            })
    }

    proptest! {
        #[test]
        fn any_arrival_order_reassembles_the_stream((isn, src, segs) in arb_segments()) {
            let mut s = Stream::after_syn(isn, roomy());
            for &seg in &segs {
                feed(&mut s, &src, seg);
            }
            s.fin(src.len() as u64);
            prop_assert_eq!(&s.rec.events, &vec![Ev::Data(src.clone()), Ev::Eof]);
            prop_assert!(s.rec.anomalies.is_empty());
            prop_assert_eq!(s.budget.used(), 0);
        }

        #[test]
        fn one_lost_segment_is_one_gap_at_its_place(
            (isn, src, segs, lost, by_ack) in (isn(), prop::collection::vec(any::<u8>(), 2..3000))
                .prop_flat_map(|(isn, src)| {
                    let n = src.len();
                    (Just(isn), Just(src), prop::collection::vec(0..=n, 1..30))
                })
                .prop_flat_map(|(isn, src, cuts)| {
                    let segs = pieces(src.len(), &cuts);
                    let k = segs.len();
                    (Just(isn), Just(src), Just(segs).prop_shuffle(), 0..k, any::<bool>())
                })
        ) {
            let mut s = Stream::after_syn(isn, roomy());
            let mut sorted = segs.clone();
            sorted.sort_unstable();
            let (a, b) = sorted[lost];
            for &seg in segs.iter().filter(|&&seg| seg != (a, b)) {
                feed(&mut s, &src, seg);
            }
            let n = src.len() as u64;
            if by_ack {
                s.ack(n);
                s.fin(n);
            } else {
                s.fin(n);
                s.finish();
            }
            let mut want = Vec::new();
            if a > 0 {
                want.push(Ev::Data(src[..a].to_vec()));
            }
            want.push(Ev::Gap((b - a) as u64));
            if b < src.len() {
                want.push(Ev::Data(src[b..].to_vec()));
            }
            want.push(Ev::Eof);
            prop_assert_eq!(&s.rec.events, &want);
        }

        #[test]
        fn adversarial_segments_never_exceed_the_caps(
            ops in prop::collection::vec(
                (any::<bool>(), prop_oneof![0u64..4096, 0u64..(1 << 20), any::<u32>().prop_map(u64::from)], 0usize..700, any::<bool>()),
                1..300,
            ),
            isn in isn(),
        ) {
            const PER_DIR: usize = 2048;
            const RANGES: usize = 4;
            const TOTAL: usize = 3000;
            // Test offsets are taken modulo 2^32 (as sequence numbers are): the byte at an
            // offset depends on that, so a segment far ahead that wraps stays consistent.
            let byte = |p: u64| ((p & 0xFFFF_FFFF) * 31 % 251) as u8;
            let mut budget = Budget::new(&limits(PER_DIR, RANGES, TOTAL));
            let mut dirs = [Stream::after_syn(isn, roomy()), Stream::after_syn(isn ^ 0x5555, roomy())];
            for (which, off, len, is_ack) in ops {
                let s = &mut dirs[usize::from(which)];
                std::mem::swap(&mut s.budget, &mut budget);
                if is_ack && len % 7 == 0 {
                    s.ack(off);
                } else {
                    let bytes: Vec<u8> = (off..off + len as u64).map(byte).collect();
                    s.send(off, &bytes);
                }
                std::mem::swap(&mut s.budget, &mut budget);
                for d in &dirs {
                    prop_assert!(d.r.held_bytes() <= PER_DIR);
                    prop_assert!(d.r.held_ranges() <= RANGES);
                }
                prop_assert!(budget.used() <= TOTAL);
                prop_assert_eq!(budget.used(), dirs[0].r.held_bytes() + dirs[1].r.held_bytes());
            }
            for s in &mut dirs {
                std::mem::swap(&mut s.budget, &mut budget);
                s.finish();
                std::mem::swap(&mut s.budget, &mut budget);
                // Every delivered byte is the source byte at its place; gaps fill the rest.
                let mut at = 0u64;
                for ev in &s.rec.events {
                    match ev {
                        Ev::Data(d) => {
                            for (i, b) in d.iter().enumerate() {
                                prop_assert_eq!(*b, byte(at + i as u64));
                            }
                            at += d.len() as u64;
                        }
                        Ev::Gap(n) => at += n,
                        Ev::Eof => {}
                    }
                }
                prop_assert_eq!(at, s.r.next_offset());
                prop_assert!(!s.rec.anomalies.contains(&Anomaly::ConflictingOverlap));
            }
            prop_assert_eq!(budget.used(), 0);
        }

        /// The hole bookkeeping against an obviously correct model: a bitmap of seen bytes.
        #[test]
        fn hole_bookkeeping_matches_a_bitmap(
            isn in isn(),
            ops in prop::collection::vec((0u64..256, 0usize..40, prop::option::of(any::<u8>())), 1..80),
        ) {
            const SPAN: usize = 256 + 40;
            let byte = |p: u64| (p.wrapping_mul(17) % 253) as u8;
            let mut s = Stream::after_syn(isn, roomy());
            let mut have = [false; SPAN];
            let mut val = [0u8; SPAN];
            let mut next = 0usize;
            for (off, len, forged) in ops {
                let bytes: Vec<u8> = (off..off + len as u64).map(|p| forged.unwrap_or(byte(p))).collect();
                let mut conflict = false;
                for (i, &b) in bytes.iter().enumerate() {
                    let p = off as usize + i;
                    if p < next {
                        continue;
                    }
                    if have[p] {
                        conflict |= val[p] != b;
                    } else {
                        have[p] = true;
                        val[p] = b;
                    }
                }
                while next < SPAN && have[next] {
                    next += 1;
                }
                let o = s.send(off, &bytes);
                prop_assert_eq!(o.conflict, conflict);
                prop_assert_eq!(s.r.next_offset(), next as u64);
                // Held spans are exactly the maximal runs of seen bytes after `next`.
                let mut spans = Vec::new();
                let mut p = next;
                while p < SPAN {
                    if have[p] {
                        let start = p;
                        while p < SPAN && have[p] {
                            p += 1;
                        }
                        spans.push((start as u64, p as u64));
                    } else {
                        p += 1;
                    }
                }
                prop_assert_eq!(s.r.held_spans(), spans);
                let held: usize = have[next..].iter().filter(|&&h| h).count();
                prop_assert_eq!(s.r.held_bytes(), held);
                prop_assert_eq!(s.budget.used(), held);
            }
            let delivered: Vec<u8> = s.rec.events.iter().flat_map(|e| match e {
                Ev::Data(d) => d.clone(),
                _ => Vec::new(),
            }).collect();
            prop_assert_eq!(&delivered[..], &val[..next]);
        }
    }
}
