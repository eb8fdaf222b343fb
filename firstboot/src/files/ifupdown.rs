//! The network as ifupdown's `/etc/network/interfaces` (Debian and Ubuntu before
//! netplan): hvseed's stanzas in one marked block, Linux bridges through
//! bridge-utils or Open vSwitch through its ifupdown integration.

use crate::edit::Lines;
use crate::plan::{NetworkPlan, NetworkType, Plan, VlanBridge};
use crate::topology::{mgmt_bridge, trunk_bridge};

const BLOCK_BEGIN: &str =
    "# hvseed: begin (written by hvseed-firstboot; this block is replaced on every run)";
const BLOCK_END: &str = "# hvseed: end";

fn is_stanza_start(word: &str) -> bool {
    matches!(
        word,
        "iface" | "auto" | "mapping" | "source" | "source-directory"
    ) || word.starts_with("allow-")
}

/// Every interface name hvseed may declare in /etc/network/interfaces for this plan,
/// with either network type, so that switching types converges too.
fn managed_interfaces(plan: &Plan) -> Vec<String> {
    let n = &plan.network;
    let mut v = vec![
        n.trunk_nic.clone(),
        format!("{}.{}", n.trunk_nic, n.management.vlan),
        format!("{}.{}", n.trunk_nic, n.public.vlan),
        format!("{}.{}", n.trunk_nic, n.private.vlan),
        n.public.bridge.clone(),
        n.private.bridge.clone(),
    ];
    if n.kind == NetworkType::Openvswitch {
        v.push(trunk_bridge(plan).to_string());
        v.push(mgmt_bridge(plan).to_string());
    }
    v
}

/// The public and private networks with their labels, each bridge once (both may be
/// carried to one bridge; the public VLAN's stanza then holds it).
fn guest_bridges(n: &NetworkPlan) -> Vec<(&'static str, &VlanBridge)> {
    let mut v = vec![("Public", &n.public)];
    if n.private.bridge != n.public.bridge {
        v.push(("Private", &n.private));
    }
    v
}

fn interfaces_block(plan: &Plan) -> Vec<String> {
    let n = &plan.network;
    let m = &n.management;
    let nic = &n.trunk_nic;
    let mut b = vec![BLOCK_BEGIN.to_string()];
    let mut push = |lines: &[String]| {
        b.extend(lines.iter().cloned());
        b.push(String::new());
    };
    let addr = {
        let mut a = vec![
            format!("    address {}", m.ip),
            format!("    netmask {}", m.netmask),
            format!("    gateway {}", m.gateway),
        ];
        if !plan.dns.servers.is_empty() {
            let s: Vec<String> = plan.dns.servers.iter().map(|x| x.to_string()).collect();
            a.push(format!("    dns-nameservers {}", s.join(" ")));
        }
        if !plan.dns.search.is_empty() {
            a.push(format!("    dns-search {}", plan.dns.search.join(" ")));
        }
        a
    };
    match n.kind {
        NetworkType::LinuxBridge => {
            push(&[
                format!(
                    "# Trunk NIC: carries VLANs {}, {} and {}",
                    m.vlan, n.public.vlan, n.private.vlan
                ),
                format!("auto {nic}"),
                format!("iface {nic} inet manual"),
            ]);
            let dev = format!("{nic}.{}", m.vlan);
            let mut s = vec![
                format!("# Management network (VLAN {})", m.vlan),
                format!("auto {dev}"),
                format!("iface {dev} inet static"),
            ];
            s.extend(addr);
            push(&s);
            for (label, vb) in guest_bridges(n) {
                push(&[
                    format!("# {label} network (VLAN {})", vb.vlan),
                    format!("auto {}", vb.bridge),
                    format!("iface {} inet manual", vb.bridge),
                    format!("    bridge_ports {nic}.{}", vb.vlan),
                    "    bridge_fd 5".into(),
                    "    bridge_stp off".into(),
                    "    bridge_maxwait 1".into(),
                ]);
            }
        }
        NetworkType::Openvswitch => {
            let trunk = trunk_bridge(plan);
            push(&[
                format!("# Open vSwitch trunk bridge holding {nic}"),
                format!("auto {trunk}"),
                format!("allow-ovs {trunk}"),
                format!("iface {trunk} inet manual"),
                "    ovs_type OVSBridge".into(),
                format!("    ovs_ports {nic}"),
            ]);
            push(&[
                format!("allow-{trunk} {nic}"),
                format!("iface {nic} inet manual"),
                format!("    ovs_bridge {trunk}"),
                "    ovs_type OVSPort".into(),
            ]);
            let mgmt = mgmt_bridge(plan);
            let mut s = vec![
                format!(
                    "# Management network (VLAN {}, fake bridge on {trunk})",
                    m.vlan
                ),
                format!("auto {mgmt}"),
                format!("allow-ovs {mgmt}"),
                format!("iface {mgmt} inet static"),
                "    ovs_type OVSBridge".into(),
                format!("    ovs_options {trunk} {}", m.vlan),
            ];
            s.extend(addr);
            push(&s);
            for (label, vb) in guest_bridges(n) {
                push(&[
                    format!(
                        "# {label} network (VLAN {}, fake bridge on {trunk})",
                        vb.vlan
                    ),
                    format!("auto {}", vb.bridge),
                    format!("allow-ovs {}", vb.bridge),
                    format!("iface {} inet manual", vb.bridge),
                    "    ovs_type OVSBridge".into(),
                    format!("    ovs_options {trunk} {}", vb.vlan),
                ]);
            }
        }
    }
    b.pop();
    b.push(BLOCK_END.to_string());
    b
}

/// precise `/etc/network/interfaces`: the installer's stanza for the trunk NIC (and
/// its `auto`/`allow-hotplug`) goes, hvseed's block takes its place; `lo` and every
/// other interface stay.
pub fn network_interfaces(old: &str, plan: &Plan) -> String {
    let managed = managed_interfaces(plan);
    let src = Lines::parse(old);
    let mut out: Vec<String> = Vec::new();
    // Where hvseed's block goes: where it was, else where the trunk's stanza was, else
    // where its first `auto`/`allow-` line was, else at the end.
    let mut insert_at: Option<usize> = None;
    let mut iface_at: Option<usize> = None;
    let mut auto_at: Option<usize> = None;
    let mut in_block = false;
    let mut dropping = false;
    for line in &src.lines {
        let t = line.trim();
        if in_block {
            if t == BLOCK_END {
                in_block = false;
            }
            continue;
        }
        if t == BLOCK_BEGIN {
            in_block = true;
            insert_at.get_or_insert(out.len());
            continue;
        }
        let words: Vec<&str> = t.split_whitespace().collect();
        let first = words.first().copied().unwrap_or("");
        if is_stanza_start(first) {
            dropping = false;
            if first == "iface" && words.get(1).is_some_and(|w| managed.iter().any(|m| m == w)) {
                dropping = true;
                iface_at.get_or_insert(out.len());
                continue;
            }
            if first == "auto" || first.starts_with("allow-") {
                let kept: Vec<&str> = words[1..]
                    .iter()
                    .copied()
                    .filter(|w| !managed.iter().any(|m| m == w))
                    .collect();
                if kept.len() + 1 != words.len() {
                    auto_at.get_or_insert(out.len());
                    if !kept.is_empty() {
                        out.push(format!("{first} {}", kept.join(" ")));
                    }
                    continue;
                }
            }
            out.push(line.clone());
            continue;
        }
        if dropping && !t.is_empty() && !t.starts_with('#') {
            continue;
        }
        out.push(line.clone());
    }
    let block = interfaces_block(plan);
    match insert_at.or(iface_at).or(auto_at) {
        Some(i) => {
            out.splice(i..i, block);
        }
        None => {
            if out.last().is_some_and(|x| !x.trim().is_empty()) {
                out.push(String::new());
            }
            out.extend(block);
        }
    }
    Lines { lines: out }.text()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::test_plan as plan;

    #[test]
    fn interfaces_takes_the_trunk_off_shared_auto_and_hotplug_lines() {
        let old = "auto lo eth0\niface lo inet loopback\n\nallow-hotplug eth0 eth1\n\
                   iface eth0 inet dhcp\n  hostname foo\niface eth0 inet6 auto\n\n\
                   iface eth1 inet dhcp\n";
        let new = network_interfaces(old, &plan());
        assert!(
            new.starts_with("auto lo\niface lo inet loopback\n"),
            "{new}"
        );
        assert!(new.contains("\nallow-hotplug eth1\n"), "{new}");
        assert!(
            !new.contains("dhcp\n  hostname") && !new.contains("inet6 auto"),
            "{new}"
        );
        assert!(new.contains("iface eth1 inet dhcp"), "{new}");
        assert_eq!(network_interfaces(&new, &plan()), new, "idempotent");
    }
}
