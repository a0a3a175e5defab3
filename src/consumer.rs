//! `rampart events`: follow the event socket like `tail -F`, decode each
//! record, print it in the chosen format or forward it as syslog. Given
//! several sockets (the members of an HA pair, several dataplanes on one
//! host), it follows them all and merges their records into one stream in
//! time order, without the duplicates a record reaching it twice would make.

use std::io::Write;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::Context;
use rampart_events::{
    self as ev, syslog, ConsumeEvent, ConsumeOptions, Format, FrameEvent, NameCache, Record,
};

use crate::merge::{Dedup, MergeBuffer, RateLimitedCount};

pub struct Options {
    pub format: Format,
    /// The records kept (`--types`, `--action` and the flow filter),
    /// applied before formatting.
    pub filter: ev::filter::RecordFilter,
    pub syslog: Option<syslog::SyslogTarget>,
    /// RFC 5424 or BSD (RFC 3164) syslog messages.
    pub syslog_framing: syslog::Framing,
    /// Return when the dataplane closes the socket instead of waiting for
    /// it to come back.
    pub once: bool,
    pub stop: Option<Arc<AtomicBool>>,
    /// Prefix for printed lines (the demo tags them).
    pub prefix: &'static str,
    /// With several sockets: how long a packet record waits for records
    /// of other sources with an earlier timestamp (at most
    /// [`crate::merge::MAX_WINDOW`]).
    pub merge_window: Duration,
    /// With several sockets: rendered bytes the merge holds at most.
    pub merge_buffer_bytes: usize,
}

/// Bytes of output gathered before a write.
const OUTPUT_BUFFER: usize = 256 << 10;

/// Where rendered records go: stdout (buffered, flushed whenever the input
/// has nothing more right now, so a quiet stream still shows each line at
/// once) or a syslog collector.
struct Output<'a> {
    opts: &'a Options,
    forwarder: Option<syslog::SyslogForwarder>,
    syslog_opts: syslog::SyslogOptions,
    out: std::io::BufWriter<std::io::StdoutLock<'static>>,
    /// A closed stdout (`rampart events | head`) ends the command; the
    /// error goes up to `main`, which exits quietly.
    write_error: Option<std::io::Error>,
}

impl<'a> Output<'a> {
    fn new(opts: &'a Options) -> anyhow::Result<Output<'a>> {
        // A TCP collector that is down now is tried again with backoff
        // (only a UDP socket that cannot be made is an error).
        let forwarder = match &opts.syslog {
            Some(target) => {
                let mut f = syslog::SyslogForwarder::connect(target)
                    .with_context(|| format!("setting up syslog to {target}"))?;
                say_notices(&mut f);
                Some(f)
            }
            None => None,
        };
        Ok(Output {
            opts,
            forwarder,
            syslog_opts: syslog::SyslogOptions::default(),
            out: std::io::BufWriter::with_capacity(OUTPUT_BUFFER, std::io::stdout().lock()),
            write_error: None,
        })
    }

    /// Renders `rec` into `line` (cleared first) as this output writes it;
    /// false if it writes nothing for it (a type filtered out, a record
    /// the format has no line for).
    fn render(&self, rec: &Record<'_>, names: &NameCache, line: &mut String) -> bool {
        line.clear();
        let generation = match rec {
            Record::Event(e) => e.names_generation(),
            _ => 0,
        };
        if !self.opts.filter.passes(rec, names.get(generation)) {
            return false;
        }
        match self.forwarder {
            Some(_) => {
                let format = if self.opts.format == Format::Junos {
                    Format::Junos
                } else {
                    Format::JunosSd
                };
                syslog::write_syslog_message(
                    format,
                    self.opts.syslog_framing,
                    rec,
                    names,
                    &self.syslog_opts,
                    line,
                )
            }
            // Junos text on a terminal or in a file reads as an SRX's log
            // file does: with its time and host.
            None if self.opts.format == Format::Junos => {
                syslog::write_log_line(rec, names, &self.syslog_opts, None, line)
            }
            None => ev::render(self.opts.format, rec, names, line),
        }
    }

    /// Writes one rendered line.
    fn emit(&mut self, line: &str) -> ControlFlow<()> {
        match self.forwarder.as_mut() {
            Some(f) => {
                f.send(line);
                say_notices(f);
            }
            None => {
                let written = self
                    .out
                    .write_all(self.opts.prefix.as_bytes())
                    .and_then(|()| self.out.write_all(line.trim_end().as_bytes()))
                    .and_then(|()| self.out.write_all(b"\n"));
                if let Err(e) = written {
                    self.write_error = Some(e);
                    return ControlFlow::Break(());
                }
            }
        }
        ControlFlow::Continue(())
    }

    fn flush(&mut self) -> ControlFlow<()> {
        if let Some(f) = self.forwarder.as_mut() {
            f.flush();
            say_notices(f);
        }
        if let Err(e) = self.out.flush() {
            self.write_error = Some(e);
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }

    fn finish(mut self) -> anyhow::Result<()> {
        if self.write_error.is_none() {
            let _ = self.flush();
        }
        if let Some(f) = self.forwarder.as_mut() {
            f.close();
            say_notices(f);
            if f.dropped() > 0 {
                eprintln!(
                    "rampart events: syslog: {} message(s) dropped in all (collector {} unreachable)",
                    f.dropped(),
                    f.target()
                );
            }
        }
        match self.write_error {
            Some(e) => Err(anyhow::Error::new(e).context("writing to stdout")),
            None => Ok(()),
        }
    }
}

/// Writes the forwarder's lines about its collector (rate-limited by it).
fn say_notices(f: &mut syslog::SyslogForwarder) {
    for line in f.notices() {
        eprintln!("rampart events: {line}");
    }
}

/// Follows `sockets` (one, or several to merge) until the end (`once`),
/// `opts.stop`, or a closed stdout.
pub fn run(sockets: &[PathBuf], opts: Options) -> anyhow::Result<()> {
    match sockets {
        [socket] => run_one(socket, &opts),
        _ => run_merged(sockets, &opts),
    }
}

fn run_one(socket: &Path, opts: &Options) -> anyhow::Result<()> {
    let mut output = Output::new(opts)?;
    let mut line = String::new();
    let consume_opts = ConsumeOptions {
        retry_interval: Duration::from_millis(100),
        once: opts.once,
        stop: opts.stop.clone(),
    };
    let mut presence = Presence::default();
    let result = ev::consume(socket, &consume_opts, |event| match event {
        ConsumeEvent::Record(rec, names) => {
            if output.render(rec, names, &mut line) {
                output.emit(&line)
            } else {
                ControlFlow::Continue(())
            }
        }
        ConsumeEvent::Idle | ConsumeEvent::Disconnected(_) => output.flush(),
        ConsumeEvent::Refused => {
            presence.refused(socket);
            ControlFlow::Continue(())
        }
        ConsumeEvent::Connected => {
            presence.connected(socket);
            ControlFlow::Continue(())
        }
        ConsumeEvent::Waiting(e) => {
            presence.waiting(socket, e);
            ControlFlow::Continue(())
        }
        ConsumeEvent::BadRecord(_) => ControlFlow::Continue(()),
    });
    let finished = output.finish();
    result.with_context(|| format!("reading {}", socket.display()))?;
    finished
}

/// Says on stderr why no record comes: the socket cannot be reached yet
/// (when the wait starts, then every [`Presence::REMIND`]), or the
/// dataplane refused this consumer (every slot taken by consumers that
/// keep up); and when it gets in after either.
#[derive(Default)]
struct Presence {
    refusals: u64,
    /// Since when the socket could not be reached, and when that was last said.
    waiting: Option<(Instant, Instant)>,
}

impl Presence {
    const REMIND: Duration = Duration::from_secs(30);

    fn waiting(&mut self, socket: &Path, e: &std::io::Error) {
        let now = Instant::now();
        let why = match e.kind() {
            std::io::ErrorKind::NotFound => {
                "no socket there yet (is `rampart run` started, with this [events] socket?)"
            }
            std::io::ErrorKind::ConnectionRefused => {
                "nobody listens on it (the dataplane that made it has stopped?)"
            }
            std::io::ErrorKind::PermissionDenied => {
                "permission denied (the event socket's mode and group: [events] socket_mode, socket_group)"
            }
            _ => "it cannot be reached",
        };
        match self.waiting {
            None => {
                eprintln!(
                    "rampart events: waiting for the dataplane's event socket {}: {why} ({e}); retrying",
                    socket.display()
                );
                self.waiting = Some((now, now));
            }
            Some((since, said)) if now.duration_since(said) >= Self::REMIND => {
                eprintln!(
                    "rampart events: still waiting for {} after {} s: {why}",
                    socket.display(),
                    now.duration_since(since).as_secs()
                );
                self.waiting = Some((since, now));
            }
            Some(_) => {}
        }
    }

    fn refused(&mut self, socket: &Path) {
        if self.refusals == 0 {
            eprintln!(
                "rampart events: {} refused the connection (every consumer slot is taken); retrying",
                socket.display()
            );
        }
        self.refusals += 1;
    }

    fn connected(&mut self, socket: &Path) {
        if self.refusals > 0 {
            eprintln!(
                "rampart events: connected to {} after {} refusal(s)",
                socket.display(),
                self.refusals
            );
        } else if let Some((since, _)) = self.waiting {
            eprintln!(
                "rampart events: connected to {} after waiting {:.1} s",
                socket.display(),
                since.elapsed().as_secs_f64()
            );
        }
        self.refusals = 0;
        self.waiting = None;
    }
}

/// What a socket's reader thread hands to the merge.
enum FromSource {
    Connected(usize),
    Frame(usize, Vec<u8>),
    /// Nothing more right now from this source.
    Idle,
    /// The reader ended (with `once`: its stream closed), with its error.
    Ended(usize, Option<std::io::Error>),
}

/// Each socket's identity: the index of the first socket naming the same
/// file, so a socket given twice is one source (its records arrive twice)
/// and different sockets are different sources.
fn source_identities(sockets: &[PathBuf]) -> Vec<usize> {
    let resolved: Vec<PathBuf> = sockets
        .iter()
        .map(|s| {
            let parent = s.parent().filter(|p| !p.as_os_str().is_empty());
            match (parent.map(std::fs::canonicalize), s.file_name()) {
                (Some(Ok(dir)), Some(name)) => dir.join(name),
                _ => std::env::current_dir().map_or_else(|_| s.clone(), |d| d.join(s)),
            }
        })
        .collect();
    resolved
        .iter()
        .map(|r| resolved.iter().position(|x| x == r).unwrap_or(0))
        .collect()
}

/// How often suppressed duplicates and early releases are reported.
const REPORT_INTERVAL: Duration = Duration::from_secs(1);

fn run_merged(sockets: &[PathBuf], opts: &Options) -> anyhow::Result<()> {
    let mut output = Output::new(opts)?;
    let stop = opts
        .stop
        .clone()
        .unwrap_or_else(|| Arc::new(AtomicBool::new(false)));
    // Bounded: a merge that falls behind slows its readers, whose sockets
    // then fill, and the hub counts what it drops for them, per source.
    let (tx, rx) = mpsc::sync_channel::<FromSource>(4096);
    let readers: Vec<_> = sockets
        .iter()
        .enumerate()
        .map(|(i, socket)| {
            let (tx, socket) = (tx.clone(), socket.clone());
            let consume_opts = ConsumeOptions {
                retry_interval: Duration::from_millis(100),
                once: opts.once,
                stop: Some(stop.clone()),
            };
            std::thread::spawn(move || {
                let mut presence = Presence::default();
                let result = ev::consume_frames(&socket, &consume_opts, |event| {
                    let msg = match event {
                        FrameEvent::Connected => {
                            presence.connected(&socket);
                            FromSource::Connected(i)
                        }
                        FrameEvent::Frame(f) => FromSource::Frame(i, f.to_vec()),
                        FrameEvent::Refused => {
                            presence.refused(&socket);
                            FromSource::Idle
                        }
                        FrameEvent::Waiting(e) => {
                            presence.waiting(&socket, e);
                            FromSource::Idle
                        }
                        FrameEvent::Idle | FrameEvent::Disconnected(_) => FromSource::Idle,
                    };
                    match tx.send(msg) {
                        Ok(()) => ControlFlow::Continue(()),
                        Err(_) => ControlFlow::Break(()),
                    }
                });
                let _ = tx.send(FromSource::Ended(i, result.err()));
            })
        })
        .collect();
    drop(tx);

    // Per source: its names, and its path as a JSON string for `source`.
    let mut names: Vec<NameCache> = sockets.iter().map(|_| NameCache::new()).collect();
    let tags: Vec<String> = sockets
        .iter()
        .map(|s| {
            let mut t = String::new();
            ev::render::json_str(&mut t, &s.display().to_string());
            t
        })
        .collect();
    let json = opts.syslog.is_none() && opts.format == Format::Json;
    let identity = source_identities(sockets);
    let mut waiting = MergeBuffer::new(opts.merge_window, opts.merge_buffer_bytes);
    let mut dedup = Dedup::new();
    let mut duplicates = RateLimitedCount::new(REPORT_INTERVAL);
    let mut early = RateLimitedCount::new(REPORT_INTERVAL);
    let mut ended = 0;
    let mut failure = None;
    let mut line = String::new();
    let mut flow = ControlFlow::Continue(());
    while ended < sockets.len() && flow.is_continue() {
        let msg = match rx.recv_timeout(Duration::from_millis(20)) {
            Ok(m) => Some(m),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        let idle = matches!(msg, None | Some(FromSource::Idle));
        match msg {
            Some(FromSource::Connected(i)) => names[i] = NameCache::new(),
            Some(FromSource::Frame(i, frame)) => {
                let rec = match ev::decode(&frame) {
                    Ok(rec) => rec,
                    Err(e) => {
                        eprintln!("rampart events: {}: bad record: {e}", sockets[i].display());
                        continue;
                    }
                };
                names[i].observe(&rec);
                if let (Record::Hello(_), Some(h)) = (&rec, names[i].hello()) {
                    if let Some(first) = dedup.claim(identity[i], hash_str(&h.node), h.boot_id) {
                        eprintln!(
                            "rampart events: {} claims the node and boot id of {} ({}): \
                             their records are not deduplicated against each other",
                            sockets[i].display(),
                            sockets[first].display(),
                            h.node,
                        );
                    }
                }
                if let Record::Event(e) = &rec {
                    if let Some(s) = names[i].session_identity(e) {
                        // Both nodes of a pair may write the same session's
                        // record (see README, "High availability").
                        if dedup.is_duplicate_session(&s) {
                            duplicates.add(1);
                            continue;
                        }
                    } else if let Some(h) = names[i].hello().filter(|h| h.boot_id != 0) {
                        let id = (hash_str(&h.node), h.boot_id, e.meta.worker, e.seq);
                        if dedup.is_duplicate(identity[i], id) {
                            duplicates.add(1);
                            continue;
                        }
                    }
                }
                // Rendered now, with this source's names as they are at
                // this point of its stream.
                if !output.render(&rec, &names[i], &mut line) {
                    continue;
                }
                if json {
                    line.insert_str(1, &format!("\"source\":{},", tags[i]));
                }
                match &rec {
                    Record::Event(e) => {
                        let before = waiting.released_early();
                        let text = std::mem::take(&mut line);
                        if !waiting.push(e.meta.ts_ns, text, Instant::now(), &mut |l| {
                            output.emit(l).is_continue()
                        }) {
                            flow = ControlFlow::Break(());
                        }
                        early.add(waiting.released_early() - before);
                    }
                    // Control records (hello, names, stats, loss) explain
                    // the stream of their source: written as they come.
                    _ => flow = output.emit(&line),
                }
            }
            Some(FromSource::Ended(i, err)) => {
                ended += 1;
                if let Some(e) = err {
                    failure.get_or_insert_with(|| {
                        anyhow::Error::new(e).context(format!("reading {}", sockets[i].display()))
                    });
                }
            }
            Some(FromSource::Idle) | None => {}
        }
        // Records leave in timestamp order once they have waited the
        // window, never later (a source's clock cannot hold them back).
        let now = Instant::now();
        if flow.is_continue() && !waiting.release_due(now, &mut |l| output.emit(l).is_continue()) {
            flow = ControlFlow::Break(());
        }
        report_counts(&mut duplicates, &mut early, now);
        if flow.is_continue() && idle {
            flow = output.flush();
        }
    }
    // The end of every stream (or of the command): what waits goes now.
    if flow.is_continue() {
        waiting.release_all(&mut |l| output.emit(l).is_continue());
    }
    stop.store(true, Ordering::Relaxed);
    drop(rx);
    for r in readers {
        let _ = r.join();
    }
    if duplicates.total() > 0 {
        eprintln!(
            "rampart events: {} duplicate record(s) dropped in all (same event id from the same socket)",
            duplicates.total()
        );
    }
    if early.total() > 0 {
        eprintln!(
            "rampart events: {} record(s) in all written before their merge window ended (merge buffer full)",
            early.total()
        );
    }
    let finished = output.finish();
    if let Some(e) = failure {
        return Err(e);
    }
    finished
}

/// Says on stderr, at most once per interval each, how many duplicates
/// were dropped and how many records left the full merge buffer early.
fn report_counts(duplicates: &mut RateLimitedCount, early: &mut RateLimitedCount, now: Instant) {
    if let Some(n) = duplicates.due(now) {
        eprintln!(
            "rampart events: {n} duplicate record(s) dropped (same event id from the same socket)"
        );
    }
    if let Some(n) = early.due(now) {
        eprintln!(
            "rampart events: {n} record(s) written before their merge window ended (merge buffer full)"
        );
    }
}

pub(crate) fn hash_str(s: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_events::{ipv4_mapped, Encoder, Event, EventSlot, Hub, HubConfig, PacketMeta};
    use std::collections::VecDeque;
    use std::io::Read;
    use std::net::TcpListener;

    fn deny() -> (PacketMeta, Event) {
        let meta = PacketMeta {
            ts_ns: 1_714_564_800_123_456_789,
            worker: 0,
            generation: 0,
            src: ipv4_mapped([192, 0, 2, 1]),
            dst: ipv4_mapped([10, 1, 0, 10]),
            ipv6: false,
            src_port: 40000,
            dst_port: 23,
            protocol: 6,
            icmp_type: 0,
            icmp_code: 0,
            ingress: 0,
            egress: 1,
            from_zone: 0,
            to_zone: 1,
        };
        let event = Event::PolicyDeny(ev::PolicyDeny {
            policy: 0,
            reject: false,
            audit: false,
            session_id: 1,
            application: ev::NO_ID16,
        });
        (meta, event)
    }

    /// Issue 24 finding 4, items 2 and 5, through `rampart events` on a
    /// real event socket (a hub, no dataplane): a TCP collector down at
    /// start made the command exit 1. Now it reads on, forwards once the
    /// collector is up, and each message's HOSTNAME is the node of the
    /// stream's hello, not the forwarding host's name.
    #[test]
    fn syslog_to_a_collector_down_at_start_flows_once_it_is_up() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("events.sock");
        let mut hub = Hub::bind(&socket, HubConfig::default()).unwrap();
        hub.set_identity("fw-test-node", 0xfeed);
        let collector_addr = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let opts = Options {
            format: Format::JunosSd,
            filter: Default::default(),
            syslog: Some(syslog::SyslogTarget::Tcp(collector_addr.to_string())),
            syslog_framing: syslog::Framing::Rfc5424,
            once: false,
            stop: Some(stop.clone()),
            prefix: "",
            merge_window: Duration::from_millis(500),
            merge_buffer_bytes: crate::merge::DEFAULT_BUFFER_BYTES,
        };
        let sockets = vec![socket.clone()];
        let consumer = std::thread::spawn(move || run(&sockets, opts));
        let deadline = Instant::now() + Duration::from_secs(5);
        while hub.consumer_count() == 0 {
            if consumer.is_finished() {
                panic!("rampart events ended: {:?}", consumer.join());
            }
            assert!(Instant::now() < deadline, "rampart events never connected");
            hub.accept();
            std::thread::sleep(Duration::from_millis(5));
        }

        // Records while the collector is down, then the collector.
        let (meta, event) = deny();
        let (mut encoder, mut ring, mut seq) = (Encoder::new(), VecDeque::new(), 0);
        let mut emit = |hub: &mut Hub| {
            let mut slot = EventSlot::EMPTY;
            assert!(encoder.encode(seq, &meta, &event, &[], &mut slot));
            seq += 1;
            ring.push_back(slot);
            hub.poll(std::slice::from_mut(&mut ring), 0);
            hub.flush();
        };
        for _ in 0..10 {
            emit(&mut hub);
        }
        let listener = TcpListener::bind(collector_addr).unwrap();
        let got_one = Arc::new(AtomicBool::new(false));
        let collector = {
            let got_one = got_one.clone();
            std::thread::spawn(move || {
                let (mut conn, _) = listener.accept().unwrap();
                conn.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
                let (mut text, mut buf) = (Vec::new(), [0u8; 4096]);
                while let Ok(n @ 1..) = conn.read(&mut buf) {
                    text.extend_from_slice(&buf[..n]);
                    if text.windows(20).any(|w| w == b"RT_FLOW_SESSION_DENY") {
                        got_one.store(true, Ordering::Relaxed);
                    }
                }
                String::from_utf8_lossy(&text).into_owned()
            })
        };
        let deadline = Instant::now() + Duration::from_secs(8);
        while !got_one.load(Ordering::Relaxed) && Instant::now() < deadline {
            emit(&mut hub);
            std::thread::sleep(Duration::from_millis(20));
        }
        stop.store(true, Ordering::Relaxed);
        let ended = consumer.join().unwrap();
        assert!(ended.is_ok(), "{ended:?}");
        let text = collector.join().unwrap();
        assert!(
            got_one.load(Ordering::Relaxed),
            "no deny reached the collector: {text:?}"
        );
        assert!(
            text.contains(" fw-test-node RT_FLOW - RT_FLOW_SESSION_DENY ["),
            "HOSTNAME is the hello's node: {text}"
        );
    }
}
