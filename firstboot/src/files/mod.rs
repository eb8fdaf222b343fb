//! What each file hvseed manages must say, per the oracle (hvseed's
//! `cloudstack-kvm-host` facts: the CloudStack install guide, `cloudstack-setup-agent`,
//! and hvseed's policy). Every function here takes the file's current text and returns
//! the new text, changing only the lines hvseed owns. One module per job, named after
//! the file format or tool, not after a target: which target writes which file is said
//! by its family in [`crate::target`].

pub mod agent_properties;
pub mod hosts;
pub mod ifcfg;
pub mod ifupdown;
pub mod iptables;
pub mod job;
pub mod libvirt;
pub mod netplan;
pub mod nm_keyfile;
pub mod security;
pub mod ssh;
pub mod time;
pub mod ufw;

use crate::plan::Plan;

/// One CloudStack port opened to one allowed source (`None` = anywhere).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortSource<'p> {
    pub port: &'static str,
    pub source: Option<&'p str>,
}

/// Each CloudStack port of the plan's target ([`crate::plan::Os::cloudstack_tcp_ports`])
/// × each allowed source, in the order the rules are written.
pub fn port_sources(plan: &Plan) -> Vec<PortSource<'_>> {
    let sources: Vec<Option<&str>> = if plan.security.firewall_sources.is_empty() {
        vec![None]
    } else {
        plan.security
            .firewall_sources
            .iter()
            .map(|s| Some(s.as_str()))
            .collect()
    };
    let mut v = Vec::new();
    for port in plan.os.cloudstack_tcp_ports() {
        for source in &sources {
            v.push(PortSource {
                port,
                source: *source,
            });
        }
    }
    v
}

/// A line with its whitespace runs folded to one space, for comparing rules.
fn norm(line: &str) -> String {
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A precise host with Linux bridges, for the editors' unit tests.
#[cfg(test)]
pub(crate) fn test_plan() -> Plan {
    let text = r#"{"schema":1,"cluster":"c","os":"ubuntu1204","fqdn":"kvm1.example.org",
      "hostname":"kvm1","domain":"example.org","network":{"type":"linux-bridge",
      "trunk_nic":"eth0","mac":"00:04:23:aa:bb:01","management":{"vlan":100,
      "ip":"192.168.42.11","prefix":24,"netmask":"255.255.255.0","gateway":"192.168.42.1"},
      "public":{"vlan":200,"bridge":"cloudbr0"},"private":{"vlan":300,"bridge":"cloudbr1"}},
      "ntp_servers":[],"dns":{"servers":[],"search":[]},"cloudstack":{"version":"4.2",
      "repository":"http://x/","management_server":"192.168.42.5","port":8250},
      "cpu":{"mode":"host-model"},"security":{}}"#;
    Plan::from_json(text, "test").unwrap()
}
