//! Worker side: the fixed-size ring element [`EventSlot`] and the reusable
//! [`Encoder`] that writes one size-prefixed flatbuffers `Record` into it.
//!
//! Hot path contract: after [`Encoder::new`] nothing here allocates, formats
//! or panics; a record that would not fit (impossible with the snippet
//! clamped to [`MAX_SNIPPET`]) makes `encode` return `false`.

use flatbuffers::FlatBufferBuilder;
use rampart_schema::fb;

use crate::types::{
    Event, EventType, FilterLog, PacketMeta, PolicyDeny, ScreenDrop, SessionClose, SessionOpen,
};

/// Size of one ring element in bytes (a multiple of 4, as `rte_ring_elem`
/// requires).
pub const SLOT_SIZE: usize = 512;
/// Bytes available for the encoded record (with its 4-byte length prefix).
pub const SLOT_CAPACITY: usize = SLOT_SIZE - 4;
/// Largest packet snippet that fits in a slot with every event type; the
/// encoder clamps longer snippets to it. (Checked by a test for every type
/// and every snippet length up to it.)
pub const MAX_SNIPPET: usize = 360;

/// One ring element: an encoded, size-prefixed `Record` (exactly the bytes
/// that go on the event socket) plus its event type for the drain counters.
///
/// `#[repr(C)]`, `Copy`, 512 bytes, alignment 2: suitable as the element of
/// a DPDK `rte_ring` created with `esize = 512`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct EventSlot {
    len: u16,
    event_type: u8,
    _reserved: u8,
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
        true
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
/// it: it owns a `FlatBufferBuilder` sized once and `reset()` per event.
pub struct Encoder {
    fbb: FlatBufferBuilder<'static>,
    max_snippet: usize,
}

impl Default for Encoder {
    fn default() -> Self {
        Encoder::new()
    }
}

impl Encoder {
    pub fn new() -> Self {
        Encoder::with_max_snippet(MAX_SNIPPET)
    }

    /// An encoder that keeps at most `max_snippet` packet bytes per event
    /// (`events.snippet_bytes`, clamped to [`MAX_SNIPPET`]).
    pub fn with_max_snippet(max_snippet: usize) -> Self {
        let mut fbb = FlatBufferBuilder::with_capacity(2 * SLOT_SIZE);
        // Warm up every internal vector so steady state never grows them.
        for _ in 0..2 {
            fbb.reset();
            let big = [0u8; MAX_SNIPPET];
            let v = fbb.create_vector(&big[..]);
            let meta =
                fb::PacketMeta::new(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, &[0; 16], &[0; 16]);
            let body = fb::ScreenDrop::create(
                &mut fbb,
                &fb::ScreenDropArgs {
                    meta: Some(&meta),
                    snippet: Some(v),
                    ..Default::default()
                },
            );
            let rec = fb::Record::create(
                &mut fbb,
                &fb::RecordArgs {
                    body_type: fb::Body::ScreenDrop,
                    body: Some(body.as_union_value()),
                },
            );
            fbb.finish_size_prefixed(rec, Some(fb::RECORD_IDENTIFIER));
        }
        Encoder {
            fbb,
            max_snippet: max_snippet.min(MAX_SNIPPET),
        }
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
        let bytes = self.encode_bytes(seq, meta, event, snippet);
        slot.set(event.event_type(), bytes)
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
        let snippet = &snippet[..snippet.len().min(self.max_snippet)];
        let fbb = &mut self.fbb;
        fbb.reset();
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
        let snip = |fbb: &mut FlatBufferBuilder<'static>| {
            (!snippet.is_empty()).then(|| fbb.create_vector(snippet))
        };
        let (body_type, body) = match event {
            Event::PolicyDeny(e) => {
                let snippet = snip(fbb);
                let t = fb::PolicyDeny::create(
                    fbb,
                    &fb::PolicyDenyArgs {
                        meta: Some(&m),
                        policy: e.policy,
                        action: if e.reject {
                            fb::DenyAction::Reject
                        } else {
                            fb::DenyAction::Deny
                        },
                        snippet,
                    },
                );
                (fb::Body::PolicyDeny, t.as_union_value())
            }
            Event::ScreenDrop(e) => {
                let snippet = snip(fbb);
                let t = fb::ScreenDrop::create(
                    fbb,
                    &fb::ScreenDropArgs {
                        meta: Some(&m),
                        screen: e.screen,
                        option: fb::ScreenOption(e.option as u8),
                        action: if e.alarm_only {
                            fb::ScreenAction::Alarm
                        } else {
                            fb::ScreenAction::Drop
                        },
                        snippet,
                    },
                );
                (fb::Body::ScreenDrop, t.as_union_value())
            }
            Event::FilterLog(e) => {
                let snippet = snip(fbb);
                let t = fb::FilterLog::create(
                    fbb,
                    &fb::FilterLogArgs {
                        meta: Some(&m),
                        filter: e.filter,
                        term: e.term,
                        action: fb::FilterAction(e.action as u8),
                        direction: fb::Direction(e.direction as u8),
                        snippet,
                    },
                );
                (fb::Body::FilterLog, t.as_union_value())
            }
            Event::SessionOpen(e) => {
                let t = fb::SessionOpen::create(
                    fbb,
                    &fb::SessionOpenArgs {
                        meta: Some(&m),
                        session_id: e.session_id,
                        policy: e.policy,
                    },
                );
                (fb::Body::SessionOpen, t.as_union_value())
            }
            Event::SessionClose(e) => {
                let t = fb::SessionClose::create(
                    fbb,
                    &fb::SessionCloseArgs {
                        meta: Some(&m),
                        session_id: e.session_id,
                        policy: e.policy,
                        reason: fb::CloseReason(e.reason as u8),
                        packets_client: e.packets_client,
                        bytes_client: e.bytes_client,
                        packets_server: e.packets_server,
                        bytes_server: e.bytes_server,
                        elapsed_ns: e.elapsed_ns,
                    },
                );
                (fb::Body::SessionClose, t.as_union_value())
            }
        };
        let rec = fb::Record::create(
            fbb,
            &fb::RecordArgs {
                body_type,
                body: Some(body),
            },
        );
        fbb.finish_size_prefixed(rec, Some(fb::RECORD_IDENTIFIER));
        fbb.finished_data()
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
