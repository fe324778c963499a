//! The session log: one [`SessionRecord`] per line, as JSON (`--sessions FILE|-`).

use crate::record::SessionRecord;
use std::io::{self, Write};

pub struct SessionLog {
    out: Box<dyn Write + Send>,
}

impl SessionLog {
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        SessionLog { out }
    }

    pub fn write(&mut self, record: &SessionRecord) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, record)?;
        self.out.write_all(b"\n")
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
