//! One mail connection: cleartext dialogue, STARTTLS hand-off, TLS handshake, then bypass.

pub mod anomaly;
pub mod capability;
pub mod cert;
pub mod cipher;
mod connection;
pub mod content;
pub mod dh_groups;
pub mod dialogue;
pub mod imap;
pub mod line;
pub mod pop3;
pub mod smtp;
pub mod starttls;
pub mod tls;

pub use connection::Session;
