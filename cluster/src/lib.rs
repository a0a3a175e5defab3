//! Rampart's high-availability sync protocol, sans-IO (issue 27): the
//! messages two nodes exchange over their sync link ([`wire`]), their
//! reliable delivery ([`ftfw`], conntrackd's FT-FW: sequence numbers,
//! acknowledgments in windows, NACKs of gaps, a bulk resync when a gap is
//! older than the resend queue), and the active/standby election
//! ([`role`]: heartbeats on the sync link and on a second heartbeat link, a
//! takeover only when both are silent), put together in one node's side
//! of the link ([`node`]: what to send for each session change and
//! heartbeat, what to install or remove for each datagram, a bulk sync
//! for a standby that joins or yields). The transport is a kernel UDP socket on
//! the control plane (no DPDK port is spent on it, and a test can put it
//! on a veth or drop a share of it with netem); this crate never touches
//! a socket or a clock, so every rule of the protocol is tested here.

#![forbid(unsafe_code)]

pub mod ftfw;
pub mod node;
pub mod role;
pub mod wire;
