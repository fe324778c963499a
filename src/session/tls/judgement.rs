//! A judged handshake: what the session record needs of it, kept while the flow sits
//! bypassed until it ends (for an idle connection, possibly hours).
//!
//! Code points, not names: the record's strings (version, suite, key exchange, group,
//! weaknesses) are looked up when the record is made, so a bypassed connection holds a few
//! dozen bytes of verdict plus the strings that cannot be derived (server name, certificate
//! names, JA4) instead of a dozen heap strings.

use super::server::{KxParams, ServerHello};
use crate::record::{CertificateInfo, TlsInfo};
use crate::session::cert::CertStatus;
use crate::session::cipher::{self, KeyExchange, Negotiated, Version};

/// What the ServerHello chose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Chosen {
    pub version: u16,
    pub suite: u16,
    pub key_share_group: Option<u16>,
    pub pre_shared_key: bool,
}

impl From<&ServerHello> for Chosen {
    fn from(s: &ServerHello) -> Self {
        Chosen {
            version: s.version,
            suite: s.suite,
            key_share_group: s.key_share_group,
            pre_shared_key: s.pre_shared_key,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Judgement {
    pub(super) chosen: Option<Chosen>,
    pub(super) kx_params: Option<KxParams>,
    pub(super) server_name: Option<Box<str>>,
    pub(super) resumed: bool,
    pub(super) established: bool,
    pub(super) alert: Option<Box<str>>,
    pub(super) certificate: Option<CertificateInfo>,
    pub(super) ja4: Option<Box<str>>,
}

impl Judgement {
    pub fn established(&self) -> bool {
        self.established
    }

    /// The record's TLS object.
    pub fn info(&self) -> TlsInfo {
        let sh = self.chosen.as_ref();
        let version = sh.map(|s| Version(s.version));
        let tls13 = version.is_some_and(|v| v >= Version::TLS13);
        let key_exchange = match sh {
            Some(s) if tls13 => match (s.key_share_group, s.pre_shared_key) {
                (Some(g), _) => Some(cipher::group_key_exchange(g)),
                (None, true) => Some(KeyExchange::Psk),
                (None, false) => None,
            },
            Some(s) => cipher::suite_key_exchange(s.suite),
            None => None,
        };
        let (group, dh_bits) = match (sh, self.kx_params) {
            (Some(s), _) if tls13 => (s.key_share_group, None),
            (Some(_), Some(KxParams::Named(g))) => (Some(g), None),
            (Some(_), Some(KxParams::DhPrime { bits })) => (None, Some(bits)),
            _ => (None, None),
        };
        let forward_secret = key_exchange.map(KeyExchange::forward_secret);
        let negotiated = Negotiated {
            version,
            suite: sh.map(|s| s.suite),
            forward_secret,
            dh_bits,
        };
        TlsInfo {
            version: version.map(Version::label),
            cipher_suite: sh.map(|s| cipher::suite_name(s.suite)),
            key_exchange: key_exchange.map(|k| k.label().to_owned()),
            group: group
                .map(cipher::group_name)
                .or_else(|| dh_bits.map(|b| format!("dh{b}"))),
            forward_secret,
            post_quantum: version.map(|_| group.is_some_and(cipher::group_is_post_quantum)),
            server_name: self.server_name.as_deref().map(str::to_owned),
            resumed: self.resumed,
            established: self.established,
            alert: self.alert.as_deref().map(str::to_owned),
            weaknesses: cipher::weaknesses(&negotiated)
                .into_iter()
                .map(|w| w.label().to_owned())
                .collect(),
            certificate: self.certificate_info(tls13),
            ja4: self.ja4.as_deref().map(str::to_owned),
        }
    }

    /// TLS 1.3 encrypts the certificate: `hidden`. A resumed TLS ≤ 1.2 session sends none:
    /// `absent` (the protection verdict treats resumption as unknown, not as exposed).
    fn certificate_info(&self, tls13: bool) -> CertificateInfo {
        if tls13 {
            return CertStatus::Hidden.info();
        }
        if self.resumed {
            return CertStatus::Absent.info();
        }
        self.certificate
            .clone()
            .unwrap_or_else(|| CertStatus::Absent.info())
    }
}
