//! `rampart sessions` and `rampart sessions clear`: the operator's side of
//! the control socket's `sessions` requests (Junos `show security flow
//! session` and `clear security flow session`), and the flow filter flags
//! that `rampart events` shares.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context};
use rampart_events::request::MAX_SESSIONS_PAGE;
use rampart_events::{FlowFilter, SessionCursor, SessionRequest};
use serde_json::Value;

use crate::control;

/// The flow filter as flags (Junos `show security flow session` filters).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct FilterArgs {
    /// The initiator's source address or prefix (192.0.2.0/24, 2001:db8::/32).
    #[arg(long)]
    pub source_prefix: Option<String>,
    /// The initiator's destination address or prefix.
    #[arg(long)]
    pub destination_prefix: Option<String>,
    /// Either port.
    #[arg(long)]
    pub port: Option<String>,
    /// Protocol name (tcp, udp, icmp, icmp6, ...) or number.
    #[arg(long)]
    pub protocol: Option<String>,
    /// The application the policy matched (as the config names it).
    #[arg(long)]
    pub application: Option<String>,
    /// The policy's name.
    #[arg(long)]
    pub policy: Option<String>,
    /// Either zone (from or to).
    #[arg(long)]
    pub zone: Option<String>,
    /// Either interface (ingress or egress).
    #[arg(long)]
    pub interface: Option<String>,
}

impl FilterArgs {
    /// The filter, or the flag that is wrong and why.
    pub fn filter(&self) -> anyhow::Result<FlowFilter> {
        let mut f = FlowFilter::default();
        for (key, value) in [
            ("source-prefix", &self.source_prefix),
            ("destination-prefix", &self.destination_prefix),
            ("port", &self.port),
            ("protocol", &self.protocol),
            ("application", &self.application),
            ("policy", &self.policy),
            ("zone", &self.zone),
            ("interface", &self.interface),
        ] {
            if let Some(v) = value {
                f.set(key, v).map_err(|e| anyhow::anyhow!("--{key}: {e}"))?;
            }
        }
        Ok(f)
    }
}

/// Sends one request; a `{"error": ...}` reply is an error.
fn ask(socket: &Path, request: &SessionRequest) -> anyhow::Result<Value> {
    let reply = control::request(socket, &request.to_line())?;
    let v: Value = serde_json::from_str(reply.trim())
        .with_context(|| format!("unexpected reply from {}: {reply:?}", socket.display()))?;
    if let Some(e) = v.get("error").and_then(Value::as_str) {
        bail!("{e}");
    }
    Ok(v)
}

/// Lists the sessions the filter passes, page by page (memory stays a
/// page whatever the tables hold), at most `limit` of them.
pub fn list(
    socket: &Path,
    filter: FlowFilter,
    json: bool,
    limit: Option<u64>,
) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    let mut shown = 0u64;
    let mut after = Some(SessionCursor::default());
    while let Some(cursor) = after {
        let room = limit.map_or(u64::MAX, |l| l - shown);
        if room == 0 {
            break;
        }
        let request = SessionRequest {
            clear: false,
            filter: filter.clone(),
            after: cursor,
            limit: room.min(u64::from(MAX_SESSIONS_PAGE)) as u32,
        };
        let page = ask(socket, &request)?;
        for s in page["sessions"].as_array().into_iter().flatten() {
            if json {
                writeln!(out, "{s}")?;
            } else {
                write_session(&mut out, s)?;
            }
            shown += 1;
        }
        after = page["next"]
            .as_str()
            .map(|n| {
                n.parse::<SessionCursor>()
                    .map_err(|()| anyhow::anyhow!("bad next cursor {n:?}"))
            })
            .transpose()?;
    }
    if !json {
        writeln!(out, "Total sessions: {shown}")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// One session as Junos's `show security flow session` prints it, with
/// Rampart's worker, state, zones, age and idle time.
fn write_session(out: &mut impl Write, s: &Value) -> std::io::Result<()> {
    let name = |v: &Value| v.as_str().unwrap_or("-").to_owned();
    let secs = |v: &Value| v.as_f64().unwrap_or(0.0).floor() as u64;
    let closed = s["closed"]
        .as_str()
        .map_or(String::new(), |r| format!(" (closed: {r})"));
    writeln!(
        out,
        "Session ID: {}, Policy name: {}, Generation: {}, State: {}{closed}, Timeout: {}, Age: {}, Idle: {}, Worker: {}",
        s["session_id"],
        name(&s["policy"]),
        s["generation"],
        name(&s["state"]),
        secs(&s["timeout_s"]),
        secs(&s["age_s"]),
        secs(&s["idle_s"]),
        s["worker"],
    )?;
    writeln!(
        out,
        "  Zones: {} -> {}, Application: {}",
        name(&s["from_zone"]),
        name(&s["to_zone"]),
        name(&s["application"]),
    )?;
    let protocol = name(&s["protocol"]);
    for (label, w) in [("In", &s["in"]), ("Out", &s["out"])] {
        writeln!(
            out,
            "  {label}: {}/{} --> {}/{};{protocol}, If: {}, Pkts: {}, Bytes: {}",
            name(&w["source"]),
            w["source_port"],
            name(&w["destination"]),
            w["destination_port"],
            name(&w["interface"]),
            w["packets"],
            w["bytes"],
        )?;
    }
    Ok(())
}

/// Ends the sessions the filter passes (every session with `all`, after
/// the operator confirms unless `yes`).
pub fn clear(socket: &Path, filter: FlowFilter, all: bool, yes: bool) -> anyhow::Result<ExitCode> {
    if filter.is_empty() && !all {
        bail!("give a filter (--source-prefix, --policy, ...) or --all to end every session");
    }
    if !filter.is_empty() && all {
        bail!("--all ends every session: give it without filters");
    }
    if all && !yes {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            bail!("--all ends every session: confirm with --yes when not at a terminal");
        }
        eprint!(
            "End every session on the dataplane at {}? [y/N] ",
            socket.display()
        );
        let mut answer = String::new();
        stdin.lock().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            eprintln!("nothing cleared");
            return Ok(ExitCode::FAILURE);
        }
    }
    let reply = ask(
        socket,
        &SessionRequest {
            clear: true,
            filter,
            ..SessionRequest::default()
        },
    )?;
    println!(
        "{} session(s) cleared ({} matched of {} scanned)",
        reply["cleared"], reply["matched"], reply["scanned"]
    );
    Ok(ExitCode::SUCCESS)
}
