//! Walks the spanned TOML tree, checks every setting and reference, and
//! builds the resolved [`Config`]. Every problem is recorded; the walk goes
//! on past errors so one run reports them all.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::path::PathBuf;

use super::error::{one_line, LineIndex};
use super::tree::{self, Key, Node, Span, Value};
use super::*;

pub(crate) const SCTP: u8 = 132;

/// Deepest allowed nesting of address or application sets.
const MAX_SET_DEPTH: usize = 64;

const VDEV_PREFIXES: &[&str] = &[
    "net_",
    "eth_",
    "virtio_user",
    "crypto_",
    "event_",
    "baseband_",
    "dma_",
    "raw_",
];

pub(crate) fn build(text: &str, origin: &str) -> Result<Config, ConfigErrors> {
    let mut ctx = Ctx {
        origin,
        index: LineIndex::new(text),
        errors: Vec::new(),
    };
    let root = match tree::parse(text) {
        Ok(root) => root,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            let mut message = e.message().trim().replace('\n', ": ");
            if message.is_empty() {
                // The TOML parser says nothing about some bad characters
                // (a NUL in a comment): name the character instead.
                message = match text.get(span.start..).and_then(|s| s.chars().next()) {
                    Some(c) if c.is_control() => {
                        format!("control character U+{:04X} is not allowed here", c as u32)
                    }
                    Some(c) => format!("unexpected character {c:?}"),
                    None => "unexpected end of file".into(),
                };
            }
            ctx.err(&span, "", message);
            return Err(ctx.finish());
        }
    };
    let config = build_config(&mut ctx, &root);
    if ctx.errors.is_empty() {
        Ok(config)
    } else {
        Err(ctx.finish())
    }
}

struct Ctx<'a> {
    origin: &'a str,
    index: LineIndex<'a>,
    errors: Vec<ConfigError>,
}

impl Ctx<'_> {
    fn err(&mut self, span: &Span, field: &str, message: impl Into<String>) {
        let (line, column) = self.index.position(span.start);
        self.errors.push(ConfigError {
            file: one_line(self.origin),
            line,
            column,
            field: one_line(field),
            message: one_line(&message.into()),
        });
    }

    fn finish(mut self) -> ConfigErrors {
        // Stable sort: errors at one place keep the order they were found in.
        self.errors.sort_by_key(|e| (e.line, e.column));
        self.errors.dedup();
        ConfigErrors {
            errors: self.errors,
        }
    }
}

/// A string from the file with its span.
#[derive(Clone, Debug)]
struct S<'v> {
    s: &'v str,
    span: Span,
}

/// A table of the file, with the span to blame for what it lacks and its
/// dotted path.
struct Tbl<'v> {
    entries: &'v [(Key, Value)],
    span: Span,
    path: String,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

impl<'v> Tbl<'v> {
    fn get(&self, key: &str) -> Option<&'v Value> {
        self.entries
            .iter()
            .find(|(k, _)| k.name == key)
            .map(|(_, v)| v)
    }

    fn field(&self, key: &str) -> String {
        join(&self.path, key)
    }

    fn vspan(&self, v: &Value) -> Span {
        v.span_or(&self.span)
    }
}

// ---------------------------------------------------------------------------
// Typed access with errors.

/// Edit distance counting an adjacent transposition as one edit (optimal
/// string alignment), so `tpc` is one typo away from `tcp`.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for i in 0..=a.len() {
        d[i * w] = i;
    }
    for (j, x) in d.iter_mut().enumerate().take(w) {
        *x = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[(i - 1) * w + j - 1] + cost)
                .min(d[(i - 1) * w + j] + 1)
                .min(d[i * w + j - 1] + 1);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[(i - 2) * w + j - 2] + 1);
            }
            d[i * w + j] = v;
        }
    }
    d[a.len() * w + b.len()]
}

/// The candidate closest to `word`, if it is close enough to be a typo.
fn closest<'c>(word: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    let len = word.chars().count();
    let limit = if len <= 3 { 1 } else { (len / 3).max(2) };
    candidates
        .into_iter()
        .map(|c| (edit_distance(&word.to_lowercase(), &c.to_lowercase()), c))
        .filter(|(d, c)| *d <= limit && *d < c.chars().count().max(word.chars().count()))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// ` (did you mean 'x'?)`, or a list of what exists, or what to define.
fn hint(word: &str, candidates: &[&str], kind: &str) -> String {
    if let Some(c) = closest(word, candidates.iter().copied()) {
        format!(" (did you mean '{c}'?)")
    } else if candidates.is_empty() {
        format!(" (no {kind} is defined)")
    } else if candidates.len() <= 12 {
        format!(" (known: {})", candidates.join(", "))
    } else {
        String::new()
    }
}

impl Ctx<'_> {
    fn check_keys(&mut self, t: &Tbl, known: &[&str], what: &str) {
        for (k, _) in t.entries {
            if !known.contains(&k.name.as_str()) {
                let msg = format!(
                    "unknown key '{}' in {what}{}",
                    k.name,
                    hint(&k.name, known, "key")
                );
                self.err(&k.span_or(&t.span), &t.field(&k.name), msg);
            }
        }
    }

    fn type_err(&mut self, v: &Value, span: &Span, field: &str, expected: &str) {
        let msg = format!("expected {expected}, found {}", v.node.type_name());
        self.err(span, field, msg);
    }

    fn table<'v>(&mut self, v: &'v Value, fallback: &Span, path: String) -> Option<Tbl<'v>> {
        let span = v.span_or(fallback);
        match &v.node {
            Node::Table(entries) => Some(Tbl {
                entries,
                span,
                path,
            }),
            _ => {
                self.type_err(v, &span, &path, "a table");
                None
            }
        }
    }

    fn required<'v>(&mut self, t: &Tbl<'v>, key: &str) -> Option<&'v Value> {
        let v = t.get(key);
        if v.is_none() {
            self.err(
                &t.span,
                &t.field(key),
                format!("missing required field '{key}'"),
            );
        }
        v
    }

    fn as_str<'v>(&mut self, v: &'v Value, span: Span, field: &str) -> Option<S<'v>> {
        match &v.node {
            Node::Str(s) => Some(S { s, span }),
            _ => {
                self.type_err(v, &span, field, "a string");
                None
            }
        }
    }

    fn as_bool(&mut self, v: &Value, span: Span, field: &str) -> Option<bool> {
        match v.node {
            Node::Bool(b) => Some(b),
            _ => {
                self.type_err(v, &span, field, "a boolean (true or false)");
                None
            }
        }
    }

    fn as_int(&mut self, v: &Value, span: Span, field: &str, lo: i64, hi: i64) -> Option<i64> {
        match v.node {
            Node::Int(n) if n < lo => {
                self.err(&span, field, format!("must be at least {lo}, found {n}"));
                None
            }
            Node::Int(n) if n > hi => {
                self.err(&span, field, format!("must be at most {hi}, found {n}"));
                None
            }
            Node::Int(n) => Some(n),
            _ => {
                self.type_err(v, &span, field, "an integer");
                None
            }
        }
    }

    /// A string or an array of strings (an empty array is an error).
    fn as_str_list<'v>(&mut self, v: &'v Value, span: Span, field: &str) -> Option<Vec<S<'v>>> {
        self.one_or_many(v, span, field, |ctx, item, span| {
            ctx.as_str(item, span, field)
        })
    }

    /// One value or a non-empty array of values, each converted by `f`.
    fn one_or_many<'v, T>(
        &mut self,
        v: &'v Value,
        span: Span,
        field: &str,
        mut f: impl FnMut(&mut Self, &'v Value, Span) -> Option<T>,
    ) -> Option<Vec<T>> {
        match &v.node {
            Node::Array(items) => {
                if items.is_empty() {
                    self.err(&span, field, "must not be an empty list");
                    return None;
                }
                let mut out = Vec::with_capacity(items.len());
                let mut ok = true;
                for item in items {
                    match f(self, item, item.span_or(&span)) {
                        Some(x) => out.push(x),
                        None => ok = false,
                    }
                }
                ok.then_some(out)
            }
            _ => f(self, v, span).map(|x| vec![x]),
        }
    }

    fn opt_str<'v>(&mut self, t: &Tbl<'v>, key: &str) -> Option<S<'v>> {
        let v = t.get(key)?;
        self.as_str(v, t.vspan(v), &t.field(key))
    }

    fn opt_bool(&mut self, t: &Tbl, key: &str) -> Option<bool> {
        let v = t.get(key)?;
        self.as_bool(v, t.vspan(v), &t.field(key))
    }

    fn opt_int(&mut self, t: &Tbl, key: &str, lo: i64, hi: i64) -> Option<i64> {
        let v = t.get(key)?;
        self.as_int(v, t.vspan(v), &t.field(key), lo, hi)
    }

    fn opt_u32(&mut self, t: &Tbl, key: &str) -> Option<u32> {
        self.opt_int(t, key, 0, u32::MAX.into())
            .and_then(|n| u32::try_from(n).ok())
    }

    /// Checks a name: non-empty, no whitespace.
    fn name_ok(&mut self, name: &str, span: &Span, field: &str, kind: &str) -> bool {
        if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            self.err(
                span,
                field,
                format!("{kind} name '{name}' must be non-empty and contain no whitespace"),
            );
            false
        } else {
            true
        }
    }

    /// The entries of an array of tables (`[[name]]`).
    fn array_of_tables<'v>(
        &mut self,
        v: &'v Value,
        fallback: &Span,
        path: &str,
    ) -> Vec<(usize, &'v Value, Span)> {
        match &v.node {
            Node::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| (i, item, item.span_or(&v.span_or(fallback))))
                .collect(),
            _ => {
                let span = v.span_or(fallback);
                self.type_err(v, &span, path, &format!("an array of tables ([[{path}]])"));
                Vec::new()
            }
        }
    }
}

/// `kind[name]` when the entry has a usable name, else `kind[index]`.
fn entry_path(parent: &str, kind: &str, v: &Value, i: usize) -> String {
    let name = match &v.node {
        Node::Table(entries) => {
            entries
                .iter()
                .find(|(k, _)| k.name == "name")
                .and_then(|(_, v)| match &v.node {
                    Node::Str(s) if !s.is_empty() => Some(s.as_str()),
                    _ => None,
                })
        }
        _ => None,
    };
    let label = match name {
        Some(n) => format!("{kind}[{n}]"),
        None => format!("{kind}[{i}]"),
    };
    join(parent, &label)
}

/// Records `name` in `seen`; reports a duplicate.
fn unique<'v>(
    ctx: &mut Ctx,
    seen: &mut HashMap<&'v str, Span>,
    name: &S<'v>,
    field: &str,
    kind: &str,
) -> bool {
    if let Some(first) = seen.get(name.s) {
        let (line, _) = ctx.index.position(first.start);
        let msg = format!(
            "duplicate {kind} name '{}' (first defined at line {line})",
            name.s
        );
        ctx.err(&name.span, field, msg);
        false
    } else {
        seen.insert(name.s, name.span.clone());
        true
    }
}

// ---------------------------------------------------------------------------
// Small value grammars.

fn protocol_number(name: &str) -> Option<u8> {
    Some(match name.to_ascii_lowercase().as_str() {
        "icmp" => proto::ICMP,
        "igmp" => 2,
        "tcp" => proto::TCP,
        "udp" => proto::UDP,
        "gre" => 47,
        "esp" => 50,
        "ah" => 51,
        "icmp6" | "icmpv6" => proto::ICMPV6,
        "ospf" => 89,
        "pim" => 103,
        "vrrp" => 112,
        "sctp" => SCTP,
        _ => return None,
    })
}

const PROTOCOL_NAMES: &[&str] = &[
    "any", "icmp", "igmp", "tcp", "udp", "gre", "esp", "ah", "icmp6", "icmpv6", "ospf", "pim",
    "vrrp", "sctp",
];

/// A protocol: a name, a number, or `any` (`None`).
fn protocol(ctx: &mut Ctx, v: &Value, span: Span, field: &str) -> Option<Option<u8>> {
    match &v.node {
        Node::Int(_) => ctx.as_int(v, span, field, 0, 255).map(|n| Some(n as u8)),
        Node::Str(s) if s.eq_ignore_ascii_case("any") => Some(None),
        Node::Str(s) => match protocol_number(s).or_else(|| s.parse::<u8>().ok()) {
            Some(p) => Some(Some(p)),
            None => {
                let msg = format!(
                    "unknown protocol '{s}'{}",
                    hint(s, PROTOCOL_NAMES, "protocol")
                );
                ctx.err(&span, field, msg);
                None
            }
        },
        _ => {
            ctx.type_err(v, &span, field, "a protocol name or number");
            None
        }
    }
}

fn port_range(ctx: &mut Ctx, v: &Value, span: Span, field: &str) -> Option<PortRange> {
    match &v.node {
        Node::Int(_) => ctx
            .as_int(v, span, field, 0, u16::MAX.into())
            .map(|n| PortRange::single(n as u16)),
        Node::Str(s) => match s.parse::<PortRange>() {
            Ok(r) => Some(r),
            Err(e) => {
                ctx.err(&span, field, e);
                None
            }
        },
        _ => {
            ctx.type_err(
                v,
                &span,
                field,
                "a port or a port range such as \"1024-65535\"",
            );
            None
        }
    }
}

const ICMP_TYPE_NAMES: &[(&str, u8)] = &[
    ("echo-reply", 0),
    ("unreachable", 3),
    ("source-quench", 4),
    ("redirect", 5),
    ("echo-request", 8),
    ("router-advertisement", 9),
    ("router-solicit", 10),
    ("time-exceeded", 11),
    ("parameter-problem", 12),
    ("timestamp", 13),
    ("timestamp-reply", 14),
];

fn icmp_value(
    ctx: &mut Ctx,
    v: &Value,
    span: Span,
    field: &str,
    names: &[(&str, u8)],
) -> Option<u8> {
    match &v.node {
        Node::Str(s) if !names.is_empty() => match names.iter().find(|(n, _)| n == s) {
            Some((_, t)) => Some(*t),
            None => {
                let known: Vec<&str> = names.iter().map(|(n, _)| *n).collect();
                let msg = format!("unknown ICMP name '{s}'{}", hint(s, &known, "name"));
                ctx.err(&span, field, msg);
                None
            }
        },
        _ => ctx.as_int(v, span, field, 0, 255).map(|n| n as u8),
    }
}

const DSCP_NAMES: &[(&str, u8)] = &[
    ("be", 0),
    ("cs0", 0),
    ("cs1", 8),
    ("af11", 10),
    ("af12", 12),
    ("af13", 14),
    ("cs2", 16),
    ("af21", 18),
    ("af22", 20),
    ("af23", 22),
    ("cs3", 24),
    ("af31", 26),
    ("af32", 28),
    ("af33", 30),
    ("cs4", 32),
    ("af41", 34),
    ("af42", 36),
    ("af43", 38),
    ("cs5", 40),
    ("ef", 46),
    ("cs6", 48),
    ("cs7", 56),
];

fn dscp(ctx: &mut Ctx, v: &Value, span: Span, field: &str) -> Option<u8> {
    match &v.node {
        Node::Str(s) => match DSCP_NAMES.iter().find(|(n, _)| n.eq_ignore_ascii_case(s)) {
            Some((_, d)) => Some(*d),
            None => {
                let known: Vec<&str> = DSCP_NAMES.iter().map(|(n, _)| *n).collect();
                let msg = format!("unknown DSCP name '{s}'{}", hint(s, &known, "name"));
                ctx.err(&span, field, msg);
                None
            }
        },
        _ => ctx.as_int(v, span, field, 0, 63).map(|n| n as u8),
    }
}

const TCP_FLAG_NAMES: &[(&str, u8)] = &[
    ("fin", tcp_flag::FIN),
    ("syn", tcp_flag::SYN),
    ("rst", tcp_flag::RST),
    ("psh", tcp_flag::PSH),
    ("push", tcp_flag::PSH),
    ("ack", tcp_flag::ACK),
    ("urg", tcp_flag::URG),
    ("urgent", tcp_flag::URG),
    ("ece", tcp_flag::ECE),
    ("cwr", tcp_flag::CWR),
];

/// Adds one `&`-joined expression (`"syn & !ack"`) to `flags`.
fn parse_tcp_flags(expr: &str, flags: &mut TcpFlags) -> Result<(), String> {
    if expr.contains('|') {
        return Err(format!(
            "tcp-flags '{expr}': only '&' conjunctions are supported (write one term per alternative)"
        ));
    }
    for token in expr.split('&') {
        let token = token.trim();
        let (negated, name) = match token.strip_prefix('!') {
            Some(rest) => (true, rest.trim()),
            None => (false, token),
        };
        let name = name.to_ascii_lowercase();
        if name == "tcp-initial" && !negated {
            flags.required |= tcp_flag::SYN;
            flags.forbidden |= tcp_flag::ACK;
            continue;
        }
        let Some((_, bit)) = TCP_FLAG_NAMES.iter().find(|(n, _)| *n == name) else {
            let known: Vec<&str> = TCP_FLAG_NAMES.iter().map(|(n, _)| *n).collect();
            return Err(format!(
                "tcp-flags '{expr}': unknown flag '{name}'{}",
                hint(&name, &known, "flag")
            ));
        };
        if negated {
            flags.forbidden |= bit;
        } else {
            flags.required |= bit;
        }
    }
    if flags.required & flags.forbidden != 0 {
        return Err(format!(
            "tcp-flags '{expr}': a flag is both required and forbidden"
        ));
    }
    Ok(())
}

pub(crate) fn is_pci_address(s: &str) -> bool {
    fn hex(s: &str, n: usize) -> bool {
        s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit())
    }
    let parts: Vec<&str> = s.split(':').collect();
    let (domain, bus, devfn) = match parts[..] {
        [d, b, df] => (Some(d), b, df),
        [b, df] => (None, b, df),
        _ => return false,
    };
    let Some((dev, func)) = devfn.split_once('.') else {
        return false;
    };
    let domain_ok = match domain {
        Some(d) => hex(d, 4),
        None => true,
    };
    domain_ok
        && hex(bus, 2)
        && hex(dev, 2)
        && func.len() == 1
        && matches!(func.as_bytes()[0], b'0'..=b'7')
}

fn check_device(device: &str) -> Result<(), String> {
    if is_pci_address(device) {
        return Ok(());
    }
    let shapes = format!(
        "expected a DPDK vdev (driver prefix {}, e.g. \"net_pcap0,rx_pcap=in.pcap\") or a PCI address (DDDD:BB:DD.F or BB:DD.F)",
        VDEV_PREFIXES.join(", ")
    );
    let mut parts = device.split(',');
    let name = parts.next().unwrap_or("");
    let Some(prefix) = VDEV_PREFIXES.iter().find(|p| name.starts_with(**p)) else {
        return Err(format!("'{device}': {shapes}"));
    };
    let rest = &name[prefix.len()..];
    let rest_ok = name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !rest_ok || (rest.is_empty() && prefix.ends_with('_')) {
        return Err(format!(
            "'{device}': vdev name '{name}' must be a driver prefix followed by letters, digits or '_'"
        ));
    }
    for arg in parts {
        let key = arg.split_once('=').map_or(arg, |(k, _)| k);
        if key.is_empty()
            || !key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(format!(
                "'{device}': bad vdev argument '{arg}' (expected key=value)"
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Named sets (address sets, application sets).

struct SetEntry<'v, T> {
    name: &'v str,
    leaves: Vec<T>,
    members: Vec<S<'v>>,
    field: String,
}

fn dedup<T: Clone + Eq + Hash>(items: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut seen = HashSet::new();
    items
        .into_iter()
        .filter(|x| seen.insert(x.clone()))
        .collect()
}

/// How a kind of named set is called in messages, and its built-ins.
struct SetKind<'k, T> {
    /// `address-set`, `application-set`.
    set: &'k str,
    /// `address-book entry`, `application`.
    member: &'k str,
    builtin: &'k dyn Fn(&str) -> Option<Vec<T>>,
    builtin_names: &'k [&'k str],
}

/// Flattens every entry: its leaves plus those of its members, recursively.
/// Reports unknown members, cycles and too-deep nesting.
fn resolve_sets<T: Clone + Eq + Hash>(
    ctx: &mut Ctx,
    entries: &[SetEntry<T>],
    kind: &SetKind<T>,
) -> Vec<Vec<T>> {
    #[derive(Clone, PartialEq)]
    enum State {
        New,
        Active,
        Done,
    }
    struct Walk<'e, 'v, 'k, T> {
        entries: &'e [SetEntry<'v, T>],
        kind: &'e SetKind<'k, T>,
        by_name: HashMap<&'v str, usize>,
        names: Vec<&'e str>,
        state: Vec<State>,
        out: Vec<Vec<T>>,
        stack: Vec<usize>,
    }
    fn visit<T: Clone + Eq + Hash>(w: &mut Walk<T>, ctx: &mut Ctx, i: usize) {
        w.state[i] = State::Active;
        w.stack.push(i);
        let entries = w.entries;
        let kind = w.kind;
        let e = &entries[i];
        let mut acc: Vec<T> = e.leaves.clone();
        for m in &e.members {
            if let Some(b) = (kind.builtin)(m.s) {
                acc.extend(b);
                continue;
            }
            let Some(&j) = w.by_name.get(m.s) else {
                let msg = format!(
                    "unknown {} '{}'{}",
                    kind.member,
                    m.s,
                    hint(m.s, &w.names, kind.member)
                );
                ctx.err(&m.span, &e.field, msg);
                continue;
            };
            match w.state[j] {
                State::Done => acc.extend(w.out[j].iter().cloned()),
                State::Active => {
                    let from = w.stack.iter().position(|&x| x == j).unwrap_or(0);
                    let mut cycle: Vec<&str> =
                        w.stack[from..].iter().map(|&x| entries[x].name).collect();
                    cycle.push(entries[j].name);
                    let msg = format!("{} cycle: {}", kind.set, cycle.join(" -> "));
                    ctx.err(&m.span, &e.field, msg);
                }
                State::New if w.stack.len() >= MAX_SET_DEPTH => {
                    let msg = format!("{}s nest deeper than {MAX_SET_DEPTH} levels", kind.set);
                    ctx.err(&m.span, &e.field, msg);
                }
                State::New => {
                    visit(w, ctx, j);
                    acc.extend(w.out[j].iter().cloned());
                }
            }
        }
        w.out[i] = dedup(acc);
        w.state[i] = State::Done;
        w.stack.pop();
    }

    let mut w = Walk {
        entries,
        kind,
        by_name: entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.name, i))
            .collect(),
        names: entries
            .iter()
            .map(|e| e.name)
            .chain(kind.builtin_names.iter().copied())
            .collect(),
        state: vec![State::New; entries.len()],
        out: vec![Vec::new(); entries.len()],
        stack: Vec::new(),
    };
    for i in 0..entries.len() {
        if w.state[i] == State::New {
            visit(&mut w, ctx, i);
        }
    }
    w.out
}

// ---------------------------------------------------------------------------
// The sections.

const TOP_KEYS: &[&str] = &[
    "dataplane",
    "events",
    "interface",
    "zone",
    "screen",
    "address-book",
    "application",
    "policy",
    "default-policy",
    "filter",
    "flow",
    "telemetry",
    "zone-pair",
];

fn build_config(ctx: &mut Ctx, root: &Value) -> Config {
    let Some(root) = ctx.table(root, &(0..0), String::new()) else {
        return empty_config();
    };
    let root = Tbl { span: 0..0, ..root };
    ctx.check_keys(&root, TOP_KEYS, "the config");

    let dataplane = dataplane(ctx, &root);
    let events = events(ctx, &root);
    let screens = screens(ctx, &root);
    let screen_names: Vec<&str> = screens.iter().map(|s| s.name.as_str()).collect();
    let mut zones = zones(ctx, &root, &screen_names);
    let address_book = address_book(ctx, &root);
    let applications = applications(ctx, &root);
    let filters = filters(ctx, &root, &address_book);
    let interfaces = interfaces(ctx, &root, &zones, &filters);
    for (i, iface) in interfaces.iter().enumerate() {
        if let Some(z) = zones.get_mut(iface.zone) {
            z.interfaces.push(i);
        }
    }
    let policies = policies(ctx, &root, &zones, &address_book, &applications);
    let default_policy = default_policy(ctx, &root);
    let flow = flow(ctx, &root);
    let telemetry = telemetry(ctx, &root);
    let audit_zone_pairs = zone_pairs(ctx, &root, &zones);
    Config {
        dataplane,
        events,
        interfaces,
        zones,
        screens,
        address_book,
        applications,
        policies,
        default_policy,
        filters,
        flow,
        telemetry,
        audit_zone_pairs,
    }
}

fn empty_config() -> Config {
    Config {
        dataplane: Dataplane::default(),
        events: EventsConfig::default(),
        interfaces: Vec::new(),
        zones: Vec::new(),
        screens: Vec::new(),
        address_book: AddressBook::default(),
        applications: Vec::new(),
        policies: Vec::new(),
        default_policy: DefaultPolicy::default(),
        filters: Vec::new(),
        flow: Flow::default(),
        telemetry: Telemetry::default(),
        audit_zone_pairs: Vec::new(),
    }
}

fn telemetry(ctx: &mut Ctx, root: &Tbl) -> Telemetry {
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

fn flow(ctx: &mut Ctx, root: &Tbl) -> Flow {
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

fn dataplane(ctx: &mut Ctx, root: &Tbl) -> Dataplane {
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

fn events(ctx: &mut Ctx, root: &Tbl) -> EventsConfig {
    let mut e = EventsConfig::default();
    let Some(v) = root.get("events") else {
        return e;
    };
    let Some(t) = ctx.table(v, &root.span, "events".into()) else {
        return e;
    };
    ctx.check_keys(&t, &super::keys::names("[events]"), "[events]");
    for (key, slot) in [
        ("socket_mode", &mut e.socket_mode),
        ("control_socket_mode", &mut e.control_socket_mode),
    ] {
        if let Some(s) = ctx.opt_str(&t, key) {
            match u32::from_str_radix(s.s.trim_start_matches("0o"), 8) {
                Ok(mode) if mode <= 0o777 && mode & 0o007 == 0 => *slot = mode,
                Ok(_) => ctx.err(
                    &s.span,
                    &t.field(key),
                    "must be at most 0770: the sockets are never world-accessible",
                ),
                Err(_) => ctx.err(
                    &s.span,
                    &t.field(key),
                    format!("must be an octal mode such as \"0660\", found {:?}", s.s),
                ),
            }
        }
    }
    for (key, slot) in [
        ("socket_group", &mut e.socket_group),
        ("control_socket_group", &mut e.control_socket_group),
    ] {
        if let Some(s) = ctx.opt_str(&t, key) {
            if s.s.is_empty() {
                ctx.err(&s.span, &t.field(key), "must not be empty");
            } else {
                *slot = Some(s.s.to_string());
            }
        }
    }
    for (key, slot) in [
        ("socket", &mut e.socket),
        ("control_socket", &mut e.control_socket),
    ] {
        if let Some(s) = ctx.opt_str(&t, key) {
            if s.s.is_empty() {
                ctx.err(&s.span, &t.field(key), "must not be empty");
            } else {
                *slot = PathBuf::from(s.s);
            }
        }
    }
    if let Some(v) = t.get("ring_size") {
        let field = t.field("ring_size");
        if let Some(n) = ctx.as_int(
            v,
            t.vspan(v),
            &field,
            EventsConfig::MIN_RING_SIZE.into(),
            1 << 30,
        ) {
            if (n as u64).is_power_of_two() {
                e.ring_size = n as u32;
            } else {
                ctx.err(
                    &t.vspan(v),
                    &field,
                    format!("must be a power of two, found {n}"),
                );
            }
        }
    }
    if let Some(n) = ctx.opt_int(
        &t,
        "snippet_bytes",
        0,
        EventsConfig::MAX_SNIPPET_BYTES.into(),
    ) {
        e.snippet_bytes = n as u16;
    }
    if let Some(v) = t.get("rate_limit") {
        if let Some(r) = ctx.table(v, &t.span, t.field("rate_limit")) {
            ctx.check_keys(&r, &EventType::NAMES, "[events.rate_limit]");
            for t in EventType::ALL {
                *e.rate_limit.get_mut(t) = ctx.opt_u32(&r, t.name());
            }
        }
    }
    if let Some(v) = t.get("aggregate") {
        if let Some(a) = ctx.table(v, &t.span, t.field("aggregate")) {
            e.aggregate = aggregate(ctx, &a);
        }
    }
    if let Some(v) = t.get("episodes") {
        if let Some(a) = ctx.table(v, &t.span, t.field("episodes")) {
            e.episodes = episodes(ctx, &a);
        }
    }
    e
}

/// `[events.episodes]`: `update = "1s"`, `quiet = "5s"`, `max = 256`.
fn episodes(ctx: &mut Ctx, a: &Tbl) -> Episodes {
    let mut out = Episodes {
        enabled: true,
        ..Episodes::default()
    };
    ctx.check_keys(
        a,
        &super::keys::names("[events.episodes]"),
        "[events.episodes]",
    );
    for (key, slot) in [("update", &mut out.update_ms), ("quiet", &mut out.quiet_ms)] {
        let Some(s) = ctx.opt_str(a, key) else {
            continue;
        };
        match window_ms(s.s) {
            Ok(Some(ms)) => *slot = ms,
            Ok(None) => ctx.err(
                &s.span,
                &a.field(key),
                "must be a duration (to turn episodes off, remove [events.episodes])",
            ),
            Err(why) => ctx.err(&s.span, &a.field(key), why),
        }
    }
    if let Some(n) = ctx.opt_int(a, "max", 1, 1 << 16) {
        out.max = n as u32;
    }
    out
}

/// `[events.aggregate]`: `policy_deny = "1s"` (likewise `screen_drop`,
/// `filter_log`; `"250ms"`, `"2s"`, or `"off"`), `key` and `max_keys`.
fn aggregate(ctx: &mut Ctx, a: &Tbl) -> Aggregate {
    let mut out = Aggregate::default();
    let mut known: Vec<&str> = Aggregate::TYPES.iter().map(|t| t.name()).collect();
    known.extend(super::keys::names("[events.aggregate]"));
    ctx.check_keys(a, &known, "[events.aggregate]");
    for t in Aggregate::TYPES {
        let Some(s) = ctx.opt_str(a, t.name()) else {
            continue;
        };
        match window_ms(s.s) {
            Ok(ms) => out.set_window_ms(t, ms),
            Err(why) => ctx.err(&s.span, &a.field(t.name()), why),
        }
    }
    if let Some(s) = ctx.opt_str(a, "key") {
        match AggregateKey::from_name(s.s) {
            Some(k) => out.key = k,
            None => ctx.err(
                &s.span,
                &a.field("key"),
                format!(
                    "must be one of {}, found {:?}",
                    AggregateKey::NAMES.join(", "),
                    s.s
                ),
            ),
        }
    }
    if let Some(n) = ctx.opt_int(a, "max_keys", 1, 1 << 20) {
        out.max_keys = n as u32;
    }
    out
}

/// An aggregation window: `"off"`, or a whole number of `ms` or `s`
/// between 1 ms and [`Aggregate::MAX_WINDOW_MS`].
fn window_ms(s: &str) -> Result<Option<u32>, String> {
    if s == "off" {
        return Ok(None);
    }
    let (digits, unit) = if let Some(d) = s.strip_suffix("ms") {
        (d, 1)
    } else if let Some(d) = s.strip_suffix('s') {
        (d, 1000)
    } else {
        return Err(format!(
            "must be a duration such as \"500ms\" or \"1s\", or \"off\"; found {s:?}"
        ));
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("must be a whole number of ms or s, found {s:?}"))?;
    match n.checked_mul(unit) {
        Some(ms) if (1..=u64::from(Aggregate::MAX_WINDOW_MS)).contains(&ms) => Ok(Some(ms as u32)),
        _ => Err(format!(
            "must be between 1ms and {}s, found {s:?}",
            Aggregate::MAX_WINDOW_MS / 1000
        )),
    }
}

/// A threshold option: `true` (defaults), `false` (off) or `{ threshold = n }`.
fn threshold_option(
    ctx: &mut Ctx,
    v: &Value,
    span: &Span,
    field: String,
    default: u32,
) -> Option<Threshold> {
    match &v.node {
        Node::Bool(b) => b.then_some(Threshold { threshold: default }),
        _ => {
            let t = ctx.table(v, span, field)?;
            ctx.check_keys(&t, &["threshold"], "this screen option");
            let threshold = ctx.opt_u32(&t, "threshold").unwrap_or(default);
            Some(Threshold { threshold })
        }
    }
}

fn screens(ctx: &mut Ctx, root: &Tbl) -> Vec<Screen> {
    let Some(v) = root.get("screen") else {
        return Vec::new();
    };
    let Some(all) = ctx.table(v, &root.span, "screen".into()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let known: Vec<&str> = SCREEN_OPTIONS
        .iter()
        .copied()
        .chain([ALARM_WITHOUT_DROP])
        .collect();
    for (k, v) in all.entries {
        let path = all.field(&k.name);
        let kspan = k.span_or(&all.span);
        ctx.name_ok(&k.name, &kspan, &path, "screen");
        let mut s = Screen {
            name: k.name.clone(),
            ..Screen::default()
        };
        if let Some(t) = ctx.table(v, &kspan, path) {
            for (opt, ov) in t.entries {
                let field = t.field(&opt.name);
                let ospan = t.vspan(ov);
                let option = ScreenOption::from_name(&opt.name);
                if let Some(slot) = option.and_then(|o| s.stateless_mut(o)) {
                    if let Some(b) = ctx.as_bool(ov, ospan, &field) {
                        *slot = b;
                    }
                    continue;
                }
                if opt.name == ALARM_WITHOUT_DROP {
                    if let Some(b) = ctx.as_bool(ov, ospan, &field) {
                        s.alarm_without_drop = b;
                    }
                    continue;
                }
                match option {
                    Some(ScreenOption::SynFlood) => {
                        s.syn_flood = match &ov.node {
                            Node::Bool(b) => b.then(SynFlood::default),
                            _ => ctx.table(ov, &ospan, field).map(|st| {
                                ctx.check_keys(
                                    &st,
                                    &[
                                        "attack-threshold",
                                        "source-threshold",
                                        "destination-threshold",
                                        "alarm-threshold",
                                        "timeout",
                                    ],
                                    "syn-flood",
                                );
                                let d = SynFlood::default();
                                SynFlood {
                                    attack_threshold: ctx
                                        .opt_u32(&st, "attack-threshold")
                                        .unwrap_or(d.attack_threshold),
                                    source_threshold: ctx
                                        .opt_u32(&st, "source-threshold")
                                        .unwrap_or(d.source_threshold),
                                    destination_threshold: ctx
                                        .opt_u32(&st, "destination-threshold")
                                        .unwrap_or(d.destination_threshold),
                                    alarm_threshold: ctx
                                        .opt_u32(&st, "alarm-threshold")
                                        .unwrap_or(d.alarm_threshold),
                                    timeout: ctx.opt_u32(&st, "timeout").unwrap_or(d.timeout),
                                }
                            }),
                        }
                    }
                    Some(ScreenOption::IcmpFlood) => {
                        s.icmp_flood =
                            threshold_option(ctx, ov, &ospan, field, Threshold::DEFAULT_ICMP_FLOOD)
                    }
                    Some(ScreenOption::UdpFlood) => {
                        s.udp_flood =
                            threshold_option(ctx, ov, &ospan, field, Threshold::DEFAULT_UDP_FLOOD)
                    }
                    Some(ScreenOption::PortScan) => {
                        s.port_scan =
                            threshold_option(ctx, ov, &ospan, field, Threshold::DEFAULT_PORT_SCAN)
                    }
                    Some(ScreenOption::IpSweep) => {
                        s.ip_sweep =
                            threshold_option(ctx, ov, &ospan, field, Threshold::DEFAULT_IP_SWEEP)
                    }
                    Some(ScreenOption::LimitSession) => {
                        s.limit_session = ctx.table(ov, &ospan, field).map(|lt| {
                            ctx.check_keys(
                                &lt,
                                &["source-ip-based", "destination-ip-based"],
                                "limit-session",
                            );
                            LimitSession {
                                source_ip_based: ctx.opt_u32(&lt, "source-ip-based"),
                                destination_ip_based: ctx.opt_u32(&lt, "destination-ip-based"),
                            }
                        })
                    }
                    // Every stateless option was handled above.
                    Some(_) | None => {
                        let other = &opt.name;
                        let msg = format!(
                            "unknown screen option '{other}'{}",
                            hint(other, &known, "option")
                        );
                        ctx.err(&opt.span_or(&t.span), &field, msg);
                    }
                }
            }
        }
        out.push(s);
    }
    out
}

fn resolve_name(ctx: &mut Ctx, name: &S, field: &str, names: &[&str], kind: &str) -> Option<usize> {
    let found = names.iter().position(|n| *n == name.s);
    if found.is_none() {
        let msg = format!("unknown {kind} '{}'{}", name.s, hint(name.s, names, kind));
        ctx.err(&name.span, field, msg);
    }
    found
}

fn zones(ctx: &mut Ctx, root: &Tbl, screens: &[&str]) -> Vec<Zone> {
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
            ctx.check_keys(&t, &["screen"], "a zone");
            if let Some(s) = ctx.opt_str(&t, "screen") {
                z.screen = resolve_name(ctx, &s, &t.field("screen"), screens, "screen");
            }
        }
        out.push(z);
    }
    out
}

/// An address-book reference or a literal prefix, to prefixes.
fn address(ctx: &mut Ctx, name: &S, field: &str, book: &AddressBook) -> Option<Vec<Prefix>> {
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

fn looks_like_address(s: &str) -> bool {
    s.contains(['/', ':']) || s.starts_with(|c: char| c.is_ascii_digit())
}

fn parse_prefix(ctx: &mut Ctx, s: &S, field: &str) -> Option<Prefix> {
    match s.s.parse::<Prefix>() {
        Ok(p) => Some(p),
        Err(e) => {
            ctx.err(&s.span, field, format!("bad prefix: {e}"));
            None
        }
    }
}

fn address_book(ctx: &mut Ctx, root: &Tbl) -> AddressBook {
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
                    ctx.check_keys(&t, &["address-set", "address"], "an address-book entry");
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

fn builtin_application(name: &str) -> Option<Vec<AppMatch>> {
    BUILTIN_APPLICATIONS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, terms)| terms.to_vec())
}

const APP_KEYS: &[&str] = &[
    "protocol",
    "destination-port",
    "source-port",
    "icmp-type",
    "icmp-code",
    "application-set",
];

fn app_match(ctx: &mut Ctx, t: &Tbl) -> Option<AppMatch> {
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

fn applications(ctx: &mut Ctx, root: &Tbl) -> Vec<Application> {
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
                    ctx.check_keys(&t, APP_KEYS, "an application");
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

const FROM_KEYS: &[&str] = &[
    "source-address",
    "destination-address",
    "protocol",
    "source-port",
    "destination-port",
    "tcp-flags",
    "icmp-type",
    "icmp-code",
    "dscp",
    "fragment",
    "is-fragment",
    "first-fragment",
];

fn filter_addresses(
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

fn term_match(ctx: &mut Ctx, t: &Tbl, book: &AddressBook) -> TermMatch {
    ctx.check_keys(t, FROM_KEYS, "a term's from");
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

fn term_action(ctx: &mut Ctx, t: &Tbl) -> Option<TermAction> {
    ctx.check_keys(t, &["action", "log", "count"], "a term's then");
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

fn filters(ctx: &mut Ctx, root: &Tbl, book: &AddressBook) -> Vec<Filter> {
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
            ctx.check_keys(&t, &["name", "term"], "a filter");
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
                    ctx.check_keys(&tt, &["name", "from", "then"], "a filter term");
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

fn interfaces(ctx: &mut Ctx, root: &Tbl, zones: &[Zone], filters: &[Filter]) -> Vec<Interface> {
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

const POLICY_KEYS: &[&str] = &[
    "name",
    "from-zone",
    "to-zone",
    "source-address",
    "destination-address",
    "application",
    "then",
    "log",
    "count",
    "audit",
];

/// `[[zone-pair]]`: `from-zone`, `to-zone`, `audit` (a whole pair in
/// audit mode); returns the audited pairs. A pair named twice is an error.
fn zone_pairs(ctx: &mut Ctx, root: &Tbl, zones: &[Zone]) -> Vec<(usize, usize)> {
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
        ctx.check_keys(&t, &["from-zone", "to-zone", "audit"], "a zone pair");
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

fn policies(
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
            ctx.check_keys(&t, POLICY_KEYS, "a policy");
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
                    if let Some(a) = resolve_name(ctx, &s, &field, &app_names, "application") {
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

fn policy_action(ctx: &mut Ctx, v: &Value, span: Span, field: &str) -> Option<PolicyAction> {
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

fn default_policy(ctx: &mut Ctx, root: &Tbl) -> DefaultPolicy {
    let mut d = DefaultPolicy::default();
    let Some(v) = root.get("default-policy") else {
        return d;
    };
    let Some(t) = ctx.table(v, &root.span, "default-policy".into()) else {
        return d;
    };
    ctx.check_keys(&t, &["then", "log"], "[default-policy]");
    if let Some(v) = t.get("then") {
        if let Some(a) = policy_action(ctx, v, t.vspan(v), &t.field("then")) {
            d.action = a;
        }
    }
    d.log = ctx.opt_bool(&t, "log").unwrap_or(false);
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pci_and_vdev_shapes() {
        assert!(is_pci_address("0000:03:00.0"));
        assert!(is_pci_address("03:1f.7"));
        assert!(!is_pci_address("03:00.8"));
        assert!(!is_pci_address("0000:03:00"));
        assert!(!is_pci_address("net_pcap0"));
        assert!(check_device("net_pcap0,rx_pcap=in.pcap,tx_pcap=out.pcap").is_ok());
        assert!(check_device("net_ring0").is_ok());
        assert!(check_device("virtio_user0,path=/dev/vhost-net").is_ok());
        assert!(check_device("eth_null").is_ok());
        assert!(check_device("0000:03:00.0").is_ok());
        assert!(check_device("pcap0").is_err());
        assert!(check_device("net_").is_err());
        assert!(check_device("net_pcap0,").is_err());
        assert!(check_device("net pcap0").is_err());
        assert!(check_device("").is_err());
    }

    #[test]
    fn tcp_flag_expressions() {
        let mut f = TcpFlags::default();
        parse_tcp_flags("syn & !ack", &mut f).unwrap();
        assert_eq!(
            f,
            TcpFlags {
                required: tcp_flag::SYN,
                forbidden: tcp_flag::ACK
            }
        );
        let mut g = TcpFlags::default();
        parse_tcp_flags("tcp-initial", &mut g).unwrap();
        assert_eq!(f, g);
        assert!(parse_tcp_flags("syn | ack", &mut TcpFlags::default()).is_err());
        assert!(parse_tcp_flags("syn & !syn", &mut TcpFlags::default()).is_err());
        let e = parse_tcp_flags("syb", &mut TcpFlags::default()).unwrap_err();
        assert!(e.contains("did you mean 'syn'"), "{e}");
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            closest("syn-flod", SCREEN_OPTIONS.iter().copied()),
            Some("syn-flood")
        );
        assert_eq!(closest("webb", ["web", "servers"]), Some("web"));
        assert_eq!(closest("zzzzzz", ["web", "servers"]), None);
        assert_eq!(closest("ab", ["xy"]), None);
        assert_eq!(closest("tpc", ["tcp", "udp"]), Some("tcp"));
        assert_eq!(closest("y", ["any", "x"]), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
