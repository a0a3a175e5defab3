//! The demo capture: deterministic frames built with
//! [`rampart_pipeline::wire::build`] that the demo config (`src/demo.toml`)
//! sends through every stage. Only `rampart_pipeline` paths here: the test
//! kit (`testkit/`) compiles this same file for the tests, fuzz seeds and
//! benchmarks that replay the demo or build frames the way it does.

use rampart_pipeline::flow::{proto, Addr};
use rampart_pipeline::wire::build::{packet_vec, Ethernet, Fragment, Ip, VlanTag, L4};
use rampart_pipeline::wire::TcpFlags;

/// One frame and its capture timestamp.
#[derive(Clone, Debug)]
pub struct Frame {
    pub ts_ns: u64,
    pub bytes: Vec<u8>,
}

/// An IPv4 address.
pub fn v4(a: u8, b: u8, c: u8, d: u8) -> Addr {
    Addr::from_ipv4([a, b, c, d])
}

/// An IPv6 address from its text (panics on a bad literal).
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
    .expect("the frames fit")
}

/// A UDP datagram.
pub fn udp(src: Addr, dst: Addr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    packet_vec(
        &Ethernet::DEFAULT,
        &Ip::new(src, dst),
        &L4::udp(sport, dport),
        payload,
    )
    .expect("the frames fit")
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
    .expect("the frames fit")
}

/// The demo capture: client traffic entering the untrust side that the
/// demo config (`src/demo.toml`) sends through every stage: permitted web,
/// DNS and ping sessions, a denied telnet, a filtered SNMP probe, one of
/// each stateless screen attack, a SYN flood, a port scan, malformed
/// frames and ARP. Deterministic; `start_ns` is the first timestamp.
pub fn demo(start_ns: u64) -> Vec<Frame> {
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
                protocol: proto::ICMP,
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
