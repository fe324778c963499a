//! Decoding with its counters: the `packets_total{result}` side of the sensor's health.

use crate::config::PortMap;
use crate::decode::{decode, Segment, Skip};
use crate::source::Packet;

/// How many packet results there are: one per [`Skip`] reason, plus "mail".
pub const PACKET_RESULTS: usize = Skip::ALL.len() + 1;
const MAIL: usize = Skip::ALL.len();

/// The `result` label of `packets_total`, by index: the skip reasons, then `mail`.
pub fn packet_result_label(i: usize) -> &'static str {
    Skip::ALL.get(i).map_or("mail", |s| s.label())
}

pub struct Decoder {
    ports: PortMap,
    counts: [u64; PACKET_RESULTS],
}

impl Decoder {
    pub fn new(ports: PortMap) -> Self {
        Decoder {
            ports,
            counts: [0; PACKET_RESULTS],
        }
    }

    /// The mail segment in `p`, counting every packet by result.
    pub fn decode<'a>(&mut self, p: &Packet<'a>) -> Option<Segment<'a>> {
        match decode(p, &self.ports) {
            Ok(seg) => {
                self.counts[MAIL] += 1;
                Some(seg)
            }
            Err(skip) => {
                self.counts[skip.index()] += 1;
                None
            }
        }
    }

    pub fn counts(&self) -> [u64; PACKET_RESULTS] {
        self.counts
    }
}
