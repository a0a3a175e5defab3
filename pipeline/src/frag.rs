//! Fragment tracking per worker: which byte ranges of a datagram were seen
//! (overlaps are the teardrop attack), and the ports of its first fragment
//! so later fragments, which carry no L4 header, join the same session.
//!
//! A direct-mapped table of fixed size: a datagram whose slot is taken by a
//! newer one is forgotten (its later fragments are then judged without
//! ports), so memory never grows under a fragment flood.
//!
//! Fragments that arrive before their datagram's first fragment (reordered
//! on the path or across queues) cannot be judged: they carry no ports.
//! The caller holds them in a [`FragHold`] until the first fragment has
//! decided the flow, then runs them again with the ports known (virtual
//! reassembly, as VPP's shallow reassembly does); the hold is bounded in
//! packets and in time, and what it gives up is counted.

use crate::flow::{Addr, FlowKey};
use crate::wire::ParsedPacket;

/// Fragments of one datagram more than this far apart are not related.
pub const FRAG_TIMEOUT_NS: u64 = 2_000_000_000;
/// Ranges remembered per datagram; beyond this, overlap checks stop
/// (real datagrams rarely have more than a handful of fragments).
const MAX_RANGES: usize = 8;

#[derive(Clone, Copy, Default)]
struct Slot {
    src: Addr,
    dst: Addr,
    id: u32,
    protocol: u8,
    used: bool,
    last_ns: u64,
    /// Ports from the first fragment, once seen.
    ports: Option<(u16, u16)>,
    /// Byte ranges seen, each with a hash of its bytes: an exact duplicate
    /// (same range, same bytes), which networks produce harmlessly, is not
    /// an overlap.
    ranges: [(u16, u32, u32); MAX_RANGES],
    nranges: u8,
}

impl Slot {
    /// The slot tracks `pkt`'s datagram, seen within the fragment timeout.
    fn is(&self, pkt: &ParsedPacket, now_ns: u64) -> bool {
        self.used
            && self.src == pkt.src
            && self.dst == pkt.dst
            && self.id == pkt.frag.id
            && self.protocol == pkt.protocol
            && now_ns.saturating_sub(self.last_ns) <= FRAG_TIMEOUT_NS
    }
}

/// What the table knows about a fragment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FragView {
    /// The fragment overlaps bytes another fragment already covered.
    pub overlap: bool,
    /// The datagram's 5-tuple with the first fragment's ports, when known.
    pub key: Option<FlowKey>,
}

pub struct FragTable {
    slots: Box<[Slot]>,
    mask: usize,
    digest_key: std::collections::hash_map::RandomState,
}

impl FragTable {
    pub fn new(slots: usize) -> FragTable {
        let n = slots.next_power_of_two();
        FragTable {
            slots: vec![Slot::default(); n].into_boxed_slice(),
            mask: n - 1,
            digest_key: std::collections::hash_map::RandomState::new(),
        }
    }

    #[inline]
    fn index(&self, pkt: &ParsedPacket) -> usize {
        let h = (pkt.src.0 as u64)
            ^ (pkt.dst.0 as u64).rotate_left(17)
            ^ (pkt.frag.id as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
            ^ pkt.protocol as u64;
        (h ^ (h >> 29)) as usize & self.mask
    }

    /// The slot of `pkt`'s datagram, if the table still tracks it.
    fn slot_of(&self, pkt: &ParsedPacket, now_ns: u64) -> Option<&Slot> {
        let slot = &self.slots[self.index(pkt)];
        slot.is(pkt, now_ns).then_some(slot)
    }

    /// The datagram's 5-tuple with its first fragment's ports, once that
    /// fragment was seen (for a held fragment run again); records nothing.
    pub fn key_of(&self, pkt: &ParsedPacket, now_ns: u64) -> Option<FlowKey> {
        let (src_port, dst_port) = self.slot_of(pkt, now_ns)?.ports?;
        Some(FlowKey {
            src: pkt.src,
            dst: pkt.dst,
            src_port,
            dst_port,
            protocol: pkt.protocol,
        })
    }

    /// Records a fragment of `frame` (call only when `pkt.frag.is_fragment`).
    pub fn observe(&mut self, pkt: &ParsedPacket, frame: &[u8], now_ns: u64) -> FragView {
        let i = self.index(pkt);
        let slot = &mut self.slots[i];
        if !slot.is(pkt, now_ns) {
            *slot = Slot {
                src: pkt.src,
                dst: pkt.dst,
                id: pkt.frag.id,
                protocol: pkt.protocol,
                used: true,
                ..Slot::default()
            };
        }
        slot.last_ns = now_ns;
        let start = pkt.frag.offset;
        let end = start as u32 + pkt.l4_len as u32;
        let from = usize::from(pkt.l4_offset);
        let bytes = frame
            .get(from..from + usize::from(pkt.l4_len))
            .unwrap_or(&[]);
        // Keyed (SipHash with a per-table random key): an attacker cannot
        // make an overlap with other bytes pass for a duplicate.
        let digest = {
            use std::hash::{BuildHasher, Hasher};
            let mut h = self.digest_key.build_hasher();
            h.write(bytes);
            h.finish() as u32
        };
        let seen = &slot.ranges[..slot.nranges as usize];
        let duplicate = seen.contains(&(start, end, digest));
        let overlap = !duplicate
            && seen
                .iter()
                .any(|&(s, e, _)| (start as u32) < e && (s as u32) < end);
        if !duplicate && (slot.nranges as usize) < MAX_RANGES {
            slot.ranges[slot.nranges as usize] = (start, end, digest);
            slot.nranges += 1;
        }
        if pkt.frag.offset == 0 && pkt.has_l4 {
            slot.ports = Some((pkt.src_port, pkt.dst_port));
        }
        FragView {
            overlap,
            key: slot.ports.map(|(src_port, dst_port)| FlowKey {
                src: pkt.src,
                dst: pkt.dst,
                src_port,
                dst_port,
                protocol: pkt.protocol,
            }),
        }
    }

    pub fn memory_bytes(&self) -> usize {
        self.slots.len() * std::mem::size_of::<Slot>()
    }
}

/// Identifies one IP datagram: what its fragments share.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DatagramKey {
    src: Addr,
    dst: Addr,
    id: u32,
    protocol: u8,
}

impl DatagramKey {
    pub fn of(pkt: &ParsedPacket) -> DatagramKey {
        DatagramKey {
            src: pkt.src,
            dst: pkt.dst,
            id: pkt.frag.id,
            protocol: pkt.protocol,
        }
    }
}

/// Fragments held until their datagram's first fragment arrives (see the
/// module doc), each with the caller's `T` (an mbuf, a capture index) and
/// its ingress interface. Fixed capacity, allocated once; no allocation
/// after [`FragHold::new`].
pub struct FragHold<T> {
    held: Vec<Option<Held<T>>>,
    len: usize,
    /// Arrival counter: the oldest entry goes first when the hold is full.
    next_seq: u64,
}

struct Held<T> {
    item: T,
    ingress: u16,
    key: DatagramKey,
    since_ns: u64,
    seq: u64,
}

/// Why a held fragment was given up (both are counted as drops).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GaveUp {
    /// Its first fragment did not arrive within [`FRAG_TIMEOUT_NS`].
    Timeout,
    /// The hold was full and this was the oldest fragment in it.
    HoldFull,
}

impl<T> FragHold<T> {
    /// Fragments held per worker by default.
    pub const DEFAULT_CAPACITY: usize = 64;

    pub fn new(capacity: usize) -> FragHold<T> {
        FragHold {
            held: (0..capacity.max(1)).map(|_| None).collect(),
            len: 0,
            next_seq: 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn capacity(&self) -> usize {
        self.held.len()
    }

    /// Holds a fragment of `pkt`'s datagram. When the hold is full the
    /// oldest fragment makes room and is handed back to be dropped
    /// ([`GaveUp::HoldFull`]).
    pub fn hold(
        &mut self,
        item: T,
        ingress: u16,
        pkt: &ParsedPacket,
        now_ns: u64,
    ) -> Option<(T, u16)> {
        let evicted = if self.len == self.held.len() {
            self.take_any()
        } else {
            None
        };
        if let Some(free) = self.held.iter_mut().find(|h| h.is_none()) {
            *free = Some(Held {
                item,
                ingress,
                key: DatagramKey::of(pkt),
                since_ns: now_ns,
                seq: self.next_seq,
            });
            self.next_seq += 1;
            self.len += 1;
        }
        evicted
    }

    /// The next fragment, in arrival order, held for `key`'s datagram
    /// (its first fragment has just been decided): call until `None`.
    pub fn take_released(&mut self, key: DatagramKey) -> Option<(T, u16)> {
        self.take_first(|h| h.key == key)
    }

    /// The next fragment held for [`FRAG_TIMEOUT_NS`] or longer: call
    /// until `None`.
    pub fn take_expired(&mut self, now_ns: u64) -> Option<(T, u16)> {
        self.take_first(|h| now_ns.saturating_sub(h.since_ns) >= FRAG_TIMEOUT_NS)
    }

    /// Any held fragment (shutdown, end of a capture): call until `None`.
    pub fn take_any(&mut self) -> Option<(T, u16)> {
        self.take_first(|_| true)
    }

    /// The oldest held entry that `pick` accepts.
    fn take_first(&mut self, pick: impl Fn(&Held<T>) -> bool) -> Option<(T, u16)> {
        if self.len == 0 {
            return None;
        }
        let i = (0..self.held.len())
            .filter(|&i| self.held[i].as_ref().is_some_and(&pick))
            .min_by_key(|&i| self.held[i].as_ref().map_or(u64::MAX, |h| h.seq))?;
        let h = self.held[i].take()?;
        self.len -= 1;
        Some((h.item, h.ingress))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::Addr;
    use crate::wire::build::{packet_vec, Ethernet, Fragment, Ip, L4};
    use crate::wire::{parse, Parsed};

    fn fragment(offset: u16, more: bool, payload: &[u8]) -> Vec<u8> {
        let mut ip = Ip::new(
            Addr::from_ipv4([198, 51, 100, 1]),
            Addr::from_ipv4([192, 0, 2, 10]),
        );
        ip.fragment = Some(Fragment {
            offset,
            more,
            id: 7,
        });
        packet_vec(&Ethernet::DEFAULT, &ip, &L4::Raw { protocol: 17 }, payload).unwrap()
    }

    fn observe(t: &mut FragTable, frame: &[u8]) -> bool {
        let Ok(Parsed::Ip(p)) = parse(frame) else {
            panic!("parses")
        };
        t.observe(&p, frame, 1).overlap
    }

    #[test]
    fn an_exact_duplicate_is_not_an_overlap_but_other_bytes_are() {
        let mut t = FragTable::new(16);
        let second = fragment(64, true, &[1; 64]);
        assert!(!observe(&mut t, &second));
        assert!(
            !observe(&mut t, &second),
            "a retransmitted copy is harmless"
        );
        assert!(
            observe(&mut t, &fragment(64, true, &[2; 64])),
            "same range, other bytes"
        );
        assert!(
            observe(&mut t, &fragment(96, true, &[1; 64])),
            "a shifted overlap"
        );
        assert!(!observe(&mut t, &fragment(160, false, &[1; 8])), "adjacent");
    }

    #[test]
    fn the_hold_is_bounded_and_hands_back_in_arrival_order() {
        let mut h: FragHold<u32> = FragHold::new(2);
        let Ok(Parsed::Ip(a)) = parse(&fragment(64, true, &[1; 8])) else {
            panic!()
        };
        let mut b = a;
        b.frag.id = 8;
        assert!(h.hold(1, 0, &a, 10).is_none());
        assert!(h.hold(2, 0, &b, 11).is_none());
        // Full: the oldest makes room.
        assert_eq!(h.hold(3, 1, &a, 12), Some((1, 0)));
        assert_eq!(h.len(), 2);
        assert_eq!(h.take_released(DatagramKey::of(&b)), Some((2, 0)));
        assert_eq!(h.take_released(DatagramKey::of(&b)), None);
        assert_eq!(h.take_expired(12 + FRAG_TIMEOUT_NS - 1), None);
        assert_eq!(h.take_expired(12 + FRAG_TIMEOUT_NS), Some((3, 1)));
        assert!(h.is_empty());
        h.hold(4, 0, &a, 0);
        h.hold(5, 0, &b, 0);
        assert_eq!(
            (h.take_any(), h.take_any(), h.take_any()),
            (Some((4, 0)), Some((5, 0)), None)
        );
    }
}
