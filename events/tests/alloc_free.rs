//! The worker hot path (encode into a slot, counters, rate limiter) does
//! not allocate in steady state. Own test binary: it installs a counting
//! global allocator.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use common::*;
use rampart_events::*;

struct Counting;
static ALLOCS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Only the test's own thread counts: the harness's threads may
    /// allocate at any time (progress output, timers) under load.
    static COUNTING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn count() {
    if COUNTING.try_with(|c| c.get()).unwrap_or(false) {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn encode_counters_and_rate_limiter_do_not_allocate() {
    let events = all_events();
    let big = vec![0x5au8; 1000];
    let mut enc = Encoder::new();
    let mut slots = vec![EventSlot::EMPTY; 64];
    let shared = SharedCounters::new(0);
    let mut counters = WorkerEventCounters::default();
    let mut rates = [None; EventType::COUNT];
    rates[0] = Some(1000);
    let mut rl = RateLimiter::new(1_000_000_000, rates);
    let mut run = |rounds: u64| {
        for r in 0..rounds {
            for (i, (meta, ev, snippet)) in events.iter().enumerate() {
                let t = ev.event_type();
                counters.generated(t);
                if !rl.allow(t, r * 1000) {
                    counters.rate_limited(t);
                    continue;
                }
                let snip = if i % 2 == 0 { &snippet[..] } else { &big[..] };
                let slot = &mut slots[(r as usize + i) % 64];
                assert!(enc.encode(r, meta, ev, snip, slot));
                shared.incr_generated(t);
            }
            shared.publish(&counters);
        }
    };
    run(10); // warm-up
    let before = ALLOCS.load(Ordering::Relaxed);
    COUNTING.with(|c| c.set(true));
    run(10_000);
    COUNTING.with(|c| c.set(false));
    let after = ALLOCS.load(Ordering::Relaxed);
    assert_eq!(
        after - before,
        0,
        "hot path allocated {} times",
        after - before
    );
    let _ = shared.snapshot();
}
