//! The inventory's key schema: the keys each mapping may hold, the defaults of
//! optional values, and what to tell a user who wrote an unknown key or left out a
//! required one.

pub(super) const TOP_KEYS: &[&str] = &["version", "cluster", "defaults", "hosts"];
pub(super) const SECTION_KEYS: &[&str] = &[
    "os",
    "install",
    "ntp_servers",
    "dns",
    "cloudstack",
    "cpu",
    "network",
    "security",
];
pub(super) const HOST_ONLY_KEYS: &[&str] = &["fqdn", "mac", "ip"];
pub(super) const INSTALL_KEYS: &[&str] = &[
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
pub(super) const DNS_KEYS: &[&str] = &["servers", "search"];
pub(super) const CLOUDSTACK_KEYS: &[&str] = &[
    "version",
    "repository",
    "management_server",
    "suite",
    "key",
    "unauthenticated",
];
pub(super) const CPU_KEYS: &[&str] = &["mode", "model", "features"];
pub(super) const NETWORK_KEYS: &[&str] = &[
    "type",
    "trunk_nic",
    "trunk_bridge",
    "management",
    "public",
    "private",
];
pub(super) const MANAGEMENT_KEYS: &[&str] = &["vlan", "prefix", "gateway", "bridge"];
pub(super) const VLAN_BRIDGE_KEYS: &[&str] = &["vlan", "bridge"];
pub(super) const SECURITY_KEYS: &[&str] = &["selinux", "firewall_sources"];
pub(super) const REPO_KEYS: &[&str] = &["name", "url"];

/// The most bytes `install.kernel_args` may take of a kernel command line (each
/// argument and a space).
pub const MAX_KERNEL_ARGS_BYTES: usize = 1024;

/// NTP servers used when `ntp_servers` is absent.
pub const DEFAULT_NTP: &[&str] = &["0.pool.ntp.org", "1.pool.ntp.org"];

/// The keys a mapping of `defaults` may hold, by key path (`None`: not a mapping).
pub(super) fn allowed_keys(rel: &str) -> Option<&'static [&'static str]> {
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

/// The closest of `candidates` to `word`, if it is close enough to be a likely typo.
pub(super) fn suggest<'c>(word: &str, candidates: &[&'c str]) -> Option<&'c str> {
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

pub(super) fn unknown_key_message(name: &str, allowed: &[&str]) -> String {
    let name = super::rules::shown(name);
    match suggest(&name, allowed) {
        Some(s) => format!("unknown key `{name}` (did you mean `{s}`?)"),
        None => format!(
            "unknown key `{name}` (valid keys here: {})",
            allowed.join(", ")
        ),
    }
}

/// What to write when a required key is missing.
pub(super) fn missing_hint(rel: &str) -> &'static str {
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
        "cloudstack.key" => "add the repository's signing key, e.g. `key: https://download.cloudstack.org/release.asc`, or say `unauthenticated: true` to install from it unsigned",
        "install.source" => "a Debian 12 netinst CD holds the base system only: set `source` to a Debian mirror, e.g. `source: http://deb.debian.org/debian`",
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
