//! The validated inventory: every host fully resolved (defaults deep-merged into it),
//! every value checked. Code past `inventory::load` may rely on these invariants:
//! names are valid for the place they go, MACs are normalised, the host's address
//! lies in its management subnet, and `cpu.model` is set iff `cpu.mode` is custom.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;

pub use hvseed_plan::plan::{CpuMode, NetworkType, Os, SelinuxMode};

/// A text value of the inventory. Values that come from `defaults` are shared by every
/// host that inherits them (one allocation, however many hosts), so memory stays
/// linear in the file's size.
pub type Text = Arc<str>;

/// A list value of the inventory, shared like [`Text`].
pub type List<T> = Arc<[T]>;

/// A whole cluster, as `hvseed check` accepted it.
#[derive(Debug, Clone, PartialEq)]
pub struct Inventory {
    /// The file it was read from (for messages).
    pub path: PathBuf,
    /// `version:` (always 1 today).
    pub version: u32,
    /// `cluster:`, `[a-z0-9-]`.
    pub cluster: String,
    /// The single OS of the cluster (every host has it).
    pub os: Os,
    /// The hosts in file order, each fully resolved.
    pub hosts: Vec<Host>,
}

impl Inventory {
    /// The host `--host FQDN` names, or an error that lists the hosts there are.
    pub fn host_named(&self, fqdn: &str) -> anyhow::Result<&Host> {
        self.hosts.iter().find(|h| h.fqdn == fqdn).ok_or_else(|| {
            anyhow::anyhow!(
                "--host {fqdn} is not in {} (its hosts: {})",
                self.path.display(),
                self.hosts
                    .iter()
                    .map(|h| h.fqdn.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
    }
}

/// One host with the defaults merged in.
/// `Hash` feeds `hvseed pxe`'s per-host key (what the host's files depend on).
#[derive(Debug, Clone, PartialEq, Hash)]
pub struct Host {
    pub fqdn: String,
    /// Lowercase, colon-separated.
    pub mac: String,
    /// Management address.
    pub ip: Ipv4Addr,
    pub os: Os,
    pub install: Install,
    pub ntp_servers: List<Text>,
    pub dns: Dns,
    pub cloudstack: CloudStack,
    pub cpu: Cpu,
    pub network: Network,
    pub security: Security,
}

impl Host {
    /// The first label of the FQDN.
    pub fn short_name(&self) -> &str {
        self.fqdn.split('.').next().unwrap_or(&self.fqdn)
    }

    /// The FQDN without its first label.
    pub fn domain(&self) -> &str {
        self.fqdn.split_once('.').map(|(_, d)| d).unwrap_or("")
    }
}

/// Where the installer takes its packages from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum InstallSource {
    /// The install CD/DVD (or the remastered ISO) itself.
    Cdrom,
    /// An http(s) URL of the distribution tree (centos6) or mirror (ubuntu1204).
    Url(Text),
}

#[derive(Debug, Clone, PartialEq, Hash)]
pub struct Install {
    pub source: InstallSource,
    /// e.g. `en_US.UTF-8`.
    pub locale: Text,
    /// e.g. `us`.
    pub keyboard: Text,
    /// e.g. `Etc/UTC`.
    pub timezone: Text,
    /// A `$6$` crypt(3) string.
    pub root_password_hash: Text,
    /// Lines for `/root/.ssh/authorized_keys` (free text: quote wherever it lands).
    pub ssh_authorized_keys: List<Text>,
    /// The disk that is wiped and installed to, without `/dev/` (e.g. `sda`).
    pub disk: Text,
    pub extra_packages: List<Text>,
    /// Extra kernel arguments for the installer, each safe unquoted on every kernel
    /// command line and boot menu hvseed writes.
    pub kernel_args: List<KernelArg>,
    /// Extra package repositories (yum baseurl on centos6, apt URL on ubuntu1204).
    pub extra_repositories: List<Repository>,
}

impl Install {
    /// `kernel_args` as the plain strings a boot entry's arguments are built from.
    pub fn kernel_arg_strings(&self) -> Vec<String> {
        self.kernel_args.iter().map(|a| a.to_string()).collect()
    }
}

/// One installer kernel argument as `inventory::load` accepted it (see
/// [`rules::kernel_arg`](super::rules::kernel_arg): letters, digits and `-_.,:=/+@%~`,
/// at most 512 bytes). Only the inventory makes them, so code that writes one into a
/// boot menu or PXE file needs no check of its own.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KernelArg(Text);

impl KernelArg {
    /// Checks `s` with the one kernel-argument rule.
    pub fn new(s: &str) -> Result<KernelArg, String> {
        super::rules::kernel_arg(s)?;
        Ok(KernelArg(s.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for KernelArg {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for KernelArg {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for KernelArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for KernelArg {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for KernelArg {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl From<KernelArg> for String {
    fn from(a: KernelArg) -> String {
        a.0.to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Repository {
    /// `[A-Za-z0-9_-]`: used as a yum repo id / apt list name.
    pub name: Text,
    pub url: Text,
}

#[derive(Debug, Clone, PartialEq, Hash)]
pub struct Dns {
    pub servers: List<Ipv4Addr>,
    pub search: List<Text>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CloudStack {
    pub version: Text,
    pub repository: Text,
    /// IPv4 address or host name.
    pub management_server: Text,
    /// The repository's apt suite and how apt trusts it, for targets that take them
    /// from the inventory (debian12); `None` where the target's templates fix them.
    pub apt: Option<AptRepository>,
}

/// `Hash` by hand: a target without [`CloudStack::apt`] hashes as it did before the
/// field existed, so `hvseed pxe` keeps the files it wrote for such hosts.
impl std::hash::Hash for CloudStack {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.version.hash(state);
        self.repository.hash(state);
        self.management_server.hash(state);
        if let Some(apt) = &self.apt {
            apt.hash(state);
        }
    }
}

/// `cloudstack.suite` and `cloudstack.key` / `cloudstack.unauthenticated`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AptRepository {
    /// The suite of the repository's `deb` line (`jammy`).
    pub suite: Text,
    pub trust: AptTrust,
}

/// How apt is told to trust the CloudStack repository.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AptTrust {
    /// The signing key is fetched from this http(s) URL by the installer.
    KeyUrl(Text),
    /// The signing key itself, an ASCII-armoured OpenPGP public key block.
    KeyInline(Text),
    /// `unauthenticated: true`: the repository is trusted without a signature.
    Unauthenticated,
}

#[derive(Debug, Clone, PartialEq, Hash)]
pub struct Cpu {
    pub mode: CpuMode,
    pub model: Option<Text>,
    pub features: List<Text>,
}

#[derive(Debug, Clone, PartialEq, Hash)]
pub struct Network {
    pub kind: NetworkType,
    pub trunk_nic: Text,
    /// Open vSwitch: the bridge holding `trunk_nic` (default `cloudbr`); `None` for
    /// linux-bridge.
    pub trunk_bridge: Option<Text>,
    pub management: Management,
    pub public: VlanBridge,
    pub private: VlanBridge,
}

#[derive(Debug, Clone, PartialEq, Hash)]
pub struct Management {
    pub vlan: u16,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    /// Open vSwitch: the fake bridge for management (default `mgmt0`); `None` for
    /// linux-bridge.
    pub bridge: Option<Text>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VlanBridge {
    pub vlan: u16,
    pub bridge: Text,
}

#[derive(Debug, Clone, PartialEq, Hash)]
pub struct Security {
    /// `Some` on centos6 (default permissive), `None` on ubuntu1204.
    pub selinux: Option<SelinuxMode>,
    /// IPv4 CIDRs; empty means any source.
    pub firewall_sources: List<Text>,
}
