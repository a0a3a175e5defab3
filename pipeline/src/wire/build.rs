//! Packet builders: Ethernet (+ VLAN tags) + IPv4/IPv6 + TCP/UDP/ICMP/ICMPv6
//! with correct lengths and checksums, and the answers of a `reject`:
//! [`tcp_reset`] and [`icmp_unreachable`].
//!
//! Functions that write into a caller buffer allocate nothing and return the
//! number of bytes written; they never panic, whatever the buffer size or the
//! [`ParsedPacket`] (a buffer that is too small is [`BuildError::BufferTooSmall`]).
//! [`packet_vec`] is a `Vec`-returning convenience for tests.

use super::ethernet::{self, ethertype};
use super::{checksum, icmpv4, icmpv6, ipv4, ipv6, tcp, udp, IpVersion, ParsedPacket, TcpFlags};
use crate::flow::{proto, Addr};
use std::fmt;
use BuildError::BufferTooSmall;

/// Why a packet could not be built.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum BuildError {
    /// The output buffer cannot hold the packet.
    BufferTooSmall,
    /// The packet would exceed the IP length fields.
    TooLong,
    /// IPv4 or TCP options not a multiple of 4 bytes or longer than 40.
    BadOptions,
    /// The packet cannot be answered this way (not TCP, a RST, an ICMP
    /// error, a non-first fragment, or a `ParsedPacket` not of this frame).
    NotApplicable,
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BuildError::BufferTooSmall => "buffer too small",
            BuildError::TooLong => "packet too long",
            BuildError::BadOptions => "bad options length",
            BuildError::NotApplicable => "not applicable to this packet",
        })
    }
}

impl std::error::Error for BuildError {}

/// One VLAN tag: its TPID and tag control information.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct VlanTag {
    pub tpid: u16,
    pub tci: u16,
}

impl VlanTag {
    /// An 802.1Q (C-)tag.
    pub const fn dot1q(vid: u16) -> VlanTag {
        VlanTag {
            tpid: ethertype::VLAN,
            tci: vid & 0x0fff,
        }
    }

    /// An 802.1ad (S-)tag.
    pub const fn qinq(vid: u16) -> VlanTag {
        VlanTag {
            tpid: ethertype::QINQ,
            tci: vid & 0x0fff,
        }
    }
}

/// The Ethernet header to write: addresses and VLAN tags, outermost first.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Ethernet<'a> {
    pub dst: [u8; 6],
    pub src: [u8; 6],
    pub vlans: &'a [VlanTag],
}

impl Ethernet<'_> {
    /// Untagged, locally administered test addresses.
    pub const DEFAULT: Ethernet<'static> = Ethernet {
        dst: [0x02, 0, 0, 0, 0, 0x02],
        src: [0x02, 0, 0, 0, 0, 0x01],
        vlans: &[],
    };

    pub fn header_len(&self) -> usize {
        ethernet::HEADER_LEN + 4 * self.vlans.len()
    }
}

/// Fragment fields of the IP header (IPv4 flags/offset, or an IPv6 fragment
/// header).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Fragment {
    /// Offset in bytes (a multiple of 8).
    pub offset: u16,
    pub more: bool,
    /// IPv4 uses the low 16 bits.
    pub id: u32,
}

/// The IP header to write.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Ip<'a> {
    pub version: IpVersion,
    pub src: Addr,
    pub dst: Addr,
    /// TTL or hop limit.
    pub ttl: u8,
    pub dscp: u8,
    /// IPv4 identification (when not a fragment).
    pub ident: u16,
    /// IPv4 DF.
    pub dont_frag: bool,
    pub fragment: Option<Fragment>,
    /// IPv4 option bytes, a multiple of 4, at most 40.
    pub options: &'a [u8],
}

impl Ip<'static> {
    /// TTL 64, no options; IPv4 when both addresses are IPv4-mapped.
    pub fn new(src: Addr, dst: Addr) -> Ip<'static> {
        let version = if src.is_ipv4() && dst.is_ipv4() {
            IpVersion::V4
        } else {
            IpVersion::V6
        };
        Ip {
            version,
            src,
            dst,
            ttl: 64,
            dscp: 0,
            ident: 0,
            dont_frag: false,
            fragment: None,
            options: &[],
        }
    }
}

/// The L4 header to write. ICMP is ICMPv4 or ICMPv6 by the IP version.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum L4<'a> {
    Tcp {
        src_port: u16,
        dst_port: u16,
        seq: u32,
        ack: u32,
        flags: TcpFlags,
        window: u16,
        options: &'a [u8],
    },
    Udp {
        src_port: u16,
        dst_port: u16,
    },
    Icmp {
        msg_type: u8,
        code: u8,
        rest: [u8; 4],
    },
    /// No L4 header: `payload` follows the IP header as is (a non-first
    /// fragment, or an unknown protocol).
    Raw {
        protocol: u8,
    },
}

impl L4<'static> {
    pub fn tcp(src_port: u16, dst_port: u16, flags: TcpFlags) -> L4<'static> {
        L4::Tcp {
            src_port,
            dst_port,
            seq: 1000,
            ack: 0,
            flags,
            window: 65535,
            options: &[],
        }
    }

    pub fn udp(src_port: u16, dst_port: u16) -> L4<'static> {
        L4::Udp { src_port, dst_port }
    }

    /// Echo request for the given IP version.
    pub fn echo_request(version: IpVersion, ident: u16, seq: u16) -> L4<'static> {
        let t = match version {
            IpVersion::V4 => icmpv4::msg_type::ECHO_REQUEST,
            IpVersion::V6 => icmpv6::msg_type::ECHO_REQUEST,
        };
        let (i, s) = (ident.to_be_bytes(), seq.to_be_bytes());
        L4::Icmp {
            msg_type: t,
            code: 0,
            rest: [i[0], i[1], s[0], s[1]],
        }
    }
}

impl L4<'_> {
    /// The IP protocol number.
    pub fn protocol(&self, version: IpVersion) -> u8 {
        match (self, version) {
            (L4::Tcp { .. }, _) => proto::TCP,
            (L4::Udp { .. }, _) => proto::UDP,
            (L4::Icmp { .. }, IpVersion::V4) => proto::ICMP,
            (L4::Icmp { .. }, IpVersion::V6) => proto::ICMPV6,
            (L4::Raw { protocol }, _) => *protocol,
        }
    }

    fn header_len(&self) -> Result<usize, BuildError> {
        Ok(match self {
            L4::Tcp { options, .. } => {
                if options.len() & 3 != 0 || options.len() > 40 {
                    return Err(BuildError::BadOptions);
                }
                tcp::HEADER_LEN + options.len()
            }
            L4::Udp { .. } => udp::HEADER_LEN,
            L4::Icmp { .. } => icmpv4::HEADER_LEN,
            L4::Raw { .. } => 0,
        })
    }
}

/// Writes the Ethernet header (and tags) for `ethertype`; returns its length.
pub fn write_ethernet(
    out: &mut [u8],
    eth: &Ethernet<'_>,
    ethertype: u16,
) -> Result<usize, BuildError> {
    let n = eth.header_len();
    let out = out.get_mut(..n).ok_or(BufferTooSmall)?;
    out[0..6].copy_from_slice(&eth.dst);
    out[6..12].copy_from_slice(&eth.src);
    for (tag, b) in eth.vlans.iter().zip(out[12..].chunks_exact_mut(4)) {
        b[0..2].copy_from_slice(&tag.tpid.to_be_bytes());
        b[2..4].copy_from_slice(&tag.tci.to_be_bytes());
    }
    out[n - 2..n].copy_from_slice(&ethertype.to_be_bytes());
    Ok(n)
}

/// Writes an IP packet (header, L4 header, payload) with lengths and
/// checksums; returns its length. For a fragment the L4 checksum covers
/// this fragment only.
pub fn ip_packet(
    out: &mut [u8],
    ip: &Ip<'_>,
    l4: &L4<'_>,
    payload: &[u8],
) -> Result<usize, BuildError> {
    let v = ip.version;
    let protocol = l4.protocol(v);
    let l4_len = l4.header_len()? + payload.len();
    let ip_hl = match v {
        IpVersion::V4 => {
            if ip.options.len() & 3 != 0 || ip.options.len() > 40 {
                return Err(BuildError::BadOptions);
            }
            ipv4::HEADER_LEN + ip.options.len()
        }
        IpVersion::V6 => ipv6::HEADER_LEN + if ip.fragment.is_some() { 8 } else { 0 },
    };
    let total = ip_hl + l4_len;
    let too_long = match v {
        IpVersion::V4 => total > usize::from(u16::MAX),
        IpVersion::V6 => total - ipv6::HEADER_LEN > usize::from(u16::MAX),
    };
    if too_long || l4_len > usize::from(u16::MAX) {
        return Err(BuildError::TooLong);
    }
    let out = out.get_mut(..total).ok_or(BufferTooSmall)?;
    let (hdr, seg) = out.split_at_mut(ip_hl);
    match v {
        IpVersion::V4 => {
            let mut p = ipv4::Packet::new_unchecked(&mut hdr[..]);
            p.set_version_and_header_len(ip_hl);
            p.set_dscp_ecn(ip.dscp, 0);
            p.set_total_len(total as u16);
            let f = ip.fragment.unwrap_or(Fragment {
                offset: 0,
                more: false,
                id: u32::from(ip.ident),
            });
            p.set_ident(f.id as u16);
            p.set_flags_and_offset(ip.dont_frag, f.more, f.offset);
            p.set_ttl(ip.ttl);
            p.set_protocol(protocol);
            p.set_src_addr(ip.src.ipv4_octets());
            p.set_dst_addr(ip.dst.ipv4_octets());
            p.options_mut().copy_from_slice(ip.options);
            p.fill_checksum();
        }
        IpVersion::V6 => {
            let mut p = ipv6::Packet::new_unchecked(&mut hdr[..]);
            p.set_version_tc_flow(ip.dscp << 2, 0);
            p.set_payload_len((total - ipv6::HEADER_LEN) as u16);
            p.set_hop_limit(ip.ttl);
            p.set_src_addr(ip.src.ipv6_octets());
            p.set_dst_addr(ip.dst.ipv6_octets());
            match ip.fragment {
                Some(f) => {
                    p.set_next_header(ipv6::next_header::FRAGMENT);
                    let frag = ipv6::Fragment {
                        offset: f.offset,
                        more_fragments: f.more,
                        ident: f.id,
                    };
                    ipv6::write_fragment_header(&mut hdr[ipv6::HEADER_LEN..], protocol, frag);
                }
                None => p.set_next_header(protocol),
            }
        }
    }
    let l4_hl = l4_len - payload.len();
    seg[l4_hl..].copy_from_slice(payload);
    let pseudo = checksum::pseudo_header(v, ip.src, ip.dst, protocol, l4_len as u32);
    match *l4 {
        L4::Tcp {
            src_port,
            dst_port,
            seq,
            ack,
            flags,
            window,
            options,
        } => {
            let mut t = tcp::Packet::new_unchecked(&mut seg[..]);
            t.set_src_port(src_port);
            t.set_dst_port(dst_port);
            t.set_seq_number(seq);
            t.set_ack_number(ack);
            t.set_header_len_and_flags(l4_hl, flags);
            t.set_window_len(window);
            t.set_urgent_at(0);
            t.options_mut().copy_from_slice(options);
            t.fill_checksum(pseudo);
        }
        L4::Udp { src_port, dst_port } => {
            let mut u = udp::Packet::new_unchecked(&mut seg[..]);
            u.set_src_port(src_port);
            u.set_dst_port(dst_port);
            u.set_len(l4_len as u16);
            u.fill_checksum(pseudo);
        }
        L4::Icmp {
            msg_type,
            code,
            rest,
        } => match v {
            IpVersion::V4 => {
                let mut i = icmpv4::Packet::new_unchecked(&mut seg[..]);
                i.set_msg_type(msg_type);
                i.set_msg_code(code);
                i.set_rest_of_header(rest);
                i.fill_checksum(icmpv4::NO_PSEUDO_HEADER);
            }
            IpVersion::V6 => {
                let mut i = icmpv6::Packet::new_unchecked(&mut seg[..]);
                i.set_msg_type(msg_type);
                i.set_msg_code(code);
                i.set_rest_of_header(rest);
                i.fill_checksum(pseudo);
            }
        },
        L4::Raw { .. } => {}
    }
    Ok(total)
}

/// Writes a whole frame; returns its length.
pub fn packet(
    out: &mut [u8],
    eth: &Ethernet<'_>,
    ip: &Ip<'_>,
    l4: &L4<'_>,
    payload: &[u8],
) -> Result<usize, BuildError> {
    let et = match ip.version {
        IpVersion::V4 => ethertype::IPV4,
        IpVersion::V6 => ethertype::IPV6,
    };
    let n = write_ethernet(out, eth, et)?;
    let m = ip_packet(out.get_mut(n..).ok_or(BufferTooSmall)?, ip, l4, payload)?;
    Ok(n + m)
}

/// [`packet`] into a new `Vec` (tests, tools; not for the hot path).
pub fn packet_vec(
    eth: &Ethernet<'_>,
    ip: &Ip<'_>,
    l4: &L4<'_>,
    payload: &[u8],
) -> Result<Vec<u8>, BuildError> {
    let mut v = vec![0u8; eth.header_len() + ipv4::MAX_HEADER_LEN + 60 + payload.len()];
    let n = packet(&mut v, eth, ip, l4, payload)?;
    v.truncate(n);
    Ok(v)
}

/// Copies the frame's L2 header (tags included) with the MACs swapped.
fn reply_l2(frame: &[u8], pkt: &ParsedPacket, out: &mut [u8]) -> Result<usize, BuildError> {
    let l3 = usize::from(pkt.l2.l3_offset);
    let hdr = frame
        .get(..l3)
        .filter(|h| h.len() >= ethernet::HEADER_LEN)
        .ok_or(BuildError::NotApplicable)?;
    let o = out.get_mut(..l3).ok_or(BufferTooSmall)?;
    o.copy_from_slice(hdr);
    o[0..6].copy_from_slice(&hdr[6..12]);
    o[6..12].copy_from_slice(&hdr[0..6]);
    Ok(l3)
}

/// The IP header of an answer: addresses swapped, TTL 64.
fn reply_ip(pkt: &ParsedPacket) -> Ip<'static> {
    Ip {
        version: pkt.version,
        src: pkt.dst,
        dst: pkt.src,
        ttl: 64,
        dscp: 0,
        ident: 0,
        dont_frag: false,
        fragment: None,
        options: &[],
    }
}

/// Writes the TCP RST answering `pkt` (parsed from `frame`): MACs, addresses
/// and ports swapped, VLAN tags kept; sequence numbers per RFC 9293 3.10.7.1
/// (if the segment has ACK, `seq = its ack`, flags RST; otherwise `seq = 0`,
/// `ack = its seq + segment length`, flags RST|ACK). Never answers a RST.
pub fn tcp_reset(frame: &[u8], pkt: &ParsedPacket, out: &mut [u8]) -> Result<usize, BuildError> {
    if pkt.protocol != proto::TCP || !pkt.has_l4 || pkt.tcp_flags.contains(TcpFlags::RST) {
        return Err(BuildError::NotApplicable);
    }
    let seg = frame
        .get(usize::from(pkt.l4_offset)..pkt.ip_end())
        .ok_or(BuildError::NotApplicable)?;
    let t = tcp::Packet::new_checked(seg).map_err(|_| BuildError::NotApplicable)?;
    let (seq, ack, flags) = if t.flags().contains(TcpFlags::ACK) {
        (t.ack_number(), 0, TcpFlags::RST)
    } else {
        (
            0,
            t.seq_number().wrapping_add(t.segment_len()),
            TcpFlags::RST | TcpFlags::ACK,
        )
    };
    let n = reply_l2(frame, pkt, out)?;
    let l4 = L4::Tcp {
        src_port: t.dst_port(),
        dst_port: t.src_port(),
        seq,
        ack,
        flags,
        window: 0,
        options: &[],
    };
    let m = ip_packet(
        out.get_mut(n..).ok_or(BufferTooSmall)?,
        &reply_ip(pkt),
        &l4,
        &[],
    )?;
    Ok(n + m)
}

/// Most bytes of the offending packet quoted in an ICMP error (576 - 20 - 8).
pub const ICMPV4_QUOTE_MAX: usize = 548;
/// Most bytes quoted in an ICMPv6 error (1280 - 40 - 8).
pub const ICMPV6_QUOTE_MAX: usize = 1232;

/// Writes an ICMP destination unreachable, administratively prohibited
/// (type 3 code 13; ICMPv6 type 1 code 1) answering `pkt` (parsed from
/// `frame`), from its destination to its source, quoting the offending IP
/// packet (as much as fits in [`ICMPV4_QUOTE_MAX`] / [`ICMPV6_QUOTE_MAX`]
/// and `out`, at least its first 28 / 48 bytes). Refuses (`NotApplicable`)
/// to answer an ICMP error or a non-first fragment; the caller decides about
/// broadcast and multicast destinations.
pub fn icmp_unreachable(
    frame: &[u8],
    pkt: &ParsedPacket,
    out: &mut [u8],
) -> Result<usize, BuildError> {
    let (msg_type, code) = match pkt.version {
        IpVersion::V4 => (
            icmpv4::msg_type::DEST_UNREACHABLE,
            icmpv4::unreachable::ADMIN_PROHIBITED,
        ),
        IpVersion::V6 => (
            icmpv6::msg_type::DEST_UNREACHABLE,
            icmpv6::unreachable::ADMIN_PROHIBITED,
        ),
    };
    icmp_error(frame, pkt, msg_type, code, [0; 4], out)
}

/// ICMP fragmentation needed and DF set (RFC 1191: the next-hop MTU in
/// the low 16 bits of the rest of the header) or ICMPv6 packet too big
/// (RFC 4443 3.2: the MTU in the rest), answering `pkt` like
/// [`icmp_unreachable`], so its sender's path MTU discovery can work.
pub fn icmp_too_big(
    frame: &[u8],
    pkt: &ParsedPacket,
    mtu: u16,
    out: &mut [u8],
) -> Result<usize, BuildError> {
    let (msg_type, code, rest) = match pkt.version {
        IpVersion::V4 => {
            let [hi, lo] = mtu.to_be_bytes();
            (
                icmpv4::msg_type::DEST_UNREACHABLE,
                icmpv4::unreachable::FRAG_NEEDED,
                [0, 0, hi, lo],
            )
        }
        IpVersion::V6 => (
            icmpv6::msg_type::PACKET_TOO_BIG,
            0,
            u32::from(mtu).to_be_bytes(),
        ),
    };
    icmp_error(frame, pkt, msg_type, code, rest, out)
}

fn icmp_error(
    frame: &[u8],
    pkt: &ParsedPacket,
    msg_type: u8,
    code: u8,
    rest: [u8; 4],
    out: &mut [u8],
) -> Result<usize, BuildError> {
    let is_icmp_error = pkt.has_l4
        && match pkt.version {
            IpVersion::V4 => pkt.protocol == proto::ICMP && icmpv4::is_error(pkt.icmp_type),
            IpVersion::V6 => pkt.protocol == proto::ICMPV6 && icmpv6::is_error(pkt.icmp_type),
        };
    if is_icmp_error || pkt.frag.offset != 0 {
        return Err(BuildError::NotApplicable);
    }
    let orig = frame
        .get(usize::from(pkt.l2.l3_offset)..pkt.ip_end())
        .ok_or(BuildError::NotApplicable)?;
    let (max, min, ip_hl) = match pkt.version {
        IpVersion::V4 => (ICMPV4_QUOTE_MAX, 28, ipv4::HEADER_LEN),
        IpVersion::V6 => (ICMPV6_QUOTE_MAX, 48, ipv6::HEADER_LEN),
    };
    let n = reply_l2(frame, pkt, out)?;
    let room = out.len().saturating_sub(n + ip_hl + icmpv4::HEADER_LEN);
    let quote_len = orig.len().min(max).min(room);
    if quote_len < orig.len().min(min) {
        return Err(BufferTooSmall);
    }
    let quote = orig.get(..quote_len).ok_or(BuildError::NotApplicable)?;
    let l4 = L4::Icmp {
        msg_type,
        code,
        rest,
    };
    let m = ip_packet(
        out.get_mut(n..).ok_or(BufferTooSmall)?,
        &reply_ip(pkt),
        &l4,
        quote,
    )?;
    Ok(n + m)
}
