//! The flow an ICMP or ICMPv6 error is about: the IP header and first L4
//! bytes it quotes (RFC 792, RFC 4443), read as the 5-tuple of the packet
//! that caused it. A stateful firewall lets an error through when that
//! flow has a session (netfilter's RELATED, Junos, VPP's reflexive ACL):
//! dropping fragmentation-needed and packet-too-big breaks path MTU
//! discovery, dropping time-exceeded breaks traceroute.
//!
//! Never panics: every read is bounds-checked against the outer packet.

use super::parse::ParsedPacket;
use super::IpVersion;
use crate::flow::{proto, Addr, FlowKey};

/// ICMPv4 errors that quote a packet: destination unreachable, time
/// exceeded, parameter problem.
const ICMPV4_ERRORS: [u8; 3] = [3, 11, 12];
/// ICMPv6 errors: destination unreachable, packet too big, time exceeded,
/// parameter problem.
const ICMPV6_ERRORS: [u8; 4] = [1, 2, 3, 4];
/// ICMP echo request types (the quoted packet of an error about a ping).
const ECHO_REQUESTS: [u8; 2] = [8, 128];

/// The flow of the packet an ICMP error quotes, as that packet travelled,
/// or `None` when `pkt` is not an ICMP error of its IP version, the quote
/// is cut short, of another IP version, a non-first fragment, or was not
/// sent by the error's destination (an error goes back to the sender).
pub fn quoted_flow(frame: &[u8], pkt: &ParsedPacket) -> Option<FlowKey> {
    if !pkt.has_l4 || pkt.frag.is_fragment {
        return None;
    }
    let is_error = match pkt.version {
        IpVersion::V4 => pkt.protocol == proto::ICMP && ICMPV4_ERRORS.contains(&pkt.icmp_type),
        IpVersion::V6 => pkt.protocol == proto::ICMPV6 && ICMPV6_ERRORS.contains(&pkt.icmp_type),
    };
    if !is_error {
        return None;
    }
    let end = pkt.ip_end().min(frame.len());
    let quote = frame.get(usize::from(pkt.l4_offset) + 8..end)?;
    let (src, dst, protocol, l4) = match pkt.version {
        IpVersion::V4 => {
            let (&vihl, rest) = quote.split_first()?;
            let ihl = usize::from(vihl & 0x0f) * 4;
            if vihl >> 4 != 4 || ihl < 20 || rest.len() < 19 {
                return None;
            }
            // Flags and fragment offset: only a first fragment has ports.
            if u16::from_be_bytes([quote[6], quote[7]]) & 0x1fff != 0 {
                return None;
            }
            let src = Addr::from_ipv4(quote[12..16].try_into().ok()?);
            let dst = Addr::from_ipv4(quote[16..20].try_into().ok()?);
            (src, dst, quote[9], quote.get(ihl..)?)
        }
        IpVersion::V6 => {
            if quote.len() < 40 || quote[0] >> 4 != 6 {
                return None;
            }
            let src = Addr::from_ipv6(quote[8..24].try_into().ok()?);
            let dst = Addr::from_ipv6(quote[24..40].try_into().ok()?);
            // Extension headers in the quote are not followed: such an
            // error matches no session and goes through policy.
            (src, dst, quote[6], &quote[40..])
        }
    };
    if src != pkt.dst {
        return None;
    }
    let (src_port, dst_port) = match protocol {
        proto::TCP | proto::UDP => (
            u16::from_be_bytes([*l4.first()?, *l4.get(1)?]),
            u16::from_be_bytes([*l4.get(2)?, *l4.get(3)?]),
        ),
        proto::ICMP | proto::ICMPV6 if ECHO_REQUESTS.contains(l4.first()?) => {
            // Echo sessions are keyed by the identifier both ways.
            let ident = u16::from_be_bytes([*l4.get(4)?, *l4.get(5)?]);
            (ident, ident)
        }
        _ => return None,
    };
    Some(FlowKey {
        src,
        dst,
        src_port,
        dst_port,
        protocol,
    })
}
