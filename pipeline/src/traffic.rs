//! Deterministic traffic for the demo, tests and benchmarks: frames built
//! with [`crate::wire::build`], timestamps as inputs, no randomness beyond a
//! seeded generator, so every run replays the same bytes.

use crate::flow::Addr;
use crate::wire::build::{packet_vec, Ethernet, Ip, L4};
use crate::wire::TcpFlags;

/// One frame and its capture timestamp.
#[derive(Clone, Debug)]
pub struct Frame {
    pub ts_ns: u64,
    pub bytes: Vec<u8>,
}

/// A small xorshift generator: deterministic across platforms and runs.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

pub fn v4(a: u8, b: u8, c: u8, d: u8) -> Addr {
    Addr::from_ipv4([a, b, c, d])
}

pub fn v6(text: &str) -> Addr {
    Addr::from_ipv6(text.parse::<std::net::Ipv6Addr>().expect("valid IPv6 literal").octets())
}

/// A TCP segment.
pub fn tcp(src: Addr, dst: Addr, sport: u16, dport: u16, flags: TcpFlags, payload: &[u8]) -> Vec<u8> {
    packet_vec(&Ethernet::DEFAULT, &Ip::new(src, dst), &L4::tcp(sport, dport, flags), payload)
        .expect("test frames fit")
}

/// A UDP datagram.
pub fn udp(src: Addr, dst: Addr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    packet_vec(&Ethernet::DEFAULT, &Ip::new(src, dst), &L4::udp(sport, dport), payload).expect("test frames fit")
}

/// An ICMP or ICMPv6 echo request (by address family).
pub fn ping(src: Addr, dst: Addr, ident: u16, seq: u16) -> Vec<u8> {
    let ip = Ip::new(src, dst);
    packet_vec(&Ethernet::DEFAULT, &ip, &L4::echo_request(ip.version, ident, seq), &[0x5a; 32])
        .expect("test frames fit")
}

/// `count` frames of mixed, well-formed client traffic (TCP handshakes and
/// data, UDP, ICMP, IPv4 and IPv6) from `clients` sources towards a server
/// subnet, sizes varying from minimum to near MTU. Frames are 1 us apart.
pub fn mixed(seed: u64, count: usize, start_ns: u64) -> Vec<Frame> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let client = rng.below(200) as u8 + 1;
        let server = rng.below(8) as u8 + 10;
        let sport = 1024 + rng.below(60000) as u16;
        let len = match rng.below(4) {
            0 => 0,
            1 => 64,
            2 => 512,
            _ => 1400,
        };
        let payload = vec![(i % 251) as u8; len];
        let bytes = match rng.below(10) {
            0..=5 => {
                let flags = if i % 7 == 0 { TcpFlags::SYN } else { TcpFlags::ACK | TcpFlags::PSH };
                tcp(v4(192, 0, 2, client), v4(10, 1, 0, server), sport, 80, flags, &payload)
            }
            6 | 7 => udp(v4(192, 0, 2, client), v4(10, 1, 0, server), sport, 53, &payload[..len.min(512)]),
            8 => ping(v4(192, 0, 2, client), v4(10, 1, 0, server), sport, i as u16),
            _ => tcp(
                v6(&format!("2001:db8:ff::{client:x}")),
                v6(&format!("2001:db8:1::{server:x}")),
                sport,
                443,
                TcpFlags::ACK,
                &payload,
            ),
        };
        out.push(Frame {
            ts_ns: start_ns + i as u64 * 1000,
            bytes,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{parse, Parsed};

    #[test]
    fn mixed_traffic_is_deterministic_and_parses() {
        let a = mixed(7, 300, 0);
        let b = mixed(7, 300, 0);
        assert!(a.iter().zip(&b).all(|(x, y)| x.bytes == y.bytes));
        assert_ne!(mixed(8, 300, 0)[5].bytes, a[5].bytes);
        for f in &a {
            assert!(matches!(parse(&f.bytes), Ok(Parsed::Ip(_))), "every generated frame is valid IP");
        }
    }
}
