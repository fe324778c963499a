//! The report while it grows, shared by the sink thread, which adds every finished connection,
//! the replay or capture loop, which sets the health counters and files read, and the HTTP
//! server, which shows it so far at `/` and `/report.json`.
//!
//! One lock, held for one session's additions or for a copy of the report (a few maps; the
//! server inventory lives apart, in its own concurrent map): a page view never holds the sink
//! up for longer than that copy.

use super::{Report, ReportView};
use crate::sink::inventory::Inventory;
use std::sync::{Mutex, MutexGuard, PoisonError};

#[derive(Debug, Default)]
pub struct SharedReport {
    report: Mutex<Report>,
}

impl SharedReport {
    pub fn new() -> Self {
        Self::default()
    }

    /// The report, to add to or to read. A panic elsewhere while it was held leaves counts that
    /// are still counts: the report goes on.
    pub fn lock(&self) -> MutexGuard<'_, Report> {
        self.report.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A copy of the report as it is now.
    pub fn snapshot(&self) -> Report {
        self.lock().clone()
    }

    /// The report so far with `inventory`'s servers, as every format shows it.
    pub fn view(&self, inventory: &Inventory) -> ReportView {
        let report = self.snapshot();
        report.view(inventory.snapshot())
    }
}
