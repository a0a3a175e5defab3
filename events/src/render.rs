//! Renderers for decoded records: `json`, `junos` (Junos standard RT_FLOW /
//! RT_SCREEN text), `junos-sd` (RFC 5424 with Junos structured data, see
//! [`crate::syslog`]) and `droplog` (one decoded line per dropped packet).
//!
//! Every renderer appends one line (no newline) to a `String` and returns
//! false when the format has nothing to say about the record (e.g. `junos`
//! for a stats record). Renderers never panic on any decoded record, whatever
//! its ids or snippet.

use std::fmt::Write as _;
use std::net::IpAddr;

use crate::decode::{NameCache, PacketEvent, Record};
use crate::types::{Event, EventType, FilterAction, Names, NO_ID16, NO_ID32};

/// Output format of `rampart events`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Junos,
    JunosSd,
    Droplog,
}

impl Format {
    pub const ALL: [Format; 4] = [
        Format::Json,
        Format::Junos,
        Format::JunosSd,
        Format::Droplog,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Junos => "junos",
            Format::JunosSd => "junos-sd",
            Format::Droplog => "droplog",
        }
    }
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Format::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| format!("unknown format {s:?} (json, junos, junos-sd, droplog)"))
    }
}

/// Renders `rec` in `format` (for `junos-sd` with the local host name and
/// default facility; see [`crate::syslog::write_junos_sd`] for options).
pub fn render(format: Format, rec: &Record<'_>, names: &NameCache, out: &mut String) -> bool {
    match format {
        Format::Json => {
            write_json(rec, names, out);
            true
        }
        Format::Junos => write_junos(rec, names, out),
        Format::JunosSd => {
            crate::syslog::write_junos_sd(rec, names, crate::syslog::default_options(), out)
        }
        Format::Droplog => write_droplog(rec, names, out),
    }
}

// ---------------------------------------------------------------- time

/// Days since 1970-01-01 to (year, month, day) (H. Hinnant's algorithm).
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Appends `ts_ns` (ns since the Unix epoch) as RFC 3339 UTC with
/// `frac_digits` (0..=9) fractional digits: `2024-05-01T12:00:00.123456789Z`.
pub fn write_rfc3339(out: &mut String, ts_ns: u64, frac_digits: u32) {
    let secs = ts_ns / 1_000_000_000;
    let nanos = ts_ns % 1_000_000_000;
    let (y, mo, d) = civil_from_days((secs / 86_400) as i64);
    let sod = secs % 86_400;
    // Fixed-width digits by hand into one buffer, validated once: every
    // event line starts with this.
    let mut b = *b"0000-00-00T00:00:00.000000000Z";
    let mut put = |at: usize, width: usize, mut v: u64| {
        for i in (at..at + width).rev() {
            b[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, y.clamp(0, 9999) as u64);
    put(5, 2, mo.into());
    put(8, 2, d.into());
    put(11, 2, sod / 3600);
    put(14, 2, (sod / 60) % 60);
    put(17, 2, sod % 60);
    let digits = frac_digits.min(9) as usize;
    put(20, 9, nanos);
    // "...:SS" + (".ddd" if any fraction digits) + "Z".
    let end = if digits > 0 { 20 + digits } else { 19 };
    b[end] = b'Z';
    out.push_str(std::str::from_utf8(&b[..=end]).unwrap_or_default());
}

// ---------------------------------------------------------------- json

/// Whether any byte of `s` must be escaped in a JSON string (a control
/// character, `"` or a backslash): names are checked on every line.
fn json_needs_escape(s: &[u8]) -> bool {
    any_byte(
        s,
        |x| has_byte_below(x, 0x20) || has_byte(x, b'"') || has_byte(x, b'\\'),
        |b| b < 0x20 || b == b'"' || b == b'\\',
    )
}

/// Whether `s` holds a byte up to the space or a non-ASCII byte (the
/// Junos renderer's test for names it can copy as they are).
pub(crate) fn has_space_or_non_ascii(s: &[u8]) -> bool {
    any_byte(
        s,
        |x| has_byte_below(x, 0x21) || x & HIGH_BITS != 0,
        |b| b <= b' ' || b >= 0x80,
    )
}

/// Whether a byte of `s` passes a test, looked at 8 bytes at a time
/// (`word`: the test on a little-endian word of 8; `byte`: on the rest).
#[inline(always)]
fn any_byte(s: &[u8], word: impl Fn(u64) -> bool, byte: impl Fn(u8) -> bool) -> bool {
    let mut chunks = s.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        if word(u64::from_le_bytes(w)) {
            return true;
        }
    }
    chunks.remainder().iter().any(|&b| byte(b))
}

const LOW_BITS: u64 = 0x0101_0101_0101_0101;
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// Whether a byte of `x` is below `n` (`n` <= 128; exact as a yes/no).
const fn has_byte_below(x: u64, n: u8) -> bool {
    x.wrapping_sub(LOW_BITS * n as u64) & !x & HIGH_BITS != 0
}

/// Whether a byte of `x` equals `b`.
const fn has_byte(x: u64, b: u8) -> bool {
    has_byte_below(x ^ (LOW_BITS * b as u64), 1)
}

/// Appends `s` as a JSON string literal.
pub fn json_str(out: &mut String, s: &str) {
    out.push('"');
    // Names rarely need escaping: copy them whole when they do not.
    if !json_needs_escape(s.as_bytes()) {
        out.push_str(s);
        out.push('"');
        return;
    }
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn json_name(out: &mut String, name: Option<&str>, id: u64, none: u64) {
    if id == none {
        out.push_str("null");
    } else if let Some(n) = name {
        json_str(out, n);
    } else {
        let _ = write!(out, "\"#{id}\"");
    }
}

/// `deny`, `reject`, or `audit` (an audit-mode policy would have denied).
fn deny_action(d: &crate::types::PolicyDeny) -> &'static str {
    match (d.audit, d.reject) {
        (true, _) => "audit",
        (false, true) => "reject",
        (false, false) => "deny",
    }
}

/// `"application":"NAME"` when the policy's matched application is known.
fn json_application(out: &mut String, names: &Names, id: u16) {
    if let Some(name) = names.application(id) {
        json_key(out, "application");
        json_str(out, name);
    }
}

/// `,"key":` (keys are this file's own ASCII names: nothing to escape).
fn json_key(out: &mut String, key: &str) {
    out.push_str(",\"");
    out.push_str(key);
    out.push_str("\":");
}

fn json_per_type(out: &mut String, v: &[u64; EventType::COUNT]) {
    out.push('{');
    for (i, t) in EventType::ALL.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "\"{}\":{}", t.name(), v[i]);
    }
    out.push('}');
}

fn json_counters(out: &mut String, c: &[crate::counters::TypeCounters; EventType::COUNT]) {
    out.push('{');
    for (i, t) in EventType::ALL.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let c = &c[i];
        let _ = write!(
            out,
            "\"{}\":{{\"generated\":{},\"rate_limited\":{},\"ring_overflow\":{},\"drained\":{}}}",
            t.name(),
            c.generated,
            c.rate_limited,
            c.ring_overflow,
            c.drained
        );
    }
    out.push('}');
}

fn zone_name(names: &Names, id: u16) -> Option<&str> {
    names.zone(id)
}

/// Appends the JSON object of `rec` (keys of INTERFACES.md "Event stream").
pub fn write_json(rec: &Record<'_>, cache: &NameCache, out: &mut String) {
    out.push_str("{\"type\":");
    json_str(out, rec.type_name());
    match rec {
        Record::Event(e) => {
            json_event(e, cache.names(e.names_generation()), out);
            let mark = out.len();
            out.push_str(",\"event_id\":\"");
            if cache.write_event_id(e.meta.worker, e.seq, out) {
                out.push('"');
            } else {
                out.truncate(mark);
            }
        }
        Record::Hello(h) => {
            json_key(out, "ts");
            out.push('"');
            write_rfc3339(out, h.start_time_ns, 9);
            out.push('"');
            let _ = write!(
                out,
                ",\"schema_version\":{},\"generation\":{},\"start_time_ns\":{}",
                h.schema_version, h.generation, h.start_time_ns
            );
            json_key(out, "producer");
            json_str(out, &h.producer);
            if h.boot_id != 0 {
                json_key(out, "node");
                json_str(out, &h.node);
                out.push_str(",\"boot_id\":\"");
                crate::junos::push_hex16(out, h.boot_id);
                out.push('"');
            }
        }
        Record::Names(t) => {
            let n = &t.names;
            let _ = write!(out, ",\"generation\":{}", t.generation);
            let list = |out: &mut String, key: &str, items: &mut dyn Iterator<Item = &str>| {
                json_key(out, key);
                out.push('[');
                for (i, s) in items.enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    json_str(out, s);
                }
                out.push(']');
            };
            list(out, "zones", &mut n.zones.iter().map(|z| z.name.as_str()));
            list(
                out,
                "interfaces",
                &mut n.interfaces.iter().map(|z| z.name.as_str()),
            );
            list(
                out,
                "policies",
                &mut n.policies.iter().map(|z| z.name.as_str()),
            );
            list(out, "screens", &mut n.screens.iter().map(String::as_str));
            json_key(out, "filters");
            out.push('[');
            for (i, f) in n.filters.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"name\":");
                json_str(out, &f.name);
                list(out, "terms", &mut f.terms.iter().map(String::as_str));
                out.push('}');
            }
            out.push(']');
        }
        Record::Stats(s) => {
            json_key(out, "ts");
            out.push('"');
            write_rfc3339(out, s.ts_ns, 9);
            out.push('"');
            let _ = write!(
                out,
                ",\"generation\":{},\"consumer_id\":{},\"events\":",
                s.generation, s.consumer_id
            );
            json_counters(out, &s.totals);
            out.push_str(",\"delivered\":");
            json_per_type(out, &s.delivered);
            out.push_str(",\"dropped\":");
            json_per_type(out, &s.dropped);
            out.push_str(",\"workers\":[");
            for (i, w) in s.workers.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{{\"worker\":{},\"events\":", w.worker);
                json_counters(out, &w.counters);
                out.push('}');
            }
            out.push(']');
        }
        Record::Loss(l) => {
            json_key(out, "ts");
            out.push('"');
            write_rfc3339(out, l.ts_ns, 9);
            out.push('"');
            let _ = write!(out, ",\"consumer_id\":{},\"dropped\":", l.consumer_id);
            json_per_type(out, &l.dropped);
        }
        Record::ConfigReject(r) => {
            json_key(out, "ts");
            out.push('"');
            write_rfc3339(out, r.ts_ns, 9);
            out.push('"');
            let _ = write!(out, ",\"generation\":{}", r.generation);
            json_key(out, "path");
            json_str(out, &r.path);
            json_key(out, "errors");
            out.push('[');
            for (i, e) in r.errors.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_str(out, e);
            }
            out.push(']');
        }
        Record::Unknown(t) => {
            let _ = write!(out, ",\"body_type\":{t}");
        }
    }
    out.push('}');
}

/// The screen option, its profile and the zone it guards.
fn json_screen(
    out: &mut String,
    names: &Names,
    m: &crate::types::PacketMeta,
    option: crate::types::ScreenOption,
    screen: u16,
) {
    json_key(out, "screen");
    json_str(out, option.name());
    json_key(out, "screen_profile");
    json_name(out, names.screen(screen), screen.into(), NO_ID16.into());
    json_key(out, "zone");
    json_name(
        out,
        zone_name(names, m.from_zone),
        m.from_zone.into(),
        NO_ID16.into(),
    );
}

fn json_event(e: &PacketEvent<'_>, names: &Names, out: &mut String) {
    let m = &e.meta;
    json_key(out, "ts");
    out.push('"');
    write_rfc3339(out, m.ts_ns, 9);
    out.push('"');
    // Written field by field without the formatting machinery: a deny
    // storm renders millions of these per second.
    out.push_str(",\"worker\":");
    push_u64(out, m.worker.into());
    out.push_str(",\"seq\":");
    push_u64(out, e.seq);
    out.push_str(",\"generation\":");
    push_u64(out, m.generation.into());
    out.push_str(",\"src_ip\":\"");
    push_ip(out, &m.src, m.ipv6);
    out.push_str("\",\"dst_ip\":\"");
    push_ip(out, &m.dst, m.ipv6);
    out.push_str("\",\"src_port\":");
    push_u64(out, m.src_port.into());
    out.push_str(",\"dst_port\":");
    push_u64(out, m.dst_port.into());
    out.push_str(",\"protocol\":");
    push_u64(out, m.protocol.into());
    if m.is_icmp() {
        out.push_str(",\"icmp_type\":");
        push_u64(out, m.icmp_type.into());
        out.push_str(",\"icmp_code\":");
        push_u64(out, m.icmp_code.into());
    }
    json_key(out, "interface");
    json_name(
        out,
        names.interface(m.ingress),
        m.ingress.into(),
        NO_ID16.into(),
    );
    json_key(out, "egress_interface");
    json_name(
        out,
        names.interface(m.egress),
        m.egress.into(),
        NO_ID16.into(),
    );
    let zones = |out: &mut String| {
        json_key(out, "from_zone");
        json_name(
            out,
            zone_name(names, m.from_zone),
            m.from_zone.into(),
            NO_ID16.into(),
        );
        json_key(out, "to_zone");
        json_name(
            out,
            zone_name(names, m.to_zone),
            m.to_zone.into(),
            NO_ID16.into(),
        );
    };
    match &e.event {
        Event::PolicyDeny(d) => {
            json_key(out, "policy");
            json_name(out, names.policy(d.policy), d.policy.into(), NO_ID32.into());
            zones(out);
            json_key(out, "action");
            json_str(out, deny_action(d));
            if d.session_id != 0 {
                out.push_str(",\"session_id\":");
                push_u64(out, d.session_id);
            }
            json_application(out, names, d.application);
        }
        Event::ScreenDrop(s) => {
            json_screen(out, names, m, s.option, s.screen);
            json_key(out, "action");
            json_str(out, if s.alarm_only { "alarm" } else { "drop" });
        }
        Event::ScreenEpisode(s) => {
            json_screen(out, names, m, s.option, s.screen);
            json_key(out, "phase");
            json_str(out, s.phase.name());
            json_key(out, "action");
            json_str(out, if s.alarm_only { "alarm" } else { "drop" });
            out.push_str(",\"started\":\"");
            write_rfc3339(out, s.started_ns, 9);
            out.push_str("\",\"last_drop\":\"");
            write_rfc3339(out, s.last_drop_ns, 9);
            out.push_str("\",\"packets\":");
            push_u64(out, s.packets);
            out.push_str(",\"peak_pps\":");
            push_u64(out, s.peak_pps);
            // A scan's or sweep's source is its subject: the list names
            // its targets.
            let targets = crate::episodes::episode_subject_is_source(s.option) == Some(true);
            out.push_str(if targets {
                ",\"top_targets\":["
            } else {
                ",\"top_sources\":["
            });
            for (i, c) in s.top_sources().iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"ip\":\"");
                push_ip(out, &c.addr, !crate::types::is_ipv4_mapped(&c.addr));
                out.push_str("\",\"packets\":");
                push_u64(out, c.packets);
                out.push('}');
            }
            out.push(']');
        }
        Event::FilterLog(f) => {
            json_key(out, "filter");
            json_name(out, names.filter(f.filter), f.filter.into(), NO_ID16.into());
            json_key(out, "term");
            json_name(
                out,
                names.term(f.filter, f.term),
                f.term.into(),
                NO_ID16.into(),
            );
            json_key(out, "action");
            json_str(out, f.action.name());
            json_key(out, "direction");
            json_str(out, f.direction.name());
        }
        Event::SessionOpen(s) => {
            out.push_str(",\"session_id\":");
            push_u64(out, s.session_id);
            json_key(out, "policy");
            json_name(out, names.policy(s.policy), s.policy.into(), NO_ID32.into());
            zones(out);
            json_application(out, names, s.application);
        }
        Event::SessionClose(s) => {
            let _ = write!(
                out,
                ",\"session_id\":{},\"session_generation\":{}",
                s.session_id,
                e.names_generation()
            );
            json_key(out, "policy");
            json_name(out, names.policy(s.policy), s.policy.into(), NO_ID32.into());
            zones(out);
            json_application(out, names, s.application);
            json_key(out, "reason");
            json_str(out, s.reason.name());
            let _ = write!(
                out,
                ",\"packets_client\":{},\"bytes_client\":{},\"packets_server\":{},\"bytes_server\":{},\"elapsed_s\":{}.{:09}",
                s.packets_client,
                s.bytes_client,
                s.packets_server,
                s.bytes_server,
                s.elapsed_ns / 1_000_000_000,
                s.elapsed_ns % 1_000_000_000
            );
        }
    }
    if e.repeat.is_aggregated() {
        // `ts` is the first packet's; these say how many and until when.
        out.push_str(",\"count\":");
        push_u64(out, e.repeat.count.into());
        out.push_str(",\"first_ts\":\"");
        write_rfc3339(out, m.ts_ns, 9);
        out.push_str("\",\"last_ts\":\"");
        write_rfc3339(out, e.repeat.last_ts_ns, 9);
        out.push('"');
    }
    if !e.snippet.is_empty() {
        out.push_str(",\"snippet_len\":");
        push_u64(out, e.snippet.len() as u64);
    }
}

// ---------------------------------------------------------------- junos

pub use crate::junos::protocol_name;
use crate::junos::{name as junos_name, push_ip, push_u64};

/// `junos` format: packet events only.
pub fn write_junos(rec: &Record<'_>, cache: &NameCache, out: &mut String) -> bool {
    match rec {
        Record::Event(e) => {
            crate::junos::write_text(e, cache.names(e.names_generation()), out);
            true
        }
        _ => false,
    }
}

// ---------------------------------------------------------------- droplog

fn mac(out: &mut String, b: &[u8]) {
    for (i, x) in b.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        let _ = write!(out, "{x:02x}");
    }
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn tcp_flags(out: &mut String, f: u8) {
    const NAMES: [(u8, &str); 8] = [
        (0x02, "SYN"),
        (0x10, "ACK"),
        (0x01, "FIN"),
        (0x04, "RST"),
        (0x08, "PSH"),
        (0x20, "URG"),
        (0x40, "ECE"),
        (0x80, "CWR"),
    ];
    let mut first = true;
    for (bit, name) in NAMES {
        if f & bit != 0 {
            if !first {
                out.push(',');
            }
            out.push_str(name);
            first = false;
        }
    }
    if first {
        out.push_str("NONE");
    }
}

/// Decodes an Ethernet frame prefix (the snippet) into `KEY=VALUE` fields.
/// Stops quietly where the snippet ends; never panics.
pub fn write_snippet_fields(out: &mut String, s: &[u8]) {
    let (Some(dst), Some(src)) = (s.get(0..6), s.get(6..12)) else {
        let _ = write!(out, " SNIPPET={}B", s.len());
        return;
    };
    out.push_str(" MAC=");
    mac(out, src);
    out.push('>');
    mac(out, dst);
    let mut off = 12;
    let mut ethertype = match be16(s, off) {
        Some(t) => t,
        None => return,
    };
    off += 2;
    while matches!(ethertype, 0x8100 | 0x88a8) {
        let Some(tci) = be16(s, off) else { return };
        let _ = write!(out, " VLAN={}", tci & 0x0fff);
        let Some(t) = be16(s, off + 2) else { return };
        ethertype = t;
        off += 4;
    }
    let _ = write!(out, " ETH=0x{ethertype:04x}");
    let ip = &s[off.min(s.len())..];
    let (proto, l4) = match ethertype {
        0x0800 => {
            let Some(&vihl) = ip.first() else { return };
            let ihl = usize::from(vihl & 0x0f) * 4;
            if vihl >> 4 != 4 || ihl < 20 || ip.len() < 20 {
                out.push_str(" IPV4=truncated");
                return;
            }
            let total = be16(ip, 2).unwrap_or(0);
            let id = be16(ip, 4).unwrap_or(0);
            let frag = be16(ip, 6).unwrap_or(0);
            let _ = write!(
                out,
                " SRC={} DST={} LEN={} TOS=0x{:02x} TTL={} ID={}",
                std::net::Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]),
                std::net::Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]),
                total,
                ip[1],
                ip[8],
                id
            );
            if frag & 0x4000 != 0 {
                out.push_str(" DF");
            }
            if frag & 0x2000 != 0 {
                out.push_str(" MF");
            }
            let offset = frag & 0x1fff;
            if offset != 0 {
                let _ = write!(out, " FRAG={}", offset * 8);
            }
            if ihl > 20 {
                let _ = write!(out, " OPT={}B", ihl - 20);
            }
            let proto = ip[9];
            if offset != 0 {
                let _ = write!(out, " PROTO={}", proto_label(proto));
                return;
            }
            (proto, ip.get(ihl..).unwrap_or(&[]))
        }
        0x86dd => {
            if ip.len() < 40 || ip[0] >> 4 != 6 {
                out.push_str(" IPV6=truncated");
                return;
            }
            let mut src = [0u8; 16];
            let mut dst = [0u8; 16];
            src.copy_from_slice(&ip[8..24]);
            dst.copy_from_slice(&ip[24..40]);
            let _ = write!(
                out,
                " SRC={} DST={} LEN={} HOPLIMIT={}",
                std::net::Ipv6Addr::from(src),
                std::net::Ipv6Addr::from(dst),
                be16(ip, 4).unwrap_or(0),
                ip[7]
            );
            (ip[6], &ip[40..])
        }
        0x0806 => {
            let op = be16(ip, 6).unwrap_or(0);
            let _ = write!(out, " ARP_OP={op}");
            if let (Some(spa), Some(tpa)) = (ip.get(14..18), ip.get(24..28)) {
                let _ = write!(
                    out,
                    " SRC={} DST={}",
                    IpAddr::from([spa[0], spa[1], spa[2], spa[3]]),
                    IpAddr::from([tpa[0], tpa[1], tpa[2], tpa[3]])
                );
            }
            return;
        }
        _ => return,
    };
    let _ = write!(out, " PROTO={}", proto_label(proto));
    match proto {
        6 => {
            if let (Some(sp), Some(dp)) = (be16(l4, 0), be16(l4, 2)) {
                let _ = write!(out, " SPT={sp} DPT={dp}");
            }
            if let Some(&flags) = l4.get(13) {
                out.push_str(" FLAGS=");
                tcp_flags(out, flags);
            }
            if let Some(win) = be16(l4, 14) {
                let _ = write!(out, " WINDOW={win}");
            }
        }
        17 | 132 => {
            if let (Some(sp), Some(dp)) = (be16(l4, 0), be16(l4, 2)) {
                let _ = write!(out, " SPT={sp} DPT={dp}");
            }
        }
        1 | 58 => {
            if let (Some(t), Some(c)) = (l4.first(), l4.get(1)) {
                let _ = write!(out, " TYPE={t} CODE={c}");
            }
        }
        _ => {}
    }
}

fn proto_label(p: u8) -> String {
    match protocol_name(p) {
        Some(n) => n.to_ascii_uppercase(),
        None => p.to_string(),
    }
}

/// `droplog` format: one line per dropped packet (policy deny, screen drop,
/// filter discard/reject), decoded from the snippet when there is one.
pub fn write_droplog(rec: &Record<'_>, cache: &NameCache, out: &mut String) -> bool {
    let Record::Event(e) = rec else { return false };
    let names = cache.names(e.names_generation());
    let m = &e.meta;
    let (action, rule) = match &e.event {
        Event::PolicyDeny(d) => {
            let mut r = String::from("policy=");
            junos_name(
                &mut r,
                names.policy(d.policy),
                d.policy.into(),
                NO_ID32.into(),
            );
            (deny_action(d), r)
        }
        Event::ScreenDrop(s) if !s.alarm_only => ("drop", format!("screen={}", s.option.name())),
        Event::FilterLog(f) if f.action != FilterAction::Accept => {
            let mut r = String::from("filter=");
            junos_name(
                &mut r,
                names.filter(f.filter),
                f.filter.into(),
                NO_ID16.into(),
            );
            r.push('/');
            junos_name(
                &mut r,
                names.term(f.filter, f.term),
                f.term.into(),
                NO_ID16.into(),
            );
            (f.action.name(), r)
        }
        _ => return false,
    };
    write_rfc3339(out, m.ts_ns, 9);
    let _ = write!(
        out,
        " {} worker={} seq={} {} action={} IN=",
        e.event.event_type().name(),
        m.worker,
        e.seq,
        rule,
        action
    );
    junos_name(
        out,
        names.interface(m.ingress),
        m.ingress.into(),
        NO_ID16.into(),
    );
    out.push_str(" OUT=");
    junos_name(
        out,
        names.interface(m.egress),
        m.egress.into(),
        NO_ID16.into(),
    );
    if e.repeat.is_aggregated() {
        let _ = write!(out, " COUNT={}", e.repeat.count);
    }
    if e.snippet.is_empty() {
        // No packet bytes: what the metadata says.
        let _ = write!(
            out,
            " SRC={} DST={} PROTO={}",
            m.src_ip(),
            m.dst_ip(),
            proto_label(m.protocol)
        );
        if m.is_icmp() {
            let _ = write!(out, " TYPE={} CODE={}", m.icmp_type, m.icmp_code);
        } else {
            let _ = write!(out, " SPT={} DPT={}", m.src_port, m.dst_port);
        }
    } else {
        write_snippet_fields(out, e.snippet);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339() {
        let mut s = String::new();
        write_rfc3339(&mut s, 0, 9);
        assert_eq!(s, "1970-01-01T00:00:00.000000000Z");
        s.clear();
        // 2024-02-29T23:59:59.123456789Z
        write_rfc3339(&mut s, 1_709_251_199_123_456_789, 9);
        assert_eq!(s, "2024-02-29T23:59:59.123456789Z");
        s.clear();
        write_rfc3339(&mut s, 1_709_251_199_123_456_789, 6);
        assert_eq!(s, "2024-02-29T23:59:59.123456Z");
        s.clear();
        write_rfc3339(&mut s, 951_782_400_000_000_000, 0);
        assert_eq!(s, "2000-02-29T00:00:00Z");
    }

    #[test]
    fn json_escapes() {
        let mut s = String::new();
        json_str(&mut s, "a\"b\\c\n\u{1}é");
        assert_eq!(s, "\"a\\\"b\\\\c\\n\\u0001é\"");
    }

    #[test]
    fn snippet_decoding_never_panics_on_prefixes() {
        // Ethernet + VLAN + IPv4 + TCP SYN
        let mut f = vec![
            0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0x81, 0x00,
            0x00, 0x0a, 0x08, 0x00,
        ];
        f.extend_from_slice(&[
            0x45, 0, 0, 40, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 1, 0, 5,
        ]);
        f.extend_from_slice(&[
            0x04, 0xd2, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0x72, 0x10, 0, 0, 0, 0,
        ]);
        let mut full = String::new();
        write_snippet_fields(&mut full, &f);
        assert_eq!(
            full,
            " MAC=66:77:88:99:aa:bb>00:11:22:33:44:55 VLAN=10 ETH=0x0800 SRC=10.0.0.1 DST=10.1.0.5 LEN=40 TOS=0x00 TTL=64 ID=4660 DF PROTO=TCP SPT=1234 DPT=80 FLAGS=SYN WINDOW=29200"
        );
        for n in 0..f.len() {
            let mut s = String::new();
            write_snippet_fields(&mut s, &f[..n]);
        }
    }
}
