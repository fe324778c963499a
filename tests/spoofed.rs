//! End to end: real sessions amid many spoofed one-packet flows (client payload to a mail
//! port, no handshake, no server byte). Only connections with a server are sessions, so the
//! coverage of the real sessions is what it is without the flood, and the flood is counted
//! apart (`connections_unanswered`, `mailtap_flows_unanswered_total`), never as plaintext.

mod common;

use common::pcapgen::{read_pcap, tcp_frame, PcapWriter, ACK, PSH};
use common::{case, mailtap_ok, scratch};
use serde_json::Value;
use std::io::BufWriter;
use std::net::{Ipv4Addr, SocketAddrV4};

/// Real captures (Ethernet, classic pcap) of encrypted and cleartext sessions.
const REAL: [&str; 6] = [
    "smtp-plaintext-no-starttls",
    "smtp-starttls-25",
    "submission-starttls-587",
    "tls13-x25519",
    "imap-login-cleartext",
    "pop3-stls",
];

fn write(path: &std::path::Path, spoofed: u32) {
    let mut frames: Vec<(u64, Vec<u8>)> = Vec::new();
    for name in REAL {
        frames.extend(read_pcap(&case(name).join("capture.pcap")).unwrap());
    }
    let (first, last) = (frames[0].0, frames.iter().map(|f| f.0).max().unwrap());
    let servers = [
        SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 3), 25),
        SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 3), 465),
        SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 3), 143),
    ];
    for i in 0..spoofed {
        let src = SocketAddrV4::new(
            Ipv4Addr::from(0x0a00_0000 + (i >> 4)),
            30_000 + (i & 0xf) as u16,
        );
        let dst = servers[i as usize % servers.len()];
        // Cleartext that looks like a dialogue, or bytes that look like TLS: neither makes a
        // session without a server.
        let payload: &[u8] = if i % 2 == 0 {
            b"EHLO spoof.example\r\n"
        } else {
            &[0x16, 3, 1, 0, 1, 1]
        };
        let ts = first + (last - first) * u64::from(i) / u64::from(spoofed);
        let seq = i.wrapping_mul(2_654_435_761);
        frames.push((ts, tcp_frame(src, dst, seq, !seq, PSH | ACK, payload)));
    }
    frames.sort_by_key(|f| f.0);
    let mut w = PcapWriter::new(BufWriter::new(std::fs::File::create(path).unwrap())).unwrap();
    for (ts, f) in &frames {
        w.frame(*ts, f).unwrap();
    }
}

fn report(path: &std::path::Path, metrics: &std::path::Path) -> Value {
    let out = mailtap_ok(&[
        "replay",
        "--quiet",
        "--format",
        "json",
        "--metrics-file",
        metrics.to_str().unwrap(),
        path.to_str().unwrap(),
    ]);
    serde_json::from_slice(&out.stdout).unwrap()
}

/// What the coverage is made of: sessions by protocol and encryption, and the protection rows.
fn coverage(r: &Value) -> (Value, Value, Value) {
    let sessions: Vec<Value> = r["protocols"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| serde_json::json!([p["protocol"], p["sessions"], p["connections"]]))
        .collect();
    (
        Value::from(sessions),
        r["protection"].clone(),
        r["tls"].clone(),
    )
}

#[test]
fn spoofed_one_packet_flows_do_not_change_the_coverage() {
    const SPOOFED: u32 = 60_000;
    let (clean, flooded) = (scratch("spoof-clean.pcap"), scratch("spoof-flooded.pcap"));
    let (m1, m2) = (scratch("spoof-clean.prom"), scratch("spoof-flooded.prom"));
    write(&clean, 0);
    write(&flooded, SPOOFED);
    let a = report(&clean, &m1);
    let b = report(&flooded, &m2);
    assert_eq!(coverage(&a), coverage(&b));
    assert_eq!(a["health"]["connections_unanswered"], 0);
    assert_eq!(b["health"]["connections_unanswered"], u64::from(SPOOFED));
    let sessions: u64 = b["protocols"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["connections"].as_u64().unwrap())
        .sum();
    assert_eq!(sessions, REAL.len() as u64);
    let prom = std::fs::read_to_string(&m2).unwrap();
    let unanswered: u64 = prom
        .lines()
        .filter(|l| l.starts_with("mailtap_flows_unanswered_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert_eq!(unanswered, u64::from(SPOOFED));
    for f in [clean, flooded, m1, m2] {
        let _ = std::fs::remove_file(f);
    }
}
