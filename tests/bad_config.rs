//! A bad config or a failing EAL exits non-zero with a message that names
//! the field (or DPDK's reason), never a panic.

mod common;

use common::*;

fn base(test: &str, workers: &str, dev_a: &str, peer_a: &str) -> String {
    format!(
        r#"[dataplane]
workers = {workers}
eal = {eal}

[[interface]]
name = "a"
device = "{dev_a}"
zone = "z"
peer = "{peer_a}"

[[interface]]
name = "b"
device = "net_null1"
zone = "z"

[zone.z]
"#,
        eal = test_eal(test)
    )
}

fn run_err(config: &str) -> String {
    let dir = TempDir::new();
    let path = dir.write("bad.toml", config);
    let out = rampart()
        .args([
            "run",
            "--config",
            path.to_str().unwrap(),
            "--duration",
            "0.2",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "must fail:\n{stderr}");
    assert!(!stderr.contains("panicked"), "no panic:\n{stderr}");
    stderr
}

#[test]
fn zero_workers_names_the_field() {
    let err = run_err(&base("zero", "0", "net_null0", "b"));
    assert!(
        err.contains("bad.toml:2:") && err.contains("dataplane.workers"),
        "{err}"
    );
}

#[test]
fn missing_peer_names_the_field() {
    let err = run_err(&base("peer", "1", "net_null0", "nowhere"));
    assert!(
        err.contains("interface[a].peer") && err.contains("nowhere"),
        "{err}"
    );
}

#[test]
fn unknown_device_is_refused_with_dpdks_reason() {
    let err = run_err(&base("unknown", "1", "net_bogus0", "b"));
    assert!(err.contains("net_bogus0"), "names the device:\n{err}");
    assert!(err.contains("EAL initialization failed"), "{err}");
}

#[test]
fn eal_failure_reports_dpdks_reason() {
    let config = base("ealfail", "1", "net_null0", "b")
        .replace("eal = [", "eal = [\"--definitely-not-an-eal-flag\", ");
    let err = run_err(&config);
    assert!(
        err.contains("EAL initialization failed") && err.contains("errno"),
        "{err}"
    );
}

#[test]
fn check_config_reports_every_error_with_location() {
    let dir = TempDir::new();
    let path = dir.write("bad.toml", &base("check", "0", "net_null0", "nowhere"));
    let out = rampart()
        .args(["check-config", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("dataplane.workers") && err.contains("interface[a].peer"),
        "both errors:\n{err}"
    );
    let good = dir.write("good.toml", &base("check", "1", "net_null0", "b"));
    let out = rampart()
        .args(["check-config", good.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `rampart check-config FILE`: its exit status and stderr.
fn check_config(path: &std::path::Path) -> (bool, String) {
    let out = rampart()
        .args(["check-config", path.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!stderr.contains("panicked"), "no panic:\n{stderr}");
    (out.status.success(), stderr)
}

/// Issue 26: check-config passed a capture that is not there, and run
/// then failed with `no DPDK port named "net_pcap0"`, the cause buried in
/// DPDK's log. Both now name the file, line, column and argument.
#[test]
fn missing_capture_is_refused_by_check_config_and_run_alike() {
    let dev = "net_pcap0,rx_pcap=/nonexistent-rampart.pcap";
    let config = base("nocap", "1", dev, "b");
    let want = "bad.toml:7:21: interface[a].device: rx_pcap=/nonexistent-rampart.pcap: does not exist (net_pcap would not create the port)";
    let dir = TempDir::new();
    let (ok, err) = check_config(&dir.write("bad.toml", &config));
    assert!(!ok && err.contains(want), "{err}");
    let err = run_err(&config);
    assert!(err.contains(want), "{err}");
    assert!(!err.contains("no DPDK port named"), "{err}");
}

#[test]
fn devarg_a_driver_does_not_take_is_refused_before_dpdk_starts() {
    let config = base("badarg", "1", "net_null0,no_rx=1", "b");
    let want = "bad.toml:7:21: interface[a].device: net_null does not take the argument 'no_rx' (did you mean 'no-rx'?)";
    let dir = TempDir::new();
    let (ok, err) = check_config(&dir.write("bad.toml", &config));
    assert!(!ok && err.contains(want), "{err}");
    let err = run_err(&config);
    assert!(err.contains(want) && !err.contains("EAL"), "{err}");
}

#[test]
fn unknown_socket_group_is_refused_before_dpdk_starts() {
    let config = format!(
        "{}[events]\ncontrol_socket_group = \"rampart-no-such-group\"\n",
        base("nogroup", "1", "net_null0", "b")
    );
    let want = "bad.toml:18:24: events.control_socket_group: group \"rampart-no-such-group\": no such group";
    let dir = TempDir::new();
    let (ok, err) = check_config(&dir.write("bad.toml", &config));
    assert!(!ok && err.contains(want), "{err}");
    let err = run_err(&config);
    assert!(err.contains(want) && !err.contains("EAL"), "{err}");
}

/// A device every check passes but the driver still refuses (a file that
/// is not a capture): run names the driver and where DPDK's reason is,
/// not only a missing port.
#[test]
fn device_the_driver_refuses_is_named_with_its_driver() {
    let dir = TempDir::new();
    let notpcap = dir.write("not.pcap", "this is not a capture");
    let dev = format!("net_pcap0,rx_pcap={}", notpcap.display());
    let config = base("notpcap", "1", &dev, "b");
    let (ok, err) = check_config(&dir.write("ok.toml", &config));
    assert!(ok, "{err}");
    // DPDK's log goes to stdout; its line with the driver's reason is
    // the one the message points to.
    let path = dir.write("bad.toml", &config);
    let out = rampart()
        .args([
            "run",
            "--config",
            path.to_str().unwrap(),
            "--duration",
            "0.2",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success() && !err.contains("panicked"), "{err}");
    assert!(
        err.contains("interface a")
            && err.contains("the net_pcap driver did not create port \"net_pcap0\"")
            && !err.contains("no DPDK port named"),
        "{err}"
    );
    assert!(
        format!("{log}{err}").contains("failed to initialize net_pcap0 device"),
        "{log}{err}"
    );
}
