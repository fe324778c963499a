//! The SMTP cleartext dialogue (RFC 5321), up to STARTTLS (RFC 3207).
//!
//! [`Smtp`] reads client commands and server replies line by line through one bounded
//! [`LineReader`] per direction, and writes what it learns into [`Facts`]: STARTTLS offered,
//! attempted, refused or stripped; AUTH mechanisms used in clear (RFC 4954); messages whose
//! content crossed in clear (DATA, BDAT of RFC 3030). It keeps no mail text: no address, no
//! body, no credential; an AUTH mechanism becomes a closed-set label at once.
//!
//! # Pipelining (RFC 2920)
//! Each client command is queued until its reply: replies come in command order, so the
//! oldest pending command is the one a final reply line answers. The queue is a ring of
//! [`PENDING_MAX`] runs of equal commands (a hundred pipelined `RCPT`s are one run); when a
//! client has more kinds in flight than that, the oldest run is dropped and
//! `ProtocolViolation` is recorded. A `334` keeps `AUTH` pending; `354` opens the DATA body,
//! whose closing `.` is queued in turn, so its reply says whether the message was accepted.
//! TLS starts only on the `220` paired with `STARTTLS`: [`Step::StartTls`] then counts the
//! bytes of the chunk up to and including that line's LF.
//!
//! # Content protection
//! Each message counted gets its end-to-end protection class (`session::content`): DATA body
//! lines are fed un-dot-stuffed (RFC 5321 §4.5.2), BDAT chunks as they are, across chunks up
//! to `LAST`; `MAIL` and `RSET` drop a message begun. The class travels with the command
//! that ends the message (`.`, `BDAT … LAST`), so the reply that accepts it counts it. A BDAT
//! chunk is queued once its bytes have passed. A gap before the class is known makes it
//! `unknown`; so does a body whose start was not seen (a mid-stream pickup inside DATA).
//!
//! # Gaps
//! - In a DATA body: the client reader resyncs at the next line end and the body goes on;
//!   if the `.` was lost too, the next server reply ends the body (and is its reply).
//! - In a BDAT chunk: the gap counts against the chunk; past the chunk's end, as below.
//! - In client commands or SASL lines, or anywhere in the server replies: the reader of that
//!   direction resyncs at the next line end, the pending queue is emptied (which reply
//!   answers which command is no longer known), `DialogueGap` is recorded, and replies
//!   without a command are expected from then on (no `UnpairedReply`). Commands seen after
//!   the gap are paired again; pairing may stay off by the replies the gap hid.
//!
//! # One-sided captures
//! When the server was never heard (only the client's direction was on the wire), no reply
//! can confirm anything: body lines are not taken as premature, and a body completed with
//! `.` (or a `BDAT … LAST` chunk) counts as a message in clear, since its content crossed the
//! wire whatever the server would have answered.
//!
//! # Other oddities
//! Bare LF (`BareLf`), over-long lines (`LineTooLong`, cut at [`LINE_MAX`]; not for SASL
//! lines, which RFC 4954 §4 allows up to 12288 octets), a first reply that answers nothing
//! (a mid-stream pickup: `UnpairedReply`), text that is neither a command nor a reply
//! (`ProtocolViolation`): each is recorded once and reading goes on. A TLS record where a
//! command should start makes the client side opaque (`TlsAfterRefusedStarttls` after a
//! refused STARTTLS, else `ProtocolViolation`).

mod command;
mod machine;
mod pending;
mod reply;
#[cfg(test)]
mod tests;

pub use pending::PENDING_MAX;
pub use reply::{AuthMechanisms, Capabilities};

use std::fmt;

use crate::flow::Direction;
use crate::session::anomaly::Anomaly;
use crate::session::dialogue::{Dialogue, Facts, Step};
use crate::session::line::{Line, LineReader, Raw};
use crate::session::starttls::{self, ClientTls};
use machine::{Client, Machine};

/// The longest line kept, either way. RFC 5321 §4.5.3.1 allows 512 for commands and replies,
/// 1000 for text lines; real traffic exceeds both, so this is generous yet bounded.
pub const LINE_MAX: usize = 2048;

/// An SMTP connection's cleartext phase. See the module docs for gaps and pipelining.
pub struct Smtp {
    /// Client to server.
    up: LineReader,
    /// Server to client.
    down: LineReader,
    machine: Machine,
    /// A client chunk ended with 0x16 alone at a line start: the next byte may make it TLS.
    handshake_byte: bool,
}

/// The line readers may hold part of a line (a body, a credential): never printed.
impl fmt::Debug for Smtp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Smtp")
            .field("machine", &self.machine)
            .finish_non_exhaustive()
    }
}

impl Default for Smtp {
    fn default() -> Self {
        Self::new()
    }
}

impl Smtp {
    pub fn new() -> Self {
        Smtp {
            up: LineReader::new(LINE_MAX),
            down: LineReader::new(LINE_MAX),
            machine: Machine::default(),
            handshake_byte: false,
        }
    }

    /// What the last EHLO reply advertised (empty before one, or after HELO).
    pub fn capabilities(&self) -> Capabilities {
        self.machine.caps
    }

    fn on_client(&mut self, data: &[u8], facts: &mut Facts) -> Step {
        let mut input = data;
        loop {
            match &mut self.machine.client {
                Client::Opaque => return Step::Continue,
                &mut Client::Chunk { remaining, last } => {
                    let machine = &mut self.machine;
                    let mut rest = remaining;
                    self.up
                        .skip_raw_seen(&mut rest, &mut input, |raw| match raw {
                            Raw::Bytes(b) => machine.on_chunk_bytes(b),
                            Raw::Lost => machine.chunk_gap(),
                        });
                    if rest > 0 {
                        self.machine.client = Client::Chunk {
                            remaining: rest,
                            last,
                        };
                        return Step::Continue;
                    }
                    self.machine.chunk_done(last, facts);
                }
                Client::Commands | Client::Sasl | Client::Body { .. } => {}
            }
            if self.machine.expects_client_tls() {
                starttls::resync_at_handshake(&mut self.up, input, &mut self.handshake_byte);
            }
            if self.machine.client == Client::Commands {
                self.up
                    .resume_at(input, |l| command::parse(l).is_recognised());
            }
            self.up.drop_lost_tail(&mut input);
            let held_byte = self.handshake_byte;
            if self.machine.client == Client::Commands && self.tls_record_starts(input) {
                if self.machine.on_client_tls(facts) == ClientTls::Starts {
                    return Step::ClientTls {
                        consumed: data.len() - input.len(),
                        held_byte,
                    };
                }
                return Step::Continue;
            }
            let Some(line) = self.up.next_line(&mut input) else {
                return Step::Continue;
            };
            let sasl = self.machine.client == Client::Sasl;
            line_anomalies(line, !sasl, facts);
            self.machine.on_client_line(line.text, line.too_long, facts);
        }
    }

    fn on_server(&mut self, data: &[u8], facts: &mut Facts) -> Step {
        let mut input = data;
        self.down.resume_at(input, |l| reply::parse(l).is_some());
        while let Some(line) = self.down.next_line(&mut input) {
            line_anomalies(line, true, facts);
            self.machine.on_reply_line(line.text, facts);
            if self.machine.tls {
                let consumed = data.len() - input.len();
                return Step::StartTls { consumed };
            }
        }
        Step::Continue
    }

    /// At the start of a client command line, does a TLS handshake record begin (content type
    /// 22, version major 3)? Sees the two header bytes even when the first ends one chunk and the second starts the next.
    fn tls_record_starts(&mut self, input: &[u8]) -> bool {
        let at_line_start = !self.up.has_partial();
        starttls::tls_record_starts(input, at_line_start, &mut self.handshake_byte)
    }
}

fn line_anomalies(line: Line<'_>, length_limited: bool, facts: &mut Facts) {
    if line.bare_lf {
        facts.anomaly(Anomaly::BareLf);
    }
    if line.too_long && length_limited {
        facts.anomaly(Anomaly::LineTooLong);
    }
}

impl Dialogue for Smtp {
    fn on_data(&mut self, dir: Direction, data: &[u8], facts: &mut Facts) -> Step {
        if self.machine.tls {
            return Step::Continue;
        }
        match dir {
            Direction::ToServer => self.on_client(data, facts),
            Direction::ToClient => self.on_server(data, facts),
        }
    }

    fn on_gap(&mut self, dir: Direction, len: u64, facts: &mut Facts) {
        if self.machine.tls {
            return;
        }
        match dir {
            Direction::ToServer => {
                self.handshake_byte = false;
                if self.machine.client_gap(len, facts) {
                    self.up.reset();
                }
            }
            Direction::ToClient => {
                self.down.reset();
                self.machine.server_gap(facts);
            }
        }
    }
}
