//! End-to-end forwarding on real DPDK vdevs: the `rampart` binary with
//! net_pcap and net_null ports, one and two workers.

mod common;

use common::*;
use rampart_testkit::configs;
use rampart_testkit::traffic;

fn pcap_pair_config(dir: &TempDir, test: &str, workers: u16, input: &str) -> std::path::PathBuf {
    let empty = dir.path("empty.pcap");
    write_pcap(&empty, &[]);
    let interfaces = {
        let (untrust, trust) = configs::pcap_devices(
            input,
            empty.display(),
            format!("{}/out", dir.0.path().display()),
        );
        configs::untrust_trust_pair(&untrust, &trust)
    };
    let text = format!(
        r#"
[dataplane]
workers = {workers}
eal = {eal}

{events}
{interfaces}
{zones}
[default-policy]
then = "permit"

[flow]
tcp-syn-check = false
"#,
        eal = test_eal(test),
        events = configs::event_sockets(dir.0.path().display()),
        zones = configs::UNTRUST_AND_TRUST_ZONES,
    );
    dir.write("rampart.toml", &text)
}

fn forwards_capture_byte_for_byte(workers: u16) {
    let dir = TempDir::new();
    let frames: Vec<Vec<u8>> = traffic::mixed(42, 3000, 0)
        .into_iter()
        .map(|f| f.bytes)
        .collect();
    let input = dir.path("in.pcap");
    write_pcap(&input, &frames);
    let config = pcap_pair_config(
        &dir,
        &format!("fwd{workers}"),
        workers,
        &input.display().to_string(),
    );
    let out = run_ok(&["--config", config.to_str().unwrap(), "--idle-exit", "1"]);
    let forwarded = read_pcap(&dir.path("out1.pcap"));
    assert_eq!(
        forwarded.len(),
        frames.len(),
        "every frame leaves the peer\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    if workers == 1 {
        for (i, (got, want)) in forwarded.iter().zip(&frames).enumerate() {
            assert_eq!(got, want, "frame {i} differs");
        }
    } else {
        // Flows spread over workers, so frames of different flows may
        // interleave differently; the bytes of every frame are unchanged.
        let mut got = forwarded.clone();
        let mut want = frames.clone();
        got.sort();
        want.sort();
        assert!(got == want, "the same frames, byte for byte");
    }
    assert!(
        read_pcap(&dir.path("out0.pcap")).is_empty(),
        "nothing goes back out the ingress"
    );
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.contains("ge-0/0/0"),
        "summary names the ports:\n{summary}"
    );
}

#[test]
fn pcap_pair_one_worker() {
    forwards_capture_byte_for_byte(1);
}

#[test]
fn pcap_pair_two_workers() {
    forwards_capture_byte_for_byte(2);
}

/// Two workers on multi-queue ports: net_null supports several queues and
/// RSS configuration, so each worker polls its own queue of each port.
#[test]
fn null_ports_two_workers_two_queues() {
    let dir = TempDir::new();
    let text = format!(
        r#"
[dataplane]
workers = 2
eal = {eal}

{events}
[[interface]]
name = "xe-0/0/0"
device = "net_null0,size=64"
zone = "a"
peer = "xe-0/0/1"

[[interface]]
name = "xe-0/0/1"
device = "net_null1,size=64"
zone = "b"
peer = "xe-0/0/0"

[zone.a]
[zone.b]

[default-policy]
then = "permit"
"#,
        eal = test_eal("null2"),
        events = configs::event_sockets(dir.0.path().display()),
    );
    let config = dir.write("null.toml", &text);
    let out = run_ok(&["--config", config.to_str().unwrap(), "--duration", "1"]);
    let summary = String::from_utf8_lossy(&out.stdout);
    let workers: Vec<Vec<u64>> = summary
        .lines()
        .skip_while(|l| !l.starts_with("worker"))
        .skip(1)
        .take_while(|l| {
            l.split_whitespace()
                .next()
                .is_some_and(|t| t.parse::<u64>().is_ok())
        })
        .map(|l| {
            l.split_whitespace()
                .filter_map(|w| w.parse().ok())
                .collect()
        })
        .collect();
    assert_eq!(workers.len(), 2, "two workers in the summary:\n{summary}");
    // columns: worker lcore rx tx dropped tx_full handoff sessions busy cyc/pkt
    for w in &workers {
        assert!(
            w[2] > 0,
            "every worker received on its own queues:\n{summary}"
        );
        assert_eq!(
            w[6], 0,
            "symmetric RSS: no software handoff needed:\n{summary}"
        );
    }
    let sum = |col: usize| workers.iter().map(|w| w[col]).sum::<u64>();
    assert_eq!(
        sum(2),
        sum(3) + sum(4) + sum(5),
        "rx == tx + dropped + tx_full:\n{summary}"
    );
}

/// SIGTERM stops the dataplane cleanly: exit 0 with the summary, and the
/// counters balance (nothing received is unaccounted for).
#[test]
fn sigterm_stops_cleanly_with_a_summary() {
    let dir = TempDir::new();
    let config = null_pair_config(&dir, "sigterm", &test_eal("sigterm"));
    let child = rampart()
        .args(["run", "--config", config.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the control socket answers, then let it forward a moment.
    let control = dir.path("control.sock");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::os::unix::net::UnixStream::connect(&control).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the dataplane did not come up"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    let stats = rampart()
        .args(["stats", "--socket", control.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    assert!(
        stats.status.success(),
        "{}",
        String::from_utf8_lossy(&stats.stderr)
    );
    let stats: serde_json::Value = serde_json::from_slice(&stats.stdout).unwrap();
    assert!(
        stats["workers"][0]["rx"].as_u64().unwrap() > 0,
        "forwarding while running: {stats}"
    );
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "exit 0 on SIGTERM: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(summary.contains("stopped (signal)"), "{summary}");
    let worker: Vec<u64> = summary
        .lines()
        .skip_while(|l| !l.starts_with("worker"))
        .nth(1)
        .unwrap()
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    // worker lcore rx tx dropped tx_full ...
    assert_eq!(
        worker[2],
        worker[3] + worker[4] + worker[5],
        "rx == tx + dropped + tx_full: {summary}"
    );
    assert!(!control.exists(), "the control socket is removed on exit");
}

/// IPv6 neighbour discovery crosses a deny-all dataplane like ARP does
/// (counted, no session, no event), while other ICMPv6 is denied.
#[test]
fn ipv6_neighbour_discovery_crosses_a_deny_all_dataplane() {
    let dir = TempDir::new();
    let v6 = traffic::v6;
    let nd = vec![
        traffic::neighbor_solicitation(v6("fe80::1"), v6("ff02::1:ff00:2"), v6("fe80::2")),
        traffic::router_solicitation(v6("fe80::1")),
        traffic::icmpv6_link((v6("fe80::1"), v6("ff02::16")), 1, (143, 0), [0; 4], &[]),
    ];
    let mut frames = nd.clone();
    frames.push(traffic::ping(
        traffic::v6("2001:db8::1"),
        traffic::v6("2001:db8:1::1"),
        1,
        1,
    ));
    let input = dir.path("in.pcap");
    write_pcap(&input, &frames);
    let config = pcap_pair_config(&dir, "ipv6-nd", 1, input.to_str().unwrap());
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("then = \"permit\"", "then = \"deny\"\nlog = true");
    std::fs::write(&config, text).unwrap();
    let stats_out = dir.path("stats.json");
    run_ok(&[
        "--config",
        config.to_str().unwrap(),
        "--idle-exit",
        "0.5",
        "--stats-out",
        stats_out.to_str().unwrap(),
    ]);
    assert_eq!(read_pcap(&dir.path("out1.pcap")), nd, "ND forwarded as is");
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&stats_out).unwrap()).unwrap();
    let w = &s["workers"][0];
    assert_eq!(w["neighbor_discovery"], 3, "{w}");
    assert_eq!(w["sessions_created"], 0);
    assert_eq!(w["drops"]["policy_deny"], 1, "the echo request is denied");
    assert_eq!(s["events"]["policy_deny"]["generated"], 1);
}

/// UDP datagrams whose last fragment comes before the first (reordered on
/// the path, IPv4 and IPv6): each is held until its first fragment has
/// opened the session, then forwarded after it, on two workers; a fragment
/// whose first never comes is dropped and counted. `trace` tells the same.
#[test]
fn reordered_fragments_are_held_until_their_first_then_forwarded() {
    use rampart_pipeline::flow::proto;
    use rampart_pipeline::wire::build::{packet_vec, Ethernet, Fragment, Ip, L4};
    use rampart_testkit::traffic::{v4, v6};
    let frag = |src, dst, id: u32, offset: u16, l4: L4<'_>, len: usize| {
        let mut ip = Ip::new(src, dst);
        ip.fragment = Some(Fragment {
            offset,
            more: offset == 0,
            id,
        });
        packet_vec(&Ethernet::DEFAULT, &ip, &l4, &vec![id as u8; len]).unwrap()
    };
    let mut frames = Vec::new();
    let mut want = Vec::new();
    for id in 1..=6u32 {
        let (c, s) = if id % 2 == 0 {
            (v4(192, 0, 2, id as u8), v4(198, 51, 100, 53))
        } else {
            (v6(&format!("2001:db8:ff::{id}")), v6("2001:db8:1::53"))
        };
        let first = frag(c, s, id, 0, L4::udp(5000 + id as u16, 53), 1000);
        let last = frag(
            c,
            s,
            id,
            1008,
            L4::Raw {
                protocol: proto::UDP,
            },
            300,
        );
        frames.push(last.clone());
        frames.push(first.clone());
        want.push(first);
        want.push(last);
    }
    // The first fragment of this one never comes.
    let c = v4(192, 0, 2, 99);
    frames.push(frag(
        c,
        v4(198, 51, 100, 53),
        99,
        1008,
        L4::Raw {
            protocol: proto::UDP,
        },
        300,
    ));

    let dir = TempDir::new();
    let input = dir.path("in.pcap");
    write_pcap(&input, &frames);
    let config = pcap_pair_config(&dir, "reorder", 2, &input.display().to_string());
    let stats_out = dir.path("stats.json");
    let out = run_ok(&[
        "--config",
        config.to_str().unwrap(),
        "--idle-exit",
        "1",
        "--stats-out",
        stats_out.to_str().unwrap(),
    ]);
    let forwarded = read_pcap(&dir.path("out1.pcap"));
    // Each datagram's fragments leave first fragment first; datagrams on
    // different workers may interleave.
    for pair in want.chunks(2) {
        let at = |f: &Vec<u8>| forwarded.iter().position(|g| g == f);
        let (first, last) = (at(&pair[0]), at(&pair[1]));
        assert!(
            first.is_some() && last.is_some() && first < last,
            "{first:?} {last:?}\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    assert_eq!(forwarded.len(), want.len());
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&stats_out).unwrap()).unwrap();
    let sum = |f: &dyn Fn(&serde_json::Value) -> u64| -> u64 {
        stats["workers"].as_array().unwrap().iter().map(f).sum()
    };
    assert_eq!(sum(&|w| w["fragments_held"].as_u64().unwrap()), 7);
    assert_eq!(
        sum(&|w| w["drops"]["fragment_timeout"].as_u64().unwrap()),
        1
    );

    let trace = rampart()
        .args(["trace", "--config", config.to_str().unwrap()])
        .args(["--pcap", input.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    assert!(trace.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8(trace.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let of = |packet: u64| -> Vec<(String, String)> {
        lines
            .iter()
            .filter(|l| l["packet"] == packet)
            .map(|l| {
                (
                    l["verdict"].as_str().unwrap().into(),
                    l["reason"].as_str().unwrap().into(),
                )
            })
            .collect()
    };
    let s = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(of(0), [s("hold", "fragment-held"), s("forward", "session")]);
    assert_eq!(of(1), [s("forward", "policy-permit")]);
    assert_eq!(
        of(12),
        [s("hold", "fragment-held"), s("drop", "fragment-timeout")]
    );
}

/// A 9000-byte IP packet (9014-byte frame) on a jumbo-MTU config arrives
/// in one buffer and is forwarded byte for byte and counted, as `trace`
/// forwards it. With the default MTU (1500) it arrives as a chain of 2 KiB
/// mbufs (decided from a copy of the whole frame) and is dropped at the
/// egress port, counted as `mtu_exceeded`, as `trace` decides it; a
/// 16,014-byte frame is dropped on both. Before, both left a port whose
/// MTU is 1500, uncounted.
#[test]
fn jumbo_frames_are_forwarded_within_the_mtu_and_dropped_beyond_it() {
    use rampart_testkit::traffic::{udp, v4};
    let udp_of = |payload: usize| {
        udp(
            v4(192, 0, 2, 1),
            v4(198, 51, 100, 9),
            5000,
            5001,
            &vec![0x6a; payload],
        )
    };
    let (small, jumbo, huge) = (udp_of(100), udp_of(8972), udp_of(15972));
    assert_eq!((jumbo.len(), huge.len()), (9014, 16014));
    let frames = vec![small.clone(), jumbo.clone(), huge];
    for (tag, mtu, chained, leave) in [
        ("jumbo-chain", None, 2, vec![small.clone()]),
        (
            "jumbo-mtu",
            Some(9000),
            1,
            vec![small.clone(), jumbo.clone()],
        ),
    ] {
        let dir = TempDir::new();
        let input = dir.path("in.pcap");
        write_pcap(&input, &frames);
        let config = pcap_pair_config(&dir, tag, 1, &input.display().to_string());
        if let Some(mtu) = mtu {
            let text = std::fs::read_to_string(&config)
                .unwrap()
                .replace(
                    "zone = \"untrust\"",
                    &format!("zone = \"untrust\"\nmtu = {mtu}"),
                )
                .replace(
                    "zone = \"trust\"",
                    &format!("zone = \"trust\"\nmtu = {mtu}"),
                );
            std::fs::write(&config, text).unwrap();
        }
        let stats_out = dir.path("stats.json");
        let out = run_ok(&[
            "--config",
            config.to_str().unwrap(),
            "--idle-exit",
            "1",
            "--stats-out",
            stats_out.to_str().unwrap(),
        ]);
        let forwarded = read_pcap(&dir.path("out1.pcap"));
        assert_eq!(
            forwarded,
            leave,
            "{tag}: what fits the MTU leaves unchanged\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let stats: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&stats_out).unwrap()).unwrap();
        let w = &stats["workers"][0];
        assert_eq!(w["multi_segment"], chained, "{tag}: {w}");
        assert_eq!(w["drops"]["malformed"], 0, "{tag}: {w}");
        assert_eq!(w["tx"], leave.len(), "{tag}: {w}");
        assert_eq!(w["drops"]["mtu_exceeded"], 3 - leave.len(), "{tag}: {w}");

        let trace = rampart()
            .args(["trace", "--config", config.to_str().unwrap()])
            .args(["--pcap", input.to_str().unwrap(), "--json"])
            .output()
            .unwrap();
        let lines: Vec<serde_json::Value> = String::from_utf8(trace.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let verdicts: Vec<(&str, &str)> = lines
            .iter()
            .map(|l| {
                (
                    l["verdict"].as_str().unwrap(),
                    l["reason"].as_str().unwrap_or(""),
                )
            })
            .collect();
        assert_eq!(verdicts.len(), 3, "{lines:?}");
        for (i, (verdict, reason)) in verdicts.iter().enumerate() {
            if i < leave.len() {
                assert_eq!(*verdict, "forward", "{tag} {i}: {lines:?}");
            } else {
                assert_eq!((*verdict, *reason), ("drop", "mtu-exceeded"), "{tag} {i}");
            }
        }
    }
}
