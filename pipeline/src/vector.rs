//! The burst-at-a-time pipeline, as VPP's graph nodes and DPDK's l3fwd
//! run: each stage is one loop over the whole burst, so its code and data
//! stay hot, and the lookups that miss the cache (session slots, the
//! policy classifier's tables) are issued for every packet before any is
//! waited on.
//!
//! Stages ([`Worker::process_burst`]), each timed per burst:
//! 1. **parse** every frame into its decision's packet;
//! 2. **filter_input**, the ingress interface's filter;
//! 3. **screen**: fragments and the zone's screen, giving each packet
//!    the flow key it goes on with;
//! 4. **session lookup**: hash every key and prefetch its index slot,
//!    then probe and prefetch the session found;
//! 5. **policy** for the packets no session was found for, as one batch
//!    ([`crate::policy::PolicyTable::lookup_batch`]);
//! 6. **flow**, in packet order: session state, policy verdicts, session
//!    creation, events. The lookups of stages 4 and 5 are used while the
//!    session table is unchanged since; a packet whose flow an earlier
//!    packet of the same burst created (or ended) looks it up again, so
//!    the burst decides exactly as packets one by one would;
//! 7. **filter_output**, the egress interface's filter, and forwarding.
//!
//! [`Worker::process_into`] is the reference path (one packet through
//! every stage; `rampart trace`, chained mbufs, handed-off packets); the
//! property test `vector_path_agrees_with_the_reference` holds both to
//! the same verdicts, reasons, rules and events.

use crate::engine::{fails_syn_check, Arrival, Decision, FlowHints, Ruleset, Stage, Worker};
use crate::policy;
use crate::screen::ScreenState;
use crate::session::Probe;
use crate::wire;

pub use crate::prefetch::{NoPrefetch, Prefetch, BURST};

impl Worker {
    /// Decides a burst of frames that entered on `ingress`: `out[i]` for
    /// `frames[i]`, exactly as [`Worker::process_into`] one by one in
    /// order would (see the module doc). At most [`BURST`] frames.
    ///
    /// Returns how many it decided, from the first: all, unless a first
    /// fragment may release fragments held for it (`fragments_held`: the
    /// caller holds some; or a later fragment came earlier in the burst).
    /// The burst then ends with that first fragment, so that the caller
    /// resumes the held ones right after it, as one by one, and decides
    /// the rest after them.
    #[allow(clippy::too_many_arguments)]
    pub fn process_burst<P: Prefetch>(
        &mut self,
        rules: &Ruleset,
        screens: &ScreenState,
        frames: &[&[u8]],
        ingress: u16,
        now_ns: u64,
        out: &mut [Decision],
        fragments_held: bool,
    ) -> usize {
        assert!(frames.len() <= BURST && out.len() >= frames.len());
        let mut n = frames.len();
        let mut since = self.clock.map_or(0, |c| c());

        // Parse.
        let mut held = fragments_held;
        for i in 0..n {
            let parsed = self.admit(
                rules,
                wire::parse(frames[i]),
                frames[i].len(),
                ingress,
                &mut out[i],
            );
            self.burst.meta[i].live = parsed.is_some();
            if let Some(frag) = parsed.map(|p| p.frag).filter(|f| f.is_fragment) {
                if !frag.is_first_fragment {
                    held = true;
                } else if held {
                    n = i + 1;
                    break;
                }
            }
        }
        self.lap(&mut since, Stage::Parse);

        // Input filter.
        if rules.ports[ingress as usize].input_filter.is_some() {
            for (i, d) in out[..n].iter_mut().enumerate() {
                if let (true, Some(pkt)) = (self.burst.meta[i].live, d.packet) {
                    if self.filter_input(rules, ingress, &pkt, d) {
                        self.burst.meta[i].live = false;
                    }
                }
            }
            self.lap(&mut since, Stage::FilterInput);
        }

        // Fragments and screen.
        for i in 0..n {
            if let (true, Some(pkt)) = (self.burst.meta[i].live, out[i].packet) {
                let p = Arrival {
                    rules,
                    screens,
                    frame: frames[i],
                    pkt: &pkt,
                    ingress,
                    now_ns,
                };
                match self.screen(p, &mut out[i]) {
                    Some(key) => self.burst.meta[i].key = key,
                    None => self.burst.meta[i].live = false,
                }
            }
        }
        self.lap(&mut since, Stage::Screen);

        // Session lookup in three passes, each prefetching what the next
        // reads: the index slots, the sessions they name, then the probes.
        let prefetch = P::prefetch;
        for m in self.burst.meta[..n].iter_mut().filter(|m| m.live) {
            m.probe = Probe::of(&m.key);
            prefetch(self.sessions.probe_home(&m.probe));
        }
        for m in self.burst.meta[..n].iter().filter(|m| m.live) {
            if let Some(handle) = self.sessions.candidate(&m.probe) {
                for line in self.sessions.session_lines(handle) {
                    prefetch(line);
                }
            }
        }
        for m in self.burst.meta[..n].iter_mut().filter(|m| m.live) {
            m.found = self.sessions.lookup_probe(&m.probe);
        }
        let looked_up = self.sessions.changes();
        self.lap(&mut since, Stage::Session);

        // Policy for the packets without a session, as one batch.
        self.policy_stage::<P>(rules, ingress, n, out);
        self.lap(&mut since, Stage::Policy);

        // Flow, in packet order.
        for i in 0..n {
            let m = self.burst.meta[i];
            self.burst.meta[i].output = None;
            let (true, Some(pkt)) = (m.live, out[i].packet) else {
                continue;
            };
            let (inserted, removed) = self.sessions.changes();
            let session = match m.found {
                Some(hit) if removed == looked_up.1 => Some(hit),
                None if inserted == looked_up.0 => None,
                _ => self.sessions.lookup_probe(&m.probe),
            };
            let hints = FlowHints {
                session: Some(session),
                policy: m.policy,
            };
            let p = Arrival {
                rules,
                screens,
                frame: frames[i],
                pkt: &pkt,
                ingress,
                now_ns,
            };
            self.burst.meta[i].output = self.decide_flow(p, m.key, hints, &mut out[i]);
        }
        self.lap(&mut since, Stage::Session);

        // Output filter and forwarding.
        for (i, d) in out[..n].iter_mut().enumerate() {
            if let (Some((egress, reason)), Some(pkt)) = (self.burst.meta[i].output, d.packet) {
                self.output(rules, d, egress, &pkt, reason);
            }
        }
        self.lap(&mut since, Stage::FilterOutput);
        if self.clock.is_some() {
            self.stage_totals.samples += n as u64;
        }
        n
    }

    /// Looks up the zone pair's policy for every live packet that found no
    /// session and may open one, as one batch (the matches are pure: they
    /// depend on the packet and the ruleset alone, so looking them up ahead
    /// of the flow stage changes nothing).
    fn policy_stage<P: Prefetch>(
        &mut self,
        rules: &Ruleset,
        ingress: u16,
        n: usize,
        out: &[Decision],
    ) {
        let port = rules.ports[ingress as usize];
        let b = &mut *self.burst;
        for m in &mut b.meta[..n] {
            m.policy = None;
        }
        let Some(egress) = port.peer else { return };
        let to = rules.ports[egress as usize].zone as usize;
        let mut count = 0;
        for (i, m) in b.meta[..n].iter().enumerate() {
            let Some(pkt) = out[i].packet else { continue };
            if m.live && m.found.is_none() && !fails_syn_check(rules, &pkt) {
                b.misses[count] = i as u8;
                b.queries[count] = policy::query(&pkt);
                count += 1;
            }
        }
        if count == 0 {
            return;
        }
        rules.policies.lookup_batch::<P>(
            port.zone as usize,
            to,
            &b.queries[..count],
            &mut b.matches[..count],
        );
        for k in 0..count {
            b.meta[b.misses[k] as usize].policy = Some(b.matches[k]);
            for line in rules
                .policy_lines(self.index, b.matches[k])
                .into_iter()
                .flatten()
            {
                P::prefetch(line);
            }
        }
    }

    /// Adds the cycles since `since` to `stage` (when measuring).
    #[inline(always)]
    fn lap(&mut self, since: &mut u64, stage: Stage) {
        if let Some(clock) = self.clock {
            let now = clock();
            self.stage_totals.cycles[stage.index()] += now.wrapping_sub(*since);
            *since = now;
        }
    }
}
