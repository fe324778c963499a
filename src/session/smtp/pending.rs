//! The commands awaiting a reply, oldest first (RFC 2920 §3.1: replies come in command order).
//!
//! A fixed ring of runs: consecutive equal commands share one slot with a count, so a
//! pipelined group of a hundred `RCPT`s takes one slot, and only a dialogue that alternates
//! more than [`PENDING_MAX`] kinds of command without a reply can fill it. When full, the
//! oldest run is dropped (its replies will pair with what follows) and the caller is told.

use super::command::Cmd;

/// Runs of commands kept awaiting replies.
pub const PENDING_MAX: usize = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Run {
    cmd: Cmd,
    count: u32,
}

const EMPTY: Run = Run {
    cmd: Cmd::Other,
    count: 0,
};

#[derive(Debug)]
pub struct Pending {
    runs: [Run; PENDING_MAX],
    head: usize,
    len: usize,
}

impl Default for Pending {
    fn default() -> Self {
        Pending {
            runs: [EMPTY; PENDING_MAX],
            head: 0,
            len: 0,
        }
    }
}

impl Pending {
    /// Queue `cmd`. False when the oldest run had to be dropped to make room.
    pub fn push(&mut self, cmd: Cmd) -> bool {
        if let Some(back) = self.len.checked_sub(1).and_then(|i| self.slot_mut(i)) {
            if back.cmd == cmd && back.count < u32::MAX {
                back.count += 1;
                return true;
            }
        }
        let room = self.len < PENDING_MAX;
        if !room {
            self.drop_front_run();
        }
        let len = self.len;
        if let Some(slot) = self.slot_mut(len) {
            *slot = Run { cmd, count: 1 };
            self.len += 1;
        }
        room
    }

    /// The oldest command awaiting its reply.
    pub fn front(&self) -> Option<Cmd> {
        (self.len > 0)
            .then(|| self.runs.get(self.head).map(|r| r.cmd))
            .flatten()
    }

    /// Remove the oldest command.
    pub fn pop(&mut self) -> Option<Cmd> {
        if self.len == 0 {
            return None;
        }
        let front = self.slot_mut(0)?;
        let cmd = front.cmd;
        front.count = front.count.saturating_sub(1);
        if front.count == 0 {
            self.drop_front_run();
        }
        Some(cmd)
    }

    pub fn contains(&self, cmd: Cmd) -> bool {
        (0..self.len).any(|i| self.runs.get(self.index(i)).is_some_and(|r| r.cmd == cmd))
    }

    pub fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
    }

    fn drop_front_run(&mut self) {
        if self.len > 0 {
            self.head = self.index(1);
            self.len -= 1;
        }
    }

    fn index(&self, i: usize) -> usize {
        (self.head + i) % PENDING_MAX
    }

    /// The `i`th run from the front, for `i` up to `len` (the free slot after the back).
    fn slot_mut(&mut self, i: usize) -> Option<&mut Run> {
        if i > self.len || i >= PENDING_MAX {
            return None;
        }
        let index = self.index(i);
        self.runs.get_mut(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_with_runs() {
        let mut q = Pending::default();
        for cmd in [Cmd::Other, Cmd::Other, Cmd::Data, Cmd::Other] {
            assert!(q.push(cmd));
        }
        let got: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(got, [Cmd::Other, Cmd::Other, Cmd::Data, Cmd::Other]);
        assert_eq!((q.len, q.front()), (0, None));
    }

    #[test]
    fn a_thousand_recipients_take_one_slot() {
        let mut q = Pending::default();
        assert!(q.push(Cmd::Other));
        for _ in 0..1000 {
            assert!(q.push(Cmd::Ehlo));
        }
        assert!(q.push(Cmd::Data));
        assert_eq!(q.len, 3);
        assert!(q.contains(Cmd::Data) && !q.contains(Cmd::Auth));
    }

    #[test]
    fn full_ring_drops_the_oldest_run() {
        let mut q = Pending::default();
        let alternate = |i: usize| if i % 2 == 0 { Cmd::Other } else { Cmd::Data };
        for i in 0..PENDING_MAX {
            assert!(q.push(alternate(i)));
        }
        assert!(!q.push(Cmd::StartTls));
        assert_eq!(q.len, PENDING_MAX);
        assert_eq!(q.front(), Some(Cmd::Data));
        for _ in 0..PENDING_MAX - 1 {
            q.pop();
        }
        assert_eq!(q.pop(), Some(Cmd::StartTls));
        assert_eq!(q.pop(), None);
    }
}
