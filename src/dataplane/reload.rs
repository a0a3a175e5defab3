//! Hot reload off the drain path: reading, validating and compiling a
//! config runs on a thread of its own (a 20,000-policy config takes about
//! half a second, which on the main lcore stopped the drain and lost events
//! to full rings); the main lcore only swaps the result in.

use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rampart_core::{ArcReceiver, ArcSender};
use rampart_events::Names;
use rampart_pipeline::config::{Config, EventsConfig};
use rampart_pipeline::engine::Ruleset;

use crate::control::ReloadTicket;
use crate::export;

/// A compiled generation, ready to switch to.
pub struct Prepared {
    pub rules: Arc<Ruleset>,
    pub names: Names,
    /// `events.socket_group` and `events.control_socket_group`, resolved.
    pub events_gid: Option<u32>,
    pub control_gid: Option<u32>,
}

/// A reload in progress.
enum Job {
    Compiling(JoinHandle<Result<Prepared, String>>),
    /// The thread could not start.
    Failed(String),
}

/// The config generations: the one running, the reload being compiled,
/// and the mailboxes to the workers.
pub struct Reloader {
    /// Where the config is read again (the embedded demo has none).
    pub path: Option<PathBuf>,
    pub generation: u32,
    /// The generation running now (its config, per-rule hit counters).
    pub current: Arc<Ruleset>,
    to_workers: Vec<ArcSender<Ruleset>>,
    /// Rulesets the workers retired, freed here.
    from_workers: Vec<ArcReceiver<Ruleset>>,
    job: Option<(ReloadTicket, Job)>,
    /// A request arrived while a job ran: it gets the next job (the file
    /// may have changed since the running job read it).
    queued: bool,
    next_ticket: ReloadTicket,
}

impl Reloader {
    pub fn new(
        path: Option<PathBuf>,
        current: Arc<Ruleset>,
        to_workers: Vec<ArcSender<Ruleset>>,
        from_workers: Vec<ArcReceiver<Ruleset>>,
    ) -> Reloader {
        Reloader {
            path,
            generation: current.generation,
            current,
            to_workers,
            from_workers,
            job: None,
            queued: false,
            next_ticket: 1,
        }
    }

    pub fn config(&self) -> &Arc<Config> {
        &self.current.config
    }

    /// Asks for a reload; the returned ticket is answered by
    /// [`Reloader::finished`]. Requests while a job runs share the next job.
    pub fn request(&mut self) -> ReloadTicket {
        if self.job.is_none() {
            self.start();
            self.next_ticket - 1
        } else {
            self.queued = true;
            self.next_ticket
        }
    }

    fn start(&mut self) {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        let path = self.path.clone();
        let running = self.current.config.clone();
        let generation = self.generation + 1;
        let spawned = std::thread::Builder::new()
            .name("rampart-reload".into())
            .spawn(move || prepare(path, &running, generation));
        let job = match spawned {
            Ok(handle) => Job::Compiling(handle),
            // No thread, no reload: answered at the next poll.
            Err(e) => Job::Failed(format!("starting the reload thread: {e}")),
        };
        self.job = Some((ticket, job));
    }

    /// The job that finished since the last call, if any (and the queued
    /// request's job started). The generation it compiled is `generation + 1`.
    pub fn finished(&mut self) -> Option<(ReloadTicket, Result<Prepared, String>)> {
        if matches!(&self.job.as_ref()?.1, Job::Compiling(h) if !h.is_finished()) {
            return None;
        }
        let (ticket, job) = self.job.take()?;
        let result = match job {
            Job::Compiling(handle) => handle
                .join()
                .unwrap_or_else(|_| Err("the reload thread panicked; nothing changed".into())),
            Job::Failed(e) => Err(e),
        };
        Some((ticket, result))
    }

    /// Starts the job a request queued while the last one ran.
    pub fn start_queued(&mut self) {
        if self.job.is_none() && std::mem::take(&mut self.queued) {
            self.start();
        }
    }

    /// Hands the new generation to every worker (each switches between
    /// two bursts) and makes it the current one.
    pub fn publish(&mut self, rules: Arc<Ruleset>) {
        for tx in &mut self.to_workers {
            // Mailboxes hold a few generations and reloads run one at a
            // time: a full one means the worker has not looped for a while.
            let mut pending = rules.clone();
            while let Err(back) = tx.send(pending) {
                pending = back;
                std::thread::sleep(Duration::from_micros(100));
            }
        }
        self.generation = rules.generation;
        self.current = rules;
    }

    /// Frees the rulesets the workers are done with, and gives the memory
    /// back to the system (so memory stays flat however many reloads).
    pub fn collect_retired(&mut self) {
        let mut freed = false;
        for retired in &mut self.from_workers {
            while let Some(rules) = retired.recv() {
                drop(rules);
                freed = true;
            }
        }
        if freed {
            rampart_core::trim_heap();
        }
    }
}

/// The reload thread's work: read, validate, compile, resolve groups.
fn prepare(path: Option<PathBuf>, running: &Config, generation: u32) -> Result<Prepared, String> {
    let path =
        path.ok_or("this dataplane runs the embedded demo; there is no config file to reload")?;
    let new = Config::load(&path).map_err(|e| e.to_string().trim_end().to_string())?;
    for w in rampart_pipeline::policy::shadow_warnings(&new, 10) {
        crate::log::warning!("{}: {w}", path.display());
    }
    let restart = restart_required(running, &new);
    if !restart.is_empty() {
        return Err(format!(
            "{}: that needs a restart, not a reload",
            restart.join("; ")
        ));
    }
    let (events_gid, control_gid) = socket_groups(&new.events)?;
    let names = export::names(&new);
    let rules = Arc::new(Ruleset::compile(Arc::new(new), generation));
    Ok(Prepared {
        rules,
        names,
        events_gid,
        control_gid,
    })
}

/// `events.socket_group` and `events.control_socket_group`, resolved
/// through NSS (at start and at every reload).
pub fn socket_groups(events: &EventsConfig) -> Result<(Option<u32>, Option<u32>), String> {
    let gid = |key: &str, spec: &Option<String>| {
        spec.as_deref()
            .map(|g| rampart_events::resolve_group(g).map_err(|e| format!("events.{key}: {e}")))
            .transpose()
    };
    Ok((
        gid("socket_group", &events.socket_group)?,
        gid("control_socket_group", &events.control_socket_group)?,
    ))
}

/// Every setting that differs and that a running dataplane cannot change
/// without a restart, one entry each; empty when a reload can apply all.
/// The restart-only keys are declared with the others, in
/// `rampart_pipeline::config::keys`.
pub fn restart_required(old: &Config, new: &Config) -> Vec<String> {
    rampart_pipeline::config::keys::restart_required(old, new)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[[interface]]
name = "ge-0/0/0"
device = "net_null0"
zone = "z"
[zone.z]
"#;

    #[test]
    fn restart_required_names_every_setting() {
        let old = Config::from_str_named(MINIMAL, "old.toml").unwrap();
        let mut new = old.clone();
        assert!(restart_required(&old, &new).is_empty());
        new.events.ring_size *= 2;
        new.events.socket = "/elsewhere/events.sock".into();
        new.flow.session_capacity += 1;
        new.dataplane.workers += 1;
        new.events.aggregate.max_keys += 1;
        new.interfaces[0].mtu = 9000;
        let why = restart_required(&old, &new);
        assert_eq!(
            why,
            [
                "interface ge-0/0/0 mtu changed (1500 -> 9000)",
                "dataplane.workers changed",
                "events.socket changed",
                "events.ring_size changed",
                "events.aggregate.max_keys changed",
                "flow.session-capacity changed"
            ]
        );
        // What a reload applies is not in the list.
        let mut reloadable = old.clone();
        reloadable.events.socket_mode = 0o640;
        *reloadable
            .events
            .rate_limit
            .get_mut(rampart_vocab::EventType::PolicyDeny) = Some(5);
        reloadable.flow.timeouts.udp = 5;
        reloadable
            .events
            .aggregate
            .set_window_ms(rampart_vocab::EventType::PolicyDeny, Some(1000));
        reloadable.events.aggregate.key = rampart_pipeline::config::AggregateKey::Rule;
        reloadable.telemetry.prometheus = Some("127.0.0.1:9999".parse().unwrap());
        assert!(restart_required(&old, &reloadable).is_empty());
    }
}
