//! One STARTTLS policy for SMTP (RFC 3207), IMAP (RFC 9051 §6.2.1) and POP3 (RFC 2595 §4).
//!
//! Each dialogue reads its own syntax and tells [`Starttls`] what it saw, in these terms; the
//! policy alone decides what that means for the record, so the three protocols judge alike:
//!
//! | seen | means |
//! |---|---|
//! | the capability (`STARTTLS`, `STLS`) in the server's list | **offered** (sticky) |
//! | the capability masked to its length (`XXXXXXXA`) | **stripped** (`starttls_capability_masked`); no offer |
//! | the client's command | **attempted**, waiting for its reply |
//! | the command rewritten to its length (`XXXXXXXX`) | **stripped** (`starttls_command_rewritten`); no attempt, and no reply to it starts TLS |
//! | a positive reply paired with the command (SMTP `220`, IMAP tagged `OK`, POP3 `+OK`) | **TLS starts** after the reply's line |
//! | a refusal that says "unknown command" (SMTP `500`/`502`, IMAP `BAD`, POP3 `-ERR` naming an unknown command) after an offer | **stripped** (`starttls_rejected_after_offer`): the server offered what it then does not know, the signature of a middlebox |
//! | any other refusal (SMTP `4xx`/`5xx`, IMAP `NO`/`BAD`, POP3 `-ERR`) | **refused** |
//! | TLS handshake bytes from the client where a command would start, after a refusal | `tls_after_refused_starttls`; nothing more read in clear |
//! | ... without a STARTTLS in view | `protocol_violation`; nothing more read in clear |
//!
//! Gaps (bytes the capture lost) must not turn a STARTTLS session into plaintext, so two
//! more rules say what the seen bytes still show:
//!
//! - the command was seen and its reply lost in a gap, then the client sends a TLS handshake:
//!   **TLS starts** there (a client sends its ClientHello only after the positive reply);
//! - a gap hid client bytes (the command among them, perhaps), then an unpaired positive reply
//!   (a `220` after the greeting, a tagged `OK` for a tag not seen, an unpaired `+OK`), then a
//!   client TLS handshake: **attempted**, and **TLS starts** there.
//!
//! Whether TLS then holds is the TLS analyzer's to say.

use crate::session::anomaly::Anomaly;
use crate::session::dialogue::Facts;
use crate::session::line::LineReader;

/// The server's answer to the client's STARTTLS command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// SMTP `220`, IMAP tagged `OK`, POP3 `+OK`.
    Accepted,
    /// Turned down as a command the server does not know (SMTP `500`/`502`, IMAP `BAD`, POP3
    /// `-ERR` saying so).
    Unknown,
    /// Any other refusal.
    Refused,
}

/// What TLS bytes from the client mean now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientTls {
    /// TLS begins here.
    Starts,
    /// Not a STARTTLS hand-off: the client side is opaque from here (the anomaly is recorded).
    Opaque,
}

/// One connection's STARTTLS state (a few bytes); see the module docs for the rules.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Starttls {
    /// The client's command waits for its reply (which a gap may have taken).
    awaiting: bool,
    /// A gap hid client bytes since the last command seen.
    client_gap: bool,
    /// After such a gap, a positive reply that answers nothing seen.
    unpaired_positive: bool,
    /// The server turned the command down: TLS bytes from the client are an anomaly.
    turned_down: bool,
}

impl Starttls {
    /// The server's capability list names STARTTLS.
    pub fn offered(&mut self, facts: &mut Facts) {
        facts.starttls_offered = true;
    }

    /// The capability masked to its length: a stripping middlebox.
    pub fn masked(&mut self, facts: &mut Facts) {
        stripped(facts, Anomaly::StarttlsCapabilityMasked);
    }

    /// The client's STARTTLS command.
    pub fn command(&mut self, facts: &mut Facts) {
        facts.starttls_attempted = true;
        self.awaiting = true;
        self.client_gap = false;
        self.unpaired_positive = false;
    }

    /// The client's command rewritten to its length: no attempt, as seen on the wire.
    pub fn rewritten(&mut self, facts: &mut Facts) {
        stripped(facts, Anomaly::StarttlsCommandRewritten);
    }

    /// The reply paired with the command. Returns whether TLS starts after it.
    pub fn reply(&mut self, reply: Reply, facts: &mut Facts) -> bool {
        self.awaiting = false;
        match reply {
            Reply::Accepted => return true,
            Reply::Unknown if facts.starttls_offered => {
                stripped(facts, Anomaly::StarttlsRejectedAfterOffer)
            }
            Reply::Unknown | Reply::Refused => facts.starttls_refused = true,
        }
        self.turned_down = true;
        false
    }

    /// A positive reply that the dialogue could pair with no command it saw.
    pub fn unpaired_positive(&mut self) {
        if self.client_gap {
            self.unpaired_positive = true;
        }
    }

    /// The capture lost client bytes.
    pub fn client_gap(&mut self) {
        self.client_gap = true;
    }

    /// A client handshake would start TLS now (see [`client_tls`](Self::client_tls)): after a
    /// gap, a reply already shows that the client's lost line was whole, so its next bytes
    /// start a line.
    pub fn expects_client_tls(&self) -> bool {
        self.awaiting || self.unpaired_positive
    }

    /// TLS handshake bytes from the client where a command would start.
    pub fn client_tls(&mut self, facts: &mut Facts) -> ClientTls {
        if self.awaiting || self.unpaired_positive {
            // The reply was lost (or its command was): the client's ClientHello shows it.
            facts.starttls_attempted = true;
            self.awaiting = false;
            return ClientTls::Starts;
        }
        let anomaly = if self.turned_down {
            Anomaly::TlsAfterRefusedStarttls
        } else {
            Anomaly::ProtocolViolation
        };
        facts.anomaly(anomaly);
        ClientTls::Opaque
    }
}

fn stripped(facts: &mut Facts, anomaly: Anomaly) {
    facts.starttls_stripped = true;
    facts.anomaly(anomaly);
}

/// The first two bytes of a TLS handshake record (content type 22, version 3.x).
pub const HANDSHAKE_START: [u8; 2] = [0x16, 0x03];

/// Right after a gap the line reader looks for the lost line's end. When the bytes since the
/// gap begin a TLS handshake record, the gap ended at a line start instead (the lost line was
/// the STARTTLS command): say so to `lines`. A first byte 0x16 held since the gap becomes the
/// split header byte `split` that [`tls_record_starts`] completes. The same whether the
/// record's first bytes came in one chunk or two.
pub fn resync_at_handshake(lines: &mut LineReader, input: &[u8], split: &mut bool) {
    if lines.resumes_with(input, &HANDSHAKE_START) {
        *split |= lines.held_len() == 1;
        lines.at_line_start();
    }
}

/// Whether a TLS handshake record (content type 22, version 3.x) begins at a line start, with
/// its two header bytes possibly split across chunks: `split` remembers a chunk that ended
/// with 0x16 alone at a line start.
pub fn tls_record_starts(input: &[u8], at_line_start: bool, split: &mut bool) -> bool {
    if input.is_empty() {
        return false;
    }
    let was_split = std::mem::take(split);
    match input {
        [0x16, 0x03, ..] if at_line_start => true,
        [0x16] if at_line_start => {
            *split = true;
            false
        }
        [0x03, ..] => was_split,
        _ => false,
    }
}

#[cfg(test)]
mod table;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_as_unknown_after_an_offer_is_stripping_not_refusal() {
        let (mut p, mut f) = (Starttls::default(), Facts::default());
        p.offered(&mut f);
        p.command(&mut f);
        assert!(!p.reply(Reply::Unknown, &mut f));
        assert!(f.starttls_stripped && !f.starttls_refused);
        assert_eq!(p.client_tls(&mut f), ClientTls::Opaque);
        assert!(f.anomalies.contains(Anomaly::TlsAfterRefusedStarttls));
        // Without the offer it is a refusal.
        let (mut p, mut f) = (Starttls::default(), Facts::default());
        p.command(&mut f);
        p.reply(Reply::Unknown, &mut f);
        assert!(f.starttls_refused && !f.starttls_stripped);
    }

    #[test]
    fn a_lost_reply_is_shown_by_the_client_hello() {
        let (mut p, mut f) = (Starttls::default(), Facts::default());
        p.command(&mut f);
        assert_eq!(p.client_tls(&mut f), ClientTls::Starts);
    }

    #[test]
    fn a_lost_command_is_shown_by_the_reply_and_the_client_hello() {
        let (mut p, mut f) = (Starttls::default(), Facts::default());
        // An unpaired positive reply without a gap before it is no evidence.
        p.unpaired_positive();
        assert_eq!(p.client_tls(&mut f), ClientTls::Opaque);
        let (mut p, mut f) = (Starttls::default(), Facts::default());
        p.client_gap();
        p.unpaired_positive();
        assert_eq!(p.client_tls(&mut f), ClientTls::Starts);
        assert!(f.starttls_attempted);
    }

    #[test]
    fn handshake_header_bytes_split_across_chunks() {
        let mut split = false;
        assert!(!tls_record_starts(&[0x16], true, &mut split));
        assert!(tls_record_starts(&[0x03, 0x01], false, &mut split));
        assert!(!tls_record_starts(&[0x03, 0x01], false, &mut split));
        assert!(!tls_record_starts(b"EHLO", true, &mut split));
        assert!(!tls_record_starts(&[0x16, 0x03], false, &mut split));
    }
}
