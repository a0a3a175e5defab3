//! Packet views over plain byte buffers, in the style of smoltcp `src/wire/`.
//!
//! Every header has a module with a typed view `Packet<T: AsRef<[u8]>>`
//! (`ethernet::Frame` for Ethernet) over the bytes, a private `field` module
//! of byte ranges, getters in one `impl` block and setters (`T: AsMut<[u8]>`)
//! in another. Nothing is copied into owned structs: a view reads the field
//! it is asked for, when it is asked.
//!
//! The firewall hot path uses a single entry point, [`parse`], which walks
//! Ethernet -> 802.1Q/QinQ tags -> IPv4/IPv6 (options, extension headers) ->
//! TCP/UDP/ICMP/ICMPv6 and returns a small `Copy` summary, [`ParsedPacket`],
//! or [`Parsed::NonIp`] for ARP and other non-IP frames (the firewall passes
//! them through; they are not errors). It allocates nothing and formats
//! nothing.
//!
//! # No-panic contract
//!
//! **No input bytes can make anything in this module panic.**
//!
//! - `new_checked()` validates every length a getter relies on and returns a
//!   [`Malformed`] reason instead of a view that could read out of bounds.
//!   Getters of a view made by `new_checked()` never panic.
//! - `new_unchecked()` skips that validation; it exists for buffers the
//!   caller has sized itself (the builders in [`build`]). Reading a field that
//!   lies beyond the end of such a buffer panics, as in smoltcp: that is a
//!   programming error, never a property of received bytes.
//! - Setters that take a slice (addresses, payloads) panic if the caller
//!   passes a slice of the wrong length: again a programming error.
//! - [`parse`], [`parse_verified`], iterators over IPv4 options and IPv6
//!   extension headers, and the answer builders [`build::tcp_reset`] and
//!   [`build::icmp_unreachable`] accept arbitrary bytes and never panic:
//!   every offset they derive from packet contents is checked (`get`, checked
//!   `split_at`) before use. Iteration is bounded: an extension-header chain
//!   longer than [`ipv6::MAX_EXT_HEADERS`] is [`Malformed::Ipv6ExtChainTooLong`],
//!   never a loop. A property test feeds random and mutated packets to all of
//!   them.
//!
//! # Checksums
//!
//! [`parse`] does not verify the IPv4 header checksum (NICs verify it in RX
//! offload, and the hot path should not pay for it twice);
//! [`parse_verified`] does, and reports [`Malformed::BadIpv4Checksum`]. L4
//! checksums are never verified by either: use the `verify_checksum` methods
//! of the views with [`checksum`] pseudo-header helpers where needed.

pub mod arp;
pub mod build;
pub mod checksum;
pub mod ethernet;
pub mod icmp;
pub mod icmpv4;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod link_control;
mod parse;
pub mod related;
pub mod tcp;
pub mod udp;
pub mod vlan;

use std::fmt;

pub use ipv4::OptionSet as Ipv4OptionSet;
pub use parse::{parse, parse_verified, FragInfo, L2Info, Parsed, ParsedPacket, MAX_VLAN_TAGS};
pub use tcp::Flags as TcpFlags;

/// The IP version of a packet.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[repr(u8)]
pub enum IpVersion {
    V4 = 4,
    V6 = 6,
}

/// Why a frame could not be parsed. `#[repr(u8)]` with [`Malformed::COUNT`]
/// variants numbered from 0, so drop counters are plain arrays indexed by
/// `reason as usize`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
#[repr(u8)]
pub enum Malformed {
    /// Shorter than the 14-byte Ethernet II header.
    TruncatedEthernet = 0,
    /// An 802.1Q/802.1ad TPID not followed by a full 4-byte tag.
    TruncatedVlan,
    /// More than [`MAX_VLAN_TAGS`] stacked tags.
    VlanTooDeep,
    /// ARP shorter than its fixed part plus the addresses it announces.
    TruncatedArp,
    /// Shorter than the 20-byte IPv4 header, or than the header length (IHL).
    TruncatedIpv4,
    /// EtherType IPv4 but the version nibble is not 4.
    BadIpv4Version,
    /// IHL below 5 (20 bytes).
    BadIhl,
    /// Total length below the header length, or beyond the buffer.
    BadIpv4TotalLength,
    /// Header checksum wrong (only reported by [`parse_verified`]).
    BadIpv4Checksum,
    /// A malformed IPv4 option. [`parse`] does not fail on it: it sets
    /// [`ipv4::OptionSet::BAD`] so the `bad-option` screen decides. The
    /// options iterator yields this error.
    BadIpOption,
    /// Shorter than the 40-byte IPv6 header.
    TruncatedIpv6,
    /// EtherType IPv6 but the version nibble is not 6.
    BadIpv6Version,
    /// 40 + payload length beyond the buffer.
    BadIpv6PayloadLength,
    /// More than [`ipv6::MAX_EXT_HEADERS`] extension headers.
    Ipv6ExtChainTooLong,
    /// An extension header running past the IPv6 payload.
    TruncatedIpv6Ext,
    /// Fewer than 20 bytes of TCP in a first fragment or unfragmented packet.
    TruncatedTcp,
    /// TCP data offset below 5 or beyond the segment.
    BadTcpDataOffset,
    /// Fewer than 8 bytes of UDP in a first fragment or unfragmented packet.
    TruncatedUdp,
    /// UDP length field below 8 or beyond the IP payload.
    BadUdpLength,
    /// Fewer than 8 bytes of ICMP/ICMPv6 in a first fragment or unfragmented
    /// packet.
    TruncatedIcmp,
    /// An IPv6 source or destination in the IPv4-mapped range
    /// `::ffff:0:0/96`, which must not appear on the wire (RFC 4291
    /// 2.5.5.2) and would alias an IPv4 address in policies and sessions
    /// (they hold IPv4 addresses as mapped IPv6 ones).
    Ipv6MappedAddress,
}

impl Malformed {
    /// Number of variants; counters are `[u64; Malformed::COUNT]`.
    pub const COUNT: usize = 21;

    /// Every variant, in discriminant order (`ALL[r as usize] == r`).
    pub const ALL: [Malformed; Malformed::COUNT] = [
        Malformed::TruncatedEthernet,
        Malformed::TruncatedVlan,
        Malformed::VlanTooDeep,
        Malformed::TruncatedArp,
        Malformed::TruncatedIpv4,
        Malformed::BadIpv4Version,
        Malformed::BadIhl,
        Malformed::BadIpv4TotalLength,
        Malformed::BadIpv4Checksum,
        Malformed::BadIpOption,
        Malformed::TruncatedIpv6,
        Malformed::BadIpv6Version,
        Malformed::BadIpv6PayloadLength,
        Malformed::Ipv6ExtChainTooLong,
        Malformed::TruncatedIpv6Ext,
        Malformed::TruncatedTcp,
        Malformed::BadTcpDataOffset,
        Malformed::TruncatedUdp,
        Malformed::BadUdpLength,
        Malformed::TruncatedIcmp,
        Malformed::Ipv6MappedAddress,
    ];

    /// Index into a counter array.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Stable snake_case name, used in counters, stats and trace output.
    pub const fn name(self) -> &'static str {
        match self {
            Malformed::TruncatedEthernet => "truncated_ethernet",
            Malformed::TruncatedVlan => "truncated_vlan",
            Malformed::VlanTooDeep => "vlan_too_deep",
            Malformed::TruncatedArp => "truncated_arp",
            Malformed::TruncatedIpv4 => "truncated_ipv4",
            Malformed::BadIpv4Version => "bad_ipv4_version",
            Malformed::BadIhl => "bad_ihl",
            Malformed::BadIpv4TotalLength => "bad_ipv4_total_length",
            Malformed::BadIpv4Checksum => "bad_ipv4_checksum",
            Malformed::BadIpOption => "bad_ip_option",
            Malformed::TruncatedIpv6 => "truncated_ipv6",
            Malformed::BadIpv6Version => "bad_ipv6_version",
            Malformed::BadIpv6PayloadLength => "bad_ipv6_payload_length",
            Malformed::Ipv6ExtChainTooLong => "ipv6_ext_chain_too_long",
            Malformed::TruncatedIpv6Ext => "truncated_ipv6_ext",
            Malformed::TruncatedTcp => "truncated_tcp",
            Malformed::BadTcpDataOffset => "bad_tcp_data_offset",
            Malformed::TruncatedUdp => "truncated_udp",
            Malformed::BadUdpLength => "bad_udp_length",
            Malformed::TruncatedIcmp => "truncated_icmp",
            Malformed::Ipv6MappedAddress => "ipv6_mapped_address",
        }
    }
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::error::Error for Malformed {}

/// Big-endian u16 from the first two bytes of `b` (callers pass a field
/// range of a validated buffer).
#[inline(always)]
pub(crate) fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

/// Big-endian u32 from the first four bytes of `b`.
#[inline(always)]
pub(crate) fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

#[cfg(test)]
mod tests;
