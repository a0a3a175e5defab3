//! Single-producer/single-consumer rings over `rte_ring_*_elem`: a typed
//! ring of plain values, and a ring that moves mbuf ownership between lcores.

use std::ffi::{c_void, CString};
use std::marker::PhantomData;
use std::mem::size_of;
use std::ptr::NonNull;
use std::sync::Arc;

use rampart_dpdk_sys as sys;

use crate::eal::Eal;
use crate::error::{Errno, RingError};
use crate::mbuf::Mbuf;

struct RawRing {
    raw: NonNull<sys::rte_ring>,
    elem_size: u32,
    _eal: Eal,
}

// SAFETY: the SP/SC ring is shared by one producer lcore and one consumer
// lcore; the handles below enforce one of each.
unsafe impl Send for RawRing {}
// SAFETY: shared only to read counts (atomic in DPDK) and to free on drop.
unsafe impl Sync for RawRing {}

impl RawRing {
    fn create(
        eal: &Eal,
        name: &str,
        count: u32,
        elem_size: usize,
        socket: i32,
    ) -> Result<RawRing, RingError> {
        if elem_size == 0 || !elem_size.is_multiple_of(4) {
            return Err(RingError::BadElementSize(elem_size));
        }
        let cname = CString::new(name).map_err(|_| RingError::BadName(name.into()))?;
        let flags = sys::RING_F_SP_ENQ | sys::RING_F_SC_DEQ | sys::RING_F_EXACT_SZ;
        // SAFETY: valid C string and plain values.
        let raw = unsafe {
            sys::rte_ring_create_elem(cname.as_ptr(), elem_size as u32, count, socket, flags)
        };
        let raw = NonNull::new(raw).ok_or_else(|| RingError::Create {
            name: name.into(),
            count,
            errno: Errno::last(),
        })?;
        Ok(RawRing {
            raw,
            elem_size: elem_size as u32,
            _eal: eal.clone(),
        })
    }

    fn count(&self) -> u32 {
        // SAFETY: live ring; the count is read from atomics.
        unsafe { sys::rte_ring_count(self.raw.as_ptr()) }
    }

    fn capacity(&self) -> u32 {
        // SAFETY: live ring.
        unsafe { sys::rte_ring_get_capacity(self.raw.as_ptr()) }
    }

    /// # Safety
    /// Only the single producer may call this; `src` holds `n` elements.
    #[inline(always)]
    unsafe fn enqueue(&self, src: *const c_void, n: u32) -> u32 {
        sys::rte_ring_sp_enqueue_burst_elem(
            self.raw.as_ptr(),
            src,
            self.elem_size,
            n,
            std::ptr::null_mut(),
        )
    }

    /// # Safety
    /// Only the single consumer may call this; `dst` has room for `n` elements.
    #[inline(always)]
    unsafe fn dequeue(&self, dst: *mut c_void, n: u32) -> u32 {
        sys::rte_ring_sc_dequeue_burst_elem(
            self.raw.as_ptr(),
            dst,
            self.elem_size,
            n,
            std::ptr::null_mut(),
        )
    }
}

impl RawRing {
    /// The element at `i` of a zero-copy reservation of `n` elements.
    fn zc_element(&self, zcd: &sys::rte_ring_zc_data, i: u32) -> *mut c_void {
        let (base, at) = if i < zcd.n1 {
            (zcd.ptr1, i)
        } else {
            (zcd.ptr2, i - zcd.n1)
        };
        base.cast::<u8>()
            .wrapping_add((at * self.elem_size) as usize)
            .cast()
    }
}

impl Drop for RawRing {
    fn drop(&mut self) {
        // SAFETY: both handles are gone; nobody uses the ring any more.
        unsafe { sys::rte_ring_free(self.raw.as_ptr()) }
    }
}

/// Namespace for creating typed SP/SC rings.
pub struct Ring<T>(PhantomData<T>);

impl<T: Copy + Default + Send + 'static> Ring<T> {
    /// Creates a ring holding exactly `count` elements of `T` (a size that
    /// must be a multiple of 4 bytes), split into its two ends. Every slot
    /// of the ring's memory is written with `T::default()` first, so the
    /// in-place (zero-copy) methods only ever see initialized values.
    pub fn create(
        eal: &Eal,
        name: &str,
        count: u32,
        socket: i32,
    ) -> Result<(RingProducer<T>, RingConsumer<T>), RingError> {
        let ring = Arc::new(RawRing::create(eal, name, count, size_of::<T>(), socket)?);
        let (mut tx, mut rx) = (
            RingProducer {
                ring: ring.clone(),
                open: Reservation::default(),
                _t: PhantomData,
            },
            RingConsumer {
                ring,
                _t: PhantomData,
            },
        );
        // The ring's storage is the next power of two above `count`, at
        // most 2 * count slots: two full passes write every one of them.
        let fill = vec![T::default(); count as usize];
        let mut scratch = fill.clone();
        for _ in 0..2 {
            let n = tx.enqueue_burst(&fill);
            debug_assert_eq!(n, count as usize);
            rx.dequeue_burst(&mut scratch[..n]);
        }
        Ok((tx, rx))
    }
}

/// The producing end; exactly one exists per ring.
pub struct RingProducer<T> {
    ring: Arc<RawRing>,
    /// The zero-copy reservation [`RingProducer::put_in_place`] fills.
    open: Reservation,
    _t: PhantomData<T>,
}

/// Slots of an open reservation prefetched ahead of the one being written.
const PREFETCH_AHEAD: u32 = 2;
/// Bytes of a slot prefetched (four cache lines).
const PREFETCH_BYTES: usize = 256;

/// Slots reserved with the zero-copy API and not yet published.
#[derive(Default)]
struct Reservation {
    zcd: sys::rte_ring_zc_data,
    reserved: u32,
    filled: u32,
}

/// The consuming end; exactly one exists per ring.
pub struct RingConsumer<T> {
    ring: Arc<RawRing>,
    _t: PhantomData<T>,
}

// SAFETY: each end is used by one lcore at a time (methods take &mut self),
// and T is Send.
unsafe impl<T: Send> Send for RingProducer<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Send for RingConsumer<T> {}

impl<T: Copy> RingProducer<T> {
    /// Enqueues as many of `items` as fit; never blocks. Returns how many.
    #[inline(always)]
    pub fn enqueue_burst(&mut self, items: &[T]) -> usize {
        self.publish();
        // SAFETY: we are the only producer; items is a valid array of T.
        unsafe {
            self.ring
                .enqueue(items.as_ptr() as *const c_void, items.len() as u32) as usize
        }
    }

    pub fn len(&self) -> u32 {
        self.ring.count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn capacity(&self) -> u32 {
        self.ring.capacity()
    }
}

impl<T: Copy> RingProducer<T> {
    /// Writes the next element in place, in the ring's own memory (no copy
    /// of `T`), and publishes it at once: `fill` gets the slot, holding
    /// some earlier value, and returns whether to keep it. False if the
    /// ring is full or `fill` declined.
    #[inline(always)]
    pub fn enqueue_in_place(&mut self, fill: impl FnOnce(&mut T) -> bool) -> bool {
        let kept = self.put_in_place(1, fill);
        self.publish();
        kept
    }

    /// Writes the next element in place like [`Self::enqueue_in_place`],
    /// into a reservation of up to `batch` slots that stays open across
    /// calls; the consumer sees the elements at [`Self::publish`]. One
    /// reservation and one publication per batch instead of per element
    /// keep the ring's head and tail cache lines from bouncing between the
    /// producer's and the consumer's cores on every element. False if the
    /// ring is full or `fill` declined (the slot is then offered again).
    #[inline(always)]
    pub fn put_in_place(&mut self, batch: u32, fill: impl FnOnce(&mut T) -> bool) -> bool {
        if self.open.filled == self.open.reserved {
            self.publish();
            let mut zcd = sys::rte_ring_zc_data::default();
            // SAFETY: we are the only producer of this SP ring and no
            // reservation is open (published above); zcd receives the
            // reserved slots.
            let n = unsafe {
                sys::rte_ring_enqueue_zc_burst_elem_start(
                    self.ring.raw.as_ptr(),
                    self.ring.elem_size,
                    batch.max(1),
                    &mut zcd,
                    std::ptr::null_mut(),
                )
            };
            if n == 0 {
                return false;
            }
            self.open = Reservation {
                zcd,
                reserved: n,
                filled: 0,
            };
            for i in 0..PREFETCH_AHEAD.min(n) {
                self.prefetch_slot(i);
            }
        }
        // SAFETY: slot `filled` of the open reservation is size_of::<T>()
        // bytes of ring memory that no one else touches until publish; it
        // holds an initialized T (Ring::create writes every slot, and every
        // later write is a whole or in-place-modified T); rte_ring aligns
        // element storage to a cache line, and esize is size_of::<T>().
        let slot = unsafe {
            &mut *self
                .ring
                .zc_element(&self.open.zcd, self.open.filled)
                .cast::<T>()
        };
        let kept = fill(slot);
        if kept {
            self.open.filled += 1;
            let ahead = self.open.filled + PREFETCH_AHEAD - 1;
            if ahead < self.open.reserved {
                self.prefetch_slot(ahead);
            }
        }
        kept
    }

    /// Prefetches slot `i` of the open reservation for writing (its first
    /// [`PREFETCH_BYTES`]: a record rarely fills a whole slot).
    #[inline(always)]
    fn prefetch_slot(&self, i: u32) {
        let base = self.ring.zc_element(&self.open.zcd, i).cast::<u8>();
        for line in (0..size_of::<T>().min(PREFETCH_BYTES)).step_by(64) {
            crate::prefetch_for_write(base.wrapping_add(line));
        }
    }

    /// Publishes the elements [`Self::put_in_place`] wrote and releases
    /// the reservation's unused slots.
    #[inline(always)]
    pub fn publish(&mut self) {
        if self.open.reserved == 0 {
            return;
        }
        // SAFETY: finishes the open reservation with the first `filled` of
        // its slots, all written; on an SP ring this also gives back the rest.
        unsafe { sys::rte_ring_enqueue_zc_elem_finish(self.ring.raw.as_ptr(), self.open.filled) };
        self.open = Reservation::default();
    }
}

impl<T> Drop for RingProducer<T> {
    fn drop(&mut self) {
        // What was written reaches the consumer; an open reservation is
        // never left behind.
        if self.open.reserved > 0 {
            // SAFETY: as in publish.
            unsafe {
                sys::rte_ring_enqueue_zc_elem_finish(self.ring.raw.as_ptr(), self.open.filled)
            };
        }
    }
}

impl<T: Copy> RingConsumer<T> {
    /// Visits up to `max` elements in place, in the ring's own memory (no
    /// copy of `T`), then releases them; returns how many.
    #[inline(always)]
    pub fn dequeue_in_place(&mut self, max: usize, mut visit: impl FnMut(&T)) -> usize {
        let mut zcd = sys::rte_ring_zc_data::default();
        // SAFETY: we are the only consumer of this SC ring.
        let n = unsafe {
            sys::rte_ring_dequeue_zc_burst_elem_start(
                self.ring.raw.as_ptr(),
                self.ring.elem_size,
                max.min(u32::MAX as usize) as u32,
                &mut zcd,
                std::ptr::null_mut(),
            )
        };
        for i in 0..n {
            // SAFETY: the first n elements of the reservation are published
            // values of T that the producer no longer writes until the
            // finish below.
            visit(unsafe { &*self.ring.zc_element(&zcd, i).cast::<T>() });
        }
        // SAFETY: finishes the reservation made above.
        unsafe { sys::rte_ring_dequeue_zc_elem_finish(self.ring.raw.as_ptr(), n) };
        n as usize
    }

    /// Dequeues up to `out.len()` items into `out`; returns how many.
    #[inline(always)]
    pub fn dequeue_burst(&mut self, out: &mut [T]) -> usize {
        // SAFETY: we are the only consumer; out has room for its length,
        // and T: Copy so overwriting its elements needs no drop.
        unsafe {
            self.ring
                .dequeue(out.as_mut_ptr() as *mut c_void, out.len() as u32) as usize
        }
    }

    pub fn len(&self) -> u32 {
        self.ring.count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An mbuf in flight between lcores with a small tag (e.g. its egress port).
#[repr(C)]
#[derive(Clone, Copy)]
struct TaggedMbuf {
    mbuf: *mut sys::rte_mbuf,
    tag: u64,
}

struct MbufRingInner {
    ring: RawRing,
}

impl Drop for MbufRingInner {
    fn drop(&mut self) {
        // Free mbufs still in the ring so nothing leaks at shutdown.
        let mut buf = [TaggedMbuf {
            mbuf: std::ptr::null_mut(),
            tag: 0,
        }; 32];
        loop {
            // SAFETY: both ends are gone, so this is the only user.
            let n = unsafe {
                self.ring
                    .dequeue(buf.as_mut_ptr() as *mut c_void, buf.len() as u32)
            };
            if n == 0 {
                break;
            }
            for t in &buf[..n as usize] {
                // SAFETY: the ring owned these mbufs.
                unsafe { sys::rte_pktmbuf_free(t.mbuf) };
            }
        }
    }
}

/// Namespace for creating SP/SC rings that move owned mbufs between lcores.
pub struct MbufRing;

impl MbufRing {
    pub fn create(
        eal: &Eal,
        name: &str,
        count: u32,
        socket: i32,
    ) -> Result<(MbufRingProducer, MbufRingConsumer), RingError> {
        let inner = Arc::new(MbufRingInner {
            ring: RawRing::create(eal, name, count, size_of::<TaggedMbuf>(), socket)?,
        });
        Ok((
            MbufRingProducer {
                inner: inner.clone(),
            },
            MbufRingConsumer { inner },
        ))
    }
}

pub struct MbufRingProducer {
    inner: Arc<MbufRingInner>,
}

pub struct MbufRingConsumer {
    inner: Arc<MbufRingInner>,
}

// SAFETY: one lcore per end (methods take &mut self); mbufs are Send.
unsafe impl Send for MbufRingProducer {}
// SAFETY: as above.
unsafe impl Send for MbufRingConsumer {}

impl MbufRingProducer {
    /// Hands one mbuf to the consumer; gives it back when the ring is full.
    #[inline(always)]
    pub fn enqueue(&mut self, mbuf: Mbuf, tag: u64) -> Result<(), Mbuf> {
        let item = TaggedMbuf {
            mbuf: mbuf.into_raw().as_ptr(),
            tag,
        };
        // SAFETY: only producer; one valid element.
        let n = unsafe {
            self.inner
                .ring
                .enqueue(&item as *const TaggedMbuf as *const c_void, 1)
        };
        if n == 1 {
            Ok(())
        } else {
            // SAFETY: the ring did not take it, so we still own it.
            Err(unsafe { Mbuf::from_raw(NonNull::new_unchecked(item.mbuf)) })
        }
    }
}

impl MbufRingConsumer {
    /// Takes up to `max` mbufs and calls `each(mbuf, tag)` for every one.
    #[inline(always)]
    pub fn dequeue_each(&mut self, max: usize, mut each: impl FnMut(Mbuf, u64)) -> usize {
        let mut buf = [TaggedMbuf {
            mbuf: std::ptr::null_mut(),
            tag: 0,
        }; 32];
        let want = max.min(buf.len()) as u32;
        // SAFETY: only consumer; buf has room for `want` elements.
        let n = unsafe {
            self.inner
                .ring
                .dequeue(buf.as_mut_ptr() as *mut c_void, want)
        } as usize;
        for t in &buf[..n] {
            // SAFETY: the producer gave up ownership of a valid mbuf.
            each(
                unsafe { Mbuf::from_raw(NonNull::new_unchecked(t.mbuf)) },
                t.tag,
            );
        }
        n
    }

    pub fn len(&self) -> u32 {
        self.inner.ring.count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Namespace for rings that pass `Arc<T>` between lcores: the control
/// plane publishes a new snapshot (a config generation) to a worker, and
/// the worker hands the one it retired back, so the worker never frees
/// memory on its hot path (an RCU-style quiescent handover).
pub struct ArcRing;

/// Sending end of an [`ArcRing`].
pub struct ArcSender<T> {
    ring: RingProducer<usize>,
    _t: PhantomData<Arc<T>>,
}

/// Receiving end of an [`ArcRing`]; frees what was never received on drop.
pub struct ArcReceiver<T> {
    ring: RingConsumer<usize>,
    _t: PhantomData<Arc<T>>,
}

// SAFETY: the ring moves `Arc<T>` ownership between threads; that is sound
// exactly when `Arc<T>` is Send, i.e. T: Send + Sync.
unsafe impl<T: Send + Sync> Send for ArcSender<T> {}
// SAFETY: as above.
unsafe impl<T: Send + Sync> Send for ArcReceiver<T> {}

impl ArcRing {
    pub fn create<T: Send + Sync + 'static>(
        eal: &Eal,
        name: &str,
        count: u32,
        socket: i32,
    ) -> Result<(ArcSender<T>, ArcReceiver<T>), RingError> {
        let (p, c) = Ring::<usize>::create(eal, name, count, socket)?;
        Ok((
            ArcSender {
                ring: p,
                _t: PhantomData,
            },
            ArcReceiver {
                ring: c,
                _t: PhantomData,
            },
        ))
    }
}

impl<T> ArcSender<T> {
    /// Sends one reference; gives it back when the ring is full.
    pub fn send(&mut self, value: Arc<T>) -> Result<(), Arc<T>> {
        let raw = Arc::into_raw(value) as usize;
        if self.ring.enqueue_burst(&[raw]) == 1 {
            Ok(())
        } else {
            // SAFETY: the ring did not take `raw`, which came from
            // Arc::into_raw just above; we still own that reference.
            Err(unsafe { Arc::from_raw(raw as *const T) })
        }
    }
}

impl<T> ArcReceiver<T> {
    /// Takes the next reference, if any (one atomic read when empty).
    #[inline]
    pub fn recv(&mut self) -> Option<Arc<T>> {
        let mut raw = [0usize; 1];
        if self.ring.dequeue_burst(&mut raw) == 1 {
            // SAFETY: every element was produced by Arc::into_raw in
            // `send` and is received exactly once.
            Some(unsafe { Arc::from_raw(raw[0] as *const T) })
        } else {
            None
        }
    }
}

impl<T> Drop for ArcReceiver<T> {
    fn drop(&mut self) {
        while self.recv().is_some() {}
    }
}
