//! One connection's TCP segments as the two reassemblers of a flow see them: a header, then
//! operations on either direction.
//!
//! Header: caps (`u8`, 0 for the default limits), the sink's patience (`u8`: answer `Done` at
//! that event, 0 never), then each direction's base sequence number (`u32` each).
//! Operation: a tag byte, bit 0 the direction (0 to the server), bits 1–3 the kind:
//! 0–3 a segment (`u32` offset from the base, flags `u8`, `u8` bytes cut by the capture,
//! `u16` length, the bytes), 4 an acknowledgment (`u32` offset), 5 the end of the stream,
//! 6 bypass, 7 a new base (`u32`; the ports reused). Segment flags: bit 0 FIN; bit 1 SYN (the
//! stream starts at this segment: the base is confirmed there before it is fed); bit 2 the
//! wait for a SYN is over (a base taken from data stays, before the segment is fed).

use crate::reader::Reader;
use mailtap::flow::Direction;

const ACK: u8 = 4;
const FINISH: u8 = 5;
const BYPASS: u8 = 6;
const RESET: u8 = 7;

const FIN: u8 = 1;
const SYN: u8 = 2;
const SETTLE: u8 = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub caps: u8,
    pub done_after: u8,
    pub base: [u32; 2],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op<'a> {
    Segment {
        dir: Direction,
        offset: u32,
        fin: bool,
        /// The stream starts here (`Reassembler::confirm_base`), as a SYN says.
        syn: bool,
        /// No SYN came in time (`Reassembler::settle_base`).
        settle: bool,
        cut: u8,
        payload: &'a [u8],
    },
    Ack {
        dir: Direction,
        offset: u32,
    },
    Finish(Direction),
    Bypass(Direction),
    Reset {
        dir: Direction,
        base: u32,
    },
}

/// The header and operations of `input`; `None` if it is too short for a header.
pub fn parse(input: &[u8]) -> Option<(Header, Vec<Op<'_>>)> {
    let mut r = Reader::new(input);
    let header = Header {
        caps: r.u8()?,
        done_after: r.u8()?,
        base: [r.u32()?, r.u32()?],
    };
    let mut ops = Vec::new();
    while let Some(op) = next(&mut r) {
        ops.push(op);
    }
    Some((header, ops))
}

fn next<'a>(r: &mut Reader<'a>) -> Option<Op<'a>> {
    let tag = r.u8()?;
    let dir = if tag & 1 == 0 {
        Direction::ToServer
    } else {
        Direction::ToClient
    };
    Some(match (tag >> 1) & 7 {
        ACK => Op::Ack {
            dir,
            offset: r.u32()?,
        },
        FINISH => Op::Finish(dir),
        BYPASS => Op::Bypass(dir),
        RESET => Op::Reset {
            dir,
            base: r.u32()?,
        },
        _ => {
            let offset = r.u32()?;
            let flags = r.u8()?;
            let cut = r.u8()?;
            let len = r.u16()?;
            Op::Segment {
                dir,
                offset,
                fin: flags & FIN != 0,
                syn: flags & SYN != 0,
                settle: flags & SETTLE != 0,
                cut,
                payload: r.take(usize::from(len)),
            }
        }
    })
}

pub fn push_header(out: &mut Vec<u8>, h: Header) {
    out.extend_from_slice(&[h.caps, h.done_after]);
    for base in h.base {
        out.extend_from_slice(&base.to_le_bytes());
    }
}

/// Append `op` (a payload longer than a length field holds is cut to it).
pub fn push(out: &mut Vec<u8>, op: Op<'_>) {
    let tag = |dir: Direction, kind: u8| u8::from(dir == Direction::ToClient) | (kind << 1);
    match op {
        Op::Segment {
            dir,
            offset,
            fin,
            syn,
            settle,
            cut,
            payload,
        } => {
            let payload = payload.get(..usize::from(u16::MAX)).unwrap_or(payload);
            let flags = [(fin, FIN), (syn, SYN), (settle, SETTLE)]
                .iter()
                .filter(|(on, _)| *on)
                .fold(0, |f, (_, bit)| f | bit);
            out.push(tag(dir, 0));
            out.extend_from_slice(&offset.to_le_bytes());
            out.extend_from_slice(&[flags, cut]);
            out.extend_from_slice(&(payload.len() as u16).to_le_bytes());
            out.extend_from_slice(payload);
        }
        Op::Ack { dir, offset } => {
            out.push(tag(dir, ACK));
            out.extend_from_slice(&offset.to_le_bytes());
        }
        Op::Finish(dir) => out.push(tag(dir, FINISH)),
        Op::Bypass(dir) => out.push(tag(dir, BYPASS)),
        Op::Reset { dir, base } => {
            out.push(tag(dir, RESET));
            out.extend_from_slice(&base.to_le_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_round_trip() {
        let header = Header {
            caps: 3,
            done_after: 0,
            base: [u32::MAX - 9_999, 7],
        };
        let ops = [
            Op::Segment {
                dir: Direction::ToClient,
                offset: 0,
                fin: true,
                syn: false,
                settle: true,
                cut: 2,
                payload: b"220 mx\r\n",
            },
            Op::Segment {
                dir: Direction::ToServer,
                offset: 9,
                fin: false,
                syn: true,
                settle: false,
                cut: 0,
                payload: b"",
            },
            Op::Ack {
                dir: Direction::ToClient,
                offset: 10,
            },
            Op::Finish(Direction::ToServer),
            Op::Bypass(Direction::ToClient),
            Op::Reset {
                dir: Direction::ToServer,
                base: 1,
            },
        ];
        let mut bytes = Vec::new();
        push_header(&mut bytes, header);
        for op in ops {
            push(&mut bytes, op);
        }
        assert_eq!(parse(&bytes), Some((header, ops.to_vec())));
    }
}
