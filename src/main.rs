//! `rampart`: the firewall dataplane and its operator commands.

mod dataplane;
mod demo;
mod trace;
mod worker;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rampart_pipeline::config::Config;

#[derive(Parser)]
#[command(name = "rampart", version, about = "DPDK poll-mode firewall dataplane")]
struct Cli {
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
    },
    /// Validate a config file: exit 0, or print every error with its location.
    CheckConfig { file: PathBuf },
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run {
            config,
            duration,
            idle_exit,
        } => run(config, duration, idle_exit),
        Command::CheckConfig { file } => check_config(&file),
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
        Err(e) => {
            eprintln!("rampart: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(
    config: Option<PathBuf>,
    duration: Option<f64>,
    idle_exit: Option<f64>,
) -> anyhow::Result<ExitCode> {
    let mut limits = dataplane::StopConditions {
        duration: duration.map(std::time::Duration::from_secs_f64),
        idle: idle_exit.map(std::time::Duration::from_secs_f64),
    };
    let (config, _demo) = match config {
        Some(path) => match Config::load(&path) {
            Ok(c) => (c, None),
            Err(errors) => {
                eprint!("{errors}");
                return Ok(ExitCode::FAILURE);
            }
        },
        None => {
            let demo = demo::Demo::prepare()?;
            println!(
                "rampart: no --config given, running the embedded demo ({})",
                demo.describe()
            );
            if limits.duration.is_none() && limits.idle.is_none() {
                limits.idle = Some(std::time::Duration::from_millis(500));
            }
            (demo.config.clone(), Some(demo))
        }
    };
    let summary = dataplane::run(&config, &limits)?;
    print!("{summary}");
    Ok(ExitCode::SUCCESS)
}

fn check_config(file: &std::path::Path) -> anyhow::Result<ExitCode> {
    match Config::load(file) {
        Ok(c) => {
            println!(
                "{}: ok ({} interfaces, {} zones, {} policies, {} filters)",
                file.display(),
                c.interfaces.len(),
                c.zones.len(),
                c.policies.len(),
                c.filters.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            eprint!("{errors}");
            Ok(ExitCode::FAILURE)
        }
    }
}
