//! Real hosts through Rampart: a client behind a router, and a server,
//! in network namespaces; the router and the server are joined to the
//! dataplane by veth pairs (`net_pcap` with `iface=`); real kernel stacks,
//! no static neighbour entries. Rampart is a bump in the wire: IPv4 needs
//! ARP through it, IPv6 needs neighbour discovery through it, a UDP client
//! learns of a closed port from the ICMP error that comes back through the
//! session, and downloads across the router's narrower link to the client
//! need path MTU discovery through it. hping3 sends attacks the screen
//! must name; curl downloads over HTTP must arrive byte-exact through a
//! reload; forged RSTs must not cut a connection.
//!
//! Needs root and `ip netns`; skips with a message where the machine cannot
//! create namespaces.

mod common;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use rampart_testkit::configs;

/// Namespaces and veths made by this test and removed when it ends.
struct Topology {
    client: String,
    router: String,
    server: String,
    /// The machine's ends of the veths Rampart runs on: towards the
    /// router (client side) and towards the server.
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

/// MTU of the router's link to the client, below the 1500 of every host:
/// a server's full-size packet needs path MTU discovery through Rampart.
const NARROW_MTU: &str = "1400";

impl Topology {
    /// client (198.51.100.1, 2001:db8:6::1; MTU 1500) -- router (its side
    /// MTU 1400) -- veth -- [rampart] -- veth -- server (203.0.113.2,
    /// 2001:db8:5::2). The router is 203.0.113.1 and 2001:db8:5::1 on the
    /// subnet across the bump; routes on both hosts, no static neighbours.
    fn create(tag: &str) -> Option<Topology> {
        let ns = |role: &str| format!("r{role}-{tag}");
        if !sh(&["ip", "netns", "add", &ns("c")]).status.success() {
            return None;
        }
        let t = Topology {
            client: ns("c"),
            router: ns("r"),
            server: ns("s"),
            links: [format!("rr{tag}"), format!("rs{tag}")],
        };
        ok(&["ip", "netns", "add", &t.router]);
        ok(&["ip", "netns", "add", &t.server]);
        let x = |ns: &str, a: &[&str]| {
            let mut v = vec!["ip", "netns", "exec", ns];
            v.extend_from_slice(a);
            ok(&v);
        };
        // A veth pair with `a` in namespace `na` and `b` in `nb`.
        let pair = |a: &str, na: Option<&str>, b: &str, nb: &str| {
            ok(&["ip", "link", "add", a, "type", "veth", "peer", "name", b]);
            if let Some(na) = na {
                ok(&["ip", "link", "set", a, "netns", na]);
            }
            ok(&["ip", "link", "set", b, "netns", nb]);
        };
        let up = |ns: &str, dev: &str, v4: &str, v6: &str| {
            x(ns, &["ip", "addr", "add", v4, "dev", dev]);
            x(ns, &["ip", "addr", "add", v6, "dev", dev, "nodad"]);
            // A veth hands TCP/UDP on with the checksum left to offload;
            // captured by net_pcap and sent on, such a frame would reach
            // the other host with a wrong checksum. Real NICs are not
            // veths: compute checksums in software here.
            x(ns, &["ethtool", "-K", dev, "tx", "off"]);
            x(ns, &["ip", "link", "set", dev, "up"]);
            x(ns, &["ip", "link", "set", "lo", "up"]);
        };
        let (cdev, rdev) = (format!("rc{tag}i"), format!("rc{tag}r"));
        pair(&cdev, Some(&t.client), &rdev, &t.router);
        up(&t.client, &cdev, "198.51.100.1/24", "2001:db8:6::1/64");
        up(&t.router, &rdev, "198.51.100.254/24", "2001:db8:6::fe/64");
        x(&t.router, &["ip", "link", "set", &rdev, "mtu", NARROW_MTU]);
        for (ns, link, v4, v6) in [
            (&t.router, &t.links[0], "203.0.113.1/24", "2001:db8:5::1/64"),
            (&t.server, &t.links[1], "203.0.113.2/24", "2001:db8:5::2/64"),
        ] {
            let inner = format!("{link}i");
            pair(link, None, &inner, ns);
            up(ns, &inner, v4, v6);
            ok(&[
                "sysctl",
                "-qw",
                &format!("net.ipv6.conf.{link}.disable_ipv6=1"),
            ]);
            // The machine's side belongs to Rampart: no ARP of its own.
            ok(&["ip", "link", "set", link, "arp", "off", "up"]);
        }
        for (key, value) in [
            ("net.ipv4.ip_forward", "1"),
            ("net.ipv6.conf.all.forwarding", "1"),
            // hping3's land attack spoofs the server's own address.
            ("net.ipv4.conf.all.rp_filter", "0"),
            (&format!("net.ipv4.conf.{rdev}.rp_filter"), "0"),
        ] {
            x(&t.router, &["sysctl", "-qw", &format!("{key}={value}")]);
        }
        x(
            &t.client,
            &["ip", "route", "add", "default", "via", "198.51.100.254"],
        );
        x(
            &t.client,
            &[
                "ip",
                "-6",
                "route",
                "add",
                "default",
                "via",
                "2001:db8:6::fe",
            ],
        );
        x(
            &t.server,
            &[
                "ip",
                "route",
                "add",
                "198.51.100.0/24",
                "via",
                "203.0.113.1",
            ],
        );
        x(
            &t.server,
            &[
                "ip",
                "-6",
                "route",
                "add",
                "2001:db8:6::/64",
                "via",
                "2001:db8:5::1",
            ],
        );
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
        for ns in [&self.client, &self.router, &self.server] {
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
                r#"{dataplane}
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
screen = "edge"
[zone.servers]
{edge}[application]
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
log = true
[default-policy]
then = "deny"
log = true
"#,
                dataplane =
                    configs::dataplane_with_sockets(&test_eal(&format!("real-hosts-{tag}")), &d),
                edge = configs::screen("edge", "land syn-fin tcp-no-flag fin-no-ack winnuke"),
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

/// `rampart events --format json` on the dataplane's event socket until
/// the dataplane stops; join the handle for its records.
fn json_consumer(dp: &Dataplane) -> std::thread::JoinHandle<Vec<serde_json::Value>> {
    let child = rampart()
        .args([
            "events",
            "--socket",
            dp.dir.path("events.sock").to_str().unwrap(),
        ])
        .args(["--format", "json", "--once"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::spawn(move || {
        let out = child.wait_with_output().unwrap();
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    })
}

#[test]
fn ping_ping6_a_closed_udp_port_a_denied_one_and_hping3_attacks_between_real_hosts() {
    let tag = format!("{}", std::process::id() % 100_000);
    let Some(topo) = Topology::create(&tag) else {
        eprintln!("SKIP: cannot create network namespaces here (needs root and ip netns)");
        return;
    };
    let dp = Dataplane::start(&topo, &tag);
    let control = dp.control.clone();
    let consumer = json_consumer(&dp);

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
    // Not permitted: one datagram, denied and logged.
    let deny = "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('203.0.113.2', 7777))";
    let out = topo.exec(&topo.client, &["python3", "-c", deny]);
    assert!(out.status.success());
    // One packet of each attack, by hping3 (it waits for answers that
    // never come; its exit status says nothing here).
    let attacks: [(&str, &[&str]); 5] = [
        ("land", &["-S", "-p", "80", "-a", "203.0.113.2"]),
        ("syn-fin", &["-S", "-F", "-p", "80"]),
        ("tcp-no-flag", &["-p", "80"]),
        ("fin-no-ack", &["-F", "-p", "80"]),
        ("winnuke", &["-U", "-p", "139"]),
    ];
    for (_, args) in attacks {
        let mut cmd = vec!["hping3", "-q", "-c", "1"];
        cmd.extend_from_slice(args);
        cmd.push("203.0.113.2");
        let out = topo.exec(&topo.client, &cmd);
        assert!(
            !String::from_utf8_lossy(&out.stderr).contains("command not found"),
            "hping3 runs (setup.sh installs it)"
        );
    }

    let s = stats_when(&control, |s| {
        let w = &s["workers"][0];
        w["related_icmp"].as_u64().unwrap() >= 2 && w["drops"]["screen"].as_u64().unwrap() >= 5
    });
    let w = &s["workers"][0];
    assert!(w["neighbor_discovery"].as_u64().unwrap() >= 2, "{w}");
    assert!(w["related_icmp"].as_u64().unwrap() >= 2, "{w}");
    assert_eq!(w["drops"]["screen"], 5, "one drop per attack packet: {w}");
    assert_eq!(w["drops"]["policy_deny"], 1, "{w}");
    let last = dp.stop();
    assert_eq!(last["events"]["policy_deny"]["generated"], 1);

    let records = consumer.join().unwrap();
    let mut screened: Vec<&str> = records
        .iter()
        .filter(|r| r["type"] == "screen_drop")
        .map(|r| r["screen"].as_str().unwrap())
        .collect();
    screened.sort();
    let mut want: Vec<&str> = attacks.iter().map(|(name, _)| *name).collect();
    want.sort();
    assert_eq!(screened, want, "one screen_drop record per attack, by name");
    let denies: Vec<&serde_json::Value> = records
        .iter()
        .filter(|r| r["type"] == "policy_deny")
        .collect();
    assert_eq!(denies.len(), 1, "{denies:?}");
    // Sessions name the application of the config that matched, the same
    // in create and close; an answered ping closes as "response received"
    // with IP bytes (84 for a default ping), as an SRX reports it.
    for r in records
        .iter()
        .filter(|r| r["type"] == "session_open" || r["type"] == "session_close")
    {
        let want = match (r["protocol"].as_u64(), r["dst_port"].as_u64()) {
            (Some(1), _) => "junos-ping",
            (Some(58), _) => "junos-pingv6",
            (Some(17), Some(9999)) => "probe",
            _ => continue,
        };
        assert_eq!(r["application"], want, "{r}");
    }
    let answered: Vec<&serde_json::Value> = records
        .iter()
        .filter(|r| r["type"] == "session_close" && r["protocol"] == 1)
        .collect();
    assert_eq!(answered.len(), 3, "one session per ping: {answered:?}");
    for r in answered {
        assert_eq!(r["reason"], "response-received", "{r}");
        assert_eq!(
            (&r["packets_client"], &r["bytes_client"], &r["bytes_server"]),
            (
                &serde_json::json!(1),
                &serde_json::json!(84),
                &serde_json::json!(84)
            ),
            "{r}"
        );
    }
    assert_eq!(
        (&denies[0]["src_ip"], &denies[0]["dst_port"]),
        (&serde_json::json!("198.51.100.1"), &serde_json::json!(7777))
    );
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
CLIENT = "198.51.100.1"
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
    wait_listening(&topo.server, 8080);

    // Over IPv4 with a reload in the middle (rate-limited so it lasts
    // about 3 s), then over IPv6; both across the narrower link to the
    // client.
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
            .args(["netns", "exec", &topo.server, "python3", "-c", ECHO_SERVER])
            .spawn()
            .unwrap(),
    );
    wait_listening(&topo.server, 8081);
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

/// On a live kernel interface, `net_af_packet` cannot keep the accounting
/// promise (kernel defragmentation, uncounted socket losses): Rampart says
/// so at start and names the driver to use.
#[test]
fn starting_on_af_packet_warns_that_it_cannot_count_its_losses() {
    let tag = format!("w{}", std::process::id() % 10_000);
    let (a, b) = (format!("rwa{tag}"), format!("rwb{tag}"));
    if !sh(&["ip", "link", "add", &a, "type", "veth", "peer", "name", &b])
        .status
        .success()
    {
        eprintln!("SKIP: cannot create a veth here (needs root)");
        return;
    }
    struct Link(String);
    impl Drop for Link {
        fn drop(&mut self) {
            let _ = sh(&["ip", "link", "del", &self.0]);
        }
    }
    let _link = Link(a.clone());
    ok(&["ip", "link", "set", &a, "up"]);
    ok(&["ip", "link", "set", &b, "up"]);
    let dir = TempDir::new();
    let d = dir.0.path().display();
    let config = dir.write(
        "af.toml",
        &format!(
            r#"{dataplane}
{interfaces}[default-policy]
then = "permit"
"#,
            dataplane = configs::dataplane_with_sockets(&test_eal(&format!("af-packet-{tag}")), &d),
            interfaces =
                configs::one_zone_pair(&format!("net_af_packet0,iface={a}"), "net_null1,size=64"),
        ),
    );
    let out = rampart()
        .args([
            "run",
            "--config",
            config.to_str().unwrap(),
            "--duration",
            "0.3",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("interface ge-0/0/0: net_af_packet cannot keep the accounting exact")
            && stderr.contains("use net_pcap with iface="),
        "{stderr}"
    );
}
