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
