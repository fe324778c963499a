//! The analysis stage alone, on 1, 2, ... threads: how mailtap's workers scale when nothing
//! else competes for the cores.
//!
//! `mailtap replay` has its workers read, decode and analyse, each its share (README
//! "Performance"); this measures the analysis on its own, the largest share and the one whose
//! scaling depends on how evenly connections spread over the workers: the capture is read
//! into memory and decoded once, untimed, each segment going to its
//! worker by the engine's own symmetric hash ([`lane_of`]); then N threads, each a [`Worker`]
//! with the mail session as handler (flow table, reassembly, SMTP/IMAP/POP3, TLS, certificate
//! checks, the record of every connection), process their share at once, timed from the start
//! of the first to the end of the last.
//!
//! ```sh
//! cargo run --release --example worker-scaling -- all-mail.pcap 1 2
//! ```
//!
//! Prints, per worker count: wall seconds, mail packets/s, and the speed-up over one worker.
//! Non-mail packets are left out (they cost reading and decoding, not the analysis).

use mailtap::config::{Limits, PortMap};
use mailtap::decode::{decode, Segment};
use mailtap::engine::{lane_of, Worker};
use mailtap::session::cert::TlsContext;
use mailtap::session::Session;
use mailtap::source::file::{CaptureFile, Input};
use mailtap::source::{Linktype, Packet, Timestamp};
use std::sync::Arc;
use std::time::Instant;

struct Frame {
    ts: Timestamp,
    link: Linktype,
    data: Vec<u8>,
    wire_len: u32,
}

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: worker-scaling FILE [WORKERS...]");
        std::process::exit(2);
    };
    let counts: Vec<usize> = args.filter_map(|a| a.parse().ok()).collect();
    let counts = if counts.is_empty() {
        vec![1, 2]
    } else {
        counts
    };

    let mut frames = Vec::new();
    let mut file = CaptureFile::open(&Input::Path(path.clone().into())).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1);
    });
    let read = file.for_each(&mut |p, _| {
        frames.push(Frame {
            ts: p.ts,
            link: p.link,
            data: p.data.to_vec(),
            wire_len: p.wire_len,
        })
    });
    if let Err(e) = read {
        eprintln!("{e}");
        std::process::exit(1);
    }
    let ports = PortMap::default();
    let tls = Arc::new(TlsContext::new(&[]).expect("Mozilla's roots load"));
    println!("{path}: {} frames; {} cores", frames.len(), cores());
    println!("| workers | seconds | mail packets/s | speed-up | records |");
    println!("|---|---|---|---|---|");
    let mut one = None;
    for &n in &counts {
        let mut lanes: Vec<Vec<(Timestamp, Segment<'_>)>> = (0..n).map(|_| Vec::new()).collect();
        for f in &frames {
            let p = Packet {
                ts: f.ts,
                link: f.link,
                data: &f.data,
                wire_len: f.wire_len,
            };
            if let Ok(seg) = decode(&p, &ports) {
                lanes[lane_of(&seg, n)].push((f.ts, seg));
            }
        }
        let packets: usize = lanes.iter().map(Vec::len).sum();
        let limits = Limits::default().per_worker(n);
        let start = Instant::now();
        let records: usize = std::thread::scope(|s| {
            let handles: Vec<_> = lanes
                .iter()
                .map(|lane| {
                    let (tls, limits) = (Arc::clone(&tls), limits.clone());
                    s.spawn(move || {
                        let mut worker = Worker::new(limits);
                        let mut records = 0usize;
                        let mut done = |c: mailtap::flow::table::ClosedFlow<Session>| {
                            records += usize::from(c.handler.into_record(&c.info).is_some());
                        };
                        for (ts, seg) in lane {
                            let make = |info: &mailtap::flow::table::FlowInfo| {
                                Session::new(info.protocol, Arc::clone(&tls))
                            };
                            worker.segment(*ts, seg, make, &mut done);
                        }
                        worker.finish(&mut done);
                        records
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a worker thread"))
                .sum()
        });
        let secs = start.elapsed().as_secs_f64();
        let base = *one.get_or_insert(secs);
        println!(
            "| {n} | {secs:.3} | {:.2} M | {:.2}× | {records} |",
            packets as f64 / secs / 1e6,
            base / secs
        );
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
