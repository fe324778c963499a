//! A judged handshake: what the session record needs of it, kept while the flow sits
//! bypassed until it ends (for an idle connection, possibly hours).
//!
//! Code points, not names: the record's typed values (version, suite, key exchange, group,
//! weaknesses) are derived when the record is made, so a bypassed connection holds a few
//! dozen bytes of verdict plus the strings that cannot be derived (server name, certificate
//! names, JA4).

use super::server::{KxParams, ServerHello};
use super::Alert;
use crate::record::{CertificateInfo, TlsInfo};
use crate::session::cert::CertStatus;
use crate::session::cipher::{self, CipherSuite, Group, KeyExchange, Negotiated, Version};

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
    pub(super) established: Option<bool>,
    pub(super) alert: Option<Alert>,
    pub(super) certificate: Option<CertificateInfo>,
    /// A gap hit the server's handshake: a certificate not seen may have been in it.
    pub(super) certificate_unseen: bool,
    pub(super) ja4: Option<Box<str>>,
}

impl Judgement {
    pub fn established(&self) -> Option<bool> {
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
        let (group, dh_bits, dh_group) = match (sh, self.kx_params) {
            (Some(s), _) if tls13 => (s.key_share_group, None, None),
            (Some(_), Some(KxParams::Named(g))) => (Some(g), None, None),
            (Some(_), Some(KxParams::DhPrime { bits, group })) => (None, Some(bits), group),
            _ => (None, None, None),
        };
        let forward_secret = key_exchange.map(KeyExchange::forward_secret);
        let negotiated = Negotiated {
            version,
            suite: sh.map(|s| s.suite),
            forward_secret,
            dh_bits,
        };
        TlsInfo {
            version,
            cipher_suite: sh.map(|s| CipherSuite(s.suite)),
            key_exchange,
            group: group
                .map(Group::Named)
                .or_else(|| dh_group.map(Group::Prime))
                .or_else(|| dh_bits.map(Group::CustomPrime)),
            forward_secret,
            post_quantum: version.map(|_| group.is_some_and(cipher::group_is_post_quantum)),
            server_name: self.server_name.as_deref().map(str::to_owned),
            resumed: self.resumed,
            established: self.established,
            alert: self.alert,
            weaknesses: cipher::weaknesses(&negotiated),
            certificate: self.certificate_info(tls13),
            ja4: self.ja4.as_deref().map(str::to_owned),
        }
    }

    /// TLS 1.3 encrypts the certificate: `hidden`. A resumed session, TLS 1.3 (a PSK
    /// accepted) or ≤ 1.2, sends none: `absent` (the protection verdict treats resumption as
    /// unknown, not as exposed). A TLS ≤ 1.2 certificate that a gap hid is `partial`.
    fn certificate_info(&self, tls13: bool) -> CertificateInfo {
        if tls13 {
            let resumed = self.chosen.is_some_and(|c| c.pre_shared_key);
            return if resumed {
                CertStatus::Absent
            } else {
                CertStatus::Hidden
            }
            .info();
        }
        if self.resumed {
            return CertStatus::Absent.info();
        }
        match &self.certificate {
            Some(c) => c.clone(),
            None if self.certificate_unseen => CertStatus::Partial.info(),
            None => CertStatus::Absent.info(),
        }
    }
}
