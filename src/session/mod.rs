//! One mail connection: cleartext dialogue, STARTTLS hand-off, TLS handshake, then bypass.

pub mod anomaly;
pub mod cert;
pub mod cipher;
pub mod dialogue;
pub mod line;
pub mod tls;
