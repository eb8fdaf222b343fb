//! The network as EL6's network scripts: one `ifcfg-<device>` file per interface in
//! `/etc/sysconfig/network-scripts` (Linux bridges or Open vSwitch through
//! `ifup-ovs`), and the bridge module blacklist Open vSwitch wants.

use crate::edit::{shell_value, Lines, Style};
use crate::plan::{NetworkType, Plan};
use crate::topology::{mgmt_bridge, trunk_bridge};

/// Every key hvseed may write in an ifcfg file; the ones a file should not have are
/// removed, so a file converges whatever it said before (DHCP from the installer, or
/// the other network type).
const IFCFG_OWNED: &[&str] = &[
    "DEVICE",
    "HWADDR",
    "ONBOOT",
    "HOTPLUG",
    "BOOTPROTO",
    "TYPE",
    "VLAN",
    "IPADDR",
    "GATEWAY",
    "NETMASK",
    "PREFIX",
    "BRIDGE",
    "IPV6INIT",
    "IPV6_AUTOCONF",
    "DELAY",
    "STP",
    "DEVICETYPE",
    "OVS_BRIDGE",
    "OVS_OPTIONS",
    "NM_CONTROLLED",
    "DNS1",
    "DNS2",
    "DNS3",
    "DOMAIN",
    "DHCP_HOSTNAME",
    "IPADDR0",
    "PREFIX0",
    "NETMASK0",
    "GATEWAY0",
];

/// One `KEY=value` line of an ifcfg file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub name: &'static str,
    pub value: String,
}

/// An ifcfg file's keys, in the guide's order.
pub type Keys = Vec<Key>;

/// One ifcfg file: the device it configures and its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfcfgFile {
    pub device: String,
    pub keys: Keys,
}

/// An ifcfg file with exactly `keys` among the keys hvseed owns: the others it owns are
/// removed, every other line stays.
pub fn ifcfg(old: &str, keys: &Keys) -> String {
    let mut l = Lines::parse(old);
    for k in IFCFG_OWNED {
        if !keys.iter().any(|key| key.name == *k) {
            l.remove(k);
        }
    }
    for Key { name, value } in keys {
        l.set(Style::Tight, name, &shell_value(value));
    }
    l.text()
}

fn kv(name: &'static str, value: impl Into<String>) -> Key {
    Key {
        name,
        value: value.into(),
    }
}

fn dns_keys(plan: &Plan) -> Keys {
    let mut v = Keys::new();
    for (k, ip) in ["DNS1", "DNS2", "DNS3"].into_iter().zip(&plan.dns.servers) {
        v.push(kv(k, ip.to_string()));
    }
    if !plan.dns.search.is_empty() {
        v.push(kv("DOMAIN", plan.dns.search.join(" ")));
    }
    v
}

/// The ifcfg files of this plan, each device's keys in the guide's order.
pub fn ifcfg_files(plan: &Plan) -> Vec<IfcfgFile> {
    let n = &plan.network;
    let m = &n.management;
    let nic = n.trunk_nic.as_str();
    let hw = n.mac.to_ascii_uppercase();
    let mut files: Vec<IfcfgFile> = Vec::new();
    let has = |files: &[IfcfgFile], dev: &str| files.iter().any(|f| f.device == dev);
    match n.kind {
        NetworkType::LinuxBridge => {
            let eth = |dev: &str| -> Keys {
                vec![
                    kv("DEVICE", dev),
                    kv("HWADDR", hw.as_str()),
                    kv("ONBOOT", "yes"),
                    kv("HOTPLUG", "no"),
                    kv("BOOTPROTO", "none"),
                    kv("TYPE", "Ethernet"),
                ]
            };
            let mut trunk = eth(nic);
            trunk.push(kv("NM_CONTROLLED", "no"));
            files.push(IfcfgFile {
                device: nic.to_string(),
                keys: trunk,
            });
            let dev = format!("{nic}.{}", m.vlan);
            let mut k = eth(&dev);
            k.push(kv("VLAN", "yes"));
            k.push(kv("IPADDR", m.ip.to_string()));
            k.push(kv("GATEWAY", m.gateway.to_string()));
            k.push(kv("NETMASK", m.netmask.to_string()));
            k.extend(dns_keys(plan));
            k.push(kv("NM_CONTROLLED", "no"));
            files.push(IfcfgFile {
                device: dev,
                keys: k,
            });
            for vb in [&n.public, &n.private] {
                let dev = format!("{nic}.{}", vb.vlan);
                if has(&files, &dev) {
                    continue;
                }
                let mut k = eth(&dev);
                k.push(kv("VLAN", "yes"));
                k.push(kv("BRIDGE", vb.bridge.as_str()));
                k.push(kv("NM_CONTROLLED", "no"));
                files.push(IfcfgFile {
                    device: dev,
                    keys: k,
                });
            }
            for vb in [&n.public, &n.private] {
                if has(&files, &vb.bridge) {
                    continue;
                }
                files.push(IfcfgFile {
                    device: vb.bridge.clone(),
                    keys: vec![
                        kv("DEVICE", vb.bridge.as_str()),
                        kv("TYPE", "Bridge"),
                        kv("ONBOOT", "yes"),
                        kv("BOOTPROTO", "none"),
                        kv("IPV6INIT", "no"),
                        kv("IPV6_AUTOCONF", "no"),
                        kv("DELAY", "5"),
                        kv("STP", "yes"),
                        kv("NM_CONTROLLED", "no"),
                    ],
                });
            }
        }
        NetworkType::Openvswitch => {
            let trunk = trunk_bridge(plan);
            files.push(IfcfgFile {
                device: nic.to_string(),
                keys: vec![
                    kv("DEVICE", nic),
                    kv("HWADDR", hw.as_str()),
                    kv("ONBOOT", "yes"),
                    kv("HOTPLUG", "no"),
                    kv("BOOTPROTO", "none"),
                    kv("TYPE", "OVSPort"),
                    kv("DEVICETYPE", "ovs"),
                    kv("OVS_BRIDGE", trunk),
                    kv("NM_CONTROLLED", "no"),
                ],
            });
            let ovs_bridge = |dev: &str, proto: &str| -> Keys {
                vec![
                    kv("DEVICE", dev),
                    kv("ONBOOT", "yes"),
                    kv("HOTPLUG", "no"),
                    kv("BOOTPROTO", proto),
                    kv("DEVICETYPE", "ovs"),
                    kv("TYPE", "OVSBridge"),
                ]
            };
            let mut k = ovs_bridge(trunk, "none");
            k.push(kv("NM_CONTROLLED", "no"));
            files.push(IfcfgFile {
                device: trunk.to_string(),
                keys: k,
            });
            let mgmt = mgmt_bridge(plan);
            let mut k = ovs_bridge(mgmt, "static");
            k.push(kv("IPADDR", m.ip.to_string()));
            k.push(kv("GATEWAY", m.gateway.to_string()));
            k.push(kv("NETMASK", m.netmask.to_string()));
            // A fake bridge on the trunk bridge, tagged with the VLAN: what
            // `ovs-vsctl add-br mgmt0 cloudbr 100` does, done by ifup-ovs at boot.
            k.push(kv("OVS_OPTIONS", format!("{trunk} {}", m.vlan)));
            k.extend(dns_keys(plan));
            k.push(kv("NM_CONTROLLED", "no"));
            files.push(IfcfgFile {
                device: mgmt.to_string(),
                keys: k,
            });
            for vb in [&n.public, &n.private] {
                if has(&files, &vb.bridge) {
                    continue;
                }
                let mut k = ovs_bridge(&vb.bridge, "none");
                k.push(kv("OVS_OPTIONS", format!("{trunk} {}", vb.vlan)));
                k.push(kv("NM_CONTROLLED", "no"));
                files.push(IfcfgFile {
                    device: vb.bridge.clone(),
                    keys: k,
                });
            }
        }
    }
    files
}

/// Where the ifcfg file of `dev` is.
pub fn ifcfg_path(dev: &str) -> String {
    format!("/etc/sysconfig/network-scripts/ifcfg-{dev}")
}

/// el6 Open vSwitch: the kernel's own bridge module must stay out of the way.
pub const MODPROBE_BLACKLIST: &str = "/etc/modprobe.d/hvseed-bridge.conf";

pub fn modprobe_blacklist(_old: &str) -> String {
    "# Written by hvseed-firstboot: Open vSwitch carries this host's bridges, and the\n\
     # CloudStack guide asks for the Linux bridge module to be blacklisted.\n\
     blacklist bridge\n"
        .to_string()
}

/// el6 ifcfg files hvseed writes for the other network type (or other VLANs of the
/// same trunk) that this plan does not use: left over, they would bring up a second
/// copy of the management address.
pub fn stale_network_paths(plan: &Plan) -> Vec<String> {
    let n = &plan.network;
    let wanted: Vec<String> = ifcfg_files(plan).into_iter().map(|f| f.device).collect();
    let mut candidates = vec![
        format!("{}.{}", n.trunk_nic, n.management.vlan),
        format!("{}.{}", n.trunk_nic, n.public.vlan),
        format!("{}.{}", n.trunk_nic, n.private.vlan),
        trunk_bridge(plan).to_string(),
        mgmt_bridge(plan).to_string(),
    ];
    candidates.dedup();
    candidates
        .into_iter()
        .filter(|d| !wanted.contains(d))
        .map(|d| ifcfg_path(&d))
        .collect()
}
