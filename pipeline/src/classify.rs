//! First-match packet classification for policies and filter terms, built
//! once on the control plane and queried on the hot path without
//! allocating.
//!
//! # Model
//!
//! A [`Rule`] is a cross product, as a Junos policy is: any of its source
//! prefixes x any of its destination prefixes x any of its application
//! matches ([`AppMatch`]: protocol, source/destination port ranges, or ICMP
//! type/code; an empty `apps` list means any application). Rules are
//! ordered and [`Classifier::classify`] returns the index of the first rule
//! that matches. [`classify_linear`] is the plain in-order evaluation the
//! classifier is tested against.
//!
//! # Algorithm: bit vectors with aggregation
//!
//! Each application match of a rule becomes one *sub-rule*, numbered in rule
//! order, so the lowest matching sub-rule belongs to the first matching rule.
//! Five fields are looked up independently, each yielding the set of
//! sub-rules that accept the packet's value (Lakshman and Stiliadis'
//! bit-vector scheme); the answer is the lowest bit of their intersection.
//!
//! - **Addresses** (source, destination; IPv4 is mapped into IPv6, see
//!   [`crate::flow`]): prefixes are either nested or disjoint, so the
//!   prefixes containing an address form a chain. A binary search over the
//!   elementary intervals cut by all prefix boundaries finds the deepest
//!   prefix containing the address; its parent links give the rest of the
//!   chain. Each distinct prefix stores only the sub-rules that name it, so
//!   address memory is linear in the rule text (no prefix stores the rules
//!   of the prefixes around it), however deeply prefixes nest.
//! - **Protocol**: a 256-entry table of sets, plus the set of sub-rules
//!   with any protocol.
//! - **Two 16-bit keys**: source and destination port for TCP/UDP and other
//!   protocols; `type << 8 | code` and 0 for ICMP/ICMPv6. Each is cut into
//!   elementary intervals with a set per interval, plus the set of sub-rules
//!   that accept any value (kept apart, so catch-all ports cost nothing per
//!   interval). Overlapping wide ranges would repeat in many intervals, so
//!   when the interval sets would exceed 32 words per sub-rule the field is
//!   built in *block* form instead: each range split into at most 30 aligned
//!   blocks, which nest like prefixes and are looked up exactly like
//!   addresses (memory linear in the rules, lookups somewhat slower).
//!
//! Every set is stored sparsely as an *aggregated bit vector*: one summary
//! bit per 64-bit word of the full vector (set when that word is non-zero)
//! and only the non-zero words. A lookup ANDs the summaries of the five
//! fields (OR-ing the few sets of each field), and only for the surviving
//! words fetches and ANDs the real words, in ascending order, stopping at
//! the first non-zero one. Cost: `O(log intervals)` per field plus
//! `O(sub-rules / 4096)` summary words plus the candidate words; nothing is
//! allocated.
//!
//! When the sub-rules of an address's deepest prefix and of every prefix
//! containing it all lie in one word (a host named by a few rules, inside
//! no named prefix: the common shape of a large policy), that word is the
//! only one that can hold the answer. Each prefix keeps it precomputed
//! (`OneWord`), so the lookup reads one entry and ANDs the other fields'
//! words at that one index, skipping the summaries.
//!
//! # Memory
//!
//! [`Classifier::memory_bytes`] reports the exact footprint and
//! [`Classifier::stats`] the sizes behind it. Per set it is
//! `12 x ceil(sub-rules / 4096)` bytes of summaries and ranks plus 8 bytes per
//! non-zero word. Address, protocol and block-form key sets hold at most one
//! word per (sub-rule, prefix or block), so they grow linearly with the rule
//! text however prefixes nest or ranges overlap; interval-form key sets are
//! capped at 32 words (256 bytes) per sub-rule per field before the block
//! form takes over. Measured (`benches/classify.rs`, synthetic policy-like
//! sets): 10,000 rules / 19,436 sub-rules / ~11,000 elementary intervals per
//! address field take 1.7 MiB; 10,000 rules of random overlapping port
//! ranges up to 30,000 ports wide take 8 MiB (83 MiB with per-interval sets).
//!
//! Up to [`LINEAR_MAX`] rules, [`Classifier::build`] keeps the rules and
//! scans them, which is as fast at that size.

pub use crate::config::{AppMatch, PortRange};
use crate::flow::{proto, Addr, Prefix};
use std::collections::HashMap;

/// A rule: any source prefix, any destination prefix, any application
/// (an empty `apps` list means any application; an empty `src` or `dst`
/// list matches nothing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub src: Vec<Prefix>,
    pub dst: Vec<Prefix>,
    pub apps: Vec<AppMatch>,
}

/// What is looked up. For ICMP/ICMPv6 the ports are ignored and
/// `icmp_type`/`icmp_code` are used; for other protocols the reverse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Query {
    pub src: Addr,
    pub dst: Addr,
    pub protocol: u8,
    pub src_port: u16,
    pub dst_port: u16,
    pub icmp_type: u8,
    pub icmp_code: u8,
}

fn is_icmp(protocol: u8) -> bool {
    protocol == proto::ICMP || protocol == proto::ICMPV6
}

impl Query {
    /// The two 16-bit keys (ports, or ICMP type/code).
    #[inline]
    fn keys(&self) -> (u16, u16) {
        if is_icmp(self.protocol) {
            (((self.icmp_type as u16) << 8) | self.icmp_code as u16, 0)
        } else {
            (self.src_port, self.dst_port)
        }
    }
}

/// The ranges an application match covers on the two 16-bit keys.
fn key_ranges(app: &AppMatch) -> (PortRange, PortRange) {
    match app.protocol {
        Some(p) if is_icmp(p) => {
            let a = match (app.icmp_type, app.icmp_code) {
                (None, _) => PortRange::ANY,
                (Some(t), None) => PortRange {
                    lo: (t as u16) << 8,
                    hi: ((t as u16) << 8) | 0xff,
                },
                (Some(t), Some(c)) => PortRange::single(((t as u16) << 8) | c as u16),
            };
            (a, PortRange::ANY)
        }
        _ => (app.src_ports, app.dst_ports),
    }
}

/// Whether a query matches one application match.
pub fn app_matches(app: &AppMatch, q: &Query) -> bool {
    if app.protocol.is_some_and(|p| p != q.protocol) {
        return false;
    }
    let (a, b) = key_ranges(app);
    let (ka, kb) = q.keys();
    a.contains(ka) && b.contains(kb)
}

impl Rule {
    /// Straightforward evaluation, the reference the classifier is tested against.
    pub fn matches(&self, q: &Query) -> bool {
        self.src.iter().any(|p| p.contains(q.src))
            && self.dst.iter().any(|p| p.contains(q.dst))
            && (self.apps.is_empty() || self.apps.iter().any(|a| app_matches(a, q)))
    }
}

/// First matching rule by plain iteration.
pub fn classify_linear(rules: &[Rule], q: &Query) -> Option<u32> {
    rules.iter().position(|r| r.matches(q)).map(|i| i as u32)
}

const NONE: u32 = u32::MAX;

/// The index of the last element `<= key` in ascending `v`, whose first
/// element is the smallest key. Branch-free (the loop count depends only on
/// `v.len()`), since random lookups would mispredict every step of a
/// branching search.
#[inline(always)]
fn floor_index<K: Copy + Ord>(v: &[K], key: K) -> usize {
    let mut base = 0;
    let mut len = v.len();
    while len > 1 {
        let half = len / 2;
        // LLVM turns both `if` and arithmetic forms into a branch here.
        base = std::hint::select_unpredictable(v[base + half] <= key, base + half, base);
        len -= half;
    }
    base
}

/// Keys sampled into [`SortedKeys::top`]: 16 `u32` keys are one cache line.
const STRIDE: usize = 16;

/// A sorted key array searched in two steps: the sampled keys (every
/// [`STRIDE`]-th, small enough to stay in L1), then one block of `STRIDE`
/// keys. With 20,000 intervals (10,000 /32 policies) a lookup touches one
/// or two lines of the big array instead of a dependent miss per halving.
struct SortedKeys<K> {
    keys: Vec<K>,
    top: Vec<K>,
}

impl<K: Copy + Ord> SortedKeys<K> {
    /// `keys`: ascending, the first one the smallest key a lookup may ask.
    fn new(keys: Vec<K>) -> Self {
        let top = keys.iter().step_by(STRIDE).copied().collect();
        SortedKeys { keys, top }
    }

    /// [`floor_index`] over `keys` (what [`SortedKeys::block`] and
    /// [`SortedKeys::floor_in`] give in two steps).
    #[cfg(test)]
    fn floor(&self, key: K) -> usize {
        self.floor_in(self.block(key), key)
    }

    /// The first step of [`SortedKeys::floor`]: the start of the block
    /// of `keys` the answer is in (from the sampled keys alone).
    #[inline(always)]
    fn block(&self, key: K) -> usize {
        floor_index(&self.top, key) * STRIDE
    }

    /// The second step: the answer within the block at `start`.
    #[inline(always)]
    fn floor_in(&self, start: usize, key: K) -> usize {
        let end = (start + STRIDE).min(self.keys.len());
        start + floor_index(&self.keys[start..end], key)
    }

    fn addr(&self, i: usize) -> *const u8 {
        (&self.keys[i] as *const K).cast()
    }

    fn len(&self) -> usize {
        self.keys.len()
    }

    fn memory_bytes(&self) -> usize {
        (self.keys.len() + self.top.len()) * std::mem::size_of::<K>()
    }
}

/// All sparse sets of one classifier in three flat arenas.
///
/// Set `id` owns summary words `agg[id * aggs ..][..aggs]`: bit `j` of
/// summary word `a` says whether word `a * 64 + j` of the full bit vector is
/// non-zero. `rank[id * aggs + a]` is the index in `words` of the first
/// non-zero word under summary word `a`. Set 0 is the empty set.
struct Sets {
    aggs: usize,
    agg: Vec<u64>,
    rank: Vec<u32>,
    words: Vec<u64>,
}

impl Sets {
    fn new(aggs: usize) -> Sets {
        Sets {
            aggs,
            agg: vec![0; aggs],
            rank: vec![0; aggs],
            words: Vec::new(),
        }
    }

    fn open(&mut self) -> usize {
        let base = self.agg.len();
        self.agg.resize(base + self.aggs, 0);
        self.rank.resize(base + self.aggs, 0);
        base
    }

    fn close(&mut self, base: usize, first_word: usize) -> u32 {
        let mut at = first_word;
        for a in 0..self.aggs {
            self.rank[base + a] = at as u32;
            at += self.agg[base + a].count_ones() as usize;
        }
        (base / self.aggs) as u32
    }

    /// A set from ascending sub-rule numbers (duplicates allowed).
    fn push_sorted(&mut self, members: &[u32]) -> u32 {
        if members.is_empty() {
            return 0;
        }
        let base = self.open();
        let first = self.words.len();
        let mut cur = NONE as usize;
        for &m in members {
            let k = m as usize / 64;
            if k != cur {
                cur = k;
                self.words.push(0);
                self.agg[base + k / 64] |= 1 << (k % 64);
            }
            *self.words.last_mut().expect("pushed") |= 1 << (m % 64);
        }
        self.close(base, first)
    }

    /// A set from a dense bit vector.
    fn push_dense(&mut self, dense: &[u64]) -> u32 {
        if dense.iter().all(|w| *w == 0) {
            return 0;
        }
        let base = self.open();
        let first = self.words.len();
        for (k, &w) in dense.iter().enumerate() {
            if w != 0 {
                self.words.push(w);
                self.agg[base + k / 64] |= 1 << (k % 64);
            }
        }
        self.close(base, first)
    }

    fn mark(&self) -> (usize, usize) {
        (self.agg.len(), self.words.len())
    }

    fn rollback(&mut self, (agg, words): (usize, usize)) {
        self.agg.truncate(agg);
        self.rank.truncate(agg);
        self.words.truncate(words);
    }

    #[inline(always)]
    fn summary(&self, set: u32, a: usize) -> u64 {
        self.agg[set as usize * self.aggs + a]
    }

    /// Word `a * 64 + b` of a set.
    #[inline(always)]
    fn word(&self, set: u32, a: usize, b: u32) -> u64 {
        let i = set as usize * self.aggs + a;
        let s = self.agg[i];
        if s & (1 << b) == 0 {
            return 0;
        }
        let below = (s & ((1u64 << b) - 1)).count_ones() as usize;
        self.words[self.rank[i] as usize + below]
    }

    fn count(&self) -> usize {
        self.agg.len() / self.aggs
    }

    /// How many non-zero words a set stores.
    fn word_count(&self, set: u32) -> usize {
        let base = set as usize * self.aggs;
        self.agg[base..base + self.aggs]
            .iter()
            .map(|s| s.count_ones() as usize)
            .sum()
    }

    /// A set's first non-zero word: its index in the full bit vector and
    /// its bits (`None`: empty).
    fn first_word(&self, set: u32) -> Option<(usize, u64)> {
        let base = set as usize * self.aggs;
        let a = (0..self.aggs).find(|&a| self.agg[base + a] != 0)?;
        let bit = self.agg[base + a].trailing_zeros() as usize;
        Some((a * 64 + bit, self.words[self.rank[base + a] as usize]))
    }

    /// Where a set's first summary word and first rank are.
    fn head_addrs(&self, set: u32) -> [*const u8; 2] {
        let i = set as usize * self.aggs;
        [
            (&self.agg[i] as *const u64).cast(),
            (&self.rank[i] as *const u32).cast(),
        ]
    }

    /// A set's lowest member (`None`: empty).
    fn first_member(&self, set: u32) -> Option<usize> {
        self.first_word(set)
            .map(|(w, bits)| w * 64 + bits.trailing_zeros() as usize)
    }

    /// Where a set's first stored word is (`None`: it stores none).
    fn first_word_addr(&self, set: u32) -> Option<*const u8> {
        let first = self.rank[set as usize * self.aggs] as usize;
        self.words.get(first).map(|w| (w as *const u64).cast())
    }

    fn memory_bytes(&self) -> usize {
        self.agg.len() * 8 + self.rank.len() * 4 + self.words.len() * 8
    }
}

/// An address field: elementary intervals, each naming its deepest
/// containing prefix; prefixes link to their parents.
struct AddrField {
    starts: SortedKeys<u128>,
    /// Deepest prefix containing each interval, or `NONE`.
    deepest: Vec<u32>,
    /// The same intervals clipped to the IPv4-mapped range, as 32-bit
    /// keys: four times denser, so IPv4 lookups touch fewer cache lines.
    v4_starts: SortedKeys<u32>,
    v4_deepest: Vec<u32>,
    parent: Vec<u32>,
    set: Vec<u32>,
    /// Per prefix: its chain's sub-rules when they all lie in one word.
    one_word: Vec<OneWord>,
}

/// The sub-rules of a prefix and of every prefix containing it, when they
/// all lie in one 64-bit word of the bit vector (a host named by a few
/// rules, inside no named prefix): the word's index and bits. A lookup
/// then reads this one entry instead of the summary, rank and word of
/// every set on the chain, and only that word can hold the answer.
#[derive(Clone, Copy, Debug)]
struct OneWord {
    /// `NONE`: the chain's sub-rules span several words.
    index: u32,
    bits: u64,
}

/// [`OneWord`] of the chain from `node` up (`parent` links, `set` per node).
fn one_word_of_chain(sets: &Sets, set: &[u32], parent: &[u32], mut node: u32) -> OneWord {
    const MANY: OneWord = OneWord {
        index: NONE,
        bits: 0,
    };
    let mut found: Option<(usize, u64)> = None;
    while node != NONE {
        let s = set[node as usize];
        match (sets.word_count(s), sets.first_word(s), found) {
            (0, _, _) => {}
            (1, Some(w), None) => found = Some(w),
            (1, Some((i, bits)), Some((j, acc))) if i == j => found = Some((i, acc | bits)),
            _ => return MANY,
        }
        node = parent[node as usize];
    }
    found.map_or(MANY, |(index, bits)| OneWord {
        index: index as u32,
        bits,
    })
}

impl AddrField {
    /// `prefixes`: distinct prefixes with the ascending sub-rules naming each.
    fn build(mut prefixes: Vec<(Prefix, Vec<u32>)>, sets: &mut Sets) -> AddrField {
        let range = |p: &Prefix| (p.addr.0, p.addr.0 | !Prefix::mask(p.len));
        // Containers before what they contain.
        prefixes.sort_unstable_by_key(|(p, _)| (p.addr.0, p.len));
        let mut starts = vec![0u128];
        for (p, _) in &prefixes {
            let (lo, hi) = range(p);
            starts.push(lo);
            if let Some(next) = hi.checked_add(1) {
                starts.push(next);
            }
        }
        starts.sort_unstable();
        starts.dedup();

        let mut parent = vec![NONE; prefixes.len()];
        let mut stack: Vec<usize> = Vec::new();
        for (i, (p, _)) in prefixes.iter().enumerate() {
            let lo = p.addr.0;
            while stack.last().is_some_and(|&t| range(&prefixes[t].0).1 < lo) {
                stack.pop();
            }
            parent[i] = stack.last().map_or(NONE, |&t| t as u32);
            stack.push(i);
        }

        let mut deepest = vec![NONE; starts.len()];
        stack.clear();
        let mut next = 0;
        for (i, &x) in starts.iter().enumerate() {
            while stack.last().is_some_and(|&t| range(&prefixes[t].0).1 < x) {
                stack.pop();
            }
            while next < prefixes.len() && prefixes[next].0.addr.0 == x {
                stack.push(next);
                next += 1;
            }
            deepest[i] = stack.last().map_or(NONE, |&t| t as u32);
        }

        let v4_base = Addr::from_ipv4([0; 4]).0;
        let first = floor_index(&starts, v4_base);
        let mut v4_starts = vec![0u32];
        let mut v4_deepest = vec![deepest[first]];
        for (&x, &d) in starts[first + 1..].iter().zip(&deepest[first + 1..]) {
            if x > v4_base | u32::MAX as u128 {
                break;
            }
            v4_starts.push((x - v4_base) as u32);
            v4_deepest.push(d);
        }

        let set = prefixes.iter().map(|(_, m)| sets.push_sorted(m)).collect();
        AddrField {
            starts: SortedKeys::new(starts),
            deepest,
            v4_starts: SortedKeys::new(v4_starts),
            v4_deepest,
            parent,
            set,
            one_word: Vec::new(),
        }
    }

    /// Fills in every prefix's [`OneWord`] (the two address fields; the
    /// block form of a key field never reads it).
    fn with_one_words(mut self, sets: &Sets) -> AddrField {
        self.one_word = (0..self.set.len() as u32)
            .map(|node| one_word_of_chain(sets, &self.set, &self.parent, node))
            .collect();
        self
    }

    /// The one word holding every sub-rule of `node`'s chain, if there is
    /// one ([`OneWord`]): its index and bits.
    #[inline(always)]
    fn one_word(&self, node: u32) -> Option<(usize, u64)> {
        let w = self.one_word[node as usize];
        (w.index != NONE).then_some((w.index as usize, w.bits))
    }

    fn one_word_addr(&self, node: u32) -> *const u8 {
        (&self.one_word[node as usize] as *const OneWord).cast()
    }

    #[inline(always)]
    fn lookup(&self, addr: Addr) -> u32 {
        self.node(addr, self.interval(addr, self.block(addr)))
    }

    /// [`AddrField::lookup`] in three steps, so that a batch can take each
    /// step for every query before the next ([`Classifier::classify_batch`]):
    /// the block of interval starts (from the sampled keys, in cache)...
    #[inline(always)]
    fn block(&self, addr: Addr) -> usize {
        if addr.is_ipv4() {
            self.v4_starts.block(addr.0 as u32)
        } else {
            self.starts.block(addr.0)
        }
    }

    fn block_addr(&self, addr: Addr, block: usize) -> *const u8 {
        if addr.is_ipv4() {
            self.v4_starts.addr(block)
        } else {
            self.starts.addr(block)
        }
    }

    /// ...the elementary interval within it...
    #[inline(always)]
    fn interval(&self, addr: Addr, block: usize) -> usize {
        if addr.is_ipv4() {
            self.v4_starts.floor_in(block, addr.0 as u32)
        } else {
            self.starts.floor_in(block, addr.0)
        }
    }

    fn interval_addr(&self, addr: Addr, interval: usize) -> *const u8 {
        let deepest = if addr.is_ipv4() {
            &self.v4_deepest
        } else {
            &self.deepest
        };
        (&deepest[interval] as *const u32).cast()
    }

    /// ...and the deepest prefix containing it.
    #[inline(always)]
    fn node(&self, addr: Addr, interval: usize) -> u32 {
        if addr.is_ipv4() {
            self.v4_deepest[interval]
        } else {
            self.deepest[interval]
        }
    }

    /// `node`'s set (`None`: no node).
    fn set_of(&self, node: u32) -> Option<u32> {
        self.set.get(node as usize).copied()
    }

    /// OR of the summaries along the chain from `node` up.
    #[inline(always)]
    fn summary(&self, sets: &Sets, mut node: u32, a: usize) -> u64 {
        let mut s = 0;
        while node != NONE {
            s |= sets.summary(self.set[node as usize], a);
            node = self.parent[node as usize];
        }
        s
    }

    #[inline(always)]
    fn word(&self, sets: &Sets, mut node: u32, a: usize, b: u32) -> u64 {
        let mut w = 0;
        while node != NONE {
            w |= sets.word(self.set[node as usize], a, b);
            node = self.parent[node as usize];
        }
        w
    }

    fn memory_bytes(&self) -> usize {
        self.starts.memory_bytes()
            + self.v4_starts.memory_bytes()
            + (self.deepest.len() + self.v4_deepest.len() + self.parent.len() + self.set.len()) * 4
            + self.one_word.len() * std::mem::size_of::<OneWord>()
    }
}

/// A 16-bit key field cut into elementary intervals, a set per interval,
/// plus the set of sub-rules accepting any value. Fastest, but a range
/// spanning many intervals is stored in each of them.
struct KeyField {
    starts: Vec<u16>,
    set: Vec<u32>,
    any: u32,
}

impl KeyField {
    /// `None` (and `sets` unchanged) when the interval sets would hold more
    /// than `budget` words.
    fn build(
        ranges: &[PortRange],
        words: usize,
        budget: usize,
        sets: &mut Sets,
    ) -> Option<KeyField> {
        let mark = sets.mark();
        let mut any = Vec::new();
        // (position, sub-rule, add?) sweep events.
        let mut events: Vec<(u16, u32, bool)> = Vec::new();
        for (sub, r) in ranges.iter().enumerate() {
            if r.is_any() {
                any.push(sub as u32);
            } else if r.lo <= r.hi {
                events.push((r.lo, sub as u32, true));
                if let Some(end) = r.hi.checked_add(1) {
                    events.push((end, sub as u32, false));
                }
            }
        }
        events.sort_unstable();
        let mut starts = vec![0u16];
        starts.extend(events.iter().map(|e| e.0));
        starts.dedup();
        let mut active = vec![0u64; words];
        let mut set = Vec::with_capacity(starts.len());
        let mut e = 0;
        for &x in &starts {
            while e < events.len() && events[e].0 == x {
                let (_, sub, add) = events[e];
                let bit = 1u64 << (sub % 64);
                if add {
                    active[sub as usize / 64] |= bit;
                } else {
                    active[sub as usize / 64] &= !bit;
                }
                e += 1;
            }
            set.push(sets.push_dense(&active));
            if sets.words.len() - mark.1 > budget {
                sets.rollback(mark);
                return None;
            }
        }
        Some(KeyField {
            starts,
            set,
            any: sets.push_sorted(&any),
        })
    }

    fn memory_bytes(&self) -> usize {
        self.starts.len() * 2 + self.set.len() * 4
    }
}

/// A 16-bit key field: elementary intervals when their sets stay within
/// budget, else aligned blocks with parent chains (memory linear in the
/// rules, at most 30 blocks per range, a little slower to look up).
enum KeyIndex {
    Intervals(KeyField),
    Blocks(AddrField),
}

impl KeyIndex {
    /// Words the interval form may store before the block form is used:
    /// 32 per sub-rule (256 bytes), about what 30 blocks per range cost.
    const WORDS_PER_SUB_RULE: usize = 32;

    fn build(ranges: &[PortRange], words: usize, blocks: bool, sets: &mut Sets) -> KeyIndex {
        let budget = Self::WORDS_PER_SUB_RULE * ranges.len() + 1024;
        if !blocks {
            if let Some(f) = KeyField::build(ranges, words, budget, sets) {
                return KeyIndex::Intervals(f);
            }
        }
        let blocks: Vec<Vec<Prefix>> = ranges.iter().map(|r| key_blocks(*r)).collect();
        let grouped = group_prefixes(
            blocks
                .iter()
                .enumerate()
                .map(|(sub, b)| (sub as u32, b.as_slice())),
        );
        KeyIndex::Blocks(AddrField::build(grouped, sets))
    }

    /// The interval index, or the deepest block (`NONE`: nothing matches).
    #[inline(always)]
    fn lookup(&self, key: u16) -> u32 {
        match self {
            KeyIndex::Intervals(f) => floor_index(&f.starts, key) as u32,
            KeyIndex::Blocks(f) => f.lookup(key_point(key)),
        }
    }

    #[inline(always)]
    fn summary(&self, sets: &Sets, at: u32, a: usize) -> u64 {
        match self {
            KeyIndex::Intervals(f) => sets.summary(f.set[at as usize], a) | sets.summary(f.any, a),
            KeyIndex::Blocks(f) => f.summary(sets, at, a),
        }
    }

    #[inline(always)]
    fn word(&self, sets: &Sets, at: u32, a: usize, b: u32) -> u64 {
        match self {
            KeyIndex::Intervals(f) => sets.word(f.set[at as usize], a, b) | sets.word(f.any, a, b),
            KeyIndex::Blocks(f) => f.word(sets, at, a, b),
        }
    }

    fn intervals(&self) -> usize {
        match self {
            KeyIndex::Intervals(f) => f.starts.len(),
            KeyIndex::Blocks(f) => f.starts.len(),
        }
    }

    fn blocks(&self) -> usize {
        match self {
            KeyIndex::Intervals(_) => 0,
            KeyIndex::Blocks(f) => f.set.len(),
        }
    }

    fn memory_bytes(&self) -> usize {
        match self {
            KeyIndex::Intervals(f) => f.memory_bytes(),
            KeyIndex::Blocks(f) => f.memory_bytes(),
        }
    }
}

/// A 16-bit key as a point of the field's 128-bit space (its top bits),
/// so ports reuse the prefix machinery of addresses.
#[inline(always)]
fn key_point(key: u16) -> Addr {
    Addr((key as u128) << 112)
}

/// The aligned blocks covering `r` (at most 30), as prefixes of the 16-bit
/// key space placed like [`key_point`]. Blocks, unlike arbitrary ranges,
/// nest or are disjoint, so a key field stores each sub-rule once per
/// block instead of once per elementary interval its range spans.
fn key_blocks(r: PortRange) -> Vec<Prefix> {
    let mut out = Vec::new();
    let (mut lo, hi) = (r.lo as u32, r.hi as u32);
    while lo <= hi {
        let mut size: u32 = if lo == 0 {
            1 << 16
        } else {
            1 << lo.trailing_zeros()
        };
        while lo + size - 1 > hi {
            size >>= 1;
        }
        let len = 16 - size.trailing_zeros() as u8;
        out.push(Prefix::new(key_point(lo as u16), len));
        lo += size;
    }
    out
}

#[inline(always)]
fn summary2(sets: &Sets, pair: [u32; 2], a: usize) -> u64 {
    sets.summary(pair[0], a) | sets.summary(pair[1], a)
}

#[inline(always)]
fn word2(sets: &Sets, pair: [u32; 2], a: usize, b: u32) -> u64 {
    sets.word(pair[0], a, b) | sets.word(pair[1], a, b)
}

/// Sizes of a built classifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stats {
    pub rules: usize,
    pub sub_rules: usize,
    pub src_prefixes: usize,
    pub dst_prefixes: usize,
    pub src_intervals: usize,
    pub dst_intervals: usize,
    pub port_intervals: usize,
    /// Distinct aligned port blocks (key fields in block form).
    pub port_blocks: usize,
    pub sets: usize,
    pub stored_words: usize,
    pub memory_bytes: usize,
}

/// Rule sets up to this size are scanned in order instead: around ten
/// policy-like rules the scan and the five field lookups cost the same
/// (~55 ns each; measured by `benches/classify.rs`), and from twenty rules
/// on the bit vectors win.
pub const LINEAR_MAX: usize = 8;

/// Address intervals (both fields) above which lookups are batched: 4,096
/// 16-byte interval starts are 64 KiB, past a first-level cache.
const BATCH_MIN_INTERVALS: usize = 4096;

/// The compiled classifier (immutable; share it between workers).
pub struct Classifier {
    rules: usize,
    /// Its address tables outgrow the L1 cache: [`Classifier::classify_batch`]
    /// steps through them for a whole batch (below that, the steps'
    /// bookkeeping costs more than the misses they hide; measured with
    /// `benches/classify.rs`).
    batched: bool,
    /// A copy of the rules when there are at most [`LINEAR_MAX`] of them
    /// (then `classify` scans it); empty otherwise.
    small: Vec<Rule>,
    /// Sub-rule -> rule index (non-decreasing).
    owner: Vec<u32>,
    sets: Sets,
    src: AddrField,
    dst: AddrField,
    protocol: [u32; 256],
    any_protocol: u32,
    /// Source port, or ICMP `type << 8 | code`.
    key_a: KeyIndex,
    /// Destination port (0 for ICMP).
    key_b: KeyIndex,
}

/// Distinct prefixes of one address field with their sub-rules.
fn group_prefixes<'a>(
    per_sub: impl Iterator<Item = (u32, &'a [Prefix])>,
) -> Vec<(Prefix, Vec<u32>)> {
    let mut index: HashMap<Prefix, usize> = HashMap::new();
    let mut out: Vec<(Prefix, Vec<u32>)> = Vec::new();
    for (sub, prefixes) in per_sub {
        for p in prefixes {
            let p = Prefix::new(p.addr, p.len);
            let i = *index.entry(p).or_insert_with(|| {
                out.push((p, Vec::new()));
                out.len() - 1
            });
            // Sub-rules arrive in ascending order; skip a prefix listed twice.
            if out[i].1.last() != Some(&sub) {
                out[i].1.push(sub);
            }
        }
    }
    out
}

impl Classifier {
    /// Compiles `rules`: a linear scan for at most [`LINEAR_MAX`] rules, the
    /// bit-vector classifier above that.
    pub fn build(rules: &[Rule]) -> Classifier {
        let mut c = Classifier::build_bitvector(rules);
        if rules.len() <= LINEAR_MAX {
            c.small = rules.to_vec();
            c.batched = false;
        }
        c
    }

    /// Compiles `rules` into the bit-vector classifier whatever their number.
    pub fn build_bitvector(rules: &[Rule]) -> Classifier {
        Classifier::build_inner(rules, false)
    }

    /// `blocks`: key fields in block form whatever their size (tests).
    fn build_inner(rules: &[Rule], blocks: bool) -> Classifier {
        // Expand rules into sub-rules (one per distinct application match).
        let mut owner = Vec::new();
        let mut apps: Vec<AppMatch> = Vec::new();
        for (r, rule) in rules.iter().enumerate() {
            let start = apps.len();
            let list: &[AppMatch] = if rule.apps.is_empty() {
                &[AppMatch::ANY]
            } else {
                &rule.apps
            };
            for app in list {
                if !apps[start..].contains(app) {
                    apps.push(*app);
                    owner.push(r as u32);
                }
            }
        }
        let words = owner.len().div_ceil(64).max(1);
        let aggs = words.div_ceil(64);
        let mut sets = Sets::new(aggs);

        let src = group_prefixes(
            owner
                .iter()
                .enumerate()
                .map(|(sub, &r)| (sub as u32, rules[r as usize].src.as_slice())),
        );
        let src = AddrField::build(src, &mut sets).with_one_words(&sets);
        let dst = group_prefixes(
            owner
                .iter()
                .enumerate()
                .map(|(sub, &r)| (sub as u32, rules[r as usize].dst.as_slice())),
        );
        let dst = AddrField::build(dst, &mut sets).with_one_words(&sets);

        let mut by_proto: Vec<Vec<u32>> = vec![Vec::new(); 256];
        let mut any_proto = Vec::new();
        for (sub, app) in apps.iter().enumerate() {
            match app.protocol {
                Some(p) => by_proto[p as usize].push(sub as u32),
                None => any_proto.push(sub as u32),
            }
        }
        let mut protocol = [0u32; 256];
        for (p, members) in by_proto.iter().enumerate() {
            protocol[p] = sets.push_sorted(members);
        }
        let any_protocol = sets.push_sorted(&any_proto);

        let (ka, kb): (Vec<PortRange>, Vec<PortRange>) = apps.iter().map(key_ranges).unzip();
        let key_a = KeyIndex::build(&ka, words, blocks, &mut sets);
        let key_b = KeyIndex::build(&kb, words, blocks, &mut sets);

        Classifier {
            rules: rules.len(),
            batched: src.starts.len() + dst.starts.len() > BATCH_MIN_INTERVALS,
            small: Vec::new(),
            owner,
            sets,
            src,
            dst,
            protocol,
            any_protocol,
            key_a,
            key_b,
        }
    }

    /// The index of the first rule matching `q`.
    #[inline]
    pub fn classify(&self, q: &Query) -> Option<u32> {
        if !self.small.is_empty() {
            return classify_linear(&self.small, q);
        }
        self.classify_located(q, self.src.lookup(q.src), self.dst.lookup(q.dst))
    }

    /// [`Classifier::classify`] for each of `queries` into `out`, as a
    /// batch: the address lookups (the steps that miss the cache in a
    /// large classifier) go step by step over the whole batch, each step
    /// prefetching what the next reads, so the misses of different
    /// queries overlap instead of adding up; the rest runs per query.
    pub fn classify_batch<P: crate::prefetch::Prefetch>(
        &self,
        queries: &[Query],
        out: &mut [Option<u32>],
    ) {
        let prefetch = P::prefetch;
        const BATCH: usize = 32;
        if !self.batched {
            for (q, o) in queries.iter().zip(out.iter_mut()) {
                *o = self.classify(q);
            }
            return;
        }
        for (queries, out) in queries.chunks(BATCH).zip(out.chunks_mut(BATCH)) {
            let n = queries.len().min(out.len());
            let mut src = [0usize; BATCH];
            let mut dst = [0usize; BATCH];
            for (i, q) in queries[..n].iter().enumerate() {
                src[i] = self.src.block(q.src);
                dst[i] = self.dst.block(q.dst);
                prefetch(self.src.block_addr(q.src, src[i]));
                prefetch(self.dst.block_addr(q.dst, dst[i]));
            }
            for (i, q) in queries[..n].iter().enumerate() {
                src[i] = self.src.interval(q.src, src[i]);
                dst[i] = self.dst.interval(q.dst, dst[i]);
                prefetch(self.src.interval_addr(q.src, src[i]));
                prefetch(self.dst.interval_addr(q.dst, dst[i]));
            }
            let mut nodes = [(NONE, NONE); BATCH];
            for (i, q) in queries[..n].iter().enumerate() {
                let (s, d) = (self.src.node(q.src, src[i]), self.dst.node(q.dst, dst[i]));
                nodes[i] = (s, d);
                if s != NONE && d != NONE {
                    prefetch(self.src.one_word_addr(s));
                    prefetch(self.dst.one_word_addr(d));
                }
            }
            // A destination host's one word (the usual case): the rule of
            // its first sub-rule, usually the answer. Otherwise the heads
            // of the deepest prefixes' sets.
            let mut general = [false; BATCH];
            for (i, &(s, d)) in nodes[..n].iter().enumerate() {
                if s == NONE || d == NONE {
                    continue;
                }
                if let Some((w, bits)) = self.dst.one_word(d) {
                    let sub = w * 64 + bits.trailing_zeros() as usize;
                    if let Some(owner) = self.owner.get(sub) {
                        prefetch((owner as *const u32).cast());
                    }
                    continue;
                }
                general[i] = true;
                for set in [self.src.set_of(s), self.dst.set_of(d)]
                    .into_iter()
                    .flatten()
                {
                    for a in self.sets.head_addrs(set) {
                        prefetch(a);
                    }
                }
            }
            // Their first words (a set of one word: the one the answer is
            // read from).
            for (&(s, d), _) in nodes[..n].iter().zip(general).filter(|(_, g)| *g) {
                for set in [self.src.set_of(s), self.dst.set_of(d)]
                    .into_iter()
                    .flatten()
                {
                    if let Some(a) = self.sets.first_word_addr(set) {
                        prefetch(a);
                    }
                }
            }
            // The rule of the destination set's first sub-rule.
            for (&(_, d), _) in nodes[..n].iter().zip(general).filter(|(_, g)| *g) {
                let first = self
                    .dst
                    .set_of(d)
                    .and_then(|set| self.sets.first_member(set));
                if let Some(owner) = first.and_then(|sub| self.owner.get(sub)) {
                    prefetch((owner as *const u32).cast());
                }
            }
            for (i, q) in queries[..n].iter().enumerate() {
                out[i] = self.classify_located(q, nodes[i].0, nodes[i].1);
            }
        }
    }

    /// The rest of a lookup once the deepest source and destination
    /// prefixes are known.
    #[inline(always)]
    fn classify_located(&self, q: &Query, src: u32, dst: u32) -> Option<u32> {
        if src == NONE || dst == NONE {
            return None;
        }
        let (ka, kb) = q.keys();
        let a = self.key_a.lookup(ka);
        let b = self.key_b.lookup(kb);
        if a == NONE || b == NONE {
            return None;
        }
        let p = [self.protocol[q.protocol as usize], self.any_protocol];
        let sets = &self.sets;
        if let Some((w, bits)) = self.dst.one_word(dst) {
            let (ai, bit) = (w / 64, (w % 64) as u32);
            return self.answer_in_word(w, bits & self.src.word(sets, src, ai, bit), p, a, b);
        }
        if let Some((w, bits)) = self.src.one_word(src) {
            let (ai, bit) = (w / 64, (w % 64) as u32);
            return self.answer_in_word(w, bits & self.dst.word(sets, dst, ai, bit), p, a, b);
        }
        for ai in 0..sets.aggs {
            let mut m = summary2(sets, p, ai) & self.key_b.summary(sets, b, ai);
            if m == 0 {
                continue;
            }
            m &= self.key_a.summary(sets, a, ai);
            m &= self.src.summary(sets, src, ai);
            if m == 0 {
                continue;
            }
            m &= self.dst.summary(sets, dst, ai);
            while m != 0 {
                let bit = m.trailing_zeros();
                let mut w = word2(sets, p, ai, bit) & self.key_b.word(sets, b, ai, bit);
                if w != 0 {
                    w &= self.key_a.word(sets, a, ai, bit);
                }
                if w != 0 {
                    w &= self.src.word(sets, src, ai, bit);
                }
                if w != 0 {
                    w &= self.dst.word(sets, dst, ai, bit);
                }
                if w != 0 {
                    let sub = (ai * 64 + bit as usize) * 64 + w.trailing_zeros() as usize;
                    return Some(self.owner[sub]);
                }
                m &= m - 1;
            }
        }
        None
    }

    /// The first rule matching in word `w` of the bit vector, given `x`:
    /// the bits of that word both address fields accept (the only word
    /// that can hold the answer, see [`OneWord`]).
    #[inline(always)]
    fn answer_in_word(&self, w: usize, mut x: u64, p: [u32; 2], a: u32, b: u32) -> Option<u32> {
        let (ai, bit, sets) = (w / 64, (w % 64) as u32, &self.sets);
        if x != 0 {
            x &= word2(sets, p, ai, bit);
        }
        if x != 0 {
            x &= self.key_b.word(sets, b, ai, bit);
        }
        if x != 0 {
            x &= self.key_a.word(sets, a, ai, bit);
        }
        (x != 0).then(|| self.owner[w * 64 + x.trailing_zeros() as usize])
    }

    /// Number of rules it was built from.
    pub fn len(&self) -> usize {
        self.rules
    }

    pub fn is_empty(&self) -> bool {
        self.rules == 0
    }

    /// Bytes of heap and inline memory the classifier holds.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Classifier>()
            + self.owner.len() * 4
            + self.sets.memory_bytes()
            + self.src.memory_bytes()
            + self.dst.memory_bytes()
            + self.key_a.memory_bytes()
            + self.key_b.memory_bytes()
            + self
                .small
                .iter()
                .map(|r| {
                    std::mem::size_of::<Rule>()
                        + (r.src.len() + r.dst.len()) * std::mem::size_of::<Prefix>()
                        + r.apps.len() * std::mem::size_of::<AppMatch>()
                })
                .sum::<usize>()
    }

    pub fn stats(&self) -> Stats {
        Stats {
            rules: self.rules,
            sub_rules: self.owner.len(),
            src_prefixes: self.src.set.len(),
            dst_prefixes: self.dst.set.len(),
            src_intervals: self.src.starts.len(),
            dst_intervals: self.dst.starts.len(),
            port_intervals: self.key_a.intervals() + self.key_b.intervals(),
            port_blocks: self.key_a.blocks() + self.key_b.blocks(),
            sets: self.sets.count(),
            stored_words: self.sets.words.len(),
            memory_bytes: self.memory_bytes(),
        }
    }
}

/// A synthetic, policy-like rule set and matching traffic, for benchmarks
/// (deterministic in `seed`): sources mostly `any` or a /16-/24 of
/// 10.0.0.0/8, destinations /24s and hosts of 172.16.0.0/12 (some
/// IPv6 /48s), one to three applications from a pool of 40 (TCP/UDP ports
/// and ranges, ICMP types), and a final any/any/any rule.
#[doc(hidden)]
pub fn synthetic(rules: usize, queries: usize, seed: u64) -> (Vec<Rule>, Vec<Query>) {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut rnd = move |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    let pool: Vec<AppMatch> = (0..40)
        .map(|i| match i % 5 {
            0 | 1 => AppMatch {
                protocol: Some(proto::TCP),
                dst_ports: PortRange::single([22, 25, 80, 443, 3306, 8080, 8443, 5432][i % 8]),
                ..AppMatch::ANY
            },
            2 => AppMatch {
                protocol: Some(proto::UDP),
                dst_ports: PortRange::single(53 + i as u16),
                ..AppMatch::ANY
            },
            3 => AppMatch {
                protocol: Some(if i % 2 == 0 { proto::TCP } else { proto::UDP }),
                dst_ports: PortRange {
                    lo: 1024 * (i as u16 % 20 + 1),
                    hi: 1024 * (i as u16 % 20 + 1) + 999,
                },
                ..AppMatch::ANY
            },
            _ => AppMatch {
                protocol: Some(proto::ICMP),
                icmp_type: Some([0, 3, 8, 11][i % 4]),
                ..AppMatch::ANY
            },
        })
        .collect();
    let v4 = |o: [u8; 4], len: u8| Prefix::new(Addr::from_ipv4(o), 96 + len);
    let mut out = Vec::with_capacity(rules);
    for _ in 0..rules.saturating_sub(1) {
        let src = match rnd(10) {
            0..=3 => vec![Prefix::ANY],
            4..=7 => vec![v4([10, rnd(256) as u8, rnd(256) as u8, 0], 24)],
            _ => vec![
                v4([10, rnd(256) as u8, 0, 0], 16),
                v4([10, rnd(256) as u8, rnd(256) as u8, 0], 24),
            ],
        };
        let dst = match rnd(10) {
            0..=5 => vec![v4([172, 16 + rnd(16) as u8, rnd(256) as u8, 0], 24)],
            6..=8 => vec![v4(
                [172, 16 + rnd(16) as u8, rnd(256) as u8, rnd(256) as u8],
                32,
            )],
            _ => {
                let mut o = [0u8; 16];
                o[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
                o[4] = rnd(256) as u8;
                o[5] = rnd(256) as u8;
                vec![Prefix::new(Addr::from_ipv6(o), 48)]
            }
        };
        let apps = (0..1 + rnd(3))
            .map(|_| pool[rnd(pool.len() as u64) as usize])
            .collect();
        out.push(Rule { src, dst, apps });
    }
    if rules > 0 {
        out.push(Rule {
            src: vec![Prefix::ANY],
            dst: vec![Prefix::ANY],
            apps: vec![],
        });
    }
    let mut qs = Vec::with_capacity(queries);
    for _ in 0..queries {
        let app = pool[rnd(pool.len() as u64) as usize];
        let protocol = app.protocol.unwrap_or(proto::TCP);
        let dst = if rules > 1 && rnd(2) == 0 {
            // Aim inside some rule's destination.
            let p = out[rnd(rules as u64 - 1) as usize].dst[0];
            Addr(p.addr.0 | (rnd(256) as u128 & !Prefix::mask(p.len)))
        } else {
            Addr::from_ipv4([172, 16 + rnd(16) as u8, rnd(256) as u8, rnd(256) as u8])
        };
        qs.push(Query {
            src: Addr::from_ipv4([10, rnd(256) as u8, rnd(256) as u8, rnd(256) as u8]),
            dst,
            protocol,
            src_port: 1024 + rnd(60000) as u16,
            dst_port: app.dst_ports.lo + rnd(2) as u16,
            icmp_type: app.icmp_type.unwrap_or(8),
            icmp_code: 0,
        });
    }
    (out, qs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The two-step search finds what the plain one finds, at every
        /// size around the block boundaries and for keys on and between
        /// the stored ones.
        #[test]
        fn sorted_keys_floor_matches_floor_index(
            mut keys in proptest::collection::vec(1u32..1_000_000, 0..200),
            probes in proptest::collection::vec(any::<u32>(), 1..50),
        ) {
            keys.push(0);
            keys.sort_unstable();
            keys.dedup();
            let sorted = SortedKeys::new(keys.clone());
            for p in probes.into_iter().chain(keys.iter().copied()).chain(keys.iter().map(|k| k.saturating_sub(1))) {
                prop_assert_eq!(sorted.floor(p), floor_index(&keys, p), "key {}", p);
            }
        }
    }

    fn tcp(lo: u16, hi: u16) -> AppMatch {
        AppMatch {
            protocol: Some(proto::TCP),
            dst_ports: PortRange { lo, hi },
            ..AppMatch::ANY
        }
    }

    fn q(src: Addr, dst: Addr, protocol: u8, dport: u16) -> Query {
        Query {
            src,
            dst,
            protocol,
            src_port: 40000,
            dst_port: dport,
            ..Query::default()
        }
    }

    #[test]
    fn first_match_wins_across_fields() {
        let web: Prefix = "10.1.0.0/24".parse().unwrap();
        let rules = vec![
            Rule {
                src: vec![Prefix::ANY],
                dst: vec![web],
                apps: vec![tcp(80, 80)],
            },
            Rule {
                src: vec!["192.0.2.0/24".parse().unwrap()],
                dst: vec![Prefix::ANY],
                apps: vec![],
            },
            Rule {
                src: vec![Prefix::ANY],
                dst: vec![Prefix::ANY],
                apps: vec![AppMatch {
                    protocol: Some(proto::ICMP),
                    icmp_type: Some(8),
                    ..AppMatch::ANY
                }],
            },
        ];
        let c = Classifier::build_bitvector(&rules);
        let a = Addr::from_ipv4([198, 51, 100, 1]);
        let w = Addr::from_ipv4([10, 1, 0, 5]);
        assert_eq!(c.classify(&q(a, w, proto::TCP, 80)), Some(0));
        assert_eq!(c.classify(&q(a, w, proto::TCP, 81)), None);
        assert_eq!(
            c.classify(&q(Addr::from_ipv4([192, 0, 2, 9]), w, proto::TCP, 80)),
            Some(0)
        );
        assert_eq!(
            c.classify(&q(Addr::from_ipv4([192, 0, 2, 9]), w, proto::UDP, 53)),
            Some(1)
        );
        let ping = Query {
            src: a,
            dst: w,
            protocol: proto::ICMP,
            icmp_type: 8,
            // Ports are not looked at for ICMP.
            src_port: 999,
            dst_port: 999,
            ..Query::default()
        };
        assert_eq!(c.classify(&ping), Some(2));
        let reply = Query {
            icmp_type: 0,
            ..ping
        };
        assert_eq!(c.classify(&reply), None);
    }

    #[test]
    fn applications_are_a_cross_product_not_a_field_product() {
        // tcp/80 or udp/53: udp/80 must not match although each field does.
        let rules = vec![Rule {
            src: vec![Prefix::ANY],
            dst: vec![Prefix::ANY],
            apps: vec![
                tcp(80, 80),
                AppMatch {
                    protocol: Some(proto::UDP),
                    dst_ports: PortRange::single(53),
                    ..AppMatch::ANY
                },
            ],
        }];
        let c = Classifier::build_bitvector(&rules);
        let x = Addr::from_ipv4([1, 2, 3, 4]);
        assert_eq!(c.classify(&q(x, x, proto::TCP, 80)), Some(0));
        assert_eq!(c.classify(&q(x, x, proto::UDP, 53)), Some(0));
        assert_eq!(c.classify(&q(x, x, proto::UDP, 80)), None);
        assert_eq!(c.classify(&q(x, x, proto::TCP, 53)), None);
    }

    #[test]
    fn nested_prefixes_and_families() {
        let p = |s: &str| s.parse::<Prefix>().unwrap();
        let rules = vec![
            Rule {
                src: vec![p("10.1.2.0/24")],
                dst: vec![Prefix::ANY],
                apps: vec![],
            },
            Rule {
                src: vec![p("10.0.0.0/8")],
                dst: vec![p("2001:db8::/32")],
                apps: vec![],
            },
            Rule {
                src: vec![p("10.1.0.0/16"), p("10.1.2.3")],
                dst: vec![Prefix::ANY],
                apps: vec![],
            },
            Rule {
                src: vec![p("::/0")],
                dst: vec![p("0.0.0.0/0")],
                apps: vec![],
            },
        ];
        let c = Classifier::build_bitvector(&rules);
        let v6 = Addr::from_ipv6(
            "2001:db8::1"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets(),
        );
        let v4 = Addr::from_ipv4;
        let cases = [
            (v4([10, 1, 2, 3]), v4([1, 1, 1, 1]), Some(0)),
            (v4([10, 1, 3, 3]), v6, Some(1)),
            (v4([10, 1, 3, 3]), v4([1, 1, 1, 1]), Some(2)),
            (v4([10, 2, 3, 3]), v4([1, 1, 1, 1]), Some(3)),
            (v4([10, 2, 3, 3]), v6, Some(1)),
            (v6, v6, None),
        ];
        for (s, d, want) in cases {
            let query = q(s, d, proto::TCP, 1);
            assert_eq!(c.classify(&query), want, "{s} -> {d}");
            assert_eq!(classify_linear(&rules, &query), want);
        }
    }

    #[test]
    fn empty_and_degenerate_rule_sets() {
        let x = Addr::from_ipv4([1, 2, 3, 4]);
        for c in [Classifier::build(&[]), Classifier::build_bitvector(&[])] {
            assert!(c.is_empty());
            assert_eq!(c.classify(&q(x, x, proto::TCP, 1)), None);
        }
        let c = Classifier::build_bitvector(&[Rule {
            src: vec![],
            dst: vec![Prefix::ANY],
            apps: vec![],
        }]);
        assert_eq!(c.classify(&q(x, x, proto::TCP, 1)), None);
    }

    #[test]
    fn synthetic_sets_agree_with_linear() {
        for n in [1, 2, 63, 64, 65, 700, 5000] {
            let (rules, queries) = synthetic(n, 2000, n as u64);
            let c = Classifier::build_bitvector(&rules);
            for query in &queries {
                assert_eq!(c.classify(query), classify_linear(&rules, query));
            }
        }
    }

    fn arb_prefix() -> impl Strategy<Value = Prefix> {
        prop_oneof![
            Just(Prefix::ANY),
            (any::<[u8; 4]>(), 0u8..=32).prop_map(|(o, l)| Prefix::new(Addr::from_ipv4(o), 96 + l)),
            (any::<[u8; 4]>(), 8u8..=32).prop_map(|(o, l)| Prefix::new(
                Addr::from_ipv4([10, o[1] % 4, o[2] % 4, o[3]]),
                96 + l
            )),
            (any::<[u8; 16]>(), 0u8..=128).prop_map(|(o, l)| Prefix::new(Addr::from_ipv6(o), l)),
            (any::<[u8; 2]>(), 16u8..=128).prop_map(|(o, l)| {
                let mut a = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
                a[4] = o[0] % 4;
                a[15] = o[1] % 4;
                Prefix::new(Addr::from_ipv6(a), l)
            }),
        ]
    }

    fn arb_range() -> impl Strategy<Value = PortRange> {
        prop_oneof![
            Just(PortRange::ANY),
            (0u16..100).prop_map(|p| PortRange { lo: p, hi: p }),
            (0u16..100, 0u16..50).prop_map(|(lo, n)| PortRange { lo, hi: lo + n }),
            (0u16..100).prop_map(|lo| PortRange { lo, hi: u16::MAX }),
        ]
    }

    fn arb_app() -> impl Strategy<Value = AppMatch> {
        let proto = prop_oneof![
            Just(None),
            Just(Some(proto::TCP)),
            Just(Some(proto::UDP)),
            Just(Some(proto::ICMP)),
            Just(Some(proto::ICMPV6)),
            Just(Some(47u8)),
        ];
        (
            proto,
            arb_range(),
            arb_range(),
            prop::option::of(0u8..10),
            prop::option::of(0u8..3),
        )
            .prop_map(|(p, s, d, t, c)| {
                if p.is_some_and(is_icmp) {
                    AppMatch {
                        protocol: p,
                        icmp_type: t,
                        icmp_code: t.and(c),
                        ..AppMatch::ANY
                    }
                } else {
                    AppMatch {
                        protocol: p,
                        src_ports: s,
                        dst_ports: d,
                        ..AppMatch::ANY
                    }
                }
            })
    }

    fn arb_rule() -> impl Strategy<Value = Rule> {
        (
            prop::collection::vec(arb_prefix(), 1..4),
            prop::collection::vec(arb_prefix(), 1..4),
            prop::collection::vec(arb_app(), 0..4),
        )
            .prop_map(|(src, dst, apps)| Rule { src, dst, apps })
    }

    fn arb_addr() -> impl Strategy<Value = Addr> {
        prop_oneof![
            any::<[u8; 4]>().prop_map(Addr::from_ipv4),
            any::<[u8; 4]>().prop_map(|o| Addr::from_ipv4([10, o[1] % 4, o[2] % 4, o[3]])),
            any::<[u8; 16]>().prop_map(Addr::from_ipv6),
            any::<[u8; 2]>().prop_map(|o| {
                let mut a = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
                a[4] = o[0] % 4;
                a[15] = o[1] % 4;
                Addr::from_ipv6(a)
            }),
        ]
    }

    fn arb_query() -> impl Strategy<Value = Query> {
        (
            arb_addr(),
            arb_addr(),
            prop_oneof![
                Just(proto::TCP),
                Just(proto::UDP),
                Just(proto::ICMP),
                Just(proto::ICMPV6),
                Just(47u8),
                any::<u8>(),
            ],
            prop_oneof![0u16..160, any::<u16>()],
            prop_oneof![0u16..160, any::<u16>()],
            0u8..10,
            0u8..3,
        )
            .prop_map(|(src, dst, protocol, sp, dp, t, c)| Query {
                src,
                dst,
                protocol,
                src_port: sp,
                dst_port: dp,
                icmp_type: t,
                icmp_code: c,
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]
        #[test]
        fn classifier_agrees_with_linear(rules in prop::collection::vec(arb_rule(), 1..3000),
                                         queries in prop::collection::vec(arb_query(), 200)) {
            let c = Classifier::build_bitvector(&rules);
            let hybrid = Classifier::build(&rules);
            let blocks = Classifier::build_inner(&rules, true);
            for q in &queries {
                let want = classify_linear(&rules, q);
                prop_assert_eq!(c.classify(q), want);
                prop_assert_eq!(hybrid.classify(q), want);
                prop_assert_eq!(blocks.classify(q), want);
            }
            // Queries aimed at the rules' own prefixes hit more often.
            for (i, r) in rules.iter().enumerate().take(200) {
                let mut q = queries[i % queries.len()];
                q.src = r.src[i % r.src.len()].addr;
                q.dst = r.dst[0].addr;
                prop_assert_eq!(c.classify(&q), classify_linear(&rules, &q));
                prop_assert_eq!(blocks.classify(&q), classify_linear(&rules, &q));
            }
            // In batches (of up to 70: more than one chunk), each query
            // answered as on its own.
            // Stepped through as a batch whatever its size.
            let mut stepped = Classifier::build_bitvector(&rules);
            stepped.batched = true;
            for c in [&c, &stepped] {
                let mut batched = vec![None; queries.len()];
                for (qs, out) in queries.chunks(70).zip(batched.chunks_mut(70)) {
                    c.classify_batch::<crate::prefetch::NoPrefetch>(qs, out);
                }
                for (q, got) in queries.iter().zip(&batched) {
                    prop_assert_eq!(*got, classify_linear(&rules, q));
                }
            }
        }
    }

    #[test]
    fn key_blocks_cover_exactly_the_range() {
        let ranges = [
            (0, u16::MAX),
            (0, 0),
            (u16::MAX, u16::MAX),
            (1, u16::MAX - 1),
            (80, 80),
            (1024, u16::MAX),
            (1000, 1999),
            (3, 2),
        ];
        for (lo, hi) in ranges {
            let blocks = key_blocks(PortRange { lo, hi });
            assert!(blocks.len() <= 30, "{lo}-{hi}: {}", blocks.len());
            for k in 0..=u16::MAX {
                let n = blocks.iter().filter(|b| b.contains(key_point(k))).count();
                assert_eq!(n, usize::from(lo <= k && k <= hi), "{lo}-{hi} at {k}");
            }
        }
    }

    #[test]
    fn wide_port_ranges_switch_to_blocks_and_stay_small() {
        let mut x = 7u64;
        let mut rnd = move |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let rules: Vec<Rule> = (0..2000)
            .map(|_| {
                let lo = rnd(30000) as u16;
                Rule {
                    src: vec![Prefix::ANY],
                    dst: vec![Prefix::ANY],
                    apps: vec![tcp(lo, lo + rnd(30000) as u16)],
                }
            })
            .collect();
        let c = Classifier::build_bitvector(&rules);
        let s = c.stats();
        assert!(s.port_blocks > 0, "{s:?}");
        // Linear in the rules: well under the ~15 MB of per-interval sets.
        assert!(s.memory_bytes < 2_000_000, "{s:?}");
        let x = Addr::from_ipv4([1, 2, 3, 4]);
        for port in (0..u16::MAX).step_by(97) {
            let query = q(x, x, proto::TCP, port);
            assert_eq!(c.classify(&query), classify_linear(&rules, &query));
        }
    }

    /// Best of five runs of `total` lookups (the machine is shared;
    /// preemption only ever adds time).
    fn ns_per_lookup(queries: &[Query], total: usize, mut f: impl FnMut(&Query)) -> f64 {
        let rounds = (total / queries.len()).max(1);
        (0..5)
            .map(|_| {
                let t = std::time::Instant::now();
                for _ in 0..rounds {
                    for q in queries {
                        f(std::hint::black_box(q));
                    }
                }
                t.elapsed().as_nanos() as f64 / (rounds * queries.len()) as f64
            })
            .fold(f64::MAX, f64::min)
    }

    /// `cargo test --release -p rampart-pipeline --lib bench_classifier -- --ignored --nocapture`
    #[test]
    #[ignore = "benchmark: prints figures, asserts nothing about time"]
    fn bench_classifier() {
        use std::hint::black_box;
        use std::time::Instant;
        println!(
            "{:>6} {:>8} {:>9} {:>9} {:>10} {:>12} {:>12} {:>10}",
            "rules",
            "subrules",
            "src-ivals",
            "port-ival",
            "memory",
            "bitvec ns",
            "linear ns",
            "build ms"
        );
        for n in [10, 20, 40, 100, 1000, 10000] {
            let (rules, queries) = synthetic(n, 4096, 7);
            let t = Instant::now();
            let c = Classifier::build_bitvector(&rules);
            let build = t.elapsed();
            let s = c.stats();
            for q in &queries {
                assert_eq!(c.classify(q), classify_linear(&rules, q));
            }
            let fast = ns_per_lookup(&queries, 400_000, |q| {
                black_box(c.classify(q));
            });
            let slow = ns_per_lookup(&queries, 4_000_000 / n, |q| {
                black_box(classify_linear(black_box(&rules), q));
            });
            println!(
                "{:>6} {:>8} {:>9} {:>9} {:>9}K {:>12.1} {:>12.1} {:>10.1}",
                n,
                s.sub_rules,
                s.src_intervals,
                s.port_intervals,
                s.memory_bytes / 1024,
                fast,
                slow,
                build.as_secs_f64() * 1e3
            );
        }
    }

    /// xorshift64 draws below `n`.
    fn xs(seed: u64) -> impl FnMut(u64) -> u64 {
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        move |n| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        }
    }

    /// Hosts named by a few adjacent rules on one side (no `any` there),
    /// broad prefixes on the other; many words of sub-rules.
    fn rules_and_queries(seed: u64, hosts_on_src: bool) -> (Vec<Rule>, Vec<Query>) {
        let mut rnd = xs(seed);
        let v4 = |o: [u8; 4], len: u8| Prefix::new(Addr::from_ipv4(o), 96 + len);
        let mut rules = Vec::new();
        let n = 300 + rnd(300) as usize;
        for i in 0..n {
            // host i/3: adjacent rules share a host, so its sub-rules
            // usually lie in one word but sometimes straddle two.
            let h = (i / 3) as u8;
            let host = if rnd(8) == 0 {
                let mut o = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, h];
                o[14] = 1;
                Prefix::new(Addr::from_ipv6(o), 128)
            } else {
                v4([192, 168, (i / 3 / 256) as u8, h], 32)
            };
            // sometimes a /24 container named by a rule: its chain spans words
            let hosts = if (i < 24 && rnd(3) == 0) || rnd(200) == 0 {
                vec![host, v4([192, 168, 0, 0], 24)]
            } else {
                vec![host]
            };
            let broad = match rnd(4) {
                0 => vec![Prefix::ANY],
                1 => vec![v4([10, 0, 0, 0], 8)],
                2 => vec![v4([10, rnd(4) as u8, 0, 0], 16)],
                _ => vec![v4([10, rnd(4) as u8, rnd(4) as u8, 0], 24), Prefix::ANY],
            };
            let apps = match rnd(3) {
                0 => vec![],
                1 => vec![AppMatch {
                    protocol: Some(proto::TCP),
                    dst_ports: PortRange::single(80 + rnd(3) as u16),
                    ..AppMatch::ANY
                }],
                _ => vec![
                    AppMatch {
                        protocol: Some(proto::UDP),
                        dst_ports: PortRange {
                            lo: 50,
                            hi: 60 + rnd(10) as u16,
                        },
                        ..AppMatch::ANY
                    },
                    AppMatch {
                        protocol: Some(proto::TCP),
                        src_ports: PortRange { lo: 1000, hi: 2000 },
                        ..AppMatch::ANY
                    },
                ],
            };
            let (src, dst) = if hosts_on_src {
                (hosts, broad)
            } else {
                (broad, hosts)
            };
            rules.push(Rule { src, dst, apps });
        }
        let mut qs = Vec::new();
        for _ in 0..5000 {
            let r = &rules[rnd(n as u64) as usize];
            let side = if hosts_on_src { &r.src } else { &r.dst };
            let host = side[0].addr;
            let other = Addr::from_ipv4([10, rnd(4) as u8, rnd(4) as u8, rnd(256) as u8]);
            let (src, dst) = if hosts_on_src {
                (host, other)
            } else {
                (other, host)
            };
            let protocol = [proto::TCP, proto::UDP, 47][rnd(3) as usize];
            qs.push(Query {
                src,
                dst,
                protocol,
                src_port: [1500, 3000][rnd(2) as usize],
                dst_port: 50 + rnd(40) as u16,
                icmp_type: 0,
                icmp_code: 0,
            });
        }
        (rules, qs)
    }

    /// The one-word path, both ways round (the hosts' side is the
    /// destination, then the source), with word indices past the first
    /// and chains that straddle two words or sit under a named /24:
    /// plain, block-form and batched lookups all agree with linear
    /// evaluation. (Random rule sets rarely build one-word chains past the
    /// first word: `any` sits on most chains.)
    #[test]
    fn one_word_both_branches_agree_with_linear() {
        for hosts_on_src in [false, true] {
            for seed in 1..40 {
                let (rules, qs) = rules_and_queries(seed, hosts_on_src);
                let c = Classifier::build_bitvector(&rules);
                let blocks = Classifier::build_inner(&rules, true);
                let mut stepped = Classifier::build_bitvector(&rules);
                stepped.batched = true;
                let mut batched = vec![None; qs.len()];
                stepped.classify_batch::<crate::prefetch::NoPrefetch>(&qs, &mut batched);
                for (q, b) in qs.iter().zip(&batched) {
                    let want = classify_linear(&rules, q);
                    assert_eq!(c.classify(q), want, "{hosts_on_src} {seed} {q:?}");
                    assert_eq!(blocks.classify(q), want, "{hosts_on_src} {seed} {q:?}");
                    assert_eq!(*b, want, "{hosts_on_src} {seed} {q:?}");
                }
            }
        }
    }
}
