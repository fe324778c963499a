//! Drives the content protection classifier (`mailtap::session::content`) with one message:
//! the input's first byte sets a piece size, the rest is the message.
//!
//! Checks what the module documents: the class does not depend on how the message is cut into
//! `feed` calls (whole, in pieces, byte by byte), and a gap before the class is decided makes
//! it `unknown`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailtap::session::content::{ContentClass, ContentClassifier};

fn classify(message: &[u8], piece: usize) -> ContentClass {
    let mut c = ContentClassifier::new();
    for part in message.chunks(piece.max(1)) {
        c.feed(part);
    }
    c.finish()
}

fuzz_target!(|input: &[u8]| {
    let Some((&piece, message)) = input.split_first() else {
        return;
    };
    let whole = classify(message, usize::MAX);
    assert_eq!(whole, classify(message, usize::from(piece)), "in pieces");
    assert_eq!(whole, classify(message, 1), "byte by byte");

    let (head, tail) = message.split_at(message.len() / 2);
    let mut c = ContentClassifier::new();
    c.feed(head);
    let decided = c.decided();
    c.gap();
    c.feed(tail);
    let class = c.finish();
    if !decided {
        assert_eq!(
            class,
            ContentClass::Unknown,
            "a gap before the class is known"
        );
    }
});
