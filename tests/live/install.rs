//! A Debian 12 CloudStack host's disk as Debian's installer would leave it, built
//! without the installer (this machine's package registry lacks most of d-i's
//! components, so d-i cannot finish an install here; docs/testing.md):
//!
//! 1. hvseed renders the host's files from an inventory (`hvseed render --http-base`,
//!    as for a PXE install: the plan carries the report URL);
//! 2. the root is `mmdebstrap` of bookworm with the package set the preseed's
//!    `pkgsel/include` asks for, less the packages only `cloudstack.repository` has
//!    (each named in [`FROM_CLOUDSTACK_REPOSITORY`] and asserted to be in the list), plus
//!    what d-i itself installs before pkgsel (the kernel, ifupdown for netcfg's files);
//! 3. the installer's own network files as d-i's netcfg writes them ([`netcfg_files`]),
//!    and root's password from the preseed as user-setup sets it;
//! 4. the preseed's `late_command`, run by d-i's own tools against the tree at
//!    `/target` (`di::run_preseed`), fetching the agent and plan from `hvseed serve`
//!    over HTTP in a private namespace: the agent's offline `apply` runs there.
//!
//! The image is cached by the hash of all of it (this file's source included).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::di::{run_preseed, Preseed};
use super::image::{self, copy_tree, lossy, Disk, Extra, RootSpec};
use super::net::Netns;
use crate::util::{self, output_within_secs, KillOnDrop};

/// This file's source: part of the image key.
const INSTALLER_STEPS: &str = include_str!("install.rs");

/// The inventory the hosts are rendered from.
pub const INVENTORY: &str = "profiles/examples/lab-debian12.yaml";
/// Its first host.
pub const FQDN: &str = "kvm41.lab.example.org";
/// The trunk NIC as the guest names it: QEMU boots the root's kernel with
/// `net.ifnames=0` (the slot-based name of a virtio NIC depends on QEMU's PCI layout),
/// so the inventory's `trunk_nic` is set to it.
pub const GUEST_NIC: &str = "eth0";
/// `hvseed serve` in the test's namespace (on its `lo`, reached through the gateway of
/// whichever network the host is on).
pub const SERVE_IP: &str = "10.9.0.1";
pub const SERVE_PORT: u16 = 8080;

/// Packages of the preseed that only `cloudstack.repository` provides: not reachable
/// from here, so not in the root; the `cloudstack-agent` check fails for it.
pub const FROM_CLOUDSTACK_REPOSITORY: &[&str] = &["cloudstack-agent"];

/// What d-i installs before pkgsel's list: base-installer's kernel, and ifupdown for
/// the network configuration netcfg writes (`netcfg/target_network_config` is
/// `ifupdown` on a wired host without NetworkManager).
pub const INSTALLER_PACKAGES: &[&str] = &["linux-image-amd64", "ifupdown"];

/// The test's own key for root (the inventory's `ssh_authorized_keys`); test only.
pub const TEST_KEY: &str = "tests/fixtures/live/id_ed25519";

/// The installer's network: d-i 12's netcfg has no VLAN support, so hvseed's preseed
/// has it take DHCP on the trunk NIC's untagged (native) network (docs/testing.md,
/// "Live hosts"). The test's DHCP server (`dnsmasq` in the namespace) gives the host's
/// MAC this address, with this gateway and DNS server.
#[derive(Clone, Copy, Debug)]
pub struct InstallerNet {
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
}

pub const INSTALLER_NET: InstallerNet = InstallerNet {
    ip: Ipv4Addr::new(192, 168, 40, 21),
    prefix: 24,
    gateway: Ipv4Addr::new(192, 168, 40, 1),
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetKind {
    LinuxBridge,
    Openvswitch,
}

impl NetKind {
    pub fn inventory_value(self) -> &'static str {
        match self {
            NetKind::LinuxBridge => "linux-bridge",
            NetKind::Openvswitch => "openvswitch",
        }
    }
}

/// A host as hvseed rendered it.
pub struct Rendered {
    /// `hvseed render --out`.
    pub out: PathBuf,
    pub plan: serde_json::Value,
    pub plan_bytes: Vec<u8>,
    pub preseed: String,
}

impl Rendered {
    pub fn host_dir(&self) -> PathBuf {
        self.out.join("hosts").join(FQDN)
    }

    pub fn mac(&self) -> String {
        self.plan["network"]["mac"].as_str().unwrap().to_owned()
    }

    pub fn management_ip(&self) -> String {
        self.plan["network"]["management"]["ip"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub fn management_gateway(&self) -> String {
        self.plan["network"]["management"]["gateway"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub fn management_vlan(&self) -> u16 {
        self.plan["network"]["management"]["vlan"].as_u64().unwrap() as u16
    }
}

/// `INVENTORY` with root's key replaced by the test key, the network type set and the
/// trunk NIC named as the guest names it, rendered with `--http-base` (the report goes
/// to `hvseed serve`).
pub fn render(work: &Path, kind: NetKind) -> Rendered {
    let root = util::root();
    let yaml = std::fs::read_to_string(root.join(INVENTORY)).unwrap();
    let key = std::fs::read_to_string(root.join(format!("{TEST_KEY}.pub"))).unwrap();
    let mut out_yaml = String::new();
    let mut keys_seen = false;
    for line in yaml.lines() {
        let t = line.trim_start();
        let indent = &line[..line.len() - t.len()];
        if keys_seen && t.starts_with("- \"ssh-") {
            out_yaml.push_str(&format!("{indent}- \"{}\"\n", key.trim()));
            keys_seen = false;
            continue;
        }
        if t.starts_with("ssh_authorized_keys:") {
            keys_seen = true;
        }
        if t.starts_with("type: linux-bridge") {
            out_yaml.push_str(&format!("{indent}type: {}\n", kind.inventory_value()));
            continue;
        }
        if t.starts_with("trunk_nic:") {
            out_yaml.push_str(&format!("{indent}trunk_nic: {GUEST_NIC}\n"));
            continue;
        }
        out_yaml.push_str(line);
        out_yaml.push('\n');
    }
    assert!(
        out_yaml.contains(key.trim()),
        "{INVENTORY}: no ssh_authorized_keys entry to replace"
    );
    let inv = work.join("inventory.yaml");
    std::fs::write(&inv, &out_yaml).unwrap();
    let out = work.join("render");
    let o = output_within_secs(
        util::hvseed()
            .arg("render")
            .arg(&inv)
            .arg("--out")
            .arg(&out)
            .args(["--http-base", &format!("http://{SERVE_IP}:{SERVE_PORT}")]),
        120,
    );
    assert!(o.status.success(), "render: {}", lossy(&o.stderr));
    let host = out.join("hosts").join(FQDN);
    let plan_path = host.join("plan.json");
    let plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&plan_path).unwrap()).unwrap();
    assert_eq!(plan["os"].as_str(), Some("debian12"), "{INVENTORY}");
    assert_eq!(plan["network"]["trunk_nic"].as_str(), Some(GUEST_NIC));
    assert_eq!(
        plan["network"]["type"].as_str(),
        Some(kind.inventory_value())
    );
    Rendered {
        out,
        plan_bytes: std::fs::read(&plan_path).unwrap(),
        plan,
        preseed: std::fs::read_to_string(host.join("preseed.cfg")).unwrap(),
    }
}

/// The value of a `d-i QUESTION TYPE VALUE` line of a preseed.
pub fn preseed_value(preseed: &str, question: &str) -> Option<String> {
    preseed.lines().find_map(|l| {
        let mut w = l.splitn(4, char::is_whitespace);
        let (_owner, q, _ty) = (w.next()?, w.next()?, w.next()?);
        (q == question).then(|| w.next().unwrap_or("").trim().to_owned())
    })
}

/// The packages the host's preseed asks pkgsel for (`pkgsel/include`).
pub fn pkgsel(r: &Rendered) -> Vec<String> {
    preseed_value(&r.preseed, "pkgsel/include")
        .expect("the debian12 preseed has no pkgsel/include")
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// Packages of the preseed that depend on the network type: installed as a layer on
/// the root of the rest ([`RootSpec::layer`]), so that the Linux-bridge and Open
/// vSwitch hosts share one `mmdebstrap` run.
pub const NETWORK_TYPE_PACKAGES: &[&str] = &["openvswitch-switch"];

/// The root's packages: the preseed's less [`FROM_CLOUDSTACK_REPOSITORY`] (each must be
/// in the preseed's list), plus [`INSTALLER_PACKAGES`]; those of
/// [`NETWORK_TYPE_PACKAGES`] as its layer.
pub fn root_spec(preseed_packages: &[String]) -> RootSpec {
    for p in FROM_CLOUDSTACK_REPOSITORY {
        assert!(
            preseed_packages.iter().any(|x| x == p),
            "{p} is no longer in the preseed's pkgsel/include: {preseed_packages:?}"
        );
    }
    let mut v: Vec<String> = preseed_packages
        .iter()
        .filter(|p| !FROM_CLOUDSTACK_REPOSITORY.contains(&p.as_str()))
        .cloned()
        .collect();
    for p in INSTALLER_PACKAGES {
        if !v.iter().any(|x| x == p) {
            v.push((*p).to_owned());
        }
    }
    let (layer, base): (Vec<String>, Vec<String>) = v
        .into_iter()
        .partition(|p| NETWORK_TYPE_PACKAGES.contains(&p.as_str()));
    RootSpec::bookworm(&base).with_layer(&layer)
}

/// The root a Linux-bridge host of [`INVENTORY`] is built from (the Open vSwitch
/// host's is this one with its layer): a bookworm root with what d-i and the
/// preseed install, for the harness's own tests too.
pub fn host_root() -> image::Root {
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let r = render(work.path(), NetKind::LinuxBridge);
    let spec = root_spec(&pkgsel(&r));
    assert!(spec.layer.is_empty(), "{:?}", spec.layer);
    image::root(&spec)
}

/// The files d-i's netcfg (1.187+deb12u1, Debian 12's) writes after DHCP and copies
/// into /target (`base-installer.d/40netcfg`): `write_interface.c` writes
/// `/etc/network/interfaces` (the `source` line, loopback, then the NIC as
/// `allow-hotplug` — d-i's hotplug rule lists every NIC it saw in
/// `/etc/network/devhotplug` — with `inet dhcp` and no other option); it writes
/// `/etc/hosts` with `127.0.1.1` for the FQDN and short name after DHCP (then the IPv6
/// block) and `/etc/hostname` (the short name) (`dhcp.c`, `netcfg-common.c`); `/etc/resolv.conf` is the one the installer's
/// DHCP client wrote from the server's answer (`domain`, `search`, `nameserver`).
/// netcfg writes `/etc/networks` only for a static address.
pub fn netcfg_files(plan: &serde_json::Value, net: InstallerNet) -> Vec<Extra> {
    let nic = plan["network"]["trunk_nic"].as_str().unwrap();
    let hostname = plan["hostname"].as_str().unwrap();
    let domain = plan["domain"].as_str().unwrap();
    let interfaces = format!(
        "# This file describes the network interfaces available on your system\n\
         # and how to activate them. For more information, see interfaces(5).\n\
         \n\
         source /etc/network/interfaces.d/*\n\
         \n\
         # The loopback network interface\n\
         auto lo\n\
         iface lo inet loopback\n\
         \n\
         # The primary network interface\n\
         allow-hotplug {nic}\n\
         iface {nic} inet dhcp\n"
    );
    let hosts = format!(
        "127.0.0.1\tlocalhost\n\
         127.0.1.1\t{hostname}.{domain}\t{hostname}\n\
         \n\
         # The following lines are desirable for IPv6 capable hosts\n\
         ::1     localhost ip6-localhost ip6-loopback\n\
         ff02::1 ip6-allnodes\n\
         ff02::2 ip6-allrouters\n"
    );
    let resolv = format!(
        "domain {domain}\nsearch {domain}\nnameserver {}\n",
        net.gateway
    );
    vec![
        Extra::new("/etc/network/interfaces", 0o644, interfaces),
        Extra::new("/etc/hosts", 0o644, hosts),
        Extra::new("/etc/hostname", 0o644, format!("{hostname}\n")),
        Extra::new("/etc/resolv.conf", 0o644, resolv),
    ]
}

/// The installer network's DHCP server in `ns` on the tap `iface` (dnsmasq, DNS off):
/// the host's `mac` gets [`INSTALLER_NET`]'s address, gateway and DNS server, as the
/// site's DHCP server would answer the installer and, after a rollback, the host.
pub fn dhcp_server(ns: &Netns, iface: &str, mac: &str, work: &Path) -> KillOnDrop {
    let net = INSTALLER_NET;
    let mask = Ipv4Addr::from(u32::MAX << (32 - net.prefix));
    KillOnDrop(
        ns.command("dnsmasq")
            .args([
                "--keep-in-foreground",
                "--no-resolv",
                "--no-hosts",
                "--port=0",
                "--bind-interfaces",
                &format!("--interface={iface}"),
                &format!("--dhcp-range={},static,{mask},10m", net.ip),
                &format!("--dhcp-host={mac},{}", net.ip),
                &format!("--dhcp-option=option:router,{}", net.gateway),
                &format!("--dhcp-option=option:dns-server,{}", net.gateway),
                "--log-dhcp",
            ])
            .arg(format!(
                "--dhcp-leasefile={}",
                work.join("dnsmasq.leases").display()
            ))
            .arg(format!("--pid-file={}", work.join("dnsmasq.pid").display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(work.join("dnsmasq.log")).unwrap())
            .spawn()
            .unwrap(),
    )
}

/// A stand-in registered in dpkg under the name of a package only
/// `cloudstack.repository` has (not reachable here), so that a host can reach `ready`
/// and the path after it (the job disabled, not run at the next boot) is exercised.
/// It installs no files; its version and description say what it is, and the tests
/// assert that the report names that version.
pub const PLACEHOLDER_VERSION: &str = "0~hvseed.live.test.placeholder";

fn install_placeholder(stage: &Path, name: &str, scratch: &Path) {
    let pkg = scratch.join(format!("{name}-placeholder"));
    std::fs::create_dir_all(pkg.join("DEBIAN")).unwrap();
    std::fs::write(
        pkg.join("DEBIAN/control"),
        format!(
            "Package: {name}\nVersion: {PLACEHOLDER_VERSION}\nArchitecture: all\n\
             Maintainer: hvseed tests <tests@hvseed.invalid>\nPriority: optional\n\
             Description: stand-in for {name} in hvseed's live tests\n \
             The real package comes from the CloudStack repository, which the tests cannot reach.\n"
        ),
    )
    .unwrap();
    let deb = scratch.join(format!("{name}.deb"));
    let o = output_within_secs(
        Command::new("dpkg-deb")
            .args(["--root-owner-group", "--build"])
            .arg(&pkg)
            .arg(&deb),
        60,
    );
    assert!(o.status.success(), "dpkg-deb: {}", lossy(&o.stderr));
    // dpkg inside the root (`--root` would look users and groups up on this machine).
    let inside = format!("/tmp/{name}-placeholder.deb");
    std::fs::copy(&deb, stage.join(inside.trim_start_matches('/'))).unwrap();
    let o = output_within_secs(
        Command::new("chroot")
            .arg(stage)
            .args(["dpkg", "-i", &inside]),
        120,
    );
    std::fs::remove_file(stage.join(inside.trim_start_matches('/'))).unwrap();
    assert!(
        o.status.success(),
        "chroot dpkg -i: {}{}",
        lossy(&o.stdout),
        lossy(&o.stderr)
    );
}

/// Root's password hash as d-i's user-setup sets it from `passwd/root-password-crypted`.
fn set_root_password(stage: &Path, hash: &str) {
    let p = stage.join("etc/shadow");
    let text = std::fs::read_to_string(&p).unwrap();
    let mut out = String::new();
    for l in text.lines() {
        match l.strip_prefix("root:") {
            Some(rest) => {
                let after = rest.split_once(':').map_or("", |x| x.1);
                out.push_str(&format!("root:{hash}:{after}\n"));
            }
            None => {
                out.push_str(l);
                out.push('\n');
            }
        }
    }
    std::fs::write(&p, out).unwrap();
}

/// The host's files as the PXE tree's `http/` serves them (`hvseed serve` takes
/// reports only for hosts with a plan there).
pub fn serve_tree(r: &Rendered, agent: &Path, dir: &Path) {
    let http = dir.join("http");
    std::fs::create_dir_all(&http).unwrap();
    copy_tree(&r.out.join("hosts"), &http.join("hosts"));
    std::fs::copy(agent, http.join("hvseed-firstboot")).unwrap();
}

/// `hvseed serve DIR` on `SERVE_IP:SERVE_PORT` inside `ns` (the address added to its
/// `lo`), its log in `log`; waits until it answers.
pub fn serve(ns: &Netns, dir: &Path, log: &Path) -> KillOnDrop {
    ns.ip(&["addr", "add", &format!("{SERVE_IP}/32"), "dev", "lo"]);
    let child = KillOnDrop(
        ns.command(env!("CARGO_BIN_EXE_hvseed"))
            .arg("serve")
            .arg(dir)
            .args(["--listen", &format!("{SERVE_IP}:{SERVE_PORT}")])
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap(),
    );
    ns.wait_tcp(
        format!("{SERVE_IP}:{SERVE_PORT}").parse().unwrap(),
        Duration::from_secs(30),
    )
    .unwrap();
    child
}

/// The installed host's disk: from the cache, or built now (root, netcfg's files,
/// `extras` such as the site's /etc/hvseed/firstboot.conf, root's password, the
/// placeholders asked for, then the preseed's late_command through d-i's tools).
pub fn installed_disk(
    r: &Rendered,
    kind: NetKind,
    agent: &Path,
    extras: &[Extra],
    placeholders: &[&str],
    work: &Path,
) -> Disk {
    let spec = root_spec(&pkgsel(r));
    let mut all = netcfg_files(&r.plan, INSTALLER_NET);
    all.extend_from_slice(extras);
    let agent_bytes = std::fs::read(agent).unwrap();
    let keys = std::fs::read(r.host_dir().join("authorized_keys")).unwrap();
    let placeholder_list = placeholders.join(",");
    let inputs: [&[u8]; 7] = [
        r.preseed.as_bytes(),
        &r.plan_bytes,
        &keys,
        &agent_bytes,
        placeholder_list.as_bytes(),
        INSTALLER_STEPS.as_bytes(),
        super::di::SOURCE.as_bytes(),
    ];
    image::prepared_image(&spec, &all, &inputs, |stage| {
        let scratch = work.join("install");
        std::fs::create_dir_all(&scratch).unwrap();
        if let Some(hash) = preseed_value(&r.preseed, "passwd/root-password-crypted") {
            set_root_password(stage, &hash);
        }
        for p in placeholders {
            install_placeholder(stage, p, &scratch);
        }
        let tree = scratch.join("pxe");
        serve_tree(r, agent, &tree);
        let ns = Netns::new();
        let _serve = serve(&ns, &tree, &scratch.join("serve.log"));
        let url = format!("http://{SERVE_IP}:{SERVE_PORT}/hosts/{FQDN}/preseed.cfg");
        let run = run_preseed(
            Preseed::Url(&url),
            stage,
            None,
            Some(&ns),
            &scratch.join("di"),
        );
        let serve_log = std::fs::read_to_string(scratch.join("serve.log")).unwrap_or_default();
        assert!(
            run.status.success()
                && run.console.contains(&format!(
                    "hvseed: {FQDN}: handed over to the first-boot agent"
                )),
            "late_command: {}\n---- hvseed serve ----\n{serve_log}",
            run.describe()
        );
        eprintln!(
            "live: late_command ran against the {} root",
            kind.inventory_value()
        );
    })
}
