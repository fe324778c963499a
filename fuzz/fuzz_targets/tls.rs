//! Drives `mailtap::session::tls::TlsAnalyzer` with both directions of a stream script
//! interleaved (data, gaps, ends) until it has judged the handshake, then reads `info()`.
//!
//! Checks what the analyzer documents: the verdict is unchanged when the buffers are released
//! after judging, and it agrees with `established()`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailtap::session::anomaly::Anomalies;
use mailtap::session::tls::{TlsAnalyzer, TlsProgress};
use mailtap::source::Timestamp;
use mailtap_fuzz::context::tls_context;
use mailtap_fuzz::script::{self, Event};

/// 2026-11-28: inside the validity of the fixtures' certificates.
const NOW: Timestamp = Timestamp::from_secs(1_795_896_000);

fuzz_target!(|input: &[u8]| {
    let mut tls = TlsAnalyzer::new(tls_context());
    let mut anomalies = Anomalies::default();
    for event in script::events(input) {
        let progress = match event {
            Event::Data(dir, data) => tls.on_data(dir, data, NOW, &mut anomalies),
            Event::Gap(dir, len) => tls.on_gap(dir, len, NOW, &mut anomalies),
            Event::Eof(dir) => {
                tls.on_eof(dir, &mut anomalies);
                TlsProgress::NeedMore
            }
        };
        if progress == TlsProgress::Judged {
            break;
        }
    }
    let info = tls.info();
    assert_eq!(info.established, tls.established());
    tls.release_buffers();
    assert_eq!(tls.info(), info, "releasing the buffers keeps the verdict");
});
