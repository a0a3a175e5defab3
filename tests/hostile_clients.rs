//! Local clients are untrusted: none can stall the drain, delay shutdown
//! past its deadline, lock out a real consumer, or do more than its role
//! allows. Every test runs a real dataplane under a logged deny stream
//! (rate-limited to a moderate 20,000 events/s, so any ring overflow means
//! the control plane stopped draining) with the adversaries attached.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;
use rampart_testkit::configs;

/// A dataplane replaying denied UDP without end, sockets in `run/`;
/// `extra_events` goes into `[events]`.
fn start(dir: &TempDir, test: &str, extra_events: &str) -> KillOnDrop {
    let events =
        format!("ring_size = 65536\n{extra_events}\n[events.rate_limit]\npolicy_deny = 20000");
    let config = dir.write(
        "rampart.toml",
        &deny_stream_config(dir, test, &dir.path("run"), &events),
    );
    let stats_out = dir.path("final.json");
    start_dataplane(
        &config,
        &dir.path("run/control.sock"),
        &["--stats-out", stats_out.to_str().unwrap()],
        Stdio::piped(),
    )
}

/// SIGTERM, then the exit within `bound` (the flush deadline plus slack),
/// the daemon's stderr and its final counters.
fn stop_within(child: KillOnDrop, dir: &TempDir, bound: Duration) -> (String, serde_json::Value) {
    let mut child = child.take();
    let t0 = Instant::now();
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            assert!(status.success(), "rampart failed: {status}\n{err}");
            let text = std::fs::read_to_string(dir.path("final.json")).unwrap();
            return (err, serde_json::from_str(&text).unwrap());
        }
        if t0.elapsed() > bound {
            let _ = child.kill();
            panic!("rampart did not exit within {bound:?} of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every event accounted for, and none lost to a full ring (the limiter
/// lets a second's worth, 20,000, through at once; a ring of 65,536 then
/// overflows only if draining stopped for over 2 s).
fn assert_books_balance_without_overflow(s: &serde_json::Value) {
    for (t, c) in s["events"].as_object().unwrap() {
        let n = |k: &str| c[k].as_u64().unwrap();
        assert_eq!(
            n("generated"),
            n("rate_limited") + n("ring_overflow") + n("drained"),
            "{t}: {c}"
        );
        assert_eq!(n("ring_overflow"), 0, "{t}: the drain stalled: {c}");
    }
    assert!(s["events"]["policy_deny"]["drained"].as_u64().unwrap() > 0);
}

/// An adversary on its own thread until `stop` is set.
fn adversary(stop: &Arc<AtomicBool>, mut body: impl FnMut() + Send + 'static) -> JoinHandle<()> {
    let stop = stop.clone();
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            body();
        }
    })
}

fn stats_within(control: &Path, bound: Duration) -> serde_json::Value {
    let t0 = Instant::now();
    let s = stats(control);
    assert!(
        t0.elapsed() < bound,
        "rampart stats took {:?}",
        t0.elapsed()
    );
    s
}

#[test]
fn idle_dripping_and_reconnecting_control_clients_neither_stall_nor_lock_out_nor_delay_exit() {
    let dir = TempDir::new();
    let child = start(&dir, "hostile-control", "");
    let control = dir.path("run/control.sock");
    // 200 connections that never send.
    let idle: Vec<UnixStream> = (0..200)
        .filter_map(|_| UnixStream::connect(&control).ok())
        .collect();
    assert!(idle.len() >= 32, "only {} connected", idle.len());
    let stop = Arc::new(AtomicBool::new(false));
    // One that drips a byte every 90 ms, reconnecting when cut off.
    let drip = {
        let control = control.clone();
        adversary(&stop, move || {
            if let Ok(mut s) = UnixStream::connect(&control) {
                for _ in 0..100 {
                    if s.write_all(b"s").is_err() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(90));
                }
            }
        })
    };
    // Three idle connections kept open at all times.
    let keepers: Vec<JoinHandle<()>> = (0..3)
        .map(|_| {
            let control = control.clone();
            adversary(&stop, move || match UnixStream::connect(&control) {
                Ok(mut s) => {
                    let mut b = [0u8; 64];
                    let _ = s.read(&mut b);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    // An operator still gets answers, promptly, again and again.
    for _ in 0..5 {
        let s = stats_within(&control, Duration::from_secs(2));
        assert_eq!(s["generation"], 1);
        std::thread::sleep(Duration::from_millis(200));
    }
    let s = stats(&control);
    let c = &s["control_connections"];
    assert!(
        c["evicted"].as_u64().unwrap() + c["timed_out"].as_u64().unwrap() >= 200,
        "the idle ones were closed and counted: {c}"
    );
    // SIGTERM with every adversary still attached.
    let (log, last) = stop_within(child, &dir, Duration::from_secs(6));
    stop.store(true, Ordering::Relaxed);
    assert!(
        log.contains("control socket:") && log.contains("within the deadline"),
        "closed clients are logged: {log}"
    );
    assert_books_balance_without_overflow(&last);
    drop(idle);
    drip.join().unwrap();
    for k in keepers {
        k.join().unwrap();
    }
}

/// `rampart events --format json` on `socket`; its stdout lines arrive on the channel.
fn json_consumer(socket: &Path) -> (Child, std::sync::mpsc::Receiver<String>) {
    json_consumer_with_stderr(socket, Stdio::null())
}

fn json_consumer_with_stderr(
    socket: &Path,
    stderr: Stdio,
) -> (Child, std::sync::mpsc::Receiver<String>) {
    let mut c = rampart()
        .args([
            "events",
            "--socket",
            socket.to_str().unwrap(),
            "--format",
            "json",
            "--types",
            "policy_deny",
        ])
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let out = c.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (c, rx)
}

#[test]
fn consumers_that_never_read_are_cut_off_and_a_real_consumer_gets_the_stream() {
    let dir = TempDir::new();
    let child = start(&dir, "hostile-consumers", "");
    let events = dir.path("run/events.sock");
    let control = dir.path("run/control.sock");
    // Every slot taken by connections that never read.
    let squatters: Vec<UnixStream> = (0..16)
        .map(|_| UnixStream::connect(&events).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let (mut consumer, lines) = json_consumer(&events);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut denies = 0;
    while denies == 0 && Instant::now() < deadline {
        if let Ok(line) = lines.recv_timeout(Duration::from_millis(100)) {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            denies += (v["type"] == "policy_deny") as usize;
        }
    }
    let _ = consumer.kill();
    let _ = consumer.wait();
    assert!(
        denies > 0,
        "the real consumer received no event within 10 s"
    );
    // After the stall bound every squatter is gone, each counted.
    std::thread::sleep(Duration::from_millis(3500));
    let s = stats(&control);
    assert!(
        s["consumer_connections"]["cut_off"].as_u64().unwrap() >= 16,
        "{}",
        s["consumer_connections"]
    );
    drop(squatters);
    let (log, last) = stop_within(child, &dir, Duration::from_secs(6));
    assert!(
        log.contains("event consumer") && log.contains("cut off"),
        "cut-offs are logged: {log}"
    );
    assert_books_balance_without_overflow(&last);
}

/// Every slot taken by slow readers (64 KiB every half second, far behind
/// a 20,000 records/s stream, so their own losses keep rising): a real
/// consumer is refused at first, says so, retries, and gets in once the
/// slow readers have held their slots a second, in place of the one
/// furthest behind. Before, slow readers counted as readers and held every
/// slot, and `rampart events` waited in silence.
#[test]
fn slow_readers_that_fall_behind_give_way_to_a_real_consumer() {
    let dir = TempDir::new();
    let child = start(&dir, "slow-consumers", "");
    let events = dir.path("run/events.sock");
    let stop = Arc::new(AtomicBool::new(false));
    let slow: Vec<JoinHandle<()>> = (0..16)
        .map(|_| {
            let mut s = UnixStream::connect(&events).unwrap();
            s.set_read_timeout(Some(Duration::from_millis(100)))
                .unwrap();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 64 << 10];
                while !stop.load(Ordering::Relaxed) {
                    if matches!(s.read(&mut buf), Ok(0)) {
                        break; // evicted
                    }
                    std::thread::sleep(Duration::from_millis(500));
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let (mut consumer, lines) = json_consumer_with_stderr(&events, Stdio::piped());
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut denies = 0;
    while denies == 0 && Instant::now() < deadline {
        if let Ok(line) = lines.recv_timeout(Duration::from_millis(100)) {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            denies += (v["type"] == "policy_deny") as usize;
        }
    }
    let _ = consumer.kill();
    let mut said = String::new();
    consumer
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut said)
        .unwrap();
    let _ = consumer.wait();
    stop.store(true, Ordering::Relaxed);
    for t in slow {
        t.join().unwrap();
    }
    assert!(
        denies > 0,
        "the real consumer received no event within 10 s: {said}"
    );
    assert!(
        said.contains("refused the connection") && said.contains("after"),
        "a refused consumer says so, and when it got in: {said}"
    );
    let (log, last) = stop_within(child, &dir, Duration::from_secs(6));
    assert!(
        log.contains("furthest behind"),
        "the eviction is logged: {log}"
    );
    assert_books_balance_without_overflow(&last);
}

fn setpriv_nobody(extra_group: Option<u32>) -> Command {
    let mut c = Command::new("setpriv");
    c.args(["--reuid=65534", "--regid=65534"]);
    match extra_group {
        Some(g) => c.arg(format!("--groups={g}")),
        None => c.arg("--clear-groups"),
    };
    c
}

#[test]
fn a_reader_can_read_events_but_never_control() {
    let dir = TempDir::new();
    // The test's temporary directory is 0700: let others traverse to run/.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.0.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    // The reader role is group 65534 (nogroup); operators are root only.
    let child = start(
        &dir,
        "roles",
        "socket_group = \"65534\"\nsocket_mode = \"0660\"",
    );
    let events = dir.path("run/events.sock");
    let control = dir.path("run/control.sock");
    use std::os::unix::fs::MetadataExt;
    let run_dir = std::fs::metadata(dir.path("run")).unwrap();
    assert_eq!(
        run_dir.mode() & 0o777,
        0o711,
        "a directory made for a group is reachable"
    );
    let c = std::fs::metadata(&control).unwrap();
    assert_eq!(
        (c.mode() & 0o777, c.gid()),
        (0o600, 0),
        "control socket: operators only"
    );
    let e = std::fs::metadata(&events).unwrap();
    assert_eq!(
        (e.mode() & 0o777, e.gid()),
        (0o660, 65534),
        "event socket: readers"
    );

    let bin = env!("CARGO_BIN_EXE_rampart");
    // As a member of the readers' group: events flow...
    let mut reader = setpriv_nobody(Some(65534))
        .args([
            bin,
            "events",
            "--socket",
            events.to_str().unwrap(),
            "--format",
            "json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 64];
    let n = reader.stdout.as_mut().unwrap().read(&mut first).unwrap();
    assert!(n > 0 && first.starts_with(b"{"), "the reader reads events");
    let _ = reader.kill();
    let _ = reader.wait();
    // ...but neither reload nor stats answer.
    for cmd in [["reload", "--socket"], ["stats", "--socket"]] {
        let out = setpriv_nobody(Some(65534))
            .arg(bin)
            .args(cmd)
            .arg(&control)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{cmd:?} must be refused to a reader");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("ermission denied"), "{cmd:?}: {err}");
    }
    // Someone in neither group cannot read events either.
    let out = setpriv_nobody(None)
        .args([
            bin,
            "events",
            "--socket",
            events.to_str().unwrap(),
            "--once",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_bounded(out, Duration::from_secs(3));
    assert!(
        out.is_none_or(|o| o.stdout.is_empty()),
        "no events for a non-member"
    );
    assert_eq!(stats(&control)["generation"], 1, "root still controls");
    let (_, last) = stop_within(child, &dir, Duration::from_secs(6));
    assert_books_balance_without_overflow(&last);
}

/// The child's output if it exited within `bound`, else None (killed).
fn wait_bounded(mut child: Child, bound: Duration) -> Option<std::process::Output> {
    let t0 = Instant::now();
    while t0.elapsed() < bound {
        if child.try_wait().unwrap().is_some() {
            return Some(child.wait_with_output().unwrap());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait_with_output();
    None
}

#[test]
fn a_socket_swapped_for_a_symlink_during_start_never_hands_over_its_target() {
    let dir = TempDir::new();
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    // A socket directory anyone may write, and a root file to steal.
    let run: PathBuf = dir.path("run");
    std::fs::create_dir(&run).unwrap();
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o777)).unwrap();
    let victim = dir.path("victim");
    std::fs::write(&victim, b"secret").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o600)).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    // The attacker swaps each socket path for a symlink to the victim as
    // fast as it can while the dataplane starts.
    let attacker = {
        let (run, victim) = (run.clone(), victim.clone());
        adversary(&stop, move || {
            for name in ["events.sock", "control.sock"] {
                let link = run.join(format!(".{name}.evil"));
                let _ = std::fs::remove_file(&link);
                if std::os::unix::fs::symlink(&victim, &link).is_ok() {
                    let _ = std::fs::rename(&link, run.join(name));
                }
            }
        })
    };
    let mut tries = 0;
    let mut started = 0;
    while tries < 5 {
        tries += 1;
        let child = rampart()
            .args(["run", "--config"])
            .arg(dir.write(
                "swap.toml",
                &format!(
                    r#"[dataplane]
eal = {eal}
[events]
socket = "{run}/events.sock"
control_socket = "{run}/control.sock"
socket_group = "65534"
control_socket_group = "65534"
[[interface]]
name = "ge-0/0/0"
device = "net_null0"
zone = "z"
[zone.z]
"#,
                    eal = test_eal("symlink-swap"),
                    run = run.display(),
                ),
            ))
            .args(["--duration", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = wait_bounded(child, Duration::from_secs(20)).expect("rampart ended");
        let err = String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            started += 1;
            assert!(
                err.contains("writable"),
                "a start in a directory others can write warns: {err}"
            );
        } else {
            assert!(
                err.contains("not a socket") || err.contains("replaced"),
                "a refused start says why: {err}"
            );
        }
        let v = std::fs::symlink_metadata(&victim).unwrap();
        assert_eq!(
            (v.mode() & 0o7777, v.gid(), v.uid()),
            (0o600, 0, 0),
            "the victim's mode and owner are untouched (try {tries})"
        );
        assert_eq!(std::fs::read(&victim).unwrap(), b"secret");
    }
    stop.store(true, Ordering::Relaxed);
    attacker.join().unwrap();
    let _ = started; // starts and refusals are both fine; following the link is not
}

#[test]
fn stats_out_never_writes_through_a_symlink() {
    let dir = TempDir::new();
    let victim = dir.path("victim");
    std::fs::write(&victim, b"keep me").unwrap();
    let out = dir.path("stats.json");
    std::os::unix::fs::symlink(&victim, &out).unwrap();
    let config = dir.write(
        "c.toml",
        &format!(
            r#"{dataplane}[[interface]]
name = "ge-0/0/0"
device = "net_null0"
zone = "z"
[zone.z]
"#,
            dataplane = configs::dataplane_with_sockets(
                &test_eal("stats-out-symlink"),
                dir.0.path().display()
            ),
        ),
    );
    run_ok(&[
        "--config",
        config.to_str().unwrap(),
        "--duration",
        "0.5",
        "--stats-out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read(&victim).unwrap(), b"keep me");
    let meta = std::fs::symlink_metadata(&out).unwrap();
    assert!(
        meta.file_type().is_file(),
        "the link was replaced by the file"
    );
    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(s["generation"], 1);
}
