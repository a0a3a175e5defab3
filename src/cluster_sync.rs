//! A worker's side of high-availability sync (issue 27): between bursts,
//! it hands the session changes its table journaled to the control plane
//! through its own ring (never waiting: a full ring is counted, and the
//! peer's FT-FW gap detection and bulk resync recover what it missed),
//! installs and removes the sessions the peer synced, walks its table for
//! a bulk sync, and follows the node's role: a standby forwards nothing
//! and ages nothing (the active's closes remove its copies, as
//! conntrackd's external cache); on taking over it ages the synced
//! sessions from then on.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use rampart_core::{RingConsumer, RingProducer};
use rampart_pipeline::engine;
use rampart_pipeline::flow::FlowKey;
use rampart_pipeline::session::WalkCursor;
use rampart_pipeline::session_sync::{
    decode_key, encode_key_into, SyncChange, SyncRecord, KEY_LEN,
};

/// What a [`SyncSlot`] carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum SlotKind {
    /// Worker to control plane: a session created or changed.
    Update = 1,
    /// Worker to control plane: a session left the table (id and key).
    Removed = 2,
    /// Worker to control plane: a session of the bulk walk.
    Bulk = 3,
    /// Worker to control plane: the bulk walk is done.
    BulkDone = 4,
    /// Control plane to worker: install this synced session.
    Install = 5,
    /// Control plane to worker: the peer ended this session (id and key).
    Remove = 6,
    /// Control plane to worker: the peer's whole table follows.
    BulkBegin = 7,
    /// Control plane to worker: it has all come; remove what it did not
    /// refresh.
    BulkEnd = 8,
}

/// One entry of a sync ring: a kind and a session record's bytes (or a
/// session's id and key).
#[derive(Clone, Copy)]
#[repr(C)]
pub struct SyncSlot {
    kind: u32,
    bytes: [u8; SyncRecord::LEN],
}

// rte_ring elements are a multiple of 4 bytes.
const _: () = assert!(std::mem::size_of::<SyncSlot>().is_multiple_of(4));

impl Default for SyncSlot {
    fn default() -> Self {
        SyncSlot {
            kind: 0,
            bytes: [0; SyncRecord::LEN],
        }
    }
}

impl SyncSlot {
    pub fn kind(&self) -> Option<SlotKind> {
        Some(match self.kind {
            1 => SlotKind::Update,
            2 => SlotKind::Removed,
            3 => SlotKind::Bulk,
            4 => SlotKind::BulkDone,
            5 => SlotKind::Install,
            6 => SlotKind::Remove,
            7 => SlotKind::BulkBegin,
            8 => SlotKind::BulkEnd,
            _ => return None,
        })
    }

    /// Writes a session record of `kind` into the slot.
    pub fn set_record(&mut self, kind: SlotKind, r: &SyncRecord) {
        self.kind = kind as u32;
        r.encode_into(&mut self.bytes);
    }

    /// Writes a session's id and key into the slot.
    pub fn set_ended(&mut self, kind: SlotKind, id: u64, key: &FlowKey) {
        self.kind = kind as u32;
        self.bytes[..8].copy_from_slice(&id.to_le_bytes());
        let mut k = [0u8; KEY_LEN];
        encode_key_into(key, &mut k);
        self.bytes[8..8 + KEY_LEN].copy_from_slice(&k);
    }

    pub fn set_kind(&mut self, kind: SlotKind) {
        self.kind = kind as u32;
    }

    pub fn record(&self) -> Option<SyncRecord> {
        SyncRecord::decode(&self.bytes).ok()
    }

    pub fn ended(&self) -> Option<(u64, FlowKey)> {
        let mut id = [0u8; 8];
        id.copy_from_slice(&self.bytes[..8]);
        Some((u64::from_le_bytes(id), decode_key(&self.bytes[8..])?))
    }
}

/// What the control plane and the workers share about the pair.
#[derive(Default)]
pub struct ClusterShared {
    /// This node forwards (else it is standby).
    pub active: AtomicBool,
    /// Raised for every bulk sync the peer asks for: each worker walks
    /// its table once per raise.
    pub bulk_generation: AtomicU64,
    /// Set before a stop when the peer holds this node's sessions (it is
    /// alive and synced): sessions are left to it, not closed and logged
    /// here at shutdown.
    pub handover: AtomicBool,
}

/// Sessions a worker walks per loop for a bulk sync (as a listing's walk).
const BULK_SLOTS: usize = 256;
/// Sessions a bulk walk hands over per loop at most.
const BULK_SESSIONS: usize = 32;
/// Slots a worker sweeps for stale copies per loop.
const SWEEP_SLOTS: usize = 256;
/// Installs and removals a worker applies per loop at most.
const APPLY_PER_ROUND: usize = 64;
/// Sync ring slots filled before they are published to the control plane.
const PUBLISH_BATCH: u32 = 16;

/// A worker's sync state.
pub struct WorkerSync {
    pub shared: Arc<ClusterShared>,
    pub out: RingProducer<SyncSlot>,
    pub inbox: RingConsumer<SyncSlot>,
    /// The role at the last loop.
    active: bool,
    /// The bulk generation this worker walked for last, and the walk
    /// under way.
    bulk_done: u64,
    bulk_walk: Option<WalkCursor>,
    /// The sweep of stale copies after a bulk sync from the peer.
    stale_sweep: Option<WalkCursor>,
    pub counters: Arc<SyncCounters>,
}

/// A worker's sync counters (written by that worker only).
#[derive(Default)]
pub struct SyncCounters {
    /// Changes handed to the control plane.
    pub handed: AtomicU64,
    /// Changes lost: the ring to the control plane was full, or the
    /// table's journal overflowed within one loop.
    pub lost: AtomicU64,
    pub installed: AtomicU64,
    /// Synced sessions a full table refused, or whose record did not decode.
    pub install_refused: AtomicU64,
    pub removed: AtomicU64,
    /// Copies a bulk sync from the peer did not refresh (their close was
    /// missed), removed after it.
    pub stale_removed: AtomicU64,
    /// Packets received while standby (not forwarded).
    pub standby_discarded: AtomicU64,
}

#[inline(always)]
fn bump(counter: &AtomicU64, by: u64) {
    counter.store(counter.load(Ordering::Relaxed) + by, Ordering::Relaxed);
}

impl WorkerSync {
    pub fn new(
        shared: Arc<ClusterShared>,
        out: RingProducer<SyncSlot>,
        inbox: RingConsumer<SyncSlot>,
    ) -> WorkerSync {
        let bulk_done = shared.bulk_generation.load(Ordering::Relaxed);
        WorkerSync {
            shared,
            out,
            inbox,
            active: false,
            bulk_done,
            bulk_walk: None,
            stale_sweep: None,
            counters: Arc::default(),
        }
    }

    /// The role for this loop (one load). On becoming active, the synced
    /// sessions start aging from now.
    #[inline(always)]
    pub fn poll_role(&mut self, pipeline: &mut engine::Worker, now: u64) -> bool {
        let active = self.shared.active.load(Ordering::Relaxed);
        if active && !self.active {
            pipeline.sessions.resume_aging(now);
        }
        self.active = active;
        active
    }

    /// Counts packets received while standby.
    #[inline(always)]
    pub fn discarded(&self, n: usize) {
        bump(&self.counters.standby_discarded, n as u64);
    }

    /// Between bursts: the journal to the control plane (when active; a
    /// standby's own changes are its peer's to report), the peer's
    /// sessions into the table, and a piece of a bulk walk. The peer runs
    /// the same config: a synced session keeps its policy, zone and
    /// interface ids and is named in `generation`, the one this worker
    /// runs (the two nodes number their reloads each on its own).
    pub fn step(&mut self, pipeline: &mut engine::Worker, now: u64, generation: u32) {
        let (mut handed, mut lost) = (0u64, 0u64);
        let active = self.active;
        let out = &mut self.out;
        // Once the ring is full, the rest of this drain is counted lost
        // without asking the ring again (each try reads the consumer's
        // cache line).
        let mut full = false;
        pipeline.sessions.drain_journal(now, |change| {
            if !active {
                return false;
            }
            let kept = !full
                && out.put_in_place(PUBLISH_BATCH, |slot| {
                    match change {
                        SyncChange::Update(s, now) => {
                            slot.set_record(SlotKind::Update, &s.sync_record(now))
                        }
                        SyncChange::Removed { id, key } => {
                            slot.set_ended(SlotKind::Removed, id, &key)
                        }
                    }
                    true
                });
            full |= !kept;
            if kept {
                handed += 1;
            } else {
                lost += 1;
            }
            kept
        });
        if let Some(j) = &mut pipeline.sessions.journal {
            lost += std::mem::take(&mut j.lost);
        }
        let (mut installed, mut refused, mut removed) = (0u64, 0u64, 0u64);
        let sessions = &mut pipeline.sessions;
        let stale_sweep = &mut self.stale_sweep;
        self.inbox
            .dequeue_in_place(APPLY_PER_ROUND, |slot| match slot.kind() {
                Some(SlotKind::BulkBegin) => {
                    // A sweep of an earlier bulk would take this one's
                    // sessions for stale: it stops.
                    *stale_sweep = None;
                    sessions.begin_bulk();
                }
                Some(SlotKind::BulkEnd) => *stale_sweep = Some(WalkCursor(0)),
                Some(SlotKind::Install) => match slot.record() {
                    Some(mut r) => {
                        r.meta.generation = generation;
                        match sessions.install(&r, now) {
                            Ok(_) => installed += 1,
                            Err(_) => refused += 1,
                        }
                    }
                    None => refused += 1,
                },
                Some(SlotKind::Remove) => {
                    if let Some(h) = slot.ended().and_then(|(id, key)| sessions.find(&key, id)) {
                        sessions.remove(h);
                        removed += 1;
                    }
                }
                _ => {}
            });
        if let Some(at) = self.stale_sweep {
            let before = sessions.len();
            self.stale_sweep = sessions.sweep_stale(at, SWEEP_SLOTS);
            bump(
                &self.counters.stale_removed,
                (before - sessions.len()) as u64,
            );
        }
        if !active {
            // What removing the peer's sessions journaled is not news to it.
            sessions.drain_journal(now, |_| false);
        }
        self.bulk_step(pipeline, now);
        self.out.publish();
        let c = &self.counters;
        bump(&c.handed, handed);
        bump(&c.lost, lost);
        bump(&c.installed, installed);
        bump(&c.install_refused, refused);
        bump(&c.removed, removed);
    }

    /// A piece of the bulk walk the peer asked for, if one is under way
    /// and the ring has room for it.
    fn bulk_step(&mut self, pipeline: &engine::Worker, now: u64) {
        let wanted = self.shared.bulk_generation.load(Ordering::Acquire);
        if self.bulk_walk.is_none() {
            if wanted == self.bulk_done {
                return;
            }
            self.bulk_walk = Some(WalkCursor(0));
        }
        let free = self.out.capacity().saturating_sub(self.out.len()) as usize;
        if free < BULK_SESSIONS + 1 {
            return; // next loop: the control plane is draining
        }
        let from = self.bulk_walk.expect("set above");
        let out = &mut self.out;
        let step = pipeline
            .sessions
            .walk(from, BULK_SLOTS, BULK_SESSIONS, |_, s| {
                out.put_in_place(PUBLISH_BATCH, |slot| {
                    slot.set_record(SlotKind::Bulk, &s.sync_record(now));
                    true
                });
            });
        self.bulk_walk = step.next;
        if step.next.is_none() {
            self.out.put_in_place(1, |slot| {
                slot.set_kind(SlotKind::BulkDone);
                true
            });
            self.bulk_done = wanted;
        }
    }

    /// Whether the sessions are left to the peer at shutdown.
    pub fn hands_over(&self) -> bool {
        self.shared.handover.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_pipeline::flow::Addr;
    use rampart_pipeline::session::{SessionMeta, SessionTable, Timeouts};

    /// A session travels through a ring slot as it travels on the wire, and
    /// an ended one as its id and key; an unknown kind is no kind.
    #[test]
    fn slots_carry_records_and_ends() {
        let key = FlowKey {
            src: Addr::from_ipv4([192, 0, 2, 1]),
            dst: Addr::from_ipv4([198, 51, 100, 2]),
            src_port: 40000,
            dst_port: 443,
            protocol: 6,
        };
        let mut t = SessionTable::new(4, 1, Timeouts::default());
        t.identify(2, 0xabc);
        let h = t.insert(key, SessionMeta::default(), 10).unwrap();
        let r = t.get(h).sync_record(20);
        let mut slot = SyncSlot::default();
        assert_eq!(slot.kind(), None);
        slot.set_record(SlotKind::Install, &r);
        assert_eq!(
            (slot.kind(), slot.record()),
            (Some(SlotKind::Install), Some(r))
        );
        slot.set_ended(SlotKind::Remove, r.id, &key);
        assert_eq!(slot.kind(), Some(SlotKind::Remove));
        assert_eq!(slot.ended(), Some((r.id, key)));
    }
}
