//! YAML tree → [`Inventory`]: merges `defaults` into each host, reads every key into
//! its typed form (the sections in [`super::sections`]), applies the cross-host rules
//! and collects every finding (never stopping at the first). Hosts are read in parts
//! on all cores; a section a host takes from the defaults alone is read once.

use std::collections::BTreeMap;
use std::path::Path;

use super::cross_host::{cross_host_rules, HostLocs, Subnet};
use super::diagnostics::{Diagnostic, Loc, Missing, Severity};
use super::model::*;
use super::reader::{key_text, Checker, Map};
use super::rules;
use super::schema::*;
use super::sections::*;
use super::yaml::{Node, Origin, Value};

/// A section resolved from the defaults alone, with the required keys it lacked.
pub(super) type Cached<T> = Option<(Option<T>, Vec<String>)>;

/// A section of a host resolved from the defaults alone: the same for every host that
/// does not set the section itself.
#[derive(Default)]
pub(super) struct SectionCache {
    pub(super) install: Cached<Install>,
    pub(super) ntp_servers: Cached<List<Text>>,
    pub(super) dns: Cached<Dns>,
    pub(super) cloudstack: Cached<CloudStack>,
    pub(super) cpu: Cached<Cpu>,
    pub(super) network: Cached<(Option<Network>, Option<Subnet>)>,
    pub(super) security: Cached<Security>,
}

impl Checker<'_> {
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
}

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
        |c| resolve_cloudstack(c, &m, os),
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

    let ovs_ok = match (
        &install,
        &network,
        os.and_then(|os| crate::target::of(os).inventory.openvswitch_package_required),
    ) {
        (Some(install), Some(network), Some(why)) => {
            openvswitch_package(c, &m, install, network, why)
        }
        _ => true,
    };

    let host = (|| {
        if !ovs_ok {
            return None;
        }
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

/// Open vSwitch on a target whose own repositories lack it: a versioned package
/// (`openvswitch3.3`) among `install.extra_packages` and a repository to take it from.
/// Said at `network.type`, where Open vSwitch was chosen.
fn openvswitch_package(
    c: &mut Checker,
    m: &Map,
    install: &Install,
    network: &Network,
    why: &str,
) -> bool {
    if network.kind != NetworkType::Openvswitch {
        return true;
    }
    let versioned = install.extra_packages.iter().any(|p| {
        p.strip_prefix("openvswitch")
            .is_some_and(|rest| rest.starts_with(|ch: char| ch.is_ascii_digit()))
    });
    if versioned && !install.extra_repositories.is_empty() {
        return true;
    }
    let s = c.section(m, "network", NETWORK_KEYS);
    if let Some(at) = s.get("type") {
        let missing = match (versioned, install.extra_repositories.is_empty()) {
            (false, true) => "no versioned `openvswitch` package and no extra repository",
            (false, false) => "no versioned `openvswitch` package in `install.extra_packages`",
            _ => "no `install.extra_repositories` to install the Open vSwitch package from",
        };
        c.error(
            at,
            "network.type",
            format!("Open vSwitch needs a package this host does not get ({missing}): {why}"),
        );
    }
    false
}

#[cfg(test)]
mod tests;
