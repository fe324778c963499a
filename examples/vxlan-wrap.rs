//! Wrap every frame of a classic pcap of Ethernet frames in VXLAN, as cloud traffic
//! mirroring delivers it: outer Ethernet, IPv4 192.0.2.1 → 192.0.2.2, UDP to 4789, VXLAN with
//! VNI 42, then the frame. `benches/compare.sh` measures mailtap on both copies of a corpus.
//!
//! ```sh
//! cargo run --release --example vxlan-wrap -- corpus.pcap corpus-vxlan.pcap
//! ```

use pcap_parser::{create_reader, PcapBlockOwned, PcapError};
use std::fs::File;
use std::io::{BufWriter, Write};

/// Outer Ethernet, IPv4, UDP and VXLAN headers.
const OUTER: usize = 14 + 20 + 8 + 8;

fn outer(inner_len: usize) -> [u8; OUTER] {
    let mut h = [0u8; OUTER];
    h[12..14].copy_from_slice(&[0x08, 0x00]);
    let ip_len = (20 + 8 + 8 + inner_len).min(usize::from(u16::MAX)) as u16;
    let ip = &mut h[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&ip_len.to_be_bytes());
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&[192, 0, 2, 1]);
    ip[16..20].copy_from_slice(&[192, 0, 2, 2]);
    let mut sum: u32 = ip
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    ip[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    let udp = &mut h[34..42];
    udp[0..2].copy_from_slice(&49152u16.to_be_bytes());
    udp[2..4].copy_from_slice(&4789u16.to_be_bytes());
    udp[4..6].copy_from_slice(&(ip_len - 20).to_be_bytes());
    // VXLAN: the I flag, VNI 42.
    h[42] = 0x08;
    h[46..49].copy_from_slice(&[0, 0, 42]);
    h
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(input), Some(output)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: vxlan-wrap IN.pcap OUT.pcap");
        std::process::exit(2);
    };
    let fail = |what: &str, e: &dyn std::fmt::Debug| -> ! {
        eprintln!("vxlan-wrap: {what}: {e:?}");
        std::process::exit(1);
    };
    let file = File::open(input).unwrap_or_else(|e| fail(input, &e));
    let mut reader = create_reader(1 << 17, file).unwrap_or_else(|e| fail(input, &e));
    let out = File::create(output).unwrap_or_else(|e| fail(output, &e));
    let mut out = BufWriter::new(out);
    let mut put = |b: &[u8]| {
        if let Err(e) = out.write_all(b) {
            fail(output, &e)
        }
    };
    // Classic pcap, microseconds, Ethernet.
    put(&0xa1b2_c3d4u32.to_le_bytes());
    put(&[2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    put(&262_144u32.to_le_bytes());
    put(&1u32.to_le_bytes());
    let mut frames = 0u64;
    loop {
        match reader.next() {
            Ok((len, block)) => {
                match block {
                    PcapBlockOwned::LegacyHeader(h) if h.network.0 != 1 => {
                        fail(input, &"not a capture of Ethernet frames")
                    }
                    PcapBlockOwned::Legacy(b) => {
                        let caplen = b.data.len() + OUTER;
                        let origlen = b.origlen as usize + OUTER;
                        for v in [b.ts_sec, b.ts_usec, caplen as u32, origlen as u32] {
                            put(&v.to_le_bytes());
                        }
                        put(&outer(b.origlen as usize));
                        put(b.data);
                        frames += 1;
                    }
                    PcapBlockOwned::NG(_) => fail(input, &"pcapng: give a classic pcap"),
                    _ => {}
                }
                reader.consume(len);
            }
            Err(PcapError::Eof) => break,
            Err(PcapError::Incomplete(_)) => {
                reader.refill().unwrap_or_else(|e| fail(input, &e));
            }
            Err(e) => fail(input, &e),
        }
    }
    if let Err(e) = out.flush() {
        fail(output, &e)
    }
    eprintln!("vxlan-wrap: {frames} frames wrapped");
}
