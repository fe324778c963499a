//! Outputs that fail while the sensor runs (a full disk, a removed directory, a closed pipe):
//! said on stderr at once, once when the failing starts and once when it ends, and counted in
//! `mailtap_output_errors_total{output}`. The sensor goes on analysing meanwhile.

use std::io;

/// A file output, as the `output` label names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// `--sessions`: one write per session record.
    Sessions,
    /// `--metrics-file`: one write per rewrite of the file.
    MetricsFile,
}

impl Output {
    pub const ALL: [Output; 2] = [Output::Sessions, Output::MetricsFile];

    pub fn label(self) -> &'static str {
        match self {
            Output::Sessions => "sessions",
            Output::MetricsFile => "metrics_file",
        }
    }
}

/// Turns the outcome of each write into the two stderr lines (failing, working again) and a
/// count of the writes lost.
#[derive(Debug)]
pub struct FailureWatch {
    /// How the messages name the output, e.g. `--sessions /var/log/mailtap/sessions.jsonl`.
    name: String,
    /// Writes lost since the current failure began (`None` while the output works).
    failing: Option<u64>,
    lost: u64,
}

impl FailureWatch {
    pub fn new(name: String) -> Self {
        FailureWatch {
            name,
            failing: None,
            lost: 0,
        }
    }

    /// The outcome of one write → a line for stderr (without the `mailtap: ` prefix) when
    /// the output starts failing or works again.
    pub fn outcome(&mut self, result: &io::Result<()>) -> Option<String> {
        match (result, &mut self.failing) {
            (Ok(()), None) => None,
            (Ok(()), Some(lost)) => {
                let lost = *lost;
                self.failing = None;
                Some(format!(
                    "{}: written again ({lost} {} lost while it failed)",
                    self.name,
                    writes(lost)
                ))
            }
            (Err(_), Some(lost)) => {
                *lost += 1;
                self.lost += 1;
                None
            }
            (Err(e), None) => {
                self.failing = Some(1);
                self.lost += 1;
                Some(format!(
                    "{}: cannot write: {e}; the sensor goes on, and what it cannot write is \
                     lost until this works again",
                    self.name
                ))
            }
        }
    }

    /// Writes lost since the start.
    pub fn lost(&self) -> u64 {
        self.lost
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

fn writes(n: u64) -> &'static str {
    if n == 1 {
        "write"
    } else {
        "writes"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> io::Result<()> {
        Err(io::Error::new(io::ErrorKind::StorageFull, "no space"))
    }

    #[test]
    fn says_so_once_when_failing_starts_and_once_when_it_ends() {
        let mut w = FailureWatch::new("--sessions x".into());
        assert_eq!(w.outcome(&Ok(())), None);
        let start = w.outcome(&full()).expect("the first failure is said");
        assert!(
            start.starts_with("--sessions x: cannot write: no space"),
            "{start}"
        );
        assert_eq!(w.outcome(&full()), None);
        assert_eq!(w.outcome(&full()), None);
        assert_eq!(
            w.outcome(&Ok(())).as_deref(),
            Some("--sessions x: written again (3 writes lost while it failed)")
        );
        assert_eq!(w.outcome(&Ok(())), None);
        w.outcome(&full());
        assert_eq!(
            w.outcome(&Ok(())).as_deref(),
            Some("--sessions x: written again (1 write lost while it failed)")
        );
        assert_eq!(w.lost(), 4);
    }
}
