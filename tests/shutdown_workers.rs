//! Shutdown with more workers than CPUs: `rampart run` with 3 and 4
//! workers on lcores mapped onto the same 2 CPUs, single-queue net_pcap
//! ports replaying captures forever, so every packet goes through software
//! dispatch (RX worker -> flow owner -> TX queue owner over handoff rings).
//! SIGTERM mid-traffic must stop it within a bound, with every packet
//! received accounted for (none stranded in a handoff ring) and the event
//! books balanced. Repeated, because the interleaving of workers that share
//! a CPU differs from run to run.

mod common;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;
use rampart_pipeline::wire::TcpFlags;
use rampart_testkit::configs;
use rampart_testkit::traffic::{tcp, udp, v4};
use serde_json::Value;

/// A stop must finish within this (a bound on a hang, not a performance
/// figure: a clean stop takes well under a second).
const STOP_BOUND: Duration = Duration::from_secs(15);
const STOPS_PER_SHAPE: usize = 3;

/// UDP to port 53 (permitted, sessions logged at open and close) from 64
/// clients, plus telnet attempts (denied and logged); the trust side
/// answers the DNS flows.
fn captures(dir: &TempDir) {
    let mut untrust = Vec::new();
    let mut trust = Vec::new();
    for i in 0..64u8 {
        let client = v4(198, 51, 100, i + 1);
        let server = v4(203, 0, 113, i % 8 + 1);
        let sport = 20_000 + u16::from(i);
        untrust.push(udp(client, server, sport, 53, &[i; 32]));
        trust.push(udp(server, client, 53, sport, &[i; 48]));
        if i % 8 == 0 {
            untrust.push(tcp(client, server, sport, 23, TcpFlags::SYN, &[]));
        }
    }
    write_pcap(&dir.path("untrust.pcap"), &untrust);
    write_pcap(&dir.path("trust.pcap"), &trust);
}

fn config(dir: &TempDir, workers: usize, lcores: &str, prefix: &str) -> std::path::PathBuf {
    let d = dir.0.path().display();
    let port = |n: usize, side: &str| {
        format!("net_pcap{n},rx_pcap={d}/{side}.pcap,infinite_rx=1,tx_pcap=/dev/null")
    };
    let interfaces = configs::untrust_trust_pair(&port(0, "untrust"), &port(1, "trust"));
    let text = format!(
        r#"[dataplane]
workers = {workers}
eal = ["--no-pci", "--no-huge", "-m", "512", "--no-shconf", "--file-prefix={prefix}", "--log-level", "lib.eal:error", "--lcores", "{lcores}"]

{events}
{interfaces}
{zones}

[application]
dns = {{ protocol = "udp", destination-port = "53" }}

{allow_dns}
{default}"#,
        events = configs::event_sockets(&d),
        zones = configs::UNTRUST_AND_TRUST_ZONES,
        allow_dns = configs::policy("allow-dns", ("untrust", "trust"))
            .application("dns")
            .then("permit")
            .log(&["session-init", "session-close"]),
        default = configs::default_policy_logged("deny"),
    );
    dir.write(&format!("{prefix}.toml"), &text)
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

fn worker_sum(stats: &Value, key: &str) -> u64 {
    stats["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| u(&w[key]))
        .sum()
}

fn wait_for_socket(path: &Path, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::os::unix::net::UnixStream::connect(path).is_err() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "rampart exited before its control socket came up"
        );
        assert!(Instant::now() < deadline, "the dataplane did not come up");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits (bounded) until packets cross handoff rings, and are still
/// flowing: two samples `gap` apart both show more handoffs.
fn wait_for_handoffs(control: &Path, gap: Duration) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = 0;
    loop {
        let s = stats(control);
        let handoffs = worker_sum(&s, "handoff");
        if last > 1000 && handoffs > last && worker_sum(&s, "tx") > 1000 {
            return s;
        }
        last = handoffs;
        assert!(
            Instant::now() < deadline,
            "no traffic through software dispatch: {s}"
        );
        std::thread::sleep(gap);
    }
}

/// SIGTERM, then a bounded wait for the exit; kills and fails on a hang.
fn stop_within_bound(mut child: Child) -> std::process::Output {
    let pid = child.id().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    let asked = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if asked.elapsed() > STOP_BOUND {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "rampart still running {STOP_BOUND:?} after SIGTERM\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// The final counters add up: every packet received was sent, dropped (by
/// a decision, a full TX queue or a full stall list); every event
/// generated was rate limited, overflowed or drained, and every drained
/// one delivered or dropped for the consumer; every session opened closed.
fn assert_books_balance(fin: &Value, workers: usize) {
    let ws = fin["workers"].as_array().unwrap();
    assert_eq!(ws.len(), workers, "{fin}");
    let rx = worker_sum(fin, "rx");
    let out = worker_sum(fin, "tx")
        + worker_sum(fin, "dropped")
        + worker_sum(fin, "tx_full")
        + worker_sum(fin, "handoff_full");
    let answers = worker_sum(fin, "rejects_sent");
    assert!(rx > 0 && worker_sum(fin, "handoff") > 0, "{fin}");
    assert_eq!(
        rx + answers,
        out,
        "rx + rejects == tx + dropped + tx_full + handoff_full: {fin}"
    );
    let ipackets: u64 = fin["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| u(&p["ipackets"]))
        .sum();
    assert_eq!(
        ipackets, rx,
        "the ports delivered what the workers counted: {fin}"
    );
    assert_eq!(worker_sum(fin, "sessions_active"), 0, "{fin}");
    assert_eq!(
        worker_sum(fin, "sessions_created"),
        worker_sum(fin, "sessions_closed"),
        "{fin}"
    );
    let events = fin["events"].as_object().unwrap();
    for (t, c) in events {
        assert_eq!(
            u(&c["generated"]),
            u(&c["rate_limited"]) + u(&c["ring_overflow"]) + u(&c["drained"]),
            "{t}: generated == rate_limited + ring_overflow + drained: {fin}"
        );
    }
    assert!(u(&events["policy_deny"]["generated"]) > 0, "{fin}");
    assert!(u(&events["session_open"]["generated"]) > 0, "{fin}");
    assert_eq!(
        u(&events["session_open"]["generated"]),
        u(&events["session_close"]["generated"]),
        "every logged session open is closed at shutdown: {fin}"
    );
    let consumers = fin["consumers"].as_array().unwrap();
    assert_eq!(consumers.len(), 1, "{fin}");
    for (t, c) in events {
        let c0 = &consumers[0];
        assert_eq!(
            u(&c["drained"]),
            u(&c0["delivered"][t]) + u(&c0["dropped"][t]),
            "{t}: drained == delivered + dropped: {fin}"
        );
    }
}

fn stop_mid_traffic(workers: usize, lcores: &str) {
    let dir = TempDir::new();
    captures(&dir);
    for round in 0..STOPS_PER_SHAPE {
        let prefix = format!(
            "rampart-test-shutdown{workers}-{round}-{}",
            std::process::id()
        );
        let config = config(&dir, workers, lcores, &prefix);
        let stats_out = dir.path(&format!("{prefix}.json"));
        let consumer = rampart()
            .args([
                "events",
                "--socket",
                dir.path("events.sock").to_str().unwrap(),
            ])
            .args(["--format", "json", "--once"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut child = rampart()
            .args(["run", "--config", config.to_str().unwrap()])
            .args(["--wait-consumer", "20"])
            .args(["--stats-out", stats_out.to_str().unwrap()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let control = dir.path("control.sock");
        wait_for_socket(&control, &mut child);
        // A different moment in the traffic each round.
        let gap = Duration::from_millis(100 + 150 * round as u64);
        let running = wait_for_handoffs(&control, gap);
        assert_eq!(running["workers"].as_array().unwrap().len(), workers);
        let out = stop_within_bound(child);
        let summary = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "round {round}: exit 0 on SIGTERM: {}\n{summary}\n{stderr}",
            out.status
        );
        assert!(summary.contains("stopped (signal)"), "{summary}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        let consumed = consumer.wait_with_output().unwrap();
        assert!(
            consumed.status.success(),
            "{}",
            String::from_utf8_lossy(&consumed.stderr)
        );
        let fin: Value =
            serde_json::from_str(&std::fs::read_to_string(&stats_out).unwrap()).unwrap();
        assert_books_balance(&fin, workers);
    }
}

#[test]
fn three_workers_on_two_cpus_stop_cleanly_mid_traffic() {
    stop_mid_traffic(3, "0@0,1@1,2@0,3@1");
}

#[test]
fn four_workers_on_two_cpus_stop_cleanly_mid_traffic() {
    stop_mid_traffic(4, "0@0,1@1,2@0,3@1,4@0");
}
