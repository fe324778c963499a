//! `mailtap capture`: read a live interface through one engine until SIGINT/SIGTERM.
//!
//! The reading thread is the caller's. Each read waits at most the capture's read timeout, so
//! even on a quiet link the loop comes round several times a second: it notices the stop flag
//! (set by a signal handler), and once a second it lets packet time pass in the engine (idle
//! flows expire; batches for worker threads are flushed), polls the capture's drop counters,
//! and publishes the sensor's health to the metrics. When it stops, the engine closes every
//! open session into the metrics and the session log, exactly as at the end of a replay.
//!
//! Packet time on a live link is the kernel's timestamp; between packets it is estimated from
//! the wall clock (the clock the kernel stamps with), and it never runs backwards.
//!
//! Start-up order matters for privileges: open the capture (needs root or CAP_NET_RAW and
//! CAP_NET_ADMIN), bind listening sockets ([`LiveRun::on_capture_open`]), then give up root
//! ([`drop_privileges`]) before the engine starts its threads.

use crate::engine::{Engine, EngineConfig, Health, Sink};
use crate::sink::metrics::{DropSite, Metrics};
use crate::sink::outputs::Outputs;
use crate::sink::report::SharedReport;
use crate::source::{CaptureStats, LiveSource, Timestamp};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How often the loop lets time pass, polls drops and publishes metrics.
pub const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(1);

/// How a capture run ended.
pub struct CaptureOutcome<E> {
    /// The sinks, with every session closed into them.
    pub outputs: Outputs,
    pub health: Health,
    /// The capture's counters when it stopped.
    pub stats: CaptureStats,
    /// `Err` when the capture broke (the interface went away); `Ok` when it was stopped.
    pub result: Result<(), E>,
}

/// Capture from `source` into `outputs` until `stop` is set or the capture fails.
pub fn run<S: LiveSource>(
    source: &mut S,
    engine: EngineConfig,
    outputs: Outputs,
    stop: &AtomicBool,
) -> CaptureOutcome<S::Error> {
    let metrics = outputs.metrics.clone();
    let report = Arc::clone(&outputs.report);
    let mut engine = Engine::new(engine, outputs);
    let mut clock = LiveClock::default();
    let mut drops = DropWatch::default();
    let mut next_housekeeping = Instant::now() + HOUSEKEEPING_EVERY;
    let result = loop {
        if stop.load(Ordering::Relaxed) {
            break drain(source, &mut engine, &mut clock);
        }
        match source.next_packet() {
            Ok(Some(p)) => {
                clock.saw(p.ts);
                engine.packet(&p);
            }
            Ok(None) => {}
            Err(e) => break Err(e),
        }
        if Instant::now() >= next_housekeeping {
            next_housekeeping = Instant::now() + HOUSEKEEPING_EVERY;
            engine.tick(clock.now());
            poll_drops(source, &mut drops, metrics.as_deref());
            let health = engine.health();
            if let Some(m) = &metrics {
                publish_metrics(m, &health);
            }
            publish_report(&report, &health, drops.total());
        }
    };
    poll_drops(source, &mut drops, metrics.as_deref());
    let (outputs, health) = engine.finish();
    if let Some(m) = &metrics {
        publish_metrics(m, &health);
    }
    publish_report(&report, &health, drops.total());
    CaptureOutcome {
        outputs,
        health,
        stats: drops.last.unwrap_or_default(),
        result,
    }
}

/// After the stop signal: the packets the kernel still holds (it hands them over in blocks,
/// at the latest after the read timeout), until three reads in a row find nothing (at least
/// one of them waited the whole read timeout) or
/// [`DRAIN_AT_MOST`] has passed (a busy link never runs dry).
fn drain<S: LiveSource, K: Sink>(
    source: &mut S,
    engine: &mut Engine<K>,
    clock: &mut LiveClock,
) -> Result<(), S::Error> {
    let deadline = Instant::now() + DRAIN_AT_MOST;
    let mut quiet = 0;
    while quiet < 3 && Instant::now() < deadline {
        match source.next_packet()? {
            Some(p) => {
                quiet = 0;
                clock.saw(p.ts);
                engine.packet(&p);
            }
            None => quiet += 1,
        }
    }
    Ok(())
}

/// How long a stopped capture may take to read what the kernel still holds.
pub const DRAIN_AT_MOST: Duration = Duration::from_millis(500);

/// The one place a live run publishes the sensor's state, once a second and at the end. The
/// session counters are already current (the sink counts each session as it closes); the
/// HTTP endpoint (`/metrics`) serves the same [`Metrics`], so publishing here is all it needs.
pub fn publish_metrics(metrics: &Metrics, health: &Health) {
    metrics.health(health);
}

/// The report's health and drop counts, for `/` and `/report.json` (the sessions are added as
/// they close).
fn publish_report(report: &SharedReport, health: &Health, dropped: DropDelta) {
    let mut r = report.lock();
    r.set_health(health);
    r.set_capture_dropped(DropSite::Kernel, dropped.kernel);
    r.set_capture_dropped(DropSite::Interface, dropped.interface);
}

fn poll_drops<S: LiveSource>(source: &mut S, drops: &mut DropWatch, metrics: Option<&Metrics>) {
    // pcap_stats does not fail on Linux; elsewhere a failure only costs the drop counts.
    let Ok(stats) = source.stats() else { return };
    let (delta, warning) = drops.update(stats);
    if let Some(m) = metrics {
        m.capture_dropped(DropSite::Kernel, delta.kernel);
        m.capture_dropped(DropSite::Interface, delta.interface);
    }
    if let Some(w) = warning {
        eprintln!("mailtap: {w}");
    }
}

/// Packet time between packets: the latest packet's time, or the wall clock when that is
/// later; never backwards.
#[derive(Debug, Default)]
struct LiveClock {
    latest: Timestamp,
}

impl LiveClock {
    fn saw(&mut self, ts: Timestamp) {
        self.latest = self.latest.max(ts);
    }

    fn now(&mut self) -> Timestamp {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(Timestamp::ZERO, |d| Timestamp::ZERO.saturating_add(d));
        self.saw(wall);
        self.latest
    }
}

/// Packets dropped since the previous poll.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DropDelta {
    pub kernel: u64,
    pub interface: u64,
}

/// Turns libpcap's cumulative counters into increments, and says when drops start and stop
/// (once each way, not every second).
#[derive(Debug, Default)]
pub struct DropWatch {
    last: Option<CaptureStats>,
    dropping: bool,
    total: DropDelta,
}

impl DropWatch {
    /// The counters as polled now → the increments since the last poll, and a warning line
    /// (without the `mailtap: ` prefix) when the capture starts or stops dropping.
    pub fn update(&mut self, now: CaptureStats) -> (DropDelta, Option<String>) {
        let before = self.last.unwrap_or_default();
        let delta = DropDelta {
            kernel: u64::from(now.dropped.wrapping_sub(before.dropped)),
            interface: u64::from(now.if_dropped.wrapping_sub(before.if_dropped)),
        };
        self.last = Some(now);
        self.total.kernel += delta.kernel;
        self.total.interface += delta.interface;
        let dropping = delta.kernel + delta.interface > 0;
        let warning = match (self.dropping, dropping) {
            (false, true) => Some(format!(
                "capture is dropping packets: {} in the last second; all numbers are lower \
                 bounds",
                describe(delta)
            )),
            (true, false) => Some(format!(
                "capture stopped dropping packets ({} since the capture started)",
                describe(self.total)
            )),
            _ => None,
        };
        self.dropping = dropping;
        (delta, warning)
    }

    /// Everything dropped since the capture started.
    pub fn total(&self) -> DropDelta {
        self.total
    }
}

fn describe(d: DropDelta) -> String {
    match (d.kernel, d.interface) {
        (k, 0) => format!("{k} dropped by the kernel"),
        (0, i) => format!("{i} dropped by the interface"),
        (k, i) => format!("{k} dropped by the kernel and {i} by the interface"),
    }
}

#[cfg(feature = "live")]
pub use live::{drop_privileges, look_up, run_live, LiveRun, PrivilegeError, StartError};

#[cfg(feature = "live")]
mod live {
    use super::{run, CaptureOutcome};
    use crate::engine::EngineConfig;
    use crate::sink::metrics_file::MetricsFile;
    use crate::sink::outputs::Outputs;
    use crate::source::live::{LiveCapture, LiveError, LiveOptions};
    use nix::unistd::{getegid, geteuid, getgid, getuid, setgid, setgroups, setuid, Uid, User};
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    /// Everything a live run needs besides its sinks.
    pub struct LiveRun {
        pub capture: LiveOptions,
        pub engine: EngineConfig,
        /// Give up root for this user once the capture is open (`--user`).
        pub user: Option<String>,
        /// Called once, after the capture is open and before privileges are dropped: bind
        /// listening sockets here (the HTTP endpoint serving `/metrics`), so that a
        /// privileged port works and the process is unprivileged for everything else.
        pub on_capture_open: Option<Box<dyn FnOnce() -> Result<(), String>>>,
        /// The metrics file, written as `user` from then on: tried as that user before the
        /// privileges are dropped.
        pub metrics_file: Option<Arc<MetricsFile>>,
        /// Set by SIGINT/SIGTERM ([`crate::signals::Signals`]).
        pub stop: Arc<AtomicBool>,
    }

    /// Why a live run did not start.
    #[derive(Debug, thiserror::Error)]
    pub enum StartError {
        #[error(transparent)]
        Capture(#[from] LiveError),
        #[error("{0}")]
        Hook(String),
        #[error(transparent)]
        Privileges(#[from] PrivilegeError),
    }

    /// Open the capture, run the hook, drop privileges, then capture until SIGINT/SIGTERM.
    pub fn run_live(
        cfg: LiveRun,
        outputs: Outputs,
    ) -> Result<CaptureOutcome<LiveError>, StartError> {
        let mut capture = LiveCapture::open(&cfg.capture)?;
        if let Some(hook) = cfg.on_capture_open {
            hook().map_err(StartError::Hook)?;
        }
        let user = match &cfg.user {
            Some(name) => {
                let user = look_up(name)?;
                if let Some(file) = &cfg.metrics_file {
                    writable_as(&user, file)?;
                }
                Some(drop_privileges(user)?)
            }
            None => None,
        };
        eprintln!(
            "mailtap: capturing on {} (link type {}, {}){}; filter: {}",
            capture.interface(),
            capture.link().0,
            match cfg.engine.workers {
                0 => "capture and analysis on one thread".to_string(),
                1 => "1 worker".to_string(),
                n => format!("{n} workers"),
            },
            user.map(|u| format!(" as user {} (uid {})", u.name, u.uid))
                .unwrap_or_default(),
            capture.filter()
        );
        let outcome = run(&mut capture, cfg.engine, outputs, &cfg.stop);
        let s = outcome.stats;
        eprintln!(
            "mailtap: capture stopped: {} packets received, {} dropped by the kernel, {} by the \
             interface",
            s.received, s.dropped, s.if_dropped
        );
        Ok(outcome)
    }

    #[derive(Debug, thiserror::Error)]
    pub enum PrivilegeError {
        #[error("--user {0}: no such user")]
        NoSuchUser(String),
        #[error("--user {user}: {step}: {source}")]
        Failed {
            user: String,
            step: &'static str,
            source: nix::Error,
        },
        #[error("--user {0}: the process still has root privileges after dropping them")]
        StillRoot(String),
        #[error("--user {user}: {message}")]
        NotWritable { user: String, message: String },
    }

    fn failed<'a>(
        name: &'a str,
        step: &'static str,
    ) -> impl FnOnce(nix::Error) -> PrivilegeError + 'a {
        move |source| PrivilegeError::Failed {
            user: name.to_string(),
            step,
            source,
        }
    }

    pub fn look_up(name: &str) -> Result<User, PrivilegeError> {
        User::from_name(name)
            .map_err(failed(name, "looking up the user"))?
            .ok_or_else(|| PrivilegeError::NoSuchUser(name.to_string()))
    }

    /// Can `user` write the metrics file? Tried with the file system ids set to the user's
    /// (and no supplementary groups, as after the drop), then set back: the answer comes
    /// before root is given up, while the sensor can still stop cleanly.
    #[cfg(target_os = "linux")]
    fn writable_as(user: &User, file: &MetricsFile) -> Result<(), PrivilegeError> {
        use nix::unistd::{setfsgid, setfsuid};
        setgroups(&[]).map_err(failed(&user.name, "setgroups"))?;
        let gid = setfsgid(user.gid);
        let uid = setfsuid(user.uid);
        let tried = if setfsuid(user.uid) == user.uid && setfsgid(user.gid) == user.gid {
            file.check_writable().map_err(|e| e.to_string())
        } else {
            Err("cannot take on its file system ids".to_string())
        };
        setfsuid(uid);
        setfsgid(gid);
        tried.map_err(|e| PrivilegeError::NotWritable {
            user: user.name.clone(),
            message: format!(
                "--metrics-file {} cannot be written as this user: {e}",
                file.path().display()
            ),
        })
    }

    /// Elsewhere the file is tried once the privileges are dropped, at its first write.
    #[cfg(not(target_os = "linux"))]
    fn writable_as(_: &User, _: &MetricsFile) -> Result<(), PrivilegeError> {
        Ok(())
    }

    /// Become `user` for good: no supplementary groups, its group, its user; then check that
    /// real and effective ids changed and that root cannot be regained. Call it while the
    /// process has one thread (before the engine starts its workers).
    pub fn drop_privileges(user: User) -> Result<User, PrivilegeError> {
        let name = user.name.clone();
        setgroups(&[]).map_err(failed(&name, "setgroups"))?;
        setgid(user.gid).map_err(failed(&name, "setgid"))?;
        setuid(user.uid).map_err(failed(&name, "setuid"))?;
        let dropped = getuid() == user.uid
            && geteuid() == user.uid
            && getgid() == user.gid
            && getegid() == user.gid;
        if !dropped || (!user.uid.is_root() && setuid(Uid::from_raw(0)).is_ok()) {
            return Err(PrivilegeError::StillRoot(name));
        }
        Ok(user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Limits, PortMap};
    use crate::session::tls::TlsContext;
    use crate::source::{Linktype, Packet};
    use std::convert::Infallible;

    fn stats(dropped: u32, if_dropped: u32) -> CaptureStats {
        CaptureStats {
            received: 0,
            dropped,
            if_dropped,
        }
    }

    #[test]
    fn drops_become_increments_and_warn_once_each_way() {
        let mut w = DropWatch::default();
        assert_eq!(w.update(stats(0, 0)), (DropDelta::default(), None));
        let (d, warn) = w.update(stats(7, 0));
        assert_eq!(
            d,
            DropDelta {
                kernel: 7,
                interface: 0
            }
        );
        assert_eq!(
            warn.as_deref(),
            Some(
                "capture is dropping packets: 7 dropped by the kernel in the last second; \
                 all numbers are lower bounds"
            )
        );
        let (d, warn) = w.update(stats(10, 2));
        assert_eq!((d.kernel, d.interface, warn), (3, 2, None));
        let (d, warn) = w.update(stats(10, 2));
        assert_eq!(d, DropDelta::default());
        assert_eq!(
            warn.as_deref(),
            Some(
                "capture stopped dropping packets (10 dropped by the kernel and 2 by the \
                 interface since the capture started)"
            )
        );
    }

    #[test]
    fn drop_counters_wrap_at_32_bits() {
        let mut w = DropWatch::default();
        w.update(stats(u32::MAX - 1, 0));
        let (d, _) = w.update(stats(3, 0));
        assert_eq!(d.kernel, 5);
    }

    #[test]
    fn first_poll_counts_drops_since_the_capture_started() {
        let mut w = DropWatch::default();
        let (d, warn) = w.update(stats(0, 4));
        assert_eq!(d.interface, 4);
        assert!(warn.is_some_and(|w| w.contains("4 dropped by the interface")));
    }

    #[test]
    fn live_clock_never_runs_backwards() {
        let mut c = LiveClock::default();
        let future = Timestamp::from_secs(u64::MAX / 2_000_000_000);
        c.saw(future);
        assert_eq!(c.now(), future);
        let mut c = LiveClock::default();
        c.saw(Timestamp::from_secs(1));
        assert!(c.now() > Timestamp::from_secs(1_700_000_000));
    }

    /// Quiet reads until told to stop after `quiet_reads` of them.
    struct Quiet<'a> {
        reads: u32,
        stop_after: u32,
        stop: &'a AtomicBool,
        frame: Vec<u8>,
    }

    impl LiveSource for Quiet<'_> {
        type Error = Infallible;
        fn next_packet(&mut self) -> Result<Option<Packet<'_>>, Infallible> {
            self.reads += 1;
            if self.reads >= self.stop_after {
                self.stop.store(true, Ordering::Relaxed);
            }
            if self.reads == 1 {
                return Ok(Some(Packet {
                    ts: Timestamp::from_secs(1_800_000_000),
                    link: Linktype::ETHERNET,
                    data: &self.frame,
                    wire_len: 60,
                }));
            }
            Ok(None)
        }
        fn stats(&mut self) -> Result<CaptureStats, Infallible> {
            Ok(stats(u32::from(self.reads > 1), 0))
        }
    }

    #[test]
    fn stops_on_the_flag_and_publishes_drops() {
        let stop = AtomicBool::new(false);
        let mut source = Quiet {
            reads: 0,
            stop_after: 3,
            stop: &stop,
            frame: vec![0; 60],
        };
        let metrics = Arc::new(Metrics::new().expect("metrics"));
        let cfg = EngineConfig {
            ports: PortMap::default(),
            limits: Limits::default(),
            tls: Arc::new(TlsContext::new(&[]).expect("built-in roots")),
            workers: 0,
        };
        let out = run(
            &mut source,
            cfg,
            Outputs::new(None, Some(Arc::clone(&metrics))),
            &stop,
        );
        assert!(out.result.is_ok());
        // Three reads until the flag, then three quiet ones draining the kernel's buffer.
        assert_eq!(source.reads, 6);
        assert_eq!(out.health.packets.iter().sum::<u64>(), 1);
        assert_eq!(out.stats.dropped, 1);
        let text = metrics.render();
        assert!(text.contains(r#"mailtap_capture_dropped_packets_total{where="kernel"} 1"#));
        let view = out.outputs.view();
        assert_eq!(view.health.capture_dropped["kernel"], 1);
        assert_eq!(view.lower_bounds[0].reason, "capture_dropped");
    }
}
