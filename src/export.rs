//! The event export glue: a worker turns pipeline events into flatbuffers
//! records on its own DPDK ring (never blocking: a full ring drops the
//! record and counts it), and the control plane drains those rings into
//! the event hub. Also the name tables a consumer needs.

use std::sync::Arc;

use rampart_core::{RingConsumer, RingProducer};
use rampart_events as ev;
use rampart_pipeline::config::Config;
use rampart_pipeline::engine::{Decision, Event};
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
    snippet_bytes: usize,
    /// `[events.aggregate]`: repeats wait here for their window to end.
    aggregator: ev::Aggregator,
    /// `[events.episodes]`: flood, scan and sweep attacks under way.
    episodes: ev::EpisodeTracker,
}

fn configure_episodes(tracker: &mut ev::EpisodeTracker, config: &Config) {
    let e = &config.events.episodes;
    let ms = |v: u32| {
        if e.enabled {
            u64::from(v) * 1_000_000
        } else {
            0
        }
    };
    tracker.configure(ms(e.update_ms), ms(e.quiet_ms));
}

/// Per-type aggregation windows in ns (0 = off) from `[events.aggregate]`.
pub fn aggregate_windows(config: &Config) -> [u64; ev::EventType::COUNT] {
    let a = &config.events.aggregate;
    ev::EventType::ALL.map(|t| a.window_ms(t).map_or(0, |ms| u64::from(ms) * 1_000_000))
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
            snippet_bytes: config.events.snippet_bytes as usize,
            aggregator: {
                let a = &config.events.aggregate;
                let mut agg = ev::Aggregator::new(a.max_keys as usize);
                agg.configure(aggregate_windows(config), a.key);
                agg
            },
            episodes: {
                let mut tracker = ev::EpisodeTracker::new(config.events.episodes.max as usize);
                configure_episodes(&mut tracker, config);
                tracker
            },
        }
    }

    /// Encodes and enqueues one event; never blocks. `d` and `frame` are
    /// the decision and packet it came from (absent for aging closes).
    #[inline]
    pub fn emit(&mut self, e: &Event, d: Option<&Decision>, frame: &[u8], now_ns: u64) {
        let record = record_of(e);
        let t = record.event_type();
        self.counters.incr_generated(t);
        // A flood, scan or sweep drop counts in its episode even when its
        // own record is rate limited.
        let mut episode_meta = None;
        if let (ev::Event::ScreenDrop(s), true) = (&record, self.episodes.is_on()) {
            let meta = packet_meta(self.worker, self.generation, e, d, now_ns);
            self.track_episode(&meta, s, now_ns);
            episode_meta = Some(meta);
        }
        // An aggregated record meets the rate limit when it leaves.
        let aggregated = self.aggregator.is_on(t);
        if !aggregated && !self.limiter.allow(t, now_ns) {
            self.counters.incr_rate_limited(t);
            return;
        }
        let meta =
            episode_meta.unwrap_or_else(|| packet_meta(self.worker, self.generation, e, d, now_ns));
        let snippet = snippet_of(e, d, frame, self.snippet_bytes);
        let repeat = if aggregated {
            if self.aggregator.fold(&meta, &record, snippet, now_ns) {
                self.counters.incr_aggregating(t);
                return;
            }
            // Every key is taken: this one goes alone, a window of one.
            self.counters.incr_aggregate_full(t);
            ev::Repeat {
                count: 1,
                last_ts_ns: now_ns.max(1),
            }
        } else {
            ev::Repeat::ONE
        };
        self.sink()
            .send(&meta, &record, snippet, repeat, aggregated, now_ns);
    }

    /// A flood, scan or sweep drop into its attack episode; the start
    /// report of a new one goes at once.
    #[inline(never)]
    fn track_episode(&mut self, meta: &ev::PacketMeta, drop: &ev::ScreenDrop, now_ns: u64) {
        let (_, episodes, mut sink) = self.split();
        let untracked = episodes.untracked();
        let started = episodes.observe(meta, drop.screen, drop.option, drop.alarm_only, now_ns);
        if let Some(report) = started {
            sink.send_episode(report, now_ns);
        } else if episodes.untracked() != untracked {
            sink.counters.set_episodes_untracked(episodes.untracked());
        }
    }

    /// Sends the aggregated records whose window has ended and the episode
    /// reports that are due (the worker calls it once per loop iteration;
    /// cheap when nothing is due).
    #[inline(always)]
    pub fn tick(&mut self, now_ns: u64) {
        if self.aggregator.pending() != 0 {
            self.flush_aggregated(now_ns);
        }
        if self.episodes.active() != 0 {
            let (_, episodes, mut sink) = self.split();
            episodes.tick(now_ns, &mut |r| sink.send_episode(r, now_ns));
        }
    }

    /// Sends what waits (a reload, the end of the run): every aggregated
    /// record, however much of its window is left, and the end of every
    /// attack episode.
    pub fn flush_pending(&mut self, now_ns: u64) {
        self.flush_aggregated_until(u64::MAX, now_ns);
        let (_, episodes, mut sink) = self.split();
        episodes.end_all(now_ns, &mut |r| sink.send_episode(r, now_ns));
    }

    #[inline(never)]
    fn flush_aggregated(&mut self, now_ns: u64) {
        self.flush_aggregated_until(now_ns, now_ns);
    }

    fn flush_aggregated_until(&mut self, due_by_ns: u64, now_ns: u64) {
        let (aggregator, _, mut sink) = self.split();
        aggregator.flush_due(due_by_ns, &mut |f| {
            sink.counters
                .sub_aggregating(f.event.event_type(), f.repeat.count.into());
            sink.send(f.meta, f.event, f.snippet, f.repeat, true, now_ns)
        });
    }

    fn sink(&mut self) -> Sink<'_> {
        self.split().2
    }

    /// The tables that hold records back, and where records go.
    fn split(&mut self) -> (&mut ev::Aggregator, &mut ev::EpisodeTracker, Sink<'_>) {
        (
            &mut self.aggregator,
            &mut self.episodes,
            Sink {
                ring: &mut self.ring,
                encoder: &mut self.encoder,
                limiter: &mut self.limiter,
                counters: &self.counters,
                seq: &mut self.seq,
            },
        )
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
        // Records folded under the old windows and key, and the episodes
        // of the old zones and screens, leave now, named by the generation
        // they were decided in.
        self.flush_pending(now_ns);
        self.aggregator
            .configure(aggregate_windows(config), config.events.aggregate.key);
        configure_episodes(&mut self.episodes, config);
        self.limiter.set_rates(rate_limits(config), now_ns);
        self.generation = generation;
        self.snippet_bytes = config.events.snippet_bytes as usize;
    }
}

/// Where a worker's records go: rate limit (for aggregated records, which
/// meet it only as they leave), sequence number, ring slot, and the
/// counters of what did not make it, in events.
struct Sink<'a> {
    ring: &'a mut RingProducer<ev::EventSlot>,
    encoder: &'a mut ev::Encoder,
    limiter: &'a mut ev::RateLimiter,
    counters: &'a ev::SharedCounters,
    seq: &'a mut u64,
}

impl Sink<'_> {
    /// An episode report as a `screen_episode` record, timed now.
    fn send_episode(&mut self, report: ev::EpisodeReport<'_>, now_ns: u64) {
        let t = ev::EventType::ScreenEpisode;
        self.counters.incr_generated(t);
        let meta = ev::PacketMeta {
            ts_ns: now_ns,
            ..*report.meta
        };
        // Updates may be rate limited; a start or an end never is, so no
        // episode is left without its beginning or its close.
        let limited = report.episode.phase == ev::EpisodePhase::Update;
        let record = ev::Event::ScreenEpisode(report.episode);
        self.send(&meta, &record, &[], ev::Repeat::ONE, limited, now_ns);
    }

    #[inline(always)]
    fn send(
        &mut self,
        meta: &ev::PacketMeta,
        record: &ev::Event,
        snippet: &[u8],
        repeat: ev::Repeat,
        check_limit: bool,
        now_ns: u64,
    ) {
        let t = record.event_type();
        let events = u64::from(repeat.count);
        if check_limit && !self.limiter.allow(t, now_ns) {
            self.counters.add_rate_limited(t, events);
            return;
        }
        *self.seq += 1;
        // Encoded straight into the ring's slot, published with the rest
        // of the burst's records (`publish`). The encoder only refuses a
        // record larger than a slot, which the snippet clamp rules out
        // (events' tests check every type and snippet length); were it to
        // happen, the record would be counted with the ring overflows.
        let (encoder, seq) = (&mut *self.encoder, *self.seq);
        let written = self.ring.put_in_place(PUBLISH_BATCH, |slot| {
            encoder.encode_repeated(seq, meta, record, snippet, repeat, slot)
        });
        if !written {
            self.counters.add_ring_overflow(t, events);
        }
    }
}

/// A pipeline event as the `events` crate encodes it: the same payload
/// (`rampart_vocab::records`), a close without the flow its metadata
/// carries.
pub fn record_of(e: &Event) -> ev::Event {
    match *e {
        Event::PolicyDeny(p) => ev::Event::PolicyDeny(p),
        Event::ScreenDrop(s) => ev::Event::ScreenDrop(s),
        Event::FilterLog(f) => ev::Event::FilterLog(f),
        Event::SessionOpen(o) => ev::Event::SessionOpen(o),
        Event::SessionClose(c) => ev::Event::SessionClose(c.record),
    }
}

/// The packet bytes a record of `e` carries: the first `snippet_bytes` of
/// its frame, none for session records and aging closes.
fn snippet_of<'a>(
    e: &Event,
    d: Option<&Decision>,
    frame: &'a [u8],
    snippet_bytes: usize,
) -> &'a [u8] {
    match (e, d) {
        (Event::SessionOpen(_) | Event::SessionClose(_), _) | (_, None) => &[],
        (_, Some(_)) => &frame[..frame.len().min(snippet_bytes)],
    }
}

/// The metadata of a record: the packet's flow, interfaces and zones
/// (a session close: its session's), this worker, generation and time.
pub fn packet_meta(
    worker: u16,
    generation: u32,
    e: &Event,
    d: Option<&Decision>,
    now_ns: u64,
) -> ev::PacketMeta {
    let mut meta = ev::PacketMeta {
        ts_ns: now_ns,
        worker,
        generation,
        egress: ev::NO_ID16,
        to_zone: ev::NO_ID16,
        ..Default::default()
    };
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
    }
    meta
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

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_pipeline::engine::{Ruleset, Worker};
    use rampart_pipeline::screen::ScreenState;
    use rampart_pipeline::session::CloseReason;

    /// Where the records of the demo capture are kept, byte for byte, as
    /// the tree encoded them when the fixture was written.
    const FIXTURE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/demo-records.bin"
    );

    /// The demo capture through the pipeline and the export's translation
    /// and encoder: every record of every decision, then the closes of the
    /// sessions left at the end, as size-prefixed records.
    fn demo_records() -> Vec<u8> {
        let text = include_str!("demo.toml").replace("@DIR@", "/nonexistent");
        let config = Config::from_str_named(&text, "demo.toml").unwrap();
        let snippet_bytes = config.events.snippet_bytes as usize;
        let rules = Ruleset::compile(Arc::new(config), 1);
        let screens = ScreenState::new(1024);
        let mut worker = Worker::new(0, &rules);
        let mut encoder = ev::Encoder::new();
        let mut slot = ev::EventSlot::EMPTY;
        let mut out = Vec::new();
        let mut seq = 0;
        let mut encode = |e: &Event, d: Option<&Decision>, frame: &[u8], now_ns: u64| {
            let record = record_of(e);
            let meta = packet_meta(0, 1, e, d, now_ns);
            let snippet = snippet_of(e, d, frame, snippet_bytes);
            seq += 1;
            assert!(encoder.encode_repeated(
                seq,
                &meta,
                &record,
                snippet,
                ev::Repeat::ONE,
                &mut slot
            ));
            out.extend_from_slice(slot.as_bytes());
        };
        let frames = crate::demo::demo(1_700_000_000_000_000_000);
        let mut last_ns = 0;
        for f in &frames {
            let d = worker.process(&rules, &screens, &f.bytes, 0, f.ts_ns);
            for e in worker.events(&d) {
                encode(&e, Some(&d), &f.bytes, f.ts_ns);
            }
            last_ns = f.ts_ns;
        }
        let mut closes = Vec::new();
        worker.close_all(
            &rules,
            &screens,
            CloseReason::Shutdown,
            last_ns + 1,
            &mut |e| closes.push(e),
        );
        for e in &closes {
            encode(e, None, &[], last_ns + 1);
        }
        out
    }

    /// The records of a fixed capture are byte for byte those of the tree
    /// the fixture was written from: a change of structure changes no
    /// record. `RAMPART_WRITE_FIXTURES=1` writes the fixture anew (only for
    /// a change that means to change records, said in its commit).
    #[test]
    fn the_demo_capture_encodes_to_the_fixture_records() {
        let records = demo_records();
        if std::env::var_os("RAMPART_WRITE_FIXTURES").is_some() {
            std::fs::write(FIXTURE, &records).unwrap();
        }
        let fixture =
            std::fs::read(FIXTURE).expect("the fixture (RAMPART_WRITE_FIXTURES=1 writes it)");
        assert!(
            records.len() > 10_000,
            "the demo makes records: {}",
            records.len()
        );
        assert!(
            records == fixture,
            "the records differ from the fixture ({} bytes, fixture {})",
            records.len(),
            fixture.len()
        );
    }
}
