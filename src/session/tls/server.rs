//! The server's cleartext flight: ServerHello / HelloRetryRequest (RFC 8446 §4.1.3–4),
//! ServerKeyExchange (RFC 5246 §7.4.3, RFC 8422 §5.4) and Certificate (RFC 5246 §7.4.2).

use super::client_hello::{EXT_KEY_SHARE, EXT_PRE_SHARED_KEY, EXT_SUPPORTED_VERSIONS};
use super::records::Reader;
use crate::session::cert::MAX_CHAIN_CERTS;
use crate::session::cipher::KeyExchange;
use crate::session::dh_groups::DhGroup;
use tls_parser::{ECParametersContent, TlsMessageHandshake};

/// SHA-256("HelloRetryRequest"): the random of a ServerHello that is a HelloRetryRequest.
const HRR_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7b, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct ServerHello {
    /// The negotiated version: supported_versions when present, else the legacy field.
    pub version: u16,
    pub session_id: Vec<u8>,
    pub suite: u16,
    /// A HelloRetryRequest, not a real ServerHello.
    pub hrr: bool,
    /// key_share: the server's share group (ServerHello) or the selected group (HRR).
    pub key_share_group: Option<u16>,
    /// pre_shared_key: the server accepted a PSK (resumption in TLS 1.3).
    pub pre_shared_key: bool,
}

impl ServerHello {
    pub fn parse(body: &[u8]) -> Option<ServerHello> {
        let (rest, sh) = tls_parser::parse_tls_handshake_server_hello(body).ok()?;
        if !rest.is_empty() {
            return None;
        }
        let mut out = ServerHello {
            version: sh.version.0,
            session_id: sh.session_id.unwrap_or_default().to_vec(),
            suite: sh.cipher.0,
            hrr: sh.random == HRR_RANDOM.as_slice(),
            ..ServerHello::default()
        };
        let mut r = Reader(sh.ext.unwrap_or_default());
        while !r.is_empty() {
            let ty = r.u16()?;
            let mut d = Reader(r.vec16()?);
            match ty {
                EXT_SUPPORTED_VERSIONS => out.version = d.u16()?,
                EXT_KEY_SHARE => out.key_share_group = Some(d.u16()?),
                EXT_PRE_SHARED_KEY => out.pre_shared_key = true,
                _ => {}
            }
        }
        Some(out)
    }
}

/// What the ServerKeyExchange says about the key exchange's strength.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum KxParams {
    /// A named (EC or FFDHE) group.
    Named(u16),
    /// Explicit finite-field DH parameters: the prime's size in bits, and its group when the
    /// prime is a well-known one.
    DhPrime { bits: u32, group: Option<DhGroup> },
}

/// The parameters of a ServerKeyExchange body for `kx`; PSK flavours start with an identity
/// hint (RFC 4279 §2, RFC 5489 §2). `None` when there is nothing to learn or it is malformed.
pub(super) fn server_key_exchange(body: &[u8], kx: KeyExchange, psk: bool) -> Option<KxParams> {
    let mut r = Reader(body);
    if psk {
        r.vec16()?;
    }
    match kx {
        KeyExchange::Ecdhe => {
            let (_, p) = tls_parser::parse_ecdh_params(r.0).ok()?;
            match p.curve_params.params_content {
                ECParametersContent::NamedGroup(g) => Some(KxParams::Named(g.0)),
                ECParametersContent::ExplicitPrime(_) => None,
            }
        }
        KeyExchange::Dhe => {
            let (_, p) = tls_parser::parse_dh_params(r.0).ok()?;
            Some(KxParams::DhPrime {
                bits: bit_length(p.dh_p),
                group: DhGroup::of_prime(p.dh_p),
            })
        }
        _ => None,
    }
}

/// Significant bits of a big-endian unsigned integer.
fn bit_length(n: &[u8]) -> u32 {
    let Some(pos) = n.iter().position(|b| *b != 0) else {
        return 0;
    };
    let rest = n.get(pos..).unwrap_or_default();
    let first = rest.first().copied().unwrap_or(0);
    let len = u32::try_from(rest.len()).unwrap_or(u32::MAX / 8);
    len.saturating_sub(1).saturating_mul(8) + (8 - first.leading_zeros())
}

/// The DER certificates of a TLS ≤ 1.2 Certificate body, leaf first, at most
/// [`MAX_CHAIN_CERTS`]. `None` when the message does not parse.
pub(super) fn certificate_chain(body: &[u8], cut: bool) -> Option<Vec<Vec<u8>>> {
    if cut {
        return cut_certificate_chain(body);
    }
    let (rest, msg) = tls_parser::parse_tls_handshake_msg_certificate(body).ok()?;
    if !rest.is_empty() {
        return None;
    }
    let TlsMessageHandshake::Certificate(c) = msg else {
        return None;
    };
    Some(
        c.cert_chain
            .iter()
            .take(MAX_CHAIN_CERTS)
            .map(|raw| raw.data.to_vec())
            .collect(),
    )
}

/// A TLS ≤ 1.2 Certificate message cut short (RFC 5246 §7.4.2: a u24 list of u24-prefixed
/// certificates): the whole certificates before the cut, leaf first. `None` if not even the
/// leaf is whole.
fn cut_certificate_chain(body: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut r = Reader(body);
    r.u24()?;
    let mut chain = Vec::new();
    while chain.len() < MAX_CHAIN_CERTS {
        let Some(len) = r.u24() else { break };
        let Some(cert) = r.take(len) else { break };
        chain.push(cert.to_vec());
    }
    (!chain.is_empty()).then_some(chain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_lengths() {
        assert_eq!(bit_length(&[]), 0);
        assert_eq!(bit_length(&[0, 0]), 0);
        assert_eq!(bit_length(&[0x01]), 1);
        assert_eq!(bit_length(&[0, 0x80, 0]), 16);
        let mut p2048 = vec![0xff; 256];
        assert_eq!(bit_length(&p2048), 2048);
        p2048[0] = 0x7f;
        assert_eq!(bit_length(&p2048), 2047);
    }

    #[test]
    fn ske_named_curve_and_dh_prime() {
        let ecdhe = [3, 0x00, 0x1d, 1, 0xaa, 0, 0];
        assert_eq!(
            server_key_exchange(&ecdhe, KeyExchange::Ecdhe, false),
            Some(KxParams::Named(29))
        );
        let mut dhe = vec![0, 128];
        dhe.extend([0xffu8; 128]);
        dhe.extend([0, 1, 2, 0, 1, 5]);
        assert_eq!(
            server_key_exchange(&dhe, KeyExchange::Dhe, false),
            Some(KxParams::DhPrime {
                bits: 1024,
                group: None
            })
        );
        let mut psk = vec![0, 2, b'h', b'i'];
        psk.extend(ecdhe);
        assert_eq!(
            server_key_exchange(&psk, KeyExchange::Ecdhe, true),
            Some(KxParams::Named(29))
        );
        assert_eq!(
            server_key_exchange(&[3, 0], KeyExchange::Ecdhe, false),
            None
        );
    }
}
