//! The peer of a high-availability pair for `--with-sync-peer`: the same
//! sync protocol a standby Rampart runs (`rampart-cluster`'s `Node` over a
//! kernel UDP socket, on the control CPU), acknowledging and counting the
//! active's session records instead of installing them in a dataplane of
//! its own, so the measured node pays the whole cost of syncing (journal,
//! ring, datagrams, acknowledgments) while the machine's two CPUs stay
//! with the node measured.

use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rampart_cluster::node::{Apply, Node};
use rampart_cluster::role::{Path, Settings};

use crate::util::pin_current_thread;

pub struct SyncPeer {
    stop: Arc<AtomicBool>,
    records: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The Rampart node's sync port, and the peer's.
pub const NODE_PORT: u16 = 27_410;
pub const PEER_PORT: u16 = 27_411;

impl SyncPeer {
    /// A standby peer (node 2, priority 100) on 127.0.0.1:[`PEER_PORT`],
    /// its thread on `cpu`.
    pub fn start(cpu: u32) -> anyhow::Result<SyncPeer> {
        let socket = UdpSocket::bind(("127.0.0.1", PEER_PORT))?;
        socket.set_read_timeout(Some(Duration::from_millis(2)))?;
        let stop = Arc::new(AtomicBool::new(false));
        let records = Arc::new(AtomicU64::new(0));
        let (stop2, records2) = (stop.clone(), records.clone());
        let thread = std::thread::spawn(move || {
            pin_current_thread(cpu);
            let t0 = Instant::now();
            let now = || t0.elapsed().as_nanos() as u64;
            let settings = Settings {
                node: 2,
                priority: 100,
                preempt: false,
                hold_ns: 600_000_000,
                second_path: false,
                takeover_on_sync_loss: false,
            };
            let mut node = Node::new(settings, 0x5eed, 100_000_000, 4 << 20, now());
            let mut out = Vec::new();
            let mut buf = [0u8; 2048];
            while !stop2.load(Ordering::Relaxed) {
                if let Ok((len, _)) = socket.recv_from(&mut buf) {
                    for a in node.receive(&buf[..len], Path::SyncLink, now(), &mut out) {
                        if let Apply::Install(r) = a {
                            records2.fetch_add(r.len() as u64, Ordering::Relaxed);
                        }
                    }
                }
                let _ = node.tick(now(), 0, 1, &mut out);
                for d in out.drain(..) {
                    let _ = socket.send_to(&d, ("127.0.0.1", NODE_PORT));
                }
            }
        });
        Ok(SyncPeer {
            stop,
            records,
            thread: Some(thread),
        })
    }

    /// Session records received so far.
    pub fn records(&self) -> u64 {
        self.records.load(Ordering::Relaxed)
    }
}

impl Drop for SyncPeer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The `[cluster]` table of the measured node: active against
/// [`SyncPeer`] (the higher priority), with the sync link as its only
/// path.
pub fn cluster_config() -> String {
    format!(
        r#"[cluster]
name = "bench"
node-id = 1
priority = 200
local = "127.0.0.1:{NODE_PORT}"
peer = "127.0.0.1:{PEER_PORT}"
heartbeat-interval-ms = 100
hold-time-ms = 600
takeover-on-sync-loss = true
"#
    )
}
