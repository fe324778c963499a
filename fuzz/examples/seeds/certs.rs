//! The certificate chain in a server's cleartext TLS flight (TLS ≤ 1.2; TLS 1.3 encrypts it):
//! records (RFC 8446 §5.1) up to its ChangeCipherSpec, handshake messages across them, and the
//! first Certificate message's list (RFC 5246 §7.4.2).

const CHANGE_CIPHER_SPEC: u8 = 20;
const HANDSHAKE: u8 = 22;
const CERTIFICATE: u8 = 11;

/// The DER certificates of the first Certificate message in `server`'s bytes.
pub fn chain(server: &[u8]) -> Option<Vec<Vec<u8>>> {
    let handshake = handshake_bytes(server);
    let mut rest = handshake.as_slice();
    while let [kind, a, b, c, tail @ ..] = rest {
        let len = u24(*a, *b, *c);
        let body = tail.get(..len)?;
        if *kind == CERTIFICATE {
            return certificates(body);
        }
        rest = tail.get(len..)?;
    }
    None
}

/// The handshake records' payloads, joined, until the server's keys change.
fn handshake_bytes(mut records: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let [kind, _, _, hi, lo, tail @ ..] = records {
        let len = usize::from(u16::from_be_bytes([*hi, *lo]));
        let Some(fragment) = tail.get(..len) else {
            break;
        };
        match *kind {
            CHANGE_CIPHER_SPEC => break,
            HANDSHAKE => out.extend_from_slice(fragment),
            _ => {}
        }
        records = &tail[len..];
    }
    out
}

fn certificates(body: &[u8]) -> Option<Vec<Vec<u8>>> {
    let [a, b, c, list @ ..] = body else {
        return None;
    };
    let mut rest = list.get(..u24(*a, *b, *c))?;
    let mut certs = Vec::new();
    while let [a, b, c, tail @ ..] = rest {
        let len = u24(*a, *b, *c);
        certs.push(tail.get(..len)?.to_vec());
        rest = tail.get(len..)?;
    }
    (!certs.is_empty()).then_some(certs)
}

fn u24(a: u8, b: u8, c: u8) -> usize {
    usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c)
}
