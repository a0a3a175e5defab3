//! Shared fixtures for the integration tests.
#![allow(dead_code)]

use rampart_events::*;

pub fn names() -> Names {
    Names {
        zones: vec![
            ZoneName {
                name: "untrust".into(),
                screen: 0,
            },
            ZoneName {
                name: "trust".into(),
                screen: NO_ID16,
            },
        ],
        interfaces: vec![
            InterfaceName {
                name: "ge-0/0/0".into(),
                zone: 0,
            },
            InterfaceName {
                name: "ge-0/0/1".into(),
                zone: 1,
            },
        ],
        policies: vec![
            PolicyName {
                name: "allow-web".into(),
                from_zone: 0,
                to_zone: 1,
            },
            PolicyName {
                name: "deny-all".into(),
                from_zone: 0,
                to_zone: 1,
            },
        ],
        filters: vec![FilterName {
            name: "protect".into(),
            terms: vec!["no-telnet".into(), "log-rest".into()],
        }],
        screens: vec!["edge".into()],
        applications: vec![],
    }
}

/// 2024-05-01T12:00:00.123456789Z
pub const TS: u64 = 1_714_564_800_123_456_789;

pub fn meta_v4(proto: u8, sport: u16, dport: u16) -> PacketMeta {
    PacketMeta {
        ts_ns: TS,
        worker: 1,
        generation: 3,
        src: ipv4_mapped([10, 0, 0, 1]),
        dst: ipv4_mapped([10, 1, 0, 5]),
        ipv6: false,
        src_port: sport,
        dst_port: dport,
        protocol: proto,
        icmp_type: 0,
        icmp_code: 0,
        ingress: 0,
        egress: 1,
        from_zone: 0,
        to_zone: 1,
    }
}

pub fn meta_v6() -> PacketMeta {
    let mut m = meta_v4(6, 40000, 443);
    m.ipv6 = true;
    m.src = "2001:db8::1"
        .parse::<std::net::Ipv6Addr>()
        .unwrap()
        .octets();
    m.dst = "2001:db8:1::5"
        .parse::<std::net::Ipv6Addr>()
        .unwrap()
        .octets();
    m
}

/// Ethernet + IPv4 + TCP SYN 10.0.0.1:1234 -> 10.1.0.5:80.
pub fn syn_frame() -> Vec<u8> {
    let mut f = vec![
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0x08, 0x00,
    ];
    f.extend_from_slice(&[
        0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 1, 0, 5,
    ]);
    f.extend_from_slice(&[
        4, 0xd2, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0x72, 0x10, 0, 0, 0, 0,
    ]);
    f
}

pub fn all_events() -> Vec<(PacketMeta, Event, Vec<u8>)> {
    vec![
        (
            meta_v4(6, 1234, 80),
            Event::PolicyDeny(PolicyDeny {
                policy: 1,
                reject: false,
                audit: false,
                session_id: 7087,
                application: NO_ID16,
            }),
            syn_frame(),
        ),
        (
            meta_v4(6, 1234, 80),
            Event::ScreenDrop(ScreenDrop {
                screen: 0,
                option: ScreenOption::SynFin,
                alarm_only: false,
            }),
            syn_frame(),
        ),
        (
            meta_v4(6, 1234, 23),
            Event::FilterLog(FilterLog {
                filter: 0,
                term: 0,
                action: FilterAction::Discard,
                direction: FilterDirection::Input,
            }),
            syn_frame(),
        ),
        (
            meta_v6(),
            Event::SessionOpen(SessionOpen {
                session_id: 42,
                policy: 0,
                application: NO_ID16,
                origin: 0x0123_4567_89ab_cdef,
            }),
            vec![],
        ),
        (
            meta_v4(6, 1234, 80),
            Event::SessionClose(SessionClose {
                session_id: 42,
                policy: 0,
                reason: CloseReason::TcpFin,
                packets_client: 5,
                bytes_client: 420,
                packets_server: 4,
                bytes_server: 3000,
                elapsed_ns: 12_500_000_000,
                session_generation: 0,
                application: NO_ID16,
                origin: 0x0123_4567_89ab_cdef,
            }),
            vec![],
        ),
        (
            meta_v4(6, 40000, 80),
            Event::ScreenEpisode(ScreenEpisode {
                screen: 0,
                option: ScreenOption::SynFlood,
                phase: EpisodePhase::Update,
                alarm_only: false,
                started_ns: 1_714_564_790_000_000_000,
                last_drop_ns: 1_714_564_799_500_000_000,
                packets: 123_456,
                peak_pps: 20_000,
                top_sources: {
                    let mut top = [SourceCount::default(); MAX_TOP_SOURCES];
                    top[0] = SourceCount {
                        addr: ipv4_mapped([198, 51, 100, 1]),
                        packets: 100_000,
                    };
                    top[1] = SourceCount {
                        addr: ipv4_mapped([198, 51, 100, 2]),
                        packets: 20_000,
                    };
                    top
                },
                top_len: 2,
            }),
            vec![],
        ),
    ]
}

/// A name cache that knows generation 3.
pub fn cache() -> NameCache {
    let mut c = NameCache::new();
    c.insert(3, names());
    c
}
