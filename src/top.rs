//! `rampart top`: what the dataplane is doing, refreshed every second,
//! from two samples of the control socket's `stats` and `rules` a second
//! apart: per-port and per-worker packet rates and worker load, drops by
//! reason, events per type with their loss counters, sessions, the
//! busiest policies and screen options. A terminal gets a live view
//! (ratatui); a pipe gets one snapshot per second as text or JSON lines,
//! and `--once` one snapshot.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table};
use ratatui::{DefaultTerminal, Frame};
use serde_json::{json, Value};

use crate::control;

/// Rows of the busiest policies and screen options shown.
const BUSIEST: usize = 5;

/// One reading of the control socket.
pub struct Sample {
    at: Instant,
    stats: Value,
    rules: Value,
}

impl Sample {
    pub fn read(socket: &Path) -> anyhow::Result<Sample> {
        let get = |command: &str| -> anyhow::Result<Value> {
            let reply = control::request(socket, command)?;
            serde_json::from_str(reply.trim())
                .with_context(|| format!("unexpected {command} reply: {reply:?}"))
        };
        Ok(Sample {
            at: Instant::now(),
            stats: get("stats")?,
            rules: get("rules")?,
        })
    }
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// The view between two samples: rates per second over the interval,
/// totals as of `cur`.
pub fn view(prev: &Sample, cur: &Sample) -> Value {
    let secs = cur.at.duration_since(prev.at).as_secs_f64().max(1e-3);
    let rate = |now: u64, then: u64| (now.saturating_sub(then) as f64 / secs).round() as u64;
    let list = |s: &Sample, k: &str| s.stats[k].as_array().cloned().unwrap_or_default();
    let (workers, workers_before) = (list(cur, "workers"), list(prev, "workers"));
    let tsc_hz = u(&cur.stats["tsc_hz"]).max(1) as f64;

    let ports: Vec<Value> = list(cur, "ports")
        .iter()
        .zip(
            list(prev, "ports")
                .iter()
                .chain(std::iter::repeat(&Value::Null)),
        )
        .map(|(p, b)| {
            json!({
                "name": p["name"],
                "rx_pps": rate(u(&p["ipackets"]), u(&b["ipackets"])),
                "tx_pps": rate(u(&p["opackets"]), u(&b["opackets"])),
                "missed_pps": rate(u(&p["imissed"]), u(&b["imissed"])),
                "errors": u(&p["ierrors"]) + u(&p["oerrors"]),
            })
        })
        .collect();
    let per_worker: Vec<Value> = workers
        .iter()
        .zip(workers_before.iter().chain(std::iter::repeat(&Value::Null)))
        .enumerate()
        .map(|(i, (w, b))| {
            let busy = u(&w["busy_cycles"]).saturating_sub(u(&b["busy_cycles"])) as f64;
            json!({
                "worker": i,
                "lcore": w["lcore"],
                "rx_pps": rate(u(&w["rx"]), u(&b["rx"])),
                "tx_pps": rate(u(&w["tx"]), u(&b["tx"])),
                "drop_pps": rate(u(&w["dropped"]), u(&b["dropped"])),
                "load": ((busy / (secs * tsc_hz)).min(1.0) * 1000.0).round() / 1000.0,
                "sessions": u(&w["sessions_active"]),
            })
        })
        .collect();
    // Sums over workers of one counter (`path` into each worker object).
    let total = |ws: &[Value], path: &[&str]| -> u64 {
        ws.iter()
            .map(|w| u(path.iter().fold(w, |v, k| &v[*k])))
            .sum()
    };
    let busiest = |table: &str, names: Vec<String>, path: &dyn Fn(&str) -> Vec<String>| {
        let mut rows: Vec<(String, u64, u64)> = names
            .into_iter()
            .map(|n| {
                let p: Vec<String> = path(&n);
                let p: Vec<&str> = p.iter().map(String::as_str).collect();
                let now = total(&workers, &p);
                (n, rate(now, total(&workers_before, &p)), now)
            })
            .filter(|(_, _, now)| *now > 0)
            .collect();
        rows.sort_by(|a, b| b.1.cmp(&a.1).then(b.2.cmp(&a.2)));
        rows.into_iter()
            .map(|(n, per_s, now)| json!({table: n, "per_s": per_s, "total": now}))
            .collect::<Vec<_>>()
    };
    let keys = |v: &Value| -> Vec<String> {
        v.as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    };
    let first = workers.first().cloned().unwrap_or_default();
    let drops = busiest("reason", keys(&first["drops"]), &|n| {
        vec!["drops".into(), n.into()]
    });
    let mut screens = busiest("option", keys(&first["screens"]), &|n| {
        vec!["screens".into(), n.into()]
    });
    screens.truncate(BUSIEST);

    // In the vocabulary's order, as `rampart stats` lists them.
    let events: Vec<Value> = rampart_events::EventType::ALL
        .iter()
        .map(|t| {
            let t = t.name();
            let (c, b) = (&cur.stats["events"][t], &prev.stats["events"][t]);
            let consumer_dropped: u64 = list(cur, "consumers")
                .iter()
                .map(|k| u(&k["dropped"][t]))
                .sum();
            json!({
                "type": t,
                "per_s": rate(u(&c["generated"]), u(&b["generated"])),
                "generated": u(&c["generated"]),
                "rate_limited": u(&c["rate_limited"]),
                "ring_overflow": u(&c["ring_overflow"]),
                "consumer_dropped": consumer_dropped,
            })
        })
        .collect();

    let hits = |s: &Sample| -> Vec<(String, u64)> {
        s.rules["policies"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                (
                    p["policy"].as_str().unwrap_or("?").to_owned(),
                    u(&p["hits"]),
                )
            })
            .collect()
    };
    let before = hits(prev);
    let mut policies: Vec<(String, u64, u64)> = hits(cur)
        .into_iter()
        .map(|(name, now)| {
            let then = before.iter().find(|(n, _)| *n == name).map_or(0, |b| b.1);
            let per_s = rate(now, then);
            (name, per_s, now)
        })
        .filter(|(_, _, now)| *now > 0)
        .collect();
    policies.sort_by(|a, b| b.1.cmp(&a.1).then(b.2.cmp(&a.2)));
    policies.truncate(BUSIEST);

    let sessions = |s: &[Value], k: &str| total(s, &[k]);
    json!({
        "interval_s": (secs * 1000.0).round() / 1000.0,
        "generation": cur.stats["generation"],
        "ports": ports,
        "workers": per_worker,
        "drops": drops,
        "events": events,
        "sessions": {
            "active": sessions(&workers, "sessions_active"),
            "created_per_s": rate(sessions(&workers, "sessions_created"), sessions(&workers_before, "sessions_created")),
            "closed_per_s": rate(sessions(&workers, "sessions_closed"), sessions(&workers_before, "sessions_closed")),
            "cleared": sessions(&workers, "sessions_cleared"),
        },
        "policies": policies.into_iter().map(|(n, per_s, total)| json!({"policy": n, "per_s": per_s, "total": total})).collect::<Vec<_>>(),
        "screens": screens,
    })
}

/// The view as plain text (a pipe, `--once` without `--json`).
pub fn text(v: &Value) -> String {
    let mut out = format!(
        "rampart top: generation {}, over {:.2} s\n",
        v["generation"],
        v["interval_s"].as_f64().unwrap_or(0.0)
    );
    for (title, rows) in sections(v) {
        out.push_str(&format!("{title}\n"));
        let mut rows = rows.into_iter();
        let header: Vec<String> = rows.next().unwrap_or_default();
        let header: Vec<&str> = header.iter().map(String::as_str).collect();
        let mut table = crate::report::Table::new(&header);
        rows.for_each(|r| table.row(r));
        table.render(&mut out);
    }
    out
}

type Section = (String, Vec<Vec<String>>);

/// The view's tables, each a title and rows of cells (the header first),
/// for the terminal and the text alike.
fn sections(v: &Value) -> Vec<Section> {
    let s = |x: &Value| match x {
        Value::String(t) => t.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    };
    let rows = |key: &str, header: &[&str], fields: &[&str]| -> Section {
        let mut out = vec![header.iter().map(|h| h.to_string()).collect()];
        for r in v[key].as_array().into_iter().flatten() {
            out.push(fields.iter().map(|f| s(&r[*f])).collect());
        }
        (key.to_owned(), out)
    };
    let sessions = &v["sessions"];
    vec![
        rows(
            "ports",
            &["port", "rx/s", "tx/s", "missed/s", "errors"],
            &["name", "rx_pps", "tx_pps", "missed_pps", "errors"],
        ),
        rows(
            "workers",
            &[
                "worker", "lcore", "rx/s", "tx/s", "drops/s", "load", "sessions",
            ],
            &[
                "worker", "lcore", "rx_pps", "tx_pps", "drop_pps", "load", "sessions",
            ],
        ),
        (
            "sessions".into(),
            vec![
                vec![
                    "active".into(),
                    "created/s".into(),
                    "closed/s".into(),
                    "cleared".into(),
                ],
                vec![
                    s(&sessions["active"]),
                    s(&sessions["created_per_s"]),
                    s(&sessions["closed_per_s"]),
                    s(&sessions["cleared"]),
                ],
            ],
        ),
        rows(
            "drops",
            &["reason", "per s", "total"],
            &["reason", "per_s", "total"],
        ),
        rows(
            "events",
            &[
                "type",
                "per s",
                "generated",
                "rate limited",
                "ring overflow",
                "consumer dropped",
            ],
            &[
                "type",
                "per_s",
                "generated",
                "rate_limited",
                "ring_overflow",
                "consumer_dropped",
            ],
        ),
        rows(
            "policies",
            &["policy", "hits/s", "hits"],
            &["policy", "per_s", "total"],
        ),
        rows(
            "screens",
            &["option", "per s", "total"],
            &["option", "per_s", "total"],
        ),
    ]
}

/// Runs `rampart top`.
pub fn run(socket: &Path, once: bool, json: bool) -> anyhow::Result<ExitCode> {
    let tick = Duration::from_secs(1);
    let mut prev = Sample::read(socket)?;
    if once || json || !std::io::stdout().is_terminal() {
        let mut out = std::io::stdout().lock();
        loop {
            std::thread::sleep(tick);
            let cur = Sample::read(socket)?;
            let v = view(&prev, &cur);
            if json {
                writeln!(out, "{v}")?;
            } else {
                writeln!(out, "{}", text(&v))?;
            }
            out.flush()?;
            if once {
                return Ok(ExitCode::SUCCESS);
            }
            prev = cur;
        }
    }
    let mut terminal = ratatui::init();
    let result = live(&mut terminal, socket, &mut prev, tick);
    ratatui::restore();
    result.map(|()| ExitCode::SUCCESS)
}

/// The live view until `q`, Esc or Ctrl-C; a dataplane that goes away is
/// said on screen and tried again.
fn live(
    terminal: &mut DefaultTerminal,
    socket: &Path,
    prev: &mut Sample,
    tick: Duration,
) -> anyhow::Result<()> {
    let mut shown: Option<Value> = None;
    let mut problem: Option<String> = None;
    let mut next = Instant::now() + tick;
    loop {
        terminal.draw(|f| draw(f, socket, shown.as_ref(), problem.as_deref()))?;
        let wait = next.saturating_duration_since(Instant::now());
        if event::poll(wait)? {
            if let Event::Key(k) = event::read()? {
                let quit = matches!(k.code, KeyCode::Char('q') | KeyCode::Esc)
                    || (k.code == KeyCode::Char('c')
                        && k.modifiers.contains(KeyModifiers::CONTROL));
                if k.kind == KeyEventKind::Press && quit {
                    return Ok(());
                }
            }
            continue;
        }
        next = Instant::now() + tick;
        match Sample::read(socket) {
            Ok(cur) => {
                shown = Some(view(prev, &cur));
                problem = None;
                *prev = cur;
            }
            Err(e) => problem = Some(format!("{e:#}")),
        }
    }
}

fn draw(f: &mut Frame, socket: &Path, v: Option<&Value>, problem: Option<&str>) {
    let title = match v {
        Some(v) => format!(
            " rampart top: {} (generation {}), every 1 s; q quits ",
            socket.display(),
            v["generation"]
        ),
        None => format!(" rampart top: {}; q quits ", socket.display()),
    };
    let Some(v) = v else {
        let say = problem.unwrap_or("reading the first interval...");
        f.render_widget(
            Paragraph::new(say.to_owned())
                .block(Block::default().borders(Borders::ALL).title(title)),
            f.area(),
        );
        return;
    };
    let sections = sections(v);
    let heights: Vec<Constraint> = std::iter::once(Constraint::Length(1))
        .chain(
            sections
                .iter()
                .map(|(_, rows)| Constraint::Length(rows.len().max(2) as u16 + 2)),
        )
        .collect();
    let areas = Layout::vertical(heights).split(f.area());
    let status = problem.map_or_else(|| title.clone(), |p| format!("{title} -- {p}"));
    f.render_widget(
        Line::from(status).style(Style::default().add_modifier(Modifier::BOLD)),
        areas[0],
    );
    for ((name, rows), area) in sections.iter().zip(areas.iter().skip(1)) {
        let columns = rows.first().map_or(1, Vec::len);
        let widths = vec![Constraint::Fill(1); columns];
        let mut iter = rows.iter();
        let header = iter.next().cloned().unwrap_or_default();
        let table = Table::new(
            iter.map(|r| Row::new(r.iter().cloned().map(Cell::from))),
            widths,
        )
        .header(Row::new(header).style(Style::default().add_modifier(Modifier::BOLD)))
        .block(
            Block::default()
                .borders(Borders::ALL)
                .title(format!(" {name} ")),
        );
        f.render_widget(table, *area);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at: Instant, scale: u64) -> Sample {
        Sample {
            at,
            stats: json!({
                "generation": 2,
                "tsc_hz": 1_000_000_000u64,
                "events": {"policy_deny": {"generated": 100 * scale, "rate_limited": 3, "ring_overflow": 1}},
                "consumers": [{"dropped": {"policy_deny": 5}}],
                "ports": [{"name": "ge-0/0/0", "ipackets": 1000 * scale, "opackets": 10 * scale, "imissed": 0}],
                "workers": [{
                    "lcore": 1, "rx": 1000 * scale, "tx": 10 * scale, "dropped": 990 * scale,
                    "busy_cycles": 500_000_000 * scale,
                    "drops": {"policy-deny": 990 * scale, "screen": 0},
                    "screens": {"land": 0, "syn-flood": 7 * scale},
                    "sessions_active": 4, "sessions_created": 10 * scale, "sessions_closed": 6 * scale,
                    "sessions_cleared": 2,
                }],
            }),
            rules: json!({"policies": [
                {"policy": "allow-web", "hits": 10 * scale},
                {"policy": "default-policy", "hits": 990 * scale},
                {"policy": "idle", "hits": 0},
            ]}),
        }
    }

    /// Rates are the counters' growth over the interval; totals are the
    /// later sample's; zero rows are left out, the busiest come first.
    #[test]
    fn the_view_is_the_rates_between_two_samples() {
        let t = Instant::now();
        let v = view(&sample(t, 1), &sample(t + Duration::from_secs(2), 3));
        assert_eq!(v["interval_s"], 2.0);
        assert_eq!(v["ports"][0]["rx_pps"], 1000);
        assert_eq!(v["workers"][0]["drop_pps"], 990);
        assert_eq!(v["workers"][0]["load"], 0.5);
        assert_eq!(
            v["drops"],
            json!([{"reason": "policy-deny", "per_s": 990, "total": 2970}])
        );
        assert_eq!(
            v["screens"],
            json!([{"option": "syn-flood", "per_s": 7, "total": 21}])
        );
        assert_eq!(v["policies"][0]["policy"], "default-policy");
        assert_eq!(v["policies"].as_array().unwrap().len(), 2, "no idle policy");
        assert_eq!(
            v["events"][0]["type"], "policy_deny",
            "the vocabulary's order"
        );
        assert_eq!(v["events"][0]["per_s"], 100);
        assert_eq!(v["events"][0]["consumer_dropped"], 5);
        assert_eq!(v["sessions"]["created_per_s"], 10);
        assert_eq!(v["sessions"]["active"], 4);
        let text = text(&v);
        assert!(text.contains("policy-deny    990   2970"), "{text}");
        assert!(
            text.contains("ge-0/0/0  1000    10         0       0"),
            "{text}"
        );
    }
}
