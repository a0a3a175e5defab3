//! What high-availability sync adds to a worker per session: the same
//! churn (a TCP session created and through its handshake; a burst later
//! reset and removed) on a table without sync (`churn_alone`) and with
//! its journal on, drained after every burst of 32 sessions and each
//! record encoded into a ring-sized slot as the worker does
//! (`churn_synced`): two records per session, its open and its removal.
//! Prints nanoseconds per session (best of five); counted exactly with
//! callgrind, whose per-function totals are instructions that do not move
//! with the machine's load:
//!
//! ```sh
//! cargo bench -p rampart-pipeline --bench sync_journal --no-run
//! valgrind --tool=callgrind --toggle-collect='*churn_*' \
//!   target/release/deps/sync_journal-* --bench
//! callgrind_annotate callgrind.out.* | grep churn_
//! ```

use std::hint::black_box;
use std::time::Instant;

use rampart_pipeline::flow::{proto, Addr, FlowKey};
use rampart_pipeline::session::{Direction, SessionMeta, SessionTable, Timeouts};
use rampart_pipeline::session_sync::{SyncChange, SyncRecord};
use rampart_pipeline::tcp_window::Segment;
use rampart_pipeline::wire::TcpFlags;

const SESSIONS: u32 = 65_536;
const BURST: u32 = 32;

fn key(i: u32) -> FlowKey {
    FlowKey {
        src: Addr::from_ipv4([10, (i >> 16) as u8, (i >> 8) as u8, i as u8]),
        dst: Addr::from_ipv4([192, 0, 2, 80]),
        src_port: 40000,
        dst_port: 80,
        protocol: proto::TCP,
    }
}

/// A session opened by a SYN, answered and established.
#[inline(always)]
fn open(t: &mut SessionTable, i: u32, now: u64) {
    let h = t.insert(key(i), SessionMeta::default(), now).unwrap();
    let f = |x: TcpFlags| Segment::from(x);
    t.update(h, Direction::ClientToServer, 60, f(TcpFlags::SYN), now);
    let syn_ack = f(TcpFlags::SYN | TcpFlags::ACK);
    t.update(h, Direction::ServerToClient, 60, syn_ack, now);
    t.update(h, Direction::ClientToServer, 60, f(TcpFlags::ACK), now);
}

/// A session reset, then removed (as aging removes it after its linger).
#[inline(always)]
fn close(t: &mut SessionTable, i: u32, now: u64) {
    let (h, _) = t.lookup(&key(i)).unwrap();
    let rst = Segment::from(TcpFlags::RST);
    t.update(h, Direction::ClientToServer, 60, rst, now);
    t.remove(h);
}

/// Each session closes a burst after it opened (so its open was drained,
/// and sent, before its close: nothing folds away).
#[inline(always)]
fn churn(t: &mut SessionTable, mut drain: impl FnMut(&mut SessionTable, u64)) {
    for i in 0..SESSIONS + BURST {
        let now = u64::from(i) * 1_000;
        if i < SESSIONS {
            open(t, i, now);
        }
        if i >= BURST {
            close(t, i - BURST, now);
        }
        if i % BURST == BURST - 1 {
            drain(t, now);
        }
    }
}

#[inline(never)]
fn churn_alone(t: &mut SessionTable) {
    churn(t, |_, _| {});
}

/// With the journal, drained after each burst into a slot the size of a
/// sync ring entry. Returns the records written, so nothing is elided.
#[inline(never)]
fn churn_synced(t: &mut SessionTable) -> u64 {
    let mut slot = [0u8; SyncRecord::LEN];
    let mut written = 0u64;
    churn(t, |t, now| {
        t.drain_journal(now, |c| {
            match c {
                SyncChange::Update(s, now) => s.sync_record(now).encode_into(&mut slot),
                SyncChange::Removed { id, .. } => slot[..8].copy_from_slice(&id.to_le_bytes()),
            }
            written += u64::from(black_box(slot[0]) != 1);
            true
        });
    });
    written
}

fn best_ns_per_session(mut run: impl FnMut()) -> f64 {
    (0..5)
        .map(|_| {
            let start = Instant::now();
            run();
            start.elapsed().as_nanos() as f64 / f64::from(SESSIONS)
        })
        .fold(f64::MAX, f64::min)
}

fn main() {
    let mut alone = SessionTable::new(SESSIONS as usize, 0, Timeouts::default());
    let mut synced = SessionTable::new(SESSIONS as usize, 0, Timeouts::default());
    synced.identify(1, 7);
    synced.journal_changes(4096);
    let a = best_ns_per_session(|| churn_alone(black_box(&mut alone)));
    let mut records = 0;
    let s = best_ns_per_session(|| records = churn_synced(black_box(&mut synced)));
    println!(
        "session churn, ns per session (best of 5): alone {a:.1}, synced {s:.1} ({records} records per {SESSIONS} sessions)"
    );
}
