//! `[flow]` and `[flow.timeouts]`.

use super::*;

pub(super) fn flow(ctx: &mut Ctx, root: &Tbl) -> Flow {
    let mut f = Flow::default();
    let Some(v) = root.get("flow") else {
        return f;
    };
    let Some(t) = ctx.table(v, &root.span, "flow".into()) else {
        return f;
    };
    ctx.check_keys(&t, &super::keys::names("[flow]"), "[flow]");
    if let Some(m) = ctx.opt_str(&t, "mtu-exceeded") {
        match m.s {
            "drop" => f.mtu_exceeded_reject = false,
            "reject" => f.mtu_exceeded_reject = true,
            other => ctx.err(
                &m.span,
                &t.field("mtu-exceeded"),
                format!("must be \"drop\" or \"reject\", found {other:?}"),
            ),
        }
    }
    if let Some(m) = ctx.opt_str(&t, "ipv6-nd") {
        match m.s {
            "permit" => f.ipv6_nd_permit = true,
            "policy" => f.ipv6_nd_permit = false,
            other => ctx.err(
                &m.span,
                &t.field("ipv6-nd"),
                format!("must be \"permit\" or \"policy\", found {other:?}"),
            ),
        }
    }
    if let Some(b) = ctx.opt_bool(&t, "tcp-syn-check") {
        f.tcp_syn_check = b;
    }
    if let Some(b) = ctx.opt_bool(&t, "tcp-sequence-check") {
        f.tcp_sequence_check = b;
    }
    if let Some(m) = ctx.opt_str(&t, "malformed") {
        match m.s {
            "drop" => f.malformed_forward = false,
            "forward" => f.malformed_forward = true,
            other => ctx.err(
                &m.span,
                &t.field("malformed"),
                format!("must be \"drop\" or \"forward\", found {other:?}"),
            ),
        }
    }
    if let Some(n) = ctx.opt_int(&t, "session-capacity", 1, 1 << 26) {
        f.session_capacity = n as u32;
    }
    if let Some(v) = t.get("timeouts") {
        if let Some(tt) = ctx.table(v, &t.vspan(v), t.field("timeouts")) {
            let keys = [
                "tcp-initial",
                "tcp-established",
                "tcp-closing",
                "udp",
                "icmp",
                "other",
            ];
            debug_assert_eq!(super::keys::names("[flow.timeouts]"), keys);
            ctx.check_keys(
                &tt,
                &super::keys::names("[flow.timeouts]"),
                "[flow.timeouts]",
            );
            let to = &mut f.timeouts;
            for (key, slot) in keys.iter().zip([
                &mut to.tcp_initial,
                &mut to.tcp_established,
                &mut to.tcp_closing,
                &mut to.udp,
                &mut to.icmp,
                &mut to.other,
            ]) {
                if let Some(n) = ctx.opt_int(&tt, key, 1, 86_400 * 7) {
                    *slot = n as u32;
                }
            }
        }
    }
    f
}
