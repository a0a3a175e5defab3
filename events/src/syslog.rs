//! RFC 5424 output: the `junos-sd` format (Junos structured-data "brief"
//! lines, `[junos@2636.1.1.1.2.129 ...]` in Junos parameter order) and
//! syslog forwarding over UDP (one datagram per message, RFC 5426) or TCP
//! (RFC 6587 octet counting, `LEN SP MSG`).

use std::fmt::Write as _;
use std::io::{self, Write};
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::time::Duration;

use crate::decode::{NameCache, PacketEvent, Record};
use crate::render::{
    junos_attack_name, junos_interface, junos_name, junos_service, junos_tag, write_json,
    write_junos_event, write_rfc3339, Format,
};
use crate::types::{Event, FilterAction, Names, NO_ID16, NO_ID32};

/// The SD-ID of Junos security log structured data.
pub const JUNOS_SD_ID: &str = "junos@2636.1.1.1.2.129";

/// Syslog severities (RFC 5424 table 2) used here.
pub mod severity {
    pub const ERROR: u8 = 3;
    pub const WARNING: u8 = 4;
    pub const NOTICE: u8 = 5;
    pub const INFO: u8 = 6;
}

/// RFC 5424 header options.
#[derive(Debug, Clone)]
pub struct SyslogOptions {
    /// HOSTNAME field (`-` if empty).
    pub hostname: String,
    /// Facility (default 1, user-level, as Junos security logs use).
    pub facility: u8,
}

impl Default for SyslogOptions {
    fn default() -> Self {
        SyslogOptions {
            hostname: local_hostname(),
            facility: 1,
        }
    }
}

/// The kernel's host name (or `-`).
pub fn local_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty() && s.is_ascii() && !s.contains(' '))
        .unwrap_or_else(|| "-".to_owned())
}

/// Per-type severity, as a real SRX sends them so that SIEM dashboards
/// filtering on the level file Rampart's lines with the SRX's: every
/// RT_FLOW message (session create, close and deny) informational,
/// RT_SCREEN error; filter discards warnings, accepted filter logs
/// notices; loss records warnings, other control records informational.
pub fn severity_of(rec: &Record<'_>) -> u8 {
    match rec {
        Record::Event(e) => match &e.event {
            Event::PolicyDeny(_) => severity::INFO,
            Event::ScreenDrop(_) => severity::ERROR,
            Event::FilterLog(f) if f.action != FilterAction::Accept => severity::WARNING,
            Event::FilterLog(_) => severity::NOTICE,
            Event::SessionOpen(_) | Event::SessionClose(_) => severity::INFO,
        },
        Record::Loss(_) => severity::WARNING,
        _ => severity::INFO,
    }
}

/// Appends `<PRI>1 TIMESTAMP HOSTNAME APP-NAME - MSGID ` (timestamp of
/// `ts_ns` with microseconds, UTC).
pub fn write_header(
    out: &mut String,
    opts: &SyslogOptions,
    severity: u8,
    ts_ns: u64,
    app: &str,
    msgid: &str,
) {
    let pri = u16::from(opts.facility.min(23)) * 8 + u16::from(severity.min(7));
    let _ = write!(out, "<{pri}>1 ");
    write_rfc3339(out, ts_ns, 6);
    let host = if opts.hostname.is_empty() {
        "-"
    } else {
        opts.hostname.as_str()
    };
    let _ = write!(out, " {host} {app} - {msgid} ");
}

/// Appends ` name="value"` with RFC 5424 PARAM-VALUE escaping.
fn param(out: &mut String, name: &str, value: &str) {
    let _ = write!(out, " {name}=\"");
    for c in value.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

fn param_fmt(out: &mut String, name: &str, value: impl std::fmt::Display) {
    let _ = write!(out, " {name}=\"{value}\"");
}

fn named(f: impl FnOnce(&mut String)) -> String {
    let mut s = String::new();
    f(&mut s);
    s
}

fn timestamp_of(rec: &Record<'_>) -> u64 {
    match rec {
        Record::Event(e) => e.meta.ts_ns,
        Record::Stats(s) => s.ts_ns,
        Record::Loss(l) => l.ts_ns,
        Record::Hello(h) => h.start_time_ns,
        _ => 0,
    }
}

/// Appends the Junos structured data element of a packet event.
pub fn write_junos_sd_params(e: &PacketEvent<'_>, names: &Names, out: &mut String) {
    let m = &e.meta;
    let zone = |id: u16| named(|s| junos_name(s, names.zone(id), id.into(), NO_ID16.into()));
    let policy = |id: u32| named(|s| junos_name(s, names.policy(id), id.into(), NO_ID32.into()));
    let iface = |id: u16| named(|s| junos_interface(s, names, id));
    out.push('[');
    out.push_str(JUNOS_SD_ID);
    let flow = |out: &mut String| {
        param_fmt(out, "source-address", m.src_ip());
        param_fmt(out, "source-port", m.src_port);
        param_fmt(out, "destination-address", m.dst_ip());
        param_fmt(out, "destination-port", m.dst_port);
        param(out, "connection-tag", "0");
        param(out, "service-name", junos_service(m));
    };
    let nat = |out: &mut String| {
        param_fmt(out, "nat-source-address", m.src_ip());
        param_fmt(out, "nat-source-port", m.src_port);
        param_fmt(out, "nat-destination-address", m.dst_ip());
        param_fmt(out, "nat-destination-port", m.dst_port);
        param(out, "nat-connection-tag", "0");
        param(out, "src-nat-rule-type", "N/A");
        param(out, "src-nat-rule-name", "N/A");
        param(out, "dst-nat-rule-type", "N/A");
        param(out, "dst-nat-rule-name", "N/A");
        param_fmt(out, "protocol-id", m.protocol);
    };
    match &e.event {
        Event::PolicyDeny(d) => {
            flow(out);
            param_fmt(out, "protocol-id", m.protocol);
            param_fmt(out, "icmp-type", m.icmp_type);
            param(out, "policy-name", &policy(d.policy));
            param(out, "source-zone-name", &zone(m.from_zone));
            param(out, "destination-zone-name", &zone(m.to_zone));
            param(out, "application", "UNKNOWN");
            param(out, "nested-application", "UNKNOWN");
            param(out, "username", "N/A");
            param(out, "roles", "N/A");
            param(out, "packet-incoming-interface", &iface(m.ingress));
            param(out, "encrypted", "UNKNOWN");
            param(
                out,
                "reason",
                if d.reject {
                    "policy reject"
                } else {
                    "policy deny"
                },
            );
            param(out, "session-id-32", "0");
        }
        Event::SessionOpen(s) => {
            flow(out);
            nat(out);
            param(out, "policy-name", &policy(s.policy));
            param(out, "source-zone-name", &zone(m.from_zone));
            param(out, "destination-zone-name", &zone(m.to_zone));
            param_fmt(out, "session-id-32", s.session_id);
            param(out, "username", "N/A");
            param(out, "roles", "N/A");
            param(out, "packet-incoming-interface", &iface(m.ingress));
            param(out, "application", "UNKNOWN");
            param(out, "nested-application", "UNKNOWN");
            param(out, "encrypted", "UNKNOWN");
        }
        Event::SessionClose(s) => {
            param(out, "reason", s.reason.junos_text());
            flow(out);
            nat(out);
            param(out, "policy-name", &policy(s.policy));
            param(out, "source-zone-name", &zone(m.from_zone));
            param(out, "destination-zone-name", &zone(m.to_zone));
            param_fmt(out, "session-id-32", s.session_id);
            param_fmt(out, "packets-from-client", s.packets_client);
            param_fmt(out, "bytes-from-client", s.bytes_client);
            param_fmt(out, "packets-from-server", s.packets_server);
            param_fmt(out, "bytes-from-server", s.bytes_server);
            param_fmt(out, "elapsed-time", s.elapsed_ns / 1_000_000_000);
            param(out, "application", "UNKNOWN");
            param(out, "nested-application", "UNKNOWN");
            param(out, "username", "N/A");
            param(out, "roles", "N/A");
            param(out, "packet-incoming-interface", &iface(m.ingress));
            param(out, "encrypted", "UNKNOWN");
        }
        Event::ScreenDrop(s) => {
            let (_, tag) = junos_tag(e);
            param(out, "attack-name", junos_attack_name(s.option, m));
            param_fmt(out, "source-address", m.src_ip());
            if matches!(tag, "RT_SCREEN_TCP" | "RT_SCREEN_UDP") {
                param_fmt(out, "source-port", m.src_port);
            }
            param_fmt(out, "destination-address", m.dst_ip());
            if matches!(tag, "RT_SCREEN_TCP" | "RT_SCREEN_UDP") {
                param_fmt(out, "destination-port", m.dst_port);
            }
            if tag == "RT_SCREEN_IP" {
                param_fmt(out, "protocol-id", m.protocol);
            }
            param(out, "source-zone-name", &zone(m.from_zone));
            param(out, "interface-name", &iface(m.ingress));
            param(
                out,
                "action",
                if s.alarm_only {
                    "alarm-without-drop"
                } else {
                    "drop"
                },
            );
        }
        Event::FilterLog(f) => {
            // Rampart extension (Junos has no structured filter log).
            param(
                out,
                "filter-name",
                &named(|s| junos_name(s, names.filter(f.filter), f.filter.into(), NO_ID16.into())),
            );
            param(
                out,
                "term-name",
                &named(|s| {
                    junos_name(
                        s,
                        names.term(f.filter, f.term),
                        f.term.into(),
                        NO_ID16.into(),
                    )
                }),
            );
            param(out, "direction", f.direction.name());
            param(out, "action", f.action.name());
            param_fmt(out, "protocol-id", m.protocol);
            param_fmt(out, "source-address", m.src_ip());
            param_fmt(out, "source-port", m.src_port);
            param_fmt(out, "destination-address", m.dst_ip());
            param_fmt(out, "destination-port", m.dst_port);
            param(out, "interface-name", &iface(m.ingress));
        }
    }
    out.push(']');
}

/// `junos-sd` format: `<PRI>1 TS HOST RT_FLOW - RT_FLOW_SESSION_DENY [junos@... ...]`
/// (Junos "structured-data brief": no free-text message). Packet events only.
pub fn write_junos_sd(
    rec: &Record<'_>,
    cache: &NameCache,
    opts: &SyslogOptions,
    out: &mut String,
) -> bool {
    let Record::Event(e) = rec else { return false };
    let (app, msgid) = junos_tag(e);
    write_header(out, opts, severity_of(rec), e.meta.ts_ns, app, msgid);
    write_junos_sd_params(e, cache.names(e.names_generation()), out);
    true
}

/// One RFC 5424 syslog message for `rec` in `format`: `junos-sd` as is;
/// `junos` with APP-NAME RT_FLOW/RT_IDS, MSGID the tag, no SD, MSG the text;
/// `json` and `droplog` with APP-NAME `rampart`, MSGID the record type.
pub fn write_syslog_message(
    format: Format,
    rec: &Record<'_>,
    cache: &NameCache,
    opts: &SyslogOptions,
    out: &mut String,
) -> bool {
    match format {
        Format::JunosSd => write_junos_sd(rec, cache, opts, out),
        Format::Junos => {
            let Record::Event(e) = rec else { return false };
            let (app, msgid) = junos_tag(e);
            write_header(out, opts, severity_of(rec), e.meta.ts_ns, app, msgid);
            out.push_str("- ");
            write_junos_event(e, cache.names(e.names_generation()), out);
            true
        }
        Format::Json | Format::Droplog => {
            let mut body = String::new();
            let ok = if format == Format::Json {
                write_json(rec, cache, &mut body);
                true
            } else {
                crate::render::write_droplog(rec, cache, &mut body)
            };
            if !ok {
                return false;
            }
            write_header(
                out,
                opts,
                severity_of(rec),
                timestamp_of(rec),
                "rampart",
                rec.type_name(),
            );
            out.push_str("- ");
            out.push_str(&body);
            true
        }
    }
}

/// Where `--syslog` sends messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyslogTarget {
    /// `udp://host:port`: one datagram per message.
    Udp(String),
    /// `tcp://host:port`: RFC 6587 octet counting.
    Tcp(String),
}

impl std::str::FromStr for SyslogTarget {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (scheme, addr) = s
            .split_once("://")
            .ok_or_else(|| format!("{s:?}: expected udp://HOST:PORT or tcp://HOST:PORT"))?;
        let valid = match addr.rsplit_once(':') {
            Some((h, p)) => !h.is_empty() && p.parse::<u16>().is_ok(),
            None => false,
        };
        if !valid {
            return Err(format!("{s:?}: expected HOST:PORT after {scheme}://"));
        }
        match scheme {
            "udp" => Ok(SyslogTarget::Udp(addr.to_owned())),
            "tcp" => Ok(SyslogTarget::Tcp(addr.to_owned())),
            _ => Err(format!("{s:?}: scheme must be udp or tcp")),
        }
    }
}

/// Sends syslog messages to a [`SyslogTarget`]. TCP reconnects once per
/// message on failure.
pub struct SyslogForwarder {
    target: SyslogTarget,
    udp: Option<UdpSocket>,
    tcp: Option<TcpStream>,
    frame: Vec<u8>,
}

impl SyslogForwarder {
    pub fn connect(target: &SyslogTarget) -> io::Result<Self> {
        let mut f = SyslogForwarder {
            target: target.clone(),
            udp: None,
            tcp: None,
            frame: Vec::with_capacity(2048),
        };
        f.reconnect()?;
        Ok(f)
    }

    fn reconnect(&mut self) -> io::Result<()> {
        match &self.target {
            SyslogTarget::Udp(addr) => {
                let dest = addr
                    .to_socket_addrs()?
                    .next()
                    .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, addr.clone()))?;
                let bind = if dest.is_ipv4() {
                    "0.0.0.0:0"
                } else {
                    "[::]:0"
                };
                let s = UdpSocket::bind(bind)?;
                s.connect(dest)?;
                self.udp = Some(s);
            }
            SyslogTarget::Tcp(addr) => {
                let dest = addr
                    .to_socket_addrs()?
                    .next()
                    .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, addr.clone()))?;
                let s = TcpStream::connect_timeout(&dest, Duration::from_secs(5))?;
                s.set_nodelay(true)?;
                self.tcp = Some(s);
            }
        }
        Ok(())
    }

    /// Sends one message (without trailing newline).
    pub fn send(&mut self, msg: &str) -> io::Result<()> {
        if let Some(u) = &self.udp {
            // A refused datagram (nobody listening yet) is not fatal for UDP.
            return match u.send(msg.as_bytes()) {
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => Ok(()),
                r => r.map(|_| ()),
            };
        }
        self.frame.clear();
        let _ = write!(self.frame, "{} ", msg.len());
        self.frame.extend_from_slice(msg.as_bytes());
        for attempt in 0..2 {
            if self.tcp.is_none() || attempt > 0 {
                self.tcp = None;
                self.reconnect()?;
            }
            if let Some(t) = &mut self.tcp {
                if t.write_all(&self.frame).is_ok() {
                    return Ok(());
                }
            }
        }
        Err(io::Error::new(
            io::ErrorKind::BrokenPipe,
            "syslog TCP connection failed",
        ))
    }
}
