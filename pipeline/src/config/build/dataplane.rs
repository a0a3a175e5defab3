//! `[dataplane]`.

use super::*;

pub(super) fn dataplane(ctx: &mut Ctx, root: &Tbl) -> Dataplane {
    let mut d = Dataplane::default();
    let Some(v) = root.get("dataplane") else {
        return d;
    };
    let Some(t) = ctx.table(v, &root.span, "dataplane".into()) else {
        return d;
    };
    ctx.check_keys(&t, &super::keys::names("[dataplane]"), "[dataplane]");
    if let Some(s) = ctx.opt_str(&t, "node") {
        if node_name_ok(s.s) {
            d.node = Some(s.s.to_owned());
        } else {
            ctx.err(
                &s.span,
                &t.field("node"),
                format!(
                    "must be 1 to {} letters, digits, '.', '-' or '_' (it is part of every event id), found {:?}",
                    MAX_NODE_LEN,
                    s.s
                ),
            );
        }
    }
    if let Some(n) = ctx.opt_int(&t, "workers", 1, u16::MAX.into()) {
        d.workers = n as u16;
    }
    if let Some(v) = t.get("eal") {
        let field = t.field("eal");
        match &v.node {
            Node::Array(items) => {
                for item in items {
                    if let Some(s) = ctx.as_str(item, item.span_or(&t.vspan(v)), &field) {
                        d.eal.push(s.s.to_owned());
                    }
                }
            }
            _ => ctx.type_err(v, &t.vspan(v), &field, "an array of strings"),
        }
    }
    d
}
