//! RFC 5424 output: the `junos-sd` format (Junos structured-data "brief"
//! lines, `[junos@2636.1.1.1.2.129 ...]` in Junos parameter order) and
//! syslog forwarding over UDP (one datagram per message, RFC 5426) or TCP
//! (RFC 6587 octet counting, `LEN SP MSG`).

use std::fmt::Write as _;
use std::io::{self, Write};
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::decode::{NameCache, Record};
use crate::format::Format;
use crate::json::write_json;
use crate::junos;
pub use crate::junos::JUNOS_SD_ID;
use crate::text::write_rfc3339;
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
    /// HOSTNAME of a stream whose hello names no node (an older producer):
    /// otherwise the HOSTNAME is the hello's node (`[dataplane] node`), so
    /// that the streams of several dataplanes forwarded from one host can
    /// be told apart (`-` if empty).
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

/// The HOSTNAME of `cache`'s stream: its hello's node, or, without one (or
/// with one no valid node name, from a buggy producer), `opts.hostname`.
pub fn hostname_of<'a>(cache: &'a NameCache, opts: &'a SyslogOptions) -> &'a str {
    match cache.hello() {
        Some(h) if rampart_vocab::node_name_ok(&h.node) => &h.node,
        _ if opts.hostname.is_empty() => "-",
        _ => &opts.hostname,
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
/// `ts_ns` with microseconds, UTC; HOSTNAME `host`, see [`hostname_of`]).
pub fn write_header(
    out: &mut String,
    opts: &SyslogOptions,
    host: &str,
    severity: u8,
    ts_ns: u64,
    app: &str,
    msgid: &str,
) {
    let pri = u16::from(opts.facility.min(23)) * 8 + u16::from(severity.min(7));
    let _ = write!(out, "<{pri}>1 ");
    write_rfc3339(out, ts_ns, 6);
    let host = if host.is_empty() { "-" } else { host };
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
    let host = hostname_of(cache, opts);
    match msg.app {
        Some(app) => {
            write_header(out, opts, host, severity, e.meta.ts_ns, app, msg.tag);
            if structured_data && msg.structured {
                junos::write_structured(e, names, out);
            } else {
                out.push_str("- ");
                junos::write_body(e, names, &msg, out);
            }
        }
        None => {
            write_header(out, opts, host, severity, e.meta.ts_ns, "-", "-");
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
    let pri = u16::from(opts.facility.min(23)) * 8 + u16::from(severity_of(rec).min(7));
    write_log_line(rec, cache, opts, Some(pri), out)
}

/// A record as a line of an SRX's log file (`/var/log/messages`):
/// `Mmm dd hh:mm:ss HOST APP: TAG: message`, after `<PRI>` for a BSD
/// syslog message; `rampart events --format junos` prints these. Packet
/// events, and reloads taken or refused (APP `rampart`); false for the
/// other records.
pub fn write_log_line(
    rec: &Record<'_>,
    cache: &NameCache,
    opts: &SyslogOptions,
    pri: Option<u16>,
    out: &mut String,
) -> bool {
    let (ts_ns, app) = match rec {
        Record::Event(e) => (e.meta.ts_ns, junos::message(e).app),
        Record::Hello(_) if cache.reloaded() => (now_ns(), Some("rampart")),
        Record::ConfigReject(r) => (r.ts_ns, Some("rampart")),
        _ => return false,
    };
    if let Some(pri) = pri {
        let _ = write!(out, "<{pri}>");
    }
    write_bsd_timestamp(out, ts_ns);
    let _ = write!(out, " {} ", hostname_of(cache, opts));
    if let Some(app) = app {
        out.push_str(app);
        out.push_str(": ");
    }
    junos::write_record(rec, cache, out)
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// `Mmm dd hh:mm:ss` (RFC 3164 4.1.2: the day space-padded), UTC.
fn write_bsd_timestamp(out: &mut String, ts_ns: u64) {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = ts_ns / 1_000_000_000;
    let (_, month, day) = crate::text::civil_from_days((secs / 86_400) as i64);
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
                crate::droplog::write_droplog(rec, cache, &mut body)
            };
            if !ok {
                return false;
            }
            write_header(
                out,
                opts,
                hostname_of(cache, opts),
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

impl std::fmt::Display for SyslogTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SyslogTarget::Udp(addr) => write!(f, "udp://{addr}"),
            SyslogTarget::Tcp(addr) => write!(f, "tcp://{addr}"),
        }
    }
}

/// Longest a TCP flush waits for the collector to take its batch. A
/// collector that accepts and stops reading is a broken connection: the
/// forwarder has to get back to reading the event socket (the dataplane
/// cuts off a consumer that stops reading for about 5 s).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest one TCP connection attempt may take. Only the first, at start,
/// is waited for; later ones run on a thread of their own, as a host that
/// drops SYNs would otherwise hold the reader for this long each time.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// First wait before another TCP connection attempt, doubled after each
/// failed one up to [`MAX_BACKOFF`] (rsyslog's omfwd does the same).
pub const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait between TCP connection attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A TCP connection that lasted this long before it broke resets the
/// backoff and is re-opened at once (the collector restarted); one that
/// broke sooner does not, or a collector that accepts and stops reading
/// would hold the reader for [`WRITE_TIMEOUT`] every [`FIRST_BACKOFF`].
pub const STABLE_CONNECTION: Duration = Duration::from_secs(10);
/// At most one line about lost messages per interval on stderr.
pub const REPORT_INTERVAL: Duration = Duration::from_secs(5);

/// How a [`SyslogForwarder`] waits on its collector: the constants above
/// by default (tests shorten them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForwarderTimings {
    pub write_timeout: Duration,
    pub connect_timeout: Duration,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    pub stable_connection: Duration,
    pub report_interval: Duration,
}

impl Default for ForwarderTimings {
    fn default() -> Self {
        ForwarderTimings {
            write_timeout: WRITE_TIMEOUT,
            connect_timeout: CONNECT_TIMEOUT,
            first_backoff: FIRST_BACKOFF,
            max_backoff: MAX_BACKOFF,
            stable_connection: STABLE_CONNECTION,
            report_interval: REPORT_INTERVAL,
        }
    }
}

/// What the forwarder says on stderr about a collector it cannot reach, a
/// piece of its own so that its pace can be tested with a made-up clock:
/// the start of an outage, then at most one line per interval with the
/// messages dropped in it and in all, and, once the collector is back, how
/// long it was gone and what was lost meanwhile. (A line per failed
/// message made 11,771 lines in 4 s of a collector gone mid-stream.)
#[derive(Debug)]
pub struct OutageReport {
    target: String,
    interval: Duration,
    /// When the last line was made.
    last_line: Option<Instant>,
    /// The last failure, and what tells it from another (formatted only
    /// when it changes: UDP reports every datagram refused).
    error: String,
    error_key: Option<(io::ErrorKind, Option<i32>)>,
    /// Since when the collector has been unreachable.
    down_since: Option<Instant>,
    /// The current outage has had its first line.
    announced: bool,
    /// Messages dropped since the last line.
    unreported: u64,
    lost_in_outage: u64,
    total: u64,
}

impl OutageReport {
    pub fn new(target: &SyslogTarget, interval: Duration) -> Self {
        OutageReport {
            target: target.to_string(),
            interval,
            last_line: None,
            error: String::new(),
            error_key: None,
            down_since: None,
            announced: false,
            unreported: 0,
            lost_in_outage: 0,
            total: 0,
        }
    }

    /// The collector could not be reached (or stopped taking messages) at
    /// `now`: an outage starts, or goes on with this error.
    pub fn failed(&mut self, error: &io::Error, now: Instant) {
        let key = (error.kind(), error.raw_os_error());
        if self.error_key != Some(key) {
            self.error = error.to_string();
            self.error_key = Some(key);
        }
        if self.down_since.is_none() {
            self.down_since = Some(now);
            self.announced = false;
        }
    }

    /// `messages` could not be sent (after [`OutageReport::failed`]).
    pub fn dropped(&mut self, messages: u64) {
        self.unreported += messages;
        self.lost_in_outage += messages;
        self.total += messages;
    }

    /// The line to write at `now`, if one is due: the first of an outage,
    /// or a summary of the messages dropped since the last line; none
    /// within `interval` of the last line.
    pub fn due(&mut self, now: Instant) -> Option<String> {
        let down_since = self.down_since?;
        if self.announced && self.unreported == 0 {
            return None;
        }
        let since = self.last_line.filter(|&t| t > down_since);
        if self
            .last_line
            .is_some_and(|t| now.saturating_duration_since(t) < self.interval)
        {
            return None;
        }
        let line = if self.announced {
            let period = now.saturating_duration_since(since.unwrap_or(down_since));
            format!(
                "syslog: collector {} still unreachable ({}): {} message(s) dropped in the last {:.1} s, {} in all",
                self.target,
                self.error,
                self.unreported,
                period.as_secs_f64(),
                self.total
            )
        } else if self.lost_in_outage == 0 {
            format!(
                "syslog: collector {} unreachable ({})",
                self.target, self.error
            )
        } else {
            format!(
                "syslog: collector {} unreachable ({}): {} message(s) dropped so far",
                self.target, self.error, self.lost_in_outage
            )
        };
        self.announced = true;
        self.unreported = 0;
        self.last_line = Some(now);
        Some(line)
    }

    /// The collector is reachable again at `now`: how long it was gone and
    /// what was lost meanwhile. Nothing for a connection re-opened before
    /// the outage was reported if nothing was lost (a collector restart).
    pub fn recovered(&mut self, now: Instant) -> Option<String> {
        let down_since = self.down_since.take()?;
        let lost = std::mem::take(&mut self.lost_in_outage);
        self.unreported = 0;
        if !std::mem::take(&mut self.announced) && lost == 0 {
            return None;
        }
        self.last_line = Some(now);
        Some(format!(
            "syslog: collector {} reachable again after {:.1} s; {lost} message(s) lost meanwhile",
            self.target,
            now.saturating_duration_since(down_since).as_secs_f64()
        ))
    }
}

/// The TCP connection to the collector.
enum TcpLink {
    Connected {
        stream: TcpStream,
        since: Instant,
    },
    /// An attempt on its own thread, which hands over its result.
    Connecting(mpsc::Receiver<io::Result<TcpStream>>),
    /// Down: no attempt before `until`.
    Waiting {
        until: Instant,
    },
}

enum Transport {
    Udp(UdpSocket),
    Tcp { addr: String, link: TcpLink },
}

/// Sends syslog messages to a [`SyslogTarget`]. Over TCP it never stops
/// for long: a flush waits at most [`ForwarderTimings::write_timeout`]; a
/// connection that breaks (or never opens) is tried again with backoff on
/// a thread of its own, while up to a batch of messages waits for it and
/// the rest are dropped and counted; what it cannot send is said on stderr
/// (through [`SyslogForwarder::notices`]) at a bounded pace.
pub struct SyslogForwarder {
    target: SyslogTarget,
    transport: Transport,
    timings: ForwarderTimings,
    /// Wait before the next TCP connection attempt after a failed one.
    backoff: Duration,
    /// TCP connection attempts made (their pace is the backoff's).
    attempts: u64,
    frame: Vec<u8>,
    /// Where each gathered TCP message ends in `frame`: a write cut short
    /// resumes at the first message not wholly written, so none is sent
    /// twice, and what cannot be sent is counted by message.
    ends: Vec<usize>,
    /// Messages given up: TCP, those that found the collector unreachable
    /// and the batch waiting for it full; UDP, datagrams the host could
    /// not send (or that were refused).
    dropped: u64,
    report: OutageReport,
    /// Lines for stderr, taken by [`SyslogForwarder::notices`].
    notices: Vec<String>,
}

impl SyslogForwarder {
    /// A forwarder with the default [`ForwarderTimings`].
    pub fn connect(target: &SyslogTarget) -> io::Result<Self> {
        Self::with_timings(target, ForwarderTimings::default())
    }

    /// Fails only for a UDP target whose socket cannot be made: a TCP
    /// collector that is down now is tried again later (the first attempt
    /// is waited for, so that one that is up takes the first messages).
    pub fn with_timings(target: &SyslogTarget, timings: ForwarderTimings) -> io::Result<Self> {
        let now = Instant::now();
        let transport = match target {
            SyslogTarget::Udp(addr) => Transport::Udp(open_udp(addr)?),
            SyslogTarget::Tcp(addr) => Transport::Tcp {
                addr: addr.clone(),
                link: TcpLink::Waiting { until: now },
            },
        };
        let mut f = SyslogForwarder {
            target: target.clone(),
            transport,
            timings,
            backoff: timings.first_backoff,
            attempts: 0,
            frame: Vec::with_capacity(2048),
            ends: Vec::new(),
            dropped: 0,
            report: OutageReport::new(target, timings.report_interval),
            notices: Vec::new(),
        };
        if let Transport::Tcp { addr, .. } = &f.transport {
            f.attempts += 1;
            let opened = open_tcp(addr, timings.connect_timeout);
            let now = Instant::now();
            f.attempt_ended(opened, now);
            f.report_due(now);
        }
        Ok(f)
    }

    /// The target this forwarder sends to.
    pub fn target(&self) -> &SyslogTarget {
        &self.target
    }

    /// Sends one message (without trailing newline): a UDP datagram at
    /// once; over TCP, octet-counted frames are gathered and written in
    /// large batches (see [`SyslogForwarder::flush`]).
    pub fn send(&mut self, msg: &str) {
        if let Transport::Udp(u) = &self.transport {
            // A refused datagram (nobody listening yet) is counted like
            // any the host could not send.
            if let Err(e) = u.send(msg.as_bytes()) {
                let now = Instant::now();
                self.report.failed(&e, now);
                self.lose(1);
                self.report_due(now);
            }
            return;
        }
        if self.frame.len() >= TCP_BATCH {
            // The last batch is still waiting for the collector.
            self.flush();
            if self.frame.len() >= TCP_BATCH {
                self.lose(1);
                return;
            }
        }
        let _ = write!(self.frame, "{} ", msg.len());
        self.frame.extend_from_slice(msg.as_bytes());
        self.ends.push(self.frame.len());
        if self.frame.len() >= TCP_BATCH {
            self.flush();
        }
    }

    /// Writes the TCP frames gathered so far (the caller flushes whenever
    /// its input pauses), waiting at most the write timeout. A connection
    /// that fails is dropped and tried again later; the messages it did
    /// not take whole wait for the next one.
    pub fn flush(&mut self) {
        let now = Instant::now();
        self.advance_link(now);
        self.report_due(now);
        self.write_frames(now);
    }

    /// Writes what waits if the connection is up (see
    /// [`SyslogForwarder::flush`]).
    fn write_frames(&mut self, now: Instant) {
        if self.frame.is_empty() {
            return;
        }
        let Transport::Tcp {
            link: TcpLink::Connected { stream, since },
            ..
        } = &mut self.transport
        else {
            return;
        };
        let since = *since;
        let deadline = now + self.timings.write_timeout;
        let (written, result) = write_until(stream, &self.frame, deadline);
        match result {
            Ok(()) => {
                self.frame.clear();
                self.ends.clear();
            }
            Err(e) => {
                // Messages wholly written are gone; one cut by the failure
                // goes again whole on the next connection.
                let taken = self.ends.iter().take_while(|&&end| end <= written).count();
                let taken_bytes = taken.checked_sub(1).map_or(0, |last| self.ends[last]);
                self.frame.drain(..taken_bytes);
                self.ends.drain(..taken);
                for end in &mut self.ends {
                    *end -= taken_bytes;
                }
                self.connection_broke(&e, since, Instant::now());
            }
        }
    }

    /// Sends what waits if the collector can take it, waiting for a
    /// connection attempt under way (a short run ends before it would
    /// otherwise be seen); what still waits then is counted as dropped.
    pub fn close(&mut self) {
        if let Transport::Tcp {
            link: TcpLink::Connecting(rx),
            ..
        } = &self.transport
        {
            let wait = self.timings.connect_timeout + Duration::from_secs(1);
            let opened = rx.recv_timeout(wait).unwrap_or_else(|_| {
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "connection attempt did not end",
                ))
            });
            self.attempt_ended(opened, Instant::now());
        }
        // No new attempt now: the end of the command would wait for it.
        self.write_frames(Instant::now());
        let left = self.ends.len() as u64;
        self.frame.clear();
        self.ends.clear();
        self.lose(left);
    }

    /// Lines for stderr about the collector (none most of the time): its
    /// loss, a summary of what it could not take, its return.
    pub fn notices(&mut self) -> std::vec::Drain<'_, String> {
        self.notices.drain(..)
    }

    /// Messages given up because the collector could not be reached.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    fn lose(&mut self, messages: u64) {
        self.dropped += messages;
        self.report.dropped(messages);
    }

    fn report_due(&mut self, now: Instant) {
        if let Some(line) = self.report.due(now) {
            self.notices.push(line);
        }
    }

    /// Takes the result of a connection attempt that ended, or starts one
    /// if the backoff allows it.
    fn advance_link(&mut self, now: Instant) {
        let Transport::Tcp { addr, link } = &mut self.transport else {
            return;
        };
        let opened = match link {
            TcpLink::Connected { .. } => return,
            TcpLink::Connecting(rx) => match rx.try_recv() {
                Ok(opened) => opened,
                Err(mpsc::TryRecvError::Empty) => return,
                Err(mpsc::TryRecvError::Disconnected) => {
                    Err(io::Error::other("could not start a connection attempt"))
                }
            },
            TcpLink::Waiting { until } => {
                if now >= *until {
                    self.attempts += 1;
                    *link = spawn_connect(addr.clone(), self.timings.connect_timeout);
                }
                return;
            }
        };
        self.attempt_ended(opened, now);
    }

    fn attempt_ended(&mut self, opened: io::Result<TcpStream>, now: Instant) {
        let Transport::Tcp { link, .. } = &mut self.transport else {
            return;
        };
        match opened {
            Ok(stream) => {
                *link = TcpLink::Connected { stream, since: now };
                if let Some(line) = self.report.recovered(now) {
                    self.notices.push(line);
                }
            }
            Err(e) => {
                self.report.failed(&e, now);
                *link = TcpLink::Waiting {
                    until: now + self.backoff,
                };
                self.backoff = (self.backoff * 2).min(self.timings.max_backoff);
            }
        }
    }

    fn connection_broke(&mut self, error: &io::Error, since: Instant, now: Instant) {
        let Transport::Tcp { link, .. } = &mut self.transport else {
            return;
        };
        self.report.failed(error, now);
        let until = if now.saturating_duration_since(since) >= self.timings.stable_connection {
            self.backoff = self.timings.first_backoff;
            now
        } else {
            let until = now + self.backoff;
            self.backoff = (self.backoff * 2).min(self.timings.max_backoff);
            until
        };
        *link = TcpLink::Waiting { until };
    }
}

fn open_udp(addr: &str) -> io::Result<UdpSocket> {
    let dest = addr
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, addr.to_owned()))?;
    let bind = if dest.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let s = UdpSocket::bind(bind)?;
    s.connect(dest)?;
    Ok(s)
}

/// A connection to the first of `addr`'s addresses that takes one.
fn open_tcp(addr: &str, timeout: Duration) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, format!("{addr}: no address"));
    for dest in addr.to_socket_addrs()? {
        match TcpStream::connect_timeout(&dest, timeout) {
            Ok(s) => {
                s.set_nodelay(true)?;
                return Ok(s);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// A connection attempt on a thread of its own. If no thread can be made,
/// the channel is closed at once, which counts as a failed attempt.
fn spawn_connect(addr: String, timeout: Duration) -> TcpLink {
    let (tx, rx) = mpsc::channel();
    let _ = std::thread::Builder::new()
        .name("syslog-connect".into())
        .spawn(move || {
            let _ = tx.send(open_tcp(&addr, timeout));
        });
    TcpLink::Connecting(rx)
}

/// Writes `buf` until `deadline`: the bytes written, and why it stopped
/// short.
fn write_until(stream: &mut TcpStream, buf: &[u8], deadline: Instant) -> (usize, io::Result<()>) {
    let mut at = 0;
    while at < buf.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (at, Err(stalled()));
        }
        if let Err(e) = stream.set_write_timeout(Some(left)) {
            return (at, Err(e));
        }
        match stream.write(&buf[at..]) {
            Ok(0) => return (at, Err(io::ErrorKind::WriteZero.into())),
            Ok(n) => at += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return (at, Err(stalled()))
            }
            Err(e) => return (at, Err(e)),
        }
    }
    (at, Ok(()))
}

fn stalled() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        "the collector stopped taking messages (write timed out)",
    )
}

/// Bytes of TCP syslog frames gathered before a write; also what waits
/// for a collector that is down.
const TCP_BATCH: usize = 64 << 10;

impl Drop for SyslogForwarder {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::{SocketAddr, TcpListener};
    use std::thread;

    /// Short enough for tests; the write timeout well above a loopback
    /// write that makes progress.
    fn quick() -> ForwarderTimings {
        ForwarderTimings {
            write_timeout: Duration::from_millis(500),
            connect_timeout: Duration::from_secs(1),
            first_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(400),
            stable_connection: Duration::from_secs(10),
            report_interval: Duration::from_secs(5),
        }
    }

    /// A collector on `addr` that reads until the forwarder closes (at
    /// most 8 s), and its octet-counted messages, each checked whole.
    fn reading_collector(listener: TcpListener) -> thread::JoinHandle<Vec<String>> {
        thread::spawn(move || {
            listener.set_nonblocking(true).unwrap();
            let deadline = Instant::now() + Duration::from_secs(8);
            let mut conn = loop {
                match listener.accept() {
                    Ok((c, _)) => break c,
                    Err(_) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
                    Err(e) => panic!("no connection: {e}"),
                }
            };
            conn.set_nonblocking(false).unwrap();
            conn.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
            let mut bytes = Vec::new();
            let _ = conn.read_to_end(&mut bytes);
            octet_counted(&bytes)
        })
    }

    /// RFC 6587 frames `LEN SP MSG`, all whole.
    fn octet_counted(mut bytes: &[u8]) -> Vec<String> {
        let mut msgs = Vec::new();
        while !bytes.is_empty() {
            let sp = bytes.iter().position(|&b| b == b' ').expect("LEN SP");
            let len: usize = std::str::from_utf8(&bytes[..sp]).unwrap().parse().unwrap();
            let msg = &bytes[sp + 1..sp + 1 + len];
            msgs.push(String::from_utf8(msg.to_vec()).unwrap());
            bytes = &bytes[sp + 1 + len..];
        }
        msgs
    }

    fn free_port() -> SocketAddr {
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
    }

    /// Messages go whole and once; when the collector is gone for good,
    /// what cannot reach it is counted, message by message.
    #[test]
    fn tcp_messages_that_cannot_reach_the_collector_are_counted() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let target = SyslogTarget::Tcp(listener.local_addr().unwrap().to_string());
        let mut f = SyslogForwarder::with_timings(&target, quick()).unwrap();
        let (mut conn, _) = listener.accept().unwrap();
        for i in 0..3 {
            f.send(&format!("first {i}"));
        }
        f.flush();
        let mut got = [0u8; 27];
        conn.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"7 first 07 first 17 first 2");
        assert_eq!(f.dropped(), 0);

        // The collector goes away. The kernel may take one more batch
        // before it learns of the reset (TCP syslog has no
        // acknowledgement); the rest waits for a collector that does not
        // come back, and is counted at the end.
        drop(conn);
        drop(listener);
        for round in 0..20 {
            thread::sleep(Duration::from_millis(10));
            for i in 0..5 {
                f.send(&format!("round {round} message {i}"));
            }
            f.flush();
        }
        f.close();
        assert!(
            (95..=100).contains(&f.dropped()),
            "all but at most the batch the kernel took: {}",
            f.dropped()
        );
    }

    /// Issue 24 finding 4, items 1 and 4: a collector that accepts and never
    /// reads held the forwarder in a write for good. Now a flush gives up
    /// after the write timeout, the messages that cannot wait are counted,
    /// and a reading collector back on the same port gets the stream again,
    /// with a word about the gap.
    #[test]
    fn a_collector_that_stops_reading_is_dropped_and_reconnected() {
        let stuck = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = stuck.local_addr().unwrap();
        let target = SyslogTarget::Tcp(addr.to_string());
        let timings = quick();
        let (to_test, from_forwarder) = mpsc::channel();
        let (collector_back, wait_for_collector) = mpsc::channel::<()>();
        // The forwarder on a thread of its own: a write that never returns
        // fails the test instead of hanging it.
        let forwarder = thread::spawn(move || {
            let mut f = SyslogForwarder::with_timings(&target, timings).unwrap();
            let payload = "x".repeat(1000);
            let (start, mut longest, mut notices) = (Instant::now(), Duration::ZERO, Vec::new());
            // Fill the kernel's buffers until the collector takes nothing
            // more and messages are dropped (a few MiB on loopback).
            while f.dropped() == 0 && start.elapsed() < Duration::from_secs(6) {
                let t = Instant::now();
                f.send(&payload);
                longest = longest.max(t.elapsed());
                notices.extend(f.notices());
            }
            let _ = to_test.send((f.dropped(), longest, std::mem::take(&mut notices)));
            if wait_for_collector
                .recv_timeout(Duration::from_secs(10))
                .is_err()
            {
                return;
            }
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(5)
                && !notices.iter().any(|n| n.contains("reachable again"))
            {
                f.send("after");
                f.flush();
                notices.extend(f.notices());
                thread::sleep(Duration::from_millis(5));
            }
            f.send("marker");
            f.close();
            let _ = to_test.send((f.dropped(), longest, notices));
        });
        let (conn, _) = stuck.accept().unwrap();
        let (dropped, longest, notices) = from_forwarder
            .recv_timeout(Duration::from_secs(8))
            .expect("the forwarder is not stuck in a write");
        assert!(dropped > 0, "messages that found the collector stuck");
        assert!(
            longest < timings.write_timeout + Duration::from_secs(1),
            "a send waits at most about the write timeout: {longest:?}"
        );
        assert!(
            notices
                .iter()
                .any(|n| n.contains("unreachable") && n.contains("stopped taking messages")),
            "{notices:?}"
        );

        // A collector that reads, on the same port.
        drop(conn);
        drop(stuck);
        let collector = reading_collector(TcpListener::bind(addr).unwrap());
        collector_back.send(()).unwrap();
        let (dropped_in_all, _, notices) = from_forwarder
            .recv_timeout(Duration::from_secs(8))
            .expect("the forwarder ends");
        forwarder.join().unwrap();
        let back = notices
            .iter()
            .find(|n| n.contains("reachable again"))
            .unwrap_or_else(|| panic!("{notices:?}"));
        assert!(
            back.contains(&format!("tcp://{addr}"))
                && back.contains(&format!("{dropped_in_all} message(s) lost meanwhile")),
            "{back}"
        );
        let got = collector.join().unwrap();
        assert_eq!(got.last().map(String::as_str), Some("marker"));
        assert!(got.iter().any(|m| m == "after"));
        assert!(got
            .iter()
            .all(|m| m == "after" || m == "marker" || m.len() == 1000));
    }

    /// Item 2: a collector down at start is no error. It is tried at the
    /// backoff's pace, not per message; a batch waits for it and the rest
    /// is counted; once it is up, messages flow.
    #[test]
    fn a_collector_down_at_start_is_connected_later() {
        let addr = free_port();
        let target = SyslogTarget::Tcp(addr.to_string());
        let timings = quick();
        let mut f = SyslogForwarder::with_timings(&target, timings)
            .expect("a collector down at start is no error");
        let mut notices: Vec<String> = f.notices().collect();
        assert!(
            notices.iter().any(|n| n.contains("unreachable")),
            "{notices:?}"
        );
        let start = Instant::now();
        for i in 0..50_000 {
            f.send(&format!("early {i}"));
            if i % 100 == 0 {
                f.flush();
            }
        }
        let elapsed = start.elapsed();
        assert!(f.dropped() > 40_000, "{}", f.dropped());
        notices.extend(f.notices());
        assert!(
            notices.len() <= 2,
            "the outage's first line and at most a summary: {notices:#?}"
        );
        assert!(
            f.attempts <= 2 + (elapsed.as_millis() / timings.first_backoff.as_millis()) as u64,
            "{} connection attempts in {elapsed:?}",
            f.attempts
        );
        let collector = reading_collector(TcpListener::bind(addr).unwrap());
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5)
            && !notices.iter().any(|n| n.contains("reachable again"))
        {
            f.flush();
            notices.extend(f.notices());
            thread::sleep(Duration::from_millis(5));
        }
        let dropped = f.dropped();
        f.send("late");
        f.close();
        drop(f);
        assert!(
            notices.iter().any(|n| n.contains("reachable again")
                && n.contains(&format!("{dropped} message(s) lost meanwhile"))),
            "{notices:?}"
        );
        let got = collector.join().unwrap();
        assert_eq!(
            got.first().map(String::as_str),
            Some("early 0"),
            "the batch that waited"
        );
        assert_eq!(got.last().map(String::as_str), Some("late"));
        assert_eq!(
            got.len() as u64 + dropped,
            50_001,
            "each message sent or counted"
        );
    }

    /// Item 3: a collector gone mid-stream made a line per message. Now
    /// the outage's first line, then at most one per interval with the
    /// counts, and one when it is back.
    #[test]
    fn outage_report_makes_at_most_one_line_per_interval() {
        let target = SyslogTarget::Tcp("collector:601".into());
        let mut report = OutageReport::new(&target, Duration::from_secs(1));
        let t0 = Instant::now();
        let error = io::Error::from(io::ErrorKind::ConnectionRefused);
        let mut lines = Vec::new();
        // A message dropped every 10 ms for 4 s.
        for i in 0..400u64 {
            let now = t0 + Duration::from_millis(10 * i);
            report.failed(&error, now);
            report.dropped(1);
            lines.extend(report.due(now));
        }
        assert_eq!(lines.len(), 4, "{lines:#?}");
        assert!(
            lines[0].starts_with("syslog: collector tcp://collector:601 unreachable (")
                && lines[0].ends_with("1 message(s) dropped so far"),
            "{}",
            lines[0]
        );
        for (i, line) in lines[1..].iter().enumerate() {
            let total = 101 + 100 * i;
            assert!(
                line.contains("still unreachable")
                    && line.ends_with(&format!(
                        "100 message(s) dropped in the last 1.0 s, {total} in all"
                    )),
                "{line}"
            );
        }
        // The rest once the interval is over; then nothing to say.
        assert!(report
            .due(t0 + Duration::from_secs(4))
            .is_some_and(|l| l.ends_with("99 message(s) dropped in the last 1.0 s, 400 in all")));
        assert_eq!(report.due(t0 + Duration::from_millis(4200)), None);
        assert_eq!(
            report.recovered(t0 + Duration::from_millis(4500)).as_deref(),
            Some("syslog: collector tcp://collector:601 reachable again after 4.5 s; 400 message(s) lost meanwhile")
        );
        // A connection re-opened at once, nothing lost: not worth a line.
        let t1 = t0 + Duration::from_secs(20);
        report.failed(&error, t1);
        assert_eq!(report.recovered(t1 + Duration::from_millis(1)), None);
    }
}
