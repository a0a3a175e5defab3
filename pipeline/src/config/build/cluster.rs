//! `[cluster]`.

use super::*;

pub(super) fn cluster(ctx: &mut Ctx, root: &Tbl) -> Option<Cluster> {
    let v = root.get("cluster")?;
    let t = ctx.table(v, &root.span, "cluster".into())?;
    ctx.check_keys(&t, &super::keys::names("[cluster]"), "[cluster]");
    let errors_before = ctx.errors.len();
    let name = match ctx.opt_str(&t, "name") {
        Some(s) if node_name_ok(s.s) => Some(s.s.to_owned()),
        Some(s) => {
            ctx.err(
                &s.span,
                &t.field("name"),
                format!(
                    "must be 1 to {MAX_NODE_LEN} letters, digits, '.', '-' or '_' (it starts session records' event ids), found {:?}",
                    s.s
                ),
            );
            None
        }
        None => {
            ctx.err(
                &t.span,
                &t.field("name"),
                "required: the pair's name, the same on both nodes",
            );
            None
        }
    };
    let node_id = match ctx.opt_int(&t, "node-id", 1, 255) {
        Some(n) => Some(n as u8),
        None if t.get("node-id").is_none() => {
            ctx.err(
                &t.span,
                &t.field("node-id"),
                "required: 1 to 255, different on the two nodes",
            );
            None
        }
        None => None,
    };
    let priority = ctx
        .opt_int(&t, "priority", 0, 255)
        .map_or(Cluster::DEFAULT_PRIORITY, |n| n as u8);
    let address = |ctx: &mut Ctx, key: &str, required: bool| -> Option<std::net::SocketAddr> {
        let Some(s) = ctx.opt_str(&t, key) else {
            if required {
                ctx.err(
                    &t.span,
                    &t.field(key),
                    "required: an address and UDP port, such as \"192.0.2.1:7410\"",
                );
            }
            return None;
        };
        match s.s.parse::<std::net::SocketAddr>() {
            Ok(a) if a.port() != 0 => Some(a),
            _ => {
                ctx.err(
                    &s.span,
                    &t.field(key),
                    format!(
                        "must be an address and UDP port, such as \"192.0.2.1:7410\", found {:?}",
                        s.s
                    ),
                );
                None
            }
        }
    };
    let local = address(ctx, "local", true);
    let peer = address(ctx, "peer", true);
    let heartbeat_local = address(ctx, "heartbeat-local", false);
    let heartbeat_peer = address(ctx, "heartbeat-peer", false);
    if heartbeat_local.is_some() != heartbeat_peer.is_some() {
        ctx.err(
            &t.span,
            &t.field(if heartbeat_local.is_some() {
                "heartbeat-peer"
            } else {
                "heartbeat-local"
            }),
            "a second heartbeat path needs both heartbeat-local and heartbeat-peer",
        );
    }
    let heartbeat_interval_ms = ctx
        .opt_int(&t, "heartbeat-interval-ms", 10, 10_000)
        .map_or(Cluster::DEFAULT_HEARTBEAT_INTERVAL_MS, |n| n as u32);
    let hold_time_ms = ctx
        .opt_int(&t, "hold-time-ms", 30, 60_000)
        .map_or(Cluster::DEFAULT_HOLD_TIME_MS, |n| n as u32);
    if hold_time_ms < 3 * heartbeat_interval_ms {
        let span = t.get("hold-time-ms").map_or(t.span.clone(), |v| t.vspan(v));
        ctx.err(
            &span,
            &t.field("hold-time-ms"),
            format!(
                "must be at least three heartbeat intervals ({} ms): one lost heartbeat must not look like a dead peer",
                3 * heartbeat_interval_ms
            ),
        );
    }
    let preempt = ctx.opt_bool(&t, "preempt").unwrap_or(false);
    let takeover_on_sync_loss = ctx.opt_bool(&t, "takeover-on-sync-loss").unwrap_or(false);
    if heartbeat_peer.is_none() && !takeover_on_sync_loss {
        ctx.err(
            &t.span,
            &t.field("heartbeat-peer"),
            "with the sync link as the only heartbeat path a lost link looks like a dead peer: \
             add a second path (heartbeat-local and heartbeat-peer), or set takeover-on-sync-loss = true to accept two actives when the link alone fails",
        );
    }
    if heartbeat_peer.is_some() && takeover_on_sync_loss {
        let span = t
            .get("takeover-on-sync-loss")
            .map_or(t.span.clone(), |v| t.vspan(v));
        ctx.err(
            &span,
            &t.field("takeover-on-sync-loss"),
            "applies only without a second heartbeat path (with one, a standby takes over when both are silent)",
        );
    }
    if let (Some(l), Some(p)) = (local, peer) {
        if l == p {
            ctx.err(
                &t.span,
                &t.field("peer"),
                "is this node's own address: the peer listens elsewhere",
            );
        }
    }
    if ctx.errors.len() > errors_before {
        return None;
    }
    Some(Cluster {
        name: name?,
        node_id: node_id?,
        priority,
        local: local?,
        peer: peer?,
        heartbeat_local,
        heartbeat_peer,
        heartbeat_interval_ms,
        hold_time_ms,
        preempt,
        takeover_on_sync_loss,
    })
}
