//! The HTTP server must never take CPU from the analysis: a scrape storm, a TLS handshake
//! flood or a password guesser should cost the capture nothing. Its threads run at a lower
//! scheduling priority (`nice`) than the rest of the process, which on Linux is a property
//! of each thread: the event loop [`EVENT_LOOP_LOWER`] steps lower (it still gets a share
//! when every core is busy, so `/metrics` keeps answering), the blocking pool (bcrypt checks,
//! rendering `/servers`) at the lowest priority there is, which gets CPU only when nothing
//! else wants it. Priorities are only ever lowered, relative to the process's own (a sensor
//! started with `Nice=5` gets its event loop at 15), so no privilege is needed.

/// nice 10 for a process at 0: weight 110 against the analysis threads' 1024, about a tenth
/// of a busy core.
pub const EVENT_LOOP_LOWER: i32 = 10;
/// The lowest priority: nice 19, weight 15, about 1.5 % of a busy core.
pub const LOWEST: i32 = 19;

/// Lower the calling thread's priority by `steps` (to nice 19 at most). Elsewhere than on
/// Linux this would lower the whole process, so it does nothing there.
pub fn lower_this_thread(steps: i32) {
    #[cfg(target_os = "linux")]
    {
        let tid = rustix::thread::gettid();
        let now = rustix::process::getpriority_process(Some(tid)).unwrap_or(0);
        // A failure leaves the thread at the process's priority: it still serves.
        let _ = rustix::process::setpriority_process(Some(tid), (now + steps).min(LOWEST));
    }
    #[cfg(not(target_os = "linux"))]
    let _ = steps;
}

/// The calling thread's nice value (Linux), for tests.
#[cfg(all(test, target_os = "linux"))]
pub fn this_thread() -> i32 {
    rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap_or(0)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn lowers_only_the_calling_thread() {
        let before = this_thread();
        let (once, twice) = std::thread::spawn(|| {
            lower_this_thread(5);
            let once = this_thread();
            lower_this_thread(LOWEST);
            (once, this_thread())
        })
        .join()
        .unwrap();
        assert_eq!(once, (before + 5).min(LOWEST), "relative to where it was");
        assert_eq!(twice, LOWEST, "never past the lowest");
        assert_eq!(this_thread(), before, "the other threads keep theirs");
    }
}
