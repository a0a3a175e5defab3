//! `[address-book]`.

use super::*;

/// An address-book reference or a literal prefix, to prefixes.
pub(super) fn address(
    ctx: &mut Ctx,
    name: &S,
    field: &str,
    book: &AddressBook,
) -> Option<Vec<Prefix>> {
    if let Some(p) = book.get(name.s) {
        return Some(p);
    }
    if looks_like_address(name.s) {
        return match name.s.parse::<Prefix>() {
            Ok(p) => Some(vec![p]),
            Err(e) => {
                ctx.err(&name.span, field, format!("bad prefix: {e}"));
                None
            }
        };
    }
    let mut names: Vec<&str> = book.entries.iter().map(|e| e.name.as_str()).collect();
    names.extend(["any", "any-ipv4", "any-ipv6"]);
    let msg = format!(
        "unknown address-book entry '{}'{}",
        name.s,
        hint(name.s, &names, "address-book entry")
    );
    ctx.err(&name.span, field, msg);
    None
}

pub(super) fn looks_like_address(s: &str) -> bool {
    s.contains(['/', ':']) || s.starts_with(|c: char| c.is_ascii_digit())
}

pub(super) fn parse_prefix(ctx: &mut Ctx, s: &S, field: &str) -> Option<Prefix> {
    match s.s.parse::<Prefix>() {
        Ok(p) => Some(p),
        Err(e) => {
            ctx.err(&s.span, field, format!("bad prefix: {e}"));
            None
        }
    }
}

pub(super) fn address_book(ctx: &mut Ctx, root: &Tbl) -> AddressBook {
    let Some(v) = root.get("address-book") else {
        return AddressBook::default();
    };
    let Some(all) = ctx.table(v, &root.span, "address-book".into()) else {
        return AddressBook::default();
    };
    let mut entries: Vec<SetEntry<Prefix>> = Vec::new();
    for (k, v) in all.entries {
        let field = all.field(&k.name);
        let kspan = k.span_or(&all.span);
        if ctx.name_ok(&k.name, &kspan, &field, "address-book") {
            if builtin_address(&k.name).is_some() {
                ctx.err(
                    &kspan,
                    &field,
                    format!("'{}' is built in and cannot be redefined", k.name),
                );
            } else if looks_like_address(&k.name) {
                ctx.err(
                    &kspan,
                    &field,
                    format!(
                        "address-book name '{}' looks like an address; pick a name",
                        k.name
                    ),
                );
            }
        }
        let mut e = SetEntry {
            name: &k.name,
            leaves: Vec::new(),
            members: Vec::new(),
            field: field.clone(),
        };
        let vspan = v.span_or(&kspan);
        match &v.node {
            Node::Table(_) => {
                if let Some(t) = ctx.table(v, &kspan, field.clone()) {
                    ctx.check_keys(
                        &t,
                        &super::keys::names("[address-book] NAME = { }"),
                        "an address-book entry",
                    );
                    if let Some(m) = t.get("address-set") {
                        e.members = ctx
                            .as_str_list(m, t.vspan(m), &t.field("address-set"))
                            .unwrap_or_default();
                    }
                    if let Some(a) = t.get("address") {
                        let f = t.field("address");
                        for s in ctx.as_str_list(a, t.vspan(a), &f).unwrap_or_default() {
                            e.leaves.extend(parse_prefix(ctx, &s, &f));
                        }
                    }
                    if t.entries.is_empty() {
                        ctx.err(&vspan, &field, "empty address-book entry");
                    }
                }
            }
            Node::Array(_) | Node::Str(_) => {
                for s in ctx.as_str_list(v, vspan, &field).unwrap_or_default() {
                    e.leaves.extend(parse_prefix(ctx, &s, &field));
                }
            }
            _ => ctx.type_err(
                v,
                &vspan,
                &field,
                "a list of prefixes or a table { address-set = [...] }",
            ),
        }
        entries.push(e);
    }
    let kind = SetKind {
        set: "address-set",
        member: "address-book entry",
        builtin: &builtin_address,
        builtin_names: &["any", "any-ipv4", "any-ipv6"],
        list_known: false,
    };
    let resolved = resolve_sets(ctx, &entries, &kind);
    AddressBook::new(
        entries
            .iter()
            .zip(resolved)
            .map(|(e, prefixes)| AddressEntry {
                name: e.name.to_owned(),
                prefixes,
            })
            .collect(),
    )
}
