//! The pieces of `rampart events --socket A --socket B` that a hostile or
//! broken source could otherwise turn against the others: the buffer that
//! puts packet records of several sources in time order, and the memory of
//! event ids that drops a record reaching the command twice.
//!
//! A source controls its own timestamps and, since the hello of every
//! source is visible to any event reader, can claim another's node and
//! boot id. So the buffer bounds how long any record waits (the window,
//! whatever other sources' timestamps say) and how much it holds, and a
//! record is a duplicate only of one from the same source.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

/// The longest merge window accepted: records wait at most this long.
pub const MAX_WINDOW: Duration = Duration::from_secs(60);

/// Rendered bytes the merge buffer holds at most by default.
pub const DEFAULT_BUFFER_BYTES: usize = 64 << 20;

/// Packet records waiting to leave in timestamp order.
///
/// A record leaves once it has waited the window, or earlier when a record
/// with a later timestamp must leave (it waited the window) or when the
/// buffer is full. So no record waits longer than the window: a source
/// whose clock lags cannot hold the others back, it only has its records
/// written out of order. Records that leave early because the buffer is
/// full are counted ([`MergeBuffer::released_early`]), never dropped.
pub struct MergeBuffer {
    window: Duration,
    max_bytes: usize,
    /// By (timestamp, arrival number): the write order.
    by_time: BTreeMap<(u64, u64), String>,
    /// (arrived, timestamp, arrival number) in arrival order; entries
    /// already written are skipped when they reach the front.
    by_arrival: VecDeque<(Instant, u64, u64)>,
    arrivals: u64,
    bytes: usize,
    released_early: u64,
}

impl MergeBuffer {
    pub fn new(window: Duration, max_bytes: usize) -> MergeBuffer {
        MergeBuffer {
            window: window.min(MAX_WINDOW),
            max_bytes: max_bytes.max(1),
            by_time: BTreeMap::new(),
            by_arrival: VecDeque::new(),
            arrivals: 0,
            bytes: 0,
            released_early: 0,
        }
    }

    /// Adds a record stamped `ts_ns` that arrived `now`; if the buffer is
    /// then over its bytes, the earliest records go to `out` at once.
    pub fn push(
        &mut self,
        ts_ns: u64,
        line: String,
        now: Instant,
        out: &mut dyn FnMut(&str) -> bool,
    ) -> bool {
        self.arrivals += 1;
        self.bytes += line.len();
        self.by_time.insert((ts_ns, self.arrivals), line);
        self.by_arrival.push_back((now, ts_ns, self.arrivals));
        while self.bytes > self.max_bytes {
            self.released_early += 1;
            if !self.pop_first(out) {
                return false;
            }
        }
        true
    }

    /// Writes every record whose time has come by `now`: those that waited
    /// the window, and any with an earlier timestamp than one of them.
    /// False once `out` refuses a line.
    pub fn release_due(&mut self, now: Instant, out: &mut dyn FnMut(&str) -> bool) -> bool {
        while let Some(&(arrived, ts, n)) = self.by_arrival.front() {
            if now.saturating_duration_since(arrived) < self.window {
                break;
            }
            self.by_arrival.pop_front();
            // Everything up to it in time order; nothing if it left already.
            while self
                .by_time
                .first_key_value()
                .is_some_and(|(&k, _)| k <= (ts, n))
            {
                if !self.pop_first(out) {
                    return false;
                }
            }
        }
        self.forget_written();
        true
    }

    /// Writes everything that waits (the end of every stream).
    pub fn release_all(&mut self, out: &mut dyn FnMut(&str) -> bool) -> bool {
        while !self.by_time.is_empty() {
            if !self.pop_first(out) {
                return false;
            }
        }
        self.by_arrival.clear();
        true
    }

    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.by_time.len()
    }

    /// Records written before their window ended because the buffer was
    /// full.
    pub fn released_early(&self) -> u64 {
        self.released_early
    }

    fn pop_first(&mut self, out: &mut dyn FnMut(&str) -> bool) -> bool {
        match self.by_time.pop_first() {
            Some((_, line)) => {
                self.bytes -= line.len();
                out(&line)
            }
            None => true,
        }
    }

    /// Drops arrival entries of records already written, from the front,
    /// so the arrival queue stays as long as what waits.
    fn forget_written(&mut self) {
        while let Some(&(_, ts, n)) = self.by_arrival.front() {
            if self.by_time.contains_key(&(ts, n)) {
                break;
            }
            self.by_arrival.pop_front();
        }
        if self.by_arrival.len() > 2 * self.by_time.len() + 1024 {
            let by_time = &self.by_time;
            self.by_arrival
                .retain(|&(_, ts, n)| by_time.contains_key(&(ts, n)));
        }
    }
}

/// An event id by its parts: node (hashed), boot id, worker, seq.
pub type EventId = (u64, u64, u16, u64);

/// Event ids remembered per source identity to drop duplicates (about 20
/// MiB in all); the oldest are forgotten first.
pub const REMEMBERED_IDS: usize = 1 << 18;

/// The [`Dedup`] scope of session records of cluster nodes (no socket
/// has this index).
const CLUSTER_SCOPE: usize = usize::MAX;

/// Which records already went out, per source.
///
/// A source is its socket: a socket given twice is one source (every one
/// of its records arrives twice, the second is dropped). Two sockets never
/// suppress each other's records, even when one claims the other's node
/// and boot id: any reader of the event socket can see those in the hello
/// and forge them.
pub struct Dedup {
    seen: HashSet<(usize, EventId)>,
    order: VecDeque<(usize, EventId)>,
    /// Per source (identity), the first other source seen claiming the
    /// same (node, boot id), reported once.
    claims: HashMap<(u64, u64), usize>,
}

impl Default for Dedup {
    fn default() -> Self {
        Dedup::new()
    }
}

impl Dedup {
    pub fn new() -> Dedup {
        Dedup {
            seen: HashSet::new(),
            order: VecDeque::new(),
            claims: HashMap::new(),
        }
    }

    /// Whether `id` from source `source` (its identity: sockets that are
    /// the same file share one) went out already; remembers it if not.
    pub fn is_duplicate(&mut self, source: usize, id: EventId) -> bool {
        if !self.seen.insert((source, id)) {
            return true;
        }
        self.order.push_back((source, id));
        if self.order.len() > REMEMBERED_IDS {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        false
    }

    /// Whether the record of session identity `s` went out already, from
    /// any source naming the same cluster: the two nodes of a pair share
    /// their session records' ids (the sources are trusted as the pair
    /// they say they are; packet records stay per source).
    pub fn is_duplicate_session(&mut self, s: &rampart_events::SessionIdentity<'_>) -> bool {
        let id = (
            crate::consumer::hash_str(s.cluster),
            s.origin,
            u16::from(s.close),
            s.session_id,
        );
        self.is_duplicate(CLUSTER_SCOPE, id)
    }

    /// Notes that `source` says it is (node, boot id); returns the other
    /// source that said so first, the first time two do.
    pub fn claim(&mut self, source: usize, node: u64, boot_id: u64) -> Option<usize> {
        match self.claims.get(&(node, boot_id)) {
            Some(&first) if first != source => {
                // Reported once: the pair is now marked as the later one.
                self.claims.insert((node, boot_id), source);
                Some(first)
            }
            Some(_) => None,
            None => {
                self.claims.insert((node, boot_id), source);
                None
            }
        }
    }
}

/// A count reported on stderr at most once per interval, so a stream of
/// suppressed records is said as it happens without a line per record.
pub struct RateLimitedCount {
    interval: Duration,
    last_report: Option<Instant>,
    pending: u64,
    total: u64,
}

impl RateLimitedCount {
    pub fn new(interval: Duration) -> RateLimitedCount {
        RateLimitedCount {
            interval,
            last_report: None,
            pending: 0,
            total: 0,
        }
    }

    pub fn add(&mut self, n: u64) {
        self.pending += n;
        self.total += n;
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    /// The count since the last report, when one is due at `now`.
    pub fn due(&mut self, now: Instant) -> Option<u64> {
        if self.pending == 0
            || self
                .last_report
                .is_some_and(|t| now.saturating_duration_since(t) < self.interval)
        {
            return None;
        }
        self.last_report = Some(now);
        Some(std::mem::take(&mut self.pending))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn collect(lines: &mut Vec<String>) -> impl FnMut(&str) -> bool + '_ {
        |l: &str| {
            lines.push(l.to_owned());
            true
        }
    }

    /// The two nodes of a pair both wrote the close of one session (the
    /// failover window): the merge keeps one, whichever comes first; a
    /// session of another cluster, another origin or the open record of
    /// the same session is another record.
    #[test]
    fn a_session_record_of_a_pair_is_kept_once_across_its_nodes() {
        use rampart_events::SessionIdentity;
        let mut d = Dedup::new();
        let close = SessionIdentity {
            cluster: "edge",
            origin: 7,
            session_id: 42,
            close: true,
        };
        assert!(!d.is_duplicate_session(&close), "the first node's close");
        assert!(d.is_duplicate_session(&close), "the second node's close");
        for other in [
            SessionIdentity {
                close: false,
                ..close
            },
            SessionIdentity { origin: 8, ..close },
            SessionIdentity {
                cluster: "core",
                ..close
            },
            SessionIdentity {
                session_id: 43,
                ..close
            },
        ] {
            assert!(!d.is_duplicate_session(&other), "{other:?}");
        }
        // Packet records of the two sources stay apart.
        assert!(!d.is_duplicate(0, (1, 7, 0, 42)));
        assert!(!d.is_duplicate(1, (1, 7, 0, 42)));
    }

    /// Source A's clock is 30 s behind B's: B's records still leave once
    /// they waited the window, A's are not held back either, and what
    /// waits stays bounded. Before, a record left only when it was the
    /// earliest of all, so B's waited as long as A kept sending.
    #[test]
    fn a_source_whose_clock_lags_holds_no_record_past_the_window() {
        let t0 = Instant::now();
        let window = 500 * MS;
        let mut m = MergeBuffer::new(window, DEFAULT_BUFFER_BYTES);
        let mut out = Vec::new();
        let lag = 30_000_000_000u64;
        for i in 0..10_000u64 {
            let now = t0 + MS * i as u32;
            let ts = 100_000_000_000 + i * 1_000_000;
            assert!(m.push(ts - lag, format!("a{i}"), now, &mut collect(&mut out)));
            assert!(m.push(ts, format!("b{i}"), now, &mut collect(&mut out)));
            assert!(m.release_due(now, &mut collect(&mut out)));
            // Everything that arrived a window ago is out.
            assert!(
                m.waiting() <= 2 * (window.as_millis() as usize + 1),
                "{}",
                m.waiting()
            );
        }
        let written_b = out.iter().filter(|l| l.starts_with('b')).count();
        assert!(written_b >= 9_000, "{written_b} of B's records written");
        assert!(m.release_all(&mut collect(&mut out)));
        assert_eq!(out.len(), 20_000);
        assert_eq!(m.released_early(), 0);
    }

    /// Within the window, records leave in timestamp order whatever the
    /// order they arrived in.
    #[test]
    fn records_within_the_window_leave_in_time_order() {
        let t0 = Instant::now();
        let mut m = MergeBuffer::new(100 * MS, DEFAULT_BUFFER_BYTES);
        let mut out = Vec::new();
        for (i, ts) in [5u64, 1, 4, 2, 3].into_iter().enumerate() {
            m.push(
                ts,
                ts.to_string(),
                t0 + i as u32 * MS,
                &mut collect(&mut out),
            );
        }
        m.release_due(t0 + 50 * MS, &mut collect(&mut out));
        assert!(out.is_empty());
        m.release_due(t0 + 101 * MS, &mut collect(&mut out));
        assert_eq!(out, ["1", "2", "3", "4", "5"]);
        assert_eq!(m.waiting(), 0);
    }

    /// A full buffer writes its earliest records at once and counts them;
    /// the window is capped.
    #[test]
    fn a_full_buffer_releases_early_and_counts() {
        let t0 = Instant::now();
        let mut m = MergeBuffer::new(Duration::from_secs(600), 1000);
        assert_eq!(m.window, MAX_WINDOW);
        let mut out = Vec::new();
        for i in 0..1000u64 {
            m.push(i, "x".repeat(10), t0, &mut collect(&mut out));
        }
        assert_eq!(m.waiting(), 100);
        assert_eq!(out.len(), 900);
        assert_eq!(m.released_early(), 900);
    }

    /// A source that claims another's node and boot id suppresses none of
    /// its records; the same socket given twice is still deduplicated.
    #[test]
    fn only_the_same_source_is_a_duplicate() {
        let mut d = Dedup::new();
        let (real, forger) = (0, 1);
        let id = |seq| (7, 42, 1, seq);
        assert_eq!(d.claim(real, 7, 42), None);
        assert_eq!(d.claim(forger, 7, 42), Some(real));
        assert_eq!(d.claim(forger, 7, 42), None, "said once");
        for seq in 0..100 {
            assert!(!d.is_duplicate(forger, id(seq)));
        }
        for seq in 0..100 {
            assert!(
                !d.is_duplicate(real, id(seq)),
                "the real source's record {seq}"
            );
            assert!(d.is_duplicate(real, id(seq)), "the same socket twice");
        }
    }

    #[test]
    fn counts_are_reported_at_most_once_per_interval() {
        let t0 = Instant::now();
        let mut c = RateLimitedCount::new(Duration::from_secs(1));
        assert_eq!(c.due(t0), None);
        c.add(3);
        assert_eq!(c.due(t0), Some(3));
        c.add(2);
        assert_eq!(c.due(t0 + 500 * MS), None);
        c.add(1);
        assert_eq!(c.due(t0 + 1000 * MS), Some(3));
        assert_eq!(c.total(), 6);
    }
}
