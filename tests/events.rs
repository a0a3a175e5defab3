//! The event stream end to end: the real dataplane on net_pcap vdevs, a
//! real `rampart events` consumer, exact accounting.

mod common;

use common::*;
use rampart_pipeline::wire::TcpFlags;
use rampart_testkit::configs;
use rampart_testkit::traffic::{tcp, udp, v4};

/// `input_args`: extra net_pcap arguments of the input port (`,infinite_rx=1`).
fn deny_all_config(
    dir: &TempDir,
    test: &str,
    workers: u16,
    input: &std::path::Path,
    input_args: &str,
    extra: &str,
) -> std::path::PathBuf {
    let empty = dir.path("empty.pcap");
    write_pcap(&empty, &[]);
    let d = dir.0.path().display();
    let interfaces = {
        let (untrust, trust) =
            configs::pcap_devices(input.display(), empty.display(), format!("{d}/out"));
        configs::untrust_trust_pair(&format!("{untrust}{input_args}"), &trust)
    };
    let deny_all = configs::policy("deny-all", ("untrust", "trust"))
        .then("deny")
        .log(&["session-init"]);
    dir.write(
        "deny.toml",
        &format!(
            r#"
[dataplane]
workers = {workers}
eal = {eal}

{events}{extra}

{interfaces}
{zones}
{deny_all}
[flow]
tcp-syn-check = false
"#,
            eal = test_eal(test),
            events = configs::event_sockets(d),
            zones = configs::UNTRUST_AND_TRUST_ZONES,
        ),
    )
}

fn frames(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let src = v4(192, 0, 2, (i % 200) as u8 + 1);
            let dst = v4(10, 1, (i / 250 % 250) as u8, (i % 250) as u8 + 1);
            if i % 3 == 0 {
                udp(src, dst, 1000 + (i % 5000) as u16, 53, &[0; 20])
            } else {
                tcp(src, dst, 2000 + (i % 5000) as u16, 443, TcpFlags::SYN, &[])
            }
        })
        .collect()
}

fn assert_deny_stream(workers: u16) {
    let dir = TempDir::new();
    let input = dir.path("in.pcap");
    let sent = frames(5000);
    write_pcap(&input, &sent);
    let config = deny_all_config(&dir, &format!("ev{workers}"), workers, &input, "", "");
    let (records, summary) = run_with_json_consumer(&config, &dir.path("events.sock"));
    let denies: Vec<&serde_json::Value> = records
        .iter()
        .filter(|r| r["type"] == "policy_deny")
        .collect();
    assert_eq!(
        denies.len(),
        sent.len(),
        "one policy_deny per denied packet\n{summary}"
    );
    for d in &denies {
        assert_eq!(d["policy"], "deny-all");
        assert_eq!(d["from_zone"], "untrust");
        assert_eq!(d["to_zone"], "trust");
        assert_eq!(d["interface"], "ge-0/0/0");
        assert_eq!(d["action"], "deny");
    }
    let first = denies
        .iter()
        .find(|d| d["dst_ip"] == "10.1.0.1")
        .expect("the first packet");
    assert_eq!(
        (
            first["src_ip"].as_str(),
            first["src_port"].as_u64(),
            first["dst_port"].as_u64()
        ),
        (Some("192.0.2.1"), Some(1000), Some(53))
    );
    // Per worker, sequence numbers have no gaps.
    for w in 0..workers as u64 {
        let mut seqs: Vec<u64> = denies
            .iter()
            .filter(|d| d["worker"] == w)
            .map(|d| d["seq"].as_u64().unwrap())
            .collect();
        seqs.sort_unstable();
        assert!(
            seqs.windows(2).all(|p| p[1] == p[0] + 1),
            "worker {w}: gapless seq"
        );
    }
    // The final in-band stats record reconciles exactly.
    let stats = records
        .iter()
        .rev()
        .find(|r| r["type"] == "stats")
        .expect("a final stats record");
    let c = &stats["events"]["policy_deny"];
    let n = |k: &str| c[k].as_u64().unwrap_or_else(|| panic!("{k} in {stats}"));
    assert_eq!(n("generated"), sent.len() as u64);
    assert_eq!(
        n("generated"),
        n("rate_limited") + n("ring_overflow") + n("drained")
    );
}

#[test]
fn deny_all_one_worker_every_packet_logged() {
    assert_deny_stream(1);
}

#[test]
fn deny_all_two_workers_every_packet_logged() {
    assert_deny_stream(2);
}

/// Overload: a tiny event ring, a rate limit, a consumer that never reads
/// and one that does. The dataplane drops every packet as configured, the
/// consumer that never reads is cut off (logged and counted, its slot
/// freed), the reading consumer receives everything drained, and every
/// counter reconciles exactly.
#[test]
fn overload_small_ring_stalled_consumer_accounting_is_exact() {
    use std::io::Read;
    use std::os::unix::net::UnixStream;
    let dir = TempDir::new();
    let input = dir.path("in.pcap");
    // Enough events that more than a consumer buffer (4 MiB) is drained
    // even when the tiny rings overflow.
    let sent = frames(120_000);
    write_pcap(&input, &sent);
    let config = deny_all_config(
        &dir,
        "overload",
        2,
        &input,
        "",
        "ring_size = 256\n[events.rate_limit]\nsession_open = 10",
    );
    let socket = dir.path("events.sock");
    let stats_out = dir.path("stats.json");
    let cfg = config.clone();
    let stats_path = stats_out.clone();
    let run = std::thread::spawn(move || {
        run_ok(&[
            "--config",
            cfg.to_str().unwrap(),
            "--idle-exit",
            "1",
            "--wait-consumer",
            "20",
            "--stats-out",
            stats_path.to_str().unwrap(),
        ])
    });
    let connect = || loop {
        if let Ok(s) = UnixStream::connect(&socket) {
            break s;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    let stalled = connect(); // never reads
    let mut reader = connect();
    let mut received = Vec::new();
    reader.read_to_end(&mut received).unwrap();
    let out = run.join().unwrap();
    drop(stalled);
    let summary = String::from_utf8_lossy(&out.stdout);
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&stats_out).unwrap()).unwrap();
    // Frames the reader got (4-byte length prefix each).
    let mut frames_read = 0u64;
    let mut at = 0;
    while at + 4 <= received.len() {
        let len = u32::from_le_bytes(received[at..at + 4].try_into().unwrap()) as usize;
        at += 4 + len;
        frames_read += 1;
    }
    assert_eq!(at, received.len(), "whole frames only");
    let events = &stats["events"];
    let consumers = stats["consumers"].as_array().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    // The one that never reads is cut off once silent for 3 s, if the run
    // lasts that long after it connected (its losses until then were
    // counted); otherwise it is still listed, having lost events.
    let cut_off = stats["consumer_connections"]["cut_off"].as_u64().unwrap();
    match consumers.len() {
        1 => {
            assert_eq!(cut_off, 1, "{summary}");
            assert!(log.contains("cut off"), "and logged: {log}");
        }
        2 => {
            assert_eq!(cut_off, 0, "{summary}");
            let lost: u64 = consumers[0]["dropped"]
                .as_object()
                .unwrap()
                .values()
                .map(|v| v.as_u64().unwrap())
                .sum();
            assert!(
                lost > 0,
                "the stalled consumer lost events, counted: {}",
                consumers[0]
            );
        }
        n => panic!("{n} consumers: {summary}"),
    }
    let n = |v: &serde_json::Value| v.as_u64().unwrap();
    let mut drained_total = 0;
    for t in [
        "policy_deny",
        "screen_drop",
        "filter_log",
        "session_open",
        "session_close",
    ] {
        let c = &events[t];
        assert_eq!(
            n(&c["generated"]),
            n(&c["rate_limited"]) + n(&c["ring_overflow"]) + n(&c["drained"]),
            "{t}: {c}"
        );
        for consumer in consumers {
            assert_eq!(
                n(&consumer["delivered"][t]) + n(&consumer["dropped"][t]),
                n(&c["drained"]),
                "{t}: consumer {consumer}"
            );
        }
        drained_total += n(&c["drained"]);
    }
    assert_eq!(
        n(&events["policy_deny"]["generated"]),
        sent.len() as u64,
        "{summary}"
    );
    let policy_drops = summary
        .lines()
        .skip_while(|l| !l.starts_with("Drops by reason"))
        .find(|l| l.starts_with("policy_deny"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse::<usize>().ok());
    assert_eq!(
        policy_drops,
        Some(sent.len()),
        "every packet was dropped by policy:\n{summary}"
    );
    let reading = consumers.last().unwrap();
    let dropped = |c: &serde_json::Value| {
        c["dropped"]
            .as_object()
            .unwrap()
            .values()
            .map(n)
            .sum::<u64>()
    };
    assert_eq!(
        dropped(reading),
        0,
        "the reading consumer lost nothing: {reading}"
    );
    // The reader got every drained event, plus hello, names, stats and loss records.
    assert!(
        frames_read >= drained_total,
        "{frames_read} frames for {drained_total} events"
    );
}

/// SIGTERM while every packet of an endless replay is denied and logged:
/// the dataplane exits 0, and what the consumer received (events, loss
/// records, the final in-band stats record) reconciles with the
/// dataplane's own final counters.
#[test]
fn sigterm_during_deny_storm_final_stats_reconcile() {
    use rampart_events::{decode, read_frame, EventType, Record};
    use std::os::unix::net::UnixStream;
    use std::time::{Duration, Instant};
    const N: usize = EventType::COUNT;

    let dir = TempDir::new();
    let input = dir.path("in.pcap");
    write_pcap(&input, &frames(1000));
    let config = deny_all_config(&dir, "sigterm-storm", 1, &input, ",infinite_rx=1", "");
    let stats_out = dir.path("stats.json");
    let child = rampart()
        .args(["run", "--config", config.to_str().unwrap()])
        .args(["--wait-consumer", "20", "--stats-out"])
        .arg(&stats_out)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let socket = dir.path("events.sock");
    let deadline = Instant::now() + Duration::from_secs(20);
    let stream = loop {
        if let Ok(s) = UnixStream::connect(&socket) {
            break s;
        }
        assert!(Instant::now() < deadline, "the event socket never came up");
        std::thread::sleep(Duration::from_millis(10));
    };

    #[derive(Default)]
    struct Seen {
        events: [u64; N],
        loss: [u64; N],
        /// Gaps in the worker's sequence numbers.
        seq_gaps: u64,
        last_seq: Option<u64>,
        final_stats: Option<serde_json::Value>,
    }
    let reader = std::thread::spawn(move || {
        let mut r = std::io::BufReader::with_capacity(1 << 20, stream);
        let mut buf = Vec::new();
        let mut seen = Seen::default();
        while read_frame(&mut r, &mut buf).unwrap() {
            match decode(&buf).expect("a valid record") {
                Record::Event(e) => {
                    seen.events[e.event.event_type().index()] += 1;
                    let prev = seen.last_seq.unwrap_or(0);
                    assert!(e.seq > prev, "seq increases");
                    seen.seq_gaps += e.seq - prev - 1;
                    seen.last_seq = Some(e.seq);
                }
                Record::Loss(l) => {
                    for (t, n) in seen.loss.iter_mut().zip(l.dropped) {
                        *t += n;
                    }
                }
                Record::Stats(s) => {
                    seen.final_stats = Some(serde_json::json!({
                        "generated": s.totals.map(|c| c.generated),
                        "accounted": s.totals.map(|c| c.rate_limited + c.ring_overflow + c.drained),
                        "drained": s.totals.map(|c| c.drained),
                        "ring_overflow": s.totals.map(|c| c.ring_overflow),
                        "delivered": s.delivered,
                        "dropped": s.dropped,
                    }))
                }
                _ => {}
            }
        }
        seen
    });

    // Let the storm run, then stop it mid-flight.
    std::thread::sleep(Duration::from_secs(2));
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "exit 0 on SIGTERM: {}\n{summary}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let seen = reader.join().unwrap();
    let last = seen.final_stats.expect("a final stats record");
    let v = |k: &str| -> Vec<u64> { serde_json::from_value(last[k].clone()).unwrap() };
    let deny = EventType::PolicyDeny.index();
    let generated = v("generated")[deny];
    assert!(generated > 1000, "the storm was running: {generated}");
    assert_eq!(
        v("generated"),
        v("accounted"),
        "generated == rate_limited + ring_overflow + drained"
    );
    assert_eq!(
        seen.events.to_vec(),
        v("delivered"),
        "delivered == what the consumer got"
    );
    for t in 0..N {
        assert_eq!(
            v("delivered")[t] + v("dropped")[t],
            v("drained")[t],
            "type {t}"
        );
        assert!(seen.loss[t] <= v("dropped")[t]);
    }
    // A sequence number is taken once an event passes the rate limiter:
    // every gap is a ring overflow or this consumer's counted drop.
    // Sequence numbers start at 1 and the last one taken is the number
    // of events past the rate limiter (drained + ring_overflow).
    let sum = |k: &str| v(k).iter().sum::<u64>();
    let issued = sum("drained") + sum("ring_overflow");
    let last_seq = seen.last_seq.unwrap();
    assert!(last_seq <= issued, "{last_seq} > {issued}");
    assert_eq!(
        seen.seq_gaps + (issued - last_seq),
        sum("ring_overflow") + sum("dropped"),
        "every gap in seq is a counted drop"
    );

    // The dataplane's own final counters say the same.
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&stats_out).unwrap()).unwrap();
    let c = &stats["events"]["policy_deny"];
    assert_eq!(c["generated"].as_u64(), Some(generated), "{stats}");
    assert_eq!(c["drained"].as_u64(), Some(v("drained")[deny]));
    let w = &stats["workers"][0];
    assert_eq!(
        w["drops"]["policy_deny"].as_u64(),
        Some(generated),
        "one event per denied packet: {w}"
    );
}

/// Issue 26: `rampart events` on a path where nothing listens waited for
/// ever without a word. It says what it waits for, and why it cannot
/// connect yet: no socket file, or a file nobody listens on.
#[test]
fn a_consumer_waiting_for_its_socket_says_so_and_why() {
    use std::io::Read;
    use std::time::Duration;
    let dir = TempDir::new();
    let missing = dir.path("missing.sock");
    let stale = dir.path("stale.sock");
    // A socket file left behind by a process that has gone.
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    for (socket, why) in [
        (&missing, "no socket there yet"),
        (&stale, "nobody listens on it"),
    ] {
        let child = KillOnDrop::new(
            rampart()
                .args(["events", "--socket", socket.to_str().unwrap()])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap(),
        );
        std::thread::sleep(Duration::from_millis(700));
        let mut child = child.take();
        child.kill().unwrap();
        child.wait().unwrap();
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        assert!(
            stderr.contains(&format!(
                "waiting for the dataplane's event socket {}: {why}",
                socket.display()
            )),
            "{stderr}"
        );
        assert_eq!(
            stderr.lines().count(),
            1,
            "said once, not per retry: {stderr}"
        );
    }
}
