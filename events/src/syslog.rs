//! RFC 5424 output: the `junos-sd` format (Junos structured-data "brief"
//! lines, `[junos@2636.1.1.1.2.129 ...]` in Junos parameter order) and
//! syslog forwarding over UDP (one datagram per message, RFC 5426) or TCP
//! (RFC 6587 octet counting, `LEN SP MSG`).

use std::fmt::Write as _;
use std::io::{self, Write};
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::time::Duration;

use crate::decode::{NameCache, Record};
use crate::junos;
pub use crate::junos::JUNOS_SD_ID;
use crate::render::{write_json, write_rfc3339, Format};
use crate::types::Event;

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

/// [`SyslogOptions::default`], made once: `render` uses it for every
/// `junos-sd` line, and the host name is a file read.
pub fn default_options() -> &'static SyslogOptions {
    static DEFAULT: std::sync::OnceLock<SyslogOptions> = std::sync::OnceLock::new();
    DEFAULT.get_or_init(SyslogOptions::default)
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
/// RT_FLOW message (session create, close and deny) and firewall filter
/// log informational, RT_SCREEN error; loss records warnings, other
/// control records informational.
pub fn severity_of(rec: &Record<'_>) -> u8 {
    match rec {
        Record::Event(e) => match &e.event {
            Event::ScreenDrop(_) | Event::ScreenEpisode(_) => severity::ERROR,
            Event::PolicyDeny(_)
            | Event::FilterLog(_)
            | Event::SessionOpen(_)
            | Event::SessionClose(_) => severity::INFO,
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

fn timestamp_of(rec: &Record<'_>) -> u64 {
    match rec {
        Record::Event(e) => e.meta.ts_ns,
        Record::Stats(s) => s.ts_ns,
        Record::Loss(l) => l.ts_ns,
        Record::Hello(h) => h.start_time_ns,
        _ => 0,
    }
}

/// `junos-sd` format, as a real SRX sends with `structured-data brief`:
/// `<PRI>1 TS HOST RT_FLOW - RT_FLOW_SESSION_DENY [junos@... ...]`. A
/// firewall filter log has no structured data on an SRX either: it goes as
/// `<PRI>1 TS HOST - - - - PFE_FW_SYSLOG_IP: FW: ...`. Packet events only.
pub fn write_junos_sd(
    rec: &Record<'_>,
    cache: &NameCache,
    opts: &SyslogOptions,
    out: &mut String,
) -> bool {
    write_junos_5424(rec, cache, opts, true, out)
}

/// A Junos message as RFC 5424: with `structured_data`, the `junos-sd`
/// form; else the plain text, whose APP-NAME and MSGID say what the tag
/// says, so the message is the text alone (`session denied ...`), as an SRX
/// writes its text after the structured data. Filter logs are text either
/// way, without APP-NAME or MSGID, as an SRX sends them.
fn write_junos_5424(
    rec: &Record<'_>,
    cache: &NameCache,
    opts: &SyslogOptions,
    structured_data: bool,
    out: &mut String,
) -> bool {
    let Record::Event(e) = rec else { return false };
    let names = cache.names(e.names_generation());
    let msg = junos::message(e);
    let severity = severity_of(rec);
    match msg.app {
        Some(app) => {
            write_header(out, opts, severity, e.meta.ts_ns, app, msg.tag);
            if structured_data && msg.structured {
                junos::write_structured(e, names, out);
            } else {
                out.push_str("- ");
                junos::write_body(e, names, &msg, out);
            }
        }
        None => {
            write_header(out, opts, severity, e.meta.ts_ns, "-", "-");
            out.push_str("- ");
            junos::write_text(e, names, out);
        }
    }
    true
}

/// The Junos plain text of an event as BSD syslog (RFC 3164), the framing
/// parsers written for older SRX logs read: `<PRI>Mmm dd hh:mm:ss HOST
/// RT_FLOW: RT_FLOW_SESSION_CREATE: session created ...`; a filter log
/// `HOST PFE_FW_SYSLOG_IP: FW: ...`. The timestamp is UTC (RFC 3164 has no
/// zone). Packet events only.
pub fn write_bsd(
    rec: &Record<'_>,
    cache: &NameCache,
    opts: &SyslogOptions,
    out: &mut String,
) -> bool {
    let Record::Event(e) = rec else { return false };
    let names = cache.names(e.names_generation());
    let msg = junos::message(e);
    let pri = u16::from(opts.facility.min(23)) * 8 + u16::from(severity_of(rec).min(7));
    let _ = write!(out, "<{pri}>");
    write_bsd_timestamp(out, e.meta.ts_ns);
    let host = if opts.hostname.is_empty() {
        "-"
    } else {
        opts.hostname.as_str()
    };
    let _ = write!(out, " {host} ");
    if let Some(app) = msg.app {
        out.push_str(app);
        out.push_str(": ");
    }
    junos::write_text(e, names, out);
    true
}

/// `Mmm dd hh:mm:ss` (RFC 3164 4.1.2: the day space-padded), UTC.
fn write_bsd_timestamp(out: &mut String, ts_ns: u64) {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = ts_ns / 1_000_000_000;
    let (_, month, day) = crate::render::civil_from_days((secs / 86_400) as i64);
    let t = secs % 86_400;
    let _ = write!(
        out,
        "{} {day:>2} {:02}:{:02}:{:02}",
        MONTHS[(month as usize - 1) % 12],
        t / 3600,
        t / 60 % 60,
        t % 60
    );
}

/// Syslog framing of `--syslog`: RFC 5424 (structured data or text) or BSD
/// (RFC 3164 with the Junos tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Framing {
    #[default]
    Rfc5424,
    Bsd,
}

impl std::str::FromStr for Framing {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "rfc5424" => Ok(Framing::Rfc5424),
            "bsd" | "rfc3164" => Ok(Framing::Bsd),
            _ => Err(format!("{s:?}: framing must be rfc5424 or bsd")),
        }
    }
}

/// One syslog message for `rec` in `format` and `framing`. RFC 5424:
/// `junos-sd` as is; `junos` with APP-NAME RT_FLOW/RT_IDS, MSGID the tag,
/// no SD, MSG the text; `json` and `droplog` with APP-NAME `rampart`,
/// MSGID the record type. BSD: the Junos text whatever the format.
pub fn write_syslog_message(
    format: Format,
    framing: Framing,
    rec: &Record<'_>,
    cache: &NameCache,
    opts: &SyslogOptions,
    out: &mut String,
) -> bool {
    if framing == Framing::Bsd {
        return write_bsd(rec, cache, opts, out);
    }
    match format {
        Format::JunosSd => write_junos_sd(rec, cache, opts, out),
        Format::Junos => write_junos_5424(rec, cache, opts, false, out),
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
    /// Where each gathered TCP message ends in `frame`: a write cut short
    /// resumes at the first message not wholly written, so none is sent
    /// twice, and what cannot be sent is counted by message.
    ends: Vec<usize>,
    /// Messages given up: TCP, the collector unreachable after a
    /// reconnect; UDP, datagrams the host could not send (or refused).
    dropped: u64,
}

impl SyslogForwarder {
    pub fn connect(target: &SyslogTarget) -> io::Result<Self> {
        let mut f = SyslogForwarder {
            target: target.clone(),
            udp: None,
            tcp: None,
            frame: Vec::with_capacity(2048),
            ends: Vec::new(),
            dropped: 0,
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

    /// Sends one message (without trailing newline): a UDP datagram at
    /// once; over TCP, octet-counted frames are gathered and written in
    /// large batches (see [`SyslogForwarder::flush`]).
    pub fn send(&mut self, msg: &str) -> io::Result<()> {
        if let Some(u) = &self.udp {
            // A refused datagram (nobody listening yet) is not fatal for
            // UDP; it is counted like any datagram the host could not send.
            return match u.send(msg.as_bytes()) {
                Ok(_) => Ok(()),
                Err(e) => {
                    self.dropped += 1;
                    match e.kind() {
                        io::ErrorKind::ConnectionRefused => Ok(()),
                        _ => Err(e),
                    }
                }
            };
        }
        let _ = write!(self.frame, "{} ", msg.len());
        self.frame.extend_from_slice(msg.as_bytes());
        self.ends.push(self.frame.len());
        if self.frame.len() >= TCP_BATCH {
            return self.flush();
        }
        Ok(())
    }

    /// Writes the TCP frames gathered so far (the caller flushes whenever
    /// its input pauses), reconnecting once if the connection failed: the
    /// new connection starts at the first message the old one did not take
    /// whole. Messages that still cannot go are dropped and counted
    /// ([`SyslogForwarder::dropped`]).
    pub fn flush(&mut self) -> io::Result<()> {
        if self.frame.is_empty() {
            return Ok(());
        }
        // Bytes known written, always at a message boundary.
        let mut start = 0;
        let mut error = None;
        for attempt in 0..2 {
            if self.tcp.is_none() || attempt > 0 {
                self.tcp = None;
                if let Err(e) = self.reconnect() {
                    error = Some(e);
                    break;
                }
            }
            let Some(t) = self.tcp.as_mut() else { break };
            let mut at = start;
            let written = loop {
                if at == self.frame.len() {
                    break Ok(());
                }
                match t.write(&self.frame[at..]) {
                    Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) => at += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => break Err(e),
                }
            };
            match written {
                Ok(()) => {
                    self.frame.clear();
                    self.ends.clear();
                    return Ok(());
                }
                Err(e) => {
                    // A message cut by the failure goes again whole.
                    start = self
                        .ends
                        .iter()
                        .rev()
                        .find(|&&end| end <= at)
                        .copied()
                        .unwrap_or(0);
                    error = Some(e);
                }
            }
        }
        self.dropped += self.ends.iter().filter(|&&end| end > start).count() as u64;
        self.frame.clear();
        self.ends.clear();
        Err(error.unwrap_or_else(|| {
            io::Error::new(io::ErrorKind::BrokenPipe, "syslog TCP connection failed")
        }))
    }

    /// Messages given up because the collector could not be reached.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

/// Bytes of TCP syslog frames gathered before a write.
const TCP_BATCH: usize = 64 << 10;

impl Drop for SyslogForwarder {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;

    /// Messages go whole and once; when the collector is gone for good,
    /// the batch that cannot reach it is counted, message by message.
    #[test]
    fn tcp_messages_that_cannot_reach_the_collector_are_counted() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let target = SyslogTarget::Tcp(listener.local_addr().unwrap().to_string());
        let mut f = SyslogForwarder::connect(&target).unwrap();
        let (mut conn, _) = listener.accept().unwrap();
        for i in 0..3 {
            f.send(&format!("first {i}")).unwrap();
        }
        f.flush().unwrap();
        let mut got = [0u8; 27];
        conn.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"7 first 07 first 17 first 2");
        assert_eq!(f.dropped(), 0);

        // The collector goes away. The kernel may take one more batch
        // before it learns of the reset (TCP syslog has no acknowledgement);
        // the next fails, no reconnect is possible, and it is counted.
        drop(conn);
        drop(listener);
        let mut failed = false;
        for round in 0..20 {
            std::thread::sleep(Duration::from_millis(20));
            for i in 0..5 {
                f.send(&format!("round {round} message {i}")).unwrap();
            }
            if f.flush().is_err() {
                failed = true;
                break;
            }
        }
        assert!(failed, "writes to a closed collector fail");
        assert_eq!(f.dropped(), 5, "the failed batch, by message");
    }
}
