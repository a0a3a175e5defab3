//! `--format droplog`: one decoded line per dropped packet (MACs,
//! ethertype, addresses, TTL, ports, TCP flags ...) from its snippet.

use std::fmt::Write as _;
use std::net::IpAddr;

use crate::decode::{NameCache, Record};
use crate::junos::{name as junos_name, protocol_name};
use crate::text::write_rfc3339;
use crate::types::{Event, FilterAction, NO_ID16, NO_ID32};

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
    let mut first = true;
    for (bit, name) in rampart_vocab::TCP_FLAGS {
        if f & bit != 0 {
            if !first {
                out.push(',');
            }
            out.extend(name.chars().map(|c| c.to_ascii_uppercase()));
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
            (d.action_name(), r)
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
    use crate::text::json_str;

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
