//! Client command lines (RFC 5321 §4.1), classified into what the analyzer needs to know.
//!
//! Nothing here keeps client text: an AUTH mechanism becomes its closed-set label at once, and
//! every argument that may hold an address or a credential is skipped unseen.

use crate::session::content::ContentClass;
use crate::session::dialogue::mechanism;

/// What a pending command is, for pairing with its reply. Only the distinctions that change
/// how a reply is read; every other verb is `Other`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmd {
    Helo,
    Ehlo,
    StartTls,
    Auth,
    Data,
    /// The `.` ending a DATA body: its reply says whether the message, of this class, was
    /// accepted.
    DataEnd {
        class: ContentClass,
    },
    /// A BDAT chunk, queued once its bytes have passed.
    Bdat,
    /// The last chunk of a message of this class.
    BdatLast {
        class: ContentClass,
    },
    Other,
}

/// One client command line, classified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    Helo,
    /// EHLO, or LHLO (LMTP, RFC 2033): both are answered with capabilities.
    Ehlo,
    StartTls,
    /// `XXXXXXXX`: STARTTLS overwritten on the way by a stripping middlebox.
    StartTlsMasked,
    /// `AUTH <mechanism> [initial-response]` (RFC 4954 §4); `mechanism` is `None` when absent.
    Auth {
        mechanism: Option<&'static str>,
        initial_response: bool,
    },
    Data,
    /// `MAIL` or `RSET`: what a message was made of so far is dropped.
    NewTransaction,
    /// `BDAT <size> [LAST]` (RFC 3030 §2); `size` is `None` when not a decimal number.
    Bdat {
        size: Option<u64>,
        last: bool,
    },
    /// Another verb of SMTP or of a well-known extension.
    Known,
    /// A well-formed verb mailtap does not know (an `X` extension, a typo).
    Unknown,
    /// Not a command at all: empty, binary, or a verb no SMTP grammar allows.
    Malformed,
}

impl Command {
    /// A command of SMTP or a known extension: evidence that the dialogue is SMTP.
    pub fn is_recognised(self) -> bool {
        !matches!(self, Command::Unknown | Command::Malformed)
    }
}

/// The verbs with their own meaning here; `None` marks known verbs without one.
const VERBS: &[(&[u8], Option<Command>)] = &[
    (b"EHLO", Some(Command::Ehlo)),
    (b"LHLO", Some(Command::Ehlo)),
    (b"HELO", Some(Command::Helo)),
    (b"STARTTLS", Some(Command::StartTls)),
    (b"XXXXXXXX", Some(Command::StartTlsMasked)),
    (b"DATA", Some(Command::Data)),
    (b"MAIL", Some(Command::NewTransaction)),
    (b"RCPT", None),
    (b"RSET", Some(Command::NewTransaction)),
    (b"NOOP", None),
    (b"QUIT", None),
    (b"VRFY", None),
    (b"EXPN", None),
    (b"HELP", None),
    (b"ETRN", None),
    (b"TURN", None),
    (b"ATRN", None),
    (b"BURL", None),
    (b"XCLIENT", None),
    (b"XFORWARD", None),
    (b"SEND", None),
    (b"SOML", None),
    (b"SAML", None),
];

/// The longest verb accepted as well-formed (`XFORWARD`, `X-LINK2STATE` fit).
const VERB_MAX: usize = 20;

/// Classify one command line (without its line end).
pub fn parse(line: &[u8]) -> Command {
    let (verb, args) = split_word(trim_end(line));
    if verb.eq_ignore_ascii_case(b"AUTH") {
        return auth(args);
    }
    if verb.eq_ignore_ascii_case(b"BDAT") {
        return bdat(args);
    }
    if let Some((_, meaning)) = VERBS.iter().find(|(v, _)| v.eq_ignore_ascii_case(verb)) {
        return meaning.unwrap_or(Command::Known);
    }
    if well_formed_verb(verb) {
        Command::Unknown
    } else {
        Command::Malformed
    }
}

fn auth(args: &[u8]) -> Command {
    let (mech, rest) = split_word(args);
    Command::Auth {
        mechanism: (!mech.is_empty()).then(|| mechanism(mech)),
        initial_response: !rest.is_empty(),
    }
}

fn bdat(args: &[u8]) -> Command {
    let (size, rest) = split_word(args);
    let (flag, extra) = split_word(rest);
    let last = flag.eq_ignore_ascii_case(b"LAST");
    let valid = extra.is_empty() && (flag.is_empty() || last);
    Command::Bdat {
        size: decimal(size).filter(|_| valid),
        last,
    }
}

/// A decimal number that fits a u64 (RFC 3030 §3: `1*DIGIT`).
fn decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        let digit = char::from(d).to_digit(10)?;
        n.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

fn well_formed_verb(verb: &[u8]) -> bool {
    (1..=VERB_MAX).contains(&verb.len())
        && verb.first().is_some_and(u8::is_ascii_alphabetic)
        && verb
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

/// The first space-separated word and what follows it, leading spaces removed.
pub fn split_word(text: &[u8]) -> (&[u8], &[u8]) {
    let text = trim_start(text);
    let end = text.iter().position(|&b| b == b' ').unwrap_or(text.len());
    let (word, rest) = text.split_at(end);
    (word, trim_start(rest))
}

fn trim_start(text: &[u8]) -> &[u8] {
    let start = text
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(text.len());
    text.get(start..).unwrap_or_default()
}

pub fn trim_end(text: &[u8]) -> &[u8] {
    let end = text
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(0, |i| i + 1);
    text.get(..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_are_case_insensitive() {
        assert_eq!(parse(b"ehlo client.example.test"), Command::Ehlo);
        assert_eq!(parse(b"StartTLS "), Command::StartTls);
        assert_eq!(
            parse(b"mail FROM:<a@example.test>"),
            Command::NewTransaction
        );
        assert_eq!(parse(b"XXXXXXXX"), Command::StartTlsMasked);
    }

    #[test]
    fn auth_keeps_only_the_mechanism_label() {
        let ir = parse(b"AUTH PLAIN AHVzZXIAaHVudGVyMg==");
        assert_eq!(
            ir,
            Command::Auth {
                mechanism: Some("PLAIN"),
                initial_response: true
            }
        );
        let odd = parse(b"auth hunter2");
        assert_eq!(
            odd,
            Command::Auth {
                mechanism: Some("OTHER"),
                initial_response: false
            }
        );
        assert_eq!(
            parse(b"AUTH"),
            Command::Auth {
                mechanism: None,
                initial_response: false
            }
        );
    }

    #[test]
    fn bdat_sizes_and_last() {
        let bdat = |size, last| Command::Bdat { size, last };
        assert_eq!(parse(b"BDAT 1000"), bdat(Some(1000), false));
        assert_eq!(parse(b"bdat 500 last"), bdat(Some(500), true));
        assert_eq!(parse(b"BDAT 0 LAST"), bdat(Some(0), true));
        assert_eq!(parse(b"BDAT 99999999999999999999"), bdat(None, false));
        assert_eq!(parse(b"BDAT -1"), bdat(None, false));
        assert_eq!(parse(b"BDAT 10 LAST junk"), bdat(None, true));
        assert_eq!(parse(b"BDAT"), bdat(None, false));
    }

    #[test]
    fn malformed_lines() {
        assert_eq!(parse(b""), Command::Malformed);
        assert_eq!(parse(b"\x16\x03\x01\x02\x00"), Command::Malformed);
        assert_eq!(parse(b"X-LINK2STATE"), Command::Unknown);
        assert_eq!(parse(&[b'A'; 21]), Command::Malformed);
    }
}
