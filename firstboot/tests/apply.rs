//! `hvseed-firstboot apply` against fixture roots of fresh CentOS 6.3 and Ubuntu 12.04
//! installs, checked line by line against the oracle (docs/cloudstack-kvm-host.md of
//! the shared hvseed docs) by parsing the written files.

mod common;

use std::fs;
use std::path::Path;

use common::*;

const PORTS: [&str; 5] = ["22", "1798", "16509", "5900:6100", "49152:49216"];
/// The targets for CloudStack ≥ 4.20 open libvirt's TLS port too.
const PORTS_TLS: [&str; 6] = ["22", "1798", "16509", "16514", "5900:6100", "49152:49216"];
const MAC_UPPER: &str = "00:04:23:AA:BB:01";

fn apply(root: &Path, plan: &Path, extra: &[&str]) -> String {
    run_ok(
        agent()
            .arg("apply")
            .arg("--plan")
            .arg(plan)
            .arg("--root")
            .arg(root)
            .args(extra),
    )
}

/// Checks shared by both distributions.
fn check_common(root: &Path, orig: &Path, net: &str) {
    // libvirtd.conf: the guide's five keys (policy 1).
    let conf = libvirt_conf(&read(root, "/etc/libvirt/libvirtd.conf"));
    assert_eq!(conf["listen_tls"], "0");
    assert_eq!(conf["listen_tcp"], "1");
    assert_eq!(conf["tcp_port"], "\"16509\"");
    assert_eq!(conf["auth_tcp"], "\"none\"");
    assert_eq!(conf["mdns_adv"], "0");
    assert_eq!(conf.len(), 5, "no other key was switched on: {conf:?}");
    // qemu.conf (policy 3).
    let q = libvirt_conf(&read(root, "/etc/libvirt/qemu.conf"));
    assert_eq!(q["vnc_listen"], "\"0.0.0.0\"");
    // /etc/hosts: IP FQDN SHORT, and nothing else resolves the host's names.
    let hosts = read(root, "/etc/hosts");
    let mut found = 0;
    for line in hosts.lines() {
        let body = line.split('#').next().unwrap();
        let w: Vec<&str> = body.split_whitespace().collect();
        if w.len() < 2 {
            continue;
        }
        if w[1..].contains(&"kvm1.lab.example.org") || w[1..].contains(&"kvm1") {
            assert_eq!(w, ["192.168.42.11", "kvm1.lab.example.org", "kvm1"]);
            found += 1;
        }
    }
    assert_eq!(found, 1, "{hosts}");
    assert!(hosts.contains("nfs1.lab.example.org"), "site line kept");
    assert!(hosts.lines().any(|l| l.starts_with("127.0.0.1")));
    // agent.properties (policy 9).
    let p = properties(&read(root, "/etc/cloudstack/agent/agent.properties"));
    assert_eq!(p["host"], "192.168.42.5");
    assert_eq!(p["port"], "8250");
    assert_eq!(p["public.network.device"], "cloudbr0");
    assert_eq!(p["private.network.device"], "cloudbr1");
    assert_eq!(p["guest.network.device"], "cloudbr1");
    assert_eq!(p["guest.cpu.mode"], "custom");
    assert_eq!(p["guest.cpu.model"], "SandyBridge");
    assert_eq!(p["guest.cpu.features"], "vmx aes");
    assert_eq!(
        p["resource"],
        "com.cloud.hypervisor.kvm.resource.LibvirtComputingResource"
    );
    assert_eq!(p["vm.migrate.speed"], "1000", "site-local key kept");
    assert_eq!(p["guid"], "", "left for the management server");
    if net == "openvswitch" {
        assert_eq!(p["network.bridge.type"], "openvswitch");
        assert_eq!(
            p["libvirt.vif.driver"],
            "com.cloud.hypervisor.kvm.resource.OvsVifDriver"
        );
    } else {
        assert!(!p.contains_key("network.bridge.type"));
        assert!(!p.contains_key("libvirt.vif.driver"));
    }
    // Every edited file keeps its comments, and its pristine original.
    for f in [
        "/etc/libvirt/libvirtd.conf",
        "/etc/libvirt/qemu.conf",
        "/etc/cloudstack/agent/agent.properties",
        "/etc/hosts",
    ] {
        let before = read(orig, f);
        assert_comments_kept(f, &before, &read(root, f));
        assert_eq!(
            read(root, &format!("{f}.hvseed-orig")),
            before,
            "{f} backup"
        );
    }
}

/// `/etc/sysconfig/iptables` (el6, el9): every port × source accepted before the INPUT
/// REJECT, the FORWARD REJECT gone, the site rule and the mode kept, and
/// iptables-restore accepts the file.
fn check_sysconfig_iptables(root: &Path, ports: &[&str], sources: &[&str]) {
    // iptables: every port × source accepted before the INPUT REJECT; FORWARD REJECT gone.
    let t = iptables_save(&read(root, "/etc/sysconfig/iptables"));
    let filter = &t["filter"];
    let input: Vec<&Vec<String>> = filter.iter().filter(|r| r[1] == "INPUT").collect();
    let reject = input
        .iter()
        .position(|r| opt(r, "-j") == Some("REJECT"))
        .expect("stock INPUT REJECT kept");
    let want_sources: Vec<Option<&str>> = if sources.is_empty() {
        vec![None]
    } else {
        sources.iter().map(|s| Some(*s)).collect()
    };
    for port in ports {
        for src in &want_sources {
            let at = input
                .iter()
                .position(|r| {
                    opt(r, "-p") == Some("tcp")
                        && opt(r, "--dport") == Some(*port)
                        && opt(r, "-j") == Some("ACCEPT")
                        && opt(r, "-s") == *src
                })
                .unwrap_or_else(|| panic!("no ACCEPT for {port} from {src:?}: {input:?}"));
            assert!(at < reject, "{port} accepted after the REJECT");
        }
        if !sources.is_empty() && *port != "22" {
            assert!(
                !input.iter().any(|r| opt(r, "--dport") == Some(*port)
                    && opt(r, "-j") == Some("ACCEPT")
                    && opt(r, "-s").is_none()),
                "{port} open to anyone despite firewall_sources"
            );
        }
    }
    assert!(
        !filter
            .iter()
            .any(|r| r[1] == "FORWARD" && opt(r, "-j") == Some("REJECT")),
        "FORWARD REJECT removed"
    );
    assert!(
        input.iter().any(|r| opt(r, "--dport") == Some("2049")),
        "site rule kept"
    );
    let ipt = root.join("etc/sysconfig/iptables");
    assert_eq!(
        fs::metadata(&ipt).unwrap().permissions().mode() & 0o777,
        0o600,
        "mode kept"
    );

    // iptables-restore itself accepts the file (parse and check, nothing loaded).
    if let Some(ipr) = tool("iptables-restore", "iptables") {
        run_ok(
            std::process::Command::new(ipr)
                .arg("--test")
                .stdin(fs::File::open(root.join("etc/sysconfig/iptables")).unwrap()),
        );
    }
}

fn check_centos6(root: &Path, orig: &Path, net: &str, sources: &[&str]) {
    check_common(root, orig, net);
    let (v, _) = shell_vars(&read(root, "/etc/sysconfig/libvirtd"));
    assert_eq!(v["LIBVIRTD_ARGS"], "--listen");
    let (v, _) = shell_vars(&read(root, "/etc/selinux/config"));
    assert_eq!(v["SELINUX"], "permissive");
    assert_eq!(v["SELINUXTYPE"], "targeted");
    let (v, _) = shell_vars(&read(root, "/etc/sysconfig/network"));
    assert_eq!(v["HOSTNAME"], "kvm1.lab.example.org");
    assert_eq!(v["NETWORKING"], "yes");
    assert_eq!(v["NETWORKING_IPV6"], "no", "site line kept");

    // ntp.conf: the inventory's servers replace the stock ones.
    let ntp = read(root, "/etc/ntp.conf");
    let servers: Vec<&str> = ntp
        .lines()
        .filter_map(|l| l.strip_prefix("server "))
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(servers, ["0.pool.ntp.org", "ntp1.lab.example.org"]);
    assert!(ntp.contains("driftfile /var/lib/ntp/drift"));

    check_sysconfig_iptables(root, &PORTS, sources);

    // ifcfg files, keys in the guide's order.
    let ifcfg = |dev: &str| {
        let path = format!("/etc/sysconfig/network-scripts/ifcfg-{dev}");
        let (vars, order) = shell_vars(&read(root, &path));
        // The network scripts source these files: sh must agree with the parser.
        let keys: Vec<String> = vars.keys().cloned().collect();
        assert_eq!(
            sourced(&root.join(&path[1..]), &keys),
            vars,
            "{path} as sh reads it"
        );
        (vars, order)
    };
    for f in [
        "/etc/sysconfig/libvirtd",
        "/etc/selinux/config",
        "/etc/sysconfig/network",
    ] {
        let (vars, _) = shell_vars(&read(root, f));
        let keys: Vec<String> = vars.keys().cloned().collect();
        assert_eq!(
            sourced(&root.join(&f[1..]), &keys),
            vars,
            "{f} as sh reads it"
        );
    }
    let order_starts = |order: &[String], want: &[&str], dev: &str| {
        let got: Vec<&str> = order.iter().map(String::as_str).take(want.len()).collect();
        assert_eq!(got, want, "ifcfg-{dev} key order");
    };
    let (eth0, _) = ifcfg("eth0");
    assert_eq!(eth0["DEVICE"], "eth0");
    assert!(eth0["HWADDR"].eq_ignore_ascii_case(MAC_UPPER));
    assert_eq!(eth0["ONBOOT"], "yes");
    assert_eq!(eth0["HOTPLUG"], "no");
    assert_eq!(eth0["BOOTPROTO"], "none", "the installer's DHCP is gone");
    assert_eq!(eth0["NM_CONTROLLED"], "no");
    assert!(eth0.contains_key("UUID"), "installer's UUID kept");
    for k in ["IPADDR", "NETMASK", "GATEWAY", "BRIDGE"] {
        assert!(!eth0.contains_key(k), "trunk has no {k}");
    }
    // ifcfg-eth1 (another NIC) is untouched.
    assert_eq!(
        read(root, "/etc/sysconfig/network-scripts/ifcfg-eth1"),
        read(orig, "/etc/sysconfig/network-scripts/ifcfg-eth1")
    );
    // The original ifcfg-eth0 is kept where the network service will not read it.
    assert_eq!(
        read(
            root,
            "/var/lib/hvseed/orig/etc/sysconfig/network-scripts/ifcfg-eth0.hvseed-orig"
        ),
        read(orig, "/etc/sysconfig/network-scripts/ifcfg-eth0")
    );
    for e in fs::read_dir(root.join("etc/sysconfig/network-scripts")).unwrap() {
        let n = e.unwrap().file_name().into_string().unwrap();
        assert!(!n.contains("hvseed"), "{n} would be read as an interface");
    }

    if net == "linux-bridge" {
        assert_eq!(eth0["TYPE"], "Ethernet");
        let (m, order) = ifcfg("eth0.100");
        order_starts(
            &order,
            &[
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
            ],
            "eth0.100",
        );
        assert_eq!(m["DEVICE"], "eth0.100");
        assert_eq!(m["VLAN"], "yes");
        assert_eq!(m["IPADDR"], "192.168.42.11");
        assert_eq!(m["NETMASK"], "255.255.255.0");
        assert_eq!(m["GATEWAY"], "192.168.42.1");
        assert_eq!(m["BOOTPROTO"], "none");
        assert!(m["HWADDR"].eq_ignore_ascii_case(MAC_UPPER));
        for (dev, br) in [("eth0.200", "cloudbr0"), ("eth0.300", "cloudbr1")] {
            let (v, order) = ifcfg(dev);
            order_starts(
                &order,
                &[
                    "DEVICE",
                    "HWADDR",
                    "ONBOOT",
                    "HOTPLUG",
                    "BOOTPROTO",
                    "TYPE",
                    "VLAN",
                    "BRIDGE",
                ],
                dev,
            );
            assert_eq!(v["DEVICE"], dev);
            assert_eq!(v["VLAN"], "yes");
            assert_eq!(v["BRIDGE"], br);
            assert_eq!(v["TYPE"], "Ethernet");
            assert!(!v.contains_key("IPADDR"));
            let (b, order) = ifcfg(br);
            order_starts(
                &order,
                &[
                    "DEVICE",
                    "TYPE",
                    "ONBOOT",
                    "BOOTPROTO",
                    "IPV6INIT",
                    "IPV6_AUTOCONF",
                    "DELAY",
                    "STP",
                ],
                br,
            );
            assert_eq!(b["TYPE"], "Bridge");
            assert_eq!(b["ONBOOT"], "yes");
            assert_eq!(b["BOOTPROTO"], "none");
            assert_eq!(b["IPV6INIT"], "no");
            assert_eq!(b["IPV6_AUTOCONF"], "no");
            assert_eq!(b["DELAY"], "5");
            assert_eq!(b["STP"], "yes");
        }
        assert!(!root.join("etc/modprobe.d/hvseed-bridge.conf").exists());
    } else {
        assert_eq!(eth0["TYPE"], "OVSPort");
        assert_eq!(eth0["DEVICETYPE"], "ovs");
        assert_eq!(eth0["OVS_BRIDGE"], "cloudbr");
        let (c, order) = ifcfg("cloudbr");
        order_starts(
            &order,
            &[
                "DEVICE",
                "ONBOOT",
                "HOTPLUG",
                "BOOTPROTO",
                "DEVICETYPE",
                "TYPE",
            ],
            "cloudbr",
        );
        assert_eq!(c["TYPE"], "OVSBridge");
        assert_eq!(c["DEVICETYPE"], "ovs");
        let (m, order) = ifcfg("mgmt0");
        order_starts(
            &order,
            &[
                "DEVICE",
                "ONBOOT",
                "HOTPLUG",
                "BOOTPROTO",
                "DEVICETYPE",
                "TYPE",
                "IPADDR",
                "GATEWAY",
                "NETMASK",
            ],
            "mgmt0",
        );
        assert_eq!(m["BOOTPROTO"], "static");
        assert_eq!(m["TYPE"], "OVSBridge");
        assert_eq!(m["IPADDR"], "192.168.42.11");
        assert_eq!(m["GATEWAY"], "192.168.42.1");
        assert_eq!(m["NETMASK"], "255.255.255.0");
        assert_eq!(m["OVS_OPTIONS"], "cloudbr 100", "fake bridge on VLAN 100");
        for (br, vlan) in [("cloudbr0", "200"), ("cloudbr1", "300")] {
            let (b, _) = ifcfg(br);
            assert_eq!(b["DEVICE"], br);
            assert_eq!(b["TYPE"], "OVSBridge");
            assert_eq!(b["DEVICETYPE"], "ovs");
            assert_eq!(b["BOOTPROTO"], "none");
            assert_eq!(b["HOTPLUG"], "no");
            assert_eq!(b["OVS_OPTIONS"], format!("cloudbr {vlan}"));
        }
        let bl = read(root, "/etc/modprobe.d/hvseed-bridge.conf");
        assert!(bl
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["blacklist", "bridge"]));
        assert!(!root
            .join("etc/sysconfig/network-scripts/ifcfg-eth0.100")
            .exists());
    }

    // The one-shot job: a chkconfig-style script started in runlevels 2-5.
    let script = read(root, "/etc/rc.d/init.d/hvseed-firstboot");
    assert!(script.starts_with("#!/bin/sh"));
    let chk = script
        .lines()
        .find_map(|l| l.strip_prefix("# chkconfig:"))
        .expect("chkconfig header");
    assert_eq!(chk.split_whitespace().next(), Some("2345"));
    assert!(script.contains("/usr/sbin/hvseed-firstboot run --plan /etc/hvseed/plan.json"));
    assert_eq!(
        fs::metadata(root.join("etc/rc.d/init.d/hvseed-firstboot"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o755
    );
    let sh = std::process::Command::new("sh")
        .arg("-n")
        .arg(root.join("etc/rc.d/init.d/hvseed-firstboot"))
        .status()
        .unwrap();
    assert!(sh.success(), "init script parses");
    for rl in 2..=5 {
        // Through the /etc/rcN.d -> rc.d/rcN.d link, as init sees it.
        let l = root.join(format!("etc/rc{rl}.d/S99hvseed-firstboot"));
        assert_eq!(
            fs::read_link(&l).unwrap().to_str().unwrap(),
            "../init.d/hvseed-firstboot"
        );
        assert!(fs::metadata(&l).unwrap().is_file(), "link resolves");
    }
}

/// Debian 12's own files: libvirtd in traditional mode, root's SSH login.
fn check_debian12_only(root: &Path, orig: &Path, netplan: bool) {
    let (v, _) = shell_vars(&read(root, "/etc/default/libvirtd"));
    assert_eq!(v["LIBVIRTD_ARGS"], "--listen");
    assert_eq!(v.len(), 1, "nothing else switched on: {v:?}");
    let c = libvirt_conf(&read(root, "/etc/libvirt/libvirt.conf"));
    assert_eq!(c["remote_mode"], "\"legacy\"");
    assert_eq!(c.len(), 1, "{c:?}");
    // `systemctl mask` = a link to /dev/null in /etc/systemd/system.
    for s in [
        "libvirtd.socket",
        "libvirtd-ro.socket",
        "libvirtd-admin.socket",
        "libvirtd-tcp.socket",
        "libvirtd-tls.socket",
    ] {
        let l = root.join("etc/systemd/system").join(s);
        assert_eq!(
            fs::read_link(&l).unwrap().to_str(),
            Some("/dev/null"),
            "{s}"
        );
    }
    // Root has the inventory's password: sshd lets it in with it. sshd reads the
    // drop-ins (Include on sshd_config's first lines) before its own settings.
    let cfg = read(root, "/etc/ssh/sshd_config");
    assert_eq!(
        cfg,
        read(orig, "/etc/ssh/sshd_config"),
        "stock file untouched"
    );
    assert!(cfg
        .lines()
        .any(|l| l.trim() == "Include /etc/ssh/sshd_config.d/*.conf"));
    let drop_in = read(root, "/etc/ssh/sshd_config.d/00-hvseed-root-login.conf");
    let directives: Vec<&str> = drop_in
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .collect();
    if netplan {
        // Ubuntu: also password logins, ahead of cloud-init's 50-cloud-init.conf.
        assert_eq!(
            directives,
            ["PermitRootLogin yes", "PasswordAuthentication yes"]
        );
    } else {
        assert_eq!(directives, ["PermitRootLogin yes"]);
    }
    assert_eq!(read(root, "/etc/shadow"), read(orig, "/etc/shadow"));
    // The stock pool gives way to the inventory's servers; the sourcedirs stay.
    let conf = read(root, "/etc/chrony/chrony.conf");
    let sources: Vec<Vec<&str>> = conf
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|w| matches!(w.first(), Some(&("server" | "pool" | "peer"))))
        .collect();
    assert_eq!(
        sources,
        [
            vec!["server", "0.pool.ntp.org", "iburst"],
            vec!["server", "ntp1.lab.example.org", "iburst"]
        ]
    );
    assert!(conf.contains("\nsourcedir /run/chrony-dhcp\n"));
    assert_comments_kept(
        "/etc/chrony/chrony.conf",
        &read(orig, "/etc/chrony/chrony.conf"),
        &conf,
    );
}

fn check_ubuntu(root: &Path, orig: &Path, os: &str, net: &str, sources: &[&str]) {
    check_common(root, orig, net);
    let netplan = matches!(os, "ubuntu2204" | "ubuntu2404");
    let debian = os == "debian12" || netplan;
    if debian {
        check_debian12_only(root, orig, netplan);
    } else {
        check_ubuntu1204_only(root);
    }
    let rules_path = if debian {
        "/etc/ufw/user.rules"
    } else {
        "/lib/ufw/user.rules"
    };
    let ports: &[&str] = if debian { &PORTS_TLS } else { &PORTS };
    check_ubuntu_shared(root, orig, net, sources, rules_path, ports, os);
}

/// Ubuntu ≥ 22.04's network: hvseed's netplan file as netplan's own generator reads
/// it, the installer's files retired with their backups, cloud-init's network off.
fn check_netplan(root: &Path, orig: &Path, net: &str) {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let yaml = root.join("etc/netplan/60-hvseed.yaml");
    let m = fs::metadata(&yaml).unwrap();
    assert_eq!(m.permissions().mode() & 0o777, 0o600);
    assert_eq!((m.uid(), m.gid()), (0, 0));
    let text = fs::read_to_string(&yaml).unwrap();
    assert!(!text.contains("gateway4"), "deprecated in netplan 1.0");
    // The installer's netplan files are out of netplan's sight, kept as they were.
    for f in [
        "/etc/netplan/00-installer-config.yaml",
        "/etc/netplan/50-cloud-init.yaml",
    ] {
        if orig.join(&f[1..]).exists() {
            assert!(!root.join(&f[1..]).exists(), "{f} still read by netplan");
            assert_eq!(read(root, &format!("{f}.hvseed-orig")), read(orig, f));
        }
    }
    let names: Vec<String> = fs::read_dir(root.join("etc/netplan"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    assert_eq!(names, ["60-hvseed.yaml"], "the only file netplan reads");
    // subiquity's cloud-init files stay; hvseed's drop-in, read last, disables the network.
    for f in [
        "/etc/cloud/cloud.cfg.d/90-installer-network.cfg",
        "/etc/cloud/cloud.cfg.d/subiquity-disable-cloudinit-networking.cfg",
    ] {
        if orig.join(&f[1..]).exists() {
            assert_eq!(read(root, f), read(orig, f));
        }
    }
    let ci = read(root, "/etc/cloud/cloud.cfg.d/99-hvseed-network.cfg");
    let body: Vec<&str> = ci
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .collect();
    assert_eq!(body, ["network: {config: disabled}"]);

    // netplan's own generator accepts the file, silently, and makes the network of
    // the CloudStack guide from it.
    let Some((files, stderr)) = netplan_networkd(root) else {
        return;
    };
    assert_eq!(stderr.trim(), "", "netplan generate warned");
    let get = |name: &str| -> &str {
        files
            .get(name)
            .unwrap_or_else(|| panic!("no {name} in {:?}", files.keys()))
    };
    let has = |text: &str, line: &str| text.lines().any(|l| l.trim() == line);
    // The trunk NIC by its MAC, renamed to the plan's name.
    let link = get("10-netplan-eth0.link");
    // netplan 0.106 matches the permanent address; older ones `MACAddress=`.
    assert!(
        has(link, "PermanentMACAddress=00:04:23:aa:bb:01")
            || has(link, "MACAddress=00:04:23:aa:bb:01"),
        "{link}"
    );
    assert!(has(link, "Name=eth0"), "{link}");
    let mgmt = if net == "linux-bridge" {
        "eth0.100"
    } else {
        "mgmt0"
    };
    let nw = get(&format!("10-netplan-{mgmt}.network"));
    for l in [
        "Address=192.168.42.11/24",
        "DNS=192.168.42.1",
        "DNS=192.168.42.2",
        "Domains=lab.example.org",
    ] {
        assert!(has(nw, l), "{l} in {nw}");
    }
    assert!(
        has(nw, "Gateway=192.168.42.1"),
        "default route via the gateway: {nw}"
    );
    if net == "linux-bridge" {
        let eth0 = get("10-netplan-eth0.network");
        for v in ["eth0.100", "eth0.200", "eth0.300"] {
            assert!(has(eth0, &format!("VLAN={v}")), "{eth0}");
        }
        for (v, id) in [("eth0.100", 100), ("eth0.200", 200), ("eth0.300", 300)] {
            let nd = get(&format!("10-netplan-{v}.netdev"));
            assert!(has(nd, "Kind=vlan") && has(nd, &format!("Id={id}")), "{nd}");
        }
        for (br, v) in [("cloudbr0", "eth0.200"), ("cloudbr1", "eth0.300")] {
            let nd = get(&format!("10-netplan-{br}.netdev"));
            assert!(has(nd, "Kind=bridge"), "{nd}");
            assert!(has(nd, "STP=false"), "{nd}");
            assert!(has(nd, "ForwardDelaySec=5"), "{nd}");
            let port = get(&format!("10-netplan-{v}.network"));
            assert!(has(port, &format!("Bridge={br}")), "{port}");
        }
    } else {
        let units: String = files
            .iter()
            .filter(|(k, _)| k.starts_with("netplan-ovs-"))
            .map(|(_, v)| v.as_str())
            .collect();
        for want in [
            "/usr/bin/ovs-vsctl --may-exist add-br cloudbr",
            "/usr/bin/ovs-vsctl --may-exist add-port cloudbr eth0",
            "/usr/bin/ovs-vsctl --may-exist add-br mgmt0 cloudbr 100",
            "/usr/bin/ovs-vsctl --may-exist add-br cloudbr0 cloudbr 200",
            "/usr/bin/ovs-vsctl --may-exist add-br cloudbr1 cloudbr 300",
        ] {
            assert!(units.lines().any(|l| l.contains(want)), "{want} in {units}");
        }
    }
}

fn check_ubuntu1204_only(root: &Path) {
    let (v, _) = shell_vars(&read(root, "/etc/default/libvirt-bin"));
    let opts: Vec<&str> = v["libvirtd_opts"].split_whitespace().collect();
    assert!(opts.contains(&"-d") && opts.contains(&"-l"), "{opts:?}");
    assert_eq!(v["start_libvirtd"], "yes");
    let job = read(root, "/etc/init/libvirt-bin.conf");
    let exec = job
        .lines()
        .find(|l| l.trim_start().starts_with("exec /usr/sbin/libvirtd"))
        .unwrap();
    assert!(
        exec.split_whitespace().any(|w| w == "-l"),
        "upstart exec line listens: {exec}"
    );
    // openntpd
    let ntp = read(root, "/etc/openntpd/ntpd.conf");
    let servers: Vec<&str> = ntp
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            matches!(w.next(), Some("server" | "servers")).then(|| w.next().unwrap())
        })
        .collect();
    assert_eq!(servers, ["0.pool.ntp.org", "ntp1.lab.example.org"]);
    // The one-shot job.
    let job = read(root, "/etc/init/hvseed-firstboot.conf");
    assert!(job.lines().any(|l| l.trim() == "task"));
    assert!(job.lines().any(|l| l.starts_with("start on ")));
    assert!(job
        .lines()
        .any(|l| l.trim() == "exec /usr/sbin/hvseed-firstboot run --plan /etc/hvseed/plan.json"));
}

fn check_ubuntu_shared(
    root: &Path,
    orig: &Path,
    net: &str,
    sources: &[&str],
    rules_path: &str,
    ports: &[&str],
    os: &str,
) {
    let netplan = matches!(os, "ubuntu2204" | "ubuntu2404");
    let debian = os == "debian12" || netplan;
    assert_eq!(read(root, "/etc/hostname").trim(), "kvm1");

    // AppArmor: both libvirt profiles disabled by link; the stock rsyslogd link kept.
    for p in ["usr.sbin.libvirtd", "usr.lib.libvirt.virt-aa-helper"] {
        let l = root.join("etc/apparmor.d/disable").join(p);
        assert_eq!(
            fs::read_link(&l).unwrap().to_str().unwrap(),
            format!("/etc/apparmor.d/{p}")
        );
    }
    if !debian {
        assert!(
            fs::symlink_metadata(root.join("etc/apparmor.d/disable/usr.sbin.rsyslogd")).is_ok()
        );
    }

    // ufw: each port × source as a tuple ufw reads back, followed by its rule.
    let rules = read(root, rules_path);
    let lines: Vec<&str> = rules.lines().collect();
    let begin = lines.iter().position(|l| *l == "### RULES ###").unwrap();
    let end = lines
        .iter()
        .position(|l| *l == "### END RULES ###")
        .unwrap();
    let want_sources: Vec<&str> = if sources.is_empty() {
        vec!["0.0.0.0/0"]
    } else {
        sources.to_vec()
    };
    let mut tuples = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if let Some(t) = l.strip_prefix("### tuple ###") {
            assert!(begin < i && i < end, "tuple inside the RULES section");
            let f: Vec<&str> = t.split_whitespace().collect();
            // action proto dport dst sport src direction
            assert_eq!(f.len(), 7, "{l}");
            let rule: Vec<String> = lines[i + 1]
                .split_whitespace()
                .map(str::to_string)
                .collect();
            assert_eq!(rule[..2], ["-A".to_string(), "ufw-user-input".to_string()]);
            assert_eq!(opt(&rule, "-p"), Some(f[1]));
            let dport = opt(&rule, "--dport").or(opt(&rule, "--dports")).unwrap();
            assert_eq!(dport, f[2]);
            if f[2].contains(':') {
                assert_eq!(opt(&rule, "-m"), Some("multiport"));
            }
            assert_eq!(opt(&rule, "-s").unwrap_or("0.0.0.0/0"), f[5]);
            assert_eq!(opt(&rule, "-j"), Some("ACCEPT"));
            tuples.push((
                f[0].to_string(),
                f[1].to_string(),
                f[2].to_string(),
                f[5].to_string(),
                f[6].to_string(),
            ));
        }
    }
    for port in ports {
        for src in &want_sources {
            assert!(
                tuples.contains(&(
                    "allow".into(),
                    "tcp".into(),
                    port.to_string(),
                    src.to_string(),
                    "in".into()
                )),
                "ufw tuple for {port} from {src}: {tuples:?}"
            );
        }
    }
    assert_eq!(tuples.len(), ports.len() * want_sources.len());
    assert_eq!(
        fs::metadata(root.join(&rules_path[1..]))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o640
    );
    let (u, _) = shell_vars(&read(root, "/etc/default/ufw"));
    assert_eq!(u["DEFAULT_FORWARD_POLICY"], "ACCEPT");
    assert_eq!(u["DEFAULT_INPUT_POLICY"], "DROP");

    if netplan {
        check_netplan(root, orig, net);
        check_systemd_job(root);
        return;
    }

    // /etc/network/interfaces
    let text = read(root, "/etc/network/interfaces");
    let i = interfaces(&text);
    assert_eq!(i.ifaces["lo"].0, "loopback");
    assert!(i.auto.contains(&"lo".to_string()));
    assert_eq!(i.ifaces["eth1"].0, "static", "site interface kept");
    let eth1 = if debian { "10.9.9.12/24" } else { "10.9.9.12" };
    assert_eq!(i.opt("eth1", "address"), Some(eth1));
    assert_ne!(
        i.ifaces["eth0"].0, "dhcp",
        "installer's DHCP stanza replaced"
    );
    assert!(!i.allow.iter().any(|(k, n)| k == "hotplug" && n == "eth0"));
    let mgmt = if net == "linux-bridge" {
        "eth0.100"
    } else {
        "mgmt0"
    };
    assert!(i.auto.contains(&mgmt.to_string()));
    assert_eq!(i.ifaces[mgmt].0, "static");
    assert_eq!(i.opt(mgmt, "address"), Some("192.168.42.11"));
    assert_eq!(i.opt(mgmt, "netmask"), Some("255.255.255.0"));
    assert_eq!(i.opt(mgmt, "gateway"), Some("192.168.42.1"));
    assert_eq!(
        i.opt(mgmt, "dns-nameservers"),
        Some("192.168.42.1 192.168.42.2")
    );
    assert_eq!(i.opt(mgmt, "dns-search"), Some("lab.example.org"));
    for (br, vlan) in [("cloudbr0", 200), ("cloudbr1", 300)] {
        assert!(i.auto.contains(&br.to_string()));
        assert_eq!(i.ifaces[br].0, "manual");
        if net == "linux-bridge" {
            assert_eq!(
                i.opt(br, "bridge_ports"),
                Some(format!("eth0.{vlan}").as_str())
            );
            assert_eq!(i.opt(br, "bridge_fd"), Some("5"));
            assert_eq!(i.opt(br, "bridge_stp"), Some("off"));
            assert_eq!(i.opt(br, "bridge_maxwait"), Some("1"));
        } else {
            assert_eq!(i.opt(br, "ovs_type"), Some("OVSBridge"));
            assert_eq!(
                i.opt(br, "ovs_options"),
                Some(format!("cloudbr {vlan}").as_str())
            );
        }
    }
    if net == "openvswitch" {
        assert_eq!(i.opt("cloudbr", "ovs_type"), Some("OVSBridge"));
        assert_eq!(i.opt("cloudbr", "ovs_ports"), Some("eth0"));
        assert_eq!(i.opt("eth0", "ovs_type"), Some("OVSPort"));
        assert_eq!(i.opt("eth0", "ovs_bridge"), Some("cloudbr"));
        assert_eq!(i.opt(mgmt, "ovs_options"), Some("cloudbr 100"));
        assert!(i.allow.contains(&("ovs".into(), "cloudbr".into())));
    }
    assert_comments_kept(
        "/etc/network/interfaces",
        &read(orig, "/etc/network/interfaces"),
        &text,
    );
    // ifupdown's own parser agrees: the same auto interfaces and the same options.
    if let Some(ifquery) = tool("ifquery", "ifupdown") {
        let file = root.join("etc/network/interfaces");
        let q = |args: &[&str]| {
            run_ok(
                std::process::Command::new(&ifquery)
                    .arg("-i")
                    .arg(&file)
                    .args(args),
            )
        };
        let listed: Vec<String> = q(&["--list", "-a"]).lines().map(str::to_string).collect();
        assert_eq!(listed, i.auto, "ifquery --list -a");
        for name in [mgmt, "cloudbr0", "cloudbr1"] {
            let opts: Vec<(String, String)> = q(&[name])
                .lines()
                .filter_map(|l| {
                    l.split_once(": ")
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                })
                .filter(|(k, _)| k != "broadcast")
                .collect();
            assert_eq!(&opts, &i.ifaces[name].1, "ifquery {name}");
        }
        if net == "openvswitch" {
            let ovs: Vec<String> = q(&["--list", "--allow=ovs"])
                .lines()
                .map(str::to_string)
                .collect();
            assert_eq!(ovs, ["cloudbr", "mgmt0", "cloudbr0", "cloudbr1"]);
        }
    }

    if debian {
        check_systemd_job(root);
    }
}

/// The oneshot unit, enabled as `systemctl enable` would, and accepted by systemd's own
/// checker.
fn check_systemd_job(root: &Path) {
    let unit = root.join("etc/systemd/system/hvseed-firstboot.service");
    let wants = root.join("etc/systemd/system/multi-user.target.wants/hvseed-firstboot.service");
    assert_eq!(
        fs::read_link(&wants).unwrap().to_str(),
        Some("/etc/systemd/system/hvseed-firstboot.service")
    );
    let text = fs::read_to_string(&unit).unwrap();
    let key = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .map(str::to_string)
    };
    assert_eq!(key("Type").as_deref(), Some("oneshot"));
    assert_eq!(key("WantedBy").as_deref(), Some("multi-user.target"));
    assert_eq!(
        key("ExecStart").as_deref(),
        Some("/usr/sbin/hvseed-firstboot run --plan /etc/hvseed/plan.json")
    );
    if let Some(analyze) = tool("systemd-analyze", "systemd") {
        // `verify` wants ExecStart's program to exist and be executable: a copy of
        // the unit beside a stand-in, with the path rewritten, and nothing else.
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("hvseed-firstboot");
        fs::write(&exe, "#!/bin/sh\n").unwrap();
        fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).unwrap();
        let copy = dir.path().join("hvseed-firstboot.service");
        fs::write(
            &copy,
            text.replace("/usr/sbin/hvseed-firstboot", exe.to_str().unwrap()),
        )
        .unwrap();
        let out = std::process::Command::new("timeout")
            .arg("60")
            .arg(&analyze)
            .args(["verify", "--man=no", "--recursive-errors=no"])
            .arg(&copy)
            .env("SYSTEMD_LOG_LEVEL", "notice")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        let ours: Vec<&str> = err
            .lines()
            .filter(|l| l.contains("hvseed-firstboot.service"))
            .collect();
        assert!(
            out.status.success() && ours.is_empty(),
            "systemd-analyze verify: {err}"
        );
    }
}

/// Every unit the el9 family masks: libvirtd's sockets and the modular daemons
/// (libvirt 10.0's `libvirt.spec.in`), and firewalld.
const EL9_MASKED: [&str; 23] = [
    "libvirtd.socket",
    "libvirtd-ro.socket",
    "libvirtd-admin.socket",
    "libvirtd-tcp.socket",
    "libvirtd-tls.socket",
    "virtqemud.service",
    "virtqemud.socket",
    "virtqemud-ro.socket",
    "virtqemud-admin.socket",
    "virtnetworkd.service",
    "virtnetworkd.socket",
    "virtnetworkd-ro.socket",
    "virtnetworkd-admin.socket",
    "virtstoraged.service",
    "virtstoraged.socket",
    "virtstoraged-ro.socket",
    "virtstoraged-admin.socket",
    "virtproxyd.socket",
    "virtproxyd-ro.socket",
    "virtproxyd-admin.socket",
    "virtproxyd-tcp.socket",
    "virtproxyd-tls.socket",
    "firewalld.service",
];

const NM_DIR: &str = "/etc/NetworkManager/system-connections";

/// The keyfiles hvseed wrote (id → parsed file), each root's with mode 0600 and read by
/// NetworkManager's own nmcli: `nmcli --offline` parses the file, checks it as
/// NetworkManager does (an invalid UUID, value or missing property is an error) and
/// prints the normalised profile; every key hvseed wrote must come back with the same
/// value (a misspelt key or section would be dropped).
fn el9_keyfiles(root: &Path) -> std::collections::BTreeMap<String, common::Keyfile> {
    let mut out = std::collections::BTreeMap::new();
    let nmcli = nmcli();
    for e in fs::read_dir(root.join(&NM_DIR[1..])).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().into_string().unwrap();
        assert!(
            !name.contains("hvseed"),
            "{name}: NetworkManager would load it as a profile"
        );
        let text = fs::read_to_string(e.path()).unwrap();
        if !text.starts_with("# Written by hvseed-firstboot") {
            continue;
        }
        let meta = fs::metadata(e.path()).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o600, "{name} mode");
        assert_eq!((meta.uid(), meta.gid()), (0, 0), "{name} owner");
        let kf = keyfile(&text);
        let id = kf["connection"]
            .iter()
            .find(|(k, _)| k == "id")
            .unwrap()
            .1
            .clone();
        assert_eq!(name, format!("{id}.nmconnection"));
        if let Some(nmcli) = &nmcli {
            let back = run_ok(
                std::process::Command::new(nmcli)
                    .args(["--offline", "connection", "modify", "connection.id", &id])
                    .stdin(fs::File::open(e.path()).unwrap()),
            );
            let back = keyfile(&back);
            for (section, keys) in &kf {
                for (k, v) in keys {
                    let got = back
                        .get(section)
                        .and_then(|ks| ks.iter().find(|(bk, _)| bk == k))
                        .map(|(_, bv)| bv.as_str());
                    // NetworkManager leaves a default out: bridge.stp is on by default.
                    let default = section == "bridge" && k == "stp" && v == "true";
                    assert!(
                        got == Some(v.as_str()) || (default && got.is_none()),
                        "{name}: [{section}] {k}={v} came back from nmcli as {got:?}"
                    );
                }
            }
        }
        out.insert(id, kf);
    }
    out
}

/// `section.key` of a parsed keyfile.
fn kv<'a>(kf: &'a common::Keyfile, section: &str, key: &str) -> Option<&'a str> {
    kf.get(section)?
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// EL9's own files: libvirtd in its traditional mode (sockets and modular daemons
/// masked, libvirtd.service enabled), the iptables service with firewalld masked,
/// SELinux permissive, chrony, root's SSH login, the FQDN, and the NetworkManager
/// keyfiles.
fn check_el9(root: &Path, orig: &Path, net: &str, sources: &[&str]) {
    check_common(root, orig, net);
    assert!(!orig.join("etc/sysconfig/libvirtd").exists());
    let (v, _) = shell_vars(&read(root, "/etc/sysconfig/libvirtd"));
    assert_eq!(v["LIBVIRTD_ARGS"], "--listen");
    assert_eq!(v.len(), 1, "{v:?}");
    let c = libvirt_conf(&read(root, "/etc/libvirt/libvirt.conf"));
    assert_eq!(c["remote_mode"], "\"legacy\"");
    assert_eq!(c.len(), 1, "{c:?}");
    for u in EL9_MASKED {
        let l = root.join("etc/systemd/system").join(u);
        assert_eq!(
            fs::read_link(&l).unwrap().to_str(),
            Some("/dev/null"),
            "{u}"
        );
    }
    for u in ["libvirtd.service", "iptables.service"] {
        let l = root
            .join("etc/systemd/system/multi-user.target.wants")
            .join(u);
        assert_eq!(
            fs::read_link(&l).unwrap().to_str(),
            Some(format!("/usr/lib/systemd/system/{u}").as_str()),
            "{u} enabled"
        );
    }
    // Permissive, never `disabled`: EL9 ignores that in the file.
    let (v, _) = shell_vars(&read(root, "/etc/selinux/config"));
    assert_eq!(v["SELINUX"], "permissive");
    assert_eq!(v["SELINUXTYPE"], "targeted");
    assert_eq!(read(root, "/etc/hostname"), "kvm1.lab.example.org\n");
    check_sysconfig_iptables(root, &PORTS_TLS, sources);
    let conf = read(root, "/etc/chrony.conf");
    let servers: Vec<Vec<&str>> = conf
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|w| matches!(w.first(), Some(&("server" | "pool" | "peer"))))
        .collect();
    assert_eq!(
        servers,
        [
            vec!["server", "0.pool.ntp.org", "iburst"],
            vec!["server", "ntp1.lab.example.org", "iburst"]
        ]
    );
    assert!(conf.contains("\nsourcedir /run/chrony-dhcp\n"));
    assert_comments_kept("/etc/chrony.conf", &read(orig, "/etc/chrony.conf"), &conf);
    // sshd reads sshd_config.d/*.conf in order, first value wins: hvseed's 00- first.
    assert_eq!(
        read(root, "/etc/ssh/sshd_config"),
        read(orig, "/etc/ssh/sshd_config")
    );
    let drop_in = read(root, "/etc/ssh/sshd_config.d/00-hvseed-root-login.conf");
    let directives: Vec<&str> = drop_in
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .collect();
    assert_eq!(directives, ["PermitRootLogin yes"]);
    let mut drop_ins: Vec<String> = fs::read_dir(root.join("etc/ssh/sshd_config.d"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".conf"))
        .collect();
    drop_ins.sort();
    assert_eq!(drop_ins[0], "00-hvseed-root-login.conf", "{drop_ins:?}");

    check_systemd_job(root);

    // The keyfiles, read back by nmcli; the installer's profiles (the trunk NIC's and
    // its management VLAN's) kept out of NetworkManager's sight, the site's eth1
    // untouched.
    let kfs = el9_keyfiles(root);
    for id in ["eth0", "eth0.100"] {
        let backup = format!("/var/lib/hvseed/orig{NM_DIR}/{id}.nmconnection.hvseed-orig");
        let installer = read(orig, &format!("{NM_DIR}/{id}.nmconnection"));
        assert_eq!(read(root, &backup), installer, "{id}");
        if net == "openvswitch" && id == "eth0.100" {
            // Open vSwitch has no eth0.100 profile: the installer's, which autoconnects
            // (`--onboot=yes`), would raise the management address a second time beside
            // the bridge's; it is retired, kept only as the backup a rollback restores.
            assert!(!root
                .join(&format!("{NM_DIR}/{id}.nmconnection")[1..])
                .exists());
            assert!(!installer.contains("autoconnect=false"), "{installer}");
        }
    }
    assert_eq!(
        read(root, &format!("{NM_DIR}/eth1.nmconnection")),
        read(orig, &format!("{NM_DIR}/eth1.nmconnection"))
    );
    let uuid = |id: &str| kv(&kfs[id], "connection", "uuid").unwrap().to_string();
    let eth0 = &kfs["eth0"];
    assert_eq!(kv(eth0, "connection", "type"), Some("ethernet"));
    assert_eq!(kv(eth0, "connection", "interface-name"), Some("eth0"));
    assert_eq!(kv(eth0, "ethernet", "mac-address"), Some(MAC_UPPER));
    assert_ne!(
        kv(eth0, "connection", "uuid"),
        kv(
            &keyfile(&read(orig, &format!("{NM_DIR}/eth0.nmconnection"))),
            "connection",
            "uuid"
        ),
        "a profile of hvseed's own, not the installer's edited"
    );
    for kf in kfs.values() {
        assert_eq!(kv(kf, "connection", "autoconnect-priority"), Some("10"));
    }
    let mgmt_ip = |kf: &common::Keyfile| {
        assert_eq!(kv(kf, "ipv4", "method"), Some("manual"));
        assert_eq!(
            kv(kf, "ipv4", "address1"),
            Some("192.168.42.11/24,192.168.42.1")
        );
        assert_eq!(kv(kf, "ipv4", "dns"), Some("192.168.42.1;192.168.42.2;"));
    };
    let with_ip: Vec<&String> = kfs
        .iter()
        .filter(|(_, kf)| kv(kf, "ipv4", "address1").is_some())
        .map(|(id, _)| id)
        .collect();
    if net == "linux-bridge" {
        let mut ids: Vec<&str> = kfs.keys().map(String::as_str).collect();
        ids.sort();
        assert_eq!(
            ids,
            ["cloudbr0", "cloudbr1", "eth0", "eth0.100", "eth0.200", "eth0.300"]
        );
        assert_eq!(kv(eth0, "ipv4", "method"), Some("disabled"));
        let m = &kfs["eth0.100"];
        assert_eq!(kv(m, "connection", "type"), Some("vlan"));
        assert_eq!(kv(m, "vlan", "id"), Some("100"));
        assert_eq!(kv(m, "vlan", "parent"), Some("eth0"));
        mgmt_ip(m);
        assert_eq!(with_ip, ["eth0.100"]);
        for (br, vlan) in [("cloudbr0", "200"), ("cloudbr1", "300")] {
            let b = &kfs[br];
            assert_eq!(kv(b, "connection", "type"), Some("bridge"));
            assert_eq!(kv(b, "bridge", "stp"), Some("true"));
            assert_eq!(kv(b, "bridge", "forward-delay"), Some("5"));
            assert_eq!(kv(b, "ipv4", "method"), Some("disabled"));
            let port = &kfs[&format!("eth0.{vlan}")];
            assert_eq!(kv(port, "vlan", "id"), Some(vlan));
            assert_eq!(kv(port, "vlan", "parent"), Some("eth0"));
            assert_eq!(kv(port, "connection", "master"), Some(uuid(br).as_str()));
            assert_eq!(kv(port, "connection", "slave-type"), Some("bridge"));
            assert!(
                !port.contains_key("ipv4"),
                "a bridge port has no IP settings"
            );
        }
    } else {
        // The trunk bridge holds the NIC; each VLAN's bridge is a bridge of its own
        // with its internal interface, joined to the trunk by a patch pair tagged on
        // the trunk's side.
        let by_if = |kind: &str, ifname: &str| -> Vec<&String> {
            kfs.iter()
                .filter(|(_, kf)| {
                    kv(kf, "connection", "type") == Some(kind)
                        && kv(kf, "connection", "interface-name") == Some(ifname)
                })
                .map(|(id, _)| id)
                .collect()
        };
        let master_of = |id: &str| {
            let m = kv(&kfs[id], "connection", "master").unwrap();
            kfs.iter()
                .find(|(_, kf)| kv(kf, "connection", "uuid") == Some(m))
                .map(|(id, _)| id.clone())
                .unwrap_or_else(|| panic!("{id}: master {m} is no profile of hvseed's"))
        };
        let bridge_of_port = |port: &str| -> String {
            let br = master_of(port);
            assert_eq!(kv(&kfs[&br], "connection", "type"), Some("ovs-bridge"));
            kv(&kfs[&br], "connection", "interface-name")
                .unwrap()
                .to_string()
        };
        assert_eq!(kv(eth0, "connection", "slave-type"), Some("ovs-port"));
        assert_eq!(bridge_of_port(&master_of("eth0")), "cloudbr");
        for (br, vlan) in [("mgmt0", 100), ("cloudbr0", 200), ("cloudbr1", 300)] {
            assert_eq!(by_if("ovs-bridge", br).len(), 1, "{br}");
            let internal = by_if("ovs-interface", br);
            assert_eq!(internal.len(), 1, "{br}");
            let i = &kfs[internal[0]];
            assert_eq!(kv(i, "ovs-interface", "type"), Some("internal"));
            assert_eq!(bridge_of_port(&master_of(internal[0])), br);
            if br == "mgmt0" {
                mgmt_ip(i);
            } else {
                assert_eq!(kv(i, "ipv4", "method"), Some("disabled"));
            }
            // The patch pair.
            let patches: Vec<&String> = kfs
                .iter()
                .filter(|(_, kf)| kv(kf, "ovs-interface", "type") == Some("patch"))
                .filter(|(id, _)| {
                    let b = bridge_of_port(&master_of(id));
                    b == br
                        || (b == "cloudbr" && {
                            let port = master_of(id);
                            kv(&kfs[&port], "ovs-port", "tag") == Some(&vlan.to_string())
                        })
                })
                .map(|(id, _)| id)
                .collect();
            assert_eq!(patches.len(), 2, "{br}: {patches:?}");
            let ifname = |id: &str| kv(&kfs[id], "connection", "interface-name").unwrap();
            let peer = |id: &str| kv(&kfs[id], "ovs-patch", "peer").unwrap();
            assert_eq!(peer(patches[0]), ifname(patches[1]));
            assert_eq!(peer(patches[1]), ifname(patches[0]));
            let tags: Vec<Option<&str>> = patches
                .iter()
                .map(|p| kv(&kfs[&master_of(p)], "ovs-port", "tag"))
                .collect();
            assert!(tags.contains(&None), "{br}: untagged on its own side");
        }
        let mgmt_if = by_if("ovs-interface", "mgmt0");
        assert_eq!(with_ip, mgmt_if);
    }
}

use std::os::unix::fs::{MetadataExt, PermissionsExt};

fn full_case(os: &str, net: &str, sources: &[&str]) {
    let (tmp, root) = fixture_root(os);
    let orig = repo_root().join("tests/fixtures/roots").join(os);
    let plan = write_plan(tmp.path(), &plan_json(os, net, sources));

    // Dry run first: prints what would change, writes nothing.
    let before = tree_sum(&root);
    let out = apply(&root, &plan, &["--dry-run", "--diff"]);
    assert_eq!(tree_sum(&root), before, "dry run wrote something");
    assert!(
        out.contains("would change /etc/libvirt/libvirtd.conf"),
        "{out}"
    );
    assert!(out.contains("+listen_tcp = 1"), "{out}");

    let out = apply(&root, &plan, &[]);
    assert!(!out.contains("\n0 changed"), "{out}");
    match os {
        "centos6" => check_centos6(&root, &orig, net, sources),
        "el9" => check_el9(&root, &orig, net, sources),
        _ => check_ubuntu(&root, &orig, os, net, sources),
    }

    // Idempotent: byte-identical tree, "0 changed".
    let sum = tree_sum(&root);
    let out = apply(&root, &plan, &[]);
    assert!(out.lines().last() == Some("0 changed"), "{out}");
    assert_eq!(tree_sum(&root), sum, "second apply changed the tree");
    let out = apply(&root, &plan, &["--dry-run"]);
    assert!(out.starts_with("0 to change"), "{out}");
}

#[test]
fn centos6_linux_bridge() {
    full_case("centos6", "linux-bridge", &[]);
}

#[test]
fn centos6_openvswitch_restricted_sources() {
    full_case(
        "centos6",
        "openvswitch",
        &["192.168.42.0/24", "10.1.0.0/16"],
    );
}

#[test]
fn ubuntu1204_linux_bridge_restricted_sources() {
    full_case("ubuntu1204", "linux-bridge", &["192.168.42.0/24"]);
}

#[test]
fn ubuntu1204_openvswitch() {
    full_case("ubuntu1204", "openvswitch", &[]);
}

#[test]
fn debian12_linux_bridge() {
    full_case("debian12", "linux-bridge", &[]);
}

#[test]
fn debian12_openvswitch_restricted_sources() {
    full_case(
        "debian12",
        "openvswitch",
        &["192.168.42.0/24", "10.1.0.0/16"],
    );
}

#[test]
fn ubuntu2204_linux_bridge() {
    full_case("ubuntu2204", "linux-bridge", &[]);
}

#[test]
fn ubuntu2204_openvswitch_restricted_sources() {
    full_case("ubuntu2204", "openvswitch", &["192.168.42.0/24"]);
}

#[test]
fn ubuntu2404_linux_bridge_restricted_sources() {
    full_case(
        "ubuntu2404",
        "linux-bridge",
        &["192.168.42.0/24", "10.1.0.0/16"],
    );
}

#[test]
fn ubuntu2404_openvswitch() {
    full_case("ubuntu2404", "openvswitch", &[]);
}

#[test]
fn el9_linux_bridge() {
    full_case("el9", "linux-bridge", &[]);
}

#[test]
fn el9_openvswitch_restricted_sources() {
    full_case("el9", "openvswitch", &["192.168.42.0/24", "10.1.0.0/16"]);
}

/// The fixture's own profiles (the installer's eth0 and eth0.100, the site's eth1) are
/// keyfiles NetworkManager reads, with the settings the tests rely on.
#[test]
fn el9_fixture_keyfiles_are_profiles_networkmanager_reads() {
    let Some(nmcli) = nmcli() else { return };
    let dir = repo_root().join("tests/fixtures/roots/el9/etc/NetworkManager/system-connections");
    for (id, method, addr, autoconnect) in [
        ("eth0", "auto", None, Some("false")),
        // `--onboot=yes`: autoconnect, NetworkManager's default, so no key.
        (
            "eth0.100",
            "manual",
            Some("192.168.42.11/24,192.168.42.1"),
            None,
        ),
        ("eth1", "manual", Some("10.9.9.12/24"), None),
    ] {
        let back = keyfile(&run_ok(
            std::process::Command::new(&nmcli)
                .args(["--offline", "connection", "modify", "connection.id", id])
                .stdin(fs::File::open(dir.join(format!("{id}.nmconnection"))).unwrap()),
        ));
        assert_eq!(kv(&back, "ipv4", "method"), Some(method), "{id}");
        assert_eq!(kv(&back, "ipv4", "address1"), addr, "{id}");
        assert_eq!(kv(&back, "connection", "autoconnect"), autoconnect, "{id}");
    }
}

/// A plan that says `disabled` still gets permissive in the file: EL9 ignores
/// `SELINUX=disabled` there (only the `selinux=0` kernel argument turns SELinux off).
#[test]
fn el9_never_writes_selinux_disabled() {
    let (tmp, root) = fixture_root("el9");
    let mut p = plan_json("el9", "linux-bridge", &[]);
    p["security"]["selinux"] = serde_json::json!("disabled");
    let plan = write_plan(tmp.path(), &p);
    apply(&root, &plan, &[]);
    let (v, _) = shell_vars(&read(&root, "/etc/selinux/config"));
    assert_eq!(v["SELINUX"], "permissive");
}

/// A keyfile of hvseed's that someone made readable is made root's 0600 again:
/// NetworkManager ignores it otherwise.
#[test]
fn el9_keyfiles_are_made_private_again() {
    let (tmp, root) = fixture_root("el9");
    let plan = write_plan(tmp.path(), &plan_json("el9", "linux-bridge", &[]));
    apply(&root, &plan, &[]);
    let f = root.join("etc/NetworkManager/system-connections/cloudbr0.nmconnection");
    fs::set_permissions(&f, fs::Permissions::from_mode(0o644)).unwrap();
    let out = apply(&root, &plan, &[]);
    assert!(
        out.contains("changed /etc/NetworkManager/system-connections/cloudbr0.nmconnection"),
        "{out}"
    );
    assert_eq!(
        fs::metadata(&f).unwrap().permissions().mode() & 0o7777,
        0o600
    );
    assert!(apply(&root, &plan, &[]).ends_with("0 changed\n"));
}

#[test]
fn el9_switching_network_type_removes_the_other_keyfiles() {
    let (tmp, root) = fixture_root("el9");
    let lb = write_plan(tmp.path(), &plan_json("el9", "linux-bridge", &[]));
    apply(&root, &lb, &[]);
    let ovs = tmp.path().join("ovs.json");
    fs::write(&ovs, plan_json("el9", "openvswitch", &[]).to_string()).unwrap();
    apply(&root, &ovs, &[]);
    let dir = root.join("etc/NetworkManager/system-connections");
    for id in ["eth0.200", "eth0.300"] {
        assert!(
            !dir.join(format!("{id}.nmconnection")).exists(),
            "stale {id}"
        );
    }
    // Neither hvseed's eth0.100 (the Linux bridge's) nor the installer's, which
    // autoconnects: either would raise the management address beside mgmt0's. The
    // installer's stays the backup a rollback restores.
    let installer = read(
        &repo_root().join("tests/fixtures/roots/el9"),
        "/etc/NetworkManager/system-connections/eth0.100.nmconnection",
    );
    assert!(!dir.join("eth0.100.nmconnection").exists());
    assert_eq!(
        read(
            &root,
            "/var/lib/hvseed/orig/etc/NetworkManager/system-connections/eth0.100.nmconnection.hvseed-orig"
        ),
        installer
    );
    assert!(dir.join("mgmt0-if.nmconnection").exists());
    assert!(apply(&root, &ovs, &[]).ends_with("0 changed\n"));
    apply(&root, &lb, &[]);
    assert!(!dir.join("mgmt0-if.nmconnection").exists());
    assert!(read(
        &root,
        "/etc/NetworkManager/system-connections/eth0.100.nmconnection"
    )
    .starts_with("# Written by hvseed-firstboot"));
    assert!(dir.join("eth1.nmconnection").exists(), "site profile kept");
    assert!(apply(&root, &lb, &[]).ends_with("0 changed\n"));
}

/// A root without a password (locked, as Ubuntu's installer leaves it) may log in
/// with a key only.
#[test]
fn debian12_without_a_root_password_allows_keys_only() {
    let (tmp, root) = fixture_root("debian12");
    let shadow = read(&root, "/etc/shadow");
    let locked: String = shadow
        .lines()
        .map(|l| match l.split_once(':') {
            Some(("root", rest)) => format!("root:!{}\n", rest.split_once(':').unwrap().1),
            _ => format!("{l}\n"),
        })
        .collect();
    fs::write(root.join("etc/shadow"), locked).unwrap();
    let plan = write_plan(tmp.path(), &plan_json("debian12", "linux-bridge", &[]));
    apply(&root, &plan, &[]);
    let drop_in = read(&root, "/etc/ssh/sshd_config.d/00-hvseed-root-login.conf");
    assert!(
        drop_in
            .lines()
            .any(|l| l == "PermitRootLogin prohibit-password"),
        "{drop_in}"
    );
    assert!(
        !drop_in.contains("$6$"),
        "no password hash copied: {drop_in}"
    );
}

#[test]
fn switching_network_type_converges() {
    let (tmp, root) = fixture_root("centos6");
    let lb = write_plan(tmp.path(), &plan_json("centos6", "linux-bridge", &[]));
    apply(&root, &lb, &[]);
    let ovs = tmp.path().join("ovs.json");
    fs::write(&ovs, plan_json("centos6", "openvswitch", &[]).to_string()).unwrap();
    apply(&root, &ovs, &[]);
    let (eth0, _) = shell_vars(&read(&root, "/etc/sysconfig/network-scripts/ifcfg-eth0"));
    assert_eq!(eth0["TYPE"], "OVSPort");
    let (br, _) = shell_vars(&read(
        &root,
        "/etc/sysconfig/network-scripts/ifcfg-cloudbr0",
    ));
    assert_eq!(br["TYPE"], "OVSBridge");
    assert!(!br.contains_key("STP") && !br.contains_key("DELAY"));
    let scripts = root.join("etc/sysconfig/network-scripts");
    for dev in ["eth0.100", "eth0.200", "eth0.300"] {
        assert!(
            !scripts.join(format!("ifcfg-{dev}")).exists(),
            "stale ifcfg-{dev} left"
        );
    }
    assert!(root.join("etc/modprobe.d/hvseed-bridge.conf").exists());
    // And back: the OVS bridges and the blacklist go, the site's ifcfg-eth1 stays.
    let out = apply(&root, &lb, &[]);
    assert!(
        out.contains("(removed: written by hvseed for another plan)"),
        "{out}"
    );
    for dev in ["cloudbr", "mgmt0"] {
        assert!(
            !scripts.join(format!("ifcfg-{dev}")).exists(),
            "stale ifcfg-{dev} left"
        );
    }
    assert!(!root.join("etc/modprobe.d/hvseed-bridge.conf").exists());
    assert!(scripts.join("ifcfg-eth1").exists() && scripts.join("ifcfg-eth0.100").exists());
    assert!(apply(&root, &lb, &[]).ends_with("0 changed\n"));
    // The originals are still the installer's, not the first run's output.
    assert!(read(
        &root,
        "/var/lib/hvseed/orig/etc/sysconfig/network-scripts/ifcfg-eth0.hvseed-orig"
    )
    .contains("BOOTPROTO=dhcp"));
}

#[test]
fn diff_output_is_a_patch_that_reproduces_the_result() {
    if !std::process::Command::new("patch")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        panic!("`patch` (Debian package patch) is needed to check --diff output");
    }
    let (tmp, root) = fixture_root("ubuntu1204");
    let plan = write_plan(tmp.path(), &plan_json("ubuntu1204", "linux-bridge", &[]));
    let out = apply(&root, &plan, &["--dry-run", "--diff"]);
    let diff: String = out
        .lines()
        .filter(|l| !l.starts_with("would change ") && !l.contains("to change (dry run"))
        .map(|l| format!("{l}\n"))
        .collect();
    // Apply the diff with patch(1) to a second copy; it must equal what apply writes.
    let (_t2, copy) = fixture_root("ubuntu1204");
    let p = tmp.path().join("changes.diff");
    fs::write(&p, &diff).unwrap();
    let st = std::process::Command::new("patch")
        .args(["-p1", "-s", "-f", "-i"])
        .arg(&p)
        .current_dir(&copy)
        .status()
        .unwrap();
    assert!(st.success(), "patch rejected the diff:\n{diff}");
    apply(&root, &plan, &[]);
    for f in [
        "/etc/network/interfaces",
        "/etc/libvirt/libvirtd.conf",
        "/etc/cloudstack/agent/agent.properties",
        "/lib/ufw/user.rules",
        "/etc/hosts",
        "/etc/init/hvseed-firstboot.conf",
    ] {
        assert_eq!(read(&copy, f), read(&root, f), "{f}");
    }
}

#[test]
fn symlinks_never_lead_out_of_root() {
    let (tmp, root) = fixture_root("centos6");
    let outside = tmp.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("config"), "SELINUX=enforcing\n").unwrap();
    // An absolute link and a `..` link that would escape ROOT if followed on the host.
    fs::remove_dir_all(root.join("etc/selinux")).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("etc/selinux")).unwrap();
    fs::remove_file(root.join("etc/ntp.conf")).unwrap();
    std::os::unix::fs::symlink(
        "../../../../../../../outside/ntp.conf",
        root.join("etc/ntp.conf"),
    )
    .unwrap();
    fs::write(outside.join("ntp.conf"), "server 0.centos.pool.ntp.org\n").unwrap();
    let before = tree_sum(&outside);
    let plan = write_plan(tmp.path(), &plan_json("centos6", "linux-bridge", &[]));
    apply(&root, &plan, &[]);
    assert_eq!(
        tree_sum(&outside),
        before,
        "a file outside ROOT was written"
    );
    // Both were resolved inside ROOT, as the installed system would see them.
    let inside = root.join(outside.strip_prefix("/").unwrap()).join("config");
    assert!(
        read(&root, inside.strip_prefix(&root).unwrap().to_str().unwrap())
            .contains("SELINUX=permissive")
    );
    assert!(read(&root, "/outside/ntp.conf").contains("server 0.pool.ntp.org"));
}

#[test]
fn bad_inputs_name_the_file_and_leave_root_untouched() {
    let (tmp, root) = fixture_root("centos6");
    let before = tree_sum(&root);
    let check = |args: &[&str], plan: &Path, needle: &str| {
        let out = run(agent()
            .arg("apply")
            .arg("--plan")
            .arg(plan)
            .arg("--root")
            .arg(&root)
            .args(args));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(err.contains(needle), "{needle:?} not in {err}");
    };
    // Unknown schema.
    let mut p = plan_json("centos6", "linux-bridge", &[]);
    p["schema"] = 99.into();
    let bad = tmp.path().join("schema.json");
    fs::write(&bad, p.to_string()).unwrap();
    check(&[], &bad, "schema 99 is not supported");
    // Not JSON.
    let junk = tmp.path().join("junk.json");
    fs::write(&junk, "{ not json").unwrap();
    check(&[], &junk, "junk.json: not a valid hvseed plan");
    // A value that fails validation.
    let mut p = plan_json("centos6", "linux-bridge", &[]);
    p["network"]["trunk_nic"] = "eth0; rm -rf /".into();
    let inj = tmp.path().join("inj.json");
    fs::write(&inj, p.to_string()).unwrap();
    check(&[], &inj, "network.trunk_nic");
    // Missing plan.
    check(
        &[],
        &tmp.path().join("nope.json"),
        "nope.json: cannot read the plan",
    );
    // An unreadable managed file (a directory where a file should be): nothing written.
    let good = write_plan(tmp.path(), &plan_json("centos6", "linux-bridge", &[]));
    fs::remove_file(root.join("etc/sysconfig/iptables")).unwrap();
    fs::create_dir(root.join("etc/sysconfig/iptables")).unwrap();
    let before_bad = tree_sum(&root);
    check(&[], &good, "/etc/sysconfig/iptables");
    assert_eq!(tree_sum(&root), before_bad, "ROOT touched after an error");
    fs::remove_dir(root.join("etc/sysconfig/iptables")).unwrap();
    // Not UTF-8.
    fs::write(root.join("etc/sysconfig/iptables"), b"\xff\xfe*filter\n").unwrap();
    let before_bin = tree_sum(&root);
    check(&[], &good, "/etc/sysconfig/iptables: not a text file");
    assert_eq!(tree_sum(&root), before_bin);
    let _ = before;
    // Missing root.
    let out = run(agent()
        .arg("apply")
        .arg("--plan")
        .arg(&good)
        .arg("--root")
        .arg(tmp.path().join("no-such-root")));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-root"));
}

#[test]
fn mode_and_owner_survive_the_edit_and_the_backup() {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("\n!!!!!!!! chown needs root: owner preservation NOT checked !!!!!!!!\n");
        return;
    }
    let (tmp, root) = fixture_root("centos6");
    let f = root.join("etc/libvirt/qemu.conf");
    std::os::unix::fs::chown(&f, Some(107), Some(36)).unwrap();
    fs::set_permissions(&f, fs::Permissions::from_mode(0o640)).unwrap();
    let plan = write_plan(tmp.path(), &plan_json("centos6", "linux-bridge", &[]));
    apply(&root, &plan, &[]);
    for p in [f.clone(), root.join("etc/libvirt/qemu.conf.hvseed-orig")] {
        let m = fs::metadata(&p).unwrap();
        assert_eq!(
            (m.uid(), m.gid(), m.mode() & 0o7777),
            (107, 36, 0o640),
            "{}",
            p.display()
        );
    }
    // New files are root's, 0644 (0755 for the init script).
    let m = fs::metadata(root.join("etc/sysconfig/network-scripts/ifcfg-eth0.100")).unwrap();
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (0, 0, 0o644));
}

#[test]
fn hosts_keeps_localhost_when_an_installer_put_the_name_on_127_0_0_1() {
    let (tmp, root) = fixture_root("centos6");
    fs::write(
        root.join("etc/hosts"),
        "127.0.0.1   kvm1.lab.example.org kvm1 localhost localhost.localdomain\n::1 localhost6\n",
    )
    .unwrap();
    let plan = write_plan(tmp.path(), &plan_json("centos6", "linux-bridge", &[]));
    apply(&root, &plan, &[]);
    let hosts = read(&root, "/etc/hosts");
    let live: Vec<Vec<&str>> = hosts
        .lines()
        .map(|l| {
            l.split('#')
                .next()
                .unwrap()
                .split_whitespace()
                .collect::<Vec<_>>()
        })
        .filter(|w| !w.is_empty())
        .collect();
    assert!(
        live.contains(&vec!["127.0.0.1", "localhost", "localhost.localdomain"]),
        "{hosts}"
    );
    assert!(
        live.contains(&vec!["192.168.42.11", "kvm1.lab.example.org", "kvm1"]),
        "{hosts}"
    );
    let named: Vec<_> = live.iter().filter(|w| w.contains(&"kvm1")).collect();
    assert_eq!(named.len(), 1, "{hosts}");
    assert!(apply(&root, &plan, &[]).ends_with("0 changed\n"));
}

// ------------------------------------------- write errors: all or nothing (defect 8)

/// Runs apply, expects it to fail naming `path`, and ROOT to be exactly as before.
fn fails_and_changes_nothing(root: &Path, plan: &Path, path: &str) -> String {
    let before = tree_sum(root);
    let out = run_guarded(
        agent()
            .arg("apply")
            .arg("--plan")
            .arg(plan)
            .arg("--root")
            .arg(root),
    );
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("{path}: cannot write it")),
        "{path} not named: {err}"
    );
    assert!(err.contains("nothing was changed"), "{err}");
    assert_eq!(
        tree_sum(root),
        before,
        "ROOT changed by a failed apply: {err}"
    );
    err
}

#[test]
fn a_write_error_late_in_apply_leaves_every_file_as_it_was() {
    // Failures that stop even root, found only when writing (not while reading), and
    // placed after most files in apply's order: the el6 start links (last), ntp.conf
    // (middle), and the precise interfaces file.
    let tmp = tempfile::tempdir().unwrap();
    let plan = write_plan(tmp.path(), &plan_json("centos6", "linux-bridge", &[]));

    // A regular file where the directory of a start link must be.
    let (_t1, root) = fixture_root("centos6");
    fs::remove_dir_all(root.join("etc/rc.d/rc3.d")).unwrap();
    fs::write(root.join("etc/rc.d/rc3.d"), "not a directory\n").unwrap();
    fails_and_changes_nothing(&root, &plan, "/etc/rc.d/rc3.d/S99hvseed-firstboot");

    // A directory in the way of ntp.conf's temporary file.
    let (_t2, root) = fixture_root("centos6");
    fs::create_dir(root.join("etc/.ntp.conf.hvseed-tmp")).unwrap();
    fs::write(root.join("etc/.ntp.conf.hvseed-tmp/x"), "").unwrap();
    let err = fails_and_changes_nothing(&root, &plan, "/etc/ntp.conf");
    assert!(err.contains(".ntp.conf.hvseed-tmp is in the way"), "{err}");
    // Once it is gone, the same apply succeeds.
    fs::remove_dir_all(root.join("etc/.ntp.conf.hvseed-tmp")).unwrap();
    apply(&root, &plan, &[]);
    assert!(read(&root, "/etc/ntp.conf").contains("server 0.pool.ntp.org iburst"));

    let uplan = write_plan(tmp.path(), &plan_json("ubuntu1204", "linux-bridge", &[]));
    let (_t3, root) = fixture_root("ubuntu1204");
    fs::create_dir_all(root.join("etc/network/.interfaces.hvseed-tmp/x")).unwrap();
    fails_and_changes_nothing(&root, &uplan, "/etc/network/interfaces");
}

#[test]
fn a_failed_commit_puts_back_every_file_already_replaced() {
    use hvseed_firstboot::{apply as ap, fsroot::Root, Plan};
    // ROOT changes under apply after it read the files: iptables (in the middle of the
    // el6 order) becomes a directory, so replacing it fails after 8 files were replaced.
    let (_t, root_dir) = fixture_root("centos6");
    let plan = Plan::from_json(
        &plan_json("centos6", "linux-bridge", &[]).to_string(),
        "plan.json",
    )
    .unwrap();
    let root = Root::open(&root_dir).unwrap();
    let changes = ap::compute(&plan, &root, true).unwrap();
    let ipt = root_dir.join("etc/sysconfig/iptables");
    fs::remove_file(&ipt).unwrap();
    fs::create_dir(&ipt).unwrap();
    fs::write(ipt.join("keep"), "x").unwrap();
    let before = tree_sum(&root_dir);
    let staged = ap::stage(&changes, &root).unwrap();
    let err = staged.commit().unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("/etc/sysconfig/iptables: cannot write it"),
        "{msg}"
    );
    for p in [
        "/etc/libvirt/libvirtd.conf",
        "/etc/hosts",
        "/etc/ntp.conf",
        "/etc/sysconfig/network",
    ] {
        assert!(msg.contains(p), "{p} not listed as put back: {msg}");
    }
    assert!(msg.ends_with("nothing was changed"), "{msg}");
    match err {
        ap::ApplyError::Write { rollback, .. } => {
            assert!(rollback.complete());
            assert_eq!(rollback.restored.len(), 8, "{:?}", rollback.restored);
        }
        other => panic!("{other:?}"),
    }
    // Byte for byte, mode for mode, and no temporary, backup or undo file left.
    assert_eq!(tree_sum(&root_dir), before, "{msg}");
}

// ------------------------------------------------ bounded inputs (defect 12)

fn apply_err(root: &Path, plan: &Path, extra: &[&str]) -> String {
    let out = run_guarded(
        agent()
            .arg("apply")
            .arg("--plan")
            .arg(plan)
            .arg("--root")
            .arg(root)
            .args(extra),
    );
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "{err}");
    err
}

#[test]
fn a_plan_that_is_a_device_a_fifo_or_huge_is_refused() {
    let (tmp, root) = fixture_root("centos6");
    let before = tree_sum(&root);
    let err = apply_err(&root, Path::new("/dev/zero"), &[]);
    assert!(
        err.contains("/dev/zero: cannot read the plan: it is a character device"),
        "{err}"
    );
    let fifo = tmp.path().join("plan.fifo");
    mkfifo(&fifo);
    let err = apply_err(&root, &fifo, &["--dry-run"]);
    assert!(
        err.contains("plan.fifo: cannot read the plan: it is a FIFO"),
        "{err}"
    );
    // A valid plan padded past the limit (JSON allows the whitespace).
    let mut big = plan_json("centos6", "linux-bridge", &[]).to_string();
    big.push_str(&" ".repeat(hvseed_firstboot::bounded::PLAN_LIMIT as usize));
    let bigp = tmp.path().join("big.json");
    fs::write(&bigp, big).unwrap();
    let err = apply_err(&root, &bigp, &[]);
    assert!(
        err.contains("big.json: cannot read the plan: it is larger than 1 MiB"),
        "{err}"
    );
    // verify and run read the plan the same way.
    for verb in ["verify", "run"] {
        let out = run_guarded(
            agent()
                .arg(verb)
                .args(["--plan", "/dev/zero", "--root"])
                .arg(&root),
        );
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("a character device"));
    }
    assert_eq!(tree_sum(&root), before);
}

#[test]
fn a_fifo_or_a_huge_file_at_an_edited_path_is_an_error_not_a_hang() {
    let tmp = tempfile::tempdir().unwrap();
    for (os, paths) in [
        (
            "centos6",
            &[
                "/etc/hosts",
                "/etc/ntp.conf",
                "/etc/sysconfig/iptables",
                "/etc/sysconfig/network-scripts/ifcfg-eth0",
                // hvseed's own file for the other network type (read before removal).
                "/etc/sysconfig/network-scripts/ifcfg-eth0.100",
            ][..],
        ),
        (
            "ubuntu1204",
            &[
                "/etc/hosts",
                "/etc/network/interfaces",
                "/lib/ufw/user.rules",
                "/etc/init/libvirt-bin.conf",
            ][..],
        ),
    ] {
        let plan = write_plan(tmp.path(), &plan_json(os, "openvswitch", &[]));
        for path in paths {
            let (_t, root) = fixture_root(os);
            let host = root.join(&path[1..]);
            fs::create_dir_all(host.parent().unwrap()).unwrap();
            mkfifo(&host);
            let before = tree_sum(&root);
            for extra in [&[][..], &["--dry-run"][..], &["--dry-run", "--diff"][..]] {
                let err = apply_err(&root, &plan, extra);
                assert!(
                    err.contains(&format!("{path}: cannot read it: it is a FIFO")),
                    "{os} {path} {extra:?}: {err}"
                );
                assert!(err.contains("nothing was changed"), "{err}");
                assert_eq!(tree_sum(&root), before, "{os} {path}");
            }
        }
    }
    // Larger than the limit: refused, named, nothing written.
    let (_t, root) = fixture_root("centos6");
    let plan = write_plan(tmp.path(), &plan_json("centos6", "linux-bridge", &[]));
    let mut hosts = read(&root, "/etc/hosts");
    while hosts.len() as u64 <= hvseed_firstboot::bounded::EDIT_LIMIT {
        hosts.push_str("10.9.9.9 filler.example.org filler\n");
    }
    fs::write(root.join("etc/hosts"), &hosts).unwrap();
    let before = tree_sum(&root);
    let err = apply_err(&root, &plan, &[]);
    assert!(
        err.contains("/etc/hosts: cannot read it: it is larger than 8 MiB"),
        "{err}"
    );
    assert_eq!(tree_sum(&root), before);
}

/// The reported case itself: `chattr +i` on iptables (root on a filesystem with
/// attributes only; elsewhere the portable tests above cover the same code).
#[test]
fn an_immutable_iptables_file_leaves_root_as_it_was() {
    struct Mutable(std::path::PathBuf);
    impl Drop for Mutable {
        fn drop(&mut self) {
            let _ = std::process::Command::new("chattr")
                .arg("-i")
                .arg(&self.0)
                .status();
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let plan = write_plan(tmp.path(), &plan_json("centos6", "linux-bridge", &[]));
    let (_t, root) = fixture_root("centos6");
    let ipt = root.join("etc/sysconfig/iptables");
    let guard = Mutable(ipt.clone());
    let made = std::process::Command::new("chattr")
        .arg("+i")
        .arg(&ipt)
        .output()
        .is_ok_and(|o| o.status.success());
    if !made || fs::OpenOptions::new().append(true).open(&ipt).is_ok() {
        eprintln!(
            "\n!!!!!!!! chattr +i is not possible here (needs root and ext2/3/4, xfs or btrfs): \
             THIS TEST DID NOT RUN !!!!!!!!\n"
        );
        return;
    }
    let err = fails_and_changes_nothing(&root, &plan, "/etc/sysconfig/iptables");
    assert!(
        err.contains(
            "the 8 files already written were put back or removed (/etc/libvirt/libvirtd.conf"
        ),
        "{err}"
    );
    drop(guard);
    apply(&root, &plan, &[]);
}

/// A file apply creates (here the el6 start link in rc3.d) whose directory cannot be
/// fsynced after the rename: the new file must go again with the rest, not stay behind
/// while the error says "nothing was changed". A directory that is writable but not
/// readable gives exactly that (rename works, opening it to fsync fails with EACCES)
/// for any user but root, so as root the agent runs as nobody on a ROOT nobody owns.
#[test]
fn a_failed_directory_fsync_after_creating_a_file_removes_it_again() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let (t, root) = fixture_root("centos6");
    let plan = write_plan(t.path(), &plan_json("centos6", "linux-bridge", &[]));
    // SAFETY: geteuid(2) has no preconditions.
    let as_root = unsafe { libc::geteuid() } == 0;
    if as_root {
        // The agent must be reachable by nobody (not so under a 0700 home).
        let runs = agent()
            .arg("--version")
            .uid(65534)
            .gid(65534)
            .output()
            .is_ok_and(|o| o.status.success());
        if !runs {
            eprintln!(
                "\n!!!!!!!! the agent cannot run as nobody here: THIS TEST DID NOT RUN !!!!!!!!\n"
            );
            return;
        }
        let st = std::process::Command::new("chown")
            .args(["-R", "65534:65534"])
            .arg(t.path())
            .status()
            .unwrap();
        assert!(st.success());
        fs::set_permissions(t.path(), fs::Permissions::from_mode(0o755)).unwrap();
    }
    let before = tree_sum(&root);
    let rc3 = root.join("etc/rc.d/rc3.d");
    fs::set_permissions(&rc3, fs::Permissions::from_mode(0o333)).unwrap();
    let mut cmd = agent();
    cmd.arg("apply")
        .arg("--plan")
        .arg(&plan)
        .arg("--root")
        .arg(&root);
    if as_root {
        cmd.uid(65534).gid(65534);
    }
    let out = run_guarded(&mut cmd);
    fs::set_permissions(&rc3, fs::Permissions::from_mode(0o755)).unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("/etc/rc.d/rc3.d/S99hvseed-firstboot: cannot write it"),
        "{err}"
    );
    assert!(err.contains("nothing was changed"), "{err}");
    assert!(
        fs::symlink_metadata(rc3.join("S99hvseed-firstboot")).is_err(),
        "the start link stayed although the error says nothing was changed: {err}"
    );
    assert_eq!(tree_sum(&root), before, "{err}");
}

// ------------------------------------- leftovers of an interrupted commit

/// A power cut in the commit's rename-aside fallback (no hard link possible) leaves a
/// target missing and its original only in `.<name>.hvseed-undo`; files committed
/// before it are new, with a stale undo beside them. Running apply again must finish
/// the job: ROOT ends exactly as after an uninterrupted apply, the original's lines
/// kept, no undo file left.
#[test]
fn apply_after_a_power_cut_in_the_commit_finishes_the_job() {
    let tmp = tempfile::tempdir().unwrap();
    let plan = write_plan(tmp.path(), &plan_json("centos6", "linux-bridge", &[]));
    let (_t1, reference) = fixture_root("centos6");
    apply(&reference, &plan, &[]);

    let (_t2, root) = fixture_root("centos6");
    // The commit order: each file's backup, then the file. libvirtd.conf and qemu.conf
    // were done (their undo not yet removed), hosts' backup was made and hosts itself
    // was renamed aside when the power went.
    for f in ["etc/libvirt/libvirtd.conf", "etc/libvirt/qemu.conf"] {
        let (dir, name) = f.rsplit_once('/').unwrap();
        let orig = format!("{f}.hvseed-orig");
        fs::copy(root.join(f), root.join(&orig)).unwrap();
        fs::rename(
            root.join(f),
            root.join(format!("{dir}/.{name}.hvseed-undo")),
        )
        .unwrap();
        fs::copy(reference.join(f), root.join(f)).unwrap();
    }
    fs::copy(root.join("etc/hosts"), root.join("etc/hosts.hvseed-orig")).unwrap();
    fs::rename(root.join("etc/hosts"), root.join("etc/.hosts.hvseed-undo")).unwrap();

    let before = tree_sum(&root);
    let dry = apply(&root, &plan, &["--dry-run"]);
    assert!(
        dry.contains("would put back /etc/hosts from /etc/.hosts.hvseed-undo"),
        "{dry}"
    );
    assert_eq!(tree_sum(&root), before, "--dry-run wrote: {dry}");

    let out = apply(&root, &plan, &[]);
    assert!(
        out.contains("put back /etc/hosts from /etc/.hosts.hvseed-undo"),
        "{out}"
    );
    assert!(
        out.contains("remove /etc/libvirt/.qemu.conf.hvseed-undo"),
        "{out}"
    );
    assert_eq!(
        tree_sum(&root),
        tree_sum(&reference),
        "not the same as an uninterrupted apply:\n{out}"
    );
    assert!(apply(&root, &plan, &[]).ends_with("0 changed\n"));
}

/// A stale undo beside a file that is already complete goes, even when nothing else
/// changes; an undo file is never silently overwritten by the commit.
#[test]
fn a_stale_undo_is_removed_and_a_missing_target_is_put_back_on_every_os() {
    for os in [
        "centos6",
        "ubuntu1204",
        "debian12",
        "el9",
        "ubuntu2204",
        "ubuntu2404",
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let plan = write_plan(tmp.path(), &plan_json(os, "linux-bridge", &[]));
        let (_t1, reference) = fixture_root(os);
        apply(&reference, &plan, &[]);
        let (_t2, root) = fixture_root(os);
        apply(&root, &plan, &[]);
        // Both there: stale, removed. Missing target: put back (here the new file,
        // as a rollback interrupted after its rename aside would leave it).
        fs::copy(
            root.join("etc/hosts.hvseed-orig"),
            root.join("etc/.hosts.hvseed-undo"),
        )
        .unwrap();
        fs::rename(
            root.join("etc/libvirt/libvirtd.conf"),
            root.join("etc/libvirt/.libvirtd.conf.hvseed-undo"),
        )
        .unwrap();
        let out = apply(&root, &plan, &[]);
        assert!(out.ends_with("0 changed\n"), "{os}: {out}");
        assert_eq!(tree_sum(&root), tree_sum(&reference), "{os}: {out}");
    }
}

// ------------------------------------------- signals during the commit

/// Runs apply under strace, which sends `sig` to it on entry to its `k`-th rename (the
/// commit renames each staged file into place, and the rollback each original back):
/// a real signal, at a known point of the commit. Returns how apply ended.
fn apply_signalled_at_rename(
    strace: &Path,
    root: &Path,
    plan: &Path,
    sig: &str,
    k: usize,
) -> std::process::Output {
    run_guarded(
        std::process::Command::new(strace)
            .args([
                "-f",
                "-qq",
                "-o",
                "/dev/null",
                "-e",
                "trace=rename,renameat,renameat2",
            ])
            .arg("-e")
            .arg(format!(
                "inject=rename,renameat,renameat2:signal={sig}:when={k}"
            ))
            .arg(env!("CARGO_BIN_EXE_hvseed-firstboot"))
            .arg("apply")
            .arg("--plan")
            .arg(plan)
            .arg("--root")
            .arg(root),
    )
}

/// SIGTERM, SIGINT or SIGHUP arriving at any rename of the commit: apply still ends
/// with ROOT entirely new (the signal takes effect after the commit, and does: apply
/// dies of it), never with some files replaced and others not.
#[test]
fn a_signal_during_the_commit_leaves_root_entirely_old_or_entirely_new() {
    use std::os::unix::process::ExitStatusExt;
    let Some(strace) = tool("strace", "strace") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let plan = write_plan(tmp.path(), &plan_json("centos6", "linux-bridge", &[]));
    let (_t, reference) = fixture_root("centos6");
    apply(&reference, &plan, &[]);
    let new = tree_sum(&reference);
    let sigs = [
        ("SIGTERM", libc::SIGTERM),
        ("SIGINT", libc::SIGINT),
        ("SIGHUP", libc::SIGHUP),
    ];
    let mut signalled = 0;
    for k in 1..200 {
        let (_t, root) = fixture_root("centos6");
        let old = tree_sum(&root);
        let (name, num) = sigs[k % sigs.len()];
        let out = apply_signalled_at_rename(&strace, &root, &plan, name, k);
        let err = String::from_utf8_lossy(&out.stderr);
        let now = tree_sum(&root);
        assert!(
            now == old || now == new,
            "{name} at rename {k} left ROOT partly changed: {err}"
        );
        match out.status.signal() {
            Some(s) => {
                assert_eq!(s, num, "rename {k}: {err}");
                signalled += 1;
            }
            // Fewer than k renames: the last runs signalled every rename of the commit.
            None => {
                assert!(out.status.success(), "rename {k}: {err}");
                break;
            }
        }
    }
    assert!(signalled > 10, "only {signalled} renames signalled");
}

/// The same for the rollback: iptables is immutable, so the commit fails after 8
/// files and puts them back; a signal at any of those renames, forward or back, still
/// leaves ROOT exactly as it was.
#[test]
fn a_signal_during_the_rollback_leaves_root_as_it_was() {
    use std::os::unix::process::ExitStatusExt;
    struct Mutable(std::path::PathBuf);
    impl Drop for Mutable {
        fn drop(&mut self) {
            let _ = std::process::Command::new("chattr")
                .arg("-i")
                .arg(&self.0)
                .status();
        }
    }
    let Some(strace) = tool("strace", "strace") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let plan = write_plan(tmp.path(), &plan_json("centos6", "linux-bridge", &[]));
    let mut signalled = 0;
    for k in 1..100 {
        let (_t, root) = fixture_root("centos6");
        let ipt = root.join("etc/sysconfig/iptables");
        let _guard = Mutable(ipt.clone());
        let made = std::process::Command::new("chattr")
            .arg("+i")
            .arg(&ipt)
            .output()
            .is_ok_and(|o| o.status.success());
        if !made || fs::OpenOptions::new().append(true).open(&ipt).is_ok() {
            eprintln!(
                "\n!!!!!!!! chattr +i is not possible here (needs root and ext2/3/4, xfs or \
                 btrfs): THIS TEST DID NOT RUN !!!!!!!!\n"
            );
            return;
        }
        let old = tree_sum(&root);
        let out = apply_signalled_at_rename(&strace, &root, &plan, "SIGTERM", k);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(tree_sum(&root), old, "SIGTERM at rename {k}: {err}");
        match out.status.signal() {
            Some(s) => {
                assert_eq!(s, libc::SIGTERM, "rename {k}: {err}");
                signalled += 1;
            }
            None => {
                assert_eq!(out.status.code(), Some(1), "rename {k}: {err}");
                assert!(err.contains("nothing was changed"), "{err}");
                break;
            }
        }
    }
    // 8 renames forward and 8 back.
    assert!(signalled >= 16, "only {signalled} renames signalled");
}

// ------------------------------------------- directories apply creates

/// Every directory apply creates is made durable: the directory holding it is fsynced
/// after the mkdir (seen by strace, with the descriptor's path), not only the
/// directory a file is renamed into.
#[test]
fn the_parent_of_every_directory_apply_creates_is_fsynced() {
    let Some(strace) = tool("strace", "strace") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let plan = write_plan(tmp.path(), &plan_json("centos6", "linux-bridge", &[]));
    let (_t, root) = fixture_root("centos6");
    // Missing chains: el6 ifcfg backups go to /var/lib/hvseed/orig/etc/sysconfig/...
    let _ = fs::remove_dir_all(root.join("var/lib/hvseed"));
    let _ = fs::remove_dir_all(root.join("etc/cloudstack"));
    let log = tmp.path().join("strace.log");
    run_ok(
        std::process::Command::new(&strace)
            .args([
                "-f",
                "-qq",
                "-y",
                "-e",
                "trace=mkdir,mkdirat,fsync,fdatasync",
                "-o",
            ])
            .arg(&log)
            .arg(env!("CARGO_BIN_EXE_hvseed-firstboot"))
            .arg("apply")
            .arg("--plan")
            .arg(&plan)
            .arg("--root")
            .arg(&root),
    );
    let text = fs::read_to_string(&log).unwrap();
    let root_s = root.to_str().unwrap();
    let mut made = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let Some(rest) = line.split("mkdir").nth(1) else {
            continue;
        };
        if !line.trim_end().ends_with("= 0") {
            continue;
        }
        let path = rest.split('"').nth(1).unwrap().to_string();
        made.push((i, path));
    }
    assert!(
        made.iter().any(|(_, p)| p.ends_with("/var/lib/hvseed")),
        "no directory was created: {text}"
    );
    for (i, path) in &made {
        assert!(path.starts_with(root_s), "{path}");
        let parent = Path::new(path).parent().unwrap().to_str().unwrap();
        let synced = text
            .lines()
            .skip(i + 1)
            .any(|l| l.contains("fsync(") && l.contains(&format!("<{parent}>")));
        assert!(
            synced,
            "{parent} not fsynced after creating {path}:\n{text}"
        );
    }
}

/// Files hvseed created are removed again by the rollback, and the message says so
/// instead of counting them as "replaced".
#[test]
fn a_rollback_names_created_files_as_removed_not_replaced() {
    use hvseed_firstboot::{apply as ap, fsroot::Root, Plan};
    let (_t, root_dir) = fixture_root("centos6");
    // agent.properties does not exist yet: apply creates it.
    fs::remove_file(root_dir.join("etc/cloudstack/agent/agent.properties")).unwrap();
    let plan = Plan::from_json(
        &plan_json("centos6", "linux-bridge", &[]).to_string(),
        "plan.json",
    )
    .unwrap();
    let root = Root::open(&root_dir).unwrap();
    let changes = ap::compute(&plan, &root, true).unwrap();
    let ipt = root_dir.join("etc/sysconfig/iptables");
    fs::remove_file(&ipt).unwrap();
    fs::create_dir(&ipt).unwrap();
    let before = tree_sum(&root_dir);
    let msg = ap::stage(&changes, &root)
        .unwrap()
        .commit()
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains(
            "; the 8 files already written were put back or removed (/etc/libvirt/libvirtd.conf, "
        ),
        "{msg}"
    );
    assert!(
        msg.contains("/etc/cloudstack/agent/agent.properties (removed again)"),
        "{msg}"
    );
    assert!(!msg.contains("replaced"), "{msg}");
    assert!(msg.ends_with("), nothing was changed"), "{msg}");
    assert_eq!(tree_sum(&root_dir), before, "{msg}");
}
