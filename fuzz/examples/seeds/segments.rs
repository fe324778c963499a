//! Each connection's TCP segments (SYNs too) and acknowledgments, per direction relative to
//! its first sequence number, as `reassembly` inputs (`mailtap_fuzz::segments`).

use mailtap::config::PortMap;
use mailtap::decode::Segment;
use mailtap::flow::Direction;
use mailtap_fuzz::segments::{self, Header, Op};
use std::collections::BTreeMap;
use std::net::SocketAddr;

#[derive(Default)]
pub struct Segments {
    /// By (client, server).
    flows: BTreeMap<(SocketAddr, SocketAddr), Flow>,
}

#[derive(Default)]
struct Flow {
    /// Each direction's first sequence number of data (ISN + 1 after a SYN).
    base: [Option<u32>; 2],
    ops: Vec<Owned>,
}

enum Owned {
    Segment {
        dir: Direction,
        offset: u32,
        fin: bool,
        syn: bool,
        cut: u8,
        payload: Vec<u8>,
    },
    Ack {
        dir: Direction,
        offset: u32,
    },
}

impl Segments {
    pub fn segment(&mut self, seg: &Segment<'_>, ports: &PortMap) {
        let (dir, key) = if ports.get(seg.dst.port()).is_some() {
            (Direction::ToServer, (seg.src, seg.dst))
        } else {
            (Direction::ToClient, (seg.dst, seg.src))
        };
        let flow = self.flows.entry(key).or_default();
        let start = seg.seq.wrapping_add(u32::from(seg.flags.syn()));
        let base = *flow.base[dir.index()].get_or_insert(start);
        if !seg.payload.is_empty() || seg.flags.fin() || seg.flags.syn() {
            let missing = seg.payload_len.saturating_sub(seg.payload.len() as u32);
            flow.ops.push(Owned::Segment {
                dir,
                offset: start.wrapping_sub(base),
                fin: seg.flags.fin(),
                syn: seg.flags.syn(),
                cut: u8::try_from(missing).unwrap_or(u8::MAX),
                payload: seg.payload.to_vec(),
            });
        }
        let acked = dir.reverse();
        if let (true, Some(base)) = (seg.flags.ack(), flow.base[acked.index()]) {
            flow.ops.push(Owned::Ack {
                dir: acked,
                offset: seg.ack.wrapping_sub(base),
            });
        }
    }

    /// One seed per connection, with the default limits and a sink that never stops.
    pub fn seeds(&self) -> Vec<Vec<u8>> {
        self.flows.values().map(Flow::seed).collect()
    }
}

impl Flow {
    fn seed(&self) -> Vec<u8> {
        let header = Header {
            caps: 0,
            done_after: 0,
            base: self.base.map(|b| b.unwrap_or(0)),
        };
        let mut out = Vec::new();
        segments::push_header(&mut out, header);
        for op in &self.ops {
            let op = match op {
                Owned::Segment {
                    dir,
                    offset,
                    fin,
                    syn,
                    cut,
                    payload,
                } => Op::Segment {
                    dir: *dir,
                    offset: *offset,
                    fin: *fin,
                    syn: *syn,
                    settle: false,
                    cut: *cut,
                    payload,
                },
                Owned::Ack { dir, offset } => Op::Ack {
                    dir: *dir,
                    offset: *offset,
                },
            };
            segments::push(&mut out, op);
        }
        out
    }
}
