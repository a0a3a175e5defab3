//! One table per vocabulary: the names operators, scripts and SIEM parsers
//! see (INTERFACES.md), each listed once. The config reads them to accept
//! keys, the pipeline to decide, the counters to index their arrays, the
//! renderers and `trace` to print, the benchmark harness to check stats.
//!
//! A table is a `#[repr(u8)]` enum whose discriminant is the wire value in
//! `schema/events.fbs` and the index of per-type counter arrays, with
//! `NAMES` in discriminant order, `name()` and `from_name()`. Both
//! `rampart-pipeline` and `rampart-events` re-export these types, so there
//! is no conversion between them. No dependencies, no `unsafe`.

#![no_std]
#![forbid(unsafe_code)]

pub mod records;

macro_rules! vocabulary {
    (
        $(#[$doc:meta])*
        pub enum $ty:ident { $( $variant:ident = $name:literal, )* }
    ) => {
        $(#[$doc])*
        #[repr(u8)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $ty { $( $variant, )* }

        impl $ty {
            /// Every value, in discriminant order.
            pub const ALL: [$ty; [$( $ty::$variant, )*].len()] = [$( $ty::$variant, )*];
            /// Number of values (length of arrays indexed by [`Self::index`]).
            pub const COUNT: usize = Self::ALL.len();
            /// Every name, in discriminant order (`NAMES[v.index()] == v.name()`).
            pub const NAMES: [&'static str; Self::COUNT] = [$( $name, )*];

            /// The name used in config, stats, events and `trace`.
            pub const fn name(self) -> &'static str {
                Self::NAMES[self as usize]
            }

            pub fn from_name(name: &str) -> Option<$ty> {
                match name { $( $name => Some($ty::$variant), )* _ => None }
            }

            /// The value with this discriminant (the schema's wire value).
            pub const fn from_u8(v: u8) -> Option<$ty> {
                if (v as usize) < Self::COUNT {
                    Some(Self::ALL[v as usize])
                } else {
                    None
                }
            }

            /// The discriminant as an array index.
            pub const fn index(self) -> usize {
                self as usize
            }
        }
    };
}

vocabulary! {
    /// Packet event types. The discriminant indexes every per-type counter
    /// array (`[u64; EventType::COUNT]`); the name is the one used in JSON,
    /// stats, `--types`, `trace` and `[events.rate_limit]` keys.
    pub enum EventType {
        PolicyDeny = "policy_deny",
        ScreenDrop = "screen_drop",
        FilterLog = "filter_log",
        SessionOpen = "session_open",
        SessionClose = "session_close",
        ScreenEpisode = "screen_episode",
    }
}

vocabulary! {
    /// Where a screen attack episode is (`[events.episodes]`): its first
    /// drop, a periodic report while it lasts, or the report after it has
    /// been quiet long enough to call it over.
    pub enum EpisodePhase {
        Start = "start",
        Update = "update",
        End = "end",
    }
}

vocabulary! {
    /// Why a session ended, as events (`reason` in JSON) and `trace` name
    /// it; the discriminant is the schema's `CloseReason`. `response-received`:
    /// an ICMP or ICMPv6 echo was answered, the exchange is over; `cli`:
    /// an operator ended it (`rampart sessions clear`, Junos `CLI`).
    pub enum CloseReason {
        TcpFin = "tcp-fin",
        TcpRst = "tcp-rst",
        IdleTimeout = "idle-timeout",
        Shutdown = "shutdown",
        PolicyReload = "policy-reload",
        ResponseReceived = "response-received",
        Cleared = "cli",
    }
}

impl CloseReason {
    /// The reason text of RT_FLOW_SESSION_CLOSE: `CLI` is an operator
    /// clearing sessions, as on Junos. Rampart's own shutdown is not `CLI`:
    /// it says what happened.
    pub const fn junos_text(self) -> &'static str {
        match self {
            CloseReason::TcpFin => "TCP FIN",
            CloseReason::TcpRst => "TCP RST",
            CloseReason::IdleTimeout => "idle Timeout",
            CloseReason::Shutdown => "shutdown",
            CloseReason::PolicyReload => "policy delete",
            CloseReason::ResponseReceived => "response received",
            CloseReason::Cleared => "CLI",
        }
    }
}

vocabulary! {
    /// Junos screen (`security screen ids-option`) options, in the order the
    /// stateless checks run. The name is the Junos option name used as the
    /// `[screen.NAME]` key, the `trace` reason and in events.
    pub enum ScreenOption {
        Land = "land",
        SynFin = "syn-fin",
        TcpNoFlag = "tcp-no-flag",
        FinNoAck = "fin-no-ack",
        Winnuke = "winnuke",
        SynFrag = "syn-frag",
        TearDrop = "tear-drop",
        PingDeath = "ping-death",
        IcmpFragment = "icmp-fragment",
        IcmpLarge = "icmp-large",
        BlockFrag = "block-frag",
        SourceRouteOption = "source-route-option",
        LooseSourceRouteOption = "loose-source-route-option",
        StrictSourceRouteOption = "strict-source-route-option",
        RecordRouteOption = "record-route-option",
        TimestampOption = "timestamp-option",
        SecurityOption = "security-option",
        StreamOption = "stream-option",
        BadOption = "bad-option",
        UnknownProtocol = "unknown-protocol",
        SynFlood = "syn-flood",
        IcmpFlood = "icmp-flood",
        UdpFlood = "udp-flood",
        PortScan = "port-scan",
        IpSweep = "ip-sweep",
        LimitSession = "limit-session",
    }
}

vocabulary! {
    /// Where the pipeline decided a packet, as `trace` names it (`stage`),
    /// in the order a packet meets the stages; the discriminant indexes
    /// the per-stage cycle arrays of the burst path.
    pub enum Stage {
        Parse = "parse",
        FilterInput = "filter-input",
        Screen = "screen",
        Session = "session",
        Policy = "policy",
        FilterOutput = "filter-output",
    }
}

vocabulary! {
    /// Where a DPDK worker's cycles go, VPP `show runtime` style, as
    /// `rampart stats --json` names them (`stage_cycles`): `rx` and `tx`
    /// timed per burst, each pipeline [`Stage`] timed per burst
    /// (`policy` includes session creation, `filter_output` the
    /// forwarding decision), and `events` (encoding and ring enqueue).
    pub enum WorkerStage {
        Rx = "rx",
        Parse = "parse",
        FilterInput = "filter_input",
        Screen = "screen",
        Session = "session",
        Policy = "policy",
        FilterOutput = "filter_output",
        Events = "events",
        Tx = "tx",
    }
}

impl WorkerStage {
    /// The worker stage that times pipeline stage `s`.
    pub const fn of(s: Stage) -> WorkerStage {
        WorkerStage::ALL[1 + s as usize]
    }
}

vocabulary! {
    /// What a firewall filter term does (`then = { action = ... }`), as
    /// config, events and stats name it; the discriminant is the schema's
    /// `FilterAction`.
    pub enum FilterAction {
        Accept = "accept",
        Discard = "discard",
        Reject = "reject",
    }
}

vocabulary! {
    /// Which of an interface's filters logged (`input_filter` or
    /// `output_filter`); the discriminant is the schema's `Direction`.
    pub enum FilterDirection {
        Input = "input",
        Output = "output",
    }
}

vocabulary! {
    /// Why a packet was dropped, as the counters name it (`drops.NAME` in
    /// `stats --json`, `reason` of `rampart_drops_total`): the discriminant
    /// indexes every drop counter array, so a new reason has a counter of
    /// its own or does not compile.
    pub enum DropReason {
        Malformed = "malformed",
        FilterDiscard = "filter_discard",
        FilterReject = "filter_reject",
        FilterImplicitDiscard = "filter_implicit_discard",
        Screen = "screen",
        TcpSynCheck = "tcp_syn_check",
        PolicyDeny = "policy_deny",
        PolicyReject = "policy_reject",
        SessionTableFull = "session_table_full",
        NoEgress = "no_egress",
        TcpOutOfWindow = "tcp_out_of_window",
        FragmentTimeout = "fragment_timeout",
        FragmentHoldFull = "fragment_hold_full",
        MtuExceeded = "mtu_exceeded",
    }
}

impl ScreenOption {
    /// On or off, judged on the packet alone; the others (floods, scans,
    /// sweeps, session limits) count over time and have thresholds.
    pub const fn is_stateless(self) -> bool {
        !matches!(
            self,
            ScreenOption::SynFlood
                | ScreenOption::IcmpFlood
                | ScreenOption::UdpFlood
                | ScreenOption::PortScan
                | ScreenOption::IpSweep
                | ScreenOption::LimitSession
        )
    }
}

/// IP protocols by the names config (`protocol = "tcp"`), Junos
/// messages (`protocol-name`) and drop-log lines use, with their numbers.
pub const IP_PROTOCOLS: [(u8, &str); 15] = [
    (1, "icmp"),
    (2, "igmp"),
    (4, "ipip"),
    (6, "tcp"),
    (17, "udp"),
    (41, "ipv6"),
    (46, "rsvp"),
    (47, "gre"),
    (50, "esp"),
    (51, "ah"),
    (58, "icmp6"),
    (89, "ospf"),
    (103, "pim"),
    (112, "vrrp"),
    (132, "sctp"),
];

/// The name of IP protocol `p`, if it has one in [`IP_PROTOCOLS`].
pub fn protocol_name(p: u8) -> Option<&'static str> {
    IP_PROTOCOLS
        .iter()
        .find(|&&(n, _)| n == p)
        .map(|&(_, name)| name)
}

/// The number of a protocol name (any case; `icmpv6` too).
pub fn protocol_number(name: &str) -> Option<u8> {
    if name.eq_ignore_ascii_case("icmpv6") {
        return Some(58);
    }
    IP_PROTOCOLS
        .iter()
        .find(|(_, n)| n.eq_ignore_ascii_case(name))
        .map(|&(p, _)| p)
}

/// TCP header flag bits.
pub mod tcp_flag {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;
}

/// TCP flags by name, in the order drop-log lines list them (config reads
/// them in any case, with `push` and `urgent` besides).
pub const TCP_FLAGS: [(u8, &str); 8] = [
    (tcp_flag::SYN, "syn"),
    (tcp_flag::ACK, "ack"),
    (tcp_flag::FIN, "fin"),
    (tcp_flag::RST, "rst"),
    (tcp_flag::PSH, "psh"),
    (tcp_flag::URG, "urg"),
    (tcp_flag::ECE, "ece"),
    (tcp_flag::CWR, "cwr"),
];

/// What, besides the type, rule, action, zones and interfaces, makes two
/// records the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AggregateKey {
    /// The 5-tuple (and ICMP type and code): one record per flow.
    #[default]
    Flow,
    /// The source address: one record per source (a scan, a sweep).
    Source,
    /// The destination address: one record per target (a flood).
    Destination,
    /// Nothing more: one record per rule (or screen) and zone pair.
    Rule,
}

impl AggregateKey {
    pub const NAMES: [&'static str; 4] = ["flow", "source", "destination", "rule"];

    pub fn from_name(s: &str) -> Option<AggregateKey> {
        Some(match s {
            "flow" => AggregateKey::Flow,
            "source" => AggregateKey::Source,
            "destination" => AggregateKey::Destination,
            "rule" => AggregateKey::Rule,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

/// Longest node name (`[dataplane] node`).
pub const MAX_NODE_LEN: usize = 64;

/// A node name: what event ids (`node:boot_id:worker:seq`) can carry
/// unquoted and unambiguously: letters, digits, '.', '-', '_' (no ':').
/// The config accepts only such names; readers ignore any other.
pub fn node_name_ok(s: &str) -> bool {
    (1..=MAX_NODE_LEN).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_round_trip() {
        assert_eq!(EventType::COUNT, 6);
        for (i, t) in EventType::ALL.into_iter().enumerate() {
            assert_eq!(t.index(), i);
            assert_eq!(EventType::NAMES[i], t.name());
            assert_eq!(EventType::from_name(t.name()), Some(t));
            assert_eq!(EventType::from_u8(i as u8), Some(t));
        }
        assert_eq!(EventType::from_u8(EventType::COUNT as u8), None);
        assert_eq!(EventType::from_name("policy-deny"), None);
        assert_eq!(EventType::SessionClose.name(), "session_close");
    }

    #[test]
    fn screen_options_round_trip() {
        assert_eq!(ScreenOption::COUNT, 26);
        for (i, o) in ScreenOption::ALL.into_iter().enumerate() {
            assert_eq!(o.index(), i);
            assert_eq!(ScreenOption::NAMES[i], o.name());
            assert_eq!(ScreenOption::from_name(o.name()), Some(o));
            assert_eq!(ScreenOption::from_u8(i as u8), Some(o));
        }
        assert_eq!(ScreenOption::from_u8(ScreenOption::COUNT as u8), None);
        assert_eq!(ScreenOption::from_name("syn_fin"), None);
        assert_eq!(ScreenOption::from_name("alarm-without-drop"), None);
        assert_eq!(ScreenOption::SynFin.name(), "syn-fin");
        assert_eq!(ScreenOption::LimitSession.name(), "limit-session");
    }

    /// Each pipeline stage has its worker stage, named alike (stats use
    /// `_` where `trace` uses `-`).
    #[test]
    fn every_pipeline_stage_is_a_worker_stage() {
        for s in Stage::ALL {
            let w = WorkerStage::of(s);
            let stat_name = w.name().as_bytes();
            let trace_name = s.name().as_bytes();
            assert_eq!(stat_name.len(), trace_name.len());
            for (a, b) in stat_name.iter().zip(trace_name) {
                assert!(
                    a == b || (*a == b'_' && *b == b'-'),
                    "{} {}",
                    w.name(),
                    s.name()
                );
            }
        }
        assert_eq!(
            WorkerStage::of(Stage::FilterOutput).index() + 1,
            WorkerStage::Events.index()
        );
    }

    #[test]
    fn names_are_unique() {
        for names in [
            &EventType::NAMES[..],
            &ScreenOption::NAMES[..],
            &DropReason::NAMES[..],
            &FilterAction::NAMES[..],
            &CloseReason::NAMES[..],
        ] {
            for (i, a) in names.iter().enumerate() {
                assert!(!names[i + 1..].contains(a), "{a} listed twice");
            }
        }
    }
}
