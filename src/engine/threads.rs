//! Starting and ending the engine's threads: the workers and the one sink thread, the same
//! for every way packets reach the workers.

use super::{Finished, Health, Sink};
use crossbeam_channel::{Receiver, Select, TryRecvError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

/// How many times a worker with nothing to do looks again, yielding its core, before it
/// sleeps (about 50 µs): work comes every few microseconds while a file is read, and waking a
/// sleeping thread costs the one that wakes it a system call each time.
pub(super) const SPINS: usize = 64;

/// `std::thread::spawn` with a name, so `top -H` and profilers tell the threads apart. Like
/// `spawn`, it panics when the system cannot start a thread: that happens at startup, before
/// any packet, and nothing can run without it.
pub(super) fn named<T: Send + 'static>(
    name: String,
    f: impl FnOnce() -> T + Send + 'static,
) -> JoinHandle<T> {
    std::thread::Builder::new()
        .name(name)
        .spawn(f)
        .unwrap_or_else(|e| panic!("cannot start a thread: {e}"))
}

/// The sink thread: every finished connection, from every worker, until they are all gone.
pub(super) fn sink<S: Sink>(mut sink: S, finished: Receiver<Finished>) -> JoinHandle<S> {
    named("sink".to_owned(), move || {
        for f in finished {
            sink.finished(f);
        }
        sink
    })
}

/// Wait for the workers (told to end already) and then the sink; the health is `health` plus
/// each worker's. A thread's panic is raised again here.
pub(super) fn join<S>(
    workers: Vec<(JoinHandle<()>, Arc<Mutex<Health>>)>,
    mut health: Health,
    sink: JoinHandle<S>,
) -> (S, Health) {
    for (thread, h) in workers {
        if let Err(panic) = thread.join() {
            std::panic::resume_unwind(panic);
        }
        health.merge(&h.lock().unwrap_or_else(PoisonError::into_inner));
    }
    match sink.join() {
        Ok(sink) => (sink, health),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// The next message, or `None` once the channel is closed; looks again [`SPINS`] times before
/// it sleeps.
pub(super) fn recv<T>(rx: &Receiver<T>) -> Option<T> {
    for _ in 0..SPINS {
        match rx.try_recv() {
            Ok(b) => return Some(b),
            Err(TryRecvError::Disconnected) => return None,
            Err(TryRecvError::Empty) => std::thread::yield_now(),
        }
    }
    rx.recv().ok()
}

/// Wait until one of `select`'s channels is ready; looks again [`SPINS`] times before it
/// sleeps.
pub(super) fn wait(select: &mut Select<'_>) {
    for _ in 0..SPINS {
        if select.try_ready().is_ok() {
            return;
        }
        // Not a busy loop: another thread (the sink, a worker the system preempted) may need
        // this core.
        std::thread::yield_now();
    }
    select.ready();
}
