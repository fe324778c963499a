//! The sinks a run writes to, behind the engine's one [`Sink`]: the report, the session log,
//! and the metrics.

use crate::engine::{Finished, Sink};
use crate::sink::log::SessionLog;
use crate::sink::metrics::Metrics;
use crate::sink::report::Report;
use std::io;
use std::sync::Arc;

pub struct Outputs {
    pub report: Report,
    pub log: Option<SessionLog>,
    pub metrics: Option<Arc<Metrics>>,
    /// The first error writing the session log; the run goes on, and reports it at the end.
    pub log_error: Option<io::Error>,
}

impl Outputs {
    pub fn new(log: Option<SessionLog>, metrics: Option<Arc<Metrics>>) -> Self {
        Outputs {
            report: Report::new(),
            log,
            metrics,
            log_error: None,
        }
    }
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
        }
        self.report.add(&f.info, f.record.as_ref());
    }
}
