//! Real handshakes (testdata/, see its README) and hand-made malformed input.
//! Test code only: the parent declares this module under #[cfg(test)].

use super::*;
use crate::session::cipher::{Group, KeyExchange, Weakness};
use crate::session::dh_groups::DhGroup;

const CA: &[u8] = include_bytes!("testdata/ca.pem");
const SNI: &str = "mail.example.test";

/// 2026-06-01: inside the test PKI's validity.
fn capture_time() -> Timestamp {
    Timestamp::from_secs(1_780_272_000)
}

fn ctx() -> Arc<TlsContext> {
    Arc::new(TlsContext::new(&[CA.to_vec()]).expect("test CA loads"))
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .filter_map(|i| s.get(2 * i..2 * i + 2))
        .map(|b| u8::from_str_radix(b, 16).expect("hex"))
        .collect()
}

/// The segments of a capture: `C <hex>` / `S <hex>` lines.
fn segments(text: &str) -> Vec<(Direction, Vec<u8>)> {
    text.lines()
        .filter_map(|l| {
            let (d, h) = l.split_once(' ')?;
            let dir = if d == "C" {
                Direction::ToServer
            } else {
                Direction::ToClient
            };
            Some((dir, hex(h.trim())))
        })
        .collect()
}

struct Run {
    info: TlsInfo,
    anomalies: Anomalies,
    judged: bool,
}

/// Feeds segments (each split into `chunk`-byte pieces) until judged, then EOF both ways.
fn run_with(ctx: Arc<TlsContext>, segs: &[(Direction, Vec<u8>)], chunk: usize) -> Run {
    let mut tls = TlsAnalyzer::new(ctx);
    let mut anomalies = Anomalies::default();
    let mut judged = false;
    'feed: for (dir, bytes) in segs {
        for piece in bytes.chunks(chunk.max(1)) {
            if tls.on_data(*dir, piece, capture_time(), &mut anomalies) == TlsProgress::Judged {
                judged = true;
                break 'feed;
            }
        }
    }
    tls.on_eof(Direction::ToServer, &mut anomalies);
    tls.on_eof(Direction::ToClient, &mut anomalies);
    assert_eq!(tls.established(), tls.info().established);
    Run {
        info: tls.info(),
        anomalies,
        judged,
    }
}

fn run(text: &str) -> Run {
    run_with(ctx(), &segments(text), usize::MAX)
}

fn s(v: &str) -> Option<String> {
    Some(v.to_owned())
}

/// A typed value as the record spells it.
fn spelled<T: ToString>(v: Option<T>) -> Option<String> {
    v.map(|v| v.to_string())
}

/// The suite of this IANA name.
fn suite(name: &str) -> Option<CipherSuite> {
    tls_parser::TlsCipherSuite::from_name(name).map(|s| CipherSuite(s.id.0))
}

/// The group the record names so (`x25519`, `modp2048`).
fn group(name: &str) -> Option<Group> {
    (0..=u16::MAX)
        .map(Group::Named)
        .chain(DhGroup::all().map(Group::Prime))
        .find(|g| g.to_string() == name)
}

fn valid_leaf() -> CertificateInfo {
    CertificateInfo {
        status: CertStatus::Valid,
        subject_cn: s(SNI),
        issuer_cn: s("mailtap Test Root CA"),
        not_after: s("2035-01-01T00:00:00Z"),
    }
}

fn tls12(suite_name: &str, kx: KeyExchange, group_name: Option<&str>, fs: bool) -> TlsInfo {
    TlsInfo {
        version: Some(Version::TLS12),
        cipher_suite: suite(suite_name),
        key_exchange: Some(kx),
        group: group_name.and_then(group),
        forward_secret: Some(fs),
        post_quantum: Some(false),
        server_name: s(SNI),
        resumed: false,
        established: Some(true),
        alert: None,
        weaknesses: vec![],
        certificate: valid_leaf(),
        ja4: None,
    }
}

const TLS13_X25519: &str = include_str!("testdata/tls13_x25519.hex");
const TLS13_HRR: &str = include_str!("testdata/tls13_hrr.hex");
const TLS13_RESUMED: &str = include_str!("testdata/tls13_resumed.hex");
const TLS12_ECDHE_RSA: &str = include_str!("testdata/tls12_ecdhe_rsa.hex");
const TLS12_RSA: &str = include_str!("testdata/tls12_rsa.hex");
const TLS12_DHE_RSA: &str = include_str!("testdata/tls12_dhe_rsa.hex");
const TLS12_ALERT: &str = include_str!("testdata/tls12_alert.hex");
const TLS12_BIGCHAIN: &str = include_str!("testdata/tls12_bigchain.hex");
const TLS12_SELFSIGNED_NOSNI: &str = include_str!("testdata/tls12_selfsigned_nosni.hex");
const TLS12_RESUMED: &str = include_str!("testdata/tls12_resumed.hex");

const ALL: [&str; 10] = [
    TLS13_X25519,
    TLS13_HRR,
    TLS13_RESUMED,
    TLS12_ECDHE_RSA,
    TLS12_RSA,
    TLS12_DHE_RSA,
    TLS12_ALERT,
    TLS12_BIGCHAIN,
    TLS12_SELFSIGNED_NOSNI,
    TLS12_RESUMED,
];

fn tls13(suite_name: &str, group_name: &str) -> TlsInfo {
    TlsInfo {
        version: Some(Version::TLS13),
        cipher_suite: suite(suite_name),
        key_exchange: Some(KeyExchange::Ecdhe),
        group: group(group_name),
        forward_secret: Some(true),
        post_quantum: Some(false),
        server_name: s(SNI),
        resumed: false,
        established: Some(true),
        alert: None,
        weaknesses: vec![],
        certificate: CertStatus::Hidden.info(),
        ja4: None,
    }
}

#[test]
fn tls13_x25519() {
    let r = run(TLS13_X25519);
    assert!(r.judged && r.anomalies.is_empty());
    let mut want = tls13("TLS_AES_256_GCM_SHA384", "x25519");
    want.ja4 = s("t13d0411ip_16476d049b0b_78f1d400d464");
    assert_eq!(r.info, want);
}

#[test]
fn tls13_hello_retry_request() {
    let r = run(TLS13_HRR);
    assert!(r.judged && r.anomalies.is_empty());
    let mut want = tls13("TLS_AES_256_GCM_SHA384", "secp256r1");
    want.ja4 = s("t13d041000_16476d049b0b_78f1d400d464");
    assert_eq!(r.info, want);
}

#[test]
fn tls13_resumption() {
    let r = run(TLS13_RESUMED);
    assert!(r.judged && r.anomalies.is_empty());
    let mut want = tls13("TLS_AES_256_GCM_SHA384", "x25519");
    want.resumed = true;
    // A PSK accepted: the server sent no certificate at all.
    want.certificate = CertStatus::Absent.info();
    want.ja4 = s("t13d041100_16476d049b0b_6775ac8fe30b");
    assert_eq!(r.info, want);
}

#[test]
fn tls12_ecdhe_rsa() {
    let r = run(TLS12_ECDHE_RSA);
    assert!(r.judged && r.anomalies.is_empty());
    let mut want = tls12(
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        KeyExchange::Ecdhe,
        Some("x25519"),
        true,
    );
    want.ja4 = s("t12d020700_b06afd972a5c_e7e480e5a997");
    assert_eq!(r.info, want);
}

#[test]
fn tls12_rsa_key_exchange() {
    let r = run(TLS12_RSA);
    assert!(r.judged && r.anomalies.is_empty());
    let mut want = tls12(
        "TLS_RSA_WITH_AES_128_CBC_SHA",
        KeyExchange::Rsa,
        None,
        false,
    );
    want.weaknesses = vec![Weakness::NonForwardSecret, Weakness::CbcSha1];
    want.ja4 = s("t12d020500_a5878986a7c9_847bbcdea70d");
    assert_eq!(r.info, want);
}

#[test]
fn tls12_dhe_rsa() {
    let r = run(TLS12_DHE_RSA);
    assert!(r.judged && r.anomalies.is_empty());
    // OpenSSL's s_server without -dhparam uses the RFC 3526 2048-bit MODP group (group 14).
    let mut want = tls12(
        "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
        KeyExchange::Dhe,
        Some("modp2048"),
        true,
    );
    want.ja4 = s("t12d020500_5bb0eb0ba27c_847bbcdea70d");
    assert_eq!(r.info, want);
}

#[test]
fn tls12_alert_for_no_shared_suite() {
    let r = run(TLS12_ALERT);
    assert!(r.judged && r.anomalies.is_empty());
    let want = TlsInfo {
        server_name: s(SNI),
        alert: Some(Alert(40)),
        established: Some(false),
        certificate: CertStatus::Absent.info(),
        ja4: s("t12d020500_f2d8273d9564_847bbcdea70d"),
        ..TlsInfo::default()
    };
    assert_eq!(r.info, want);
}

#[test]
fn tls12_chain_over_16k_across_records() {
    let segs = segments(TLS12_BIGCHAIN);
    let server_bytes: usize = segs
        .iter()
        .filter(|(d, _)| *d == Direction::ToClient)
        .map(|(_, b)| b.len())
        .sum();
    assert!(server_bytes > 20_000, "{server_bytes}");
    let r = run(TLS12_BIGCHAIN);
    assert!(r.judged && r.anomalies.is_empty());
    let mut want = tls12(
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        KeyExchange::Ecdhe,
        Some("x25519"),
        true,
    );
    want.certificate.issuer_cn = s("mailtap Test Intermediate 4");
    want.ja4 = s("t12d020700_f09d9ff7e6fc_e7e480e5a997");
    assert_eq!(r.info, want);
}

#[test]
fn tls12_self_signed_without_sni() {
    let r = run(TLS12_SELFSIGNED_NOSNI);
    assert!(r.judged && r.anomalies.is_empty());
    let mut want = tls12(
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        KeyExchange::Ecdhe,
        Some("x25519"),
        true,
    );
    want.server_name = None;
    want.certificate = CertificateInfo {
        status: CertStatus::SelfSigned,
        issuer_cn: s(SNI),
        ..valid_leaf()
    };
    want.ja4 = s("t12i020600_c5d8418a506e_e7e480e5a997");
    assert_eq!(r.info, want);
}

#[test]
fn tls12_resumption() {
    let r = run(TLS12_RESUMED);
    assert!(r.judged && r.anomalies.is_empty());
    let mut want = tls12(
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        KeyExchange::Ecdhe,
        None,
        true,
    );
    want.resumed = true;
    want.certificate = CertStatus::Absent.info();
    want.ja4 = s("t12d280700_d943125447b4_e7e480e5a997");
    assert_eq!(r.info, want);
}

#[test]
fn unknown_issuer_without_the_test_anchor() {
    let mozilla_only = Arc::new(TlsContext::new(&[]).expect("roots"));
    let r = run_with(mozilla_only, &segments(TLS12_ECDHE_RSA), usize::MAX);
    assert_eq!(r.info.certificate.status, CertStatus::UnknownIssuer);
}

#[test]
fn byte_by_byte_gives_the_same_verdict() {
    for capture in ALL {
        let whole = run(capture);
        let split = run_with(ctx(), &segments(capture), 1);
        assert_eq!(whole.info, split.info);
        assert_eq!(whole.anomalies, split.anomalies);
        assert_eq!(whole.judged, split.judged);
    }
}

#[test]
fn judged_without_reading_past_the_verdict() {
    // Everything after the judging segment is ignored: appending garbage changes nothing.
    for capture in ALL {
        let mut segs = segments(capture);
        segs.push((Direction::ToServer, b"garbage".to_vec()));
        segs.push((Direction::ToClient, b"garbage".to_vec()));
        assert_eq!(run_with(ctx(), &segs, usize::MAX).info, run(capture).info);
    }
}

#[test]
fn cut_short_is_not_established_and_has_no_alert() {
    let segs = segments(TLS12_ECDHE_RSA);
    let r = run_with(ctx(), &segs[..2], usize::MAX);
    assert!(!r.judged);
    assert!(r.info.established != Some(true));
    assert_eq!(r.info.alert, None);
    assert_eq!(spelled(r.info.version), s("TLSv1.2"));
    assert_eq!(r.info.certificate, valid_leaf());
    let r = run_with(ctx(), &segments(TLS13_X25519)[..2], usize::MAX);
    assert!(!r.judged && r.info.established != Some(true));
}

#[test]
fn garbage_after_starttls() {
    let segs = vec![(Direction::ToServer, b"EHLO client.example\r\n".to_vec())];
    let r = run_with(ctx(), &segs, usize::MAX);
    assert!(r.judged && r.info.established != Some(true));
    assert!(r.anomalies.contains(Anomaly::TlsMalformed));
    assert_eq!(r.info.version, None);
    assert!(!TlsAnalyzer::looks_like_tls(b"EHLO client.example\r\n"));
}

/// The ServerHello of a TLS 1.2 capture with its cipher suite replaced.
fn with_server_suite(capture: &str, suite: u16) -> Vec<(Direction, Vec<u8>)> {
    let mut segs = segments(capture);
    let sh = segs
        .iter_mut()
        .find(|(d, _)| *d == Direction::ToClient)
        .map(|(_, b)| b)
        .expect("server segment");
    // record header 5, handshake header 4, version 2, random 32, then the session id.
    let sid_len = usize::from(sh[5 + 4 + 2 + 32]);
    let at = 5 + 4 + 2 + 32 + 1 + sid_len;
    sh[at..at + 2].copy_from_slice(&suite.to_be_bytes());
    segs
}

#[test]
fn unknown_cipher_suite_is_kept_as_code_point() {
    let r = run_with(
        ctx(),
        &with_server_suite(TLS12_ECDHE_RSA, 0x1a2b),
        usize::MAX,
    );
    assert_eq!(spelled(r.info.cipher_suite), s("0x1a2b"));
    assert_eq!(r.info.key_exchange, None);
    assert_eq!(r.info.forward_secret, None);
    assert_eq!(spelled(r.info.version), s("TLSv1.2"));
    assert_eq!(r.info.established, Some(true));
}

#[test]
fn weak_suite_from_the_wire() {
    let r = run_with(
        ctx(),
        &with_server_suite(TLS12_ECDHE_RSA, 0xc012),
        usize::MAX,
    );
    assert_eq!(
        spelled(r.info.cipher_suite),
        s("TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA")
    );
    assert_eq!(r.info.weaknesses, [Weakness::TripleDes, Weakness::CbcSha1]);
}

fn client_hello_record() -> Vec<u8> {
    let segs = segments(TLS12_ECDHE_RSA);
    segs.into_iter()
        .next()
        .map(|(_, b)| b)
        .expect("client hello")
}

#[test]
fn server_hello_first() {
    let segs = segments(TLS12_ECDHE_RSA);
    let server_only: Vec<_> = segs
        .into_iter()
        .filter(|(d, _)| *d == Direction::ToClient)
        .collect();
    let r = run_with(ctx(), &server_only, usize::MAX);
    assert!(r.anomalies.contains(Anomaly::ServerHelloFirst));
    assert_eq!(
        spelled(r.info.cipher_suite).as_deref(),
        Some("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")
    );
}

#[test]
fn client_hello_both_ways() {
    let ch = client_hello_record();
    let segs = vec![(Direction::ToServer, ch.clone()), (Direction::ToClient, ch)];
    let r = run_with(ctx(), &segs, usize::MAX);
    assert!(r.anomalies.contains(Anomaly::ClientHelloBothWays));
    assert!(r.info.established != Some(true));
}

#[test]
fn record_lengths() {
    let too_long = vec![(Direction::ToServer, vec![22, 3, 1, 0x48, 0x01, 1])];
    let r = run_with(ctx(), &too_long, usize::MAX);
    assert!(r.judged && r.anomalies.contains(Anomaly::TlsRecordLength));
    let mut zero = vec![22, 3, 1, 0, 0];
    zero.extend(client_hello_record());
    let r = run_with(ctx(), &[(Direction::ToServer, zero)], usize::MAX);
    assert!(!r.judged && r.anomalies.contains(Anomaly::TlsRecordLength));
    assert_eq!(r.info.server_name.as_deref(), Some(SNI));
}

#[test]
fn handshake_too_large() {
    // A handshake message announcing 1 MiB, sent in 2^14-byte records: 64 KiB of it is kept,
    // the rest skipped, and reading stops at the per-direction cap.
    let mut message = vec![1u8, 0x10, 0, 0];
    message.resize(200 * 1024, 0);
    let mut records = Vec::new();
    for part in message.chunks(0x4000) {
        records.extend([22, 3, 1, (part.len() >> 8) as u8, part.len() as u8]);
        records.extend_from_slice(part);
    }
    let huge = vec![(Direction::ToServer, records)];
    let r = run_with(ctx(), &huge, usize::MAX);
    assert!(r.judged && r.anomalies.contains(Anomaly::HandshakeTooLarge));
    // Past the per-direction cap: a ClientHello, then 160 KiB of early data.
    let mut segs = vec![(Direction::ToServer, client_hello_record())];
    let mut early = Vec::new();
    for _ in 0..10 {
        early.extend([23, 3, 3, 0x40, 0]);
        early.extend([0u8; 0x4000]);
    }
    segs.push((Direction::ToServer, early));
    let r = run_with(ctx(), &segs, usize::MAX);
    assert!(r.judged && r.anomalies.contains(Anomaly::HandshakeTooLarge));
    assert_eq!(r.info.server_name.as_deref(), Some(SNI));
}

#[test]
fn sslv2_compatible_client_hello() {
    // Hand-made: OpenSSL 3 no longer sends the SSLv2 form. TLS 1.0, two suites, 16-byte
    // challenge; then the server's TLS 1.0 fatal protocol_version alert.
    let hello = [
        0x80, 0x1f, 1, 3, 1, 0, 6, 0, 0, 0, 16, 0x00, 0x00, 0x2f, 0x00, 0x00, 0x35, 1, 2, 3, 4, 5,
        6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
    ];
    assert!(TlsAnalyzer::looks_like_tls(&hello));
    let segs = vec![
        (Direction::ToServer, hello.to_vec()),
        (Direction::ToClient, vec![21, 3, 1, 0, 2, 2, 70]),
    ];
    let r = run_with(ctx(), &segs, usize::MAX);
    assert!(r.anomalies.is_empty(), "{:?}", r.anomalies);
    assert_eq!(spelled(r.info.alert), s("protocol_version"));
    assert!(r
        .info
        .ja4
        .as_deref()
        .is_some_and(|j| j.starts_with("t10i020000_")));
}

/// Feeds segments whose bytes past `keep` are lost (a gap of exactly their length, as the
/// snap length leaves them), then EOF both ways.
fn run_cut(segs: &[(Direction, Vec<u8>)], keep: impl Fn(usize, usize) -> usize) -> Run {
    let mut tls = TlsAnalyzer::new(ctx());
    let mut anomalies = Anomalies::default();
    let mut judged = false;
    for (i, (dir, bytes)) in segs.iter().enumerate() {
        let k = keep(i, bytes.len()).min(bytes.len());
        let seen = tls.on_data(*dir, &bytes[..k], capture_time(), &mut anomalies);
        let lost = bytes.len() - k;
        let after = if lost > 0 {
            tls.on_gap(*dir, lost as u64, capture_time(), &mut anomalies)
        } else {
            seen
        };
        if seen == TlsProgress::Judged || after == TlsProgress::Judged {
            judged = true;
            break;
        }
    }
    tls.on_eof(Direction::ToServer, &mut anomalies);
    tls.on_eof(Direction::ToClient, &mut anomalies);
    Run {
        info: tls.info(),
        anomalies,
        judged,
    }
}

#[test]
fn a_gap_inside_the_certificate_leaves_it_partial_and_the_handshake_established() {
    let segs = segments(TLS12_ECDHE_RSA);
    let whole = run(TLS12_ECDHE_RSA);
    // The server's flight: ServerHello, then the Certificate; lose 200 bytes of it (and put
    // them back as a gap of that length, as a lost segment does).
    let mut tls = TlsAnalyzer::new(ctx());
    let mut anomalies = Anomalies::default();
    for (i, (dir, bytes)) in segs.iter().enumerate() {
        if i == 1 {
            tls.on_data(*dir, &bytes[..300], capture_time(), &mut anomalies);
            tls.on_gap(*dir, 200, capture_time(), &mut anomalies);
            tls.on_data(*dir, &bytes[500..], capture_time(), &mut anomalies);
        } else {
            tls.on_data(*dir, bytes, capture_time(), &mut anomalies);
        }
    }
    let info = tls.info();
    assert_eq!(info.established, Some(true));
    assert_eq!(info.certificate.status, CertStatus::Partial);
    assert_eq!(info.version, whole.info.version);
    assert_eq!(info.cipher_suite, whole.info.cipher_suite);
    assert_eq!(info.group, whole.info.group);
    assert!(anomalies.contains(Anomaly::TlsHandshakeGap));
    assert!(!anomalies.contains(Anomaly::TlsMalformed));
}

#[test]
fn a_lost_server_flight_leaves_its_fields_null_and_the_encrypted_records_decide() {
    // TLS 1.3: the ClientHello, then the server's whole first flight lost; the client's
    // encrypted Finished and the server's encrypted records follow.
    let r = run_cut(&segments(TLS13_X25519), |i, n| if i == 1 { 0 } else { n });
    assert_eq!(r.info.established, Some(true));
    assert_eq!(r.info.version, None);
    assert_eq!(r.info.cipher_suite, None);
    assert_eq!(r.info.certificate.status, CertStatus::Partial);
    assert_eq!(r.info.server_name, s(SNI), "the ClientHello was seen");
    assert!(r.anomalies.contains(Anomaly::TlsHandshakeGap));
}

#[test]
fn cut_segments_never_turn_an_established_handshake_into_a_failed_one() {
    for capture in ALL {
        let whole = run(capture);
        for keep in [0, 5, 30, 60, 134, 400] {
            let r = run_cut(&segments(capture), |_, n| keep.min(n));
            let what = format!("{} kept of each segment", keep);
            match whole.info.established {
                Some(true) => assert_ne!(r.info.established, Some(false), "{what}"),
                _ => assert_ne!(r.info.established, Some(true), "{what}"),
            }
            assert!(
                !r.anomalies.contains(Anomaly::TlsMalformed),
                "{what}: {:?} {}",
                r.anomalies,
                &capture[..40]
            );
            // What was seen is right, what was not is null.
            for (got, want) in [
                (spelled(r.info.version), spelled(whole.info.version)),
                (
                    spelled(r.info.cipher_suite),
                    spelled(whole.info.cipher_suite),
                ),
                (spelled(r.info.group), spelled(whole.info.group)),
            ] {
                assert!(
                    got.is_none() || got == want,
                    "{what}: {got:?} against {want:?}"
                );
            }
        }
    }
}

#[test]
fn a_gap_after_which_the_client_says_nothing_encrypted_failed() {
    // The server's flight lost, then the client's stream ends without an encrypted record.
    let segs = segments(TLS12_ECDHE_RSA);
    let r = run_cut(&segs[..2], |i, n| if i == 1 { 10 } else { n });
    assert_eq!(r.info.established, Some(false));
    assert!(!r.judged);
}

#[test]
fn looks_like_tls() {
    for capture in ALL {
        let first = segments(capture)
            .into_iter()
            .next()
            .map(|(_, b)| b)
            .unwrap_or_default();
        assert!(TlsAnalyzer::looks_like_tls(&first));
        assert!(TlsAnalyzer::looks_like_tls(&first[..1]));
    }
    assert!(!TlsAnalyzer::looks_like_tls(b""));
    assert!(!TlsAnalyzer::looks_like_tls(&[22, 3, 9, 0, 5]));
    assert!(!TlsAnalyzer::looks_like_tls(&[23, 3, 3, 0, 5]));
    assert!(!TlsAnalyzer::looks_like_tls(b"220 mx ESMTP\r\n"));
    assert!(!TlsAnalyzer::looks_like_tls(b"* OK IMAP4rev1\r\n"));
}

#[test]
fn hostile_bytes_never_panic() {
    // Every capture with each byte flipped in turn, fed whole: no panic, always an answer.
    for capture in [TLS13_X25519, TLS12_DHE_RSA, TLS12_RESUMED] {
        let segs = segments(capture);
        for (i, (_, bytes)) in segs.iter().enumerate() {
            for pos in (0..bytes.len()).step_by(7) {
                let mut mutated = segs.clone();
                if let Some(b) = mutated[i].1.get_mut(pos) {
                    *b ^= 0x5a;
                }
                let _ = run_with(ctx(), &mutated, usize::MAX).info;
            }
        }
    }
}

/// An analyzer that saw a TLS 1.3 ServerHello with these extensions.
fn after_tls13_server_hello(key_share_group: Option<u16>, pre_shared_key: bool) -> TlsInfo {
    let mut tls = TlsAnalyzer::new(ctx());
    tls.server_hello = Some(ServerHello {
        version: 0x0304,
        suite: 0x1301,
        key_share_group,
        pre_shared_key,
        ..ServerHello::default()
    });
    tls.info()
}

#[test]
fn tls13_key_exchange_from_extensions() {
    let psk_only = after_tls13_server_hello(None, true);
    assert_eq!(spelled(psk_only.key_exchange), s("PSK"));
    assert_eq!(psk_only.forward_secret, Some(false));
    assert_eq!(psk_only.weaknesses, [Weakness::NonForwardSecret]);
    assert_eq!(psk_only.group, None);

    let hybrid = after_tls13_server_hello(Some(0x11ec), false);
    assert_eq!(spelled(hybrid.key_exchange), s("ECDHE"));
    assert_eq!(spelled(hybrid.group), s("X25519MLKEM768"));
    assert_eq!(hybrid.post_quantum, Some(true));
    assert_eq!(hybrid.forward_secret, Some(true));

    let kyber = after_tls13_server_hello(Some(0x6399), true);
    assert_eq!(spelled(kyber.group), s("X25519Kyber768Draft00"));
    assert_eq!(kyber.post_quantum, Some(true));

    let ffdhe = after_tls13_server_hello(Some(256), false);
    assert_eq!(spelled(ffdhe.key_exchange), s("DHE"));
    assert_eq!(spelled(ffdhe.group), s("ffdhe2048"));
    assert_eq!(ffdhe.post_quantum, Some(false));
}

#[test]
fn record_json_shape() {
    let info = run(TLS13_X25519).info;
    let json = serde_json::to_value(&info).expect("serializes");
    assert_eq!(json["certificate"], serde_json::json!({"status": "hidden"}));
    assert_eq!(json["version"], "TLSv1.3");
    assert_eq!(json["alert"], serde_json::Value::Null);
    let leaf = serde_json::to_value(run(TLS12_ECDHE_RSA).info.certificate).expect("serializes");
    assert_eq!(leaf["not_after"], "2035-01-01T00:00:00Z");
}
