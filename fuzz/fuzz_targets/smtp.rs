//! Drives the SMTP dialogue (`mailtap::session::smtp::Smtp`) with both directions of a stream script
//! interleaved, gaps included, until it says TLS starts; as scripted and byte by byte, which
//! must agree (`mailtap_fuzz::dialogue`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailtap::session::smtp::Smtp;

fuzz_target!(|input: &[u8]| mailtap_fuzz::dialogue::check::<Smtp>(input));
