//! A session as it travels to a high-availability peer: everything the
//! peer needs to carry the connection on if this node fails (its identity,
//! flow, TCP state and window edges, the policy and generation that
//! permitted it, zones, interfaces, counters, age and idle time), in a
//! fixed layout of [`SyncRecord::LEN`] little-endian bytes.
//!
//! Times travel as ages (how long ago it was created, how long it has
//! been idle), since the two nodes' clocks share no origin. Decoding
//! accepts any bytes and never panics: a value out of range is an error
//! naming the field, and the record is not installed.

use crate::flow::{Addr, FlowKey};
use crate::session::{SessionMeta, TcpState};
use crate::tcp_window::Windows;
use rampart_vocab::CloseReason;

/// One synced session (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncRecord {
    /// The session's id on the node that created it.
    pub id: u64,
    /// The boot id of the run that created it: with `id`, the session's
    /// identity across the pair and across restarts.
    pub origin: u64,
    /// The initiator's 5-tuple.
    pub key: FlowKey,
    pub tcp: TcpState,
    /// FIN seen from `[client, server]`, and which side sent the FIN that
    /// completed both (0 client, 1 server).
    pub fin: [bool; 2],
    pub last_fin: u8,
    /// Why it closed, if a RST or the FIN exchange closed it (it lingers).
    pub closed: Option<CloseReason>,
    pub meta: SessionMeta,
    pub age_ns: u64,
    pub idle_ns: u64,
    pub packets: [u64; 2],
    pub bytes: [u64; 2],
    pub windows: Windows,
}

/// A record that does not decode: the field that is out of range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SyncRecordError {
    #[error("a session record needs {} bytes, found {0}", SyncRecord::LEN)]
    Length(usize),
    #[error("session record: {0} is out of range")]
    Field(&'static str),
}

const NONE8: u8 = 0xff;
const NONE16: u16 = 0xffff;

impl SyncRecord {
    /// Bytes of an encoded record.
    pub const LEN: usize = 8 + 8 + 37 + 3 + 21 + 16 + 32 + Windows::BYTES;

    /// Appends the record's bytes to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        self.write(out);
        debug_assert_eq!(out.len() - start, SyncRecord::LEN);
    }

    /// Writes the record's bytes over `out` (no allocation: a worker
    /// writes them straight into its sync ring).
    pub fn encode_into(&self, out: &mut [u8; SyncRecord::LEN]) {
        let mut w = SliceWriter { b: out, at: 0 };
        self.write(&mut w);
        debug_assert_eq!(w.at, SyncRecord::LEN);
    }

    fn write(&self, out: &mut impl Put) {
        out.put(&self.id.to_le_bytes());
        out.put(&self.origin.to_le_bytes());
        put_key(&self.key, out);
        out.put(&[
            tcp_code(self.tcp),
            u8::from(self.fin[0]) | u8::from(self.fin[1]) << 1 | (self.last_fin & 1) << 2,
            self.closed.map_or(NONE8, |r| r as u8),
        ]);
        let m = &self.meta;
        out.put(&m.policy.to_le_bytes());
        out.put(&m.generation.to_le_bytes());
        for v in [m.from_zone, m.to_zone, m.ingress, m.egress] {
            out.put(&v.to_le_bytes());
        }
        out.put(&m.screen_profile.unwrap_or(NONE16).to_le_bytes());
        out.put(&[u8::from(m.log_close)]);
        out.put(&m.application.to_le_bytes());
        for v in [
            self.age_ns,
            self.idle_ns,
            self.packets[0],
            self.packets[1],
            self.bytes[0],
            self.bytes[1],
        ] {
            out.put(&v.to_le_bytes());
        }
        out.put(&self.windows.to_bytes());
    }

    /// The record in the first [`SyncRecord::LEN`] bytes of `b`.
    pub fn decode(b: &[u8]) -> Result<SyncRecord, SyncRecordError> {
        let b = b
            .get(..SyncRecord::LEN)
            .ok_or(SyncRecordError::Length(b.len()))?;
        let mut r = Reader { b, at: 0 };
        let id = r.u64();
        let origin = r.u64();
        let key = r.key();
        let tcp = tcp_state(r.u8()).ok_or(SyncRecordError::Field("tcp state"))?;
        let fin = r.u8();
        if fin > 0b111 {
            return Err(SyncRecordError::Field("fin flags"));
        }
        let closed = match r.u8() {
            NONE8 => None,
            c => Some(
                *CloseReason::ALL
                    .get(usize::from(c))
                    .ok_or(SyncRecordError::Field("close reason"))?,
            ),
        };
        let policy = r.u32();
        let generation = r.u32();
        let (from_zone, to_zone, ingress, egress) = (r.u16(), r.u16(), r.u16(), r.u16());
        let screen_profile = Some(r.u16()).filter(|&p| p != NONE16);
        let log_close = match r.u8() {
            0 => false,
            1 => true,
            _ => return Err(SyncRecordError::Field("log-close flag")),
        };
        let application = r.u16();
        let (age_ns, idle_ns) = (r.u64(), r.u64());
        let packets = [r.u64(), r.u64()];
        let bytes = [r.u64(), r.u64()];
        let mut w = [0u8; Windows::BYTES];
        w.copy_from_slice(&b[r.at..r.at + Windows::BYTES]);
        Ok(SyncRecord {
            id,
            origin,
            key,
            tcp,
            fin: [fin & 1 != 0, fin & 2 != 0],
            last_fin: (fin >> 2) & 1,
            closed,
            meta: SessionMeta {
                policy,
                generation,
                from_zone,
                to_zone,
                ingress,
                egress,
                screen_profile,
                log_close,
                application,
            },
            age_ns,
            idle_ns,
            packets,
            bytes,
            windows: Windows::from_bytes(&w).ok_or(SyncRecordError::Field("tcp windows"))?,
        })
    }
}

/// What a session table records for a high-availability peer when sync
/// is on ([`crate::session::SessionTable::journal_changes`]): each
/// session created or changed in a way the peer must know (TCP state,
/// closed), and each removed, until the worker drains them after its
/// burst. Bounded and allocated once: what does not fit is counted in
/// `lost`, never waited for.
#[derive(Debug, Default)]
pub struct SyncJournal {
    pub(crate) changes: Vec<Change>,
    capacity: usize,
    /// Changes that did not fit.
    pub lost: u64,
    /// When the journal was last drained.
    pub(crate) last_drain_ns: u64,
}

/// One entry of a [`SyncJournal`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// The session in this slot (if it is still `id`) is new or changed:
    /// send its record.
    Changed { slot: u32, id: u64 },
    /// The session left the table (`synced`: its record had gone to the
    /// peer).
    Removed { id: u64, key: FlowKey, synced: bool },
}

impl SyncJournal {
    pub fn with_capacity(capacity: usize) -> SyncJournal {
        SyncJournal {
            changes: Vec::with_capacity(capacity),
            capacity,
            lost: 0,
            last_drain_ns: 0,
        }
    }

    #[inline]
    pub(crate) fn note(&mut self, c: Change) {
        if self.changes.len() < self.capacity {
            // Two changes of one session in a row send one record.
            if self.changes.last() != Some(&c) {
                self.changes.push(c);
            }
        } else {
            self.lost += 1;
        }
    }
}

/// What a drained journal hands the worker to send: a session (its
/// record is built only if it is sent: [`SyncChange::record`]), or a
/// removal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncChange<'a> {
    /// The session, and the time to take its ages at.
    Update(&'a crate::session::Session, u64),
    Removed {
        id: u64,
        key: FlowKey,
    },
}

impl SyncChange<'_> {
    /// The session's record, for an update.
    pub fn record(&self) -> Option<SyncRecord> {
        match self {
            SyncChange::Update(s, now_ns) => Some(s.sync_record(*now_ns)),
            SyncChange::Removed { .. } => None,
        }
    }
}

/// Reads little-endian fields in order; the caller has checked the length.
struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        out.copy_from_slice(&self.b[self.at..self.at + N]);
        self.at += N;
        out
    }
    fn u8(&mut self) -> u8 {
        self.take::<1>()[0]
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.take())
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take())
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take())
    }
    fn u128(&mut self) -> u128 {
        u128::from_le_bytes(self.take())
    }
    fn key(&mut self) -> FlowKey {
        FlowKey {
            src: Addr(self.u128()),
            dst: Addr(self.u128()),
            src_port: self.u16(),
            dst_port: self.u16(),
            protocol: self.u8(),
        }
    }
}

/// Bytes of a 5-tuple on the wire.
pub const KEY_LEN: usize = 37;

/// Appends a 5-tuple: addresses (16 bytes each), ports, protocol, little
/// endian.
pub fn encode_key(k: &FlowKey, out: &mut Vec<u8>) {
    put_key(k, out);
}

/// [`encode_key`] over the first [`KEY_LEN`] bytes of `out`.
pub fn encode_key_into(k: &FlowKey, out: &mut [u8; KEY_LEN]) {
    put_key(k, &mut SliceWriter { b: out, at: 0 });
}

fn put_key(k: &FlowKey, out: &mut impl Put) {
    out.put(&k.src.0.to_le_bytes());
    out.put(&k.dst.0.to_le_bytes());
    out.put(&k.src_port.to_le_bytes());
    out.put(&k.dst_port.to_le_bytes());
    out.put(&[k.protocol]);
}

/// Where encoded bytes go: a growing buffer, or a fixed one.
trait Put {
    fn put(&mut self, b: &[u8]);
}

impl Put for Vec<u8> {
    fn put(&mut self, b: &[u8]) {
        self.extend_from_slice(b);
    }
}

struct SliceWriter<'a> {
    b: &'a mut [u8],
    at: usize,
}

impl Put for SliceWriter<'_> {
    fn put(&mut self, b: &[u8]) {
        self.b[self.at..self.at + b.len()].copy_from_slice(b);
        self.at += b.len();
    }
}

/// The 5-tuple [`encode_key`] wrote at the start of `b`; `None` if `b` is
/// shorter than [`KEY_LEN`].
pub fn decode_key(b: &[u8]) -> Option<FlowKey> {
    let b = b.get(..KEY_LEN)?;
    Some(Reader { b, at: 0 }.key())
}

fn tcp_code(t: TcpState) -> u8 {
    TcpState::ALL.iter().position(|s| *s == t).unwrap_or(0) as u8
}

fn tcp_state(code: u8) -> Option<TcpState> {
    TcpState::ALL.get(usize::from(code)).copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::proto;

    fn record() -> SyncRecord {
        SyncRecord {
            id: (1 << 48) | 42,
            origin: 0x1234_5678_9abc_def0,
            key: FlowKey {
                src: Addr::from_ipv4([198, 51, 100, 7]),
                dst: Addr::from_ipv6(
                    "2001:db8::80"
                        .parse::<std::net::Ipv6Addr>()
                        .unwrap()
                        .octets(),
                ),
                src_port: 40000,
                dst_port: 80,
                protocol: proto::TCP,
            },
            tcp: TcpState::FinWait,
            fin: [true, false],
            last_fin: 0,
            closed: None,
            meta: SessionMeta {
                policy: 3,
                generation: 7,
                from_zone: 0,
                to_zone: 1,
                ingress: 0,
                egress: 1,
                screen_profile: Some(2),
                log_close: true,
                application: 5,
            },
            age_ns: 12_000_000_000,
            idle_ns: 1_500_000,
            packets: [10, 9],
            bytes: [1_000, 90_000],
            windows: Windows::DEFAULT,
        }
    }

    #[test]
    fn a_record_decodes_to_what_was_encoded() {
        let mut r = record();
        let mut bytes = Vec::new();
        r.encode(&mut bytes);
        assert_eq!(bytes.len(), SyncRecord::LEN);
        assert_eq!(SyncRecord::decode(&bytes), Ok(r));
        r.closed = Some(CloseReason::TcpRst);
        r.tcp = TcpState::Closed;
        r.meta.screen_profile = None;
        r.fin = [true, true];
        r.last_fin = 1;
        let mut bytes = Vec::new();
        r.encode(&mut bytes);
        assert_eq!(SyncRecord::decode(&bytes), Ok(r));
    }

    #[test]
    fn bad_bytes_name_the_field_and_never_panic() {
        let mut bytes = Vec::new();
        record().encode(&mut bytes);
        assert_eq!(
            SyncRecord::decode(&bytes[..10]),
            Err(SyncRecordError::Length(10))
        );
        let tcp_at = 8 + 8 + 37;
        let mut bad = bytes.clone();
        bad[tcp_at] = 7;
        assert_eq!(
            SyncRecord::decode(&bad),
            Err(SyncRecordError::Field("tcp state"))
        );
        let mut bad = bytes.clone();
        bad[tcp_at + 2] = CloseReason::COUNT as u8;
        assert_eq!(
            SyncRecord::decode(&bad),
            Err(SyncRecordError::Field("close reason"))
        );
        // Any bytes: a record or an error.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..2_000 {
            let junk: Vec<u8> = (0..SyncRecord::LEN)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let _ = SyncRecord::decode(&junk);
        }
    }
}
