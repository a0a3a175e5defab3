//! `wire_parse`: arbitrary bytes through the hot-path parser and through
//! every view of `rampart_pipeline::wire` built with `new_checked`, reading
//! every getter. The module's contract: no input bytes make any of it panic.

use rampart_pipeline::flow::proto;
use rampart_pipeline::wire::{
    self, arp, build, checksum, ethernet, icmp, ipv4, ipv6, tcp, udp, vlan, IpVersion, Parsed,
};

pub fn wire_parse(data: &[u8]) {
    let parsed = wire::parse(data);
    let verified = wire::parse_verified(data);
    // parse_verified is parse plus the IPv4 header checksum.
    match (&parsed, &verified) {
        (_, Ok(v)) => assert_eq!(parsed.as_ref(), Ok(v)),
        (Ok(_), Err(e)) => assert_eq!(*e, wire::Malformed::BadIpv4Checksum),
        (Err(a), Err(b)) => assert!(a == b || *b == wire::Malformed::BadIpv4Checksum),
    }
    match parsed {
        Ok(Parsed::Ip(p)) => {
            // Offsets the stages and the reject builders rely on.
            assert!(p.ip_end() <= data.len());
            assert_eq!(usize::from(p.l4_offset) + usize::from(p.l4_len), p.ip_end());
            assert!(p.l3_offset() <= usize::from(p.l4_offset));
            assert!(usize::from(p.l2.vlan_count) <= wire::MAX_VLAN_TAGS);
            assert_eq!(p.src.is_ipv4(), p.version == IpVersion::V4);
            if !p.has_l4 {
                assert_eq!((p.src_port, p.dst_port), (0, 0));
                assert!(p.tcp_flags.is_empty());
            }
            if p.frag.offset != 0 {
                assert!(p.frag.is_fragment && !p.has_l4);
            }
            let _ = p.flow_key().reversed();
            let _ = p.l2.outer_vlan();
            let _ = p.l2.inner_vlan();
            let _ = (p.src.to_ip_addr(), p.dst.to_ip_addr());
            answers(data, &p);
        }
        Ok(Parsed::NonIp(l2)) => {
            assert!(usize::from(l2.l3_offset) <= data.len());
            let _ = (l2.outer_vlan(), l2.inner_vlan(), l2.is_arp());
        }
        Err(m) => {
            let _ = (m.name(), m.index());
        }
    }
    views(data);
}

/// The reject answers: whatever they build must be a frame that parses, and
/// never more than the buffer.
fn answers(frame: &[u8], p: &wire::ParsedPacket) {
    let mut out = [0u8; 1600];
    for len in [out.len(), 70, 54, 0] {
        for tcp in [true, false] {
            let buf = &mut out[..len];
            let r = if tcp {
                build::tcp_reset(frame, p, buf)
            } else {
                build::icmp_unreachable(frame, p, buf)
            };
            if let Ok(n) = r {
                assert!(n <= len);
                match wire::parse_verified(&buf[..n]) {
                    Ok(Parsed::Ip(a)) => {
                        assert_eq!((a.src, a.dst), (p.dst, p.src), "answer goes back");
                        assert!(a.has_l4);
                    }
                    other => panic!("answer does not parse: {other:?}"),
                }
            }
        }
    }
}

/// Every `new_checked` view at every plausible offset, every getter.
fn views(data: &[u8]) {
    if let Ok(f) = ethernet::Frame::new_checked(data) {
        let _ = (f.dst_addr(), f.src_addr(), f.ethertype(), f.payload().len());
    }
    // Headers start at 14 (untagged), 18 and 22 (tags), and 0 (raw).
    for off in [0usize, 14, 18, 22] {
        let Some(b) = data.get(off..) else { continue };
        if let Ok(v) = vlan::Packet::new_checked(b) {
            let _ = (
                v.tci(),
                v.pcp(),
                v.dei(),
                v.vid(),
                v.ethertype(),
                v.payload(),
            );
        }
        if let Ok(a) = arp::Packet::new_checked(b) {
            let _ = (
                a.hardware_type(),
                a.protocol_type(),
                a.hardware_len(),
                a.protocol_len(),
                a.operation(),
                a.sender_hardware_addr(),
                a.sender_protocol_addr(),
                a.target_hardware_addr(),
                a.target_protocol_addr(),
            );
        }
        if let Ok(ip) = ipv4::Packet::new_checked(b) {
            ipv4_view(&ip);
        }
        if let Ok(ip) = ipv6::Packet::new_checked(b) {
            ipv6_view(&ip);
        }
        l4_views(b, 0);
        let _ = ipv4::OptionSet::from_options(b);
        for o in ipv4::Options::new(b).take(64) {
            let _ = o.map(|o| (o.kind, o.len, o.data.len()));
        }
        let _ = checksum::verify(b);
        let _ = checksum::sum(b);
    }
}

fn ipv4_view(ip: &ipv4::Packet<&[u8]>) {
    let _ = (
        ip.version(),
        ip.header_len(),
        ip.dscp(),
        ip.ecn(),
        ip.total_len(),
        ip.ident(),
        ip.reserved_flag(),
        ip.dont_frag(),
        ip.more_frags(),
        ip.frag_offset(),
        ip.is_fragment(),
        ip.ttl(),
        ip.protocol(),
        ip.checksum(),
        ip.verify_checksum(),
        ip.option_set(),
    );
    assert!(ip.header_len() + ip.payload().len() == usize::from(ip.total_len()));
    // Options never run past the header, however they are encoded.
    let opts = ip.options();
    let mut seen = 0usize;
    for o in ip.options_iter() {
        match o {
            Ok(o) => {
                seen += usize::from(o.len);
                assert!(seen <= opts.len());
            }
            Err(_) => break,
        }
    }
    let pseudo = checksum::pseudo_header_v4(
        ip.src_addr(),
        ip.dst_addr(),
        ip.protocol(),
        ip.payload().len() as u16,
    );
    l4_views(ip.payload(), pseudo);
}

fn ipv6_view(ip: &ipv6::Packet<&[u8]>) {
    let _ = (
        ip.version(),
        ip.traffic_class(),
        ip.dscp(),
        ip.ecn(),
        ip.flow_label(),
        ip.payload_len(),
        ip.next_header(),
        ip.hop_limit(),
        ip.payload().len(),
    );
    let total = ip.total_len();
    let mut headers = ip.ext_headers();
    let mut n = 0;
    for h in headers.by_ref() {
        n += 1;
        assert!(
            n <= ipv6::MAX_EXT_HEADERS + 1,
            "extension-header walk is bounded"
        );
        match h {
            Ok(h) => assert!(h.offset + h.len <= total),
            Err(_) => break,
        }
    }
    let _ = (headers.next_header(), headers.offset());
    if let Ok(up) = ip.upper_layer() {
        assert!(up.offset <= total);
        assert!(usize::from(up.ext_count) <= ipv6::MAX_EXT_HEADERS);
        let pseudo = checksum::pseudo_header_v6(
            ip.src_addr(),
            ip.dst_addr(),
            up.protocol,
            (total - up.offset) as u32,
        );
        if up.fragment.is_none_or(|f| f.offset == 0) {
            let full = ipv6::Packet::new_unchecked(ip.into_inner()).into_inner();
            if let Some(l4) = full.get(up.offset..total) {
                l4_views(l4, pseudo);
            }
        }
    }
}

fn l4_views(b: &[u8], pseudo: u16) {
    if let Ok(t) = tcp::Packet::new_checked(b) {
        let _ = (
            t.src_port(),
            t.dst_port(),
            t.seq_number(),
            t.ack_number(),
            t.header_len(),
            t.flags(),
            t.window_len(),
            t.checksum(),
            t.urgent_at(),
            t.options(),
            t.payload(),
            t.segment_len(),
            t.verify_checksum(pseudo),
        );
        assert_eq!(t.header_len() + t.payload().len(), b.len());
    }
    if let Ok(u) = udp::Packet::new_checked(b) {
        let _ = (
            u.src_port(),
            u.dst_port(),
            u.len(),
            u.is_empty(),
            u.checksum(),
            u.payload(),
            u.verify_checksum(pseudo),
        );
    }
    if let Ok(i) = icmp::Packet::new_checked(b) {
        let _ = (
            i.msg_type(),
            i.msg_code(),
            i.checksum(),
            i.echo_ident(),
            i.echo_seq_no(),
            i.rest_of_header(),
            i.data(),
            i.verify_checksum(pseudo),
        );
        let _ = (
            wire::icmpv4::is_echo(i.msg_type()),
            wire::icmpv4::is_error(i.msg_type()),
            wire::icmpv6::is_echo(i.msg_type()),
        );
    }
    let _ = proto::TCP;
}
