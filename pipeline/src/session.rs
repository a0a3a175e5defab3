//! The session table of one worker: both directions of a flow find one
//! entry, TCP state is tracked from the flags, idle sessions age out.
//! Sans-IO: time is the `now_ns` argument, nothing reads a clock.
//!
//! # Storage
//!
//! Everything is allocated once, in [`SessionTable::new`]: a slab of
//! `capacity` sessions, a free list, and an open-addressing index (linear
//! probing over at least twice `capacity` slots, so the load factor stays at
//! or below 1/2; backward-shift deletion, so no tombstones accumulate). An
//! index slot holds 32 bits of the key's hash next to the slab slot, so a
//! probe compares a key only when the hashes agree. A full table refuses a
//! new session with [`TableFull`] (counted in [`SessionTable::refused`]) and
//! never grows. `lookup`, `update`, `insert`, `remove` and `expire` never
//! allocate.
//!
//! # Directions
//!
//! The index is keyed by the canonical form of the 5-tuple (the smaller
//! `(address, port)` endpoint first), so a packet in either direction costs
//! one hash lookup; the entry remembers whether the initiator (the client)
//! was the smaller endpoint, which tells a packet's [`Direction`].
//!
//! # TCP
//!
//! `SynSent` (the client's SYN created the session) -> `SynAckSeen` (SYN+ACK
//! from the server) -> `Established` (the client's ACK) -> `FinWait` (one
//! side sent FIN) -> `Closing` (both sides sent FIN) -> `Closed` (the ACK of
//! the last FIN, reason `tcp-fin`). A RST in any state goes to `Closed`
//! (reason `tcp-rst`). A session created by a packet other than a SYN
//! (mid-stream pickup, when the SYN check is off) starts `Established`.
//! [`SessionTable::update`] reports the close once; the entry then lingers
//! for the closing timeout (each late packet restarts it), so stray
//! segments keep matching the session instead of hitting policy again, and
//! aging removes it without a second report. Sequence numbers and windows
//! are checked when the caller passes them (see [`crate::tcp_window`]): a
//! segment outside the window changes nothing and is reported for a drop,
//! and only a RST at the exact expected sequence number closes.
//!
//! # Aging
//!
//! A session is idle-expired once `now_ns - last_seen_ns` reaches the
//! timeout of its state ([`Timeouts`]). [`SessionTable::expire`] advances a
//! sweep cursor over at most `max` slab slots per call, so the worker spends
//! bounded time per burst cycle and a full sweep takes `capacity / max`
//! calls.

use crate::flow::{proto, FlowKey};
use crate::session_sync::{Change, SyncChange, SyncJournal, SyncRecord};
use crate::tcp_window::{Check, Segment, Windows};
use crate::wire::TcpFlags;

/// Which way a packet travels relative to the session's first packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    ClientToServer = 0,
    ServerToClient = 1,
}

impl Direction {
    pub const fn reverse(self) -> Direction {
        match self {
            Direction::ClientToServer => Direction::ServerToClient,
            Direction::ServerToClient => Direction::ClientToServer,
        }
    }
}

/// Why a session ended (names as events and Junos logs show them).
pub use rampart_vocab::CloseReason;

/// TCP connection state as a firewall sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpState {
    /// Not TCP (UDP, ICMP, others): stateless, idle timeout only.
    None,
    SynSent,
    SynAckSeen,
    Established,
    /// One side sent FIN.
    FinWait,
    /// Both sides sent FIN; waiting for the ACK of the last one.
    Closing,
    /// Closed by RST or by the ACK of the last FIN: the entry lingers for
    /// the closing timeout to absorb late segments.
    Closed,
}

impl TcpState {
    /// Every state, in the order a session record carries it.
    pub const ALL: [TcpState; 7] = [
        TcpState::None,
        TcpState::SynSent,
        TcpState::SynAckSeen,
        TcpState::Established,
        TcpState::FinWait,
        TcpState::Closing,
        TcpState::Closed,
    ];

    /// As `rampart sessions` names it.
    pub const fn name(self) -> &'static str {
        match self {
            TcpState::None => "stateless",
            TcpState::SynSent => "syn-sent",
            TcpState::SynAckSeen => "syn-ack-seen",
            TcpState::Established => "established",
            TcpState::FinWait => "fin-wait",
            TcpState::Closing => "closing",
            TcpState::Closed => "closed",
        }
    }
}

/// Idle timeouts, nanoseconds.
///
/// Defaults follow Junos SRX: TCP 1800 s established, 20 s while the
/// handshake is incomplete, 2 s once both FINs or a RST were seen; UDP 60 s;
/// ICMP 4 s (an echo exchange is over in milliseconds, and SRX ages ICMP
/// sessions within seconds rather than the UDP minute; this matches the
/// `[flow]` config default); other protocols 60 s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    pub tcp_initial_ns: u64,
    pub tcp_established_ns: u64,
    pub tcp_closing_ns: u64,
    pub udp_ns: u64,
    pub icmp_ns: u64,
    pub other_ns: u64,
}

const SECOND: u64 = 1_000_000_000;

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            tcp_initial_ns: 20 * SECOND,
            tcp_established_ns: 1800 * SECOND,
            tcp_closing_ns: 2 * SECOND,
            udp_ns: 60 * SECOND,
            icmp_ns: 4 * SECOND,
            other_ns: 60 * SECOND,
        }
    }
}

impl Timeouts {
    /// The idle timeout of a session in its current state.
    pub fn for_session(&self, s: &Session) -> u64 {
        match s.tcp {
            TcpState::None => match s.canon.protocol {
                proto::UDP => self.udp_ns,
                proto::ICMP | proto::ICMPV6 => self.icmp_ns,
                _ => self.other_ns,
            },
            TcpState::SynSent | TcpState::SynAckSeen => self.tcp_initial_ns,
            TcpState::Established | TcpState::FinWait => self.tcp_established_ns,
            TcpState::Closing | TcpState::Closed => self.tcp_closing_ns,
        }
    }
}

/// What the pipeline records about a session when it creates it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SessionMeta {
    /// The policy that permitted it, as an id of `generation` (the
    /// default policy is the id after the last policy, as in events).
    pub policy: u32,
    /// The config generation the session was created in: `policy`, the
    /// zones and the interfaces are ids of that generation, so its events
    /// keep naming them as they were then, across reloads.
    pub generation: u32,
    pub from_zone: u16,
    pub to_zone: u16,
    pub ingress: u16,
    pub egress: u16,
    /// The screen profile that counted it for `limit-session`.
    pub screen_profile: Option<u16>,
    /// Emit a close event (`log session-close`).
    pub log_close: bool,
    /// The config application the policy matched, for the service name of
    /// its events (`u16::MAX`: none).
    pub application: u16,
}

/// One session. Laid out in three cache lines: the first holds all a
/// lookup and the TCP tracking touch, the second the counters, the third
/// what only events read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C, align(64))]
pub struct Session {
    /// The canonical key the index compares (see the module doc).
    canon: FlowKey,
    pub last_seen_ns: u64,
    pub tcp: TcpState,
    /// FIN seen from `[client, server]`.
    fin: [bool; 2],
    /// The direction of the FIN that completed `fin`.
    last_fin: Direction,
    /// Set when the session closed by FIN/RST (reported once).
    closed: Option<CloseReason>,
    /// The initiator is the canonical key's source.
    client_is_low: bool,
    /// Indexed by [`Direction`]: `[client-to-server, server-to-client]`.
    pub packets: [u64; 2],
    pub bytes: [u64; 2],
    /// Unique across workers: the worker id in the top 16 bits, a
    /// per-table counter (from 1) below.
    pub id: u64,
    pub meta: SessionMeta,
    pub created_ns: u64,
    /// Sequence and window tracking (TCP with sequence checking).
    windows: Windows,
    /// The peer's bulk sync that installed or refreshed it last (see
    /// [`SessionTable::begin_bulk`]).
    sync_mark: u16,
    /// Its record went to the peer (so its removal must too).
    synced: bool,
    /// The boot id of the run that created it (this one's, or a
    /// high-availability peer's): with `id`, its identity across the pair.
    pub origin: u64,
}

impl Session {
    const BLANK: Session = Session {
        canon: Session::BLANK_KEY,
        last_seen_ns: 0,
        tcp: TcpState::None,
        fin: [false; 2],
        last_fin: Direction::ClientToServer,
        closed: None,
        client_is_low: true,
        packets: [0; 2],
        bytes: [0; 2],
        id: 0,
        meta: SessionMeta {
            policy: 0,
            generation: 0,
            from_zone: 0,
            to_zone: 0,
            ingress: 0,
            egress: 0,
            screen_profile: None,
            log_close: false,
            application: u16::MAX,
        },
        created_ns: 0,
        windows: Windows::DEFAULT,
        sync_mark: 0,
        synced: false,
        origin: 0,
    };

    const BLANK_KEY: FlowKey = FlowKey {
        src: crate::flow::Addr(0),
        dst: crate::flow::Addr(0),
        src_port: 0,
        dst_port: 0,
        protocol: 0,
    };

    /// Why the session closed, if a RST or the FIN exchange closed it
    /// (it then lingers until the closing timeout).
    pub const fn closed(&self) -> Option<CloseReason> {
        self.closed
    }

    /// The initiator's 5-tuple.
    #[inline]
    pub fn key(&self) -> FlowKey {
        if self.client_is_low {
            self.canon
        } else {
            self.canon.reversed()
        }
    }

    /// The session as it travels to a high-availability peer, at `now_ns`
    /// on this node's clock.
    pub fn sync_record(&self, now_ns: u64) -> SyncRecord {
        SyncRecord {
            id: self.id,
            origin: self.origin,
            key: self.key(),
            tcp: self.tcp,
            fin: self.fin,
            last_fin: self.last_fin as u8,
            closed: self.closed,
            meta: self.meta,
            age_ns: now_ns.saturating_sub(self.created_ns),
            idle_ns: now_ns.saturating_sub(self.last_seen_ns),
            packets: self.packets,
            bytes: self.bytes,
            windows: self.windows,
        }
    }

    /// The 5-tuple of packets in direction `dir`.
    pub fn key_for(&self, dir: Direction) -> FlowKey {
        match dir {
            Direction::ClientToServer => self.key(),
            Direction::ServerToClient => self.key().reversed(),
        }
    }
}

/// A session's slot in the table. Valid until the session is removed
/// (by `remove`, `expire` or `close_all`); after that it may name a newer
/// session, so callers do not keep handles across those calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SessionHandle(u32);

impl SessionHandle {
    /// The slab slot (stable for the session's lifetime).
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// Where a walk over a session table stands: the next slab slot to
/// visit (see [`SessionTable::walk`]). `WalkCursor::START` begins one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct WalkCursor(pub u32);

impl WalkCursor {
    pub const START: WalkCursor = WalkCursor(0);
}

/// One step of a walk: where to go on (`None`: the walk is over) and how
/// many sessions it visited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalkStep {
    pub next: Option<WalkCursor>,
    pub visited: usize,
}

/// The table refused a new session because it is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("session table full")]
pub struct TableFull;

/// What an update changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Update {
    /// The session just closed (RST, or the ACK of the last FIN); reported
    /// once, on the packet that closed it.
    pub closed: Option<CloseReason>,
    /// The segment lies outside the session's window: nothing was counted
    /// or changed, the caller drops it.
    pub out_of_window: bool,
    /// A RST inside the window but not at the expected sequence number:
    /// forwarded (the endpoint challenges it, RFC 5961), the session stays.
    pub rst_unconfirmed: bool,
}

/// Vacant index slot.
const EMPTY: u64 = u64::MAX;

/// An index slot: the high 32 bits of the key's hash (which also give the
/// home slot) and the slab slot.
#[inline]
fn entry(h: u32, slot: u32) -> u64 {
    ((h as u64) << 32) | slot as u64
}

#[inline]
fn entry_hash(e: u64) -> u32 {
    (e >> 32) as u32
}

#[inline]
fn entry_slot(e: u64) -> u32 {
    e as u32
}

/// Canonical form: the smaller (address, port) endpoint first; `true` when
/// `key` already was.
#[inline]
fn canonical(key: &FlowKey) -> (FlowKey, bool) {
    if (key.src, key.src_port) <= (key.dst, key.dst_port) {
        (*key, true)
    } else {
        (key.reversed(), false)
    }
}

/// Multiply-xorshift over the key's words (FxHash-like, with a final
/// avalanche so the high bits, which pick the home slot, mix every field).
#[inline]
fn hash(k: &FlowKey) -> u32 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let words = [
        k.src.0 as u64,
        (k.src.0 >> 64) as u64,
        k.dst.0 as u64,
        (k.dst.0 >> 64) as u64,
        ((k.src_port as u64) << 32) | ((k.dst_port as u64) << 16) | k.protocol as u64,
    ];
    let mut h = 0u64;
    for w in words {
        h = (h.rotate_left(5) ^ w).wrapping_mul(K);
    }
    h ^= h >> 29;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 32;
    (h >> 32) as u32
}

/// A key's lookup computed ahead: its canonical form and hash.
#[derive(Clone, Copy, Debug, Default)]
pub struct Probe {
    canon: FlowKey,
    low: bool,
    hash: u32,
}

impl Probe {
    #[inline(always)]
    pub fn of(key: &FlowKey) -> Probe {
        let (canon, low) = canonical(key);
        Probe {
            canon,
            low,
            hash: hash(&canon),
        }
    }
}

pub struct SessionTable {
    slab: Vec<Session>,
    used: Vec<bool>,
    /// Vacant slab slots (preallocated to `capacity`, never grows).
    free: Vec<u32>,
    index: Vec<u64>,
    mask: usize,
    next_id: u64,
    worker: u16,
    timeouts: Timeouts,
    sweep: usize,
    /// The oldest creation generation among the sessions the running
    /// sweep has passed, and those inserted since it began (`u32::MAX`:
    /// none).
    sweep_oldest: u32,
    /// `sweep_oldest` of the last complete sweep, lowered by every insert
    /// since: at or below the generation of every session in the table.
    oldest: u32,
    /// Insertions refused because the table was full.
    pub refused: u64,
    /// Sessions not closed yet (the table also holds closed ones that
    /// linger for their closing timeout).
    open: usize,
    /// Insertions and removals so far (see [`SessionTable::changes`]).
    inserted: u64,
    removed: u64,
    /// The high-availability node id (top byte of session ids; 0 alone)
    /// and this run's boot id (every session's `origin`).
    node: u8,
    origin: u64,
    /// Changes a high-availability peer must hear of (sync on).
    pub journal: Option<SyncJournal>,
    /// Idle times count from no earlier than this: sessions synced while
    /// standby (not aged then) get a whole timeout after a takeover.
    idle_floor_ns: u64,
    /// The peer's bulk sync under way or last received: every session
    /// installed since carries it.
    bulk_mark: u16,
}

impl SessionTable {
    /// A table for at most `capacity` sessions (at least 1), of worker
    /// `worker` (the top 16 bits of every session id).
    pub fn new(capacity: usize, worker: u16, timeouts: Timeouts) -> SessionTable {
        let capacity = capacity.clamp(1, (u32::MAX / 4) as usize);
        let slots = (capacity * 2).next_power_of_two();
        SessionTable {
            slab: vec![Session::BLANK; capacity],
            used: vec![false; capacity],
            free: (0..capacity as u32).rev().collect(),
            index: vec![EMPTY; slots],
            mask: slots - 1,
            next_id: 1,
            worker,
            timeouts,
            sweep: 0,
            sweep_oldest: u32::MAX,
            oldest: u32::MAX,
            refused: 0,
            open: 0,
            inserted: 0,
            removed: 0,
            node: 0,
            origin: 0,
            journal: None,
            idle_floor_ns: 0,
            bulk_mark: 0,
        }
    }

    /// A peer's bulk sync begins: the sessions it installs from now on
    /// (and every update meanwhile) are marked as current, so that when
    /// it ends, [`SessionTable::sweep_stale`] can remove the rest.
    pub fn begin_bulk(&mut self) {
        self.bulk_mark = self.bulk_mark.wrapping_add(1);
    }

    /// Removes (without a report) the sessions the last bulk sync did not
    /// refresh: copies of sessions whose close this node missed. Visits
    /// at most `slots` slots from `from`, as [`SessionTable::walk`] does;
    /// says where to go on.
    pub fn sweep_stale(&mut self, from: WalkCursor, slots: usize) -> Option<WalkCursor> {
        let end = self.slab.len();
        let mut i = from.0 as usize;
        let stop = i.saturating_add(slots).min(end);
        while i < stop {
            if self.used[i] && self.slab[i].sync_mark != self.bulk_mark {
                self.remove(SessionHandle(i as u32));
            }
            i += 1;
        }
        (i < end).then_some(WalkCursor(i as u32))
    }

    /// Names the sessions this table creates: `node` (a high-availability
    /// pair's node id, 0 alone) in the top byte of their ids, and this
    /// run's boot id as their origin.
    pub fn identify(&mut self, node: u8, origin: u64) {
        self.node = node;
        self.origin = origin;
    }

    /// Records, from now on, the changes a high-availability peer must
    /// hear of, at most `capacity` between two drains
    /// ([`SessionTable::drain_journal`]).
    pub fn journal_changes(&mut self, capacity: usize) {
        self.journal = Some(SyncJournal::with_capacity(capacity));
    }

    /// Passes each change recorded since the last drain to `out`, which
    /// says whether it took it: a session's record as it is now, or a
    /// removal. As pfsync does with a state that dies before its insert
    /// was sent, what the peer never heard of is not mentioned: a session
    /// created since the last drain and already closed (its open and
    /// close were logged here) is not sent, and neither is the removal
    /// of a session that was never sent. One that left since is skipped
    /// (its removal follows).
    pub fn drain_journal(&mut self, now_ns: u64, mut out: impl FnMut(SyncChange<'_>) -> bool) {
        let Some(journal) = &mut self.journal else {
            return;
        };
        let since = std::mem::replace(&mut journal.last_drain_ns, now_ns);
        for c in journal.changes.drain(..) {
            match c {
                Change::Changed { slot, id } => {
                    let s = &mut self.slab[slot as usize];
                    let gone = !self.used[slot as usize] || s.id != id;
                    let unheard = s.closed.is_some() && !s.synced && s.created_ns >= since;
                    if !gone && !unheard && out(SyncChange::Update(s, now_ns)) {
                        s.synced = true;
                    }
                }
                Change::Removed { id, key, synced } => {
                    if synced {
                        out(SyncChange::Removed { id, key });
                    }
                }
            }
        }
    }

    /// Ages sessions from `now_ns` on as if each had just been seen, when
    /// it was seen earlier: after a takeover, the synced sessions (not
    /// aged while standby) get a whole timeout to show traffic here.
    pub fn resume_aging(&mut self, now_ns: u64) {
        self.idle_floor_ns = now_ns;
    }

    #[inline(always)]
    fn note(&mut self, c: Change) {
        if let Some(j) = &mut self.journal {
            j.note(c);
        }
    }

    pub fn len(&self) -> usize {
        self.slab.len() - self.free.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn capacity(&self) -> usize {
        self.slab.len()
    }

    /// Sessions still open: [`SessionTable::len`] less those closed by
    /// FIN, RST or an answered echo that linger until they age out (what
    /// `sessions_active` reports, as Junos counts active sessions).
    pub fn open(&self) -> usize {
        self.open
    }

    /// Insertions refused because the table was full.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    pub fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }

    /// New timeouts (a config reload). They apply to every session in the
    /// table, existing ones included, from the next `expire`: idle time is
    /// measured from `last_seen_ns` against the timeout in force, as Junos
    /// applies a changed inactivity timeout to the sessions it already
    /// holds. An operator who shortens a timeout wants idle flows gone
    /// (usually to reclaim table space) now, not after the old timeout; and
    /// one table-wide value costs nothing per session, where a timeout
    /// frozen at creation would cost 8 bytes in every slot.
    pub fn set_timeouts(&mut self, timeouts: Timeouts) {
        self.timeouts = timeouts;
    }

    #[inline]
    fn home(&self, h: u32) -> usize {
        h as usize & self.mask
    }

    /// Finds the session of a packet in either direction.
    #[inline]
    pub fn lookup(&self, key: &FlowKey) -> Option<(SessionHandle, Direction)> {
        self.lookup_probe(&Probe::of(key))
    }

    /// The index slot where `probe`'s lookup starts (a burst prefetches
    /// it for every packet before any lookup runs).
    #[inline(always)]
    pub fn probe_home(&self, probe: &Probe) -> *const u8 {
        (&self.index[self.home(probe.hash)] as *const u64).cast()
    }

    /// The session `probe` most likely finds: the first in its probe
    /// chain with the same hash, read from the index alone (a burst reads
    /// it once the index slot is in cache, and prefetches the session
    /// before it compares keys).
    #[inline(always)]
    pub fn candidate(&self, probe: &Probe) -> Option<SessionHandle> {
        let mut i = self.home(probe.hash);
        loop {
            let e = self.index[i];
            if e == EMPTY {
                return None;
            }
            if entry_hash(e) == probe.hash {
                return Some(SessionHandle(entry_slot(e)));
            }
            i = (i + 1) & self.mask;
        }
    }

    /// The cache lines of a session's slot (for prefetches ahead of its
    /// lookup and update).
    #[inline(always)]
    pub fn session_lines(&self, h: SessionHandle) -> [*const u8; 3] {
        let base: *const u8 = (&self.slab[h.0 as usize] as *const Session).cast();
        [base, base.wrapping_add(64), base.wrapping_add(128)]
    }

    /// [`SessionTable::lookup`] with the key's canonical form and hash
    /// computed ahead ([`Probe::of`]).
    #[inline]
    pub fn lookup_probe(&self, probe: &Probe) -> Option<(SessionHandle, Direction)> {
        let h = probe.hash;
        let mut i = self.home(h);
        loop {
            let e = self.index[i];
            if e == EMPTY {
                return None;
            }
            if entry_hash(e) == h {
                let slot = entry_slot(e);
                let s = &self.slab[slot as usize];
                if s.canon == probe.canon {
                    let dir = if probe.low == s.client_is_low {
                        Direction::ClientToServer
                    } else {
                        Direction::ServerToClient
                    };
                    return Some((SessionHandle(slot), dir));
                }
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Sessions inserted and removed so far. A lookup made earlier still
    /// holds while they are unchanged: a miss until an insert, a hit until
    /// a removal (a burst looks its packets up before it decides them).
    #[inline(always)]
    pub fn changes(&self) -> (u64, u64) {
        (self.inserted, self.removed)
    }

    /// Creates a session for a flow's first packet (`key` as it travels,
    /// so its source is the client). The caller has looked the key up and
    /// found nothing; the first packet is counted by a following `update`.
    pub fn insert(
        &mut self,
        key: FlowKey,
        meta: SessionMeta,
        now_ns: u64,
    ) -> Result<SessionHandle, TableFull> {
        debug_assert!(self.lookup(&key).is_none(), "session inserted twice");
        let Some(slot) = self.free.pop() else {
            self.refused += 1;
            return Err(TableFull);
        };
        let (ck, low) = canonical(&key);
        let id = self.next_id();
        self.sweep_oldest = self.sweep_oldest.min(meta.generation);
        self.oldest = self.oldest.min(meta.generation);
        self.slab[slot as usize] = Session {
            id,
            meta,
            created_ns: now_ns,
            last_seen_ns: now_ns,
            tcp: if key.protocol == proto::TCP {
                TcpState::SynSent
            } else {
                TcpState::None
            },
            canon: ck,
            client_is_low: low,
            origin: self.origin,
            ..Session::BLANK
        };
        self.used[slot as usize] = true;
        self.open += 1;
        self.inserted += 1;
        self.index_slot(&ck, slot);
        self.note(Change::Changed { slot, id });
        Ok(SessionHandle(slot))
    }

    /// Installs a session a high-availability peer synced (`now_ns` on
    /// this node's clock): the flow's session is replaced by it if there
    /// is one, so a later update of the same session overwrites the
    /// earlier; else it takes a free slot. The session keeps its id from
    /// the node that created it. A full table refuses it, as it refuses a
    /// new flow (counted in [`SessionTable::refused`]).
    pub fn install(&mut self, r: &SyncRecord, now_ns: u64) -> Result<SessionHandle, TableFull> {
        let (canon, low) = canonical(&r.key);
        let session = Session {
            canon,
            client_is_low: low,
            last_seen_ns: now_ns.saturating_sub(r.idle_ns),
            created_ns: now_ns.saturating_sub(r.age_ns),
            tcp: r.tcp,
            fin: r.fin,
            last_fin: if r.last_fin == 0 {
                Direction::ClientToServer
            } else {
                Direction::ServerToClient
            },
            closed: r.closed,
            packets: r.packets,
            bytes: r.bytes,
            id: r.id,
            meta: r.meta,
            windows: r.windows.resume(),
            sync_mark: self.bulk_mark,
            // The peer holds it: after a takeover its removal is news to
            // the peer.
            synced: true,
            origin: r.origin,
        };
        let slot = match self.lookup(&r.key) {
            Some((h, _)) => {
                let was_open = self.slab[h.index()].closed.is_none();
                self.open -= usize::from(was_open);
                h
            }
            None => {
                let Some(slot) = self.free.pop() else {
                    self.refused += 1;
                    return Err(TableFull);
                };
                self.used[slot as usize] = true;
                self.inserted += 1;
                self.index_slot(&canon, slot);
                SessionHandle(slot)
            }
        };
        self.open += usize::from(session.closed.is_none());
        self.sweep_oldest = self.sweep_oldest.min(r.meta.generation);
        self.oldest = self.oldest.min(r.meta.generation);
        self.slab[slot.index()] = session;
        Ok(slot)
    }

    /// Enters slab slot `slot` in the index under canonical key `canon`
    /// (the first vacant slot of its probe chain).
    fn index_slot(&mut self, canon: &FlowKey, slot: u32) {
        let h = hash(canon);
        let mut i = self.home(h);
        while self.index[i] != EMPTY {
            i = (i + 1) & self.mask;
        }
        self.index[i] = entry(h, slot);
    }

    /// A new id from this table's session id space: the node in the top
    /// byte, the worker in the next, a counter below (sessions, and denied packets that Junos
    /// numbers the same way).
    #[inline]
    pub fn next_id(&mut self) -> u64 {
        let id = (u64::from(self.node) << 56)
            | (u64::from(self.worker & 0xff) << 48)
            | (self.next_id & ((1 << 48) - 1));
        self.next_id += 1;
        id
    }

    /// A copy of a session.
    #[inline]
    pub fn get(&self, h: SessionHandle) -> Session {
        self.slab[h.0 as usize]
    }

    /// A session by reference.
    #[inline]
    pub fn session(&self, h: SessionHandle) -> &Session {
        &self.slab[h.0 as usize]
    }

    #[inline]
    pub fn get_policy(&self, h: SessionHandle) -> u32 {
        self.slab[h.0 as usize].meta.policy
    }

    /// Counts a packet of `bytes` in direction `dir`, refreshes the idle
    /// time and advances the TCP state from `seg` (ignored for non-TCP);
    /// a segment with sequence fields is first checked against the window
    /// (see [`Update`]).
    #[inline]
    pub fn update(
        &mut self,
        h: SessionHandle,
        dir: Direction,
        bytes: u32,
        seg: Segment,
        now_ns: u64,
    ) -> Update {
        if self.journal.is_none() {
            return self.track(h, dir, bytes, seg, now_ns);
        }
        let state = |s: &Session| (s.tcp, s.closed, s.fin);
        let before = state(&self.slab[h.0 as usize]);
        let u = self.track(h, dir, bytes, seg, now_ns);
        let after = &self.slab[h.0 as usize];
        if state(after) != before {
            self.note(Change::Changed {
                slot: h.0,
                id: after.id,
            });
        }
        u
    }

    /// [`SessionTable::update`] without the journal.
    #[inline(always)]
    fn track(
        &mut self,
        h: SessionHandle,
        dir: Direction,
        bytes: u32,
        seg: Segment,
        now_ns: u64,
    ) -> Update {
        let s = &mut self.slab[h.0 as usize];
        let d = dir as usize;
        let tracked = s.tcp != TcpState::None && s.closed.is_none();
        let check = if tracked {
            let handshake = matches!(s.tcp, TcpState::SynSent | TcpState::SynAckSeen);
            s.windows.track(d, &seg, handshake)
        } else {
            Check::Accept
        };
        if check == Check::OutOfWindow {
            return Update {
                out_of_window: true,
                ..Update::default()
            };
        }
        s.packets[d] += 1;
        s.bytes[d] += bytes as u64;
        s.last_seen_ns = s.last_seen_ns.max(now_ns);
        if !tracked {
            return Update::default();
        }
        let flags = seg.flags;
        let has = |f: TcpFlags| flags.0 & f.0 != 0;
        match check {
            Check::RstExact => {
                s.tcp = TcpState::Closed;
                s.closed = Some(CloseReason::TcpRst);
                self.open -= 1;
                return Update {
                    closed: s.closed,
                    ..Update::default()
                };
            }
            Check::RstUnconfirmed => {
                return Update {
                    rst_unconfirmed: true,
                    ..Update::default()
                };
            }
            Check::Accept | Check::OutOfWindow => {}
        }
        let syn = has(TcpFlags::SYN);
        let ack = has(TcpFlags::ACK);
        match s.tcp {
            TcpState::SynSent if s.packets == [1, 0] && !syn => {
                // Mid-stream pickup: the session did not start with a SYN.
                s.tcp = TcpState::Established;
            }
            TcpState::SynSent if dir == Direction::ServerToClient && syn && ack => {
                s.tcp = TcpState::SynAckSeen;
            }
            TcpState::SynAckSeen if dir == Direction::ClientToServer && ack && !syn => {
                s.tcp = TcpState::Established;
            }
            _ => {}
        }
        let handshake_done = !matches!(s.tcp, TcpState::SynSent | TcpState::SynAckSeen);
        if has(TcpFlags::FIN) {
            s.fin[d] = true;
            // A connection that never completed its handshake keeps the
            // initial timeout whatever flags follow (as conntrack and Junos
            // do): forged SYN then FIN pairs must not hold a slot for the
            // established timeout.
            if handshake_done {
                if s.fin == [true, true] {
                    if s.tcp != TcpState::Closing {
                        s.last_fin = dir;
                    }
                    s.tcp = TcpState::Closing;
                } else {
                    s.tcp = TcpState::FinWait;
                }
            }
        } else if s.tcp == TcpState::Closing && ack && dir != s.last_fin {
            // The ACK of the last FIN: the connection is done.
            s.tcp = TcpState::Closed;
            s.closed = Some(CloseReason::TcpFin);
            self.open -= 1;
            return Update {
                closed: s.closed,
                ..Update::default()
            };
        }
        Update::default()
    }

    /// Ends a session that is still open for `reason` (reported once, by
    /// the caller); the entry lingers like one a RST closed. `None` if it
    /// had already ended.
    pub fn end(&mut self, h: SessionHandle, reason: CloseReason) -> Option<CloseReason> {
        let s = &mut self.slab[h.0 as usize];
        if s.closed.is_some() {
            return None;
        }
        s.closed = Some(reason);
        self.open -= 1;
        let id = s.id;
        self.note(Change::Changed { slot: h.0, id });
        Some(reason)
    }

    /// Removes a session (no report). Removing a vacant slot does nothing.
    pub fn remove(&mut self, h: SessionHandle) {
        let slot = h.0;
        if !self.used.get(slot as usize).copied().unwrap_or(false) {
            return;
        }
        if self.slab[slot as usize].closed.is_none() {
            self.open -= 1;
        }
        if self.journal.is_some() {
            let s = &self.slab[slot as usize];
            let (id, key, synced) = (s.id, s.key(), s.synced);
            self.note(Change::Removed { id, key, synced });
        }
        let h = hash(&self.slab[slot as usize].canon);
        let mut i = self.home(h);
        while entry_slot(self.index[i]) != slot || self.index[i] == EMPTY {
            i = (i + 1) & self.mask;
        }
        // Backward-shift deletion keeps probe chains intact without tombstones.
        let mut hole = i;
        let mut j = (i + 1) & self.mask;
        while self.index[j] != EMPTY {
            let home = self.home(entry_hash(self.index[j]));
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
        self.removed += 1;
    }

    /// Ages out sessions idle for their timeout, visiting at most `max`
    /// slab slots per call (a sweep cursor spreads the work over calls), so
    /// `out` runs at most `max` times. `out` sees each session that was
    /// still open with [`CloseReason::IdleTimeout`]; sessions already closed
    /// by FIN/RST (reported by `update`) leave silently. The sweep also
    /// notes the generations of the sessions that stay (see
    /// [`SessionTable::oldest_generation`]).
    pub fn expire(&mut self, now_ns: u64, max: usize, out: &mut impl FnMut(&Session, CloseReason)) {
        let n = self.slab.len();
        for _ in 0..max.min(n) {
            let i = self.sweep;
            self.sweep = if i + 1 == n { 0 } else { i + 1 };
            if self.used[i] {
                let s = &self.slab[i];
                let seen = s.last_seen_ns.max(self.idle_floor_ns);
                if now_ns.saturating_sub(seen) >= self.timeouts.for_session(s) {
                    if s.closed.is_none() {
                        out(s, CloseReason::IdleTimeout);
                    }
                    self.remove(SessionHandle(i as u32));
                } else {
                    self.sweep_oldest = self.sweep_oldest.min(s.meta.generation);
                }
            }
            if self.sweep == 0 {
                self.oldest = std::mem::replace(&mut self.sweep_oldest, u32::MAX);
            }
        }
    }

    /// At or below the creation generation of every session in the table
    /// (`None`: none since the last complete sweep). Exact once a full
    /// aging sweep has passed since the oldest session left; until then it
    /// may name an older generation, never a newer one: a session in the
    /// table was either passed by the last complete sweep or inserted since.
    pub fn oldest_generation(&self) -> Option<u32> {
        (self.oldest != u32::MAX).then_some(self.oldest)
    }

    /// Removes every session, reporting each one still open with `reason`
    /// (shutdown, policy reload). Sessions already closed by FIN/RST leave
    /// silently. Costs O(capacity).
    pub fn close_all(&mut self, reason: CloseReason, out: &mut impl FnMut(&Session, CloseReason)) {
        for (s, used) in self.slab.iter().zip(&self.used) {
            if *used && s.closed.is_none() {
                out(s, reason);
            }
        }
        self.clear();
    }

    /// Removes every session, passing each one still open to `out`.
    pub fn drain_all(&mut self, out: &mut impl FnMut(&Session)) {
        self.close_all(CloseReason::Shutdown, &mut |s, _| out(s));
    }

    fn clear(&mut self) {
        self.open = 0;
        self.removed += 1;
        self.index.fill(EMPTY);
        self.used.fill(false);
        self.free.clear();
        self.free.extend((0..self.slab.len() as u32).rev());
        self.sweep = 0;
        self.sweep_oldest = u32::MAX;
        self.oldest = u32::MAX;
    }

    /// Every session in the table (open ones, and closed ones still
    /// lingering; see [`Session::closed`]), in slab order.
    pub fn iter(&self) -> impl Iterator<Item = (SessionHandle, &Session)> + '_ {
        self.slab
            .iter()
            .zip(&self.used)
            .enumerate()
            .filter(|(_, (_, u))| **u)
            .map(|(i, (s, _))| (SessionHandle(i as u32), s))
    }

    /// Walks the table in pages: visits the sessions in slab slots from
    /// `from` on, looking at no more than `slots` slots and visiting no
    /// more than `room` sessions, and says where to go on. Allocates
    /// nothing and costs O(`slots`), so a worker can walk between bursts
    /// with a small budget while it forwards: one walk serves listing and
    /// clearing sessions, and is the one a high-availability peer's bulk
    /// sync needs.
    ///
    /// A session in the table for the whole walk is visited exactly once;
    /// one inserted or removed while the walk goes on may or may not be
    /// (as pfsync's bulk update: what changes meanwhile travels as an
    /// update of its own).
    pub fn walk(
        &self,
        from: WalkCursor,
        slots: usize,
        room: usize,
        mut visit: impl FnMut(SessionHandle, &Session),
    ) -> WalkStep {
        let end = self.slab.len();
        let mut i = from.0 as usize;
        let mut visited = 0;
        let stop = i.saturating_add(slots).min(end);
        while i < stop && visited < room {
            if self.used[i] {
                visit(SessionHandle(i as u32), &self.slab[i]);
                visited += 1;
            }
            i += 1;
        }
        WalkStep {
            next: (i < end).then_some(WalkCursor(i as u32)),
            visited,
        }
    }

    /// The session in `key`'s flow (either direction) if its id is `id`:
    /// a session named by an earlier walk, if it is still the same one.
    pub fn find(&self, key: &FlowKey, id: u64) -> Option<SessionHandle> {
        self.lookup(key)
            .map(|(h, _)| h)
            .filter(|h| self.slab[h.index()].id == id)
    }

    /// Bytes of preallocated memory.
    pub fn memory_bytes(&self) -> usize {
        use std::mem::size_of;
        self.slab.len() * (size_of::<Session>() + 1 + 4) + self.index.len() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::Addr;
    use proptest::prelude::*;
    use std::collections::HashMap;

    const S: u64 = SECOND;

    fn key(protocol: u8, a: [u8; 4], ap: u16, b: [u8; 4], bp: u16) -> FlowKey {
        FlowKey {
            src: Addr::from_ipv4(a),
            dst: Addr::from_ipv4(b),
            src_port: ap,
            dst_port: bp,
            protocol,
        }
    }

    fn tcp_key() -> FlowKey {
        key(proto::TCP, [192, 0, 2, 1], 40000, [10, 1, 0, 10], 80)
    }

    fn meta() -> SessionMeta {
        SessionMeta {
            policy: 7,
            from_zone: 1,
            to_zone: 2,
            ingress: 0,
            egress: 1,
            ..SessionMeta::default()
        }
    }

    fn flags(list: &[TcpFlags]) -> TcpFlags {
        TcpFlags(list.iter().fold(0, |a, f| a | f.0))
    }

    use Direction::{ClientToServer as C2S, ServerToClient as S2C};

    #[test]
    fn the_oldest_generation_is_a_lower_bound_that_a_sweep_makes_exact() {
        let mut t = SessionTable::new(8, 0, Timeouts::default());
        assert_eq!(t.oldest_generation(), None);
        let in_gen = |generation| SessionMeta {
            generation,
            ..meta()
        };
        let udp = |host| key(proto::UDP, [192, 0, 2, host], 5000, [198, 51, 100, 1], 53);
        t.insert(udp(1), in_gen(1), 0).unwrap();
        t.insert(udp(2), in_gen(2), 30 * S).unwrap();
        assert_eq!(t.oldest_generation(), Some(1));
        // The generation-1 session ages out in the first sweep; as both
        // were inserted while it ran, generation 2 is known to be the
        // oldest after the next complete sweep, and half a sweep is not one.
        let mut closed = 0;
        t.expire(61 * S, 8, &mut |_, _| closed += 1);
        assert_eq!((closed, t.oldest_generation()), (1, Some(1)));
        t.expire(61 * S, 4, &mut |_, _| closed += 1);
        assert_eq!(t.oldest_generation(), Some(1));
        t.expire(61 * S, 4, &mut |_, _| closed += 1);
        assert_eq!((closed, t.oldest_generation()), (1, Some(2)));
        // An insert lowers it at once (a reload's sessions keep coming
        // from a worker that has not switched yet, for one).
        t.insert(udp(3), in_gen(1), 62 * S).unwrap();
        assert_eq!(t.oldest_generation(), Some(1));
        t.close_all(CloseReason::Shutdown, &mut |_, _| {});
        assert_eq!(t.oldest_generation(), None);
    }

    #[test]
    fn open_counts_sessions_not_yet_closed() {
        let mut t = SessionTable::new(8, 0, Timeouts::default());
        let a = t.insert(tcp_key(), meta(), 0).unwrap();
        let mut other = tcp_key();
        other.src_port += 1;
        let b = t.insert(other, meta(), 0).unwrap();
        assert_eq!((t.len(), t.open()), (2, 2));
        t.update(a, C2S, 40, Segment::from(TcpFlags::RST), 0);
        assert_eq!(
            (t.len(), t.open()),
            (2, 1),
            "a RST-closed session lingers, not open"
        );
        assert_eq!(
            t.end(b, CloseReason::ResponseReceived),
            Some(CloseReason::ResponseReceived)
        );
        assert_eq!(t.end(b, CloseReason::ResponseReceived), None);
        assert_eq!((t.len(), t.open()), (2, 0));
        t.remove(a);
        assert_eq!((t.len(), t.open()), (1, 0));
        let c = t.insert(tcp_key(), meta(), 0).unwrap();
        assert_eq!(t.open(), 1);
        t.remove(c);
        assert_eq!(t.open(), 0);
        t.close_all(CloseReason::Shutdown, &mut |_, _| {});
        assert_eq!((t.len(), t.open()), (0, 0));
    }

    #[test]
    fn a_session_fills_three_cache_lines() {
        assert_eq!(std::mem::size_of::<Session>(), 3 * 64);
    }

    #[test]
    fn both_directions_reach_one_session() {
        let mut t = SessionTable::new(16, 3, Timeouts::default());
        // Initiator on the "high" side and on the "low" side.
        for k in [tcp_key(), tcp_key().reversed()] {
            let h = t.insert(k, meta(), 5).unwrap();
            assert_eq!(t.lookup(&k), Some((h, C2S)));
            assert_eq!(t.lookup(&k.reversed()), Some((h, S2C)));
            let s = t.get(h);
            assert_eq!(s.key(), k);
            assert_eq!(s.key_for(S2C), k.reversed());
            assert_eq!(s.meta, meta());
            assert_eq!((s.created_ns, s.last_seen_ns), (5, 5));
            t.remove(h);
            assert_eq!(t.lookup(&k), None);
            assert_eq!(t.lookup(&k.reversed()), None);
        }
        // Different ports or protocol are different sessions.
        let h = t.insert(tcp_key(), meta(), 0).unwrap();
        let mut other = tcp_key();
        other.src_port += 1;
        assert_eq!(t.lookup(&other), None);
        other = tcp_key();
        other.protocol = proto::UDP;
        assert_eq!(t.lookup(&other), None);
        assert_eq!(t.lookup(&tcp_key()), Some((h, C2S)));
        // IPv6 too.
        let v6 = FlowKey {
            src: Addr::from_ipv6([0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9]),
            dst: Addr::from_ipv6([0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
            src_port: 5353,
            dst_port: 53,
            protocol: proto::UDP,
        };
        let h6 = t.insert(v6, meta(), 0).unwrap();
        assert_eq!(t.lookup(&v6.reversed()), Some((h6, S2C)));
    }

    #[test]
    fn ids_are_unique_and_carry_the_node_and_the_worker() {
        let mut t = SessionTable::new(4, 0x02, Timeouts::default());
        t.identify(0x01, 77);
        let a = t.insert(tcp_key(), meta(), 0).unwrap();
        let ida = t.get(a).id;
        t.remove(a);
        let b = t.insert(tcp_key(), meta(), 0).unwrap();
        let idb = t.get(b).id;
        assert_eq!(ida >> 48, 0x0102);
        assert_eq!(idb >> 48, 0x0102);
        assert!(idb > ida, "ids increase even when a slot is reused");
        assert_eq!(t.get(b).origin, 77);
    }

    #[test]
    fn tcp_handshake_then_fin_fin_ack_closes() {
        let mut t = SessionTable::new(8, 0, Timeouts::default());
        let h = t.insert(tcp_key(), meta(), 0).unwrap();
        let step = |t: &mut SessionTable, dir, f: &[TcpFlags]| {
            t.update(h, dir, 60, Segment::from(flags(f)), S)
        };
        assert_eq!(step(&mut t, C2S, &[TcpFlags::SYN]), Update::default());
        assert_eq!(t.get(h).tcp, TcpState::SynSent);
        step(&mut t, S2C, &[TcpFlags::SYN, TcpFlags::ACK]);
        assert_eq!(t.get(h).tcp, TcpState::SynAckSeen);
        step(&mut t, C2S, &[TcpFlags::ACK]);
        assert_eq!(t.get(h).tcp, TcpState::Established);
        step(&mut t, S2C, &[TcpFlags::ACK, TcpFlags::PSH]);
        assert_eq!(t.get(h).tcp, TcpState::Established);
        step(&mut t, C2S, &[TcpFlags::FIN, TcpFlags::ACK]);
        assert_eq!(t.get(h).tcp, TcpState::FinWait);
        // An ACK from the side that sent the last FIN does not close.
        step(&mut t, S2C, &[TcpFlags::FIN, TcpFlags::ACK]);
        assert_eq!(t.get(h).tcp, TcpState::Closing);
        assert_eq!(step(&mut t, S2C, &[TcpFlags::ACK]), Update::default());
        assert_eq!(t.get(h).tcp, TcpState::Closing);
        let u = step(&mut t, C2S, &[TcpFlags::ACK]);
        assert_eq!(u.closed, Some(CloseReason::TcpFin));
        assert_eq!(t.get(h).tcp, TcpState::Closed);
        assert_eq!(t.get(h).closed(), Some(CloseReason::TcpFin));
        // Late segments still find it, reported once.
        assert_eq!(t.lookup(&tcp_key().reversed()), Some((h, S2C)));
        assert_eq!(step(&mut t, S2C, &[TcpFlags::ACK]), Update::default());
        assert_eq!(t.get(h).packets, [4, 5]);
        // It lingers for the closing timeout, then leaves without a report.
        let mut seen = Vec::new();
        t.expire(S + 2 * S - 1, 8, &mut |s, r| seen.push((s.id, r)));
        assert_eq!(t.len(), 1);
        t.expire(S + 2 * S, 8, &mut |s, r| seen.push((s.id, r)));
        assert!(t.is_empty());
        assert!(seen.is_empty());
    }

    #[test]
    fn rst_closes_in_any_state() {
        for before in 0..4 {
            let mut t = SessionTable::new(8, 0, Timeouts::default());
            let h = t.insert(tcp_key(), meta(), 0).unwrap();
            let seq = [
                (C2S, flags(&[TcpFlags::SYN])),
                (S2C, flags(&[TcpFlags::SYN, TcpFlags::ACK])),
                (C2S, flags(&[TcpFlags::ACK])),
                (C2S, flags(&[TcpFlags::FIN, TcpFlags::ACK])),
            ];
            for (dir, f) in &seq[..before] {
                assert_eq!(t.update(h, *dir, 40, Segment::from(*f), 0).closed, None);
            }
            let rst = flags(&[TcpFlags::RST, TcpFlags::ACK]);
            assert_eq!(
                t.update(h, S2C, 40, Segment::from(rst), 0).closed,
                Some(CloseReason::TcpRst)
            );
            assert_eq!(t.get(h).tcp, TcpState::Closed);
            assert_eq!(
                t.update(h, C2S, 40, Segment::from(rst), 0).closed,
                None,
                "once"
            );
            t.expire(2 * S, 8, &mut |_, _| panic!("already reported"));
            assert!(t.is_empty());
        }
    }

    #[test]
    fn session_without_syn_is_picked_up_established() {
        let mut t = SessionTable::new(8, 0, Timeouts::default());
        let h = t.insert(tcp_key(), meta(), 0).unwrap();
        t.update(h, C2S, 40, Segment::from(TcpFlags::ACK), 0);
        assert_eq!(t.get(h).tcp, TcpState::Established);
    }

    /// With sync on, the table journals what a peer must hear of: a new
    /// session, a TCP state change, a close and a removal, not a packet
    /// that changes nothing a peer needs; a full journal counts what it
    /// could not keep.
    #[test]
    fn the_journal_records_what_a_peer_must_hear_of() {
        let mut t = SessionTable::new(8, 3, Timeouts::default());
        t.identify(2, 99);
        t.journal_changes(3);
        let h = t.insert(tcp_key(), meta(), 0).unwrap();
        t.update(h, C2S, 60, Segment::from(TcpFlags::SYN), 0);
        let syn_ack = flags(&[TcpFlags::SYN, TcpFlags::ACK]);
        t.update(h, S2C, 60, Segment::from(syn_ack), 1);
        t.update(h, C2S, 60, Segment::from(TcpFlags::ACK), 2);
        t.update(h, C2S, 60, Segment::from(TcpFlags::ACK), 3);
        // What was sent: a record, or a removal's id and key.
        let owned = |c: SyncChange<'_>| match c {
            SyncChange::Removed { id, key } => Err((id, key)),
            update => Ok(update.record().expect("an update")),
        };
        let mut seen = Vec::new();
        t.drain_journal(4, |c| {
            seen.push(owned(c));
            true
        });
        let states: Vec<TcpState> = seen
            .iter()
            .map(|c| match c {
                Ok(r) => {
                    assert_eq!((r.origin, r.id >> 56, (r.id >> 48) & 0xff), (99, 2, 3));
                    r.tcp
                }
                other => panic!("{other:?}"),
            })
            .collect();
        // Created, SYN+ACK seen, established: changes of one session in a
        // row make one record, as the session is when drained.
        assert_eq!(states, vec![TcpState::Established]);
        let id = t.get(h).id;
        t.remove(h);
        t.drain_journal(5, |c| {
            seen.push(owned(c));
            true
        });
        assert_eq!(seen.last(), Some(&Err((id, tcp_key()))));
        for port in 0..5 {
            let mut k = tcp_key();
            k.src_port = 2000 + port;
            t.insert(k, meta(), 6).unwrap();
        }
        assert_eq!(
            t.journal.as_ref().unwrap().lost,
            2,
            "three kept, two counted"
        );
        // Installing a peer's session journals nothing (it is the peer's).
        let mut peer = SessionTable::new(8, 0, Timeouts::default());
        peer.journal_changes(8);
        let r = t.iter().next().unwrap().1.sync_record(7);
        peer.install(&r, 7).unwrap();
        let mut none = 0;
        peer.drain_journal(8, |_| {
            none += 1;
            true
        });
        assert_eq!(none, 0);
        // A session opened and closed between two drains was never heard
        // of by the peer: neither its record nor its removal is sent.
        let mut k = tcp_key();
        k.src_port = 4000;
        let h = peer.insert(k, meta(), 10).unwrap();
        peer.end(h, CloseReason::Cleared);
        peer.remove(h);
        peer.drain_journal(11, |_| {
            none += 1;
            true
        });
        assert_eq!(
            none, 0,
            "opened and closed before the drain: nothing to tell"
        );
    }

    /// A bulk sync from the peer refreshes what it still holds; what it
    /// did not refresh (a close this node missed) is swept away after it,
    /// a page of slots at a time, silently.
    #[test]
    fn a_bulk_sync_sweeps_away_the_copies_it_did_not_refresh() {
        let mut active = SessionTable::new(8, 0, Timeouts::default());
        let mut standby = SessionTable::new(8, 0, Timeouts::default());
        let records: Vec<SyncRecord> = (0..3)
            .map(|p| {
                let mut k = tcp_key();
                k.src_port = 3000 + p;
                let h = active.insert(k, meta(), 0).unwrap();
                active.get(h).sync_record(1)
            })
            .collect();
        for r in &records {
            standby.install(r, 1).unwrap();
        }
        standby.begin_bulk();
        for r in &records[..2] {
            standby.install(r, 2).unwrap();
        }
        let mut at = Some(WalkCursor(0));
        let mut pages = 0;
        while let Some(from) = at {
            at = standby.sweep_stale(from, 3);
            pages += 1;
        }
        assert_eq!(pages, 3, "8 slots, 3 a page");
        assert_eq!(standby.len(), 2);
        assert!(
            standby.lookup(&records[2].key).is_none(),
            "the stale copy went"
        );
        assert!(standby.lookup(&records[0].key).is_some());
    }

    /// A session synced to a peer's table (through its bytes) carries on
    /// there as on the node that created it: the same id, state, counters
    /// and verdicts on the next segments; a later sync of it replaces it.
    #[test]
    fn an_installed_session_carries_on_as_on_the_node_that_synced_it() {
        use crate::session_sync::SyncRecord;
        use crate::tcp_window::SeqFields;
        let seg = |flags: TcpFlags, seq: u32, ack: u32, len: u32| Segment {
            flags,
            seq: Some(SeqFields {
                seq,
                ack,
                window: 1000,
                payload_len: len,
                wscale: None,
            }),
        };
        let syn_ack = flags(&[TcpFlags::SYN, TcpFlags::ACK]);
        let mut a = SessionTable::new(8, 1, Timeouts::default());
        let h = a.insert(tcp_key(), meta(), 10 * S).unwrap();
        a.update(h, C2S, 60, seg(TcpFlags::SYN, 100, 0, 0), 10 * S);
        a.update(h, S2C, 60, seg(syn_ack, 500, 101, 0), 10 * S);
        a.update(h, C2S, 52, seg(TcpFlags::ACK, 101, 501, 0), 11 * S);
        let mut bytes = Vec::new();
        a.get(h).sync_record(12 * S).encode(&mut bytes);
        let record = SyncRecord::decode(&bytes).unwrap();

        // The peer's clock is elsewhere: ages carry over, not instants.
        let mut b = SessionTable::new(8, 2, Timeouts::default());
        let hb = b.install(&record, 1_000 * S).unwrap();
        let (ra, rb) = (a.get(h), b.get(hb));
        assert_eq!(
            (rb.id, rb.tcp, rb.packets, rb.bytes),
            (ra.id, ra.tcp, ra.packets, ra.bytes)
        );
        assert_eq!(rb.created_ns, 998 * S);
        assert_eq!(rb.last_seen_ns, 999 * S);
        assert_eq!(b.lookup(&tcp_key().reversed()), Some((hb, S2C)));
        assert_eq!((b.len(), b.open()), (1, 1));
        // Each side's first segment re-anchors the synced windows
        // (Windows::resume); from then on both nodes judge alike.
        for (dir, s) in [
            (C2S, seg(TcpFlags::ACK, 101, 501, 100)),
            (S2C, seg(TcpFlags::ACK, 501, 201, 10)),
            (S2C, seg(TcpFlags::ACK, 700_000, 201, 10)),
            (S2C, seg(TcpFlags::ACK, 511, 201, 10)),
        ] {
            assert_eq!(
                b.update(hb, dir, 60, s, 1_001 * S),
                a.update(h, dir, 60, s, 13 * S),
                "{s:?}"
            );
        }
        // Synced again (a later state): replaced, not added.
        let rst = Segment::from(TcpFlags::RST);
        a.update(h, C2S, 40, rst, 14 * S);
        b.install(&a.get(h).sync_record(14 * S), 1_002 * S).unwrap();
        assert_eq!((b.len(), b.open()), (1, 0), "closed by the RST it synced");
        assert_eq!(b.get(hb).closed(), Some(CloseReason::TcpRst));

        let mut full = SessionTable::new(1, 0, Timeouts::default());
        full.insert(
            key(proto::UDP, [1, 1, 1, 1], 5, [2, 2, 2, 2], 53),
            meta(),
            0,
        )
        .unwrap();
        assert_eq!(full.install(&record, 0), Err(TableFull));
        assert_eq!(full.refused(), 1);
    }

    /// A walk in small steps visits every session once, never looks at
    /// more slots than its budget, and stops at `room`.
    #[test]
    fn a_paged_walk_visits_every_session_once_within_its_budget() {
        let mut t = SessionTable::new(1000, 3, Timeouts::default());
        let mut handles = Vec::new();
        for i in 0..700u16 {
            let k = key(
                proto::UDP,
                [10, 0, (i >> 8) as u8, i as u8],
                i,
                [10, 9, 0, 1],
                53,
            );
            handles.push(t.insert(k, meta(), 0).unwrap());
        }
        // Holes in the slab: every third session gone.
        for h in handles.iter().step_by(3) {
            t.remove(*h);
        }
        for (slots, room) in [(1, 1), (7, 3), (64, 1000), (5000, 17), (5000, 5000)] {
            let mut seen = std::collections::HashSet::new();
            let mut cursor = Some(WalkCursor::START);
            let mut steps = 0;
            while let Some(from) = cursor {
                let step = t.walk(from, slots, room, |_, s| {
                    assert!(seen.insert(s.id), "visited twice");
                });
                assert!(step.visited <= room);
                if let Some(next) = step.next {
                    assert!(next.0 > from.0 && (next.0 - from.0) as usize <= slots);
                }
                cursor = step.next;
                steps += 1;
                assert!(steps <= 1000 * 2, "the walk ends");
            }
            assert_eq!(seen.len(), t.len(), "slots {slots} room {room}");
        }
        let (h, s) = t.iter().next().unwrap();
        assert_eq!(t.find(&s.key(), s.id), Some(h));
        assert_eq!(
            t.find(&s.key().reversed(), s.id),
            Some(h),
            "either direction"
        );
        assert_eq!(t.find(&s.key(), s.id + 1), None, "another session's id");
    }

    /// Issue 26: a SYN then FINs with no SYN-ACK (forged SYN+FIN pairs)
    /// left the session closing on the established timeout (1800 s by
    /// default instead of 20 s).
    #[test]
    fn a_handshake_never_completed_keeps_the_initial_timeout_whatever_flags_follow() {
        let to = Timeouts {
            tcp_initial_ns: 5 * S,
            tcp_established_ns: 30 * S,
            ..Timeouts::default()
        };
        let fin_ack = || Segment::from(flags(&[TcpFlags::FIN, TcpFlags::ACK]));
        for (what, with_syn_ack) in [("SYN, FIN", false), ("SYN, SYN-ACK, FIN", true)] {
            let mut t = SessionTable::new(4, 0, to);
            let h = t.insert(tcp_key(), meta(), 0).unwrap();
            t.update(h, C2S, 40, Segment::from(TcpFlags::SYN), 0);
            if with_syn_ack {
                let syn_ack = Segment::from(flags(&[TcpFlags::SYN, TcpFlags::ACK]));
                t.update(h, S2C, 40, syn_ack, 0);
            }
            t.update(h, C2S, 40, Segment::from(TcpFlags::FIN), 0);
            t.update(h, S2C, 40, fin_ack(), 0);
            assert!(
                matches!(t.get(h).tcp, TcpState::SynSent | TcpState::SynAckSeen),
                "{what}: {:?}",
                t.get(h).tcp
            );
            t.expire(5 * S - 1, 4, &mut |_, _| panic!("{what}: early"));
            let mut out = Vec::new();
            t.expire(5 * S, 4, &mut |s, r| out.push((s.key(), r)));
            assert_eq!(out, [(tcp_key(), CloseReason::IdleTimeout)], "{what}");
            assert!(t.is_empty(), "{what}");
        }
    }

    #[test]
    fn aging_per_protocol_at_the_timeout_and_not_before() {
        let to = Timeouts::default();
        let cases = [
            (
                key(proto::UDP, [1, 1, 1, 1], 5, [2, 2, 2, 2], 53),
                to.udp_ns,
            ),
            (
                key(proto::ICMP, [1, 1, 1, 1], 9, [2, 2, 2, 2], 9),
                to.icmp_ns,
            ),
            (
                key(proto::ICMPV6, [1, 1, 1, 1], 9, [2, 2, 2, 2], 9),
                to.icmp_ns,
            ),
            (key(47, [1, 1, 1, 1], 0, [2, 2, 2, 2], 0), to.other_ns),
            (tcp_key(), to.tcp_initial_ns),
        ];
        for (k, limit) in cases {
            let mut t = SessionTable::new(4, 0, to);
            let h = t.insert(k, meta(), 100).unwrap();
            t.update(h, C2S, 10, Segment::from(TcpFlags::SYN), 1000);
            let mut out = Vec::new();
            t.expire(1000 + limit - 1, 4, &mut |s, r| out.push((s.key(), r)));
            assert_eq!(t.len(), 1, "{k:?} expired early");
            // Traffic restarts the clock.
            t.update(h, S2C, 10, Segment::from(TcpFlags::EMPTY), 2000);
            t.expire(1000 + limit, 4, &mut |s, r| out.push((s.key(), r)));
            assert_eq!(t.len(), 1);
            t.expire(2000 + limit, 4, &mut |s, r| out.push((s.key(), r)));
            assert!(t.is_empty(), "{k:?}");
            assert_eq!(out, [(k, CloseReason::IdleTimeout)]);
        }
        // Established TCP keeps the long timeout.
        let mut t = SessionTable::new(4, 0, to);
        let h = t.insert(tcp_key(), meta(), 0).unwrap();
        t.update(h, C2S, 1, Segment::from(TcpFlags::SYN), 0);
        t.update(
            h,
            S2C,
            1,
            Segment::from(flags(&[TcpFlags::SYN, TcpFlags::ACK])),
            0,
        );
        t.update(h, C2S, 1, Segment::from(TcpFlags::ACK), 0);
        t.expire(to.tcp_established_ns - 1, 4, &mut |_, _| panic!("early"));
        assert_eq!(t.len(), 1);
        let mut n = 0;
        t.expire(to.tcp_established_ns, 4, &mut |_, _| n += 1);
        assert_eq!((n, t.len()), (1, 0));
    }

    #[test]
    fn expire_is_bounded_and_sweeps_everything_eventually() {
        let mut t = SessionTable::new(100, 0, Timeouts::default());
        for i in 0..100u16 {
            let k = key(proto::UDP, [10, 0, 0, 1], i, [10, 0, 0, 2], 53);
            t.insert(k, meta(), 0).unwrap();
        }
        let mut n = 0;
        t.expire(60 * S, 10, &mut |_, _| n += 1);
        assert_eq!(n, 10);
        assert_eq!(t.len(), 90);
        for _ in 0..9 {
            t.expire(60 * S, 10, &mut |_, _| n += 1);
        }
        assert_eq!(n, 100);
        assert!(t.is_empty());
    }

    #[test]
    fn full_table_refuses_counts_and_does_not_grow() {
        let mut t = SessionTable::new(3, 0, Timeouts::default());
        let mem = t.memory_bytes();
        let mut hs = Vec::new();
        for i in 0..3u16 {
            let k = key(proto::UDP, [10, 0, 0, 1], i, [10, 0, 0, 2], 53);
            hs.push(t.insert(k, meta(), 0).unwrap());
        }
        for i in 3..5u16 {
            let k = key(proto::UDP, [10, 0, 0, 1], i, [10, 0, 0, 2], 53);
            assert_eq!(t.insert(k, meta(), 0), Err(TableFull));
        }
        assert_eq!((t.refused(), t.len(), t.capacity()), (2, 3, 3));
        assert_eq!(t.memory_bytes(), mem);
        t.remove(hs[1]);
        let k = key(proto::UDP, [10, 0, 0, 1], 9, [10, 0, 0, 2], 53);
        assert!(t.insert(k, meta(), 0).is_ok());
        assert_eq!(t.len(), 3);
        assert_eq!(t.capacity(), 3);
    }

    #[test]
    fn counters_per_direction() {
        let mut t = SessionTable::new(4, 0, Timeouts::default());
        let k = key(proto::UDP, [10, 0, 0, 1], 5000, [10, 0, 0, 2], 53);
        let h = t.insert(k, meta(), 0).unwrap();
        t.update(h, C2S, 100, Segment::from(TcpFlags::EMPTY), 1);
        t.update(h, C2S, 50, Segment::from(TcpFlags::EMPTY), 2);
        let (h2, dir) = t.lookup(&k.reversed()).unwrap();
        assert_eq!((h2, dir), (h, S2C));
        t.update(h2, dir, 1000, Segment::from(TcpFlags::EMPTY), 3);
        let s = t.get(h);
        assert_eq!(s.packets, [2, 1]);
        assert_eq!(s.bytes, [150, 1000]);
        assert_eq!(s.last_seen_ns, 3);
        assert_eq!(s.tcp, TcpState::None);
    }

    #[test]
    fn close_all_reports_open_sessions_once() {
        let mut t = SessionTable::new(8, 0, Timeouts::default());
        let a = t.insert(tcp_key(), meta(), 0).unwrap();
        let k = key(proto::UDP, [10, 0, 0, 1], 5000, [10, 0, 0, 2], 53);
        t.insert(k, meta(), 0).unwrap();
        t.update(a, C2S, 1, Segment::from(TcpFlags::RST), 0);
        assert_eq!(t.iter().count(), 2);
        let mut out = Vec::new();
        t.close_all(CloseReason::Shutdown, &mut |s, r| out.push((s.key(), r)));
        assert_eq!(out, [(k, CloseReason::Shutdown)]);
        assert!(t.is_empty());
        assert_eq!(t.lookup(&k), None);
        assert!(t.insert(k, meta(), 0).is_ok());
        assert_eq!(CloseReason::PolicyReload.name(), "policy-reload");
        assert_eq!(CloseReason::IdleTimeout.name(), "idle-timeout");
    }

    /// `cargo test --release -p rampart-pipeline --lib bench_session_table -- --ignored --nocapture`
    #[test]
    #[ignore = "benchmark: prints figures, asserts nothing about time"]
    fn bench_session_table() {
        for cap in [1 << 14, 1 << 20] {
            bench_one(cap);
        }
    }

    fn bench_one(cap: usize) {
        use std::hint::black_box;
        use std::time::Instant;
        let mut t = SessionTable::new(cap, 0, Timeouts::default());
        let k = |i: u32| {
            let o = i.to_be_bytes();
            key(
                proto::TCP,
                [10, o[1], o[2], o[3]],
                1024 + (i % 50_000) as u16,
                [172, 16, 0, 1],
                443,
            )
        };
        let n = cap as u32 * 3 / 4;
        let t0 = Instant::now();
        for i in 0..n {
            t.insert(k(i), meta(), 0).unwrap();
        }
        let insert = t0.elapsed().as_nanos() as f64 / n as f64;
        let mut x = 12345u32;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        let probes: Vec<FlowKey> = (0..1 << 16)
            .map(|i| {
                let key = k(next() % n);
                if i % 2 == 0 {
                    key
                } else {
                    key.reversed()
                }
            })
            .collect();
        let misses: Vec<FlowKey> = (0..1 << 16).map(|_| k(n + next() % n)).collect();
        let time = |keys: &[FlowKey], f: &mut dyn FnMut(&FlowKey)| {
            let t0 = Instant::now();
            for _ in 0..20 {
                for key in keys {
                    f(black_box(key));
                }
            }
            t0.elapsed().as_nanos() as f64 / (20 * keys.len()) as f64
        };
        let hit = time(&probes, &mut |key| {
            black_box(t.lookup(key));
        });
        let miss = time(&misses, &mut |key| {
            black_box(t.lookup(key));
        });
        let update = time(&probes, &mut |key| {
            if let Some((h, d)) = t.lookup(key) {
                black_box(t.update(h, d, 100, Segment::from(TcpFlags::ACK), 1));
            }
        });
        println!(
            "capacity {cap}, {n} sessions, {} MiB: insert {insert:.1} ns, lookup hit {hit:.1} ns, \
             miss {miss:.1} ns, lookup+update {update:.1} ns",
            t.memory_bytes() >> 20
        );
    }

    #[derive(Clone, Debug)]
    enum Op {
        Insert(FlowKey),
        Remove(FlowKey),
        Lookup(FlowKey),
    }

    fn arb_key() -> impl Strategy<Value = FlowKey> {
        // A small space, so inserts collide with existing keys and removes hit.
        (
            0u8..4,
            0u8..4,
            0u16..3,
            0u16..3,
            prop_oneof![Just(6u8), Just(17u8)],
        )
            .prop_map(|(a, b, ap, bp, p)| key(p, [10, 0, 0, a], ap, [10, 0, 0, b], bp))
    }

    fn arb_op() -> impl Strategy<Value = Op> {
        prop_oneof![
            arb_key().prop_map(Op::Insert),
            arb_key().prop_map(Op::Remove),
            arb_key().prop_map(Op::Lookup),
        ]
    }

    proptest! {
        #[test]
        fn table_matches_a_hashmap_model(cap in 1usize..40, ops in prop::collection::vec(arb_op(), 1..400)) {
            let mut t = SessionTable::new(cap, 1, Timeouts::default());
            // Canonical key -> (initiator key, session id).
            let mut model: HashMap<FlowKey, (FlowKey, u64)> = HashMap::new();
            let mut refused = 0;
            for op in ops {
                match op {
                    Op::Insert(k) => {
                        if t.lookup(&k).is_some() {
                            prop_assert!(model.contains_key(&canonical(&k).0));
                            continue;
                        }
                        match t.insert(k, meta(), 0) {
                            Ok(h) => {
                                prop_assert!(model.len() < cap);
                                model.insert(canonical(&k).0, (k, t.get(h).id));
                            }
                            Err(TableFull) => {
                                prop_assert_eq!(model.len(), cap);
                                refused += 1;
                            }
                        }
                    }
                    Op::Remove(k) => {
                        if let Some((h, _)) = t.lookup(&k) {
                            t.remove(h);
                        }
                        model.remove(&canonical(&k).0);
                    }
                    Op::Lookup(k) => {
                        let got = t.lookup(&k).map(|(h, d)| (t.get(h).key(), t.get(h).id, d));
                        let want = model.get(&canonical(&k).0).map(|&(init, id)| {
                            (init, id, if init == k { C2S } else { S2C })
                        });
                        prop_assert_eq!(got, want);
                    }
                }
                prop_assert_eq!(t.len(), model.len());
                prop_assert_eq!(t.refused(), refused);
            }
            // Every model entry is still reachable from both directions.
            for (init, id) in model.values() {
                let (h, d) = t.lookup(init).unwrap();
                prop_assert_eq!((t.get(h).id, d), (*id, C2S));
                // (A flow from an endpoint to itself has one direction.)
                let back = if init.reversed() == *init { C2S } else { S2C };
                prop_assert_eq!(t.lookup(&init.reversed()).map(|x| x.1), Some(back));
            }
            prop_assert_eq!(t.iter().count(), model.len());
        }
    }
}
