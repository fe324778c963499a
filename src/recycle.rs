//! Reusing a vector's allocation for borrows with another lifetime.
//!
//! A batch of packets borrows the read buffer, so the vector holding it cannot outlive one
//! fill of that buffer; keeping its allocation for the next batch means changing the lifetime
//! of an empty vector. Collecting an emptied `into_iter` back into a vector of a type with the
//! same size and alignment reuses the allocation (std's in-place collection), with no unsafe
//! code; `tests::keeps_the_allocation` checks that it does.

/// An empty vector with `v`'s allocation, for elements of type `U`.
pub fn recycle<T, U>(mut v: Vec<T>) -> Vec<U> {
    v.clear();
    v.into_iter().filter_map(|_| None).collect()
}

#[cfg(test)]
mod tests {
    use super::recycle;

    #[test]
    fn keeps_the_allocation() {
        let buffer = [1u8, 2, 3];
        let mut v: Vec<&[u8]> = Vec::with_capacity(64);
        v.push(&buffer);
        let before = v.as_ptr() as usize;
        let w: Vec<&'static [u8]> = recycle(v);
        assert!(w.is_empty());
        assert_eq!(w.capacity(), 64);
        assert_eq!(w.as_ptr() as usize, before);
    }
}
