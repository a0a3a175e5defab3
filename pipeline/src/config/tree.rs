//! A TOML document as a tree of values that remember their byte spans.
//!
//! `toml` only tells where a value is through `toml::Spanned<T>`. Deserializing
//! the whole document into fixed structs would stop at the first problem; the
//! loader wants every problem, so it reads the document into this generic tree
//! (every value and every key spanned where the parser knows the span) and
//! walks it by hand.
//!
//! [`Value`] asks the deserializer for a `toml::Spanned` (the private struct
//! name `serde_spanned` uses) and accepts either shape in return: the spanned
//! map when the parser knows the span, or the bare value when it does not
//! (implicit tables, for instance). The `Spanned<String>` keys work the same
//! way through [`Key`].

use std::fmt;
use std::ops::Range;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// Byte range in the source text.
pub(crate) type Span = Range<usize>;

// The contract between `toml_edit`'s deserializer and `serde_spanned`
// (toml 0.8 / serde_spanned 0.6), and toml_datetime's private field name.
const SPANNED_NAME: &str = "$__serde_spanned_private_Spanned";
const SPANNED_START: &str = "$__serde_spanned_private_start";
const SPANNED_END: &str = "$__serde_spanned_private_end";
const SPANNED_VALUE: &str = "$__serde_spanned_private_value";
const SPANNED_FIELDS: &[&str] = &[SPANNED_START, SPANNED_END, SPANNED_VALUE];
const DATETIME_FIELD: &str = "$__toml_private_datetime";

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Datetime(String),
    Array(Vec<Value>),
    /// Entries in document order.
    Table(Vec<(Key, Value)>),
}

impl Node {
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Node::Str(_) => "a string",
            Node::Int(_) => "an integer",
            Node::Float(_) => "a float",
            Node::Bool(_) => "a boolean",
            Node::Datetime(_) => "a datetime",
            Node::Array(_) => "an array",
            Node::Table(_) => "a table",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Value {
    pub span: Option<Span>,
    pub node: Node,
}

impl Value {
    /// This value's span, or `fallback` when the parser did not record one.
    pub(crate) fn span_or(&self, fallback: &Span) -> Span {
        self.span.clone().unwrap_or_else(|| fallback.clone())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Key {
    pub name: String,
    pub span: Option<Span>,
}

impl Key {
    pub(crate) fn span_or(&self, fallback: &Span) -> Span {
        self.span.clone().unwrap_or_else(|| fallback.clone())
    }
}

/// Parses a whole document into its root table.
pub(crate) fn parse(text: &str) -> Result<Value, toml::de::Error> {
    let mut root: Value = toml::from_str(text)?;
    if root.span.is_none() {
        root.span = Some(0..text.len());
    }
    Ok(root)
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        d.deserialize_struct(SPANNED_NAME, SPANNED_FIELDS, ValueVisitor)
    }
}

/// The value inside a spanned wrapper: deserialized without asking for a
/// span again (asking would wrap it once more, forever).
struct Inner(Value);

impl<'de> Deserialize<'de> for Inner {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Inner, D::Error> {
        d.deserialize_any(ValueVisitor).map(Inner)
    }
}

struct ValueVisitor;

fn bare(node: Node) -> Value {
    Value { span: None, node }
}

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a TOML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(bare(Node::Bool(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(bare(Node::Int(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        match i64::try_from(v) {
            Ok(v) => Ok(bare(Node::Int(v))),
            Err(_) => Ok(bare(Node::Float(v as f64))),
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(bare(Node::Float(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(bare(Node::Str(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(bare(Node::Str(v)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element::<Value>()? {
            items.push(v);
        }
        Ok(bare(Node::Array(items)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let Some(first) = map.next_key::<Key>()? else {
            return Ok(bare(Node::Table(Vec::new())));
        };
        if first.span.is_none() && first.name == SPANNED_START {
            let start: usize = map.next_value()?;
            let mut end = start;
            let mut value = None;
            while let Some(k) = map.next_key::<Key>()? {
                if k.name == SPANNED_END {
                    end = map.next_value()?;
                } else if k.name == SPANNED_VALUE {
                    value = Some(map.next_value::<Inner>()?.0);
                } else {
                    return Err(de::Error::custom("malformed spanned value"));
                }
            }
            let mut value =
                value.ok_or_else(|| de::Error::custom("spanned value without a value"))?;
            value.span = Some(start..end.max(start));
            return Ok(value);
        }
        if first.span.is_none() && first.name == DATETIME_FIELD {
            let text: String = map.next_value()?;
            return Ok(bare(Node::Datetime(text)));
        }
        let mut entries = vec![(first, map.next_value::<Value>()?)];
        while let Some(k) = map.next_key::<Key>()? {
            let v = map.next_value::<Value>()?;
            entries.push((k, v));
        }
        Ok(bare(Node::Table(entries)))
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
        d.deserialize_struct(SPANNED_NAME, SPANNED_FIELDS, KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a TOML key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
        Ok(Key {
            name: v.to_owned(),
            span: None,
        })
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Key, E> {
        Ok(Key {
            name: v,
            span: None,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Key, A::Error> {
        let mut start = None;
        let mut end = None;
        let mut name = None;
        while let Some(k) = map.next_key::<String>()? {
            if k == SPANNED_START {
                start = Some(map.next_value::<usize>()?);
            } else if k == SPANNED_END {
                end = Some(map.next_value::<usize>()?);
            } else if k == SPANNED_VALUE {
                name = Some(map.next_value::<String>()?);
            } else {
                return Err(de::Error::custom("malformed spanned key"));
            }
        }
        let name = name.ok_or_else(|| de::Error::custom("spanned key without a name"))?;
        let span = match (start, end) {
            (Some(s), Some(e)) => Some(s..e.max(s)),
            _ => None,
        };
        Ok(Key { name, span })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_keys_carry_spans() {
        let text = "a = 1\n[t]\nb = [\"x\", 2]\nc = { d = true }\n[[arr]]\ne = 1.5\n";
        let root = parse(text).unwrap();
        let Node::Table(entries) = &root.node else {
            panic!("root is not a table")
        };
        let names: Vec<&str> = entries.iter().map(|(k, _)| k.name.as_str()).collect();
        assert_eq!(names, ["a", "t", "arr"]);
        let (ka, va) = &entries[0];
        assert_eq!(&text[ka.span.clone().unwrap()], "a");
        assert_eq!(&text[va.span.clone().unwrap()], "1");
        let Node::Table(t) = &entries[1].1.node else {
            panic!()
        };
        let Node::Array(b) = &t[0].1.node else {
            panic!()
        };
        assert_eq!(&text[b[1].span.clone().unwrap()], "2");
        let Node::Table(c) = &t[1].1.node else {
            panic!()
        };
        assert_eq!(&text[c[0].0.span.clone().unwrap()], "d");
        let Node::Array(arr) = &entries[2].1.node else {
            panic!()
        };
        let Node::Table(e) = &arr[0].node else {
            panic!()
        };
        assert_eq!(e[0].1.node, Node::Float(1.5));
    }

    #[test]
    fn datetimes_are_recognized() {
        let root = parse("when = 1979-05-27T07:32:00Z\n").unwrap();
        let Node::Table(entries) = &root.node else {
            panic!()
        };
        assert!(matches!(entries[0].1.node, Node::Datetime(_)));
    }
}
