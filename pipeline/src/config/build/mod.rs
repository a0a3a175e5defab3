//! Walks the spanned TOML tree, checks every setting and reference, and
//! builds the resolved [`Config`]. Every problem is recorded; the walk goes
//! on past errors so one run reports them all.
//!
//! This module holds the walk's context ([`Ctx`]: errors with file, line
//! and field; typed reads) and the order tables are read in; each TOML
//! table is read in a module of its own, `values` holds what several
//! tables parse alike, and `sets` resolves address and application sets.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::path::PathBuf;

use super::error::{one_line, LineIndex};
use super::tree::{self, Key, Node, Span, Value};
use super::*;

mod address_book;
mod applications;
mod cluster;
mod dataplane;
mod events;
mod filters;
mod flow;
mod interfaces;
mod policies;
mod screens;
mod sets;
mod telemetry;
pub(crate) mod values;
mod zones;
use address_book::*;
use applications::*;
use cluster::*;
use dataplane::*;
use events::*;
use filters::*;
use flow::*;
use interfaces::*;
use policies::*;
use screens::*;
use sets::*;
use telemetry::*;
use values::*;
use zones::*;

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

pub(crate) fn build(
    text: &str,
    origin: &str,
    host: Option<&dyn Host>,
) -> Result<Config, ConfigErrors> {
    let mut ctx = Ctx {
        origin,
        index: LineIndex::new(text),
        errors: Vec::new(),
        host,
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
    /// The machine's checks, when loading for `check-config` or `run`.
    host: Option<&'a dyn Host>,
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

    /// The span of `offset` bytes into the string `s`, when the file
    /// holds it verbatim between one-character quotes (no escapes), so an
    /// error can point inside it; else the whole string's.
    fn inner_span(&self, s: &S, offset: usize) -> Span {
        let text = self.index.text();
        let start = s.span.start + 1;
        match text.get(start..start + s.s.len()) {
            Some(raw) if raw == s.s && s.span.end == start + s.s.len() + 1 => {
                start + offset..start + offset
            }
            _ => s.span.clone(),
        }
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
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
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

/// For a fixed vocabulary a user cannot guess (predefined applications,
/// screen options): ` (did you mean 'x'?)` for a typo, else every known
/// name, led by those containing `word` (`ssh` finds `junos-ssh`). The
/// whole list, not the closest few: a firewall console may have no docs
/// at hand, and the lists are a few dozen short names.
fn hint_listing(word: &str, candidates: &[&str], kind: &str) -> String {
    if let Some(c) = closest(word, candidates.iter().copied()) {
        return format!(" (did you mean '{c}'?)");
    }
    if candidates.is_empty() {
        return format!(" (no {kind} is defined)");
    }
    let lower = word.to_lowercase();
    let containing: Vec<String> = candidates
        .iter()
        .filter(|c| lower.chars().count() >= 2 && c.to_lowercase().contains(&lower))
        .map(|c| format!("'{c}'"))
        .collect();
    let suggest = match containing.len() {
        0 => String::new(),
        1..=3 => format!("did you mean {}? ", containing.join(" or ")),
        _ => String::new(),
    };
    format!(" ({suggest}known: {})", candidates.join(", "))
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

fn build_config(ctx: &mut Ctx, root: &Value) -> Config {
    let Some(root) = ctx.table(root, &(0..0), String::new()) else {
        return empty_config();
    };
    let root = Tbl { span: 0..0, ..root };
    ctx.check_keys(&root, &super::keys::names(""), "the config");

    let dataplane = dataplane(ctx, &root);
    let events = events(ctx, &root);
    let screens = screens(ctx, &root);
    let screen_names: Vec<&str> = screens.iter().map(|s| s.name.as_str()).collect();
    let mut zones = zones(ctx, &root, &screen_names);
    let address_book = address_book(ctx, &root);
    let applications = applications(ctx, &root);
    let filters = filters(ctx, &root, &address_book);
    let interfaces = interfaces(ctx, &root, &zones, &filters);
    if interfaces.is_empty() && root.get("interface").is_none() {
        ctx.err(
            &(0..0),
            "interface",
            "no [[interface]]: a dataplane needs at least one (see docs/config.md)",
        );
    }
    for (i, iface) in interfaces.iter().enumerate() {
        if let Some(z) = zones.get_mut(iface.zone) {
            z.interfaces.push(i);
        }
    }
    let policies = policies(ctx, &root, &zones, &address_book, &applications);
    let default_policy = default_policy(ctx, &root);
    let flow = flow(ctx, &root);
    let telemetry = telemetry(ctx, &root);
    let cluster = cluster(ctx, &root);
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
        cluster,
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
        cluster: None,
        audit_zone_pairs: Vec::new(),
    }
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
