//! What a reload changes in a running dataplane besides the rules: the
//! event rate limits and flow timeouts of the new generation take effect
//! at once (existing sessions included), and a session's events keep
//! naming the policy it was created under, as that generation named it.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use rampart_testkit::configs;
use rampart_testkit::traffic::{udp, v4};

/// The blocking policy a reload inserts ahead of `allow`.
fn blocker() -> String {
    configs::policy("blocker-inserted-later", ("untrust", "trust"))
        .application("junos-telnet")
        .then("deny")
        .to_string()
}

/// A bump-in-the-wire config: UDP/53 from untrust is permitted by `allow`
/// (sessions logged at init and close), the rest is denied and logged by
/// the default policy. `extra` goes before the policies.
fn config_text(dir: &TempDir, test: &str, input: &Path, extra: &str) -> String {
    let d = dir.0.path().display();
    let interfaces = configs::untrust_into_trust(
        &format!("net_pcap0,rx_pcap={}", input.display()),
        "net_null0",
    );
    let allow = configs::policy("allow", ("untrust", "trust"))
        .application("junos-dns-udp")
        .then("permit")
        .log(&["session-init", "session-close"]);
    format!(
        "{dataplane}{extra}\n{interfaces}{zones}{allow}{default}",
        dataplane = configs::dataplane_with_sockets(&test_eal(test), d),
        zones = configs::UNTRUST_AND_TRUST_ZONES,
        default = configs::default_policy_logged("deny"),
    )
}

/// A running `rampart run` (with `--stats-out`) and a JSON event consumer
/// connected before its ports start.
struct Running {
    child: Child,
    consumer: std::thread::JoinHandle<Output>,
    control: PathBuf,
    stats_out: PathBuf,
}

impl Running {
    fn start(dir: &TempDir, config: &Path) -> Running {
        let control = dir.path("control.sock");
        let stats_out = dir.path("stats-out.json");
        let child = rampart()
            .args(["run", "--config", config.to_str().unwrap()])
            .args(["--duration", "60", "--wait-consumer", "20", "--stats-out"])
            .arg(&stats_out)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let consumer = consume(&dir.path("events.sock"));
        wait_until("the control socket", || {
            std::os::unix::net::UnixStream::connect(&control).is_ok()
        });
        Running {
            child,
            consumer,
            control,
            stats_out,
        }
    }

    /// `rampart stats --json`, retried a few times: on a loaded machine a
    /// control request can miss its deadline (it then fails cleanly).
    fn stats(&self) -> serde_json::Value {
        for _ in 0..10 {
            let out = rampart()
                .args([
                    "stats",
                    "--socket",
                    self.control.to_str().unwrap(),
                    "--json",
                ])
                .output()
                .unwrap();
            if out.status.success() {
                return serde_json::from_slice(&out.stdout).unwrap();
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        stats(&self.control)
    }

    fn reload(&self) {
        let out = rampart()
            .args(["reload", "--socket", self.control.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        wait_until("generation 2", || self.stats()["generation"] == 2);
    }

    /// Stops the dataplane (SIGTERM); returns its final counters and the
    /// consumer's records.
    fn stop(self) -> (serde_json::Value, Vec<serde_json::Value>) {
        std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let out = self.child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let records = records_of(self.consumer);
        let stats = std::fs::read_to_string(&self.stats_out).unwrap();
        (serde_json::from_str(&stats).unwrap(), records)
    }
}

/// A `rampart events --format json` consumer of session events, until the
/// dataplane closes the stream.
fn consume(socket: &Path) -> std::thread::JoinHandle<Output> {
    let consumer = rampart()
        .args(["events", "--socket"])
        .arg(socket)
        .args(["--format", "json", "--types", "session_open,session_close"])
        .arg("--once")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::spawn(move || consumer.wait_with_output().unwrap())
}

fn records_of(consumer: std::thread::JoinHandle<Output>) -> Vec<serde_json::Value> {
    let consumed = consumer.join().unwrap();
    String::from_utf8(consumed.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Polls `cond` every 50 ms for at most 20 s.
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn worker(s: &serde_json::Value, key: &str) -> u64 {
    s["workers"][0][key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} in {s}"))
}

fn deny_counter(s: &serde_json::Value, key: &str) -> u64 {
    s["events"]["policy_deny"][key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} in {s}"))
}

/// `flows` DNS flows from 192.0.2.1.., each one packet.
fn dns_flows(flows: u8) -> Vec<Vec<u8>> {
    (1..=flows)
        .map(|i| udp(v4(192, 0, 2, i), v4(198, 51, 100, 53), 5000, 53, &[0; 32]))
        .collect()
}

fn of_type<'a>(records: &'a [serde_json::Value], t: &str) -> Vec<&'a serde_json::Value> {
    records.iter().filter(|r| r["type"] == t).collect()
}

#[test]
fn a_reload_lowering_the_deny_rate_limit_limits_at_once_and_accounting_stays_exact() {
    let dir = TempDir::new();
    let input = dir.path("in.pcap");
    // Denied by the default policy (logged), replayed in a loop.
    let frames: Vec<Vec<u8>> = (1..=50u8)
        .map(|i| udp(v4(192, 0, 2, i), v4(203, 0, 113, 9), 4000, 9999, &[0; 32]))
        .collect();
    write_pcap(&input, &frames);
    let text = |extra: &str| {
        config_text(&dir, "reload-rate-limit", &input, extra)
            .replace(".pcap\"", ".pcap,infinite_rx=1\"")
    };
    let config = dir.write("rampart.toml", &text(""));
    let run = Running::start(&dir, &config);
    wait_until("denies", || deny_counter(&run.stats(), "generated") > 1000);
    assert_eq!(
        deny_counter(&run.stats(), "rate_limited"),
        0,
        "no rate limit in generation 1"
    );

    std::fs::write(&config, text("[events.rate_limit]\npolicy_deny = 5\n")).unwrap();
    run.reload();
    let after_reload = run.stats();
    let started = Instant::now();
    wait_until("rate-limited denies", || {
        deny_counter(&run.stats(), "rate_limited")
            > deny_counter(&after_reload, "rate_limited") + 1000
    });
    let later = run.stats();
    // What passed the limiter since the reload: at most 5 per second (plus
    // a burst of 5); generous slack for the time the stats calls took.
    let passed =
        |s: &serde_json::Value| deny_counter(s, "generated") - deny_counter(s, "rate_limited");
    let allowed = 5 * (started.elapsed().as_secs() + 3) + 5;
    assert!(
        passed(&later) - passed(&after_reload) <= allowed,
        "the lowered limit holds: {} passed in {:?} ({later})",
        passed(&later) - passed(&after_reload),
        started.elapsed()
    );

    let (last, _) = run.stop();
    let generated = deny_counter(&last, "generated");
    assert!(generated > 1000, "{last}");
    assert_eq!(
        generated,
        deny_counter(&last, "rate_limited")
            + deny_counter(&last, "ring_overflow")
            + deny_counter(&last, "drained"),
        "generated == rate_limited + ring_overflow + drained across the reload: {last}"
    );
    assert_eq!(
        last["workers"][0]["drops"]["policy_deny"].as_u64(),
        Some(generated),
        "one event per denied packet: {last}"
    );
}

#[test]
fn a_reload_shortening_the_udp_timeout_ages_idle_sessions_at_the_new_timeout() {
    let dir = TempDir::new();
    let input = dir.path("in.pcap");
    write_pcap(&input, &dns_flows(5));
    let text = |udp: u32| {
        config_text(
            &dir,
            "reload-udp-timeout",
            &input,
            &format!("[flow.timeouts]\nudp = {udp}\n"),
        )
    };
    let config = dir.write("rampart.toml", &text(600));
    let run = Running::start(&dir, &config);
    wait_until("5 sessions", || {
        worker(&run.stats(), "sessions_created") == 5
    });
    // Idle for a while under the 600 s timeout: nothing ages.
    std::thread::sleep(Duration::from_millis(1500));
    let before = run.stats();
    assert_eq!(worker(&before, "sessions_active"), 5, "{before}");
    assert_eq!(worker(&before, "sessions_closed"), 0, "{before}");

    // 1 s: the sessions, idle for longer already, age out at once.
    std::fs::write(&config, text(1)).unwrap();
    run.reload();
    wait_until("the sessions to age out", || {
        worker(&run.stats(), "sessions_active") == 0
    });
    assert_eq!(worker(&run.stats(), "sessions_closed"), 5);

    let (_, records) = run.stop();
    let closes = of_type(&records, "session_close");
    assert_eq!(closes.len(), 5, "{records:?}");
    for c in closes {
        assert_eq!(c["reason"], "idle-timeout", "{c}");
        assert_eq!(c["generation"], 2, "closed under generation 2: {c}");
        assert_eq!(c["session_generation"], 1, "{c}");
        assert_eq!(c["policy"], "allow", "{c}");
    }
}

#[test]
fn a_session_opened_under_allow_closes_as_allow_after_a_reload_inserted_a_policy_ahead() {
    let dir = TempDir::new();
    let input = dir.path("in.pcap");
    write_pcap(&input, &dns_flows(3));
    let config = dir.write(
        "rampart.toml",
        &config_text(&dir, "reload-policy-names", &input, ""),
    );
    let run = Running::start(&dir, &config);
    wait_until("3 sessions", || {
        worker(&run.stats(), "sessions_created") == 3
    });

    // Generation 2 puts `blocker-inserted-later` first: it takes policy
    // id 0, which was `allow`'s in generation 1.
    let reloaded = config_text(&dir, "reload-policy-names", &input, "").replace(
        "[[policy]]\nname = \"allow\"",
        &format!("{}[[policy]]\nname = \"allow\"", blocker()),
    );
    assert!(reloaded.find("blocker-inserted-later") < reloaded.find("name = \"allow\""));
    std::fs::write(&config, reloaded).unwrap();
    run.reload();
    assert_eq!(worker(&run.stats(), "sessions_active"), 3);
    // A consumer that connects now never saw generation 1 live: the hub
    // sends it generation 1's names, which the sessions still reference.
    let late = consume(&dir.path("events.sock"));
    wait_until("the late consumer", || {
        run.stats()["consumers"].as_array().map_or(0, Vec::len) == 2
    });

    // The sessions end with the run (reason shutdown), under generation 2.
    let (_, records) = run.stop();
    let late = records_of(late);
    let late_closes = of_type(&late, "session_close");
    assert_eq!(late_closes.len(), 3, "{late:?}");
    for c in late_closes {
        assert_eq!(c["policy"], "allow", "{c}");
        assert_eq!(c["from_zone"], "untrust", "{c}");
    }
    let opens = of_type(&records, "session_open");
    let closes = of_type(&records, "session_close");
    assert_eq!((opens.len(), closes.len()), (3, 3), "{records:?}");
    for o in opens {
        assert_eq!(
            (o["generation"].as_u64(), o["policy"].as_str()),
            (Some(1), Some("allow"))
        );
    }
    for c in closes {
        assert_eq!(c["policy"], "allow", "named as generation 1 named it: {c}");
        assert_eq!(c["reason"], "shutdown", "{c}");
        assert_eq!(c["generation"], 2, "{c}");
        assert_eq!(c["session_generation"], 1, "{c}");
        assert_eq!(
            (c["from_zone"].as_str(), c["to_zone"].as_str()),
            (Some("untrust"), Some("trust"))
        );
    }
}
