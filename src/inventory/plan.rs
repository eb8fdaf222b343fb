//! Host → plan: what the builder tells the first-boot agent about one host.

use hvseed_firstboot::names::netmask;
use hvseed_firstboot::plan::{
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
                trunk_nic: n.trunk_nic.clone(),
                mac: self.mac.clone(),
                trunk_bridge: n.trunk_bridge.clone(),
                management: ManagementPlan {
                    vlan: n.management.vlan,
                    ip: self.ip,
                    prefix: n.management.prefix,
                    netmask: netmask(n.management.prefix),
                    gateway: n.management.gateway,
                    bridge: n.management.bridge.clone(),
                },
                public: PlanVlanBridge {
                    vlan: n.public.vlan,
                    bridge: n.public.bridge.clone(),
                },
                private: PlanVlanBridge {
                    vlan: n.private.vlan,
                    bridge: n.private.bridge.clone(),
                },
            },
            ntp_servers: self.ntp_servers.clone(),
            dns: DnsPlan {
                servers: self.dns.servers.clone(),
                search: self.dns.search.clone(),
            },
            cloudstack: CloudStackPlan {
                version: self.cloudstack.version.clone(),
                repository: self.cloudstack.repository.clone(),
                management_server: self.cloudstack.management_server.clone(),
                port: CLOUDSTACK_AGENT_PORT,
            },
            cpu: CpuPlan {
                mode: self.cpu.mode,
                model: self.cpu.model.clone(),
                features: self.cpu.features.clone(),
            },
            security: SecurityPlan {
                selinux: self.security.selinux,
                firewall_sources: self.security.firewall_sources.clone(),
            },
            report_url,
        }
    }
}
