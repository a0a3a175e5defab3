//! Classifier lookup cost against a linear scan, on synthetic policy-like
//! rule sets (`rampart_pipeline::classify::synthetic`) of 10 to 10,000
//! rules. Measures and prints; asserts nothing about time (results must
//! agree with the linear scan). Each figure is the best of five runs, since
//! preemption on a shared machine only ever adds time.
//!
//! A second table compares one query at a time with
//! `Classifier::classify_batch` (bursts of 32, as the dataplane's policy
//! stage runs; without a prefetch instruction here, so only the overlap
//! of independent loads counts), on the synthetic sets and on the shape of
//! the harness's `rules-N` profiles (one /32 destination per rule, any
//! source, TCP port 80; queries spread over all rules).
//!
//! `cargo bench -p rampart-pipeline --bench classify`

use std::hint::black_box;
use std::time::Instant;

use rampart_pipeline::classify::{classify_linear, synthetic, AppMatch, Classifier, Query, Rule};
use rampart_pipeline::flow::{proto, Addr, Prefix};
use rampart_pipeline::vector::NoPrefetch;

/// The `rules-N` shape: rule `r` permits TCP to port 80 of its own host.
fn hosts(n: usize, queries: usize) -> (Vec<Rule>, Vec<Query>) {
    let host = |r: usize| Addr::from_ipv4([10, 200 + (r >> 16) as u8, (r >> 8) as u8, r as u8]);
    let http = AppMatch {
        protocol: Some(proto::TCP),
        dst_ports: rampart_pipeline::classify::PortRange { lo: 80, hi: 80 },
        ..AppMatch::ANY
    };
    let rules = (0..n)
        .map(|r| Rule {
            src: vec![Prefix::new(Addr::from_ipv4([0; 4]), 96)],
            dst: vec![Prefix::new(host(r), 128)],
            apps: vec![http],
        })
        .collect();
    let queries = (0..queries)
        .map(|i| Query {
            src: Addr::from_ipv4([198, 51, 100, (i % 250) as u8]),
            dst: host((i as u64 * 2_654_435_761 % n as u64) as usize),
            protocol: proto::TCP,
            src_port: 10000 + (i % 50000) as u16,
            dst_port: 80,
            ..Query::default()
        })
        .collect();
    (rules, queries)
}

/// ns per query of `classify_batch` over `queries` in bursts of 32.
fn ns_per_batched(c: &Classifier, queries: &[Query], total: usize) -> f64 {
    let rounds = (total / queries.len()).max(1);
    let mut out = [None; 32];
    (0..5)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..rounds {
                for chunk in queries.chunks(32) {
                    c.classify_batch::<NoPrefetch>(black_box(chunk), &mut out[..chunk.len()]);
                    black_box(&out);
                }
            }
            t.elapsed().as_nanos() as f64 / (rounds * queries.len()) as f64
        })
        .fold(f64::MAX, f64::min)
}

fn ns_per_lookup(queries: &[Query], total: usize, mut f: impl FnMut(&Query)) -> f64 {
    let rounds = (total / queries.len()).max(1);
    (0..5)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..rounds {
                for q in queries {
                    f(black_box(q));
                }
            }
            t.elapsed().as_nanos() as f64 / (rounds * queries.len()) as f64
        })
        .fold(f64::MAX, f64::min)
}

fn main() {
    println!(
        "{:>6} {:>8} {:>9} {:>9} {:>9} {:>10} {:>11} {:>11} {:>11} {:>9}",
        "rules",
        "subrules",
        "src-ivals",
        "dst-ivals",
        "port-ival",
        "memory",
        "classify",
        "bitvec ns",
        "linear ns",
        "build ms"
    );
    for n in [10, 20, 30, 50, 100, 1000, 10_000] {
        let (rules, queries) = synthetic(n, 4096, 7);
        let t = Instant::now();
        let bits = Classifier::build_bitvector(&rules);
        let build = t.elapsed();
        let hybrid = Classifier::build(&rules);
        for q in &queries {
            let want = classify_linear(&rules, q);
            assert_eq!(bits.classify(q), want);
            assert_eq!(hybrid.classify(q), want);
        }
        let s = bits.stats();
        let h = ns_per_lookup(&queries, 2_000_000, |q| {
            black_box(hybrid.classify(q));
        });
        let b = ns_per_lookup(&queries, 2_000_000, |q| {
            black_box(bits.classify(q));
        });
        let l = ns_per_lookup(&queries, 20_000_000 / n, |q| {
            black_box(classify_linear(black_box(&rules), q));
        });
        println!(
            "{:>6} {:>8} {:>9} {:>9} {:>9} {:>9}K {:>11.1} {:>11.1} {:>11.1} {:>9.1}",
            n,
            s.sub_rules,
            s.src_intervals,
            s.dst_intervals,
            s.port_intervals,
            s.memory_bytes / 1024,
            h,
            b,
            l,
            build.as_secs_f64() * 1e3
        );
    }

    println!(
        "\n{:>8} {:>6} {:>12} {:>12} {:>8}",
        "shape", "rules", "one by one", "batch of 32", "ratio"
    );
    for (shape, n) in [10, 100, 1000, 10_000]
        .into_iter()
        .flat_map(|n| [("synthetic", n), ("hosts", n)])
    {
        let (rules, queries) = match shape {
            "hosts" => hosts(n, 4096),
            _ => synthetic(n, 4096, 7),
        };
        let c = Classifier::build(&rules);
        let mut out = vec![None; queries.len()];
        for (qs, o) in queries.chunks(32).zip(out.chunks_mut(32)) {
            c.classify_batch::<NoPrefetch>(qs, o);
        }
        for (q, got) in queries.iter().zip(&out) {
            assert_eq!(*got, classify_linear(&rules, q));
        }
        let one = ns_per_lookup(&queries, 2_000_000, |q| {
            black_box(c.classify(q));
        });
        let batch = ns_per_batched(&c, &queries, 2_000_000);
        println!(
            "{:>8} {:>6} {:>12.1} {:>12.1} {:>8.2}",
            shape,
            n,
            one,
            batch,
            one / batch
        );
    }
}
