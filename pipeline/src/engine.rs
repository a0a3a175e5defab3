//! The firewall pipeline for one packet, in Junos SRX order: parse, input
//! filter, screen, session lookup, (miss) policy and session creation,
//! output filter. Sans-IO: it reads a frame, the time `now_ns` and the
//! ingress interface, and returns a [`Decision`] the caller acts on (the
//! DPDK worker, or `rampart trace` offline). Nothing here allocates.

use crate::config::{FilterAction, PolicyAction};
pub use crate::decision::*;
use crate::filter::{self, FilterOutcome};
use crate::flow::{proto, Addr, FlowKey};
use crate::frag::FragTable;
use crate::policy::PolicyMatch;
pub use crate::ruleset::*;
use crate::screen::{self, ScreenOption, ScreenProfile, ScreenState};
use crate::session::{
    CloseReason, Direction, Session, SessionHandle, SessionMeta, SessionTable, TcpState,
};
use crate::tcp_window::Segment;
use crate::wire::{self, Malformed, Parsed, ParsedPacket, TcpFlags};
pub use rampart_vocab::WorkerStage;

/// Per-worker counters; plain integers, the caller publishes them.
#[derive(Clone, Debug, Default)]
pub struct Counters {
    pub packets: u64,
    pub forwarded: u64,
    /// Packets dropped, by reason.
    pub dropped: [u64; DropReason::COUNT],
    pub malformed: [u64; Malformed::COUNT],
    pub screen: [u64; ScreenOption::COUNT],
    pub non_ip: u64,
    /// IPv6 neighbour discovery and multicast listener messages passed.
    pub neighbor_discovery: u64,
    /// ICMP errors passed because the flow they quote has a session.
    pub related_icmp: u64,
    /// Sessions of ended TCP connections replaced by a new connection's SYN.
    pub sessions_reopened: u64,
    /// Sessions an operator ended (`rampart sessions clear`).
    pub sessions_cleared: u64,
    /// RSTs inside the window but not at the expected sequence number:
    /// forwarded for the endpoint to challenge, the session kept.
    pub tcp_rst_unconfirmed: u64,
    /// Fragments held because they arrived before their first fragment.
    pub fragments_held: u64,
    /// Packets an audit-mode policy would have dropped (let through).
    pub policy_audit: u64,
    pub sessions_created: u64,
    pub sessions_closed: u64,
}

/// Cycles spent per stage (a cycle counter the caller supplies), like the
/// per-node clocks of VPP's `show runtime`: each stage of
/// [`Worker::process_burst`] is timed once per burst, over every packet
/// of it, so cycles per packet of a stage = `cycles[stage] / samples`
/// (`samples`: the packets of the timed bursts).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StageCycles {
    /// By [`Stage::index`].
    pub cycles: [u64; Stage::COUNT],
    pub samples: u64,
}

/// One packet as the screen and flow stages read it: the rules and the
/// shared screen state it is judged by, its frame and what was parsed of
/// it, where it came in and when.
#[derive(Clone, Copy)]
pub(crate) struct Arrival<'a> {
    pub rules: &'a Ruleset,
    pub screens: &'a ScreenState,
    pub frame: &'a [u8],
    pub pkt: &'a ParsedPacket,
    pub ingress: u16,
    pub now_ns: u64,
}

/// Where a packet without a session would go: its egress interface, the
/// zone pair, and the ingress zone's screen profile (session limits).
#[derive(Clone, Copy)]
pub(crate) struct FlowPath<'a> {
    egress: u16,
    from_zone: u16,
    to_zone: u16,
    profile: Option<&'a ScreenProfile>,
}

/// What the policy stage decided for a first packet.
#[derive(Clone, Copy)]
pub(crate) struct PolicyOutcome {
    action: PolicyAction,
    /// Log a deny or reject.
    log_deny: bool,
    /// Which session records a permit logs.
    log: crate::config::PolicyLog,
    /// `None`: the default policy.
    policy: Option<u32>,
}

/// Lookups a burst made ahead for one packet, still valid when its flow
/// is decided (see [`crate::vector`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct FlowHints {
    /// The session lookup of the packet's flow key, when made.
    pub session: Option<Option<(SessionHandle, Direction)>>,
    /// The zone pair's policy for the packet, when looked up.
    pub policy: Option<PolicyMatch>,
}

impl FlowHints {
    pub const NONE: FlowHints = FlowHints {
        session: None,
        policy: None,
    };
}

/// One worker's mutable pipeline state: its sessions and fragments.
pub struct Worker {
    pub sessions: SessionTable,
    frags: FragTable,
    pub counters: Counters,
    /// This worker's row in [`RuleHits`].
    pub(crate) index: usize,
    /// The cycle counter that times stages, when measuring.
    pub(crate) clock: Option<fn() -> u64>,
    pub(crate) stage_totals: StageCycles,
    /// Per-packet metadata of the burst being decided.
    pub(crate) burst: Box<crate::burst::BurstMeta>,
    /// The session closes of the latest decisions ([`Worker::events`]).
    closes: CloseLog,
}

/// Fragments tracked per worker.
const FRAG_SLOTS: usize = 4096;

impl Worker {
    pub fn new(worker: u16, rules: &Ruleset) -> Worker {
        Worker {
            sessions: SessionTable::new(
                rules.config.flow.session_capacity as usize,
                worker,
                rules.timeouts,
            ),
            frags: FragTable::new(FRAG_SLOTS),
            counters: Counters::default(),
            index: worker as usize,
            clock: None,
            stage_totals: StageCycles::default(),
            burst: Box::default(),
            closes: CloseLog::new(),
        }
    }

    /// The events of decision `d`, as the worker exports them: built from
    /// what the decision recorded, a session close from this worker's
    /// [`CloseLog`]. Read them before the worker decides another burst: a
    /// close the log no longer holds is left out (the DPDK worker exports
    /// every decision right after it is made, so it never meets one; the
    /// vector property test checks the events against
    /// [`Decision::event_types`]).
    pub fn events<'a>(&'a self, d: &'a Decision) -> impl Iterator<Item = Event> + 'a {
        d.events[..d.event_count()]
            .iter()
            .flatten()
            .filter_map(|e| {
                let event = e.map_close(|r| self.closes.get(r).copied());
                debug_assert!(event.is_some(), "a close read after the log moved on");
                event
            })
    }

    /// Switches to a new config generation between bursts: its flow
    /// timeouts apply from now on, to the sessions already open too (see
    /// [`SessionTable::set_timeouts`]). Sessions, fragments and counters
    /// stay. No allocation.
    pub fn adopt(&mut self, rules: &Ruleset) {
        self.sessions.set_timeouts(rules.timeouts);
    }

    /// The oldest config generation this worker's events may still name:
    /// that of its oldest session, or `rules`' (the one it runs) when it
    /// holds none older. Names of older generations are no longer needed.
    pub fn oldest_generation(&self, rules: &Ruleset) -> u32 {
        self.sessions
            .oldest_generation()
            .map_or(rules.generation, |g| g.min(rules.generation))
    }

    /// Times every stage of [`Worker::process_burst`] per burst with
    /// `clock` (a cycle counter, e.g. the TSC). The pipeline stays free of
    /// clocks otherwise.
    pub fn measure_stages(&mut self, clock: fn() -> u64) {
        self.clock = Some(clock);
    }

    /// Per-stage cycles so far (zero when not measuring).
    pub fn stage_cycles(&self) -> StageCycles {
        self.stage_totals
    }

    /// Runs one frame through the pipeline.
    pub fn process(
        &mut self,
        rules: &Ruleset,
        screens: &ScreenState,
        frame: &[u8],
        ingress: u16,
        now_ns: u64,
    ) -> Decision {
        let mut d = Decision::BLANK;
        self.process_into(rules, screens, frame, ingress, now_ns, &mut d);
        d
    }

    /// [`Worker::process`] writing into a decision the caller reuses, so
    /// the decision is never moved. The reference path: one packet through
    /// every stage; [`Worker::process_burst`] decides the same way a burst
    /// at a time.
    pub fn process_into(
        &mut self,
        rules: &Ruleset,
        screens: &ScreenState,
        frame: &[u8],
        ingress: u16,
        now_ns: u64,
        d: &mut Decision,
    ) {
        let Some(pkt) = self.admit(rules, wire::parse(frame), frame.len(), ingress, d) else {
            return;
        };
        if self.filter_input(rules, ingress, &pkt, d) {
            return;
        }
        let p = Arrival {
            rules,
            screens,
            frame,
            pkt: &pkt,
            ingress,
            now_ns,
        };
        let Some(key) = self.screen(p, d) else {
            return;
        };
        if let Some((egress, reason)) = self.decide_flow(p, key, FlowHints::NONE, d) {
            self.output(rules, d, egress, &pkt, reason);
        }
    }

    /// Counts a packet in and starts its decision: `Some` for an IP packet
    /// that goes on; non-IP frames and malformed ones are decided here.
    #[inline(always)]
    pub(crate) fn admit(
        &mut self,
        rules: &Ruleset,
        parsed: Result<Parsed, Malformed>,
        frame_len: usize,
        ingress: u16,
        d: &mut Decision,
    ) -> Option<ParsedPacket> {
        self.counters.packets += 1;
        begin(rules, ingress, d);
        let l2_len = match &parsed {
            Ok(p) => p.l2().l3_offset,
            Err(_) => wire::ethernet::HEADER_LEN as u16,
        };
        d.l3_len = frame_len.saturating_sub(usize::from(l2_len)) as u32;
        match parsed {
            Ok(Parsed::Ip(p)) => {
                d.packet = Some(p);
                Some(p)
            }
            Ok(Parsed::NonIp(_)) => {
                self.counters.non_ip += 1;
                self.forward(rules, d, Reason::NonIp);
                None
            }
            Err(m) => {
                self.counters.malformed[m as usize] += 1;
                if rules.config.flow.malformed_forward {
                    self.forward(rules, d, Reason::MalformedForwarded(m));
                } else {
                    self.drop(d, Stage::Parse, Reason::Malformed(m), Verdict::Drop);
                }
                None
            }
        }
    }

    /// The ingress interface's input filter; true if it decided the packet.
    #[inline(always)]
    pub(crate) fn filter_input(
        &mut self,
        rules: &Ruleset,
        ingress: u16,
        pkt: &ParsedPacket,
        d: &mut Decision,
    ) -> bool {
        match rules.ports[ingress as usize].input_filter {
            Some(f) => self.run_filter(rules, d, f, pkt, FilterDirection::Input),
            None => false,
        }
    }

    /// Fragments (overlap detection, the first fragment's ports for the
    /// ones that follow) and the ingress zone's screen. `Some(key)`: the
    /// flow key the packet goes on with; `None`: decided here (dropped by
    /// a screen, or held until its first fragment comes).
    #[inline(always)]
    pub(crate) fn screen(&mut self, p: Arrival, d: &mut Decision) -> Option<FlowKey> {
        let Arrival {
            rules,
            screens,
            frame,
            pkt,
            ingress,
            now_ns,
        } = p;
        let port = rules.ports[ingress as usize];
        let mut key = pkt.flow_key();
        let mut overlap = false;
        let mut ports_unknown = false;
        if pkt.frag.is_fragment {
            let view = self.frags.observe(pkt, frame, now_ns);
            overlap = view.overlap;
            match view.key {
                Some(k) => key = k,
                None => ports_unknown = pkt.is_non_first_fragment() && carries_ports(pkt),
            }
        }

        let profile = rules.zone_screen[port.zone as usize].map(|p| &rules.screens[p as usize]);
        if let Some(profile) = profile {
            if let Some(hit) = screen::check(profile, screens, pkt, overlap, now_ns) {
                self.counters.screen[hit.option as usize] += 1;
                d.push(Event::ScreenDrop(ScreenDrop {
                    screen: profile.id,
                    option: hit.option,
                    alarm_only: hit.alarm_only,
                }));
                if !hit.alarm_only {
                    d.rule = RuleRef::Screen {
                        profile: profile.id,
                    };
                    self.drop(d, Stage::Screen, Reason::Screen(hit.option), Verdict::Drop);
                    return None;
                }
            }
        }

        // Reordered: the first fragment has not told the ports yet.
        if ports_unknown {
            self.counters.fragments_held += 1;
            d.verdict = Verdict::Hold;
            d.stage = Stage::Screen;
            d.reason = Reason::FragmentHeld;
            return None;
        }
        Some(key)
    }

    /// Runs a fragment held with [`Verdict::Hold`] again, now that its
    /// first fragment has been decided (or, if that never came, with what
    /// is known: no ports). It was counted, filtered and screened when it
    /// arrived; this decides its flow.
    pub fn resume_held(
        &mut self,
        rules: &Ruleset,
        screens: &ScreenState,
        frame: &[u8],
        ingress: u16,
        now_ns: u64,
        d: &mut Decision,
    ) {
        begin(rules, ingress, d);
        let Ok(Parsed::Ip(pkt)) = wire::parse(frame) else {
            // It parsed when it was held; a frame does not change.
            return self.drop(d, Stage::Parse, Reason::FragmentTimeout, Verdict::Drop);
        };
        d.packet = Some(pkt);
        d.l3_len = frame.len().saturating_sub(pkt.l3_offset()) as u32;
        let key = self
            .frags
            .key_of(&pkt, now_ns)
            .unwrap_or_else(|| pkt.flow_key());
        let p = Arrival {
            rules,
            screens,
            frame,
            pkt: &pkt,
            ingress,
            now_ns,
        };
        if let Some((egress, reason)) = self.decide_flow(p, key, FlowHints::NONE, d) {
            self.output(rules, d, egress, &pkt, reason);
        }
    }

    /// Counts a held fragment given up without a decision (see
    /// [`crate::frag::GaveUp`]) as a drop.
    pub fn give_up_held(&mut self, why: crate::frag::GaveUp) -> Reason {
        let (reason, counter) = match why {
            crate::frag::GaveUp::Timeout => (Reason::FragmentTimeout, DropReason::FragmentTimeout),
            crate::frag::GaveUp::HoldFull => {
                (Reason::FragmentHoldFull, DropReason::FragmentHoldFull)
            }
        };
        self.counters.dropped[counter.index()] += 1;
        reason
    }

    /// The stages from the session on: egress, neighbour discovery, the
    /// session table, related ICMP errors, policy. `Some((egress, reason))`:
    /// the packet goes to the output filter (the caller runs
    /// [`Worker::output`]); `None`: decided here. `hints` are lookups a
    /// burst made ahead, still valid (see [`FlowHints`]).
    #[inline(always)]
    pub(crate) fn decide_flow(
        &mut self,
        p: Arrival,
        key: FlowKey,
        hints: FlowHints,
        d: &mut Decision,
    ) -> Option<(u16, Reason)> {
        let Arrival {
            rules,
            screens,
            frame,
            pkt,
            ingress,
            now_ns,
        } = p;
        let port = rules.ports[ingress as usize];
        let profile = rules.zone_screen[port.zone as usize].map(|p| &rules.screens[p as usize]);
        let Some(egress) = port.peer else {
            self.drop(d, Stage::Session, Reason::NoEgress, Verdict::Drop);
            return None;
        };
        let to_zone = rules.ports[egress as usize].zone;

        if rules.config.flow.ipv6_nd_permit && crate::wire::link_control::is_valid(frame, pkt) {
            self.counters.neighbor_discovery += 1;
            d.stage = Stage::Policy;
            return Some((egress, Reason::NeighborDiscovery));
        }

        let mut hit = match hints.session {
            Some(found) => found,
            None => self.sessions.lookup(&key),
        };
        if let Some(found) = hit {
            if starts_exchange(pkt) {
                hit = self.end_for_new_connection(rules, screens, found, now_ns, d);
            }
        }
        let seg = tcp_segment(rules, frame, pkt);
        if let Some((handle, dir)) = hit {
            return self.established(p, handle, dir, seg, egress, d);
        }

        // An ICMP error about a flow with a session belongs to it, whichever
        // side (or router on the path) sends it; one about no session goes
        // through policy like any ICMP.
        if let Some(quoted) = crate::wire::related::quoted_flow(frame, pkt) {
            if let Some((handle, _)) = self.sessions.lookup(&quoted) {
                self.counters.related_icmp += 1;
                d.stage = Stage::Session;
                d.rule = rules.policy_rule(self.sessions.get_policy(handle));
                return Some((egress, Reason::RelatedIcmp));
            }
        }

        if fails_syn_check(rules, pkt) {
            self.drop(d, Stage::Session, Reason::TcpSynCheck, Verdict::Drop);
            return None;
        }

        let path = FlowPath {
            egress,
            from_zone: port.zone,
            to_zone,
            profile,
        };
        let verdict = self.match_policy(p, path, hints.policy, d);
        self.first_packet(p, key, seg, path, verdict, d)
    }

    /// A packet of a session: its state (TCP window, close), and the
    /// policy that opened it as the rule.
    #[inline(always)]
    fn established(
        &mut self,
        p: Arrival,
        handle: SessionHandle,
        dir: Direction,
        seg: Segment,
        egress: u16,
        d: &mut Decision,
    ) -> Option<(u16, Reason)> {
        let Arrival {
            rules,
            screens,
            pkt,
            now_ns,
            ..
        } = p;
        let update = self
            .sessions
            .update(handle, dir, pkt.ip_total_len, seg, now_ns);
        d.stage = Stage::Session;
        if update.out_of_window {
            d.rule = rules.policy_rule(self.sessions.get_policy(handle));
            self.drop(d, Stage::Session, Reason::TcpOutOfWindow, Verdict::Drop);
            return None;
        }
        self.counters.tcp_rst_unconfirmed += u64::from(update.rst_unconfirmed);
        let mut closed = update.closed;
        if closed.is_none() && dir == Direction::ServerToClient && is_echo_reply(pkt) {
            // The echo is answered: the exchange is over, as an SRX
            // closes it ("response received"); a next request opens a
            // new session through policy.
            closed = self.sessions.end(handle, CloseReason::ResponseReceived);
        }
        if let Some(reason) = closed {
            let s = self.sessions.get(handle);
            // The entry lingers (closing timeout) so late segments still
            // match it; aging removes it without a second close event.
            self.close_for_packet(rules, screens, &s, reason, now_ns, d);
        }
        // Named in this generation: exact for sessions it created;
        // events name older sessions through their own generation.
        d.rule = rules.policy_rule(self.sessions.get_policy(handle));
        Some((egress, Reason::Session))
    }

    /// The zone pair's policy for a first packet (a burst looked it up
    /// ahead: `hint`), after audit-mode policies logged what they would
    /// have dropped and let it through.
    #[inline(always)]
    fn match_policy(
        &mut self,
        p: Arrival,
        path: FlowPath,
        hint: Option<PolicyMatch>,
        d: &mut Decision,
    ) -> PolicyOutcome {
        let Arrival { rules, pkt, .. } = p;
        let (from, to) = (usize::from(path.from_zone), usize::from(path.to_zone));
        let mut matched = match hint {
            Some(m) => m,
            None => rules.policies.lookup(from, to, pkt),
        };
        rules.hits.bump(self.index, rules.hits.policy_slot(matched));
        // Audit mode (the policy's, or its zone pair's): log what the
        // policy would drop, then go on as if it were absent (its hits
        // count the packets it audited).
        let pair_audit = rules.audit_pairs[from * rules.config.zones.len() + to];
        while let PolicyMatch::Rule(id) = matched {
            let verdict = rules.verdicts[id as usize];
            if !(verdict.audit || pair_audit && verdict.action != PolicyAction::Permit) {
                break;
            }
            self.counters.policy_audit += 1;
            d.push(Event::PolicyDeny(PolicyDeny {
                policy: id,
                reject: verdict.action == PolicyAction::Reject,
                audit: true,
                session_id: self.sessions.next_id(),
                application: matched_application(rules, Some(id), pkt),
            }));
            matched = rules.policies.lookup_after(from, to, pkt, id);
            rules.hits.bump(self.index, rules.hits.policy_slot(matched));
        }
        let (action, log_deny, log, policy) = match matched {
            PolicyMatch::Rule(id) => {
                let PolicyVerdict { action, log, .. } = rules.verdicts[id as usize];
                d.rule = RuleRef::Policy(id);
                (action, log.session_init || log.session_close, log, Some(id))
            }
            PolicyMatch::Default => {
                d.rule = RuleRef::DefaultPolicy;
                let dp = rules.config.default_policy;
                if pair_audit && dp.action != PolicyAction::Permit {
                    // An audited pair drops nothing: what the default
                    // policy would drop is logged and let through.
                    self.counters.policy_audit += 1;
                    d.push(Event::PolicyDeny(PolicyDeny {
                        policy: rules.default_policy_id(),
                        reject: dp.action == PolicyAction::Reject,
                        audit: true,
                        session_id: self.sessions.next_id(),
                        application: matched_application(rules, None, pkt),
                    }));
                    (
                        PolicyAction::Permit,
                        false,
                        crate::config::PolicyLog::default(),
                        None,
                    )
                } else {
                    (dp.action, dp.log, crate::config::PolicyLog::default(), None)
                }
            }
        };
        PolicyOutcome {
            action,
            log_deny,
            log,
            policy,
        }
    }

    /// A first packet's verdict: denied or rejected (logged as its policy
    /// says), or permitted and its session opened (unless a session limit
    /// screen drops it).
    #[inline(always)]
    fn first_packet(
        &mut self,
        p: Arrival,
        key: FlowKey,
        seg: Segment,
        path: FlowPath,
        verdict: PolicyOutcome,
        d: &mut Decision,
    ) -> Option<(u16, Reason)> {
        let Arrival {
            rules,
            screens,
            pkt,
            ingress,
            now_ns,
            ..
        } = p;
        let FlowPath {
            egress,
            from_zone,
            to_zone,
            profile,
        } = path;
        let PolicyOutcome {
            action,
            log_deny,
            log,
            policy: policy_id,
        } = verdict;
        match action {
            PolicyAction::Deny | PolicyAction::Reject => {
                let reject = action == PolicyAction::Reject;
                if log_deny {
                    d.push(Event::PolicyDeny(PolicyDeny {
                        policy: policy_id.unwrap_or(rules.default_policy_id()),
                        reject,
                        audit: false,
                        session_id: self.sessions.next_id(),
                        application: matched_application(rules, policy_id, pkt),
                    }));
                }
                let (reason, verdict) = if reject {
                    (Reason::PolicyReject, Verdict::Reject)
                } else {
                    (Reason::PolicyDeny, Verdict::Drop)
                };
                self.drop(d, Stage::Policy, reason, verdict);
                None
            }
            PolicyAction::Permit => {
                if let Some(profile) = profile {
                    if let Some(hit) = screen::session_limit_hit(profile, screens, key.src, key.dst)
                    {
                        self.counters.screen[hit.option as usize] += 1;
                        d.push(Event::ScreenDrop(ScreenDrop {
                            screen: profile.id,
                            option: hit.option,
                            alarm_only: hit.alarm_only,
                        }));
                        if !hit.alarm_only {
                            d.rule = RuleRef::Screen {
                                profile: profile.id,
                            };
                            self.drop(d, Stage::Screen, Reason::Screen(hit.option), Verdict::Drop);
                            return None;
                        }
                    }
                }
                let meta = SessionMeta {
                    policy: policy_id.unwrap_or(rules.default_policy_id()),
                    generation: rules.generation,
                    from_zone,
                    to_zone,
                    ingress,
                    egress,
                    screen_profile: profile.map(|p| p.id),
                    log_close: log.session_close,
                    application: if log.session_init || log.session_close {
                        matched_application(rules, policy_id, pkt)
                    } else {
                        NO_APPLICATION
                    },
                };
                match self.sessions.insert(key, meta, now_ns) {
                    Ok(handle) => {
                        self.sessions.update(
                            handle,
                            Direction::ClientToServer,
                            pkt.ip_total_len,
                            seg,
                            now_ns,
                        );
                        self.counters.sessions_created += 1;
                        if let Some(profile) = profile {
                            screen::session_opened(profile, screens, key.src, key.dst);
                        }
                        if log.session_init {
                            d.push(Event::SessionOpen(SessionOpen {
                                session_id: self.sessions.get(handle).id,
                                policy: meta.policy,
                                application: meta.application,
                            }));
                        }
                        d.stage = Stage::Policy;
                        Some((egress, Reason::PolicyPermit))
                    }
                    Err(_) => {
                        self.drop(d, Stage::Session, Reason::SessionTableFull, Verdict::Drop);
                        None
                    }
                }
            }
        }
    }

    /// Ages out idle sessions, visiting at most `budget` table slots (the
    /// worker calls this every loop with a small budget; `trace` with all).
    pub fn expire(
        &mut self,
        rules: &Ruleset,
        screens: &ScreenState,
        now_ns: u64,
        budget: usize,
        emit: &mut impl FnMut(Event),
    ) {
        // Chunks whose closed sessions fit a stack array.
        const CHUNK: usize = 32;
        let mut left = budget.min(self.sessions.capacity());
        while left > 0 {
            let step = left.min(CHUNK);
            left -= step;
            let mut closed = [None; CHUNK];
            let mut n = 0;
            self.sessions
                .expire(now_ns, step, &mut |s: &Session, reason: CloseReason| {
                    closed[n] = Some((*s, reason));
                    n += 1;
                });
            for (s, reason) in closed.iter().take(n).flatten() {
                if let Some(c) = self.close_session(rules, screens, s, *reason, now_ns) {
                    emit(Event::SessionClose(c));
                }
            }
        }
    }

    /// Closes every session (shutdown or export), emitting close events.
    pub fn close_all(
        &mut self,
        rules: &Ruleset,
        screens: &ScreenState,
        reason: CloseReason,
        now_ns: u64,
        emit: &mut impl FnMut(Event),
    ) {
        let mut all = Vec::new();
        self.sessions.drain_all(&mut |s: &Session| all.push(*s));
        for s in &all {
            if let Some(c) = self.close_session(rules, screens, s, reason, now_ns) {
                emit(Event::SessionClose(c));
            }
        }
    }

    /// Ends session `id` of `key`'s flow if it is still there (an
    /// operator's `sessions clear`, between bursts): its close is reported
    /// with [`CloseReason::Cleared`] unless it had closed already, and it
    /// leaves the table at once, so the flow's next packet meets the config
    /// as a mid-stream packet does. False if it is gone or another session
    /// holds the flow now.
    pub fn clear_session(
        &mut self,
        rules: &Ruleset,
        screens: &ScreenState,
        key: &FlowKey,
        id: u64,
        now_ns: u64,
        emit: &mut impl FnMut(Event),
    ) -> bool {
        let Some(h) = self.sessions.find(key, id) else {
            return false;
        };
        let s = self.sessions.get(h);
        self.sessions.remove(h);
        self.counters.sessions_cleared += 1;
        if s.closed().is_none() {
            if let Some(c) = self.close_session(rules, screens, &s, CloseReason::Cleared, now_ns) {
                emit(Event::SessionClose(c));
            }
        }
        true
    }

    /// A SYN on the 5-tuple of a connection that has ended (RST, or both
    /// FINs seen) starts a new connection, as Junos and netfilter treat it:
    /// the old session goes (its close reported if it was not yet) and the
    /// SYN goes through policy, which opens and logs a new one. Otherwise
    /// the session stays and the SYN is one of its packets. Likewise an
    /// echo request on an answered echo's identifier.
    fn end_for_new_connection(
        &mut self,
        rules: &Ruleset,
        screens: &ScreenState,
        found: (SessionHandle, Direction),
        now_ns: u64,
        d: &mut Decision,
    ) -> Option<(SessionHandle, Direction)> {
        let s = self.sessions.get(found.0);
        let ended = match (s.closed(), s.tcp) {
            (Some(_), _) => true,
            (None, TcpState::Closing) => {
                self.close_for_packet(rules, screens, &s, CloseReason::TcpFin, now_ns, d);
                true
            }
            _ => false,
        };
        if !ended {
            return Some(found);
        }
        self.sessions.remove(found.0);
        self.counters.sessions_reopened += 1;
        None
    }

    /// Counts a session closed and tells its screen; the close record,
    /// if the session logs its close.
    fn close_session(
        &mut self,
        rules: &Ruleset,
        screens: &ScreenState,
        s: &Session,
        reason: CloseReason,
        now_ns: u64,
    ) -> Option<SessionClosed> {
        self.counters.sessions_closed += 1;
        if let Some(p) = s
            .meta
            .screen_profile
            .and_then(|p| rules.screens.get(p as usize))
        {
            let key = s.key();
            screen::session_closed(p, screens, key.src, key.dst);
        }
        s.meta.log_close.then(|| SessionClosed {
            record: SessionClose {
                session_id: s.id,
                policy: s.meta.policy,
                reason,
                packets_client: s.packets[0],
                bytes_client: s.bytes[0],
                packets_server: s.packets[1],
                bytes_server: s.bytes[1],
                elapsed_ns: now_ns.saturating_sub(s.created_ns),
                session_generation: s.meta.generation,
                application: s.meta.application,
            },
            key: s.key(),
            from_zone: s.meta.from_zone,
            to_zone: s.meta.to_zone,
            ingress: s.meta.ingress,
            egress: s.meta.egress,
        })
    }

    /// Closes session `s` for the packet of decision `d`, which records
    /// the close event (if the session logs one) by its place in the log.
    fn close_for_packet(
        &mut self,
        rules: &Ruleset,
        screens: &ScreenState,
        s: &Session,
        reason: CloseReason,
        now_ns: u64,
        d: &mut Decision,
    ) {
        if let Some(c) = self.close_session(rules, screens, s, reason, now_ns) {
            d.push(Event::SessionClose(self.closes.keep(c)));
        }
    }

    fn run_filter(
        &mut self,
        rules: &Ruleset,
        d: &mut Decision,
        f: u16,
        pkt: &ParsedPacket,
        dir: FilterDirection,
    ) -> bool {
        let filter = &rules.config.filters[f as usize];
        let outcome = filter::evaluate(filter, pkt);
        rules.hits.bump(
            self.index,
            rules.hits.term_slot(f, outcome, filter.terms.len()),
        );
        let term = match outcome {
            FilterOutcome::Term(t) => Some(t),
            FilterOutcome::ImplicitDiscard => None,
        };
        let action = filter::action(filter, outcome);
        // The implicit discard at a filter's end logs nothing.
        if let Some(term) = term.filter(|&t| filter.terms[t as usize].then.log) {
            d.push(Event::FilterLog(FilterLog {
                filter: f,
                term,
                action,
                direction: dir,
            }));
        }
        let stage = match dir {
            FilterDirection::Input => Stage::FilterInput,
            FilterDirection::Output => Stage::FilterOutput,
        };
        let rule = match term {
            Some(term) => RuleRef::FilterTerm { filter: f, term },
            None => RuleRef::FilterEnd { filter: f },
        };
        let (reason, verdict) = match (action, term) {
            (FilterAction::Accept, _) => return false,
            (FilterAction::Reject, _) => (Reason::FilterReject, Verdict::Reject),
            (FilterAction::Discard, Some(_)) => (Reason::FilterDiscard, Verdict::Drop),
            (FilterAction::Discard, None) => (Reason::FilterImplicitDiscard, Verdict::Drop),
        };
        d.rule = rule;
        self.drop(d, stage, reason, verdict);
        true
    }

    /// The egress interface's output filter, then forwarding.
    pub(crate) fn output(
        &mut self,
        rules: &Ruleset,
        d: &mut Decision,
        egress: u16,
        pkt: &ParsedPacket,
        reason: Reason,
    ) {
        if let Some(f) = rules.ports[egress as usize].output_filter {
            let rule = d.rule;
            if self.run_filter(rules, d, f, pkt, FilterDirection::Output) {
                return;
            }
            d.rule = rule;
        }
        d.egress = Some(egress);
        self.forward(rules, d, reason)
    }

    /// The last check before a packet leaves: the egress port's MTU.
    fn forward(&mut self, rules: &Ruleset, d: &mut Decision, reason: Reason) {
        match d.egress {
            Some(egress) if d.l3_len > u32::from(rules.ports[egress as usize].mtu) => {
                self.too_big(rules, d)
            }
            Some(egress) => {
                self.counters.forwarded += 1;
                d.verdict = Verdict::Forward { egress };
                d.reason = reason;
            }
            None => self.drop(d, Stage::Session, Reason::NoEgress, Verdict::Drop),
        }
    }

    /// A packet larger than its egress port's MTU: dropped, and answered
    /// under `mtu-exceeded = "reject"` when its sender can use the answer
    /// (IPv4 with DF, IPv6). Out of line: the forwarding path stays short.
    #[cold]
    #[inline(never)]
    fn too_big(&mut self, rules: &Ruleset, d: &mut Decision) {
        let answer = rules.config.flow.mtu_exceeded_reject
            && d.packet
                .is_some_and(|p| p.version == wire::IpVersion::V6 || p.dont_fragment);
        let verdict = if answer {
            Verdict::Reject
        } else {
            Verdict::Drop
        };
        self.drop(d, Stage::FilterOutput, Reason::MtuExceeded, verdict)
    }

    fn drop(&mut self, d: &mut Decision, stage: Stage, reason: Reason, verdict: Verdict) {
        debug_assert!(reason.drop_reason().is_some(), "{reason:?} is not a drop");
        if let Some(r) = reason.drop_reason() {
            self.counters.dropped[r.index()] += 1;
        }
        d.verdict = verdict;
        d.stage = stage;
        d.reason = reason;
    }
}

/// No application: the default policy, or none of the policy's matched.
pub const NO_APPLICATION: u16 = NO_ID16;

/// The first of policy `policy`'s applications (an index into the config's
/// applications) that the packet matches, for the service name operators
/// see in logs; [`NO_APPLICATION`] for the default policy. Run only when an
/// event is logged.
fn matched_application(rules: &Ruleset, policy: Option<u32>, pkt: &ParsedPacket) -> u16 {
    let config = &rules.config;
    let q = crate::policy::query(pkt);
    policy
        .and_then(|id| config.policies.get(id as usize))
        .and_then(|p| {
            p.applications.iter().copied().find(|&a| {
                config.applications.get(a).is_some_and(|app| {
                    app.terms
                        .iter()
                        .any(|t| crate::classify::app_matches(t, &q))
                })
            })
        })
        .and_then(|a| u16::try_from(a).ok())
        .unwrap_or(NO_APPLICATION)
}

/// A fresh decision for a packet entering on `ingress`: dropped at parse
/// until a stage says otherwise.
#[inline(always)]
fn begin(rules: &Ruleset, ingress: u16, d: &mut Decision) {
    let port = rules.ports[ingress as usize];
    d.verdict = Verdict::Drop;
    d.stage = Stage::Parse;
    d.reason = Reason::NonIp;
    d.rule = RuleRef::None;
    d.ingress = ingress;
    d.egress = port.peer;
    d.from_zone = port.zone;
    d.to_zone = port.peer.map(|p| rules.ports[p as usize].zone);
    d.packet = None;
    d.event_count = 0;
}

/// Whether a datagram's first fragment tells ports the flow needs (TCP,
/// UDP, ICMP and ICMPv6 echo identifiers); other protocols' fragments
/// are judged as they come.
fn carries_ports(pkt: &ParsedPacket) -> bool {
    matches!(
        (pkt.protocol, pkt.version),
        (proto::TCP | proto::UDP, _)
            | (proto::ICMP, wire::IpVersion::V4)
            | (proto::ICMPV6, wire::IpVersion::V6)
    )
}

/// What the session table reads of a TCP segment: the flags, and the
/// sequence fields when `flow.tcp-sequence-check` is on and the packet
/// carries the TCP header (a first fragment does: a fragmented RST is
/// checked like any other; later fragments carry no flags).
#[inline]
fn tcp_segment(rules: &Ruleset, frame: &[u8], pkt: &ParsedPacket) -> Segment {
    if rules.config.flow.tcp_sequence_check && pkt.protocol == proto::TCP && pkt.has_l4 {
        let l4 = frame.get(usize::from(pkt.l4_offset)..pkt.ip_end());
        if let Some(seg) = l4.and_then(Segment::read) {
            return seg;
        }
    }
    pkt.tcp_flags.into()
}

/// A packet that starts a new exchange on its 5-tuple: a TCP SYN, an ICMP
/// or ICMPv6 echo request.
fn starts_exchange(pkt: &ParsedPacket) -> bool {
    match (pkt.protocol, pkt.version) {
        (proto::TCP, _) => is_initial_syn(pkt),
        (proto::ICMP, wire::IpVersion::V4) => {
            pkt.has_l4 && pkt.icmp_type == wire::icmpv4::msg_type::ECHO_REQUEST
        }
        (proto::ICMPV6, wire::IpVersion::V6) => {
            pkt.has_l4 && pkt.icmp_type == wire::icmpv6::msg_type::ECHO_REQUEST
        }
        _ => false,
    }
}

/// An ICMP or ICMPv6 echo reply.
fn is_echo_reply(pkt: &ParsedPacket) -> bool {
    pkt.has_l4
        && match (pkt.protocol, pkt.version) {
            (proto::ICMP, wire::IpVersion::V4) => {
                pkt.icmp_type == wire::icmpv4::msg_type::ECHO_REPLY
            }
            (proto::ICMPV6, wire::IpVersion::V6) => {
                pkt.icmp_type == wire::icmpv6::msg_type::ECHO_REPLY
            }
            _ => false,
        }
}

/// A TCP packet that may not open a session under `flow.tcp-syn-check`
/// (only a SYN may).
#[inline(always)]
pub(crate) fn fails_syn_check(rules: &Ruleset, pkt: &ParsedPacket) -> bool {
    rules.config.flow.tcp_syn_check && pkt.protocol == proto::TCP && !is_initial_syn(pkt)
}

/// A TCP segment that may open a session: SYN without ACK.
fn is_initial_syn(pkt: &ParsedPacket) -> bool {
    pkt.has_l4
        && pkt.tcp_flags.0 & TcpFlags::SYN.0 != 0
        && pkt.tcp_flags.0 & (TcpFlags::ACK.0 | TcpFlags::RST.0) == 0
}

/// Writes the answer to a rejected packet into `out`: a TCP RST for TCP,
/// an ICMP/ICMPv6 administratively-prohibited unreachable otherwise.
/// Returns its length, or `None` when the packet must not be answered
/// (a RST, an ICMP error, a non-first fragment).
pub fn build_reject(frame: &[u8], pkt: &ParsedPacket, out: &mut [u8]) -> Option<usize> {
    build_answer(None, frame, pkt, out)
}

/// The answer to a packet of a [`Verdict::Reject`] decision `d` made under
/// `rules`: [`build_reject`], or for a packet too large for its egress
/// port, ICMP fragmentation-needed / ICMPv6 packet-too-big with that
/// port's MTU.
pub fn build_answer_to(
    rules: &Ruleset,
    d: &Decision,
    frame: &[u8],
    out: &mut [u8],
) -> Option<usize> {
    let pkt = d.packet.as_ref()?;
    let too_big = match (d.reason, d.egress) {
        (Reason::MtuExceeded, Some(egress)) => Some(rules.ports[usize::from(egress)].mtu),
        _ => None,
    };
    build_answer(too_big, frame, pkt, out)
}

fn build_answer(
    too_big: Option<u16>,
    frame: &[u8],
    pkt: &ParsedPacket,
    out: &mut [u8],
) -> Option<usize> {
    let r = if let Some(mtu) = too_big {
        wire::build::icmp_too_big(frame, pkt, mtu, out)
    } else if pkt.protocol == proto::TCP {
        wire::build::tcp_reset(frame, pkt, out)
    } else {
        wire::build::icmp_unreachable(frame, pkt, out)
    };
    r.ok()
}

/// The worker that owns a packet when the NIC cannot steer flows
/// symmetrically: a hash of the two addresses that does not depend on
/// direction or ports, so both directions and all fragments of a flow
/// meet on one worker. `None` for frames without addresses (non-IP,
/// malformed), which any worker may handle.
pub fn owner_worker(frame: &[u8], workers: usize) -> Option<usize> {
    match wire::parse(frame) {
        Ok(Parsed::Ip(p)) => Some(symmetric_hash(p.src, p.dst) as usize % workers),
        _ => None,
    }
}

fn symmetric_hash(a: Addr, b: Addr) -> u64 {
    let x = a.0 ^ b.0;
    let h = (x as u64) ^ ((x >> 64) as u64);
    let h = h.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    h ^ (h >> 32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::policy::PolicyTable;
    use crate::traffic::{ping, tcp, tcp_seq, udp, v4, v6, Rng};
    use crate::wire::{parse, Parsed};
    use std::sync::atomic::Ordering;
    use std::sync::Arc;

    const CONFIG: &str = r#"
[[interface]]
name = "ge-0/0/0"
device = "net_null0"
zone = "untrust"
peer = "ge-0/0/1"
[[interface]]
name = "ge-0/0/1"
device = "net_null1"
zone = "trust"
peer = "ge-0/0/0"
[zone.untrust]
[zone.trust]
[address-book]
web = ["10.1.0.0/24"]
[[policy]]
name = "allow-web"
from-zone = "untrust"
to-zone = "trust"
source-address = ["any"]
destination-address = ["web"]
application = ["junos-http", "junos-dns-udp"]
then = "permit"
log = true
[[policy]]
name = "reject-telnet"
from-zone = "untrust"
to-zone = "trust"
source-address = ["any"]
destination-address = ["any"]
application = ["junos-telnet", "junos-ntp"]
then = "reject"
log = true
[default-policy]
then = "deny"
log = true
"#;

    const S: u64 = 1_000_000_000;
    const UNTRUST: u16 = 0;
    const TRUST: u16 = 1;

    fn setup(extra: &str) -> (Ruleset, ScreenState, Worker) {
        let config = Config::from_str_named(&format!("{CONFIG}{extra}"), "test").unwrap();
        let rules = Ruleset::compile(Arc::new(config), 1);
        let worker = Worker::new(0, &rules);
        (rules, ScreenState::new(1024), worker)
    }

    fn names(d: &Decision) -> Vec<&'static str> {
        d.event_types().map(EventType::name).collect()
    }

    #[test]
    fn both_directions_share_one_session_through_close_and_aging() {
        let (rules, screens, mut w) = setup("");
        let (c, s) = (v4(192, 0, 2, 1), v4(10, 1, 0, 10));
        let run = |w: &mut Worker, frame: Vec<u8>, iface, t| {
            w.process(&rules, &screens, &frame, iface, t)
        };
        let d = run(&mut w, tcp(c, s, 40000, 80, TcpFlags::SYN, &[]), UNTRUST, S);
        assert_eq!(
            (d.verdict, d.reason, names(&d)),
            (
                Verdict::Forward { egress: TRUST },
                Reason::PolicyPermit,
                vec!["session_open"]
            )
        );
        assert_eq!(d.rule, RuleRef::Policy(0));
        let d = run(
            &mut w,
            tcp(s, c, 80, 40000, TcpFlags::SYN | TcpFlags::ACK, &[]),
            TRUST,
            S + 1,
        );
        assert_eq!(
            (d.verdict, d.reason),
            (Verdict::Forward { egress: UNTRUST }, Reason::Session)
        );
        for (frame, iface) in [
            (tcp(c, s, 40000, 80, TcpFlags::ACK, &[]), UNTRUST),
            (
                tcp(c, s, 40000, 80, TcpFlags::ACK | TcpFlags::PSH, &[7; 100]),
                UNTRUST,
            ),
            (
                tcp(s, c, 80, 40000, TcpFlags::ACK | TcpFlags::PSH, &[8; 1000]),
                TRUST,
            ),
            (
                tcp(c, s, 40000, 80, TcpFlags::FIN | TcpFlags::ACK, &[]),
                UNTRUST,
            ),
            (
                tcp(s, c, 80, 40000, TcpFlags::FIN | TcpFlags::ACK, &[]),
                TRUST,
            ),
        ] {
            let d = run(&mut w, frame, iface, 2 * S);
            assert_eq!(d.reason, Reason::Session);
        }
        let d = run(
            &mut w,
            tcp(c, s, 40000, 80, TcpFlags::ACK, &[]),
            UNTRUST,
            2 * S,
        );
        let close = w.events(&d).find_map(|e| match e {
            Event::SessionClose(c) => Some(c),
            _ => None,
        });
        let close = close.expect("the last ACK closes the session");
        assert_eq!(close.record.reason, CloseReason::TcpFin);
        assert_eq!(
            (close.record.packets_client, close.record.packets_server),
            (5, 3)
        );
        assert!(close.record.bytes_server > 1000);
        // A late segment still matches the closing session...
        assert_eq!(
            run(
                &mut w,
                tcp(s, c, 80, 40000, TcpFlags::ACK, &[]),
                TRUST,
                3 * S
            )
            .reason,
            Reason::Session
        );
        // ...until it ages out, without a second close event.
        let mut events = Vec::new();
        w.expire(&rules, &screens, 10 * S, usize::MAX, &mut |e| {
            events.push(e)
        });
        assert!(events.is_empty());
        assert!(w.sessions.is_empty());
        let d = run(
            &mut w,
            tcp(s, c, 80, 40000, TcpFlags::ACK, &[]),
            TRUST,
            10 * S,
        );
        assert_eq!(
            d.reason,
            Reason::TcpSynCheck,
            "gone sessions do not pass traffic"
        );
    }

    #[test]
    fn rule_hits_count_policies_default_and_filter_terms() {
        let filter = "[[filter]]\nname = \"f\"\n[[filter.term]]\nname = \"dns\"\nfrom = { protocol = \"udp\", destination-port = \"53\" }\nthen = { action = \"accept\" }\n";
        let text = CONFIG.replace(
            "zone = \"untrust\"\npeer",
            "zone = \"untrust\"\ninput_filter = \"f\"\npeer",
        );
        let config = Config::from_str_named(&format!("{text}{filter}"), "test").unwrap();
        let rules = Ruleset::compile(Arc::new(config), 1);
        let screens = ScreenState::new(64);
        let mut w = Worker::new(0, &rules);
        let (c, s) = (v4(192, 0, 2, 1), v4(10, 1, 0, 10));
        w.process(&rules, &screens, &udp(c, s, 5000, 53, &[0; 8]), UNTRUST, S);
        w.process(&rules, &screens, &udp(c, s, 5001, 53, &[0; 8]), UNTRUST, S);
        w.process(
            &rules,
            &screens,
            &tcp(c, s, 40000, 80, TcpFlags::SYN, &[]),
            UNTRUST,
            S,
        );
        assert_eq!(
            rules.hits.policy(PolicyMatch::Rule(0)),
            2,
            "allow-web matched the two DNS flows"
        );
        assert_eq!(rules.hits.term(0, FilterOutcome::Term(0), 1), 2);
        assert_eq!(
            rules.hits.term(0, FilterOutcome::ImplicitDiscard, 1),
            1,
            "TCP hit the end of the filter"
        );
        assert_eq!(rules.hits.policy(PolicyMatch::Default), 0);
    }

    #[test]
    fn ipv6_neighbour_discovery_passes_like_arp_unless_the_config_says_policy() {
        use crate::traffic::router_solicitation;
        use crate::traffic::{icmpv6_link, neighbor_advertisement, neighbor_solicitation};
        let (rules, screens, mut w) = setup("");
        let ns = neighbor_solicitation(v6("fe80::1"), v6("ff02::1:ff00:2"), v6("fe80::2"));
        let na = neighbor_advertisement(v6("fe80::2"), v6("fe80::1"), v6("fe80::2"), true);
        let rs = router_solicitation(v6("fe80::1"));
        let mld_report = |src, hop_limit| {
            icmpv6_link((v6(src), v6("ff02::16")), hop_limit, (143, 0), [0; 4], &[])
        };
        let mld = mld_report("fe80::1", 1);
        for (frame, iface) in [
            (&ns, UNTRUST),
            (&na, TRUST),
            (&rs, UNTRUST),
            (&mld, UNTRUST),
        ] {
            let d = w.process(&rules, &screens, frame, iface, S);
            assert_eq!(
                (d.verdict, d.reason, d.stage, d.event_count()),
                (
                    Verdict::Forward { egress: 1 - iface },
                    Reason::NeighborDiscovery,
                    Stage::Policy,
                    0
                ),
                "no session, no policy, no event"
            );
        }
        assert_eq!(w.counters.neighbor_discovery, 4);
        assert_eq!(w.sessions.len(), 0);
        let d = w.process(&rules, &screens, &mld_report("::", 1), UNTRUST, S);
        assert_eq!(
            d.reason,
            Reason::NeighborDiscovery,
            "MLD before the link-local address"
        );
        // Not as sent on a link (routed, or MLD from a global address), or
        // not a link message at all: policy decides, as for other ICMPv6.
        let routed_ns = {
            let mut f = ns.clone();
            // The hop limit, and the checksum still right: only routing
            // tells it apart.
            f[14 + 7] = 64;
            f
        };
        for frame in [
            routed_ns,
            mld_report("2001:db8::1", 1),
            ping(v6("2001:db8::1"), v6("2001:db8:1::1"), 1, 1),
        ] {
            let d = w.process(&rules, &screens, &frame, UNTRUST, S);
            assert_eq!((d.verdict, d.reason), (Verdict::Drop, Reason::PolicyDeny));
        }
        // `ipv6-nd = "policy"`: the deny-all default policy drops them too.
        let (rules, screens, mut w) = setup("[flow]\nipv6-nd = \"policy\"\n");
        let d = w.process(&rules, &screens, &ns, UNTRUST, S);
        assert_eq!((d.verdict, d.reason), (Verdict::Drop, Reason::PolicyDeny));
        assert_eq!(w.counters.neighbor_discovery, 0);
    }

    /// A frame larger than the egress interface's MTU is dropped and
    /// counted (`mtu_exceeded`), whatever decided it should go: a session
    /// or policy (IP packets measured from the IP header, so VLAN tags do
    /// not count), or the pass of a non-IP frame. Before, 9,614-byte frames
    /// left a port with `mtu = 1500`, uncounted.
    #[test]
    fn frames_larger_than_the_egress_mtu_are_dropped_and_counted() {
        let (rules, screens, mut w) = setup("");
        let (client, server) = (v4(192, 0, 2, 7), v4(10, 1, 0, 5));
        let mtu_exceeded = |w: &Worker| w.counters.dropped[DropReason::MtuExceeded.index()];
        // IP packet of exactly 1500 bytes: forwarded.
        let fits = udp(client, server, 4000, 53, &[0; 1500 - 28]);
        let d = w.process(&rules, &screens, &fits, UNTRUST, S);
        assert_eq!(d.verdict, Verdict::Forward { egress: 1 });
        // One byte more, in the session the first one opened, and a jumbo
        // frame: dropped after the decision to forward.
        for size in [1501, 9600] {
            let big = udp(client, server, 4000, 53, &vec![0; size - 28]);
            let d = w.process(&rules, &screens, &big, UNTRUST, S);
            assert_eq!(
                (d.verdict, d.reason, d.stage),
                (Verdict::Drop, Reason::MtuExceeded, Stage::FilterOutput),
                "{size}"
            );
        }
        assert_eq!(mtu_exceeded(&w), 2);
        assert_eq!(w.counters.forwarded, 1);
        // A non-IP frame (an ARP ethertype) with 1,501 bytes of payload.
        let mut arp = vec![0xffu8; 14 + 1501];
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        let d = w.process(&rules, &screens, &arp, UNTRUST, S);
        assert_eq!((d.verdict, d.reason), (Verdict::Drop, Reason::MtuExceeded));
        arp.truncate(14 + 1500);
        let d = w.process(&rules, &screens, &arp, UNTRUST, S);
        assert_eq!(
            (d.verdict, d.reason),
            (Verdict::Forward { egress: 1 }, Reason::NonIp)
        );
        assert_eq!(mtu_exceeded(&w), 3);
        assert_eq!(Reason::MtuExceeded.name(), "mtu-exceeded");
        assert_eq!(
            Reason::MtuExceeded.drop_reason().map(DropReason::name),
            Some("mtu_exceeded")
        );
    }

    /// With `mtu-exceeded = "reject"`, a packet too large for its egress
    /// port is answered when its sender can use the answer (IPv4 with DF,
    /// IPv6): ICMP fragmentation-needed / ICMPv6 packet-too-big carrying
    /// the port's MTU, from the destination it was sent to, checksummed.
    /// IPv4 without DF is dropped silently; counted either way.
    #[test]
    fn packets_too_big_are_answered_with_the_mtu_when_the_config_asks() {
        use crate::wire::build::{packet_vec, Ethernet, Ip, L4};
        let (rules, screens, mut w) = setup(
            r#"[flow]
mtu-exceeded = "reject"
[[policy]]
name = "any"
from-zone = "untrust"
to-zone = "trust"
source-address = ["any"]
destination-address = ["any"]
application = ["any"]
then = "permit"
"#,
        );
        let big = |src: Addr, dst: Addr, dont_frag: bool| {
            let ip = Ip {
                dont_frag,
                ..Ip::new(src, dst)
            };
            packet_vec(&Ethernet::DEFAULT, &ip, &L4::udp(4000, 53), &[7; 1600]).unwrap()
        };
        let (c4, s4) = (v4(192, 0, 2, 7), v4(10, 1, 0, 5));
        let (c6, s6) = (v6("2001:db8::7"), v6("2001:db8:1::5"));
        let mut out = [0u8; 1280];
        for (frame, client, server, want) in [
            (
                big(c4, s4, true),
                c4,
                s4,
                (proto::ICMP, 3, 4, [0, 0, 0x05, 0xdc]),
            ),
            (
                big(c6, s6, false),
                c6,
                s6,
                (proto::ICMPV6, 2, 0, [0, 0, 0x05, 0xdc]),
            ),
        ] {
            let d = w.process(&rules, &screens, &frame, UNTRUST, S);
            assert_eq!(
                (d.verdict, d.reason),
                (Verdict::Reject, Reason::MtuExceeded)
            );
            let n = build_answer_to(&rules, &d, &frame, &mut out).unwrap();
            let Ok(Parsed::Ip(icmp)) = wire::parse_verified(&out[..n]) else {
                panic!("the answer must parse with valid checksums")
            };
            let l4 = usize::from(icmp.l4_offset);
            assert_eq!(
                (
                    icmp.protocol,
                    icmp.icmp_type,
                    icmp.icmp_code,
                    icmp.src,
                    icmp.dst
                ),
                (want.0, want.1, want.2, server, client)
            );
            assert_eq!(out[l4 + 4..l4 + 8], want.3, "the MTU, 1500");
        }
        let d = w.process(&rules, &screens, &big(c4, s4, false), UNTRUST, S);
        assert_eq!((d.verdict, d.reason), (Verdict::Drop, Reason::MtuExceeded));
        assert_eq!(w.counters.dropped[DropReason::MtuExceeded.index()], 3);
    }

    /// Neighbour discovery passes like ARP only when RFC 4861's validity
    /// checks hold (MLD: RFC 2710/3810's code and length): a solicitation
    /// with code 9, with 1,200 bytes of junk after it or cut short, a
    /// redirect or router advertisement from a global source, and the
    /// rest of `traffic::link_control`'s invalid messages go through
    /// policy, where the deny-all default drops them; the valid ones (with
    /// their link-layer address options) still pass.
    #[test]
    fn only_valid_neighbour_discovery_passes_like_arp() {
        let (rules, screens, mut w) = setup("");
        let cases = crate::traffic::link_control();
        for name in [
            "ns-code-9",
            "ns-junk-payload",
            "ns-truncated",
            "redirect-global-source",
            "ra-global-source",
        ] {
            assert!(
                cases.iter().any(|(n, valid, _)| *n == name && !valid),
                "{name} is among the invalid cases"
            );
        }
        // Every case that goes the wrong way, so a failure lists them all.
        let mut wrong = Vec::new();
        for (name, valid, frame) in &cases {
            let before = w.counters.neighbor_discovery;
            let d = w.process(&rules, &screens, frame, UNTRUST, S);
            let expected = if *valid {
                (
                    Verdict::Forward { egress: TRUST },
                    Reason::NeighborDiscovery,
                    1,
                )
            } else {
                (Verdict::Drop, Reason::PolicyDeny, 0)
            };
            let counted = w.counters.neighbor_discovery - before;
            if (d.verdict, d.reason, counted) != expected {
                wrong.push(format!("{name}: {:?} {:?}", d.verdict, d.reason));
            }
        }
        assert_eq!(wrong, Vec::<String>::new());
        assert_eq!(w.sessions.len(), 0);
    }

    /// An ICMP (IPv4) or ICMPv6 error from `from` to `to` quoting `original`.
    fn icmp_error(
        from: Addr,
        to: Addr,
        msg_type: u8,
        code: u8,
        rest: [u8; 4],
        original: &[u8],
    ) -> Vec<u8> {
        use crate::wire::build::{packet_vec, Ethernet, Ip, L4};
        let l4 = L4::Icmp {
            msg_type,
            code,
            rest,
        };
        packet_vec(&Ethernet::DEFAULT, &Ip::new(from, to), &l4, &original[14..]).unwrap()
    }

    #[test]
    fn icmp_errors_about_a_session_pass_and_others_follow_policy() {
        let (rules, screens, mut w) = setup("");
        let (c, dns, web) = (v4(192, 0, 2, 1), v4(10, 1, 0, 53), v4(10, 1, 0, 10));
        let router = v4(198, 51, 100, 1);
        let query = udp(c, dns, 5353, 53, &[0; 16]);
        let syn = tcp(c, web, 40000, 80, TcpFlags::SYN, &[]);
        for f in [&query, &syn] {
            let d = w.process(&rules, &screens, f, UNTRUST, S);
            assert_eq!(d.reason, Reason::PolicyPermit);
        }
        // Port unreachable from the server, fragmentation needed (MTU
        // 1400) from a router on the path, time exceeded: all pass.
        for (from, msg_type, code, rest, original) in [
            (dns, 3, 3, [0; 4], &query),
            (router, 3, 4, [0, 0, 0x05, 0x78], &syn),
            (router, 11, 0, [0; 4], &syn),
        ] {
            let e = icmp_error(from, c, msg_type, code, rest, original);
            let d = w.process(&rules, &screens, &e, TRUST, S + 1);
            assert_eq!(
                (d.verdict, d.reason, d.rule, d.event_count()),
                (
                    Verdict::Forward { egress: UNTRUST },
                    Reason::RelatedIcmp,
                    RuleRef::Policy(0),
                    0
                ),
                "type {msg_type} code {code}"
            );
        }
        assert_eq!(w.counters.related_icmp, 3);
        // About a flow with no session, or sent to someone other than the
        // quoted packet's sender: policy, as before (denied here).
        let stranger = udp(c, dns, 5354, 53, &[0; 16]);
        for e in [
            icmp_error(dns, c, 3, 3, [0; 4], &stranger),
            icmp_error(dns, v4(192, 0, 2, 99), 3, 3, [0; 4], &query),
        ] {
            let d = w.process(&rules, &screens, &e, TRUST, S + 2);
            assert_eq!((d.verdict, d.reason), (Verdict::Drop, Reason::PolicyDeny));
        }
        // The quoted packet cut short: policy, never a panic.
        let e = icmp_error(dns, c, 3, 3, [0; 4], &query);
        for cut in 14 + 20 + 8..e.len() {
            let _ = w.process(&rules, &screens, &e[..cut], TRUST, S + 3);
        }
    }

    #[test]
    fn icmpv6_packet_too_big_about_a_session_passes() {
        let v6_policy = "[[policy]]\nname = \"allow-web6\"\nfrom-zone = \"untrust\"\nto-zone = \"trust\"\nsource-address = [\"any\"]\ndestination-address = [\"any\"]\napplication = [\"junos-http\"]\nthen = \"permit\"\n";
        let config = Config::from_str_named(
            &CONFIG.replacen("[[policy]]", &format!("{v6_policy}[[policy]]"), 1),
            "test",
        )
        .unwrap();
        let rules = Ruleset::compile(Arc::new(config), 1);
        let screens = ScreenState::new(64);
        let mut w = Worker::new(0, &rules);
        let (c, web, router) = (
            v6("2001:db8::1"),
            v6("2001:db8:1::10"),
            v6("2001:db8:ff::1"),
        );
        let syn = tcp(c, web, 40000, 80, TcpFlags::SYN, &[]);
        assert_eq!(
            w.process(&rules, &screens, &syn, UNTRUST, S).reason,
            Reason::PolicyPermit
        );
        let ptb = icmp_error(router, c, 2, 0, [0, 0, 0x05, 0x00], &syn);
        let d = w.process(&rules, &screens, &ptb, TRUST, S + 1);
        assert_eq!(
            (d.verdict, d.reason),
            (Verdict::Forward { egress: UNTRUST }, Reason::RelatedIcmp)
        );
        let other = tcp(c, web, 40001, 80, TcpFlags::SYN, &[]);
        let ptb = icmp_error(router, c, 2, 0, [0, 0, 0x05, 0x00], &other);
        let d = w.process(&rules, &screens, &ptb, TRUST, S + 1);
        assert_eq!((d.verdict, d.reason), (Verdict::Drop, Reason::PolicyDeny));
    }

    #[test]
    fn a_syn_after_a_connection_ended_opens_a_new_logged_session_through_policy() {
        let (rules, screens, mut w) = setup("");
        let (c, s) = (v4(192, 0, 2, 1), v4(10, 1, 0, 10));
        let syn = tcp(c, s, 40000, 80, TcpFlags::SYN, &[]);
        let d = w.process(&rules, &screens, &syn, UNTRUST, S);
        assert_eq!(names(&d), ["session_open"]);
        // Ended by RST (the answer to the SYN): the entry lingers, and a
        // retransmitted SYN would ride it; a new connection on the same
        // ports must not.
        let refused = tcp_seq(
            (s, 80),
            (c, 40000),
            TcpFlags::RST | TcpFlags::ACK,
            0,
            1001,
            0,
            &[],
        );
        let d = w.process(&rules, &screens, &refused, TRUST, S + 1);
        assert_eq!(names(&d), ["session_close"]);
        let d = w.process(&rules, &screens, &syn, UNTRUST, S + 2);
        assert_eq!(
            (d.reason, names(&d)),
            (Reason::PolicyPermit, vec!["session_open"]),
            "the second connection is seen by policy and logged"
        );
        assert_eq!((w.counters.sessions_reopened, w.sessions.len()), (1, 1));
        // Both FINs seen, the last ACK not yet: the SYN ends it (reported
        // once) and opens the next.
        let fin = TcpFlags::FIN | TcpFlags::ACK;
        w.process(
            &rules,
            &screens,
            &tcp(s, c, 80, 40000, TcpFlags::SYN | TcpFlags::ACK, &[]),
            TRUST,
            S + 3,
        );
        w.process(
            &rules,
            &screens,
            &tcp(c, s, 40000, 80, TcpFlags::ACK, &[]),
            UNTRUST,
            S + 3,
        );
        w.process(
            &rules,
            &screens,
            &tcp(c, s, 40000, 80, fin, &[]),
            UNTRUST,
            S + 4,
        );
        let d = w.process(
            &rules,
            &screens,
            &tcp(s, c, 80, 40000, fin, &[]),
            TRUST,
            S + 4,
        );
        assert_eq!(names(&d), Vec::<&str>::new(), "closing, not closed yet");
        let d = w.process(&rules, &screens, &syn, UNTRUST, S + 5);
        assert_eq!(
            (d.reason, names(&d)),
            (Reason::PolicyPermit, vec!["session_close", "session_open"])
        );
        assert_eq!(w.counters.sessions_reopened, 2);
        // An open connection keeps its session: a SYN on it is one of its
        // packets (a retransmission), not a new connection.
        let d = w.process(&rules, &screens, &syn, UNTRUST, S + 6);
        assert_eq!((d.reason, names(&d)), (Reason::Session, vec![]));
        assert_eq!(w.counters.sessions_reopened, 2);
    }

    /// A web session from 192.0.2.1:40000 through its handshake (client
    /// ISN 1000, server ISN 5000, windows 64 kB unscaled).
    fn handshake(w: &mut Worker, rules: &Ruleset, screens: &ScreenState) -> (Addr, Addr) {
        let (c, s) = (v4(192, 0, 2, 1), v4(10, 1, 0, 10));
        let (syn, synack, ack) = (TcpFlags::SYN, TcpFlags::SYN | TcpFlags::ACK, TcpFlags::ACK);
        for (frame, port) in [
            (
                tcp_seq((c, 40000), (s, 80), syn, 1000, 0, 65535, &[]),
                UNTRUST,
            ),
            (
                tcp_seq((s, 80), (c, 40000), synack, 5000, 1001, 65535, &[]),
                TRUST,
            ),
            (
                tcp_seq((c, 40000), (s, 80), ack, 1001, 5001, 65535, &[]),
                UNTRUST,
            ),
        ] {
            let d = w.process(rules, screens, &frame, port, S);
            assert!(matches!(d.verdict, Verdict::Forward { .. }), "{d:?}");
        }
        (c, s)
    }

    #[test]
    fn segments_outside_the_window_are_dropped_and_only_an_exact_rst_closes() {
        let (rules, screens, mut w) = setup("");
        let (c, s) = handshake(&mut w, &rules, &screens);
        let ack = TcpFlags::ACK;
        let rst = TcpFlags::RST;
        let data = tcp_seq((s, 80), (c, 40000), ack, 5001, 1001, 65535, &[7; 100]);
        assert_eq!(
            w.process(&rules, &screens, &data, TRUST, S).reason,
            Reason::Session
        );
        let far = tcp_seq(
            (s, 80),
            (c, 40000),
            ack,
            5001 + 10_000_000,
            1001,
            65535,
            &[7; 100],
        );
        let blind_rst = tcp_seq((s, 80), (c, 40000), rst, 3_000_000_000, 0, 0, &[]);
        let bad_ack = tcp_seq(
            (c, 40000),
            (s, 80),
            ack,
            1001,
            5101 + 10_000_000,
            65535,
            &[],
        );
        for frame in [&far, &blind_rst, &bad_ack] {
            let d = w.process(&rules, &screens, frame, TRUST, S);
            assert_eq!(
                (d.verdict, d.reason),
                (Verdict::Drop, Reason::TcpOutOfWindow)
            );
            assert_eq!(names(&d), Vec::<&str>::new(), "counted, not logged");
        }
        assert_eq!(w.counters.dropped[DropReason::TcpOutOfWindow.index()], 3);
        // Inside the window but not where the client expects it: it goes
        // on (the client challenges it) and the session stays.
        let guessed = tcp_seq((s, 80), (c, 40000), rst, 5101 + 3000, 0, 0, &[]);
        let d = w.process(&rules, &screens, &guessed, TRUST, S);
        assert_eq!((d.reason, names(&d)), (Reason::Session, vec![]));
        assert_eq!(w.counters.tcp_rst_unconfirmed, 1);
        let d = w.process(&rules, &screens, &data, TRUST, S);
        assert_eq!(d.reason, Reason::Session, "the session is still open");
        // The server's next sequence number: the real reset.
        let real = tcp_seq((s, 80), (c, 40000), rst, 5101, 0, 0, &[]);
        let d = w.process(&rules, &screens, &real, TRUST, S);
        assert_eq!(
            (d.reason, names(&d)),
            (Reason::Session, vec!["session_close"])
        );
    }

    #[test]
    fn a_fragmented_rst_is_checked_like_any_other() {
        use crate::wire::build::{packet_vec, Ethernet, Fragment, Ip, L4};
        let (rules, screens, mut w) = setup("");
        let (c, s) = handshake(&mut w, &rules, &screens);
        let mut ip = Ip::new(s, c);
        ip.fragment = Some(Fragment {
            offset: 0,
            more: true,
            id: 5,
        });
        let l4 = L4::Tcp {
            src_port: 80,
            dst_port: 40000,
            seq: 3_000_000_000,
            ack: 0,
            flags: TcpFlags::RST,
            window: 0,
            options: &[],
        };
        let frame = packet_vec(&Ethernet::DEFAULT, &ip, &l4, &[0; 8]).unwrap();
        let d = w.process(&rules, &screens, &frame, TRUST, S);
        assert_eq!(
            (d.verdict, d.reason),
            (Verdict::Drop, Reason::TcpOutOfWindow)
        );
        assert_eq!(w.sessions.open(), 1, "the session stays open");
    }

    #[test]
    fn without_the_sequence_check_any_rst_closes() {
        let (rules, screens, mut w) = setup("[flow]\ntcp-sequence-check = false\n");
        let (c, s) = handshake(&mut w, &rules, &screens);
        let blind_rst = tcp_seq((s, 80), (c, 40000), TcpFlags::RST, 3_000_000_000, 0, 0, &[]);
        let d = w.process(&rules, &screens, &blind_rst, TRUST, S);
        assert_eq!(
            (d.reason, names(&d)),
            (Reason::Session, vec!["session_close"])
        );
    }

    #[test]
    fn fragments_ahead_of_their_first_are_held_then_follow_its_decision() {
        use crate::frag::{DatagramKey, FragHold, GaveUp};
        use crate::wire::build::L4;
        let frag = |src: Addr, dst: Addr, id: u32, offset: u16, l4: L4<'_>, len: usize| {
            crate::traffic::fragment(src, dst, id, offset, offset == 0, l4, &vec![9; len])
        };
        let raw = |protocol| L4::Raw { protocol };
        let (rules, screens, mut w) = setup("");
        let mut held: FragHold<Vec<u8>> = FragHold::new(4);
        let families = [
            (v4(192, 0, 2, 1), v4(10, 1, 0, 53)),
            (v6("2001:db8:ff::1"), v6("2001:db8:1::53")),
        ];
        // Not in the address book's web range over IPv6: denied there,
        // so the held fragment follows the first fragment's deny.
        for (n, (c, s)) in families.into_iter().enumerate() {
            let second = frag(c, s, 7, 40, raw(proto::UDP), 24);
            let first = frag(c, s, 7, 0, L4::udp(5353, 53), 32);
            let d = w.process(&rules, &screens, &second, UNTRUST, S);
            assert_eq!((d.verdict, d.reason), (Verdict::Hold, Reason::FragmentHeld));
            let pkt = d.packet.unwrap();
            assert!(held.hold(second.clone(), UNTRUST, &pkt, S).is_none());
            let d = w.process(&rules, &screens, &first, UNTRUST, S + 1);
            let first_pkt = d.packet.unwrap();
            let (want, reason) = if n == 0 {
                (Verdict::Forward { egress: TRUST }, Reason::Session)
            } else {
                (Verdict::Drop, Reason::PolicyDeny)
            };
            assert_eq!(d.verdict, want);
            let (frame, port) = held.take_released(DatagramKey::of(&first_pkt)).unwrap();
            assert_eq!((frame.as_slice(), port), (second.as_slice(), UNTRUST));
            assert!(held.take_released(DatagramKey::of(&first_pkt)).is_none());
            let mut d = Decision::BLANK;
            w.resume_held(&rules, &screens, &frame, port, S + 1, &mut d);
            assert_eq!((d.verdict, d.reason), (want, reason), "family {n}");
            let (src_port, dst_port) = (d.packet.unwrap().src_port, d.packet.unwrap().dst_port);
            assert_eq!((src_port, dst_port), (0, 0), "the packet itself has none");
        }
        assert_eq!(w.counters.fragments_held, 2);
        assert_eq!(w.counters.packets, 4, "a held fragment counts once");
        // A first fragment that never comes: given up after the timeout.
        let (c, s) = families[0];
        let lone = frag(c, s, 8, 40, raw(proto::UDP), 24);
        let d = w.process(&rules, &screens, &lone, UNTRUST, 2 * S);
        assert_eq!(d.verdict, Verdict::Hold);
        held.hold(lone, UNTRUST, &d.packet.unwrap(), 2 * S);
        assert!(held
            .take_expired(2 * S + crate::frag::FRAG_TIMEOUT_NS - 1)
            .is_none());
        assert!(held
            .take_expired(2 * S + crate::frag::FRAG_TIMEOUT_NS)
            .is_some());
        assert_eq!(w.give_up_held(GaveUp::Timeout), Reason::FragmentTimeout);
        assert_eq!(w.counters.dropped[DropReason::FragmentTimeout.index()], 1);
        // Protocols without ports are judged as they come.
        let gre = frag(c, s, 9, 40, raw(47), 24);
        let d = w.process(&rules, &screens, &gre, UNTRUST, 3 * S);
        assert_eq!((d.verdict, d.reason), (Verdict::Drop, Reason::PolicyDeny));
    }

    #[test]
    fn an_answered_echo_closes_as_response_received_and_the_next_opens_anew() {
        let (rules, screens, mut w) = setup(
            r#"[[policy]]
name = "pings"
from-zone = "untrust"
to-zone = "trust"
source-address = ["any"]
destination-address = ["any"]
application = ["junos-icmp-all", "junos-icmp6-all"]
then = "permit"
log = true
"#,
        );
        for (c, s) in [
            (v4(192, 0, 2, 1), v4(10, 1, 0, 10)),
            (v6("2001:db8:ff::1"), v6("2001:db8:1::10")),
        ] {
            let request = ping(c, s, 77, 1);
            let mut reply = ping(s, c, 77, 1);
            // Echo reply: type 0 (IPv4) or 129 (IPv6), checksum not checked.
            let at = match wire::parse(&reply) {
                Ok(Parsed::Ip(p)) => usize::from(p.l4_offset),
                _ => unreachable!(),
            };
            reply[at] = if c.is_ipv4() { 0 } else { 129 };
            let d = w.process(&rules, &screens, &request, UNTRUST, S);
            assert_eq!(names(&d), ["session_open"]);
            let d = w.process(&rules, &screens, &reply, TRUST, S);
            assert_eq!(
                (d.reason, names(&d)),
                (Reason::Session, vec!["session_close"])
            );
            match w.events(&d).next() {
                Some(Event::SessionClose(c)) => {
                    assert_eq!(c.record.reason, CloseReason::ResponseReceived);
                    assert_eq!((c.record.packets_client, c.record.packets_server), (1, 1));
                }
                other => panic!("{other:?}"),
            }
            // A duplicate reply rides the closed session quietly.
            let d = w.process(&rules, &screens, &reply, TRUST, S);
            assert_eq!((d.reason, names(&d)), (Reason::Session, vec![]));
            // The next request on the same identifier: a new session.
            let d = w.process(&rules, &screens, &ping(c, s, 77, 2), UNTRUST, S + 1);
            assert_eq!(
                (d.reason, names(&d)),
                (Reason::PolicyPermit, vec!["session_open"])
            );
        }
    }

    #[test]
    fn an_audit_policy_logs_what_it_would_drop_and_lets_the_next_policy_decide() {
        // Ahead of allow-web: an audit deny of web traffic from one source.
        let (rules, screens, mut w) = setup(
            r#"[[policy]]
name = "audit-web-from-192.0.2.1"
from-zone = "untrust"
to-zone = "trust"
source-address = ["192.0.2.1/32"]
destination-address = ["any"]
application = ["junos-http"]
then = "deny"
audit = true
"#,
        );
        // Policies are evaluated in order; move the audit policy first.
        let mut config = (*rules.config).clone();
        let audit = config.policies.pop().unwrap();
        config.policies.insert(0, audit);
        let rules = Ruleset::compile(Arc::new(config), 2);
        let (c, s) = (v4(192, 0, 2, 1), v4(10, 1, 0, 10));
        let d = w.process(
            &rules,
            &screens,
            &tcp(c, s, 40000, 80, TcpFlags::SYN, &[]),
            UNTRUST,
            S,
        );
        assert_eq!(
            (d.verdict, d.reason, names(&d)),
            (
                Verdict::Forward { egress: TRUST },
                Reason::PolicyPermit,
                vec!["policy_deny", "session_open"]
            ),
            "logged as audit, permitted by allow-web"
        );
        match w.events(&d).next() {
            Some(Event::PolicyDeny(PolicyDeny {
                policy: 0,
                audit: true,
                reject: false,
                ..
            })) => {}
            other => panic!("{other:?}"),
        }
        assert_eq!(d.rule, RuleRef::Policy(1), "allow-web decided");
        assert_eq!(w.counters.policy_audit, 1);
        assert_eq!(rules.hits.policy(PolicyMatch::Rule(0)), 1);
        // Another source is not audited.
        let d = w.process(
            &rules,
            &screens,
            &tcp(v4(192, 0, 2, 2), s, 40000, 80, TcpFlags::SYN, &[]),
            UNTRUST,
            S,
        );
        assert_eq!(names(&d), ["session_open"]);
        // Telnet from the audited source is not what the audit policy
        // covers: reject-telnet, which is not in audit mode, rejects it.
        let d = w.process(
            &rules,
            &screens,
            &tcp(c, s, 40001, 23, TcpFlags::SYN, &[]),
            UNTRUST,
            S,
        );
        assert_eq!(
            (d.reason, names(&d)),
            (Reason::PolicyReject, vec!["policy_deny"])
        );
    }

    #[test]
    fn an_audited_zone_pair_drops_nothing_and_logs_every_deny_as_audit() {
        let (rules, screens, mut w) =
            setup("[[zone-pair]]\nfrom-zone = \"untrust\"\nto-zone = \"trust\"\naudit = true\n");
        let (c, s) = (v4(192, 0, 2, 1), v4(10, 1, 0, 10));
        // reject-telnet is not in audit mode itself; its pair is.
        let d = w.process(
            &rules,
            &screens,
            &tcp(c, s, 40001, 23, TcpFlags::SYN, &[]),
            UNTRUST,
            S,
        );
        assert_eq!(
            (d.verdict, names(&d)),
            (
                Verdict::Forward { egress: TRUST },
                vec!["policy_deny", "policy_deny"]
            ),
            "reject-telnet's audit, then the default policy's, and through"
        );
        match w.events(&d).next() {
            Some(Event::PolicyDeny(PolicyDeny {
                policy: 1,
                audit: true,
                reject: true,
                ..
            })) => {}
            other => panic!("{other:?}"),
        }
        // What only the default policy denies passes too, logged.
        let d = w.process(
            &rules,
            &screens,
            &udp(c, s, 40002, 9999, &[0; 8]),
            UNTRUST,
            S,
        );
        assert_eq!(d.verdict, Verdict::Forward { egress: TRUST });
        match w.events(&d).next() {
            Some(Event::PolicyDeny(PolicyDeny {
                policy,
                audit: true,
                ..
            })) if policy == rules.default_policy_id() => {}
            other => panic!("{other:?}"),
        }
        assert_eq!(
            w.counters.policy_audit, 3,
            "reject-telnet, its default, udp"
        );
        // Permits are as written: web opens its session under allow-web.
        let d = w.process(
            &rules,
            &screens,
            &tcp(c, s, 40003, 80, TcpFlags::SYN, &[]),
            UNTRUST,
            S,
        );
        assert_eq!(
            (d.rule, names(&d)),
            (RuleRef::Policy(0), vec!["session_open"])
        );
        // The other direction is not audited: the default policy drops.
        let d = w.process(&rules, &screens, &udp(s, c, 5000, 9999, &[0; 8]), TRUST, S);
        assert_eq!(d.reason, Reason::PolicyDeny);
    }

    #[test]
    fn a_zone_pair_named_twice_or_an_unknown_zone_is_refused() {
        let pair = |from: &str, to: &str| {
            format!("[[zone-pair]]\nfrom-zone = \"{from}\"\nto-zone = \"{to}\"\naudit = true\n")
        };
        let err = Config::from_str_named(
            &format!(
                "{CONFIG}{}{}",
                pair("untrust", "trust"),
                pair("untrust", "trust")
            ),
            "t.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("zone-pair[1].to-zone: the zone pair untrust -> trust is already listed"),
            "{err}"
        );
        let err = Config::from_str_named(&format!("{CONFIG}{}", pair("untrust", "dmz")), "t.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("zone-pair[0].to-zone: unknown zone 'dmz'"),
            "{err}"
        );
    }

    #[test]
    fn audit_is_refused_on_a_permit_policy() {
        let err = Config::from_str_named(
            &format!(
                "{CONFIG}[[policy]]\nname = \"x\"\nfrom-zone = \"untrust\"\nto-zone = \"trust\"\nsource-address = [\"any\"]\ndestination-address = [\"any\"]\napplication = [\"any\"]\nthen = \"permit\"\naudit = true\n"
            ),
            "test",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("audit applies to deny and reject policies"),
            "{err}"
        );
    }

    #[test]
    fn return_traffic_for_a_flow_never_opened_is_denied() {
        let (rules, screens, mut w) = setup("");
        let (c, s) = (v4(192, 0, 2, 1), v4(10, 1, 0, 10));
        let d = w.process(
            &rules,
            &screens,
            &tcp(s, c, 80, 40000, TcpFlags::SYN | TcpFlags::ACK, &[]),
            TRUST,
            S,
        );
        assert_eq!((d.verdict, d.reason), (Verdict::Drop, Reason::TcpSynCheck));
        let d = w.process(&rules, &screens, &udp(s, c, 53, 5000, &[0; 20]), TRUST, S);
        assert_eq!(
            (d.verdict, d.reason, d.rule),
            (Verdict::Drop, Reason::PolicyDeny, RuleRef::DefaultPolicy)
        );
        assert_eq!(names(&d), vec!["policy_deny"]);
        let (rules, screens, mut w) = setup("[flow]\ntcp-syn-check = false\n");
        let d = w.process(
            &rules,
            &screens,
            &tcp(s, c, 80, 40000, TcpFlags::ACK, &[]),
            TRUST,
            S,
        );
        assert_eq!((d.reason, d.stage), (Reason::PolicyDeny, Stage::Policy));
    }

    #[test]
    fn idle_sessions_age_out_per_protocol() {
        let (rules, screens, mut w) = setup("[flow.timeouts]\nudp = 30\n");
        let (c, s) = (v4(192, 0, 2, 1), v4(10, 1, 0, 53));
        w.process(&rules, &screens, &udp(c, s, 5000, 53, &[0; 20]), UNTRUST, S);
        let mut events = Vec::new();
        w.expire(&rules, &screens, 30 * S, usize::MAX, &mut |e| {
            events.push(e)
        });
        assert!(events.is_empty(), "not idle long enough yet");
        w.expire(&rules, &screens, 32 * S, usize::MAX, &mut |e| {
            events.push(e)
        });
        match events.as_slice() {
            [Event::SessionClose(c)] => assert_eq!(c.record.reason, CloseReason::IdleTimeout),
            other => panic!("{other:?}"),
        }
        assert!(w.sessions.is_empty());
    }

    #[test]
    fn a_reload_shortening_a_timeout_ages_sessions_already_open() {
        let (rules, screens, mut w) = setup("[flow.timeouts]\nudp = 60\n");
        let (c, s) = (v4(192, 0, 2, 1), v4(10, 1, 0, 53));
        w.process(&rules, &screens, &udp(c, s, 5000, 53, &[0; 20]), UNTRUST, S);
        let mut events = Vec::new();
        w.expire(&rules, &screens, 10 * S, usize::MAX, &mut |e| {
            events.push(e)
        });
        assert!(events.is_empty(), "9 s idle is under the first 60 s");

        let (reloaded, _, _) = setup("[flow.timeouts]\nudp = 5\n");
        w.adopt(&reloaded);
        assert_eq!(w.sessions.timeouts().udp_ns, 5 * S);
        w.expire(&reloaded, &screens, 10 * S, usize::MAX, &mut |e| {
            events.push(e)
        });
        match events.as_slice() {
            [Event::SessionClose(c)] => assert_eq!(c.record.reason, CloseReason::IdleTimeout),
            other => panic!("the session opened under 60 s ages at 5 s: {other:?}"),
        }
        assert!(w.sessions.is_empty());
    }

    #[test]
    fn sessions_keep_the_policy_and_generation_they_were_created_under() {
        let (rules, screens, mut w) = setup("");
        let flow = |host: u8| udp(v4(192, 0, 2, host), v4(10, 1, 0, 53), 5000, 53, &[0; 20]);
        let d = w.process(&rules, &screens, &flow(1), UNTRUST, S);
        assert_eq!(
            d.rule,
            RuleRef::Policy(0),
            "allow-web is policy 0 in generation 1"
        );

        // Generation 2 inserts a policy ahead: allow-web becomes policy 1.
        let blocker = "[[policy]]\nname = \"blocker-inserted-later\"\nfrom-zone = \"untrust\"\n\
                       to-zone = \"trust\"\nsource-address = [\"any\"]\n\
                       destination-address = [\"any\"]\napplication = [\"junos-telnet\"]\n\
                       then = \"deny\"\n";
        let config = Config::from_str_named(&format!("{blocker}{CONFIG}"), "test").unwrap();
        let reloaded = Ruleset::compile(Arc::new(config), 2);
        assert_eq!(reloaded.config.policies[0].name, "blocker-inserted-later");
        w.adopt(&reloaded);
        let d = w.process(&reloaded, &screens, &flow(2), UNTRUST, 2 * S);
        assert_eq!(
            d.rule,
            RuleRef::Policy(1),
            "allow-web is policy 1 in generation 2"
        );

        let mut closed = Vec::new();
        w.expire(&reloaded, &screens, 1000 * S, usize::MAX, &mut |e| {
            if let Event::SessionClose(c) = e {
                closed.push((c.key.src, c.record.policy, c.record.session_generation));
            }
        });
        closed.sort();
        assert_eq!(
            closed,
            [
                (v4(192, 0, 2, 1), 0, 1), // allow-web as generation 1 numbered it
                (v4(192, 0, 2, 2), 1, 2), // allow-web as generation 2 numbers it
            ]
        );
    }

    #[test]
    fn sessions_of_the_default_policy_carry_its_event_id() {
        let text = CONFIG.replace(
            "[default-policy]\nthen = \"deny\"",
            "[default-policy]\nthen = \"permit\"",
        );
        let config = Config::from_str_named(&text, "test").unwrap();
        let rules = Ruleset::compile(Arc::new(config), 1);
        let (screens, mut w) = (ScreenState::new(1024), Worker::new(0, &rules));
        let frame = udp(v4(192, 0, 2, 7), v4(198, 51, 100, 7), 4000, 9999, &[0; 8]);
        let first = w.process(&rules, &screens, &frame, UNTRUST, S);
        assert_eq!(first.rule, RuleRef::DefaultPolicy);
        // The second packet hits the session: still the default policy
        // (it named no policy at all before, and `policy_name` panicked).
        let second = w.process(&rules, &screens, &frame, UNTRUST, 2 * S);
        assert_eq!(second.stage, Stage::Session);
        assert_eq!(second.rule, RuleRef::DefaultPolicy);
        assert_eq!(rules.policy_name(second.rule), "default-policy");
        let (_, s) = w.sessions.iter().next().expect("one session");
        assert_eq!(s.meta.policy, rules.default_policy_id());
        assert_eq!(
            rules.default_policy_id() as usize,
            rules.config.policies.len()
        );
    }

    #[test]
    fn reject_answers_parse_back_with_valid_checksums() {
        let (rules, screens, mut w) = setup("");
        let (c, s) = (v4(192, 0, 2, 1), v4(10, 1, 0, 10));
        let syn = tcp(c, s, 40000, 23, TcpFlags::SYN, &[]);
        let d = w.process(&rules, &screens, &syn, UNTRUST, S);
        assert_eq!(
            (d.verdict, d.reason),
            (Verdict::Reject, Reason::PolicyReject)
        );
        assert_eq!(names(&d), vec!["policy_deny"]);
        let mut out = [0u8; 1500];
        let n = build_reject(&syn, &d.packet.unwrap(), &mut out).unwrap();
        let Ok(Parsed::Ip(rst)) = wire::parse_verified(&out[..n]) else {
            panic!("RST must parse")
        };
        assert_eq!(
            (rst.src, rst.dst, rst.src_port, rst.dst_port),
            (s, c, 23, 40000)
        );
        assert!(rst.tcp_flags.0 & TcpFlags::RST.0 != 0);
        let l4 = &out[rst.l4_offset as usize..n];
        let sum = wire::checksum::pseudo_header(
            rst.version,
            rst.src,
            rst.dst,
            proto::TCP,
            l4.len() as u32,
        );
        assert!(wire::checksum::verify_with(sum, l4), "TCP checksum");

        let ntp = udp(c, s, 5000, 123, &[0; 48]);
        let d = w.process(&rules, &screens, &ntp, UNTRUST, S);
        assert_eq!(d.verdict, Verdict::Reject);
        let n = build_reject(&ntp, &d.packet.unwrap(), &mut out).unwrap();
        let Ok(Parsed::Ip(icmp)) = wire::parse_verified(&out[..n]) else {
            panic!("ICMP must parse")
        };
        assert_eq!(
            (icmp.protocol, icmp.icmp_type, icmp.icmp_code, icmp.dst),
            (proto::ICMP, 3, 13, c)
        );
    }

    #[test]
    fn a_full_session_table_refuses_and_counts() {
        let (rules, screens, mut w) = setup("[flow]\nsession-capacity = 4\n");
        let s = v4(10, 1, 0, 10);
        let reasons: Vec<Reason> = (0..6u8)
            .map(|i| {
                w.process(
                    &rules,
                    &screens,
                    &udp(v4(192, 0, 2, i), s, 5000, 53, &[0; 8]),
                    UNTRUST,
                    S,
                )
                .reason
            })
            .collect();
        assert_eq!(reasons[..4], [Reason::PolicyPermit; 4]);
        assert_eq!(reasons[4..], [Reason::SessionTableFull; 2]);
        assert_eq!(w.sessions.refused, 2);
        assert_eq!(w.sessions.len(), 4);
        assert_eq!(w.counters.dropped[DropReason::SessionTableFull.index()], 2);
    }

    #[test]
    fn malformed_frames_are_counted_and_handled_by_policy() {
        let (rules, screens, mut w) = setup("");
        let d = w.process(&rules, &screens, &[0u8; 9], UNTRUST, S);
        assert_eq!(
            (d.verdict, d.stage, d.reason.name()),
            (Verdict::Drop, Stage::Parse, "truncated_ethernet")
        );
        assert_eq!(
            w.counters.malformed[Malformed::TruncatedEthernet as usize],
            1
        );
        let (rules, screens, mut w) = setup("[flow]\nmalformed = \"forward\"\n");
        let d = w.process(&rules, &screens, &[0u8; 9], UNTRUST, S);
        assert_eq!(d.verdict, Verdict::Forward { egress: TRUST });
        let _ = ping;
    }

    /// Thousands of policies: the classifier's verdict equals evaluating
    /// every policy in order, on randomized traffic.
    #[test]
    fn thousands_of_policies_agree_with_reference_evaluation() {
        let mut rng = Rng::new(99);
        let mut text = String::from(
            "[[interface]]\nname = \"a\"\ndevice = \"net_null0\"\nzone = \"z0\"\npeer = \"b\"\n\
             [[interface]]\nname = \"b\"\ndevice = \"net_null1\"\nzone = \"z1\"\n\
             [zone.z0]\n[zone.z1]\n[zone.z2]\n[address-book]\n",
        );
        for i in 0..400 {
            let len = 16 + rng.below(17);
            text += &format!(
                "n{i} = [\"10.{}.{}.0/{len}\", \"2001:db8:{:x}::/48\"]\n",
                rng.below(8),
                rng.below(256),
                rng.below(64)
            );
        }
        text += "[application]\n";
        for i in 0..50 {
            let lo = rng.below(2000);
            let proto = ["tcp", "udp"][rng.below(2) as usize];
            text += &format!(
                "app{i} = {{ protocol = \"{proto}\", destination-port = \"{lo}-{}\" }}\n",
                lo + rng.below(100)
            );
        }
        let zones = ["z0", "z1", "z2", "any"];
        for i in 0..3000 {
            let addr = |rng: &mut Rng| {
                if rng.below(6) == 0 {
                    "any".to_string()
                } else {
                    format!("n{}", rng.below(400))
                }
            };
            let app = if rng.below(5) == 0 {
                "any".to_string()
            } else {
                format!("app{}", rng.below(50))
            };
            let then = ["permit", "deny", "reject"][rng.below(3) as usize];
            let from = zones[rng.below(4) as usize];
            let to = zones[rng.below(4) as usize];
            text += &format!(
                "[[policy]]\nname = \"p{i}\"\nfrom-zone = \"{from}\"\nto-zone = \"{to}\"\nsource-address = [\"{}\"]\ndestination-address = [\"{}\", \"{}\"]\napplication = [\"{app}\"]\nthen = \"{then}\"\n",
                addr(&mut rng),
                addr(&mut rng),
                addr(&mut rng)
            );
        }
        let config = Config::from_str_named(&text, "generated").unwrap();
        assert_eq!(config.policies.len(), 3000);
        let table = PolicyTable::compile(&config);
        let mut matched = 0;
        for _ in 0..5000 {
            let src = v4(
                10,
                rng.below(8) as u8,
                rng.below(256) as u8,
                rng.below(256) as u8,
            );
            let dst = v4(
                10,
                rng.below(8) as u8,
                rng.below(256) as u8,
                rng.below(256) as u8,
            );
            let port = rng.below(2200) as u16;
            let frame = if rng.below(2) == 0 {
                tcp(src, dst, 40000, port, TcpFlags::SYN, &[])
            } else {
                udp(src, dst, 40000, port, &[])
            };
            let Ok(Parsed::Ip(pkt)) = parse(&frame) else {
                unreachable!()
            };
            let (from, to) = (rng.below(3) as usize, rng.below(3) as usize);
            let fast = table.lookup(from, to, &pkt);
            assert_eq!(fast, table.lookup_linear(&config, from, to, &pkt));
            matched += usize::from(fast != PolicyMatch::Default);
        }
        assert!(matched > 500, "the traffic hits rules ({matched})");
    }

    /// A decision names its close in the log; a name the log has moved
    /// past (by [`CloseLog::LEN`] later closes) finds nothing, never
    /// another close.
    #[test]
    fn the_close_log_answers_for_its_last_closes_only() {
        let closed = |session_id| SessionClosed {
            record: SessionClose {
                session_id,
                policy: 0,
                reason: CloseReason::TcpFin,
                packets_client: 1,
                bytes_client: 60,
                packets_server: 1,
                bytes_server: 60,
                elapsed_ns: 1,
                session_generation: 1,
                application: NO_APPLICATION,
            },
            key: FlowKey {
                src: v4(192, 0, 2, 1),
                dst: v4(198, 51, 100, 1),
                src_port: 40000,
                dst_port: 80,
                protocol: proto::TCP,
            },
            from_zone: 0,
            to_zone: 1,
            ingress: 0,
            egress: 1,
        };
        let mut log = CloseLog::new();
        let refs: Vec<CloseRef> = (0..CloseLog::LEN as u64 + 3)
            .map(|id| log.keep(closed(id)))
            .collect();
        for (id, r) in refs.iter().enumerate() {
            let found = log.get(*r).map(|c| c.record.session_id);
            let expect = (id >= 3).then_some(id as u64);
            assert_eq!(found, expect, "close {id}");
        }
        // Numbers wrap: the log still answers across u32::MAX.
        log.next = u32::MAX;
        let r = log.keep(closed(7));
        let after = log.keep(closed(8));
        assert_eq!(log.get(r).map(|c| c.record.session_id), Some(7));
        assert_eq!(log.get(after).map(|c| c.record.session_id), Some(8));
    }

    /// A clock that advances 10 per read, so each stage boundary is visible.
    fn ticking_clock() -> u64 {
        use std::sync::atomic::AtomicU64;
        static T: AtomicU64 = AtomicU64::new(0);
        T.fetch_add(10, Ordering::Relaxed)
    }

    #[test]
    fn every_stage_is_timed_once_per_burst() {
        use crate::prefetch::NoPrefetch;
        let (rules, screens, mut w) = setup("");
        assert_eq!(w.stage_cycles(), StageCycles::default(), "off by default");
        w.measure_stages(ticking_clock);
        let (c, s) = (v4(192, 0, 2, 1), v4(10, 1, 0, 10));
        let syn = tcp(c, s, 40000, 80, TcpFlags::SYN, &[]);
        let dns = udp(c, s, 1, 53, &[]);
        let mut out = [Decision::BLANK; 2];
        let frames = [dns.as_slice(), syn.as_slice()];
        w.process_burst::<NoPrefetch>(&rules, &screens, &frames, UNTRUST, S, &mut out, false);
        let t = w.stage_cycles();
        assert_eq!(t.samples, 2, "every packet of the burst");
        let stage = |name: &str| t.cycles[Stage::from_name(name).unwrap().index()];
        // 10 per clock read, one read per stage boundary: the session
        // stage is two loops (lookup, then the flow decisions).
        for name in ["parse", "screen", "policy", "filter-output"] {
            assert_eq!(stage(name), 10, "{name}: {t:?}");
        }
        assert_eq!(stage("session"), 20, "{t:?}");
        assert_eq!(stage("filter-input"), 0, "no input filter configured");
        assert_eq!(out[1].reason, Reason::PolicyPermit);
    }
}
