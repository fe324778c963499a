//! Drives the whole engine (`mailtap::engine::Engine`, inline, one worker, default ports and
//! limits) over the input as a capture file: reader → decode → flow table → sessions →
//! records, then `finish()`. The sink only counts what leaves.
//!
//! Checks that every packet read is counted once by result, and that every record belongs to a
//! connection that carried a payload byte.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailtap::config::{Limits, PortMap};
use mailtap::engine::{Engine, EngineConfig, Finished, Sink};
use mailtap::source::file::CaptureFile;
use mailtap_fuzz::context::tls_context;
use std::io::Cursor;

#[derive(Default)]
struct Count {
    flows: u64,
    records: u64,
}

impl Sink for Count {
    fn finished(&mut self, f: Finished) {
        self.flows += 1;
        if let Some(record) = f.record {
            assert!(record.bytes_to_server + record.bytes_to_client > 0);
            self.records += 1;
        }
    }
}

fuzz_target!(|input: &[u8]| {
    let Ok(mut file) = CaptureFile::from_reader("fuzz".into(), Cursor::new(input.to_vec())) else {
        return;
    };
    let cfg = EngineConfig {
        ports: PortMap::default(),
        limits: Limits::default(),
        tls: tls_context(),
        workers: 0,
    };
    let mut engine = Engine::new(cfg, Count::default());
    let mut packets = 0u64;
    let _ = file.for_each(&mut |packet, _| {
        packets += 1;
        engine.packet(packet);
    });
    let (count, health) = engine.finish();
    assert_eq!(
        health.packets.iter().sum::<u64>(),
        packets,
        "each packet counted once"
    );
    assert!(count.records <= count.flows);
});
