//! The signals a sensor is sent, handled the same way in every mode:
//!
//! - SIGINT and SIGTERM set a flag: a live capture, a replay (between files) and `--linger`
//!   notice it, close every open session into the outputs, write them, and exit 0. A second
//!   signal, while the first is being handled, ends the process at once (exit status 1).
//! - SIGHUP closes and reopens every file output (after logrotate moved it away), and does
//!   nothing else: capture and replay go on, and no session is lost.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// What SIGHUP runs: reopen one output (and say on stderr if that failed).
pub type Reopen = Box<dyn Fn() + Send>;

/// The installed handlers.
pub struct Signals {
    stop: Arc<AtomicBool>,
    reopen: Arc<Mutex<Vec<Reopen>>>,
}

/// How often [`Signals::sleep`] looks at the stop flag.
const LOOK_EVERY: Duration = Duration::from_millis(50);

impl Signals {
    /// Install the handlers; do it first, so that no SIGHUP ends the process at its start.
    pub fn install() -> io::Result<Signals> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        use signal_hook::flag;
        let stop = Arc::new(AtomicBool::new(false));
        for sig in [SIGINT, SIGTERM] {
            // In this order: the shutdown fires only if the flag was already set before.
            flag::register_conditional_shutdown(sig, 1, Arc::clone(&stop))?;
            flag::register(sig, Arc::clone(&stop))?;
        }
        let reopen: Arc<Mutex<Vec<Reopen>>> = Arc::default();
        let mut hangups = signal_hook::iterator::Signals::new([SIGHUP])?;
        let outputs = Arc::clone(&reopen);
        std::thread::Builder::new()
            .name("sighup".into())
            .spawn(move || {
                for _ in hangups.forever() {
                    for reopen in outputs
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .iter()
                    {
                        reopen();
                    }
                }
            })?;
        Ok(Signals { stop, reopen })
    }

    /// The flag SIGINT and SIGTERM set.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.stop)
    }

    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Run `reopen` on every SIGHUP.
    pub fn on_hangup(&self, reopen: Reopen) {
        self.reopen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(reopen);
    }

    /// Take the next SIGINT/SIGTERM as a first one again: after a replay that a signal ended,
    /// the signal that ends `--linger` is not a second one.
    pub fn rearm(&self) {
        self.stop.store(false, Ordering::Relaxed);
    }

    /// Sleep for `d`, or until SIGINT/SIGTERM; true when a signal ended it.
    pub fn sleep(&self, d: Duration) -> bool {
        let until = Instant::now() + d;
        loop {
            if self.stopped() {
                return true;
            }
            match until.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => std::thread::sleep(left.min(LOOK_EVERY)),
                _ => return false,
            }
        }
    }
}
