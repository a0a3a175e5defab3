//! Brings the dataplane up from a validated config, runs it until a stop
//! condition, and brings it down in order.

mod plan;

use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rampart_core::{
    port_stats, ArcReceiver, ArcRing, ArcSender, Burst, EalBuilder, MbufRing, Mempool, Port,
    PortConfig, PortStats, QueueId, Ring, StartedPort,
};
use rampart_events::{ControlCommand, EventSlot, Hub, HubConfig};
use rampart_pipeline::config::Config;

use crate::control::ControlSocket;
use crate::export::{self, WorkerEvents};
use crate::log;
use crate::metrics::{Exposition, MetricsEndpoint};
use crate::worker::{
    Clock, Route, StopSignal, TxPath, Worker, WorkerCounters, EVENT_TYPES, STAGES,
    STAGE_SAMPLE_EVERY, STALL_CAPACITY,
};
use plan::{PortCaps, TxRoute};
use rampart_pipeline::engine::{Ruleset, DROP_COUNTERS};
use rampart_pipeline::screen::ScreenState;

const RX_DESCRIPTORS: u16 = 1024;
const TX_DESCRIPTORS: u16 = 1024;
const HANDOFF_RING_SIZE: u32 = 1024;

/// When a run ends besides SIGINT/SIGTERM.
#[derive(Clone, Debug, Default)]
pub struct StopConditions {
    pub duration: Option<Duration>,
    /// Stop once no packet arrived for this long (finite inputs).
    pub idle: Option<Duration>,
    /// Before starting the ports, wait up to this long for a first event
    /// consumer (so a replay's events are not drained to nobody).
    pub wait_consumer: Option<Duration>,
}

/// EAL arguments for a config: the config's own, then what Rampart adds
/// unless the operator already said it (never probe PCI unless a config
/// names a PCI device; a per-process file prefix; the lcores).
pub fn eal_args(config: &Config) -> Vec<String> {
    let mut args: Vec<String> = config.dataplane.eal.clone();
    let has = |args: &[String], flag: &str| {
        args.iter()
            .any(|a| a == flag || a.starts_with(&format!("{flag}=")))
    };
    let pci: Vec<&str> = config
        .interfaces
        .iter()
        .filter(|i| i.is_pci())
        .map(|i| i.device.as_str())
        .collect();
    if pci.is_empty() {
        if !has(&args, "--no-pci") {
            args.push("--no-pci".into());
        }
    } else {
        for dev in pci {
            args.push("-a".into());
            args.push(dev.into());
        }
    }
    for iface in config.interfaces.iter().filter(|i| !i.is_pci()) {
        args.push("--vdev".into());
        args.push(iface.device.clone());
    }
    if !has(&args, "--file-prefix") && !has(&args, "--in-memory") && !has(&args, "--no-shconf") {
        args.push(format!("--file-prefix=rampart-{}", std::process::id()));
    }
    if !has(&args, "-l") && !has(&args, "--lcores") && !has(&args, "-c") {
        // Main lcore (control plane) plus one per worker, spread over the
        // CPUs we may run on; the control plane mostly sleeps.
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let map: Vec<String> = (0..=config.dataplane.workers as usize)
            .map(|l| format!("{l}@{}", l % cpus))
            .collect();
        args.push("--lcores".into());
        args.push(map.join(","));
    }
    args
}

/// The DPDK port name of an interface's device: a vdev's name before its
/// first comma, or the PCI address itself.
fn port_name(device: &str) -> &str {
    device.split(',').next().unwrap_or(device).trim()
}

pub struct Summary {
    elapsed: Duration,
    reason: &'static str,
    ports: Vec<(String, String, PortStats)>,
    workers: Vec<(u32, Arc<WorkerCounters>)>,
    tsc_hz: u64,
    /// The event accounting after the final drain.
    events: rampart_events::HubStats,
    /// The same JSON `rampart stats --json` serves, taken at exit.
    pub stats_json: String,
}

/// Runs the dataplane. `config_path` is where `rampart reload` and SIGHUP
/// read the config again (the embedded demo has none and cannot reload).
pub fn run(
    config: &Config,
    config_path: Option<&Path>,
    stop_when: &StopConditions,
) -> anyhow::Result<Summary> {
    let workers = config.dataplane.workers as usize;
    // Everything this process creates (its sockets before their chmod to
    // events.socket_mode, DPDK's runtime files, --stats-out) is private to
    // its user unless the config says otherwise. Set before EAL starts
    // threads: the mask is per process.
    rampart_core::set_umask(0o077);
    let eal = EalBuilder::new().args(eal_args(config)).init().with_context(|| {
        let devices: Vec<String> = config
            .interfaces
            .iter()
            .map(|i| format!("interface[{}].device = {:?}", i.name, i.device))
            .collect();
        format!(
            "starting DPDK (EAL's own messages above say which argument or device it refused; devices: {})",
            devices.join(", ")
        )
    })?;
    let lcores = eal.worker_lcores();
    if lcores.len() < workers {
        bail!(
            "dataplane.workers = {workers} but EAL has {} worker lcores (check dataplane.eal -l/--lcores)",
            lcores.len()
        );
    }

    let mut ports = Vec::new();
    for iface in &config.interfaces {
        let port = Port::by_name(&eal, port_name(&iface.device))
            .with_context(|| format!("interface {} (device {:?})", iface.name, iface.device))?;
        ports.push(port);
    }
    let caps: Vec<PortCaps> = ports
        .iter()
        .map(|p| PortCaps {
            max_rx_queues: p.info().max_rx_queues,
            max_tx_queues: p.info().max_tx_queues,
            rss: p.supports_rss(),
        })
        .collect();
    let plan = plan::plan(&caps, workers);

    let descriptors: u32 = plan
        .rx_queues
        .iter()
        .zip(&plan.tx_queues)
        .map(|(&r, &t)| r as u32 * RX_DESCRIPTORS as u32 + t as u32 * TX_DESCRIPTORS as u32)
        .sum();
    let in_flight =
        (workers * (ports.len() + 1) * 32) as u32 + (workers * workers) as u32 * HANDOFF_RING_SIZE;
    let mbufs = (descriptors + in_flight + 4096).next_power_of_two() - 1;
    let pool = Mempool::create_pktmbuf(&eal, "rampart_mbufs", mbufs, 256, eal.socket_id())
        .context(
            "creating the packet mempool (are hugepages set up? see meson-scripts/setup.sh)",
        )?;

    // The event socket listens before any port starts, so no event of the
    // run is generated before a consumer could be there.
    if let Some(dir) = config
        .events
        .socket
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir).with_context(|| {
            format!(
                "events.socket {}: creating its directory {}",
                config.events.socket.display(),
                dir.display()
            )
        })?;
    }
    let hub_config = HubConfig {
        socket_mode: config.events.socket_mode,
        ..HubConfig::default()
    };
    let mut hub = Hub::bind(&config.events.socket, hub_config)
        .with_context(|| format!("events.socket {}", config.events.socket.display()))?;
    let start_ns = wall_ns();
    hub.set_start_time(start_ns);
    hub.set_names(1, &export::names(config));
    let control = ControlSocket::bind(&config.events.control_socket, config.events.socket_mode)
        .with_context(|| {
            format!(
                "events.control_socket {}",
                config.events.control_socket.display()
            )
        })?;
    if let Some(group) = &config.events.socket_group {
        for path in [&config.events.socket, &config.events.control_socket] {
            crate::control::set_group(path, group)?;
        }
    }
    let mut sources = Vec::new();
    let mut producers = Vec::new();
    for w in 0..workers {
        let (tx, rx) = Ring::<EventSlot>::create(
            &eal,
            &format!("events_{w}"),
            config.events.ring_size,
            eal.socket_id(),
        )?;
        producers.push(Some(tx));
        sources.push(export::RingSource(rx));
    }

    if let Some(patience) = stop_when.wait_consumer {
        let deadline = Instant::now() + patience;
        while hub.consumer_count() == 0 && Instant::now() < deadline {
            hub.accept();
            std::thread::sleep(Duration::from_millis(5));
        }
        // Consumers starting together connect within moments of each other.
        let grace = Instant::now() + Duration::from_millis(300);
        while Instant::now() < grace {
            hub.accept();
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    let mut started: Vec<StartedPort> = Vec::new();
    for (i, port) in ports.into_iter().enumerate() {
        let conf = PortConfig {
            rx_queues: plan.rx_queues[i],
            tx_queues: plan.tx_queues[i],
            rx_descriptors: RX_DESCRIPTORS,
            tx_descriptors: TX_DESCRIPTORS,
        };
        let name = &config.interfaces[i].name;
        let p = port
            .configure(&conf, &pool)
            .and_then(|p| p.start())
            .with_context(|| format!("interface {name}"))?;
        log::info!(
            "interface {name}: {} on port {}, {} RX / {} TX queues{}",
            p.info().driver,
            p.id(),
            p.rx_queue_count(),
            p.tx_queue_count(),
            if p.rss_symmetric() {
                ", symmetric RSS"
            } else {
                ""
            }
        );
        started.push(p);
    }

    // Software dispatch keeps both directions of a flow on one worker when
    // the ports cannot: several workers, and not every port spreads its RX
    // over one symmetric-RSS queue per worker.
    let software_dispatch = workers > 1
        && !started
            .iter()
            .all(|p| p.rss_symmetric() && p.rx_queue_count() as usize == workers);
    log::info!(
        "{workers} worker(s) on lcores {:?}; flows kept on one worker by {}",
        lcores.iter().take(workers).map(|l| l.0).collect::<Vec<_>>(),
        if workers == 1 {
            "having one worker"
        } else if software_dispatch {
            "software dispatch on an address hash"
        } else {
            "symmetric RSS"
        }
    );
    let rules = Arc::new(Ruleset::compile(Arc::new(config.clone()), 1));
    let screens = Arc::new(ScreenState::default());
    let clock_hz = rampart_core::tsc_hz();
    let mut to_workers = Vec::new();
    let mut from_workers = Vec::new();
    let mut worker_rules = Vec::new();
    for w in 0..workers {
        let (tx, rx) =
            ArcRing::create::<Ruleset>(&eal, &format!("rules_in_{w}"), 4, eal.socket_id())?;
        let (back_tx, back_rx) =
            ArcRing::create::<Ruleset>(&eal, &format!("rules_out_{w}"), 8, eal.socket_id())?;
        to_workers.push(tx);
        from_workers.push(back_rx);
        worker_rules.push(Some((rx, back_tx)));
    }
    let mut contexts: Vec<Worker> = (0..workers)
        .map(|w| {
            let (rules_in, rules_out) = worker_rules[w].take().expect("one mailbox per worker");
            Worker {
                index: w,
                workers,
                software_dispatch,
                rx: Vec::new(),
                tx: Vec::new(),
                handoff_out: (0..workers).map(|_| None).collect(),
                handoff_in: Vec::new(),
                pipeline: {
                    let mut p = rampart_pipeline::engine::Worker::new(w as u16, &rules);
                    p.measure_stages(rampart_core::tsc_cycles, STAGE_SAMPLE_EVERY);
                    p
                },
                rules: rules.clone(),
                screens: screens.clone(),
                pool: pool.clone(),
                clock: Clock::new(clock_hz),
                counters: Arc::new(WorkerCounters::default()),
                events: WorkerEvents::new(
                    producers[w].take().expect("one ring per worker"),
                    w as u16,
                    config,
                    1,
                ),
                stalled: Vec::with_capacity(STALL_CAPACITY),
                stage_totals: Default::default(),
                decision: rampart_pipeline::engine::Decision::BLANK,
                routes: [Route::HandOff(0); rampart_core::MAX_BURST],
                rules_in,
                rules_out,
            }
        })
        .collect();
    for c in &contexts {
        hub.register_worker(c.events.counters.clone());
    }
    let drained = Arc::new(DrainedSnapshot::default());
    register_telemetry(&eal, config, &started, &contexts, &drained)?;
    for (w, queues) in plan.rx_by_worker.iter().enumerate() {
        for &(port, q) in queues {
            let rxq = started[port].take_rx_queue(QueueId(q))?;
            contexts[w].rx.push((rxq, port));
        }
    }
    // A ring from every worker to every other: for flows another worker
    // owns, and for ports whose TX queue another worker owns.
    for from in 0..workers {
        for to in (0..workers).filter(|&to| to != from) {
            let (tx, rx) = MbufRing::create(
                &eal,
                &format!("handoff_{from}_{to}"),
                HANDOFF_RING_SIZE,
                eal.socket_id(),
            )?;
            contexts[from].handoff_out[to] = Some(tx);
            contexts[to].handoff_in.push(rx);
        }
    }
    for (w, ctx) in contexts.iter_mut().enumerate() {
        for (port, dev) in started.iter_mut().enumerate() {
            let path = match plan.tx[w][port] {
                TxRoute::Queue(q) => TxPath::Direct {
                    queue: dev.take_tx_queue(QueueId(q))?,
                    pending: Burst::new(),
                },
                TxRoute::Handoff(owner) => TxPath::Handoff(owner),
            };
            ctx.tx.push(path);
        }
    }

    let stop = Arc::new(StopSignal::new(workers));
    let signalled = Arc::new(AtomicBool::new(false));
    let reload_requested = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, reload_requested.clone())
        .context("installing the SIGHUP handler")?;
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, signalled.clone())
            .context("installing signal handlers")?;
    }

    let started_at = Instant::now();
    let counters: Vec<(u32, Arc<WorkerCounters>)> = contexts
        .iter()
        .zip(&lcores)
        .map(|(c, l)| (l.0, c.counters.clone()))
        .collect();
    let mut handles = Vec::new();
    for (ctx, &lcore) in contexts.into_iter().zip(&lcores) {
        let stop = stop.clone();
        handles.push(eal.launch(lcore, move || ctx.run(&stop))?);
    }

    let mut plane = ControlPlane {
        hub: &mut hub,
        sources: &mut sources,
        ports: &started,
        config: config.clone(),
        workers: &counters,
        drained: drained.clone(),
        reload: Reloader {
            path: config_path.map(Path::to_path_buf),
            generation: 1,
            to_workers,
            from_workers,
            current: rules.clone(),
        },
    };
    let metrics = match config.telemetry.prometheus {
        Some(addr) => Some(MetricsEndpoint::bind(addr)?),
        None => None,
    };
    let reason = plane.run_until_stop(
        &control,
        metrics.as_ref(),
        &signalled,
        &reload_requested,
        stop_when,
        started_at,
    );
    log::notice!("stopping: {reason}");
    stop.stop.store(true, Ordering::Release);
    // Keep draining events while the workers finish (their session close
    // events at shutdown can exceed a ring), then join them.
    let drain_deadline = Instant::now() + Duration::from_secs(10);
    while stop.finished.load(Ordering::Acquire) < workers && Instant::now() < drain_deadline {
        if plane.hub.poll(plane.sources, wall_ns()) == 0 {
            std::thread::sleep(Duration::from_micros(100));
        }
    }
    let mut failures = Vec::new();
    for h in handles {
        if let Err(e) = h.join() {
            failures.push(e.to_string());
        }
    }
    // Every event generated before the stop reaches the consumers (or is
    // counted as dropped for them), then a final stats record.
    plane.drain_and_flush(Duration::from_secs(2));
    let stats_json = plane.stats_json();
    let events = plane.hub.stats();
    let elapsed = started_at.elapsed();
    let port_summary = started
        .iter()
        .zip(&config.interfaces)
        .map(|(p, i)| (i.name.clone(), port_name(&i.device).to_string(), p.stats()))
        .collect();
    for p in &started {
        p.stop();
    }
    drop(started);
    if !failures.is_empty() {
        bail!("worker failure: {}", failures.join("; "));
    }
    Ok(Summary {
        elapsed,
        reason,
        ports: port_summary,
        workers: counters,
        tsc_hz: rampart_core::tsc_hz(),
        events,
        stats_json,
    })
}

/// Per-type `drained` counts, published by the control plane for readers
/// on other threads (DPDK telemetry).
#[derive(Default)]
pub struct DrainedSnapshot([std::sync::atomic::AtomicU64; rampart_events::EventType::COUNT]);

/// `/rampart/stats` and `/rampart/events` for `dpdk-telemetry.py`.
fn register_telemetry(
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
                for (i, reason) in DROP_COUNTERS.iter().enumerate() {
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
        "Rampart event accounting per type: generated = rate_limited + ring_overflow + drained",
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

fn wall_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The main lcore's work while workers run: drain the event rings to the
/// consumers, answer the control socket, watch the stop conditions.
struct ControlPlane<'a> {
    hub: &'a mut Hub,
    sources: &'a mut [export::RingSource],
    ports: &'a [StartedPort],
    /// The config now running (the last one a reload accepted).
    config: Config,
    workers: &'a [(u32, Arc<WorkerCounters>)],
    reload: Reloader,
    drained: Arc<DrainedSnapshot>,
}

/// Hot reload: parse, validate and compile off the hot path, then publish
/// the new ruleset to every worker, which switches between two bursts.
struct Reloader {
    path: Option<PathBuf>,
    generation: u32,
    to_workers: Vec<ArcSender<Ruleset>>,
    /// Rulesets the workers retired, freed here.
    from_workers: Vec<ArcReceiver<Ruleset>>,
    /// The generation running now (its per-rule hit counters).
    current: Arc<Ruleset>,
}

/// What a running dataplane cannot change without a restart.
fn restart_required(old: &Config, new: &Config) -> Option<String> {
    let ifaces = |c: &Config| {
        c.interfaces
            .iter()
            .map(|i| (i.name.clone(), i.device.clone()))
            .collect::<Vec<_>>()
    };
    if ifaces(old) != ifaces(new) {
        return Some("interfaces (names or devices) changed".into());
    }
    if old.dataplane != new.dataplane {
        return Some("[dataplane] changed".into());
    }
    if (
        &old.events.socket,
        &old.events.control_socket,
        old.events.ring_size,
    ) != (
        &new.events.socket,
        &new.events.control_socket,
        new.events.ring_size,
    ) {
        return Some("events socket paths or ring_size changed".into());
    }
    if old.flow.session_capacity != new.flow.session_capacity {
        return Some("flow.session-capacity changed".into());
    }
    None
}

impl ControlPlane<'_> {
    fn run_until_stop(
        &mut self,
        control: &ControlSocket,
        metrics: Option<&MetricsEndpoint>,
        signalled: &AtomicBool,
        reload_requested: &AtomicBool,
        when: &StopConditions,
        started_at: Instant,
    ) -> &'static str {
        let mut last_rx = u64::MAX;
        let mut last_change = Instant::now();
        let mut last_publish = Instant::now();
        loop {
            let moved = self.hub.poll(self.sources, wall_ns());
            control.serve(|command| match command {
                ControlCommand::Stats => self.stats_json(),
                ControlCommand::Reload => self.reload_json(),
                ControlCommand::Rules => self.rules_json(),
            });
            if let Some(m) = metrics {
                m.serve(|| self.prometheus_text());
            }
            if last_publish.elapsed() >= Duration::from_millis(100) {
                last_publish = Instant::now();
                self.publish_drained();
            }
            if reload_requested.swap(false, Ordering::Relaxed) {
                let _ = self.reload();
            }
            for retired in &mut self.reload.from_workers {
                while retired.recv().is_some() {}
            }
            if moved == 0 {
                std::thread::sleep(Duration::from_micros(200));
            }
            if signalled.load(Ordering::Relaxed) {
                return "signal";
            }
            if when.duration.is_some_and(|d| started_at.elapsed() >= d) {
                return "duration reached";
            }
            if let Some(idle) = when.idle {
                let rx: u64 = self
                    .workers
                    .iter()
                    .map(|(_, c)| c.rx.load(Ordering::Relaxed))
                    .sum::<u64>()
                    + self
                        .ports
                        .iter()
                        .map(|p| port_stats(p.id()).imissed)
                        .sum::<u64>();
                if rx != last_rx {
                    last_rx = rx;
                    last_change = Instant::now();
                } else if last_change.elapsed() >= idle {
                    return "input idle";
                }
            }
        }
    }

    /// The counters in Prometheus text format, conventional names.
    fn prometheus_text(&self) -> String {
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
        let per_worker: [(&str, &str, &str, Pick); 5] = [
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
                "TSC cycles measured per pipeline stage (rx/tx per burst, the rest on sampled packets).",
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
            for (i, reason) in DROP_COUNTERS.iter().enumerate() {
                e.sample(
                    "rampart_drops_total",
                    &[("worker", &w.to_string()), ("reason", reason)],
                    load(&c.drops[i]),
                );
            }
        }
        let ports: Vec<(String, PortStats)> = self
            .config
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
        let per_type: [(&str, &str, EvPick); 4] = [
            (
                "rampart_events_generated_total",
                "Events generated by the workers.",
                |c| c.generated,
            ),
            (
                "rampart_events_rate_limited_total",
                "Events dropped by the per-type rate limit.",
                |c| c.rate_limited,
            ),
            (
                "rampart_events_ring_overflow_total",
                "Events dropped because a worker's ring was full.",
                |c| c.ring_overflow,
            ),
            (
                "rampart_events_drained_total",
                "Events the control plane took from the rings.",
                |c| c.drained,
            ),
        ];
        for (name, help, pick) in per_type {
            e.family(name, "counter", help);
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
        e.finish()
    }

    /// Per-rule hit counters of the running generation (`stats --rules`).
    fn rules_json(&self) -> String {
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
                                   "action": p.action.as_str(), "hits": rules.hits.policy(PolicyMatch::Rule(i as u32))})
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
                        serde_json::json!({"term": term.name, "action": term.then.action.as_str(),
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

    fn publish_drained(&self) {
        let stats = self.hub.stats();
        for (slot, c) in self.drained.0.iter().zip(&stats.events) {
            slot.store(c.drained, Ordering::Relaxed);
        }
    }

    fn reload_json(&mut self) -> String {
        match self.reload() {
            Ok(generation) => serde_json::json!({"ok": true, "generation": generation}).to_string(),
            Err(error) => serde_json::json!({"ok": false, "generation": self.reload.generation, "error": error}).to_string(),
        }
    }

    /// Loads the config file again. A rejected config leaves the running
    /// one untouched and says why: in the reply, in the daemon's log and
    /// in a config_reject record to every event consumer.
    fn reload(&mut self) -> Result<u32, String> {
        let result = self.try_reload();
        match &result {
            Ok(generation) => log::notice!("reloaded the config: generation {generation}"),
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
            }
        }
        result
    }

    fn try_reload(&mut self) -> Result<u32, String> {
        let path =
            self.reload.path.clone().ok_or(
                "this dataplane runs the embedded demo; there is no config file to reload",
            )?;
        let new = Config::load(&path).map_err(|e| e.to_string().trim_end().to_string())?;
        if let Some(why) = restart_required(&self.config, &new) {
            return Err(format!("{why}: that needs a restart, not a reload"));
        }
        let generation = self.reload.generation + 1;
        let rules = Arc::new(Ruleset::compile(Arc::new(new.clone()), generation));
        // Names first, so every record of the new generation can be resolved.
        self.hub.set_names(generation, &export::names(&new));
        for tx in &mut self.reload.to_workers {
            // Mailboxes hold a few generations; a worker that has not
            // taken the previous ones yet gets the newest next burst.
            let mut pending = rules.clone();
            while let Err(back) = tx.send(pending) {
                pending = back;
                std::thread::sleep(Duration::from_micros(100));
            }
        }
        self.reload.generation = generation;
        self.reload.current = rules;
        self.config = new;
        Ok(generation)
    }

    fn drain_and_flush(&mut self, patience: Duration) {
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

    /// `rampart stats --json`: the hub's event accounting plus worker and
    /// port counters.
    fn stats_json(&self) -> String {
        let hub: serde_json::Value =
            serde_json::from_str(&self.hub.stats().to_json()).unwrap_or_default();
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        let workers: Vec<serde_json::Value> = self
            .workers
            .iter()
            .map(|(lcore, c)| {
                let drops: serde_json::Map<String, serde_json::Value> = DROP_COUNTERS
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
                    "tx_full": load(&c.tx_full),
                    "handoff": load(&c.handoff_out),
                    "handoff_full": load(&c.handoff_full),
                    "rejects_sent": load(&c.rejects_sent),
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
            .zip(&self.config.interfaces)
            .map(|(p, i)| {
                let s = p.stats();
                serde_json::json!({"name": i.name, "ipackets": s.ipackets, "opackets": s.opackets, "imissed": s.imissed,
                                   "ierrors": s.ierrors, "oerrors": s.oerrors, "rx_nombuf": s.rx_nombuf})
            })
            .collect();
        serde_json::json!({
            "generation": self.reload.generation,
            // Busy cycles / (elapsed seconds * tsc_hz) is a worker's load.
            "tsc_hz": rampart_core::tsc_hz(),
            "events": hub.get("events").cloned().unwrap_or_default(),
            "consumers": hub.get("consumers").cloned().unwrap_or_default(),
            "workers": workers,
            "ports": ports,
        })
        .to_string()
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

/// `rx=12 parse=40 ...`: cycles per packet by stage, `-` where nothing was measured.
fn stage_cycles_line(c: &WorkerCounters) -> String {
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    STAGES
        .iter()
        .enumerate()
        .map(|(i, stage)| match load(&c.stage_packets[i]) {
            0 => format!("{stage}=-"),
            p => format!("{stage}={:.0}", load(&c.stage_cycles[i]) as f64 / p as f64),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "rampart: stopped ({}) after {:.3} s",
            self.reason,
            self.elapsed.as_secs_f64()
        )?;
        writeln!(
            f,
            "{:<12} {:<14} {:>12} {:>12} {:>9} {:>9} {:>9} {:>9}",
            "interface",
            "device",
            "ipackets",
            "opackets",
            "imissed",
            "ierrors",
            "oerrors",
            "nombuf"
        )?;
        for (name, dev, s) in &self.ports {
            writeln!(
                f,
                "{:<12} {:<14} {:>12} {:>12} {:>9} {:>9} {:>9} {:>9}",
                name, dev, s.ipackets, s.opackets, s.imissed, s.ierrors, s.oerrors, s.rx_nombuf
            )?;
        }
        writeln!(
            f,
            "{:<6} {:>6} {:>12} {:>12} {:>10} {:>9} {:>9} {:>10} {:>14} {:>8}",
            "worker",
            "lcore",
            "rx",
            "tx",
            "dropped",
            "tx_full",
            "handoff",
            "sessions",
            "busy_cycles",
            "cyc/pkt"
        )?;
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        for (i, (lcore, c)) in self.workers.iter().enumerate() {
            let rx = load(&c.rx);
            let busy = load(&c.busy_cycles);
            let mut cpp = String::new();
            if rx > 0 {
                let _ = write!(cpp, "{:.0}", busy as f64 / rx as f64);
            } else {
                cpp.push('-');
            }
            writeln!(
                f,
                "{:<6} {:>6} {:>12} {:>12} {:>10} {:>9} {:>9} {:>10} {:>14} {:>8}",
                i,
                lcore,
                rx,
                load(&c.tx),
                load(&c.dropped),
                load(&c.tx_full),
                load(&c.handoff_out),
                load(&c.sessions_created),
                busy,
                cpp
            )?;
        }
        for (i, (_, c)) in self.workers.iter().enumerate() {
            writeln!(f, "stage cycles/pkt, worker {i}: {}", stage_cycles_line(c))?;
        }
        let total = |pick: &dyn Fn(&WorkerCounters) -> &std::sync::atomic::AtomicU64| -> u64 {
            self.workers.iter().map(|(_, c)| load(pick(c))).sum()
        };
        let drops: Vec<String> = DROP_COUNTERS
            .iter()
            .enumerate()
            .map(|(i, name)| (name, total(&|c| &c.drops[i])))
            .filter(|(_, n)| *n > 0)
            .map(|(name, n)| format!("{name}={n}"))
            .collect();
        writeln!(
            f,
            "drops: {}",
            if drops.is_empty() {
                "none".into()
            } else {
                drops.join(" ")
            }
        )?;
        let events: Vec<String> = EVENT_TYPES
            .iter()
            .enumerate()
            .map(|(i, name)| format!("{name}={}", total(&|c| &c.events[i])))
            .collect();
        writeln!(f, "events generated: {}", events.join(" "))?;
        writeln!(
            f,
            "sessions: created={} closed={} active={}; rejects sent={}; malformed={}",
            total(&|c| &c.sessions_created),
            total(&|c| &c.sessions_closed),
            total(&|c| &c.sessions_active),
            total(&|c| &c.rejects_sent),
            total(&|c| &c.malformed),
        )?;
        writeln!(
            f,
            "event accounting (generated = rate_limited + ring_overflow + drained):"
        )?;
        for (i, t) in rampart_events::EventType::ALL.iter().enumerate() {
            let c = &self.events.events[i];
            writeln!(
                f,
                "  {:<14} generated={} rate_limited={} ring_overflow={} drained={}",
                t.name(),
                c.generated,
                c.rate_limited,
                c.ring_overflow,
                c.drained
            )?;
        }
        for c in &self.events.consumers {
            let sum = |v: &[u64]| v.iter().sum::<u64>();
            writeln!(
                f,
                "  consumer {}: delivered={} dropped={} still buffered at exit={} bytes",
                c.id,
                sum(&c.delivered),
                sum(&c.dropped),
                c.buffered_bytes
            )?;
        }
        let _ = self.tsc_hz;
        Ok(())
    }
}
