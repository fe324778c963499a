//! One mail connection: Detect → Cleartext → TLS → Bypass.
//!
//! The session reads only what answers the question: the cleartext dialogue until TLS starts
//! or the connection ends, and the TLS handshake until it is judged. Then it asks the flow
//! table to bypass the connection, which from then on is only counted.

use super::anomaly::Anomaly;
use super::dialogue::{Dialogue, Facts, Step};
use super::imap::Imap;
use super::pop3::Pop3;
use super::smtp::Smtp;
use super::tls::{Judgement, TlsAnalyzer, TlsContext, TlsProgress};
use crate::config::{Family, Protocol};
use crate::flow::table::FlowInfo;
use crate::flow::{Direction, FlowHandler, Interest, StreamEvent};
use crate::record::{Encryption, SessionRecord};
use crate::source::Timestamp;
use std::sync::Arc;

/// How TLS began on this connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TlsStart {
    Starttls,
    Implicit,
}

enum Phase {
    /// No payload yet: the first bytes decide between TLS and the cleartext dialogue.
    Detect,
    Cleartext(Box<dyn Dialogue + Send>),
    Tls(Box<TlsAnalyzer>),
    /// Judged; the flow is only counted from here on.
    Bypass,
    /// Picked up mid-stream inside TLS: encrypted, but how it began was not seen.
    MidstreamTls,
}

pub struct Session {
    protocol: Protocol,
    ctx: Arc<TlsContext>,
    phase: Phase,
    facts: Facts,
    tls_start: Option<TlsStart>,
    /// The TLS verdict, kept when the phase moves on to Bypass (the analyzer and its buffers
    /// are dropped then: a bypassed connection holds only this).
    verdict: Option<Box<Judgement>>,
    midstream: bool,
    /// By [`Direction::index`]: bytes lost before the stream's first byte seen.
    start_gap: [u64; 2],
}

impl Session {
    pub fn new(protocol: Protocol, ctx: Arc<TlsContext>) -> Self {
        Session {
            protocol,
            ctx,
            phase: Phase::Detect,
            facts: Facts::default(),
            tls_start: None,
            verdict: None,
            midstream: false,
            start_gap: [0; 2],
        }
    }

    /// The record of a finished connection; `None` when it never carried a payload byte, or no
    /// server took part in it ([`FlowInfo::server_seen`]).
    /// Consumes the session: its verdict moves into the record instead of being copied.
    pub fn into_record(self, info: &FlowInfo) -> Option<SessionRecord> {
        // A flow without payload, or without a server (spoofed packets, floods), is no session.
        if info.bytes.iter().all(|b| *b == 0) || !info.server_seen {
            return None;
        }
        let encryption = self.encryption();
        let tls = match (&self.phase, self.verdict) {
            (Phase::Tls(t), _) => Some(t.info()),
            (_, Some(v)) => Some(v.info()),
            _ => None,
        };
        Some(SessionRecord {
            ts_start: info.first_ts,
            ts_end: info.last_ts,
            client: info.client,
            server: info.server,
            protocol: info.protocol,
            encryption,
            starttls_offered: self.facts.starttls_offered,
            starttls_attempted: self.facts.starttls_attempted,
            tls,
            cleartext_auth: self.facts.cleartext_auth,
            cleartext_messages: self.facts.content.total(),
            content_protection: self.facts.content,
            bytes_to_server: info.bytes[Direction::ToServer.index()],
            bytes_to_client: info.bytes[Direction::ToClient.index()],
            anomalies: self.facts.anomalies,
        })
    }

    /// Whether the handshake completed; `None` when gaps hid what would tell (or no TLS).
    fn established(&self) -> Option<bool> {
        match (&self.phase, &self.verdict) {
            (Phase::Tls(t), _) => t.established(),
            (_, Some(v)) => v.established(),
            _ => None,
        }
    }

    /// A verdict only from bytes seen: TLS whose outcome a gap hid is `unknown`, never failed.
    fn encryption(&self) -> Encryption {
        let established = self.established();
        match (self.tls_start, established) {
            (Some(TlsStart::Starttls), Some(true)) => Encryption::Starttls,
            (Some(TlsStart::Implicit), Some(true)) => Encryption::ImplicitTls,
            (Some(_), Some(false)) => Encryption::TlsFailed,
            (Some(_), None) => Encryption::Unknown,
            (None, _) if matches!(self.phase, Phase::MidstreamTls) => Encryption::Unknown,
            (None, _) if self.facts.starttls_stripped => Encryption::StarttlsStripped,
            (None, _) if self.facts.starttls_refused => Encryption::StarttlsRefused,
            (None, _) if self.facts.dialogue_seen => Encryption::Plaintext,
            (None, _) => Encryption::Unknown,
        }
    }

    fn detect(&mut self, dir: Direction, data: &[u8], ts: Timestamp) -> Interest {
        let tls_first = TlsAnalyzer::looks_like_tls(data);
        let start_seen = !self.midstream && self.start_gap.get(dir.index()) == Some(&0);
        if start_seen && tls_first {
            // TLS from a stream's first byte: an implicit-TLS port, a client opening with a
            // ClientHello where clear text usually comes first (TLS straight to 587), or a
            // server that answers in TLS (its client's first bytes lost).
            return self.start_tls(TlsStart::Implicit, dir, data, ts);
        }
        if !start_seen && looks_like_tls_record(data) {
            if self.protocol.implicit_tls() && !self.midstream {
                // The connection's start was seen, its first bytes lost: on this port they
                // were TLS, and the handshake is read on from here.
                return self.start_tls(TlsStart::Implicit, dir, data, ts);
            }
            // Encrypted traffic already under way: nothing to learn about how it began.
            self.phase = Phase::MidstreamTls;
            return Interest::Done;
        }
        if self.protocol.implicit_tls() {
            self.facts.anomaly(Anomaly::CleartextOnImplicitTlsPort);
        }
        let mut d = dialogue(self.protocol.family());
        for (gap_dir, len) in [Direction::ToServer, Direction::ToClient]
            .into_iter()
            .zip(self.start_gap)
        {
            if len > 0 {
                d.on_gap(gap_dir, len, &mut self.facts);
            }
        }
        self.phase = Phase::Cleartext(d);
        self.cleartext(dir, data, ts)
    }

    fn cleartext(&mut self, dir: Direction, data: &[u8], ts: Timestamp) -> Interest {
        let Phase::Cleartext(d) = &mut self.phase else {
            return Interest::More;
        };
        match d.on_data(dir, data, &mut self.facts) {
            Step::Continue => Interest::More,
            Step::StartTls { consumed } => {
                let rest = data.get(consumed..).unwrap_or_default();
                self.start_tls(TlsStart::Starttls, dir, rest, ts)
            }
            Step::ClientTls {
                consumed,
                held_byte,
            } => {
                let rest = data.get(consumed..).unwrap_or_default();
                if !held_byte {
                    return self.start_tls(TlsStart::Starttls, dir, rest, ts);
                }
                let mut whole = Vec::with_capacity(rest.len() + 1);
                whole.push(0x16);
                whole.extend_from_slice(rest);
                self.start_tls(TlsStart::Starttls, dir, &whole, ts)
            }
        }
    }

    fn start_tls(&mut self, how: TlsStart, dir: Direction, data: &[u8], ts: Timestamp) -> Interest {
        self.tls_start = Some(how);
        let mut analyzer = Box::new(TlsAnalyzer::new(Arc::clone(&self.ctx)));
        for (gap_dir, len) in [Direction::ToServer, Direction::ToClient]
            .into_iter()
            .zip(self.start_gap)
        {
            if len > 0 {
                analyzer.note_gap(gap_dir);
            }
        }
        self.phase = Phase::Tls(analyzer);
        if data.is_empty() {
            return Interest::More;
        }
        self.tls_data(dir, data, ts)
    }

    fn tls_data(&mut self, dir: Direction, data: &[u8], ts: Timestamp) -> Interest {
        let Phase::Tls(t) = &mut self.phase else {
            return Interest::More;
        };
        match t.on_data(dir, data, ts, &mut self.facts.anomalies) {
            TlsProgress::NeedMore => Interest::More,
            TlsProgress::Judged => self.bypass(),
        }
    }

    fn bypass(&mut self) -> Interest {
        if let Phase::Tls(t) = std::mem::replace(&mut self.phase, Phase::Bypass) {
            self.verdict = Some(Box::new(t.into_judgement()));
        }
        Interest::Done
    }

    fn gap(&mut self, dir: Direction, len: u64, ts: Timestamp) -> Interest {
        match &mut self.phase {
            Phase::Cleartext(d) => d.on_gap(dir, len, &mut self.facts),
            Phase::Tls(t) => {
                if t.on_gap(dir, len, ts, &mut self.facts.anomalies) == TlsProgress::Judged {
                    return self.bypass();
                }
            }
            // A gap before the first byte: this stream's start was lost.
            Phase::Detect => {
                if let Some(g) = self.start_gap.get_mut(dir.index()) {
                    *g = g.saturating_add(len);
                }
            }
            Phase::Bypass | Phase::MidstreamTls => {}
        }
        Interest::More
    }
}

impl FlowHandler for Session {
    fn on_stream(&mut self, dir: Direction, event: StreamEvent<'_>, ts: Timestamp) -> Interest {
        match (event, &self.phase) {
            (StreamEvent::Data(_), Phase::Bypass | Phase::MidstreamTls) => Interest::Done,
            (StreamEvent::Data(d), Phase::Detect) => self.detect(dir, d, ts),
            (StreamEvent::Data(d), Phase::Cleartext(_)) => self.cleartext(dir, d, ts),
            (StreamEvent::Data(d), Phase::Tls(_)) => self.tls_data(dir, d, ts),
            (StreamEvent::Gap(len), _) => self.gap(dir, len, ts),
            (StreamEvent::Eof, Phase::Tls(_)) => {
                if let Phase::Tls(t) = &mut self.phase {
                    t.on_eof(dir, &mut self.facts.anomalies);
                }
                Interest::More
            }
            (StreamEvent::Eof, _) => Interest::More,
        }
    }

    fn on_anomaly(&mut self, anomaly: Anomaly) {
        if anomaly == Anomaly::MidstreamPickup {
            self.midstream = true;
        }
        self.facts.anomaly(anomaly);
    }
}

fn dialogue(family: Family) -> Box<dyn Dialogue + Send> {
    match family {
        Family::Smtp => Box::new(Smtp::new()),
        Family::Imap => Box::new(Imap::new()),
        Family::Pop3 => Box::new(Pop3::new()),
    }
}

/// Any TLS record header (content type 20–23, version 3.x): what a capture that starts inside
/// an encrypted session sees first.
fn looks_like_tls_record(data: &[u8]) -> bool {
    matches!(data, [20..=23, 3, 0..=4, ..])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bypassed idle connection holds the flow table's slot and this; keep it small.
    #[test]
    fn session_is_small() {
        let size = std::mem::size_of::<Session>();
        assert!(size <= 128, "Session is {size} bytes");
    }
}
