//! HTTP basic authentication against bcrypt hashes (`basic_auth_users`).
//!
//! bcrypt is slow by design (tens of milliseconds), and Prometheus sends the same credentials
//! on every scrape, so a successful check is remembered as a SHA-256 of user, password and
//! hash; a wrong password always pays the full bcrypt cost. An unknown user is checked against
//! a configured hash anyway, so the time taken does not tell which user names exist.

use base64::Engine as _;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashSet};
use std::sync::{Mutex, PoisonError};

/// Remembered successful logins before the memory is cleared.
const REMEMBERED: usize = 64;

pub struct BasicAuth {
    users: BTreeMap<String, String>,
    remembered: Mutex<HashSet<[u8; 32]>>,
}

impl BasicAuth {
    /// `None` when there are no users: then every request is let in.
    pub fn new(users: BTreeMap<String, String>) -> Option<Self> {
        (!users.is_empty()).then(|| BasicAuth {
            users,
            remembered: Mutex::new(HashSet::new()),
        })
    }

    /// Does this `Authorization` header value name a user with the right password?
    /// Blocking (bcrypt): call it off the event loop.
    pub fn check(&self, authorization: Option<&[u8]>) -> bool {
        let Some((user, password)) = authorization.and_then(parse_basic) else {
            return false;
        };
        let known = self.users.get(&user);
        // An unknown user is checked against some configured hash, and then refused anyway.
        let Some(hash) = known.or_else(|| self.users.values().next()) else {
            return false;
        };
        let digest = remember_key(&user, &password, hash);
        let memory = || {
            self.remembered
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
        };
        if known.is_some() && memory().contains(&digest) {
            return true;
        }
        let ok = bcrypt::verify(password.as_bytes(), hash).unwrap_or(false) && known.is_some();
        if ok {
            let mut m = memory();
            if m.len() >= REMEMBERED {
                m.clear();
            }
            m.insert(digest);
        }
        ok
    }
}

fn remember_key(user: &str, password: &str, hash: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    for part in [user, password, hash] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    h.finalize().into()
}

/// `Basic base64(user:password)` → (user, password).
fn parse_basic(value: &[u8]) -> Option<(String, String)> {
    let value = std::str::from_utf8(value).ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(user: &str, password: &str) -> Vec<u8> {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        format!("Basic {token}").into_bytes()
    }

    fn auth() -> BasicAuth {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        BasicAuth::new([("prometheus".to_string(), hash)].into()).unwrap()
    }

    #[test]
    fn right_password_passes_twice_wrong_ones_never() {
        let a = auth();
        assert!(a.check(Some(&header("prometheus", "s3cret"))));
        assert!(a.check(Some(&header("prometheus", "s3cret"))));
        assert!(!a.check(Some(&header("prometheus", "wrong"))));
        assert!(!a.check(Some(&header("someone", "s3cret"))));
        assert!(!a.check(None));
        assert!(!a.check(Some(b"Bearer abc")));
        assert!(!a.check(Some(b"Basic !!!")));
    }

    #[test]
    fn no_users_means_no_auth() {
        assert!(BasicAuth::new(BTreeMap::new()).is_none());
    }
}
