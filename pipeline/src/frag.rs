//! Fragment tracking per worker: which byte ranges of a datagram were seen
//! (overlaps are the teardrop attack), and the ports of its first fragment
//! so later fragments, which carry no L4 header, join the same session.
//!
//! A direct-mapped table of fixed size: a datagram whose slot is taken by a
//! newer one is forgotten (its later fragments are then judged without
//! ports), so memory never grows under a fragment flood.

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
    ranges: [(u16, u32); MAX_RANGES],
    nranges: u8,
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
}

impl FragTable {
    pub fn new(slots: usize) -> FragTable {
        let n = slots.next_power_of_two();
        FragTable {
            slots: vec![Slot::default(); n].into_boxed_slice(),
            mask: n - 1,
        }
    }

    /// Records a fragment (call only when `pkt.frag.is_fragment`).
    pub fn observe(&mut self, pkt: &ParsedPacket, now_ns: u64) -> FragView {
        let h = (pkt.src.0 as u64)
            ^ (pkt.dst.0 as u64).rotate_left(17)
            ^ (pkt.frag.id as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
            ^ pkt.protocol as u64;
        let i = (h ^ (h >> 29)) as usize & self.mask;
        let slot = &mut self.slots[i];
        let same = slot.used
            && slot.src == pkt.src
            && slot.dst == pkt.dst
            && slot.id == pkt.frag.id
            && slot.protocol == pkt.protocol
            && now_ns.saturating_sub(slot.last_ns) <= FRAG_TIMEOUT_NS;
        if !same {
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
        let overlap = slot.ranges[..slot.nranges as usize]
            .iter()
            .any(|&(s, e)| (start as u32) < e && (s as u32) < end);
        if (slot.nranges as usize) < MAX_RANGES {
            slot.ranges[slot.nranges as usize] = (start, end);
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
