//! Per-stage microbenchmark of the pipeline over in-memory frames (no DPDK).
//!
//! `CARGO_TARGET_DIR=/tmp/target-bench cargo bench -p rampart-pipeline --bench pipeline`
//!
//! Every scenario is measured `REPS` times, interleaved round by round so
//! the scenarios of one round share the machine's state; the table gives
//! the median ns/packet with min and max, and each scenario's ratio to
//! `wire::parse` alone, measured in the same run. Each pipeline scenario
//! runs twice: one packet at a time (`Worker::process_into`, the
//! reference path) and a burst of 32 at a time (`Worker::process_burst`,
//! what the DPDK worker runs); a second table gives the burst path's time
//! per packet in each stage (timed per burst). Environment:
//! `RAMPART_BENCH_REPS` (default 7), `RAMPART_BENCH_QUICK=1` (smaller runs).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use rampart_pipeline::config::Config;
use rampart_pipeline::engine::{
    Decision, Ruleset, Stage, StageCycles, Verdict, Worker, WorkerStage,
};
use rampart_pipeline::flow::Addr;
use rampart_pipeline::screen::ScreenState;
use rampart_pipeline::vector::{NoPrefetch, BURST};
use rampart_pipeline::wire::{self, TcpFlags};
use rampart_testkit::configs;
use rampart_testkit::traffic::{mixed, ping, tcp, udp, v4, Frame};

const UNTRUST: u16 = 0;
const TRUST: u16 = 1;

fn config_text(screen: bool, policies: &str, default: &str) -> String {
    let screen_ref = if screen { "screen = \"heavy\"" } else { "" };
    let interfaces = configs::untrust_trust_pair("net_ring0", "net_ring1");
    format!(
        r#"
{interfaces}

[zone.untrust]
{screen_ref}
[zone.trust]

[flow]
session-capacity = 1048576

# Every stateless check, plus syn-flood and port-scan. Thresholds are
# high enough that the benchmark traffic is counted and tracked by every
# check but not dropped (a drop would short-cut the rest of the pipeline).
{heavy}syn-flood = {{ attack-threshold = 100000000, source-threshold = 100000000, destination-threshold = 100000000 }}
port-scan = {{ threshold = 5000 }}

[address-book]
web = ["10.1.0.0/16", "2001:db8:1::/64"]
clients = ["192.0.2.0/24", "198.18.0.0/15", "2001:db8:ff::/64"]

{policies}

[default-policy]
{default}
"#,
        heavy = configs::screen(
            "heavy",
            "land syn-fin tcp-no-flag fin-no-ack winnuke syn-frag tear-drop ping-death \
             icmp-fragment icmp-large block-frag source-route-option loose-source-route-option \
             strict-source-route-option record-route-option timestamp-option security-option \
             stream-option bad-option unknown-protocol",
        ),
    )
}

/// A policy `name` from the clients to the web servers for web, DNS and
/// ping, doing `then`.
fn web_policy(name: &str, then: &str) -> configs::Policy {
    configs::policy(name, ("untrust", "trust"))
        .source("clients")
        .destination("web")
        .applications(&["junos-http", "junos-https", "junos-dns-udp", "junos-ping"])
        .then(then)
}

fn ruleset(text: &str) -> Ruleset {
    let config = Config::from_str_named(text, "bench").unwrap_or_else(|e| panic!("{e}"));
    Ruleset::compile(Arc::new(config), 1)
}

#[derive(Clone, Copy)]
struct Stats {
    median: f64,
    min: f64,
    max: f64,
}

fn stats(mut v: Vec<f64>) -> Stats {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Stats {
        median,
        min: v[0],
        max: v[n - 1],
    }
}

/// A flow's client and server addresses and ports; flow `i` is distinct.
fn flow(i: usize) -> (Addr, Addr, u16) {
    let client = v4(198, 18 + ((i >> 16) & 1) as u8, (i >> 8) as u8, i as u8);
    let server = v4(10, 1, (i % 7) as u8, (i % 200) as u8 + 1);
    let sport = 1024 + (i % 60000) as u16;
    (client, server, sport)
}

/// Outcome summary of a scenario (from one untimed pass).
#[derive(Default)]
struct Outcome {
    packets: u64,
    forwarded: u64,
    dropped: u64,
    events: u64,
}

impl Outcome {
    fn add(&mut self, d: &rampart_pipeline::engine::Decision) {
        self.packets += 1;
        match d.verdict {
            Verdict::Forward { .. } => self.forwarded += 1,
            _ => self.dropped += 1,
        }
        self.events += d.event_count() as u64;
    }
    fn describe(&self) -> String {
        let p = self.packets.max(1) as f64;
        format!(
            "{:.0}% fwd, {:.0}% drop, {:.2} events/pkt",
            100.0 * self.forwarded as f64 / p,
            100.0 * self.dropped as f64 / p,
            self.events as f64 / p
        )
    }
}

/// Decides `frames` entering untrust, one at a time or in bursts of
/// [`BURST`] (all of a burst at one time, as the worker stamps them), the
/// clock advancing 1 µs per packet.
fn decide<'a>(
    w: &mut Worker,
    rules: &Ruleset,
    screens: &ScreenState,
    frames: impl Iterator<Item = &'a [u8]>,
    vector: bool,
    now: &mut u64,
    mut outcome: Option<&mut Outcome>,
) {
    let mut out = [Decision::BLANK; BURST];
    let mut burst: [&[u8]; BURST] = [&[]; BURST];
    let mut n = 0;
    let mut flush = |w: &mut Worker, burst: &[&[u8]], now: &mut u64| {
        if vector {
            *now += 1000 * burst.len() as u64;
            let done = w
                .process_burst::<NoPrefetch>(rules, screens, burst, UNTRUST, *now, &mut out, false);
            assert_eq!(done, burst.len(), "no reordered fragments here");
            for d in &out[..burst.len()] {
                if let Some(o) = outcome.as_deref_mut() {
                    o.add(d);
                }
                black_box(w.events(d).count());
            }
        } else {
            for f in burst {
                *now += 1000;
                w.process_into(rules, screens, black_box(f), UNTRUST, *now, &mut out[0]);
                if let Some(o) = outcome.as_deref_mut() {
                    o.add(&out[0]);
                }
                black_box(w.events(&out[0]).count());
            }
        }
    };
    for f in frames {
        burst[n] = f;
        n += 1;
        if n == BURST {
            flush(w, &burst[..n], now);
            n = 0;
        }
    }
    flush(w, &burst[..n], now);
}

/// The suffix of a scenario's name for how it is run.
fn mode(vector: bool) -> &'static str {
    if vector {
        "burst of 32"
    } else {
        "per packet"
    }
}

/// A clock for stage timing in the in-memory bench: nanoseconds.
fn ns_clock() -> u64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

struct Scenario {
    name: String,
    /// Stage timing of one burst-path pass (burst scenarios only).
    stages: Option<StageCycles>,
    /// Runs one timed repetition; returns (ns elapsed, packets).
    run: Box<dyn FnMut() -> (u64, u64)>,
    outcome: String,
    samples: Vec<f64>,
}

fn main() {
    let reps: usize = std::env::var("RAMPART_BENCH_REPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    let quick = std::env::var("RAMPART_BENCH_QUICK").is_ok();
    let scale = if quick { 1 } else { 4 };

    let flows = 4096;
    let passes = 64 * scale; // established: packets per rep = flows * passes
    let new_flows = 50_000 * scale; // first-packet scenarios: distinct flows per rep

    // Frames.
    let data_frames: Vec<Vec<u8>> = (0..flows)
        .map(|i| {
            let (c, s, sp) = flow(i);
            tcp(c, s, sp, 80, TcpFlags::ACK | TcpFlags::PSH, &[0x42; 64])
        })
        .collect();
    let syn_frames: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..new_flows)
            .map(|i| {
                let (c, s, sp) = flow(i);
                tcp(c, s, sp, 80, TcpFlags::SYN, &[])
            })
            .collect(),
    );
    // Deny storm: new SYNs, UDP and pings, none matching a policy.
    let storm_frames: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..new_flows)
            .map(|i| {
                let (c, _, sp) = flow(i);
                let dst = v4(203, 0, 113, (i % 250) as u8 + 1);
                match i % 4 {
                    0 | 1 => tcp(c, dst, sp, 445, TcpFlags::SYN, &[]),
                    2 => udp(c, dst, sp, 161, &[0x30; 40]),
                    _ => ping(c, dst, sp, i as u16),
                }
            })
            .collect(),
    );
    let mixed_frames: Arc<Vec<Frame>> = Arc::new(mixed(7, new_flows, 1_000_000_000));

    let permit_web = format!(
        "\n{}",
        web_policy("allow-web", "permit").log(&["session-init", "session-close"])
    );
    let deny_web = format!("\n{}", web_policy("deny-web", "deny"));
    let plain = Arc::new(ruleset(&config_text(false, &permit_web, "then = \"deny\"")));
    let screened = Arc::new(ruleset(&config_text(true, &permit_web, "then = \"deny\"")));
    let deny_rules = Arc::new(ruleset(&config_text(false, &deny_web, "then = \"deny\"")));
    let storm_rules = Arc::new(ruleset(&config_text(
        false,
        &permit_web,
        "then = \"deny\"\nlog = true",
    )));

    // Established sessions: full handshake for every flow, then the
    // measured packets are the client's data segments of those flows.
    let established = |rules: &Ruleset, screens: &ScreenState, now: &mut u64| -> Worker {
        let mut w = Worker::new(0, rules);
        for i in 0..flows {
            let (c, s, sp) = flow(i);
            let steps = [
                (tcp(c, s, sp, 80, TcpFlags::SYN, &[]), UNTRUST),
                (tcp(s, c, 80, sp, TcpFlags::SYN | TcpFlags::ACK, &[]), TRUST),
                (tcp(c, s, sp, 80, TcpFlags::ACK, &[]), UNTRUST),
            ];
            for (f, port) in steps {
                *now += 1000;
                let d = w.process(rules, screens, &f, port, *now);
                assert!(
                    matches!(d.verdict, Verdict::Forward { .. }),
                    "handshake of flow {i} not forwarded: {:?} {:?}",
                    d.stage,
                    d.reason
                );
            }
        }
        w
    };

    let mut scenarios: Vec<Scenario> = Vec::new();

    // wire::parse alone, on the established data segments.
    {
        let frames = data_frames.clone();
        for f in &frames {
            assert!(matches!(wire::parse(f), Ok(wire::Parsed::Ip(_))));
        }
        scenarios.push(Scenario {
            name: "wire::parse (TCP/IPv4, 64 B payload)".into(),
            stages: None,
            outcome: "parse only".into(),
            samples: vec![],
            run: Box::new(move || {
                let t = Instant::now();
                for _ in 0..passes {
                    for f in &frames {
                        black_box(wire::parse(black_box(f)).ok());
                    }
                }
                (
                    t.elapsed().as_nanos() as u64,
                    (passes * frames.len()) as u64,
                )
            }),
        });
    }
    // wire::parse alone, on mixed traffic.
    {
        let frames = mixed_frames.clone();
        scenarios.push(Scenario {
            name: "wire::parse (traffic::mixed)".into(),
            stages: None,
            outcome: "parse only".into(),
            samples: vec![],
            run: Box::new(move || {
                let t = Instant::now();
                for f in frames.iter() {
                    black_box(wire::parse(black_box(&f.bytes)).ok());
                }
                (t.elapsed().as_nanos() as u64, frames.len() as u64)
            }),
        });
    }

    // (a) established sessions, with and without the screen profile.
    for ((name, rules), vector) in [
        ("(a) established session, data", plain.clone()),
        (
            "(d1) established session, data, screen-heavy",
            screened.clone(),
        ),
    ]
    .into_iter()
    .flat_map(|s| [(s.clone(), false), (s, true)])
    {
        let screens = ScreenState::new(1 << 16);
        let mut now = 1_000_000_000u64;
        let mut w = established(&rules, &screens, &mut now);
        let frames = data_frames.clone();
        let mut o = Outcome::default();
        let each = || frames.iter().map(|f| f.as_slice());
        decide(
            &mut w,
            &rules,
            &screens,
            each(),
            vector,
            &mut now,
            Some(&mut o),
        );
        assert_eq!(
            o.forwarded, o.packets,
            "{name}: every data segment forwarded"
        );
        let stages = vector.then(|| {
            w.measure_stages(ns_clock);
            decide(&mut w, &rules, &screens, each(), true, &mut now, None);
            let t = w.stage_cycles();
            w = established(&rules, &screens, &mut now);
            t
        });
        scenarios.push(Scenario {
            name: format!("{name} ({})", mode(vector)),
            stages,
            outcome: o.describe(),
            samples: vec![],
            run: Box::new(move || {
                let t = Instant::now();
                for _ in 0..passes {
                    let each = frames.iter().map(|f| f.as_slice());
                    decide(&mut w, &rules, &screens, each, vector, &mut now, None);
                }
                (
                    t.elapsed().as_nanos() as u64,
                    (passes * frames.len()) as u64,
                )
            }),
        });
    }

    // First packets of new flows, a fresh worker (empty table) and screen
    // state every rep, made outside the timed region:
    // (b1) hitting a deny policy: policy lookup on every packet, no
    //      session created, no event;
    // (b2) hitting a permit policy: lookup, session insert and a
    //      session-open event (d2: with the screen profile);
    // (c)  deny storm: default deny with log, an event per packet;
    // (d3) mixed traffic (handshakes, data, UDP, ICMP, IPv6).
    type Frames = Arc<Vec<Vec<u8>>>;
    type Check = fn(&Outcome);
    let mixed_bytes: Frames = Arc::new(mixed_frames.iter().map(|f| f.bytes.clone()).collect());
    let first_packets: [(&str, Arc<Ruleset>, Frames, Check); 6] = [
        (
            "(b1) new flow SYN, policy deny (no session)",
            deny_rules.clone(),
            syn_frames.clone(),
            |o| assert_eq!(o.dropped, o.packets),
        ),
        (
            "(b2) new flow SYN, policy permit (session created)",
            plain.clone(),
            syn_frames.clone(),
            |o| assert_eq!(o.forwarded, o.packets, "every SYN permitted"),
        ),
        (
            "(d2) new flow SYN, permit, screen-heavy",
            screened.clone(),
            syn_frames.clone(),
            |o| assert_eq!(o.forwarded, o.packets, "every SYN permitted"),
        ),
        (
            "(c) deny storm (default deny + log)",
            storm_rules.clone(),
            storm_frames.clone(),
            |o| assert!(o.dropped == o.packets && o.events == o.packets),
        ),
        (
            "(d3) traffic::mixed, no screen",
            plain.clone(),
            mixed_bytes.clone(),
            |_| {},
        ),
        (
            "(d3) traffic::mixed, screen-heavy",
            screened.clone(),
            mixed_bytes.clone(),
            |_| {},
        ),
    ];
    for ((name, rules, frames, check), vector) in first_packets
        .into_iter()
        .flat_map(|s| [(s.clone(), false), (s, true)])
    {
        let each = || frames.iter().map(|f| f.as_slice());
        let mut o = Outcome::default();
        let stages = {
            let screens = ScreenState::new(1 << 16);
            let mut w = Worker::new(0, &rules);
            if vector {
                w.measure_stages(ns_clock);
            }
            let mut now = 1_000_000_000u64;
            decide(
                &mut w,
                &rules,
                &screens,
                each(),
                vector,
                &mut now,
                Some(&mut o),
            );
            vector.then(|| w.stage_cycles())
        };
        check(&o);
        scenarios.push(Scenario {
            name: format!("{name} ({})", mode(vector)),
            stages,
            outcome: o.describe(),
            samples: vec![],
            run: Box::new(move || {
                let screens = ScreenState::new(1 << 16);
                let mut w = Worker::new(0, &rules);
                let mut now = 1_000_000_000u64;
                let each = frames.iter().map(|f| f.as_slice());
                let t = Instant::now();
                decide(&mut w, &rules, &screens, each, vector, &mut now, None);
                let e = t.elapsed().as_nanos() as u64;
                drop(black_box(w));
                (e, frames.len() as u64)
            }),
        });
    }

    // Warm-up, then interleaved rounds.
    for s in scenarios.iter_mut() {
        (s.run)();
    }
    for _ in 0..reps {
        for s in scenarios.iter_mut() {
            let (ns, n) = (s.run)();
            s.samples.push(ns as f64 / n as f64);
        }
    }

    let base = stats(scenarios[0].samples.clone()).median;
    println!("## Pipeline microbenchmark (in-memory, no DPDK)\n");
    println!(
        "{} reps per scenario, interleaved; {} established flows, {} new flows per rep.\n",
        reps, flows, new_flows
    );
    println!("| scenario | median ns/pkt | min | max | Mpkt/s (median) | × parse | outcome |");
    println!("|---|---:|---:|---:|---:|---:|---|");
    for s in &scenarios {
        let st = stats(s.samples.clone());
        println!(
            "| {} | {:.1} | {:.1} | {:.1} | {:.2} | {:.1} | {} |",
            s.name,
            st.median,
            st.min,
            st.max,
            1000.0 / st.median,
            st.median / base,
            s.outcome
        );
    }

    println!(
        "\nWhere the burst path's time goes (ns per packet in each stage, every stage timed once per burst, one pass):\n"
    );
    let stages = Stage::ALL.map(|s| WorkerStage::of(s).name());
    println!("| scenario | {} | total |", stages.join(" | "));
    println!("|---|{}---:|", "---:|".repeat(stages.len()));
    for s in &scenarios {
        let Some(t) = s.stages else { continue };
        let per = |c: u64| c as f64 / t.samples.max(1) as f64;
        let cells: Vec<String> = t.cycles.iter().map(|&c| format!("{:.1}", per(c))).collect();
        println!(
            "| {} | {} | {:.1} |",
            s.name,
            cells.join(" | "),
            per(t.cycles.iter().sum())
        );
    }
}
