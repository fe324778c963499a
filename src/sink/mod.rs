//! Consumers of finished connections: the replay report and the session log.

pub mod log;
pub mod metrics;
pub mod outputs;
pub mod report;
pub mod tls_summary;
