//! IMAP dialogues modelled on Dovecot's, each also fed one byte at a time.
//! Test code only: the parent declares this module under #[cfg(test)].

use super::*;
use crate::session::dialogue::Step;
use Direction::{ToClient as S, ToServer as C};

const GREETING: &[u8] = b"* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE \
LITERAL+ STARTTLS AUTH=PLAIN] Dovecot (Debian) ready.\r\n";
const GREETING_NO_TLS: &[u8] =
    b"* OK [CAPABILITY IMAP4rev1 SASL-IR ID IDLE LITERAL+ AUTH=PLAIN] Dovecot (Debian) ready.\r\n";
const LOGGED_IN: &[u8] = b"a1 OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE \
SORT THREAD=REFERENCES LITERAL+ NOTIFY SPECIAL-USE] Logged in\r\n";

type Event<'a> = script::Event<'a>;

fn run(imap: &mut Imap, facts: &mut Facts, events: &[Event<'_>]) -> Vec<(usize, Step)> {
    script::run(imap, facts, events)
}

fn session(events: &[Event<'_>]) -> (Facts, Vec<(usize, Step)>) {
    script::session::<Imap>(events)
}

use crate::session::dialogue::script::{self, facts_with};

/// Greeted by a server that offers STARTTLS.
fn after_greeting() -> (Imap, Facts) {
    let mut imap = Imap::new();
    let mut facts = Facts::default();
    assert_eq!(imap.on_data(S, GREETING, &mut facts), Step::Continue);
    (imap, facts)
}

/// Logged in in clear with LOGIN.
fn after_login() -> (Imap, Facts) {
    let (mut imap, mut facts) = after_greeting();
    run(
        &mut imap,
        &mut facts,
        &[(C, b"a1 LOGIN alice secret\r\n"), (S, LOGGED_IN)],
    );
    (imap, facts)
}

/// Logged in, a FETCH of one whole message sent.
fn after_fetch_command() -> (Imap, Facts) {
    let (mut imap, mut facts) = after_login();
    run(
        &mut imap,
        &mut facts,
        &[(C, b"a3 UID FETCH 7 (BODY.PEEK[] FLAGS)\r\n")],
    );
    (imap, facts)
}

#[test]
fn greeting_offers_starttls_and_plain() {
    let (imap, facts) = after_greeting();
    assert_eq!(facts, facts_with(|f| f.starttls_offered = true));
    assert_eq!(imap.sasl_offered().iter().collect::<Vec<_>>(), ["PLAIN"]);
    assert!(!imap.login_disabled() && !imap.preauth());
}

#[test]
fn starttls_ok_hands_off_after_the_tagged_line() {
    let ok = b"a OK Begin TLS negotiation now.\r\n";
    let mut reply = b"* 1 EXISTS\r\n".to_vec();
    reply.extend_from_slice(ok);
    reply.extend_from_slice(b"\x16\x03\x03\x00\x7a\x02\x00\x00\x76");
    let events = [
        (S, GREETING),
        (C, &b"a CAPABILITY\r\n"[..]),
        (
            S,
            b"* CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED AUTH=PLAIN\r\na OK Pre-login capabilities listed, post-login capabilities have more.\r\n",
        ),
        (C, b"a STARTTLS\r\n"),
        (S, &reply),
    ];
    let (facts, steps) = session(&events);
    assert_eq!(
        steps,
        [(
            4,
            Step::StartTls {
                consumed: 12 + ok.len()
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
    let mut imap = Imap::new();
    let mut facts = Facts::default();
    run(&mut imap, &mut facts, &events);
    assert!(imap.login_disabled());
    let before = facts.clone();
    assert_eq!(imap.on_data(C, b"garbage\r\n", &mut facts), Step::Continue);
    assert_eq!(facts, before, "nothing is read after the hand-off");
}

#[test]
fn starttls_no_is_a_refusal() {
    let (facts, steps) = session(&[
        (S, GREETING),
        (C, b"a STARTTLS\r\n"),
        (S, b"a NO [UNAVAILABLE] TLS support isn't enabled.\r\n"),
        (C, b"b LOGIN alice secret\r\n"),
    ]);
    assert!(steps.is_empty());
    assert_eq!(
        facts,
        facts_with(|f| {
            f.starttls_offered = true;
            f.starttls_attempted = true;
            f.starttls_refused = true;
            f.add_auth("LOGIN");
        })
    );
}

#[test]
fn starttls_bad_after_offer_is_stripping() {
    let (facts, _) = session(&[
        (S, GREETING),
        (C, b"a STARTTLS\r\n"),
        (S, b"a BAD Error in IMAP command received by server.\r\n"),
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
}

#[test]
fn starttls_bad_without_offer_is_only_a_refusal() {
    let (facts, _) = session(&[
        (S, GREETING_NO_TLS),
        (C, b"a STARTTLS\r\n"),
        (S, b"a BAD Unknown command.\r\n"),
        (C, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n"),
    ]);
    assert_eq!(
        facts,
        facts_with(|f| {
            f.starttls_attempted = true;
            f.starttls_refused = true;
            f.anomaly(Anomaly::TlsAfterRefusedStarttls);
        })
    );
}

#[test]
fn masked_capability_and_rewritten_command() {
    let (facts, steps) = session(&[
        (
            S,
            b"* OK [CAPABILITY IMAP4rev1 XXXXXXXX AUTH=PLAIN] Dovecot (Debian) ready.\r\n",
        ),
        (C, b"a XXXXXXXX\r\n"),
        (S, b"a BAD Unknown command.\r\n"),
    ]);
    assert!(steps.is_empty());
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
fn cleartext_login() {
    let (imap, facts) = after_login();
    assert_eq!(
        facts,
        facts_with(|f| {
            f.starttls_offered = true;
            f.add_auth("LOGIN");
        })
    );
    assert!(imap.st.pending.len() == 0);
}

#[test]
fn login_with_synchronizing_literal_password() {
    // The password's bytes would read as a STARTTLS command if they were parsed.
    let (facts, _) = session(&[
        (S, GREETING),
        (C, b"a1 LOGIN alice {12}\r\n"),
        (S, b"+ OK\r\n"),
        (C, b"b STARTTLS\r\n\r\n"),
        (S, LOGGED_IN),
        (C, b"a2 LOGOUT\r\n"),
    ]);
    assert_eq!(
        facts,
        facts_with(|f| {
            f.starttls_offered = true;
            f.add_auth("LOGIN");
        })
    );
}

#[test]
fn login_with_literal_plus_user_and_password() {
    let (facts, _) = session(&[
        (S, GREETING),
        (C, b"a1 LOGIN {5+}\r\nalice {6+}\r\nsec"),
        (C, b"ret\r\n"),
        (S, LOGGED_IN),
        (C, b"a2 SELECT INBOX\r\n"),
        (
            S,
            b"a2 OK [READ-WRITE] Select completed (0.001 + 0.000 secs).\r\n",
        ),
    ]);
    assert_eq!(
        facts,
        facts_with(|f| {
            f.starttls_offered = true;
            f.add_auth("LOGIN");
        })
    );
}

#[test]
fn refused_synchronizing_literal_is_not_expected() {
    let (facts, steps) = session(&[
        (S, GREETING),
        (C, b"a1 APPEND INBOX {9999999}\r\n"),
        (
            S,
            b"a1 NO [OVERQUOTA] Quota exceeded (mailbox for user is full)\r\n",
        ),
        (C, b"a2 STARTTLS\r\n"),
        (S, b"a2 OK Begin TLS negotiation now.\r\n"),
    ]);
    assert_eq!(steps, [(4, Step::StartTls { consumed: 34 })]);
    assert_eq!(
        facts,
        facts_with(|f| {
            f.starttls_offered = true;
            f.starttls_attempted = true;
        })
    );
}

#[test]
fn authenticate_plain_with_continuation() {
    let (facts, _) = session(&[
        (S, GREETING),
        (C, b"a1 AUTHENTICATE PLAIN\r\n"),
        (S, b"+ \r\n"),
        (C, b"AGFsaWNlAHNlY3JldA==\r\n"),
        (S, LOGGED_IN),
        (C, b"a2 IDLE\r\n"),
        (S, b"+ idling\r\n* 2 EXISTS\r\n"),
        (C, b"DONE\r\n"),
        (S, b"a2 OK Idle completed (0.001 + 5.000 secs).\r\n"),
    ]);
    assert_eq!(
        facts,
        facts_with(|f| {
            f.starttls_offered = true;
            f.add_auth("PLAIN");
        })
    );
}

#[test]
fn authenticate_with_initial_response_and_unknown_mechanism() {
    let (facts, _) = session(&[
        (S, GREETING),
        (C, b"a1 AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==\r\n"),
        (
            S,
            b"a1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n",
        ),
        (C, b"a2 AUTHENTICATE hunter2\r\n"),
        (S, b"a2 NO Unsupported authentication mechanism.\r\n"),
    ]);
    assert_eq!(facts.cleartext_auth, ["PLAIN", "OTHER"]);
    assert!(facts.anomalies.is_empty());
}

/// A FETCH of one 3000-byte body whose content looks like IMAP responses.
fn fetch_body_events(body: &[u8]) -> Vec<u8> {
    let mut reply = format!("* 1 FETCH (UID 7 BODY[] {{{}}}\r\n", body.len()).into_bytes();
    reply.extend_from_slice(body);
    reply.extend_from_slice(b" FLAGS (\\Seen))\r\na3 OK Fetch completed (0.002 + 0.000 secs).\r\n");
    reply
}

fn body() -> Vec<u8> {
    let mut body = b"From: a\r\nSubject: b\r\n\r\n".to_vec();
    while body.len() < 3000 {
        body.extend_from_slice(b"a9 OK [CAPABILITY STARTTLS] x\r\n* BYE {5}\r\n");
    }
    body
}

#[test]
fn fetch_body_literal_across_many_chunks_is_one_message() {
    let (mut imap, mut facts) = after_fetch_command();
    let reply = fetch_body_events(&body());
    for chunk in reply.chunks(1448) {
        assert_eq!(imap.on_data(S, chunk, &mut facts), Step::Continue);
    }
    assert_eq!(
        facts,
        facts_with(|f| {
            f.starttls_offered = true;
            f.add_auth("LOGIN");
            f.content = crate::session::dialogue::script::plain(1);
        })
    );
}

#[test]
fn header_only_fetch_is_not_a_message_and_two_bodies_are_two() {
    let header = b"From: a\r\nSubject: b\r\n\r\n";
    let mut s = format!("* 1 FETCH (UID 7 BODY[HEADER] {{{}}}\r\n", header.len()).into_bytes();
    s.extend_from_slice(header);
    s.extend_from_slice(b")\r\n* 2 FETCH (RFC822.HEADER {23}\r\n");
    s.extend_from_slice(header);
    s.extend_from_slice(b" RFC822.SIZE 100)\r\n");
    // One response with header and text: one message.
    s.extend_from_slice(b"* 3 FETCH (BODY[HEADER] {23}\r\n");
    s.extend_from_slice(header);
    s.extend_from_slice(b" BODY[TEXT] {4}\r\nhi\r\n)\r\n");
    // An empty body carries no content.
    s.extend_from_slice(b"* 4 FETCH (BODY[] {0}\r\n)\r\n");
    s.extend_from_slice(b"* 5 FETCH (BINARY[1] ~{2}\r\nhi)\r\na3 OK Fetch completed.\r\n");
    let (facts, _) = session(&[
        (S, GREETING),
        (C, b"a3 FETCH 1:5 (BODY.PEEK[HEADER])\r\n"),
        (S, &s),
    ]);
    assert_eq!(facts.cleartext_messages(), 2);
    // Sections lack the top-level header: their class is unknown.
    let unknown = crate::session::content::ContentClass::Unknown;
    assert_eq!(facts.content.get(unknown), 2);
    assert!(facts.anomalies.is_empty());
}

#[test]
fn whole_message_literals_are_classified() {
    use crate::session::content::ContentClass;
    let pgp = b"Content-Type: multipart/signed; protocol=\"application/pgp-signature\"\r\n\r\n";
    let smime = b"Content-Type: application/pkcs7-mime; smime-type=enveloped-data\r\n\r\nMIA";
    let mut s = format!("* 1 FETCH (BODY[] {{{}}}\r\n", pgp.len()).into_bytes();
    s.extend_from_slice(pgp);
    s.extend_from_slice(format!(")\r\n* 2 FETCH (RFC822 {{{}}}\r\n", smime.len()).as_bytes());
    s.extend_from_slice(smime);
    s.extend_from_slice(b")\r\n* 3 FETCH (BINARY[] ~{12}\r\nSubject: x\r\n)\r\n");
    s.extend_from_slice(b"a3 OK Fetch completed.\r\n");
    let (facts, _) = session(&[
        (S, GREETING),
        (C, b"a3 FETCH 1:3 (BODY.PEEK[])\r\n"),
        (S, &s),
    ]);
    assert_eq!(facts.content.get(ContentClass::PgpSigned), 1);
    assert_eq!(facts.content.get(ContentClass::SmimeEncrypted), 1);
    // Ended inside its header section.
    assert_eq!(facts.content.get(ContentClass::Unknown), 1);
}

#[test]
fn gap_in_a_literal_header_is_unknown() {
    let (mut imap, mut facts) = after_fetch_command();
    let body = b"Subject: x\r\n\r\nhello\r\n";
    let reply = fetch_body_events(body);
    let (head, tail) = reply.split_at(40);
    imap.on_data(S, head, &mut facts);
    imap.on_gap(S, 3, &mut facts);
    imap.on_data(S, tail.get(3..).unwrap_or_default(), &mut facts);
    let unknown = crate::session::content::ContentClass::Unknown;
    assert_eq!(facts.content.get(unknown), 1);
    assert_eq!(facts.cleartext_messages(), 1);
}

#[test]
fn preauth_needs_no_login() {
    let (facts, _) = session(&[
        (
            S,
            b"* PREAUTH [CAPABILITY IMAP4rev1 SASL-IR IDLE LITERAL+] Logged in as alice\r\n",
        ),
        (C, b"a1 SELECT INBOX\r\n"),
        (S, b"a1 OK [READ-WRITE] Select completed.\r\n"),
    ]);
    assert_eq!(facts, facts_with(|_| {}));
    let (mut imap, mut facts) = (Imap::new(), Facts::default());
    imap.on_data(S, b"* PREAUTH Logged in as alice\r\n", &mut facts);
    assert!(imap.preauth());
}

#[test]
fn bye_greeting_is_a_dialogue() {
    let (facts, _) = session(&[(S, b"* BYE Too many connections\r\n")]);
    assert_eq!(facts, facts_with(|_| {}));
}

#[test]
fn bare_lf_long_line_and_garbage() {
    let mut long = b"a2 SEARCH ".to_vec();
    long.resize(MAX_LINE + 100, b'1');
    long.extend_from_slice(b"\r\n");
    let (facts, _) = session(&[
        (S, GREETING),
        (C, b"a1 NOOP\n"),
        (C, &long),
        (C, b"GET / HTTP/1.1\r\n"),
        (S, b"a1 OK NOOP completed.\r\n"),
    ]);
    assert_eq!(
        facts,
        facts_with(|f| {
            f.starttls_offered = true;
            f.anomaly(Anomaly::BareLf);
            f.anomaly(Anomaly::LineTooLong);
            f.anomaly(Anomaly::ProtocolViolation);
        })
    );
}

#[test]
fn not_imap_at_all() {
    let (facts, _) = session(&[(S, b"220 mx.example.org ESMTP Postfix\r\n")]);
    assert_eq!(
        facts,
        Facts {
            anomalies: {
                let mut a = Facts::default();
                a.anomaly(Anomaly::ProtocolViolation);
                a.anomalies
            },
            ..Facts::default()
        }
    );
}

#[test]
fn unpaired_reply_and_pending_overflow() {
    let mut pipelined = Vec::new();
    for i in 0..=MAX_PENDING {
        pipelined.extend_from_slice(format!("n{i} NOOP\r\n").as_bytes());
    }
    let (facts, _) = session(&[(S, GREETING), (C, &pipelined)]);
    assert!(facts.anomalies.contains(Anomaly::UnpairedReply));
    let (facts, _) = session(&[(S, GREETING), (S, b"zz OK done\r\n")]);
    assert!(facts.anomalies.contains(Anomaly::UnpairedReply));
}

#[test]
fn command_after_starttls_before_its_answer_is_premature() {
    let (facts, _) = session(&[
        (S, GREETING),
        (C, b"a STARTTLS\r\nb LOGIN alice secret\r\n"),
    ]);
    assert!(facts.anomalies.contains(Anomaly::PrematureCommand));
}

#[test]
fn gap_mid_dialogue_resyncs_at_the_next_line() {
    let (mut imap, mut facts) = after_greeting();
    run(
        &mut imap,
        &mut facts,
        &[(C, b"a1 LOGIN alice secret\r\na2 SELECT IN")],
    );
    imap.on_gap(C, 100, &mut facts);
    let steps = run(
        &mut imap,
        &mut facts,
        &[
            (C, b"BOX\r\na3 STARTTLS\r\n"),
            (
                S,
                b"a1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n",
            ),
            (
                S,
                b"a2 BAD Error in IMAP command SELECT: Not logged in.\r\n",
            ),
            (S, b"a3 OK Begin TLS negotiation now.\r\n"),
        ],
    );
    assert_eq!(steps, [(3, Step::StartTls { consumed: 34 })]);
    assert_eq!(
        facts,
        facts_with(|f| {
            f.starttls_offered = true;
            f.starttls_attempted = true;
            f.add_auth("LOGIN");
            f.anomaly(Anomaly::DialogueGap);
            // a2's command was lost in the gap.
            f.anomaly(Anomaly::UnpairedReply);
        })
    );
}

#[test]
fn gap_inside_a_body_literal_keeps_step_and_counts() {
    let (mut imap, mut facts) = after_fetch_command();
    let reply = fetch_body_events(&body());
    let (head, rest) = reply.split_at(1000);
    let (_, tail) = rest.split_at(1460);
    imap.on_data(S, head, &mut facts);
    imap.on_gap(S, 1460, &mut facts);
    imap.on_data(S, tail, &mut facts);
    assert_eq!(facts.cleartext_messages(), 1);
    assert_eq!(
        facts.anomalies.iter().collect::<Vec<_>>(),
        [Anomaly::DialogueGap]
    );
    // Still in step: the next tagged OK hands off.
    run(&mut imap, &mut facts, &[(C, b"a4 STARTTLS\r\n")]);
    assert_eq!(
        imap.on_data(S, b"a4 OK Begin TLS negotiation now.\r\n", &mut facts),
        Step::StartTls { consumed: 34 }
    );
}

#[test]
fn gap_past_the_end_of_a_literal_counts_and_resyncs() {
    let (mut imap, mut facts) = after_fetch_command();
    let reply = fetch_body_events(&body());
    let (head, rest) = reply.split_at(1000);
    // The gap swallows the rest of the body and the start of " FLAGS (\Seen))".
    let header_line = reply.iter().position(|&b| b == b'\n').unwrap() + 1;
    let lost = header_line + body().len() + 5 - head.len();
    let tail = rest.get(lost..).unwrap();
    imap.on_data(S, head, &mut facts);
    imap.on_gap(S, lost as u64, &mut facts);
    imap.on_data(S, tail, &mut facts);
    assert_eq!(facts.cleartext_messages(), 1);
    assert_eq!(
        facts.anomalies.iter().collect::<Vec<_>>(),
        [Anomaly::DialogueGap]
    );
}

#[test]
fn gap_inside_a_client_literal() {
    let (mut imap, mut facts) = after_greeting();
    run(
        &mut imap,
        &mut facts,
        &[(C, b"a1 APPEND INBOX {1000+}\r\nFrom: a\r\n")],
    );
    imap.on_gap(C, 500, &mut facts);
    let mut rest = vec![b'x'; 1000 - 9 - 500];
    rest.extend_from_slice(b"\r\na2 STARTTLS\r\n");
    run(&mut imap, &mut facts, &[(C, &rest)]);
    assert!(facts.starttls_attempted);
    assert_eq!(
        facts.anomalies.iter().collect::<Vec<_>>(),
        [Anomaly::DialogueGap]
    );
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    const PIECES: &[&[u8]] = &[
        b"* OK [CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN] hi\r\n",
        b"* PREAUTH x\r\n",
        b"a STARTTLS\r\n",
        b"a OK done\r\n",
        b"a BAD x\r\n",
        b"b LOGIN alice {5}\r\n",
        b"b AUTHENTICATE PLAIN\r\n",
        b"+ \r\n",
        b"* 1 FETCH (BODY[] {7}\r\n",
        b"* 2 FETCH (BODY[HEADER] {3+}\r\n",
        b"~{2}\r\n",
        b")\r\n",
        b"DONE\r\n",
        b"\r\n",
        b"\n",
        b"{",
        b"}",
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
            let mut imap = Imap::new();
            let mut facts = Facts::default();
            for (i, &(dir, data)) in events.iter().enumerate() {
                if i == usize::from(gap.0) % 8 {
                    imap.on_gap(dir, u64::from(gap.1), &mut facts);
                }
                imap.on_data(dir, data, &mut facts);
            }
        }
    }
}
