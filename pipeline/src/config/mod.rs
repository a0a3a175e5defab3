//! The config model, loader and validator.
//!
//! A config is a TOML file (format in `INTERFACES.md`). [`Config::load`] and
//! [`Config::from_str_named`] parse it, check it and resolve it into a
//! [`Config`]: every reference is checked and replaced by an index, address
//! sets are flattened into prefix lists, application port ranges are parsed.
//! Loading reports *every* problem it finds ([`ConfigErrors`]), each with
//! file, line, column and the dotted path of the setting:
//!
//! ```text
//! rampart.toml:41:25: policy[allow-web].destination-address: unknown address-book entry 'webb' (did you mean 'web'?)
//! ```
//!
//! # Identities
//!
//! Zones, interfaces, screens, policies, filters and filter terms are
//! identified by their index in the vectors of [`Config`] (terms by their
//! index inside their filter); events carry these ids. Zones, screens,
//! address-book entries and applications keep the order of the file.
//!
//! # Field paths in errors
//!
//! Tables are dotted (`zone.untrust.screen`, `events.rate_limit.policy_deny`);
//! entries of `[[interface]]`, `[[policy]]`, `[[filter]]` and `[[filter.term]]`
//! are named by their `name` when they have one, else by their 0-based index:
//! `interface[ge-0/0/1].peer`, `policy[3].then`, `filter[protect].term[no-telnet].from.protocol`.
//!
//! # Choices made where the format leaves room
//!
//! - Names (of interfaces, zones, screens, address-book entries,
//!   applications, policies, filters, terms) are non-empty and contain no
//!   whitespace. Names are unique within their kind.
//! - Interfaces: `peer` is symmetric; naming it on one side is enough. Two
//!   interfaces cannot name the same peer, and a peer that names a third
//!   interface is an error. `device` is a vdev (`net_pcap0,rx_pcap=a.pcap`;
//!   the driver prefix is one of `net_`, `eth_`, `virtio_user`, `crypto_`,
//!   `event_`, `baseband_`, `dma_`, `raw_`) or a PCI address (`0000:03:00.0`
//!   or `03:00.0`). Two interfaces cannot use the same DPDK port. A known
//!   driver's arguments must be keys it takes ([`vdev::DRIVERS`]); the
//!   files and interfaces they name are checked only when loading on a
//!   [`Host`] ([`Config::load_on_host`]).
//! - Address book: `name = ["prefix", ...]` or `name = { address-set =
//!   ["other", ...], address = ["prefix", ...] }` (both keys optional). Sets
//!   nest; cycles are errors. `any`, `any-ipv4` and `any-ipv6` are built in
//!   and reserved (`any-ipv6` excludes the IPv4-mapped range). Wherever an
//!   address name is expected, a literal prefix or address is accepted too.
//! - Applications: `name = { protocol, destination-port, source-port,
//!   icmp-type, icmp-code }` (`protocol` is required; ports need tcp, udp or
//!   sctp; icmp fields need icmp or icmp6), or `name = { application-set =
//!   [...] }` (sets nest). Built-ins (listed in [`BUILTIN_APPLICATIONS`])
//!   come after the file's own applications in [`Config::applications`];
//!   their names (`any`, `junos-*`) are reserved.
//! - Policies: `from-zone` / `to-zone` absent or `"any"` means any zone. A
//!   policy with both zones is a zone-pair policy; any other is *global*
//!   (`global = true`; a zone it does name still has to match).
//!   `source-address`, `destination-address`, `application` and `then` are
//!   required (a string or a list of strings). `log` is a list of
//!   `"session-init"` / `"session-close"`, or a boolean: `true` means both.
//! - `[default-policy]`: `then = "deny" | "permit" | "reject"` (default
//!   deny), `log = bool` (default false): log the sessions it permits, or the
//!   packets it denies.
//! - Filters: a term's `from` absent (or empty) matches everything.
//!   Address conditions take prefixes or address-book names; a trailing
//!   ` except` marks an exception, Junos style:
//!   `source-address = ["10.0.0.0/8", "10.1.0.0/16 except"]` (the longest
//!   listed prefix that contains the address decides, see
//!   [`AddrMatch::matches_list`]). `protocol`, ports, `icmp-type`,
//!   `icmp-code` and `dscp` take one value or a list (any of them matches);
//!   ports are a number or `"a-b"`. `tcp-flags` is `"syn & !ack"` (flag
//!   names `fin syn rst psh|push ack urg|urgent ece cwr`, joined by `&`,
//!   `!` for must-be-clear; `tcp-initial` is `syn & !ack`) or a list of
//!   such terms. `fragment` (alias `is-fragment`) and `first-fragment` are
//!   booleans. `then = { action = "accept" | "discard" | "reject", log, count }`;
//!   `action` is required.
//! - Screens: boolean options are `true`/`false`; threshold options are a
//!   table, or `true` for the Junos defaults. Unknown options are errors
//!   with a suggestion.
//! - Unknown keys anywhere are errors.

pub(crate) mod build;
mod error;
pub mod keys;
mod tree;
pub mod vdev;

use std::path::{Path, PathBuf};

pub use error::{ConfigError, ConfigErrors};
pub use vdev::Host;

use crate::flow::{proto, Addr, Prefix};
pub use rampart_vocab::{node_name_ok, AggregateKey, EventType, ScreenOption, MAX_NODE_LEN};

/// A validated, fully resolved config.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub dataplane: Dataplane,
    pub events: EventsConfig,
    pub interfaces: Vec<Interface>,
    pub zones: Vec<Zone>,
    pub screens: Vec<Screen>,
    pub address_book: AddressBook,
    /// The file's applications (and application sets) in order, then the
    /// built-ins.
    pub applications: Vec<Application>,
    pub policies: Vec<Policy>,
    pub default_policy: DefaultPolicy,
    pub filters: Vec<Filter>,
    pub flow: Flow,
    pub telemetry: Telemetry,
    /// `[cluster]`: a high-availability pair; `None` runs alone.
    pub cluster: Option<Cluster>,
    /// `[[zone-pair]]` entries with `audit = true`: (from, to) zone ids
    /// whose every deny and reject (the pair's policies, the global ones
    /// and the default policy) is logged as audit and not enforced.
    pub audit_zone_pairs: Vec<(usize, usize)>,
}

/// `[telemetry]`: optional exporters besides the control socket and DPDK
/// telemetry (which are always on).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Telemetry {
    /// Prometheus text endpoint (`GET /metrics`); off unless set. Binds
    /// loopback unless an address says otherwise.
    pub prometheus: Option<std::net::SocketAddr>,
}

/// `[cluster]`: this node of a high-availability pair (see
/// `rampart-cluster`): who it is, where its peer listens, and how it
/// decides to take over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// The pair's name, shared by both nodes: session records' event ids
    /// start with it, so the two nodes' records of one session match.
    pub name: String,
    /// This node's id, 1 to 255, different on the two nodes: the top
    /// byte of every session id it creates.
    pub node_id: u8,
    /// Higher is preferred as active (a tie goes to the lower node id).
    pub priority: u8,
    /// The sync link: where this node listens, and its peer.
    pub local: std::net::SocketAddr,
    pub peer: std::net::SocketAddr,
    /// A second heartbeat path (its own addresses, another network):
    /// a standby takes over only when both paths are silent.
    pub heartbeat_local: Option<std::net::SocketAddr>,
    pub heartbeat_peer: Option<std::net::SocketAddr>,
    pub heartbeat_interval_ms: u32,
    pub hold_time_ms: u32,
    /// A node with the higher priority takes the active role back.
    pub preempt: bool,
    /// With the sync link as the only path: take over when it is silent
    /// (a lost link alone then makes two actives).
    pub takeover_on_sync_loss: bool,
}

impl Cluster {
    pub const DEFAULT_PRIORITY: u8 = 100;
    pub const DEFAULT_HEARTBEAT_INTERVAL_MS: u32 = 200;
    pub const DEFAULT_HOLD_TIME_MS: u32 = 1000;
}

/// `[flow]`: session handling shared by all zones (Junos `security flow`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    /// A TCP session may only start with a SYN (Junos default; set false
    /// for asymmetric or mid-stream pickup).
    pub tcp_syn_check: bool,
    /// TCP segments must fall inside their session's window and a RST
    /// closes only at the exact expected sequence number (Junos default;
    /// `no-sequence-check` there).
    pub tcp_sequence_check: bool,
    /// What to do with frames that do not parse: drop (default) or forward.
    pub malformed_forward: bool,
    /// IPv6 neighbour discovery and multicast listener messages pass
    /// without a session or a policy, as ARP does (`ipv6-nd = "permit"`,
    /// the default), or go through policy like any ICMPv6 (`"policy"`).
    /// IPv6 does not work without them, and a deny-all last rule would
    /// otherwise drop them. Only messages that pass the RFCs' validity
    /// checks pass this way (`wire::link_control::is_valid`); others go
    /// through policy.
    pub ipv6_nd_permit: bool,
    /// A packet larger than its egress port's MTU is dropped and counted
    /// either way; with `mtu-exceeded = "reject"` an IPv4 packet with DF
    /// and an IPv6 packet are also answered with fragmentation-needed /
    /// packet-too-big carrying the MTU, so path MTU discovery works
    /// across the firewall (default `"drop"`).
    pub mtu_exceeded_reject: bool,
    /// Sessions per worker (preallocated; a full table refuses and counts).
    pub session_capacity: u32,
    /// Idle timeouts in seconds.
    pub timeouts: FlowTimeouts,
}

impl Flow {
    pub const DEFAULT_SESSION_CAPACITY: u32 = 262_144;
}

impl Default for Flow {
    fn default() -> Flow {
        Flow {
            tcp_syn_check: true,
            tcp_sequence_check: true,
            malformed_forward: false,
            ipv6_nd_permit: true,
            mtu_exceeded_reject: false,
            session_capacity: Flow::DEFAULT_SESSION_CAPACITY,
            timeouts: FlowTimeouts::default(),
        }
    }
}

/// Idle timeouts per protocol state, seconds (Junos-like defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowTimeouts {
    pub tcp_initial: u32,
    pub tcp_established: u32,
    pub tcp_closing: u32,
    pub udp: u32,
    pub icmp: u32,
    pub other: u32,
}

impl Default for FlowTimeouts {
    fn default() -> FlowTimeouts {
        FlowTimeouts {
            tcp_initial: 20,
            tcp_established: 1800,
            tcp_closing: 2,
            udp: 60,
            icmp: 4,
            other: 60,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataplane {
    /// Worker lcores, at least 1.
    pub workers: u16,
    /// Extra EAL arguments.
    pub eal: Vec<String>,
    /// This dataplane's name in event ids (`None`: the host name).
    pub node: Option<String>,
}

impl Default for Dataplane {
    fn default() -> Dataplane {
        Dataplane {
            workers: 1,
            eal: Vec::new(),
            node: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventsConfig {
    pub socket: PathBuf,
    pub control_socket: PathBuf,
    /// Per-worker event ring size: a power of two, at least 64.
    pub ring_size: u32,
    /// Packet bytes carried in drop events, 0..=256.
    pub snippet_bytes: u16,
    pub rate_limit: RateLimits,
    pub aggregate: Aggregate,
    pub episodes: Episodes,
    /// Mode of the event socket (default 0660: owner and group): who may
    /// read the event stream.
    pub socket_mode: u32,
    /// Group of the event socket (name or number, resolved through NSS),
    /// so log shippers in it can read events without root; `None` keeps
    /// the process's.
    pub socket_group: Option<String>,
    /// Mode of the control socket (default 0600: its owner only). The
    /// control socket can reload the dataplane, so it is a role apart from
    /// reading events: its own mode and group, never the event socket's.
    pub control_socket_mode: u32,
    /// Group of the control socket (operators); `None` keeps the process's.
    pub control_socket_group: Option<String>,
}

impl EventsConfig {
    pub const DEFAULT_SOCKET: &'static str = "/run/rampart/events.sock";
    pub const DEFAULT_CONTROL_SOCKET: &'static str = "/run/rampart/control.sock";
    pub const DEFAULT_RING_SIZE: u32 = 16384;
    pub const DEFAULT_SNIPPET_BYTES: u16 = 64;
    pub const MAX_SNIPPET_BYTES: u16 = 256;
    pub const MIN_RING_SIZE: u32 = 64;
}

impl Default for EventsConfig {
    fn default() -> EventsConfig {
        EventsConfig {
            socket: PathBuf::from(Self::DEFAULT_SOCKET),
            control_socket: PathBuf::from(Self::DEFAULT_CONTROL_SOCKET),
            ring_size: Self::DEFAULT_RING_SIZE,
            snippet_bytes: Self::DEFAULT_SNIPPET_BYTES,
            rate_limit: RateLimits::default(),
            aggregate: Aggregate::default(),
            episodes: Episodes::default(),
            socket_mode: 0o660,
            socket_group: None,
            control_socket_mode: 0o600,
            control_socket_group: None,
        }
    }
}

/// `[events.aggregate]`: per-type windows (milliseconds; `None` = a
/// record per packet) in which repeats of one key leave the worker as one
/// record with a count. Only the drop and log types aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Aggregate {
    /// Window per type in milliseconds (by [`EventType::index`]; `None`:
    /// off); only [`Aggregate::TYPES`] can have one.
    pub windows_ms: [Option<u32>; EventType::COUNT],
    pub key: AggregateKey,
    /// Keys each worker keeps waiting at most (memory is reserved at
    /// start: about 0.5 KiB per key); beyond them records go one by one.
    pub max_keys: u32,
}

impl Aggregate {
    pub const DEFAULT_MAX_KEYS: u32 = 4096;
    pub const MAX_WINDOW_MS: u32 = 60_000;
    /// The types that can aggregate (they carry a rule, screen or term).
    pub const TYPES: [EventType; 3] = [
        EventType::PolicyDeny,
        EventType::ScreenDrop,
        EventType::FilterLog,
    ];

    /// The window of `t` in milliseconds, `None` if off.
    pub fn window_ms(&self, t: EventType) -> Option<u32> {
        self.windows_ms[t.index()]
    }

    /// Sets the window of an aggregating type (others are ignored).
    pub fn set_window_ms(&mut self, t: EventType, ms: Option<u32>) {
        if Self::TYPES.contains(&t) {
            self.windows_ms[t.index()] = ms;
        }
    }
}

impl Default for Aggregate {
    fn default() -> Self {
        Aggregate {
            windows_ms: [None; EventType::COUNT],
            key: AggregateKey::Flow,
            max_keys: Self::DEFAULT_MAX_KEYS,
        }
    }
}

/// `[events.episodes]`: flood, scan and sweep screen attacks reported as
/// episodes (`screen_episode` records: start, an update per `update_ms`
/// while drops continue, end after `quiet_ms` without one). Off unless
/// the table is present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Episodes {
    pub enabled: bool,
    pub update_ms: u32,
    pub quiet_ms: u32,
    /// Episodes each worker tracks at once (reserved at start; a change
    /// needs a restart).
    pub max: u32,
}

impl Default for Episodes {
    fn default() -> Self {
        Episodes {
            enabled: false,
            update_ms: 1000,
            quiet_ms: 5000,
            max: 256,
        }
    }
}

/// Per worker, events per second, per type (by [`EventType::index`], the
/// `[events.rate_limit]` key `t.name()`); `None` = unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RateLimits(pub [Option<u32>; EventType::COUNT]);

impl RateLimits {
    /// The limit of an event type.
    pub fn get(&self, t: EventType) -> Option<u32> {
        self.0[t.index()]
    }

    pub fn get_mut(&mut self, t: EventType) -> &mut Option<u32> {
        &mut self.0[t.index()]
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    /// A vdev string (`net_pcap0,rx_pcap=a.pcap`) or a PCI address.
    pub device: String,
    /// Index into [`Config::zones`].
    pub zone: usize,
    /// Index into [`Config::interfaces`]; symmetric.
    pub peer: Option<usize>,
    /// Index into [`Config::filters`].
    pub input_filter: Option<usize>,
    pub output_filter: Option<usize>,
    /// IP MTU (`mtu`, default 1500): the port is set to it and packet
    /// buffers are sized for the largest one, so jumbo frames arrive whole.
    pub mtu: u16,
}

impl Interface {
    pub const DEFAULT_MTU: u16 = 1500;
    /// Jumbo frames up to 9600 bytes of IP packet.
    pub const MAX_MTU: u16 = 9600;

    /// Whether `device` is a PCI address (else it is a vdev string).
    pub fn is_pci(&self) -> bool {
        build::values::is_pci_address(&self.device)
    }

    /// The DPDK port name: the vdev name before its first comma, or the PCI
    /// address.
    pub fn port_name(&self) -> &str {
        self.device.split(',').next().unwrap_or(&self.device).trim()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    pub name: String,
    /// Index into [`Config::screens`].
    pub screen: Option<usize>,
    /// Indexes into [`Config::interfaces`] of the interfaces in this zone.
    pub interfaces: Vec<usize>,
}

/// Screen option names, as in config, `trace` reasons and events (the
/// table is [`ScreenOption`]).
pub const SCREEN_OPTIONS: &[&str] = &ScreenOption::NAMES;

/// The `[screen.NAME]` key that is not an option: report, do not drop.
pub const ALARM_WITHOUT_DROP: &str = "alarm-without-drop";

/// A screen profile (Junos `security screen ids-option`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Screen {
    pub name: String,
    /// The stateless (on/off) options, by [`ScreenOption::index`]; the
    /// stateful ones (floods, scans, sweeps, session limits) have fields
    /// of their own and stay false here.
    pub stateless: [bool; ScreenOption::COUNT],
    pub syn_flood: Option<SynFlood>,
    /// ICMP packets per second to one destination.
    pub icmp_flood: Option<Threshold>,
    /// UDP packets per second to one destination.
    pub udp_flood: Option<Threshold>,
    /// Microseconds within which 10 ports of one destination count as a scan.
    pub port_scan: Option<Threshold>,
    /// Microseconds within which 10 addresses count as a sweep.
    pub ip_sweep: Option<Threshold>,
    pub limit_session: Option<LimitSession>,
    /// Report (alarm) instead of dropping.
    pub alarm_without_drop: bool,
}

impl Screen {
    /// Whether a stateless (on/off) option is enabled; `None` for the
    /// stateful options, which have fields of their own.
    pub fn stateless(&self, option: ScreenOption) -> Option<bool> {
        option
            .is_stateless()
            .then(|| self.stateless[option.index()])
    }

    /// The flag of a stateless option, `None` for a stateful one.
    pub fn stateless_mut(&mut self, option: ScreenOption) -> Option<&mut bool> {
        option
            .is_stateless()
            .then(|| &mut self.stateless[option.index()])
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threshold {
    pub threshold: u32,
}

impl Threshold {
    pub const DEFAULT_ICMP_FLOOD: u32 = 1000;
    pub const DEFAULT_UDP_FLOOD: u32 = 1000;
    pub const DEFAULT_PORT_SCAN: u32 = 5000;
    pub const DEFAULT_IP_SWEEP: u32 = 5000;

    /// The default threshold of a threshold option (`true` in the config),
    /// `None` for the options that are not one.
    pub const fn default_for(option: ScreenOption) -> Option<u32> {
        match option {
            ScreenOption::IcmpFlood => Some(Self::DEFAULT_ICMP_FLOOD),
            ScreenOption::UdpFlood => Some(Self::DEFAULT_UDP_FLOOD),
            ScreenOption::PortScan => Some(Self::DEFAULT_PORT_SCAN),
            ScreenOption::IpSweep => Some(Self::DEFAULT_IP_SWEEP),
            _ => None,
        }
    }
}

/// SYN flood protection; absent settings take the Junos defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SynFlood {
    /// SYNs per second to one destination port before the screen acts.
    pub attack_threshold: u32,
    /// SYNs per second from one source.
    pub source_threshold: u32,
    /// SYNs per second to one destination address.
    pub destination_threshold: u32,
    /// Half-open connections per second before an alarm.
    pub alarm_threshold: u32,
    /// Seconds before a half-open connection is dropped from the queue.
    pub timeout: u32,
}

impl Default for SynFlood {
    fn default() -> SynFlood {
        SynFlood {
            attack_threshold: 200,
            source_threshold: 4000,
            destination_threshold: 4000,
            alarm_threshold: 512,
            timeout: 20,
        }
    }
}

/// Concurrent session limits; `None` = no limit on that side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LimitSession {
    pub source_ip_based: Option<u32>,
    pub destination_ip_based: Option<u32>,
}

/// The address book, entries in file order, each flattened into prefixes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AddressBook {
    pub entries: Vec<AddressEntry>,
    /// Entry index by name: a config with 10,000 policies each naming its
    /// own entry resolved them by a linear search, 0.3 s per load.
    by_name: std::collections::HashMap<String, usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressEntry {
    pub name: String,
    /// Every prefix of the entry and of the sets it includes, deduplicated.
    pub prefixes: Vec<Prefix>,
}

impl AddressBook {
    /// `entries` in file order, names unique (the loader reports duplicates).
    pub fn new(entries: Vec<AddressEntry>) -> Self {
        let by_name = entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.name.clone(), i))
            .collect();
        AddressBook { entries, by_name }
    }

    /// The prefixes of an entry or built-in (`any`, `any-ipv4`, `any-ipv6`).
    pub fn get(&self, name: &str) -> Option<Vec<Prefix>> {
        builtin_address(name).or_else(|| {
            self.by_name
                .get(name)
                .map(|&i| self.entries[i].prefixes.clone())
        })
    }
}

/// The IPv4-mapped range, i.e. every IPv4 address.
pub const ANY_IPV4: Prefix = Prefix {
    addr: Addr(0xffff_u128 << 32),
    len: 96,
};

/// Every IPv6 address that is not IPv4-mapped: the complement of
/// [`ANY_IPV4`], as 96 prefixes.
pub fn any_ipv6() -> Vec<Prefix> {
    (0..96u8)
        .map(|depth| {
            let bit = 1u128 << (127 - depth as u32);
            Prefix::new(Addr(ANY_IPV4.addr.0 ^ bit), depth + 1)
        })
        .collect()
}

/// The prefixes of a built-in address name.
pub fn builtin_address(name: &str) -> Option<Vec<Prefix>> {
    match name {
        "any" => Some(vec![Prefix::ANY]),
        "any-ipv4" => Some(vec![ANY_IPV4]),
        "any-ipv6" => Some(any_ipv6()),
        _ => None,
    }
}

/// An inclusive port range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortRange {
    pub lo: u16,
    pub hi: u16,
}

impl PortRange {
    pub const ANY: PortRange = PortRange {
        lo: 0,
        hi: u16::MAX,
    };

    pub const fn single(port: u16) -> PortRange {
        PortRange { lo: port, hi: port }
    }

    pub const fn contains(&self, port: u16) -> bool {
        self.lo <= port && port <= self.hi
    }

    pub const fn is_any(&self) -> bool {
        self.lo == 0 && self.hi == u16::MAX
    }
}

impl std::fmt::Display for PortRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.lo == self.hi {
            write!(f, "{}", self.lo)
        } else {
            write!(f, "{}-{}", self.lo, self.hi)
        }
    }
}

impl std::str::FromStr for PortRange {
    type Err = String;

    /// `"80"` or `"1024-65535"`.
    fn from_str(s: &str) -> Result<PortRange, String> {
        let port = |p: &str| {
            p.trim().parse::<u16>().map_err(|_| {
                format!(
                    "bad port range '{s}': '{}' is not a port (0-65535)",
                    p.trim()
                )
            })
        };
        let r = match s.split_once('-') {
            Some((lo, hi)) => PortRange {
                lo: port(lo)?,
                hi: port(hi)?,
            },
            None => PortRange::single(port(s)?),
        };
        if r.lo > r.hi {
            return Err(format!("bad port range '{s}': {} is above {}", r.lo, r.hi));
        }
        Ok(r)
    }
}

/// An application: a packet matches when any of its terms matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Application {
    pub name: String,
    pub terms: Vec<AppMatch>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AppMatch {
    /// `None` = any protocol.
    pub protocol: Option<u8>,
    pub src_ports: PortRange,
    pub dst_ports: PortRange,
    pub icmp_type: Option<u8>,
    pub icmp_code: Option<u8>,
}

impl AppMatch {
    pub const ANY: AppMatch = AppMatch {
        protocol: None,
        src_ports: PortRange::ANY,
        dst_ports: PortRange::ANY,
        icmp_type: None,
        icmp_code: None,
    };

    const fn tcp(port: u16) -> AppMatch {
        AppMatch {
            protocol: Some(proto::TCP),
            dst_ports: PortRange::single(port),
            ..AppMatch::ANY
        }
    }

    const fn udp(port: u16) -> AppMatch {
        AppMatch {
            protocol: Some(proto::UDP),
            dst_ports: PortRange::single(port),
            ..AppMatch::ANY
        }
    }

    const fn icmp(protocol: u8, icmp_type: Option<u8>) -> AppMatch {
        AppMatch {
            protocol: Some(protocol),
            icmp_type,
            ..AppMatch::ANY
        }
    }
}

/// Built-in applications (Junos predefined names), in the order they follow
/// the file's own applications in [`Config::applications`].
pub const BUILTIN_APPLICATIONS: &[(&str, &[AppMatch])] = &[
    ("any", &[AppMatch::ANY]),
    ("junos-http", &[AppMatch::tcp(80)]),
    ("junos-https", &[AppMatch::tcp(443)]),
    ("junos-ssh", &[AppMatch::tcp(22)]),
    ("junos-telnet", &[AppMatch::tcp(23)]),
    ("junos-ftp", &[AppMatch::tcp(21)]),
    ("junos-smtp", &[AppMatch::tcp(25)]),
    ("junos-bgp", &[AppMatch::tcp(179)]),
    ("junos-dns-udp", &[AppMatch::udp(53)]),
    ("junos-dns-tcp", &[AppMatch::tcp(53)]),
    ("junos-ntp", &[AppMatch::udp(123)]),
    ("junos-ping", &[AppMatch::icmp(proto::ICMP, Some(8))]),
    ("junos-pingv6", &[AppMatch::icmp(proto::ICMPV6, Some(128))]),
    ("junos-icmp-all", &[AppMatch::icmp(proto::ICMP, None)]),
    ("junos-icmp6-all", &[AppMatch::icmp(proto::ICMPV6, None)]),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyAction {
    Permit,
    Deny,
    Reject,
}

impl PolicyAction {
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyAction::Permit => "permit",
            PolicyAction::Deny => "deny",
            PolicyAction::Reject => "reject",
        }
    }
}

/// What a policy logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PolicyLog {
    pub session_init: bool,
    pub session_close: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub name: String,
    /// Index into [`Config::zones`]; `None` = any zone.
    pub from_zone: Option<usize>,
    pub to_zone: Option<usize>,
    /// Not a zone-pair policy (one or both zones are any).
    pub global: bool,
    /// The names (or literal prefixes) as written, for display.
    pub source_address: Vec<String>,
    pub destination_address: Vec<String>,
    /// Flattened, deduplicated prefixes; contains [`Prefix::ANY`] for `any`.
    pub source: Vec<Prefix>,
    pub destination: Vec<Prefix>,
    /// Indexes into [`Config::applications`].
    pub applications: Vec<usize>,
    pub action: PolicyAction,
    pub log: PolicyLog,
    pub count: bool,
    /// Audit mode (`audit = true`, deny and reject policies): evaluated as
    /// written, but what it would drop is logged (a policy_deny with action
    /// `audit`) and handled by the next matching policy as if this one
    /// were absent. For rolling out a deny rule and watching it first.
    pub audit: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefaultPolicy {
    pub action: PolicyAction,
    pub log: bool,
}

impl Default for DefaultPolicy {
    fn default() -> DefaultPolicy {
        DefaultPolicy {
            action: PolicyAction::Deny,
            log: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub name: String,
    /// In evaluation order; a term's id is its index here.
    pub terms: Vec<Term>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    pub name: String,
    pub from: TermMatch,
    pub then: TermAction,
}

/// A filter term's conditions; `None` = no condition. All present
/// conditions must hold; within a list, any element may match.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TermMatch {
    pub source_address: Option<Vec<AddrMatch>>,
    pub destination_address: Option<Vec<AddrMatch>>,
    pub protocol: Option<Vec<u8>>,
    pub source_port: Option<Vec<PortRange>>,
    pub destination_port: Option<Vec<PortRange>>,
    pub tcp_flags: Option<TcpFlags>,
    pub icmp_type: Option<Vec<u8>>,
    pub icmp_code: Option<Vec<u8>>,
    pub dscp: Option<Vec<u8>>,
    /// `Some(true)`: only fragments (any, first included); `Some(false)`:
    /// only unfragmented packets.
    pub is_fragment: Option<bool>,
    /// `Some(true)`: only first fragments (offset 0, more-fragments set);
    /// `Some(false)`: anything but first fragments.
    pub first_fragment: Option<bool>,
}

impl TermMatch {
    /// Matches every packet.
    pub fn is_empty(&self) -> bool {
        *self == TermMatch::default()
    }
}

/// One address condition element: a prefix, or an exception to the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddrMatch {
    pub prefix: Prefix,
    pub except: bool,
}

impl AddrMatch {
    /// Junos semantics: the longest listed prefix that contains `addr`
    /// decides; it matches unless that prefix is an `except`.
    pub fn matches_list(list: &[AddrMatch], addr: Addr) -> bool {
        list.iter()
            .filter(|m| m.prefix.contains(addr))
            .max_by_key(|m| (m.prefix.len, m.except))
            .is_some_and(|m| !m.except)
    }
}

/// TCP flag bits as in the TCP header's flags byte.
pub use rampart_vocab::tcp_flag;

/// Flags that must be set and flags that must be clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct TcpFlags {
    pub required: u8,
    pub forbidden: u8,
}

impl TcpFlags {
    pub const fn matches(&self, flags: u8) -> bool {
        flags & self.required == self.required && flags & self.forbidden == 0
    }
}

pub use rampart_vocab::FilterAction;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TermAction {
    pub action: FilterAction,
    pub log: bool,
    pub count: bool,
}

impl Config {
    /// Reads, validates and resolves a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        Config::load_inner(path, None)
    }

    /// [`Config::load`], plus what only the machine can tell (see
    /// [`vdev`]): that the files and interfaces the vdevs open are there
    /// and the socket groups exist. `check-config` and `run` load this
    /// way, so what `check-config` passes DPDK does not then refuse.
    pub fn load_on_host(path: &Path, host: &dyn Host) -> Result<Config, ConfigErrors> {
        Config::load_inner(path, Some(host))
    }

    fn load_inner(path: &Path, host: Option<&dyn Host>) -> Result<Config, ConfigErrors> {
        let origin = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => build::build(&text, &origin, host),
            Err(e) => Err(ConfigErrors {
                errors: vec![ConfigError {
                    file: error::one_line(&origin),
                    line: 0,
                    column: 0,
                    field: String::new(),
                    message: format!("cannot read config: {e}"),
                }],
            }),
        }
    }

    /// Validates and resolves config text; `origin` names it in errors.
    pub fn from_str_named(text: &str, origin: &str) -> Result<Config, ConfigErrors> {
        build::build(text, origin, None)
    }

    /// [`Config::from_str_named`] with the checks of [`Config::load_on_host`].
    pub fn from_str_on_host(
        text: &str,
        origin: &str,
        host: &dyn Host,
    ) -> Result<Config, ConfigErrors> {
        build::build(text, origin, Some(host))
    }

    pub fn zone_id(&self, name: &str) -> Option<usize> {
        self.zones.iter().position(|z| z.name == name)
    }

    pub fn interface_id(&self, name: &str) -> Option<usize> {
        self.interfaces.iter().position(|i| i.name == name)
    }

    pub fn screen_id(&self, name: &str) -> Option<usize> {
        self.screens.iter().position(|s| s.name == name)
    }

    pub fn policy_id(&self, name: &str) -> Option<usize> {
        self.policies.iter().position(|p| p.name == name)
    }

    pub fn filter_id(&self, name: &str) -> Option<usize> {
        self.filters.iter().position(|f| f.name == name)
    }

    pub fn application_id(&self, name: &str) -> Option<usize> {
        self.applications.iter().position(|a| a.name == name)
    }
}

#[cfg(test)]
mod tests;
