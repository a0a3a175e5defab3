//! The consumer's fast path for the records it gets millions of: packet
//! events (deny, screen drop, filter log, session open and close) in the
//! layout [`crate::encode`] writes. Instead of running the flatbuffers
//! verifier over the record and then reading it again through the
//! generated accessors, each field is read once, straight from the bytes,
//! with the checks the verifier makes for that field: the vtable entry
//! inside the vtable, the field inside its table and aligned, the vector
//! inside the frame. The record's front (size prefix, root offset, file
//! identifier, the `Record` table and vtable) must be exactly the
//! encoder's. Anything else, other record types and every record that
//! fails a check, goes to the verified path, which accepts or rejects it
//! as before; so this path only ever answers for records the verifier
//! accepts (a property test compares the two on random and corrupted
//! records).

use rampart_schema::fb;

use super::{
    close_reason, deny_flags, direction, filter_action, meta_of, screen_alarm_only, screen_option,
    DecodeError, PacketEvent, Record,
};
use crate::types::{Event, FilterLog, PolicyDeny, Repeat, ScreenDrop, SessionClose, SessionOpen};

/// Where the encoder puts the `Record` vtable, the `Record` table and the
/// event's vtable (see `encode::write_record`).
const RECORD_VTABLE: usize = 12;
const RECORD_TABLE: usize = 20;
const EVENT_VTABLE: usize = 32;
/// The `Record` vtable: 8 bytes, table of 12, body type at 4, body at 8.
const RECORD_VTABLE_BYTES: [u8; 8] = [8, 0, 12, 0, 4, 0, 8, 0];
/// Every packet event table has its meta struct in the first slot.
const VT_META: u16 = 4;
const META_SIZE: usize = std::mem::size_of::<fb::PacketMeta>();

/// A packet event of the encoder's layout, decoded; `None` if `frame` (a
/// size-prefixed record) is anything else or fails a check.
pub(crate) fn packet_event(frame: &[u8]) -> Option<Result<Record<'_>, DecodeError>> {
    let t = EventTable::of(frame)?;
    let meta = t.meta()?;
    let snippet = |slot| t.vector(slot);
    let repeat = |count_slot, last_slot| {
        Some(Repeat {
            count: t.u32(count_slot, 1)?,
            last_ts_ns: t.u64(last_slot, 0)?,
        })
    };
    // A field outside the layout leaves the record to the verified path;
    // an unknown enum value is the one error this path reports itself.
    let (event, snippet, repeat) = match t.body_type {
        fb::Body::PolicyDeny => {
            use fb::PolicyDeny as T;
            let action = fb::DenyAction(t.u8(T::VT_ACTION, 0)?);
            let (policy, session_id, application) = (
                t.u32(T::VT_POLICY, u32::MAX)?,
                t.u64(T::VT_SESSION_ID, 0)?,
                t.u16(T::VT_APPLICATION, u16::MAX)?,
            );
            let event = deny_flags(action).map(|(reject, audit)| {
                Event::PolicyDeny(PolicyDeny {
                    policy,
                    reject,
                    audit,
                    session_id,
                    application,
                })
            });
            (
                event,
                snippet(T::VT_SNIPPET)?,
                repeat(T::VT_COUNT, T::VT_LAST_TS_NS)?,
            )
        }
        fb::Body::ScreenDrop => {
            use fb::ScreenDrop as T;
            let option = fb::ScreenOption(t.u8(T::VT_OPTION, 0)?);
            let action = fb::ScreenAction(t.u8(T::VT_ACTION, 0)?);
            let screen = t.u16(T::VT_SCREEN, u16::MAX)?;
            let event = screen_option(option).and_then(|option| {
                Ok(Event::ScreenDrop(ScreenDrop {
                    screen,
                    option,
                    alarm_only: screen_alarm_only(action)?,
                }))
            });
            (
                event,
                snippet(T::VT_SNIPPET)?,
                repeat(T::VT_COUNT, T::VT_LAST_TS_NS)?,
            )
        }
        fb::Body::FilterLog => {
            use fb::FilterLog as T;
            let action = fb::FilterAction(t.u8(T::VT_ACTION, 0)?);
            let dir = fb::Direction(t.u8(T::VT_DIRECTION, 0)?);
            let (filter, term) = (t.u16(T::VT_FILTER, u16::MAX)?, t.u16(T::VT_TERM, u16::MAX)?);
            let event = filter_action(action).and_then(|action| {
                Ok(Event::FilterLog(FilterLog {
                    filter,
                    term,
                    action,
                    direction: direction(dir)?,
                }))
            });
            (
                event,
                snippet(T::VT_SNIPPET)?,
                repeat(T::VT_COUNT, T::VT_LAST_TS_NS)?,
            )
        }
        fb::Body::SessionOpen => {
            use fb::SessionOpen as T;
            let event = Event::SessionOpen(SessionOpen {
                session_id: t.u64(T::VT_SESSION_ID, 0)?,
                policy: t.u32(T::VT_POLICY, u32::MAX)?,
                application: t.u16(T::VT_APPLICATION, u16::MAX)?,
                origin: t.u64(T::VT_ORIGIN, 0)?,
            });
            (Ok(event), &[][..], Repeat::ONE)
        }
        fb::Body::SessionClose => {
            use fb::SessionClose as T;
            let reason = match close_reason(fb::CloseReason(t.u8(T::VT_REASON, 0)?)) {
                Ok(r) => r,
                Err(e) => return Some(Err(e)),
            };
            let event = Event::SessionClose(SessionClose {
                session_id: t.u64(T::VT_SESSION_ID, 0)?,
                policy: t.u32(T::VT_POLICY, u32::MAX)?,
                reason,
                packets_client: t.u64(T::VT_PACKETS_CLIENT, 0)?,
                bytes_client: t.u64(T::VT_BYTES_CLIENT, 0)?,
                packets_server: t.u64(T::VT_PACKETS_SERVER, 0)?,
                bytes_server: t.u64(T::VT_BYTES_SERVER, 0)?,
                elapsed_ns: t.u64(T::VT_ELAPSED_NS, 0)?,
                session_generation: t.u32(T::VT_SESSION_GENERATION, 0)?,
                application: t.u16(T::VT_APPLICATION, u16::MAX)?,
                origin: t.u64(T::VT_ORIGIN, 0)?,
            });
            (Ok(event), &[][..], Repeat::ONE)
        }
        _ => return None,
    };
    Some(event.map(|event| {
        Record::Event(PacketEvent {
            seq: meta.seq(),
            meta: meta_of(&meta),
            event,
            snippet,
            repeat,
        })
    }))
}

/// The event table of a record in the encoder's layout.
struct EventTable<'a> {
    frame: &'a [u8],
    body_type: fb::Body,
    /// The vtable's field entries (after its two length fields).
    fields: &'a [u8],
    /// Where the table starts in `frame`, and its length.
    table: usize,
    table_len: usize,
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

impl<'a> EventTable<'a> {
    fn of(frame: &'a [u8]) -> Option<EventTable<'a>> {
        let front = frame.get(..EVENT_VTABLE + 4)?;
        let fixed = u32_at(front, 0)? as usize == frame.len() - 4
            && u32_at(front, 4)? as usize == RECORD_TABLE - 4
            && front[8..12] == *fb::RECORD_IDENTIFIER.as_bytes()
            && front[RECORD_VTABLE..RECORD_TABLE] == RECORD_VTABLE_BYTES
            && u32_at(front, RECORD_TABLE)? as usize == RECORD_TABLE - RECORD_VTABLE;
        if !fixed {
            return None;
        }
        let body_type = fb::Body(front[RECORD_TABLE + 4]);
        let table = (RECORD_TABLE + 8).checked_add(u32_at(front, RECORD_TABLE + 8)? as usize)?;
        let vtable_len = usize::from(u16_at(front, EVENT_VTABLE)?);
        let table_len = usize::from(u16_at(front, EVENT_VTABLE + 2)?);
        let in_order = vtable_len >= 4
            && vtable_len.is_multiple_of(2)
            && EVENT_VTABLE + vtable_len <= table
            && table.is_multiple_of(4)
            && table_len >= 4
            && table + table_len <= frame.len()
            && u32_at(frame, table)? as usize == table - EVENT_VTABLE;
        if !in_order {
            return None;
        }
        Some(EventTable {
            frame,
            body_type,
            fields: frame.get(EVENT_VTABLE + 4..EVENT_VTABLE + vtable_len)?,
            table,
            table_len,
        })
    }

    /// Where field `slot` of `width` bytes is in the frame: `Some(None)`
    /// if absent, `None` if its entry points outside the table or to a
    /// position not aligned to `align`.
    fn field(&self, slot: u16, width: usize, align: usize) -> Option<Option<usize>> {
        let entry = usize::from(slot).checked_sub(4)?;
        let Some(off) = u16_at(self.fields, entry) else {
            // Past the vtable's end: the field is absent.
            return Some(None);
        };
        let off = usize::from(off);
        if off == 0 {
            return Some(None);
        }
        let at = self.table + off;
        (off >= 4 && off + width <= self.table_len && at.is_multiple_of(align)).then_some(Some(at))
    }

    fn bytes<const W: usize>(&self, slot: u16) -> Option<Option<[u8; W]>> {
        match self.field(slot, W, W)? {
            None => Some(None),
            Some(at) => Some(Some(self.frame.get(at..at + W)?.try_into().ok()?)),
        }
    }

    fn u8(&self, slot: u16, default: u8) -> Option<u8> {
        Some(self.bytes::<1>(slot)?.map_or(default, |b| b[0]))
    }

    fn u16(&self, slot: u16, default: u16) -> Option<u16> {
        Some(self.bytes::<2>(slot)?.map_or(default, u16::from_le_bytes))
    }

    fn u32(&self, slot: u16, default: u32) -> Option<u32> {
        Some(self.bytes::<4>(slot)?.map_or(default, u32::from_le_bytes))
    }

    fn u64(&self, slot: u16, default: u64) -> Option<u64> {
        Some(self.bytes::<8>(slot)?.map_or(default, u64::from_le_bytes))
    }

    /// The meta struct (required).
    fn meta(&self) -> Option<fb::PacketMeta> {
        let at = self.field(VT_META, META_SIZE, 8)??;
        Some(fb::PacketMeta(
            self.frame.get(at..at + META_SIZE)?.try_into().ok()?,
        ))
    }

    /// A `[ubyte]` field (empty if absent).
    fn vector(&self, slot: u16) -> Option<&'a [u8]> {
        let Some(at) = self.field(slot, 4, 4)? else {
            return Some(&[]);
        };
        let vector = at.checked_add(u32_at(self.frame, at)? as usize)?;
        if !vector.is_multiple_of(4) {
            return None;
        }
        let len = u32_at(self.frame, vector)? as usize;
        self.frame.get(vector + 4..(vector + 4).checked_add(len)?)
    }
}
