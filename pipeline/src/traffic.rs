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
    Addr::from_ipv6(
        text.parse::<std::net::Ipv6Addr>()
            .expect("valid IPv6 literal")
            .octets(),
    )
}

/// A TCP segment (sequence number 1000, no acknowledgment number).
pub fn tcp(
    src: Addr,
    dst: Addr,
    sport: u16,
    dport: u16,
    flags: TcpFlags,
    payload: &[u8],
) -> Vec<u8> {
    packet_vec(
        &Ethernet::DEFAULT,
        &Ip::new(src, dst),
        &L4::tcp(sport, dport, flags),
        payload,
    )
    .expect("test frames fit")
}

/// A TCP segment with the given sequence and acknowledgment numbers.
#[allow(clippy::too_many_arguments)]
pub fn tcp_seq(
    (src, sport): (Addr, u16),
    (dst, dport): (Addr, u16),
    flags: TcpFlags,
    seq: u32,
    ack: u32,
    window: u16,
    payload: &[u8],
) -> Vec<u8> {
    let l4 = L4::Tcp {
        src_port: sport,
        dst_port: dport,
        seq,
        ack,
        flags,
        window,
        options: &[],
    };
    packet_vec(&Ethernet::DEFAULT, &Ip::new(src, dst), &l4, payload).expect("test frames fit")
}

/// A UDP datagram.
pub fn udp(src: Addr, dst: Addr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    packet_vec(
        &Ethernet::DEFAULT,
        &Ip::new(src, dst),
        &L4::udp(sport, dport),
        payload,
    )
    .expect("test frames fit")
}

/// An ICMP or ICMPv6 echo request (by address family).
pub fn ping(src: Addr, dst: Addr, ident: u16, seq: u16) -> Vec<u8> {
    let ip = Ip::new(src, dst);
    packet_vec(
        &Ethernet::DEFAULT,
        &ip,
        &L4::echo_request(ip.version, ident, seq),
        &[0x5a; 32],
    )
    .expect("test frames fit")
}

/// A fragment of datagram `id`: `l4` is the first fragment's L4 header
/// (a later fragment takes `L4::Raw` of the protocol), `offset` in bytes.
pub fn fragment(
    src: Addr,
    dst: Addr,
    id: u32,
    offset: u16,
    more: bool,
    l4: L4<'_>,
    payload: &[u8],
) -> Vec<u8> {
    let mut ip = Ip::new(src, dst);
    ip.fragment = Some(crate::wire::build::Fragment { offset, more, id });
    packet_vec(&Ethernet::DEFAULT, &ip, &l4, payload).expect("test frames fit")
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
                let flags = if i % 7 == 0 {
                    TcpFlags::SYN
                } else {
                    TcpFlags::ACK | TcpFlags::PSH
                };
                tcp(
                    v4(192, 0, 2, client),
                    v4(10, 1, 0, server),
                    sport,
                    80,
                    flags,
                    &payload,
                )
            }
            6 | 7 => udp(
                v4(192, 0, 2, client),
                v4(10, 1, 0, server),
                sport,
                53,
                &payload[..len.min(512)],
            ),
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

/// The demo capture: client traffic entering the untrust side that the
/// demo config (`src/demo.toml`) sends through every stage: permitted web,
/// DNS and ping sessions, a denied telnet, a filtered SNMP probe, one of
/// each stateless screen attack, a SYN flood, a port scan, malformed
/// frames and ARP. Deterministic; `start_ns` is the first timestamp.
pub fn demo(start_ns: u64) -> Vec<Frame> {
    use crate::wire::build::{Fragment, VlanTag};
    let client = |i: u8| v4(192, 0, 2, i);
    let web = v4(10, 1, 0, 10);
    let mut frames: Vec<Vec<u8>> = Vec::new();
    for i in 0..40u8 {
        let sport = 40000 + i as u16;
        frames.push(tcp(client(i + 1), web, sport, 80, TcpFlags::SYN, &[]));
        frames.push(tcp(
            client(i + 1),
            web,
            sport,
            80,
            TcpFlags::ACK | TcpFlags::PSH,
            b"GET / HTTP/1.1\r\nHost: demo\r\n\r\n",
        ));
        frames.push(tcp(
            client(i + 1),
            web,
            sport,
            80,
            TcpFlags::FIN | TcpFlags::ACK,
            &[],
        ));
    }
    for i in 0..20u8 {
        frames.push(udp(
            client(100 + i),
            v4(10, 1, 0, 53),
            5000 + i as u16,
            53,
            &[0x12; 40],
        ));
        frames.push(ping(client(100 + i), web, 7, i as u16));
    }
    frames.push(tcp(
        v6("2001:db8:ff::1"),
        v6("2001:db8:1::10"),
        40100,
        80,
        TcpFlags::SYN,
        &[],
    ));
    // Denied by policy, logged.
    for i in 0..5u8 {
        frames.push(tcp(
            client(150 + i),
            web,
            41000 + i as u16,
            23,
            TcpFlags::SYN,
            &[],
        ));
    }
    // Discarded by the input filter, logged.
    frames.push(udp(client(160), web, 5161, 161, &[0; 30]));
    // One of each stateless screen attack.
    let a = client(200);
    frames.push(tcp(web, web, 1234, 80, TcpFlags::SYN, &[]));
    frames.push(tcp(a, web, 1234, 80, TcpFlags::SYN | TcpFlags::FIN, &[]));
    frames.push(tcp(a, web, 1235, 80, TcpFlags::EMPTY, &[]));
    frames.push(tcp(a, web, 1236, 80, TcpFlags::FIN, &[]));
    frames.push(tcp(
        a,
        web,
        1237,
        139,
        TcpFlags::ACK | TcpFlags::URG,
        &[0; 8],
    ));
    let mut ip = Ip::new(a, web);
    ip.fragment = Some(Fragment {
        offset: 0,
        more: true,
        id: 99,
    });
    frames.push(
        packet_vec(
            &Ethernet::DEFAULT,
            &ip,
            &L4::tcp(1238, 80, TcpFlags::SYN),
            &[0; 16],
        )
        .expect("fits"),
    );
    ip.fragment = Some(Fragment {
        offset: 65512,
        more: false,
        id: 100,
    });
    frames.push(
        packet_vec(
            &Ethernet::DEFAULT,
            &ip,
            &L4::Raw {
                protocol: crate::flow::proto::ICMP,
            },
            &[0; 200],
        )
        .expect("fits"),
    );
    let mut opt = Ip::new(a, web);
    opt.options = &[131, 7, 4, 0, 0, 0, 0, 0];
    frames.push(packet_vec(&Ethernet::DEFAULT, &opt, &L4::udp(1000, 53), &[0; 8]).expect("fits"));
    frames.push(
        packet_vec(
            &Ethernet::DEFAULT,
            &Ip::new(a, web),
            &L4::Raw { protocol: 200 },
            &[0; 20],
        )
        .expect("fits"),
    );
    // A port scan: 12 ports in 1.2 ms from one source.
    for p in 0..12u16 {
        frames.push(tcp(client(210), web, 50000, 1000 + p, TcpFlags::SYN, &[]));
    }
    // A SYN flood at one web server: more SYNs in a second than the
    // attack threshold.
    for i in 0..300u16 {
        frames.push(tcp(
            client(220 + (i % 30) as u8),
            v4(10, 1, 0, 11),
            20000 + i,
            80,
            TcpFlags::SYN,
            &[],
        ));
    }
    // Malformed frames (counted and dropped) and ARP (passed through).
    let mut bad = tcp(a, web, 1, 80, TcpFlags::SYN, &[]);
    bad[14] = 0x41; // IHL 1
    frames.push(bad);
    frames.push(vec![0xff; 10]);
    let mut arp = vec![
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 1, 0x08, 0x06,
    ];
    arp.extend_from_slice(&[
        0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1, 192, 0, 2, 1, 0, 0, 0, 0, 0, 0, 10, 1, 0, 10,
    ]);
    frames.push(arp);
    let tagged = Ethernet {
        vlans: &[VlanTag::dot1q(100)],
        ..Ethernet::DEFAULT
    };
    frames.push(
        packet_vec(
            &tagged,
            &Ip::new(client(50), web),
            &L4::tcp(40500, 80, TcpFlags::SYN),
            &[],
        )
        .expect("fits"),
    );
    frames
        .into_iter()
        .enumerate()
        .map(|(i, bytes)| Frame {
            ts_ns: start_ns + i as u64 * 100_000,
            bytes,
        })
        .collect()
}

/// One hand-built frame per stateless screen option, named as in Junos
/// (`loose-` and `strict-source-route-option` frames also trip the
/// umbrella `source-route-option` when that is enabled).
pub fn screen_attacks() -> Vec<(&'static str, Vec<u8>)> {
    use crate::flow::proto;
    use crate::screen::ScreenOption;
    let (a, b) = (v4(198, 51, 100, 1), v4(10, 1, 0, 10));
    let frag = |l4: L4<'_>, offset: u16, more: bool, payload: &[u8]| {
        fragment(a, b, 77, offset, more, l4, payload)
    };
    let with_options = |options: &[u8]| {
        let mut ip = Ip::new(a, b);
        ip.options = options;
        packet_vec(&Ethernet::DEFAULT, &ip, &L4::udp(1000, 53), &[0; 8]).expect("fits")
    };
    // The classic teardrop head: a UDP header claiming a bigger datagram,
    // 36 bytes of data (not a multiple of 8) with more fragments to come.
    let mut teardrop = [0u8; 36];
    teardrop[..8].copy_from_slice(&[0x04, 0xd2, 0x00, 0x35, 0x00, 0x40, 0x00, 0x00]);
    let large_ping = {
        let ip = Ip::new(a, b);
        packet_vec(
            &Ethernet::DEFAULT,
            &ip,
            &L4::echo_request(ip.version, 1, 1),
            &[0; 1200],
        )
        .expect("fits")
    };
    vec![
        (
            ScreenOption::Land.name(),
            tcp(b, b, 1234, 80, TcpFlags::SYN, &[]),
        ),
        (
            ScreenOption::SynFin.name(),
            tcp(a, b, 1234, 80, TcpFlags::SYN | TcpFlags::FIN, &[]),
        ),
        (
            ScreenOption::TcpNoFlag.name(),
            tcp(a, b, 1234, 80, TcpFlags::EMPTY, &[]),
        ),
        (
            ScreenOption::FinNoAck.name(),
            tcp(a, b, 1234, 80, TcpFlags::FIN, &[]),
        ),
        (
            ScreenOption::Winnuke.name(),
            tcp(a, b, 1234, 139, TcpFlags::ACK | TcpFlags::URG, &[1; 4]),
        ),
        (
            ScreenOption::SynFrag.name(),
            frag(L4::tcp(1234, 80, TcpFlags::SYN), 0, true, &[0; 16]),
        ),
        (
            ScreenOption::TearDrop.name(),
            frag(
                L4::Raw {
                    protocol: proto::UDP,
                },
                0,
                true,
                &teardrop,
            ),
        ),
        (
            ScreenOption::PingDeath.name(),
            frag(
                L4::Raw {
                    protocol: proto::ICMP,
                },
                65512,
                false,
                &[0; 200],
            ),
        ),
        (
            ScreenOption::IcmpFragment.name(),
            frag(
                L4::Raw {
                    protocol: proto::ICMP,
                },
                1480,
                false,
                &[0; 64],
            ),
        ),
        (ScreenOption::IcmpLarge.name(), large_ping),
        (
            ScreenOption::BlockFrag.name(),
            frag(
                L4::Raw {
                    protocol: proto::UDP,
                },
                1480,
                false,
                &[0; 64],
            ),
        ),
        (
            ScreenOption::LooseSourceRouteOption.name(),
            with_options(&[131, 7, 4, 0, 0, 0, 0, 0]),
        ),
        (
            ScreenOption::StrictSourceRouteOption.name(),
            with_options(&[137, 7, 4, 0, 0, 0, 0, 0]),
        ),
        (
            ScreenOption::RecordRouteOption.name(),
            with_options(&[7, 7, 4, 0, 0, 0, 0, 0]),
        ),
        (
            ScreenOption::TimestampOption.name(),
            with_options(&[68, 4, 5, 0]),
        ),
        (
            ScreenOption::SecurityOption.name(),
            with_options(&[130, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        ),
        (
            ScreenOption::StreamOption.name(),
            with_options(&[136, 4, 0, 1]),
        ),
        (ScreenOption::BadOption.name(), with_options(&[7, 40, 4, 0])),
        (
            ScreenOption::UnknownProtocol.name(),
            packet_vec(
                &Ethernet::DEFAULT,
                &Ip::new(a, b),
                &L4::Raw { protocol: 200 },
                &[0; 20],
            )
            .expect("fits"),
        ),
    ]
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
            assert!(
                matches!(parse(&f.bytes), Ok(Parsed::Ip(_))),
                "every generated frame is valid IP"
            );
        }
    }
}
