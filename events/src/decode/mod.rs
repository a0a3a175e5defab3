//! Consumer side: verify and decode records, track name tables by
//! generation, read size-prefixed frames from a stream.
//!
//! No-panic contract: [`decode`] runs the flatbuffers verifier before any
//! access, so arbitrary bytes produce `Err`, never a panic.

mod fast;

use std::collections::BTreeMap;
use std::io::{self, Read};

use rampart_schema::fb;

use crate::counters::{TypeCounters, WorkerCountersSnapshot};
use crate::types::{
    CloseReason, EpisodePhase, Event, EventType, FilterAction, FilterDirection, FilterLog,
    FilterName, InterfaceName, Names, PacketMeta, PolicyDeny, PolicyName, Repeat, ScreenDrop,
    ScreenEpisode, ScreenOption, SessionClose, SessionOpen, SourceCount, ZoneName, MAX_TOP_SOURCES,
};

const N: usize = EventType::COUNT;

/// Largest frame a reader accepts (name tables of huge configs included).
pub const MAX_FRAME: usize = 16 << 20;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("invalid flatbuffer: {0}")]
    Invalid(String),
    #[error("record has no body")]
    NoBody,
    #[error("unknown {field} value {value}")]
    UnknownValue { field: &'static str, value: u8 },
    #[error("truncated frame")]
    Truncated,
}

/// A decoded packet event. `snippet` borrows the record buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketEvent<'a> {
    pub seq: u64,
    pub meta: PacketMeta,
    pub event: Event,
    pub snippet: &'a [u8],
    /// Packets this record stands for ([`Repeat::ONE`] unless aggregated).
    pub repeat: Repeat,
}

/// A session record's identity across a high-availability pair: the
/// same whichever node writes it ([`NameCache::session_identity`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SessionIdentity<'c> {
    pub cluster: &'c str,
    /// The boot id of the run that created the session.
    pub origin: u64,
    pub session_id: u64,
    /// The close record (else the open record).
    pub close: bool,
}

impl PacketEvent<'_> {
    /// The generation whose name tables resolve this event's ids: a
    /// session close names what the session was created under (its
    /// `session_generation`), every other event what was live at the
    /// decision (`meta.generation`).
    pub fn names_generation(&self) -> u32 {
        match self.event {
            Event::SessionClose(SessionClose {
                session_generation: g,
                ..
            }) if g != 0 => g,
            _ => self.meta.generation,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Hello {
    pub schema_version: u32,
    pub generation: u32,
    pub start_time_ns: u64,
    pub producer: String,
    /// The oldest generation records may still name (0 = not known).
    pub oldest_generation: u32,
    /// `[dataplane] node` (empty from older producers).
    pub node: String,
    /// Random, new on every start (0 from older producers).
    pub boot_id: u64,
    /// `[cluster] name` of a high-availability node (empty: alone).
    pub cluster: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NameTable {
    pub generation: u32,
    pub names: Names,
}

/// In-band statistics as one consumer receives them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StatsRecord {
    pub ts_ns: u64,
    pub generation: u32,
    /// Summed over workers, indexed by [`EventType`].
    pub totals: [TypeCounters; N],
    pub workers: Vec<WorkerCountersSnapshot>,
    pub consumer_id: u64,
    pub delivered: [u64; N],
    pub dropped: [u64; N],
}

/// Records this consumer lost since its previous loss record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LossRecord {
    pub ts_ns: u64,
    pub consumer_id: u64,
    pub dropped: [u64; N],
}

/// A refused reload: `generation` keeps running.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigReject {
    pub ts_ns: u64,
    pub generation: u32,
    pub path: String,
    pub errors: Vec<String>,
}

/// One decoded record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record<'a> {
    Event(PacketEvent<'a>),
    Hello(Hello),
    Names(NameTable),
    Stats(StatsRecord),
    Loss(LossRecord),
    ConfigReject(ConfigReject),
    /// A union member this reader does not know (newer producer).
    Unknown(u8),
}

impl Record<'_> {
    /// `policy_deny` ... `session_close`, `hello`, `names`, `stats`, `loss`,
    /// `config_reject`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Record::Event(e) => e.event.event_type().name(),
            Record::Hello(_) => "hello",
            Record::Names(_) => "names",
            Record::Stats(_) => "stats",
            Record::Loss(_) => "loss",
            Record::ConfigReject(_) => "config_reject",
            Record::Unknown(_) => "unknown",
        }
    }

    pub fn event_type(&self) -> Option<EventType> {
        match self {
            Record::Event(e) => Some(e.event.event_type()),
            _ => None,
        }
    }
}

fn unknown(field: &'static str, value: u8) -> DecodeError {
    DecodeError::UnknownValue { field, value }
}

/// `(reject, audit)` of a deny record's action.
pub(crate) fn deny_flags(a: fb::DenyAction) -> Result<(bool, bool), DecodeError> {
    match a {
        fb::DenyAction::Deny => Ok((false, false)),
        fb::DenyAction::Reject => Ok((true, false)),
        fb::DenyAction::Audit => Ok((false, true)),
        a => Err(unknown("deny action", a.0)),
    }
}

pub(crate) fn screen_option(o: fb::ScreenOption) -> Result<ScreenOption, DecodeError> {
    ScreenOption::from_u8(o.0).ok_or_else(|| unknown("screen option", o.0))
}

/// Whether a screen record's action is alarm-only.
pub(crate) fn screen_alarm_only(a: fb::ScreenAction) -> Result<bool, DecodeError> {
    match a {
        fb::ScreenAction::Drop => Ok(false),
        fb::ScreenAction::Alarm => Ok(true),
        a => Err(unknown("screen action", a.0)),
    }
}

pub(crate) fn filter_action(a: fb::FilterAction) -> Result<FilterAction, DecodeError> {
    FilterAction::from_u8(a.0).ok_or_else(|| unknown("filter action", a.0))
}

pub(crate) fn direction(d: fb::Direction) -> Result<FilterDirection, DecodeError> {
    FilterDirection::from_u8(d.0).ok_or_else(|| unknown("direction", d.0))
}

pub(crate) fn close_reason(r: fb::CloseReason) -> Result<CloseReason, DecodeError> {
    CloseReason::from_u8(r.0).ok_or_else(|| unknown("close reason", r.0))
}

fn addr_of(a: flatbuffers::Array<'_, u8, 16>) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (o, b) in out.iter_mut().zip(a.iter()) {
        *o = b;
    }
    out
}

pub(crate) fn meta_of(m: &fb::PacketMeta) -> PacketMeta {
    PacketMeta {
        ts_ns: m.ts_ns(),
        worker: m.worker(),
        generation: m.generation(),
        src: addr_of(m.src()),
        dst: addr_of(m.dst()),
        ipv6: m.ip_version() == 6,
        src_port: m.src_port(),
        dst_port: m.dst_port(),
        protocol: m.protocol(),
        icmp_type: m.icmp_type(),
        icmp_code: m.icmp_code(),
        ingress: m.ingress(),
        egress: m.egress(),
        from_zone: m.from_zone(),
        to_zone: m.to_zone(),
    }
}

fn counters_of(v: Option<flatbuffers::Vector<'_, fb::TypeCounters>>) -> [TypeCounters; N] {
    let mut out = [TypeCounters::default(); N];
    if let Some(v) = v {
        for (o, c) in out.iter_mut().zip(v.iter()) {
            *o = TypeCounters {
                generated: c.generated(),
                rate_limited: c.rate_limited(),
                ring_overflow: c.ring_overflow(),
                drained: c.drained(),
                aggregating: 0,
                aggregate_full: 0,
            };
        }
    }
    out
}

fn u64s_of(v: Option<flatbuffers::Vector<'_, u64>>) -> [u64; N] {
    let mut out = [0; N];
    if let Some(v) = v {
        for (o, x) in out.iter_mut().zip(v.iter()) {
            *o = x;
        }
    }
    out
}

fn string_of(s: Option<&str>) -> String {
    s.unwrap_or_default().to_owned()
}

/// Decodes one record as it travels on the stream: 4-byte little-endian
/// length prefix, then the flatbuffer (bytes after it are ignored). The
/// prefix must stay attached: flatbuffers alignment is relative to it.
pub fn decode(buf: &[u8]) -> Result<Record<'_>, DecodeError> {
    decode_size_prefixed(buf).map(|(rec, _)| rec)
}

/// Decodes a record finished without a size prefix (`finish`, not
/// `finish_size_prefixed`).
pub fn decode_unprefixed(buf: &[u8]) -> Result<Record<'_>, DecodeError> {
    decode_verified(fb::root_as_record(buf))
}

fn decode_verified(
    rec: Result<fb::Record<'_>, flatbuffers::InvalidFlatbuffer>,
) -> Result<Record<'_>, DecodeError> {
    let rec = rec.map_err(|e| DecodeError::Invalid(e.to_string()))?;
    let bt = rec.body_type();
    fn ev<'a>(
        m: &fb::PacketMeta,
        event: Event,
        snippet: Option<flatbuffers::Vector<'a, u8>>,
        repeat: Repeat,
    ) -> Record<'a> {
        Record::Event(PacketEvent {
            seq: m.seq(),
            meta: meta_of(m),
            event,
            snippet: snippet.map(|v| v.bytes()).unwrap_or(&[]),
            repeat,
        })
    }
    let repeat = |count: u32, last_ts_ns: u64| Repeat { count, last_ts_ns };
    Ok(match bt {
        fb::Body::PolicyDeny => {
            let t = rec.body_as_policy_deny().ok_or(DecodeError::NoBody)?;
            let (reject, audit) = deny_flags(t.action())?;
            ev(
                t.meta(),
                Event::PolicyDeny(PolicyDeny {
                    policy: t.policy(),
                    reject,
                    audit,
                    session_id: t.session_id(),
                    application: t.application(),
                }),
                t.snippet(),
                repeat(t.count(), t.last_ts_ns()),
            )
        }
        fb::Body::ScreenDrop => {
            let t = rec.body_as_screen_drop().ok_or(DecodeError::NoBody)?;
            let option = screen_option(t.option())?;
            let alarm_only = screen_alarm_only(t.action())?;
            ev(
                t.meta(),
                Event::ScreenDrop(ScreenDrop {
                    screen: t.screen(),
                    option,
                    alarm_only,
                }),
                t.snippet(),
                repeat(t.count(), t.last_ts_ns()),
            )
        }
        fb::Body::FilterLog => {
            let t = rec.body_as_filter_log().ok_or(DecodeError::NoBody)?;
            let action = filter_action(t.action())?;
            let direction = direction(t.direction())?;
            ev(
                t.meta(),
                Event::FilterLog(FilterLog {
                    filter: t.filter(),
                    term: t.term(),
                    action,
                    direction,
                }),
                t.snippet(),
                repeat(t.count(), t.last_ts_ns()),
            )
        }
        fb::Body::SessionOpen => {
            let t = rec.body_as_session_open().ok_or(DecodeError::NoBody)?;
            ev(
                t.meta(),
                Event::SessionOpen(SessionOpen {
                    session_id: t.session_id(),
                    policy: t.policy(),
                    application: t.application(),
                    origin: t.origin(),
                }),
                None,
                Repeat::ONE,
            )
        }
        fb::Body::SessionClose => {
            let t = rec.body_as_session_close().ok_or(DecodeError::NoBody)?;
            let reason = close_reason(t.reason())?;
            ev(
                t.meta(),
                Event::SessionClose(SessionClose {
                    session_id: t.session_id(),
                    policy: t.policy(),
                    reason,
                    packets_client: t.packets_client(),
                    bytes_client: t.bytes_client(),
                    packets_server: t.packets_server(),
                    bytes_server: t.bytes_server(),
                    elapsed_ns: t.elapsed_ns(),
                    session_generation: t.session_generation(),
                    application: t.application(),
                    origin: t.origin(),
                }),
                None,
                Repeat::ONE,
            )
        }
        fb::Body::ScreenEpisode => {
            let t = rec.body_as_screen_episode().ok_or(DecodeError::NoBody)?;
            let option = screen_option(t.option())?;
            let phase = EpisodePhase::from_u8(t.phase().0)
                .ok_or_else(|| unknown("episode phase", t.phase().0))?;
            let mut top_sources = [SourceCount::default(); MAX_TOP_SOURCES];
            let mut top_len = 0;
            for (slot, c) in top_sources
                .iter_mut()
                .zip(t.top_sources().into_iter().flatten())
            {
                *slot = SourceCount {
                    addr: addr_of(c.addr()),
                    packets: c.packets(),
                };
                top_len += 1;
            }
            ev(
                t.meta(),
                Event::ScreenEpisode(ScreenEpisode {
                    screen: t.screen(),
                    option,
                    phase,
                    alarm_only: t.alarm_only(),
                    started_ns: t.started_ns(),
                    last_drop_ns: t.last_drop_ns(),
                    packets: t.packets(),
                    peak_pps: t.peak_pps(),
                    top_sources,
                    top_len,
                }),
                None,
                Repeat::ONE,
            )
        }
        fb::Body::Hello => {
            let t = rec.body_as_hello().ok_or(DecodeError::NoBody)?;
            Record::Hello(Hello {
                schema_version: t.schema_version(),
                generation: t.generation(),
                start_time_ns: t.start_time_ns(),
                producer: string_of(t.producer()),
                oldest_generation: t.oldest_generation(),
                node: string_of(t.node()),
                boot_id: t.boot_id(),
                cluster: string_of(t.cluster()),
            })
        }
        fb::Body::NameTable => {
            let t = rec.body_as_name_table().ok_or(DecodeError::NoBody)?;
            let mut names = Names::default();
            if let Some(v) = t.zones() {
                names.zones = v
                    .iter()
                    .map(|z| ZoneName {
                        name: string_of(z.name()),
                        screen: z.screen(),
                    })
                    .collect();
            }
            if let Some(v) = t.interfaces() {
                names.interfaces = v
                    .iter()
                    .map(|i| InterfaceName {
                        name: string_of(i.name()),
                        zone: i.zone(),
                    })
                    .collect();
            }
            if let Some(v) = t.policies() {
                names.policies = v
                    .iter()
                    .map(|p| PolicyName {
                        name: string_of(p.name()),
                        from_zone: p.from_zone(),
                        to_zone: p.to_zone(),
                    })
                    .collect();
            }
            if let Some(v) = t.filters() {
                names.filters = v
                    .iter()
                    .map(|f| FilterName {
                        name: string_of(f.name()),
                        terms: f
                            .terms()
                            .map(|ts| ts.iter().map(str::to_owned).collect())
                            .unwrap_or_default(),
                    })
                    .collect();
            }
            if let Some(v) = t.screens() {
                names.screens = v.iter().map(|s| string_of(s.name())).collect();
            }
            if let Some(v) = t.applications() {
                names.applications = v.iter().map(str::to_owned).collect();
            }
            Record::Names(NameTable {
                generation: t.generation(),
                names,
            })
        }
        fb::Body::Stats => {
            let t = rec.body_as_stats().ok_or(DecodeError::NoBody)?;
            Record::Stats(StatsRecord {
                ts_ns: t.ts_ns(),
                generation: t.generation(),
                totals: counters_of(t.totals()),
                workers: t
                    .workers()
                    .map(|ws| {
                        ws.iter()
                            .map(|w| WorkerCountersSnapshot {
                                worker: w.worker(),
                                counters: counters_of(w.counters()),
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                consumer_id: t.consumer_id(),
                delivered: u64s_of(t.delivered()),
                dropped: u64s_of(t.dropped()),
            })
        }
        fb::Body::Loss => {
            let t = rec.body_as_loss().ok_or(DecodeError::NoBody)?;
            Record::Loss(LossRecord {
                ts_ns: t.ts_ns(),
                consumer_id: t.consumer_id(),
                dropped: u64s_of(t.dropped()),
            })
        }
        fb::Body::ConfigReject => {
            let t = rec.body_as_config_reject().ok_or(DecodeError::NoBody)?;
            Record::ConfigReject(ConfigReject {
                ts_ns: t.ts_ns(),
                generation: t.generation(),
                path: string_of(t.path()),
                errors: t
                    .errors()
                    .map(|v| v.iter().map(str::to_owned).collect())
                    .unwrap_or_default(),
            })
        }
        fb::Body::NONE => return Err(DecodeError::NoBody),
        other => Record::Unknown(other.0),
    })
}

/// Decodes the first size-prefixed record of `buf`; returns it and the
/// number of bytes it used (prefix included).
pub fn decode_size_prefixed(buf: &[u8]) -> Result<(Record<'_>, usize), DecodeError> {
    let (frame, end) = first_frame(buf)?;
    // The packet events our encoder wrote are read field by field, every
    // read bounds-checked; anything else goes through the verifier.
    if let Some(rec) = fast::packet_event(frame) {
        return rec.map(|rec| (rec, end));
    }
    Ok((
        decode_verified(fb::size_prefixed_root_as_record(frame))?,
        end,
    ))
}

/// The first size-prefixed frame of `buf` (prefix included) and its end.
fn first_frame(buf: &[u8]) -> Result<(&[u8], usize), DecodeError> {
    let len = buf.get(..4).ok_or(DecodeError::Truncated)?;
    let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
    let end = 4usize.saturating_add(len);
    Ok((buf.get(..end).ok_or(DecodeError::Truncated)?, end))
}

/// [`decode_size_prefixed`] through the flatbuffers verifier only,
/// without the fast path for packet events (tests compare the two).
#[doc(hidden)]
pub fn decode_size_prefixed_verified(buf: &[u8]) -> Result<(Record<'_>, usize), DecodeError> {
    let (frame, end) = first_frame(buf)?;
    Ok((
        decode_verified(fb::size_prefixed_root_as_record(frame))?,
        end,
    ))
}

/// Reads one size-prefixed frame into `buf` (replacing its contents; the
/// 4-byte prefix is kept, ready for [`decode`]). `Ok(false)` on a clean end
/// of stream before a frame starts.
pub fn read_frame<R: Read>(r: &mut R, buf: &mut Vec<u8>) -> io::Result<bool> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let n = u32::from_le_bytes(len) as usize;
    if n > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {n} bytes exceeds {MAX_FRAME}"),
        ));
    }
    buf.clear();
    buf.extend_from_slice(&len);
    // Grow with the bytes that arrive, not with what the prefix claims: a
    // garbage prefix on a stream that then ends costs no 16 MiB buffer.
    let got = r.take(n as u64).read_to_end(buf)?;
    if got != n {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(true)
}

/// Name tables by config generation, as learned from the stream: those a
/// hello says records may still name (a session closes under the names of
/// the generation that created it; events in flight after a reload carry
/// the previous one), at most the most recent [`NameCache::KEEP`].
#[derive(Debug, Default, Clone)]
pub struct NameCache {
    tables: BTreeMap<u32, Names>,
    hello: Option<Hello>,
    /// `node:boot_id:` of the last hello, checked and written once (every
    /// record's event id starts with it); `None` without an identity.
    event_id_prefix: Option<String>,
    /// `[cluster] name` of the last hello, if it is a valid name.
    cluster: Option<String>,
    empty: Names,
    /// The last hello named another generation of the same run than the
    /// hello before it: a reload took effect.
    reloaded: bool,
}

impl NameCache {
    pub const KEEP: usize = 64;

    pub fn new() -> Self {
        Self::default()
    }

    /// Learns from hello and name table records; ignores the others.
    pub fn observe(&mut self, rec: &Record<'_>) {
        match rec {
            Record::Hello(h) => {
                if h.oldest_generation != 0 {
                    self.tables.retain(|&g, _| g >= h.oldest_generation);
                }
                // A producer's name goes into the id as it is: one that is
                // not a valid node name (a buggy or hostile producer)
                // gives no id.
                self.event_id_prefix = (h.boot_id != 0 && rampart_vocab::node_name_ok(&h.node))
                    .then(|| {
                        let mut p = h.node.clone();
                        p.push(':');
                        crate::text::push_hex16(&mut p, h.boot_id);
                        p.push(':');
                        p
                    });
                self.cluster = (!h.cluster.is_empty() && rampart_vocab::node_name_ok(&h.cluster))
                    .then(|| h.cluster.clone());
                self.reloaded = self
                    .hello
                    .as_ref()
                    .is_some_and(|old| old.boot_id == h.boot_id && old.generation != h.generation);
                self.hello = Some(h.clone());
            }
            Record::Names(t) => self.insert(t.generation, t.names.clone()),
            _ => {}
        }
    }

    /// Whether the last hello observed came from a reload (another
    /// generation of the run this connection saw start or join).
    pub fn reloaded(&self) -> bool {
        self.reloaded
    }

    pub fn insert(&mut self, generation: u32, names: Names) {
        self.tables.insert(generation, names);
        while self.tables.len() > Self::KEEP {
            let oldest = *self.tables.keys().next().expect("non-empty");
            self.tables.remove(&oldest);
        }
    }

    /// The last hello seen.
    pub fn hello(&self) -> Option<&Hello> {
        self.hello.as_ref()
    }

    /// Appends the stable id of packet record (`worker`, `seq`) of this
    /// stream: `node:boot_id:worker:seq`, boot id as 16 hex digits. False
    /// (nothing written) before a hello with an identity.
    pub fn write_event_id(&self, worker: u16, seq: u64, out: &mut String) -> bool {
        let Some(prefix) = &self.event_id_prefix else {
            return false;
        };
        out.push_str(prefix);
        crate::text::push_u64(out, worker.into());
        out.push(':');
        crate::text::push_u64(out, seq);
        true
    }

    /// The identity of session record `e` when its producer is a node of
    /// a high-availability pair: both nodes' records of one session carry
    /// it, so a merge of the two streams keeps one. `None` for other
    /// records, and for producers that run alone.
    pub fn session_identity(&self, e: &PacketEvent<'_>) -> Option<SessionIdentity<'_>> {
        let cluster = self.cluster.as_deref()?;
        let (origin, session_id, close) = match &e.event {
            Event::SessionOpen(o) => (o.origin, o.session_id, false),
            Event::SessionClose(c) => (c.origin, c.session_id, true),
            _ => return None,
        };
        (origin != 0).then_some(SessionIdentity {
            cluster,
            origin,
            session_id,
            close,
        })
    }

    /// Appends the event id of `e`: its session identity
    /// (`cluster:origin:session_id:open|close`, origin as 16 hex digits)
    /// for a session record of a cluster node, else its place in this
    /// stream ([`NameCache::write_event_id`]).
    pub fn write_record_id(&self, e: &PacketEvent<'_>, out: &mut String) -> bool {
        match self.session_identity(e) {
            Some(s) => {
                out.push_str(s.cluster);
                out.push(':');
                crate::text::push_hex16(out, s.origin);
                out.push(':');
                crate::text::push_u64(out, s.session_id);
                out.push_str(if s.close { ":close" } else { ":open" });
                true
            }
            None => self.write_event_id(e.meta.worker, e.seq, out),
        }
    }

    /// Names of `generation`, if its table was seen.
    pub fn get(&self, generation: u32) -> Option<&Names> {
        self.tables.get(&generation)
    }

    /// Names of `generation`, or an empty table (every lookup misses).
    pub fn names(&self, generation: u32) -> &Names {
        self.tables.get(&generation).unwrap_or(&self.empty)
    }

    pub fn generations(&self) -> impl Iterator<Item = u32> + '_ {
        self.tables.keys().copied()
    }
}
