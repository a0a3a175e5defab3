//! What the pipeline decides for a packet: the [`Decision`] (verdict,
//! stage, reason, rule, interfaces and zones) and the [`Event`]s an
//! operator must see, with the log of the session closes they refer to.
//! Plain data: the stages that fill it are in [`crate::engine`].

use crate::flow::FlowKey;
use crate::screen::ScreenOption;
use crate::wire::{Malformed, ParsedPacket};
pub use rampart_vocab::records::{
    FilterLog, PolicyDeny, ScreenDrop, SessionClose, SessionOpen, NO_ID16,
};
pub use rampart_vocab::{DropReason, EventType, FilterDirection, Stage};

/// Why a packet was forwarded or dropped. `#[repr(u8)]` with a count so
/// per-reason counters are plain arrays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Forwarded by an existing session.
    Session,
    /// Forwarded: a policy permitted and created a session.
    PolicyPermit,
    /// Forwarded without inspection (ARP and other non-IP frames).
    NonIp,
    /// A valid IPv6 neighbour discovery or multicast listener message (see
    /// [`crate::wire::link_control::is_valid`]), passed like ARP
    /// (`flow.ipv6-nd = "permit"`).
    NeighborDiscovery,
    /// An ICMP or ICMPv6 error about a flow with a session.
    RelatedIcmp,
    Malformed(Malformed),
    /// Forwarded under `flow.malformed = "forward"`.
    MalformedForwarded(Malformed),
    FilterDiscard,
    FilterReject,
    FilterImplicitDiscard,
    Screen(ScreenOption),
    /// Screen alarm only (`alarm-without-drop`); the packet went on.
    ScreenAlarm(ScreenOption),
    TcpSynCheck,
    /// A TCP segment outside its session's window (`flow.tcp-sequence-check`).
    TcpOutOfWindow,
    /// A fragment held until its datagram's first fragment arrives.
    FragmentHeld,
    /// A held fragment whose first fragment did not arrive in time.
    FragmentTimeout,
    /// A held fragment given up to make room (the hold was full).
    FragmentHoldFull,
    /// Larger than the egress interface's MTU (the IP packet, or the L2
    /// payload of a non-IP frame): a port must not send it.
    MtuExceeded,
    PolicyDeny,
    PolicyReject,
    SessionTableFull,
    NoEgress,
}

impl Reason {
    /// The reason shown in `trace` and counters.
    pub fn name(self) -> &'static str {
        match self {
            Reason::Session => "session",
            Reason::PolicyPermit => "policy-permit",
            Reason::NonIp => "non-ip",
            Reason::NeighborDiscovery => "neighbor-discovery",
            Reason::RelatedIcmp => "related-icmp",
            Reason::Malformed(m) | Reason::MalformedForwarded(m) => m.name(),
            Reason::FilterDiscard => "filter-discard",
            Reason::FilterReject => "filter-reject",
            Reason::FilterImplicitDiscard => "filter-implicit-discard",
            Reason::Screen(o) | Reason::ScreenAlarm(o) => o.name(),
            Reason::TcpSynCheck => "tcp-syn-check",
            Reason::TcpOutOfWindow => "tcp-out-of-window",
            Reason::FragmentHeld => "fragment-held",
            Reason::FragmentTimeout => "fragment-timeout",
            Reason::FragmentHoldFull => "fragment-hold-full",
            Reason::MtuExceeded => "mtu-exceeded",
            Reason::PolicyDeny => "policy-deny",
            Reason::PolicyReject => "policy-reject",
            Reason::SessionTableFull => "session-table-full",
            Reason::NoEgress => "no-egress",
        }
    }

    /// The drop counter this reason feeds; `None` for the reasons a
    /// packet goes on with (every variant is listed, so a new reason must
    /// say which).
    pub fn drop_reason(self) -> Option<DropReason> {
        Some(match self {
            Reason::Malformed(_) => DropReason::Malformed,
            Reason::FilterDiscard => DropReason::FilterDiscard,
            Reason::FilterReject => DropReason::FilterReject,
            Reason::FilterImplicitDiscard => DropReason::FilterImplicitDiscard,
            Reason::Screen(_) => DropReason::Screen,
            Reason::TcpSynCheck => DropReason::TcpSynCheck,
            Reason::PolicyDeny => DropReason::PolicyDeny,
            Reason::PolicyReject => DropReason::PolicyReject,
            Reason::SessionTableFull => DropReason::SessionTableFull,
            Reason::NoEgress => DropReason::NoEgress,
            Reason::TcpOutOfWindow => DropReason::TcpOutOfWindow,
            Reason::FragmentTimeout => DropReason::FragmentTimeout,
            Reason::FragmentHoldFull => DropReason::FragmentHoldFull,
            Reason::MtuExceeded => DropReason::MtuExceeded,
            Reason::Session
            | Reason::PolicyPermit
            | Reason::NonIp
            | Reason::NeighborDiscovery
            | Reason::RelatedIcmp
            | Reason::MalformedForwarded(_)
            | Reason::ScreenAlarm(_)
            | Reason::FragmentHeld => return None,
        })
    }
}

/// What to do with the packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Forward {
        egress: u16,
    },
    Drop,
    /// Drop and answer out of the ingress interface (TCP RST or ICMP
    /// unreachable, see [`build_reject`](crate::engine::build_reject)).
    Reject,
    /// A fragment that arrived before its datagram's first fragment: the
    /// caller keeps it in a [`crate::frag::FragHold`] and runs it again
    /// with [`Worker::resume_held`](crate::engine::Worker::resume_held) once the first fragment is decided.
    Hold,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Forward { .. } => "forward",
            Verdict::Drop => "drop",
            Verdict::Reject => "reject",
            Verdict::Hold => "hold",
        }
    }
}

/// The rule that decided, as operators name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleRef {
    None,
    Policy(u32),
    DefaultPolicy,
    FilterTerm { filter: u16, term: u16 },
    FilterEnd { filter: u16 },
    Screen { profile: u16 },
}

/// An event an operator must see, with the identities captured at the
/// decision. The caller encodes it (DPDK worker) or lists it (`trace`).
///
/// `C` is how a session close is carried. A [`Decision`] records a
/// [`CloseRef`] into its worker's [`CloseLog`], so that a decision stays
/// small (a close record is 128 bytes, every other event at most 24);
/// [`Worker::events`](crate::engine::Worker::events) builds the full events from the decision at export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event<C = SessionClosed> {
    PolicyDeny(PolicyDeny),
    ScreenDrop(ScreenDrop),
    FilterLog(FilterLog),
    SessionOpen(SessionOpen),
    /// The closed session's record: its payload and the flow, interfaces
    /// and zones its record names ([`SessionClosed`]).
    SessionClose(C),
}

impl<C> Event<C> {
    /// The event's type; its name is the one used in JSON, stats and `trace`.
    pub const fn event_type(&self) -> EventType {
        match self {
            Event::PolicyDeny(_) => EventType::PolicyDeny,
            Event::ScreenDrop(_) => EventType::ScreenDrop,
            Event::FilterLog(_) => EventType::FilterLog,
            Event::SessionOpen(_) => EventType::SessionOpen,
            Event::SessionClose(_) => EventType::SessionClose,
        }
    }

    pub fn type_name(&self) -> &'static str {
        self.event_type().name()
    }

    /// The same event with its close carried as `close` makes it (`None`
    /// if `close` finds none).
    pub(crate) fn map_close<D>(self, close: impl FnOnce(C) -> Option<D>) -> Option<Event<D>> {
        Some(match self {
            Event::PolicyDeny(e) => Event::PolicyDeny(e),
            Event::ScreenDrop(e) => Event::ScreenDrop(e),
            Event::FilterLog(e) => Event::FilterLog(e),
            Event::SessionOpen(e) => Event::SessionOpen(e),
            Event::SessionClose(c) => Event::SessionClose(close(c)?),
        })
    }
}

/// A session close a decision made, kept in its worker's [`CloseLog`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CloseRef(u32);

/// The last [`CloseLog::LEN`] session closes the worker's decisions
/// made: enough for every close of the burst being exported and the one
/// before it (a packet closes at most one session).
pub struct CloseLog {
    pub(crate) records: Box<[Option<SessionClosed>; CloseLog::LEN]>,
    /// How many closes were ever kept (wrapping): the next one's number.
    pub(crate) next: u32,
}

impl CloseLog {
    pub const LEN: usize = 2 * crate::prefetch::BURST;
    // A power of two divides 2^32, so a number's slot stays the same
    // across the wrap of `next` and `get` never returns another close.
    const _POWER_OF_TWO: () = assert!(CloseLog::LEN.is_power_of_two());

    pub(crate) fn new() -> CloseLog {
        CloseLog {
            records: Box::new([None; CloseLog::LEN]),
            next: 0,
        }
    }

    pub(crate) fn keep(&mut self, c: SessionClosed) -> CloseRef {
        let r = CloseRef(self.next);
        self.records[r.0 as usize % CloseLog::LEN] = Some(c);
        self.next = self.next.wrapping_add(1);
        r
    }

    /// The close `r` names, unless [`CloseLog::LEN`] later ones replaced it.
    pub fn get(&self, r: CloseRef) -> Option<&SessionClosed> {
        let age = self.next.wrapping_sub(r.0) as usize;
        if (1..=CloseLog::LEN).contains(&age) {
            self.records[r.0 as usize % CloseLog::LEN].as_ref()
        } else {
            None
        }
    }
}

/// A closed session as its close event reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionClosed {
    /// What its record says (ids of the generation the session was
    /// created in, `record.session_generation`).
    pub record: SessionClose,
    /// The initiator's 5-tuple.
    pub key: FlowKey,
    pub from_zone: u16,
    pub to_zone: u16,
    pub ingress: u16,
    pub egress: u16,
}

/// At most this many events per packet (input filter log, screen alarm,
/// session open or close, output filter log).
pub const MAX_EVENTS: usize = 4;

/// The outcome for one packet.
#[derive(Clone, Copy, Debug)]
pub struct Decision {
    pub verdict: Verdict,
    pub stage: Stage,
    pub reason: Reason,
    pub rule: RuleRef,
    pub ingress: u16,
    pub egress: Option<u16>,
    pub from_zone: u16,
    pub to_zone: Option<u16>,
    /// The parsed packet (absent for malformed and non-IP frames).
    pub packet: Option<ParsedPacket>,
    /// Bytes of the frame from its IP header on (from the end of its
    /// Ethernet header for others): what the egress MTU bounds.
    pub l3_len: u32,
    /// The first `event_count` are this packet's; the rest are stale and
    /// never read, so a new decision resets the count only. Read them with
    /// [`Worker::events`](crate::engine::Worker::events).
    pub(crate) events: [Option<Event<CloseRef>>; MAX_EVENTS],
    pub(crate) event_count: u8,
}

impl Decision {
    /// A decision before any stage ran (what [`Worker::process_into`](crate::engine::Worker::process_into) overwrites).
    pub const BLANK: Decision = Decision {
        verdict: Verdict::Drop,
        stage: Stage::Parse,
        reason: Reason::NonIp,
        rule: RuleRef::None,
        ingress: 0,
        egress: None,
        from_zone: 0,
        to_zone: None,
        packet: None,
        l3_len: 0,
        events: [None; MAX_EVENTS],
        event_count: 0,
    };

    /// How many events the decision made.
    pub fn event_count(&self) -> usize {
        usize::from(self.event_count)
    }

    /// The types of the events the decision made, in order (their
    /// contents: [`Worker::events`](crate::engine::Worker::events)).
    pub fn event_types(&self) -> impl Iterator<Item = EventType> + '_ {
        self.events[..self.event_count()]
            .iter()
            .flatten()
            .map(Event::event_type)
    }

    pub(crate) fn push(&mut self, e: Event<CloseRef>) {
        if let Some(slot) = self.events.get_mut(usize::from(self.event_count)) {
            *slot = Some(e);
            self.event_count += 1;
        }
    }
}
