//! Connections: the flow table, sequence space, and per-direction reassembly.
//!
//! The flow table keeps one opaque handler per connection (the mail session) and feeds it each
//! direction's bytes in order, once, as [`StreamEvent`]s. Reassembly knows no protocol.

pub mod order;
pub mod reassembly;
pub mod seq;
mod slots;
pub mod table;

use crate::session::anomaly::Anomaly;
use crate::source::Timestamp;

/// Which way bytes travel. The client is the SYN sender, else the side not on the mail port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    ToServer,
    ToClient,
}

impl Direction {
    pub const fn index(self) -> usize {
        match self {
            Direction::ToServer => 0,
            Direction::ToClient => 1,
        }
    }

    pub const fn reverse(self) -> Direction {
        match self {
            Direction::ToServer => Direction::ToClient,
            Direction::ToClient => Direction::ToServer,
        }
    }
}

/// What reassembly delivers for one direction, in stream order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamEvent<'a> {
    /// The next bytes of the stream, each delivered exactly once.
    Data(&'a [u8]),
    /// This many bytes of the stream were never seen and never will be.
    Gap(u64),
    /// The stream ended (FIN, RST, timeout, eviction or the end of the capture).
    Eof,
}

/// A handler's answer: keep feeding me, or I have what I need (bypass: count, never buffer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interest {
    More,
    Done,
}

/// The per-connection consumer the flow table drives; the mail session implements it.
pub trait FlowHandler {
    /// The next event of one direction. Returning [`Interest::Done`] bypasses both directions.
    fn on_stream(&mut self, dir: Direction, event: StreamEvent<'_>, ts: Timestamp) -> Interest;

    /// Something odd at the transport level (conflicting overlap, mid-stream pickup, ...).
    fn on_anomaly(&mut self, anomaly: Anomaly);
}
