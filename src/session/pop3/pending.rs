//! Commands waiting for their reply, in order (RFC 1939 §3; RFC 2449 §6.6 PIPELINING).
//!
//! Replies carry no tag: the next reply answers the oldest command. Runs of the same kind are
//! kept as one entry with a count, so a client pipelining a thousand DELEs or RETRs costs one
//! slot; at most [`MAX_RUNS`] runs are kept.

/// At most this many runs of commands wait for replies.
pub const MAX_RUNS: usize = 64;

/// What the analyzer must remember about a command until its reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmd {
    /// Answered by one status line.
    Single,
    /// `+OK` is followed by lines up to `.`: LIST, UIDL without argument, AUTH without one.
    Listing,
    /// `+OK` is followed by capability lines up to `.`.
    Capa,
    /// `+OK` is followed by message lines up to `.`; `counts`: message text, not only headers.
    Message {
        counts: bool,
    },
    Stls,
    /// Until its reply, client lines are SASL responses (RFC 5034 §4).
    Auth,
}

#[derive(Debug)]
pub struct Pending {
    /// Oldest first, each with how many commands of that kind in a row; allocated once.
    runs: std::collections::VecDeque<(Cmd, u32)>,
}

impl Pending {
    pub fn new() -> Pending {
        Pending {
            runs: std::collections::VecDeque::with_capacity(MAX_RUNS),
        }
    }

    /// Queue a command. `false` if the queue is full: the command is not remembered, and its
    /// reply will pair with a later command.
    pub fn push(&mut self, cmd: Cmd) -> bool {
        if let Some((last, n)) = self.runs.back_mut() {
            if *last == cmd && *n < u32::MAX {
                *n += 1;
                return true;
            }
        }
        if self.runs.len() >= MAX_RUNS {
            return false;
        }
        self.runs.push_back((cmd, 1));
        true
    }

    /// The oldest command, removed.
    pub fn pop(&mut self) -> Option<Cmd> {
        let (cmd, n) = self.runs.front_mut()?;
        let cmd = *cmd;
        *n = n.saturating_sub(1);
        if *n == 0 {
            self.runs.pop_front();
        }
        Some(cmd)
    }

    pub fn front(&self) -> Option<Cmd> {
        self.runs.front().map(|&(c, _)| c)
    }

    pub fn any(&self, cmd: Cmd) -> bool {
        self.runs.iter().any(|&(c, _)| c == cmd)
    }

    pub fn clear(&mut self) {
        self.runs.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_pair_in_order_and_runs_share_a_slot() {
        let mut p = Pending::new();
        for _ in 0..1000 {
            assert!(p.push(Cmd::Single));
        }
        assert!(p.push(Cmd::Message { counts: true }));
        assert!(p.push(Cmd::Single));
        assert_eq!(p.runs.len(), 3);
        for _ in 0..1000 {
            assert_eq!(p.pop(), Some(Cmd::Single));
        }
        assert_eq!(p.front(), Some(Cmd::Message { counts: true }));
        assert_eq!(p.pop(), Some(Cmd::Message { counts: true }));
        assert_eq!(p.pop(), Some(Cmd::Single));
        assert_eq!(p.pop(), None);
    }

    #[test]
    fn full_queue_refuses_new_runs() {
        let mut p = Pending::new();
        for i in 0..MAX_RUNS {
            let cmd = if i % 2 == 0 { Cmd::Single } else { Cmd::Capa };
            assert!(p.push(cmd));
        }
        assert!(!p.push(Cmd::Stls));
        assert!(!p.any(Cmd::Stls));
        assert_eq!(p.runs.len(), MAX_RUNS);
    }
}
