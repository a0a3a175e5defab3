//! Property tests over the public API, the normal-suite counterparts of the
//! fuzz targets in `fuzz/` (`wire_parse`, `pipeline`, `config_load`):
//! built packets round-trip through the parser; the whole engine never
//! panics and keeps its books on arbitrary and mutated frames; mutated
//! valid configs load or are refused with located errors.

use std::sync::Arc;

use proptest::prelude::*;
use rampart_pipeline::config::Config;
use rampart_pipeline::engine::{build_answer_to, Decision, Ruleset, Verdict, Worker};
use rampart_pipeline::flow::Addr;
use rampart_pipeline::frag::{DatagramKey, FragHold, GaveUp};
use rampart_pipeline::screen::ScreenState;
use rampart_pipeline::session::CloseReason;
use rampart_pipeline::wire::build::{packet_vec, Ethernet, Fragment, Ip, VlanTag, L4};
use rampart_pipeline::wire::{self, IpVersion, Parsed, ParsedPacket, TcpFlags};
use rampart_testkit::traffic;

const FULL: &str = include_str!("config/full.toml");
const DEMO: &str = include_str!("../../src/demo.toml");

// ------------------------------------------------------------ wire

fn addr(v6: bool, bits: u128) -> Addr {
    if v6 {
        // Not IPv4-mapped: the top bits are set.
        Addr((0x2001_0db8u128 << 96) | (bits & ((1u128 << 96) - 1)))
    } else {
        Addr::from_ipv4((bits as u32).to_be_bytes())
    }
}

fn parsed(frame: &[u8]) -> ParsedPacket {
    match wire::parse_verified(frame) {
        Ok(Parsed::Ip(p)) => p,
        other => panic!("built frame does not parse: {other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    /// What the builder writes, the parser reads back, field by field.
    #[test]
    fn built_packets_round_trip(
        v6 in any::<bool>(),
        src in any::<u128>(),
        dst in any::<u128>(),
        l4_kind in 0u8..4,
        sport in any::<u16>(),
        dport in any::<u16>(),
        flags in any::<u16>(),
        ttl in any::<u8>(),
        dscp in 0u8..64,
        tags in 0usize..3,
        vids in any::<(u16, u16)>(),
        frag in proptest::option::of((0u16..8000, any::<bool>(), any::<u32>())),
        payload in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let (src, dst) = (addr(v6, src), addr(v6, dst));
        let version = if v6 { IpVersion::V6 } else { IpVersion::V4 };
        let flags = TcpFlags(flags & 0x1ff);
        let l4 = match l4_kind {
            0 => L4::tcp(sport, dport, flags),
            1 => L4::udp(sport, dport),
            2 => L4::echo_request(version, sport, dport),
            _ => L4::Raw { protocol: 47 },
        };
        let all_tags = [VlanTag::qinq(vids.0), VlanTag::dot1q(vids.1)];
        let eth = Ethernet { vlans: &all_tags[..tags], ..Ethernet::DEFAULT };
        let fragment = frag.map(|(off, more, id)| Fragment {
            offset: off & !7,
            more,
            id: if v6 { id } else { id & 0xffff },
        });
        let ip = Ip { ttl, dscp, fragment, ..Ip::new(src, dst) };
        let Ok(f) = packet_vec(&eth, &ip, &l4, &payload) else {
            return Ok(());
        };
        let p = parsed(&f);
        prop_assert_eq!((p.version, p.src, p.dst, p.ttl, p.dscp), (version, src, dst, ttl, dscp));
        prop_assert_eq!(p.protocol, l4.protocol(version));
        prop_assert_eq!(usize::from(p.l2.vlan_count), tags);
        for (i, t) in all_tags[..tags].iter().enumerate() {
            prop_assert_eq!(p.l2.vlan_ids[i], t.tci & 0xfff);
        }
        prop_assert_eq!(p.ip_end(), f.len());
        let frag = fragment.filter(|g| g.offset != 0 || g.more);
        prop_assert_eq!(p.frag.is_fragment, frag.is_some());
        if let Some(g) = frag {
            prop_assert_eq!((p.frag.offset, p.frag.more_fragments, p.frag.id), (g.offset, g.more, g.id));
        }
        let first = frag.is_none_or(|g| g.offset == 0);
        prop_assert_eq!(p.has_l4, first && l4_kind < 3);
        if p.has_l4 {
            match l4_kind {
                0 => prop_assert_eq!((p.src_port, p.dst_port, p.tcp_flags), (sport, dport, flags)),
                1 => prop_assert_eq!((p.src_port, p.dst_port), (sport, dport)),
                _ => prop_assert_eq!((p.src_port, p.dst_port), (sport, sport)),
            }
        }
        // Answers to it parse too, and go back where it came from.
        let mut out = [0u8; 1600];
        for tcp in [true, false] {
            let r = if tcp {
                wire::build::tcp_reset(&f, &p, &mut out)
            } else {
                wire::build::icmp_unreachable(&f, &p, &mut out)
            };
            if let Ok(n) = r {
                let a = parsed(&out[..n]);
                prop_assert_eq!((a.src, a.dst), (dst, src));
            }
        }
    }
}

// ------------------------------------------------------------ engine

fn stress_rules() -> Ruleset {
    let text = format!(
        "{FULL}\n[flow]\ntcp-syn-check = false\nmalformed = \"forward\"\nsession-capacity = 8\n\
         timeouts = {{ tcp-initial = 1, tcp-established = 2, udp = 1, icmp = 1, other = 1 }}\n"
    );
    Ruleset::compile(
        Arc::new(Config::from_str_named(&text, "full.toml").unwrap()),
        1,
    )
}

fn demo_rules() -> Ruleset {
    let text = DEMO.replace("@DIR@", "/tmp");
    let mut c = Config::from_str_named(&text, "demo.toml").unwrap();
    c.flow.session_capacity = 64;
    Ruleset::compile(Arc::new(c), 1)
}

/// Frames to mutate: the demo capture, every screen attack, mixed traffic,
/// neighbour discovery and MLD (valid and not).
fn seed_frames() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = traffic::demo(0).into_iter().map(|f| f.bytes).collect();
    v.extend(traffic::screen_attacks().into_iter().map(|(_, f)| f));
    v.extend(traffic::mixed(3, 16, 0).into_iter().map(|f| f.bytes));
    v.extend(traffic::link_control().into_iter().map(|(_, _, f)| f));
    v
}

/// Runs `packets` (ingress, seconds since start, frame) through one worker
/// and checks the engine's books after each.
fn run_engine(rules: &Ruleset, packets: &[(u8, u32, Vec<u8>)]) -> Result<(), TestCaseError> {
    let c = &rules.config;
    let screens = ScreenState::new(64);
    let mut w = Worker::new(0, rules);
    let cap = c.flow.session_capacity as usize;
    let mut out = [0u8; 1600];
    let mut now = 0u64;
    // One decision for every packet, as the worker loop does.
    let mut d = Decision::BLANK;
    let mut held: FragHold<Vec<u8>> = FragHold::new(4);
    for (ingress, dt, frame) in packets {
        now += u64::from(*dt) * 100_000_000;
        w.expire(rules, &screens, now, 64, &mut |_| {});
        while held.take_expired(now).is_some() {
            w.give_up_held(GaveUp::Timeout);
        }
        let ingress = usize::from(*ingress) % c.interfaces.len();
        w.process_into(rules, &screens, frame, ingress as u16, now, &mut d);
        if let (Verdict::Hold, Some(p)) = (d.verdict, d.packet) {
            if held.hold(frame.clone(), ingress as u16, &p, now).is_some() {
                w.give_up_held(GaveUp::HoldFull);
            }
        }
        if let Some(first) = d.packet.filter(|p| p.frag.is_first_fragment) {
            let mut resumed = Decision::BLANK;
            while let Some((f, port)) = held.take_released(DatagramKey::of(&first)) {
                w.resume_held(rules, &screens, &f, port, now, &mut resumed);
                prop_assert!(resumed.verdict != Verdict::Hold);
            }
        }
        prop_assert_eq!(usize::from(d.ingress), ingress);
        match wire::parse(frame) {
            Ok(Parsed::Ip(p)) => prop_assert_eq!(d.packet, Some(p)),
            _ => prop_assert_eq!(d.packet, None),
        }
        let _ = rules.policy_name(d.rule);
        prop_assert!(usize::from(d.from_zone) < c.zones.len());
        if let Verdict::Forward { egress } = d.verdict {
            prop_assert!(usize::from(egress) < c.interfaces.len());
        }
        if d.verdict == Verdict::Reject {
            if let Some(n) = build_answer_to(rules, &d, frame, &mut out) {
                prop_assert!(matches!(wire::parse(&out[..n]), Ok(Parsed::Ip(_))));
            }
        }
        let k = &w.counters;
        prop_assert_eq!(
            k.packets,
            k.forwarded + k.dropped.iter().sum::<u64>() + held.len() as u64
        );
        prop_assert!(w.sessions.len() <= cap);
    }
    w.close_all(rules, &screens, CloseReason::Shutdown, now, &mut |_| {});
    prop_assert_eq!(w.sessions.len(), 0);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn engine_never_panics_on_arbitrary_frames(
        packets in proptest::collection::vec(
            (any::<u8>(), 0u32..50, proptest::collection::vec(any::<u8>(), 0..120)), 1..24),
        demo in any::<bool>(),
    ) {
        let rules = if demo { demo_rules() } else { stress_rules() };
        run_engine(&rules, &packets)?;
    }

    #[test]
    fn engine_never_panics_on_mutated_frames(
        picks in proptest::collection::vec(
            (any::<u8>(), 0u32..50, any::<proptest::sample::Index>(),
             proptest::collection::vec((any::<u16>(), any::<u8>()), 0..6), any::<u16>()),
            1..32),
        demo in any::<bool>(),
    ) {
        let seeds = seed_frames();
        let packets: Vec<(u8, u32, Vec<u8>)> = picks
            .into_iter()
            .map(|(ingress, dt, i, edits, cut)| {
                let mut f = seeds[i.index(seeds.len())].clone();
                for (at, b) in edits {
                    let at = usize::from(at) % f.len();
                    f[at] = b;
                }
                // One in four is cut short somewhere.
                if cut % 4 == 0 {
                    f.truncate(usize::from(cut / 4) % (f.len() + 1));
                }
                (ingress, dt, f)
            })
            .collect();
        let rules = if demo { demo_rules() } else { stress_rules() };
        run_engine(&rules, &packets)?;
    }
}

/// Found by the wire_parse fuzz target: an IPv6 packet whose addresses
/// are IPv4-mapped (`::ffff:a.b.c.d`) read as the IPv4 addresses, so it
/// rode an IPv4 session (and matched IPv4 rules). It is malformed now.
#[test]
fn ipv6_with_ipv4_mapped_addresses_rides_no_ipv4_session() {
    use rampart_pipeline::engine::Reason;
    use rampart_pipeline::wire::Malformed;
    let rules = demo_rules();
    let screens = ScreenState::new(64);
    let mut w = Worker::new(0, &rules);
    let (client, server) = (traffic::v4(192, 0, 2, 5), traffic::v4(10, 1, 0, 10));
    let syn = traffic::tcp(client, server, 40000, 80, TcpFlags::SYN, &[]);
    let d = w.process(&rules, &screens, &syn, 0, 1);
    assert_eq!(d.verdict, Verdict::Forward { egress: 1 }, "{d:?}");
    let mut v6 = traffic::tcp(
        traffic::v6("2001:db8::1"),
        traffic::v6("2001:db8::2"),
        40000,
        80,
        TcpFlags::ACK,
        b"GET /",
    );
    v6[22..38].copy_from_slice(&client.ipv6_octets());
    v6[38..54].copy_from_slice(&server.ipv6_octets());
    let d = w.process(&rules, &screens, &v6, 0, 2);
    assert_eq!(d.verdict, Verdict::Drop, "{d:?}");
    assert_eq!(d.reason, Reason::Malformed(Malformed::Ipv6MappedAddress));
    assert_eq!(
        w.counters.malformed[Malformed::Ipv6MappedAddress.index()],
        1
    );
}

// ------------------------------------------------------------ config

fn check_load(text: &str) -> Result<(), TestCaseError> {
    match Config::from_str_named(text, "m.toml") {
        Ok(c) => {
            let _ = Ruleset::compile(Arc::new(c), 1);
        }
        Err(errors) => {
            prop_assert!(!errors.is_empty());
            for e in &errors {
                prop_assert!(e.line >= 1 && e.column >= 1, "{}", e);
                prop_assert!(!e.message.is_empty(), "{}", e);
            }
            let shown = errors.to_string();
            prop_assert_eq!(
                shown.lines().count(),
                errors.len(),
                "one line per error: {}",
                shown
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Line-level edits of the repository's configs: a line dropped,
    /// repeated, or moved elsewhere (sections change owner, keys repeat).
    #[test]
    fn line_edited_configs_load_or_say_where(
        demo in any::<bool>(),
        edits in proptest::collection::vec((0u8..3, any::<proptest::sample::Index>(), any::<proptest::sample::Index>()), 1..5),
    ) {
        let base = if demo { DEMO.replace("@DIR@", "/tmp") } else { FULL.to_owned() };
        let mut lines: Vec<&str> = base.lines().collect();
        for (op, a, b) in edits {
            let (i, j) = (a.index(lines.len()), b.index(lines.len()));
            match op {
                0 => { lines.remove(i); }
                1 => { let l = lines[i]; lines.insert(j, l); }
                _ => lines.swap(i, j),
            }
            if lines.is_empty() {
                break;
            }
        }
        check_load(&lines.join("\n"))?;
    }
}
