//! Consumers of finished connections: the replay report, the session log, the metrics and
//! the server inventory, and the HTTP server that publishes the last two.

pub mod http;
pub mod inventory;
pub mod log;
pub mod metrics;
pub mod outputs;
pub mod report;
pub mod tls_summary;
