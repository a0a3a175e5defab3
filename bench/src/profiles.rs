//! Traffic profiles: deterministic (seeded) captures, the Rampart policy
//! each is run against, and the nearest stateless OpenFlow rule set for
//! the Open vSwitch baseline.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use anyhow::Context;
use rampart_pipeline::flow::Addr;
use rampart_pipeline::pcap;
use rampart_pipeline::wire::TcpFlags;
use rampart_testkit::configs;
use rampart_testkit::traffic::{ping, tcp, udp, v4, v6, Rng};

pub struct Profile {
    pub name: &'static str,
    pub title: String,
    /// Frames (without FCS; a "64 B" frame is 60 bytes captured).
    pub frames: Vec<Vec<u8>>,
    /// Zones, screens, address book, policies, default policy.
    pub body: String,
    /// Policies in the config (for the rule-scaling curve).
    pub rules: Option<usize>,
    /// The same policy as OpenFlow rules (`ovs-ofctl add-flows`, bridge
    /// ports `a` = untrust side, `b` = trust side). Stateless: what comes
    /// back from the trust side is let through, where a session would let
    /// only the replies through.
    pub openflow: String,
}

/// OpenFlow for [`web_body`]: allow-web, allow-dns (deny-telnet and the
/// default deny are the table's final drop), with `extra` rules first.
fn web_openflow(extra: &str) -> String {
    format!(
        "{extra}priority=200,in_port=b,actions=output:a
priority=100,tcp,in_port=a,nw_dst=10.1.0.0/24,tp_dst=80,actions=output:b
priority=100,tcp,in_port=a,nw_dst=10.1.0.0/24,tp_dst=443,actions=output:b
priority=100,icmp,in_port=a,nw_dst=10.1.0.0/24,icmp_type=8,actions=output:b
priority=100,tcp6,in_port=a,ipv6_dst=2001:db8:1::/64,tp_dst=80,actions=output:b
priority=100,tcp6,in_port=a,ipv6_dst=2001:db8:1::/64,tp_dst=443,actions=output:b
priority=100,udp,in_port=a,nw_dst=10.1.1.53,tp_dst=53,actions=output:b
priority=0,actions=drop
"
    )
}

/// The screen checks of the realistic mix that OpenFlow can express
/// (TCP flag combinations; land, teardrop, ping of death and the other
/// checks have no OpenFlow match).
const SCREEN_OPENFLOW: &str = "priority=300,tcp,tcp_flags=+syn+fin,actions=drop
priority=300,tcp,tcp_flags=-syn-fin-rst-psh-ack-urg,actions=drop
priority=300,tcp,tcp_flags=+fin-ack,actions=drop
";

pub fn sized<F: Fn(&[u8]) -> Vec<u8>>(frame_len: usize, build: F) -> Vec<u8> {
    let hdr = build(&[]).len();
    build(&vec![0x42u8; frame_len.saturating_sub(hdr)])
}

/// Frame sizes (captured, without the 4-byte FCS) of the 7:4:1 IMIX.
const IMIX: [usize; 3] = [60, 566, 1514];

fn imix_sizes(rng: &mut Rng, n: usize) -> Vec<usize> {
    let mut out = Vec::with_capacity(n + 12);
    while out.len() < n {
        let mut block: Vec<usize> = std::iter::repeat_n(IMIX[0], 7)
            .chain(std::iter::repeat_n(IMIX[1], 4))
            .chain(std::iter::once(IMIX[2]))
            .collect();
        for i in (1..block.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            block.swap(i, j);
        }
        out.extend(block);
    }
    out.truncate(n);
    out
}

const ZONES: &str = configs::UNTRUST_AND_TRUST_ZONES;

/// The web profile's address book, policies and default policy.
fn web_body() -> String {
    let allow_web = configs::policy("allow-web", ("untrust", "trust"))
        .destination("web")
        .applications(&["junos-http", "junos-https", "junos-ping"])
        .then("permit");
    let allow_dns = configs::policy("allow-dns", ("untrust", "trust"))
        .destination("dns")
        .application("junos-dns-udp")
        .then("permit");
    let deny_telnet = configs::policy("deny-telnet", ("untrust", "trust"))
        .application("junos-telnet")
        .then("deny")
        .log(&["session-init"]);
    format!(
        r#"
[address-book]
web = ["10.1.0.0/24", "2001:db8:1::/64"]
dns = ["10.1.1.53"]

{allow_web}
{allow_dns}
{deny_telnet}
{default}"#,
        default = configs::default_policy_logged("deny"),
    )
}

fn client(f: usize) -> Addr {
    v4(192, 168, (f >> 8) as u8, (f & 255) as u8)
}

fn established(name: &'static str, seed: u64, n: usize, imix: bool) -> Profile {
    let flows = 1024;
    let mut rng = Rng::new(seed);
    let sizes = if imix {
        imix_sizes(&mut rng, n)
    } else {
        vec![60; n]
    };
    let frames = (0..n)
        .map(|i| {
            let f = i % flows;
            sized(sizes[i], |p| {
                tcp(
                    client(f),
                    v4(10, 1, 0, 10 + (f % 200) as u8),
                    10000 + f as u16,
                    80,
                    TcpFlags::ACK | TcpFlags::PSH,
                    p,
                )
            })
        })
        .collect();
    Profile {
        name,
        title: if imix {
            "established flows, IMIX 7:4:1 (64/570/1518 B)".into()
        } else {
            "established flows, 64 B".into()
        },
        frames,
        body: format!("{ZONES}{}", web_body()),
        rules: None,
        openflow: web_openflow(""),
    }
}

fn realistic(seed: u64, n: usize) -> Profile {
    let mut rng = Rng::new(seed);
    let sizes = imix_sizes(&mut rng, n);
    let web = |k: u64| v4(10, 1, 0, 10 + (k % 50) as u8);
    let frames = (0..n)
        .map(|i| {
            let f = rng.below(2000) as usize;
            let roll = rng.below(1000);
            let len = sizes[i];
            match roll {
                // 0.5% screen hits: land, syn-fin, tcp-no-flag, fin-no-ack.
                0..=4 => {
                    let a = client(f);
                    match roll % 4 {
                        0 => tcp(web(f as u64), web(f as u64), 1234, 80, TcpFlags::SYN, &[]),
                        1 => tcp(a, web(1), 1234, 80, TcpFlags::SYN | TcpFlags::FIN, &[]),
                        2 => tcp(a, web(2), 1235, 80, TcpFlags::EMPTY, &[]),
                        _ => tcp(a, web(3), 1236, 80, TcpFlags::FIN, &[]),
                    }
                }
                // 5% denied by the deny-telnet policy (logged).
                5..=54 => sized(60, |p| {
                    tcp(
                        client(f),
                        web(f as u64),
                        20000 + f as u16,
                        23,
                        TcpFlags::SYN,
                        p,
                    )
                }),
                // 5% to addresses no policy permits: default deny (logged).
                55..=104 => sized(60, |p| {
                    udp(
                        client(f),
                        v4(10, 9, (f >> 8) as u8, f as u8),
                        30000 + f as u16,
                        5000,
                        p,
                    )
                }),
                // Permitted: DNS, ping, IPv6 HTTPS, IPv4 HTTP data.
                105..=254 => sized(len.min(566), |p| {
                    udp(client(f), v4(10, 1, 1, 53), 40000 + f as u16, 53, p)
                }),
                255..=304 => ping(client(f), web(f as u64), f as u16, 1),
                305..=404 => sized(len.max(74), |p| {
                    tcp(
                        v6(&format!("2001:db8:ff::{:x}", f + 1)),
                        v6(&format!("2001:db8:1::{:x}", 10 + f % 50)),
                        45000 + f as u16,
                        443,
                        TcpFlags::ACK,
                        p,
                    )
                }),
                _ => sized(len, |p| {
                    tcp(
                        client(f),
                        web(f as u64),
                        10000 + f as u16,
                        80,
                        TcpFlags::ACK | TcpFlags::PSH,
                        p,
                    )
                }),
            }
        })
        .collect();
    let body = format!(
        "{zones}\n{screen}{web_body}",
        zones = configs::untrust_screened_zones("edge"),
        screen = configs::screen(
            "edge",
            "land syn-fin tcp-no-flag fin-no-ack winnuke syn-frag tear-drop ping-death",
        ),
        web_body = web_body(),
    );
    Profile {
        name: "realistic-mix",
        title: "realistic mix: ~10% denied (logged), 0.5% screen hits, IMIX, v4+v6".into(),
        frames,
        body,
        rules: None,
        openflow: web_openflow(SCREEN_OPENFLOW),
    }
}

fn deny_storm(seed: u64, n: usize) -> Profile {
    let mut rng = Rng::new(seed);
    let frames = (0..n)
        .map(|i| {
            let src = v4(192, 0, 2, rng.below(250) as u8 + 1);
            let dst = v4(10, 2, rng.below(250) as u8, rng.below(250) as u8 + 1);
            let sport = 1024 + rng.below(60000) as u16;
            if i % 3 == 0 {
                sized(60, |p| udp(src, dst, sport, 53, p))
            } else {
                sized(60, |p| tcp(src, dst, sport, 443, TcpFlags::SYN, p))
            }
        })
        .collect();
    Profile {
        name: "deny-storm",
        title: "deny storm: 100% denied by the default policy, every packet logged, 64 B".into(),
        frames,
        body: format!("{ZONES}\n[default-policy]\nthen = \"deny\"\nlog = true\n"),
        rules: None,
        openflow: "priority=0,actions=drop\n".into(),
    }
}

/// The deny storm's capture with `[events.aggregate]` on: a record per
/// source per second, each counting the packets it stands for.
fn deny_storm_aggregated(seed: u64, n: usize) -> Profile {
    let storm = deny_storm(seed, n);
    Profile {
        name: "deny-storm-agg",
        title: "deny storm with aggregation: the deny storm with `[events.aggregate] policy_deny = \"1s\"`, `key = \"source\"`".into(),
        body: format!(
            "{}\n[events.aggregate]\npolicy_deny = \"1s\"\nkey = \"source\"\n",
            storm.body
        ),
        ..storm
    }
}

fn syn_flood(n: usize) -> Profile {
    let target = v4(10, 1, 0, 10);
    let frames = (0..n)
        .map(|i| {
            sized(60, |p| {
                tcp(
                    client(i % 4096),
                    target,
                    20000 + (i / 4096) as u16,
                    80,
                    TcpFlags::SYN,
                    p,
                )
            })
        })
        .collect();
    let body = format!(
        r#"{zones}
[screen.flood]
syn-flood = {{ attack-threshold = 1000, source-threshold = 100000, destination-threshold = 5000 }}
{web_body}"#,
        zones = configs::untrust_screened_zones("flood"),
        web_body = web_body(),
    );
    Profile {
        name: "syn-flood",
        title: "SYN flood at one server, screen syn-flood on, 64 B".into(),
        frames,
        body,
        rules: None,
        // A rate threshold per destination has no OpenFlow match: OVS
        // forwards the flood that the screen drops.
        openflow: web_openflow(""),
    }
}

fn rule_host(r: usize) -> Addr {
    v4(10, 200 + (r >> 16) as u8, (r >> 8) as u8, r as u8)
}

fn rules(name: &'static str, count: usize, n: usize) -> Profile {
    let frames = (0..n)
        .map(|i| {
            // Spread over the whole list, first to last.
            let r = (i as u64 * 2_654_435_761 % count as u64) as usize;
            sized(60, |p| {
                tcp(
                    client(i % 4096),
                    rule_host(r),
                    10000 + (i % 50000) as u16,
                    80,
                    TcpFlags::ACK | TcpFlags::PSH,
                    p,
                )
            })
        })
        .collect();
    let mut body = String::from(ZONES);
    body.push_str("\n[address-book]\n");
    for r in 0..count {
        let _ = writeln!(body, "h{r} = [\"{}/32\"]", rule_host(r));
    }
    for r in 0..count {
        let _ = write!(
            body,
            "\n{}",
            configs::policy(&format!("p{r}"), ("untrust", "trust"))
                .destination(&format!("h{r}"))
                .application("junos-http")
                .then("deny")
        );
    }
    body.push_str("\n[default-policy]\nthen = \"deny\"\n");
    let mut openflow = String::new();
    for r in 0..count {
        let _ = writeln!(
            openflow,
            "priority=100,tcp,in_port=a,nw_dst={},tp_dst=80,actions=drop",
            rule_host(r)
        );
    }
    openflow.push_str("priority=0,actions=drop\n");
    Profile {
        name,
        title: format!(
            "{count} policies, each with its own address-book /32; 64 B first packets spread over all (deny, no log: a policy lookup per packet)"
        ),
        frames,
        body,
        rules: Some(count),
        openflow,
    }
}

/// Session churn: every flow a ping and its answer, the 2,048 requests
/// first and their replies after them (so each session lives through 64
/// bursts: the journal cannot fold its open and close into nothing). Each
/// pass of the capture opens a session per flow (the request finds the
/// last pass's session answered and ended, and replaces it) and ends it
/// (the reply): 2,048 sessions opened and ended per pass of 4,096
/// packets, three changes each for a high-availability peer (the old one
/// removed, the new one opened, then ended).
fn ping_churn(n: usize) -> Profile {
    use rampart_pipeline::wire::build::{packet_vec, Ethernet, Ip, L4};
    let flows = (n / 2).max(1);
    let frames = (0..n)
        .map(|i| {
            let f = i % flows;
            let (c, s) = (client(f % 4096), v4(10, 1, 0, 10 + (f % 50) as u8));
            if i < flows {
                ping(c, s, f as u16, 1)
            } else {
                let [i0, i1] = (f as u16).to_be_bytes();
                let reply = L4::Icmp {
                    msg_type: rampart_pipeline::wire::icmpv4::msg_type::ECHO_REPLY,
                    code: 0,
                    rest: [i0, i1, 0, 1],
                };
                packet_vec(&Ethernet::DEFAULT, &Ip::new(s, c), &reply, &[0x5a; 32]).expect("fits")
            }
        })
        .collect();
    Profile {
        name: "ping-churn",
        title: format!(
            "session churn: {flows} pings, then their replies: a session opened and ended per flow and pass"
        ),
        frames,
        body: format!("{ZONES}\n{}", web_body()),
        rules: None,
        openflow: web_openflow(""),
    }
}

pub fn all_profiles(n: usize) -> Vec<Profile> {
    vec![
        established("est-64", 1, n, false),
        established("est-imix", 2, n, true),
        realistic(3, n),
        deny_storm(4, n),
        deny_storm_aggregated(4, n),
        syn_flood(n),
        ping_churn(n),
        rules("rules-10", 10, n),
        rules("rules-100", 100, n),
        rules("rules-1000", 1000, n),
        rules("rules-10000", 10000, n),
    ]
}

pub fn write_pcap(path: &Path, frames: &[Vec<u8>]) -> anyhow::Result<()> {
    let file = std::fs::File::create(path).with_context(|| path.display().to_string())?;
    let mut w = pcap::Writer::new(std::io::BufWriter::new(file))?;
    for (i, f) in frames.iter().enumerate() {
        w.write(1_700_000_000_000_000_000 + i as u64 * 1000, f)?;
    }
    w.finish()?.flush()?;
    Ok(())
}
