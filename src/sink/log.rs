//! The session log: one [`SessionRecord`] per line (`--sessions FILE|-`), as JSON or, with
//! `--sessions-format csv`, as CSV under a header line ([`crate::sink::session_csv`]).
//!
//! Each record is serialised whole into a buffer and then written in one piece: to a file
//! through [`AppendFile`] (appended, never truncated, whole lines only, reopened on SIGHUP),
//! or to a stream (stdout) and flushed, so `tail -f` and log shippers see each record as its
//! session closes, and nothing is left in a buffer when the process is killed. A CSV file
//! gets its header line whenever it is empty: new, or new after logrotate moved it away.

use crate::anonymize::Anonymizer;
use crate::record::SessionRecord;
use crate::sink::append::AppendFile;
use crate::sink::session_csv;
use std::io::{self, Write};
use std::sync::Arc;

/// How each session is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// JSON lines (the record's contract, `docs/session-record.schema.json`).
    #[default]
    Json,
    /// CSV: a header line, then a line per session.
    Csv,
}

enum Target {
    File(Arc<AppendFile>),
    Stream(Box<dyn Write + Send>),
}

pub struct SessionLog {
    target: Target,
    /// One record and its newline, reused from record to record.
    line: Vec<u8>,
    /// With `--anonymize`: client addresses are written as their pseudonyms.
    anonymizer: Option<Anonymizer>,
    format: LogFormat,
    /// CSV on a stream: the header line went out before the first session.
    header_written: bool,
}

impl SessionLog {
    /// A log written to a stream (stdout), each record flushed as it is written.
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        Self::with_target(Target::Stream(out))
    }

    /// A log appended to a file; the same file is handed to SIGHUP to be reopened.
    pub fn file(file: Arc<AppendFile>) -> Self {
        Self::with_target(Target::File(file))
    }

    fn with_target(target: Target) -> Self {
        SessionLog {
            target,
            line: Vec::with_capacity(4096),
            anonymizer: None,
            format: LogFormat::Json,
            header_written: false,
        }
    }

    /// Write sessions as `format`.
    pub fn formatted(mut self, format: LogFormat) -> Self {
        self.format = format;
        self
    }

    /// Write client addresses as keyed pseudonyms (see [`crate::anonymize`]).
    pub fn anonymized(mut self, anonymizer: Option<Anonymizer>) -> Self {
        self.anonymizer = anonymizer;
        self
    }

    /// The file behind the log, if it is one.
    pub fn append_file(&self) -> Option<&Arc<AppendFile>> {
        match &self.target {
            Target::File(f) => Some(f),
            Target::Stream(_) => None,
        }
    }

    /// Write one record as one line; on an error nothing of it is in the file.
    pub fn write(&mut self, record: &SessionRecord) -> io::Result<()> {
        self.line.clear();
        match &self.anonymizer {
            Some(an) => {
                let mut r = record.clone();
                r.client = an.socket(r.client);
                encode(self.format, &r, &mut self.line)?;
            }
            None => encode(self.format, record, &mut self.line)?,
        }
        match (&mut self.target, self.format) {
            (Target::File(f), LogFormat::Json) => f.write_line(&self.line),
            (Target::File(f), LogFormat::Csv) => {
                let mut header = Vec::new();
                session_csv::write_header(&mut header)?;
                f.write_line_headed(&header, &self.line)
            }
            (Target::Stream(out), format) => {
                if format == LogFormat::Csv && !self.header_written {
                    session_csv::write_header(out)?;
                    self.header_written = true;
                }
                out.write_all(&self.line)?;
                out.flush()
            }
        }
    }
}

/// One record as one line, newline included.
fn encode(format: LogFormat, record: &SessionRecord, line: &mut Vec<u8>) -> io::Result<()> {
    match format {
        LogFormat::Json => {
            serde_json::to_writer(&mut *line, record)?;
            line.push(b'\n');
            Ok(())
        }
        LogFormat::Csv => session_csv::write_record(line, record),
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

    #[test]
    fn csv_log_has_one_header_and_pseudonyms_too() {
        let buf = Shared::default();
        let an = Anonymizer::new("k");
        let r = plaintext_smtp();
        let mut log = SessionLog::new(Box::new(buf.clone()))
            .anonymized(Some(an.clone()))
            .formatted(LogFormat::Csv);
        log.write(&r).unwrap();
        log.write(&r).unwrap();
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 3, "{text}");
        assert_eq!(text.matches("ts_start").count(), 1);
        assert!(!text.contains(&r.client.ip().to_string()), "{text}");
        assert!(text.contains(&an.socket(r.client).to_string()), "{text}");
    }
}
