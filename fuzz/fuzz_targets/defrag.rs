//! Drives `mailtap::decode::defrag::Defrag` with a stream of fragments made from the input,
//! under small caps so that they are reached: 7 bytes per fragment (datagram id, offset in
//! 8-byte units, flags, length, captured length, seconds ahead), then its bytes.
//!
//! Checks what the module documents: the caps hold after every fragment, a datagram handed on
//! is no longer than its wire length, and counts add up (one event per datagram at most,
//! however many fragments it took).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailtap::decode::defrag::{
    Defrag, DefragCounts, DefragEvent, DefragLimits, Fragment, FragmentKey,
};
use mailtap::source::Timestamp;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

const LIMITS: DefragLimits = DefragLimits {
    max_datagrams: 4,
    max_bytes: 96 * 1024,
    timeout: Duration::from_secs(3),
};

fuzz_target!(|input: &[u8]| {
    let mut d = Defrag::new(LIMITS);
    let mut counts = DefragCounts::default();
    let mut now = 0u64;
    let mut rest = input;
    let mut fragments = 0u64;
    while let Some((head, tail)) = rest.split_first_chunk::<7>() {
        let [id, off_hi, off_lo, flags, len, captured, ahead] = *head;
        let wire_len = u32::from(len) * 8 + u32::from(flags >> 4);
        let take = usize::from(captured).min(wire_len as usize).min(tail.len());
        let (bytes, after) = tail.split_at(take);
        rest = after;
        now += u64::from(ahead % 4);
        let f = Fragment {
            key: FragmentKey {
                src: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
                dst: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)),
                id: u32::from(id % 8),
                protocol: 6,
            },
            offset: u32::from(u16::from_be_bytes([off_hi, off_lo]) & 0x1fff) * 8,
            more: flags & 1 == 1,
            bytes,
            wire_len,
        };
        fragments += 1;
        if let Some(datagram) = d.add(Timestamp::from_secs(now), &f, &mut counts) {
            assert!(datagram.bytes.len() <= datagram.wire_len as usize);
            assert!(datagram.wire_len <= 65_535);
            assert_eq!(datagram.key, f.key);
        }
        let (datagrams, held) = d.in_flight();
        assert!(datagrams <= LIMITS.max_datagrams);
        assert!(held <= LIMITS.max_bytes, "{held} bytes held");
    }
    d.finish(&mut counts);
    assert_eq!(d.in_flight(), (0, 0));
    let fates: u64 = DefragEvent::FATES.iter().map(|e| counts[e.index()]).sum();
    assert!(fates <= fragments);
    assert!(counts[DefragEvent::Overlap.index()] <= fragments);
});
