//! Renderers: JSON keys, Junos text against the Logstash/Elastic grok
//! patterns (translated to Rust regexes), RFC 5424 / junos-sd format.

mod common;

use common::*;
use rampart_events::syslog::{write_syslog_message, Framing, SyslogOptions, SyslogTarget};
use rampart_events::*;
use regex::Regex;

fn decoded(meta: &PacketMeta, ev: &Event, snippet: &[u8]) -> Vec<u8> {
    Encoder::new().encode_bytes(77, meta, ev, snippet).to_vec()
}

fn line(format: Format, bytes: &[u8]) -> Option<String> {
    let rec = decode(bytes).unwrap();
    let mut s = String::new();
    render(format, &rec, &cache(), &mut s).then_some(s)
}

/// Minimal JSON object key extraction (top level), enough for these tests.
fn json_keys(s: &str) -> Vec<String> {
    let re = Regex::new(r#"[{,]"([a-z_]+)":"#).unwrap();
    // Only top-level: the records here have nested objects only in stats.
    re.captures_iter(s).map(|c| c[1].to_owned()).collect()
}

#[test]
fn json_has_the_documented_keys() {
    let common = [
        "type",
        "ts",
        "worker",
        "seq",
        "generation",
        "src_ip",
        "dst_ip",
        "src_port",
        "dst_port",
        "protocol",
        "interface",
    ];
    let per_type: [&[&str]; 5] = [
        &["policy", "from_zone", "to_zone", "action"],
        &["screen", "zone", "action"],
        &["filter", "term", "action", "direction"],
        &["session_id", "policy", "from_zone", "to_zone"],
        &[
            "session_id",
            "policy",
            "from_zone",
            "to_zone",
            "reason",
            "packets_client",
            "bytes_client",
            "packets_server",
            "bytes_server",
            "elapsed_s",
        ],
    ];
    for ((meta, ev, snip), extra) in all_events().iter().zip(per_type) {
        let s = line(Format::Json, &decoded(meta, ev, snip)).unwrap();
        let keys = json_keys(&s);
        for k in common.iter().chain(extra.iter()) {
            assert!(keys.iter().any(|x| x == k), "{k} missing in {s}");
        }
        assert!(
            s.starts_with(&format!("{{\"type\":\"{}\"", ev.event_type().name())),
            "{s}"
        );
    }
    let s = line(
        Format::Json,
        &decoded(&all_events()[0].0, &all_events()[0].1, &[]),
    )
    .unwrap();
    assert_eq!(
        s,
        "{\"type\":\"policy_deny\",\"ts\":\"2024-05-01T12:00:00.123456789Z\",\"worker\":1,\"seq\":77,\
         \"generation\":3,\"src_ip\":\"10.0.0.1\",\"dst_ip\":\"10.1.0.5\",\"src_port\":1234,\"dst_port\":80,\
         \"protocol\":6,\"interface\":\"ge-0/0/0\",\"egress_interface\":\"ge-0/0/1\",\"policy\":\"deny-all\",\
         \"from_zone\":\"untrust\",\"to_zone\":\"trust\",\"action\":\"deny\",\"session_id\":7087}"
    );
    let (m, e, _) = &all_events()[4];
    let s = line(Format::Json, &decoded(m, e, &[])).unwrap();
    assert!(s.contains("\"reason\":\"tcp-fin\",\"packets_client\":5,\"bytes_client\":420,\"packets_server\":4,\"bytes_server\":3000,\"elapsed_s\":12.500000000"), "{s}");
    let (m, e, _) = &all_events()[1];
    let s = line(Format::Json, &decoded(m, e, &[])).unwrap();
    assert!(s.contains("\"screen\":\"syn-fin\",\"screen_profile\":\"edge\",\"zone\":\"untrust\",\"action\":\"drop\""), "{s}");
    // Unknown generation: ids instead of names, never a failure.
    let mut m2 = *m;
    m2.generation = 99;
    let s = line(Format::Json, &decoded(&m2, e, &[])).unwrap();
    assert!(s.contains("\"interface\":\"#0\""), "{s}");
}

const IPV4: &str =
    r"(?:(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)\.){3}(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)";
const IPV6: &str = r"[0-9A-Fa-f]*:[0-9A-Fa-f:]*(?:\.[0-9.]+)?";

/// Translates the grok patterns used below into a Rust regex.
fn grok(p: &str) -> Regex {
    let ip = format!("(?:{IPV6}|{IPV4})");
    let re = Regex::new(r"%\{(\w+)(?::([\w\[\]\.-]+?))?(?::int|:long)?\}").unwrap();
    let mut out = String::from("^");
    let mut last = 0;
    let mut n = 0;
    for c in re.captures_iter(p) {
        let m = c.get(0).unwrap();
        out.push_str(&p[last..m.start()]);
        last = m.end();
        let body = match &c[1] {
            "RT_FLOW_TAG" | "RT_FLOW_EVENT" => {
                "(?:RT_FLOW_SESSION_CREATE|RT_FLOW_SESSION_CLOSE|RT_FLOW_SESSION_DENY)".to_owned()
            }
            "IP" => ip.clone(),
            "INT" => r"(?:[+-]?(?:[0-9]+))".to_owned(),
            "DATA" => ".*?".to_owned(),
            "GREEDYDATA" => ".*".to_owned(),
            other => panic!("grok {other}"),
        };
        match c.get(2) {
            Some(name) => {
                n += 1;
                let name = name
                    .as_str()
                    .split(|ch: char| !ch.is_ascii_alphanumeric())
                    .filter(|w| !w.is_empty())
                    .collect::<Vec<_>>()
                    .join("_");
                out.push_str(&format!("(?P<{name}{n}>{body})"));
            }
            None => out.push_str(&format!("(?:{body})")),
        }
    }
    out.push_str(&p[last..]);
    Regex::new(&out).unwrap()
}

// logstash-patterns-core patterns/ecs-v1/junos (RT_FLOW1/2/3), verbatim.
const RT_FLOW1: &str = r"%{RT_FLOW_TAG:[juniper][srx][tag]}: %{GREEDYDATA:[juniper][srx][reason]}: %{IP:[source][ip]}/%{INT:[source][port]:int}->%{IP:[destination][ip]}/%{INT:[destination][port]:int} %{DATA:[juniper][srx][service_name]} %{IP:[source][nat][ip]}/%{INT:[source][nat][port]:int}->%{IP:[destination][nat][ip]}/%{INT:[destination][nat][port]:int} (?:(?:None)|(?:%{DATA:[juniper][srx][src_nat_rule_name]})) (?:(?:None)|(?:%{DATA:[juniper][srx][dst_nat_rule_name]})) %{INT:[network][iana_number]} %{DATA:[rule][name]} %{DATA:[observer][ingress][zone]} %{DATA:[observer][egress][zone]} %{INT:[juniper][srx][session_id]} \d+\(%{INT:[source][bytes]:int}\) \d+\(%{INT:[destination][bytes]:int}\) %{INT:[juniper][srx][elapsed_time]:int} .*";
const RT_FLOW2: &str = r"%{RT_FLOW_TAG:[juniper][srx][tag]}: session created %{IP:[source][ip]}/%{INT:[source][port]:int}->%{IP:[destination][ip]}/%{INT:[destination][port]:int} %{DATA:[juniper][srx][service_name]} %{IP:[source][nat][ip]}/%{INT:[source][nat][port]:int}->%{IP:[destination][nat][ip]}/%{INT:[destination][nat][port]:int} (?:(?:None)|(?:%{DATA:[juniper][srx][src_nat_rule_name]})) (?:(?:None)|(?:%{DATA:[juniper][srx][dst_nat_rule_name]})) %{INT:[network][iana_number]} %{DATA:[rule][name]} %{DATA:[observer][ingress][zone]} %{DATA:[observer][egress][zone]} %{INT:[juniper][srx][session_id]} .*";
const RT_FLOW3: &str = r"%{RT_FLOW_TAG:[juniper][srx][tag]}: session denied %{IP:[source][ip]}/%{INT:[source][port]:int}->%{IP:[destination][ip]}/%{INT:[destination][port]:int} %{DATA:[juniper][srx][service_name]} %{INT:[network][iana_number]}\(\d\) %{DATA:[rule][name]} %{DATA:[observer][ingress][zone]} %{DATA:[observer][egress][zone]} .*";

/// The capture of the named group `prefix<N>`.
fn cap<'a>(c: &'a regex::Captures<'_>, prefix: &str) -> &'a str {
    for name in GROUPS.with(|g| g.borrow().clone()) {
        if name
            .strip_prefix(prefix)
            .is_some_and(|n| n.chars().all(|d| d.is_ascii_digit()))
        {
            if let Some(m) = c.name(&name) {
                return m.as_str();
            }
        }
    }
    panic!("no group {prefix}")
}

thread_local! {
    static GROUPS: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn matches(re: &Regex, s: &str) -> regex::Captures<'static> {
    GROUPS.with(|g| *g.borrow_mut() = re.capture_names().flatten().map(str::to_owned).collect());
    let s: &'static str = Box::leak(s.to_owned().into_boxed_str());
    re.captures(s)
        .unwrap_or_else(|| panic!("{re}\n does not match\n{s}"))
}

#[test]
fn junos_deny_create_close_match_logstash_grok() {
    let ev = all_events();
    let deny = line(Format::Junos, &decoded(&ev[0].0, &ev[0].1, &[])).unwrap();
    assert_eq!(
        deny,
        "RT_FLOW_SESSION_DENY: session denied 10.0.0.1/1234->10.1.0.5/80 0x0 junos-http 6(0) deny-all untrust trust UNKNOWN UNKNOWN N/A(N/A) ge-0/0/0.0 UNKNOWN policy deny"
    );
    let c = matches(&grok(RT_FLOW3), &deny);
    assert_eq!(cap(&c, "juniper_srx_tag"), "RT_FLOW_SESSION_DENY");
    assert_eq!(cap(&c, "source_ip"), "10.0.0.1");
    assert_eq!(cap(&c, "source_port"), "1234");
    assert_eq!(cap(&c, "destination_ip"), "10.1.0.5");
    assert_eq!(cap(&c, "destination_port"), "80");
    assert!(cap(&c, "juniper_srx_service_name").ends_with("junos-http"));
    assert_eq!(cap(&c, "network_iana_number"), "6");
    assert_eq!(cap(&c, "rule_name"), "deny-all");
    assert_eq!(cap(&c, "observer_ingress_zone"), "untrust");
    assert_eq!(cap(&c, "observer_egress_zone"), "trust");

    let mut open_meta = ev[3].0;
    open_meta.ipv6 = false;
    open_meta.src = ipv4_mapped([192, 168, 1, 10]);
    open_meta.dst = ipv4_mapped([10, 1, 0, 5]);
    let create = line(Format::Junos, &decoded(&open_meta, &ev[3].1, &[])).unwrap();
    assert_eq!(
        create,
        "RT_FLOW_SESSION_CREATE: session created 192.168.1.10/40000->10.1.0.5/443 0x0 junos-https 192.168.1.10/40000->10.1.0.5/443 0x0 N/A N/A N/A N/A 6 allow-web untrust trust 42 N/A(N/A) ge-0/0/0.0 UNKNOWN UNKNOWN UNKNOWN N/A N/A 1 N/A"
    );
    let c = matches(&grok(RT_FLOW2), &create);
    assert_eq!(cap(&c, "source_ip"), "192.168.1.10");
    assert_eq!(cap(&c, "source_nat_ip"), "192.168.1.10");
    assert_eq!(cap(&c, "destination_nat_port"), "443");
    assert_eq!(cap(&c, "network_iana_number"), "6");
    assert_eq!(cap(&c, "rule_name"), "allow-web");
    assert_eq!(cap(&c, "observer_ingress_zone"), "untrust");
    assert_eq!(cap(&c, "observer_egress_zone"), "trust");
    assert_eq!(cap(&c, "juniper_srx_session_id"), "42");

    let close = line(Format::Junos, &decoded(&ev[4].0, &ev[4].1, &[])).unwrap();
    assert_eq!(
        close,
        "RT_FLOW_SESSION_CLOSE: session closed TCP FIN: 10.0.0.1/1234->10.1.0.5/80 0x0 junos-http 10.0.0.1/1234->10.1.0.5/80 0x0 N/A N/A N/A N/A 6 allow-web untrust trust 42 5(420) 4(3000) 12 UNKNOWN UNKNOWN N/A(N/A) ge-0/0/0.0 UNKNOWN N/A N/A 1 N/A"
    );
    let c = matches(&grok(RT_FLOW1), &close);
    assert_eq!(cap(&c, "juniper_srx_reason"), "session closed TCP FIN");
    assert_eq!(cap(&c, "rule_name"), "allow-web");
    assert_eq!(cap(&c, "juniper_srx_session_id"), "42");
    assert_eq!(cap(&c, "source_bytes"), "420");
    assert_eq!(cap(&c, "destination_bytes"), "3000");
    assert_eq!(cap(&c, "juniper_srx_elapsed_time"), "12");

    // IPv6 deny parses too.
    let v6 = line(Format::Junos, &decoded(&meta_v6(), &ev[0].1, &[])).unwrap();
    let c = matches(&grok(RT_FLOW3), &v6);
    assert_eq!(cap(&c, "source_ip"), "2001:db8::1");
    assert_eq!(cap(&c, "rule_name"), "deny-all");
}

#[test]
fn junos_screen_and_filter_text() {
    let ev = all_events();
    let s = line(Format::Junos, &decoded(&ev[1].0, &ev[1].1, &[])).unwrap();
    assert_eq!(
        s,
        "RT_SCREEN_TCP: SYN and FIN bits! source: 10.0.0.1:1234, destination: 10.1.0.5:80, zone name: untrust, interface name: ge-0/0/0.0, action: drop"
    );
    let mut m = meta_v4(1, 0, 0);
    m.icmp_type = 8;
    let e = Event::ScreenDrop(ScreenDrop {
        screen: 0,
        option: ScreenOption::PingDeath,
        alarm_only: true,
    });
    let s = line(Format::Junos, &decoded(&m, &e, &[])).unwrap();
    assert_eq!(
        s,
        "RT_SCREEN_ICMP: Ping of Death! source: 10.0.0.1, destination: 10.1.0.5, zone name: untrust, interface name: ge-0/0/0.0, action: alarm-without-drop"
    );
    let e = Event::ScreenDrop(ScreenDrop {
        screen: 0,
        option: ScreenOption::RecordRouteOption,
        alarm_only: false,
    });
    let s = line(Format::Junos, &decoded(&m, &e, &[])).unwrap();
    assert_eq!(
        s,
        "RT_SCREEN_IP: Record Route IP option! source: 10.0.0.1, destination: 10.1.0.5, protocol-id: 1, zone name: untrust, interface name: ge-0/0/0.0, action: drop"
    );
    let s = line(Format::Junos, &decoded(&ev[2].0, &ev[2].1, &[])).unwrap();
    assert_eq!(
        s,
        "PFE_FW_SYSLOG_IP: FW: ge-0/0/0.0 D tcp 10.0.0.1 10.1.0.5 1234 23 (1 packets) "
    );
    // Non-event records have no junos text.
    let hello = ControlEncoder::new().hello(1, 0, "x").to_vec();
    assert_eq!(line(Format::Junos, &hello), None);
}

/// RFC 5424 (section 6) syntax, with the junos-sd "brief" shape: no MSG.
fn rfc5424() -> Regex {
    Regex::new(concat!(
        r"^<(?P<pri>[0-9]{1,3})>1 ",
        r"(?P<ts>[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?(?:Z|[+-][0-9]{2}:[0-9]{2})) ",
        r"(?P<host>[!-~]{1,255}) (?P<app>[!-~]{1,48}) (?P<procid>[!-~]{1,128}) (?P<msgid>[!-~]{1,32}) ",
        r#"(?P<sd>-|(?:\[[^ =\]"]{1,32}(?: [^ =\]"]{1,32}="(?:[^"\\\]]|\\["\\\]])*")*\])+)"#,
        r"(?: (?P<msg>.*))?$"
    ))
    .unwrap()
}

// Elastic juniper_srx integration, ingest_pipeline/default.yml (structured-data + brief).
fn elastic_srx() -> Regex {
    Regex::new(concat!(
        r"^<(?P<syslog_pri>[1-9][0-9]*)>(\d{1,3}\s)?",
        r"(?P<raw_date>[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?)",
        r"\s(?P<host>[0-9A-Za-z._-]+)\s(?P<prog>[\x21-\x5a\x5c\x5e-\x7e]+)\s(?:(?P<pid>[1-9][0-9]*)|-)?\s(?P<tag>\w+)\s",
        r"\[([^=]+?\s)?(?P<structured>.*)\]\s?$"
    ))
    .unwrap()
}

fn sd_keys(structured: &str) -> Vec<String> {
    let re = Regex::new(r#"(?:^| )([a-z0-9_\-]+)=""#).unwrap();
    re.captures_iter(structured)
        .map(|c| c[1].to_owned())
        .collect()
}

#[test]
fn junos_sd_lines_are_rfc5424_with_junos_parameter_order() {
    let opts = SyslogOptions {
        hostname: "fw1".into(),
        facility: 1,
    };
    let ev = all_events();
    // Parameter names and order are checked against real SRX lines in
    // tests/srx_fidelity.rs; here the syntax and the header of each kind.
    let expect: [(&str, &str, u8); 5] = [
        ("RT_FLOW", "RT_FLOW_SESSION_DENY", 14), // user.info, as every RT_FLOW
        ("RT_IDS", "RT_SCREEN_TCP", 11),         // user.err
        ("-", "-", 14),                          // a filter log: text, no SD
        ("RT_FLOW", "RT_FLOW_SESSION_CREATE", 14),
        ("RT_FLOW", "RT_FLOW_SESSION_CLOSE", 14),
    ];
    for ((meta, e, snip), (app, msgid, pri)) in ev.iter().zip(expect) {
        let bytes = decoded(meta, e, snip);
        let rec = decode(&bytes).unwrap();
        let mut s = String::new();
        assert!(write_syslog_message(
            Format::JunosSd,
            Framing::Rfc5424,
            &rec,
            &cache(),
            &opts,
            &mut s
        ));
        let c = rfc5424()
            .captures(&s)
            .unwrap_or_else(|| panic!("not RFC 5424: {s}"));
        assert_eq!(&c["pri"], pri.to_string());
        assert_eq!(&c["ts"], "2024-05-01T12:00:00.123456Z");
        assert_eq!(&c["host"], "fw1");
        assert_eq!(&c["app"], app);
        assert_eq!(&c["msgid"], msgid);
        if app == "-" {
            assert_eq!(&c["sd"], "-", "{s}");
            assert!(c["msg"].starts_with("PFE_FW_SYSLOG_IP: FW: "), "{s}");
            continue;
        }
        assert!(c.name("msg").is_none(), "{s}");
        assert!(c["sd"].starts_with("[junos@2636.1.1.1.2.129 "), "{s}");
        let el = elastic_srx()
            .captures(&s)
            .unwrap_or_else(|| panic!("elastic: {s}"));
        assert_eq!(&el["prog"], app);
        assert_eq!(&el["tag"], msgid);
        assert!(!sd_keys(&el["structured"]).is_empty(), "{s}");
    }
    // The deny carries the names and the Junos logical interface.
    let bytes = decoded(&ev[0].0, &ev[0].1, &[]);
    let rec = decode(&bytes).unwrap();
    let mut s = String::new();
    write_syslog_message(
        Format::JunosSd,
        Framing::Rfc5424,
        &rec,
        &cache(),
        &opts,
        &mut s,
    );
    assert!(
        s.contains(
            r#"policy-name="deny-all" source-zone-name="untrust" destination-zone-name="trust""#
        ),
        "{s}"
    );
    assert!(
        s.contains(r#"packet-incoming-interface="ge-0/0/0.0""#),
        "{s}"
    );
}

#[test]
fn syslog_wrapping_of_other_formats_and_escaping() {
    let opts = SyslogOptions {
        hostname: "fw1".into(),
        facility: 16,
    };
    let ev = all_events();
    for f in [Format::Json, Format::Junos, Format::Droplog] {
        let bytes = decoded(&ev[0].0, &ev[0].1, &ev[0].2);
        let rec = decode(&bytes).unwrap();
        let mut s = String::new();
        assert!(write_syslog_message(
            f,
            Framing::Rfc5424,
            &rec,
            &cache(),
            &opts,
            &mut s
        ));
        let c = rfc5424().captures(&s).unwrap_or_else(|| panic!("{s}"));
        assert_eq!(&c["pri"], "134"); // local0.info: a deny, RT_FLOW
        assert_eq!(&c["sd"], "-");
        assert!(c.name("msg").is_some());
    }
    // A policy name with characters that need escaping in SD values.
    let mut names = names();
    names.policies[1].name = "we\"ird]\\name".into();
    let mut cache = NameCache::new();
    cache.insert(3, names);
    let bytes = decoded(&ev[0].0, &ev[0].1, &[]);
    let rec = decode(&bytes).unwrap();
    let mut s = String::new();
    write_syslog_message(
        Format::JunosSd,
        Framing::Rfc5424,
        &rec,
        &cache,
        &opts,
        &mut s,
    );
    assert!(rfc5424().is_match(&s), "{s}");
    assert!(s.contains(r#"policy-name="we\"ird\]\\name""#), "{s}");

    assert_eq!(
        "udp://127.0.0.1:514".parse(),
        Ok(SyslogTarget::Udp("127.0.0.1:514".into()))
    );
    assert_eq!(
        "tcp://localhost:601".parse(),
        Ok(SyslogTarget::Tcp("localhost:601".into()))
    );
    assert!("http://x:1".parse::<SyslogTarget>().is_err());
    assert!("udp://x".parse::<SyslogTarget>().is_err());
}

/// Issue 24 finding 4, item 5: the HOSTNAME was the forwarding host's,
/// so the streams of several dataplanes forwarded from one host could not
/// be told apart. It is the node of the stream's hello (the host name only
/// for a hello without one), in every framing and format.
#[test]
fn syslog_hostname_is_the_node_of_the_streams_hello() {
    let opts = SyslogOptions {
        hostname: "forwarding-host".into(),
        facility: 1,
    };
    let with_node = |node: &str| {
        let mut enc = ControlEncoder::new();
        enc.set_identity(node, 0x1234);
        let hello = enc.hello(3, 0, "rampart").to_vec();
        let mut c = cache();
        c.observe(&decode(&hello).unwrap());
        c
    };
    let ev = all_events();
    let bytes = decoded(&ev[0].0, &ev[0].1, &ev[0].2);
    let rec = decode(&bytes).unwrap();
    let bsd_host =
        Regex::new(r"^<[0-9]+>[A-Z][a-z]{2} [ 0-9][0-9] [0-9:]{8} (?P<host>[^ ]+) ").unwrap();
    for (names, host) in [
        (with_node("fw-east-1"), "fw-east-1"),
        (with_node(""), "forwarding-host"),
        (cache(), "forwarding-host"),
    ] {
        for format in [
            Format::JunosSd,
            Format::Junos,
            Format::Json,
            Format::Droplog,
        ] {
            let mut s = String::new();
            assert!(write_syslog_message(
                format,
                Framing::Rfc5424,
                &rec,
                &names,
                &opts,
                &mut s
            ));
            let c = rfc5424().captures(&s).unwrap_or_else(|| panic!("{s}"));
            assert_eq!(&c["host"], host, "{format:?}: {s}");
        }
        let mut s = String::new();
        assert!(write_syslog_message(
            Format::Junos,
            Framing::Bsd,
            &rec,
            &names,
            &opts,
            &mut s
        ));
        let c = bsd_host.captures(&s).unwrap_or_else(|| panic!("{s}"));
        assert_eq!(&c["host"], host, "BSD: {s}");
    }
}

#[test]
fn syslog_forwarding_udp_and_tcp_octet_counting() {
    use rampart_events::syslog::SyslogForwarder;
    use std::io::Read;
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let target = SyslogTarget::Udp(udp.local_addr().unwrap().to_string());
    let mut f = SyslogForwarder::connect(&target).unwrap();
    f.send("<12>1 - - - - - - one");
    f.send("<12>1 - - - - - - two");
    let mut buf = [0u8; 256];
    let n = udp.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"<12>1 - - - - - - one");
    let n = udp.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"<12>1 - - - - - - two");

    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target = SyslogTarget::Tcp(tcp.local_addr().unwrap().to_string());
    let mut f = SyslogForwarder::connect(&target).unwrap();
    let (mut conn, _) = tcp.accept().unwrap();
    f.send("<14>1 - - - - - - héllo");
    f.send("<14>1 - - - - - - x");
    drop(f);
    let mut got = String::new();
    conn.read_to_string(&mut got).unwrap();
    assert_eq!(got, "24 <14>1 - - - - - - héllo19 <14>1 - - - - - - x");
}

#[test]
fn droplog_lines() {
    let ev = all_events();
    let s = line(Format::Droplog, &decoded(&ev[0].0, &ev[0].1, &ev[0].2)).unwrap();
    assert_eq!(
        s,
        "2024-05-01T12:00:00.123456789Z policy_deny worker=1 seq=77 policy=deny-all action=deny IN=ge-0/0/0 OUT=ge-0/0/1 MAC=66:77:88:99:aa:bb>00:11:22:33:44:55 ETH=0x0800 SRC=10.0.0.1 DST=10.1.0.5 LEN=40 TOS=0x00 TTL=64 ID=1 DF PROTO=TCP SPT=1234 DPT=80 FLAGS=SYN WINDOW=29200"
    );
    let s = line(Format::Droplog, &decoded(&ev[2].0, &ev[2].1, &[])).unwrap();
    assert!(
        s.contains("filter=protect/no-telnet action=discard")
            && s.ends_with("SRC=10.0.0.1 DST=10.1.0.5 PROTO=TCP SPT=1234 DPT=23"),
        "{s}"
    );
    // Sessions are not drops.
    assert_eq!(
        line(Format::Droplog, &decoded(&ev[3].0, &ev[3].1, &[])),
        None
    );
    // Truncated snippets never panic.
    for n in 0..ev[0].2.len() {
        line(Format::Droplog, &decoded(&ev[0].0, &ev[0].1, &ev[0].2[..n])).unwrap();
    }
}

#[test]
fn session_close_names_the_policy_and_zones_of_the_generation_that_opened_it() {
    // Generation 2 opened the session under policy 0, `allow-web`. A
    // reload to generation 3 inserted a policy ahead of it (now id 0) and
    // renamed the zones; the session closes under generation 3.
    let opened = names();
    let mut reloaded = names();
    reloaded.policies.insert(
        0,
        PolicyName {
            name: "blocker-inserted-later".into(),
            from_zone: 0,
            to_zone: 1,
        },
    );
    reloaded.zones[0].name = "outside".into();
    let mut cache = NameCache::new();
    cache.insert(2, opened);
    cache.insert(3, reloaded);
    let (meta, _, _) = &all_events()[4];
    assert_eq!(meta.generation, 3);
    let close = |session_generation| {
        Event::SessionClose(SessionClose {
            session_id: 42,
            policy: 0,
            reason: CloseReason::IdleTimeout,
            packets_client: 1,
            bytes_client: 60,
            packets_server: 0,
            bytes_server: 0,
            elapsed_ns: 1,
            session_generation,
            application: NO_ID16,
            origin: 0,
        })
    };
    let render_with = |format, ev: &Event| {
        let bytes = decoded(meta, ev, &[]);
        let mut s = String::new();
        assert!(render(format, &decode(&bytes).unwrap(), &cache, &mut s));
        s
    };

    let json = render_with(Format::Json, &close(2));
    assert!(json.contains("\"generation\":3,"), "closed under 3: {json}");
    assert!(json.contains("\"session_generation\":2,"), "{json}");
    assert!(json.contains("\"policy\":\"allow-web\""), "{json}");
    assert!(json.contains("\"from_zone\":\"untrust\""), "{json}");
    let junos = render_with(Format::Junos, &close(2));
    assert!(junos.contains(" allow-web untrust trust 42 "), "{junos}");
    let sd = render_with(Format::JunosSd, &close(2));
    assert!(sd.contains("policy-name=\"allow-web\""), "{sd}");
    assert!(!sd.contains("blocker"), "{sd}");

    // A record from an older producer (no session generation) resolves in
    // its own generation.
    let json = render_with(Format::Json, &close(0));
    assert!(json.contains("\"session_generation\":3,"), "{json}");
    assert!(
        json.contains("\"policy\":\"blocker-inserted-later\""),
        "{json}"
    );
}

/// An aggregated record shows its count in every format: JSON fields,
/// `repeat-count` in the Junos flow and screen messages (text and
/// structured), the PFE filter line's own `(N packets)`, COUNT= in drop logs.
#[test]
fn aggregated_records_show_their_count_in_every_format() {
    let repeat = Repeat {
        count: 4242,
        last_ts_ns: 1_714_564_801_000_000_000,
    };
    let events = all_events();
    let [deny, screen, filter] = [0, 1, 2].map(|i| {
        let (meta, ev, snip) = &events[i];
        let mut enc = Encoder::new();
        let mut slot = EventSlot::EMPTY;
        assert!(enc.encode_repeated(9, meta, ev, snip, repeat, &mut slot));
        assert_eq!(slot.count(), 4242, "the hub counts events by the slot");
        slot.as_bytes().to_vec()
    });
    let Record::Event(e) = decode(&deny).unwrap() else {
        panic!()
    };
    assert_eq!(e.repeat, repeat);

    let json = line(Format::Json, &deny).unwrap();
    assert!(
        json.contains(",\"count\":4242,\"first_ts\":\"2024-05-01T12:00:00.123456789Z\",\"last_ts\":\"2024-05-01T12:00:01.000000000Z\""),
        "{json}"
    );
    for bytes in [&deny, &screen] {
        let text = line(Format::Junos, bytes).unwrap();
        assert!(text.ends_with(" repeat-count=4242"), "{text}");
        let sd = line(Format::JunosSd, bytes).unwrap();
        assert!(sd.contains(" repeat-count=\"4242\"]"), "{sd}");
    }
    let fw = line(Format::Junos, &filter).unwrap();
    assert!(fw.contains("(4242 packets)"), "{fw}");
    assert!(!fw.contains("repeat-count"), "{fw}");
    let drop = line(Format::Droplog, &deny).unwrap();
    assert!(drop.contains(" COUNT=4242 "), "{drop}");

    // A record per packet reads as before: no count anywhere.
    let (meta, ev, snip) = &events[0];
    let one = decoded(meta, ev, snip);
    assert!(!line(Format::Json, &one).unwrap().contains("count"));
    assert!(!line(Format::JunosSd, &one)
        .unwrap()
        .contains("repeat-count"));
}

/// Each packet record's JSON carries its stable id, formed from the
/// stream's hello (node, boot id) and the record's worker and seq; hello
/// shows both; before a hello with an identity there is none.
#[test]
fn json_carries_the_stable_event_id_from_the_hello() {
    let (meta, ev, snip) = &all_events()[0];
    let bytes = decoded(meta, ev, snip);
    let rec = decode(&bytes).unwrap();
    let mut cache = cache();
    let mut s = String::new();
    render(Format::Json, &rec, &cache, &mut s);
    assert!(!s.contains("event_id"), "{s}");

    let mut ctl = ControlEncoder::new();
    ctl.set_identity("fw-1.dc2", 0xfeed_0000_0000_0042);
    let hello = ctl.hello(3, 1, "rampart test").to_vec();
    let hello = decode(&hello).unwrap();
    cache.observe(&hello);
    s.clear();
    render(Format::Json, &hello, &cache, &mut s);
    assert!(
        s.contains(",\"node\":\"fw-1.dc2\",\"boot_id\":\"feed000000000042\""),
        "{s}"
    );
    s.clear();
    render(Format::Json, &rec, &cache, &mut s);
    assert!(
        s.contains(&format!(
            ",\"event_id\":\"fw-1.dc2:feed000000000042:{}:77\"",
            meta.worker
        )),
        "{s}"
    );
    serde_json_free_check(&s);

    // A producer whose node name is not one (quotes, a colon) gives no id,
    // rather than a line it could break or ids it could make ambiguous.
    for bad in ["fw\",\"x", "fw:1", ""] {
        ctl.set_identity(bad, 7);
        let hello = decode(ctl.hello(3, 1, "rampart test")).unwrap();
        cache.observe(&hello);
        s.clear();
        render(Format::Json, &rec, &cache, &mut s);
        assert!(!s.contains("event_id"), "{bad:?}: {s}");
    }
}

/// The line is one JSON object (balanced quotes and braces).
fn serde_json_free_check(s: &str) {
    assert!(s.starts_with('{') && s.ends_with('}'), "{s}");
    assert_eq!(s.matches('"').count() % 2, 0, "{s}");
}

/// Names from the config may hold what RFC 5424 escapes in a PARAM-VALUE
/// (`"`, `\`, `]`): the structured data escapes them in every name field,
/// and the values merged in ahead (N/A, UNKNOWN, 0) stay as they are.
#[test]
fn structured_data_escapes_config_names_and_keeps_the_fixed_values() {
    let mut n = names();
    n.policies[1].name = r#"deny "all" \ [x]"#.into();
    n.zones[0].name = "un]trust".into();
    let mut cache = NameCache::new();
    cache.insert(3, n);
    let (meta, ev, _) = all_events().remove(0);
    let bytes = decoded(&meta, &ev, &[]);
    let rec = decode(&bytes).unwrap();
    let mut s = String::new();
    assert!(render(Format::JunosSd, &rec, &cache, &mut s));
    // (Spaces in names become `_`, as everywhere in Junos output.)
    assert!(s.contains(r#" policy-name="deny_\"all\"_\\_[x\]""#), "{s}");
    assert!(s.contains(r#" source-zone-name="un\]trust""#), "{s}");
    for fixed in [
        r#" connection-tag="0""#,
        r#" application="UNKNOWN""#,
        r#" username="N/A""#,
        r#" encrypted="No""#,
    ] {
        assert!(s.contains(fixed), "{fixed} in {s}");
    }
    let sd = s.find('[').map(|i| &s[i..]).unwrap();
    assert!(
        rfc5424().is_match(&format!("<14>1 2024-05-01T12:00:00Z h a - m {sd}")),
        "{s}"
    );
}

/// Issue 26: `rampart events --format junos` lines had no time or host,
/// and a reload taken or refused showed nothing. The log-file form has
/// both (`Mmm dd hh:mm:ss HOST APP: TAG: ...`), and a reload (a hello of
/// another generation of the same run) and a refused one have lines.
#[test]
fn junos_log_lines_carry_time_and_host_and_say_reloads() {
    use rampart_events::syslog::write_log_line;
    let opts = SyslogOptions {
        hostname: "forwarding-host".into(),
        facility: 1,
    };
    let mut enc = ControlEncoder::new();
    enc.set_identity("fw-east-1", 0x1234);
    let first = enc.hello(1, 0, "rampart").to_vec();
    let reload = enc.hello(2, 0, "rampart").to_vec();
    let mut names = cache();
    let log_line = |bytes: &[u8], names: &mut NameCache| {
        let rec = decode(bytes).unwrap();
        names.observe(&rec);
        let mut s = String::new();
        write_log_line(&rec, names, &opts, None, &mut s).then_some(s)
    };
    assert_eq!(
        log_line(&first, &mut names),
        None,
        "a stream's first hello is no reload"
    );
    let loaded = log_line(&reload, &mut names).expect("a reload's line");
    let shape = Regex::new(
        r"^[A-Z][a-z]{2} [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2} fw-east-1 rampart: RAMPART_CONFIG_LOADED: configuration generation 2 is active$",
    )
    .unwrap();
    assert!(shape.is_match(&loaded), "{loaded}");
    assert_eq!(
        log_line(&reload, &mut names),
        None,
        "the same generation again"
    );

    let ev = all_events();
    let deny = log_line(&decoded(&ev[0].0, &ev[0].1, &[]), &mut names).unwrap();
    let event = Regex::new(r"^[A-Z][a-z]{2} [ 0-9][0-9] [0-9:]{8} fw-east-1 RT_FLOW: RT_FLOW_SESSION_DENY: session denied ").unwrap();
    assert!(event.is_match(&deny), "{deny}");

    let reject = ControlEncoder::new()
        .config_reject(
            1_800_000_000_000_000_000,
            2,
            "/etc/rampart/rampart.toml",
            &[
                "a.toml:3:1: policy: bad\nsecond line".into(),
                "other".into(),
            ],
        )
        .to_vec();
    let refused = log_line(&reject, &mut names).unwrap();
    assert!(
        refused.ends_with("fw-east-1 rampart: RAMPART_CONFIG_REJECTED: reload of /etc/rampart/rampart.toml rejected, generation 2 keeps running: a.toml:3:1: policy: bad second line; other"),
        "{refused}"
    );
    assert!(refused.starts_with("Jan 15 08:00:00 "), "{refused}");
    // The plain junos format has the same text without time and host.
    assert!(line(Format::Junos, &reject)
        .unwrap()
        .starts_with("RAMPART_CONFIG_REJECTED: reload of"));
}
