//! The session log: one [`SessionRecord`] per line, as JSON (`--sessions FILE|-`).

use crate::anonymize::Anonymizer;
use crate::record::SessionRecord;
use std::io::{self, Write};

pub struct SessionLog {
    out: Box<dyn Write + Send>,
    /// With `--anonymize`: client addresses are written as their pseudonyms.
    anonymizer: Option<Anonymizer>,
}

impl SessionLog {
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        SessionLog {
            out,
            anonymizer: None,
        }
    }

    /// Write client addresses as keyed pseudonyms (see [`crate::anonymize`]).
    pub fn anonymized(mut self, anonymizer: Option<Anonymizer>) -> Self {
        self.anonymizer = anonymizer;
        self
    }

    pub fn write(&mut self, record: &SessionRecord) -> io::Result<()> {
        match &self.anonymizer {
            Some(an) => {
                let mut r = record.clone();
                r.client = an.socket(r.client);
                serde_json::to_writer(&mut self.out, &r)?;
            }
            None => serde_json::to_writer(&mut self.out, record)?,
        }
        self.out.write_all(b"\n")
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::test_records::plaintext_smtp;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| io::ErrorKind::Other)?
                .extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn anonymized_log_carries_the_pseudonym_not_the_client() {
        let buf = Shared::default();
        let an = Anonymizer::new("k");
        let r = plaintext_smtp();
        let mut log = SessionLog::new(Box::new(buf.clone())).anonymized(Some(an.clone()));
        log.write(&r).unwrap();
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert!(!text.contains(&r.client.ip().to_string()), "{text}");
        assert!(text.contains(&an.socket(r.client).to_string()), "{text}");
        assert!(
            text.contains(&r.server.to_string()),
            "the server stays: {text}"
        );
    }
}
