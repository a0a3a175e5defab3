//! `pipeline`: a sequence of arbitrary frames through the whole engine
//! (`Worker::process`: parse, input filter, fragments, screen, sessions,
//! policy, output filter), `build_reject` for rejected packets, session
//! aging and a final `close_all`, on one of two compiled rulesets: the demo
//! config (`src/demo.toml`) and `pipeline/tests/config/full.toml` with a
//! tiny session table, short timeouts, no SYN check and malformed frames
//! forwarded, so tables fill, sessions age and every stage is reached.
//!
//! Packets take the dataplane's path, `process_burst` (a burst of one:
//! steps differ in worker, ingress and time; bursts of many are held to
//! the reference path by `pipeline/tests/vector.rs`), into one `Decision`
//! reused for every packet (stale fields would show); stage timing is on
//! for some inputs.
//!
//! Input: byte 0 picks the ruleset (bit 0) and stage timing (bit 1); then
//! records of
//! `[ctl, dt_lo, dt_hi, len_lo, len_hi, frame...]` (see [`Step`]). Checks
//! cheap invariants after every packet: counters balance, the session table
//! stays within capacity, every id a decision carries resolves to a name.

use std::sync::{Arc, OnceLock};

use rampart_pipeline::config::Config;
use rampart_pipeline::engine::{
    build_answer_to, owner_worker, Decision, Event, Ruleset, Verdict, Worker,
};
use rampart_pipeline::frag::{DatagramKey, FragHold, GaveUp};
use rampart_pipeline::screen::ScreenState;
use rampart_pipeline::session::CloseReason;
use rampart_pipeline::wire::{self, Parsed};

pub const DEMO_TOML: &str = include_str!("../../src/demo.toml");
pub const FULL_TOML: &str = include_str!("../../pipeline/tests/config/full.toml");

/// Appended to `full.toml` for the stress ruleset.
const STRESS_FLOW: &str = r#"
[flow]
tcp-syn-check = false
malformed = "forward"
mtu-exceeded = "reject"
session-capacity = 16
timeouts = { tcp-initial = 1, tcp-established = 3, tcp-closing = 1, udp = 2, icmp = 1, other = 1 }
"#;

/// Sessions per worker for the demo ruleset (its config says 262144, far
/// too many to allocate for every input).
const DEMO_SESSIONS: u32 = 512;

/// Buckets of the shared screen state (small, so tables collide).
const SCREEN_BUCKETS: usize = 256;

pub fn demo_config() -> Config {
    let text = DEMO_TOML.replace("@DIR@", "/tmp/rampart-fuzz");
    let mut c = Config::from_str_named(&text, "demo.toml").expect("the demo config loads");
    c.flow.session_capacity = DEMO_SESSIONS;
    c
}

pub fn stress_config() -> Config {
    let text = format!("{FULL_TOML}{STRESS_FLOW}");
    Config::from_str_named(&text, "full.toml").expect("the stress config loads")
}

/// The demo and stress rulesets, compiled once per process.
pub fn rulesets() -> &'static [Ruleset; 2] {
    static RULES: OnceLock<[Ruleset; 2]> = OnceLock::new();
    RULES.get_or_init(|| {
        [
            Ruleset::compile(Arc::new(demo_config()), 1),
            Ruleset::compile(Arc::new(stress_config()), 2),
        ]
    })
}

/// One packet of the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    /// Index into the config's interfaces (taken modulo their number).
    pub ingress: u8,
    /// Worker when the frame has no owner by address hash.
    pub worker: u8,
    /// Age sessions (full sweep) before the packet.
    pub expire: bool,
    /// The clock goes back by `dt_ns` instead of forward (capture
    /// timestamps in `rampart trace` can).
    pub backwards: bool,
    pub dt_ns: u64,
}

/// `dt` units by the 3-bit scale of the control byte.
const SCALE_NS: [u64; 8] = [
    1,
    1_000,
    1_000_000,
    100_000_000,
    1_000_000_000,
    10_000_000_000,
    100_000_000_000,
    1_000_000_000_000,
];

impl Step {
    /// Control byte: bits 0-1 ingress, 2 worker, 3 expire, 4 backwards,
    /// 5-7 scale of dt.
    pub fn decode(ctl: u8, dt: u16) -> Step {
        Step {
            ingress: ctl & 3,
            worker: (ctl >> 2) & 1,
            expire: ctl & 8 != 0,
            backwards: ctl & 16 != 0,
            dt_ns: u64::from(dt) * SCALE_NS[usize::from(ctl >> 5)],
        }
    }

    /// The record for `frame` entering `ingress` `dt_us` microseconds after
    /// the previous one (seed generation).
    pub fn encode(ingress: u8, dt_us: u16, frame: &[u8], out: &mut Vec<u8>) {
        out.push((ingress & 3) | (1 << 5));
        out.extend_from_slice(&dt_us.to_le_bytes());
        out.extend_from_slice(&(frame.len() as u16).to_le_bytes());
        out.extend_from_slice(frame);
    }
}

/// Splits the input into steps and frames; a short last frame is cut.
pub fn steps(mut data: &[u8]) -> impl Iterator<Item = (Step, &[u8])> {
    std::iter::from_fn(move || {
        let (hdr, rest) = data.split_first_chunk::<5>()?;
        let step = Step::decode(hdr[0], u16::from_le_bytes([hdr[1], hdr[2]]));
        let len = usize::from(u16::from_le_bytes([hdr[3], hdr[4]])).min(rest.len());
        let (frame, rest) = rest.split_at(len);
        data = rest;
        Some((step, frame))
    })
}

pub fn pipeline(data: &[u8]) {
    let Some((&which, data)) = data.split_first() else {
        return;
    };
    let rules = &rulesets()[usize::from(which & 1)];
    let config = &rules.config;
    let screens = ScreenState::new(SCREEN_BUCKETS);
    let nworkers = usize::from(config.dataplane.workers.clamp(1, 2));
    // Made when a packet first reaches them: a worker's fragment table is
    // half a megabyte, the largest cost of a short input.
    let mut workers: Vec<Option<Worker>> = (0..nworkers).map(|_| None).collect();
    // Each worker's fragments ahead of their first fragment (small, so
    // the hold fills and gives up).
    let mut holds: Vec<FragHold<Vec<u8>>> = (0..nworkers).map(|_| FragHold::new(3)).collect();
    let timed = which & 2 != 0;
    let mut d = Decision::BLANK;
    let capacity = config.flow.session_capacity as usize;
    let mut now: u64 = 1_700_000_000_000_000_000;
    let mut events = 0usize;
    let mut answer = [0u8; 1600];
    for (step, frame) in steps(data) {
        now = if step.backwards {
            now.saturating_sub(step.dt_ns)
        } else {
            now.saturating_add(step.dt_ns)
        };
        let ingress = usize::from(step.ingress) % config.interfaces.len();
        let w = owner_worker(frame, nworkers).unwrap_or(usize::from(step.worker) % nworkers);
        assert!(w < nworkers);
        let worker = workers[w].get_or_insert_with(|| {
            let mut worker = Worker::new(w as u16, rules);
            if timed {
                worker.measure_stages(fake_cycles);
            }
            worker
        });
        let held = &mut holds[w];
        if step.expire {
            worker.expire(rules, &screens, now, usize::MAX, &mut |e| {
                check_event(rules, &e);
                events += 1;
            });
            while held.take_expired(now).is_some() {
                worker.give_up_held(GaveUp::Timeout);
            }
        }
        worker.process_burst::<rampart_pipeline::vector::NoPrefetch>(
            rules,
            &screens,
            &[frame],
            ingress as u16,
            now,
            std::slice::from_mut(&mut d),
            !held.is_empty(),
        );
        let _ = worker.stage_cycles();

        // Names for everything the decision refers to (trace and the
        // event export look them up by index).
        let _ = rules.policy_name(d.rule);
        assert!(usize::from(d.ingress) < config.interfaces.len());
        assert!(usize::from(d.from_zone) < config.zones.len());
        if let Some(z) = d.to_zone {
            assert!(usize::from(z) < config.zones.len());
        }
        for e in worker.events(&d) {
            check_event(rules, &e);
            events += 1;
        }
        let _ = (d.stage.name(), d.reason.name(), d.verdict.name());
        match d.verdict {
            Verdict::Forward { egress } => {
                assert!(usize::from(egress) < config.interfaces.len());
                assert_eq!(d.egress, Some(egress));
            }
            Verdict::Reject => {
                if let Some(n) = build_answer_to(rules, &d, frame, &mut answer) {
                    assert!(n <= answer.len());
                    assert!(
                        matches!(wire::parse(&answer[..n]), Ok(Parsed::Ip(_))),
                        "a reject answer that does not parse"
                    );
                }
            }
            Verdict::Drop => {}
            Verdict::Hold => {
                let p = d.packet.expect("only a parsed fragment is held");
                assert!(p.frag.is_fragment && !p.frag.is_first_fragment);
                if held.hold(frame.to_vec(), ingress as u16, &p, now).is_some() {
                    worker.give_up_held(GaveUp::HoldFull);
                }
            }
        }
        if let Some(first) = d.packet.filter(|p| p.frag.is_first_fragment) {
            let mut resumed = Decision::BLANK;
            while let Some((f, port)) = held.take_released(DatagramKey::of(&first)) {
                worker.resume_held(rules, &screens, &f, port, now, &mut resumed);
                assert_ne!(resumed.verdict, Verdict::Hold, "a resumed fragment is decided");
                for e in worker.events(&resumed) {
                    check_event(rules, &e);
                    events += 1;
                }
            }
        }
        // Nothing of the previous packet is left in the reused decision.
        assert_eq!(usize::from(d.ingress), ingress);
        match wire::parse(frame) {
            Ok(Parsed::Ip(p)) => assert_eq!(d.packet, Some(p)),
            _ => assert_eq!(d.packet, None),
        }

        let c = &worker.counters;
        assert_eq!(
            c.packets,
            c.forwarded + c.dropped.iter().sum::<u64>() + held.len() as u64,
            "every packet is forwarded, dropped or held, once"
        );
        assert!(
            worker.sessions.len() <= capacity,
            "session table over capacity"
        );
    }
    for worker in workers.iter_mut().flatten() {
        worker.close_all(rules, &screens, CloseReason::Shutdown, now, &mut |e| {
            check_event(rules, &e);
            events += 1;
        });
        assert_eq!(worker.sessions.len(), 0);
        let c = &worker.counters;
        assert!(c.sessions_closed <= c.sessions_created);
    }
    std::hint::black_box(events);
}

/// A cycle counter for stage timing: any increasing number will do.
fn fake_cycles() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static CYCLES: AtomicU64 = AtomicU64::new(0);
    CYCLES.fetch_add(7, Ordering::Relaxed)
}

/// Every id an event carries resolves in the config of its generation.
fn check_event(rules: &Ruleset, e: &Event) {
    let c = &rules.config;
    let _ = e.type_name();
    match e {
        // The default policy's id is the one after the last policy.
        Event::PolicyDeny(p) => assert!((p.policy as usize) <= c.policies.len()),
        Event::ScreenDrop(s) => assert!(usize::from(s.screen) < c.screens.len()),
        Event::FilterLog(l) => {
            let f = &c.filters[usize::from(l.filter)];
            assert!(usize::from(l.term) < f.terms.len());
        }
        Event::SessionOpen(o) => {
            assert!(o.policy == u32::MAX || (o.policy as usize) < c.policies.len());
        }
        Event::SessionClose(s) => {
            let policy = s.record.policy;
            assert!(policy == u32::MAX || (policy as usize) < c.policies.len());
            assert!(usize::from(s.from_zone) < c.zones.len());
            assert!(usize::from(s.to_zone) < c.zones.len());
            assert!(usize::from(s.ingress) < c.interfaces.len());
            assert!(usize::from(s.egress) < c.interfaces.len());
        }
    }
}
