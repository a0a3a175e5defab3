//! The Environment Abstraction Layer: a process singleton, initialized once
//! from an argument list and cleaned up when the last handle drops.

use std::ffi::{c_char, CString};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rampart_dpdk_sys as sys;

use crate::error::{EalError, Errno};

static INITIALIZED: AtomicBool = AtomicBool::new(false);

/// EAL arguments, collected before the one call to `rte_eal_init`.
#[derive(Clone, Debug, Default)]
pub struct EalBuilder {
    args: Vec<String>,
}

impl EalBuilder {
    pub fn new() -> EalBuilder {
        EalBuilder::default()
    }

    /// Appends one argument (`"-l"`, `"0-1"`, `"--no-pci"`, ...).
    pub fn arg(mut self, arg: impl Into<String>) -> EalBuilder {
        self.args.push(arg.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> EalBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Adds a virtual device (`net_pcap0,rx_pcap=in.pcap`).
    pub fn vdev(self, devargs: &str) -> EalBuilder {
        self.arg("--vdev").arg(devargs)
    }

    pub fn has_arg(&self, arg: &str) -> bool {
        self.args.iter().any(|a| a == arg)
    }

    pub fn as_args(&self) -> &[String] {
        &self.args
    }

    /// Runs `rte_eal_init`. Fails if EAL was initialized before in this process.
    pub fn init(self) -> Result<Eal, EalError> {
        if INITIALIZED.swap(true, Ordering::SeqCst) {
            return Err(EalError::AlreadyInitialized);
        }
        let mut owned = Vec::with_capacity(self.args.len() + 1);
        owned.push(CString::new("rampart").expect("static name"));
        for a in &self.args {
            owned.push(CString::new(a.as_str()).map_err(|_| EalError::BadArgument(a.clone()))?);
        }
        // EAL may keep pointers into argv for the life of the process, so
        // the strings are leaked on purpose (a few bytes, once).
        let argv: &'static mut [*mut c_char] = Box::leak(
            owned
                .into_iter()
                .map(CString::into_raw)
                .collect::<Vec<_>>()
                .into_boxed_slice(),
        );
        // SAFETY: argv holds argc valid NUL-terminated strings that live
        // forever; EAL may permute the array, which we never read again.
        let ret = unsafe { sys::rte_eal_init(argv.len() as i32, argv.as_mut_ptr()) };
        if ret < 0 {
            return Err(EalError::InitFailed(Errno::last()));
        }
        Ok(Eal {
            _inner: Arc::new(EalInner { _private: () }),
        })
    }
}

struct EalInner {
    _private: (),
}

impl Drop for EalInner {
    fn drop(&mut self) {
        // SAFETY: every object that uses EAL memory (pools, ports, rings)
        // holds an `Eal` clone, so this runs after all of them are released.
        unsafe {
            sys::rte_eal_cleanup();
        }
    }
}

/// A handle on the initialized EAL; clones share it, the last drop cleans up.
#[derive(Clone)]
pub struct Eal {
    _inner: Arc<EalInner>,
}

impl Eal {
    /// The main lcore (Rampart's control plane).
    pub fn main_lcore(&self) -> LcoreId {
        // SAFETY: plain getter, valid after init.
        LcoreId(unsafe { sys::rte_get_main_lcore() })
    }

    /// Enabled worker lcores in id order (the main lcore excluded).
    pub fn worker_lcores(&self) -> Vec<LcoreId> {
        let mut out = Vec::new();
        let mut i: u32 = u32::MAX; // rte_get_next_lcore starts after `i`
        loop {
            // SAFETY: iterates EAL's lcore table; skip_main=1, wrap=0.
            i = unsafe { sys::rte_get_next_lcore(i, 1, 0) };
            if i >= sys::RTE_MAX_LCORE {
                break;
            }
            out.push(LcoreId(i));
        }
        out
    }

    /// NUMA socket of the calling lcore.
    pub fn socket_id(&self) -> i32 {
        // SAFETY: plain getter.
        unsafe { sys::rte_socket_id() as i32 }
    }

    /// Number of ethdev ports EAL probed.
    pub fn port_count(&self) -> u16 {
        // SAFETY: plain getter.
        unsafe { sys::rte_eth_dev_count_avail() }
    }

    /// DPDK's version string, e.g. "DPDK 22.11.11".
    pub fn version() -> String {
        // SAFETY: rte_version returns a static NUL-terminated string.
        unsafe { std::ffi::CStr::from_ptr(sys::rte_version()) }
            .to_string_lossy()
            .into_owned()
    }
}

/// A DPDK logical core id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct LcoreId(pub u32);

impl LcoreId {
    /// The lcore the calling thread runs on (`u32::MAX` on a non-EAL thread).
    pub fn current() -> LcoreId {
        // SAFETY: reads a thread-local set by EAL.
        LcoreId(unsafe { sys::rte_lcore_id() })
    }
}

impl std::fmt::Display for LcoreId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}
