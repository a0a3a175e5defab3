//! Stateless firewall filters: terms matched in order, the first match
//! decides; a packet no term matches is discarded, as at the end of every
//! Junos firewall filter (reason `filter-implicit-discard`).
//!
//! Conditions that need the L4 header (ports, TCP flags, ICMP type/code)
//! never match a non-first fragment, which carries none.

use crate::config::{AddrMatch, Filter, FilterAction, TermMatch};
use crate::wire::ParsedPacket;

/// The term that decided, or the implicit discard at the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterOutcome {
    Term(u16),
    ImplicitDiscard,
}

/// Evaluates `filter` on one packet.
pub fn evaluate(filter: &Filter, pkt: &ParsedPacket) -> FilterOutcome {
    for (i, term) in filter.terms.iter().enumerate() {
        if term_matches(&term.from, pkt) {
            return FilterOutcome::Term(i as u16);
        }
    }
    FilterOutcome::ImplicitDiscard
}

/// The action of an outcome.
pub fn action(filter: &Filter, outcome: FilterOutcome) -> FilterAction {
    match outcome {
        FilterOutcome::Term(i) => filter.terms[i as usize].then.action,
        FilterOutcome::ImplicitDiscard => FilterAction::Discard,
    }
}

pub fn term_matches(m: &TermMatch, pkt: &ParsedPacket) -> bool {
    fn any<T: Copy>(list: &Option<Vec<T>>, f: impl Fn(T) -> bool) -> bool {
        list.as_ref().is_none_or(|l| l.iter().any(|v| f(*v)))
    }
    let addr_ok = |list: &Option<Vec<AddrMatch>>, addr| {
        list.as_ref()
            .is_none_or(|l| AddrMatch::matches_list(l, addr))
    };
    if !addr_ok(&m.source_address, pkt.src) || !addr_ok(&m.destination_address, pkt.dst) {
        return false;
    }
    if !any(&m.protocol, |p| p == pkt.protocol) || !any(&m.dscp, |d| d == pkt.dscp) {
        return false;
    }
    if let Some(want) = m.is_fragment {
        if want != pkt.frag.is_fragment {
            return false;
        }
    }
    if let Some(want) = m.first_fragment {
        if want != pkt.frag.is_first_fragment {
            return false;
        }
    }
    let needs_l4 = m.source_port.is_some()
        || m.destination_port.is_some()
        || m.tcp_flags.is_some()
        || m.icmp_type.is_some()
        || m.icmp_code.is_some();
    if !needs_l4 {
        return true;
    }
    if !pkt.has_l4 {
        return false;
    }
    any(&m.source_port, |r| r.contains(pkt.src_port))
        && any(&m.destination_port, |r| r.contains(pkt.dst_port))
        && m.tcp_flags.is_none_or(|f| {
            pkt.protocol == crate::flow::proto::TCP && f.matches(pkt.tcp_flags.0 as u8)
        })
        && any(&m.icmp_type, |t| t == pkt.icmp_type && is_icmp(pkt))
        && any(&m.icmp_code, |c| c == pkt.icmp_code && is_icmp(pkt))
}

fn is_icmp(pkt: &ParsedPacket) -> bool {
    pkt.protocol == crate::flow::proto::ICMP || pkt.protocol == crate::flow::proto::ICMPV6
}
