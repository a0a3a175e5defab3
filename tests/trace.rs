//! `rampart trace` over the demo config and hand-built captures: every
//! stage decides, with the Junos names operators expect.

mod common;

use common::*;
use rampart_testkit::configs;
use rampart_testkit::traffic;

const DEMO: &str = include_str!("../src/demo.toml");

fn trace_json(config: &std::path::Path, capture: &std::path::Path) -> Vec<serde_json::Value> {
    let out = rampart()
        .args([
            "trace",
            "--config",
            config.to_str().unwrap(),
            "--pcap",
            capture.to_str().unwrap(),
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn demo_capture_exercises_every_stage() {
    let dir = TempDir::new();
    let config = dir.write(
        "demo.toml",
        &DEMO.replace("@DIR@", dir.0.path().to_str().unwrap()),
    );
    let frames: Vec<Vec<u8>> = traffic::demo(0).into_iter().map(|f| f.bytes).collect();
    let capture = dir.path("demo.pcap");
    write_pcap(&capture, &frames);
    let lines = trace_json(&config, &capture);
    assert_eq!(lines.len(), frames.len());
    let seen = |stage: &str, reason: &str| {
        lines
            .iter()
            .any(|l| l["stage"] == stage && l["reason"] == reason)
    };
    for (stage, reason) in [
        ("policy", "policy-permit"),
        ("session", "session"),
        ("policy", "policy-deny"),
        ("filter-input", "filter-discard"),
        ("screen", "land"),
        ("screen", "syn-fin"),
        ("screen", "tcp-no-flag"),
        ("screen", "fin-no-ack"),
        ("screen", "winnuke"),
        ("screen", "syn-frag"),
        ("screen", "ping-death"),
        ("screen", "source-route-option"),
        ("screen", "unknown-protocol"),
        ("screen", "port-scan"),
        ("screen", "syn-flood"),
        ("parse", "bad_ihl"),
        ("parse", "non-ip"),
    ] {
        assert!(seen(stage, reason), "no packet decided at {stage}/{reason}");
    }
    let telnet = lines.iter().find(|l| l["dst_port"] == 23).unwrap();
    assert_eq!(telnet["rule"], "deny-telnet");
    assert_eq!(telnet["events"], serde_json::json!(["policy_deny"]));
    let first = &lines[0];
    assert_eq!(first["verdict"], "forward");
    assert_eq!(first["rule"], "allow-web");
    assert_eq!(first["events"], serde_json::json!(["session_open"]));
    let snmp = lines.iter().find(|l| l["dst_port"] == 161).unwrap();
    assert_eq!(snmp["rule"], "protect/no-snmp");
    assert_eq!(snmp["events"], serde_json::json!(["filter_log"]));
}

fn screen_config(dir: &TempDir, screen: &str) -> std::path::PathBuf {
    let interfaces = configs::untrust_into_trust("net_null0", "net_null1");
    dir.write(
        "screen.toml",
        &format!(
            r#"{interfaces}
{zones}[screen.edge]
{screen}
[default-policy]
then = "permit"
"#,
            zones = configs::untrust_screened_zones("edge"),
        ),
    )
}

/// Capture timestamps are the clock: a flood trips at the configured rate
/// and not below it.
#[test]
fn syn_flood_threshold_follows_capture_time() {
    use rampart_pipeline::wire::TcpFlags;
    use rampart_testkit::traffic::{tcp, v4};
    let dir = TempDir::new();
    let config = screen_config(&dir, "syn-flood = { attack-threshold = 100, source-threshold = 100000, destination-threshold = 100000 }");
    let run = |per_second: u64| -> usize {
        let capture = dir.path(&format!("flood{per_second}.pcap"));
        let frames: Vec<Vec<u8>> = (0..300u16)
            .map(|i| {
                tcp(
                    v4(198, 51, 100, (i % 250) as u8),
                    v4(10, 1, 0, 10),
                    1024 + i,
                    80,
                    TcpFlags::SYN,
                    &[],
                )
            })
            .collect();
        let file = std::fs::File::create(&capture).unwrap();
        let mut w = rampart_pipeline::pcap::Writer::new(file).unwrap();
        for (i, f) in frames.iter().enumerate() {
            w.write(1_000_000_000_000 + i as u64 * 1_000_000_000 / per_second, f)
                .unwrap();
        }
        w.finish().unwrap();
        trace_json(&config, &capture)
            .iter()
            .filter(|l| l["reason"] == "syn-flood")
            .count()
    };
    assert_eq!(run(50), 0, "50 SYN/s stays under 100/s");
    let flooded = run(300);
    assert!(
        flooded >= 150,
        "300 SYN/s over one second trips above 100/s ({flooded})"
    );
}

#[test]
fn port_scan_needs_ten_ports_within_the_threshold() {
    use rampart_pipeline::wire::TcpFlags;
    use rampart_testkit::traffic::{tcp, v4};
    let dir = TempDir::new();
    let config = screen_config(&dir, "port-scan = { threshold = 5000 }");
    let run = |gap_us: u64| -> Vec<String> {
        let capture = dir.path(&format!("scan{gap_us}.pcap"));
        let frames: Vec<Vec<u8>> = (0..15u16)
            .map(|p| {
                tcp(
                    v4(198, 51, 100, 7),
                    v4(10, 1, 0, 10),
                    40000,
                    1000 + p,
                    TcpFlags::SYN,
                    &[],
                )
            })
            .collect();
        let file = std::fs::File::create(&capture).unwrap();
        let mut w = rampart_pipeline::pcap::Writer::new(file).unwrap();
        for (i, f) in frames.iter().enumerate() {
            w.write(5_000_000_000 + i as u64 * gap_us * 1000, f)
                .unwrap();
        }
        w.finish().unwrap();
        trace_json(&config, &capture)
            .iter()
            .map(|l| l["reason"].as_str().unwrap().to_string())
            .collect()
    };
    let fast = run(100);
    assert_eq!(
        fast.iter().position(|r| r == "port-scan"),
        Some(9),
        "the 10th port within 5 ms trips: {fast:?}"
    );
    let slow = run(1000);
    assert!(
        slow.iter().all(|r| r != "port-scan"),
        "10 ports over 9 ms do not: {slow:?}"
    );
}

/// Every stateless screen option, one hand-built attack each, through
/// `trace` and through the real dataplane: dropped by the screen, reason
/// the Junos option name; benign traffic in the same capture is forwarded.
#[test]
fn every_stateless_attack_is_dropped_by_name_in_trace_and_run() {
    let dir = TempDir::new();
    let d = dir.0.path().display();
    let attacks = traffic::screen_attacks();
    let options: Vec<&str> = attacks.iter().map(|(n, _)| *n).collect();
    let empty = dir.path("empty.pcap");
    write_pcap(&empty, &[]);
    let capture = dir.path("attacks.pcap");
    let benign = traffic::mixed(5, 50, 0);
    let mut frames: Vec<Vec<u8>> = attacks.iter().map(|(_, f)| f.clone()).collect();
    frames.extend(benign.iter().map(|f| f.bytes.clone()));
    write_pcap(&capture, &frames);
    let interfaces = {
        let (untrust, trust) =
            configs::pcap_devices(capture.display(), empty.display(), format!("{d}/out"));
        configs::untrust_into_trust(&untrust, &trust)
    };
    let config = dir.write(
        "screen.toml",
        &format!(
            r#"{dataplane}
{interfaces}
{zones}{screen}
[default-policy]
then = "permit"
[flow]
tcp-syn-check = false
"#,
            zones = configs::untrust_screened_zones("all"),
            screen = configs::screen("all", &options.join(" ")),
            dataplane = configs::dataplane_with_sockets(&test_eal("attacks"), &d),
        ),
    );
    let lines = trace_json(&config, &capture);
    for (i, (name, _)) in attacks.iter().enumerate() {
        assert_eq!(
            (lines[i]["stage"].as_str(), lines[i]["reason"].as_str()),
            (Some("screen"), Some(*name)),
            "trace of {name}"
        );
        assert_eq!(lines[i]["verdict"], "drop");
    }
    assert!(
        lines[attacks.len()..]
            .iter()
            .all(|l| l["verdict"] == "forward"),
        "benign traffic passes"
    );

    let (records, _) = run_with_json_consumer(&config, &dir.path("events.sock"));
    let screened: Vec<String> = records
        .iter()
        .filter(|e| e["type"] == "screen_drop")
        .map(|e| e["screen"].as_str().unwrap().to_string())
        .collect();
    let mut want: Vec<String> = options.iter().map(|o| o.to_string()).collect();
    let mut got = screened.clone();
    want.sort();
    got.sort();
    assert_eq!(
        got, want,
        "one screen_drop per attack, by Junos name, in run"
    );
    assert_eq!(
        read_pcap(&dir.path("out1.pcap")).len(),
        benign.len(),
        "benign traffic forwarded in run"
    );
}
