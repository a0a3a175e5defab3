//! Overload soak: a deny storm (every packet logged) mixed with a SYN flood
//! that keeps a small session table full, replayed endlessly for
//! `RAMPART_SOAK_SECS` seconds (30 by default; RELIABILITY.md has a
//! five-minute run), with a real event consumer reading all the while.
//!
//! Checked: the dataplane stays up and keeps forwarding, its resident memory
//! stays flat after warm-up, the session table never exceeds its capacity
//! (refusals are counted instead), the SYN-flood screen keeps firing, and
//! at SIGTERM the event accounting reconciles exactly.

mod common;

use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use common::*;
use rampart_events::{decode, read_frame, EventType, Record};
use rampart_pipeline::wire::TcpFlags;
use rampart_testkit::configs;
use rampart_testkit::traffic::{tcp, udp, v4};

const SESSION_CAPACITY: u64 = 1024;

fn soak_secs() -> u64 {
    std::env::var("RAMPART_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30)
}

/// 6,000 frames (net_pcap replays from mbufs: the capture must fit the
/// pool): two in three are denied and logged (UDP to a host no policy
/// permits), one in three is a SYN of one of 2,000 flows to the permitted
/// web server, more flows than the 1,024-session table holds, so it stays
/// full and keeps refusing (counted); the syn-flood screen drops beyond
/// 5,000 SYNs a second.
fn frames() -> Vec<Vec<u8>> {
    (0..6_000u32)
        .map(|i| {
            let src = v4(198, 18, (i >> 8) as u8, i as u8);
            if i % 3 == 2 {
                let flow = i / 3;
                tcp(
                    v4(192, 0, (flow >> 8) as u8 % 64, flow as u8),
                    v4(10, 1, 0, 10),
                    1024 + (flow % 50_000) as u16,
                    80,
                    TcpFlags::SYN,
                    &[],
                )
            } else {
                udp(
                    src,
                    v4(203, 0, 113, (i % 200) as u8 + 1),
                    4000,
                    161,
                    &[0x30; 32],
                )
            }
        })
        .collect()
}

fn config(dir: &TempDir, input: &std::path::Path) -> std::path::PathBuf {
    let d = dir.0.path().display();
    let interfaces = configs::untrust_into_trust(
        &format!("net_pcap0,rx_pcap={},infinite_rx=1", input.display()),
        "net_null0,no-rx=1",
    );
    dir.write(
        "soak.toml",
        &format!(
            r#"{dataplane}
{interfaces}
{zones}[screen.flood]
syn-flood = {{ attack-threshold = 5000, source-threshold = 100000, destination-threshold = 100000 }}
[address-book]
web = ["10.1.0.10/32"]
{web}{default}[flow]
session-capacity = {SESSION_CAPACITY}
[flow.timeouts]
tcp-initial = 1
"#,
            zones = configs::untrust_screened_zones("flood"),
            web = configs::policy("web", ("untrust", "trust"))
                .destination("web")
                .application("junos-http")
                .then("permit")
                .log(&["session-init", "session-close"]),
            default = configs::default_policy_logged("deny"),
            dataplane = configs::dataplane_with_sockets(&test_eal("soak"), &d),
        ),
    )
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS")
}

#[test]
fn deny_storm_and_syn_flood_soak_stays_flat_bounded_and_reconciled() {
    const N: usize = EventType::COUNT;
    let dir = TempDir::new();
    let input = dir.path("soak.pcap");
    write_pcap(&input, &frames());
    let config = config(&dir, &input);
    let stats_out = dir.path("stats.json");
    let child = rampart()
        .args(["run", "--config", config.to_str().unwrap()])
        .args(["--wait-consumer", "20", "--stats-out"])
        .arg(&stats_out)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(20);
    let stream = loop {
        if let Ok(s) = UnixStream::connect(dir.path("events.sock")) {
            break s;
        }
        assert!(Instant::now() < deadline, "the event socket never came up");
        std::thread::sleep(Duration::from_millis(10));
    };
    // The consumer: counts what it receives and keeps the last stats record.
    let reader = std::thread::spawn(move || {
        let mut r = std::io::BufReader::with_capacity(1 << 20, stream);
        let mut buf = Vec::new();
        let mut events = [0u64; N];
        let mut last_stats = None;
        while read_frame(&mut r, &mut buf).unwrap() {
            match decode(&buf).expect("a valid record") {
                Record::Event(e) => events[e.event.event_type().index()] += 1,
                Record::Stats(s) => last_stats = Some(s),
                _ => {}
            }
        }
        (events, last_stats.expect("a final stats record"))
    });

    let control = dir.path("control.sock");
    let secs = soak_secs();
    let warmup = (secs / 5).clamp(2, 30);
    let start = Instant::now();
    let mut rss_after_warmup = Vec::new();
    let mut last_rx = 0;
    let mut max_sessions = 0;
    while start.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_secs(1));
        let s = stats(&control);
        let w = &s["workers"][0];
        let rx = w["rx"].as_u64().unwrap();
        assert!(rx > last_rx, "the dataplane keeps receiving: {w}");
        last_rx = rx;
        let sessions = w["sessions_active"].as_u64().unwrap();
        assert!(sessions <= SESSION_CAPACITY, "{sessions} sessions");
        max_sessions = max_sessions.max(sessions);
        if start.elapsed() >= Duration::from_secs(warmup) {
            rss_after_warmup.push(rss_kib(pid));
        }
    }
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "exit 0 after the soak: {}\n{summary}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let (received, last) = reader.join().unwrap();

    // Memory: flat after warm-up (the tables are preallocated).
    let (lo, hi) = (
        *rss_after_warmup.iter().min().unwrap(),
        *rss_after_warmup.iter().max().unwrap(),
    );
    eprintln!(
        "soak {secs} s: RSS after warm-up {lo}..{hi} KiB over {} samples; peak sessions {max_sessions}/{SESSION_CAPACITY}",
        rss_after_warmup.len()
    );
    assert!(
        hi - lo <= 8 * 1024,
        "resident memory grew by {} KiB after warm-up",
        hi - lo
    );

    // The table filled up and refused (counted), the screen fired, the
    // deny storm was logged.
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&stats_out).unwrap()).unwrap();
    let w = &stats["workers"][0];
    let drops = &w["drops"];
    let n = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
    eprintln!(
        "soak {secs} s: rx {} dropped {} tx {}; drops {drops}",
        n(&w["rx"]),
        n(&w["dropped"]),
        n(&w["tx"])
    );
    assert!(n(&drops["policy_deny"]) > 0, "{drops}");
    assert!(
        n(&drops["screen"]) > 0,
        "the syn-flood screen fired: {drops}"
    );
    assert!(
        n(&drops["session_table_full"]) > 0,
        "the table filled up and refused, counted: {drops}"
    );
    assert_eq!(
        n(&w["rx"]),
        n(&w["tx"]) + n(&w["dropped"]) + n(&w["tx_full"]),
        "every packet received was forwarded or dropped: {w}"
    );

    // Events: exact accounting, and the consumer got what was delivered.
    for (i, t) in EventType::ALL.iter().enumerate() {
        let c = &last.totals[i];
        assert_eq!(
            c.generated,
            c.rate_limited + c.ring_overflow + c.drained,
            "{}",
            t.name()
        );
        assert_eq!(
            last.delivered[i] + last.dropped[i],
            c.drained,
            "{}",
            t.name()
        );
        assert_eq!(received[i], last.delivered[i], "{}", t.name());
        assert_eq!(
            stats["events"][t.name()]["generated"].as_u64(),
            Some(c.generated),
            "the consumer's final stats record is the dataplane's last word"
        );
    }
    assert!(received[EventType::PolicyDeny.index()] > 0);
    assert!(received[EventType::SessionOpen.index()] > 0);
}
