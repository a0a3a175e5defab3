//! Brings the dataplane up from a validated config, runs it until a stop
//! condition, and brings it down in order.

mod cluster;
mod control_plane;
pub mod leftovers;
mod plan;
mod reload;
mod sessions;

use sessions::SessionDesk;
mod stats;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rampart_core::{
    ArcRing, Burst, EalBuilder, MbufRing, Mempool, Port, PortConfig, QueueId, Ring, StartedPort,
};
use rampart_events::{EventSlot, Hub, HubConfig, SocketFile};
use rampart_pipeline::config::Config;

use crate::cluster_sync::{ClusterShared, SyncSlot, WorkerSync};
use crate::control::ControlSocket;
use crate::export::{self, WorkerEvents};
use crate::log;
use crate::metrics::MetricsEndpoint;
use crate::worker::{Clock, Route, StopSignal, TxPath, Worker, WorkerCounters, STALL_CAPACITY};
use cluster::ClusterLink;
use control_plane::DrainedSnapshot;
use control_plane::{ControlPlane, Endpoints};
use plan::{PortCaps, TxRoute};
use rampart_pipeline::engine::Ruleset;
use rampart_pipeline::screen::ScreenState;
use reload::Reloader;
use stats::register_telemetry;
pub use stats::Summary;

const RX_DESCRIPTORS: u16 = 1024;
const TX_DESCRIPTORS: u16 = 1024;
const HANDOFF_RING_SIZE: u32 = 1024;
/// Each worker's sync rings (to and from the control plane), in session
/// records (164 bytes each).
const SYNC_RING: u32 = 16384;
/// Session changes a worker's table journals between two drains (one
/// loop: a burst's creates and state changes, an aging step's removals).
const SYNC_JOURNAL: usize = 4096;
/// The longest frame a multi-segment packet can be: the largest IP packet
/// behind Ethernet and two VLAN tags.
const MAX_FRAME: usize = 65_535 + 22;
/// Fragments each worker holds until their first fragment arrives.
const HELD_FRAGMENTS: usize = rampart_pipeline::frag::FragHold::<()>::DEFAULT_CAPACITY;

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
/// names a PCI device; `--in-memory`; a per-process file prefix; the
/// lcores).
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
    // Hugepages as anonymous memory: nothing in hugetlbfs to outlive the
    // process, however it ends (see `leftovers`).
    let memory_chosen = ["--no-huge", "--in-memory", "--huge-unlink", "--legacy-mem"]
        .iter()
        .any(|f| has(&args, f));
    if !memory_chosen {
        // Hugepage files in a directory the config names: unlinked as soon
        // as they are mapped, for the same reason.
        args.push(if has(&args, "--huge-dir") {
            "--huge-unlink".into()
        } else {
            "--in-memory".into()
        });
    }
    if !has(&args, "--file-prefix") {
        args.push(format!("--file-prefix={}", leftovers::own_prefix()));
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

/// Why a driver cannot keep Rampart's promise that every packet is
/// accounted for, if it cannot; said at start.
fn accounting_warning(driver: &str) -> Option<&'static str> {
    match driver {
        "net_af_packet" => Some(
            "net_af_packet cannot keep the accounting exact: with DPDK 22.11 the kernel \
             reassembles IPv4 fragments before Rampart sees them (a reassembled datagram \
             longer than a buffer is dropped as malformed, lone fragments never reach the \
             screen), and frames the socket loses are not counted (imissed stays 0); for a \
             live kernel interface use net_pcap with iface=, which counts its losses",
        ),
        _ => None,
    }
}

/// Packet buffer size (headroom included): DPDK's default 2 KiB of data
/// unless an interface's MTU needs more, then room for the largest frame
/// (Ethernet and two VLAN tags around the IP packet), so jumbo frames
/// arrive in one buffer. A frame that still arrives as a chain is handled
/// too (see the worker's `process_chained`).
fn mbuf_data_room(config: &Config) -> u16 {
    const HEADROOM: usize = 128;
    const DEFAULT: usize = 2048;
    let frame = config
        .interfaces
        .iter()
        .map(|i| usize::from(i.mtu) + 14 + 8)
        .max()
        .unwrap_or(0);
    let data = if frame <= DEFAULT {
        DEFAULT
    } else {
        frame.div_ceil(1024) * 1024
    };
    (HEADROOM + data) as u16
}

/// The DPDK port name of an interface's device: a vdev's name before its
/// first comma, or the PCI address itself.
fn port_name(device: &str) -> &str {
    device.split(',').next().unwrap_or(device).trim()
}

/// Why an interface has no port. A vdev whose driver refused it leaves no
/// port while EAL still starts, and DPDK says why only in its log: name
/// the driver and the cause when a check of the device finds it now (a
/// capture removed since the config was loaded), else the log lines to
/// look for.
fn port_error(
    iface: &rampart_pipeline::config::Interface,
    e: rampart_core::PortError,
) -> anyhow::Error {
    use rampart_pipeline::config::vdev;
    let what = format!("interface {} (device {:?})", iface.name, iface.device);
    if !matches!(e, rampart_core::PortError::NotFound(_)) || iface.is_pci() {
        return anyhow::Error::new(e).context(what);
    }
    let port = port_name(&iface.device);
    let driver = vdev::driver(port).map_or_else(
        || format!("vdev driver of {port:?}"),
        |d| format!("{} driver", d.name),
    );
    let problems: Vec<String> = vdev::problems(&iface.device, Some(&crate::host::System))
        .into_iter()
        .map(|(_, msg)| msg)
        .collect();
    if problems.is_empty() {
        anyhow::anyhow!(
            "{what}: the {driver} did not create port {port:?}: DPDK refused the device; \
             its reason is in DPDK's log above (`failed to initialize {port} device` \
             and the driver's own message before it)"
        )
    } else {
        anyhow::anyhow!(
            "{what}: the {driver} did not create port {port:?}: {}",
            problems.join("; ")
        )
    }
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
    // Signals first: a SIGTERM while the ports come up (a supervisor
    // stopping a start) ends the run cleanly at its first loop, instead of
    // killing the process with its sockets and runtime files left behind.
    let signalled = Arc::new(AtomicBool::new(false));
    let reload_requested = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, reload_requested.clone())
        .context("installing the SIGHUP handler")?;
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, signalled.clone())
            .context("installing signal handlers")?;
    }
    let stale = leftovers::remove_stale();
    if stale > 0 {
        log::info!(
            "removed {stale} hugepage file(s) and runtime dir(s) of Rampart processes that no longer run"
        );
    }
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
        let port =
            Port::by_name(&eal, port_name(&iface.device)).map_err(|e| port_error(iface, e))?;
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
    let in_flight = (workers * (ports.len() + 1) * 32) as u32
        + (workers * workers) as u32 * HANDOFF_RING_SIZE
        + (workers * HELD_FRAGMENTS) as u32;
    let mbufs = (descriptors + in_flight + 4096).next_power_of_two() - 1;
    let pool = Mempool::create_pktmbuf_sized(
        &eal,
        "rampart_mbufs",
        mbufs,
        256,
        eal.socket_id(),
        mbuf_data_room(config),
    )
    .context("creating the packet mempool (are hugepages set up? see meson-scripts/setup.sh)")?;

    // The event socket listens before any port starts, so no event of the
    // run is generated before a consumer could be there.
    let (mut hub, control) = open_sockets(config)?;
    hub.set_start_time(wall_ns());
    let (node, boot_id) = (node_name(config), boot_id());
    log::info!("event ids: node {node}, boot id {boot_id:016x}");
    hub.set_identity(&node, boot_id);
    if let Some(c) = &config.cluster {
        hub.set_cluster(&c.name);
    }
    hub.set_names(1, &export::names(config));
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
        // Polled, not only accepted: the hub's clock then dates each
        // consumer's arrival (its reading progress is measured from it).
        while hub.consumer_count() == 0 && Instant::now() < deadline {
            hub.poll(&mut sources, wall_ns());
            std::thread::sleep(Duration::from_millis(5));
        }
        // Consumers starting together connect within moments of each other.
        let grace = Instant::now() + Duration::from_millis(300);
        while Instant::now() < grace {
            hub.poll(&mut sources, wall_ns());
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
            // The device default unless the config asks for another MTU.
            mtu: match config.interfaces[i].mtu {
                rampart_pipeline::config::Interface::DEFAULT_MTU => 0,
                mtu => mtu,
            },
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
        if let Some(warning) = accounting_warning(p.info().driver.as_str()) {
            log::warning!("interface {name}: {warning}");
        }
        started.push(p);
    }

    // Software dispatch keeps both directions of a flow on one worker when
    // the ports cannot: several workers, and not every port spreads its RX
    // over one symmetric-RSS queue per worker.
    // In a high-availability pair, too: the peer's sessions are installed
    // on the worker that hash names, which the NIC's RSS does not know.
    let software_dispatch = workers > 1
        && (config.cluster.is_some()
            || !started
                .iter()
                .all(|p| p.rss_symmetric() && p.rx_queue_count() as usize == workers));
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
    let mut session_links = Vec::new();
    let cluster_shared = Arc::new(ClusterShared::default());
    let mut sync_ends = Vec::new();
    let (mut from_workers_sync, mut to_workers_sync, mut sync_counters) =
        (Vec::new(), Vec::new(), Vec::new());
    if config.cluster.is_some() {
        for w in 0..workers {
            let (out, from) = Ring::<SyncSlot>::create(
                &eal,
                &format!("sync_out_{w}"),
                SYNC_RING,
                eal.socket_id(),
            )?;
            let (to, inbox) = Ring::<SyncSlot>::create(
                &eal,
                &format!("sync_in_{w}"),
                SYNC_RING,
                eal.socket_id(),
            )?;
            let sync = WorkerSync::new(cluster_shared.clone(), out, inbox);
            sync_counters.push(sync.counters.clone());
            from_workers_sync.push(from);
            to_workers_sync.push(to);
            sync_ends.push(Some(sync));
        }
    }
    let mut contexts: Vec<Worker> = (0..workers)
        .map(|w| {
            let (rules_in, rules_out) = worker_rules[w].take().expect("one mailbox per worker");
            let (link, session_jobs) = crate::sessions::mailbox();
            session_links.push(link);
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
                    p.measure_stages(rampart_core::tsc_cycles);
                    p.sessions
                        .identify(config.cluster.as_ref().map_or(0, |c| c.node_id), boot_id);
                    if config.cluster.is_some() {
                        p.sessions.journal_changes(SYNC_JOURNAL);
                    }
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
                decisions: Box::new(
                    [rampart_pipeline::engine::Decision::BLANK; rampart_core::MAX_BURST + 1],
                ),
                routes: [Route::Here; rampart_core::MAX_BURST],
                held: rampart_pipeline::frag::FragHold::new(HELD_FRAGMENTS),
                scratch: vec![0; MAX_FRAME].into_boxed_slice(),
                dropped: rampart_core::Burst::new(),
                rules_in,
                rules_out,
                session_jobs,
                sync: sync_ends.get_mut(w).and_then(Option::take),
                stall_at_ns: stall_at_ns(),
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

    let mut plane = ControlPlane::new(
        &mut hub,
        &mut sources,
        &started,
        &counters,
        Reloader::new(
            config_path.map(Path::to_path_buf),
            rules.clone(),
            to_workers,
            from_workers,
        ),
        drained.clone(),
        {
            let mut desk = SessionDesk::new(session_links);
            desk.set_names(1, &export::names(config), 1);
            desk
        },
    );
    if let Some(c) = &config.cluster {
        plane.cluster = Some(ClusterLink::bind(
            c,
            boot_id,
            cluster_shared,
            from_workers_sync,
            to_workers_sync,
            sync_counters,
        )?);
    }
    let mut endpoints = Endpoints {
        control,
        metrics: match config.telemetry.prometheus {
            Some(addr) => Some(MetricsEndpoint::bind(addr)?),
            None => None,
        },
    };
    plane.service.ready(&format!(
        "forwarding: {} port(s), {workers} worker(s), generation 1",
        started.len()
    ));
    let reason = plane.run_until_stop(
        &mut endpoints,
        &signalled,
        &reload_requested,
        stop_when,
        started_at,
    );
    log::notice!("stopping: {reason}");
    plane.service.stopping();
    if let Some(c) = &mut plane.cluster {
        c.hand_over();
    }
    endpoints.control.abandon_waiting(
        "the dataplane is stopping; a reload in progress was not applied, a session request not finished",
        Instant::now(),
    );
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
    let stats_json = plane.stats_json(&endpoints.control.counters());
    let elapsed = started_at.elapsed();
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
        stats_json,
    })
}

/// `RAMPART_FAULT_STALL_WORKER_MS=N`: the workers stop looping N ms after
/// start (a fault the watchdog test injects; never set in service).
fn stall_at_ns() -> Option<u64> {
    let ms: u64 = std::env::var("RAMPART_FAULT_STALL_WORKER_MS")
        .ok()?
        .parse()
        .ok()?;
    Some(wall_ns() + ms * 1_000_000)
}

/// `[dataplane] node`, or the host name made fit for event ids.
fn node_name(config: &Config) -> String {
    if let Some(node) = &config.dataplane.node {
        return node.clone();
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let mut node: String = host
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '-'
            }
        })
        .take(rampart_pipeline::config::MAX_NODE_LEN)
        .collect();
    if !rampart_pipeline::config::node_name_ok(&node) {
        node = "rampart".into();
    }
    node
}

/// A random id for this run (never 0, which means "none" in hello
/// records), so event ids never repeat across restarts.
fn boot_id() -> u64 {
    let mut bytes = [0u8; 8];
    let random = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .is_ok();
    let id = if random {
        u64::from_le_bytes(bytes)
    } else {
        // No urandom: the start time and pid still differ per run.
        wall_ns() ^ u64::from(std::process::id()).rotate_left(40)
    };
    id.max(1)
}

fn wall_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The event socket (readers) and the control socket (operators): two
/// roles, each with its own mode and group, created without following
/// symlinks. A directory Rampart creates is reachable by the groups.
fn open_sockets(config: &Config) -> anyhow::Result<(Hub, ControlSocket)> {
    let e = &config.events;
    let (events_gid, control_gid) = reload::socket_groups(e).map_err(anyhow::Error::msg)?;
    let group_access = events_gid.is_some() || control_gid.is_some();
    let socket = SocketFile::bind(
        "events socket",
        &e.socket,
        e.socket_mode,
        events_gid,
        group_access,
    )
    .context("events.socket")?;
    let control = SocketFile::bind(
        "control socket",
        &e.control_socket,
        e.control_socket_mode,
        control_gid,
        group_access,
    )
    .context("events.control_socket")?;
    for s in [&socket, &control] {
        if let Some(warning) = s.directory_warning() {
            log::warning!("{warning}");
        }
    }
    let hub_config = HubConfig {
        socket_mode: e.socket_mode,
        unread_bytes: Some(rampart_core::socket_unread_bytes),
        ..HubConfig::default()
    };
    Ok((
        Hub::with_socket(socket, events_gid, hub_config),
        ControlSocket::new(control, control_gid),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iface(device: &str) -> rampart_pipeline::config::Interface {
        let text =
            format!("[[interface]]\nname = \"a\"\ndevice = \"{device}\"\nzone = \"z\"\n[zone.z]\n");
        Config::from_str_named(&text, "t.toml").unwrap().interfaces[0].clone()
    }

    #[test]
    fn a_missing_vdev_port_names_the_driver_and_the_cause() {
        let missing = |d: &str| rampart_core::PortError::NotFound(port_name(d).into());
        let d = "net_pcap0,rx_pcap=/nonexistent-rampart.pcap";
        let e = port_error(&iface(d), missing(d)).to_string();
        assert_eq!(
            e,
            "interface a (device \"net_pcap0,rx_pcap=/nonexistent-rampart.pcap\"): the net_pcap \
             driver did not create port \"net_pcap0\": rx_pcap=/nonexistent-rampart.pcap: does \
             not exist (net_pcap would not create the port)"
        );
        assert!(!e.contains("no DPDK port named"), "{e}");
        // No cause found now: the log line to look for.
        let d = "net_null0";
        let e = port_error(&iface(d), missing(d)).to_string();
        assert!(
            e.contains("the net_null driver did not create port \"net_null0\"")
                && e.contains("`failed to initialize net_null0 device`"),
            "{e}"
        );
        // A PCI device keeps the allowlist and binding hint.
        let d = "0000:03:00.0";
        let e = format!("{:#}", port_error(&iface(d), missing(d)));
        assert!(
            e.contains("no DPDK port named") && e.contains("allowlist"),
            "{e}"
        );
    }
}
