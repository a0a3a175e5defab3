//! Plain-data event inputs the worker fills, and the enums shared by the
//! encoder, the hub and the renderers. Nothing here allocates.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub use rampart_vocab::records::{
    FilterLog, PolicyDeny, ScreenDrop, SessionClose, SessionOpen, NO_ID16, NO_ID32,
};
pub use rampart_vocab::{
    CloseReason, EpisodePhase, EventType, FilterAction, FilterDirection, ScreenOption,
};

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

/// The attack name Junos prints in RT_SCREEN messages for an option (the
/// option names themselves live in [`rampart_vocab::ScreenOption`]), and
/// its message family.
pub(crate) const fn junos_screen(option: ScreenOption) -> (&'static str, ScreenClass) {
    use ScreenClass::*;
    use ScreenOption as O;
    match option {
        O::Land => ("Land attack!", Tcp),
        O::SynFin => ("SYN and FIN bits!", Tcp),
        O::TcpNoFlag => ("No TCP flag!", Tcp),
        O::FinNoAck => ("FIN but no ACK bit!", Tcp),
        O::Winnuke => ("WinNuke attack!", Tcp),
        O::SynFrag => ("SYN fragment!", Tcp),
        O::TearDrop => ("Teardrop attack!", Ip),
        O::PingDeath => ("Ping of Death!", Icmp),
        O::IcmpFragment => ("ICMP fragment!", Icmp),
        O::IcmpLarge => ("Large ICMP packet!", Icmp),
        O::BlockFrag => ("IP fragment!", Ip),
        O::SourceRouteOption => ("Source Route IP option!", Ip),
        O::LooseSourceRouteOption => ("Loose Src Route IP option!", Ip),
        O::StrictSourceRouteOption => ("Strict Src Route IP option!", Ip),
        O::RecordRouteOption => ("Record Route IP option!", Ip),
        O::TimestampOption => ("Timestamp IP option!", Ip),
        O::SecurityOption => ("Security IP option!", Ip),
        O::StreamOption => ("Stream IP option!", Ip),
        O::BadOption => ("Bad IP option!", Ip),
        O::UnknownProtocol => ("Unknown protocol!", Ip),
        O::SynFlood => ("SYN flood!", Tcp),
        O::IcmpFlood => ("ICMP flood!", Icmp),
        O::UdpFlood => ("UDP flood!", Udp),
        O::PortScan => ("TCP port scan!", ByProtocol),
        O::IpSweep => ("IP sweep!", ByProtocol),
        O::LimitSession => ("Src IP session limit!", SessionLimit),
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

/// Whether a 16-byte address is IPv4-mapped (`::ffff:a.b.c.d`).
pub fn is_ipv4_mapped(a: &[u8; 16]) -> bool {
    a[..10].iter().all(|&b| b == 0) && a[10] == 0xff && a[11] == 0xff
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

/// Sources an episode record names at most.
pub const MAX_TOP_SOURCES: usize = 5;

/// One source of an attack and the packets of it that were dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SourceCount {
    /// IPv4-mapped for IPv4.
    pub addr: [u8; 16],
    pub packets: u64,
}

/// A flood, scan or sweep attack as one episode (`[events.episodes]`):
/// its start, periodic updates, its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScreenEpisode {
    /// Screen profile id.
    pub screen: u16,
    pub option: ScreenOption,
    pub phase: EpisodePhase,
    pub alarm_only: bool,
    /// First drop, ns since the Unix epoch.
    pub started_ns: u64,
    pub last_drop_ns: u64,
    /// Dropped since the start.
    pub packets: u64,
    /// Highest rate over one update interval (packets per second).
    pub peak_pps: u64,
    /// The heaviest other ends of the attack, most packets first: a
    /// flood's sources, a scan's or sweep's targets (its source is the
    /// subject); `top_len` are valid.
    pub top_sources: [SourceCount; MAX_TOP_SOURCES],
    pub top_len: u8,
}

impl ScreenEpisode {
    pub fn top_sources(&self) -> &[SourceCount] {
        &self.top_sources[..usize::from(self.top_len).min(MAX_TOP_SOURCES)]
    }
}

/// One packet event of any type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    PolicyDeny(PolicyDeny),
    ScreenDrop(ScreenDrop),
    FilterLog(FilterLog),
    SessionOpen(SessionOpen),
    SessionClose(SessionClose),
    ScreenEpisode(ScreenEpisode),
}

impl Event {
    pub const fn event_type(&self) -> EventType {
        match self {
            Event::PolicyDeny(_) => EventType::PolicyDeny,
            Event::ScreenDrop(_) => EventType::ScreenDrop,
            Event::FilterLog(_) => EventType::FilterLog,
            Event::SessionOpen(_) => EventType::SessionOpen,
            Event::SessionClose(_) => EventType::SessionClose,
            Event::ScreenEpisode(_) => EventType::ScreenEpisode,
        }
    }

    /// What was done, as JSON's `action` and `rampart events --action`
    /// name it: `deny`, `reject` or `audit` (a policy), `drop` or `alarm`
    /// (a screen), the term's `accept`, `discard` or `reject` (a filter),
    /// `permit` (a session's records).
    pub const fn action_name(&self) -> &'static str {
        match self {
            Event::PolicyDeny(d) => d.action_name(),
            Event::ScreenDrop(ScreenDrop { alarm_only, .. })
            | Event::ScreenEpisode(ScreenEpisode { alarm_only, .. }) => {
                if *alarm_only {
                    "alarm"
                } else {
                    "drop"
                }
            }
            Event::FilterLog(f) => f.action.name(),
            Event::SessionOpen(_) | Event::SessionClose(_) => "permit",
        }
    }
}

/// Every action an event can name ([`Event::action_name`]).
pub const ACTIONS: [&str; 8] = [
    "deny", "reject", "audit", "drop", "alarm", "accept", "discard", "permit",
];

/// Names of one config generation (index = id), as sent in the name table.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Names {
    pub zones: Vec<ZoneName>,
    pub interfaces: Vec<InterfaceName>,
    pub policies: Vec<PolicyName>,
    pub filters: Vec<FilterName>,
    pub screens: Vec<String>,
    /// Application (and application set) names, as the config's.
    pub applications: Vec<String>,
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
    pub fn application(&self, id: u16) -> Option<&str> {
        self.applications.get(usize::from(id)).map(String::as_str)
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
        for (i, o) in ScreenOption::ALL.into_iter().enumerate() {
            assert_eq!(o as usize, i);
            assert_eq!(ScreenOption::from_name(o.name()), Some(o));
            assert_eq!(ScreenOption::from_u8(i as u8), Some(o));
        }
        assert_eq!(
            ScreenOption::from_name("syn-fin"),
            Some(ScreenOption::SynFin)
        );
        assert_eq!(ScreenOption::LimitSession.name(), "limit-session");
    }

    /// `syn-fin` -> `SynFin`: how flatc names the schema's enum variants.
    fn camel(name: &str, separator: char) -> String {
        name.split(separator)
            .map(|w| {
                let mut c = w.chars();
                let first = c.next().unwrap().to_ascii_uppercase();
                std::iter::once(first).chain(c).collect::<String>()
            })
            .collect()
    }

    #[test]
    fn event_type_names_match_schema_enum() {
        use rampart_schema::fb;
        for t in EventType::ALL {
            let generated = fb::EventType(t as u8).variant_name().unwrap();
            assert_eq!(generated, camel(t.name(), '_'));
        }
        assert_eq!(fb::EventType(EventType::COUNT as u8).variant_name(), None);
    }

    #[test]
    fn screen_option_names_match_schema_enum() {
        use rampart_schema::fb;
        for o in ScreenOption::ALL {
            let generated = fb::ScreenOption(o as u8).variant_name().unwrap();
            assert_eq!(generated, camel(o.name(), '-'));
        }
    }

    /// Close reasons, episode phases, filter actions and directions: the
    /// vocabulary's discriminant is
    /// the wire value, so each must name the schema's value of that number.
    #[test]
    fn close_reasons_and_episode_phases_match_schema_enums() {
        use rampart_schema::fb;
        for r in CloseReason::ALL {
            let generated = fb::CloseReason(r as u8).variant_name().unwrap();
            assert_eq!(generated, camel(r.name(), '-'));
        }
        assert_eq!(
            fb::CloseReason(CloseReason::COUNT as u8).variant_name(),
            None
        );
        for p in EpisodePhase::ALL {
            let generated = fb::EpisodePhase(p as u8).variant_name().unwrap();
            assert_eq!(generated, camel(p.name(), '-'));
        }
        assert_eq!(
            fb::EpisodePhase(EpisodePhase::COUNT as u8).variant_name(),
            None
        );
        for a in FilterAction::ALL {
            let generated = fb::FilterAction(a as u8).variant_name().unwrap();
            assert_eq!(generated, camel(a.name(), '-'));
        }
        assert_eq!(
            fb::FilterAction(FilterAction::COUNT as u8).variant_name(),
            None
        );
        for d in FilterDirection::ALL {
            let generated = fb::Direction(d as u8).variant_name().unwrap();
            assert_eq!(generated, camel(d.name(), '-'));
        }
        assert_eq!(
            fb::Direction(FilterDirection::COUNT as u8).variant_name(),
            None
        );
    }
}

/// What an aggregated record stands for (`[events.aggregate]`): `count`
/// packets, the first decided at the record's `meta.ts_ns`, the last at
/// `last_ts_ns`. [`Repeat::ONE`] (a record per packet) is not written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repeat {
    pub count: u32,
    /// 0: the record is not aggregated.
    pub last_ts_ns: u64,
}

impl Repeat {
    pub const ONE: Repeat = Repeat {
        count: 1,
        last_ts_ns: 0,
    };

    /// Whether the record came out of an aggregation window (even one
    /// that saw a single packet).
    pub const fn is_aggregated(&self) -> bool {
        self.last_ts_ns != 0
    }
}

impl Default for Repeat {
    fn default() -> Self {
        Repeat::ONE
    }
}
