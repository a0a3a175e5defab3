//! One owned packet buffer.

use std::ptr::NonNull;

use rampart_dpdk_sys as sys;

use crate::mempool::Mempool;

/// An owned mbuf: freed to its pool on drop unless handed to C with
/// [`Mbuf::into_raw`]. Only the first segment's data is exposed; Rampart's
/// pools use single-segment buffers large enough for a standard MTU.
#[repr(transparent)]
pub struct Mbuf {
    raw: NonNull<sys::rte_mbuf>,
}

// SAFETY: an Mbuf is uniquely owned; moving it to another lcore moves the
// ownership, and mempool frees are thread-safe.
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// Allocates from `pool`; `None` when the pool is empty.
    pub fn alloc(pool: &Mempool) -> Option<Mbuf> {
        // SAFETY: pool is live; a NULL return means exhausted.
        NonNull::new(unsafe { sys::rte_pktmbuf_alloc(pool.as_ptr()) }).map(|raw| Mbuf { raw })
    }

    /// Takes ownership of a raw mbuf.
    ///
    /// # Safety
    /// `raw` must be a valid mbuf that nobody else owns or will free.
    pub unsafe fn from_raw(raw: NonNull<sys::rte_mbuf>) -> Mbuf {
        Mbuf { raw }
    }

    /// Gives up ownership, e.g. to `rte_eth_tx_burst`.
    pub fn into_raw(self) -> NonNull<sys::rte_mbuf> {
        let raw = self.raw;
        std::mem::forget(self);
        raw
    }

    #[inline(always)]
    fn hdr(&self) -> &sys::rte_mbuf {
        // SAFETY: we own a valid mbuf for our whole lifetime.
        unsafe { self.raw.as_ref() }
    }

    /// The first segment's packet bytes.
    #[inline(always)]
    pub fn data(&self) -> &[u8] {
        let m = self.hdr();
        // SAFETY: buf_addr + data_off .. + data_len lies inside the buffer
        // DPDK allocated for this mbuf, which we own.
        unsafe {
            std::slice::from_raw_parts(
                (m.buf_addr as *const u8).add(m.data_off as usize),
                m.data_len as usize,
            )
        }
    }

    #[inline(always)]
    pub fn data_mut(&mut self) -> &mut [u8] {
        let (addr, off, len) = {
            let m = self.hdr();
            (
                m.buf_addr as *mut u8,
                m.data_off as usize,
                m.data_len as usize,
            )
        };
        // SAFETY: as in `data`, and `&mut self` makes the access unique.
        unsafe { std::slice::from_raw_parts_mut(addr.add(off), len) }
    }

    /// The whole packet, every segment of its chain in order, copied into
    /// `out`; `None` if it does not fit (or the chain is inconsistent).
    /// For a chained (jumbo) packet whose headers the pipeline must read
    /// as one frame; the chain itself is forwarded as it is.
    pub fn copy_chain<'a>(&self, out: &'a mut [u8]) -> Option<&'a [u8]> {
        let total = self.pkt_len() as usize;
        if total > out.len() {
            return None;
        }
        let mut at = 0;
        let mut seg: *const sys::rte_mbuf = self.raw.as_ptr();
        for _ in 0..self.nb_segs() {
            if seg.is_null() {
                return None;
            }
            // SAFETY: `seg` is this mbuf or a segment its chain links to
            // through `next` (DPDK keeps the chain valid while we own the
            // head), and at most `nb_segs` of them are visited.
            let m = unsafe { &*seg };
            let len = m.data_len as usize;
            let dst = out.get_mut(at..at + len)?;
            // SAFETY: buf_addr + data_off .. + data_len lies inside the
            // segment's buffer, as in `data`.
            let src = unsafe {
                std::slice::from_raw_parts((m.buf_addr as *const u8).add(m.data_off as usize), len)
            };
            dst.copy_from_slice(src);
            at += len;
            seg = m.next;
        }
        (at == total).then_some(&out[..total])
    }

    /// Total packet length over all segments.
    #[inline(always)]
    pub fn pkt_len(&self) -> u32 {
        self.hdr().pkt_len
    }

    #[inline(always)]
    pub fn nb_segs(&self) -> u16 {
        self.hdr().nb_segs
    }

    /// The port the packet arrived on.
    #[inline(always)]
    pub fn port(&self) -> u16 {
        self.hdr().port
    }

    /// The RSS hash the NIC computed, when it computed one.
    #[inline(always)]
    pub fn rss_hash(&self) -> Option<u32> {
        let m = self.hdr();
        if m.ol_flags & sys::RTE_MBUF_F_RX_RSS_HASH as u64 != 0 {
            // SAFETY: the RSS flag says the `rss` member of the hash union is valid.
            Some(unsafe { m.__bindgen_anon_2.hash.rss })
        } else {
            None
        }
    }

    /// Appends `len` bytes to the packet and returns them; `None` if the
    /// buffer has no room.
    pub fn append(&mut self, len: u16) -> Option<&mut [u8]> {
        // SAFETY: we own the mbuf; NULL means no tailroom.
        let p = unsafe { sys::rte_pktmbuf_append(self.raw.as_ptr(), len) };
        if p.is_null() {
            return None;
        }
        // SAFETY: DPDK returned `len` writable bytes inside our buffer.
        Some(unsafe { std::slice::from_raw_parts_mut(p as *mut u8, len as usize) })
    }

    /// Sets the packet length (single segment), within the buffer's room.
    pub fn truncate(&mut self, len: u16) {
        // SAFETY: we own the mbuf; shrinking is always in bounds.
        let m = unsafe { self.raw.as_mut() };
        if len < m.data_len {
            m.data_len = len;
            m.pkt_len = len as u32;
        }
    }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // SAFETY: we own the mbuf and nobody else will free it.
        unsafe { sys::rte_pktmbuf_free(self.raw.as_ptr()) }
    }
}
