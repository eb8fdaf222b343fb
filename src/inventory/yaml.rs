//! Inventory text → a generic YAML tree in which every key and value knows its line,
//! column and source text, parsed under limits that keep hostile files cheap.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::options::DuplicateKeyPolicy;
use serde_saphyr::{Location, Options, Spanned};

/// Where a node came from: the `defaults:` section, a host entry, or elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Origin {
    /// Outside `defaults` and `hosts` (top-level keys).
    Top,
    Defaults,
    Host(usize),
}

/// A YAML value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    /// Shared, so that a value read for many hosts is never copied.
    Str(Arc<str>),
    Seq(Vec<Node>),
    /// Keys in file order (duplicates are refused by the parser).
    Map(Vec<(Node, Node)>),
}

/// A value with its position (1-based line and column), the scalar's source text when
/// it is a plain scalar (so `keyboard: no` or `version: 4.10` can be read as written),
/// and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub line: usize,
    pub column: usize,
    /// Source text of a scalar (`None` for collections or when unknown).
    pub raw: Option<String>,
    pub origin: Origin,
}

impl Node {
    /// What kind of value this is, for messages ("a list", "a number", ...).
    pub fn kind(&self) -> &'static str {
        match &self.value {
            Value::Null => "empty",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "a number",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// The text of a scalar as the user meant it: a string's value, or the source text
    /// of a plain number/boolean (`4.10` stays `4.10`, `no` stays `no`).
    pub fn scalar_text(&self) -> Option<Arc<str>> {
        match &self.value {
            Value::Str(s) => Some(s.clone()),
            Value::Bool(_) | Value::Int(_) | Value::Float(_) => self
                .raw
                .as_deref()
                .map(Arc::from)
                .or_else(|| match &self.value {
                    Value::Bool(b) => Some(b.to_string().into()),
                    Value::Int(i) => Some(i.to_string().into()),
                    Value::Float(f) => Some(f.to_string().into()),
                    _ => None,
                }),
            _ => None,
        }
    }

    /// Like [`Node::scalar_text`] without copying when the text is already there (map
    /// keys are compared often); a collection gives `<a list>` / `<a mapping>`.
    pub fn key_text(&self) -> Cow<'_, str> {
        match (&self.value, &self.raw) {
            (Value::Str(s), _) => Cow::Borrowed(s),
            (Value::Bool(_) | Value::Int(_) | Value::Float(_), Some(r)) => Cow::Borrowed(r),
            _ => Cow::Owned(
                self.scalar_text()
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| format!("<{}>", self.kind())),
            ),
        }
    }

    /// Sets the origin of this node and everything below it.
    pub fn set_origin(&mut self, origin: Origin) {
        self.origin = origin;
        match &mut self.value {
            Value::Seq(items) => items.iter_mut().for_each(|n| n.set_origin(origin)),
            Value::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
                k.set_origin(origin);
                v.set_origin(origin);
            }),
            _ => {}
        }
    }
}

/// Deserialized form before positions are resolved.
struct Raw(Value);

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RawVisitor).map(Raw)
    }
}

struct RawVisitor;

fn spanned_to_node(s: Spanned<Raw>) -> Node {
    let loc: Location = s.referenced;
    // Filled in afterwards from the source text (see `fill_raw`). The text is where the
    // value is defined: for an alias that is the anchored scalar, not `*name`. (Only
    // numbers and booleans need their text: a string is its text.)
    let raw = match &s.value.0 {
        Value::Bool(_) | Value::Int(_) | Value::Float(_) => span_marker(&s.defined),
        _ => None,
    };
    Node {
        value: s.value.0,
        line: loc.line() as usize,
        column: loc.column() as usize,
        raw,
        origin: Origin::Top,
    }
}

/// Temporarily stores the byte span as "offset:len" until `fill_raw` slices the text.
fn span_marker(loc: &Location) -> Option<String> {
    let span = loc.span();
    match (span.byte_offset(), span.byte_len()) {
        (Some(o), Some(l)) => Some(format!("{o}:{l}")),
        _ => None,
    }
}

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(RawVisitor)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Int(v.into()))
    }
    fn visit_i128<E>(self, v: i128) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        i128::try_from(v)
            .map(Value::Int)
            .map_err(|_| E::custom("number too large"))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.into()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v.into()))
    }
    fn visit_bytes<E: de::Error>(self, _v: &[u8]) -> Result<Value, E> {
        Err(E::custom("binary values are not allowed in an inventory"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Raw>>()? {
            items.push(spanned_to_node(item));
        }
        Ok(Value::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(k) = map.next_key::<Spanned<Raw>>()? {
            let v = map.next_value::<Spanned<Raw>>()?;
            entries.push((spanned_to_node(k), spanned_to_node(v)));
        }
        Ok(Value::Map(entries))
    }
}

/// Replaces the span markers by the source text of plain scalars.
fn fill_raw(node: &mut Node, text: &str) {
    let marker = node.raw.take();
    match &mut node.value {
        Value::Seq(items) => items.iter_mut().for_each(|n| fill_raw(n, text)),
        Value::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
            fill_raw(k, text);
            fill_raw(v, text);
        }),
        Value::Bool(_) | Value::Int(_) | Value::Float(_) => {
            node.raw = marker.and_then(|m| {
                let (o, l) = m.split_once(':')?;
                let (o, l): (usize, usize) = (o.parse().ok()?, l.parse().ok()?);
                text.get(o..o.checked_add(l)?).map(|s| s.trim().to_string())
            });
        }
        _ => {}
    }
}

/// The largest inventory hvseed reads. A 10,000-host inventory is about 1 MiB, so this
/// leaves ample room while refusing runaway files before they are read.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// The deepest nesting accepted; an inventory needs 4 levels.
pub const MAX_DEPTH: usize = 32;

/// A YAML syntax or limit error, with its position when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

fn options() -> Options {
    let budget = serde_saphyr::budget! {
        max_reader_input_bytes: Some(MAX_FILE_BYTES as usize),
        max_depth: MAX_DEPTH,
        max_documents: 1,
        max_events: 4_000_000,
        max_nodes: 2_000_000,
        max_aliases: 10_000,
        max_anchors: 10_000,
        max_recorded_anchor_events: 50_000,
        max_recorded_anchor_bytes: 4 * 1024 * 1024,
        max_total_scalar_bytes: MAX_FILE_BYTES as usize,
        max_merge_keys: 20_000,
    };
    let mut alias_limits = serde_saphyr::options::AliasLimits::default();
    // Aliases are for small shared snippets; each replayed event becomes a tree node,
    // so this bounds what an alias bomb can build to a few MiB.
    alias_limits.max_total_replayed_events = 100_000;
    alias_limits.max_replay_stack_depth = 16;
    serde_saphyr::options! {
        budget: budget,
        duplicate_keys: DuplicateKeyPolicy::Error,
        alias_limits: alias_limits,
        with_snippet: false,
    }
}

/// Turns the parser's message into one a user can act on.
fn explain(raw: &str) -> String {
    let mut msg = raw.trim().to_string();
    // The position is printed in front by the caller.
    if let Some(i) = msg.find(" at line ") {
        msg.truncate(i);
    }
    let lower = msg.to_ascii_lowercase();
    if lower.contains("documents") && lower.contains("budget") {
        "more than one YAML document (`---`); an inventory is a single document".into()
    } else if lower.contains("depth") || lower.contains("recursion") || lower.contains("nesting") {
        format!("nested deeper than {MAX_DEPTH} levels; an inventory needs at most 5 (is this the right file?)")
    } else if lower.contains("unknown anchor") {
        "an alias (`*name`) refers to an anchor that is not defined before it (`&name` must come first)".into()
    } else if lower.contains("alias") || lower.contains("anchor") || lower.contains("replay") {
        format!("too many YAML alias expansions ({msg}); hvseed limits aliases so that an \"alias bomb\" cannot exhaust memory")
    } else if lower.contains("budget") {
        format!("the file exceeds hvseed's parser limits ({msg}); is this the right file?")
    } else if let Some(rest) = msg.strip_prefix("duplicate mapping key: ") {
        let key = rest
            .split(", set DuplicateKeyPolicy")
            .next()
            .unwrap_or(rest);
        format!("duplicate key `{key}`; each key may appear only once in a mapping")
    } else {
        format!("invalid YAML: {msg} (fix the syntax here)")
    }
}

/// Parses one YAML document into a [`Node`] tree.
pub fn parse(text: &str) -> Result<Node, ParseError> {
    match serde_saphyr::from_str_with_options::<Spanned<Raw>>(text, options()) {
        Ok(s) => {
            let mut node = spanned_to_node(s);
            fill_raw(&mut node, text);
            Ok(node)
        }
        Err(e) => {
            let loc = e.location();
            let message = explain(&e.without_snippet().to_string());
            Err(ParseError {
                line: loc.map_or(0, |l| l.line() as usize),
                column: loc.map_or(0, |l| l.column() as usize),
                message,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_and_raw_text() {
        let n = parse("a: 1\nb:\n  - x\n  - &v 4.10\nc: no\nd: *v\n").unwrap();
        let Value::Map(entries) = &n.value else {
            panic!("{n:?}")
        };
        assert_eq!((entries[0].0.line, entries[0].0.column), (1, 1));
        assert_eq!((entries[0].1.line, entries[0].1.column), (1, 4));
        let Value::Seq(items) = &entries[1].1.value else {
            panic!()
        };
        assert_eq!(
            (items[1].line, items[1].column),
            (4, "  - &v 4.10".find("4.10").unwrap() + 1)
        );
        assert_eq!(items[1].scalar_text().as_deref(), Some("4.10"));
        assert_eq!(entries[2].1.scalar_text().as_deref(), Some("no"));
        // An alias reads as the anchored text but sits where the alias is.
        assert_eq!(entries[3].1.scalar_text().as_deref(), Some("4.10"));
        assert_eq!((entries[3].1.line, entries[3].1.column), (6, 4));
    }

    #[test]
    fn syntax_error_has_position() {
        let e = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(e.line > 0, "{e:?}");
    }
}
