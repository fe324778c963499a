//! mailtap: a passive sensor that measures how much mail traffic is protected in transit.
//!
//! ```text
//! source ──Packet──▶ decode ──Segment──▶ dispatch (hash of the connection) ──▶ worker
//! worker: flow table ─▶ two reassembled byte streams ─▶ the connection's Session
//! Session: cleartext (SMTP | IMAP | POP3) ──STARTTLS──▶ TLS handshake ──▶ bypass
//! Session ──SessionRecord──▶ sinks: metrics, session log, replay report
//! ```
//!
//! Invariants: every byte parsed came from a hostile network, so nothing here panics on packet
//! data and every buffer is bounded; time is packet time, so a replay is deterministic; a
//! [`record::SessionRecord`] is the only thing sinks see, and it never holds mail content,
//! addresses of mail, or credentials.
#![forbid(unsafe_code)]

pub mod anonymize;
pub mod capture;
pub mod config;
pub mod decode;
pub mod engine;
pub mod flow;
pub mod protection;
pub mod record;
pub mod recycle;
pub mod replay;
pub mod session;
pub mod signals;
pub mod sink;
pub mod source;
