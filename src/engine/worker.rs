//! One worker: a flow table fed decoded segments, and its counters.
//!
//! Generic over the per-flow handler, so the transport path can be tested and measured
//! without the mail analyzers.

use super::Health;
use crate::config::Limits;
use crate::decode::Segment;
use crate::flow::table::{ClosedFlow, FlowTable};
use crate::flow::FlowHandler;
use crate::source::Timestamp;

pub struct Worker<H: FlowHandler> {
    table: FlowTable<H>,
}

impl<H: FlowHandler> Worker<H> {
    pub fn new(limits: Limits) -> Self {
        Worker {
            table: FlowTable::new(limits),
        }
    }

    /// One segment at packet time `ts`. `make` builds the handler of a new connection;
    /// connections that end or expire go to `done`.
    pub fn segment(
        &mut self,
        ts: Timestamp,
        seg: &Segment<'_>,
        make: impl FnOnce(&crate::flow::table::FlowInfo) -> H,
        done: &mut dyn FnMut(ClosedFlow<H>),
    ) {
        self.table.process(ts, seg, make, done);
    }

    /// Let packet time pass without a segment for this worker.
    pub fn tick(&mut self, now: Timestamp, done: &mut dyn FnMut(ClosedFlow<H>)) {
        self.table.expire(now, done);
    }

    /// End of input: close every open connection.
    pub fn finish(&mut self, done: &mut dyn FnMut(ClosedFlow<H>)) {
        self.table.flush(done);
    }

    /// This worker's part of the sensor's health (packet counts are the decoder's).
    pub fn health(&self) -> Health {
        let stats = self.table.stats();
        Health {
            gaps: stats.gaps,
            gap_bytes: stats.gap_bytes,
            closed: stats.closed,
            peak_flows: stats.peak_flows,
            active_flows: self.table.len(),
            ..Health::default()
        }
    }
}
