//! `--format json`: one JSON object per record (INTERFACES.md names the
//! fields).

use std::fmt::Write as _;

use crate::decode::{NameCache, PacketEvent, Record};
use crate::text::{json_str, push_hex16, push_ip, push_u64, write_rfc3339};
use crate::types::{Event, EventType, Names, NO_ID16, NO_ID32};

fn json_name(out: &mut String, name: Option<&str>, id: u64, none: u64) {
    if id == none {
        out.push_str("null");
    } else if let Some(n) = name {
        json_str(out, n);
    } else {
        let _ = write!(out, "\"#{id}\"");
    }
}

/// `"application":"NAME"` when the policy's matched application is known.
fn json_application(out: &mut String, names: &Names, id: u16) {
    if let Some(name) = names.application(id) {
        json_key(out, "application");
        json_str(out, name);
    }
}

/// `,"key":` (keys are this file's own ASCII names: nothing to escape).
fn json_key(out: &mut String, key: &str) {
    out.push_str(",\"");
    out.push_str(key);
    out.push_str("\":");
}

fn json_per_type(out: &mut String, v: &[u64; EventType::COUNT]) {
    out.push('{');
    for (i, t) in EventType::ALL.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "\"{}\":{}", t.name(), v[i]);
    }
    out.push('}');
}

fn json_counters(out: &mut String, c: &[crate::counters::TypeCounters; EventType::COUNT]) {
    out.push('{');
    for (i, t) in EventType::ALL.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let c = &c[i];
        let _ = write!(
            out,
            "\"{}\":{{\"generated\":{},\"rate_limited\":{},\"ring_overflow\":{},\"drained\":{}}}",
            t.name(),
            c.generated,
            c.rate_limited,
            c.ring_overflow,
            c.drained
        );
    }
    out.push('}');
}

fn zone_name(names: &Names, id: u16) -> Option<&str> {
    names.zone(id)
}

/// Appends the JSON object of `rec` (keys of INTERFACES.md "Event stream").
pub fn write_json(rec: &Record<'_>, cache: &NameCache, out: &mut String) {
    out.push_str("{\"type\":");
    json_str(out, rec.type_name());
    match rec {
        Record::Event(e) => {
            json_event(e, cache.names(e.names_generation()), out);
            let mark = out.len();
            out.push_str(",\"event_id\":\"");
            if cache.write_record_id(e, out) {
                out.push('"');
            } else {
                out.truncate(mark);
            }
        }
        Record::Hello(h) => {
            json_key(out, "ts");
            out.push('"');
            write_rfc3339(out, h.start_time_ns, 9);
            out.push('"');
            let _ = write!(
                out,
                ",\"schema_version\":{},\"generation\":{},\"start_time_ns\":{}",
                h.schema_version, h.generation, h.start_time_ns
            );
            json_key(out, "producer");
            json_str(out, &h.producer);
            if h.boot_id != 0 {
                json_key(out, "node");
                json_str(out, &h.node);
                out.push_str(",\"boot_id\":\"");
                push_hex16(out, h.boot_id);
                out.push('"');
            }
            if !h.cluster.is_empty() {
                json_key(out, "cluster");
                json_str(out, &h.cluster);
            }
        }
        Record::Names(t) => {
            let n = &t.names;
            let _ = write!(out, ",\"generation\":{}", t.generation);
            let list = |out: &mut String, key: &str, items: &mut dyn Iterator<Item = &str>| {
                json_key(out, key);
                out.push('[');
                for (i, s) in items.enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    json_str(out, s);
                }
                out.push(']');
            };
            list(out, "zones", &mut n.zones.iter().map(|z| z.name.as_str()));
            list(
                out,
                "interfaces",
                &mut n.interfaces.iter().map(|z| z.name.as_str()),
            );
            list(
                out,
                "policies",
                &mut n.policies.iter().map(|z| z.name.as_str()),
            );
            list(out, "screens", &mut n.screens.iter().map(String::as_str));
            json_key(out, "filters");
            out.push('[');
            for (i, f) in n.filters.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"name\":");
                json_str(out, &f.name);
                list(out, "terms", &mut f.terms.iter().map(String::as_str));
                out.push('}');
            }
            out.push(']');
        }
        Record::Stats(s) => {
            json_key(out, "ts");
            out.push('"');
            write_rfc3339(out, s.ts_ns, 9);
            out.push('"');
            let _ = write!(
                out,
                ",\"generation\":{},\"consumer_id\":{},\"events\":",
                s.generation, s.consumer_id
            );
            json_counters(out, &s.totals);
            out.push_str(",\"delivered\":");
            json_per_type(out, &s.delivered);
            out.push_str(",\"dropped\":");
            json_per_type(out, &s.dropped);
            out.push_str(",\"workers\":[");
            for (i, w) in s.workers.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{{\"worker\":{},\"events\":", w.worker);
                json_counters(out, &w.counters);
                out.push('}');
            }
            out.push(']');
        }
        Record::Loss(l) => {
            json_key(out, "ts");
            out.push('"');
            write_rfc3339(out, l.ts_ns, 9);
            out.push('"');
            let _ = write!(out, ",\"consumer_id\":{},\"dropped\":", l.consumer_id);
            json_per_type(out, &l.dropped);
        }
        Record::ConfigReject(r) => {
            json_key(out, "ts");
            out.push('"');
            write_rfc3339(out, r.ts_ns, 9);
            out.push('"');
            let _ = write!(out, ",\"generation\":{}", r.generation);
            json_key(out, "path");
            json_str(out, &r.path);
            json_key(out, "errors");
            out.push('[');
            for (i, e) in r.errors.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_str(out, e);
            }
            out.push(']');
        }
        Record::Unknown(t) => {
            let _ = write!(out, ",\"body_type\":{t}");
        }
    }
    out.push('}');
}

/// The screen option, its profile and the zone it guards.
fn json_screen(
    out: &mut String,
    names: &Names,
    m: &crate::types::PacketMeta,
    option: crate::types::ScreenOption,
    screen: u16,
) {
    json_key(out, "screen");
    json_str(out, option.name());
    json_key(out, "screen_profile");
    json_name(out, names.screen(screen), screen.into(), NO_ID16.into());
    json_key(out, "zone");
    json_name(
        out,
        zone_name(names, m.from_zone),
        m.from_zone.into(),
        NO_ID16.into(),
    );
}

fn json_event(e: &PacketEvent<'_>, names: &Names, out: &mut String) {
    let m = &e.meta;
    json_key(out, "ts");
    out.push('"');
    write_rfc3339(out, m.ts_ns, 9);
    out.push('"');
    // Written field by field without the formatting machinery: a deny
    // storm renders millions of these per second.
    out.push_str(",\"worker\":");
    push_u64(out, m.worker.into());
    out.push_str(",\"seq\":");
    push_u64(out, e.seq);
    out.push_str(",\"generation\":");
    push_u64(out, m.generation.into());
    out.push_str(",\"src_ip\":\"");
    push_ip(out, &m.src, m.ipv6);
    out.push_str("\",\"dst_ip\":\"");
    push_ip(out, &m.dst, m.ipv6);
    out.push_str("\",\"src_port\":");
    push_u64(out, m.src_port.into());
    out.push_str(",\"dst_port\":");
    push_u64(out, m.dst_port.into());
    out.push_str(",\"protocol\":");
    push_u64(out, m.protocol.into());
    if m.is_icmp() {
        out.push_str(",\"icmp_type\":");
        push_u64(out, m.icmp_type.into());
        out.push_str(",\"icmp_code\":");
        push_u64(out, m.icmp_code.into());
    }
    json_key(out, "interface");
    json_name(
        out,
        names.interface(m.ingress),
        m.ingress.into(),
        NO_ID16.into(),
    );
    json_key(out, "egress_interface");
    json_name(
        out,
        names.interface(m.egress),
        m.egress.into(),
        NO_ID16.into(),
    );
    let zones = |out: &mut String| {
        json_key(out, "from_zone");
        json_name(
            out,
            zone_name(names, m.from_zone),
            m.from_zone.into(),
            NO_ID16.into(),
        );
        json_key(out, "to_zone");
        json_name(
            out,
            zone_name(names, m.to_zone),
            m.to_zone.into(),
            NO_ID16.into(),
        );
    };
    match &e.event {
        Event::PolicyDeny(d) => {
            json_key(out, "policy");
            json_name(out, names.policy(d.policy), d.policy.into(), NO_ID32.into());
            zones(out);
            json_key(out, "action");
            json_str(out, e.event.action_name());
            if d.session_id != 0 {
                out.push_str(",\"session_id\":");
                push_u64(out, d.session_id);
            }
            json_application(out, names, d.application);
        }
        Event::ScreenDrop(s) => {
            json_screen(out, names, m, s.option, s.screen);
            json_key(out, "action");
            json_str(out, e.event.action_name());
        }
        Event::ScreenEpisode(s) => {
            json_screen(out, names, m, s.option, s.screen);
            json_key(out, "phase");
            json_str(out, s.phase.name());
            json_key(out, "action");
            json_str(out, e.event.action_name());
            out.push_str(",\"started\":\"");
            write_rfc3339(out, s.started_ns, 9);
            out.push_str("\",\"last_drop\":\"");
            write_rfc3339(out, s.last_drop_ns, 9);
            out.push_str("\",\"packets\":");
            push_u64(out, s.packets);
            out.push_str(",\"peak_pps\":");
            push_u64(out, s.peak_pps);
            // A scan's or sweep's source is its subject: the list names
            // its targets.
            let targets = crate::episodes::episode_subject_is_source(s.option) == Some(true);
            out.push_str(if targets {
                ",\"top_targets\":["
            } else {
                ",\"top_sources\":["
            });
            for (i, c) in s.top_sources().iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"ip\":\"");
                push_ip(out, &c.addr, !crate::types::is_ipv4_mapped(&c.addr));
                out.push_str("\",\"packets\":");
                push_u64(out, c.packets);
                out.push('}');
            }
            out.push(']');
        }
        Event::FilterLog(f) => {
            json_key(out, "filter");
            json_name(out, names.filter(f.filter), f.filter.into(), NO_ID16.into());
            json_key(out, "term");
            json_name(
                out,
                names.term(f.filter, f.term),
                f.term.into(),
                NO_ID16.into(),
            );
            json_key(out, "action");
            json_str(out, e.event.action_name());
            json_key(out, "direction");
            json_str(out, f.direction.name());
        }
        Event::SessionOpen(s) => {
            out.push_str(",\"session_id\":");
            push_u64(out, s.session_id);
            json_key(out, "policy");
            json_name(out, names.policy(s.policy), s.policy.into(), NO_ID32.into());
            zones(out);
            json_application(out, names, s.application);
        }
        Event::SessionClose(s) => {
            let _ = write!(
                out,
                ",\"session_id\":{},\"session_generation\":{}",
                s.session_id,
                e.names_generation()
            );
            json_key(out, "policy");
            json_name(out, names.policy(s.policy), s.policy.into(), NO_ID32.into());
            zones(out);
            json_application(out, names, s.application);
            json_key(out, "reason");
            json_str(out, s.reason.name());
            let _ = write!(
                out,
                ",\"packets_client\":{},\"bytes_client\":{},\"packets_server\":{},\"bytes_server\":{},\"elapsed_s\":{}.{:09}",
                s.packets_client,
                s.bytes_client,
                s.packets_server,
                s.bytes_server,
                s.elapsed_ns / 1_000_000_000,
                s.elapsed_ns % 1_000_000_000
            );
        }
    }
    if e.repeat.is_aggregated() {
        // `ts` is the first packet's; these say how many and until when.
        out.push_str(",\"count\":");
        push_u64(out, e.repeat.count.into());
        out.push_str(",\"first_ts\":\"");
        write_rfc3339(out, m.ts_ns, 9);
        out.push_str("\",\"last_ts\":\"");
        write_rfc3339(out, e.repeat.last_ts_ns, 9);
        out.push('"');
    }
    if !e.snippet.is_empty() {
        out.push_str(",\"snippet_len\":");
        push_u64(out, e.snippet.len() as u64);
    }
}
