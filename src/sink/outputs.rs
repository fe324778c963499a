//! The sinks a run writes to, behind the engine's one [`Sink`]: the report, the session log,
//! the metrics, and the server inventory.

use crate::engine::{Finished, Sink};
use crate::sink::inventory::{self, Inventory, Snapshot};
use crate::sink::log::SessionLog;
use crate::sink::metrics::Metrics;
use crate::sink::report::Report;
use serde::Serialize;
use std::io::{self, Write};
use std::sync::Arc;

/// Servers listed under the table report.
pub const TABLE_TOP_SERVERS: usize = 10;

pub struct Outputs {
    pub report: Report,
    pub log: Option<SessionLog>,
    pub metrics: Option<Arc<Metrics>>,
    /// Every session's server; shared with the HTTP server (`/servers`).
    pub inventory: Arc<Inventory>,
    /// The first error writing the session log; the run goes on, and reports it at the end.
    pub log_error: Option<io::Error>,
}

impl Outputs {
    /// With an inventory of the default size; see [`Outputs::with_inventory`].
    pub fn new(log: Option<SessionLog>, metrics: Option<Arc<Metrics>>) -> Self {
        Outputs {
            report: Report::new(),
            log,
            metrics,
            inventory: Arc::new(Inventory::new(inventory::DEFAULT_CAPACITY)),
            log_error: None,
        }
    }

    /// Feed this inventory (e.g. the one an HTTP server already serves) instead.
    pub fn with_inventory(mut self, inventory: Arc<Inventory>) -> Self {
        self.inventory = inventory;
        self
    }

    /// The report as JSON, with the server inventory under `servers`.
    pub fn write_json(&self, out: &mut dyn Write) -> io::Result<()> {
        #[derive(Serialize)]
        struct Full<'a> {
            #[serde(flatten)]
            report: &'a Report,
            servers: Snapshot,
        }
        let full = Full {
            report: &self.report,
            servers: self.inventory.snapshot(),
        };
        serde_json::to_writer_pretty(&mut *out, &full)?;
        out.write_all(b"\n")
    }

    /// The report as a table, then the servers with the most plaintext sessions.
    pub fn write_table(&self, out: &mut dyn Write) -> io::Result<()> {
        self.report.write_table(out)?;
        write_top_servers(out, &self.inventory, TABLE_TOP_SERVERS)
    }
}

fn write_top_servers(out: &mut dyn Write, inventory: &Inventory, n: usize) -> io::Result<()> {
    use crate::record::Encryption as E;
    let total = inventory.len();
    let evicted = match inventory.evicted() {
        0 => String::new(),
        e => format!(", {e} evicted"),
    };
    let top = inventory.top_plaintext(n);
    writeln!(out)?;
    if top.is_empty() {
        return writeln!(
            out,
            "servers:   none with plaintext sessions ({total} servers{evicted})"
        );
    }
    writeln!(
        out,
        "servers with the most plaintext sessions (top {} of {total}{evicted}):",
        top.len()
    )?;
    let addresses: Vec<String> = top.iter().map(|s| s.server.to_string()).collect();
    let w = addresses.iter().map(String::len).max().unwrap_or(0).max(6);
    writeln!(
        out,
        "{:<w$} {:<12} {:>8} {:>9} {:>9} {:>8} {:<8} certificate",
        "server", "protocol", "sessions", "plaintext", "encrypted", "offered", "tls"
    )?;
    for (s, address) in top.iter().zip(addresses) {
        let sessions: u64 = s.sessions.values().sum();
        writeln!(
            out,
            "{:<w$} {:<12} {:>8} {:>9} {:>9} {:>8} {:<8} {}",
            address,
            s.protocol.name(),
            sessions,
            s.count(E::Plaintext),
            s.count(E::Starttls) + s.count(E::ImplicitTls),
            s.starttls_offered,
            s.last_tls_version.as_deref().unwrap_or("-"),
            s.last_certificate_status.as_deref().unwrap_or("-"),
        )?;
    }
    Ok(())
}

impl Sink for Outputs {
    fn finished(&mut self, f: Finished) {
        if let Some(r) = &f.record {
            if let Some(log) = &mut self.log {
                if let Err(e) = log.write(r) {
                    self.log_error.get_or_insert(e);
                }
            }
            if let Some(m) = &self.metrics {
                m.session(r);
            }
            self.inventory.record(r);
        }
        self.report.add(&f.info, f.record.as_ref());
    }
}
