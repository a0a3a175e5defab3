//! The sync link's messages, one per UDP datagram: a fixed header and, for
//! session messages, fixed-size records.
//!
//! ```text
//!  0..4   magic "RMPS"          16..20 seq (sequenced kinds; else 0)
//!  4      version (1)           20..24 a (Ack: up to; Nack: from;
//!  5      kind                          Heartbeat: last seq sent)
//!  6..8   sender's node id      24..28 b (Nack: to)
//!  8..16  sender's epoch        28..30 records in the payload
//!         (its boot id)         30..32 reserved (0)
//! ```
//!
//! Decoding takes any bytes and never panics: a datagram that is not a
//! message of this version is an error saying why, counted and dropped by
//! the caller, never installed.

use rampart_pipeline::flow::FlowKey;
use rampart_pipeline::session_sync::{
    decode_key, encode_key, SyncRecord, SyncRecordError, KEY_LEN,
};

pub const MAGIC: [u8; 4] = *b"RMPS";
pub const VERSION: u8 = 1;
pub const HEADER: usize = 32;

/// Records in one datagram at most: as many session records as fit a
/// 1500-byte MTU after the IPv6 and UDP headers (9 of 152 bytes).
pub const MAX_RECORDS: usize = (1500 - 40 - 8 - HEADER) / SyncRecord::LEN;

/// What a message carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// "I am here", with the sender's role, priority and last sequence
    /// number sent (a receiver that has not seen it asks for the rest).
    Heartbeat = 0,
    /// Session records to install (created, or changed in a way the peer
    /// needs). Sequenced.
    Update = 1,
    /// Sessions that ended (by flow and id). Sequenced.
    Close = 2,
    /// Everything up to `a` arrived: the sender may forget it.
    Ack = 3,
    /// `a..=b` did not arrive: send them again.
    Nack = 4,
    /// Send me your whole table (a node that joins or rejoins).
    BulkRequest = 5,
    /// A whole-table send begins (its pages are `Update`s), and ends.
    /// Sequenced.
    BulkStart = 6,
    BulkEnd = 7,
}

impl Kind {
    const ALL: [Kind; 8] = [
        Kind::Heartbeat,
        Kind::Update,
        Kind::Close,
        Kind::Ack,
        Kind::Nack,
        Kind::BulkRequest,
        Kind::BulkStart,
        Kind::BulkEnd,
    ];

    /// Carries a sequence number: delivered reliably (FT-FW).
    pub const fn sequenced(self) -> bool {
        matches!(
            self,
            Kind::Update | Kind::Close | Kind::BulkStart | Kind::BulkEnd
        )
    }
}

/// A message's header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub kind: Kind,
    pub node: u16,
    pub epoch: u64,
    pub seq: u32,
    pub a: u32,
    pub b: u32,
    pub records: u16,
}

/// A heartbeat's payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Heartbeat {
    /// 0 standby, 1 active.
    pub active: bool,
    /// The sender is stopping: its peer need not wait out the hold time,
    /// and must not leave its sessions to it.
    pub leaving: bool,
    pub priority: u8,
    /// The config generation the sender runs.
    pub generation: u32,
    /// Sessions in the sender's tables.
    pub sessions: u64,
}

impl Heartbeat {
    pub const LEN: usize = 16;
}

/// A session that ended: its flow and its id on the node that created it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Closed {
    pub id: u64,
    pub key: FlowKey,
}

impl Closed {
    pub const LEN: usize = 8 + KEY_LEN;
}

/// Why a datagram is not a message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("{0} bytes: shorter than a header")]
    Short(usize),
    #[error("not a Rampart sync message (bad magic)")]
    Magic,
    #[error("sync protocol version {0}, this node speaks {VERSION}")]
    Version(u8),
    #[error("unknown message kind {0}")]
    Kind(u8),
    #[error("reserved header bytes are not zero")]
    Reserved,
    #[error("{kind:?} with {records} records needs {needed} bytes, found {found}")]
    Length {
        kind: Kind,
        records: u16,
        needed: usize,
        found: usize,
    },
    #[error(transparent)]
    Record(#[from] SyncRecordError),
}

impl Header {
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.push(self.kind as u8);
        out.extend_from_slice(&self.node.to_le_bytes());
        out.extend_from_slice(&self.epoch.to_le_bytes());
        for v in [self.seq, self.a, self.b] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&self.records.to_le_bytes());
        out.extend_from_slice(&[0, 0]);
    }

    /// The header of `d` and its payload, the payload's length checked
    /// against the kind and the record count.
    pub fn decode(d: &[u8]) -> Result<(Header, &[u8]), WireError> {
        if d.len() < HEADER {
            return Err(WireError::Short(d.len()));
        }
        if d[..4] != MAGIC {
            return Err(WireError::Magic);
        }
        if d[4] != VERSION {
            return Err(WireError::Version(d[4]));
        }
        let kind = *Kind::ALL
            .get(usize::from(d[5]))
            .ok_or(WireError::Kind(d[5]))?;
        if d[30] != 0 || d[31] != 0 {
            return Err(WireError::Reserved);
        }
        let u32_at = |i: usize| u32::from_le_bytes([d[i], d[i + 1], d[i + 2], d[i + 3]]);
        let mut epoch = [0u8; 8];
        epoch.copy_from_slice(&d[8..16]);
        let h = Header {
            kind,
            node: u16::from_le_bytes([d[6], d[7]]),
            epoch: u64::from_le_bytes(epoch),
            seq: u32_at(16),
            a: u32_at(20),
            b: u32_at(24),
            records: u16::from_le_bytes([d[28], d[29]]),
        };
        let payload = &d[HEADER..];
        let needed = match kind {
            Kind::Heartbeat => Heartbeat::LEN,
            Kind::Update => usize::from(h.records) * SyncRecord::LEN,
            Kind::Close => usize::from(h.records) * Closed::LEN,
            _ => 0,
        };
        let too_many = usize::from(h.records) > MAX_RECORDS;
        if payload.len() != needed || too_many {
            return Err(WireError::Length {
                kind,
                records: h.records,
                needed,
                found: payload.len(),
            });
        }
        Ok((h, payload))
    }
}

impl Heartbeat {
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(u8::from(self.active) | u8::from(self.leaving) << 1);
        out.push(self.priority);
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&self.generation.to_le_bytes());
        out.extend_from_slice(&self.sessions.to_le_bytes());
    }

    pub fn decode(p: &[u8]) -> Heartbeat {
        let mut sessions = [0u8; 8];
        sessions.copy_from_slice(&p[8..16]);
        Heartbeat {
            active: p[0] & 1 != 0,
            leaving: p[0] & 2 != 0,
            priority: p[1],
            generation: u32::from_le_bytes([p[4], p[5], p[6], p[7]]),
            sessions: u64::from_le_bytes(sessions),
        }
    }
}

impl Closed {
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.id.to_le_bytes());
        encode_key(&self.key, out);
    }

    /// `p` is [`Closed::LEN`] bytes (the header's length check).
    pub fn decode(p: &[u8]) -> Closed {
        let mut id = [0u8; 8];
        id.copy_from_slice(&p[..8]);
        Closed {
            id: u64::from_le_bytes(id),
            key: decode_key(&p[8..]).unwrap_or_default(),
        }
    }
}

/// A decoded message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    Heartbeat(Header, Heartbeat),
    Update(Header, Vec<SyncRecord>),
    Close(Header, Vec<Closed>),
    /// Ack, Nack, BulkRequest, BulkStart, BulkEnd: the header says it all.
    Control(Header),
}

impl Message {
    pub fn header(&self) -> &Header {
        match self {
            Message::Heartbeat(h, _)
            | Message::Update(h, _)
            | Message::Close(h, _)
            | Message::Control(h) => h,
        }
    }

    /// Decodes one datagram.
    pub fn decode(d: &[u8]) -> Result<Message, WireError> {
        let (h, p) = Header::decode(d)?;
        Ok(match h.kind {
            // Flags and bytes a node never writes.
            Kind::Heartbeat if p[0] & !0b11 != 0 || p[2..4] != [0, 0] => {
                return Err(WireError::Reserved)
            }
            Kind::Heartbeat => Message::Heartbeat(h, Heartbeat::decode(p)),
            Kind::Update => Message::Update(
                h,
                p.chunks_exact(SyncRecord::LEN)
                    .map(SyncRecord::decode)
                    .collect::<Result<_, _>>()?,
            ),
            Kind::Close => {
                Message::Close(h, p.chunks_exact(Closed::LEN).map(Closed::decode).collect())
            }
            _ => Message::Control(h),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_pipeline::flow::Addr;
    use rampart_pipeline::session::{SessionMeta, TcpState};
    use rampart_pipeline::tcp_window::Windows;

    fn header(kind: Kind, records: u16) -> Header {
        Header {
            kind,
            node: 2,
            epoch: 0xfeed_f00d,
            seq: 41,
            a: 7,
            b: 9,
            records,
        }
    }

    fn record(id: u64) -> SyncRecord {
        SyncRecord {
            id,
            key: FlowKey {
                src: Addr::from_ipv4([198, 51, 100, 7]),
                dst: Addr::from_ipv4([192, 0, 2, 80]),
                src_port: 40000 + id as u16,
                dst_port: 80,
                protocol: 6,
            },
            tcp: TcpState::Established,
            fin: [false; 2],
            last_fin: 0,
            closed: None,
            meta: SessionMeta::default(),
            age_ns: 5,
            idle_ns: 1,
            packets: [3, 2],
            bytes: [300, 200],
            windows: Windows::DEFAULT,
            origin: 0,
        }
    }

    #[test]
    fn every_kind_decodes_to_what_was_encoded() {
        let mut d = Vec::new();
        header(Kind::Heartbeat, 0).encode(&mut d);
        let hb = Heartbeat {
            leaving: false,
            active: true,
            priority: 200,
            generation: 3,
            sessions: 123_456,
        };
        hb.encode(&mut d);
        assert_eq!(
            Message::decode(&d),
            Ok(Message::Heartbeat(header(Kind::Heartbeat, 0), hb))
        );

        let records: Vec<SyncRecord> = (1..=3).map(record).collect();
        let mut d = Vec::new();
        header(Kind::Update, 3).encode(&mut d);
        records.iter().for_each(|r| r.encode(&mut d));
        assert_eq!(
            Message::decode(&d),
            Ok(Message::Update(header(Kind::Update, 3), records.clone()))
        );

        let closed: Vec<Closed> = records
            .iter()
            .map(|r| Closed {
                id: r.id,
                key: r.key,
            })
            .collect();
        let mut d = Vec::new();
        header(Kind::Close, 3).encode(&mut d);
        closed.iter().for_each(|c| c.encode(&mut d));
        assert_eq!(
            Message::decode(&d),
            Ok(Message::Close(header(Kind::Close, 3), closed))
        );

        for k in [
            Kind::Ack,
            Kind::Nack,
            Kind::BulkRequest,
            Kind::BulkStart,
            Kind::BulkEnd,
        ] {
            let mut d = Vec::new();
            header(k, 0).encode(&mut d);
            assert_eq!(Message::decode(&d), Ok(Message::Control(header(k, 0))));
        }
    }

    #[test]
    fn what_is_not_a_message_of_this_version_says_why() {
        let mut d = Vec::new();
        header(Kind::Ack, 0).encode(&mut d);
        assert_eq!(Message::decode(&d[..10]), Err(WireError::Short(10)));
        let mut other = d.clone();
        other[4] = 2;
        assert_eq!(Message::decode(&other), Err(WireError::Version(2)));
        let mut junk = d.clone();
        junk[0] = b'X';
        assert_eq!(Message::decode(&junk), Err(WireError::Magic));
        let mut kind = d.clone();
        kind[5] = 99;
        assert_eq!(Message::decode(&kind), Err(WireError::Kind(99)));
        let mut reserved = d.clone();
        reserved[31] = 1;
        assert_eq!(Message::decode(&reserved), Err(WireError::Reserved));
        let mut d = Vec::new();
        header(Kind::Update, 2).encode(&mut d);
        record(1).encode(&mut d);
        assert!(matches!(
            Message::decode(&d),
            Err(WireError::Length { records: 2, .. })
        ));
        let mut d = Vec::new();
        header(Kind::Update, 1).encode(&mut d);
        let mut r = Vec::new();
        record(1).encode(&mut r);
        r[8 + 8 + 37] = 42; // no such TCP state
        d.extend_from_slice(&r);
        assert!(matches!(Message::decode(&d), Err(WireError::Record(_))));
    }

    proptest::proptest! {
        #[test]
        fn any_datagram_is_a_message_or_an_error(d in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..1500)) {
            let _ = Message::decode(&d);
        }

        #[test]
        fn any_datagram_with_a_valid_header_is_a_message_or_an_error(kind in 0u8..8, records in 0u16..10, body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..1500)) {
            let mut d = Vec::new();
            header(Kind::Heartbeat, records).encode(&mut d);
            d[5] = kind;
            d.extend_from_slice(&body);
            let _ = Message::decode(&d);
        }
    }
}
