//! Helpers for end-to-end tests: they run the real `rampart` binary on
//! DPDK vdevs (always `--no-pci`, a unique file prefix, `--no-huge`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rampart_pipeline::pcap;
use rampart_testkit::configs;

pub fn rampart() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rampart"))
}

/// EAL arguments every test config carries.
pub fn test_eal(test: &str) -> String {
    format!(
        r#"["--no-huge", "-m", "512", "--no-shconf", "--file-prefix=rampart-test-{test}", "--log-level", "lib.eal:error"]"#
    )
}

pub fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    let file = std::fs::File::create(path).unwrap();
    let mut w = pcap::Writer::new(std::io::BufWriter::new(file)).unwrap();
    for (i, f) in frames.iter().enumerate() {
        w.write(1_700_000_000_000_000_000 + i as u64 * 1000, f)
            .unwrap();
    }
    w.finish().unwrap();
}

pub fn read_pcap(path: &Path) -> Vec<Vec<u8>> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    pcap::read_all(std::io::BufReader::new(file))
        .unwrap()
        .into_iter()
        .map(|r| r.data)
        .collect()
}

/// `rampart stats --json` from the control socket of a running dataplane.
pub fn stats(control: &Path) -> serde_json::Value {
    let out = rampart()
        .args(["stats", "--socket", control.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Runs `rampart run` and insists it exits 0; returns its output.
pub fn run_ok(args: &[&str]) -> Output {
    let out = rampart()
        .arg("run")
        .args(args)
        .output()
        .expect("spawn rampart");
    assert!(
        out.status.success(),
        "rampart run {args:?} failed: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `rampart run --config CONFIG --idle-exit 1` with a real
/// `rampart events --format json` consumer on `socket` connected before
/// the ports start; returns the consumer's records and the run's stdout.
pub fn run_with_json_consumer(config: &Path, socket: &Path) -> (Vec<serde_json::Value>, String) {
    let (lines, out) = run_with_consumer(config, socket, "json");
    let records = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    (records, out)
}

/// [`run_with_json_consumer`] with the consumer printing `format`; its
/// lines.
pub fn run_with_consumer(config: &Path, socket: &Path, format: &str) -> (Vec<String>, String) {
    let (lines, _, summary) = run_with_consumer_args(config, socket, &["--format", format], None);
    (lines, summary)
}

/// `rampart run --config CONFIG --idle-exit 1` with a real `rampart events
/// --once` consumer (plus `consumer_args`) on `socket` connected before the
/// ports start; with `stats_out`, the run's final stats (`--stats-out`).
/// Returns the consumer's lines, the final stats (null without) and the
/// run's stdout.
pub fn run_with_consumer_args(
    config: &Path,
    socket: &Path,
    consumer_args: &[&str],
    stats_out: Option<&Path>,
) -> (Vec<String>, serde_json::Value, String) {
    let consumer = rampart()
        .args(["events", "--socket", socket.to_str().unwrap(), "--once"])
        .args(consumer_args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Read the consumer while the dataplane runs, so it never stalls on its stdout.
    let reader = std::thread::spawn(move || consumer.wait_with_output().unwrap());
    let mut args = vec![
        "--config",
        config.to_str().unwrap(),
        "--idle-exit",
        "1",
        "--wait-consumer",
        "20",
    ];
    if let Some(p) = stats_out {
        args.extend(["--stats-out", p.to_str().unwrap()]);
    }
    let out = run_ok(&args);
    let consumed = reader.join().unwrap();
    let lines = String::from_utf8(consumed.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let stats = stats_out.map_or(serde_json::Value::Null, |p| {
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    });
    (
        lines,
        stats,
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Parses JSON lines.
pub fn json_lines(lines: &[String]) -> Vec<serde_json::Value> {
    lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// A config in `dir` named `{tag}.toml`: interface ge-0/0/0 (zone untrust)
/// replays `{tag}-in.pcap` (written from `frames`), peered with ge-0/0/1
/// (zone trust, an empty capture), sockets `{tag}-events.sock` and
/// `{tag}-control.sock`, `dataplane` lines under `[dataplane]`, then `rest`
/// (zones, screens, policies, more `[events.*]` tables). Returns the
/// config and the event socket.
pub fn pcap_pair_config(
    dir: &TempDir,
    tag: &str,
    frames: &[Vec<u8>],
    dataplane: &str,
    rest: &str,
) -> (PathBuf, PathBuf) {
    let d = dir.0.path().display();
    write_pcap(&dir.path(&format!("{tag}-in.pcap")), frames);
    write_pcap(&dir.path(&format!("{tag}-empty.pcap")), &[]);
    let interfaces = {
        let input = format!("{d}/{tag}-in.pcap");
        let empty = format!("{d}/{tag}-empty.pcap");
        let (untrust, trust) = configs::pcap_devices(input, empty, format!("{d}/{tag}-out"));
        configs::untrust_trust_pair(&untrust, &trust)
    };
    let config = dir.write(
        &format!("{tag}.toml"),
        &format!(
            r#"[dataplane]
eal = {eal}
{dataplane}
[events]
socket = "{d}/{tag}-events.sock"
control_socket = "{d}/{tag}-control.sock"
{interfaces}
{rest}"#,
            eal = test_eal(tag),
        ),
    );
    (config, dir.path(&format!("{tag}-events.sock")))
}

pub struct TempDir(pub tempfile::TempDir);

impl TempDir {
    pub fn new() -> TempDir {
        TempDir(tempfile::tempdir().unwrap())
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

/// A child process killed when dropped, so a failing test never leaves a
/// busy-polling DPDK process behind for the tests after it.
pub struct KillOnDrop(pub Option<std::process::Child>);

impl KillOnDrop {
    pub fn new(child: std::process::Child) -> KillOnDrop {
        KillOnDrop(Some(child))
    }

    pub fn id(&self) -> u32 {
        self.0.as_ref().map_or(0, |c| c.id())
    }

    pub fn child(&mut self) -> &mut std::process::Child {
        self.0.as_mut().expect("not taken")
    }

    /// Takes the child back (the caller stops it).
    pub fn take(mut self) -> std::process::Child {
        self.0.take().expect("not taken")
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A config replaying denied, logged UDP (192.0.2.x -> 198.51.100.7)
/// without end, `net_pcap` (infinite_rx) -> `net_null`; its sockets are
/// `events.sock` and `control.sock` in `sockets`, and `events` is spliced
/// into `[events]` (it may open `[events.rate_limit]`). Policies can be
/// appended.
pub fn deny_stream_config(dir: &TempDir, test: &str, sockets: &Path, events: &str) -> String {
    use rampart_testkit::traffic::{udp, v4};
    let input = dir.path("in.pcap");
    if !input.exists() {
        let frames: Vec<Vec<u8>> = (0..16u8)
            .map(|i| udp(v4(192, 0, 2, i + 1), v4(198, 51, 100, 7), 4000, 9, &[0; 32]))
            .collect();
        write_pcap(&input, &frames);
    }
    let interfaces = configs::untrust_into_trust(
        &format!("net_pcap0,rx_pcap={},infinite_rx=1", input.display()),
        "net_null0",
    );
    format!(
        r#"[dataplane]
eal = {eal}
[default-policy]
then = "deny"
log = true
{interfaces}
{zones}{sockets}{events}
"#,
        eal = test_eal(test),
        zones = configs::UNTRUST_AND_TRUST_ZONES,
        sockets = configs::event_sockets(sockets.display()),
    )
}

/// `rampart run --config CONFIG ARGS...`, returned once its control socket
/// answers `stats` (bring-up done, the control plane serving).
pub fn start_dataplane(
    config: &Path,
    control: &Path,
    args: &[&str],
    stderr: std::process::Stdio,
) -> KillOnDrop {
    use std::time::{Duration, Instant};
    let child = KillOnDrop::new(
        rampart()
            .args(["run", "--config", config.to_str().unwrap()])
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap(),
    );
    let mut child = child;
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::os::unix::net::UnixStream::connect(control).is_err() {
        assert!(Instant::now() < deadline, "the dataplane did not come up");
        if let Some(status) = child.child().try_wait().unwrap() {
            panic!("the dataplane exited before it came up: {status}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(stats(control)["generation"], 1);
    child
}

/// `{tag}.toml` in `dir`: two `net_null` ports, `a` (peered with `b`) and
/// `b`, both in zone `z`, everything permitted; the sockets are
/// `events.sock` and `control.sock` in `dir`. `eal` is the `[dataplane]
/// eal` array as TOML (`test_eal(tag)` for most tests).
pub fn null_pair_config(dir: &TempDir, tag: &str, eal: &str) -> PathBuf {
    let d = dir.0.path().display();
    dir.write(
        &format!("{tag}.toml"),
        &format!(
            r#"{dataplane}[[interface]]
name = "a"
device = "net_null0,size=64"
zone = "z"
peer = "b"
[[interface]]
name = "b"
device = "net_null1,size=64"
zone = "z"
[zone.z]
[default-policy]
then = "permit"
"#,
            dataplane = configs::dataplane_with_sockets(eal, &d),
        ),
    )
}

/// Echoes what it reads back on 203.0.113.2:8081 until the client closes;
/// exits 1 if the connection is reset (tests with real hosts run it in the
/// server's namespace).
pub const ECHO_SERVER: &str = r#"
import socket, sys
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("203.0.113.2", 8081))
l.listen(1)
c, _ = l.accept()
try:
    while True:
        d = c.recv(100)
        if not d:
            break
        c.sendall(d)
except ConnectionResetError:
    sys.exit(1)
"#;

/// The SHA-256 of a file, in hex (`sha256sum`).
pub fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// Waits (bounded) until something in network namespace `ns` listens on
/// TCP `port`.
pub fn wait_listening(ns: &str, port: u16) {
    for _ in 0..100 {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                ns,
                "ss",
                "-Hltn",
                &format!("sport = :{port}"),
            ])
            .output()
            .unwrap();
        if !out.stdout.is_empty() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("nothing listens on {port} in {ns}");
}

/// The `[dataplane]` EAL array of node `n` (1 or 2) of a test's pair: the
/// two nodes' main and worker lcores on opposite CPUs.
pub fn pair_node_eal(n: u8, test: &str) -> String {
    let lcores = if n == 1 { "0,1" } else { "1,0" };
    format!(
        r#"["--no-huge", "-m", "512", "--no-shconf", "--file-prefix=rampart-test-{test}{n}", "--log-level", "lib.eal:error", "-l", "{lcores}"]"#
    )
}

/// The `[cluster]` table of node `n` of a test's pair named `name`: node 1
/// has the higher priority; the sync link is on 127.0.0.1 (this node at
/// `sync.0`, its peer at `sync.1`), the second heartbeat link on
/// 127.0.0.2 (`heartbeat`, likewise); heartbeats every 100 ms, a 600 ms
/// hold time.
pub fn cluster_table(name: &str, n: u8, sync: (u16, u16), heartbeat: (u16, u16)) -> String {
    format!(
        r#"[cluster]
name = "{name}"
node-id = {n}
priority = {priority}
local = "127.0.0.1:{}"
peer = "127.0.0.1:{}"
heartbeat-local = "127.0.0.2:{}"
heartbeat-peer = "127.0.0.2:{}"
heartbeat-interval-ms = 100
hold-time-ms = 600
"#,
        sync.0,
        sync.1,
        heartbeat.0,
        heartbeat.1,
        priority = if n == 1 { 200 } else { 100 },
    )
}
