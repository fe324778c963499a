//! The protection table of DESIGN.md as code: for each attack on a connection, did the
//! session's transport protection defeat it?
//!
//! Unknown stays unknown: a TLS 1.3 certificate is encrypted, so whether the session would
//! have stopped an active attacker is `Unknown`, never `Protected`.
//!
//! Two compromise points are past the connection: the providers and services that store or
//! relay the mail ([`Attack::Provider`]), and the message kept at rest ([`Attack::AtRest`]).
//! Transport encryption ends there; only end-to-end encryption (OpenPGP, S/MIME) protects a
//! message, so these are judged from the session's `content_protection`: the messages that
//! crossed in clear. What crossed inside TLS was not seen: unknown.

use crate::record::{CertStatus, ContentClass, Encryption, SessionRecord, TlsInfo};

/// The attacks mailtap judges each session against (the `attack` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Attack {
    /// Passive eavesdropping on the path: defeated by any TLS.
    Passive,
    /// An active attacker (STARTTLS stripping, server impersonation): defeated only by TLS
    /// with a certificate that validates for the server's name.
    Active,
    /// Recording now, stealing the server's key later: defeated by forward secrecy.
    Later,
    /// Recording now, breaking the key exchange with a quantum computer later: defeated by a
    /// post-quantum hybrid key exchange.
    QuantumLater,
    /// The providers and services that store or relay the mail: defeated only by end-to-end
    /// encryption.
    Provider,
    /// The message later, at rest (a mailbox, a backup): defeated only by end-to-end
    /// encryption.
    AtRest,
}

/// The `verdict` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verdict {
    Protected,
    Exposed,
    Unknown,
}

impl Attack {
    pub const ALL: [Attack; 6] = [
        Attack::Passive,
        Attack::Active,
        Attack::Later,
        Attack::QuantumLater,
        Attack::Provider,
        Attack::AtRest,
    ];

    pub const fn label(self) -> &'static str {
        match self {
            Attack::Passive => "passive",
            Attack::Active => "active",
            Attack::Later => "later",
            Attack::QuantumLater => "quantum_later",
            Attack::Provider => "provider",
            Attack::AtRest => "at_rest",
        }
    }
}

impl Verdict {
    pub const ALL: [Verdict; 3] = [Verdict::Protected, Verdict::Exposed, Verdict::Unknown];

    pub const fn label(self) -> &'static str {
        match self {
            Verdict::Protected => "protected",
            Verdict::Exposed => "exposed",
            Verdict::Unknown => "unknown",
        }
    }

    fn from_flag(flag: Option<bool>) -> Verdict {
        match flag {
            Some(true) => Verdict::Protected,
            Some(false) => Verdict::Exposed,
            None => Verdict::Unknown,
        }
    }
}

/// The verdict of one session against one attack.
pub fn judge(record: &SessionRecord, attack: Attack) -> Verdict {
    if matches!(attack, Attack::Provider | Attack::AtRest) {
        return end_to_end_verdict(record);
    }
    let tls = match record.encryption {
        Encryption::Starttls | Encryption::ImplicitTls => record.tls.as_ref(),
        Encryption::Unknown => return Verdict::Unknown,
        // No TLS protected the content: every attack wins.
        Encryption::Plaintext
        | Encryption::StarttlsRefused
        | Encryption::StarttlsStripped
        | Encryption::TlsFailed => return Verdict::Exposed,
    };
    let Some(tls) = tls else {
        return Verdict::Unknown;
    };
    match attack {
        Attack::Passive => Verdict::Protected,
        Attack::Active => certificate_verdict(tls),
        Attack::Later => Verdict::from_flag(tls.forward_secret),
        Attack::QuantumLater => Verdict::from_flag(tls.post_quantum),
        Attack::Provider | Attack::AtRest => end_to_end_verdict(record),
    }
}

/// Past the connection, only end-to-end encryption protects: exposed when a message crossed
/// in clear without it, protected when every message did with it and none can have hidden
/// inside TLS, else unknown (no message seen, or messages inside TLS, or unknown classes).
fn end_to_end_verdict(record: &SessionRecord) -> Verdict {
    let c = &record.content_protection;
    let encrypted = c.get(ContentClass::PgpEncrypted) + c.get(ContentClass::SmimeEncrypted);
    let unknown = c.get(ContentClass::Unknown);
    let total = c.total();
    let in_tls = matches!(
        record.encryption,
        Encryption::Starttls | Encryption::ImplicitTls | Encryption::Unknown
    );
    if total > encrypted + unknown {
        Verdict::Exposed
    } else if total > 0 && unknown == 0 && !in_tls {
        Verdict::Protected
    } else {
        Verdict::Unknown
    }
}

fn certificate_verdict(tls: &TlsInfo) -> Verdict {
    // A resumed session was authenticated by the handshake it resumes, which was not seen.
    if tls.resumed {
        return Verdict::Unknown;
    }
    match tls.certificate.status {
        CertStatus::Valid => Verdict::Protected,
        // Encrypted (TLS 1.3): cannot be judged passively. Partly lost in the capture:
        // what would decide was never seen.
        CertStatus::Hidden | CertStatus::Partial => Verdict::Unknown,
        _ => Verdict::Exposed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::test_records::{plaintext_smtp, with_tls};
    use crate::record::{CertStatus, Version};

    /// The transport attacks' verdicts (the first four of [`Attack::ALL`]).
    fn verdicts(r: &SessionRecord) -> [Verdict; 4] {
        [
            Attack::Passive,
            Attack::Active,
            Attack::Later,
            Attack::QuantumLater,
        ]
        .map(|a| judge(r, a))
    }

    fn past_the_connection(r: &SessionRecord) -> [Verdict; 2] {
        [Attack::Provider, Attack::AtRest].map(|a| judge(r, a))
    }

    #[test]
    fn only_end_to_end_encryption_protects_past_the_connection() {
        use crate::record::ContentCounts;
        let with = |classes: &[ContentClass], encryption: Encryption| {
            let mut content_protection = ContentCounts::default();
            for &c in classes {
                content_protection.add(c);
            }
            SessionRecord {
                encryption,
                cleartext_messages: content_protection.total(),
                content_protection,
                ..plaintext_smtp()
            }
        };
        use ContentClass::*;
        let plain = Encryption::Plaintext;
        // plaintext_smtp carries one plain and one encrypted message.
        assert_eq!(past_the_connection(&plaintext_smtp()), [E, E]);
        assert_eq!(
            past_the_connection(&with(&[PgpEncrypted, SmimeEncrypted], plain)),
            [P, P]
        );
        assert_eq!(past_the_connection(&with(&[PgpSigned], plain)), [E, E]);
        assert_eq!(
            past_the_connection(&with(&[PgpEncrypted, Unknown], plain)),
            [U, U]
        );
        assert_eq!(past_the_connection(&with(&[], plain)), [U, U]);
        // Inside TLS the content was not seen, even when the transport protects.
        let tls = with_tls(
            Encryption::Starttls,
            Version::TLS13,
            true,
            true,
            CertStatus::Valid,
        );
        assert_eq!(past_the_connection(&tls), [U, U]);
        assert_eq!(
            past_the_connection(&with(&[SmimeEncrypted], Encryption::Starttls)),
            [U, U]
        );
        assert_eq!(
            past_the_connection(&with(&[None], Encryption::Starttls)),
            [E, E]
        );
    }

    use Verdict::{Exposed as E, Protected as P, Unknown as U};

    #[test]
    fn plaintext_is_exposed_to_everything() {
        assert_eq!(verdicts(&plaintext_smtp()), [E, E, E, E]);
    }

    #[test]
    fn tls13_certificate_hidden_leaves_active_unknown() {
        let r = with_tls(
            Encryption::Starttls,
            Version::TLS13,
            true,
            false,
            CertStatus::Hidden,
        );
        assert_eq!(verdicts(&r), [P, U, P, E]);
    }

    #[test]
    fn valid_certificate_and_pq_group_protect_against_all() {
        let r = with_tls(
            Encryption::ImplicitTls,
            Version::TLS13,
            true,
            true,
            CertStatus::Valid,
        );
        assert_eq!(verdicts(&r), [P, P, P, P]);
    }

    #[test]
    fn rsa_key_exchange_with_self_signed_certificate() {
        let r = with_tls(
            Encryption::Starttls,
            Version::TLS12,
            false,
            false,
            CertStatus::SelfSigned,
        );
        assert_eq!(verdicts(&r), [P, E, E, E]);
    }

    #[test]
    fn a_certificate_a_gap_hid_cannot_be_judged_for_active() {
        let r = with_tls(
            Encryption::Starttls,
            Version::TLS12,
            true,
            false,
            CertStatus::Partial,
        );
        assert_eq!(judge(&r, Attack::Active), U);
    }

    #[test]
    fn resumed_session_cannot_be_judged_for_active() {
        let mut r = with_tls(
            Encryption::Starttls,
            Version::TLS12,
            true,
            false,
            CertStatus::Absent,
        );
        if let Some(t) = r.tls.as_mut() {
            t.resumed = true;
        }
        assert_eq!(judge(&r, Attack::Active), U);
    }

    #[test]
    fn failed_refused_and_stripped_are_exposed_unknown_is_unknown() {
        for e in [
            Encryption::TlsFailed,
            Encryption::StarttlsRefused,
            Encryption::StarttlsStripped,
        ] {
            let r = SessionRecord {
                encryption: e,
                ..plaintext_smtp()
            };
            assert_eq!(verdicts(&r), [E, E, E, E], "{e:?}");
        }
        let r = SessionRecord {
            encryption: Encryption::Unknown,
            ..plaintext_smtp()
        };
        assert_eq!(verdicts(&r), [U, U, U, U]);
    }
}
