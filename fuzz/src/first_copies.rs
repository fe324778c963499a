//! The model of a reassembled stream's content: the first copy of every byte fed, by stream
//! offset. Paged, so that checking a 64 KiB stream costs a few page lookups, not a tree walk
//! per byte (it is consulted for every byte fed and delivered).

use std::collections::HashMap;
use std::ops::Range;

const PAGE: u64 = 4096;

#[derive(Default)]
pub struct FirstCopies {
    /// Page number → one slot per offset: 0 for never fed, else 1 + the byte.
    pages: HashMap<u64, Box<[u16]>>,
}

impl FirstCopies {
    /// Record `bytes` at `start` wherever no copy was recorded yet.
    pub fn add(&mut self, start: u64, bytes: &[u8]) {
        for (at, &b) in (start..).zip(bytes) {
            let page = self.page_mut(at / PAGE);
            let slot = &mut page[(at % PAGE) as usize];
            if *slot == 0 {
                *slot = 1 + u16::from(b);
            }
        }
    }

    /// The first copy fed at `at`.
    pub fn get(&self, at: u64) -> Option<u8> {
        let slot = *self.pages.get(&(at / PAGE))?.get((at % PAGE) as usize)?;
        u8::try_from(slot.checked_sub(1)?).ok()
    }

    /// Whether any byte of `range` was fed.
    pub fn any_in(&self, range: Range<u64>) -> bool {
        self.pages.iter().any(|(&n, page)| {
            let first = n * PAGE;
            let lo = range.start.max(first);
            let hi = range.end.min(first.saturating_add(PAGE));
            (lo..hi).any(|at| page[(at - first) as usize] != 0)
        })
    }

    /// Every recorded copy moves `by` offsets up (the stream turned out to start earlier).
    pub fn shift(&mut self, by: u64) {
        if by == 0 {
            return;
        }
        let pages = std::mem::take(&mut self.pages);
        for (n, page) in pages {
            for (at, &slot) in (n * PAGE..).zip(page.iter()) {
                if let Some(b) = slot.checked_sub(1).and_then(|b| u8::try_from(b).ok()) {
                    self.add(at.saturating_add(by), &[b]);
                }
            }
        }
    }

    fn page_mut(&mut self, n: u64) -> &mut [u16] {
        self.pages
            .entry(n)
            .or_insert_with(|| vec![0; PAGE as usize].into_boxed_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_copy_wins_across_pages() {
        let mut m = FirstCopies::default();
        m.add(PAGE - 2, b"abcd");
        m.add(PAGE - 1, b"XYZW");
        let got: Vec<_> = (PAGE - 3..PAGE + 4).map(|o| m.get(o)).collect();
        let want = [
            None,
            Some(b'a'),
            Some(b'b'),
            Some(b'c'),
            Some(b'd'),
            Some(b'W'),
            None,
        ];
        assert_eq!(got, want);
        assert!(m.any_in(PAGE + 1..PAGE + 9));
        assert!(!m.any_in(PAGE + 3..u64::MAX));
        assert!(!m.any_in(0..PAGE - 2));
    }

    #[test]
    fn a_shift_moves_every_copy() {
        let mut m = FirstCopies::default();
        m.add(1, b"ab");
        m.add(PAGE - 1, b"cd");
        m.shift(PAGE);
        let at = |o: u64| m.get(o);
        assert_eq!(
            (at(1), at(PAGE + 1), at(PAGE + 2)),
            (None, Some(b'a'), Some(b'b'))
        );
        assert_eq!((at(2 * PAGE - 1), at(2 * PAGE)), (Some(b'c'), Some(b'd')));
        assert!(!m.any_in(0..PAGE + 1));
    }
}
