//! End to end: servers that choose their TLS parameters to grow the metrics. Every session
//! of the capture negotiates a version, cipher suite, group or DH prime size of its own that
//! no registry lists; the session log keeps each as data, but the `mailtap_tls_*` series and
//! the report's TLS tallies take their label values from closed sets (`other`, the
//! `dh_under_2048` / `dh2048` / `dh3072_plus` buckets), so 300 hostile sessions make exactly
//! the series that three of them make.
//!
//! The capture is made at test time from hand-made handshake bytes (this is a hostile-input
//! test): TCP on 465 and 993, where TLS starts with the first byte.
//! - on 465, a ClientHello, then a ServerHello whose supported_versions picks `0x0305 + i`
//!   (anything ≥ TLS 1.3 is read as TLS 1.3), suite `0x7a00 + i` and key_share group
//!   `0x3000 + i`, all unassigned;
//! - on 993, a ClientHello, then a ServerHello whose supported_versions picks `0x0100 + i`
//!   (below TLS 1.3: a TLS ≤ 1.2 handshake follows) and TLS_DHE_RSA_WITH_AES_128_GCM_SHA256, a ServerKeyExchange whose prime has a size of its
//!   own in one of the three buckets (`i % 3`), and ServerHelloDone.

mod common;

use common::pcapgen::{Conversation, PcapWriter};
use common::{mailtap_ok, read_jsonl, scratch};
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::{BufWriter, Write};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;

/// How many sessions of each kind the hostile capture has.
const HOSTILE: u16 = 300;

const TLS_DHE_RSA_WITH_AES_128_GCM_SHA256: u16 = 0x009e;

fn u16s(v: u16) -> [u8; 2] {
    v.to_be_bytes()
}

/// `body` behind a u16 length.
fn vec16(body: &[u8]) -> Vec<u8> {
    let mut out = u16s(u16::try_from(body.len()).unwrap()).to_vec();
    out.extend(body);
    out
}

/// A handshake message: type, u24 length, body.
fn handshake(ty: u8, body: &[u8]) -> Vec<u8> {
    let len = u32::try_from(body.len()).unwrap().to_be_bytes();
    let mut out = vec![ty, len[1], len[2], len[3]];
    out.extend(body);
    out
}

/// One handshake record (TLS 1.2 record version) holding `messages`.
fn record(messages: &[Vec<u8>]) -> Vec<u8> {
    let body = messages.concat();
    let mut out = vec![0x16, 3, 3];
    out.extend(vec16(&body));
    out
}

fn client_hello() -> Vec<u8> {
    let mut body = u16s(0x0303).to_vec();
    body.extend([0x11; 32]);
    body.push(0);
    body.extend(vec16(&[0x13, 0x01, 0x00, 0x9e]));
    body.extend([1, 0]);
    record(&[handshake(1, &body)])
}

/// A ServerHello body: legacy version, suite, extensions.
fn server_hello(version: u16, suite: u16, extensions: &[u8]) -> Vec<u8> {
    let mut body = u16s(version).to_vec();
    body.extend([0x22; 32]);
    body.push(0);
    body.extend(u16s(suite));
    body.push(0);
    body.extend(vec16(extensions));
    handshake(2, &body)
}

/// A supported_versions extension of a ServerHello: the version chosen. (The legacy field
/// of a ServerHello parses only as 3.0–3.3; this one is any u16.)
fn supported_versions(version: u16) -> Vec<u8> {
    let mut ext = u16s(0x002b).to_vec();
    ext.extend(vec16(&u16s(version)));
    ext
}

/// A "TLS 1.3" ServerHello choosing `version`, `suite` and key_share `group`.
fn tls13_flight(version: u16, suite: u16, group: u16) -> Vec<u8> {
    let mut ext = supported_versions(version);
    let mut share = u16s(group).to_vec();
    share.extend(vec16(&[0x33; 32]));
    ext.extend(u16s(0x0033));
    ext.extend(vec16(&share));
    record(&[server_hello(0x0303, suite, &ext)])
}

/// A prime-shaped number of exactly `bits` significant bits (odd, all ones below the top).
fn prime_of(bits: usize) -> Vec<u8> {
    let mut p = vec![0xff; bits.div_ceil(8)];
    p[0] = 0xff >> (p.len() * 8 - bits);
    p
}

/// A TLS ≤ 1.2 flight: ServerHello of `version`, a DHE ServerKeyExchange over a prime of
/// `bits`, ServerHelloDone.
fn dhe_flight(version: u16, bits: usize) -> Vec<u8> {
    let mut ske = vec16(&prime_of(bits));
    ske.extend(vec16(&[2]));
    ske.extend(vec16(&[0x44; 64]));
    ske.extend(u16s(0x0401));
    ske.extend(vec16(&[0x55; 64]));
    record(&[
        server_hello(
            0x0303,
            TLS_DHE_RSA_WITH_AES_128_GCM_SHA256,
            &supported_versions(version),
        ),
        handshake(12, &ske),
        handshake(14, &[]),
    ])
}

/// The prime size of DHE session `i`: bucket `i % 3`, a size no other session has.
fn dh_bits(i: u16) -> usize {
    let step = usize::from(i / 3);
    match i % 3 {
        0 => 512 + step,
        1 => 2048 + step,
        _ => 3072 + step,
    }
}

/// `n` sessions of each kind.
fn write(path: &Path, n: u16) {
    let mut w = PcapWriter::new(BufWriter::new(std::fs::File::create(path).unwrap())).unwrap();
    let tls13_server = SocketAddrV4::new(Ipv4Addr::new(127, 0, 2, 1), 465);
    let dhe_server = SocketAddrV4::new(Ipv4Addr::new(127, 0, 2, 2), 993);
    let mut ts = 1_800_000_000_000_000u64;
    for i in 0..n {
        for (k, server) in [tls13_server, dhe_server].into_iter().enumerate() {
            let client = SocketAddrV4::new(Ipv4Addr::new(10, 9, k as u8, 1), 20_000 + i);
            let mut c = Conversation::new(client, server, ts);
            c.handshake(&mut w).unwrap();
            c.client(&mut w, &client_hello()).unwrap();
            let flight = match k {
                0 => tls13_flight(0x0305 + i, 0x7a00 + i, 0x3000 + i),
                _ => dhe_flight(0x0100 + i, dh_bits(i)),
            };
            c.server(&mut w, &flight).unwrap();
            c.close(&mut w).unwrap();
            ts = c.ts_us + 1_000;
        }
    }
    w.into_inner().flush().unwrap();
}

struct Replay {
    records: Vec<Value>,
    metrics: String,
    report: Value,
}

fn replay(n: u16) -> Replay {
    let capture = scratch(&format!("hostile-{n}.pcap"));
    let sessions = scratch(&format!("hostile-{n}.jsonl"));
    let metrics = scratch(&format!("hostile-{n}.prom"));
    write(&capture, n);
    let out = mailtap_ok(&[
        "replay",
        "--quiet",
        "--format",
        "json",
        "--sessions",
        sessions.to_str().unwrap(),
        "--metrics-file",
        metrics.to_str().unwrap(),
        capture.to_str().unwrap(),
    ]);
    let got = Replay {
        records: read_jsonl(&sessions),
        metrics: std::fs::read_to_string(&metrics).unwrap(),
        report: serde_json::from_slice(&out.stdout).unwrap(),
    };
    for p in [capture, sessions, metrics] {
        let _ = std::fs::remove_file(p);
    }
    got
}

/// The `mailtap_tls_*` series of an exposition (zeros included).
fn tls_series(metrics: &str) -> BTreeSet<&str> {
    metrics
        .lines()
        .filter(|l| l.starts_with("mailtap_tls_"))
        .filter_map(|l| l.rsplit_once(' ').map(|(series, _)| series))
        .collect()
}

/// The keys of one of the report's TLS tallies.
fn tally_keys(report: &Value, tally: &str) -> BTreeSet<String> {
    report["tls"][tally]
        .as_object()
        .unwrap_or_else(|| panic!("report.tls.{tally}: {}", report["tls"]))
        .keys()
        .cloned()
        .collect()
}

/// The distinct values of a record's TLS field.
fn distinct(records: &[Value], field: &str) -> BTreeSet<String> {
    records
        .iter()
        .map(|r| r["tls"][field].to_string())
        .collect()
}

#[test]
fn hostile_parameters_make_no_new_series() {
    let few = replay(3);
    let many = replay(HOSTILE);

    // The records keep every hostile value as data, spelled as its code point.
    let n = usize::from(HOSTILE);
    assert_eq!(many.records.len(), 2 * n);
    assert_eq!(distinct(&many.records, "version").len(), 2 * n);
    assert_eq!(distinct(&many.records, "cipher_suite").len(), n + 1);
    assert_eq!(distinct(&many.records, "group").len(), 2 * n);
    let first = many
        .records
        .iter()
        .find(|r| r["client"] == "10.9.0.1:20000")
        .map(|r| &r["tls"])
        .expect("the first session");
    assert_eq!(first["version"], "0x0305", "{first}");
    assert_eq!(first["cipher_suite"], "0x7a00", "{first}");
    assert_eq!(first["group"], "0x3000", "{first}");
    let groups = distinct(&many.records, "group");
    for dh in ["\"dh512\"", "\"dh2048\"", "\"dh3072\"", "\"dh3171\""] {
        assert!(groups.contains(dh), "{dh} in {groups:?}");
    }

    // The metrics do not: 300 hostile sessions of each kind make the series three make.
    let (few_series, many_series) = (tls_series(&few.metrics), tls_series(&many.metrics));
    assert_eq!(
        many_series.len(),
        few_series.len(),
        "hostile: {many_series:#?}"
    );
    assert_eq!(many_series, few_series);
    // Derived from the closed sets, not from mailtap's output: per family, the label
    // combinations the two kinds of session can take.
    // - tls_sessions: (submissions, other, other, true), (imaps, other, the DHE suite, true);
    // - tls_key_exchange: (submissions, ECDHE, other, false), (imaps, DHE, each of the three
    //   dh buckets, false);
    // - tls_weaknesses: (imaps, dh_under_2048);
    // - tls_certificates: (submissions, hidden), (imaps, absent).
    assert_eq!(many_series.len(), 2 + (1 + 3) + 1 + 2, "{many_series:#?}");
    let all_hostile = format!(
        "mailtap_tls_sessions_total{{cipher_suite=\"other\",forward_secret=\"true\",\
         protocol=\"submissions\",version=\"other\"}} {HOSTILE}"
    );
    assert!(many.metrics.contains(&all_hostile), "{}", many.metrics);
    for value in [
        "version=\"other\"",
        "cipher_suite=\"other\"",
        "group=\"other\"",
        "group=\"dh_under_2048\"",
        "group=\"dh2048\"",
        "group=\"dh3072_plus\"",
    ] {
        assert!(
            many_series.iter().any(|s| s.contains(value)),
            "{value} in {many_series:#?}"
        );
    }
    for hostile in ["0x", "dh512", "dh3171"] {
        assert!(
            !many.metrics.contains(&format!("=\"{hostile}")),
            "{hostile} is no label value"
        );
    }

    // Nor do the report's TLS tallies.
    for tally in [
        "versions",
        "cipher_suites",
        "groups",
        "key_exchange",
        "weaknesses",
    ] {
        assert_eq!(
            tally_keys(&many.report, tally),
            tally_keys(&few.report, tally),
            "report.tls.{tally}"
        );
    }
    let want: BTreeSet<String> = ["other", "dh_under_2048", "dh2048", "dh3072_plus"]
        .map(String::from)
        .into();
    assert_eq!(tally_keys(&many.report, "groups"), want);
}
