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

/// The planned network raised without ifupdown's hook scripts: what ifup -a builds from
/// hvseed's block (ifupdown 0.8's `manual`/`static` methods and VLAN links, bridge-utils'
/// or Open vSwitch's ifupdown hooks), as `ip -batch` lines and one `ovs-vsctl`
/// transaction, with the interfaces in the order `ifup -a` records them in
/// `/run/network/ifstate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectUp {
    /// `ovs-vsctl` arguments (one transaction), run first; empty with Linux bridges.
    pub ovs: Vec<String>,
    /// `ip -batch` lines, run after `ovs`.
    pub ip: Vec<String>,
    /// The interfaces ifupdown marks up, in its order.
    pub ifaces: Vec<String>,
}

/// Every device of the plan other than the trunk NIC: none may exist yet when the
/// planned network is raised directly (else it is partly up already, from an earlier
/// boot, and ifupdown's own restart handles it).
pub fn planned_devices(plan: &Plan) -> Vec<String> {
    let nic = &plan.network.trunk_nic;
    let mut v: Vec<String> = direct_up(plan)
        .ifaces
        .into_iter()
        .filter(|i| i != nic)
        .collect();
    if plan.network.kind == NetworkType::LinuxBridge {
        for (_, vb) in guest_bridges(&plan.network) {
            v.push(format!("{nic}.{}", vb.vlan));
        }
    }
    v
}

/// What of the host shapes bridge-utils' hook: whether the kernel has IPv6 (the hook
/// sets `addrgenmode none` on each port only then) and whether
/// `/etc/default/bridge-utils` leaves `BRIDGE_DISABLE_LINKLOCAL_IPV6_ALSO_PHYS` on (its
/// default: the VLAN ports' physical device gets `addrgenmode none` too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BridgeHost {
    pub ipv6: bool,
    pub phys_linklocal_off: bool,
}

impl Default for BridgeHost {
    fn default() -> Self {
        BridgeHost {
            ipv6: true,
            phys_linklocal_off: true,
        }
    }
}

impl BridgeHost {
    /// From `/etc/default/bridge-utils` (shell assignments; anything but `no` keeps
    /// the default, as the hook's test `!= "no"` does).
    pub fn from_default_file(text: &str, ipv6: bool) -> BridgeHost {
        let mut phys = true;
        for l in text.lines() {
            if let Some(v) = l
                .trim()
                .strip_prefix("BRIDGE_DISABLE_LINKLOCAL_IPV6_ALSO_PHYS=")
            {
                phys = v.trim().trim_matches(|c| c == '"' || c == '\'') != "no";
            }
        }
        BridgeHost {
            ipv6,
            phys_linklocal_off: phys,
        }
    }
}

pub fn direct_up(plan: &Plan) -> DirectUp {
    direct_up_on(plan, BridgeHost::default())
}

pub fn direct_up_on(plan: &Plan, host: BridgeHost) -> DirectUp {
    let n = &plan.network;
    let m = &n.management;
    let nic = &n.trunk_nic;
    let addr = |dev: &str| {
        [
            format!(
                "addr add {}/{} broadcast + dev {dev} label {dev}",
                m.ip, m.prefix
            ),
            format!("link set dev {dev} up"),
            format!("route add default via {} dev {dev} onlink", m.gateway),
        ]
    };
    let mut ip = Vec::new();
    let mut ovs = Vec::new();
    let mut ifaces = vec![nic.clone()];
    match n.kind {
        NetworkType::LinuxBridge => {
            // `iface NIC inet manual`.
            ip.push(format!("link set dev {nic} up"));
            // `iface NIC.VLAN inet static`: ifupdown's VLAN link, then the address.
            let dev = format!("{nic}.{}", m.vlan);
            ip.push(format!(
                "link add link {nic} name {dev} type vlan id {}",
                m.vlan
            ));
            ip.extend(addr(&dev));
            ifaces.push(dev);
            // bridge-utils (/lib/bridge-utils/ifupdown.sh, 1.7.1): the bridge, its
            // VLAN port created on the NIC (which loses its IPv6 link-local address
            // generation), the port without IPv6 addresses, in the bridge and up, the
            // options, then the bridge up.
            for (_, vb) in guest_bridges(n) {
                let br = &vb.bridge;
                let port = format!("{nic}.{}", vb.vlan);
                ip.push(format!("link add name {br} type bridge"));
                ip.push(format!("link set dev {br} type bridge vlan_filtering 0"));
                if host.ipv6 && host.phys_linklocal_off {
                    ip.push(format!("link set dev {nic} addrgenmode none"));
                }
                ip.push(format!("link set dev {nic} up"));
                ip.push(format!(
                    "link add link {nic} name {port} type vlan id {}",
                    vb.vlan
                ));
                if host.ipv6 {
                    ip.push(format!("link set dev {port} addrgenmode none"));
                }
                ip.push(format!("link set dev {port} master {br}"));
                ip.push(format!("link set dev {port} up"));
                // bridge_stp off, bridge_fd 5 (centiseconds here).
                ip.push(format!(
                    "link set dev {br} type bridge stp_state 0 forward_delay 500"
                ));
                ip.push(format!("link set dev {br} up"));
                ifaces.push(br.clone());
            }
        }
        NetworkType::Openvswitch => {
            let trunk = trunk_bridge(plan);
            let mgmt = mgmt_bridge(plan);
            let mut tx = |words: &[&str]| {
                ovs.push("--".to_string());
                ovs.extend(words.iter().map(|w| w.to_string()));
            };
            let mv = m.vlan.to_string();
            tx(&["--may-exist", "add-br", trunk]);
            tx(&["--may-exist", "add-port", trunk, nic]);
            tx(&["--may-exist", "add-br", mgmt, trunk, &mv]);
            let guests: Vec<(String, String)> = guest_bridges(n)
                .into_iter()
                .map(|(_, vb)| (vb.bridge.clone(), vb.vlan.to_string()))
                .collect();
            for (br, vlan) in &guests {
                tx(&["--may-exist", "add-br", br, trunk, vlan]);
            }
            // ifup -a: the trunk bridge (its port NIC from its pre-up hook), then
            // the fake bridges, each `manual` (link up) or `static`.
            ifaces.insert(0, trunk.to_string());
            ip.push(format!("link set dev {trunk} up"));
            ip.push(format!("link set dev {nic} up"));
            ip.extend(addr(mgmt));
            ifaces.push(mgmt.to_string());
            for (br, _) in guests {
                ip.push(format!("link set dev {br} up"));
                ifaces.push(br);
            }
        }
    }
    DirectUp { ovs, ip, ifaces }
}

/// `/run/network/ifstate` (ifupdown 0.8: one `iface=logical` line per configured
/// interface, in the order they came up) without `iface`.
pub fn ifstate_without(state: &str, iface: &str) -> String {
    let prefix = format!("{iface}=");
    state
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with(&prefix))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// `/run/network/ifstate` with `ifaces` marked up (each its own logical interface),
/// appended in order as ifup does; one already there keeps its place.
pub fn ifstate_with(state: &str, ifaces: &[String]) -> String {
    let mut out = state.to_string();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    for i in ifaces {
        let prefix = format!("{i}=");
        if !out.lines().any(|l| l.trim().starts_with(&prefix)) {
            out.push_str(&format!("{i}={i}\n"));
        }
    }
    out
}

/// The interfaces `/run/network/ifstate` says are up, as (physical, logical) pairs.
pub fn ifstate_entries(state: &str) -> Vec<(String, String)> {
    state
        .lines()
        .filter_map(|l| {
            let (i, li) = l.trim().split_once('=')?;
            Some((i.to_string(), li.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::test_plan as plan;

    /// The direct path against the stanzas ifupdown reads: the same interfaces in
    /// `auto` order, each bridge with its stanza's ports or fake-bridge options, the
    /// management address and gateway on the stanza that has them.
    #[test]
    fn direct_up_builds_what_the_stanzas_declare() {
        for kind in [NetworkType::LinuxBridge, NetworkType::Openvswitch] {
            let mut p = plan();
            p.network.kind = kind;
            let block = interfaces_block(&p);
            let up = direct_up(&p);
            let word = |l: &str, i: usize| l.split_whitespace().nth(i).map(str::to_string);
            let autos: Vec<String> = block
                .iter()
                .filter(|l| l.starts_with("auto "))
                .filter_map(|l| word(l, 1))
                .collect();
            let up_autos: Vec<String> = up
                .ifaces
                .iter()
                .filter(|i| autos.contains(i))
                .cloned()
                .collect();
            assert_eq!(up_autos, autos, "{kind:?}");
            let mut stanza = String::new();
            for l in &block {
                let t = l.trim();
                if t.starts_with("iface ") {
                    stanza = word(t, 1).unwrap();
                    assert!(up.ifaces.contains(&stanza), "{stanza} not raised");
                } else if let Some(ports) = t.strip_prefix("bridge_ports ") {
                    for port in ports.split_whitespace() {
                        let l = format!("link set dev {port} master {stanza}");
                        assert!(up.ip.contains(&l), "{l:?} not in {:#?}", up.ip);
                    }
                } else if let Some(o) = t.strip_prefix("ovs_options ") {
                    let want = format!("add-br {stanza} {o}");
                    assert!(up.ovs.join(" ").contains(&want), "{want}: {:?}", up.ovs);
                } else if let Some(gw) = t.strip_prefix("gateway ") {
                    let l = format!("route add default via {gw} dev {stanza} onlink");
                    assert!(up.ip.contains(&l), "{l:?} not in {:#?}", up.ip);
                } else if let Some(a) = t.strip_prefix("address ") {
                    let l = format!(
                        "addr add {a}/{} broadcast + dev {stanza} label {stanza}",
                        p.network.management.prefix
                    );
                    assert!(up.ip.contains(&l), "{l:?} not in {:#?}", up.ip);
                } else if let Some(ports) = t.strip_prefix("ovs_ports ") {
                    let want = format!("add-port {stanza} {ports}");
                    assert!(up.ovs.join(" ").contains(&want), "{want}: {:?}", up.ovs);
                }
            }
            // Nothing planned exists before; the trunk NIC is not among them.
            let devs = planned_devices(&p);
            assert!(!devs.contains(&p.network.trunk_nic), "{devs:?}");
        }
    }

    #[test]
    fn bridge_utils_defaults_shape_the_ipv6_lines() {
        let p = plan();
        let nic_off = format!("link set dev {} addrgenmode none", p.network.trunk_nic);
        let up = direct_up(&p);
        assert!(up.ip.contains(&nic_off), "{:#?}", up.ip);
        let h = BridgeHost::from_default_file(
            "BRIDGE_HOTPLUG=no\nBRIDGE_DISABLE_LINKLOCAL_IPV6_ALSO_PHYS=\"no\"\n",
            true,
        );
        assert!(!h.phys_linklocal_off);
        assert!(!direct_up_on(&p, h).ip.contains(&nic_off));
        let h =
            BridgeHost::from_default_file("BRIDGE_DISABLE_LINKLOCAL_IPV6_ALSO_PHYS=yes\n", false);
        assert!(!direct_up_on(&p, h)
            .ip
            .iter()
            .any(|l| l.contains("addrgenmode")));
    }

    #[test]
    fn ifstate_is_edited_as_ifupdown_does() {
        let s = "lo=lo\neth0=eth0\neth1=eth1\n";
        assert_eq!(ifstate_without(s, "eth0"), "lo=lo\neth1=eth1\n");
        // eth0.100 is not eth0.
        assert_eq!(
            ifstate_without("eth0.100=eth0.100\neth0=eth0\n", "eth0"),
            "eth0.100=eth0.100\n"
        );
        let ifs = [
            "eth0".to_string(),
            "eth0.100".to_string(),
            "cloudbr0".to_string(),
        ];
        assert_eq!(
            ifstate_with("lo=lo\neth0=eth0", &ifs),
            "lo=lo\neth0=eth0\neth0.100=eth0.100\ncloudbr0=cloudbr0\n"
        );
        assert_eq!(
            ifstate_entries("lo=lo\nwlan0=home\n"),
            [
                ("lo".to_string(), "lo".to_string()),
                ("wlan0".to_string(), "home".to_string())
            ]
        );
    }

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
