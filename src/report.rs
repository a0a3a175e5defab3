//! The human text of the stats JSON (`rampart stats --json`): what
//! `rampart stats` prints and the summary `rampart run` prints at exit,
//! one renderer for both so they cannot disagree. Read from the JSON, not
//! the counters, so the text shows exactly what the JSON says; a field
//! missing (an older dataplane) shows as `-` or is left out, never a panic.

use serde_json::Value;

use rampart_events::EventType;
use rampart_pipeline::engine::DropReason;
use rampart_pipeline::screen::ScreenOption;

use crate::worker::STAGES;

/// A table: left-aligned names, right-aligned numbers, every column as
/// wide as its widest cell, so the columns of all rows line up.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    /// How many leading columns are names (left-aligned).
    left: usize,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
            left: 1,
        }
    }

    fn names(mut self, left: usize) -> Table {
        self.left = left;
        self
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self, out: &mut String) {
        let columns = self.header.len();
        let width: Vec<usize> = (0..columns)
            .map(|c| {
                std::iter::once(&self.header)
                    .chain(&self.rows)
                    .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for r in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (c, w) in width.iter().enumerate() {
                let cell = r.get(c).map_or("", String::as_str);
                if c > 0 {
                    line.push_str("  ");
                }
                if c < self.left {
                    line.push_str(&format!("{cell:<w$}"));
                } else {
                    line.push_str(&format!("{cell:>w$}"));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// A number as it is, anything else (absent) as `-`.
fn n(v: &Value) -> String {
    match v {
        Value::Number(x) => x.to_string(),
        Value::String(s) => s.clone(),
        _ => "-".into(),
    }
}

fn list(v: &Value) -> &[Value] {
    v.as_array().map_or(&[], Vec::as_slice)
}

/// Names of a per-name object (`drops`, `screens`, `stage_cycles`) in
/// the vocabulary's order (a JSON object's keys come sorted), then any
/// the vocabulary lacks (a newer dataplane).
fn keys<'v>(v: &'v Value, vocabulary: &[&'v str]) -> Vec<&'v str> {
    let Some(m) = v.as_object() else {
        return Vec::new();
    };
    let mut out: Vec<&str> = vocabulary
        .iter()
        .copied()
        .filter(|k| m.contains_key(*k))
        .collect();
    out.extend(
        m.keys()
            .map(String::as_str)
            .filter(|k| !vocabulary.contains(k)),
    );
    out
}

/// `name value, name value` of the fields of an object that are numbers.
fn pairs(v: &Value) -> String {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, x)| format!("{} {}", k.replace('_', " "), n(x)))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_else(|| "-".into())
}

/// A per-type object of a consumer (`delivered`, `dropped`) summed.
fn sum(v: &Value) -> u64 {
    v.as_object().map_or(0, |m| m.values().map(u).sum::<u64>())
}

/// The stats JSON as text: ports, workers, drops by reason, screen
/// options that matched, sessions and other counters, events per type,
/// consumers and connections.
pub fn stats_text(v: &Value) -> String {
    let mut out = String::new();
    let uptime = v["uptime_s"].as_f64();
    match uptime {
        Some(s) => out.push_str(&format!(
            "generation {}, up {s:.1} s\n",
            n(&v["generation"])
        )),
        None => out.push_str(&format!("generation {}\n", n(&v["generation"]))),
    }
    let c = &v["cluster"];
    if c.is_object() {
        let sync = &c["sync"];
        out.push_str(&format!(
            "cluster {}: node {} {} (peer {}), failovers {}; sync records sent {}, received {}, lost {}, gaps {}, resent {}\n",
            n(&c["name"]),
            n(&c["node_id"]),
            n(&c["role"]),
            if c["peer"]["heard"] == true { "heard" } else { "not heard" },
            n(&c["failovers"]),
            n(&sync["records_sent"]),
            n(&sync["records_received"]),
            n(&sync["changes_lost"]),
            n(&sync["gaps_detected"]),
            n(&sync["resent"]),
        ));
    }

    out.push_str("\nPorts\n");
    let mut t = Table::new(&[
        "interface",
        "device",
        "rx",
        "tx",
        "rx missed",
        "rx errors",
        "tx errors",
        "rx no mbuf",
    ])
    .names(2);
    for p in list(&v["ports"]) {
        t.row(vec![
            n(&p["name"]),
            n(&p["device"]),
            n(&p["ipackets"]),
            n(&p["opackets"]),
            n(&p["imissed"]),
            n(&p["ierrors"]),
            n(&p["oerrors"]),
            n(&p["rx_nombuf"]),
        ]);
    }
    t.render(&mut out);

    // Load since start: busy cycles over the cycles the uptime held.
    let workers = list(&v["workers"]);
    let cycles = uptime
        .zip(v["tsc_hz"].as_u64())
        .map(|(s, hz)| s * hz as f64);
    out.push_str("\nWorkers\n");
    let mut t = Table::new(&[
        "worker",
        "lcore",
        "rx",
        "tx",
        "dropped",
        "tx full",
        "handoff",
        "sessions",
        "load",
        "cycles/pkt",
    ]);
    for (i, w) in workers.iter().enumerate() {
        let busy = u(&w["busy_cycles"]);
        let load = match cycles {
            Some(c) if c > 0.0 => format!("{:.2}", (busy as f64 / c).min(1.0)),
            _ => "-".into(),
        };
        let per_packet = match u(&w["rx"]) {
            0 => "-".into(),
            rx => format!("{:.0}", busy as f64 / rx as f64),
        };
        t.row(vec![
            i.to_string(),
            n(&w["lcore"]),
            n(&w["rx"]),
            n(&w["tx"]),
            n(&w["dropped"]),
            n(&w["tx_full"]),
            n(&w["handoff"]),
            n(&w["sessions_active"]),
            load,
            per_packet,
        ]);
    }
    t.render(&mut out);

    by_reason(
        &mut out,
        workers,
        ("drops", &DropReason::NAMES[..]),
        "Drops by reason",
        "reason",
        true,
    );
    by_reason(
        &mut out,
        workers,
        ("screens", &ScreenOption::NAMES[..]),
        "Screen options matched",
        "option",
        false,
    );

    let total = |k: &str| workers.iter().map(|w| u(&w[k])).sum::<u64>();
    out.push_str("\nSessions and other counters\n");
    let mut t = Table::new(&["counter", "total"]);
    for (label, key) in [
        ("sessions active", "sessions_active"),
        ("sessions created", "sessions_created"),
        ("sessions closed", "sessions_closed"),
        ("sessions cleared", "sessions_cleared"),
        ("tcp sessions reopened", "sessions_reopened"),
        ("tcp rsts off the expected sequence", "tcp_rst_unconfirmed"),
        ("rejects sent", "rejects_sent"),
        ("malformed frames", "malformed"),
        ("ipv6 neighbor discovery passed", "neighbor_discovery"),
        ("related icmp errors passed", "related_icmp"),
        ("fragments held", "fragments_held"),
        ("multi-segment frames", "multi_segment"),
        ("policy audit matches", "policy_audit"),
        ("tx ring full", "tx_full"),
        ("handoff ring full", "handoff_full"),
    ] {
        t.row(vec![label.into(), total(key).to_string()]);
    }
    t.render(&mut out);

    stage_cycles(&mut out, workers);

    out.push_str("\nEvents (generated = rate limited + ring overflow + drained + aggregating)\n");
    let mut t = Table::new(&[
        "type",
        "generated",
        "rate limited",
        "ring overflow",
        "drained",
        "aggregating",
        "aggregate full",
    ]);
    for ty in EventType::ALL {
        let c = &v["events"][ty.name()];
        t.row(vec![
            ty.name().into(),
            n(&c["generated"]),
            n(&c["rate_limited"]),
            n(&c["ring_overflow"]),
            n(&c["drained"]),
            n(&c["aggregating"]),
            n(&c["aggregate_full"]),
        ]);
    }
    t.render(&mut out);
    if u(&v["episodes_untracked"]) > 0 {
        out.push_str(&format!(
            "episodes untracked: {}\n",
            n(&v["episodes_untracked"])
        ));
    }

    let consumers = list(&v["consumers"]);
    if consumers.is_empty() {
        out.push_str("\nConsumers: none connected\n");
    } else {
        out.push_str("\nConsumers\n");
        let mut t = Table::new(&[
            "id",
            "delivered",
            "dropped",
            "buffered bytes",
            "notices dropped",
        ]);
        for c in consumers {
            t.row(vec![
                n(&c["id"]),
                sum(&c["delivered"]).to_string(),
                sum(&c["dropped"]).to_string(),
                n(&c["buffered_bytes"]),
                n(&c["notices_dropped"]),
            ]);
        }
        t.render(&mut out);
    }

    out.push_str("\nConnections\n");
    let mut t = Table::new(&["socket", "counters"]).names(2);
    t.row(vec!["event".into(), pairs(&v["consumer_connections"])]);
    t.row(vec!["control".into(), pairs(&v["control_connections"])]);
    t.render(&mut out);
    out
}

/// `Drops by reason` / `Screen options matched`: the non-zero counts of a
/// per-name object of every worker, summed, and per worker when there are
/// several; `none` when all are zero.
fn by_reason(
    out: &mut String,
    workers: &[Value],
    (key, vocabulary): (&str, &[&str]),
    title: &str,
    column: &str,
    say_none: bool,
) {
    let names = workers
        .first()
        .map(|w| keys(&w[key], vocabulary))
        .unwrap_or_default();
    let rows: Vec<(&str, Vec<u64>)> = names
        .into_iter()
        .map(|name| {
            (
                name,
                workers.iter().map(|w| u(&w[key][name])).collect::<Vec<_>>(),
            )
        })
        .filter(|(_, per)| per.iter().any(|&x| x > 0))
        .collect();
    if rows.is_empty() {
        if say_none {
            out.push_str(&format!("\n{title}: none\n"));
        }
        return;
    }
    out.push_str(&format!("\n{title}\n"));
    let mut header = vec![column.to_owned(), "total".to_owned()];
    if workers.len() > 1 {
        header.extend((0..workers.len()).map(|i| format!("worker {i}")));
    }
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut t = Table::new(&header);
    for (name, per) in rows {
        let mut cells = vec![name.to_owned(), per.iter().sum::<u64>().to_string()];
        if workers.len() > 1 {
            cells.extend(per.iter().map(u64::to_string));
        }
        t.row(cells);
    }
    t.render(out);
}

/// Cycles per packet by stage, per worker (`-` where nothing was timed).
fn stage_cycles(out: &mut String, workers: &[Value]) {
    let stages = workers
        .first()
        .map(|w| keys(&w["stage_cycles"], &STAGES))
        .unwrap_or_default();
    if stages.is_empty() {
        return;
    }
    out.push_str("\nCycles per packet by stage\n");
    let mut header = vec!["worker"];
    header.extend(&stages);
    let mut t = Table::new(&header);
    for (i, w) in workers.iter().enumerate() {
        let mut cells = vec![i.to_string()];
        for s in &stages {
            let c = &w["stage_cycles"][*s];
            cells.push(match u(&c["packets"]) {
                0 => "-".into(),
                p => format!("{:.0}", u(&c["cycles"]) as f64 / p as f64),
            });
        }
        t.row(cells);
    }
    t.render(out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Value {
        let per_type = |x: u64| -> Value {
            EventType::ALL
                .iter()
                .map(|t| (t.name().to_owned(), json!(x)))
                .collect::<serde_json::Map<_, _>>()
                .into()
        };
        let events: serde_json::Map<String, Value> = EventType::ALL
            .iter()
            .map(|t| {
                (
                    t.name().to_owned(),
                    json!({"generated": 1234567, "rate_limited": 7, "ring_overflow": 0,
                           "drained": 1234560, "aggregating": 0, "aggregate_full": 0}),
                )
            })
            .collect();
        let worker = |lcore: u64, syn: u64| {
            json!({"lcore": lcore, "rx": 1000000, "tx": 990000, "dropped": 10000,
                   "drops": {"malformed": 0, "screen": 12, "tcp_syn_check": syn, "policy_deny": 9988 - syn},
                   "screens": {"land": 0, "syn-flood": 12},
                   "tx_full": 0, "handoff": 5, "handoff_full": 0, "sessions_active": 42,
                   "sessions_created": 100, "sessions_closed": 58, "sessions_cleared": 3,
                   "busy_cycles": 1_000_000_000u64,
                   "stage_cycles": {"rx": {"cycles": 5000, "packets": 100}, "parse": {"cycles": 0, "packets": 0}}})
        };
        json!({
            "generation": 2, "uptime_s": 10.0, "tsc_hz": 1_000_000_000u64,
            "events": events, "episodes_untracked": 0,
            "consumers": [{"id": 1, "delivered": per_type(10), "dropped": per_type(1),
                           "buffered_bytes": 4096, "notices_dropped": 0},
                          {"id": 12, "delivered": per_type(0), "dropped": per_type(0),
                           "buffered_bytes": 0, "notices_dropped": 0}],
            "consumer_connections": {"accepted": 2, "refused": 0, "cut_off": 0},
            "control_connections": {"accepted": 5, "answered": 5, "evicted": 0, "refused": 0, "timed_out": 0, "failed": 0},
            "workers": [worker(1, 50), worker(2, 0)],
            "ports": [{"name": "ge-0/0/0", "device": "net_null0", "ipackets": 2000000, "opackets": 5,
                       "imissed": 0, "ierrors": 0, "oerrors": 0, "rx_nombuf": 0},
                      {"name": "ge-0/0/1", "device": "0000:3b:00.1", "ipackets": 0, "opackets": 1980000,
                       "imissed": 17, "ierrors": 0, "oerrors": 0, "rx_nombuf": 0}],
        })
    }

    /// The lines of the table under `title`, header first, up to the
    /// blank line that ends it.
    fn table<'a>(text: &'a str, title: &str) -> Vec<&'a str> {
        text.lines()
            .skip_while(|l| *l != title)
            .skip(1)
            .take_while(|l| !l.is_empty())
            .collect()
    }

    /// Each table's columns line up: the offsets where every row is
    /// blank, two or more in a row, cut the lines into exactly one span
    /// per header cell, and every row has text in every span. A row whose
    /// cells drift (`worker lcore 1: rx 5`) merges or splits spans.
    fn assert_aligned(rows: &[&str]) {
        assert!(rows.len() >= 2, "{rows:?}");
        let width = rows.iter().map(|r| r.len()).max().unwrap_or(0);
        let blank: Vec<bool> = (0..width)
            .map(|i| {
                rows.iter()
                    .all(|r| r.as_bytes().get(i).is_none_or(|&b| b == b' '))
            })
            .collect();
        let mut spans = Vec::new();
        let mut i = 0;
        while i < width {
            if blank[i] {
                i += 1;
                continue;
            }
            let start = i;
            while i < width && !(blank[i] && blank.get(i + 1).is_none_or(|&b| b)) {
                i += 1;
            }
            spans.push(start..i);
        }
        let cells = rows[0].split("  ").filter(|c| !c.trim().is_empty()).count();
        assert_eq!(spans.len(), cells, "{spans:?}\n{rows:#?}");
        for r in rows {
            for s in &spans {
                let text = r.get(s.clone()).or_else(|| r.get(s.start..)).unwrap_or("");
                assert!(
                    !text.trim().is_empty(),
                    "{r:?} has no cell at {s:?}\n{rows:#?}"
                );
            }
        }
    }

    #[test]
    fn stats_text_is_aligned_tables_without_json() {
        let text = stats_text(&sample());
        assert!(!text.contains('{') && !text.contains('['), "{text}");
        for title in [
            "Ports",
            "Workers",
            "Drops by reason",
            "Screen options matched",
            "Events (generated = rate limited + ring overflow + drained + aggregating)",
            "Consumers",
            "Cycles per packet by stage",
            "Sessions and other counters",
            "Connections",
        ] {
            assert_aligned(&table(&text, title));
        }
        // Non-zero reasons only, summed, then per worker.
        let drops = table(&text, "Drops by reason");
        assert_eq!(drops.len(), 4, "{drops:#?}");
        assert!(drops[0].starts_with("reason"), "{drops:#?}");
        let cells = |l: &str| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(cells(drops[2]), ["tcp_syn_check", "50", "50", "0"]);
        assert!(!text.contains("malformed  "), "zero reasons are left out");
        assert_eq!(
            cells(table(&text, "Screen options matched")[1]),
            ["syn-flood", "24", "12", "12"]
        );
        let consumers = table(&text, "Consumers");
        assert_eq!(
            cells(consumers[1]),
            [
                "1",
                (10 * EventType::COUNT).to_string().as_str(),
                EventType::COUNT.to_string().as_str(),
                "4096",
                "0"
            ]
        );
        // Load since start: 1e9 busy cycles over 10 s at 1 GHz.
        let workers = table(&text, "Workers");
        assert_eq!(cells(workers[1])[8], "0.10", "{workers:#?}");
        assert!(text.contains("control  accepted 5, answered 5"), "{text}");
        assert!(text.contains("sessions cleared"), "{text}");
    }

    /// A reply missing fields (an older dataplane, a bad reply) renders.
    #[test]
    fn stats_text_of_an_empty_object_does_not_panic() {
        let text = stats_text(&json!({}));
        assert!(text.contains("Drops by reason: none"), "{text}");
        let text = stats_text(&json!({"workers": [{"drops": 3}], "ports": 1}));
        assert!(text.starts_with("generation -"), "{text}");
    }
}
