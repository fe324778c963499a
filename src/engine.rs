//! The packet path: source → decode → flow table → session → records and counters.
//!
//! Each connection belongs to exactly one [`Worker`], which owns its flows outright, so the
//! per-packet path takes no lock. Sensor-health counters live beside the flow table and are
//! merged when a run ends.

use crate::config::{Limits, PortMap};
use crate::decode::{decode, Skip};
use crate::flow::table::{ClosedFlow, CloseReason, FlowInfo, FlowTable};
use crate::flow::FlowHandler;
use crate::source::{Packet, Timestamp};

/// How many packet results there are: one per [`Skip`] reason, plus "mail".
pub const PACKET_RESULTS: usize = Skip::ALL.len() + 1;

/// The `result` label of `packets_total`, by index: the skip reasons, then `mail`.
pub fn packet_result_label(i: usize) -> &'static str {
    Skip::ALL.get(i).map_or("mail", |s| s.label())
}

/// What one worker counted about the packets and flows it saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Health {
    /// By [`packet_result_label`] index.
    pub packets: [u64; PACKET_RESULTS],
    pub gaps: u64,
    pub gap_bytes: u64,
    /// Flows closed, by [`CloseReason::index`].
    pub closed: [u64; CloseReason::COUNT],
    pub peak_flows: usize,
}

impl Health {
    pub fn merge(&mut self, other: &Health) {
        for (a, b) in self.packets.iter_mut().zip(other.packets) {
            *a += b;
        }
        self.gaps += other.gaps;
        self.gap_bytes += other.gap_bytes;
        for (a, b) in self.closed.iter_mut().zip(other.closed) {
            *a += b;
        }
        self.peak_flows = self.peak_flows.max(other.peak_flows);
    }
}

/// One connection as it left the flow table: its transport facts and its handler.
pub struct Finished<H> {
    pub info: FlowInfo,
    pub reason: CloseReason,
    pub handler: H,
}

/// One worker: a flow table and its counters. Generic over the per-flow handler so the
/// transport path can be tested and measured without the mail analyzers.
pub struct Worker<H: FlowHandler> {
    ports: PortMap,
    table: FlowTable<H>,
    health: Health,
}

impl<H: FlowHandler> Worker<H> {
    pub fn new(ports: PortMap, limits: Limits) -> Self {
        Worker {
            ports,
            table: FlowTable::new(limits),
            health: Health::default(),
        }
    }

    /// One packet. `make` builds the handler of a new connection; finished connections go to
    /// `done`.
    pub fn packet(
        &mut self,
        packet: &Packet<'_>,
        make: &mut dyn FnMut(&FlowInfo) -> H,
        done: &mut dyn FnMut(Finished<H>),
    ) {
        match decode(packet, &self.ports) {
            Ok(seg) => {
                self.health.packets[Skip::ALL.len()] += 1;
                let mut closed = |c: ClosedFlow<H>| done(finished(c));
                self.table.process(packet.ts, &seg, make, &mut closed);
            }
            Err(skip) => {
                self.health.packets[skip.index()] += 1;
                // Time still moves on for the flows when the traffic is not mail.
                self.table.expire(packet.ts, &mut |c| done(finished(c)));
            }
        }
    }

    /// Let packet time pass without a packet (live capture on a quiet link).
    pub fn tick(&mut self, now: Timestamp, done: &mut dyn FnMut(Finished<H>)) {
        self.table.expire(now, &mut |c| done(finished(c)));
    }

    /// End of input: close every open connection.
    pub fn finish(&mut self, done: &mut dyn FnMut(Finished<H>)) {
        self.table.flush(&mut |c| done(finished(c)));
    }

    /// The counters so far, including the flow table's.
    pub fn health(&self) -> Health {
        let mut h = self.health.clone();
        let stats = self.table.stats();
        h.gaps = stats.gaps;
        h.gap_bytes = stats.gap_bytes;
        h.peak_flows = stats.peak_flows;
        h.closed = stats.closed;
        h
    }

    pub fn active_flows(&self) -> usize {
        self.table.len()
    }
}

fn finished<H>(c: ClosedFlow<H>) -> Finished<H> {
    Finished {
        info: c.info,
        reason: c.reason,
        handler: c.handler,
    }
}
