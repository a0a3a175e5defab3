//! Policy rule-count scaling: `PolicyTable::lookup` (classifier) against
//! `PolicyTable::lookup_linear` (in-order reference), and the full
//! `Worker::process` of first packets, with 10 to 10,000 policies.
//!
//! `CARGO_TARGET_DIR=/tmp/target-bench cargo bench -p rampart-pipeline --bench policy_scaling`
//!
//! Each policy has its own address-book entry (a mix of /32, /24, /16 and
//! IPv6 /64 destinations; one in four also has its own source entry) and an
//! application from a mix of built-ins and port ranges. The worst-case
//! query matches only the last policy; random queries aim at random
//! policies' prefixes and applications (about one in eight misses every
//! policy and falls to the default policy). Environment:
//! `RAMPART_BENCH_REPS` (default 7).

use std::fmt::Write as _;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use rampart_pipeline::classify::{Classifier, Rule};
use rampart_pipeline::config::Config;
use rampart_pipeline::engine::{Ruleset, Worker};
use rampart_pipeline::policy::PolicyMatch;
use rampart_pipeline::screen::ScreenState;
use rampart_pipeline::wire::{self, ParsedPacket, TcpFlags};
use rampart_testkit::configs;
use rampart_testkit::traffic::{ping, tcp, udp, v4, v6, Rng};

const SIZES: [usize; 4] = [10, 100, 1_000, 10_000];

/// (application names, protocol, a destination port that matches).
#[derive(Clone, Copy)]
enum App {
    Tcp(&'static str, u16),
    Udp(&'static str, u16),
    Ping,
}

const APPS: [App; 8] = [
    App::Tcp("junos-http", 80),
    App::Tcp("junos-https", 443),
    App::Tcp("junos-ssh", 22),
    App::Udp("junos-dns-udp", 53),
    App::Udp("junos-ntp", 123),
    App::Tcp("tcp-8000-8099", 8050),
    App::Udp("udp-high", 40000),
    App::Ping,
];

fn app_name(a: App) -> &'static str {
    match a {
        App::Tcp(n, _) | App::Udp(n, _) => n,
        App::Ping => "junos-ping",
    }
}

/// Destination of policy `i` (never inside 198.51.100.0/24, the worst
/// case's own destination) and an address inside it.
fn dst_of(i: usize) -> (String, [u8; 4], bool) {
    let a = (i >> 8) as u8;
    let b = i as u8;
    match i % 8 {
        0..=3 => (format!("10.{a}.{b}.7/32"), [10, a, b, 7], false),
        4 | 5 => (
            format!("172.{}.{b}.0/24", 16 + (a & 15)),
            [172, 16 + (a & 15), b, 99],
            false,
        ),
        6 => (
            format!("100.{}.0.0/16", 64 + (i % 64) as u8),
            [100, 64 + (i % 64) as u8, a, b],
            false,
        ),
        _ => (format!("2001:db8:{i:x}::/64"), [0; 4], true),
    }
}

struct Built {
    config: Config,
    toml: String,
}

fn build(n: usize) -> Built {
    let mut t = configs::untrust_trust_pair("net_ring0", "net_ring1");
    t.push_str(
        r#"

[zone.untrust]
[zone.trust]

[application]
tcp-8000-8099 = { protocol = "tcp", destination-port = "8000-8099" }
udp-high = { protocol = "udp", destination-port = "32768-65535" }

[address-book]
worst-dst = ["198.51.100.0/24"]
"#,
    );
    for i in 0..n - 1 {
        writeln!(t, "d{i} = [\"{}\"]", dst_of(i).0).unwrap();
        if i % 4 == 1 {
            writeln!(t, "s{i} = [\"192.0.{}.0/24\"]", (i % 250) as u8).unwrap();
        }
    }
    for i in 0..n - 1 {
        let src = if i % 4 == 1 {
            format!("s{i}")
        } else {
            "any".into()
        };
        let app = app_name(APPS[i % APPS.len()]);
        let action = if i % 5 == 4 { "deny" } else { "permit" };
        write!(
            t,
            "\n[[policy]]\nname = \"p{i}\"\nfrom-zone = \"untrust\"\nto-zone = \"trust\"\nsource-address = [\"{src}\"]\ndestination-address = [\"d{i}\"]\napplication = [\"{app}\"]\nthen = \"{action}\"\n"
        )
        .unwrap();
    }
    // The last policy: the worst case for in-order evaluation.
    t.push_str("\n[[policy]]\nname = \"last\"\nfrom-zone = \"untrust\"\nto-zone = \"trust\"\nsource-address = [\"any\"]\ndestination-address = [\"worst-dst\"]\napplication = [\"junos-https\"]\nthen = \"permit\"\n");
    t.push_str("\n[default-policy]\nthen = \"deny\"\n");
    let config = Config::from_str_named(&t, "bench").unwrap_or_else(|e| panic!("{e}"));
    Built { config, toml: t }
}

/// Frames: the worst case (matches only the last policy) with distinct
/// source ports, and random queries.
fn worst_frames(count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|k| {
            tcp(
                v4(192, 0, (k >> 16) as u8 + 1, (k >> 8) as u8),
                v4(198, 51, 100, 10),
                1024 + (k % 60000) as u16,
                443,
                TcpFlags::SYN,
                &[],
            )
        })
        .collect()
}

fn random_frames(n: usize, count: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut rng = Rng::new(seed);
    (0..count)
        .map(|k| {
            let i = rng.below(n as u64 - 1) as usize;
            let (_, d4, is6) = dst_of(i);
            let src_host = (k >> 8) as u8;
            // Policies with their own source entry get a source inside it.
            let src4 = if i % 4 == 1 {
                [192, 0, (i % 250) as u8, src_host]
            } else {
                [203, 0, 113, src_host]
            };
            let sport = 1024 + (k % 60000) as u16;
            // One query in eight uses an application that the policy does
            // not name (usually a default-policy miss).
            let app = if rng.below(8) == 0 {
                App::Tcp("none", 9999)
            } else {
                APPS[i % APPS.len()]
            };
            let (s, d) = if is6 {
                (
                    v6(&format!("2001:db8:ff::{src_host:x}")),
                    v6(&format!("2001:db8:{i:x}::5")),
                )
            } else {
                (
                    v4(src4[0], src4[1], src4[2], src4[3]),
                    v4(d4[0], d4[1], d4[2], d4[3]),
                )
            };
            match app {
                App::Tcp(_, p) => tcp(s, d, sport, p, TcpFlags::SYN, &[]),
                App::Udp(_, p) => udp(s, d, sport, p, &[0; 16]),
                App::Ping => ping(s, d, sport, k as u16),
            }
        })
        .collect()
}

fn parsed(frames: &[Vec<u8>]) -> Vec<ParsedPacket> {
    frames
        .iter()
        .map(|f| *wire::parse(f).unwrap().ip().unwrap())
        .collect()
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

fn fmt(s: Stats) -> String {
    format!("{:.1} ({:.1}–{:.1})", s.median, s.min, s.max)
}

/// Times `f(iters)` and returns ns per iteration; `iters` calibrated to
/// about `target_ms` per sample.
fn calibrate(target_ms: f64, mut f: impl FnMut(usize)) -> usize {
    let mut iters = 1;
    loop {
        let t = Instant::now();
        f(iters);
        let ms = t.elapsed().as_secs_f64() * 1e3;
        if ms > target_ms / 4.0 || iters > 1 << 26 {
            return ((iters as f64 * target_ms / ms.max(1e-6)) as usize).max(1);
        }
        iters *= 4;
    }
}

fn main() {
    let reps: usize = std::env::var("RAMPART_BENCH_REPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    let target_ms = 40.0;
    let queries = 4096;
    let first_packets = 20_000;

    struct Row {
        n: usize,
        compile: Vec<f64>,
        parse_cfg: Vec<f64>,
        memory: usize,
        lookup_worst: Vec<f64>,
        linear_worst: Vec<f64>,
        lookup_rand: Vec<f64>,
        linear_rand: Vec<f64>,
        process_worst: Vec<f64>,
        process_rand: Vec<f64>,
        default_share: f64,
    }

    let mut rows = Vec::new();
    for &n in &SIZES {
        let b = build(n);
        let zone_u = b.config.zone_id("untrust").unwrap();
        let zone_t = b.config.zone_id("trust").unwrap();
        let config = Arc::new(b.config.clone());
        let rules = Ruleset::compile(config.clone(), 1);

        // Classifier memory: PolicyTable does not expose its classifiers,
        // so build one from the same rules the table builds (all policies
        // are in the one zone pair, none global).
        let list: Vec<Rule> = config
            .policies
            .iter()
            .map(|p| Rule {
                src: p.source.clone(),
                dst: p.destination.clone(),
                apps: p
                    .applications
                    .iter()
                    .flat_map(|&a| config.applications[a].terms.iter().copied())
                    .collect(),
            })
            .collect();
        let memory = Classifier::build(&list).memory_bytes();

        let wf = worst_frames(first_packets);
        let rf = random_frames(n, first_packets, 42 + n as u64);
        let wq = parsed(&wf[..queries]);
        let rq = parsed(&rf[..queries]);

        // Sanity: classifier and linear evaluation agree; the worst case
        // hits the last policy.
        let mut defaults = 0;
        for q in wq.iter().chain(&rq) {
            let a = rules.policies.lookup(zone_u, zone_t, q);
            let l = rules.policies.lookup_linear(&config, zone_u, zone_t, q);
            assert_eq!(a, l, "classifier and linear disagree at n={n}");
            if a == PolicyMatch::Default {
                defaults += 1;
            }
        }
        assert_eq!(
            rules.policies.lookup(zone_u, zone_t, &wq[0]),
            PolicyMatch::Rule(n as u32 - 1)
        );

        let mut row = Row {
            n,
            compile: vec![],
            parse_cfg: vec![],
            memory,
            lookup_worst: vec![],
            linear_worst: vec![],
            lookup_rand: vec![],
            linear_rand: vec![],
            process_worst: vec![],
            process_rand: vec![],
            default_share: defaults as f64 / (2 * queries) as f64,
        };

        let lookup = |qs: &[ParsedPacket], iters: usize| {
            for k in 0..iters {
                black_box(
                    rules
                        .policies
                        .lookup(zone_u, zone_t, black_box(&qs[k % qs.len()])),
                );
            }
        };
        let linear = |qs: &[ParsedPacket], iters: usize| {
            for k in 0..iters {
                black_box(rules.policies.lookup_linear(
                    &config,
                    zone_u,
                    zone_t,
                    black_box(&qs[k % qs.len()]),
                ));
            }
        };
        let it_lw = calibrate(target_ms, |i| lookup(&wq, i));
        let it_lr = calibrate(target_ms, |i| lookup(&rq, i));
        let it_nw = calibrate(target_ms, |i| linear(&wq, i));
        let it_nr = calibrate(target_ms, |i| linear(&rq, i));
        let time = |f: &dyn Fn(usize), iters: usize| {
            let t = Instant::now();
            f(iters);
            t.elapsed().as_nanos() as f64 / iters as f64
        };
        // First packets through the whole pipeline: a fresh worker per
        // sample (made outside the timed region), distinct flows, so every
        // packet is a session miss and a policy lookup.
        let process = |frames: &[Vec<u8>]| {
            let screens = ScreenState::new(1 << 16);
            let mut w = Worker::new(0, &rules);
            let mut now = 1_000_000_000u64;
            let t = Instant::now();
            for f in frames {
                now += 1000;
                black_box(w.process(&rules, &screens, black_box(f), 0, now));
            }
            let ns = t.elapsed().as_nanos() as f64 / frames.len() as f64;
            drop(black_box(w));
            ns
        };
        process(&wf);
        for _ in 0..reps {
            let t = Instant::now();
            let c = Config::from_str_named(&b.toml, "bench").unwrap();
            row.parse_cfg.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            black_box(Ruleset::compile(Arc::new(c), 2));
            row.compile.push(t.elapsed().as_secs_f64() * 1e3);
            row.lookup_worst.push(time(&|i| lookup(&wq, i), it_lw));
            row.linear_worst.push(time(&|i| linear(&wq, i), it_nw));
            row.lookup_rand.push(time(&|i| lookup(&rq, i), it_lr));
            row.linear_rand.push(time(&|i| linear(&rq, i), it_nr));
            row.process_worst.push(process(&wf));
            row.process_rand.push(process(&rf));
        }
        eprintln!("n={n} done");
        rows.push(row);
    }

    println!("## Policy scaling\n");
    println!(
        "{reps} reps; ns per lookup / per packet, median (min–max). Classifier = `PolicyTable::lookup`, linear = `PolicyTable::lookup_linear`.\n"
    );
    println!("| policies | classifier worst | linear worst | classifier random | linear random | linear/classifier (worst) | linear/classifier (random) | default-policy share of queries |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        let lw = stats(r.lookup_worst.clone()).median;
        let nw = stats(r.linear_worst.clone()).median;
        let lr = stats(r.lookup_rand.clone()).median;
        let nr = stats(r.linear_rand.clone()).median;
        println!(
            "| {} | {} | {} | {} | {} | {:.1}× | {:.1}× | {:.0}% |",
            r.n,
            fmt(stats(r.lookup_worst.clone())),
            fmt(stats(r.linear_worst.clone())),
            fmt(stats(r.lookup_rand.clone())),
            fmt(stats(r.linear_rand.clone())),
            nw / lw,
            nr / lr,
            100.0 * r.default_share
        );
    }

    println!(
        "\n### Ratio to the 10-rule rate (time per lookup at N rules / at 10 rules; 1.0 = flat)\n"
    );
    println!("| policies | classifier worst | classifier random | linear worst | linear random | process worst | process random |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    let m = |v: &Vec<f64>| stats(v.clone()).median;
    let r0 = &rows[0];
    for r in &rows {
        println!(
            "| {} | {:.2} | {:.2} | {:.1} | {:.1} | {:.2} | {:.2} |",
            r.n,
            m(&r.lookup_worst) / m(&r0.lookup_worst),
            m(&r.lookup_rand) / m(&r0.lookup_rand),
            m(&r.linear_worst) / m(&r0.linear_worst),
            m(&r.linear_rand) / m(&r0.linear_rand),
            m(&r.process_worst) / m(&r0.process_worst),
            m(&r.process_rand) / m(&r0.process_rand),
        );
    }

    println!("\n### Full `Worker::process`, first packets (session miss + policy lookup + session insert when permitted)\n");
    println!("| policies | worst case ns/pkt | random ns/pkt | config parse ms | `Ruleset::compile` ms | classifier memory |");
    println!("|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} | {} | {:.1} KiB |",
            r.n,
            fmt(stats(r.process_worst.clone())),
            fmt(stats(r.process_rand.clone())),
            fmt(stats(r.parse_cfg.clone())),
            fmt(stats(r.compile.clone())),
            r.memory as f64 / 1024.0
        );
    }
}
