//! A high-availability pair between real hosts (issue 27): two Rampart
//! nodes, fw1 and fw2, both on the path between a client and a server
//! (a hub on each side: Linux bridges that learn nothing and flood every
//! frame, so each node sees every frame; the standby forwards none), the
//! sync link and a second heartbeat link on loopback, `tcp-syn-check` and
//! `tcp-sequence-check` on. A download and an idle TCP connection open
//! through fw1; fw1 is killed with SIGKILL mid-transfer; the download
//! completes byte for byte through fw2 and the idle connection still
//! carries data. fw1 restarts, rejoins, receives the table by bulk sync,
//! and takes the role back by a manual failover; the idle connection
//! carries data again and a second download goes through fw1. The merged
//! event stream of both nodes holds exactly one session_open and one
//! session_close per connection, and each node's books balance.
//!
//! Needs root and `ip netns`; skips with a message where the machine cannot
//! create namespaces.

mod common;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use rampart_testkit::configs;

fn sh(args: &[&str]) -> Output {
    Command::new(args[0]).args(&args[1..]).output().unwrap()
}

fn ok(args: &[&str]) {
    let out = sh(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Namespaces, hubs and veths made by this test and removed when it ends.
struct Topology {
    client: String,
    server: String,
    hubs: [String; 2],
    /// Per node, the machine's ends of its veths: client side, server side.
    ports: [[String; 2]; 2],
    others: Vec<String>,
}

impl Topology {
    /// client 203.0.113.1/24 -- hub c -- fw1, fw2 -- hub s -- server
    /// 203.0.113.2/24: one subnet across the bump.
    fn create(tag: &str) -> Option<Topology> {
        let client = format!("hac-{tag}");
        if !sh(&["ip", "netns", "add", &client]).status.success() {
            return None;
        }
        let server = format!("has-{tag}");
        ok(&["ip", "netns", "add", &server]);
        let hubs = [format!("hc{tag}"), format!("hs{tag}")];
        let ports = [
            [format!("f1a{tag}"), format!("f1b{tag}")],
            [format!("f2a{tag}"), format!("f2b{tag}")],
        ];
        let mut t = Topology {
            client,
            server,
            hubs,
            ports,
            others: Vec::new(),
        };
        for hub in &t.hubs {
            ok(&[
                "ip",
                "link",
                "add",
                hub,
                "type",
                "bridge",
                "ageing_time",
                "0",
                "stp_state",
                "0",
            ]);
            ok(&[
                "sysctl",
                "-qw",
                &format!("net.ipv6.conf.{hub}.disable_ipv6=1"),
            ]);
            ok(&["ip", "link", "set", hub, "up"]);
        }
        // A veth `a` (machine side) whose peer `b` joins `hub`.
        let member = |a: &str, b: &str, hub: &str| {
            ok(&["ip", "link", "add", a, "type", "veth", "peer", "name", b]);
            for dev in [a, b] {
                ok(&[
                    "sysctl",
                    "-qw",
                    &format!("net.ipv6.conf.{dev}.disable_ipv6=1"),
                ]);
            }
            ok(&["ip", "link", "set", b, "master", hub]);
            // A hub: nothing learned, every frame to every port.
            ok(&[
                "bridge", "link", "set", "dev", b, "learning", "off", "flood", "on",
            ]);
            ok(&["ip", "link", "set", b, "up"]);
            ok(&["ip", "link", "set", a, "arp", "off", "up"]);
        };
        for node in 0..2 {
            for side in 0..2 {
                let a = t.ports[node][side].clone();
                member(&a, &format!("{a}h"), &t.hubs[side].clone());
            }
        }
        for (ns, side, addr) in [
            (t.client.clone(), 0, "203.0.113.1/24"),
            (t.server.clone(), 1, "203.0.113.2/24"),
        ] {
            let host = format!("{}{tag}", if side == 0 { "hcl" } else { "hsv" });
            let inner = format!("{host}i");
            ok(&[
                "ip", "link", "add", &host, "type", "veth", "peer", "name", &inner,
            ]);
            ok(&[
                "sysctl",
                "-qw",
                &format!("net.ipv6.conf.{host}.disable_ipv6=1"),
            ]);
            ok(&["ip", "link", "set", &host, "master", &t.hubs[side]]);
            ok(&[
                "bridge", "link", "set", "dev", &host, "learning", "off", "flood", "on",
            ]);
            ok(&["ip", "link", "set", &host, "up"]);
            ok(&["ip", "link", "set", &inner, "netns", &ns]);
            let x = |a: &[&str]| {
                let mut v = vec!["ip", "netns", "exec", &ns];
                v.extend_from_slice(a);
                ok(&v);
            };
            x(&["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
            x(&["ip", "addr", "add", addr, "dev", &inner]);
            // Checksums in software: net_pcap passes frames on as they are.
            x(&["ethtool", "-K", &inner, "tx", "off"]);
            x(&["ip", "link", "set", &inner, "up"]);
            x(&["ip", "link", "set", "lo", "up"]);
            t.others.push(host);
        }
        Some(t)
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for l in self.ports.iter().flatten().chain(&self.others) {
            let _ = sh(&["ip", "link", "del", l]);
        }
        for hub in &self.hubs {
            let _ = sh(&["ip", "link", "del", hub]);
        }
        for ns in [&self.client, &self.server] {
            let _ = sh(&["ip", "netns", "del", ns]);
        }
    }
}

/// One node of the pair: its config, sockets and process.
struct Node {
    dir: TempDir,
    config: std::path::PathBuf,
    control: std::path::PathBuf,
    events: std::path::PathBuf,
    stats_out: std::path::PathBuf,
    child: Option<KillOnDrop>,
}

impl Node {
    /// Node `n` (1 or 2) of the pair on `ports`; fw1 has the higher
    /// priority. Sync link 127.0.0.1, second heartbeat link 127.0.0.2.
    fn new(n: u8, ports: &[String; 2], tag: &str, base_port: u16) -> Node {
        let dir = TempDir::new();
        let d = dir.0.path().display();
        let me = base_port + u16::from(n);
        let peer = base_port + 3 - u16::from(n);
        let config = dir.write(
            "rampart.toml",
            &format!(
                r#"{dataplane}
{cluster}[flow]
tcp-syn-check = true
tcp-sequence-check = true
[flow.timeouts]
tcp-closing = 1
[[interface]]
name = "ge-0/0/0"
device = "net_pcap0,iface={c}"
zone = "clients"
peer = "ge-0/0/1"
[[interface]]
name = "ge-0/0/1"
device = "net_pcap1,iface={s}"
zone = "servers"
peer = "ge-0/0/0"
[zone.clients]
[zone.servers]
[application]
web8080 = {{ protocol = "tcp", destination-port = "8080" }}
echo8081 = {{ protocol = "tcp", destination-port = "8081" }}
[[policy]]
name = "clients-to-servers"
from-zone = "clients"
to-zone = "servers"
source-address = ["any"]
destination-address = ["any"]
application = ["web8080", "echo8081"]
then = "permit"
log = true
[default-policy]
then = "deny"
"#,
                dataplane =
                    configs::dataplane_with_sockets(&pair_node_eal(n, &format!("ha-{tag}-")), &d),
                cluster = cluster_table(&format!("edge-{tag}"), n, (me, peer), (me, peer)),
                c = ports[0],
                s = ports[1],
            ),
        );
        Node {
            control: dir.path("control.sock"),
            events: dir.path("events.sock"),
            stats_out: dir.path("stats.json"),
            config,
            dir,
            child: None,
        }
    }

    fn start(&mut self) {
        let _ = std::fs::remove_file(&self.stats_out);
        self.child = Some(start_dataplane(
            &self.config,
            &self.control,
            &["--stats-out", self.stats_out.to_str().unwrap()],
            Stdio::null(),
        ));
    }

    fn status(&self) -> serde_json::Value {
        let out = rampart()
            .args(["cluster", "status", "--json", "--socket"])
            .arg(&self.control)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Polls `cluster status` until `ready` holds (at most 10 s).
    fn status_when(
        &self,
        what: &str,
        ready: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let s = self.status();
            if ready(&s) {
                return s;
            }
            assert!(Instant::now() < deadline, "{what}: {s:#}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn kill(&mut self) {
        let mut child = self.child.take().expect("running").take();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// Stops it with SIGTERM; the final stats, whose books must balance.
    fn stop(&mut self) -> serde_json::Value {
        let mut child = self.child.take().expect("running").take();
        ok(&["kill", "-TERM", &child.id().to_string()]);
        assert!(child.wait().unwrap().success());
        let last: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&self.stats_out).unwrap()).unwrap();
        for (t, c) in last["events"].as_object().unwrap() {
            let n = |k: &str| c[k].as_u64().unwrap();
            assert_eq!(
                n("generated"),
                n("rate_limited") + n("ring_overflow") + n("drained"),
                "{t}: {c}"
            );
        }
        last
    }
}

/// The idle connection's client: sends a line and reads it back each time
/// a line comes on stdin; exits at the end of stdin, printing "ok" per
/// answer.
const IDLE_CLIENT: &str = r#"
import socket, sys
s = socket.create_connection(("203.0.113.2", 8081), timeout=20)
for line in sys.stdin:
    s.sendall(line.encode())
    got = b""
    while len(got) < len(line):
        got += s.recv(100)
    print("ok" if got.decode() == line else "bad", flush=True)
s.close()
"#;

/// The idle connection: a client process kept open, asked to echo a line
/// now and then.
struct IdleConnection {
    child: KillOnDrop,
    stdin: std::process::ChildStdin,
    stdout: std::io::BufReader<std::process::ChildStdout>,
}

impl IdleConnection {
    fn open(topo: &Topology) -> IdleConnection {
        let mut child = KillOnDrop::new(
            Command::new("ip")
                .args(["netns", "exec", &topo.client, "python3", "-c", IDLE_CLIENT])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let stdin = child.child().stdin.take().unwrap();
        let stdout = std::io::BufReader::new(child.child().stdout.take().unwrap());
        IdleConnection {
            child,
            stdin,
            stdout,
        }
    }

    /// A line there and back (the client's 20 s timeout bounds it).
    fn echo(&mut self, line: &str) {
        use std::io::{BufRead, Write};
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
        let mut answer = String::new();
        self.stdout.read_line(&mut answer).unwrap();
        assert_eq!(answer.trim(), "ok", "the idle connection echoed {line:?}");
    }

    fn close(self) {
        let IdleConnection {
            mut child, stdin, ..
        } = self;
        drop(stdin);
        assert!(child.child().wait().unwrap().success());
    }
}

#[test]
fn a_failover_cuts_no_connection_and_logs_each_session_once() {
    let tag = format!("{}", std::process::id() % 10_000);
    let Some(topo) = Topology::create(&tag) else {
        eprintln!("SKIP: cannot create network namespaces here (needs root and ip netns)");
        return;
    };
    let base_port = 17_000 + (std::process::id() % 1000) as u16 * 4;
    let mut fw1 = Node::new(1, &topo.ports[0], &tag, base_port);
    let mut fw2 = Node::new(2, &topo.ports[1], &tag, base_port);

    // fw1 alone takes the active role after the hold time; fw2 joins as
    // standby and asks for the table.
    fw1.start();
    fw1.status_when("fw1 alone becomes active", |s| s["role"] == "active");
    fw2.start();
    fw2.status_when("fw2 joins as standby", |s| {
        s["role"] == "standby" && s["peer"]["active"] == true
    });
    fw1.status_when("fw1 hears fw2", |s| s["peer"]["heard"] == true);

    // One consumer of both nodes' event sockets, following restarts.
    let merged_out = fw1.dir.path("merged.jsonl");
    let mut merged = KillOnDrop::new(
        rampart()
            .args(["events", "--format", "json", "--socket"])
            .arg(&fw1.events)
            .arg("--socket")
            .arg(&fw2.events)
            .stdout(std::fs::File::create(&merged_out).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    // 24 MB served over HTTP; an echo service for the idle connection.
    let www = fw1.dir.path("www");
    std::fs::create_dir(&www).unwrap();
    let blob = www.join("blob");
    let mut random = std::fs::File::open("/dev/urandom").unwrap();
    std::io::copy(
        &mut std::io::Read::take(&mut random, 24 << 20),
        &mut std::fs::File::create(&blob).unwrap(),
    )
    .unwrap();
    let want = sha256(&blob);
    let _http = KillOnDrop::new(
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &topo.server,
                "python3",
                "-m",
                "http.server",
            ])
            .args([
                "8080",
                "--bind",
                "203.0.113.2",
                "--directory",
                www.to_str().unwrap(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_listening(&topo.server, 8080);
    let mut echo_server = KillOnDrop::new(
        Command::new("ip")
            .args(["netns", "exec", &topo.server, "python3", "-c", ECHO_SERVER])
            .spawn()
            .unwrap(),
    );
    wait_listening(&topo.server, 8081);
    let mut idle = IdleConnection::open(&topo);
    idle.echo("before the failover");

    let downloads = TempDir::new();
    let download = |name: &str| {
        let got = downloads.path(name);
        let curl = KillOnDrop::new(
            Command::new("ip")
                .args(["netns", "exec", &topo.client, "curl", "-sS"])
                .args(["--max-time", "90", "--limit-rate", "6M", "-o"])
                .arg(&got)
                .arg("http://203.0.113.2:8080/blob")
                .stdin(Stdio::null())
                .spawn()
                .unwrap(),
        );
        (curl, got)
    };

    // Mid-download, fw1 dies.
    let (mut curl, got) = download("got1");
    std::thread::sleep(Duration::from_millis(1500));
    fw2.status_when("fw2 holds both connections", |s| {
        s["sync"]["installed"].as_u64().unwrap() >= 2
    });
    fw1.kill();
    let s = fw2.status_when("fw2 takes over", |s| s["role"] == "active");
    assert_eq!(s["last_failover"]["to"], "active", "{s:#}");
    let status = curl.child().wait().unwrap();
    assert!(
        status.success(),
        "curl through the failover: {status}\n{:#}",
        fw2.status()
    );
    assert_eq!(
        sha256(&got),
        want,
        "the download is byte-exact across the failover"
    );
    idle.echo("after the failover");

    // fw1 restarts, rejoins as standby and gets the table by bulk sync.
    fw1.start();
    let s = fw1.status_when("fw1 rejoins and receives the table", |s| {
        s["role"] == "standby" && s["sync"]["installed"].as_u64().unwrap() >= 1
    });
    assert!(s["sync"]["bulk_requests"].as_u64().is_some(), "{s:#}");
    fw2.status_when("fw2 answered a bulk request", |s| {
        s["sync"]["bulk_pages"].as_u64().unwrap() >= 1
    });
    // A manual failover back to fw1 (run on fw2: it hands the role over).
    let out = rampart()
        .args(["cluster", "failover", "--socket"])
        .arg(&fw2.control)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    fw1.status_when("fw1 is active again", |s| s["role"] == "active");
    fw2.status_when("fw2 is standby again", |s| s["role"] == "standby");
    idle.echo("after the failover back");
    let (mut curl, got) = download("got2");
    assert!(curl.child().wait().unwrap().success());
    assert_eq!(sha256(&got), want, "a download through fw1 again");
    idle.close();
    assert!(
        echo_server.child().wait().unwrap().success(),
        "the echo server saw no reset"
    );

    // Every session closed (FIN): let the closes reach the standby, then
    // stop the standby first and the active after its hold time.
    std::thread::sleep(Duration::from_millis(1500));
    let s2 = fw2.stop();
    std::thread::sleep(Duration::from_millis(1000));
    let s1 = fw1.stop();
    assert!(
        s2["cluster"]["sync"]["standby_discarded"].as_u64().unwrap() > 0,
        "the standby forwarded nothing: {:#}",
        s2["cluster"]
    );
    assert_eq!(s1["cluster"]["role"], "active");
    std::thread::sleep(Duration::from_millis(1500));
    merged.child().kill().unwrap();
    merged.child().wait().unwrap();

    // Exactly one open and one close per connection in the merged stream.
    let records: Vec<serde_json::Value> = std::fs::read_to_string(&merged_out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut opens = std::collections::HashMap::<String, usize>::new();
    let mut closes = std::collections::HashMap::<String, usize>::new();
    for r in &records {
        let key = format!(
            "{}:{}->{}:{}",
            r["src_ip"].as_str().unwrap_or_default(),
            r["src_port"],
            r["dst_ip"].as_str().unwrap_or_default(),
            r["dst_port"]
        );
        match r["type"].as_str() {
            Some("session_open") => *opens.entry(key).or_default() += 1,
            Some("session_close") => {
                assert!(
                    r["event_id"]
                        .as_str()
                        .unwrap()
                        .starts_with(&format!("edge-{tag}:")),
                    "{r}"
                );
                *closes.entry(key).or_default() += 1
            }
            _ => {}
        }
    }
    assert_eq!(
        opens.len(),
        3,
        "two downloads and the idle connection: {opens:?}"
    );
    assert_eq!(opens, closes, "one open and one close per connection");
    assert!(opens.values().all(|&n| n == 1), "{opens:?}");
}
