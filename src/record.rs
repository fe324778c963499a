//! [`SessionRecord`]: the one result type. Every sink consumes it; none parses packets.
//! Its JSON form is a contract (../shared/DESIGN.md): field names and value spellings are fixed.
//!
//! TLS values are typed over their code points ([`Version`], [`CipherSuite`], [`Group`],
//! [`Alert`]) or closed enums ([`KeyExchange`], [`Weakness`], [`CertStatus`]), re-exported here
//! so that sinks import this module alone. Each has two spellings: the record's (`Serialize`,
//! `Display`: the registry name, or the code point when the registry does not list it), and
//! `label()`, a value from a closed set for metrics and tallies, so that no peer chooses how
//! many there are.

use crate::config::Protocol;
use crate::session::anomaly::Anomalies;
pub use crate::session::cert::CertStatus;
pub use crate::session::cipher::{CipherSuite, Group, KeyExchange, Version, Weakness, OTHER};
pub use crate::session::content::{ContentClass, ContentCounts};
pub use crate::session::tls::Alert;
use crate::source::Timestamp;
use serde::Serialize;
use std::net::SocketAddr;

/// How, and whether, a session was encrypted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Encryption {
    /// No TLS at all.
    Plaintext,
    /// Upgraded in-band (SMTP STARTTLS, IMAP STARTTLS, POP3 STLS).
    Starttls,
    /// TLS from the first byte (465, 993, 995, or a client opening with a ClientHello).
    ImplicitTls,
    /// STARTTLS was asked for and refused; the session went on in clear.
    StarttlsRefused,
    /// Signs that a middlebox removed STARTTLS (see `anomalies` for which).
    StarttlsStripped,
    /// A TLS handshake began but did not complete.
    TlsFailed,
    /// Not enough of the dialogue was seen to say.
    Unknown,
}

impl Encryption {
    pub const ALL: [Encryption; 7] = [
        Encryption::Plaintext,
        Encryption::Starttls,
        Encryption::ImplicitTls,
        Encryption::StarttlsRefused,
        Encryption::StarttlsStripped,
        Encryption::TlsFailed,
        Encryption::Unknown,
    ];

    pub const fn label(self) -> &'static str {
        match self {
            Encryption::Plaintext => "plaintext",
            Encryption::Starttls => "starttls",
            Encryption::ImplicitTls => "implicit_tls",
            Encryption::StarttlsRefused => "starttls_refused",
            Encryption::StarttlsStripped => "starttls_stripped",
            Encryption::TlsFailed => "tls_failed",
            Encryption::Unknown => "unknown",
        }
    }
}

/// One mail connection, as the sensor judged it.
#[derive(Clone, Debug, Serialize)]
pub struct SessionRecord {
    pub ts_start: Timestamp,
    pub ts_end: Timestamp,
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub protocol: Protocol,
    pub encryption: Encryption,
    pub starttls_offered: bool,
    pub starttls_attempted: bool,
    pub tls: Option<TlsInfo>,
    /// SASL or protocol login mechanism names used before any TLS (`PLAIN`, `LOGIN`, `USER`).
    pub cleartext_auth: Vec<&'static str>,
    /// Messages whose content crossed the wire unencrypted.
    pub cleartext_messages: u64,
    /// The same messages by end-to-end protection (OpenPGP, S/MIME): every class a key, the
    /// counts adding up to `cleartext_messages`. Messages inside TLS are not seen, so not here.
    pub content_protection: ContentCounts,
    /// Payload bytes in each direction, by sequence space (retransmissions counted once).
    pub bytes_to_server: u64,
    pub bytes_to_client: u64,
    pub anomalies: Anomalies,
}

/// What the TLS handshake showed. Filled by the TLS analyzer.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TlsInfo {
    pub version: Option<Version>,
    pub cipher_suite: Option<CipherSuite>,
    pub key_exchange: Option<KeyExchange>,
    pub group: Option<Group>,
    pub forward_secret: Option<bool>,
    pub post_quantum: Option<bool>,
    pub server_name: Option<String>,
    pub resumed: bool,
    /// Whether the handshake completed; null when gaps in the capture hid what would tell.
    pub established: Option<bool>,
    pub alert: Option<Alert>,
    pub weaknesses: Vec<Weakness>,
    pub certificate: CertificateInfo,
    /// JA4 fingerprint of the (first) ClientHello (FoxIO spec), e.g. `t13d1516h2_8daaf6152771_02713d6af862`.
    pub ja4: Option<String>,
}

/// The server certificate's verdict (TLS 1.3 certificates are encrypted: `hidden`). The
/// default is [`CertStatus::Absent`]: no certificate seen.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CertificateInfo {
    pub status: CertStatus,
    /// The leaf's subject common name, when a certificate was seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_cn: Option<String>,
    /// The leaf's issuer common name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer_cn: Option<String>,
    /// The leaf's notAfter, RFC 3339 (`2035-01-01T00:00:00Z`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Typed values, not heap strings: the TLS object of a record is a few words plus the
    /// strings that come from the wire (server name, certificate names, JA4).
    #[test]
    fn tls_info_is_small() {
        let size = std::mem::size_of::<TlsInfo>();
        assert!(size <= 192, "TlsInfo is {size} bytes");
    }
}

#[cfg(test)]
pub(crate) mod test_records {
    //! Records built by name for the sinks' unit tests.
    use super::*;

    pub fn plaintext_smtp() -> SessionRecord {
        SessionRecord {
            ts_start: Timestamp::from_secs(1_795_896_000),
            ts_end: Timestamp::from_secs(1_795_896_001),
            client: "192.0.2.1:51234"
                .parse()
                .unwrap_or(SocketAddr::from(([0; 4], 0))),
            server: "198.51.100.7:25"
                .parse()
                .unwrap_or(SocketAddr::from(([0; 4], 0))),
            protocol: Protocol::Smtp,
            encryption: Encryption::Plaintext,
            starttls_offered: true,
            starttls_attempted: false,
            tls: None,
            cleartext_auth: vec!["PLAIN"],
            cleartext_messages: 2,
            content_protection: {
                let mut c = ContentCounts::default();
                c.add(ContentClass::None);
                c.add(ContentClass::PgpEncrypted);
                c
            },
            bytes_to_server: 1000,
            bytes_to_client: 500,
            anomalies: Anomalies::default(),
        }
    }

    pub fn with_tls(
        encryption: Encryption,
        version: Version,
        fs: bool,
        pq: bool,
        cert: CertStatus,
    ) -> SessionRecord {
        SessionRecord {
            encryption,
            starttls_attempted: encryption == Encryption::Starttls,
            cleartext_auth: vec![],
            cleartext_messages: 0,
            content_protection: ContentCounts::default(),
            tls: Some(TlsInfo {
                version: Some(version),
                cipher_suite: Some(CipherSuite(0x1302)),
                key_exchange: Some(KeyExchange::Ecdhe),
                group: Some(Group::Named(if pq { 0x11ec } else { 29 })),
                forward_secret: Some(fs),
                post_quantum: Some(pq),
                established: Some(true),
                certificate: CertificateInfo {
                    status: cert,
                    ..CertificateInfo::default()
                },
                ..TlsInfo::default()
            }),
            ..plaintext_smtp()
        }
    }
}
