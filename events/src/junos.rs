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

use crate::decode::PacketEvent;
use crate::types::{Direction, Event, FilterAction, Names, PacketMeta, ScreenOption, NO_ID16};

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
    pub template: &'static str,
    /// Junos sends it with structured data (filter logs are text only).
    pub structured: bool,
}

const DENY: &str = "session denied {source-address}/{source-port}->{destination-address}/{destination-port} {connection-tag} {service-name} {protocol-id}({icmp-type}) {policy-name} {source-zone-name} {destination-zone-name} {application} {nested-application} {username}({roles}) {packet-incoming-interface} {encrypted} {reason}{=session-id-32}{=application-category}{=application-sub-category}{=application-risk}{=application-characteristics}";

const CREATE: &str = "session created {source-address}/{source-port}->{destination-address}/{destination-port} {connection-tag} {service-name} {nat-source-address}/{nat-source-port}->{nat-destination-address}/{nat-destination-port} {nat-connection-tag} {src-nat-rule-type} {src-nat-rule-name} {dst-nat-rule-type} {dst-nat-rule-name} {protocol-id} {policy-name} {source-zone-name} {destination-zone-name} {session-id-32} {username}({roles}) {packet-incoming-interface} {application} {nested-application} {encrypted} {application-category} {application-sub-category} {application-risk} {application-characteristics}";

const CLOSE: &str = "session closed {reason}: {source-address}/{source-port}->{destination-address}/{destination-port} {connection-tag} {service-name} {nat-source-address}/{nat-source-port}->{nat-destination-address}/{nat-destination-port} {nat-connection-tag} {src-nat-rule-type} {src-nat-rule-name} {dst-nat-rule-type} {dst-nat-rule-name} {protocol-id} {policy-name} {source-zone-name} {destination-zone-name} {session-id-32} {packets-from-client}({bytes-from-client}) {packets-from-server}({bytes-from-server}) {elapsed-time} {application} {nested-application} {username}({roles}) {packet-incoming-interface} {encrypted} {application-category} {application-sub-category} {application-risk} {application-characteristics}";

const SCREEN_PORTS: &str = "{attack-name} source: {source-address}:{source-port}, destination: {destination-address}:{destination-port}, zone name: {source-zone-name}, interface name: {interface-name}, action: {action}";

const SCREEN_ADDRESSES: &str = "{attack-name} source: {source-address}, destination: {destination-address}, zone name: {source-zone-name}, interface name: {interface-name}, action: {action}";

const SCREEN_IP: &str = "{attack-name} source: {source-address}, destination: {destination-address}, protocol-id: {protocol-id}, zone name: {source-zone-name}, interface name: {interface-name}, action: {action}";

/// The trailing space is a real SRX's.
const FIREWALL_FILTER: &str = "FW: {interface} {filter-action} {protocol} {source-address} {destination-address} {source-port} {destination-port} ({packets} packets) ";

/// The message an event is sent as.
pub fn message(e: &PacketEvent<'_>) -> Message {
    use crate::types::ScreenClass;
    let m = &e.meta;
    let flow = |tag, template| Message {
        app: Some("RT_FLOW"),
        tag,
        template,
        structured: true,
    };
    match &e.event {
        Event::PolicyDeny(_) => flow("RT_FLOW_SESSION_DENY", DENY),
        Event::SessionOpen(_) => flow("RT_FLOW_SESSION_CREATE", CREATE),
        Event::SessionClose(_) => flow("RT_FLOW_SESSION_CLOSE", CLOSE),
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
            let (tag, template) = match class {
                ScreenClass::Tcp => ("RT_SCREEN_TCP", SCREEN_PORTS),
                ScreenClass::Udp => ("RT_SCREEN_UDP", SCREEN_PORTS),
                ScreenClass::Icmp => ("RT_SCREEN_ICMP", SCREEN_ADDRESSES),
                ScreenClass::SessionLimit => ("RT_SCREEN_SESSION_LIMIT", SCREEN_ADDRESSES),
                ScreenClass::Ip | ScreenClass::ByProtocol => ("RT_SCREEN_IP", SCREEN_IP),
            };
            Message {
                app: Some("RT_IDS"),
                tag,
                template,
                structured: true,
            }
        }
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
            template: FIREWALL_FILTER,
            structured: false,
        },
    }
}

/// The pieces of a template: literal text and placeholders, in order.
enum Piece<'t> {
    Text(&'t str),
    /// A parameter, and whether the plain text shows it.
    Param(&'t str, bool),
}

fn pieces(template: &str) -> impl Iterator<Item = Piece<'_>> {
    let mut rest = template;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        match rest.find('{') {
            Some(0) => {
                let end = rest.find('}').unwrap_or(rest.len());
                let inner = &rest[1..end];
                rest = rest.get(end + 1..).unwrap_or("");
                Some(match inner.strip_prefix('=') {
                    Some(name) => Piece::Param(name, false),
                    None => Piece::Param(inner, true),
                })
            }
            Some(i) => {
                let text = &rest[..i];
                rest = &rest[i..];
                Some(Piece::Text(text))
            }
            None => Some(Piece::Text(std::mem::take(&mut rest))),
        }
    })
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
    for piece in pieces(msg.template) {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Param(name, true) => write_value(e, names, name, Form::Text, out),
            Piece::Param(_, false) => {}
        }
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
    for piece in pieces(msg.template) {
        if let Piece::Param(name, _) = piece {
            out.push(' ');
            out.push_str(name);
            out.push_str("=\"");
            let start = out.len();
            write_value(e, names, name, Form::Structured, out);
            escape_param_value(out, start);
            out.push('"');
        }
    }
    out.push(']');
    true
}

/// RFC 5424 PARAM-VALUE escaping of `out[start..]` (`"`, `\` and `]`).
fn escape_param_value(out: &mut String, start: usize) {
    if !out[start..].contains(['"', '\\', ']']) {
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

/// Appends one parameter's value. Unknown names are a template bug, caught
/// by the test that renders every message.
fn write_value(e: &PacketEvent<'_>, names: &Names, name: &str, form: Form, out: &mut String) {
    let m = &e.meta;
    let text = form == Form::Text;
    match (name, &e.event) {
        ("source-address" | "nat-source-address", _) => push(out, m.src_ip()),
        ("destination-address" | "nat-destination-address", _) => push(out, m.dst_ip()),
        ("source-port" | "nat-source-port", Event::FilterLog(_)) if m.is_icmp() => {
            push(out, m.icmp_type)
        }
        ("destination-port" | "nat-destination-port", Event::FilterLog(_)) if m.is_icmp() => {
            push(out, m.icmp_code)
        }
        ("source-port" | "nat-source-port", _) => push(out, m.src_port),
        ("destination-port" | "nat-destination-port", _) => push(out, m.dst_port),
        ("connection-tag" | "nat-connection-tag", _) => {
            out.push_str(if text { "0x0" } else { "0" })
        }
        ("service-name", _) => out.push_str(service_name(m, names, application_of(&e.event))),
        ("src-nat-rule-type" | "src-nat-rule-name" | "dst-nat-rule-type", _)
        | ("dst-nat-rule-name" | "username" | "roles", _)
        | ("application-category" | "application-sub-category", _)
        | ("application-characteristics", _) => out.push_str("N/A"),
        // What an SRX without AppID reports for an unidentified application.
        ("application-risk", _) => out.push('1'),
        ("protocol-id", _) => push(out, m.protocol),
        ("icmp-type", _) => push(out, m.icmp_type),
        ("policy-name", Event::PolicyDeny(d)) => policy(out, names, d.policy),
        ("policy-name", Event::SessionOpen(s)) => policy(out, names, s.policy),
        ("policy-name", Event::SessionClose(s)) => policy(out, names, s.policy),
        ("source-zone-name", _) => zone(out, names, m.from_zone),
        ("destination-zone-name", _) => zone(out, names, m.to_zone),
        ("application" | "nested-application", _) => out.push_str("UNKNOWN"),
        ("packet-incoming-interface" | "interface-name", _) => interface(out, names, m.ingress),
        // A filter log names the interface the filter is on.
        ("interface", Event::FilterLog(f)) => interface(
            out,
            names,
            match f.direction {
                Direction::Output if m.egress != NO_ID16 => m.egress,
                _ => m.ingress,
            },
        ),
        // A real SRX's structured deny says `No`, its plain deny and the
        // sessions of an unidentified application `UNKNOWN`.
        ("encrypted", Event::PolicyDeny(_)) if !text => out.push_str("No"),
        ("encrypted", _) => out.push_str("UNKNOWN"),
        ("reason", Event::PolicyDeny(d)) => out.push_str(match (d.reject, text) {
            (false, false) => "Denied by policy",
            (true, false) => "Rejected by policy",
            (false, true) => "policy deny",
            (true, true) => "policy reject",
        }),
        ("reason", Event::SessionClose(s)) => out.push_str(s.reason.junos_text()),
        ("session-id-32", Event::PolicyDeny(d)) => push(out, d.session_id),
        ("session-id-32", Event::SessionOpen(s)) => push(out, s.session_id),
        ("session-id-32", Event::SessionClose(s)) => push(out, s.session_id),
        ("packets-from-client", Event::SessionClose(s)) => push(out, s.packets_client),
        ("bytes-from-client", Event::SessionClose(s)) => push(out, s.bytes_client),
        ("packets-from-server", Event::SessionClose(s)) => push(out, s.packets_server),
        ("bytes-from-server", Event::SessionClose(s)) => push(out, s.bytes_server),
        ("elapsed-time", Event::SessionClose(s)) => push(out, s.elapsed_ns / 1_000_000_000),
        ("attack-name", Event::ScreenDrop(s)) => out.push_str(attack_name(s.option, m)),
        ("action", Event::ScreenDrop(s)) => out.push_str(if s.alarm_only {
            "alarm-without-drop"
        } else {
            "drop"
        }),
        ("filter-action", Event::FilterLog(f)) => out.push(match f.action {
            FilterAction::Accept => 'A',
            FilterAction::Discard => 'D',
            FilterAction::Reject => 'R',
        }),
        ("protocol", _) => match protocol_name(m.protocol) {
            Some(p) => out.push_str(p),
            None => push(out, m.protocol),
        },
        // One record per packet (aggregation would count more).
        ("packets", _) => out.push('1'),
        _ => debug_assert!(false, "no value for {name} in {:?}", e.event),
    }
}

fn push(out: &mut String, v: impl std::fmt::Display) {
    let _ = write!(out, "{v}");
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
        Some(name) if !name.is_empty() && !name.starts_with("any") => name,
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

/// Lower-case protocol name as Junos firewall logs print it.
pub fn protocol_name(p: u8) -> Option<&'static str> {
    Some(match p {
        1 => "icmp",
        2 => "igmp",
        4 => "ipip",
        6 => "tcp",
        17 => "udp",
        41 => "ipv6",
        46 => "rsvp",
        47 => "gre",
        50 => "esp",
        51 => "ah",
        58 => "icmp6",
        89 => "ospf",
        103 => "pim",
        112 => "vrrp",
        132 => "sctp",
        _ => return None,
    })
}
