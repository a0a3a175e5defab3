//! `rampart top` against a dataplane under a deny storm: shown in a real
//! terminal (a detached tmux session whose screen the test reads), and
//! over a pipe (`--once --json`).

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// A tmux session killed when dropped.
struct Tmux(String);

impl Tmux {
    fn tmux(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .args(args)
            .output()
            .expect("tmux is installed (meson-scripts/setup.sh)")
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.tmux(&["capture-pane", "-p", "-t", &self.0]).stdout)
            .into_owned()
    }

    fn alive(&self) -> bool {
        self.tmux(&["has-session", "-t", &self.0]).status.success()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-session", "-t", &self.0]);
    }
}

#[test]
fn top_shows_the_deny_storm_live_in_a_terminal_and_once_as_json() {
    let dir = TempDir::new();
    let config = dir.write(
        "top.toml",
        &deny_stream_config(&dir, "top", dir.0.path(), ""),
    );
    let control = dir.path("control.sock");
    let _dataplane = start_dataplane(&config, &control, &[], Stdio::null());

    // Over a pipe: one snapshot, as JSON.
    let out = rampart()
        .args([
            "top",
            "--socket",
            control.to_str().unwrap(),
            "--once",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ports"][0]["name"], "ge-0/0/0");
    assert!(v["ports"][0]["rx_pps"].as_u64().unwrap() > 0, "{v}");
    let denied = v["drops"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["reason"] == "policy_deny");
    assert!(
        denied.expect("policy_deny drops")["per_s"]
            .as_u64()
            .unwrap()
            > 0,
        "{v}"
    );
    assert_eq!(v["policies"][0]["policy"], "default-policy", "{v}");
    let deny = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "policy_deny")
        .unwrap();
    assert!(deny["generated"].as_u64().unwrap() > 0, "{v}");
    let load = v["workers"][0]["load"].as_f64().unwrap();
    assert!(load > 0.0 && load <= 1.0, "{v}");

    // In a terminal: the live view, refreshed, until q.
    let session = Tmux(format!("rampart-top-{}", std::process::id()));
    let started = session.tmux(&[
        "new-session",
        "-d",
        "-s",
        &session.0,
        "-x",
        "150",
        "-y",
        "60",
        &format!(
            "{} top --socket {}",
            env!("CARGO_BIN_EXE_rampart"),
            control.display()
        ),
    ]);
    assert!(started.status.success(), "{started:?}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut screen = String::new();
    while Instant::now() < deadline {
        screen = session.screen();
        if screen.contains("default-policy") && screen.contains("policy_deny") {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    for want in [
        "rampart top",
        "ports",
        "ge-0/0/0",
        "workers",
        "load",
        "drops",
        "policy_deny",
        "events",
        "sessions",
        "policies",
        "default-policy",
        "screens",
    ] {
        assert!(
            screen.contains(want),
            "{want:?} not on the screen:\n{screen}"
        );
    }
    // Refreshed: the default policy's hits shown grow.
    let total_of = |s: &str| -> Option<u64> {
        let line = s.lines().find(|l| l.contains("default-policy"))?;
        line.split(|c: char| !c.is_ascii_digit())
            .rfind(|w| !w.is_empty())?
            .parse()
            .ok()
    };
    let first = total_of(&screen).expect("the default policy's hits");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        std::thread::sleep(Duration::from_millis(300));
        if total_of(&session.screen()).is_some_and(|n| n > first) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the view did not refresh:\n{}",
            session.screen()
        );
    }
    session.tmux(&["send-keys", "-t", &session.0, "q"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while session.alive() {
        assert!(
            Instant::now() < deadline,
            "q did not quit:\n{}",
            session.screen()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
