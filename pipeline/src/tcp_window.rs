//! TCP sequence and window tracking of one session, as a stateful firewall
//! checks it: each direction's highest sequence sent, the right edge of
//! the window the other side opened, and the largest window it
//! advertised. A segment is acceptable when its sequence numbers fall
//! inside what the receiver could accept and its acknowledgment inside
//! what the receiver has sent (RFC 793 acceptability, with window scaling,
//! after Guido van Rooij's "Real Stateful TCP Packet Filtering", which
//! Linux conntrack's TCP tracker also implements).
//!
//! A RST closes the session only at the exact sequence number the receiver
//! expects (RFC 5961 section 3): one elsewhere inside the window is
//! forwarded, so the endpoint can answer it with a challenge ACK, but does
//! not end the session; one outside the window is dropped. An off-path
//! attacker who knows the 5-tuple can then no longer cut a connection.
//!
//! A session whose first tracked segment in a direction is not a SYN
//! (mid-stream pickup, a SYN+ACK missed, or tracking switched on by a
//! reload) cannot know the window scale and is tracked liberally: its
//! windows are learned, nothing is refused, as conntrack does for picked-up
//! connections.

use crate::wire::{tcp, TcpFlags};

/// What the tracker reads from a TCP header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Segment {
    pub flags: TcpFlags,
    /// Sequence fields, when the packet carries a whole TCP header that is
    /// tracked (not for a fragment, nor with sequence checking off).
    pub seq: Option<SeqFields>,
}

/// The sequence-space fields of a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SeqFields {
    pub seq: u32,
    pub ack: u32,
    /// The raw window field (scaled by the sender's shift unless SYN).
    pub window: u16,
    /// Payload bytes (SYN and FIN add one each to the sequence space).
    pub payload_len: u32,
    /// The window scale option, on a SYN that carries one.
    pub wscale: Option<u8>,
}

impl From<TcpFlags> for Segment {
    fn from(flags: TcpFlags) -> Segment {
        Segment { flags, seq: None }
    }
}

impl Segment {
    /// Reads a segment from its TCP header `l4` (`l4` ends where the IP
    /// packet ends). `None` when the header is truncated, which the parser
    /// has already refused for any packet that reaches a session.
    pub fn read(l4: &[u8]) -> Option<Segment> {
        let t = tcp::Packet::new_checked(l4).ok()?;
        let flags = t.flags();
        Some(Segment {
            flags,
            seq: Some(SeqFields {
                seq: t.seq_number(),
                ack: t.ack_number(),
                window: t.window_len(),
                payload_len: t.payload().len() as u32,
                wscale: if flags.contains(TcpFlags::SYN) {
                    window_scale(t.options())
                } else {
                    None
                },
            }),
        })
    }
}

/// The window scale option (kind 3) among TCP options, capped at 14 (RFC
/// 7323 section 2.3).
fn window_scale(mut options: &[u8]) -> Option<u8> {
    while let Some((&kind, rest)) = options.split_first() {
        match kind {
            0 => return None,
            1 => options = rest,
            _ => {
                let len = usize::from(*rest.first()?);
                if len < 2 || len > options.len() {
                    return None;
                }
                if kind == 3 && len == 3 {
                    return Some(options[2].min(14));
                }
                options = &options[len..];
            }
        }
    }
    None
}

/// The smallest acknowledgment window assumed for a side whose own window
/// is smaller (conntrack's MAXACKWINCONST): an ACK may trail the data it
/// acknowledges by up to this much.
const MIN_ACK_WINDOW: u32 = 66_000;

/// `a` is at or before `b` in sequence space.
#[inline]
fn seq_le(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) <= 0
}

#[inline]
fn seq_max(a: u32, b: u32) -> u32 {
    if seq_le(a, b) {
        b
    } else {
        a
    }
}

/// One direction, as a sender.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[repr(C)]
struct Peer {
    /// Just past the highest sequence number sent.
    end: u32,
    /// The right edge of the window the other side opened: the highest
    /// sequence number this side may send.
    max_end: u32,
    /// The largest window this side advertised (scaled; at least 1).
    max_win: u32,
    /// The highest acknowledgment this side sent.
    max_ack: u32,
    /// The window scale this side announced in its SYN.
    scale: u8,
    seen: bool,
    announced_scale: bool,
    acked: bool,
}

impl Peer {
    const UNSEEN: Peer = Peer {
        end: 0,
        max_end: 0,
        max_win: 0,
        max_ack: 0,
        scale: 0,
        seen: false,
        announced_scale: false,
        acked: false,
    };
}

/// The verdict on one segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// Inside the window (or not tracked): forward and advance the state.
    Accept,
    /// Outside the window: drop, change nothing.
    OutOfWindow,
    /// A RST at the sequence number the receiver expects: the session ends.
    RstExact,
    /// A RST inside the window but not where the receiver expects it:
    /// forward it (the endpoint challenges it) and keep the session.
    RstUnconfirmed,
}

/// Both directions of a session, `[client, server]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[repr(C)]
pub struct Windows {
    peers: [Peer; 2],
    /// Learn, never refuse (see the module doc).
    liberal: bool,
    /// Per side: its edges came from a high-availability peer and are
    /// stale; its next segment re-anchors them (see [`Windows::resume`]).
    resync: [bool; 2],
}

impl Windows {
    /// Nothing seen yet.
    pub const DEFAULT: Windows = Windows {
        peers: [Peer::UNSEEN; 2],
        liberal: false,
        resync: [false; 2],
    };

    /// The windows of a session synced from a high-availability peer,
    /// which carries on the connection from here. The peer syncs a
    /// session when its state changes, not on every segment (as
    /// conntrackd), so its edges are behind the connection by what was
    /// sent since: each side's next segment re-anchors that side's edges
    /// (accepted while either side has not spoken yet), and from then on
    /// every segment is checked strictly again, with the window scales
    /// the handshake announced. A conntrack backup marks such entries
    /// liberal for their whole life; this relaxes two segments.
    pub fn resume(mut self) -> Windows {
        self.resync = [self.peers[0].seen, self.peers[1].seen];
        self
    }

    /// Bytes of [`Windows::to_bytes`].
    pub const BYTES: usize = 2 * 17 + 1;

    /// Everything tracked, as bytes (a session synced to a peer carries
    /// its window edges, so the peer checks sequence numbers as this node
    /// did): per side `end`, `max_end`, `max_win`, `max_ack` (little
    /// endian), `scale` and a flags byte; then `liberal`.
    pub fn to_bytes(&self) -> [u8; Windows::BYTES] {
        let mut out = [0u8; Windows::BYTES];
        for (side, p) in self.peers.iter().enumerate() {
            let o = &mut out[side * 17..side * 17 + 17];
            for (i, w) in [p.end, p.max_end, p.max_win, p.max_ack].iter().enumerate() {
                o[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
            }
            o[16] = p.scale & 0x0f
                | u8::from(p.seen) << 4
                | u8::from(p.announced_scale) << 5
                | u8::from(p.acked) << 6;
        }
        out[34] = u8::from(self.liberal);
        out
    }

    /// The windows [`Windows::to_bytes`] wrote; `None` for bytes it never
    /// writes (a window scale above 14, unknown flag bits).
    pub fn from_bytes(b: &[u8; Windows::BYTES]) -> Option<Windows> {
        let side = |o: &[u8]| {
            let w = |i: usize| u32::from_le_bytes([o[i], o[i + 1], o[i + 2], o[i + 3]]);
            let flags = o[16];
            (flags & 0x0f <= 14 && flags & 0x80 == 0).then(|| Peer {
                end: w(0),
                max_end: w(4),
                max_win: w(8),
                max_ack: w(12),
                scale: flags & 0x0f,
                seen: flags & 1 << 4 != 0,
                announced_scale: flags & 1 << 5 != 0,
                acked: flags & 1 << 6 != 0,
            })
        };
        Some(Windows {
            peers: [side(&b[..17])?, side(&b[17..34])?],
            liberal: match b[34] {
                0 => false,
                1 => true,
                _ => return None,
            },
            resync: [false; 2],
        })
    }

    /// Checks a segment sent by side `from` (0 client, 1 server) and, when
    /// it is acceptable, advances both sides' state. `handshake` is true
    /// while the session has not seen the handshake complete (a SYN may
    /// then restart a side's sequence space).
    pub fn track(&mut self, from: usize, seg: &Segment, handshake: bool) -> Check {
        let rst = seg.flags.contains(TcpFlags::RST);
        let Some(f) = seg.seq else {
            // Nothing to check it against (the caller passes no sequence
            // fields when checking is off): flags alone decide.
            return if rst { Check::RstExact } else { Check::Accept };
        };
        let syn = seg.flags.contains(TcpFlags::SYN);
        let has_ack = seg.flags.contains(TcpFlags::ACK);
        let end = f
            .seq
            .wrapping_add(f.payload_len)
            .wrapping_add(u32::from(syn))
            .wrapping_add(u32::from(seg.flags.contains(TcpFlags::FIN)));
        // Work on copies: a refused segment changes nothing.
        let (mut sender, mut receiver) = (self.peers[from & 1], self.peers[(from & 1) ^ 1]);
        let resyncing = self.resync[0] || self.resync[1];
        let relearn = self.resync[from & 1] && !syn;
        if relearn {
            // Synced edges: this side's first segment here re-anchors them.
            sender.end = end;
            sender.max_end = seq_max(sender.max_end, end);
        }

        if !sender.seen {
            if rst {
                // A side's first word is a RST: the answer to a SYN on a
                // closed port acknowledges the SYN, and ends the session.
                let answers_syn = has_ack && f.ack == receiver.end;
                return if answers_syn || !receiver.seen {
                    Check::RstExact
                } else {
                    Check::RstUnconfirmed
                };
            }
            if !syn {
                // Mid-stream: the scale this side announced is unknown.
                self.liberal = true;
                Self::pick_up(&mut sender, &mut receiver, &f, end, has_ack);
                self.store(from, sender, receiver);
                return Check::Accept;
            }
            Self::start(&mut sender, &mut receiver, &f, end);
        } else if syn && handshake && !rst {
            // A retransmitted or renewed SYN (or SYN+ACK) before the
            // handshake completed: this side starts over.
            Self::start(&mut sender, &mut receiver, &f, end);
        }

        // Without ACK the acknowledgment field means nothing: check it as
        // if it acknowledged everything.
        let ack = if has_ack { f.ack } else { receiver.end };
        let win = if syn {
            u32::from(f.window)
        } else {
            u32::from(f.window) << sender.scale
        };
        let in_window = self.liberal
            || resyncing
            || !receiver.seen
            || (seq_le(f.seq, sender.max_end)
                && seq_le(sender.end.wrapping_sub(receiver.max_win), end)
                && seq_le(ack, receiver.end)
                && seq_le(
                    receiver
                        .end
                        .wrapping_sub(sender.max_win.max(MIN_ACK_WINDOW)),
                    ack,
                ));
        if !in_window {
            return Check::OutOfWindow;
        }
        if rst {
            // Exact: where the receiver's acknowledgments say it is, or
            // just past everything the sender sent.
            // Before the other side has answered, only the sender's own next
            // sequence number is known: a RST elsewhere is not exact.
            let exact = self.liberal
                || (receiver.acked && f.seq == receiver.max_ack)
                || f.seq == sender.end;
            return if exact {
                Check::RstExact
            } else {
                Check::RstUnconfirmed
            };
        }
        Self::advance(&mut sender, &mut receiver, end, ack, has_ack, win);
        self.store(from, sender, receiver);
        if relearn {
            self.resync[from & 1] = false;
        }
        Check::Accept
    }

    fn store(&mut self, from: usize, sender: Peer, receiver: Peer) {
        self.peers[from & 1] = sender;
        self.peers[(from & 1) ^ 1] = receiver;
    }

    /// A side's SYN: its sequence space and window scale start here.
    fn start(sender: &mut Peer, receiver: &mut Peer, f: &SeqFields, end: u32) {
        *sender = Peer {
            end,
            max_end: end,
            max_win: u32::from(f.window).max(1),
            max_ack: 0,
            scale: f.wscale.unwrap_or(0),
            seen: true,
            announced_scale: f.wscale.is_some(),
            acked: false,
        };
        // Scaling holds only if both SYNs carried the option (RFC 7323).
        if receiver.seen && !(sender.announced_scale && receiver.announced_scale) {
            sender.scale = 0;
            receiver.scale = 0;
        }
    }

    /// A side first seen mid-stream (conntrack's non-SYN start).
    fn pick_up(sender: &mut Peer, receiver: &mut Peer, f: &SeqFields, end: u32, has_ack: bool) {
        let win = u32::from(f.window).max(1);
        *sender = Peer {
            end,
            max_end: end.wrapping_add(win),
            max_win: win,
            max_ack: f.ack,
            scale: 0,
            seen: true,
            announced_scale: false,
            acked: has_ack,
        };
        if !receiver.seen && has_ack {
            receiver.end = f.ack;
            receiver.max_end = f.ack;
        }
    }

    /// Advances both sides after an acceptable segment.
    fn advance(
        sender: &mut Peer,
        receiver: &mut Peer,
        end: u32,
        ack: u32,
        has_ack: bool,
        win: u32,
    ) {
        sender.max_win = sender.max_win.max(win.max(1));
        sender.end = seq_max(sender.end, end);
        if has_ack {
            sender.max_ack = if sender.acked {
                seq_max(sender.max_ack, ack)
            } else {
                ack
            };
            sender.acked = true;
        }
        if receiver.seen && !seq_le(end, sender.max_end) {
            // The sender went past the edge we knew: the receiver's window
            // was larger than it advertised to us.
            receiver.max_win = receiver
                .max_win
                .wrapping_add(end.wrapping_sub(sender.max_end));
        }
        if has_ack {
            let edge = ack.wrapping_add(win.max(1));
            receiver.max_end = if receiver.seen {
                seq_max(receiver.max_end, edge)
            } else {
                edge
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: usize = 0;
    const S: usize = 1;

    fn seg(flags: TcpFlags, seq: u32, ack: u32, window: u16, len: u32) -> Segment {
        Segment {
            flags,
            seq: Some(SeqFields {
                seq,
                ack,
                window,
                payload_len: len,
                wscale: None,
            }),
        }
    }

    fn syn(seq: u32, ack: Option<u32>, window: u16, wscale: Option<u8>) -> Segment {
        let mut s = match ack {
            Some(a) => seg(TcpFlags::SYN.union(TcpFlags::ACK), seq, a, window, 0),
            None => seg(TcpFlags::SYN, seq, 0, window, 0),
        };
        s.seq.as_mut().unwrap().wscale = wscale;
        s
    }

    const ACK: TcpFlags = TcpFlags::ACK;

    fn rst(seq: u32) -> Segment {
        seg(TcpFlags::RST, seq, 0, 0, 0)
    }

    /// A peer's copy of the windows (a synced session) checks the next
    /// segments as the original does.
    #[test]
    fn windows_travel_as_bytes_and_check_alike() {
        let mut w = established();
        let copy = Windows::from_bytes(&w.to_bytes()).unwrap();
        assert_eq!(copy, w);
        assert_eq!(
            Windows::from_bytes(&Windows::DEFAULT.to_bytes()),
            Some(Windows::DEFAULT)
        );
        let mut bad = w.to_bytes();
        bad[16] = 0x0f;
        assert_eq!(Windows::from_bytes(&bad), None, "scale 15");
        let mut bad = w.to_bytes();
        bad[34] = 2;
        assert_eq!(Windows::from_bytes(&bad), None);
        let mut c = copy;
        for s in [
            seg(ACK, 1001, 5001, 502, 100),
            seg(ACK, 900_000, 5001, 502, 10),
            rst(5001),
        ] {
            assert_eq!(c.track(C, &s, false), w.track(C, &s, false), "{s:?}");
        }
    }

    /// Client ISN 1000, server ISN 5000, both scale 7, windows 512 << 7.
    fn established() -> Windows {
        let mut w = Windows::default();
        assert_eq!(
            w.track(C, &syn(1000, None, 64240, Some(7)), true),
            Check::Accept
        );
        assert_eq!(
            w.track(S, &syn(5000, Some(1001), 65160, Some(7)), true),
            Check::Accept
        );
        assert_eq!(
            w.track(C, &seg(ACK, 1001, 5001, 502, 0), true),
            Check::Accept
        );
        w
    }

    #[test]
    fn a_normal_exchange_is_accepted_with_scaled_windows() {
        let mut w = established();
        // 100 kB from the server in 1448-byte segments, within the client's
        // 502 << 7 = 64 kB scaled window as it is acknowledged.
        let mut seq = 5001u32;
        for i in 0..70u32 {
            let s = seg(ACK, seq, 1001, 509, 1448);
            assert_eq!(w.track(S, &s, false), Check::Accept, "segment {i}");
            seq += 1448;
            if i % 2 == 1 {
                assert_eq!(
                    w.track(C, &seg(ACK, 1001, seq, 502, 0), false),
                    Check::Accept
                );
            }
        }
        // A retransmission of old data is still acceptable.
        assert_eq!(
            w.track(S, &seg(ACK, seq - 2896, 1001, 509, 1448), false),
            Check::Accept
        );
    }

    #[test]
    fn data_and_acks_far_outside_the_window_are_refused() {
        let mut w = established();
        let before = w;
        for (from, s) in [
            (S, seg(ACK, 5001 + 10_000_000, 1001, 509, 100)),
            (
                S,
                seg(ACK, 5001u32.wrapping_sub(10_000_000), 1001, 509, 100),
            ),
            (C, seg(ACK, 1001, 5001 + 10_000_000, 502, 0)),
            (C, seg(ACK, 1001, 5001u32.wrapping_sub(10_000_000), 502, 0)),
            (C, seg(ACK, 3_000_000_000, 5001, 502, 0)),
        ] {
            assert_eq!(w.track(from, &s, false), Check::OutOfWindow, "{s:?}");
            assert_eq!(w, before, "a refused segment changes nothing");
        }
    }

    #[test]
    fn only_an_exact_rst_ends_the_session() {
        let mut w = established();
        assert_eq!(w.track(S, &rst(3_000_000_000), false), Check::OutOfWindow);
        // In the window but not where the client expects it.
        assert_eq!(w.track(S, &rst(5001 + 4000), false), Check::RstUnconfirmed);
        // The client acknowledged up to 5001: a RST there is the real one.
        assert_eq!(w.track(S, &rst(5001), false), Check::RstExact);
        // From the client, at its next sequence number.
        assert_eq!(w.track(C, &rst(1001), false), Check::RstExact);
    }

    #[test]
    fn a_refused_syn_is_answered_by_an_exact_rst() {
        let mut w = Windows::default();
        w.track(C, &syn(77, None, 64240, Some(7)), true);
        // Linux answers a SYN to a closed port with RST+ACK, seq 0.
        let answer = seg(TcpFlags::RST.union(ACK), 0, 78, 0, 0);
        assert_eq!(w.track(S, &answer, true), Check::RstExact);
        let blind = seg(TcpFlags::RST.union(ACK), 0, 9999, 0, 0);
        let mut w2 = Windows::default();
        w2.track(C, &syn(77, None, 64240, Some(7)), true);
        assert_eq!(w2.track(S, &blind, true), Check::RstUnconfirmed);
    }

    #[test]
    fn before_the_server_answers_only_the_clients_next_sequence_is_exact() {
        let mut w = Windows::default();
        w.track(C, &syn(1000, None, 64240, Some(7)), true);
        // A forged client RST at a guessed sequence number.
        assert_eq!(w.track(C, &rst(77_777), true), Check::RstUnconfirmed);
        assert_eq!(w.track(C, &rst(1001), true), Check::RstExact);
    }

    #[test]
    fn scaling_holds_only_when_both_syns_carry_it() {
        let mut w = Windows::default();
        w.track(C, &syn(1000, None, 64240, Some(7)), true);
        w.track(S, &syn(5000, Some(1001), 65160, None), true);
        assert_eq!((w.peers[0].scale, w.peers[1].scale), (0, 0));
        let mut w = established();
        assert_eq!((w.peers[0].scale, w.peers[1].scale), (7, 7));
        // Unscaled, the client's window would be 502 bytes and this
        // segment 40 kB past it; scaled it is inside.
        assert_eq!(
            w.track(S, &seg(ACK, 5001 + 40_000, 1001, 509, 1000), false),
            Check::Accept
        );
    }

    #[test]
    fn a_retransmitted_syn_with_a_new_isn_restarts_the_client() {
        let mut w = Windows::default();
        w.track(C, &syn(1000, None, 64240, None), true);
        assert_eq!(
            w.track(C, &syn(900_000, None, 64240, None), true),
            Check::Accept
        );
        assert_eq!(
            w.track(S, &syn(5000, Some(900_001), 65160, None), true),
            Check::Accept
        );
    }

    #[test]
    fn picked_up_sessions_are_tracked_liberally() {
        let mut w = Windows::default();
        assert_eq!(w.track(C, &seg(ACK, 1, 2, 100, 10), false), Check::Accept);
        assert_eq!(
            w.track(S, &seg(ACK, 2_000_000_000, 11, 100, 10), false),
            Check::Accept
        );
        assert_eq!(w.track(S, &rst(7), false), Check::RstExact);
    }

    /// A synced session taken over after the connection moved on by 5 MB
    /// each way: each side's first segment re-anchors its edges, and
    /// from then on tracking is as strict as before the failover.
    #[test]
    fn a_synced_session_relearns_one_segment_per_side_then_is_strict() {
        let synced = Windows::from_bytes(&established().to_bytes()).expect("round trip");
        let mut w = synced.resume();
        let (c, s) = (1001 + 5_000_000u32, 5001 + 5_000_000u32);
        assert_eq!(w.track(C, &seg(ACK, c, s, 502, 1000), false), Check::Accept);
        // The client has re-anchored; the server not yet: still accepted.
        assert_eq!(
            w.track(C, &seg(ACK, c + 1000, s, 502, 1000), false),
            Check::Accept
        );
        assert_eq!(
            w.track(S, &seg(ACK, s, c + 2000, 509, 0), false),
            Check::Accept
        );
        // Both re-anchored: strict again, with the scale (7) of the handshake.
        assert_eq!(
            w.track(C, &seg(ACK, c + 2000, s, 502, 1000), false),
            Check::Accept
        );
        assert_eq!(
            w.track(C, &seg(ACK, c.wrapping_add(50_000_000), s, 502, 10), false),
            Check::OutOfWindow
        );
        assert_eq!(
            w.track(
                S,
                &seg(ACK, s.wrapping_sub(30_000_000), c + 3000, 509, 10),
                false
            ),
            Check::OutOfWindow
        );
        // Without resume the synced edges refuse the moved-on connection.
        let mut stale = synced;
        assert_eq!(
            stale.track(C, &seg(ACK, c, s, 502, 1000), false),
            Check::OutOfWindow
        );
    }

    #[test]
    fn untracked_segments_pass_and_any_rst_is_final() {
        let mut w = established();
        assert_eq!(w.track(S, &Segment::from(ACK), false), Check::Accept);
        assert_eq!(
            w.track(S, &Segment::from(TcpFlags::RST), false),
            Check::RstExact
        );
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut w = Windows::default();
        let isn = u32::MAX - 100;
        w.track(C, &syn(isn, None, 64240, None), true);
        w.track(S, &syn(7, Some(isn.wrapping_add(1)), 65160, None), true);
        w.track(C, &seg(ACK, isn.wrapping_add(1), 8, 64240, 0), true);
        let mut seq = isn.wrapping_add(1);
        for _ in 0..10 {
            assert_eq!(
                w.track(C, &seg(ACK, seq, 8, 64240, 1000), false),
                Check::Accept
            );
            seq = seq.wrapping_add(1000);
            w.track(S, &seg(ACK, 8, seq, 65160, 0), false);
        }
    }

    #[test]
    fn the_window_scale_option_is_found_among_others() {
        // MSS, SACK permitted, timestamps, NOP, window scale 7.
        let opts = [
            2, 4, 5, 180, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7,
        ];
        assert_eq!(window_scale(&opts), Some(7));
        assert_eq!(window_scale(&[1, 3, 3, 20]), Some(14));
        assert_eq!(window_scale(&[2, 4, 5, 180]), None);
        assert_eq!(window_scale(&[3, 3]), None, "truncated");
        assert_eq!(window_scale(&[8, 0, 3, 3, 7]), None, "a zero length stops");
    }
}
