//! Inventory → per-host kickstart / preseed / plan and the whole-cluster ("fleet")
//! install file (minijinja templates from profiles/, strict undefined).
//!
//! Every template sees inventory values only through the quoting filters of
//! [`filters`]; the Rust side computes what differs between hosts so that the fleet
//! file carries the shared settings once and only the differences per host.

mod autoinstall;
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
use crate::inventory::{AptTrust, Host, InstallSource, Inventory};
use crate::target::Format;

pub use filters::{debconf, heredoc, ksarg, kspackage, shell, yaml};
pub use templates::template_names;

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
/// Per host: `hosts/<fqdn>/<install file>` (the target's `ks.cfg`, `preseed.cfg`, ...),
/// `hosts/<fqdn>/plan.json` and `hosts/<fqdn>/authorized_keys` (the
/// host's `ssh_authorized_keys`, possibly empty: the fleet files fetch it from the
/// media). For the cluster: `fleet/<install file>`.
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
    let target = crate::target::of(inventory.os);
    let env = templates::environment(target, opts.templates.as_deref())?;
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
    match target.install.format {
        Format::Kickstart => kickstart::render(&env, inventory, &media, &mut tree, fleet)?,
        Format::Preseed => preseed::render(&env, inventory, &media, &mut tree, fleet)?,
        Format::Autoinstall => autoinstall::render(&env, inventory, &media, &mut tree, fleet)?,
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
    /// `permissive`, `disabled`, or none (targets without SELinux).
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
    /// The repository's apt suite (targets that take it from the inventory), else none.
    suite: Option<String>,
    /// What d-i's `apt-setup/local0/key` fetches: the key's URL, or the inline key as
    /// a `base64://` URL (d-i's fetch-url decodes it); none when unauthenticated.
    key: Option<String>,
    /// `unauthenticated: true`.
    unauthenticated: bool,
    /// The inline ASCII-armoured key as the inventory has it (autoinstall's apt
    /// sources take the key itself), else none.
    key_text: Option<String>,
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
                suite: h.cloudstack.apt.as_ref().map(|a| a.suite.to_string()),
                key: h.cloudstack.apt.as_ref().and_then(|a| match &a.trust {
                    AptTrust::KeyUrl(u) => Some(u.to_string()),
                    AptTrust::KeyInline(k) => {
                        Some(format!("base64://{}", base64(k.trim().as_bytes())))
                    }
                    AptTrust::Unauthenticated => None,
                }),
                key_text: h.cloudstack.apt.as_ref().and_then(|a| match &a.trust {
                    AptTrust::KeyInline(k) => Some(format!("{}\n", k.trim())),
                    _ => None,
                }),
                unauthenticated: h
                    .cloudstack
                    .apt
                    .as_ref()
                    .is_some_and(|a| a.trust == AptTrust::Unauthenticated),
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

/// Standard base64 (RFC 4648, with padding), as busybox `base64 -d` reads it.
fn base64(data: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
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
    fn base64_matches_rfc_4648() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
        assert_eq!(base64(&[0xfb, 0xff]), "+/8=");
    }

    #[test]
    fn mirror_urls_split_for_d_i() {
        let m = split_mirror("http://mirror.example.org:8080/ubuntu/");
        assert_eq!(m.hostname, "mirror.example.org:8080");
        assert_eq!(m.directory, "/ubuntu/");
        assert_eq!(m.protocol, "http");
    }
}
