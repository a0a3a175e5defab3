//! Junos messages, one template each: the single source of truth for the
//! structured-data form (`junos-sd`, RFC 5424 `[junos@... name="value" ...]`)
//! and the plain text form (`junos`, BSD syslog) of every RT_FLOW, RT_SCREEN
//! and PFE_FW_SYSLOG message. A template is the plain text with each value
//! as a `{parameter-name}` placeholder; the structured form lists the same
//! parameters in the same order, so the two cannot drift apart. A `{=name}`
//! placeholder is in the structured form only (a real SRX's plain deny line
//! has no session id). Field names, order and layout follow real SRX lines
//! (`events/tests/data/srx_samples.md` names their sources).
//!
//! Rendering writes straight into the caller's buffer: no allocation.

use std::fmt::Write as _;
use std::sync::OnceLock;

use crate::decode::{NameCache, PacketEvent, Record};
use crate::text::{push_ip, push_u64};
use crate::types::{
    is_ipv4_mapped, Event, FilterAction, FilterDirection, Names, PacketMeta, ScreenDrop,
    ScreenEpisode, ScreenOption, NO_ID16,
};

/// The SD-ID of Junos security log structured data.
pub const JUNOS_SD_ID: &str = "junos@2636.1.1.1.2.129";

/// Which form a value is written for (a few values differ, as on an SRX).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Form {
    Structured,
    Text,
}

/// One Junos message kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message {
    /// Syslog APP-NAME (RFC 5424) and BSD program: `RT_FLOW`, `RT_IDS`, or
    /// `None` for firewall filter logs, which a real SRX sends without one.
    pub app: Option<&'static str>,
    /// The message tag: `RT_FLOW_SESSION_CREATE`, `PFE_FW_SYSLOG_IP`...
    pub tag: &'static str,
    /// The plain text with `{parameter}` placeholders.
    pub template: &'static Template,
    /// Junos sends it with structured data (filter logs are text only).
    pub structured: bool,
}

static DENY: Template = Template::new("session denied {source-address}/{source-port}->{destination-address}/{destination-port} {connection-tag} {service-name} {protocol-id}({icmp-type}) {policy-name} {source-zone-name} {destination-zone-name} {application} {nested-application} {username}({roles}) {packet-incoming-interface} {encrypted} {reason}{=session-id-32}{=application-category}{=application-sub-category}{=application-risk}{=application-characteristics}");

static CREATE: Template = Template::new("session created {source-address}/{source-port}->{destination-address}/{destination-port} {connection-tag} {service-name} {nat-source-address}/{nat-source-port}->{nat-destination-address}/{nat-destination-port} {nat-connection-tag} {src-nat-rule-type} {src-nat-rule-name} {dst-nat-rule-type} {dst-nat-rule-name} {protocol-id} {policy-name} {source-zone-name} {destination-zone-name} {session-id-32} {username}({roles}) {packet-incoming-interface} {application} {nested-application} {encrypted} {application-category} {application-sub-category} {application-risk} {application-characteristics}");

static CLOSE: Template = Template::new("session closed {reason}: {source-address}/{source-port}->{destination-address}/{destination-port} {connection-tag} {service-name} {nat-source-address}/{nat-source-port}->{nat-destination-address}/{nat-destination-port} {nat-connection-tag} {src-nat-rule-type} {src-nat-rule-name} {dst-nat-rule-type} {dst-nat-rule-name} {protocol-id} {policy-name} {source-zone-name} {destination-zone-name} {session-id-32} {packets-from-client}({bytes-from-client}) {packets-from-server}({bytes-from-server}) {elapsed-time} {application} {nested-application} {username}({roles}) {packet-incoming-interface} {encrypted} {application-category} {application-sub-category} {application-risk} {application-characteristics}");

static SCREEN_PORTS: Template = Template::new("{attack-name} source: {source-address}:{source-port}, destination: {destination-address}:{destination-port}, zone name: {source-zone-name}, interface name: {interface-name}, action: {action}");

static SCREEN_ADDRESSES: Template = Template::new("{attack-name} source: {source-address}, destination: {destination-address}, zone name: {source-zone-name}, interface name: {interface-name}, action: {action}");

static SCREEN_IP: Template = Template::new("{attack-name} source: {source-address}, destination: {destination-address}, protocol-id: {protocol-id}, zone name: {source-zone-name}, interface name: {interface-name}, action: {action}");

/// The trailing space is a real SRX's.
/// An attack episode ([events.episodes]) has no SRX message: this one is
/// Rampart's, worded like RT_SCREEN's so that a reader of those reads it.
static SCREEN_EPISODE: Template = Template::new("{attack-name} {phase}: source: {source-address}, destination: {destination-address}, zone name: {source-zone-name}, interface name: {interface-name}, packets: {packets}, peak-pps: {peak-pps}, elapsed-time: {elapsed-time}, top-sources: {top-sources}, action: {action}");

static FIREWALL_FILTER: Template = Template::new("FW: {interface} {filter-action} {protocol} {source-address} {destination-address} {source-port} {destination-port} ({packets} packets) ");

/// The message an event is sent as.
pub fn message(e: &PacketEvent<'_>) -> Message {
    use crate::types::ScreenClass;
    let m = &e.meta;
    let flow = |tag, template: &'static Template| Message {
        app: Some("RT_FLOW"),
        tag,
        template,
        structured: true,
    };
    match &e.event {
        Event::PolicyDeny(_) => flow("RT_FLOW_SESSION_DENY", &DENY),
        Event::SessionOpen(_) => flow("RT_FLOW_SESSION_CREATE", &CREATE),
        Event::SessionClose(_) => flow("RT_FLOW_SESSION_CLOSE", &CLOSE),
        Event::ScreenDrop(s) => {
            let class = match crate::types::junos_screen(s.option).1 {
                ScreenClass::ByProtocol => match m.protocol {
                    6 => ScreenClass::Tcp,
                    17 => ScreenClass::Udp,
                    1 | 58 => ScreenClass::Icmp,
                    _ => ScreenClass::Ip,
                },
                c => c,
            };
            let (tag, template): (_, &'static Template) = match class {
                ScreenClass::Tcp => ("RT_SCREEN_TCP", &SCREEN_PORTS),
                ScreenClass::Udp => ("RT_SCREEN_UDP", &SCREEN_PORTS),
                ScreenClass::Icmp => ("RT_SCREEN_ICMP", &SCREEN_ADDRESSES),
                ScreenClass::SessionLimit => ("RT_SCREEN_SESSION_LIMIT", &SCREEN_ADDRESSES),
                ScreenClass::Ip | ScreenClass::ByProtocol => ("RT_SCREEN_IP", &SCREEN_IP),
            };
            Message {
                app: Some("RT_IDS"),
                tag,
                template,
                structured: true,
            }
        }
        Event::ScreenEpisode(_) => Message {
            app: Some("RT_IDS"),
            tag: "RT_SCREEN_EPISODE",
            template: &SCREEN_EPISODE,
            structured: true,
        },
        Event::FilterLog(_) => Message {
            app: None,
            tag: if !m.ipv6 {
                "PFE_FW_SYSLOG_IP"
            } else if m.protocol == 6 || m.protocol == 17 {
                "PFE_FW_SYSLOG_IP6_TCP_UDP"
            } else if m.protocol == 58 {
                "PFE_FW_SYSLOG_IP6_ICMP"
            } else {
                "PFE_FW_SYSLOG_IP6_GEN"
            },
            template: &FIREWALL_FILTER,
            structured: false,
        },
    }
}

/// A message template, parsed once into its pieces (see the module doc).
pub struct Template {
    text: &'static str,
    parsed: OnceLock<Vec<Piece>>,
    /// The plain text's pieces: the parameters it does not show left out
    /// and the fixed values ([`fixed_value`]) merged into the text around
    /// them, so a line is a few copies and only the packet's own values.
    plain: OnceLock<Vec<PlainPiece>>,
    /// The structured data's pieces likewise: `name="value"` of the fixed
    /// values merged into literal runs.
    structured: OnceLock<Vec<StructuredPiece>>,
}

/// A piece of the structured data once fixed values are merged in: a
/// literal run, or a parameter and whether its value may need escaping.
#[derive(Debug)]
enum StructuredPiece {
    Text(Box<str>),
    Param(Field, bool),
}

/// A piece of the plain text once fixed values are merged in.
#[derive(Debug)]
enum PlainPiece {
    Text(Box<str>),
    Param(Field),
}

/// Literal text, or a parameter and whether the plain text shows it.
#[derive(Clone, Copy, Debug)]
enum Piece {
    Text(&'static str),
    Param(Field, bool),
}

impl std::fmt::Debug for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.text)
    }
}

impl PartialEq for Template {
    fn eq(&self, other: &Template) -> bool {
        self.text == other.text
    }
}

impl Eq for Template {}

impl Template {
    const fn new(text: &'static str) -> Template {
        Template {
            text,
            parsed: OnceLock::new(),
            plain: OnceLock::new(),
            structured: OnceLock::new(),
        }
    }

    /// The plain text with its `{parameter}` placeholders.
    pub fn text(&self) -> &'static str {
        self.text
    }

    fn pieces(&self) -> &[Piece] {
        self.parsed.get_or_init(|| parse(self.text))
    }

    fn structured_pieces(&self) -> &[StructuredPiece] {
        self.structured.get_or_init(|| {
            let mut out = Vec::new();
            let mut text = String::new();
            for piece in self.pieces() {
                let Piece::Param(field, _) = *piece else {
                    continue;
                };
                text.push(' ');
                text.push_str(field.name());
                text.push_str("=\"");
                // Merged only where every message kind has the same value
                // (the structured deny's `encrypted` differs).
                let fixed = fixed_value(field, Form::Structured, false)
                    .filter(|&v| fixed_value(field, Form::Structured, true) == Some(v));
                match fixed {
                    Some(v) => {
                        let start = text.len();
                        text.push_str(v);
                        escape_param_value(&mut text, start);
                    }
                    None => {
                        out.push(StructuredPiece::Text(std::mem::take(&mut text).into()));
                        out.push(StructuredPiece::Param(field, !field.value_is_plain()));
                    }
                }
                text.push('"');
            }
            if !text.is_empty() {
                out.push(StructuredPiece::Text(text.into()));
            }
            out
        })
    }

    fn plain_pieces(&self) -> &[PlainPiece] {
        self.plain.get_or_init(|| {
            let mut out = Vec::new();
            let mut text = String::new();
            for piece in self.pieces() {
                match *piece {
                    Piece::Text(t) => text.push_str(t),
                    // The plain text is the same for every message kind:
                    // only the structured deny differs.
                    Piece::Param(field, true) => match fixed_value(field, Form::Text, false) {
                        Some(v) => text.push_str(v),
                        None => {
                            if !text.is_empty() {
                                out.push(PlainPiece::Text(std::mem::take(&mut text).into()));
                            }
                            out.push(PlainPiece::Param(field));
                        }
                    },
                    Piece::Param(_, false) => {}
                }
            }
            if !text.is_empty() {
                out.push(PlainPiece::Text(text.into()));
            }
            out
        })
    }

    /// Whether the message has its own packet count (the PFE filter line's
    /// `(N packets)`); the others carry an aggregated record's count as
    /// [`REPEAT_COUNT`].
    fn counts_packets(&self) -> bool {
        self.pieces()
            .iter()
            .any(|p| matches!(p, Piece::Param(Field::Packets, _)))
    }
}

/// The parameter that carries an aggregated record's packet count in the
/// messages without one of their own (Junos' name for repeats, from its
/// IDP attack logs): `repeat-count="N"` in structured data, ` repeat-count=N`
/// at the end of the plain text, where key=value extractors keep it.
pub const REPEAT_COUNT: &str = "repeat-count";

/// Splits a template into text and parameters. An unknown parameter name
/// is a bug in a template above, and every template is parsed by a test.
fn parse(mut rest: &'static str) -> Vec<Piece> {
    let mut out = Vec::new();
    while !rest.is_empty() {
        match rest.find('{') {
            Some(0) => {
                let end = rest.find('}').expect("a closed placeholder");
                let inner = &rest[1..end];
                let (name, shown) = match inner.strip_prefix('=') {
                    Some(name) => (name, false),
                    None => (inner, true),
                };
                let field = Field::from_name(name)
                    .unwrap_or_else(|| panic!("template parameter {name:?} is not a Field"));
                out.push(Piece::Param(field, shown));
                rest = &rest[end + 1..];
            }
            Some(i) => {
                out.push(Piece::Text(&rest[..i]));
                rest = &rest[i..];
            }
            None => {
                out.push(Piece::Text(rest));
                rest = "";
            }
        }
    }
    out
}

/// The tag of a reload that took effect. Rampart's own (Junos has no
/// config generations); in the `TAG: message` shape of Junos's lines.
pub const CONFIG_LOADED: &str = "RAMPART_CONFIG_LOADED";
/// The tag of a reload that was refused (the running generation stays).
pub const CONFIG_REJECTED: &str = "RAMPART_CONFIG_REJECTED";

/// Appends `RAMPART_CONFIG_LOADED: ...`: generation `generation` is live.
pub fn write_config_loaded(generation: u32, out: &mut String) {
    out.push_str(CONFIG_LOADED);
    out.push_str(": configuration generation ");
    push_u64(out, generation.into());
    out.push_str(" is active");
}

/// Appends `RAMPART_CONFIG_REJECTED: ...`: the reload of `path`, what was
/// wrong (its errors on one line, `; ` between them) and the generation
/// that keeps running.
pub fn write_config_rejected(path: &str, generation: u32, errors: &[String], out: &mut String) {
    out.push_str(CONFIG_REJECTED);
    out.push_str(": reload of ");
    push_one_line(out, if path.is_empty() { "the config" } else { path });
    out.push_str(" rejected, generation ");
    push_u64(out, generation.into());
    out.push_str(" keeps running: ");
    for (i, e) in errors.iter().enumerate() {
        if i > 0 {
            out.push_str("; ");
        }
        push_one_line(out, e);
    }
}

/// `s` with control characters as spaces: one line whatever it holds.
fn push_one_line(out: &mut String, s: &str) {
    out.extend(s.chars().map(|c| if c.is_control() { ' ' } else { c }));
}

/// A record in the `junos` format: packet events, and a reload taking effect or refused
/// (Rampart's own tags, see [`CONFIG_LOADED`]).
pub fn write_record(rec: &Record<'_>, cache: &NameCache, out: &mut String) -> bool {
    match rec {
        Record::Event(e) => {
            write_text(e, cache.names(e.names_generation()), out);
            true
        }
        Record::Hello(h) if cache.reloaded() => {
            write_config_loaded(h.generation, out);
            true
        }
        Record::ConfigReject(r) => {
            write_config_rejected(&r.path, r.generation, &r.errors, out);
            true
        }
        _ => false,
    }
}

/// Appends the plain text of an event: `TAG: message`.
pub fn write_text(e: &PacketEvent<'_>, names: &Names, out: &mut String) {
    let msg = message(e);
    out.push_str(msg.tag);
    out.push_str(": ");
    write_body(e, names, &msg, out);
}

/// Appends the message text without its tag.
pub fn write_body(e: &PacketEvent<'_>, names: &Names, msg: &Message, out: &mut String) {
    for piece in msg.template.plain_pieces() {
        match piece {
            PlainPiece::Text(t) => out.push_str(t),
            PlainPiece::Param(field) => write_value(e, names, *field, Form::Text, out),
        }
    }
    if e.repeat.is_aggregated() && !msg.template.counts_packets() {
        out.push(' ');
        out.push_str(REPEAT_COUNT);
        out.push('=');
        push_u64(out, e.repeat.count.into());
    }
}

/// Appends the structured data element `[junos@... name="value" ...]` of an
/// event whose message is structured; false (nothing written) otherwise.
pub fn write_structured(e: &PacketEvent<'_>, names: &Names, out: &mut String) -> bool {
    let msg = message(e);
    if !msg.structured {
        return false;
    }
    out.push('[');
    out.push_str(JUNOS_SD_ID);
    for piece in msg.template.structured_pieces() {
        match piece {
            StructuredPiece::Text(t) => out.push_str(t),
            StructuredPiece::Param(field, escape) => {
                let start = out.len();
                write_value(e, names, *field, Form::Structured, out);
                if *escape {
                    escape_param_value(out, start);
                }
            }
        }
    }
    if e.repeat.is_aggregated() && !msg.template.counts_packets() {
        out.push(' ');
        out.push_str(REPEAT_COUNT);
        out.push_str("=\"");
        push_u64(out, e.repeat.count.into());
        out.push('"');
    }
    out.push(']');
    true
}

/// RFC 5424 PARAM-VALUE escaping of `out[start..]` (`"`, `\` and `]`).
fn escape_param_value(out: &mut String, start: usize) {
    if !out.as_bytes()[start..]
        .iter()
        .any(|b| matches!(b, b'"' | b'\\' | b']'))
    {
        return;
    }
    let value = out.split_off(start);
    for c in value.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
}

/// A parameter of the Junos messages, by its Junos name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    SourceAddress,
    SourcePort,
    DestinationAddress,
    DestinationPort,
    ConnectionTag,
    ServiceName,
    ProtocolId,
    IcmpType,
    PolicyName,
    SourceZoneName,
    DestinationZoneName,
    Application,
    NestedApplication,
    Username,
    Roles,
    PacketIncomingInterface,
    Encrypted,
    Reason,
    SessionId32,
    ApplicationCategory,
    ApplicationSubCategory,
    ApplicationRisk,
    ApplicationCharacteristics,
    NatSourceAddress,
    NatSourcePort,
    NatDestinationAddress,
    NatDestinationPort,
    NatConnectionTag,
    SrcNatRuleType,
    SrcNatRuleName,
    DstNatRuleType,
    DstNatRuleName,
    PacketsFromClient,
    BytesFromClient,
    PacketsFromServer,
    BytesFromServer,
    ElapsedTime,
    AttackName,
    InterfaceName,
    Action,
    Interface,
    FilterAction,
    Protocol,
    Packets,
    Phase,
    PeakPps,
    TopSources,
}

impl Field {
    /// Whether the field's values are digits, addresses and punctuation
    /// only (nothing RFC 5424 escapes), so the structured form need not
    /// look at them: names from the config may hold anything.
    fn value_is_plain(self) -> bool {
        use Field as F;
        matches!(
            self,
            F::SourceAddress
                | F::SourcePort
                | F::DestinationAddress
                | F::DestinationPort
                | F::NatSourceAddress
                | F::NatSourcePort
                | F::NatDestinationAddress
                | F::NatDestinationPort
                | F::ProtocolId
                | F::IcmpType
                | F::SessionId32
                | F::PacketsFromClient
                | F::BytesFromClient
                | F::PacketsFromServer
                | F::BytesFromServer
                | F::ElapsedTime
                | F::Packets
                | F::PeakPps
                | F::TopSources
                | F::FilterAction
        )
    }

    const ALL: [Field; 47] = [
        Field::SourceAddress,
        Field::SourcePort,
        Field::DestinationAddress,
        Field::DestinationPort,
        Field::ConnectionTag,
        Field::ServiceName,
        Field::ProtocolId,
        Field::IcmpType,
        Field::PolicyName,
        Field::SourceZoneName,
        Field::DestinationZoneName,
        Field::Application,
        Field::NestedApplication,
        Field::Username,
        Field::Roles,
        Field::PacketIncomingInterface,
        Field::Encrypted,
        Field::Reason,
        Field::SessionId32,
        Field::ApplicationCategory,
        Field::ApplicationSubCategory,
        Field::ApplicationRisk,
        Field::ApplicationCharacteristics,
        Field::NatSourceAddress,
        Field::NatSourcePort,
        Field::NatDestinationAddress,
        Field::NatDestinationPort,
        Field::NatConnectionTag,
        Field::SrcNatRuleType,
        Field::SrcNatRuleName,
        Field::DstNatRuleType,
        Field::DstNatRuleName,
        Field::PacketsFromClient,
        Field::BytesFromClient,
        Field::PacketsFromServer,
        Field::BytesFromServer,
        Field::ElapsedTime,
        Field::AttackName,
        Field::InterfaceName,
        Field::Action,
        Field::Interface,
        Field::FilterAction,
        Field::Protocol,
        Field::Packets,
        Field::Phase,
        Field::PeakPps,
        Field::TopSources,
    ];
    const NAMES: [&'static str; 47] = [
        "source-address",
        "source-port",
        "destination-address",
        "destination-port",
        "connection-tag",
        "service-name",
        "protocol-id",
        "icmp-type",
        "policy-name",
        "source-zone-name",
        "destination-zone-name",
        "application",
        "nested-application",
        "username",
        "roles",
        "packet-incoming-interface",
        "encrypted",
        "reason",
        "session-id-32",
        "application-category",
        "application-sub-category",
        "application-risk",
        "application-characteristics",
        "nat-source-address",
        "nat-source-port",
        "nat-destination-address",
        "nat-destination-port",
        "nat-connection-tag",
        "src-nat-rule-type",
        "src-nat-rule-name",
        "dst-nat-rule-type",
        "dst-nat-rule-name",
        "packets-from-client",
        "bytes-from-client",
        "packets-from-server",
        "bytes-from-server",
        "elapsed-time",
        "attack-name",
        "interface-name",
        "action",
        "interface",
        "filter-action",
        "protocol",
        "packets",
        "phase",
        "peak-pps",
        "top-sources",
    ];

    fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    fn from_name(name: &str) -> Option<Field> {
        Self::NAMES
            .iter()
            .position(|n| *n == name)
            .map(|i| Self::ALL[i])
    }
}

/// The value of a parameter that does not depend on the packet (Rampart
/// has no NAT, user identity or AppID): what an SRX without them reports.
/// `deny`: the message is a session deny.
fn fixed_value(field: Field, form: Form, deny: bool) -> Option<&'static str> {
    use Field as F;
    let text = form == Form::Text;
    Some(match field {
        F::ConnectionTag | F::NatConnectionTag => {
            if text {
                "0x0"
            } else {
                "0"
            }
        }
        F::SrcNatRuleType
        | F::SrcNatRuleName
        | F::DstNatRuleType
        | F::DstNatRuleName
        | F::Username
        | F::Roles
        | F::ApplicationCategory
        | F::ApplicationSubCategory
        | F::ApplicationCharacteristics => "N/A",
        // What an SRX without AppID reports for an unidentified application.
        F::ApplicationRisk => "1",
        F::Application | F::NestedApplication => "UNKNOWN",
        // A real SRX's structured deny says `No`, its plain deny and the
        // sessions of an unidentified application `UNKNOWN`.
        F::Encrypted if deny && !text => "No",
        F::Encrypted => "UNKNOWN",
        _ => return None,
    })
}

/// Appends one parameter's value.
fn write_value(e: &PacketEvent<'_>, names: &Names, field: Field, form: Form, out: &mut String) {
    use Field as F;
    if let Some(v) = fixed_value(field, form, matches!(e.event, Event::PolicyDeny(_))) {
        out.push_str(v);
        return;
    }
    let m = &e.meta;
    let text = form == Form::Text;
    match (field, &e.event) {
        (F::SourceAddress | F::NatSourceAddress, _) => push_ip(out, &m.src, m.ipv6),
        (F::DestinationAddress | F::NatDestinationAddress, _) => push_ip(out, &m.dst, m.ipv6),
        (F::SourcePort | F::NatSourcePort, Event::FilterLog(_)) if m.is_icmp() => {
            push_u64(out, m.icmp_type.into())
        }
        (F::DestinationPort | F::NatDestinationPort, Event::FilterLog(_)) if m.is_icmp() => {
            push_u64(out, m.icmp_code.into())
        }
        (F::SourcePort | F::NatSourcePort, _) => push_u64(out, m.src_port.into()),
        (F::DestinationPort | F::NatDestinationPort, _) => push_u64(out, m.dst_port.into()),
        (F::ServiceName, _) => out.push_str(service_name(m, names, application_of(&e.event))),
        (F::ProtocolId, _) => push_u64(out, m.protocol.into()),
        (F::IcmpType, _) => push_u64(out, m.icmp_type.into()),
        (F::PolicyName, Event::PolicyDeny(d)) => policy(out, names, d.policy),
        (F::PolicyName, Event::SessionOpen(s)) => policy(out, names, s.policy),
        (F::PolicyName, Event::SessionClose(s)) => policy(out, names, s.policy),
        (F::SourceZoneName, _) => zone(out, names, m.from_zone),
        (F::DestinationZoneName, _) => zone(out, names, m.to_zone),
        (F::PacketIncomingInterface | F::InterfaceName, _) => interface(out, names, m.ingress),
        // A filter log names the interface the filter is on.
        (F::Interface, Event::FilterLog(f)) => interface(
            out,
            names,
            match f.direction {
                FilterDirection::Output if m.egress != NO_ID16 => m.egress,
                _ => m.ingress,
            },
        ),
        // Audit mode has no Junos counterpart: a reason of its own, so no
        // parser mistakes it for a packet that was dropped.
        (F::Reason, Event::PolicyDeny(d)) => out.push_str(match (d.audit, d.reject, text) {
            (true, _, false) => "Audited by policy (not enforced)",
            (true, _, true) => "policy audit",
            (false, false, false) => "Denied by policy",
            (false, true, false) => "Rejected by policy",
            (false, false, true) => "policy deny",
            (false, true, true) => "policy reject",
        }),
        (F::Reason, Event::SessionClose(s)) => out.push_str(s.reason.junos_text()),
        (F::SessionId32, Event::PolicyDeny(d)) => push_u64(out, d.session_id),
        (F::SessionId32, Event::SessionOpen(s)) => push_u64(out, s.session_id),
        (F::SessionId32, Event::SessionClose(s)) => push_u64(out, s.session_id),
        (F::PacketsFromClient, Event::SessionClose(s)) => push_u64(out, s.packets_client),
        (F::BytesFromClient, Event::SessionClose(s)) => push_u64(out, s.bytes_client),
        (F::PacketsFromServer, Event::SessionClose(s)) => push_u64(out, s.packets_server),
        (F::BytesFromServer, Event::SessionClose(s)) => push_u64(out, s.bytes_server),
        (F::ElapsedTime, Event::SessionClose(s)) => push_u64(out, s.elapsed_ns / 1_000_000_000),
        (F::AttackName, Event::ScreenDrop(s)) => out.push_str(attack_name(s.option, m)),
        (F::AttackName, Event::ScreenEpisode(s)) => out.push_str(attack_name(s.option, m)),
        (F::Action, Event::ScreenDrop(ScreenDrop { alarm_only, .. }))
        | (F::Action, Event::ScreenEpisode(ScreenEpisode { alarm_only, .. })) => {
            out.push_str(if *alarm_only {
                "alarm-without-drop"
            } else {
                "drop"
            })
        }
        (F::Phase, Event::ScreenEpisode(s)) => out.push_str(s.phase.name()),
        (F::PeakPps, Event::ScreenEpisode(s)) => push_u64(out, s.peak_pps),
        (F::ElapsedTime, Event::ScreenEpisode(s)) => push_u64(
            out,
            s.last_drop_ns.saturating_sub(s.started_ns) / 1_000_000_000,
        ),
        (F::Packets, Event::ScreenEpisode(s)) => push_u64(out, s.packets),
        // `addr(packets)`, space separated, heaviest first.
        (F::TopSources, Event::ScreenEpisode(s)) => {
            for (i, c) in s.top_sources().iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                push_ip(out, &c.addr, !is_ipv4_mapped(&c.addr));
                out.push('(');
                push_u64(out, c.packets);
                out.push(')');
            }
        }
        (F::FilterAction, Event::FilterLog(f)) => out.push(match f.action {
            FilterAction::Accept => 'A',
            FilterAction::Discard => 'D',
            FilterAction::Reject => 'R',
        }),
        (F::Protocol, _) => match protocol_name(m.protocol) {
            Some(p) => out.push_str(p),
            None => push_u64(out, m.protocol.into()),
        },
        // The packets an aggregated record stands for (1 otherwise).
        (F::Packets, _) => push_u64(out, e.repeat.count.into()),
        _ => debug_assert!(false, "no value for {field:?} in {:?}", e.event),
    }
}

fn policy(out: &mut String, names: &Names, id: u32) {
    name(
        out,
        names.policy(id),
        id.into(),
        crate::types::NO_ID32.into(),
    );
}

fn zone(out: &mut String, names: &Names, id: u16) {
    name(out, names.zone(id), id.into(), NO_ID16.into());
}

/// A name for Junos output: the name, or `#id`, or `N/A` for none; never
/// empty and without spaces (so field positions stay fixed).
pub(crate) fn name(out: &mut String, name: Option<&str>, id: u64, none: u64) {
    if id == none {
        out.push_str("N/A");
        return;
    }
    match name {
        Some(n) if !n.is_empty() && !crate::text::has_space_or_non_ascii(n.as_bytes()) => {
            out.push_str(n)
        }
        Some(n) if !n.is_empty() && !n.chars().any(char::is_whitespace) => out.push_str(n),
        Some(n) if !n.is_empty() => {
            for c in n.chars() {
                out.push(if c.is_whitespace() { '_' } else { c });
            }
        }
        _ => {
            let _ = write!(out, "#{id}");
        }
    }
}

/// Junos logical interface name: `ge-0/0/0` is shown as unit 0, `ge-0/0/0.0`.
pub(crate) fn interface(out: &mut String, names: &Names, id: u16) {
    let start = out.len();
    name(out, names.interface(id), id.into(), NO_ID16.into());
    if names.interface(id).is_some() && !out[start..].contains('.') {
        out.push_str(".0");
    }
}

/// The application of the policy that decided an event, if one matched.
fn application_of(e: &Event) -> u16 {
    match e {
        Event::PolicyDeny(d) => d.application,
        Event::SessionOpen(s) => s.application,
        Event::SessionClose(s) => s.application,
        _ => NO_ID16,
    }
}

/// The service name Junos prints for a flow: the application of the policy
/// that matched, by the config's name (`web8080`, `junos-http`); for a
/// policy of `any` (or the default policy) the predefined application of
/// the destination port, `icmp` / `icmp6` for ICMP whatever the message
/// type, or `None`. A session's create and close say the same.
pub fn service_name<'n>(m: &PacketMeta, names: &'n Names, application: u16) -> &'n str {
    match names.application(application) {
        Some(name) if !matches!(name, "" | "any" | "any-ipv4" | "any-ipv6") => name,
        _ => port_service_name(m),
    }
}

/// The predefined application of a flow's destination port.
fn port_service_name(m: &PacketMeta) -> &'static str {
    match (m.protocol, m.dst_port) {
        (6, 21) => "junos-ftp",
        (6, 22) => "junos-ssh",
        (6, 23) => "junos-telnet",
        (6, 25) => "junos-smtp",
        (6, 53) => "junos-dns-tcp",
        (17, 53) => "junos-dns-udp",
        (6, 80) => "junos-http",
        (17, 123) => "junos-ntp",
        (6, 443) => "junos-https",
        (6, 445) => "junos-smb",
        (17, 161) => "junos-snmp-get",
        (1, _) if !m.ipv6 => "icmp",
        (58, _) if m.ipv6 => "icmp6",
        _ => "None",
    }
}

/// The RT_SCREEN attack name, specialised by protocol for scans and sweeps.
pub fn attack_name(option: ScreenOption, m: &PacketMeta) -> &'static str {
    match (option, m.protocol) {
        (ScreenOption::PortScan, 17) => "UDP port scan!",
        (ScreenOption::IpSweep, 6) => "TCP sweep!",
        (ScreenOption::IpSweep, 17) => "UDP sweep!",
        (ScreenOption::IpSweep, 1 | 58) => "ICMP address sweep!",
        _ => crate::types::junos_screen(option).0,
    }
}

pub use rampart_vocab::protocol_name;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses_and_every_field_has_a_name() {
        for t in [
            &DENY,
            &CREATE,
            &CLOSE,
            &SCREEN_PORTS,
            &SCREEN_ADDRESSES,
            &SCREEN_IP,
            &FIREWALL_FILTER,
        ] {
            assert!(!t.pieces().is_empty());
        }
        for f in Field::ALL {
            assert_eq!(Field::from_name(f.name()), Some(f));
        }
    }
}
