//! Control-plane drain and fan-out.
//!
//! The [`Hub`] pulls records from N worker sources round-robin in bursts,
//! counts them `drained` per source and type, and appends each to every
//! consumer's bounded byte ring. Consumers are written with non-blocking
//! I/O. When a consumer's ring cannot take a record, that record is dropped
//! for that consumer only and counted (`dropped`, and in its next in-band
//! loss record); a slow or dead consumer never stalls the drain or the
//! others. A record counts as `delivered` exactly when it is accepted whole
//! into the consumer's ring, so for a consumer connected the whole time
//! `drained == delivered + dropped`, per type.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::control::ControlEncoder;
use crate::counters::{SharedCounters, TypeCounters, WorkerCountersSnapshot};
use crate::encode::EventSlot;
use crate::sockfile::{SockFileError, SocketFile};
use crate::types::{EventType, Names};

const N: usize = EventType::COUNT;

/// At most this many name tables of earlier generations are kept for
/// consumers that connect later: one less than a consumer's
/// [`crate::NameCache::KEEP`], so a consumer holds all of them next to the
/// current one.
pub const RETAINED_GENERATIONS: usize = crate::decode::NameCache::KEEP - 1;

/// A worker's event ring as the hub sees it. The binary implements it over
/// the worker's DPDK `rte_ring` (dequeue burst). Source `i` is worker `i`
/// (the `i`-th registered [`SharedCounters`]).
pub trait EventSource {
    /// Hands up to `max` records to `each`, oldest first, and removes them;
    /// returns how many. A ring source lends its slots in place, so a
    /// record is copied once, straight into the consumers' buffers.
    fn drain_into(&mut self, max: usize, each: &mut dyn FnMut(&EventSlot)) -> usize;
}

impl<T: EventSource + ?Sized> EventSource for &mut T {
    fn drain_into(&mut self, max: usize, each: &mut dyn FnMut(&EventSlot)) -> usize {
        (**self).drain_into(max, each)
    }
}

impl<T: EventSource + ?Sized> EventSource for Box<T> {
    fn drain_into(&mut self, max: usize, each: &mut dyn FnMut(&EventSlot)) -> usize {
        (**self).drain_into(max, each)
    }
}

/// A plain in-memory source (tests, tools): records are pulled in order.
impl EventSource for std::collections::VecDeque<EventSlot> {
    fn drain_into(&mut self, max: usize, each: &mut dyn FnMut(&EventSlot)) -> usize {
        let n = max.min(self.len());
        for s in self.drain(..n) {
            each(&s);
        }
        n
    }
}

#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Bytes buffered per consumer before its records are dropped.
    pub consumer_buffer_bytes: usize,
    /// Records pulled from one source per round-robin turn.
    pub burst: usize,
    /// Round-robin passes per [`Hub::poll`] at most.
    pub max_passes: usize,
    /// Period of in-band stats records.
    pub stats_interval_ns: u64,
    /// Connections beyond this are refused (closed at once).
    pub max_consumers: usize,
    /// Mode of the socket file.
    pub socket_mode: u32,
    /// Producer string in hello records.
    pub producer: String,
    /// A consumer with unread data that reads nothing for this long is
    /// cut off (counted and reported through [`Hub::take_cut_offs`]): a
    /// client that connects and never reads must not hold a slot.
    pub stall_timeout_ns: u64,
    /// When every slot is taken, a consumer that has read nothing for this
    /// long is cut off to let a new one in (one that reads never is).
    pub evict_after_ns: u64,
    /// Bytes written to a consumer's socket that its peer has not read
    /// yet (Linux `SIOCOUTQ`; any unit that falls when the peer reads).
    /// The binary supplies it (it needs an ioctl); without it only the
    /// hub's own buffer tells whether a consumer reads.
    pub unread_bytes: Option<fn(&UnixStream) -> io::Result<usize>>,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            consumer_buffer_bytes: 4 << 20,
            burst: 64,
            max_passes: 64,
            stats_interval_ns: 1_000_000_000,
            max_consumers: 16,
            socket_mode: 0o660,
            producer: concat!("rampart ", env!("CARGO_PKG_VERSION")).to_owned(),
            stall_timeout_ns: 3_000_000_000,
            evict_after_ns: 1_000_000_000,
            unread_bytes: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error(transparent)]
    Socket(#[from] SockFileError),
}

/// Bounded byte ring of one consumer.
struct Ring {
    buf: Box<[u8]>,
    head: usize,
    len: usize,
}

impl Ring {
    fn new(cap: usize) -> Self {
        Ring {
            buf: vec![0; cap.max(1)].into_boxed_slice(),
            head: 0,
            len: 0,
        }
    }
    fn cap(&self) -> usize {
        self.buf.len()
    }
    fn free(&self) -> usize {
        self.cap() - self.len
    }
    fn push(&mut self, bytes: &[u8]) {
        debug_assert!(bytes.len() <= self.free());
        let cap = self.cap();
        let tail = (self.head + self.len) % cap;
        let first = bytes.len().min(cap - tail);
        self.buf[tail..tail + first].copy_from_slice(&bytes[..first]);
        self.buf[..bytes.len() - first].copy_from_slice(&bytes[first..]);
        self.len += bytes.len();
    }
    fn slices(&self) -> (&[u8], &[u8]) {
        let cap = self.cap();
        let first = self.len.min(cap - self.head);
        (
            &self.buf[self.head..self.head + first],
            &self.buf[..self.len - first],
        )
    }
    fn consume(&mut self, n: usize) {
        self.len -= n;
        self.head = if self.len == 0 {
            0
        } else {
            (self.head + n) % self.cap()
        };
    }
    /// Grows an empty ring so a control record larger than it fits.
    fn ensure_empty_fits(&mut self, n: usize) {
        if self.len == 0 && n > self.cap() {
            *self = Ring::new(n);
        }
    }
}

struct Consumer {
    id: u64,
    stream: UnixStream,
    ring: Ring,
    delivered: [u64; N],
    dropped: [u64; N],
    /// Dropped since the last loss record this consumer accepted.
    pending_loss: [u64; N],
    names_pending: bool,
    /// Control notices (config rejects) not yet in `ring`, whole frames,
    /// sent before the next event; bounded by [`MAX_NOTICE_BACKLOG`].
    notices: Vec<u8>,
    /// Notices that did not fit the backlog of a consumer that stopped reading.
    notices_dropped: u64,
    dead: bool,
    /// Unread bytes in its socket at the last progress check.
    unread_ref: usize,
    /// Since the last check: a write found the socket full, and a later
    /// one succeeded (so the peer read in between).
    socket_was_full: bool,
    wrote_after_full: bool,
    /// When the peer last read (or had nothing to read).
    progress_ns: u64,
    /// When it connected.
    connected_ns: u64,
    /// When it last lost a record for want of room (0: never).
    last_loss_ns: u64,
}

/// Why a consumer was disconnected by the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutOffReason {
    /// It read nothing for [`HubConfig::stall_timeout_ns`].
    Stalled,
    /// Every slot was taken and it had read nothing for
    /// [`HubConfig::evict_after_ns`]: a new consumer took its place.
    Evicted,
    /// Every slot was taken by consumers that read, and it was the one
    /// furthest behind: it had been losing records for want of room within
    /// the last [`HubConfig::evict_after_ns`] and had lost the most. A
    /// new consumer took its place.
    FellBehind,
}

/// A consumer the hub disconnected, for the daemon's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CutOff {
    pub id: u64,
    pub reason: CutOffReason,
    /// Nanoseconds since it last read.
    pub silent_ns: u64,
    /// Bytes it had not read (hub buffer + socket).
    pub unread_bytes: usize,
}

/// Connections to the event socket since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionCounters {
    pub accepted: u64,
    /// Closed at once: every slot was taken by consumers that read.
    pub refused: u64,
    /// Disconnected for not reading (stalled or evicted).
    pub cut_off: u64,
}

/// Connections taken from the event socket's backlog per poll at most.
pub const MAX_ACCEPTS_PER_POLL: usize = 64;

/// Cut-offs kept for the daemon's log between two [`Hub::take_cut_offs`].
pub const MAX_CUT_OFF_LOG: usize = 64;

/// How often consumers' reading progress is measured.
const PROGRESS_CHECK_NS: u64 = 50_000_000;

/// Bytes a consumer sent (it should send none) discarded per tick.
const MAX_PROBE_BYTES: usize = 64 * 1024;

/// Bytes of control notices kept for one consumer that is not reading.
const MAX_NOTICE_BACKLOG: usize = 256 * 1024;

impl Consumer {
    /// Pushes hello+names and the pending loss record if needed; false if
    /// they do not fit (the caller then drops the record it wanted to add).
    fn prepare(&mut self, ctl: &mut ControlEncoder, names: &[u8], now_ns: u64) -> bool {
        if self.names_pending {
            self.ring.ensure_empty_fits(names.len());
            if names.len() > self.ring.free() {
                return false;
            }
            self.ring.push(names);
            self.names_pending = false;
        }
        if !self.notices.is_empty() {
            self.ring.ensure_empty_fits(self.notices.len());
            if self.notices.len() > self.ring.free() {
                return false;
            }
            self.ring.push(&self.notices);
            self.notices.clear();
        }
        if self.pending_loss.iter().any(|&n| n != 0) {
            // A consumer that is behind has no room, and every record
            // offered to it would build a loss record only to drop it:
            // look at the room first.
            if ControlEncoder::loss_len_bound() > self.ring.free() {
                return false;
            }
            let loss = ctl.loss(now_ns, self.id, &self.pending_loss);
            if loss.len() > self.ring.free() {
                return false;
            }
            self.ring.push(loss);
            self.pending_loss = [0; N];
        }
        true
    }

    #[inline]
    fn offer(
        &mut self,
        t: usize,
        count: u64,
        bytes: &[u8],
        ctl: &mut ControlEncoder,
        names: &[u8],
        now_ns: u64,
    ) {
        if self.dead {
            return;
        }
        if (self.needs_prepare() && !self.prepare(ctl, names, now_ns))
            || bytes.len() > self.ring.free()
        {
            self.dropped[t] += count;
            self.pending_loss[t] += count;
            self.last_loss_ns = now_ns;
            return;
        }
        self.ring.push(bytes);
        self.delivered[t] += count;
    }

    #[inline]
    fn has_loss(&self) -> bool {
        self.pending_loss.iter().any(|&n| n != 0)
    }

    /// Control records wait to go before the next event.
    #[inline]
    fn needs_prepare(&self) -> bool {
        self.names_pending || !self.notices.is_empty() || self.has_loss()
    }

    /// Queues a control notice (whole frame) for this consumer.
    fn notify(&mut self, frame: &[u8]) {
        if self.notices.len() + frame.len() > MAX_NOTICE_BACKLOG {
            self.notices_dropped += 1;
        } else {
            self.notices.extend_from_slice(frame);
        }
    }

    /// Writes as much as the socket takes without blocking.
    fn flush(&mut self) {
        while self.ring.len > 0 && !self.dead {
            let (a, b) = self.ring.slices();
            let r = if b.is_empty() {
                self.stream.write(a)
            } else {
                self.stream
                    .write_vectored(&[IoSlice::new(a), IoSlice::new(b)])
            };
            match r {
                Ok(0) => self.dead = true,
                Ok(n) => {
                    self.ring.consume(n);
                    // The socket was full and took more: the peer read.
                    self.wrote_after_full |= self.socket_was_full;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.socket_was_full = true;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => self.dead = true,
            }
        }
    }

    /// Notes whether the peer read since the last check: its socket holds
    /// nothing unread, or less than at the last check, or it was full and
    /// took more since. A consumer that never reads shows none of these,
    /// however few records it is sent. Without a socket measure, only an
    /// empty hub buffer counts.
    fn check_progress(
        &mut self,
        unread_bytes: Option<fn(&UnixStream) -> io::Result<usize>>,
        now_ns: u64,
    ) {
        let progressed = match unread_bytes.map(|f| f(&self.stream)) {
            Some(Ok(unread)) => {
                let read = unread == 0 || unread < self.unread_ref || self.wrote_after_full;
                self.unread_ref = unread;
                read
            }
            _ => self.ring.len == 0,
        };
        self.socket_was_full = false;
        self.wrote_after_full = false;
        if progressed {
            self.progress_ns = now_ns;
        }
    }

    fn unread(&self, unread_bytes: Option<fn(&UnixStream) -> io::Result<usize>>) -> usize {
        self.ring.len + unread_bytes.and_then(|f| f(&self.stream).ok()).unwrap_or(0)
    }

    /// Detects a consumer that closed its end. Consumers never send data;
    /// what one sends anyway is discarded, at most [`MAX_PROBE_BYTES`] per
    /// call, so a client writing without pause cannot hold the control
    /// plane here. Returns the bytes discarded.
    fn probe(&mut self) -> usize {
        let mut scratch = [0u8; 4096];
        let mut discarded = 0;
        while discarded < MAX_PROBE_BYTES {
            match self.stream.read(&mut scratch) {
                Ok(0) => {
                    self.dead = true;
                    break;
                }
                Ok(n) => discarded += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.dead = true;
                    break;
                }
            }
        }
        discarded
    }
}

/// Counters of one connected consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerStats {
    pub id: u64,
    pub delivered: [u64; N],
    pub dropped: [u64; N],
    /// Bytes accepted but not yet written to the socket.
    pub buffered_bytes: usize,
    /// Control notices (config rejects) it was too far behind to receive.
    pub notices_dropped: u64,
}

/// A snapshot of the event counters for `rampart stats`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubStats {
    pub generation: u32,
    /// Per type, summed over workers (`drained` counted by the hub).
    pub events: [TypeCounters; N],
    /// Per worker (registered counters), with the hub's `drained`.
    pub workers: Vec<WorkerCountersSnapshot>,
    pub consumers: Vec<ConsumerStats>,
    /// Slots pulled from a source that were empty or had no valid type.
    pub invalid_slots: u64,
    pub connections: ConnectionCounters,
    /// Attacks the workers could not track as episodes (slots all taken).
    pub episodes_untracked: u64,
}

fn per_type_json(out: &mut String, v: &[u64; N]) {
    out.push('{');
    for (i, t) in EventType::ALL.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!("\"{}\":{}", t.name(), v[i]));
    }
    out.push('}');
}

impl HubStats {
    /// `{"policy_deny":{"generated":..,"rate_limited":..,"ring_overflow":..,"drained":..},...}`
    pub fn events_json(&self) -> String {
        let mut out = String::from("{");
        for (i, t) in EventType::ALL.iter().enumerate() {
            let c = &self.events[i];
            if i > 0 {
                out.push(',');
            }
            out.push_str(&format!(
                "\"{}\":{{\"generated\":{},\"rate_limited\":{},\"ring_overflow\":{},\"drained\":{},\"aggregating\":{},\"aggregate_full\":{}}}",
                t.name(),
                c.generated,
                c.rate_limited,
                c.ring_overflow,
                c.drained,
                c.aggregating,
                c.aggregate_full
            ));
        }
        out.push('}');
        out
    }

    /// `[{"id":1,"delivered":{...},"dropped":{...},"buffered_bytes":0,"notices_dropped":0},...]`
    pub fn consumers_json(&self) -> String {
        let mut out = String::from("[");
        for (i, c) in self.consumers.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&format!("{{\"id\":{},\"delivered\":", c.id));
            per_type_json(&mut out, &c.delivered);
            out.push_str(",\"dropped\":");
            per_type_json(&mut out, &c.dropped);
            out.push_str(&format!(
                ",\"buffered_bytes\":{},\"notices_dropped\":{}}}",
                c.buffered_bytes, c.notices_dropped
            ));
        }
        out.push(']');
        out
    }

    /// `{"generation":G,"events":{...},"consumers":[...],"consumer_connections":{...}}`
    /// (the binary adds `workers` and `ports`).
    pub fn to_json(&self) -> String {
        let c = &self.connections;
        format!(
            "{{\"generation\":{},\"events\":{},\"episodes_untracked\":{},\"consumers\":{},\"consumer_connections\":{{\"accepted\":{},\"refused\":{},\"cut_off\":{}}}}}",
            self.generation,
            self.events_json(),
            self.episodes_untracked,
            self.consumers_json(),
            c.accepted,
            c.refused,
            c.cut_off
        )
    }

    /// Per type: `generated == rate_limited + ring_overflow + drained +
    /// aggregating`.
    pub fn balanced(&self) -> bool {
        self.events.iter().all(TypeCounters::balanced)
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// The control-plane drain: owns the event socket and its consumers.
pub struct Hub {
    config: HubConfig,
    /// The event socket (removed when the hub is dropped).
    socket: Option<SocketFile>,
    socket_gid: Option<u32>,
    consumers: Vec<Consumer>,
    next_id: u64,
    drained: Vec<[u64; N]>,
    invalid: u64,
    generation: u32,
    start_time_ns: u64,
    names: Names,
    /// Hello then the name table of `generation` (what every consumer
    /// receives after a reload); the hello is the first `hello_len` bytes.
    names_bytes: Vec<u8>,
    hello_len: usize,
    /// Encoded name tables of earlier generations still referenced, oldest
    /// first, by generation. A session close names the policy, zones and
    /// interfaces of the generation the session was created in, which may
    /// be older than the consumer's connection: a new consumer gets these
    /// tables between its hello and the current table. Kept from the
    /// oldest generation the workers' sessions still hold (see
    /// [`Hub::oldest_referenced`]), and at most [`RETAINED_GENERATIONS`]
    /// of them: a session outliving that many reloads closes with ids its
    /// consumer may not resolve (rendered as ids, like any unknown id).
    history: VecDeque<(u32, Vec<u8>)>,
    ctl: ControlEncoder,
    /// Records taken from one source per round-robin turn.
    burst: usize,
    rr: usize,
    now_ns: u64,
    last_stats_ns: u64,
    last_progress_check_ns: u64,
    workers: Vec<Arc<SharedCounters>>,
    connections: ConnectionCounters,
    cut_offs: Vec<CutOff>,
}

impl Hub {
    /// A hub without a listening socket (add consumers with
    /// [`Hub::add_consumer`]).
    pub fn new(config: HubConfig) -> Hub {
        let burst = config.burst.max(1);
        let now = now_ns();
        let mut hub = Hub {
            config,
            socket: None,
            socket_gid: None,
            consumers: Vec::new(),
            next_id: 1,
            drained: Vec::new(),
            invalid: 0,
            generation: 0,
            start_time_ns: now,
            names: Names::default(),
            names_bytes: Vec::new(),
            hello_len: 0,
            history: VecDeque::new(),
            ctl: ControlEncoder::new(),
            burst,
            rr: 0,
            now_ns: now,
            last_stats_ns: 0,
            last_progress_check_ns: 0,
            workers: Vec::new(),
            connections: ConnectionCounters::default(),
            cut_offs: Vec::new(),
        };
        hub.rebuild_names();
        hub
    }

    /// Listens on `path` (non-blocking, mode `config.socket_mode`, the
    /// process's group), created race-free by [`SocketFile::bind`]: a stale
    /// socket file is removed; a socket with a live listener is an error,
    /// and so is a path that is not a socket.
    pub fn bind(path: impl AsRef<Path>, config: HubConfig) -> Result<Hub, HubError> {
        let socket = SocketFile::bind(
            "events socket",
            path.as_ref(),
            config.socket_mode,
            None,
            false,
        )?;
        Ok(Hub::with_socket(socket, None, config))
    }

    /// A hub serving consumers on `socket` (whose group is `gid`).
    pub fn with_socket(socket: SocketFile, gid: Option<u32>, config: HubConfig) -> Hub {
        let mut hub = Hub::new(config);
        hub.socket_gid = gid;
        hub.socket = Some(socket);
        hub
    }

    /// Changes the event socket's mode and group (a reload), on its inode.
    pub fn set_socket_access(&mut self, mode: u32, gid: Option<u32>) -> Result<(), HubError> {
        if let Some(s) = &self.socket {
            s.set_access(mode, gid)?;
            self.config.socket_mode = mode;
            self.socket_gid = gid;
        }
        Ok(())
    }

    /// The group the event socket was given, if one was.
    pub fn socket_gid(&self) -> Option<u32> {
        self.socket_gid
    }

    pub fn socket_path(&self) -> Option<&Path> {
        self.socket.as_ref().map(SocketFile::path)
    }

    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    /// Dataplane start time carried in hello records (ns since the epoch).
    pub fn set_start_time(&mut self, start_time_ns: u64) {
        self.start_time_ns = start_time_ns;
        self.rebuild_names();
    }

    /// Node name and boot id carried in hello records, from which every
    /// consumer forms each record's stable event id.
    /// The high-availability pair this node belongs to, named in every
    /// hello from now on.
    pub fn set_cluster(&mut self, name: &str) {
        self.ctl.set_cluster(name);
        self.rebuild_names();
    }

    pub fn set_identity(&mut self, node: &str, boot_id: u64) {
        self.ctl.set_identity(node, boot_id);
        self.rebuild_names();
    }

    /// Registers worker `i`'s counters (call in worker order).
    pub fn register_worker(&mut self, counters: Arc<SharedCounters>) {
        self.workers.push(counters);
    }

    pub fn generation(&self) -> u32 {
        self.generation
    }

    /// Installs the names of a new config generation; every consumer gets a
    /// new hello and name table before its next record.
    pub fn set_names(&mut self, generation: u32, names: &Names) {
        if self.generation != 0 && self.generation != generation {
            let previous = self.ctl.names(self.generation, &self.names).to_vec();
            self.history.push_back((self.generation, previous));
            while self.history.len() > RETAINED_GENERATIONS {
                self.history.pop_front();
            }
        }
        self.prune_history();
        self.generation = generation;
        self.names = names.clone();
        self.rebuild_names();
        for c in &mut self.consumers {
            c.names_pending = true;
            c.prepare(&mut self.ctl, &self.names_bytes, self.now_ns);
        }
    }

    /// Tells every consumer that a reload was refused and the running
    /// generation stays (the third place an operator sees it, after the
    /// control-socket reply and the daemon log).
    pub fn announce_config_reject(&mut self, path: &str, errors: &[String]) {
        let frame = self
            .ctl
            .config_reject(now_ns(), self.generation, path, errors)
            .to_vec();
        for c in &mut self.consumers {
            c.notify(&frame);
            c.prepare(&mut self.ctl, &self.names_bytes, self.now_ns);
        }
    }

    /// The oldest generation any worker's events may still name (0: not
    /// known, when a worker has not said yet or none is registered).
    pub fn oldest_referenced(&self) -> u32 {
        self.workers
            .iter()
            .map(|w| w.oldest_generation())
            .min()
            .unwrap_or(0)
    }

    /// Drops the retained tables no session references any more.
    fn prune_history(&mut self) {
        let oldest = self.oldest_referenced();
        self.history.retain(|(g, _)| *g >= oldest);
    }

    fn rebuild_names(&mut self) {
        let oldest = match self.oldest_referenced() {
            0 => 0,
            g => g.min(self.generation),
        };
        let mut bytes = self
            .ctl
            .hello_referencing(
                self.generation,
                oldest,
                self.start_time_ns,
                &self.config.producer,
            )
            .to_vec();
        self.hello_len = bytes.len();
        bytes.extend_from_slice(self.ctl.names(self.generation, &self.names));
        self.names_bytes = bytes;
    }

    pub fn consumer_count(&self) -> usize {
        self.consumers.len()
    }

    pub fn consumer_ids(&self) -> Vec<u64> {
        self.consumers.iter().map(|c| c.id).collect()
    }

    /// Adds a connected consumer; it first receives hello + names.
    pub fn add_consumer(&mut self, stream: UnixStream) -> io::Result<u64> {
        stream.set_nonblocking(true)?;
        let id = self.next_id;
        self.next_id += 1;
        let mut c = Consumer {
            id,
            stream,
            ring: Ring::new(self.config.consumer_buffer_bytes),
            delivered: [0; N],
            dropped: [0; N],
            pending_loss: [0; N],
            names_pending: false,
            notices: Vec::new(),
            notices_dropped: 0,
            dead: false,
            unread_ref: 0,
            socket_was_full: false,
            wrote_after_full: false,
            progress_ns: self.now_ns,
            connected_ns: self.now_ns,
            last_loss_ns: 0,
        };
        // Hello, the retained earlier tables, then the current one.
        self.prune_history();
        let (hello, current) = self.names_bytes.split_at(self.hello_len);
        let mut first = hello.to_vec();
        self.history
            .iter()
            .for_each(|(_, t)| first.extend_from_slice(t));
        first.extend_from_slice(current);
        c.ring.ensure_empty_fits(first.len());
        c.ring.push(&first);
        c.flush();
        self.consumers.push(c);
        Ok(id)
    }

    /// Accepts pending connections (at most [`MAX_ACCEPTS_PER_POLL`], so a
    /// connection flood cannot hold the drain); returns how many were
    /// added. With every slot taken, a consumer that has not read for
    /// [`HubConfig::evict_after_ns`] makes room, or else the one furthest
    /// behind ([`CutOffReason::FellBehind`]); when every consumer keeps
    /// up, the newcomer is refused (closed at once, counted).
    pub fn accept(&mut self) -> usize {
        let mut n = 0;
        for _ in 0..MAX_ACCEPTS_PER_POLL {
            let Some(socket) = self.socket.as_ref() else {
                break;
            };
            match socket.accept() {
                Ok(s) => {
                    self.connections.accepted += 1;
                    if self.consumers.len() >= self.config.max_consumers && !self.evict_one() {
                        self.connections.refused += 1;
                        drop(s);
                        continue;
                    }
                    if self.add_consumer(s).is_ok() {
                        n += 1;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        n
    }

    /// Cuts off the consumer silent longest, if silent past
    /// `evict_after_ns`; else the one that lost the most records of those
    /// losing records within `evict_after_ns` and connected at least that
    /// long (a slow reader holds a slot it cannot use, and one that keeps
    /// up is never evicted). True if one went.
    fn evict_one(&mut self) -> bool {
        let now = self.now_ns;
        let (unread_bytes, recent) = (self.config.unread_bytes, self.config.evict_after_ns);
        for c in self.consumers.iter_mut().filter(|c| !c.dead) {
            c.check_progress(unread_bytes, now);
        }
        let live = || self.consumers.iter().enumerate().filter(|(_, c)| !c.dead);
        let silent = live()
            .min_by_key(|(_, c)| c.progress_ns)
            .filter(|(_, c)| now.saturating_sub(c.progress_ns) >= recent)
            .map(|(i, _)| (i, CutOffReason::Evicted));
        let behind = || {
            live()
                .filter(|(_, c)| {
                    c.last_loss_ns != 0
                        && now.saturating_sub(c.last_loss_ns) < recent
                        && now.saturating_sub(c.connected_ns) >= recent
                })
                .max_by_key(|(_, c)| c.dropped.iter().sum::<u64>())
                .map(|(i, _)| (i, CutOffReason::FellBehind))
        };
        let Some((at, reason)) = silent.or_else(behind) else {
            return false;
        };
        let c = &mut self.consumers[at];
        c.dead = true;
        let cut = CutOff {
            id: c.id,
            reason,
            silent_ns: now.saturating_sub(c.progress_ns),
            unread_bytes: c.unread(unread_bytes),
        };
        self.record_cut_off(cut);
        self.consumers.retain(|c| !c.dead);
        true
    }

    fn record_cut_off(&mut self, cut: CutOff) {
        self.connections.cut_off += 1;
        if self.cut_offs.len() < MAX_CUT_OFF_LOG {
            self.cut_offs.push(cut);
        }
    }

    /// Consumers cut off since the last call, for the daemon's log (at
    /// most [`MAX_CUT_OFF_LOG`] kept between calls; the counter has all).
    pub fn take_cut_offs(&mut self) -> Vec<CutOff> {
        std::mem::take(&mut self.cut_offs)
    }

    pub fn connections(&self) -> ConnectionCounters {
        self.connections
    }

    /// One round-robin pass: pulls up to `burst` records from each source
    /// and fans them out. Returns the number of records drained.
    pub fn drain<S: EventSource>(&mut self, sources: &mut [S]) -> usize {
        if sources.is_empty() {
            return 0;
        }
        if self.drained.len() < sources.len() {
            self.drained.resize(sources.len(), [0; N]);
        }
        let len = sources.len();
        let mut total = 0;
        let start = self.rr % len;
        for k in 0..len {
            let i = (start + k) % len;
            let Hub {
                burst,
                consumers,
                ctl,
                names_bytes,
                drained,
                invalid,
                now_ns,
                ..
            } = self;
            total += sources[i].drain_into(*burst, &mut |slot| {
                let (Some(t), false) = (slot.event_type(), slot.is_empty()) else {
                    *invalid += 1;
                    return;
                };
                let t = t.index();
                // An aggregated record stands for `count` events: every
                // counter from here on counts events, so they still add up
                // to what the workers generated.
                let count = u64::from(slot.count().max(1));
                drained[i][t] += count;
                let bytes = slot.as_bytes();
                for c in consumers.iter_mut() {
                    c.offer(t, count, bytes, ctl, names_bytes, *now_ns);
                }
            });
        }
        self.rr = (start + 1) % len;
        total
    }

    /// Whether any consumer still has buffered bytes to write (shutdown
    /// waits for this, with a deadline, before the final exit).
    pub fn has_pending(&self) -> bool {
        self.consumers.iter().any(|c| c.ring.len > 0 && !c.dead)
    }

    /// Writes buffered data to every consumer without blocking and removes
    /// consumers whose socket failed.
    pub fn flush(&mut self) {
        for c in &mut self.consumers {
            c.flush();
        }
        self.consumers.retain(|c| !c.dead);
    }

    /// Periodic work at time `now_ns` (ns, any monotonic-enough clock; the
    /// wall clock is what records carry): detect closed consumers, send
    /// pending loss records and, every `stats_interval_ns`, an in-band stats
    /// record to each consumer.
    pub fn tick(&mut self, now_ns: u64) {
        self.now_ns = now_ns;
        let unread_bytes = self.config.unread_bytes;
        let check = now_ns.saturating_sub(self.last_progress_check_ns) >= PROGRESS_CHECK_NS;
        if check {
            self.last_progress_check_ns = now_ns;
        }
        let mut cut = Vec::new();
        for c in &mut self.consumers {
            if c.ring.len == 0 {
                let _ = c.probe();
            }
            if check && !c.dead {
                c.check_progress(unread_bytes, now_ns);
                let silent_ns = now_ns.saturating_sub(c.progress_ns);
                if silent_ns >= self.config.stall_timeout_ns {
                    c.dead = true;
                    cut.push(CutOff {
                        id: c.id,
                        reason: CutOffReason::Stalled,
                        silent_ns,
                        unread_bytes: c.unread(unread_bytes),
                    });
                }
            }
            if !c.dead && c.needs_prepare() {
                c.prepare(&mut self.ctl, &self.names_bytes, now_ns);
            }
        }
        for c in cut {
            self.record_cut_off(c);
        }
        if now_ns < self.last_stats_ns {
            self.last_stats_ns = now_ns; // clock went back
        }
        if now_ns - self.last_stats_ns >= self.config.stats_interval_ns {
            self.last_stats_ns = now_ns;
            self.emit_stats();
        }
        self.flush();
    }

    /// Sends a stats record to every consumer now (if it fits its buffer).
    pub fn emit_stats(&mut self) {
        let s = self.stats();
        for c in &mut self.consumers {
            if c.dead || !c.prepare(&mut self.ctl, &self.names_bytes, self.now_ns) {
                continue;
            }
            let rec = self.ctl.stats(
                self.now_ns,
                self.generation,
                &s.events,
                &s.workers,
                c.id,
                &c.delivered,
                &c.dropped,
            );
            if rec.len() <= c.ring.free() {
                c.ring.push(rec);
            }
        }
    }

    /// accept + drain (until the sources are empty or `max_passes`) +
    /// flush + tick. Returns the number of records drained.
    pub fn poll<S: EventSource>(&mut self, sources: &mut [S], now_ns: u64) -> usize {
        self.now_ns = now_ns;
        self.accept();
        let mut total = 0;
        for _ in 0..self.config.max_passes.max(1) {
            let n = self.drain(sources);
            total += n;
            self.flush();
            if n == 0 {
                break;
            }
        }
        self.tick(now_ns);
        total
    }

    /// Counters for the control socket (`rampart stats`).
    pub fn stats(&self) -> HubStats {
        let mut events = [TypeCounters::default(); N];
        let mut workers = Vec::with_capacity(self.workers.len());
        for (i, w) in self.workers.iter().enumerate() {
            let mut snap = w.snapshot();
            if let Some(d) = self.drained.get(i) {
                for (c, d) in snap.counters.iter_mut().zip(d) {
                    c.drained = *d;
                }
            }
            workers.push(snap);
        }
        for w in &workers {
            for (e, c) in events.iter_mut().zip(&w.counters) {
                e.add(c);
            }
        }
        // Sources without registered counters still count as drained.
        for d in self.drained.iter().skip(self.workers.len()) {
            for (e, d) in events.iter_mut().zip(d) {
                e.drained += d;
            }
        }
        HubStats {
            generation: self.generation,
            events,
            episodes_untracked: self.workers.iter().map(|w| w.episodes_untracked()).sum(),
            workers,
            consumers: self
                .consumers
                .iter()
                .map(|c| ConsumerStats {
                    id: c.id,
                    delivered: c.delivered,
                    dropped: c.dropped,
                    buffered_bytes: c.ring.len,
                    notices_dropped: c.notices_dropped,
                })
                .collect(),
            invalid_slots: self.invalid,
            connections: self.connections,
        }
    }

    /// `stats().to_json()`.
    pub fn stats_json(&self) -> String {
        self.stats().to_json()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_consumer_sending_garbage_stays_and_cannot_hold_the_hub() {
        // What the hub does with bytes a consumer writes into the event
        // socket: discards them, a bounded amount per tick (a client writing
        // without pause used to keep tick() reading forever).
        let mut hub = Hub::new(HubConfig::default());
        let (ours, theirs) = UnixStream::pair().unwrap();
        hub.add_consumer(ours).unwrap();
        theirs.set_nonblocking(true).unwrap();
        let junk = [0xa5u8; 8192];
        let mut sent = 0;
        while let Ok(n) = (&theirs).write(&junk) {
            sent += n;
        }
        assert!(sent > MAX_PROBE_BYTES, "socket took only {sent} bytes");
        let c = &mut hub.consumers[0];
        c.ring.consume(c.ring.len);
        assert_eq!(c.probe(), MAX_PROBE_BYTES);
        assert!(!c.dead);
        let mut total = MAX_PROBE_BYTES;
        loop {
            match hub.consumers[0].probe() {
                0 => break,
                n => total += n,
            }
        }
        assert_eq!(total, sent);
        assert_eq!(hub.consumer_count(), 1);
        // It still receives what it is sent, and closing is still noticed.
        hub.tick(1);
        assert_eq!(hub.consumer_count(), 1);
        drop(theirs);
        hub.tick(2);
        assert_eq!(hub.consumer_count(), 0);
    }

    #[test]
    fn ring_wraps() {
        let mut r = Ring::new(8);
        r.push(b"abcde");
        r.consume(4);
        r.push(b"fghij");
        let (a, b) = r.slices();
        assert_eq!([a, b].concat(), b"efghij");
        assert_eq!(r.free(), 2);
        r.consume(6);
        assert_eq!(r.len, 0);
        assert_eq!(r.head, 0);
    }
}
