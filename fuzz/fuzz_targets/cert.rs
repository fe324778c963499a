//! Drives `mailtap::session::cert::assess` on a fuzzed chain. Input: a byte choosing the name
//! asked for (none, the fixtures' names, an IP), a byte choosing the moment, then the
//! certificates, each a `u16` length and its DER bytes (`mailtap_fuzz::reader`).
//!
//! Checks that the verdict is one of the statuses `assess` gives (never `partial`, which only
//! the TLS analyzer gives for a chain a gap cut), and `absent` only for an empty chain.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailtap::session::cert::{assess, CertStatus};
use mailtap::source::Timestamp;
use mailtap_fuzz::context::tls_context;
use mailtap_fuzz::reader::Reader;

const NAMES: [Option<&str>; 4] = [
    None,
    Some("mail.example.test"),
    Some("other.example.test"),
    Some("127.0.0.1"),
];

/// The fixtures' capture time, the epoch, far past their certificates, and a 1990 date.
const MOMENTS: [Timestamp; 4] = [
    Timestamp::from_secs(1_795_896_000),
    Timestamp::ZERO,
    Timestamp::from_secs(4_102_444_800),
    Timestamp::from_secs(631_152_000),
];

fuzz_target!(|input: &[u8]| {
    let mut r = Reader::new(input);
    let (Some(name), Some(moment)) = (r.u8(), r.u8()) else {
        return;
    };
    let sni = NAMES[usize::from(name) % NAMES.len()];
    let ts = MOMENTS[usize::from(moment) % MOMENTS.len()];
    let mut chain = Vec::new();
    while let Some(len) = r.u16() {
        chain.push(r.take(usize::from(len)).to_vec());
    }
    let info = assess(&tls_context(), &chain, sni, ts);
    // `partial` is for a certificate a capture gap hid: never the verdict on a whole chain.
    assert_ne!(info.status, CertStatus::Partial, "{}", info.status);
    assert_eq!(chain.is_empty(), info.status == CertStatus::Absent);
});
