//! `rampart cluster status [--json]` and `rampart cluster failover`:
//! the high-availability pair as the control socket reports it (Junos
//! `show chassis cluster status` and `request chassis cluster failover`).

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use serde_json::Value;

use crate::control;

/// Prints the pair's state: roles, the peer, the sync link's counters.
pub fn status(socket: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let reply = control::request(socket, "cluster")?;
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{reply}")?;
        return Ok(ExitCode::SUCCESS);
    }
    let v: Value = serde_json::from_str(&reply)?;
    if let Some(e) = v["error"].as_str() {
        eprintln!("rampart: {e}");
        return Ok(ExitCode::FAILURE);
    }
    out.write_all(status_text(&v).as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// The status as an operator reads it.
fn status_text(v: &Value) -> String {
    let mut s = String::new();
    let peer = &v["peer"];
    let opt = |x: &Value| match x {
        Value::Null => "-".to_owned(),
        Value::String(t) => t.clone(),
        other => other.to_string(),
    };
    s += &format!(
        "Cluster {}: node {} (priority {}) is {}\n",
        opt(&v["name"]),
        v["node_id"],
        v["priority"],
        v["role"].as_str().unwrap_or("?").to_uppercase()
    );
    s += &format!(
        "Peer {}: {}",
        opt(&peer["address"]),
        if peer["heard"] == true {
            format!(
                "node {} (priority {}), {}",
                opt(&peer["node_id"]),
                opt(&peer["priority"]),
                if peer["active"] == true {
                    "active"
                } else {
                    "standby"
                }
            )
        } else {
            "not heard".to_owned()
        }
    );
    match peer["paths_down"].as_array() {
        Some(down) if !down.is_empty() => {
            let names: Vec<String> = down.iter().map(opt).collect();
            s += &format!("; silent on: {}\n", names.join(", "));
        }
        _ => s += "\n",
    }
    s += &format!("Failovers: {}", v["failovers"]);
    if let Some(last) = v["last_failover"].as_object() {
        s += &format!(" (last: to {}, {})", opt(&last["to"]), opt(&last["why"]));
    }
    s += "\nSync link:\n";
    if let Some(sync) = v["sync"].as_object() {
        let width = sync.keys().map(String::len).max().unwrap_or(0);
        for (k, n) in sync {
            s += &format!("  {k:<width$}  {n}\n");
        }
    }
    s
}

/// Hands the active role to the peer (or takes it).
pub fn failover(socket: &Path) -> anyhow::Result<ExitCode> {
    let reply = control::request(socket, "cluster-failover")?;
    let v: Value = serde_json::from_str(&reply)?;
    if v["ok"] == true {
        println!(
            "failover done: this node is now {}",
            v["role"].as_str().unwrap_or("?")
        );
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "rampart: {}",
            v["error"].as_str().unwrap_or("failover refused")
        );
        Ok(ExitCode::FAILURE)
    }
}
