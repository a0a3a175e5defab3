//! Which worker polls which RX queue and transmits on which TX queue:
//! pure arithmetic over what each device supports, tested without DPDK.

/// What a port can do, as far as queue planning cares.
#[derive(Clone, Copy, Debug)]
pub struct PortCaps {
    pub max_rx_queues: u16,
    pub max_tx_queues: u16,
    pub rss: bool,
}

/// How a worker reaches a port for transmit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxRoute {
    /// The worker owns this TX queue.
    Queue(u16),
    /// The port has fewer TX queues than workers: hand the packet to this
    /// worker, which owns a queue (lock-free SP/SC ring, no shared queue).
    Handoff(usize),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueuePlan {
    pub rx_queues: Vec<u16>,
    pub tx_queues: Vec<u16>,
    /// `(port, queue)` pairs each worker polls.
    pub rx_by_worker: Vec<Vec<(usize, u16)>>,
    /// `tx[worker][port]`.
    pub tx: Vec<Vec<TxRoute>>,
}

/// RSS ports get one RX queue per worker (queue q on worker q on every
/// port, so with a symmetric key both directions of a flow meet on one
/// worker); single-queue ports are spread round-robin over the workers.
pub fn plan(ports: &[PortCaps], workers: usize) -> QueuePlan {
    assert!(
        workers > 0,
        "config validation guarantees at least one worker"
    );
    let cap = |n: u16| (n.max(1) as usize).min(workers) as u16;
    let rx_queues: Vec<u16> = ports
        .iter()
        .map(|p| if p.rss { cap(p.max_rx_queues) } else { 1 })
        .collect();
    let tx_queues: Vec<u16> = ports.iter().map(|p| cap(p.max_tx_queues)).collect();
    let mut rx_by_worker = vec![Vec::new(); workers];
    let mut next_single = 0usize;
    for (port, &n) in rx_queues.iter().enumerate() {
        if ports[port].rss && n > 1 {
            for q in 0..n {
                rx_by_worker[q as usize].push((port, q));
            }
        } else {
            rx_by_worker[next_single % workers].push((port, 0));
            next_single += 1;
        }
    }
    let tx = (0..workers)
        .map(|w| {
            tx_queues
                .iter()
                .map(|&n| {
                    if w < n as usize {
                        TxRoute::Queue(w as u16)
                    } else {
                        TxRoute::Handoff(w % n as usize)
                    }
                })
                .collect()
        })
        .collect();
    QueuePlan {
        rx_queues,
        tx_queues,
        rx_by_worker,
        tx,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PCAP: PortCaps = PortCaps {
        max_rx_queues: 1,
        max_tx_queues: 1,
        rss: false,
    };
    const NIC: PortCaps = PortCaps {
        max_rx_queues: 16,
        max_tx_queues: 16,
        rss: true,
    };

    #[test]
    fn single_queue_ports_spread_over_workers_and_hand_off_tx() {
        let p = plan(&[PCAP, PCAP], 2);
        assert_eq!(p.rx_by_worker, vec![vec![(0, 0)], vec![(1, 0)]]);
        assert_eq!(p.tx[0], vec![TxRoute::Queue(0), TxRoute::Queue(0)]);
        assert_eq!(p.tx[1], vec![TxRoute::Handoff(0), TxRoute::Handoff(0)]);
    }

    #[test]
    fn rss_ports_put_queue_q_of_every_port_on_worker_q() {
        let p = plan(&[NIC, NIC], 2);
        assert_eq!(p.rx_queues, vec![2, 2]);
        assert_eq!(
            p.rx_by_worker,
            vec![vec![(0, 0), (1, 0)], vec![(0, 1), (1, 1)]]
        );
        assert!(p
            .tx
            .iter()
            .enumerate()
            .all(|(w, routes)| routes.iter().all(|r| *r == TxRoute::Queue(w as u16))));
    }

    #[test]
    fn every_rx_queue_is_polled_exactly_once() {
        for workers in 1..6 {
            let ports = [NIC, PCAP, NIC, PCAP, PCAP];
            let p = plan(&ports, workers);
            let mut seen: Vec<(usize, u16)> = p.rx_by_worker.concat();
            seen.sort();
            let mut want = Vec::new();
            for (port, &n) in p.rx_queues.iter().enumerate() {
                for q in 0..n {
                    want.push((port, q));
                }
            }
            assert_eq!(seen, want, "workers={workers}");
            for routes in &p.tx {
                for (port, r) in routes.iter().enumerate() {
                    if let TxRoute::Handoff(owner) = r {
                        assert_eq!(p.tx[*owner][port], TxRoute::Queue(*owner as u16));
                    }
                }
            }
        }
    }
}
