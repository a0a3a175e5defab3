//! `pcap_trace`: arbitrary bytes as a capture file, the way `rampart trace
//! --pcap FILE` takes it: the pcap reader, then every record through the
//! engine (demo ruleset) with the capture's timestamps as the clock (they
//! may jump backwards), sessions aged once per capture second.

use rampart_pipeline::engine::Worker;
use rampart_pipeline::pcap;
use rampart_pipeline::screen::ScreenState;

/// Records run through the engine per input.
const MAX_RECORDS: usize = 256;

pub fn pcap_trace(data: &[u8]) {
    let Ok(records) = pcap::read_all(data) else {
        return;
    };
    let rules = &crate::pipeline::rulesets()[0];
    let screens = ScreenState::new(256);
    let mut worker: Option<Worker> = None;
    let mut last_sweep_s = u64::MAX;
    for rec in records.iter().take(MAX_RECORDS) {
        assert!(rec.data.len() <= data.len());
        let w = worker.get_or_insert_with(|| Worker::new(0, rules));
        if rec.ts_ns / 1_000_000_000 != last_sweep_s {
            last_sweep_s = rec.ts_ns / 1_000_000_000;
            w.expire(rules, &screens, rec.ts_ns, usize::MAX, &mut |_| {});
        }
        let d = w.process(rules, &screens, &rec.data, 0, rec.ts_ns);
        let _ = (rules.policy_name(d.rule), d.verdict.name(), d.reason.name());
    }
}
