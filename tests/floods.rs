//! End to end: SYN floods and half-open handshakes mixed with real sessions. The flow table
//! stays under `--max-flows`, evictions are counted, memory stays bounded, and the real
//! sessions (copied from fixtures, client ports rewritten) still give their expected records.
//! The capture is made at test time; `examples/make-flood.rs` makes the 1M-connection one.

mod common;

use common::pcapgen::{flood_frames, read_pcap, rewrite_port, PcapWriter};
use common::{assert_subset, case, mailtap_ok, read_jsonl, scratch};
use serde_json::Value;
use std::io::BufWriter;
use std::net::{Ipv4Addr, SocketAddrV4};

const REAL: [&str; 5] = [
    "smtp-plaintext-no-starttls",
    "smtp-starttls-25",
    "tls13-x25519",
    "imap-login-cleartext",
    "pop3-user-pass",
];

fn port_of(addr: &Value) -> u16 {
    addr.as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// The capture: every real session, each amid a burst of flood connections to its server
/// (one second around its start), written in time order. Returns the expected records
/// (client ports rewritten to 50000 + i).
fn write_flood(path: &std::path::Path, syns: u32, half_open: u32) -> Vec<Value> {
    let mut frames = Vec::new();
    let mut want = Vec::new();
    let n = REAL.len() as u32;
    for (i, name) in REAL.iter().enumerate() {
        let dir = case(name);
        let mut rec = read_jsonl(&dir.join("expected.jsonl")).remove(0);
        let old = port_of(&rec["client"]);
        let new = 50_000 + i as u16;
        let ip = rec["client"]
            .as_str()
            .unwrap()
            .rsplit_once(':')
            .unwrap()
            .0
            .to_string();
        rec["client"] = Value::from(format!("{ip}:{new}"));
        let server: SocketAddrV4 = rec["server"].as_str().unwrap().parse().unwrap();
        let real = read_pcap(&dir.join("capture.pcap")).unwrap();
        let start = real[0].0;
        for (ts, mut f) in real {
            rewrite_port(&mut f, old, new);
            frames.push((ts, f));
        }
        let (s, h) = (syns / n, half_open / n);
        // Distinct clients per burst: 10.i.0.0 upwards.
        let clients = Ipv4Addr::new(10, i as u8, 0, 0);
        frames.extend(flood_frames(
            server,
            clients,
            s,
            h,
            start - 500_000,
            1_000_000,
        ));
        want.push(rec);
    }
    frames.sort_by_key(|(ts, _)| *ts);
    let mut w = PcapWriter::new(BufWriter::new(std::fs::File::create(path).unwrap())).unwrap();
    for (ts, f) in &frames {
        w.frame(*ts, f).unwrap();
    }
    want
}

#[test]
fn a_syn_flood_with_half_open_handshakes_stays_under_the_caps() {
    const SYNS: u32 = 100_000;
    const HALF_OPEN: u32 = 20_000;
    const MAX_FLOWS: u64 = 5_000;
    let pcap = scratch("flood.pcap");
    let mut want = write_flood(&pcap, SYNS, HALF_OPEN);
    let sessions = scratch("flood.jsonl");
    let out = mailtap_ok(&[
        "replay",
        "--quiet",
        "--format",
        "json",
        "--workers",
        "2",
        "--max-flows",
        &MAX_FLOWS.to_string(),
        "--sessions",
        sessions.to_str().unwrap(),
        pcap.to_str().unwrap(),
    ]);
    let _ = std::fs::remove_file(&pcap);
    let mut got = read_jsonl(&sessions);
    let _ = std::fs::remove_file(&sessions);

    // The real sessions, and nothing else, are sessions; each as its fixture says.
    got.sort_by_key(|r| port_of(&r["client"]));
    want.sort_by_key(|r| port_of(&r["client"]));
    assert_eq!(got.len(), want.len(), "{got:#?}");
    for (g, w) in got.iter().zip(&want) {
        // Under a full table a flow that has ended (FIN both ways) is the first evicted, so
        // the final ACK that follows it may open a (payload-less) flow of its own instead of
        // being absorbed: `ts_end` may then be that ACK's few microseconds early.
        let (mut g, mut w) = (g.clone(), w.clone());
        let g_end = g.as_object_mut().unwrap().remove("ts_end").unwrap();
        let w_end = w.as_object_mut().unwrap().remove("ts_end").unwrap();
        assert!(g_end.as_str() <= w_end.as_str(), "{g_end} {w_end}");
        assert!(g_end.as_str() >= g["ts_start"].as_str());
        assert_subset(w["client"].as_str().unwrap(), &g, &w);
    }

    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let h = &report["health"];
    let flood = u64::from(SYNS + HALF_OPEN);
    // The flood, plus at most one stray final ACK per real session (see above).
    let without = h["connections_without_payload"].as_u64().unwrap();
    assert!(
        (flood..=flood + want.len() as u64).contains(&without),
        "{h}"
    );
    assert!(h["flows_peak"].as_u64().unwrap() <= MAX_FLOWS, "{h}");
    let evicted = &h["flows_evicted"];
    let table_full = evicted["table_full"].as_u64().unwrap();
    let embryonic = evicted["embryonic_timeout"].as_u64().unwrap();
    assert!(table_full > 0, "{h}");
    let closed: u64 = h["flows_closed"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert!(
        closed >= flood + want.len() as u64,
        "every flow closed: {h}"
    );
    let end = h["flows_closed"]["end_of_capture"].as_u64().unwrap();
    assert!(end <= 2 * MAX_FLOWS, "the table never held more: {h}");
    assert!(table_full + embryonic + end >= flood, "{h}");
    let rss = h["peak_rss_bytes"].as_u64().unwrap();
    eprintln!(
        "flood of {flood} (max-flows {MAX_FLOWS}): peak RSS {} KiB, peak flows {}, evicted {evicted}",
        rss / 1024,
        h["flows_peak"]
    );
    assert!(rss < 64 * 1024 * 1024, "peak RSS {rss}");
}
