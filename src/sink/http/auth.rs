//! HTTP basic authentication against bcrypt hashes (`basic_auth_users`).
//!
//! bcrypt is slow by design (tens of milliseconds of CPU), and Prometheus sends the same
//! credentials on every scrape, so a successful check is remembered as a SHA-256 of user,
//! password and hash; a wrong password always pays the full bcrypt cost. An unknown user is
//! checked against a configured hash anyway, so the time taken does not tell which user
//! names exist.
//!
//! What a client who guesses passwords can cost the sensor is bounded by [`Gate`]: one bcrypt
//! check at a time for everyone (on a thread of the lowest priority, see `priority.rs`), a
//! short queue for it, and a few failed logins per client before the next ones are refused
//! without a check (429) until time has passed.

use super::clients::Client;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Remembered successful logins before the memory is cleared.
const REMEMBERED: usize = 64;
/// bcrypt checks running at once, for all clients.
const CHECKS_AT_ONCE: usize = 1;
/// Logins waiting for the check; beyond it a login is answered 503 at once.
const QUEUE: usize = 16;
/// How long a login waits for its turn before it gets 503.
const QUEUE_WAIT: Duration = Duration::from_secs(5);
/// Failed logins a client may have in a row...
pub const FAILURES_BURST: u32 = 5;
/// ...and one more each time this much time has passed.
pub const FAILURE_REFILL: Duration = Duration::from_secs(12);
/// Clients whose failures are remembered; when more fail at once, new ones are refused
/// until some have waited long enough to be forgotten.
const TRACKED_CLIENTS: usize = 4096;

pub struct BasicAuth {
    users: BTreeMap<String, String>,
    remembered: Mutex<HashSet<[u8; 32]>>,
}

/// A login that needs the bcrypt check.
pub struct Candidate {
    password: String,
    hash: String,
    known: bool,
    digest: [u8; 32],
}

/// What the header alone says.
pub enum Quick {
    /// Remembered: let in.
    Pass,
    /// No or malformed credentials: refuse, no check needed.
    Fail,
    Check(Candidate),
}

impl BasicAuth {
    /// `None` when there are no users: then every request is let in.
    pub fn new(users: BTreeMap<String, String>) -> Option<Self> {
        (!users.is_empty()).then(|| BasicAuth {
            users,
            remembered: Mutex::new(HashSet::new()),
        })
    }

    /// Decide from the `Authorization` header alone, where possible (cheap: no bcrypt).
    pub fn quick(&self, authorization: Option<&[u8]>) -> Quick {
        let Some((user, password)) = authorization.and_then(parse_basic) else {
            return Quick::Fail;
        };
        let known = self.users.get(&user);
        // An unknown user is checked against some configured hash, and then refused anyway.
        let Some(hash) = known.or_else(|| self.users.values().next()) else {
            return Quick::Fail;
        };
        let digest = remember_key(&user, &password, hash);
        if known.is_some() && self.memory().contains(&digest) {
            return Quick::Pass;
        }
        Quick::Check(Candidate {
            password,
            hash: hash.clone(),
            known: known.is_some(),
            digest,
        })
    }

    /// The bcrypt check (blocking: off the event loop); a success is remembered.
    pub fn verify(&self, c: &Candidate) -> bool {
        let ok = bcrypt::verify(c.password.as_bytes(), &c.hash).unwrap_or(false) && c.known;
        if ok {
            let mut m = self.memory();
            if m.len() >= REMEMBERED {
                m.clear();
            }
            m.insert(c.digest);
        }
        ok
    }

    /// Both steps, blocking.
    #[cfg(test)]
    pub fn check(&self, authorization: Option<&[u8]>) -> bool {
        match self.quick(authorization) {
            Quick::Pass => true,
            Quick::Fail => false,
            Quick::Check(c) => self.verify(&c),
        }
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, HashSet<[u8; 32]>> {
        self.remembered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// The answer to a request's credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// 401.
    Unauthorized,
    /// 429: this client failed too often; try again after this many seconds.
    TooManyFailures(u64),
    /// 503: too many logins wait for their check.
    Busy,
}

/// Basic authentication with its costs bounded (see the module doc).
pub struct Gate {
    auth: BasicAuth,
    checks: Semaphore,
    waiting: AtomicUsize,
    failures: Mutex<Failures>,
}

impl Gate {
    pub fn new(auth: BasicAuth) -> Arc<Gate> {
        Arc::new(Gate {
            auth,
            checks: Semaphore::new(CHECKS_AT_ONCE),
            waiting: AtomicUsize::new(0),
            failures: Mutex::new(Failures::default()),
        })
    }

    pub async fn admit(
        self: &Arc<Self>,
        client: Client,
        authorization: Option<Vec<u8>>,
    ) -> Verdict {
        let candidate = match self.auth.quick(authorization.as_deref()) {
            Quick::Pass => return Verdict::Allowed,
            Quick::Fail => return Verdict::Unauthorized,
            Quick::Check(c) => c,
        };
        if let Some(wait) = self.failures().refused(client, Instant::now()) {
            return Verdict::TooManyFailures(wait.as_secs().max(1));
        }
        if self.waiting.fetch_add(1, Ordering::Relaxed) >= QUEUE {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            return Verdict::Busy;
        }
        let turn = tokio::time::timeout(QUEUE_WAIT, self.checks.acquire()).await;
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        let Ok(Ok(_turn)) = turn else {
            return Verdict::Busy;
        };
        let gate = Arc::clone(self);
        let ok = tokio::task::spawn_blocking(move || gate.auth.verify(&candidate))
            .await
            .unwrap_or(false);
        if ok {
            Verdict::Allowed
        } else {
            self.failures().failed(client, Instant::now());
            Verdict::Unauthorized
        }
    }

    fn failures(&self) -> std::sync::MutexGuard<'_, Failures> {
        self.failures.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Failed logins per client as token buckets: [`FAILURES_BURST`] tokens, one back every
/// [`FAILURE_REFILL`]; a failure takes one, and a client without one is refused.
#[derive(Default)]
struct Failures {
    /// Tokens left and when they were counted.
    by_client: HashMap<Client, (u32, Instant)>,
}

impl Failures {
    fn tokens(&self, client: Client, now: Instant) -> u32 {
        self.by_client
            .get(&client)
            .map_or(FAILURES_BURST, |&(left, at)| refilled(left, at, now))
    }

    /// When this client may try again, if it may not now.
    fn refused(&mut self, client: Client, now: Instant) -> Option<Duration> {
        if !self.by_client.contains_key(&client) && self.by_client.len() >= TRACKED_CLIENTS {
            self.forget_recovered(now);
            if self.by_client.len() >= TRACKED_CLIENTS {
                return Some(FAILURE_REFILL);
            }
        }
        match self.tokens(client, now) {
            0 => {
                let at = self.by_client.get(&client).map_or(now, |&(_, at)| at);
                Some(FAILURE_REFILL.saturating_sub(now.saturating_duration_since(at)))
            }
            _ => None,
        }
    }

    fn failed(&mut self, client: Client, now: Instant) {
        let left = self.tokens(client, now).saturating_sub(1);
        // The time a token was last given back, so partial refills are not lost.
        let at = match self.by_client.get(&client) {
            Some(&(before, at)) if refilled(before, at, now) < FAILURES_BURST => {
                let steps = refills(at, now);
                at + FAILURE_REFILL * steps
            }
            _ => now,
        };
        self.by_client.insert(client, (left, at));
    }

    /// Drop clients whose tokens are all back: they are as good as new.
    fn forget_recovered(&mut self, now: Instant) {
        self.by_client
            .retain(|_, &mut (left, at)| refilled(left, at, now) < FAILURES_BURST);
    }
}

fn refills(at: Instant, now: Instant) -> u32 {
    let elapsed = now.saturating_duration_since(at).as_millis();
    u32::try_from(elapsed / FAILURE_REFILL.as_millis()).unwrap_or(u32::MAX)
}

fn refilled(left: u32, at: Instant, now: Instant) -> u32 {
    left.saturating_add(refills(at, now)).min(FAILURES_BURST)
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

    fn client(n: u8) -> Client {
        Client::of(std::net::IpAddr::from([192, 0, 2, n]))
    }

    #[test]
    fn right_password_passes_twice_wrong_ones_never() {
        let a = auth();
        assert!(a.check(Some(&header("prometheus", "s3cret"))));
        assert!(matches!(
            a.quick(Some(&header("prometheus", "s3cret"))),
            Quick::Pass
        ));
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

    #[test]
    fn failures_are_limited_per_client_and_come_back_with_time() {
        let mut f = Failures::default();
        let t0 = Instant::now();
        for _ in 0..FAILURES_BURST {
            assert_eq!(f.refused(client(1), t0), None);
            f.failed(client(1), t0);
        }
        assert_eq!(f.refused(client(1), t0), Some(FAILURE_REFILL));
        assert_eq!(f.refused(client(2), t0), None, "others are not limited");
        let later = t0 + FAILURE_REFILL;
        assert_eq!(f.refused(client(1), later), None, "one token back");
        f.failed(client(1), later);
        assert!(f.refused(client(1), later).is_some());
        let much_later = later + FAILURE_REFILL * FAILURES_BURST;
        f.forget_recovered(much_later);
        assert!(f.by_client.is_empty());
    }

    #[test]
    fn remembered_clients_are_bounded() {
        let mut f = Failures::default();
        let t0 = Instant::now();
        for i in 0..TRACKED_CLIENTS as u32 {
            let c = Client::of(std::net::IpAddr::from(i.to_be_bytes()));
            f.failed(c, t0);
        }
        assert_eq!(f.by_client.len(), TRACKED_CLIENTS);
        let newcomer = Client::of(std::net::IpAddr::from([203, 0, 113, 1]));
        assert!(f.refused(newcomer, t0).is_some(), "full: refused for now");
        // Once the others have recovered, they are forgotten and the newcomer may try.
        let later = t0 + FAILURE_REFILL;
        assert_eq!(f.refused(newcomer, later), None);
        assert!(f.by_client.is_empty());
    }

    #[test]
    fn one_check_at_a_time_and_429_after_the_burst() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let gate = Gate::new(auth());
        rt.block_on(async {
            for _ in 0..FAILURES_BURST {
                let v = gate
                    .admit(client(9), Some(header("prometheus", "no")))
                    .await;
                assert_eq!(v, Verdict::Unauthorized);
            }
            let v = gate
                .admit(client(9), Some(header("prometheus", "no")))
                .await;
            assert!(matches!(v, Verdict::TooManyFailures(s) if s >= 1), "{v:?}");
            // The right password from a limited client is not even checked...
            let v = gate
                .admit(client(9), Some(header("prometheus", "s3cret")))
                .await;
            assert!(matches!(v, Verdict::TooManyFailures(_)), "{v:?}");
            // ...but another client gets in, and then it is remembered for everyone.
            let v = gate
                .admit(client(8), Some(header("prometheus", "s3cret")))
                .await;
            assert_eq!(v, Verdict::Allowed);
            let v = gate
                .admit(client(9), Some(header("prometheus", "s3cret")))
                .await;
            assert_eq!(v, Verdict::Allowed);
        });
    }
}
