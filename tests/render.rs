//! Integration tests for `hvseed render`: every kickstart through pykickstart
//! (ksvalidator and its parser), every preseed through debconf and a lint against the
//! real d-i templates, the shell inside them through `sh -n` and real runs against
//! fake trees, golden snapshots, and hostile inventory values carried literally.

use std::path::{Path, PathBuf};
use std::process::Command;

use hvseed::inventory::*;
use hvseed::render::{render_tree, Media, RenderOptions, RenderedTree};

use crate::util;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::sync::{Mutex, OnceLock};

/// The seed's lab, loaded from profiles/examples/lab-centos6.yaml (the one source of
/// it; `tests/serve.rs` and the agent's tests derive from the same file). For Ubuntu
/// 12.04 the same hosts get that target's CloudStack repository and no SELinux; for
/// Debian 12 also a Debian mirror and CloudStack 4.20 from the signed jammy suite; for
/// EL9 CloudStack 4.20 from its `el/9` repository.
pub fn lab(os: Os) -> Inventory {
    let mut inv = util::lab_inventory();
    inv.os = os;
    for h in &mut inv.hosts {
        h.os = os;
        match os {
            Os::Centos6 => {}
            Os::Ubuntu1204 => {
                h.cloudstack.repository = "http://cloudstack.apt-get.eu/ubuntu".into();
                h.security.selinux = None;
            }
            Os::Debian12 => {
                h.install.source = InstallSource::Url("http://deb.debian.org/debian".into());
                h.install.extra_repositories = List::from([]);
                h.cloudstack.version = "4.20".into();
                h.cloudstack.repository = "https://download.cloudstack.org/ubuntu".into();
                h.cloudstack.apt = Some(AptRepository {
                    suite: "jammy".into(),
                    trust: AptTrust::KeyUrl("https://download.cloudstack.org/release.asc".into()),
                });
                h.security.selinux = None;
            }
            Os::El9 => {
                h.cloudstack.version = "4.20".into();
                h.cloudstack.repository = "https://download.cloudstack.org/el/9/4.20/".into();
            }
            Os::Ubuntu2204 | Os::Ubuntu2404 => unreachable!("{os} is not a builder target yet"),
        }
    }
    inv
}

/// The lab with the other choices: Open vSwitch, a URL source, extra repositories and
/// packages, a host with its own keys and timezone.
pub fn lab_variant(os: Os) -> Inventory {
    let mut inv = lab(os);
    inv.cluster = "lab2".into();
    for h in &mut inv.hosts {
        h.network.kind = NetworkType::Openvswitch;
        h.network.trunk_bridge = Some("cloudbr".into());
        h.network.management.bridge = Some("mgmt0".into());
        h.install.source = InstallSource::Url(match os {
            Os::Centos6 => "http://mirror.centos.org/centos/6.3/os/x86_64/".into(),
            Os::Ubuntu1204 => "http://archive.ubuntu.com:80/ubuntu".into(),
            Os::Debian12 => "https://deb.debian.org:443/debian/".into(),
            Os::El9 => "https://dl.rockylinux.org/pub/rocky/9/BaseOS/x86_64/os/".into(),
            Os::Ubuntu2204 | Os::Ubuntu2404 => unreachable!("{os} is not a builder target yet"),
        });
        if os == Os::Debian12 {
            // Refused by `check` for debian12 (no key setting); unsigned CloudStack
            // packages instead, as `unauthenticated: true` says.
            h.cloudstack.apt = Some(AptRepository {
                suite: "noble".into(),
                trust: AptTrust::Unauthenticated,
            });
        } else {
            h.install.extra_repositories = List::from([Repository {
                name: "openvswitch".into(),
                url: "http://repo.example.org/ovs/el6/".into(),
            }]);
        }
        h.install.extra_packages = List::from(["tcpdump".into(), "sysstat".into()]);
        if os == Os::El9 {
            // EL9's Open vSwitch: the extra repository's versioned package.
            h.install.extra_repositories = List::from([Repository {
                name: "nfv-openvswitch".into(),
                url: "http://mirror.stream.centos.org/SIGs/9-stream/nfv/x86_64/openvswitch-2/"
                    .into(),
            }]);
            h.install.extra_packages =
                List::from(["tcpdump".into(), "sysstat".into(), "openvswitch3.3".into()]);
        }
        h.install.ssh_authorized_keys =
            List::from(["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHvseed ops@lab".into()]);
        if os == Os::Centos6 {
            h.security.selinux = Some(SelinuxMode::Disabled);
        }
    }
    inv.hosts[1].install.timezone = "Europe/Berlin".into();
    let mut more = inv.hosts[1].install.extra_packages.to_vec();
    more.push("iperf".into());
    inv.hosts[1].install.extra_packages = List::from(more);
    inv
}

/// Free text a user could write, with everything that breaks naive quoting.
const HOSTILE_KEYS: &[&str] = &[
    r#"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHvseed it's "me" $(touch /tmp/hvseed-pwned) `id` ; rm -rf / & | > < \ \\n %s"#,
    "%end",
    "%post --nochroot",
    r#"command="echo 'hi'; exit" ssh-rsa AAAAB3 a@b HVSEED_EOF_0000 EOF"#,
];

pub fn hostile(os: Os) -> Inventory {
    let mut inv = lab(os);
    for h in &mut inv.hosts {
        h.install.ssh_authorized_keys = HOSTILE_KEYS.iter().map(|s| Text::from(*s)).collect();
        if matches!(os, Os::Centos6 | Os::El9) {
            h.install.extra_repositories = List::from([Repository {
                name: "odd".into(),
                url: r#"http://repo.example.org/a'b"c$(id)`x` y\z/"#.into(),
            }]);
        }
        if os == Os::Debian12 {
            // A pasted key: travels base64-encoded, so its lines and `=` padding
            // cannot break the debconf line.
            h.cloudstack.apt = Some(AptRepository {
                suite: "jammy".into(),
                trust: AptTrust::KeyInline(HOSTILE_KEY_BLOCK.into()),
            });
        }
    }
    inv
}

/// An ASCII-armoured key block as `check` accepts it (not a real key).
const HOSTILE_KEY_BLOCK: &str = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBF$(id)`x`'\"\\ d-i preseed/late_command string reboot\n=AbCd\n-----END PGP PUBLIC KEY BLOCK-----";

fn cd() -> RenderOptions {
    RenderOptions {
        templates: None,
        media: Media::Cdrom,
    }
}

fn http() -> RenderOptions {
    RenderOptions {
        templates: None,
        media: Media::Http {
            base: "http://10.0.2.2:8080/".parse().unwrap(),
        },
    }
}

fn text(tree: &RenderedTree, key: &str) -> String {
    String::from_utf8(
        tree.get(key)
            .unwrap_or_else(|| panic!("{key} not rendered"))
            .clone(),
    )
    .unwrap()
}

fn tmpdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("hvseed-render-test-")
        .tempdir()
        .unwrap()
}

fn write_tree(tree: &RenderedTree, dir: &Path) {
    for (k, v) in tree {
        let p = dir.join(k);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, v).unwrap();
    }
}

fn write_exec(path: &Path, body: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, body).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Every inventory the tests render, by name.
fn inventories() -> Vec<(&'static str, Inventory, RenderOptions)> {
    vec![
        ("lab-centos6", lab(Os::Centos6), cd()),
        ("lab-ubuntu1204", lab(Os::Ubuntu1204), cd()),
        ("variant-centos6", lab_variant(Os::Centos6), http()),
        ("variant-ubuntu1204", lab_variant(Os::Ubuntu1204), http()),
        ("hostile-centos6", hostile(Os::Centos6), cd()),
        ("hostile-ubuntu1204", hostile(Os::Ubuntu1204), http()),
        ("lab-debian12", lab(Os::Debian12), cd()),
        ("variant-debian12", lab_variant(Os::Debian12), http()),
        ("hostile-debian12", hostile(Os::Debian12), cd()),
        ("lab-el9", lab(Os::El9), cd()),
        ("variant-el9", lab_variant(Os::El9), http()),
        ("hostile-el9", hostile(Os::El9), cd()),
    ]
}

/// The pykickstart handler of an anaconda target's installer.
fn ks_handler(os: Os) -> &'static str {
    match os {
        Os::Centos6 => "RHEL6",
        Os::El9 => "RHEL9",
        Os::Ubuntu1204 | Os::Debian12 | Os::Ubuntu2204 | Os::Ubuntu2404 => {
            unreachable!("{os} has no kickstart")
        }
    }
}

/// `ksvalidator -v HANDLER FILE` accepts the file with no error and no warning
/// (pykickstart counts both in its exit status; the output must hold nothing but its
/// "Checking kickstart file" line either).
fn ksvalidator_clean(ksv: &Path, handler: &str, file: &Path, what: &str) {
    let out = util::output_within_secs(Command::new(ksv).args(["-v", handler]).arg(file), 60);
    let said: String = String::from_utf8_lossy(&out.stdout)
        .lines()
        .chain(String::from_utf8_lossy(&out.stderr).lines())
        .filter(|l| !l.trim().is_empty() && !l.starts_with("Checking kickstart file"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(
        out.status.success() && said.is_empty(),
        "{what}: ksvalidator -v {handler} {}: {}\n{said}",
        file.display(),
        out.status
    );
}

fn kickstarts(tree: &RenderedTree) -> Vec<(String, String)> {
    tree.iter()
        .filter(|(k, _)| k.ends_with("ks.cfg"))
        .map(|(k, v)| (k.clone(), String::from_utf8(v.clone()).unwrap()))
        .collect()
}

fn preseeds(tree: &RenderedTree) -> Vec<(String, String)> {
    tree.iter()
        .filter(|(k, _)| k.ends_with("preseed.cfg"))
        .map(|(k, v)| (k.clone(), String::from_utf8(v.clone()).unwrap()))
        .collect()
}

/// The body of each `%pre`/`%post` section: (header line, body).
fn ks_scripts(ks: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut cur: Option<(String, String)> = None;
    for line in ks.lines() {
        if cur.is_none() {
            if line.starts_with("%pre") || line.starts_with("%post") {
                cur = Some((line.to_string(), String::new()));
            }
        } else if line == "%end" {
            out.push(cur.take().unwrap());
        } else if let Some((_, body)) = &mut cur {
            body.push_str(line);
            body.push('\n');
        }
    }
    assert!(cur.is_none(), "unterminated section");
    out
}

fn ks_script(ks: &str, header_prefix: &str) -> String {
    ks_scripts(ks)
        .into_iter()
        .find(|(h, _)| h.starts_with(header_prefix))
        .unwrap_or_else(|| panic!("no {header_prefix} section"))
        .1
}

/// Lines of a preseed after `#<tag> ` (the scripts hvseed carries as comments).
fn preseed_comment_script(preseed: &str, tag: &str) -> String {
    let prefix = format!("#{tag} ");
    let mut s = String::new();
    for line in preseed.lines() {
        if let Some(rest) = line.strip_prefix(&prefix) {
            s.push_str(rest);
            s.push('\n');
        }
    }
    s
}

/// The value of a debconf question in a preseed.
fn preseed_value(preseed: &str, question: &str) -> Option<String> {
    preseed.lines().find_map(|l| {
        let mut it = l.splitn(4, char::is_whitespace);
        let (_owner, q, _ty) = (it.next()?, it.next()?, it.next()?);
        (q == question && !l.starts_with('#'))
            .then(|| it.next().unwrap_or("").trim_start().to_string())
    })
}

fn sh_syntax_ok(shell: &str, script: &str, what: &str) {
    let dir = tmpdir();
    let f = dir.path().join("script.sh");
    std::fs::write(&f, script).unwrap();
    let out = util::output_within_secs(Command::new(shell).args(["-n"]).arg(&f), 10);
    assert!(
        out.status.success(),
        "{shell} -n rejects {what}: {}\n{script}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_kickstart_passes_ksvalidator_of_its_release_without_warnings() {
    let Some(ksv) = util::ksvalidator() else {
        return;
    };
    for (name, inv, opts) in inventories() {
        if !matches!(inv.os, Os::Centos6 | Os::El9) {
            continue;
        }
        let tree = render_tree(&inv, &opts).unwrap();
        let dir = tmpdir();
        write_tree(&tree, dir.path());
        for (k, _) in kickstarts(&tree) {
            ksvalidator_clean(&ksv, ks_handler(inv.os), &dir.path().join(&k), name);
        }
    }
}

const READBACK: &str = r#"
import json, sys
from pykickstart.parser import KickstartParser
from pykickstart.version import makeVersion
out = {}
for f in sys.argv[2:]:
    h = makeVersion(sys.argv[1])
    KickstartParser(h, followIncludes=False).readKickstart(f)
    out[f] = {
        "packages": sorted(h.packages.packageList),
        "groups": sorted(g.name for g in h.packages.groupList),
        "rootpw_crypted": bool(h.rootpw.isCrypted),
        "rootpw": h.rootpw.password,
        "selinux": h.selinux.selinux,
        "timezone": h.timezone.timezone,
        "lang": h.lang.lang,
        "keyboard": h.keyboard.keyboard,
        "repos": [[r.name, r.baseurl] for r in h.repo.repoList],
        "network": [[n.device, n.bootProto, n.ip, n.netmask, n.gateway, n.vlanid, n.hostname] for n in h.network.network],
        "onlyuse": h.ignoredisk.onlyuse,
        "clearpart": [h.clearpart.type, h.clearpart.drives, h.clearpart.initAll],
        "zerombr": bool(h.zerombr.zerombr),
        "autopart": bool(h.autopart.autopart),
        "driveorder": h.bootloader.driveorder,
        "firewall": [h.firewall.enabled, h.firewall.services],
        "reboot": h.reboot.action,
        "method": h.method.method,
        "url": getattr(h.method, "url", None),
        "scripts": [[s.type, bool(s.inChroot), bool(s.errorOnFail)] for s in h.scripts],
        "bodies": [s.script for s in h.scripts],
    }
    if sys.argv[1] == "RHEL9":
        out[f].update({
            "timesource": [t.ntp_server for t in h.timesource.dataList()],
            "allow_ssh": bool(h.rootpw.allow_ssh),
            "authselect": h.authselect.authselect,
            "network_onboot_activate": [[n.onboot, n.activate] for n in h.network.network],
            "vc_keymap": h.keyboard.vc_keymap,
            "boot_drive": h.bootloader.bootDrive,
        })
print(json.dumps(out))
"#;

fn readback(handler: &str, files: &[PathBuf]) -> Option<serde_json::Value> {
    let py = util::kickstart_python()?;
    let out = util::output_within_secs(
        Command::new(py)
            .arg("-c")
            .arg(READBACK)
            .arg(handler)
            .args(files),
        60,
    );
    assert!(
        out.status.success(),
        "pykickstart readback failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

fn j(v: &serde_json::Value) -> String {
    v.to_string()
}

#[test]
fn pykickstart_reads_back_what_the_inventory_says() {
    let inv = lab_variant(Os::Centos6);
    let tree = render_tree(&inv, &http()).unwrap();
    let dir = tmpdir();
    write_tree(&tree, dir.path());
    let files: Vec<PathBuf> = inv
        .hosts
        .iter()
        .map(|h| dir.path().join(format!("hosts/{}/ks.cfg", h.fqdn)))
        .collect();
    let Some(rb) = readback("RHEL6", &files) else {
        return;
    };
    for (h, f) in inv.hosts.iter().zip(&files) {
        let r = &rb[f.to_str().unwrap()];
        let mut want_pkgs = vec![
            "bridge-utils",
            "cloudstack-agent",
            "libvirt",
            "ntp",
            "openvswitch",
            "qemu-kvm",
            "sysstat",
            "tcpdump",
        ];
        if h.fqdn.starts_with("kvm2") {
            want_pkgs.push("iperf");
        }
        want_pkgs.sort();
        assert_eq!(
            j(&r["packages"]),
            j(&serde_json::json!(want_pkgs)),
            "{}",
            h.fqdn
        );
        assert_eq!(j(&r["groups"]), r#"["core"]"#);
        assert_eq!(r["rootpw_crypted"], true);
        assert_eq!(r["rootpw"], &*h.install.root_password_hash);
        assert_eq!(r["selinux"], 0, "selinux disabled");
        assert_eq!(r["timezone"], &*h.install.timezone);
        assert_eq!(r["lang"], "en_US.UTF-8");
        assert_eq!(r["keyboard"], "us");
        assert_eq!(
            j(&r["repos"]),
            j(&serde_json::json!([
                ["cloudstack", "http://cloudstack.apt-get.eu/rhel/4.2/"],
                ["openvswitch", "http://repo.example.org/ovs/el6/"]
            ]))
        );
        assert_eq!(r["method"], "url");
        assert_eq!(r["url"], "http://mirror.centos.org/centos/6.3/os/x86_64/");
        assert_eq!(
            j(&r["network"]),
            j(&serde_json::json!([[
                h.mac,
                "static",
                h.ip.to_string(),
                "255.255.255.0",
                "192.168.42.1",
                "100",
                h.fqdn
            ]]))
        );
        let disk = &*h.install.disk;
        assert_eq!(j(&r["onlyuse"]), j(&serde_json::json!([disk])));
        assert_eq!(r["clearpart"][1], serde_json::json!([disk]));
        assert_eq!(r["clearpart"][2], true);
        assert_eq!(r["zerombr"], true);
        assert_eq!(r["autopart"], true);
        assert_eq!(j(&r["driveorder"]), j(&serde_json::json!([disk])));
        assert_eq!(r["firewall"][0], true);
        assert_eq!(j(&r["firewall"][1]), r#"["ssh"]"#);
        // %pre, %post --nochroot, %post; every script stops the install on failure.
        assert_eq!(
            j(&r["scripts"]),
            "[[0,false,true],[1,false,true],[1,true,true]]",
            "{}",
            h.fqdn
        );
    }
}

#[test]
fn pykickstart_reads_back_what_the_el9_inventory_says() {
    let inv = lab_variant(Os::El9);
    let tree = render_tree(&inv, &http()).unwrap();
    let dir = tmpdir();
    write_tree(&tree, dir.path());
    let files: Vec<PathBuf> = inv
        .hosts
        .iter()
        .map(|h| dir.path().join(format!("hosts/{}/ks.cfg", h.fqdn)))
        .collect();
    let Some(rb) = readback("RHEL9", &files) else {
        return;
    };
    for (h, f) in inv.hosts.iter().zip(&files) {
        let r = &rb[f.to_str().unwrap()];
        // EL9's iptables.service is iptables-nft-services (AppStream); Open vSwitch is
        // NetworkManager's plugin plus the extra repository's versioned package.
        let mut want_pkgs = vec![
            "NetworkManager-ovs",
            "chrony",
            "cloudstack-agent",
            "iptables-nft-services",
            "libvirt",
            "openssh-server",
            "openvswitch3.3",
            "qemu-kvm",
            "sysstat",
            "tcpdump",
        ];
        if h.fqdn.starts_with("kvm2") {
            want_pkgs.push("iperf");
        }
        want_pkgs.sort();
        assert_eq!(
            j(&r["packages"]),
            j(&serde_json::json!(want_pkgs)),
            "{}",
            h.fqdn
        );
        assert_eq!(r["rootpw_crypted"], true);
        assert_eq!(r["allow_ssh"], true, "root logs in over SSH (Add Host)");
        assert_eq!(r["rootpw"], &*h.install.root_password_hash);
        assert_eq!(r["authselect"], "select sssd");
        assert_eq!(r["selinux"], 2, "selinux permissive");
        assert_eq!(
            j(&r["timesource"]),
            j(&serde_json::json!(["0.pool.ntp.org", "1.pool.ntp.org"]))
        );
        assert_eq!(r["vc_keymap"], "us");
        assert_eq!(
            j(&r["repos"]),
            j(&serde_json::json!([
                ["cloudstack", "https://download.cloudstack.org/el/9/4.20/"],
                [
                    "nfv-openvswitch",
                    "http://mirror.stream.centos.org/SIGs/9-stream/nfv/x86_64/openvswitch-2/"
                ]
            ]))
        );
        assert_eq!(r["method"], "url");
        assert_eq!(
            r["url"],
            "https://dl.rockylinux.org/pub/rocky/9/BaseOS/x86_64/os/"
        );
        // The installer's network (management VLAN, started now, not at boot), then
        // the hostname on its own.
        assert_eq!(
            j(&r["network"]),
            j(&serde_json::json!([
                [
                    h.mac,
                    "static",
                    h.ip.to_string(),
                    "255.255.255.0",
                    "192.168.42.1",
                    "100",
                    ""
                ],
                ["", "dhcp", "", "", "", "", h.fqdn]
            ]))
        );
        assert_eq!(
            j(&r["network_onboot_activate"]),
            "[[true,true],[true,null]]"
        );
        let disk = &*h.install.disk;
        assert_eq!(j(&r["onlyuse"]), j(&serde_json::json!([disk])));
        assert_eq!(r["boot_drive"], disk);
        assert_eq!(r["firewall"][0], false, "iptables.service, not firewalld");
        assert_eq!(
            j(&r["scripts"]),
            "[[0,false,true],[1,false,true],[1,true,true]]",
            "{}",
            h.fqdn
        );
    }
    // From the DVD: no source command, the boot entry's inst.repo names the medium.
    let tree = render_tree(&lab(Os::El9), &cd()).unwrap();
    let f = dir.path().join("cd.ks");
    std::fs::write(&f, text(&tree, "hosts/kvm1.lab.example.org/ks.cfg")).unwrap();
    if let Some(rb) = readback("RHEL9", std::slice::from_ref(&f)) {
        assert_eq!(rb[f.to_str().unwrap()]["method"], serde_json::Value::Null);
    }
}

fn fake_sysfs(dir: &Path, macs: &[(&str, &str)]) -> PathBuf {
    let sys = dir.join("sys");
    for (nic, mac) in macs {
        let d = sys.join("class/net").join(nic);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("address"), format!("{mac}\n")).unwrap();
    }
    sys
}

/// A `sleep` that ends the script calling it: the fleet %pre waits forever on an
/// unknown machine, which a test can only observe as "it went to sleep".
fn fake_bin(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    write_exec(
        &bin.join("sleep"),
        "#!/bin/sh\necho slept >> \"$HVSEED_TMP/slept\"\nkill -KILL $PPID\n",
    );
    write_exec(
        &bin.join("debconf-set"),
        // Like d-i's, it speaks the debconf protocol on stdin/stdout: it must not be
        // handed a file on stdin.
        "#!/bin/sh\nif read -r x; then echo \"debconf-set read its stdin: $x\" >&2; exit 1; fi\n\
         printf '%s=%s\\n' \"$1\" \"$2\" >> \"$HVSEED_TMP/debconf-set.log\"\n",
    );
    write_exec(
        &bin.join("debconf-get"),
        "#!/bin/sh\ncase \"$1\" in preseed/file) cat \"$HVSEED_TMP/preseed-file\" 2>/dev/null;; esac\n",
    );
    bin
}

struct Run {
    code: Option<i32>,
    console: String,
    stderr: String,
}

fn run_script(script: &str, dir: &Path, env: &[(&str, &Path)], args: &[&str]) -> Run {
    let f = dir.join("script.sh");
    std::fs::write(&f, script).unwrap();
    let tmp = dir.join("t");
    std::fs::create_dir_all(&tmp).unwrap();
    let bin = fake_bin(dir);
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let mut cmd = Command::new("sh");
    cmd.arg(&f).args(args);
    cmd.env("PATH", path)
        .env("HVSEED_TMP", &tmp)
        .env("HVSEED_CONSOLE", dir.join("console"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = util::output_within_secs(&mut cmd, 20);
    Run {
        code: out.status.code(),
        console: std::fs::read_to_string(dir.join("console")).unwrap_or_default(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Replaces `%include /tmp/X` with the file %pre wrote to `tmp/X`, as anaconda does.
fn resolve_includes(ks: &str, tmp: &Path) -> String {
    let mut out = String::new();
    for line in ks.lines() {
        if let Some(p) = line.strip_prefix("%include /tmp/") {
            out.push_str(&std::fs::read_to_string(tmp.join(p)).unwrap());
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[test]
fn fleet_pre_picks_the_host_by_mac_and_the_result_is_a_valid_kickstart() {
    for os in [Os::Centos6, Os::El9] {
        fleet_pre_picks_the_host_by_mac(os);
    }
}

fn fleet_pre_picks_the_host_by_mac(os: Os) {
    let handler = ks_handler(os);
    let inv = lab_variant(os);
    let tree = render_tree(&inv, &cd()).unwrap();
    let fleet = text(&tree, "fleet/ks.cfg");
    let pre = ks_script(&fleet, "%pre");
    for (i, h) in inv.hosts.iter().enumerate() {
        let dir = tmpdir();
        // Upper case in sysfs, another NIC first, loopback: all must be handled.
        let sys = fake_sysfs(
            dir.path(),
            &[
                ("lo", "00:00:00:00:00:00"),
                ("eth0", "52:54:00:00:00:99"),
                ("eth1", &h.mac.to_uppercase()),
            ],
        );
        let r = run_script(&pre, dir.path(), &[("HVSEED_SYSFS", &sys)], &[]);
        assert_eq!(r.code, Some(0), "{}: {}", h.fqdn, r.stderr);
        assert!(
            r.console
                .contains(&format!("hvseed: installing {}\n", h.fqdn)),
            "console: {}",
            r.console
        );
        let tmp = dir.path().join("t");
        assert_eq!(
            std::fs::read_to_string(tmp.join("hvseed-fqdn")).unwrap(),
            format!("{}\n", h.fqdn)
        );
        let resolved = resolve_includes(&fleet, &tmp);
        let f = dir.path().join("resolved.ks");
        std::fs::write(&f, &resolved).unwrap();
        if let Some(ksv) = util::ksvalidator() {
            ksvalidator_clean(&ksv, handler, &f, &h.fqdn);
        }
        // The resolved fleet file says what this host's own kickstart says.
        let own = dir.path().join("own.ks");
        std::fs::write(&own, text(&tree, &format!("hosts/{}/ks.cfg", h.fqdn))).unwrap();
        if let Some(rb) = readback(handler, &[f.clone(), own.clone()]) {
            let (a, b) = (&rb[f.to_str().unwrap()], &rb[own.to_str().unwrap()]);
            for key in [
                "packages",
                "groups",
                "rootpw",
                "selinux",
                "timezone",
                "lang",
                "repos",
                "network",
                "onlyuse",
                "clearpart",
                "driveorder",
                "method",
                "url",
            ] {
                assert_eq!(j(&a[key]), j(&b[key]), "{}: {key}", h.fqdn);
            }
            assert_eq!(a["network"][0][0], h.mac.as_str());
            let _ = i;
        }
    }
}

#[test]
fn fleet_pre_stops_an_unknown_machine_before_any_disk() {
    let tree = render_tree(&lab(Os::Centos6), &cd()).unwrap();
    let pre = ks_script(&text(&tree, "fleet/ks.cfg"), "%pre");
    let dir = tmpdir();
    let sys = fake_sysfs(dir.path(), &[("eth0", "52:54:00:12:34:56")]);
    let r = run_script(&pre, dir.path(), &[("HVSEED_SYSFS", &sys)], &[]);
    assert_ne!(r.code, Some(0));
    assert!(
        r.console
            .contains("52:54:00:12:34:56) is not a host of cluster lab1"),
        "console: {}",
        r.console
    );
    assert!(r.console.contains("no disk has been touched"));
    let tmp = dir.path().join("t");
    assert!(tmp.join("slept").exists(), "it must wait, not go on");
    assert!(!tmp.join("hvseed-host.ks").exists());
    assert!(!tmp.join("hvseed-fqdn").exists());
    // A machine whose NICs belong to two different hosts is refused too.
    let dir = tmpdir();
    let sys = fake_sysfs(
        dir.path(),
        &[("eth0", "00:04:23:aa:bb:01"), ("eth1", "00:04:23:aa:bb:02")],
    );
    let r = run_script(&pre, dir.path(), &[("HVSEED_SYSFS", &sys)], &[]);
    assert_ne!(r.code, Some(0));
    assert!(
        r.console.contains("belong to more than one host"),
        "{}",
        r.console
    );
    assert!(!dir.path().join("t/hvseed-host.ks").exists());
}

/// Serialises tests that use d-i's fixed /tmp paths (early_command's own line).
fn fixed_tmp_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: OnceLock<Mutex<()>> = OnceLock::new();
    LOCK.get_or_init(|| Mutex::new(()))
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

#[test]
fn fleet_early_command_sets_the_hosts_answers_and_refuses_unknown_machines() {
    let _guard = fixed_tmp_lock();
    for os in [Os::Ubuntu1204, Os::Debian12] {
        fleet_early_command_for(os);
    }
}

fn fleet_early_command_for(os: Os) {
    let inv = lab_variant(os);
    let tree = render_tree(&inv, &cd()).unwrap();
    let fleet = text(&tree, "fleet/preseed.cfg");
    let early_command = preseed_value(&fleet, "preseed/early_command").unwrap();
    for h in &inv.hosts {
        let dir = tmpdir();
        let pf = dir.path().join("fleet.cfg");
        std::fs::write(&pf, &fleet).unwrap();
        std::fs::create_dir_all(dir.path().join("t")).unwrap();
        std::fs::write(dir.path().join("t/preseed-file"), pf.to_str().unwrap()).unwrap();
        let sys = fake_sysfs(dir.path(), &[("eth0", &h.mac)]);
        // The debconf value itself, as d-i runs it (sh -c), twice: d-i may load an
        // initrd preseed twice.
        for _ in 0..2 {
            let r = run_script(&early_command, dir.path(), &[("HVSEED_SYSFS", &sys)], &[]);
            assert_eq!(r.code, Some(0), "{}: {}", h.fqdn, r.stderr);
        }
        let console = std::fs::read_to_string(dir.path().join("console")).unwrap();
        assert_eq!(
            console,
            format!("hvseed: installing {0}\nhvseed: installing {0}\n", h.fqdn)
        );
        let log = std::fs::read_to_string(dir.path().join("t/debconf-set.log")).unwrap();
        let own = text(&tree, &format!("hosts/{}/preseed.cfg", h.fqdn));
        // Every question set per host gets this host's own value...
        let mut set = BTreeMap::new();
        for l in log.lines() {
            let (q, v) = l.split_once('=').unwrap();
            set.insert(q.to_string(), v.to_string());
        }
        assert!(set.contains_key("netcfg/get_hostname"));
        assert!(
            set.contains_key("time/zone"),
            "timezones differ in this inventory"
        );
        if os == Os::Debian12 {
            // d-i 12 picks the installer's NIC by the host's MAC.
            assert_eq!(set["netcfg/choose_interface"], h.mac);
        }
        for (q, v) in &set {
            assert_eq!(Some(v.clone()), preseed_value(&own, q), "{}: {q}", h.fqdn);
        }
        // ...and every other question of the host's own file is in the fleet file as is.
        for l in own
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        {
            let q = l.split_whitespace().nth(1).unwrap();
            if !set.contains_key(q) {
                assert!(fleet.lines().any(|f| f == l), "fleet lacks: {l}");
            }
        }
        assert_eq!(
            std::fs::read_to_string(dir.path().join("t/hvseed-host")).unwrap(),
            format!("{}\n", h.fqdn)
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("t/hvseed-late.sh")).unwrap(),
            preseed_comment_script(&fleet, "hvseed-late")
        );
    }
    let dir = tmpdir();
    let pf = dir.path().join("fleet.cfg");
    std::fs::write(&pf, &fleet).unwrap();
    std::fs::create_dir_all(dir.path().join("t")).unwrap();
    std::fs::write(dir.path().join("t/preseed-file"), pf.to_str().unwrap()).unwrap();
    let sys = fake_sysfs(dir.path(), &[("eth0", "52:54:00:12:34:56")]);
    let r = run_script(&early_command, dir.path(), &[("HVSEED_SYSFS", &sys)], &[]);
    assert_ne!(r.code, Some(0), "an unknown machine must stop d-i");
    assert!(
        r.console.contains("is not a host of cluster lab2"),
        "{}",
        r.console
    );
    assert!(!dir.path().join("t/debconf-set.log").exists());
    assert!(!dir.path().join("t/hvseed-host").exists());
}

/// Question names of the real d-i (Debian 12 netboot initrd's templates), extracted
/// once per test run.
fn di_questions() -> Option<&'static std::collections::HashSet<String>> {
    static Q: OnceLock<Option<std::collections::HashSet<String>>> = OnceLock::new();
    Q.get_or_init(|| {
        let initrd =
            "/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64/initrd.gz";
        if !util::require_tool(initrd, "debian-installer-12-netboot-amd64")
            || !util::require_tool("cpio", "cpio")
        {
            return None;
        }
        let out = util::output_within_secs(
            Command::new("sh").args(["-c"]).arg(format!(
                "zcat {initrd} | cpio -i --quiet --to-stdout 'var/lib/dpkg/info/*.templates'"
            )),
            60,
        );
        assert!(out.status.success(), "cannot read {initrd}");
        let mut names: std::collections::HashSet<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix("Template: "))
            .map(|s| s.trim().to_string())
            .collect();
        // choose-mirror registers the questions of each protocol itself
        // (`mirror/https/hostname` has no template of its own): their names are
        // strings in its binary.
        let out = util::output_within_secs(
            Command::new("sh").args(["-c"]).arg(format!(
                "zcat {initrd} | cpio -i --quiet --to-stdout bin/choose-mirror"
            )),
            60,
        );
        assert!(
            out.status.success(),
            "cannot read choose-mirror from {initrd}"
        );
        let mirror_questions: Vec<String> = out
            .stdout
            .split(|b| !b.is_ascii_graphic())
            .filter_map(|w| std::str::from_utf8(w).ok())
            .filter(|w| {
                let parts: Vec<&str> = w.split('/').collect();
                parts.len() == 3
                    && parts[0] == "mirror"
                    && parts[1..]
                        .iter()
                        .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
            })
            .map(str::to_string)
            .collect();
        assert!(
            mirror_questions
                .iter()
                .any(|q| q == "mirror/https/hostname"),
            "choose-mirror's questions not found: {mirror_questions:?}"
        );
        names.extend(mirror_questions);
        assert!(
            names.len() > 200,
            "too few d-i templates found: {}",
            names.len()
        );
        Some(names)
    })
    .as_ref()
}

/// Question names of Debian 12's installation guide's example preseed
/// (installation-guide-amd64, `example-preseed.txt.gz`), commented examples included:
/// the questions of the d-i components that are not in the netboot initrd (they are
/// downloaded from the mirror: apt-setup, partman, pkgsel, ...).
fn guide_questions() -> Option<&'static std::collections::HashSet<String>> {
    static Q: OnceLock<Option<std::collections::HashSet<String>>> = OnceLock::new();
    Q.get_or_init(|| {
        let example = "/usr/share/doc/installation-guide-amd64/example-preseed.txt.gz";
        if !util::require_tool(example, "installation-guide-amd64") {
            return None;
        }
        let out = util::output_within_secs(Command::new("zcat").arg(example), 30);
        assert!(out.status.success(), "cannot read {example}");
        let names: std::collections::HashSet<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim_start_matches(['#', ' ']))
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.len() >= 3 && f[1].contains('/')).then(|| f[1].to_string())
            })
            .collect();
        assert!(
            names.len() > 80,
            "too few example questions: {}",
            names.len()
        );
        Some(names)
    })
    .as_ref()
}

/// Questions of the Debian 12 preseed that belong to packages of the installed system,
/// not to d-i, with where each is defined.
const DEBIAN12_PACKAGE_QUESTIONS: &[(&str, &str)] = &[(
    "openssh-server/permit-root-login",
    "openssh-server 1:9.2p1-2+deb12u10 debian/openssh-server.templates",
)];

/// What debconf-set-selections does not check: known types, boolean values, an
/// owner, no continuation at the end. Returns (errors, unknown question names).
fn lint_preseed(text: &str) -> (Vec<String>, Vec<String>) {
    let mut errors = Vec::new();
    let mut unknown = Vec::new();
    let known_types = [
        "string",
        "boolean",
        "select",
        "multiselect",
        "note",
        "password",
    ];
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if line.trim_end().ends_with('\\') {
            errors.push(format!("line {n}: continuation: {line}"));
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 3 {
            errors.push(format!("line {n}: fewer than three fields: {line}"));
            continue;
        }
        let (owner, q, ty) = (f[0], f[1], f[2]);
        if owner.contains('/') || !q.contains('/') {
            errors.push(format!("line {n}: owner missing: {line}"));
        }
        if !known_types.contains(&ty) {
            errors.push(format!("line {n}: unknown type {ty}"));
        }
        if ty == "boolean" && !(f.len() == 4 && (f[3] == "true" || f[3] == "false")) {
            errors.push(format!("line {n}: boolean must be true or false: {line}"));
        }
        if let Some(qs) = di_questions() {
            if !qs.contains(q) {
                unknown.push(q.to_string());
            }
        }
    }
    (errors, unknown)
}

#[test]
fn every_preseed_passes_debconf_and_the_lint() {
    if !util::require_tool("debconf-set-selections", "debconf") {
        return;
    }
    let mut all_unknown = std::collections::BTreeSet::new();
    for (name, inv, opts) in inventories() {
        if matches!(inv.os, Os::Centos6 | Os::El9) {
            continue;
        }
        let tree = render_tree(&inv, &opts).unwrap();
        let dir = tmpdir();
        write_tree(&tree, dir.path());
        for (k, t) in preseeds(&tree) {
            let out = util::output_within_secs(
                Command::new("debconf-set-selections")
                    .args(["--checkonly"])
                    .arg(dir.path().join(&k)),
                30,
            );
            assert!(
                out.status.success() && out.stderr.is_empty(),
                "{name}: {k}: debconf-set-selections --checkonly: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let (errors, unknown) = lint_preseed(&t);
            assert!(errors.is_empty(), "{name}: {k}:\n{}", errors.join("\n"));
            if inv.os == Os::Debian12 {
                // Every question is one of bookworm's d-i (its initrd's templates or
                // the installation guide's example) or of a package named above.
                if let Some(guide) = guide_questions() {
                    let strange: Vec<&String> = unknown
                        .iter()
                        .filter(|q| !guide.contains(*q))
                        .filter(|q| !DEBIAN12_PACKAGE_QUESTIONS.iter().any(|(p, _)| p == q))
                        .collect();
                    assert!(
                        strange.is_empty(),
                        "{name}: {k}: not questions of Debian 12's installer: {strange:?}"
                    );
                }
            } else {
                all_unknown.extend(unknown);
            }
            for cmd in ["preseed/early_command", "preseed/late_command"] {
                let v = preseed_value(&t, cmd).unwrap();
                assert!(!v.contains('\\'), "{k}: {cmd} has a backslash");
                sh_syntax_ok("sh", &v, &format!("{k}: {cmd}"));
            }
        }
    }
    if !all_unknown.is_empty() {
        eprintln!(
            "warning: questions not in Debian 12's d-i (Ubuntu 12.04 has some of its own): {}",
            all_unknown.into_iter().collect::<Vec<_>>().join(", ")
        );
    }
}

#[test]
fn every_shell_part_parses_under_sh_and_bash() {
    for (name, inv, opts) in inventories() {
        let tree = render_tree(&inv, &opts).unwrap();
        for (k, t) in kickstarts(&tree) {
            for (h, body) in ks_scripts(&t) {
                for sh in ["sh", "bash"] {
                    sh_syntax_ok(sh, &body, &format!("{name}: {k}: {h}"));
                }
            }
        }
        for (k, t) in preseeds(&tree) {
            for tag in ["hvseed-early", "hvseed-late"] {
                let s = preseed_comment_script(&t, tag);
                assert!(!s.is_empty(), "{k}: no {tag} script");
                for sh in ["sh", "bash"] {
                    sh_syntax_ok(sh, &s, &format!("{name}: {k}: {tag}"));
                }
            }
        }
    }
}

/// A media tree as `hvseed iso`/`hvseed pxe` lay it out: the render tree plus the agent
/// (here a fake one that records how it was called).
fn fake_media(tree: &RenderedTree, dir: &Path) -> PathBuf {
    let media = dir.join("media");
    write_tree(tree, &media.join("hvseed"));
    write_exec(
        &media.join("hvseed/hvseed-firstboot"),
        "#!/bin/sh\nprintf '%s\\n' \"$*\" >> \"$HVSEED_TMP/agent.log\"\n",
    );
    media
}

/// The installed system `root` holds host `fqdn`'s plan as rendered in `tree` and the
/// hostile inventory's ssh keys, byte for byte.
fn assert_plan_and_keys_installed(root: &Path, tree: &RenderedTree, fqdn: &str) {
    assert_eq!(
        std::fs::read(root.join("etc/hvseed/plan.json")).unwrap(),
        tree[&format!("hosts/{fqdn}/plan.json")]
    );
    let want: String = HOSTILE_KEYS.iter().map(|k| format!("{k}\n")).collect();
    assert_eq!(
        std::fs::read_to_string(root.join("root/.ssh/authorized_keys")).unwrap(),
        want
    );
}

/// The stand-in agent (its log in `dir/t/agent.log`) was run once to apply the plan
/// installed under `root`.
fn assert_agent_applied(dir: &Path, root: &Path) {
    assert_eq!(
        std::fs::read_to_string(dir.join("t/agent.log")).unwrap(),
        format!(
            "apply --plan {0}/etc/hvseed/plan.json --root {0}\n",
            root.display()
        )
    );
}

#[test]
fn hostile_values_are_carried_literally_by_the_per_host_kickstart() {
    let inv = hostile(Os::Centos6);
    let tree = render_tree(&inv, &cd()).unwrap();
    let h = &inv.hosts[0];
    let ks = text(&tree, &format!("hosts/{}/ks.cfg", h.fqdn));
    let dir = tmpdir();
    let root = dir.path().join("root");
    let media = fake_media(&tree, dir.path());
    // %post --nochroot copies the agent from the CD, then %post runs in the new root.
    let nochroot = ks_script(&ks, "%post --nochroot");
    let r = run_script(
        &nochroot,
        dir.path(),
        &[("HVSEED_SYSIMAGE", &root), ("HVSEED_MEDIA_DIRS", &media)],
        &[],
    );
    assert_eq!(r.code, Some(0), "{}{}", r.stderr, r.console);
    let post = ks_script(&ks, "%post --erroronfail --log=/root");
    let r = run_script(&post, dir.path(), &[("HVSEED_ROOT", &root)], &[]);
    assert_eq!(r.code, Some(0), "{}{}", r.stderr, r.console);
    assert_plan_and_keys_installed(&root, &tree, &h.fqdn);
    let mode = |p: &str| {
        std::fs::metadata(root.join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("usr/sbin/hvseed-firstboot"), 0o755);
    assert_eq!(mode("etc/hvseed/plan.json"), 0o600);
    assert_eq!(mode("root/.ssh/authorized_keys"), 0o600);
    assert_agent_applied(dir.path(), &root);
    assert!(!Path::new("/tmp/hvseed-pwned").exists());
    // The odd repository URL reaches pykickstart unchanged, and pykickstart sees the
    // same script bodies (no key line such as `%end` ended a section early).
    let f = dir.path().join("ks.cfg");
    std::fs::write(&f, &ks).unwrap();
    if let Some(rb) = readback("RHEL6", std::slice::from_ref(&f)) {
        let bodies = rb[f.to_str().unwrap()]["bodies"]
            .as_array()
            .unwrap()
            .clone();
        let ours = ks_scripts(&ks);
        assert_eq!(bodies.len(), ours.len());
        for (b, (h, o)) in bodies.iter().zip(&ours) {
            assert_eq!(b.as_str().unwrap().trim(), o.trim(), "{h}");
        }
        assert!(ours[2].1.contains("\n|%end\n|%post --nochroot\n"));
        assert_eq!(
            rb[f.to_str().unwrap()]["repos"][1][1],
            r#"http://repo.example.org/a'b"c$(id)`x` y\z/"#
        );
    }
}

#[test]
fn fleet_kickstart_post_takes_plan_and_keys_from_the_media() {
    let inv = hostile(Os::Centos6);
    let tree = render_tree(&inv, &cd()).unwrap();
    let fleet = text(&tree, "fleet/ks.cfg");
    let h = &inv.hosts[1];
    let dir = tmpdir();
    let sys = fake_sysfs(dir.path(), &[("eth0", &h.mac)]);
    let root = dir.path().join("root");
    let media = fake_media(&tree, dir.path());
    let env = [
        ("HVSEED_SYSFS", sys.as_path()),
        ("HVSEED_SYSIMAGE", root.as_path()),
        ("HVSEED_MEDIA_DIRS", media.as_path()),
        ("HVSEED_ROOT", root.as_path()),
    ];
    for section in [
        "%pre",
        "%post --nochroot",
        "%post --erroronfail --log=/root",
    ] {
        let r = run_script(&ks_script(&fleet, section), dir.path(), &env, &[]);
        assert_eq!(r.code, Some(0), "{section}: {}{}", r.stderr, r.console);
    }
    assert_plan_and_keys_installed(&root, &tree, &h.fqdn);
    assert!(std::fs::read_to_string(dir.path().join("t/agent.log"))
        .unwrap()
        .starts_with("apply --plan "));
    // Without the agent on the media the host must not come up silently.
    std::fs::remove_file(media.join("hvseed/hvseed-firstboot")).unwrap();
    let r = run_script(
        &ks_script(&fleet, "%post --nochroot"),
        dir.path(),
        &env,
        &[],
    );
    assert_ne!(r.code, Some(0));
    assert!(
        r.console.contains("this host is NOT set up for CloudStack"),
        "{}",
        r.console
    );
}

#[test]
fn preseed_late_script_installs_agent_plan_and_keys_into_target() {
    for os in [Os::Ubuntu1204, Os::Debian12] {
        preseed_late_script_for(os);
    }
}

fn preseed_late_script_for(os: Os) {
    let inv = hostile(os);
    let tree = render_tree(&inv, &cd()).unwrap();
    let h = &inv.hosts[0];
    for key in [
        "fleet/preseed.cfg".to_string(),
        format!("hosts/{}/preseed.cfg", h.fqdn),
    ] {
        let p = text(&tree, &key);
        let dir = tmpdir();
        let target = dir.path().join("target");
        let media = fake_media(&tree, dir.path());
        std::fs::create_dir_all(dir.path().join("t")).unwrap();
        std::fs::write(dir.path().join("t/hvseed-host"), format!("{}\n", h.fqdn)).unwrap();
        let late = preseed_comment_script(&p, "hvseed-late");
        let env = [
            ("HVSEED_TARGET", target.as_path()),
            ("HVSEED_MEDIA_DIRS", media.as_path()),
        ];
        let r = run_script(&late, dir.path(), &env, &[]);
        assert_eq!(r.code, Some(0), "{key}: {}{}", r.stderr, r.console);
        assert_plan_and_keys_installed(&target, &tree, &h.fqdn);
        assert_agent_applied(dir.path(), &target);
        std::fs::remove_file(media.join(format!("hvseed/hosts/{}/plan.json", h.fqdn))).unwrap();
        let r = run_script(&late, dir.path(), &env, &[]);
        assert_ne!(r.code, Some(0), "a missing plan must stop the install");
        assert!(r.console.contains("NOT set up"), "{}", r.console);
    }
}

#[test]
fn values_that_cannot_be_quoted_for_their_place_are_refused() {
    let mut inv = lab(Os::Ubuntu1204);
    inv.hosts[1].cloudstack.repository = "http://x/a\\b".into();
    let e = format!("{:#}", render_tree(&inv, &cd()).unwrap_err());
    assert!(e.contains("backslash") && e.contains("settings.cfg"), "{e}");
    let mut inv = lab(Os::Centos6);
    inv.hosts[0].install.extra_packages = List::from(["foo\n%post".into()]);
    let e = format!("{:#}", render_tree(&inv, &cd()).unwrap_err());
    assert!(e.contains("is not a package name"), "{e}");
}

#[test]
fn golden_lab_outputs() {
    // lab-centos6 is profiles/examples/lab-centos6.yaml itself: its snapshots are the
    // `example-lab-centos6__*` ones taken through the CLI below.
    let wanted = [
        "lab-ubuntu1204",
        "variant-centos6",
        "variant-ubuntu1204",
        "variant-debian12",
        "hostile-debian12",
        "variant-el9",
    ];
    for (name, inv, opts) in inventories()
        .into_iter()
        .filter(|(n, _, _)| wanted.contains(n))
    {
        let tree = render_tree(&inv, &opts).unwrap();
        for (k, v) in &tree {
            let snap = format!("{name}__{}", k.replace(['/', '.'], "_"));
            insta::assert_snapshot!(snap, String::from_utf8(v.clone()).unwrap());
        }
    }
}

/// Renders an example inventory with `hvseed render` and reads the tree back.
fn render_example(name: &str, dir: &Path, extra: &[&str]) -> RenderedTree {
    let out = dir.join(name);
    util::run_ok(
        util::hvseed()
            .arg("render")
            .arg(util::root().join(format!("profiles/examples/{name}.yaml")))
            .arg("--out")
            .arg(&out)
            .args(extra),
    );
    let mut tree = RenderedTree::new();
    for e in walkdir::WalkDir::new(&out).min_depth(1) {
        let e = e.unwrap();
        if e.file_type().is_file() {
            let rel = e
                .path()
                .strip_prefix(&out)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            tree.insert(rel, std::fs::read(e.path()).unwrap());
        }
    }
    tree
}

const EXAMPLES: &[&str] = &[
    "lab-centos6",
    "lab-ubuntu1204",
    "lab-openvswitch",
    "lab-debian12",
    "lab-el9",
    "lab-el9-openvswitch",
];

#[test]
fn examples_render_through_the_cli_and_pass_the_real_checkers() {
    let dir = tmpdir();
    for name in EXAMPLES {
        let tree = render_example(name, dir.path(), &[]);
        let manifest = String::from_utf8(tree[".hvseed-render"].clone()).unwrap();
        let listed: Vec<&str> = manifest.lines().collect();
        let files: Vec<&str> = tree
            .keys()
            .map(String::as_str)
            .filter(|k| *k != ".hvseed-render")
            .collect();
        assert_eq!(listed, files, "{name}: the manifest lists what was written");
        assert!(files.iter().any(|f| f.starts_with("fleet/")));
        for (k, t) in kickstarts(&tree) {
            if let Some(ksv) = util::ksvalidator() {
                let handler = if name.starts_with("lab-el9") {
                    "RHEL9"
                } else {
                    "RHEL6"
                };
                ksvalidator_clean(&ksv, handler, &dir.path().join(name).join(&k), name);
            }
            for (h, body) in ks_scripts(&t) {
                sh_syntax_ok("sh", &body, &format!("{name}: {k}: {h}"));
            }
        }
        for (k, t) in preseeds(&tree) {
            if util::require_tool("debconf-set-selections", "debconf") {
                let o = util::output_within_secs(
                    Command::new("debconf-set-selections")
                        .args(["--checkonly"])
                        .arg(dir.path().join(name).join(&k)),
                    30,
                );
                assert!(o.status.success() && o.stderr.is_empty(), "{name}: {k}");
            }
            let (errors, _) = lint_preseed(&t);
            assert!(errors.is_empty(), "{name}: {k}: {}", errors.join("\n"));
            for tag in ["hvseed-early", "hvseed-late"] {
                sh_syntax_ok(
                    "sh",
                    &preseed_comment_script(&t, tag),
                    &format!("{name}: {k}"),
                );
            }
        }
        for (k, v) in &tree {
            if k.ends_with("plan.json") {
                hvseed_plan::plan::Plan::from_json(std::str::from_utf8(v).unwrap(), k)
                    .unwrap_or_else(|e| panic!("{name}: {k}: {e}"));
            }
            let snap = format!("example-{name}__{}", k.replace(['/', '.'], "_"));
            insta::assert_snapshot!(snap, String::from_utf8(v.clone()).unwrap());
        }
    }
}

#[test]
fn render_writes_nothing_for_an_invalid_inventory_and_keeps_foreign_directories() {
    let dir = tmpdir();
    let bad = dir.path().join("bad.yaml");
    let src =
        std::fs::read_to_string(util::root().join("profiles/examples/lab-centos6.yaml")).unwrap();
    std::fs::write(&bad, src.replace("vlan: 200", "vlan: 9999")).unwrap();
    let out = dir.path().join("out");
    let o = util::hvseed()
        .arg("render")
        .arg(&bad)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("bad.yaml:"));
    assert!(!out.exists(), "an invalid inventory writes nothing");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temporary left behind"
    );

    // A directory hvseed did not write is refused, with --force replaced.
    let foreign = dir.path().join("foreign");
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::write(foreign.join("notes.txt"), "mine").unwrap();
    let lab = util::root().join("profiles/examples/lab-centos6.yaml");
    let o = util::hvseed()
        .arg("render")
        .arg(&lab)
        .arg("--out")
        .arg(&foreign)
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("notes.txt") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(foreign.join("notes.txt")).unwrap(),
        "mine"
    );
    // Its own earlier render is replaced without --force; stale files go.
    let o = util::hvseed()
        .arg("render")
        .arg(&lab)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success());
    let ubuntu = util::root().join("profiles/examples/lab-ubuntu1204.yaml");
    let o = util::hvseed()
        .arg("render")
        .arg(&ubuntu)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.join("fleet/preseed.cfg").exists());
    assert!(
        !out.join("fleet/ks.cfg").exists(),
        "the previous render is gone"
    );
    let o = util::hvseed()
        .arg("render")
        .arg(&lab)
        .arg("--out")
        .arg(&foreign)
        .arg("--force")
        .output()
        .unwrap();
    assert!(o.status.success());
    assert!(!foreign.join("notes.txt").exists());
    assert!(foreign.join("fleet/ks.cfg").exists());
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("hvseed-tmp") || n.contains("hvseed-old"))
        .collect();
    assert!(left.is_empty(), "temporary directories left: {left:?}");
}

#[test]
fn templates_dir_overrides_a_template_by_name() {
    let dir = tmpdir();
    let tpl = dir.path().join("tpl");
    std::fs::create_dir_all(&tpl).unwrap();
    let pkgs = std::fs::read_to_string(util::root().join("profiles/centos6/packages.ks")).unwrap();
    std::fs::write(tpl.join("packages.ks"), format!("{pkgs}vim-enhanced\n")).unwrap();
    let tree = render_example(
        "lab-centos6",
        dir.path(),
        &["--templates", tpl.to_str().unwrap()],
    );
    let fleet = String::from_utf8(tree["fleet/ks.cfg"].clone()).unwrap();
    assert!(
        fleet.contains("\ncloudstack-agent\nvim-enhanced\n"),
        "{fleet}"
    );
    // A broken override names the file.
    std::fs::write(tpl.join("host.ks"), "{{ host.no_such_key }}\n").unwrap();
    let o = util::hvseed()
        .arg("render")
        .arg(util::root().join("profiles/examples/lab-centos6.yaml"))
        .args(["--out"])
        .arg(dir.path().join("o2"))
        .args(["--templates", tpl.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("host.ks") && err.contains("no_such_key"),
        "{err}"
    );
    assert!(!dir.path().join("o2").exists());
}

#[test]
fn http_base_sends_installers_to_the_server_and_reports_to_it() {
    let dir = tmpdir();
    let tree = render_example(
        "lab-ubuntu1204",
        dir.path(),
        &["--http-base", "http://10.0.2.2:8080/"],
    );
    let h = "kvm21.lab.example.org";
    let plan: serde_json::Value =
        serde_json::from_slice(&tree[&format!("hosts/{h}/plan.json")]).unwrap();
    assert_eq!(
        plan["report_url"],
        format!("http://10.0.2.2:8080/report/{h}")
    );
    let late = preseed_comment_script(
        &String::from_utf8(tree["fleet/preseed.cfg"].clone()).unwrap(),
        "hvseed-late",
    );
    assert!(late.contains("base=http://10.0.2.2:8080\n"), "{late}");
    let o = util::hvseed()
        .arg("render")
        .arg(util::root().join("profiles/examples/lab-ubuntu1204.yaml"))
        .arg("--out")
        .arg(dir.path().join("x"))
        .args(["--http-base", "http://h/$(id)"])
        .output()
        .unwrap();
    // A usage error, refused while the arguments are parsed.
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--http-base") && err.contains("not a plain http(s) URL"),
        "{err}"
    );
}

/// With `--http-base`, the installers fetch the agent, the plan and the keys from
/// `hvseed serve` (a tree laid out as `hvseed pxe` writes it: DIR/http = render tree +
/// agent): the fleet kickstart's %post --nochroot and the preseed's late script, run
/// against the real server.
#[test]
fn installers_fetch_their_files_from_hvseed_serve() {
    if !util::require_tool("curl", "curl") || !util::require_tool("wget", "wget") {
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let opts = RenderOptions {
        templates: None,
        media: Media::Http {
            base: format!("http://127.0.0.1:{port}").parse().unwrap(),
        },
    };
    for os in [Os::Centos6, Os::Ubuntu1204, Os::Debian12, Os::El9] {
        let inv = hostile(os);
        let tree = render_tree(&inv, &opts).unwrap();
        let dir = tmpdir();
        let srv = dir.path().join("srv");
        let http = fake_media(&tree, &srv).join("hvseed");
        std::fs::rename(&http, srv.join("http")).unwrap();
        let _server = util::ServeGuard::start_on(&srv, &format!("127.0.0.1:{port}"));
        let h = &inv.hosts[1];
        let root = dir.path().join("root");
        std::fs::create_dir_all(dir.path().join("t")).unwrap();
        let r = match os {
            Os::Centos6 | Os::El9 => {
                std::fs::write(dir.path().join("t/hvseed-fqdn"), format!("{}\n", h.fqdn)).unwrap();
                let nochroot = ks_script(&text(&tree, "fleet/ks.cfg"), "%post --nochroot");
                run_script(&nochroot, dir.path(), &[("HVSEED_SYSIMAGE", &root)], &[])
            }
            Os::Ubuntu1204 | Os::Debian12 => {
                std::fs::write(dir.path().join("t/hvseed-host"), format!("{}\n", h.fqdn)).unwrap();
                let late = preseed_comment_script(&text(&tree, "fleet/preseed.cfg"), "hvseed-late");
                run_script(&late, dir.path(), &[("HVSEED_TARGET", &root)], &[])
            }
            Os::Ubuntu2204 | Os::Ubuntu2404 => unreachable!("{os} is not a builder target yet"),
        };
        assert_eq!(r.code, Some(0), "{os}: {}{}", r.stderr, r.console);
        assert_plan_and_keys_installed(&root, &tree, &h.fqdn);
        assert!(
            std::fs::metadata(root.join("usr/sbin/hvseed-firstboot"))
                .unwrap()
                .len()
                > 0
        );
        let plan: serde_json::Value =
            serde_json::from_slice(&tree[&format!("hosts/{}/plan.json", h.fqdn)]).unwrap();
        assert_eq!(
            plan["report_url"],
            format!("http://127.0.0.1:{port}/report/{}", h.fqdn)
        );
    }
}

#[test]
fn one_host_and_mixed_fleets_resolve_to_valid_kickstarts() {
    let mut single = lab(Os::Centos6);
    single.hosts.truncate(1);
    let mut mixed = lab(Os::Centos6);
    mixed.hosts[1].install.source =
        InstallSource::Url("http://mirror.example.org/6.3/os/x86_64/".into());
    for (name, inv) in [("single", single), ("mixed", mixed)] {
        let tree = render_tree(&inv, &cd()).unwrap();
        let fleet = text(&tree, "fleet/ks.cfg");
        for h in &inv.hosts {
            let dir = tmpdir();
            let sys = fake_sysfs(dir.path(), &[("eth0", &h.mac)]);
            let r = run_script(
                &ks_script(&fleet, "%pre"),
                dir.path(),
                &[("HVSEED_SYSFS", &sys)],
                &[],
            );
            assert_eq!(r.code, Some(0), "{name}: {}", r.stderr);
            let f = dir.path().join("resolved.ks");
            std::fs::write(&f, resolve_includes(&fleet, &dir.path().join("t"))).unwrap();
            let own = dir.path().join("own.ks");
            std::fs::write(&own, text(&tree, &format!("hosts/{}/ks.cfg", h.fqdn))).unwrap();
            let Some(rb) = readback("RHEL6", &[f.clone(), own.clone()]) else {
                return;
            };
            let (a, b) = (&rb[f.to_str().unwrap()], &rb[own.to_str().unwrap()]);
            for key in ["method", "url", "network", "onlyuse", "packages", "repos"] {
                assert_eq!(j(&a[key]), j(&b[key]), "{name}: {}: {key}", h.fqdn);
            }
        }
    }
}

/// A pasted CloudStack key reaches d-i as `apt-setup/local0/key base64://…`; d-i's
/// fetch-url base64 method (`printf "%s" "${1#base64://*}" | base64 -d`) gives back
/// the key as written, and apt-setup then names the file `.asc` (it finds the armour
/// header).
#[test]
fn debian12_inline_key_survives_d_i_fetch_url() {
    let inv = hostile(Os::Debian12);
    let tree = render_tree(&inv, &cd()).unwrap();
    for (k, t) in preseeds(&tree) {
        let url = preseed_value(&t, "apt-setup/local0/key").unwrap();
        let out = util::output_within_secs(
            Command::new("sh")
                .args(["-c", r#"printf "%s" "${1#base64://*}" | base64 -d"#, "sh"])
                .arg(&url),
            10,
        );
        assert!(out.status.success(), "{k}");
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            HOSTILE_KEY_BLOCK,
            "{k}"
        );
        assert!(!preseed_value(&t, "apt-setup/local0/repository")
            .unwrap()
            .contains("trusted=yes"));
    }
}

/// Runs `apt-get update` on one sources line, with every apt directory private to
/// `dir`; returns (success, output).
fn apt_update(dir: &Path, line: &str) -> (bool, String) {
    let st = dir.join("apt-state");
    let _ = std::fs::remove_dir_all(&st);
    for d in ["lists/partial", "cache/archives/partial"] {
        std::fs::create_dir_all(st.join(d)).unwrap();
    }
    std::fs::write(st.join("sources.list"), format!("{line}\n")).unwrap();
    let o = util::output_within_secs(
        Command::new("apt-get")
            .arg("update")
            .arg("-o")
            .arg(format!(
                "Dir::Etc::SourceList={}",
                st.join("sources.list").display()
            ))
            .args(["-o", "Dir::Etc::SourceParts=/nonexistent"])
            .arg("-o")
            .arg(format!("Dir::State::Lists={}", st.join("lists").display()))
            .arg("-o")
            .arg(format!("Dir::Cache={}", st.join("cache").display()))
            .args(["-o", "Debug::NoLocking=1", "-o", "APT::Sandbox::User=root"]),
        60,
    );
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

/// A local apt repository `dists/<suite>/<component>/binary-amd64/Packages` (empty)
/// with its `Release`, clear-signed into `InRelease` when `gnupg` is given.
fn local_repo(dir: &Path, suite: &str, component: &str, gnupg: Option<&Path>) {
    let d = dir.join("dists").join(suite);
    let rel = format!("{component}/binary-amd64/Packages");
    std::fs::create_dir_all(d.join(&rel).parent().unwrap()).unwrap();
    std::fs::write(d.join(&rel), "").unwrap();
    let sha = {
        use sha2::Digest;
        sha2::Sha256::digest(b"")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    std::fs::write(
        d.join("Release"),
        format!(
            "Origin: hvseed-test\nSuite: {suite}\nCodename: {suite}\nComponents: {component}\nArchitectures: amd64\nDate: Mon, 07 Dec 2026 00:00:00 UTC\nSHA256:\n {sha} 0 {rel}\n"
        ),
    )
    .unwrap();
    if let Some(home) = gnupg {
        let st = Command::new("gpg")
            .env("GNUPGHOME", home)
            .args(["--batch", "--quiet", "--yes", "--clearsign", "-o"])
            .arg(d.join("InRelease"))
            .arg(d.join("Release"))
            .status()
            .unwrap();
        assert!(st.success(), "gpg --clearsign");
    }
}

/// d-i's apt-setup (1:0.182, generators/60local) writes the CloudStack repository as
/// `deb [signed-by=/etc/apt/keyrings/<comment>.asc] <repository>` when `local0/key`
/// was fetched, else `deb <repository>`, and keeps the line only if `apt-get update`
/// passes (apt-setup-verify). Against local copies of such a repository, real apt:
/// the pasted key, decoded as d-i's fetch-url decodes `base64://`, verifies the
/// signed one; `unauthenticated: true`'s `[trusted=yes]` passes an unsigned one; the
/// same line without it is refused, which is why debian12 needs one or the other.
#[test]
fn debian12_cloudstack_repository_lines_pass_apt_as_d_i_writes_them() {
    if !util::require_tool("gpg", "gpg") || !util::require_tool("apt-get", "apt") {
        return;
    }
    let dir = tmpdir();
    let home = dir.path().join("gnupg");
    std::fs::create_dir(&home).unwrap();
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
    let gpg = |args: &[&str]| {
        let o =
            util::output_within_secs(Command::new("gpg").env("GNUPGHOME", &home).args(args), 60);
        assert!(
            o.status.success(),
            "gpg {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        o.stdout
    };
    gpg(&[
        "--batch",
        "--quiet",
        "--pinentry-mode",
        "loopback",
        "--passphrase",
        "",
        "--quick-gen-key",
        "hvseed test repository <repo@example.org>",
        "ed25519",
        "sign",
        "never",
    ]);
    let armoured = String::from_utf8(gpg(&["--armor", "--export"])).unwrap();
    let url = "http://repo.example.org/cloudstack";

    // Signed, with the key pasted into the inventory.
    let mut inv = lab(Os::Debian12);
    for h in &mut inv.hosts {
        h.cloudstack.repository = url.into();
        h.cloudstack.apt = Some(AptRepository {
            suite: "jammy".into(),
            trust: AptTrust::KeyInline(armoured.trim().into()),
        });
    }
    let tree = render_tree(&inv, &cd()).unwrap();
    let p = text(&tree, "fleet/preseed.cfg");
    let repository = preseed_value(&p, "apt-setup/local0/repository").unwrap();
    let comment = preseed_value(&p, "apt-setup/local0/comment").unwrap();
    let key = preseed_value(&p, "apt-setup/local0/key").unwrap();
    let signed = dir.path().join("signed");
    local_repo(&signed, "jammy", "4.20", Some(&home));
    let keyfile = dir.path().join(format!(
        "{}.asc",
        comment.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
    ));
    let o = util::output_within_secs(
        Command::new("sh")
            .args([
                "-c",
                r#"printf "%s" "${1#base64://*}" | base64 -d > "$2""#,
                "sh",
            ])
            .arg(&key)
            .arg(&keyfile),
        10,
    );
    assert!(o.status.success());
    assert!(std::fs::read_to_string(&keyfile)
        .unwrap()
        .contains("-----BEGIN PGP PUBLIC KEY BLOCK-----"));
    let local = repository.replace(url, &format!("file:{}", signed.display()));
    assert_ne!(local, repository, "{repository}");
    let line = format!("deb [signed-by={}] {local}", keyfile.display());
    let (ok, out) = apt_update(dir.path(), &line);
    assert!(ok, "{line}\n{out}");
    // The key is what verifies it: without signed-by apt does not know it.
    let (ok, out) = apt_update(dir.path(), &format!("deb {local}"));
    assert!(!ok && out.contains("NO_PUBKEY"), "{out}");

    // Unsigned, `unauthenticated: true`.
    let mut inv = lab(Os::Debian12);
    for h in &mut inv.hosts {
        h.cloudstack.repository = url.into();
        h.cloudstack.apt = Some(AptRepository {
            suite: "jammy".into(),
            trust: AptTrust::Unauthenticated,
        });
    }
    let tree = render_tree(&inv, &cd()).unwrap();
    let p = text(&tree, "fleet/preseed.cfg");
    assert_eq!(preseed_value(&p, "apt-setup/local0/key"), None);
    let repository = preseed_value(&p, "apt-setup/local0/repository").unwrap();
    assert!(repository.starts_with("[trusted=yes] "), "{repository}");
    let unsigned = dir.path().join("unsigned");
    local_repo(&unsigned, "jammy", "4.20", None);
    let local = repository.replace(url, &format!("file:{}", unsigned.display()));
    let (ok, out) = apt_update(dir.path(), &format!("deb  {local}"));
    assert!(ok, "{local}\n{out}");
    // Without [trusted=yes] (a keyless line): refused, so apt-setup would comment
    // it out and cloudstack-agent could not be installed.
    let bare = local.trim_start_matches("[trusted=yes] ");
    let (ok, out) = apt_update(dir.path(), &format!("deb {bare}"));
    assert!(!ok && out.contains("is not signed"), "{out}");
}
