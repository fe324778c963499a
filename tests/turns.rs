//! Workers that take turns reading (`Engine::for_files` with two workers or more): every
//! fixture capture read one after another into one engine, as `replay DIR` does, gives the
//! records and counts that one thread gives, whatever the number of workers; and so do
//! packets handed over by the caller instead of read by the workers.

mod common;

use mailtap::config::{Limits, PortMap};
use mailtap::engine::{Engine, EngineConfig, Finished, Health, Sink};
use mailtap::session::cert::TlsContext;
use mailtap::source::file::{CaptureFile, Input};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Default)]
struct Records(Vec<String>);

impl Sink for Records {
    fn finished(&mut self, f: Finished) {
        let record = f
            .record
            .map(|r| serde_json::to_string(&r).expect("record serializes"));
        self.0
            .push(format!("{:?} {:?} {record:?}", f.info, f.reason));
    }
}

fn engine(workers: usize) -> Engine<Records> {
    let cfg = EngineConfig {
        ports: PortMap::default(),
        limits: Limits::default(),
        tls: Arc::new(TlsContext::new(&[]).expect("Mozilla roots load")),
        workers,
    };
    Engine::for_files(cfg, Records::default())
}

fn captures() -> Vec<PathBuf> {
    common::cases()
        .iter()
        .filter_map(|dir| common::capture_of(dir))
        .collect()
}

/// What the engine's workers found, in an order that does not depend on them; the peak of
/// flows held at once is left out (it is summed over workers).
fn outcome(engine: Engine<Records>) -> (Vec<String>, Health) {
    let (mut records, mut health) = engine.finish();
    records.0.sort();
    health.peak_flows = 0;
    (records.0, health)
}

fn read_all(workers: usize) -> (Vec<String>, Health, u64) {
    let mut engine = engine(workers);
    let mut total = 0;
    for path in captures() {
        let read = engine.read_input(&Input::Path(path.clone()), &mut |_| {});
        let (packets, result) = (read.packets, read.result);
        assert!(result.is_ok(), "{}: {result:?}", path.display());
        total += packets;
    }
    let (records, health) = outcome(engine);
    (records, health, total)
}

#[test]
fn workers_reading_in_turn_find_what_one_thread_finds() {
    let (records, health, packets) = read_all(0);
    assert!(records.len() > 50, "{} records", records.len());
    assert_eq!(health.packets.iter().sum::<u64>(), packets);
    for workers in [2, 3, 5] {
        let (r, h, p) = read_all(workers);
        assert_eq!(p, packets, "{workers} workers");
        assert_eq!(h, health, "{workers} workers");
        assert_eq!(r, records, "{workers} workers");
    }
}

#[test]
fn packets_handed_over_by_the_caller_give_the_same() {
    let (records, health, _) = read_all(0);
    let mut engine = engine(3);
    for path in captures() {
        let mut file = CaptureFile::open(&Input::Path(path)).expect("fixture opens");
        file.for_each_batch(&mut |batch, _| engine.packets(batch))
            .expect("fixture reads to its end");
    }
    let (r, h) = outcome(engine);
    assert_eq!(h, health);
    assert_eq!(r, records);
}

#[test]
fn a_bad_file_keeps_what_was_read_before_the_bad_block() {
    // A real capture of several pieces (see `source::split`), cut short in its third.
    let bytes = std::fs::read(common::case("evasion-line-1mb").join("capture.pcap"))
        .expect("fixture reads");
    assert!(bytes.len() > 1_000_000);
    let cut = common::scratch("turns-cut.pcap");
    std::fs::write(&cut, bytes.get(..700_001).expect("700 kB")).expect("scratch file");
    let read = |workers: usize| {
        let mut engine = engine(workers);
        let read = engine.read_input(&Input::Path(cut.clone()), &mut |_| {});
        let (packets, result) = (read.packets, read.result);
        let error = result.expect_err("the file is cut short").to_string();
        let (records, health) = outcome(engine);
        (packets, error, records, health)
    };
    let one = read(0);
    assert!(one.0 > 10, "{} packets", one.0);
    assert!(
        one.1.contains("turns-cut.pcap: truncated at byte "),
        "{}",
        one.1
    );
    assert_eq!(read(2), one);
    assert_eq!(read(3), one);
    let _ = std::fs::remove_file(cut);
}

/// The records (header and data) of a little-endian, microsecond, Ethernet classic pcap.
fn ethernet_records(bytes: &[u8]) -> Option<Vec<&[u8]>> {
    let header = bytes.get(..24)?;
    let little_endian_micros = header.get(..4)? == [0xd4, 0xc3, 0xb2, 0xa1];
    if !little_endian_micros || header.get(20..24)? != [1, 0, 0, 0] {
        return None;
    }
    let mut out = Vec::new();
    let mut at = 24;
    while let Some(len) = bytes.get(at + 8..at + 12) {
        let end = at + 16 + u32::from_le_bytes(len.try_into().ok()?) as usize;
        out.push(bytes.get(at..end)?);
        at = end;
    }
    Some(out)
}

#[test]
fn a_file_of_many_pieces_and_small_records_reads_alike() {
    // The real Ethernet captures of the fixtures one after another, over and over: thousands
    // of records cut by piece boundaries anywhere.
    let files: Vec<Vec<u8>> = captures()
        .iter()
        .filter_map(|p| std::fs::read(p).ok())
        .collect();
    let mut out = files
        .first()
        .and_then(|f| f.get(..24))
        .expect("a header")
        .to_vec();
    let records: Vec<&[u8]> = files
        .iter()
        .filter_map(|f| ethernet_records(f))
        .flatten()
        .filter(|r| r.len() < 4096)
        .collect();
    assert!(records.len() > 500, "{} records", records.len());
    while out.len() < 3_000_000 {
        for r in &records {
            out.extend_from_slice(r);
        }
    }
    let big = common::scratch("turns-big.pcap");
    std::fs::write(&big, &out).expect("scratch file");
    let read = |workers: usize| {
        let mut engine = engine(workers);
        let read = engine.read_input(&Input::Path(big.clone()), &mut |_| {});
        assert!(read.result.is_ok(), "{:?}", read.result);
        let (records, health) = outcome(engine);
        // The file's time span too: every worker's chunks count towards it.
        (read.packets, records, health, read.span)
    };
    let one = read(0);
    assert!(one.0 > 10_000, "{} packets", one.0);
    assert_eq!(read(2), one);
    assert_eq!(read(4), one);
    let _ = std::fs::remove_file(big);
}
