//! Operators' views of a running dataplane: DPDK telemetry through Debian's
//! `dpdk-telemetry.py`, and the Prometheus endpoint through the reference
//! `prometheus_client` parser.

mod common;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use rampart_testkit::configs;

#[test]
fn dpdk_telemetry_and_prometheus_report_the_counters() {
    let dir = TempDir::new();
    let d = dir.0.path().display();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let prefix = "rampart-test-telemetry";
    let config = dir.write(
        "t.toml",
        &format!(
            r#"{dataplane}socket_mode = "0640"
socket_group = "root"
control_socket_mode = "0660"
control_socket_group = "root"
[telemetry]
prometheus = "{port}"
{interfaces}[default-policy]
then = "permit"
"#,
            dataplane = configs::dataplane_with_sockets(&test_eal("telemetry"), &d),
            interfaces = configs::one_zone_pair("net_null0,size=64", "net_null1,size=64"),
        ),
    );
    let child = rampart()
        .args([
            "run",
            "--config",
            config.to_str().unwrap(),
            "--duration",
            "5",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the metrics endpoint did not come up"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));

    // Sockets: each role's configured mode and group, never world-accessible.
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    for (sock, mode) in [("events.sock", 0o640), ("control.sock", 0o660)] {
        let meta = std::fs::metadata(dir.path(sock)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, mode, "{sock}");
        assert_eq!(meta.gid(), 0, "{sock} belongs to group root");
    }

    // DPDK's own runtime files (the telemetry socket) are private to the
    // user Rampart runs as (umask 077 before EAL starts).
    let telemetry_socket = format!("/var/run/dpdk/{prefix}/dpdk_telemetry.v2");
    let mode = std::fs::metadata(&telemetry_socket)
        .unwrap_or_else(|e| panic!("{telemetry_socket}: {e}"))
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "{telemetry_socket} mode {mode:o}");

    // DPDK telemetry, with DPDK's own client.
    let mut tel = Command::new("dpdk-telemetry.py")
        .args(["-f", prefix])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dpdk-telemetry.py (Debian package dpdk-dev)");
    tel.stdin
        .take()
        .unwrap()
        .write_all(b"/rampart/stats\n/rampart/events\n")
        .unwrap();
    let out = tel.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let replies: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let stats = replies
        .iter()
        .find_map(|r| r.get("/rampart/stats"))
        .unwrap_or_else(|| panic!("no /rampart/stats in {text}"));
    assert!(stats["worker0_rx"].as_u64().unwrap() > 0, "{stats}");
    assert!(stats.get("port_ge_0_0_0_ipackets").is_some(), "{stats}");
    // Per-stage cycles: rx per burst, the pipeline on sampled packets.
    for key in [
        "worker0_stage_rx_packets",
        "worker0_stage_rx_cycles",
        "worker0_stage_parse_packets",
        "worker0_stage_parse_cycles",
        "worker0_stage_tx_cycles",
    ] {
        assert!(stats[key].as_u64().unwrap() > 0, "{key}: {stats}");
    }
    let events = replies
        .iter()
        .find_map(|r| r.get("/rampart/events"))
        .unwrap_or_else(|| panic!("no /rampart/events in {text}"));
    assert!(events.get("policy_deny_generated").is_some(), "{events}");

    // Prometheus, parsed by the reference parser.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(
        head.starts_with("HTTP/1.0 200") && head.contains("text/plain; version=0.0.4"),
        "{head}"
    );
    let body_path = dir.path("metrics.txt");
    std::fs::write(&body_path, body).unwrap();
    let parsed = Command::new("python3")
        .args([
            "-c",
            "import sys\nfrom prometheus_client.parser import text_string_to_metric_families as p\n\
             fams = list(p(open(sys.argv[1]).read()))\n\
             print(len(fams))\n\
             for f in fams:\n    for s in f.samples:\n        print(s.name, s.labels.get('interface', s.labels.get('type', '')), int(s.value))",
            body_path.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        parsed.status.success(),
        "prometheus_client rejects the text: {}\n{body}",
        String::from_utf8_lossy(&parsed.stderr)
    );
    let parsed = String::from_utf8(parsed.stdout).unwrap();
    let rx = parsed
        .lines()
        .find(|l| l.starts_with("rampart_port_rx_packets_total ge-0/0/0 "))
        .unwrap_or_else(|| panic!("{parsed}"));
    assert!(
        rx.split_whitespace()
            .last()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 0
    );
    assert!(
        parsed.contains("rampart_events_drained_total policy_deny"),
        "{parsed}"
    );
    for family in [
        "rampart_worker_sessions_cleared_total{worker=\"0\",lcore=\"1\"} 0",
        "rampart_screen_matches_total{worker=\"0\",option=\"syn-flood\"} ",
        "rampart_drops_total{worker=\"0\",reason=\"policy_deny\"} ",
    ] {
        assert!(body.contains(family), "{family}: {body}");
    }
    for stage in ["rx", "parse", "session", "events", "tx"] {
        assert!(
            body.contains(&format!(
                "rampart_worker_stage_cycles_total{{worker=\"0\",lcore=\"1\",stage=\"{stage}\"}}"
            )),
            "{stage}: {body}"
        );
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
}
