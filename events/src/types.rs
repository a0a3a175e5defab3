//! Plain-data event inputs the worker fills, and the enums shared by the
//! encoder, the hub and the renderers. Nothing here allocates.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A u16 id meaning "none" (no egress interface, no zone, global policy...).
pub const NO_ID16: u16 = u16::MAX;
/// A u32 id meaning "none" (no policy).
pub const NO_ID32: u32 = u32::MAX;

/// Packet event types. The discriminant indexes every per-type counter
/// array (`[u64; EventType::COUNT]`).
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    PolicyDeny = 0,
    ScreenDrop = 1,
    FilterLog = 2,
    SessionOpen = 3,
    SessionClose = 4,
}

impl EventType {
    /// Number of event types (length of per-type counter arrays).
    pub const COUNT: usize = 5;
    /// Every type, in discriminant order.
    pub const ALL: [EventType; EventType::COUNT] = [
        EventType::PolicyDeny,
        EventType::ScreenDrop,
        EventType::FilterLog,
        EventType::SessionOpen,
        EventType::SessionClose,
    ];

    /// The name used in JSON, stats and `--types`.
    pub const fn name(self) -> &'static str {
        match self {
            EventType::PolicyDeny => "policy_deny",
            EventType::ScreenDrop => "screen_drop",
            EventType::FilterLog => "filter_log",
            EventType::SessionOpen => "session_open",
            EventType::SessionClose => "session_close",
        }
    }

    pub fn from_name(name: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.name() == name)
    }

    pub const fn from_u8(v: u8) -> Option<EventType> {
        match v {
            0 => Some(EventType::PolicyDeny),
            1 => Some(EventType::ScreenDrop),
            2 => Some(EventType::FilterLog),
            3 => Some(EventType::SessionOpen),
            4 => Some(EventType::SessionClose),
            _ => None,
        }
    }

    pub const fn index(self) -> usize {
        self as usize
    }
}

macro_rules! screen_options {
    ($( $variant:ident = $name:literal, $attack:literal, $class:ident; )*) => {
        /// Junos screen (`security screen ids-option`) options. `name()` is
        /// the Junos option name used in config, `trace` reasons and events.
        #[repr(u8)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ScreenOption { $( $variant, )* }

        impl ScreenOption {
            pub const ALL: &'static [ScreenOption] = &[ $( ScreenOption::$variant, )* ];
            pub const COUNT: usize = ScreenOption::ALL.len();

            /// Junos option name (`syn-fin`, `ping-death`...).
            pub const fn name(self) -> &'static str {
                match self { $( ScreenOption::$variant => $name, )* }
            }

            pub fn from_name(name: &str) -> Option<ScreenOption> {
                match name { $( $name => Some(ScreenOption::$variant), )* _ => None }
            }

            pub fn from_u8(v: u8) -> Option<ScreenOption> {
                ScreenOption::ALL.get(usize::from(v)).copied()
            }

            /// The attack name Junos prints in RT_SCREEN messages.
            pub const fn junos_attack_name(self) -> &'static str {
                match self { $( ScreenOption::$variant => $attack, )* }
            }

            pub(crate) const fn class(self) -> ScreenClass {
                match self { $( ScreenOption::$variant => ScreenClass::$class, )* }
            }
        }
    };
}

/// Which RT_SCREEN message family an option belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScreenClass {
    Tcp,
    Udp,
    Icmp,
    Ip,
    /// Decided by the packet's protocol (floods, scans, sweeps).
    ByProtocol,
    SessionLimit,
}

screen_options! {
    Land = "land", "Land attack!", Tcp;
    SynFin = "syn-fin", "SYN and FIN bits!", Tcp;
    TcpNoFlag = "tcp-no-flag", "No TCP flag!", Tcp;
    FinNoAck = "fin-no-ack", "FIN but no ACK bit!", Tcp;
    Winnuke = "winnuke", "WinNuke attack!", Tcp;
    SynFrag = "syn-frag", "SYN fragment!", Tcp;
    TearDrop = "tear-drop", "Teardrop attack!", Ip;
    PingDeath = "ping-death", "Ping of Death!", Icmp;
    IcmpFragment = "icmp-fragment", "ICMP fragment!", Icmp;
    IcmpLarge = "icmp-large", "Large ICMP packet!", Icmp;
    BlockFrag = "block-frag", "IP fragment!", Ip;
    SourceRouteOption = "source-route-option", "Source Route IP option!", Ip;
    LooseSourceRouteOption = "loose-source-route-option", "Loose Src Route IP option!", Ip;
    StrictSourceRouteOption = "strict-source-route-option", "Strict Src Route IP option!", Ip;
    RecordRouteOption = "record-route-option", "Record Route IP option!", Ip;
    TimestampOption = "timestamp-option", "Timestamp IP option!", Ip;
    SecurityOption = "security-option", "Security IP option!", Ip;
    StreamOption = "stream-option", "Stream IP option!", Ip;
    BadOption = "bad-option", "Bad IP option!", Ip;
    UnknownProtocol = "unknown-protocol", "Unknown protocol!", Ip;
    SynFlood = "syn-flood", "SYN flood!", Tcp;
    IcmpFlood = "icmp-flood", "ICMP flood!", Icmp;
    UdpFlood = "udp-flood", "UDP flood!", Udp;
    PortScan = "port-scan", "TCP port scan!", ByProtocol;
    IpSweep = "ip-sweep", "IP sweep!", ByProtocol;
    LimitSession = "limit-session", "Src IP session limit!", SessionLimit;
}

/// Filter term action.
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FilterAction {
    Accept = 0,
    Discard = 1,
    Reject = 2,
}

impl FilterAction {
    pub const fn name(self) -> &'static str {
        match self {
            FilterAction::Accept => "accept",
            FilterAction::Discard => "discard",
            FilterAction::Reject => "reject",
        }
    }
    pub const fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(FilterAction::Accept),
            1 => Some(FilterAction::Discard),
            2 => Some(FilterAction::Reject),
            _ => None,
        }
    }
}

/// Filter direction (interface input or output filter).
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Input = 0,
    Output = 1,
}

impl Direction {
    pub const fn name(self) -> &'static str {
        match self {
            Direction::Input => "input",
            Direction::Output => "output",
        }
    }
    pub const fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(Direction::Input),
            1 => Some(Direction::Output),
            _ => None,
        }
    }
}

/// Why a session closed.
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseReason {
    TcpFin = 0,
    TcpRst = 1,
    IdleTimeout = 2,
    Shutdown = 3,
    PolicyReload = 4,
}

impl CloseReason {
    pub const fn name(self) -> &'static str {
        match self {
            CloseReason::TcpFin => "tcp-fin",
            CloseReason::TcpRst => "tcp-rst",
            CloseReason::IdleTimeout => "idle-timeout",
            CloseReason::Shutdown => "shutdown",
            CloseReason::PolicyReload => "policy-reload",
        }
    }
    pub fn from_name(name: &str) -> Option<Self> {
        [
            CloseReason::TcpFin,
            CloseReason::TcpRst,
            CloseReason::IdleTimeout,
            CloseReason::Shutdown,
            CloseReason::PolicyReload,
        ]
        .into_iter()
        .find(|r| r.name() == name)
    }
    pub const fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(CloseReason::TcpFin),
            1 => Some(CloseReason::TcpRst),
            2 => Some(CloseReason::IdleTimeout),
            3 => Some(CloseReason::Shutdown),
            4 => Some(CloseReason::PolicyReload),
            _ => None,
        }
    }
    /// The reason text Junos prints in RT_FLOW_SESSION_CLOSE.
    pub const fn junos_text(self) -> &'static str {
        match self {
            CloseReason::TcpFin => "TCP FIN",
            CloseReason::TcpRst => "TCP RST",
            CloseReason::IdleTimeout => "idle Timeout",
            CloseReason::Shutdown => "CLI",
            CloseReason::PolicyReload => "policy delete",
        }
    }
}

/// Fixed packet metadata of every packet event, filled by the worker.
/// Addresses are 16 bytes; IPv4 is IPv4-mapped (`::ffff:a.b.c.d`, see
/// [`ipv4_mapped`]) with `ipv6 == false`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PacketMeta {
    /// Wall clock, ns since the Unix epoch (UTC).
    pub ts_ns: u64,
    pub worker: u16,
    pub generation: u32,
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub ipv6: bool,
    pub src_port: u16,
    pub dst_port: u16,
    pub protocol: u8,
    pub icmp_type: u8,
    pub icmp_code: u8,
    /// Ingress interface id.
    pub ingress: u16,
    /// Egress interface id, [`NO_ID16`] if none yet.
    pub egress: u16,
    pub from_zone: u16,
    /// [`NO_ID16`] if not known yet.
    pub to_zone: u16,
}

/// `a.b.c.d` as the IPv4-mapped IPv6 address `::ffff:a.b.c.d`.
pub const fn ipv4_mapped(a: [u8; 4]) -> [u8; 16] {
    [
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a[0], a[1], a[2], a[3],
    ]
}

fn to_ip(bytes: &[u8; 16], ipv6: bool) -> IpAddr {
    if ipv6 {
        IpAddr::V6(Ipv6Addr::from(*bytes))
    } else {
        IpAddr::V4(Ipv4Addr::new(bytes[12], bytes[13], bytes[14], bytes[15]))
    }
}

impl PacketMeta {
    pub fn src_ip(&self) -> IpAddr {
        to_ip(&self.src, self.ipv6)
    }
    pub fn dst_ip(&self) -> IpAddr {
        to_ip(&self.dst, self.ipv6)
    }
    /// Protocol carries ICMP or ICMPv6 (so icmp_type/code are meaningful).
    pub fn is_icmp(&self) -> bool {
        (!self.ipv6 && self.protocol == 1) || (self.ipv6 && self.protocol == 58)
    }
}

/// A policy denied (or rejected) the first packet of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyDeny {
    /// Policy id (index in the name table); the default policy has its own id.
    pub policy: u32,
    pub reject: bool,
}

/// A screen option matched: dropped, or alarm only (`alarm-without-drop`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScreenDrop {
    /// Screen profile id.
    pub screen: u16,
    pub option: ScreenOption,
    pub alarm_only: bool,
}

/// A filter term with `then log` matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FilterLog {
    pub filter: u16,
    /// Index of the term in the filter.
    pub term: u16,
    pub action: FilterAction,
    pub direction: Direction,
}

/// A session was created (policy `log session-init`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionOpen {
    pub session_id: u64,
    pub policy: u32,
}

/// A session ended (policy `log session-close`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionClose {
    pub session_id: u64,
    pub policy: u32,
    pub reason: CloseReason,
    pub packets_client: u64,
    pub bytes_client: u64,
    pub packets_server: u64,
    pub bytes_server: u64,
    pub elapsed_ns: u64,
    /// The config generation the session was created in: the record's ids
    /// (policy, zones, interfaces) index that generation's name tables.
    /// 0 = the record's own generation (older producers).
    pub session_generation: u32,
}

/// One packet event of any type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    PolicyDeny(PolicyDeny),
    ScreenDrop(ScreenDrop),
    FilterLog(FilterLog),
    SessionOpen(SessionOpen),
    SessionClose(SessionClose),
}

impl Event {
    pub const fn event_type(&self) -> EventType {
        match self {
            Event::PolicyDeny(_) => EventType::PolicyDeny,
            Event::ScreenDrop(_) => EventType::ScreenDrop,
            Event::FilterLog(_) => EventType::FilterLog,
            Event::SessionOpen(_) => EventType::SessionOpen,
            Event::SessionClose(_) => EventType::SessionClose,
        }
    }
}

/// Names of one config generation (index = id), as sent in the name table.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Names {
    pub zones: Vec<ZoneName>,
    pub interfaces: Vec<InterfaceName>,
    pub policies: Vec<PolicyName>,
    pub filters: Vec<FilterName>,
    pub screens: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ZoneName {
    pub name: String,
    /// Screen profile id, [`NO_ID16`] if none.
    pub screen: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InterfaceName {
    pub name: String,
    /// Zone id, [`NO_ID16`] if none.
    pub zone: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PolicyName {
    pub name: String,
    /// [`NO_ID16`] for global and default policies.
    pub from_zone: u16,
    pub to_zone: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FilterName {
    pub name: String,
    pub terms: Vec<String>,
}

impl Names {
    pub fn zone(&self, id: u16) -> Option<&str> {
        self.zones.get(usize::from(id)).map(|z| z.name.as_str())
    }
    pub fn interface(&self, id: u16) -> Option<&str> {
        self.interfaces
            .get(usize::from(id))
            .map(|i| i.name.as_str())
    }
    pub fn policy(&self, id: u32) -> Option<&str> {
        usize::try_from(id)
            .ok()
            .and_then(|i| self.policies.get(i))
            .map(|p| p.name.as_str())
    }
    pub fn filter(&self, id: u16) -> Option<&str> {
        self.filters.get(usize::from(id)).map(|f| f.name.as_str())
    }
    pub fn term(&self, filter: u16, term: u16) -> Option<&str> {
        self.filters
            .get(usize::from(filter))
            .and_then(|f| f.terms.get(usize::from(term)))
            .map(String::as_str)
    }
    pub fn screen(&self, id: u16) -> Option<&str> {
        self.screens.get(usize::from(id)).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for t in EventType::ALL {
            assert_eq!(EventType::from_name(t.name()), Some(t));
            assert_eq!(EventType::from_u8(t as u8), Some(t));
        }
        assert_eq!(ScreenOption::COUNT, 26);
        for (i, o) in ScreenOption::ALL.iter().enumerate() {
            assert_eq!(*o as usize, i);
            assert_eq!(ScreenOption::from_name(o.name()), Some(*o));
            assert_eq!(ScreenOption::from_u8(i as u8), Some(*o));
        }
        assert_eq!(
            ScreenOption::from_name("syn-fin"),
            Some(ScreenOption::SynFin)
        );
        assert_eq!(ScreenOption::LimitSession.name(), "limit-session");
    }

    #[test]
    fn screen_option_names_match_schema_enum() {
        use rampart_schema::fb;
        for o in ScreenOption::ALL {
            let generated = fb::ScreenOption(*o as u8).variant_name().unwrap();
            let camel: String = o
                .name()
                .split('-')
                .map(|w| {
                    let mut c = w.chars();
                    let first = c.next().unwrap().to_ascii_uppercase();
                    std::iter::once(first).chain(c).collect::<String>()
                })
                .collect();
            assert_eq!(generated, camel);
        }
    }
}
