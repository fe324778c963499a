//! Drives `mailtap::decode::decode_reassembling` over a run of frames (`mailtap_fuzz::frames`)
//! with one defragmenter under small caps, so that tunnels, fragments inside tunnels and
//! tunnels inside fragments meet: whatever the nesting, decoding ends, and the caps hold.
//!
//! Checks what `Segment` documents: its payload is no longer than the wire length, and its
//! protocol is that of one of its ports; a segment of a frame borrows the frame's bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailtap::config::PortMap;
use mailtap::decode::defrag::{Datagram, Defrag, DefragCounts, DefragLimits, Fragment};
use mailtap::decode::{decode_reassembling, Decoded, Reassemble};
use mailtap::source::{Packet, Timestamp};
use mailtap_fuzz::frames::frames;
use std::sync::OnceLock;
use std::time::Duration;

const LIMITS: DefragLimits = DefragLimits {
    max_datagrams: 8,
    max_bytes: 256 * 1024,
    timeout: Duration::from_secs(2),
};

struct Held(Defrag, DefragCounts);

impl Reassemble for Held {
    fn fragment(&mut self, ts: Timestamp, f: &Fragment<'_>) -> Option<Datagram> {
        self.0.add(ts, f, &mut self.1)
    }
}

fuzz_target!(|input: &[u8]| {
    static PORTS: OnceLock<PortMap> = OnceLock::new();
    let ports = PORTS.get_or_init(PortMap::default);
    let mut held = Held(Defrag::new(LIMITS), DefragCounts::default());
    for (i, (link, frame)) in frames(input).enumerate() {
        let packet = Packet {
            ts: Timestamp::from_secs(i as u64 / 4),
            link,
            data: frame,
            wire_len: u32::try_from(frame.len()).unwrap_or(u32::MAX),
        };
        if let Ok(decoded) = decode_reassembling(&packet, ports, &mut held) {
            let seg = decoded.segment();
            assert!(seg.payload.len() <= seg.payload_len as usize);
            if let Decoded::Frame(_) = decoded {
                let (f, p) = (frame.as_ptr_range(), seg.payload.as_ptr_range());
                assert!(f.start <= p.start && p.end <= f.end);
            }
            let by_port = ports
                .get(seg.dst.port())
                .or_else(|| ports.get(seg.src.port()));
            assert_eq!(by_port, Some(seg.protocol));
        }
        let (datagrams, bytes) = held.0.in_flight();
        assert!(datagrams <= LIMITS.max_datagrams && bytes <= LIMITS.max_bytes);
    }
});
