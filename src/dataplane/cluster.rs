//! The control plane's side of a high-availability pair: the sync link
//! (a kernel UDP socket: no DPDK port is spent on it, and it can run over
//! a management network), an optional second heartbeat link, the
//! protocol ([`rampart_cluster::node::Node`], conntrackd's FT-FW), and the
//! workers' sync rings. It never blocks: sockets are non-blocking, a
//! worker ring that is full keeps the rest in a bounded backlog, and a
//! datagram that is not the peer's is dropped and counted.

use std::collections::VecDeque;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use serde_json::{json, Value};

use rampart_cluster::node::{Apply, Node};
use rampart_cluster::role::{Path, Role, Settings, Why};
use rampart_cluster::wire::{Closed, Header, Kind};
use rampart_core::{RingConsumer, RingProducer};
use rampart_pipeline::config::Cluster;

use crate::cluster_sync::{ClusterShared, SlotKind, SyncCounters, SyncSlot};
use crate::log;

/// Unacknowledged datagrams kept for resending (FT-FW's resend queue):
/// about 27,000 session records; a gap older than that is recovered by a
/// bulk sync.
const RESEND_BYTES: usize = 4 << 20;
/// Records per worker waiting for room in its install ring, at most:
/// beyond, they are counted lost (the next bulk sync brings them back).
const BACKLOG: usize = 1 << 20;
/// At most one bulk sync per this long repairs changes lost before the
/// sync link.
const REPAIR_EVERY: std::time::Duration = std::time::Duration::from_secs(10);
/// Datagrams read per poll at most, so events and operators get their turn.
const RECV_PER_POLL: usize = 256;
/// Slots read from each worker's ring per poll at most.
const DRAIN_PER_POLL: usize = 1024;

/// The link's own counters, beside the protocol's.
#[derive(Default, Clone, Copy)]
struct LinkCounters {
    datagrams_sent: u64,
    datagrams_received: u64,
    /// Datagrams from an address that is not the peer's.
    not_from_peer: u64,
    send_errors: u64,
    /// Synced sessions dropped because a worker's install backlog was full.
    backlog_lost: u64,
}

pub struct ClusterLink {
    config: Cluster,
    node: Node,
    sync: UdpSocket,
    heartbeat: Option<UdpSocket>,
    shared: Arc<ClusterShared>,
    from_workers: Vec<RingConsumer<SyncSlot>>,
    to_workers: Vec<RingProducer<SyncSlot>>,
    backlog: Vec<VecDeque<SyncSlot>>,
    worker_counters: Vec<Arc<SyncCounters>>,
    workers: usize,
    /// Workers that finished the bulk walk under way, if one is.
    bulk: Option<Vec<bool>>,
    /// A bulk was asked for while one was under way: another follows.
    bulk_again: bool,
    counters: LinkCounters,
    /// The monotonic origin of the protocol's clock.
    epoch: Instant,
    last_failover: Option<(u64, Why, Role)>,
    last_refusal_logged: Option<Instant>,
    /// Lost changes (summed over the workers) a bulk sync was started for,
    /// and when the last one was.
    lost_repaired: u64,
    last_repair: Option<Instant>,
    out: Vec<Vec<u8>>,
    sessions: u64,
    generation: u32,
}

impl ClusterLink {
    /// Binds the sync link (and the second heartbeat link) of `config`.
    pub fn bind(
        config: &Cluster,
        boot_id: u64,
        shared: Arc<ClusterShared>,
        from_workers: Vec<RingConsumer<SyncSlot>>,
        to_workers: Vec<RingProducer<SyncSlot>>,
        worker_counters: Vec<Arc<SyncCounters>>,
    ) -> anyhow::Result<ClusterLink> {
        let open = |addr: SocketAddr, what: &str| -> anyhow::Result<UdpSocket> {
            let s = UdpSocket::bind(addr)
                .with_context(|| format!("cluster.{what}: binding UDP {addr}"))?;
            s.set_nonblocking(true)?;
            Ok(s)
        };
        let sync = open(config.local, "local")?;
        let heartbeat = match config.heartbeat_local {
            Some(a) => Some(open(a, "heartbeat-local")?),
            None => None,
        };
        let settings = Settings {
            node: config.node_id.into(),
            priority: config.priority,
            preempt: config.preempt,
            hold_ns: u64::from(config.hold_time_ms) * 1_000_000,
            second_path: config.heartbeat_peer.is_some(),
            takeover_on_sync_loss: config.takeover_on_sync_loss,
        };
        let workers = from_workers.len();
        let node = Node::new(
            settings,
            boot_id,
            u64::from(config.heartbeat_interval_ms) * 1_000_000,
            RESEND_BYTES,
            0,
        );
        log::notice!(
            "cluster {}: node {} (priority {}), sync link {} -> {}{}; standby until the peer is heard or {} ms pass in silence",
            config.name,
            config.node_id,
            config.priority,
            config.local,
            config.peer,
            match (config.heartbeat_local, config.heartbeat_peer) {
                (Some(l), Some(p)) => format!(", heartbeat link {l} -> {p}"),
                _ => String::new(),
            },
            config.hold_time_ms
        );
        Ok(ClusterLink {
            config: config.clone(),
            node,
            sync,
            heartbeat,
            shared,
            from_workers,
            to_workers,
            backlog: (0..workers).map(|_| VecDeque::new()).collect(),
            worker_counters,
            workers,
            bulk: None,
            bulk_again: false,
            counters: LinkCounters::default(),
            epoch: Instant::now(),
            last_failover: None,
            last_refusal_logged: None,
            lost_repaired: 0,
            last_repair: None,
            out: Vec::new(),
            sessions: 0,
            generation: 1,
        })
    }

    fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// Sessions open and the config generation, for the heartbeats.
    pub fn set_load(&mut self, sessions: u64, generation: u32) {
        self.sessions = sessions;
        self.generation = generation;
    }

    /// One round: the workers' changes out, the peer's datagrams in,
    /// heartbeats and the election. Returns the work done (0: idle).
    pub fn poll(&mut self) -> usize {
        let now = self.now_ns();
        let mut work = self.drain_workers();
        self.repair_losses();
        work += self.receive(now);
        if let Some(a) = self
            .node
            .tick(now, self.sessions, self.generation, &mut self.out)
        {
            self.apply(vec![a]);
        }
        self.node.flush(&mut self.out);
        self.feed_workers();
        work += self.send();
        work
    }

    /// The workers' session changes and bulk pages, to the protocol.
    fn drain_workers(&mut self) -> usize {
        let mut moved = 0;
        for w in 0..self.workers {
            let (node, out, bulk) = (&mut self.node, &mut self.out, &mut self.bulk);
            let mut done = false;
            moved +=
                self.from_workers[w].dequeue_in_place(DRAIN_PER_POLL, |slot| match slot.kind() {
                    Some(SlotKind::Update) => {
                        if let Some(r) = slot.record() {
                            node.update(r, out);
                        }
                    }
                    Some(SlotKind::Removed) => {
                        if let Some((id, key)) = slot.ended() {
                            node.closed(Closed { id, key }, out);
                        }
                    }
                    Some(SlotKind::Bulk) => {
                        if let Some(r) = slot.record() {
                            node.bulk_record(r, out);
                        }
                    }
                    Some(SlotKind::BulkDone) => done = true,
                    _ => {}
                });
            if done {
                if let Some(finished) = bulk {
                    finished[w] = true;
                }
            }
        }
        if self.bulk.as_ref().is_some_and(|f| f.iter().all(|&d| d)) {
            self.bulk = None;
            self.node.end_bulk(&mut self.out);
            log::info!("cluster: bulk sync to the peer sent");
            if std::mem::take(&mut self.bulk_again) {
                self.start_bulk();
            }
        }
        moved
    }

    /// Reads what the peer sent on both links.
    fn receive(&mut self, now: u64) -> usize {
        let mut buf = [0u8; 2048];
        let mut got: Vec<(Path, Vec<u8>, SocketAddr)> = Vec::new();
        let links = [
            (Path::SyncLink, Some(&self.sync), self.config.peer),
            (
                Path::HeartbeatLink,
                self.heartbeat.as_ref(),
                self.config.heartbeat_peer.unwrap_or(self.config.peer),
            ),
        ];
        for (path, socket, peer) in links {
            let Some(socket) = socket else { continue };
            for _ in 0..RECV_PER_POLL {
                // WouldBlock, or the ICMP error of an earlier send.
                let Ok((len, from)) = socket.recv_from(&mut buf) else {
                    break;
                };
                if from.ip() != peer.ip() {
                    self.counters.not_from_peer += 1;
                    continue;
                }
                got.push((path, buf[..len].to_vec(), from));
            }
        }
        let n = got.len();
        for (path, d, from) in got {
            self.counters.datagrams_received += 1;
            let refused_before = self.node.counters.refused;
            let applies = self.node.receive(&d, path, now, &mut self.out);
            if self.node.counters.refused > refused_before {
                self.log_refusal(from);
            }
            self.apply(applies);
        }
        n
    }

    /// One log line per second at most about datagrams refused.
    fn log_refusal(&mut self, from: SocketAddr) {
        let now = Instant::now();
        if self
            .last_refusal_logged
            .is_some_and(|t| now.duration_since(t).as_secs() < 1)
        {
            return;
        }
        self.last_refusal_logged = Some(now);
        let why = self.node.last_refusal.as_ref().map_or_else(
            || "it carries this node's own id (a loop)".to_owned(),
            |e| e.to_string(),
        );
        log::warning!(
            "cluster: refused a datagram from {from} on the sync link: {why} ({} refused so far); nothing of it was installed",
            self.node.counters.refused
        );
    }

    fn apply(&mut self, applies: Vec<Apply>) {
        for a in applies {
            match a {
                Apply::Install(records) => {
                    for r in records {
                        let w = self.owner(&r.key);
                        let mut slot = SyncSlot::default();
                        slot.set_record(SlotKind::Install, &r);
                        self.queue(w, slot);
                    }
                }
                Apply::Remove(closed) => {
                    for c in closed {
                        let w = self.owner(&c.key);
                        let mut slot = SyncSlot::default();
                        slot.set_ended(SlotKind::Remove, c.id, &c.key);
                        self.queue(w, slot);
                    }
                }
                Apply::SendBulk => {
                    if self.bulk.is_some() {
                        self.bulk_again = true;
                    } else {
                        self.start_bulk();
                    }
                }
                Apply::Role(role, why) => self.set_role(role, why),
                Apply::BulkBegins => self.tell_workers(SlotKind::BulkBegin),
                Apply::BulkEnds => self.tell_workers(SlotKind::BulkEnd),
            }
        }
    }

    fn tell_workers(&mut self, kind: SlotKind) {
        for w in 0..self.workers {
            let mut slot = SyncSlot::default();
            slot.set_kind(kind);
            self.queue(w, slot);
        }
    }

    /// Session changes the workers could not hand over (a full sync ring)
    /// never reached the protocol, so no acknowledgment asks for them
    /// again: when some were lost, the active sends its whole table
    /// (what the peer holds and this table lacks goes at its end), at
    /// most once per [`REPAIR_EVERY`].
    fn repair_losses(&mut self) {
        let lost: u64 = self
            .worker_counters
            .iter()
            .map(|c| c.lost.load(Ordering::Relaxed))
            .sum();
        let due = self.last_repair.is_none_or(|t| t.elapsed() >= REPAIR_EVERY);
        if lost > self.lost_repaired
            && due
            && self.bulk.is_none()
            && self.node.role() == Role::Active
            && self.node.roles().peer().is_some()
        {
            log::warning!(
                "cluster: {} session change(s) did not fit a worker's sync ring (counted in changes_lost): sending the whole table to the peer again",
                lost - self.lost_repaired
            );
            self.lost_repaired = lost;
            self.last_repair = Some(Instant::now());
            self.start_bulk();
        }
    }

    fn start_bulk(&mut self) {
        log::info!("cluster: bulk sync of the session table to the peer begins");
        self.node.begin_bulk(&mut self.out);
        self.bulk = Some(vec![false; self.workers]);
        self.shared.bulk_generation.fetch_add(1, Ordering::AcqRel);
    }

    fn set_role(&mut self, role: Role, why: Why) {
        let active = role == Role::Active;
        self.shared.active.store(active, Ordering::Release);
        self.last_failover = Some((super::wall_ns(), why, role));
        let why_text = why_text(why);
        if active {
            log::notice!(
                "cluster {}: this node is now ACTIVE ({why_text})",
                self.config.name
            );
        } else {
            log::notice!(
                "cluster {}: this node is now STANDBY ({why_text})",
                self.config.name
            );
        }
    }

    /// The worker that owns `key`'s flow here (as the RX path decides).
    fn owner(&self, key: &rampart_pipeline::flow::FlowKey) -> usize {
        rampart_pipeline::engine::owner_of_key(key, self.workers)
    }

    fn queue(&mut self, w: usize, slot: SyncSlot) {
        if self.backlog[w].is_empty() && self.to_workers[w].enqueue_burst(&[slot]) == 1 {
            return;
        }
        if self.backlog[w].len() >= BACKLOG {
            self.counters.backlog_lost += 1;
            return;
        }
        self.backlog[w].push_back(slot);
    }

    /// Moves backlogged installs into the workers' rings as room frees.
    fn feed_workers(&mut self) {
        for w in 0..self.workers {
            while let Some(slot) = self.backlog[w].front() {
                if self.to_workers[w].enqueue_burst(std::slice::from_ref(slot)) == 0 {
                    break;
                }
                self.backlog[w].pop_front();
            }
        }
    }

    /// Sends what the protocol produced: heartbeats on both links, the
    /// rest on the sync link.
    fn send(&mut self) -> usize {
        let n = self.out.len();
        for d in self.out.drain(..) {
            let heartbeat = Header::decode(&d).is_ok_and(|(h, _)| h.kind == Kind::Heartbeat);
            let mut sent = self.sync.send_to(&d, self.config.peer).is_ok();
            if heartbeat {
                if let (Some(s), Some(p)) = (&self.heartbeat, self.config.heartbeat_peer) {
                    sent &= s.send_to(&d, p).is_ok();
                }
            }
            if sent {
                self.counters.datagrams_sent += 1;
            } else {
                self.counters.send_errors += 1;
            }
        }
        n
    }

    /// `rampart cluster failover`: hands the active role to the peer, or
    /// takes it.
    pub fn failover(&mut self) -> Value {
        let now = self.now_ns();
        match self.node.manual_failover() {
            Some(a) => {
                self.apply(vec![a]);
                if let Some(a) =
                    self.node
                        .heartbeat_now(now, self.sessions, self.generation, &mut self.out)
                {
                    self.apply(vec![a]);
                }
                self.send();
                json!({"ok": true, "role": role_name(self.node.role())})
            }
            None => json!({
                "ok": false,
                "role": role_name(self.node.role()),
                "error": "no failover: the peer has not been heard (a manual failover needs a live peer to take the role)"
            }),
        }
    }

    /// Before a stop: tells the peer (a heartbeat that says this node is
    /// leaving), so that it takes over at once instead of waiting out the
    /// hold time, or knows it is alone. If the peer is alive, the
    /// sessions are its (it holds them synced, or it is the active that
    /// logs them): the workers leave them to it instead of closing them.
    /// If it is not, they are closed and logged here, so none is lost.
    pub fn hand_over(&mut self) {
        let now = self.now_ns();
        let roles = self.node.roles();
        let peer_alive = roles.peer().is_some() && roles.paths_down(now).is_empty();
        self.node.flush(&mut self.out);
        self.node
            .leave(self.sessions, self.generation, &mut self.out);
        self.send();
        if peer_alive {
            self.shared.handover.store(true, Ordering::Release);
        }
    }

    /// This node forwards (and owns its sessions' ends).
    pub fn is_active(&self) -> bool {
        self.node.role() == Role::Active
    }

    /// `cluster` in `stats --json` and `rampart cluster status`.
    pub fn status_json(&self) -> Value {
        let now = self.now_ns();
        let roles = self.node.roles();
        let tx = self.node.sender_counters();
        let rx = self.node.receiver_counters();
        let link = self.node.counters;
        let sum = |f: fn(&SyncCounters) -> &std::sync::atomic::AtomicU64| -> u64 {
            self.worker_counters
                .iter()
                .map(|c| f(c).load(Ordering::Relaxed))
                .sum()
        };
        let paths_down: Vec<&str> = roles
            .paths_down(now)
            .iter()
            .map(|p| path_name(*p))
            .collect();
        json!({
            "name": self.config.name,
            "node_id": self.config.node_id,
            "priority": self.config.priority,
            "role": role_name(self.node.role()),
            "failovers": roles.failovers,
            "last_failover": self.last_failover.map(|(ns, why, role)| json!({
                "time_ns": ns,
                "to": role_name(role),
                "why": why_text(why),
            })),
            "peer": {
                "address": self.config.peer.to_string(),
                "heard": roles.peer().is_some(),
                "node_id": roles.peer().map(|p| p.node),
                "priority": roles.peer().map(|p| p.priority),
                "active": roles.peer().map(|p| p.active),
                "generation": self.node.peer_heartbeat().map(|h| h.generation),
                "sessions": self.node.peer_heartbeat().map(|h| h.sessions),
                "paths_down": paths_down,
            },
            "sync": {
                "datagrams_sent": self.counters.datagrams_sent,
                "datagrams_received": self.counters.datagrams_received,
                "records_sent": link.records_sent,
                "records_received": link.records_received,
                "resent": tx.resent,
                "resend_evicted": tx.evicted,
                "gaps_detected": rx.missing,
                "resend_requests": rx.nacks,
                "recovered": rx.recovered,
                "duplicates": rx.duplicates,
                "resyncs": rx.resyncs,
                "peer_restarts": rx.peer_restarts,
                "bulk_requests": link.bulk_requests,
                "bulk_pages": link.bulk_pages,
                "refused": link.refused,
                "not_from_peer": self.counters.not_from_peer,
                "send_errors": self.counters.send_errors,
                "changes_handed": sum(|c| &c.handed),
                "changes_lost": sum(|c| &c.lost),
                "installed": sum(|c| &c.installed),
                "install_refused": sum(|c| &c.install_refused),
                "install_backlog_lost": self.counters.backlog_lost,
                "removed": sum(|c| &c.removed),
                "stale_removed": sum(|c| &c.stale_removed),
                "standby_discarded": sum(|c| &c.standby_discarded),
            },
        })
    }
}

pub fn role_name(r: Role) -> &'static str {
    match r {
        Role::Active => "active",
        Role::Standby => "standby",
    }
}

fn path_name(p: Path) -> &'static str {
    match p {
        Path::SyncLink => "sync-link",
        Path::HeartbeatLink => "heartbeat-link",
    }
}

fn why_text(w: Why) -> &'static str {
    match w {
        Why::PeerSilent => "the peer was silent on every path for the hold time",
        Why::YieldedToPeer => {
            "both were active: the peer has the higher priority or the lower node id"
        }
        Why::Preempted => "preempt: this node has the higher priority",
        Why::Manual => "manual failover",
        Why::PeerYielded => "the peer handed the role over",
        Why::PeerLeft => "the peer is stopping",
    }
}
