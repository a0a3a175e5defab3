//! The ICMPv6 messages a link needs, as IPv4 needs ARP: neighbour discovery
//! (RFC 4861) and multicast listener discovery (MLD, RFC 2710; MLDv2, RFC
//! 3810). The firewall passes them without a session or a policy
//! (`flow.ipv6-nd = "permit"`), so only a message a host would accept may
//! pass that way: [`is_valid`] applies the validity checks of those RFCs
//! that the packet's bytes allow. A message that fails them is not dropped
//! here; it goes through policy like other ICMPv6.
//!
//! Reads only the frame's bytes, with checked slices: no allocation, no
//! panic on any input.

use super::{checksum, icmpv6::msg_type, ipv6, ParsedPacket};
use crate::flow::{proto, Addr};

/// MLD message types (RFC 2710 3, RFC 3810 5).
pub mod mld_type {
    /// Multicast listener query (MLDv1 and MLDv2, told apart by length).
    pub const QUERY: u8 = 130;
    pub const REPORT: u8 = 131;
    pub const DONE: u8 = 132;
    pub const V2_REPORT: u8 = 143;
}

/// Neighbour discovery option types (RFC 4861 4.6).
pub mod nd_option {
    pub const SOURCE_LINK_LAYER: u8 = 1;
    pub const TARGET_LINK_LAYER: u8 = 2;
    pub const PREFIX_INFORMATION: u8 = 3;
    pub const REDIRECTED_HEADER: u8 = 4;
    pub const MTU: u8 = 5;
}

/// The fixed part of each neighbour discovery message, ICMP header
/// included (RFC 4861 4.1-4.5); options fill the rest.
mod nd_len {
    pub const ROUTER_SOLICIT: usize = 8;
    pub const ROUTER_ADVERT: usize = 16;
    pub const NEIGHBOR_SOLICIT: usize = 24;
    pub const NEIGHBOR_ADVERT: usize = 24;
    pub const REDIRECT: usize = 40;
}

/// Offsets in a neighbour discovery message.
mod nd_field {
    /// Neighbour advertisement flags (router, solicited, override).
    pub const ADVERT_FLAGS: usize = 4;
    /// The target address of a neighbour solicitation or advertisement, or
    /// of a redirect (the better first hop).
    pub const TARGET: usize = 8;
    /// The destination a redirect is about.
    pub const REDIRECT_DESTINATION: usize = 24;
}

/// The solicited flag of a neighbour advertisement.
const ADVERT_SOLICITED: u8 = 0x40;

/// Hop limit of neighbour discovery as sent: a router would have
/// decremented it, so 255 proves the sender is on the link.
const ND_HOP_LIMIT: u8 = 255;

/// Hop limit of MLD as sent (RFC 2710 3, RFC 3810 5).
const MLD_HOP_LIMIT: u8 = 1;

/// MLD message lengths (RFC 2710 3, RFC 3810 5.1 and 5.2).
mod mld_len {
    pub const V1: usize = 24;
    pub const V2_QUERY: usize = 28;
    pub const V2_REPORT: usize = 8;
}

/// Whether `pkt` (parsed from `frame`) is a neighbour discovery or MLD
/// message a host on the link would accept. The checks:
///
/// For every message: ICMPv6, not a fragment, ICMP code 0, and a valid
/// ICMPv6 checksum (over the IP source and destination; a routing header
/// would change the pseudo-header, so such a packet fails, as no neighbour
/// discovery or MLD message carries one).
///
/// Neighbour discovery (RFC 4861 6.1.1, 6.1.2, 7.1.1, 7.1.2, 8.1; RFC 6980):
/// - hop limit 255;
/// - no fragment header, not even an atomic fragment (RFC 6980 5);
/// - the message at least its fixed size: router solicitation 8 bytes,
///   advertisement 16, neighbour solicitation and advertisement 24,
///   redirect 40;
/// - every option has a length above 0, and the options fill the rest of
///   the message exactly (so trailing junk fails);
/// - router advertisement and redirect: the source is link-local;
/// - router and neighbour solicitation from the unspecified source: no
///   source link-layer address option;
/// - neighbour solicitation: the target is not multicast; from the
///   unspecified source (duplicate address detection), the destination is
///   a solicited-node multicast address;
/// - neighbour advertisement: the target is not multicast; to a multicast
///   destination, the solicited flag is clear;
/// - redirect: the destination field is not multicast, and the target is
///   link-local (a router) or the destination itself (on-link).
///
/// Not checked, as the bytes cannot tell: an IP authentication header's
/// validity, and that a redirect comes from the current first hop.
///
/// MLD (RFC 2710 3; RFC 3810 5, 5.2.13, 8.1):
/// - hop limit 1, from a link-local source or (reports sent before the
///   link-local address is ready, RFC 3810 5.2.13) the unspecified one;
/// - code 0 (receivers ignore the code; the firewall has no reason to
///   pass anything but what senders send);
/// - length: MLDv1 messages at least 24 bytes; a query 24 (MLDv1) or at
///   least 28 (MLDv2) bytes; an MLDv2 report at least 8 bytes.
///
/// Not checked: the router alert option that MLD messages carry.
///
/// Every packet that reaches the flow stages asks, so the protocol test is
/// inlined and the rest is not.
#[inline]
pub fn is_valid(frame: &[u8], pkt: &ParsedPacket) -> bool {
    pkt.protocol == proto::ICMPV6 && is_valid_icmpv6(frame, pkt)
}

/// [`is_valid`] for an ICMPv6 packet.
fn is_valid_icmpv6(frame: &[u8], pkt: &ParsedPacket) -> bool {
    if !pkt.has_l4 || pkt.frag.is_fragment || pkt.icmp_code != 0 {
        return false;
    }
    let Some(message) = icmp_message(frame, pkt) else {
        return false;
    };
    // Cheapest first: the checksum, which reads every byte, last.
    let valid = match pkt.icmp_type {
        msg_type::ROUTER_SOLICIT..=msg_type::REDIRECT => {
            is_valid_neighbor_discovery(pkt, message) && !has_fragment_header(frame, pkt)
        }
        mld_type::QUERY | mld_type::REPORT | mld_type::DONE | mld_type::V2_REPORT => {
            is_valid_multicast_listener(pkt, message)
        }
        _ => false,
    };
    valid && checksum_is_valid(pkt, message)
}

/// The ICMPv6 message: from the L4 header to the end of the IP packet.
fn icmp_message<'a>(frame: &'a [u8], pkt: &ParsedPacket) -> Option<&'a [u8]> {
    frame
        .get(usize::from(pkt.l4_offset)..)?
        .get(..usize::from(pkt.l4_len))
}

/// The neighbour discovery checks of [`is_valid`], but for the fragment
/// header and the checksum.
fn is_valid_neighbor_discovery(pkt: &ParsedPacket, message: &[u8]) -> bool {
    if pkt.ttl != ND_HOP_LIMIT {
        return false;
    }
    let (src, dst) = (pkt.src, pkt.dst);
    let target = address_at(message, nd_field::TARGET);
    match pkt.icmp_type {
        msg_type::ROUTER_SOLICIT => options_after(message, nd_len::ROUTER_SOLICIT)
            .is_some_and(|options| !(src.is_unspecified() && options.source_link_layer)),
        msg_type::ROUTER_ADVERT => {
            src.is_ipv6_link_local() && options_after(message, nd_len::ROUTER_ADVERT).is_some()
        }
        msg_type::NEIGHBOR_SOLICIT => {
            let Some(options) = options_after(message, nd_len::NEIGHBOR_SOLICIT) else {
                return false;
            };
            let address_resolution = !src.is_unspecified()
                || (dst.is_ipv6_solicited_node() && !options.source_link_layer);
            target.is_some_and(|t| !t.is_ipv6_multicast()) && address_resolution
        }
        msg_type::NEIGHBOR_ADVERT => {
            let solicited = message
                .get(nd_field::ADVERT_FLAGS)
                .is_some_and(|flags| flags & ADVERT_SOLICITED != 0);
            options_after(message, nd_len::NEIGHBOR_ADVERT).is_some()
                && target.is_some_and(|t| !t.is_ipv6_multicast())
                && !(solicited && dst.is_ipv6_multicast())
        }
        msg_type::REDIRECT => {
            let destination = address_at(message, nd_field::REDIRECT_DESTINATION);
            src.is_ipv6_link_local()
                && options_after(message, nd_len::REDIRECT).is_some()
                && match (target, destination) {
                    (Some(target), Some(destination)) => {
                        !destination.is_ipv6_multicast()
                            && (target.is_ipv6_link_local() || target == destination)
                    }
                    _ => false,
                }
        }
        _ => false,
    }
}

/// The 16-byte address at `at` in `message`, if it is there.
fn address_at(message: &[u8], at: usize) -> Option<Addr> {
    let bytes: [u8; 16] = message.get(at..at.checked_add(16)?)?.try_into().ok()?;
    Some(Addr::from_ipv6(bytes))
}

/// What the option walk saw that a check needs.
#[derive(Clone, Copy, Default)]
struct OptionsSeen {
    source_link_layer: bool,
}

/// Walks the options after the fixed part (`fixed_len` bytes) of a
/// neighbour discovery message. `None` if the message is shorter than its
/// fixed part, an option has length 0 (RFC 4861 4.6: such a packet is
/// discarded) or the options do not fill the rest exactly. At most one step
/// per 8 bytes.
fn options_after(message: &[u8], fixed_len: usize) -> Option<OptionsSeen> {
    let mut rest = message.get(fixed_len..)?;
    let mut seen = OptionsSeen::default();
    while let &[kind, units, ..] = rest {
        if units == 0 {
            return None;
        }
        rest = rest.get(usize::from(units) * 8..)?;
        seen.source_link_layer |= kind == nd_option::SOURCE_LINK_LAYER;
    }
    // One byte left over is no option.
    rest.is_empty().then_some(seen)
}

/// The MLD checks of [`is_valid`], but for the checksum.
fn is_valid_multicast_listener(pkt: &ParsedPacket, message: &[u8]) -> bool {
    if pkt.ttl != MLD_HOP_LIMIT || !(pkt.src.is_ipv6_link_local() || pkt.src.is_unspecified()) {
        return false;
    }
    let len = message.len();
    match pkt.icmp_type {
        // RFC 3810 8.1: 24 bytes is MLDv1, 28 or more MLDv2; a query of
        // another length is ignored.
        mld_type::QUERY => len == mld_len::V1 || len >= mld_len::V2_QUERY,
        mld_type::REPORT | mld_type::DONE => len >= mld_len::V1,
        mld_type::V2_REPORT => len >= mld_len::V2_REPORT,
        _ => false,
    }
}

/// Whether the packet carries a fragment header (even an atomic fragment,
/// which [`ParsedPacket::frag`] does not tell from no fragment header). A
/// walk that fails counts as one: the packet is not passed as link control.
fn has_fragment_header(frame: &[u8], pkt: &ParsedPacket) -> bool {
    if pkt.ipv6_ext_count == 0 {
        return false;
    }
    let Some(ip) = frame
        .get(pkt.l3_offset()..)
        .and_then(|l3| ipv6::Packet::new_checked(l3).ok())
    else {
        return true;
    };
    let mut headers = ip.ext_headers();
    headers.any(|h| h.map_or(true, |h| h.kind == ipv6::next_header::FRAGMENT))
}

/// The ICMPv6 checksum over the pseudo-header of the IP addresses.
fn checksum_is_valid(pkt: &ParsedPacket, message: &[u8]) -> bool {
    let pseudo = checksum::pseudo_header_v6(
        pkt.src.ipv6_octets(),
        pkt.dst.ipv6_octets(),
        proto::ICMPV6,
        message.len() as u32,
    );
    checksum::verify_with(pseudo, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_must_fill_the_rest_of_the_message_exactly() {
        let fixed = [0u8; 8];
        let with = |options: &[u8]| [&fixed[..], options].concat();
        let seen = |options: &[u8]| options_after(&with(options), 8).map(|s| s.source_link_layer);
        assert_eq!(seen(&[]), Some(false), "no options");
        assert_eq!(seen(&[1, 1, 2, 0, 0, 0, 0, 1]), Some(true));
        assert_eq!(
            seen(&[5, 1, 0, 0, 0, 0, 5, 220, 2, 1, 2, 0, 0, 0, 0, 2]),
            Some(false),
            "MTU and target link-layer address"
        );
        assert_eq!(seen(&[1, 0, 2, 0, 0, 0, 0, 1]), None, "length 0");
        assert_eq!(seen(&[1, 2, 2, 0, 0, 0, 0, 1]), None, "runs past the end");
        assert_eq!(seen(&[1, 1, 2, 0, 0, 0, 0, 1, 0]), None, "a byte left over");
        assert_eq!(seen(&[1, 1, 2, 0]), None, "half an option");
        assert_eq!(options_after(&fixed[..4], 8).map(|_| ()), None, "truncated");
        assert_eq!(seen(&[0x5a; 1200]), None, "junk");
    }

    #[test]
    fn addresses_read_only_when_whole() {
        let mut message = [0u8; 24];
        message[8] = 0xff;
        assert!(address_at(&message, 8).is_some_and(Addr::is_ipv6_multicast));
        assert_eq!(address_at(&message, 9), None);
        assert_eq!(address_at(&message, usize::MAX), None);
    }
}
