//! The pipeline inside the real dataplane: screen drops reported with Junos
//! names, sessions that carry both directions with one and two workers.

mod common;

use std::collections::BTreeMap;

use common::*;
use rampart_pipeline::traffic::{self, tcp, udp, v4};
use rampart_pipeline::wire::TcpFlags;

const DEMO: &str = include_str!("../src/demo.toml");

#[test]
fn screen_attacks_are_dropped_with_junos_names_in_run() {
    let dir = TempDir::new();
    let d = dir.0.path().to_str().unwrap();
    let config = dir.write("demo.toml", &DEMO.replace("@DIR@", d));
    let frames: Vec<Vec<u8>> = traffic::demo(0).into_iter().map(|f| f.bytes).collect();
    write_pcap(&dir.path("untrust-in.pcap"), &frames);
    write_pcap(&dir.path("trust-in.pcap"), &[]);
    let (records, summary) = run_with_json_consumer(&config, &dir.path("events.sock"));
    let mut by_option: BTreeMap<String, usize> = BTreeMap::new();
    for r in records.iter().filter(|r| r["type"] == "screen_drop") {
        assert_eq!(r["action"], "drop");
        assert_eq!(r["zone"], "untrust");
        *by_option
            .entry(r["screen"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    for option in [
        "land",
        "syn-fin",
        "tcp-no-flag",
        "fin-no-ack",
        "winnuke",
        "syn-frag",
        "ping-death",
        "source-route-option",
        "unknown-protocol",
        "port-scan",
        "syn-flood",
    ] {
        assert!(
            by_option.contains_key(option),
            "{option} missing from {by_option:?}\n{summary}"
        );
    }
    // Benign traffic of the same capture went through.
    let forwarded = read_pcap(&dir.path("trust-out.pcap"));
    assert!(
        forwarded.len() >= 200,
        "{} forwarded\n{summary}",
        forwarded.len()
    );
}

/// Both directions of each flow enter through one port, so their order is
/// fixed; sessions must carry the replies (with two workers too, where the
/// flow's owner is chosen by address hash), and replies to flows never
/// opened are denied.
fn both_directions(workers: u16) {
    let dir = TempDir::new();
    let d = dir.0.path().display();
    let mut frames = Vec::new();
    let mut permitted = 0;
    for i in 0..50u8 {
        let (c, s, sp) = (
            v4(192, 0, 2, i + 1),
            v4(10, 1, 0, 10 + i % 5),
            40000 + i as u16,
        );
        for (f, _) in [
            (tcp(c, s, sp, 80, TcpFlags::SYN, &[]), ()),
            (tcp(s, c, 80, sp, TcpFlags::SYN | TcpFlags::ACK, &[]), ()),
            (tcp(c, s, sp, 80, TcpFlags::ACK, &[]), ()),
            (
                tcp(c, s, sp, 80, TcpFlags::ACK | TcpFlags::PSH, &[1; 200]),
                (),
            ),
            (
                tcp(s, c, 80, sp, TcpFlags::ACK | TcpFlags::PSH, &[2; 1000]),
                (),
            ),
            (udp(c, v4(10, 1, 0, 53), 5000 + i as u16, 53, &[3; 30]), ()),
            (udp(v4(10, 1, 0, 53), c, 53, 5000 + i as u16, &[4; 90]), ()),
        ] {
            frames.push(f);
            permitted += 1;
        }
        // Replies for flows nobody opened.
        frames.push(tcp(
            v4(10, 9, 0, 1),
            c,
            80,
            50000 + i as u16,
            TcpFlags::SYN | TcpFlags::ACK,
            &[],
        ));
        frames.push(udp(v4(10, 9, 0, 1), c, 53, 6000 + i as u16, &[5; 20]));
    }
    let input = dir.path("in.pcap");
    write_pcap(&input, &frames);
    let empty = dir.path("empty.pcap");
    write_pcap(&empty, &[]);
    let config = dir.write(
        "sessions.toml",
        &format!(
            r#"[dataplane]
workers = {workers}
eal = {eal}
[events]
socket = "{d}/events.sock"
control_socket = "{d}/control.sock"
[[interface]]
name = "ge-0/0/0"
device = "net_pcap0,rx_pcap={input},tx_pcap={d}/out0.pcap"
zone = "untrust"
peer = "ge-0/0/1"
[[interface]]
name = "ge-0/0/1"
device = "net_pcap1,rx_pcap={empty},tx_pcap={d}/out1.pcap"
zone = "trust"
peer = "ge-0/0/0"
[zone.untrust]
[zone.trust]
[address-book]
servers = ["10.1.0.0/24"]
[[policy]]
name = "allow"
from-zone = "untrust"
to-zone = "trust"
source-address = ["any"]
destination-address = ["servers"]
application = ["junos-http", "junos-dns-udp"]
then = "permit"
log = ["session-init"]
[default-policy]
then = "deny"
log = true
"#,
            eal = test_eal(&format!("sess{workers}")),
            input = input.display(),
            empty = empty.display(),
        ),
    );
    let (records, summary) = run_with_json_consumer(&config, &dir.path("events.sock"));
    let out = read_pcap(&dir.path("out1.pcap"));
    assert_eq!(
        out.len(),
        permitted,
        "every packet of the permitted flows passed, both ways\n{summary}"
    );
    let opens = records
        .iter()
        .filter(|r| r["type"] == "session_open")
        .count();
    assert_eq!(
        opens, 100,
        "one session per flow (50 TCP + 50 UDP), replies reuse it\n{summary}"
    );
    let denies: Vec<_> = records
        .iter()
        .filter(|r| r["type"] == "policy_deny")
        .collect();
    assert_eq!(
        denies.len(),
        50,
        "orphan UDP replies hit the default policy\n{summary}"
    );
    assert!(
        summary.contains("tcp_syn_check=50"),
        "orphan SYN-ACKs fail the SYN check\n{summary}"
    );
}

#[test]
fn sessions_carry_both_directions_one_worker() {
    both_directions(1);
}

#[test]
fn sessions_carry_both_directions_two_workers() {
    both_directions(2);
}
