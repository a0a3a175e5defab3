//! `[screen.NAME]`: Junos screen options.

use super::*;

/// A threshold option: `true` (defaults), `false` (off) or `{ threshold = n }`.
pub(super) fn threshold_option(
    ctx: &mut Ctx,
    option: ScreenOption,
    v: &Value,
    span: &Span,
    field: String,
) -> Option<Threshold> {
    let default = Threshold::default_for(option).unwrap_or_default();
    match &v.node {
        Node::Bool(b) => b.then_some(Threshold { threshold: default }),
        _ => {
            let t = ctx.table(v, span, field)?;
            ctx.check_keys(&t, &settings(option), "this screen option");
            let threshold = ctx.opt_u32(&t, "threshold").unwrap_or(default);
            Some(Threshold { threshold })
        }
    }
}

/// The keys `option`'s settings table accepts: the ones the reference
/// page lists for it.
fn settings(option: ScreenOption) -> Vec<&'static str> {
    super::keys::screen_option_table(option).map_or_else(Vec::new, super::keys::names)
}

pub(super) fn screens(ctx: &mut Ctx, root: &Tbl) -> Vec<Screen> {
    let Some(v) = root.get("screen") else {
        return Vec::new();
    };
    let Some(all) = ctx.table(v, &root.span, "screen".into()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let known: Vec<&str> = SCREEN_OPTIONS
        .iter()
        .copied()
        .chain([ALARM_WITHOUT_DROP])
        .collect();
    for (k, v) in all.entries {
        let path = all.field(&k.name);
        let kspan = k.span_or(&all.span);
        ctx.name_ok(&k.name, &kspan, &path, "screen");
        let mut s = Screen {
            name: k.name.clone(),
            ..Screen::default()
        };
        if let Some(t) = ctx.table(v, &kspan, path) {
            for (opt, ov) in t.entries {
                let field = t.field(&opt.name);
                let ospan = t.vspan(ov);
                let option = ScreenOption::from_name(&opt.name);
                if let Some(slot) = option.and_then(|o| s.stateless_mut(o)) {
                    if let Some(b) = ctx.as_bool(ov, ospan, &field) {
                        *slot = b;
                    }
                    continue;
                }
                if opt.name == ALARM_WITHOUT_DROP {
                    if let Some(b) = ctx.as_bool(ov, ospan, &field) {
                        s.alarm_without_drop = b;
                    }
                    continue;
                }
                match option {
                    Some(ScreenOption::SynFlood) => {
                        s.syn_flood = match &ov.node {
                            Node::Bool(b) => b.then(SynFlood::default),
                            _ => ctx.table(ov, &ospan, field).map(|st| {
                                ctx.check_keys(&st, &settings(ScreenOption::SynFlood), "syn-flood");
                                let d = SynFlood::default();
                                SynFlood {
                                    attack_threshold: ctx
                                        .opt_u32(&st, "attack-threshold")
                                        .unwrap_or(d.attack_threshold),
                                    source_threshold: ctx
                                        .opt_u32(&st, "source-threshold")
                                        .unwrap_or(d.source_threshold),
                                    destination_threshold: ctx
                                        .opt_u32(&st, "destination-threshold")
                                        .unwrap_or(d.destination_threshold),
                                    alarm_threshold: ctx
                                        .opt_u32(&st, "alarm-threshold")
                                        .unwrap_or(d.alarm_threshold),
                                    timeout: ctx.opt_u32(&st, "timeout").unwrap_or(d.timeout),
                                }
                            }),
                        }
                    }
                    Some(o @ ScreenOption::IcmpFlood) => {
                        s.icmp_flood = threshold_option(ctx, o, ov, &ospan, field)
                    }
                    Some(o @ ScreenOption::UdpFlood) => {
                        s.udp_flood = threshold_option(ctx, o, ov, &ospan, field)
                    }
                    Some(o @ ScreenOption::PortScan) => {
                        s.port_scan = threshold_option(ctx, o, ov, &ospan, field)
                    }
                    Some(o @ ScreenOption::IpSweep) => {
                        s.ip_sweep = threshold_option(ctx, o, ov, &ospan, field)
                    }
                    Some(ScreenOption::LimitSession) => {
                        s.limit_session = ctx.table(ov, &ospan, field).map(|lt| {
                            ctx.check_keys(
                                &lt,
                                &settings(ScreenOption::LimitSession),
                                "limit-session",
                            );
                            LimitSession {
                                source_ip_based: ctx.opt_u32(&lt, "source-ip-based"),
                                destination_ip_based: ctx.opt_u32(&lt, "destination-ip-based"),
                            }
                        })
                    }
                    // Every stateless option was handled above.
                    Some(_) | None => {
                        let other = &opt.name;
                        let msg = format!(
                            "unknown screen option '{other}'{}",
                            hint_listing(other, &known, "screen option")
                        );
                        ctx.err(&opt.span_or(&t.span), &field, msg);
                    }
                }
            }
        }
        out.push(s);
    }
    out
}
