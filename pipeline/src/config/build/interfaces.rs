//! `[[interface]]`.

use super::*;

pub(super) fn interfaces(
    ctx: &mut Ctx,
    root: &Tbl,
    zones: &[Zone],
    filters: &[Filter],
) -> Vec<Interface> {
    let Some(v) = root.get("interface") else {
        return Vec::new();
    };
    let entries = ctx.array_of_tables(v, &root.span, "interface");
    let zone_names: Vec<&str> = zones.iter().map(|z| z.name.as_str()).collect();
    let filter_names: Vec<&str> = filters.iter().map(|f| f.name.as_str()).collect();

    // Names first: peers may point forward.
    let mut seen = HashMap::new();
    let mut tables = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for (i, iv, ispan) in entries {
        let path = entry_path("", "interface", iv, i);
        let t = ctx.table(iv, &ispan, path);
        let mut name = format!("#{i}");
        if let Some(t) = &t {
            if let Some(nv) = ctx.required(t, "name") {
                if let Some(n) = ctx.as_str(nv, t.vspan(nv), &t.field("name")) {
                    if ctx.name_ok(n.s, &n.span, &t.field("name"), "interface") {
                        unique(ctx, &mut seen, &n, &t.field("name"), "interface");
                    }
                    name = n.s.to_owned();
                }
            }
        }
        names.push(name);
        tables.push(t);
    }
    let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();

    let mut out = Vec::new();
    let mut declared_peer: Vec<Option<(usize, S)>> = Vec::new();
    let mut ports: HashMap<String, (usize, Span)> = HashMap::new();
    for (i, t) in tables.iter().enumerate() {
        let mut iface = Interface {
            name: names[i].clone(),
            device: String::new(),
            zone: 0,
            peer: None,
            input_filter: None,
            output_filter: None,
            mtu: Interface::DEFAULT_MTU,
        };
        let mut peer = None;
        if let Some(t) = t {
            ctx.check_keys(t, &super::keys::names("[[interface]]"), "an interface");
            if let Some(n) = ctx.opt_int(t, "mtu", 1280, Interface::MAX_MTU.into()) {
                iface.mtu = n as u16;
            }
            if let Some(dv) = ctx.required(t, "device") {
                if let Some(d) = ctx.as_str(dv, t.vspan(dv), &t.field("device")) {
                    match check_device(d.s) {
                        Ok(()) => {
                            check_vdev(ctx, &d, &t.field("device"));
                            iface.device = d.s.to_owned();
                            let port = iface.port_name().to_owned();
                            if let Some((other, _)) = ports.get(&port) {
                                let msg = format!(
                                    "device '{port}' is already used by interface '{}'",
                                    names[*other]
                                );
                                ctx.err(&d.span, &t.field("device"), msg);
                            } else {
                                ports.insert(port, (i, d.span.clone()));
                            }
                        }
                        Err(msg) => ctx.err(&d.span, &t.field("device"), msg),
                    }
                }
            }
            if let Some(zv) = ctx.required(t, "zone") {
                if let Some(z) = ctx.as_str(zv, t.vspan(zv), &t.field("zone")) {
                    iface.zone =
                        resolve_name(ctx, &z, &t.field("zone"), &zone_names, "zone").unwrap_or(0);
                }
            }
            if let Some(p) = ctx.opt_str(t, "peer") {
                if let Some(j) = resolve_name(ctx, &p, &t.field("peer"), &name_refs, "interface") {
                    if j == i {
                        ctx.err(
                            &p.span,
                            &t.field("peer"),
                            "an interface cannot be its own peer",
                        );
                    } else {
                        peer = Some((j, p));
                    }
                }
            }
            for (key, slot) in [
                ("input_filter", &mut iface.input_filter),
                ("output_filter", &mut iface.output_filter),
            ] {
                if let Some(f) = ctx.opt_str(t, key) {
                    *slot = resolve_name(ctx, &f, &t.field(key), &filter_names, "filter");
                }
            }
        }
        declared_peer.push(peer);
        out.push(iface);
    }

    // Peers are symmetric: A.peer = B implies B.peer = A.
    for (i, p) in declared_peer.iter().enumerate() {
        let Some((j, s)) = p else { continue };
        let field = format!("interface[{}].peer", names[i]);
        match &declared_peer[*j] {
            Some((k, _)) if *k != i => {
                let msg = format!(
                    "asymmetric peers: '{}' names '{}' as its peer, but '{}' names '{}'",
                    names[i], names[*j], names[*j], names[*k]
                );
                ctx.err(&s.span, &field, msg);
            }
            Some(_) => out[i].peer = Some(*j),
            None => match out[*j].peer {
                Some(k) if k != i => {
                    let msg = format!(
                        "'{}' is already the peer of '{}'; an interface has one peer",
                        names[*j], names[k]
                    );
                    ctx.err(&s.span, &field, msg);
                }
                _ => {
                    out[i].peer = Some(*j);
                    out[*j].peer = Some(i);
                }
            },
        }
    }
    out
}

/// A vdev's arguments against its driver's keys ([`vdev::DRIVERS`]) and,
/// when loading on a host, the files and interfaces they name: what would
/// make DPDK refuse the device and leave no port. Each error points at the
/// argument inside the device string.
fn check_vdev(ctx: &mut Ctx, d: &S, field: &str) {
    for (offset, msg) in vdev::problems(d.s, ctx.host) {
        let span = ctx.inner_span(d, offset);
        ctx.err(&span, field, msg);
    }
}
