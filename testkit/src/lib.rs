//! Test support for Rampart's tests, fuzz seeds and benchmarks: nothing
//! here ships in the dataplane. [`traffic`] builds deterministic frames,
//! [`demo`] is the demo capture of the `rampart` binary (the same source
//! file, compiled here too), [`configs`] holds the test configs that more
//! than one test spells out.

pub mod configs;
#[path = "../../src/demo/capture.rs"]
pub mod demo;
pub mod traffic;
