//! The hot-path entry point: Ethernet -> VLAN tags -> IPv4/IPv6 -> L4 in one
//! pass, into a small `Copy` summary. No allocation, no formatting.

use super::ethernet::{self, ethertype, is_vlan_tpid};
use super::{
    arp, icmpv4, icmpv6, ipv4, ipv6, tcp, udp, vlan, IpVersion, Ipv4OptionSet, Malformed, TcpFlags,
};
use crate::flow::{proto, Addr, FlowKey};

/// Most stacked VLAN tags accepted (QinQ); one more is
/// [`Malformed::VlanTooDeep`].
pub const MAX_VLAN_TAGS: usize = 2;

/// Layer 2 summary.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct L2Info {
    /// VLAN ids, outermost first; `vlan_count` are valid.
    pub vlan_ids: [u16; MAX_VLAN_TAGS],
    pub vlan_count: u8,
    /// The EtherType after the tags.
    pub ethertype: u16,
    /// Offset of the L3 header in the frame.
    pub l3_offset: u16,
}

impl L2Info {
    /// The outermost VLAN id.
    pub fn outer_vlan(&self) -> Option<u16> {
        (self.vlan_count > 0).then_some(self.vlan_ids[0])
    }

    /// The innermost VLAN id (the only one when single-tagged).
    pub fn inner_vlan(&self) -> Option<u16> {
        usize::from(self.vlan_count)
            .checked_sub(1)
            .and_then(|i| self.vlan_ids.get(i).copied())
    }

    pub fn is_arp(&self) -> bool {
        self.ethertype == ethertype::ARP
    }
}

/// Fragment summary. `is_fragment` is false for atomic fragments (offset 0,
/// no more fragments).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct FragInfo {
    pub is_fragment: bool,
    /// A fragment with offset 0 (it carries the L4 header).
    pub is_first_fragment: bool,
    /// Offset in bytes; non-zero means no L4 header was read.
    pub offset: u16,
    pub more_fragments: bool,
    /// IPv4 identification or IPv6 fragment identification.
    pub id: u32,
}

/// What the stages need to know about an IP packet.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ParsedPacket {
    pub l2: L2Info,
    pub version: IpVersion,
    pub src: Addr,
    pub dst: Addr,
    /// Upper-layer protocol (after IPv6 extension headers; ESP, 59...).
    pub protocol: u8,
    /// TTL or hop limit.
    pub ttl: u8,
    pub dscp: u8,
    /// IPv4 total length; IPv6 40 + payload length. Trailing Ethernet
    /// padding is excluded.
    pub ip_total_len: u32,
    /// IPv4 DF (false for IPv6).
    pub dont_fragment: bool,
    pub frag: FragInfo,
    /// IPv4 options seen (empty for IPv6).
    pub ip_options: Ipv4OptionSet,
    /// IPv6 extension headers stepped over.
    pub ipv6_ext_count: u8,
    /// Offset in the frame of the L4 header (of the fragment data for a
    /// non-first fragment).
    pub l4_offset: u16,
    /// Bytes from `l4_offset` to the end of the IP packet.
    pub l4_len: u16,
    /// Whether an L4 header (TCP, UDP, ICMP, ICMPv6) was read: false for
    /// non-first fragments and other protocols.
    pub has_l4: bool,
    /// TCP/UDP ports; ICMP echo request/reply: both the identifier; else 0.
    pub src_port: u16,
    pub dst_port: u16,
    /// Empty unless TCP.
    pub tcp_flags: TcpFlags,
    /// ICMP or ICMPv6 type and code (0 unless ICMP of the IP version).
    pub icmp_type: u8,
    pub icmp_code: u8,
}

impl ParsedPacket {
    /// The 5-tuple as the packet travels.
    #[inline]
    pub fn flow_key(&self) -> FlowKey {
        FlowKey {
            src: self.src,
            dst: self.dst,
            src_port: self.src_port,
            dst_port: self.dst_port,
            protocol: self.protocol,
        }
    }

    pub fn l3_offset(&self) -> usize {
        usize::from(self.l2.l3_offset)
    }

    /// Offset just past the IP packet (Ethernet padding follows).
    pub fn ip_end(&self) -> usize {
        self.l3_offset() + self.ip_total_len as usize
    }

    /// A non-first fragment (carries no L4 header).
    pub fn is_non_first_fragment(&self) -> bool {
        self.frag.offset != 0
    }
}

/// Result of [`parse`]: an IP packet, or a frame the firewall does not
/// inspect (ARP, LLDP, ...), which is not an error.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Parsed {
    Ip(ParsedPacket),
    NonIp(L2Info),
}

impl Parsed {
    pub fn l2(&self) -> &L2Info {
        match self {
            Parsed::Ip(p) => &p.l2,
            Parsed::NonIp(l2) => l2,
        }
    }

    pub fn ip(&self) -> Option<&ParsedPacket> {
        match self {
            Parsed::Ip(p) => Some(p),
            Parsed::NonIp(_) => None,
        }
    }
}

/// Parses a frame for the firewall. Does not verify the IPv4 header
/// checksum (see [`parse_verified`]) nor L4 checksums. Never panics.
pub fn parse(frame: &[u8]) -> Result<Parsed, Malformed> {
    match parse_plain_ipv4(frame) {
        Some(p) => Ok(Parsed::Ip(p)),
        None => parse_general(frame),
    }
}

/// [`parse`] without its fast path for the common frame (tests compare
/// the two).
pub(super) fn parse_general(frame: &[u8]) -> Result<Parsed, Malformed> {
    parse_impl::<false>(frame)
}

/// [`parse`], also verifying the IPv4 header checksum
/// ([`Malformed::BadIpv4Checksum`]), for ports without RX checksum offload.
pub fn parse_verified(frame: &[u8]) -> Result<Parsed, Malformed> {
    parse_impl::<true>(frame)
}

#[inline(always)]
fn parse_impl<const VERIFY: bool>(frame: &[u8]) -> Result<Parsed, Malformed> {
    let eth = ethernet::Frame::new_checked(frame)?;
    let mut et = eth.ethertype();
    let mut off = ethernet::HEADER_LEN;
    let mut l2 = L2Info::default();
    while is_vlan_tpid(et) {
        let Some(slot) = l2.vlan_ids.get_mut(usize::from(l2.vlan_count)) else {
            return Err(Malformed::VlanTooDeep);
        };
        let tag = vlan::Packet::new_checked(frame.get(off..).unwrap_or(&[]))?;
        *slot = tag.vid();
        l2.vlan_count += 1;
        et = tag.ethertype();
        off += vlan::HEADER_LEN;
    }
    l2.ethertype = et;
    l2.l3_offset = off as u16;
    let l3 = frame.get(off..).unwrap_or(&[]);
    match et {
        ethertype::IPV4 => parse_ipv4::<VERIFY>(l2, l3).map(Parsed::Ip),
        ethertype::IPV6 => parse_ipv6(l2, l3).map(Parsed::Ip),
        ethertype::ARP => {
            arp::Packet::new_checked(l3)?;
            Ok(Parsed::NonIp(l2))
        }
        _ => Ok(Parsed::NonIp(l2)),
    }
}

/// Untagged Ethernet + IPv4 header without options (IHL 5) + TCP or UDP.
const PLAIN_L4_OFFSET: usize = ethernet::HEADER_LEN + ipv4::HEADER_LEN;

/// The common frame read at fixed offsets after one length check: untagged
/// IPv4 without options and not a fragment, carrying TCP or UDP whose
/// header is whole. Anything else (or anything malformed) is `None`, for
/// the general parser, which gives the same result for these frames (a
/// property test compares the two).
#[inline(always)]
fn parse_plain_ipv4(frame: &[u8]) -> Option<ParsedPacket> {
    // Ethernet header, IPv4 header and the first 20 bytes after it, in one
    // fixed-size copy so no read below needs a bounds check.
    let h: &[u8; PLAIN_L4_OFFSET + tcp::HEADER_LEN] = frame
        .get(..PLAIN_L4_OFFSET + tcp::HEADER_LEN)?
        .try_into()
        .ok()?;
    let ethertype = u16::from_be_bytes([h[12], h[13]]);
    let ip = &h[ethernet::HEADER_LEN..];
    let flags_offset = u16::from_be_bytes([ip[6], ip[7]]);
    // Version 4, IHL 5; MF clear and offset 0 (DF and the reserved bit may
    // be set).
    if ethertype != ethertype::IPV4 || ip[0] != 0x45 || flags_offset & 0x3fff != 0 {
        return None;
    }
    let total = u16::from_be_bytes([ip[2], ip[3]]);
    let l4_len = usize::from(total).checked_sub(ipv4::HEADER_LEN)?;
    if ethernet::HEADER_LEN + usize::from(total) > frame.len() {
        return None;
    }
    let l4 = &h[PLAIN_L4_OFFSET..];
    let protocol = ip[9];
    let (src_port, dst_port) = (
        u16::from_be_bytes([l4[0], l4[1]]),
        u16::from_be_bytes([l4[2], l4[3]]),
    );
    let tcp_flags = match protocol {
        proto::TCP => {
            let doff = usize::from(l4[12] >> 4) * 4;
            if l4_len < tcp::HEADER_LEN || doff < tcp::HEADER_LEN || doff > l4_len {
                return None;
            }
            TcpFlags(u16::from_be_bytes([l4[12], l4[13]]) & 0x01ff)
        }
        proto::UDP => {
            let udp_len = usize::from(u16::from_be_bytes([l4[4], l4[5]]));
            if l4_len < udp::HEADER_LEN || udp_len < udp::HEADER_LEN || udp_len > l4_len {
                return None;
            }
            TcpFlags::EMPTY
        }
        _ => return None,
    };
    Some(ParsedPacket {
        l2: L2Info {
            vlan_ids: [0; MAX_VLAN_TAGS],
            vlan_count: 0,
            ethertype: ethertype::IPV4,
            l3_offset: ethernet::HEADER_LEN as u16,
        },
        version: IpVersion::V4,
        src: Addr::from_ipv4([ip[12], ip[13], ip[14], ip[15]]),
        dst: Addr::from_ipv4([ip[16], ip[17], ip[18], ip[19]]),
        protocol,
        ttl: ip[8],
        dscp: ip[1] >> 2,
        ip_total_len: u32::from(total),
        dont_fragment: flags_offset & 0x4000 != 0,
        frag: FragInfo {
            is_fragment: false,
            is_first_fragment: false,
            offset: 0,
            more_fragments: false,
            id: u32::from(u16::from_be_bytes([ip[4], ip[5]])),
        },
        ip_options: Ipv4OptionSet::EMPTY,
        ipv6_ext_count: 0,
        l4_offset: PLAIN_L4_OFFSET as u16,
        l4_len: l4_len as u16,
        has_l4: true,
        src_port,
        dst_port,
        tcp_flags,
        icmp_type: 0,
        icmp_code: 0,
    })
}

#[inline(always)]
fn parse_ipv4<const VERIFY: bool>(l2: L2Info, l3: &[u8]) -> Result<ParsedPacket, Malformed> {
    let ip = ipv4::Packet::new_checked(l3)?;
    if VERIFY && !ip.verify_checksum() {
        return Err(Malformed::BadIpv4Checksum);
    }
    let hl = ip.header_len();
    let total = ip.total_len();
    let offset = ip.frag_offset();
    let more = ip.more_frags();
    let is_fragment = more || offset != 0;
    let mut p = ParsedPacket {
        l2,
        version: IpVersion::V4,
        src: Addr::from_ipv4(ip.src_addr()),
        dst: Addr::from_ipv4(ip.dst_addr()),
        protocol: ip.protocol(),
        ttl: ip.ttl(),
        dscp: ip.dscp(),
        ip_total_len: u32::from(total),
        dont_fragment: ip.dont_frag(),
        frag: FragInfo {
            is_fragment,
            is_first_fragment: is_fragment && offset == 0,
            offset,
            more_fragments: more,
            id: u32::from(ip.ident()),
        },
        ip_options: if hl > ipv4::HEADER_LEN {
            ip.option_set()
        } else {
            Ipv4OptionSet::EMPTY
        },
        ipv6_ext_count: 0,
        // l3_offset <= 22 and hl <= 60: no overflow.
        l4_offset: l2.l3_offset + hl as u16,
        l4_len: total - hl as u16,
        has_l4: false,
        src_port: 0,
        dst_port: 0,
        tcp_flags: TcpFlags::EMPTY,
        icmp_type: 0,
        icmp_code: 0,
    };
    if offset == 0 {
        parse_l4(&mut p, ip.payload())?;
    }
    Ok(p)
}

#[inline(always)]
fn parse_ipv6(l2: L2Info, l3: &[u8]) -> Result<ParsedPacket, Malformed> {
    let ip = ipv6::Packet::new_checked(l3)?;
    let (src, dst) = (
        Addr::from_ipv6(ip.src_addr()),
        Addr::from_ipv6(ip.dst_addr()),
    );
    if src.is_ipv4() || dst.is_ipv4() {
        // Addr holds IPv4 as IPv4-mapped IPv6: such a packet would match
        // IPv4 rules and ride IPv4 sessions.
        return Err(Malformed::Ipv6MappedAddress);
    }
    let up = ip.upper_layer()?;
    let total = ip.total_len();
    let frag = up.fragment.unwrap_or_default();
    let is_fragment = frag.offset != 0 || frag.more_fragments;
    let mut p = ParsedPacket {
        l2,
        version: IpVersion::V6,
        src,
        dst,
        protocol: up.protocol,
        ttl: ip.hop_limit(),
        dscp: ip.dscp(),
        ip_total_len: total as u32,
        dont_fragment: false,
        frag: FragInfo {
            is_fragment,
            is_first_fragment: is_fragment && frag.offset == 0,
            offset: frag.offset,
            more_fragments: frag.more_fragments,
            id: frag.ident,
        },
        ip_options: Ipv4OptionSet::EMPTY,
        ipv6_ext_count: up.ext_count,
        // At most MAX_EXT_HEADERS headers of at most 2048 bytes each: the
        // offset fits in u16; up.offset <= total by construction of the walk.
        l4_offset: (usize::from(l2.l3_offset) + up.offset) as u16,
        l4_len: total.saturating_sub(up.offset) as u16,
        has_l4: false,
        src_port: 0,
        dst_port: 0,
        tcp_flags: TcpFlags::EMPTY,
        icmp_type: 0,
        icmp_code: 0,
    };
    if frag.offset == 0 {
        parse_l4(&mut p, l3.get(up.offset..total).unwrap_or(&[]))?;
    }
    Ok(p)
}

/// Reads the L4 header of a first fragment or unfragmented packet; `l4`
/// ends where the IP packet ends.
#[inline(always)]
fn parse_l4(p: &mut ParsedPacket, l4: &[u8]) -> Result<(), Malformed> {
    match (p.protocol, p.version) {
        (proto::TCP, _) => {
            let t = tcp::Packet::new_checked(l4)?;
            p.src_port = t.src_port();
            p.dst_port = t.dst_port();
            p.tcp_flags = t.flags();
        }
        (proto::UDP, _) => {
            // A first fragment's UDP length covers the whole datagram, not
            // this fragment: only the header must be here.
            let u = if p.frag.more_fragments {
                if l4.len() < udp::HEADER_LEN {
                    return Err(Malformed::TruncatedUdp);
                }
                udp::Packet::new_unchecked(l4)
            } else {
                udp::Packet::new_checked(l4)?
            };
            p.src_port = u.src_port();
            p.dst_port = u.dst_port();
        }
        (proto::ICMP, IpVersion::V4) => {
            let i = icmpv4::Packet::new_checked(l4)?;
            p.icmp_type = i.msg_type();
            p.icmp_code = i.msg_code();
            if icmpv4::is_echo(p.icmp_type) {
                p.src_port = i.echo_ident();
                p.dst_port = p.src_port;
            }
        }
        (proto::ICMPV6, IpVersion::V6) => {
            let i = icmpv6::Packet::new_checked(l4)?;
            p.icmp_type = i.msg_type();
            p.icmp_code = i.msg_code();
            if icmpv6::is_echo(p.icmp_type) {
                p.src_port = i.echo_ident();
                p.dst_port = p.src_port;
            }
        }
        _ => return Ok(()),
    }
    p.has_l4 = true;
    Ok(())
}
