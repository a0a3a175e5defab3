//! The consumer side against hostile bytes, the normal-suite counterpart of
//! the `event_decode` fuzz target: control records (hello, names, stats,
//! loss, config reject) truncated and corrupted anywhere, name tables with
//! any strings, the stream reader against lying length prefixes.

mod common;

use common::*;
use proptest::prelude::*;
use rampart_events::syslog::{write_junos_sd, SyslogOptions};
use rampart_events::*;

fn control_records() -> Vec<Vec<u8>> {
    let mut ctl = ControlEncoder::new();
    let totals = [TypeCounters {
        generated: 9,
        rate_limited: 1,
        ring_overflow: 2,
        drained: 6,
        aggregating: 0,
        aggregate_full: 0,
    }; EventType::COUNT];
    let workers = [WorkerCountersSnapshot {
        worker: 3,
        counters: totals,
    }];
    vec![
        ctl.hello(3, TS, "rampart test").to_vec(),
        ctl.names(3, &names()).to_vec(),
        ctl.stats(TS, 3, &totals, &workers, 1, &[1; 6], &[2; 6])
            .to_vec(),
        ctl.loss(TS, 1, &[0, 3, 0, 0, 1, 0]).to_vec(),
        ctl.config_reject(TS, 3, "/etc/rampart.toml", &["a.toml:1:1: bad".into()])
            .to_vec(),
    ]
}

/// Every renderer, as `rampart events` runs them; each must give one line.
fn render_all(rec: &Record<'_>, cache: &NameCache) -> Result<(), TestCaseError> {
    let mut out = String::new();
    for f in [Format::Json, Format::Junos, Format::Droplog] {
        out.clear();
        render(f, rec, cache, &mut out);
        prop_assert!(!out.contains('\n'), "{}: {:?}", f.name(), out);
    }
    out.clear();
    let opts = SyslogOptions {
        hostname: "fw".into(),
        facility: 1,
    };
    write_junos_sd(rec, cache, &opts, &mut out);
    prop_assert!(!out.contains('\n'), "junos-sd: {:?}", out);
    Ok(())
}

#[test]
fn read_frame_memory_follows_the_bytes_not_the_prefix() {
    // Found with the event_decode fuzz target: a garbage length prefix made
    // the reader allocate and zero the whole claimed frame (up to 16 MiB)
    // before it noticed that the stream had ended.
    let mut stream = (decode::MAX_FRAME as u32).to_le_bytes().to_vec();
    stream.extend_from_slice(b"short");
    let mut buf = Vec::new();
    let err = read_frame(&mut &stream[..], &mut buf).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
    assert!(buf.capacity() < 64 * 1024, "{} bytes", buf.capacity());
    // Whole frames still read one after the other, prefix kept.
    let recs = control_records();
    let stream = recs.concat();
    let mut r = &stream[..];
    for rec in &recs {
        assert!(read_frame(&mut r, &mut buf).unwrap());
        assert_eq!(&buf, rec);
        assert!(decode(&buf).is_ok());
    }
    assert!(!read_frame(&mut r, &mut buf).unwrap());
    // A prefix over the limit is refused before anything is read.
    let over = ((decode::MAX_FRAME + 1) as u32).to_le_bytes();
    let err = read_frame(&mut &over[..], &mut buf).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
}

#[test]
fn every_truncation_of_every_control_record_is_an_error() {
    for rec in control_records() {
        assert!(decode(&rec).is_ok());
        for n in 0..rec.len() {
            assert!(decode(&rec[..n]).is_err(), "{n} of {} bytes", rec.len());
            let _ = decode_unprefixed(rec.get(4..n).unwrap_or(&[]));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn corrupted_control_records_never_panic(
        which in 0usize..5,
        edits in proptest::collection::vec((any::<u16>(), any::<u8>()), 1..6),
    ) {
        let mut rec = control_records().swap_remove(which);
        for (at, b) in edits {
            let at = 4 + usize::from(at) % (rec.len() - 4);
            rec[at] = b;
        }
        if let Ok(r) = decode(&rec) {
            let mut cache = NameCache::new();
            cache.observe(&r);
            render_all(&r, &cache)?;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Names learned from the stream, whatever they hold, never break the
    /// one-line-per-record output of any renderer.
    #[test]
    fn any_names_render_on_one_line(
        zone in "\\PC{0,12}|[\\n\\r\\t\"\\\\ ]{1,4}",
        policy in "\\PC{0,12}|[\\n\\r\"\\]= ]{1,4}",
        iface in "\\PC{0,12}|[\\n\\r ]{1,4}",
        term in "\\PC{0,12}|[\\n\\r ]{1,4}",
        path in "\\PC{0,20}|[\\n\\r ]{1,4}",
        error in "\\PC{0,20}|[\\n\\r ]{1,4}",
    ) {
        let mut n = names();
        n.zones[0].name = zone;
        n.policies[0].name = policy.clone();
        n.policies[1].name = policy;
        n.interfaces[0].name = iface;
        n.filters[0].terms[0] = term;
        let mut ctl = ControlEncoder::new();
        let table = ctl.names(3, &n).to_vec();
        let mut cache = NameCache::new();
        cache.observe(&decode(&table).unwrap());
        let mut enc = Encoder::new();
        for (meta, ev, snippet) in all_events() {
            let bytes = enc.encode_bytes(1, &meta, &ev, &snippet).to_vec();
            render_all(&decode(&bytes).unwrap(), &cache)?;
        }
        let reject = ctl.config_reject(TS, 3, &path, &[error]).to_vec();
        render_all(&decode(&reject).unwrap(), &cache)?;
    }
}
