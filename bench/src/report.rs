//! The report: medians per topology, profile and system, ratios to the
//! testpmd baseline of the same run, and the Markdown tables.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde_json::{json, Value};

use crate::profiles::Profile;
use crate::rampart::STAGES;
use crate::util::{stat, stat_json, Stat};
use crate::util::{REPLAY_MEMORY, VHOST_MEMORY};
use crate::{REPLAY, VHOST};

pub fn fmt_stat(s: Option<Stat>, digits: usize) -> String {
    match s {
        Some(s) if s.n > 1 => format!("{:.d$} ({:.d$}–{:.d$})", s.median, s.min, s.max, d = digits),
        Some(s) => format!("{:.d$}", s.median, d = digits),
        None => "–".into(),
    }
}

pub fn fmt_rate(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2} M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1} k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

/// The successful runs of one scenario.
fn ok_runs<'a>(
    runs: &'a [Value],
    topology: &'a str,
    profile: &'a str,
    system: &'a str,
) -> impl Iterator<Item = &'a Value> + 'a {
    runs.iter().filter(move |r| {
        r["topology"] == topology
            && r["profile"] == profile
            && r["system"] == system
            && r["ok"] == true
    })
}

fn collect(runs: &[Value], topology: &str, profile: &str, system: &str, key: &str) -> Vec<f64> {
    ok_runs(runs, topology, profile, system)
        .filter_map(|r| r["result"][key].as_f64())
        .collect()
}

fn ratio(a: Option<Stat>, b: Option<Stat>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b.median > 0.0 => Some(a.median / b.median),
        _ => None,
    }
}

/// Per-round ratios of `system`'s Mpps in to testpmd's (same round).
fn per_round_ratios(runs: &[Value], topology: &str, profile: &str, system: &str) -> Vec<f64> {
    ok_runs(runs, topology, profile, system)
        .filter_map(|r| {
            let t = ok_runs(runs, topology, profile, "testpmd").find(|t| t["run"] == r["run"])?;
            Some(r["result"]["mpps_in"].as_f64()? / t["result"]["mpps_in"].as_f64()?)
        })
        .collect()
}

/// One summary entry per topology and profile that ran.
pub fn summarize(profiles: &[Profile], runs: &[Value]) -> Vec<Value> {
    let mut out = Vec::new();
    for topology in [REPLAY, VHOST] {
        let rules10 = stat(&collect(runs, topology, "rules-10", "rampart", "mpps_in"));
        for p in profiles {
            let any = runs
                .iter()
                .any(|r| r["topology"] == topology && r["profile"] == p.name);
            if !any {
                continue;
            }
            let st = |system: &str, key: &str| stat(&collect(runs, topology, p.name, system, key));
            let sj = |system: &str, key: &str| stat_json(st(system, key));
            let r_in = st("rampart", "mpps_in");
            let t_in = st("testpmd", "mpps_in");
            let o_in = st("ovs", "mpps_in");
            let c_in = st("ovs-ct", "mpps_in");
            let reconciled: Vec<bool> = runs
                .iter()
                .filter(|r| {
                    r["topology"] == topology && r["profile"] == p.name && r["system"] == "rampart"
                })
                .map(|r| r["result"]["reconciled"] == true)
                .collect();
            let mut drops: BTreeMap<String, Vec<f64>> = BTreeMap::new();
            for r in ok_runs(runs, topology, p.name, "rampart") {
                for (k, v) in r["result"]["drops_mpps"].as_object().into_iter().flatten() {
                    drops
                        .entry(k.clone())
                        .or_default()
                        .push(v.as_f64().unwrap_or(0.0));
                }
            }
            let drops: serde_json::Map<String, Value> = drops
                .into_iter()
                .map(|(k, v)| (k, stat_json(stat(&v))))
                .collect();
            out.push(json!({
                "topology": topology,
                "profile": p.name,
                "title": p.title,
                "rules": p.rules,
                "packets_in_capture": p.frames.len(),
                "mean_frame_bytes": p.frames.iter().map(|f| f.len()).sum::<usize>() as f64 / p.frames.len().max(1) as f64,
                "rampart_mpps_in": stat_json(r_in),
                "rampart_mpps_out": sj("rampart", "mpps_out"),
                "rampart_offered_mpps": sj("rampart", "mpps_offered"),
                "rampart_worker_load": sj("rampart", "worker_load"),
                "testpmd_mpps": stat_json(t_in),
                "testpmd_mpps_out": sj("testpmd", "mpps_out"),
                "testpmd_offered_mpps": sj("testpmd", "mpps_offered"),
                "ovs_mpps_in": stat_json(o_in),
                "ovs_mpps_out": sj("ovs", "mpps_out"),
                "ovs_worker_load": sj("ovs", "worker_load"),
                "ratio_to_testpmd": ratio(r_in, t_in),
                "ratio_to_testpmd_per_round": stat_json(stat(&per_round_ratios(runs, topology, p.name, "rampart"))),
                "ovs_ratio_to_testpmd": ratio(o_in, t_in),
                "rampart_ratio_to_ovs": ratio(r_in, o_in),
                "ovsct_mpps_in": stat_json(c_in),
                "ovsct_mpps_out": sj("ovs-ct", "mpps_out"),
                "ovsct_worker_load": sj("ovs-ct", "worker_load"),
                "ovsct_cycles_per_packet": sj("ovs-ct", "cycles_per_packet"),
                "rampart_ratio_to_ovsct": ratio(r_in, c_in),
                "ovsct_ratio_to_ovs": ratio(c_in, o_in),
                "ratio_to_10_rules": if p.rules.is_some() { ratio(r_in, rules10) } else { None },
                "rampart_cycles_per_packet": sj("rampart", "cycles_per_packet"),
                "testpmd_cycles_per_packet": sj("testpmd", "cycles_per_packet"),
                "ovs_cycles_per_packet": sj("ovs", "cycles_per_packet"),
                "events_generated_per_s": sj("rampart", "events_generated_per_s"),
                "events_delivered_per_s": sj("rampart", "events_delivered_per_s"),
                "events_consumer_dropped_per_s": sj("rampart", "events_consumer_dropped_per_s"),
                "events_ring_overflow_per_s": sj("rampart", "events_ring_overflow_per_s"),
                "consumer_frames_per_s": sj("rampart", "consumer_frames_per_s"),
                "stage_cycles_per_packet": STAGES
                    .iter()
                    .map(|stage| (stage.to_string(), sj("rampart", &format!("stage_{stage}"))))
                    .collect::<serde_json::Map<_, _>>(),
                "drops_mpps": drops,
                "runs_reconciled": reconciled.iter().filter(|&&b| b).count(),
                "runs": reconciled.len(),
            }));
        }
    }
    out
}

/// What each topology is, for results.json and the report.
pub fn topology_descriptions(topologies: &[String], c: u32, w: u32, packets: usize) -> Value {
    let captures = format!("Captures: {packets} frames per profile, deterministic (seeded), replayed in a loop; frame sizes are without the 4-byte FCS (\"64 B\" = 60 bytes captured); `[flow] tcp-syn-check = false` so replayed mid-stream traffic creates sessions on the first pass and hits them afterwards.");
    let mut m = serde_json::Map::new();
    if topologies.iter().any(|t| t == REPLAY) {
        m.insert(REPLAY.into(), json!(format!(
            "interface A (`ge-0/0/0`, zone untrust) = `net_pcap0,rx_pcap=PROFILE.pcap,infinite_rx=1` (its TX drops), interface B (`ge-0/0/1`, zone trust) = `net_null0,no-rx=1` (TX sink), A peered with B; 1 worker lcore on CPU {w}, the control lcore, the harness and its event-consumer thread on CPU {c} (`--lcores 0@{c},1@{w}`); EAL `{mem}`; testpmd baseline: `dpdk-testpmd` on the same two vdevs and CPUs, `--forward-mode=io --nb-cores=1 --rxd=1024 --txd=1024 --burst=32 --total-num-mbufs=16383`. No generator: each system reads the capture itself, so this is the pipeline's capacity. {captures}",
            mem = REPLAY_MEMORY.join(" "),
        )));
    }
    if topologies.iter().any(|t| t == VHOST) {
        m.insert(VHOST.into(), json!(format!(
            "generator `dpdk-testpmd` (io, paired ports, one forwarding lcore on CPU {c}) reads the capture (`net_pcap` `infinite_rx`) and sends it into `net_virtio_user0` <-> vhost-user <-> the system's interface A (untrust); the system forwards out of interface B (trust) <-> vhost-user <-> `net_virtio_user1`, where the generator counts it (and frees it to `net_null`). Systems: Rampart (`net_vhost0`/`net_vhost1`, 1 worker lcore on CPU {w}, control lcore and event consumer on CPU {c}); testpmd `io` (`net_vhost0`/`net_vhost1`, forwarding lcore on CPU {w}) as the ceiling; Open vSwitch-DPDK (userspace datapath, `dpdkvhostuser` ports, one PMD thread on CPU {w}) with the profile's policy as stateless OpenFlow rules, and (outside `--quick`) the same OVS with that policy behind connection tracking as a stateful peer (OVS+ct). Every DPDK process: EAL `{mem}`, queues of 1024 descriptors, bursts of 32. **Mpps in** = what the generator got into the system (TX-packets of `virtio_user0`; a full ring refuses the rest), **out** = what came back (RX-packets of `virtio_user1`), **offered** = what the generator read from the capture; the generator shares CPU {c} with the control-plane side of the system. {captures}",
            mem = VHOST_MEMORY.join(" "),
        )));
    }
    Value::Object(m)
}

fn cell(v: &Value, digits: usize) -> String {
    fmt_stat(from_json(v), digits)
}

fn ratio_cell(v: &Value) -> String {
    v.as_f64()
        .map(|r| format!("{r:.2}"))
        .unwrap_or_else(|| "–".into())
}

fn percent_cell(v: &Value) -> String {
    from_json(v)
        .map(|s| format!("{:.0}%", s.median * 100.0))
        .unwrap_or_else(|| "–".into())
}

fn drops_cell(p: &Value) -> String {
    let drops: Vec<String> = p["drops_mpps"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some(format!("{k} {:.2}", v["median"].as_f64()?)))
        .collect();
    if drops.is_empty() {
        "–".into()
    } else {
        drops.join(", ")
    }
}

fn events_cell(p: &Value, k: &str) -> String {
    from_json(&p[k])
        .map(|s| fmt_rate(s.median))
        .unwrap_or_else(|| "–".into())
}

fn replay_table(s: &mut String, rows: &[&Value]) {
    let _ = writeln!(
        s,
        "| profile | Rampart Mpps in | Rampart Mpps out | testpmd io Mpps | ratio | cycles/pkt (Rampart) | cycles/pkt (testpmd) | drops by reason (Mpps) | events generated/s | delivered/s | consumer-dropped/s | ring overflow/s | accounting |"
    );
    let _ = writeln!(
        s,
        "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---|"
    );
    for p in rows {
        let _ = writeln!(
            s,
            "| `{}` | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {}/{} reconciled |",
            p["profile"].as_str().unwrap_or(""),
            cell(&p["rampart_mpps_in"], 2),
            cell(&p["rampart_mpps_out"], 2),
            cell(&p["testpmd_mpps"], 2),
            ratio_cell(&p["ratio_to_testpmd"]),
            cell(&p["rampart_cycles_per_packet"], 0),
            cell(&p["testpmd_cycles_per_packet"], 0),
            drops_cell(p),
            events_cell(p, "events_generated_per_s"),
            events_cell(p, "events_delivered_per_s"),
            events_cell(p, "events_consumer_dropped_per_s"),
            events_cell(p, "events_ring_overflow_per_s"),
            p["runs_reconciled"],
            p["runs"],
        );
    }
}

fn vhost_table(s: &mut String, rows: &[&Value]) {
    let _ = writeln!(
        s,
        "| profile | offered Mpps | Rampart Mpps in | Rampart out | Rampart worker load | testpmd io Mpps in | testpmd out | ratio | OVS Mpps in | OVS out | OVS PMD load | OVS / testpmd | Rampart / OVS | cycles/pkt Rampart | testpmd | OVS | events generated/s | delivered/s | accounting |"
    );
    let _ = writeln!(
        s,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    );
    for p in rows {
        let _ = writeln!(
            s,
            "| `{}` | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {}/{} reconciled |",
            p["profile"].as_str().unwrap_or(""),
            cell(&p["rampart_offered_mpps"], 2),
            cell(&p["rampart_mpps_in"], 2),
            cell(&p["rampart_mpps_out"], 2),
            percent_cell(&p["rampart_worker_load"]),
            cell(&p["testpmd_mpps"], 2),
            cell(&p["testpmd_mpps_out"], 2),
            ratio_cell(&p["ratio_to_testpmd"]),
            cell(&p["ovs_mpps_in"], 2),
            cell(&p["ovs_mpps_out"], 2),
            percent_cell(&p["ovs_worker_load"]),
            ratio_cell(&p["ovs_ratio_to_testpmd"]),
            ratio_cell(&p["rampart_ratio_to_ovs"]),
            cell(&p["rampart_cycles_per_packet"], 0),
            cell(&p["testpmd_cycles_per_packet"], 0),
            cell(&p["ovs_cycles_per_packet"], 0),
            events_cell(p, "events_generated_per_s"),
            events_cell(p, "events_delivered_per_s"),
            p["runs_reconciled"],
            p["runs"],
        );
    }
}

/// Rampart beside the stateful peer (OVS-DPDK with conntrack), when it ran.
fn conntrack_table(s: &mut String, rows: &[&Value]) {
    if rows.iter().all(|p| p["ovsct_mpps_in"].is_null()) {
        return;
    }
    let _ = writeln!(
        s,
        "\nStateful peer: Open vSwitch-DPDK with connection tracking (`ct(commit)` for the new connections the policy permits, tracked connections only on the way back; see `ovs::conntrack_flows`), same generator, CPUs and ports:\n"
    );
    let _ = writeln!(
        s,
        "| profile | Rampart Mpps in | OVS+ct Mpps in | OVS+ct out | OVS+ct PMD load | cycles/pkt OVS+ct | Rampart / OVS+ct | OVS+ct / OVS |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|");
    for p in rows {
        let _ = writeln!(
            s,
            "| `{}` | {} | {} | {} | {} | {} | {} | {} |",
            p["profile"].as_str().unwrap_or(""),
            cell(&p["rampart_mpps_in"], 2),
            cell(&p["ovsct_mpps_in"], 2),
            cell(&p["ovsct_mpps_out"], 2),
            percent_cell(&p["ovsct_worker_load"]),
            cell(&p["ovsct_cycles_per_packet"], 0),
            ratio_cell(&p["rampart_ratio_to_ovsct"]),
            ratio_cell(&p["ovsct_ratio_to_ovs"]),
        );
    }
}

fn stage_table(s: &mut String, rows: &[&Value]) {
    let _ = writeln!(
        s,
        "\nWhere Rampart's cycles go (cycles per packet by stage, medians; every stage timed once per burst over all of its packets (the burst pipeline); the loop's own work between stages (aging, event publishing, staging for TX) is in the total only; from `rampart stats --json` `stage_cycles`):\n"
    );
    let _ = writeln!(s, "| profile | {} | total busy |", STAGES.join(" | "));
    let _ = writeln!(s, "|---|{}---:|", "---:|".repeat(STAGES.len()));
    for p in rows {
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
}

fn scaling_table(s: &mut String, rows: &[&Value], with_ovs: bool) {
    let scaling: Vec<&&Value> = rows.iter().filter(|p| p["rules"].is_u64()).collect();
    if scaling.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "\nRule-count scaling (Rampart Mpps in, ratio to the 10-rule rate of the same run):\n"
    );
    if with_ovs {
        let _ = writeln!(
            s,
            "| policies | Rampart Mpps in | ratio to 10 rules | ratio to testpmd | OVS Mpps in |"
        );
        let _ = writeln!(s, "|---:|---:|---:|---:|---:|");
    } else {
        let _ = writeln!(
            s,
            "| policies | Rampart Mpps in | ratio to 10 rules | ratio to testpmd |"
        );
        let _ = writeln!(s, "|---:|---:|---:|---:|");
    }
    for p in scaling {
        let _ = write!(
            s,
            "| {} | {} | {} | {} |",
            p["rules"],
            cell(&p["rampart_mpps_in"], 2),
            ratio_cell(&p["ratio_to_10_rules"]),
            ratio_cell(&p["ratio_to_testpmd"]),
        );
        if with_ovs {
            let _ = write!(s, " {} |", cell(&p["ovs_mpps_in"], 2));
        }
        let _ = writeln!(s);
    }
}

pub fn markdown(meta: &Value, summary: &[Value]) -> String {
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
        "- **Machine**: `nproc` = {}, CPU model `{}`, kernel {}, DPDK {}{}; shared VM, so compare the ratios measured in the same run.",
        meta["nproc"],
        meta["cpu_model"].as_str().unwrap_or(""),
        meta["kernel"].as_str().unwrap_or(""),
        meta["dpdk"].as_str().unwrap_or("?"),
        meta["ovs"].as_str().map(|v| format!(", {v}")).unwrap_or_default(),
    );
    let _ = writeln!(
        s,
        "- **cycles/pkt** = Δ busy TSC cycles / Δ packets of the worker (Rampart: busy loop iterations / rx; testpmd: `--record-core-cycles`, over its whole run; OVS: PMD processing cycles / packets from `dpif-netdev/pmd-stats-show`). **worker load** = busy cycles / all cycles over the interval: below 100% the system waited for packets. Events/s are Δ over the interval, per the dataplane's counters; the event consumer is a thread of the harness reading the event socket.\n"
    );
    let _ = writeln!(
        s,
        "Profiles (captures generated by `rampart-bench`, seeded):\n"
    );
    let mut seen = std::collections::BTreeSet::new();
    for p in summary {
        let name = p["profile"].as_str().unwrap_or("");
        if seen.insert(name.to_string()) {
            let _ = writeln!(
                s,
                "- `{name}`: {} (mean frame {:.0} B captured)",
                p["title"].as_str().unwrap_or(""),
                p["mean_frame_bytes"].as_f64().unwrap_or(0.0)
            );
        }
    }
    for topology in [REPLAY, VHOST] {
        let rows: Vec<&Value> = summary
            .iter()
            .filter(|p| p["topology"] == topology)
            .collect();
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(
            s,
            "\n### Topology `{topology}`\n\n{}\n",
            meta["topologies"][topology].as_str().unwrap_or("")
        );
        if topology == REPLAY {
            let _ = writeln!(s, "**Mpps in** = Δ worker rx / Δt between two `rampart stats --json` samples (testpmd: Δ RX-packets of port 0 from `show port stats all`); **out** = Δ tx / Δt. **ratio** = Rampart Mpps in / testpmd io Mpps in (medians, same run).\n");
            replay_table(&mut s, &rows);
        } else {
            let _ = writeln!(s, "**ratio** = Rampart Mpps in / testpmd io Mpps in (medians, same run); the OVS ratios likewise.\n");
            vhost_table(&mut s, &rows);
            conntrack_table(&mut s, &rows);
        }
        stage_table(&mut s, &rows);
        let with_ovs = rows.iter().any(|p| p["ovs_mpps_in"].is_object());
        scaling_table(&mut s, &rows, with_ovs);
    }
    s
}

fn from_json(v: &Value) -> Option<Stat> {
    Some(Stat {
        median: v["median"].as_f64()?,
        min: v["min"].as_f64()?,
        max: v["max"].as_f64()?,
        n: v["n"].as_u64()? as usize,
    })
}

pub fn update_markdown(path: &Path, block: &str) -> anyhow::Result<()> {
    const BEGIN: &str = "<!-- bench:begin -->";
    const END: &str = "<!-- bench:end -->";
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let new = match (text.find(BEGIN), text.find(END)) {
        (Some(b), Some(e)) if b < e => format!("{}{BEGIN}\n{block}{}", &text[..b], &text[e..]),
        _ => format!("{text}\n## DPDK dataplane\n\n{BEGIN}\n{block}{END}\n"),
    };
    std::fs::write(path, new)?;
    Ok(())
}
