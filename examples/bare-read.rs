//! The floor for any capture reader: open a classic pcap or pcapng file with pcap-parser,
//! touch every packet's bytes (sum them, so nothing is optimised away), and print
//! `packets captured_bytes wire_bytes checksum`. `benches/compare.sh` divides every tool's
//! time by this one's.
//!
//! ```sh
//! cargo run --release --example bare-read -- corpus.pcap
//! ```

use pcap_parser::{create_reader, PcapBlockOwned, PcapError};
use std::fs::File;

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: bare-read FILE");
        std::process::exit(2);
    };
    let file = File::open(&path).unwrap_or_else(|e| {
        eprintln!("{path}: {e}");
        std::process::exit(1);
    });
    // mailtap's read buffer size (src/source/file.rs).
    let mut reader = create_reader(1 << 17, file).unwrap_or_else(|e| {
        eprintln!("{path}: not a capture: {e:?}");
        std::process::exit(1);
    });
    let (mut packets, mut captured, mut wire, mut sum) = (0u64, 0u64, 0u64, 0u64);
    let mut touch = |data: &[u8], origlen: u32| {
        packets += 1;
        captured += data.len() as u64;
        wire += u64::from(origlen);
        // Read every byte, eight at a time.
        let mut chunks = data.chunks_exact(8);
        for c in &mut chunks {
            sum = sum.wrapping_add(u64::from_le_bytes(c.try_into().unwrap_or_default()));
        }
        for &b in chunks.remainder() {
            sum = sum.wrapping_add(u64::from(b));
        }
    };
    loop {
        match reader.next() {
            Ok((len, block)) => {
                match block {
                    PcapBlockOwned::Legacy(b) => touch(b.data, b.origlen),
                    PcapBlockOwned::NG(pcap_parser::Block::EnhancedPacket(b)) => {
                        touch(b.data, b.origlen)
                    }
                    PcapBlockOwned::NG(pcap_parser::Block::SimplePacket(b)) => {
                        touch(b.data, b.origlen)
                    }
                    _ => {}
                }
                // Not `consume`: it moves the unread half of the buffer each time half is
                // read. `refill` moves only the partial block at the end (mailtap does the
                // same), so this stays the floor.
                reader.consume_noshift(len);
            }
            Err(PcapError::Eof) => break,
            Err(PcapError::Incomplete(_)) => {
                if reader.refill().is_err() {
                    eprintln!("{path}: read error");
                    std::process::exit(1);
                }
            }
            Err(e) => {
                eprintln!("{path}: {e:?} after {packets} packets");
                std::process::exit(1);
            }
        }
    }
    println!("{packets} {captured} {wire} {sum:016x}");
}
