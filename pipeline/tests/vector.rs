//! The burst-at-a-time pipeline (`Worker::process_burst`) against the
//! reference path (`Worker::process_into`, one packet at a time): over
//! random traffic cut into random bursts, both give every packet the same
//! verdict, stage, reason, rule, egress and events, and end with the same
//! counters and sessions.

use std::sync::Arc;

use proptest::prelude::*;
use rampart_pipeline::config::Config;
use rampart_pipeline::engine::{Decision, Event, Ruleset, Verdict, Worker};
use rampart_pipeline::frag::{DatagramKey, FragHold, GaveUp};
use rampart_pipeline::screen::ScreenState;
use rampart_pipeline::traffic::{self, v4, v6};
use rampart_pipeline::vector::{NoPrefetch, BURST};
use rampart_pipeline::wire::TcpFlags;

const FULL: &str = include_str!("config/full.toml");
const DEMO: &str = include_str!("../../src/demo.toml");

fn demo_rules(syn_check: bool) -> Ruleset {
    let text = DEMO.replace("@DIR@", "/tmp");
    let mut c = Config::from_str_named(&text, "demo.toml").unwrap();
    c.flow.session_capacity = 48;
    c.flow.tcp_syn_check = syn_check;
    Ruleset::compile(Arc::new(c), 1)
}

fn full_rules() -> Ruleset {
    let text = format!("{FULL}\n[flow]\nsession-capacity = 12\n");
    Ruleset::compile(
        Arc::new(Config::from_str_named(&text, "full.toml").unwrap()),
        1,
    )
}

/// A packet of one of a few conversations (so bursts hold several packets
/// of one flow, both its directions, its opening and its end), or a frame
/// of the demo capture, a screen attack or mixed traffic, maybe mutated.
fn frame(kind: u8, flow: u8, reverse: bool, pick: usize, edits: &[(u16, u8)]) -> Vec<u8> {
    let seeds = || {
        let mut v: Vec<Vec<u8>> = traffic::demo(0).into_iter().map(|f| f.bytes).collect();
        v.extend(traffic::screen_attacks().into_iter().map(|(_, f)| f));
        v.extend(traffic::mixed(3, 32, 0).into_iter().map(|f| f.bytes));
        v
    };
    if kind >= 8 {
        let all = seeds();
        let mut f = all[pick % all.len()].clone();
        for &(at, b) in edits {
            let at = usize::from(at) % f.len();
            f[at] = b;
        }
        return f;
    }
    let client = if flow % 5 == 4 {
        v6("2001:db8:ff::1")
    } else {
        v4(192, 0, 2, 1 + flow % 4)
    };
    let server = if flow % 5 == 4 {
        v6("2001:db8:1::10")
    } else {
        v4(10, 1, 0, 10)
    };
    let port = 40000 + u16::from(flow % 3);
    let dport = if flow % 7 == 6 { 23 } else { 80 };
    let (a, b, sp, dp) = if reverse {
        (server, client, dport, port)
    } else {
        (client, server, port, dport)
    };
    match kind {
        0 | 1 => traffic::tcp(a, b, sp, dp, TcpFlags::SYN, &[]),
        2 => traffic::tcp(a, b, sp, dp, TcpFlags::SYN | TcpFlags::ACK, &[]),
        3 => traffic::tcp(a, b, sp, dp, TcpFlags::ACK | TcpFlags::PSH, b"data"),
        4 => traffic::tcp(a, b, sp, dp, TcpFlags::FIN | TcpFlags::ACK, &[]),
        5 => traffic::tcp(a, b, sp, dp, TcpFlags::RST, &[]),
        6 => traffic::udp(a, b, sp, 53, &[1; 20]),
        _ => traffic::ping(a, b, 7, u16::from(flow)),
    }
}

fn same(reference: &Decision, vector: &Decision) -> Result<(), TestCaseError> {
    prop_assert_eq!(reference.verdict, vector.verdict);
    prop_assert_eq!(reference.stage, vector.stage);
    prop_assert_eq!(reference.reason, vector.reason);
    prop_assert_eq!(reference.rule, vector.rule);
    prop_assert_eq!(reference.egress, vector.egress);
    prop_assert_eq!(reference.packet, vector.packet);
    let events = |d: &Decision| d.events().copied().collect::<Vec<Event>>();
    prop_assert_eq!(events(reference), events(vector));
    Ok(())
}

/// Holds, then resumes after each burst, the fragments a burst held (the
/// DPDK worker resumes them as it acts on the burst's decisions).
struct Driver {
    worker: Worker,
    screens: ScreenState,
    held: FragHold<Vec<u8>>,
}

impl Driver {
    fn new(rules: &Ruleset) -> Driver {
        Driver {
            worker: Worker::new(0, rules),
            screens: ScreenState::new(64),
            held: FragHold::new(4),
        }
    }

    fn after_burst(
        &mut self,
        rules: &Ruleset,
        frames: &[Vec<u8>],
        decided: &[Decision],
        ingress: u16,
        now: u64,
    ) -> Vec<Decision> {
        let mut resumed = Vec::new();
        for (f, d) in frames.iter().zip(decided) {
            if let (Verdict::Hold, Some(p)) = (d.verdict, d.packet) {
                if self.held.hold(f.clone(), ingress, &p, now).is_some() {
                    self.worker.give_up_held(GaveUp::HoldFull);
                }
            }
        }
        for d in decided {
            if let Some(first) = d.packet.filter(|p| p.frag.is_first_fragment) {
                while let Some((f, port)) = self.held.take_released(DatagramKey::of(&first)) {
                    let mut r = Decision::BLANK;
                    self.worker
                        .resume_held(rules, &self.screens, &f, port, now, &mut r);
                    resumed.push(r);
                }
            }
        }
        resumed
    }
}

fn run(
    rules: &Ruleset,
    packets: &[(u8, u8, usize, Vec<(u16, u8)>)],
    bursts: &[(usize, bool, u8)],
) -> Result<(), TestCaseError> {
    let mut reference = Driver::new(rules);
    let mut vector = Driver::new(rules);
    let mut now = 1_000_000_000u64;
    let mut at = 0;
    let mut b = 0;
    let mut burst_frames = 0;
    while at < packets.len() {
        let (size, reverse, dt) = bursts[b % bursts.len()];
        b += 1;
        let n = size.clamp(1, BURST).min(packets.len() - at);
        now += u64::from(dt) * 50_000_000;
        let ingress = u16::from(reverse) % rules.config.interfaces.len() as u16;
        let frames: Vec<Vec<u8>> = packets[at..at + n]
            .iter()
            .map(|(kind, flow, pick, edits)| frame(*kind, *flow, reverse, *pick, edits))
            .collect();
        at += n;
        for d in [&mut reference, &mut vector] {
            d.worker.expire(rules, &d.screens, now, 64, &mut |_| {});
            while d.held.take_expired(now).is_some() {
                d.worker.give_up_held(GaveUp::Timeout);
            }
        }

        let mut one_by_one = vec![Decision::BLANK; n];
        for (f, d) in frames.iter().zip(&mut one_by_one) {
            reference
                .worker
                .process_into(rules, &reference.screens, f, ingress, now, d);
        }
        let mut burst = vec![Decision::BLANK; n];
        let slices: Vec<&[u8]> = frames.iter().map(|f| f.as_slice()).collect();
        vector.worker.process_burst::<NoPrefetch>(
            rules,
            &vector.screens,
            &slices,
            ingress,
            now,
            &mut burst,
        );
        burst_frames += usize::from(n > 1);

        for (r, v) in one_by_one.iter().zip(&burst) {
            same(r, v)?;
        }
        let r = reference.after_burst(rules, &frames, &one_by_one, ingress, now);
        let v = vector.after_burst(rules, &frames, &burst, ingress, now);
        prop_assert_eq!(r.len(), v.len());
        for (r, v) in r.iter().zip(&v) {
            same(r, v)?;
        }
    }
    let (r, v) = (&reference.worker, &vector.worker);
    prop_assert_eq!(format!("{:?}", r.counters), format!("{:?}", v.counters));
    prop_assert_eq!(r.sessions.len(), v.sessions.len());
    prop_assert_eq!(r.sessions.open(), v.sessions.open());
    prop_assert!(burst_frames > 0 || packets.len() < 2 || bursts.iter().all(|b| b.0 <= 1));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn vector_path_agrees_with_the_reference(
        packets in proptest::collection::vec(
            (0u8..10, 0u8..10, any::<usize>(),
             proptest::collection::vec((any::<u16>(), any::<u8>()), 0..3)),
            1..120),
        bursts in proptest::collection::vec((1usize..=BURST, any::<bool>(), 0u8..8), 1..8),
        config in 0u8..3,
    ) {
        let rules = match config {
            0 => demo_rules(true),
            1 => demo_rules(false),
            _ => full_rules(),
        };
        run(&rules, &packets, &bursts)?;
    }
}

/// Three packets of one new flow in one burst: the first opens the
/// session (through policy), the next two ride it, exactly as one by one.
#[test]
fn later_packets_of_a_new_flow_see_the_session_the_first_created() {
    let rules = demo_rules(true);
    let screens = ScreenState::new(64);
    let mut w = Worker::new(0, &rules);
    let (c, s) = (v4(192, 0, 2, 9), v4(10, 1, 0, 10));
    let syn = traffic::tcp(c, s, 40000, 80, TcpFlags::SYN, &[]);
    let again = traffic::tcp(c, s, 40000, 80, TcpFlags::SYN, &[]);
    let other = traffic::tcp(c, s, 40001, 80, TcpFlags::SYN, &[]);
    let mut out = [Decision::BLANK; 3];
    w.process_burst::<NoPrefetch>(&rules, &screens, &[&syn, &again, &other], 0, 1, &mut out);
    use rampart_pipeline::engine::Reason;
    assert_eq!(out[0].reason, Reason::PolicyPermit);
    assert_eq!(out[1].reason, Reason::Session, "{:?}", out[1]);
    assert_eq!(out[2].reason, Reason::PolicyPermit);
    assert_eq!(w.counters.sessions_created, 2);
    assert_eq!(w.sessions.len(), 2);
}
