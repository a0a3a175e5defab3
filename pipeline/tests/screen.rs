//! The screen on built frames: every stateless attack by its Junos name,
//! benign traffic, floods, scans, sweeps, session limits and alarm-only
//! (from `screen.rs`'s unit tests; they build their frames with
//! `rampart_testkit::traffic`).

use rampart_pipeline::flow::{proto, Addr};
use rampart_pipeline::screen::*;
use rampart_pipeline::wire::build::{packet_vec, Ethernet, Fragment, Ip, L4};
use rampart_pipeline::wire::{parse, Parsed, ParsedPacket, TcpFlags};
use rampart_testkit::traffic::{self, ping, tcp, udp, v4};

fn parsed(frame: &[u8]) -> ParsedPacket {
    match parse(frame) {
        Ok(Parsed::Ip(p)) => p,
        other => panic!("not an IP packet: {other:?}"),
    }
}

fn all_stateless() -> ScreenProfile {
    all_stateless_but(None)
}

/// Every stateless option but `except`.
fn all_stateless_but(except: Option<ScreenOption>) -> ScreenProfile {
    let mut p = ScreenProfile::new(0, "edge");
    for o in ScreenOption::ALL {
        if (o as u8) < ScreenOption::SynFlood as u8 && Some(o) != except {
            p.enable(o);
        }
    }
    p
}

fn verdict(p: &ScreenProfile, frame: &[u8]) -> Option<&'static str> {
    check(p, &ScreenState::new(1024), &parsed(frame), false, 0).map(|h| h.option.name())
}

fn frag_frame(protocol_l4: L4<'_>, offset: u16, more: bool, payload: &[u8]) -> Vec<u8> {
    let mut ip = Ip::new(v4(198, 51, 100, 1), v4(10, 1, 0, 10));
    ip.fragment = Some(Fragment {
        offset,
        more,
        id: 77,
    });
    packet_vec(&Ethernet::DEFAULT, &ip, &protocol_l4, payload).unwrap()
}

const A: fn() -> Addr = || v4(198, 51, 100, 1);
const B: fn() -> Addr = || v4(10, 1, 0, 10);

#[test]
fn every_stateless_attack_is_named_as_in_junos() {
    // The umbrella source-route-option off, so loose/strict show.
    let p = all_stateless_but(Some(ScreenOption::SourceRouteOption));
    for (want, frame) in traffic::screen_attacks() {
        assert_eq!(verdict(&p, &frame), Some(want), "{want}");
    }
    let umbrella = all_stateless();
    for (name, frame) in traffic::screen_attacks() {
        if name.ends_with("source-route-option") {
            assert_eq!(verdict(&umbrella, &frame), Some("source-route-option"));
        }
    }
}

#[test]
fn benign_traffic_passes_every_check() {
    let p = all_stateless();
    for frame in [
        tcp(A(), B(), 40000, 80, TcpFlags::SYN, &[]),
        tcp(
            A(),
            B(),
            40000,
            80,
            TcpFlags::ACK | TcpFlags::PSH,
            &[1; 100],
        ),
        tcp(A(), B(), 40000, 80, TcpFlags::FIN | TcpFlags::ACK, &[]),
        tcp(A(), B(), 40000, 139, TcpFlags::ACK, &[1; 10]),
        udp(A(), B(), 5353, 53, &[0; 40]),
        ping(A(), B(), 7, 1),
    ] {
        assert_eq!(verdict(&p, &frame), None);
    }
}

#[test]
fn flag_checks_never_apply_to_non_first_fragments() {
    // A non-first fragment whose data happens to look like a TCP header
    // with SYN+FIN must not be read as one.
    let mut fake = [0u8; 24];
    fake[13] = 0x03; // SYN|FIN at the TCP flags offset
    let mut p = ScreenProfile::new(0, "flags-only");
    p.enable(ScreenOption::SynFin)
        .enable(ScreenOption::TcpNoFlag)
        .enable(ScreenOption::FinNoAck);
    let frame = frag_frame(
        L4::Raw {
            protocol: proto::TCP,
        },
        1480,
        false,
        &fake,
    );
    assert_eq!(verdict(&p, &frame), None);
}

#[test]
fn syn_flood_trips_above_the_threshold_per_second() {
    let mut p = ScreenProfile::new(1, "flood");
    p.syn_flood = Some(SynFloodLimits {
        attack: 100,
        source: 0,
        destination: 0,
    });
    let s = ScreenState::new(4096);
    let mut hits = 0;
    for i in 0..150u32 {
        let f = tcp(
            v4(203, 0, 113, (i % 250) as u8),
            B(),
            1000 + i as u16,
            80,
            TcpFlags::SYN,
            &[],
        );
        if check(&p, &s, &parsed(&f), false, 5_000_000_000 + i as u64 * 1000).is_some() {
            hits += 1;
        }
    }
    assert_eq!(hits, 50, "SYNs 101..150 in the same second are flood");
    // The next second starts a fresh count.
    let f = tcp(A(), B(), 999, 80, TcpFlags::SYN, &[]);
    assert!(check(&p, &s, &parsed(&f), false, 6_000_000_000).is_none());
}

#[test]
fn port_scan_needs_ten_ports_within_the_window() {
    let mut p = ScreenProfile::new(2, "scan");
    p.port_scan_us = Some(5000);
    let s = ScreenState::new(4096);
    // Slow scan: 10 ports, 1 ms apart = 9 ms > 5 ms window: no trip.
    let slow: Vec<bool> = (0..10u16)
        .map(|i| {
            let f = tcp(A(), B(), 40000, 20 + i, TcpFlags::SYN, &[]);
            check(
                &p,
                &s,
                &parsed(&f),
                false,
                1_000_000_000 + i as u64 * 1_000_000,
            )
            .is_some()
        })
        .collect();
    assert!(slow.iter().all(|h| !h));
    // Fast scan: 10 ports within 900 us trips at the 10th.
    let fast: Vec<bool> = (0..12u16)
        .map(|i| {
            let f = tcp(A(), B(), 40000, 1000 + i, TcpFlags::SYN, &[]);
            check(
                &p,
                &s,
                &parsed(&f),
                false,
                9_000_000_000 + i as u64 * 100_000,
            )
            .is_some()
        })
        .collect();
    assert_eq!(fast.iter().position(|h| *h), Some(9));
}

#[test]
fn ip_sweep_counts_distinct_destinations_of_echo_requests() {
    let mut p = ScreenProfile::new(3, "sweep");
    p.ip_sweep_us = Some(5000);
    let s = ScreenState::new(4096);
    let trips: Vec<bool> = (0..11u8)
        .map(|i| {
            let f = ping(A(), v4(10, 9, 0, i + 1), 1, i as u16);
            check(&p, &s, &parsed(&f), false, 100 + i as u64 * 10_000).is_some()
        })
        .collect();
    assert_eq!(trips.iter().position(|h| *h), Some(9));
}

#[test]
fn session_limit_counts_open_sessions_per_source() {
    let mut p = ScreenProfile::new(4, "limit");
    p.limit_session_source = Some(2);
    let s = ScreenState::new(1024);
    assert!(session_limit_hit(&p, &s, A(), B()).is_none());
    session_opened(&p, &s, A(), B());
    session_opened(&p, &s, A(), B());
    assert_eq!(
        session_limit_hit(&p, &s, A(), B()).map(|h| h.option),
        Some(ScreenOption::LimitSession)
    );
    session_closed(&p, &s, A(), B());
    assert!(session_limit_hit(&p, &s, A(), B()).is_none());
}

#[test]
fn alarm_without_drop_reports_but_marks_alarm_only() {
    let mut p = all_stateless();
    p.alarm_without_drop = true;
    let hit = check(
        &p,
        &ScreenState::new(64),
        &parsed(&tcp(A(), B(), 1, 80, TcpFlags::SYN | TcpFlags::FIN, &[])),
        false,
        0,
    );
    assert_eq!(
        hit,
        Some(ScreenHit {
            option: ScreenOption::SynFin,
            alarm_only: true
        })
    );
}

#[test]
fn state_memory_is_fixed() {
    let s = ScreenState::new(1 << 12);
    let before = s.memory_bytes();
    let mut p = ScreenProfile::new(5, "all");
    p.syn_flood = Some(SynFloodLimits {
        attack: 10,
        source: 10,
        destination: 10,
    });
    p.port_scan_us = Some(5000);
    for i in 0..20_000u32 {
        let src = Addr::from_ipv4(i.to_be_bytes());
        let f = tcp(src, B(), 1, (i % 60000) as u16, TcpFlags::SYN, &[]);
        let _ = check(&p, &s, &parsed(&f), false, i as u64 * 1000);
    }
    assert_eq!(s.memory_bytes(), before);
}
