//! `rampart trace` over the demo config and hand-built captures: every
//! stage decides, with the Junos names operators expect.

mod common;

use common::*;
use rampart_pipeline::traffic;

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
