//! Drives a whole `mailtap::session::Session` (detection, cleartext dialogue, STARTTLS, TLS,
//! bypass) the way the flow table does: the first byte chooses the protocol (an index into
//! `Protocol::ALL`; bit 7 says the flow was picked up mid-stream), the rest is a stream script
//! of both directions, fed until the session says it is done; then `into_record()`.
//!
//! Checks what `into_record` documents: a record exactly when a payload byte was seen and a
//! server took part (`FlowInfo::server_seen`), with the connection's byte counts. A flow with
//! payload but no server is unanswered (`FlowInfo::unanswered`, counted apart, never a record).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailtap::config::Protocol;
use mailtap::flow::table::FlowInfo;
use mailtap::flow::{Direction, FlowHandler, Interest, StreamEvent};
use mailtap::session::anomaly::Anomaly;
use mailtap::session::Session;
use mailtap::source::Timestamp;
use mailtap_fuzz::context::tls_context;
use mailtap_fuzz::script::{self, Event};

const NOW: Timestamp = Timestamp::from_secs(1_795_896_000);

fuzz_target!(|input: &[u8]| {
    let Some((&selector, rest)) = input.split_first() else {
        return;
    };
    let protocol = Protocol::ALL[usize::from(selector & 0x7f) % Protocol::ALL.len()];
    let mut session = Session::new(protocol, tls_context());
    if selector & 0x80 != 0 {
        session.on_anomaly(Anomaly::MidstreamPickup);
    }
    let mut bytes = [0u64; 2];
    let mut ended = [false; 2];
    let mut interest = Interest::More;
    for event in script::events(rest) {
        let dir = event.direction();
        if ended[dir.index()] {
            continue;
        }
        let stream_event = match event {
            Event::Data(_, []) => continue,
            Event::Data(_, data) => {
                bytes[dir.index()] += data.len() as u64;
                StreamEvent::Data(data)
            }
            Event::Gap(_, 0) => continue,
            Event::Gap(_, len) => {
                bytes[dir.index()] += len;
                StreamEvent::Gap(len)
            }
            Event::Eof(_) => {
                ended[dir.index()] = true;
                StreamEvent::Eof
            }
        };
        interest = session.on_stream(dir, stream_event, NOW);
        if interest == Interest::Done {
            break;
        }
    }
    // The end of the capture ends what is still open (a bypassed flow gets nothing more).
    if interest == Interest::More {
        for dir in [Direction::ToServer, Direction::ToClient] {
            if !ended[dir.index()] {
                session.on_stream(dir, StreamEvent::Eof, NOW);
            }
        }
    }
    let info = FlowInfo {
        client: "192.0.2.1:51234".parse().expect("an address"),
        server: "198.51.100.7:25".parse().expect("an address"),
        protocol,
        first_ts: NOW,
        last_ts: NOW,
        packets: [1, 1],
        bytes,
        handshake_seen: selector & 0x80 == 0,
        bypassed: interest == Interest::Done,
        // A server answered: its payload, or the handshake (its SYN-ACK) was seen.
        server_seen: bytes[1] > 0 || selector & 0x80 == 0,
    };
    let payload = bytes != [0, 0];
    assert_eq!(
        info.unanswered(),
        payload && !info.server_seen,
        "unanswered iff a payload byte and no server"
    );
    let record = session.into_record(&info);
    assert_eq!(
        record.is_some(),
        payload && !info.unanswered(),
        "a record iff a payload byte and not unanswered"
    );
    if let Some(r) = record {
        assert_eq!([r.bytes_to_server, r.bytes_to_client], bytes);
        assert_eq!(r.protocol, protocol);
    }
});
