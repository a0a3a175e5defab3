//! Classifier lookup cost against a linear scan, on synthetic policy-like
//! rule sets (`rampart_pipeline::classify::synthetic`) of 10 to 10,000
//! rules. Measures and prints; asserts nothing about time (results must
//! agree with the linear scan). Each figure is the best of five runs, since
//! preemption on a shared machine only ever adds time.
//!
//! `cargo bench -p rampart-pipeline --bench classify`

use std::hint::black_box;
use std::time::Instant;

use rampart_pipeline::classify::{classify_linear, synthetic, Classifier, Query};

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
}
