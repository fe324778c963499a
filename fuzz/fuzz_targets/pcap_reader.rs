//! Drives `mailtap::source::file::CaptureFile` over the input as a pcap or pcapng file, read
//! from memory (`CaptureFile::from_reader`) to its end or its first bad block.
//!
//! Checks what the reader documents: offsets handed out only grow and stay within the file, and
//! a packet's wire length is at least what was captured.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailtap::source::file::CaptureFile;
use std::io::Cursor;

fuzz_target!(|input: &[u8]| {
    let size = input.len() as u64;
    let Ok(mut file) = CaptureFile::from_reader("fuzz".into(), Cursor::new(input.to_vec())) else {
        return;
    };
    let mut last = 0u64;
    let _ = file.for_each(&mut |packet, offset| {
        assert!(
            last <= offset && offset <= size,
            "offset {offset} after {last} of {size}"
        );
        last = offset;
        assert!(packet.data.len() <= packet.wire_len as usize);
    });
});
