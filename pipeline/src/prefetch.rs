//! What the stages that batch their lookups share: the size of a burst and
//! the cache prefetch the caller names. A leaf, so the classifier and the
//! policy table need not import the burst pipeline that uses them.

/// A cache prefetch (DPDK's `rte_prefetch0`) for the lookups of a burst:
/// the pipeline has no unsafe code to issue one, so the caller names one
/// (a type, so the call inlines).
pub trait Prefetch {
    fn prefetch(p: *const u8);
}

/// No prefetch: tests, `rampart trace`, machines without one.
pub struct NoPrefetch;

impl Prefetch for NoPrefetch {
    #[inline(always)]
    fn prefetch(_: *const u8) {}
}

/// The most packets [`crate::engine::Worker::process_burst`] decides at
/// once (DPDK's usual RX burst).
pub const BURST: usize = 32;
