//! `[application]`.

use super::*;

pub(super) fn builtin_application(name: &str) -> Option<Vec<AppMatch>> {
    BUILTIN_APPLICATIONS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, terms)| terms.to_vec())
}

pub(super) fn app_match(ctx: &mut Ctx, t: &Tbl) -> Option<AppMatch> {
    let pv = ctx.required(t, "protocol")?;
    let protocol = protocol(ctx, pv, t.vspan(pv), &t.field("protocol"))?;
    let mut m = AppMatch {
        protocol,
        ..AppMatch::ANY
    };
    let ported = matches!(protocol, Some(proto::TCP | proto::UDP | SCTP));
    let icmp = matches!(protocol, Some(proto::ICMP | proto::ICMPV6));
    let mut ok = true;
    for (key, slot) in [
        ("destination-port", &mut m.dst_ports),
        ("source-port", &mut m.src_ports),
    ] {
        if let Some(v) = t.get(key) {
            let field = t.field(key);
            if !ported {
                ctx.err(&t.vspan(v), &field, "ports need protocol tcp, udp or sctp");
                ok = false;
            } else if let Some(r) = port_range(ctx, v, t.vspan(v), &field) {
                *slot = r;
            } else {
                ok = false;
            }
        }
    }
    for (key, slot) in [
        ("icmp-type", &mut m.icmp_type),
        ("icmp-code", &mut m.icmp_code),
    ] {
        if let Some(v) = t.get(key) {
            let field = t.field(key);
            if !icmp {
                ctx.err(
                    &t.vspan(v),
                    &field,
                    format!("{key} needs protocol icmp or icmp6"),
                );
                ok = false;
            } else if let Some(n) = ctx.as_int(v, t.vspan(v), &field, 0, 255) {
                *slot = Some(n as u8);
            } else {
                ok = false;
            }
        }
    }
    ok.then_some(m)
}

pub(super) fn applications(ctx: &mut Ctx, root: &Tbl) -> Vec<Application> {
    let mut entries: Vec<SetEntry<AppMatch>> = Vec::new();
    if let Some(v) = root.get("application") {
        if let Some(all) = ctx.table(v, &root.span, "application".into()) {
            for (k, v) in all.entries {
                let field = all.field(&k.name);
                let kspan = k.span_or(&all.span);
                if ctx.name_ok(&k.name, &kspan, &field, "application")
                    && (k.name == "any" || k.name.starts_with("junos-"))
                {
                    ctx.err(
                        &kspan,
                        &field,
                        format!("'{}' is reserved for built-in applications", k.name),
                    );
                }
                let mut e = SetEntry {
                    name: &k.name,
                    leaves: Vec::new(),
                    members: Vec::new(),
                    field: field.clone(),
                };
                if let Some(t) = ctx.table(v, &kspan, field) {
                    ctx.check_keys(
                        &t,
                        &super::keys::names("[application] NAME = { }"),
                        "an application",
                    );
                    if let Some(m) = t.get("application-set") {
                        if let Some((other, _)) =
                            t.entries.iter().find(|(k, _)| k.name != "application-set")
                        {
                            ctx.err(
                                &other.span_or(&t.span),
                                &t.field(&other.name),
                                "an application-set cannot also have protocol, port or icmp settings",
                            );
                        }
                        e.members = ctx
                            .as_str_list(m, t.vspan(m), &t.field("application-set"))
                            .unwrap_or_default();
                    } else {
                        e.leaves.extend(app_match(ctx, &t));
                    }
                }
                entries.push(e);
            }
        }
    }
    let builtin_names: Vec<&str> = BUILTIN_APPLICATIONS.iter().map(|(n, _)| *n).collect();
    let kind = SetKind {
        set: "application-set",
        member: "application",
        builtin: &builtin_application,
        builtin_names: &builtin_names,
        list_known: true,
    };
    let resolved = resolve_sets(ctx, &entries, &kind);
    let mut out: Vec<Application> = entries
        .iter()
        .zip(resolved)
        .map(|(e, terms)| Application {
            name: e.name.to_owned(),
            terms,
        })
        .collect();
    out.extend(
        BUILTIN_APPLICATIONS
            .iter()
            .map(|(name, terms)| Application {
                name: (*name).to_owned(),
                terms: terms.to_vec(),
            }),
    );
    out
}
