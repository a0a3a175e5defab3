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
    /// Byte ranges seen, each with a hash of its bytes: an exact duplicate
    /// (same range, same bytes), which networks produce harmlessly, is not
    /// an overlap.
    ranges: [(u16, u32, u32); MAX_RANGES],
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

    /// Records a fragment of `frame` (call only when `pkt.frag.is_fragment`).
    pub fn observe(&mut self, pkt: &ParsedPacket, frame: &[u8], now_ns: u64) -> FragView {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traffic::v4;
    use crate::wire::build::{packet_vec, Ethernet, Fragment, Ip, L4};
    use crate::wire::{parse, Parsed};

    fn fragment(offset: u16, more: bool, payload: &[u8]) -> Vec<u8> {
        let mut ip = Ip::new(v4(198, 51, 100, 1), v4(192, 0, 2, 10));
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
}
