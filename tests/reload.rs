//! Hot reload under replayed traffic: a policy change takes effect at
//! once, sessions survive, nothing is lost; a bad config is refused and
//! the running one stays.

mod common;

use std::time::{Duration, Instant};

use common::*;
use rampart_testkit::configs;
use rampart_testkit::traffic::{udp, v4};

fn config_text(dir: &TempDir, input: &std::path::Path, allow_ntp: bool) -> String {
    let d = dir.0.path().display();
    let interfaces = configs::untrust_into_trust(
        &format!("net_pcap0,rx_pcap={},infinite_rx=1", input.display()),
        "net_null0",
    );
    let dns = configs::policy("dns", ("untrust", "trust"))
        .application("junos-dns-udp")
        .then("permit");
    let ntp = configs::policy("ntp", ("untrust", "trust"))
        .application("junos-ntp")
        .then(if allow_ntp { "permit" } else { "deny" });
    format!(
        "{dataplane}{interfaces}{zones}{dns}{ntp}",
        dataplane = configs::dataplane_with_sockets(&test_eal("reload"), d),
        zones = configs::UNTRUST_AND_TRUST_ZONES,
    )
}

fn worker(s: &serde_json::Value, key: &str) -> u64 {
    s["workers"][0][key].as_u64().unwrap()
}

fn policy_denies(s: &serde_json::Value) -> u64 {
    s["workers"][0]["drops"]["policy_deny"].as_u64().unwrap()
}

#[test]
fn reload_changes_policy_keeps_sessions_and_refuses_bad_configs() {
    let dir = TempDir::new();
    let input = dir.path("in.pcap");
    // 20 DNS flows (permitted throughout) and 20 NTP flows (denied, then permitted).
    let frames: Vec<Vec<u8>> = (0..20u8)
        .flat_map(|i| {
            [
                udp(v4(192, 0, 2, i + 1), v4(10, 1, 0, 53), 5000, 53, &[0; 32]),
                udp(v4(192, 0, 2, i + 1), v4(10, 1, 0, 123), 6000, 123, &[0; 48]),
            ]
        })
        .collect();
    write_pcap(&input, &frames);
    let config = dir.write("rampart.toml", &config_text(&dir, &input, false));
    let control = dir.path("control.sock");
    let child = rampart()
        .args([
            "run",
            "--config",
            config.to_str().unwrap(),
            "--duration",
            "8",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::os::unix::net::UnixStream::connect(&control).is_err() {
        assert!(Instant::now() < deadline, "the dataplane did not come up");
        std::thread::sleep(Duration::from_millis(20));
    }
    // An event consumer sees the refused reload too (packet events filtered out).
    let consumer = rampart()
        .args([
            "events",
            "--socket",
            dir.path("events.sock").to_str().unwrap(),
            "--format",
            "json",
            "--types",
            "session_open",
            "--once",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let consumer = std::thread::spawn(move || consumer.wait_with_output().unwrap());
    // And one reading Junos text: a line for each reload taken or refused.
    let junos = rampart()
        .args([
            "events",
            "--socket",
            dir.path("events.sock").to_str().unwrap(),
        ])
        .args(["--format", "junos", "--types", "session_open", "--once"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let junos = std::thread::spawn(move || junos.wait_with_output().unwrap());
    std::thread::sleep(Duration::from_millis(500));
    let before = stats(&control);
    assert_eq!(before["generation"], 1);
    assert!(
        policy_denies(&before) > 0,
        "NTP is denied at first: {before}"
    );
    assert_eq!(worker(&before, "sessions_active"), 20, "DNS sessions only");

    // A config with a syntax error is refused; generation 1 keeps running.
    std::fs::write(&config, "[[policy]\nname = ").unwrap();
    let bad = rampart()
        .args(["reload", "--socket", control.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("rampart.toml:1:") && err.contains("generation 1 keeps running"),
        "{err}"
    );
    assert_eq!(stats(&control)["generation"], 1);
    let reject_errors = err.clone();

    // Permit NTP: new sessions, and the DNS ones are kept.
    std::fs::write(&config, config_text(&dir, &input, true)).unwrap();
    let ok = rampart()
        .args(["reload", "--socket", control.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    std::thread::sleep(Duration::from_millis(300));
    let after = stats(&control);
    assert_eq!(after["generation"], 2);
    std::thread::sleep(Duration::from_millis(300));
    let later = stats(&control);
    assert_eq!(
        policy_denies(&later),
        policy_denies(&after),
        "no denies once NTP is permitted"
    );
    assert!(
        worker(&later, "rx") > worker(&after, "rx"),
        "still forwarding"
    );
    assert_eq!(
        worker(&later, "sessions_active"),
        40,
        "DNS sessions survived, NTP sessions added"
    );
    assert_eq!(
        worker(&later, "sessions_created"),
        40,
        "no DNS session was created twice"
    );

    // Per-rule hit counters of the running generation.
    let rules = rampart()
        .args([
            "stats",
            "--socket",
            control.to_str().unwrap(),
            "--rules",
            "--json",
        ])
        .output()
        .unwrap();
    let rules: serde_json::Value = serde_json::from_slice(&rules.stdout).unwrap();
    assert_eq!(rules["generation"], 2);
    let ntp = rules["policies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["policy"] == "ntp")
        .unwrap();
    assert_eq!(
        (ntp["action"].as_str(), ntp["hits"].as_u64()),
        (Some("permit"), Some(20)),
        "one hit per new NTP session: {rules}"
    );

    // SIGHUP reloads too.
    std::process::Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(stats(&control)["generation"], 3);

    let out = child.wait_with_output().unwrap();
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("reload rejected") && log.contains("generation 3"),
        "{log}"
    );
    // The third place the rejection shows: one config_reject record.
    let consumed = consumer.join().unwrap();
    let rejects: Vec<serde_json::Value> = String::from_utf8_lossy(&consumed.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["type"] == "config_reject")
        .collect();
    assert_eq!(rejects.len(), 1, "{rejects:?}");
    assert_eq!(rejects[0]["generation"], 1, "generation 1 kept running");
    assert_eq!(rejects[0]["path"], config.to_str().unwrap());
    let first_error = rejects[0]["errors"][0].as_str().unwrap();
    assert!(
        first_error.contains("rampart.toml:1:") && reject_errors.contains(first_error),
        "{first_error} vs {reject_errors}"
    );
    let junos = junos.join().unwrap();
    let junos = String::from_utf8_lossy(&junos.stdout);
    let tagged = |tag: &str| -> Vec<&str> { junos.lines().filter(|l| l.contains(tag)).collect() };
    let loaded = tagged("rampart: RAMPART_CONFIG_LOADED: configuration generation ");
    assert_eq!(loaded.len(), 2, "generations 2 and 3: {junos}");
    assert!(
        loaded[0].ends_with("generation 2 is active")
            && loaded[1].ends_with("generation 3 is active"),
        "{junos}"
    );
    let refused = tagged("rampart: RAMPART_CONFIG_REJECTED: reload of ");
    assert_eq!(refused.len(), 1, "{junos}");
    assert!(
        refused[0].contains("rejected, generation 1 keeps running: ")
            && refused[0].contains("rampart.toml:1:"),
        "{junos}"
    );
    // Every line reads as an SRX log file's: time and host first.
    let log_line = regex_lite_log_line();
    for l in junos.lines() {
        assert!(log_line(l), "{l}");
    }
    // Nothing lost across the reloads: every packet received was forwarded or dropped.
    let w: Vec<u64> = summary
        .lines()
        .skip_while(|l| !l.starts_with("worker"))
        .nth(1)
        .unwrap()
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    assert_eq!(
        w[2],
        w[3] + w[4] + w[5],
        "rx == tx + dropped + tx_full: {summary}"
    );
    // net_null also generates (empty, non-IP) frames: count both ports.
    let ports_in: u64 = summary
        .lines()
        .filter(|l| l.starts_with("ge-0/0/"))
        .map(|l| l.split_whitespace().nth(2).unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(
        ports_in, w[2],
        "every packet the ports received reached the worker: {summary}"
    );
}

/// `Mmm dd hh:mm:ss HOST APP: ` at the start of a line.
fn regex_lite_log_line() -> impl Fn(&str) -> bool {
    |l: &str| {
        let b = l.as_bytes();
        let words: Vec<&str> = l.split(' ').filter(|w| !w.is_empty()).collect();
        b.len() > 16
            && b[0].is_ascii_uppercase()
            && b[3] == b' '
            && b[9] == b':'
            && b[12] == b':'
            && words.len() >= 5
            && words[4].ends_with(':')
    }
}
