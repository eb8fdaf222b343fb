//! YAML tree → [`Inventory`]: merges `defaults` into each host, reads every key into
//! its typed form, applies the rules of the inventory contract and collects every
//! finding (never stopping at the first).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::net::Ipv4Addr;
use std::path::Path;

use super::model::*;
use super::rules;
use super::yaml::{Node, Origin, Value};
use super::{Diagnostic, Severity};
use crate::target::Selinux;

const TOP_KEYS: &[&str] = &["version", "cluster", "defaults", "hosts"];
const SECTION_KEYS: &[&str] = &[
    "os",
    "install",
    "ntp_servers",
    "dns",
    "cloudstack",
    "cpu",
    "network",
    "security",
];
const HOST_ONLY_KEYS: &[&str] = &["fqdn", "mac", "ip"];
const INSTALL_KEYS: &[&str] = &[
    "source",
    "locale",
    "keyboard",
    "timezone",
    "root_password_hash",
    "ssh_authorized_keys",
    "disk",
    "extra_packages",
    "kernel_args",
    "extra_repositories",
];
const DNS_KEYS: &[&str] = &["servers", "search"];
const CLOUDSTACK_KEYS: &[&str] = &["version", "repository", "management_server"];
const CPU_KEYS: &[&str] = &["mode", "model", "features"];
const NETWORK_KEYS: &[&str] = &[
    "type",
    "trunk_nic",
    "trunk_bridge",
    "management",
    "public",
    "private",
];
const MANAGEMENT_KEYS: &[&str] = &["vlan", "prefix", "gateway", "bridge"];
const VLAN_BRIDGE_KEYS: &[&str] = &["vlan", "bridge"];
const SECURITY_KEYS: &[&str] = &["selinux", "firewall_sources"];
const REPO_KEYS: &[&str] = &["name", "url"];

/// The most bytes `install.kernel_args` may take of a kernel command line (each
/// argument and a space).
pub const MAX_KERNEL_ARGS_BYTES: usize = 1024;

/// NTP servers used when `ntp_servers` is absent.
pub const DEFAULT_NTP: &[&str] = &["0.pool.ntp.org", "1.pool.ntp.org"];

/// The full key path of a node: `defaults.x`, `hosts[3].x`, or `x` at the top.
fn path(origin: Origin, rel: &str) -> String {
    match origin {
        Origin::Top => rel.to_string(),
        Origin::Defaults => format!("defaults.{rel}"),
        Origin::Host(i) => format!("hosts[{i}].{rel}"),
    }
}

/// A place in the file a later finding can point at.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Loc {
    line: usize,
    column: usize,
    key: String,
}

impl Loc {
    fn of(n: &Node, rel: &str) -> Loc {
        Loc {
            line: n.line,
            column: n.column,
            key: path(n.origin, rel),
        }
    }
}

/// A mapping's entries (null values count as absent), with its key path. A host's
/// mapping is read merged over the defaults' one without copying either: each entry is
/// the winning key and value, and where both sides hold a mapping under the key, the
/// defaults' mapping that the host's merges over (see [`Checker::merged`]).
struct Map<'n> {
    rel: String,
    entries: Vec<(Cow<'n, str>, &'n Node, &'n Node, Option<&'n Node>)>,
}

impl<'n> Map<'n> {
    fn empty(rel: &str) -> Self {
        Map {
            rel: rel.to_string(),
            entries: Vec::new(),
        }
    }

    fn get(&self, k: &str) -> Option<&'n Node> {
        self.get_merged(k).map(|e| e.0)
    }

    /// The value at `k` and the defaults' mapping it merges over, if any.
    fn get_merged(&self, k: &str) -> Option<(&'n Node, Option<&'n Node>)> {
        self.entries
            .iter()
            .find(|(name, _, v, _)| name == k && v.value != Value::Null)
            .map(|e| (e.2, e.3))
    }

    fn key_node(&self, k: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(name, _, _, _)| name == k)
            .map(|e| e.1)
    }

    fn child(&self, k: &str) -> String {
        if self.rel.is_empty() {
            k.to_string()
        } else {
            format!("{}.{k}", self.rel)
        }
    }
}

fn key_text(k: &Node) -> Cow<'_, str> {
    k.key_text()
}

/// A required key that was missing in one host (the defaults lacked it too).
struct Missing {
    rel: String,
    host: usize,
}

/// The most findings reported for one file; a file that is mostly wrong (or not an
/// inventory at all) would otherwise print and hold one message per line.
pub const MAX_DIAGNOSTICS: usize = 500;

struct Checker<'a> {
    file: &'a Path,
    diags: Vec<Diagnostic>,
    /// Hashes of the findings so far: a mistake in `defaults` is seen once per host but
    /// reported once.
    seen: HashSet<u64>,
    /// Findings beyond [`MAX_DIAGNOSTICS`].
    dropped: usize,
    missing: Vec<Missing>,
    /// The host being resolved, for [`Missing`].
    host: usize,
    /// Sections as resolved from the defaults alone (see [`Checker::cached`]).
    cache: SectionCache,
    /// Values of `defaults` nodes as read the first time (see [`Checker::memo`]), by
    /// node address and reading.
    memo: HashMap<(usize, usize, u8), Box<dyn std::any::Any + Send>>,
}

/// A section resolved from the defaults alone, with the required keys it lacked.
type Cached<T> = Option<(Option<T>, Vec<String>)>;

/// A section of a host resolved from the defaults alone: the same for every host that
/// does not set the section itself.
#[derive(Default)]
struct SectionCache {
    install: Cached<Install>,
    ntp_servers: Cached<List<Text>>,
    dns: Cached<Dns>,
    cloudstack: Cached<CloudStack>,
    cpu: Cached<Cpu>,
    network: Cached<(Option<Network>, Option<Subnet>)>,
    security: Cached<Security>,
}

impl<'a> Checker<'a> {
    fn new(file: &'a Path) -> Checker<'a> {
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

    /// Section `key` of a host (`m`) as `resolve` reads it, reused from an earlier host
    /// when the section comes from the defaults alone (the host does not set it):
    /// every such host gets the same (shared) value and the same findings, which were
    /// reported the first time; the required keys the section lacks are recorded
    /// missing for each host again. A section the host sets is read for that host.
    fn cached<T: Clone>(
        &mut self,
        m: &Map,
        key: &str,
        slot: fn(&mut SectionCache) -> &mut Cached<T>,
        resolve: impl FnOnce(&mut Self) -> Option<T>,
    ) -> Option<T> {
        let from_defaults = match m.get_merged(key) {
            None => true,
            Some((n, under)) => n.origin == Origin::Defaults && under.is_none(),
        };
        if !from_defaults {
            return resolve(self);
        }
        if let Some((v, missing)) = slot(&mut self.cache) {
            let (v, missing) = (v.clone(), missing.clone());
            let host = self.host;
            self.missing
                .extend(missing.into_iter().map(|rel| Missing { rel, host }));
            return v;
        }
        let before = self.missing.len();
        let v = resolve(self);
        let missing = self.missing[before..]
            .iter()
            .map(|m| m.rel.clone())
            .collect();
        *slot(&mut self.cache) = Some((v.clone(), missing));
        v
    }

    fn push_at(
        &mut self,
        severity: Severity,
        line: usize,
        column: usize,
        key: String,
        message: String,
    ) {
        self.push(Diagnostic {
            severity,
            file: self.file.to_path_buf(),
            line,
            column,
            key,
            message,
        });
    }

    /// Records `d` unless the same finding was recorded before.
    fn push(&mut self, d: Diagnostic) {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (d.line, d.column, &d.key, &d.message, d.severity).hash(&mut h);
        if !self.seen.insert(h.finish()) {
            return;
        }
        if self.diags.len() >= MAX_DIAGNOSTICS {
            self.dropped += 1;
            return;
        }
        self.diags.push(d);
    }

    /// Takes over what another checker (of a later part of the hosts) found. Past
    /// [`MAX_DIAGNOSTICS`], the count of findings not shown may include repeats of
    /// shown ones.
    fn absorb(&mut self, other: Checker) {
        for d in other.diags {
            self.push(d);
        }
        self.dropped += other.dropped;
        self.missing.extend(other.missing);
    }

    fn error(&mut self, n: &Node, rel: &str, message: impl Into<String>) {
        self.push_at(
            Severity::Error,
            n.line,
            n.column,
            path(n.origin, rel),
            message.into(),
        );
    }

    fn warn(&mut self, n: &Node, rel: &str, message: impl Into<String>) {
        self.push_at(
            Severity::Warning,
            n.line,
            n.column,
            path(n.origin, rel),
            message.into(),
        );
    }

    fn error_at(&mut self, at: &Loc, message: impl Into<String>) {
        self.push_at(
            Severity::Error,
            at.line,
            at.column,
            at.key.clone(),
            message.into(),
        );
    }

    /// Reads a mapping and reports keys not in `allowed`.
    fn map<'n>(&mut self, n: &'n Node, rel: &str, allowed: &[&str]) -> Map<'n> {
        self.merged(n, None, rel, allowed)
    }

    /// Reads mapping `n` deep-merged over the mapping `under` (a host's entry over the
    /// defaults): keys merge one by one, a mapping on both sides merges again below,
    /// anything else (scalars, lists) is the host's value, and a null value counts as
    /// absent. Each entry keeps its own node, so messages point at whichever side won.
    /// Reports keys not in `allowed`.
    fn merged<'n>(
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
        let mut push = |c: &mut Self, name: Cow<'n, str>, k: &'n Node, v: &'n Node, u| {
            if allowed.contains(&name.as_ref()) {
                map.entries.push((name, k, v, u));
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
    fn section<'n>(&mut self, parent: &Map<'n>, key: &str, allowed: &[&str]) -> Map<'n> {
        let rel = parent.child(key);
        match parent.get_merged(key) {
            Some((n, under)) => self.merged(n, under, &rel, allowed),
            None => Map::empty(&rel),
        }
    }

    /// A required key: records it as missing when absent.
    fn required<'n>(&mut self, m: &Map<'n>, key: &str) -> Option<&'n Node> {
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
    fn text(&mut self, n: &Node, rel: &str) -> Option<Text> {
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
    fn memo<T: Clone + Send + 'static>(
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
    fn checked(
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

    fn list<'n>(&mut self, n: &'n Node, rel: &str) -> Option<&'n [Node]> {
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
    fn checked_list(
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

    /// [`Checker::list`] holding at most `max` items.
    fn items<'n>(&mut self, n: &'n Node, rel: &str, max: usize) -> Option<&'n [Node]> {
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

    fn uint(&mut self, n: &Node, rel: &str, min: i128, max: i128, what: &str) -> Option<i128> {
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

    fn ipv4(&mut self, n: &Node, rel: &str) -> Option<Ipv4Addr> {
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

    fn choice<T: Copy + Send + 'static>(
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

/// The closest of `candidates` to `word`, if it is close enough to be a likely typo.
fn suggest<'c>(word: &str, candidates: &[&'c str]) -> Option<&'c str> {
    if word.len() > 64 {
        return None;
    }
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(word, c), *c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
        .or_else(|| {
            candidates
                .iter()
                .map(|c| (strsim::levenshtein(word, c), *c))
                .filter(|(d, _)| *d <= 2)
                .min_by_key(|(d, _)| *d)
                .map(|(_, c)| c)
        })
}

fn unknown_key_message(name: &str, allowed: &[&str]) -> String {
    let name = rules::shown(name);
    match suggest(&name, allowed) {
        Some(s) => format!("unknown key `{name}` (did you mean `{s}`?)"),
        None => format!(
            "unknown key `{name}` (valid keys here: {})",
            allowed.join(", ")
        ),
    }
}

/// What to write when a required key is missing.
fn missing_hint(rel: &str) -> &'static str {
    match rel {
        "os" => crate::target::os_missing_hint(),
        "fqdn" => "add the host's name, e.g. `fqdn: kvm1.lab.example.org`",
        "mac" => "add the MAC address of the host's trunk NIC, e.g. `mac: \"00:04:23:aa:bb:01\"`",
        "ip" => "add the host's management address, e.g. `ip: 192.168.42.11`",
        "install.root_password_hash" => "add a `$6$` hash made with `openssl passwd -6`",
        "install.disk" => "name the disk to wipe and install to, e.g. `disk: sda`",
        "dns.servers" => "add at least one DNS server, e.g. `servers: [192.168.42.1]`",
        "cloudstack.version" => "add e.g. `version: \"4.2\"`",
        "cloudstack.repository" => "add the CloudStack package repository URL",
        "cloudstack.management_server" => "add the management server's address or name",
        "network.trunk_nic" => "name the NIC carrying the VLANs, e.g. `trunk_nic: eth0`",
        "network.management.vlan" | "network.public.vlan" | "network.private.vlan" => {
            "add the VLAN id (1-4094)"
        }
        "network.management.prefix" => {
            "add the prefix length of the management subnet, e.g. `prefix: 24`"
        }
        "network.management.gateway" => "add the management gateway, e.g. `gateway: 192.168.42.1`",
        _ => "add it",
    }
}

/// Positions of one host's values that cross-host rules need.
#[derive(Default)]
struct HostLocs {
    fqdn: Option<(String, Loc)>,
    mac: Option<(String, Loc)>,
    ip: Option<(Ipv4Addr, Loc)>,
    /// The gateway node in force for this host, with the prefix.
    subnet: Option<Subnet>,
}

/// A management gateway, the prefix length and where the gateway was set.
type Subnet = (Ipv4Addr, u8, Loc);

/// Resolves the whole document. Returns the inventory (when there were no errors) and
/// every finding, sorted by position and deduplicated.
pub fn resolve(file: &Path, mut root: Node) -> (Option<Inventory>, Vec<Diagnostic>) {
    mark_origins(&mut root);
    let mut c = Checker::new(file);
    let inv = resolve_doc(&mut c, &root);
    let mut diags = c.diags;
    diags.sort_by_key(|d| (d.line, d.column));
    if c.dropped > 0 {
        diags.push(Diagnostic {
            severity: Severity::Error,
            file: file.to_path_buf(),
            line: 0,
            column: 0,
            key: String::new(),
            message: format!(
                "{} more problem(s) not shown; fix the ones above first (is this the right file?)",
                c.dropped
            ),
        });
    }
    let has_errors = diags.iter().any(|d| d.severity == Severity::Error);
    (if has_errors { None } else { inv }, diags)
}

/// Marks the nodes of `defaults` and of each host entry with where they come from, so
/// messages say `defaults.…` or `hosts[i].…`.
fn mark_origins(root: &mut Node) {
    let Value::Map(entries) = &mut root.value else {
        return;
    };
    for (k, v) in entries {
        match key_text(k).as_ref() {
            "defaults" => v.set_origin(Origin::Defaults),
            "hosts" => {
                if let Value::Seq(items) = &mut v.value {
                    for (i, h) in items.iter_mut().enumerate() {
                        h.set_origin(Origin::Host(i));
                    }
                }
            }
            _ => {}
        }
    }
}

fn resolve_doc(c: &mut Checker, root: &Node) -> Option<Inventory> {
    let Value::Map(_) = &root.value else {
        let found = if root.value == Value::Null {
            "the file is empty".to_string()
        } else {
            format!("the file holds {}", root.kind())
        };
        c.push_at(
            Severity::Error,
            root.line,
            root.column,
            String::new(),
            format!("{found}; an inventory is a mapping with the keys version, cluster, defaults and hosts (see docs/inventory.md)"),
        );
        return None;
    };
    let top = c.map(root, "", TOP_KEYS);
    let missing_top = |c: &mut Checker, key: &str, hint: &str| {
        c.push_at(
            Severity::Error,
            root.line,
            root.column,
            key.to_string(),
            format!("missing ({hint})"),
        );
    };

    let version = match top.get("version") {
        None => {
            missing_top(c, "version", "add `version: 1` at the top");
            None
        }
        Some(n) => match &n.value {
            Value::Int(1) => Some(1),
            _ => {
                let s = n
                    .scalar_text()
                    .map(|s| rules::shown(&s).into_owned())
                    .unwrap_or_else(|| n.kind().to_string());
                let msg = if s == "1" {
                    "write the version as a number: `version: 1`".to_string()
                } else {
                    format!("`{s}` is not supported; this hvseed reads inventory version 1 (write `version: 1`)")
                };
                c.error(n, "version", msg);
                None
            }
        },
    };
    let cluster = match top.get("cluster") {
        None => {
            missing_top(c, "cluster", "add a cluster name, e.g. `cluster: lab1`");
            None
        }
        Some(n) => c.checked(n, "cluster", rules::cluster_name),
    };

    // The defaults (one copy, from which the misplaced keys are dropped).
    let mut defaults = top.get("defaults").cloned().unwrap_or(Node {
        value: Value::Map(Vec::new()),
        line: root.line,
        column: root.column,
        raw: None,
        origin: Origin::Defaults,
    });
    if !matches!(defaults.value, Value::Map(_) | Value::Null) {
        c.error(
            &defaults,
            "",
            format!(
                "expected a mapping of keys ({}), found {}",
                SECTION_KEYS.join(", "),
                defaults.kind()
            ),
        );
        defaults.value = Value::Map(Vec::new());
    }
    // Host-only keys do not belong in defaults; report them once, here.
    if let Value::Map(entries) = &mut defaults.value {
        let mut kept = Vec::new();
        for (k, v) in entries.drain(..) {
            let name = key_text(&k);
            if HOST_ONLY_KEYS.contains(&name.as_ref()) {
                c.error(&k, &name, format!("`{name}` is different for every host: set it in each entry of `hosts`, not in defaults"));
            } else if SECTION_KEYS.contains(&name.as_ref()) {
                kept.push((k, v));
            } else {
                c.error(&k, &name, unknown_key_message(&name, SECTION_KEYS));
            }
        }
        *entries = kept;
        // Unknown keys inside the sections too: reported once here, so that merging
        // a host over the defaults walks only known keys, however many the file adds.
        for (k, v) in entries.iter_mut() {
            let name = key_text(k).into_owned();
            prune_unknown(c, v, &name);
        }
    }

    let os_node = match &defaults.value {
        Value::Map(e) => e
            .iter()
            .find(|(k, v)| key_text(k) == "os" && v.value != Value::Null)
            .map(|e| e.1.clone()),
        _ => None,
    };
    let os = match &os_node {
        None => {
            c.push_at(
                Severity::Error,
                defaults.line,
                defaults.column,
                "defaults.os".into(),
                format!("missing ({})", missing_hint("os")),
            );
            None
        }
        Some(n) => c.choice(n, "os", crate::target::os_choices()),
    };

    let host_nodes: &[Node] = match top.get("hosts") {
        None => {
            missing_top(
                c,
                "hosts",
                "add a `hosts:` list with at least one host (fqdn, mac, ip)",
            );
            &[]
        }
        Some(n) => match &n.value {
            Value::Seq(items) if items.is_empty() => {
                c.error(
                    n,
                    "hosts",
                    "the list is empty; add at least one host (fqdn, mac, ip)",
                );
                &[]
            }
            Value::Seq(items) => items,
            _ => {
                c.error(
                    n,
                    "hosts",
                    format!("expected a list of hosts, found {}", n.kind()),
                );
                &[]
            }
        },
    };

    let mut hosts = Vec::new();
    let mut locs = Vec::new();
    let mut all_ok = true;
    if host_nodes.is_empty() {
        // Still check the defaults, so the first run shows all their mistakes too.
        c.host = 0;
        let _ = resolve_host(c, &defaults, None, os);
        c.missing
            .retain(|m| !HOST_ONLY_KEYS.contains(&m.rel.as_str()));
    }
    // Hosts resolve independently of each other: a large inventory is split over the
    // cores, each part with its own checker, and the findings are merged in host order
    // (the same findings, deduplicated the same way, as one pass would give; past
    // MAX_DIAGNOSTICS, the count of those not shown may include repeats).
    if crate::par::ranges(host_nodes.len(), HOSTS_PER_THREAD).len() > 1 {
        let defaults = &defaults;
        let file = c.file;
        let done = crate::par::par_chunks(host_nodes, HOSTS_PER_THREAD, |first, part| {
            let mut pc = Checker::new(file);
            let out = resolve_hosts(&mut pc, part, first, defaults, os);
            (out, pc)
        });
        for ((h, l, ok), pc) in done {
            hosts.extend(h);
            locs.extend(l);
            all_ok &= ok;
            c.absorb(pc);
        }
    } else {
        let (h, l, ok) = resolve_hosts(c, host_nodes, 0, &defaults, os);
        (hosts, locs, all_ok) = (h, l, all_ok && ok);
    }

    let defaults_key = top
        .key_node("defaults")
        .map_or((root.line, root.column), |k| (k.line, k.column));
    report_missing(c, &defaults, defaults_key, host_nodes);
    cross_host_rules(c, &locs);

    if let (Some(version), Some(cluster), Some(os), true) = (version, cluster, os, all_ok) {
        Some(Inventory {
            path: c.file.to_path_buf(),
            version,
            cluster: cluster.to_string(),
            os,
            hosts,
        })
    } else {
        None
    }
}

/// The keys a mapping of `defaults` may hold, by key path (`None`: not a mapping).
fn allowed_keys(rel: &str) -> Option<&'static [&'static str]> {
    Some(match rel {
        "install" => INSTALL_KEYS,
        "dns" => DNS_KEYS,
        "cloudstack" => CLOUDSTACK_KEYS,
        "cpu" => CPU_KEYS,
        "network" => NETWORK_KEYS,
        "network.management" => MANAGEMENT_KEYS,
        "network.public" | "network.private" => VLAN_BRIDGE_KEYS,
        "security" => SECURITY_KEYS,
        _ => return None,
    })
}

/// Drops the unknown keys of `defaults` mapping `n` (at `rel`) and of the mappings
/// below it, reporting each as [`Checker::merged`] would.
fn prune_unknown(c: &mut Checker, n: &mut Node, rel: &str) {
    let Some(allowed) = allowed_keys(rel) else {
        return;
    };
    let Value::Map(entries) = &mut n.value else {
        return;
    };
    entries.retain(|(k, _)| {
        let name = key_text(k);
        let known = allowed.contains(&name.as_ref());
        if !known {
            let krel = format!("{rel}.{}", rules::shown(&name));
            let msg = unknown_key_message(&name, allowed);
            c.error(k, &krel, msg);
        }
        known
    });
    for (k, v) in entries.iter_mut() {
        let child = format!("{rel}.{}", key_text(k));
        prune_unknown(c, v, &child);
    }
}

/// The fewest hosts a resolver thread takes (see [`crate::par`]): an inventory of fewer
/// than twice this many is resolved in one pass by the caller's checker.
const HOSTS_PER_THREAD: usize = 256;

/// Resolves `nodes`, the host entries from index `first` on, merged over `defaults`.
/// Returns the hosts that resolved, every host's positions and whether all resolved.
fn resolve_hosts(
    c: &mut Checker,
    nodes: &[Node],
    first: usize,
    defaults: &Node,
    os: Option<Os>,
) -> (Vec<Host>, Vec<HostLocs>, bool) {
    let mut hosts = Vec::with_capacity(nodes.len());
    let mut locs = Vec::with_capacity(nodes.len());
    let mut all_ok = true;
    for (j, h) in nodes.iter().enumerate() {
        c.host = first + j;
        if !matches!(h.value, Value::Map(_)) {
            c.error(
                h,
                "",
                format!(
                    "expected a host mapping with fqdn, mac and ip, found {}",
                    h.kind()
                ),
            );
            all_ok = false;
            continue;
        }
        if let Value::Map(entries) = &h.value {
            // (`resolve_host` reads the cluster's `os`, never a host's.)
            for (k, _) in entries {
                if key_text(k) == "os" {
                    c.error(k, "os", "`os` is the same for every host of a cluster: remove it here and set it once in `defaults.os`");
                }
            }
            if let Some((k, _)) = entries
                .iter()
                .find(|(k, v)| key_text(k) == "cpu" && v.value != Value::Null)
            {
                c.warn(k, "cpu", "this host overrides `cpu`: hosts of a cluster should offer guests the same CPU, or live migration between them breaks");
            }
        }
        let (host, hl) = resolve_host(c, h, Some(defaults), os);
        match host {
            Some(host) => hosts.push(host),
            None => all_ok = false,
        }
        locs.push(hl);
    }
    (hosts, locs, all_ok)
}

/// Missing required keys: one message at `defaults` when no host has the key, else one
/// per host lacking it.
fn report_missing(
    c: &mut Checker,
    defaults: &Node,
    defaults_key: (usize, usize),
    host_nodes: &[Node],
) {
    let mut by_key: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for m in std::mem::take(&mut c.missing) {
        by_key.entry(m.rel).or_default().push(m.host);
    }
    for (rel, hosts) in by_key {
        let hint = missing_hint(&rel);
        let host_only = HOST_ONLY_KEYS.contains(&rel.as_str());
        if (hosts.len() == host_nodes.len() || host_nodes.is_empty()) && !host_only {
            let (line, column) = deepest_position(defaults, &rel).unwrap_or(defaults_key);
            c.push_at(
                Severity::Error,
                line,
                column,
                format!("defaults.{rel}"),
                format!("missing ({hint}; in defaults, or in every host)"),
            );
        } else {
            for i in hosts {
                let n = &host_nodes[i];
                let msg = if host_only {
                    format!("missing ({hint})")
                } else {
                    format!("missing: neither defaults nor this host sets it ({hint})")
                };
                c.push_at(
                    Severity::Error,
                    n.line,
                    n.column,
                    format!("hosts[{i}].{rel}"),
                    msg,
                );
            }
        }
    }
}

/// Position of the deepest existing key along `rel` under `node` (`None` when not even
/// the first one exists).
fn deepest_position(node: &Node, rel: &str) -> Option<(usize, usize)> {
    let mut cur = node;
    let mut pos = None;
    for part in rel.split('.') {
        let Value::Map(entries) = &cur.value else {
            break;
        };
        match entries.iter().find(|(k, _)| key_text(k) == part) {
            Some((k, v)) => {
                pos = Some((k.line, k.column));
                cur = v;
            }
            None => break,
        }
    }
    pos
}

/// Gateway position (line, column, key path), prefix and gateway address.
type SubnetKey<'l> = (usize, usize, &'l str, u8, Ipv4Addr);

fn cross_host_rules(c: &mut Checker, locs: &[HostLocs]) {
    // Uniqueness of fqdn, MAC and IP (the first holder's key path by value).
    let mut fqdns: HashMap<&str, &str> = HashMap::with_capacity(locs.len());
    let mut macs: HashMap<&str, &str> = HashMap::with_capacity(locs.len());
    let mut ips: HashMap<Ipv4Addr, &str> = HashMap::with_capacity(locs.len());
    for l in locs {
        if let Some((v, at)) = &l.fqdn {
            if let Some(first) = fqdns.insert(v, &at.key) {
                fqdns.insert(v, first);
                c.error_at(
                    at,
                    format!("duplicate of {first} (`{v}`); every host needs its own name"),
                );
            }
        }
        if let Some((v, at)) = &l.mac {
            if let Some(first) = macs.insert(v, &at.key) {
                macs.insert(v, first);
                c.error_at(at, format!("duplicate of {first} (`{v}`); every host needs the MAC of its own trunk NIC"));
            }
        }
        if let Some((v, at)) = &l.ip {
            if let Some(first) = ips.insert(*v, &at.key) {
                ips.insert(*v, first);
                c.error_at(
                    at,
                    format!(
                        "duplicate of {first} (`{v}`); every host needs its own management address"
                    ),
                );
            }
        }
    }

    // Hosts grouped by the gateway/prefix they use (a host may override them).
    let mut groups: BTreeMap<SubnetKey, Vec<(Ipv4Addr, &Loc)>> = BTreeMap::new();
    for l in locs {
        if let (Some((gw, prefix, gloc)), Some((ip, iloc))) = (&l.subnet, &l.ip) {
            groups
                .entry((gloc.line, gloc.column, gloc.key.as_str(), *prefix, *gw))
                .or_default()
                .push((*ip, iloc));
        }
    }
    for ((line, column, key, prefix, gw), members) in groups {
        let gloc = Loc {
            line,
            column,
            key: key.to_string(),
        };
        let mask = u32::from(hvseed_plan::names::netmask(prefix));
        let network = Ipv4Addr::from(u32::from(gw) & mask);
        let broadcast = Ipv4Addr::from(u32::from(gw) | !mask);
        let subnet = format!("{network}/{prefix}");
        if gw == network || gw == broadcast {
            let what = if gw == network {
                "network"
            } else {
                "broadcast"
            };
            c.error_at(&gloc, format!("{gw} is the {what} address of {subnet}; the gateway must be a usable address of the management subnet"));
            continue;
        }
        let inside = |ip: Ipv4Addr| u32::from(ip) & mask == u32::from(network);
        if !members.iter().any(|(ip, _)| inside(*ip)) {
            c.error_at(
                &gloc,
                format!(
                    "no host ip lies in the management subnet {subnet} that gateway {gw} with prefix {prefix} defines (is the gateway or the prefix wrong?)"
                ),
            );
            continue;
        }
        for (ip, at) in members {
            if !inside(ip) {
                c.error_at(at, format!("{ip} is outside the management subnet {subnet} (gateway {gw}, prefix {prefix})"));
            } else if ip == network {
                c.error_at(
                    at,
                    format!("{ip} is the network address of {subnet}; pick a host address"),
                );
            } else if ip == broadcast {
                c.error_at(
                    at,
                    format!("{ip} is the broadcast address of {subnet}; pick a host address"),
                );
            } else if ip == gw {
                c.error_at(
                    at,
                    format!("{ip} is the management gateway; pick another address for the host"),
                );
            }
        }
    }
}

/// One host: its entry `n` merged over `defaults`.
fn resolve_host(
    c: &mut Checker,
    n: &Node,
    defaults: Option<&Node>,
    os: Option<Os>,
) -> (Option<Host>, HostLocs) {
    let mut allowed: Vec<&str> = HOST_ONLY_KEYS.to_vec();
    allowed.extend(SECTION_KEYS.iter().filter(|k| **k != "os"));
    allowed.push("os"); // already reported when given per host; from defaults it is fine
    let m = c.merged(n, defaults, "", &allowed);
    let mut locs = HostLocs {
        fqdn: None,
        mac: None,
        ip: None,
        subnet: None,
    };

    let fqdn = c.required(&m, "fqdn").and_then(|v| {
        let s = c.checked(v, "fqdn", rules::fqdn)?.to_ascii_lowercase();
        locs.fqdn = Some((s.clone(), Loc::of(v, "fqdn")));
        Some(s)
    });
    let mac = c.required(&m, "mac").and_then(|v| {
        let s = c.text(v, "mac")?;
        match hvseed_plan::names::normalize_mac(&s) {
            Some(mac) if mac == "00:00:00:00:00:00" || u8::from_str_radix(&mac[..2], 16).is_ok_and(|b| b & 1 == 1) => {
                c.error(v, "mac", format!("`{s}` is not the address of a NIC (it is all-zero or a multicast/broadcast address)"));
                None
            }
            Some(mac) => {
                locs.mac = Some((mac.clone(), Loc::of(v, "mac")));
                Some(mac)
            }
            None => {
                c.error(v, "mac", format!("`{s}` is not a MAC address (write it like \"00:04:23:aa:bb:01\"; quote it in YAML)"));
                None
            }
        }
    });
    let ip = c.required(&m, "ip").and_then(|v| {
        let ip = c.ipv4(v, "ip")?;
        locs.ip = Some((ip, Loc::of(v, "ip")));
        Some(ip)
    });

    let install = c.cached(
        &m,
        "install",
        |k| &mut k.install,
        |c| resolve_install(c, &m, os),
    );
    let ntp_servers = c.cached(&m, "ntp_servers", |k| &mut k.ntp_servers, |c| {
        match m.get("ntp_servers") {
            None => Some(DEFAULT_NTP.iter().map(|s| Text::from(*s)).collect()),
            Some(v) => c.checked_list(v, "ntp_servers", rules::host, rules::MAX_NTP_SERVERS).and_then(|l| {
                if l.is_empty() {
                    c.error(v, "ntp_servers", "the list is empty; CloudStack hosts need NTP (name at least one server, or leave the key out for the pool.ntp.org default)");
                    None
                } else {
                    Some(l)
                }
            }),
        }
    });
    let dns = c.cached(&m, "dns", |k| &mut k.dns, |c| resolve_dns(c, &m));
    let cloudstack = c.cached(
        &m,
        "cloudstack",
        |k| &mut k.cloudstack,
        |c| resolve_cloudstack(c, &m),
    );
    let cpu = c.cached(&m, "cpu", |k| &mut k.cpu, |c| resolve_cpu(c, &m, os));
    // The management subnet is kept even when the network section has other errors,
    // so that the cross-host checks of the addresses still run.
    let network = c
        .cached(
            &m,
            "network",
            |k| &mut k.network,
            |c| {
                let mut l = HostLocs::default();
                let n = resolve_network(c, &m, os, &mut l);
                Some((n, l.subnet))
            },
        )
        .and_then(|(n, subnet)| {
            locs.subnet = subnet;
            n
        });
    let security = c.cached(
        &m,
        "security",
        |k| &mut k.security,
        |c| resolve_security(c, &m, os),
    );

    let host = (|| {
        Some(Host {
            fqdn: fqdn?,
            mac: mac?,
            ip: ip?,
            os: os?,
            install: install?,
            ntp_servers: ntp_servers?,
            dns: dns?,
            cloudstack: cloudstack?,
            cpu: cpu?,
            network: network?,
            security: security?,
        })
    })();
    (host, locs)
}

fn resolve_install(c: &mut Checker, m: &Map, _os: Option<Os>) -> Option<Install> {
    let s = c.section(m, "install", INSTALL_KEYS);
    let source = match s.get("source") {
        None => Some(InstallSource::Cdrom),
        Some(v) => c.memo(v, (0, 4), |c| {
            let t = c.text(v, "install.source")?;
            if &*t == "cdrom" {
                return Some(InstallSource::Cdrom);
            }
            match rules::url(&t) {
                Ok(()) => Some(InstallSource::Url(t)),
                Err(e) => {
                    c.error(
                        v,
                        "install.source",
                        format!("must be `cdrom` or an http(s) URL of the distribution tree: {e}"),
                    );
                    None
                }
            }
        }),
    };
    let text_or = |c: &mut Checker,
                   key: &str,
                   default: &str,
                   rule: fn(&str) -> Result<(), String>|
     -> Option<Text> {
        match s.get(key) {
            None => Some(default.into()),
            Some(v) => c.checked(v, &s.child(key), rule),
        }
    };
    let locale = text_or(c, "locale", "en_US.UTF-8", rules::locale);
    let keyboard = text_or(c, "keyboard", "us", rules::keyboard);
    let timezone = text_or(c, "timezone", "Etc/UTC", rules::timezone);
    let root_password_hash = c
        .required(&s, "root_password_hash")
        .and_then(|v| c.checked(v, "install.root_password_hash", rules::password_hash));
    let disk = c
        .required(&s, "disk")
        .and_then(|v| c.checked(v, "install.disk", rules::disk));
    let list_or_empty = |c: &mut Checker,
                         key: &str,
                         rule: fn(&str) -> Result<(), String>,
                         max: usize|
     -> Option<List<Text>> {
        match s.get(key) {
            None => Some(List::from([])),
            Some(v) => c.checked_list(v, &s.child(key), rule, max),
        }
    };
    let ssh_authorized_keys = list_or_empty(
        c,
        "ssh_authorized_keys",
        rules::ssh_key,
        rules::MAX_SSH_KEYS,
    );
    let extra_packages = list_or_empty(c, "extra_packages", rules::package, rules::MAX_PACKAGES);
    let kernel_args = match s.get("kernel_args") {
        None => Some(List::from([])),
        Some(v) => c.memo(v, (0, 5), |c| resolve_kernel_args(c, v)),
    };
    let extra_repositories = match s.get("extra_repositories") {
        None => Some(List::from([])),
        Some(v) => c.memo(v, (0, 6), |c| resolve_repositories(c, v)),
    };
    Some(Install {
        source: source?,
        locale: locale?,
        keyboard: keyboard?,
        timezone: timezone?,
        root_password_hash: root_password_hash?,
        ssh_authorized_keys: ssh_authorized_keys?,
        disk: disk?,
        extra_packages: extra_packages?,
        kernel_args: kernel_args?,
        extra_repositories: extra_repositories?,
    })
}

/// `install.kernel_args`: each checked by the one kernel-argument rule, all of them
/// within [`MAX_KERNEL_ARGS_BYTES`].
fn resolve_kernel_args(c: &mut Checker, v: &Node) -> Option<List<KernelArg>> {
    let rel = "install.kernel_args";
    let items = c.items(v, rel, MAX_KERNEL_ARGS_BYTES / 2)?;
    let mut args = Vec::with_capacity(items.len());
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let irel = format!("{rel}[{i}]");
        let Some(t) = c.text(item, &irel) else {
            ok = false;
            continue;
        };
        match KernelArg::new(&t) {
            Ok(a) => args.push(a),
            Err(e) => {
                c.error(item, &irel, e);
                ok = false;
            }
        }
    }
    if !ok {
        return None;
    }
    let total: usize = args.iter().map(|a| a.len() + 1).sum();
    if total > MAX_KERNEL_ARGS_BYTES {
        c.error(
            v,
            rel,
            format!("the arguments take {total} bytes of the kernel command line; at most {MAX_KERNEL_ARGS_BYTES} are left for them (the kernel reads 2048, the installer's own arguments need the rest)"),
        );
        return None;
    }
    if let Some(i) = split_console_arg(&args) {
        if let Value::Seq(items) = &v.value {
            c.error(
                &items[i],
                &format!("{rel}[{i}]"),
                format!(
                    "`{}` looks like the rest of `{}`, split by the comma of a YAML flow list; quote the whole argument: \"{},{}\"",
                    args[i], args[i - 1], args[i - 1], args[i]
                ),
            );
        }
        return None;
    }
    Some(args.into())
}

/// `install.extra_repositories`: `{ name, url }` mappings with unique names.
fn resolve_repositories(c: &mut Checker, v: &Node) -> Option<List<Repository>> {
    let rel = "install.extra_repositories";
    let items = c.items(v, rel, rules::MAX_REPOSITORIES)?;
    let mut ok = true;
    let mut out = Vec::with_capacity(items.len());
    let mut names: HashMap<Text, String> = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        let irel = format!("{rel}[{i}]");
        let r = c.map(item, &irel, REPO_KEYS);
        if !matches!(item.value, Value::Map(_)) {
            ok = false;
            continue;
        }
        let name = match r.get("name") {
            None => {
                c.error(
                    item,
                    &irel,
                    "missing `name` (a repository id such as `openvswitch`)",
                );
                None
            }
            Some(nv) => c
                .checked(nv, &r.child("name"), rules::repo_name)
                .and_then(|name| {
                    let key = path(nv.origin, &r.child("name"));
                    if let Some(first) = names.get(&name) {
                        c.error(
                            nv,
                            &r.child("name"),
                            format!(
                                "duplicate of {first} (`{name}`); repository names must be unique"
                            ),
                        );
                        None
                    } else {
                        names.insert(name.clone(), key);
                        Some(name)
                    }
                }),
        };
        let url = match r.get("url") {
            None => {
                c.error(
                    item,
                    &irel,
                    "missing `url` (the http(s) URL of the repository)",
                );
                None
            }
            Some(uv) => c.checked(uv, &r.child("url"), rules::url),
        };
        match (name, url) {
            (Some(name), Some(url)) => out.push(Repository { name, url }),
            _ => ok = false,
        }
    }
    ok.then(|| out.into())
}

/// Index of a kernel argument like `115200n8` right after a `console=…` one: the two
/// halves of `console=ttyS0,115200n8` written unquoted in a flow list.
fn split_console_arg(args: &[KernelArg]) -> Option<usize> {
    (1..args.len()).find(|&i| {
        args[i - 1].starts_with("console=")
            && !args[i].contains('=')
            && args[i].starts_with(|c: char| c.is_ascii_digit())
    })
}

fn resolve_dns(c: &mut Checker, m: &Map) -> Option<Dns> {
    let s = c.section(m, "dns", DNS_KEYS);
    let servers = c.required(&s, "servers").and_then(|v| {
        c.memo(v, (0, 7), |c| {
            let items = c.items(v, "dns.servers", rules::MAX_DNS_SERVERS)?;
            if items.is_empty() {
                c.error(
                    v,
                    "dns.servers",
                    "the list is empty; name at least one DNS server (IPv4)",
                );
                return None;
            }
            let mut out = Vec::new();
            let mut ok = true;
            for (i, item) in items.iter().enumerate() {
                match c.ipv4(item, &format!("dns.servers[{i}]")) {
                    Some(a) => out.push(a),
                    None => ok = false,
                }
            }
            ok.then(|| List::from(out))
        })
    });
    let search = match s.get("search") {
        None => Some(List::from([])),
        Some(v) => c.checked_list(v, "dns.search", rules::domain, rules::MAX_DNS_SEARCH),
    };
    Some(Dns {
        servers: servers?,
        search: search?,
    })
}

fn resolve_cloudstack(c: &mut Checker, m: &Map) -> Option<CloudStack> {
    let s = c.section(m, "cloudstack", CLOUDSTACK_KEYS);
    let version = c
        .required(&s, "version")
        .and_then(|v| c.checked(v, "cloudstack.version", rules::cloudstack_version));
    let repository = c
        .required(&s, "repository")
        .and_then(|v| c.checked(v, "cloudstack.repository", rules::url));
    let management_server = c
        .required(&s, "management_server")
        .and_then(|v| c.checked(v, "cloudstack.management_server", rules::ipv4_or_fqdn));
    Some(CloudStack {
        version: version?,
        repository: repository?,
        management_server: management_server?,
    })
}

fn resolve_cpu(c: &mut Checker, m: &Map, os: Option<Os>) -> Option<Cpu> {
    let s = c.section(m, "cpu", CPU_KEYS);
    let mode_node = s.get("mode");
    let mode = match mode_node {
        None => Some(CpuMode::HostModel),
        Some(v) => c.choice(
            v,
            "cpu.mode",
            &[
                ("custom", CpuMode::Custom),
                ("host-model", CpuMode::HostModel),
                ("host-passthrough", CpuMode::HostPassthrough),
            ],
        ),
    };
    let rules = os.map(|os| &crate::target::of(os).inventory);
    if let (Some(v), Some(warning)) = (mode_node, rules.and_then(|r| r.cpu_mode_warning)) {
        c.warn(v, "cpu.mode", warning);
    }
    let model = match s.get("model") {
        None => None,
        Some(v) => c.checked(v, "cpu.model", rules::cpu_word).map(|m| (m, v)),
    };
    let mut ok = true;
    match (mode, &model) {
        (Some(CpuMode::Custom), None) if s.get("model").is_none() => {
            let at = mode_node.expect("custom mode was read from a node");
            c.error(
                at,
                "cpu.mode",
                "mode `custom` needs `cpu.model` (a libvirt CPU model such as `SandyBridge`)",
            );
            ok = false;
        }
        (Some(CpuMode::HostModel | CpuMode::HostPassthrough), Some((_, v))) => {
            c.error(
                v,
                "cpu.model",
                "a CPU model is only used with `mode: custom`; remove it or set `mode: custom`",
            );
            ok = false;
        }
        _ => {}
    }
    let features = match s.get("features") {
        None => Some(List::from([])),
        Some(v) => c.checked_list(v, "cpu.features", rules::cpu_word, rules::MAX_CPU_FEATURES),
    };
    if !ok {
        return None;
    }
    let mode = mode?;
    let model = match mode {
        CpuMode::Custom => Some(model?.0),
        _ => None,
    };
    Some(Cpu {
        mode,
        model,
        features: features?,
    })
}

fn resolve_network(
    c: &mut Checker,
    m: &Map,
    os: Option<Os>,
    locs: &mut HostLocs,
) -> Option<Network> {
    let s = c.section(m, "network", NETWORK_KEYS);
    let kind = match s.get("type") {
        None => Some(NetworkType::LinuxBridge),
        Some(v) => {
            let k = c.choice(
                v,
                "network.type",
                &[
                    ("linux-bridge", NetworkType::LinuxBridge),
                    ("openvswitch", NetworkType::Openvswitch),
                ],
            );
            let warning = os.and_then(|os| crate::target::of(os).inventory.openvswitch_warning);
            if let (Some(NetworkType::Openvswitch), Some(w)) = (k, warning) {
                c.warn(v, "network.type", w);
            }
            k
        }
    };
    let ovs = kind == Some(NetworkType::Openvswitch);
    let mut ok = true;
    let trunk_nic = c.required(&s, "trunk_nic").and_then(|v| {
        let nic = c.checked(v, "network.trunk_nic", rules::interface)?;
        Some((nic, v))
    });
    // Bridges carry the place they were set (`None` for a default).
    let trunk_bridge: Option<Option<(Text, Option<Loc>)>> = match (s.get("trunk_bridge"), kind) {
        (Some(v), Some(NetworkType::LinuxBridge)) => {
            c.error(v, "network.trunk_bridge", "only used with `type: openvswitch`; remove it (linux-bridge puts each VLAN on its own bridge)");
            ok = false;
            None
        }
        (Some(v), _) => c
            .checked(v, "network.trunk_bridge", rules::interface)
            .map(|b| Some((b, Some(Loc::of(v, "network.trunk_bridge"))))),
        (None, _) => Some(ovs.then(|| ("cloudbr".into(), None))),
    };

    let ms = c.section(&s, "management", MANAGEMENT_KEYS);
    let mvlan = c.required(&ms, "vlan").and_then(|v| {
        let id = c.uint(v, "network.management.vlan", 1, 4094, "VLAN id")? as u16;
        Some((id, Loc::of(v, "network.management.vlan")))
    });
    let prefix = c.required(&ms, "prefix").and_then(|v| {
        let p = c.uint(v, "network.management.prefix", 1, 30, "prefix length")? as u8;
        Some(p)
    });
    let gateway = c.required(&ms, "gateway").and_then(|v| {
        let g = c.ipv4(v, "network.management.gateway")?;
        Some((g, Loc::of(v, "network.management.gateway")))
    });
    if let (Some(p), Some((g, gl))) = (prefix, &gateway) {
        locs.subnet = Some((*g, p, gl.clone()));
    }
    let mbridge: Option<Option<(Text, Option<Loc>)>> = match (ms.get("bridge"), kind) {
        (Some(v), Some(NetworkType::LinuxBridge)) => {
            c.error(v, "network.management.bridge", "only used with `type: openvswitch` (the fake bridge for management); remove it for linux-bridge");
            ok = false;
            None
        }
        (Some(v), _) => c
            .checked(v, "network.management.bridge", rules::interface)
            .map(|b| Some((b, Some(Loc::of(v, "network.management.bridge"))))),
        (None, _) => Some(ovs.then(|| ("mgmt0".into(), None))),
    };

    let vlan_bridge = |c: &mut Checker, name: &str, default_bridge: &str| {
        let vs = c.section(&s, name, VLAN_BRIDGE_KEYS);
        let rel = format!("network.{name}");
        let vlan = c.required(&vs, "vlan").and_then(|v| {
            let id = c.uint(v, &format!("{rel}.vlan"), 1, 4094, "VLAN id")? as u16;
            Some((id, Loc::of(v, &format!("{rel}.vlan"))))
        });
        let bridge = match vs.get("bridge") {
            None => Some((Text::from(default_bridge), None)),
            Some(v) => c
                .checked(v, &format!("{rel}.bridge"), rules::interface)
                .map(|b| (b, Some(Loc::of(v, &format!("{rel}.bridge"))))),
        };
        (vlan, bridge)
    };
    let (pvlan, pbridge) = vlan_bridge(c, "public", "cloudbr0");
    let (qvlan, qbridge) = vlan_bridge(c, "private", "cloudbr1");

    // VLAN ids distinct.
    let vlans: Vec<(&str, &(u16, Loc))> = [
        ("management", &mvlan),
        ("public", &pvlan),
        ("private", &qvlan),
    ]
    .into_iter()
    .filter_map(|(n, v)| v.as_ref().map(|v| (n, v)))
    .collect();
    for (i, (_, (id, at))) in vlans.iter().enumerate() {
        if let Some((first, _)) = vlans[..i].iter().find(|(_, (other, _))| other == id) {
            c.error_at(at, format!("VLAN {id} is already the {first} VLAN; management, public and private need distinct VLANs"));
            ok = false;
        }
    }
    // Bridge names distinct (and distinct from the trunk NIC).
    let mut bridges: Vec<(Text, String, Option<Loc>)> = Vec::new();
    if let Some(Some((b, at))) = &trunk_bridge {
        bridges.push((b.clone(), "network.trunk_bridge".into(), at.clone()));
    }
    if let Some(Some((b, at))) = &mbridge {
        bridges.push((b.clone(), "network.management.bridge".into(), at.clone()));
    }
    if let Some((b, at)) = &pbridge {
        bridges.push((b.clone(), "network.public.bridge".into(), at.clone()));
    }
    if let Some((b, at)) = &qbridge {
        bridges.push((b.clone(), "network.private.bridge".into(), at.clone()));
    }
    for i in 0..bridges.len() {
        let (b, rel, at) = &bridges[i];
        let clash = bridges[..i]
            .iter()
            .find(|(o, _, _)| o == b)
            .map(|(_, r, _)| r.clone())
            .or_else(|| {
                trunk_nic
                    .as_ref()
                    .filter(|(nic, _)| nic == b)
                    .map(|_| "network.trunk_nic".to_string())
            });
        if let Some(other) = clash {
            let msg = format!(
                "bridge name `{b}` is also used by {other}; every bridge needs its own name"
            );
            match at {
                Some(at) => c.error_at(at, msg),
                None => {
                    let at = s.key_node("type").or_else(|| m.key_node("network"));
                    match at {
                        Some(n) => c.error(
                            n,
                            rel,
                            format!("{msg} (this is the default; set it explicitly)"),
                        ),
                        None => c.push_at(Severity::Error, 0, 0, rel.clone(), msg),
                    }
                }
            }
            ok = false;
        }
    }
    // Linux bridge: `<nic>.<vlan>` must itself be a valid interface name.
    if kind == Some(NetworkType::LinuxBridge) {
        if let Some((nic, v)) = &trunk_nic {
            let max_vlan = vlans.iter().map(|(_, (id, _))| *id).max().unwrap_or(1);
            let sub = format!("{nic}.{max_vlan}");
            if !hvseed_plan::names::is_interface_name(&sub) {
                c.error(v, "network.trunk_nic", format!("`{sub}` (the VLAN interface) would be longer than 15 characters; Linux cannot name it"));
                ok = false;
            }
        }
    }
    if !ok {
        return None;
    }
    Some(Network {
        kind: kind?,
        trunk_nic: trunk_nic?.0,
        trunk_bridge: trunk_bridge?.map(|t| t.0),
        management: Management {
            vlan: mvlan?.0,
            prefix: prefix?,
            gateway: gateway?.0,
            bridge: mbridge?.map(|t| t.0),
        },
        public: VlanBridge {
            vlan: pvlan?.0,
            bridge: pbridge?.0,
        },
        private: VlanBridge {
            vlan: qvlan?.0,
            bridge: qbridge?.0,
        },
    })
}

fn resolve_security(c: &mut Checker, m: &Map, os: Option<Os>) -> Option<Security> {
    let s = c.section(m, "security", SECURITY_KEYS);
    let rule = os.map(|os| crate::target::of(os).inventory.selinux);
    let selinux = match (s.get("selinux"), rule) {
        (Some(v), Some(Selinux::Refused(why))) => {
            c.error(v, "security.selinux", why);
            None
        }
        (Some(v), _) => {
            if v.scalar_text().as_deref() == Some("enforcing") {
                c.error(v, "security.selinux", "CloudStack's KVM agent does not work with SELinux enforcing; use `permissive` or `disabled`");
                None
            } else {
                c.choice(
                    v,
                    "security.selinux",
                    &[
                        ("permissive", SelinuxMode::Permissive),
                        ("disabled", SelinuxMode::Disabled),
                    ],
                )
                .map(Some)
            }
        }
        (None, Some(Selinux::Default(mode))) => Some(Some(mode)),
        (None, _) => Some(None),
    };
    let firewall_sources = match s.get("firewall_sources") {
        None => Some(List::from([])),
        Some(v) => c.memo(v, (0, 8), |c| {
            let items = c.items(v, "security.firewall_sources", rules::MAX_FIREWALL_SOURCES)?;
            let mut out: Vec<Text> = Vec::new();
            let mut ok = true;
            for (i, item) in items.iter().enumerate() {
                let rel = format!("security.firewall_sources[{i}]");
                let Some(t) = c.text(item, &rel) else {
                    ok = false;
                    continue;
                };
                match rules::cidr(&t) {
                    Ok(n) => out.push(n.into()),
                    Err(e) => {
                        c.error(item, &rel, e);
                        ok = false;
                    }
                }
            }
            ok.then(|| List::from(out))
        }),
    };
    Some(Security {
        selinux: selinux?,
        firewall_sources: firewall_sources?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::yaml::parse;

    fn node(text: &str, origin: Origin) -> Node {
        let mut n = parse(text).unwrap();
        n.set_origin(origin);
        n
    }

    #[test]
    fn merge_is_deep_and_keeps_the_winner_position() {
        let d = node(
            "install:\n  disk: sda\n  locale: en_US.UTF-8\nntp_servers: [a.org, b.org]\n",
            Origin::Defaults,
        );
        let h = node(
            "fqdn: x.y.z\ninstall: { disk: sdb }\nntp_servers: [c.org]\n",
            Origin::Host(1),
        );
        let mut c = Checker::new(Path::new("t.yaml"));
        c.host = 1;
        let m = c.merged(&h, Some(&d), "", &["fqdn", "install", "ntp_servers"]);
        let install = c.section(&m, "install", INSTALL_KEYS);
        let disk = install.get("disk").unwrap();
        assert_eq!(disk.scalar_text().as_deref(), Some("sdb"));
        assert_eq!(
            (disk.line, disk.column, disk.origin),
            (
                2,
                "install: { disk: sdb }".find("sdb").unwrap() + 1,
                Origin::Host(1)
            )
        );
        let locale = install.get("locale").unwrap();
        assert_eq!((locale.line, locale.origin), (3, Origin::Defaults));
        // Lists are replaced, not concatenated.
        let Value::Seq(ntp) = &m.get("ntp_servers").unwrap().value else {
            panic!()
        };
        assert_eq!(ntp.len(), 1);
        assert_eq!(ntp[0].origin, Origin::Host(1));
        assert!(m.get("fqdn").unwrap().origin == Origin::Host(1));
        assert!(c.diags.is_empty(), "{:?}", c.diags);
    }

    /// An inventory of `n` hosts (192.168.0.0/16) with `defaults` (YAML lines under
    /// `defaults:`) and host `i`'s extra lines from `extra(i)`.
    fn fleet(n: usize, defaults: &str, extra: impl Fn(usize) -> String) -> String {
        let mut t = format!("version: 1\ncluster: big\ndefaults:\n{defaults}hosts:\n");
        for i in 0..n {
            t.push_str(&format!(
                "  - fqdn: kvm{i}.example.org\n    mac: \"02:00:00:00:{:02x}:{:02x}\"\n    ip: 192.168.{}.{}\n{}",
                i / 256,
                i % 256,
                1 + i / 200,
                10 + i % 200,
                extra(i)
            ));
        }
        t
    }

    const DEFAULTS: &str = "  os: ubuntu1204
  install:
    source: cdrom
    locale: en_US.UTF-8
    keyboard: us
    timezone: Etc/UTC
    root_password_hash: \"$6$salt$t1.kB9z7B8HKic33ra63fhRD9HftPru4/eGjbd2w882XHzsjLP9FI2Gir7yyCr6VcJISEaAu3gFSDunaEoAuu0\"
    disk: sda
  dns: { servers: [192.168.0.1] }
  cloudstack: { version: \"4.2\", repository: \"http://cloudstack.apt-get.eu/ubuntu\", management_server: 192.168.0.5 }
  network:
    trunk_nic: eth0
    management: { vlan: 100, prefix: 16, gateway: 192.168.0.1 }
    public: { vlan: 200 }
    private: { vlan: 300 }
";

    fn run(text: &str) -> (Option<Inventory>, Vec<Diagnostic>) {
        resolve(Path::new("big.yaml"), parse(text).unwrap())
    }

    #[test]
    fn large_inventories_resolve_in_parts_with_the_same_results() {
        // Hosts that set a section get their own value, the others the defaults'.
        let text = fleet(1200, DEFAULTS, |i| {
            if i % 7 == 3 {
                "    install: { disk: sdb }\n".into()
            } else {
                String::new()
            }
        });
        let (inv, diags) = run(&text);
        assert!(diags.is_empty(), "{diags:?}");
        let inv = inv.unwrap();
        assert_eq!(inv.hosts.len(), 1200);
        for (i, h) in inv.hosts.iter().enumerate() {
            assert_eq!(h.fqdn, format!("kvm{i}.example.org"));
            assert_eq!(&*h.install.disk, if i % 7 == 3 { "sdb" } else { "sda" });
            assert_eq!(&*h.install.locale, "en_US.UTF-8");
            assert_eq!(h.network.management.vlan, 100);
        }

        // A mistake in the defaults is reported once, at the defaults, however many
        // hosts (and parts) read it; so is a warning.
        let bad = DEFAULTS
            .replace(
                "    trunk_nic: eth0\n",
                "    type: openvswitch\n    trunk_nic: eth0\n",
            )
            .replace("timezone: Etc/UTC", "timezone: Not/AZone!");
        let (inv, diags) = run(&fleet(1200, &bad, |_| String::new()));
        assert!(inv.is_none());
        let tz: Vec<_> = diags
            .iter()
            .filter(|d| d.key == "defaults.install.timezone")
            .collect();
        assert_eq!(tz.len(), 1, "{diags:?}");
        let ovs: Vec<_> = diags
            .iter()
            .filter(|d| d.key == "defaults.network.type")
            .collect();
        assert_eq!(
            (ovs.len(), ovs[0].severity),
            (1, Severity::Warning),
            "{diags:?}"
        );
        assert_eq!(diags.len(), 2, "{diags:?}");
    }

    #[test]
    fn a_key_missing_from_the_defaults_is_reported_per_host_across_parts() {
        // No gateway in the defaults; host 3 sets its own. Every other host is missing
        // it: one finding each, the first MAX_DIAGNOSTICS shown, the rest counted.
        let defaults = DEFAULTS.replace(", gateway: 192.168.0.1 }", " }");
        let text = fleet(700, &defaults, |i| {
            if i == 3 {
                "    network: { management: { gateway: 192.168.0.1 } }\n".into()
            } else {
                String::new()
            }
        });
        let (inv, diags) = run(&text);
        assert!(inv.is_none());
        let missing: Vec<_> = diags
            .iter()
            .filter(|d| d.key.ends_with("].network.management.gateway"))
            .collect();
        assert_eq!(missing.len(), MAX_DIAGNOSTICS, "{:?}", &diags[..3]);
        assert_eq!(missing[0].key, "hosts[0].network.management.gateway");
        assert_eq!(missing[3].key, "hosts[4].network.management.gateway");
        assert!(missing.iter().all(|d| d
            .message
            .starts_with("missing: neither defaults nor this host")));
        let last = diags.last().unwrap();
        assert_eq!(
            last.message,
            "199 more problem(s) not shown; fix the ones above first (is this the right file?)"
        );
        assert_eq!(diags.len(), MAX_DIAGNOSTICS + 1);
    }

    #[test]
    fn a_network_mistake_does_not_hide_the_subnet_checks() {
        // Host 1's public VLAN clashes with management's, and its address is outside
        // the management subnet: both are reported.
        let text = fleet(2, DEFAULTS, |i| {
            if i == 1 {
                "    network: { public: { vlan: 100 } }\n".into()
            } else {
                String::new()
            }
        })
        .replace("ip: 192.168.1.11", "ip: 10.0.0.5");
        let (inv, diags) = run(&text);
        assert!(inv.is_none());
        let keys: Vec<&str> = diags.iter().map(|d| d.key.as_str()).collect();
        assert!(keys.contains(&"hosts[1].network.public.vlan"), "{diags:?}");
        let ip = diags
            .iter()
            .find(|d| d.key == "hosts[1].ip")
            .expect("the ip finding");
        assert!(
            ip.message.contains("outside the management subnet"),
            "{diags:?}"
        );
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggest("trunk_nick", NETWORK_KEYS), Some("trunk_nic"));
        assert_eq!(suggest("dsik", INSTALL_KEYS), Some("disk"));
        assert_eq!(suggest("zzzzzz", INSTALL_KEYS), None);
    }
}
