//! Reload means what it says, and costs the drain nothing: every setting
//! a reload accepts takes effect at the switch (socket modes and groups,
//! the Prometheus address) or the reload is refused naming each setting
//! that needs a restart; a 20,000-policy reload compiles off the drain
//! (no ring overflow under a steady event stream); memory stays flat over
//! 100 reloads.

mod common;

use std::fmt::Write as _;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// The deny stream of [`deny_stream_config`] with `policies` permit
/// policies (each to its own 2001:db8::/64) appended.
fn config_text(dir: &TempDir, test: &str, events: &str, policies: usize) -> String {
    let mut text = deny_stream_config(dir, test, dir.0.path(), events);
    if policies > 0 {
        text.push_str("[address-book]\n");
        for i in 0..policies {
            let _ = writeln!(
                text,
                "h{i} = [\"2001:db8:{:x}:{:x}::/64\"]",
                i >> 8,
                i & 0xff
            );
        }
    }
    for i in 0..policies {
        let _ = write!(
            text,
            "[[policy]]\nname = \"p{i}\"\nfrom-zone = \"untrust\"\nto-zone = \"trust\"\nsource-address = [\"any\"]\ndestination-address = [\"h{i}\"]\napplication = [\"any\"]\nthen = \"permit\"\n"
        );
    }
    text
}

fn start(config: &Path, control: &Path) -> KillOnDrop {
    start_dataplane(config, control, &[], Stdio::null())
}

fn reload(control: &Path) -> (bool, String) {
    let out = rampart()
        .args(["reload", "--socket", control.to_str().unwrap()])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn stop(child: KillOnDrop) {
    let mut child = child.take();
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "rampart did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn scrape(port: u16) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    Some(body)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn socket_modes_groups_and_prometheus_change_at_the_switch_and_restart_settings_are_named() {
    let dir = TempDir::new();
    let (p1, p2) = (free_port(), free_port());
    let v1 = format!("[telemetry]\nprometheus = \"{p1}\"");
    let config = dir.write(
        "rampart.toml",
        &config_text(&dir, "reload-settings", "", 0).replacen(
            "[[interface]]",
            &format!("{v1}\n[[interface]]"),
            1,
        ),
    );
    let control = dir.path("control.sock");
    let events = dir.path("events.sock");
    let child = start(&config, &control);
    let mode_gid = |p: &Path| {
        let m = std::fs::metadata(p).unwrap();
        (m.mode() & 0o777, m.gid())
    };
    assert_eq!(mode_gid(&events), (0o660, 0));
    assert_eq!(mode_gid(&control), (0o600, 0));
    assert!(scrape(p1).is_some_and(|b| b.contains("rampart_config_generation 1")));

    // New modes, groups and Prometheus address: all applied by the reload.
    let text = config_text(
        &dir,
        "reload-settings",
        "socket_mode = \"0640\"\nsocket_group = \"65534\"\ncontrol_socket_mode = \"0660\"\ncontrol_socket_group = \"65534\"",
        0,
    )
    .replacen(
        "[[interface]]",
        &format!("[telemetry]\nprometheus = \"{p2}\"\n[[interface]]"),
        1,
    );
    std::fs::write(&config, text).unwrap();
    let (ok, out) = reload(&control);
    assert!(ok, "{out}");
    assert_eq!(mode_gid(&events), (0o640, 65534));
    assert_eq!(mode_gid(&control), (0o660, 65534));
    assert!(
        scrape(p2).is_some_and(|b| b.contains("rampart_config_generation 2")),
        "the new address serves"
    );
    assert!(scrape(p1).is_none(), "the old address is closed");

    // Restart-only settings: refused, each one named, nothing changes.
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace(
            "socket_mode = \"0640\"",
            "socket_mode = \"0600\"\nring_size = 4096",
        )
        .replace("eal = [", "workers = 2\neal = [")
        .replace(
            "device = \"net_null0\"",
            "device = \"net_null0\"\nmtu = 9000",
        );
    std::fs::write(&config, text).unwrap();
    let (ok, out) = reload(&control);
    assert!(!ok);
    assert!(
        out.contains("dataplane.workers changed")
            && out.contains("events.ring_size changed")
            && out.contains("interface ge-0/0/1 mtu changed (1500 -> 9000)")
            && out.contains("needs a restart"),
        "{out}"
    );
    assert_eq!(
        mode_gid(&events),
        (0o640, 65534),
        "a refused reload changes nothing"
    );
    assert_eq!(stats(&control)["generation"], 2);
    stop(child);
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

#[test]
fn a_20000_policy_reload_loses_no_event_and_memory_stays_flat_over_100_reloads() {
    let dir = TempDir::new();
    // A steady logged deny stream the drain must keep up with during the
    // reload: 20,000 events/s (a second's worth may come at once) into a
    // 32,768-slot ring, which overflows if draining stops for ~0.6 s.
    let events = "ring_size = 32768\n[events.rate_limit]\npolicy_deny = 20000";
    let big = config_text(&dir, "reload-big", events, 20_000);
    let small = config_text(&dir, "reload-big", events, 200);
    let config = dir.write("rampart.toml", &small);
    let control = dir.path("control.sock");
    let child = start(&config, &control);
    let pid = child.id();

    std::fs::write(&config, &big).unwrap();
    let t0 = Instant::now();
    let (ok, out) = reload(&control);
    assert!(ok, "{out}");
    eprintln!("20,000-policy reload answered in {:?}", t0.elapsed());
    // Stats are answered while a reload compiles (and after it).
    std::fs::write(&config, &small).unwrap();
    let (ok, out) = reload(&control);
    assert!(ok, "{out}");
    let s = stats(&control);
    let deny = &s["events"]["policy_deny"];
    assert_eq!(
        deny["ring_overflow"], 0,
        "the drain stalled during the reload: {deny}"
    );
    assert!(deny["drained"].as_u64().unwrap() > 0);

    // 100 reloads (RAMPART_RELOADS) of a 200-policy config
    // (RAMPART_RELOAD_POLICIES): memory stays flat once warmed up
    // (allocator pools settle in the first 20 reloads).
    let env = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let (reloads, policies) = (
        env("RAMPART_RELOADS", 100).max(21),
        env("RAMPART_RELOAD_POLICIES", 200),
    );
    std::fs::write(&config, config_text(&dir, "reload-big", events, policies)).unwrap();
    let mut samples = Vec::new();
    let mut times = Vec::new();
    for i in 1..=reloads {
        let t = Instant::now();
        let (ok, out) = reload(&control);
        times.push(t.elapsed());
        assert!(ok, "reload {i}: {out}");
        if i % 10 == 0 || i == reloads {
            // Retired rulesets come back from the workers within a burst.
            std::thread::sleep(Duration::from_millis(200));
            samples.push((i, rss_kib(pid)));
        }
    }
    times.sort();
    let at20 = samples.iter().find(|(i, _)| *i == 20).unwrap().1;
    let last = samples.last().unwrap().1;
    eprintln!(
        "{reloads} reloads of {policies} policies: answered in {:?} min, {:?} median, {:?} max; RSS (reload, KiB): {samples:?}",
        times[0],
        times[times.len() / 2],
        times[times.len() - 1]
    );
    assert!(
        last <= at20 + 8 * 1024,
        "memory grew {} KiB from reload 20 to {reloads}",
        last as i64 - at20 as i64
    );
    let s = stats(&control);
    assert_eq!(s["generation"], 3 + reloads as u64);
    assert_eq!(s["events"]["policy_deny"]["ring_overflow"], 0);
    stop(child);
}
