//! One measured run: a topology, a profile and the system under test.
//!
//! * `pcap-replay`: the system reads the capture itself (`net_pcap`
//!   `infinite_rx`) and sends to `net_null`; no generator competes for a CPU.
//! * `vhost`: a generator `dpdk-testpmd` on the control CPU replays the
//!   capture into `virtio_user0`, which is connected over vhost-user to the
//!   system's interface A (a `net_vhost` server, or an Open vSwitch
//!   `dpdkvhostuser` port); what the system forwards out of interface B
//!   comes back over the second vhost-user pair into the generator's
//!   `virtio_user1`, which counts it. The system runs on the worker CPU.
//!
//! On `vhost` every system is measured the same way, at the generator:
//! Mpps in = what the generator got into the system's RX ring (TX-packets
//! of `virtio_user0`; a full ring refuses the rest), Mpps out = what came
//! back (RX-packets of `virtio_user1`), offered = what the generator read
//! from the capture.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use serde_json::{json, Value};

use crate::ovs::{Ovs, OvsSample};
use crate::profiles::Profile;
use crate::rampart::{self, Cpus, Ports, RampartRun};
use crate::testpmd::{PortSample, Testpmd};
use crate::util::{eal_common, REPLAY_MEMORY, VHOST_MEMORY};

pub struct Timing {
    pub warmup: f64,
    pub interval: f64,
}

/// What every scenario needs to know.
pub struct Env<'a> {
    pub rampart: &'a Path,
    pub testpmd: &'a Path,
    pub cpus: Cpus,
    pub timing: &'a Timing,
    /// On pcap-replay: list every session over the control socket,
    /// again and again, through the measured interval (what an operator's
    /// `rampart sessions` costs the forwarding).
    pub listing: bool,
    /// On pcap-replay: Rampart syncs its sessions to a peer
    /// ([`crate::sync_peer`]).
    pub sync_peer: bool,
}

/// testpmd forwarding options shared by the baselines and the generator.
const TESTPMD_IO: [&str; 8] = [
    "--forward-mode=io",
    "--nb-cores=1",
    "--rxq=1",
    "--txq=1",
    "--rxd=1024",
    "--txd=1024",
    "--burst=32",
    "--no-lsc-interrupt",
];

fn sleep(s: f64) {
    std::thread::sleep(Duration::from_secs_f64(s));
}

// ---------------------------------------------------------------------------
// pcap-replay

pub fn replay_rampart(env: &Env, p: &Profile, pcap: &Path, tag: &str) -> anyhow::Result<Value> {
    let peer = env
        .sync_peer
        .then(|| crate::sync_peer::SyncPeer::start(env.cpus.control))
        .transpose()?;
    let run = RampartRun::start(
        env.rampart,
        p,
        &Ports::PcapReplay { pcap },
        tag,
        env.cpus,
        peer.is_some(),
    )?;
    let started = run.wait_for_traffic()?;
    std::thread::sleep(
        (started + Duration::from_secs_f64(env.timing.warmup))
            .saturating_duration_since(std::time::Instant::now()),
    );
    let lister = env
        .listing
        .then(|| rampart::SessionLister::start(run.control_socket(), env.cpus.control));
    let s1 = run.sample()?;
    sleep(env.timing.interval);
    let s2 = run.sample()?;
    let listed = lister.map(rampart::SessionLister::stop).transpose()?;
    let finished = run.finish()?;
    let mut result = rampart::result(&s1, &s2, &finished);
    if let Some((listings, sessions)) = listed {
        result["listing"] = json!({"listings": listings, "sessions": sessions});
    }
    if let Some(peer) = peer {
        let sync = &finished.fin["cluster"]["sync"];
        result["sync"] = json!({
            "role": finished.fin["cluster"]["role"],
            "records_sent": sync["records_sent"],
            "records_per_s": (sent(&s2).saturating_sub(sent(&s1)) as f64
                / (s2.t - s1.t).as_secs_f64())
            .round(),
            "changes_lost": sync["changes_lost"],
            "peer_received": peer.records(),
        });
    }
    Ok(result)
}

/// Session records the node had sent to its peer at sample `s`.
fn sent(s: &rampart::Sample) -> u64 {
    s.v["cluster"]["sync"]["records_sent"].as_u64().unwrap_or(0)
}

pub fn replay_testpmd(env: &Env, pcap: &Path, tag: &str) -> anyhow::Result<Value> {
    let mut eal = eal_common(&REPLAY_MEMORY, tag, env.cpus.control, env.cpus.worker);
    eal.extend([
        "--no-pci".into(),
        "--vdev".into(),
        format!("net_pcap0,rx_pcap={},infinite_rx=1", pcap.display()),
        "--vdev".into(),
        "net_null0,no-rx=1".into(),
    ]);
    let mut app: Vec<&str> = TESTPMD_IO.to_vec();
    app.extend([
        "--total-num-mbufs=16383",
        "--no-flush-rx",
        "--record-core-cycles",
    ]);
    let mut tp = Testpmd::start(env.testpmd, &eal, &app, 2)?;
    let measured = (|| -> anyhow::Result<Value> {
        tp.send("start")?;
        sleep(env.timing.warmup);
        let a = tp.sample()?;
        sleep(env.timing.interval);
        let b = tp.sample()?;
        let cycles = tp.stop_forwarding()?;
        let mpps_in = a.rate(&b, 0, |c| c.rx) / 1e6;
        anyhow::ensure!(
            mpps_in > 0.0,
            "testpmd received nothing during the interval"
        );
        Ok(json!({
            "interval_s": (b.at - a.at).as_secs_f64(),
            "mpps_in": mpps_in,
            "mpps_out": a.rate(&b, 1, |c| c.tx) / 1e6,
            "cycles_per_packet": cycles,
        }))
    })();
    let measured = measured.map_err(|e| tp.explain(e))?;
    tp.quit()?;
    Ok(measured)
}

// ---------------------------------------------------------------------------
// vhost

/// The system under test on the vhost topology.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VhostSystem {
    Rampart,
    Testpmd,
    Ovs,
    /// Open vSwitch-DPDK with the profile's policy behind connection
    /// tracking: a stateful peer.
    OvsConntrack,
}

impl VhostSystem {
    pub fn name(self) -> &'static str {
        match self {
            VhostSystem::Rampart => "rampart",
            VhostSystem::Testpmd => "testpmd",
            VhostSystem::Ovs => "ovs",
            VhostSystem::OvsConntrack => "ovs-ct",
        }
    }
}

enum Dut {
    Rampart(RampartRun),
    Testpmd(Testpmd),
    Ovs(Ovs),
}

/// Hugepage memory of each process on the vhost topology (vhost-user
/// shares the virtio side's memory, so the generator needs hugepages; the
/// systems get the same for parity).
/// OVS 3.1 sizes its shared mempool for the MTU on the first vhost-user
/// connection: 262,144 mbufs (~760 MB) first, smaller only after that fails.
/// With 512 MB the failing first try fills the whole heap for tens of
/// milliseconds, and the generator's second virtio_user handshake, landing
/// in that window, fails (`failed to allocate memory for new device`; seen
/// on AMD EPYC VMs). 1024 MB lets the first try succeed, as on a default
/// OVS-DPDK install, and fits beside the generator's 512 MB in the 2 GB of
/// hugepages that setup.sh reserves.
const OVS_SOCKET_MEM_MB: u32 = 1024;

/// Generator ports: 0 = the capture, 1 = virtio_user0 (to the system's A),
/// 2 = virtio_user1 (from the system's B), 3 = net_null. `paired` io
/// forwarding moves 0 -> 1 and 2 -> 3 (and the reverse, where nothing
/// arrives) on one lcore.
const GEN_CAPTURE: usize = 0;
const GEN_TO_SYSTEM: usize = 1;
const GEN_FROM_SYSTEM: usize = 2;

fn start_generator(
    env: &Env,
    pcap: &Path,
    a: &Path,
    b: &Path,
    tag: &str,
) -> anyhow::Result<Testpmd> {
    let c = env.cpus.control;
    let mut eal = eal_common(&VHOST_MEMORY, &format!("{tag}-gen"), c, c);
    eal.extend([
        "--no-pci".into(),
        "--vdev".into(),
        format!("net_pcap0,rx_pcap={},infinite_rx=1", pcap.display()),
        "--vdev".into(),
        format!(
            "net_virtio_user0,path={},queues=1,queue_size=1024",
            a.display()
        ),
        "--vdev".into(),
        format!(
            "net_virtio_user1,path={},queues=1,queue_size=1024",
            b.display()
        ),
        "--vdev".into(),
        "net_null0,no-rx=1".into(),
    ]);
    let mut app: Vec<&str> = TESTPMD_IO.to_vec();
    app.extend(["--port-topology=paired", "--total-num-mbufs=32768"]);
    Testpmd::start(env.testpmd, &eal, &app, 4).context("the generator testpmd")
}

fn start_system(
    env: &Env,
    system: VhostSystem,
    p: &Profile,
    dir: &Path,
    tag: &str,
) -> anyhow::Result<(Dut, std::path::PathBuf, std::path::PathBuf)> {
    let (a, b) = (dir.join("a.sock"), dir.join("b.sock"));
    Ok(match system {
        VhostSystem::Rampart => {
            let run = RampartRun::start(
                env.rampart,
                p,
                &Ports::Vhost { a: &a, b: &b },
                tag,
                env.cpus,
                false,
            )?;
            (Dut::Rampart(run), a, b)
        }
        VhostSystem::Testpmd => {
            let mut eal = eal_common(&VHOST_MEMORY, tag, env.cpus.control, env.cpus.worker);
            eal.extend([
                "--no-pci".into(),
                "--vdev".into(),
                format!("net_vhost0,iface={},queues=1", a.display()),
                "--vdev".into(),
                format!("net_vhost1,iface={},queues=1", b.display()),
                "--log-level".into(),
                "pmd.net.vhost:error".into(),
            ]);
            let mut app: Vec<&str> = TESTPMD_IO.to_vec();
            // Its vhost ports are down until the generator connects: do
            // not wait 9 s for them to come up.
            app.extend(["--record-core-cycles", "--disable-link-check"]);
            let mut tp = Testpmd::start(env.testpmd, &eal, &app, 2)?;
            tp.send("start")?;
            (Dut::Testpmd(tp), a, b)
        }
        VhostSystem::Ovs | VhostSystem::OvsConntrack => {
            let ovs = Ovs::start(
                &dir.join("ovs"),
                env.cpus.worker,
                env.cpus.control,
                OVS_SOCKET_MEM_MB,
            )?;
            if system == VhostSystem::OvsConntrack {
                ovs.set_flows(&crate::ovs::conntrack_flows(&p.openflow))?;
            } else {
                ovs.set_flows(&p.openflow)?;
            }
            let (a, b) = (ovs.socket_a().to_path_buf(), ovs.socket_b().to_path_buf());
            (Dut::Ovs(ovs), a, b)
        }
    })
}

/// The generator's view of an interval, the same for every system.
fn generator_figures(g1: &PortSample, g2: &PortSample) -> Value {
    json!({
        "interval_s": (g2.at - g1.at).as_secs_f64(),
        "mpps_offered": g1.rate(g2, GEN_CAPTURE, |c| c.rx) / 1e6,
        "mpps_in": g1.rate(g2, GEN_TO_SYSTEM, |c| c.tx) / 1e6,
        "mpps_out": g1.rate(g2, GEN_FROM_SYSTEM, |c| c.rx) / 1e6,
    })
}

/// The system's own counters at one instant (testpmd's are read at its end).
enum SystemSample {
    Rampart(rampart::Sample),
    Testpmd,
    Ovs(OvsSample),
}

fn sample_system(dut: &Dut) -> anyhow::Result<SystemSample> {
    Ok(match dut {
        Dut::Rampart(run) => SystemSample::Rampart(run.sample()?),
        Dut::Testpmd(_) => SystemSample::Testpmd,
        Dut::Ovs(ovs) => SystemSample::Ovs(ovs.sample()?),
    })
}

/// Adds `from`'s keys to `into`, keeping `into`'s where both have one.
fn merge_missing(into: &mut Value, from: Value) {
    if let (Value::Object(a), Value::Object(b)) = (into, from) {
        for (k, v) in b {
            a.entry(k).or_insert(v);
        }
    }
}

/// OVS figures over an interval: busy PMD cycles per packet it processed,
/// the busy share of its cycles, and what it could not send per port.
fn ovs_figures(a: &OvsSample, b: &OvsSample) -> Value {
    let packets = b.pmd_packets.saturating_sub(a.pmd_packets);
    let busy = b.pmd_busy_cycles.saturating_sub(a.pmd_busy_cycles);
    let total = b.pmd_total_cycles.saturating_sub(a.pmd_total_cycles);
    let dt = (b.at - a.at).as_secs_f64();
    let tx_dropped: serde_json::Map<String, Value> = b
        .ports
        .iter()
        .map(|(port, s)| {
            let before = a.ports.get(port).map_or(0, |s| s.tx_dropped);
            let rate = s.tx_dropped.saturating_sub(before) as f64 / dt.max(1e-9);
            (port.clone(), json!(rate / 1e6))
        })
        .collect();
    json!({
        "cycles_per_packet": (packets > 0).then(|| busy as f64 / packets as f64),
        "worker_load": (total > 0).then(|| busy as f64 / total as f64),
        "ovs_tx_dropped_mpps": tx_dropped,
    })
}

pub fn vhost(
    env: &Env,
    system: VhostSystem,
    p: &Profile,
    pcap: &Path,
    tag: &str,
) -> anyhow::Result<Value> {
    let dir = tempfile::Builder::new().prefix("rb-vhost-").tempdir()?;
    let (dut, a, b) = start_system(env, system, p, dir.path(), tag)?;
    let mut gen = start_generator(env, pcap, &a, &b, tag)?;
    let measured = (|| -> anyhow::Result<_> {
        gen.send("start")?;
        sleep(env.timing.warmup);
        let (g1, d1) = (gen.sample()?, sample_system(&dut)?);
        sleep(env.timing.interval);
        let (g2, d2) = (gen.sample()?, sample_system(&dut)?);
        Ok((g1, g2, d1, d2))
    })();
    let measured = measured.map_err(|e| gen.explain(e));
    let _ = gen.stop_forwarding();
    gen.quit()?;
    let (g1, g2, d1, d2) = measured?;
    let mut out = generator_figures(&g1, &g2);
    anyhow::ensure!(
        out["mpps_in"].as_f64().unwrap_or(0.0) > 0.0,
        "the generator got nothing into the system during the interval"
    );
    match (dut, d1, d2) {
        (Dut::Rampart(run), SystemSample::Rampart(s1), SystemSample::Rampart(s2)) => {
            let finished = run.finish()?;
            let own = rampart::result(&s1, &s2, &finished);
            out["rampart_mpps_rx"] = own["mpps_in"].clone();
            out["rampart_mpps_tx"] = own["mpps_out"].clone();
            merge_missing(&mut out, own);
        }
        (Dut::Testpmd(mut tp), _, _) => {
            let cycles = tp.stop_forwarding().map_err(|e| tp.explain(e))?;
            tp.quit()?;
            out["cycles_per_packet"] = json!(cycles);
        }
        (Dut::Ovs(ovs), SystemSample::Ovs(s1), SystemSample::Ovs(s2)) => {
            merge_missing(&mut out, ovs_figures(&s1, &s2));
            ovs.stop()?;
        }
        _ => anyhow::bail!("samples of another system"),
    }
    Ok(out)
}
