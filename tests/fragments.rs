//! End to end, hostile: IP fragments and tunnels built to exhaust a sensor. A flood of first
//! fragments that never complete stays under the defragmenter's caps (and is counted), a real
//! session after it is still read exactly; tunnels nested past the bound are counted and do
//! not recurse. The captures are made at test time from a real fixture (smtp-starttls-25);
//! the expected records are the fixture's own.

mod common;

use common::pcapgen::{read_pcap, PcapWriter};
use common::{case, mailtap_ok, read_jsonl, scratch};
use serde_json::Value;
use std::io::BufWriter;
use std::path::Path;

const REAL: &str = "smtp-starttls-25";

fn write(path: &Path, frames: &[(u64, Vec<u8>)]) {
    let file = std::fs::File::create(path).unwrap();
    let mut w = PcapWriter::new(BufWriter::new(file)).unwrap();
    for (ts, f) in frames {
        w.frame(*ts, f).unwrap();
    }
    drop(w.into_inner());
}

/// The IPv4 header checksum (RFC 791), over `header` with its checksum field zeroed.
fn ip_checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An Ethernet/IPv4 header for `payload` (protocol `proto`), identification `id`, fragment
/// field `frag` (flags and offset in 8-byte units).
fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, id: u16, frag: u16, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x45, 0];
    h.extend(((20 + payload.len()) as u16).to_be_bytes());
    h.extend(id.to_be_bytes());
    h.extend(frag.to_be_bytes());
    h.extend([64, proto, 0, 0]);
    h.extend(src);
    h.extend(dst);
    let sum = ip_checksum(&h);
    h[10..12].copy_from_slice(&sum.to_be_bytes());
    h.extend_from_slice(payload);
    h
}

fn ethernet(ip: &[u8]) -> Vec<u8> {
    let mut f = vec![0; 12];
    f.extend([0x08, 0x00]);
    f.extend_from_slice(ip);
    f
}

/// The IPv4 packet of an Ethernet frame.
fn ip_of(frame: &[u8]) -> &[u8] {
    assert_eq!(frame[12..14], [0x08, 0x00], "an IPv4 frame");
    let total = usize::from(u16::from_be_bytes([frame[16], frame[17]]));
    &frame[14..14 + total]
}

fn replay(pcap: &Path, extra: &[&str]) -> (Vec<Value>, Value) {
    let sessions = scratch("fragments.jsonl");
    let mut args = vec!["replay", "--quiet", "--format", "json"];
    args.extend(extra);
    args.extend([
        "--sessions",
        sessions.to_str().unwrap(),
        pcap.to_str().unwrap(),
    ]);
    let out = mailtap_ok(&args);
    let records = read_jsonl(&sessions);
    let _ = std::fs::remove_file(&sessions);
    (records, serde_json::from_slice(&out.stdout).unwrap())
}

fn real() -> (Vec<(u64, Vec<u8>)>, Vec<Value>) {
    let dir = case(REAL);
    (
        read_pcap(&dir.join("capture.pcap")).unwrap(),
        read_jsonl(&dir.join("expected.jsonl")),
    )
}

#[test]
fn a_flood_of_first_fragments_stays_under_the_caps() {
    const FLOOD: u32 = 100_000;
    const PIECE: usize = 1480;
    const CAP: u64 = 4 * 1024 * 1024;
    let (session, want) = real();
    let start = session[0].0;
    // First fragments (MF set, offset 0) of TCP to port 25 from 100,000 sources, none ever
    // completed, 61 s before the real session: the first fragment of the session is more than
    // the 60 s timeout later, but none comes, so they stay held to the end.
    let mut tcp = vec![0u8; PIECE];
    tcp[0..4].copy_from_slice(&[0x9c, 0x40, 0, 25]);
    let mut frames: Vec<(u64, Vec<u8>)> = (0..FLOOD)
        .map(|i| {
            let src = [10, (i >> 16) as u8, (i >> 8) as u8, i as u8];
            let ip = ipv4(src, [192, 0, 2, 25], 6, i as u16, 0x2000, &tcp);
            (start - 61_000_000, ethernet(&ip))
        })
        .collect();
    frames.extend(session.iter().cloned());
    let pcap = scratch("fragment-flood.pcap");
    write(&pcap, &frames);
    drop(frames);
    let (got, report) = replay(&pcap, &["--defrag-max-bytes", "4MiB"]);
    let (_, plain) = {
        let real = scratch("fragment-flood-baseline.pcap");
        write(&real, &session);
        let r = replay(&real, &[]);
        let _ = std::fs::remove_file(&real);
        r
    };
    let _ = std::fs::remove_file(&pcap);

    assert_eq!(got, want, "the real session is read as without the flood");
    let h = &report["health"];
    let d = &h["ip_datagrams"];
    let count = |k: &str| d[k].as_u64().unwrap();
    let held = count("end_of_capture");
    assert_eq!(count("over_cap") + held, u64::from(FLOOD), "{d}");
    assert_eq!(
        count("reassembled") + count("timeout") + count("invalid"),
        0
    );
    // Held up to the byte cap, and no further.
    assert!(held * PIECE as u64 <= CAP, "{held} held");
    assert!((held + 1) * PIECE as u64 > CAP, "{held} held");
    assert_eq!(h["packets"]["fragment"].as_u64().unwrap(), u64::from(FLOOD));
    let lower: Vec<&str> = report["lower_bounds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["reason"].as_str().unwrap())
        .collect();
    assert!(lower.contains(&"ip_datagrams_given_up"), "{lower:?}");
    // Memory: what was held is bounded by the cap, not by the 148 MB the flood carried.
    let rss = h["peak_rss_bytes"].as_u64().unwrap();
    let base = plain["health"]["peak_rss_bytes"].as_u64().unwrap();
    eprintln!(
        "fragment flood of {FLOOD}: peak RSS {} KiB (without it {} KiB), {held} held",
        rss / 1024,
        base / 1024
    );
    assert!(
        rss < base + 48 * 1024 * 1024,
        "peak RSS {rss}, baseline {base}"
    );
}

#[test]
fn fragments_that_time_out_are_counted_and_a_late_one_starts_afresh() {
    let (session, want) = real();
    let start = session[0].0;
    let payload = [0u8; 64];
    let mut tcp = payload.to_vec();
    tcp[0..4].copy_from_slice(&[0x9c, 0x40, 0, 25]);
    let first = ipv4([10, 9, 9, 9], [192, 0, 2, 25], 6, 7, 0x2000, &tcp[..32]);
    let last = ipv4([10, 9, 9, 9], [192, 0, 2, 25], 6, 7, 4, &tcp[32..]);
    let mut frames = vec![(start - 70_000_000, ethernet(&first))];
    // The session in between, its own fragments cut from its frames: the first of them is
    // 70 s after the lone first fragment, which times out then.
    for (ts, f) in &session {
        let ip = ip_of(f);
        let (header, body) = ip.split_at(20);
        if body.len() <= 16 {
            frames.push((*ts, f.clone()));
            continue;
        }
        let id = u16::from_be_bytes([header[4], header[5]]);
        let (src, dst) = (
            header[12..16].try_into().unwrap(),
            header[16..20].try_into().unwrap(),
        );
        frames.push((*ts, ethernet(&ipv4(src, dst, 6, id, 0x2000, &body[..16]))));
        frames.push((*ts, ethernet(&ipv4(src, dst, 6, id, 2, &body[16..]))));
    }
    // The lone datagram's end, long after its first fragment: it starts a new datagram.
    frames.push((session.last().unwrap().0, ethernet(&last)));
    let pcap = scratch("fragment-timeout.pcap");
    write(&pcap, &frames);
    let (got, report) = replay(&pcap, &[]);
    let _ = std::fs::remove_file(&pcap);
    assert_eq!(got, want);
    let d = &report["health"]["ip_datagrams"];
    let fragmented = session.iter().filter(|(_, f)| ip_of(f).len() > 36).count();
    assert_eq!(d["reassembled"].as_u64(), Some(fragmented as u64), "{d}");
    assert_eq!(d["timeout"].as_u64(), Some(1), "{d}");
    assert_eq!(d["end_of_capture"].as_u64(), Some(1), "{d}");
}

#[test]
fn tunnels_nested_past_the_bound_are_counted_and_do_not_recurse() {
    let (session, want) = real();
    let wrap = |f: &[u8], times: usize| {
        let mut ip = ip_of(f).to_vec();
        for _ in 0..times {
            ip = ipv4([192, 0, 2, 1], [192, 0, 2, 2], 4, 0, 0, &ip);
        }
        ethernet(&ip)
    };
    // Three IP-in-IP tunnels: the bound; the session reads as without them.
    let pcap = scratch("nested-3.pcap");
    let three: Vec<_> = session.iter().map(|(t, f)| (*t, wrap(f, 3))).collect();
    write(&pcap, &three);
    let (got, _) = replay(&pcap, &[]);
    assert_eq!(got, want);
    // Four, and one frame wrapped 3,000 times (60 kB of headers): counted, nothing more.
    let mut four: Vec<_> = session.iter().map(|(t, f)| (*t, wrap(f, 4))).collect();
    four.push((session[0].0, wrap(&session[0].1, 3_000)));
    write(&pcap, &four);
    let (got, report) = replay(&pcap, &[]);
    let _ = std::fs::remove_file(&pcap);
    assert!(got.is_empty(), "{got:?}");
    let packets = &report["health"]["packets"];
    assert_eq!(
        packets["encapsulation_too_deep"].as_u64(),
        Some(four.len() as u64),
        "{packets}"
    );
}
