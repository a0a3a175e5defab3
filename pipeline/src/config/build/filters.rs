//! `[[filter]]` and its terms.

use super::*;

pub(super) fn filter_addresses(
    ctx: &mut Ctx,
    t: &Tbl,
    key: &str,
    book: &AddressBook,
) -> Option<Vec<AddrMatch>> {
    let v = t.get(key)?;
    let field = t.field(key);
    let items = ctx.as_str_list(v, t.vspan(v), &field)?;
    let mut out = Vec::new();
    for item in items {
        let mut words = item.s.split_whitespace();
        let (name, except) = match (words.next(), words.next(), words.next()) {
            (Some(n), None, None) => (n, false),
            (Some(n), Some("except"), None) => (n, true),
            _ => {
                ctx.err(
                    &item.span,
                    &field,
                    format!("'{}': expected a prefix or address-book name, optionally followed by 'except'", item.s),
                );
                continue;
            }
        };
        let s = S {
            s: name,
            span: item.span.clone(),
        };
        for prefix in address(ctx, &s, &field, book).unwrap_or_default() {
            out.push(AddrMatch { prefix, except });
        }
    }
    let out = dedup(out);
    if !out.is_empty() && out.iter().all(|m| m.except) {
        ctx.err(
            &t.vspan(v),
            &field,
            "only 'except' entries: this never matches",
        );
    }
    Some(out)
}

pub(super) fn term_match(ctx: &mut Ctx, t: &Tbl, book: &AddressBook) -> TermMatch {
    ctx.check_keys(
        t,
        &super::keys::names("[[filter.term]] from"),
        "a term's from",
    );
    let mut m = TermMatch {
        source_address: filter_addresses(ctx, t, "source-address", book),
        destination_address: filter_addresses(ctx, t, "destination-address", book),
        ..TermMatch::default()
    };
    if let Some(v) = t.get("protocol") {
        let field = t.field("protocol");
        let list = ctx.one_or_many(v, t.vspan(v), &field, |ctx, item, span| {
            protocol(ctx, item, span, &field)
        });
        if let Some(list) = list {
            // `any` anywhere in the list: no protocol condition.
            if list.iter().all(Option::is_some) {
                m.protocol = Some(dedup(list.into_iter().flatten()));
            }
        }
    }
    for (key, slot) in [
        ("source-port", &mut m.source_port),
        ("destination-port", &mut m.destination_port),
    ] {
        if let Some(v) = t.get(key) {
            let field = t.field(key);
            *slot = ctx.one_or_many(v, t.vspan(v), &field, |ctx, item, span| {
                port_range(ctx, item, span, &field)
            });
            if let Some(p) = &m.protocol {
                if !p
                    .iter()
                    .any(|p| matches!(*p, proto::TCP | proto::UDP | SCTP))
                {
                    ctx.err(&t.vspan(v), &field, "ports need protocol tcp, udp or sctp");
                }
            }
        }
    }
    if let Some(v) = t.get("tcp-flags") {
        let field = t.field("tcp-flags");
        if let Some(exprs) = ctx.as_str_list(v, t.vspan(v), &field) {
            let mut flags = TcpFlags::default();
            let mut ok = true;
            for e in exprs {
                if let Err(msg) = parse_tcp_flags(e.s, &mut flags) {
                    ctx.err(&e.span, &field, msg);
                    ok = false;
                }
            }
            if ok {
                m.tcp_flags = Some(flags);
            }
        }
        if let Some(p) = &m.protocol {
            if !p.contains(&proto::TCP) {
                ctx.err(&t.vspan(v), &field, "tcp-flags needs protocol tcp");
            }
        }
    }
    for (key, slot, names) in [
        ("icmp-type", &mut m.icmp_type, ICMP_TYPE_NAMES),
        ("icmp-code", &mut m.icmp_code, &[][..]),
    ] {
        if let Some(v) = t.get(key) {
            let field = t.field(key);
            *slot = ctx.one_or_many(v, t.vspan(v), &field, |ctx, item, span| {
                icmp_value(ctx, item, span, &field, names)
            });
            if let Some(p) = &m.protocol {
                if !p.iter().any(|p| matches!(*p, proto::ICMP | proto::ICMPV6)) {
                    ctx.err(
                        &t.vspan(v),
                        &field,
                        format!("{key} needs protocol icmp or icmp6"),
                    );
                }
            }
        }
    }
    if let Some(v) = t.get("dscp") {
        let field = t.field("dscp");
        m.dscp = ctx
            .one_or_many(v, t.vspan(v), &field, |ctx, item, span| {
                dscp(ctx, item, span, &field)
            })
            .map(dedup);
    }
    if let (Some(_), Some(v)) = (t.get("fragment"), t.get("is-fragment")) {
        ctx.err(
            &t.vspan(v),
            &t.field("is-fragment"),
            "give either fragment or is-fragment, not both",
        );
    }
    m.is_fragment = ctx
        .opt_bool(t, "fragment")
        .or_else(|| ctx.opt_bool(t, "is-fragment"));
    m.first_fragment = ctx.opt_bool(t, "first-fragment");
    m
}

pub(super) fn term_action(ctx: &mut Ctx, t: &Tbl) -> Option<TermAction> {
    ctx.check_keys(
        t,
        &super::keys::names("[[filter.term]] then"),
        "a term's then",
    );
    let av = ctx.required(t, "action")?;
    let a = ctx.as_str(av, t.vspan(av), &t.field("action"))?;
    let action = match a.s {
        "accept" => FilterAction::Accept,
        "discard" => FilterAction::Discard,
        "reject" => FilterAction::Reject,
        other => {
            let msg = format!(
                "unknown action '{other}'{}",
                hint(other, &["accept", "discard", "reject"], "action")
            );
            ctx.err(&a.span, &t.field("action"), msg);
            return None;
        }
    };
    Some(TermAction {
        action,
        log: ctx.opt_bool(t, "log").unwrap_or(false),
        count: ctx.opt_bool(t, "count").unwrap_or(false),
    })
}

pub(super) fn filters(ctx: &mut Ctx, root: &Tbl, book: &AddressBook) -> Vec<Filter> {
    let Some(v) = root.get("filter") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut seen = HashMap::new();
    for (i, fv, fspan) in ctx.array_of_tables(v, &root.span, "filter") {
        let path = entry_path("", "filter", fv, i);
        let mut f = Filter {
            name: format!("#{i}"),
            terms: Vec::new(),
        };
        if let Some(t) = ctx.table(fv, &fspan, path.clone()) {
            ctx.check_keys(&t, &super::keys::names("[[filter]]"), "a filter");
            if let Some(nv) = ctx.required(&t, "name") {
                if let Some(name) = ctx.as_str(nv, t.vspan(nv), &t.field("name")) {
                    if ctx.name_ok(name.s, &name.span, &t.field("name"), "filter") {
                        unique(ctx, &mut seen, &name, &t.field("name"), "filter");
                    }
                    f.name = name.s.to_owned();
                }
            }
            if let Some(tv) = t.get("term") {
                let mut term_names = HashMap::new();
                let term_path = t.field("term");
                for (j, termv, tspan) in ctx.array_of_tables(tv, &t.span, &term_path) {
                    let tpath = entry_path(&path, "term", termv, j);
                    let Some(tt) = ctx.table(termv, &tspan, tpath) else {
                        continue;
                    };
                    ctx.check_keys(&tt, &super::keys::names("[[filter.term]]"), "a filter term");
                    let mut term_name = format!("#{j}");
                    if let Some(nv) = ctx.required(&tt, "name") {
                        if let Some(name) = ctx.as_str(nv, tt.vspan(nv), &tt.field("name")) {
                            if ctx.name_ok(name.s, &name.span, &tt.field("name"), "term") {
                                unique(ctx, &mut term_names, &name, &tt.field("name"), "term");
                            }
                            term_name = name.s.to_owned();
                        }
                    }
                    let from = match tt.get("from") {
                        Some(v) => match ctx.table(v, &tt.span, tt.field("from")) {
                            Some(ft) => term_match(ctx, &ft, book),
                            None => TermMatch::default(),
                        },
                        None => TermMatch::default(),
                    };
                    let then = ctx
                        .required(&tt, "then")
                        .and_then(|v| ctx.table(v, &tt.span, tt.field("then")))
                        .and_then(|th| term_action(ctx, &th));
                    f.terms.push(Term {
                        name: term_name,
                        from,
                        then: then.unwrap_or(TermAction {
                            action: FilterAction::Discard,
                            log: false,
                            count: false,
                        }),
                    });
                }
            }
        }
        out.push(f);
    }
    out
}
