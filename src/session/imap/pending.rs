//! Commands waiting for their tagged response, found by tag (RFC 9051 §2.2.1: responses may
//! come in any order). Bounded: a client may pipeline without limit, the table may not.

/// At most this many commands wait for an answer; RFC 9051 sets no limit, real clients
/// pipeline a handful.
pub const MAX_PENDING: usize = 64;

/// What the analyzer must remember about a command until its tagged response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    StartTls,
    /// Until its tagged response, client lines are SASL responses (RFC 9051 §6.2.2).
    Authenticate,
    /// Until its tagged response, the client may send `DONE` (RFC 2177).
    Idle,
    Other,
}

/// A tag, kept as a 64-bit FNV-1a hash: fixed size, and no client bytes are kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TagId(u64);

impl TagId {
    pub fn of(tag: &[u8]) -> TagId {
        TagId(tag.iter().fold(0xcbf2_9ce4_8422_2325, |h: u64, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        }))
    }
}

#[derive(Debug)]
pub struct Pending {
    /// Oldest first; allocated once, never beyond [`MAX_PENDING`].
    entries: Vec<(TagId, Kind)>,
}

impl Pending {
    pub fn new() -> Pending {
        Pending {
            entries: Vec::with_capacity(MAX_PENDING),
        }
    }

    /// Remember a command. When the table is full the oldest plain command is forgotten (its
    /// response will not pair) and `false` is returned.
    pub fn push(&mut self, tag: TagId, kind: Kind) -> bool {
        let full = self.entries.len() >= MAX_PENDING;
        if full {
            let oldest = self
                .entries
                .iter()
                .position(|&(_, k)| k == Kind::Other)
                .unwrap_or(0);
            if oldest < self.entries.len() {
                self.entries.remove(oldest);
            }
        }
        self.entries.push((tag, kind));
        !full
    }

    /// The oldest command with this tag, removed.
    pub fn take(&mut self, tag: TagId) -> Option<Kind> {
        let i = self.entries.iter().position(|&(t, _)| t == tag)?;
        (i < self.entries.len()).then(|| self.entries.remove(i).1)
    }

    pub fn any(&self, kind: Kind) -> bool {
        self.entries.iter().any(|&(_, k)| k == kind)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_by_tag_in_any_order() {
        let mut p = Pending::new();
        assert!(p.push(TagId::of(b"a1"), Kind::Other));
        assert!(p.push(TagId::of(b"a2"), Kind::StartTls));
        assert_eq!(p.take(TagId::of(b"a2")), Some(Kind::StartTls));
        assert_eq!(p.take(TagId::of(b"a2")), None);
        assert_eq!(p.take(TagId::of(b"a1")), Some(Kind::Other));
    }

    #[test]
    fn overflow_forgets_the_oldest_plain_command_and_keeps_the_bound() {
        let mut p = Pending::new();
        assert!(p.push(TagId::of(b"s"), Kind::StartTls));
        for i in 0..MAX_PENDING - 1 {
            assert!(p.push(TagId::of(format!("t{i}").as_bytes()), Kind::Other));
        }
        assert!(!p.push(TagId::of(b"last"), Kind::Other));
        assert_eq!(p.len(), MAX_PENDING);
        assert_eq!(p.take(TagId::of(b"t0")), None);
        assert_eq!(p.take(TagId::of(b"s")), Some(Kind::StartTls));
        assert_eq!(p.take(TagId::of(b"last")), Some(Kind::Other));
    }
}
