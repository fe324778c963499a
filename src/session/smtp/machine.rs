//! The SMTP state machine: what each client line means in the current client mode, and what
//! each final reply means for the command it answers. Lines arrive already cut by the
//! direction's `LineReader`; this file never sees raw bytes, and keeps none of what it reads.

use super::command::{self, Cmd, Command};
use super::pending::Pending;
use super::reply::{self, Capabilities, Capability};
use crate::session::anomaly::Anomaly;
use crate::session::content::{ContentClass, ContentClassifier};
use crate::session::dialogue::Facts;
use crate::session::starttls::{ClientTls, Reply, Starttls};

/// How the next client bytes are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Client {
    /// Command lines.
    Commands,
    /// SASL responses after AUTH (RFC 4954 §4): not commands, never parsed, never kept.
    Sasl,
    /// A DATA body, line by line until `.` alone (RFC 5321 §4.1.1.4). `confirmed` once the
    /// 354 arrived; lines before it were sent without waiting (RFC 2920 §3.1).
    Body { confirmed: bool },
    /// A BDAT chunk: this many raw bytes, not lines (RFC 3030 §2); the message's last when
    /// `last`.
    Chunk { remaining: u64, last: bool },
    /// TLS bytes where cleartext was expected: nothing more to read in clear.
    Opaque,
}

/// A multi-line reply being read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Progress {
    code: u16,
    /// Lines of this reply seen before the current one.
    lines: u32,
}

#[derive(Debug)]
pub struct Machine {
    pub client: Client,
    pending: Pending,
    reply: Option<Progress>,
    pub caps: Capabilities,
    /// The first reply (greeting, or whatever a mid-stream pickup first saw) is behind us.
    greeted: bool,
    /// What STARTTLS has come to (the policy shared with IMAP and POP3).
    starttls: Starttls,
    /// A gap broke the pairing of replies with commands; unpaired replies are expected.
    desync: bool,
    /// A gap hit a DATA body: its `.` may have been lost.
    body_gap: bool,
    /// The 220 to STARTTLS was read: everything after is TLS.
    pub tls: bool,
    /// The message being sent (a DATA body, or BDAT chunks so far), classified as it passes.
    message: Option<ContentClassifier>,
}

impl Default for Machine {
    fn default() -> Self {
        Machine {
            client: Client::Commands,
            pending: Pending::default(),
            reply: None,
            caps: Capabilities::default(),
            greeted: false,
            starttls: Starttls::default(),
            desync: false,
            body_gap: false,
            tls: false,
            message: None,
        }
    }
}

impl Machine {
    // --- client lines ---

    /// One client line, read according to the client mode; `cut` when the line reader cut it
    /// at its limit.
    pub fn on_client_line(&mut self, text: &[u8], cut: bool, facts: &mut Facts) {
        match self.client {
            Client::Commands => self.on_command(command::parse(text), facts),
            Client::Body { confirmed } => self.on_body_line(text, cut, confirmed, facts),
            // A SASL response: a credential. Not parsed, not kept.
            Client::Sasl => {}
            Client::Chunk { .. } | Client::Opaque => {}
        }
    }

    fn on_command(&mut self, command: Command, facts: &mut Facts) {
        if command.is_recognised() {
            facts.dialogue_seen = true;
        }
        if self.pending.contains(Cmd::StartTls) {
            // RFC 3207 §4: nothing may follow STARTTLS before its reply (CVE-2011-0411).
            facts.anomaly(Anomaly::PrematureCommand);
        }
        let cmd = match command {
            Command::Ehlo => Cmd::Ehlo,
            Command::Helo => Cmd::Helo,
            Command::StartTls => {
                self.starttls.command(facts);
                Cmd::StartTls
            }
            Command::StartTlsMasked => {
                self.starttls.rewritten(facts);
                Cmd::Other
            }
            Command::Auth {
                mechanism,
                initial_response,
            } => self.on_auth(mechanism, initial_response, facts),
            Command::Data => {
                self.client = Client::Body { confirmed: false };
                self.message = Some(ContentClassifier::new());
                Cmd::Data
            }
            Command::NewTransaction => {
                self.message = None;
                Cmd::Other
            }
            Command::Bdat {
                size: Some(remaining),
                last,
            } => {
                self.client = Client::Chunk { remaining, last };
                self.message.get_or_insert_with(ContentClassifier::new);
                // Queued once its bytes have passed (`chunk_done`).
                return;
            }
            Command::Bdat { size: None, .. } | Command::Malformed => {
                facts.anomaly(Anomaly::ProtocolViolation);
                Cmd::Other
            }
            Command::Known | Command::Unknown => Cmd::Other,
        };
        self.push(cmd, facts);
    }

    fn on_auth(
        &mut self,
        mechanism: Option<&'static str>,
        initial_response: bool,
        facts: &mut Facts,
    ) -> Cmd {
        if let Some(name) = mechanism {
            facts.add_auth(name);
            if !initial_response {
                self.client = Client::Sasl;
            }
        }
        Cmd::Auth
    }

    fn on_body_line(&mut self, text: &[u8], cut: bool, confirmed: bool, facts: &mut Facts) {
        // With the server never heard (a one-sided capture), no 354 can be seen: the body is
        // not premature, and once complete its content has crossed the wire in clear.
        let server_unheard = !self.greeted;
        if !confirmed && !server_unheard {
            facts.anomaly(Anomaly::PrematureCommand);
        }
        if text == b"." {
            self.client = Client::Commands;
            let class = self.message_class();
            if server_unheard {
                facts.count_message(class);
                self.push(Cmd::Other, facts);
            } else {
                self.push(Cmd::DataEnd { class }, facts);
            }
            return;
        }
        if let Some(message) = self.message.as_mut().filter(|m| !m.decided()) {
            // RFC 5321 §4.5.2: a line starting with `.` had one more put in front.
            message.feed(text.strip_prefix(b".").unwrap_or(text));
            if cut {
                message.cut_line();
            }
            message.feed(b"\r\n");
        }
    }

    /// The class of the message just ended (`unknown` when its start was not seen).
    fn message_class(&mut self) -> ContentClass {
        self.message
            .take()
            .map_or(ContentClass::Unknown, ContentClassifier::finish)
    }

    /// Bytes of a BDAT chunk (RFC 3030: not dot-stuffed).
    pub fn on_chunk_bytes(&mut self, bytes: &[u8]) {
        if let Some(message) = self.message.as_mut().filter(|m| !m.decided()) {
            message.feed(bytes);
        }
    }

    /// Bytes of a BDAT chunk were lost.
    pub fn chunk_gap(&mut self) {
        if let Some(message) = self.message.as_mut() {
            message.gap();
        }
    }

    /// The last byte of a BDAT chunk has passed (seen, or lost in a gap).
    pub fn chunk_done(&mut self, last: bool, facts: &mut Facts) {
        self.client = Client::Commands;
        if !last {
            return self.push(Cmd::Bdat, facts);
        }
        let class = self.message_class();
        if self.greeted {
            self.push(Cmd::BdatLast { class }, facts);
        } else {
            // One-sided capture: the last chunk crossed in clear; no reply to see.
            facts.count_message(class);
            self.push(Cmd::Bdat, facts);
        }
    }

    fn push(&mut self, cmd: Cmd, facts: &mut Facts) {
        if !self.pending.push(cmd) {
            // More kinds of command in flight than a client waiting for replies can have.
            facts.anomaly(Anomaly::ProtocolViolation);
        }
    }

    /// The STARTTLS policy would take a client handshake as TLS starting.
    pub fn expects_client_tls(&self) -> bool {
        self.client == Client::Commands && self.starttls.expects_client_tls()
    }

    /// TLS record bytes at the start of a client command line: TLS began (its `220` lost),
    /// or the client side is opaque from here.
    pub fn on_client_tls(&mut self, facts: &mut Facts) -> ClientTls {
        let what = self.starttls.client_tls(facts);
        match what {
            ClientTls::Starts => self.tls = true,
            ClientTls::Opaque => self.client = Client::Opaque,
        }
        what
    }

    // --- server lines ---

    /// One server line: a reply line, maybe the last of its reply.
    pub fn on_reply_line(&mut self, text: &[u8], facts: &mut Facts) {
        let Some(line) = reply::parse(text) else {
            facts.anomaly(Anomaly::ProtocolViolation);
            return;
        };
        facts.dialogue_seen = true;
        let progress = match self.reply {
            Some(p) => {
                if p.code != line.code {
                    facts.anomaly(Anomaly::ProtocolViolation);
                }
                Progress {
                    code: p.code,
                    lines: p.lines.saturating_add(1),
                }
            }
            None => Progress {
                code: line.code,
                lines: 0,
            },
        };
        if self.pending.front() == Some(Cmd::Ehlo) && progress.code == 250 {
            self.on_ehlo_line(line.text, progress.lines, facts);
        }
        if line.last {
            self.reply = None;
            self.on_reply(progress.code, facts);
        } else {
            self.reply = Some(progress);
        }
    }

    /// A line of a 250 reply to EHLO; the first names the server, the others are capabilities.
    fn on_ehlo_line(&mut self, text: &[u8], index: u32, facts: &mut Facts) {
        if index == 0 {
            self.caps = Capabilities::default();
            return;
        }
        match self.caps.add_line(text) {
            Capability::StartTls => self.starttls.offered(facts),
            Capability::Masked => self.starttls.masked(facts),
            _ => {}
        }
    }

    /// A complete reply: pair it with the oldest pending command.
    fn on_reply(&mut self, code: u16, facts: &mut Facts) {
        let first = !std::mem::replace(&mut self.greeted, true);
        let front = self.pending.front();
        // The greeting (RFC 5321 §4.3.2). A 220 answers nothing else but STARTTLS, so commands
        // pending then did not wait for it; 421 and 554 also answer commands (a mid-stream
        // pickup's first reply), so they greet only when nothing is pending.
        let greeting = match front {
            None => matches!(code, 220 | 421 | 554),
            Some(cmd) => code == 220 && cmd != Cmd::StartTls,
        };
        if first && greeting {
            if front.is_some() {
                facts.anomaly(Anomaly::PrematureCommand);
            }
            return;
        }
        let Some(cmd) = front else {
            return self.unpaired(code, facts);
        };
        // An AUTH challenge (334) leaves the AUTH pending: its final reply is still to come.
        if !(cmd == Cmd::Auth && code / 100 == 3) {
            self.pending.pop();
        }
        self.paired(cmd, code, facts);
    }

    /// What a reply means for the command it answers.
    fn paired(&mut self, cmd: Cmd, code: u16, facts: &mut Facts) {
        match (cmd, code / 100) {
            (Cmd::StartTls, _) if code == 220 => {
                self.tls = self.starttls.reply(Reply::Accepted, facts)
            }
            (Cmd::StartTls, 4 | 5) => {
                let reply = if matches!(code, 500 | 502) {
                    Reply::Unknown
                } else {
                    Reply::Refused
                };
                self.starttls.reply(reply, facts);
            }
            (Cmd::StartTls, _) => facts.anomaly(Anomaly::ProtocolViolation),
            (Cmd::Auth, 3) => self.client = Client::Sasl,
            (Cmd::Auth, _) => self.sasl_over(),
            (Cmd::Data, 3) => self.client = Client::Body { confirmed: true },
            (Cmd::Data, _) => {
                if self.client == (Client::Body { confirmed: false }) {
                    self.client = Client::Commands;
                }
            }
            (Cmd::DataEnd { class } | Cmd::BdatLast { class }, 2) => facts.count_message(class),
            (Cmd::DataEnd { .. } | Cmd::Bdat | Cmd::BdatLast { .. }, _) => {}
            (Cmd::Helo | Cmd::Ehlo | Cmd::Other, _) => {}
        }
    }

    /// A reply with no pending command: explainable by the client mode or a gap, else odd.
    fn unpaired(&mut self, code: u16, facts: &mut Facts) {
        if code == 220 {
            // After the greeting a 220 answers only STARTTLS: perhaps one a gap hid.
            self.starttls.unpaired_positive();
        }
        match self.client {
            // DATA was lost in a gap; its 354 was not.
            Client::Body { .. } if code == 354 => self.client = Client::Body { confirmed: true },
            Client::Body { .. } => {
                // The server spoke during a body: its `.` was lost in a gap (or the server
                // gave up, 421). Either way the body is over.
                self.client = Client::Commands;
                if std::mem::take(&mut self.body_gap) {
                    // Where the client's next line starts is unknown too.
                    self.lose_pairing(facts);
                }
                let class = self.message_class();
                self.paired(Cmd::DataEnd { class }, code, facts);
            }
            Client::Sasl if code / 100 != 3 => self.sasl_over(),
            Client::Sasl | Client::Opaque => {}
            Client::Commands | Client::Chunk { .. } if self.desync => {}
            Client::Commands | Client::Chunk { .. } => facts.anomaly(Anomaly::UnpairedReply),
        }
    }

    fn sasl_over(&mut self) {
        if self.client == Client::Sasl {
            self.client = Client::Commands;
        }
    }

    // --- gaps ---

    /// Bytes lost from the client. Returns true when the line reader must resync.
    pub fn client_gap(&mut self, len: u64, facts: &mut Facts) -> bool {
        self.starttls.client_gap();
        match &mut self.client {
            Client::Chunk { remaining, last } if len <= *remaining => {
                *remaining -= len;
                let (done, last) = (*remaining == 0, *last);
                if let Some(message) = self.message.as_mut() {
                    message.gap();
                }
                if done {
                    self.chunk_done(last, facts);
                }
                false
            }
            Client::Body { .. } => {
                self.body_gap = true;
                if let Some(message) = self.message.as_mut() {
                    message.gap();
                }
                true
            }
            Client::Opaque => false,
            Client::Chunk { .. } | Client::Commands | Client::Sasl => {
                if matches!(self.client, Client::Chunk { .. }) {
                    // The chunk's end and the commands after it were lost.
                    self.client = Client::Commands;
                    self.message = None;
                }
                self.lose_pairing(facts);
                true
            }
        }
    }

    /// Bytes lost from the server: the reply being read and an unknown number of later ones.
    pub fn server_gap(&mut self, facts: &mut Facts) {
        self.reply = None;
        self.greeted = true;
        if self.client == (Client::Body { confirmed: false }) {
            self.client = Client::Body { confirmed: true };
        }
        self.lose_pairing(facts);
    }

    fn lose_pairing(&mut self, facts: &mut Facts) {
        self.pending.clear();
        self.desync = true;
        facts.anomaly(Anomaly::DialogueGap);
    }
}
