//! The protection table of DESIGN.md as code: for each attack on a connection, did the
//! session's transport protection defeat it?
//!
//! Unknown stays unknown: a TLS 1.3 certificate is encrypted, so whether the session would
//! have stopped an active attacker is `Unknown`, never `Protected`.

use crate::record::{Encryption, SessionRecord, TlsInfo};

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
}

/// The `verdict` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verdict {
    Protected,
    Exposed,
    Unknown,
}

impl Attack {
    pub const ALL: [Attack; 4] = [
        Attack::Passive,
        Attack::Active,
        Attack::Later,
        Attack::QuantumLater,
    ];

    pub const fn label(self) -> &'static str {
        match self {
            Attack::Passive => "passive",
            Attack::Active => "active",
            Attack::Later => "later",
            Attack::QuantumLater => "quantum_later",
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
    }
}

fn certificate_verdict(tls: &TlsInfo) -> Verdict {
    // A resumed session was authenticated by the handshake it resumes, which was not seen.
    if tls.resumed {
        return Verdict::Unknown;
    }
    match tls.certificate.status.as_str() {
        "valid" => Verdict::Protected,
        // Encrypted (TLS 1.3) or resumed without a certificate: cannot be judged passively.
        "hidden" | "" => Verdict::Unknown,
        _ => Verdict::Exposed,
    }
}
