//! Consumers of finished connections: the replay report, the session log, the metrics and
//! the server inventory, and the HTTP server that publishes the last two.

pub mod append;
pub mod failure;
pub mod http;
pub mod inventory;
pub mod log;
pub mod metrics;
pub mod metrics_file;
pub mod outputs;
pub mod report;
pub mod session_csv;
pub mod tls_summary;
