//! Rampart's firewall pipeline in safe Rust: it runs over any packet buffer,
//! so every stage is testable without DPDK.
#![forbid(unsafe_code)]

pub mod flow;
