//! The pipeline inside the real dataplane: screen drops reported with Junos
//! names, sessions that carry both directions with one and two workers.

mod common;

use std::collections::BTreeMap;

use common::*;
use rampart_pipeline::wire::TcpFlags;
use rampart_testkit::configs;
use rampart_testkit::traffic::{self, tcp, udp, v4};

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
    let interfaces = {
        let (untrust, trust) =
            configs::pcap_devices(input.display(), empty.display(), format!("{d}/out"));
        configs::untrust_trust_pair(&untrust, &trust)
    };
    let allow = configs::policy("allow", ("untrust", "trust"))
        .destination("servers")
        .applications(&["junos-http", "junos-dns-udp"])
        .then("permit")
        .log(&["session-init"]);
    let config = dir.write(
        "sessions.toml",
        &format!(
            r#"[dataplane]
workers = {workers}
eal = {eal}
{events}{interfaces}{zones}[address-book]
servers = ["10.1.0.0/24"]
{allow}{default}"#,
            eal = test_eal(&format!("sess{workers}")),
            events = configs::event_sockets(&d),
            zones = configs::UNTRUST_AND_TRUST_ZONES,
            default = configs::default_policy_logged("deny"),
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
    // "Drops by reason": reason, total over workers, per worker.
    assert!(
        summary.lines().any(|l| {
            let cells: Vec<&str> = l.split_whitespace().take(2).collect();
            cells == ["tcp_syn_check", "50"]
        }),
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

/// The parameters of a `junos-sd` line, in order: (name, value).
fn sd_params(line: &str) -> Vec<(String, String)> {
    let Some(start) = line.find("[junos@") else {
        return Vec::new();
    };
    let body = &line[start..];
    let mut out = Vec::new();
    let mut rest = &body[body.find(' ').unwrap_or(body.len())..];
    while let Some(eq) = rest.find("=\"") {
        let name = rest[..eq].trim().to_string();
        let mut value = String::new();
        let mut chars = rest[eq + 2..].char_indices();
        let mut end = 0;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        value.push(n);
                    }
                }
                '"' => {
                    end = eq + 2 + i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        out.push((name, value));
        rest = &rest[end..];
    }
    out
}

/// `<PRI>1 TS HOST APP PROCID MSGID ...`: (PRI, APP, MSGID).
fn sd_header(line: &str) -> (String, String, String) {
    let pri = line[1..line.find('>').unwrap()].to_string();
    let f: Vec<&str> = line.splitn(7, ' ').collect();
    (pri, f[3].to_string(), f[5].to_string())
}

/// A mixed run (the demo capture: creates, closes, denies, every screen,
/// input and output filter logs) through the dataplane and `rampart events
/// --format junos-sd`: each line has the severity, APP-NAME and parameter
/// names, in order, of the real SRX line of its message
/// (events/tests/data/srx_samples.md).
#[test]
fn every_junos_sd_line_of_a_mixed_run_has_the_fields_of_the_real_srx_line() {
    let samples: Vec<&str> = include_str!("../events/tests/data/srx_samples.md")
        .lines()
        .filter(|l| l.starts_with("<1") && l.contains(">1 ") && l.contains("[junos@2636.1.1.1.2."))
        .collect();
    let dir = TempDir::new();
    let d = dir.0.path().to_str().unwrap();
    let config = dir.write("demo.toml", &DEMO.replace("@DIR@", d));
    let frames: Vec<Vec<u8>> = traffic::demo(0).into_iter().map(|f| f.bytes).collect();
    write_pcap(&dir.path("untrust-in.pcap"), &frames);
    write_pcap(&dir.path("trust-in.pcap"), &[]);
    let (lines, summary) = run_with_consumer(&config, &dir.path("events.sock"), "junos-sd");
    let mut seen = BTreeMap::<String, usize>::new();
    for line in &lines {
        let (pri, app, msgid) = sd_header(line);
        *seen.entry(msgid.clone()).or_default() += 1;
        if msgid == "-" {
            // A filter log: plain text, as an SRX's PFE sends it.
            assert_eq!((pri.as_str(), app.as_str()), ("14", "-"), "{line}");
            assert!(line.contains(" - - - - PFE_FW_SYSLOG_IP"), "{line}");
            continue;
        }
        let real = samples.iter().find(|s| sd_header(s).2 == msgid);
        let Some(real) = real else {
            // RT_SCREEN_SESSION_LIMIT: no public sample found.
            assert!(msgid.starts_with("RT_SCREEN_"), "{line}");
            continue;
        };
        let (rpri, rapp, _) = sd_header(real);
        assert_eq!((&pri, &app), (&rpri, &rapp), "{line}\n{real}");
        let names = |l: &str| sd_params(l).into_iter().map(|p| p.0).collect::<Vec<_>>();
        let (ours, theirs) = (names(line), names(real));
        // Older samples lack the application-* fields of newer releases.
        let theirs_newest = samples
            .iter()
            .filter(|s| sd_header(s).2 == msgid)
            .map(|s| names(s))
            .max_by_key(Vec::len)
            .unwrap_or(theirs);
        assert_eq!(ours, theirs_newest, "{line}\n{real}");
    }
    for msg in [
        "RT_FLOW_SESSION_CREATE",
        "RT_FLOW_SESSION_CLOSE",
        "RT_FLOW_SESSION_DENY",
        "RT_SCREEN_TCP",
        "RT_SCREEN_ICMP",
        "RT_SCREEN_IP",
        "-",
    ] {
        assert!(seen.contains_key(msg), "{msg} missing: {seen:?}\n{summary}");
    }
}

/// A deny policy in audit mode ahead of a permit: the dataplane forwards
/// the traffic (the permit decides), logs what the audit policy would have
/// dropped as a policy_deny with action "audit", one per new flow.
#[test]
fn an_audit_policy_lets_traffic_through_and_logs_it() {
    let dir = TempDir::new();
    let frames: Vec<Vec<u8>> = (0..10u8)
        .map(|i| {
            udp(
                v4(192, 0, 2, 1 + i % 2),
                v4(10, 1, 0, 53),
                5000 + u16::from(i),
                53,
                &[i; 20],
            )
        })
        .collect();
    let audit = configs::policy("new-deny-dns-from-one", ("untrust", "trust"))
        .source("192.0.2.1/32")
        .application("junos-dns-udp")
        .then("deny")
        .audit();
    let allow = configs::policy("allow-dns", ("untrust", "trust"))
        .application("junos-dns-udp")
        .then("permit");
    let rest = format!(
        "{}{audit}{allow}[default-policy]\nthen = \"deny\"\n",
        configs::UNTRUST_AND_TRUST_ZONES
    );
    let (config, socket) = pcap_pair_config(&dir, "audit", &frames, "", &rest);
    let (records, summary) = run_with_json_consumer(&config, &socket);
    assert_eq!(
        read_pcap(&dir.path("audit-out1.pcap")).len(),
        frames.len(),
        "everything forwarded\n{summary}"
    );
    let audits: Vec<&serde_json::Value> = records
        .iter()
        .filter(|r| r["type"] == "policy_deny")
        .collect();
    assert_eq!(
        audits.len(),
        5,
        "one per new flow from 192.0.2.1: {audits:?}"
    );
    for a in audits {
        assert_eq!(
            (&a["action"], &a["policy"], &a["src_ip"]),
            (
                &serde_json::json!("audit"),
                &serde_json::json!("new-deny-dns-from-one"),
                &serde_json::json!("192.0.2.1")
            )
        );
    }
}

/// Zones and a default policy that denies and logs every packet.
const DENY_ALL_LOGGED: &str =
    "[zone.untrust]\n[zone.trust]\n[default-policy]\nthen = \"deny\"\nlog = true\n";

/// A deny storm with `[events.aggregate]`: 8 sources, each sending many
/// denied packets from changing ports. Keyed by source, the consumer
/// receives one record per source per window instead of one per packet,
/// and the counts it received plus what was counted lost add up exactly to
/// what the workers generated.
#[test]
fn a_deny_storm_with_aggregation_delivers_few_records_whose_counts_reconcile() {
    let dir = TempDir::new();
    let frames: Vec<Vec<u8>> = (0..24_000u32)
        .map(|i| {
            tcp(
                v4(192, 0, 2, 1 + (i % 8) as u8),
                v4(203, 0, 113, 9),
                1024 + (i % 20_000) as u16,
                23,
                TcpFlags::SYN,
                &[],
            )
        })
        .collect();
    let (config, socket) = pcap_pair_config(
        &dir,
        "aggregate",
        &frames,
        "",
        &format!("[events.aggregate]\npolicy_deny = \"10s\"\nkey = \"source\"\n{DENY_ALL_LOGGED}"),
    );
    let stats_out = dir.path("final.json");
    let (lines, fin, summary) =
        run_with_consumer_args(&config, &socket, &["--format", "json"], Some(&stats_out));
    let records = json_lines(&lines);
    let denies: Vec<&serde_json::Value> = records
        .iter()
        .filter(|r| r["type"] == "policy_deny")
        .collect();
    // The whole capture fits one 10 s window: at shutdown, one record per
    // source (each flushed once).
    assert_eq!(denies.len(), 8, "{denies:?}\n{summary}");
    let mut sources: Vec<&str> = denies
        .iter()
        .map(|r| r["src_ip"].as_str().unwrap())
        .collect();
    sources.sort_unstable();
    sources.dedup();
    assert_eq!(sources.len(), 8, "one record per source");
    for r in &denies {
        assert_eq!(r["count"], 3000, "{r}");
        assert!(r["first_ts"].as_str() <= r["last_ts"].as_str(), "{r}");
        assert_eq!(r["policy"], "default-policy");
    }
    let received: u64 = denies.iter().map(|r| r["count"].as_u64().unwrap()).sum();
    let c = &fin["events"]["policy_deny"];
    let consumer = &fin["consumers"][0];
    let lost = c["rate_limited"].as_u64().unwrap()
        + c["ring_overflow"].as_u64().unwrap()
        + consumer["dropped"]["policy_deny"].as_u64().unwrap();
    assert_eq!(c["generated"], frames.len() as u64, "{fin}");
    assert_eq!(
        c["aggregating"], 0,
        "nothing waits once the run is over: {fin}"
    );
    assert_eq!(c["aggregate_full"], 0, "8 keys fit: {fin}");
    assert_eq!(received + lost, frames.len() as u64, "{fin}");
    assert_eq!(consumer["delivered"]["policy_deny"], received, "{fin}");
}

/// Two dataplanes (an HA pair's members, say) followed by one `rampart
/// events`, the first socket given twice so every one of its records
/// reaches the command twice: one merged stream in time order, each record
/// once by its event id, tagged with its source, and each source's own
/// accounting in its stats records.
#[test]
fn two_dataplanes_merge_into_one_stream_without_duplicates() {
    let dir = TempDir::new();
    let denied = |n: u16, net: u8| -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| {
                udp(
                    v4(192, 0, 2, net),
                    v4(203, 0, 113, 7),
                    2000 + i,
                    53,
                    &[1; 8],
                )
            })
            .collect()
    };
    let node = |name: &str, frames: &[Vec<u8>]| {
        pcap_pair_config(
            &dir,
            name,
            frames,
            &format!("node = \"{name}\""),
            DENY_ALL_LOGGED,
        )
    };
    let (config_a, sock_a) = node("fw1", &denied(300, 1));
    let (config_b, sock_b) = node("fw2", &denied(200, 2));
    let consumer = rampart()
        .arg("events")
        .args(["--socket", sock_a.to_str().unwrap()])
        .args(["--socket", sock_a.to_str().unwrap()])
        .args(["--socket", sock_b.to_str().unwrap()])
        .args(["--format", "json", "--once", "--merge-window-ms", "2000"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let reader = std::thread::spawn(move || consumer.wait_with_output().unwrap());
    let start = |config: &std::path::Path| {
        KillOnDrop(Some(
            rampart()
                .args(["run", "--config", config.to_str().unwrap()])
                .args(["--idle-exit", "1", "--wait-consumer", "20"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap(),
        ))
    };
    let (mut a, mut b) = (start(&config_a), start(&config_b));
    for run in [&mut a, &mut b] {
        let out = run.0.take().unwrap().wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let consumed = reader.join().unwrap();
    let stderr = String::from_utf8_lossy(&consumed.stderr);
    assert!(consumed.status.success(), "{stderr}");
    let lines: Vec<String> = String::from_utf8(consumed.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let records = json_lines(&lines);
    let denies: Vec<&serde_json::Value> = records
        .iter()
        .filter(|r| r["type"] == "policy_deny")
        .collect();
    assert_eq!(denies.len(), 500, "each record once\n{stderr}");
    let ids: std::collections::HashSet<&str> = denies
        .iter()
        .map(|r| r["event_id"].as_str().expect("an event id"))
        .collect();
    assert_eq!(ids.len(), 500, "no duplicate event_id");
    assert!(
        stderr.contains("300 duplicate record(s) dropped"),
        "{stderr}"
    );
    for (node, socket, n) in [("fw1", &sock_a, 300), ("fw2", &sock_b, 200)] {
        let mine: Vec<_> = denies
            .iter()
            .filter(|r| {
                r["event_id"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("{node}:"))
            })
            .collect();
        assert_eq!(mine.len(), n, "{node}");
        assert!(mine.iter().all(|r| r["source"] == socket.to_str().unwrap()));
        // Its accounting, in its own (last) stats record.
        let stats = records
            .iter()
            .rfind(|r| r["type"] == "stats" && r["source"] == socket.to_str().unwrap())
            .expect("a stats record per source");
        assert_eq!(stats["events"]["policy_deny"]["generated"], n, "{stats}");
    }
    let ts: Vec<&str> = denies.iter().map(|r| r["ts"].as_str().unwrap()).collect();
    assert!(ts.windows(2).all(|w| w[0] <= w[1]), "merged in time order");
    let sources: std::collections::HashSet<&str> = denies
        .iter()
        .map(|r| r["source"].as_str().unwrap())
        .collect();
    assert_eq!(sources.len(), 2);
}

/// A SYN flood with `[events.episodes]`: besides its per-packet screen
/// drops, the attack is reported as one episode: a start at the first
/// drop, updates while it lasts, an end once it has been quiet, whose
/// packet count is every drop of the flood.
#[test]
fn a_syn_flood_is_reported_as_an_episode_with_start_updates_and_end() {
    let dir = TempDir::new();
    let frames: Vec<Vec<u8>> = (0..300_000u32)
        .map(|i| {
            tcp(
                v4(198, 51, 100, 1 + (i % 50) as u8),
                v4(203, 0, 113, 10),
                1024 + (i % 60_000) as u16,
                80,
                TcpFlags::SYN,
                &[],
            )
        })
        .collect();
    let (episodes, fin, summary) =
        syn_flood_episodes(&dir, "episodes", &frames, "update = \"10ms\"", 1000);
    let phases: Vec<&str> = episodes
        .iter()
        .map(|r| r["phase"].as_str().unwrap())
        .collect();
    assert!(phases.len() >= 3, "{phases:?}\n{summary}");
    assert_eq!(phases[0], "start", "{phases:?}");
    assert_eq!(*phases.last().unwrap(), "end", "{phases:?}");
    assert!(
        phases[1..phases.len() - 1].iter().all(|p| *p == "update"),
        "{phases:?}"
    );
    // Every screen drop here is the flood's (its only screen).
    let dropped = fin["events"]["screen_drop"]["generated"].as_u64().unwrap();
    assert!(dropped > 200_000, "{fin}");
    let end = episodes.last().unwrap();
    assert_eq!(end["packets"], dropped, "every drop of the flood: {end}");
    assert_eq!(end["screen"], "syn-flood");
    assert_eq!(end["zone"], "untrust");
    assert_eq!(end["dst_ip"], "203.0.113.10", "the target");
    assert!(end["peak_pps"].as_u64().unwrap() > 0, "{end}");
    let top = end["top_sources"].as_array().unwrap();
    assert_eq!(top.len(), 5, "{end}");
    // 50 sources in turn: each about 1/50 of the drops, none far above.
    assert!(
        top.iter()
            .all(|s| s["packets"].as_u64().unwrap() <= dropped / 8),
        "{end}"
    );
    let c = &fin["events"]["screen_episode"];
    assert_eq!(
        c["generated"],
        episodes.len() as u64,
        "all delivered: {fin}"
    );
    assert_eq!(fin["episodes_untracked"], 0, "{fin}");
}

/// A SYN flood on 100 targets of one /24 (`max = 256`) is 100 episodes,
/// each ending with its target's drops, and none untracked. The episode
/// table once placed an IPv4 target by its first octet only, so a flood on
/// one subnet found 32 slots and most of it went untracked.
#[test]
fn a_flood_on_one_subnet_is_one_episode_per_target() {
    let dir = TempDir::new();
    const TARGETS: u32 = 100;
    let frames: Vec<Vec<u8>> = (0..60_000u32)
        .map(|i| {
            tcp(
                v4(198, 51, 100, 1 + (i / TARGETS % 50) as u8),
                v4(203, 0, 113, 1 + (i % TARGETS) as u8),
                1024 + (i % 60_000) as u16,
                80,
                TcpFlags::SYN,
                &[],
            )
        })
        .collect();
    let (episodes, fin, summary) = syn_flood_episodes(
        &dir,
        "subnet-flood",
        &frames,
        "update = \"1s\"\nmax = 256",
        10,
    );
    let ends: Vec<&serde_json::Value> = episodes.iter().filter(|r| r["phase"] == "end").collect();
    let mut targets: Vec<&str> = ends.iter().map(|e| e["dst_ip"].as_str().unwrap()).collect();
    targets.sort_unstable();
    targets.dedup();
    assert_eq!(targets.len(), TARGETS as usize, "{targets:?}\n{summary}");
    assert_eq!(fin["episodes_untracked"], 0, "{fin}");
    let dropped = fin["events"]["screen_drop"]["generated"].as_u64().unwrap();
    let in_episodes: u64 = ends.iter().map(|e| e["packets"].as_u64().unwrap()).sum();
    assert_eq!(
        in_episodes, dropped,
        "every drop in its target's episode: {fin}"
    );
}

/// Replays `frames` into a zone whose screen has only `syn-flood` (at
/// `attack_threshold` SYNs per second), with `[events.episodes]` (`quiet =
/// "300ms"` and `episodes`) and screen drops rate-limited to 100 a second
/// (the episodes tell the story); returns the `screen_episode` records, the
/// final stats and the run's summary.
fn syn_flood_episodes(
    dir: &TempDir,
    tag: &str,
    frames: &[Vec<u8>],
    episodes: &str,
    attack_threshold: u32,
) -> (Vec<serde_json::Value>, serde_json::Value, String) {
    let (config, socket) = pcap_pair_config(
        dir,
        tag,
        frames,
        "",
        &format!(
            r#"[events.episodes]
quiet = "300ms"
{episodes}
[events.rate_limit]
screen_drop = 100
[zone.untrust]
screen = "flood"
[zone.trust]
[screen.flood]
syn-flood = {{ attack-threshold = {attack_threshold}, source-threshold = 1000000, destination-threshold = 1000000 }}
[default-policy]
then = "deny"
"#
        ),
    );
    let stats_out = dir.path("final.json");
    let (lines, fin, summary) = run_with_consumer_args(
        &config,
        &socket,
        &["--format", "json", "--types", "screen_episode"],
        Some(&stats_out),
    );
    let records = json_lines(&lines)
        .into_iter()
        .filter(|r| r["type"] == "screen_episode")
        .collect();
    (records, fin, summary)
}
