//! First-match packet classification for policies, built once on the
//! control plane and queried on the hot path without allocating.
//!
//! A rule is source prefixes x destination prefixes x applications; each
//! application match (protocol, ports or ICMP type/code) becomes one
//! sub-rule, numbered in rule order. Every field is cut into elementary
//! intervals, each holding a bitset of the sub-rules it satisfies
//! (the bit-vector scheme of Lakshman and Stiliadis): a lookup is one binary
//! search per field and a word-wise AND of five bitsets, and the lowest set
//! bit is the first matching rule. The cost grows with rules/64, not with
//! rules, so ten thousand policies stay cheap; memory is
//! `intervals x sub-rules / 8` bytes per field (see [`Classifier::memory_bytes`]).
//!
//! Fields: source and destination address (IPv4 mapped into IPv6, see
//! [`crate::flow`]), protocol, and two 16-bit keys: source and destination
//! port for TCP/UDP, `type << 8 | code` and 0 for ICMP/ICMPv6.

pub use crate::config::{AppMatch, PortRange};
use crate::flow::{proto, Addr, Prefix};

/// A rule: any source prefix, any destination prefix, any application
/// (an empty `apps` list means any application).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub src: Vec<Prefix>,
    pub dst: Vec<Prefix>,
    pub apps: Vec<AppMatch>,
}

/// What is looked up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Query {
    pub src: Addr,
    pub dst: Addr,
    pub protocol: u8,
    pub src_port: u16,
    pub dst_port: u16,
    pub icmp_type: u8,
    pub icmp_code: u8,
}

fn is_icmp(protocol: u8) -> bool {
    protocol == proto::ICMP || protocol == proto::ICMPV6
}

impl Query {
    /// The two 16-bit keys (ports, or ICMP type/code).
    #[inline]
    fn keys(&self) -> (u16, u16) {
        if is_icmp(self.protocol) {
            (((self.icmp_type as u16) << 8) | self.icmp_code as u16, 0)
        } else {
            (self.src_port, self.dst_port)
        }
    }
}

/// The ranges an application match covers on the two 16-bit keys.
fn key_ranges(app: &AppMatch) -> (PortRange, PortRange) {
    match app.protocol {
        Some(p) if is_icmp(p) => {
            let a = match (app.icmp_type, app.icmp_code) {
                (None, _) => PortRange::ANY,
                (Some(t), None) => PortRange {
                    lo: (t as u16) << 8,
                    hi: ((t as u16) << 8) | 0xff,
                },
                (Some(t), Some(c)) => PortRange::single(((t as u16) << 8) | c as u16),
            };
            (a, PortRange::ANY)
        }
        _ => (app.src_ports, app.dst_ports),
    }
}

/// Whether a query matches one application match.
pub fn app_matches(app: &AppMatch, q: &Query) -> bool {
    if app.protocol.is_some_and(|p| p != q.protocol) {
        return false;
    }
    let (a, b) = key_ranges(app);
    let (ka, kb) = q.keys();
    a.contains(ka) && b.contains(kb)
}

impl Rule {
    /// Straightforward evaluation, the reference the classifier is tested against.
    pub fn matches(&self, q: &Query) -> bool {
        self.src.iter().any(|p| p.contains(q.src))
            && self.dst.iter().any(|p| p.contains(q.dst))
            && (self.apps.is_empty() || self.apps.iter().any(|a| app_matches(a, q)))
    }
}

/// First matching rule by plain iteration.
pub fn classify_linear(rules: &[Rule], q: &Query) -> Option<u32> {
    rules.iter().position(|r| r.matches(q)).map(|i| i as u32)
}

/// One field: sorted interval starts, and a bitset per interval.
struct Field<K> {
    starts: Vec<K>,
    /// `bits[i * words .. (i + 1) * words]` belongs to interval `i`.
    bits: Vec<u64>,
}

impl<K: Copy + Ord> Field<K> {
    /// `ranges[sub]` are the inclusive ranges sub-rule `sub` covers;
    /// `min` is the smallest key and `succ(hi)` the key after `hi` (None at the top).
    fn build(
        ranges: &[Vec<(K, K)>],
        words: usize,
        min: K,
        succ: impl Fn(K) -> Option<K>,
    ) -> Field<K> {
        let mut starts = vec![min];
        for list in ranges {
            for &(lo, hi) in list {
                starts.push(lo);
                if let Some(next) = succ(hi) {
                    starts.push(next);
                }
            }
        }
        starts.sort_unstable();
        starts.dedup();
        let mut bits = vec![0u64; starts.len() * words];
        for (sub, list) in ranges.iter().enumerate() {
            let (w, b) = (sub / 64, 1u64 << (sub % 64));
            for &(lo, hi) in list {
                let first = starts.partition_point(|s| *s < lo);
                let last = starts.partition_point(|s| *s <= hi);
                for i in first..last {
                    bits[i * words + w] |= b;
                }
            }
        }
        Field { starts, bits }
    }

    #[inline]
    fn lookup(&self, key: K, words: usize) -> &[u64] {
        let i = self.starts.partition_point(|s| *s <= key) - 1;
        &self.bits[i * words..(i + 1) * words]
    }
}

fn prefix_range(p: &Prefix) -> (u128, u128) {
    (p.addr.0, p.addr.0 | !Prefix::mask(p.len))
}

/// The compiled classifier (immutable; share it between workers).
pub struct Classifier {
    words: usize,
    /// Sub-rule -> rule index.
    owner: Vec<u32>,
    src: Field<u128>,
    dst: Field<u128>,
    protocol: Field<u8>,
    key_a: Field<u16>,
    key_b: Field<u16>,
}

impl Classifier {
    pub fn build(rules: &[Rule]) -> Classifier {
        let mut owner = Vec::new();
        let (mut src, mut dst, mut protos, mut ka, mut kb) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (r, rule) in rules.iter().enumerate() {
            let apps: &[AppMatch] = if rule.apps.is_empty() {
                &[AppMatch::ANY]
            } else {
                &rule.apps
            };
            let s: Vec<(u128, u128)> = rule.src.iter().map(prefix_range).collect();
            let d: Vec<(u128, u128)> = rule.dst.iter().map(prefix_range).collect();
            for app in apps {
                owner.push(r as u32);
                src.push(s.clone());
                dst.push(d.clone());
                let (a, b) = key_ranges(app);
                protos.push(match app.protocol {
                    Some(p) => vec![(p, p)],
                    None => vec![(0, u8::MAX)],
                });
                ka.push(vec![(a.lo, a.hi)]);
                kb.push(vec![(b.lo, b.hi)]);
            }
        }
        let words = owner.len().div_ceil(64).max(1);
        Classifier {
            words,
            src: Field::build(&src, words, 0, |k: u128| k.checked_add(1)),
            dst: Field::build(&dst, words, 0, |k: u128| k.checked_add(1)),
            protocol: Field::build(&protos, words, 0, |k: u8| k.checked_add(1)),
            key_a: Field::build(&ka, words, 0, |k: u16| k.checked_add(1)),
            key_b: Field::build(&kb, words, 0, |k: u16| k.checked_add(1)),
            owner,
        }
    }

    /// The index of the first rule matching `q`.
    #[inline]
    pub fn classify(&self, q: &Query) -> Option<u32> {
        if self.owner.is_empty() {
            return None;
        }
        let (a, b) = q.keys();
        let w = self.words;
        let fields = [
            self.src.lookup(q.src.0, w),
            self.dst.lookup(q.dst.0, w),
            self.protocol.lookup(q.protocol, w),
            self.key_a.lookup(a, w),
            self.key_b.lookup(b, w),
        ];
        for i in 0..w {
            let m = fields[0][i] & fields[1][i] & fields[2][i] & fields[3][i] & fields[4][i];
            if m != 0 {
                let sub = i * 64 + m.trailing_zeros() as usize;
                return Some(self.owner[sub]);
            }
        }
        None
    }

    pub fn memory_bytes(&self) -> usize {
        8 * (self.src.bits.len()
            + self.dst.bits.len()
            + self.protocol.bits.len()
            + self.key_a.bits.len()
            + self.key_b.bits.len())
            + 16 * (self.src.starts.len() + self.dst.starts.len())
            + 4 * self.owner.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tcp(lo: u16, hi: u16) -> AppMatch {
        AppMatch {
            protocol: Some(proto::TCP),
            dst_ports: PortRange { lo, hi },
            ..AppMatch::ANY
        }
    }

    fn q(src: Addr, dst: Addr, protocol: u8, dport: u16) -> Query {
        Query {
            src,
            dst,
            protocol,
            src_port: 40000,
            dst_port: dport,
            ..Query::default()
        }
    }

    #[test]
    fn first_match_wins_across_fields() {
        let web: Prefix = "10.1.0.0/24".parse().unwrap();
        let rules = vec![
            Rule {
                src: vec![Prefix::ANY],
                dst: vec![web],
                apps: vec![tcp(80, 80)],
            },
            Rule {
                src: vec!["192.0.2.0/24".parse().unwrap()],
                dst: vec![Prefix::ANY],
                apps: vec![],
            },
            Rule {
                src: vec![Prefix::ANY],
                dst: vec![Prefix::ANY],
                apps: vec![AppMatch {
                    protocol: Some(proto::ICMP),
                    icmp_type: Some(8),
                    ..AppMatch::ANY
                }],
            },
        ];
        let c = Classifier::build(&rules);
        let a = Addr::from_ipv4([198, 51, 100, 1]);
        let w = Addr::from_ipv4([10, 1, 0, 5]);
        assert_eq!(c.classify(&q(a, w, proto::TCP, 80)), Some(0));
        assert_eq!(c.classify(&q(a, w, proto::TCP, 81)), None);
        assert_eq!(
            c.classify(&q(Addr::from_ipv4([192, 0, 2, 9]), w, proto::TCP, 80)),
            Some(0)
        );
        assert_eq!(
            c.classify(&q(Addr::from_ipv4([192, 0, 2, 9]), w, proto::UDP, 53)),
            Some(1)
        );
        let ping = Query {
            src: a,
            dst: w,
            protocol: proto::ICMP,
            icmp_type: 8,
            ..Query::default()
        };
        assert_eq!(c.classify(&ping), Some(2));
        let reply = Query {
            icmp_type: 0,
            ..ping
        };
        assert_eq!(c.classify(&reply), None);
    }

    fn arb_prefix() -> impl Strategy<Value = Prefix> {
        prop_oneof![
            Just(Prefix::ANY),
            (any::<[u8; 4]>(), 0u8..=32).prop_map(|(o, l)| Prefix::new(Addr::from_ipv4(o), 96 + l)),
            (any::<[u8; 4]>(), 8u8..=32).prop_map(|(o, l)| Prefix::new(
                Addr::from_ipv4([10, o[1] % 4, o[2] % 4, o[3]]),
                96 + l
            )),
            (any::<[u8; 16]>(), 0u8..=128).prop_map(|(o, l)| Prefix::new(Addr::from_ipv6(o), l)),
        ]
    }

    fn arb_range() -> impl Strategy<Value = PortRange> {
        prop_oneof![
            Just(PortRange::ANY),
            (0u16..100).prop_map(|p| PortRange { lo: p, hi: p }),
            (0u16..100, 0u16..50).prop_map(|(lo, n)| PortRange { lo, hi: lo + n }),
        ]
    }

    fn arb_app() -> impl Strategy<Value = AppMatch> {
        let proto = prop_oneof![
            Just(None),
            Just(Some(proto::TCP)),
            Just(Some(proto::UDP)),
            Just(Some(proto::ICMP))
        ];
        (
            proto,
            arb_range(),
            arb_range(),
            prop::option::of(0u8..10),
            prop::option::of(0u8..3),
        )
            .prop_map(|(p, s, d, t, c)| {
                if p == Some(proto::ICMP) {
                    AppMatch {
                        protocol: p,
                        icmp_type: t,
                        icmp_code: t.and(c),
                        ..AppMatch::ANY
                    }
                } else if p.is_none() {
                    AppMatch::ANY
                } else {
                    AppMatch {
                        protocol: p,
                        src_ports: s,
                        dst_ports: d,
                        ..AppMatch::ANY
                    }
                }
            })
    }

    fn arb_rule() -> impl Strategy<Value = Rule> {
        (
            prop::collection::vec(arb_prefix(), 1..3),
            prop::collection::vec(arb_prefix(), 1..3),
            prop::collection::vec(arb_app(), 0..3),
        )
            .prop_map(|(src, dst, apps)| Rule { src, dst, apps })
    }

    fn arb_addr() -> impl Strategy<Value = Addr> {
        prop_oneof![
            any::<[u8; 4]>().prop_map(Addr::from_ipv4),
            any::<[u8; 4]>().prop_map(|o| Addr::from_ipv4([10, o[1] % 4, o[2] % 4, o[3]])),
            any::<[u8; 16]>().prop_map(Addr::from_ipv6),
        ]
    }

    fn arb_query() -> impl Strategy<Value = Query> {
        (
            arb_addr(),
            arb_addr(),
            prop_oneof![
                Just(proto::TCP),
                Just(proto::UDP),
                Just(proto::ICMP),
                Just(47u8)
            ],
            0u16..160,
            0u16..160,
            0u8..10,
            0u8..3,
        )
            .prop_map(|(src, dst, protocol, sp, dp, t, c)| Query {
                src,
                dst,
                protocol,
                src_port: sp,
                dst_port: dp,
                icmp_type: t,
                icmp_code: c,
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
        #[test]
        fn classifier_agrees_with_linear(rules in prop::collection::vec(arb_rule(), 1..1500),
                                         queries in prop::collection::vec(arb_query(), 200)) {
            let c = Classifier::build(&rules);
            for q in &queries {
                prop_assert_eq!(c.classify(q), classify_linear(&rules, q));
            }
            // Queries aimed at the rules' own prefixes hit more often.
            for r in rules.iter().take(100) {
                let mut q = queries[0];
                q.src = r.src[0].addr;
                q.dst = r.dst[0].addr;
                prop_assert_eq!(c.classify(&q), classify_linear(&rules, &q));
            }
        }
    }
}
