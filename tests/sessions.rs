//! `rampart sessions` and `rampart sessions clear` against a running
//! dataplane on `net_pcap` vdevs: the sessions a capture opens are listed
//! with their fields, filtered and paged; a clear ends exactly the matching
//! ones, each with a `cli` close record, counted in stats.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use rampart_pipeline::wire::TcpFlags;
use rampart_testkit::configs;
use rampart_testkit::traffic::{tcp, udp, v4};
use serde_json::Value;

/// Web flows (TCP to 192.0.2.80:80) and DNS flows (UDP to 192.0.2.53:53)
/// from 198.51.100.0/24, one session each.
const WEB: u16 = 3;
const DNS: u16 = 1500;

/// Long timeouts: the sessions stay while the test looks at them.
const FLOW: &str = r#"
[flow]
session-capacity = 4096
[flow.timeouts]
tcp-initial = 600
udp = 600
"#;

/// The zones, `allow-web` (logged at init and close) and `allow-dns`
/// (logged at close).
fn policies() -> String {
    let web = configs::policy("allow-web", ("untrust", "trust"))
        .application("junos-http")
        .then("permit")
        .log(&["session-init", "session-close"]);
    let dns = configs::policy("allow-dns", ("untrust", "trust"))
        .application("junos-dns-udp")
        .then("permit")
        .log(&["session-close"]);
    format!("\n{}{web}{dns}", configs::UNTRUST_AND_TRUST_ZONES)
}

fn frames() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for i in 0..WEB {
        let client = v4(198, 51, 100, 10 + i as u8);
        out.push(tcp(
            client,
            v4(192, 0, 2, 80),
            40000 + i,
            80,
            TcpFlags::SYN,
            &[],
        ));
    }
    for i in 0..DNS {
        let client = v4(198, 51, 100, (i % 200) as u8 + 1);
        out.push(udp(client, v4(192, 0, 2, 53), 1024 + i, 53, b"query"));
    }
    out
}

fn sessions(control: &Path, args: &[&str]) -> Vec<Value> {
    let out = rampart()
        .args(["sessions", "--socket", control.to_str().unwrap(), "--json"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn total_active(control: &Path) -> u64 {
    let s = stats(control);
    s["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["sessions_active"].as_u64().unwrap())
        .sum()
}

#[test]
fn sessions_are_listed_filtered_paged_and_cleared_with_a_cli_close_record() {
    let dir = TempDir::new();
    // Two workers (their lcores on the machine's two CPUs): flows spread
    // over both tables, and a listing pages across them.
    let (config, events) = pcap_pair_config(
        &dir,
        "sessions",
        &frames(),
        "workers = 2",
        &format!("{FLOW}{}", policies()),
    );
    let text = std::fs::read_to_string(&config).unwrap();
    let lcores = r#""lib.eal:error", "--lcores", "0@0,1@1,2@0"]"#;
    std::fs::write(&config, text.replace(r#""lib.eal:error"]"#, lcores)).unwrap();
    let control = dir.path("sessions-control.sock");
    // Every close record, and two consumers that filter: the web
    // server's closes, and one client's in Junos form.
    let (_all, closes) = consumer(&events, &["--types", "session_close"]);
    let (_web, web_closes) = consumer(
        &events,
        &[
            "--types",
            "session_close",
            "--destination-prefix",
            "192.0.2.80/32",
        ],
    );
    let junos_args = [
        "--type",
        "session_close",
        "--source-prefix",
        "198.51.100.1",
        "--action",
        "permit",
        "--format",
        "junos",
    ];
    let (_one, one_client_lines) = consumer(&events, &junos_args);
    let mut dataplane = start_dataplane(
        &config,
        &control,
        &["--wait-consumer", "20"],
        Stdio::inherit(),
    );
    let all = u64::from(WEB + DNS);
    let deadline = Instant::now() + Duration::from_secs(30);
    while total_active(&control) < all {
        assert!(
            Instant::now() < deadline,
            "the capture opens {all} sessions"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // Every session, over pages of the control socket and of the workers.
    let listed = sessions(&control, &[]);
    assert_eq!(listed.len() as u64, all);
    let mut ids: Vec<u64> = listed
        .iter()
        .map(|s| s["session_id"].as_u64().unwrap())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len() as u64, all, "each session once");
    for w in [0, 1] {
        assert!(
            listed.iter().any(|s| s["worker"] == w),
            "worker {w} holds sessions"
        );
    }

    // A web session's fields.
    let web = sessions(&control, &["--policy", "allow-web"]);
    assert_eq!(web.len(), WEB as usize);
    let s = web
        .iter()
        .find(|s| s["in"]["source"] == "198.51.100.10")
        .expect("the first web client");
    assert_eq!(s["protocol"], "tcp");
    assert_eq!(s["policy"], "allow-web");
    assert_eq!(s["generation"], 1);
    assert_eq!(s["application"], "junos-http");
    assert_eq!(
        (s["from_zone"].as_str(), s["to_zone"].as_str()),
        (Some("untrust"), Some("trust"))
    );
    assert_eq!(s["state"], "syn-sent");
    assert!(s["closed"].is_null());
    let wing_in = &s["in"];
    assert_eq!(wing_in["destination"], "192.0.2.80");
    assert_eq!(
        (
            wing_in["source_port"].as_u64(),
            wing_in["destination_port"].as_u64()
        ),
        (Some(40000), Some(80))
    );
    assert_eq!(wing_in["interface"], "ge-0/0/0");
    assert_eq!(wing_in["packets"], 1);
    assert_eq!(wing_in["bytes"], 40, "the SYN's IP length");
    let wing_out = &s["out"];
    assert_eq!(wing_out["source"], "192.0.2.80");
    assert_eq!(wing_out["destination"], "198.51.100.10");
    assert_eq!(wing_out["interface"], "ge-0/0/1");
    assert_eq!(wing_out["packets"], 0);
    let timeout = s["timeout_s"].as_f64().unwrap();
    assert!(
        timeout > 500.0 && timeout <= 600.0,
        "tcp-initial less the idle time: {timeout}"
    );
    assert!(s["age_s"].as_f64().unwrap() >= s["idle_s"].as_f64().unwrap());

    // Filters: each passes exactly what it names.
    for (args, want) in [
        (vec!["--destination-prefix", "192.0.2.53/32"], DNS as usize),
        (vec!["--destination-prefix", "192.0.2.0/24"], all as usize),
        (
            vec!["--source-prefix", "198.51.100.10"],
            1 + (DNS as usize).div_ceil(200),
        ),
        (vec!["--port", "80"], WEB as usize),
        (vec!["--port", "40001"], 1),
        (vec!["--protocol", "udp"], DNS as usize),
        (vec!["--application", "junos-dns-udp"], DNS as usize),
        (vec!["--zone", "trust"], all as usize),
        (vec!["--interface", "ge-0/0/1"], all as usize),
        (vec!["--policy", "nonesuch"], 0),
        (vec!["--limit", "7"], 7),
        (vec!["--protocol", "udp", "--limit", "1200"], 1200),
    ] {
        assert_eq!(sessions(&control, &args).len(), want, "{args:?}");
    }

    // The operator's table.
    let out = rampart()
        .args([
            "sessions",
            "--socket",
            control.to_str().unwrap(),
            "--port",
            "40000",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("Policy name: allow-web"), "{text}");
    assert!(
        text.contains("In: 198.51.100.10/40000 --> 192.0.2.80/80;tcp, If: ge-0/0/0, Pkts: 1"),
        "{text}"
    );
    assert!(
        text.contains("Out: 192.0.2.80/80 --> 198.51.100.10/40000;tcp, If: ge-0/0/1"),
        "{text}"
    );
    assert!(text.ends_with("Total sessions: 1\n"), "{text}");

    // Bad flags say which flag; --all wants confirmation.
    let bad = rampart()
        .args([
            "sessions",
            "--socket",
            control.to_str().unwrap(),
            "--port",
            "http",
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("--port"),
        "{bad:?}"
    );
    let unconfirmed = rampart()
        .args([
            "sessions",
            "clear",
            "--socket",
            control.to_str().unwrap(),
            "--all",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!unconfirmed.status.success());
    assert!(String::from_utf8_lossy(&unconfirmed.stderr).contains("--yes"));
    assert_eq!(total_active(&control), all, "nothing cleared");

    // Clear the web sessions and one DNS client's.
    let clear = |args: &[&str]| {
        let out = rampart()
            .args(["sessions", "clear", "--socket", control.to_str().unwrap()])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let said = clear(&["--policy", "allow-web"]);
    assert!(
        said.starts_with(&format!("{WEB} session(s) cleared")),
        "{said}"
    );
    let said = clear(&["--source-prefix", "198.51.100.1/32", "--port", "53"]);
    let one_client = (DNS as usize).div_ceil(200);
    assert!(
        said.starts_with(&format!("{one_client} session(s) cleared")),
        "{said}"
    );
    let left = sessions(&control, &[]);
    assert_eq!(left.len(), all as usize - WEB as usize - one_client);
    assert!(left
        .iter()
        .all(|s| s["policy"] == "allow-dns" && s["in"]["source"] != "198.51.100.1"));
    let cleared: u64 = stats(&control)["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["sessions_cleared"].as_u64().unwrap())
        .sum();
    assert_eq!(cleared, WEB as u64 + one_client as u64);

    // The rest at shutdown: their close records say so.
    Command::new("kill")
        .args(["-TERM", &dataplane.id().to_string()])
        .status()
        .unwrap();
    let status = dataplane.child().wait().unwrap();
    assert!(status.success());
    let closes: Vec<Value> = closes
        .join()
        .unwrap()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let by_reason = |r: &str| closes.iter().filter(|c| c["reason"] == r).count();
    assert_eq!(by_reason("cli"), WEB as usize + one_client, "{closes:?}");
    assert_eq!(by_reason("shutdown"), left.len());
    let web_close = closes
        .iter()
        .find(|c| c["reason"] == "cli" && c["policy"] == "allow-web")
        .expect("a web session's close");
    assert_eq!(web_close["dst_port"], 80);

    // The filtered consumers got exactly theirs.
    let web_closes: Vec<String> = web_closes
        .join()
        .unwrap()
        .into_iter()
        .filter(|l| !l.contains("\"type\":\"hello\"") && !l.contains("\"type\":\"names\""))
        .collect();
    assert_eq!(web_closes.len(), WEB as usize, "{web_closes:?}");
    assert!(
        web_closes
            .iter()
            .all(|l| l.contains("\"dst_ip\":\"192.0.2.80\"")),
        "{web_closes:?}"
    );
    let lines = one_client_lines.join().unwrap();
    assert_eq!(lines.len(), one_client, "{lines:?}");
    for l in &lines {
        assert!(
            l.contains("RT_FLOW_SESSION_CLOSE") && l.contains("CLI"),
            "{l}"
        );
        assert!(l.contains("198.51.100.1/"), "{l}");
    }
}

/// `rampart events ARGS` on `socket` until the dataplane stops; its lines.
fn consumer(socket: &Path, args: &[&str]) -> (KillOnDrop, std::thread::JoinHandle<Vec<String>>) {
    let mut child = KillOnDrop::new(
        rampart()
            .args(["events", "--socket", socket.to_str().unwrap(), "--once"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = child.child().stdout.take().unwrap();
    let lines = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .collect()
    });
    (child, lines)
}

/// After a clear, the flow's next packets are mid-stream packets: with
/// `tcp-syn-check` they are dropped and counted. The client's SYN opens
/// the session once (a capture read once); the server's ACKs replay
/// without end from the other side, forwarded as the session's until it
/// is cleared, dropped by the SYN check after.
#[test]
fn a_cleared_flows_later_packets_meet_the_syn_check() {
    let dir = TempDir::new();
    let (client, server) = (v4(198, 51, 100, 7), v4(192, 0, 2, 80));
    let syn = dir.path("syn.pcap");
    write_pcap(&syn, &[tcp(client, server, 40000, 80, TcpFlags::SYN, &[])]);
    let acks = dir.path("acks.pcap");
    write_pcap(
        &acks,
        &[tcp(server, client, 80, 40000, TcpFlags::ACK, b"data")],
    );
    let d = dir.0.path().display();
    let config = dir.write(
        "cleared.toml",
        &format!(
            r#"{dataplane}
{interfaces}{policies}{flow}"#,
            policies = policies(),
            dataplane = configs::dataplane_with_sockets(&test_eal("sessions-cleared"), &d),
            flow = FLOW.replace(
                "[flow]\n",
                "[flow]\ntcp-syn-check = true\ntcp-sequence-check = false\n"
            ),
            interfaces = configs::untrust_trust_pair(
                &format!("net_pcap0,rx_pcap={},tx_pcap={d}/out0.pcap", syn.display()),
                &format!(
                    "net_pcap1,rx_pcap={},infinite_rx=1,tx_pcap={d}/out1.pcap",
                    acks.display()
                ),
            ),
        ),
    );
    let control = dir.path("control.sock");
    let _dataplane = start_dataplane(&config, &control, &[], Stdio::inherit());
    let syn_check_drops = || -> u64 {
        stats(&control)["workers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["drops"]["tcp_syn_check"].as_u64().unwrap())
            .sum()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while sessions(&control, &["--port", "40000"]).is_empty() {
        assert!(Instant::now() < deadline, "the SYN opens the session");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The server's ACKs are the session's now: no more SYN check drops.
    let settled = syn_check_drops();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(syn_check_drops(), settled, "forwarded as the session's");
    let out = rampart()
        .args([
            "sessions",
            "clear",
            "--socket",
            control.to_str().unwrap(),
            "--port",
            "40000",
        ])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("1 session(s) cleared"),
        "{out:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while syn_check_drops() <= settled {
        assert!(
            Instant::now() < deadline,
            "the cleared flow's ACKs meet the SYN check"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        sessions(&control, &["--port", "40000"]).is_empty(),
        "and open no session"
    );
}
