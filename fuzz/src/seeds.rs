//! Seed corpora, generated from the same sources the tests use: the demo
//! capture and the mixed-traffic and screen-attack generators of
//! `rampart_testkit::traffic`, the configs of the repository, records from
//! the events encoder. Nothing here is committed as a binary blob.

use std::io;
use std::path::Path;

use rampart_events::types::{
    ipv4_mapped, CloseReason, Event as Ev, FilterAction, FilterLog, FilterName, InterfaceName,
    Names, PacketMeta, PolicyDeny, PolicyName, ScreenDrop, ScreenOption, SessionClose, SessionOpen,
    ZoneName, NO_ID16,
};
use rampart_events::{ControlEncoder, Encoder, EventType, TypeCounters, WorkerCountersSnapshot};
use rampart_testkit::traffic::{self, v4, v6};
use rampart_pipeline::wire::build::{packet_vec, Ethernet, Fragment, Ip, VlanTag, L4};
use rampart_pipeline::wire::{IpVersion, TcpFlags};

use crate::pipeline::{Step, DEMO_TOML, FULL_TOML};

pub const TARGETS: [&str; 6] = [
    "wire_parse",
    "pipeline",
    "pcap_trace",
    "config_load",
    "event_decode",
    "control_request",
];

/// Writes the seeds of `target` into `dir` (created if needed) as
/// `seed-NNNN` files; returns how many.
pub fn write(target: &str, dir: &Path) -> io::Result<usize> {
    let seeds = for_target(target)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "unknown target"))?;
    std::fs::create_dir_all(dir)?;
    for (i, s) in seeds.iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{i:04}")), s)?;
    }
    Ok(seeds.len())
}

pub fn for_target(target: &str) -> Option<Vec<Vec<u8>>> {
    Some(match target {
        "wire_parse" => frames(),
        "pipeline" => pipeline(),
        "pcap_trace" => captures(),
        "config_load" => configs(),
        "event_decode" => records(),
        "control_request" => requests(),
        "sync_message" => sync_messages(),
        _ => return None,
    })
}

/// Single frames: the demo capture, mixed traffic, every screen attack and
/// a few hand-built corner cases (QinQ, options, IPv6 fragments and chains).
pub fn frames() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = traffic::demo(0).into_iter().map(|f| f.bytes).collect();
    v.extend(traffic::mixed(7, 48, 0).into_iter().map(|f| f.bytes));
    v.extend(traffic::screen_attacks().into_iter().map(|(_, f)| f));
    let tags = [VlanTag::qinq(100), VlanTag::dot1q(200)];
    let opts = [0x83, 0x07, 0x04, 10, 0, 0, 9, 0x01];
    let tagged = Ethernet {
        vlans: &tags,
        ..Ethernet::DEFAULT
    };
    let with_opts = Ip {
        options: &opts,
        ..Ip::new(v4(10, 0, 0, 1), v4(10, 1, 0, 10))
    };
    let frag6 = Ip {
        fragment: Some(Fragment {
            offset: 0,
            more: true,
            id: 77,
        }),
        ..Ip::new(v6("2001:db8::1"), v6("2001:db8:1::10"))
    };
    let frag6_tail = Ip {
        fragment: Some(Fragment {
            offset: 1232,
            more: false,
            id: 77,
        }),
        ..frag6
    };
    for f in [
        packet_vec(
            &tagged,
            &with_opts,
            &L4::echo_request(IpVersion::V4, 9, 1),
            b"ping",
        ),
        packet_vec(
            &tagged,
            &Ip::new(v6("2001:db8::1"), v6("2001:db8:1::10")),
            &L4::tcp(40000, 80, TcpFlags::SYN),
            &[],
        ),
        packet_vec(&Ethernet::DEFAULT, &frag6, &L4::udp(5353, 53), &[0u8; 64]),
        packet_vec(
            &Ethernet::DEFAULT,
            &frag6_tail,
            &L4::Raw { protocol: 17 },
            &[1u8; 16],
        ),
    ] {
        v.push(f.expect("seed frames fit"));
    }
    v.push(ipv6_ext_chain());
    v.sort();
    v.dedup();
    v
}

/// IPv6 with hop-by-hop, routing and destination-options headers, then UDP.
fn ipv6_ext_chain() -> Vec<u8> {
    let mut f = packet_vec(
        &Ethernet::DEFAULT,
        &Ip::new(v6("2001:db8::1"), v6("2001:db8:1::10")),
        &L4::Raw { protocol: 0 },
        &[],
    )
    .expect("fits");
    f.extend_from_slice(&[43, 0, 1, 4, 0, 0, 0, 0]); // hop-by-hop -> routing
    f.extend_from_slice(&[60, 0, 4, 0, 0, 0, 0, 0]); // routing -> dst opts
    f.extend_from_slice(&[17, 0, 1, 4, 0, 0, 0, 0]); // dst opts -> UDP
    f.extend_from_slice(&[0x13, 0x88, 0, 53, 0, 12, 0, 0, b'd', b'n', b's', 0]);
    let payload = (f.len() - 54) as u16;
    f[18..20].copy_from_slice(&payload.to_be_bytes());
    f
}

/// Packet sequences for the pipeline target: the demo capture in chunks
/// (both rulesets), mixed client traffic with replies, the screen attacks.
pub fn pipeline() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let demo = traffic::demo(0);
    for (k, chunk) in demo.chunks(24).enumerate() {
        for ruleset in 0..2u8 {
            let mut s = vec![ruleset];
            for f in chunk {
                Step::encode(0, 10, &f.bytes, &mut s);
            }
            // Age what the chunk opened, then a last packet.
            if let Some(f) = chunk.first() {
                let mut ctl = Vec::new();
                Step::encode(0, 0, &f.bytes, &mut ctl);
                ctl[0] |= 8 | (4 << 5); // expire, dt in seconds
                ctl[1] = 30;
                s.extend_from_slice(&ctl);
            }
            if k % 3 == 0 || ruleset == 1 {
                out.push(s);
            }
        }
    }
    // Client traffic and the server's answers through the other interface.
    let mixed = traffic::mixed(11, 64, 0);
    for ruleset in 0..2u8 {
        let mut s = vec![ruleset];
        for f in &mixed {
            Step::encode(0, 1, &f.bytes, &mut s);
            if let Some(r) = reply(&f.bytes) {
                Step::encode(1, 1, &r, &mut s);
            }
        }
        out.push(s);
    }
    let mut s = vec![1u8];
    for (_, f) in traffic::screen_attacks() {
        Step::encode(0, 5, &f, &mut s);
    }
    out.push(s);
    out
}

/// Capture files: the demo capture in pieces, microsecond and nanosecond,
/// little- and big-endian headers, timestamps that go back.
pub fn captures() -> Vec<Vec<u8>> {
    use rampart_pipeline::pcap::Writer;
    let demo = traffic::demo(1_700_000_000_000_000_000);
    let mut out = Vec::new();
    for chunk in demo.chunks(32) {
        let mut w = Writer::new(Vec::new()).expect("in memory");
        for f in chunk {
            w.write(f.ts_ns, &f.bytes).expect("in memory");
        }
        out.push(w.finish().expect("in memory"));
    }
    // Back in time, and a microsecond big-endian file of one frame.
    let mut w = Writer::new(Vec::new()).expect("in memory");
    for (i, f) in demo.iter().take(8).enumerate() {
        w.write(f.ts_ns - (i as u64 % 3) * 5_000_000_000, &f.bytes)
            .expect("in memory");
    }
    out.push(w.finish().expect("in memory"));
    if let Some(f) = demo.first() {
        let mut be = vec![0xa1, 0xb2, 0xc3, 0xd4, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0];
        be.extend_from_slice(&65535u32.to_be_bytes());
        be.extend_from_slice(&1u32.to_be_bytes());
        be.extend_from_slice(&1_700_000_000u32.to_be_bytes());
        be.extend_from_slice(&5u32.to_be_bytes());
        be.extend_from_slice(&(f.bytes.len() as u32).to_be_bytes());
        be.extend_from_slice(&(f.bytes.len() as u32).to_be_bytes());
        be.extend_from_slice(&f.bytes);
        out.push(be);
    }
    out
}

/// The same frame with addresses, ports and MACs swapped (a reply), for
/// plain IPv4/IPv6 TCP and UDP.
fn reply(frame: &[u8]) -> Option<Vec<u8>> {
    use rampart_pipeline::wire::{parse, Parsed};
    let Ok(Parsed::Ip(p)) = parse(frame) else {
        return None;
    };
    let l4 = match p.protocol {
        6 => L4::tcp(p.dst_port, p.src_port, TcpFlags::SYN | TcpFlags::ACK),
        17 => L4::udp(p.dst_port, p.src_port),
        _ => return None,
    };
    packet_vec(&Ethernet::DEFAULT, &Ip::new(p.dst, p.src), &l4, b"reply").ok()
}

/// The configs of the repository, and small ones for each section.
pub fn configs() -> Vec<Vec<u8>> {
    let mut v = vec![
        DEMO_TOML.to_owned(),
        FULL_TOML.to_owned(),
        include_str!("../../pipeline/tests/config/interfaces-example.toml").to_owned(),
        String::new(),
        "[dataplane]\nworkers = 2\n[flow]\nsession-capacity = 100\nmalformed = \"forward\"\n"
            .to_owned(),
        "[[interface]]\nname = \"a\"\ndevice = \"net_null0\"\nzone = \"z\"\n[zone.z]\n".to_owned(),
        "[telemetry]\nprometheus = \"127.0.0.1:9100\"\n".to_owned(),
        "[address-book]\na = [\"10.0.0.0/8\"]\nb = { address-set = [\"a\", \"c\"] }\nc = { address-set = [\"b\"] }\n".to_owned(),
    ];
    v.sort();
    v.dedup();
    v.into_iter().map(String::into_bytes).collect()
}

fn names() -> Names {
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
        policies: vec![PolicyName {
            name: "allow-web".into(),
            from_zone: 0,
            to_zone: 1,
        }],
        filters: vec![FilterName {
            name: "protect".into(),
            terms: vec!["no-telnet".into(), "rest".into()],
        }],
        screens: vec!["edge".into()],
        applications: vec![],
    }
}

fn meta(ipv6: bool, protocol: u8) -> PacketMeta {
    let (src, dst) = if ipv6 {
        (
            "2001:db8::1"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets(),
            "2001:db8:1::5"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets(),
        )
    } else {
        (ipv4_mapped([10, 0, 0, 1]), ipv4_mapped([10, 1, 0, 5]))
    };
    PacketMeta {
        ts_ns: 1_714_564_800_123_456_789,
        worker: 1,
        generation: 3,
        src,
        dst,
        ipv6,
        src_port: 1234,
        dst_port: 80,
        protocol,
        icmp_type: 8,
        icmp_code: 0,
        ingress: 0,
        egress: 1,
        from_zone: 0,
        to_zone: 1,
    }
}

/// One record of every kind, each alone, and a stream as a consumer
/// receives it (hello, names, events, stats, loss, config reject).
pub fn records() -> Vec<Vec<u8>> {
    let snippet = traffic::demo(0)
        .into_iter()
        .next()
        .map(|f| f.bytes)
        .unwrap_or_default();
    let events = [
        (
            meta(false, 6),
            Ev::PolicyDeny(PolicyDeny {
                policy: 0,
                reject: true,
                audit: false,
                session_id: 1 << 48 | 7,
                application: NO_ID16,
            }),
        ),
        (
            meta(true, 58),
            Ev::ScreenDrop(ScreenDrop {
                screen: 0,
                option: ScreenOption::SynFin,
                alarm_only: false,
            }),
        ),
        (
            meta(false, 17),
            Ev::FilterLog(FilterLog {
                filter: 0,
                term: 1,
                action: FilterAction::Discard,
                direction: rampart_events::FilterDirection::Input,
            }),
        ),
        (
            meta(false, 1),
            Ev::SessionOpen(SessionOpen {
                session_id: 42,
                policy: 0,
                application: NO_ID16,
                origin: 0,
            }),
        ),
        (
            meta(true, 6),
            Ev::SessionClose(SessionClose {
                session_id: 42,
                policy: 0,
                reason: CloseReason::TcpFin,
                packets_client: 3,
                bytes_client: 300,
                packets_server: 2,
                bytes_server: 2000,
                elapsed_ns: 1_500_000_000,
                session_generation: 0,
                application: NO_ID16,
                origin: 0,
            }),
        ),
    ];
    let mut enc = Encoder::new();
    let mut ctl = ControlEncoder::new();
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut stream = Vec::new();
    let hello = ctl
        .hello(3, 1_714_564_800_000_000_000, "rampart fuzz")
        .to_vec();
    let table = ctl.names(3, &names()).to_vec();
    stream.extend_from_slice(&hello);
    stream.extend_from_slice(&table);
    out.push(hello);
    out.push(table);
    for (i, (m, e)) in events.iter().enumerate() {
        let rec = enc.encode_bytes(i as u64, m, e, &snippet).to_vec();
        stream.extend_from_slice(&rec);
        // The unprefixed form too.
        out.push(rec[4..].to_vec());
        out.push(rec);
    }
    let totals = [TypeCounters {
        generated: 10,
        rate_limited: 1,
        ring_overflow: 2,
        drained: 7,
        aggregating: 0,
        aggregate_full: 0,
    }; EventType::COUNT];
    let workers = [WorkerCountersSnapshot {
        worker: 1,
        counters: totals,
    }];
    let per_type = [5u64; EventType::COUNT];
    for rec in [
        ctl.stats(1, 3, &totals, &workers, 1, &per_type, &per_type)
            .to_vec(),
        ctl.loss(2, 1, &per_type).to_vec(),
        ctl.config_reject(
            3,
            3,
            "/etc/rampart/rampart.toml",
            &["rampart.toml:3:1: policy[x].then: unknown action".to_owned()],
        )
        .to_vec(),
    ] {
        stream.extend_from_slice(&rec);
        out.push(rec);
    }
    out.push(stream);
    out
}

pub fn requests() -> Vec<Vec<u8>> {
    [
        &b"stats\n"[..],
        b"reload\n",
        b"rules\n",
        b"stats",
        b" rules \r\n",
        b"\n",
        b"STATS\n",
        b"stats\xff\n",
    ]
    .iter()
    .map(|s| s.to_vec())
    .collect()
}

/// One message of every kind on the HA sync link, sessions from the demo
/// capture's flows.
pub fn sync_messages() -> Vec<Vec<u8>> {
    use rampart_cluster::wire::{Closed, Header, Heartbeat, Kind};
    use rampart_pipeline::session::{SessionMeta, TcpState};
    use rampart_pipeline::session_sync::SyncRecord;
    use rampart_pipeline::tcp_window::Windows;
    let header = |kind: Kind, records: u16| Header {
        kind,
        node: 1,
        epoch: 0x5eed,
        seq: 10,
        a: 9,
        b: 12,
        records,
    };
    let record = |i: u64| SyncRecord {
        id: i,
        key: rampart_pipeline::flow::FlowKey {
            src: rampart_pipeline::flow::Addr::from_ipv4([198, 51, 100, i as u8]),
            dst: rampart_pipeline::flow::Addr::from_ipv4([192, 0, 2, 80]),
            src_port: 40000,
            dst_port: 80,
            protocol: 6,
        },
        tcp: TcpState::Established,
        fin: [false; 2],
        last_fin: 0,
        closed: None,
        meta: SessionMeta::default(),
        age_ns: 1,
        idle_ns: 0,
        packets: [1, 1],
        bytes: [60, 60],
        windows: Windows::DEFAULT,
        origin: 0,
    };
    let mut out = Vec::new();
    let mut d = Vec::new();
    header(Kind::Heartbeat, 0).encode(&mut d);
    Heartbeat { active: true, leaving: false, priority: 100, generation: 1, sessions: 3 }.encode(&mut d);
    out.push(d);
    let mut d = Vec::new();
    header(Kind::Update, 3).encode(&mut d);
    (0..3).for_each(|i| record(i).encode(&mut d));
    out.push(d);
    let mut d = Vec::new();
    header(Kind::Close, 2).encode(&mut d);
    (0..2).for_each(|i| Closed { id: i, key: record(i).key }.encode(&mut d));
    out.push(d);
    for k in [Kind::Ack, Kind::Nack, Kind::BulkRequest, Kind::BulkStart, Kind::BulkEnd] {
        let mut d = Vec::new();
        header(k, 0).encode(&mut d);
        out.push(d);
    }
    out
}
