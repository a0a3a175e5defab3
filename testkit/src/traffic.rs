//! Deterministic traffic for tests, fuzz seeds and benchmarks: frames
//! built with [`rampart_pipeline::wire::build`], timestamps as inputs, no
//! randomness beyond a seeded generator, so every run replays the same
//! bytes. The demo capture and the few builders it uses are the `rampart`
//! binary's (`src/demo/capture.rs`), re-exported here.

pub use crate::demo::{demo, ping, tcp, udp, v4, v6, Frame};
use rampart_pipeline::flow::Addr;
use rampart_pipeline::wire::build::{packet_vec, Ethernet, Ip, L4};
use rampart_pipeline::wire::icmpv6::msg_type;
use rampart_pipeline::wire::link_control::nd_option;
use rampart_pipeline::wire::TcpFlags;

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
    ip.fragment = Some(rampart_pipeline::wire::build::Fragment { offset, more, id });
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

/// One hand-built frame per stateless screen option, named as in Junos
/// (`loose-` and `strict-source-route-option` frames also trip the
/// umbrella `source-route-option` when that is enabled).
pub fn screen_attacks() -> Vec<(&'static str, Vec<u8>)> {
    use rampart_pipeline::flow::proto;
    use rampart_pipeline::screen::ScreenOption;
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

/// An ICMPv6 message as a link carries it: hop limit `hop_limit`, `rest`
/// the 4 bytes after the checksum, `body` what follows (fixed fields, then
/// options).
pub fn icmpv6_link(
    (src, dst): (Addr, Addr),
    hop_limit: u8,
    (msg_type, code): (u8, u8),
    rest: [u8; 4],
    body: &[u8],
) -> Vec<u8> {
    let ip = Ip {
        ttl: hop_limit,
        ..Ip::new(src, dst)
    };
    let l4 = L4::Icmp {
        msg_type,
        code,
        rest,
    };
    packet_vec(&Ethernet::DEFAULT, &ip, &l4, body).expect("test frames fit")
}

/// A neighbour discovery link-layer address option (`kind` source or
/// target) with the test frames' source MAC.
pub fn link_layer_option(kind: u8) -> [u8; 8] {
    let mac = Ethernet::DEFAULT.src;
    [kind, 1, mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]]
}

/// Neighbour discovery: hop limit 255, code 0 (RFC 4861).
fn nd(src: Addr, dst: Addr, msg_type: u8, rest: [u8; 4], body: &[u8]) -> Vec<u8> {
    icmpv6_link((src, dst), 255, (msg_type, 0), rest, body)
}

/// The source link-layer address option, unless `src` is unspecified
/// (which must not carry one).
fn source_link_layer(src: Addr) -> Vec<u8> {
    if src.is_unspecified() {
        Vec::new()
    } else {
        link_layer_option(nd_option::SOURCE_LINK_LAYER).to_vec()
    }
}

/// A router solicitation to all routers.
pub fn router_solicitation(src: Addr) -> Vec<u8> {
    let all_routers = v6("ff02::2");
    let body = source_link_layer(src);
    nd(src, all_routers, msg_type::ROUTER_SOLICIT, [0; 4], &body)
}

/// A router advertisement to all nodes: hop limit 64, lifetime 1800 s,
/// the source link-layer address and the link MTU (1500).
pub fn router_advertisement(src: Addr) -> Vec<u8> {
    let all_nodes = v6("ff02::1");
    let mut body = vec![0; 8]; // reachable time, retransmission timer
    body.extend(link_layer_option(nd_option::SOURCE_LINK_LAYER));
    body.extend([nd_option::MTU, 1, 0, 0, 0, 0, 0x05, 0xdc]);
    let lifetime = 1800u16.to_be_bytes();
    let rest = [64, 0, lifetime[0], lifetime[1]];
    nd(src, all_nodes, msg_type::ROUTER_ADVERT, rest, &body)
}

/// A neighbour solicitation for `target`, with the source link-layer
/// address unless from the unspecified source (duplicate address
/// detection).
pub fn neighbor_solicitation(src: Addr, dst: Addr, target: Addr) -> Vec<u8> {
    let body = [&target.ipv6_octets()[..], &source_link_layer(src)].concat();
    nd(src, dst, msg_type::NEIGHBOR_SOLICIT, [0; 4], &body)
}

/// A neighbour advertisement for `target` with the override flag (and the
/// solicited flag when `solicited`) and the target link-layer address.
pub fn neighbor_advertisement(src: Addr, dst: Addr, target: Addr, solicited: bool) -> Vec<u8> {
    let flags = 0x20 | if solicited { 0x40 } else { 0 };
    let option = link_layer_option(nd_option::TARGET_LINK_LAYER);
    let body = [&target.ipv6_octets()[..], &option].concat();
    nd(src, dst, msg_type::NEIGHBOR_ADVERT, [flags, 0, 0, 0], &body)
}

/// A redirect telling `dst` to reach `destination` through `target`, with
/// the target link-layer address and an (empty) redirected header.
pub fn redirect(src: Addr, dst: Addr, target: Addr, destination: Addr) -> Vec<u8> {
    let body = [
        &target.ipv6_octets()[..],
        &destination.ipv6_octets(),
        &link_layer_option(nd_option::TARGET_LINK_LAYER),
        &[nd_option::REDIRECTED_HEADER, 1, 0, 0, 0, 0, 0, 0],
    ]
    .concat();
    nd(src, dst, msg_type::REDIRECT, [0; 4], &body)
}

/// An MLD message (hop limit 1) of `msg_type`: `rest` the 4 bytes after
/// the checksum, `body` what follows.
fn mld(src: Addr, dst: Addr, msg_type: u8, rest: [u8; 4], body: &[u8]) -> Vec<u8> {
    icmpv6_link((src, dst), 1, (msg_type, 0), rest, body)
}

/// Neighbour discovery and multicast listener messages, named, each with
/// whether it is valid (RFC 4861, RFC 2710, RFC 3810; see
/// [`rampart_pipeline::wire::link_control::is_valid`]): what the firewall passes
/// like ARP, and what it sends through policy instead.
pub fn link_control() -> Vec<(&'static str, bool, Vec<u8>)> {
    let (router, host, other) = (v6("fe80::1"), v6("fe80::2"), v6("fe80::3"));
    let global = v6("2001:db8::1");
    let (unspecified, all_nodes) = (v6("::"), v6("ff02::1"));
    let solicited_node = v6("ff02::1:ff00:2");
    let (on_link, far) = (v6("2001:db8:1::6"), v6("2001:db8:2::1"));
    let group = v6("ff02::1:3");
    let ns = |src, dst, target| neighbor_solicitation(src, dst, target);
    let ns_with = |code: u8, hop_limit: u8, body: &[u8]| {
        let (src, dst) = (router, solicited_node);
        icmpv6_link(
            (src, dst),
            hop_limit,
            (msg_type::NEIGHBOR_SOLICIT, code),
            [0; 4],
            body,
        )
    };
    let ns_body = |options: &[u8]| [&host.ipv6_octets()[..], options].concat();
    let slla = link_layer_option(nd_option::SOURCE_LINK_LAYER);
    let bad_checksum = {
        let mut f = ns(router, solicited_node, host);
        // The ICMPv6 checksum, after the Ethernet and IPv6 headers.
        f[14 + 40 + 2] ^= 0xff;
        f
    };
    let atomic_fragment = {
        let ip = Ip {
            ttl: 255,
            fragment: Some(rampart_pipeline::wire::build::Fragment {
                offset: 0,
                more: false,
                id: 1,
            }),
            ..Ip::new(router, solicited_node)
        };
        let l4 = L4::Icmp {
            msg_type: msg_type::NEIGHBOR_SOLICIT,
            code: 0,
            rest: [0; 4],
        };
        packet_vec(&Ethernet::DEFAULT, &ip, &l4, &ns_body(&slla)).expect("fits")
    };
    let mld_address = group.ipv6_octets();
    // One MLDv2 record: type 4 (change to exclude), no sources, the group.
    let mldv2_record = [&[4, 0, 0, 0][..], &mld_address].concat();
    vec![
        // Valid.
        ("router-solicitation", true, router_solicitation(host)),
        (
            "router-solicitation-before-address",
            true,
            router_solicitation(unspecified),
        ),
        ("router-advertisement", true, router_advertisement(router)),
        (
            "neighbor-solicitation",
            true,
            ns(router, solicited_node, host),
        ),
        (
            "neighbor-solicitation-unicast",
            true,
            ns(router, host, host),
        ),
        (
            "duplicate-address-detection",
            true,
            ns(unspecified, solicited_node, host),
        ),
        (
            "neighbor-advertisement",
            true,
            neighbor_advertisement(host, router, host, true),
        ),
        (
            "unsolicited-neighbor-advertisement",
            true,
            neighbor_advertisement(host, all_nodes, host, false),
        ),
        (
            "redirect-to-router",
            true,
            redirect(router, on_link, other, far),
        ),
        (
            "redirect-on-link",
            true,
            redirect(router, global, on_link, on_link),
        ),
        (
            "mld-report",
            true,
            mld(host, group, 131, [0; 4], &mld_address),
        ),
        (
            "mld-done",
            true,
            mld(host, v6("ff02::2"), 132, [0; 4], &mld_address),
        ),
        (
            "mldv1-query",
            true,
            mld(router, all_nodes, 130, [0; 4], &[0; 16]),
        ),
        (
            "mldv2-query",
            true,
            mld(router, all_nodes, 130, [0; 4], &[0; 20]),
        ),
        (
            "mldv2-report",
            true,
            mld(host, v6("ff02::16"), 143, [0, 0, 0, 1], &mldv2_record),
        ),
        (
            "mldv2-report-before-address",
            true,
            mld(
                unspecified,
                v6("ff02::16"),
                143,
                [0, 0, 0, 1],
                &mldv2_record,
            ),
        ),
        // Invalid: through policy.
        ("ns-code-9", false, ns_with(9, 255, &ns_body(&slla))),
        (
            "ns-junk-payload",
            false,
            ns_with(0, 255, &ns_body(&[0x5a; 1200])),
        ),
        (
            "ns-truncated",
            false,
            ns_with(0, 255, &host.ipv6_octets()[..8]),
        ),
        ("ns-routed", false, ns_with(0, 64, &ns_body(&slla))),
        (
            "ns-option-length-0",
            false,
            ns_with(
                0,
                255,
                &ns_body(&[nd_option::SOURCE_LINK_LAYER, 0, 0, 0, 0, 0, 0, 0]),
            ),
        ),
        ("ns-bad-checksum", false, bad_checksum),
        ("ns-atomic-fragment", false, atomic_fragment),
        (
            "ns-target-multicast",
            false,
            ns(router, solicited_node, all_nodes),
        ),
        ("dad-to-unicast", false, ns(unspecified, host, host)),
        (
            "dad-with-source-link-layer",
            false,
            nd(
                unspecified,
                solicited_node,
                msg_type::NEIGHBOR_SOLICIT,
                [0; 4],
                &ns_body(&slla),
            ),
        ),
        (
            "rs-unspecified-with-source-link-layer",
            false,
            nd(
                unspecified,
                v6("ff02::2"),
                msg_type::ROUTER_SOLICIT,
                [0; 4],
                &slla,
            ),
        ),
        ("ra-global-source", false, router_advertisement(global)),
        (
            "ra-truncated",
            false,
            nd(
                router,
                all_nodes,
                msg_type::ROUTER_ADVERT,
                [64, 0, 7, 8],
                &[0; 4],
            ),
        ),
        (
            "na-solicited-to-multicast",
            false,
            neighbor_advertisement(host, all_nodes, host, true),
        ),
        (
            "na-target-multicast",
            false,
            neighbor_advertisement(host, router, all_nodes, true),
        ),
        (
            "redirect-global-source",
            false,
            redirect(global, on_link, other, far),
        ),
        (
            "redirect-destination-multicast",
            false,
            redirect(router, on_link, other, all_nodes),
        ),
        (
            "redirect-target-global",
            false,
            redirect(router, on_link, global, far),
        ),
        (
            "mld-code-1",
            false,
            icmpv6_link((host, group), 1, (131, 1), [0; 4], &mld_address),
        ),
        (
            "mld-truncated",
            false,
            mld(host, group, 131, [0; 4], &[0; 8]),
        ),
        (
            "mld-query-26-bytes",
            false,
            mld(router, all_nodes, 130, [0; 4], &[0; 18]),
        ),
        (
            "mld-global-source",
            false,
            mld(global, group, 131, [0; 4], &mld_address),
        ),
        (
            "mld-routed",
            false,
            icmpv6_link((host, group), 2, (131, 0), [0; 4], &mld_address),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_pipeline::wire::{parse, Parsed};

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
