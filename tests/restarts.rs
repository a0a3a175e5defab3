//! Restarts leave nothing behind: an appliance restarts Rampart for
//! upgrades, reloads that need a restart and after crashes, so every run,
//! stopped cleanly or killed, must give back its hugepages and remove its
//! files; what a killed run leaves (its runtime directory) goes at the
//! next start, as do hugepage files a predecessor left in hugetlbfs.
//!
//! `RAMPART_RESTARTS=N` sets the number of runs (default 10, half of them
//! SIGKILLed; RELIABILITY.md reports 100). Skips where the machine has no
//! hugepages.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn meminfo(key: &str) -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn hugetlbfs_mount() -> Option<std::path::PathBuf> {
    std::fs::read_to_string("/proc/mounts")
        .ok()?
        .lines()
        .find(|l| l.split_whitespace().nth(2) == Some("hugetlbfs"))
        .and_then(|l| l.split_whitespace().nth(1))
        .map(std::path::PathBuf::from)
}

/// Entries named after `pid` in `dir` (hugepage files, runtime dirs).
fn left_by(dir: &std::path::Path, pid: u32) -> Vec<String> {
    let prefix = format!("rampart-{pid}");
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n == &prefix || n.starts_with(&format!("{prefix}map_")))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn clean_stops_and_sigkills_give_back_every_hugepage() {
    let Some(mount) = hugetlbfs_mount() else {
        eprintln!("SKIP: no hugetlbfs mount (meson-scripts/setup.sh mounts one)");
        return;
    };
    if meminfo("HugePages_Free:") < 64 {
        eprintln!("SKIP: fewer than 64 free hugepages");
        return;
    }
    let runs: usize = std::env::var("RAMPART_RESTARTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let dir = TempDir::new();
    // Hugepages, the way an appliance runs: no --no-huge, no prefix of
    // our own (Rampart chooses both).
    let config = null_pair_config(
        &dir,
        "hugepages",
        r#"["-m", "64", "--log-level", "lib.eal:error"]"#,
    );
    // What a predecessor with hugepage files, killed, would have left.
    let dead = 4_190_000 + std::process::id() % 4000;
    assert!(!std::path::Path::new(&format!("/proc/{dead}")).exists());
    let stale = mount.join(format!("rampart-{dead}map_0"));
    std::fs::write(&stale, b"").unwrap();

    let free_before = meminfo("HugePages_Free:");
    let runtime = std::path::Path::new("/var/run/dpdk");
    let mut killed = Vec::new();
    for run in 0..runs {
        let control = dir.path("control.sock");
        let mut child = KillOnDrop::new(
            rampart()
                .args(["run", "--config", config.to_str().unwrap()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::os::unix::net::UnixStream::connect(&control).is_err() {
            assert!(Instant::now() < deadline, "run {run} did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
        let pid = child.id();
        let signal = if run % 2 == 0 { "-TERM" } else { "-KILL" };
        Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .unwrap();
        let status = child.child().wait().unwrap();
        if run % 2 == 0 {
            assert!(status.success(), "run {run}: {status}");
            assert!(
                left_by(runtime, pid).is_empty(),
                "run {run} left its runtime dir"
            );
        } else {
            killed.push(pid);
        }
        assert!(
            left_by(&mount, pid).is_empty(),
            "run {run} left hugepage files"
        );
        // A killed run's control socket stays; the next start replaces it.
        assert_eq!(
            meminfo("HugePages_Free:"),
            free_before,
            "run {run} ({signal}) kept hugepages"
        );
    }
    assert!(
        !stale.exists(),
        "a predecessor's hugepage file is removed at start"
    );
    // Runtime dirs of killed runs are gone by the next start (the last
    // kill's, at the start after it; run once more to cover it).
    let out = run_ok(&["--config", config.to_str().unwrap(), "--duration", "0.2"]);
    drop(out);
    for pid in killed {
        assert!(left_by(runtime, pid).is_empty(), "pid {pid}'s runtime dir");
    }
    assert_eq!(meminfo("HugePages_Free:"), free_before);
}
