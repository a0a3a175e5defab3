//! A printing command whose reader goes away (`rampart trace ... | head`)
//! stops quietly with status 141 (128 + SIGPIPE, what a shell reports for
//! `seq` or `cat` killed by SIGPIPE), never a panic. No DPDK: `trace`
//! runs the pipeline offline.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use common::*;
use rampart_testkit::traffic;

const DEMO: &str = include_str!("../src/demo.toml");

/// Runs `rampart trace` over a capture far bigger than a pipe buffer,
/// reads `lines` lines of its stdout and closes it; returns the exit
/// status and stderr.
fn trace_closed_early(extra: &[&str], lines: usize) -> (std::process::ExitStatus, String) {
    let dir = TempDir::new();
    let config = dir.write(
        "demo.toml",
        &DEMO.replace("@DIR@", dir.0.path().to_str().unwrap()),
    );
    let frames: Vec<Vec<u8>> = traffic::demo(0).into_iter().map(|f| f.bytes).collect();
    let many: Vec<Vec<u8>> = frames.iter().cycle().take(40_000).cloned().collect();
    let capture = dir.path("many.pcap");
    write_pcap(&capture, &many);
    let mut child = rampart()
        .args(["trace", "--config", config.to_str().unwrap()])
        .args(["--pcap", capture.to_str().unwrap()])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    for _ in 0..lines {
        let mut line = String::new();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "trace printed");
    }
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_quiet_sigpipe_status(status: std::process::ExitStatus, stderr: &str) {
    assert!(!stderr.contains("panicked"), "no panic: {stderr}");
    assert!(
        !stderr.contains("Broken pipe"),
        "no error message: {stderr}"
    );
    assert_eq!(status.code(), Some(141), "exit 141: {status}\n{stderr}");
}

#[test]
fn trace_into_a_closed_pipe_exits_141_without_a_panic() {
    let (status, stderr) = trace_closed_early(&[], 1);
    assert_quiet_sigpipe_status(status, &stderr);
}

#[test]
fn trace_json_into_a_closed_pipe_exits_141_without_a_panic() {
    let (status, stderr) = trace_closed_early(&["--json"], 3);
    assert_quiet_sigpipe_status(status, &stderr);
}

/// The same through a real shell pipeline, as an operator types it.
#[test]
fn trace_piped_into_head_under_pipefail() {
    let dir = TempDir::new();
    let config = dir.write(
        "demo.toml",
        &DEMO.replace("@DIR@", dir.0.path().to_str().unwrap()),
    );
    let frames: Vec<Vec<u8>> = traffic::demo(0).into_iter().map(|f| f.bytes).collect();
    let many: Vec<Vec<u8>> = frames.iter().cycle().take(40_000).cloned().collect();
    let capture = dir.path("many.pcap");
    write_pcap(&capture, &many);
    let script = format!(
        "set -o pipefail; '{}' trace --config '{}' --pcap '{}' 2>'{}' | head -1",
        env!("CARGO_BIN_EXE_rampart"),
        config.display(),
        capture.display(),
        dir.path("stderr").display(),
    );
    let out = std::process::Command::new("bash")
        .args(["-c", &script])
        .output()
        .unwrap();
    let stderr = std::fs::read_to_string(dir.path("stderr")).unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
    assert_quiet_sigpipe_status(out.status, &stderr);
}

/// `rampart stats` (text, `--json`, `--rules`) with its stdout already
/// closed when it prints: status 141, nothing on stderr. Needs a running
/// dataplane (net_null ports, DPDK without hugepages).
#[test]
fn stats_into_a_closed_pipe_exits_141_without_a_panic() {
    let dir = TempDir::new();
    let config = null_pair_config(&dir, "broken-pipe-stats", &test_eal("broken-pipe-stats"));
    let control = dir.path("control.sock");
    let run = start_dataplane(&config, &control, &["--duration", "60"], Stdio::null());
    for extra in [&[][..], &["--json"], &["--rules"], &["--rules", "--json"]] {
        let mut child = rampart()
            .args(["stats", "--socket", control.to_str().unwrap()])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The reading end closes before the command prints anything.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_quiet_sigpipe_status(out.status, &stderr);
    }
    let mut run = run.take();
    std::process::Command::new("kill")
        .args(["-TERM", &run.id().to_string()])
        .status()
        .unwrap();
    assert!(run.wait().unwrap().success());
}
