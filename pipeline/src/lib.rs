//! Rampart's firewall pipeline in safe Rust: it runs over any packet buffer,
//! so every stage is testable without DPDK.
#![forbid(unsafe_code)]

mod burst;
pub mod classify;
pub mod config;
pub mod decision;
pub mod engine;
pub mod filter;
pub mod flow;
pub mod frag;
pub mod pcap;
pub mod policy;
pub mod prefetch;
pub mod ruleset;
pub mod screen;
pub mod session;
pub mod session_sync;
pub mod tcp_window;
pub mod vector;
pub mod wire;
