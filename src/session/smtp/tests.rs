//! Whole dialogues, with text from Postfix 3.x and swaks sessions. States are built by name.
//! Test code only: the parent declares this module under #[cfg(test)].

use super::*;
use crate::session::anomaly::Anomaly::{self, *};

const C: Direction = Direction::ToServer;
const S: Direction = Direction::ToClient;

const GREETING: &[u8] = b"220 mail.example.test ESMTP Postfix (Debian/GNU)\r\n";
const EHLO: &[u8] = b"EHLO client.example.test\r\n";
const EHLO_REPLY: &[u8] = b"250-mail.example.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n\
250-VRFY\r\n250-ETRN\r\n250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n\
250-SMTPUTF8\r\n250 CHUNKING\r\n";
const EHLO_REPLY_NO_TLS: &[u8] = b"250-mail.example.test\r\n250-PIPELINING\r\n\
250-SIZE 10240000\r\n250-AUTH PLAIN LOGIN\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n\
250 CHUNKING\r\n";
const STARTTLS_READY: &[u8] = b"220 2.0.0 Ready to start TLS\r\n";
const PIPELINED_ENVELOPE: &[u8] =
    b"MAIL FROM:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\nRCPT TO:<carol@example.test>\r\nDATA\r\n";
const ENVELOPE_REPLIES: &[u8] = b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n\
354 End data with <CR><LF>.<CR><LF>\r\n";
const BODY: &[u8] = b"From: Alice <alice@example.test>\r\nTo: bob@example.test\r\n\
Subject: test Tue, 01 Dec 2026 10:00:00 +0000\r\n\r\nThis is a test mailing\r\n\r\n.\r\n";
const QUEUED: &[u8] = b"250 2.0.0 Ok: queued as 4F2D81E0A3\r\n";
const QUIT: &[u8] = b"QUIT\r\n";
const BYE: &[u8] = b"221 2.0.0 Bye\r\n";

type Script<'a> = &'a [(Direction, &'a [u8])];

fn run(smtp: &mut Smtp, facts: &mut Facts, script: Script<'_>) -> Vec<Step> {
    script
        .iter()
        .map(|&(dir, bytes)| smtp.on_data(dir, bytes, facts))
        .collect()
}

fn session(script: Script<'_>) -> (Smtp, Facts) {
    let (mut smtp, mut facts) = (Smtp::new(), Facts::default());
    let steps = run(&mut smtp, &mut facts, script);
    assert!(steps.iter().all(|s| *s == Step::Continue), "{steps:?}");
    (smtp, facts)
}

fn after_ehlo(reply: &[u8]) -> (Smtp, Facts) {
    session(&[(S, GREETING), (C, EHLO), (S, reply)])
}

/// After a pipelined envelope and the 354: the client is sending a body.
fn in_data() -> (Smtp, Facts) {
    let (mut smtp, mut facts) = after_ehlo(EHLO_REPLY);
    run(
        &mut smtp,
        &mut facts,
        &[(C, PIPELINED_ENVELOPE), (S, ENVELOPE_REPLIES)],
    );
    (smtp, facts)
}

fn anomalies(facts: &Facts) -> Vec<Anomaly> {
    facts.anomalies.iter().collect()
}

fn seen() -> Facts {
    Facts {
        dialogue_seen: true,
        ..Facts::default()
    }
}

fn with_anomalies(mut facts: Facts, list: &[Anomaly]) -> Facts {
    for &a in list {
        facts.anomaly(a);
    }
    facts
}

#[test]
fn plaintext_session_without_starttls_on_offer() {
    let (mut smtp, mut facts) = after_ehlo(EHLO_REPLY_NO_TLS);
    run(
        &mut smtp,
        &mut facts,
        &[
            (C, PIPELINED_ENVELOPE),
            (S, ENVELOPE_REPLIES),
            (C, BODY),
            (S, QUEUED),
            (C, QUIT),
            (S, BYE),
        ],
    );
    let caps = smtp.capabilities();
    assert!(!caps.starttls && caps.pipelining && caps.chunking);
    assert_eq!(caps.auth.iter().collect::<Vec<_>>(), ["PLAIN", "LOGIN"]);
    let want = Facts {
        content: crate::session::dialogue::script::plain(1),
        ..seen()
    };
    assert_eq!(facts, want);
}

#[test]
fn starttls_offered_but_unused() {
    let (mut smtp, mut facts) = after_ehlo(EHLO_REPLY);
    run(&mut smtp, &mut facts, &[(C, QUIT), (S, BYE)]);
    let want = Facts {
        starttls_offered: true,
        ..seen()
    };
    assert_eq!(facts, want);
    assert!(smtp.capabilities().starttls);
}

#[test]
fn starttls_220_hands_over_at_the_end_of_its_line() {
    let (mut smtp, mut facts) = after_ehlo(EHLO_REPLY);
    assert_eq!(smtp.on_data(C, b"STARTTLS\r\n", &mut facts), Step::Continue);
    let step = smtp.on_data(S, STARTTLS_READY, &mut facts);
    assert_eq!(
        step,
        Step::StartTls {
            consumed: STARTTLS_READY.len()
        }
    );
    let want = Facts {
        starttls_offered: true,
        starttls_attempted: true,
        ..seen()
    };
    assert_eq!(facts, want);
    // Whatever follows is TLS, not for this analyzer.
    let hello = [0x16, 0x03, 0x01, 0x00, 0x05, b'\n'];
    assert_eq!(smtp.on_data(C, &hello, &mut facts), Step::Continue);
    assert_eq!(facts, want);
}

#[test]
fn starttls_220_with_bytes_after_it_in_the_same_chunk() {
    let (mut smtp, mut facts) = after_ehlo(EHLO_REPLY);
    smtp.on_data(C, b"NOOP\r\nSTARTTLS\r\n", &mut facts);
    let mut chunk = b"250 2.0.0 Ok\r\n".to_vec();
    let end = chunk.len() + STARTTLS_READY.len();
    chunk.extend_from_slice(STARTTLS_READY);
    chunk.extend_from_slice(&[0x16, 0x03, 0x03, 0x00, 0x7a, 0x02]);
    let step = smtp.on_data(S, &chunk, &mut facts);
    assert_eq!(step, Step::StartTls { consumed: end });
}

#[test]
fn starttls_220_split_byte_by_byte_hands_over_on_the_lf() {
    let (mut smtp, mut facts) = after_ehlo(EHLO_REPLY);
    smtp.on_data(C, b"STARTTLS\r\n", &mut facts);
    let (last, head) = STARTTLS_READY.split_last().unwrap();
    for b in head {
        assert_eq!(smtp.on_data(S, &[*b], &mut facts), Step::Continue);
    }
    let step = smtp.on_data(S, &[*last, 0x16], &mut facts);
    assert_eq!(step, Step::StartTls { consumed: 1 });
}

#[test]
fn starttls_refused_454_goes_on_in_clear() {
    let (mut smtp, mut facts) = after_ehlo(EHLO_REPLY);
    let steps = run(
        &mut smtp,
        &mut facts,
        &[
            (C, b"STARTTLS\r\n"),
            (S, b"454 4.7.0 TLS not available due to local problem\r\n"),
            (C, QUIT),
            (S, BYE),
        ],
    );
    assert!(steps.iter().all(|s| *s == Step::Continue));
    let want = Facts {
        starttls_offered: true,
        starttls_attempted: true,
        starttls_refused: true,
        ..seen()
    };
    assert_eq!(facts, want);
}

#[test]
fn tls_after_refused_starttls() {
    let (mut smtp, mut facts) = after_ehlo(EHLO_REPLY);
    let hello = [
        0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
    ];
    run(
        &mut smtp,
        &mut facts,
        &[
            (C, b"STARTTLS\r\n"),
            (S, b"454 4.7.0 TLS not available due to local problem\r\n"),
            (C, &hello[..1]),
            (C, &hello[1..]),
            (C, b"\r\nEHLO x\r\n"),
            (S, b"502 5.5.2 Error: command not recognized\r\n"),
        ],
    );
    assert!(facts.starttls_refused);
    assert_eq!(anomalies(&facts), [TlsAfterRefusedStarttls]);
}

#[test]
fn stripped_capability_masked_by_a_middlebox() {
    let masked = b"250-mail.example.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n\
250-XXXXXXXA\r\n250-8BITMIME\r\n250 DSN\r\n";
    let (_, facts) = after_ehlo(masked);
    let want = Facts {
        starttls_stripped: true,
        ..with_anomalies(seen(), &[StarttlsCapabilityMasked])
    };
    assert_eq!(facts, want);
}

#[test]
fn stripped_command_rewritten_by_a_middlebox() {
    let (mut smtp, mut facts) = after_ehlo(EHLO_REPLY);
    run(
        &mut smtp,
        &mut facts,
        &[
            (C, b"XXXXXXXX\r\n"),
            (S, b"502 5.5.2 Error: command not recognized\r\n"),
        ],
    );
    let want = Facts {
        starttls_offered: true,
        starttls_attempted: false,
        starttls_stripped: true,
        ..with_anomalies(seen(), &[StarttlsCommandRewritten])
    };
    assert_eq!(facts, want);
}

#[test]
fn stripped_starttls_rejected_as_unknown_after_the_offer() {
    let (mut smtp, mut facts) = after_ehlo(EHLO_REPLY);
    run(
        &mut smtp,
        &mut facts,
        &[
            (C, b"STARTTLS\r\n"),
            (S, b"502 5.5.2 Error: command not recognized\r\n"),
        ],
    );
    let want = Facts {
        starttls_offered: true,
        starttls_attempted: true,
        starttls_stripped: true,
        ..with_anomalies(seen(), &[StarttlsRejectedAfterOffer])
    };
    assert_eq!(facts, want);
}

#[test]
fn unknown_starttls_without_an_offer_is_a_refusal() {
    let (mut smtp, mut facts) = after_ehlo(EHLO_REPLY_NO_TLS);
    run(
        &mut smtp,
        &mut facts,
        &[
            (C, b"STARTTLS\r\n"),
            (S, b"502 5.5.1 Error: command not implemented\r\n"),
        ],
    );
    assert!(facts.starttls_refused && !facts.starttls_stripped);
    assert!(facts.anomalies.is_empty());
}

#[test]
fn starttls_outside_an_ehlo_reply_is_no_offer() {
    let (mut smtp, mut facts) = session(&[
        (S, GREETING),
        (C, b"HELO client.example.test\r\n"),
        (S, b"250-mail.example.test\r\n250 STARTTLS\r\n"),
        (C, b"HELP\r\n"),
        (S, b"214-Commands:\r\n214-STARTTLS\r\n214 End\r\n"),
    ]);
    run(&mut smtp, &mut facts, &[(C, QUIT), (S, BYE)]);
    assert!(!facts.starttls_offered);
}

#[test]
fn auth_plain_with_initial_response() {
    let (mut smtp, mut facts) = after_ehlo(EHLO_REPLY_NO_TLS);
    run(
        &mut smtp,
        &mut facts,
        &[
            (C, b"AUTH PLAIN AGFsaWNlAGh1bnRlcjI=\r\n"),
            (S, b"235 2.7.0 Authentication successful\r\n"),
            (C, QUIT),
            (S, BYE),
        ],
    );
    let want = Facts {
        cleartext_auth: vec!["PLAIN"],
        ..seen()
    };
    assert_eq!(facts, want);
    assert!(!format!("{facts:?}{smtp:?}").contains("AGFsaWNl"));
}

#[test]
fn auth_login_continuations_are_not_commands() {
    let (mut smtp, mut facts) = after_ehlo(EHLO_REPLY);
    // The "username" and "password" lines read like commands; they must not be taken as such.
    run(
        &mut smtp,
        &mut facts,
        &[
            (C, b"AUTH LOGIN\r\n"),
            (S, b"334 VXNlcm5hbWU6\r\n"),
            (C, b"STARTTLS\r\n"),
            (S, b"334 UGFzc3dvcmQ6\r\n"),
            (C, b"AUTH CRAM-MD5 aHVudGVyMg==\r\n"),
            (S, b"235 2.7.0 Authentication successful\r\n"),
            (C, b"MAIL FROM:<alice@example.test>\r\n"),
            (S, b"250 2.1.0 Ok\r\n"),
        ],
    );
    let want = Facts {
        starttls_offered: true,
        cleartext_auth: vec!["LOGIN"],
        ..seen()
    };
    assert_eq!(facts, want);
    assert_eq!(smtp.machine.client, Client::Commands);
}

#[test]
fn auth_cancelled_returns_to_commands() {
    let (mut smtp, mut facts) = after_ehlo(EHLO_REPLY_NO_TLS);
    run(
        &mut smtp,
        &mut facts,
        &[
            (C, b"AUTH LOGIN\r\n"),
            (S, b"334 VXNlcm5hbWU6\r\n"),
            (C, b"*\r\n"),
            (S, b"501 5.7.0 Authentication aborted\r\n"),
            (C, b"STARTTLS\r\n"),
        ],
    );
    assert!(facts.starttls_attempted);
    assert_eq!(facts.cleartext_auth, ["LOGIN"]);
}

#[test]
fn pipelined_envelope_then_body_counts_one_message() {
    let (mut smtp, mut facts) = in_data();
    assert_eq!(smtp.machine.client, Client::Body { confirmed: true });
    run(&mut smtp, &mut facts, &[(C, BODY), (S, QUEUED)]);
    let want = Facts {
        starttls_offered: true,
        content: crate::session::dialogue::script::plain(1),
        ..seen()
    };
    assert_eq!(facts, want);
}

#[test]
fn batched_replies_split_anywhere() {
    let (mut smtp, mut facts) = after_ehlo(EHLO_REPLY);
    smtp.on_data(C, PIPELINED_ENVELOPE, &mut facts);
    let (a, b) = ENVELOPE_REPLIES.split_at(20);
    run(&mut smtp, &mut facts, &[(S, a), (S, b)]);
    let (a, b) = BODY.split_at(BODY.len() - 2);
    run(&mut smtp, &mut facts, &[(C, a), (C, b), (S, QUEUED)]);
    assert_eq!(facts.cleartext_messages(), 1);
    assert!(facts.anomalies.is_empty());
}

#[test]
fn three_messages_in_one_session() {
    let (mut smtp, mut facts) = in_data();
    for _ in 0..2 {
        run(
            &mut smtp,
            &mut facts,
            &[
                (C, BODY),
                (S, QUEUED),
                (C, PIPELINED_ENVELOPE),
                (S, ENVELOPE_REPLIES),
            ],
        );
    }
    run(
        &mut smtp,
        &mut facts,
        &[(C, BODY), (S, QUEUED), (C, QUIT), (S, BYE)],
    );
    assert_eq!(facts.cleartext_messages(), 3);
    assert!(facts.anomalies.is_empty());
}

#[test]
fn data_rejected_554_counts_nothing() {
    let (mut smtp, mut facts) = after_ehlo(EHLO_REPLY);
    run(
        &mut smtp,
        &mut facts,
        &[
            (
                C,
                b"MAIL FROM:<alice@example.test>\r\nRCPT TO:<nobody@example.test>\r\nDATA\r\n",
            ),
            (
                S,
                b"250 2.1.0 Ok\r\n550 5.1.1 <nobody@example.test>: Recipient address rejected\r\n",
            ),
            (S, b"554 5.5.1 Error: no valid recipients\r\n"),
            (C, b"RSET\r\nSTARTTLS\r\n"),
            (S, b"250 2.0.0 Ok\r\n"),
        ],
    );
    assert_eq!(facts.cleartext_messages(), 0);
    assert!(facts.starttls_attempted);
    let step = smtp.on_data(S, STARTTLS_READY, &mut facts);
    assert!(matches!(step, Step::StartTls { .. }));
}

#[test]
fn message_rejected_after_the_body_counts_nothing() {
    let (mut smtp, mut facts) = in_data();
    run(
        &mut smtp,
        &mut facts,
        &[(C, BODY), (S, b"554 5.7.1 Rejected by content filter\r\n")],
    );
    assert_eq!(facts.cleartext_messages(), 0);
}

fn bdat_session() -> Vec<u8> {
    let mut client =
        b"MAIL FROM:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\nBDAT 1000\r\n".to_vec();
    // Raw chunk bytes that look like commands and a DATA end: none of it is a line here.
    let mut chunk = b"STARTTLS\r\n.\r\nAUTH PLAIN AGFsaWNl\r\n".to_vec();
    chunk.resize(1000, b'x');
    client.extend_from_slice(&chunk);
    client.extend_from_slice(b"BDAT 500 LAST\r\n");
    client.extend_from_slice(&[0u8; 500]);
    client
}

#[test]
fn bdat_chunks_count_one_message_on_the_last() {
    let (mut smtp, mut facts) = after_ehlo(EHLO_REPLY);
    let client = bdat_session();
    run(
        &mut smtp,
        &mut facts,
        &[
            (C, &client),
            (
                S,
                b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 Ok: 1000 bytes\r\n",
            ),
            (S, b"250 2.0.0 Ok: queued as 9C3E41E0B7\r\n"),
            (C, QUIT),
            (S, BYE),
        ],
    );
    let want = Facts {
        starttls_offered: true,
        content: crate::session::dialogue::script::plain(1),
        ..seen()
    };
    assert_eq!(facts, want);
}

#[test]
fn bdat_rejected_counts_nothing() {
    let (mut smtp, mut facts) = after_ehlo(EHLO_REPLY);
    run(
        &mut smtp,
        &mut facts,
        &[
            (C, b"MAIL FROM:<a@example.test>\r\nBDAT 3 LAST\r\nabc"),
            (
                S,
                b"250 2.1.0 Ok\r\n554 5.5.1 Error: no valid recipients\r\n",
            ),
        ],
    );
    assert_eq!(facts.cleartext_messages(), 0);
    assert!(facts.anomalies.is_empty());
}

/// A session touching every part of the machine, for the split tests.
fn everything() -> Vec<(Direction, Vec<u8>)> {
    let parts: [(Direction, &[u8]); 17] = [
        (S, GREETING),
        (C, EHLO),
        (S, EHLO_REPLY),
        (C, b"AUTH LOGIN\r\n"),
        (S, b"334 VXNlcm5hbWU6\r\n"),
        (C, b"YWxpY2U=\r\n"),
        (S, b"334 UGFzc3dvcmQ6\r\n"),
        (C, b"aHVudGVyMg==\r\n"),
        (S, b"235 2.7.0 Authentication successful\r\n"),
        (C, PIPELINED_ENVELOPE),
        (S, ENVELOPE_REPLIES),
        (C, BODY),
        (S, QUEUED),
        (C, &bdat_session()),
        (
            S,
            b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 Ok\r\n250 2.0.0 Ok: queued\r\n",
        ),
        (C, b"STARTTLS\r\n"),
        (S, b"454 4.7.0 TLS not available due to local problem\r\n"),
    ];
    parts.iter().map(|(d, b)| (*d, b.to_vec())).collect()
}

#[test]
fn byte_by_byte_gives_the_same_facts_as_all_at_once() {
    let script = everything();
    let (mut whole, mut whole_facts) = (Smtp::new(), Facts::default());
    let (mut split, mut split_facts) = (Smtp::new(), Facts::default());
    for (dir, bytes) in &script {
        assert_eq!(whole.on_data(*dir, bytes, &mut whole_facts), Step::Continue);
        for b in bytes {
            assert_eq!(split.on_data(*dir, &[*b], &mut split_facts), Step::Continue);
        }
    }
    let want = Facts {
        starttls_offered: true,
        starttls_attempted: true,
        starttls_refused: true,
        cleartext_auth: vec!["LOGIN"],
        content: crate::session::dialogue::script::plain(2),
        ..seen()
    };
    assert_eq!(whole_facts, want);
    assert_eq!(split_facts, want);
}

#[test]
fn bare_lf_is_tolerated_and_flagged_once() {
    let (_, facts) = session(&[
        (S, b"220 mail.example.test ESMTP\n"),
        (C, b"EHLO client.example.test\n"),
        (S, b"250-mail.example.test\n250 STARTTLS\n"),
        (C, b"QUIT\n"),
        (S, b"221 2.0.0 Bye\n"),
    ]);
    let want = Facts {
        starttls_offered: true,
        ..with_anomalies(seen(), &[BareLf])
    };
    assert_eq!(facts, want);
}

#[test]
fn megabyte_line_is_cut_and_the_dialogue_goes_on() {
    let (mut smtp, mut facts) = after_ehlo(EHLO_REPLY);
    smtp.on_data(C, b"MAIL FROM:<", &mut facts);
    let chunk = [b'a'; 1460];
    for _ in 0..(1 << 20) / chunk.len() {
        smtp.on_data(C, &chunk, &mut facts);
    }
    run(
        &mut smtp,
        &mut facts,
        &[
            (C, b">\r\nSTARTTLS\r\n"),
            (S, b"501 5.1.7 Bad sender address syntax\r\n"),
        ],
    );
    assert_eq!(anomalies(&facts), [LineTooLong]);
    let step = smtp.on_data(S, STARTTLS_READY, &mut facts);
    assert!(matches!(step, Step::StartTls { .. }));
}

#[test]
fn garbage_both_ways_is_one_violation_and_no_panic() {
    let mut noise = Vec::new();
    let mut x: u32 = 0x1234_5678;
    for _ in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        noise.push(x.to_le_bytes()[0]);
    }
    let (mut smtp, mut facts) = (Smtp::new(), Facts::default());
    for piece in noise.chunks(97) {
        smtp.on_data(C, piece, &mut facts);
        smtp.on_data(S, piece, &mut facts);
    }
    assert!(facts.anomalies.contains(ProtocolViolation));
    assert!(!facts.starttls_offered && facts.cleartext_auth.is_empty());
}

#[test]
fn mid_stream_pickup_reports_one_unpaired_reply() {
    let (mut smtp, mut facts) = (Smtp::new(), Facts::default());
    run(
        &mut smtp,
        &mut facts,
        &[
            (S, b"250 2.1.5 Ok\r\n"),
            (S, b"250 2.1.5 Ok\r\n"),
            (C, b"DATA\r\n"),
            (S, b"354 End data with <CR><LF>.<CR><LF>\r\n"),
            (C, BODY),
            (S, QUEUED),
        ],
    );
    let want = Facts {
        content: crate::session::dialogue::script::plain(1),
        ..with_anomalies(seen(), &[UnpairedReply])
    };
    assert_eq!(facts, want);
}

#[test]
fn command_before_the_greeting_is_premature() {
    let (mut smtp, mut facts) = session(&[(C, EHLO), (S, GREETING), (S, EHLO_REPLY)]);
    assert!(facts.starttls_offered);
    assert_eq!(anomalies(&facts), [PrematureCommand]);
    run(&mut smtp, &mut facts, &[(C, QUIT), (S, BYE)]);
    assert_eq!(anomalies(&facts), [PrematureCommand]);
}

#[test]
fn gap_in_the_commands_loses_pairing_then_recovers() {
    let (mut smtp, mut facts) = after_ehlo(EHLO_REPLY);
    smtp.on_data(C, b"MAIL FROM:<alice@exa", &mut facts);
    smtp.on_gap(C, 300, &mut facts);
    run(
        &mut smtp,
        &mut facts,
        &[
            (C, b"ample.test>\r\nRCPT TO:<bob@example.test>\r\n"),
            (S, b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n"),
            (C, b"STARTTLS\r\n"),
        ],
    );
    assert_eq!(anomalies(&facts), [DialogueGap]);
    let step = smtp.on_data(S, STARTTLS_READY, &mut facts);
    assert_eq!(
        step,
        Step::StartTls {
            consumed: STARTTLS_READY.len()
        }
    );
}

#[test]
fn gap_in_the_replies_loses_pairing() {
    let (mut smtp, mut facts) = after_ehlo(EHLO_REPLY);
    run(
        &mut smtp,
        &mut facts,
        &[(C, PIPELINED_ENVELOPE), (S, b"250 2.1.0 Ok\r\n250 2.")],
    );
    smtp.on_gap(S, 40, &mut facts);
    run(
        &mut smtp,
        &mut facts,
        &[(S, b"1.5 Ok\r\n354 End data\r\n"), (C, BODY), (S, QUEUED)],
    );
    assert_eq!(anomalies(&facts), [DialogueGap]);
    assert_eq!(facts.cleartext_messages(), 1);
}

#[test]
fn gap_in_a_body_is_skipped() {
    let (mut smtp, mut facts) = in_data();
    smtp.on_data(C, b"Subject: hello\r\npart of a li", &mut facts);
    smtp.on_gap(C, 1460, &mut facts);
    run(
        &mut smtp,
        &mut facts,
        &[(C, b"ne\r\nmore\r\n.\r\n"), (S, QUEUED)],
    );
    assert_eq!(facts.cleartext_messages(), 1);
    assert!(facts.anomalies.is_empty());
}

#[test]
fn gap_that_ate_the_end_of_a_body() {
    let (mut smtp, mut facts) = in_data();
    smtp.on_data(C, b"Subject: hello\r\n", &mut facts);
    smtp.on_gap(C, 1460, &mut facts);
    run(&mut smtp, &mut facts, &[(S, QUEUED), (C, QUIT), (S, BYE)]);
    assert_eq!(facts.cleartext_messages(), 1);
    assert_eq!(anomalies(&facts), [DialogueGap]);
}

#[test]
fn gap_inside_a_bdat_chunk_counts_against_it() {
    let (mut smtp, mut facts) = after_ehlo(EHLO_REPLY);
    smtp.on_data(C, b"BDAT 100 LAST\r\n0123456789", &mut facts);
    smtp.on_gap(C, 80, &mut facts);
    run(
        &mut smtp,
        &mut facts,
        &[(C, b"0123456789QUIT\r\n"), (S, QUEUED), (S, BYE)],
    );
    assert_eq!(facts.cleartext_messages(), 1);
    assert!(facts.anomalies.is_empty());
}

/// Found by fuzzing (smtp): after a client gap the reader drops the tail of the lost line, so
/// a 0x16 0x03 inside it is not a TLS record at a line start, however the bytes are cut.
#[test]
fn a_handshake_header_in_the_tail_of_a_lost_line_is_not_tls() {
    for cut in 1..=3 {
        let (mut smtp, mut facts) = (Smtp::new(), Facts::default());
        smtp.on_gap(C, 1326, &mut facts);
        for part in b"\x05\x16\x03".chunks(cut) {
            smtp.on_data(C, part, &mut facts);
        }
        assert_eq!(anomalies(&facts), [DialogueGap], "cut every {cut} bytes");
    }
}

/// Found by fuzzing (smtp): the line end that closes the lost line also starts a new one, so a
/// TLS record right after it is seen, however the bytes are cut.
#[test]
fn a_handshake_header_after_the_lost_line_is_tls() {
    for cut in 1..=3 {
        let (mut smtp, mut facts) = (Smtp::new(), Facts::default());
        smtp.on_gap(C, 26963, &mut facts);
        for part in b"\n\x16\x03".chunks(cut) {
            smtp.on_data(C, part, &mut facts);
        }
        let want = [ProtocolViolation, DialogueGap];
        assert_eq!(anomalies(&facts), want, "cut every {cut} bytes");
    }
}

#[test]
fn a_hundred_pipelined_recipients_fit_the_queue() {
    let (mut smtp, mut facts) = after_ehlo(EHLO_REPLY);
    let mut client = b"MAIL FROM:<alice@example.test>\r\n".to_vec();
    let mut server = b"250 2.1.0 Ok\r\n".to_vec();
    for _ in 0..100 {
        client.extend_from_slice(b"RCPT TO:<bob@example.test>\r\n");
        server.extend_from_slice(b"250 2.1.5 Ok\r\n");
    }
    client.extend_from_slice(b"DATA\r\n");
    server.extend_from_slice(b"354 End data with <CR><LF>.<CR><LF>\r\n");
    run(
        &mut smtp,
        &mut facts,
        &[(C, &client), (S, &server), (C, BODY), (S, QUEUED)],
    );
    assert_eq!(facts.cleartext_messages(), 1);
    assert!(facts.anomalies.is_empty());
}

#[test]
fn queue_overflow_is_bounded_and_reported() {
    let (mut smtp, mut facts) = after_ehlo(EHLO_REPLY);
    for _ in 0..1000 {
        smtp.on_data(C, b"NOOP\r\nHELO x\r\n", &mut facts);
    }
    assert_eq!(anomalies(&facts), [ProtocolViolation]);
}

#[test]
fn hundred_megabyte_body_in_64k_chunks() {
    let (mut smtp, mut facts) = in_data();
    let line =
        b"VGhpcyBpcyBhIGJhc2U2NCBlbmNvZGVkIGF0dGFjaG1lbnQgbGluZSBvZiA3NiBjaGFyYWN0ZXJzLg\r\n";
    let chunk: Vec<u8> = line.iter().copied().cycle().take(64 * 1024).collect();
    for _ in 0..(100 << 20) / chunk.len() {
        smtp.on_data(C, &chunk, &mut facts);
    }
    run(&mut smtp, &mut facts, &[(C, b"\r\n.\r\n"), (S, QUEUED)]);
    assert_eq!(facts.cleartext_messages(), 1);
    assert!(facts.anomalies.is_empty());
}

#[test]
fn a_credential_split_across_chunks_is_never_printed() {
    let (mut smtp, mut facts) = after_ehlo(EHLO_REPLY_NO_TLS);
    run(
        &mut smtp,
        &mut facts,
        &[
            (C, b"AUTH LOGIN\r\n"),
            (S, b"334 VXNlcm5hbWU6\r\n"),
            (C, b"aHVudGVy"),
        ],
    );
    assert!(!format!("{smtp:?}{facts:?}").contains("aHVudGVy"));
}

#[test]
fn a_rejection_first_seen_mid_stream_is_no_greeting() {
    let (_, facts) = session(&[
        (C, b"RCPT TO:<nobody@example.test>\r\n"),
        (
            S,
            b"554 5.7.1 <nobody@example.test>: Relay access denied\r\n",
        ),
    ]);
    assert!(facts.anomalies.is_empty());
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Feed `script` cut into pieces of the given sizes, used in turn.
    fn feed_in_pieces(script: &[(Direction, Vec<u8>)], sizes: &[usize]) -> Facts {
        let (mut smtp, mut facts) = (Smtp::new(), Facts::default());
        let mut size = sizes.iter().copied().cycle();
        for (dir, bytes) in script {
            let mut rest = &bytes[..];
            while !rest.is_empty() {
                let n = size.next().unwrap_or(1).clamp(1, rest.len());
                let (piece, tail) = rest.split_at(n);
                assert_eq!(smtp.on_data(*dir, piece, &mut facts), Step::Continue);
                rest = tail;
            }
        }
        facts
    }

    /// Pieces of SMTP both ways, raw bytes, and gaps, in any order.
    fn event() -> impl Strategy<Value = (Direction, Result<Vec<u8>, u64>)> {
        const FRAGMENTS: &[&[u8]] = &[
            GREETING,
            EHLO,
            EHLO_REPLY,
            STARTTLS_READY,
            PIPELINED_ENVELOPE,
            ENVELOPE_REPLIES,
            BODY,
            QUEUED,
            b"STARTTLS\r\n",
            b"AUTH LOGIN\r\n",
            b"334 VXNlcm5hbWU6\r\n",
            b"BDAT 5 LAST\r\n",
            b"BDAT 18446744073709551615\r\n",
            b"454 4.7.0 TLS not available\r\n",
            b"250-XXXXXXXA\r\n",
            b"\x16\x03\x01\x00\x05",
        ];
        let dir = prop_oneof![Just(C), Just(S)];
        let data = prop_oneof![
            proptest::sample::select(FRAGMENTS).prop_map(|f| Ok(f.to_vec())),
            proptest::collection::vec(any::<u8>(), 0..200).prop_map(Ok),
            (0u64..5000).prop_map(Err),
        ];
        (dir, data)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn any_split_gives_the_same_facts(sizes in proptest::collection::vec(1usize..80, 1..16)) {
            let script = everything();
            prop_assert_eq!(feed_in_pieces(&script, &sizes), feed_in_pieces(&script, &[usize::MAX]));
        }

        #[test]
        fn arbitrary_traffic_never_panics(events in proptest::collection::vec(event(), 0..60)) {
            let (mut smtp, mut facts) = (Smtp::new(), Facts::default());
            for (dir, data) in events {
                match data {
                    Ok(bytes) => {
                        if let Step::StartTls { consumed } = smtp.on_data(dir, &bytes, &mut facts) {
                            prop_assert!(consumed <= bytes.len() && dir == S);
                        }
                    }
                    Err(len) => smtp.on_gap(dir, len, &mut facts),
                }
            }
            prop_assert!(facts.cleartext_auth.iter().all(|m| crate::session::dialogue::mechanism_labels().any(|l| l == *m)));
        }
    }
}

#[test]
fn one_sided_client_stream_counts_the_body_it_carried() {
    let (_, facts) = session(&[
        (C, EHLO),
        (C, b"MAIL FROM:<alice@example.test>\r\n"),
        (C, b"RCPT TO:<bob@example.test>\r\n"),
        (C, b"DATA\r\n"),
        (C, BODY),
        (C, QUIT),
    ]);
    let want = Facts {
        content: crate::session::dialogue::script::plain(1),
        ..seen()
    };
    assert_eq!(facts, want);
}

#[test]
fn one_sided_bdat_last_counts_once() {
    let (_, facts) = session(&[(C, EHLO), (C, b"BDAT 5 LAST\r\nhello"), (C, QUIT)]);
    assert_eq!(facts.cleartext_messages(), 1);
    assert!(facts.anomalies.is_empty());
}

mod content {
    //! Each message accepted in clear gets its end-to-end protection class.
    use super::*;
    use crate::session::content::ContentClass;

    const PGP_MIME: &[u8] = b"Subject: multipart/signed\r\nContent-Type: multipart/encrypted;\r\n\
\tprotocol=\"application/pgp-encrypted\"; boundary=\"b\"\r\n\r\n--b\r\n.\r\n";
    /// Inline OpenPGP, the armor line dot-stuffed by the client (RFC 5321 §4.5.2).
    const INLINE_STUFFED: &[u8] = b"Subject: x\r\n\r\n..-----BEGIN PGP MESSAGE-----\r\n.\r\n";
    const INLINE: &[u8] = b"Subject: x\r\n\r\n-----BEGIN PGP MESSAGE-----\r\n\r\nhQEMA\r\n.\r\n";

    fn class_of(facts: &Facts, class: ContentClass) -> u64 {
        facts.content.get(class)
    }

    #[test]
    fn data_bodies_are_classified() {
        let (mut smtp, mut facts) = in_data();
        run(
            &mut smtp,
            &mut facts,
            &[
                (C, PGP_MIME),
                (S, QUEUED),
                (C, PIPELINED_ENVELOPE),
                (S, ENVELOPE_REPLIES),
                (C, INLINE),
                (S, QUEUED),
            ],
        );
        assert_eq!(facts.cleartext_messages(), 2);
        assert_eq!(class_of(&facts, ContentClass::PgpEncrypted), 2);
    }

    #[test]
    fn dot_stuffed_armor_line_is_unstuffed() {
        let (mut smtp, mut facts) = in_data();
        // `..-----BEGIN` on the wire is `.-----BEGIN` in the message: not an armor line.
        run(&mut smtp, &mut facts, &[(C, INLINE_STUFFED), (S, QUEUED)]);
        assert_eq!(class_of(&facts, ContentClass::None), 1);
        let (mut smtp, mut facts) = in_data();
        let stuffed = b"Subject: x\r\n\r\n.-----BEGIN PGP MESSAGE-----\r\n.\r\n";
        run(&mut smtp, &mut facts, &[(C, stuffed), (S, QUEUED)]);
        assert_eq!(class_of(&facts, ContentClass::PgpEncrypted), 1);
    }

    #[test]
    fn rejected_body_gets_no_class() {
        let (mut smtp, mut facts) = in_data();
        run(
            &mut smtp,
            &mut facts,
            &[(C, PGP_MIME), (S, b"554 5.7.1 rejected\r\n")],
        );
        assert_eq!(facts.content.total(), 0);
    }

    #[test]
    fn gap_in_the_header_section_is_unknown() {
        let (mut smtp, mut facts) = in_data();
        smtp.on_data(C, b"Content-Type: multipart/encrypted;\r\n", &mut facts);
        smtp.on_gap(C, 100, &mut facts);
        run(
            &mut smtp,
            &mut facts,
            &[(C, b"x\r\n\r\nbody\r\n.\r\n"), (S, QUEUED)],
        );
        assert_eq!(class_of(&facts, ContentClass::Unknown), 1);
    }

    #[test]
    fn bdat_chunks_are_one_message() {
        let (mut smtp, mut facts) = after_ehlo(EHLO_REPLY);
        let head = b"Content-Type: application/pkcs7-mime;\r\n smime-type=enveloped-data\r\n";
        let tail = b"\r\nMIAGCSqGSIb3DQEHA6CA\r\n";
        let client = [
            &b"MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\n"[..],
            format!("BDAT {}\r\n", head.len()).as_bytes(),
            head,
            format!("BDAT {} LAST\r\n", tail.len()).as_bytes(),
            tail,
        ]
        .concat();
        run(
            &mut smtp,
            &mut facts,
            &[
                (C, &client),
                (
                    S,
                    b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 Ok: 72 bytes\r\n",
                ),
                (S, b"250 2.0.0 Ok: queued as 9C3E41E0B7\r\n"),
            ],
        );
        assert_eq!(class_of(&facts, ContentClass::SmimeEncrypted), 1);
        assert_eq!(facts.cleartext_messages(), 1);
        // Byte by byte, the same.
        let bytewise = crate::session::dialogue::script::run_bytewise::<Smtp>(&[
            (S, GREETING),
            (C, EHLO),
            (S, EHLO_REPLY),
            (C, &client),
            (
                S,
                b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 Ok: 72 bytes\r\n",
            ),
            (S, b"250 2.0.0 Ok: queued as 9C3E41E0B7\r\n"),
        ]);
        assert_eq!(bytewise.content, facts.content);
    }
}
