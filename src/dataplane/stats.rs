//! What the dataplane reports: `rampart stats` (JSON), `stats --rules`,
//! the Prometheus text, DPDK telemetry, and the summary printed at exit.

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rampart_core::{port_stats, PortStats, StartedPort};
use rampart_pipeline::config::Config;
use rampart_pipeline::engine::DropReason;
use rampart_pipeline::screen::ScreenOption;

use super::control_plane::{ControlPlane, DrainedSnapshot};
use crate::metrics::Exposition;
use crate::serve::ServeCounters;
use crate::worker::{Worker, WorkerCounters, STAGES};

pub struct Summary {
    pub(super) elapsed: Duration,
    pub(super) reason: &'static str,
    /// The same JSON `rampart stats --json` serves, taken at exit; the
    /// summary is its text (`report::stats_text`), as `rampart stats` prints.
    pub stats_json: String,
}

/// `/rampart/stats` and `/rampart/events` for `dpdk-telemetry.py`.
pub(super) fn register_telemetry(
    eal: &rampart_core::Eal,
    config: &Config,
    ports: &[StartedPort],
    workers: &[Worker],
    drained: &Arc<DrainedSnapshot>,
) -> anyhow::Result<()> {
    use rampart_core::telemetry;
    let counters: Vec<Arc<WorkerCounters>> = workers.iter().map(|w| w.counters.clone()).collect();
    let port_ids: Vec<(String, rampart_core::PortId)> = config
        .interfaces
        .iter()
        .zip(ports)
        .map(|(i, p)| (i.name.clone(), p.id()))
        .collect();
    telemetry::register(
        eal,
        "/rampart/stats",
        "Rampart worker, drop and port counters",
        Box::new(move || {
            let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
            let mut out = Vec::new();
            for (w, c) in counters.iter().enumerate() {
                out.push((format!("worker{w}.rx"), load(&c.rx)));
                out.push((format!("worker{w}.tx"), load(&c.tx)));
                out.push((format!("worker{w}.dropped"), load(&c.dropped)));
                out.push((format!("worker{w}.busy_cycles"), load(&c.busy_cycles)));
                for (i, stage) in STAGES.iter().enumerate() {
                    out.push((
                        format!("worker{w}.stage.{stage}.cycles"),
                        load(&c.stage_cycles[i]),
                    ));
                    out.push((
                        format!("worker{w}.stage.{stage}.packets"),
                        load(&c.stage_packets[i]),
                    ));
                }
                out.push((
                    format!("worker{w}.sessions_active"),
                    load(&c.sessions_active),
                ));
                for (i, reason) in DropReason::NAMES.iter().enumerate() {
                    out.push((format!("worker{w}.drop.{reason}"), load(&c.drops[i])));
                }
            }
            for (name, id) in &port_ids {
                let s = port_stats(*id);
                out.push((format!("port.{name}.ipackets"), s.ipackets));
                out.push((format!("port.{name}.opackets"), s.opackets));
                out.push((format!("port.{name}.imissed"), s.imissed));
            }
            out
        }),
    )?;
    let shared: Vec<Arc<rampart_events::SharedCounters>> =
        workers.iter().map(|w| w.events.counters.clone()).collect();
    let drained = drained.clone();
    telemetry::register(
        eal,
        "/rampart/events",
        "Rampart event accounting per type: generated = rate_limited + ring_overflow + drained + aggregating",
        Box::new(move || {
            let mut out = Vec::new();
            for (i, t) in rampart_events::EventType::ALL.iter().enumerate() {
                let mut sum = rampart_events::TypeCounters::default();
                for s in &shared {
                    sum.add(&s.snapshot().counters[i]);
                }
                out.push((format!("{}.generated", t.name()), sum.generated));
                out.push((format!("{}.rate_limited", t.name()), sum.rate_limited));
                out.push((format!("{}.ring_overflow", t.name()), sum.ring_overflow));
                out.push((format!("{}.aggregating", t.name()), sum.aggregating));
                out.push((
                    format!("{}.drained", t.name()),
                    drained.0[i].load(Ordering::Relaxed),
                ));
            }
            out
        }),
    )?;
    Ok(())
}

impl ControlPlane<'_> {
    /// The counters in Prometheus text format, conventional names.
    pub(super) fn prometheus_text(&self) -> String {
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        let mut e = Exposition::default();
        e.family(
            "rampart_config_generation",
            "gauge",
            "Config generation running now.",
        );
        e.sample(
            "rampart_config_generation",
            &[],
            self.reload.generation as u64,
        );
        type Pick = fn(&WorkerCounters) -> &std::sync::atomic::AtomicU64;
        let per_worker: [(&str, &str, &str, Pick); 6] = [
            (
                "rampart_worker_rx_packets_total",
                "counter",
                "Packets received by the worker.",
                |c| &c.rx,
            ),
            (
                "rampart_worker_tx_packets_total",
                "counter",
                "Packets the worker transmitted.",
                |c| &c.tx,
            ),
            (
                "rampart_worker_dropped_packets_total",
                "counter",
                "Packets the pipeline dropped.",
                |c| &c.dropped,
            ),
            (
                "rampart_worker_busy_cycles_total",
                "counter",
                "TSC cycles spent in loop iterations that did work.",
                |c| &c.busy_cycles,
            ),
            (
                "rampart_worker_sessions",
                "gauge",
                "Sessions open in the worker's table.",
                |c| &c.sessions_active,
            ),
            (
                "rampart_worker_sessions_cleared_total",
                "counter",
                "Sessions an operator ended (rampart sessions clear).",
                |c| &c.sessions_cleared,
            ),
        ];
        for (name, kind, help, pick) in per_worker {
            e.family(name, kind, help);
            for (w, (lcore, c)) in self.workers.iter().enumerate() {
                e.sample(
                    name,
                    &[("worker", &w.to_string()), ("lcore", &lcore.to_string())],
                    load(pick(c)),
                );
            }
        }
        for (name, help, pick) in [
            (
                "rampart_worker_stage_cycles_total",
                "TSC cycles measured per pipeline stage, each timed once per burst.",
                (|c| &c.stage_cycles) as fn(&WorkerCounters) -> &[std::sync::atomic::AtomicU64; STAGES.len()],
            ),
            (
                "rampart_worker_stage_packets_total",
                "Packets the stage cycles were measured over (cycles per packet = cycles / packets).",
                |c| &c.stage_packets,
            ),
        ] {
            e.family(name, "counter", help);
            for (w, (lcore, c)) in self.workers.iter().enumerate() {
                for (i, stage) in STAGES.iter().enumerate() {
                    e.sample(
                        name,
                        &[
                            ("worker", &w.to_string()),
                            ("lcore", &lcore.to_string()),
                            ("stage", stage),
                        ],
                        load(&pick(c)[i]),
                    );
                }
            }
        }
        e.family(
            "rampart_drops_total",
            "counter",
            "Packets dropped, by reason.",
        );
        for (w, (_, c)) in self.workers.iter().enumerate() {
            for (i, reason) in DropReason::NAMES.iter().enumerate() {
                e.sample(
                    "rampart_drops_total",
                    &[("worker", &w.to_string()), ("reason", reason)],
                    load(&c.drops[i]),
                );
            }
        }
        e.family(
            "rampart_screen_matches_total",
            "counter",
            "Packets each screen option matched (dropped, or alarm only).",
        );
        for (w, (_, c)) in self.workers.iter().enumerate() {
            for o in ScreenOption::ALL {
                e.sample(
                    "rampart_screen_matches_total",
                    &[("worker", &w.to_string()), ("option", o.name())],
                    load(&c.screens[o.index()]),
                );
            }
        }
        let ports: Vec<(String, PortStats)> = self
            .reload
            .config()
            .interfaces
            .iter()
            .zip(self.ports)
            .map(|(i, p)| (i.name.clone(), p.stats()))
            .collect();
        type PortPick = fn(&PortStats) -> u64;
        let per_port: [(&str, &str, PortPick); 3] = [
            (
                "rampart_port_rx_packets_total",
                "Packets the port received.",
                |s| s.ipackets,
            ),
            (
                "rampart_port_tx_packets_total",
                "Packets the port sent.",
                |s| s.opackets,
            ),
            (
                "rampart_port_rx_missed_total",
                "Packets the port dropped for lack of RX descriptors.",
                |s| s.imissed,
            ),
        ];
        for (name, help, pick) in per_port {
            e.family(name, "counter", help);
            for (iface, s) in &ports {
                e.sample(name, &[("interface", iface)], pick(s));
            }
        }
        let stats = self.hub.stats();
        type EvPick = fn(&rampart_events::TypeCounters) -> u64;
        let per_type: [(&str, &str, &str, EvPick); 5] = [
            (
                "rampart_events_generated_total",
                "Events generated by the workers.",
                "counter",
                |c| c.generated,
            ),
            (
                "rampart_events_rate_limited_total",
                "Events dropped by the per-type rate limit.",
                "counter",
                |c| c.rate_limited,
            ),
            (
                "rampart_events_ring_overflow_total",
                "Events dropped because a worker's ring was full.",
                "counter",
                |c| c.ring_overflow,
            ),
            (
                "rampart_events_drained_total",
                "Events the control plane took from the rings.",
                "counter",
                |c| c.drained,
            ),
            (
                "rampart_events_aggregating",
                "Events folded into aggregated records still waiting in a worker.",
                "gauge",
                |c| c.aggregating,
            ),
        ];
        for (name, help, kind, pick) in per_type {
            e.family(name, kind, help);
            for (i, t) in rampart_events::EventType::ALL.iter().enumerate() {
                e.sample(name, &[("type", t.name())], pick(&stats.events[i]));
            }
        }
        for (name, help, delivered) in [
            (
                "rampart_consumer_delivered_total",
                "Events accepted for a consumer.",
                true,
            ),
            (
                "rampart_consumer_dropped_total",
                "Events a slow consumer lost (counted, never silent).",
                false,
            ),
        ] {
            e.family(name, "counter", help);
            for c in &stats.consumers {
                for (i, t) in rampart_events::EventType::ALL.iter().enumerate() {
                    let v = if delivered {
                        c.delivered[i]
                    } else {
                        c.dropped[i]
                    };
                    e.sample(
                        name,
                        &[("consumer", &c.id.to_string()), ("type", t.name())],
                        v,
                    );
                }
            }
        }
        if let Some(c) = &self.cluster {
            cluster_metrics(&c.status_json(), &mut e);
        }
        e.finish()
    }

    /// Per-rule hit counters of the running generation (`stats --rules`).
    pub(super) fn rules_json(&self) -> String {
        use rampart_pipeline::filter::FilterOutcome;
        use rampart_pipeline::policy::PolicyMatch;
        let rules = &self.reload.current;
        let c = &rules.config;
        let zone = |z: Option<usize>| z.map_or("any".to_string(), |z| c.zones[z].name.clone());
        let mut policies: Vec<serde_json::Value> = c
            .policies
            .iter()
            .enumerate()
            .map(|(i, p)| {
                serde_json::json!({"policy": p.name, "from_zone": zone(p.from_zone), "to_zone": zone(p.to_zone),
                                   "action": p.action.as_str(), "audit": p.audit,
                                   "hits": rules.hits.policy(PolicyMatch::Rule(i as u32))})
            })
            .collect();
        policies.push(serde_json::json!({"policy": "default-policy", "action": c.default_policy.action.as_str(),
                                         "hits": rules.hits.policy(PolicyMatch::Default)}));
        let filters: Vec<serde_json::Value> = c
            .filters
            .iter()
            .enumerate()
            .map(|(f, filter)| {
                let n = filter.terms.len();
                let mut terms: Vec<serde_json::Value> = filter
                    .terms
                    .iter()
                    .enumerate()
                    .map(|(t, term)| {
                        serde_json::json!({"term": term.name, "action": term.then.action.name(),
                                           "hits": rules.hits.term(f as u16, FilterOutcome::Term(t as u16), n)})
                    })
                    .collect();
                terms.push(serde_json::json!({"term": "(implicit discard)", "action": "discard",
                                              "hits": rules.hits.term(f as u16, FilterOutcome::ImplicitDiscard, n)}));
                serde_json::json!({"filter": filter.name, "terms": terms})
            })
            .collect();
        serde_json::json!({"generation": rules.generation, "policies": policies, "filters": filters}).to_string()
    }

    pub(super) fn publish_drained(&self) {
        let stats = self.hub.stats();
        for (slot, c) in self.drained.0.iter().zip(&stats.events) {
            slot.store(c.drained, Ordering::Relaxed);
        }
    }

    /// `rampart stats --json`: the hub's event accounting plus worker and
    /// port counters.
    pub(super) fn stats_json(&self, control: &ServeCounters) -> String {
        let hub: serde_json::Value =
            serde_json::from_str(&self.hub.stats().to_json()).unwrap_or_default();
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        let workers: Vec<serde_json::Value> = self
            .workers
            .iter()
            .map(|(lcore, c)| {
                let drops: serde_json::Map<String, serde_json::Value> = DropReason::NAMES
                    .iter()
                    .enumerate()
                    .map(|(i, n)| (n.to_string(), load(&c.drops[i]).into()))
                    .collect();
                serde_json::json!({
                    "lcore": lcore,
                    "rx": load(&c.rx),
                    "tx": load(&c.tx),
                    "dropped": load(&c.dropped),
                    "drops": drops,
                    "screens": ScreenOption::ALL
                        .iter()
                        .map(|o| (o.name().to_owned(), load(&c.screens[o.index()]).into()))
                        .collect::<serde_json::Map<String, serde_json::Value>>(),
                    "tx_full": load(&c.tx_full),
                    "handoff": load(&c.handoff_out),
                    "handoff_full": load(&c.handoff_full),
                    "rejects_sent": load(&c.rejects_sent),
                    "malformed": load(&c.malformed),
                    "neighbor_discovery": load(&c.neighbor_discovery),
                    "related_icmp": load(&c.related_icmp),
                    "sessions_reopened": load(&c.sessions_reopened),
                    "sessions_cleared": load(&c.sessions_cleared),
                    "tcp_rst_unconfirmed": load(&c.tcp_rst_unconfirmed),
                    "fragments_held": load(&c.fragments_held),
                    "multi_segment": load(&c.multi_segment),
                    "policy_audit": load(&c.policy_audit),
                    "sessions_created": load(&c.sessions_created),
                    "sessions_closed": load(&c.sessions_closed),
                    "sessions_active": load(&c.sessions_active),
                    "busy_cycles": load(&c.busy_cycles),
                    "stage_cycles": stage_cycles_json(c),
                })
            })
            .collect();
        let ports: Vec<serde_json::Value> = self
            .ports
            .iter()
            .zip(&self.reload.config().interfaces)
            .map(|(p, i)| {
                let s = p.stats();
                serde_json::json!({"name": i.name, "device": super::port_name(&i.device), "ipackets": s.ipackets, "opackets": s.opackets, "imissed": s.imissed,
                                   "ierrors": s.ierrors, "oerrors": s.oerrors, "rx_nombuf": s.rx_nombuf})
            })
            .collect();
        serde_json::json!({
            "generation": self.reload.generation,
            "uptime_s": (self.started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
            // Busy cycles / (elapsed seconds * tsc_hz) is a worker's load.
            "tsc_hz": rampart_core::tsc_hz(),
            "events": hub.get("events").cloned().unwrap_or_default(),
            "episodes_untracked": hub.get("episodes_untracked").cloned().unwrap_or_default(),
            "consumers": hub.get("consumers").cloned().unwrap_or_default(),
            // Connections: to the event socket (refused at the cap, cut
            // off for not reading) and to the control socket.
            "consumer_connections": hub.get("consumer_connections").cloned().unwrap_or_default(),
            "control_connections": {"accepted": control.accepted, "answered": control.answered,
                                    "evicted": control.evicted, "refused": control.refused,
                                    "timed_out": control.timed_out,
                                    "failed": control.failed},
            "workers": workers,
            "ports": ports,
            "cluster": self.cluster.as_ref().map(|c| c.status_json()),
        })
        .to_string()
    }
}

/// The pair's state and sync counters (from `cluster` of stats).
fn cluster_metrics(status: &serde_json::Value, e: &mut Exposition) {
    let n = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
    e.family(
        "rampart_cluster_active",
        "gauge",
        "1 while this node is the pair's active node (it forwards), 0 while standby.",
    );
    e.sample(
        "rampart_cluster_active",
        &[],
        u64::from(status["role"] == "active"),
    );
    e.family(
        "rampart_cluster_peer_up",
        "gauge",
        "1 while the peer is heard on every heartbeat path.",
    );
    let up = status["peer"]["heard"] == true
        && status["peer"]["paths_down"]
            .as_array()
            .is_some_and(Vec::is_empty);
    e.sample("rampart_cluster_peer_up", &[], u64::from(up));
    e.family(
        "rampart_cluster_failovers_total",
        "counter",
        "Role changes of this node.",
    );
    e.sample(
        "rampart_cluster_failovers_total",
        &[],
        n(&status["failovers"]),
    );
    e.family(
        "rampart_cluster_last_failover_seconds",
        "gauge",
        "When this node's role last changed (Unix time; 0: never).",
    );
    e.sample(
        "rampart_cluster_last_failover_seconds",
        &[],
        n(&status["last_failover"]["time_ns"]) / 1_000_000_000,
    );
    e.family(
        "rampart_cluster_sync_total",
        "counter",
        "Sync link counters by kind (sent, received, gaps, resends, bulk pages, refused, lost ...).",
    );
    if let Some(sync) = status["sync"].as_object() {
        for (what, v) in sync {
            e.sample("rampart_cluster_sync_total", &[("counter", what)], n(v));
        }
    }
}

/// `{"rx": {"cycles": C, "packets": P}, "parse": {...}, ...}` in [`STAGES`]
/// order: cycles per packet of a stage is C / P.
fn stage_cycles_json(c: &WorkerCounters) -> serde_json::Value {
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    STAGES
        .iter()
        .enumerate()
        .map(|(i, stage)| {
            (
                stage.to_string(),
                serde_json::json!({"cycles": load(&c.stage_cycles[i]), "packets": load(&c.stage_packets[i])}),
            )
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "rampart: stopped ({}) after {:.3} s",
            self.reason,
            self.elapsed.as_secs_f64()
        )?;
        let v: serde_json::Value = serde_json::from_str(&self.stats_json).unwrap_or_default();
        f.write_str(&crate::report::stats_text(&v))
    }
}
