use super::*;
use proptest::prelude::*;

const FULL: &str = include_str!("../../tests/config/full.toml");
const EXAMPLE: &str = include_str!("../../tests/config/interfaces-example.toml");

/// Two peered interfaces in two zones; error tests append to it.
const BASE: &str = r#"
[[interface]]
name = "ge-0/0/0"
device = "net_ring0"
zone = "untrust"
peer = "ge-0/0/1"

[[interface]]
name = "ge-0/0/1"
device = "net_ring1"
zone = "trust"

[zone.untrust]
[zone.trust]
"#;

fn load(text: &str) -> Result<Config, ConfigErrors> {
    Config::from_str_named(text, "test.toml")
}

fn errors(text: &str) -> ConfigErrors {
    match load(text) {
        Ok(_) => panic!("config loaded but errors were expected:\n{text}"),
        Err(e) => e,
    }
}

/// 1-based line of the first occurrence of `needle`.
fn line_of(text: &str, needle: &str) -> u32 {
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("'{needle}' not in text"));
    text[..at].lines().count() as u32 + u32::from(text[..at].ends_with('\n') || at == 0)
}

/// Asserts exactly one error, at the line of `needle`, for `field`,
/// whose message contains `message`; returns it.
fn expect_one(text: &str, needle: &str, field: &str, message: &str) -> ConfigError {
    let all = errors(text);
    assert_eq!(all.len(), 1, "expected one error, got:\n{all}");
    let e = all.errors[0].clone();
    let line = line_of(text, needle);
    assert_eq!(e.file, "test.toml");
    assert_eq!((e.line, e.field.as_str()), (line, field), "{e}");
    assert!(
        e.message.contains(message),
        "message of {e} lacks {message:?}"
    );
    let shown = e.to_string();
    assert!(
        shown.starts_with(&format!("test.toml:{line}:{}: {field}: ", e.column)),
        "{shown}"
    );
    e
}

fn with_base(extra: &str) -> String {
    format!("{BASE}{extra}")
}

#[test]
fn line_of_counts_lines() {
    assert_eq!(line_of("a\nb\nc", "a"), 1);
    assert_eq!(line_of("a\nb\nc", "b"), 2);
    assert_eq!(line_of("a\nbx\nc", "x"), 2);
    assert_eq!(line_of("a\nb\nc", "c"), 3);
}

#[test]
fn base_loads() {
    let c = load(BASE).unwrap();
    assert_eq!(c.interfaces.len(), 2);
    assert_eq!(c.interfaces[0].peer, Some(1));
    assert_eq!(c.interfaces[1].peer, Some(0), "peers are symmetric");
    assert_eq!(c.zones[0].interfaces, [0]);
    assert_eq!(c.dataplane, Dataplane::default());
    assert_eq!(c.events, EventsConfig::default());
    assert_eq!(c.default_policy, DefaultPolicy::default());
}

/// Issue 26: an empty file was `ok (0 interfaces ...)` and `run` started
/// a dataplane with nothing to do. It is refused; one interface is
/// enough, and everything else takes its default.
#[test]
fn an_empty_config_is_refused_and_one_interface_loads_with_defaults() {
    let e = errors("").errors;
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!((e[0].line, e[0].field.as_str()), (1, "interface"));
    assert!(e[0].message.contains("at least one"), "{}", e[0].message);
    let e = errors("# only a comment\n[flow]\n").errors;
    assert!(e.iter().any(|e| e.field == "interface"));
    let c = load("[[interface]]\nname = \"a\"\ndevice = \"net_null0\"\nzone = \"z\"\n[zone.z]\n")
        .unwrap();
    assert_eq!(c.dataplane.workers, 1);
    assert_eq!(c.events.socket, PathBuf::from("/run/rampart/events.sock"));
    assert_eq!(
        c.events.control_socket,
        PathBuf::from("/run/rampart/control.sock")
    );
    assert_eq!(c.events.ring_size, 16384);
    assert_eq!(c.events.snippet_bytes, 64);
    assert_eq!(c.events.rate_limit, RateLimits::default());
    assert_eq!(c.default_policy.action, PolicyAction::Deny);
    assert!(!c.default_policy.log);
    assert_eq!(c.applications.len(), BUILTIN_APPLICATIONS.len());
}

#[test]
fn interfaces_md_example_is_an_excerpt() {
    // Verbatim, the example names a peer, a zone and a filter it does not
    // define; exactly those are reported.
    let all = errors(EXAMPLE);
    let fields: Vec<&str> = all.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "interface[ge-0/0/0].peer",
            "interface[ge-0/0/0].output_filter",
            "policy[allow-web].to-zone"
        ],
        "{all}"
    );
}

#[test]
fn interfaces_md_example_loads() {
    let completed = format!(
        "{EXAMPLE}\n[[interface]]\nname = \"ge-0/0/1\"\ndevice = \"net_pcap1,rx_pcap=in1.pcap,tx_pcap=out1.pcap\"\nzone = \"trust\"\n\n[zone.trust]\n\n[[filter]]\nname = \"egress\"\n"
    );
    let c = load(&completed).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.dataplane.workers, 1);
    assert_eq!(c.dataplane.eal, ["--no-pci", "-l", "0-1"]);
    assert_eq!(c.events.rate_limit.get(EventType::PolicyDeny), Some(100000));
    assert_eq!(c.events.rate_limit.get(EventType::ScreenDrop), None);
    let ge0 = &c.interfaces[0];
    assert_eq!(ge0.name, "ge-0/0/0");
    assert!(!ge0.is_pci());
    assert_eq!(ge0.port_name(), "net_pcap0");
    assert_eq!(ge0.peer, Some(1));
    assert_eq!(c.interfaces[1].peer, Some(0));
    assert_eq!(ge0.input_filter, c.filter_id("protect"));
    assert_eq!(ge0.output_filter, c.filter_id("egress"));
    let untrust = &c.zones[ge0.zone];
    assert_eq!(untrust.name, "untrust");
    let edge = &c.screens[untrust.screen.unwrap()];
    let on = |o: ScreenOption| edge.stateless(o) == Some(true);
    assert!(
        on(ScreenOption::Land)
            && on(ScreenOption::SynFin)
            && on(ScreenOption::UnknownProtocol)
            && !on(ScreenOption::IcmpLarge)
    );
    assert_eq!(
        edge.syn_flood,
        Some(SynFlood {
            attack_threshold: 1000,
            source_threshold: 4000,
            destination_threshold: 4000,
            ..SynFlood::default()
        })
    );
    assert_eq!(edge.port_scan, Some(Threshold { threshold: 5000 }));
    assert_eq!(edge.limit_session.unwrap().source_ip_based, Some(1024));
    let servers = c.address_book.get("servers").unwrap();
    assert_eq!(
        servers,
        vec![
            "10.1.0.0/24".parse::<Prefix>().unwrap(),
            "2001:db8:1::/64".parse().unwrap()
        ]
    );
    let p = &c.policies[0];
    assert_eq!(p.name, "allow-web");
    assert!(!p.global);
    assert_eq!(p.from_zone, c.zone_id("untrust"));
    assert_eq!(p.to_zone, c.zone_id("trust"));
    assert_eq!(p.source, [Prefix::ANY]);
    assert_eq!(p.destination_address, ["web"]);
    assert_eq!(p.destination.len(), 2);
    assert_eq!(c.applications[p.applications[0]].name, "http");
    assert_eq!(
        c.applications[p.applications[0]].terms,
        [AppMatch {
            protocol: Some(proto::TCP),
            dst_ports: PortRange::single(80),
            ..AppMatch::ANY
        }]
    );
    assert_eq!(p.action, PolicyAction::Permit);
    assert_eq!(
        p.log,
        PolicyLog {
            session_init: true,
            session_close: true
        }
    );
    assert!(p.count);
    assert_eq!(
        c.default_policy,
        DefaultPolicy {
            action: PolicyAction::Deny,
            log: true
        }
    );
    let protect = &c.filters[c.filter_id("protect").unwrap()];
    let term = &protect.terms[0];
    assert_eq!(term.name, "no-telnet");
    assert_eq!(term.from.protocol, Some(vec![proto::TCP]));
    assert_eq!(
        term.from.destination_port,
        Some(vec![PortRange::single(23)])
    );
    assert_eq!(
        term.then,
        TermAction {
            action: FilterAction::Discard,
            log: true,
            count: true
        }
    );
    let high = &c.applications[c.application_id("high").unwrap()];
    assert_eq!(
        high.terms[0].dst_ports,
        PortRange {
            lo: 1024,
            hi: 65535
        }
    );
}

#[test]
fn full_fixture_loads() {
    let c = load(FULL).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.dataplane.workers, 2);
    assert_eq!(c.events.ring_size, 4096);
    assert_eq!(c.events.snippet_bytes, 128);
    assert_eq!(
        c.events.rate_limit.get(EventType::SessionClose),
        Some(200000)
    );
    assert_eq!(c.interfaces.len(), 4);
    assert!(c.interfaces[2].is_pci() && c.interfaces[3].is_pci());
    assert_eq!(c.interfaces[0].peer, Some(1));
    assert_eq!(c.interfaces[1].peer, Some(0));
    assert_eq!(c.interfaces[2].peer, Some(3));
    assert_eq!(c.interfaces[3].peer, Some(2));
    let trust = c.zone_id("trust").unwrap();
    assert_eq!(c.zones[trust].interfaces, [1, 3]);
    assert_eq!(c.zones[trust].screen, None);
    let inner = &c.screens[c.screen_id("inner").unwrap()];
    assert_eq!(inner.syn_flood, Some(SynFlood::default()));
    assert_eq!(
        inner.icmp_flood,
        Some(Threshold {
            threshold: Threshold::DEFAULT_ICMP_FLOOD
        })
    );
    assert!(inner.alarm_without_drop);
    let edge = &c.screens[c.screen_id("edge").unwrap()];
    assert_eq!(edge.syn_flood.unwrap().timeout, 10);
    assert!(
        edge.stateless(ScreenOption::StrictSourceRouteOption) == Some(true)
            && edge.stateless(ScreenOption::BlockFrag) == Some(false)
    );

    // Address sets flatten, deduplicated, in order.
    let all = c.address_book.get("everything-internal").unwrap();
    assert_eq!(all.len(), 5);
    assert_eq!(
        all[0],
        "192.168.0.0/16".parse().unwrap(),
        "own prefixes first"
    );
    assert_eq!(c.address_book.get("mgmt").unwrap().len(), 1);

    // Application sets flatten across built-ins.
    let all_web = &c.applications[c.application_id("all-web").unwrap()];
    let ports: Vec<u16> = all_web.terms.iter().map(|t| t.dst_ports.lo).collect();
    assert_eq!(ports, [80, 8080, 443]);
    let unreachable = &c.applications[c.application_id("unreachable").unwrap()];
    assert_eq!(unreachable.terms[0].icmp_type, Some(3));
    assert_eq!(unreachable.terms[0].icmp_code, Some(4));
    let icmp = |t, c| crate::classify::Query {
        protocol: proto::ICMP,
        icmp_type: t,
        icmp_code: c,
        ..Default::default()
    };
    assert!(crate::classify::app_matches(
        &unreachable.terms[0],
        &icmp(3, 4)
    ));
    assert!(!crate::classify::app_matches(
        &unreachable.terms[0],
        &icmp(3, 1)
    ));

    let dns = &c.policies[c.policy_id("allow-dns").unwrap()];
    assert_eq!(dns.destination, [ANY_IPV4]);
    assert_eq!(dns.source.len(), 5, "web (2) + db (2) + literal");
    assert!(dns.log.session_init && dns.log.session_close);
    let mgmt = &c.policies[c.policy_id("deny-mgmt").unwrap()];
    assert!(mgmt.global && mgmt.from_zone.is_none() && mgmt.to_zone.is_none());
    assert_eq!(mgmt.action, PolicyAction::Reject);
    assert_eq!(
        mgmt.log,
        PolicyLog {
            session_init: true,
            session_close: false
        }
    );
    let ping = &c.policies[c.policy_id("dmz-ping").unwrap()];
    assert!(ping.global);
    assert_eq!(ping.to_zone, c.zone_id("dmz"));
    assert_eq!(ping.source.len(), 96);
    assert_eq!(ping.applications.len(), 4);

    let protect = &c.filters[0];
    assert_eq!(protect.terms.len(), 6);
    let spoof = &protect.terms[1].from;
    let src = spoof.source_address.as_ref().unwrap();
    assert!(AddrMatch::matches_list(src, Addr::from_ipv4([10, 5, 0, 1])));
    assert!(!AddrMatch::matches_list(
        src,
        Addr::from_ipv4([10, 99, 0, 1])
    ));
    assert!(!AddrMatch::matches_list(
        src,
        Addr::from_ipv4([11, 0, 0, 1])
    ));
    let syn = &protect.terms[2].from;
    assert_eq!(
        syn.tcp_flags,
        Some(TcpFlags {
            required: tcp_flag::SYN,
            forbidden: tcp_flag::ACK
        })
    );
    assert_eq!(
        syn.destination_port,
        Some(vec![
            PortRange {
                lo: 1024,
                hi: 65535
            },
            PortRange::single(80)
        ])
    );
    assert_eq!(syn.source_port, Some(vec![PortRange::single(1234)]));
    assert_eq!(protect.terms[3].from.icmp_type, Some(vec![8, 0]));
    let frag = &protect.terms[4].from;
    assert_eq!(frag.is_fragment, Some(true));
    assert_eq!(frag.first_fragment, Some(false));
    assert_eq!(frag.dscp, Some(vec![46, 10, 0]));
    assert!(protect.terms[5].from.is_empty());
    let egress = &c.filters[1].terms[0].from;
    assert_eq!(egress.protocol, Some(vec![proto::TCP, proto::UDP, 132]));
    assert_eq!(
        egress.tcp_flags,
        Some(TcpFlags {
            required: tcp_flag::RST,
            forbidden: tcp_flag::FIN
        })
    );
    assert_eq!(egress.destination_address.as_ref().unwrap().len(), 96);
}

#[test]
fn load_reads_files_and_reports_io_errors() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/config/full.toml");
    assert!(Config::load(&path).is_ok());
    let missing = Path::new("/nonexistent/rampart.toml");
    let e = Config::load(missing).unwrap_err();
    assert_eq!(e.len(), 1);
    assert!(
        e.to_string()
            .starts_with("/nonexistent/rampart.toml: cannot read config"),
        "{e}"
    );
}

#[test]
fn any_ipv6_is_the_complement_of_ipv4() {
    let v6 = any_ipv6();
    let in_v6 = |a: Addr| v6.iter().any(|p| p.contains(a));
    assert!(!in_v6(Addr::from_ipv4([10, 0, 0, 1])));
    assert!(!in_v6(Addr::from_ipv4([255, 255, 255, 255])));
    assert!(in_v6(Addr(1)));
    assert!(in_v6(Addr(u128::MAX)));
    assert!(in_v6(Addr(ANY_IPV4.addr.0 - 1)));
    assert!(in_v6(Addr(ANY_IPV4.addr.0 + (1 << 32))));
}

// ---------------------------------------------------------------------------
// One test per error class.

#[test]
fn toml_syntax_error_has_position() {
    let text = "[dataplane]\nworkers = = 2\n";
    let all = errors(text);
    assert_eq!(all.len(), 1);
    let e = &all.errors[0];
    assert_eq!((e.line, e.field.as_str()), (2, ""));
    assert!(e.column > 1, "{e}");
    assert!(e.to_string().starts_with("test.toml:2:"), "{e}");
}

#[test]
fn toml_error_without_a_message_names_the_character() {
    // Found by the config_load fuzz target: the TOML parser gives an empty
    // message for a control character in a comment.
    for (text, line, col) in [
        ("# a\0b\nworkers = 1\n", 1, 4),
        ("[dataplane]\n#\u{1}\n", 2, 2),
    ] {
        let all = errors(text);
        assert_eq!(all.len(), 1);
        let e = &all.errors[0];
        assert_eq!((e.line, e.column), (line, col), "{e}");
        assert!(e.message.contains("control character U+"), "{e}");
    }
}

#[test]
fn names_quoted_in_errors_cannot_split_an_error_line() {
    // Found by the config_load fuzz target: a TOML string can hold a
    // newline; quoted in a message it split the error over two lines
    // (check-config output, the daemon log, config_reject events).
    let text = with_base(
        "[[policy]]\nname = \"p\\r1\"\nfrom-zone = \"untrust\"\nto-zone = \"trust\"\n\
         source-address = [\"any\"]\ndestination-address = [\"\\nweb\\u0007\"]\n\
         application = [\"any\"]\nthen = \"permit\"\n",
    );
    let all = errors(&text);
    let shown = all.to_string();
    assert_eq!(shown.lines().count(), all.len(), "{shown}");
    assert!(
        shown.contains("unknown address-book entry '\\nweb\\u{7}'"),
        "{shown}"
    );
    for e in &all {
        assert!(!e.to_string().chars().any(char::is_control), "{e:?}");
    }
}

#[test]
fn unknown_key() {
    let text = with_base("[dataplane]\nworkerz = 2\n");
    expect_one(
        &text,
        "workerz",
        "dataplane.workerz",
        "did you mean 'workers'?",
    );
    let text = with_base("[events]\nring-size = 64\n");
    expect_one(
        &text,
        "ring-size",
        "events.ring-size",
        "did you mean 'ring_size'?",
    );
    let text = BASE.replace("peer = ", "pear = ");
    expect_one(
        &text,
        "pear",
        "interface[ge-0/0/0].pear",
        "unknown key 'pear'",
    );
    let text = with_base("[frobnicate]\nx = 1\n");
    expect_one(
        &text,
        "[frobnicate]",
        "frobnicate",
        "unknown key 'frobnicate'",
    );
}

#[test]
fn bad_type() {
    let text = with_base("[dataplane]\nworkers = \"two\"\n");
    expect_one(
        &text,
        "\"two\"",
        "dataplane.workers",
        "expected an integer, found a string",
    );
    let text = with_base("[default-policy]\nlog = \"yes\"\n");
    expect_one(&text, "\"yes\"", "default-policy.log", "expected a boolean");
    let text = "[interface]\nname = \"x\"\n";
    expect_one(
        text,
        "[interface]",
        "interface",
        "expected an array of tables ([[interface]]), found a table",
    );
}

#[test]
fn missing_required_field() {
    let text = with_base("[[interface]]\nname = \"ge-0/0/2\"\nzone = \"trust\"\n");
    expect_one(
        &text,
        "[[interface]]\nname = \"ge-0/0/2\"",
        "interface[ge-0/0/2].device",
        "missing required field 'device'",
    );
    let text = with_base(
        "[[policy]]\nname = \"p\"\nsource-address = \"any\"\ndestination-address = \"any\"\napplication = \"any\"\n",
    );
    expect_one(
        &text,
        "[[policy]]",
        "policy[p].then",
        "missing required field 'then'",
    );
}

#[test]
fn unknown_zone() {
    let text = BASE.replace("zone = \"trust\"", "zone = \"trsut\"");
    expect_one(
        &text,
        "\"trsut\"",
        "interface[ge-0/0/1].zone",
        "unknown zone 'trsut' (did you mean 'trust'?)",
    );
}

#[test]
fn unknown_peer() {
    let text = BASE.replace("peer = \"ge-0/0/1\"", "peer = \"ge-0/0/9\"");
    expect_one(
        &text,
        "\"ge-0/0/9\"",
        "interface[ge-0/0/0].peer",
        "unknown interface 'ge-0/0/9'",
    );
    let text = BASE.replace("peer = \"ge-0/0/1\"", "peer = \"ge-0/0/0\"");
    expect_one(
        &text,
        "peer =",
        "interface[ge-0/0/0].peer",
        "cannot be its own peer",
    );
}

#[test]
fn asymmetric_peer() {
    let text = with_base(
        "[[interface]]\nname = \"ge-0/0/2\"\ndevice = \"net_ring2\"\nzone = \"trust\"\npeer = \"ge-0/0/0\"\n",
    );
    // ge-0/0/0 names ge-0/0/1; ge-0/0/2 names ge-0/0/0.
    expect_one(
        &text,
        "peer = \"ge-0/0/0\"",
        "interface[ge-0/0/2].peer",
        "asymmetric peers",
    );
    // Two interfaces naming the same peer that names neither.
    let text = BASE.replace("zone = \"untrust\"\npeer = \"ge-0/0/1\"", "zone = \"untrust\"")
        + "[[interface]]\nname = \"a\"\ndevice = \"net_ring2\"\nzone = \"trust\"\npeer = \"ge-0/0/0\"\n"
        + "[[interface]]\nname = \"b\"\ndevice = \"net_ring3\"\nzone = \"trust\"\npeer = \"ge-0/0/0\"\n";
    let all = errors(&text);
    assert_eq!(all.len(), 1, "{all}");
    assert_eq!(all.errors[0].field, "interface[b].peer");
    assert!(
        all.errors[0].message.contains("already the peer of 'a'"),
        "{all}"
    );
}

#[test]
fn unknown_filter() {
    let text = BASE.replace(
        "zone = \"trust\"",
        "zone = \"trust\"\ninput_filter = \"protect\"",
    );
    let e = expect_one(
        &text,
        "\"protect\"",
        "interface[ge-0/0/1].input_filter",
        "unknown filter 'protect'",
    );
    assert!(e.message.contains("no filter is defined"), "{e}");
}

#[test]
fn unknown_screen() {
    let text = BASE.replace("[zone.trust]", "[zone.trust]\nscreen = \"edge\"");
    expect_one(
        &text,
        "\"edge\"",
        "zone.trust.screen",
        "unknown screen 'edge'",
    );
}

#[test]
fn unknown_address_and_application() {
    let policy = "[address-book]\nweb = [\"10.1.0.0/24\"]\n[[policy]]\nname = \"p\"\nfrom-zone = \"untrust\"\nto-zone = \"trust\"\nsource-address = [\"any\"]\ndestination-address = [\"web\", \"webb\"]\napplication = [\"junos-htp\"]\nthen = \"permit\"\n";
    let text = with_base(policy);
    let all = errors(&text);
    assert_eq!(all.len(), 2, "{all}");
    let (a, b) = (&all.errors[0], &all.errors[1]);
    assert_eq!(
        (a.line, a.field.as_str()),
        (line_of(&text, "\"webb\""), "policy[p].destination-address")
    );
    assert!(
        a.message
            .contains("unknown address-book entry 'webb' (did you mean 'web'?)"),
        "{a}"
    );
    assert_eq!(
        (b.line, b.field.as_str()),
        (line_of(&text, "junos-htp"), "policy[p].application")
    );
    assert!(b.message.contains("did you mean 'junos-http'?"), "{b}");
    // Address-set members and filter addresses are checked too.
    let text = with_base("[address-book]\nset = { address-set = [\"nope\"] }\n");
    expect_one(
        &text,
        "\"nope\"",
        "address-book.set",
        "unknown address-book entry 'nope'",
    );
    let text = with_base(
        "[[filter]]\nname = \"f\"\n[[filter.term]]\nname = \"t\"\nfrom = { source-address = [\"nope except\"] }\nthen = { action = \"accept\" }\n",
    );
    expect_one(
        &text,
        "\"nope except\"",
        "filter[f].term[t].from.source-address",
        "unknown address-book entry",
    );
}

#[test]
fn duplicate_names() {
    let text =
        with_base("[[interface]]\nname = \"ge-0/0/1\"\ndevice = \"net_ring7\"\nzone = \"trust\"\n");
    let e = expect_one(
        &text,
        "name = \"ge-0/0/1\"\ndevice = \"net_ring7\"",
        "interface[ge-0/0/1].name",
        "duplicate interface name",
    );
    assert!(e.message.contains("first defined at line 9"), "{e}");
    let policy = "[[policy]]\nname = \"p\"\nsource-address = \"any\"\ndestination-address = \"any\"\napplication = \"any\"\nthen = \"deny\"\n";
    let text = with_base(&format!("{policy}{policy}"));
    let all = errors(&text);
    assert_eq!(all.len(), 1, "{all}");
    assert_eq!(all.errors[0].field, "policy[p].name");
    let second = text.rfind("name = \"p\"").unwrap();
    assert_eq!(
        all.errors[0].line,
        text[..second].lines().count() as u32 + 1
    );
    let term = "[[filter.term]]\nname = \"t\"\nthen = { action = \"accept\" }\n";
    let text = with_base(&format!("[[filter]]\nname = \"f\"\n{term}{term}"));
    let all = errors(&text);
    assert_eq!(all.len(), 1, "{all}");
    assert_eq!(all.errors[0].field, "filter[f].term[t].name");
    // The same DPDK port twice.
    let text = BASE.replace("net_ring1", "net_ring0,nodeaction=r0:0:CREATE");
    expect_one(
        &text,
        "\"net_ring0,nodeaction=r0:0:CREATE\"",
        "interface[ge-0/0/1].device",
        "already used by interface 'ge-0/0/0'",
    );
}

#[test]
fn zero_workers() {
    let text = with_base("[dataplane]\nworkers = 0\n");
    expect_one(
        &text,
        "workers = 0",
        "dataplane.workers",
        "must be at least 1, found 0",
    );
}

#[test]
fn bad_prefix() {
    let text = with_base("[address-book]\nweb = [\"10.1.0.0/24\", \"10.0.0.0/33\"]\n");
    expect_one(&text, "\"10.0.0.0/33\"", "address-book.web", "bad prefix");
    let text = with_base(
        "[[policy]]\nname = \"p\"\nsource-address = \"300.1.1.1\"\ndestination-address = \"any\"\napplication = \"any\"\nthen = \"deny\"\n",
    );
    expect_one(&text, "300.1.1.1", "policy[p].source-address", "bad prefix");
}

#[test]
fn bad_port_range() {
    let text =
        with_base("[application]\nweird = { protocol = \"tcp\", destination-port = \"90-80\" }\n");
    expect_one(
        &text,
        "\"90-80\"",
        "application.weird.destination-port",
        "bad port range '90-80'",
    );
    let text =
        with_base("[application]\nweird = { protocol = \"tcp\", destination-port = \"70000\" }\n");
    expect_one(
        &text,
        "\"70000\"",
        "application.weird.destination-port",
        "bad port range",
    );
    let text =
        with_base("[application]\nweird = { protocol = \"icmp\", destination-port = \"80\" }\n");
    expect_one(
        &text,
        "\"80\"",
        "application.weird.destination-port",
        "ports need protocol tcp, udp or sctp",
    );
}

#[test]
fn address_set_cycle() {
    let text = with_base("[address-book]\na = { address-set = [\"b\"] }\nb = { address-set = [\"c\"] }\nc = { address-set = [\"a\"] }\n");
    let e = expect_one(
        &text,
        "[\"a\"]",
        "address-book.c",
        "address-set cycle: a -> b -> c -> a",
    );
    assert!(e.to_string().contains("test.toml:"), "{e}");
    let text = with_base("[address-book]\nself = { address-set = [\"self\"] }\n");
    expect_one(
        &text,
        "[\"self\"]",
        "address-book.self",
        "cycle: self -> self",
    );
}

#[test]
fn bad_ring_size() {
    let text = with_base("[events]\nring_size = 1000\n");
    expect_one(
        &text,
        "1000",
        "events.ring_size",
        "must be a power of two, found 1000",
    );
    let text = with_base("[events]\nring_size = 32\n");
    expect_one(&text, "32", "events.ring_size", "must be at least 64");
    let text = with_base("[events]\nsnippet_bytes = 300\n");
    expect_one(&text, "300", "events.snippet_bytes", "must be at most 256");
}

/// A name that is no typo of a known one (`ssh`) gets the known names:
/// every predefined `junos-*` application and the file's own.
#[test]
fn unknown_application_lists_the_known_ones() {
    let policy = "[application]\nweb-alt = { protocol = \"tcp\", destination-port = \"8080\" }\n[[policy]]\nname = \"p\"\nfrom-zone = \"untrust\"\nto-zone = \"trust\"\nsource-address = [\"any\"]\ndestination-address = [\"any\"]\napplication = [\"ssh\"]\nthen = \"permit\"\n";
    let e = expect_one(
        &with_base(policy),
        "[\"ssh\"]",
        "policy[p].application",
        "unknown application 'ssh' (did you mean 'junos-ssh'? known: ",
    );
    for name in ["web-alt", "junos-http", "junos-ssh", "junos-icmp6-all"] {
        assert!(e.message.contains(name), "{name} missing: {e}");
    }
    // In an application set too.
    let text = with_base("[application]\nremote = { application-set = [\"rdp\"] }\n");
    let e = expect_one(
        &text,
        "[\"rdp\"]",
        "application.remote",
        "unknown application 'rdp' (known: ",
    );
    assert!(e.message.contains("junos-ssh"), "{e}");
}

/// An unknown screen option far from every known one lists them all.
#[test]
fn unknown_screen_option_lists_the_known_ones() {
    let text = with_base("[screen.edge]\nsmurf = true\n");
    let e = expect_one(
        &text,
        "smurf",
        "screen.edge.smurf",
        "unknown screen option 'smurf' (known: land, ",
    );
    for name in [
        "syn-flood",
        "limit-session",
        "tear-drop",
        "alarm-without-drop",
    ] {
        assert!(e.message.contains(name), "{name} missing: {e}");
    }
}

#[test]
fn unknown_screen_option_suggests() {
    let text = with_base("[screen.edge]\nland = true\nsyn-flod = { attack-threshold = 1 }\n");
    expect_one(
        &text,
        "syn-flod",
        "screen.edge.syn-flod",
        "unknown screen option 'syn-flod' (did you mean 'syn-flood'?)",
    );
    let text = with_base("[screen.edge]\nsyn-flood = { attack-treshold = 1 }\n");
    expect_one(
        &text,
        "attack-treshold",
        "screen.edge.syn-flood.attack-treshold",
        "did you mean 'attack-threshold'?",
    );
}

#[test]
fn bad_device() {
    let text = BASE.replace("net_ring1", "pcap1");
    expect_one(
        &text,
        "\"pcap1\"",
        "interface[ge-0/0/1].device",
        "PCI address",
    );
}

#[test]
fn filter_errors() {
    let term = |from: &str| {
        with_base(&format!(
            "[[filter]]\nname = \"f\"\n[[filter.term]]\nname = \"t\"\nfrom = {{ {from} }}\nthen = {{ action = \"discard\" }}\n"
        ))
    };
    let text = term("protocol = \"udp\", tcp-flags = \"syn\"");
    expect_one(
        &text,
        "from =",
        "filter[f].term[t].from.tcp-flags",
        "needs protocol tcp",
    );
    let text = term("tcp-flags = \"syn & !ak\"");
    expect_one(
        &text,
        "from =",
        "filter[f].term[t].from.tcp-flags",
        "did you mean 'ack'?",
    );
    let text = term("dscp = \"af99\"");
    expect_one(
        &text,
        "from =",
        "filter[f].term[t].from.dscp",
        "unknown DSCP name",
    );
    let text = term("protocol = \"tpc\"");
    expect_one(
        &text,
        "from =",
        "filter[f].term[t].from.protocol",
        "did you mean 'tcp'?",
    );
    let text = term("source-port = []");
    expect_one(
        &text,
        "from =",
        "filter[f].term[t].from.source-port",
        "must not be an empty list",
    );
    let text = term("flags = 1");
    expect_one(
        &text,
        "from =",
        "filter[f].term[t].from.flags",
        "unknown key 'flags'",
    );
    let text = with_base(
        "[[filter]]\nname = \"f\"\n[[filter.term]]\nname = \"t\"\nthen = { action = \"drop\" }\n",
    );
    expect_one(
        &text,
        "\"drop\"",
        "filter[f].term[t].then.action",
        "unknown action 'drop'",
    );
}

#[test]
fn policy_zone_any_and_literal_addresses() {
    let text = with_base(
        "[[policy]]\nname = \"g\"\nfrom-zone = \"any\"\nsource-address = [\"192.0.2.1\", \"2001:db8::/32\"]\ndestination-address = \"any\"\napplication = [\"junos-ssh\", \"junos-ssh\"]\nthen = \"permit\"\nlog = false\n",
    );
    let c = load(&text).unwrap();
    let p = &c.policies[0];
    assert!(p.global && p.from_zone.is_none() && p.to_zone.is_none());
    assert_eq!(p.source.len(), 2);
    assert_eq!(p.applications.len(), 1);
    assert_eq!(p.log, PolicyLog::default());
}

#[test]
fn reserved_names() {
    let text = with_base("[address-book]\nany = [\"10.0.0.0/8\"]\n");
    expect_one(&text, "any =", "address-book.any", "built in");
    let text = with_base("[application]\njunos-http = { protocol = \"tcp\" }\n");
    expect_one(&text, "junos-http =", "application.junos-http", "reserved");
}

#[test]
fn all_errors_are_reported_in_file_order() {
    let text = with_base(
        "[dataplane]\nworkers = 0\n[events]\nring_size = 100\nbogus = 1\n[zone.dmz]\nscreen = \"nope\"\n",
    );
    let all = errors(&text);
    let fields: Vec<&str> = all.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "dataplane.workers",
            "events.ring_size",
            "events.bogus",
            "zone.dmz.screen"
        ],
        "{all}"
    );
    let lines: Vec<u32> = all.iter().map(|e| e.line).collect();
    assert!(lines.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(all.to_string().lines().count(), 4);
}

#[test]
fn port_range_parsing() {
    assert_eq!("80".parse::<PortRange>(), Ok(PortRange::single(80)));
    assert_eq!(
        "1024-65535".parse::<PortRange>(),
        Ok(PortRange {
            lo: 1024,
            hi: 65535
        })
    );
    assert_eq!(
        " 1 - 2 ".parse::<PortRange>(),
        Ok(PortRange { lo: 1, hi: 2 })
    );
    assert!("2-1".parse::<PortRange>().is_err());
    assert!("a".parse::<PortRange>().is_err());
    assert!("1-2-3".parse::<PortRange>().is_err());
    assert!("65536".parse::<PortRange>().is_err());
    assert_eq!(PortRange { lo: 5, hi: 9 }.to_string(), "5-9");
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,300}") {
        let _ = load(&text);
    }

    #[test]
    fn tomlish_text_never_panics(text in "[\\[\\]a-z_.=\"{}, 0-9/:\n-]{0,300}") {
        let _ = load(&text);
    }

    #[test]
    fn mutated_full_config_never_panics(cut in 0..FULL.len(), len in 0usize..40, insert in "\\PC{0,8}") {
        let mut text: String = FULL.to_owned();
        let start = (0..=cut).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
        let end = (start + len).min(text.len());
        let end = (end..=text.len()).find(|&i| text.is_char_boundary(i)).unwrap_or(text.len());
        text.replace_range(start..end, &insert);
        match load(&text) {
            Ok(_) => {}
            Err(errors) => {
                prop_assert!(!errors.is_empty());
                for e in &errors {
                    prop_assert!(e.line >= 1 && e.column >= 1);
                }
            }
        }
    }
}

/// `[screen.X]` accepts exactly the names of [`ScreenOption`] (plus
/// `alarm-without-drop`), and each name sets its own option.
#[test]
fn screen_options_accepted_are_exactly_the_table() {
    for option in ScreenOption::ALL {
        let name = option.name();
        let value = match option {
            ScreenOption::LimitSession => "{ source-ip-based = 10 }",
            _ => "true",
        };
        let c = load(&with_base(&format!("[screen.edge]\n{name} = {value}\n")))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let s = &c.screens[0];
        let enabled: Vec<ScreenOption> = ScreenOption::ALL
            .into_iter()
            .filter(|&o| match o {
                ScreenOption::SynFlood => s.syn_flood.is_some(),
                ScreenOption::IcmpFlood => s.icmp_flood.is_some(),
                ScreenOption::UdpFlood => s.udp_flood.is_some(),
                ScreenOption::PortScan => s.port_scan.is_some(),
                ScreenOption::IpSweep => s.ip_sweep.is_some(),
                ScreenOption::LimitSession => s.limit_session.is_some(),
                _ => s.stateless(o).expect("stateless options have a flag"),
            })
            .collect();
        assert_eq!(enabled, [option], "{name} enables itself only");
        assert!(!s.alarm_without_drop);
        let near_names = [
            name.replace('-', "_"),
            format!("{name}s"),
            name.to_uppercase(),
        ];
        for near in near_names.into_iter().filter(|n| n != name) {
            let text = with_base(&format!("[screen.edge]\n{near} = true\n"));
            let e = expect_one(&text, &near, &format!("screen.edge.{near}"), "");
            assert!(e.message.contains("unknown screen option"), "{near}: {e}");
        }
    }
    let c = load(&with_base("[screen.edge]\nalarm-without-drop = true\n")).unwrap();
    assert!(c.screens[0].alarm_without_drop);
    assert!(ScreenOption::ALL
        .into_iter()
        .all(|o| c.screens[0].stateless(o) != Some(true)));
    assert_eq!(SCREEN_OPTIONS, ScreenOption::NAMES);
}

/// `[events.rate_limit]` accepts exactly the names of [`EventType`], and
/// each name limits its own type.
#[test]
fn rate_limit_keys_are_exactly_the_event_types() {
    for t in EventType::ALL {
        let name = t.name();
        let c = load(&with_base(&format!("[events.rate_limit]\n{name} = 7\n")))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        for other in EventType::ALL {
            let want = (other == t).then_some(7);
            assert_eq!(c.events.rate_limit.get(other), want, "{name}: {other:?}");
        }
    }
    let all: String = EventType::ALL
        .into_iter()
        .map(|t| format!("{} = {}\n", t.name(), 100 + t.index()))
        .collect();
    let c = load(&with_base(&format!("[events.rate_limit]\n{all}"))).unwrap();
    let limits = EventType::ALL.map(|t| c.events.rate_limit.get(t));
    assert_eq!(limits, [100, 101, 102, 103, 104, 105].map(Some));
    for near in [
        "policy-deny",
        "stats",
        "loss",
        "session_opens",
        "Screen_drop",
    ] {
        let text = with_base(&format!("[events.rate_limit]\n{near} = 1\n"));
        let e = expect_one(&text, near, &format!("events.rate_limit.{near}"), "");
        assert!(e.message.contains("unknown key"), "{near}: {e}");
    }
}

#[test]
fn events_aggregate_windows_key_and_errors() {
    let c = load(BASE).unwrap();
    assert_eq!(c.events.aggregate, Aggregate::default(), "off by default");
    let text = format!(
        "{BASE}\n[events.aggregate]\npolicy_deny = \"1s\"\nscreen_drop = \"250ms\"\nfilter_log = \"off\"\nkey = \"source\"\nmax_keys = 64\n"
    );
    let a = load(&text).unwrap().events.aggregate;
    assert_eq!(a.window_ms(EventType::PolicyDeny), Some(1000));
    assert_eq!(a.window_ms(EventType::ScreenDrop), Some(250));
    assert_eq!(a.window_ms(EventType::FilterLog), None);
    assert_eq!(a.window_ms(EventType::SessionOpen), None);
    assert_eq!((a.key, a.max_keys), (AggregateKey::Source, 64));

    for (value, message) in [
        ("\"1 s\"", "whole number"),
        ("\"0ms\"", "between 1ms and 60s"),
        ("\"61s\"", "between 1ms and 60s"),
        ("\"1m\"", "such as \"500ms\""),
    ] {
        let text = format!("{BASE}\n[events.aggregate]\npolicy_deny = {value}\n");
        expect_one(&text, value, "events.aggregate.policy_deny", message);
    }
    let text = format!("{BASE}\n[events.aggregate]\nkey = \"port\"\n");
    expect_one(
        &text,
        "\"port\"",
        "events.aggregate.key",
        "flow, source, destination, rule",
    );
    let text = format!("{BASE}\n[events.aggregate]\nsession_open = \"1s\"\n");
    let all = errors(&text);
    assert!(all.to_string().contains("session_open"), "{all}");
}

/// A machine where only the listed files, directories, interfaces and
/// groups exist.
struct FakeHost {
    files: &'static [&'static str],
    dirs: &'static [&'static str],
    interfaces: &'static [&'static str],
    groups: &'static [&'static str],
}

const HOST: FakeHost = FakeHost {
    files: &["in.pcap", "/caps/in1.pcap"],
    dirs: &["", "/out"],
    interfaces: &["eth0"],
    groups: &["rampart-log"],
};

impl Host for FakeHost {
    fn readable_file(&self, path: &str) -> Result<(), String> {
        if self.files.contains(&path) {
            Ok(())
        } else {
            Err("no such file".into())
        }
    }

    fn writable_file(&self, path: &str) -> Result<(), String> {
        let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
        if self.dirs.contains(&dir) {
            Ok(())
        } else {
            Err(format!("directory {dir:?} does not exist"))
        }
    }

    fn interface(&self, name: &str) -> Result<(), String> {
        if self.interfaces.contains(&name) {
            Ok(())
        } else {
            Err("no such network interface".into())
        }
    }

    fn group(&self, spec: &str) -> Result<(), String> {
        if self.groups.contains(&spec) {
            Ok(())
        } else {
            Err(format!("group {spec:?}: no such group"))
        }
    }
}

fn on_host(text: &str) -> Result<Config, ConfigErrors> {
    Config::from_str_on_host(text, "test.toml", &HOST)
}

/// The one error of `text` loaded on [`HOST`]: at the line of `needle`,
/// column `column`, with `field`, its message containing `message`.
fn expect_one_on_host(text: &str, needle: &str, column: u32, field: &str, message: &str) {
    let all = match on_host(text) {
        Ok(_) => panic!("config loaded but an error was expected:\n{text}"),
        Err(e) => e,
    };
    assert_eq!(all.len(), 1, "expected one error, got:\n{all}");
    let line = line_of(text, needle);
    let want = format!("test.toml:{line}:{column}: {field}: ");
    let shown = all.errors[0].to_string();
    assert!(shown.starts_with(&want), "{shown} should start {want:?}");
    assert!(shown.contains(message), "{shown} lacks {message:?}");
}

#[test]
fn missing_rx_pcap_is_an_error_on_the_host() {
    let dev = "net_pcap0,rx_pcap=/nonexistent.pcap,tx_pcap=/out/o.pcap";
    let text = BASE.replace("net_ring0", dev);
    // Without a host the file is not looked at (sans-IO loading).
    assert!(load(&text).is_ok());
    // Column: `device = "` is 10 characters, then `net_pcap0,`.
    expect_one_on_host(
        &text,
        dev,
        21,
        "interface[ge-0/0/0].device",
        "rx_pcap=/nonexistent.pcap: no such file (net_pcap would not create the port)",
    );
    let good = BASE.replace("net_ring0", "net_pcap0,rx_pcap=in.pcap,tx_pcap=/out/o.pcap");
    assert!(on_host(&good).is_ok());
}

#[test]
fn tx_pcap_directory_and_interfaces_are_checked_on_the_host() {
    let text = BASE.replace(
        "net_ring1",
        "net_pcap1,rx_pcap=in.pcap,tx_pcap=/gone/o.pcap",
    );
    expect_one_on_host(
        &text,
        "net_pcap1",
        37,
        "interface[ge-0/0/1].device",
        "tx_pcap=/gone/o.pcap: directory \"/gone\" does not exist",
    );
    let text = BASE.replace("net_ring1", "net_pcap1,iface=veth9");
    expect_one_on_host(
        &text,
        "net_pcap1",
        21,
        "interface[ge-0/0/1].device",
        "iface=veth9: no such network interface",
    );
    assert!(on_host(&BASE.replace("net_ring1", "net_af_packet0,iface=eth0")).is_ok());
}

#[test]
fn unknown_devarg_keys_name_the_driver_and_its_keys() {
    let text = BASE.replace("net_ring0", "net_pcap0,rx_pcap=in.pcap,infinte_rx=1");
    let e = expect_one(
        &text,
        "net_pcap0",
        "interface[ge-0/0/0].device",
        "net_pcap does not take the argument 'infinte_rx' (did you mean 'infinite_rx'?); it takes rx_pcap, tx_pcap,",
    );
    assert_eq!(e.column, 37, "points at the argument: {e}");
    let text = BASE.replace("net_ring1", "net_null1,no_rx=1");
    expect_one(
        &text,
        "net_null1",
        "interface[ge-0/0/1].device",
        "net_null does not take the argument 'no_rx' (did you mean 'no-rx'?); it takes size, copy, no-rx",
    );
    // Aliases are the same driver; a driver not in the table passes.
    let text = BASE.replace("net_ring1", "eth_null1,bogus=1");
    expect_one(
        &text,
        "eth_null1",
        "interface[ge-0/0/1].device",
        "net_null does not take the argument 'bogus'",
    );
    assert!(load(&BASE.replace("net_ring1", "net_bonding0,mode=1")).is_ok());
    // An escaped string cannot be pointed into: the error is at the value.
    let text = BASE.replace("\"net_ring1\"", "\"net_null1,\\u0062ogus=1\"");
    let all = errors(&text);
    assert_eq!(all.errors[0].column, 10, "{all}");
    // Every key the tests, benchmarks and docs use is accepted.
    for dev in [
        "net_pcap0,rx_pcap=a,tx_pcap=b,infinite_rx=1",
        "net_pcap0,iface=x",
        "net_null0,no-rx=1",
        "net_null0,size=64",
        "net_ring5,nodeaction=r0:0:CREATE",
        "net_vhost0,iface=/tmp/v.sock,queues=1",
        "net_virtio_user0,path=/tmp/v.sock,queues=1,queue_size=1024",
        "net_af_packet0,iface=x",
        "net_tap0,iface=tap0",
    ] {
        let text = BASE.replace("net_ring1", dev);
        assert!(load(&text).is_ok(), "{dev}: {}", errors(&text));
    }
}

#[test]
fn unknown_socket_groups_are_errors_on_the_host() {
    let text = with_base(
        "[events]\nsocket_group = \"rampart-log\"\ncontrol_socket_group = \"no-such-group\"\n",
    );
    assert!(load(&text).is_ok());
    expect_one_on_host(
        &text,
        "control_socket_group",
        24,
        "events.control_socket_group",
        "group \"no-such-group\": no such group",
    );
    let text = with_base("[events]\nsocket_group = \"nope\"\n");
    expect_one_on_host(
        &text,
        "socket_group",
        16,
        "events.socket_group",
        "no such group",
    );
}

const CLUSTER: &str = r#"[cluster]
name = "edge"
node-id = 1
local = "192.0.2.1:7410"
peer = "192.0.2.2:7410"
heartbeat-local = "198.51.100.1:7411"
heartbeat-peer = "198.51.100.2:7411"
"#;

#[test]
fn a_cluster_loads_with_defaults_and_needs_a_restart_to_change() {
    let c = load(&with_base(CLUSTER)).unwrap();
    let k = c.cluster.clone().expect("a cluster");
    assert_eq!((k.name.as_str(), k.node_id, k.priority), ("edge", 1, 100));
    assert_eq!(k.peer, "192.0.2.2:7410".parse().unwrap());
    assert_eq!((k.heartbeat_interval_ms, k.hold_time_ms), (200, 1000));
    assert!(!k.preempt && !k.takeover_on_sync_loss);
    assert!(
        load(BASE).unwrap().cluster.is_none(),
        "alone without [cluster]"
    );
    let changed = load(&with_base(
        &CLUSTER.replace("node-id = 1", "node-id = 1\npriority = 7"),
    ))
    .unwrap();
    assert_eq!(
        super::keys::restart_required(&c, &changed),
        vec!["cluster changed (the pair's identity, addresses and election are set at start)"]
    );
    assert!(super::keys::restart_required(&c, &c).is_empty());
}

#[test]
fn bad_cluster_values_name_the_line_and_field() {
    let text = with_base(&CLUSTER.replace("node-id = 1", "node-id = 0"));
    expect_one(&text, "node-id = 0", "cluster.node-id", "1");
    let text = with_base(&CLUSTER.replace("\"192.0.2.2:7410\"", "\"192.0.2.2\""));
    expect_one(
        &text,
        "\"192.0.2.2\"",
        "cluster.peer",
        "address and UDP port",
    );
    let text = with_base(&CLUSTER.replace("name = \"edge\"", "name = \"edge pair\""));
    expect_one(&text, "edge pair", "cluster.name", "letters, digits");
    let text = with_base(&format!("{CLUSTER}hold-time-ms = 500\n"));
    expect_one(
        &text,
        "hold-time-ms",
        "cluster.hold-time-ms",
        "three heartbeat intervals",
    );
    let text = with_base(&format!("{CLUSTER}takeover-on-sync-loss = true\n"));
    expect_one(
        &text,
        "takeover-on-sync-loss",
        "cluster.takeover-on-sync-loss",
        "only without a second heartbeat path",
    );
    let text =
        with_base(&CLUSTER.replace("peer = \"192.0.2.2:7410\"", "peer = \"192.0.2.1:7410\""));
    expect_one(
        &text,
        "[cluster]",
        "cluster.peer",
        "this node's own address",
    );
    let text = with_base(&format!("{CLUSTER}priorty = 3\n"));
    expect_one(&text, "priorty", "cluster.priorty", "priority");
}

#[test]
fn one_heartbeat_path_needs_a_second_one_or_the_risk_accepted() {
    let single = "[cluster]\nname = \"edge\"\nnode-id = 2\nlocal = \"127.0.0.1:7410\"\npeer = \"127.0.0.1:7411\"\n";
    let text = with_base(single);
    expect_one(
        &text,
        "[cluster]",
        "cluster.heartbeat-peer",
        "takeover-on-sync-loss = true",
    );
    let accepted = load(&with_base(&format!(
        "{single}takeover-on-sync-loss = true\n"
    )))
    .unwrap();
    assert!(accepted.cluster.unwrap().takeover_on_sync_loss);
    let text = with_base(&format!("{single}heartbeat-local = \"127.0.0.2:7410\"\n"));
    let all = errors(&text);
    assert!(
        all.errors.iter().any(|e| e
            .message
            .contains("needs both heartbeat-local and heartbeat-peer")),
        "{all}"
    );
}
