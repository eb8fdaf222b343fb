//! What each file hvseed manages must say, per the oracle
//! (`docs/cloudstack-kvm-host.md` of the hvseed docs: the CloudStack install guide,
//! `cloudstack-setup-agent`, and hvseed's policy). Every function here takes the file's
//! current text and returns the new text, changing only the lines hvseed owns.

use crate::edit::{parse_assign, shell_value, Lines, Style};
use crate::plan::{CpuMode, NetworkType, Os, Plan, SelinuxMode, CLOUDSTACK_TCP_PORTS};

pub const AGENT_PATH: &str = "/usr/sbin/hvseed-firstboot";
pub const PLAN_PATH: &str = "/etc/hvseed/plan.json";
pub const JOB_NAME: &str = "hvseed-firstboot";
pub const SYSV_SCRIPT: &str = "/etc/rc.d/init.d/hvseed-firstboot";
pub const UPSTART_JOB: &str = "/etc/init/hvseed-firstboot.conf";
pub const UPSTART_OVERRIDE: &str = "/etc/init/hvseed-firstboot.override";
pub const OVS_VIF_DRIVER: &str = "com.cloud.hypervisor.kvm.resource.OvsVifDriver";
pub const BRIDGE_VIF_DRIVER: &str = "com.cloud.hypervisor.kvm.resource.BridgeVifDriver";
pub const APPARMOR_PROFILES: [&str; 2] = ["usr.sbin.libvirtd", "usr.lib.libvirt.virt-aa-helper"];
/// The SysV runlevels the first-boot job starts in, and its start link name.
pub const SYSV_RUNLEVELS: [u8; 4] = [2, 3, 4, 5];
pub const SYSV_LINK: &str = "S99hvseed-firstboot";

/// Where the stock trunk bridge / management fake bridge names default to (Open vSwitch).
pub fn trunk_bridge(plan: &Plan) -> &str {
    plan.network.trunk_bridge.as_deref().unwrap_or("cloudbr")
}

pub fn mgmt_bridge(plan: &Plan) -> &str {
    plan.network.management.bridge.as_deref().unwrap_or("mgmt0")
}

/// The interface that carries the management address.
pub fn mgmt_interface(plan: &Plan) -> String {
    let n = &plan.network;
    match n.kind {
        NetworkType::LinuxBridge => format!("{}.{}", n.trunk_nic, n.management.vlan),
        NetworkType::Openvswitch => mgmt_bridge(plan).to_string(),
    }
}

/// The bridges CloudStack (and the management address, with OVS) use.
pub fn bridges(plan: &Plan) -> Vec<String> {
    let n = &plan.network;
    let mut v = Vec::new();
    if n.kind == NetworkType::Openvswitch {
        v.push(trunk_bridge(plan).to_string());
        v.push(mgmt_bridge(plan).to_string());
    }
    v.push(n.public.bridge.clone());
    if n.private.bridge != n.public.bridge {
        v.push(n.private.bridge.clone());
    }
    v
}

// ---------------------------------------------------------------- libvirt, qemu

/// `/etc/libvirt/libvirtd.conf`: the guide's five keys (policy 1, incl. `mdns_adv`).
pub fn libvirtd_conf(old: &str) -> String {
    let mut l = Lines::parse(old);
    for (k, v) in [
        ("listen_tls", "0"),
        ("listen_tcp", "1"),
        ("tcp_port", "\"16509\""),
        ("auth_tcp", "\"none\""),
        ("mdns_adv", "0"),
    ] {
        l.set(Style::Spaced, k, v);
    }
    l.text()
}

/// `/etc/libvirt/qemu.conf`: VNC on all addresses (policy 3).
pub fn qemu_conf(old: &str) -> String {
    let mut l = Lines::parse(old);
    l.set(Style::Spaced, "vnc_listen", "\"0.0.0.0\"");
    l.text()
}

/// el6 `/etc/sysconfig/libvirtd` (policy 2).
pub fn sysconfig_libvirtd(old: &str) -> String {
    let mut l = Lines::parse(old);
    l.set(Style::Tight, "LIBVIRTD_ARGS", "\"--listen\"");
    l.text()
}

/// precise `/etc/default/libvirt-bin` (policy 2).
pub fn default_libvirt_bin(old: &str) -> String {
    let mut l = Lines::parse(old);
    l.set(Style::Tight, "libvirtd_opts", "\"-d -l\"");
    l.text()
}

/// precise `/etc/init/libvirt-bin.conf`: its `exec /usr/sbin/libvirtd $libvirtd_opts`
/// takes the options from the job's own `env libvirtd_opts="-d"` (the pre-start script
/// that sources /etc/default/libvirt-bin is another shell), so the exec line itself
/// gets `-l` unless it already listens — what setup-agent does too.
pub fn upstart_libvirt_bin(old: &str) -> String {
    let mut l = Lines::parse(old);
    for line in &mut l.lines {
        let t = line.trim_start();
        if !t.starts_with("exec /usr/sbin/libvirtd") {
            continue;
        }
        let words: Vec<&str> = t.split_whitespace().collect();
        let listens = words.iter().any(|w| {
            *w == "--listen" || (w.starts_with('-') && !w.starts_with("--") && w.contains('l'))
        });
        if !listens {
            line.push_str(" -l");
        }
    }
    l.text()
}

// ---------------------------------------------------------------- identity, time

/// el6 `/etc/selinux/config` (policy 4).
pub fn selinux_config(old: &str, mode: SelinuxMode) -> String {
    let mut l = Lines::parse(old);
    l.set(Style::Tight, "SELINUX", mode.as_str());
    l.text()
}

/// el6 `/etc/sysconfig/network` (policy 8).
pub fn sysconfig_network(old: &str, plan: &Plan) -> String {
    let mut l = Lines::parse(old);
    if l.get("NETWORKING").is_none() {
        l.set(Style::Tight, "NETWORKING", "yes");
    }
    l.set(Style::Tight, "HOSTNAME", &plan.fqdn);
    l.text()
}

/// precise `/etc/hostname`: the short name, as Debian wants it; `hostname --fqdn`
/// finds the FQDN through /etc/hosts.
pub fn etc_hostname(_old: &str, plan: &Plan) -> String {
    format!("{}\n", plan.hostname)
}

/// `/etc/hosts`: `IP FQDN SHORT` (policy 8). Other lines must not name this host: d-i's
/// `127.0.1.1 fqdn short` (or an installer adding the name to `127.0.0.1`) would make
/// `hostname --fqdn` resolve to a loopback address, which CloudStack then reports as
/// the host's IP. The host's names are taken off such lines; a line left with no name
/// is commented out, so `localhost` keeps resolving.
pub fn etc_hosts(old: &str, plan: &Plan) -> String {
    let ip = plan.network.management.ip.to_string();
    let ours = format!("{ip}\t{}\t{}", plan.fqdn, plan.hostname);
    let mut l = Lines::parse(old);
    let names = |line: &str| -> Option<(String, Vec<String>)> {
        let body = line.split('#').next().unwrap_or("");
        let mut w = body.split_whitespace();
        let addr = w.next()?.to_string();
        Some((addr, w.map(str::to_string).collect()))
    };
    let mut placed = false;
    let mut i = 0;
    while i < l.lines.len() {
        let Some((addr, hosts)) = names(&l.lines[i]) else {
            i += 1;
            continue;
        };
        if addr == ip {
            if placed {
                l.lines.remove(i);
                continue;
            }
            l.lines[i] = ours.clone();
            placed = true;
        } else if hosts.iter().any(|h| *h == plan.fqdn || *h == plan.hostname) {
            let kept: Vec<&String> = hosts
                .iter()
                .filter(|h| **h != plan.fqdn && **h != plan.hostname)
                .collect();
            let line = &l.lines[i];
            l.lines[i] = if kept.is_empty() {
                format!("#{line}")
            } else {
                let sep = if line.contains('\t') { "\t" } else { " " };
                let comment = line.find('#').map(|c| format!(" {}", &line[c..]));
                let names: Vec<&str> = kept.iter().map(|h| h.as_str()).collect();
                format!(
                    "{addr}{sep}{}{}",
                    names.join(" "),
                    comment.unwrap_or_default()
                )
            };
        }
        i += 1;
    }
    if !placed {
        let after = l
            .lines
            .iter()
            .rposition(|line| names(line).is_some_and(|(a, _)| a.starts_with("127.")));
        match after {
            Some(i) => l.lines.insert(i + 1, ours),
            None => l.lines.insert(0, ours),
        }
    }
    l.text()
}

/// Replaces the `server`/`servers`/`pool` lines of an ntpd or OpenNTPD configuration
/// with the inventory's servers, at the place of the first one (policy 7). ntpd's
/// local clock pseudo-server (127.127.x.x) is not a time source to replace.
fn replace_servers(old: &str, servers: &[String], render: impl Fn(&str) -> String) -> String {
    if servers.is_empty() {
        return Lines::parse(old).text();
    }
    let l = Lines::parse(old);
    let is_server = |line: &str| {
        let mut w = line.split_whitespace();
        matches!(w.next(), Some("server" | "servers" | "pool"))
            && !w.next().is_some_and(|h| h.starts_with("127.127."))
    };
    let first = l.lines.iter().position(|x| is_server(x));
    let mut out: Vec<String> = Vec::new();
    for (i, line) in l.lines.iter().enumerate() {
        if Some(i) == first {
            out.extend(servers.iter().map(|s| render(s)));
        }
        if !is_server(line) {
            out.push(line.clone());
        }
    }
    if first.is_none() {
        out.extend(servers.iter().map(|s| render(s)));
    }
    Lines { lines: out }.text()
}

/// el6 `/etc/ntp.conf`.
pub fn ntp_conf(old: &str, plan: &Plan) -> String {
    replace_servers(old, &plan.ntp_servers, |s| format!("server {s} iburst"))
}

/// precise `/etc/openntpd/ntpd.conf`.
pub fn openntpd_conf(old: &str, plan: &Plan) -> String {
    replace_servers(old, &plan.ntp_servers, |s| format!("server {s}"))
}

// ---------------------------------------------------------------- firewall

/// Each CloudStack port × each allowed source (`None` = anywhere).
fn port_sources(plan: &Plan) -> Vec<(&'static str, Option<&str>)> {
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
    for port in CLOUDSTACK_TCP_PORTS {
        for s in &sources {
            v.push((port, *s));
        }
    }
    v
}

/// The iptables-save line that opens `port` (to `source`).
pub fn iptables_rule(port: &str, source: Option<&str>) -> String {
    match source {
        Some(s) => format!("-A INPUT -s {s} -p tcp -m tcp --dport {port} -j ACCEPT"),
        None => format!("-A INPUT -p tcp -m tcp --dport {port} -j ACCEPT"),
    }
}

fn norm(line: &str) -> String {
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// el6 `/etc/sysconfig/iptables` (iptables-save format, policy 6): the port rules go
/// before the first INPUT REJECT/DROP of the filter table; the FORWARD REJECT that
/// would reject bridged guest traffic is removed.
pub fn sysconfig_iptables(old: &str, plan: &Plan) -> String {
    let mut l = Lines::parse(old);
    if !l.lines.iter().any(|x| x.trim() == "*filter") {
        if l.lines.last().is_some_and(|x| !x.trim().is_empty()) {
            l.lines.push(String::new());
        }
        for x in [
            "*filter",
            ":INPUT ACCEPT [0:0]",
            ":FORWARD ACCEPT [0:0]",
            ":OUTPUT ACCEPT [0:0]",
            "COMMIT",
        ] {
            l.lines.push(x.to_string());
        }
    }
    let start = l.lines.iter().position(|x| x.trim() == "*filter").unwrap();
    let end = start
        + l.lines[start..]
            .iter()
            .position(|x| x.trim() == "COMMIT")
            .unwrap_or(l.lines.len() - start);
    let mut table: Vec<String> = l.lines[start..end].to_vec();
    table.retain(|x| {
        let w: Vec<&str> = x.split_whitespace().collect();
        !(w.first() == Some(&"-A") && w.get(1) == Some(&"FORWARD") && w.contains(&"REJECT"))
    });
    let present: Vec<String> = table.iter().map(|x| norm(x)).collect();
    let missing: Vec<String> = port_sources(plan)
        .into_iter()
        .map(|(p, s)| iptables_rule(p, s))
        .filter(|r| !present.contains(r))
        .collect();
    let block = table
        .iter()
        .position(|x| {
            let w: Vec<&str> = x.split_whitespace().collect();
            w.first() == Some(&"-A")
                && w.get(1) == Some(&"INPUT")
                && w.windows(2)
                    .any(|p| p[0] == "-j" && matches!(p[1], "REJECT" | "DROP"))
        })
        .unwrap_or(table.len());
    for (k, r) in missing.into_iter().enumerate() {
        table.insert(block + k, r);
    }
    l.lines.splice(start..end, table);
    l.text()
}

/// ufw's own spelling of a rule: the `### tuple ###` line it reads back
/// (`action proto dport dst sport src direction`) and the iptables line it loads.
pub fn ufw_rule(port: &str, source: Option<&str>) -> (String, String) {
    let src = source.unwrap_or("0.0.0.0/0");
    let tuple = format!("### tuple ### allow tcp {port} 0.0.0.0/0 any {src} in");
    let dport = if port.contains(':') || port.contains(',') {
        format!("-m multiport --dports {port}")
    } else {
        format!("--dport {port}")
    };
    let rule = match source {
        Some(s) => format!("-A ufw-user-input -p tcp {dport} -s {s} -j ACCEPT"),
        None => format!("-A ufw-user-input -p tcp {dport} -j ACCEPT"),
    };
    (tuple, rule)
}

const UFW_USER_RULES: &str = "*filter
:ufw-user-input - [0:0]
:ufw-user-output - [0:0]
:ufw-user-forward - [0:0]
:ufw-user-limit - [0:0]
:ufw-user-limit-accept - [0:0]
### RULES ###

### END RULES ###
-A ufw-user-input -j RETURN
-A ufw-user-output -j RETURN
-A ufw-user-forward -j RETURN
-A ufw-user-limit -m limit --limit 3/minute -j LOG --log-prefix \"[UFW LIMIT]: \"
-A ufw-user-limit -j REJECT
-A ufw-user-limit-accept -j ACCEPT
COMMIT
";

/// precise `/lib/ufw/user.rules`: one tuple + rule pair per port (and source) between
/// `### RULES ###` and `### END RULES ###`, as `ufw allow` would write them.
pub fn ufw_user_rules(old: &str, plan: &Plan) -> String {
    let base = if old.contains("### RULES ###") && old.contains("### END RULES ###") {
        old
    } else {
        UFW_USER_RULES
    };
    let mut l = Lines::parse(base);
    let present: Vec<String> = l.lines.iter().map(|x| norm(x)).collect();
    let mut at = l
        .lines
        .iter()
        .position(|x| x.trim() == "### END RULES ###")
        .unwrap();
    for (p, s) in port_sources(plan) {
        let (tuple, rule) = ufw_rule(p, s);
        if present.contains(&tuple) {
            continue;
        }
        for x in [tuple, rule, String::new()] {
            l.lines.insert(at, x);
            at += 1;
        }
    }
    l.text()
}

/// precise `/etc/default/ufw`: once ufw is enabled, its default FORWARD policy (DROP)
/// would drop bridged guest traffic — the same reason the FORWARD REJECT goes on el6.
pub fn default_ufw(old: &str) -> String {
    let mut l = Lines::parse(old);
    l.set(Style::Tight, "DEFAULT_FORWARD_POLICY", "\"ACCEPT\"");
    l.text()
}

// ---------------------------------------------------------------- network: el6

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

pub type Keys = Vec<(&'static str, String)>;

fn ifcfg_edit(old: &str, keys: &Keys) -> String {
    let mut l = Lines::parse(old);
    for k in IFCFG_OWNED {
        if !keys.iter().any(|(key, _)| key == k) {
            l.remove(k);
        }
    }
    for (k, v) in keys {
        l.set(Style::Tight, k, &shell_value(v));
    }
    l.text()
}

fn kv(k: &'static str, v: impl Into<String>) -> (&'static str, String) {
    (k, v.into())
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

/// The ifcfg files (name → keys in the guide's order) for el6.
pub fn ifcfg_files(plan: &Plan) -> Vec<(String, Keys)> {
    let n = &plan.network;
    let m = &n.management;
    let nic = n.trunk_nic.as_str();
    let hw = n.mac.to_ascii_uppercase();
    let mut files = Vec::new();
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
            files.push((nic.to_string(), trunk));
            let dev = format!("{nic}.{}", m.vlan);
            let mut k = eth(&dev);
            k.push(kv("VLAN", "yes"));
            k.push(kv("IPADDR", m.ip.to_string()));
            k.push(kv("GATEWAY", m.gateway.to_string()));
            k.push(kv("NETMASK", m.netmask.to_string()));
            k.extend(dns_keys(plan));
            k.push(kv("NM_CONTROLLED", "no"));
            files.push((dev, k));
            for vb in [&n.public, &n.private] {
                let dev = format!("{nic}.{}", vb.vlan);
                if files.iter().any(|(d, _)| *d == dev) {
                    continue;
                }
                let mut k = eth(&dev);
                k.push(kv("VLAN", "yes"));
                k.push(kv("BRIDGE", vb.bridge.as_str()));
                k.push(kv("NM_CONTROLLED", "no"));
                files.push((dev, k));
            }
            for vb in [&n.public, &n.private] {
                if files.iter().any(|(d, _)| *d == vb.bridge) {
                    continue;
                }
                files.push((
                    vb.bridge.clone(),
                    vec![
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
                ));
            }
        }
        NetworkType::Openvswitch => {
            let trunk = trunk_bridge(plan);
            files.push((
                nic.to_string(),
                vec![
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
            ));
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
            files.push((trunk.to_string(), k));
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
            files.push((mgmt.to_string(), k));
            for vb in [&n.public, &n.private] {
                if files.iter().any(|(d, _)| *d == vb.bridge) {
                    continue;
                }
                let mut k = ovs_bridge(&vb.bridge, "none");
                k.push(kv("OVS_OPTIONS", format!("{trunk} {}", vb.vlan)));
                k.push(kv("NM_CONTROLLED", "no"));
                files.push((vb.bridge.clone(), k));
            }
        }
    }
    files
}

pub fn ifcfg_path(dev: &str) -> String {
    format!("/etc/sysconfig/network-scripts/ifcfg-{dev}")
}

pub fn ifcfg(old: &str, keys: &Keys) -> String {
    ifcfg_edit(old, keys)
}

/// el6 Open vSwitch: the kernel's own bridge module must stay out of the way.
pub const MODPROBE_BLACKLIST: &str = "/etc/modprobe.d/hvseed-bridge.conf";

pub fn modprobe_blacklist(_old: &str) -> String {
    "# Written by hvseed-firstboot: Open vSwitch carries this host's bridges, and the\n\
     # CloudStack guide asks for the Linux bridge module to be blacklisted.\n\
     blacklist bridge\n"
        .to_string()
}

// ---------------------------------------------------------------- network: precise

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
            let mut seen = Vec::new();
            for (label, vb) in [("Public", &n.public), ("Private", &n.private)] {
                if seen.contains(&vb.bridge) {
                    continue;
                }
                seen.push(vb.bridge.clone());
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
            let mut seen = Vec::new();
            for (label, vb) in [("Public", &n.public), ("Private", &n.private)] {
                if seen.contains(&vb.bridge) {
                    continue;
                }
                seen.push(vb.bridge.clone());
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

// ---------------------------------------------------------------- CloudStack agent

/// `/etc/cloudstack/agent/agent.properties` (policy 9).
pub fn agent_properties(old: &str, plan: &Plan) -> String {
    let n = &plan.network;
    let mut l = Lines::parse(old);
    let t = Style::Tight;
    l.set(t, "host", &plan.cloudstack.management_server);
    l.set(t, "port", &plan.cloudstack.port.to_string());
    l.set(t, "public.network.device", &n.public.bridge);
    l.set(t, "private.network.device", &n.private.bridge);
    l.set(t, "guest.network.device", &n.private.bridge);
    l.set(t, "guest.cpu.mode", plan.cpu.mode.as_str());
    match (&plan.cpu.mode, &plan.cpu.model) {
        (CpuMode::Custom, Some(model)) => l.set(t, "guest.cpu.model", model),
        _ => l.remove("guest.cpu.model"),
    }
    if plan.cpu.features.is_empty() {
        l.remove("guest.cpu.features");
    } else {
        l.set(t, "guest.cpu.features", &plan.cpu.features.join(" "));
    }
    match n.kind {
        NetworkType::Openvswitch => {
            l.set(t, "network.bridge.type", "openvswitch");
            l.set(t, "libvirt.vif.driver", OVS_VIF_DRIVER);
        }
        NetworkType::LinuxBridge => {
            if l.get("network.bridge.type").is_some() {
                l.set(t, "network.bridge.type", "native");
            }
            if l.get("libvirt.vif.driver") == Some(OVS_VIF_DRIVER) {
                l.set(t, "libvirt.vif.driver", BRIDGE_VIF_DRIVER);
            }
        }
    }
    l.text()
}

// ---------------------------------------------------------------- the first-boot job

/// centos6: a SysV script; chkconfig's header says where it starts.
pub fn sysv_script() -> String {
    format!(
        r#"#!/bin/sh
#
# {JOB_NAME}  Makes this host a CloudStack KVM host on its first boot.
#
# chkconfig: 2345 99 01
# description: hvseed's one-shot first-boot job. It runs "{AGENT_PATH} run", which \
#              removes this job's start links once the host is ready; a failed run \
#              is retried on the next boot.
#
### BEGIN INIT INFO
# Provides: {JOB_NAME}
# Required-Start: $local_fs $network
# Default-Start: 2 3 4 5
# Short-Description: hvseed first-boot agent
### END INIT INFO

case "$1" in
    start)
        {AGENT_PATH} run --plan {PLAN_PATH}
        ;;
    stop|status)
        exit 0
        ;;
    *)
        echo "Usage: $0 start" >&2
        exit 2
        ;;
esac
"#
    )
}

/// ubuntu1204: an upstart task.
pub fn upstart_job() -> String {
    format!(
        r#"# {JOB_NAME} - makes this host a CloudStack KVM host on its first boot
#
# hvseed's one-shot first-boot job. "{AGENT_PATH} run" disables it (with
# {UPSTART_OVERRIDE}) once the host is ready; a failed run is retried on the
# next boot.

description "hvseed first-boot agent"

start on runlevel [2345]
task
console output

exec {AGENT_PATH} run --plan {PLAN_PATH}
"#
    )
}

/// Which SELinux mode a centos6 host gets (policy 4: permissive unless the inventory
/// says disabled).
pub fn selinux_mode(plan: &Plan) -> SelinuxMode {
    plan.security.selinux.unwrap_or(SelinuxMode::Permissive)
}

/// el6 ifcfg files hvseed writes for the other network type (or other VLANs of the
/// same trunk) that this plan does not use: left over, they would bring up a second
/// copy of the management address.
pub fn stale_network_paths(plan: &Plan) -> Vec<String> {
    let n = &plan.network;
    let wanted: Vec<String> = ifcfg_files(plan).into_iter().map(|(d, _)| d).collect();
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

/// The network files of this plan (what `run` restores if the gateway is lost).
pub fn network_paths(plan: &Plan) -> Vec<String> {
    match plan.os {
        Os::Centos6 => ifcfg_files(plan)
            .into_iter()
            .map(|(dev, _)| ifcfg_path(&dev))
            .collect(),
        Os::Ubuntu1204 => vec!["/etc/network/interfaces".to_string()],
    }
}

/// True if `line` assigns `key` (uncommented) — for callers that inspect files.
pub fn assigns(line: &str, key: &str) -> bool {
    parse_assign(line).is_some_and(|a| !a.commented && a.key == key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
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

    #[test]
    fn no_ntp_servers_in_the_plan_keeps_the_stock_ones() {
        let old = "servers pool.ntp.org\n";
        assert_eq!(openntpd_conf(old, &plan()), old);
    }

    #[test]
    fn an_upstart_exec_line_that_listens_is_left_alone() {
        let old = "exec /usr/sbin/libvirtd -d -l\n";
        assert_eq!(upstart_libvirt_bin(old), old);
        let old = "  exec /usr/sbin/libvirtd $libvirtd_opts\n";
        assert_eq!(
            upstart_libvirt_bin(old),
            "  exec /usr/sbin/libvirtd $libvirtd_opts -l\n"
        );
    }
}
