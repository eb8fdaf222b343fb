//! Host → plan: what the builder tells the first-boot agent about one host.

use hvseed_plan::names::netmask;
use hvseed_plan::plan::{
    CloudStackPlan, CpuPlan, DnsPlan, ManagementPlan, NetworkPlan, Plan, SecurityPlan,
    VlanBridge as PlanVlanBridge, CLOUDSTACK_AGENT_PORT, PLAN_SCHEMA,
};

use super::model::{Host, Inventory};

impl Host {
    /// The plan for this host; `report_url` is where its first-boot report goes, if
    /// anywhere.
    pub fn plan(&self, inventory: &Inventory, report_url: Option<String>) -> Plan {
        let n = &self.network;
        Plan {
            schema: PLAN_SCHEMA,
            cluster: inventory.cluster.clone(),
            os: self.os,
            fqdn: self.fqdn.clone(),
            hostname: self.short_name().to_string(),
            domain: self.domain().to_string(),
            network: NetworkPlan {
                kind: n.kind,
                trunk_nic: n.trunk_nic.to_string(),
                mac: self.mac.clone(),
                trunk_bridge: n.trunk_bridge.as_deref().map(str::to_string),
                management: ManagementPlan {
                    vlan: n.management.vlan,
                    ip: self.ip,
                    prefix: n.management.prefix,
                    netmask: netmask(n.management.prefix),
                    gateway: n.management.gateway,
                    bridge: n.management.bridge.as_deref().map(str::to_string),
                },
                public: PlanVlanBridge {
                    vlan: n.public.vlan,
                    bridge: n.public.bridge.to_string(),
                },
                private: PlanVlanBridge {
                    vlan: n.private.vlan,
                    bridge: n.private.bridge.to_string(),
                },
            },
            ntp_servers: strings(&self.ntp_servers),
            dns: DnsPlan {
                servers: self.dns.servers.to_vec(),
                search: strings(&self.dns.search),
            },
            cloudstack: CloudStackPlan {
                version: self.cloudstack.version.to_string(),
                repository: self.cloudstack.repository.to_string(),
                management_server: self.cloudstack.management_server.to_string(),
                port: CLOUDSTACK_AGENT_PORT,
            },
            cpu: CpuPlan {
                mode: self.cpu.mode,
                model: self.cpu.model.as_deref().map(str::to_string),
                features: strings(&self.cpu.features),
            },
            security: SecurityPlan {
                selinux: self.security.selinux,
                firewall_sources: strings(&self.security.firewall_sources),
            },
            report_url,
        }
    }
}

fn strings(v: &[super::model::Text]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}
