//! Open vSwitch with DPDK (Debian's `openvswitch-switch-dpdk`: OVS 3.1 on
//! DPDK 22.11) as a baseline device under test on the vhost-user topology:
//! the generator's virtio_user ports connect to two `dpdkvhostuser` ports,
//! `a` and `b`, of a userspace-datapath bridge whose OpenFlow table holds the
//! profile's policy. It tells what a general-purpose software switch with
//! the same rules does on the same cores.
//!
//! Everything is private to one directory: a fresh database, its own
//! ovsdb-server and ovs-vswitchd as child processes (no service scripts, no
//! systemd, nothing under /var/run/openvswitch), an EAL with its own file
//! prefix that never probes PCI devices and keeps its hugepages in memory
//! (`--in-memory`: no files left behind), and a network namespace of its own
//! so that the tap devices the netdev datapath creates (`ovs-netdev`, the
//! bridge's internal port) never appear on the host or clash with another
//! instance.
//!
//! Counters, as OVS 3.1 reports them for this topology:
//! - PMD packets and cycles (`dpif-netdev/pmd-stats-show`) are live and
//!   cumulative; they are what `cycles_per_packet` and the PMD load are
//!   computed from.
//! - Per-port packet counts are not available: OVS 3.1 reads vhost counters
//!   from the vhost library, but registers only `dpdkvhostuserclient` ports
//!   with per-queue statistics enabled, so for `dpdkvhostuser` ports every
//!   generic counter reads `?`. Drops that OVS does count itself (its
//!   `ovs_*_drops` custom counters, e.g. `ovs_tx_failure_drops` when the
//!   generator's RX ring is full) are available.
//! - Packets an OpenFlow `drop` action discards are counted in the PMD's
//!   packets and in the rule's `n_packets`, not as port drops.

use std::borrow::BorrowMut;
use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

const VSWITCHD: &str = "/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk";
const OVSDB_SERVER: &str = "/usr/sbin/ovsdb-server";
const OVSDB_TOOL: &str = "/usr/bin/ovsdb-tool";
const VSCTL: &str = "/usr/bin/ovs-vsctl";
const APPCTL: &str = "/usr/bin/ovs-appctl";
const OFCTL: &str = "/usr/bin/ovs-ofctl";
const SCHEMA: &str = "/usr/share/openvswitch/vswitch.ovsschema";
const TASKSET: &str = "/usr/bin/taskset";
const UNSHARE: &str = "/usr/bin/unshare";

/// The bridge; also a tap device name (at most 15 bytes), but only inside
/// the private network namespace.
const BRIDGE: &str = "rampart-ovs";
/// The two vhost-user ports and the OpenFlow port numbers they ask for.
const PORTS: [(&str, u32); 2] = [("a", 1), ("b", 2)];
/// Seconds any one OVS client command may take.
const CLIENT_TIMEOUT_S: u32 = 30;
/// `sun_path` is 108 bytes with its terminating NUL.
const MAX_SOCKET_PATH: usize = 107;

/// Tells the EAL file prefixes of several instances in one process apart.
static INSTANCE: AtomicU32 = AtomicU32::new(0);

/// A private ovsdb-server and ovs-vswitchd with a netdev bridge of two
/// vhost-user server ports.
pub struct Ovs {
    dir: PathBuf,
    socket_a: PathBuf,
    socket_b: PathBuf,
    /// The EAL's `--file-prefix`, for removing its run directory at the end.
    eal_prefix: String,
    ovsdb: Option<Child>,
    vswitchd: Option<Child>,
}

/// One bridge port's counters, from OVS's point of view.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OvsPortStats {
    /// Packets OVS received from the port (the generator sent into it);
    /// `None` where OVS does not report it (all `dpdkvhostuser` ports on OVS
    /// 3.1, see the module doc).
    pub rx: Option<u64>,
    /// Packets OVS sent to the port; `None` where OVS does not report it.
    pub tx: Option<u64>,
    /// Packets from the port that OVS dropped before its datapath (ingress
    /// policing): the generic counter, else `ovs_rx_qos_drops`.
    pub rx_dropped: u64,
    /// Packets OVS meant for the port but could not send (ring full, MTU,
    /// egress policing): the generic counter, else the sum of the
    /// `ovs_tx_*_drops` counters.
    pub tx_dropped: u64,
}

/// OVS's counters at one instant.
#[derive(Clone, Debug)]
pub struct OvsSample {
    pub at: std::time::Instant,
    /// Per bridge port name ("a", "b"): packets OVS received from / sent to
    /// it, and drops.
    pub ports: BTreeMap<String, OvsPortStats>,
    /// PMD thread counters (summed over PMD threads, the main thread's
    /// non-PMD work left out): packets received, cycles spent in iterations
    /// that processed packets, and all cycles (busy + idle), since start.
    pub pmd_packets: u64,
    pub pmd_busy_cycles: u64,
    pub pmd_total_cycles: u64,
}

impl Ovs {
    /// Starts a private ovsdb-server and ovs-vswitchd with DPDK (all state,
    /// sockets, db, logs, pid files under `dir`; nothing in
    /// /var/run/openvswitch, no systemd, no service scripts),
    /// `socket_mem_mb` MB of hugepage memory, one PMD thread pinned to CPU
    /// `pmd_cpu`, the vswitchd main/handler threads on `control_cpu`; a
    /// netdev (userspace datapath) bridge with two dpdkvhostuser ports named
    /// "a" and "b" (OVS is the vhost-user server). Returns once both vhost
    /// sockets exist and OVS is ready for flows. Errors name what failed
    /// with the tail of ovs-vswitchd.log.
    ///
    /// The caller provides the hugepages (mounted hugetlbfs, enough free 2 MB
    /// pages for `socket_mem_mb`). The bridge starts in secure fail mode
    /// with an empty table: it drops everything until [`Ovs::set_flows`].
    pub fn start(
        dir: &Path,
        pmd_cpu: u32,
        control_cpu: u32,
        socket_mem_mb: u32,
    ) -> anyhow::Result<Ovs> {
        for bin in [
            VSWITCHD,
            OVSDB_SERVER,
            OVSDB_TOOL,
            VSCTL,
            APPCTL,
            OFCTL,
            SCHEMA,
            TASKSET,
            UNSHARE,
        ] {
            if !Path::new(bin).exists() {
                bail!("{bin} is missing (apt-get install openvswitch-switch-dpdk util-linux)");
            }
        }
        if pmd_cpu >= 64 {
            bail!("PMD CPU {pmd_cpu}: only CPUs 0..63 are supported in the mask");
        }
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        // OVS resolves relative paths against its own working directory.
        let dir = fs::canonicalize(dir).with_context(|| format!("resolving {}", dir.display()))?;
        let longest = dir.join(format!("{BRIDGE}.snoop"));
        if longest.as_os_str().len() > MAX_SOCKET_PATH {
            bail!(
                "{}: too long for a unix socket path (at most {MAX_SOCKET_PATH} bytes)",
                longest.display()
            );
        }
        // A fresh database and log each time; stale sockets would make the
        // binds fail.
        for name in [
            "conf.db",
            ".conf.db.~lock~",
            "db.sock",
            "ovsdb-server.ctl",
            "ovsdb-server.pid",
            "ovsdb-server.log",
            "ovsdb-server.stderr",
            "ovs-vswitchd.ctl",
            "ovs-vswitchd.pid",
            "ovs-vswitchd.log",
            "ovs-vswitchd.stderr",
            "a",
            "b",
            &format!("{BRIDGE}.mgmt"),
            &format!("{BRIDGE}.snoop"),
        ] {
            let p = dir.join(name);
            if p.symlink_metadata().is_ok() {
                fs::remove_file(&p).with_context(|| format!("removing stale {}", p.display()))?;
            }
        }
        let n = INSTANCE.fetch_add(1, Ordering::Relaxed);
        let mut ovs = Ovs {
            socket_a: dir.join("a"),
            socket_b: dir.join("b"),
            eal_prefix: format!("rampart-ovs-{}-{n}", std::process::id()),
            dir,
            ovsdb: None,
            vswitchd: None,
        };
        ovs.start_inner(pmd_cpu, control_cpu, socket_mem_mb)?;
        Ok(ovs)
    }

    fn start_inner(
        &mut self,
        pmd_cpu: u32,
        control_cpu: u32,
        socket_mem_mb: u32,
    ) -> anyhow::Result<()> {
        let db = self.path("conf.db");
        run(self.command(OVSDB_TOOL).arg("create").arg(&db).arg(SCHEMA))
            .context("ovsdb-tool create")?;

        // taskset execs the daemon, so each child's pid is the daemon's.
        let mut c = self.command(TASKSET);
        c.args(["-c", &control_cpu.to_string(), OVSDB_SERVER])
            .arg(&db)
            .arg(format!("--remote=punix:{}", self.path("db.sock").display()))
            .arg(format!(
                "--unixctl={}",
                self.path("ovsdb-server.ctl").display()
            ))
            .arg(format!(
                "--pidfile={}",
                self.path("ovsdb-server.pid").display()
            ))
            .arg(format!(
                "--log-file={}",
                self.path("ovsdb-server.log").display()
            ))
            .arg("-vconsole:err");
        self.ovsdb = Some(
            self.spawn(c, "ovsdb-server.stderr")
                .context("starting ovsdb-server")?,
        );
        self.wait_until("ovsdb-server's db.sock", Duration::from_secs(10), |o| {
            Ok(o.path("db.sock").exists())
        })?;

        run(self.vsctl(&["--no-wait", "init"]))
            .map_err(|e| self.fail(&format!("ovs-vsctl init: {e:#}")))?;
        // Only what this topology needs; the rest stays at OVS's defaults,
        // so that the baseline is OVS as shipped.
        let dpdk_extra = format!(
            "other_config:dpdk-extra=\"--no-pci --in-memory --no-telemetry --file-prefix={}\"",
            self.eal_prefix
        );
        let mem = format!("other_config:dpdk-socket-mem={socket_mem_mb}");
        let limit = format!("other_config:dpdk-socket-limit={socket_mem_mb}");
        let pmd_mask = format!("other_config:pmd-cpu-mask={:#x}", 1u64 << pmd_cpu);
        run(self.vsctl(&[
            "--no-wait",
            "set",
            "Open_vSwitch",
            ".",
            "other_config:dpdk-init=true",
            &mem,
            &limit,
            &dpdk_extra,
            &pmd_mask,
            // Userspace datapath upcalls run in the PMD itself; these
            // threads only revalidate, and share the control CPU.
            "other_config:n-handler-threads=1",
            "other_config:n-revalidator-threads=1",
        ]))
        .map_err(|e| self.fail(&format!("ovs-vsctl set other_config: {e:#}")))?;

        // The EAL's main lcore is the first CPU of the process's affinity,
        // so taskset puts it, and every thread but the PMD, on control_cpu.
        // unshare also execs; the network namespace dies with vswitchd.
        let mut c = self.command(TASKSET);
        c.args([
            "-c",
            &control_cpu.to_string(),
            UNSHARE,
            "--net",
            "--",
            VSWITCHD,
        ])
        .arg(format!("unix:{}", self.path("db.sock").display()))
        .arg(format!(
            "--unixctl={}",
            self.path("ovs-vswitchd.ctl").display()
        ))
        .arg(format!(
            "--pidfile={}",
            self.path("ovs-vswitchd.pid").display()
        ))
        .arg(format!(
            "--log-file={}",
            self.path("ovs-vswitchd.log").display()
        ))
        .arg("-vconsole:err");
        self.vswitchd = Some(
            self.spawn(c, "ovs-vswitchd.stderr")
                .context("starting ovs-vswitchd")?,
        );
        self.wait_until(
            "DPDK initialisation in ovs-vswitchd",
            Duration::from_secs(60),
            |o| {
                let out =
                    run(o.vsctl(&["--no-wait", "get", "Open_vSwitch", ".", "dpdk_initialized"]))?;
                Ok(out.trim() == "true")
            },
        )?;

        // Without --no-wait, ovs-vsctl returns once vswitchd has applied it.
        let mut args: Vec<String> = vec![
            "add-br".into(),
            BRIDGE.into(),
            "--".into(),
            "set".into(),
            "Bridge".into(),
            BRIDGE.into(),
            "datapath_type=netdev".into(),
            "fail_mode=secure".into(),
            // OpenFlow 1.3 for the conntrack baseline (ct actions, tables).
            "protocols=OpenFlow10,OpenFlow13,OpenFlow14,OpenFlow15".into(),
        ];
        for (name, ofport) in PORTS {
            args.extend([
                "--".into(),
                "add-port".into(),
                BRIDGE.into(),
                name.into(),
                "--".into(),
                "set".into(),
                "Interface".into(),
                name.into(),
                "type=dpdkvhostuser".into(),
                format!("ofport_request={ofport}"),
            ]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(self.vsctl(&args))
            .map_err(|e| self.fail(&format!("adding the bridge and ports: {e:#}")))?;
        for (name, ofport) in PORTS {
            let got = run(self.vsctl(&["get", "Interface", name, "ofport"]))
                .map_err(|e| self.fail(&format!("port {name}: {e:#}")))?;
            if got.trim() != ofport.to_string() {
                let error =
                    run(self.vsctl(&["get", "Interface", name, "error"])).unwrap_or_default();
                return Err(self.fail(&format!(
                    "port {name} got OpenFlow port {} (asked for {ofport}): {}",
                    got.trim(),
                    error.trim()
                )));
            }
        }
        self.wait_until(
            "the vhost-user sockets a and b",
            Duration::from_secs(10),
            |o| Ok(o.socket_a.exists() && o.socket_b.exists()),
        )?;
        let pmd = format!("core_id {pmd_cpu}:");
        self.wait_until(
            &format!("a PMD thread on CPU {pmd_cpu}"),
            Duration::from_secs(10),
            |o| Ok(run(o.appctl(&["dpif-netdev/pmd-rxq-show"]))?.contains(&pmd)),
        )?;
        run(self.ofctl("show")).map_err(|e| self.fail(&format!("ovs-ofctl show: {e:#}")))?;
        Ok(())
    }

    pub fn socket_a(&self) -> &std::path::Path {
        &self.socket_a
    }

    pub fn socket_b(&self) -> &std::path::Path {
        &self.socket_b
    }

    /// Replaces the bridge's whole flow table with `flows` (ovs-ofctl
    /// add-flows syntax; `in_port` and `output` may use the port names a and
    /// b, which ovs-ofctl resolves itself). Then purges the datapath's cached
    /// megaflows, so that no packet is handled by the old table's.
    pub fn set_flows(&self, flows: &str) -> anyhow::Result<()> {
        let mut c = self.ofctl("replace-flows");
        if flows.contains("ct(") {
            // Connection tracking and several tables need OpenFlow 1.3.
            c.args(["-O", "OpenFlow13"]);
        }
        c.arg("-")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().context("running ovs-ofctl replace-flows")?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(flows.as_bytes())
                .context("writing flows to ovs-ofctl")?;
        }
        let out = child
            .wait_with_output()
            .context("running ovs-ofctl replace-flows")?;
        if !out.status.success() {
            return Err(self.fail_with(
                &format!(
                    "ovs-ofctl replace-flows: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
                3,
            ));
        }
        run(self.appctl(&["revalidator/purge"]))
            .map_err(|e| self.fail(&format!("revalidator/purge: {e:#}")))?;
        Ok(())
    }

    /// PMD counters and per-port counters; `at` is the middle of the PMD
    /// counter request, the one rates are computed from.
    pub fn sample(&self) -> anyhow::Result<OvsSample> {
        let t0 = Instant::now();
        let pmd = run(self.appctl(&["dpif-netdev/pmd-stats-show"]))
            .map_err(|e| self.fail(&format!("pmd-stats-show: {e:#}")))?;
        let at = t0 + (Instant::now() - t0) / 2;
        let (pmd_packets, pmd_busy_cycles, pmd_total_cycles) = parse_pmd_stats(&pmd)?;
        // OpenFlow 1.4 replies carry the custom (drop) counters too.
        let mut c = self.ofctl("dump-ports");
        c.args(["-O", "OpenFlow14", "--names"]);
        let dump = run(c).map_err(|e| self.fail(&format!("ovs-ofctl dump-ports: {e:#}")))?;
        let ports = parse_dump_ports(&dump)?;
        for (name, _) in PORTS {
            if !ports.contains_key(name) {
                bail!("ovs-ofctl dump-ports has no port {name}:\n{dump}");
            }
        }
        Ok(OvsSample {
            at,
            ports,
            pmd_packets,
            pmd_busy_cycles,
            pmd_total_cycles,
        })
    }

    /// Clean stop: ovs-appctl exit for vswitchd and ovsdb-server, wait, kill
    /// on timeout (then an error, after both are gone). Drop must also kill
    /// whatever is left (never leave a busy-polling PMD running).
    pub fn stop(mut self) -> anyhow::Result<()> {
        let mut problems = Vec::new();
        if let Some(child) = self.vswitchd.take() {
            let r = self.exit_daemon(child, "ovs-vswitchd.ctl", Duration::from_secs(15));
            if let Err(e) = r {
                problems.push(format!(
                    "ovs-vswitchd: {e:#}\n{}",
                    tail(&self.path("ovs-vswitchd.log"), 20)
                ));
            }
        }
        if let Some(child) = self.ovsdb.take() {
            if let Err(e) = self.exit_daemon(child, "ovsdb-server.ctl", Duration::from_secs(5)) {
                problems.push(format!("ovsdb-server: {e:#}"));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            bail!("stopping OVS: {}", problems.join("; "))
        }
    }

    /// Asks a daemon to exit, then kills it if it has not within `timeout`.
    fn exit_daemon(&self, mut child: Child, ctl: &str, timeout: Duration) -> anyhow::Result<()> {
        let asked = run(self
            .command(APPCTL)
            .arg(format!("--timeout={CLIENT_TIMEOUT_S}"))
            .arg("-t")
            .arg(self.path(ctl))
            .arg("exit"));
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(s) = child.try_wait()? {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "did not exit within {:.0} s of ovs-appctl exit ({}); killed",
                    timeout.as_secs_f64(),
                    asked.err().map_or("sent".into(), |e| format!("{e:#}"))
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        if !status.success() {
            bail!("exited with {status}");
        }
        Ok(())
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// A command with OVS's directories pointed at `dir`, so nothing falls
    /// back to the system's.
    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        for var in ["OVS_RUNDIR", "OVS_LOGDIR", "OVS_DBDIR", "OVS_SYSCONFDIR"] {
            c.env(var, &self.dir);
        }
        c.current_dir(&self.dir).stdin(Stdio::null());
        c
    }

    fn vsctl(&self, args: &[&str]) -> Command {
        let mut c = self.command(VSCTL);
        c.arg(format!("--db=unix:{}", self.path("db.sock").display()))
            .arg(format!("--timeout={CLIENT_TIMEOUT_S}"))
            .args(args);
        c
    }

    fn appctl(&self, args: &[&str]) -> Command {
        let mut c = self.command(APPCTL);
        c.arg(format!("--timeout={CLIENT_TIMEOUT_S}"))
            .arg("-t")
            .arg(self.path("ovs-vswitchd.ctl"))
            .args(args);
        c
    }

    /// `ovs-ofctl SUBCOMMAND unix:DIR/BRIDGE.mgmt`; options go after.
    fn ofctl(&self, subcommand: &str) -> Command {
        let mut c = self.command(OFCTL);
        c.arg(format!("--timeout={CLIENT_TIMEOUT_S}"))
            .arg(subcommand)
            .arg(format!(
                "unix:{}",
                self.path(&format!("{BRIDGE}.mgmt")).display()
            ));
        c
    }

    fn spawn(&self, mut c: Command, stderr_name: &str) -> anyhow::Result<Child> {
        let err = fs::File::create(self.path(stderr_name))?;
        c.stdout(err.try_clone()?).stderr(err);
        Ok(c.spawn()?)
    }

    /// Polls `ready` until it holds, failing early if a daemon has exited.
    fn wait_until(
        &mut self,
        what: &str,
        timeout: Duration,
        mut ready: impl FnMut(&Ovs) -> anyhow::Result<bool>,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let mut last = String::new();
        loop {
            if let Some((name, status)) = self.exited()? {
                return Err(self.fail(&format!("waiting for {what}: {name} exited with {status}")));
            }
            match ready(self) {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(e) => last = format!(" (last: {e:#})"),
            }
            if Instant::now() > deadline {
                return Err(self.fail(&format!(
                    "no {what} after {:.0} s{last}",
                    timeout.as_secs_f64()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The first daemon that is no longer running, with its status.
    fn exited(&mut self) -> anyhow::Result<Option<(&'static str, ExitStatus)>> {
        for (name, child) in [
            ("ovsdb-server", &mut self.ovsdb),
            ("ovs-vswitchd", &mut self.vswitchd),
        ] {
            if let Some(c) = child {
                if let Some(s) = c.try_wait()? {
                    return Ok(Some((name, s)));
                }
            }
        }
        Ok(None)
    }

    /// An error naming `what`, with the logs that explain it.
    fn fail(&self, what: &str) -> anyhow::Error {
        self.fail_with(what, 20)
    }

    /// An error naming `what`, with the last `lines` lines of each log.
    fn fail_with(&self, what: &str, lines: usize) -> anyhow::Error {
        let mut msg = format!("OVS: {what}");
        for name in [
            "ovs-vswitchd.log",
            "ovs-vswitchd.stderr",
            "ovsdb-server.stderr",
        ] {
            let t = tail(&self.path(name), lines);
            // Each daemon prints where its log is before -vconsole applies.
            if t.lines().any(|l| !l.contains("opened log file")) {
                msg.push_str(&format!("\n--- {name} (tail) ---\n{t}"));
            }
        }
        anyhow::anyhow!(msg)
    }
}

impl Drop for Ovs {
    fn drop(&mut self) {
        // vswitchd first: its PMD busy-polls a CPU until it is gone.
        for mut child in [self.vswitchd.take(), self.ovsdb.take()]
            .into_iter()
            .flatten()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
        // --in-memory leaves only the EAL's (empty) run directory behind.
        let _ = fs::remove_dir_all(Path::new("/var/run/dpdk").join(&self.eal_prefix));
    }
}

/// Runs a client command to completion: its stdout, or an error with its
/// stderr.
/// The profile's stateless OpenFlow policy behind connection tracking, as a
/// stateful firewall runs it: every IP packet goes through `ct` (table 0);
/// in table 1 packets of tracked connections (established or related)
/// pass both ways, a new connection from side a is committed where a
/// policy rule forwards it (its other rules apply to new connections
/// only), and anything else (side b's new connections, invalid packets)
/// is dropped. The stateless rules that let side b's traffic back are
/// left out: only conntrack lets replies in.
pub fn conntrack_flows(stateless: &str) -> String {
    let mut out = String::from(
        "table=0,priority=100,ip,actions=ct(table=1)
table=0,priority=100,ipv6,actions=ct(table=1)
table=0,priority=0,actions=drop
table=1,priority=65535,ct_state=+trk+est,in_port=a,actions=output:b
table=1,priority=65535,ct_state=+trk+rel,in_port=a,actions=output:b
table=1,priority=65535,ct_state=+trk+est,in_port=b,actions=output:a
table=1,priority=65535,ct_state=+trk+rel,in_port=b,actions=output:a
",
    );
    for line in stateless.lines().map(str::trim) {
        if line.is_empty() || line.contains("in_port=b") {
            continue;
        }
        let Some((matches, actions)) = line.split_once("actions=") else {
            continue;
        };
        let matches = matches.trim_end_matches(',');
        let (priority, rest) = match matches.split_once(',') {
            Some((p, rest)) if p.starts_with("priority=") => (p, rest),
            _ if matches.starts_with("priority=") => (matches, ""),
            _ => ("priority=1", matches),
        };
        if rest.is_empty() {
            // The table's last rule (drop everything else).
            out.push_str(&format!("table=1,{priority},actions={actions}\n"));
            continue;
        }
        let actions = match actions.strip_prefix("output:") {
            Some(port) => format!("ct(commit),output:{port}"),
            None => actions.to_string(),
        };
        out.push_str(&format!(
            "table=1,{priority},ct_state=+trk+new,{rest},actions={actions}\n"
        ));
    }
    out
}

fn run(mut c: impl BorrowMut<Command>) -> anyhow::Result<String> {
    let c = c.borrow_mut();
    let program = c.get_program().to_string_lossy().into_owned();
    let out = c
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {program}"))?;
    if !out.status.success() {
        bail!(
            "{program} {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The last `lines` lines of a file, empty if it cannot be read.
fn tail(path: &Path, lines: usize) -> String {
    let s = fs::read_to_string(path).unwrap_or_default();
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

/// `pmd-stats-show` summed over its "pmd thread" blocks: (packets received,
/// processing cycles, idle + processing cycles). OVS leaves the cycle lines
/// out while a PMD has counted no cycles, so a missing one is zero.
fn parse_pmd_stats(text: &str) -> anyhow::Result<(u64, u64, u64)> {
    let (mut pmds, mut packets, mut busy, mut idle) = (0, 0u64, 0u64, 0u64);
    let mut in_pmd = false;
    for line in text.lines() {
        if line.trim().is_empty() {
            continue;
        }
        if !line.starts_with(' ') {
            in_pmd = line.starts_with("pmd thread ");
            pmds += usize::from(in_pmd);
            continue;
        }
        if !in_pmd {
            continue;
        }
        let Some((key, value)) = line.trim().split_once(':') else {
            continue;
        };
        let counter = match key {
            "packets received" => &mut packets,
            "processing cycles" => &mut busy,
            "idle cycles" => &mut idle,
            _ => continue,
        };
        let n = value.split_whitespace().next().unwrap_or("");
        *counter += n
            .parse::<u64>()
            .with_context(|| format!("pmd-stats-show: {key}: {n:?}"))?;
    }
    if pmds == 0 {
        bail!("pmd-stats-show lists no PMD thread:\n{text}");
    }
    Ok((packets, busy, busy + idle))
}

/// What one port's lines in `ovs-ofctl dump-ports` say; `None` for `?`.
#[derive(Default)]
struct RawPort {
    rx: Option<u64>,
    tx: Option<u64>,
    rx_drop: Option<u64>,
    tx_drop: Option<u64>,
    custom: BTreeMap<String, u64>,
}

/// `pkts` and `drop` of one "rx ..." or "tx ..." line.
fn pkts_and_drop(fields: &str) -> (Option<u64>, Option<u64>) {
    let (mut pkts, mut drop) = (None, None);
    for field in fields.split(',') {
        match field.trim().split_once('=') {
            Some(("pkts", v)) => pkts = v.parse().ok(),
            Some(("drop", v)) => drop = v.parse().ok(),
            _ => {}
        }
    }
    (pkts, drop)
}

/// `ovs-ofctl -O OpenFlow14 --names dump-ports`, per port name (LOCAL, the
/// bridge's own port, left out).
fn parse_dump_ports(text: &str) -> anyhow::Result<BTreeMap<String, OvsPortStats>> {
    let mut raw: Vec<(String, RawPort)> = Vec::new();
    let mut in_custom = false;
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("port ") {
            let Some((name, fields)) = rest.split_once(':') else {
                bail!("dump-ports: unexpected line {line:?}");
            };
            let (rx, rx_drop) = pkts_and_drop(fields.trim().strip_prefix("rx ").unwrap_or(fields));
            let name = name.trim().trim_matches('"').to_string();
            raw.push((
                name,
                RawPort {
                    rx,
                    rx_drop,
                    ..RawPort::default()
                },
            ));
            in_custom = false;
            continue;
        }
        let Some((_, port)) = raw.last_mut() else {
            continue;
        };
        if let Some(fields) = line.strip_prefix("tx ") {
            (port.tx, port.tx_drop) = pkts_and_drop(fields);
        } else if line == "CUSTOM Statistics" {
            in_custom = true;
        } else if in_custom {
            for field in line.split(',') {
                if let Some((k, v)) = field.trim().split_once('=') {
                    let v = v.parse().with_context(|| format!("dump-ports: {k}={v}"))?;
                    port.custom.insert(k.to_string(), v);
                }
            }
        }
    }
    let mut ports = BTreeMap::new();
    for (name, p) in raw {
        if name == "LOCAL" {
            continue;
        }
        let rx_dropped = p
            .rx_drop
            .or_else(|| p.custom.get("ovs_rx_qos_drops").copied())
            .with_context(|| format!("dump-ports: port {name} reports no RX drop counter"))?;
        let tx_custom: Vec<u64> = [
            "ovs_tx_failure_drops",
            "ovs_tx_mtu_exceeded_drops",
            "ovs_tx_qos_drops",
            "ovs_tx_invalid_hwol_drops",
        ]
        .iter()
        .filter_map(|k| p.custom.get(*k).copied())
        .collect();
        let tx_dropped = p
            .tx_drop
            .or_else(|| (!tx_custom.is_empty()).then(|| tx_custom.iter().sum()))
            .with_context(|| format!("dump-ports: port {name} reports no TX drop counter"))?;
        ports.insert(
            name,
            OvsPortStats {
                rx: p.rx,
                tx: p.tx,
                rx_dropped,
                tx_dropped,
            },
        );
    }
    Ok(ports)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ovs-appctl dpif-netdev/pmd-stats-show` after an allow run (OVS 3.1.0,
    /// one PMD on CPU 1).
    const PMD_STATS: &str = "pmd thread numa_id 0 core_id 1:
  packets received: 53657728
  packet recirculations: 0
  avg. datapath passes per packet: 1.00
  phwol hits: 0
  mfex opt hits: 0
  simple match hits: 53657696
  emc hits: 0
  smc hits: 0
  megaflow hits: 31
  avg. subtable lookups per megaflow hit: 1.00
  miss with success upcall: 1
  miss with failed upcall: 0
  avg. packets per output batch: 32.00
  idle cycles: 28223476582 (68.94%)
  processing cycles: 12717067042 (31.06%)
  avg cycles per packet: 762.99 (40940543624/53657728)
  avg processing cycles per packet: 237.00 (12717067042/53657728)
main thread:
  packets received: 0
  packet recirculations: 0
  avg. datapath passes per packet: 0.00
  phwol hits: 0
  mfex opt hits: 0
  simple match hits: 0
  emc hits: 0
  smc hits: 0
  megaflow hits: 0
  avg. subtable lookups per megaflow hit: 0.00
  miss with success upcall: 0
  miss with failed upcall: 0
  avg. packets per output batch: 0.00
";

    /// `ovs-ofctl -O OpenFlow14 --names dump-ports` while the generator was
    /// connected: vhost server ports have no generic counters on OVS 3.1.
    const DUMP_PORTS_OF14: &str = "OFPST_PORT reply (OF1.4) (xid=0x2): 3 ports
  port LOCAL: rx pkts=0, bytes=0, drop=0, errs=0, frame=0, over=0, crc=0
           tx pkts=0, bytes=0, drop=0, errs=0, coll=0
           duration=159.617s
  port  a: rx pkts=?, bytes=?, drop=?, errs=?, frame=?, over=?, crc=?
           tx pkts=?, bytes=?, drop=?, errs=?, coll=?
           duration=159.617s
           CUSTOM Statistics
                      ovs_tx_retries=0, ovs_tx_failure_drops=0, ovs_tx_mtu_exceeded_drops=0,
                      ovs_tx_qos_drops=0, ovs_rx_qos_drops=0, ovs_tx_invalid_hwol_drops=0,
  port  b: rx pkts=?, bytes=?, drop=?, errs=?, frame=?, over=?, crc=?
           tx pkts=?, bytes=?, drop=?, errs=?, coll=?
           duration=159.617s
           CUSTOM Statistics
                      ovs_tx_retries=0, ovs_tx_failure_drops=23296, ovs_tx_mtu_exceeded_drops=0,
                      ovs_tx_qos_drops=0, ovs_rx_qos_drops=0, ovs_tx_invalid_hwol_drops=0,
";

    /// The same request in OpenFlow 1.0, which has no custom counters.
    const DUMP_PORTS_OF10: &str = "OFPST_PORT reply (xid=0x2): 3 ports
  port LOCAL: rx pkts=0, bytes=0, drop=0, errs=0, frame=0, over=0, crc=0
           tx pkts=0, bytes=0, drop=0, errs=0, coll=0
  port  a: rx pkts=?, bytes=?, drop=?, errs=?, frame=?, over=?, crc=?
           tx pkts=?, bytes=?, drop=?, errs=?, coll=?
  port  b: rx pkts=?, bytes=?, drop=?, errs=?, frame=?, over=?, crc=?
           tx pkts=?, bytes=?, drop=?, errs=?, coll=?
";

    #[test]
    fn conntrack_flows_commit_new_connections_and_let_only_tracked_replies_back() {
        let flows = conntrack_flows(
            "priority=200,in_port=b,actions=output:a
priority=100,tcp,in_port=a,nw_dst=10.1.0.0/24,tp_dst=80,actions=output:b
priority=100,tcp,in_port=a,nw_dst=10.200.0.1,tp_dst=80,actions=drop
priority=0,actions=drop
",
        );
        let lines: Vec<&str> = flows.lines().collect();
        assert!(lines.contains(&"table=0,priority=100,ip,actions=ct(table=1)"));
        assert!(lines.contains(
            &"table=1,priority=100,ct_state=+trk+new,tcp,in_port=a,nw_dst=10.1.0.0/24,tp_dst=80,actions=ct(commit),output:b"
        ));
        assert!(lines.contains(
            &"table=1,priority=100,ct_state=+trk+new,tcp,in_port=a,nw_dst=10.200.0.1,tp_dst=80,actions=drop"
        ));
        assert!(lines.contains(&"table=1,priority=0,actions=drop"));
        assert!(
            lines.contains(&"table=1,priority=65535,ct_state=+trk+est,in_port=b,actions=output:a")
        );
        assert!(
            !flows.contains("priority=200"),
            "no stateless way back: {flows}"
        );
    }

    #[test]
    fn pmd_stats_sum_pmd_threads_only() {
        let (packets, busy, total) = parse_pmd_stats(PMD_STATS).unwrap();
        assert_eq!(packets, 53657728);
        assert_eq!(busy, 12717067042);
        // The total OVS itself printed for "avg cycles per packet".
        assert_eq!(total, 40940543624);
    }

    #[test]
    fn pmd_stats_before_any_cycles() {
        // OVS prints no cycle lines while a PMD has counted none.
        let text: String = PMD_STATS
            .lines()
            .filter(|l| !l.contains("cycles"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(parse_pmd_stats(&text).unwrap(), (53657728, 0, 0));
    }

    #[test]
    fn pmd_stats_without_a_pmd_is_an_error() {
        let main_only = &PMD_STATS[PMD_STATS.find("main thread:").unwrap()..];
        assert!(parse_pmd_stats(main_only).is_err());
    }

    #[test]
    fn dump_ports_vhost_server_ports() {
        let ports = parse_dump_ports(DUMP_PORTS_OF14).unwrap();
        assert_eq!(ports.keys().collect::<Vec<_>>(), ["a", "b"]);
        let none = OvsPortStats::default();
        assert_eq!(ports["a"], none);
        assert_eq!(
            ports["b"],
            OvsPortStats {
                tx_dropped: 23296,
                ..none
            }
        );
    }

    #[test]
    fn dump_ports_generic_counters() {
        let ports = parse_dump_ports(&DUMP_PORTS_OF14.replacen(" LOCAL:", " c:", 1)).unwrap();
        assert_eq!(
            ports["c"],
            OvsPortStats {
                rx: Some(0),
                tx: Some(0),
                rx_dropped: 0,
                tx_dropped: 0,
            }
        );
    }

    #[test]
    fn dump_ports_without_any_drop_counter_is_an_error() {
        assert!(parse_dump_ports(DUMP_PORTS_OF10).is_err());
    }
}
