//! Control-path errors, one enum per operation, each carrying `rte_errno`.

use std::ffi::CStr;
use std::fmt;

use rampart_dpdk_sys as sys;

/// A DPDK error number with DPDK's own description.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Errno(pub i32);

impl Errno {
    /// The calling thread's current `rte_errno`.
    pub fn last() -> Errno {
        // SAFETY: reads a thread-local integer through the C shim.
        Errno(unsafe { sys::rampart_rte_errno() })
    }

    /// From a negative return code (`-errno`), as most ethdev calls return.
    pub fn from_ret(ret: i32) -> Errno {
        Errno(ret.abs())
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // SAFETY: rte_strerror returns a pointer to a static or thread-local
        // NUL-terminated string, valid until the next call on this thread.
        let text = unsafe { CStr::from_ptr(sys::rte_strerror(self.0)) };
        write!(f, "{} (errno {})", text.to_string_lossy(), self.0)
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EalError {
    #[error("EAL is already initialized in this process")]
    AlreadyInitialized,
    #[error("EAL argument contains a NUL byte: {0:?}")]
    BadArgument(String),
    #[error("EAL initialization failed: {0}")]
    InitFailed(Errno),
}

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("lcore {0} is not an enabled worker lcore")]
    NotWorker(u32),
    #[error("lcore {lcore} is busy: {errno}")]
    Busy { lcore: u32, errno: Errno },
    #[error("worker on lcore {lcore} panicked: {message}")]
    Panicked { lcore: u32, message: String },
}

#[derive(Debug, thiserror::Error)]
pub enum MempoolError {
    #[error("mempool name {0:?} is invalid")]
    BadName(String),
    #[error("cannot create mempool {name} ({count} mbufs): {errno}")]
    Create {
        name: String,
        count: u32,
        errno: Errno,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum PortError {
    #[error("no DPDK port named {0:?} (is the device probed? vdevs need --vdev, PCI devices an -a allowlist entry and a DPDK-bound driver)")]
    NotFound(String),
    #[error("port {port}: {op} failed: {errno}")]
    Op {
        port: u16,
        op: &'static str,
        errno: Errno,
    },
    #[error("port {port}: {what}")]
    Unsupported { port: u16, what: String },
    #[error("port {port}: queue {queue} was already taken or does not exist")]
    QueueUnavailable { port: u16, queue: u16 },
}

#[derive(Debug, thiserror::Error)]
pub enum RingError {
    #[error("ring name {0:?} is invalid")]
    BadName(String),
    #[error("ring element size {0} must be a non-zero multiple of 4 bytes")]
    BadElementSize(usize),
    #[error("cannot create ring {name} of {count} elements: {errno}")]
    Create {
        name: String,
        count: u32,
        errno: Errno,
    },
}
