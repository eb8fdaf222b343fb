//! Inventory → per-host kickstart / preseed / plan and the whole-cluster ("fleet")
//! install file (minijinja templates from profiles/, strict undefined).
//!
//! Every template sees inventory values only through the quoting filters of
//! [`filters`]; the Rust side computes what differs between hosts so that the fleet
//! file carries the shared settings once and only the differences per host.

mod filters;
mod kickstart;
mod output;
mod preseed;
mod templates;

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::http_base::HttpBase;
use crate::inventory::{Host, InstallSource, Inventory, Os};

pub use filters::{debconf, heredoc, ksarg, kspackage, shell};
pub use templates::TEMPLATE_NAMES;

/// Where the installer finds hvseed's files (plans, the first-boot agent) while it
/// installs a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Media {
    /// Under `/hvseed/` on the install CD (what `hvseed iso` writes).
    Cdrom,
    /// Under this base URL, laid out like `hvseed pxe`'s `http/` directory.
    Http { base: HttpBase },
}

#[derive(Debug, Clone)]
pub struct RenderOptions {
    /// Templates that override the built-in ones by file name.
    pub templates: Option<PathBuf>,
    pub media: Media,
}

/// Rendered files by path relative to the output directory (`hosts/<fqdn>/ks.cfg`,
/// `hosts/<fqdn>/plan.json`, `fleet/ks.cfg`, ...).
pub type RenderedTree = BTreeMap<String, Vec<u8>>;

/// Renders every file for every host, in memory.
///
/// Per host: `hosts/<fqdn>/ks.cfg` (centos6) or `hosts/<fqdn>/preseed.cfg`
/// (ubuntu1204), `hosts/<fqdn>/plan.json` and `hosts/<fqdn>/authorized_keys` (the
/// host's `ssh_authorized_keys`, possibly empty: the fleet files fetch it from the
/// media). For the cluster: `fleet/ks.cfg` or `fleet/preseed.cfg`.
pub fn render_tree(inventory: &Inventory, opts: &RenderOptions) -> Result<RenderedTree> {
    render(inventory, opts, true)
}

/// [`render_tree`] without the fleet file: only `hosts/<fqdn>/...`, for media where
/// every host has its own install file (`hvseed pxe`). Hosts are rendered
/// independently of each other, so any subset of them gives the same files.
pub fn render_host_files(inventory: &Inventory, opts: &RenderOptions) -> Result<RenderedTree> {
    render(inventory, opts, false)
}

fn render(inventory: &Inventory, opts: &RenderOptions, fleet: bool) -> Result<RenderedTree> {
    if inventory.hosts.is_empty() {
        bail!(
            "{}: the inventory has no hosts; nothing to render",
            inventory.path.display()
        );
    }
    let media = MediaView::new(&opts.media);
    let env = templates::environment(opts.templates.as_deref())?;
    let mut tree = RenderedTree::new();
    for host in &inventory.hosts {
        let report_url = match &opts.media {
            Media::Http { .. } => Some(format!("{}/report/{}", media.base, host.fqdn)),
            Media::Cdrom => None,
        };
        let plan = host.plan(inventory, report_url);
        tree.insert(
            format!("hosts/{}/plan.json", host.fqdn),
            plan.to_json().into_bytes(),
        );
        tree.insert(
            format!("hosts/{}/authorized_keys", host.fqdn),
            authorized_keys(host).into_bytes(),
        );
    }
    match inventory.os {
        Os::Centos6 => kickstart::render(&env, inventory, &media, &mut tree, fleet)?,
        Os::Ubuntu1204 => preseed::render(&env, inventory, &media, &mut tree, fleet)?,
        // debian12: builder side pending
        Os::Debian12 => anyhow::bail!("os: debian12 has no installer files in this hvseed yet; install with centos6 or ubuntu1204"),
    }
    Ok(tree)
}

/// What `hvseed render` is asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    /// The inventory file.
    pub inventory: PathBuf,
    /// The directory to write (replaced as a whole).
    pub out: PathBuf,
    /// Replace `out` even if it holds files hvseed did not write.
    pub force: bool,
    /// Templates that override the built-in ones by file name.
    pub templates: Option<PathBuf>,
    /// The base URL of [`Media::Http`]; `None`: [`Media::Cdrom`].
    pub http_base: Option<HttpBase>,
}

/// `hvseed render`: load the inventory, render everything in memory, then write it
/// to a temporary directory beside `--out` and move that into place.
pub fn run(c: Options) -> Result<std::process::ExitCode> {
    crate::overlap::Paths::new()
        .input("inventory", Some(&c.inventory))
        .input("--templates", c.templates.as_deref())
        .output("--out", Some(&c.out))
        .check()?;
    let inventory = crate::inventory::load_valid(&c.inventory)?;
    let media = match c.http_base {
        Some(base) => Media::Http { base },
        None => Media::Cdrom,
    };
    let opts = RenderOptions {
        templates: c.templates,
        media,
    };
    let tree = render_tree(&inventory, &opts)
        .with_context(|| format!("rendering {}", c.inventory.display()))?;
    output::write_tree(&c.out, &tree, c.force)?;
    tracing::info!(
        "wrote {} file(s) for {} host(s) to {}",
        tree.len(),
        inventory.hosts.len(),
        c.out.display()
    );
    Ok(std::process::ExitCode::SUCCESS)
}

/// The lines of `/root/.ssh/authorized_keys`, each ending in a newline.
fn authorized_keys(host: &Host) -> String {
    let mut s = String::new();
    for k in host.install.ssh_authorized_keys.iter() {
        s.push_str(k);
        s.push('\n');
    }
    s
}

/// What the templates know about the media (`media.kind` is `cdrom` or `http`).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct MediaView {
    kind: &'static str,
    /// The base URL without a trailing `/` (empty for the CD).
    base: String,
}

impl MediaView {
    fn new(media: &Media) -> MediaView {
        match media {
            Media::Cdrom => MediaView {
                kind: "cdrom",
                base: String::new(),
            },
            Media::Http { base } => MediaView {
                kind: "http",
                base: base.to_string(),
            },
        }
    }
}

/// A host as the templates see it (`host.*`). Names follow the inventory's keys.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct HostView {
    fqdn: String,
    hostname: String,
    domain: String,
    mac: String,
    ip: String,
    prefix: u8,
    netmask: String,
    gateway: String,
    install: InstallView,
    ntp_servers: Vec<String>,
    dns: DnsView,
    cloudstack: CloudStackView,
    network: NetworkView,
    /// `permissive`, `disabled`, or none (ubuntu1204).
    selinux: Option<&'static str>,
}

#[derive(Debug, Clone, Serialize)]
struct InstallView {
    /// `cdrom` or `url`.
    source: &'static str,
    /// The URL when `source` is `url`, else none.
    url: Option<String>,
    /// The URL split for d-i's mirror questions (none for the CD).
    mirror: Option<MirrorView>,
    locale: String,
    keyboard: String,
    timezone: String,
    root_password_hash: String,
    ssh_authorized_keys: Vec<String>,
    disk: String,
    extra_packages: Vec<String>,
    kernel_args: Vec<String>,
    extra_repositories: Vec<RepoView>,
}

#[derive(Debug, Clone, Serialize)]
struct MirrorView {
    protocol: String,
    /// `host` or `host:port`.
    hostname: String,
    /// Path, starting with `/`.
    directory: String,
}

#[derive(Debug, Clone, Serialize)]
struct RepoView {
    name: String,
    url: String,
}

#[derive(Debug, Clone, Serialize)]
struct DnsView {
    servers: Vec<String>,
    search: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
struct CloudStackView {
    version: String,
    repository: String,
    management_server: String,
}

#[derive(Debug, Clone, Serialize)]
struct NetworkView {
    /// `linux-bridge` or `openvswitch`.
    #[serde(rename = "type")]
    kind: &'static str,
    trunk_nic: String,
    management_vlan: u16,
    public_vlan: u16,
    public_bridge: String,
    private_vlan: u16,
    private_bridge: String,
}

impl HostView {
    pub(crate) fn new(h: &Host) -> HostView {
        let (source, url) = match &h.install.source {
            InstallSource::Cdrom => ("cdrom", None),
            InstallSource::Url(u) => ("url", Some(u.to_string())),
        };
        let mirror = url.as_deref().map(split_mirror);
        HostView {
            fqdn: h.fqdn.clone(),
            hostname: h.short_name().to_string(),
            domain: h.domain().to_string(),
            mac: h.mac.clone(),
            ip: h.ip.to_string(),
            prefix: h.network.management.prefix,
            netmask: hvseed_plan::names::netmask(h.network.management.prefix).to_string(),
            gateway: h.network.management.gateway.to_string(),
            install: InstallView {
                source,
                url,
                mirror,
                locale: h.install.locale.to_string(),
                keyboard: h.install.keyboard.to_string(),
                timezone: h.install.timezone.to_string(),
                root_password_hash: h.install.root_password_hash.to_string(),
                ssh_authorized_keys: strings(&h.install.ssh_authorized_keys),
                disk: h.install.disk.to_string(),
                extra_packages: strings(&h.install.extra_packages),
                kernel_args: h
                    .install
                    .kernel_args
                    .iter()
                    .map(|a| a.to_string())
                    .collect(),
                extra_repositories: h
                    .install
                    .extra_repositories
                    .iter()
                    .map(|r| RepoView {
                        name: r.name.to_string(),
                        url: r.url.to_string(),
                    })
                    .collect(),
            },
            ntp_servers: strings(&h.ntp_servers),
            dns: DnsView {
                servers: h.dns.servers.iter().map(|s| s.to_string()).collect(),
                search: strings(&h.dns.search),
            },
            cloudstack: CloudStackView {
                version: h.cloudstack.version.to_string(),
                repository: h.cloudstack.repository.to_string(),
                management_server: h.cloudstack.management_server.to_string(),
            },
            network: NetworkView {
                kind: h.network.kind.as_str(),
                trunk_nic: h.network.trunk_nic.to_string(),
                management_vlan: h.network.management.vlan,
                public_vlan: h.network.public.vlan,
                public_bridge: h.network.public.bridge.to_string(),
                private_vlan: h.network.private.vlan,
                private_bridge: h.network.private.bridge.to_string(),
            },
            selinux: h.security.selinux.map(|s| s.as_str()),
        }
    }
}

fn strings(v: &[crate::inventory::Text]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// `http://host:port/path` → protocol, `host:port`, `/path` (what d-i's
/// `mirror/http/*` questions want).
fn split_mirror(url: &str) -> MirrorView {
    let (protocol, rest) = url.split_once("://").unwrap_or(("http", url));
    let (hostname, directory) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    MirrorView {
        protocol: protocol.to_ascii_lowercase(),
        hostname: hostname.to_string(),
        directory: directory.to_string(),
    }
}

/// Splits per-host blocks of lines into the lines every host shares (in the first
/// host's order) and, per host, the lines only some hosts have. Blank lines are
/// dropped.
pub(crate) fn split_common(per_host: &[String]) -> (Vec<String>, Vec<Vec<String>>) {
    use std::collections::HashMap;
    let sets: Vec<Vec<&str>> = per_host
        .iter()
        .map(|s| s.lines().filter(|l| !l.trim().is_empty()).collect())
        .collect();
    let mut count: HashMap<&str, usize> = HashMap::new();
    for lines in &sets {
        let mut seen = std::collections::HashSet::new();
        for l in lines {
            if seen.insert(*l) {
                *count.entry(l).or_default() += 1;
            }
        }
    }
    let n = sets.len();
    let is_common = |l: &str| count.get(l).copied() == Some(n);
    let mut common = Vec::new();
    let mut seen = std::collections::HashSet::new();
    if let Some(first) = sets.first() {
        for l in first {
            if is_common(l) && seen.insert(*l) {
                common.push(l.to_string());
            }
        }
    }
    let varying = sets
        .iter()
        .map(|lines| {
            lines
                .iter()
                .filter(|l| !is_common(l))
                .map(|l| l.to_string())
                .collect()
        })
        .collect();
    (common, varying)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_common_keeps_shared_lines_once() {
        let (c, v) = split_common(&["a\nb\nx1\n".into(), "a\nx2\nb\n".into()]);
        assert_eq!(c, vec!["a", "b"]);
        assert_eq!(v, vec![vec!["x1".to_string()], vec!["x2".to_string()]]);
    }

    #[test]
    fn mirror_urls_split_for_d_i() {
        let m = split_mirror("http://mirror.example.org:8080/ubuntu/");
        assert_eq!(m.hostname, "mirror.example.org:8080");
        assert_eq!(m.directory, "/ubuntu/");
        assert_eq!(m.protocol, "http");
    }
}
