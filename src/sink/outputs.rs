//! The sinks a run writes to, behind the engine's one [`Sink`]: the report, the session log,
//! the metrics, and the server inventory.

use crate::engine::{Finished, Sink};
use crate::sink::failure::{FailureWatch, Output};
use crate::sink::inventory::{self, Inventory};
use crate::sink::log::SessionLog;
use crate::sink::metrics::Metrics;
use crate::sink::report::{ReportView, SharedReport};
use std::sync::Arc;

pub struct Outputs {
    /// Shared with the HTTP server (`/`, `/report.json`), which shows it so far.
    pub report: Arc<SharedReport>,
    pub log: Option<SessionLog>,
    pub metrics: Option<Arc<Metrics>>,
    /// Every session's server; shared with the HTTP server (`/servers`).
    pub inventory: Arc<Inventory>,
    /// Writing the session log: a failure is said on stderr when it starts and when it ends,
    /// and counted; the run goes on, and its exit status says that records were lost.
    pub log_failures: FailureWatch,
}

impl Outputs {
    /// With an inventory of the default size; see [`Outputs::with_inventory`].
    pub fn new(log: Option<SessionLog>, metrics: Option<Arc<Metrics>>) -> Self {
        let name = match log.as_ref().and_then(SessionLog::append_file) {
            Some(f) => format!("--sessions {}", f.path().display()),
            None => "--sessions -".to_string(),
        };
        Outputs {
            report: Arc::new(SharedReport::new()),
            log,
            metrics,
            inventory: Arc::new(Inventory::new(inventory::DEFAULT_CAPACITY)),
            log_failures: FailureWatch::new(name),
        }
    }

    /// Feed this inventory (e.g. the one an HTTP server already serves) instead.
    pub fn with_inventory(mut self, inventory: Arc<Inventory>) -> Self {
        self.inventory = inventory;
        self
    }

    /// Feed this report (e.g. the one an HTTP server already serves) instead.
    pub fn with_report(mut self, report: Arc<SharedReport>) -> Self {
        self.report = report;
        self
    }

    /// The report with every server, as every format shows it.
    pub fn view(&self) -> ReportView {
        self.report.view(&self.inventory)
    }
}

impl Sink for Outputs {
    fn finished(&mut self, f: Finished) {
        if let Some(r) = &f.record {
            if let Some(log) = &mut self.log {
                let written = log.write(r);
                if written.is_err() {
                    if let Some(m) = &self.metrics {
                        m.output_error(Output::Sessions);
                    }
                }
                if let Some(line) = self.log_failures.outcome(&written) {
                    eprintln!("mailtap: {line}");
                }
            }
            if let Some(m) = &self.metrics {
                m.session(r);
            }
            self.inventory.record(r);
        } else if f.info.unanswered() {
            if let Some(m) = &self.metrics {
                m.unanswered(f.info.protocol);
            }
        }
        self.report.lock().add(&f.info, f.record.as_ref());
    }
}
