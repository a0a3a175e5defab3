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

#[test]
fn ping_ping6_and_a_closed_udp_port_across_rampart_between_real_hosts() {
    let tag = format!("{}", std::process::id() % 100_000);
    let Some(topo) = Topology::create(&tag) else {
        eprintln!("SKIP: cannot create network namespaces here (needs root and ip netns)");
        return;
    };
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
[[policy]]
name = "pings-and-probes"
from-zone = "clients"
to-zone = "servers"
source-address = ["any"]
destination-address = ["any"]
application = ["junos-ping", "junos-pingv6", "probe"]
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

    let deadline = Instant::now() + Duration::from_secs(5);
    let s = loop {
        let s = stats(&control);
        if s["workers"][0]["related_icmp"].as_u64().unwrap() >= 2 || Instant::now() > deadline {
            break s;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let w = &s["workers"][0];
    assert!(w["neighbor_discovery"].as_u64().unwrap() >= 2, "{w}");
    assert!(w["related_icmp"].as_u64().unwrap() >= 2, "{w}");
    assert!(w["drops"]["policy_deny"].as_u64().unwrap() >= 1, "{w}");
    let mut child = child.take();
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
    let last: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&stats_out).unwrap()).unwrap();
    for (t, c) in last["events"].as_object().unwrap() {
        let n = |k: &str| c[k].as_u64().unwrap();
        assert_eq!(
            n("generated"),
            n("rate_limited") + n("ring_overflow") + n("drained"),
            "{t}"
        );
    }
    assert!(last["events"]["policy_deny"]["generated"].as_u64().unwrap() >= 1);
}
