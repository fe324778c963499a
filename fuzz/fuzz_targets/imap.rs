//! Drives the IMAP dialogue (`mailtap::session::imap::Imap`) with both directions of a stream script
//! interleaved, gaps included, until it says TLS starts; as scripted and byte by byte, which
//! must agree (`mailtap_fuzz::dialogue`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailtap::session::imap::Imap;

fuzz_target!(|input: &[u8]| mailtap_fuzz::dialogue::check::<Imap>(input));
