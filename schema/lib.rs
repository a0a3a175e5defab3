//! Rust bindings of the Rampart event stream schema (`events.fbs`),
//! generated at build time by flatc 25.12.19 (built by the `flatc-fork`
//! crate) into `OUT_DIR`. Nothing here is hand-written except this file:
//! the safe API lives in `rampart-events`, which forbids `unsafe`; the
//! generated accessors use `unsafe` internally, so they live in this crate.

#![allow(
    clippy::all,
    clippy::pedantic,
    unused_imports,
    non_snake_case,
    non_camel_case_types,
    dead_code,
    mismatched_lifetime_syntaxes,
    unsafe_op_in_unsafe_fn
)]

include!(concat!(env!("OUT_DIR"), "/events_generated.rs"));

pub use rampart::events as fb;

/// Path of the flatc binary that generated these bindings (for tests that
/// generate other languages from the same schema).
pub const FLATC: &str = env!("RAMPART_FLATC");
/// Absolute path of the schema file.
pub const SCHEMA: &str = env!("RAMPART_SCHEMA");
