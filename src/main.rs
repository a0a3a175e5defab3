//! `rampart`: the firewall dataplane and its operator commands.
//!
//! No `unsafe` here: everything that touches DPDK goes through the safe
//! API of `rampart-core` (ARCHITECTURE.md, workspace layout).

#![forbid(unsafe_code)]

mod cluster_cli;
mod cluster_sync;
mod consumer;
mod control;
mod dataplane;
mod demo;
mod export;
mod host;
mod log;
mod merge;
mod metrics;
mod report;
mod serve;
mod service;
mod sessions;
mod sessions_cli;
mod top;
mod trace;
mod worker;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use rampart_pipeline::config::Config;

#[derive(Parser)]
#[command(name = "rampart", version, about = "DPDK poll-mode firewall dataplane")]
struct Cli {
    /// Daemon log level (stderr; journald reads the priority prefixes).
    #[arg(long, global = true, value_enum, default_value = "info")]
    log_level: log::Level,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the dataplane (with no --config: the embedded demo).
    Run {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Stop after this many seconds.
        #[arg(long)]
        duration: Option<f64>,
        /// Stop once no packet has arrived for this many seconds (for
        /// finite inputs such as a replayed capture).
        #[arg(long)]
        idle_exit: Option<f64>,
        /// Start the ports only once an event consumer is connected (or
        /// after this many seconds).
        #[arg(long)]
        wait_consumer: Option<f64>,
        /// Write the final counters (as `rampart stats --json`) to this file.
        #[arg(long)]
        stats_out: Option<PathBuf>,
    },
    /// Validate a config file: exit 0, or print every error with its location.
    CheckConfig { file: PathBuf },
    /// Follow the event stream: decode and print (or forward as syslog).
    Events {
        /// Event socket; repeat to follow several (an HA pair, several
        /// dataplanes) merged into one stream in time order, each record
        /// once (by event id), JSON lines tagged with their `source`.
        #[arg(long, default_value = "/run/rampart/events.sock")]
        socket: Vec<PathBuf>,
        /// With several sockets: milliseconds a record waits for earlier
        /// ones of the other sources before it is written (at most 60000).
        #[arg(long, default_value_t = 500,
              value_parser = clap::value_parser!(u64).range(0..=merge::MAX_WINDOW.as_millis() as u64))]
        merge_window_ms: u64,
        /// With several sockets: MiB of rendered records the merge holds at
        /// most; past it the earliest are written before their window
        /// ends, and counted.
        #[arg(long, default_value_t = (merge::DEFAULT_BUFFER_BYTES >> 20) as u64,
              value_parser = clap::value_parser!(u64).range(1..=4096))]
        merge_buffer_mb: u64,
        /// json, junos, junos-sd or droplog.
        #[arg(long, default_value = "json")]
        format: rampart_events::Format,
        /// Comma-separated event types to keep (default: all; `stats`
        /// keeps the in-band stats records, which a list without it drops).
        #[arg(long, alias = "type")]
        types: Option<String>,
        /// Comma-separated actions to keep: deny, reject, audit (policies),
        /// drop, alarm (screens), accept, discard (filter terms), permit
        /// (sessions).
        #[arg(long)]
        action: Option<String>,
        #[command(flatten)]
        filter: Box<sessions_cli::FilterArgs>,
        /// Forward as syslog to udp://HOST:PORT or tcp://HOST:PORT.
        #[arg(long)]
        syslog: Option<rampart_events::syslog::SyslogTarget>,
        /// Syslog framing: rfc5424 (structured data with --format junos-sd,
        /// the default, or the Junos text with --format junos) or bsd (RFC
        /// 3164 `RT_FLOW: RT_FLOW_SESSION_...: ...`, as parsers written for
        /// older SRX logs expect).
        #[arg(long, default_value = "rfc5424", requires = "syslog")]
        syslog_framing: rampart_events::syslog::Framing,
        /// Exit when the dataplane closes the stream instead of waiting for it.
        #[arg(long)]
        once: bool,
    },
    /// Ask the running dataplane to load its config again (as SIGHUP does).
    Reload {
        #[arg(long, default_value = "/run/rampart/control.sock")]
        socket: PathBuf,
    },
    /// Counters from the running dataplane's control socket.
    Stats {
        #[arg(long, default_value = "/run/rampart/control.sock")]
        socket: PathBuf,
        #[arg(long)]
        json: bool,
        /// Per-rule hit counters (policies and filter terms) instead.
        #[arg(long)]
        rules: bool,
    },
    /// List the running dataplane's sessions (Junos `show security flow
    /// session`), or end some (`clear`).
    #[command(args_conflicts_with_subcommands = true)]
    Sessions {
        #[command(subcommand)]
        action: Option<SessionsAction>,
        #[arg(long, default_value = "/run/rampart/control.sock")]
        socket: PathBuf,
        /// One JSON object per session, one per line.
        #[arg(long)]
        json: bool,
        /// Show at most this many sessions.
        #[arg(long)]
        limit: Option<u64>,
        #[command(flatten)]
        filter: Box<sessions_cli::FilterArgs>,
    },
    /// A live view of the running dataplane, refreshed every second:
    /// port and worker rates, drops, events, sessions, busiest policies
    /// and screens (q quits). On a pipe: a snapshot per second.
    Top {
        #[arg(long, default_value = "/run/rampart/control.sock")]
        socket: PathBuf,
        /// One snapshot (over one second), then exit.
        #[arg(long)]
        once: bool,
        /// Snapshots as JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// The high-availability pair (`[cluster]`): its state, or a manual
    /// failover.
    Cluster {
        #[command(subcommand)]
        action: ClusterAction,
    },
    /// Run the pipeline offline over a capture and explain each packet's fate.
    Trace {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        pcap: PathBuf,
        /// Interface the packets enter through (default: the config's first).
        #[arg(long)]
        interface: Option<String>,
        /// One JSON object per packet.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ClusterAction {
    /// Roles, the peer and the sync link's counters (Junos `show chassis
    /// cluster status`).
    Status {
        #[arg(long, default_value = "/run/rampart/control.sock")]
        socket: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Hand the active role to the peer, or take it from a live peer, for
    /// maintenance (Junos `request chassis cluster failover`). The roles
    /// hold until the next failover or a node fails.
    Failover {
        #[arg(long, default_value = "/run/rampart/control.sock")]
        socket: PathBuf,
    },
}

#[derive(Subcommand)]
enum SessionsAction {
    /// End the matching sessions (Junos `clear security flow session`):
    /// each closes with a session_close record whose reason is `cli`.
    Clear {
        #[arg(long, default_value = "/run/rampart/control.sock")]
        socket: PathBuf,
        /// End every session (asks for confirmation unless --yes).
        #[arg(long)]
        all: bool,
        #[arg(long)]
        yes: bool,
        #[command(flatten)]
        filter: sessions_cli::FilterArgs,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    log::set_level(cli.log_level);
    let result = match cli.command {
        Command::Run {
            config,
            duration,
            idle_exit,
            wait_consumer,
            stats_out,
        } => run(config, duration, idle_exit, wait_consumer, stats_out),
        Command::CheckConfig { file } => check_config(&file),
        Command::Events {
            socket,
            merge_window_ms,
            merge_buffer_mb,
            format,
            types,
            action,
            filter,
            syslog,
            syslog_framing,
            once,
        } => (|| {
            use rampart_events::filter::{parse_actions, RecordFilter, TypeSet};
            let filter = RecordFilter {
                types: types
                    .as_deref()
                    .map(TypeSet::parse)
                    .transpose()
                    .map_err(|e| anyhow::anyhow!("--types: {e}"))?,
                actions: action
                    .as_deref()
                    .map(parse_actions)
                    .transpose()
                    .map_err(|e| anyhow::anyhow!("--action: {e}"))?,
                flow: filter.filter()?,
            };
            let opts = consumer::Options {
                format,
                filter,
                syslog,
                syslog_framing,
                once,
                stop: None,
                prefix: "",
                merge_window: std::time::Duration::from_millis(merge_window_ms),
                merge_buffer_bytes: (merge_buffer_mb as usize) << 20,
            };
            consumer::run(&socket, opts).map(|()| ExitCode::SUCCESS)
        })(),
        Command::Stats {
            socket,
            json,
            rules: true,
        } => rule_stats(&socket, json),
        Command::Stats { socket, json, .. } => stats(&socket, json),
        Command::Reload { socket } => reload(&socket),
        Command::Top { socket, once, json } => top::run(&socket, once, json),
        Command::Cluster {
            action: ClusterAction::Status { socket, json },
        } => cluster_cli::status(&socket, json),
        Command::Cluster {
            action: ClusterAction::Failover { socket },
        } => cluster_cli::failover(&socket),
        Command::Sessions {
            action: None,
            socket,
            json,
            limit,
            filter,
        } => filter
            .filter()
            .and_then(|f| sessions_cli::list(&socket, f, json, limit)),
        Command::Sessions {
            action:
                Some(SessionsAction::Clear {
                    socket,
                    all,
                    yes,
                    filter,
                }),
            ..
        } => filter
            .filter()
            .and_then(|f| sessions_cli::clear(&socket, f, all, yes)),
        Command::Trace {
            config,
            pcap,
            interface,
            json,
        } => match Config::load(&config) {
            Ok(c) => trace::run(&c, &pcap, interface.as_deref(), json).map(|()| ExitCode::SUCCESS),
            Err(errors) => {
                eprint!("{errors}");
                Ok(ExitCode::FAILURE)
            }
        },
    };
    match result {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => ExitCode::from(BROKEN_PIPE_EXIT),
        Err(e) => {
            log::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Exit status of a command whose stdout was closed under it (`rampart
/// stats | head -1`, `rampart events | head`): it stops quietly with
/// 128 + SIGPIPE, the status a shell reports for `seq`, `cat` or `tail -f`
/// killed by SIGPIPE, so `set -o pipefail` scripts see what they see for
/// those. Rust ignores SIGPIPE, so the write fails with `BrokenPipe` and
/// the command returns that error up to `main` instead of printing more.
const BROKEN_PIPE_EXIT: u8 = 141;

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn run(
    config: Option<PathBuf>,
    duration: Option<f64>,
    idle_exit: Option<f64>,
    wait_consumer: Option<f64>,
    stats_out: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let mut limits = dataplane::StopConditions {
        duration: duration.map(std::time::Duration::from_secs_f64),
        idle: idle_exit.map(std::time::Duration::from_secs_f64),
        wait_consumer: wait_consumer.map(std::time::Duration::from_secs_f64),
    };
    let config_path = config.clone();
    let (config, _demo) = match config {
        // Checked on this machine before DPDK starts, as check-config does:
        // a capture or group that is not there is named with its place.
        Some(path) => match Config::load_on_host(&path, &host::System) {
            Ok(c) => {
                for w in rampart_pipeline::policy::shadow_warnings(&c, 10) {
                    log::warning!("{}: {w}", path.display());
                }
                (c, None)
            }
            Err(errors) => {
                eprint!("{errors}");
                return Ok(ExitCode::FAILURE);
            }
        },
        None => {
            let demo = demo::Demo::prepare()?;
            // A closed stdout must not keep the demo from running.
            let _ = writeln!(
                std::io::stdout(),
                "rampart: no --config given, running the embedded demo ({})",
                demo.describe()
            );
            if limits.duration.is_none() && limits.idle.is_none() {
                limits.idle = Some(std::time::Duration::from_millis(500));
            }
            limits
                .wait_consumer
                .get_or_insert(std::time::Duration::from_secs(5));
            (demo.config.clone(), Some(demo))
        }
    };
    // The demo prints its events live, as an operator's `rampart events
    // --format junos` would.
    let live = _demo.as_ref().map(|_| {
        let socket = config.events.socket.clone();
        std::thread::spawn(move || {
            let opts = consumer::Options {
                format: rampart_events::Format::Junos,
                filter: Default::default(),
                syslog: None,
                syslog_framing: Default::default(),
                once: true,
                stop: None,
                prefix: "event: ",
                merge_window: std::time::Duration::ZERO,
                merge_buffer_bytes: merge::DEFAULT_BUFFER_BYTES,
            };
            consumer::run(&[socket], opts)
        })
    });
    let summary = dataplane::run(&config, config_path.as_deref(), &limits);
    // The EAL is cleaned up; its runtime directory (telemetry socket) goes
    // too, so a restart loop leaves nothing behind.
    dataplane::leftovers::remove_own_runtime_dir();
    if let Some(t) = live {
        if summary.is_ok() {
            let _ = t.join();
        }
    }
    let summary = summary?;
    if let Some(path) = stats_out {
        // Never through a symlink someone put there, and never half-written.
        rampart_events::write_file_atomic(&path, summary.stats_json.as_bytes())
            .with_context(|| format!("--stats-out {}", path.display()))?;
    }
    let mut out = std::io::stdout().lock();
    write!(out, "{summary}")?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Everything `run` checks before DPDK starts: the config itself, the
/// files and interfaces its vdevs open, its socket groups.
fn check_config(file: &std::path::Path) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match Config::load_on_host(file, &host::System) {
        Ok(c) => {
            writeln!(
                out,
                "{}: ok ({} interfaces, {} zones, {} policies, {} filters)",
                file.display(),
                c.interfaces.len(),
                c.zones.len(),
                c.policies.len(),
                c.filters.len()
            )?;
            out.flush()?;
            // Accepted, but probably not what was meant (Junos's `commit
            // check` warns the same way).
            for w in rampart_pipeline::policy::shadow_warnings(&c, usize::MAX) {
                eprintln!("{}: warning: {w}", file.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            eprint!("{errors}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn stats(socket: &std::path::Path, json: bool) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    let reply = control::request(socket, "stats")?;
    if json {
        write!(out, "{reply}")?;
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    let v: serde_json::Value = serde_json::from_str(&reply)?;
    write!(out, "{}", report::stats_text(&v))?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn reload(socket: &std::path::Path) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    let reply = control::request(socket, "reload")?;
    let v: serde_json::Value = serde_json::from_str(&reply)?;
    if v["ok"] == true {
        writeln!(out, "reloaded: generation {}", v["generation"])?;
        out.flush()?;
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "rampart: reload rejected, generation {} keeps running:\n{}",
            v["generation"],
            v["error"].as_str().unwrap_or("unknown error")
        );
        Ok(ExitCode::FAILURE)
    }
}

fn rule_stats(socket: &std::path::Path, json: bool) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    let reply = control::request(socket, "rules")?;
    if json {
        write!(out, "{reply}")?;
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    let v: serde_json::Value = serde_json::from_str(&reply)?;
    writeln!(out, "generation {}", v["generation"])?;
    writeln!(
        out,
        "{:<32} {:<12} {:<12} {:<8} {:>14}",
        "policy", "from-zone", "to-zone", "action", "hits"
    )?;
    for p in v["policies"].as_array().into_iter().flatten() {
        writeln!(
            out,
            "{:<32} {:<12} {:<12} {:<8} {:>14}",
            p["policy"].as_str().unwrap_or(""),
            p["from_zone"].as_str().unwrap_or("-"),
            p["to_zone"].as_str().unwrap_or("-"),
            p["action"].as_str().unwrap_or(""),
            p["hits"]
        )?;
    }
    for f in v["filters"].as_array().into_iter().flatten() {
        for t in f["terms"].as_array().into_iter().flatten() {
            writeln!(
                out,
                "filter {}/{:<24} {:<8} {:>14}",
                f["filter"].as_str().unwrap_or(""),
                t["term"].as_str().unwrap_or(""),
                t["action"].as_str().unwrap_or(""),
                t["hits"]
            )?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
