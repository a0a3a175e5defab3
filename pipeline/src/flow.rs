//! Addresses, prefixes and the 5-tuple shared by every stage.
//!
//! IPv4 and IPv6 live in one address space: an IPv4 address is stored as its
//! IPv4-mapped IPv6 form (`::ffff:a.b.c.d`), so one prefix trie, one session
//! hash and one classifier serve both families, and an IPv4 `/n` prefix is the
//! mapped `/96+n` prefix.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An IPv4 or IPv6 address in the unified (IPv4-mapped) space.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Addr(pub u128);

const V4_MAPPED: u128 = 0xffff_u128 << 32;
const V4_MAPPED_MASK: u128 = !0xffff_ffff_u128;

impl Addr {
    pub const fn from_ipv4(octets: [u8; 4]) -> Addr {
        Addr(V4_MAPPED | u32::from_be_bytes(octets) as u128)
    }

    pub const fn from_ipv6(octets: [u8; 16]) -> Addr {
        Addr(u128::from_be_bytes(octets))
    }

    pub const fn is_ipv4(self) -> bool {
        self.0 & V4_MAPPED_MASK == V4_MAPPED
    }

    /// An IPv6 link-local unicast address (fe80::/10).
    pub const fn is_ipv6_link_local(self) -> bool {
        self.0 >> 118 == 0xfe80 >> 6
    }

    /// The IPv6 unspecified address (`::`).
    pub const fn is_unspecified(self) -> bool {
        self.0 == 0
    }

    /// An IPv6 multicast address (ff00::/8).
    pub const fn is_ipv6_multicast(self) -> bool {
        self.0 >> 120 == 0xff
    }

    /// A solicited-node multicast address (ff02::1:ff00:0/104, RFC 4291
    /// 2.7.1), where neighbour solicitations for an address go.
    pub const fn is_ipv6_solicited_node(self) -> bool {
        self.0 & !0xff_ffff == 0xff02_0000_0000_0000_0000_0001_ff00_0000
    }

    /// The low 32 bits as IPv4 octets (meaningful when `is_ipv4`).
    pub const fn ipv4_octets(self) -> [u8; 4] {
        (self.0 as u32).to_be_bytes()
    }

    pub const fn ipv6_octets(self) -> [u8; 16] {
        self.0.to_be_bytes()
    }

    pub fn to_ip_addr(self) -> IpAddr {
        if self.is_ipv4() {
            IpAddr::V4(Ipv4Addr::from(self.ipv4_octets()))
        } else {
            IpAddr::V6(Ipv6Addr::from(self.ipv6_octets()))
        }
    }
}

impl From<IpAddr> for Addr {
    fn from(ip: IpAddr) -> Addr {
        match ip {
            IpAddr::V4(v4) => Addr::from_ipv4(v4.octets()),
            IpAddr::V6(v6) => Addr::from_ipv6(v6.octets()),
        }
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.to_ip_addr().fmt(f)
    }
}

impl fmt::Debug for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// An address prefix in the unified space; `len` counts bits of the 128-bit
/// form, so IPv4 prefixes have `len >= 96`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Prefix {
    pub addr: Addr,
    pub len: u8,
}

impl Prefix {
    /// Every IPv4 and IPv6 address (the `any` of address books).
    pub const ANY: Prefix = Prefix {
        addr: Addr(0),
        len: 0,
    };

    /// Builds a prefix, clearing host bits; `len` is in the unified space.
    pub fn new(addr: Addr, len: u8) -> Prefix {
        let len = len.min(128);
        Prefix {
            addr: Addr(addr.0 & Self::mask(len)),
            len,
        }
    }

    pub const fn mask(len: u8) -> u128 {
        if len == 0 {
            0
        } else {
            u128::MAX << (128 - len as u32)
        }
    }

    pub fn contains(&self, addr: Addr) -> bool {
        addr.0 & Self::mask(self.len) == self.addr.0
    }
}

impl FromStr for Prefix {
    type Err = String;

    /// Parses `10.0.0.0/8`, `2001:db8::/32`, or a bare address (a host prefix).
    fn from_str(s: &str) -> Result<Prefix, String> {
        let (ip, len) = match s.split_once('/') {
            Some((ip, len)) => (ip, Some(len)),
            None => (s, None),
        };
        let ip: IpAddr = ip
            .trim()
            .parse()
            .map_err(|_| format!("'{s}' is not an IP address or prefix"))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let len: u8 = match len {
            Some(l) => l
                .trim()
                .parse()
                .ok()
                .filter(|l| *l <= max)
                .ok_or_else(|| format!("'{s}': prefix length must be 0..={max}"))?,
            None => max,
        };
        let unified = if ip.is_ipv4() { len + 96 } else { len };
        Ok(Prefix::new(Addr::from(ip), unified))
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.addr.is_ipv4() && self.len >= 96 {
            write!(f, "{}/{}", self.addr, self.len - 96)
        } else {
            write!(f, "{}/{}", self.addr, self.len)
        }
    }
}

/// IP protocol numbers the stages look at.
pub mod proto {
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const ICMPV6: u8 = 58;
}

/// The 5-tuple of a packet as it travels (not normalized by direction).
///
/// For ICMP/ICMPv6 echo request and reply, `src_port` and `dst_port` both
/// hold the echo identifier so request and reply meet in one session; for
/// other ICMP messages both are 0.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct FlowKey {
    pub src: Addr,
    pub dst: Addr,
    pub src_port: u16,
    pub dst_port: u16,
    pub protocol: u8,
}

impl FlowKey {
    /// The same flow seen from the other direction.
    pub fn reversed(&self) -> FlowKey {
        FlowKey {
            src: self.dst,
            dst: self.src,
            src_port: self.dst_port,
            dst_port: self.src_port,
            protocol: self.protocol,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_is_mapped_and_round_trips() {
        let a = Addr::from_ipv4([10, 1, 2, 3]);
        assert!(a.is_ipv4());
        assert_eq!(a.to_string(), "10.1.2.3");
        let b = Addr::from_ipv6("2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        assert!(!b.is_ipv4());
        assert_eq!(b.to_string(), "2001:db8::1");
    }

    #[test]
    fn ipv6_address_classes() {
        let a = |text: &str| Addr::from_ipv6(text.parse::<Ipv6Addr>().unwrap().octets());
        assert!(a("::").is_unspecified() && !Addr::from_ipv4([0; 4]).is_unspecified());
        assert!(a("fe80::1").is_ipv6_link_local() && !a("2001:db8::1").is_ipv6_link_local());
        assert!(a("ff02::1").is_ipv6_multicast() && a("ff05::1:3").is_ipv6_multicast());
        assert!(!a("fe80::1").is_ipv6_multicast() && !a("2001:db8::1").is_ipv6_multicast());
        assert!(a("ff02::1:ff00:2").is_ipv6_solicited_node());
        assert!(a("ff02::1:ffab:cdef").is_ipv6_solicited_node());
        for other in [
            "ff02::1",
            "ff02::1:fe00:2",
            "ff05::1:ff00:2",
            "fe80::1:ff00:2",
        ] {
            assert!(!a(other).is_ipv6_solicited_node(), "{other}");
        }
    }

    #[test]
    fn prefixes_parse_and_match_in_one_space() {
        let p: Prefix = "10.1.0.0/16".parse().unwrap();
        assert_eq!(p.len, 112);
        assert!(p.contains(Addr::from_ipv4([10, 1, 200, 3])));
        assert!(!p.contains(Addr::from_ipv4([10, 2, 0, 1])));
        assert_eq!(p.to_string(), "10.1.0.0/16");
        let host: Prefix = "192.0.2.7".parse().unwrap();
        assert_eq!(host.len, 128);
        let v6: Prefix = "2001:db8:1::/64".parse().unwrap();
        assert!(v6.contains(Addr::from_ipv6(
            "2001:db8:1::42".parse::<Ipv6Addr>().unwrap().octets()
        )));
        assert!(!v6.contains(Addr::from_ipv4([10, 1, 0, 1])));
        assert!(Prefix::ANY.contains(Addr::from_ipv4([1, 2, 3, 4])));
        // Host bits are cleared.
        let sloppy: Prefix = "10.1.2.3/8".parse().unwrap();
        assert_eq!(sloppy.to_string(), "10.0.0.0/8");
        assert!("10.0.0.0/33".parse::<Prefix>().is_err());
        assert!("banana".parse::<Prefix>().is_err());
    }
}
