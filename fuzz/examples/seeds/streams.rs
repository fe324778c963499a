//! Each connection's reassembled streams, recorded through mailtap's own flow table, as the
//! stream scripts of the dialogue, session and TLS targets.

use mailtap::config::{Family, Limits, Protocol};
use mailtap::decode::Segment;
use mailtap::flow::table::{ClosedFlow, FlowTable};
use mailtap::flow::{Direction, FlowHandler, Interest, StreamEvent};
use mailtap::session::anomaly::Anomaly;
use mailtap::source::Timestamp;
use mailtap_fuzz::script::{self, Event};

pub struct Recorder {
    table: FlowTable<Flow>,
    closed: Vec<Flow>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            table: FlowTable::new(Limits::default()),
            closed: Vec::new(),
        }
    }
}

impl Recorder {
    pub fn segment(&mut self, ts: Timestamp, seg: &Segment<'_>) {
        let closed = &mut self.closed;
        let make = |info: &mailtap::flow::table::FlowInfo| Flow::new(info.protocol);
        self.table
            .process(ts, seg, make, &mut |c: ClosedFlow<Flow>| {
                closed.push(c.handler)
            });
    }

    /// Every connection, once the capture has ended.
    pub fn finish(mut self) -> Vec<Flow> {
        let closed = &mut self.closed;
        self.table
            .flush(&mut |c: ClosedFlow<Flow>| closed.push(c.handler));
        self.closed
    }
}

/// One connection's stream events, in delivery order.
pub struct Flow {
    protocol: Protocol,
    midstream: bool,
    events: Vec<(Direction, Owned)>,
}

enum Owned {
    Data(Vec<u8>),
    Gap(u64),
    Eof,
}

impl FlowHandler for Flow {
    fn on_stream(&mut self, dir: Direction, event: StreamEvent<'_>, _ts: Timestamp) -> Interest {
        let owned = match event {
            StreamEvent::Data(d) => Owned::Data(d.to_vec()),
            StreamEvent::Gap(n) => Owned::Gap(n),
            StreamEvent::Eof => Owned::Eof,
        };
        self.events.push((dir, owned));
        Interest::More
    }

    fn on_anomaly(&mut self, anomaly: Anomaly) {
        self.midstream |= anomaly == Anomaly::MidstreamPickup;
    }
}

impl Flow {
    fn new(protocol: Protocol) -> Self {
        Flow {
            protocol,
            midstream: false,
            events: Vec::new(),
        }
    }

    /// The stream-script seeds of this connection, by target.
    pub fn seeds(&self) -> Vec<(&'static str, Vec<u8>)> {
        let whole = self.script(0);
        let mut seeds = Vec::new();
        if !self.protocol.implicit_tls() {
            let family = match self.protocol.family() {
                Family::Smtp => "smtp",
                Family::Imap => "imap",
                Family::Pop3 => "pop3",
            };
            seeds.push((family, whole.clone()));
        }
        let index = Protocol::ALL.iter().position(|p| *p == self.protocol);
        if let Some(i) = index.and_then(|i| u8::try_from(i).ok()) {
            let selector = i | if self.midstream { 0x80 } else { 0 };
            seeds.push(("session", [&[selector], whole.as_slice()].concat()));
        }
        if let Some(start) = self.tls_start() {
            seeds.push(("tls", self.script(start)));
        }
        seeds
    }

    /// The `cert` seed: the chain the server sent in clear, for the fixtures' name and time.
    pub fn chain_seed(&self) -> Option<Vec<u8>> {
        let start = self.tls_start()?;
        let server: Vec<u8> = self.events[start..]
            .iter()
            .filter_map(|(dir, e)| match e {
                Owned::Data(d) if *dir == Direction::ToClient => Some(d.as_slice()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .concat();
        let chain = super::certs::chain(&server)?;
        let mut seed = vec![1, 0];
        for cert in chain {
            let len = u16::try_from(cert.len()).ok()?;
            seed.extend_from_slice(&len.to_le_bytes());
            seed.extend_from_slice(&cert);
        }
        Some(seed)
    }

    /// The event where the client's first TLS record begins (implicit TLS or after STARTTLS).
    fn tls_start(&self) -> Option<usize> {
        self.events.iter().position(|(dir, e)| {
            *dir == Direction::ToServer
                && matches!(e, Owned::Data(d) if d.starts_with(&[0x16, 0x03]))
        })
    }

    fn script(&self, from: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for (dir, e) in self.events.iter().skip(from) {
            let event = match e {
                Owned::Data(d) => Event::Data(*dir, d),
                Owned::Gap(n) => Event::Gap(*dir, *n),
                Owned::Eof => Event::Eof(*dir),
            };
            script::push(&mut out, event);
        }
        out
    }
}
