//! The engine end to end on built frames: sessions, policy, neighbour
//! discovery, MTU, ICMP errors, the TCP window, fragments, audit, aging,
//! reload, rejects and stage timing (from `engine.rs`'s unit tests; they
//! build their frames with `rampart_testkit::traffic`).

use rampart_pipeline::config::Config;
use rampart_pipeline::engine::*;
use rampart_pipeline::filter::FilterOutcome;
use rampart_pipeline::flow::{proto, Addr};
use rampart_pipeline::policy::{PolicyMatch, PolicyTable};
use rampart_pipeline::screen::ScreenState;
use rampart_pipeline::session::CloseReason;
use rampart_pipeline::wire::{self, parse, Malformed, Parsed, TcpFlags};
use rampart_testkit::configs;
use rampart_testkit::traffic::{ping, tcp, tcp_seq, udp, v4, v6, Rng};
use std::sync::atomic::Ordering;
use std::sync::{Arc, LazyLock};

/// Two zones, web allowed in, telnet and NTP rejected, the rest denied.
static CONFIG: LazyLock<String> = LazyLock::new(|| {
    let interfaces = configs::untrust_trust_pair("net_null0", "net_null1");
    let allow_web = configs::policy("allow-web", ("untrust", "trust"))
        .destination("web")
        .applications(&["junos-http", "junos-dns-udp"])
        .then("permit")
        .log_all();
    let reject_telnet = configs::policy("reject-telnet", ("untrust", "trust"))
        .applications(&["junos-telnet", "junos-ntp"])
        .then("reject")
        .log_all();
    format!(
        "\n{interfaces}{zones}[address-book]\nweb = [\"10.1.0.0/24\"]\n{allow_web}{reject_telnet}{default}",
        zones = configs::UNTRUST_AND_TRUST_ZONES,
        default = configs::default_policy_logged("deny"),
    )
});

const S: u64 = 1_000_000_000;
const UNTRUST: u16 = 0;
const TRUST: u16 = 1;

fn setup(extra: &str) -> (Ruleset, ScreenState, Worker) {
    let config = Config::from_str_named(&format!("{}{extra}", *CONFIG), "test").unwrap();
    let rules = Ruleset::compile(Arc::new(config), 1);
    let worker = Worker::new(0, &rules);
    (rules, ScreenState::new(1024), worker)
}

fn names(d: &Decision) -> Vec<&'static str> {
    d.event_types().map(EventType::name).collect()
}

#[test]
fn both_directions_share_one_session_through_close_and_aging() {
    let (rules, screens, mut w) = setup("");
    let (c, s) = (v4(192, 0, 2, 1), v4(10, 1, 0, 10));
    let run =
        |w: &mut Worker, frame: Vec<u8>, iface, t| w.process(&rules, &screens, &frame, iface, t);
    let d = run(&mut w, tcp(c, s, 40000, 80, TcpFlags::SYN, &[]), UNTRUST, S);
    assert_eq!(
        (d.verdict, d.reason, names(&d)),
        (
            Verdict::Forward { egress: TRUST },
            Reason::PolicyPermit,
            vec!["session_open"]
        )
    );
    assert_eq!(d.rule, RuleRef::Policy(0));
    let d = run(
        &mut w,
        tcp(s, c, 80, 40000, TcpFlags::SYN | TcpFlags::ACK, &[]),
        TRUST,
        S + 1,
    );
    assert_eq!(
        (d.verdict, d.reason),
        (Verdict::Forward { egress: UNTRUST }, Reason::Session)
    );
    for (frame, iface) in [
        (tcp(c, s, 40000, 80, TcpFlags::ACK, &[]), UNTRUST),
        (
            tcp(c, s, 40000, 80, TcpFlags::ACK | TcpFlags::PSH, &[7; 100]),
            UNTRUST,
        ),
        (
            tcp(s, c, 80, 40000, TcpFlags::ACK | TcpFlags::PSH, &[8; 1000]),
            TRUST,
        ),
        (
            tcp(c, s, 40000, 80, TcpFlags::FIN | TcpFlags::ACK, &[]),
            UNTRUST,
        ),
        (
            tcp(s, c, 80, 40000, TcpFlags::FIN | TcpFlags::ACK, &[]),
            TRUST,
        ),
    ] {
        let d = run(&mut w, frame, iface, 2 * S);
        assert_eq!(d.reason, Reason::Session);
    }
    let d = run(
        &mut w,
        tcp(c, s, 40000, 80, TcpFlags::ACK, &[]),
        UNTRUST,
        2 * S,
    );
    let close = w.events(&d).find_map(|e| match e {
        Event::SessionClose(c) => Some(c),
        _ => None,
    });
    let close = close.expect("the last ACK closes the session");
    assert_eq!(close.record.reason, CloseReason::TcpFin);
    assert_eq!(
        (close.record.packets_client, close.record.packets_server),
        (5, 3)
    );
    assert!(close.record.bytes_server > 1000);
    // A late segment still matches the closing session...
    assert_eq!(
        run(
            &mut w,
            tcp(s, c, 80, 40000, TcpFlags::ACK, &[]),
            TRUST,
            3 * S
        )
        .reason,
        Reason::Session
    );
    // ...until it ages out, without a second close event.
    let mut events = Vec::new();
    w.expire(&rules, &screens, 10 * S, usize::MAX, &mut |e| {
        events.push(e)
    });
    assert!(events.is_empty());
    assert!(w.sessions.is_empty());
    let d = run(
        &mut w,
        tcp(s, c, 80, 40000, TcpFlags::ACK, &[]),
        TRUST,
        10 * S,
    );
    assert_eq!(
        d.reason,
        Reason::TcpSynCheck,
        "gone sessions do not pass traffic"
    );
}

#[test]
fn rule_hits_count_policies_default_and_filter_terms() {
    let filter = "[[filter]]\nname = \"f\"\n[[filter.term]]\nname = \"dns\"\nfrom = { protocol = \"udp\", destination-port = \"53\" }\nthen = { action = \"accept\" }\n";
    let text = CONFIG.replace(
        "zone = \"untrust\"\npeer",
        "zone = \"untrust\"\ninput_filter = \"f\"\npeer",
    );
    let config = Config::from_str_named(&format!("{text}{filter}"), "test").unwrap();
    let rules = Ruleset::compile(Arc::new(config), 1);
    let screens = ScreenState::new(64);
    let mut w = Worker::new(0, &rules);
    let (c, s) = (v4(192, 0, 2, 1), v4(10, 1, 0, 10));
    w.process(&rules, &screens, &udp(c, s, 5000, 53, &[0; 8]), UNTRUST, S);
    w.process(&rules, &screens, &udp(c, s, 5001, 53, &[0; 8]), UNTRUST, S);
    w.process(
        &rules,
        &screens,
        &tcp(c, s, 40000, 80, TcpFlags::SYN, &[]),
        UNTRUST,
        S,
    );
    assert_eq!(
        rules.hits.policy(PolicyMatch::Rule(0)),
        2,
        "allow-web matched the two DNS flows"
    );
    assert_eq!(rules.hits.term(0, FilterOutcome::Term(0), 1), 2);
    assert_eq!(
        rules.hits.term(0, FilterOutcome::ImplicitDiscard, 1),
        1,
        "TCP hit the end of the filter"
    );
    assert_eq!(rules.hits.policy(PolicyMatch::Default), 0);
}

#[test]
fn ipv6_neighbour_discovery_passes_like_arp_unless_the_config_says_policy() {
    use rampart_testkit::traffic::router_solicitation;
    use rampart_testkit::traffic::{icmpv6_link, neighbor_advertisement, neighbor_solicitation};
    let (rules, screens, mut w) = setup("");
    let ns = neighbor_solicitation(v6("fe80::1"), v6("ff02::1:ff00:2"), v6("fe80::2"));
    let na = neighbor_advertisement(v6("fe80::2"), v6("fe80::1"), v6("fe80::2"), true);
    let rs = router_solicitation(v6("fe80::1"));
    let mld_report =
        |src, hop_limit| icmpv6_link((v6(src), v6("ff02::16")), hop_limit, (143, 0), [0; 4], &[]);
    let mld = mld_report("fe80::1", 1);
    for (frame, iface) in [
        (&ns, UNTRUST),
        (&na, TRUST),
        (&rs, UNTRUST),
        (&mld, UNTRUST),
    ] {
        let d = w.process(&rules, &screens, frame, iface, S);
        assert_eq!(
            (d.verdict, d.reason, d.stage, d.event_count()),
            (
                Verdict::Forward { egress: 1 - iface },
                Reason::NeighborDiscovery,
                Stage::Policy,
                0
            ),
            "no session, no policy, no event"
        );
    }
    assert_eq!(w.counters.neighbor_discovery, 4);
    assert_eq!(w.sessions.len(), 0);
    let d = w.process(&rules, &screens, &mld_report("::", 1), UNTRUST, S);
    assert_eq!(
        d.reason,
        Reason::NeighborDiscovery,
        "MLD before the link-local address"
    );
    // Not as sent on a link (routed, or MLD from a global address), or
    // not a link message at all: policy decides, as for other ICMPv6.
    let routed_ns = {
        let mut f = ns.clone();
        // The hop limit, and the checksum still right: only routing
        // tells it apart.
        f[14 + 7] = 64;
        f
    };
    for frame in [
        routed_ns,
        mld_report("2001:db8::1", 1),
        ping(v6("2001:db8::1"), v6("2001:db8:1::1"), 1, 1),
    ] {
        let d = w.process(&rules, &screens, &frame, UNTRUST, S);
        assert_eq!((d.verdict, d.reason), (Verdict::Drop, Reason::PolicyDeny));
    }
    // `ipv6-nd = "policy"`: the deny-all default policy drops them too.
    let (rules, screens, mut w) = setup("[flow]\nipv6-nd = \"policy\"\n");
    let d = w.process(&rules, &screens, &ns, UNTRUST, S);
    assert_eq!((d.verdict, d.reason), (Verdict::Drop, Reason::PolicyDeny));
    assert_eq!(w.counters.neighbor_discovery, 0);
}

/// A frame larger than the egress interface's MTU is dropped and
/// counted (`mtu_exceeded`), whatever decided it should go: a session
/// or policy (IP packets measured from the IP header, so VLAN tags do
/// not count), or the pass of a non-IP frame. Before, 9,614-byte frames
/// left a port with `mtu = 1500`, uncounted.
#[test]
fn frames_larger_than_the_egress_mtu_are_dropped_and_counted() {
    let (rules, screens, mut w) = setup("");
    let (client, server) = (v4(192, 0, 2, 7), v4(10, 1, 0, 5));
    let mtu_exceeded = |w: &Worker| w.counters.dropped[DropReason::MtuExceeded.index()];
    // IP packet of exactly 1500 bytes: forwarded.
    let fits = udp(client, server, 4000, 53, &[0; 1500 - 28]);
    let d = w.process(&rules, &screens, &fits, UNTRUST, S);
    assert_eq!(d.verdict, Verdict::Forward { egress: 1 });
    // One byte more, in the session the first one opened, and a jumbo
    // frame: dropped after the decision to forward.
    for size in [1501, 9600] {
        let big = udp(client, server, 4000, 53, &vec![0; size - 28]);
        let d = w.process(&rules, &screens, &big, UNTRUST, S);
        assert_eq!(
            (d.verdict, d.reason, d.stage),
            (Verdict::Drop, Reason::MtuExceeded, Stage::FilterOutput),
            "{size}"
        );
    }
    assert_eq!(mtu_exceeded(&w), 2);
    assert_eq!(w.counters.forwarded, 1);
    // A non-IP frame (an ARP ethertype) with 1,501 bytes of payload.
    let mut arp = vec![0xffu8; 14 + 1501];
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    let d = w.process(&rules, &screens, &arp, UNTRUST, S);
    assert_eq!((d.verdict, d.reason), (Verdict::Drop, Reason::MtuExceeded));
    arp.truncate(14 + 1500);
    let d = w.process(&rules, &screens, &arp, UNTRUST, S);
    assert_eq!(
        (d.verdict, d.reason),
        (Verdict::Forward { egress: 1 }, Reason::NonIp)
    );
    assert_eq!(mtu_exceeded(&w), 3);
    assert_eq!(Reason::MtuExceeded.name(), "mtu-exceeded");
    assert_eq!(
        Reason::MtuExceeded.drop_reason().map(DropReason::name),
        Some("mtu_exceeded")
    );
}

/// With `mtu-exceeded = "reject"`, a packet too large for its egress
/// port is answered when its sender can use the answer (IPv4 with DF,
/// IPv6): ICMP fragmentation-needed / ICMPv6 packet-too-big carrying
/// the port's MTU, from the destination it was sent to, checksummed.
/// IPv4 without DF is dropped silently; counted either way.
#[test]
fn packets_too_big_are_answered_with_the_mtu_when_the_config_asks() {
    use rampart_pipeline::wire::build::{packet_vec, Ethernet, Ip, L4};
    let (rules, screens, mut w) = setup(&format!(
        "[flow]\nmtu-exceeded = \"reject\"\n{}",
        configs::policy("any", ("untrust", "trust")).then("permit")
    ));
    let big = |src: Addr, dst: Addr, dont_frag: bool| {
        let ip = Ip {
            dont_frag,
            ..Ip::new(src, dst)
        };
        packet_vec(&Ethernet::DEFAULT, &ip, &L4::udp(4000, 53), &[7; 1600]).unwrap()
    };
    let (c4, s4) = (v4(192, 0, 2, 7), v4(10, 1, 0, 5));
    let (c6, s6) = (v6("2001:db8::7"), v6("2001:db8:1::5"));
    let mut out = [0u8; 1280];
    for (frame, client, server, want) in [
        (
            big(c4, s4, true),
            c4,
            s4,
            (proto::ICMP, 3, 4, [0, 0, 0x05, 0xdc]),
        ),
        (
            big(c6, s6, false),
            c6,
            s6,
            (proto::ICMPV6, 2, 0, [0, 0, 0x05, 0xdc]),
        ),
    ] {
        let d = w.process(&rules, &screens, &frame, UNTRUST, S);
        assert_eq!(
            (d.verdict, d.reason),
            (Verdict::Reject, Reason::MtuExceeded)
        );
        let n = build_answer_to(&rules, &d, &frame, &mut out).unwrap();
        let Ok(Parsed::Ip(icmp)) = wire::parse_verified(&out[..n]) else {
            panic!("the answer must parse with valid checksums")
        };
        let l4 = usize::from(icmp.l4_offset);
        assert_eq!(
            (
                icmp.protocol,
                icmp.icmp_type,
                icmp.icmp_code,
                icmp.src,
                icmp.dst
            ),
            (want.0, want.1, want.2, server, client)
        );
        assert_eq!(out[l4 + 4..l4 + 8], want.3, "the MTU, 1500");
    }
    let d = w.process(&rules, &screens, &big(c4, s4, false), UNTRUST, S);
    assert_eq!((d.verdict, d.reason), (Verdict::Drop, Reason::MtuExceeded));
    assert_eq!(w.counters.dropped[DropReason::MtuExceeded.index()], 3);
}

/// Neighbour discovery passes like ARP only when RFC 4861's validity
/// checks hold (MLD: RFC 2710/3810's code and length): a solicitation
/// with code 9, with 1,200 bytes of junk after it or cut short, a
/// redirect or router advertisement from a global source, and the
/// rest of `traffic::link_control`'s invalid messages go through
/// policy, where the deny-all default drops them; the valid ones (with
/// their link-layer address options) still pass.
#[test]
fn only_valid_neighbour_discovery_passes_like_arp() {
    let (rules, screens, mut w) = setup("");
    let cases = rampart_testkit::traffic::link_control();
    for name in [
        "ns-code-9",
        "ns-junk-payload",
        "ns-truncated",
        "redirect-global-source",
        "ra-global-source",
    ] {
        assert!(
            cases.iter().any(|(n, valid, _)| *n == name && !valid),
            "{name} is among the invalid cases"
        );
    }
    // Every case that goes the wrong way, so a failure lists them all.
    let mut wrong = Vec::new();
    for (name, valid, frame) in &cases {
        let before = w.counters.neighbor_discovery;
        let d = w.process(&rules, &screens, frame, UNTRUST, S);
        let expected = if *valid {
            (
                Verdict::Forward { egress: TRUST },
                Reason::NeighborDiscovery,
                1,
            )
        } else {
            (Verdict::Drop, Reason::PolicyDeny, 0)
        };
        let counted = w.counters.neighbor_discovery - before;
        if (d.verdict, d.reason, counted) != expected {
            wrong.push(format!("{name}: {:?} {:?}", d.verdict, d.reason));
        }
    }
    assert_eq!(wrong, Vec::<String>::new());
    assert_eq!(w.sessions.len(), 0);
}

/// An ICMP (IPv4) or ICMPv6 error from `from` to `to` quoting `original`.
fn icmp_error(
    from: Addr,
    to: Addr,
    msg_type: u8,
    code: u8,
    rest: [u8; 4],
    original: &[u8],
) -> Vec<u8> {
    use rampart_pipeline::wire::build::{packet_vec, Ethernet, Ip, L4};
    let l4 = L4::Icmp {
        msg_type,
        code,
        rest,
    };
    packet_vec(&Ethernet::DEFAULT, &Ip::new(from, to), &l4, &original[14..]).unwrap()
}

#[test]
fn icmp_errors_about_a_session_pass_and_others_follow_policy() {
    let (rules, screens, mut w) = setup("");
    let (c, dns, web) = (v4(192, 0, 2, 1), v4(10, 1, 0, 53), v4(10, 1, 0, 10));
    let router = v4(198, 51, 100, 1);
    let query = udp(c, dns, 5353, 53, &[0; 16]);
    let syn = tcp(c, web, 40000, 80, TcpFlags::SYN, &[]);
    for f in [&query, &syn] {
        let d = w.process(&rules, &screens, f, UNTRUST, S);
        assert_eq!(d.reason, Reason::PolicyPermit);
    }
    // Port unreachable from the server, fragmentation needed (MTU
    // 1400) from a router on the path, time exceeded: all pass.
    for (from, msg_type, code, rest, original) in [
        (dns, 3, 3, [0; 4], &query),
        (router, 3, 4, [0, 0, 0x05, 0x78], &syn),
        (router, 11, 0, [0; 4], &syn),
    ] {
        let e = icmp_error(from, c, msg_type, code, rest, original);
        let d = w.process(&rules, &screens, &e, TRUST, S + 1);
        assert_eq!(
            (d.verdict, d.reason, d.rule, d.event_count()),
            (
                Verdict::Forward { egress: UNTRUST },
                Reason::RelatedIcmp,
                RuleRef::Policy(0),
                0
            ),
            "type {msg_type} code {code}"
        );
    }
    assert_eq!(w.counters.related_icmp, 3);
    // About a flow with no session, or sent to someone other than the
    // quoted packet's sender: policy, as before (denied here).
    let stranger = udp(c, dns, 5354, 53, &[0; 16]);
    for e in [
        icmp_error(dns, c, 3, 3, [0; 4], &stranger),
        icmp_error(dns, v4(192, 0, 2, 99), 3, 3, [0; 4], &query),
    ] {
        let d = w.process(&rules, &screens, &e, TRUST, S + 2);
        assert_eq!((d.verdict, d.reason), (Verdict::Drop, Reason::PolicyDeny));
    }
    // The quoted packet cut short: policy, never a panic.
    let e = icmp_error(dns, c, 3, 3, [0; 4], &query);
    for cut in 14 + 20 + 8..e.len() {
        let _ = w.process(&rules, &screens, &e[..cut], TRUST, S + 3);
    }
}

#[test]
fn icmpv6_packet_too_big_about_a_session_passes() {
    let v6_policy = configs::policy("allow-web6", ("untrust", "trust"))
        .application("junos-http")
        .then("permit");
    let config = Config::from_str_named(
        &CONFIG.replacen("[[policy]]", &format!("{v6_policy}[[policy]]"), 1),
        "test",
    )
    .unwrap();
    let rules = Ruleset::compile(Arc::new(config), 1);
    let screens = ScreenState::new(64);
    let mut w = Worker::new(0, &rules);
    let (c, web, router) = (
        v6("2001:db8::1"),
        v6("2001:db8:1::10"),
        v6("2001:db8:ff::1"),
    );
    let syn = tcp(c, web, 40000, 80, TcpFlags::SYN, &[]);
    assert_eq!(
        w.process(&rules, &screens, &syn, UNTRUST, S).reason,
        Reason::PolicyPermit
    );
    let ptb = icmp_error(router, c, 2, 0, [0, 0, 0x05, 0x00], &syn);
    let d = w.process(&rules, &screens, &ptb, TRUST, S + 1);
    assert_eq!(
        (d.verdict, d.reason),
        (Verdict::Forward { egress: UNTRUST }, Reason::RelatedIcmp)
    );
    let other = tcp(c, web, 40001, 80, TcpFlags::SYN, &[]);
    let ptb = icmp_error(router, c, 2, 0, [0, 0, 0x05, 0x00], &other);
    let d = w.process(&rules, &screens, &ptb, TRUST, S + 1);
    assert_eq!((d.verdict, d.reason), (Verdict::Drop, Reason::PolicyDeny));
}

#[test]
fn a_syn_after_a_connection_ended_opens_a_new_logged_session_through_policy() {
    let (rules, screens, mut w) = setup("");
    let (c, s) = (v4(192, 0, 2, 1), v4(10, 1, 0, 10));
    let syn = tcp(c, s, 40000, 80, TcpFlags::SYN, &[]);
    let d = w.process(&rules, &screens, &syn, UNTRUST, S);
    assert_eq!(names(&d), ["session_open"]);
    // Ended by RST (the answer to the SYN): the entry lingers, and a
    // retransmitted SYN would ride it; a new connection on the same
    // ports must not.
    let refused = tcp_seq(
        (s, 80),
        (c, 40000),
        TcpFlags::RST | TcpFlags::ACK,
        0,
        1001,
        0,
        &[],
    );
    let d = w.process(&rules, &screens, &refused, TRUST, S + 1);
    assert_eq!(names(&d), ["session_close"]);
    let d = w.process(&rules, &screens, &syn, UNTRUST, S + 2);
    assert_eq!(
        (d.reason, names(&d)),
        (Reason::PolicyPermit, vec!["session_open"]),
        "the second connection is seen by policy and logged"
    );
    assert_eq!((w.counters.sessions_reopened, w.sessions.len()), (1, 1));
    // Both FINs seen, the last ACK not yet: the SYN ends it (reported
    // once) and opens the next.
    let fin = TcpFlags::FIN | TcpFlags::ACK;
    w.process(
        &rules,
        &screens,
        &tcp(s, c, 80, 40000, TcpFlags::SYN | TcpFlags::ACK, &[]),
        TRUST,
        S + 3,
    );
    w.process(
        &rules,
        &screens,
        &tcp(c, s, 40000, 80, TcpFlags::ACK, &[]),
        UNTRUST,
        S + 3,
    );
    w.process(
        &rules,
        &screens,
        &tcp(c, s, 40000, 80, fin, &[]),
        UNTRUST,
        S + 4,
    );
    let d = w.process(
        &rules,
        &screens,
        &tcp(s, c, 80, 40000, fin, &[]),
        TRUST,
        S + 4,
    );
    assert_eq!(names(&d), Vec::<&str>::new(), "closing, not closed yet");
    let d = w.process(&rules, &screens, &syn, UNTRUST, S + 5);
    assert_eq!(
        (d.reason, names(&d)),
        (Reason::PolicyPermit, vec!["session_close", "session_open"])
    );
    assert_eq!(w.counters.sessions_reopened, 2);
    // An open connection keeps its session: a SYN on it is one of its
    // packets (a retransmission), not a new connection.
    let d = w.process(&rules, &screens, &syn, UNTRUST, S + 6);
    assert_eq!((d.reason, names(&d)), (Reason::Session, vec![]));
    assert_eq!(w.counters.sessions_reopened, 2);
}

/// A web session from 192.0.2.1:40000 through its handshake (client
/// ISN 1000, server ISN 5000, windows 64 kB unscaled).
fn handshake(w: &mut Worker, rules: &Ruleset, screens: &ScreenState) -> (Addr, Addr) {
    let (c, s) = (v4(192, 0, 2, 1), v4(10, 1, 0, 10));
    let (syn, synack, ack) = (TcpFlags::SYN, TcpFlags::SYN | TcpFlags::ACK, TcpFlags::ACK);
    for (frame, port) in [
        (
            tcp_seq((c, 40000), (s, 80), syn, 1000, 0, 65535, &[]),
            UNTRUST,
        ),
        (
            tcp_seq((s, 80), (c, 40000), synack, 5000, 1001, 65535, &[]),
            TRUST,
        ),
        (
            tcp_seq((c, 40000), (s, 80), ack, 1001, 5001, 65535, &[]),
            UNTRUST,
        ),
    ] {
        let d = w.process(rules, screens, &frame, port, S);
        assert!(matches!(d.verdict, Verdict::Forward { .. }), "{d:?}");
    }
    (c, s)
}

#[test]
fn segments_outside_the_window_are_dropped_and_only_an_exact_rst_closes() {
    let (rules, screens, mut w) = setup("");
    let (c, s) = handshake(&mut w, &rules, &screens);
    let ack = TcpFlags::ACK;
    let rst = TcpFlags::RST;
    let data = tcp_seq((s, 80), (c, 40000), ack, 5001, 1001, 65535, &[7; 100]);
    assert_eq!(
        w.process(&rules, &screens, &data, TRUST, S).reason,
        Reason::Session
    );
    let far = tcp_seq(
        (s, 80),
        (c, 40000),
        ack,
        5001 + 10_000_000,
        1001,
        65535,
        &[7; 100],
    );
    let blind_rst = tcp_seq((s, 80), (c, 40000), rst, 3_000_000_000, 0, 0, &[]);
    let bad_ack = tcp_seq(
        (c, 40000),
        (s, 80),
        ack,
        1001,
        5101 + 10_000_000,
        65535,
        &[],
    );
    for frame in [&far, &blind_rst, &bad_ack] {
        let d = w.process(&rules, &screens, frame, TRUST, S);
        assert_eq!(
            (d.verdict, d.reason),
            (Verdict::Drop, Reason::TcpOutOfWindow)
        );
        assert_eq!(names(&d), Vec::<&str>::new(), "counted, not logged");
    }
    assert_eq!(w.counters.dropped[DropReason::TcpOutOfWindow.index()], 3);
    // Inside the window but not where the client expects it: it goes
    // on (the client challenges it) and the session stays.
    let guessed = tcp_seq((s, 80), (c, 40000), rst, 5101 + 3000, 0, 0, &[]);
    let d = w.process(&rules, &screens, &guessed, TRUST, S);
    assert_eq!((d.reason, names(&d)), (Reason::Session, vec![]));
    assert_eq!(w.counters.tcp_rst_unconfirmed, 1);
    let d = w.process(&rules, &screens, &data, TRUST, S);
    assert_eq!(d.reason, Reason::Session, "the session is still open");
    // The server's next sequence number: the real reset.
    let real = tcp_seq((s, 80), (c, 40000), rst, 5101, 0, 0, &[]);
    let d = w.process(&rules, &screens, &real, TRUST, S);
    assert_eq!(
        (d.reason, names(&d)),
        (Reason::Session, vec!["session_close"])
    );
}

#[test]
fn a_fragmented_rst_is_checked_like_any_other() {
    use rampart_pipeline::wire::build::{packet_vec, Ethernet, Fragment, Ip, L4};
    let (rules, screens, mut w) = setup("");
    let (c, s) = handshake(&mut w, &rules, &screens);
    let mut ip = Ip::new(s, c);
    ip.fragment = Some(Fragment {
        offset: 0,
        more: true,
        id: 5,
    });
    let l4 = L4::Tcp {
        src_port: 80,
        dst_port: 40000,
        seq: 3_000_000_000,
        ack: 0,
        flags: TcpFlags::RST,
        window: 0,
        options: &[],
    };
    let frame = packet_vec(&Ethernet::DEFAULT, &ip, &l4, &[0; 8]).unwrap();
    let d = w.process(&rules, &screens, &frame, TRUST, S);
    assert_eq!(
        (d.verdict, d.reason),
        (Verdict::Drop, Reason::TcpOutOfWindow)
    );
    assert_eq!(w.sessions.open(), 1, "the session stays open");
}

#[test]
fn without_the_sequence_check_any_rst_closes() {
    let (rules, screens, mut w) = setup("[flow]\ntcp-sequence-check = false\n");
    let (c, s) = handshake(&mut w, &rules, &screens);
    let blind_rst = tcp_seq((s, 80), (c, 40000), TcpFlags::RST, 3_000_000_000, 0, 0, &[]);
    let d = w.process(&rules, &screens, &blind_rst, TRUST, S);
    assert_eq!(
        (d.reason, names(&d)),
        (Reason::Session, vec!["session_close"])
    );
}

#[test]
fn fragments_ahead_of_their_first_are_held_then_follow_its_decision() {
    use rampart_pipeline::frag::{DatagramKey, FragHold, GaveUp};
    use rampart_pipeline::wire::build::L4;
    let frag = |src: Addr, dst: Addr, id: u32, offset: u16, l4: L4<'_>, len: usize| {
        rampart_testkit::traffic::fragment(src, dst, id, offset, offset == 0, l4, &vec![9; len])
    };
    let raw = |protocol| L4::Raw { protocol };
    let (rules, screens, mut w) = setup("");
    let mut held: FragHold<Vec<u8>> = FragHold::new(4);
    let families = [
        (v4(192, 0, 2, 1), v4(10, 1, 0, 53)),
        (v6("2001:db8:ff::1"), v6("2001:db8:1::53")),
    ];
    // Not in the address book's web range over IPv6: denied there,
    // so the held fragment follows the first fragment's deny.
    for (n, (c, s)) in families.into_iter().enumerate() {
        let second = frag(c, s, 7, 40, raw(proto::UDP), 24);
        let first = frag(c, s, 7, 0, L4::udp(5353, 53), 32);
        let d = w.process(&rules, &screens, &second, UNTRUST, S);
        assert_eq!((d.verdict, d.reason), (Verdict::Hold, Reason::FragmentHeld));
        let pkt = d.packet.unwrap();
        assert!(held.hold(second.clone(), UNTRUST, &pkt, S).is_none());
        let d = w.process(&rules, &screens, &first, UNTRUST, S + 1);
        let first_pkt = d.packet.unwrap();
        let (want, reason) = if n == 0 {
            (Verdict::Forward { egress: TRUST }, Reason::Session)
        } else {
            (Verdict::Drop, Reason::PolicyDeny)
        };
        assert_eq!(d.verdict, want);
        let (frame, port) = held.take_released(DatagramKey::of(&first_pkt)).unwrap();
        assert_eq!((frame.as_slice(), port), (second.as_slice(), UNTRUST));
        assert!(held.take_released(DatagramKey::of(&first_pkt)).is_none());
        let mut d = Decision::BLANK;
        w.resume_held(&rules, &screens, &frame, port, S + 1, &mut d);
        assert_eq!((d.verdict, d.reason), (want, reason), "family {n}");
        let (src_port, dst_port) = (d.packet.unwrap().src_port, d.packet.unwrap().dst_port);
        assert_eq!((src_port, dst_port), (0, 0), "the packet itself has none");
    }
    assert_eq!(w.counters.fragments_held, 2);
    assert_eq!(w.counters.packets, 4, "a held fragment counts once");
    // A first fragment that never comes: given up after the timeout.
    let (c, s) = families[0];
    let lone = frag(c, s, 8, 40, raw(proto::UDP), 24);
    let d = w.process(&rules, &screens, &lone, UNTRUST, 2 * S);
    assert_eq!(d.verdict, Verdict::Hold);
    held.hold(lone, UNTRUST, &d.packet.unwrap(), 2 * S);
    assert!(held
        .take_expired(2 * S + rampart_pipeline::frag::FRAG_TIMEOUT_NS - 1)
        .is_none());
    assert!(held
        .take_expired(2 * S + rampart_pipeline::frag::FRAG_TIMEOUT_NS)
        .is_some());
    assert_eq!(w.give_up_held(GaveUp::Timeout), Reason::FragmentTimeout);
    assert_eq!(w.counters.dropped[DropReason::FragmentTimeout.index()], 1);
    // Protocols without ports are judged as they come.
    let gre = frag(c, s, 9, 40, raw(47), 24);
    let d = w.process(&rules, &screens, &gre, UNTRUST, 3 * S);
    assert_eq!((d.verdict, d.reason), (Verdict::Drop, Reason::PolicyDeny));
}

#[test]
fn an_answered_echo_closes_as_response_received_and_the_next_opens_anew() {
    let (rules, screens, mut w) = setup(
        &configs::policy("pings", ("untrust", "trust"))
            .applications(&["junos-icmp-all", "junos-icmp6-all"])
            .then("permit")
            .log_all()
            .to_string(),
    );
    for (c, s) in [
        (v4(192, 0, 2, 1), v4(10, 1, 0, 10)),
        (v6("2001:db8:ff::1"), v6("2001:db8:1::10")),
    ] {
        let request = ping(c, s, 77, 1);
        let mut reply = ping(s, c, 77, 1);
        // Echo reply: type 0 (IPv4) or 129 (IPv6), checksum not checked.
        let at = match wire::parse(&reply) {
            Ok(Parsed::Ip(p)) => usize::from(p.l4_offset),
            _ => unreachable!(),
        };
        reply[at] = if c.is_ipv4() { 0 } else { 129 };
        let d = w.process(&rules, &screens, &request, UNTRUST, S);
        assert_eq!(names(&d), ["session_open"]);
        let d = w.process(&rules, &screens, &reply, TRUST, S);
        assert_eq!(
            (d.reason, names(&d)),
            (Reason::Session, vec!["session_close"])
        );
        match w.events(&d).next() {
            Some(Event::SessionClose(c)) => {
                assert_eq!(c.record.reason, CloseReason::ResponseReceived);
                assert_eq!((c.record.packets_client, c.record.packets_server), (1, 1));
            }
            other => panic!("{other:?}"),
        }
        // A duplicate reply rides the closed session quietly.
        let d = w.process(&rules, &screens, &reply, TRUST, S);
        assert_eq!((d.reason, names(&d)), (Reason::Session, vec![]));
        // The next request on the same identifier: a new session.
        let d = w.process(&rules, &screens, &ping(c, s, 77, 2), UNTRUST, S + 1);
        assert_eq!(
            (d.reason, names(&d)),
            (Reason::PolicyPermit, vec!["session_open"])
        );
    }
}

#[test]
fn an_audit_policy_logs_what_it_would_drop_and_lets_the_next_policy_decide() {
    // Ahead of allow-web: an audit deny of web traffic from one source.
    let (rules, screens, mut w) = setup(
        &configs::policy("audit-web-from-192.0.2.1", ("untrust", "trust"))
            .source("192.0.2.1/32")
            .application("junos-http")
            .then("deny")
            .audit()
            .to_string(),
    );
    // Policies are evaluated in order; move the audit policy first.
    let mut config = (*rules.config).clone();
    let audit = config.policies.pop().unwrap();
    config.policies.insert(0, audit);
    let rules = Ruleset::compile(Arc::new(config), 2);
    let (c, s) = (v4(192, 0, 2, 1), v4(10, 1, 0, 10));
    let d = w.process(
        &rules,
        &screens,
        &tcp(c, s, 40000, 80, TcpFlags::SYN, &[]),
        UNTRUST,
        S,
    );
    assert_eq!(
        (d.verdict, d.reason, names(&d)),
        (
            Verdict::Forward { egress: TRUST },
            Reason::PolicyPermit,
            vec!["policy_deny", "session_open"]
        ),
        "logged as audit, permitted by allow-web"
    );
    match w.events(&d).next() {
        Some(Event::PolicyDeny(PolicyDeny {
            policy: 0,
            audit: true,
            reject: false,
            ..
        })) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(d.rule, RuleRef::Policy(1), "allow-web decided");
    assert_eq!(w.counters.policy_audit, 1);
    assert_eq!(rules.hits.policy(PolicyMatch::Rule(0)), 1);
    // Another source is not audited.
    let d = w.process(
        &rules,
        &screens,
        &tcp(v4(192, 0, 2, 2), s, 40000, 80, TcpFlags::SYN, &[]),
        UNTRUST,
        S,
    );
    assert_eq!(names(&d), ["session_open"]);
    // Telnet from the audited source is not what the audit policy
    // covers: reject-telnet, which is not in audit mode, rejects it.
    let d = w.process(
        &rules,
        &screens,
        &tcp(c, s, 40001, 23, TcpFlags::SYN, &[]),
        UNTRUST,
        S,
    );
    assert_eq!(
        (d.reason, names(&d)),
        (Reason::PolicyReject, vec!["policy_deny"])
    );
}

#[test]
fn an_audited_zone_pair_drops_nothing_and_logs_every_deny_as_audit() {
    let (rules, screens, mut w) =
        setup("[[zone-pair]]\nfrom-zone = \"untrust\"\nto-zone = \"trust\"\naudit = true\n");
    let (c, s) = (v4(192, 0, 2, 1), v4(10, 1, 0, 10));
    // reject-telnet is not in audit mode itself; its pair is.
    let d = w.process(
        &rules,
        &screens,
        &tcp(c, s, 40001, 23, TcpFlags::SYN, &[]),
        UNTRUST,
        S,
    );
    assert_eq!(
        (d.verdict, names(&d)),
        (
            Verdict::Forward { egress: TRUST },
            vec!["policy_deny", "policy_deny"]
        ),
        "reject-telnet's audit, then the default policy's, and through"
    );
    match w.events(&d).next() {
        Some(Event::PolicyDeny(PolicyDeny {
            policy: 1,
            audit: true,
            reject: true,
            ..
        })) => {}
        other => panic!("{other:?}"),
    }
    // What only the default policy denies passes too, logged.
    let d = w.process(
        &rules,
        &screens,
        &udp(c, s, 40002, 9999, &[0; 8]),
        UNTRUST,
        S,
    );
    assert_eq!(d.verdict, Verdict::Forward { egress: TRUST });
    match w.events(&d).next() {
        Some(Event::PolicyDeny(PolicyDeny {
            policy,
            audit: true,
            ..
        })) if policy == rules.default_policy_id() => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(
        w.counters.policy_audit, 3,
        "reject-telnet, its default, udp"
    );
    // Permits are as written: web opens its session under allow-web.
    let d = w.process(
        &rules,
        &screens,
        &tcp(c, s, 40003, 80, TcpFlags::SYN, &[]),
        UNTRUST,
        S,
    );
    assert_eq!(
        (d.rule, names(&d)),
        (RuleRef::Policy(0), vec!["session_open"])
    );
    // The other direction is not audited: the default policy drops.
    let d = w.process(&rules, &screens, &udp(s, c, 5000, 9999, &[0; 8]), TRUST, S);
    assert_eq!(d.reason, Reason::PolicyDeny);
}

#[test]
fn a_zone_pair_named_twice_or_an_unknown_zone_is_refused() {
    let pair = |from: &str, to: &str| {
        format!("[[zone-pair]]\nfrom-zone = \"{from}\"\nto-zone = \"{to}\"\naudit = true\n")
    };
    let err = Config::from_str_named(
        &format!(
            "{}{}{}",
            *CONFIG,
            pair("untrust", "trust"),
            pair("untrust", "trust")
        ),
        "t.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("zone-pair[1].to-zone: the zone pair untrust -> trust is already listed"),
        "{err}"
    );
    let err = Config::from_str_named(&format!("{}{}", *CONFIG, pair("untrust", "dmz")), "t.toml")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("zone-pair[0].to-zone: unknown zone 'dmz'"),
        "{err}"
    );
}

#[test]
fn audit_is_refused_on_a_permit_policy() {
    let err = Config::from_str_named(
        &format!(
            "{}{}",
            *CONFIG,
            configs::policy("x", ("untrust", "trust"))
                .then("permit")
                .audit()
        ),
        "test",
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("audit applies to deny and reject policies"),
        "{err}"
    );
}

#[test]
fn return_traffic_for_a_flow_never_opened_is_denied() {
    let (rules, screens, mut w) = setup("");
    let (c, s) = (v4(192, 0, 2, 1), v4(10, 1, 0, 10));
    let d = w.process(
        &rules,
        &screens,
        &tcp(s, c, 80, 40000, TcpFlags::SYN | TcpFlags::ACK, &[]),
        TRUST,
        S,
    );
    assert_eq!((d.verdict, d.reason), (Verdict::Drop, Reason::TcpSynCheck));
    let d = w.process(&rules, &screens, &udp(s, c, 53, 5000, &[0; 20]), TRUST, S);
    assert_eq!(
        (d.verdict, d.reason, d.rule),
        (Verdict::Drop, Reason::PolicyDeny, RuleRef::DefaultPolicy)
    );
    assert_eq!(names(&d), vec!["policy_deny"]);
    let (rules, screens, mut w) = setup("[flow]\ntcp-syn-check = false\n");
    let d = w.process(
        &rules,
        &screens,
        &tcp(s, c, 80, 40000, TcpFlags::ACK, &[]),
        TRUST,
        S,
    );
    assert_eq!((d.reason, d.stage), (Reason::PolicyDeny, Stage::Policy));
}

#[test]
fn idle_sessions_age_out_per_protocol() {
    let (rules, screens, mut w) = setup("[flow.timeouts]\nudp = 30\n");
    let (c, s) = (v4(192, 0, 2, 1), v4(10, 1, 0, 53));
    w.process(&rules, &screens, &udp(c, s, 5000, 53, &[0; 20]), UNTRUST, S);
    let mut events = Vec::new();
    w.expire(&rules, &screens, 30 * S, usize::MAX, &mut |e| {
        events.push(e)
    });
    assert!(events.is_empty(), "not idle long enough yet");
    w.expire(&rules, &screens, 32 * S, usize::MAX, &mut |e| {
        events.push(e)
    });
    match events.as_slice() {
        [Event::SessionClose(c)] => assert_eq!(c.record.reason, CloseReason::IdleTimeout),
        other => panic!("{other:?}"),
    }
    assert!(w.sessions.is_empty());
}

#[test]
fn a_reload_shortening_a_timeout_ages_sessions_already_open() {
    let (rules, screens, mut w) = setup("[flow.timeouts]\nudp = 60\n");
    let (c, s) = (v4(192, 0, 2, 1), v4(10, 1, 0, 53));
    w.process(&rules, &screens, &udp(c, s, 5000, 53, &[0; 20]), UNTRUST, S);
    let mut events = Vec::new();
    w.expire(&rules, &screens, 10 * S, usize::MAX, &mut |e| {
        events.push(e)
    });
    assert!(events.is_empty(), "9 s idle is under the first 60 s");

    let (reloaded, _, _) = setup("[flow.timeouts]\nudp = 5\n");
    w.adopt(&reloaded);
    assert_eq!(w.sessions.timeouts().udp_ns, 5 * S);
    w.expire(&reloaded, &screens, 10 * S, usize::MAX, &mut |e| {
        events.push(e)
    });
    match events.as_slice() {
        [Event::SessionClose(c)] => assert_eq!(c.record.reason, CloseReason::IdleTimeout),
        other => panic!("the session opened under 60 s ages at 5 s: {other:?}"),
    }
    assert!(w.sessions.is_empty());
}

#[test]
fn sessions_keep_the_policy_and_generation_they_were_created_under() {
    let (rules, screens, mut w) = setup("");
    let flow = |host: u8| udp(v4(192, 0, 2, host), v4(10, 1, 0, 53), 5000, 53, &[0; 20]);
    let d = w.process(&rules, &screens, &flow(1), UNTRUST, S);
    assert_eq!(
        d.rule,
        RuleRef::Policy(0),
        "allow-web is policy 0 in generation 1"
    );

    // Generation 2 inserts a policy ahead: allow-web becomes policy 1.
    let blocker = configs::policy("blocker-inserted-later", ("untrust", "trust"))
        .application("junos-telnet")
        .then("deny");
    let config = Config::from_str_named(&format!("{blocker}{}", *CONFIG), "test").unwrap();
    let reloaded = Ruleset::compile(Arc::new(config), 2);
    assert_eq!(reloaded.config.policies[0].name, "blocker-inserted-later");
    w.adopt(&reloaded);
    let d = w.process(&reloaded, &screens, &flow(2), UNTRUST, 2 * S);
    assert_eq!(
        d.rule,
        RuleRef::Policy(1),
        "allow-web is policy 1 in generation 2"
    );

    let mut closed = Vec::new();
    w.expire(&reloaded, &screens, 1000 * S, usize::MAX, &mut |e| {
        if let Event::SessionClose(c) = e {
            closed.push((c.key.src, c.record.policy, c.record.session_generation));
        }
    });
    closed.sort();
    assert_eq!(
        closed,
        [
            (v4(192, 0, 2, 1), 0, 1), // allow-web as generation 1 numbered it
            (v4(192, 0, 2, 2), 1, 2), // allow-web as generation 2 numbers it
        ]
    );
}

#[test]
fn sessions_of_the_default_policy_carry_its_event_id() {
    let text = CONFIG.replace(
        "[default-policy]\nthen = \"deny\"",
        "[default-policy]\nthen = \"permit\"",
    );
    let config = Config::from_str_named(&text, "test").unwrap();
    let rules = Ruleset::compile(Arc::new(config), 1);
    let (screens, mut w) = (ScreenState::new(1024), Worker::new(0, &rules));
    let frame = udp(v4(192, 0, 2, 7), v4(198, 51, 100, 7), 4000, 9999, &[0; 8]);
    let first = w.process(&rules, &screens, &frame, UNTRUST, S);
    assert_eq!(first.rule, RuleRef::DefaultPolicy);
    // The second packet hits the session: still the default policy
    // (it named no policy at all before, and `policy_name` panicked).
    let second = w.process(&rules, &screens, &frame, UNTRUST, 2 * S);
    assert_eq!(second.stage, Stage::Session);
    assert_eq!(second.rule, RuleRef::DefaultPolicy);
    assert_eq!(rules.policy_name(second.rule), "default-policy");
    let (_, s) = w.sessions.iter().next().expect("one session");
    assert_eq!(s.meta.policy, rules.default_policy_id());
    assert_eq!(
        rules.default_policy_id() as usize,
        rules.config.policies.len()
    );
}

#[test]
fn reject_answers_parse_back_with_valid_checksums() {
    let (rules, screens, mut w) = setup("");
    let (c, s) = (v4(192, 0, 2, 1), v4(10, 1, 0, 10));
    let syn = tcp(c, s, 40000, 23, TcpFlags::SYN, &[]);
    let d = w.process(&rules, &screens, &syn, UNTRUST, S);
    assert_eq!(
        (d.verdict, d.reason),
        (Verdict::Reject, Reason::PolicyReject)
    );
    assert_eq!(names(&d), vec!["policy_deny"]);
    let mut out = [0u8; 1500];
    let n = build_reject(&syn, &d.packet.unwrap(), &mut out).unwrap();
    let Ok(Parsed::Ip(rst)) = wire::parse_verified(&out[..n]) else {
        panic!("RST must parse")
    };
    assert_eq!(
        (rst.src, rst.dst, rst.src_port, rst.dst_port),
        (s, c, 23, 40000)
    );
    assert!(rst.tcp_flags.0 & TcpFlags::RST.0 != 0);
    let l4 = &out[rst.l4_offset as usize..n];
    let sum =
        wire::checksum::pseudo_header(rst.version, rst.src, rst.dst, proto::TCP, l4.len() as u32);
    assert!(wire::checksum::verify_with(sum, l4), "TCP checksum");

    let ntp = udp(c, s, 5000, 123, &[0; 48]);
    let d = w.process(&rules, &screens, &ntp, UNTRUST, S);
    assert_eq!(d.verdict, Verdict::Reject);
    let n = build_reject(&ntp, &d.packet.unwrap(), &mut out).unwrap();
    let Ok(Parsed::Ip(icmp)) = wire::parse_verified(&out[..n]) else {
        panic!("ICMP must parse")
    };
    assert_eq!(
        (icmp.protocol, icmp.icmp_type, icmp.icmp_code, icmp.dst),
        (proto::ICMP, 3, 13, c)
    );
}

#[test]
fn a_full_session_table_refuses_and_counts() {
    let (rules, screens, mut w) = setup("[flow]\nsession-capacity = 4\n");
    let s = v4(10, 1, 0, 10);
    let reasons: Vec<Reason> = (0..6u8)
        .map(|i| {
            w.process(
                &rules,
                &screens,
                &udp(v4(192, 0, 2, i), s, 5000, 53, &[0; 8]),
                UNTRUST,
                S,
            )
            .reason
        })
        .collect();
    assert_eq!(reasons[..4], [Reason::PolicyPermit; 4]);
    assert_eq!(reasons[4..], [Reason::SessionTableFull; 2]);
    assert_eq!(w.sessions.refused, 2);
    assert_eq!(w.sessions.len(), 4);
    assert_eq!(w.counters.dropped[DropReason::SessionTableFull.index()], 2);
}

#[test]
fn malformed_frames_are_counted_and_handled_by_policy() {
    let (rules, screens, mut w) = setup("");
    let d = w.process(&rules, &screens, &[0u8; 9], UNTRUST, S);
    assert_eq!(
        (d.verdict, d.stage, d.reason.name()),
        (Verdict::Drop, Stage::Parse, "truncated_ethernet")
    );
    assert_eq!(
        w.counters.malformed[Malformed::TruncatedEthernet as usize],
        1
    );
    let (rules, screens, mut w) = setup("[flow]\nmalformed = \"forward\"\n");
    let d = w.process(&rules, &screens, &[0u8; 9], UNTRUST, S);
    assert_eq!(d.verdict, Verdict::Forward { egress: TRUST });
    let _ = ping;
}

/// Thousands of policies: the classifier's verdict equals evaluating
/// every policy in order, on randomized traffic.
#[test]
fn thousands_of_policies_agree_with_reference_evaluation() {
    let mut rng = Rng::new(99);
    let mut text = String::from(
        "[[interface]]\nname = \"a\"\ndevice = \"net_null0\"\nzone = \"z0\"\npeer = \"b\"\n\
         [[interface]]\nname = \"b\"\ndevice = \"net_null1\"\nzone = \"z1\"\n\
         [zone.z0]\n[zone.z1]\n[zone.z2]\n[address-book]\n",
    );
    for i in 0..400 {
        let len = 16 + rng.below(17);
        text += &format!(
            "n{i} = [\"10.{}.{}.0/{len}\", \"2001:db8:{:x}::/48\"]\n",
            rng.below(8),
            rng.below(256),
            rng.below(64)
        );
    }
    text += "[application]\n";
    for i in 0..50 {
        let lo = rng.below(2000);
        let proto = ["tcp", "udp"][rng.below(2) as usize];
        text += &format!(
            "app{i} = {{ protocol = \"{proto}\", destination-port = \"{lo}-{}\" }}\n",
            lo + rng.below(100)
        );
    }
    let zones = ["z0", "z1", "z2", "any"];
    for i in 0..3000 {
        let addr = |rng: &mut Rng| {
            if rng.below(6) == 0 {
                "any".to_string()
            } else {
                format!("n{}", rng.below(400))
            }
        };
        let app = if rng.below(5) == 0 {
            "any".to_string()
        } else {
            format!("app{}", rng.below(50))
        };
        let then = ["permit", "deny", "reject"][rng.below(3) as usize];
        let from = zones[rng.below(4) as usize];
        let to = zones[rng.below(4) as usize];
        let (source, first, second) = (addr(&mut rng), addr(&mut rng), addr(&mut rng));
        text += &configs::policy(&format!("p{i}"), (from, to))
            .source(&source)
            .destinations(&[&first, &second])
            .application(&app)
            .then(then)
            .to_string();
    }
    let config = Config::from_str_named(&text, "generated").unwrap();
    assert_eq!(config.policies.len(), 3000);
    let table = PolicyTable::compile(&config);
    let mut matched = 0;
    for _ in 0..5000 {
        let src = v4(
            10,
            rng.below(8) as u8,
            rng.below(256) as u8,
            rng.below(256) as u8,
        );
        let dst = v4(
            10,
            rng.below(8) as u8,
            rng.below(256) as u8,
            rng.below(256) as u8,
        );
        let port = rng.below(2200) as u16;
        let frame = if rng.below(2) == 0 {
            tcp(src, dst, 40000, port, TcpFlags::SYN, &[])
        } else {
            udp(src, dst, 40000, port, &[])
        };
        let Ok(Parsed::Ip(pkt)) = parse(&frame) else {
            unreachable!()
        };
        let (from, to) = (rng.below(3) as usize, rng.below(3) as usize);
        let fast = table.lookup(from, to, &pkt);
        assert_eq!(fast, table.lookup_linear(&config, from, to, &pkt));
        matched += usize::from(fast != PolicyMatch::Default);
    }
    assert!(matched > 500, "the traffic hits rules ({matched})");
}

/// A clock that advances 10 per read, so each stage boundary is visible.
fn ticking_clock() -> u64 {
    use std::sync::atomic::AtomicU64;
    static T: AtomicU64 = AtomicU64::new(0);
    T.fetch_add(10, Ordering::Relaxed)
}

#[test]
fn every_stage_is_timed_once_per_burst() {
    use rampart_pipeline::prefetch::NoPrefetch;
    let (rules, screens, mut w) = setup("");
    assert_eq!(w.stage_cycles(), StageCycles::default(), "off by default");
    w.measure_stages(ticking_clock);
    let (c, s) = (v4(192, 0, 2, 1), v4(10, 1, 0, 10));
    let syn = tcp(c, s, 40000, 80, TcpFlags::SYN, &[]);
    let dns = udp(c, s, 1, 53, &[]);
    let mut out = [Decision::BLANK; 2];
    let frames = [dns.as_slice(), syn.as_slice()];
    w.process_burst::<NoPrefetch>(&rules, &screens, &frames, UNTRUST, S, &mut out, false);
    let t = w.stage_cycles();
    assert_eq!(t.samples, 2, "every packet of the burst");
    let stage = |name: &str| t.cycles[Stage::from_name(name).unwrap().index()];
    // 10 per clock read, one read per stage boundary: the session
    // stage is two loops (lookup, then the flow decisions).
    for name in ["parse", "screen", "policy", "filter-output"] {
        assert_eq!(stage(name), 10, "{name}: {t:?}");
    }
    assert_eq!(stage("session"), 20, "{t:?}");
    assert_eq!(stage("filter-input"), 0, "no input filter configured");
    assert_eq!(out[1].reason, Reason::PolicyPermit);
}
