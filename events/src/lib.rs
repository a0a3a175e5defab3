//! Rampart event export: records, encoder, counters, drain and fan-out,
//! decoders and renderers. Safe Rust, no DPDK: the `rampart` binary glues
//! DPDK rings (as [`EventSource`]s) and the pipeline to it.
//!
//! * Worker side (hot path, allocation- and format-free): [`Encoder`] into an
//!   [`EventSlot`], [`WorkerEventCounters`] / [`SharedCounters`],
//!   [`RateLimiter`].
//! * Control plane: [`Hub`] drains sources round-robin and fans records out
//!   to Unix-socket consumers with exact loss accounting.
//! * Consumers: [`decode`], [`NameCache`], [`render`] (json, junos,
//!   junos-sd, droplog), [`syslog`] forwarding, [`consume`].
//!
//! The wire contract is `schema/events.fbs` (bindings in `rampart-schema`).

#![forbid(unsafe_code)]

pub mod aggregate;
pub mod client;
pub mod control;
pub mod counters;
pub mod decode;
pub mod droplog;
pub mod encode;
pub mod episodes;
pub mod filter;
mod fixed_index;
pub mod format;
pub mod hub;
pub mod json;
pub mod junos;
pub mod render;
pub mod request;
pub mod sockfile;
pub mod syslog;
mod text;
pub mod types;

pub use aggregate::{AggregateKey, Aggregator, Folded};
pub use client::{consume, consume_frames, ConsumeEvent, ConsumeOptions, FrameEvent};
pub use control::{ControlEncoder, SCHEMA_VERSION};
pub use counters::{
    RateLimiter, SharedCounters, TypeCounters, WorkerCountersSnapshot, WorkerEventCounters,
};
pub use decode::{
    decode, decode_size_prefixed, decode_size_prefixed_verified, decode_unprefixed, read_frame,
    ConfigReject, DecodeError, Hello, LossRecord, NameCache, NameTable, PacketEvent, Record,
    SessionIdentity, StatsRecord,
};
pub use encode::{Encoder, EventSlot, MAX_SNIPPET, SLOT_CAPACITY, SLOT_SIZE};
pub use episodes::{EpisodeReport, EpisodeTracker};
pub use filter::{FlowFacts, FlowFilter, IpPrefix, FILTER_KEYS};
pub use hub::{
    ConnectionCounters, ConsumerStats, CutOff, CutOffReason, EventSource, Hub, HubConfig, HubError,
    HubStats,
};
pub use render::{render, Format};
pub use request::{parse_request, ControlCommand, RequestError, SessionCursor, SessionRequest};
pub use sockfile::{
    resolve_group, write_file_atomic, write_file_atomic_mode, SockFileError, SocketFile,
};
pub use types::{
    ipv4_mapped, CloseReason, EpisodePhase, Event, EventType, FilterAction, FilterDirection,
    FilterLog, FilterName, InterfaceName, Names, PacketMeta, PolicyDeny, PolicyName, Repeat,
    ScreenDrop, ScreenEpisode, ScreenOption, SessionClose, SessionOpen, SourceCount, ZoneName,
    MAX_TOP_SOURCES, NO_ID16, NO_ID32,
};

/// The schema source, for tools that generate readers in other languages.
pub const SCHEMA_FBS: &str = include_str!("../../schema/events.fbs");
