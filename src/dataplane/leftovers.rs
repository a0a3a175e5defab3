//! What DPDK leaves on disk, and what Rampart removes. By default the EAL
//! runs `--in-memory` (see [`super::eal_args`]): its hugepages are anonymous
//! memory the kernel takes back on any exit, SIGKILL included, so nothing
//! stays in hugetlbfs. What a process can still leave is its runtime
//! directory (`<runtime base>/rampart-<pid>`: the telemetry socket), and a
//! predecessor that ran with hugepage files (an older version, or a config
//! that chose `--file-prefix` without `--in-memory`) may have left
//! `rampart-<pid>map_N` files holding hugepages. Both are named after a pid:
//! at start Rampart removes those of processes that no longer exist, and
//! at exit its own runtime directory.

use std::path::{Path, PathBuf};

/// The file prefix Rampart gives the EAL of this process.
pub fn own_prefix() -> String {
    format!("rampart-{}", std::process::id())
}

/// DPDK's base directory for runtime files (`eal_create_runtime_dir`):
/// `/var/run/dpdk` for root, else `$XDG_RUNTIME_DIR/dpdk` or `/tmp/dpdk`.
fn runtime_base() -> PathBuf {
    if effective_uid() == Some(0) {
        return PathBuf::from("/var/run/dpdk");
    }
    std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"))
        .join("dpdk")
}

fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// The pid of a name Rampart's own prefix made: `rampart-<pid>` exactly,
/// or followed by `map_` (a hugepage file). Other names (tests', the
/// benchmark's, other programs') are never touched.
fn pid_of(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("rampart-")?;
    let digits = rest.split("map_").next()?;
    let tail = &rest[digits.len()..];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !tail.is_empty()
        && !tail
            .strip_prefix("map_")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    digits.parse().ok()
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// hugetlbfs mount points (from /proc/mounts).
fn hugetlbfs_mounts() -> Vec<PathBuf> {
    std::fs::read_to_string("/proc/mounts")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(2) == Some(&"hugetlbfs")).then(|| PathBuf::from(f[1]))
        })
        .collect()
}

/// Removes the hugepage files and runtime directories of Rampart processes
/// that no longer exist; returns how many entries went.
pub fn remove_stale() -> usize {
    let mut removed = 0;
    let mut dirs = hugetlbfs_mounts();
    dirs.push(runtime_base());
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name.to_str().and_then(pid_of) else {
                continue;
            };
            if pid == std::process::id() || alive(pid) {
                continue;
            }
            let path = entry.path();
            let gone = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            if gone.is_ok() {
                removed += 1;
            }
        }
    }
    removed
}

/// Removes this process's runtime directory, if the EAL ran under
/// Rampart's own prefix (call after the EAL is cleaned up).
pub fn remove_own_runtime_dir() {
    let _ = std::fs::remove_dir_all(runtime_base().join(own_prefix()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_rampart_pid_names_are_candidates() {
        assert_eq!(pid_of("rampart-1234"), Some(1234));
        assert_eq!(pid_of("rampart-1234map_0"), Some(1234));
        assert_eq!(pid_of("rampart-1234map_17"), Some(1234));
        for other in [
            "rampart-test-fwd1",
            "rampart-bench-1100-7",
            "rampart-1234x",
            "rampart-map_0",
            "rampart-12map_",
            "rte",
            "rtemap_0",
            "rampart-",
        ] {
            assert_eq!(pid_of(other), None, "{other}");
        }
    }
}
