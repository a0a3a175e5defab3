//! What one step of a session listing costs the worker that takes it
//! between bursts (`SessionTable::walk` with the worker's budget: 256
//! slots looked at, at most 32 sessions copied out, as `src/sessions.rs`
//! walks), on a table of the default capacity (262,144) that holds 1,024
//! sessions (the `est-64` profile's), 65,536 or is full. Measures and
//! prints; asserts nothing about time. Each figure is the best of five
//! runs, since preemption on a shared machine only ever adds time.
//!
//! `cargo bench -p rampart-pipeline --bench session_walk`

use std::hint::black_box;
use std::time::Instant;

use rampart_pipeline::flow::{proto, Addr, FlowKey};
use rampart_pipeline::session::{Session, SessionMeta, SessionTable, Timeouts, WalkCursor};

const CAPACITY: usize = 262_144;
const SLOTS: usize = 256;
const COPIES: usize = 32;

fn table(sessions: usize) -> SessionTable {
    let mut t = SessionTable::new(CAPACITY, 0, Timeouts::default());
    for i in 0..sessions as u32 {
        let key = FlowKey {
            src: Addr::from_ipv4([10, (i >> 16) as u8, (i >> 8) as u8, i as u8]),
            dst: Addr::from_ipv4([192, 0, 2, 80]),
            src_port: 40000,
            dst_port: 80,
            protocol: proto::TCP,
        };
        t.insert(key, SessionMeta::default(), 0).unwrap();
    }
    t
}

/// A whole listing in worker steps: (steps, sessions, best ns per step).
fn listing(t: &SessionTable) -> (usize, usize, f64) {
    let mut page: Vec<Session> = Vec::with_capacity(256);
    let mut best = f64::MAX;
    let (mut steps, mut seen) = (0, 0);
    for _ in 0..5 {
        let (mut n, mut total) = (0, 0);
        let mut cursor = Some(WalkCursor::START);
        let start = Instant::now();
        while let Some(from) = cursor {
            if page.len() + COPIES > page.capacity() {
                total += page.len();
                page.clear();
            }
            let room = (page.capacity() - page.len()).min(COPIES);
            let step = t.walk(from, SLOTS, room, |_, s| page.push(*s));
            cursor = black_box(step.next);
            n += 1;
        }
        total += page.len();
        page.clear();
        best = best.min(start.elapsed().as_nanos() as f64 / n as f64);
        (steps, seen) = (n, total);
    }
    (steps, seen, best)
}

fn main() {
    println!("| sessions in a 262,144-slot table | worker steps per listing | sessions listed | ns per step (best of 5) |");
    println!("|---|---|---|---|");
    for sessions in [1_024, 65_536, CAPACITY] {
        let t = table(sessions);
        let (steps, seen, ns) = listing(&t);
        assert_eq!(seen, sessions, "every session once");
        println!("| {sessions} | {steps} | {seen} | {ns:.0} |");
    }
}
