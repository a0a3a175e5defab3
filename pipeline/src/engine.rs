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
                            let s = self.sessions.session(handle);
                            d.push(Event::SessionOpen(SessionOpen {
                                session_id: s.id,
                                policy: meta.policy,
                                application: meta.application,
                                origin: s.origin,
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
                origin: s.origin,
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

/// The worker that owns a flow, by its key, as [`owner_worker`] decides
/// for its packets (a high-availability peer's session is installed
/// there).
pub fn owner_of_key(key: &FlowKey, workers: usize) -> usize {
    symmetric_hash(key.src, key.dst) as usize % workers.max(1)
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
                origin: 0,
            },
            key: FlowKey {
                src: Addr::from_ipv4([192, 0, 2, 1]),
                dst: Addr::from_ipv4([198, 51, 100, 1]),
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
}
