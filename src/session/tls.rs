//! The TLS handshake, read passively until it can be judged; then the flow is bypassed.
//!
//! What is read: records (RFC 8446 §5.1) of both directions, handshake messages across and
//! within records, an SSLv2-framed ClientHello, HelloRetryRequest, and the server's cleartext
//! flight of TLS ≤ 1.2 (Certificate, ServerKeyExchange, ServerHelloDone). Each direction is
//! read for at most [`MAX_BYTES_PER_DIRECTION`]; past that the verdict is what was seen
//! (`HandshakeTooLarge`).
//!
//! When it is judged:
//! - TLS ≤ 1.2: once both sides sent ChangeCipherSpec (`established`), or an alert;
//! - TLS 1.3: everything after the ServerHello is encrypted, so `established` is decided on
//!   the client's first encrypted record after the ServerHello: a client sends it (its
//!   Finished, possibly after its own Certificate) only once it accepted the server's
//!   encrypted flight. A record no longer than an encrypted alert (2 bytes + content type +
//!   16-byte AEAD tag = 19 bytes) is taken for an alert: not established, and the alert's
//!   description stays unknown (`alert` null);
//! - a fatal alert, or close_notify / user_canceled before completion: `alert` is its name,
//!   not established (warning alerts such as `unrecognized_name` are let pass);
//! - malformed bytes (`TlsMalformed`), a record longer than 2^14 + 2048 (`TlsRecordLength`)
//!   or a handshake past the byte cap: judged on what was seen, not established.
//! - a handshake message longer than 64 KiB (a long certificate chain) is read cut to its
//!   first 64 KiB (`HandshakeTooLarge`); the chain is judged on the whole certificates in it
//!   and the handshake read on.
//!
//! # Gaps
//! A gap (bytes the capture lost, or a frame the snap length cut) is a hole of known length:
//! inside a record's body the record is still framed and its type known; a handshake message
//! whose header was seen is still framed too, with a hole (a Certificate with a hole is
//! `partial`; other messages with holes are not parsed, so their fields stay null). A gap that
//! takes a record header loses the framing until a chunk starts with a plausible record header.
//! After a gap (`TlsHandshakeGap`) the verdict comes from what the seen records show:
//! ChangeCipherSpec both ways, or encrypted records both ways (the client's longer than an
//! encrypted alert), is established; an alert, or a client stream that ended without one
//! encrypted record, failed; anything else is undetermined (`established` null), which the
//! session reports as `unknown` — never as failed or plaintext.
//!
//! End of stream before the verdict, with no gap, leaves `established` false and `alert`
//! null.

mod alert;
mod client_hello;
mod ja4;
mod judgement;
mod records;
mod server;
#[cfg(test)]
mod tests;

use crate::flow::Direction;
use crate::record::{CertificateInfo, TlsInfo};
use crate::session::anomaly::{Anomalies, Anomaly};
use crate::session::cert::{self, CertStatus};
use crate::session::cipher::{self, CipherSuite, Version};
use crate::source::Timestamp;
use client_hello::ClientHello;
use judgement::Chosen;
use records::{MessageReader, Record, RecordReader};
use server::{KxParams, ServerHello};
use std::sync::Arc;

pub use alert::Alert;
pub use judgement::Judgement;

pub use crate::session::cert::{TlsContext, TlsContextError};

/// Bytes read per direction: 64 KiB of handshake plus a 64 KiB certificate chain.
pub const MAX_BYTES_PER_DIRECTION: u64 = 128 * 1024;

const HS_CLIENT_HELLO: u8 = 1;
const HS_SERVER_HELLO: u8 = 2;
const HS_CERTIFICATE: u8 = 11;
const HS_SERVER_KEY_EXCHANGE: u8 = 12;
const HS_SERVER_HELLO_DONE: u8 = 14;

/// The largest TLS 1.3 ciphertext taken for an encrypted alert (2 + 1 + 16).
const ENCRYPTED_ALERT_MAX: usize = 19;

/// Whether the analyzer still wants bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsProgress {
    NeedMore,
    Judged,
}

/// Where the handshake is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    AwaitClientHello,
    AwaitServerHello,
    /// After a HelloRetryRequest: a second ClientHello and a ServerHello are due.
    AfterRetry,
    /// TLS ≤ 1.2 after the ServerHello: the server's flight and both ChangeCipherSpecs.
    Tls12,
    /// TLS 1.3 after the ServerHello: waiting for the client's encrypted flight.
    Tls13,
    /// Judged; nothing more is read.
    Done,
}

/// One record's meaning, as the state machine sees it.
#[derive(Clone, Copy, Debug)]
enum Event<'a> {
    Handshake(u8, &'a [u8]),
    Sslv2Hello(&'a [u8]),
    ChangeCipherSpec,
    Alert {
        level: u8,
        description: u8,
    },
    /// A record this side encrypted (application data, or anything after its keys changed).
    Opaque {
        len: usize,
    },
}

#[derive(Debug)]
struct Side {
    records: RecordReader,
    messages: MessageReader,
    read: u64,
    /// This side's records are encrypted from here on.
    encrypted: bool,
    ccs: bool,
    /// A gap hit this side while the handshake was read.
    gap: bool,
    /// The longest encrypted record this side sent (after its keys changed, or type 23).
    opaque_max: usize,
    /// This side's stream ended.
    eof: bool,
}

impl Side {
    fn new(dir: Direction) -> Self {
        Side {
            records: RecordReader::new(dir == Direction::ToServer),
            messages: MessageReader::default(),
            read: 0,
            encrypted: false,
            ccs: false,
            gap: false,
            opaque_max: 0,
            eof: false,
        }
    }
}

/// Passive TLS handshake analyzer for one connection.
pub struct TlsAnalyzer {
    ctx: Arc<TlsContext>,
    phase: Phase,
    sides: [Side; 2],
    client_hello: Option<ClientHello>,
    ja4: Option<String>,
    server_hello: Option<ServerHello>,
    server_sent_client_hello: bool,
    /// The handshake message being stepped was cut at `records::MAX_MESSAGE`.
    message_cut: bool,
    kx_params: Option<KxParams>,
    certificate: Option<CertificateInfo>,
    server_hello_done: bool,
    server_flight: bool,
    resumed: bool,
    established: bool,
    alert: Option<Alert>,
}

impl std::fmt::Debug for TlsAnalyzer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsAnalyzer")
            .field("phase", &self.phase)
            .field("established", &self.established)
            .finish_non_exhaustive()
    }
}

impl TlsAnalyzer {
    pub fn new(ctx: Arc<TlsContext>) -> Self {
        TlsAnalyzer {
            ctx,
            phase: Phase::AwaitClientHello,
            sides: [
                Side::new(Direction::ToServer),
                Side::new(Direction::ToClient),
            ],
            client_hello: None,
            ja4: None,
            server_hello: None,
            server_sent_client_hello: false,
            message_cut: false,
            kx_params: None,
            certificate: None,
            server_hello_done: false,
            server_flight: false,
            resumed: false,
            established: false,
            alert: None,
        }
    }

    /// Bytes of one direction, in order. Returns Judged once nothing more is needed (the flow
    /// is then bypassed).
    pub fn on_data(
        &mut self,
        dir: Direction,
        data: &[u8],
        ts: Timestamp,
        anomalies: &mut Anomalies,
    ) -> TlsProgress {
        if self.phase == Phase::Done {
            return TlsProgress::Judged;
        }
        let side = self.side(dir);
        let room = MAX_BYTES_PER_DIRECTION.saturating_sub(side.read);
        let take = usize::try_from(room).unwrap_or(usize::MAX).min(data.len());
        side.read = side.read.saturating_add(take as u64);
        let over = take < data.len();
        let mut records = Vec::new();
        let framing = side
            .records
            .push(data.get(..take).unwrap_or_default(), &mut records);
        if side.records.zero_length {
            anomalies.add(Anomaly::TlsRecordLength);
        }
        for record in &records {
            if self.phase == Phase::Done {
                break;
            }
            self.on_record(dir, record, ts, anomalies);
        }
        match framing {
            Ok(()) => {}
            // After a gap, a header that does not parse is framing not yet found again.
            Err(records::FramingError::Malformed) if self.side(dir).gap => {
                self.side(dir).records.lose();
            }
            Err(records::FramingError::Malformed) => self.malformed(anomalies),
            Err(records::FramingError::TooLong) => {
                anomalies.add(Anomaly::TlsRecordLength);
                self.phase = Phase::Done;
            }
        }
        if over && self.phase != Phase::Done {
            anomalies.add(Anomaly::HandshakeTooLarge);
            self.phase = Phase::Done;
        }
        self.progress()
    }

    /// A gap of `len` bytes in one direction (see the module docs): the records it fell
    /// inside are still read, and the handshake is judged on what the seen records show.
    pub fn on_gap(
        &mut self,
        dir: Direction,
        len: u64,
        ts: Timestamp,
        anomalies: &mut Anomalies,
    ) -> TlsProgress {
        if self.phase == Phase::Done {
            return TlsProgress::Judged;
        }
        anomalies.add(Anomaly::TlsHandshakeGap);
        let side = self.side(dir);
        side.gap = true;
        side.read = side.read.saturating_add(len);
        let over = side.read > MAX_BYTES_PER_DIRECTION;
        let mut records = Vec::new();
        side.records.gap(len, &mut records);
        for record in &records {
            if self.phase == Phase::Done {
                break;
            }
            self.on_record(dir, record, ts, anomalies);
        }
        if over && self.phase != Phase::Done {
            anomalies.add(Anomaly::HandshakeTooLarge);
            self.phase = Phase::Done;
        }
        self.progress()
    }

    /// A gap hit the start of one direction before TLS was known to begin (the session saw
    /// it while it still looked for the protocol).
    pub fn note_gap(&mut self, dir: Direction) {
        let side = self.side(dir);
        side.gap = true;
        side.records.gap(1, &mut Vec::new());
    }

    /// End of one direction. The verdict stays what was seen: a handshake cut short is not
    /// established and has no alert.
    pub fn on_eof(&mut self, dir: Direction, anomalies: &mut Anomalies) {
        let _ = anomalies;
        self.side(dir).eof = true;
    }

    /// A gap hit either side.
    fn gapped(&self) -> bool {
        self.sides.iter().any(|s| s.gap)
    }

    /// After a gap, what the seen records show: ChangeCipherSpec both ways, or encrypted
    /// records both ways with the client's longer than an encrypted alert.
    fn infer_established(&mut self) {
        if !self.gapped() || self.phase == Phase::Done {
            return;
        }
        let [client, server] = &self.sides;
        // TLS 1.3's middlebox-compatibility ChangeCipherSpec proves nothing.
        let ccs = client.ccs && server.ccs && self.phase != Phase::Tls13;
        let encrypted = server.opaque_max > 0 && client.opaque_max > ENCRYPTED_ALERT_MAX;
        if ccs || encrypted {
            self.established = true;
            self.phase = Phase::Done;
        }
    }

    /// Established, visibly failed, or (after a gap) not to be told from what was seen.
    pub fn outcome(&self) -> Option<bool> {
        if self.established {
            return Some(true);
        }
        if self.alert.is_some() || !self.gapped() {
            return Some(false);
        }
        let [client, _] = &self.sides;
        let client_silent = client.eof && !client.ccs && client.opaque_max == 0 && !client.gap;
        client_silent.then_some(false)
    }

    /// Whether the first bytes look like the start of a TLS handshake: a handshake record of
    /// version 3.x, or an SSLv2-framed CLIENT-HELLO offering SSLv2 or 3.x. A prefix too short
    /// to tell is accepted when every byte it has fits.
    pub fn looks_like_tls(first_bytes: &[u8]) -> bool {
        match first_bytes {
            [0x16] | [0x16, 0x03] => true,
            [0x16, 0x03, minor, ..] => *minor <= 4,
            [hi, _, 0x01, rest @ ..] if hi & 0x80 != 0 => match rest {
                [] | [0x00 | 0x03] => true,
                [0x03, minor, ..] => *minor <= 4,
                [0x00, 0x02, ..] => true,
                _ => false,
            },
            _ => false,
        }
    }

    /// Judged: free the record and message buffers, which still hold the largest record
    /// seen (a certificate chain's worth) while the flow sits bypassed until it ends. The
    /// verdict's fields stay; [`TlsAnalyzer::info`] is unchanged.
    pub fn release_buffers(&mut self) {
        for side in &mut self.sides {
            side.records.release();
            side.messages.release();
        }
    }

    pub fn established(&self) -> Option<bool> {
        self.outcome()
    }

    /// The verdict so far (called at the end of the connection, or when judged).
    pub fn info(&self) -> TlsInfo {
        self.judgement().info()
    }

    /// The verdict, moved out of a finished analyzer (nothing copied).
    pub fn into_judgement(self) -> Judgement {
        let established = self.outcome();
        let certificate_unseen = self.sides[1].gap;
        Judgement {
            chosen: self.server_hello.as_ref().map(Chosen::from),
            kx_params: self.kx_params,
            server_name: self
                .client_hello
                .and_then(|c| c.sni)
                .map(String::into_boxed_str),
            resumed: self.resumed,
            established,
            alert: self.alert,
            certificate: self.certificate,
            certificate_unseen,
            ja4: self.ja4.map(String::into_boxed_str),
        }
    }

    /// The verdict so far, in the compact form a bypassed flow keeps.
    pub fn judgement(&self) -> Judgement {
        Judgement {
            chosen: self.server_hello.as_ref().map(Chosen::from),
            kx_params: self.kx_params,
            server_name: self
                .client_hello
                .as_ref()
                .and_then(|c| c.sni.as_deref())
                .map(Box::from),
            resumed: self.resumed,
            established: self.outcome(),
            alert: self.alert,
            certificate: self.certificate.clone(),
            certificate_unseen: self.sides[1].gap,
            ja4: self.ja4.as_deref().map(Box::from),
        }
    }

    fn progress(&self) -> TlsProgress {
        match self.phase {
            Phase::Done => TlsProgress::Judged,
            _ => TlsProgress::NeedMore,
        }
    }

    fn side(&mut self, dir: Direction) -> &mut Side {
        match dir {
            Direction::ToServer => &mut self.sides[0],
            Direction::ToClient => &mut self.sides[1],
        }
    }

    fn malformed(&mut self, anomalies: &mut Anomalies) {
        anomalies.add(Anomaly::TlsMalformed);
        self.phase = Phase::Done;
    }

    /// Turns a record into events for [`Self::step`].
    fn on_record(
        &mut self,
        dir: Direction,
        record: &Record,
        ts: Timestamp,
        anomalies: &mut Anomalies,
    ) {
        let encrypted = self.side(dir).encrypted;
        let body = record.body.as_slice();
        match (record.content_type, encrypted) {
            (records::HANDSHAKE, false) => {
                let mut messages = Vec::new();
                let reader = &mut self.side(dir).messages;
                for piece in record.pieces() {
                    match piece {
                        records::Piece::Seen(b) => reader.push(b, &mut messages),
                        records::Piece::Lost(n) => reader.gap(n, &mut messages),
                    }
                }
                for m in &messages {
                    if self.phase == Phase::Done {
                        return;
                    }
                    if m.cut {
                        anomalies.add(Anomaly::HandshakeTooLarge);
                    }
                    if m.holed {
                        self.on_holed_message(dir, m.msg_type);
                        continue;
                    }
                    self.message_cut = m.cut;
                    self.step(dir, Event::Handshake(m.msg_type, &m.body), ts, anomalies);
                }
            }
            // A gap took the alert's level or description: what it said is unknown.
            (records::ALERT, false) if !record.holes.is_empty() => {}
            // A gap took the one byte of a ChangeCipherSpec: its type says what it is.
            (records::CHANGE_CIPHER_SPEC, _) if !record.holes.is_empty() => {
                self.step(dir, Event::ChangeCipherSpec, ts, anomalies)
            }
            (records::ALERT, false) => match body {
                [level, description, ..] => {
                    let ev = Event::Alert {
                        level: *level,
                        description: *description,
                    };
                    self.step(dir, ev, ts, anomalies);
                }
                _ => self.malformed(anomalies),
            },
            (records::CHANGE_CIPHER_SPEC, _) => match body {
                [1] => self.step(dir, Event::ChangeCipherSpec, ts, anomalies),
                _ => self.malformed(anomalies),
            },
            (records::SSLV2_CLIENT_HELLO, _) => {
                self.step(dir, Event::Sslv2Hello(body), ts, anomalies)
            }
            (records::HANDSHAKE | records::ALERT | records::APPLICATION_DATA, _) => {
                let side = self.side(dir);
                side.opaque_max = side.opaque_max.max(body.len());
                self.step(dir, Event::Opaque { len: body.len() }, ts, anomalies);
            }
            _ => {}
        }
        self.infer_established();
    }

    /// A handshake message a gap took part of: only its type is known. A server Certificate
    /// was sent, but cannot be judged whole.
    fn on_holed_message(&mut self, dir: Direction, msg_type: u8) {
        if dir == Direction::ToClient && msg_type == HS_CERTIFICATE && self.certificate.is_none() {
            self.certificate = Some(CertStatus::Partial.info());
        }
    }

    /// The state machine: one row per (phase, direction, event).
    fn step(&mut self, dir: Direction, ev: Event<'_>, ts: Timestamp, anomalies: &mut Anomalies) {
        use Direction::{ToClient as FromServer, ToServer as FromClient};
        use Phase::*;
        match (self.phase, dir, ev) {
            (Done, _, _) => {}
            (_, _, Event::Alert { level, description }) => self.on_alert(level, description),
            (_, FromServer, Event::Handshake(HS_CLIENT_HELLO, _)) => {
                self.server_sent_client_hello = true;
                if self.client_hello.is_some() {
                    anomalies.add(Anomaly::ClientHelloBothWays);
                }
            }
            (AwaitClientHello, FromClient, Event::Handshake(HS_CLIENT_HELLO, body)) => {
                self.on_client_hello(ClientHello::parse(body), anomalies);
            }
            (AwaitClientHello, FromClient, Event::Sslv2Hello(body)) => {
                self.on_client_hello(ClientHello::parse_sslv2(body), anomalies);
            }
            (AwaitClientHello, FromServer, Event::Handshake(HS_SERVER_HELLO, body)) => {
                if !self.sides[0].gap {
                    anomalies.add(Anomaly::ServerHelloFirst);
                }
                self.on_server_hello(body, anomalies);
            }
            (
                AwaitServerHello | AfterRetry,
                FromServer,
                Event::Handshake(HS_SERVER_HELLO, body),
            ) => {
                self.on_server_hello(body, anomalies);
            }
            (AfterRetry, FromClient, Event::Handshake(HS_CLIENT_HELLO, body)) => {
                if ClientHello::parse(body).is_none() {
                    self.malformed(anomalies);
                }
            }
            // TLS 1.3 middlebox compatibility (RFC 8446 D.4) and 0-RTT early data.
            // The ServerHello may be in a gap: a ChangeCipherSpec is then a TLS ≤ 1.2 switch.
            (AwaitServerHello | AfterRetry, _, Event::ChangeCipherSpec) if self.sides[1].gap => {
                self.unexpected(dir, ev, anomalies)
            }
            (AwaitServerHello | AfterRetry | Tls13, _, Event::ChangeCipherSpec) => {}
            (AwaitServerHello | AfterRetry, FromClient, Event::Opaque { .. }) => {}
            (Tls12, FromServer, Event::Handshake(HS_CERTIFICATE, body)) => {
                self.on_certificate(body, ts)
            }
            (Tls12, FromServer, Event::Handshake(HS_SERVER_KEY_EXCHANGE, body)) => {
                self.on_server_key_exchange(body);
            }
            (Tls12, FromServer, Event::Handshake(HS_SERVER_HELLO_DONE, _)) => {
                self.server_hello_done = true;
            }
            // CertificateStatus, CertificateRequest, NewSessionTicket; the client's
            // Certificate, ClientKeyExchange, CertificateVerify: nothing to judge.
            (Tls12, _, Event::Handshake(..)) => {}
            (Tls12, _, Event::ChangeCipherSpec) => self.on_change_cipher_spec(dir),
            (Tls12, _, Event::Opaque { .. }) => {}
            (Tls13, FromServer, Event::Opaque { .. }) => self.server_flight = true,
            (Tls13, FromClient, Event::Opaque { len }) => {
                self.established = len > ENCRYPTED_ALERT_MAX;
                self.phase = Done;
            }
            (
                AwaitClientHello | AwaitServerHello | AfterRetry | Tls13,
                _,
                Event::Handshake(..)
                | Event::Sslv2Hello(_)
                | Event::ChangeCipherSpec
                | Event::Opaque { .. },
            )
            | (Tls12, _, Event::Sslv2Hello(_)) => self.unexpected(dir, ev, anomalies),
        }
    }

    /// An event the handshake's place does not allow. Without a gap that is malformed; after
    /// one, the place is not known for sure: a ChangeCipherSpec still says the side switched
    /// to encryption, and the rest is passed over.
    fn unexpected(&mut self, dir: Direction, ev: Event<'_>, anomalies: &mut Anomalies) {
        if !self.gapped() {
            self.malformed(anomalies);
            return;
        }
        if matches!(ev, Event::ChangeCipherSpec) && self.phase != Phase::Tls13 {
            let side = self.side(dir);
            side.ccs = true;
            side.encrypted = true;
        }
    }

    fn on_client_hello(&mut self, hello: Option<ClientHello>, anomalies: &mut Anomalies) {
        let Some(hello) = hello else {
            self.malformed(anomalies);
            return;
        };
        if self.server_sent_client_hello {
            anomalies.add(Anomaly::ClientHelloBothWays);
        }
        self.ja4 = Some(ja4::ja4(&hello));
        self.client_hello = Some(hello);
        self.phase = Phase::AwaitServerHello;
    }

    fn on_server_hello(&mut self, body: &[u8], anomalies: &mut Anomalies) {
        let Some(sh) = ServerHello::parse(body) else {
            self.malformed(anomalies);
            return;
        };
        if sh.hrr && self.phase == Phase::AfterRetry {
            // A second HelloRetryRequest (RFC 8446 §4.1.4 forbids it).
            self.malformed(anomalies);
            return;
        }
        let tls13 = Version(sh.version) >= Version::TLS13;
        self.phase = match (sh.hrr, tls13) {
            (true, _) => Phase::AfterRetry,
            (false, true) => Phase::Tls13,
            (false, false) => Phase::Tls12,
        };
        match self.phase {
            Phase::Tls13 => {
                self.resumed = sh.pre_shared_key;
                for side in &mut self.sides {
                    side.encrypted = true;
                }
            }
            Phase::Tls12 => {
                let offered = self.client_hello.as_ref().map(|c| c.session_id.as_slice());
                self.resumed =
                    !sh.session_id.is_empty() && offered == Some(sh.session_id.as_slice());
            }
            _ => {}
        }
        self.server_hello = Some(sh);
    }

    fn on_certificate(&mut self, body: &[u8], ts: Timestamp) {
        let info = match server::certificate_chain(body, self.message_cut) {
            Some(chain) if chain.is_empty() => CertStatus::Absent.info(),
            Some(chain) => {
                let sni = self.client_hello.as_ref().and_then(|c| c.sni.as_deref());
                cert::assess(&self.ctx, &chain, sni, ts)
            }
            None => CertStatus::Unparsable.info(),
        };
        self.certificate = Some(info);
    }

    fn on_server_key_exchange(&mut self, body: &[u8]) {
        let Some(suite) = self.server_hello.as_ref().map(|s| s.suite) else {
            return;
        };
        let Some(kx) = cipher::suite_key_exchange(suite) else {
            return;
        };
        let psk = CipherSuite(suite)
            .name()
            .is_some_and(|n| n.contains("_PSK_"));
        self.kx_params = server::server_key_exchange(body, kx, psk);
    }

    fn on_change_cipher_spec(&mut self, dir: Direction) {
        let side = self.side(dir);
        side.ccs = true;
        side.encrypted = true;
        if dir == Direction::ToClient && !self.server_hello_done && self.certificate.is_none() {
            // ServerHello then ChangeCipherSpec: an abbreviated handshake (RFC 5246 §7.3).
            self.resumed = true;
        }
        if self.sides.iter().all(|s| s.ccs) {
            self.established = true;
            self.phase = Phase::Done;
        }
    }

    fn on_alert(&mut self, level: u8, description: u8) {
        const FATAL: u8 = 2;
        const CLOSE_NOTIFY: u8 = 0;
        const USER_CANCELED: u8 = 90;
        if level == FATAL || description == CLOSE_NOTIFY || description == USER_CANCELED {
            self.alert = Some(Alert(description));
            self.phase = Phase::Done;
        }
    }
}
