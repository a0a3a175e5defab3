//! DPDK telemetry: named commands (`/rampart/stats`, ...) answered with a
//! dict of counters, so `dpdk-telemetry.py` can query a running Rampart.
//! Callbacks run on DPDK's telemetry thread, never on a worker.

use std::ffi::{c_char, c_int, CStr, CString};
use std::sync::Mutex;

use rampart_dpdk_sys as sys;

use crate::eal::Eal;
use crate::error::Errno;

/// A counter source: named values, computed when a client asks.
pub type Source = Box<dyn Fn() -> Vec<(String, u64)> + Send + Sync>;

struct Command {
    name: CString,
    source: Source,
}

static COMMANDS: Mutex<Vec<Command>> = Mutex::new(Vec::new());

/// DPDK's limits: dict entries per reply, and bytes per entry name.
const MAX_ENTRIES: usize = 256;
const MAX_NAME: usize = 63;

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("telemetry command {0:?} must start with '/' and contain no NUL")]
    BadName(String),
    #[error("registering telemetry command {name}: {errno}")]
    Register { name: String, errno: Errno },
}

unsafe extern "C" fn answer(
    cmd: *const c_char,
    _params: *const c_char,
    info: *mut sys::rte_tel_data,
) -> c_int {
    // SAFETY: DPDK passes the registered command as a NUL-terminated string.
    let cmd = unsafe { CStr::from_ptr(cmd) };
    let commands = COMMANDS.lock().unwrap_or_else(|p| p.into_inner());
    let Some(command) = commands.iter().find(|c| c.name.as_c_str() == cmd) else {
        return -1;
    };
    // A panic must not cross into C: report an error reply instead.
    let Ok(values) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (command.source)()))
    else {
        return -1;
    };
    // SAFETY: `info` is the reply object DPDK hands to this callback.
    unsafe { sys::rte_tel_data_start_dict(info) };
    for (name, value) in values.into_iter().take(MAX_ENTRIES) {
        // DPDK accepts only [A-Za-z0-9_] in dict keys.
        let mut name: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        name.truncate(MAX_NAME);
        if let Ok(name) = CString::new(name) {
            // SAFETY: valid reply object and NUL-terminated name; DPDK copies the name.
            unsafe { sys::rte_tel_data_add_dict_u64(info, name.as_ptr(), value) };
        }
    }
    0
}

/// Registers `command` (e.g. `/rampart/stats`) answered by `source`.
pub fn register(
    _eal: &Eal,
    command: &str,
    help: &str,
    source: Source,
) -> Result<(), TelemetryError> {
    if !command.starts_with('/') {
        return Err(TelemetryError::BadName(command.into()));
    }
    let name = CString::new(command).map_err(|_| TelemetryError::BadName(command.into()))?;
    let help = CString::new(help).unwrap_or_default();
    let mut commands = COMMANDS.lock().unwrap_or_else(|p| p.into_inner());
    commands.push(Command {
        name: name.clone(),
        source,
    });
    // DPDK keeps the help pointer: it must live as long as the process.
    let help: &'static CStr = Box::leak(help.into_boxed_c_str());
    // SAFETY: valid NUL-terminated strings: the command's heap buffer is
    // owned by the CString kept in COMMANDS for the life of the process
    // (moving the CString does not move its buffer), the help string is
    // leaked; `answer` matches telemetry_cb and catches panics.
    let ret =
        unsafe { sys::rte_telemetry_register_cmd(name.as_ptr(), Some(answer), help.as_ptr()) };
    if ret != 0 {
        commands.pop();
        return Err(TelemetryError::Register {
            name: command.into(),
            errno: Errno::from_ret(ret),
        });
    }
    Ok(())
}
