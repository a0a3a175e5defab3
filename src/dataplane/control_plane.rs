//! The main lcore's work while the workers run. Two jobs that never wait
//! on each other: draining the event rings to the consumers (the hub:
//! bounded buffers, consumers that do not read are cut off), and serving
//! operators (control requests and scrapes with deadlines, reloads
//! compiled on a thread of their own). Nothing here blocks on a client.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use rampart_core::{port_stats, StartedPort};
use rampart_events::{ControlCommand, CutOffReason, Hub};

use super::reload::{Prepared, Reloader};
use super::sessions::{Refused, SessionDesk};
use super::{wall_ns, StopConditions};
use crate::control::{ControlSocket, Ticket};
use crate::export;
use crate::log;
use crate::metrics::MetricsEndpoint;
use crate::serve::{Answer, ServeCounters};
use crate::worker::WorkerCounters;

/// Per-type `drained` counts, published by the control plane for readers
/// on other threads (DPDK telemetry).
#[derive(Default)]
pub struct DrainedSnapshot(pub [std::sync::atomic::AtomicU64; rampart_events::EventType::COUNT]);

/// The answer to `sessions clear` on a standby: its sessions are copies
/// of the active's (the active logs their ends, and its clear removes the
/// copies too).
const STANDBY_CLEAR: &str = "this node is the pair's standby: its sessions are copies of the active's; clear them on the active (the copies here go with them)";

/// The answer to cluster requests of a node that runs alone.
const NOT_A_CLUSTER: &str = r#"{"error":"this dataplane runs alone: no [cluster] in its config"}"#;

/// The sockets operators talk to (the event socket is the hub's).
pub struct Endpoints {
    pub control: ControlSocket,
    pub metrics: Option<MetricsEndpoint>,
}

pub struct ControlPlane<'a> {
    pub hub: &'a mut Hub,
    pub sources: &'a mut [export::RingSource],
    pub ports: &'a [StartedPort],
    pub workers: &'a [(u32, Arc<WorkerCounters>)],
    pub reload: Reloader,
    pub drained: Arc<DrainedSnapshot>,
    /// `rampart sessions` and `sessions clear`, carried out through the
    /// workers' mailboxes.
    pub sessions: SessionDesk,
    /// When the workers started (just before this was made): the
    /// `uptime_s` of stats, over which a worker's load since start is
    /// its busy cycles.
    pub started: Instant,
    /// The high-availability link (`[cluster]`).
    pub cluster: Option<super::cluster::ClusterLink>,
    /// systemd: readiness, status and the watchdog.
    pub service: crate::service::Service,
    /// Connection counters as last logged (refusals are logged as counts
    /// once a second, not one line per connection).
    logged: Logged,
}

#[derive(Default)]
struct Logged {
    at: Option<Instant>,
    consumers_refused: u64,
    control: ServeCounters,
}

impl<'a> ControlPlane<'a> {
    pub fn new(
        hub: &'a mut Hub,
        sources: &'a mut [export::RingSource],
        ports: &'a [StartedPort],
        workers: &'a [(u32, Arc<WorkerCounters>)],
        reload: Reloader,
        drained: Arc<DrainedSnapshot>,
        sessions: SessionDesk,
    ) -> Self {
        ControlPlane {
            hub,
            sources,
            ports,
            workers,
            reload,
            drained,
            sessions,
            started: Instant::now(),
            cluster: None,
            service: crate::service::Service::from_env(),
            logged: Logged::default(),
        }
    }

    /// Drains, serves and watches the stop conditions until one holds;
    /// returns which. A signal is seen within one loop iteration whatever
    /// clients do, since nothing in the loop waits on them.
    pub fn run_until_stop(
        &mut self,
        ep: &mut Endpoints,
        signalled: &AtomicBool,
        reload_requested: &AtomicBool,
        when: &StopConditions,
        started_at: Instant,
    ) -> &'static str {
        let mut last_rx = u64::MAX;
        let mut last_change = Instant::now();
        let mut last_publish = Instant::now();
        loop {
            let mut moved = self.hub.poll(self.sources, wall_ns());
            if let Some(c) = &mut self.cluster {
                let sessions = self
                    .workers
                    .iter()
                    .map(|(_, w)| w.sessions_active.load(Ordering::Relaxed))
                    .sum();
                c.set_load(sessions, self.reload.generation);
                moved += c.poll();
            }
            let now = Instant::now();
            let control_counters = ep.control.counters();
            ep.control.serve(now, |command| match command {
                ControlCommand::Stats => Answer::Reply(self.stats_json(&control_counters)),
                ControlCommand::Rules => Answer::Reply(self.rules_json()),
                ControlCommand::Reload => Answer::Later(Ticket::Reload(self.reload.request())),
                ControlCommand::Cluster => Answer::Reply(match &self.cluster {
                    Some(c) => c.status_json().to_string(),
                    None => NOT_A_CLUSTER.to_string(),
                }),
                ControlCommand::ClusterFailover => Answer::Reply(match &mut self.cluster {
                    Some(c) => c.failover().to_string(),
                    None => NOT_A_CLUSTER.to_string(),
                }),
                ControlCommand::Sessions(request)
                    if request.clear && self.cluster.as_ref().is_some_and(|c| !c.is_active()) =>
                {
                    Answer::Reply(json!({"error": STANDBY_CLEAR}).to_string())
                }
                ControlCommand::Sessions(request) => match self.sessions.request(request) {
                    Ok(ticket) => Answer::Later(Ticket::Sessions(ticket)),
                    Err(Refused::Busy) => Answer::Reply(
                        json!({"error": "busy: too many session requests waiting; try again"})
                            .to_string(),
                    ),
                },
            });
            while let Some((ticket, reply)) = self.sessions.poll(now) {
                ep.control.complete(Ticket::Sessions(ticket), &reply, now);
            }
            if let Some(m) = &mut ep.metrics {
                m.serve(now, || self.prometheus_text());
            }
            self.service.tick(self.workers, now);
            if reload_requested.swap(false, Ordering::Relaxed) {
                // SIGHUP: nobody waits for the answer but the log.
                let _ = self.reload.request();
            }
            self.finish_reload(ep, now);
            self.reload.collect_retired();
            if now.duration_since(last_publish) >= Duration::from_millis(100) {
                last_publish = now;
                self.publish_drained();
            }
            self.log_connections(ep, now);
            if signalled.load(Ordering::Relaxed) {
                return "signal";
            }
            if when.duration.is_some_and(|d| started_at.elapsed() >= d) {
                return "duration reached";
            }
            if let Some(idle) = when.idle {
                let rx = self.packets_seen();
                if rx != last_rx {
                    last_rx = rx;
                    last_change = now;
                } else if last_change.elapsed() >= idle {
                    return "input idle";
                }
            }
            if moved == 0 {
                // A session request goes a page per worker answer: wait
                // less while one is under way.
                let nap = if self.sessions.busy() { 20 } else { 200 };
                std::thread::sleep(Duration::from_micros(nap));
            }
        }
    }

    /// Packets received or missed by the ports (the idle stop condition).
    fn packets_seen(&self) -> u64 {
        let rx: u64 = self
            .workers
            .iter()
            .map(|(_, c)| c.rx.load(Ordering::Relaxed))
            .sum();
        rx + self
            .ports
            .iter()
            .map(|p| port_stats(p.id()).imissed)
            .sum::<u64>()
    }

    /// Switches to a generation the reload thread finished, or says why
    /// not: in the reply, the daemon's log and a config_reject record to
    /// every event consumer. A refused reload changes nothing.
    fn finish_reload(&mut self, ep: &mut Endpoints, now: Instant) {
        let Some((ticket, result)) = self.reload.finished() else {
            return;
        };
        let result = result.and_then(|prepared| self.switch_to(prepared, ep));
        let reply = match &result {
            Ok(generation) => {
                log::notice!("reloaded the config: generation {generation}");
                self.service
                    .status(&format!("forwarding: generation {generation}"));
                serde_json::json!({"ok": true, "generation": generation})
            }
            Err(e) => {
                log::error!(
                    "reload rejected, generation {} keeps running: {e}",
                    self.reload.generation
                );
                let path = self
                    .reload
                    .path
                    .as_deref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                let errors: Vec<String> = e.lines().map(str::to_owned).collect();
                self.hub.announce_config_reject(&path, &errors);
                serde_json::json!({"ok": false, "generation": self.reload.generation, "error": e})
            }
        };
        ep.control
            .complete(Ticket::Reload(ticket), &reply.to_string(), now);
        self.reload.start_queued();
    }

    /// Applies every setting of the new generation at once: what can fail
    /// (binding a new Prometheus address, socket modes and groups) first,
    /// undone if a later step fails; then names and rules.
    fn switch_to(&mut self, p: Prepared, ep: &mut Endpoints) -> Result<u32, String> {
        let old = self.reload.config().clone();
        let new = p.rules.config.clone();
        let metrics = if new.telemetry.prometheus != old.telemetry.prometheus {
            Some(match new.telemetry.prometheus {
                Some(addr) => Some(MetricsEndpoint::bind(addr).map_err(|e| format!("{e:#}"))?),
                None => None,
            })
        } else {
            None
        };
        let (oe, ne) = (&old.events, &new.events);
        let old_control_gid = ep.control.gid();
        ep.control
            .set_access(ne.control_socket_mode, p.control_gid)
            .map_err(|e| format!("events.control_socket_mode/group: {e:#}"))?;
        if let Err(e) = self.hub.set_socket_access(ne.socket_mode, p.events_gid) {
            let _ = ep
                .control
                .set_access(oe.control_socket_mode, old_control_gid);
            return Err(format!("events.socket_mode/group: {e}"));
        }
        if let Some(m) = metrics {
            if let Some(m) = &m {
                log::info!("prometheus endpoint now on {}", m.addr());
            }
            ep.metrics = m;
        }
        let generation = p.rules.generation;
        // Names first, so every record of the new generation resolves.
        self.hub.set_names(generation, &p.names);
        self.sessions
            .set_names(generation, &p.names, self.hub.oldest_referenced());
        self.reload.publish(p.rules);
        Ok(generation)
    }

    /// Logs consumers cut off, and once a second what the sockets refused.
    fn log_connections(&mut self, ep: &Endpoints, now: Instant) {
        for cut in self.hub.take_cut_offs() {
            let why = match cut.reason {
                CutOffReason::Stalled => {
                    format!("it read nothing for {:.1} s", cut.silent_ns as f64 / 1e9)
                }
                CutOffReason::Evicted => format!(
                    "it read nothing for {:.1} s and every slot was taken",
                    cut.silent_ns as f64 / 1e9
                ),
                CutOffReason::FellBehind => {
                    "every slot was taken and it was the furthest behind (losing records)"
                        .to_owned()
                }
            };
            log::warning!(
                "event consumer {} cut off: {why} ({} bytes unread); its losses were counted",
                cut.id,
                cut.unread_bytes
            );
        }
        if self
            .logged
            .at
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
        {
            return;
        }
        self.logged.at = Some(now);
        let refused = self.hub.connections().refused;
        if refused > self.logged.consumers_refused {
            log::warning!(
                "event socket: refused {} connection(s): all {} consumer slots are taken by consumers that read",
                refused - self.logged.consumers_refused,
                self.hub.config().max_consumers
            );
            self.logged.consumers_refused = refused;
        }
        let c = ep.control.counters();
        let was = self.logged.control;
        if c.evicted > was.evicted || c.timed_out > was.timed_out || c.refused > was.refused {
            log::warning!(
                "control socket: {} client(s) closed for not sending a request within the deadline, {} evicted to make room, {} refused (every slot busy)",
                c.timed_out - was.timed_out,
                c.evicted - was.evicted,
                c.refused - was.refused
            );
        }
        self.logged.control = c;
    }

    /// Every event generated before the stop reaches the consumers (or is
    /// counted as dropped for them), then a final stats record; a consumer
    /// that does not read gets at most `patience`.
    pub fn drain_and_flush(&mut self, patience: Duration) {
        while self.hub.poll(self.sources, wall_ns()) > 0 {}
        let deadline = Instant::now() + patience;
        let flush_until_written = |hub: &mut Hub| {
            while Instant::now() < deadline && hub.has_pending() {
                hub.flush();
                std::thread::sleep(Duration::from_millis(1));
            }
        };
        // The final stats record goes after everything buffered, so a
        // consumer that is reading gets it even if its buffer was full.
        flush_until_written(self.hub);
        self.hub.emit_stats();
        flush_until_written(self.hub);
        if self.hub.has_pending() {
            log::warning!("a consumer did not read its last records within {patience:?}; the summary shows what stayed buffered");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::os::unix::net::UnixStream;
    use std::time::{Duration, Instant};

    use rampart_events::{CutOffReason, Hub, HubConfig};

    /// With the kernel's unread count (SIOCOUTQ), the hub tells a consumer
    /// that reads slowly behind a full socket from one that never reads.
    #[test]
    fn a_slow_reader_stays_and_a_consumer_that_never_reads_is_cut_off() {
        let mut hub = Hub::new(HubConfig {
            stall_timeout_ns: 400_000_000,
            unread_bytes: Some(rampart_core::socket_unread_bytes),
            consumer_buffer_bytes: 64 << 10,
            ..HubConfig::default()
        });
        let (slow_ours, mut slow) = UnixStream::pair().unwrap();
        let (silent_ours, _silent) = UnixStream::pair().unwrap();
        let slow_id = hub.add_consumer(slow_ours).unwrap();
        let silent_id = hub.add_consumer(silent_ours).unwrap();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            let mut total = 0;
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_millis(1500) {
                total += slow.read(&mut buf).unwrap_or(0);
                std::thread::sleep(Duration::from_millis(5));
            }
            total
        });
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_millis(1500) {
            // Far more than the slow reader takes: its socket stays full.
            for _ in 0..20 {
                hub.emit_stats();
            }
            hub.tick(super::wall_ns());
            std::thread::sleep(Duration::from_millis(2));
        }
        let read = reader.join().unwrap();
        assert!(read > 100_000, "the slow reader read {read} bytes");
        assert_eq!(
            hub.consumer_ids(),
            vec![slow_id],
            "only the slow reader stays"
        );
        let cut = hub.take_cut_offs();
        assert_eq!(cut.len(), 1);
        assert_eq!(
            (cut[0].id, cut[0].reason),
            (silent_id, CutOffReason::Stalled)
        );
        assert_eq!(hub.connections().cut_off, 1);
    }
}
