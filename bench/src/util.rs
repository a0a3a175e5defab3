//! Small helpers shared by the harness's modules: CPU pinning, child
//! processes, medians.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::{json, Value};

/// Pins the calling thread to one CPU (through taskset on its TID; no libc).
pub fn pin_current_thread(cpu: u32) {
    if let Ok(link) = std::fs::read_link("/proc/thread-self") {
        if let Some(tid) = link.file_name().and_then(|t| t.to_str()) {
            let _ = Command::new("taskset")
                .args(["-pc", &cpu.to_string(), tid])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

pub fn sh(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Stat {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub n: usize,
}

pub fn stat(v: &[f64]) -> Option<Stat> {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let m = v.len();
    let median = if m % 2 == 1 {
        v[m / 2]
    } else {
        (v[m / 2 - 1] + v[m / 2]) / 2.0
    };
    Some(Stat {
        median,
        min: v[0],
        max: v[m - 1],
        n: m,
    })
}

pub fn stat_json(s: Option<Stat>) -> Value {
    match s {
        Some(s) => json!({"median": s.median, "min": s.min, "max": s.max, "n": s.n}),
        None => Value::Null,
    }
}

pub fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// Waits for `child`, killing it after `timeout`.
pub fn wait_child(
    child: &mut Child,
    timeout: Duration,
) -> anyhow::Result<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(s) = child.try_wait()? {
            return Ok(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("timed out after {:.0} s, killed", timeout.as_secs_f64());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The last `lines` lines of a file (for error messages).
pub fn tail(path: &Path, lines: usize) -> String {
    let s = std::fs::read_to_string(path).unwrap_or_default();
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

/// EAL arguments every process of the harness gets: no shared config, its
/// own file prefix, lcore 0 on the control CPU and lcore 1 on the worker CPU.
pub fn eal_common(memory: &[&str], prefix: &str, control_cpu: u32, worker_cpu: u32) -> Vec<String> {
    let mut v: Vec<String> = memory.iter().map(|s| s.to_string()).collect();
    v.extend([
        "--no-shconf".into(),
        format!("--file-prefix={prefix}"),
        "--lcores".into(),
        format!("0@{control_cpu},1@{worker_cpu}"),
        "--log-level".into(),
        "lib.eal:error".into(),
    ]);
    v
}

/// Sends SIGTERM (through kill(1); no libc) for a graceful stop.
pub fn terminate(child: &Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// EAL memory of the pcap-replay topology (no hugepages needed).
pub const REPLAY_MEMORY: [&str; 3] = ["--no-huge", "-m", "1024"];

/// EAL memory of the vhost topology (vhost-user needs shared hugepage memory).
pub const VHOST_MEMORY: [&str; 4] = ["--in-memory", "--single-file-segments", "-m", "512"];
