//! The plan: everything the first-boot agent needs to know about one host.
//!
//! The builder (`hvseed render`) writes one `plan.json` per host from the validated
//! inventory; the agent reads it on the installed system. This file is the contract
//! between the two: it is versioned by [`PLAN_SCHEMA`], and the agent refuses a plan
//! whose schema it does not know rather than guessing.
//!
//! Every value in a plan has already been validated by the builder, but the agent
//! re-checks what it writes into files (see [`Plan::validate`]), because a plan can
//! also be written by hand.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

/// The plan schema this build reads and writes.
pub const PLAN_SCHEMA: u32 = 1;

/// Ports that must be open on a CloudStack KVM host (hvseed policy 6: the union of
/// the install guide and `cloudstack-setup-agent`). Ranges are `first:last`. The seed
/// targets (centos6, ubuntu1204) open these; see [`Os::cloudstack_tcp_ports`].
pub const CLOUDSTACK_TCP_PORTS: [&str; 5] = ["22", "1798", "16509", "5900:6100", "49152:49216"];

/// The ports of a target for CloudStack 4.20 and later: [`CLOUDSTACK_TCP_PORTS`] and
/// libvirt's TLS port 16514, which Add Host switches libvirtd to (the 4.20 guide and
/// `cloudstack-setup-agent` open it).
pub const CLOUDSTACK_TCP_PORTS_TLS: [&str; 6] =
    ["22", "1798", "16509", "16514", "5900:6100", "49152:49216"];

/// The port the CloudStack agent connects to on the management server.
pub const CLOUDSTACK_AGENT_PORT: u16 = 8250;

/// The distribution a host is installed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Os {
    #[serde(rename = "centos6")]
    Centos6,
    #[serde(rename = "ubuntu1204")]
    Ubuntu1204,
    #[serde(rename = "debian12")]
    Debian12,
    #[serde(rename = "el9")]
    El9,
    #[serde(rename = "ubuntu2204")]
    Ubuntu2204,
    #[serde(rename = "ubuntu2404")]
    Ubuntu2404,
}

impl Os {
    pub fn as_str(self) -> &'static str {
        match self {
            Os::Centos6 => "centos6",
            Os::Ubuntu1204 => "ubuntu1204",
            Os::Debian12 => "debian12",
            Os::El9 => "el9",
            Os::Ubuntu2204 => "ubuntu2204",
            Os::Ubuntu2404 => "ubuntu2404",
        }
    }

    /// The TCP ports this target's firewall opens (and `verify` checks): the seed
    /// targets keep the seed's list, the newer ones add libvirt's TLS port.
    pub fn cloudstack_tcp_ports(self) -> &'static [&'static str] {
        match self {
            Os::Centos6 | Os::Ubuntu1204 => &CLOUDSTACK_TCP_PORTS,
            Os::Debian12 | Os::El9 | Os::Ubuntu2204 | Os::Ubuntu2404 => &CLOUDSTACK_TCP_PORTS_TLS,
        }
    }
}

impl std::fmt::Display for Os {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How guest traffic is bridged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NetworkType {
    #[serde(rename = "linux-bridge")]
    LinuxBridge,
    #[serde(rename = "openvswitch")]
    Openvswitch,
}

impl NetworkType {
    pub fn as_str(self) -> &'static str {
        match self {
            NetworkType::LinuxBridge => "linux-bridge",
            NetworkType::Openvswitch => "openvswitch",
        }
    }
}

/// `guest.cpu.mode` of agent.properties.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CpuMode {
    #[serde(rename = "custom")]
    Custom,
    #[serde(rename = "host-model")]
    HostModel,
    #[serde(rename = "host-passthrough")]
    HostPassthrough,
}

impl CpuMode {
    pub fn as_str(self) -> &'static str {
        match self {
            CpuMode::Custom => "custom",
            CpuMode::HostModel => "host-model",
            CpuMode::HostPassthrough => "host-passthrough",
        }
    }
}

/// SELinux mode written to `/etc/selinux/config` (centos6 only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SelinuxMode {
    #[serde(rename = "permissive")]
    Permissive,
    #[serde(rename = "disabled")]
    Disabled,
}

impl SelinuxMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SelinuxMode::Permissive => "permissive",
            SelinuxMode::Disabled => "disabled",
        }
    }
}

/// One host's plan: `plan.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Always [`PLAN_SCHEMA`] for plans this build writes.
    pub schema: u32,
    /// The cluster name from the inventory (`[a-z0-9-]`).
    pub cluster: String,
    pub os: Os,
    /// Fully qualified name; `hostname --fqdn` must print it.
    pub fqdn: String,
    /// First label of `fqdn`.
    pub hostname: String,
    /// `fqdn` without its first label.
    pub domain: String,
    pub network: NetworkPlan,
    /// NTP servers that replace the distribution's stock ones.
    pub ntp_servers: Vec<String>,
    pub dns: DnsPlan,
    pub cloudstack: CloudStackPlan,
    pub cpu: CpuPlan,
    pub security: SecurityPlan,
    /// Where `hvseed-firstboot run` POSTs its report (`hvseed serve`'s
    /// `/report/<fqdn>`); `None` keeps the report on the host only.
    #[serde(default)]
    pub report_url: Option<String>,
}

/// The host's network: one trunk NIC carrying three VLANs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkPlan {
    #[serde(rename = "type")]
    pub kind: NetworkType,
    /// The physical NIC carrying the VLANs (e.g. `eth0`).
    pub trunk_nic: String,
    /// The trunk NIC's MAC, lowercase and colon-separated.
    pub mac: String,
    /// Open vSwitch only: the bridge that holds `trunk_nic` (default `cloudbr`).
    #[serde(default)]
    pub trunk_bridge: Option<String>,
    pub management: ManagementPlan,
    pub public: VlanBridge,
    pub private: VlanBridge,
}

/// The management VLAN and this host's address on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManagementPlan {
    pub vlan: u16,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    /// Dotted form of `prefix`, as ifcfg and interfaces(5) want it.
    pub netmask: Ipv4Addr,
    pub gateway: Ipv4Addr,
    /// Open vSwitch only: the fake bridge for management (default `mgmt0`).
    #[serde(default)]
    pub bridge: Option<String>,
}

/// A VLAN carried to a bridge (public: cloudbr0, private: cloudbr1 by convention).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VlanBridge {
    pub vlan: u16,
    pub bridge: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsPlan {
    pub servers: Vec<Ipv4Addr>,
    pub search: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudStackPlan {
    pub version: String,
    /// yum baseurl (centos6) or apt URL (ubuntu1204).
    pub repository: String,
    /// Address or name of the management server (`host=` in agent.properties).
    pub management_server: String,
    /// `port=` in agent.properties: [`CLOUDSTACK_AGENT_PORT`].
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CpuPlan {
    pub mode: CpuMode,
    /// Present iff `mode` is `custom`.
    #[serde(default)]
    pub model: Option<String>,
    /// `guest.cpu.features`, space-separated in agent.properties.
    #[serde(default)]
    pub features: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityPlan {
    /// centos6 only.
    #[serde(default)]
    pub selinux: Option<SelinuxMode>,
    /// IPv4 CIDRs allowed to reach the CloudStack ports; empty means any.
    #[serde(default)]
    pub firewall_sources: Vec<String>,
}

/// Why a plan could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{path}: cannot read the plan: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a valid hvseed plan: {source}")]
    Parse {
        path: String,
        source: serde_json::Error,
    },
    #[error(
        "{path}: plan schema {found} is not supported by this agent (it reads schema {PLAN_SCHEMA}); \
         render the plan with a matching hvseed"
    )]
    Schema { path: String, found: u64 },
    #[error("{path}: {field}: {problem}")]
    Invalid {
        path: String,
        field: &'static str,
        problem: String,
    },
}

impl Plan {
    /// Reads and checks a plan file.
    pub fn load(path: &std::path::Path) -> Result<Plan, PlanError> {
        let shown = path.display().to_string();
        let text = crate::bounded::read_to_string(path, crate::bounded::PLAN_LIMIT, false)
            .map_err(|source| PlanError::Read {
                path: shown.clone(),
                source,
            })?;
        Plan::from_json(&text, &shown)
    }

    /// Parses a plan, checking its schema before anything else so that a plan from a
    /// newer builder is reported as such and not as a confusing field error.
    pub fn from_json(text: &str, path: &str) -> Result<Plan, PlanError> {
        let raw: serde_json::Value =
            serde_json::from_str(text).map_err(|source| PlanError::Parse {
                path: path.to_string(),
                source,
            })?;
        match raw.get("schema").and_then(serde_json::Value::as_u64) {
            Some(s) if s == u64::from(PLAN_SCHEMA) => {}
            Some(found) => {
                return Err(PlanError::Schema {
                    path: path.to_string(),
                    found,
                })
            }
            None => {
                return Err(PlanError::Invalid {
                    path: path.to_string(),
                    field: "schema",
                    problem: "missing or not a number".into(),
                })
            }
        }
        let plan: Plan = serde_json::from_value(raw).map_err(|source| PlanError::Parse {
            path: path.to_string(),
            source,
        })?;
        plan.validate(path)?;
        Ok(plan)
    }

    /// The plan as pretty JSON with a trailing newline (what `plan.json` holds).
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("a plan always serializes");
        s.push('\n');
        s
    }

    /// Re-checks the values that end up in configuration files and shell commands.
    pub fn validate(&self, path: &str) -> Result<(), PlanError> {
        let bad = |field: &'static str, problem: String| PlanError::Invalid {
            path: path.to_string(),
            field,
            problem,
        };
        if !crate::names::is_fqdn(&self.fqdn) {
            return Err(bad(
                "fqdn",
                format!("{:?} is not a fully qualified name", self.fqdn),
            ));
        }
        if self.fqdn.split_once('.') != Some((self.hostname.as_str(), self.domain.as_str())) {
            return Err(bad(
                "hostname",
                "hostname and domain must split fqdn at its first dot".into(),
            ));
        }
        let n = &self.network;
        for (field, name) in [
            ("network.trunk_nic", Some(&n.trunk_nic)),
            ("network.trunk_bridge", n.trunk_bridge.as_ref()),
            ("network.management.bridge", n.management.bridge.as_ref()),
            ("network.public.bridge", Some(&n.public.bridge)),
            ("network.private.bridge", Some(&n.private.bridge)),
        ] {
            if let Some(name) = name {
                if !crate::names::is_interface_name(name) {
                    return Err(bad(
                        field,
                        format!("{name:?} is not a valid interface name"),
                    ));
                }
            }
        }
        if !crate::names::is_mac(&n.mac) {
            return Err(bad(
                "network.mac",
                format!("{:?} is not a lowercase colon-separated MAC", n.mac),
            ));
        }
        for (field, vlan) in [
            ("network.management.vlan", n.management.vlan),
            ("network.public.vlan", n.public.vlan),
            ("network.private.vlan", n.private.vlan),
        ] {
            if !(1..=4094).contains(&vlan) {
                return Err(bad(field, format!("VLAN {vlan} is outside 1-4094")));
            }
        }
        if n.management.prefix > 32
            || crate::names::netmask(n.management.prefix) != n.management.netmask
        {
            return Err(bad(
                "network.management.netmask",
                "netmask does not match prefix".into(),
            ));
        }
        for s in &self.ntp_servers {
            if !crate::names::is_host(s) {
                return Err(bad(
                    "ntp_servers",
                    format!("{s:?} is not a host name or address"),
                ));
            }
        }
        for s in &self.dns.search {
            if !crate::names::is_domain(s) {
                return Err(bad("dns.search", format!("{s:?} is not a domain name")));
            }
        }
        if !crate::names::is_host(&self.cloudstack.management_server) {
            return Err(bad(
                "cloudstack.management_server",
                format!(
                    "{:?} is not a host name or address",
                    self.cloudstack.management_server
                ),
            ));
        }
        match (&self.cpu.mode, &self.cpu.model) {
            (CpuMode::Custom, None) => {
                return Err(bad("cpu.model", "required when cpu.mode is custom".into()))
            }
            (CpuMode::Custom, Some(_)) | (_, None) => {}
            (_, Some(_)) => {
                return Err(bad(
                    "cpu.model",
                    "only allowed when cpu.mode is custom".into(),
                ))
            }
        }
        let words = self.cpu.model.iter().chain(self.cpu.features.iter());
        for w in words {
            if !crate::names::is_cpu_word(w) {
                return Err(bad(
                    "cpu",
                    format!("{w:?} is not a CPU model or feature name"),
                ));
            }
        }
        for c in &self.security.firewall_sources {
            if crate::names::parse_cidr(c).is_none() {
                return Err(bad(
                    "security.firewall_sources",
                    format!("{c:?} is not an IPv4 CIDR"),
                ));
            }
        }
        Ok(())
    }
}
