//! Address and application sets: nested references resolved with cycles and depth checked.

use super::*;

pub(super) struct SetEntry<'v, T> {
    pub(super) name: &'v str,
    pub(super) leaves: Vec<T>,
    pub(super) members: Vec<S<'v>>,
    pub(super) field: String,
}

pub(super) fn dedup<T: Clone + Eq + Hash>(items: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut seen = HashSet::new();
    items
        .into_iter()
        .filter(|x| seen.insert(x.clone()))
        .collect()
}

/// How a kind of named set is called in messages, and its built-ins.
pub(super) struct SetKind<'k, T> {
    /// `address-set`, `application-set`.
    pub(super) set: &'k str,
    /// `address-book entry`, `application`.
    pub(super) member: &'k str,
    pub(super) builtin: &'k dyn Fn(&str) -> Option<Vec<T>>,
    pub(super) builtin_names: &'k [&'k str],
    /// An unknown member's error lists every known name (a vocabulary of
    /// predefined names, [`hint_listing`]), not only a close one.
    pub(super) list_known: bool,
}

/// Flattens every entry: its leaves plus those of its members, recursively.
/// Reports unknown members, cycles and too-deep nesting.
pub(super) fn resolve_sets<T: Clone + Eq + Hash>(
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
                    if kind.list_known {
                        hint_listing(m.s, &w.names, kind.member)
                    } else {
                        hint(m.s, &w.names, kind.member)
                    }
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
