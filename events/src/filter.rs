//! The flow filter an operator gives `rampart sessions`, `rampart sessions
//! clear` and `rampart events` (`--source-prefix`, `--destination-prefix`,
//! `--port`, `--protocol`, `--application`, `--policy`, `--zone`,
//! `--interface`), as Junos's `show security flow session` filters and
//! Hubble's `observe` flags read: one definition, matched against a
//! session's or a record's [`FlowFacts`], and written as `key=value` words
//! for the control socket's `sessions` request.
//!
//! Prefixes match the initiator's addresses (a session's client, a
//! record's packet as it travelled); `--port` matches either port,
//! `--zone` either zone and `--interface` either interface, as an operator
//! following one host or one port means.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use rampart_vocab::{protocol_name, protocol_number, EventType};

use crate::decode::{PacketEvent, Record};
use crate::types::{is_ipv4_mapped, Event, Names, ACTIONS};

/// An address prefix, `192.0.2.0/24`, `2001:db8::/32` or one address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpPrefix {
    addr: IpAddr,
    len: u8,
}

impl IpPrefix {
    pub fn contains(&self, a: IpAddr) -> bool {
        match (self.addr, a) {
            (IpAddr::V4(p), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.len)).unwrap_or(0);
                u32::from(p) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(p), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.len))
                    .unwrap_or(0);
                u128::from(p) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for IpPrefix {
    type Err = String;

    fn from_str(s: &str) -> Result<IpPrefix, String> {
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| {
            format!("{s:?} is not an address or prefix (192.0.2.0/24, 2001:db8::/32)")
        })?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = match len {
            None => max,
            Some(l) => l
                .parse::<u8>()
                .ok()
                .filter(|l| *l <= max)
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0 to {max}"))?,
        };
        Ok(IpPrefix { addr, len })
    }
}

impl fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// What a filter looks at in a session or a record; names are `None` when
/// the thing has none (a record of a packet no policy matched).
#[derive(Clone, Copy, Debug, Default)]
pub struct FlowFacts<'a> {
    pub source: Option<IpAddr>,
    pub destination: Option<IpAddr>,
    pub source_port: u16,
    pub destination_port: u16,
    pub protocol: u8,
    pub application: Option<&'a str>,
    pub policy: Option<&'a str>,
    pub zones: [Option<&'a str>; 2],
    pub interfaces: [Option<&'a str>; 2],
}

/// Every condition given must hold; an empty filter passes everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlowFilter {
    pub source_prefix: Option<IpPrefix>,
    pub destination_prefix: Option<IpPrefix>,
    pub port: Option<u16>,
    pub protocol: Option<u8>,
    pub application: Option<String>,
    pub policy: Option<String>,
    pub zone: Option<String>,
    pub interface: Option<String>,
}

/// The filter's keys, as flags (`--KEY`) and request words (`KEY=VALUE`).
pub const FILTER_KEYS: [&str; 8] = [
    "source-prefix",
    "destination-prefix",
    "port",
    "protocol",
    "application",
    "policy",
    "zone",
    "interface",
];

impl FlowFilter {
    pub fn is_empty(&self) -> bool {
        *self == FlowFilter::default()
    }

    pub fn matches(&self, f: &FlowFacts<'_>) -> bool {
        let prefix = |p: &Option<IpPrefix>, a: Option<IpAddr>| match p {
            None => true,
            Some(p) => a.is_some_and(|a| p.contains(a)),
        };
        let name = |want: &Option<String>, have: &[Option<&str>]| match want {
            None => true,
            Some(w) => have.contains(&Some(w.as_str())),
        };
        prefix(&self.source_prefix, f.source)
            && prefix(&self.destination_prefix, f.destination)
            && self
                .port
                .is_none_or(|p| p == f.source_port || p == f.destination_port)
            && self.protocol.is_none_or(|p| p == f.protocol)
            && name(&self.application, &[f.application])
            && name(&self.policy, &[f.policy])
            && name(&self.zone, &f.zones)
            && name(&self.interface, &f.interfaces)
    }

    /// Sets the condition `key` (one of [`FILTER_KEYS`]) from its text;
    /// the error says what was wrong with it.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let text = || {
            if value.is_empty() || value.len() > 64 || value.contains(char::is_whitespace) {
                Err(format!(
                    "{key}: a name of 1 to 64 characters without spaces"
                ))
            } else {
                Ok(Some(value.to_owned()))
            }
        };
        match key {
            "source-prefix" => self.source_prefix = Some(value.parse()?),
            "destination-prefix" => self.destination_prefix = Some(value.parse()?),
            "port" => {
                self.port = Some(
                    value
                        .parse()
                        .map_err(|_| format!("port: {value:?} is not a port (0 to 65535)"))?,
                )
            }
            "protocol" => {
                self.protocol = Some(
                    protocol_number(value)
                        .or_else(|| value.parse().ok())
                        .ok_or_else(|| {
                            format!("protocol: {value:?} is neither a protocol name (tcp, udp, icmp, icmp6, ...) nor a number 0 to 255")
                        })?,
                )
            }
            "application" => self.application = text()?,
            "policy" => self.policy = text()?,
            "zone" => self.zone = text()?,
            "interface" => self.interface = text()?,
            _ => {
                return Err(format!(
                    "unknown filter {key:?}; known: {}",
                    FILTER_KEYS.join(", ")
                ))
            }
        }
        Ok(())
    }

    /// The filter as `key=value` words, which [`FlowFilter::set`] reads
    /// back.
    pub fn words(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut add = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                out.push(format!("{k}={v}"));
            }
        };
        add("source-prefix", self.source_prefix.map(|p| p.to_string()));
        add(
            "destination-prefix",
            self.destination_prefix.map(|p| p.to_string()),
        );
        add("port", self.port.map(|p| p.to_string()));
        add(
            "protocol",
            self.protocol
                .map(|p| protocol_name(p).map_or_else(|| p.to_string(), str::to_owned)),
        );
        add("application", self.application.clone());
        add("policy", self.policy.clone());
        add("zone", self.zone.clone());
        add("interface", self.interface.clone());
        out
    }
}

/// What `rampart events` keeps: event types (`--types`; `stats` names
/// the in-band stats records, which pass only when named once a type
/// list is given), actions (`--action`) and the flow filter. Loss records
/// and the stream's own records (hello, names, rejected reloads) always
/// pass: they explain what follows.
#[derive(Clone, Debug, Default)]
pub struct RecordFilter {
    pub types: Option<TypeSet>,
    pub actions: Option<Vec<&'static str>>,
    pub flow: FlowFilter,
}

/// A set of event types, and whether in-band stats records are in it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TypeSet {
    pub events: [bool; EventType::COUNT],
    pub stats: bool,
}

impl TypeSet {
    /// A comma-separated list of event type names (and `stats`).
    pub fn parse(list: &str) -> Result<TypeSet, String> {
        let mut set = TypeSet::default();
        for name in list.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            match EventType::from_name(name) {
                Some(t) => set.events[t.index()] = true,
                None if name == "stats" => set.stats = true,
                None => {
                    let known: Vec<&str> = EventType::ALL.iter().map(|t| t.name()).collect();
                    return Err(format!(
                        "unknown event type {name:?} (known: {}, stats)",
                        known.join(", ")
                    ));
                }
            }
        }
        Ok(set)
    }
}

/// A comma-separated list of actions ([`ACTIONS`]).
pub fn parse_actions(list: &str) -> Result<Vec<&'static str>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(|a| {
            ACTIONS
                .iter()
                .copied()
                .find(|k| *k == a)
                .ok_or_else(|| format!("unknown action {a:?} (known: {})", ACTIONS.join(", ")))
        })
        .collect()
}

impl RecordFilter {
    /// Whether `rec` is kept; `names` resolves its ids (a packet event's
    /// names generation, see [`PacketEvent::names_generation`]).
    pub fn passes(&self, rec: &Record<'_>, names: Option<&Names>) -> bool {
        match rec {
            Record::Event(e) => {
                self.types
                    .is_none_or(|t| t.events[e.event.event_type().index()])
                    && self
                        .actions
                        .as_ref()
                        .is_none_or(|a| a.contains(&e.event.action_name()))
                    && (self.flow.is_empty() || self.flow.matches(&event_facts(e, names)))
            }
            Record::Stats(_) => self.types.is_none_or(|t| t.stats),
            _ => true,
        }
    }
}

/// What the flow filter sees of a packet event.
pub fn event_facts<'a>(e: &PacketEvent<'_>, names: Option<&'a Names>) -> FlowFacts<'a> {
    let m = &e.meta;
    let addr = |a: &[u8; 16]| -> IpAddr {
        if !m.ipv6 && is_ipv4_mapped(a) {
            IpAddr::from([a[12], a[13], a[14], a[15]])
        } else {
            IpAddr::from(*a)
        }
    };
    let (policy, application) = match e.event {
        Event::PolicyDeny(d) => (Some(d.policy), Some(d.application)),
        Event::SessionOpen(s) => (Some(s.policy), Some(s.application)),
        Event::SessionClose(s) => (Some(s.policy), Some(s.application)),
        _ => (None, None),
    };
    FlowFacts {
        source: Some(addr(&m.src)),
        destination: Some(addr(&m.dst)),
        source_port: m.src_port,
        destination_port: m.dst_port,
        protocol: m.protocol,
        application: names.zip(application).and_then(|(n, a)| n.application(a)),
        policy: names.zip(policy).and_then(|(n, p)| n.policy(p)),
        zones: [
            names.and_then(|n| n.zone(m.from_zone)),
            names.and_then(|n| n.zone(m.to_zone)),
        ],
        interfaces: [
            names.and_then(|n| n.interface(m.ingress)),
            names.and_then(|n| n.interface(m.egress)),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> FlowFacts<'static> {
        FlowFacts {
            source: Some("198.51.100.7".parse().unwrap()),
            destination: Some("192.0.2.80".parse().unwrap()),
            source_port: 40000,
            destination_port: 80,
            protocol: 6,
            application: Some("junos-http"),
            policy: Some("allow-web"),
            zones: [Some("untrust"), Some("trust")],
            interfaces: [Some("ge-0/0/0"), Some("ge-0/0/1")],
        }
    }

    fn filter(words: &[(&str, &str)]) -> FlowFilter {
        let mut f = FlowFilter::default();
        for (k, v) in words {
            f.set(k, v).unwrap();
        }
        f
    }

    #[test]
    fn each_condition_passes_its_match_and_refuses_the_rest() {
        let f = facts();
        assert!(FlowFilter::default().matches(&f));
        for (key, yes, no) in [
            ("source-prefix", "198.51.100.0/24", "198.51.101.0/24"),
            ("source-prefix", "198.51.100.7", "2001:db8::/32"),
            ("destination-prefix", "192.0.2.80/32", "198.51.100.7/32"),
            ("port", "80", "443"),
            ("port", "40000", "40001"),
            ("protocol", "tcp", "udp"),
            ("protocol", "6", "17"),
            ("application", "junos-http", "junos-https"),
            ("policy", "allow-web", "allow"),
            ("zone", "trust", "dmz"),
            ("zone", "untrust", "dmz"),
            ("interface", "ge-0/0/1", "ge-0/0/2"),
        ] {
            assert!(filter(&[(key, yes)]).matches(&f), "{key}={yes}");
            assert!(!filter(&[(key, no)]).matches(&f), "{key}={no}");
        }
        let both = filter(&[("port", "80"), ("zone", "dmz")]);
        assert!(!both.matches(&f), "every condition must hold");
        let none = FlowFacts::default();
        assert!(!filter(&[("policy", "allow-web")]).matches(&none));
        assert!(!filter(&[("source-prefix", "0.0.0.0/0")]).matches(&none));
    }

    /// A record filter reads a packet event's addresses (IPv4 mapped or
    /// not), its names in the record's generation, its type and action.
    #[test]
    fn a_record_filter_reads_each_event_as_the_flow_filter_and_keeps_the_stream_records() {
        use crate::decode::StatsRecord;
        use crate::types::{
            ipv4_mapped, InterfaceName, PacketMeta, PolicyDeny, PolicyName, Repeat, ZoneName,
        };
        let names = Names {
            zones: vec![
                ZoneName {
                    name: "untrust".into(),
                    screen: 0,
                },
                ZoneName {
                    name: "trust".into(),
                    screen: 0,
                },
            ],
            interfaces: vec![
                InterfaceName {
                    name: "ge-0/0/0".into(),
                    zone: 0,
                },
                InterfaceName {
                    name: "ge-0/0/1".into(),
                    zone: 1,
                },
            ],
            policies: vec![PolicyName {
                name: "deny-telnet".into(),
                from_zone: 0,
                to_zone: 1,
            }],
            applications: vec!["junos-telnet".into()],
            ..Names::default()
        };
        let deny = Record::Event(PacketEvent {
            seq: 1,
            meta: PacketMeta {
                src: ipv4_mapped([198, 51, 100, 7]),
                dst: ipv4_mapped([192, 0, 2, 23]),
                src_port: 40000,
                dst_port: 23,
                protocol: 6,
                ingress: 0,
                egress: 1,
                from_zone: 0,
                to_zone: 1,
                generation: 1,
                ..PacketMeta::default()
            },
            event: Event::PolicyDeny(PolicyDeny {
                policy: 0,
                reject: true,
                audit: false,
                session_id: 9,
                application: 0,
            }),
            snippet: &[],
            repeat: Repeat::ONE,
        });
        let keeps = |f: RecordFilter| f.passes(&deny, Some(&names));
        let flow = |k: &str, v: &str| {
            let mut flow = FlowFilter::default();
            flow.set(k, v).unwrap();
            RecordFilter {
                flow,
                ..RecordFilter::default()
            }
        };
        assert!(keeps(RecordFilter::default()));
        assert!(keeps(flow("destination-prefix", "192.0.2.23")));
        assert!(
            !keeps(flow("destination-prefix", "::ffff:192.0.2.23")),
            "read as IPv4"
        );
        assert!(keeps(flow("policy", "deny-telnet")));
        assert!(keeps(flow("application", "junos-telnet")));
        assert!(keeps(flow("interface", "ge-0/0/1")));
        assert!(keeps(flow("zone", "untrust")));
        assert!(!keeps(flow("port", "22")));
        assert!(
            !f_passes_without_names(&deny),
            "names unknown: a name filter fails"
        );
        let types = |l: &str| RecordFilter {
            types: Some(TypeSet::parse(l).unwrap()),
            ..RecordFilter::default()
        };
        assert!(keeps(types("session_open,policy_deny")));
        assert!(!keeps(types("session_open")));
        let actions = |l: &str| RecordFilter {
            actions: Some(parse_actions(l).unwrap()),
            ..RecordFilter::default()
        };
        assert!(keeps(actions("reject")));
        assert!(!keeps(actions("deny,permit")));
        assert!(parse_actions("allow").unwrap_err().contains("known: deny"));
        assert!(TypeSet::parse("denies").unwrap_err().contains("stats"));
        let stats = Record::Stats(StatsRecord::default());
        assert!(RecordFilter::default().passes(&stats, None));
        assert!(
            !types("policy_deny").passes(&stats, None),
            "a type list drops stats"
        );
        assert!(types("policy_deny,stats").passes(&stats, None));
        assert!(
            flow("port", "1").passes(&stats, None),
            "the flow filter keeps stats"
        );

        fn f_passes_without_names(r: &Record<'_>) -> bool {
            let mut flow = FlowFilter::default();
            flow.set("policy", "deny-telnet").unwrap();
            RecordFilter {
                flow,
                ..RecordFilter::default()
            }
            .passes(r, None)
        }
    }

    #[test]
    fn prefixes_compare_only_their_bits() {
        let p: IpPrefix = "2001:db8::/32".parse().unwrap();
        assert!(p.contains("2001:db8:ffff::1".parse().unwrap()));
        assert!(!p.contains("2001:db9::1".parse().unwrap()));
        let all: IpPrefix = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("203.0.113.9".parse().unwrap()));
        assert!(!all.contains("::1".parse().unwrap()), "no family crossing");
    }

    #[test]
    fn words_read_back_and_bad_values_say_why() {
        let f = filter(&[
            ("source-prefix", "198.51.100.0/24"),
            ("destination-prefix", "2001:db8::1"),
            ("port", "53"),
            ("protocol", "udp"),
            ("application", "junos-dns-udp"),
            ("policy", "allow-dns"),
            ("zone", "trust"),
            ("interface", "ge-0/0/1"),
        ]);
        let mut back = FlowFilter::default();
        for w in f.words() {
            let (k, v) = w.split_once('=').unwrap();
            back.set(k, v).unwrap();
        }
        assert_eq!(back, f);
        for (k, v, says) in [
            ("port", "http", "not a port"),
            ("port", "70000", "not a port"),
            ("protocol", "tcpx", "neither a protocol name"),
            ("source-prefix", "10.0.0.0/33", "0 to 32"),
            ("destination-prefix", "example.com", "not an address"),
            ("policy", "", "1 to 64"),
            ("colour", "red", "unknown filter"),
        ] {
            let e = FlowFilter::default().set(k, v).unwrap_err();
            assert!(e.contains(says), "{k}={v}: {e}");
        }
    }
}
