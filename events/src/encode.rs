//! Worker side: the fixed-size ring element [`EventSlot`] and the reusable
//! [`Encoder`] that writes one size-prefixed flatbuffers `Record` into it.
//!
//! Hot path contract: after [`Encoder::new`] nothing here allocates, formats
//! or panics; a record that would not fit (impossible with the snippet
//! clamped to [`MAX_SNIPPET`]) makes `encode` return `false`.

use rampart_schema::fb;

use crate::types::{
    Event, EventType, FilterLog, PacketMeta, PolicyDeny, Repeat, ScreenDrop, ScreenEpisode,
    SessionClose, SessionOpen,
};

/// Size of one ring element in bytes (a multiple of 4, as `rte_ring_elem`
/// requires).
pub const SLOT_SIZE: usize = 512;
/// Bytes available for the encoded record (with its 4-byte length prefix).
pub const SLOT_CAPACITY: usize = SLOT_SIZE - 8;
/// Largest packet snippet that fits in a slot with every event type; the
/// encoder clamps longer snippets to it. (Checked by a test for every type
/// and every snippet length up to it.)
pub const MAX_SNIPPET: usize = 340;

/// One ring element: an encoded, size-prefixed `Record` (exactly the bytes
/// that go on the event socket) plus its event type for the drain counters.
///
/// `#[repr(C)]`, `Copy`, 512 bytes, alignment 4: suitable as the element of
/// a DPDK `rte_ring` created with `esize = 512`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct EventSlot {
    len: u16,
    event_type: u8,
    _reserved: u8,
    /// Packets the record stands for (> 1 when aggregated): the hub
    /// counts drained, delivered and dropped events by it without decoding.
    count: u32,
    data: [u8; SLOT_CAPACITY],
}

const _: () = assert!(std::mem::size_of::<EventSlot>() == SLOT_SIZE);
const _: () = assert!(SLOT_SIZE & 3 == 0);

impl Default for EventSlot {
    fn default() -> Self {
        EventSlot::EMPTY
    }
}

impl std::fmt::Debug for EventSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventSlot")
            .field("len", &self.len)
            .field("event_type", &self.event_type)
            .finish_non_exhaustive()
    }
}

impl EventSlot {
    pub const EMPTY: EventSlot = EventSlot {
        len: 0,
        event_type: u8::MAX,
        _reserved: 0,
        count: 0,
        data: [0; SLOT_CAPACITY],
    };

    /// Stores `bytes` (a size-prefixed record); false if it does not fit.
    pub fn set(&mut self, event_type: EventType, bytes: &[u8]) -> bool {
        if bytes.len() > SLOT_CAPACITY {
            return false;
        }
        self.data[..bytes.len()].copy_from_slice(bytes);
        self.len = bytes.len() as u16;
        self.event_type = event_type as u8;
        self.count = 1;
        true
    }

    /// Packets the record stands for (1 unless aggregated).
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The size-prefixed record bytes (empty for an empty or corrupt slot).
    pub fn as_bytes(&self) -> &[u8] {
        self.data.get(..usize::from(self.len)).unwrap_or(&[])
    }

    pub fn event_type(&self) -> Option<EventType> {
        EventType::from_u8(self.event_type)
    }

    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Per-worker record encoder. Create one per worker at start-up and reuse
/// it. It writes the flatbuffer bytes of each record in a fixed layout
/// computed from the schema's vtable slots (no `FlatBufferBuilder`: its
/// back-to-front building and vtable deduplication cost more than the rest
/// of a denied packet's path); the records are ordinary flatbuffers that
/// the generated verifier and every reader accept.
pub struct Encoder {
    /// Where [`Encoder::encode_bytes`] puts its record.
    scratch: EventSlot,
    max_snippet: usize,
    /// For the rare records with a vector of structs (attack episodes):
    /// built the ordinary way, into a buffer sized once.
    builder: flatbuffers::FlatBufferBuilder<'static>,
}

impl Default for Encoder {
    fn default() -> Self {
        Encoder::new()
    }
}

/// Bytes of the `PacketMeta` struct (8-aligned, a multiple of 8).
const META_SIZE: usize = std::mem::size_of::<fb::PacketMeta>();
const _: () = assert!(META_SIZE.is_multiple_of(8));

/// One scalar field of an event table: its vtable slot (the generated
/// `VT_*` constant), width in bytes and little-endian value.
#[derive(Clone, Copy)]
struct Scalar {
    slot: u16,
    width: usize,
    value: u64,
}

const fn scalar(slot: u16, width: usize, value: u64) -> Scalar {
    Scalar { slot, width, value }
}

/// Up to 8 scalars, kept in decreasing width order.
struct Scalars {
    items: [Scalar; 8],
    len: usize,
}

impl Scalars {
    fn as_slice(&self) -> &[Scalar] {
        &self.items[..self.len]
    }
}

/// `base` (in decreasing width order) plus, for an aggregated record, its
/// count (4 bytes) and last timestamp (8 bytes) in their width's place.
fn with_repeat(base: &[Scalar], repeat: Repeat, (count_slot, last_slot): (u16, u16)) -> Scalars {
    let mut out = Scalars {
        items: [scalar(0, 0, 0); 8],
        len: 0,
    };
    let extra = [
        scalar(last_slot, 8, repeat.last_ts_ns),
        scalar(count_slot, 4, repeat.count.into()),
    ];
    let extra = if repeat.is_aggregated() {
        &extra[..]
    } else {
        &[]
    };
    let (mut b, mut x) = (base.iter().peekable(), extra.iter().peekable());
    while out.len < out.items.len() {
        let next = match (b.peek(), x.peek()) {
            (Some(p), Some(q)) if q.width > p.width => x.next(),
            (Some(_), _) => b.next(),
            (None, _) => x.next(),
        };
        let Some(&f) = next else { break };
        out.items[out.len] = f;
        out.len += 1;
    }
    out
}

/// Fixed front of every record: size prefix, root offset, file identifier,
/// the `Record` vtable and table. The event's vtable starts after it.
const RECORD_VTABLE: usize = 12;
const RECORD_TABLE: usize = 20;
const EVENT_VTABLE: usize = 32;

/// Writes one size-prefixed `Record` whose body is an event table with
/// the meta struct, `scalars` (sorted by decreasing width, so each stays
/// aligned after the 8-aligned meta) and an optional snippet vector;
/// returns its length, or `None` if it does not fit `out`.
fn write_record(
    out: &mut [u8; SLOT_CAPACITY],
    body_type: fb::Body,
    meta: &fb::PacketMeta,
    meta_slot: u16,
    scalars: &[Scalar],
    snippet: Option<(u16, &[u8])>,
) -> Option<usize> {
    let slots = scalars
        .iter()
        .map(|f| f.slot)
        .chain(snippet.map(|(slot, _)| slot))
        .fold(meta_slot, u16::max);
    let vtable_len = usize::from(slots) + 2;
    // The table starts 4 bytes before an 8-aligned position, so the meta
    // struct right after its 4-byte vtable offset is 8-aligned.
    let mut table = EVENT_VTABLE + vtable_len;
    table += (12 - table % 8) % 8;
    let scalar_bytes: usize = scalars.iter().map(|f| f.width).sum();
    let offset_bytes = if snippet.is_some() { 4 } else { 0 };
    // The snippet offset (4 bytes) goes after the 8- and 4-byte scalars.
    let table_len = 4 + META_SIZE + scalar_bytes + offset_bytes;
    let vector = (table + table_len + 3) & !3;
    let snippet_len = snippet.map_or(0, |(_, s)| s.len());
    let end = match snippet {
        Some(_) => vector + 4 + snippet_len,
        None => table + table_len,
    };
    let total = (end + 3) & !3;
    if total > out.len() {
        return None;
    }
    let out = &mut out[..total];
    out.fill(0);
    let put =
        |out: &mut [u8], at: usize, bytes: &[u8]| out[at..at + bytes.len()].copy_from_slice(bytes);
    put(out, 0, &(total as u32 - 4).to_le_bytes());
    put(out, 4, &(RECORD_TABLE as u32 - 4).to_le_bytes());
    put(out, 8, fb::RECORD_IDENTIFIER.as_bytes());
    // Record: vtable (size 8, table size 12, body_type at 4, body at 8).
    for (i, v) in [8u16, 12, 4, 8].into_iter().enumerate() {
        put(out, RECORD_VTABLE + 2 * i, &v.to_le_bytes());
    }
    put(
        out,
        RECORD_TABLE,
        &((RECORD_TABLE - RECORD_VTABLE) as i32).to_le_bytes(),
    );
    out[RECORD_TABLE + 4] = body_type.0;
    put(
        out,
        RECORD_TABLE + 8,
        &((table - RECORD_TABLE - 8) as u32).to_le_bytes(),
    );
    // The event's vtable, then its table.
    put(out, EVENT_VTABLE, &(vtable_len as u16).to_le_bytes());
    put(out, EVENT_VTABLE + 2, &(table_len as u16).to_le_bytes());
    put(out, table, &((table - EVENT_VTABLE) as i32).to_le_bytes());
    let mut at = table + 4;
    let field = |out: &mut [u8], slot: u16, at: usize| {
        put(
            out,
            EVENT_VTABLE + usize::from(slot),
            &((at - table) as u16).to_le_bytes(),
        );
    };
    field(out, meta_slot, at);
    put(out, at, &meta.0);
    at += META_SIZE;
    let mut snippet_at = None;
    for f in scalars {
        if f.width < 4 && snippet.is_some() && snippet_at.is_none() {
            snippet_at = Some(at);
            at += 4;
        }
        field(out, f.slot, at);
        put(out, at, &f.value.to_le_bytes()[..f.width]);
        at += f.width;
    }
    if let Some((slot, bytes)) = snippet {
        let at = snippet_at.unwrap_or(at);
        field(out, slot, at);
        put(out, at, &((vector - at) as u32).to_le_bytes());
        put(out, vector, &(bytes.len() as u32).to_le_bytes());
        put(out, vector + 4, bytes);
    }
    Some(total)
}

impl Encoder {
    pub fn new() -> Self {
        Encoder::with_max_snippet(MAX_SNIPPET)
    }

    /// An encoder that keeps at most `max_snippet` packet bytes per event
    /// (`events.snippet_bytes`, clamped to [`MAX_SNIPPET`]).
    pub fn with_max_snippet(max_snippet: usize) -> Self {
        let mut encoder = Encoder {
            scratch: EventSlot::EMPTY,
            max_snippet: max_snippet.min(MAX_SNIPPET),
            builder: flatbuffers::FlatBufferBuilder::with_capacity(SLOT_SIZE * 2),
        };
        // One episode of the largest kind now: the builder's own tables
        // (field locations, vtables) get their capacity here, not on a
        // worker at the first attack.
        let episode = crate::types::ScreenEpisode {
            screen: 0,
            option: crate::types::ScreenOption::SynFlood,
            phase: crate::types::EpisodePhase::Start,
            alarm_only: false,
            started_ns: 0,
            last_drop_ns: 0,
            packets: 0,
            peak_pps: 0,
            top_sources: [crate::types::SourceCount::default(); crate::types::MAX_TOP_SOURCES],
            top_len: crate::types::MAX_TOP_SOURCES as u8,
        };
        let mut slot = EventSlot::EMPTY;
        encoder.encode(
            0,
            &PacketMeta::default(),
            &Event::ScreenEpisode(episode),
            &[],
            &mut slot,
        );
        encoder
    }

    pub fn max_snippet(&self) -> usize {
        self.max_snippet
    }

    /// Encodes one packet event with sequence number `seq` (assigned by the
    /// worker, one sequence across all types) into `slot`. The snippet is
    /// clamped to `max_snippet`. Returns false only if the record does not
    /// fit the slot.
    pub fn encode(
        &mut self,
        seq: u64,
        meta: &PacketMeta,
        event: &Event,
        snippet: &[u8],
        slot: &mut EventSlot,
    ) -> bool {
        self.encode_repeated(seq, meta, event, snippet, Repeat::ONE, slot)
    }

    /// [`Encoder::encode`] for a record standing for `repeat.count`
    /// packets (an aggregated policy deny, screen drop or filter log; the
    /// other types ignore `repeat`).
    pub fn encode_repeated(
        &mut self,
        seq: u64,
        meta: &PacketMeta,
        event: &Event,
        snippet: &[u8],
        repeat: Repeat,
        slot: &mut EventSlot,
    ) -> bool {
        let snippet = &snippet[..snippet.len().min(self.max_snippet)];
        let m = fb::PacketMeta::new(
            meta.ts_ns,
            seq,
            meta.generation,
            meta.worker,
            meta.src_port,
            meta.dst_port,
            meta.ingress,
            meta.egress,
            meta.from_zone,
            meta.to_zone,
            if meta.ipv6 { 6 } else { 4 },
            meta.protocol,
            meta.icmp_type,
            meta.icmp_code,
            &meta.src,
            &meta.dst,
        );
        if let Event::ScreenEpisode(e) = event {
            return self.encode_episode(&m, e, slot);
        }
        let snip = |slot: u16| (!snippet.is_empty()).then_some((slot, snippet));
        let out = &mut slot.data;
        let len = match event {
            Event::PolicyDeny(e) => {
                use fb::PolicyDeny as T;
                let action = match (e.audit, e.reject) {
                    (true, _) => fb::DenyAction::Audit,
                    (false, true) => fb::DenyAction::Reject,
                    (false, false) => fb::DenyAction::Deny,
                };
                write_record(
                    out,
                    fb::Body::PolicyDeny,
                    &m,
                    T::VT_META,
                    with_repeat(
                        &[
                            scalar(T::VT_SESSION_ID, 8, e.session_id),
                            scalar(T::VT_POLICY, 4, e.policy.into()),
                            scalar(T::VT_APPLICATION, 2, e.application.into()),
                            scalar(T::VT_ACTION, 1, action.0.into()),
                        ],
                        repeat,
                        (T::VT_COUNT, T::VT_LAST_TS_NS),
                    )
                    .as_slice(),
                    snip(T::VT_SNIPPET),
                )
            }
            Event::ScreenDrop(e) => {
                use fb::ScreenDrop as T;
                let action = if e.alarm_only {
                    fb::ScreenAction::Alarm
                } else {
                    fb::ScreenAction::Drop
                };
                write_record(
                    out,
                    fb::Body::ScreenDrop,
                    &m,
                    T::VT_META,
                    with_repeat(
                        &[
                            scalar(T::VT_SCREEN, 2, e.screen.into()),
                            scalar(T::VT_OPTION, 1, e.option as u64),
                            scalar(T::VT_ACTION, 1, action.0.into()),
                        ],
                        repeat,
                        (T::VT_COUNT, T::VT_LAST_TS_NS),
                    )
                    .as_slice(),
                    snip(T::VT_SNIPPET),
                )
            }
            Event::FilterLog(e) => {
                use fb::FilterLog as T;
                write_record(
                    out,
                    fb::Body::FilterLog,
                    &m,
                    T::VT_META,
                    with_repeat(
                        &[
                            scalar(T::VT_FILTER, 2, e.filter.into()),
                            scalar(T::VT_TERM, 2, e.term.into()),
                            scalar(T::VT_ACTION, 1, e.action as u64),
                            scalar(T::VT_DIRECTION, 1, e.direction as u64),
                        ],
                        repeat,
                        (T::VT_COUNT, T::VT_LAST_TS_NS),
                    )
                    .as_slice(),
                    snip(T::VT_SNIPPET),
                )
            }
            Event::SessionOpen(e) => {
                use fb::SessionOpen as T;
                write_record(
                    out,
                    fb::Body::SessionOpen,
                    &m,
                    T::VT_META,
                    &[
                        scalar(T::VT_SESSION_ID, 8, e.session_id),
                        scalar(T::VT_ORIGIN, 8, e.origin),
                        scalar(T::VT_POLICY, 4, e.policy.into()),
                        scalar(T::VT_APPLICATION, 2, e.application.into()),
                    ],
                    None,
                )
            }
            // Encoded above, with the builder.
            Event::ScreenEpisode(_) => None,
            Event::SessionClose(e) => {
                use fb::SessionClose as T;
                write_record(
                    out,
                    fb::Body::SessionClose,
                    &m,
                    T::VT_META,
                    &[
                        scalar(T::VT_SESSION_ID, 8, e.session_id),
                        scalar(T::VT_PACKETS_CLIENT, 8, e.packets_client),
                        scalar(T::VT_BYTES_CLIENT, 8, e.bytes_client),
                        scalar(T::VT_PACKETS_SERVER, 8, e.packets_server),
                        scalar(T::VT_BYTES_SERVER, 8, e.bytes_server),
                        scalar(T::VT_ELAPSED_NS, 8, e.elapsed_ns),
                        scalar(T::VT_ORIGIN, 8, e.origin),
                        scalar(T::VT_POLICY, 4, e.policy.into()),
                        scalar(T::VT_SESSION_GENERATION, 4, e.session_generation.into()),
                        scalar(T::VT_APPLICATION, 2, e.application.into()),
                        scalar(T::VT_REASON, 1, e.reason as u64),
                    ],
                    None,
                )
            }
        };
        match len {
            Some(len) => {
                slot.len = len as u16;
                slot.event_type = event.event_type() as u8;
                slot.count = match event {
                    Event::PolicyDeny(_) | Event::ScreenDrop(_) | Event::FilterLog(_) => {
                        repeat.count
                    }
                    Event::SessionOpen(_) | Event::SessionClose(_) | Event::ScreenEpisode(_) => 1,
                };
                true
            }
            None => false,
        }
    }

    /// An attack episode record (no snippet) into `slot`.
    fn encode_episode(
        &mut self,
        meta: &fb::PacketMeta,
        e: &ScreenEpisode,
        slot: &mut EventSlot,
    ) -> bool {
        let fbb = &mut self.builder;
        fbb.reset();
        fbb.start_vector::<fb::SourceCount>(e.top_sources().len());
        for c in e.top_sources().iter().rev() {
            fbb.push(fb::SourceCount::new(&c.addr, c.packets));
        }
        let top = fbb.end_vector::<fb::SourceCount>(e.top_sources().len());
        let t = fb::ScreenEpisode::create(
            fbb,
            &fb::ScreenEpisodeArgs {
                meta: Some(meta),
                screen: e.screen,
                option: fb::ScreenOption(e.option as u8),
                phase: fb::EpisodePhase(e.phase as u8),
                started_ns: e.started_ns,
                last_drop_ns: e.last_drop_ns,
                packets: e.packets,
                peak_pps: e.peak_pps,
                top_sources: Some(top),
                alarm_only: e.alarm_only,
            },
        );
        let rec = fb::Record::create(
            fbb,
            &fb::RecordArgs {
                body_type: fb::Body::ScreenEpisode,
                body: Some(t.as_union_value()),
            },
        );
        fbb.finish_size_prefixed(rec, Some(fb::RECORD_IDENTIFIER));
        slot.set(EventType::ScreenEpisode, fbb.finished_data())
    }

    /// Like [`Encoder::encode`] but returns the size-prefixed record bytes
    /// (valid until the next call), e.g. to write a stream file.
    pub fn encode_bytes(
        &mut self,
        seq: u64,
        meta: &PacketMeta,
        event: &Event,
        snippet: &[u8],
    ) -> &[u8] {
        let mut slot = std::mem::replace(&mut self.scratch, EventSlot::EMPTY);
        if !self.encode(seq, meta, event, snippet, &mut slot) {
            slot.len = 0;
        }
        self.scratch = slot;
        self.scratch.as_bytes()
    }

    pub fn encode_policy_deny(
        &mut self,
        seq: u64,
        meta: &PacketMeta,
        ev: &PolicyDeny,
        snippet: &[u8],
        slot: &mut EventSlot,
    ) -> bool {
        self.encode(seq, meta, &Event::PolicyDeny(*ev), snippet, slot)
    }

    pub fn encode_screen_drop(
        &mut self,
        seq: u64,
        meta: &PacketMeta,
        ev: &ScreenDrop,
        snippet: &[u8],
        slot: &mut EventSlot,
    ) -> bool {
        self.encode(seq, meta, &Event::ScreenDrop(*ev), snippet, slot)
    }

    pub fn encode_filter_log(
        &mut self,
        seq: u64,
        meta: &PacketMeta,
        ev: &FilterLog,
        snippet: &[u8],
        slot: &mut EventSlot,
    ) -> bool {
        self.encode(seq, meta, &Event::FilterLog(*ev), snippet, slot)
    }

    pub fn encode_session_open(
        &mut self,
        seq: u64,
        meta: &PacketMeta,
        ev: &SessionOpen,
        slot: &mut EventSlot,
    ) -> bool {
        self.encode(seq, meta, &Event::SessionOpen(*ev), &[], slot)
    }

    pub fn encode_session_close(
        &mut self,
        seq: u64,
        meta: &PacketMeta,
        ev: &SessionClose,
        slot: &mut EventSlot,
    ) -> bool {
        self.encode(seq, meta, &Event::SessionClose(*ev), &[], slot)
    }
}
