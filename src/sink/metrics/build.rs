//! What the sensor says about its build and its process: `mailtap_build_info` and the
//! standard `process_*` metrics.

use prometheus::{IntGaugeVec, Opts, Registry};

/// The commit and the compiler, from `build.rs` (`unknown` where they could not be found).
pub const REVISION: &str = env!("MAILTAP_REVISION");
pub const RUSTC: &str = env!("MAILTAP_RUSTC");

/// `mailtap_build_info{version,revision,rustc} 1`, and on Linux the process collector
/// (`process_cpu_seconds_total`, `process_resident_memory_bytes`, `process_open_fds`, ...).
pub(super) fn register(registry: &Registry) -> prometheus::Result<()> {
    let g = IntGaugeVec::new(
        Opts::new(
            "build_info",
            "Always 1: the running mailtap's version, the commit it was built from and the \
             Rust compiler that built it.",
        )
        .namespace(super::NS),
        &["version", "revision", "rustc"],
    )?;
    g.with_label_values(&[env!("CARGO_PKG_VERSION"), REVISION, RUSTC])
        .set(1);
    registry.register(Box::new(g))?;
    #[cfg(target_os = "linux")]
    registry.register(Box::new(
        prometheus::process_collector::ProcessCollector::for_self(),
    ))?;
    Ok(())
}
