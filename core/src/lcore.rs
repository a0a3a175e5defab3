//! Launching work on worker lcores through a panic-catching trampoline.

use std::any::Any;
use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use rampart_dpdk_sys as sys;

use crate::eal::{Eal, LcoreId};
use crate::error::{Errno, LaunchError};

type Slot<T> = Arc<Mutex<Option<std::thread::Result<T>>>>;

struct Job<F, T> {
    work: F,
    result: Slot<T>,
}

extern "C" fn trampoline<F, T>(arg: *mut c_void) -> i32
where
    F: FnOnce() -> T,
{
    // SAFETY: `arg` is the Box<Job> leaked by `Eal::launch`, handed to
    // exactly one trampoline call.
    let job = unsafe { Box::from_raw(arg as *mut Job<F, T>) };
    let Job { work, result } = *job;
    // A panic must never unwind into C: catch it and report it at join.
    let outcome = catch_unwind(AssertUnwindSafe(work));
    let failed = outcome.is_err();
    *result.lock().unwrap_or_else(|p| p.into_inner()) = Some(outcome);
    i32::from(failed)
}

/// A running lcore job; `join` waits for it and returns its value.
pub struct WorkerHandle<T> {
    lcore: LcoreId,
    result: Slot<T>,
    _eal: Eal,
}

impl Eal {
    /// Runs `work` on worker lcore `lcore`.
    pub fn launch<F, T>(&self, lcore: LcoreId, work: F) -> Result<WorkerHandle<T>, LaunchError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        if !self.worker_lcores().contains(&lcore) {
            return Err(LaunchError::NotWorker(lcore.0));
        }
        let result: Slot<T> = Arc::new(Mutex::new(None));
        let job = Box::into_raw(Box::new(Job {
            work,
            result: result.clone(),
        }));
        // SAFETY: the trampoline matches lcore_function_t and takes
        // ownership of `job`; on failure the job was not handed over.
        let ret = unsafe {
            sys::rte_eal_remote_launch(Some(trampoline::<F, T>), job as *mut c_void, lcore.0)
        };
        if ret != 0 {
            // SAFETY: launch failed, so the trampoline never saw `job`.
            drop(unsafe { Box::from_raw(job) });
            return Err(LaunchError::Busy {
                lcore: lcore.0,
                errno: Errno::from_ret(ret),
            });
        }
        Ok(WorkerHandle {
            lcore,
            result,
            _eal: self.clone(),
        })
    }
}

impl<T> WorkerHandle<T> {
    pub fn lcore(&self) -> LcoreId {
        self.lcore
    }

    /// Waits for the job to return; a panic in it becomes `LaunchError::Panicked`.
    pub fn join(self) -> Result<T, LaunchError> {
        // SAFETY: waits for the lcore we launched on; returns its exit code.
        unsafe { sys::rte_eal_wait_lcore(self.lcore.0) };
        let outcome = self
            .result
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .expect("an lcore job always records its outcome");
        outcome.map_err(|payload| LaunchError::Panicked {
            lcore: self.lcore.0,
            message: panic_message(&payload),
        })
    }
}

fn panic_message(payload: &Box<dyn Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}
