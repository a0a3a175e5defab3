//! `[telemetry]`.

use super::*;

pub(super) fn telemetry(ctx: &mut Ctx, root: &Tbl) -> Telemetry {
    let mut t = Telemetry::default();
    let Some(v) = root.get("telemetry") else {
        return t;
    };
    let Some(tbl) = ctx.table(v, &root.span, "telemetry".into()) else {
        return t;
    };
    ctx.check_keys(&tbl, &super::keys::names("[telemetry]"), "[telemetry]");
    if let Some(s) = ctx.opt_str(&tbl, "prometheus") {
        // A bare port means loopback: nothing listens on the network unless asked.
        let text = if s.s.parse::<u16>().is_ok() {
            format!("127.0.0.1:{}", s.s)
        } else {
            s.s.to_string()
        };
        match text.parse::<std::net::SocketAddr>() {
            Ok(addr) => t.prometheus = Some(addr),
            Err(_) => ctx.err(
                &s.span,
                &tbl.field("prometheus"),
                format!("must be HOST:PORT or a port (loopback), found {:?}", s.s),
            ),
        }
    }
    t
}
