//! Attack episodes of the flood, scan and sweep screens
//! (`[events.episodes]`): what a SOC dashboard shows instead of a record
//! per dropped packet.
//!
//! A worker feeds every drop (or alarm) of those screens to its
//! [`EpisodeTracker`]. The first drop of a (screen option, zone, subject)
//! starts an episode, reported at once (`start`); while drops continue, an
//! `update` goes out every update interval with the packets so far, the
//! peak rate over one interval and the heaviest sources; once no drop has
//! come for the quiet interval, the `end` report closes it. The subject is
//! what the attack is about: the target of a flood (destination), the
//! source of a port scan or an address sweep.
//!
//! Bounded and allocation-free after [`EpisodeTracker::new`]: a fixed slab,
//! a [`FixedIndex`], and a space-saving heavy-hitter table per episode
//! (Metwally et al.: [`HEAVY_HITTERS`] counters keep every source with more
//! than 1/[`HEAVY_HITTERS`] of the packets, counts at most overestimated
//! by the smallest one). A new attack finding every slot taken is not
//! tracked (counted in [`EpisodeTracker::untracked`]); its per-packet
//! screen records are unaffected.

use crate::fixed_index::{addr_words, hash_words, random_seed, FixedIndex, Probe};
use crate::types::{
    EpisodePhase, PacketMeta, ScreenEpisode, ScreenOption, SourceCount, MAX_TOP_SOURCES,
};

/// Sources counted per episode.
pub const HEAVY_HITTERS: usize = 8;

/// Whether drops of `option` form episodes, and whether their subject is
/// the source (scans, sweeps) rather than the destination (floods).
pub fn episode_subject_is_source(option: ScreenOption) -> Option<bool> {
    match option {
        ScreenOption::SynFlood | ScreenOption::IcmpFlood | ScreenOption::UdpFlood => Some(false),
        ScreenOption::PortScan | ScreenOption::IpSweep => Some(true),
        _ => None,
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Default)]
struct Key {
    option: u8,
    zone: u16,
    subject: [u8; 16],
}

impl Key {
    fn hash(&self, seed: u64) -> u64 {
        let [a, b] = addr_words(&self.subject);
        hash_words(
            seed,
            &[u64::from(self.option) | u64::from(self.zone) << 8, a, b],
        )
    }
}

struct Episode {
    key: Key,
    hash: u64,
    /// The first drop's metadata (addresses, ports, interface, zone).
    first: PacketMeta,
    screen: u16,
    option: ScreenOption,
    alarm_only: bool,
    started_ns: u64,
    last_drop_ns: u64,
    packets: u64,
    /// Packets and time at the last update (or the start).
    reported_packets: u64,
    reported_ns: u64,
    peak_pps: u64,
    sources: [SourceCount; HEAVY_HITTERS],
    sources_len: usize,
}

impl Episode {
    /// Space-saving: a known source counts up; a new one takes a free
    /// counter or replaces the smallest, inheriting its count.
    fn count_source(&mut self, addr: &[u8; 16]) {
        let live = &mut self.sources[..self.sources_len];
        if let Some(c) = live.iter_mut().find(|c| c.addr == *addr) {
            c.packets += 1;
            return;
        }
        if self.sources_len < HEAVY_HITTERS {
            self.sources[self.sources_len] = SourceCount {
                addr: *addr,
                packets: 1,
            };
            self.sources_len += 1;
            return;
        }
        if let Some(min) = self.sources.iter_mut().min_by_key(|c| c.packets) {
            *min = SourceCount {
                addr: *addr,
                packets: min.packets + 1,
            };
        }
    }

    fn record(&self, phase: EpisodePhase) -> ScreenEpisode {
        let mut sorted = self.sources;
        sorted[..self.sources_len].sort_unstable_by_key(|c| std::cmp::Reverse(c.packets));
        let top_len = self.sources_len.min(MAX_TOP_SOURCES);
        let mut top_sources = [SourceCount::default(); MAX_TOP_SOURCES];
        top_sources[..top_len].copy_from_slice(&sorted[..top_len]);
        ScreenEpisode {
            screen: self.screen,
            option: self.option,
            phase,
            alarm_only: self.alarm_only,
            started_ns: self.started_ns,
            last_drop_ns: self.last_drop_ns,
            packets: self.packets,
            peak_pps: self.peak_pps,
            top_sources,
            top_len: top_len as u8,
        }
    }

    /// Folds the interval since the last report into the peak rate; a
    /// shorter one (the end) counts as a whole interval, so a burst right
    /// before the end is not a rate of its own.
    fn close_interval(&mut self, now_ns: u64, interval_ns: u64) {
        let dt = now_ns.saturating_sub(self.reported_ns).max(interval_ns);
        if dt > 0 {
            let n = self.packets - self.reported_packets;
            let pps = (u128::from(n) * 1_000_000_000 / u128::from(dt)) as u64;
            self.peak_pps = self.peak_pps.max(pps);
        }
        self.reported_packets = self.packets;
        self.reported_ns = now_ns;
    }
}

/// One worker's attack episodes; see the module documentation.
pub struct EpisodeTracker {
    update_ns: u64,
    quiet_ns: u64,
    slab: Vec<Episode>,
    free: Vec<u32>,
    /// Slab entries in use, in no order (ticks walk them).
    live: Vec<u32>,
    index: FixedIndex,
    seed: u64,
    next_check_ns: u64,
    untracked: u64,
}

/// A report leaving the tracker: the episode and the meta of its first drop.
pub struct EpisodeReport<'a> {
    pub meta: &'a PacketMeta,
    pub episode: ScreenEpisode,
}

impl EpisodeTracker {
    /// `capacity` episodes at once (allocated here, once); off until
    /// [`EpisodeTracker::configure`] gives it intervals.
    pub fn new(capacity: usize) -> EpisodeTracker {
        let capacity = capacity.clamp(1, 1 << 16);
        EpisodeTracker {
            update_ns: 0,
            quiet_ns: 0,
            slab: (0..capacity)
                .map(|_| Episode {
                    key: Key::default(),
                    hash: 0,
                    first: PacketMeta::default(),
                    screen: 0,
                    option: ScreenOption::SynFlood,
                    alarm_only: false,
                    started_ns: 0,
                    last_drop_ns: 0,
                    packets: 0,
                    reported_packets: 0,
                    reported_ns: 0,
                    peak_pps: 0,
                    sources: [SourceCount::default(); HEAVY_HITTERS],
                    sources_len: 0,
                })
                .collect(),
            free: (0..capacity as u32).rev().collect(),
            live: Vec::with_capacity(capacity),
            index: FixedIndex::new(capacity),
            seed: random_seed(),
            next_check_ns: 0,
            untracked: 0,
        }
    }

    /// Update and quiet intervals (ns); 0 for either turns tracking off.
    /// End every episode first ([`EpisodeTracker::end_all`]).
    pub fn configure(&mut self, update_ns: u64, quiet_ns: u64) {
        debug_assert!(
            self.live.is_empty(),
            "end the episodes before reconfiguring"
        );
        self.update_ns = update_ns;
        self.quiet_ns = quiet_ns;
    }

    #[inline(always)]
    pub fn is_on(&self) -> bool {
        self.update_ns != 0 && self.quiet_ns != 0
    }

    /// Attacks that found every slot taken and were not tracked.
    pub fn untracked(&self) -> u64 {
        self.untracked
    }

    /// Episodes under way.
    pub fn active(&self) -> usize {
        self.live.len()
    }

    /// One drop (or alarm) of screen `option` of profile `screen`, for the
    /// packet of `meta`, at `now_ns`. Returns the `start` report when it
    /// begins an episode.
    pub fn observe(
        &mut self,
        meta: &PacketMeta,
        screen: u16,
        option: ScreenOption,
        alarm_only: bool,
        now_ns: u64,
    ) -> Option<EpisodeReport<'_>> {
        if !self.is_on() {
            return None;
        }
        let by_source = episode_subject_is_source(option)?;
        let key = Key {
            option: option as u8,
            zone: meta.from_zone,
            subject: if by_source { meta.src } else { meta.dst },
        };
        // The other side of the attack: a flood's sources, a scan's or a
        // sweep's targets.
        let other = if by_source { &meta.dst } else { &meta.src };
        let hash = key.hash(self.seed);
        let slab = &self.slab;
        let slot = match self.index.find(hash, |at| slab[at as usize].key == key) {
            Probe::Found(at) => {
                let e = &mut self.slab[at as usize];
                e.packets += 1;
                e.last_drop_ns = now_ns;
                e.count_source(other);
                return None;
            }
            Probe::Vacant(slot) => slot,
            Probe::TooFar => {
                self.untracked += 1;
                return None;
            }
        };
        let Some(at) = self.free.pop() else {
            self.untracked += 1;
            return None;
        };
        self.index.insert(slot, hash, at);
        self.live.push(at);
        self.next_check_ns = self
            .next_check_ns
            .min(now_ns + self.update_ns.min(self.quiet_ns));
        let e = &mut self.slab[at as usize];
        *e = Episode {
            key,
            hash,
            first: *meta,
            screen,
            option,
            alarm_only,
            started_ns: now_ns,
            last_drop_ns: now_ns,
            packets: 1,
            reported_packets: 0,
            reported_ns: now_ns,
            peak_pps: 0,
            sources: [SourceCount::default(); HEAVY_HITTERS],
            sources_len: 0,
        };
        e.count_source(other);
        Some(EpisodeReport {
            meta: &e.first,
            episode: e.record(EpisodePhase::Start),
        })
    }

    /// Updates for the episodes whose interval is over and ends for those
    /// quiet long enough, at `now_ns`; cheap until the next is due.
    #[inline]
    pub fn tick(&mut self, now_ns: u64, out: &mut dyn FnMut(EpisodeReport<'_>)) {
        if self.live.is_empty() || now_ns < self.next_check_ns {
            return;
        }
        self.report(now_ns, false, out);
    }

    /// Ends every episode now (a reload, the end of the run).
    pub fn end_all(&mut self, now_ns: u64, out: &mut dyn FnMut(EpisodeReport<'_>)) {
        self.report(now_ns, true, out);
    }

    fn report(&mut self, now_ns: u64, end_all: bool, out: &mut dyn FnMut(EpisodeReport<'_>)) {
        let mut next = u64::MAX;
        let mut i = 0;
        while i < self.live.len() {
            let at = self.live[i];
            let e = &mut self.slab[at as usize];
            let quiet_since = e.last_drop_ns.saturating_add(self.quiet_ns);
            if end_all || now_ns >= quiet_since {
                // The peak counts the interval up to the last drop.
                e.close_interval(e.last_drop_ns.max(e.reported_ns), self.update_ns);
                out(EpisodeReport {
                    meta: &e.first,
                    episode: e.record(EpisodePhase::End),
                });
                let hash = e.hash;
                self.index.remove(hash, at);
                self.free.push(at);
                self.live.swap_remove(i);
                continue;
            }
            let due = e.reported_ns.saturating_add(self.update_ns);
            if now_ns >= due && e.packets > e.reported_packets {
                e.close_interval(now_ns, self.update_ns);
                out(EpisodeReport {
                    meta: &e.first,
                    episode: e.record(EpisodePhase::Update),
                });
            } else if now_ns >= due {
                // Nothing new this interval: no update, only the clock moves.
                e.close_interval(now_ns, self.update_ns);
            }
            next = next
                .min(e.reported_ns.saturating_add(self.update_ns))
                .min(e.last_drop_ns.saturating_add(self.quiet_ns));
            i += 1;
        }
        self.next_check_ns = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::ipv4_mapped;

    const MS: u64 = 1_000_000;

    fn drop_from(src: u8, dst: u8) -> PacketMeta {
        PacketMeta {
            src: ipv4_mapped([198, 51, 100, src]),
            dst: ipv4_mapped([203, 0, 113, dst]),
            protocol: 6,
            from_zone: 1,
            ..PacketMeta::default()
        }
    }

    fn phases(reports: &[ScreenEpisode]) -> Vec<EpisodePhase> {
        reports.iter().map(|r| r.phase).collect()
    }

    #[test]
    fn a_flood_starts_updates_and_ends_after_the_quiet_interval() {
        let mut t = EpisodeTracker::new(8);
        t.configure(1000 * MS, 5000 * MS);
        let got = std::cell::RefCell::new(Vec::new());
        let mut keep = |r: EpisodeReport<'_>| got.borrow_mut().push(r.episode);
        // 3 s of SYN flood to 203.0.113.10: 1000 drops per second, mostly
        // from two sources, the rest spread.
        let mut start = None;
        for i in 0..3000u64 {
            let now = i * MS;
            let src = match i % 10 {
                0..=5 => 1,
                6..=8 => 2,
                _ => 10 + (i % 200) as u8,
            };
            if let Some(r) = t.observe(&drop_from(src, 10), 0, ScreenOption::SynFlood, false, now) {
                assert!(start.is_none(), "one start");
                start = Some(r.episode);
            }
            t.tick(now, &mut keep);
        }
        let start = start.expect("a start at the first drop");
        assert_eq!((start.phase, start.packets), (EpisodePhase::Start, 1));
        t.tick(3000 * MS, &mut keep);
        // Quiet now: nothing until 5 s after the last drop, then the end.
        t.tick(7998 * MS, &mut keep);
        let before_end = got.borrow().len();
        t.tick(8000 * MS, &mut keep);
        let got = got.into_inner();
        assert_eq!(got.len(), before_end + 1);
        assert_eq!(
            phases(&got),
            [
                EpisodePhase::Update,
                EpisodePhase::Update,
                EpisodePhase::Update,
                EpisodePhase::End
            ]
        );
        let end = got.last().unwrap();
        assert_eq!(end.packets, 3000);
        assert_eq!(end.started_ns, 0);
        assert_eq!(end.last_drop_ns, 2999 * MS);
        assert!((990..=1010).contains(&end.peak_pps), "{}", end.peak_pps);
        let top = end.top_sources();
        assert_eq!(top[0].addr, ipv4_mapped([198, 51, 100, 1]));
        assert!(top[0].packets >= 1800, "{}", top[0].packets);
        assert_eq!(top[1].addr, ipv4_mapped([198, 51, 100, 2]));
        assert_eq!(t.active(), 0);
    }

    /// A flood on 100 targets of one /24 is 100 episodes in a table of
    /// 256, whatever the table's secret: the slot depends on the whole
    /// address. Before, it depended on the first octet only and 32 of the
    /// targets had an episode.
    #[test]
    fn a_flood_on_one_subnet_is_an_episode_per_target() {
        for _ in 0..20 {
            let mut t = EpisodeTracker::new(256);
            t.configure(1000 * MS, 1000 * MS);
            let starts = (0..100u8)
                .flat_map(|dst| (1..4).map(move |src| (src, dst)))
                .filter(|&(src, dst)| {
                    t.observe(&drop_from(src, dst), 0, ScreenOption::SynFlood, false, 0)
                        .is_some()
                })
                .count();
            assert_eq!((starts, t.active(), t.untracked()), (100, 100, 0));
        }
    }

    #[test]
    fn subjects_other_screens_and_a_full_table() {
        let mut t = EpisodeTracker::new(2);
        t.configure(1000 * MS, 1000 * MS);
        // Floods by target: two targets, two episodes.
        assert!(t
            .observe(&drop_from(1, 10), 0, ScreenOption::UdpFlood, false, 0)
            .is_some());
        assert!(t
            .observe(&drop_from(2, 10), 0, ScreenOption::UdpFlood, false, 0)
            .is_none());
        assert!(t
            .observe(&drop_from(1, 11), 0, ScreenOption::UdpFlood, false, 0)
            .is_some());
        // Full: a scan is not tracked, and counted.
        assert!(t
            .observe(&drop_from(1, 12), 0, ScreenOption::PortScan, false, 0)
            .is_none());
        assert_eq!(t.untracked(), 1);
        // Not an episode screen.
        assert!(t
            .observe(&drop_from(1, 12), 0, ScreenOption::Land, false, 0)
            .is_none());
        let mut ends = 0;
        t.end_all(10, &mut |r| {
            assert_eq!(r.episode.phase, EpisodePhase::End);
            ends += 1;
        });
        assert_eq!(ends, 2);
        // Scans and sweeps by source: one scanner over many hosts is one.
        assert!(t
            .observe(&drop_from(7, 1), 0, ScreenOption::IpSweep, false, 20)
            .is_some());
        for dst in 2..100 {
            assert!(t
                .observe(&drop_from(7, dst), 0, ScreenOption::IpSweep, false, 21)
                .is_none());
        }
        t.end_all(30, &mut |_| {});
        t.configure(0, 0);
        assert!(
            t.observe(&drop_from(8, 1), 0, ScreenOption::IpSweep, false, 40)
                .is_none(),
            "off"
        );
    }
}
