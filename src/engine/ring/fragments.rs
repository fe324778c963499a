//! One defragmenter for all the ring's workers, fed in capture order.
//!
//! The fragments of a datagram may fall into chunks that different workers decode at the same
//! time. Reassembly must not depend on which worker is faster: the first copy of overlapping
//! bytes, a timeout, and which frame completes a datagram (its segment's time and place) all
//! follow capture order. So a worker hands the fragments of chunk `k` over only once every
//! chunk before `k` is done with the defragmenter. A chunk without fragments never waits: it
//! only says it is done, early if need be. A capture without fragments costs one uncontended
//! lock per chunk.
//!
//! No wait can close a cycle: chunk `k` waits only for chunks before it, which were all read
//! before it and are being decoded by workers that wait for nothing but earlier chunks. A
//! [`Ticket`] says its chunk is done when it is dropped, a panicking worker's too, so the
//! others do not wait for ever.

use crate::decode::defrag::{Datagram, Defrag, DefragCounts, DefragLimits, Fragment};
use crate::decode::Reassemble;
use crate::source::Timestamp;
use std::collections::BTreeSet;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

struct State {
    defrag: Defrag,
    counts: DefragCounts,
    /// The chunk whose fragments go in now.
    next: usize,
    /// Later chunks already done (they had no fragments).
    done_early: BTreeSet<usize>,
}

pub(super) struct Fragments {
    state: Mutex<State>,
    turn: Condvar,
}

impl Fragments {
    pub(super) fn new(limits: DefragLimits) -> Self {
        Fragments {
            state: Mutex::new(State {
                defrag: Defrag::new(limits),
                counts: DefragCounts::default(),
                next: 0,
                done_early: BTreeSet::new(),
            }),
            turn: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The reassembler for chunk `number`'s fragments.
    pub(super) fn ticket(&self, number: usize) -> Ticket<'_> {
        Ticket {
            fragments: self,
            number,
            in_turn: false,
        }
    }

    pub(super) fn counts(&self) -> DefragCounts {
        self.lock().counts
    }

    /// The input has ended (every chunk is done): what is still incomplete is counted.
    pub(super) fn finish(&self) -> DefragCounts {
        let mut s = self.lock();
        let State { defrag, counts, .. } = &mut *s;
        defrag.finish(counts);
        *counts
    }
}

/// Chunk `number`'s turn at the defragmenter, taken at its first fragment.
pub(super) struct Ticket<'f> {
    fragments: &'f Fragments,
    number: usize,
    /// Every chunk before this one is done.
    in_turn: bool,
}

impl Reassemble for Ticket<'_> {
    fn fragment(&mut self, ts: Timestamp, f: &Fragment<'_>) -> Option<Datagram> {
        let mut s = self.fragments.lock();
        while s.next != self.number {
            s = self
                .fragments
                .turn
                .wait(s)
                .unwrap_or_else(PoisonError::into_inner);
        }
        self.in_turn = true;
        let State { defrag, counts, .. } = &mut *s;
        defrag.add(ts, f, counts)
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        let mut s = self.fragments.lock();
        if s.next != self.number {
            // Earlier chunks are still being decoded, and this one had no fragments.
            debug_assert!(!self.in_turn);
            s.done_early.insert(self.number);
            return;
        }
        s.next += 1;
        loop {
            let next = s.next;
            if !s.done_early.remove(&next) {
                break;
            }
            s.next += 1;
        }
        drop(s);
        self.fragments.turn.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::defrag::{DefragEvent, FragmentKey};
    use std::sync::Arc;

    fn frag(offset: u32, more: bool, bytes: &[u8]) -> Fragment<'_> {
        Fragment {
            key: FragmentKey {
                src: "192.0.2.1".parse().unwrap(),
                dst: "192.0.2.2".parse().unwrap(),
                id: 9,
                protocol: 6,
            },
            offset,
            more,
            bytes,
            wire_len: bytes.len() as u32,
        }
    }

    #[test]
    fn chunks_without_fragments_never_wait_and_later_ones_go_in_order() {
        let f = Fragments::new(DefragLimits::default());
        // Chunks 1 and 2 finish first, without fragments.
        drop(f.ticket(2));
        drop(f.ticket(1));
        let mut t0 = f.ticket(0);
        assert!(t0
            .fragment(Timestamp::ZERO, &frag(0, true, &[1; 8]))
            .is_none());
        drop(t0);
        // Chunk 3 is next: its fragment goes in at once and completes the datagram.
        let mut t3 = f.ticket(3);
        let d = t3.fragment(Timestamp::ZERO, &frag(8, false, b"end"));
        assert_eq!(d.map(|d| d.bytes.len()), Some(11));
        drop(t3);
        assert_eq!(f.counts()[DefragEvent::Reassembled.index()], 1);
    }

    #[test]
    fn a_later_chunk_waits_for_the_earlier_ones_whatever_the_threads_do() {
        for _ in 0..20 {
            let f = Arc::new(Fragments::new(DefragLimits::default()));
            // Chunk 1 (started first, on another thread) holds the overlapping second copy;
            // chunk 0 the first. The first copy must win however the threads run.
            let later = {
                let f = Arc::clone(&f);
                std::thread::spawn(move || {
                    let mut t = f.ticket(1);
                    t.fragment(Timestamp::ZERO, &frag(0, false, &[2; 16]))
                })
            };
            std::thread::yield_now();
            let mut t0 = f.ticket(0);
            assert!(t0
                .fragment(Timestamp::ZERO, &frag(0, true, &[1; 8]))
                .is_none());
            drop(t0);
            let d = later.join().unwrap().expect("complete");
            assert_eq!(d.bytes, [[1u8; 8], [2; 8]].concat());
            assert!(d.overlapped);
        }
    }

    #[test]
    fn a_ticket_dropped_by_a_panic_lets_the_others_go_on() {
        let f = Arc::new(Fragments::new(DefragLimits::default()));
        let g = Arc::clone(&f);
        let crashed = std::thread::spawn(move || {
            let _t = g.ticket(0);
            panic!("worker panics mid-chunk");
        });
        assert!(crashed.join().is_err());
        let mut t1 = f.ticket(1);
        assert!(t1
            .fragment(Timestamp::ZERO, &frag(0, true, &[0; 8]))
            .is_none());
    }
}
