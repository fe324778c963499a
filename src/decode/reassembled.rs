//! Decoding through IP reassembly: a fragment goes to whoever holds the datagrams in flight,
//! and the datagram it completes is decoded on from its own bytes, tunnels and all.
//!
//! A segment of a reassembled datagram cannot borrow the frame (its bytes came from several),
//! so it owns the datagram: [`Decoded`] is either kind, and both give a [`Segment`].

use super::defrag::{Datagram, Fragment};
use super::{ip, open, tcp, walk, Segment, Skip, Walked, MAX_ENCAPSULATIONS};
use crate::config::PortMap;
use crate::source::Timestamp;

/// Where a decoder sends the fragments it meets.
pub trait Reassemble {
    /// Take a fragment seen at `ts`: the datagram it completes, if it does.
    fn fragment(&mut self, ts: Timestamp, f: &Fragment<'_>) -> Option<Datagram>;
}

/// The stateless decoder's: every fragment stays a fragment.
pub(super) struct NoReassembly;

impl Reassemble for NoReassembly {
    fn fragment(&mut self, _: Timestamp, _: &Fragment<'_>) -> Option<Datagram> {
        None
    }
}

/// A mail segment whose payload is in a datagram reassembled from fragments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reassembled {
    /// The segment, with an empty payload.
    seg: Segment<'static>,
    /// The datagram's transport bytes; the payload is `start..start + len` of them.
    bytes: Vec<u8>,
    start: usize,
    len: usize,
}

impl Reassembled {
    pub fn segment(&self) -> Segment<'_> {
        let payload = self
            .start
            .checked_add(self.len)
            .and_then(|end| self.bytes.get(self.start..end));
        Segment {
            payload: payload.unwrap_or_default(),
            ..self.seg
        }
    }
}

/// A decoded mail segment: in the captured frame, or in a reassembled datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    Frame(Segment<'a>),
    /// Boxed: a decoded packet is moved on every packet, and rarely this.
    Reassembled(Box<Reassembled>),
}

impl Decoded<'_> {
    #[inline]
    pub fn segment(&self) -> Segment<'_> {
        match self {
            Decoded::Frame(seg) => *seg,
            Decoded::Reassembled(r) => r.segment(),
        }
    }
}

/// Decode on from a datagram made whole at tunnel depth `depth`: its transport, the tunnels
/// inside it (whose own fragments are reassembled too), down to TCP.
pub(super) fn datagram(
    mut d: Datagram,
    mut depth: usize,
    ts: Timestamp,
    ports: &PortMap,
    r: &mut dyn Reassemble,
) -> Result<Reassembled, Skip> {
    let mut overlapped = d.overlapped;
    loop {
        let ip = ip::reassembled(&d)?;
        let Some(inner) = open(&ip)? else {
            let seg = tcp::parse(ip, ports)?;
            let (seg, start, len) = detach(&seg, &d.bytes, overlapped);
            return Ok(Reassembled {
                seg,
                bytes: d.bytes,
                start,
                len,
            });
        };
        if depth >= MAX_ENCAPSULATIONS {
            return Err(Skip::EncapsulationTooDeep);
        }
        match walk(inner, depth + 1, ts, ports, r)? {
            Walked::Segment(seg) => {
                let (seg, start, len) = detach(&seg, &d.bytes, overlapped);
                return Ok(Reassembled {
                    seg,
                    bytes: d.bytes,
                    start,
                    len,
                });
            }
            Walked::Datagram(next, at) => {
                overlapped |= next.overlapped;
                d = *next;
                depth = at;
            }
        }
    }
}

/// `seg` without its payload borrow, and where the payload is in `bytes` (which it is a part
/// of).
fn detach(seg: &Segment<'_>, bytes: &[u8], overlapped: bool) -> (Segment<'static>, usize, usize) {
    let start = (seg.payload.as_ptr() as usize)
        .checked_sub(bytes.as_ptr() as usize)
        .filter(|s| s.saturating_add(seg.payload.len()) <= bytes.len());
    let (start, len) = match start {
        Some(s) => (s, seg.payload.len()),
        None => (0, 0),
    };
    let seg = Segment {
        payload: &[],
        fragment_overlap: seg.fragment_overlap || overlapped,
        ..*seg
    };
    (seg, start, len)
}
