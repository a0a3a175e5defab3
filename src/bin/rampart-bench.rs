//! `rampart-bench`: the DPDK benchmark harness (issue #5).
//!
//! Generates deterministic, seeded traffic profiles into pcap files, then
//! for every profile and repetition runs
//!
//! * Rampart (`rampart run`) on the "pcap-replay" topology: interface A is
//!   `net_pcap0,rx_pcap=PROFILE.pcap,infinite_rx=1` (its TX drops), B is
//!   `net_null0,no-rx=1` (a TX sink), A peered with B, one worker lcore
//!   pinned to another CPU than the control lcore, with an event consumer
//!   (a thread here) counting frames and bytes on the event socket;
//! * `dpdk-testpmd` in `io` forwarding mode on the same vdevs, the same
//!   pcap and the same pinning, as the baseline.
//!
//! Rates are measured over a steady-state interval from two counter samples
//! (`rampart stats --json`, testpmd `show port stats all`). After each
//! Rampart run the final counters (`--stats-out`) must reconcile: per event
//! type `generated == rate_limited + ring_overflow + drained`, and for the
//! consumer `drained == delivered + dropped`. Any run that does not makes the
//! harness exit non-zero.
//!
//! Writes `results.json` (every run), and (unless `--quick`) a Markdown
//! table between `<!-- bench:begin -->` and `<!-- bench:end -->` in
//! BENCHMARKS.md.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use rampart_pipeline::flow::Addr;
use rampart_pipeline::pcap;
use rampart_pipeline::traffic::{ping, tcp, udp, v4, v6, Rng};
use rampart_pipeline::wire::TcpFlags;
use serde_json::{json, Value};

#[derive(Parser, Debug)]
#[command(
    name = "rampart-bench",
    about = "DPDK benchmark harness: Rampart vs testpmd io on pcap replay"
)]
struct Args {
    /// Smoke run for CI: 1 run, ~1 s measurement, 3 profiles, no
    /// BENCHMARKS.md update; still fails if the accounting does not reconcile.
    #[arg(long)]
    quick: bool,
    /// Repetitions per scenario (figures are medians with min/max).
    #[arg(long)]
    runs: Option<usize>,
    /// Output directory for results.json (default bench-results, or
    /// $TMPDIR/rampart-bench-quick with --quick).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The rampart binary (default: next to this one).
    #[arg(long)]
    rampart: Option<PathBuf>,
    #[arg(long, default_value = "/usr/bin/dpdk-testpmd")]
    testpmd: PathBuf,
    /// Skip the testpmd baseline.
    #[arg(long)]
    no_testpmd: bool,
    /// Only these profiles (comma-separated names).
    #[arg(long)]
    profiles: Option<String>,
    /// Seconds between the ports starting and the first sample.
    #[arg(long)]
    warmup: Option<f64>,
    /// Seconds between the two samples.
    #[arg(long)]
    interval: Option<f64>,
    /// The Markdown file to update between the bench markers
    /// (default BENCHMARKS.md unless --quick).
    #[arg(long)]
    markdown: Option<PathBuf>,
    #[arg(long)]
    no_markdown: bool,
    /// CPU of the control (main) lcore, the harness and its consumer thread.
    #[arg(long, default_value_t = 0)]
    control_cpu: u32,
    /// CPU of the worker lcore (testpmd's forwarding lcore).
    #[arg(long, default_value_t = 1)]
    worker_cpu: u32,
    /// Packets per generated capture.
    #[arg(long, default_value_t = 4096)]
    packets: usize,
    /// The command line recorded in BENCHMARKS.md.
    #[arg(long)]
    command: Option<String>,
}

// ---------------------------------------------------------------------------
// Traffic profiles

struct Profile {
    name: &'static str,
    title: String,
    /// Frames (without FCS; a "64 B" frame is 60 bytes captured).
    frames: Vec<Vec<u8>>,
    /// Zones, screens, address book, policies, default policy.
    body: String,
    /// Policies in the config (for the rule-scaling curve).
    rules: Option<usize>,
}

fn sized<F: Fn(&[u8]) -> Vec<u8>>(frame_len: usize, build: F) -> Vec<u8> {
    let hdr = build(&[]).len();
    build(&vec![0x42u8; frame_len.saturating_sub(hdr)])
}

/// Frame sizes (captured, without the 4-byte FCS) of the 7:4:1 IMIX.
const IMIX: [usize; 3] = [60, 566, 1514];

fn imix_sizes(rng: &mut Rng, n: usize) -> Vec<usize> {
    let mut out = Vec::with_capacity(n + 12);
    while out.len() < n {
        let mut block: Vec<usize> = std::iter::repeat_n(IMIX[0], 7)
            .chain(std::iter::repeat_n(IMIX[1], 4))
            .chain(std::iter::once(IMIX[2]))
            .collect();
        for i in (1..block.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            block.swap(i, j);
        }
        out.extend(block);
    }
    out.truncate(n);
    out
}

const ZONES: &str = "[zone.untrust]\n[zone.trust]\n";

const WEB_BODY: &str = r#"
[address-book]
web = ["10.1.0.0/24", "2001:db8:1::/64"]
dns = ["10.1.1.53"]

[[policy]]
name = "allow-web"
from-zone = "untrust"
to-zone = "trust"
source-address = ["any"]
destination-address = ["web"]
application = ["junos-http", "junos-https", "junos-ping"]
then = "permit"

[[policy]]
name = "allow-dns"
from-zone = "untrust"
to-zone = "trust"
source-address = ["any"]
destination-address = ["dns"]
application = ["junos-dns-udp"]
then = "permit"

[[policy]]
name = "deny-telnet"
from-zone = "untrust"
to-zone = "trust"
source-address = ["any"]
destination-address = ["any"]
application = ["junos-telnet"]
then = "deny"
log = ["session-init"]

[default-policy]
then = "deny"
log = true
"#;

fn client(f: usize) -> Addr {
    v4(192, 168, (f >> 8) as u8, (f & 255) as u8)
}

fn established(name: &'static str, seed: u64, n: usize, imix: bool) -> Profile {
    let flows = 1024;
    let mut rng = Rng::new(seed);
    let sizes = if imix {
        imix_sizes(&mut rng, n)
    } else {
        vec![60; n]
    };
    let frames = (0..n)
        .map(|i| {
            let f = i % flows;
            sized(sizes[i], |p| {
                tcp(
                    client(f),
                    v4(10, 1, 0, 10 + (f % 200) as u8),
                    10000 + f as u16,
                    80,
                    TcpFlags::ACK | TcpFlags::PSH,
                    p,
                )
            })
        })
        .collect();
    Profile {
        name,
        title: if imix {
            "established flows, IMIX 7:4:1 (64/570/1518 B)".into()
        } else {
            "established flows, 64 B".into()
        },
        frames,
        body: format!("{ZONES}{WEB_BODY}"),
        rules: None,
    }
}

fn realistic(seed: u64, n: usize) -> Profile {
    let mut rng = Rng::new(seed);
    let sizes = imix_sizes(&mut rng, n);
    let web = |k: u64| v4(10, 1, 0, 10 + (k % 50) as u8);
    let frames = (0..n)
        .map(|i| {
            let f = rng.below(2000) as usize;
            let roll = rng.below(1000);
            let len = sizes[i];
            match roll {
                // 0.5% screen hits: land, syn-fin, tcp-no-flag, fin-no-ack.
                0..=4 => {
                    let a = client(f);
                    match roll % 4 {
                        0 => tcp(web(f as u64), web(f as u64), 1234, 80, TcpFlags::SYN, &[]),
                        1 => tcp(a, web(1), 1234, 80, TcpFlags::SYN | TcpFlags::FIN, &[]),
                        2 => tcp(a, web(2), 1235, 80, TcpFlags::EMPTY, &[]),
                        _ => tcp(a, web(3), 1236, 80, TcpFlags::FIN, &[]),
                    }
                }
                // 5% denied by the deny-telnet policy (logged).
                5..=54 => sized(60, |p| {
                    tcp(
                        client(f),
                        web(f as u64),
                        20000 + f as u16,
                        23,
                        TcpFlags::SYN,
                        p,
                    )
                }),
                // 5% to addresses no policy permits: default deny (logged).
                55..=104 => sized(60, |p| {
                    udp(
                        client(f),
                        v4(10, 9, (f >> 8) as u8, f as u8),
                        30000 + f as u16,
                        5000,
                        p,
                    )
                }),
                // Permitted: DNS, ping, IPv6 HTTPS, IPv4 HTTP data.
                105..=254 => sized(len.min(566), |p| {
                    udp(client(f), v4(10, 1, 1, 53), 40000 + f as u16, 53, p)
                }),
                255..=304 => ping(client(f), web(f as u64), f as u16, 1),
                305..=404 => sized(len.max(74), |p| {
                    tcp(
                        v6(&format!("2001:db8:ff::{:x}", f + 1)),
                        v6(&format!("2001:db8:1::{:x}", 10 + f % 50)),
                        45000 + f as u16,
                        443,
                        TcpFlags::ACK,
                        p,
                    )
                }),
                _ => sized(len, |p| {
                    tcp(
                        client(f),
                        web(f as u64),
                        10000 + f as u16,
                        80,
                        TcpFlags::ACK | TcpFlags::PSH,
                        p,
                    )
                }),
            }
        })
        .collect();
    let body = format!(
        r#"[zone.untrust]
screen = "edge"
[zone.trust]

[screen.edge]
land = true
syn-fin = true
tcp-no-flag = true
fin-no-ack = true
winnuke = true
syn-frag = true
tear-drop = true
ping-death = true
{WEB_BODY}"#
    );
    Profile {
        name: "realistic-mix",
        title: "realistic mix: ~10% denied (logged), 0.5% screen hits, IMIX, v4+v6".into(),
        frames,
        body,
        rules: None,
    }
}

fn deny_storm(seed: u64, n: usize) -> Profile {
    let mut rng = Rng::new(seed);
    let frames = (0..n)
        .map(|i| {
            let src = v4(192, 0, 2, rng.below(250) as u8 + 1);
            let dst = v4(10, 2, rng.below(250) as u8, rng.below(250) as u8 + 1);
            let sport = 1024 + rng.below(60000) as u16;
            if i % 3 == 0 {
                sized(60, |p| udp(src, dst, sport, 53, p))
            } else {
                sized(60, |p| tcp(src, dst, sport, 443, TcpFlags::SYN, p))
            }
        })
        .collect();
    Profile {
        name: "deny-storm",
        title: "deny storm: 100% denied by the default policy, every packet logged, 64 B".into(),
        frames,
        body: format!("{ZONES}\n[default-policy]\nthen = \"deny\"\nlog = true\n"),
        rules: None,
    }
}

fn syn_flood(n: usize) -> Profile {
    let target = v4(10, 1, 0, 10);
    let frames = (0..n)
        .map(|i| {
            sized(60, |p| {
                tcp(
                    client(i % 4096),
                    target,
                    20000 + (i / 4096) as u16,
                    80,
                    TcpFlags::SYN,
                    p,
                )
            })
        })
        .collect();
    let body = format!(
        r#"[zone.untrust]
screen = "flood"
[zone.trust]

[screen.flood]
syn-flood = {{ attack-threshold = 1000, source-threshold = 100000, destination-threshold = 5000 }}
{WEB_BODY}"#
    );
    Profile {
        name: "syn-flood",
        title: "SYN flood at one server, screen syn-flood on, 64 B".into(),
        frames,
        body,
        rules: None,
    }
}

fn rule_host(r: usize) -> Addr {
    v4(10, 200 + (r >> 16) as u8, (r >> 8) as u8, r as u8)
}

fn rules(name: &'static str, count: usize, n: usize) -> Profile {
    let frames = (0..n)
        .map(|i| {
            // Spread over the whole list, first to last.
            let r = (i as u64 * 2_654_435_761 % count as u64) as usize;
            sized(60, |p| {
                tcp(
                    client(i % 4096),
                    rule_host(r),
                    10000 + (i % 50000) as u16,
                    80,
                    TcpFlags::ACK | TcpFlags::PSH,
                    p,
                )
            })
        })
        .collect();
    let mut body = String::from(ZONES);
    body.push_str("\n[address-book]\n");
    for r in 0..count {
        let _ = writeln!(body, "h{r} = [\"{}/32\"]", rule_host(r));
    }
    for r in 0..count {
        let _ = write!(
            body,
            "\n[[policy]]\nname = \"p{r}\"\nfrom-zone = \"untrust\"\nto-zone = \"trust\"\nsource-address = [\"any\"]\ndestination-address = [\"h{r}\"]\napplication = [\"junos-http\"]\nthen = \"deny\"\n"
        );
    }
    body.push_str("\n[default-policy]\nthen = \"deny\"\n");
    Profile {
        name,
        title: format!(
            "{count} policies, each with its own address-book /32; 64 B first packets spread over all (deny, no log: a policy lookup per packet)"
        ),
        frames,
        body,
        rules: Some(count),
    }
}

fn all_profiles(n: usize) -> Vec<Profile> {
    vec![
        established("est-64", 1, n, false),
        established("est-imix", 2, n, true),
        realistic(3, n),
        deny_storm(4, n),
        syn_flood(n),
        rules("rules-10", 10, n),
        rules("rules-100", 100, n),
        rules("rules-1000", 1000, n),
        rules("rules-10000", 10000, n),
    ]
}

fn write_pcap(path: &Path, frames: &[Vec<u8>]) -> anyhow::Result<()> {
    let file = std::fs::File::create(path).with_context(|| path.display().to_string())?;
    let mut w = pcap::Writer::new(std::io::BufWriter::new(file))?;
    for (i, f) in frames.iter().enumerate() {
        w.write(1_700_000_000_000_000_000 + i as u64 * 1000, f)?;
    }
    w.finish()?.flush()?;
    Ok(())
}

// ---------------------------------------------------------------------------
// Helpers

/// Pins the calling thread to one CPU (through taskset on its TID; no libc).
fn pin_current_thread(cpu: u32) {
    if let Ok(link) = std::fs::read_link("/proc/thread-self") {
        if let Some(tid) = link.file_name().and_then(|t| t.to_str()) {
            let _ = Command::new("taskset")
                .args(["-pc", &cpu.to_string(), tid])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn sh(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

#[derive(Clone, Copy, Debug, Default)]
struct Stat {
    median: f64,
    min: f64,
    max: f64,
    n: usize,
}

fn stat(v: &[f64]) -> Option<Stat> {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let m = v.len();
    let median = if m % 2 == 1 {
        v[m / 2]
    } else {
        (v[m / 2 - 1] + v[m / 2]) / 2.0
    };
    Some(Stat {
        median,
        min: v[0],
        max: v[m - 1],
        n: m,
    })
}

fn stat_json(s: Option<Stat>) -> Value {
    match s {
        Some(s) => json!({"median": s.median, "min": s.min, "max": s.max, "n": s.n}),
        None => Value::Null,
    }
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

// ---------------------------------------------------------------------------
// Rampart runs

struct Sample {
    t: Instant,
    v: Value,
}

fn rampart_stats(rampart: &Path, socket: &Path, cpu: u32) -> anyhow::Result<Sample> {
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
    Ok(Sample {
        t: t0 + (t1 - t0) / 2,
        v,
    })
}

fn worker_sum(v: &Value, key: &str) -> u64 {
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
fn reconcile(v: &Value) -> (bool, Vec<String>) {
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

struct Timing {
    warmup: f64,
    interval: f64,
}

fn eal_common(memory: &[&str], prefix: &str, control_cpu: u32, worker_cpu: u32) -> Vec<String> {
    let mut v: Vec<String> = memory.iter().map(|s| s.to_string()).collect();
    v.extend([
        "--no-shconf".into(),
        format!("--file-prefix={prefix}"),
        "--lcores".into(),
        format!("0@{control_cpu},1@{worker_cpu}"),
        "--log-level".into(),
        "lib.eal:error".into(),
    ]);
    v
}

const MEMORY: [&str; 3] = ["--no-huge", "-m", "1024"];

fn rampart_config(p: &Profile, dir: &Path, pcap: &Path, tag: &str, args: &Args) -> String {
    let eal: Vec<String> = eal_common(&MEMORY, tag, args.control_cpu, args.worker_cpu)
        .into_iter()
        .map(|a| format!("{a:?}"))
        .collect();
    format!(
        r#"# rampart-bench profile {name}
[dataplane]
workers = 1
eal = [{eal}]

[events]
socket = "{d}/events.sock"
control_socket = "{d}/control.sock"

[[interface]]
name = "ge-0/0/0"
device = "net_pcap0,rx_pcap={pcap},infinite_rx=1"
zone = "untrust"
peer = "ge-0/0/1"

[[interface]]
name = "ge-0/0/1"
device = "net_null0,no-rx=1"
zone = "trust"
peer = "ge-0/0/0"

[flow]
tcp-syn-check = false

{body}
"#,
        name = p.name,
        eal = eal.join(", "),
        d = dir.display(),
        pcap = pcap.display(),
        body = p.body,
    )
}

fn wait_child(child: &mut Child, timeout: Duration) -> anyhow::Result<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(s) = child.try_wait()? {
            return Ok(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("timed out after {:.0} s, killed", timeout.as_secs_f64());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let s = std::fs::read_to_string(path).unwrap_or_default();
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

fn run_rampart(
    args: &Args,
    rampart: &Path,
    p: &Profile,
    pcap: &Path,
    timing: &Timing,
    tag: &str,
) -> anyhow::Result<Value> {
    let dir = tempfile::Builder::new().prefix("rb-").tempdir()?;
    let d = dir.path();
    let config = d.join("bench.toml");
    std::fs::write(&config, rampart_config(p, d, pcap, tag, args))?;
    let stats_out = d.join("final.json");
    let log = d.join("rampart.log");
    let duration = timing.warmup + timing.interval + 1.5;
    let mut child = Command::new(rampart)
        .arg("run")
        .arg("--config")
        .arg(&config)
        .arg("--duration")
        .arg(format!("{duration}"))
        .args(["--wait-consumer", "10", "--stats-out"])
        .arg(&stats_out)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log)?)
        .stderr(std::fs::File::create(d.join("rampart.err"))?)
        .spawn()
        .context("spawning rampart")?;
    let stop = Arc::new(AtomicBool::new(false));
    let consumer = start_consumer(d.join("events.sock"), args.control_cpu, stop.clone());
    let control = d.join("control.sock");

    let measured = (|| -> anyhow::Result<(Sample, Sample, u64, u64, f64)> {
        // Wait for the ports to start (the first received packet).
        let deadline = Instant::now() + Duration::from_secs(60);
        let started = loop {
            if let Some(s) = child.try_wait()? {
                bail!("rampart exited early ({s})");
            }
            if let Ok(s) = rampart_stats(rampart, &control, args.control_cpu) {
                if worker_sum(&s.v, "rx") > 0 {
                    break s.t;
                }
            }
            if Instant::now() > deadline {
                bail!("no packet received within 60 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        if !consumer.connected.load(Ordering::Acquire) {
            bail!("the event consumer did not connect before the ports started");
        }
        std::thread::sleep(
            (started + Duration::from_secs_f64(timing.warmup))
                .saturating_duration_since(Instant::now()),
        );
        let f1 = consumer.frames.load(Ordering::Relaxed);
        let b1 = consumer.bytes.load(Ordering::Relaxed);
        let s1 = rampart_stats(rampart, &control, args.control_cpu)?;
        let tc1 = Instant::now();
        std::thread::sleep(Duration::from_secs_f64(timing.interval));
        let f2 = consumer.frames.load(Ordering::Relaxed);
        let b2 = consumer.bytes.load(Ordering::Relaxed);
        let tc2 = Instant::now();
        let s2 = rampart_stats(rampart, &control, args.control_cpu)?;
        Ok((s1, s2, f2 - f1, b2 - b1, (tc2 - tc1).as_secs_f64()))
    })();
    let status = wait_child(&mut child, Duration::from_secs_f64(duration + 60.0));
    stop.store(true, Ordering::Relaxed);
    let consumer_result = consumer
        .handle
        .join()
        .unwrap_or_else(|_| Err(anyhow::anyhow!("consumer thread panicked")));
    let consumer_frames_total = consumer.frames.load(Ordering::Relaxed);
    let status = status?;
    if !status.success() {
        bail!(
            "rampart run exited with {status}: {}",
            tail(&d.join("rampart.err"), 15)
        );
    }
    let (s1, s2, dframes, dbytes, dtc) = measured?;
    if let Err(e) = consumer_result {
        bail!("event consumer: {e:#}");
    }
    let fin: Value =
        serde_json::from_str(&std::fs::read_to_string(&stats_out).context("reading --stats-out")?)
            .context("parsing --stats-out")?;

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
    // (rx/tx timed per burst, the rest on sampled packets).
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
    let (ok, problems) = reconcile(&fin);
    let fin_rx = worker_sum(&fin, "rx");
    let fin_tx = worker_sum(&fin, "tx");
    let fin_dropped = worker_sum(&fin, "dropped");
    let delivered_total: u64 = event_counters(&fin).values().map(|c| c[4]).sum();
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
        "consumer_frames_per_s": dframes as f64 / dtc,
        "consumer_mbytes_per_s": dbytes as f64 / dtc / 1e6,
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
    Ok(result)
}

/// The worker stages `rampart stats --json` reports in `stage_cycles`.
const STAGES: [&str; 9] = [
    "rx",
    "parse",
    "filter_input",
    "screen",
    "session",
    "policy",
    "filter_output",
    "events",
    "tx",
];

// ---------------------------------------------------------------------------
// testpmd baseline

#[derive(Debug)]
enum TpLine {
    Port { port: u32, rx: u64, tx: u64 },
    Cycles(f64),
}

fn first_number_after(line: &str, key: &str) -> Option<u64> {
    let rest = &line[line.find(key)? + key.len()..];
    rest.split_whitespace().next()?.parse().ok()
}

fn run_testpmd(args: &Args, pcap: &Path, timing: &Timing, tag: &str) -> anyhow::Result<Value> {
    let dir = tempfile::Builder::new().prefix("rb-tp-").tempdir()?;
    // testpmd's stdout is a pipe here: make it line-buffered so that each
    // stats block arrives when it is printed.
    let mut cmd = if Path::new("/usr/bin/stdbuf").exists() {
        let mut c = Command::new("stdbuf");
        c.arg("-oL").arg(&args.testpmd);
        c
    } else {
        Command::new(&args.testpmd)
    };
    cmd.args(eal_common(&MEMORY, tag, args.control_cpu, args.worker_cpu))
        .args(["--no-pci", "--vdev"])
        .arg(format!(
            "net_pcap0,rx_pcap={},infinite_rx=1",
            pcap.display()
        ))
        .args(["--vdev", "net_null0,no-rx=1", "--"])
        .args([
            "-i",
            "--forward-mode=io",
            "--nb-cores=1",
            "--rxq=1",
            "--txq=1",
            "--rxd=1024",
            "--txd=1024",
            "--burst=32",
            "--total-num-mbufs=16383",
            "--no-flush-rx",
            "--no-lsc-interrupt",
            "--record-core-cycles",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.path().join("testpmd.err"))?);
    let mut child = cmd.spawn().context("spawning dpdk-testpmd")?;
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<TpLine>();
    let transcript = Arc::new(std::sync::Mutex::new(String::new()));
    let tr = transcript.clone();
    let reader = std::thread::spawn(move || {
        let mut port: Option<u32> = None;
        let mut rx_pk = 0u64;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Ok(mut t) = tr.lock() {
                if t.len() < 200_000 {
                    t.push_str(&line);
                    t.push('\n');
                }
            }
            if let Some(i) = line.find("NIC statistics for port") {
                port = line[i + "NIC statistics for port".len()..]
                    .split_whitespace()
                    .next()
                    .and_then(|p| p.parse().ok());
            }
            if let Some(n) = first_number_after(&line, "RX-packets:") {
                rx_pk = n;
            }
            if let (Some(p), Some(n)) = (port, first_number_after(&line, "TX-packets:")) {
                let _ = tx.send(TpLine::Port {
                    port: p,
                    rx: rx_pk,
                    tx: n,
                });
                port = None;
            }
            if let Some(i) = line.find("CPU cycles/packet=") {
                let rest = &line[i + "CPU cycles/packet=".len()..];
                if let Some(c) = rest
                    .split(|c: char| c.is_whitespace())
                    .next()
                    .and_then(|s| s.parse::<f64>().ok())
                {
                    let _ = tx.send(TpLine::Cycles(c));
                }
            }
        }
    });
    let result = (|| -> anyhow::Result<Value> {
        let send = |stdin: &mut std::process::ChildStdin, c: &str| -> anyhow::Result<()> {
            stdin.write_all(c.as_bytes())?;
            stdin.write_all(b"\n")?;
            stdin.flush()?;
            Ok(())
        };
        // One sample: (time, port0 rx, port1 tx).
        let sample = |stdin: &mut std::process::ChildStdin| -> anyhow::Result<(Instant, u64, u64)> {
            while rx.try_recv().is_ok() {}
            let t0 = Instant::now();
            send(stdin, "show port stats all")?;
            let mut p0 = None;
            let mut p1 = None;
            let deadline = Instant::now() + Duration::from_secs(10);
            while p0.is_none() || p1.is_none() {
                let left = deadline.saturating_duration_since(Instant::now());
                match rx.recv_timeout(left) {
                    Ok(TpLine::Port { port: 0, rx, .. }) => p0 = Some(rx),
                    Ok(TpLine::Port { port: 1, tx, .. }) => p1 = Some(tx),
                    Ok(_) => {}
                    Err(_) => bail!("no port statistics from testpmd"),
                }
            }
            let t1 = Instant::now();
            Ok((t0 + (t1 - t0) / 2, p0.unwrap(), p1.unwrap()))
        };
        // Ports are up once testpmd answers a stats request.
        sample(&mut stdin).context("testpmd did not come up")?;
        send(&mut stdin, "start")?;
        std::thread::sleep(Duration::from_secs_f64(timing.warmup));
        let (t1, rx1, tx1) = sample(&mut stdin)?;
        std::thread::sleep(Duration::from_secs_f64(timing.interval));
        let (t2, rx2, tx2) = sample(&mut stdin)?;
        send(&mut stdin, "stop")?;
        let mut cycles = None;
        let deadline = Instant::now() + Duration::from_secs(5);
        while let Ok(l) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            if let TpLine::Cycles(c) = l {
                cycles = Some(c);
                break;
            }
        }
        let _ = send(&mut stdin, "quit");
        let dt = (t2 - t1).as_secs_f64();
        if rx2 <= rx1 {
            bail!("testpmd received nothing during the interval");
        }
        Ok(json!({
            "interval_s": dt,
            "mpps_in": (rx2 - rx1) as f64 / dt / 1e6,
            "mpps_out": tx2.saturating_sub(tx1) as f64 / dt / 1e6,
            "cycles_per_packet": cycles,
        }))
    })();
    drop(stdin);
    let status = wait_child(&mut child, Duration::from_secs(20));
    let _ = reader.join();
    match (result, status) {
        (Ok(v), _) => Ok(v),
        (Err(e), _) => {
            let t = transcript.lock().map(|t| t.clone()).unwrap_or_default();
            let lines: Vec<&str> = t.lines().collect();
            bail!(
                "{e:#}; testpmd said: {}\n{}",
                lines[lines.len().saturating_sub(10)..].join("\n"),
                tail(&dir.path().join("testpmd.err"), 10)
            )
        }
    }
}

// ---------------------------------------------------------------------------
// Report

fn fmt_stat(s: Option<Stat>, digits: usize) -> String {
    match s {
        Some(s) if s.n > 1 => format!("{:.d$} ({:.d$}–{:.d$})", s.median, s.min, s.max, d = digits),
        Some(s) => format!("{:.d$}", s.median, d = digits),
        None => "–".into(),
    }
}

fn fmt_rate(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2} M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1} k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

fn collect(runs: &[Value], profile: &str, system: &str, key: &str) -> Vec<f64> {
    runs.iter()
        .filter(|r| r["profile"] == profile && r["system"] == system && r["ok"] == true)
        .filter_map(|r| r["result"][key].as_f64())
        .collect()
}

fn summarize(profiles: &[Profile], runs: &[Value]) -> Vec<Value> {
    let rules10 = stat(&collect(runs, "rules-10", "rampart", "mpps_in"));
    profiles
        .iter()
        .map(|p| {
            let r_in = stat(&collect(runs, p.name, "rampart", "mpps_in"));
            let r_out = stat(&collect(runs, p.name, "rampart", "mpps_out"));
            let t_in = stat(&collect(runs, p.name, "testpmd", "mpps_in"));
            let ratio = match (r_in, t_in) {
                (Some(a), Some(b)) if b.median > 0.0 => Some(a.median / b.median),
                _ => None,
            };
            // Per-run ratios against the testpmd run of the same round.
            let pairs: Vec<f64> = runs
                .iter()
                .filter(|r| r["profile"] == p.name && r["system"] == "rampart" && r["ok"] == true)
                .filter_map(|r| {
                    let t = runs.iter().find(|t| {
                        t["profile"] == p.name
                            && t["system"] == "testpmd"
                            && t["run"] == r["run"]
                            && t["ok"] == true
                    })?;
                    Some(
                        r["result"]["mpps_in"].as_f64()? / t["result"]["mpps_in"].as_f64()?,
                    )
                })
                .collect();
            let reconciled: Vec<bool> = runs
                .iter()
                .filter(|r| r["profile"] == p.name && r["system"] == "rampart")
                .map(|r| r["result"]["reconciled"] == true)
                .collect();
            let mut drops: BTreeMap<String, Vec<f64>> = BTreeMap::new();
            for r in runs
                .iter()
                .filter(|r| r["profile"] == p.name && r["system"] == "rampart" && r["ok"] == true)
            {
                for (k, v) in r["result"]["drops_mpps"].as_object().into_iter().flatten() {
                    drops.entry(k.clone()).or_default().push(v.as_f64().unwrap_or(0.0));
                }
            }
            let drops: serde_json::Map<String, Value> = drops
                .into_iter()
                .map(|(k, v)| (k, stat_json(stat(&v))))
                .collect();
            json!({
                "profile": p.name,
                "title": p.title,
                "rules": p.rules,
                "packets_in_capture": p.frames.len(),
                "mean_frame_bytes": p.frames.iter().map(|f| f.len()).sum::<usize>() as f64 / p.frames.len().max(1) as f64,
                "rampart_mpps_in": stat_json(r_in),
                "rampart_mpps_out": stat_json(r_out),
                "testpmd_mpps": stat_json(t_in),
                "ratio_to_testpmd": ratio,
                "ratio_to_testpmd_per_round": stat_json(stat(&pairs)),
                "ratio_to_10_rules": match (r_in, rules10, p.rules) {
                    (Some(a), Some(b), Some(_)) if b.median > 0.0 => Some(a.median / b.median),
                    _ => None,
                },
                "rampart_cycles_per_packet": stat_json(stat(&collect(runs, p.name, "rampart", "cycles_per_packet"))),
                "testpmd_cycles_per_packet": stat_json(stat(&collect(runs, p.name, "testpmd", "cycles_per_packet"))),
                "events_generated_per_s": stat_json(stat(&collect(runs, p.name, "rampart", "events_generated_per_s"))),
                "events_delivered_per_s": stat_json(stat(&collect(runs, p.name, "rampart", "events_delivered_per_s"))),
                "events_consumer_dropped_per_s": stat_json(stat(&collect(runs, p.name, "rampart", "events_consumer_dropped_per_s"))),
                "events_ring_overflow_per_s": stat_json(stat(&collect(runs, p.name, "rampart", "events_ring_overflow_per_s"))),
                "consumer_frames_per_s": stat_json(stat(&collect(runs, p.name, "rampart", "consumer_frames_per_s"))),
                "stage_cycles_per_packet": STAGES
                    .iter()
                    .map(|st| (st.to_string(), stat_json(stat(&collect(runs, p.name, "rampart", &format!("stage_{st}"))))))
                    .collect::<serde_json::Map<_, _>>(),
                "drops_mpps": drops,
                "runs_reconciled": reconciled.iter().filter(|&&b| b).count(),
                "runs": reconciled.len(),
            })
        })
        .collect()
}

fn from_json(v: &Value) -> Option<Stat> {
    Some(Stat {
        median: v["median"].as_f64()?,
        min: v["min"].as_f64()?,
        max: v["max"].as_f64()?,
        n: v["n"].as_u64()? as usize,
    })
}

fn markdown(meta: &Value, summary: &[Value]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Generated by `{}` on {} (commit {}), {} run(s) per scenario, {:.1} s warm-up then a {:.1} s measurement interval per run; figures are medians (min–max).\n",
        meta["command"].as_str().unwrap_or(""),
        meta["date"].as_str().unwrap_or(""),
        meta["commit"].as_str().unwrap_or("?"),
        meta["runs"],
        meta["warmup_s"].as_f64().unwrap_or(0.0),
        meta["interval_s"].as_f64().unwrap_or(0.0),
    );
    let _ = writeln!(
        s,
        "- **Machine**: `nproc` = {}, CPU model `{}`, kernel {}; shared VM, so compare the ratios measured in the same run.",
        meta["nproc"], meta["cpu_model"].as_str().unwrap_or(""), meta["kernel"].as_str().unwrap_or("")
    );
    let _ = writeln!(
        s,
        "- **Topology** `pcap-replay`: {}",
        meta["topology"].as_str().unwrap_or("")
    );
    let _ = writeln!(
        s,
        "- **Mpps in** = Δ worker rx / Δt between two `rampart stats --json` samples (testpmd: Δ RX-packets of port 0 from `show port stats all`); **out** = Δ tx / Δt. **cycles/pkt** = Δ busy TSC cycles / Δ rx of the worker (testpmd: `--record-core-cycles`, over its whole run). **ratio** = Rampart Mpps in / testpmd io Mpps in (medians, same run). Events/s are Δ over the same interval, per the dataplane's counters; the event consumer is a thread of the harness reading the event socket.\n"
    );
    let _ = writeln!(
        s,
        "Profiles (captures generated by `rampart-bench`, seeded):\n"
    );
    for p in summary {
        let _ = writeln!(
            s,
            "- `{}`: {} (mean frame {:.0} B captured)",
            p["profile"].as_str().unwrap_or(""),
            p["title"].as_str().unwrap_or(""),
            p["mean_frame_bytes"].as_f64().unwrap_or(0.0)
        );
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "| profile | Rampart Mpps in | Rampart Mpps out | testpmd io Mpps | ratio | cycles/pkt (Rampart) | cycles/pkt (testpmd) | drops by reason (Mpps) | events generated/s | delivered/s | consumer-dropped/s | ring overflow/s | accounting |"
    );
    let _ = writeln!(
        s,
        "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---|"
    );
    for p in summary {
        let drops: Vec<String> = p["drops_mpps"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some(format!("{k} {:.2}", v["median"].as_f64()?)))
            .collect();
        let ev = |k: &str| {
            from_json(&p[k])
                .map(|s| fmt_rate(s.median))
                .unwrap_or_else(|| "–".into())
        };
        let _ =
            writeln!(
            s,
            "| `{}` | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {}/{} reconciled |",
            p["profile"].as_str().unwrap_or(""),
            fmt_stat(from_json(&p["rampart_mpps_in"]), 2),
            fmt_stat(from_json(&p["rampart_mpps_out"]), 2),
            fmt_stat(from_json(&p["testpmd_mpps"]), 2),
            p["ratio_to_testpmd"]
                .as_f64()
                .map(|r| format!("{r:.2}"))
                .unwrap_or_else(|| "–".into()),
            fmt_stat(from_json(&p["rampart_cycles_per_packet"]), 0),
            fmt_stat(from_json(&p["testpmd_cycles_per_packet"]), 0),
            if drops.is_empty() { "–".into() } else { drops.join(", ") },
            ev("events_generated_per_s"),
            ev("events_delivered_per_s"),
            ev("events_consumer_dropped_per_s"),
            ev("events_ring_overflow_per_s"),
            p["runs_reconciled"],
            p["runs"],
        );
    }
    let _ = writeln!(
        s,
        "\nWhere Rampart's cycles go (cycles per packet by stage, medians; `rx` and `tx` timed per burst, the other stages on one packet in 64, each sample including ~30 cycles of reading the TSC; from `rampart stats --json` `stage_cycles`):\n"
    );
    let _ = writeln!(s, "| profile | {} | total busy |", STAGES.join(" | "));
    let _ = writeln!(s, "|---|{}---:|", "---:|".repeat(STAGES.len()));
    for p in summary {
        let cells: Vec<String> = STAGES
            .iter()
            .map(|st| {
                from_json(&p["stage_cycles_per_packet"][*st])
                    .map(|v| format!("{:.0}", v.median))
                    .unwrap_or_else(|| "–".into())
            })
            .collect();
        let _ = writeln!(
            s,
            "| `{}` | {} | {} |",
            p["profile"].as_str().unwrap_or(""),
            cells.join(" | "),
            from_json(&p["rampart_cycles_per_packet"])
                .map(|v| format!("{:.0}", v.median))
                .unwrap_or_else(|| "–".into())
        );
    }
    let scaling: Vec<&Value> = summary.iter().filter(|p| p["rules"].is_u64()).collect();
    if !scaling.is_empty() {
        let _ = writeln!(
            s,
            "\nRule-count scaling (Rampart Mpps in, ratio to the 10-rule rate of the same run):\n"
        );
        let _ = writeln!(
            s,
            "| policies | Rampart Mpps in | ratio to 10 rules | ratio to testpmd |"
        );
        let _ = writeln!(s, "|---:|---:|---:|---:|");
        for p in scaling {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} |",
                p["rules"],
                fmt_stat(from_json(&p["rampart_mpps_in"]), 2),
                p["ratio_to_10_rules"]
                    .as_f64()
                    .map(|r| format!("{r:.2}"))
                    .unwrap_or_else(|| "–".into()),
                p["ratio_to_testpmd"]
                    .as_f64()
                    .map(|r| format!("{r:.2}"))
                    .unwrap_or_else(|| "–".into()),
            );
        }
    }
    s
}

fn update_markdown(path: &Path, block: &str) -> anyhow::Result<()> {
    const BEGIN: &str = "<!-- bench:begin -->";
    const END: &str = "<!-- bench:end -->";
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let new = match (text.find(BEGIN), text.find(END)) {
        (Some(b), Some(e)) if b < e => format!("{}{BEGIN}\n{block}{}", &text[..b], &text[e..]),
        _ => format!("{text}\n## DPDK dataplane: pcap replay\n\n{BEGIN}\n{block}{END}\n"),
    };
    std::fs::write(path, new)?;
    Ok(())
}

// ---------------------------------------------------------------------------

fn main() -> ExitCode {
    match real_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("rampart-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn real_main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    // Before pinning (available_parallelism honours the affinity mask).
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    // The harness (and, inherited, the control side of every process it
    // starts) stays on the control CPU; only the worker lcores leave it.
    pin_current_thread(args.control_cpu);
    let runs = args.runs.unwrap_or(if args.quick { 1 } else { 3 }).max(1);
    let timing = Timing {
        warmup: args.warmup.unwrap_or(if args.quick { 0.5 } else { 1.0 }),
        interval: args.interval.unwrap_or(if args.quick { 1.0 } else { 2.0 }),
    };
    let out_dir = args.out.clone().unwrap_or_else(|| {
        if args.quick {
            std::env::temp_dir().join("rampart-bench-quick")
        } else {
            PathBuf::from("bench-results")
        }
    });
    std::fs::create_dir_all(&out_dir)?;
    let rampart = match &args.rampart {
        Some(p) => p.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("no directory of the current executable")?
            .join("rampart"),
    };
    if !rampart.exists() {
        bail!(
            "{} not found (build it: cargo build --release --bin rampart)",
            rampart.display()
        );
    }
    let testpmd = !args.no_testpmd && args.testpmd.exists();
    if !args.no_testpmd && !testpmd {
        eprintln!(
            "rampart-bench: {} not found (Debian dpdk-dev); no testpmd baseline",
            args.testpmd.display()
        );
    }

    let mut profiles = all_profiles(args.packets);
    let wanted: Option<Vec<String>> = args
        .profiles
        .as_ref()
        .map(|l| l.split(',').map(|s| s.trim().to_string()).collect())
        .or_else(|| {
            args.quick.then(|| {
                ["est-64", "deny-storm", "rules-100"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect()
            })
        });
    if let Some(w) = &wanted {
        profiles.retain(|p| w.iter().any(|n| n == p.name));
        if profiles.is_empty() {
            bail!("no profile matches --profiles");
        }
    }
    let work = tempfile::Builder::new()
        .prefix("rampart-bench-")
        .tempdir()?;
    let mut pcaps = Vec::new();
    for p in &profiles {
        let path = work.path().join(format!("{}.pcap", p.name));
        write_pcap(&path, &p.frames)?;
        pcaps.push(path);
    }

    let systems: Vec<&str> = if testpmd {
        vec!["rampart", "testpmd"]
    } else {
        vec!["rampart"]
    };
    let total = runs * profiles.len() * systems.len();
    let mut step = 0;
    let mut all_runs: Vec<Value> = Vec::new();
    let t_start = Instant::now();
    let pid = std::process::id();
    for run in 1..=runs {
        for (p, pcap) in profiles.iter().zip(&pcaps) {
            for &system in &systems {
                step += 1;
                eprint!(
                    "[{step}/{total}] {} run {run}/{runs}: {system} ... ",
                    p.name
                );
                let _ = std::io::stderr().flush();
                let tag = format!("rampart-bench-{pid}-{step}");
                let t0 = Instant::now();
                let res = if system == "rampart" {
                    run_rampart(&args, &rampart, p, pcap, &timing, &tag)
                } else {
                    run_testpmd(&args, pcap, &timing, &tag)
                };
                let secs = t0.elapsed().as_secs_f64();
                let entry = match res {
                    Ok(r) => {
                        let mut line = format!(
                            "{:.3} Mpps in, {:.3} out",
                            r["mpps_in"].as_f64().unwrap_or(0.0),
                            r["mpps_out"].as_f64().unwrap_or(0.0)
                        );
                        if let Some(c) = r["cycles_per_packet"].as_f64() {
                            let _ = write!(line, ", {c:.0} cycles/pkt");
                        }
                        if system == "rampart" {
                            let _ = write!(
                                line,
                                ", events {}/s generated {}/s delivered, {}",
                                fmt_rate(r["events_generated_per_s"].as_f64().unwrap_or(0.0)),
                                fmt_rate(r["events_delivered_per_s"].as_f64().unwrap_or(0.0)),
                                if r["reconciled"] == true {
                                    "reconciled".to_string()
                                } else {
                                    format!("NOT RECONCILED: {}", r["accounting_problems"])
                                }
                            );
                        }
                        eprintln!("{line} ({secs:.1} s)");
                        json!({"profile": p.name, "system": system, "run": run, "ok": true, "result": r})
                    }
                    Err(e) => {
                        eprintln!("FAILED ({secs:.1} s): {e:#}");
                        json!({"profile": p.name, "system": system, "run": run, "ok": false, "error": format!("{e:#}")})
                    }
                };
                all_runs.push(entry);
            }
        }
    }

    let summary = summarize(&profiles, &all_runs);
    let rampart_failures: Vec<String> = all_runs
        .iter()
        .filter(|r| {
            r["system"] == "rampart" && (r["ok"] != true || r["result"]["reconciled"] != true)
        })
        .map(|r| format!("{} run {}", r["profile"].as_str().unwrap_or(""), r["run"]))
        .collect();
    let testpmd_failures = all_runs
        .iter()
        .filter(|r| r["system"] == "testpmd" && r["ok"] != true)
        .count();
    let command = args
        .command
        .clone()
        .unwrap_or_else(|| std::env::args().collect::<Vec<_>>().join(" "));
    let topology = format!(
        "interface A (`ge-0/0/0`, zone untrust) = `net_pcap0,rx_pcap=PROFILE.pcap,infinite_rx=1` (its TX drops), interface B (`ge-0/0/1`, zone trust) = `net_null0,no-rx=1` (TX sink), A peered with B; 1 worker lcore on CPU {w}, the control lcore, the harness and its event-consumer thread on CPU {c} (`--lcores 0@{c},1@{w}`); EAL `{mem}`; testpmd baseline: `dpdk-testpmd` on the same two vdevs and CPUs, `--forward-mode=io --nb-cores=1 --rxd=1024 --txd=1024 --burst=32 --total-num-mbufs=16383`. Captures: {n} frames per profile, deterministic (seeded), replayed in a loop; frame sizes are without the 4-byte FCS (\"64 B\" = 60 bytes captured); `[flow] tcp-syn-check = false` so replayed mid-stream traffic creates sessions on the first pass and hits them afterwards.",
        w = args.worker_cpu,
        c = args.control_cpu,
        mem = MEMORY.join(" "),
        n = args.packets,
    );
    let meta = json!({
        "command": command,
        "date": sh("date", &["-u", "+%Y-%m-%d %H:%M UTC"]).unwrap_or_default(),
        "commit": sh("git", &["rev-parse", "--short", "HEAD"]),
        "nproc": nproc,
        "cpu_model": cpu_model(),
        "kernel": sh("uname", &["-r"]),
        "dpdk": sh("pkg-config", &["--modversion", "libdpdk"]),
        "topology": topology,
        "topology_name": "pcap-replay",
        "quick": args.quick,
        "runs": runs,
        "warmup_s": timing.warmup,
        "interval_s": timing.interval,
        "packets_per_capture": args.packets,
        "control_cpu": args.control_cpu,
        "worker_cpu": args.worker_cpu,
        "wall_time_s": t_start.elapsed().as_secs_f64(),
        "all_reconciled": rampart_failures.is_empty(),
    });
    let results = json!({
        "meta": meta,
        "summary": summary,
        "runs": all_runs,
    });
    let results_path = out_dir.join("results.json");
    std::fs::write(&results_path, serde_json::to_string_pretty(&results)?)?;
    eprintln!("rampart-bench: wrote {}", results_path.display());

    let md = markdown(&meta, &summary);
    std::fs::write(out_dir.join("table.md"), &md)?;
    let md_path = if args.no_markdown {
        None
    } else {
        args.markdown
            .clone()
            .or_else(|| (!args.quick).then(|| PathBuf::from("BENCHMARKS.md")))
    };
    if let Some(path) = md_path {
        update_markdown(&path, &md)?;
        eprintln!("rampart-bench: updated {}", path.display());
    }
    print!("{md}");
    if testpmd_failures > 0 {
        eprintln!(
            "rampart-bench: {testpmd_failures} testpmd baseline run(s) failed (see results.json)"
        );
    }
    if !rampart_failures.is_empty() {
        eprintln!(
            "rampart-bench: FAILED: runs that failed or did not reconcile: {}",
            rampart_failures.join(", ")
        );
        return Ok(ExitCode::FAILURE);
    }
    eprintln!(
        "rampart-bench: all {} Rampart run(s) reconciled ({:.0} s)",
        all_runs.iter().filter(|r| r["system"] == "rampart").count(),
        t_start.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}
