//! Integration tests for `hvseed pxe`: the tree against its real consumers — sha256sum,
//! dnsmasq's own config check, pykickstart, tar — its incremental behaviour (mtimes),
//! and a real PXE boot in QEMU where Debian's d-i fetches the host's preseed from
//! `hvseed serve`.
//!
//! The source ISOs are made here with `xorriso -as mkisofs` in the real layouts
//! (boot-media.md); Debian's d-i kernel and initrd stand in for the distributions'.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::util::{agent, hvseed, output_within_secs, require_tool, root, run_ok, ServeGuard};

#[test]
fn el9_tree_kickstarts_by_mac_from_the_dvd_tree_bios_and_uefi() {
    if !tools() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("tree");
    let base = "http://10.0.0.2:8080/lab";
    pxe_ok(&root().join(EL9_INV), &el9_iso(), &out, base, &[]);
    let t = files(&out);
    for f in [
        "tftp/el9/vmlinuz",
        "tftp/el9/initrd.img",
        "tftp/BOOTX64.EFI",
        "tftp/grubx64.efi",
        "tftp/grub.cfg",
        "http/os/.treeinfo",
        "http/os/.discinfo",
        "http/os/media.repo",
        "http/os/images/install.img",
        "http/os/BaseOS/Packages/b/bash-5.1.8-9.el9.x86_64.rpm",
        "http/os/BaseOS/repodata/repomd.xml",
        "http/os/AppStream/Packages/l/libvirt-10.5.0-7.el9_5.x86_64.rpm",
        "http/os/AppStream/repodata/repomd.xml",
    ] {
        assert!(t.contains_key(f), "{f} missing");
    }
    assert_eq!(t["tftp/el9/initrd.img"], b"el9 initrd stand-in\n");
    assert!(!t.keys().any(|k| k.contains("isolinux")));
    // UEFI: the DVD's own signed shim and GRUB (Secure Boot machines boot them), not
    // a GRUB hvseed builds; that GRUB looks for its files beside itself.
    let d = tempfile::tempdir().unwrap();
    for (iso_path, tree_path) in [
        ("/EFI/BOOT/BOOTX64.EFI", "tftp/BOOTX64.EFI"),
        ("/EFI/BOOT/grubx64.efi", "tftp/grubx64.efi"),
    ] {
        let local = d.path().join("f");
        run_ok(
            Command::new("xorriso")
                .args(["-osirrox", "on", "-indev"])
                .arg(el9_iso())
                .args(["-extract", iso_path])
                .arg(&local),
        );
        assert!(
            std::fs::read(&local).unwrap() == t[tree_path],
            "{tree_path}"
        );
        std::fs::remove_file(&local).unwrap();
    }
    assert!(!t.keys().any(|k| k.starts_with("tftp/grub/")));

    for (mac, fqdn) in [
        (MAC51, "kvm51.lab.example.org"),
        (MAC52, "kvm52.lab.example.org"),
    ] {
        // anaconda of EL9 reads only inst.* options: the kickstart over HTTP, stage2
        // and the packages from the DVD's tree beside it.
        let wants = [
            format!("inst.repo={base}/os"),
            format!("inst.ks={base}/hosts/{fqdn}/ks.cfg"),
            "console=ttyS0,115200n8".to_string(),
        ];
        let cfg = text(
            &t,
            &format!("tftp/pxelinux.cfg/01-{}", mac.replace(':', "-")),
        );
        let args = append_args(&cfg);
        assert_eq!(args[0], "initrd=el9/initrd.img", "{args:?}");
        assert_eq!(args[1..], wants, "{cfg}");
        assert!(cfg.lines().any(|l| l.trim() == "IPAPPEND 2"), "{cfg}");
        let g = text(&t, &format!("tftp/grub.cfg-01-{}", mac.replace(':', "-")));
        let linux = g
            .lines()
            .find(|l| l.trim_start().starts_with("linux "))
            .unwrap();
        let mut quoted: Vec<String> = wants.iter().map(|a| format!("'{a}'")).collect();
        quoted.push(format!("'BOOTIF=01-{}'", mac.replace(':', "-")));
        assert_eq!(
            linux.trim(),
            format!("linux /el9/vmlinuz {}", quoted.join(" ")),
            "{g}"
        );
        assert!(g.contains("initrd /el9/initrd.img"), "{g}");

        kickstart_installs_from_the_tree(&out, fqdn, base, "RHEL9");
    }
    // Unknown machines: pxelinux's default and GRUB's grub.cfg boot the local disk.
    let d = text(&t, "tftp/pxelinux.cfg/default");
    assert!(d.contains("LOCALBOOT 0") && !d.contains("KERNEL"), "{d}");
    let g = text(&t, "tftp/grub.cfg");
    assert!(g.contains("exit") && !g.contains("linux"), "{g}");
    let conf = text(&t, "dnsmasq.conf");
    assert!(
        conf.contains("dhcp-boot=tag:hvseed,tag:efi-x86_64,BOOTX64.EFI\n"),
        "{conf}"
    );
    dnsmasq_accepts(&out.join("dnsmasq.conf"));
    sums_cover_the_tree(&out, &t);
}

/// The host's kickstart in the tree installs from the DVD's tree over HTTP
/// (`url --url=BASE/os`), and pykickstart's ksvalidator for `version` accepts it.
fn kickstart_installs_from_the_tree(out: &Path, fqdn: &str, base: &str, version: &str) {
    let ks_path = out.join(format!("http/hosts/{fqdn}/ks.cfg"));
    let ks = std::fs::read_to_string(&ks_path).unwrap();
    assert!(
        ks.lines().any(|l| l == format!("url --url={base}/os")),
        "{ks}"
    );
    if let Some(v) = crate::util::ksvalidator() {
        run_ok(Command::new(v).args(["-v", version]).arg(&ks_path));
    }
}

const DI: &str = "/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64";
pub(crate) const UBUNTU_INV: &str = "tests/fixtures/pxe/ubuntu1204.yaml";
const CENTOS_INV: &str = "tests/fixtures/pxe/centos6.yaml";
const EL9_INV: &str = "tests/fixtures/pxe/el9.yaml";
pub(crate) const DEBIAN_INV: &str = "tests/fixtures/pxe/debian12.yaml";
/// d-i's netboot files as the debian-installer-12-netboot-amd64 package installs them
/// (the layout of netboot.tar.gz): the source of `hvseed pxe` for debian12.
pub(crate) const NETBOOT: &str = "/usr/lib/debian-installer/images/12/amd64/text";
const MAC31: &str = "52:54:00:12:34:31";
const MAC32: &str = "52:54:00:12:34:32";
const MAC21: &str = "52:54:00:12:34:21";
const MAC22: &str = "52:54:00:12:34:22";
const MAC51: &str = "52:54:00:12:34:51";
const MAC52: &str = "52:54:00:12:34:52";

/// Everything a tree test needs, or None (loudly) when a tool is missing.
pub(crate) fn tools() -> bool {
    require_tool("xorriso", "xorriso")
        && require_tool(&format!("{DI}/linux"), "debian-installer-12-netboot-amd64")
        && require_tool("/usr/lib/PXELINUX/pxelinux.0", "pxelinux")
        && require_tool(
            "/usr/lib/syslinux/modules/bios/ldlinux.c32",
            "syslinux-common",
        )
        && require_tool("grub-mkimage", "grub-common")
        && require_tool("/usr/lib/grub/x86_64-efi/normal.mod", "grub-efi-amd64-bin")
        && agent().is_some()
}

fn write(p: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, bytes).unwrap();
}

/// An Ubuntu 12.04 server ISO layout: `.disk/info`, the netboot installer, and a
/// mirror (dists/, pool/) (`make-fixtures.sh`'s `pxe` layout).
pub(crate) fn ubuntu_iso() -> PathBuf {
    crate::util::iso_fixtures("pxe").join("ubuntu-12.04.5-server-amd64.iso")
}

/// A CentOS 6.3 DVD layout: .discinfo/.treeinfo, the PXE kernel and initrd, stage2,
/// the grub-legacy EFI loader, Packages/ and repodata/ (`make-fixtures.sh`'s `pxe` layout).
fn centos_iso() -> PathBuf {
    crate::util::iso_fixtures("pxe").join("CentOS-6.3-x86_64-bin-DVD1.iso")
}

/// An EL9 DVD layout: productmd .treeinfo, the PXE kernel (Debian's d-i kernel) and a
/// stand-in initrd, stage2, BaseOS/ and AppStream/ (`make-fixtures.sh`'s `pxe` layout).
fn el9_iso() -> PathBuf {
    crate::util::iso_fixtures("pxe").join("Rocky-9.5-x86_64-dvd.iso")
}

/// Runs `hvseed pxe`, returning (success, stderr).
fn pxe(inv: &Path, iso: &Path, out: &Path, base: &str, extra: &[&str]) -> (bool, String) {
    let o = hvseed()
        .arg("pxe")
        .arg(inv)
        .arg("--source")
        .arg(iso)
        .arg("--out")
        .arg(out)
        .args(["--http-base", base])
        .arg("--firstboot")
        .arg(agent().unwrap())
        .args(extra)
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "hvseed=debug")
        .output()
        .unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn pxe_ok(inv: &Path, iso: &Path, out: &Path, base: &str, extra: &[&str]) -> String {
    let (ok, err) = pxe(inv, iso, out, base, extra);
    assert!(ok, "hvseed pxe failed:\n{err}");
    err
}

/// Every file of the tree (relative path → bytes), without hvseed's manifest.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let rel = e
                .path()
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (rel, std::fs::read(e.path()).unwrap())
        })
        .filter(|(rel, _)| rel != ".hvseed-pxe-manifest.json")
        .collect()
}

fn mtimes(dir: &Path) -> BTreeMap<String, (i64, i64)> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let m = e.metadata().unwrap();
            let rel = e
                .path()
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (rel, (m.mtime(), m.mtime_nsec()))
        })
        .collect()
}

fn text(tree: &BTreeMap<String, Vec<u8>>, path: &str) -> String {
    String::from_utf8(
        tree.get(path)
            .unwrap_or_else(|| panic!("{path} missing"))
            .clone(),
    )
    .unwrap()
}

/// The words of the pxelinux `APPEND` line.
fn append_args(cfg: &str) -> Vec<String> {
    let line = cfg
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("APPEND "))
        .expect("an APPEND line");
    line.split(' ').map(str::to_string).collect()
}

fn sha256sum_check(dir: &Path) {
    run_ok(
        Command::new("sha256sum")
            .args(["-c", "--strict", "SHA256SUMS"])
            .current_dir(dir),
    );
}

fn dnsmasq_accepts(conf: &Path) {
    if !require_tool("dnsmasq", "dnsmasq-base") {
        return;
    }
    let o = output_within_secs(Command::new("dnsmasq").args(["--test", "-C"]).arg(conf), 20);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        o.status.success() && all.contains("syntax check OK"),
        "dnsmasq --test: {all}"
    );
}

/// `sha256sum -c` verifies, and the listed set is every file but SHA256SUMS itself.
fn sums_cover_the_tree(dir: &Path, tree: &BTreeMap<String, Vec<u8>>) {
    sha256sum_check(dir);
    let listed: Vec<String> = text(tree, "SHA256SUMS")
        .lines()
        .map(|l| l.split_once("  ").unwrap().1.to_string())
        .collect();
    let mut expected: Vec<String> = tree
        .keys()
        .filter(|k| *k != "SHA256SUMS" && !k.ends_with(".hvseed-stamp.json"))
        .cloned()
        .collect();
    expected.sort();
    assert_eq!(listed, expected);
}

#[test]
fn ubuntu_tree_boots_each_host_by_mac_and_unknown_machines_from_disk() {
    if !tools() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("tree");
    let base = "http://10.0.0.2:8080";
    pxe_ok(&root().join(UBUNTU_INV), &ubuntu_iso(), &out, base, &[]);
    let t = files(&out);
    let fq21 = "kvm21.lab.example.org";
    let fq22 = "kvm22.lab.example.org";
    let expected: Vec<String> = [
        "SHA256SUMS",
        "dnsmasq.conf",
        &format!("http/hosts/{fq21}/authorized_keys"),
        &format!("http/hosts/{fq21}/plan.json"),
        &format!("http/hosts/{fq21}/preseed.cfg"),
        &format!("http/hosts/{fq22}/authorized_keys"),
        &format!("http/hosts/{fq22}/plan.json"),
        &format!("http/hosts/{fq22}/preseed.cfg"),
        "http/hvseed-firstboot",
        "http/os/.disk/info",
        "http/os/.hvseed-stamp.json",
        "http/os/dists/precise/Release",
        "http/os/pool/main/h/hello/hello_2.7-2_amd64.deb",
        "tftp/grub/grub.cfg",
        "tftp/grub/grub.cfg-01-52-54-00-12-34-21",
        "tftp/grub/grub.cfg-01-52-54-00-12-34-22",
        "tftp/grubx64.efi",
        "tftp/ldlinux.c32",
        "tftp/pxelinux.0",
        "tftp/pxelinux.cfg/01-52-54-00-12-34-21",
        "tftp/pxelinux.cfg/01-52-54-00-12-34-22",
        "tftp/pxelinux.cfg/default",
        "tftp/ubuntu1204/initrd.gz",
        "tftp/ubuntu1204/linux",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(t.keys().cloned().collect::<Vec<_>>(), expected);

    // Only the installer's kernel and initrd come from the ISO's boot files, byte for byte;
    // the boot loaders are the build host's; the agent is the one given.
    assert_eq!(
        t["tftp/ubuntu1204/linux"],
        std::fs::read(format!("{DI}/linux")).unwrap()
    );
    assert_eq!(
        t["tftp/ubuntu1204/initrd.gz"],
        std::fs::read(format!("{DI}/initrd.gz")).unwrap()
    );
    assert_eq!(
        t["tftp/pxelinux.0"],
        std::fs::read("/usr/lib/PXELINUX/pxelinux.0").unwrap()
    );
    assert_eq!(
        t["tftp/ldlinux.c32"],
        std::fs::read("/usr/lib/syslinux/modules/bios/ldlinux.c32").unwrap()
    );
    assert_eq!(
        t["http/hvseed-firstboot"],
        std::fs::read(agent().unwrap()).unwrap()
    );
    let o = Command::new("file")
        .arg(out.join("tftp/grubx64.efi"))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("EFI application"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );

    // pxelinux: per MAC, the d-i command line with this host's preseed URL, BOOTIF via
    // IPAPPEND 2, the inventory's kernel args; paths that exist in the TFTP root.
    for (mac, fqdn, short) in [(MAC21, fq21, "kvm21"), (MAC22, fq22, "kvm22")] {
        let name = format!("01-{}", mac.replace(':', "-"));
        let cfg = text(&t, &format!("tftp/pxelinux.cfg/{name}"));
        let args = append_args(&cfg);
        for want in [
            "initrd=ubuntu1204/initrd.gz".to_string(),
            "auto=true".into(),
            "priority=critical".into(),
            format!("url={base}/hosts/{fqdn}/preseed.cfg"),
            "locale=en_US.UTF-8".into(),
            "keyboard-configuration/layoutcode=us".into(),
            format!("hostname={short}"),
            "domain=lab.example.org".into(),
            "netcfg/choose_interface=auto".into(),
            "console=ttyS0,115200n8".into(),
        ] {
            assert!(args.contains(&want), "{name}: no {want} in {args:?}");
        }
        assert!(cfg.lines().any(|l| l.trim() == "IPAPPEND 2"), "{cfg}");
        assert!(
            cfg.lines().any(|l| l.trim() == "KERNEL ubuntu1204/linux"),
            "{cfg}"
        );
        assert!(cfg.lines().any(|l| l.trim() == "SERIAL 0 115200"), "{cfg}");
        assert!(t.contains_key(&format!("http/hosts/{fqdn}/preseed.cfg")));

        let grub = text(&t, &format!("tftp/grub/grub.cfg-{name}"));
        let linux = grub
            .lines()
            .find(|l| l.trim_start().starts_with("linux "))
            .unwrap();
        assert!(
            linux.contains(&format!("'url={base}/hosts/{fqdn}/preseed.cfg'")),
            "{linux}"
        );
        assert!(linux.contains(&format!("'BOOTIF={name}'")), "{linux}");
        assert!(
            linux.trim_start().starts_with("linux /ubuntu1204/linux "),
            "{linux}"
        );
        assert!(grub.contains("initrd /ubuntu1204/initrd.gz"), "{grub}");
    }
    let default = text(&t, "tftp/pxelinux.cfg/default");
    assert!(
        default.lines().any(|l| l.trim() == "LOCALBOOT 0"),
        "{default}"
    );
    assert!(
        !default.contains("KERNEL") && !default.contains("APPEND"),
        "{default}"
    );
    let gdefault = text(&t, "tftp/grub/grub.cfg");
    assert!(gdefault.lines().any(|l| l.trim() == "exit") && !gdefault.contains("linux"));

    // The preseed installs from the ISO's package tree served under http/os, and the
    // plan is this host's.
    let preseed = text(&t, &format!("http/hosts/{fq21}/preseed.cfg"));
    assert!(
        preseed.contains("d-i mirror/http/hostname string 10.0.0.2:8080"),
        "{preseed}"
    );
    assert!(
        preseed.contains("d-i mirror/http/directory string /os"),
        "{preseed}"
    );
    let plan = hvseed_plan::plan::Plan::from_json(
        &text(&t, &format!("http/hosts/{fq22}/plan.json")),
        "plan.json",
    )
    .unwrap();
    assert_eq!(plan.fqdn, fq22);

    // dnsmasq: its own checker accepts the file; each MAC gets its hostname; BIOS and
    // UEFI clients get their loaders.
    let conf = text(&t, "dnsmasq.conf");
    dnsmasq_accepts(&out.join("dnsmasq.conf"));
    assert!(
        conf.contains(&format!("dhcp-host={MAC21},set:hvseed,kvm21\n")),
        "{conf}"
    );
    assert!(
        conf.contains(&format!("dhcp-host={MAC22},set:hvseed,kvm22\n")),
        "{conf}"
    );
    assert!(conf.contains(&format!(
        "tftp-root={}\n",
        out.canonicalize().unwrap().join("tftp").display()
    )));
    assert!(
        conf.contains("dhcp-boot=tag:hvseed,tag:!efi-x86_64,pxelinux.0\n"),
        "{conf}"
    );
    assert!(
        conf.contains("dhcp-boot=tag:hvseed,tag:efi-x86_64,grubx64.efi\n"),
        "{conf}"
    );
    assert!(
        !conf.contains("192.168.42.21"),
        "the management address is on a tagged VLAN"
    );

    sums_cover_the_tree(&out, &t);
}

#[test]
fn centos_tree_kickstarts_by_mac_from_the_dvd_tree_bios_and_uefi() {
    if !tools() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("tree");
    let base = "http://10.0.0.2:8080/lab";
    pxe_ok(&root().join(CENTOS_INV), &centos_iso(), &out, base, &[]);
    let t = files(&out);
    for f in [
        "tftp/centos6/vmlinuz",
        "tftp/centos6/initrd.img",
        "tftp/BOOTX64.efi",
        "tftp/efidefault",
        "http/os/.treeinfo",
        "http/os/.discinfo",
        "http/os/images/install.img",
        "http/os/Packages/bash-4.1.2-9.el6_2.x86_64.rpm",
        "http/os/repodata/repomd.xml",
    ] {
        assert!(t.contains_key(f), "{f} missing");
    }
    assert_eq!(t["tftp/centos6/initrd.img"], b"centos initrd stand-in\n");
    // Only the files named were taken from the ISO's boot area.
    assert!(!t
        .keys()
        .any(|k| k.contains("BOOTX64.conf") || k.contains("isolinux")));
    assert!(!t.keys().any(|k| k.starts_with("tftp/grub")));

    for (mac, fqdn) in [
        (MAC21, "kvm1.lab.example.org"),
        (MAC22, "kvm2.lab.example.org"),
    ] {
        let cfg = text(
            &t,
            &format!("tftp/pxelinux.cfg/01-{}", mac.replace(':', "-")),
        );
        let args = append_args(&cfg);
        for want in [
            "initrd=centos6/initrd.img".to_string(),
            format!("ks={base}/hosts/{fqdn}/ks.cfg"),
            "ksdevice=bootif".into(),
        ] {
            assert!(args.contains(&want), "no {want} in {args:?}");
        }
        assert!(cfg.lines().any(|l| l.trim() == "IPAPPEND 2"), "{cfg}");
        // grub-legacy EFI: upper-case MAC file, kernel line with the MAC as ksdevice.
        let g = text(
            &t,
            &format!("tftp/01-{}", mac.replace(':', "-").to_uppercase()),
        );
        let kernel = g
            .lines()
            .find(|l| l.trim_start().starts_with("kernel "))
            .unwrap();
        assert!(
            kernel.contains(&format!("ks={base}/hosts/{fqdn}/ks.cfg")),
            "{kernel}"
        );
        assert!(kernel.contains(&format!("ksdevice={mac}")), "{kernel}");
        assert!(
            kernel.trim_start().starts_with("kernel /centos6/vmlinuz "),
            "{kernel}"
        );
        assert!(g.contains("initrd /centos6/initrd.img"), "{g}");

        kickstart_installs_from_the_tree(&out, fqdn, base, "RHEL6");
    }
    let conf = text(&t, "dnsmasq.conf");
    assert!(
        conf.contains("dhcp-boot=tag:hvseed,tag:efi-x86_64,BOOTX64.efi\n"),
        "{conf}"
    );
    dnsmasq_accepts(&out.join("dnsmasq.conf"));
    sums_cover_the_tree(&out, &t);
}

#[test]
fn reruns_touch_only_what_changed_and_remove_departed_hosts() {
    if !tools() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("tree");
    let base = "http://10.0.0.2:8080";
    let inv = tmp.path().join("lab.yaml");
    let original = std::fs::read_to_string(root().join(UBUNTU_INV)).unwrap();
    std::fs::write(&inv, &original).unwrap();
    pxe_ok(&inv, &ubuntu_iso(), &out, base, &[]);
    // A file of the user's in the tree is never touched, nor are the first-boot
    // reports `hvseed serve` keeps in DIR/reports/ (also of a host that leaves).
    write(&out.join("tftp/memtest86+.bin"), b"the user's own\n");
    let report = br#"{"fqdn":"kvm22.lab.example.org","ok":true}"#;
    write(&out.join("reports/kvm22.lab.example.org.json"), report);
    let before = mtimes(&out);
    let content = files(&out);
    std::thread::sleep(Duration::from_millis(20));

    // Same inputs: nothing is rewritten.
    let log = pxe_ok(&inv, &ubuntu_iso(), &out, base, &[]);
    assert!(
        log.contains("0 file(s) added, 0 updated, 0 removed"),
        "{log}"
    );
    assert_eq!(mtimes(&out), before);

    // A host's files changed or removed by hand are put back as hvseed wrote them,
    // although the host did not change; nothing else is rewritten.
    let pxe21 = "tftp/pxelinux.cfg/01-52-54-00-12-34-21";
    let plan21 = "http/hosts/kvm21.lab.example.org/plan.json";
    write(&out.join(pxe21), b"DEFAULT edited-by-hand\n");
    std::fs::remove_file(out.join(plan21)).unwrap();
    let log = pxe_ok(&inv, &ubuntu_iso(), &out, base, &[]);
    let now = files(&out);
    assert_eq!(now[pxe21], content[pxe21], "{log}");
    assert_eq!(now[plan21], content[plan21], "{log}");
    let before_edit = before.clone();
    let before: BTreeMap<String, _> = mtimes(&out);
    for (k, m) in &before_edit {
        if k != pxe21 && k != plan21 && k != ".hvseed-pxe-manifest.json" {
            assert_eq!(before.get(k), Some(m), "{k} was rewritten:\n{log}");
        }
    }
    std::thread::sleep(Duration::from_millis(20));

    // One host changes: only its files (and the checksums) are rewritten.
    assert!(original.contains("    install: { disk: vda }"));
    std::fs::write(
        &inv,
        original.replace("    install: { disk: vda }", "    install: { disk: vdb }"),
    )
    .unwrap();
    let log = pxe_ok(&inv, &ubuntu_iso(), &out, base, &[]);
    let after = mtimes(&out);
    let changed: Vec<&String> = after
        .keys()
        .filter(|k| before.get(*k) != after.get(*k))
        .collect();
    assert!(!changed.is_empty());
    for k in &changed {
        assert!(
            k.starts_with("http/hosts/kvm22.lab.example.org/")
                || k.ends_with("01-52-54-00-12-34-22")
                || *k == "SHA256SUMS"
                || *k == ".hvseed-pxe-manifest.json",
            "{k} was rewritten although only kvm22 changed:\n{log}"
        );
    }
    assert!(changed
        .iter()
        .any(|k| k.ends_with("kvm22.lab.example.org/preseed.cfg")));
    assert!(
        text(&files(&out), "http/hosts/kvm22.lab.example.org/preseed.cfg").contains("/dev/vdb")
    );
    assert!(
        log.contains("updated http/hosts/kvm22.lab.example.org/preseed.cfg"),
        "{log}"
    );
    sha256sum_check(&out);

    // A host leaves: its files go, nothing else does.
    let start = original.find("  - fqdn: kvm22").unwrap();
    std::fs::write(&inv, &original[..start]).unwrap();
    let log = pxe_ok(&inv, &ubuntu_iso(), &out, base, &[]);
    let now = files(&out);
    assert!(
        !now.keys()
            .filter(|k| !k.starts_with("reports/"))
            .any(|k| k.contains("kvm22") || k.contains("12-34-22")),
        "{log}"
    );
    assert_eq!(now["reports/kvm22.lab.example.org.json"], report);
    assert!(!out.join("http/hosts/kvm22.lab.example.org").exists());
    assert!(!text(&now, "dnsmasq.conf").contains(MAC22));
    assert_eq!(now["tftp/memtest86+.bin"], b"the user's own\n");
    assert_eq!(
        now["tftp/ubuntu1204/initrd.gz"],
        content["tftp/ubuntu1204/initrd.gz"]
    );
    assert!(
        log.contains("removed tftp/pxelinux.cfg/01-52-54-00-12-34-22"),
        "{log}"
    );
    sha256sum_check(&out);
}

#[test]
fn bundles_are_byte_identical_and_unpack_to_the_tree() {
    if !tools() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let inv = root().join(UBUNTU_INV);
    let base = "http://10.0.0.2:8080";
    let out = tmp.path().join("tree");
    let (a, b) = (tmp.path().join("a.tar.gz"), tmp.path().join("b.tar.gz"));
    pxe_ok(
        &inv,
        &ubuntu_iso(),
        &out,
        base,
        &["--bundle", a.to_str().unwrap()],
    );
    // Later, with every file's mtime changed (same content): the same bytes.
    std::thread::sleep(Duration::from_millis(1100));
    for e in walkdir::WalkDir::new(&out) {
        let e = e.unwrap();
        if e.file_type().is_file() {
            let f = std::fs::File::options()
                .append(true)
                .open(e.path())
                .unwrap();
            f.set_modified(std::time::SystemTime::now()).unwrap();
        }
    }
    pxe_ok(
        &inv,
        &ubuntu_iso(),
        &out,
        base,
        &["--bundle", b.to_str().unwrap()],
    );
    let (ba, bb) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    assert!(ba == bb, "two bundles of the same tree differ");
    // gzip header: no mtime (bytes 4..8 zero).
    assert_eq!(&ba[4..8], &[0, 0, 0, 0]);
    let o = Command::new("tar")
        .args(["--numeric-owner", "-tvzf"])
        .arg(&a)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&o.stdout);
    let names: Vec<&str> = listing
        .lines()
        .map(|l| l.rsplit(' ').next().unwrap())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "entries are not sorted");
    for l in listing.lines() {
        assert!(l.contains(" 0/0 ") && l.contains("1970-01-01 00:00"), "{l}");
    }
    let x = tmp.path().join("x");
    std::fs::create_dir(&x).unwrap();
    run_ok(Command::new("tar").arg("-xzf").arg(&a).arg("-C").arg(&x));
    sha256sum_check(&x);
}

#[test]
fn mismatched_syslinux_foreign_files_and_wrong_isos_are_refused() {
    if !tools() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let inv = root().join(UBUNTU_INV);
    let base = "http://10.0.0.2:8080";
    let out = tmp.path().join("tree");

    // pxelinux.0 of another syslinux version than the modules.
    let old = tmp.path().join("old-pxelinux");
    let mut core = vec![0u8; 64];
    core.extend_from_slice(b"PXELINUX 4.05 2011-12-09 Copyright");
    write(&old.join("pxelinux.0"), &core);
    let (ok, err) = pxe(
        &inv,
        &ubuntu_iso(),
        &out,
        base,
        &["--pxelinux-dir", old.to_str().unwrap()],
    );
    assert!(
        !ok && err.contains("PXELINUX 4.05") && err.contains("syslinux 6.04"),
        "{err}"
    );
    assert!(!out.join("tftp").exists(), "nothing may be written");

    // The other distribution's ISO, no ISO at all, a truncated ISO.
    let (ok, err) = pxe(&inv, &centos_iso(), &out, base, &[]);
    assert!(
        !ok && err.contains("CentOS 6.3") && err.contains("ubuntu1204"),
        "{err}"
    );
    // EL9 and CentOS 6 DVDs, each given for the other's inventory.
    let el9 = root().join(EL9_INV);
    let (ok, err) = pxe(&el9, &centos_iso(), &out, base, &[]);
    assert!(
        !ok && err.contains("CentOS 6.3") && err.contains("el9"),
        "{err}"
    );
    let (ok, err) = pxe(&root().join(CENTOS_INV), &el9_iso(), &out, base, &[]);
    assert!(
        !ok && err.contains("Rocky Linux 9.5") && err.contains("centos6"),
        "{err}"
    );
    assert!(!out.join("tftp").exists(), "nothing may be written");
    let not_iso = tmp.path().join("notes.txt");
    std::fs::write(&not_iso, "hello\n".repeat(10000)).unwrap();
    let (ok, err) = pxe(&inv, &not_iso, &out, base, &[]);
    assert!(!ok && err.contains("not an ISO 9660 image"), "{err}");
    // A truncated download of the right ISO.
    let short = tmp.path().join("short.iso");
    let bytes = std::fs::read(ubuntu_iso()).unwrap();
    std::fs::write(&short, &bytes[..bytes.len() / 2]).unwrap();
    let (ok, err) = pxe(&inv, &short, &out, base, &[]);
    assert!(!ok && err.contains("is truncated"), "{err}");

    // A file hvseed did not write stands where the tree needs one.
    write(&out.join("tftp/pxelinux.cfg/default"), b"DEFAULT mine\n");
    let (ok, err) = pxe(&inv, &ubuntu_iso(), &out, base, &[]);
    assert!(
        !ok && err.contains("did not write") && err.contains("tftp/pxelinux.cfg/default"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(out.join("tftp/pxelinux.cfg/default")).unwrap(),
        b"DEFAULT mine\n"
    );
    assert!(!out.join("tftp/pxelinux.0").exists());

    // A URL that would break the kernel command line.
    let (ok, err) = pxe(
        &inv,
        &ubuntu_iso(),
        &tmp.path().join("t2"),
        "http://x y/",
        &[],
    );
    assert!(!ok && err.contains("--http-base"), "{err}");
}

/// Every file and link under `dir`: path → (bytes of a file, or the target of a
/// link, mtime); directories by name only (their mtimes change with temporary
/// entries).
fn snapshot(dir: &Path) -> BTreeMap<String, (Vec<u8>, (i64, i64))> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap())
        .map(|e| {
            if e.file_type().is_dir() {
                let rel = e
                    .path()
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                return (rel + "/", (Vec::new(), (0, 0)));
            }
            let m = std::fs::symlink_metadata(e.path()).unwrap();
            let rel = e
                .path()
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let bytes = if m.is_file() {
                std::fs::read(e.path()).unwrap()
            } else if m.file_type().is_symlink() {
                std::fs::read_link(e.path())
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes()
            } else {
                Vec::new()
            };
            (rel, (bytes, (m.mtime(), m.mtime_nsec())))
        })
        .collect()
}

/// Asserts two snapshots are equal, naming the entries that differ.
fn assert_same(
    a: &BTreeMap<String, (Vec<u8>, (i64, i64))>,
    b: &BTreeMap<String, (Vec<u8>, (i64, i64))>,
    what: &str,
) {
    let differ: Vec<&String> = a
        .keys()
        .chain(b.keys())
        .filter(|k| a.get(*k) != b.get(*k))
        .collect();
    assert!(differ.is_empty(), "{what}: these differ: {differ:?}");
}

/// Nothing `hvseed pxe` writes or removes leaves DIR: a directory of the tree replaced
/// by a symbolic link to elsewhere (a host's directory, tftp/pxelinux.cfg, http/os,
/// http, tftp) is refused with a message naming it, the link's target is untouched
/// (bytes and mtimes) and the tree is as it was; once the link is gone, the tree is
/// rebuilt. A link where a file of hvseed's is replaced by the file, its target left
/// as it was.
#[test]
fn links_in_the_tree_are_never_followed_out_of_it() {
    if !tools() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let inv = root().join(UBUNTU_INV);
    let base = "http://10.0.0.2:8080";
    let out = tmp.path().join("tree");
    pxe_ok(&inv, &ubuntu_iso(), &out, base, &[]);
    let pristine = files(&out);
    let outside = tmp.path().join("outside");
    write(&outside.join("precious"), b"not hvseed's\n");
    write(&outside.join("plan.json"), b"not a plan\n");
    for (i, link) in [
        "http/hosts/kvm21.lab.example.org",
        "tftp/pxelinux.cfg",
        "http/os",
        "http",
        "tftp",
    ]
    .into_iter()
    .enumerate()
    {
        let moved = tmp.path().join(format!("moved-{i}"));
        std::fs::rename(out.join(link), &moved).unwrap();
        std::os::unix::fs::symlink(&outside, out.join(link)).unwrap();
        let outside_before = snapshot(&outside);
        let tree_before = snapshot(&out);
        let (ok, err) = pxe(
            &inv,
            &ubuntu_iso(),
            &out,
            base,
            &["--bundle", tmp.path().join("b.tar.gz").to_str().unwrap()],
        );
        assert!(!ok, "{link}: a run through a link succeeded:\n{err}");
        assert!(
            err.contains(&format!("{link} is a symbolic link")) && err.contains("rm "),
            "{link}: {err}"
        );
        assert_same(
            &snapshot(&outside),
            &outside_before,
            &format!("{link}: written through"),
        );
        assert_same(
            &snapshot(&out),
            &tree_before,
            &format!("{link}: the tree changed"),
        );
        assert!(!tmp.path().join("b.tar.gz").exists());
        // Repaired by hand (the link removed): the next run rebuilds the tree.
        std::fs::remove_file(out.join(link)).unwrap();
        std::fs::remove_dir_all(&moved).unwrap();
        pxe_ok(&inv, &ubuntu_iso(), &out, base, &[]);
        assert!(
            files(&out) == pristine,
            "{link}: the tree was not rebuilt as it was"
        );
        assert_same(&snapshot(&outside), &outside_before, link);
    }
    // A file of the tree replaced by a link: the file is put back, the link's target
    // is not written.
    let pxe21 = out.join("tftp/pxelinux.cfg/01-52-54-00-12-34-21");
    std::fs::remove_file(&pxe21).unwrap();
    std::os::unix::fs::symlink(outside.join("precious"), &pxe21).unwrap();
    let outside_before = snapshot(&outside);
    pxe_ok(&inv, &ubuntu_iso(), &out, base, &[]);
    assert!(std::fs::symlink_metadata(&pxe21).unwrap().is_file());
    assert!(files(&out) == pristine, "the file was not put back");
    assert_same(&snapshot(&outside), &outside_before, "a linked file");
}

/// "PXE just once": once a host's installer fetched its preseed from `hvseed serve`,
/// that host's pxelinux and GRUB files boot the local disk (the other host's still
/// install); a re-run of `hvseed pxe` keeps them so; `--reinstall` arms them again,
/// `--disarm` (for trees served by another web server) disarms them; the status
/// shows which.
/// EL9: anaconda's GET of a host's kickstart from `hvseed serve` disarms both of its
/// boot files, the UEFI one in the TFTP root beside the DVD's GRUB included; `hvseed
/// pxe` keeps them so until `--reinstall`.
#[test]
fn el9_host_is_installed_by_pxe_once_until_reinstall() {
    if !tools() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let inv = root().join(EL9_INV);
    let base = "http://10.0.0.2:8080";
    let out = tmp.path().join("tree");
    pxe_ok(&inv, &el9_iso(), &out, base, &[]);
    let (pxe51, grub51) = (
        "tftp/pxelinux.cfg/01-52-54-00-12-34-51",
        "tftp/grub.cfg-01-52-54-00-12-34-51",
    );
    let installs = |t: &BTreeMap<String, Vec<u8>>| {
        text(t, pxe51).contains("KERNEL ") && text(t, grub51).contains("linux ")
    };
    let boots_disk = |t: &BTreeMap<String, Vec<u8>>| {
        let (p, g) = (text(t, pxe51), text(t, grub51));
        p.lines().any(|l| l.trim() == "LOCALBOOT 0")
            && !p.contains("KERNEL")
            && g.lines().any(|l| l.trim() == "exit")
            && !g.contains("linux")
    };
    assert!(installs(&files(&out)));
    {
        let server = ServeGuard::start(&out);
        let r = server.get("/hosts/kvm51.lab.example.org/ks.cfg");
        assert_eq!(r.status, 200);
    }
    let t = files(&out);
    assert!(boots_disk(&t), "{}\n{}", text(&t, pxe51), text(&t, grub51));
    // The other host is still armed.
    assert!(text(&t, "tftp/grub.cfg-01-52-54-00-12-34-52").contains("linux "));
    pxe_ok(&inv, &el9_iso(), &out, base, &[]);
    assert!(boots_disk(&files(&out)));
    pxe_ok(
        &inv,
        &el9_iso(),
        &out,
        base,
        &["--reinstall", "kvm51.lab.example.org"],
    );
    assert!(installs(&files(&out)));
}

#[test]
fn a_host_is_installed_by_pxe_once_until_reinstall() {
    if !tools() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let inv = root().join(UBUNTU_INV);
    let base = "http://10.0.0.2:8080";
    let out = tmp.path().join("tree");
    // The tree without serve's records and the hosts' PXE state.
    let tree_files = |d: &Path| {
        let mut f = files(d);
        f.retain(|k, _| !k.starts_with("reports/") && !k.starts_with("pxe-state/"));
        f
    };
    pxe_ok(&inv, &ubuntu_iso(), &out, base, &[]);
    let pristine = tree_files(&out);
    let (pxe21, grub21) = (
        "tftp/pxelinux.cfg/01-52-54-00-12-34-21",
        "tftp/grub/grub.cfg-01-52-54-00-12-34-21",
    );
    let (pxe22, grub22) = (
        "tftp/pxelinux.cfg/01-52-54-00-12-34-22",
        "tftp/grub/grub.cfg-01-52-54-00-12-34-22",
    );
    let installs = |t: &BTreeMap<String, Vec<u8>>, pxe: &str, grub: &str| {
        let (p, g) = (text(t, pxe), text(t, grub));
        p.contains("KERNEL ") && p.contains("APPEND ") && g.contains("linux ")
    };
    let boots_disk = |t: &BTreeMap<String, Vec<u8>>, pxe: &str, grub: &str| {
        let (p, g) = (text(t, pxe), text(t, grub));
        p.lines().any(|l| l.trim() == "LOCALBOOT 0")
            && !p.contains("KERNEL")
            && !p.contains("APPEND")
            && g.lines().any(|l| l.trim() == "exit")
            && !g.contains("linux")
            && !g.contains("initrd")
    };
    assert!(installs(&pristine, pxe21, grub21) && installs(&pristine, pxe22, grub22));

    let server = ServeGuard::start(&out);
    let pxe_state = |server: &ServeGuard, fqdn: &str| {
        let status = server.status_json();
        status["clusters"][0]["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["fqdn"] == fqdn)
            .unwrap()["pxe"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(pxe_state(&server, "kvm22.lab.example.org"), "armed");
    // A HEAD is no install; the GET of the preseed is.
    let r = server.raw(
        b"HEAD /hosts/kvm22.lab.example.org/preseed.cfg HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    assert_eq!(tree_files(&out), pristine);
    let r = server.get("/hosts/kvm22.lab.example.org/preseed.cfg");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body,
        pristine["http/hosts/kvm22.lab.example.org/preseed.cfg"]
    );
    let now = tree_files(&out);
    assert!(boots_disk(&now, pxe22, grub22), "{}", text(&now, pxe22));
    assert!(installs(&now, pxe21, grub21));
    assert_eq!(pxe_state(&server, "kvm22.lab.example.org"), "disarmed");
    assert_eq!(pxe_state(&server, "kvm21.lab.example.org"), "armed");
    let page = server.get("/").text();
    assert!(
        page.contains("disarmed") && page.contains("armed"),
        "{page}"
    );
    assert!(
        server.log_text().contains("PXE entry disarmed"),
        "{}",
        server.log_text()
    );

    // A re-run keeps the entry disarmed, and its checksums follow.
    let log = pxe_ok(&inv, &ubuntu_iso(), &out, base, &[]);
    let rerun = tree_files(&out);
    assert!(boots_disk(&rerun, pxe22, grub22), "{log}");
    // What serve wrote is what pxe writes (SERIAL line included): nothing rewritten.
    assert_eq!(rerun[pxe22], now[pxe22], "{log}");
    assert_eq!(rerun[grub22], now[grub22], "{log}");
    assert!(text(&rerun, pxe22).contains("\nSERIAL 0 115200\n"));
    assert!(installs(&rerun, pxe21, grub21));
    sha256sum_check(&out);
    // A host that is not in the inventory is refused.
    let (ok, err) = pxe(
        &inv,
        &ubuntu_iso(),
        &out,
        base,
        &["--reinstall", "nope.example.org"],
    );
    assert!(
        !ok && err.contains("--reinstall \"nope.example.org\""),
        "{err}"
    );
    assert!(tree_files(&out) == rerun);

    // --reinstall arms it again: the tree is as first written.
    pxe_ok(
        &inv,
        &ubuntu_iso(),
        &out,
        base,
        &["--reinstall", "kvm22.lab.example.org"],
    );
    assert!(
        tree_files(&out) == pristine,
        "--reinstall did not put the install entry back"
    );
    assert_eq!(pxe_state(&server, "kvm22.lab.example.org"), "armed");

    // Without hvseed serve: --disarm, then --reinstall all.
    pxe_ok(&inv, &ubuntu_iso(), &out, base, &["--disarm", "all"]);
    let t = tree_files(&out);
    assert!(boots_disk(&t, pxe21, grub21) && boots_disk(&t, pxe22, grub22));
    sha256sum_check(&out);
    assert_eq!(pxe_state(&server, "kvm21.lab.example.org"), "disarmed");
    pxe_ok(&inv, &ubuntu_iso(), &out, base, &["--reinstall", "all"]);
    assert!(tree_files(&out) == pristine);

    // New hardware under an installed host's name (another MAC) is installed; a host
    // that leaves the inventory takes its state along.
    pxe_ok(&inv, &ubuntu_iso(), &out, base, &["--disarm", "all"]);
    let original = std::fs::read_to_string(&inv).unwrap();
    let changed = tmp.path().join("lab.yaml");
    assert!(original.contains(MAC21));
    let start = original.find("  - fqdn: kvm22").unwrap();
    std::fs::write(
        &changed,
        original[..start].replace(MAC21, "52:54:00:12:34:31"),
    )
    .unwrap();
    pxe_ok(&changed, &ubuntu_iso(), &out, base, &[]);
    let t = tree_files(&out);
    let (pxe31, grub31) = (
        "tftp/pxelinux.cfg/01-52-54-00-12-34-31",
        "tftp/grub/grub.cfg-01-52-54-00-12-34-31",
    );
    assert!(installs(&t, pxe31, grub31));
    assert!(!out
        .join("pxe-state/kvm21.lab.example.org.installed")
        .exists());
    assert!(!out
        .join("pxe-state/kvm22.lab.example.org.installed")
        .exists());
    pxe_ok(&inv, &ubuntu_iso(), &out, base, &[]);
    assert!(tree_files(&out) == pristine);
    drop(server);
}

/// A failed run leaves what it found and says what is true: a wrong ISO creates no
/// --out (nor its parents), a failure after --out was created removes it with the
/// parents this run created, and a file hvseed did not write is found before anything
/// is extracted into the tree ("nothing was changed" holds: the tree is byte for byte
/// as before).
#[test]
fn failed_runs_leave_the_tree_as_it_was() {
    if !tools() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let inv = root().join(UBUNTU_INV);
    let base = "http://10.0.0.2:8080";

    // The other distribution's ISO: refused before --out (or a parent) exists.
    let (ok, err) = pxe(&inv, &centos_iso(), &tmp.path().join("a/b/tree"), base, &[]);
    assert!(!ok && err.contains("ubuntu1204"), "{err}");
    assert!(
        !tmp.path().join("a").exists(),
        "--out or its parents were created"
    );

    // Refused once --out exists (a bundle inside the tree): it goes, with its parents.
    let out = tmp.path().join("c/d/tree");
    let bundle = out.join("t.tar.gz");
    let (ok, err) = pxe(
        &inv,
        &ubuntu_iso(),
        &out,
        base,
        &["--bundle", bundle.to_str().unwrap()],
    );
    assert!(!ok && err.contains("inside the tree"), "{err}");
    assert!(
        !tmp.path().join("c").exists(),
        "the --out this run created was left"
    );

    // A dnsmasq.conf of the user's: refused before the package tree is extracted.
    let out = tmp.path().join("tree");
    write(&out.join("dnsmasq.conf"), b"# mine\n");
    write(&out.join("tftp/memtest86+.bin"), b"mine too\n");
    let before = snapshot(&out);
    let (ok, err) = pxe(&inv, &ubuntu_iso(), &out, base, &[]);
    assert!(
        !ok && err.contains("did not write") && err.contains("dnsmasq.conf"),
        "{err}"
    );
    assert!(err.contains("nothing was changed"), "{err}");
    assert_same(&snapshot(&out), &before, "a refused run");

    // A tree of hvseed's without a package tree, and a user's http/os: refused
    // before the ISO's package tree is extracted, nothing changed.
    std::fs::remove_file(out.join("dnsmasq.conf")).unwrap();
    let mirror = tmp.path().join("mirror.yaml");
    let text = std::fs::read_to_string(&inv).unwrap();
    assert!(text.contains("    source: cdrom\n"));
    std::fs::write(
        &mirror,
        text.replace(
            "    source: cdrom\n",
            "    source: http://mirror.example.org/ubuntu\n",
        ),
    )
    .unwrap();
    pxe_ok(&mirror, &ubuntu_iso(), &out, base, &[]);
    assert!(!out.join("http/os").exists());
    write(&out.join("http/os/README"), b"the user's\n");
    let before = snapshot(&out);
    let (ok, err) = pxe(&inv, &ubuntu_iso(), &out, base, &[]);
    assert!(
        !ok && err.contains("http/os exists and was not written by hvseed"),
        "{err}"
    );
    assert_same(&snapshot(&out), &before, "a refused re-run");
}

/// A full disk while the ISO is extracted: the message is xorriso's ("No space left
/// on device"), not a guess about the ISO, and the tree is as before (a user's file
/// in it kept, nothing of hvseed's left). Runs on a 1 MiB tmpfs in a private mount
/// namespace, which needs root (CI runs as root).
#[test]
fn a_full_disk_is_reported_as_such_and_leaves_nothing() {
    if !tools() {
        return;
    }
    let root_user = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout == b"0\n");
    if !root_user {
        let msg = "a_full_disk_is_reported_as_such_and_leaves_nothing needs root (a tmpfs in \
                   a private mount namespace)";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{msg}");
        }
        eprintln!("\n!!!!!!!! {msg}: THIS TEST DID NOT RUN !!!!!!!!\n");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mnt = tmp.path().join("small");
    std::fs::create_dir(&mnt).unwrap();
    let inv = root().join(UBUNTU_INV);
    // In the namespace: mount, make a tree with a file of the user's, run hvseed pxe
    // into it and into a new --out, then list what is on the tmpfs.
    let script = r#"
        set -u
        mnt=$1; shift
        mount -t tmpfs -o size=1m tmpfs "$mnt" || exit 90
        mkdir "$mnt/tree" && echo mine > "$mnt/tree/keep"
        "$@" --out "$mnt/tree"; echo "rc1=$?"
        "$@" --out "$mnt/new/tree"; echo "rc2=$?"
        echo "--- left:"
        cd "$mnt" && find . -mindepth 1 | sort
        echo "--- keep: $(cat tree/keep)"
    "#;
    let o = output_within_secs(
        Command::new("unshare")
            .args(["-m", "sh", "-c", script, "sh"])
            .arg(&mnt)
            .arg(env!("CARGO_BIN_EXE_hvseed"))
            .arg("pxe")
            .arg(&inv)
            .arg("--source")
            .arg(ubuntu_iso())
            .args(["--http-base", "http://10.0.0.2:8080"])
            .arg("--firstboot")
            .arg(agent().unwrap())
            .env("NO_COLOR", "1"),
        120,
    );
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    );
    assert!(
        out.contains("rc1=1") && out.contains("rc2=1"),
        "{out}\n{err}"
    );
    assert_eq!(
        err.matches("No space left on device").count(),
        2,
        "xorriso's message must be the error:\n{err}"
    );
    assert!(!err.contains("are not on this ISO"), "{err}");
    let left = out.split("--- left:\n").nth(1).unwrap();
    assert_eq!(
        left, "./tree\n./tree/keep\n--- keep: mine\n",
        "{out}\n{err}"
    );
    assert!(
        !mnt.join("tree").exists(),
        "the tmpfs leaked out of its namespace"
    );
}

/// What one `hvseed vm --pxe` run showed.
struct VmRun {
    ok: bool,
    serial: String,
    /// hvseed's stderr: its messages and the embedded server's request log.
    stderr: String,
    summary: serde_json::Value,
}

/// A PXE boot of `host` (or, with `mac`, of a machine the inventory does not know)
/// from `tree` through `hvseed vm`, one guest at a time.
fn vm_pxe(
    inv: &str,
    tree: &Path,
    host: &str,
    uefi: bool,
    until: &str,
    mac: Option<&str>,
    secs: u64,
) -> VmRun {
    let _one = crate::util::one_qemu();
    let d = tempfile::tempdir().unwrap();
    let log = d.path().join("serial.log");
    let mut cmd = hvseed();
    cmd.arg("vm")
        .arg(root().join(inv))
        .args(["--host", host, "--until", until, "--accel", "tcg", "--json"])
        .arg("--pxe")
        .arg(tree)
        .arg("--log")
        .arg(&log)
        .args(["--timeout", &secs.to_string()]);
    if uefi {
        cmd.arg("--uefi");
    }
    if let Some(m) = mac {
        cmd.args(["--mac", m]);
    }
    let out = output_within_secs(&mut cmd, secs + 60);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON summary ({e}): {stderr}"));
    assert_eq!(summary["ok"] == true, out.status.success(), "{summary}");
    VmRun {
        ok: out.status.success(),
        serial: String::from_utf8_lossy(&std::fs::read(&log).unwrap_or_default()).into_owned(),
        stderr,
        summary,
    }
}

/// The tree's http-base in the QEMU boot tests: a rack's address, which `hvseed vm`
/// makes the guest reach its embedded server at.
const RACK_BASE: &str = "http://192.168.42.5:8080";

/// A target's BIOS PXE boot test.
struct BiosCase {
    inv: &'static str,
    source: &'static dyn Fn() -> PathBuf,
    host: &'static str,
    mac: &'static str,
    /// The installer: d-i (real, it fetches the preseed and announces the host) or
    /// anaconda (Debian's kernel standing in: its command line is what is checked).
    installer: Installer,
}

/// Which installer a PXE boot test's tree starts.
#[derive(Clone, Copy, PartialEq)]
enum Installer {
    DebianInstaller,
    Anaconda,
}

/// The command line of the host's installer must carry its install file's URL.
fn assert_install_file_args(line: &str, installer: Installer, host: &str) {
    let wants = match installer {
        Installer::DebianInstaller => vec![
            format!("url={RACK_BASE}/hosts/{host}/preseed.cfg"),
            "netcfg/choose_interface=auto".to_string(),
        ],
        Installer::Anaconda => vec![
            format!("inst.ks={RACK_BASE}/hosts/{host}/ks.cfg"),
            format!("inst.repo={RACK_BASE}/os"),
        ],
    };
    for w in wants {
        assert!(
            line.split_whitespace().any(|a| a == w),
            "the kernel did not get {w}: {line}"
        );
    }
}

/// pxelinux picks the host's file by MAC, the installer's kernel boots from QEMU's TFTP
/// with the URL of the host's install file at the tree's http-base and BOOTIF on its
/// command line. The real d-i fetches that preseed from the embedded `hvseed serve` and
/// its early_command announces the host on the serial console; then, PXE just once,
/// the next PXE boot of the host goes to the local disk and starts no installer. A
/// machine hvseed does not know gets `pxelinux.cfg/default`, the local disk, no kernel.
fn bios_pxe_installs_by_mac_then_boots_locally(case: BiosCase) {
    if !tools() || !require_tool("qemu-system-x86_64", "qemu-system-x86") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("tree");
    pxe_ok(
        &root().join(case.inv),
        &(case.source)(),
        &out,
        RACK_BASE,
        &[],
    );

    let d_i = case.installer == Installer::DebianInstaller;
    let until = if d_i { "installing" } else { "installer" };
    let run = vm_pxe(case.inv, &out, case.host, false, until, None, 340);
    assert!(
        run.ok,
        "{until} not reached for {} within the limit: {}\n{}",
        case.host, run.summary, run.stderr
    );
    let line = run
        .serial
        .split(['\r', '\n'])
        .find(|l| l.contains("Command line:"))
        .expect("the kernel's command line on the serial console");
    assert_install_file_args(line, case.installer, case.host);
    assert!(
        line.contains(&format!("BOOTIF=01-{}", case.mac.replace(':', "-"))),
        "IPAPPEND 2 did not add BOOTIF: {line}"
    );
    if d_i {
        assert!(run
            .serial
            .contains(&format!("hvseed: installing {}", case.host)));
        let get = format!("GET \"/hosts/{}/preseed.cfg\" 200", case.host);
        assert!(run.stderr.contains(&get), "{}", run.stderr);
        pxe_just_once(&case, &out);
    }

    // A machine hvseed does not know: pxelinux.cfg/default → the local disk, no kernel.
    let stranger = vm_pxe(
        case.inv,
        &out,
        case.host,
        false,
        "installer",
        Some("52:54:00:99:99:99"),
        150,
    );
    assert!(
        stranger.ok && stranger.summary["refused"] == true,
        "{}\n{}",
        stranger.summary,
        printable(&stranger.serial)
    );
    assert!(stranger.serial.contains("Booting from local disk"));
    assert!(stranger.serial.contains("PXELINUX 6.04"));
    for bad in ["Loading ", "Linux version", "hvseed: installing"] {
        assert!(
            !stranger.serial.contains(bad),
            "an unknown machine shows {bad:?}:\n{}",
            printable(&stranger.serial)
        );
    }
}

/// After the host's installer fetched its install file, the host's next PXE boot goes
/// to the local disk.
fn pxe_just_once(case: &BiosCase, out: &Path) {
    // PXE just once: its installer fetched the preseed, so the host's next PXE boot
    // goes to the local disk (blank here: the firmware then has nothing to boot).
    let again = vm_pxe(case.inv, out, case.host, false, "installer", None, 150);
    assert!(!again.ok, "{}", again.summary);
    assert!(
        again.summary["failure"]
            .as_str()
            .is_some_and(|f| f.contains("No bootable device")),
        "{}",
        again.summary
    );
    assert!(
        again.serial.contains("Booting from local disk"),
        "the second PXE boot of {} did not go to the local disk:\n{}",
        case.host,
        printable(&again.serial)
    );
    for bad in ["Loading ", "Linux version", "hvseed: installing"] {
        assert!(
            !again.serial.contains(bad),
            "{bad:?}:\n{}",
            printable(&again.serial)
        );
    }
}

/// A target's UEFI PXE boot test.
struct UefiCase {
    inv: &'static str,
    source: &'static dyn Fn() -> PathBuf,
    host: &'static str,
    mac: &'static str,
    /// How far d-i gets here (ubuntu1204's tree boots Debian's d-i kernel with
    /// Ubuntu's arguments: its installer milestone is what is checked).
    until: &'static str,
    /// Console lines the boot loader shows on the way.
    shows: &'static [&'static str],
    /// What the boot loader says to a machine the inventory does not know.
    stranger_says: &'static str,
    installer: Installer,
}

/// OVMF PXE-boots the tree's UEFI loader, which finds the host's GRUB file by MAC and
/// starts the installer with that host's preseed URL and BOOTIF; an unknown MAC is
/// told so and no kernel starts.
fn uefi_pxe_picks_the_grub_file_by_mac(case: UefiCase) {
    if !tools()
        || !require_tool("qemu-system-x86_64", "qemu-system-x86")
        || !require_tool("/usr/share/qemu/firmware/60-edk2-x86_64.json", "ovmf")
    {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("tree");
    pxe_ok(
        &root().join(case.inv),
        &(case.source)(),
        &out,
        RACK_BASE,
        &[],
    );

    let run = vm_pxe(case.inv, &out, case.host, true, case.until, None, 340);
    assert!(
        run.ok,
        "{} not reached for {}: {}\n{}",
        case.until, case.host, run.summary, run.stderr
    );
    let line = run
        .serial
        .split(['\r', '\n'])
        .find(|l| l.contains("Command line:"))
        .expect("the kernel's command line on the serial console");
    assert!(
        line.contains(&format!("BOOTIF=01-{}", case.mac.replace(':', "-"))),
        "{line}"
    );
    assert_install_file_args(line, case.installer, case.host);
    for s in case.shows {
        assert!(run.serial.contains(s), "{s:?}:\n{}", printable(&run.serial));
    }
    if case.until == "installing" {
        assert!(run
            .serial
            .contains(&format!("hvseed: installing {}", case.host)));
    }

    let stranger = vm_pxe(
        case.inv,
        &out,
        case.host,
        true,
        "installer",
        Some("52:54:00:99:99:99"),
        240,
    );
    assert!(
        stranger.serial.contains(case.stranger_says),
        "the loader did not fall back:\n{}",
        printable(&stranger.serial)
    );
    assert!(
        stranger.ok && stranger.summary["refused"] == true,
        "{}\n{}",
        stranger.summary,
        printable(&stranger.serial)
    );
    for bad in ["Linux version", "Command line:", "hvseed: installing"] {
        assert!(
            !stranger.serial.contains(bad),
            "an unknown machine shows {bad:?}:\n{}",
            printable(&stranger.serial)
        );
    }
}

/// The serial log without d-i's screen drawing, for failure messages.
fn printable(s: &str) -> String {
    let plain: String = s
        .chars()
        .filter(|c| *c == '\n' || (!c.is_control() && *c != '\u{1b}'))
        .collect();
    let lines: Vec<&str> = plain.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Ubuntu 12.04's tree, Debian's real d-i standing in for Ubuntu's installer.
#[test]
fn qemu_pxe_boot_installs_the_host_by_mac_and_ignores_unknown_machines() {
    bios_pxe_installs_by_mac_then_boots_locally(BiosCase {
        inv: UBUNTU_INV,
        source: &ubuntu_iso,
        host: "kvm21.lab.example.org",
        mac: MAC21,
        installer: Installer::DebianInstaller,
    });
}

/// UEFI, Ubuntu 12.04's tree: OVMF PXE-boots the GRUB image hvseed built, GRUB finds the
/// host's `grub.cfg-01-<mac>` by its own lookup; an unknown MAC gets `grub.cfg`, which
/// leaves GRUB.
#[test]
fn qemu_uefi_pxe_boot_picks_the_grub_file_by_mac() {
    uefi_pxe_picks_the_grub_file_by_mac(UefiCase {
        inv: UBUNTU_INV,
        source: &ubuntu_iso,
        host: "kvm22.lab.example.org",
        mac: MAC22,
        until: "installer",
        shows: &["hvseed: grub: starting the installer for kvm22.lab.example.org"],
        stranger_says: "hvseed: grub: this machine is not a host of cluster pxelab",
        installer: Installer::DebianInstaller,
    });
}

/// EL9's tree: pxelinux starts the DVD's PXE kernel (Debian's d-i kernel standing in)
/// with the host's kickstart URL, the DVD tree as inst.repo and BOOTIF.
#[test]
fn qemu_el9_pxe_boot_passes_the_kickstart_by_mac() {
    bios_pxe_installs_by_mac_then_boots_locally(BiosCase {
        inv: EL9_INV,
        source: &el9_iso,
        host: "kvm51.lab.example.org",
        mac: MAC51,
        installer: Installer::Anaconda,
    });
}

/// UEFI, EL9's tree: the DVD's GRUB (its stand-in), loaded from the TFTP root, finds
/// the host's `grub.cfg-01-<mac>` beside itself. (`hvseed vm` boots `grubx64.efi`
/// itself; a real machine gets the shim, `BOOTX64.EFI`, from dnsmasq.conf, which loads
/// that GRUB.)
#[test]
fn qemu_el9_uefi_pxe_boot_picks_the_grub_file_by_mac() {
    uefi_pxe_picks_the_grub_file_by_mac(UefiCase {
        inv: EL9_INV,
        source: &el9_iso,
        host: "kvm52.lab.example.org",
        mac: MAC52,
        until: "installer",
        shows: &["hvseed: grub: starting the installer for kvm52.lab.example.org"],
        stranger_says: "hvseed: grub: this machine is not a host of cluster lab9",
        installer: Installer::Anaconda,
    });
}

// ------------------------------------------------------------------ Debian 12

/// `netboot.tar.gz` as Debian publishes it: the netboot tree under `./`, top-level
/// symlinks into `debian-installer/amd64/` kept as links.
fn netboot_tar_gz(dir: &Path) -> PathBuf {
    let tgz = dir.join("netboot.tar.gz");
    let st = Command::new("tar")
        .arg("-czf")
        .arg(&tgz)
        .arg("-C")
        .arg(NETBOOT)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    tgz
}

/// The tree for Debian 12 from d-i's netboot files: the installer kernel and initrd
/// and d-i's own signed UEFI loaders (shim, GRUB) byte for byte; per MAC, pxelinux and
/// GRUB files with the host's preseed URL; the GRUB file d-i's GRUB reads picks them
/// by `$net_default_mac`. netboot.tar.gz gives the same tree as the directory.
#[test]
fn debian_tree_from_the_netboot_files_boots_each_host_by_mac() {
    if !tools()
        || !require_tool(
            &format!("{NETBOOT}/version.info"),
            "debian-installer-12-netboot-amd64",
        )
    {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("tree");
    let base = "http://10.0.0.2:8080";
    let log = pxe_ok(
        &root().join(DEBIAN_INV),
        Path::new(NETBOOT),
        &out,
        base,
        &[],
    );
    assert!(
        log.contains("Debian 12 (bookworm), installer build 20230607"),
        "{log}"
    );
    let t = files(&out);
    let (fq31, fq32) = ("kvm31.lab.example.org", "kvm32.lab.example.org");
    let expected: Vec<String> = [
        "SHA256SUMS",
        "dnsmasq.conf",
        &format!("http/hosts/{fq31}/authorized_keys"),
        &format!("http/hosts/{fq31}/plan.json"),
        &format!("http/hosts/{fq31}/preseed.cfg"),
        &format!("http/hosts/{fq32}/authorized_keys"),
        &format!("http/hosts/{fq32}/plan.json"),
        &format!("http/hosts/{fq32}/preseed.cfg"),
        "http/hvseed-firstboot",
        "tftp/debian-installer/amd64/bootnetx64.efi",
        "tftp/debian-installer/amd64/grub/grub.cfg",
        "tftp/debian-installer/amd64/grub/grub.cfg-01-52-54-00-12-34-31",
        "tftp/debian-installer/amd64/grub/grub.cfg-01-52-54-00-12-34-32",
        "tftp/debian-installer/amd64/grubx64.efi",
        "tftp/debian12/initrd.gz",
        "tftp/debian12/linux",
        "tftp/ldlinux.c32",
        "tftp/pxelinux.0",
        "tftp/pxelinux.cfg/01-52-54-00-12-34-31",
        "tftp/pxelinux.cfg/01-52-54-00-12-34-32",
        "tftp/pxelinux.cfg/default",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(t.keys().cloned().collect::<Vec<_>>(), expected);
    for (tree, src) in [
        ("tftp/debian12/linux", "debian-installer/amd64/linux"),
        (
            "tftp/debian12/initrd.gz",
            "debian-installer/amd64/initrd.gz",
        ),
        (
            "tftp/debian-installer/amd64/bootnetx64.efi",
            "debian-installer/amd64/bootnetx64.efi",
        ),
        (
            "tftp/debian-installer/amd64/grubx64.efi",
            "debian-installer/amd64/grubx64.efi",
        ),
    ] {
        assert_eq!(
            t[tree],
            std::fs::read(format!("{NETBOOT}/{src}")).unwrap(),
            "{tree}"
        );
    }
    for (mac, fqdn, short) in [(MAC31, fq31, "kvm31"), (MAC32, fq32, "kvm32")] {
        let name = format!("01-{}", mac.replace(':', "-"));
        let cfg = text(&t, &format!("tftp/pxelinux.cfg/{name}"));
        let args = append_args(&cfg);
        for want in [
            "initrd=debian12/initrd.gz".to_string(),
            "auto=true".into(),
            "priority=critical".into(),
            format!("url={base}/hosts/{fqdn}/preseed.cfg"),
            "locale=en_US.UTF-8".into(),
            "keymap=us".into(),
            format!("hostname={short}"),
            "domain=lab.example.org".into(),
            "netcfg/choose_interface=auto".into(),
            "console=ttyS0,115200n8".into(),
            "---".into(),
        ] {
            assert!(args.contains(&want), "{name}: no {want} in {args:?}");
        }
        assert!(cfg.lines().any(|l| l.trim() == "IPAPPEND 2"), "{cfg}");
        assert!(
            cfg.lines().any(|l| l.trim() == "KERNEL debian12/linux"),
            "{cfg}"
        );
        let grub = text(
            &t,
            &format!("tftp/debian-installer/amd64/grub/grub.cfg-{name}"),
        );
        assert!(grub.contains("\nset timeout=0\n"), "{grub}");
        let linux = grub
            .lines()
            .find(|l| l.trim_start().starts_with("linux "))
            .unwrap();
        assert!(
            linux.trim_start().starts_with("linux /debian12/linux "),
            "{linux}"
        );
        assert!(
            linux.contains(&format!("'url={base}/hosts/{fqdn}/preseed.cfg'")),
            "{linux}"
        );
        assert!(linux.contains(&format!("'BOOTIF={name}'")), "{linux}");
        assert!(grub.contains("initrd /debian12/initrd.gz"), "{grub}");
    }
    let g = text(&t, "tftp/debian-installer/amd64/grub/grub.cfg");
    assert!(g.contains("\"$net_default_mac\""), "{g}");
    assert!(
        g.contains("source \"$prefix/grub.cfg-01-$m1-$m2-$m3-$m4-$m5-$m6\""),
        "{g}"
    );
    assert!(
        g.lines().any(|l| l.trim() == "exit") && !g.contains("linux"),
        "{g}"
    );
    let preseed = text(&t, &format!("http/hosts/{fq31}/preseed.cfg"));
    assert!(
        preseed.contains("d-i mirror/http/hostname string deb.debian.org\n"),
        "{preseed}"
    );
    let conf = text(&t, "dnsmasq.conf");
    dnsmasq_accepts(&out.join("dnsmasq.conf"));
    assert!(
        conf.contains(
            "dhcp-boot=tag:hvseed,tag:efi-x86_64,debian-installer/amd64/bootnetx64.efi\n"
        ),
        "{conf}"
    );
    assert!(
        conf.contains("dhcp-boot=tag:hvseed,tag:!efi-x86_64,pxelinux.0\n"),
        "{conf}"
    );
    sums_cover_the_tree(&out, &t);

    // A second run with nothing changed rewrites nothing.
    let before = mtimes(&out);
    pxe_ok(
        &root().join(DEBIAN_INV),
        Path::new(NETBOOT),
        &out,
        base,
        &[],
    );
    assert_eq!(mtimes(&out), before);

    // netboot.tar.gz: the same tree, byte for byte.
    let tgz = netboot_tar_gz(tmp.path());
    let out2 = tmp.path().join("tree2");
    pxe_ok(&root().join(DEBIAN_INV), &tgz, &out2, base, &[]);
    let mut t2 = files(&out2);
    let mut t1 = t;
    for m in [&mut t1, &mut t2] {
        m.remove("dnsmasq.conf"); // names its own tftp-root
        m.remove("SHA256SUMS");
    }
    assert_eq!(t1, t2);
}

/// The wrong source for debian12 is refused with what to give instead, before
/// anything is written: an ISO (the netinst CD's installer cannot netboot), a
/// directory without d-i's tree, another Debian release's netboot files, a tarball
/// that lacks the kernel.
#[test]
fn debian_refuses_sources_that_are_not_its_netboot_files() {
    if !tools() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let inv = root().join(DEBIAN_INV);
    let base = "http://10.0.0.2:8080";
    let out = tmp.path().join("tree");
    let (ok, err) = pxe(&inv, &ubuntu_iso(), &out, base, &[]);
    assert!(
        !ok && err.contains("is an ISO image") && err.contains("netboot.tar.gz"),
        "{err}"
    );
    assert!(err.contains("cannot boot from the network"), "{err}");
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let (ok, err) = pxe(&inv, &empty, &out, base, &[]);
    assert!(
        !ok && err.contains("has no debian-installer/ directory"),
        "{err}"
    );
    // Debian 11's netboot files.
    let old = tmp.path().join("bullseye");
    write(
        &old.join("version.info"),
        b"Debian version:  11 (bullseye)\nInstaller build: 20210731+deb11u8\n",
    );
    std::fs::create_dir_all(old.join("debian-installer/amd64")).unwrap();
    let (ok, err) = pxe(&inv, &old, &out, base, &[]);
    assert!(
        !ok && err.contains("\"Debian version: 11 (bullseye)\", not Debian 12"),
        "{err}"
    );
    // Debian 12's version.info, but no kernel.
    write(
        &old.join("version.info"),
        b"Debian version:  12 (bookworm)\nInstaller build: 20230607+deb12u15\n",
    );
    let (ok, err) = pxe(&inv, &old, &out, base, &[]);
    assert!(
        !ok && err
            .contains("lack debian-installer/amd64/linux and debian-installer/amd64/initrd.gz"),
        "{err}"
    );
    let junk = tmp.path().join("junk.tar.gz");
    write(&junk, b"not a tarball");
    let (ok, err) = pxe(&inv, &junk, &out, base, &[]);
    assert!(!ok && err.contains("netboot.tar.gz"), "{err}");
    assert!(!out.exists(), "a refused run wrote {}", out.display());
}

/// Debian 12's tree from d-i's netboot files.
#[test]
fn qemu_debian_pxe_boot_installs_the_host_by_mac() {
    bios_pxe_installs_by_mac_then_boots_locally(BiosCase {
        inv: DEBIAN_INV,
        source: &|| PathBuf::from(NETBOOT),
        host: "kvm31.lab.example.org",
        mac: MAC31,
        installer: Installer::DebianInstaller,
    });
}

/// UEFI, Debian 12's tree: OVMF loads d-i's signed shim, which loads d-i's signed GRUB;
/// that GRUB reads only `debian-installer/amd64/grub/grub.cfg`, whose `regexp` on
/// `$net_default_mac` sources the host's file; the real d-i fetches the host's preseed
/// from the embedded server and announces it. An unknown MAC leaves GRUB without
/// starting a kernel.
#[test]
fn qemu_debian_uefi_pxe_boot_through_ds_signed_grub_picks_the_host_by_mac() {
    uefi_pxe_picks_the_grub_file_by_mac(UefiCase {
        inv: DEBIAN_INV,
        source: &|| PathBuf::from(NETBOOT),
        host: "kvm32.lab.example.org",
        mac: MAC32,
        until: "installing",
        shows: &[
            "Fetching Netboot Image debian-installer/amd64/grubx64.efi",
            "hvseed: grub: starting the installer for kvm32.lab.example.org",
        ],
        stranger_says:
            "hvseed: grub: this machine (52:54:00:99:99:99) is not a host of cluster pxelab",
        installer: Installer::DebianInstaller,
    });
}

/// PXE just once with d-i's signed GRUB: when the installer fetches kvm31's preseed
/// from `hvseed serve`, its per-MAC pxelinux file and the GRUB file d-i's grub.cfg
/// sources boot the local disk; a re-run of `hvseed pxe` writes the same bytes, and
/// `--reinstall` arms them again.
#[test]
fn debian_host_is_installed_by_pxe_once_until_reinstall() {
    if !tools() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let inv = root().join(DEBIAN_INV);
    let base = "http://10.0.0.2:8080";
    let out = tmp.path().join("tree");
    pxe_ok(&inv, Path::new(NETBOOT), &out, base, &[]);
    let pxe31 = "tftp/pxelinux.cfg/01-52-54-00-12-34-31";
    let grub31 = "tftp/debian-installer/amd64/grub/grub.cfg-01-52-54-00-12-34-31";
    let grub32 = "tftp/debian-installer/amd64/grub/grub.cfg-01-52-54-00-12-34-32";
    let installs = |g: &str| g.contains("linux /debian12/linux ") && g.contains("set timeout=0");
    let boots_disk = |g: &str| {
        g.lines().any(|l| l.trim() == "exit") && !g.contains("linux") && !g.contains("initrd")
    };
    let t = files(&out);
    assert!(installs(&text(&t, grub31)) && installs(&text(&t, grub32)));
    let server = ServeGuard::start(&out);
    let r = server.get("/hosts/kvm31.lab.example.org/preseed.cfg");
    assert_eq!(r.status, 200);
    let now = files(&out);
    assert!(boots_disk(&text(&now, grub31)), "{}", text(&now, grub31));
    assert!(
        text(&now, pxe31).contains("LOCALBOOT 0"),
        "{}",
        text(&now, pxe31)
    );
    assert!(installs(&text(&now, grub32)));
    drop(server);
    pxe_ok(&inv, Path::new(NETBOOT), &out, base, &[]);
    let rerun = files(&out);
    assert_eq!(rerun[grub31], now[grub31]);
    assert_eq!(rerun[pxe31], now[pxe31]);
    sha256sum_check(&out);
    pxe_ok(
        &inv,
        Path::new(NETBOOT),
        &out,
        base,
        &["--reinstall", "kvm31.lab.example.org"],
    );
    let again = files(&out);
    assert_eq!(again[grub31], t[grub31]);
    assert_eq!(again[pxe31], t[pxe31]);
}
