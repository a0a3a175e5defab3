//! Every key of the settings tables, declared once: its table, type,
//! default, what it does, and whether a reload applies it at the switch or
//! needs a restart. The parser accepts exactly the keys declared here (an
//! unknown key is an error naming the known ones), the reload check
//! ([`restart_required`]) refuses exactly the restart-only keys that
//! changed, and `docs/config.md` is generated from this table
//! ([`reference_page`], checked current by a test), so a new key cannot be
//! forgotten by any of them.
//!
//! The rule tables (zones, screens, address book, applications,
//! policies, filters, zone pairs) compile into the ruleset as a whole: a
//! reload applies every one of their keys at the switch. Keys in capitals
//! stand for a family (every event type, every stateless screen option)
//! that a vocabulary table lists.

use super::{AppMatch, Config, ScreenOption, Threshold, BUILTIN_APPLICATIONS};

/// When a changed key takes effect.
#[derive(Clone, Copy)]
pub enum Reload {
    /// A reload applies it at the switch to the new generation.
    Switch,
    /// Read at start only: a reload that changes it is refused. The
    /// function says what changed between the running and the new config,
    /// one line per change (none: unchanged).
    Restart(fn(&Config, &Config) -> Vec<String>),
}

/// One declared key.
pub struct Key {
    /// The table as written in TOML: `[flow]`, `[[interface]]`.
    pub table: &'static str,
    pub key: &'static str,
    /// The value's type as a user writes it.
    pub kind: &'static str,
    /// The default as a user would write it (`-`: required or none).
    pub default: &'static str,
    pub reload: Reload,
    pub doc: &'static str,
}

/// `message` when `changed`.
fn changed(changed: bool, message: &str) -> Vec<String> {
    if changed {
        vec![message.to_owned()]
    } else {
        Vec::new()
    }
}

/// The interfaces are the ports DPDK started: the same names and devices
/// in the same order, or a restart.
fn interfaces_changed(old: &Config, new: &Config) -> Vec<String> {
    let ports = |c: &Config| {
        c.interfaces
            .iter()
            .map(|i| (i.name.clone(), i.device.clone()))
            .collect::<Vec<_>>()
    };
    changed(
        ports(old) != ports(new),
        "interfaces (names or devices) changed",
    )
}

/// The port's MTU and the packet buffers' size are set at start.
fn mtu_changed(old: &Config, new: &Config) -> Vec<String> {
    if old.interfaces.len() != new.interfaces.len() {
        return Vec::new(); // said by `interfaces_changed`
    }
    old.interfaces
        .iter()
        .zip(&new.interfaces)
        .filter(|(o, n)| o.mtu != n.mtu)
        .map(|(o, n)| format!("interface {} mtu changed ({} -> {})", n.name, o.mtu, n.mtu))
        .collect()
}

/// The whole `[cluster]` table is read at start: the sync socket, the
/// session ids and the election all depend on it.
fn cluster_changed(old: &Config, new: &Config) -> Vec<String> {
    changed(
        old.cluster != new.cluster,
        "cluster changed (the pair's identity, addresses and election are set at start)",
    )
}

/// Every declared key, in reference-page order (`""`: the top level).
pub static KEYS: &[Key] = &[
    Key {
        table: "",
        key: "dataplane",
        kind: "table",
        default: "-",
        reload: Reload::Switch,
        doc: "`[dataplane]`.",
    },
    Key {
        table: "",
        key: "events",
        kind: "table",
        default: "-",
        reload: Reload::Switch,
        doc: "`[events]`.",
    },
    Key {
        table: "",
        key: "telemetry",
        kind: "table",
        default: "-",
        reload: Reload::Switch,
        doc: "`[telemetry]`.",
    },
    Key {
        table: "",
        key: "cluster",
        kind: "table",
        default: "none (runs alone)",
        reload: Reload::Restart(cluster_changed),
        doc: "`[cluster]`: this node of a high-availability pair.",
    },
    Key {
        table: "",
        key: "flow",
        kind: "table",
        default: "-",
        reload: Reload::Switch,
        doc: "`[flow]`.",
    },
    Key {
        table: "",
        key: "interface",
        kind: "array of tables",
        default: "-",
        reload: Reload::Switch,
        doc: "`[[interface]]`.",
    },
    Key {
        table: "",
        key: "zone",
        kind: "table of zones",
        default: "-",
        reload: Reload::Switch,
        doc: "`[zone.NAME]`.",
    },
    Key {
        table: "",
        key: "zone-pair",
        kind: "array of tables",
        default: "-",
        reload: Reload::Switch,
        doc: "`[[zone-pair]]`.",
    },
    Key {
        table: "",
        key: "screen",
        kind: "table of screen profiles",
        default: "-",
        reload: Reload::Switch,
        doc: "`[screen.NAME]`.",
    },
    Key {
        table: "",
        key: "address-book",
        kind: "table",
        default: "-",
        reload: Reload::Switch,
        doc: "`[address-book]`.",
    },
    Key {
        table: "",
        key: "application",
        kind: "table",
        default: "-",
        reload: Reload::Switch,
        doc: "`[application]`.",
    },
    Key {
        table: "",
        key: "policy",
        kind: "array of tables",
        default: "-",
        reload: Reload::Switch,
        doc: "`[[policy]]`.",
    },
    Key {
        table: "",
        key: "default-policy",
        kind: "table",
        default: "-",
        reload: Reload::Switch,
        doc: "`[default-policy]`.",
    },
    Key {
        table: "",
        key: "filter",
        kind: "array of tables",
        default: "-",
        reload: Reload::Switch,
        doc: "`[[filter]]`.",
    },
    Key {
        table: "[[interface]]",
        key: "name",
        kind: "string",
        default: "-",
        reload: Reload::Restart(interfaces_changed),
        doc: "The interface's name in events, logs and `--interface` (Junos style, `ge-0/0/0`).",
    },
    Key {
        table: "[[interface]]",
        key: "device",
        kind: "string",
        default: "-",
        reload: Reload::Restart(interfaces_changed),
        doc: "A DPDK vdev string (`net_pcap0,rx_pcap=in.pcap`) or a PCI address.",
    },
    Key {
        table: "[[interface]]",
        key: "zone",
        kind: "zone name",
        default: "-",
        reload: Reload::Switch,
        doc: "The security zone the interface belongs to.",
    },
    Key {
        table: "[[interface]]",
        key: "peer",
        kind: "interface name",
        default: "none",
        reload: Reload::Switch,
        doc: "Bump in the wire: what enters here leaves through the peer (symmetric).",
    },
    Key {
        table: "[[interface]]",
        key: "input_filter",
        kind: "filter name",
        default: "none",
        reload: Reload::Switch,
        doc: "Stateless filter run on what enters, before the screen.",
    },
    Key {
        table: "[[interface]]",
        key: "output_filter",
        kind: "filter name",
        default: "none",
        reload: Reload::Switch,
        doc: "Stateless filter run on what leaves, after policy.",
    },
    Key {
        table: "[[interface]]",
        key: "mtu",
        kind: "integer, 1280-9600",
        default: "1500",
        reload: Reload::Restart(mtu_changed),
        doc: "IP MTU: the port is set to it and packet buffers sized for the largest; a larger packet is dropped at egress (`drops.mtu_exceeded`).",
    },
    Key {
        table: "[dataplane]",
        key: "workers",
        kind: "integer >= 1",
        default: "1",
        reload: Reload::Restart(|o, n| {
            changed(o.dataplane.workers != n.dataplane.workers, "dataplane.workers changed")
        }),
        doc: "Worker lcores.",
    },
    Key {
        table: "[dataplane]",
        key: "eal",
        kind: "array of strings",
        default: "[]",
        reload: Reload::Restart(|o, n| changed(o.dataplane.eal != n.dataplane.eal, "dataplane.eal changed")),
        doc: "Extra EAL arguments (`--no-pci`, `-l 0-1`, `--file-prefix` ...).",
    },
    Key {
        table: "[dataplane]",
        key: "node",
        kind: "string: letters, digits, `.`, `-`, `_`",
        default: "the host name",
        reload: Reload::Restart(|o, n| {
            changed(
                o.dataplane.node != n.dataplane.node,
                "dataplane.node changed (event ids name it)",
            )
        }),
        doc: "This dataplane's name in event ids (`node:boot_id:worker:seq`) and syslog HOSTNAME.",
    },
    Key {
        table: "[events]",
        key: "socket",
        kind: "path",
        default: "/run/rampart/events.sock",
        reload: Reload::Restart(|o, n| changed(o.events.socket != n.events.socket, "events.socket changed")),
        doc: "The event socket consumers read.",
    },
    Key {
        table: "[events]",
        key: "control_socket",
        kind: "path",
        default: "/run/rampart/control.sock",
        reload: Reload::Restart(|o, n| {
            changed(
                o.events.control_socket != n.events.control_socket,
                "events.control_socket changed",
            )
        }),
        doc: "The control socket (`stats`, `reload`).",
    },
    Key {
        table: "[events]",
        key: "ring_size",
        kind: "power of two >= 64",
        default: "16384",
        reload: Reload::Restart(|o, n| {
            changed(o.events.ring_size != n.events.ring_size, "events.ring_size changed")
        }),
        doc: "Event ring slots per worker.",
    },
    Key {
        table: "[events]",
        key: "snippet_bytes",
        kind: "integer, 0-256",
        default: "64",
        reload: Reload::Switch,
        doc: "Packet bytes carried in drop events (0: none).",
    },
    Key {
        table: "[events]",
        key: "socket_mode",
        kind: "octal string",
        default: "\"0660\"",
        reload: Reload::Switch,
        doc: "Mode of the event socket.",
    },
    Key {
        table: "[events]",
        key: "socket_group",
        kind: "group name",
        default: "none",
        reload: Reload::Switch,
        doc: "Group of the event socket (log shippers).",
    },
    Key {
        table: "[events]",
        key: "control_socket_mode",
        kind: "octal string",
        default: "\"0600\"",
        reload: Reload::Switch,
        doc: "Mode of the control socket.",
    },
    Key {
        table: "[events]",
        key: "control_socket_group",
        kind: "group name",
        default: "none",
        reload: Reload::Switch,
        doc: "Group of the control socket (operators).",
    },
    Key {
        table: "[events]",
        key: "rate_limit",
        kind: "table",
        default: "none",
        reload: Reload::Switch,
        doc: "`[events.rate_limit]`, below.",
    },
    Key {
        table: "[events]",
        key: "aggregate",
        kind: "table",
        default: "none",
        reload: Reload::Switch,
        doc: "`[events.aggregate]`, below.",
    },
    Key {
        table: "[events]",
        key: "episodes",
        kind: "table",
        default: "none",
        reload: Reload::Switch,
        doc: "`[events.episodes]`, below.",
    },
    Key {
        table: "[events.rate_limit]",
        key: "EVENT_TYPE",
        kind: "integer (events per second)",
        default: "unlimited",
        reload: Reload::Switch,
        doc: "Per worker, per type: `policy_deny`, `screen_drop`, `filter_log`, `session_open`, `session_close`, `screen_episode`.",
    },
    Key {
        table: "[events.aggregate]",
        key: "AGGREGATING_TYPE",
        kind: "duration (`\"250ms\"`, `\"1s\"`) or `\"off\"`",
        default: "off",
        reload: Reload::Switch,
        doc: "Window for `policy_deny`, `screen_drop` or `filter_log` records: repeats of a key fold into one record with a count.",
    },
    Key {
        table: "[events.aggregate]",
        key: "key",
        kind: "`flow`, `source`, `destination` or `rule`",
        default: "flow",
        reload: Reload::Switch,
        doc: "What besides the type, rule, zones and interfaces makes two records the same.",
    },
    Key {
        table: "[events.aggregate]",
        key: "max_keys",
        kind: "integer",
        default: "4096",
        reload: Reload::Restart(|o, n| {
            changed(
                o.events.aggregate.max_keys != n.events.aggregate.max_keys,
                "events.aggregate.max_keys changed",
            )
        }),
        doc: "Keys each worker keeps waiting (reserved at start); beyond them records go one by one.",
    },
    Key {
        table: "[events.episodes]",
        key: "update",
        kind: "duration",
        default: "\"1s\"",
        reload: Reload::Switch,
        doc: "An update record this often while an attack's drops continue.",
    },
    Key {
        table: "[events.episodes]",
        key: "quiet",
        kind: "duration",
        default: "\"5s\"",
        reload: Reload::Switch,
        doc: "An episode ends after this long without a drop.",
    },
    Key {
        table: "[events.episodes]",
        key: "max",
        kind: "integer",
        default: "256",
        reload: Reload::Restart(|o, n| {
            changed(
                o.events.episodes.max != n.events.episodes.max,
                "events.episodes.max changed",
            )
        }),
        doc: "Episodes each worker tracks at once (reserved at start).",
    },
    Key {
        table: "[telemetry]",
        key: "prometheus",
        kind: "address (`127.0.0.1:9100`)",
        default: "off",
        reload: Reload::Switch,
        doc: "Prometheus text endpoint (`GET /metrics`).",
    },
    Key {
        table: "[cluster]",
        key: "name",
        kind: "string: letters, digits, `.`, `-`, `_`",
        default: "-",
        reload: Reload::Restart(cluster_changed),
        doc: "The pair's name, the same on both nodes: session records' event ids start with it, so both nodes' records of one session carry one id.",
    },
    Key {
        table: "[cluster]",
        key: "node-id",
        kind: "integer, 1-255",
        default: "-",
        reload: Reload::Restart(cluster_changed),
        doc: "This node's id, different on the two nodes: the top byte of every session id it creates.",
    },
    Key {
        table: "[cluster]",
        key: "priority",
        kind: "integer, 0-255",
        default: "100",
        reload: Reload::Restart(cluster_changed),
        doc: "Higher is preferred as active (a tie goes to the lower node id).",
    },
    Key {
        table: "[cluster]",
        key: "local",
        kind: "address:port",
        default: "-",
        reload: Reload::Restart(cluster_changed),
        doc: "The sync link's UDP address on this node (sessions, acknowledgments and heartbeats).",
    },
    Key {
        table: "[cluster]",
        key: "peer",
        kind: "address:port",
        default: "-",
        reload: Reload::Restart(cluster_changed),
        doc: "The peer's sync link address.",
    },
    Key {
        table: "[cluster]",
        key: "heartbeat-local",
        kind: "address:port",
        default: "none",
        reload: Reload::Restart(cluster_changed),
        doc: "A second heartbeat path on another network: with it, a standby takes over only when both paths are silent.",
    },
    Key {
        table: "[cluster]",
        key: "heartbeat-peer",
        kind: "address:port",
        default: "none",
        reload: Reload::Restart(cluster_changed),
        doc: "The peer's address on the second heartbeat path.",
    },
    Key {
        table: "[cluster]",
        key: "heartbeat-interval-ms",
        kind: "integer, 10-10000",
        default: "200",
        reload: Reload::Restart(cluster_changed),
        doc: "Heartbeats on each path, this often.",
    },
    Key {
        table: "[cluster]",
        key: "hold-time-ms",
        kind: "integer, 30-60000, at least 3 intervals",
        default: "1000",
        reload: Reload::Restart(cluster_changed),
        doc: "A standby takes over when every path has been silent this long.",
    },
    Key {
        table: "[cluster]",
        key: "preempt",
        kind: "boolean",
        default: "false",
        reload: Reload::Restart(cluster_changed),
        doc: "A node with the higher priority takes the active role back from a healthy peer.",
    },
    Key {
        table: "[cluster]",
        key: "takeover-on-sync-loss",
        kind: "boolean",
        default: "false",
        reload: Reload::Restart(cluster_changed),
        doc: "Without a second heartbeat path: take over when the sync link is silent (a lost link alone then makes two actives). One of this or a second path is required.",
    },
    Key {
        table: "[flow]",
        key: "tcp-syn-check",
        kind: "boolean",
        default: "true",
        reload: Reload::Switch,
        doc: "A TCP session only starts with a SYN (Junos default).",
    },
    Key {
        table: "[flow]",
        key: "tcp-sequence-check",
        kind: "boolean",
        default: "true",
        reload: Reload::Switch,
        doc: "Drop segments outside the window; only an exact RST closes.",
    },
    Key {
        table: "[flow]",
        key: "malformed",
        kind: "`drop` or `forward`",
        default: "drop",
        reload: Reload::Switch,
        doc: "What to do with frames that do not parse (counted either way).",
    },
    Key {
        table: "[flow]",
        key: "ipv6-nd",
        kind: "`permit` or `policy`",
        default: "permit",
        reload: Reload::Switch,
        doc: "Valid IPv6 neighbour discovery and MLD pass like ARP, or go through policy.",
    },
    Key {
        table: "[flow]",
        key: "mtu-exceeded",
        kind: "`drop` or `reject`",
        default: "drop",
        reload: Reload::Switch,
        doc: "`reject` also answers a packet too big for its egress port with fragmentation-needed / packet-too-big.",
    },
    Key {
        table: "[flow]",
        key: "session-capacity",
        kind: "integer",
        default: "262144",
        reload: Reload::Restart(|o, n| {
            changed(
                o.flow.session_capacity != n.flow.session_capacity,
                "flow.session-capacity changed",
            )
        }),
        doc: "Sessions per worker, preallocated; a full table refuses and counts.",
    },
    Key {
        table: "[flow]",
        key: "timeouts",
        kind: "table",
        default: "below",
        reload: Reload::Switch,
        doc: "`[flow.timeouts]`, below.",
    },
    Key {
        table: "[flow.timeouts]",
        key: "tcp-initial",
        kind: "seconds",
        default: "20",
        reload: Reload::Switch,
        doc: "Idle timeout of a TCP session before it is established.",
    },
    Key {
        table: "[flow.timeouts]",
        key: "tcp-established",
        kind: "seconds",
        default: "1800",
        reload: Reload::Switch,
        doc: "Idle timeout of an established TCP session.",
    },
    Key {
        table: "[flow.timeouts]",
        key: "tcp-closing",
        kind: "seconds",
        default: "2",
        reload: Reload::Switch,
        doc: "Idle timeout of a closing TCP session.",
    },
    Key {
        table: "[flow.timeouts]",
        key: "udp",
        kind: "seconds",
        default: "60",
        reload: Reload::Switch,
        doc: "Idle timeout of a UDP session.",
    },
    Key {
        table: "[flow.timeouts]",
        key: "icmp",
        kind: "seconds",
        default: "4",
        reload: Reload::Switch,
        doc: "Idle timeout of an ICMP session.",
    },
    Key {
        table: "[flow.timeouts]",
        key: "other",
        kind: "seconds",
        default: "60",
        reload: Reload::Switch,
        doc: "Idle timeout of other protocols' sessions.",
    },
    Key {
        table: "[zone.NAME]",
        key: "screen",
        kind: "screen profile name",
        default: "none",
        reload: Reload::Switch,
        doc: "The screen profile run on what enters the zone.",
    },
    Key {
        table: "[[zone-pair]]",
        key: "from-zone",
        kind: "zone name",
        default: "-",
        reload: Reload::Switch,
        doc: "The zone pair's ingress zone.",
    },
    Key {
        table: "[[zone-pair]]",
        key: "to-zone",
        kind: "zone name",
        default: "-",
        reload: Reload::Switch,
        doc: "The zone pair's egress zone.",
    },
    Key {
        table: "[[zone-pair]]",
        key: "audit",
        kind: "boolean",
        default: "false",
        reload: Reload::Switch,
        doc: "Audit mode: the pair's denies are logged and let through.",
    },
    Key {
        table: "[screen.NAME]",
        key: "SCREEN_OPTION",
        kind: "boolean",
        default: "false",
        reload: Reload::Switch,
        doc: "A stateless Junos option by name (`land`, `syn-fin`, `tcp-no-flag` ...; listed under \"Screen options\" below).",
    },
    Key {
        table: "[screen.NAME]",
        key: "syn-flood",
        kind: "boolean or table",
        default: "off",
        reload: Reload::Switch,
        doc: "SYN flood protection (`true`: Junos defaults; a table: below).",
    },
    Key {
        table: "[screen.NAME]",
        key: "icmp-flood",
        kind: "boolean or `{ threshold }`",
        default: "off",
        reload: Reload::Switch,
        doc: "ICMP packets per second to one destination (default 1000).",
    },
    Key {
        table: "[screen.NAME]",
        key: "udp-flood",
        kind: "boolean or `{ threshold }`",
        default: "off",
        reload: Reload::Switch,
        doc: "UDP packets per second to one destination (default 1000).",
    },
    Key {
        table: "[screen.NAME]",
        key: "port-scan",
        kind: "boolean or `{ threshold }`",
        default: "off",
        reload: Reload::Switch,
        doc: "Microseconds within which 10 ports of one destination are a scan (default 5000).",
    },
    Key {
        table: "[screen.NAME]",
        key: "ip-sweep",
        kind: "boolean or `{ threshold }`",
        default: "off",
        reload: Reload::Switch,
        doc: "Microseconds within which 10 addresses are a sweep (default 5000).",
    },
    Key {
        table: "[screen.NAME]",
        key: "limit-session",
        kind: "table",
        default: "off",
        reload: Reload::Switch,
        doc: "Sessions per source and per destination (below).",
    },
    Key {
        table: "[screen.NAME]",
        key: "alarm-without-drop",
        kind: "boolean",
        default: "false",
        reload: Reload::Switch,
        doc: "Report matches instead of dropping.",
    },
    Key {
        table: "[screen.NAME] threshold option",
        key: "threshold",
        kind: "integer",
        default: "as above",
        reload: Reload::Switch,
        doc: "The threshold of `icmp-flood`, `udp-flood`, `port-scan` or `ip-sweep`.",
    },
    Key {
        table: "[screen.NAME] syn-flood",
        key: "attack-threshold",
        kind: "integer",
        default: "Junos default",
        reload: Reload::Switch,
        doc: "SYNs per second to one destination port before the screen acts.",
    },
    Key {
        table: "[screen.NAME] syn-flood",
        key: "source-threshold",
        kind: "integer",
        default: "Junos default",
        reload: Reload::Switch,
        doc: "SYNs per second from one source.",
    },
    Key {
        table: "[screen.NAME] syn-flood",
        key: "destination-threshold",
        kind: "integer",
        default: "Junos default",
        reload: Reload::Switch,
        doc: "SYNs per second to one destination.",
    },
    Key {
        table: "[screen.NAME] syn-flood",
        key: "alarm-threshold",
        kind: "integer",
        default: "Junos default",
        reload: Reload::Switch,
        doc: "SYNs per second before an alarm.",
    },
    Key {
        table: "[screen.NAME] syn-flood",
        key: "timeout",
        kind: "seconds",
        default: "Junos default",
        reload: Reload::Switch,
        doc: "How long a half-open connection counts.",
    },
    Key {
        table: "[screen.NAME] limit-session",
        key: "source-ip-based",
        kind: "integer",
        default: "unlimited",
        reload: Reload::Switch,
        doc: "Sessions one source may hold.",
    },
    Key {
        table: "[screen.NAME] limit-session",
        key: "destination-ip-based",
        kind: "integer",
        default: "unlimited",
        reload: Reload::Switch,
        doc: "Sessions one destination may hold.",
    },
    Key {
        table: "[address-book] NAME = { }",
        key: "address",
        kind: "array of prefixes",
        default: "[]",
        reload: Reload::Switch,
        doc: "The entry's own prefixes (an entry may also be written as just the array).",
    },
    Key {
        table: "[address-book] NAME = { }",
        key: "address-set",
        kind: "array of entry names",
        default: "[]",
        reload: Reload::Switch,
        doc: "Other entries the entry includes.",
    },
    Key {
        table: "[application] NAME = { }",
        key: "protocol",
        kind: "protocol name or number",
        default: "any",
        reload: Reload::Switch,
        doc: "IP protocol (`tcp`, `udp`, `icmp`, ... or a number).",
    },
    Key {
        table: "[application] NAME = { }",
        key: "destination-port",
        kind: "port or range",
        default: "any",
        reload: Reload::Switch,
        doc: "`\"80\"`, `\"1024-65535\"`.",
    },
    Key {
        table: "[application] NAME = { }",
        key: "source-port",
        kind: "port or range",
        default: "any",
        reload: Reload::Switch,
        doc: "As `destination-port`.",
    },
    Key {
        table: "[application] NAME = { }",
        key: "icmp-type",
        kind: "ICMP type name or number",
        default: "any",
        reload: Reload::Switch,
        doc: "For ICMP and ICMPv6.",
    },
    Key {
        table: "[application] NAME = { }",
        key: "icmp-code",
        kind: "integer",
        default: "any",
        reload: Reload::Switch,
        doc: "For ICMP and ICMPv6.",
    },
    Key {
        table: "[application] NAME = { }",
        key: "application-set",
        kind: "array of application names",
        default: "[]",
        reload: Reload::Switch,
        doc: "Other applications the application includes.",
    },
    Key {
        table: "[[policy]]",
        key: "name",
        kind: "string",
        default: "-",
        reload: Reload::Switch,
        doc: "The policy's name in events and stats.",
    },
    Key {
        table: "[[policy]]",
        key: "from-zone",
        kind: "zone name or `any`",
        default: "-",
        reload: Reload::Switch,
        doc: "Ingress zone (`any`: a global policy).",
    },
    Key {
        table: "[[policy]]",
        key: "to-zone",
        kind: "zone name or `any`",
        default: "-",
        reload: Reload::Switch,
        doc: "Egress zone.",
    },
    Key {
        table: "[[policy]]",
        key: "source-address",
        kind: "array of address-book names or `any`",
        default: "-",
        reload: Reload::Switch,
        doc: "What the source must match.",
    },
    Key {
        table: "[[policy]]",
        key: "destination-address",
        kind: "array of address-book names or `any`",
        default: "-",
        reload: Reload::Switch,
        doc: "What the destination must match.",
    },
    Key {
        table: "[[policy]]",
        key: "application",
        kind: "array of application names or `any`",
        default: "-",
        reload: Reload::Switch,
        doc: "What the protocol and ports must match.",
    },
    Key {
        table: "[[policy]]",
        key: "then",
        kind: "`permit`, `deny` or `reject`",
        default: "-",
        reload: Reload::Switch,
        doc: "The action.",
    },
    Key {
        table: "[[policy]]",
        key: "log",
        kind: "array: `session-init`, `session-close`",
        default: "[]",
        reload: Reload::Switch,
        doc: "Which session records a permit logs (a deny logs `policy_deny` with `log = true`).",
    },
    Key {
        table: "[[policy]]",
        key: "count",
        kind: "boolean",
        default: "false",
        reload: Reload::Switch,
        doc: "Count hits (`rampart stats --rules`).",
    },
    Key {
        table: "[[policy]]",
        key: "audit",
        kind: "boolean",
        default: "false",
        reload: Reload::Switch,
        doc: "Audit mode: logged, not enforced.",
    },
    Key {
        table: "[default-policy]",
        key: "then",
        kind: "`permit`, `deny` or `reject`",
        default: "deny",
        reload: Reload::Switch,
        doc: "What happens to a first packet no policy matched.",
    },
    Key {
        table: "[default-policy]",
        key: "log",
        kind: "boolean",
        default: "false",
        reload: Reload::Switch,
        doc: "Log its denies.",
    },
    Key {
        table: "[[filter]]",
        key: "name",
        kind: "string",
        default: "-",
        reload: Reload::Switch,
        doc: "The filter's name, as interfaces refer to it.",
    },
    Key {
        table: "[[filter]]",
        key: "term",
        kind: "array of tables",
        default: "-",
        reload: Reload::Switch,
        doc: "`[[filter.term]]`, in order; a packet no term matches is discarded.",
    },
    Key {
        table: "[[filter.term]]",
        key: "name",
        kind: "string",
        default: "-",
        reload: Reload::Switch,
        doc: "The term's name in events and stats.",
    },
    Key {
        table: "[[filter.term]]",
        key: "from",
        kind: "table",
        default: "match all",
        reload: Reload::Switch,
        doc: "What the term matches (below).",
    },
    Key {
        table: "[[filter.term]]",
        key: "then",
        kind: "table",
        default: "-",
        reload: Reload::Switch,
        doc: "What it does (below).",
    },
    Key {
        table: "[[filter.term]] from",
        key: "source-address",
        kind: "array of prefixes or address-book names",
        default: "any",
        reload: Reload::Switch,
        doc: "Source match.",
    },
    Key {
        table: "[[filter.term]] from",
        key: "destination-address",
        kind: "array of prefixes or address-book names",
        default: "any",
        reload: Reload::Switch,
        doc: "Destination match.",
    },
    Key {
        table: "[[filter.term]] from",
        key: "protocol",
        kind: "protocol name or number",
        default: "any",
        reload: Reload::Switch,
        doc: "IP protocol.",
    },
    Key {
        table: "[[filter.term]] from",
        key: "source-port",
        kind: "port or range",
        default: "any",
        reload: Reload::Switch,
        doc: "Source port.",
    },
    Key {
        table: "[[filter.term]] from",
        key: "destination-port",
        kind: "port or range",
        default: "any",
        reload: Reload::Switch,
        doc: "Destination port.",
    },
    Key {
        table: "[[filter.term]] from",
        key: "tcp-flags",
        kind: "flag expression",
        default: "any",
        reload: Reload::Switch,
        doc: "`\"syn & !ack\"`, `\"tcp-initial\"`.",
    },
    Key {
        table: "[[filter.term]] from",
        key: "icmp-type",
        kind: "ICMP type name or number",
        default: "any",
        reload: Reload::Switch,
        doc: "ICMP type.",
    },
    Key {
        table: "[[filter.term]] from",
        key: "icmp-code",
        kind: "integer",
        default: "any",
        reload: Reload::Switch,
        doc: "ICMP code.",
    },
    Key {
        table: "[[filter.term]] from",
        key: "dscp",
        kind: "DSCP name or number",
        default: "any",
        reload: Reload::Switch,
        doc: "DiffServ code point.",
    },
    Key {
        table: "[[filter.term]] from",
        key: "fragment",
        kind: "boolean",
        default: "any",
        reload: Reload::Switch,
        doc: "Any fragment.",
    },
    Key {
        table: "[[filter.term]] from",
        key: "is-fragment",
        kind: "boolean",
        default: "any",
        reload: Reload::Switch,
        doc: "A fragment other than the first.",
    },
    Key {
        table: "[[filter.term]] from",
        key: "first-fragment",
        kind: "boolean",
        default: "any",
        reload: Reload::Switch,
        doc: "The first fragment of a datagram.",
    },
    Key {
        table: "[[filter.term]] then",
        key: "action",
        kind: "`accept`, `discard` or `reject`",
        default: "-",
        reload: Reload::Switch,
        doc: "The term's action.",
    },
    Key {
        table: "[[filter.term]] then",
        key: "log",
        kind: "boolean",
        default: "false",
        reload: Reload::Switch,
        doc: "Log matches (`filter_log`).",
    },
    Key {
        table: "[[filter.term]] then",
        key: "count",
        kind: "boolean",
        default: "false",
        reload: Reload::Switch,
        doc: "Count hits (`rampart stats --rules`).",
    },
];

/// The keys declared for `table` (families such as `EVENT_TYPE` are the
/// caller's to expand).
pub fn names(table: &str) -> Vec<&'static str> {
    KEYS.iter()
        .filter(|k| k.table == table && !k.key.starts_with(|c: char| c.is_ascii_uppercase()))
        .map(|k| k.key)
        .collect()
}

/// Every restart-only setting that differs between the running config and
/// a new one, once each, in declaration order; empty when a reload can
/// apply all of it.
pub fn restart_required(old: &Config, new: &Config) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for k in KEYS {
        if let Reload::Restart(differs) = k.reload {
            for change in differs(old, new) {
                if !out.contains(&change) {
                    out.push(change);
                }
            }
        }
    }
    out
}

/// `docs/config.md`: every declared key with its type, default and
/// reload class, generated from [`KEYS`].
pub fn reference_page() -> String {
    let mut out = String::from(
        "# Configuration reference\n\n\
         Generated from `pipeline/src/config/keys.rs` (the one declaration of each key; \
         `cargo test -p rampart-pipeline config_reference` checks this page is current, \
         `RAMPART_WRITE_DOCS=1` rewrites it). **Reload**: *switch*, a reload applies the new \
         value at the switch to the new generation; *restart*, a reload that changes it is \
         refused, naming it, and the running config stays.\n",
    );
    let mut table = None;
    for k in KEYS {
        if table != Some(k.table) {
            table = Some(k.table);
            let table = k.table;
            let heading = if table.is_empty() {
                "The top level".to_owned()
            } else {
                format!("`{table}`")
            };
            out.push_str(&format!(
                "\n## {heading}\n\n| key | type | default | reload | what it does |\n|---|---|---|---|---|\n"
            ));
        }
        let reload = match k.reload {
            Reload::Switch => "switch",
            Reload::Restart(_) => "restart",
        };
        out.push_str(&format!(
            "| `{}` | {} | {} | {reload} | {} |\n",
            k.key, k.kind, k.default, k.doc
        ));
    }
    predefined_applications(&mut out);
    screen_options(&mut out);
    out
}

/// The settings table of a screen option that takes settings, `None` for
/// an on/off one. The parser checks an option's keys against this table
/// and the reference page lists them from it, so the two cannot differ.
pub fn screen_option_table(option: ScreenOption) -> Option<&'static str> {
    match option {
        ScreenOption::SynFlood => Some("[screen.NAME] syn-flood"),
        ScreenOption::LimitSession => Some("[screen.NAME] limit-session"),
        ScreenOption::IcmpFlood
        | ScreenOption::UdpFlood
        | ScreenOption::PortScan
        | ScreenOption::IpSweep => Some("[screen.NAME] threshold option"),
        _ => None,
    }
}

/// `## Predefined applications`: every name of [`BUILTIN_APPLICATIONS`]
/// with what it matches, read from the table the parser resolves names in.
fn predefined_applications(out: &mut String) {
    out.push_str(
        "\n## Predefined applications\n\n\
         Junos predefined names a policy's `application` (or an `application-set`) \
         may use without defining them.\n\n\
         | application | protocol | matches |\n|---|---|---|\n",
    );
    for (name, terms) in BUILTIN_APPLICATIONS {
        let protocol: Vec<String> = terms.iter().map(|t| protocol_text(t.protocol)).collect();
        let matches: Vec<String> = terms.iter().map(app_match_text).collect();
        out.push_str(&format!(
            "| `{name}` | {} | {} |\n",
            protocol.join(", "),
            matches.join("; ")
        ));
    }
}

fn protocol_text(p: Option<u8>) -> String {
    match p {
        None => "any".into(),
        Some(p) => rampart_vocab::protocol_name(p).map_or(p.to_string(), str::to_owned),
    }
}

/// `destination port 22`, `ICMP type 8`, `everything`.
fn app_match_text(m: &AppMatch) -> String {
    let ports = |what: &str, r: &super::PortRange| match (r.lo, r.hi) {
        (0, u16::MAX) => None,
        (lo, hi) if lo == hi => Some(format!("{what} port {lo}")),
        (lo, hi) => Some(format!("{what} ports {lo}-{hi}")),
    };
    let parts: Vec<String> = [
        ports("destination", &m.dst_ports),
        ports("source", &m.src_ports),
        m.icmp_type.map(|t| format!("type {t}")),
        m.icmp_code.map(|c| format!("code {c}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    match (parts.is_empty(), m.protocol) {
        (true, None) => "every packet".into(),
        (true, Some(_)) => "every packet of the protocol".into(),
        (false, _) => parts.join(", "),
    }
}

/// `## Screen options`: every [`ScreenOption`] in check order, on/off or
/// counted over time, and its settings ([`screen_option_table`]).
fn screen_options(out: &mut String) {
    out.push_str(
        "\n## Screen options\n\n\
         The options a `[screen.NAME]` table may set, by their Junos names. A *stateless* \
         option judges each packet alone and is `true` or `false`; a *threshold* option \
         counts over time (`true` takes the defaults shown).\n\n\
         | option | kind | settings |\n|---|---|---|\n",
    );
    for o in ScreenOption::ALL {
        let kind = if o.is_stateless() {
            "stateless"
        } else {
            "threshold"
        };
        let settings = match screen_option_table(o) {
            None => "`true` or `false`".to_owned(),
            Some(table) => {
                let keys: Vec<String> = names(table)
                    .iter()
                    .map(|k| match (k, Threshold::default_for(o)) {
                        (&"threshold", Some(d)) => format!("`threshold` (default {d})"),
                        _ => format!("`{k}`"),
                    })
                    .collect();
                format!("{}; see `{table}`", keys.join(", "))
            }
        };
        out.push_str(&format!("| `{}` | {kind} | {settings} |\n", o.name()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/config.md");

    /// The reference page in the repository is the one the declarations
    /// make now.
    #[test]
    fn config_reference_page_is_current() {
        let page = reference_page();
        if std::env::var_os("RAMPART_WRITE_DOCS").is_some() {
            std::fs::write(PAGE, &page).unwrap();
        }
        let committed = std::fs::read_to_string(PAGE).unwrap_or_default();
        assert!(
            committed == page,
            "docs/config.md is stale: RAMPART_WRITE_DOCS=1 cargo test -p rampart-pipeline config_reference"
        );
    }

    /// Every predefined application and every screen option has a row
    /// of its own on the page, with its protocol or kind and settings.
    #[test]
    fn reference_page_lists_applications_and_screen_options() {
        let page = reference_page();
        let section = |title: &str| -> String {
            let start = page
                .find(title)
                .unwrap_or_else(|| panic!("{title} missing"));
            let rest = &page[start + title.len()..];
            rest[..rest.find("\n## ").unwrap_or(rest.len())].to_owned()
        };
        let apps = section("## Predefined applications");
        for (name, _) in BUILTIN_APPLICATIONS {
            assert!(apps.contains(&format!("| `{name}` |")), "{name}");
        }
        assert!(
            apps.contains("| `junos-ssh` | tcp | destination port 22 |"),
            "{apps}"
        );
        assert!(apps.contains("| `junos-ping` | icmp | type 8 |"), "{apps}");
        let screens = section("## Screen options");
        for o in ScreenOption::ALL {
            assert!(screens.contains(&format!("| `{}` |", o.name())), "{o:?}");
        }
        assert!(
            screens.contains("| `land` | stateless | `true` or `false` |"),
            "{screens}"
        );
        assert!(
            screens.contains("| `icmp-flood` | threshold | `threshold` (default 1000)"),
            "{screens}"
        );
        assert!(
            screens.contains("| `syn-flood` | threshold | `attack-threshold`, "),
            "{screens}"
        );
    }

    #[test]
    fn each_key_is_declared_once() {
        for (i, a) in KEYS.iter().enumerate() {
            assert!(
                !KEYS[i + 1..]
                    .iter()
                    .any(|b| a.table == b.table && a.key == b.key),
                "{} {} declared twice",
                a.table,
                a.key
            );
        }
    }
}
