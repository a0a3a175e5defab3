//! Helpers for end-to-end tests: they run the real `rampart` binary on
//! DPDK vdevs (always `--no-pci`, a unique file prefix, `--no-huge`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rampart_pipeline::pcap;

pub fn rampart() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rampart"))
}

/// EAL arguments every test config carries.
pub fn test_eal(test: &str) -> String {
    format!(
        r#"["--no-huge", "-m", "512", "--no-shconf", "--file-prefix=rampart-test-{test}", "--log-level", "lib.eal:error"]"#
    )
}

pub fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    let file = std::fs::File::create(path).unwrap();
    let mut w = pcap::Writer::new(std::io::BufWriter::new(file)).unwrap();
    for (i, f) in frames.iter().enumerate() {
        w.write(1_700_000_000_000_000_000 + i as u64 * 1000, f)
            .unwrap();
    }
    w.finish().unwrap();
}

pub fn read_pcap(path: &Path) -> Vec<Vec<u8>> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    pcap::read_all(std::io::BufReader::new(file))
        .unwrap()
        .into_iter()
        .map(|r| r.data)
        .collect()
}

/// Runs `rampart run` and insists it exits 0; returns its output.
pub fn run_ok(args: &[&str]) -> Output {
    let out = rampart()
        .arg("run")
        .args(args)
        .output()
        .expect("spawn rampart");
    assert!(
        out.status.success(),
        "rampart run {args:?} failed: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub struct TempDir(pub tempfile::TempDir);

impl TempDir {
    pub fn new() -> TempDir {
        TempDir(tempfile::tempdir().unwrap())
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}
