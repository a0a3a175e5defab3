//! The worker lcore's poll loop, shaped like DPDK's l3fwd: rx_burst,
//! decide the whole burst, stage per egress port, tx_burst, free the unsent.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use rampart_core::{tsc_cycles, Burst, Mbuf, MbufRingConsumer, MbufRingProducer, RxQueue, TxQueue};

/// Counters a worker publishes; written by that worker alone (plain
/// load+store, no locked instructions), read by the control plane.
#[repr(align(64))]
#[derive(Default)]
pub struct WorkerCounters {
    pub rx: AtomicU64,
    pub tx: AtomicU64,
    /// Packets the pipeline decided to drop.
    pub dropped: AtomicU64,
    /// Packets with no egress (interface without a peer).
    pub no_egress: AtomicU64,
    /// Packets the device did not accept at TX (freed, counted).
    pub tx_full: AtomicU64,
    /// Packets handed to another worker's TX queue, and those refused
    /// because that handoff ring was full.
    pub handoff_out: AtomicU64,
    pub handoff_full: AtomicU64,
    /// TSC cycles spent in loop iterations that did work.
    pub busy_cycles: AtomicU64,
}

#[inline(always)]
fn bump(counter: &AtomicU64, by: u64) {
    counter.store(counter.load(Ordering::Relaxed) + by, Ordering::Relaxed);
}

/// How this worker reaches one egress port.
pub enum TxPath {
    Direct { queue: TxQueue, pending: Burst },
    /// Index into `Worker::handoff_out` of the ring to the owning worker.
    Handoff(usize),
}

/// Everything one worker owns (l3fwd's per-lcore context).
pub struct Worker {
    /// RX queues with the interface index they belong to.
    pub rx: Vec<(RxQueue, usize)>,
    /// Egress path per interface index.
    pub tx: Vec<TxPath>,
    /// Rings to the workers that own TX queues we lack (one per owner).
    pub handoff_out: Vec<MbufRingProducer>,
    /// Packets other workers hand us to transmit, tagged with the egress interface.
    pub handoff_in: Vec<MbufRingConsumer>,
    /// Peer interface of each interface (bump-in-the-wire pairing).
    pub peer: Vec<Option<usize>>,
    pub counters: Arc<WorkerCounters>,
}

/// Shared stop protocol: the control plane raises `stop`; every worker
/// stops RX and checks in, then drains handoffs until all have checked in,
/// so no packet already received is lost at shutdown.
pub struct StopSignal {
    pub stop: AtomicBool,
    pub rx_stopped: AtomicUsize,
    pub workers: usize,
}

impl Worker {
    pub fn run(mut self, stop: &StopSignal) -> Arc<WorkerCounters> {
        let mut burst = Burst::new();
        while !stop.stop.load(Ordering::Relaxed) {
            let start = tsc_cycles();
            let mut work = 0usize;
            for i in 0..self.rx.len() {
                let (queue, iface) = &mut self.rx[i];
                let n = queue.rx_burst(&mut burst);
                if n == 0 {
                    continue;
                }
                let iface = *iface;
                work += n;
                bump(&self.counters.rx, n as u64);
                self.process(iface, &mut burst);
            }
            work += self.drain_handoffs();
            self.flush_all();
            if work > 0 {
                bump(&self.counters.busy_cycles, tsc_cycles() - start);
            }
        }
        stop.rx_stopped.fetch_add(1, Ordering::AcqRel);
        loop {
            let all_stopped = stop.rx_stopped.load(Ordering::Acquire) == stop.workers;
            let moved = self.drain_handoffs();
            self.flush_all();
            if all_stopped && moved == 0 {
                break;
            }
            std::hint::spin_loop();
        }
        self.counters
    }

    /// Decides every packet of the burst and stages it for its egress.
    #[inline(always)]
    fn process(&mut self, ingress: usize, burst: &mut Burst) {
        let egress = self.peer[ingress];
        for m in burst.drain() {
            match egress {
                Some(out) => self.stage(out, m),
                None => bump(&self.counters.no_egress, 1),
            }
        }
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
            TxPath::Handoff(ring) => match self.handoff_out[*ring].enqueue(m, egress as u64) {
                Ok(()) => bump(&self.counters.handoff_out, 1),
                Err(m) => {
                    drop(m);
                    bump(&self.counters.handoff_full, 1);
                }
            },
        }
    }

    fn drain_handoffs(&mut self) -> usize {
        let mut moved = 0;
        for i in 0..self.handoff_in.len() {
            let mut taken: [Option<(Mbuf, u64)>; 32] = [const { None }; 32];
            let mut n = 0;
            self.handoff_in[i].dequeue_each(32, |m, tag| {
                taken[n] = Some((m, tag));
                n += 1;
            });
            for (m, egress) in taken.iter_mut().take(n).filter_map(Option::take) {
                self.stage(egress as usize, m);
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
