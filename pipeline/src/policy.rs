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

/// A policy that can never match: an earlier one, evaluated before it,
/// matches every packet it does (as Junos's `commit check` warns of
/// shadowed policies). `policy` and `by` index [`Config::policies`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shadowed {
    pub policy: usize,
    pub by: usize,
}

impl Shadowed {
    /// The warning an operator reads, naming both policies.
    pub fn warning(&self, config: &Config) -> String {
        let name = |i: usize| &config.policies[i].name;
        format!(
            "policy {:?} can never match: policy {:?} before it matches every packet it would (same zones, sources, destinations and applications or wider)",
            name(self.policy),
            name(self.by)
        )
    }
}

/// The shadow warnings of `config`, at most `max` of them and then one
/// line saying how many more (`rampart check-config` lists them all).
pub fn shadow_warnings(config: &Config, max: usize) -> Vec<String> {
    let all = shadowed(config);
    let mut out: Vec<String> = all.iter().take(max).map(|s| s.warning(config)).collect();
    if all.len() > max {
        out.push(format!(
            "{} more policies can never match (rampart check-config lists them all)",
            all.len() - max
        ));
    }
    out
}

/// Earlier policies each policy is compared with, besides every earlier
/// one open to any source and destination: bounds the check to linear
/// time on a config of 20,000 policies.
const SHADOW_WINDOW: usize = 256;

/// The shadowed policies of `config`, each with the policy that shadows
/// it. Conservative: every warning is certain, not every shadow is found.
/// A policy is compared with the [`SHADOW_WINDOW`] policies before it and
/// with every earlier policy open to any address (the usual culprits: a
/// broad rule above narrow ones); one covered only by several earlier
/// policies together, or by prefixes that cover it only together, is not
/// reported. Audit policies shadow nothing (what they match goes on to
/// the next policy).
pub fn shadowed(config: &Config) -> Vec<Shadowed> {
    use crate::flow::Prefix;
    let terms: Vec<Vec<crate::config::AppMatch>> = config
        .policies
        .iter()
        .map(|p| {
            p.applications
                .iter()
                .flat_map(|&i| config.applications[i].terms.iter().copied())
                .collect()
        })
        .collect();
    let mut open_to_any: Vec<usize> = Vec::new();
    let mut out = Vec::new();
    for b in 0..config.policies.len() {
        let near = b.saturating_sub(SHADOW_WINDOW)..b;
        let far = open_to_any.iter().copied().filter(|a| !near.contains(a));
        if let Some(by) = far
            .chain(near.clone())
            .find(|&a| covers(config, &terms, a, b))
        {
            out.push(Shadowed { policy: b, by });
        }
        let p = &config.policies[b];
        if p.source.contains(&Prefix::ANY) && p.destination.contains(&Prefix::ANY) {
            open_to_any.push(b);
        }
    }
    out
}

/// Policy `a` (earlier) matches every packet policy `b` matches, and is
/// evaluated before it; `terms` are each policy's application terms.
fn covers(config: &Config, terms: &[Vec<crate::config::AppMatch>], a: usize, b: usize) -> bool {
    use crate::flow::Prefix;
    let (pa, pb) = (&config.policies[a], &config.policies[b]);
    let zone = |za: Option<usize>, zb: Option<usize>| za.is_none() || za == zb;
    // Zone-pair policies are evaluated before global ones: a global
    // policy never shadows a zone-pair one, and config order holds
    // within each list.
    let prefixes = |wide: &[Prefix], narrow: &[Prefix]| {
        narrow
            .iter()
            .all(|n| wide.iter().any(|w| w.len <= n.len && w.contains(n.addr)))
    };
    let apps = || {
        terms[b].iter().all(|n| {
            terms[a].iter().any(|w| {
                let range = |w: crate::config::PortRange, n: crate::config::PortRange| {
                    w.lo <= n.lo && n.hi <= w.hi
                };
                (w.protocol.is_none() || w.protocol == n.protocol)
                    && range(w.src_ports, n.src_ports)
                    && range(w.dst_ports, n.dst_ports)
                    && (w.icmp_type.is_none() || w.icmp_type == n.icmp_type)
                    && (w.icmp_code.is_none() || w.icmp_code == n.icmp_code)
            })
        })
    };
    !pa.audit
        && pa.global == pb.global
        && zone(pa.from_zone, pb.from_zone)
        && zone(pa.to_zone, pb.to_zone)
        && prefixes(&pa.source, &pb.source)
        && prefixes(&pa.destination, &pb.destination)
        && apps()
}

#[cfg(test)]
mod shadow_tests {
    use super::*;

    fn config(policies: &str) -> Config {
        let text = format!(
            r#"
[[interface]]
name = "ge-0/0/0"
device = "net_null0"
zone = "untrust"
[zone.untrust]
[zone.trust]
[zone.dmz]
[address-book]
web = ["192.0.2.0/24"]
web-one = ["192.0.2.80/32"]
{policies}"#
        );
        Config::from_str_named(&text, "shadow.toml").unwrap()
    }

    fn policy(name: &str, zones: (&str, &str), dst: &str, apps: &str, extra: &str) -> String {
        format!(
            "[[policy]]\nname = \"{name}\"\nfrom-zone = \"{}\"\nto-zone = \"{}\"\nsource-address = [\"any\"]\ndestination-address = [\"{dst}\"]\napplication = [{apps}]\nthen = \"permit\"\n{extra}\n",
            zones.0, zones.1
        )
    }

    fn names(c: &Config) -> Vec<(String, String)> {
        shadowed(c)
            .into_iter()
            .map(|s| {
                (
                    c.policies[s.policy].name.clone(),
                    c.policies[s.by].name.clone(),
                )
            })
            .collect()
    }

    #[test]
    fn a_policy_an_earlier_one_covers_is_reported_with_it() {
        let ut = ("untrust", "trust");
        let http = "\"junos-http\"";
        let c = config(
            &[
                policy("allow-web", ut, "web", http, ""),
                policy("allow-web-one", ut, "web-one", http, ""),
                policy("allow-any-web", ut, "any", "\"any\"", ""),
                policy("web-to-dmz", ("untrust", "dmz"), "web-one", http, ""),
            ]
            .concat(),
        );
        assert_eq!(
            names(&c),
            [("allow-web-one".to_owned(), "allow-web".to_owned())],
            "a narrower destination behind a wider one, same zones and application"
        );
    }

    /// A broad policy shadows narrow ones however far below it they are;
    /// a config of 20,000 policies is checked in linear time.
    #[test]
    fn a_broad_policy_shadows_far_below_and_many_policies_stay_linear() {
        let ut = ("untrust", "trust");
        let mut text = policy("allow-all", ut, "any", "\"any\"", "");
        for i in 0..20_000u32 {
            text.push_str(&policy(
                &format!("p{i}"),
                ut,
                &format!("10.{}.{}.0/24", i >> 8, i & 255),
                "\"junos-http\"",
                "",
            ));
        }
        let c = config(&text);
        let found = shadowed(&c);
        assert_eq!(found.len(), 20_000);
        assert!(found.iter().all(|s| s.by == 0));
        assert!(found[19_999]
            .warning(&c)
            .contains("\"p19999\" can never match: policy \"allow-all\""));
    }

    #[test]
    fn wider_later_policies_audit_and_other_zones_are_not_shadowed() {
        let ut = ("untrust", "trust");
        let http = "\"junos-http\"";
        let c = config(
            &[
                policy("one", ut, "web-one", http, ""),
                policy("wider", ut, "web", http, ""),
                policy(
                    "more-apps",
                    ut,
                    "web-one",
                    "\"junos-http\", \"junos-https\"",
                    "",
                ),
                policy("other-zone", ("untrust", "dmz"), "web-one", http, ""),
            ]
            .concat(),
        );
        assert!(names(&c).is_empty(), "{:?}", names(&c));
        let audit = config(&[
            "[[policy]]\nname = \"watch\"\nfrom-zone = \"untrust\"\nto-zone = \"trust\"\nsource-address = [\"any\"]\ndestination-address = [\"any\"]\napplication = [\"any\"]\nthen = \"deny\"\naudit = true\n".to_owned(),
            policy("allow-web", ut, "web", http, ""),
        ]
        .concat());
        assert!(
            names(&audit).is_empty(),
            "an audit policy lets what it matches go on"
        );
    }
}
