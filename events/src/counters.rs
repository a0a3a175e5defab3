//! Per-worker, per-type event counters and the per-type token-bucket rate
//! limiter. Plain arrays on the worker; published to the control plane
//! through [`SharedCounters`] (one writer: load + store, `Relaxed`).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::types::EventType;

const N: usize = EventType::COUNT;

/// The counters of one event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TypeCounters {
    pub generated: u64,
    pub rate_limited: u64,
    pub ring_overflow: u64,
    pub drained: u64,
    /// Events folded into aggregated records that still wait in a worker
    /// for their window to end (`[events.aggregate]`; 0 once a run has
    /// ended). Not in the in-band stats record, whose counters are a
    /// fixed struct.
    pub aggregating: u64,
    /// Records sent on their own although their type aggregates: the
    /// worker's table had no room for their key (`max_keys`).
    pub aggregate_full: u64,
}

impl TypeCounters {
    /// `generated == rate_limited + ring_overflow + drained + aggregating`.
    pub fn balanced(&self) -> bool {
        self.generated
            == self
                .rate_limited
                .wrapping_add(self.ring_overflow)
                .wrapping_add(self.drained)
                .wrapping_add(self.aggregating)
    }

    pub fn add(&mut self, o: &TypeCounters) {
        self.generated += o.generated;
        self.rate_limited += o.rate_limited;
        self.ring_overflow += o.ring_overflow;
        self.drained += o.drained;
        self.aggregating += o.aggregating;
        self.aggregate_full += o.aggregate_full;
    }
}

/// A worker's own counters: plain arrays indexed by [`EventType`].
/// `generated` counts every event the worker decided to emit (before rate
/// limiting), so `generated == rate_limited + ring_overflow + enqueued`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WorkerEventCounters {
    pub generated: [u64; N],
    pub rate_limited: [u64; N],
    pub ring_overflow: [u64; N],
}

impl WorkerEventCounters {
    #[inline]
    pub fn generated(&mut self, t: EventType) {
        self.generated[t.index()] += 1;
    }
    #[inline]
    pub fn rate_limited(&mut self, t: EventType) {
        self.rate_limited[t.index()] += 1;
    }
    #[inline]
    pub fn ring_overflow(&mut self, t: EventType) {
        self.ring_overflow[t.index()] += 1;
    }
}

/// A worker's counters as the control plane sees them. Exactly one writer
/// (the worker) stores with load + store `Relaxed`; any thread snapshots.
#[derive(Debug)]
pub struct SharedCounters {
    worker: u16,
    generated: [AtomicU64; N],
    rate_limited: [AtomicU64; N],
    ring_overflow: [AtomicU64; N],
    aggregating: [AtomicU64; N],
    aggregate_full: [AtomicU64; N],
    /// Attacks not tracked as episodes: every episode slot was taken.
    episodes_untracked: AtomicU64,
    /// The oldest config generation the worker's events may still name
    /// (its oldest session's); 0 until the worker first publishes it.
    oldest_generation: AtomicU32,
}

/// A snapshot of one worker's counters (`drained` is the hub's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerCountersSnapshot {
    pub worker: u16,
    pub counters: [TypeCounters; N],
}

impl SharedCounters {
    pub fn new(worker: u16) -> Self {
        SharedCounters {
            worker,
            generated: Default::default(),
            rate_limited: Default::default(),
            ring_overflow: Default::default(),
            aggregating: Default::default(),
            aggregate_full: Default::default(),
            episodes_untracked: AtomicU64::new(0),
            oldest_generation: AtomicU32::new(0),
        }
    }

    /// The oldest generation the worker's events may still name (call
    /// from the worker only); the hub keeps name tables from it on.
    #[inline]
    pub fn publish_oldest_generation(&self, generation: u32) {
        self.oldest_generation.store(generation, Ordering::Relaxed);
    }

    /// What the worker last published (0: nothing yet).
    pub fn oldest_generation(&self) -> u32 {
        self.oldest_generation.load(Ordering::Relaxed)
    }

    pub fn worker(&self) -> u16 {
        self.worker
    }

    /// Publishes the worker's plain counters (call from the worker only,
    /// e.g. once per burst or on its drain timer).
    #[inline]
    pub fn publish(&self, c: &WorkerEventCounters) {
        for i in 0..N {
            self.generated[i].store(c.generated[i], Ordering::Relaxed);
            self.rate_limited[i].store(c.rate_limited[i], Ordering::Relaxed);
            self.ring_overflow[i].store(c.ring_overflow[i], Ordering::Relaxed);
        }
    }

    /// Single-writer increment (load + store, no locked instruction).
    #[inline]
    pub fn incr_generated(&self, t: EventType) {
        bump(&self.generated[t.index()]);
    }
    #[inline]
    pub fn incr_rate_limited(&self, t: EventType) {
        bump(&self.rate_limited[t.index()]);
    }
    #[inline]
    pub fn incr_ring_overflow(&self, t: EventType) {
        bump(&self.ring_overflow[t.index()]);
    }
    /// One event folded into a waiting aggregated record.
    #[inline]
    pub fn incr_aggregating(&self, t: EventType) {
        bump(&self.aggregating[t.index()]);
    }
    /// A record sent alone: no room for its key in the aggregation table.
    #[inline]
    pub fn incr_aggregate_full(&self, t: EventType) {
        bump(&self.aggregate_full[t.index()]);
    }
    /// The worker's count of attacks it could not track as episodes.
    #[inline]
    pub fn set_episodes_untracked(&self, n: u64) {
        self.episodes_untracked.store(n, Ordering::Relaxed);
    }
    pub fn episodes_untracked(&self) -> u64 {
        self.episodes_untracked.load(Ordering::Relaxed)
    }
    /// An aggregated record of `n` events left its table.
    #[inline]
    pub fn sub_aggregating(&self, t: EventType, n: u64) {
        let a = &self.aggregating[t.index()];
        a.store(a.load(Ordering::Relaxed).wrapping_sub(n), Ordering::Relaxed);
    }
    /// `n` events of one aggregated record were rate limited.
    #[inline]
    pub fn add_rate_limited(&self, t: EventType, n: u64) {
        bump_by(&self.rate_limited[t.index()], n);
    }
    /// `n` events of one aggregated record found the ring full.
    #[inline]
    pub fn add_ring_overflow(&self, t: EventType, n: u64) {
        bump_by(&self.ring_overflow[t.index()], n);
    }

    pub fn snapshot(&self) -> WorkerCountersSnapshot {
        let mut counters = [TypeCounters::default(); N];
        for (i, c) in counters.iter_mut().enumerate() {
            c.generated = self.generated[i].load(Ordering::Relaxed);
            c.rate_limited = self.rate_limited[i].load(Ordering::Relaxed);
            c.ring_overflow = self.ring_overflow[i].load(Ordering::Relaxed);
            c.aggregating = self.aggregating[i].load(Ordering::Relaxed);
            c.aggregate_full = self.aggregate_full[i].load(Ordering::Relaxed);
        }
        WorkerCountersSnapshot {
            worker: self.worker,
            counters,
        }
    }
}

#[inline]
fn bump(a: &AtomicU64) {
    bump_by(a, 1);
}

#[inline]
fn bump_by(a: &AtomicU64, n: u64) {
    a.store(a.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    /// Events per second; 0 = unlimited.
    rate: u64,
    /// Capacity in scaled units (burst events * hz).
    cap: u64,
    /// Tokens in scaled units: one event costs `hz`.
    tokens: u64,
    last: u64,
}

/// Per-type token buckets. Sans-IO: time comes in as `now` in ticks of
/// `hz` per second (TSC cycles with `rte_get_tsc_hz()`, or ns with 1e9).
/// Integer arithmetic only; no allocation.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    hz: u64,
    buckets: [Bucket; N],
}

impl RateLimiter {
    /// `rates[t]`: events per second for type `t`, `None` = unlimited. The
    /// burst is one second's worth of events.
    pub fn new(hz: u64, rates: [Option<u64>; N]) -> Self {
        Self::with_burst(hz, rates, [None; N])
    }

    /// Like `new`, with an explicit burst (bucket size in events) per type.
    pub fn with_burst(hz: u64, rates: [Option<u64>; N], bursts: [Option<u64>; N]) -> Self {
        let hz = hz.max(1);
        let mut buckets = [Bucket::default(); N];
        for (i, b) in buckets.iter_mut().enumerate() {
            if let Some(rate) = rates[i] {
                let burst = bursts[i].unwrap_or(rate).max(1);
                b.rate = rate;
                b.cap = burst.saturating_mul(hz);
                b.tokens = b.cap;
            }
        }
        RateLimiter { hz, buckets }
    }

    /// New rates (a config reload), from time `now` on; burst is one
    /// second's worth, as in [`RateLimiter::new`]. The token state carries
    /// over: a bucket first banks what it earned at its old rate up to
    /// `now`, then keeps those tokens up to its new capacity. So a lowered
    /// limit holds at once (no fresh burst on top of what was left), a
    /// raised one refills at the new rate from what was left, a type that
    /// becomes limited starts with a full burst (as at start-up), and one
    /// that becomes unlimited passes everything. No allocation.
    pub fn set_rates(&mut self, rates: [Option<u64>; N], now: u64) {
        let hz = self.hz;
        for (b, rate) in self.buckets.iter_mut().zip(rates) {
            let Some(rate) = rate else {
                *b = Bucket::default();
                continue;
            };
            let cap = rate.max(1).saturating_mul(hz);
            if b.cap == 0 {
                *b = Bucket {
                    rate,
                    cap,
                    tokens: cap,
                    last: now,
                };
                continue;
            }
            if now > b.last {
                let earned = (now - b.last).saturating_mul(b.rate);
                b.tokens = b.tokens.saturating_add(earned).min(b.cap);
                b.last = now;
            }
            b.rate = rate;
            b.cap = cap;
            b.tokens = b.tokens.min(cap);
        }
    }

    /// An unlimited limiter.
    pub fn unlimited() -> Self {
        Self::new(1, [None; N])
    }

    pub fn is_limited(&self, t: EventType) -> bool {
        self.buckets[t.index()].rate != 0 || self.buckets[t.index()].cap != 0
    }

    /// Takes one token for type `t` at time `now`; false = rate limited.
    #[inline]
    pub fn allow(&mut self, t: EventType, now: u64) -> bool {
        let hz = self.hz;
        let b = &mut self.buckets[t.index()];
        if b.cap == 0 {
            return true; // unlimited
        }
        if now > b.last {
            let add = (now - b.last).saturating_mul(b.rate);
            b.tokens = b.tokens.saturating_add(add).min(b.cap);
            b.last = now;
        }
        if b.tokens >= hz {
            b.tokens -= hz;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_counters_publish_and_snapshot() {
        let s = SharedCounters::new(3);
        let mut w = WorkerEventCounters::default();
        w.generated(EventType::PolicyDeny);
        w.generated(EventType::PolicyDeny);
        w.ring_overflow(EventType::PolicyDeny);
        s.publish(&w);
        s.incr_generated(EventType::SessionOpen);
        s.incr_rate_limited(EventType::SessionOpen);
        let snap = s.snapshot();
        assert_eq!(snap.worker, 3);
        assert_eq!(snap.counters[0].generated, 2);
        assert_eq!(snap.counters[0].ring_overflow, 1);
        assert_eq!(snap.counters[3].generated, 1);
        assert_eq!(snap.counters[3].rate_limited, 1);
    }

    #[test]
    fn rate_limiter_token_bucket() {
        let hz = 1_000_000_000;
        let mut rates = [None; N];
        rates[EventType::PolicyDeny.index()] = Some(10);
        let mut rl = RateLimiter::new(hz, rates);
        // Burst of 10 at t=0, then limited.
        let allowed = (0..100)
            .filter(|_| rl.allow(EventType::PolicyDeny, 0))
            .count();
        assert_eq!(allowed, 10);
        // 100 ms later: one more token.
        assert!(rl.allow(EventType::PolicyDeny, hz / 10));
        assert!(!rl.allow(EventType::PolicyDeny, hz / 10));
        // Unlimited type.
        assert!((0..1000).all(|_| rl.allow(EventType::SessionOpen, 0)));
        // Over 10 s at 1 kHz attempts, about 10/s pass.
        let mut n = 0;
        for i in 0..10_000u64 {
            if rl.allow(EventType::PolicyDeny, hz + i * (hz / 1000)) {
                n += 1;
            }
        }
        assert!((95..=111).contains(&n), "{n}");
        // Very long idle does not overflow.
        assert!(rl.allow(EventType::PolicyDeny, u64::MAX));
    }

    #[test]
    fn new_rates_carry_the_token_state_over() {
        let hz = 1_000_000_000;
        let deny = EventType::PolicyDeny;
        let open = EventType::SessionOpen;
        let mut rates = [None; N];
        rates[deny.index()] = Some(100);
        let mut rl = RateLimiter::new(hz, rates);
        let t0 = 5 * hz;
        // 40 of the 100-event burst spent; 60 left.
        assert_eq!((0..40).filter(|_| rl.allow(deny, t0)).count(), 40);

        // Lowered to 10/s: the 60 left are clamped to the new burst of 10,
        // and no fresh burst comes with the reload.
        rates[deny.index()] = Some(10);
        rates[open.index()] = Some(3);
        rl.set_rates(rates, t0);
        assert_eq!((0..100).filter(|_| rl.allow(deny, t0)).count(), 10);
        // It refills at the new rate: 100 ms is one event.
        assert!(rl.allow(deny, t0 + hz / 10));
        assert!(!rl.allow(deny, t0 + hz / 10));
        // A type that becomes limited starts with a full burst.
        assert_eq!((0..10).filter(|_| rl.allow(open, t0)).count(), 3);

        // Tokens earned at the old rate before the switch are kept: 50 ms
        // at 10/s is half an event, the next 50 ms at 1000/s are 50 more.
        rates[deny.index()] = Some(1000);
        rl.set_rates(rates, t0 + hz / 10 + hz / 20);
        let at = t0 + hz / 10 + hz / 10;
        assert_eq!((0..1000).filter(|_| rl.allow(deny, at)).count(), 50);

        // Unlimited again: everything passes.
        rl.set_rates([None; N], at);
        assert!((0..10_000).all(|_| rl.allow(deny, at) && rl.allow(open, at)));
        assert!(!rl.is_limited(deny));
    }
}
