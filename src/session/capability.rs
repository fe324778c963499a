//! What a mail server advertises, as the IMAP and POP3 analyzers read it: the SASL mechanisms
//! it offers (a set over the closed labels of [`mechanism`]) and a STARTTLS capability masked
//! by a middlebox.

use crate::session::dialogue::{mechanism, mechanism_labels};

/// SASL mechanisms a server offered. Unknown names collapse into `OTHER`, so the set is a
/// bit mask over [`mechanism_labels`] and never grows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MechSet(u32);

impl MechSet {
    /// Note a mechanism name as it appears on the wire (`PLAIN`, `scram-sha-256`, `hunter2`).
    pub fn insert(&mut self, token: &[u8]) {
        let name = mechanism(token);
        let bit = mechanism_labels()
            .position(|m| m == name)
            .and_then(|i| u32::try_from(i).ok())
            .and_then(|i| 1u32.checked_shl(i));
        self.0 |= bit.unwrap_or(0);
    }

    /// The offered mechanisms, in the order of [`mechanism_labels`].
    pub fn iter(self) -> impl Iterator<Item = &'static str> {
        mechanism_labels()
            .enumerate()
            .filter(move |(i, _)| {
                u32::try_from(*i)
                    .ok()
                    .and_then(|i| self.0.checked_shr(i))
                    .is_some_and(|b| b & 1 == 1)
            })
            .map(|(_, m)| m)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// A capability or command word overwritten with `X` to the length of `len` (`XXXXXXXX` for
/// STARTTLS, `XXXX` for STLS; the last letter is sometimes kept, as in `XXXXXXXA`): the mark a
/// STARTTLS-stripping middlebox leaves.
pub fn is_masked(token: &[u8], len: usize) -> bool {
    token.len() == len
        && token
            .get(..len.saturating_sub(1))
            .is_some_and(|head| !head.is_empty() && head.iter().all(|&b| b == b'X'))
}

/// The line-level anomalies every line-based dialogue records.
pub fn note_line(
    line: &crate::session::line::Line<'_>,
    facts: &mut crate::session::dialogue::Facts,
) {
    if line.bare_lf {
        facts.anomaly(crate::session::anomaly::Anomaly::BareLf);
    }
    if line.too_long {
        facts.anomaly(crate::session::anomaly::Anomaly::LineTooLong);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mechanisms_are_kept_as_labels_once() {
        let mut set = MechSet::default();
        assert!(set.is_empty());
        for t in [&b"PLAIN"[..], b"login", b"PLAIN", b"secret-ish"] {
            set.insert(t);
        }
        assert_eq!(set.iter().collect::<Vec<_>>(), ["PLAIN", "LOGIN", "OTHER"]);
    }

    #[test]
    fn masked_words() {
        assert!(is_masked(b"XXXXXXXX", 8));
        assert!(is_masked(b"XXXXXXXA", 8));
        assert!(is_masked(b"XXXX", 4));
        assert!(!is_masked(b"STARTTLS", 8));
        assert!(!is_masked(b"XXXXXXX", 8));
        assert!(!is_masked(b"X", 1));
    }
}
