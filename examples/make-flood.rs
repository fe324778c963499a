//! Write a flood capture: SYN-only connections and half-open handshakes (SYN, SYN-ACK, never
//! acknowledged) from distinct 10.0.0.0/8 clients to one mail server, optionally followed by a
//! real fixture session (its client port rewritten). For the one-off 1M-connection run:
//!
//!     cargo run --release --example make-flood -- /tmp/flood.pcap 1000000 100000 \
//!         fixtures/smtp-plaintext-no-starttls/capture.pcap
//!     /usr/bin/time -v target/release/mailtap replay --format json /tmp/flood.pcap

#[path = "../tests/common/pcapgen.rs"]
mod pcapgen;

use pcapgen::{flood_frames, read_pcap, rewrite_port, PcapWriter};
use std::io::BufWriter;
use std::net::SocketAddrV4;
use std::path::Path;

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: make-flood OUT.pcap SYNS HALF_OPEN [REAL.pcap]";
    let (Some(out), Some(syns), Some(half)) = (args.first(), args.get(1), args.get(2)) else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let parse = |s: &str| s.parse::<u32>().unwrap_or_else(|_| panic!("{usage}"));
    let server: SocketAddrV4 = "127.0.0.2:25".parse().expect("address");
    let start = 1_795_896_000_000_000u64;
    let mut w = PcapWriter::new(BufWriter::new(std::fs::File::create(out)?))?;
    let (syns, half) = (parse(syns), parse(half));
    // Ten thousand new connections a second.
    let span = u64::from(syns + half) * 100;
    let clients = std::net::Ipv4Addr::new(10, 0, 0, 0);
    for (ts, f) in flood_frames(server, clients, syns, half, start, span) {
        w.frame(ts, &f)?;
    }
    if let Some(real) = args.get(3) {
        let frames = read_pcap(Path::new(real))?;
        let base = frames.first().map_or(0, |f| f.0);
        for (ts, mut f) in frames {
            // The real client's port becomes 55555.
            let port = client_port(&f).unwrap_or(0);
            rewrite_port(&mut f, port, 55_555);
            w.frame(start + span + (ts - base), &f)?;
        }
    }
    Ok(())
}

/// The source port of the first frame's client: the side that is not a mail port.
fn client_port(frame: &[u8]) -> Option<u16> {
    let t = 14 + usize::from(frame.get(14)? & 0x0f) * 4;
    let sp = u16::from_be_bytes([*frame.get(t)?, *frame.get(t + 1)?]);
    let dp = u16::from_be_bytes([*frame.get(t + 2)?, *frame.get(t + 3)?]);
    Some(if [25, 587, 465, 143, 993, 110, 995].contains(&dp) {
        sp
    } else {
        dp
    })
}
