//! The ClientHello (RFC 8446 §4.1.2, RFC 5246 §7.4.1.2) and its SSLv2-framed ancestor
//! (RFC 5246 Appendix E.2): what the client offered, kept for the verdict and JA4.

use super::records::Reader;

pub(super) const EXT_SERVER_NAME: u16 = 0x0000;
pub(super) const EXT_SUPPORTED_GROUPS: u16 = 0x000a;
pub(super) const EXT_SIGNATURE_ALGORITHMS: u16 = 0x000d;
pub(super) const EXT_ALPN: u16 = 0x0010;
pub(super) const EXT_PRE_SHARED_KEY: u16 = 0x0029;
pub(super) const EXT_SUPPORTED_VERSIONS: u16 = 0x002b;
pub(super) const EXT_KEY_SHARE: u16 = 0x0033;

/// At most this many cipher suites or extensions are kept (a ClientHello is < 64 KiB anyway).
const MAX_ITEMS: usize = 512;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct ClientHello {
    /// The SSLv2-framed form (no extensions possible).
    pub sslv2: bool,
    pub legacy_version: u16,
    pub session_id: Vec<u8>,
    pub suites: Vec<u16>,
    /// Extension types, in the order sent.
    pub extensions: Vec<u16>,
    /// The first host_name of server_name, when it is a plausible DNS name.
    pub sni: Option<String>,
    /// The first ALPN protocol identifier.
    pub alpn_first: Option<Vec<u8>>,
    pub supported_versions: Vec<u16>,
    pub groups: Vec<u16>,
    pub signature_algorithms: Vec<u16>,
}

impl ClientHello {
    /// The body of a handshake message of type client_hello (1).
    pub fn parse(body: &[u8]) -> Option<ClientHello> {
        let (rest, hello) = tls_parser::parse_tls_handshake_client_hello(body).ok()?;
        if !rest.is_empty() {
            return None;
        }
        let mut ch = ClientHello {
            sslv2: false,
            legacy_version: hello.version.0,
            session_id: hello.session_id.unwrap_or_default().to_vec(),
            suites: hello.ciphers.iter().take(MAX_ITEMS).map(|c| c.0).collect(),
            ..ClientHello::default()
        };
        if let Some(ext) = hello.ext {
            ch.read_extensions(ext)?;
        }
        Some(ch)
    }

    fn read_extensions(&mut self, ext: &[u8]) -> Option<()> {
        let mut r = Reader(ext);
        while !r.is_empty() {
            let ty = r.u16()?;
            let data = r.vec16()?;
            if self.extensions.len() < MAX_ITEMS {
                self.extensions.push(ty);
            }
            let mut d = Reader(data);
            match ty {
                EXT_SERVER_NAME => self.sni = server_name(d),
                EXT_SUPPORTED_GROUPS => self.groups = Reader(d.vec16()?).u16_list(),
                EXT_SIGNATURE_ALGORITHMS => {
                    self.signature_algorithms = Reader(d.vec16()?).u16_list();
                }
                EXT_ALPN => {
                    let mut list = Reader(d.vec16()?);
                    self.alpn_first = list.vec8().map(<[u8]>::to_vec);
                }
                EXT_SUPPORTED_VERSIONS => self.supported_versions = Reader(d.vec8()?).u16_list(),
                _ => {}
            }
        }
        Some(())
    }

    /// The body of an SSLv2 CLIENT-HELLO record: msg type 1, version, three lengths, then
    /// 3-byte cipher specs (TLS suites are those whose first byte is 0), session id, challenge.
    pub fn parse_sslv2(body: &[u8]) -> Option<ClientHello> {
        let mut r = Reader(body);
        if r.u8()? != 1 {
            return None;
        }
        let legacy_version = r.u16()?;
        let specs_len = usize::from(r.u16()?);
        let sid_len = usize::from(r.u16()?);
        let challenge_len = usize::from(r.u16()?);
        if specs_len % 3 != 0 {
            return None;
        }
        let mut specs = Reader(r.take(specs_len)?);
        let session_id = r.take(sid_len)?.to_vec();
        r.take(challenge_len)?;
        let mut suites = Vec::new();
        while let (Some(hi), Some(lo)) = (specs.u8(), specs.u16()) {
            if hi == 0 && suites.len() < MAX_ITEMS {
                suites.push(lo);
            }
        }
        Some(ClientHello {
            sslv2: true,
            legacy_version,
            session_id,
            suites,
            ..ClientHello::default()
        })
    }

    /// The highest version offered: supported_versions (GREASE ignored) or the legacy field.
    pub fn max_version(&self) -> u16 {
        self.supported_versions
            .iter()
            .copied()
            .filter(|v| !crate::session::cipher::is_grease(*v))
            .max()
            .unwrap_or(self.legacy_version)
    }
}

/// The first host_name entry (RFC 6066 §3), kept only when it looks like a DNS name: at most
/// 253 visible ASCII characters (anything else is hostile or broken, and never recorded).
fn server_name(mut d: Reader<'_>) -> Option<String> {
    let mut list = Reader(d.vec16()?);
    while !list.is_empty() {
        let name_type = list.u8()?;
        let name = list.vec16()?;
        if name_type == 0 {
            let ok = !name.is_empty()
                && name.len() <= 253
                && name
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
            return ok.then(|| String::from_utf8_lossy(name).to_ascii_lowercase());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslv2_client_hello() {
        // SSLv2 CLIENT-HELLO offering TLS 1.0, two TLS suites and one SSLv2-only spec.
        let body = [
            1, 3, 1, 0, 9, 0, 0, 0, 16, //
            0x00, 0x00, 0x2f, 0x00, 0x00, 0x35, 0x07, 0x00, 0xc0, //
            1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
        ];
        let ch = ClientHello::parse_sslv2(&body).expect("parses");
        assert!(ch.sslv2);
        assert_eq!(ch.legacy_version, 0x0301);
        assert_eq!(ch.suites, [0x002f, 0x0035]);
        assert_eq!(ClientHello::parse_sslv2(&body[..20]), None);
    }

    #[test]
    fn truncated_extensions_fail() {
        // version, random, empty session id, one suite, null compression, extensions cut short.
        let mut body = vec![3, 3];
        body.extend([0u8; 32]);
        body.extend([0, 0, 2, 0x13, 0x01, 1, 0, 0, 6, 0, 0, 0, 9]);
        assert_eq!(ClientHello::parse(&body), None);
    }

    #[test]
    fn server_name_filter() {
        let ok = [0, 9, 0, 0, 6, b'M', b'x', b'.', b'o', b'r', b'g'];
        assert_eq!(server_name(Reader(&ok)).as_deref(), Some("mx.org"));
        let bad = [0, 7, 0, 0, 4, b'a', b'\n', b'b', b'c'];
        assert_eq!(server_name(Reader(&bad)), None);
    }
}
