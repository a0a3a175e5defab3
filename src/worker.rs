//! The worker lcore's poll loop, shaped like DPDK's l3fwd: rx_burst,
//! decide the whole burst through the pipeline, stage per egress port,
//! tx_burst, free the unsent.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use rampart_core::{
    tsc_cycles, ArcReceiver, ArcSender, Burst, Mbuf, MbufRingConsumer, MbufRingProducer, Mempool,
    RxQueue, TxQueue, MAX_BURST,
};
use rampart_pipeline::engine::{self, DropReason, Ruleset, Verdict, WorkerStage};
use rampart_pipeline::frag::{DatagramKey, FragHold, GaveUp};
use rampart_pipeline::screen::{ScreenOption, ScreenState};

use crate::cluster_sync::WorkerSync;
use crate::export::WorkerEvents;
use crate::sessions::SessionMailbox;
use rampart_pipeline::session::CloseReason as SessionCloseReason;

/// Where a worker's cycles go, every stage timed once per burst.
pub const STAGES: [&str; WorkerStage::COUNT] = WorkerStage::NAMES;

/// A worker's own running totals of [`STAGES`], published with its counters.
#[derive(Default)]
pub struct StageTotals {
    rx_cycles: u64,
    rx_packets: u64,
    events_cycles: u64,
    events_packets: u64,
    tx_cycles: u64,
    tx_packets: u64,
}

/// Counters a worker publishes; written by that worker alone (plain
/// load+store, no locked instructions), read by the control plane.
#[repr(align(64))]
#[derive(Default)]
pub struct WorkerCounters {
    pub rx: AtomicU64,
    pub tx: AtomicU64,
    /// Packets the pipeline dropped, in total and by reason.
    pub dropped: AtomicU64,
    pub drops: [AtomicU64; DropReason::COUNT],
    /// Packets each screen option matched (dropped, or alarm only).
    pub screens: [AtomicU64; ScreenOption::COUNT],
    /// Frames that did not parse (dropped or forwarded per `flow.malformed`).
    pub malformed: AtomicU64,
    /// IPv6 neighbour discovery and MLD passed like ARP (`flow.ipv6-nd`).
    pub neighbor_discovery: AtomicU64,
    /// ICMP errors passed because the flow they quote has a session.
    pub related_icmp: AtomicU64,
    /// Reject answers sent (TCP RST / ICMP unreachable).
    pub rejects_sent: AtomicU64,
    /// Packets the device did not accept at TX (freed, counted).
    pub tx_full: AtomicU64,
    /// Packets handed to another worker (for its session state or its TX
    /// queue), and those refused because that ring was full.
    pub handoff_out: AtomicU64,
    pub handoff_full: AtomicU64,
    pub sessions_created: AtomicU64,
    pub sessions_closed: AtomicU64,
    /// Ended TCP sessions a new connection's SYN replaced.
    pub sessions_reopened: AtomicU64,
    /// Sessions an operator ended (`rampart sessions clear`).
    pub sessions_cleared: AtomicU64,
    /// RSTs inside a session's window but off the expected sequence
    /// number: forwarded, the session kept.
    pub tcp_rst_unconfirmed: AtomicU64,
    /// Fragments held because they came before their first fragment.
    pub fragments_held: AtomicU64,
    /// Packets that arrived as a chain of mbufs (jumbo frames).
    pub multi_segment: AtomicU64,
    /// Packets an audit-mode policy would have dropped (let through).
    pub policy_audit: AtomicU64,
    pub sessions_active: AtomicU64,
    /// TSC cycles spent in loop iterations that did work.
    pub busy_cycles: AtomicU64,
    /// Loop iterations, with work or idle: the sign of progress the
    /// systemd watchdog is fed on ([`crate::service`]).
    pub loops: AtomicU64,
    /// Per entry of [`STAGES`]: cycles measured, and the packets they were
    /// measured over (cycles per packet = the ratio).
    pub stage_cycles: [AtomicU64; STAGES.len()],
    pub stage_packets: [AtomicU64; STAGES.len()],
    /// Handoffs this worker committed to another worker (enqueued, or
    /// held in `stalled` to enqueue later), and handoffs it finished:
    /// received and processed, or given up on (a full stall list).
    /// Monotonic; [`StopSignal::settled`] compares their sums.
    pub handoffs_sent: AtomicU64,
    pub handoffs_done: AtomicU64,
}

#[inline(always)]
fn bump(counter: &AtomicU64, by: u64) {
    counter.store(counter.load(Ordering::Relaxed) + by, Ordering::Relaxed);
}

/// [`bump`] whose store publishes what this worker did before it (a plain
/// store on x86): for the handoff counts the shutdown check reads.
#[inline(always)]
fn bump_release(counter: &AtomicU64, by: u64) {
    counter.store(counter.load(Ordering::Relaxed) + by, Ordering::Release);
}

/// How this worker reaches one egress port.
#[allow(clippy::large_enum_variant)] // one per port, built once; the burst lives inline on purpose
pub enum TxPath {
    Direct {
        queue: TxQueue,
        pending: Burst,
    },
    /// The worker that owns a TX queue of this port (through its handoff ring).
    Handoff(usize),
}

/// A handoff tag marks what the receiving worker does with the mbuf.
const TAG_PROCESS: u64 = 1 << 63;

/// Wall-clock nanoseconds from the TSC, computed once per loop.
pub struct Clock {
    epoch_ns: u64,
    tsc0: u64,
    /// ns per cycle, 32.32 fixed point.
    scale: u128,
}

impl Clock {
    pub fn new(tsc_hz: u64) -> Clock {
        let epoch_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Clock {
            epoch_ns,
            tsc0: tsc_cycles(),
            scale: ((1_000_000_000u128) << 32) / tsc_hz.max(1) as u128,
        }
    }

    #[inline(always)]
    pub fn now_ns(&self, tsc: u64) -> u64 {
        self.epoch_ns + ((tsc.wrapping_sub(self.tsc0) as u128 * self.scale) >> 32) as u64
    }
}

/// Everything one worker owns (l3fwd's per-lcore context).
pub struct Worker {
    pub index: usize,
    pub workers: usize,
    /// Spread flows over workers by address hash in software (the ports
    /// cannot steer both directions of a flow to one queue).
    pub software_dispatch: bool,
    /// RX queues with the interface index they belong to.
    pub rx: Vec<(RxQueue, usize)>,
    /// Egress path per interface index.
    pub tx: Vec<TxPath>,
    /// Rings to other workers, by worker index (`None` for ourselves).
    pub handoff_out: Vec<Option<MbufRingProducer>>,
    /// Packets other workers hand us, tagged with what to do.
    pub handoff_in: Vec<MbufRingConsumer>,
    pub rules: Arc<Ruleset>,
    pub screens: Arc<ScreenState>,
    pub pipeline: engine::Worker,
    /// Pool for reject answers.
    pub pool: Mempool,
    pub clock: Clock,
    pub counters: Arc<WorkerCounters>,
    pub events: WorkerEvents,
    /// New config generations from the control plane, and the way back
    /// for the one this worker retires (freed off the hot path).
    pub rules_in: ArcReceiver<Ruleset>,
    pub rules_out: ArcSender<Ruleset>,
    /// Handoffs a full ring refused, retried before RX is polled again:
    /// backpressure goes to the RX queue (where the NIC counts `imissed`)
    /// instead of dropping packets already received.
    pub stalled: Vec<(usize, Mbuf, u64)>,
    pub stage_totals: StageTotals,
    /// The decisions of the burst being processed, reused (the pipeline
    /// writes into them in place); the last one is for packets decided
    /// alone ([`PACKET_SLOT`]: chained, handed over, resumed fragments).
    pub decisions: Box<[engine::Decision; MAX_BURST + 1]>,
    /// The RX burst being processed, packet by packet: decided here, or
    /// handed to the worker that owns its flow.
    pub routes: [Route; MAX_BURST],
    /// Fragments that came before their first fragment, until it decides
    /// their flow (bounded; what it gives up is counted as drops).
    pub held: FragHold<Mbuf>,
    /// Room for one whole multi-segment packet (see `process_chained`).
    pub scratch: Box<[u8]>,
    /// Packets dropped in the burst being processed, freed together.
    pub dropped: Burst,
    /// Listing and clearing jobs from the control plane, worked on
    /// between bursts.
    pub session_jobs: SessionMailbox,
    /// High-availability sync (`[cluster]`), between bursts.
    pub sync: Option<WorkerSync>,
    /// Fault injection for the watchdog test
    /// (`RAMPART_FAULT_STALL_WORKER_MS`): from this wall-clock time on,
    /// the worker stops looping (it still honours a stop).
    pub stall_at_ns: Option<u64>,
}

/// The CPU's prefetch, for the pipeline's burst lookups.
struct CpuPrefetch;

impl rampart_pipeline::vector::Prefetch for CpuPrefetch {
    #[inline(always)]
    fn prefetch(p: *const u8) {
        rampart_core::prefetch_raw(p);
    }
}

// A whole RX burst fits one pipeline burst.
const _: () = assert!(MAX_BURST <= rampart_pipeline::vector::BURST);

/// The slot of [`Worker::decisions`] for a packet decided on its own.
pub const PACKET_SLOT: usize = MAX_BURST;

/// What a worker does with one packet of its RX burst.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Here,
    HandOff(usize),
    /// A chain of mbufs (a jumbo frame): decided from a copy of the whole
    /// frame, forwarded as the chain.
    Chained,
}

/// Refused handoffs held before RX pauses (a burst's worth, and then some).
pub const STALL_CAPACITY: usize = 64;

/// Shared stop protocol: the control plane raises `stop`; every worker
/// stops RX and checks in (`rx_stopped`), then keeps draining its handoff
/// rings and retrying its stalled handoffs until the handoffs are
/// [`settled`](StopSignal::settled), so no packet already received is
/// lost or stranded in a ring at shutdown, and no worker waits on a ring
/// that nobody drains any more.
///
/// A packet travels at most RX worker -> flow owner -> TX queue owner, and
/// only while it is being processed can it be handed on; so once every RX
/// has stopped, the handoffs finished equal the handoffs committed exactly
/// when no packet is in a ring, in a stall list or being processed, and
/// none can appear again. Each worker stops only then, whichever order the
/// OS runs workers that share a CPU in.
pub struct StopSignal {
    pub stop: AtomicBool,
    pub rx_stopped: AtomicUsize,
    /// Workers done with their final drain and session export.
    pub finished: AtomicUsize,
    pub workers: usize,
    /// Each worker's counters (it registers them when it starts), for the
    /// handoff counts.
    counters: Vec<OnceLock<Arc<WorkerCounters>>>,
}

impl StopSignal {
    pub fn new(workers: usize) -> StopSignal {
        StopSignal {
            stop: AtomicBool::new(false),
            rx_stopped: AtomicUsize::new(0),
            finished: AtomicUsize::new(0),
            workers,
            counters: (0..workers).map(|_| OnceLock::new()).collect(),
        }
    }

    fn register(&self, worker: usize, counters: &Arc<WorkerCounters>) {
        let _ = self.counters[worker].set(counters.clone());
    }

    /// Every RX has stopped and every handoff committed has been finished.
    ///
    /// The counts only grow, a handoff is counted sent before it is
    /// enqueued and done after its processing handed on whatever it
    /// produced (Release stores, read with Acquire). Reading all `done`
    /// before all `sent` then gives done_read <= done(t) <= sent(t) <=
    /// sent_read for the moment t between the two passes, so equal reads
    /// mean nothing was in flight at t, and with RX stopped nothing can be
    /// in flight again.
    pub fn settled(&self) -> bool {
        if self.rx_stopped.load(Ordering::Acquire) != self.workers {
            return false;
        }
        let sum = |field: fn(&WorkerCounters) -> &AtomicU64| {
            self.counters.iter().try_fold(0u64, |sum, c| {
                c.get().map(|c| sum + field(c).load(Ordering::Acquire))
            })
        };
        let done = sum(|c| &c.handoffs_done);
        let sent = sum(|c| &c.handoffs_sent);
        done.is_some() && done == sent
    }
}

/// Sessions aged per loop iteration (bounded work per burst cycle).
const EXPIRE_BUDGET: usize = 64;

impl Worker {
    pub fn run(mut self, stop: &StopSignal) -> Arc<WorkerCounters> {
        stop.register(self.index, &self.counters);
        let mut burst = Burst::new();
        while !stop.stop.load(Ordering::Relaxed) {
            let start = tsc_cycles();
            let now = self.clock.now_ns(start);
            bump(&self.counters.loops, 1);
            if self.stall_at_ns.is_some_and(|t| now >= t) {
                stall(stop);
                break;
            }
            self.adopt_new_rules(now);
            let active = match &mut self.sync {
                Some(sync) => sync.poll_role(&mut self.pipeline, now),
                None => true,
            };
            let mut work = self.retry_stalled();
            let rx_paused = !self.stalled.is_empty();
            for i in 0..self.rx.len() {
                if rx_paused {
                    break;
                }
                let (queue, iface) = &mut self.rx[i];
                let before = tsc_cycles();
                let n = queue.rx_burst(&mut burst);
                if n == 0 {
                    continue;
                }
                if !active {
                    // A standby forwards nothing: two bump-in-the-wire
                    // nodes on one segment would loop.
                    bump(&self.counters.rx, n as u64);
                    if let Some(sync) = &self.sync {
                        sync.discarded(n);
                    }
                    burst.clear();
                    work += n;
                    continue;
                }
                self.stage_totals.rx_cycles += tsc_cycles() - before;
                self.stage_totals.rx_packets += n as u64;
                let iface = *iface;
                work += n;
                bump(&self.counters.rx, n as u64);
                if self.route_burst(&burst) {
                    self.decide_burst(&mut burst, iface, now);
                } else {
                    // A chain in the burst: packet by packet, in order.
                    for (i, m) in burst.drain().enumerate() {
                        match self.routes[i] {
                            Route::Here => self.process(m, iface, now),
                            Route::Chained => self.process_chained(m, iface, now),
                            Route::HandOff(owner) => {
                                self.hand_off(owner, m, TAG_PROCESS | iface as u64)
                            }
                        }
                    }
                }
            }
            work += self.drain_handoffs(now);
            let before_tx = tsc_cycles();
            self.dropped.clear();
            self.flush_all();
            if work > 0 {
                self.stage_totals.tx_cycles += tsc_cycles() - before_tx;
                self.stage_totals.tx_packets += work as u64;
            }
            if active {
                self.age(now);
            } else {
                // A standby ages nothing (its copies are the active's to end).
                self.publish_pipeline_counters();
            }
            self.serve_session_job(now);
            if let Some(sync) = &mut self.sync {
                sync.step(&mut self.pipeline, now, self.rules.generation);
            }
            self.events.tick(now);
            self.events.publish();
            if work > 0 {
                bump(&self.counters.busy_cycles, tsc_cycles() - start);
                self.publish_stages();
            }
        }
        stop.rx_stopped.fetch_add(1, Ordering::AcqRel);
        loop {
            let now = self.clock.now_ns(tsc_cycles());
            let moved = self.drain_handoffs(now) + self.retry_stalled();
            self.dropped.clear();
            self.flush_all();
            self.events.publish();
            if moved == 0 && self.stalled.is_empty() && stop.settled() {
                break;
            }
            if moved == 0 {
                // Workers may share a CPU: let the one we wait for run.
                std::thread::yield_now();
            }
        }
        // Fragments still waiting for their first fragment will not get it.
        while let Some((m, _)) = self.held.take_any() {
            self.give_up_held(m, GaveUp::Timeout);
        }
        // Aggregated records leave with the run, whatever is left of
        // their windows, and attack episodes end with it (first: each may
        // stand for many packets).
        let now = self.clock.now_ns(tsc_cycles());
        self.events.flush_pending(now);
        let hand_over = self.sync.as_ref().is_some_and(WorkerSync::hands_over);
        // Sessions still open end with the run: their close events (for
        // policies that log session-close) reach the consumers, as on an
        // SRX that is shut down.
        let Worker {
            pipeline,
            rules,
            screens,
            events,
            ..
        } = &mut self;
        // In a pair whose peer holds the sessions (synced, alive), they
        // are its to carry on and log: none is closed here.
        if !hand_over {
            pipeline.close_all(
                rules,
                screens,
                SessionCloseReason::Shutdown,
                now,
                &mut |e| events.emit(&e, None, &[], now),
            );
        }
        self.events.publish();
        self.publish_pipeline_counters();
        stop.finished.fetch_add(1, Ordering::AcqRel);
        self.counters
    }

    /// Between bursts (a quiescent point): switch to a new config
    /// generation if the control plane published one. Sessions stay; the
    /// new flow timeouts and event rate limits apply from here on.
    #[inline(always)]
    fn adopt_new_rules(&mut self, now: u64) {
        if let Some(new) = self.rules_in.recv() {
            self.pipeline.adopt(&new);
            self.events.adopt(&new.config, new.generation, now);
            let old = std::mem::replace(&mut self.rules, new);
            // The control plane frees it; if its ring were full we would
            // free it here, which only costs time on this one burst.
            let _ = self.rules_out.send(old);
        }
    }

    /// First pass over an RX burst: each packet is either the flow of
    /// another worker (handed off), a chain of mbufs, or decided here.
    /// True unless a chain is among them (then the burst goes packet by
    /// packet, so that it keeps its order).
    #[inline(always)]
    fn route_burst(&mut self, burst: &Burst) -> bool {
        let mut vector = true;
        for (i, m) in burst.as_slice().iter().enumerate() {
            self.routes[i] = Route::Here;
            if self.software_dispatch {
                if let Some(owner) = engine::owner_worker(m.data(), self.workers) {
                    if owner != self.index {
                        self.routes[i] = Route::HandOff(owner);
                        continue;
                    }
                }
            }
            if m.nb_segs() > 1 {
                self.routes[i] = Route::Chained;
                vector = false;
            }
        }
        vector
    }

    /// Decides the packets of an RX burst that are ours as one vector
    /// ([`engine::Worker::process_burst`]: each stage over all of them),
    /// exports their events (timed as the `events` stage), then carries
    /// out each decision in order. If the vector stopped at a first
    /// fragment that releases held fragments, those are resumed as it is
    /// carried out and the packets after it go one by one (rare: only
    /// with reordered fragments about).
    #[inline(always)]
    fn decide_burst(&mut self, burst: &mut Burst, iface: usize, now: u64) {
        let mut frames: [&[u8]; MAX_BURST] = [&[]; MAX_BURST];
        let mut n = 0;
        for (m, route) in burst.as_slice().iter().zip(&self.routes) {
            if *route == Route::Here {
                frames[n] = m.data();
                n += 1;
            }
        }
        let Worker {
            pipeline,
            rules,
            screens,
            decisions,
            events,
            stage_totals,
            held,
            ..
        } = self;
        let decided = pipeline.process_burst::<CpuPrefetch>(
            rules,
            screens,
            &frames[..n],
            iface as u16,
            now,
            &mut decisions[..n],
            !held.is_empty(),
        );
        let before = tsc_cycles();
        for (d, frame) in decisions.iter().zip(&frames[..decided]) {
            for e in pipeline.events(d) {
                events.emit(&e, Some(d), frame, now);
            }
        }
        stage_totals.events_cycles += tsc_cycles() - before;
        stage_totals.events_packets += decided as u64;
        let mut slot = 0;
        for (i, m) in burst.drain().enumerate() {
            match self.routes[i] {
                Route::HandOff(owner) => self.hand_off(owner, m, TAG_PROCESS | iface as u64),
                _ if slot < decided => {
                    self.act(m, iface, now, slot);
                    slot += 1;
                }
                _ => self.process(m, iface, now),
            }
        }
    }

    /// A packet decided on its own (handed to us by another worker, or
    /// in a burst with a chain).
    #[inline(always)]
    fn process(&mut self, m: Mbuf, iface: usize, now: u64) {
        if m.nb_segs() > 1 {
            return self.process_chained(m, iface, now);
        }
        let Worker {
            pipeline,
            rules,
            screens,
            decisions,
            ..
        } = self;
        let d = &mut decisions[PACKET_SLOT];
        pipeline.process_into(rules, screens, m.data(), iface as u16, now, d);
        self.act_alone(m, iface, now);
    }

    /// A multi-segment packet: the pipeline reads a copy of the whole
    /// frame (its headers and lengths span the chain), the chain is what
    /// goes out. Counted in `multi_segment`.
    #[cold]
    fn process_chained(&mut self, m: Mbuf, iface: usize, now: u64) {
        bump(&self.counters.multi_segment, 1);
        let Worker {
            pipeline,
            rules,
            screens,
            scratch,
            decisions,
            ..
        } = self;
        // A chain that does not fit (longer than any IP packet) is judged
        // on its first segment: malformed, counted, handled by policy.
        let frame = match m.copy_chain(scratch) {
            Some(frame) => frame,
            None => m.data(),
        };
        let d = &mut decisions[PACKET_SLOT];
        pipeline.process_into(rules, screens, frame, iface as u16, now, d);
        self.act_alone(m, iface, now);
    }

    /// Exports the events of the decision in [`PACKET_SLOT`] and carries
    /// it out: a packet decided on its own.
    fn act_alone(&mut self, m: Mbuf, iface: usize, now: u64) {
        self.export_events(&m, now, PACKET_SLOT);
        self.act(m, iface, now, PACKET_SLOT);
    }

    /// Carries out the decision in `slot` made for `m` (its events are
    /// exported; the pipeline counted it): forward, drop, reject or hold;
    /// then the fragments a first fragment releases.
    #[inline(always)]
    fn act(&mut self, m: Mbuf, iface: usize, now: u64, slot: usize) {
        let d = &self.decisions[slot];
        let (verdict, packet) = (d.verdict, d.packet);
        let first_fragment = packet.filter(|p| p.frag.is_first_fragment);
        match verdict {
            Verdict::Forward { egress } => self.stage(egress as usize, m),
            Verdict::Drop => self.discard(m),
            Verdict::Reject => {
                self.send_reject(&m, slot, iface);
                self.discard(m);
            }
            Verdict::Hold => {
                let Some(pkt) = packet else { return };
                if let Some((oldest, _)) = self.held.hold(m, iface as u16, &pkt, now) {
                    self.give_up_held(oldest, GaveUp::HoldFull);
                }
            }
        }
        if let Some(first) = first_fragment {
            let datagram = DatagramKey::of(&first);
            while let Some((m, ingress)) = self.held.take_released(datagram) {
                self.resume_held(m, ingress as usize, now);
            }
        }
    }

    /// Frees a dropped packet with the others of its burst (one bulk
    /// return to the pool, after the burst).
    #[inline(always)]
    fn discard(&mut self, m: Mbuf) {
        if let Err(m) = self.dropped.push(m) {
            self.dropped.clear();
            let _ = self.dropped.push(m);
        }
    }

    /// A held fragment whose first fragment has been decided: its flow
    /// is known now.
    fn resume_held(&mut self, m: Mbuf, iface: usize, now: u64) {
        let Worker {
            pipeline,
            rules,
            screens,
            scratch,
            decisions,
            ..
        } = self;
        // A chained (jumbo) fragment is read whole, as `process_chained` does.
        let frame = match m.nb_segs() {
            1 => m.data(),
            _ => m.copy_chain(scratch).unwrap_or(m.data()),
        };
        let d = &mut decisions[PACKET_SLOT];
        pipeline.resume_held(rules, screens, frame, iface as u16, now, d);
        self.act_alone(m, iface, now);
    }

    /// Drops a held fragment without a decision (the pipeline counts it
    /// by why).
    fn give_up_held(&mut self, m: Mbuf, why: GaveUp) {
        self.pipeline.give_up_held(why);
        drop(m);
    }

    /// Counts and exports the events of the decision in `slot`.
    #[inline(always)]
    fn export_events(&mut self, m: &Mbuf, now: u64, slot: usize) {
        let Worker {
            pipeline,
            decisions,
            events,
            ..
        } = self;
        let d = &decisions[slot];
        for e in pipeline.events(d) {
            events.emit(&e, Some(d), m.data(), now);
        }
    }

    /// Answers the packet of the reject decision in `slot` out of its
    /// ingress interface (a TCP RST, an ICMP unreachable or too-big).
    fn send_reject(&mut self, original: &Mbuf, slot: usize, iface: usize) {
        let Some(mut answer) = Mbuf::alloc(&self.pool) else {
            return;
        };
        let Some(room) = answer.append(1280) else {
            return;
        };
        let d = &self.decisions[slot];
        if let Some(len) = engine::build_answer_to(&self.rules, d, original.data(), room) {
            answer.truncate(len as u16);
            bump(&self.counters.rejects_sent, 1);
            self.stage(iface, answer);
        }
    }

    fn age(&mut self, now: u64) {
        while let Some((m, _)) = self.held.take_expired(now) {
            self.give_up_held(m, GaveUp::Timeout);
        }
        let Worker {
            pipeline,
            rules,
            screens,
            events,
            ..
        } = self;
        pipeline.expire(rules, screens, now, EXPIRE_BUDGET, &mut |e| {
            events.emit(&e, None, &[], now)
        });
        // The hub keeps name tables from here on for consumers to come.
        events
            .counters
            .publish_oldest_generation(pipeline.oldest_generation(rules));
        self.publish_pipeline_counters();
    }

    /// Works on the control plane's listing or clearing job, if any,
    /// within its small budget (see [`crate::sessions`]).
    #[inline(always)]
    fn serve_session_job(&mut self, now: u64) {
        let Worker {
            pipeline,
            rules,
            screens,
            events,
            session_jobs,
            ..
        } = self;
        session_jobs.serve(pipeline, rules, screens, now, &mut |e| {
            events.emit(&e, None, &[], now)
        });
    }

    /// Publishes [`STAGES`] totals (plain stores: this worker is the only writer).
    fn publish_stages(&self) {
        let t = &self.stage_totals;
        let sampled = self.pipeline.stage_cycles();
        let c = &self.counters;
        let set = |a: &AtomicU64, v: u64| a.store(v, Ordering::Relaxed);
        let at = |s: WorkerStage| s.index();
        set(&c.stage_cycles[at(WorkerStage::Rx)], t.rx_cycles);
        set(&c.stage_packets[at(WorkerStage::Rx)], t.rx_packets);
        for s in engine::Stage::ALL {
            set(
                &c.stage_cycles[at(WorkerStage::of(s))],
                sampled.cycles[s.index()],
            );
            set(&c.stage_packets[at(WorkerStage::of(s))], sampled.samples);
        }
        set(&c.stage_cycles[at(WorkerStage::Events)], t.events_cycles);
        set(&c.stage_packets[at(WorkerStage::Events)], t.events_packets);
        set(&c.stage_cycles[at(WorkerStage::Tx)], t.tx_cycles);
        set(&c.stage_packets[at(WorkerStage::Tx)], t.tx_packets);
    }

    /// Publishes the pipeline's counts (it is the only place they are
    /// counted) and the sessions open.
    fn publish_pipeline_counters(&self) {
        let c = &self.pipeline.counters;
        let set = |a: &AtomicU64, v: u64| a.store(v, Ordering::Relaxed);
        set(&self.counters.dropped, c.dropped.iter().sum());
        for (counter, &n) in self.counters.drops.iter().zip(&c.dropped) {
            set(counter, n);
        }
        for (counter, &n) in self.counters.screens.iter().zip(&c.screen) {
            set(counter, n);
        }
        set(&self.counters.malformed, c.malformed.iter().sum());
        set(&self.counters.neighbor_discovery, c.neighbor_discovery);
        set(&self.counters.related_icmp, c.related_icmp);
        set(&self.counters.fragments_held, c.fragments_held);
        self.counters
            .sessions_created
            .store(c.sessions_created, Ordering::Relaxed);
        self.counters
            .sessions_closed
            .store(c.sessions_closed, Ordering::Relaxed);
        self.counters
            .sessions_active
            .store(self.pipeline.sessions.open() as u64, Ordering::Relaxed);
        self.counters
            .sessions_reopened
            .store(c.sessions_reopened, Ordering::Relaxed);
        self.counters
            .sessions_cleared
            .store(c.sessions_cleared, Ordering::Relaxed);
        self.counters
            .tcp_rst_unconfirmed
            .store(c.tcp_rst_unconfirmed, Ordering::Relaxed);
        self.counters
            .policy_audit
            .store(c.policy_audit, Ordering::Relaxed);
    }

    #[inline(always)]
    fn hand_off(&mut self, owner: usize, m: Mbuf, tag: u64) {
        let ring = self.handoff_out[owner]
            .as_mut()
            .expect("rings exist between every pair of workers");
        // Counted before the receiver can see it (see `StopSignal::settled`).
        bump_release(&self.counters.handoffs_sent, 1);
        match ring.enqueue(m, tag) {
            Ok(()) => bump(&self.counters.handoff_out, 1),
            Err(m) if self.stalled.len() < STALL_CAPACITY => self.stalled.push((owner, m, tag)),
            Err(m) => {
                drop(m);
                bump(&self.counters.handoff_full, 1);
                bump_release(&self.counters.handoffs_done, 1);
            }
        }
    }

    /// Retries refused handoffs in order; returns how many went through.
    fn retry_stalled(&mut self) -> usize {
        let mut moved = 0;
        while !self.stalled.is_empty() {
            let (owner, m, tag) = self.stalled.remove(0);
            let ring = self.handoff_out[owner]
                .as_mut()
                .expect("rings exist between every pair of workers");
            match ring.enqueue(m, tag) {
                Ok(()) => {
                    bump(&self.counters.handoff_out, 1);
                    moved += 1;
                }
                Err(m) => {
                    self.stalled.insert(0, (owner, m, tag));
                    break;
                }
            }
        }
        moved
    }

    #[inline(always)]
    fn stage(&mut self, egress: usize, m: Mbuf) {
        match &mut self.tx[egress] {
            TxPath::Direct { queue, pending } => {
                if let Err(m) = pending.push(m) {
                    flush(queue, pending, &self.counters);
                    let _ = pending.push(m);
                }
            }
            TxPath::Handoff(owner) => {
                let owner = *owner;
                self.hand_off(owner, m, egress as u64);
            }
        }
    }

    fn drain_handoffs(&mut self, now: u64) -> usize {
        let mut moved = 0;
        for i in 0..self.handoff_in.len() {
            let mut taken: [Option<(Mbuf, u64)>; 32] = [const { None }; 32];
            let mut n = 0;
            self.handoff_in[i].dequeue_each(32, |m, tag| {
                taken[n] = Some((m, tag));
                n += 1;
            });
            for (m, tag) in taken.iter_mut().take(n).filter_map(Option::take) {
                if tag & TAG_PROCESS != 0 {
                    self.process(m, (tag & 0xffff) as usize, now);
                } else {
                    self.stage(tag as usize, m);
                }
            }
            if n > 0 {
                // After whatever they produced was counted as sent.
                bump_release(&self.counters.handoffs_done, n as u64);
            }
            moved += n;
        }
        moved
    }

    fn flush_all(&mut self) {
        for path in &mut self.tx {
            if let TxPath::Direct { queue, pending } = path {
                flush(queue, pending, &self.counters);
            }
        }
    }
}

/// A stuck worker, for the watchdog test: no loop, no packet, until the
/// stop.
#[cold]
fn stall(stop: &StopSignal) {
    while !stop.stop.load(Ordering::Relaxed) {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[inline(always)]
fn flush(queue: &mut TxQueue, pending: &mut Burst, counters: &WorkerCounters) {
    if pending.is_empty() {
        return;
    }
    let sent = queue.tx_burst(pending);
    bump(&counters.tx, sent as u64);
    if !pending.is_empty() {
        bump(&counters.tx_full, pending.len() as u64);
        pending.clear();
    }
}
