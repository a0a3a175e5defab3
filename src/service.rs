//! Rampart as a systemd service (`Type=notify`, `WatchdogSec=`): it says
//! it is ready once its ports are up and its sockets listen, and it feeds
//! the watchdog from the control plane only while every worker is making
//! progress, so a worker stuck in a loop (or on a lock it must never
//! take) stops the pings and systemd restarts the service. The protocol
//! is a datagram to the socket named in `NOTIFY_SOCKET` (the `sd-notify`
//! crate); without it every call here does nothing.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sd_notify::NotifyState;

use crate::log;
use crate::worker::WorkerCounters;

pub struct Service {
    /// `NOTIFY_SOCKET` is set: systemd (or a stand-in) listens.
    notify: bool,
    /// The watchdog interval systemd asked for (`WATCHDOG_USEC`).
    watchdog: Option<Duration>,
    last_ping: Option<Instant>,
    /// Each worker's loop count at the last ping.
    loops_seen: Vec<u64>,
    /// A stall already logged (once until the workers move again).
    stall_logged: bool,
}

impl Service {
    /// What the environment systemd set up says.
    pub fn from_env() -> Service {
        let mut usec = 0;
        let watchdog =
            sd_notify::watchdog_enabled(false, &mut usec).then(|| Duration::from_micros(usec));
        Service {
            notify: std::env::var_os("NOTIFY_SOCKET").is_some(),
            watchdog,
            last_ping: None,
            loops_seen: Vec::new(),
            stall_logged: false,
        }
    }

    fn send(&self, state: &[NotifyState]) {
        if self.notify {
            if let Err(e) = sd_notify::notify(false, state) {
                log::warning!("systemd notify socket: {e}");
            }
        }
    }

    /// The ports are up and the sockets listen.
    pub fn ready(&self, status: &str) {
        if self.notify {
            log::info!(
                "told systemd the service is ready{}",
                self.watchdog.map_or(String::new(), |w| format!(
                    "; watchdog every {} ms while the workers make progress",
                    w.as_millis()
                ))
            );
        }
        self.send(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    pub fn status(&self, status: &str) {
        self.send(&[NotifyState::Status(status)]);
    }

    pub fn stopping(&self) {
        self.send(&[NotifyState::Stopping]);
    }

    /// From the control plane's loop: a watchdog ping at half the
    /// interval, if every worker's loop count moved since the last one.
    pub fn tick(&mut self, workers: &[(u32, Arc<WorkerCounters>)], now: Instant) {
        let Some(interval) = self.watchdog else {
            return;
        };
        if self
            .last_ping
            .is_some_and(|t| now.duration_since(t) < interval / 2)
        {
            return;
        }
        let loops: Vec<u64> = workers
            .iter()
            .map(|(_, c)| c.loops.load(Ordering::Relaxed))
            .collect();
        let stuck: Vec<u32> = workers
            .iter()
            .zip(&loops)
            .zip(self.loops_seen.iter().chain(std::iter::repeat(&u64::MAX)))
            .filter(|((_, now), before)| *now == *before)
            .map(|(((lcore, _), _), _)| *lcore)
            .collect();
        if stuck.is_empty() {
            self.send(&[NotifyState::Watchdog]);
            self.last_ping = Some(now);
            self.loops_seen = loops;
            self.stall_logged = false;
        } else if !self.stall_logged {
            self.stall_logged = true;
            log::error!(
                "worker(s) on lcore {stuck:?} made no progress for {} ms: watchdog pings stopped (systemd restarts the service after WatchdogSec)",
                (interval / 2).as_millis()
            );
        }
    }
}
