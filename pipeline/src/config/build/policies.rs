//! `[[policy]]` and `[default-policy]`.

use super::*;

pub(super) fn policies(
    ctx: &mut Ctx,
    root: &Tbl,
    zones: &[Zone],
    book: &AddressBook,
    apps: &[Application],
) -> Vec<Policy> {
    let Some(v) = root.get("policy") else {
        return Vec::new();
    };
    let zone_names: Vec<&str> = zones.iter().map(|z| z.name.as_str()).collect();
    let app_names: Vec<&str> = apps.iter().map(|a| a.name.as_str()).collect();
    let mut seen = HashMap::new();
    let mut out = Vec::new();
    for (i, pv, pspan) in ctx.array_of_tables(v, &root.span, "policy") {
        let path = entry_path("", "policy", pv, i);
        let mut p = Policy {
            name: format!("#{i}"),
            from_zone: None,
            to_zone: None,
            global: true,
            source_address: Vec::new(),
            destination_address: Vec::new(),
            source: Vec::new(),
            destination: Vec::new(),
            applications: Vec::new(),
            action: PolicyAction::Deny,
            log: PolicyLog::default(),
            count: false,
            audit: false,
        };
        if let Some(t) = ctx.table(pv, &pspan, path) {
            ctx.check_keys(&t, &super::keys::names("[[policy]]"), "a policy");
            if let Some(nv) = ctx.required(&t, "name") {
                if let Some(n) = ctx.as_str(nv, t.vspan(nv), &t.field("name")) {
                    if ctx.name_ok(n.s, &n.span, &t.field("name"), "policy") {
                        unique(ctx, &mut seen, &n, &t.field("name"), "policy");
                    }
                    p.name = n.s.to_owned();
                }
            }
            for (key, slot) in [("from-zone", &mut p.from_zone), ("to-zone", &mut p.to_zone)] {
                if let Some(z) = ctx.opt_str(&t, key) {
                    if z.s != "any" {
                        *slot = resolve_name(ctx, &z, &t.field(key), &zone_names, "zone");
                    }
                }
            }
            p.global = p.from_zone.is_none() || p.to_zone.is_none();
            for (key, names, prefixes) in [
                ("source-address", &mut p.source_address, &mut p.source),
                (
                    "destination-address",
                    &mut p.destination_address,
                    &mut p.destination,
                ),
            ] {
                let field = t.field(key);
                let Some(v) = ctx.required(&t, key) else {
                    continue;
                };
                for s in ctx.as_str_list(v, t.vspan(v), &field).unwrap_or_default() {
                    if let Some(list) = address(ctx, &s, &field, book) {
                        prefixes.extend(list);
                    }
                    names.push(s.s.to_owned());
                }
                *prefixes = dedup(prefixes.drain(..));
            }
            if let Some(v) = ctx.required(&t, "application") {
                let field = t.field("application");
                for s in ctx.as_str_list(v, t.vspan(v), &field).unwrap_or_default() {
                    let found = app_names.iter().position(|n| *n == s.s);
                    if found.is_none() {
                        let hint = hint_listing(s.s, &app_names, "application");
                        ctx.err(
                            &s.span,
                            &field,
                            format!("unknown application '{}'{hint}", s.s),
                        );
                    }
                    if let Some(a) = found {
                        if !p.applications.contains(&a) {
                            p.applications.push(a);
                        }
                    }
                }
            }
            if let Some(v) = ctx.required(&t, "then") {
                if let Some(a) = policy_action(ctx, v, t.vspan(v), &t.field("then")) {
                    p.action = a;
                }
            }
            if let Some(v) = t.get("log") {
                let field = t.field("log");
                match &v.node {
                    Node::Bool(b) => {
                        p.log = PolicyLog {
                            session_init: *b,
                            session_close: *b,
                        }
                    }
                    _ => {
                        for s in ctx.as_str_list(v, t.vspan(v), &field).unwrap_or_default() {
                            match s.s {
                                "session-init" => p.log.session_init = true,
                                "session-close" => p.log.session_close = true,
                                other => {
                                    let msg = format!(
                                        "unknown log option '{other}'{}",
                                        hint(
                                            other,
                                            &["session-init", "session-close"],
                                            "log option"
                                        )
                                    );
                                    ctx.err(&s.span, &field, msg);
                                }
                            }
                        }
                    }
                }
            }
            p.count = ctx.opt_bool(&t, "count").unwrap_or(false);
            if let Some(b) = ctx.opt_bool(&t, "audit") {
                if b && p.action == PolicyAction::Permit {
                    let span = t.vspan(t.get("audit").expect("just read"));
                    ctx.err(
                        &span,
                        &t.field("audit"),
                        "audit applies to deny and reject policies (it logs what they would drop and lets it pass)",
                    );
                }
                p.audit = b;
            }
        }
        out.push(p);
    }
    out
}

pub(super) fn policy_action(
    ctx: &mut Ctx,
    v: &Value,
    span: Span,
    field: &str,
) -> Option<PolicyAction> {
    let s = ctx.as_str(v, span, field)?;
    match s.s {
        "permit" => Some(PolicyAction::Permit),
        "deny" => Some(PolicyAction::Deny),
        "reject" => Some(PolicyAction::Reject),
        other => {
            let msg = format!(
                "unknown action '{other}'{}",
                hint(other, &["permit", "deny", "reject"], "action")
            );
            ctx.err(&s.span, field, msg);
            None
        }
    }
}

pub(super) fn default_policy(ctx: &mut Ctx, root: &Tbl) -> DefaultPolicy {
    let mut d = DefaultPolicy::default();
    let Some(v) = root.get("default-policy") else {
        return d;
    };
    let Some(t) = ctx.table(v, &root.span, "default-policy".into()) else {
        return d;
    };
    ctx.check_keys(
        &t,
        &super::keys::names("[default-policy]"),
        "[default-policy]",
    );
    if let Some(v) = t.get("then") {
        if let Some(a) = policy_action(ctx, v, t.vspan(v), &t.field("then")) {
            d.action = a;
        }
    }
    d.log = ctx.opt_bool(&t, "log").unwrap_or(false);
    d
}
