//! Real hosts through Rampart: two network namespaces, each joined to the
//! dataplane by a veth pair (`net_pcap` with `iface=`), real kernel stacks
//! on both sides, no static neighbour entries. Rampart is a bump in the
//! wire: IPv4 needs ARP through it, IPv6 needs neighbour discovery through
//! it, and a UDP client learns of a closed port from the ICMP error that
//! comes back through the session.
//!
//! Needs root and `ip netns`; skips with a message where the machine cannot
//! create namespaces.

mod common;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Namespaces and veths made by this test and removed when it ends.
struct Topology {
    client: String,
    server: String,
    links: [String; 2],
}

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

impl Topology {
    /// client (203.0.113.1, 2001:db8:5::1) -- veth -- [rampart] -- veth --
    /// server (203.0.113.2, 2001:db8:5::2), one subnet across the bump.
    fn create(tag: &str) -> Option<Topology> {
        let client = format!("rc-{tag}");
        let server = format!("rs-{tag}");
        if !sh(&["ip", "netns", "add", &client]).status.success() {
            return None;
        }
        let t = Topology {
            client: client.clone(),
            server: server.clone(),
            links: [format!("rc{tag}"), format!("rs{tag}")],
        };
        ok(&["ip", "netns", "add", &server]);
        for (ns, link, v4, v6) in [
            (&client, &t.links[0], "203.0.113.1/24", "2001:db8:5::1/64"),
            (&server, &t.links[1], "203.0.113.2/24", "2001:db8:5::2/64"),
        ] {
            let inner = format!("{link}i");
            ok(&[
                "ip", "link", "add", link, "type", "veth", "peer", "name", &inner,
            ]);
            ok(&["ip", "link", "set", &inner, "netns", ns]);
            let x = |a: &[&str]| {
                let mut v = vec!["ip", "netns", "exec", ns];
                v.extend_from_slice(a);
                ok(&v);
            };
            x(&["ip", "addr", "add", v4, "dev", &inner]);
            x(&["ip", "addr", "add", v6, "dev", &inner, "nodad"]);
            x(&["ip", "link", "set", &inner, "up"]);
            // A veth hands TCP/UDP on with the checksum left to offload;
            // captured by net_pcap and sent on, such a frame would reach
            // the other host with a wrong checksum. Real NICs are not
            // veths: compute checksums in software here.
            x(&["ethtool", "-K", &inner, "tx", "off"]);
            x(&["ip", "link", "set", "lo", "up"]);
            ok(&[
                "sysctl",
                "-qw",
                &format!("net.ipv6.conf.{link}.disable_ipv6=1"),
            ]);
            ok(&["ip", "link", "set", link, "up"]);
        }
        Some(t)
    }

    fn exec(&self, ns: &str, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", ns])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for l in &self.links {
            let _ = sh(&["ip", "link", "del", l]);
        }
        for ns in [&self.client, &self.server] {
            let _ = sh(&["ip", "netns", "del", ns]);
        }
    }
}

/// A dataplane between the two hosts of `topo`: pings, a UDP probe port
/// (9999) and two TCP services (8080 HTTP, 8081 echo) permitted from the
/// client's side, everything else denied and logged. A TCP connection that
/// a RST closed lingers 1 s (`tcp-closing`), so a wrongly closed session is
/// gone within the test.
struct Dataplane {
    dir: TempDir,
    control: std::path::PathBuf,
    stats_out: std::path::PathBuf,
    child: KillOnDrop,
}

impl Dataplane {
    fn start(topo: &Topology, tag: &str) -> Dataplane {
        let dir = TempDir::new();
        let d = dir.0.path().display();
        let config = dir.write(
            "rampart.toml",
            &format!(
                r#"[dataplane]
eal = {eal}
[events]
socket = "{d}/events.sock"
control_socket = "{d}/control.sock"
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
probe = {{ protocol = "udp", destination-port = "9999" }}
web8080 = {{ protocol = "tcp", destination-port = "8080" }}
echo8081 = {{ protocol = "tcp", destination-port = "8081" }}
[[policy]]
name = "clients-to-servers"
from-zone = "clients"
to-zone = "servers"
source-address = ["any"]
destination-address = ["any"]
application = ["junos-ping", "junos-pingv6", "probe", "web8080", "echo8081"]
then = "permit"
[default-policy]
then = "deny"
log = true
"#,
                eal = test_eal(&format!("real-hosts-{tag}")),
                c = topo.links[0],
                s = topo.links[1],
            ),
        );
        let control = dir.path("control.sock");
        let stats_out = dir.path("stats.json");
        let child = start_dataplane(
            &config,
            &control,
            &["--stats-out", stats_out.to_str().unwrap()],
            Stdio::null(),
        );
        Dataplane {
            dir,
            control,
            stats_out,
            child,
        }
    }

    /// Stops it with SIGTERM and checks the final books balance.
    fn stop(self) -> serde_json::Value {
        let mut child = self.child.take();
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(child.wait().unwrap().success());
        let last: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&self.stats_out).unwrap()).unwrap();
        for (t, c) in last["events"].as_object().unwrap() {
            let n = |k: &str| c[k].as_u64().unwrap();
            assert_eq!(
                n("generated"),
                n("rate_limited") + n("ring_overflow") + n("drained"),
                "{t}"
            );
        }
        last
    }
}

/// Polls stats until `ready` holds or 5 s pass; returns the last.
fn stats_when(
    control: &std::path::Path,
    ready: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let s = stats(control);
        if ready(&s) || Instant::now() > deadline {
            return s;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn ping_ping6_and_a_closed_udp_port_across_rampart_between_real_hosts() {
    let tag = format!("{}", std::process::id() % 100_000);
    let Some(topo) = Topology::create(&tag) else {
        eprintln!("SKIP: cannot create network namespaces here (needs root and ip netns)");
        return;
    };
    let dp = Dataplane::start(&topo, &tag);
    let control = dp.control.clone();

    // IPv4 (ARP passes as non-IP) and IPv6 (neighbour discovery passes as
    // ARP does), each resolving its neighbour through Rampart.
    for (family, addr) in [("-4", "203.0.113.2"), ("-6", "2001:db8:5::2")] {
        let out = topo.exec(
            &topo.client,
            &["ping", family, "-c", "3", "-i", "0.2", "-W", "2", addr],
        );
        assert!(
            out.status.success(),
            "ping {family} {addr} through Rampart: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            stats(&control)
        );
    }
    // A UDP probe to a closed port: the server's port unreachable comes
    // back through the probe's session and the client's socket sees it.
    let probe = r#"
import socket, sys
family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(family, socket.SOCK_DGRAM)
s.settimeout(3)
s.connect((sys.argv[1], 9999))
for _ in range(3):
    try:
        s.send(b"probe")
        s.recv(100)
    except ConnectionRefusedError:
        print("refused")
        sys.exit(0)
    except socket.timeout:
        pass
print("timeout")
sys.exit(1)
"#;
    for addr in ["203.0.113.2", "2001:db8:5::2"] {
        let out = topo.exec(&topo.client, &["python3", "-c", probe, addr]);
        assert!(
            out.status.success(),
            "the port unreachable for {addr} reached the client: {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            stats(&control)["workers"][0]
        );
    }
    // Not permitted: nothing gets through, and the deny is logged.
    let out = topo.exec(
        &topo.client,
        &[
            "python3",
            "-c",
            &probe.replace("9999", "7777"),
            "203.0.113.2",
        ],
    );
    assert!(!out.status.success(), "UDP to 7777 is denied");

    let s = stats_when(&control, |s| {
        s["workers"][0]["related_icmp"].as_u64().unwrap() >= 2
    });
    let w = &s["workers"][0];
    assert!(w["neighbor_discovery"].as_u64().unwrap() >= 2, "{w}");
    assert!(w["related_icmp"].as_u64().unwrap() >= 2, "{w}");
    assert!(w["drops"]["policy_deny"].as_u64().unwrap() >= 1, "{w}");
    let last = dp.stop();
    assert!(last["events"]["policy_deny"]["generated"].as_u64().unwrap() >= 1);
}

/// The client's half of the blind-reset check: a connection to the echo
/// service, the client's next sequence number read from the server's
/// acknowledgments (a raw socket sees the client's incoming segments), then
/// two forged RSTs from the client's address and port, as an off-path
/// attacker who knows the 5-tuple would send them: one far outside the
/// window, one inside it but not at the expected sequence number. After
/// each, longer than a RST-closed session lingers, the connection must
/// still carry data. Prints the outcome; exits 0 when both survive.
const BLIND_RESET: &str = r#"
import socket, struct, sys, time
SERVER = ("203.0.113.2", 8081)
CLIENT = "203.0.113.1"
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
raw.settimeout(3)
s = socket.create_connection(SERVER, timeout=5)
lport = s.getsockname()[1]
s.sendall(b"one")
assert s.recv(100) == b"one"
nxt = None
while nxt is None:
    pkt = raw.recv(4096)
    ihl = (pkt[0] & 15) * 4
    sport, dport, _seq, ack = struct.unpack("!HHII", pkt[ihl:ihl + 12])
    if (sport, dport) == (SERVER[1], lport):
        nxt = ack

def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xffff) + (total >> 16)
    return ~total & 0xffff

def rst(seq):
    hdr = struct.pack("!HHIIBBHHH", lport, SERVER[1], seq, 0, 5 << 4, 0x04, 0, 0, 0)
    pseudo = socket.inet_aton(CLIENT) + socket.inet_aton(SERVER[0]) + struct.pack("!BBH", 0, 6, len(hdr))
    hdr = hdr[:16] + struct.pack("!H", checksum(pseudo + hdr)) + hdr[18:]
    raw.sendto(hdr, (SERVER[0], 0))

for name, seq in [("out-of-window", (nxt + 2**31) % 2**32), ("in-window", (nxt + 1000) % 2**32)]:
    rst(seq)
    time.sleep(2.5)
    try:
        s.sendall(name.encode())
        got = s.recv(100)
    except OSError as e:
        print("%s reset cut the connection: %s" % (name, e))
        sys.exit(1)
    if got != name.encode():
        print("%s reset: echo %r" % (name, got))
        sys.exit(1)
print("survived")
"#;

/// The echo service: one connection, echoes until the client closes;
/// exits 1 if the connection is reset.
const ECHO: &str = r#"
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

fn sha256(path: &std::path::Path) -> String {
    let out = sh(&["sha256sum", path.to_str().unwrap()]);
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// Waits (bounded) until something in `ns` listens on TCP `port`.
fn wait_listening(topo: &Topology, ns: &str, port: u16) {
    for _ in 0..100 {
        let out = topo.exec(ns, &["ss", "-Hltn", &format!("sport = :{port}")]);
        if !out.stdout.is_empty() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listens on {port} in {ns}");
}

#[test]
fn tcp_downloads_stay_exact_through_a_reload_and_blind_resets_cut_nothing() {
    let tag = format!("t{}", std::process::id() % 10_000);
    let Some(topo) = Topology::create(&tag) else {
        eprintln!("SKIP: cannot create network namespaces here (needs root and ip netns)");
        return;
    };
    let dp = Dataplane::start(&topo, &tag);
    let control = dp.control.clone();

    // 24 MB of random bytes served over HTTP by the server host.
    let www = dp.dir.path("www");
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
            .args(["8080", "--bind", "::", "--directory", www.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_listening(&topo, &topo.server, 8080);

    // Over IPv4 with a reload in the middle (rate-limited so it lasts
    // about 3 s), then over IPv6.
    for (url, reload) in [
        ("http://203.0.113.2:8080/blob", true),
        ("http://[2001:db8:5::2]:8080/blob", false),
    ] {
        let got = dp.dir.path("got");
        let _ = std::fs::remove_file(&got);
        let mut curl = Command::new("ip");
        curl.args(["netns", "exec", &topo.client, "curl", "-sS", "-g"])
            .args(["--max-time", "60", "-o", got.to_str().unwrap(), url])
            .stdin(Stdio::null());
        if reload {
            curl.args(["--limit-rate", "8M"]);
        }
        let mut curl = KillOnDrop::new(curl.spawn().unwrap());
        if reload {
            std::thread::sleep(Duration::from_secs(1));
            let r = rampart()
                .args(["reload", "--socket", control.to_str().unwrap()])
                .output()
                .unwrap();
            assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        }
        let status = curl.child().wait().unwrap();
        assert!(
            status.success(),
            "curl {url}: {status}\n{}",
            stats(&control)["workers"][0]
        );
        assert_eq!(sha256(&got), want, "{url} is byte-exact");
    }
    assert_eq!(
        stats(&control)["generation"],
        2,
        "the reload ran mid-download"
    );

    // Forged resets against an open connection.
    let mut echo = KillOnDrop::new(
        Command::new("ip")
            .args(["netns", "exec", &topo.server, "python3", "-c", ECHO])
            .spawn()
            .unwrap(),
    );
    wait_listening(&topo, &topo.server, 8081);
    let out = topo.exec(&topo.client, &["python3", "-c", BLIND_RESET]);
    assert!(
        out.status.success(),
        "{}{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        stats(&control)["workers"][0]
    );
    assert!(
        echo.child().wait().unwrap().success(),
        "the server saw no reset"
    );
    let s = stats_when(&control, |s| {
        s["workers"][0]["tcp_rst_unconfirmed"].as_u64().unwrap() >= 1
    });
    let w = &s["workers"][0];
    assert!(
        w["drops"]["tcp_out_of_window"].as_u64().unwrap() >= 1,
        "{w}"
    );
    assert!(w["tcp_rst_unconfirmed"].as_u64().unwrap() >= 1, "{w}");
    dp.stop();
}
