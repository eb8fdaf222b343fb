//! The network as netplan v2 YAML (Ubuntu ≥ 22.04): hvseed's own file in
//! `/etc/netplan` (root's, mode 0600: netplan warns about a file others may read, and
//! it may hold secrets), and cloud-init's network rendering turned off.
//!
//! Linux bridges follow the CloudStack guide's layout: the trunk NIC (matched by its
//! MAC and named by `set-name`, so CloudStack finds the name the plan gives it) without
//! an address, the management VLAN with it, and each bridge (`stp` off, `forward-delay`
//! 5 as the guide's files say) with its VLAN as its port. Open vSwitch uses netplan's
//! `openvswitch:` backend: the trunk bridge holds the NIC, and each of the management,
//! public and private networks is a VLAN linked to it, which netplan makes a fake
//! bridge (`ovs-vsctl add-br NAME TRUNK VLAN`), what the guide's `ovs-vsctl` recipe
//! makes.
//!
//! Only keys that netplan 0.106 (jammy, and Debian 12's, which the tests run) and 1.0 /
//! 1.1 (noble) all accept: `renderer`, `match.macaddress`, `set-name`, `dhcp4`,
//! `dhcp6`, `optional`, `vlans.{id,link}`, `bridges.{interfaces,parameters.{stp,
//! forward-delay}}`, `openvswitch: {}`, `addresses`, `routes: [{to: default, via}]`
//! (not `gateway4`, deprecated in 1.0) and `nameservers`. Every string is written
//! double-quoted (JSON syntax), so YAML never reads a MAC or a name as a number.

use crate::plan::{NetworkType, Plan, VlanBridge};
use crate::topology::{mgmt_bridge, trunk_bridge};

/// hvseed's netplan file: read after the installer's `00-`/`50-` files (which `apply`
/// moves aside anyway).
pub const HVSEED_YAML: &str = "/etc/netplan/60-hvseed.yaml";

/// The installer's file when subiquity writes netplan itself (22.04's cloud-init, up to
/// 23.4): the network of the install, with cloud-init's network already disabled by
/// `subiquity-disable-cloudinit-networking.cfg`.
pub const INSTALLER_YAML: &str = "/etc/netplan/00-installer-config.yaml";

/// What cloud-init renders at the first boot from `90-installer-network.cfg` (subiquity
/// with a cloud-init whose netplan root is read-only: 24.04, and later 22.04 media).
pub const CLOUD_INIT_YAML: &str = "/etc/netplan/50-cloud-init.yaml";

/// Where subiquity leaves the install's network for cloud-init in that layout.
pub const INSTALLER_CLOUD_CFG: &str = "/etc/cloud/cloud.cfg.d/90-installer-network.cfg";

/// hvseed's cloud-init drop-in: read last (`cloud.cfg.d` is read in lexical order), it
/// keeps cloud-init from rendering `50-cloud-init.yaml` (DHCP on the trunk NIC, or the
/// installer's network) beside hvseed's file.
pub const CLOUD_INIT_DISABLE: &str = "/etc/cloud/cloud.cfg.d/99-hvseed-network.cfg";

/// The first line of every netplan file hvseed writes.
pub const MARKER: &str =
    "# Written by hvseed-firstboot for this CloudStack KVM host; `apply` rewrites it.\n";

/// The cloud-init drop-in's text (the whole file is hvseed's).
pub fn cloud_init_disable(_old: &str) -> String {
    format!(
        "# Written by hvseed-firstboot: the host's network is {HVSEED_YAML}; cloud-init\n\
         # must not render its own network configuration beside it.\n\
         network: {{config: disabled}}\n"
    )
}

/// A YAML double-quoted scalar (JSON string syntax is YAML's double-quoted style).
fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn list<S: AsRef<str>>(items: &[S]) -> String {
    let v: Vec<String> = items.iter().map(|s| q(s.as_ref())).collect();
    format!("[{}]", v.join(", "))
}

/// The guest bridges of the plan (public, and private when it is another bridge).
fn guest_bridges(plan: &Plan) -> Vec<(&'static str, &VlanBridge)> {
    let n = &plan.network;
    let mut v = vec![("Public", &n.public)];
    if n.private.bridge != n.public.bridge {
        v.push(("Private", &n.private));
    }
    v
}

/// The management address, default route and DNS, at `indent`.
fn mgmt_ip(plan: &Plan, indent: &str) -> Vec<String> {
    let m = &plan.network.management;
    let mut v = vec![
        format!(
            "{indent}addresses: [{}]",
            q(&format!("{}/{}", m.ip, m.prefix))
        ),
        format!("{indent}routes:"),
        format!("{indent}  - to: \"default\""),
        format!("{indent}    via: {}", q(&m.gateway.to_string())),
    ];
    if !plan.dns.servers.is_empty() || !plan.dns.search.is_empty() {
        v.push(format!("{indent}nameservers:"));
        if !plan.dns.servers.is_empty() {
            let s: Vec<String> = plan.dns.servers.iter().map(|a| a.to_string()).collect();
            v.push(format!("{indent}  addresses: {}", list(&s)));
        }
        if !plan.dns.search.is_empty() {
            v.push(format!("{indent}  search: {}", list(&plan.dns.search)));
        }
    }
    v
}

/// No address of its own and not waited for at boot (`optional`: systemd-networkd-wait-
/// online would wait for a link without an address until its timeout).
fn no_ip(indent: &str) -> Vec<String> {
    vec![
        format!("{indent}dhcp4: false"),
        format!("{indent}dhcp6: false"),
        format!("{indent}optional: true"),
    ]
}

/// The netplan devices the plan makes on the host, besides the trunk NIC: what
/// `netplan apply` creates and what a network raised from the file at boot has.
pub fn planned_devices(plan: &Plan) -> Vec<String> {
    let n = &plan.network;
    let nic = &n.trunk_nic;
    let mut v = Vec::new();
    match n.kind {
        NetworkType::LinuxBridge => {
            v.push(format!("{nic}.{}", n.management.vlan));
            for (_, vb) in guest_bridges(plan) {
                v.push(format!("{nic}.{}", vb.vlan));
                v.push(vb.bridge.clone());
            }
        }
        NetworkType::Openvswitch => {
            v.push(trunk_bridge(plan).to_string());
            v.push(mgmt_bridge(plan).to_string());
            for (_, vb) in guest_bridges(plan) {
                v.push(vb.bridge.clone());
            }
        }
    }
    v
}

/// `/etc/netplan/60-hvseed.yaml` (the whole file is hvseed's).
pub fn netplan_yaml(plan: &Plan) -> String {
    let n = &plan.network;
    let m = &n.management;
    let nic = &n.trunk_nic;
    let mut y = vec![
        MARKER.trim_end().to_string(),
        format!(
            "# The installer's netplan file, if any, is kept beside it as *{}.",
            crate::apply::backup_path("").trim_start_matches('/')
        ),
        "network:".to_string(),
        "  version: 2".to_string(),
        "  renderer: \"networkd\"".to_string(),
        "  ethernets:".to_string(),
        format!(
            "    # Trunk NIC: carries VLANs {}, {} and {}",
            m.vlan, n.public.vlan, n.private.vlan
        ),
        format!("    {}:", q(nic)),
        "      match:".to_string(),
        format!("        macaddress: {}", q(&n.mac.to_ascii_lowercase())),
        format!("      set-name: {}", q(nic)),
    ];
    y.extend(no_ip("      "));
    match n.kind {
        NetworkType::LinuxBridge => {
            y.push("  vlans:".into());
            y.push(format!("    # Management network (VLAN {})", m.vlan));
            y.push(format!("    {}:", q(&format!("{nic}.{}", m.vlan))));
            y.push(format!("      id: {}", m.vlan));
            y.push(format!("      link: {}", q(nic)));
            y.extend(mgmt_ip(plan, "      "));
            for (label, vb) in guest_bridges(plan) {
                y.push(format!(
                    "    # {label} network (VLAN {}), port of {}",
                    vb.vlan, vb.bridge
                ));
                y.push(format!("    {}:", q(&format!("{nic}.{}", vb.vlan))));
                y.push(format!("      id: {}", vb.vlan));
                y.push(format!("      link: {}", q(nic)));
                y.extend(no_ip("      "));
            }
            y.push("  bridges:".into());
            for (label, vb) in guest_bridges(plan) {
                y.push(format!("    # {label} network (VLAN {})", vb.vlan));
                y.push(format!("    {}:", q(&vb.bridge)));
                y.push(format!(
                    "      interfaces: [{}]",
                    q(&format!("{nic}.{}", vb.vlan))
                ));
                y.push("      parameters:".into());
                y.push("        stp: false".into());
                y.push("        forward-delay: 5".into());
                y.extend(no_ip("      "));
            }
        }
        NetworkType::Openvswitch => {
            let trunk = trunk_bridge(plan);
            y.push("  bridges:".into());
            y.push(format!("    # Open vSwitch trunk bridge holding {nic}"));
            y.push(format!("    {}:", q(trunk)));
            y.push(format!("      interfaces: [{}]", q(nic)));
            y.push("      openvswitch: {}".into());
            y.extend(no_ip("      "));
            y.push("  vlans:".into());
            y.push(format!(
                "    # Management network (VLAN {}, fake bridge on {trunk})",
                m.vlan
            ));
            y.push(format!("    {}:", q(mgmt_bridge(plan))));
            y.push(format!("      id: {}", m.vlan));
            y.push(format!("      link: {}", q(trunk)));
            y.extend(mgmt_ip(plan, "      "));
            for (label, vb) in guest_bridges(plan) {
                y.push(format!(
                    "    # {label} network (VLAN {}, fake bridge on {trunk})",
                    vb.vlan
                ));
                y.push(format!("    {}:", q(&vb.bridge)));
                y.push(format!("      id: {}", vb.vlan));
                y.push(format!("      link: {}", q(trunk)));
                y.extend(no_ip("      "));
            }
        }
    }
    let mut text = y.join("\n");
    text.push('\n');
    text
}

/// The netplan document of a cloud-init configuration file that holds only the
/// `network:` key (subiquity's `90-installer-network.cfg`: a comment and
/// `yaml.dump({'network': …})`), which netplan reads as it is: the file cloud-init
/// renders from it at boot. None when the file has other top-level keys.
pub fn netplan_of_cloud_cfg(cfg: &str) -> Option<String> {
    let mut network = false;
    for line in cfg.lines() {
        let t = line.trim_end();
        if t.is_empty() || t.starts_with('#') || t.starts_with(' ') || t.starts_with('\t') {
            continue;
        }
        if t == "network:" && !network {
            network = true;
        } else {
            return None;
        }
    }
    network.then(|| cfg.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cloud_cfg_with_only_network_is_a_netplan_file() {
        let cfg = "# This is the network config written by 'subiquity'\nnetwork:\n  ethernets:\n    eth0:\n      dhcp4: true\n  version: 2\n";
        assert_eq!(netplan_of_cloud_cfg(cfg).as_deref(), Some(cfg));
        assert_eq!(
            netplan_of_cloud_cfg("network:\n  version: 2\nruncmd: []\n"),
            None
        );
        assert_eq!(netplan_of_cloud_cfg("# nothing\n"), None);
    }
}
