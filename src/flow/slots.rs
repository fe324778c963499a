//! Flow slots in fixed-size chunks.
//!
//! A `Vec` of slots doubles as the table grows, so at 100k connections up to half of it is
//! spare capacity (a slot is ~350 bytes) and each doubling copies every flow. Chunks of
//! [`CHUNK`] slots grow by one chunk at a time and never move a flow; a lookup costs one
//! more indirection, into a chunk list small enough to stay in cache.

/// Slots per chunk.
const CHUNK: usize = 1024;

#[derive(Debug)]
pub(super) struct Slots<T> {
    chunks: Vec<Vec<Option<T>>>,
    len: usize,
}

impl<T> Default for Slots<T> {
    fn default() -> Self {
        Slots {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Slots<T> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn get(&self, i: usize) -> Option<&Option<T>> {
        self.chunks.get(i / CHUNK)?.get(i % CHUNK)
    }

    pub fn get_mut(&mut self, i: usize) -> Option<&mut Option<T>> {
        self.chunks.get_mut(i / CHUNK)?.get_mut(i % CHUNK)
    }

    /// Appends a slot holding `value`; its index is the old `len()`.
    pub fn push(&mut self, value: T) {
        if self.len % CHUNK == 0 {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        if let Some(chunk) = self.chunks.last_mut() {
            chunk.push(Some(value));
            self.len += 1;
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Option<T>> {
        self.chunks.iter().flatten()
    }

    #[cfg(test)]
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Option<T>> {
        self.chunks.iter_mut().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_span_chunks_and_never_move() {
        let mut s = Slots::default();
        for i in 0..(CHUNK * 2 + 5) {
            s.push(i);
        }
        assert_eq!(s.len(), CHUNK * 2 + 5);
        assert_eq!(s.get(0), Some(&Some(0)));
        assert_eq!(s.get(CHUNK), Some(&Some(CHUNK)));
        assert_eq!(s.get(CHUNK * 2 + 4), Some(&Some(CHUNK * 2 + 4)));
        assert_eq!(s.get(CHUNK * 2 + 5), None);
        let first: *const Option<usize> = s.get(3).unwrap_or(&None);
        for i in 0..CHUNK * 3 {
            s.push(i);
        }
        assert!(
            std::ptr::eq(first, s.get(3).unwrap_or(&None)),
            "a slot moved"
        );
        if let Some(slot) = s.get_mut(CHUNK + 1) {
            *slot = None;
        }
        assert_eq!(s.iter().filter(|x| x.is_none()).count(), 1);
        assert_eq!(s.iter().count(), CHUNK * 5 + 5);
        assert_eq!(s.chunks.iter().map(Vec::capacity).max(), Some(CHUNK));
    }
}
