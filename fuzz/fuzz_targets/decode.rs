//! Drives `mailtap::decode::decode` on one captured frame with the default port map. The first
//! byte chooses the link type (`mailtap_fuzz::links`), the rest is the frame.
//!
//! Checks what `Segment` documents: its payload is the frame's bytes and no longer than the
//! wire length, and its protocol is that of one of its ports.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailtap::config::PortMap;
use mailtap::decode::decode;
use mailtap::source::{Packet, Timestamp};
use mailtap_fuzz::links;
use std::sync::OnceLock;

fuzz_target!(|input: &[u8]| {
    static PORTS: OnceLock<PortMap> = OnceLock::new();
    let ports = PORTS.get_or_init(PortMap::default);
    let Some((&selector, frame)) = input.split_first() else {
        return;
    };
    let packet = Packet {
        ts: Timestamp::ZERO,
        link: links::linktype(selector),
        data: frame,
        wire_len: u32::try_from(frame.len()).unwrap_or(u32::MAX),
    };
    let Ok(seg) = decode(&packet, ports) else {
        return;
    };
    assert!(seg.payload.len() <= seg.payload_len as usize);
    let frame_range = frame.as_ptr_range();
    let payload_range = seg.payload.as_ptr_range();
    assert!(frame_range.start <= payload_range.start && payload_range.end <= frame_range.end);
    let by_port = ports
        .get(seg.dst.port())
        .or_else(|| ports.get(seg.src.port()));
    assert_eq!(by_port, Some(seg.protocol));
});
