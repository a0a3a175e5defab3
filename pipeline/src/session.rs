//! The session table of one worker: both directions of a flow find one
//! entry, TCP state is tracked from the flags, idle sessions age out.
//! Sans-IO: time is the `now_ns` argument.
//!
//! Storage is allocated once: a slab of `capacity` sessions and an
//! open-addressing index (linear probing, twice the capacity, backward-shift
//! deletion so no tombstones accumulate). A full table refuses new sessions
//! ([`TableFull`]) and never grows. Keys are canonical (the smaller endpoint
//! first), so a packet's direction costs one hash lookup, not two.

use crate::flow::{proto, FlowKey};
use crate::wire::TcpFlags;

/// Which way a packet travels relative to the session's first packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    ClientToServer = 0,
    ServerToClient = 1,
}

/// Why a session ended (names as events and Junos logs show them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    TcpFin,
    TcpRst,
    IdleTimeout,
    Shutdown,
    PolicyReload,
}

impl CloseReason {
    pub const fn name(self) -> &'static str {
        match self {
            CloseReason::TcpFin => "tcp-fin",
            CloseReason::TcpRst => "tcp-rst",
            CloseReason::IdleTimeout => "idle-timeout",
            CloseReason::Shutdown => "shutdown",
            CloseReason::PolicyReload => "policy-reload",
        }
    }
}

/// TCP connection state as a firewall sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpState {
    /// Not TCP.
    None,
    SynSent,
    SynAckSeen,
    Established,
    /// One side sent FIN.
    FinWait,
    /// Both sides sent FIN, or a RST: the session lingers for the closing
    /// timeout so late segments do not hit policy again.
    Closing,
}

/// Idle timeouts, nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    pub tcp_initial_ns: u64,
    pub tcp_established_ns: u64,
    pub tcp_closing_ns: u64,
    pub udp_ns: u64,
    pub icmp_ns: u64,
    pub other_ns: u64,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        const S: u64 = 1_000_000_000;
        Timeouts {
            tcp_initial_ns: 20 * S,
            tcp_established_ns: 1800 * S,
            tcp_closing_ns: 2 * S,
            udp_ns: 60 * S,
            icmp_ns: 4 * S,
            other_ns: 60 * S,
        }
    }
}

/// What the pipeline records about a session when it creates it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SessionMeta {
    pub policy: u32,
    pub from_zone: u16,
    pub to_zone: u16,
    pub ingress: u16,
    pub egress: u16,
    /// The screen profile that counted it for `limit-session`.
    pub screen_profile: Option<u16>,
    /// Emit a close event (`log session-close`).
    pub log_close: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Session {
    pub id: u64,
    /// The initiator's 5-tuple.
    pub key: FlowKey,
    pub meta: SessionMeta,
    pub created_ns: u64,
    pub last_seen_ns: u64,
    /// `[client-to-server, server-to-client]`.
    pub packets: [u64; 2],
    pub bytes: [u64; 2],
    pub tcp: TcpState,
    /// FIN seen from `[client, server]`.
    fin: [bool; 2],
    /// Set when the session closed by FIN/RST (reported once).
    closed: Option<CloseReason>,
    /// The key is stored canonical; true when the initiator is the
    /// canonical "low" side.
    client_is_low: bool,
}

/// A session's slot in the table (valid until it is removed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionHandle(u32);

/// The table refused a new session because it is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableFull;

/// What an update changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Update {
    /// The session just closed (RST, or the last FIN acknowledged).
    pub closed: Option<CloseReason>,
}

const EMPTY: u32 = u32::MAX;

pub struct SessionTable {
    slab: Vec<Session>,
    used: Vec<bool>,
    free: Vec<u32>,
    /// Open-addressing index: slab indexes, `EMPTY` when vacant.
    index: Vec<u32>,
    /// Canonical key per slab slot (what the index compares).
    keys: Vec<FlowKey>,
    mask: usize,
    len: usize,
    next_id: u64,
    worker: u16,
    timeouts: Timeouts,
    sweep: usize,
    /// Insertions refused because the table was full.
    pub refused: u64,
}

/// Canonical form: the smaller (address, port) endpoint first.
#[inline]
fn canonical(key: &FlowKey) -> (FlowKey, bool) {
    if (key.src, key.src_port) <= (key.dst, key.dst_port) {
        (*key, true)
    } else {
        (key.reversed(), false)
    }
}

#[inline]
fn hash(k: &FlowKey) -> u64 {
    let mut h = (k.src.0 as u64) ^ ((k.src.0 >> 64) as u64).rotate_left(13);
    h = h.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    h ^= (k.dst.0 as u64) ^ ((k.dst.0 >> 64) as u64).rotate_left(29);
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= ((k.src_port as u64) << 24) | ((k.dst_port as u64) << 8) | k.protocol as u64;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

impl SessionTable {
    pub fn new(capacity: usize, worker: u16, timeouts: Timeouts) -> SessionTable {
        let capacity = capacity.max(1);
        let slots = (capacity * 2).next_power_of_two();
        let blank = Session {
            id: 0,
            key: FlowKey::default(),
            meta: SessionMeta::default(),
            created_ns: 0,
            last_seen_ns: 0,
            packets: [0; 2],
            bytes: [0; 2],
            tcp: TcpState::None,
            fin: [false; 2],
            closed: None,
            client_is_low: true,
        };
        SessionTable {
            slab: vec![blank; capacity],
            used: vec![false; capacity],
            free: (0..capacity as u32).rev().collect(),
            index: vec![EMPTY; slots],
            keys: vec![FlowKey::default(); capacity],
            mask: slots - 1,
            len: 0,
            next_id: 1,
            worker,
            timeouts,
            sweep: 0,
            refused: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn capacity(&self) -> usize {
        self.slab.len()
    }

    /// Finds the session of a packet in either direction.
    #[inline]
    pub fn lookup(&self, key: &FlowKey) -> Option<(SessionHandle, Direction)> {
        let (ck, low) = canonical(key);
        let mut i = hash(&ck) as usize & self.mask;
        loop {
            let s = self.index[i];
            if s == EMPTY {
                return None;
            }
            if self.keys[s as usize] == ck {
                let dir = if low == self.slab[s as usize].client_is_low {
                    Direction::ClientToServer
                } else {
                    Direction::ServerToClient
                };
                return Some((SessionHandle(s), dir));
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Creates a session for a flow's first packet (`key` as it travels).
    pub fn insert(
        &mut self,
        key: FlowKey,
        meta: SessionMeta,
        now_ns: u64,
    ) -> Result<SessionHandle, TableFull> {
        let Some(slot) = self.free.pop() else {
            self.refused += 1;
            return Err(TableFull);
        };
        let (ck, low) = canonical(&key);
        let tcp = if key.protocol == proto::TCP {
            TcpState::SynSent
        } else {
            TcpState::None
        };
        let id = ((self.worker as u64) << 48) | (self.next_id & ((1 << 48) - 1));
        self.next_id += 1;
        self.slab[slot as usize] = Session {
            id,
            key,
            meta,
            created_ns: now_ns,
            last_seen_ns: now_ns,
            packets: [0; 2],
            bytes: [0; 2],
            tcp,
            fin: [false; 2],
            closed: None,
            client_is_low: low,
        };
        self.keys[slot as usize] = ck;
        self.used[slot as usize] = true;
        let mut i = hash(&ck) as usize & self.mask;
        while self.index[i] != EMPTY {
            i = (i + 1) & self.mask;
        }
        self.index[i] = slot;
        self.len += 1;
        Ok(SessionHandle(slot))
    }

    pub fn get(&self, h: SessionHandle) -> Session {
        self.slab[h.0 as usize]
    }

    pub fn get_policy(&self, h: SessionHandle) -> u32 {
        self.slab[h.0 as usize].meta.policy
    }

    /// Counts a packet and advances the TCP state.
    #[inline]
    pub fn update(
        &mut self,
        h: SessionHandle,
        dir: Direction,
        bytes: u32,
        flags: TcpFlags,
        now_ns: u64,
    ) -> Update {
        let s = &mut self.slab[h.0 as usize];
        let d = dir as usize;
        s.packets[d] += 1;
        s.bytes[d] += bytes as u64;
        s.last_seen_ns = now_ns;
        if s.tcp == TcpState::None || s.closed.is_some() {
            return Update::default();
        }
        let has = |f: TcpFlags| flags.0 & f.0 != 0;
        if has(TcpFlags::RST) {
            s.tcp = TcpState::Closing;
            s.closed = Some(CloseReason::TcpRst);
            return Update { closed: s.closed };
        }
        match s.tcp {
            TcpState::SynSent
                if dir == Direction::ServerToClient && has(TcpFlags::SYN) && has(TcpFlags::ACK) =>
            {
                s.tcp = TcpState::SynAckSeen;
            }
            TcpState::SynAckSeen if dir == Direction::ClientToServer && has(TcpFlags::ACK) => {
                s.tcp = TcpState::Established;
            }
            _ => {}
        }
        if has(TcpFlags::FIN) {
            s.fin[d] = true;
            s.tcp = if s.fin[0] && s.fin[1] {
                TcpState::Closing
            } else {
                TcpState::FinWait
            };
        } else if s.fin[0] && s.fin[1] && has(TcpFlags::ACK) && s.tcp == TcpState::Closing {
            // The ACK of the last FIN: the connection is done.
            s.closed = Some(CloseReason::TcpFin);
            return Update { closed: s.closed };
        }
        Update::default()
    }

    fn idle_limit(&self, s: &Session) -> u64 {
        let t = &self.timeouts;
        match s.tcp {
            TcpState::None => match s.key.protocol {
                proto::UDP => t.udp_ns,
                proto::ICMP | proto::ICMPV6 => t.icmp_ns,
                _ => t.other_ns,
            },
            TcpState::SynSent | TcpState::SynAckSeen => t.tcp_initial_ns,
            TcpState::Established | TcpState::FinWait => t.tcp_established_ns,
            TcpState::Closing => t.tcp_closing_ns,
        }
    }

    /// Removes a session.
    pub fn remove(&mut self, h: SessionHandle) {
        let slot = h.0;
        if !self.used[slot as usize] {
            return;
        }
        let ck = self.keys[slot as usize];
        let mut i = hash(&ck) as usize & self.mask;
        while self.index[i] != slot {
            i = (i + 1) & self.mask;
        }
        // Backward-shift deletion keeps probe chains intact without tombstones.
        let mut hole = i;
        let mut j = (i + 1) & self.mask;
        while self.index[j] != EMPTY {
            let home = hash(&self.keys[self.index[j] as usize]) as usize & self.mask;
            let dist_j = j.wrapping_sub(home) & self.mask;
            let dist_hole = hole.wrapping_sub(home) & self.mask;
            if dist_hole <= dist_j {
                self.index[hole] = self.index[j];
                hole = j;
            }
            j = (j + 1) & self.mask;
        }
        self.index[hole] = EMPTY;
        self.used[slot as usize] = false;
        self.free.push(slot);
        self.len -= 1;
    }

    /// Ages out sessions idle past their timeout, visiting at most `max`
    /// slab slots per call (a sweep cursor spreads the work over calls).
    /// Sessions closed by FIN/RST leave once their closing time is over.
    pub fn expire(&mut self, now_ns: u64, max: usize, out: &mut impl FnMut(&Session, CloseReason)) {
        let n = self.slab.len();
        for _ in 0..max.min(n) {
            let i = self.sweep;
            self.sweep = (self.sweep + 1) % n;
            if !self.used[i] {
                continue;
            }
            let s = self.slab[i];
            if now_ns.saturating_sub(s.last_seen_ns) > self.idle_limit(&s) {
                if s.closed.is_none() {
                    out(&s, CloseReason::IdleTimeout);
                }
                self.remove(SessionHandle(i as u32));
            }
        }
    }

    /// Removes every session, reporting each still open.
    pub fn drain_all(&mut self, out: &mut impl FnMut(&Session)) {
        for i in 0..self.slab.len() {
            if self.used[i] {
                let s = self.slab[i];
                if s.closed.is_none() {
                    out(&s);
                }
                self.remove(SessionHandle(i as u32));
            }
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Session> {
        self.slab
            .iter()
            .zip(&self.used)
            .filter(|(_, u)| **u)
            .map(|(s, _)| s)
    }

    /// Bytes of preallocated memory.
    pub fn memory_bytes(&self) -> usize {
        self.slab.len() * (std::mem::size_of::<Session>() + std::mem::size_of::<FlowKey>() + 5)
            + self.index.len() * 4
    }
}
