//! What the burst pipeline keeps for each packet of the burst it is
//! deciding, between its stages: a worker's, allocated once and reused.
//! A leaf below the engine, so the worker can own it without the engine
//! importing the burst pipeline.

use crate::decision::Reason;
use crate::flow::FlowKey;
use crate::policy::PolicyMatch;
use crate::prefetch::BURST;
use crate::session::{Direction, Probe, SessionHandle};

/// What the stages pass along for one packet (its decision holds the
/// parsed packet and, once made, the outcome).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PacketMeta {
    /// Not decided yet: goes on to the next stage.
    pub(crate) live: bool,
    /// The flow key after fragment tracking (a later fragment's is its
    /// first fragment's).
    pub(crate) key: FlowKey,
    pub(crate) probe: Probe,
    /// The session lookup of the lookup stage.
    pub(crate) found: Option<(SessionHandle, Direction)>,
    /// The policy stage's match, for packets without a session.
    pub(crate) policy: Option<PolicyMatch>,
    /// Left the flow stage for the output filter: egress and reason.
    pub(crate) output: Option<(u16, Reason)>,
}

/// Per-packet metadata of the burst being decided (a worker's, reused).
#[derive(Debug)]
pub struct BurstMeta {
    pub(crate) meta: [PacketMeta; BURST],
    /// Indices of the packets the policy stage looks up, and their matches.
    pub(crate) misses: [u8; BURST],
    pub(crate) queries: [crate::classify::Query; BURST],
    pub(crate) matches: [PolicyMatch; BURST],
}

impl Default for BurstMeta {
    fn default() -> BurstMeta {
        BurstMeta {
            meta: [PacketMeta::default(); BURST],
            misses: [0; BURST],
            queries: [crate::classify::Query::default(); BURST],
            matches: [PolicyMatch::Default; BURST],
        }
    }
}
