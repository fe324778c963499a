//! Drives `mailtap::flow::reassembly::Reassembler`: the two directions of a flow sharing one
//! `Budget`, fed segments (a SYN confirming where a stream starts, or the end of the wait for
//! one), acknowledgments, ends, bypasses and new bases decoded from the input
//! (`mailtap_fuzz::segments`). The caps are the default `Limits`, or (header byte ≠ 0) shrunk
//! from them so that every cap is reached by small inputs.
//!
//! Checks what the module documents: each stream byte is delivered once and in order, and it
//! is the first copy fed (a model keeps every first copy); a gap covers only bytes never fed;
//! nothing follows `Eof`, nor `Data`/`Gap` after the sink said `Done`; each `Outcome` tallies
//! what its call delivered and the advances add up to the stream position; the caps and the
//! shared budget hold; an in-order segment always gets through; out-of-window is exactly
//! "more than `MAX_WINDOW` from the stream position".
//!
//! A direction synced at a segment rather than at a SYN starts tentatively (`flow::order`):
//! until a SYN confirms the base or the wait for one ends, and while nothing has been
//! delivered, an earlier segment (or the SYN) moves offset 0 back to it, and every byte fed
//! so far keeps its sequence number. The model moves its first copies with it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailtap::config::Limits;
use mailtap::flow::reassembly::{Budget, Incoming, Outcome, Reassembler, Sink, MAX_WINDOW};
use mailtap::flow::seq::{SeqNumber, SeqSpace};
use mailtap::flow::{Direction, Interest, StreamEvent};
use mailtap::session::anomaly::Anomaly;
use mailtap_fuzz::first_copies::FirstCopies;
use mailtap_fuzz::segments::{self, Op};

fuzz_target!(|input: &[u8]| {
    let Some((header, ops)) = segments::parse(input) else {
        return;
    };
    let limits = limits(header.caps);
    let mut flow = Flow {
        budget: Budget::new(&limits),
        limits,
        dirs: [
            Stream::new(header.base[0], header.done_after),
            Stream::new(header.base[1], header.done_after),
        ],
    };
    for op in ops {
        flow.apply(op);
    }
    for dir in [Direction::ToServer, Direction::ToClient] {
        flow.apply(Op::Finish(dir));
    }
    assert_eq!(flow.budget.used(), 0, "ended streams hold nothing");
});

/// Default limits, or small ones: runs 1–8, 64 B–8 KiB per direction, total ½–2× of that.
fn limits(caps: u8) -> Limits {
    let defaults = Limits::default();
    if caps == 0 {
        return defaults;
    }
    let per_direction = 64usize << ((caps >> 3) & 7);
    Limits {
        max_segments_per_direction: 1 + usize::from(caps & 7),
        max_buffer_per_direction: per_direction,
        max_buffer_total: per_direction * (1 + usize::from(caps >> 6)) / 2,
        ..defaults
    }
}

struct Flow {
    limits: Limits,
    budget: Budget,
    dirs: [Stream; 2],
}

struct Stream {
    r: Reassembler,
    /// The harness's base sequence number: operations give offsets from it.
    base: u32,
    model: Model,
}

/// What the harness knows about one direction's stream.
struct Model {
    /// The first copy of every byte fed at or after the delivery point, by stream offset.
    first: FirstCopies,
    /// Data and gap bytes delivered: the offset of the next event.
    delivered: u64,
    /// The sum of every `Outcome::advanced`.
    advanced: u64,
    /// Events delivered, and the one at which the sink answers `Done` (0: never).
    events: u64,
    done_after: u64,
    done: bool,
    eof: bool,
    fin_fed: bool,
    /// Synced at a segment, and neither a SYN nor the end of the wait fixed the base yet.
    tentative: bool,
    /// The FIN's offset, once a live segment set it; the highest wire end of a live segment
    /// (capped at the FIN). A bypass counts the stream up to what is known of it, no further.
    fin_at: Option<u64>,
    reach: u64,
}

impl Stream {
    fn new(base: u32, done_after: u8) -> Self {
        Stream {
            r: Reassembler::new(),
            base,
            model: Model::new(u64::from(done_after)),
        }
    }
}

impl Model {
    /// The base may still move back by `by` (tentative, nothing delivered yet): the offsets
    /// of everything fed move up with it. Whether it moved.
    fn move_back(&mut self, by: u64) -> bool {
        if !self.tentative || self.advanced != 0 || by == 0 || by > MAX_WINDOW {
            return false;
        }
        self.first.shift(by);
        self.fin_at = self.fin_at.map(|f| f.saturating_add(by));
        self.reach = self.reach.saturating_add(by);
        true
    }

    /// Where a bypass leaves the stream: at most at the FIN, or the end of what was fed.
    fn bypass_bound(&self, pos: u64) -> u64 {
        pos.max(self.fin_at.unwrap_or(self.reach))
    }

    fn new(done_after: u64) -> Self {
        Model {
            first: FirstCopies::default(),
            delivered: 0,
            advanced: 0,
            events: 0,
            done_after,
            done: false,
            eof: false,
            fin_fed: false,
            tentative: false,
            fin_at: None,
            reach: 0,
        }
    }
}

impl Flow {
    fn apply(&mut self, op: Op<'_>) {
        match op {
            Op::Segment {
                dir,
                offset,
                fin,
                syn,
                settle,
                cut,
                payload,
            } => {
                let seq = SeqNumber(self.dirs[dir.index()].base).wrapping_add(offset);
                if syn {
                    self.confirm_base(dir, seq);
                }
                if settle {
                    let s = &mut self.dirs[dir.index()];
                    s.r.settle_base();
                    s.model.tentative = false;
                }
                self.segment(dir, seq, fin, cut, payload);
            }
            Op::Ack { dir, offset } => self.ack(dir, offset),
            Op::Finish(dir) => {
                let s = &mut self.dirs[dir.index()];
                let mut call = Call::new(&mut s.model);
                let was_bypassed = s.r.is_bypassed();
                let out = s.r.finish(&mut self.budget, &mut call);
                let tally = call.tally;
                self.settle(dir, out, tally, was_bypassed);
                let s = &self.dirs[dir.index()];
                assert!(s.r.is_ended() && s.model.eof, "finish ends with Eof");
                assert_eq!(s.r.held_bytes(), 0, "an ended stream holds nothing");
            }
            Op::Bypass(dir) => {
                let s = &mut self.dirs[dir.index()];
                // What was held counts (holes included), as the end of the stream would have.
                let was_bypassed = s.r.is_bypassed();
                let from = s.r.next_offset();
                let counted = s.r.bypass(&mut self.budget);
                s.model.advanced += counted;
                let to = s.r.next_offset();
                assert_eq!(to, from + counted, "bypass counts what it moved");
                if !was_bypassed {
                    // (Once bypassed, the model stops following the stream's FIN and reach.)
                    let fin = s.model.fin_at.unwrap_or(0);
                    assert!(
                        from.max(fin) <= to && to <= s.model.bypass_bound(from),
                        "bypass counts up to the FIN or what was fed"
                    );
                }
                assert_eq!(s.r.held_bytes(), 0, "bypass drops what is held");
                assert_eq!(
                    s.model.advanced,
                    s.r.next_offset(),
                    "bypass advances to the position"
                );
                self.check_caps();
            }
            Op::Reset { dir, base } => {
                // The flow table starts a direction over only before any byte moved.
                let s = &mut self.dirs[dir.index()];
                if s.r.is_pristine() {
                    s.r.reset(SeqNumber(base), &mut self.budget);
                    s.base = base;
                    s.model = Model::new(s.model.done_after);
                }
            }
        }
    }

    /// A SYN says the stream starts at `base`: a tentative base moves back to it (while
    /// nothing was delivered); either way the base is final.
    fn confirm_base(&mut self, dir: Direction, base: SeqNumber) {
        let s = &mut self.dirs[dir.index()];
        let back =
            s.r.base()
                .and_then(|b| b.checked_sub(base))
                .map_or(0, u64::from);
        let moved = s.model.move_back(back);
        let want = if s.r.is_synced() && !moved {
            s.r.base()
        } else {
            Some(base)
        };
        s.r.confirm_base(base);
        s.model.tentative = false;
        assert_eq!(s.r.base(), want, "a SYN fixes the base");
        assert!(!s.r.is_tentative(), "a SYN fixes the base");
        assert_eq!(s.model.advanced, s.r.next_offset(), "a SYN moves nothing");
    }

    fn segment(&mut self, dir: Direction, seq: SeqNumber, fin: bool, cut: u8, payload: &[u8]) {
        let s = &mut self.dirs[dir.index()];
        let was_ended = s.r.is_ended();
        let was_bypassed = s.r.is_bypassed();
        let syncs = !was_ended && !s.r.is_synced();
        // Where the reassembler will place the segment: relative to the stream position, or
        // at offset 0 when this segment syncs the direction or moves a tentative start back.
        let (mut space, mut last) = position(&s.r, seq);
        let before = space.delta(seq);
        if !was_ended && before < 0 && s.model.move_back(before.unsigned_abs()) {
            (space, last) = (SeqSpace::new(seq), 0);
        }
        let delta = space.delta(seq);
        let out_of_window = delta.unsigned_abs() > MAX_WINDOW;
        let start = i128::from(last) + i128::from(delta);
        let in_order = start == i128::from(last);
        let live = !was_ended && !was_bypassed && !out_of_window;
        if live {
            // Bytes before the stream position were delivered already: no copy of them counts.
            let skip = usize::try_from(i128::from(last) - start).unwrap_or(0);
            let from = u64::try_from(start).unwrap_or(0).max(last);
            s.model
                .first
                .add(from, payload.get(skip..).unwrap_or_default());
            // Where the segment ends on the wire; a FIN there ends the stream, unless one came
            // first or the stream is already past it.
            let wire = u64::try_from(payload.len()).unwrap_or(u64::MAX) + u64::from(cut);
            let end = u64::try_from((start + i128::from(wire)).max(0)).unwrap_or(u64::MAX);
            if fin && s.model.fin_at.is_none() && end >= last {
                s.model.fin_at = Some(end);
            }
            let end = s.model.fin_at.map_or(end, |f| end.min(f));
            s.model.reach = s.model.reach.max(end);
        }
        let must_advance = live && in_order && !payload.is_empty() && !s.model.fin_fed;
        let patient = s.model.done_after == 0;
        if live && fin {
            s.model.fin_fed = true;
        }
        let seg = Incoming {
            seq,
            payload,
            wire_len: u32::try_from(payload.len()).unwrap_or(u32::MAX) + u32::from(cut),
            fin,
        };
        let mut call = Call::new(&mut s.model);
        let out = s.r.segment(seg, &mut self.budget, &mut call);
        let tally = call.tally;
        if syncs {
            s.model.tentative = true;
        }
        assert_eq!(
            s.r.is_tentative(),
            s.model.tentative,
            "a start taken from data is tentative until a SYN or the wait's end"
        );
        if !was_ended {
            assert_eq!(s.r.base(), Some(space.base()), "where offset 0 is");
            assert_eq!(out.out_of_window, out_of_window, "window check at {delta}");
        }
        if must_advance && patient {
            assert!(
                out.advanced > 0,
                "the next in-order segment always gets through"
            );
        }
        self.settle(dir, out, tally, was_bypassed);
    }

    fn ack(&mut self, dir: Direction, offset: u32) {
        let s = &mut self.dirs[dir.index()];
        let ack = SeqNumber(s.base).wrapping_add(offset);
        let was_bypassed = s.r.is_bypassed();
        let counts = s.r.is_synced() && !s.r.is_ended();
        let (space, _) = position(&s.r, ack);
        let delta = space.delta(ack);
        let out_of_window = counts && delta > 0 && delta.unsigned_abs() > MAX_WINDOW;
        let mut call = Call::new(&mut s.model);
        let out = s.r.ack(ack, &mut self.budget, &mut call);
        let tally = call.tally;
        assert_eq!(
            out.out_of_window, out_of_window,
            "ack window check at {delta}"
        );
        self.settle(dir, out, tally, was_bypassed);
    }

    /// After a call on `dir`: its outcome against what its sink saw, then the invariants.
    fn settle(&mut self, dir: Direction, out: Outcome, tally: Tally, was_bypassed: bool) {
        let s = &mut self.dirs[dir.index()];
        if was_bypassed {
            assert_eq!(
                tally.data + tally.gap_bytes,
                0,
                "a bypassed stream delivers nothing"
            );
        } else if out.done {
            // The sink stopped the stream: what was delivered, then the bypass's count (what
            // was held, holes included, as the end of the stream would have).
            let pos = s.model.delivered;
            let fin = s.model.fin_at.unwrap_or(0);
            let to = s.r.next_offset();
            assert!(
                out.advanced >= tally.data + tally.gap_bytes,
                "advanced ≥ delivered"
            );
            assert!(
                pos.max(fin) <= to && to <= s.model.bypass_bound(pos),
                "Done counts up to the FIN or what was fed"
            );
        } else {
            assert_eq!(
                out.advanced,
                tally.data + tally.gap_bytes,
                "advanced = delivered"
            );
        }
        assert_eq!(out.gaps, tally.gaps);
        assert_eq!(out.gap_bytes, tally.gap_bytes);
        assert_eq!(out.ended, tally.eof, "ended exactly when Eof was delivered");
        assert!(!out.done || s.r.is_bypassed(), "Done bypasses");
        s.model.advanced += out.advanced;
        assert_eq!(
            s.model.advanced,
            s.r.next_offset(),
            "advances add up to the position"
        );
        self.check_caps();
    }

    fn check_caps(&self) {
        let held: usize = self.dirs.iter().map(|s| s.r.held_bytes()).sum();
        assert_eq!(self.budget.used(), held, "the budget counts what is held");
        assert!(held <= self.limits.max_buffer_total);
        for s in &self.dirs {
            assert!(s.r.held_bytes() <= self.limits.max_buffer_per_direction);
            assert!(s.r.held_ranges() <= self.limits.max_segments_per_direction);
        }
    }
}

/// The sequence space a call will use for `seq`, and the stream position in it.
fn position(r: &Reassembler, seq: SeqNumber) -> (SeqSpace, u64) {
    let (base, last) = match r.base() {
        Some(base) => (base, r.next_offset()),
        None => (seq, 0),
    };
    let mut space = SeqSpace::new(base);
    space.set_last(last);
    (space, last)
}

/// What one call delivered.
#[derive(Clone, Copy, Default)]
struct Tally {
    data: u64,
    gaps: u64,
    gap_bytes: u64,
    eof: bool,
}

/// The sink of one call: checks each event against the model as it arrives.
struct Call<'m> {
    model: &'m mut Model,
    tally: Tally,
}

impl<'m> Call<'m> {
    fn new(model: &'m mut Model) -> Self {
        Call {
            model,
            tally: Tally::default(),
        }
    }
}

impl Sink for Call<'_> {
    fn deliver(&mut self, event: StreamEvent<'_>) -> Interest {
        let m = &mut *self.model;
        assert!(!m.eof, "nothing follows Eof");
        match event {
            StreamEvent::Data(bytes) => {
                assert!(!m.done, "no data after Done");
                for (i, &b) in bytes.iter().enumerate() {
                    let at = m.delivered + i as u64;
                    assert_eq!(m.first.get(at), Some(b), "byte {at} is its first copy");
                }
                let n = bytes.len() as u64;
                m.delivered += n;
                self.tally.data += n;
            }
            StreamEvent::Gap(len) => {
                assert!(!m.done, "no gap after Done");
                let end = m.delivered.saturating_add(len);
                let fed = m.first.any_in(m.delivered..end);
                assert!(!fed, "a gap covers only bytes never fed");
                m.delivered = end;
                self.tally.gaps += 1;
                self.tally.gap_bytes += len;
            }
            StreamEvent::Eof => {
                m.eof = true;
                self.tally.eof = true;
                return Interest::More;
            }
        }
        m.events += 1;
        if m.events == m.done_after {
            m.done = true;
            return Interest::Done;
        }
        Interest::More
    }

    fn anomaly(&mut self, _anomaly: Anomaly) {}
}
