//! One mail connection: cleartext dialogue, STARTTLS hand-off, TLS handshake, then bypass.

pub mod anomaly;
pub mod dialogue;
pub mod line;
pub mod smtp;
