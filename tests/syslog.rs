//! A real rsyslog on loopback receives `rampart events --syslog` output over
//! UDP and over TCP (RFC 6587 octet counting) and files it; the lines are
//! RFC 5424 with the Junos structured data.

mod common;

use std::net::{TcpListener, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use rampart_pipeline::wire::TcpFlags;
use rampart_testkit::configs;
use rampart_testkit::traffic::{tcp, v4};

struct Rsyslog {
    child: Child,
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let p = l.local_addr().unwrap().port();
    let u = UdpSocket::bind(("127.0.0.1", p));
    drop(u);
    p
}

fn start_rsyslog(dir: &TempDir, udp: u16, tcp: u16) -> Option<Rsyslog> {
    let rsyslogd = ["/usr/sbin/rsyslogd", "/sbin/rsyslogd"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())?;
    let work = dir.path("rsyslog-work");
    std::fs::create_dir_all(&work).unwrap();
    let conf = dir.write(
        "rsyslog.conf",
        &format!(
            r#"global(workDirectory="{work}")
module(load="imudp")
module(load="imtcp")
input(type="imudp" address="127.0.0.1" port="{udp}" ruleset="rampart")
input(type="imtcp" address="127.0.0.1" port="{tcp}" ruleset="rampart")
template(name="raw" type="string" string="%rawmsg%\n")
template(name="parsed" type="string" string="%syslogfacility%|%syslogseverity%|%hostname%|%programname%|%syslogtag%|%msgid%|%msg%\n")
ruleset(name="rampart") {{
  action(type="omfile" file="{out}" template="raw" flushOnTXEnd="on" asyncWriting="off")
  action(type="omfile" file="{parsed}" template="parsed" flushOnTXEnd="on" asyncWriting="off")
}}
"#,
            work = work.display(),
            out = dir.path("syslog.out").display(),
            parsed = dir.path("parsed.out").display(),
        ),
    );
    let child = Command::new(rsyslogd)
        .args([
            "-n",
            "-f",
            conf.to_str().unwrap(),
            "-i",
            dir.path("rsyslog.pid").to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    // Wait until it listens on TCP.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", tcp)).is_err() {
        assert!(
            Instant::now() < deadline,
            "rsyslogd did not start listening"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(Rsyslog { child })
}

fn config(dir: &TempDir, test: &str, input: &std::path::Path) -> std::path::PathBuf {
    let empty = dir.path("empty.pcap");
    write_pcap(&empty, &[]);
    let d = dir.0.path().display();
    let interfaces = {
        let (untrust, trust) =
            configs::pcap_devices(input.display(), empty.display(), format!("{d}/out"));
        configs::untrust_into_trust(&untrust, &trust)
    };
    let deny_telnet = configs::policy("deny-telnet", ("untrust", "trust"))
        .application("junos-telnet")
        .then("deny")
        .log_all();
    dir.write(
        "rampart.toml",
        &format!(
            "{dataplane}{interfaces}{zones}{deny_telnet}",
            dataplane = configs::dataplane_with_sockets(&test_eal(test), d),
            zones = configs::UNTRUST_AND_TRUST_ZONES,
        ),
    )
}

/// What rsyslog parsed of each deny: facility, severity, host name,
/// program, tag, MSGID, message (waits up to 10 s for `want` of them).
fn parsed_denies(dir: &TempDir, want: usize) -> Vec<Vec<String>> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let parsed: Vec<Vec<String>> = std::fs::read_to_string(dir.path("parsed.out"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("RT_FLOW_SESSION_DENY") || l.contains("session denied"))
            .map(|l| l.splitn(7, '|').map(String::from).collect())
            .collect();
        if parsed.len() >= want || Instant::now() > deadline {
            return parsed;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn forward_through(scheme: &str, framing: &str) {
    let dir = TempDir::new();
    let (udp_port, tcp_port) = (free_port(), free_port());
    let Some(_rsyslog) = start_rsyslog(&dir, udp_port, tcp_port) else {
        panic!("rsyslogd is not installed; meson-scripts/setup.sh installs it");
    };
    let frames: Vec<Vec<u8>> = (0..20u8)
        .map(|i| {
            tcp(
                v4(192, 0, 2, i + 1),
                v4(10, 1, 0, 10),
                40000,
                23,
                TcpFlags::SYN,
                &[],
            )
        })
        .collect();
    let input = dir.path("in.pcap");
    write_pcap(&input, &frames);
    let cfg = config(&dir, &format!("syslog-{scheme}-{framing}"), &input);
    let port = if scheme == "udp" { udp_port } else { tcp_port };
    let consumer = rampart()
        .args([
            "events",
            "--socket",
            dir.path("events.sock").to_str().unwrap(),
            "--syslog",
            &format!("{scheme}://127.0.0.1:{port}"),
            "--syslog-framing",
            framing,
            "--once",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    run_ok(&[
        "--config",
        cfg.to_str().unwrap(),
        "--idle-exit",
        "1",
        "--wait-consumer",
        "20",
    ]);
    let out = consumer.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = dir.path("syslog.out");
    let deadline = Instant::now() + Duration::from_secs(10);
    let lines = loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let lines: Vec<String> = text
            .lines()
            .filter(|l| l.contains("RT_FLOW_SESSION_DENY"))
            .map(String::from)
            .collect();
        if lines.len() >= frames.len() || Instant::now() > deadline {
            break lines;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        lines.len(),
        frames.len(),
        "rsyslog filed every deny:\n{}",
        lines.join("\n")
    );
    let parsed = parsed_denies(&dir, frames.len());
    assert_eq!(parsed.len(), frames.len(), "{parsed:?}");
    let host = rampart_events::syslog::local_hostname();
    for p in &parsed {
        // user.info, the host, program RT_FLOW, as for a real SRX's lines.
        assert_eq!(&p[..4], ["1", "6", host.as_str(), "RT_FLOW"], "{p:?}");
    }
    if framing != "bsd" {
        for p in &parsed {
            assert_eq!(
                (p[4].as_str(), p[5].as_str()),
                ("RT_FLOW", "RT_FLOW_SESSION_DENY"),
                "{p:?}"
            );
        }
    }
    if framing == "bsd" {
        // `<14>Mmm dd hh:mm:ss HOST RT_FLOW: RT_FLOW_SESSION_DENY: ...`
        for (l, p) in lines.iter().zip(&parsed) {
            assert!(l.starts_with("<14>"), "{l}");
            assert!(
                l.contains(&format!(
                    " {host} RT_FLOW: RT_FLOW_SESSION_DENY: session denied 192.0.2."
                )),
                "{l}"
            );
            assert_eq!(p[4], "RT_FLOW:", "{p:?}");
            let msg = p[6].trim_start();
            assert!(
                msg.starts_with("RT_FLOW_SESSION_DENY: session denied 192.0.2.")
                    && msg.contains("/40000->10.1.0.10/23 0x0 junos-telnet 6(0) deny-telnet untrust trust UNKNOWN UNKNOWN N/A(N/A) ge-0/0/0.0 UNKNOWN policy deny"),
                "{msg}"
            );
        }
        return;
    }
    let rfc5424 = regex_lite(&lines[0]);
    assert!(rfc5424, "RFC 5424 with Junos structured data: {}", lines[0]);
    assert!(lines.iter().any(
        |l| l.contains("source-address=\"192.0.2.1\"") && l.contains("destination-port=\"23\"")
    ));
    assert!(
        lines
            .iter()
            .all(|l| l.contains("policy-name=\"deny-telnet\"")),
        "{}",
        lines[0]
    );
}

/// `<PRI>1 TIMESTAMP HOST APP - MSGID [junos@2636.1.1.1.2.129 k="v" ...]`
fn regex_lite(line: &str) -> bool {
    let Some(rest) = line.strip_prefix('<') else {
        return false;
    };
    let Some((pri, rest)) = rest.split_once(">1 ") else {
        return false;
    };
    let pri_ok = pri.parse::<u8>().is_ok_and(|p| p < 192);
    let fields: Vec<&str> = rest.splitn(6, ' ').collect();
    pri_ok
        && fields.len() == 6
        && fields[0].contains('T')
        && fields[0].ends_with('Z')
        && fields[2] == "RT_FLOW"
        && fields[3] == "-"
        && fields[4] == "RT_FLOW_SESSION_DENY"
        && fields[5].starts_with("[junos@2636.1.1.1.2.129 ")
}

#[test]
fn rsyslog_files_udp_forwarded_events() {
    forward_through("udp", "rfc5424");
}

/// The BSD framing (RFC 3164 with the Junos tag) as parsers written for
/// older SRX logs read it, through a real rsyslog.
#[test]
fn rsyslog_reads_bsd_framed_junos_lines() {
    forward_through("udp", "bsd");
}

#[test]
fn rsyslog_files_tcp_octet_counted_events() {
    forward_through("tcp", "rfc5424");
}
