//! Odd things seen on a connection: a closed set, so they can feed a record and a counter.
//!
//! Each variant says in one line what was seen and which rule it breaks. Grouped by the layer
//! that reports it; add new variants to the group they belong to.

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Anomaly {
    // --- transport (flow table, reassembly) ---
    /// Retransmitted bytes differ from the first copy (RFC 9293 §3.10.7.4); the first copy won.
    ConflictingOverlap,
    /// IP fragments of a segment overlapped (RFC 5722 forbids it for IPv6, RFC 1858 warns of
    /// it for IPv4); the first copy of each byte was kept.
    FragmentOverlap,
    /// The connection was picked up after its handshake; the start of the dialogue is unknown.
    MidstreamPickup,
    /// Only one direction of the connection was on the wire.
    OneSided,
    /// A segment lies far outside any plausible window (RFC 9293 §3.10.7.4); ignored.
    OutOfWindow,
    /// Out-of-order bytes exceeded the reassembly caps; a gap was declared to move on.
    ReassemblyOverflow,
    /// The flow was evicted from a full flow table before it ended.
    Evicted,
    /// A RST inside the window but not at the next expected sequence number: the receiver
    /// answers with a challenge ACK and keeps the connection (RFC 5961 §3.2); ignored.
    InexactReset,

    // --- cleartext dialogue (SMTP, IMAP, POP3) ---
    /// A line longer than the protocol allows (RFC 5321 §4.5.3.1.4–5, RFC 9051 §4); cut.
    LineTooLong,
    /// A line ended by a bare LF instead of CRLF (RFC 5321 §2.3.8).
    BareLf,
    /// A reply with no pending command to pair it with (RFC 5321 §4.2, RFC 2920 §3.1).
    UnpairedReply,
    /// Bytes that are not a well-formed command or reply for the protocol.
    ProtocolViolation,
    /// A command sent before the greeting, or before the reply it must wait for (RFC 2920 §3.1).
    PrematureCommand,
    /// Cleartext on a port that is TLS from the first byte (RFC 8314 §3.3).
    CleartextOnImplicitTlsPort,
    /// TLS bytes after STARTTLS was refused (RFC 3207 §4).
    TlsAfterRefusedStarttls,
    /// Cleartext after a STARTTLS that was accepted: TLS never started (RFC 3207 §4.2).
    CleartextAfterStarttls,
    /// The STARTTLS capability masked to the same length (`XXXXXXXA`): a stripping middlebox.
    StarttlsCapabilityMasked,
    /// The client's STARTTLS command rewritten on the way (`XXXXXXXX`): a stripping middlebox.
    StarttlsCommandRewritten,
    /// STARTTLS refused as unknown (5xx / BAD / -ERR) right after the same server offered it.
    StarttlsRejectedAfterOffer,
    /// The dialogue continued after a gap in the stream; what it says next may be misread.
    DialogueGap,

    // --- TLS handshake ---
    /// Bytes that do not parse as a TLS record or handshake message (RFC 8446 §5.1).
    TlsMalformed,
    /// A TLS record longer than 2^14 + 2048 bytes, or of length 0 where that is not allowed.
    TlsRecordLength,
    /// A ServerHello before any ClientHello (RFC 8446 §4.1).
    ServerHelloFirst,
    /// Both sides sent a ClientHello.
    ClientHelloBothWays,
    /// The handshake was larger than mailtap reads; judged on what was seen.
    HandshakeTooLarge,
    /// Bytes of the TLS handshake were not captured (a lost segment, or the snap length): the
    /// fields they held are unknown, and the verdict comes from the records seen around them.
    TlsHandshakeGap,
}

impl Anomaly {
    /// The metric label value and the name in the session record.
    pub fn label(self) -> &'static str {
        match self {
            Anomaly::ConflictingOverlap => "conflicting_overlap",
            Anomaly::FragmentOverlap => "fragment_overlap",
            Anomaly::MidstreamPickup => "midstream_pickup",
            Anomaly::OneSided => "one_sided",
            Anomaly::OutOfWindow => "out_of_window",
            Anomaly::ReassemblyOverflow => "reassembly_overflow",
            Anomaly::Evicted => "evicted",
            Anomaly::InexactReset => "inexact_reset",
            Anomaly::LineTooLong => "line_too_long",
            Anomaly::BareLf => "bare_lf",
            Anomaly::UnpairedReply => "unpaired_reply",
            Anomaly::ProtocolViolation => "protocol_violation",
            Anomaly::PrematureCommand => "premature_command",
            Anomaly::CleartextOnImplicitTlsPort => "cleartext_on_implicit_tls_port",
            Anomaly::TlsAfterRefusedStarttls => "tls_after_refused_starttls",
            Anomaly::CleartextAfterStarttls => "cleartext_after_starttls",
            Anomaly::StarttlsCapabilityMasked => "starttls_capability_masked",
            Anomaly::StarttlsCommandRewritten => "starttls_command_rewritten",
            Anomaly::StarttlsRejectedAfterOffer => "starttls_rejected_after_offer",
            Anomaly::DialogueGap => "dialogue_gap",
            Anomaly::TlsMalformed => "tls_malformed",
            Anomaly::TlsRecordLength => "tls_record_length",
            Anomaly::ServerHelloFirst => "server_hello_first",
            Anomaly::ClientHelloBothWays => "client_hello_both_ways",
            Anomaly::HandshakeTooLarge => "handshake_too_large",
            Anomaly::TlsHandshakeGap => "tls_handshake_gap",
        }
    }
}

impl Anomaly {
    /// Bytes the protocol parser could not make sense of (`mailtap_parse_errors_total`), as
    /// opposed to transport oddities and observations about the dialogue.
    pub const fn is_parse_error(self) -> bool {
        matches!(
            self,
            Anomaly::LineTooLong
                | Anomaly::ProtocolViolation
                | Anomaly::TlsMalformed
                | Anomaly::TlsRecordLength
        )
    }
}

/// The anomalies of one session: each kind once, in the enum's order (so a record does not
/// depend on which of two directions the capture showed first), bounded by the enum.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Anomalies(Vec<Anomaly>);

impl Anomalies {
    pub fn add(&mut self, a: Anomaly) {
        if let Err(i) = self.0.binary_search(&a) {
            self.0.insert(i, a);
        }
    }

    pub fn contains(&self, a: Anomaly) -> bool {
        self.0.contains(&a)
    }

    pub fn iter(&self) -> impl Iterator<Item = Anomaly> + '_ {
        self.0.iter().copied()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for Anomalies {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_matches_serialized_name() {
        for a in [
            Anomaly::ConflictingOverlap,
            Anomaly::FragmentOverlap,
            Anomaly::CleartextOnImplicitTlsPort,
        ] {
            let json = serde_json::to_string(&a).unwrap();
            assert_eq!(json, format!("\"{}\"", a.label()));
        }
    }

    #[test]
    fn each_kind_is_kept_once_in_the_enums_order() {
        let mut list = Anomalies::default();
        list.add(Anomaly::BareLf);
        list.add(Anomaly::OneSided);
        list.add(Anomaly::BareLf);
        assert_eq!(
            serde_json::to_string(&list).unwrap(),
            r#"["one_sided","bare_lf"]"#
        );
    }
}
