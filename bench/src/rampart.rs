//! Rampart as the device under test: its config for a topology, the
//! process with an event consumer connected before its ports start, counter
//! samples over the control socket, and the final accounting check.

use std::collections::BTreeMap;
use std::io::{BufReader, Read};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};

use rampart_testkit::configs;

use crate::profiles::Profile;
use crate::util::{
    eal_common, pin_current_thread, tail, terminate, u, wait_child, REPLAY_MEMORY, VHOST_MEMORY,
};

/// One `rampart stats --json`, with the harness consumer's own counts at
/// the same moment.
pub struct Sample {
    pub t: Instant,
    pub v: Value,
    consumer_frames: u64,
    consumer_bytes: u64,
}

fn rampart_stats(rampart: &Path, socket: &Path, cpu: u32) -> anyhow::Result<(Instant, Value)> {
    let mut cmd = if Path::new("/usr/bin/taskset").exists() {
        let mut c = Command::new("taskset");
        c.args(["-c", &cpu.to_string()]).arg(rampart);
        c
    } else {
        Command::new(rampart)
    };
    let t0 = Instant::now();
    let out = cmd
        .args(["stats", "--json", "--socket"])
        .arg(socket)
        .stderr(Stdio::piped())
        .output()?;
    let t1 = Instant::now();
    if !out.status.success() {
        bail!(
            "rampart stats: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let v: Value = serde_json::from_slice(&out.stdout).context("rampart stats --json")?;
    Ok((t0 + (t1 - t0) / 2, v))
}

pub fn worker_sum(v: &Value, key: &str) -> u64 {
    v["workers"]
        .as_array()
        .map(|ws| ws.iter().map(|w| u(&w[key])).sum())
        .unwrap_or(0)
}

/// Per event type: generated/rate_limited/ring_overflow/drained, and the
/// consumers' delivered/dropped summed.
fn event_counters(v: &Value) -> BTreeMap<String, [u64; 6]> {
    let mut m: BTreeMap<String, [u64; 6]> = BTreeMap::new();
    if let Some(ev) = v["events"].as_object() {
        for (t, c) in ev {
            let e = m.entry(t.clone()).or_default();
            e[0] = u(&c["generated"]);
            e[1] = u(&c["rate_limited"]);
            e[2] = u(&c["ring_overflow"]);
            e[3] = u(&c["drained"]);
        }
    }
    for c in v["consumers"].as_array().into_iter().flatten() {
        for (i, key) in [(4, "delivered"), (5, "dropped")] {
            if let Some(o) = c[key].as_object() {
                for (t, n) in o {
                    m.entry(t.clone()).or_default()[i] += u(n);
                }
            }
        }
    }
    m
}

const EV_FIELDS: [&str; 6] = [
    "generated",
    "rate_limited",
    "ring_overflow",
    "drained",
    "delivered",
    "dropped",
];

/// The accounting of a final stats JSON: (reconciled, problems).
pub fn reconcile(v: &Value) -> (bool, Vec<String>) {
    let mut problems = Vec::new();
    let events = v["events"].as_object();
    if events.is_none() {
        problems.push("no events object in the final stats".into());
    }
    for (t, c) in events.into_iter().flatten() {
        let (g, r, o, d) = (
            u(&c["generated"]),
            u(&c["rate_limited"]),
            u(&c["ring_overflow"]),
            u(&c["drained"]),
        );
        if g != r + o + d {
            problems.push(format!(
                "{t}: generated {g} != rate_limited {r} + ring_overflow {o} + drained {d}"
            ));
        }
    }
    let consumers = v["consumers"].as_array().cloned().unwrap_or_default();
    if consumers.is_empty() {
        problems.push("no consumer in the final stats".into());
    }
    for c in &consumers {
        for (t, cnt) in events.into_iter().flatten() {
            let d = u(&cnt["drained"]);
            let del = u(&c["delivered"][t]);
            let drop = u(&c["dropped"][t]);
            if d != del + drop {
                problems.push(format!(
                    "consumer {}: {t}: drained {d} != delivered {del} + dropped {drop}",
                    c["id"]
                ));
            }
        }
    }
    (problems.is_empty(), problems)
}

struct Consumer {
    frames: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
    connected: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<anyhow::Result<()>>,
}

/// An event consumer thread: connects to the event socket, reads
/// size-prefixed frames until the dataplane closes the stream.
fn start_consumer(socket: PathBuf, cpu: u32, stop: Arc<AtomicBool>) -> Consumer {
    let frames = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let connected = Arc::new(AtomicBool::new(false));
    let (f, b, c) = (frames.clone(), bytes.clone(), connected.clone());
    let handle = std::thread::spawn(move || -> anyhow::Result<()> {
        pin_current_thread(cpu);
        let deadline = Instant::now() + Duration::from_secs(60);
        let stream = loop {
            match UnixStream::connect(&socket) {
                Ok(s) => break s,
                Err(e) => {
                    if stop.load(Ordering::Relaxed) || Instant::now() > deadline {
                        bail!("connecting to {}: {e}", socket.display());
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        };
        c.store(true, Ordering::Release);
        let mut r = BufReader::with_capacity(1 << 20, stream);
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let mut len = [0u8; 4];
            match r.read_exact(&mut len) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                Err(e) => return Err(e.into()),
            }
            let n = u32::from_le_bytes(len) as usize;
            if n > buf.len() {
                buf.resize(n, 0);
            }
            r.read_exact(&mut buf[..n])?;
            f.fetch_add(1, Ordering::Relaxed);
            b.fetch_add(4 + n as u64, Ordering::Relaxed);
        }
    });
    Consumer {
        frames,
        bytes,
        connected,
        handle,
    }
}

/// Where Rampart's two interfaces come from.
pub enum Ports<'a> {
    /// A = `net_pcap` replaying `pcap` forever (its TX drops), B = `net_null`.
    PcapReplay { pcap: &'a Path },
    /// A and B are `net_vhost` servers at these sockets (the generator's
    /// virtio_user ports connect to them).
    Vhost { a: &'a Path, b: &'a Path },
}

impl Ports<'_> {
    /// The EAL memory options: vhost-user maps the peer's memory, so that
    /// topology runs on hugepages; replay needs none.
    fn memory(&self) -> &'static [&'static str] {
        match self {
            Ports::PcapReplay { .. } => &REPLAY_MEMORY,
            Ports::Vhost { .. } => &VHOST_MEMORY,
        }
    }

    fn devices(&self) -> (String, String) {
        match self {
            Ports::PcapReplay { pcap } => (
                format!("net_pcap0,rx_pcap={},infinite_rx=1", pcap.display()),
                "net_null0,no-rx=1".into(),
            ),
            Ports::Vhost { a, b } => (
                format!("net_vhost0,iface={},queues=1", a.display()),
                format!("net_vhost1,iface={},queues=1", b.display()),
            ),
        }
    }
}

/// Pinning: the control lcore (and the harness) on one CPU, the worker on another.
#[derive(Clone, Copy)]
pub struct Cpus {
    pub control: u32,
    pub worker: u32,
}

fn config(p: &Profile, dir: &Path, ports: &Ports, tag: &str, cpus: Cpus, sync: bool) -> String {
    let mut eal = eal_common(ports.memory(), tag, cpus.control, cpus.worker);
    eal.extend(["--log-level".into(), "pmd.net.vhost:error".into()]);
    let eal: Vec<String> = eal.into_iter().map(|a| format!("{a:?}")).collect();
    let (a, b) = ports.devices();
    let interfaces = configs::untrust_trust_pair(&a, &b);
    format!(
        r#"# rampart-bench profile {name}
[dataplane]
workers = 1
eal = [{eal}]

{events}
{interfaces}

[flow]
tcp-syn-check = false

{cluster}
{body}
"#,
        cluster = if sync {
            crate::sync_peer::cluster_config()
        } else {
            String::new()
        },
        name = p.name,
        eal = eal.join(", "),
        events = configs::event_sockets(dir.display()),
        body = p.body,
    )
}

/// A running `rampart run` with the harness's event consumer connected.
pub struct RampartRun {
    dir: tempfile::TempDir,
    child: Child,
    consumer: Option<Consumer>,
    stop: Arc<AtomicBool>,
    rampart: PathBuf,
    cpus: Cpus,
}

/// The final counters after a clean exit, and what the consumer read.
pub struct Finished {
    pub fin: Value,
    pub consumer_frames_total: u64,
}

impl RampartRun {
    /// Starts Rampart on `ports` with the profile's policy; returns once
    /// its ports are started (the control socket answers only then) with
    /// the event consumer connected before that.
    pub fn start(
        rampart: &Path,
        p: &Profile,
        ports: &Ports,
        tag: &str,
        cpus: Cpus,
        sync: bool,
    ) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("rb-").tempdir()?;
        let d = dir.path();
        let config_path = d.join("bench.toml");
        std::fs::write(&config_path, config(p, d, ports, tag, cpus, sync))?;
        let child = Command::new(rampart)
            .arg("run")
            .arg("--config")
            .arg(&config_path)
            // Stopped with SIGTERM when measured; this is only a backstop.
            .args(["--duration", "600", "--wait-consumer", "10", "--stats-out"])
            .arg(d.join("final.json"))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(d.join("rampart.log"))?)
            .stderr(std::fs::File::create(d.join("rampart.err"))?)
            .spawn()
            .context("spawning rampart")?;
        let stop = Arc::new(AtomicBool::new(false));
        let consumer = start_consumer(d.join("events.sock"), cpus.control, stop.clone());
        let mut run = RampartRun {
            dir,
            child,
            consumer: Some(consumer),
            stop,
            rampart: rampart.to_path_buf(),
            cpus,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(s) = run.child.try_wait()? {
                bail!(
                    "rampart exited early ({s}): {}",
                    tail(&run.dir.path().join("rampart.err"), 15)
                );
            }
            if run.sample().is_ok() {
                break;
            }
            if Instant::now() > deadline {
                bail!("rampart did not start its ports within 60 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if !run.consumer_connected() {
            bail!("the event consumer did not connect before the ports started");
        }
        Ok(run)
    }

    fn consumer_connected(&self) -> bool {
        self.consumer
            .as_ref()
            .is_some_and(|c| c.connected.load(Ordering::Acquire))
    }

    pub fn control_socket(&self) -> PathBuf {
        self.dir.path().join("control.sock")
    }

    pub fn sample(&self) -> anyhow::Result<Sample> {
        let (frames, bytes) = self.consumer.as_ref().map_or((0, 0), |c| {
            (
                c.frames.load(Ordering::Relaxed),
                c.bytes.load(Ordering::Relaxed),
            )
        });
        let (t, v) = rampart_stats(
            &self.rampart,
            &self.dir.path().join("control.sock"),
            self.cpus.control,
        )?;
        Ok(Sample {
            t,
            v,
            consumer_frames: frames,
            consumer_bytes: bytes,
        })
    }

    /// Waits until the worker has received a packet (the pcap replay
    /// starts with the ports).
    pub fn wait_for_traffic(&self) -> anyhow::Result<Instant> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let s = self.sample()?;
            if worker_sum(&s.v, "rx") > 0 {
                return Ok(s.t);
            }
            if Instant::now() > deadline {
                bail!("no packet received within 60 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, a clean exit, the consumer to its end of stream, and the
    /// final counters written by `--stats-out`.
    pub fn finish(mut self) -> anyhow::Result<Finished> {
        terminate(&self.child);
        let status = wait_child(&mut self.child, Duration::from_secs(60));
        self.stop.store(true, Ordering::Relaxed);
        let consumer = self.consumer.take().context("consumer already joined")?;
        let consumer_result = consumer
            .handle
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("consumer thread panicked")));
        let status = status?;
        let d = self.dir.path();
        if !status.success() {
            bail!(
                "rampart run exited with {status}: {}",
                tail(&d.join("rampart.err"), 15)
            );
        }
        if let Err(e) = consumer_result {
            bail!("event consumer: {e:#}");
        }
        let fin: Value = serde_json::from_str(
            &std::fs::read_to_string(d.join("final.json")).context("reading --stats-out")?,
        )
        .context("parsing --stats-out")?;
        Ok(Finished {
            fin,
            consumer_frames_total: consumer.frames.load(Ordering::Relaxed),
        })
    }
}

impl Drop for RampartRun {
    fn drop(&mut self) {
        // Never leave a busy-polling worker behind an error.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The figures of one run from two samples and the final counters: rates,
/// cycles per packet (busy TSC cycles / rx), worker load, drops by reason,
/// events per type and second, stage cycles, and the accounting check.
pub fn result(s1: &Sample, s2: &Sample, finished: &Finished) -> Value {
    let Finished {
        fin,
        consumer_frames_total,
    } = finished;
    let dframes = s2.consumer_frames.saturating_sub(s1.consumer_frames);
    let dbytes = s2.consumer_bytes.saturating_sub(s1.consumer_bytes);
    let dt = (s2.t - s1.t).as_secs_f64();
    let d = |k: &str| worker_sum(&s2.v, k).saturating_sub(worker_sum(&s1.v, k));
    let (rx, tx, dropped, busy) = (d("rx"), d("tx"), d("dropped"), d("busy_cycles"));
    let mut drops = serde_json::Map::new();
    let sum_drops = |v: &Value| -> BTreeMap<String, u64> {
        let mut m = BTreeMap::new();
        for w in v["workers"].as_array().into_iter().flatten() {
            for (k, n) in w["drops"].as_object().into_iter().flatten() {
                *m.entry(k.clone()).or_default() += u(n);
            }
        }
        m
    };
    let (d1, d2) = (sum_drops(&s1.v), sum_drops(&s2.v));
    for (k, n2) in &d2 {
        let n = n2.saturating_sub(*d1.get(k).unwrap_or(&0));
        if n > 0 {
            drops.insert(k.clone(), json!(n as f64 / dt / 1e6));
        }
    }
    let cpp: Vec<Value> = s2.v["workers"]
        .as_array()
        .into_iter()
        .flatten()
        .zip(s1.v["workers"].as_array().into_iter().flatten())
        .map(|(w2, w1)| {
            let drx = u(&w2["rx"]).saturating_sub(u(&w1["rx"]));
            let dbusy = u(&w2["busy_cycles"]).saturating_sub(u(&w1["busy_cycles"]));
            json!({"lcore": w2["lcore"], "cycles_per_packet": if drx > 0 { dbusy as f64 / drx as f64 } else { f64::NAN }})
        })
        .collect();
    // Per-stage cycles per packet over the interval, summed over workers
    // (every stage timed once per burst).
    let stage_sum = |v: &Value, stage: &str, k: &str| -> u64 {
        v["workers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|w| u(&w["stage_cycles"][stage][k]))
            .sum()
    };
    let mut stages = serde_json::Map::new();
    for stage in STAGES {
        let dc =
            stage_sum(&s2.v, stage, "cycles").saturating_sub(stage_sum(&s1.v, stage, "cycles"));
        let dp =
            stage_sum(&s2.v, stage, "packets").saturating_sub(stage_sum(&s1.v, stage, "packets"));
        if dp > 0 {
            stages.insert(format!("stage_{stage}"), json!(dc as f64 / dp as f64));
        }
    }
    let (e1, e2) = (event_counters(&s1.v), event_counters(&s2.v));
    let mut events = serde_json::Map::new();
    for (t, c2) in &e2 {
        let c1 = e1.get(t).copied().unwrap_or_default();
        if c2.iter().zip(&c1).all(|(a, b)| a == b) {
            continue;
        }
        let mut o = serde_json::Map::new();
        for (i, f) in EV_FIELDS.iter().enumerate() {
            o.insert(
                format!("{f}_per_s"),
                json!(c2[i].saturating_sub(c1[i]) as f64 / dt),
            );
        }
        events.insert(t.clone(), Value::Object(o));
    }
    let ev_sum = |i: usize| -> f64 {
        e2.iter()
            .map(|(t, c)| c[i].saturating_sub(e1.get(t).map_or(0, |c| c[i])))
            .sum::<u64>() as f64
            / dt
    };
    let (ok, problems) = reconcile(fin);
    let fin_rx = worker_sum(fin, "rx");
    let fin_tx = worker_sum(fin, "tx");
    let fin_dropped = worker_sum(fin, "dropped");
    let delivered_total: u64 = event_counters(fin).values().map(|c| c[4]).sum();
    let mut result = json!({
        "interval_s": dt,
        "mpps_in": rx as f64 / dt / 1e6,
        "mpps_out": tx as f64 / dt / 1e6,
        "mpps_dropped": dropped as f64 / dt / 1e6,
        "drops_mpps": drops,
        "cycles_per_packet": if rx > 0 { busy as f64 / rx as f64 } else { f64::NAN },
        "workers": cpp,
        "events_per_s": events,
        "events_generated_per_s": ev_sum(0),
        "events_ring_overflow_per_s": ev_sum(2),
        "events_delivered_per_s": ev_sum(4),
        "events_consumer_dropped_per_s": ev_sum(5),
        "consumer_frames_per_s": dframes as f64 / dt,
        "consumer_mbytes_per_s": dbytes as f64 / dt / 1e6,
        "worker_load": worker_load(s1, s2),
        "reconciled": ok,
        "accounting_problems": problems,
        "final": {
            "rx": fin_rx, "tx": fin_tx, "dropped": fin_dropped,
            "events": fin["events"], "consumers": fin["consumers"],
            "consumer_frames_read": consumer_frames_total,
            "events_delivered": delivered_total,
            "ports": fin["ports"],
        },
    });
    if let Value::Object(o) = &mut result {
        o.extend(stages);
    }
    result
}

/// Busy share of the worker's time over the interval (1.0 = never idle):
/// below 1 the worker was waiting for packets, so the source was the limit.
fn worker_load(s1: &Sample, s2: &Sample) -> Option<f64> {
    let hz = s2.v["tsc_hz"].as_f64()?;
    let dt = (s2.t - s1.t).as_secs_f64();
    let busy = worker_sum(&s2.v, "busy_cycles").saturating_sub(worker_sum(&s1.v, "busy_cycles"));
    let workers = s2.v["workers"].as_array()?.len().max(1) as f64;
    (hz > 0.0 && dt > 0.0).then(|| busy as f64 / (hz * dt * workers))
}

/// The worker stages `rampart stats --json` reports in `stage_cycles`.
pub const STAGES: [&str; rampart_pipeline::engine::WorkerStage::COUNT] =
    rampart_pipeline::engine::WorkerStage::NAMES;

/// Lists every session over the control socket, page after page, again
/// and again until stopped: the `sessions` request `rampart sessions`
/// sends, as fast as the control plane answers.
pub struct SessionLister {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<anyhow::Result<(u64, u64)>>,
}

impl SessionLister {
    pub fn start(socket: PathBuf, cpu: u32) -> SessionLister {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            crate::util::pin_current_thread(cpu);
            let (mut listings, mut sessions) = (0u64, 0u64);
            while !flag.load(Ordering::Relaxed) {
                let mut after = "0:0".to_owned();
                loop {
                    let page = request(&socket, &format!("sessions limit=1000 after={after}"))?;
                    sessions += page["sessions"].as_array().map_or(0, |s| s.len() as u64);
                    match page["next"].as_str() {
                        Some(next) => after = next.to_owned(),
                        None => break,
                    }
                }
                listings += 1;
            }
            Ok((listings, sessions))
        });
        SessionLister { stop, handle }
    }

    /// Stops; the listings completed and the sessions they listed.
    pub fn stop(self) -> anyhow::Result<(u64, u64)> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the session lister panicked")))
    }
}

/// One control-socket request and its JSON reply.
fn request(socket: &Path, line: &str) -> anyhow::Result<Value> {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(socket)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.write_all(format!("{line}\n").as_bytes())?;
    let mut reply = String::new();
    s.read_to_string(&mut reply)?;
    let v: Value = serde_json::from_str(reply.trim()).context("a sessions reply")?;
    if let Some(e) = v.get("error") {
        bail!("sessions: {e}");
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A final stats record in the shape `rampart run --stats-out` writes.
    fn final_stats(drained: u64, delivered: u64, dropped: u64) -> Value {
        json!({
            "events": {
                "policy_deny": {"generated": 100, "rate_limited": 10, "ring_overflow": 5, "drained": drained},
                "session_open": {"generated": 0, "rate_limited": 0, "ring_overflow": 0, "drained": 0},
            },
            "consumers": [{
                "id": 1,
                "delivered": {"policy_deny": delivered, "session_open": 0},
                "dropped": {"policy_deny": dropped, "session_open": 0},
            }],
        })
    }

    #[test]
    fn exact_accounting_reconciles() {
        let (ok, problems) = reconcile(&final_stats(85, 80, 5));
        assert!(ok, "{problems:?}");
    }

    #[test]
    fn a_lost_record_is_named() {
        // One record drained but neither delivered nor counted as dropped.
        let (ok, problems) = reconcile(&final_stats(85, 80, 4));
        assert!(!ok);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("policy_deny") && problems[0].contains("drained 85"));
        // One generated but never accounted for on the worker side.
        let (ok, problems) = reconcile(&final_stats(84, 80, 4));
        assert!(!ok);
        assert!(problems[0].contains("generated 100"), "{problems:?}");
    }

    #[test]
    fn missing_sections_do_not_pass() {
        assert!(!reconcile(&json!({})).0, "no events, no consumer");
        let mut v = final_stats(85, 80, 5);
        v["consumers"] = json!([]);
        let (ok, problems) = reconcile(&v);
        assert!(!ok);
        assert!(problems[0].contains("no consumer"));
    }
}
