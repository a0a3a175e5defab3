//! `rampart-bench`: the DPDK benchmark harness (issue #5).
//!
//! Generates deterministic, seeded traffic profiles into pcap files, then
//! for every topology, profile and repetition runs Rampart and the
//! baselines side by side (interleaved round by round, so that a noisy
//! neighbour hits all of them alike):
//!
//! * `pcap-replay`: Rampart, and `dpdk-testpmd` `io` in its place, each
//!   reading the capture itself (`net_pcap` `infinite_rx`) and sending to
//!   `net_null`: the pipeline's capacity with no generator on the machine.
//! * `vhost`: a `dpdk-testpmd` generator replays the capture through
//!   `virtio_user` <-> vhost-user into the system under test and counts
//!   what comes back: Rampart (`net_vhost`), testpmd `io` (the ceiling) and
//!   Open vSwitch-DPDK with the profile's policy as OpenFlow rules.
//!
//! Rates come from two counter samples over a steady-state interval. After
//! each Rampart run the final counters (`--stats-out`) must reconcile: per
//! event type `generated == rate_limited + ring_overflow + drained`, and for
//! the consumer `drained == delivered + dropped`. Any run that does not
//! makes the harness exit non-zero.
//!
//! Writes `results.json` (every run), `table.md`, and (unless `--quick`)
//! the tables between `<!-- bench:begin -->` and `<!-- bench:end -->` in
//! BENCHMARKS.md.

#![forbid(unsafe_code)]

mod ovs;
mod profiles;
mod rampart;
mod report;
mod scenarios;
mod sync_peer;
mod testpmd;
mod util;

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Parser;
use serde_json::{json, Value};

use profiles::{all_profiles, write_pcap, Profile};
use rampart::Cpus;
use report::fmt_rate;
use scenarios::{Env, Timing, VhostSystem};
use util::{cpu_model, pin_current_thread, sh};

#[derive(Parser, Debug)]
#[command(
    name = "rampart-bench",
    about = "DPDK benchmark harness: Rampart vs testpmd io (and Open vSwitch-DPDK) on pcap replay and vhost-user"
)]
struct Args {
    /// Smoke run for CI: 1 run, ~1 s measurement, 4 profiles on pcap-replay
    /// and 1 on vhost, no BENCHMARKS.md update; fails if any run fails
    /// (baselines too) or the accounting does not reconcile.
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
    /// Skip the Open vSwitch-DPDK baseline (vhost topology).
    #[arg(long)]
    no_ovs: bool,
    /// Topologies to run, comma-separated: pcap-replay, vhost (default both).
    #[arg(long)]
    topologies: Option<String>,
    /// Only these profiles on the vhost topology (default: the same as
    /// on pcap-replay; with --quick, est-64).
    #[arg(long)]
    vhost_profiles: Option<String>,
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
    /// Through every measured interval on pcap-replay, list all sessions
    /// over the control socket again and again (`rampart sessions`'s
    /// request), to measure what a listing costs the forwarding.
    #[arg(long)]
    while_listing_sessions: bool,
    /// On pcap-replay: run Rampart as the active node of a high-availability
    /// pair, syncing every session change to a standby peer the harness
    /// runs on the control CPU (the sync protocol of `rampart-cluster`),
    /// to measure what syncing costs the active.
    #[arg(long)]
    with_sync_peer: bool,
    /// The command line recorded in BENCHMARKS.md.
    #[arg(long)]
    command: Option<String>,
    /// Write the selected profiles into this directory and exit, for a
    /// generator of your own (a hardware tester on a real NIC): per
    /// profile its capture (PROFILE.pcap), its Rampart policy
    /// (PROFILE.policy.toml: zones, screens, address book, policies, to
    /// add to a config's interfaces) and its OpenFlow rules
    /// (PROFILE.openflow, ports a and b).
    #[arg(long, value_name = "DIR")]
    export: Option<PathBuf>,
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

/// The two topologies, by the names used in results.json and the report.
pub const REPLAY: &str = "pcap-replay";
pub const VHOST: &str = "vhost";

/// The Open vSwitch-DPDK daemon (Debian `openvswitch-switch-dpdk`).
const OVS_VSWITCHD: &str = "/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk";

fn names(list: &str) -> Vec<String> {
    list.split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// One scenario to run: (topology, system) on a profile.
struct Scenario<'a> {
    topology: &'static str,
    system: &'static str,
    profile: &'a Profile,
    pcap: &'a Path,
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
    let testpmd = args.testpmd.exists();
    if !testpmd {
        eprintln!(
            "rampart-bench: {} not found (Debian dpdk-dev): no testpmd baseline and no vhost topology",
            args.testpmd.display()
        );
    }
    let topologies = args
        .topologies
        .as_deref()
        .map(names)
        .unwrap_or_else(|| vec![REPLAY.into(), VHOST.into()]);
    for t in &topologies {
        if t != REPLAY && t != VHOST {
            bail!("unknown topology {t:?} (pcap-replay, vhost)");
        }
    }
    let ovs = !args.no_ovs && Path::new(OVS_VSWITCHD).exists();
    if !args.no_ovs && !ovs {
        eprintln!("rampart-bench: {OVS_VSWITCHD} not found (Debian openvswitch-switch-dpdk): no Open vSwitch baseline");
    }

    let mut profiles = all_profiles(args.packets);
    let quick_replay = ["est-64", "deny-storm", "deny-storm-agg", "rules-100"];
    let replay_wanted: Option<Vec<String>> = args.profiles.as_deref().map(names).or_else(|| {
        args.quick
            .then(|| quick_replay.iter().map(|s| s.to_string()).collect())
    });
    let vhost_wanted: Option<Vec<String>> = args
        .vhost_profiles
        .as_deref()
        .map(names)
        .or_else(|| replay_wanted.clone().filter(|_| !args.quick))
        .or_else(|| args.quick.then(|| vec!["est-64".to_string()]));
    let wanted = |w: &Option<Vec<String>>, p: &Profile| {
        w.as_ref().is_none_or(|w| w.iter().any(|n| n == p.name))
    };
    profiles.retain(|p| wanted(&replay_wanted, p) || wanted(&vhost_wanted, p));
    if profiles.is_empty() {
        bail!("no profile matches --profiles / --vhost-profiles");
    }
    if let Some(dir) = &args.export {
        std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
        for p in &profiles {
            let file = |ext: &str| dir.join(format!("{}.{ext}", p.name));
            write_pcap(&file("pcap"), &p.frames)?;
            std::fs::write(
                file("policy.toml"),
                format!(
                    "# rampart-bench profile {}: {}\n# The harness runs it with [flow] tcp-syn-check = false: the capture\n# replays flows from mid-stream.\n{}",
                    p.name, p.title, p.body
                ),
            )?;
            std::fs::write(file("openflow"), &p.openflow)?;
        }
        eprintln!(
            "rampart-bench: wrote {} profile(s) to {}",
            profiles.len(),
            dir.display()
        );
        return Ok(ExitCode::SUCCESS);
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

    // Each round runs every scenario once, each profile's systems back to
    // back, so that every ratio compares runs minutes apart at most.
    let mut round: Vec<Scenario> = Vec::new();
    for topology in [REPLAY, VHOST] {
        if !topologies.iter().any(|t| t == topology) {
            continue;
        }
        let (w, systems): (_, Vec<&'static str>) = if topology == REPLAY {
            (
                &replay_wanted,
                if testpmd && !args.no_testpmd {
                    vec!["rampart", "testpmd"]
                } else {
                    vec!["rampart"]
                },
            )
        } else {
            if !testpmd {
                continue;
            }
            let mut s = vec![VhostSystem::Rampart.name()];
            if !args.no_testpmd {
                s.push(VhostSystem::Testpmd.name());
            }
            if ovs {
                s.push(VhostSystem::Ovs.name());
                if !args.quick {
                    s.push(VhostSystem::OvsConntrack.name());
                }
            }
            (&vhost_wanted, s)
        };
        for (p, pcap) in profiles.iter().zip(&pcaps) {
            if !wanted(w, p) {
                continue;
            }
            for &system in &systems {
                round.push(Scenario {
                    topology,
                    system,
                    profile: p,
                    pcap,
                });
            }
        }
    }
    let env = Env {
        rampart: &rampart,
        testpmd: &args.testpmd,
        cpus: Cpus {
            control: args.control_cpu,
            worker: args.worker_cpu,
        },
        timing: &timing,
        listing: args.while_listing_sessions,
        sync_peer: args.with_sync_peer,
    };
    let total = runs * round.len();
    let mut step = 0;
    let mut all_runs: Vec<Value> = Vec::new();
    let t_start = Instant::now();
    let pid = std::process::id();
    for run in 1..=runs {
        for sc in &round {
            step += 1;
            let p = sc.profile;
            let elapsed = t_start.elapsed().as_secs_f64();
            let eta = if step > 1 {
                format!(
                    ", ~{:.0} s left",
                    elapsed / (step - 1) as f64 * (total - step + 1) as f64
                )
            } else {
                String::new()
            };
            eprint!(
                "[{step}/{total}{eta}] {} {} run {run}/{runs}: {} ... ",
                sc.topology, p.name, sc.system
            );
            let _ = std::io::stderr().flush();
            let tag = format!("rampart-bench-{pid}-{step}");
            let t0 = Instant::now();
            let res = match (sc.topology, sc.system) {
                (REPLAY, "rampart") => scenarios::replay_rampart(&env, p, sc.pcap, &tag),
                (REPLAY, _) => scenarios::replay_testpmd(&env, sc.pcap, &tag),
                (_, "rampart") => scenarios::vhost(&env, VhostSystem::Rampart, p, sc.pcap, &tag),
                (_, "testpmd") => scenarios::vhost(&env, VhostSystem::Testpmd, p, sc.pcap, &tag),
                (_, "ovs-ct") => {
                    scenarios::vhost(&env, VhostSystem::OvsConntrack, p, sc.pcap, &tag)
                }
                _ => scenarios::vhost(&env, VhostSystem::Ovs, p, sc.pcap, &tag),
            };
            let secs = t0.elapsed().as_secs_f64();
            let entry = match res {
                Ok(r) => {
                    eprintln!("{} ({secs:.1} s)", progress_line(sc.system, &r));
                    json!({"topology": sc.topology, "profile": p.name, "system": sc.system, "run": run, "ok": true, "result": r})
                }
                Err(e) => {
                    eprintln!("FAILED ({secs:.1} s): {e:#}");
                    json!({"topology": sc.topology, "profile": p.name, "system": sc.system, "run": run, "ok": false, "error": format!("{e:#}")})
                }
            };
            all_runs.push(entry);
        }
    }

    let summary = report::summarize(&profiles, &all_runs);
    let rampart_failures: Vec<String> = all_runs
        .iter()
        .filter(|r| {
            r["system"] == "rampart" && (r["ok"] != true || r["result"]["reconciled"] != true)
        })
        .map(|r| {
            format!(
                "{} {} run {}",
                r["topology"].as_str().unwrap_or(""),
                r["profile"].as_str().unwrap_or(""),
                r["run"]
            )
        })
        .collect();
    let baseline_failures = all_runs
        .iter()
        .filter(|r| r["system"] != "rampart" && r["ok"] != true)
        .count();
    let command = args
        .command
        .clone()
        .unwrap_or_else(|| std::env::args().collect::<Vec<_>>().join(" "));
    let meta = json!({
        "command": command,
        "date": sh("date", &["-u", "+%Y-%m-%d %H:%M UTC"]).unwrap_or_default(),
        "commit": sh("git", &["rev-parse", "--short", "HEAD"]),
        "nproc": nproc,
        "cpu_model": cpu_model(),
        "kernel": sh("uname", &["-r"]),
        "dpdk": sh("pkg-config", &["--modversion", "libdpdk"]),
        "ovs": if ovs { sh("ovs-vsctl", &["--version"]).and_then(|v| v.lines().next().map(str::to_string)) } else { None },
        "topologies": report::topology_descriptions(&topologies, args.control_cpu, args.worker_cpu, args.packets),
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

    let md = report::markdown(&meta, &summary);
    std::fs::write(out_dir.join("table.md"), &md)?;
    let md_path = if args.no_markdown {
        None
    } else {
        args.markdown
            .clone()
            .or_else(|| (!args.quick).then(|| PathBuf::from("BENCHMARKS.md")))
    };
    if let Some(path) = md_path {
        report::update_markdown(&path, &md)?;
        eprintln!("rampart-bench: updated {}", path.display());
    }
    print!("{md}");
    if baseline_failures > 0 {
        eprintln!("rampart-bench: {baseline_failures} baseline run(s) failed (see results.json)");
        // The smoke run checks that every part of the harness works.
        if args.quick {
            return Ok(ExitCode::FAILURE);
        }
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

/// One line of progress per run.
fn progress_line(system: &str, r: &Value) -> String {
    let mut line = format!(
        "{:.3} Mpps in, {:.3} out",
        r["mpps_in"].as_f64().unwrap_or(0.0),
        r["mpps_out"].as_f64().unwrap_or(0.0)
    );
    if let Some(o) = r["mpps_offered"].as_f64() {
        let _ = write!(line, " (offered {o:.3})");
    }
    if let Some(c) = r["cycles_per_packet"].as_f64() {
        let _ = write!(line, ", {c:.0} cycles/pkt");
    }
    if let Some(l) = r["worker_load"].as_f64() {
        let _ = write!(line, ", load {:.0}%", l * 100.0);
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
    line
}
