//! One table of STARTTLS cases, run through SMTP, IMAP and POP3 alike: the policy is one.

use crate::flow::Direction::{self, ToClient as S, ToServer as C};
use crate::session::anomaly::Anomaly;
use crate::session::dialogue::{Dialogue, Facts, Step};
use crate::session::imap::Imap;
use crate::session::pop3::Pop3;
use crate::session::smtp::Smtp;

/// What the server's capability list says.
#[derive(Clone, Copy)]
enum Caps {
    Offer,
    None,
    Masked,
}

/// One step of a case, in the policy's terms.
#[derive(Clone, Copy)]
enum Act {
    Command,
    Rewritten,
    Accept,
    Refuse,
    Unknown,
    ClientGap,
    ServerGap,
    ClientHello,
}

/// How one protocol says each act.
struct Speech {
    greeting: fn(Caps) -> Vec<(Direction, Vec<u8>)>,
    command: &'static [u8],
    rewritten: &'static [u8],
    accept: &'static [u8],
    refuse: &'static [u8],
    unknown: &'static [u8],
}

fn smtp_greeting(caps: Caps) -> Vec<(Direction, Vec<u8>)> {
    let list = match caps {
        Caps::Offer => "250-mx.example\r\n250-STARTTLS\r\n250 8BITMIME\r\n",
        Caps::None => "250-mx.example\r\n250 8BITMIME\r\n",
        Caps::Masked => "250-mx.example\r\n250-XXXXXXXA\r\n250 8BITMIME\r\n",
    };
    vec![
        (S, b"220 mx.example ESMTP\r\n".to_vec()),
        (C, b"EHLO client.example\r\n".to_vec()),
        (S, list.as_bytes().to_vec()),
    ]
}

fn imap_greeting(caps: Caps) -> Vec<(Direction, Vec<u8>)> {
    let cap = match caps {
        Caps::Offer => "STARTTLS",
        Caps::None => "IDLE",
        Caps::Masked => "XXXXXXXX",
    };
    let line = format!("* OK [CAPABILITY IMAP4rev1 {cap} AUTH=PLAIN] ready\r\n");
    vec![(S, line.into_bytes())]
}

fn pop3_greeting(caps: Caps) -> Vec<(Direction, Vec<u8>)> {
    let cap = match caps {
        Caps::Offer => "STLS",
        Caps::None => "TOP",
        Caps::Masked => "XXXX",
    };
    let list = format!("+OK\r\nUSER\r\n{cap}\r\n.\r\n");
    vec![
        (S, b"+OK POP3 ready\r\n".to_vec()),
        (C, b"CAPA\r\n".to_vec()),
        (S, list.into_bytes()),
    ]
}

const SMTP: Speech = Speech {
    greeting: smtp_greeting,
    command: b"STARTTLS\r\n",
    rewritten: b"XXXXXXXX\r\n",
    accept: b"220 2.0.0 Ready to start TLS\r\n",
    refuse: b"454 4.7.0 TLS not available due to local problem\r\n",
    unknown: b"502 5.5.1 Unrecognized command\r\n",
};

const IMAP: Speech = Speech {
    greeting: imap_greeting,
    command: b"a1 STARTTLS\r\n",
    rewritten: b"a1 XXXXXXXX\r\n",
    accept: b"a1 OK Begin TLS negotiation now.\r\n",
    refuse: b"a1 NO TLS not available now.\r\n",
    unknown: b"a1 BAD Unknown command.\r\n",
};

const POP3: Speech = Speech {
    greeting: pop3_greeting,
    command: b"STLS\r\n",
    rewritten: b"XXXX\r\n",
    accept: b"+OK Begin TLS negotiation\r\n",
    refuse: b"-ERR TLS not available now\r\n",
    unknown: b"-ERR Unknown command: STLS\r\n",
};

/// A TLS record header and the start of a ClientHello.
const CLIENT_HELLO: &[u8] = &[
    0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
];

/// What a case must come to.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    offered: bool,
    attempted: bool,
    refused: bool,
    stripped: bool,
    tls: bool,
}

struct Case {
    name: &'static str,
    caps: Caps,
    acts: &'static [Act],
    want: Outcome,
    /// Anomalies the case must record (others may come too, e.g. `dialogue_gap`).
    anomalies: &'static [Anomaly],
}

const fn outcome(
    offered: bool,
    attempted: bool,
    refused: bool,
    stripped: bool,
    tls: bool,
) -> Outcome {
    Outcome {
        offered,
        attempted,
        refused,
        stripped,
        tls,
    }
}

use Act::*;

const CASES: &[Case] = &[
    Case {
        name: "offered, asked, accepted: TLS",
        caps: Caps::Offer,
        acts: &[Command, Accept, ClientHello],
        want: outcome(true, true, false, false, true),
        anomalies: &[],
    },
    Case {
        name: "offered, asked, refused",
        caps: Caps::Offer,
        acts: &[Command, Refuse],
        want: outcome(true, true, true, false, false),
        anomalies: &[],
    },
    Case {
        name: "not offered, turned down as unknown: a refusal",
        caps: Caps::None,
        acts: &[Command, Unknown],
        want: outcome(false, true, true, false, false),
        anomalies: &[],
    },
    Case {
        name: "offered, then turned down as unknown: stripped, not refused",
        caps: Caps::Offer,
        acts: &[Command, Unknown],
        want: outcome(true, true, false, true, false),
        anomalies: &[Anomaly::StarttlsRejectedAfterOffer],
    },
    Case {
        name: "the capability masked: stripped, no offer",
        caps: Caps::Masked,
        acts: &[],
        want: outcome(false, false, false, true, false),
        anomalies: &[Anomaly::StarttlsCapabilityMasked],
    },
    Case {
        name: "the command rewritten: stripped, no attempt",
        caps: Caps::Offer,
        acts: &[Rewritten, Unknown],
        want: outcome(true, false, false, true, false),
        anomalies: &[Anomaly::StarttlsCommandRewritten],
    },
    Case {
        name: "an OK to a rewritten command starts nothing",
        caps: Caps::Offer,
        acts: &[Rewritten, Accept],
        want: outcome(true, false, false, true, false),
        anomalies: &[Anomaly::StarttlsCommandRewritten],
    },
    Case {
        name: "the reply lost, then the client's handshake: TLS",
        caps: Caps::Offer,
        acts: &[Command, ServerGap, ClientHello],
        want: outcome(true, true, false, false, true),
        anomalies: &[Anomaly::DialogueGap],
    },
    Case {
        name: "the command lost, then an unpaired positive reply and the client's handshake: TLS",
        caps: Caps::Offer,
        acts: &[ClientGap, Accept, ClientHello],
        want: outcome(true, true, false, false, true),
        anomalies: &[Anomaly::DialogueGap],
    },
    Case {
        name: "a handshake after a refusal is an anomaly, not TLS",
        caps: Caps::Offer,
        acts: &[Command, Refuse, ClientHello],
        want: outcome(true, true, true, false, false),
        anomalies: &[Anomaly::TlsAfterRefusedStarttls],
    },
    Case {
        name: "a handshake out of nowhere is a violation, not TLS",
        caps: Caps::Offer,
        acts: &[ClientHello],
        want: outcome(true, false, false, false, false),
        anomalies: &[Anomaly::ProtocolViolation],
    },
    Case {
        name: "a client gap without a positive reply proves nothing",
        caps: Caps::Offer,
        acts: &[ClientGap, ClientHello],
        want: outcome(true, false, false, false, false),
        anomalies: &[Anomaly::DialogueGap],
    },
];

/// Plays a case; whether TLS started.
fn play<D: Dialogue + Default>(speech: &Speech, case: &Case) -> (Facts, bool) {
    let mut d = D::default();
    let mut facts = Facts::default();
    let mut events: Vec<(Direction, Option<Vec<u8>>)> = (speech.greeting)(case.caps)
        .into_iter()
        .map(|(dir, b)| (dir, Some(b)))
        .collect();
    for act in case.acts {
        let e = match act {
            Command => (C, Some(speech.command.to_vec())),
            Rewritten => (C, Some(speech.rewritten.to_vec())),
            Accept => (S, Some(speech.accept.to_vec())),
            Refuse => (S, Some(speech.refuse.to_vec())),
            Unknown => (S, Some(speech.unknown.to_vec())),
            ClientGap => (C, None),
            ServerGap => (S, None),
            ClientHello => (C, Some(CLIENT_HELLO.to_vec())),
        };
        events.push(e);
    }
    for (dir, bytes) in events {
        let step = match bytes {
            Some(b) => d.on_data(dir, &b, &mut facts),
            None => {
                d.on_gap(dir, 40, &mut facts);
                Step::Continue
            }
        };
        if step != Step::Continue {
            return (facts, true);
        }
    }
    (facts, false)
}

#[test]
fn one_policy_for_smtp_imap_and_pop3() {
    for case in CASES {
        for (protocol, (facts, tls)) in [
            ("smtp", play::<Smtp>(&SMTP, case)),
            ("imap", play::<Imap>(&IMAP, case)),
            ("pop3", play::<Pop3>(&POP3, case)),
        ] {
            let got = Outcome {
                offered: facts.starttls_offered,
                attempted: facts.starttls_attempted,
                refused: facts.starttls_refused,
                stripped: facts.starttls_stripped,
                tls,
            };
            assert_eq!(got, case.want, "{protocol}: {}", case.name);
            for a in case.anomalies {
                assert!(
                    facts.anomalies.contains(*a),
                    "{protocol}: {}: {a:?} in {:?}",
                    case.name,
                    facts.anomalies
                );
            }
        }
    }
}
