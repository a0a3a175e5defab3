//! Screen: Junos-style DoS and anomaly checks, per ingress zone profile.
//!
//! Stateless checks look at one parsed packet. Stateful checks (floods,
//! scans, sweeps, session limits) count in [`ScreenState`], shared by all
//! workers: fixed-size tables of atomic buckets, allocated once, so memory
//! is bounded whatever the attack and counts are right whichever worker
//! sees a packet. Keys hash into buckets; rate checks use two independent
//! buckets and take the smaller count (a count-min sketch), so a hash
//! collision can only make a threshold trip early, never late, and only
//! when both buckets collide. Time is an input (`now_ns`), never the clock.
//!
//! Non-first fragments carry no L4 header: TCP flag and port checks never
//! apply to them (only the fragment checks do).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::flow::{proto, Addr};
use crate::wire::{icmpv4, icmpv6, IpVersion, Ipv4OptionSet, ParsedPacket, TcpFlags};

/// Every screen option, named as in Junos (`name()`), in the order the
/// stateless checks run; the table lives in `rampart-vocab`.
pub use rampart_vocab::ScreenOption;

/// An option's bit in [`ScreenProfile`]'s set of stateless options.
const fn bit(option: ScreenOption) -> u32 {
    1 << option as u32
}

/// Junos flags an ICMP packet over this many bytes (IP length) as icmp-large.
pub const ICMP_LARGE_BYTES: u32 = 1024;
/// Highest IPv4 protocol number Junos considers known (IPv6: 139).
pub const MAX_KNOWN_PROTOCOL_V4: u8 = 137;
pub const MAX_KNOWN_PROTOCOL_V6: u8 = 139;
/// Port scans and IP sweeps trip at this many distinct ports/addresses
/// within the threshold time, as in Junos.
pub const SCAN_DISTINCT: u32 = 10;

/// SYN flood thresholds, SYNs per second (0 = not checked).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SynFloodLimits {
    /// To one destination address and port.
    pub attack: u32,
    /// From one source address.
    pub source: u32,
    /// To one destination address.
    pub destination: u32,
}

/// A compiled screen profile (`[screen.NAME]`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScreenProfile {
    pub id: u16,
    pub name: String,
    /// Bit per enabled stateless [`ScreenOption`].
    stateless: u32,
    pub syn_flood: Option<SynFloodLimits>,
    /// Packets per second to one destination.
    pub icmp_flood: Option<u32>,
    pub udp_flood: Option<u32>,
    /// Microseconds within which 10 distinct ports (scan) or addresses
    /// (sweep) trip the check.
    pub port_scan_us: Option<u32>,
    pub ip_sweep_us: Option<u32>,
    /// Concurrent sessions per source / destination address.
    pub limit_session_source: Option<u32>,
    pub limit_session_destination: Option<u32>,
    /// Count and report, but forward.
    pub alarm_without_drop: bool,
}

impl ScreenProfile {
    pub fn new(id: u16, name: impl Into<String>) -> ScreenProfile {
        ScreenProfile {
            id,
            name: name.into(),
            ..Default::default()
        }
    }

    /// Enables a stateless option (stateful ones are set through their fields).
    pub fn enable(&mut self, option: ScreenOption) -> &mut Self {
        self.stateless |= bit(option);
        self
    }

    pub fn enabled(&self, option: ScreenOption) -> bool {
        self.stateless & bit(option) != 0
    }
}

/// What the screen decided for one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScreenHit {
    pub option: ScreenOption,
    /// `alarm-without-drop`: report, then forward.
    pub alarm_only: bool,
}

/// Runs the profile's checks on one packet; the first option that fires
/// wins. `frag_overlap` says whether this fragment overlaps one already
/// seen of the same datagram (see [`crate::frag::FragTable`]).
pub fn check(
    profile: &ScreenProfile,
    state: &ScreenState,
    pkt: &ParsedPacket,
    frag_overlap: bool,
    now_ns: u64,
) -> Option<ScreenHit> {
    let option = check_stateless(profile, pkt, frag_overlap)
        .or_else(|| check_stateful(profile, state, pkt, now_ns))?;
    Some(ScreenHit {
        option,
        alarm_only: profile.alarm_without_drop,
    })
}

fn check_stateless(
    p: &ScreenProfile,
    pkt: &ParsedPacket,
    frag_overlap: bool,
) -> Option<ScreenOption> {
    use ScreenOption::*;
    if p.stateless == 0 {
        return None;
    }
    let on = |o: ScreenOption| p.stateless & bit(o) != 0;
    let tcp = pkt.protocol == proto::TCP && pkt.has_l4;
    let flags = pkt.tcp_flags;
    let has = |f: TcpFlags| flags.0 & f.0 != 0;
    let is_icmp = matches!(
        (pkt.version, pkt.protocol),
        (IpVersion::V4, proto::ICMP) | (IpVersion::V6, proto::ICMPV6)
    );
    if tcp {
        let syn = has(TcpFlags::SYN);
        if on(Land) && syn && !has(TcpFlags::ACK) && pkt.src == pkt.dst {
            return Some(Land);
        }
        if on(SynFin) && syn && has(TcpFlags::FIN) {
            return Some(SynFin);
        }
        // The six classic flags; ECN and NS bits alone still mean "no flag".
        if on(TcpNoFlag) && flags.0 & 0x3f == 0 {
            return Some(TcpNoFlag);
        }
        if on(FinNoAck) && has(TcpFlags::FIN) && !has(TcpFlags::ACK) {
            return Some(FinNoAck);
        }
        if on(Winnuke) && pkt.dst_port == 139 && has(TcpFlags::URG) {
            return Some(Winnuke);
        }
        if on(SynFrag) && syn && pkt.frag.is_fragment {
            return Some(SynFrag);
        }
    } else if on(Land) && pkt.src == pkt.dst && pkt.protocol == proto::TCP && !pkt.frag.is_fragment
    {
        // A TCP packet too short to read flags but addressed to itself.
        return Some(Land);
    }
    if pkt.frag.is_fragment {
        if on(TearDrop) && (frag_overlap || teardrop_shape(pkt)) {
            return Some(TearDrop);
        }
        if is_icmp {
            let header = pkt.l4_offset as u32 - pkt.l3_offset() as u32;
            if on(PingDeath) && pkt.frag.offset as u32 + header + pkt.l4_len as u32 > 65535 {
                return Some(PingDeath);
            }
            if on(IcmpFragment) {
                return Some(IcmpFragment);
            }
        }
        if on(BlockFrag) {
            return Some(BlockFrag);
        }
    }
    if is_icmp && on(IcmpLarge) && pkt.ip_total_len > ICMP_LARGE_BYTES {
        return Some(IcmpLarge);
    }
    let opts = pkt.ip_options;
    if opts.0 != 0 {
        let any = |s: Ipv4OptionSet| opts.0 & s.0 != 0;
        if on(BadOption) && any(Ipv4OptionSet::BAD) {
            return Some(BadOption);
        }
        if on(SourceRouteOption)
            && any(Ipv4OptionSet(
                Ipv4OptionSet::LOOSE_SOURCE_ROUTE.0 | Ipv4OptionSet::STRICT_SOURCE_ROUTE.0,
            ))
        {
            return Some(SourceRouteOption);
        }
        for (set, option) in [
            (Ipv4OptionSet::LOOSE_SOURCE_ROUTE, LooseSourceRouteOption),
            (Ipv4OptionSet::STRICT_SOURCE_ROUTE, StrictSourceRouteOption),
            (Ipv4OptionSet::RECORD_ROUTE, RecordRouteOption),
            (Ipv4OptionSet::TIMESTAMP, TimestampOption),
            (Ipv4OptionSet::SECURITY, SecurityOption),
            (Ipv4OptionSet::STREAM_ID, StreamOption),
        ] {
            if on(option) && any(set) {
                return Some(option);
            }
        }
    }
    if on(UnknownProtocol) {
        let max = match pkt.version {
            IpVersion::V4 => MAX_KNOWN_PROTOCOL_V4,
            IpVersion::V6 => MAX_KNOWN_PROTOCOL_V6,
        };
        if pkt.protocol > max {
            return Some(UnknownProtocol);
        }
    }
    None
}

/// A fragment whose own geometry is impossible: more fragments follow but
/// it carries no data, or data that is not a multiple of 8 (RFC 791), so
/// the next one must overlap it. Overlaps with fragments already seen come
/// from the fragment table; oversize datagrams are ping-death's business.
fn teardrop_shape(pkt: &ParsedPacket) -> bool {
    pkt.frag.more_fragments && (pkt.l4_len == 0 || !pkt.l4_len.is_multiple_of(8))
}

fn check_stateful(
    p: &ScreenProfile,
    s: &ScreenState,
    pkt: &ParsedPacket,
    now_ns: u64,
) -> Option<ScreenOption> {
    let sec = (now_ns / 1_000_000_000) as u32;
    let salt = p.id as u64;
    let syn_only = pkt.protocol == proto::TCP
        && pkt.has_l4
        && pkt.tcp_flags.0 & TcpFlags::SYN.0 != 0
        && pkt.tcp_flags.0 & TcpFlags::ACK.0 == 0;
    if let (Some(limits), true) = (p.syn_flood, syn_only) {
        let attack = s.rates.hit(key(salt, 1, pkt.dst, pkt.dst_port as u64), sec);
        let src = s.rates.hit(key(salt, 2, pkt.src, 0), sec);
        let dst = s.rates.hit(key(salt, 3, pkt.dst, 0), sec);
        if over(attack, limits.attack) || over(src, limits.source) || over(dst, limits.destination)
        {
            return Some(ScreenOption::SynFlood);
        }
    }
    let is_icmp = pkt.protocol == proto::ICMP || pkt.protocol == proto::ICMPV6;
    if let (Some(limit), true) = (p.icmp_flood, is_icmp) {
        if over(s.rates.hit(key(salt, 4, pkt.dst, 0), sec), limit) {
            return Some(ScreenOption::IcmpFlood);
        }
    }
    if let (Some(limit), true) = (p.udp_flood, pkt.protocol == proto::UDP) {
        if over(s.rates.hit(key(salt, 5, pkt.dst, 0), sec), limit) {
            return Some(ScreenOption::UdpFlood);
        }
    }
    let now_us = now_ns / 1000;
    if let Some(window) = p.port_scan_us {
        if pkt.has_l4 && (pkt.protocol == proto::TCP || pkt.protocol == proto::UDP) {
            let k = key(
                salt,
                6,
                pkt.src,
                pkt.dst.0 as u64 ^ (pkt.dst.0 >> 64) as u64,
            );
            if s.scans
                .observe(k, pkt.dst_port as u64, now_us, window as u64)
            {
                return Some(ScreenOption::PortScan);
            }
        }
    }
    if let Some(window) = p.ip_sweep_us {
        let echo = pkt.has_l4
            && ((pkt.protocol == proto::ICMP && pkt.icmp_type == icmpv4::msg_type::ECHO_REQUEST)
                || (pkt.protocol == proto::ICMPV6
                    && pkt.icmp_type == icmpv6::msg_type::ECHO_REQUEST));
        if echo
            && s.scans.observe(
                key(salt, 7, pkt.src, 0),
                addr_hash(pkt.dst),
                now_us,
                window as u64,
            )
        {
            return Some(ScreenOption::IpSweep);
        }
    }
    None
}

#[inline]
fn over(count: u32, limit: u32) -> bool {
    limit != 0 && count > limit
}

/// Checks `limit-session` before a session is created for `src -> dst`.
pub fn session_limit_hit(
    p: &ScreenProfile,
    s: &ScreenState,
    src: Addr,
    dst: Addr,
) -> Option<ScreenHit> {
    let hit = |limit: Option<u32>, k: u64| limit.is_some_and(|l| s.sessions.get(k) >= l);
    if hit(p.limit_session_source, key(p.id as u64, 8, src, 0))
        || hit(p.limit_session_destination, key(p.id as u64, 9, dst, 0))
    {
        return Some(ScreenHit {
            option: ScreenOption::LimitSession,
            alarm_only: p.alarm_without_drop,
        });
    }
    None
}

/// Session accounting for `limit-session`; call on open and on close with
/// the profile that screened the session's first packet.
pub fn session_opened(p: &ScreenProfile, s: &ScreenState, src: Addr, dst: Addr) {
    if p.limit_session_source.is_some() {
        s.sessions.add(key(p.id as u64, 8, src, 0), 1);
    }
    if p.limit_session_destination.is_some() {
        s.sessions.add(key(p.id as u64, 9, dst, 0), 1);
    }
}

pub fn session_closed(p: &ScreenProfile, s: &ScreenState, src: Addr, dst: Addr) {
    if p.limit_session_source.is_some() {
        s.sessions.add(key(p.id as u64, 8, src, 0), -1);
    }
    if p.limit_session_destination.is_some() {
        s.sessions.add(key(p.id as u64, 9, dst, 0), -1);
    }
}

#[inline]
fn mix(mut x: u64) -> u64 {
    // splitmix64 finalizer: cheap and well spread.
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[inline]
fn addr_hash(a: Addr) -> u64 {
    mix(a.0 as u64 ^ mix((a.0 >> 64) as u64))
}

#[inline]
fn key(profile: u64, kind: u64, a: Addr, extra: u64) -> u64 {
    mix(addr_hash(a) ^ mix(extra ^ (kind << 56) ^ (profile << 40)))
}

/// Per-second counters: each bucket packs `(second << 32) | count`.
struct RateTable {
    buckets: Box<[AtomicU64]>,
    mask: usize,
}

impl RateTable {
    fn new(buckets: usize) -> RateTable {
        let n = buckets.next_power_of_two();
        RateTable {
            buckets: (0..n).map(|_| AtomicU64::new(0)).collect(),
            mask: n - 1,
        }
    }

    /// Counts one event for `k` in second `sec`; returns the count so far
    /// this second (the smaller of two independent buckets).
    fn hit(&self, k: u64, sec: u32) -> u32 {
        let a = self.bump(k as usize & self.mask, sec);
        let b = self.bump((k >> 32) as usize & self.mask, sec);
        a.min(b)
    }

    fn bump(&self, i: usize, sec: u32) -> u32 {
        let bucket = &self.buckets[i];
        let mut cur = bucket.load(Ordering::Relaxed);
        loop {
            let next = if (cur >> 32) as u32 == sec {
                cur + 1
            } else {
                ((sec as u64) << 32) | 1
            };
            match bucket.compare_exchange_weak(cur, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return next as u32,
                Err(seen) => cur = seen,
            }
        }
    }
}

/// Distinct-value windows for port scans and IP sweeps: per key, a window
/// start and a 256-bit set of hashed values; `SCAN_DISTINCT` bits within
/// the window trip the check, and the key stays tripped until the window
/// ends (Junos rejects the source's further packets for the period).
struct ScanTable {
    slots: Box<[ScanSlot]>,
    mask: usize,
}

struct ScanSlot {
    tag: AtomicU64,
    start_us: AtomicU64,
    bits: [AtomicU64; 4],
}

impl ScanTable {
    fn new(slots: usize) -> ScanTable {
        let n = slots.next_power_of_two();
        ScanTable {
            slots: (0..n)
                .map(|_| ScanSlot {
                    tag: AtomicU64::new(0),
                    start_us: AtomicU64::new(0),
                    bits: Default::default(),
                })
                .collect(),
            mask: n - 1,
        }
    }

    fn observe(&self, k: u64, value: u64, now_us: u64, window_us: u64) -> bool {
        let slot = &self.slots[k as usize & self.mask];
        let tag = k | 1;
        let start = slot.start_us.load(Ordering::Acquire);
        let expired = now_us.saturating_sub(start) > window_us;
        if slot.tag.load(Ordering::Acquire) != tag || expired {
            // A new window for this key (or a collision taking the slot
            // over): reset, then record. Concurrent resets only lose bits.
            slot.tag.store(tag, Ordering::Release);
            slot.start_us.store(now_us, Ordering::Release);
            for w in &slot.bits {
                w.store(0, Ordering::Relaxed);
            }
        }
        let h = mix(value ^ 0x5ca9) as usize & 255;
        slot.bits[h / 64].fetch_or(1 << (h % 64), Ordering::Relaxed);
        let distinct: u32 = slot
            .bits
            .iter()
            .map(|w| w.load(Ordering::Relaxed).count_ones())
            .sum();
        distinct >= SCAN_DISTINCT
    }
}

/// Concurrent-session counts per address for `limit-session`.
struct CountTable {
    buckets: Box<[AtomicU32]>,
    mask: usize,
}

impl CountTable {
    fn new(buckets: usize) -> CountTable {
        let n = buckets.next_power_of_two();
        CountTable {
            buckets: (0..n).map(|_| AtomicU32::new(0)).collect(),
            mask: n - 1,
        }
    }

    fn get(&self, k: u64) -> u32 {
        self.buckets[k as usize & self.mask].load(Ordering::Relaxed)
    }

    fn add(&self, k: u64, delta: i32) {
        let b = &self.buckets[k as usize & self.mask];
        if delta >= 0 {
            b.fetch_add(delta as u32, Ordering::Relaxed);
        } else {
            // Never wrap below zero, even if a close races a table reset.
            let _ = b.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some(v.saturating_sub(delta.unsigned_abs()))
            });
        }
    }
}

/// Stateful screen memory shared by every worker; its size is fixed at
/// construction and never grows.
pub struct ScreenState {
    rates: RateTable,
    scans: ScanTable,
    sessions: CountTable,
}

impl ScreenState {
    /// `buckets` sizes each table (rounded up to a power of two).
    pub fn new(buckets: usize) -> ScreenState {
        ScreenState {
            rates: RateTable::new(buckets),
            scans: ScanTable::new(buckets / 4),
            sessions: CountTable::new(buckets),
        }
    }

    /// Bytes of memory the tables hold (fixed for the life of the state).
    pub fn memory_bytes(&self) -> usize {
        self.rates.buckets.len() * 8
            + self.scans.slots.len() * std::mem::size_of::<ScanSlot>()
            + self.sessions.buckets.len() * 4
    }
}

impl Default for ScreenState {
    fn default() -> ScreenState {
        ScreenState::new(1 << 16)
    }
}
