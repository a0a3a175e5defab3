//! `rampart trace`: the same pipeline, offline, over a capture; one line
//! per packet saying what happened and why. Capture timestamps are the clock.
//! A fragment that came before its first fragment gets a `hold` line when
//! it arrives and a second line, with the same packet number, when it is
//! decided.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};
use rampart_pipeline::config::Config;
use rampart_pipeline::engine::{Decision, Event, EventType, Ruleset, Verdict, Worker};
use rampart_pipeline::frag::{DatagramKey, FragHold, GaveUp};
use rampart_pipeline::pcap;
use rampart_pipeline::screen::ScreenState;
use serde_json::json;

pub fn run(
    config: &Config,
    capture: &Path,
    interface: Option<&str>,
    as_json: bool,
) -> anyhow::Result<()> {
    let ingress = match interface {
        Some(name) => config
            .interface_id(name)
            .with_context(|| format!("--interface {name}: no such interface in the config"))?,
        None if config.interfaces.is_empty() => {
            bail!("the config has no interfaces to enter through")
        }
        None => 0,
    };
    let file =
        std::fs::File::open(capture).with_context(|| format!("opening {}", capture.display()))?;
    let records = pcap::read_all(std::io::BufReader::new(file))
        .with_context(|| format!("reading {}", capture.display()))?;
    let rules = Ruleset::compile(Arc::new(config.clone()), 1);
    let screens = ScreenState::default();
    let mut worker = Worker::new(0, &rules);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut last_sweep_s = u64::MAX;
    // Fragments ahead of their first fragment: the capture index and the
    // decision that held them (reported again when they are decided).
    let mut held: FragHold<(usize, Decision)> = FragHold::new(FragHold::<()>::DEFAULT_CAPACITY);
    let print = |out: &mut dyn Write, i: usize, d: &Decision, events: &[&str]| {
        if as_json {
            writeln!(out, "{}", to_json(&rules, i, d, events))
        } else {
            writeln!(out, "{}", to_text(&rules, i, d, events))
        }
    };
    let give_up = |worker: &mut Worker, out: &mut dyn Write, (i, mut d): (usize, Decision), why| {
        d.verdict = Verdict::Drop;
        d.reason = worker.give_up_held(why);
        print(out, i, &d, &[])
    };
    for (i, rec) in records.iter().enumerate() {
        // Age sessions once per second of capture time (a full sweep), as
        // the dataplane does continuously in small steps.
        let mut aged = Vec::new();
        if rec.ts_ns / 1_000_000_000 != last_sweep_s {
            last_sweep_s = rec.ts_ns / 1_000_000_000;
            worker.expire(&rules, &screens, rec.ts_ns, usize::MAX, &mut |e| {
                aged.push(e)
            });
        }
        while let Some((item, _)) = held.take_expired(rec.ts_ns) {
            give_up(&mut worker, &mut out, item, GaveUp::Timeout)?;
        }
        let d = worker.process(&rules, &screens, &rec.data, ingress as u16, rec.ts_ns);
        let mut events: Vec<&'static str> = aged.iter().map(Event::type_name).collect();
        events.extend(d.event_types().map(EventType::name));
        print(&mut out, i, &d, &events)?;
        if let (Verdict::Hold, Some(pkt)) = (d.verdict, d.packet) {
            if let Some((item, _)) = held.hold((i, d), ingress as u16, &pkt, rec.ts_ns) {
                give_up(&mut worker, &mut out, item, GaveUp::HoldFull)?;
            }
        }
        if let Some(first) = d.packet.filter(|p| p.frag.is_first_fragment) {
            while let Some(((j, _), port)) = held.take_released(DatagramKey::of(&first)) {
                let mut d = Decision::BLANK;
                worker.resume_held(&rules, &screens, &records[j].data, port, rec.ts_ns, &mut d);
                let events: Vec<&str> = d.event_types().map(EventType::name).collect();
                print(&mut out, j, &d, &events)?;
            }
        }
    }
    // The capture ended before their first fragments came.
    while let Some((item, _)) = held.take_any() {
        give_up(&mut worker, &mut out, item, GaveUp::Timeout)?;
    }
    out.flush()?;
    Ok(())
}

fn packet_fields(d: &Decision) -> Option<(String, String, u8, u16, u16)> {
    d.packet.map(|p| {
        (
            p.src.to_string(),
            p.dst.to_string(),
            p.protocol,
            p.src_port,
            p.dst_port,
        )
    })
}

fn to_json(rules: &Ruleset, i: usize, d: &Decision, events: &[&str]) -> serde_json::Value {
    let c = &rules.config;
    let mut v = json!({
        "packet": i,
        "verdict": d.verdict.name(),
        "stage": d.stage.name(),
        "reason": d.reason.name(),
        "rule": rules.policy_name(d.rule),
        "events": events,
        "interface": c.interfaces[d.ingress as usize].name,
        "from_zone": c.zones[d.from_zone as usize].name,
    });
    if let Some(eg) = d.egress {
        v["egress"] = json!(c.interfaces[eg as usize].name);
    }
    if let Some(z) = d.to_zone {
        v["to_zone"] = json!(c.zones[z as usize].name);
    }
    if let Some((src, dst, proto, sp, dp)) = packet_fields(d) {
        v["src_ip"] = json!(src);
        v["dst_ip"] = json!(dst);
        v["protocol"] = json!(proto);
        v["src_port"] = json!(sp);
        v["dst_port"] = json!(dp);
    }
    v
}

fn to_text(rules: &Ruleset, i: usize, d: &Decision, events: &[&str]) -> String {
    let flow = match packet_fields(d) {
        Some((src, dst, proto, sp, dp)) => format!("{src}/{sp} -> {dst}/{dp} proto {proto}"),
        None => "-".into(),
    };
    let rule = rules.policy_name(d.rule);
    format!(
        "{i:>6} {:<7} {:<13} {:<24} rule={} events={} {flow}",
        d.verdict.name(),
        d.stage.name(),
        d.reason.name(),
        if rule.is_empty() { "-" } else { &rule },
        if events.is_empty() {
            "-".to_string()
        } else {
            events.join(",")
        },
    )
}
