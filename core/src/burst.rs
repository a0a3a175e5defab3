//! A fixed-capacity batch of owned mbufs: the unit RX fills, stages
//! classify and TX drains, without allocating.

use std::mem::MaybeUninit;
use std::ptr::NonNull;

use rampart_dpdk_sys as sys;

use crate::mbuf::Mbuf;

/// Packets per burst, as in l3fwd.
pub const MAX_BURST: usize = 32;

/// Up to [`MAX_BURST`] owned mbufs in order. Dropping a burst frees what it
/// still holds, so a partly sent TX burst can never leak its tail.
pub struct Burst {
    slots: [MaybeUninit<Mbuf>; MAX_BURST],
    len: usize,
}

impl Default for Burst {
    fn default() -> Self {
        Burst::new()
    }
}

impl Burst {
    pub const fn new() -> Burst {
        Burst {
            slots: [const { MaybeUninit::uninit() }; MAX_BURST],
            len: 0,
        }
    }

    #[inline(always)]
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline(always)]
    pub fn is_full(&self) -> bool {
        self.len == MAX_BURST
    }

    #[inline(always)]
    pub fn as_slice(&self) -> &[Mbuf] {
        // SAFETY: slots[..len] are initialized, and MaybeUninit<Mbuf> has
        // Mbuf's layout.
        unsafe { std::slice::from_raw_parts(self.slots.as_ptr() as *const Mbuf, self.len) }
    }

    #[inline(always)]
    pub fn as_mut_slice(&mut self) -> &mut [Mbuf] {
        // SAFETY: as in as_slice, uniquely borrowed.
        unsafe { std::slice::from_raw_parts_mut(self.slots.as_mut_ptr() as *mut Mbuf, self.len) }
    }

    /// Adds an mbuf; gives it back when the burst is full.
    #[inline(always)]
    pub fn push(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        if self.len == MAX_BURST {
            return Err(m);
        }
        self.slots[self.len].write(m);
        self.len += 1;
        Ok(())
    }

    /// Removes and returns every mbuf, front to back.
    #[inline(always)]
    pub fn drain(&mut self) -> Drain<'_> {
        let len = self.len;
        // Ownership moves to the iterator; anything it does not yield is
        // freed when it drops.
        self.len = 0;
        Drain {
            burst: self,
            next: 0,
            end: len,
        }
    }

    /// Frees every mbuf, in one return to their pools.
    pub fn clear(&mut self) {
        if self.len == 0 {
            return;
        }
        let (ptr, n) = self.held_raw();
        // SAFETY: the first len slots are owned mbufs; bulk free takes
        // them all, and the burst forgets them.
        unsafe { sys::rte_pktmbuf_free_bulk(ptr, n as u32) };
        self.len = 0;
    }

    /// Raw pointers of the free tail, for `rte_eth_rx_burst` to fill.
    #[inline(always)]
    pub(crate) fn spare_raw(&mut self) -> (*mut *mut sys::rte_mbuf, u16) {
        // SAFETY: Mbuf is a transparent NonNull<rte_mbuf>, so a slot can
        // hold a raw mbuf pointer written by C.
        let ptr = unsafe { self.slots.as_mut_ptr().add(self.len) } as *mut *mut sys::rte_mbuf;
        (ptr, (MAX_BURST - self.len) as u16)
    }

    /// Records that C wrote `n` valid mbuf pointers into the spare tail.
    ///
    /// # Safety
    /// The `n` slots after `len` must hold valid, owned, non-null mbufs.
    #[inline(always)]
    pub(crate) unsafe fn assume_filled(&mut self, n: usize) {
        self.len += n;
    }

    /// Raw pointers of the held mbufs, for `rte_eth_tx_burst`.
    #[inline(always)]
    pub(crate) fn held_raw(&mut self) -> (*mut *mut sys::rte_mbuf, u16) {
        (
            self.slots.as_mut_ptr() as *mut *mut sys::rte_mbuf,
            self.len as u16,
        )
    }

    /// Forgets the first `n` mbufs (C took them) and moves the rest up.
    ///
    /// # Safety
    /// The first `n` mbufs must have been handed to C.
    #[inline(always)]
    pub(crate) unsafe fn consume_front(&mut self, n: usize) {
        let rest = self.len - n;
        if rest > 0 && n > 0 {
            // SAFETY: both ranges lie within the slot array; copy handles overlap.
            std::ptr::copy(self.slots.as_ptr().add(n), self.slots.as_mut_ptr(), rest);
        }
        self.len = rest;
    }
}

impl Drop for Burst {
    fn drop(&mut self) {
        self.clear();
    }
}

/// Yields a burst's mbufs by value; frees what was not taken.
pub struct Drain<'a> {
    burst: &'a mut Burst,
    next: usize,
    end: usize,
}

impl Iterator for Drain<'_> {
    type Item = Mbuf;

    #[inline(always)]
    fn next(&mut self) -> Option<Mbuf> {
        if self.next == self.end {
            return None;
        }
        // SAFETY: slots[next..end] are initialized and owned by the drain;
        // each is read exactly once.
        let m = unsafe { self.burst.slots[self.next].assume_init_read() };
        self.next += 1;
        Some(m)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.end - self.next;
        (n, Some(n))
    }
}

impl ExactSizeIterator for Drain<'_> {}

impl Drop for Drain<'_> {
    fn drop(&mut self) {
        for m in self.by_ref() {
            drop(m);
        }
    }
}

// Keep the pointer type used above honest.
const _: () = assert!(std::mem::size_of::<Mbuf>() == std::mem::size_of::<NonNull<sys::rte_mbuf>>());
