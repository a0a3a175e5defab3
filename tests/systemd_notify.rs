//! Rampart under systemd's `Type=notify` and `WatchdogSec=`, against a
//! stand-in notify socket (the protocol is datagrams to the Unix socket
//! named in `NOTIFY_SOCKET`): `READY=1` once the ports are up and the
//! control socket answers, `WATCHDOG=1` at half the watchdog interval while
//! the workers loop, none once a worker stalls (injected with
//! `RAMPART_FAULT_STALL_WORKER_MS`), and `STOPPING=1` at a stop.

mod common;

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// `rampart run` as systemd starts a `Type=notify` service with
/// `WatchdogSec=1s` (the watchdog variables name the service's own pid, so
/// a shell execs into it), with `env` added.
fn start(
    dir: &TempDir,
    config: &std::path::Path,
    notify: &std::path::Path,
    env: &[(&str, &str)],
) -> KillOnDrop {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("WATCHDOG_PID=$$ exec \"$0\" run --config \"$1\"")
        .arg(env!("CARGO_BIN_EXE_rampart"))
        .arg(config)
        .env("NOTIFY_SOCKET", notify)
        .env("WATCHDOG_USEC", "1000000")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path("rampart.log")).unwrap());
    for (k, v) in env {
        cmd.env(k, v);
    }
    KillOnDrop::new(cmd.spawn().unwrap())
}

/// Datagrams the stand-in receives within `within`, with their arrival.
fn receive(socket: &UnixDatagram, within: Duration) -> Vec<(Instant, String)> {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        socket
            .set_read_timeout(Some(
                deadline
                    .saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(1)),
            ))
            .unwrap();
        if let Ok(n) = socket.recv(&mut buf) {
            got.push((
                Instant::now(),
                String::from_utf8_lossy(&buf[..n]).into_owned(),
            ));
        }
    }
    got
}

fn wait_for(socket: &UnixDatagram, what: &str, within: Duration) -> Vec<String> {
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "no {what:?} within {within:?}; got {seen:?}"
        );
        socket.set_read_timeout(Some(left)).unwrap();
        if let Ok(n) = socket.recv(&mut buf) {
            let m = String::from_utf8_lossy(&buf[..n]).into_owned();
            let found = m.lines().any(|l| l == what);
            seen.push(m);
            if found {
                return seen;
            }
        }
    }
}

#[test]
fn ready_and_watchdog_while_the_workers_loop_and_no_ping_from_a_stalled_worker() {
    let dir = TempDir::new();
    let tag = format!("notify-{}", std::process::id());
    let config = null_pair_config(&dir, &tag, &test_eal(&tag));
    let notify_path = dir.path("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();

    // Healthy: ready, then a ping every half second.
    let mut child = start(&dir, &config, &notify_path, &[]);
    let before_ready = wait_for(&notify, "READY=1", Duration::from_secs(60));
    assert!(
        before_ready.iter().all(|m| !m.contains("WATCHDOG=1")),
        "no ping before ready: {before_ready:?}"
    );
    stats(&dir.path("control.sock")); // the control socket answers once ready
    let pings: Vec<_> = receive(&notify, Duration::from_millis(2_600))
        .into_iter()
        .filter(|(_, m)| m.lines().any(|l| l == "WATCHDOG=1"))
        .collect();
    assert!(pings.len() >= 4, "{} pings in 2.6 s", pings.len());
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    wait_for(&notify, "STOPPING=1", Duration::from_secs(10));
    assert!(child.child().wait().unwrap().success());

    // A worker that stops looping 1.5 s after start: the pings stop, and
    // the log says which worker and why.
    let mut child = start(
        &dir,
        &config,
        &notify_path,
        &[("RAMPART_FAULT_STALL_WORKER_MS", "1500")],
    );
    wait_for(&notify, "READY=1", Duration::from_secs(60));
    let stalled_from = Instant::now() + Duration::from_millis(2_500);
    let got = receive(&notify, Duration::from_millis(5_000));
    let late: Vec<_> = got
        .iter()
        .filter(|(t, m)| *t > stalled_from && m.lines().any(|l| l == "WATCHDOG=1"))
        .collect();
    assert!(late.is_empty(), "pings after the worker stalled: {late:?}");
    let log = std::fs::read_to_string(dir.path("rampart.log")).unwrap();
    assert!(
        log.contains("made no progress") && log.contains("watchdog pings stopped"),
        "{log}"
    );
    child.child().kill().unwrap();
    child.child().wait().unwrap();
}

/// The shipped unit (`packaging/systemd/rampart.service`) is one systemd
/// accepts: `systemd-analyze verify`, with the binary where the test built
/// it, reports nothing.
#[test]
fn the_unit_passes_systemd_analyze_verify() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIP: no systemd-analyze here");
        return;
    }
    let dir = TempDir::new();
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/packaging/systemd/rampart.service"
    ))
    .unwrap()
    .replace("/usr/bin/rampart", env!("CARGO_BIN_EXE_rampart"));
    let path = dir.write("rampart.service", &unit);
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "{stderr}");
    for line in [
        "Type=notify",
        "WatchdogSec=",
        "ExecReload=",
        "RuntimeDirectory=rampart",
    ] {
        assert!(unit.contains(line), "the unit sets {line}");
    }
}
