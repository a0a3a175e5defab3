//! Reliable delivery over a lossy link, as conntrackd's FT-FW mode does it
//! (Neira Ayuso, "conntrack-tools: Test Suite and Benchmark"; conntrackd's
//! `sync-ftfw.c`): every sequenced message carries a number; the sender
//! keeps what it sent in a bounded resend queue until the peer
//! acknowledges it; the receiver acknowledges in windows, and asks for
//! what a gap in the numbers (or a heartbeat naming a later last number)
//! shows missing with a NACK of the range. What the queue no longer holds
//! cannot be resent: the sender says so, and the peers fall back to a
//! bulk resync of the whole table, as pfsync's bulk update does.
//!
//! Sans-IO: the caller moves the bytes and the time; nothing here reads a
//! clock or a socket.

use std::collections::{BTreeSet, VecDeque};

/// Messages acknowledged together at most (conntrackd's `ACKWindowSize`).
pub const ACK_WINDOW: u32 = 64;

/// Missing messages a receiver waits for at most; a larger gap is not
/// asked for message by message: the table is resynced whole.
pub const MAX_MISSING: usize = 8192;

/// What the receiver makes of a sequenced message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrival {
    /// The first heard of this peer (or of its new epoch: it restarted):
    /// apply it, and ask for the whole table
    /// ([`crate::wire::Kind::BulkRequest`]): what came before is not
    /// known.
    FirstContact,
    /// The next one: apply it. `ack`: acknowledge up to this number now.
    InOrder { ack: Option<u32> },
    /// Ahead of a gap: apply it (its records are whole states, and a stale
    /// one is refused by the installer), and ask for `from..=to`.
    AfterGap { from: u32, to: u32 },
    /// One of the missing, resent: apply it.
    Recovered,
    /// A gap wider than [`MAX_MISSING`]: apply it, and ask for the whole
    /// table ([`crate::wire::Kind::BulkRequest`]).
    TooFarBehind,
    /// Already had it (a resend that crossed an ack): ignore.
    Duplicate,
}

/// The receiving side of one peer's stream.
#[derive(Clone, Debug, Default)]
pub struct Receiver {
    /// The peer's epoch (boot id) and the next number expected from it.
    peer: Option<(u64, u32)>,
    /// In-order messages since the last acknowledgment.
    unacked: u32,
    /// Numbers asked for again and not yet received.
    missing: BTreeSet<u32>,
    /// The oldest missing number and how many heartbeats have asked for
    /// it: one that never comes (lost on every resend) is given up on
    /// after [`MAX_ASKS`], and a bulk resync brings its sessions.
    asked: Option<(u32, u32)>,
    pub counters: ReceiverCounters,
}

/// Heartbeats that ask for one missing message before the receiver gives
/// up on it and asks for the whole table.
pub const MAX_ASKS: u32 = 20;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReceiverCounters {
    pub received: u64,
    /// Messages a gap showed missing (asked for again).
    pub missing: u64,
    pub nacks: u64,
    pub duplicates: u64,
    /// Missing messages that came on a resend.
    pub recovered: u64,
    /// Gaps too wide to ask for: the table was resynced instead.
    pub resyncs: u64,
    /// The peer restarted (a new epoch): numbering began again.
    pub peer_restarts: u64,
}

impl Receiver {
    /// A sequenced message `seq` from the peer in `epoch`.
    pub fn arrive(&mut self, epoch: u64, seq: u32) -> Arrival {
        self.counters.received += 1;
        let expected = match self.peer {
            Some((e, next)) if e == epoch => next,
            other => {
                // First contact, or the peer restarted: its numbers begin
                // wherever it says (a bulk sync brings the rest).
                if other.is_some() {
                    self.counters.peer_restarts += 1;
                }
                self.missing.clear();
                self.peer = Some((epoch, seq.wrapping_add(1)));
                self.unacked = 1;
                return Arrival::FirstContact;
            }
        };
        let ahead = seq.wrapping_sub(expected);
        if ahead == 0 {
            self.peer = Some((epoch, seq.wrapping_add(1)));
            self.unacked += 1;
            if self.unacked >= ACK_WINDOW {
                self.unacked = 0;
                // Only what arrived without a hole before it: the sender
                // must keep what is still missing.
                let upto = self.missing.first().map_or(seq, |m| m.wrapping_sub(1));
                return Arrival::InOrder { ack: Some(upto) };
            }
            Arrival::InOrder { ack: None }
        } else if ahead < u32::MAX / 2 {
            self.peer = Some((epoch, seq.wrapping_add(1)));
            self.counters.missing += u64::from(ahead);
            self.await_missing(expected, seq.wrapping_sub(1))
        } else if self.missing.remove(&seq) {
            self.counters.recovered += 1;
            Arrival::Recovered
        } else {
            self.counters.duplicates += 1;
            Arrival::Duplicate
        }
    }

    /// Notes `from..=to` as missing and says what to ask for.
    fn await_missing(&mut self, from: u32, to: u32) -> Arrival {
        let n = to.wrapping_sub(from) as usize + 1;
        if self.missing.len() + n > MAX_MISSING {
            self.missing.clear();
            self.counters.resyncs += 1;
            return Arrival::TooFarBehind;
        }
        self.missing
            .extend((0..n as u32).map(|i| from.wrapping_add(i)));
        self.counters.nacks += 1;
        Arrival::AfterGap { from, to }
    }

    /// What is missing as runs of consecutive numbers, at most `max` (the
    /// last one then reaching to the last missing): a NACK per run asks
    /// for what was lost and not for what came between.
    pub fn missing_runs(&self, max: usize) -> Vec<(u32, u32)> {
        let mut runs: Vec<(u32, u32)> = Vec::new();
        for &m in &self.missing {
            let full = runs.len() == max.max(1);
            match runs.last_mut() {
                Some((_, to)) if to.wrapping_add(1) == m || full => *to = m,
                _ => runs.push((m, m)),
            }
        }
        runs
    }

    /// The sender could not resend (it no longer holds them): stop waiting
    /// for what is missing, a bulk resync brings it.
    pub fn give_up_missing(&mut self) {
        if !self.missing.is_empty() {
            self.missing.clear();
            self.counters.resyncs += 1;
        }
        self.asked = None;
    }

    /// A heartbeat from the peer in `epoch` naming the last number it
    /// sent: the range to ask for if some did not arrive (tail loss, which
    /// no later message would reveal, or resends that were lost too: asked
    /// for again at every heartbeat until they come), and otherwise the
    /// number to acknowledge (everything so far).
    pub fn heartbeat(&mut self, epoch: u64, last_sent: u32) -> Heartbeat {
        let next = match self.peer {
            Some((e, next)) if e == epoch => next,
            other => {
                // A peer not heard before (or restarted): its stream
                // starts after what it has sent; a bulk sync brings that.
                if other.is_some() {
                    self.counters.peer_restarts += 1;
                }
                self.missing.clear();
                self.peer = Some((epoch, last_sent.wrapping_add(1)));
                return Heartbeat::Unknown;
            }
        };
        let tail = last_sent.wrapping_add(1).wrapping_sub(next);
        if tail != 0 && tail < u32::MAX / 2 {
            self.counters.missing += u64::from(tail);
            self.peer = Some((epoch, last_sent.wrapping_add(1)));
            if self.await_missing(next, last_sent) == Arrival::TooFarBehind {
                return Heartbeat::Unknown;
            }
        }
        match (self.missing.first(), self.missing.last()) {
            (Some(&from), Some(&to)) => {
                let asks = match self.asked {
                    Some((oldest, n)) if oldest == from => n + 1,
                    _ => 1,
                };
                if asks > MAX_ASKS {
                    self.asked = None;
                    self.missing.clear();
                    self.counters.resyncs += 1;
                    return Heartbeat::Unknown;
                }
                self.asked = Some((from, asks));
                self.counters.nacks += u64::from(tail == 0);
                Heartbeat::Nack { from, to }
            }
            _ => {
                self.unacked = 0;
                let (_, next) = self.peer.unwrap_or((epoch, next));
                Heartbeat::Ack(next.wrapping_sub(1))
            }
        }
    }
}

/// What to answer a heartbeat with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Heartbeat {
    Ack(u32),
    Nack {
        from: u32,
        to: u32,
    },
    /// Nothing received from this epoch yet, or too much missed: ask for
    /// a bulk sync.
    Unknown,
}

/// The sending side: numbers messages and keeps them until acknowledged.
#[derive(Clone, Debug)]
pub struct Sender {
    next: u32,
    /// Sent and not yet acknowledged, oldest first: (number, datagram).
    queue: VecDeque<(u32, Vec<u8>)>,
    queue_bytes: usize,
    max_bytes: usize,
    pub counters: SenderCounters,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SenderCounters {
    pub sent: u64,
    pub resent: u64,
    /// Messages forgotten unacknowledged because the queue was full.
    pub evicted: u64,
    /// NACKs for messages no longer held: the peer needs a bulk resync.
    pub resyncs: u64,
}

/// What to do about a NACK.
#[derive(Debug, PartialEq, Eq)]
pub enum Resend<'a> {
    /// These datagrams, again, in order.
    These(Vec<&'a [u8]>),
    /// Some of the range is no longer held: send the whole table.
    Resync,
}

impl Sender {
    /// A sender holding at most `max_bytes` of unacknowledged datagrams
    /// (conntrackd's `ResendQueueSize`), numbering from `first`.
    pub fn new(max_bytes: usize, first: u32) -> Sender {
        Sender {
            next: first,
            queue: VecDeque::new(),
            queue_bytes: 0,
            max_bytes,
            counters: SenderCounters::default(),
        }
    }

    /// The number the next sequenced message gets.
    pub fn next_seq(&self) -> u32 {
        self.next
    }

    /// The last number sent (for heartbeats).
    pub fn last_sent(&self) -> u32 {
        self.next.wrapping_sub(1)
    }

    /// Keeps `datagram` (built with [`Sender::next_seq`] in its header)
    /// for resending, and moves the numbering on.
    pub fn sent(&mut self, datagram: Vec<u8>) {
        self.counters.sent += 1;
        self.queue_bytes += datagram.len();
        self.queue.push_back((self.next, datagram));
        self.next = self.next.wrapping_add(1);
        while self.queue_bytes > self.max_bytes {
            let Some((_, d)) = self.queue.pop_front() else {
                break;
            };
            self.queue_bytes -= d.len();
            self.counters.evicted += 1;
        }
    }

    /// The peer has everything up to `upto`.
    pub fn ack(&mut self, upto: u32) {
        while let Some((seq, d)) = self.queue.front() {
            if upto.wrapping_sub(*seq) < u32::MAX / 2 {
                self.queue_bytes -= d.len();
                self.queue.pop_front();
            } else {
                break;
            }
        }
    }

    /// The peer misses `from..=to`.
    pub fn nack(&mut self, from: u32, to: u32) -> Resend<'_> {
        let held = |s: u32| self.queue.iter().any(|(q, _)| *q == s);
        let span = to.wrapping_sub(from);
        if span >= u32::MAX / 2 || !held(from) || !held(to) {
            self.counters.resyncs += 1;
            return Resend::Resync;
        }
        let these: Vec<&[u8]> = self
            .queue
            .iter()
            .filter(|(q, _)| q.wrapping_sub(from) <= span)
            .map(|(_, d)| d.as_slice())
            .collect();
        self.counters.resent += these.len() as u64;
        Resend::These(these)
    }

    /// Unacknowledged datagrams held.
    pub fn held(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A link that loses what `lose` says, between a sender and a
    /// receiver: everything sent ends up received, by resends.
    #[test]
    fn every_message_arrives_through_losses_by_nacks_and_heartbeats() {
        let mut tx = Sender::new(1 << 20, 100);
        let mut rx = Receiver::default();
        assert_eq!(rx.heartbeat(9, tx.last_sent()), Heartbeat::Unknown);
        let mut got = std::collections::BTreeSet::new();
        let lose = |seq: u32| seq % 7 == 3 || seq.is_multiple_of(11) || seq == 399;
        let deliver = |rx: &mut Receiver,
                       got: &mut std::collections::BTreeSet<u32>,
                       tx: &mut Sender,
                       seq: u32| {
            match rx.arrive(9, seq) {
                Arrival::InOrder { ack } => {
                    got.insert(seq);
                    if let Some(a) = ack {
                        tx.ack(a);
                    }
                }
                Arrival::AfterGap { from, to } => {
                    got.insert(seq);
                    let Resend::These(again) = tx.nack(from, to) else {
                        panic!("held")
                    };
                    let again: Vec<u32> = again
                        .iter()
                        .map(|d| u32::from_le_bytes([d[0], d[1], d[2], d[3]]))
                        .collect();
                    for s in again {
                        assert_eq!(rx.arrive(9, s), Arrival::Recovered, "{s}");
                        got.insert(s);
                    }
                }
                Arrival::Recovered | Arrival::TooFarBehind | Arrival::FirstContact => {
                    panic!("not here")
                }
                Arrival::Duplicate => {}
            }
        };
        for _ in 0..300 {
            let seq = tx.next_seq();
            tx.sent(seq.to_le_bytes().to_vec());
            if !lose(seq) {
                deliver(&mut rx, &mut got, &mut tx, seq);
            }
        }
        // The last one was lost: only the heartbeat can tell.
        match rx.heartbeat(9, tx.last_sent()) {
            Heartbeat::Nack { from, to } => {
                let Resend::These(again) = tx.nack(from, to) else {
                    panic!("held")
                };
                assert_eq!(again.len(), (to - from + 1) as usize);
                let again: Vec<u32> = again
                    .iter()
                    .map(|d| u32::from_le_bytes([d[0], d[1], d[2], d[3]]))
                    .collect();
                for s in again {
                    assert_eq!(rx.arrive(9, s), Arrival::Recovered);
                    got.insert(s);
                }
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(got.len(), 300, "every message");
        assert_eq!(rx.heartbeat(9, tx.last_sent()), Heartbeat::Ack(399));
        tx.ack(399);
        assert_eq!(tx.held(), 0, "all acknowledged");
        assert!(rx.counters.missing > 0 && tx.counters.resent == rx.counters.missing);
        assert_eq!(rx.counters.recovered, rx.counters.missing);
        // A resend that crosses in flight is a duplicate.
        assert_eq!(rx.arrive(9, 398), Arrival::Duplicate);
    }

    #[test]
    fn a_range_no_longer_held_asks_for_a_resync_and_a_restart_begins_anew() {
        let mut tx = Sender::new(40, 0);
        for i in 0u32..20 {
            tx.sent(i.to_le_bytes().to_vec());
        }
        assert_eq!(tx.held(), 10, "40 bytes of 4-byte datagrams");
        assert_eq!(tx.counters.evicted, 10);
        assert_eq!(tx.nack(5, 12), Resend::Resync);
        assert_eq!(tx.counters.resyncs, 1);
        assert!(matches!(tx.nack(12, 13), Resend::These(v) if v.len() == 2));

        let mut rx = Receiver::default();
        assert_eq!(
            rx.heartbeat(1, 5),
            Heartbeat::Unknown,
            "never heard: bulk sync"
        );
        assert_eq!(rx.arrive(1, 6), Arrival::InOrder { ack: None });
        assert_eq!(rx.arrive(1, 7), Arrival::InOrder { ack: None });
        // The peer restarts: a new epoch, numbers from anywhere.
        assert_eq!(rx.arrive(2, 0), Arrival::FirstContact);
        assert_eq!(rx.counters.peer_restarts, 1);
        assert_eq!(rx.arrive(2, 1), Arrival::InOrder { ack: None });
        // Numbers wrap.
        let mut rx = Receiver::default();
        assert_eq!(rx.arrive(3, u32::MAX), Arrival::FirstContact);
        assert_eq!(rx.arrive(3, 0), Arrival::InOrder { ack: None });
        assert_eq!(rx.arrive(3, 2), Arrival::AfterGap { from: 1, to: 1 });
        // A gap too wide to ask for message by message.
        assert_eq!(
            rx.arrive(3, 2 + MAX_MISSING as u32 + 1),
            Arrival::TooFarBehind
        );
        assert_eq!(rx.counters.resyncs, 1);
    }

    proptest::proptest! {
        /// Whatever the link loses (first sends, resends and all), every
        /// message is applied once the heartbeats have asked for it
        /// enough times, and none twice.
        #[test]
        fn a_lossy_link_delivers_everything_once(
            losses in proptest::collection::vec(0u8..100, 600),
            loss_percent in 0u8..40,
        ) {
            let mut tx = Sender::new(1 << 20, 7);
            let mut rx = Receiver::default();
            let mut lost = losses.into_iter().cycle().map(move |x| x < loss_percent);
            let mut applied = std::collections::BTreeMap::<u32, u32>::new();
            let apply = |rx: &mut Receiver, tx: &mut Sender, s: u32, applied: &mut std::collections::BTreeMap<u32, u32>| {
                match rx.arrive(1, s) {
                    Arrival::InOrder { ack } => {
                        *applied.entry(s).or_default() += 1;
                        if let Some(a) = ack { tx.ack(a); }
                        None
                    }
                    Arrival::AfterGap { from, to } => {
                        *applied.entry(s).or_default() += 1;
                        Some((from, to))
                    }
                    Arrival::Recovered => { *applied.entry(s).or_default() += 1; None }
                    Arrival::Duplicate => None,
                    Arrival::TooFarBehind | Arrival::FirstContact => panic!("not here"),
                }
            };
            let seq_of = |d: &[u8]| u32::from_le_bytes([d[0], d[1], d[2], d[3]]);
            let mut nacks = Vec::new();
            // The peers meet by a heartbeat (the receiver asks for a bulk
            // sync of what came before).
            proptest::prop_assert_eq!(rx.heartbeat(1, tx.last_sent()), Heartbeat::Unknown);
            for _ in 0..300 {
                let s = tx.next_seq();
                tx.sent(s.to_le_bytes().to_vec());
                if !lost.next().unwrap() {
                    nacks.extend(apply(&mut rx, &mut tx, s, &mut applied));
                }
            }
            for _round in 0..200 {
                match rx.heartbeat(1, tx.last_sent()) {
                    Heartbeat::Ack(a) => { tx.ack(a); break; }
                    Heartbeat::Nack { from, to } => nacks.push((from, to)),
                    Heartbeat::Unknown => panic!("known"),
                }
                for (from, to) in std::mem::take(&mut nacks) {
                    let Resend::These(again) = tx.nack(from, to) else { panic!("held") };
                    let again: Vec<u32> = again.iter().map(|d| seq_of(d)).collect();
                    for s in again {
                        if !lost.next().unwrap() {
                            nacks.extend(apply(&mut rx, &mut tx, s, &mut applied));
                        }
                    }
                }
            }
            proptest::prop_assert_eq!(applied.len(), 300);
            proptest::prop_assert!(applied.values().all(|&n| n == 1));
            proptest::prop_assert_eq!(tx.held(), 0);
        }
    }

    #[test]
    fn acknowledgments_come_in_windows() {
        let mut rx = Receiver::default();
        assert_eq!(rx.heartbeat(1, u32::MAX), Heartbeat::Unknown);
        let acks: Vec<u32> = (0..200u32)
            .filter_map(|s| match rx.arrive(1, s) {
                Arrival::InOrder { ack } => ack,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(acks, [63, 127, 191]);
    }
}

#[cfg(test)]
mod runs {
    use super::*;

    /// What is missing is asked for run by run, not as one range with
    /// what came between.
    #[test]
    fn missing_numbers_come_as_runs() {
        let mut r = Receiver::default();
        r.arrive(7, 1);
        r.arrive(7, 4); // 2, 3 missing
        r.arrive(7, 9); // 5..=8 missing
        r.arrive(7, 6); // 6 came after all
        assert_eq!(r.missing_runs(16), vec![(2, 3), (5, 5), (7, 8)]);
        assert_eq!(r.missing_runs(2), vec![(2, 3), (5, 8)]);
    }
}

#[cfg(test)]
mod stuck {
    use super::*;

    /// A message lost on every resend is asked for [`MAX_ASKS`] times,
    /// then given up on for a bulk resync: the stream never stalls on it.
    #[test]
    fn a_message_that_never_comes_is_given_up_for_a_resync() {
        let mut r = Receiver::default();
        r.arrive(7, 1);
        r.arrive(7, 3);
        for _ in 0..MAX_ASKS {
            assert_eq!(r.heartbeat(7, 3), Heartbeat::Nack { from: 2, to: 2 });
        }
        assert_eq!(r.heartbeat(7, 3), Heartbeat::Unknown);
        assert_eq!(
            r.heartbeat(7, 3),
            Heartbeat::Ack(3),
            "nothing missing any more"
        );
        assert_eq!(r.counters.resyncs, 1);
    }
}
