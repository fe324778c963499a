//! The server certificate's verdict: chain to a trust anchor, validity at capture time, name.
//!
//! Trust anchors are Mozilla's root store (webpki-roots) plus the operator's `--trust-anchor`
//! PEM files. Path building and signature checks are rustls-webpki's; names, dates and
//! common names are read with x509-parser.
//!
//! When several problems apply, the first of this list wins:
//! `unparsable` > `self_signed` > `unknown_issuer` > `name_mismatch` > `expired` >
//! `not_yet_valid` > `valid`.
//! Who vouches for the key comes first (an attacker can mint any self-signed or unknown-CA
//! certificate, whatever its dates or name); then whether it is the certificate of the name
//! the client asked for; a lapsed date on an otherwise right certificate comes last. To tell
//! "untrusted" from "expired", the chain is built at a moment inside the leaf's validity.

use crate::record::CertificateInfo;
use crate::source::Timestamp;
use pki_types::pem::PemObject;
use pki_types::{CertificateDer, ServerName, TrustAnchor, UnixTime};
use std::time::{Duration, UNIX_EPOCH};
use webpki::{EndEntityCert, KeyUsage};
use x509_parser::prelude::{FromDer, X509Certificate};

mod cache;
use cache::{VerdictCache, Window};

/// At most this many certificates of a chain are looked at (leaf first).
pub const MAX_CHAIN_CERTS: usize = 10;

/// The verdict; the label is also the record's spelling.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CertStatus {
    Valid,
    Expired,
    NotYetValid,
    SelfSigned,
    UnknownIssuer,
    NameMismatch,
    /// Encrypted (TLS 1.3) or not sent because the session was resumed: cannot be judged.
    Hidden,
    /// No Certificate message in the clear in a TLS ≤ 1.2 handshake (anonymous, PSK, or the
    /// handshake stopped before it).
    #[default]
    Absent,
    Unparsable,
    /// A Certificate was sent, but a gap in the capture took all or part of it: it cannot be
    /// judged.
    Partial,
}

impl CertStatus {
    pub const ALL: [CertStatus; 10] = [
        CertStatus::Valid,
        CertStatus::Expired,
        CertStatus::NotYetValid,
        CertStatus::SelfSigned,
        CertStatus::UnknownIssuer,
        CertStatus::NameMismatch,
        CertStatus::Hidden,
        CertStatus::Absent,
        CertStatus::Unparsable,
        CertStatus::Partial,
    ];

    pub const fn label(self) -> &'static str {
        match self {
            CertStatus::Valid => "valid",
            CertStatus::Expired => "expired",
            CertStatus::NotYetValid => "not_yet_valid",
            CertStatus::SelfSigned => "self_signed",
            CertStatus::UnknownIssuer => "unknown_issuer",
            CertStatus::NameMismatch => "name_mismatch",
            CertStatus::Hidden => "hidden",
            CertStatus::Absent => "absent",
            CertStatus::Unparsable => "unparsable",
            CertStatus::Partial => "partial",
        }
    }

    /// The record's certificate object with this status and nothing else.
    pub fn info(self) -> CertificateInfo {
        CertificateInfo {
            status: self,
            ..CertificateInfo::default()
        }
    }
}

impl std::fmt::Display for CertStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

crate::session::cipher::serialize_as_display!(CertStatus);

/// A `--trust-anchor` file that holds no usable certificate.
#[derive(Debug, thiserror::Error)]
pub enum TlsContextError {
    #[error("trust anchor PEM #{index}: {reason}")]
    BadPem { index: usize, reason: String },
}

/// What certificate checks trust: webpki-roots plus extra anchors. Built once, shared.
pub struct TlsContext {
    anchors: Vec<TrustAnchor<'static>>,
    verdicts: VerdictCache,
}

impl std::fmt::Debug for TlsContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsContext")
            .field("anchors", &self.anchors.len())
            .finish()
    }
}

impl TlsContext {
    /// Mozilla's roots plus every certificate of each PEM (a file may hold several). The
    /// error names the PEM by its position in `extra_anchor_pems`.
    pub fn new(extra_anchor_pems: &[Vec<u8>]) -> Result<Self, TlsContextError> {
        let mut anchors = webpki_roots::TLS_SERVER_ROOTS.to_vec();
        for (index, pem) in extra_anchor_pems.iter().enumerate() {
            let bad = |reason: String| TlsContextError::BadPem { index, reason };
            let mut found = 0usize;
            for der in CertificateDer::pem_slice_iter(pem) {
                let der = der.map_err(|e| bad(format!("PEM: {e}")))?;
                let anchor = webpki::anchor_from_trusted_cert(&der)
                    .map_err(|e| bad(format!("certificate: {e}")))?;
                anchors.push(anchor.to_owned());
                found += 1;
            }
            if found == 0 {
                return Err(bad("no CERTIFICATE block".to_owned()));
            }
        }
        Ok(TlsContext {
            anchors,
            verdicts: VerdictCache::default(),
        })
    }

    /// Only the given PEM anchors, without Mozilla's roots (tests).
    #[cfg(test)]
    pub(crate) fn only(extra_anchor_pems: &[Vec<u8>]) -> Result<Self, TlsContextError> {
        let mut ctx = Self::new(extra_anchor_pems)?;
        let mozilla = webpki_roots::TLS_SERVER_ROOTS.len();
        ctx.anchors.drain(..mozilla);
        Ok(ctx)
    }
}

/// Judges a chain (DER, leaf first, at most [`MAX_CHAIN_CERTS`] used) for `sni` at `ts`.
/// Without SNI the name is not checked.
pub fn assess(
    ctx: &TlsContext,
    chain: &[Vec<u8>],
    sni: Option<&str>,
    ts: Timestamp,
) -> CertificateInfo {
    let Some(leaf_der) = chain.first() else {
        return CertStatus::Absent.info();
    };
    let now = i64::try_from(ts.as_nanos() / 1_000_000_000).unwrap_or(i64::MAX);
    if let Some(info) = ctx.verdicts.get(chain, sni, now) {
        return info;
    }
    let Ok((_, leaf)) = X509Certificate::from_der(leaf_der) else {
        return CertStatus::Unparsable.info();
    };
    let not_before = leaf.validity().not_before.timestamp();
    let not_after = leaf.validity().not_after.timestamp();
    let info = CertificateInfo {
        status: status(ctx, chain, &leaf, sni, now, (not_before, not_after)),
        subject_cn: common_name(leaf.subject()),
        issuer_cn: common_name(leaf.issuer()),
        not_after: rfc3339(not_after),
    };
    if let Some(window) = reusable_window(chain, (not_before, not_after), now) {
        ctx.verdicts.put(chain, sni, window, &info);
    }
    info
}

/// The moments around `now` at which the verdict is the same as at `now`: the span between
/// the validity edges of the certificates `status` looks at. The verdict depends on the time
/// only through which of them are inside their dates (webpki: `notBefore ≤ t ≤ notAfter`;
/// the path is built at `now` clamped into the leaf's dates, itself constant between edges),
/// so between two edges nothing changes. `None` when an intermediate cannot be read (its
/// dates are unknown, so nothing is reused).
fn reusable_window(chain: &[Vec<u8>], leaf: Window, now: i64) -> Option<Window> {
    let mut window = (i64::MIN, i64::MAX);
    let mut edges = |(not_before, not_after): Window| {
        // The first moment inside, and the first moment after.
        for edge in [not_before, not_after.saturating_add(1)] {
            if edge <= now {
                window.0 = window.0.max(edge);
            } else {
                window.1 = window.1.min(edge - 1);
            }
        }
    };
    edges(leaf);
    for der in chain.iter().skip(1).take(MAX_CHAIN_CERTS - 1) {
        let (_, cert) = X509Certificate::from_der(der).ok()?;
        edges((
            cert.validity().not_before.timestamp(),
            cert.validity().not_after.timestamp(),
        ));
    }
    Some(window)
}

fn status(
    ctx: &TlsContext,
    chain: &[Vec<u8>],
    leaf: &X509Certificate<'_>,
    sni: Option<&str>,
    now: i64,
    (not_before, not_after): (i64, i64),
) -> CertStatus {
    let leaf_der = CertificateDer::from(chain.first().map(Vec::as_slice).unwrap_or_default());
    let Ok(ee) = EndEntityCert::try_from(&leaf_der) else {
        return CertStatus::Unparsable;
    };
    let intermediates: Vec<CertificateDer<'_>> = chain
        .iter()
        .skip(1)
        .take(MAX_CHAIN_CERTS - 1)
        .map(|c| CertificateDer::from(c.as_slice()))
        .collect();
    // Build the path at a moment the leaf is valid, to tell trust problems from date ones.
    let chain_time = if not_before <= not_after {
        now.clamp(not_before, not_after)
    } else {
        now
    };
    let verify = |at: i64| {
        ee.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &ctx.anchors,
            &intermediates,
            unix_time(at),
            KeyUsage::server_auth(),
            None,
            None,
        )
        .map(|_| ())
    };
    let mut date_problem = None;
    match verify(chain_time) {
        Ok(()) => {}
        Err(webpki::Error::CertExpired { .. }) => date_problem = Some(CertStatus::Expired),
        Err(webpki::Error::CertNotValidYet { .. }) => date_problem = Some(CertStatus::NotYetValid),
        Err(webpki::Error::BadDer | webpki::Error::BadDerTime | webpki::Error::TrailingData(_)) => {
            return CertStatus::Unparsable;
        }
        Err(_) if leaf.subject().as_raw() == leaf.issuer().as_raw() => {
            return CertStatus::SelfSigned
        }
        Err(_) => return CertStatus::UnknownIssuer,
    }
    if let Some(sni) = sni {
        let matches = ServerName::try_from(sni)
            .map(|name| ee.verify_is_valid_for_subject_name(&name).is_ok())
            .unwrap_or(false);
        if !matches {
            return CertStatus::NameMismatch;
        }
    }
    if now > not_after {
        return CertStatus::Expired;
    }
    if now < not_before {
        return CertStatus::NotYetValid;
    }
    if let Some(problem) = date_problem {
        return problem;
    }
    // The leaf is in its dates; the rest of the chain must be too.
    match verify(now) {
        Ok(()) => CertStatus::Valid,
        Err(webpki::Error::CertNotValidYet { .. }) => CertStatus::NotYetValid,
        Err(_) => CertStatus::Expired,
    }
}

fn unix_time(secs: i64) -> UnixTime {
    UnixTime::since_unix_epoch(Duration::from_secs(u64::try_from(secs).unwrap_or(0)))
}

fn common_name(name: &x509_parser::x509::X509Name<'_>) -> Option<String> {
    name.iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_owned)
}

/// `2035-01-01T00:00:00Z`; `None` before 1970 (not representable by the formatter).
fn rfc3339(secs: i64) -> Option<String> {
    let secs = u64::try_from(secs).ok()?;
    Some(humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs)).to_string())
}

/// DER certificates of a PEM text (tests).
#[cfg(test)]
pub(crate) fn pem_chain(pem: &[u8]) -> Vec<Vec<u8>> {
    CertificateDer::pem_slice_iter(pem)
        .filter_map(Result::ok)
        .map(|c| c.as_ref().to_vec())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CA: &[u8] = include_bytes!("tls/testdata/ca.pem");
    const LEAF: &[u8] = include_bytes!("tls/testdata/leaf.pem");
    const EXPIRED: &[u8] = include_bytes!("tls/testdata/expired.pem");
    const FUTURE: &[u8] = include_bytes!("tls/testdata/future.pem");
    const WRONG_NAME: &[u8] = include_bytes!("tls/testdata/wrongname.pem");
    const SELF_SIGNED: &[u8] = include_bytes!("tls/testdata/selfsigned.pem");
    const BIG_CHAIN: &[u8] = include_bytes!("tls/testdata/bigchain.pem");
    const SNI: Option<&str> = Some("mail.example.test");

    /// 2026-06-01: inside the test PKI's 2025..2035 validity.
    fn in_validity() -> Timestamp {
        Timestamp::from_secs(1_780_272_000)
    }

    fn ctx() -> TlsContext {
        TlsContext::new(&[CA.to_vec()]).expect("test CA loads")
    }

    fn status_of(ctx: &TlsContext, pem: &[u8], sni: Option<&str>, ts: Timestamp) -> &'static str {
        assess(ctx, &pem_chain(pem), sni, ts).status.label()
    }

    #[test]
    fn valid_leaf_with_names_and_dates() {
        let info = assess(&ctx(), &pem_chain(LEAF), SNI, in_validity());
        assert_eq!(
            info,
            CertificateInfo {
                status: CertStatus::Valid,
                subject_cn: Some("mail.example.test".into()),
                issuer_cn: Some("mailtap Test Root CA".into()),
                not_after: Some("2035-01-01T00:00:00Z".into()),
            }
        );
    }

    #[test]
    fn each_status() {
        let ctx = ctx();
        let ts = in_validity();
        assert_eq!(status_of(&ctx, EXPIRED, SNI, ts), "expired");
        assert_eq!(status_of(&ctx, FUTURE, SNI, ts), "not_yet_valid");
        assert_eq!(status_of(&ctx, WRONG_NAME, SNI, ts), "name_mismatch");
        assert_eq!(
            status_of(&ctx, WRONG_NAME, None, ts),
            "valid",
            "no SNI: no name check"
        );
        assert_eq!(status_of(&ctx, SELF_SIGNED, SNI, ts), "self_signed");
        assert_eq!(status_of(&ctx, BIG_CHAIN, SNI, ts), "valid");
        assert_eq!(
            status_of(&ctx, LEAF, SNI, Timestamp::from_secs(2_200_000_000)),
            "expired"
        );
        assert_eq!(
            status_of(&ctx, LEAF, SNI, Timestamp::from_secs(1_600_000_000)),
            "not_yet_valid"
        );
        let mozilla_only = TlsContext::new(&[]).expect("roots load");
        assert_eq!(status_of(&mozilla_only, LEAF, SNI, ts), "unknown_issuer");
        assert_eq!(
            assess(&ctx, &[vec![0x30, 0x03, 1, 2, 3]], SNI, ts)
                .status
                .label(),
            "unparsable"
        );
        assert_eq!(assess(&ctx, &[], SNI, ts).status, CertStatus::Absent);
    }

    #[test]
    fn precedence_trust_before_name_before_dates() {
        let mozilla_only = TlsContext::new(&[]).expect("roots load");
        // Expired and from an unknown CA: unknown_issuer.
        assert_eq!(
            status_of(&mozilla_only, EXPIRED, SNI, in_validity()),
            "unknown_issuer"
        );
        // Wrong name and expired: name_mismatch.
        let late = Timestamp::from_secs(2_200_000_000);
        assert_eq!(status_of(&ctx(), WRONG_NAME, SNI, late), "name_mismatch");
        // Self-signed, wrong name, expired: self_signed.
        assert_eq!(
            status_of(&ctx(), SELF_SIGNED, Some("other.test"), late),
            "self_signed"
        );
    }

    #[test]
    fn chain_without_its_intermediates_is_unknown_issuer() {
        let chain = pem_chain(BIG_CHAIN);
        assert_eq!(chain.len(), 5);
        let leaf_only = &chain[..1];
        assert_eq!(
            assess(&ctx(), leaf_only, SNI, in_validity()).status.label(),
            "unknown_issuer"
        );
    }

    /// The verdict cache never changes a verdict: a context that has judged every chain at
    /// every moment before answers exactly as a fresh one, including across validity edges.
    #[test]
    fn cached_verdicts_equal_fresh_ones() {
        let shared = ctx();
        let moments = [
            1_600_000_000,
            1_780_272_000,
            2_200_000_000,
            1_780_272_000,
            1_600_000_000,
        ];
        for _ in 0..2 {
            for pem in [LEAF, EXPIRED, FUTURE, WRONG_NAME, SELF_SIGNED, BIG_CHAIN] {
                for sni in [SNI, Some("other.test"), None] {
                    for secs in moments {
                        let ts = Timestamp::from_secs(secs);
                        let chain = pem_chain(pem);
                        assert_eq!(
                            assess(&shared, &chain, sni, ts),
                            assess(&ctx(), &chain, sni, ts),
                            "{sni:?} at {secs}"
                        );
                    }
                }
            }
        }
        // One entry per chain and name, but for BIG_CHAIN (over 16 KiB: never stored).
        assert_eq!(shared.verdicts.len(), 5 * 3);
    }

    #[test]
    fn bad_anchor_pem_is_named() {
        let err = TlsContext::new(&[CA.to_vec(), b"not a pem".to_vec()]).unwrap_err();
        assert_eq!(err.to_string(), "trust anchor PEM #1: no CERTIFICATE block");
        assert_eq!(
            TlsContext::only(&[CA.to_vec()])
                .map(|c| c.anchors.len())
                .ok(),
            Some(1)
        );
    }
}
