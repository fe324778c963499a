//! Cross-direction order, rebuilt from acknowledgment numbers.
//!
//! A span port merges the two directions of a connection from different queues, so a reply
//! can be captured a few frames before the command it answers, and an ACK before the data it
//! acknowledges. The acknowledgment number of every segment says what its sender had received
//! when it sent it, and so what the segment may answer. As Suricata does in IDS mode, the flow
//! table uses it to deliver both directions to the session in an order that does not depend on
//! how the capture interleaved them:
//!
//! - **Barriers.** A segment whose acknowledgment number lies beyond what the other direction
//!   has delivered is held (with every later byte of its direction) until the other direction
//!   has delivered up to that number: a reply waits for its command.
//! - **Acknowledged but unseen.** Bytes the peer acknowledged but the capture has not shown are
//!   not declared lost at once: they may still arrive, a few frames later.
//! - **Tentative start.** A direction first seen at a data segment may see its SYN, or an
//!   earlier segment, a few frames later: nothing of it is delivered until a SYN fixes where
//!   the stream starts, or the wait ends.
//! - **A RST ahead of the data** it follows is applied once the stream reaches it.
//!
//! All of this waits only for a bounded time: [`WAIT_PACKETS`] packets of the connection
//! without progress (a wait starts over when what it waited for came and something else is
//! missing), or
//! until the reassembly caps (bytes held) are reached, or until the flow ends. The bound is in
//! packets, not in time: a displaced frame keeps its own timestamp, so in a slow dialogue (a
//! DHE computation, a server's pause before its reply) the frame a wait needs may carry a time
//! seconds away from the frame that started it, and still be only a few frames later.
//! Then what is still missing is declared a gap, a base taken from data stays, and the
//! connection counts as picked up mid-stream. In a capture whose frames come in order (and in
//! every loopback capture) no segment ever waits, this state is never allocated, and each
//! segment costs one comparison more.

use super::seq::SeqNumber;
use super::Direction;

/// Packets of the connection a wait lasts: a frame displaced within a window of 8 frames of
/// the capture is at most 7 frames later, and twice that when a capture already reordered is
/// reordered again (a tap behind a span port). Each waiting connection holds at most this many
/// of its packets' payload back (on the all-mail corpus, 16 rather than 32 halved the peak
/// memory the waits add).
pub const WAIT_PACKETS: u64 = 16;
/// Barriers kept per direction; a segment that would add one more is let through unordered.
const MAX_BARRIERS: usize = 64;

/// Bytes of one direction from `at` on wait until the other direction has delivered up to
/// `need` (both are sequence numbers, so a base that moves leaves them valid).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Barrier {
    pub at: SeqNumber,
    pub need: SeqNumber,
}

/// What a connection waits for; allocated only while something waits.
#[derive(Debug, Default)]
pub struct Order {
    /// By [`Direction::index`]: held back until the other direction delivered enough, oldest
    /// first (both numbers grow along the list).
    pub barriers: [Vec<Barrier>; 2],
    /// By [`Direction::index`]: the highest acknowledgment the peer sent for this direction.
    pub acked: [Option<SeqNumber>; 2],
    /// A RST in this direction at this sequence number, waiting for the stream to reach it.
    pub reset: Option<(Direction, SeqNumber)>,
    /// When the current wait began: packets of the connection then.
    pub since: Option<u64>,
}

impl Order {
    /// Hold `dir`'s bytes from `at` until the other direction delivered up to `need`. The
    /// list stays sorted by `at` (segments of one direction may come out of order too), and
    /// keeps only barriers that hold back more than the ones before them.
    pub fn add_barrier(&mut self, dir: Direction, at: SeqNumber, need: SeqNumber) {
        let Some(list) = self.barriers.get_mut(dir.index()) else {
            return;
        };
        let i = list.partition_point(|b| !at.is_before(b.at));
        // Bytes behind an earlier barrier that needs as much already wait for it.
        if list
            .get(..i)
            .is_some_and(|before| before.iter().any(|b| !need.is_after(b.need)))
        {
            return;
        }
        // Later barriers that need no more than this one are met by the time it is.
        let mut j = i;
        while list.get(j).is_some_and(|b| !b.need.is_after(need)) {
            j += 1;
        }
        list.drain(i..j);
        if list.len() < MAX_BARRIERS {
            list.insert(i, Barrier { at, need });
        }
    }

    /// Note the peer's acknowledgment of `dir`'s bytes.
    pub fn ack(&mut self, dir: Direction, ack: SeqNumber) {
        if let Some(a) = self.acked.get_mut(dir.index()) {
            if a.is_none_or(|old| ack.is_after(old)) {
                *a = Some(ack);
            }
        }
    }

    /// The first barrier of `dir`, if any.
    pub fn first_barrier(&self, dir: Direction) -> Option<Barrier> {
        self.barriers.get(dir.index())?.first().copied()
    }

    pub fn pop_barrier(&mut self, dir: Direction) {
        if let Some(list) = self.barriers.get_mut(dir.index()) {
            if !list.is_empty() {
                list.remove(0);
            }
        }
    }

    /// The wait began now, at `packets` packets of the connection, unless it is already running.
    pub fn start_waiting(&mut self, packets: u64) {
        self.since.get_or_insert(packets);
    }

    /// The wait has lasted long enough at `packets` packets of the connection.
    pub fn waited(&self, packets: u64) -> bool {
        self.since
            .is_some_and(|p| packets.saturating_sub(p) >= WAIT_PACKETS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Limits, Protocol};
    use crate::decode::{Segment, TcpFlags};
    use crate::flow::table::FlowTable;
    use crate::flow::{FlowHandler, Interest, StreamEvent};
    use crate::session::anomaly::Anomaly;
    use crate::source::Timestamp;
    use proptest::prelude::*;

    #[test]
    fn a_wait_lasts_its_packets() {
        let mut o = Order::default();
        assert!(!o.waited(1000), "nothing waits yet");
        o.start_waiting(10);
        o.start_waiting(12);
        assert!(!o.waited(10 + WAIT_PACKETS - 1));
        assert!(o.waited(10 + WAIT_PACKETS));
    }

    /// One turn as heard: data (length and a checksum, adjacent data of one direction
    /// merged) or a gap.
    #[derive(Clone, Debug, PartialEq, Eq)]
    enum Turn {
        Data(usize, u64),
        Gap(u64),
    }

    /// What a connection's handler heard: turns, ends, and anomalies.
    #[derive(Default)]
    struct Heard {
        events: Vec<(Direction, Turn)>,
        eofs: u32,
        anomalies: Vec<Anomaly>,
    }

    impl FlowHandler for Heard {
        fn on_stream(&mut self, dir: Direction, event: StreamEvent<'_>, _: Timestamp) -> Interest {
            match event {
                StreamEvent::Data(b) => {
                    let sum = |acc: u64| {
                        b.iter()
                            .fold(acc, |a, &x| a.wrapping_mul(31) ^ u64::from(x))
                    };
                    match self.events.last_mut() {
                        Some((d, Turn::Data(n, h))) if *d == dir => {
                            *n += b.len();
                            *h = sum(*h);
                        }
                        _ => self.events.push((dir, Turn::Data(b.len(), sum(0)))),
                    }
                }
                StreamEvent::Gap(n) => self.events.push((dir, Turn::Gap(n))),
                StreamEvent::Eof => self.eofs += 1,
            }
            Interest::More
        }

        fn on_anomaly(&mut self, anomaly: Anomaly) {
            self.anomalies.push(anomaly);
        }
    }

    const CLIENT: &str = "192.0.2.1:51234";
    const SERVER: &str = "198.51.100.7:25";

    /// A real-shaped conversation: handshake, then turns of `sizes` bytes, the server first,
    /// each cut into segments of at most `mss`, with pure ACKs between; then FINs. Each
    /// segment acknowledges everything its sender received. ISNs sit near the 2^32 wrap.
    fn conversation(sizes: &[usize], mss: usize) -> Vec<(bool, TcpFlags, u32, u32, Vec<u8>)> {
        let (mut c, mut s) = (u32::MAX - 300, u32::MAX - 7_000);
        let mut out = Vec::new();
        let ack = TcpFlags::ACK;
        out.push((true, TcpFlags::SYN, c, 0, vec![]));
        c = c.wrapping_add(1);
        out.push((false, TcpFlags::SYN.union(ack), s, c, vec![]));
        s = s.wrapping_add(1);
        out.push((true, ack, c, s, vec![]));
        for (turn, &n) in sizes.iter().enumerate() {
            let from_client = turn % 2 == 1;
            let bytes: Vec<u8> = (0..n).map(|i| (turn * 31 + i) as u8).collect();
            for piece in bytes.chunks(mss.max(1)) {
                let (seq, peer) = if from_client { (c, s) } else { (s, c) };
                out.push((
                    from_client,
                    TcpFlags::PSH.union(ack),
                    seq,
                    peer,
                    piece.to_vec(),
                ));
                let len = piece.len() as u32;
                if from_client {
                    c = c.wrapping_add(len);
                } else {
                    s = s.wrapping_add(len);
                }
            }
            let (seq, peer) = if from_client { (s, c) } else { (c, s) };
            out.push((!from_client, ack, seq, peer, vec![]));
        }
        let fin = TcpFlags::FIN.union(ack);
        out.push((true, fin, c, s, vec![]));
        c = c.wrapping_add(1);
        out.push((false, fin, s, c, vec![]));
        s = s.wrapping_add(1);
        out.push((true, ack, c, s, vec![]));
        out
    }

    fn replay(packets: &[(bool, TcpFlags, u32, u32, Vec<u8>)]) -> Heard {
        let mut table: FlowTable<Heard> = FlowTable::new(Limits::default());
        let mut closed = Vec::new();
        for (i, (from_client, flags, seq, ack, payload)) in packets.iter().enumerate() {
            let (src, dst) = if *from_client {
                (CLIENT, SERVER)
            } else {
                (SERVER, CLIENT)
            };
            let seg = Segment {
                src: src.parse().unwrap(),
                dst: dst.parse().unwrap(),
                seq: *seq,
                ack: *ack,
                flags: *flags,
                window: 65535,
                payload,
                payload_len: payload.len() as u32,
                protocol: Protocol::Smtp,
                fragment_overlap: false,
            };
            let ts = Timestamp::from_nanos(1_000_000 * i as u64);
            table.process(ts, &seg, |_| Heard::default(), &mut |c| closed.push(c));
        }
        table.flush(&mut |c| closed.push(c));
        assert_eq!(closed.len(), 1, "one connection");
        closed.pop().map(|c| c.handler).unwrap()
    }

    /// Shuffle within consecutive windows of `w` frames.
    fn permute<T>(mut v: Vec<T>, w: usize, keys: &[u32]) -> Vec<T> {
        let mut k = keys.iter().cycle();
        for chunk in v.chunks_mut(w.max(1)) {
            for i in (1..chunk.len()).rev() {
                let j = *k.next().unwrap_or(&0) as usize % (i + 1);
                chunk.swap(i, j);
            }
        }
        v
    }

    proptest! {
        /// The handler hears the same turns, in the same order, however the capture
        /// interleaved the frames within windows of up to 8 — SYN and SYN-ACK included.
        #[test]
        fn permuted_frames_give_the_same_dialogue(
            sizes in prop::collection::vec(1usize..3000, 1..8),
            mss in prop::sample::select(vec![536usize, 1448, 65_000]),
            w in 2usize..=8,
            keys in prop::collection::vec(any::<u32>(), 1..64),
        ) {
            let packets = conversation(&sizes, mss);
            let want = replay(&packets);
            prop_assert_eq!(want.events.len(), sizes.len());
            let got = replay(&permute(packets, w, &keys));
            prop_assert_eq!(&got.events, &want.events);
            prop_assert_eq!(got.eofs, 2);
            prop_assert_eq!(&got.anomalies, &want.anomalies);
        }

        /// Every frame twice: the same dialogue.
        #[test]
        fn duplicated_frames_give_the_same_dialogue(
            sizes in prop::collection::vec(1usize..3000, 1..8),
            mss in prop::sample::select(vec![536usize, 1448]),
        ) {
            let packets = conversation(&sizes, mss);
            let want = replay(&packets);
            let twice: Vec<_> = packets.iter().flat_map(|p| [p.clone(), p.clone()]).collect();
            let got = replay(&twice);
            prop_assert_eq!(&got.events, &want.events);
            prop_assert_eq!(&got.anomalies, &want.anomalies);
        }
    }

    /// A segment the capture lost, which the peer acknowledged: one gap at its place, and the
    /// reply that answers it after it, whatever the order around it.
    #[test]
    fn a_lost_segment_is_a_gap_before_the_reply_that_answers_it() {
        let mut packets = conversation(&[100, 50, 100], 1448);
        let lost = packets.iter().position(|p| p.0 && p.4.len() == 50).unwrap();
        packets.remove(lost);
        let want = vec![
            (Direction::ToClient, 100),
            (Direction::ToServer, 0),
            (Direction::ToClient, 100),
        ];
        let shape = |h: &Heard| -> Vec<(Direction, usize)> {
            h.events
                .iter()
                .map(|(d, t)| match t {
                    Turn::Data(n, _) => (*d, *n),
                    Turn::Gap(_) => (*d, 0),
                })
                .collect()
        };
        let heard = replay(&packets);
        assert_eq!(shape(&heard), want);
        assert!(heard.events.contains(&(Direction::ToServer, Turn::Gap(50))));
        for w in 2..=8 {
            let keys: Vec<u32> = (0..40).map(|i| (i * 7919 + w as u32) % 97).collect();
            let heard = replay(&permute(packets.clone(), w, &keys));
            assert_eq!(shape(&heard), want, "window {w}");
        }
    }

    /// Found by the property above: the server's FIN captured first of all, before its SYN-ACK
    /// and its data. The stream's start is tentative then, so the FIN must not end it.
    #[test]
    fn a_fin_seen_before_the_stream_it_ends() {
        let packets = conversation(&[1449], 1448);
        let want = replay(&packets);
        let keys = [1413427835, 1117862, 112198, 293663189, 1917629937];
        let permuted = permute(packets, 8, &keys);
        assert!(
            permuted[0].1.fin() && !permuted[0].0,
            "the server's FIN comes first"
        );
        let got = replay(&permuted);
        assert_eq!(got.events, want.events);
        assert_eq!(got.eofs, 2);
    }
}
