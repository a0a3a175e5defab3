//! `[zone.NAME]` and `[[zone-pair]]`.

use super::*;

pub(super) fn resolve_name(
    ctx: &mut Ctx,
    name: &S,
    field: &str,
    names: &[&str],
    kind: &str,
) -> Option<usize> {
    let found = names.iter().position(|n| *n == name.s);
    if found.is_none() {
        let msg = format!("unknown {kind} '{}'{}", name.s, hint(name.s, names, kind));
        ctx.err(&name.span, field, msg);
    }
    found
}

pub(super) fn zones(ctx: &mut Ctx, root: &Tbl, screens: &[&str]) -> Vec<Zone> {
    let Some(v) = root.get("zone") else {
        return Vec::new();
    };
    let Some(all) = ctx.table(v, &root.span, "zone".into()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (k, v) in all.entries {
        let path = all.field(&k.name);
        let kspan = k.span_or(&all.span);
        ctx.name_ok(&k.name, &kspan, &path, "zone");
        let mut z = Zone {
            name: k.name.clone(),
            screen: None,
            interfaces: Vec::new(),
        };
        if let Some(t) = ctx.table(v, &kspan, path) {
            ctx.check_keys(&t, &super::keys::names("[zone.NAME]"), "a zone");
            if let Some(s) = ctx.opt_str(&t, "screen") {
                z.screen = resolve_name(ctx, &s, &t.field("screen"), screens, "screen");
            }
        }
        out.push(z);
    }
    out
}

/// `[[zone-pair]]`: `from-zone`, `to-zone`, `audit` (a whole pair in
/// audit mode); returns the audited pairs. A pair named twice is an error.
pub(super) fn zone_pairs(ctx: &mut Ctx, root: &Tbl, zones: &[Zone]) -> Vec<(usize, usize)> {
    let Some(v) = root.get("zone-pair") else {
        return Vec::new();
    };
    let zone_names: Vec<&str> = zones.iter().map(|z| z.name.as_str()).collect();
    let mut seen = HashSet::new();
    let mut audited = Vec::new();
    for (i, pv, pspan) in ctx.array_of_tables(v, &root.span, "zone-pair") {
        let Some(t) = ctx.table(pv, &pspan, format!("zone-pair[{i}]")) else {
            continue;
        };
        ctx.check_keys(&t, &super::keys::names("[[zone-pair]]"), "a zone pair");
        let ends = ["from-zone", "to-zone"].map(|key| {
            let nv = ctx.required(&t, key)?;
            let z = ctx.as_str(nv, t.vspan(nv), &t.field(key))?;
            resolve_name(ctx, &z, &t.field(key), &zone_names, "zone").map(|id| (id, z.span))
        });
        let audit = ctx.opt_bool(&t, "audit").unwrap_or(false);
        if let [Some((from, _)), Some((to, span))] = ends {
            if !seen.insert((from, to)) {
                ctx.err(
                    &span,
                    &t.field("to-zone"),
                    format!(
                        "the zone pair {} -> {} is already listed",
                        zone_names[from], zone_names[to]
                    ),
                );
            } else if audit {
                audited.push((from, to));
            }
        }
    }
    audited
}
