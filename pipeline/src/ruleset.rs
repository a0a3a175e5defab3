//! What one config generation compiles to ([`Ruleset`]): per-interface
//! facts, screen profiles, the policy table and each policy's verdict,
//! flow timeouts, and the per-rule hit counters of the generation.
//! Immutable and shared by every worker; a reload builds a new one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::config::{Config, PolicyAction};
use crate::decision::RuleRef;
use crate::filter::FilterOutcome;
use crate::policy::{PolicyMatch, PolicyTable};
use crate::screen::{self, ScreenOption, ScreenProfile};
use crate::session::Timeouts;

/// Per-interface facts the pipeline needs, by interface id.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Port {
    pub zone: u16,
    pub peer: Option<u16>,
    pub input_filter: Option<u16>,
    pub output_filter: Option<u16>,
    /// IP MTU: the largest IP packet the port may send.
    pub mtu: u16,
}

/// Everything compiled from one config generation; immutable and shared
/// by all workers (a reload builds a new one and swaps it in).
pub struct Ruleset {
    pub generation: u32,
    pub config: Arc<Config>,
    pub(crate) ports: Vec<Port>,
    /// Screen profile per zone.
    pub(crate) zone_screen: Vec<Option<u16>>,
    pub screens: Vec<ScreenProfile>,
    pub policies: PolicyTable,
    /// What each policy does, by policy id: 4 bytes per policy next to
    /// each other, so a lookup does not touch the config's `Policy` (names,
    /// address lists) on the hot path.
    pub(crate) verdicts: Vec<PolicyVerdict>,
    /// `audit_pairs[from * zones + to]`: the zone pair is in audit mode.
    pub(crate) audit_pairs: Vec<bool>,
    pub timeouts: Timeouts,
    pub hits: RuleHits,
}

impl Ruleset {
    pub fn compile(config: Arc<Config>, generation: u32) -> Ruleset {
        let ports = config
            .interfaces
            .iter()
            .map(|i| Port {
                zone: i.zone as u16,
                peer: i.peer.map(|p| p as u16),
                input_filter: i.input_filter.map(|f| f as u16),
                output_filter: i.output_filter.map(|f| f as u16),
                mtu: i.mtu,
            })
            .collect();
        let zone_screen = config
            .zones
            .iter()
            .map(|z| z.screen.map(|s| s as u16))
            .collect();
        let screens = config
            .screens
            .iter()
            .enumerate()
            .map(|(i, s)| compile_screen(i as u16, s))
            .collect();
        let t = &config.flow.timeouts;
        let s = |secs: u32| secs as u64 * 1_000_000_000;
        let timeouts = Timeouts {
            tcp_initial_ns: s(t.tcp_initial),
            tcp_established_ns: s(t.tcp_established),
            tcp_closing_ns: s(t.tcp_closing),
            udp_ns: s(t.udp),
            icmp_ns: s(t.icmp),
            other_ns: s(t.other),
        };
        let zones = config.zones.len();
        let mut audit_pairs = vec![false; zones * zones];
        for &(from, to) in &config.audit_zone_pairs {
            audit_pairs[from * zones + to] = true;
        }
        Ruleset {
            generation,
            audit_pairs,
            hits: RuleHits::new(&config, config.dataplane.workers as usize),
            policies: PolicyTable::compile(&config),
            verdicts: config
                .policies
                .iter()
                .map(|p| PolicyVerdict {
                    action: p.action,
                    log: p.log,
                    audit: p.audit,
                })
                .collect(),
            config,
            ports,
            zone_screen,
            screens,
            timeouts,
        }
    }

    /// What the flow stage reads and writes for a policy match: its
    /// verdict and this worker's hit counter (a burst prefetches them
    /// once its policy lookups are done; with thousands of policies both
    /// are cache misses).
    pub(crate) fn policy_lines(&self, worker: usize, m: PolicyMatch) -> [Option<*const u8>; 2] {
        let verdict = match m {
            PolicyMatch::Rule(id) => self
                .verdicts
                .get(id as usize)
                .map(|v| (v as *const PolicyVerdict).cast()),
            PolicyMatch::Default => None,
        };
        [
            verdict,
            self.hits.slot_addr(worker, self.hits.policy_slot(m)),
        ]
    }

    /// The id events give the default policy: the one after the last
    /// policy (as in the name tables).
    pub fn default_policy_id(&self) -> u32 {
        self.config.policies.len() as u32
    }

    /// The rule a policy id of this generation names.
    pub fn policy_rule(&self, id: u32) -> RuleRef {
        if id < self.default_policy_id() {
            RuleRef::Policy(id)
        } else {
            RuleRef::DefaultPolicy
        }
    }

    pub fn policy_name(&self, rule: RuleRef) -> String {
        let c = &self.config;
        match rule {
            RuleRef::None => String::new(),
            RuleRef::Policy(p) => c.policies[p as usize].name.clone(),
            RuleRef::DefaultPolicy => "default-policy".into(),
            RuleRef::FilterTerm { filter, term } => {
                let f = &c.filters[filter as usize];
                format!("{}/{}", f.name, f.terms[term as usize].name)
            }
            RuleRef::FilterEnd { filter } => format!("{}/(end)", c.filters[filter as usize].name),
            RuleRef::Screen { profile } => c.screens[profile as usize].name.clone(),
        }
    }
}

fn compile_screen(id: u16, s: &crate::config::Screen) -> ScreenProfile {
    let mut p = ScreenProfile::new(id, s.name.clone());
    for option in ScreenOption::ALL {
        if s.stateless(option) == Some(true) {
            p.enable(option);
        }
    }
    p.syn_flood = s.syn_flood.map(|f| screen::SynFloodLimits {
        attack: f.attack_threshold,
        source: f.source_threshold,
        destination: f.destination_threshold,
    });
    p.icmp_flood = s.icmp_flood.map(|t| t.threshold);
    p.udp_flood = s.udp_flood.map(|t| t.threshold);
    p.port_scan_us = s.port_scan.map(|t| t.threshold);
    p.ip_sweep_us = s.ip_sweep.map(|t| t.threshold);
    if let Some(l) = s.limit_session {
        p.limit_session_source = l.source_ip_based;
        p.limit_session_destination = l.destination_ip_based;
    }
    p.alarm_without_drop = s.alarm_without_drop;
    p
}

/// Per-rule hit counters of one config generation: a row per worker, each
/// written only by its worker (load + store, no locked instructions), read
/// and summed by the control plane (`rampart stats --rules`). A reload
/// starts a generation with fresh counters.
pub struct RuleHits {
    /// Slots per worker: policies, the default policy, then each filter's
    /// terms followed by its implicit discard.
    pub(crate) row: usize,
    pub(crate) policies: usize,
    pub(crate) filter_base: Vec<usize>,
    pub(crate) slots: Box<[AtomicU64]>,
}

impl RuleHits {
    pub(crate) fn new(config: &Config, workers: usize) -> RuleHits {
        let policies = config.policies.len() + 1;
        let mut filter_base = Vec::with_capacity(config.filters.len());
        let mut row = policies;
        for f in &config.filters {
            filter_base.push(row);
            row += f.terms.len() + 1;
        }
        RuleHits {
            row,
            policies,
            filter_base,
            slots: (0..row * workers.max(1))
                .map(|_| AtomicU64::new(0))
                .collect(),
        }
    }

    #[inline]
    pub(crate) fn bump(&self, worker: usize, slot: usize) {
        if let Some(a) = self.slots.get(worker * self.row + slot) {
            a.store(a.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        }
    }

    /// Where a worker's counter of `slot` is (for a prefetch).
    pub(crate) fn slot_addr(&self, worker: usize, slot: usize) -> Option<*const u8> {
        let a = self.slots.get(worker * self.row + slot)?;
        Some((a as *const AtomicU64).cast())
    }

    pub(crate) fn policy_slot(&self, m: PolicyMatch) -> usize {
        match m {
            PolicyMatch::Rule(id) => id as usize,
            PolicyMatch::Default => self.policies - 1,
        }
    }

    pub(crate) fn term_slot(&self, filter: u16, outcome: FilterOutcome, terms: usize) -> usize {
        self.filter_base[filter as usize]
            + match outcome {
                FilterOutcome::Term(t) => t as usize,
                FilterOutcome::ImplicitDiscard => terms,
            }
    }

    pub(crate) fn total(&self, slot: usize) -> u64 {
        self.slots
            .chunks(self.row)
            .map(|row| row[slot].load(Ordering::Relaxed))
            .sum()
    }

    /// Hits of a policy (summed over workers).
    pub fn policy(&self, m: PolicyMatch) -> u64 {
        self.total(self.policy_slot(m))
    }

    /// Hits of a filter term, or of the filter's implicit discard.
    pub fn term(&self, filter: u16, outcome: FilterOutcome, terms: usize) -> u64 {
        self.total(self.term_slot(filter, outcome, terms))
    }
}

/// What a policy does, as the hot path reads it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PolicyVerdict {
    pub(crate) action: PolicyAction,
    pub(crate) log: crate::config::PolicyLog,
    /// Audit mode: logged, not enforced.
    pub(crate) audit: bool,
}
