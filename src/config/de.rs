//! A serde deserializer over the parsed TOML document (toml_edit keeps every key's and value's
//! span). It exists for its error type: toml's own deserializer formats serde's messages, values
//! included, into a string; ours keeps the structured call ([`SchemaError`]), the key path and the
//! span, so the one formatter in [`super::error`] can say where and what without quoting anything.
//! It tracks the key path itself because it also knows the spans (serde_path_to_error knows paths
//! only).

use std::ops::Range;

use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use toml_edit::{InlineTable, Item, Table, Value};

use super::error::{KeyPath, SchemaError};

/// One node of the document and its key path.
pub(super) struct Node<'a> {
    kind: Kind<'a>,
    path: KeyPath,
}

#[derive(Clone, Copy)]
enum Kind<'a> {
    Item(&'a Item),
    Value(&'a Value),
    Table(&'a Table),
}

/// A key, deserialized as the name serde's field visitor matches (an unknown one errors here).
struct KeyNode<'a> {
    name: &'a str,
    span: Option<Range<usize>>,
    path: KeyPath,
}

impl<'a> Node<'a> {
    pub(super) fn table(table: &'a Table, path: KeyPath) -> Node<'a> {
        Node {
            kind: Kind::Table(table),
            path,
        }
    }

    pub(super) fn item(item: &'a Item, path: KeyPath) -> Node<'a> {
        Node {
            kind: Kind::Item(item),
            path,
        }
    }

    pub(super) fn value(value: &'a Value, path: KeyPath) -> Node<'a> {
        Node {
            kind: Kind::Value(value),
            path,
        }
    }

    fn span(&self) -> Option<Range<usize>> {
        match self.kind {
            Kind::Item(i) => i.span(),
            Kind::Value(v) => v.span(),
            Kind::Table(t) => t.span(),
        }
    }

    /// The value as what it is, normalized over the document's three node types.
    fn view(&self) -> View<'a> {
        match self.kind {
            Kind::Table(t) => View::Table(table_entries(t, &self.path)),
            Kind::Item(Item::Table(t)) => View::Table(table_entries(t, &self.path)),
            Kind::Item(Item::ArrayOfTables(a)) => View::Array(
                a.iter()
                    .enumerate()
                    .map(|(i, t)| Node::table(t, self.path.index(i)))
                    .collect(),
            ),
            Kind::Item(Item::Value(v)) | Kind::Value(v) => match v {
                Value::String(s) => View::Str(s.value()),
                Value::Integer(n) => View::Int(*n.value()),
                Value::Float(x) => View::Float(*x.value()),
                Value::Boolean(b) => View::Bool(*b.value()),
                Value::Datetime(_) => View::Datetime,
                Value::Array(a) => View::Array(
                    a.iter()
                        .enumerate()
                        .map(|(i, v)| Node::value(v, self.path.index(i)))
                        .collect(),
                ),
                Value::InlineTable(t) => View::Table(inline_entries(t, &self.path)),
            },
            Kind::Item(Item::None) => View::None,
        }
    }
}

enum View<'a> {
    Str(&'a str),
    Int(i64),
    Float(f64),
    Bool(bool),
    Datetime,
    Array(Vec<Node<'a>>),
    Table(Vec<(KeyNode<'a>, Node<'a>)>),
    None,
}

fn table_entries<'a>(t: &'a Table, path: &KeyPath) -> Vec<(KeyNode<'a>, Node<'a>)> {
    t.iter()
        .map(|(k, item)| {
            let key = KeyNode {
                name: k,
                span: t.key(k).and_then(|k| k.span()),
                path: path.key(k),
            };
            (key, Node::item(item, path.key(k)))
        })
        .collect()
}

fn inline_entries<'a>(t: &'a InlineTable, path: &KeyPath) -> Vec<(KeyNode<'a>, Node<'a>)> {
    t.iter()
        .map(|(k, v)| {
            let key = KeyNode {
                name: k,
                span: t.key(k).and_then(|k| k.span()),
                path: path.key(k),
            };
            (key, Node::value(v, path.key(k)))
        })
        .collect()
}

impl<'de> de::Deserializer<'de> for Node<'_> {
    type Error = SchemaError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SchemaError> {
        let span = self.span();
        let r = match self.view() {
            View::Str(s) => visitor.visit_str(s),
            View::Int(n) => visitor.visit_i64(n),
            View::Float(x) => visitor.visit_f64(x),
            View::Bool(b) => visitor.visit_bool(b),
            View::Datetime => Err(de::Error::invalid_type(
                de::Unexpected::Other("date-time"),
                &visitor,
            )),
            View::Array(items) => visitor.visit_seq(Seq(items.into_iter())),
            View::Table(entries) => visitor.visit_map(Map {
                entries: entries.into_iter(),
                value: None,
            }),
            View::None => visitor.visit_unit(),
        };
        r.map_err(|e| e.located(&self.path, span))
    }

    /// A key that is present is `Some`: TOML has no null.
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SchemaError> {
        visitor.visit_some(self)
    }

    /// A unit variant is written as its name, a string.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, SchemaError> {
        let span = self.span();
        match self.view() {
            View::Str(s) => visitor
                .visit_enum(IntoDeserializer::<SchemaError>::into_deserializer(s))
                .map_err(|e| e.located(&self.path, span)),
            _ => {
                let _ = (name, variants);
                self.deserialize_any(visitor)
            }
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct newtype_struct seq tuple
        tuple_struct map struct identifier ignored_any
    }
}

impl<'de> de::Deserializer<'de> for KeyNode<'_> {
    type Error = SchemaError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SchemaError> {
        visitor
            .visit_str(self.name)
            .map_err(|e: SchemaError| e.located(&self.path, self.span.clone()))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

struct Seq<'a>(std::vec::IntoIter<Node<'a>>);

impl<'de> SeqAccess<'de> for Seq<'_> {
    type Error = SchemaError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, SchemaError> {
        self.0
            .next()
            .map(|n| {
                let (path, span) = (n.path.clone(), n.span());
                seed.deserialize(n).map_err(|e| e.located(&path, span))
            })
            .transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct Map<'a> {
    entries: std::vec::IntoIter<(KeyNode<'a>, Node<'a>)>,
    /// The value of the key just handed out.
    value: Option<Node<'a>>,
}

impl<'de> MapAccess<'de> for Map<'_> {
    type Error = SchemaError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, SchemaError> {
        match self.entries.next() {
            Some((key, value)) => {
                self.value = Some(value);
                seed.deserialize(key).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, SchemaError> {
        match self.value.take() {
            // Located here too: a `Deserialize` impl may refuse a value after reading it (a name
            // not among the variants), outside the value's own `deserialize_*` call.
            Some(v) => {
                let (path, span) = (v.path.clone(), v.span());
                seed.deserialize(v).map_err(|e| e.located(&path, span))
            }
            // serde asks for a value only after a key; this is its contract, not the input.
            None => Err(de::Error::custom("value without a key")),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// The span of `key` in the document, or of the deepest part of it that exists (a missing key is
/// shown at its table's header).
pub(super) fn span_of(root: &Table, key: &KeyPath) -> Option<Range<usize>> {
    use super::error::Segment;
    let mut at = Kind::Table(root);
    let mut best = None;
    for seg in key.segments() {
        let next = match (at, seg) {
            (Kind::Table(t) | Kind::Item(Item::Table(t)), Segment::Key(k)) => {
                t.get(k).map(Kind::Item)
            }
            (
                Kind::Item(Item::Value(Value::InlineTable(t))) | Kind::Value(Value::InlineTable(t)),
                Segment::Key(k),
            ) => t.get(k).map(Kind::Value),
            (Kind::Item(Item::ArrayOfTables(a)), Segment::Index(i)) => a.get(*i).map(Kind::Table),
            (
                Kind::Item(Item::Value(Value::Array(a))) | Kind::Value(Value::Array(a)),
                Segment::Index(i),
            ) => a.get(*i).map(Kind::Value),
            _ => None,
        };
        let Some(next) = next else { break };
        at = next;
        let span = Node {
            kind: at,
            path: KeyPath::root(),
        }
        .span();
        if span.is_some() {
            best = span;
        }
    }
    best
}
