//! A cleartext dialogue (SMTP, IMAP, POP3) driven by a stream script (`script`), the way the
//! session drives it: data and gaps of both directions interleaved, until TLS starts.
//!
//! The script runs twice, as scripted and byte by byte: reassembly may cut a stream anywhere,
//! so what the analyzer concludes must not depend on where (the unit tests' harness,
//! `session::dialogue::script`, asserts the same of every scripted dialogue).

use crate::script::{self, Event};
use mailtap::flow::Direction;
use mailtap::session::dialogue::{mechanism_labels, Dialogue, Facts, Step};

/// What a run concluded: its facts, and where in which stream TLS began.
#[derive(Debug, PartialEq, Eq)]
struct Conclusion {
    facts: Facts,
    tls_at: Option<(Direction, u64)>,
}

pub fn check<D: Dialogue + Default>(input: &[u8]) {
    let events = script::events(input);
    let scripted = run::<D>(&events, usize::MAX);
    let bytewise = run::<D>(&events, 1);
    assert_eq!(
        scripted, bytewise,
        "the verdict depends on how the stream was cut"
    );

    let auth = &scripted.facts.cleartext_auth;
    for (i, m) in auth.iter().enumerate() {
        assert!(mechanism_labels().any(|l| l == *m), "{m} is a known label");
        assert!(!auth[..i].contains(m), "{m} is recorded once");
    }
}

/// Feed `events` in pieces of at most `piece` bytes; stop where TLS starts.
fn run<D: Dialogue + Default>(events: &[Event<'_>], piece: usize) -> Conclusion {
    let mut dialogue = D::default();
    let mut facts = Facts::default();
    let mut at = [0u64; 2];
    for event in events {
        match *event {
            Event::Data(dir, data) => {
                // Reassembly never delivers an empty chunk.
                for part in data.chunks(piece) {
                    let pos = &mut at[dir.index()];
                    match dialogue.on_data(dir, part, &mut facts) {
                        Step::Continue => *pos += part.len() as u64,
                        Step::StartTls { consumed } => {
                            assert!(consumed <= part.len(), "consumed {consumed} of a chunk");
                            let tls_at = Some((dir, *pos + consumed as u64));
                            return Conclusion { facts, tls_at };
                        }
                        Step::ClientTls {
                            consumed,
                            held_byte,
                        } => {
                            assert!(consumed <= part.len(), "consumed {consumed} of a chunk");
                            // A held 0x16 ended the chunk before: TLS began one byte earlier.
                            let start =
                                (*pos + consumed as u64).saturating_sub(u64::from(held_byte));
                            let tls_at = Some((dir, start));
                            return Conclusion { facts, tls_at };
                        }
                    }
                }
            }
            Event::Gap(dir, len) => {
                dialogue.on_gap(dir, len, &mut facts);
                at[dir.index()] += len;
            }
            // The trait has no end of stream: the session just stops feeding that direction.
            Event::Eof(_) => {}
        }
    }
    Conclusion {
        facts,
        tls_at: None,
    }
}

/// Inputs the fuzz targets once crashed on (`fuzz/regressions/<target>/`), checked again on
/// every `cargo test`.
#[cfg(test)]
mod regressions {
    use mailtap::session::dialogue::Dialogue;
    use mailtap::session::{imap::Imap, pop3::Pop3, smtp::Smtp};
    use std::path::Path;

    fn each<D: Dialogue + Default>(target: &str) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("regressions")
            .join(target);
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).expect("the regressions directory") {
            let path = entry.expect("an entry").path();
            let input = std::fs::read(&path).expect("a regression input");
            eprintln!("{}", path.display());
            super::check::<D>(&input);
            n += 1;
        }
        assert!(n > 0, "{}: no inputs", dir.display());
    }

    #[test]
    fn smtp() {
        each::<Smtp>("smtp");
    }

    #[test]
    fn imap() {
        each::<Imap>("imap");
    }

    #[test]
    fn pop3() {
        each::<Pop3>("pop3");
    }
}
