//! Safe DPDK for Rampart.
//!
//! Ownership is explicit: an [`Mbuf`] frees itself on drop and passes to C
//! only through [`Mbuf::into_raw`]; a [`Burst`] owns up to [`MAX_BURST`]
//! mbufs and frees whatever it still holds; ports, pools and rings are
//! reference counted so a queue can never outlive the device it polls.
//! Control-path errors are `thiserror` enums that carry `rte_errno`; the
//! data path never returns errors.
//!
//! Every `unsafe` block says why it is sound in a `// SAFETY:` comment;
//! clippy refuses one without.

#![deny(clippy::undocumented_unsafe_blocks)]

mod burst;
mod eal;
mod error;
mod lcore;
mod mbuf;
mod mempool;
mod port;
mod ring;
pub mod telemetry;

pub use burst::{Burst, MAX_BURST};
pub use eal::LcoreId;
pub use eal::{Eal, EalBuilder};
pub use error::{EalError, Errno, LaunchError, MempoolError, PortError, RingError};
pub use lcore::WorkerHandle;
pub use mbuf::Mbuf;
pub use mempool::Mempool;
pub use port::{
    port_stats, ConfiguredPort, DeviceInfo, LinkStatus, Port, PortConfig, PortId, PortStats,
    QueueId, RxQueue, StartedPort, TxQueue,
};
pub use ring::{
    ArcReceiver, ArcRing, ArcSender, MbufRing, MbufRingConsumer, MbufRingProducer, Ring,
    RingConsumer, RingProducer,
};

/// Asks the CPU to bring `value`'s cache line into every cache level
/// (DPDK's `rte_prefetch0`), so a later access does not wait on memory.
#[inline(always)]
pub fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint: it never faults and changes no
    // state visible to the program; the address comes from a live reference.
    unsafe {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>((value as *const T).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

/// [`prefetch`] of the line at an address (what the safe pipeline hands
/// out: it issues no prefetch itself). Any address will do: a prefetch
/// never faults.
#[inline(always)]
pub fn prefetch_raw(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint: it never faults, even on an
    // unmapped address, and changes no state visible to the program.
    unsafe {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Asks for the cache line at `p` in a writable state (x86 `prefetchw`):
/// a line last read by another core (an event ring slot the control plane
/// drained) is then transferred ahead of the stores that would otherwise
/// wait for it. CPUs without the instruction execute it as a NOP.
#[inline(always)]
pub fn prefetch_for_write(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults, reads or writes no program-visible
    // state and touches neither the stack nor the flags.
    unsafe {
        core::arch::asm!("prefetchw [{}]", in(reg) p, options(nostack, preserves_flags, readonly));
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// TSC cycles since an arbitrary epoch: the cheap clock of the busy loop.
#[inline(always)]
pub fn tsc_cycles() -> u64 {
    // DPDK's rte_rdtsc is this instruction on x86; inline it here instead
    // of calling the exported wrapper of DPDK's static inline function.
    #[cfg(target_arch = "x86_64")]
    // SAFETY: RDTSC reads the time-stamp counter; no memory is touched.
    unsafe {
        core::arch::x86_64::_rdtsc()
    }
    #[cfg(not(target_arch = "x86_64"))]
    // SAFETY: reads the time-stamp counter; no memory is touched.
    unsafe {
        rampart_dpdk_sys::rte_get_tsc_cycles()
    }
}

/// TSC frequency in Hz as DPDK calibrated it at EAL init.
pub fn tsc_hz() -> u64 {
    // SAFETY: plain getter of a value EAL computed at init.
    unsafe { rampart_dpdk_sys::rte_get_tsc_hz() }
}

/// Sets the process's file-creation mask and returns the previous one.
/// `rampart run` restricts it before creating its sockets, so a socket is
/// never reachable by others in the moment between its creation and the
/// chmod to the configured mode.
pub fn set_umask(mask: u32) -> u32 {
    // SAFETY: umask only swaps a per-process integer; it cannot fail.
    unsafe { libc::umask(mask as libc::mode_t) as u32 }
}

/// Gives the heap's free memory back to the system (glibc `malloc_trim`,
/// every arena). Called after a retired config generation is freed: a
/// large ruleset is compiled on a thread of its own, and without the trim
/// the freed generations linger in the allocator's arenas.
pub fn trim_heap() {
    // SAFETY: malloc_trim only walks and releases the allocator's own free
    // memory; it takes no pointers and is safe to call from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Bytes written to a connected socket that its peer has not read yet
/// (Linux `SIOCOUTQ`; for a Unix stream socket the kernel's accounting of
/// the queued buffers, which falls as the peer reads). The event hub tells
/// a consumer that reads from one that never does by it.
pub fn socket_unread_bytes(socket: &impl std::os::fd::AsRawFd) -> std::io::Result<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: SIOCOUTQ (== TIOCOUTQ) writes one int through the pointer,
    // which points at a live local; the fd is borrowed from a live socket.
    let r = unsafe {
        libc::ioctl(
            socket.as_raw_fd(),
            libc::TIOCOUTQ,
            &mut n as *mut libc::c_int,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(n.max(0) as usize)
}

#[cfg(test)]
mod socket_tests {
    use std::io::{Read, Write};

    #[test]
    fn unread_bytes_fall_when_the_peer_reads() {
        let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
        assert_eq!(super::socket_unread_bytes(&a).unwrap(), 0);
        (&a).write_all(&[7u8; 1000]).unwrap();
        let queued = super::socket_unread_bytes(&a).unwrap();
        assert!(queued >= 1000, "{queued}");
        let mut buf = [0u8; 1000];
        b.read_exact(&mut buf).unwrap();
        assert_eq!(super::socket_unread_bytes(&a).unwrap(), 0);
    }
}
