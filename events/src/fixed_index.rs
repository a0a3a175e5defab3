//! A fixed-size open-addressing index from a key's hash to an entry number,
//! for the worker-side tables (aggregation, attack episodes) that must not
//! allocate after start: linear probing, and backward-shift deletion so no
//! tombstones build up under churn. The entries (and their keys) live in
//! the caller's slab; the index keeps each slot's hash so it can move
//! entries without asking for their keys.

const EMPTY: u32 = u32::MAX;

pub(crate) struct FixedIndex {
    /// (hash, entry); `EMPTY` entry for a free slot. A power of two at
    /// least twice the entries, so probes stay short.
    slots: Box<[(u64, u32)]>,
}

/// Where a lookup ended.
pub(crate) enum Probe {
    Found(u32),
    /// Not there; this free slot is where it would go.
    Vacant(usize),
    /// Not within [`MAX_PROBE`] slots: the caller treats the table as full
    /// for this key, so keys chosen to collide (a flood of crafted
    /// addresses) cost a bounded walk, never the whole cluster.
    TooFar,
}

/// Slots a lookup walks at most.
pub(crate) const MAX_PROBE: usize = 32;

/// The hash of a key given as words, keyed by a table's secret `seed`.
///
/// Each word is xored into the state, which is then multiplied and
/// xor-shifted (both bijections, so keys that differ in one word never
/// share a 64-bit hash); the end is MurmurHash3's 64-bit finaliser, whose
/// every output bit depends on every input bit. The index takes the low
/// bits, so they must depend on the whole key: a multiply alone carries
/// only upwards, and left the slot of an IPv4 address to its first octet
/// (a flood on one /24 found 32 slots).
#[inline]
pub(crate) fn hash_words(seed: u64, words: &[u64]) -> u64 {
    let h = words.iter().fold(seed, |h, &w| {
        let h = (h ^ w).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        h ^ h >> 32
    });
    fmix64(h)
}

/// MurmurHash3's finaliser: full avalanche of a 64-bit state.
#[inline]
fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ h >> 33
}

/// A 16-byte address as two words for [`hash_words`].
#[inline]
pub(crate) fn addr_words(a: &[u8; 16]) -> [u64; 2] {
    let (hi, lo) = a.split_at(8);
    [hi, lo].map(|half| u64::from_le_bytes(half.try_into().unwrap_or_default()))
}

/// A per-table secret mixed into the hashes (from the process's random
/// hasher keys), so an attacker cannot precompute colliding keys.
pub(crate) fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0x5eed);
    h.finish()
}

impl FixedIndex {
    pub(crate) fn new(entries: usize) -> FixedIndex {
        FixedIndex {
            slots: vec![(0, EMPTY); (entries.max(1) * 2).next_power_of_two()].into_boxed_slice(),
        }
    }

    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    /// The entry with this hash for which `is_it` holds, or the slot to
    /// insert it at.
    #[inline]
    pub(crate) fn find(&self, hash: u64, mut is_it: impl FnMut(u32) -> bool) -> Probe {
        let mask = self.mask();
        let mut slot = hash as usize & mask;
        for _ in 0..MAX_PROBE.min(self.slots.len()) {
            let (h, at) = self.slots[slot];
            if at == EMPTY {
                return Probe::Vacant(slot);
            }
            if h == hash && is_it(at) {
                return Probe::Found(at);
            }
            slot = (slot + 1) & mask;
        }
        Probe::TooFar
    }

    /// Puts `at` in the slot a [`Probe::Vacant`] named.
    pub(crate) fn insert(&mut self, slot: usize, hash: u64, at: u32) {
        debug_assert_eq!(self.slots[slot].1, EMPTY);
        self.slots[slot] = (hash, at);
    }

    /// Removes entry `at` (indexed under `hash`).
    pub(crate) fn remove(&mut self, hash: u64, at: u32) {
        let mask = self.mask();
        let mut hole = hash as usize & mask;
        while self.slots[hole].1 != at {
            hole = (hole + 1) & mask;
        }
        let mut next = (hole + 1) & mask;
        loop {
            let (h, moving) = self.slots[next];
            if moving == EMPTY {
                break;
            }
            let home = h as usize & mask;
            // `moving` may fill the hole if its home is not in (hole, next].
            if (next.wrapping_sub(home) & mask) >= (next.wrapping_sub(hole) & mask) {
                self.slots[hole] = (h, moving);
                hole = next;
            }
            next = (next + 1) & mask;
        }
        self.slots[hole] = (0, EMPTY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// How many of `slots` slots `keys` land in, and the most in one.
    fn spread(seed: u64, keys: impl Iterator<Item = Vec<u64>>, slots: usize) -> (usize, usize) {
        let mut load = vec![0usize; slots];
        for k in keys {
            load[hash_words(seed, &k) as usize & (slots - 1)] += 1;
        }
        (
            load.iter().filter(|&&n| n > 0).count(),
            load.into_iter().max().unwrap_or(0),
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Keys that differ in one field only (one byte of one word: an
        /// address octet, a port, the ICMP type) spread over the index's
        /// slots like random keys: 4,096 keys over 8,192 slots fill about
        /// 79% of 4,096 distinct slots (1 - e^-0.5 of 8,192), with no slot
        /// holding more than a handful. The FxHash step this replaced put
        /// every IPv4 address of a /8 in the same 32 slots.
        #[test]
        fn keys_differing_in_one_field_spread_over_the_slots(
            seed in any::<u64>(),
            base in proptest::collection::vec(any::<u64>(), 7),
            word in 0usize..7,
            byte in 0u32..7,
        ) {
            const KEYS: u64 = 4096;
            let keys = (0..KEYS).map(|i| {
                let mut k = base.clone();
                // Two bytes of the field from `byte` on (a port, or an
                // octet and its neighbour), the rest of the key fixed.
                k[word] = (k[word] & !(0xffff << (8 * byte))) | i << (8 * byte);
                k
            });
            let (distinct, most) = spread(seed, keys, 2 * KEYS as usize);
            prop_assert!(distinct >= 3000, "{} distinct slots of 4096 keys", distinct);
            prop_assert!(most <= 12, "{} keys in one slot", most);
        }
    }

    /// Keys that all hash alike (what an attacker would craft) fill a
    /// bounded run of slots; past it lookups give up instead of walking
    /// the cluster, and removal keeps the others reachable.
    #[test]
    fn colliding_keys_cost_a_bounded_walk() {
        let mut index = FixedIndex::new(256);
        let mut stored = Vec::new();
        for at in 0..MAX_PROBE as u32 + 10 {
            match index.find(7, |_| false) {
                Probe::Vacant(slot) => {
                    index.insert(slot, 7, at);
                    stored.push(at);
                }
                Probe::TooFar => break,
                Probe::Found(_) => unreachable!(),
            }
        }
        assert_eq!(stored.len(), MAX_PROBE);
        index.remove(7, stored[3]);
        for &at in stored.iter().filter(|&&a| a != stored[3]) {
            assert!(matches!(index.find(7, |x| x == at), Probe::Found(x) if x == at));
        }
        assert!(matches!(index.find(7, |_| false), Probe::Vacant(_)));
    }
}
