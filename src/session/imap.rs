//! The IMAP cleartext phase (RFC 9051, RFC 3501; STARTTLS: RFC 2595 §3.1, RFC 9051 §6.2.1).
//!
//! Client lines are tagged commands, server lines untagged data (`*`), continuations (`+`)
//! or tagged responses, paired with their command by tag (bounded: [`pending::MAX_PENDING`]).
//! STARTTLS follows the policy of `session::starttls`: TLS begins on the tagged `OK` to
//! `STARTTLS`; `NO` is a refusal, and so is `BAD`, except after the server advertised STARTTLS,
//! where it is a stripping indicator (`STARTTLS` takes no argument, so `BAD` can only mean
//! "unknown command").
//!
//! **Literals.** A line ending in `{n}`, `{n+}` (RFC 7888) or `~{n}` (RFC 3516) is followed by
//! n raw bytes, skipped by count without being looked at, then by the rest of the same command
//! or response. A client that announces a synchronizing `{n}` waits for `+`; if the server
//! answers the command with its tagged response instead, the literal is never sent and is no
//! longer expected. Client lines during `AUTHENTICATE` are SASL responses, not commands (a
//! line with a space in it is not base64, so it is read as a command again: this recovers a
//! lost tagged response).
//!
//! **Messages.** `cleartext_messages` counts untagged FETCH responses that carried message
//! content in a literal of at least one byte: `BODY[]`, `BODY[TEXT]`, `BODY[<part>]`,
//! `BINARY[...]`, `RFC822`, `RFC822.TEXT`. Header-only items (`BODY[HEADER...]`, `.MIME`,
//! `RFC822.HEADER`) are not messages. A response counts once, when the last byte of its first
//! content literal has passed (seen, or lost in a gap), so a capture cut inside a body does not
//! count it. APPEND uploads are skipped like any literal and not counted (DESIGN: FETCH bodies).
//! Each counted message gets its end-to-end protection class (`session::content`) from that
//! literal's bytes when it holds the whole message (`BODY[]`, the answer to `BODY.PEEK[]`,
//! `BINARY[]`, `RFC822`, from origin 0); a section (`BODY[TEXT]`, `BODY[1]`, `RFC822.TEXT`,
//! a partial from a later origin) lacks the top-level header and is `unknown`.
//!
//! **Gaps.** A gap that falls inside a literal whose remaining length is known is subtracted
//! from it; if it ends exactly at the literal's end the stream is still in step. Otherwise the
//! direction's line reader drops everything up to the next line end and the command or response
//! in progress is abandoned. Pending tags are kept: they pair by name, not by order. Every gap
//! is recorded as `DialogueGap`.
//!
//! **Limits.** Lines longer than 8192 octets (RFC 9051 §4, RFC 7162 §4) are cut and flagged; a
//! literal announced past the cut is lost, and the literal's bytes are then read as lines.

mod pending;
mod syntax;

use crate::flow::Direction;
use crate::session::anomaly::Anomaly;
use crate::session::capability::note_line;
use crate::session::capability::{is_masked, MechSet};
use crate::session::content::{ContentClass, ContentClassifier};
use crate::session::dialogue::{mechanism, Dialogue, Facts, Step};
use crate::session::line::{Line, LineReader, Raw};
use crate::session::starttls::{self, ClientTls, Reply, Starttls};
use pending::{Kind, Pending, TagId};
use syntax::{Command, Response, Status};

pub use pending::MAX_PENDING;

/// Longest line read whole, either direction (RFC 9051 §4 recommends 8192 octets).
pub const MAX_LINE: usize = 8192;

/// One IMAP connection's cleartext dialogue.
#[derive(Debug)]
pub struct Imap {
    client_lines: LineReader,
    server_lines: LineReader,
    st: State,
    /// A client chunk ended with 0x16 alone at a line start: the next byte may make it TLS.
    handshake_byte: bool,
}

impl Default for Imap {
    fn default() -> Self {
        Imap::new()
    }
}

impl Imap {
    pub fn new() -> Imap {
        Imap {
            client_lines: LineReader::new(MAX_LINE),
            server_lines: LineReader::new(MAX_LINE),
            st: State {
                phase: Phase::Greeting,
                pending: Pending::new(),
                client: ClientCursor::default(),
                server: ServerCursor::default(),
                preauth: false,
                login_disabled: false,
                sasl: MechSet::default(),
                starttls: Starttls::default(),
                client_opaque: false,
                message: None,
            },
            handshake_byte: false,
        }
    }

    /// The greeting was `* PREAUTH`: the session is authenticated without a login on the wire.
    pub fn preauth(&self) -> bool {
        self.st.preauth
    }

    /// The server advertised LOGINDISABLED (RFC 9051 §6.2.3): LOGIN is refused in clear.
    pub fn login_disabled(&self) -> bool {
        self.st.login_disabled
    }

    /// The `AUTH=` mechanisms the server advertised.
    pub fn sasl_offered(&self) -> MechSet {
        self.st.sasl
    }

    fn client_data(&mut self, data: &[u8], facts: &mut Facts) -> Step {
        let mut input = data;
        loop {
            if self.st.client_opaque {
                return Step::Continue;
            }
            if self.st.client.literal > 0 {
                self.client_lines
                    .skip_raw(&mut self.st.client.literal, &mut input);
                if self.st.client.literal > 0 {
                    return Step::Continue;
                }
            }
            if self.st.starttls.expects_client_tls() {
                starttls::resync_at_handshake(
                    &mut self.client_lines,
                    input,
                    &mut self.handshake_byte,
                );
            }
            if !self.st.client.cont {
                self.client_lines.resume_at(input, |l| {
                    syntax::command(l).is_some_and(|c| verb(c.name) != Verb::Other)
                });
            }
            // After a gap, the rest of the lost line is not a line start (nor TLS).
            self.client_lines.drop_lost_tail(&mut input);
            let held_byte = self.handshake_byte;
            let at_line_start = !self.client_lines.has_partial() && !self.st.client.cont;
            if starttls::tls_record_starts(input, at_line_start, &mut self.handshake_byte) {
                match self.st.starttls.client_tls(facts) {
                    ClientTls::Starts => {
                        self.st.phase = Phase::Tls;
                        return Step::ClientTls {
                            consumed: data.len() - input.len(),
                            held_byte,
                        };
                    }
                    ClientTls::Opaque => {
                        self.st.client_opaque = true;
                        return Step::Continue;
                    }
                }
            }
            let Some(line) = self.client_lines.next_line(&mut input) else {
                return Step::Continue;
            };
            self.st.client_line(line, facts);
        }
    }

    fn server_data(&mut self, data: &[u8], facts: &mut Facts) -> Step {
        let mut input = data;
        if !self.st.server.cont && self.st.server.literal == 0 {
            self.server_lines
                .resume_at(input, |l| syntax::response(l).is_some());
        }
        loop {
            if self.st.server.literal > 0 {
                let message = &mut self.st.message;
                self.server_lines
                    .skip_raw_seen(&mut self.st.server.literal, &mut input, |raw| {
                        content_seen(message, raw)
                    });
                if self.st.server.literal > 0 {
                    return Step::Continue;
                }
                self.st.server_literal_done(facts);
            }
            let Some(line) = self.server_lines.next_line(&mut input) else {
                return Step::Continue;
            };
            if self.st.server_line(line, facts) == Upgrade::Tls {
                return Step::StartTls {
                    consumed: data.len().saturating_sub(input.len()),
                };
            }
        }
    }
}

impl Dialogue for Imap {
    /// After the tagged OK to STARTTLS the analyzer is done: further calls are ignored.
    fn on_data(&mut self, dir: Direction, data: &[u8], facts: &mut Facts) -> Step {
        match (self.st.phase, dir) {
            (Phase::Tls, _) => Step::Continue,
            (_, Direction::ToServer) => self.client_data(data, facts),
            (_, Direction::ToClient) => self.server_data(data, facts),
        }
    }

    /// See the module doc: subtract from a known literal, else resync at the next line end.
    fn on_gap(&mut self, dir: Direction, len: u64, facts: &mut Facts) {
        if self.st.phase == Phase::Tls {
            return;
        }
        facts.anomaly(Anomaly::DialogueGap);
        match dir {
            Direction::ToServer => {
                self.handshake_byte = false;
                self.st.starttls.client_gap();
                if !absorb(&mut self.st.client.literal, len) {
                    self.client_lines.reset();
                    self.st.client = ClientCursor::default();
                }
            }
            Direction::ToClient => {
                let in_literal = self.st.server.literal > 0;
                if let Some(message) = self.st.message.as_mut() {
                    message.gap();
                }
                let in_step = absorb(&mut self.st.server.literal, len);
                if in_literal && self.st.server.literal == 0 {
                    self.st.server_literal_done(facts);
                }
                if !in_step {
                    self.server_lines.reset();
                    self.st.server = ServerCursor::default();
                    self.st.message = None;
                }
                if self.st.phase == Phase::Greeting {
                    self.st.phase = Phase::Ready;
                }
            }
        }
    }
}

/// Literal bytes of a message being classified.
fn content_seen(message: &mut Option<ContentClassifier>, raw: Raw<'_>) {
    if let Some(m) = message.as_mut().filter(|m| !m.decided()) {
        match raw {
            Raw::Bytes(bytes) => m.feed(bytes),
            Raw::Lost => m.gap(),
        }
    }
}

/// Take a gap of `len` bytes out of a literal's remaining length. True if the stream is still
/// in step: the gap fell inside the literal or ended exactly at its end.
fn absorb(literal: &mut u64, len: u64) -> bool {
    match literal.checked_sub(len) {
        Some(rest) if *literal > 0 => {
            *literal = rest;
            true
        }
        _ => {
            *literal = 0;
            false
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting for `* OK`, `* PREAUTH` or `* BYE`.
    Greeting,
    Ready,
    /// The tagged OK to STARTTLS was seen.
    Tls,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Upgrade {
    No,
    Tls,
}

/// Where the client stream is inside a command.
#[derive(Clone, Copy, Debug, Default)]
struct ClientCursor {
    /// Bytes of a literal still to skip.
    literal: u64,
    /// The next line continues the current command (it follows a literal).
    cont: bool,
    /// The current command's tag.
    tag: TagId,
    /// A synchronizing literal waits for the server's `+`.
    awaiting_go_ahead: bool,
}

/// Where the server stream is inside a response.
#[derive(Clone, Copy, Debug, Default)]
struct ServerCursor {
    /// Bytes of a literal still to skip.
    literal: u64,
    /// The next line continues the current response (it follows a literal).
    cont: bool,
    /// The current response is an untagged FETCH.
    fetch: bool,
    /// The literal being skipped is message content.
    body_literal: bool,
    /// The current FETCH response was counted.
    counted: bool,
}

#[derive(Debug)]
struct State {
    phase: Phase,
    pending: Pending,
    client: ClientCursor,
    server: ServerCursor,
    preauth: bool,
    login_disabled: bool,
    sasl: MechSet,
    starttls: Starttls,
    /// TLS bytes where a command should start, with no STARTTLS to explain them.
    client_opaque: bool,
    /// The message in the content literal being skipped, when it holds a whole message.
    message: Option<ContentClassifier>,
}

/// Client command names the analyzer acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verb {
    StartTls,
    Login,
    Authenticate,
    Idle,
    /// `XXXXXXXX`: STARTTLS overwritten by a middlebox.
    Masked,
    Other,
}

const VERBS: &[(&[u8], Verb)] = &[
    (b"STARTTLS", Verb::StartTls),
    (b"LOGIN", Verb::Login),
    (b"AUTHENTICATE", Verb::Authenticate),
    (b"IDLE", Verb::Idle),
];

fn verb(name: &[u8]) -> Verb {
    VERBS
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|&(_, v)| v)
        .unwrap_or(if is_masked(name, 8) {
            Verb::Masked
        } else {
            Verb::Other
        })
}

impl State {
    fn client_line(&mut self, line: Line<'_>, facts: &mut Facts) {
        if self.client.cont {
            note_line(&line, facts);
            self.client_literal(line.text);
            return;
        }
        note_line(&line, facts);
        if !line.text.contains(&b' ') && self.awaits_client_data(line.text) {
            return;
        }
        let Some(cmd) = syntax::command(line.text) else {
            facts.anomaly(Anomaly::ProtocolViolation);
            return;
        };
        facts.dialogue_seen = true;
        self.command(cmd, facts);
        self.client_literal(line.text);
    }

    /// Client lines that are not commands: SASL responses during AUTHENTICATE, DONE in IDLE.
    fn awaits_client_data(&self, text: &[u8]) -> bool {
        self.pending.any(Kind::Authenticate)
            || (self.pending.any(Kind::Idle) && text.eq_ignore_ascii_case(b"DONE"))
    }

    fn command(&mut self, cmd: Command<'_>, facts: &mut Facts) {
        if self.pending.any(Kind::StartTls) {
            facts.anomaly(Anomaly::PrematureCommand);
        }
        let kind = match verb(cmd.name) {
            Verb::StartTls => {
                self.starttls.command(facts);
                Kind::StartTls
            }
            Verb::Masked => {
                self.starttls.rewritten(facts);
                Kind::Other
            }
            Verb::Login => {
                facts.add_auth("LOGIN");
                Kind::Other
            }
            Verb::Authenticate => {
                self.authenticate(cmd.args, facts);
                Kind::Authenticate
            }
            Verb::Idle => Kind::Idle,
            Verb::Other => Kind::Other,
        };
        self.client.tag = TagId::of(cmd.tag);
        if !self.pending.push(self.client.tag, kind) {
            facts.anomaly(Anomaly::UnpairedReply);
        }
    }

    fn authenticate(&mut self, args: &[u8], facts: &mut Facts) {
        let (mech, _initial_response) = syntax::split_word(args);
        if mech.is_empty() {
            facts.anomaly(Anomaly::ProtocolViolation);
        } else {
            facts.add_auth(mechanism(mech));
        }
    }

    /// A literal at the end of a command line: skip its bytes, then read the command's rest.
    fn client_literal(&mut self, text: &[u8]) {
        match syntax::trailing_literal(text) {
            Some((lit, _)) => {
                self.client.literal = lit.len;
                self.client.cont = true;
                self.client.awaiting_go_ahead = !lit.non_sync && lit.len > 0;
            }
            None => {
                self.client.cont = false;
                self.client.awaiting_go_ahead = false;
            }
        }
    }

    fn server_line(&mut self, line: Line<'_>, facts: &mut Facts) -> Upgrade {
        note_line(&line, facts);
        if self.server.cont {
            self.server_literal(line.text);
            return Upgrade::No;
        }
        self.server = ServerCursor::default();
        let upgrade = match syntax::response(line.text) {
            Some(r) => {
                facts.dialogue_seen = true;
                self.response(r, facts)
            }
            None => {
                facts.anomaly(Anomaly::ProtocolViolation);
                Upgrade::No
            }
        };
        if upgrade == Upgrade::No {
            self.server_literal(line.text);
        }
        upgrade
    }

    /// One server response, by phase. The greeting is the first response; anything else
    /// first (a mid-stream pickup) is a violation, then read as usual.
    fn response(&mut self, r: Response<'_>, facts: &mut Facts) -> Upgrade {
        if self.phase == Phase::Greeting {
            self.phase = Phase::Ready;
            if let Response::Status { status, text } = r {
                self.greeting(status, text, facts);
                return Upgrade::No;
            }
            facts.anomaly(Anomaly::ProtocolViolation);
        }
        match r {
            Response::Status { text, .. } => self.code(text, facts),
            Response::Capability(list) => self.capabilities(list, facts),
            Response::Fetch => self.server.fetch = true,
            Response::Data => {}
            Response::Continuation => self.client.awaiting_go_ahead = false,
            Response::Tagged { tag, status, text } => {
                self.code(text, facts);
                return self.tagged(TagId::of(tag), status, facts);
            }
        }
        Upgrade::No
    }

    fn greeting(&mut self, status: Status, text: &[u8], facts: &mut Facts) {
        match status {
            Status::Ok | Status::Bye => {}
            Status::Preauth => self.preauth = true,
            Status::No | Status::Bad => facts.anomaly(Anomaly::ProtocolViolation),
        }
        self.code(text, facts);
    }

    /// A tagged response: pair it with its command (RFC 9051 §7.1).
    fn tagged(&mut self, tag: TagId, status: Status, facts: &mut Facts) -> Upgrade {
        if self.client.awaiting_go_ahead && self.client.literal > 0 && self.client.tag == tag {
            // The server refused the literal: the client will not send it.
            self.client = ClientCursor::default();
        }
        let Some(kind) = self.pending.take(tag) else {
            facts.anomaly(Anomaly::UnpairedReply);
            if status == Status::Ok {
                self.starttls.unpaired_positive();
            }
            return Upgrade::No;
        };
        let reply = match status {
            Status::Ok => Reply::Accepted,
            Status::Bad => Reply::Unknown,
            Status::No | Status::Bye | Status::Preauth => Reply::Refused,
        };
        match kind {
            Kind::StartTls if self.starttls.reply(reply, facts) => {
                self.phase = Phase::Tls;
                return Upgrade::Tls;
            }
            Kind::StartTls | Kind::Authenticate | Kind::Idle | Kind::Other => {}
        }
        Upgrade::No
    }

    /// A `[CAPABILITY ...]` response code in a status response's text.
    fn code(&mut self, text: &[u8], facts: &mut Facts) {
        if let Some(list) = syntax::code_capabilities(text) {
            self.capabilities(list, facts);
        }
    }

    fn capabilities(&mut self, list: &[u8], facts: &mut Facts) {
        for cap in list.split(|&b| b == b' ') {
            if cap.eq_ignore_ascii_case(b"STARTTLS") {
                self.starttls.offered(facts);
            } else if cap.eq_ignore_ascii_case(b"LOGINDISABLED") {
                self.login_disabled = true;
            } else if let Some(mech) = cap
                .get(..5)
                .filter(|p| p.eq_ignore_ascii_case(b"AUTH="))
                .and_then(|_| cap.get(5..))
            {
                self.sasl.insert(mech);
            } else if is_masked(cap, 8) {
                self.starttls.masked(facts);
            }
        }
    }

    /// A literal at the end of a response line: skip its bytes, then read the response's rest.
    fn server_literal(&mut self, text: &[u8]) {
        match syntax::trailing_literal(text) {
            Some((lit, before)) => {
                self.server.literal = lit.len;
                self.server.cont = true;
                self.server.body_literal =
                    self.server.fetch && lit.len > 0 && syntax::is_body_item(before);
                self.message = (self.server.body_literal
                    && !self.server.counted
                    && syntax::is_whole_message_item(before))
                .then(ContentClassifier::new);
            }
            None => self.server.cont = false,
        }
    }

    /// The last byte of a server literal has passed.
    fn server_literal_done(&mut self, facts: &mut Facts) {
        if self.server.body_literal && !self.server.counted {
            let class = self
                .message
                .take()
                .map_or(ContentClass::Unknown, ContentClassifier::finish);
            facts.count_message(class);
            self.server.counted = true;
        }
        self.server.body_literal = false;
    }
}

#[cfg(test)]
mod tests;
