//! Reading the YAML tree: a host's mappings merged over the defaults' without copying
//! either ([`Map`]), and [`Checker`], which reads each value into its typed form and
//! records a finding for every value it cannot take.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::path::Path;

use super::diagnostics::{Diagnostic, Missing};
use super::model::{List, Text};
use super::resolve::SectionCache;
use super::rules;
use super::schema::{suggest, unknown_key_message};
use super::yaml::{Node, Origin, Value};

/// A mapping's entries (null values count as absent), with its key path. A host's
/// mapping is read merged over the defaults' one without copying either: each entry is
/// the winning key and value, and where both sides hold a mapping under the key, the
/// defaults' mapping that the host's merges over (see [`Checker::merged`]).
pub(super) struct Map<'n> {
    pub(super) rel: String,
    entries: Vec<MapEntry<'n>>,
}

/// One key of a [`Map`]: the side that won.
struct MapEntry<'n> {
    name: Cow<'n, str>,
    key: &'n Node,
    value: &'n Node,
    /// The defaults' mapping that `value` (a mapping too) merges over.
    under: Option<&'n Node>,
}

impl<'n> Map<'n> {
    pub(super) fn empty(rel: &str) -> Self {
        Map {
            rel: rel.to_string(),
            entries: Vec::new(),
        }
    }

    pub(super) fn get(&self, k: &str) -> Option<&'n Node> {
        self.get_merged(k).map(|(value, _)| value)
    }

    /// The value at `k` and the defaults' mapping it merges over, if any.
    pub(super) fn get_merged(&self, k: &str) -> Option<(&'n Node, Option<&'n Node>)> {
        self.entries
            .iter()
            .find(|e| e.name == k && e.value.value != Value::Null)
            .map(|e| (e.value, e.under))
    }

    pub(super) fn key_node(&self, k: &str) -> Option<&'n Node> {
        self.entries.iter().find(|e| e.name == k).map(|e| e.key)
    }

    pub(super) fn child(&self, k: &str) -> String {
        if self.rel.is_empty() {
            k.to_string()
        } else {
            format!("{}.{k}", self.rel)
        }
    }
}

pub(super) fn key_text(k: &Node) -> Cow<'_, str> {
    k.key_text()
}

pub(super) struct Checker<'a> {
    pub(super) file: &'a Path,
    pub(super) diags: Vec<Diagnostic>,
    /// Hashes of the findings so far: a mistake in `defaults` is seen once per host but
    /// reported once.
    pub(super) seen: HashSet<u64>,
    /// Findings beyond [`MAX_DIAGNOSTICS`](super::diagnostics::MAX_DIAGNOSTICS).
    pub(super) dropped: usize,
    pub(super) missing: Vec<Missing>,
    /// The host being resolved, for [`Missing`].
    pub(super) host: usize,
    /// Sections as resolved from the defaults alone (see [`Checker::cached`]).
    pub(super) cache: SectionCache,
    /// Values of `defaults` nodes as read the first time (see [`Checker::memo`]), by
    /// node address and reading.
    pub(super) memo: HashMap<(usize, usize, u8), Box<dyn std::any::Any + Send>>,
}

impl<'a> Checker<'a> {
    pub(super) fn new(file: &'a Path) -> Checker<'a> {
        Checker {
            file,
            diags: Vec::new(),
            seen: HashSet::new(),
            dropped: 0,
            missing: Vec::new(),
            host: 0,
            cache: SectionCache::default(),
            memo: HashMap::new(),
        }
    }

    /// Reads a mapping and reports keys not in `allowed`.
    pub(super) fn map<'n>(&mut self, n: &'n Node, rel: &str, allowed: &[&str]) -> Map<'n> {
        self.merged(n, None, rel, allowed)
    }

    /// Reads mapping `n` deep-merged over the mapping `under` (a host's entry over the
    /// defaults): keys merge one by one, a mapping on both sides merges again below,
    /// anything else (scalars, lists) is the host's value, and a null value counts as
    /// absent. Each entry keeps its own node, so messages point at whichever side won.
    /// Reports keys not in `allowed`.
    pub(super) fn merged<'n>(
        &mut self,
        n: &'n Node,
        under: Option<&'n Node>,
        rel: &str,
        allowed: &[&str],
    ) -> Map<'n> {
        let entries: &'n [(Node, Node)] = match &n.value {
            Value::Map(e) => e,
            Value::Null => &[],
            _ => {
                self.error(
                    n,
                    rel,
                    format!(
                        "expected a mapping of keys ({}), found {}",
                        allowed.join(", "),
                        n.kind()
                    ),
                );
                return Map::empty(rel);
            }
        };
        let below: &'n [(Node, Node)] = match under.map(|u| &u.value) {
            Some(Value::Map(e)) => e,
            _ => &[],
        };
        let mut map = Map::empty(rel);
        let mut push = |c: &mut Self, name: Cow<'n, str>, k: &'n Node, v: &'n Node, under| {
            if allowed.contains(&name.as_ref()) {
                map.entries.push(MapEntry {
                    name,
                    key: k,
                    value: v,
                    under,
                });
            } else {
                let krel = map.child(&rules::shown(&name));
                let msg = unknown_key_message(&name, allowed);
                c.error(k, &krel, msg);
            }
        };
        for (dk, dv) in below {
            let name = key_text(dk);
            match entries.iter().find(|(hk, _)| key_text(hk) == name) {
                Some((hk, hv)) if hv.value != Value::Null => {
                    let both_maps =
                        matches!(hv.value, Value::Map(_)) && matches!(dv.value, Value::Map(_));
                    push(self, name, hk, hv, both_maps.then_some(dv));
                }
                _ => push(self, name, dk, dv, None),
            }
        }
        for (hk, hv) in entries {
            let name = key_text(hk);
            if !below.iter().any(|(dk, _)| key_text(dk) == name) {
                push(self, name, hk, hv, None);
            }
        }
        map
    }

    /// The sub-mapping at `key` (an empty one when absent).
    pub(super) fn section<'n>(&mut self, parent: &Map<'n>, key: &str, allowed: &[&str]) -> Map<'n> {
        let rel = parent.child(key);
        match parent.get_merged(key) {
            Some((n, under)) => self.merged(n, under, &rel, allowed),
            None => Map::empty(&rel),
        }
    }

    /// A required key: records it as missing when absent.
    pub(super) fn required<'n>(&mut self, m: &Map<'n>, key: &str) -> Option<&'n Node> {
        let v = m.get(key);
        if v.is_none() {
            self.missing.push(Missing {
                rel: m.child(key),
                host: self.host,
            });
        }
        v
    }

    /// A scalar's text (shared with the tree, never copied), refused when longer than
    /// [`rules::MAX_VALUE`] (every kind of value has its own, smaller limit too).
    pub(super) fn text(&mut self, n: &Node, rel: &str) -> Option<Text> {
        match n.scalar_text() {
            Some(s) if s.len() > rules::MAX_VALUE => {
                self.error(
                    n,
                    rel,
                    format!(
                        "is {} bytes long; no inventory value may be longer than {} KiB (is this the right value?)",
                        s.len(),
                        rules::MAX_VALUE / 1024
                    ),
                );
                None
            }
            Some(s) => Some(s),
            None => {
                self.error(
                    n,
                    rel,
                    format!("expected a single value, found {}", n.kind()),
                );
                None
            }
        }
    }

    /// `read(self)`, or for a node of `defaults` the result of reading it the first
    /// time: every host that inherits a default gets the same (shared) value, and the
    /// value is checked once, not once per host. (A finding made the first time would
    /// only be a repeat later.) `tag` tells apart different readings of one node.
    pub(super) fn memo<T: Clone + Send + 'static>(
        &mut self,
        n: &Node,
        tag: (usize, u8),
        read: impl FnOnce(&mut Self) -> Option<T>,
    ) -> Option<T> {
        if n.origin != Origin::Defaults {
            return read(self);
        }
        let key = (n as *const Node as usize, tag.0, tag.1);
        if let Some(v) = self.memo.get(&key) {
            return v
                .downcast_ref::<Option<T>>()
                .expect("one type per memo tag")
                .clone();
        }
        let v = read(self);
        self.memo.insert(key, Box::new(v.clone()));
        v
    }

    /// A scalar checked by `rule`.
    pub(super) fn checked(
        &mut self,
        n: &Node,
        rel: &str,
        rule: fn(&str) -> Result<(), String>,
    ) -> Option<Text> {
        self.memo(n, (rule as usize, 0), |c| {
            let s = c.text(n, rel)?;
            match rule(&s) {
                Ok(()) => Some(s),
                Err(msg) => {
                    c.error(n, rel, msg);
                    None
                }
            }
        })
    }

    pub(super) fn list<'n>(&mut self, n: &'n Node, rel: &str) -> Option<&'n [Node]> {
        match &n.value {
            Value::Seq(items) => Some(items),
            Value::Null => Some(&[]),
            _ => {
                let hint = n
                    .scalar_text()
                    .map(|s| format!(" (write it as a list: [{}])", rules::shown(&s)))
                    .unwrap_or_default();
                self.error(n, rel, format!("expected a list, found {}{hint}", n.kind()));
                None
            }
        }
    }

    /// A list of scalars each checked by `rule`, at most `max` of them; `None` if
    /// anything was wrong.
    pub(super) fn checked_list(
        &mut self,
        n: &Node,
        rel: &str,
        rule: fn(&str) -> Result<(), String>,
        max: usize,
    ) -> Option<List<Text>> {
        self.memo(n, (rule as usize, 1), |c| {
            let items = c.items(n, rel, max)?;
            let mut out = Vec::with_capacity(items.len());
            let mut ok = true;
            for (i, item) in items.iter().enumerate() {
                match c.checked(item, &format!("{rel}[{i}]"), rule) {
                    Some(s) => out.push(s),
                    None => ok = false,
                }
            }
            ok.then(|| out.into())
        })
    }

    /// A list of at most `max` scalars, each parsed by `parse` (its error reported at
    /// the item); `None` if anything was wrong.
    pub(super) fn parsed_list<T>(
        &mut self,
        n: &Node,
        rel: &str,
        max: usize,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Option<Vec<T>> {
        let items = self.items(n, rel, max)?;
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let irel = format!("{rel}[{i}]");
            let Some(t) = self.text(item, &irel) else {
                ok = false;
                continue;
            };
            match parse(&t) {
                Ok(v) => out.push(v),
                Err(e) => {
                    self.error(item, &irel, e);
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    /// [`Checker::list`] holding at most `max` items.
    pub(super) fn items<'n>(&mut self, n: &'n Node, rel: &str, max: usize) -> Option<&'n [Node]> {
        let items = self.list(n, rel)?;
        if items.len() > max {
            self.error(
                n,
                rel,
                format!("has {} items; at most {max} are allowed here", items.len()),
            );
            return None;
        }
        Some(items)
    }

    pub(super) fn uint(
        &mut self,
        n: &Node,
        rel: &str,
        min: i128,
        max: i128,
        what: &str,
    ) -> Option<i128> {
        match &n.value {
            Value::Int(i) if (min..=max).contains(i) => Some(*i),
            Value::Int(i) => {
                self.error(
                    n,
                    rel,
                    format!("{what} {i} is out of range (use {min}-{max})"),
                );
                None
            }
            _ => {
                self.error(
                    n,
                    rel,
                    format!("expected a whole number ({min}-{max}), found {}", n.kind()),
                );
                None
            }
        }
    }

    pub(super) fn ipv4(&mut self, n: &Node, rel: &str) -> Option<Ipv4Addr> {
        self.memo(n, (0, 2), |c| {
            let s = c.text(n, rel)?;
            match s.parse::<Ipv4Addr>() {
                Ok(a) => Some(a),
                Err(_) => {
                    c.error(
                        n,
                        rel,
                        format!(
                            "`{}` is not an IPv4 address (write it like 192.168.42.11)",
                            rules::shown(&s)
                        ),
                    );
                    None
                }
            }
        })
    }

    pub(super) fn choice<T: Copy + Send + 'static>(
        &mut self,
        n: &Node,
        rel: &str,
        choices: &'static [(&'static str, T)],
    ) -> Option<T> {
        self.memo(n, (choices.as_ptr() as usize, 3), |c| {
            let s = c.text(n, rel)?;
            if let Some((_, v)) = choices.iter().find(|(name, _)| *name == &*s) {
                return Some(*v);
            }
            let names: Vec<&str> = choices.iter().map(|c| c.0).collect();
            let suggestion = suggest(&s, &names)
                .map(|b| format!("did you mean `{b}`? "))
                .unwrap_or_default();
            c.error(
                n,
                rel,
                format!(
                    "`{}` is not one of {} ({suggestion}choose one of them)",
                    rules::shown(&s),
                    names.join(" | ")
                ),
            );
            None
        })
    }
}
