//! Values several tables share: protocols, port ranges, ICMP types, DSCP and TCP flag names, device strings.

use super::*;

use rampart_vocab::{protocol_number, IP_PROTOCOLS};

/// Every protocol word the config accepts, for hints.
fn protocol_names() -> Vec<&'static str> {
    let mut names = vec!["any", "icmpv6"];
    names.extend(IP_PROTOCOLS.iter().map(|&(_, n)| n));
    names
}

/// A protocol: a name, a number, or `any` (`None`).
pub(super) fn protocol(ctx: &mut Ctx, v: &Value, span: Span, field: &str) -> Option<Option<u8>> {
    match &v.node {
        Node::Int(_) => ctx.as_int(v, span, field, 0, 255).map(|n| Some(n as u8)),
        Node::Str(s) if s.eq_ignore_ascii_case("any") => Some(None),
        Node::Str(s) => match protocol_number(s).or_else(|| s.parse::<u8>().ok()) {
            Some(p) => Some(Some(p)),
            None => {
                let msg = format!(
                    "unknown protocol '{s}'{}",
                    hint(s, &protocol_names(), "protocol")
                );
                ctx.err(&span, field, msg);
                None
            }
        },
        _ => {
            ctx.type_err(v, &span, field, "a protocol name or number");
            None
        }
    }
}

pub(super) fn port_range(ctx: &mut Ctx, v: &Value, span: Span, field: &str) -> Option<PortRange> {
    match &v.node {
        Node::Int(_) => ctx
            .as_int(v, span, field, 0, u16::MAX.into())
            .map(|n| PortRange::single(n as u16)),
        Node::Str(s) => match s.parse::<PortRange>() {
            Ok(r) => Some(r),
            Err(e) => {
                ctx.err(&span, field, e);
                None
            }
        },
        _ => {
            ctx.type_err(
                v,
                &span,
                field,
                "a port or a port range such as \"1024-65535\"",
            );
            None
        }
    }
}

pub(super) const ICMP_TYPE_NAMES: &[(&str, u8)] = &[
    ("echo-reply", 0),
    ("unreachable", 3),
    ("source-quench", 4),
    ("redirect", 5),
    ("echo-request", 8),
    ("router-advertisement", 9),
    ("router-solicit", 10),
    ("time-exceeded", 11),
    ("parameter-problem", 12),
    ("timestamp", 13),
    ("timestamp-reply", 14),
];

pub(super) fn icmp_value(
    ctx: &mut Ctx,
    v: &Value,
    span: Span,
    field: &str,
    names: &[(&str, u8)],
) -> Option<u8> {
    match &v.node {
        Node::Str(s) if !names.is_empty() => match names.iter().find(|(n, _)| n == s) {
            Some((_, t)) => Some(*t),
            None => {
                let known: Vec<&str> = names.iter().map(|(n, _)| *n).collect();
                let msg = format!("unknown ICMP name '{s}'{}", hint(s, &known, "name"));
                ctx.err(&span, field, msg);
                None
            }
        },
        _ => ctx.as_int(v, span, field, 0, 255).map(|n| n as u8),
    }
}

pub(super) const DSCP_NAMES: &[(&str, u8)] = &[
    ("be", 0),
    ("cs0", 0),
    ("cs1", 8),
    ("af11", 10),
    ("af12", 12),
    ("af13", 14),
    ("cs2", 16),
    ("af21", 18),
    ("af22", 20),
    ("af23", 22),
    ("cs3", 24),
    ("af31", 26),
    ("af32", 28),
    ("af33", 30),
    ("cs4", 32),
    ("af41", 34),
    ("af42", 36),
    ("af43", 38),
    ("cs5", 40),
    ("ef", 46),
    ("cs6", 48),
    ("cs7", 56),
];

pub(super) fn dscp(ctx: &mut Ctx, v: &Value, span: Span, field: &str) -> Option<u8> {
    match &v.node {
        Node::Str(s) => match DSCP_NAMES.iter().find(|(n, _)| n.eq_ignore_ascii_case(s)) {
            Some((_, d)) => Some(*d),
            None => {
                let known: Vec<&str> = DSCP_NAMES.iter().map(|(n, _)| *n).collect();
                let msg = format!("unknown DSCP name '{s}'{}", hint(s, &known, "name"));
                ctx.err(&span, field, msg);
                None
            }
        },
        _ => ctx.as_int(v, span, field, 0, 63).map(|n| n as u8),
    }
}

/// The config's TCP flag words: the vocabulary's names, and the long
/// forms `push` and `urgent`.
fn tcp_flag_names() -> Vec<(&'static str, u8)> {
    let mut names: Vec<(&str, u8)> = rampart_vocab::TCP_FLAGS
        .iter()
        .map(|&(bit, n)| (n, bit))
        .collect();
    names.extend([("push", tcp_flag::PSH), ("urgent", tcp_flag::URG)]);
    names
}

/// Adds one `&`-joined expression (`"syn & !ack"`) to `flags`.
pub(super) fn parse_tcp_flags(expr: &str, flags: &mut TcpFlags) -> Result<(), String> {
    if expr.contains('|') {
        return Err(format!(
            "tcp-flags '{expr}': only '&' conjunctions are supported (write one term per alternative)"
        ));
    }
    for token in expr.split('&') {
        let token = token.trim();
        let (negated, name) = match token.strip_prefix('!') {
            Some(rest) => (true, rest.trim()),
            None => (false, token),
        };
        let name = name.to_ascii_lowercase();
        if name == "tcp-initial" && !negated {
            flags.required |= tcp_flag::SYN;
            flags.forbidden |= tcp_flag::ACK;
            continue;
        }
        let names = tcp_flag_names();
        let Some(&(_, bit)) = names.iter().find(|(n, _)| *n == name) else {
            let known: Vec<&str> = names.iter().map(|(n, _)| *n).collect();
            return Err(format!(
                "tcp-flags '{expr}': unknown flag '{name}'{}",
                hint(&name, &known, "flag")
            ));
        };
        if negated {
            flags.forbidden |= bit;
        } else {
            flags.required |= bit;
        }
    }
    if flags.required & flags.forbidden != 0 {
        return Err(format!(
            "tcp-flags '{expr}': a flag is both required and forbidden"
        ));
    }
    Ok(())
}

pub(crate) fn is_pci_address(s: &str) -> bool {
    fn hex(s: &str, n: usize) -> bool {
        s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit())
    }
    let parts: Vec<&str> = s.split(':').collect();
    let (domain, bus, devfn) = match parts[..] {
        [d, b, df] => (Some(d), b, df),
        [b, df] => (None, b, df),
        _ => return false,
    };
    let Some((dev, func)) = devfn.split_once('.') else {
        return false;
    };
    let domain_ok = match domain {
        Some(d) => hex(d, 4),
        None => true,
    };
    domain_ok
        && hex(bus, 2)
        && hex(dev, 2)
        && func.len() == 1
        && matches!(func.as_bytes()[0], b'0'..=b'7')
}

pub(super) fn check_device(device: &str) -> Result<(), String> {
    if is_pci_address(device) {
        return Ok(());
    }
    let shapes = format!(
        "expected a DPDK vdev (driver prefix {}, e.g. \"net_pcap0,rx_pcap=in.pcap\") or a PCI address (DDDD:BB:DD.F or BB:DD.F)",
        VDEV_PREFIXES.join(", ")
    );
    let mut parts = device.split(',');
    let name = parts.next().unwrap_or("");
    let Some(prefix) = VDEV_PREFIXES.iter().find(|p| name.starts_with(**p)) else {
        return Err(format!("'{device}': {shapes}"));
    };
    let rest = &name[prefix.len()..];
    let rest_ok = name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !rest_ok || (rest.is_empty() && prefix.ends_with('_')) {
        return Err(format!(
            "'{device}': vdev name '{name}' must be a driver prefix followed by letters, digits or '_'"
        ));
    }
    for arg in parts {
        let key = arg.split_once('=').map_or(arg, |(k, _)| k);
        if key.is_empty()
            || !key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(format!(
                "'{device}': bad vdev argument '{arg}' (expected key=value)"
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Named sets (address sets, application sets).
