//! Encoding of the control-plane records (hello, name table, stats, loss).
//! Used by the hub; public so tools and tests can write whole streams.

use flatbuffers::FlatBufferBuilder;
use rampart_schema::fb;

use crate::counters::{TypeCounters, WorkerCountersSnapshot};
use crate::types::{EventType, Names};

const N: usize = EventType::COUNT;

/// The schema version this crate writes (`SchemaVersion.Current`).
pub const SCHEMA_VERSION: u32 = fb::SchemaVersion::Current.0;

/// Error lines a config-reject record carries at most (a config with
/// thousands of errors must not produce a record no consumer buffer holds).
pub const MAX_REJECT_ERRORS: usize = 64;

/// Reusable builder for control records. Every method returns the
/// size-prefixed record bytes, valid until the next call.
pub struct ControlEncoder {
    fbb: FlatBufferBuilder<'static>,
    /// Carried in every hello: see [`ControlEncoder::set_identity`].
    node: String,
    boot_id: u64,
    cluster: String,
}

impl Default for ControlEncoder {
    fn default() -> Self {
        Self::new()
    }
}

fn fb_counters(c: &[TypeCounters; N]) -> [fb::TypeCounters; N] {
    c.map(|c| fb::TypeCounters::new(c.generated, c.rate_limited, c.ring_overflow, c.drained))
}

impl ControlEncoder {
    pub fn new() -> Self {
        ControlEncoder {
            fbb: FlatBufferBuilder::with_capacity(4096),
            node: String::new(),
            cluster: String::new(),
            boot_id: 0,
        }
    }

    fn finish(
        &mut self,
        body_type: fb::Body,
        body: flatbuffers::WIPOffset<flatbuffers::UnionWIPOffset>,
    ) -> &[u8] {
        let rec = fb::Record::create(
            &mut self.fbb,
            &fb::RecordArgs {
                body_type,
                body: Some(body),
            },
        );
        self.fbb
            .finish_size_prefixed(rec, Some(fb::RECORD_IDENTIFIER));
        self.fbb.finished_data()
    }

    /// The node name and boot id every later hello carries.
    /// The high-availability pair this node belongs to (`[cluster]
    /// name`), which every later hello carries.
    pub fn set_cluster(&mut self, name: &str) {
        self.cluster = name.to_owned();
    }

    pub fn set_identity(&mut self, node: &str, boot_id: u64) {
        self.node = node.to_owned();
        self.boot_id = boot_id;
    }

    pub fn hello(&mut self, generation: u32, start_time_ns: u64, producer: &str) -> &[u8] {
        self.hello_referencing(generation, 0, start_time_ns, producer)
    }

    /// A hello that also says which earlier generations records may still
    /// name (`oldest_generation`, 0 = not known).
    pub fn hello_referencing(
        &mut self,
        generation: u32,
        oldest_generation: u32,
        start_time_ns: u64,
        producer: &str,
    ) -> &[u8] {
        self.fbb.reset();
        let producer = self.fbb.create_string(producer);
        let node = (!self.node.is_empty()).then(|| self.fbb.create_string(&self.node));
        let cluster = (!self.cluster.is_empty()).then(|| self.fbb.create_string(&self.cluster));
        let t = fb::Hello::create(
            &mut self.fbb,
            &fb::HelloArgs {
                schema_version: SCHEMA_VERSION,
                generation,
                start_time_ns,
                producer: Some(producer),
                oldest_generation,
                node,
                boot_id: self.boot_id,
                cluster,
            },
        );
        self.finish(fb::Body::Hello, t.as_union_value())
    }

    pub fn names(&mut self, generation: u32, names: &Names) -> &[u8] {
        let fbb = &mut self.fbb;
        fbb.reset();
        let zones: Vec<_> = names
            .zones
            .iter()
            .map(|z| {
                let name = fbb.create_string(&z.name);
                fb::Zone::create(
                    fbb,
                    &fb::ZoneArgs {
                        name: Some(name),
                        screen: z.screen,
                    },
                )
            })
            .collect();
        let zones = fbb.create_vector(&zones);
        let ifs: Vec<_> = names
            .interfaces
            .iter()
            .map(|i| {
                let name = fbb.create_string(&i.name);
                fb::Interface::create(
                    fbb,
                    &fb::InterfaceArgs {
                        name: Some(name),
                        zone: i.zone,
                    },
                )
            })
            .collect();
        let ifs = fbb.create_vector(&ifs);
        let pols: Vec<_> = names
            .policies
            .iter()
            .map(|p| {
                let name = fbb.create_string(&p.name);
                fb::Policy::create(
                    fbb,
                    &fb::PolicyArgs {
                        name: Some(name),
                        from_zone: p.from_zone,
                        to_zone: p.to_zone,
                    },
                )
            })
            .collect();
        let pols = fbb.create_vector(&pols);
        let filters: Vec<_> = names
            .filters
            .iter()
            .map(|f| {
                let name = fbb.create_string(&f.name);
                let terms: Vec<_> = f.terms.iter().map(|t| fbb.create_string(t)).collect();
                let terms = fbb.create_vector(&terms);
                fb::Filter::create(
                    fbb,
                    &fb::FilterArgs {
                        name: Some(name),
                        terms: Some(terms),
                    },
                )
            })
            .collect();
        let filters = fbb.create_vector(&filters);
        let screens: Vec<_> = names
            .screens
            .iter()
            .map(|s| {
                let name = fbb.create_string(s);
                fb::Screen::create(fbb, &fb::ScreenArgs { name: Some(name) })
            })
            .collect();
        let screens = fbb.create_vector(&screens);
        let apps: Vec<_> = names
            .applications
            .iter()
            .map(|a| fbb.create_string(a))
            .collect();
        let apps = fbb.create_vector(&apps);
        let t = fb::NameTable::create(
            fbb,
            &fb::NameTableArgs {
                generation,
                zones: Some(zones),
                interfaces: Some(ifs),
                policies: Some(pols),
                filters: Some(filters),
                screens: Some(screens),
                applications: Some(apps),
            },
        );
        self.finish(fb::Body::NameTable, t.as_union_value())
    }

    #[allow(clippy::too_many_arguments)]
    pub fn stats(
        &mut self,
        ts_ns: u64,
        generation: u32,
        totals: &[TypeCounters; N],
        workers: &[WorkerCountersSnapshot],
        consumer_id: u64,
        delivered: &[u64; N],
        dropped: &[u64; N],
    ) -> &[u8] {
        let fbb = &mut self.fbb;
        fbb.reset();
        let totals = fbb.create_vector(&fb_counters(totals));
        let ws: Vec<_> = workers
            .iter()
            .map(|w| {
                let c = fbb.create_vector(&fb_counters(&w.counters));
                fb::WorkerStats::create(
                    fbb,
                    &fb::WorkerStatsArgs {
                        worker: w.worker,
                        counters: Some(c),
                    },
                )
            })
            .collect();
        let ws = fbb.create_vector(&ws);
        let delivered = fbb.create_vector(&delivered[..]);
        let dropped = fbb.create_vector(&dropped[..]);
        let t = fb::Stats::create(
            fbb,
            &fb::StatsArgs {
                ts_ns,
                generation,
                totals: Some(totals),
                workers: Some(ws),
                consumer_id,
                delivered: Some(delivered),
                dropped: Some(dropped),
            },
        );
        self.finish(fb::Body::Stats, t.as_union_value())
    }

    /// Bytes a [`ControlEncoder::loss`] record takes at most (every field
    /// present at its widest), so a caller can tell whether one would fit
    /// before it builds one.
    pub fn loss_len_bound() -> usize {
        static BOUND: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
        *BOUND.get_or_init(|| {
            ControlEncoder::new()
                .loss(u64::MAX, u64::MAX, &[u64::MAX; N])
                .len()
                // Alignment padding may differ by a few bytes.
                + 16
        })
    }

    pub fn loss(&mut self, ts_ns: u64, consumer_id: u64, dropped: &[u64; N]) -> &[u8] {
        self.fbb.reset();
        let dropped = self.fbb.create_vector(&dropped[..]);
        let t = fb::Loss::create(
            &mut self.fbb,
            &fb::LossArgs {
                ts_ns,
                consumer_id,
                dropped: Some(dropped),
            },
        );
        self.finish(fb::Body::Loss, t.as_union_value())
    }

    /// A refused reload; `errors` longer than [`MAX_REJECT_ERRORS`] end with
    /// a line saying how many more there were.
    pub fn config_reject(
        &mut self,
        ts_ns: u64,
        generation: u32,
        path: &str,
        errors: &[String],
    ) -> &[u8] {
        let fbb = &mut self.fbb;
        fbb.reset();
        let path = fbb.create_string(path);
        let mut lines: Vec<_> = errors
            .iter()
            .take(MAX_REJECT_ERRORS)
            .map(|e| fbb.create_string(e))
            .collect();
        if errors.len() > MAX_REJECT_ERRORS {
            let more = format!("... and {} more errors", errors.len() - MAX_REJECT_ERRORS);
            lines.push(fbb.create_string(&more));
        }
        let errors = fbb.create_vector(&lines);
        let t = fb::ConfigReject::create(
            fbb,
            &fb::ConfigRejectArgs {
                ts_ns,
                generation,
                path: Some(path),
                errors: Some(errors),
            },
        );
        self.finish(fb::Body::ConfigReject, t.as_union_value())
    }
}
