//! The contract between a connection's session and its cleartext analyzer (SMTP, IMAP, POP3).
//!
//! The session feeds each direction's reassembled bytes to the analyzer in packet order. The
//! analyzer writes what it learns into [`Facts`] and says when TLS begins: only on the positive
//! reply paired with its command (SMTP 220 to STARTTLS, IMAP tagged OK, POP3 +OK to STLS).

use crate::flow::Direction;
use crate::session::anomaly::{Anomalies, Anomaly};
use crate::session::content::{ContentClass, ContentCounts};

/// What the cleartext phase learned. The session turns it into the record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    /// The server advertised STARTTLS / STLS (a masked capability is not an offer).
    pub starttls_offered: bool,
    /// The client sent STARTTLS / STLS.
    pub starttls_attempted: bool,
    /// The server refused STARTTLS (4xx/5xx, NO/BAD, -ERR) and the session went on in clear.
    pub starttls_refused: bool,
    /// A stripping indicator was seen; `anomalies` names which.
    pub starttls_stripped: bool,
    /// Login mechanisms used in clear, each once, in order (closed set: see [`mechanism`]).
    pub cleartext_auth: Vec<&'static str>,
    /// Message bodies that crossed in clear (SMTP DATA/BDAT accepted, IMAP FETCH bodies,
    /// POP3 RETR/TOP), by end-to-end protection: each counted message has one class.
    pub content: ContentCounts,
    /// At least one well-formed command or reply of the protocol was recognised.
    pub dialogue_seen: bool,
    pub anomalies: Anomalies,
}

impl Facts {
    pub fn add_auth(&mut self, mechanism: &'static str) {
        if !self.cleartext_auth.contains(&mechanism) {
            self.cleartext_auth.push(mechanism);
        }
    }

    /// A message whose content crossed in clear, with its end-to-end protection.
    pub fn count_message(&mut self, class: ContentClass) {
        self.content.add(class);
    }

    /// Messages whose content crossed in clear.
    pub fn cleartext_messages(&self) -> u64 {
        self.content.total()
    }

    pub fn anomaly(&mut self, a: Anomaly) {
        self.anomalies.add(a);
    }
}

/// What the analyzer says after a chunk of bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Still in clear.
    Continue,
    /// TLS begins: the first `consumed` bytes of this chunk were cleartext, the rest of this
    /// direction and everything that follows in the other direction is TLS.
    StartTls { consumed: usize },
    /// TLS begins with the client's handshake at `consumed` in this client chunk, the reply
    /// that allowed it not seen (see `session::starttls`); when `held_byte`, its first byte
    /// 0x16 ended the chunk before and was held back, and precedes the rest.
    ClientTls { consumed: usize, held_byte: bool },
}

/// A cleartext mail dialogue. Each implementation documents what it does after a gap.
pub trait Dialogue {
    fn on_data(&mut self, dir: Direction, data: &[u8], facts: &mut Facts) -> Step;
    fn on_gap(&mut self, dir: Direction, len: u64, facts: &mut Facts);
}

/// SASL mechanisms from the IANA registry, plus the protocols' own login commands. A closed
/// set: the name is also a metric label, and nothing the client typed beyond a known name is
/// ever kept (a mistyped password in the mechanism slot must not reach a log).
const MECHANISMS: &[&str] = &[
    "PLAIN",
    "LOGIN",
    "CRAM-MD5",
    "DIGEST-MD5",
    "SCRAM-SHA-1",
    "SCRAM-SHA-1-PLUS",
    "SCRAM-SHA-256",
    "SCRAM-SHA-256-PLUS",
    "XOAUTH2",
    "OAUTHBEARER",
    "GSSAPI",
    "GS2-KRB5",
    "NTLM",
    "EXTERNAL",
    "ANONYMOUS",
    "OTP",
    "SKEY",
    "SRP",
    "KERBEROS_V4",
    "USER",
    "APOP",
];

/// The label for a mechanism name as sent on the wire: a known name (any case), else `OTHER`.
pub fn mechanism(token: &[u8]) -> &'static str {
    MECHANISMS
        .iter()
        .find(|m| m.as_bytes().eq_ignore_ascii_case(token))
        .copied()
        .unwrap_or("OTHER")
}

/// Every label [`mechanism`] can return (for metrics exported as 0 in advance).
pub fn mechanism_labels() -> impl Iterator<Item = &'static str> {
    MECHANISMS.iter().copied().chain(std::iter::once("OTHER"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mechanism_names_are_a_closed_set() {
        assert_eq!(mechanism(b"plain"), "PLAIN");
        assert_eq!(mechanism(b"CRAM-MD5"), "CRAM-MD5");
        assert_eq!(mechanism(b"hunter2"), "OTHER");
        assert_eq!(mechanism(b""), "OTHER");
    }

    #[test]
    fn auth_is_recorded_once_in_order() {
        let mut f = Facts::default();
        f.add_auth("LOGIN");
        f.add_auth("PLAIN");
        f.add_auth("LOGIN");
        assert_eq!(f.cleartext_auth, ["LOGIN", "PLAIN"]);
    }
}

/// Scripted dialogues for the analyzers' unit tests: one harness for every [`Dialogue`].
#[cfg(test)]
pub(crate) mod script {
    use super::{Dialogue, Facts, Step};
    use crate::flow::Direction;

    pub type Event<'a> = (Direction, &'a [u8]);

    /// Feed whole events; the steps that were not `Continue`, with the event's index.
    pub fn run<D: Dialogue>(
        d: &mut D,
        facts: &mut Facts,
        events: &[Event<'_>],
    ) -> Vec<(usize, Step)> {
        let mut steps = Vec::new();
        for (i, &(dir, data)) in events.iter().enumerate() {
            let step = d.on_data(dir, data, facts);
            if step != Step::Continue {
                steps.push((i, step));
            }
        }
        steps
    }

    /// Feed every event one byte at a time.
    pub fn run_bytewise<D: Dialogue + Default>(events: &[Event<'_>]) -> Facts {
        let mut d = D::default();
        let mut facts = Facts::default();
        for &(dir, data) in events {
            for b in data.chunks(1) {
                d.on_data(dir, b, &mut facts);
            }
        }
        facts
    }

    /// A whole session: its facts and steps, checked against the same session fed byte by byte.
    pub fn session<D: Dialogue + Default>(events: &[Event<'_>]) -> (Facts, Vec<(usize, Step)>) {
        let mut d = D::default();
        let mut facts = Facts::default();
        let steps = run(&mut d, &mut facts, events);
        assert_eq!(facts, run_bytewise::<D>(events), "byte by byte differs");
        (facts, steps)
    }

    /// `n` messages of class `none` (plain text, as most test messages are).
    pub fn plain(n: u64) -> crate::session::content::ContentCounts {
        let mut counts = crate::session::content::ContentCounts::default();
        for _ in 0..n {
            counts.add(crate::session::content::ContentClass::None);
        }
        counts
    }

    /// Facts of a recognised dialogue, adjusted by `f`.
    pub fn facts_with(f: impl FnOnce(&mut Facts)) -> Facts {
        let mut facts = Facts {
            dialogue_seen: true,
            ..Facts::default()
        };
        f(&mut facts);
        facts
    }
}
