//! Both directions of one connection's reassembled streams, as the session would receive them:
//! a sequence of events, each a control byte and its fields.
//!
//! Control byte: bit 0 is the direction (0 to the server, 1 to the client); bits 1–3 the
//! kind: 6 is a gap (`u16` length), 7 the end of that direction, anything else data (`u16`
//! length, then that many bytes). Data is the common case, so most mutations of a control
//! byte stay data.

use crate::reader::Reader;
use mailtap::flow::Direction;

const GAP: u8 = 6;
const EOF: u8 = 7;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event<'a> {
    Data(Direction, &'a [u8]),
    Gap(Direction, u64),
    Eof(Direction),
}

impl Event<'_> {
    pub fn direction(&self) -> Direction {
        match *self {
            Event::Data(d, _) | Event::Gap(d, _) | Event::Eof(d) => d,
        }
    }
}

/// The events of `input`, in order.
pub fn events(input: &[u8]) -> Vec<Event<'_>> {
    let mut r = Reader::new(input);
    let mut out = Vec::new();
    while let Some(event) = next(&mut r) {
        out.push(event);
    }
    out
}

fn next<'a>(r: &mut Reader<'a>) -> Option<Event<'a>> {
    let control = r.u8()?;
    let dir = if control & 1 == 0 {
        Direction::ToServer
    } else {
        Direction::ToClient
    };
    match (control >> 1) & 7 {
        GAP => Some(Event::Gap(dir, u64::from(r.u16()?))),
        EOF => Some(Event::Eof(dir)),
        _ => {
            let len = r.u16()?;
            Some(Event::Data(dir, r.take(usize::from(len))))
        }
    }
}

/// Append `event` to a script (data longer than a length field holds becomes several events).
pub fn push(out: &mut Vec<u8>, event: Event<'_>) {
    let dir = u8::from(event.direction() == Direction::ToClient);
    match event {
        Event::Data(_, data) => {
            for chunk in data.chunks(usize::from(u16::MAX)) {
                out.push(dir);
                out.extend_from_slice(&(chunk.len() as u16).to_le_bytes());
                out.extend_from_slice(chunk);
            }
        }
        Event::Gap(_, len) => {
            let mut left = len;
            while left > 0 {
                let part = left.min(u64::from(u16::MAX));
                out.push(dir | (GAP << 1));
                out.extend_from_slice(&(part as u16).to_le_bytes());
                left -= part;
            }
        }
        Event::Eof(_) => out.push(dir | (EOF << 1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip() {
        let script = [
            Event::Data(Direction::ToClient, b"220 mx ESMTP\r\n"),
            Event::Data(Direction::ToServer, b"EHLO a\r\n"),
            Event::Gap(Direction::ToClient, 7),
            Event::Eof(Direction::ToServer),
        ];
        let mut bytes = Vec::new();
        for e in script {
            push(&mut bytes, e);
        }
        assert_eq!(events(&bytes), script);
    }

    #[test]
    fn a_cut_length_field_ends_the_script() {
        assert_eq!(
            events(&[1, 2, 0, b'o', b'k', 0, 9]),
            [Event::Data(Direction::ToClient, b"ok")]
        );
    }
}
