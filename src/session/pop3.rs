//! The POP3 cleartext phase (RFC 1939; CAPA and PIPELINING: RFC 2449; STLS: RFC 2595 §4;
//! AUTH: RFC 5034).
//!
//! Replies carry no tag: each `+OK`/`-ERR` answers the oldest command still waiting (a bounded
//! run-length queue, [`pending::MAX_RUNS`] runs, so pipelined commands pair correctly).
//! STLS follows the policy of `session::starttls`: TLS begins on the `+OK` to `STLS`; `-ERR`
//! is a refusal. `-ERR` also means "try later" or "not now", so it is a stripping indicator
//! (and not a refusal) only when the server listed STLS in its CAPA response and the `-ERR`
//! text says the command is unknown or unsupported.
//!
//! **Multi-line replies.** A `+OK` to CAPA, RETR, TOP, or to LIST, UIDL and AUTH without an
//! argument is followed by lines up to a line holding a single `.` (dot-stuffed lines, `..`,
//! are data). Data lines are read and dropped one at a time; only CAPA's are looked at.
//!
//! **Messages.** `cleartext_messages` counts RETR replies, and TOP replies that ask for at
//! least one line of text (`TOP n 0` sends headers only, like IMAP's `BODY[HEADER]`, and does
//! not count), once their closing `.` arrives: a capture cut inside a message does not count it.
//! Each counted message gets its end-to-end protection class (`session::content`) from its
//! un-dot-stuffed lines: RETR sends the whole message, TOP with lines its header and first
//! body lines, which is all the classification reads.
//!
//! **Logins.** `USER` (or `PASS`) records `USER`, `APOP` records `APOP`, `AUTH mech` records
//! the mechanism; client lines after `AUTH mech` are SASL responses, not commands, until the
//! server's `+OK`/`-ERR` to the AUTH.
//!
//! **Gaps.** The direction's line reader drops everything up to the next line end. A server
//! gap inside multi-line data keeps reading data until the `.` (if the `.` itself was lost,
//! the replies that follow are read as data up to the next `.`). A server gap anywhere else
//! may have swallowed replies, so the queue of waiting commands is emptied: replies to them
//! that arrive later are reported unpaired rather than paired with the wrong command. A client
//! gap may lose commands, whose replies then pair late. Every gap is recorded as `DialogueGap`.
//!
//! **Limits.** Data lines up to 8192 octets are read whole, longer ones are cut and flagged.
//! Commands and status lines longer than 512 octets (RFC 2449 §4: 255 for commands, 512 for
//! replies; one generous limit for both) are flagged. SASL responses have no limit of their
//! own (tokens such as XOAUTH2 exceed 512 octets).

mod pending;
mod syntax;

use crate::flow::Direction;
use crate::session::anomaly::Anomaly;
use crate::session::capability::note_line;
use crate::session::capability::{is_masked, MechSet};
use crate::session::content::{ContentClass, ContentClassifier};
use crate::session::dialogue::{mechanism, Dialogue, Facts, Step};
use crate::session::line::{Line, LineReader};
use crate::session::starttls::{self, ClientTls, Starttls};
use pending::{Cmd, Pending};
use syntax::Reply;

pub use pending::MAX_RUNS;

/// Longest line read whole, either direction (data lines are not limited by RFC 1939).
pub const MAX_LINE: usize = 8192;

/// Longest command or status line, CRLF included (RFC 2449 §4).
pub const MAX_STATUS_LINE: usize = 512;

/// One POP3 connection's cleartext dialogue.
#[derive(Debug)]
pub struct Pop3 {
    client_lines: LineReader,
    server_lines: LineReader,
    st: State,
    /// A client chunk ended with 0x16 alone at a line start: the next byte may make it TLS.
    handshake_byte: bool,
}

impl Default for Pop3 {
    fn default() -> Self {
        Pop3::new()
    }
}

impl Pop3 {
    pub fn new() -> Pop3 {
        Pop3 {
            client_lines: LineReader::new(MAX_LINE),
            server_lines: LineReader::new(MAX_LINE),
            st: State {
                phase: Phase::Greeting,
                pending: Pending::new(),
                sasl_exchange: false,
                apop_offered: false,
                sasl: MechSet::default(),
                starttls: Starttls::default(),
                client_opaque: false,
                message: None,
            },
            handshake_byte: false,
        }
    }

    /// The greeting carried an APOP timestamp: the server accepts APOP.
    pub fn apop_offered(&self) -> bool {
        self.st.apop_offered
    }

    /// The mechanisms of the CAPA `SASL` line.
    pub fn sasl_offered(&self) -> MechSet {
        self.st.sasl
    }
}

impl Dialogue for Pop3 {
    /// After the `+OK` to STLS the analyzer is done: further calls are ignored.
    fn on_data(&mut self, dir: Direction, data: &[u8], facts: &mut Facts) -> Step {
        if self.st.phase == Phase::Tls {
            return Step::Continue;
        }
        let mut input = data;
        match dir {
            Direction::ToServer => loop {
                if self.st.client_opaque {
                    break;
                }
                if self.st.starttls.expects_client_tls() {
                    starttls::resync_at_handshake(
                        &mut self.client_lines,
                        input,
                        &mut self.handshake_byte,
                    );
                }
                if !self.st.sasl_exchange {
                    self.client_lines.resume_at(input, |l| {
                        syntax::command(l).is_some_and(|(k, _)| verb(k) != Verb::Other)
                    });
                }
                // After a gap, the rest of the lost line is not a line start (nor TLS).
                self.client_lines.drop_lost_tail(&mut input);
                let held_byte = self.handshake_byte;
                let at_line_start = !self.client_lines.has_partial();
                if starttls::tls_record_starts(input, at_line_start, &mut self.handshake_byte) {
                    match self.st.starttls.client_tls(facts) {
                        ClientTls::Starts => {
                            self.st.phase = Phase::Tls;
                            return Step::ClientTls {
                                consumed: data.len() - input.len(),
                                held_byte,
                            };
                        }
                        ClientTls::Opaque => self.st.client_opaque = true,
                    }
                    break;
                }
                let Some(line) = self.client_lines.next_line(&mut input) else {
                    break;
                };
                self.st.client_line(line, facts);
            },
            Direction::ToClient => {
                if self.st.phase == Phase::Ready {
                    self.server_lines
                        .resume_at(input, |l| syntax::reply(l).is_some());
                }
                while let Some(line) = self.server_lines.next_line(&mut input) {
                    if self.st.server_line(line, facts) == Upgrade::Tls {
                        return Step::StartTls {
                            consumed: data.len().saturating_sub(input.len()),
                        };
                    }
                }
            }
        }
        Step::Continue
    }

    /// See the module doc: resync at the next line end; a server gap outside multi-line data
    /// empties the queue of waiting commands.
    fn on_gap(&mut self, dir: Direction, _len: u64, facts: &mut Facts) {
        if self.st.phase == Phase::Tls {
            return;
        }
        facts.anomaly(Anomaly::DialogueGap);
        match dir {
            Direction::ToServer => {
                self.handshake_byte = false;
                self.st.starttls.client_gap();
                self.client_lines.reset();
            }
            Direction::ToClient => {
                self.server_lines.reset();
                self.st.server_gap();
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting for the server's first line.
    Greeting,
    /// Waiting for status lines.
    Ready,
    /// Inside a multi-line reply, until `.`.
    Data(Data),
    /// The `+OK` to STLS was seen.
    Tls,
}

/// What the lines of a multi-line reply are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Data {
    Capa,
    /// Scan listings, UIDs, mechanism names: dropped.
    Listing,
    /// Message lines, dropped; `counts` as in [`Cmd::Message`].
    Message {
        counts: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Upgrade {
    No,
    Tls,
}

#[derive(Debug)]
struct State {
    phase: Phase,
    pending: Pending,
    /// Client lines are SASL responses until the AUTH command is answered.
    sasl_exchange: bool,
    apop_offered: bool,
    sasl: MechSet,
    starttls: Starttls,
    /// TLS bytes where a command should start, with no STLS to explain them.
    client_opaque: bool,
    /// The message whose lines are being read, classified as they pass.
    message: Option<ContentClassifier>,
}

/// Client keywords the analyzer acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verb {
    User,
    Pass,
    Apop,
    Auth,
    Stls,
    Capa,
    Retr,
    Top,
    List,
    Uidl,
    /// `XXXX`: STLS overwritten by a middlebox.
    Masked,
    Other,
}

const VERBS: &[(&[u8], Verb)] = &[
    (b"USER", Verb::User),
    (b"PASS", Verb::Pass),
    (b"APOP", Verb::Apop),
    (b"AUTH", Verb::Auth),
    (b"STLS", Verb::Stls),
    (b"CAPA", Verb::Capa),
    (b"RETR", Verb::Retr),
    (b"TOP", Verb::Top),
    (b"LIST", Verb::List),
    (b"UIDL", Verb::Uidl),
];

fn verb(keyword: &[u8]) -> Verb {
    VERBS
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(keyword))
        .map(|&(_, v)| v)
        .unwrap_or(if is_masked(keyword, 4) {
            Verb::Masked
        } else {
            Verb::Other
        })
}

/// Commands and status lines have a tighter limit than data lines.
fn note_status_length(line: &Line<'_>, facts: &mut Facts) {
    if line.text.len() + 2 > MAX_STATUS_LINE {
        facts.anomaly(Anomaly::LineTooLong);
    }
}

impl State {
    fn client_line(&mut self, line: Line<'_>, facts: &mut Facts) {
        note_line(&line, facts);
        if self.sasl_exchange {
            return;
        }
        note_status_length(&line, facts);
        let Some((keyword, args)) = syntax::command(line.text) else {
            facts.anomaly(Anomaly::ProtocolViolation);
            return;
        };
        facts.dialogue_seen = true;
        if self.pending.any(Cmd::Stls) {
            facts.anomaly(Anomaly::PrematureCommand);
        }
        let cmd = self.command(keyword, args, facts);
        if !self.pending.push(cmd) {
            facts.anomaly(Anomaly::UnpairedReply);
        }
    }

    fn command(&mut self, keyword: &[u8], args: &[u8], facts: &mut Facts) -> Cmd {
        match verb(keyword) {
            Verb::User | Verb::Pass => {
                facts.add_auth("USER");
                Cmd::Single
            }
            Verb::Apop => {
                facts.add_auth("APOP");
                Cmd::Single
            }
            Verb::Auth => self.auth(args, facts),
            Verb::Stls => {
                self.starttls.command(facts);
                Cmd::Stls
            }
            Verb::Masked => {
                self.starttls.rewritten(facts);
                Cmd::Single
            }
            Verb::Capa => Cmd::Capa,
            Verb::Retr => Cmd::Message { counts: true },
            Verb::Top => Cmd::Message {
                counts: syntax::top_has_text(args),
            },
            Verb::List | Verb::Uidl if args.is_empty() => Cmd::Listing,
            Verb::List | Verb::Uidl | Verb::Other => Cmd::Single,
        }
    }

    /// `AUTH mech [initial-response]` starts a SASL exchange; `AUTH` alone asks for the list of
    /// mechanisms (a multi-line reply, as Outlook and Dovecot use it).
    fn auth(&mut self, args: &[u8], facts: &mut Facts) -> Cmd {
        let (mech, _initial_response) = syntax::split_word(args);
        if mech.is_empty() {
            return Cmd::Listing;
        }
        facts.add_auth(mechanism(mech));
        self.sasl_exchange = true;
        Cmd::Auth
    }

    fn server_line(&mut self, line: Line<'_>, facts: &mut Facts) -> Upgrade {
        note_line(&line, facts);
        match self.phase {
            Phase::Data(data) => self.data_line(data, line, facts),
            Phase::Greeting => {
                note_status_length(&line, facts);
                self.greeting(line.text, facts);
            }
            Phase::Ready => {
                note_status_length(&line, facts);
                return self.reply(line.text, facts);
            }
            Phase::Tls => {}
        }
        Upgrade::No
    }

    fn greeting(&mut self, text: &[u8], facts: &mut Facts) {
        self.phase = Phase::Ready;
        match syntax::reply(text) {
            Some(Reply::Ok(text)) => {
                facts.dialogue_seen = true;
                self.apop_offered = syntax::has_apop_timestamp(text);
            }
            Some(Reply::Err(_)) => facts.dialogue_seen = true,
            Some(Reply::Challenge) | None => facts.anomaly(Anomaly::ProtocolViolation),
        }
    }

    /// A status line: pair it with the oldest waiting command.
    fn reply(&mut self, text: &[u8], facts: &mut Facts) -> Upgrade {
        let (ok, text) = match syntax::reply(text) {
            Some(Reply::Ok(text)) => (true, text),
            Some(Reply::Err(text)) => (false, text),
            Some(Reply::Challenge) => {
                facts.dialogue_seen = true;
                if self.pending.front() != Some(Cmd::Auth) {
                    facts.anomaly(Anomaly::ProtocolViolation);
                }
                return Upgrade::No;
            }
            None => {
                facts.anomaly(Anomaly::ProtocolViolation);
                return Upgrade::No;
            }
        };
        facts.dialogue_seen = true;
        let Some(cmd) = self.pending.pop() else {
            facts.anomaly(Anomaly::UnpairedReply);
            if ok {
                self.starttls.unpaired_positive();
            }
            return Upgrade::No;
        };
        self.answer(cmd, ok, text, facts)
    }

    /// What a command's `+OK` (`ok`) or `-ERR` leads to.
    fn answer(&mut self, cmd: Cmd, ok: bool, text: &[u8], facts: &mut Facts) -> Upgrade {
        match (cmd, ok) {
            (Cmd::Stls, true) => {
                if self.starttls.reply(starttls::Reply::Accepted, facts) {
                    self.phase = Phase::Tls;
                    return Upgrade::Tls;
                }
            }
            (Cmd::Stls, false) => {
                let reply = if syntax::says_unknown_command(text) {
                    starttls::Reply::Unknown
                } else {
                    starttls::Reply::Refused
                };
                self.starttls.reply(reply, facts);
            }
            (Cmd::Auth, _) => self.sasl_exchange = false,
            (Cmd::Capa, true) => self.phase = Phase::Data(Data::Capa),
            (Cmd::Listing, true) => self.phase = Phase::Data(Data::Listing),
            (Cmd::Message { counts }, true) => {
                self.phase = Phase::Data(Data::Message { counts });
                self.message = counts.then(ContentClassifier::new);
            }
            (Cmd::Single, _) | (Cmd::Capa | Cmd::Listing | Cmd::Message { .. }, false) => {}
        }
        Upgrade::No
    }

    /// One line of a multi-line reply; `.` ends it.
    fn data_line(&mut self, data: Data, line: Line<'_>, facts: &mut Facts) {
        let text = line.text;
        if text == b"." {
            self.phase = Phase::Ready;
            if data == (Data::Message { counts: true }) {
                let class = self
                    .message
                    .take()
                    .map_or(ContentClass::Unknown, ContentClassifier::finish);
                facts.count_message(class);
            }
        } else if data == Data::Capa {
            self.capability(text, facts);
        } else if let Some(message) = self.message.as_mut().filter(|m| !m.decided()) {
            // RFC 1939 §3: a line starting with `.` had one more put in front.
            message.feed(text.strip_prefix(b".").unwrap_or(text));
            if line.too_long {
                message.cut_line();
            }
            message.feed(b"\r\n");
        }
    }

    /// One CAPA line (RFC 2449 §5): a capability name and its arguments.
    fn capability(&mut self, text: &[u8], facts: &mut Facts) {
        let (name, args) = syntax::split_word(text);
        if name.eq_ignore_ascii_case(b"STLS") {
            self.starttls.offered(facts);
        } else if name.eq_ignore_ascii_case(b"SASL") {
            for mech in args.split(|&b| b == b' ').filter(|m| !m.is_empty()) {
                self.sasl.insert(mech);
            }
        } else if is_masked(name, 4) {
            self.starttls.masked(facts);
        }
    }

    fn server_gap(&mut self) {
        if let Some(message) = self.message.as_mut() {
            message.gap();
        }
        match self.phase {
            Phase::Data(_) | Phase::Tls => {}
            Phase::Greeting | Phase::Ready => {
                self.phase = Phase::Ready;
                self.pending.clear();
                self.sasl_exchange = false;
            }
        }
    }
}

#[cfg(test)]
mod tests;
