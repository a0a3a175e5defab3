//! Packet-buffer pools.

use std::ffi::CString;
use std::ptr::NonNull;
use std::sync::Arc;

use rampart_dpdk_sys as sys;

use crate::eal::Eal;
use crate::error::{Errno, MempoolError};

struct PoolInner {
    raw: NonNull<sys::rte_mempool>,
    _eal: Eal,
}

// SAFETY: rte_mempool is designed for concurrent use from many lcores
// (per-lcore caches plus a lock-free backing ring).
unsafe impl Send for PoolInner {}
// SAFETY: as above; every operation we expose is thread-safe in DPDK.
unsafe impl Sync for PoolInner {}

impl Drop for PoolInner {
    fn drop(&mut self) {
        // An mbuf still out would be freed into released memory later, so a
        // pool with buffers in use is deliberately leaked instead.
        // SAFETY: raw is a live pool; the count read is thread-safe.
        if unsafe { sys::rte_mempool_in_use_count(self.raw.as_ptr()) } == 0 {
            // SAFETY: no mbuf of this pool is alive and no port holds it
            // (ports keep a Mempool clone).
            unsafe { sys::rte_mempool_free(self.raw.as_ptr()) };
        }
    }
}

/// A pool of packet mbufs, shared by reference count.
#[derive(Clone)]
pub struct Mempool {
    inner: Arc<PoolInner>,
}

impl Mempool {
    /// Creates a pktmbuf pool of `count` buffers of DPDK's default data
    /// room (2 KiB + headroom), with a per-lcore cache.
    pub fn create_pktmbuf(
        eal: &Eal,
        name: &str,
        count: u32,
        cache: u32,
        socket: i32,
    ) -> Result<Mempool, MempoolError> {
        Mempool::create_pktmbuf_sized(
            eal,
            name,
            count,
            cache,
            socket,
            sys::RTE_MBUF_DEFAULT_BUF_SIZE as u16,
        )
    }

    /// [`Mempool::create_pktmbuf`] with buffers of `data_room` bytes
    /// (headroom included), for frames longer than the default 2 KiB.
    pub fn create_pktmbuf_sized(
        eal: &Eal,
        name: &str,
        count: u32,
        cache: u32,
        socket: i32,
        data_room: u16,
    ) -> Result<Mempool, MempoolError> {
        let cname = CString::new(name).map_err(|_| MempoolError::BadName(name.into()))?;
        // SAFETY: cname is a valid C string; the remaining arguments are plain values.
        let raw = unsafe {
            sys::rte_pktmbuf_pool_create(
                cname.as_ptr(),
                count,
                cache.min(sys::RTE_MEMPOOL_CACHE_MAX_SIZE),
                0,
                data_room,
                socket,
            )
        };
        let raw = NonNull::new(raw).ok_or_else(|| MempoolError::Create {
            name: name.into(),
            count,
            errno: Errno::last(),
        })?;
        Ok(Mempool {
            inner: Arc::new(PoolInner {
                raw,
                _eal: eal.clone(),
            }),
        })
    }

    /// Buffers currently allocated (including those held in lcore caches
    /// by DPDK's accounting).
    pub fn in_use(&self) -> u32 {
        // SAFETY: thread-safe read of a live pool.
        unsafe { sys::rte_mempool_in_use_count(self.as_ptr()) }
    }

    pub fn available(&self) -> u32 {
        // SAFETY: thread-safe read of a live pool.
        unsafe { sys::rte_mempool_avail_count(self.as_ptr()) }
    }

    pub(crate) fn as_ptr(&self) -> *mut sys::rte_mempool {
        self.inner.raw.as_ptr()
    }
}
