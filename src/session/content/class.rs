//! The content protection classes and a per-session count of each.

use serde::ser::{Serialize, SerializeMap, Serializer};

/// The end-to-end protection of one message whose content crossed the wire in cleartext.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ContentClass {
    /// OpenPGP encryption: PGP/MIME `multipart/encrypted` (RFC 3156 §4) or an inline
    /// `-----BEGIN PGP MESSAGE-----` (RFC 4880 §6.2). Signed and encrypted is encrypted.
    PgpEncrypted,
    /// An OpenPGP signature only: PGP/MIME `multipart/signed` (RFC 3156 §5) or a cleartext
    /// signature, `-----BEGIN PGP SIGNED MESSAGE-----` (RFC 4880 §7).
    PgpSigned,
    /// S/MIME `application/pkcs7-mime` enveloped-data or authEnveloped-data (RFC 8551 §3.3).
    SmimeEncrypted,
    /// S/MIME `multipart/signed` with a pkcs7-signature, or pkcs7-mime signed-data (RFC 8551 §3.5).
    SmimeSigned,
    /// Neither OpenPGP nor S/MIME.
    None,
    /// Not seen well enough to say: a gap or a cap in the header section, a message cut
    /// before its header ended, or a transfer that does not hold the top-level header.
    Unknown,
}

impl ContentClass {
    pub const ALL: [ContentClass; 6] = [
        ContentClass::PgpEncrypted,
        ContentClass::PgpSigned,
        ContentClass::SmimeEncrypted,
        ContentClass::SmimeSigned,
        ContentClass::None,
        ContentClass::Unknown,
    ];

    /// The record's key and the metric's `content` label.
    pub const fn label(self) -> &'static str {
        match self {
            ContentClass::PgpEncrypted => "pgp_encrypted",
            ContentClass::PgpSigned => "pgp_signed",
            ContentClass::SmimeEncrypted => "smime_encrypted",
            ContentClass::SmimeSigned => "smime_signed",
            ContentClass::None => "none",
            ContentClass::Unknown => "unknown",
        }
    }

    /// Encrypted end to end: protected wherever the message is stored or relayed.
    pub const fn encrypted(self) -> bool {
        matches!(
            self,
            ContentClass::PgpEncrypted | ContentClass::SmimeEncrypted
        )
    }

    const fn index(self) -> usize {
        self as usize
    }
}

/// Messages of a session by class. Serialized as an object with every class as a key, in
/// [`ContentClass::ALL`] order, zeros included. Boxed on the first message: a session that
/// carries none (most, and every one in TLS) holds one word.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContentCounts(Option<Box<[u64; 6]>>);

impl ContentCounts {
    pub fn add(&mut self, class: ContentClass) {
        let counts = self.0.get_or_insert_with(|| Box::new([0; 6]));
        if let Some(n) = counts.get_mut(class.index()) {
            *n = n.saturating_add(1);
        }
    }

    pub fn get(&self, class: ContentClass) -> u64 {
        self.0
            .as_ref()
            .and_then(|c| c.get(class.index()))
            .copied()
            .unwrap_or(0)
    }

    /// Every class with its count, in [`ContentClass::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (ContentClass, u64)> + '_ {
        ContentClass::ALL.into_iter().map(|c| (c, self.get(c)))
    }

    pub fn total(&self) -> u64 {
        self.iter().fold(0u64, |a, (_, n)| a.saturating_add(n))
    }
}

impl Serialize for ContentCounts {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(ContentClass::ALL.len()))?;
        for (class, n) in self.iter() {
            map.serialize_entry(class.label(), &n)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_distinct_and_in_order() {
        let labels: Vec<_> = ContentClass::ALL.iter().map(|c| c.label()).collect();
        assert_eq!(
            labels,
            [
                "pgp_encrypted",
                "pgp_signed",
                "smime_encrypted",
                "smime_signed",
                "none",
                "unknown"
            ]
        );
        for (i, c) in ContentClass::ALL.iter().enumerate() {
            assert_eq!(c.index(), i);
        }
    }

    #[test]
    fn counts_serialize_every_class() {
        let mut counts = ContentCounts::default();
        counts.add(ContentClass::None);
        counts.add(ContentClass::None);
        counts.add(ContentClass::PgpSigned);
        assert_eq!(counts.total(), 3);
        let json = serde_json::to_string(&counts).unwrap_or_default();
        assert_eq!(
            json,
            r#"{"pgp_encrypted":0,"pgp_signed":1,"smime_encrypted":0,"smime_signed":0,"none":2,"unknown":0}"#
        );
    }
}
