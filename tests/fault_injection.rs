//! Faults from outside, end to end with real processes: a consumer killed
//! mid-stream and another reconnecting, garbage written to the event and
//! control sockets, socket paths taken or unusable, hugepages exhausted at
//! start. In each the dataplane keeps forwarding (or refuses to start with
//! a clear error) and the event accounting reconciles.

mod common;

use std::io::{BufRead, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use rampart_testkit::configs;
use rampart_testkit::traffic::{udp, v4};

/// Every packet denied and logged, replayed endlessly; sockets as given.
fn storm_config(dir: &TempDir, test: &str, events_socket: &Path, eal: &str) -> PathBuf {
    let input = dir.path("storm.pcap");
    let frames: Vec<Vec<u8>> = (0..512u32)
        .map(|i| {
            udp(
                v4(198, 51, 100, (i % 250) as u8 + 1),
                v4(203, 0, 113, (i % 200) as u8 + 1),
                4000 + i as u16,
                161,
                &[0x30; 32],
            )
        })
        .collect();
    write_pcap(&input, &frames);
    let d = dir.0.path().display();
    let interfaces = configs::untrust_into_trust(
        &format!("net_pcap0,rx_pcap={},infinite_rx=1", input.display()),
        "net_null0,no-rx=1",
    );
    dir.write(
        &format!("{test}.toml"),
        &format!(
            r#"[dataplane]
eal = {eal}
[events]
socket = "{events}"
control_socket = "{d}/control.sock"
{interfaces}
[zone.untrust]
[zone.trust]
[default-policy]
then = "deny"
log = true
"#,
            events = events_socket.display(),
        ),
    )
}

fn start(config: &Path, stats_out: &Path) -> Child {
    rampart()
        .args(["run", "--config", config.to_str().unwrap(), "--stats-out"])
        .arg(stats_out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_for_socket(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while UnixStream::connect(path).is_err() {
        assert!(
            Instant::now() < deadline,
            "{} never came up",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn rx(s: &serde_json::Value) -> u64 {
    s["workers"][0]["rx"].as_u64().unwrap()
}

/// SIGTERM, exit 0, and the dataplane's final counters: per type
/// `generated == rate_limited + ring_overflow + drained`, and for every
/// consumer still connected `delivered + dropped == drained`.
fn stop_and_reconcile(child: Child, stats_out: &Path) -> serde_json::Value {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "exit 0: {}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(stats_out).unwrap()).unwrap();
    let n = |v: &serde_json::Value| v.as_u64().unwrap();
    for (t, c) in s["events"].as_object().unwrap() {
        assert_eq!(
            n(&c["generated"]),
            n(&c["rate_limited"]) + n(&c["ring_overflow"]) + n(&c["drained"]),
            "{t}: {c}"
        );
    }
    s
}

#[test]
fn consumer_killed_mid_stream_then_another_reconnects() {
    let dir = TempDir::new();
    let socket = dir.path("events.sock");
    let config = storm_config(&dir, "fault-kill", &socket, &test_eal("fault-kill"));
    let stats_out = dir.path("stats.json");
    let child = start(&config, &stats_out);
    wait_for_socket(&socket);
    let control = dir.path("control.sock");

    // A consumer that is reading when it is killed.
    let mut first = rampart()
        .args([
            "events",
            "--socket",
            socket.to_str().unwrap(),
            "--format",
            "json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(first.stdout.take().unwrap()).lines();
    for _ in 0..1000 {
        let line = lines.next().expect("the first consumer receives").unwrap();
        assert!(line.starts_with("{\"type\":"), "{line}");
    }
    first.kill().unwrap();
    first.wait().unwrap();
    drop(lines);
    let before = rx(&stats(&control));

    // Another one connects afterwards: hello and names first, then events.
    let second = rampart()
        .args(["events", "--socket", socket.to_str().unwrap()])
        .args(["--format", "json", "--once"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let reader = std::thread::spawn(move || second.wait_with_output().unwrap());
    std::thread::sleep(Duration::from_secs(1));
    let after = stats(&control);
    assert!(rx(&after) > before, "still receiving after the kill");
    let hub_consumers = after["consumers"].as_array().unwrap().len();
    assert_eq!(hub_consumers, 1, "the killed consumer was removed: {after}");

    let s = stop_and_reconcile(child, &stats_out);
    let out = reader.join().unwrap();
    let records: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records[0]["type"], "hello");
    assert_eq!(records[1]["type"], "names");
    let denies = records
        .iter()
        .filter(|r| r["type"] == "policy_deny")
        .count() as u64;
    assert!(denies > 0);
    // Its final stats record is the dataplane's last word, and what it got
    // plus what it lost (counted) is what was drained while it was there.
    let last = records
        .iter()
        .rev()
        .find(|r| r["type"] == "stats")
        .expect("a final stats record");
    assert_eq!(last["delivered"]["policy_deny"].as_u64(), Some(denies));
    assert_eq!(
        last["events"]["policy_deny"]["generated"],
        s["events"]["policy_deny"]["generated"]
    );
    let consumer = &s["consumers"][0];
    assert_eq!(consumer["delivered"]["policy_deny"].as_u64(), Some(denies));
}

#[test]
fn garbage_on_the_event_and_control_sockets_changes_nothing() {
    let dir = TempDir::new();
    let socket = dir.path("events.sock");
    let config = storm_config(&dir, "fault-garbage", &socket, &test_eal("fault-garbage"));
    let stats_out = dir.path("stats.json");
    let child = start(&config, &stats_out);
    wait_for_socket(&socket);
    let control = dir.path("control.sock");
    let before = rx(&stats(&control));

    // A client that writes garbage into the event socket without pause
    // (and never reads).
    let writer_socket = socket.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let writer = std::thread::spawn(move || {
        let mut s = UnixStream::connect(writer_socket).unwrap();
        s.set_write_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let junk: Vec<u8> = (0..65536u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let mut written = 0usize;
        while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
            match s.write(&junk) {
                Ok(n) => written += n,
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => break,
            }
        }
        written
    });

    // Garbage requests on the control socket: binary, no newline, huge,
    // empty, half-closed. Each gets a one-line JSON error (or is dropped).
    let requests: [&[u8]; 5] = [
        b"\x00\xff\xfe binary\n",
        b"statsreloadrules\n",
        &[b'a'; 100_000],
        b"\n",
        b"stats-but-no-newline",
    ];
    for req in requests {
        let mut s = UnixStream::connect(&control).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = s.write_all(req);
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut reply = String::new();
        let _ = s.read_to_string(&mut reply);
        if !reply.is_empty() {
            let v: serde_json::Value =
                serde_json::from_str(reply.trim()).unwrap_or_else(|e| panic!("{e}: {reply:?}"));
            assert!(v.get("error").is_some(), "{v}");
            assert_eq!(reply.trim_end().lines().count(), 1, "{reply:?}");
        }
    }
    // A good client is still served, and the dataplane kept forwarding.
    std::thread::sleep(Duration::from_millis(500));
    let after = stats(&control);
    assert!(rx(&after) > before, "still receiving: {after}");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let written = writer.join().unwrap();
    assert!(written > 0);
    stop_and_reconcile(child, &stats_out);
}

#[test]
fn event_socket_path_taken_or_unusable_is_refused_by_name() {
    let dir = TempDir::new();
    let run_err = |socket: &Path, test: &str| -> String {
        let config = storm_config(&dir, test, socket, &test_eal(test));
        let out = rampart()
            .args([
                "run",
                "--config",
                config.to_str().unwrap(),
                "--duration",
                "1",
            ])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "{test} must not start: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(
            err.contains(socket.to_str().unwrap()),
            "names the path: {err}"
        );
        err
    };
    // A regular file is never deleted.
    let file = dir.path("file.sock");
    std::fs::write(&file, b"keep me").unwrap();
    run_err(&file, "fault-file");
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
    // A live listener (another process's socket) is not stolen.
    let live = dir.path("live.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&live).unwrap();
    let err = run_err(&live, "fault-live");
    assert!(err.contains("in use"), "{err}");
    // A directory that cannot exist (a path under a regular file).
    let under_file = file.join("events.sock");
    run_err(&under_file, "fault-nodir");
    // A stale socket file (its listener gone) is replaced: it starts.
    let stale = dir.path("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let config = storm_config(&dir, "fault-stale", &stale, &test_eal("fault-stale"));
    let out = rampart()
        .args([
            "run",
            "--config",
            config.to_str().unwrap(),
            "--duration",
            "1",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Unmounts the private hugetlbfs when the test ends, however it ends.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn hugepages_exhausted_at_start_is_a_clear_error() {
    let dir = TempDir::new();
    // A private hugetlbfs with room for one 2 MiB page: other processes'
    // hugepages are not touched.
    let huge = dir.path("huge");
    std::fs::create_dir_all(&huge).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "hugetlbfs", "-o", "size=2M,pagesize=2M", "nodev"])
        .arg(&huge)
        .status()
        .unwrap();
    assert!(
        mounted.success(),
        "mounting hugetlbfs needs root (meson-scripts/setup.sh runs as root in CI)"
    );
    let _mount = Mount(huge.clone());
    let socket = dir.path("events.sock");
    let eal = format!(
        r#"["--huge-dir", "{}", "-m", "256", "--no-shconf", "--file-prefix=rampart-test-fault-huge", "--log-level", "lib.eal:error"]"#,
        huge.display()
    );
    let config = storm_config(&dir, "fault-huge", &socket, &eal);
    let out = rampart()
        .args([
            "run",
            "--config",
            config.to_str().unwrap(),
            "--duration",
            "1",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "must not start without memory: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains("starting DPDK") && err.contains("Cannot allocate memory"),
        "says DPDK could not start and why: {err}"
    );
    assert!(!socket.exists(), "no event socket left behind");
}

fn testpmd_virtio_peer(socket: &Path) -> Child {
    Command::new("dpdk-testpmd")
        // Its forwarding lcore shares CPU 0 with Rampart's main lcore, not
        // the worker's CPU 1. In memory: a SIGKILL leaves no hugepage files.
        .args(["--lcores", "0@0,1@0", "--no-pci", "--in-memory"])
        .args(["--single-file-segments", "-m", "256"])
        .arg(format!(
            "--vdev=net_virtio_user0,path={},queues=1",
            socket.display()
        ))
        .args([
            "--",
            "--forward-mode=rxonly",
            "--auto-start",
            "--nb-cores=1",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("dpdk-testpmd (Debian package dpdk-dev)")
}

/// A vhost-user port whose peer (testpmd on virtio_user) is SIGKILLed
/// mid-traffic and later comes back: Rampart keeps running and receiving,
/// counts what it cannot send, and sends again to the new peer.
#[test]
fn vhost_peer_killed_and_back() {
    let dir = TempDir::new();
    let input = dir.path("in.pcap");
    let frames: Vec<Vec<u8>> = (0..256u32)
        .map(|i| udp(v4(192, 0, 2, i as u8), v4(10, 1, 0, 1), 5000, 53, &[0; 32]))
        .collect();
    write_pcap(&input, &frames);
    let d = dir.0.path().display();
    let vhost = dir.path("vhost.sock");
    let config = dir.write(
        "vhost.toml",
        &format!(
            r#"[dataplane]
eal = ["--in-memory", "-m", "256", "--file-prefix=rampart-test-fault-vhost", "--log-level", "lib.eal:error", "--log-level", "pmd.net.vhost:error", "--log-level", "lib.vhost.config:error"]
{events}{interfaces}[default-policy]
then = "permit"
"#,
            events = configs::event_sockets(&d),
            interfaces = configs::one_zone_pair(
                &format!("net_pcap0,rx_pcap={},infinite_rx=1", input.display()),
                &format!("net_vhost0,iface={},queues=1", vhost.display()),
            ),
        ),
    );
    let stats_out = dir.path("stats.json");
    let child = KillOnDrop::new(start(&config, &stats_out));
    let control = dir.path("control.sock");
    wait_for_socket(&control);
    let sent_to_vhost = |s: &serde_json::Value| s["ports"][1]["opackets"].as_u64().unwrap();
    // Waits for `cond`; a peer that exited (it could not get its memory
    // or its vhost-user handshake on a busy machine) is started again.
    let wait_until =
        |what: &str, peer: &mut KillOnDrop, cond: &dyn Fn(&serde_json::Value) -> bool| {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let s = stats(&control);
                if cond(&s) {
                    return s;
                }
                assert!(Instant::now() < deadline, "{what}: {s}");
                if peer.child().try_wait().unwrap().is_some() {
                    *peer = KillOnDrop::new(testpmd_virtio_peer(&vhost));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        };

    let mut peer = KillOnDrop::new(testpmd_virtio_peer(&vhost));
    let s = wait_until("sends to the first peer", &mut peer, &|s| {
        sent_to_vhost(s) > 0
    });
    drop(peer);
    std::thread::sleep(Duration::from_millis(500));
    let gone = stats(&control);
    std::thread::sleep(Duration::from_millis(500));
    let later = stats(&control);
    assert!(rx(&later) > rx(&gone), "still receiving with the peer gone");
    assert!(
        later["workers"][0]["tx_full"].as_u64() > gone["workers"][0]["tx_full"].as_u64(),
        "what cannot be sent is counted: {later}"
    );
    assert!(sent_to_vhost(&later) >= sent_to_vhost(&s));

    let mut back = KillOnDrop::new(testpmd_virtio_peer(&vhost));
    let before = sent_to_vhost(&later);
    wait_until("sends to the peer that came back", &mut back, &|s| {
        sent_to_vhost(s) > before
    });
    drop(back);
    let s = stop_and_reconcile(child.take(), &stats_out);
    let w = &s["workers"][0];
    let n = |k: &str| w[k].as_u64().unwrap();
    assert_eq!(n("rx"), n("tx") + n("dropped") + n("tx_full"), "{w}");
}
