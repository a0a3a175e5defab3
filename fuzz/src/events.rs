//! `event_decode`: arbitrary bytes as event-stream records, the way a
//! consumer meets them: one record with and without its size prefix, and
//! the whole input as a stream of size-prefixed frames (through
//! `read_frame`), learning name tables into a `NameCache` and rendering
//! every record in every format (json, junos, junos-sd, droplog).

use rampart_events::decode::MAX_FRAME;
use rampart_events::syslog::{write_junos_sd, SyslogOptions};
use rampart_events::{
    decode, decode_size_prefixed, decode_unprefixed, read_frame, render, Format, NameCache, Record,
};

pub fn event_decode(data: &[u8]) {
    let mut cache = NameCache::new();
    let mut out = String::new();
    if let Ok(rec) = decode_unprefixed(data) {
        show(&rec, &mut cache, &mut out);
    }
    if let Ok(rec) = decode(data) {
        show(&rec, &mut cache, &mut out);
    }
    // The stream as `rampart events` reads it.
    let mut cache = NameCache::new();
    let mut reader = data;
    let mut frame = Vec::new();
    let mut frames = 0;
    while let Ok(true) = read_frame(&mut reader, &mut frame) {
        frames += 1;
        assert!(frame.len() >= 4 && frame.len() <= 4 + MAX_FRAME);
        match decode_size_prefixed(&frame) {
            Ok((rec, used)) => {
                assert_eq!(used, frame.len());
                show(&rec, &mut cache, &mut out);
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
    assert!(frames <= data.len() / 4);
    // And straight from the buffer, frame after frame.
    let mut rest = data;
    while let Ok((rec, used)) = decode_size_prefixed(rest) {
        assert!(used >= 4 && used <= rest.len());
        show(&rec, &mut cache, &mut out);
        rest = &rest[used..];
    }
}

fn show(rec: &Record<'_>, cache: &mut NameCache, out: &mut String) {
    cache.observe(rec);
    assert!(cache.generations().count() <= NameCache::KEEP);
    let _ = (rec.type_name(), rec.event_type());
    for f in [Format::Json, Format::Junos, Format::Droplog] {
        out.clear();
        render(f, rec, cache, out);
        assert!(
            !out.contains('\n'),
            "{} rendered more than one line: {out:?}",
            f.name()
        );
    }
    // What render(Format::JunosSd) does, without reading the host name
    // for every record.
    let opts = SyslogOptions {
        hostname: "fw-1".into(),
        facility: 1,
    };
    out.clear();
    write_junos_sd(rec, cache, &opts, out);
    assert!(
        !out.contains('\n'),
        "junos-sd rendered more than one line: {out:?}"
    );
}
