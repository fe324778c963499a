//! SIGINT and SIGTERM as a flag: how a live capture and an endless replay (`--loop 0`) learn
//! that they should stop, close every open session into the outputs, and exit.

use std::io;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// A flag that SIGINT and SIGTERM set. A second signal, while the first is being handled,
/// ends the process at once (exit status 1) instead of waiting for the flush.
pub fn stop_on_signals() -> io::Result<Arc<AtomicBool>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    use signal_hook::flag;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [SIGINT, SIGTERM] {
        // In this order: the shutdown fires only if the flag was already set before.
        flag::register_conditional_shutdown(sig, 1, Arc::clone(&stop))?;
        flag::register(sig, Arc::clone(&stop))?;
    }
    Ok(stop)
}
