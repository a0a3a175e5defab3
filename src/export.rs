//! The event export glue: a worker turns pipeline events into flatbuffers
//! records on its own DPDK ring (never blocking: a full ring drops the
//! record and counts it), and the control plane drains those rings into
//! the event hub. Also the name tables a consumer needs.

use std::sync::Arc;

use rampart_core::{RingConsumer, RingProducer};
use rampart_events as ev;
use rampart_pipeline::config::Config;
use rampart_pipeline::engine::{Decision, Event, FilterDirection};
use rampart_pipeline::flow::Addr;

/// Name tables of a config generation; policy id `policies.len()` is the
/// default policy.
pub fn names(config: &Config) -> ev::Names {
    let zone_of = |z: usize| z as u16;
    let mut policies: Vec<ev::PolicyName> = config
        .policies
        .iter()
        .map(|p| ev::PolicyName {
            name: p.name.clone(),
            from_zone: p.from_zone.map_or(ev::NO_ID16, zone_of),
            to_zone: p.to_zone.map_or(ev::NO_ID16, zone_of),
        })
        .collect();
    policies.push(ev::PolicyName {
        name: "default-policy".into(),
        from_zone: ev::NO_ID16,
        to_zone: ev::NO_ID16,
    });
    ev::Names {
        zones: config
            .zones
            .iter()
            .map(|z| ev::ZoneName {
                name: z.name.clone(),
                screen: z.screen.map_or(ev::NO_ID16, |s| s as u16),
            })
            .collect(),
        interfaces: config
            .interfaces
            .iter()
            .map(|i| ev::InterfaceName {
                name: i.name.clone(),
                zone: i.zone as u16,
            })
            .collect(),
        policies,
        filters: config
            .filters
            .iter()
            .map(|f| ev::FilterName {
                name: f.name.clone(),
                terms: f.terms.iter().map(|t| t.name.clone()).collect(),
            })
            .collect(),
        screens: config.screens.iter().map(|s| s.name.clone()).collect(),
        applications: config.applications.iter().map(|a| a.name.clone()).collect(),
    }
}

/// Per-type rate limits from `[events.rate_limit]`.
pub fn rate_limits(config: &Config) -> [Option<u64>; ev::EventType::COUNT] {
    let r = &config.events.rate_limit;
    ev::EventType::ALL.map(|t| r.get(t).map(u64::from))
}

/// Ring slots a worker reserves at a time for its records: a burst's
/// worth, so a logged deny storm costs one ring reservation and one
/// publication per burst rather than per packet.
const PUBLISH_BATCH: u32 = 32;

/// A worker's side of the export: encoder, rate limiter, counters, ring.
pub struct WorkerEvents {
    ring: RingProducer<ev::EventSlot>,
    encoder: ev::Encoder,
    limiter: ev::RateLimiter,
    pub counters: Arc<ev::SharedCounters>,
    seq: u64,
    worker: u16,
    generation: u32,
    default_policy: u32,
    snippet_bytes: usize,
}

fn addr16(a: Addr) -> [u8; 16] {
    a.ipv6_octets()
}

impl WorkerEvents {
    pub fn new(
        ring: RingProducer<ev::EventSlot>,
        worker: u16,
        config: &Config,
        generation: u32,
    ) -> WorkerEvents {
        WorkerEvents {
            ring,
            encoder: ev::Encoder::new(),
            limiter: ev::RateLimiter::new(1_000_000_000, rate_limits(config)),
            counters: Arc::new(ev::SharedCounters::new(worker)),
            seq: 0,
            worker,
            generation,
            default_policy: config.policies.len() as u32,
            snippet_bytes: config.events.snippet_bytes as usize,
        }
    }

    /// Encodes and enqueues one event; never blocks. `d` and `frame` are
    /// the decision and packet it came from (absent for aging closes).
    #[inline]
    pub fn emit(&mut self, e: &Event, d: Option<&Decision>, frame: &[u8], now_ns: u64) {
        let (t, record) = match *e {
            Event::PolicyDeny {
                policy,
                reject,
                audit,
                session_id,
                application,
            } => (
                ev::EventType::PolicyDeny,
                ev::Event::PolicyDeny(ev::PolicyDeny {
                    policy: policy.unwrap_or(self.default_policy),
                    reject,
                    audit,
                    session_id,
                    application,
                }),
            ),
            Event::ScreenDrop {
                profile,
                option,
                alarm_only,
            } => {
                // Both enums list the options in INTERFACES.md order (a test
                // pins it), so the discriminant maps them without strings.
                let Some(option) = ev::ScreenOption::from_u8(option as u8) else {
                    return;
                };
                (
                    ev::EventType::ScreenDrop,
                    ev::Event::ScreenDrop(ev::ScreenDrop {
                        screen: profile,
                        option,
                        alarm_only,
                    }),
                )
            }
            Event::FilterLog {
                filter,
                term,
                action,
                direction,
            } => (
                ev::EventType::FilterLog,
                ev::Event::FilterLog(ev::FilterLog {
                    filter,
                    term: term.unwrap_or(ev::NO_ID16),
                    action: match action {
                        rampart_pipeline::config::FilterAction::Accept => ev::FilterAction::Accept,
                        rampart_pipeline::config::FilterAction::Discard => {
                            ev::FilterAction::Discard
                        }
                        rampart_pipeline::config::FilterAction::Reject => ev::FilterAction::Reject,
                    },
                    direction: match direction {
                        FilterDirection::Input => ev::Direction::Input,
                        FilterDirection::Output => ev::Direction::Output,
                    },
                }),
            ),
            Event::SessionOpen {
                session_id,
                policy,
                application,
            } => (
                ev::EventType::SessionOpen,
                ev::Event::SessionOpen(ev::SessionOpen {
                    session_id,
                    policy,
                    application,
                }),
            ),
            Event::SessionClose(c) => (
                ev::EventType::SessionClose,
                ev::Event::SessionClose(ev::SessionClose {
                    session_id: c.session_id,
                    policy: c.policy,
                    reason: c.reason,
                    packets_client: c.packets_client,
                    bytes_client: c.bytes_client,
                    packets_server: c.packets_server,
                    bytes_server: c.bytes_server,
                    elapsed_ns: c.closed_ns.saturating_sub(c.created_ns),
                    session_generation: c.generation,
                    application: c.application,
                }),
            ),
        };
        self.counters.incr_generated(t);
        if !self.limiter.allow(t, now_ns) {
            self.counters.incr_rate_limited(t);
            return;
        }
        let mut meta = ev::PacketMeta {
            ts_ns: now_ns,
            worker: self.worker,
            generation: self.generation,
            egress: ev::NO_ID16,
            to_zone: ev::NO_ID16,
            ..Default::default()
        };
        let mut snippet: &[u8] = &[];
        if let Event::SessionClose(c) = e {
            fill_flow(
                &mut meta,
                c.key.src,
                c.key.dst,
                c.key.src_port,
                c.key.dst_port,
                c.key.protocol,
            );
            meta.ingress = c.ingress;
            meta.egress = c.egress;
            meta.from_zone = c.from_zone;
            meta.to_zone = c.to_zone;
        } else if let Some(d) = d {
            meta.ingress = d.ingress;
            meta.egress = d.egress.unwrap_or(ev::NO_ID16);
            meta.from_zone = d.from_zone;
            meta.to_zone = d.to_zone.unwrap_or(ev::NO_ID16);
            if let Some(p) = d.packet {
                fill_flow(&mut meta, p.src, p.dst, p.src_port, p.dst_port, p.protocol);
                meta.icmp_type = p.icmp_type;
                meta.icmp_code = p.icmp_code;
            }
            if !matches!(e, Event::SessionOpen { .. }) {
                snippet = &frame[..frame.len().min(self.snippet_bytes)];
            }
        }
        self.seq += 1;
        // Encoded straight into the ring's slot, published with the rest
        // of the burst's records (`publish`). The encoder only refuses a
        // record larger than a slot, which the snippet clamp rules out
        // (events' tests check every type and snippet length); were it to
        // happen, the record would be counted with the ring overflows.
        let (encoder, seq) = (&mut self.encoder, self.seq);
        let written = self.ring.put_in_place(PUBLISH_BATCH, |slot| {
            encoder.encode(seq, &meta, &record, snippet, slot)
        });
        if !written {
            self.counters.incr_ring_overflow(t);
        }
    }

    /// Makes the records emitted since the last call visible to the hub
    /// (the worker calls it once per loop iteration).
    #[inline(always)]
    pub fn publish(&mut self) {
        self.ring.publish();
    }

    /// A new config generation from `now_ns` on: ids and names change
    /// with it, and so do the rate limits (the token state carries over,
    /// see [`ev::RateLimiter::set_rates`]; every event is still counted
    /// once as generated and once as rate-limited, overflowed or drained).
    pub fn adopt(&mut self, config: &Config, generation: u32, now_ns: u64) {
        self.limiter.set_rates(rate_limits(config), now_ns);
        self.generation = generation;
        self.default_policy = config.policies.len() as u32;
        self.snippet_bytes = config.events.snippet_bytes as usize;
    }
}

fn fill_flow(
    meta: &mut ev::PacketMeta,
    src: Addr,
    dst: Addr,
    sport: u16,
    dport: u16,
    protocol: u8,
) {
    meta.src = addr16(src);
    meta.dst = addr16(dst);
    meta.ipv6 = !(src.is_ipv4() && dst.is_ipv4());
    meta.src_port = sport;
    meta.dst_port = dport;
    meta.protocol = protocol;
}

/// A worker's event ring as the hub drains it.
pub struct RingSource(pub RingConsumer<ev::EventSlot>);

impl ev::EventSource for RingSource {
    fn drain_into(&mut self, max: usize, each: &mut dyn FnMut(&ev::EventSlot)) -> usize {
        self.0.dequeue_in_place(max, each)
    }
}
