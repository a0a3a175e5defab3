//! Security policies: on a session miss, the zone pair's policies in order,
//! then the global policies, then the default policy.
//!
//! Each zone pair (and the global list) is compiled into a
//! [`crate::classify::Classifier`], so a lookup costs the same with ten
//! rules or ten thousand; [`PolicyTable::lookup_linear`] is the plain
//! in-order evaluation the classifier is tested against.

use crate::classify::{Classifier, Query, Rule};
use crate::config::Config;
use crate::wire::ParsedPacket;

/// The policy that decided, or the default policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyMatch {
    Rule(u32),
    Default,
}

struct Set {
    /// Policy ids in evaluation order; the classifier returns an index here.
    ids: Vec<u32>,
    classifier: Classifier,
}

fn rule_of(config: &Config, id: usize) -> Rule {
    let p = &config.policies[id];
    Rule {
        src: p.source.clone(),
        dst: p.destination.clone(),
        apps: p
            .applications
            .iter()
            .flat_map(|&a| config.applications[a].terms.iter().copied())
            .collect(),
    }
}

pub struct PolicyTable {
    zones: usize,
    /// `pairs[from * zones + to]`: the zone pair's own policies, then the
    /// global policies that apply to that pair (a global policy may still
    /// name one of its zones).
    pairs: Vec<[Option<Set>; 2]>,
    rules: Vec<Rule>,
}

impl PolicyTable {
    pub fn compile(config: &Config) -> PolicyTable {
        let zones = config.zones.len();
        let rules: Vec<Rule> = (0..config.policies.len())
            .map(|i| rule_of(config, i))
            .collect();
        let build = |ids: Vec<u32>| -> Option<Set> {
            if ids.is_empty() {
                return None;
            }
            let list: Vec<Rule> = ids.iter().map(|&i| rules[i as usize].clone()).collect();
            Some(Set {
                classifier: Classifier::build(&list),
                ids,
            })
        };
        let mut pairs = Vec::with_capacity(zones * zones);
        for from in 0..zones {
            for to in 0..zones {
                let [own, global] = pair_policies(config, from, to);
                pairs.push([build(own), build(global)]);
            }
        }
        PolicyTable {
            zones,
            pairs,
            rules,
        }
    }

    /// The policy for a new session from zone `from` to zone `to`.
    #[inline]
    pub fn lookup(&self, from: usize, to: usize, pkt: &ParsedPacket) -> PolicyMatch {
        let q = query(pkt);
        if let Some(sets) = self.pairs.get(from * self.zones + to) {
            for set in sets.iter().flatten() {
                if let Some(i) = set.classifier.classify(&q) {
                    return PolicyMatch::Rule(set.ids[i as usize]);
                }
            }
        }
        PolicyMatch::Default
    }

    /// [`PolicyTable::lookup`] for a batch of queries of one zone pair
    /// (at most [`crate::prefetch::BURST`]): each classifier runs over all
    /// of them at once, so its cache misses overlap.
    pub fn lookup_batch<P: crate::prefetch::Prefetch>(
        &self,
        from: usize,
        to: usize,
        queries: &[Query],
        out: &mut [PolicyMatch],
    ) {
        let n = queries.len().min(out.len()).min(crate::prefetch::BURST);
        out[..n].fill(PolicyMatch::Default);
        let Some(sets) = self.pairs.get(from * self.zones + to) else {
            return;
        };
        // The queries still unmatched (all, before the first set).
        let mut todo = [0u8; crate::prefetch::BURST];
        let mut left = n;
        for (k, t) in todo[..n].iter_mut().enumerate() {
            *t = k as u8;
        }
        let mut batch = [Query::default(); crate::prefetch::BURST];
        let mut found = [None; crate::prefetch::BURST];
        for (s, set) in sets.iter().enumerate() {
            let Some(set) = set else { continue };
            if left == 0 {
                break;
            }
            if s == 0 {
                // The pair's own policies see every query: no copy.
                set.classifier
                    .classify_batch::<P>(&queries[..n], &mut found[..n]);
            } else {
                for (b, &k) in batch[..left].iter_mut().zip(&todo[..left]) {
                    *b = queries[k as usize];
                }
                set.classifier
                    .classify_batch::<P>(&batch[..left], &mut found[..left]);
            }
            let mut still = 0;
            for j in 0..left {
                let k = todo[j];
                match found[j] {
                    Some(i) => out[k as usize] = PolicyMatch::Rule(set.ids[i as usize]),
                    None => {
                        todo[still] = k;
                        still += 1;
                    }
                }
            }
            left = still;
        }
    }

    /// The policy after `after` (which matched) for the same packet: the
    /// next one in the same evaluation order that matches, or the default.
    /// Walks the rules one by one: only a packet that an audit-mode policy
    /// matched takes this path.
    pub fn lookup_after(
        &self,
        from: usize,
        to: usize,
        pkt: &ParsedPacket,
        after: u32,
    ) -> PolicyMatch {
        let q = query(pkt);
        let Some(sets) = self.pairs.get(from * self.zones + to) else {
            return PolicyMatch::Default;
        };
        sets.iter()
            .flatten()
            .flat_map(|set| set.ids.iter())
            .skip_while(|&&id| id != after)
            .skip(1)
            .find(|&&id| self.rules[id as usize].matches(&q))
            .map_or(PolicyMatch::Default, |&id| PolicyMatch::Rule(id))
    }

    /// Reference evaluation: the same policies in the same order, matched
    /// one by one without the classifier.
    pub fn lookup_linear(
        &self,
        config: &Config,
        from: usize,
        to: usize,
        pkt: &ParsedPacket,
    ) -> PolicyMatch {
        let q = query(pkt);
        for ids in pair_policies(config, from, to) {
            if let Some(&id) = ids.iter().find(|&&id| self.rules[id as usize].matches(&q)) {
                return PolicyMatch::Rule(id);
            }
        }
        PolicyMatch::Default
    }
}

/// Policy ids that apply from `from` to `to`: the pair's own, then global.
fn pair_policies(config: &Config, from: usize, to: usize) -> [Vec<u32>; 2] {
    let own = config
        .policies
        .iter()
        .enumerate()
        .filter(|(_, p)| !p.global && p.from_zone == Some(from) && p.to_zone == Some(to))
        .map(|(i, _)| i as u32)
        .collect();
    let global = config
        .policies
        .iter()
        .enumerate()
        .filter(|(_, p)| {
            p.global && p.from_zone.is_none_or(|z| z == from) && p.to_zone.is_none_or(|z| z == to)
        })
        .map(|(i, _)| i as u32)
        .collect();
    [own, global]
}

/// The classifier query of a packet: addresses, protocol, ports, ICMP
/// type/code (a non-first fragment has ports 0 and matches only rules that
/// do not look at ports).
#[inline]
pub fn query(pkt: &ParsedPacket) -> Query {
    Query {
        src: pkt.src,
        dst: pkt.dst,
        protocol: pkt.protocol,
        src_port: pkt.src_port,
        dst_port: pkt.dst_port,
        icmp_type: pkt.icmp_type,
        icmp_code: pkt.icmp_code,
    }
}
