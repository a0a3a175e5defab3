//! What each packet record says besides its packet metadata: the payloads
//! the pipeline fills at a decision and the encoder writes as they are.
//! Defined here, once, because both crates use them: there is no
//! translation between a decision's events and the records on the wire.

use crate::{CloseReason, FilterAction, FilterDirection, ScreenOption};

/// A u16 id meaning "none" (no egress interface, no zone, no term, no
/// application, global policy ...).
pub const NO_ID16: u16 = u16::MAX;
/// A u32 id meaning "none" (no policy).
pub const NO_ID32: u32 = u32::MAX;

/// A policy denied (or rejected) the first packet of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyDeny {
    /// Policy id of the generation live at the decision (an index into
    /// its name table); the default policy is the id after the last.
    pub policy: u32,
    pub reject: bool,
    /// An audit-mode policy would have denied it; it was let through to
    /// the next matching policy.
    pub audit: bool,
    /// The denied packet's own id (Junos `session-id-32`), from the
    /// session id space; 0 from older producers.
    pub session_id: u64,
    /// The policy's application that matched (an index into the
    /// application names), [`NO_ID16`] for none.
    pub application: u16,
}

impl PolicyDeny {
    /// `deny`, `reject`, or `audit` (an audit-mode policy would have
    /// denied): the action as JSON and drop-log lines name it.
    pub const fn action_name(&self) -> &'static str {
        match (self.audit, self.reject) {
            (true, _) => "audit",
            (false, true) => "reject",
            (false, false) => "deny",
        }
    }
}

/// A screen option matched: dropped, or alarm only (`alarm-without-drop`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScreenDrop {
    /// Screen profile id.
    pub screen: u16,
    pub option: ScreenOption,
    pub alarm_only: bool,
}

/// A filter term with `then log` matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FilterLog {
    pub filter: u16,
    /// Index of the term in the filter.
    pub term: u16,
    pub action: FilterAction,
    pub direction: FilterDirection,
}

/// A session was created (policy `log session-init`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionOpen {
    pub session_id: u64,
    /// As in [`PolicyDeny::policy`].
    pub policy: u32,
    /// As in [`PolicyDeny::application`].
    pub application: u16,
    /// The boot id of the run that created the session: with
    /// `session_id`, its identity across a high-availability pair (0:
    /// not known, an older producer).
    pub origin: u64,
}

/// A session ended (policy `log session-close`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionClose {
    pub session_id: u64,
    pub policy: u32,
    pub reason: CloseReason,
    pub packets_client: u64,
    pub bytes_client: u64,
    pub packets_server: u64,
    pub bytes_server: u64,
    pub elapsed_ns: u64,
    /// The config generation the session was created in: the record's ids
    /// (policy, zones, interfaces) index that generation's name tables.
    /// 0 = the record's own generation (older producers).
    pub session_generation: u32,
    /// As in [`PolicyDeny::application`].
    pub application: u16,
    /// As in [`SessionOpen::origin`].
    pub origin: u64,
}
