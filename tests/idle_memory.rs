//! End to end: what an idle, bypassed TLS connection costs. A real TLS 1.2 session
//! (fixtures/tls12-ecdhe-rsa) is copied N times with its own client port and cut before its
//! close, so every copy is judged, bypassed, and held open to the end of the capture. The
//! peak RSS of two runs (few and many copies) gives the cost of each extra connection; the
//! target is at most 1 KiB (measured: about 0.85 KiB, see README "Performance").

mod common;

use common::pcapgen::{read_pcap, rewrite_port, PcapWriter};
use common::{case, mailtap_ok, scratch};
use serde_json::Value;
use std::io::BufWriter;

/// The connection's frames without its FIN/RST ones (TCP flags at byte 14 + IHL + 13).
fn open_session() -> Vec<(u64, Vec<u8>)> {
    let frames = read_pcap(&case("tls12-ecdhe-rsa").join("capture.pcap")).unwrap();
    frames
        .into_iter()
        .filter(|(_, f)| {
            let ihl = usize::from(f[14] & 0x0f) * 4;
            f[14 + ihl + 13] & 0x05 == 0
        })
        .collect()
}

/// Peak RSS (bytes) and the report of replaying `copies` idle connections.
fn replay_copies(copies: u16) -> (u64, Value) {
    let frames = open_session();
    let client_port = {
        let f = &frames[0].1;
        let ihl = usize::from(f[14] & 0x0f) * 4;
        u16::from_be_bytes([f[14 + ihl], f[15 + ihl]])
    };
    let pcap = scratch(&format!("idle-{copies}.pcap"));
    let mut w = PcapWriter::new(BufWriter::new(std::fs::File::create(&pcap).unwrap())).unwrap();
    // Copies start 20 µs apart and interleave (each session spans milliseconds).
    let mut all = Vec::new();
    for i in 0..copies {
        for (ts, f) in &frames {
            let mut f = f.clone();
            rewrite_port(&mut f, client_port, 1024 + i);
            all.push((ts + u64::from(i) * 20, f));
        }
    }
    all.sort_by_key(|(ts, _)| *ts);
    for (ts, f) in &all {
        w.frame(*ts, f).unwrap();
    }
    drop(w);
    let out = mailtap_ok(&[
        "replay",
        "--quiet",
        "--workers",
        "1",
        "--format",
        "json",
        pcap.to_str().unwrap(),
    ]);
    let _ = std::fs::remove_file(&pcap);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rss = report["health"]["peak_rss_bytes"].as_u64().unwrap();
    (rss, report)
}

#[test]
fn an_idle_bypassed_tls_connection_costs_at_most_1_kib() {
    const FEW: u16 = 5_000;
    const MANY: u16 = 45_000;
    let (rss_few, few) = replay_copies(FEW);
    let (rss_many, many) = replay_copies(MANY);
    // Every copy was a session held open to the end: judged TLS, bypassed, idle.
    for (report, n) in [(&few, FEW), (&many, MANY)] {
        let h = &report["health"];
        assert_eq!(h["flows_peak"].as_u64(), Some(u64::from(n)), "{h}");
        assert_eq!(
            h["flows_closed"]["end_of_capture"].as_u64(),
            Some(u64::from(n)),
            "{h}"
        );
        let smtps = report["protocols"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["protocol"] == "submissions")
            .unwrap();
        assert_eq!(
            smtps["sessions"]["implicit_tls"].as_u64(),
            Some(u64::from(n))
        );
    }
    let per_flow = (rss_many.saturating_sub(rss_few)) / u64::from(MANY - FEW);
    eprintln!(
        "idle bypassed TLS connections: {FEW} → {} KiB, {MANY} → {} KiB: {per_flow} bytes each",
        rss_few / 1024,
        rss_many / 1024
    );
    assert!(per_flow <= 1024, "{per_flow} bytes per idle connection");
}
