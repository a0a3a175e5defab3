//! `[events]` and its `rate_limit`, `episodes` and `aggregate` tables.

use super::*;

pub(super) fn events(ctx: &mut Ctx, root: &Tbl) -> EventsConfig {
    let mut e = EventsConfig::default();
    let Some(v) = root.get("events") else {
        return e;
    };
    let Some(t) = ctx.table(v, &root.span, "events".into()) else {
        return e;
    };
    ctx.check_keys(&t, &super::keys::names("[events]"), "[events]");
    for (key, slot) in [
        ("socket_mode", &mut e.socket_mode),
        ("control_socket_mode", &mut e.control_socket_mode),
    ] {
        if let Some(s) = ctx.opt_str(&t, key) {
            match u32::from_str_radix(s.s.trim_start_matches("0o"), 8) {
                Ok(mode) if mode <= 0o777 && mode & 0o007 == 0 => *slot = mode,
                Ok(_) => ctx.err(
                    &s.span,
                    &t.field(key),
                    "must be at most 0770: the sockets are never world-accessible",
                ),
                Err(_) => ctx.err(
                    &s.span,
                    &t.field(key),
                    format!("must be an octal mode such as \"0660\", found {:?}", s.s),
                ),
            }
        }
    }
    for (key, slot) in [
        ("socket_group", &mut e.socket_group),
        ("control_socket_group", &mut e.control_socket_group),
    ] {
        if let Some(s) = ctx.opt_str(&t, key) {
            if s.s.is_empty() {
                ctx.err(&s.span, &t.field(key), "must not be empty");
            } else {
                // Resolved again when the sockets are made; checked here so
                // `check-config` refuses what `run` would.
                if let Some(Err(why)) = ctx.host.map(|h| h.group(s.s)) {
                    ctx.err(&s.span, &t.field(key), why);
                }
                *slot = Some(s.s.to_string());
            }
        }
    }
    for (key, slot) in [
        ("socket", &mut e.socket),
        ("control_socket", &mut e.control_socket),
    ] {
        if let Some(s) = ctx.opt_str(&t, key) {
            if s.s.is_empty() {
                ctx.err(&s.span, &t.field(key), "must not be empty");
            } else {
                *slot = PathBuf::from(s.s);
            }
        }
    }
    if let Some(v) = t.get("ring_size") {
        let field = t.field("ring_size");
        if let Some(n) = ctx.as_int(
            v,
            t.vspan(v),
            &field,
            EventsConfig::MIN_RING_SIZE.into(),
            1 << 30,
        ) {
            if (n as u64).is_power_of_two() {
                e.ring_size = n as u32;
            } else {
                ctx.err(
                    &t.vspan(v),
                    &field,
                    format!("must be a power of two, found {n}"),
                );
            }
        }
    }
    if let Some(n) = ctx.opt_int(
        &t,
        "snippet_bytes",
        0,
        EventsConfig::MAX_SNIPPET_BYTES.into(),
    ) {
        e.snippet_bytes = n as u16;
    }
    if let Some(v) = t.get("rate_limit") {
        if let Some(r) = ctx.table(v, &t.span, t.field("rate_limit")) {
            ctx.check_keys(&r, &EventType::NAMES, "[events.rate_limit]");
            for t in EventType::ALL {
                *e.rate_limit.get_mut(t) = ctx.opt_u32(&r, t.name());
            }
        }
    }
    if let Some(v) = t.get("aggregate") {
        if let Some(a) = ctx.table(v, &t.span, t.field("aggregate")) {
            e.aggregate = aggregate(ctx, &a);
        }
    }
    if let Some(v) = t.get("episodes") {
        if let Some(a) = ctx.table(v, &t.span, t.field("episodes")) {
            e.episodes = episodes(ctx, &a);
        }
    }
    e
}

/// `[events.episodes]`: `update = "1s"`, `quiet = "5s"`, `max = 256`.
pub(super) fn episodes(ctx: &mut Ctx, a: &Tbl) -> Episodes {
    let mut out = Episodes {
        enabled: true,
        ..Episodes::default()
    };
    ctx.check_keys(
        a,
        &super::keys::names("[events.episodes]"),
        "[events.episodes]",
    );
    for (key, slot) in [("update", &mut out.update_ms), ("quiet", &mut out.quiet_ms)] {
        let Some(s) = ctx.opt_str(a, key) else {
            continue;
        };
        match window_ms(s.s) {
            Ok(Some(ms)) => *slot = ms,
            Ok(None) => ctx.err(
                &s.span,
                &a.field(key),
                "must be a duration (to turn episodes off, remove [events.episodes])",
            ),
            Err(why) => ctx.err(&s.span, &a.field(key), why),
        }
    }
    if let Some(n) = ctx.opt_int(a, "max", 1, 1 << 16) {
        out.max = n as u32;
    }
    out
}

/// `[events.aggregate]`: `policy_deny = "1s"` (likewise `screen_drop`,
/// `filter_log`; `"250ms"`, `"2s"`, or `"off"`), `key` and `max_keys`.
pub(super) fn aggregate(ctx: &mut Ctx, a: &Tbl) -> Aggregate {
    let mut out = Aggregate::default();
    let mut known: Vec<&str> = Aggregate::TYPES.iter().map(|t| t.name()).collect();
    known.extend(super::keys::names("[events.aggregate]"));
    ctx.check_keys(a, &known, "[events.aggregate]");
    for t in Aggregate::TYPES {
        let Some(s) = ctx.opt_str(a, t.name()) else {
            continue;
        };
        match window_ms(s.s) {
            Ok(ms) => out.set_window_ms(t, ms),
            Err(why) => ctx.err(&s.span, &a.field(t.name()), why),
        }
    }
    if let Some(s) = ctx.opt_str(a, "key") {
        match AggregateKey::from_name(s.s) {
            Some(k) => out.key = k,
            None => ctx.err(
                &s.span,
                &a.field("key"),
                format!(
                    "must be one of {}, found {:?}",
                    AggregateKey::NAMES.join(", "),
                    s.s
                ),
            ),
        }
    }
    if let Some(n) = ctx.opt_int(a, "max_keys", 1, 1 << 20) {
        out.max_keys = n as u32;
    }
    out
}

/// An aggregation window: `"off"`, or a whole number of `ms` or `s`
/// between 1 ms and [`Aggregate::MAX_WINDOW_MS`].
pub(super) fn window_ms(s: &str) -> Result<Option<u32>, String> {
    if s == "off" {
        return Ok(None);
    }
    let (digits, unit) = if let Some(d) = s.strip_suffix("ms") {
        (d, 1)
    } else if let Some(d) = s.strip_suffix('s') {
        (d, 1000)
    } else {
        return Err(format!(
            "must be a duration such as \"500ms\" or \"1s\", or \"off\"; found {s:?}"
        ));
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("must be a whole number of ms or s, found {s:?}"))?;
    match n.checked_mul(unit) {
        Some(ms) if (1..=u64::from(Aggregate::MAX_WINDOW_MS)).contains(&ms) => Ok(Some(ms as u32)),
        _ => Err(format!(
            "must be between 1ms and {}s, found {s:?}",
            Aggregate::MAX_WINDOW_MS / 1000
        )),
    }
}
