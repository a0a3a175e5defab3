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
use rampart_pipeline::vector::{NoPrefetch, BURST};
use rampart_pipeline::wire::TcpFlags;
use rampart_testkit::traffic::{self, v4, v6};

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
/// of the demo capture, a screen attack, mixed traffic or neighbour
/// discovery and MLD (valid and not), maybe mutated.
fn frame(kind: u8, flow: u8, reverse: bool, pick: usize, edits: &[(u16, u8)]) -> Vec<u8> {
    let seeds = || {
        let mut v: Vec<Vec<u8>> = traffic::demo(0).into_iter().map(|f| f.bytes).collect();
        v.extend(traffic::screen_attacks().into_iter().map(|(_, f)| f));
        v.extend(traffic::mixed(3, 32, 0).into_iter().map(|f| f.bytes));
        v.extend(traffic::link_control().into_iter().map(|(_, _, f)| f));
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

/// A decision and its events, read from the worker as it was made (as the
/// DPDK worker exports them).
type Decided = (Decision, Vec<Event>);

fn decided(w: &Worker, d: Decision) -> Decided {
    let events: Vec<Event> = w.events(&d).collect();
    // Every event the decision made is still there to build.
    let types: Vec<_> = events.iter().map(Event::event_type).collect();
    assert_eq!(types, d.event_types().collect::<Vec<_>>());
    (d, events)
}

fn same(
    (reference, r_events): &Decided,
    (vector, v_events): &Decided,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(reference.verdict, vector.verdict);
    prop_assert_eq!(reference.stage, vector.stage);
    prop_assert_eq!(reference.reason, vector.reason);
    prop_assert_eq!(reference.rule, vector.rule);
    prop_assert_eq!(reference.egress, vector.egress);
    prop_assert_eq!(reference.packet, vector.packet);
    prop_assert_eq!(r_events, v_events);
    Ok(())
}

/// A worker with its hold for fragments ahead of their first fragment,
/// driven as the DPDK worker drives it.
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

    /// Carries out a decision: holds a held fragment; after a first
    /// fragment, decides the fragments it releases (into `resumed`).
    fn act(
        &mut self,
        rules: &Ruleset,
        frame: &[u8],
        d: &Decision,
        ingress: u16,
        now: u64,
        resumed: &mut Vec<Decided>,
    ) {
        if let (Verdict::Hold, Some(p)) = (d.verdict, d.packet) {
            if self.held.hold(frame.to_vec(), ingress, &p, now).is_some() {
                self.worker.give_up_held(GaveUp::HoldFull);
            }
        }
        if let Some(first) = d.packet.filter(|p| p.frag.is_first_fragment) {
            while let Some((f, port)) = self.held.take_released(DatagramKey::of(&first)) {
                let mut r = Decision::BLANK;
                self.worker
                    .resume_held(rules, &self.screens, &f, port, now, &mut r);
                resumed.push(decided(&self.worker, r));
            }
        }
    }

    /// The reference: each packet decided and carried out before the next.
    fn one_by_one(
        &mut self,
        rules: &Ruleset,
        frames: &[Vec<u8>],
        ingress: u16,
        now: u64,
    ) -> (Vec<Decided>, Vec<Decided>) {
        let (mut done, mut resumed) = (Vec::new(), Vec::new());
        for f in frames {
            let mut d = Decision::BLANK;
            self.worker
                .process_into(rules, &self.screens, f, ingress, now, &mut d);
            done.push(decided(&self.worker, d));
            self.act(rules, f, &d, ingress, now, &mut resumed);
        }
        (done, resumed)
    }

    /// As the DPDK worker: the burst as a vector, each decision carried
    /// out in order; if the vector stopped at a first fragment, the rest
    /// one by one.
    fn burst(
        &mut self,
        rules: &Ruleset,
        frames: &[Vec<u8>],
        ingress: u16,
        now: u64,
    ) -> (Vec<Decided>, Vec<Decided>) {
        let mut out = vec![Decision::BLANK; frames.len()];
        let slices: Vec<&[u8]> = frames.iter().map(|f| f.as_slice()).collect();
        let waiting = !self.held.is_empty();
        let done = self.worker.process_burst::<NoPrefetch>(
            rules,
            &self.screens,
            &slices,
            ingress,
            now,
            &mut out,
            waiting,
        );
        let mut all: Vec<Decided> = out[..done]
            .iter()
            .map(|d| decided(&self.worker, *d))
            .collect();
        let mut resumed = Vec::new();
        for (f, d) in frames.iter().zip(&out).take(done) {
            self.act(rules, f, d, ingress, now, &mut resumed);
        }
        let (rest, more) = self.one_by_one(rules, &frames[done..], ingress, now);
        all.extend(rest);
        resumed.extend(more);
        (all, resumed)
    }
}

/// A generated packet: its kind, flow, which frame of it, byte edits.
type PacketSpec = (u8, u8, usize, Vec<(u16, u8)>);

fn run(
    rules: &Ruleset,
    packets: &[PacketSpec],
    bursts: &[(usize, bool, u8)],
) -> Result<(), TestCaseError> {
    let mut reference = Driver::new(rules);
    let mut vector = Driver::new(rules);
    let mut now = 1_000_000_000u64;
    let mut at = 0;
    let mut b = 0;
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
        let (r, r_resumed) = reference.one_by_one(rules, &frames, ingress, now);
        let (v, v_resumed) = vector.burst(rules, &frames, ingress, now);
        prop_assert_eq!(r.len(), v.len());
        for (r, v) in r.iter().zip(&v) {
            same(r, v)?;
        }
        prop_assert_eq!(r_resumed.len(), v_resumed.len());
        for (r, v) in r_resumed.iter().zip(&v_resumed) {
            same(r, v)?;
        }
    }
    let (r, v) = (&reference.worker, &vector.worker);
    prop_assert_eq!(format!("{:?}", r.counters), format!("{:?}", v.counters));
    prop_assert_eq!(r.sessions.open(), v.sessions.open());
    // Session by session: the same flows, counters, state and ids.
    let sessions = |w: &Worker| w.sessions.iter().map(|(_, s)| *s).collect::<Vec<_>>();
    prop_assert_eq!(sessions(r), sessions(v));
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
    let frames = [syn.as_slice(), again.as_slice(), other.as_slice()];
    let done = w.process_burst::<NoPrefetch>(&rules, &screens, &frames, 0, 1, &mut out, false);
    assert_eq!(done, 3);
    use rampart_pipeline::engine::Reason;
    assert_eq!(out[0].reason, Reason::PolicyPermit);
    assert_eq!(out[1].reason, Reason::Session, "{:?}", out[1]);
    assert_eq!(out[2].reason, Reason::PolicyPermit);
    assert_eq!(w.counters.sessions_created, 2);
    assert_eq!(w.sessions.len(), 2);
}

/// A fragment that came ahead of its first fragment is decided right
/// after that first fragment, before the packets behind it in the burst
/// (held in the same burst, or in an earlier one).
#[test]
fn a_first_fragment_releases_held_fragments_before_the_rest_of_its_burst() {
    use rampart_pipeline::engine::Reason;
    use rampart_pipeline::wire::build::L4;
    let rules = demo_rules(true);
    let (c, s) = (v4(192, 0, 2, 120), v4(10, 1, 0, 53));
    let frag = |id: u32, offset: u16, l4: L4<'_>, len: usize| {
        traffic::fragment(c, s, id, offset, offset == 0, l4, &vec![9; len])
    };
    let raw = L4::Raw {
        protocol: rampart_pipeline::flow::proto::UDP,
    };
    let dns = traffic::udp(c, s, 5353, 53, &[1; 20]);
    let other = traffic::udp(c, s, 5354, 53, &[1; 20]);
    // Held and released in one burst; then held in one burst and
    // released in the next.
    let bursts = [
        vec![
            frag(7, 40, raw, 24),
            frag(7, 0, L4::udp(5353, 53), 32),
            dns.clone(),
        ],
        vec![frag(8, 40, raw, 24)],
        vec![other, frag(8, 0, L4::udp(5353, 53), 32), dns],
    ];
    let mut reference = Driver::new(&rules);
    let mut vector = Driver::new(&rules);
    for (k, frames) in bursts.iter().enumerate() {
        let now = 1_000_000_000 + k as u64;
        let (r, r_resumed) = reference.one_by_one(&rules, frames, 0, now);
        let (v, v_resumed) = vector.burst(&rules, frames, 0, now);
        for (r, v) in r.iter().zip(&v).chain(r_resumed.iter().zip(&v_resumed)) {
            same(r, v).unwrap();
        }
        assert_eq!(r_resumed.len(), v_resumed.len());
        if k != 1 {
            assert_eq!(v_resumed.len(), 1, "burst {k}");
            assert_eq!(v_resumed[0].0.reason, Reason::Session, "burst {k}");
        }
    }
    let (r, v) = (&reference.worker.counters, &vector.worker.counters);
    assert_eq!(format!("{r:?}"), format!("{v:?}"));
    assert_eq!(v.fragments_held, 2);
}
