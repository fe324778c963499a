//! POP3 dialogues modelled on Dovecot's, each also fed one byte at a time.
//! Test code only: the parent declares this module under #[cfg(test)].

use super::*;
use Direction::{ToClient as S, ToServer as C};

const GREETING: &[u8] = b"+OK Dovecot (Debian) ready.\r\n";
const CAPA_REPLY: &[u8] = b"+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\n\
AUTH-RESP-CODE\r\nSTLS\r\nUSER\r\nSASL PLAIN LOGIN\r\n.\r\n";
const BEGIN_TLS: &[u8] = b"+OK Begin TLS negotiation now.\r\n";

/// A message whose lines would end the reply or read as replies if they were not stuffed.
const MESSAGE: &[u8] = b"Return-Path: <a@example.org>\r\nSubject: hi\r\n\r\n\
..\r\n+OK not a reply\r\n...and a stuffed line\r\n-ERR nor this\r\n";

type Event<'a> = script::Event<'a>;

fn run(pop: &mut Pop3, facts: &mut Facts, events: &[Event<'_>]) -> Vec<(usize, Step)> {
    script::run(pop, facts, events)
}

fn session(events: &[Event<'_>]) -> (Facts, Vec<(usize, Step)>) {
    script::session::<Pop3>(events)
}

use crate::session::dialogue::script::{self, facts_with};

/// Greeted, CAPA listed STLS.
fn after_capa() -> (Pop3, Facts) {
    let mut pop = Pop3::new();
    let mut facts = Facts::default();
    run(
        &mut pop,
        &mut facts,
        &[(S, GREETING), (C, b"CAPA\r\n"), (S, CAPA_REPLY)],
    );
    (pop, facts)
}

/// Logged in with USER and PASS in clear.
fn after_user_pass() -> (Pop3, Facts) {
    let (mut pop, mut facts) = after_capa();
    run(
        &mut pop,
        &mut facts,
        &[
            (C, b"USER alice\r\n"),
            (S, b"+OK\r\n"),
            (C, b"PASS secret\r\n"),
            (S, b"+OK Logged in.\r\n"),
        ],
    );
    (pop, facts)
}

fn retr_reply(message: &[u8]) -> Vec<u8> {
    let mut reply = format!("+OK {} octets\r\n", message.len()).into_bytes();
    reply.extend_from_slice(message);
    reply.extend_from_slice(b".\r\n");
    reply
}

#[test]
fn capa_offers_stls_and_sasl() {
    let (pop, facts) = after_capa();
    assert_eq!(facts, facts_with(|f| f.starttls_offered = true));
    assert_eq!(
        pop.sasl_offered().iter().collect::<Vec<_>>(),
        ["PLAIN", "LOGIN"]
    );
    assert!(!pop.apop_offered());
}

#[test]
fn stls_ok_hands_off_after_the_reply_line() {
    let mut reply = BEGIN_TLS.to_vec();
    reply.extend_from_slice(b"\x16\x03\x03\x00\x7a\x02\x00");
    let events = [
        (S, GREETING),
        (C, &b"CAPA\r\n"[..]),
        (S, CAPA_REPLY),
        (C, b"STLS\r\n"),
        (S, &reply),
    ];
    let (facts, steps) = session(&events);
    assert_eq!(
        steps,
        [(
            4,
            Step::StartTls {
                consumed: BEGIN_TLS.len()
            }
        )]
    );
    assert_eq!(
        facts,
        facts_with(|f| {
            f.starttls_offered = true;
            f.starttls_attempted = true;
        })
    );
}

#[test]
fn stls_err_is_a_refusal() {
    let (facts, steps) = session(&[
        (S, GREETING),
        (C, b"CAPA\r\n"),
        (S, CAPA_REPLY),
        (C, b"STLS\r\n"),
        (S, b"-ERR [SYS/TEMP] TLS initialization failed.\r\n"),
        (C, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n"),
    ]);
    assert!(steps.is_empty());
    assert_eq!(
        facts,
        facts_with(|f| {
            f.starttls_offered = true;
            f.starttls_attempted = true;
            f.starttls_refused = true;
            f.anomaly(Anomaly::TlsAfterRefusedStarttls);
        })
    );
}

#[test]
fn stls_unknown_after_capa_listed_it_is_stripping() {
    let (facts, _) = session(&[
        (S, GREETING),
        (C, b"CAPA\r\n"),
        (S, CAPA_REPLY),
        (C, b"STLS\r\n"),
        (S, b"-ERR Unknown command: STLS\r\n"),
    ]);
    assert_eq!(
        facts,
        facts_with(|f| {
            f.starttls_offered = true;
            f.starttls_attempted = true;
            f.starttls_stripped = true;
            f.anomaly(Anomaly::StarttlsRejectedAfterOffer);
        })
    );
    // Without CAPA, the same answer is only a refusal.
    let (facts, _) = session(&[
        (S, GREETING),
        (C, b"STLS\r\n"),
        (S, b"-ERR Unknown command: STLS\r\n"),
    ]);
    assert!(facts.starttls_refused && !facts.starttls_stripped);
}

#[test]
fn masked_capability_and_rewritten_command() {
    let (facts, _) = session(&[
        (S, GREETING),
        (C, b"CAPA\r\n"),
        (S, b"+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nXXXX\r\nUSER\r\n.\r\n"),
        (C, b"XXXX\r\n"),
        (S, b"-ERR Unknown command.\r\n"),
    ]);
    assert_eq!(
        facts,
        facts_with(|f| {
            f.starttls_stripped = true;
            f.anomaly(Anomaly::StarttlsCapabilityMasked);
            f.anomaly(Anomaly::StarttlsCommandRewritten);
        })
    );
}

#[test]
fn user_pass_and_retr_with_dot_stuffed_lines() {
    let reply = retr_reply(MESSAGE);
    let (facts, _) = session(&[
        (S, GREETING),
        (C, b"CAPA\r\n"),
        (S, CAPA_REPLY),
        (C, b"USER alice\r\n"),
        (S, b"+OK\r\n"),
        (C, b"PASS secret\r\n"),
        (S, b"+OK Logged in.\r\n"),
        (C, b"RETR 1\r\n"),
        (S, &reply),
        (C, b"QUIT\r\n"),
        (S, b"+OK Logging out.\r\n"),
    ]);
    assert_eq!(
        facts,
        facts_with(|f| {
            f.starttls_offered = true;
            f.add_auth("USER");
            f.content = crate::session::dialogue::script::plain(1);
        })
    );
}

#[test]
fn retr_across_many_chunks_counts_once_complete() {
    let (mut pop, mut facts) = after_user_pass();
    let mut message = Vec::new();
    while message.len() < 20_000 {
        message.extend_from_slice(MESSAGE);
    }
    let reply = retr_reply(&message);
    run(&mut pop, &mut facts, &[(C, b"RETR 1\r\n")]);
    let (body, end) = reply.split_at(reply.len() - 3);
    for chunk in body.chunks(1448) {
        pop.on_data(S, chunk, &mut facts);
    }
    assert_eq!(facts.cleartext_messages(), 0, "counted when complete");
    pop.on_data(S, end, &mut facts);
    assert_eq!(facts.cleartext_messages(), 1);
    assert!(facts.anomalies.is_empty());
}

#[test]
fn top_counts_only_with_text_lines() {
    let headers = b"Subject: hi\r\n\r\n";
    let (facts, _) = session(&[
        (S, GREETING),
        (C, b"APOP alice c4c9334bac560ecc979e58001b3e22fb\r\n"),
        (S, b"+OK Logged in.\r\n"),
        (C, b"TOP 1 0\r\n"),
        (S, &retr_reply(headers)),
        (C, b"TOP 2 10\r\n"),
        (S, &retr_reply(MESSAGE)),
        (C, b"TOP 3 10\r\n"),
        (S, b"-ERR There's no message 3.\r\n"),
    ]);
    assert_eq!(
        facts,
        facts_with(|f| {
            f.add_auth("APOP");
            f.content = crate::session::dialogue::script::plain(1);
        })
    );
}

#[test]
fn apop_timestamp_in_greeting() {
    let mut pop = Pop3::new();
    let mut facts = Facts::default();
    pop.on_data(
        S,
        b"+OK Dovecot ready. <1896.697170952@dbc.mtview.ca.us>\r\n",
        &mut facts,
    );
    assert!(pop.apop_offered());
    assert_eq!(facts, facts_with(|_| {}));
}

#[test]
fn auth_plain_with_continuation_lines_not_commands() {
    // "STLS" is valid base64: as a SASL response it must not count as an attempt.
    let (facts, _) = session(&[
        (S, GREETING),
        (C, b"AUTH PLAIN\r\n"),
        (S, b"+ \r\n"),
        (C, b"STLS\r\n"),
        (S, b"-ERR [AUTH] Authentication failed.\r\n"),
        (C, b"AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n"),
        (S, b"+OK Logged in.\r\n"),
        (C, b"AUTH\r\n"),
        (S, b"+OK\r\nPLAIN\r\nLOGIN\r\n.\r\n"),
        (C, b"STAT\r\n"),
        (S, b"+OK 2 320\r\n"),
    ]);
    assert_eq!(facts, facts_with(|f| f.add_auth("PLAIN")));
}

#[test]
fn pipelined_commands_pair_in_order() {
    let mut replies = b"+OK 2 messages:\r\n1 120\r\n2 200\r\n.\r\n".to_vec();
    replies.extend_from_slice(&retr_reply(MESSAGE));
    replies.extend_from_slice(b"+OK 1 whatever\r\n");
    replies.extend_from_slice(b"+OK\r\n1 000000055ad6f8b2\r\n2 000000065ad6f8b2\r\n.\r\n");
    replies.extend_from_slice(&retr_reply(MESSAGE));
    replies.extend_from_slice(b"+OK Marked to be deleted.\r\n+OK Marked to be deleted.\r\n");
    let (facts, _) = session(&[
        (S, GREETING),
        (C, b"USER alice\r\nPASS secret\r\n"),
        (S, b"+OK\r\n+OK Logged in.\r\n"),
        (
            C,
            b"LIST\r\nRETR 1\r\nUIDL 1\r\nUIDL\r\nRETR 2\r\nDELE 1\r\nDELE 2\r\n",
        ),
        (S, &replies),
        (C, b"STLS\r\n"),
        (S, b"-ERR TLS support isn't enabled.\r\n"),
    ]);
    assert_eq!(
        facts,
        facts_with(|f| {
            f.starttls_attempted = true;
            f.starttls_refused = true;
            f.add_auth("USER");
            f.content = crate::session::dialogue::script::plain(2);
        })
    );
}

#[test]
fn bare_lf_long_line_and_garbage() {
    let mut long = b"USER ".to_vec();
    long.resize(600, b'a');
    long.extend_from_slice(b"\r\n");
    let (facts, _) = session(&[
        (S, GREETING),
        (C, b"NOOP\n"),
        (C, &long),
        (C, b"a1 LOGIN x y\r\n"),
        (S, b"+OK\r\n-ERR\r\n"),
    ]);
    assert_eq!(
        facts,
        facts_with(|f| {
            f.add_auth("USER");
            f.anomaly(Anomaly::BareLf);
            f.anomaly(Anomaly::LineTooLong);
            f.anomaly(Anomaly::ProtocolViolation);
        })
    );
    let mut data_line = b"+OK\r\n".to_vec();
    data_line.resize(MAX_LINE + 100, b'x');
    data_line.extend_from_slice(b"\r\n.\r\n");
    let (facts, _) = session(&[(S, GREETING), (C, b"RETR 1\r\n"), (S, &data_line)]);
    assert!(facts.anomalies.contains(Anomaly::LineTooLong));
    assert_eq!(facts.cleartext_messages(), 1);
}

#[test]
fn not_pop3_at_all() {
    let (facts, _) = session(&[(S, b"* OK IMAP4rev1 ready\r\n")]);
    assert!(!facts.dialogue_seen);
    assert!(facts.anomalies.contains(Anomaly::ProtocolViolation));
}

#[test]
fn unpaired_reply_and_premature_command() {
    let (facts, _) = session(&[(S, GREETING), (S, b"+OK\r\n")]);
    assert!(facts.anomalies.contains(Anomaly::UnpairedReply));
    let (facts, _) = session(&[(S, GREETING), (C, b"STLS\r\nUSER alice\r\n")]);
    assert!(facts.anomalies.contains(Anomaly::PrematureCommand));
}

#[test]
fn gap_mid_dialogue_empties_the_queue_and_resyncs() {
    let (mut pop, mut facts) = after_capa();
    run(&mut pop, &mut facts, &[(C, b"USER alice\r\n"), (S, b"+O")]);
    pop.on_gap(S, 20, &mut facts);
    let steps = run(
        &mut pop,
        &mut facts,
        &[(S, b"gged in.\r\n"), (C, b"STLS\r\n"), (S, BEGIN_TLS)],
    );
    assert_eq!(
        steps,
        [(
            2,
            Step::StartTls {
                consumed: BEGIN_TLS.len()
            }
        )]
    );
    assert_eq!(
        facts,
        facts_with(|f| {
            f.starttls_offered = true;
            f.starttls_attempted = true;
            f.add_auth("USER");
            f.anomaly(Anomaly::DialogueGap);
        })
    );
}

#[test]
fn gap_inside_a_message_reads_on_to_its_end() {
    let (mut pop, mut facts) = after_user_pass();
    let mut message = Vec::new();
    while message.len() < 10_000 {
        message.extend_from_slice(MESSAGE);
    }
    let reply = retr_reply(&message);
    run(&mut pop, &mut facts, &[(C, b"RETR 1\r\n")]);
    let (head, rest) = reply.split_at(3000);
    let tail = rest.get(1460..).unwrap();
    pop.on_data(S, head, &mut facts);
    pop.on_gap(S, 1460, &mut facts);
    pop.on_data(S, tail, &mut facts);
    assert_eq!(facts.cleartext_messages(), 1);
    run(&mut pop, &mut facts, &[(C, b"STLS\r\n")]);
    assert_eq!(
        pop.on_data(S, BEGIN_TLS, &mut facts),
        Step::StartTls {
            consumed: BEGIN_TLS.len()
        }
    );
    assert_eq!(
        facts.anomalies.iter().collect::<Vec<_>>(),
        [Anomaly::DialogueGap]
    );
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    const PIECES: &[&[u8]] = &[
        b"+OK hi <1.2@x>\r\n",
        b"CAPA\r\n",
        b"STLS\r\nSASL PLAIN\r\n.\r\n",
        b"STLS\r\n",
        b"+OK\r\n",
        b"-ERR Unknown command\r\n",
        b"USER a\r\n",
        b"AUTH PLAIN\r\n",
        b"+ \r\n",
        b"RETR 1\r\n",
        b"TOP 1 0\r\n",
        b"LIST\r\n",
        b"..\r\n",
        b".\r\n",
        b"\r\n",
        b"\n",
        b"XXXX\r\n",
        b"\x16\x03\x01",
    ];

    fn event() -> impl Strategy<Value = (bool, Vec<u8>)> {
        let piece = prop_oneof![
            (0..PIECES.len()).prop_map(|i| PIECES.get(i).copied().unwrap_or_default().to_vec()),
            proptest::collection::vec(any::<u8>(), 0..40),
        ];
        (any::<bool>(), proptest::collection::vec(piece, 0..6))
            .prop_map(|(to_server, pieces)| (to_server, pieces.concat()))
    }

    proptest! {
        #[test]
        fn any_traffic_split_anywhere_gives_the_same_facts(
            events in proptest::collection::vec(event(), 0..24),
            gap in any::<(u8, u16)>(),
        ) {
            let events: Vec<Event<'_>> = events
                .iter()
                .map(|(to_server, data)| (if *to_server { C } else { S }, &data[..]))
                .collect();
            session(&events);
            let mut pop = Pop3::new();
            let mut facts = Facts::default();
            for (i, &(dir, data)) in events.iter().enumerate() {
                if i == usize::from(gap.0) % 8 {
                    pop.on_gap(dir, u64::from(gap.1), &mut facts);
                }
                pop.on_data(dir, data, &mut facts);
            }
        }
    }
}

#[test]
fn retr_and_top_messages_are_classified() {
    use crate::session::content::ContentClass;
    let (mut pop, mut facts) = after_user_pass();
    // Dot-stuffed armor line (RFC 1939 §3).
    let inline = retr_reply(b"Subject: x\r\n\r\n..\r\n\r\n-----BEGIN PGP SIGNED MESSAGE-----\r\n");
    let stuffed = retr_reply(b"Subject: x\r\n\r\n..-----BEGIN PGP MESSAGE-----\r\n");
    let smime =
        retr_reply(b"Content-Type: multipart/signed; protocol=application/pkcs7-signature\r\n\r\n");
    run(
        &mut pop,
        &mut facts,
        &[
            (C, b"RETR 1\r\nRETR 2\r\nTOP 3 1\r\nTOP 3 0\r\n"),
            (S, &inline),
            (S, &stuffed),
            (S, &smime),
            (S, b"+OK\r\nSubject: x\r\n\r\n.\r\n"),
        ],
    );
    assert_eq!(facts.cleartext_messages(), 3);
    // `..` is the line `.`, not blank: the armor line after it is not the first.
    assert_eq!(facts.content.get(ContentClass::None), 2);
    assert_eq!(facts.content.get(ContentClass::SmimeSigned), 1);
}

#[test]
fn gap_in_a_retr_header_is_unknown() {
    use crate::session::content::ContentClass;
    let (mut pop, mut facts) = after_user_pass();
    run(
        &mut pop,
        &mut facts,
        &[(C, b"RETR 1\r\n"), (S, b"+OK\r\nSubject: x\r\n")],
    );
    pop.on_gap(S, 10, &mut facts);
    run(&mut pop, &mut facts, &[(S, b"y\r\n\r\nhi\r\n.\r\n")]);
    assert_eq!(facts.content.get(ContentClass::Unknown), 1);
}
