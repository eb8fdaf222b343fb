//! Integration tests for `hvseed iso`: fixture ISOs with the real layouts of both
//! distributions (tests/fixtures/iso/make-fixtures.sh) are remastered, then checked with
//! xorriso (boot records, files), mtools (inside the FAT boot images), sha256sum/md5sum,
//! and booted in QEMU (SeaBIOS and OVMF) to see the installer receive our arguments.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::util::{
    agent, hvseed, one_qemu, output_within_secs, require_tool, root, run_ok, KillOnDrop,
};

// ------------------------------------------------------------------ helpers

fn fixture_tools() -> bool {
    require_tool("xorriso", "xorriso")
        && require_tool("mcopy", "mtools")
        && require_tool("mkfs.vfat", "dosfstools")
        && require_tool("grub-mkstandalone", "grub-common")
        && require_tool(
            "/usr/lib/grub/x86_64-efi/legacycfg.mod",
            "grub-efi-amd64-bin",
        )
        && require_tool("/usr/lib/ISOLINUX/isolinux.bin", "isolinux")
        && require_tool(
            "/usr/lib/syslinux/modules/bios/vesamenu.c32",
            "syslinux-common",
        )
        && require_tool(
            "/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64/initrd.gz",
            "debian-installer-12-netboot-amd64",
        )
        && require_tool("cpio", "cpio")
        && require_tool("/usr/lib/shim/shimx64.efi.signed", "shim-signed")
        && require_tool(
            "/usr/lib/grub/x86_64-efi-signed/gcdx64.efi.signed",
            "grub-efi-amd64-signed",
        )
}

/// The fixture ISOs (`make-fixtures.sh`'s `boot` layout), built once per script version.
pub(crate) fn fixtures() -> Option<PathBuf> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| fixture_tools().then(|| crate::util::iso_fixtures("boot")))
        .clone()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn sha256_file(p: &Path) -> String {
    hex(&Sha256::digest(std::fs::read(p).unwrap()))
}

fn xorriso(args: &[&str]) -> String {
    let out = output_within_secs(Command::new("xorriso").args(args), 120);
    assert!(
        out.status.success(),
        "xorriso {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Boot records as xorriso reports them, with what legitimately changes (LBAs, dates,
/// the file name) taken out.
fn boot_records(iso: &Path) -> (String, String) {
    let iso_s = iso.to_str().unwrap();
    let plain = xorriso(&["-indev", iso_s, "-report_el_torito", "plain"])
        .lines()
        .filter(|l| l.starts_with("El Torito"))
        .map(|l| {
            // The last column of "boot img" lines is the LBA, which moves.
            let mut w: Vec<&str> = l.split_whitespace().collect();
            if l.starts_with("El Torito boot img") {
                w.pop();
                w.join(" ")
            } else if l.starts_with("El Torito catalog") {
                w.remove(4);
                w.join(" ")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mkisofs = xorriso(&["-indev", iso_s, "-report_el_torito", "as_mkisofs"])
        .lines()
        .filter(|l| !l.starts_with("--modification-date"))
        .map(|l| l.replace(iso_s, "ISO"))
        .collect::<Vec<_>>()
        .join("\n");
    (plain, mkisofs)
}

fn volume_id(iso: &Path) -> String {
    xorriso(&["-indev", iso.to_str().unwrap(), "-pvd_info"])
        .lines()
        .find_map(|l| l.strip_prefix("Volume Id    : ").map(str::to_string))
        .unwrap()
}

/// The LBA of a file in the ISO.
fn lba_of(iso: &Path, path: &str) -> String {
    let out = xorriso(&[
        "-indev",
        iso.to_str().unwrap(),
        "-find",
        path,
        "-exec",
        "report_lba",
    ]);
    // "File data lba:  0 ,     1234 ,     ...": the second field.
    let line = out
        .lines()
        .find(|l| l.starts_with("File data lba:"))
        .unwrap_or_else(|| panic!("no lba for {path}: {out}"));
    line.split(',').nth(1).unwrap().trim().to_string()
}

fn extract(iso: &Path, iso_path: &str, to: &Path) {
    xorriso(&[
        "-osirrox",
        "on",
        "-indev",
        iso.to_str().unwrap(),
        "-extract",
        iso_path,
        to.to_str().unwrap(),
    ]);
}

fn extract_text(iso: &Path, iso_path: &str) -> String {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("f");
    extract(iso, iso_path, &p);
    std::fs::read_to_string(p).unwrap()
}

fn mtype(img: &Path, path: &str) -> String {
    String::from_utf8(mtype_bytes(img, path)).unwrap()
}

fn mtype_bytes(img: &Path, path: &str) -> Vec<u8> {
    let out = Command::new("mcopy")
        .env("MTOOLS_SKIP_CHECK", "1")
        .args(["-n", "-i", img.to_str().unwrap(), path, "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A payload as render_tree lays it out, with recognisable content.
fn synthetic_payload(os: hvseed::inventory::Os, install_file: &str) -> hvseed::iso::Payload {
    let mut files = BTreeMap::new();
    files.insert(
        install_file.to_string(),
        format!("# install file {install_file}\n").into_bytes(),
    );
    for h in ["kvm1.lab.example.org", "kvm2.lab.example.org"] {
        files.insert(
            format!("hosts/{h}/plan.json"),
            format!("{{\"fqdn\":\"{h}\"}}\n").into_bytes(),
        );
    }
    let _ = os;
    hvseed::iso::Payload {
        files,
        install_file: install_file.into(),
        title: "Unattended install of cluster lab1 (hvseed, host chosen by MAC)".into(),
        kernel_args: vec!["console=ttyS0,115200n8".into()],
        locale: "en_US.UTF-8".into(),
        keyboard: "us".into(),
    }
}

/// Checks /hvseed/ on the ISO: byte-identical files, the agent, and `sha256sum -c`.
fn check_hvseed_dir(iso: &Path, expected: &BTreeMap<String, Vec<u8>>, agent: &Path) -> PathBuf {
    let d = crate::util::process_tempdir().keep();
    let hv = d.join("hvseed");
    extract(iso, "/hvseed", &hv);
    for (rel, bytes) in expected {
        assert_eq!(
            &std::fs::read(hv.join(rel)).unwrap(),
            bytes,
            "/hvseed/{rel} differs from what was rendered"
        );
    }
    assert_eq!(
        sha256_file(&hv.join("hvseed-firstboot")),
        sha256_file(agent),
        "the agent on the ISO differs from the built one"
    );
    run_ok(
        Command::new("sha256sum")
            .args(["-c", "SHA256SUMS"])
            .current_dir(&hv),
    );
    let listed = std::fs::read_to_string(hv.join("SHA256SUMS")).unwrap();
    for rel in expected.keys() {
        assert!(
            listed.contains(&format!("  {rel}\n")),
            "{rel} not in SHA256SUMS"
        );
    }
    assert!(listed.contains("  hvseed-firstboot\n"));
    d
}

// ------------------------------------------------------------------ QEMU

/// One boot of a remastered ISO through `hvseed vm`, as a user's CI would run it.
struct IsoBoot {
    /// The example inventory the ISO was written for.
    example: &'static str,
    host: &'static str,
    uefi: bool,
    until: &'static str,
    secs: u64,
}

/// Boots `iso` with `hvseed vm` (one guest at a time) until the case's milestone;
/// panics with hvseed's output unless it was reached. Returns the serial log.
fn vm_boot(iso: &Path, case: &IsoBoot) -> String {
    let _one = one_qemu();
    let d = tempfile::tempdir().unwrap();
    let log = d.path().join("serial.log");
    let mut cmd = hvseed();
    cmd.arg("vm")
        .arg(root().join("profiles/examples").join(case.example))
        .args([
            "--host", case.host, "--until", case.until, "--accel", "tcg", "--json",
        ])
        .arg("--iso")
        .arg(iso)
        .arg("--log")
        .arg(&log)
        .args(["--timeout", &case.secs.to_string()]);
    if case.uefi {
        cmd.arg("--uefi");
    }
    // hvseed vm bounds the run itself; the outer limit only catches a hung hvseed.
    let out = output_within_secs(&mut cmd, case.secs + 60);
    let text = String::from_utf8_lossy(&std::fs::read(&log).unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "hvseed vm {} {} did not reach {}: {stderr}",
        case.example,
        case.host,
        case.until
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["ok"], true, "{summary}");
    assert_eq!(summary["host"], case.host, "{summary}");
    assert!(
        summary["milestones"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["milestone"] == case.until),
        "{summary}"
    );
    text
}

fn qemu_ok() -> bool {
    require_tool("qemu-system-x86_64", "qemu-system-x86")
        && require_tool("/usr/share/OVMF/OVMF_CODE.fd", "ovmf")
}

/// `hvseed iso profiles/examples/EXAMPLE --source SRC --out OUT --firstboot AGENT`.
pub(crate) fn iso_cmd(example: &str, src: &Path, out: &Path, agent: &Path) -> Command {
    let mut cmd = hvseed();
    cmd.arg("iso")
        .arg(root().join("profiles/examples").join(example))
        .arg("--source")
        .arg(src)
        .arg("--out")
        .arg(out)
        .arg("--firstboot")
        .arg(agent);
    cmd
}

/// Runs `hvseed iso` on an example inventory; returns the new ISO and what should sit
/// under /hvseed/ (render_tree's output, filtered as the issue says).
fn cli_remaster(example: &str, fixture: &str, host: Option<&str>) -> Option<Remastered> {
    let fx = fixtures()?;
    let agent = agent()?;
    // Kept in a static by the tests that share it: in the process's own directory.
    let dir = crate::util::process_tempdir();
    let iso = dir.path().join("lab.iso");
    let inv_path = root().join("profiles/examples").join(example);
    let src = fx.join(fixture);
    let before = sha256_file(&src);
    let mut cmd = iso_cmd(example, &src, &iso, &agent);
    if let Some(h) = host {
        cmd.args(["--host", h]);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "hvseed iso failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(before, sha256_file(&src), "input modified");

    let inv = hvseed::inventory::load(&inv_path).unwrap().inventory;
    let tree = hvseed::render::render_tree(
        &inv,
        &hvseed::render::RenderOptions {
            templates: None,
            media: hvseed::render::Media::Cdrom,
        },
    )
    .unwrap();
    let install = match host {
        Some(h) => format!("hosts/{h}/"),
        None => "fleet/".to_string(),
    };
    let files: BTreeMap<String, Vec<u8>> = tree
        .into_iter()
        .filter(|(rel, _)| {
            rel.ends_with("/plan.json")
                || rel.ends_with("/authorized_keys")
                || rel.starts_with(&install)
        })
        .collect();
    assert!(files
        .keys()
        .any(|k| k.starts_with(&install) && k.ends_with(".cfg")));
    Some(Remastered {
        _dir: dir,
        iso,
        files,
        agent,
    })
}

// ------------------------------------------------------------------ CentOS 6 layout

struct Remastered {
    _dir: tempfile::TempDir,
    iso: PathBuf,
    /// What /hvseed/ must hold besides the agent and SHA256SUMS.
    files: BTreeMap<String, Vec<u8>>,
    agent: PathBuf,
}

fn remaster_centos() -> Option<&'static Remastered> {
    static R: OnceLock<Option<Remastered>> = OnceLock::new();
    R.get_or_init(|| cli_remaster("lab-centos6.yaml", "centos6.iso", None))
        .as_ref()
}

/// Through the library with a synthetic payload: the ISO mechanics alone.
#[test]
fn centos_remaster_through_the_library() {
    let r: Option<Remastered> = (|| {
        let fx = fixtures()?;
        let agent = agent()?;
        let dir = crate::util::process_tempdir();
        let iso = dir.path().join("lab.iso");
        let payload = synthetic_payload(hvseed::inventory::Os::Centos6, "fleet/ks.cfg");
        let before = sha256_file(&fx.join("centos6.iso"));
        hvseed::iso::remaster(
            &fx.join("centos6.iso"),
            &iso,
            hvseed::inventory::Os::Centos6,
            &payload,
            &agent,
        )
        .unwrap();
        assert_eq!(
            before,
            sha256_file(&fx.join("centos6.iso")),
            "input modified"
        );
        Some(Remastered {
            _dir: dir,
            iso,
            files: payload.files,
            agent,
        })
    })();
    let Some(r) = r else { return };
    let d = check_hvseed_dir(&r.iso, &r.files, &r.agent);
    std::fs::remove_dir_all(d).unwrap();
    let conf = extract_text(&r.iso, "/EFI/BOOT/BOOTX64.conf");
    assert!(
        conf.contains("ks=cdrom:/hvseed/fleet/ks.cfg console=ttyS0,115200n8\n"),
        "{conf}"
    );
}

#[test]
fn centos_keeps_boot_records_and_volume_id() {
    let Some(r) = remaster_centos() else { return };
    let src = fixtures().unwrap().join("centos6.iso");
    assert_eq!(boot_records(&src), boot_records(&r.iso));
    assert_eq!(volume_id(&r.iso), "CentOS_6.3_Final");
    let (plain, _) = boot_records(&r.iso);
    assert!(plain.contains("El Torito boot img : 1 BIOS"), "{plain}");
    assert!(plain.contains("El Torito boot img : 2 UEFI"), "{plain}");
    // The UEFI El Torito entry points at the edited efiboot.img of the new tree.
    let report = xorriso(&[
        "-indev",
        r.iso.to_str().unwrap(),
        "-report_el_torito",
        "plain",
    ]);
    let uefi_lba = report
        .lines()
        .find(|l| l.starts_with("El Torito boot img") && l.contains("UEFI"))
        .unwrap()
        .split_whitespace()
        .last()
        .unwrap()
        .to_string();
    assert_eq!(uefi_lba, lba_of(&r.iso, "/images/efiboot.img"));
}

#[test]
fn centos_menus_start_the_kickstart_by_default() {
    let Some(r) = remaster_centos() else { return };
    let isolinux = extract_text(&r.iso, "/isolinux/isolinux.cfg");
    let ours = isolinux.find("label hvseed").expect(&isolinux);
    assert!(ours < isolinux.find("label linux").unwrap());
    assert!(isolinux.contains(
        "  kernel vmlinuz\n  append initrd=initrd.img ks=cdrom:/hvseed/fleet/ks.cfg console=ttyS0,115200n8\n"
    ), "{isolinux}");
    assert!(isolinux.contains("\ntimeout 50\n"), "{isolinux}");
    assert_eq!(isolinux.matches("\n  menu default\n").count(), 1);
    for label in ["linux", "vesa", "rescue", "local", "memtest86"] {
        assert!(
            isolinux.contains(&format!("label {label}\n")),
            "{label} lost"
        );
    }

    let stanza = "title Unattended install of cluster lab1 (hvseed, host chosen by MAC)\n\tkernel /images/pxeboot/vmlinuz ks=cdrom:/hvseed/fleet/ks.cfg console=ttyS0,115200n8\n\tinitrd /images/pxeboot/initrd.img\ntitle CentOS 6.3\n";
    let tree_conf = extract_text(&r.iso, "/EFI/BOOT/BOOTX64.conf");
    assert!(tree_conf.contains(stanza), "{tree_conf}");
    assert!(tree_conf.contains("\ndefault=0\n") && tree_conf.contains("\ntimeout 5\n"));
    // The copy inside the FAT image, which UEFI firmware actually boots.
    let d = tempfile::tempdir().unwrap();
    let img = d.path().join("efiboot.img");
    extract(&r.iso, "/images/efiboot.img", &img);
    let fat_conf = mtype(&img, "::/EFI/BOOT/BOOTX64.conf");
    assert_eq!(fat_conf, tree_conf);
    assert!(mtype_bytes(&img, "::/EFI/BOOT/BOOTX64.efi").len() > 100_000);
}

#[test]
fn centos_hvseed_dir_matches_what_was_rendered() {
    let Some(r) = remaster_centos() else { return };
    let d = check_hvseed_dir(&r.iso, &r.files, &r.agent);
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn centos_bios_boot_passes_the_kickstart() {
    let Some(r) = remaster_centos() else { return };
    if !qemu_ok() {
        return;
    }
    let log = vm_boot(
        &r.iso,
        &IsoBoot {
            example: "lab-centos6.yaml",
            host: "kvm1.lab.example.org",
            uefi: false,
            until: "installer",
            secs: 120,
        },
    );
    assert!(log.contains("Command line: initrd=initrd.img ks=cdrom:/hvseed/fleet/ks.cfg console=ttyS0,115200n8")
        || log.contains("Command line: BOOT_IMAGE=vmlinuz initrd=initrd.img ks=cdrom:/hvseed/fleet/ks.cfg console=ttyS0,115200n8"),
        "{log}");
}

#[test]
fn centos_uefi_boot_reads_the_conf_inside_efiboot_img() {
    let Some(r) = remaster_centos() else { return };
    if !qemu_ok() {
        return;
    }
    let log = vm_boot(
        &r.iso,
        &IsoBoot {
            example: "lab-centos6.yaml",
            host: "kvm2.lab.example.org",
            uefi: true,
            until: "installer",
            secs: 180,
        },
    );
    let line = log
        .lines()
        .find(|l| l.contains("Command line:"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(
        line.contains(
            "/images/pxeboot/vmlinuz ks=cdrom:/hvseed/fleet/ks.cfg console=ttyS0,115200n8"
        ),
        "{line}"
    );
}

// ------------------------------------------------------------------ Ubuntu 12.04 layout

fn remaster_ubuntu() -> Option<&'static Remastered> {
    static R: OnceLock<Option<Remastered>> = OnceLock::new();
    R.get_or_init(|| cli_remaster("lab-ubuntu1204.yaml", "ubuntu1204.iso", None))
        .as_ref()
}

#[test]
fn ubuntu_keeps_boot_records_and_volume_id() {
    let Some(r) = remaster_ubuntu() else { return };
    let src = fixtures().unwrap().join("ubuntu1204.iso");
    assert_eq!(boot_records(&src), boot_records(&r.iso));
    assert_eq!(volume_id(&r.iso), volume_id(&src));
}

/// `/hvseed/initrd.gz` on `r` is the installer's `installer_initrd`, byte for byte,
/// then a gzip'd cpio holding exactly the fleet preseed.
fn initrd_is_the_installers_and_the_preseed(r: &Remastered, installer_initrd: &str) {
    let d = tempfile::tempdir().unwrap();
    extract(&r.iso, "/hvseed/initrd.gz", &d.path().join("new.gz"));
    extract(&r.iso, installer_initrd, &d.path().join("orig.gz"));
    let new = std::fs::read(d.path().join("new.gz")).unwrap();
    let orig = std::fs::read(d.path().join("orig.gz")).unwrap();
    assert!(new.starts_with(&orig));
    std::fs::write(d.path().join("tail.gz"), &new[orig.len()..]).unwrap();
    let x = d.path().join("x");
    std::fs::create_dir(&x).unwrap();
    let listed = run_ok(
        Command::new("sh")
            .arg("-c")
            .arg("gzip -dc ../tail.gz | cpio -idm --quiet && ls -A")
            .current_dir(&x),
    );
    assert_eq!(listed, "preseed.cfg\n");
    assert_eq!(
        std::fs::read(x.join("preseed.cfg")).unwrap(),
        r.files["fleet/preseed.cfg"]
    );
}

#[test]
fn ubuntu_menus_and_initrd() {
    let Some(r) = remaster_ubuntu() else { return };
    let args = "auto=true priority=critical locale=en_US.UTF-8 keyboard-configuration/layoutcode=us console-setup/ask_detect=false console=ttyS0,115200n8 --";
    let txt = extract_text(&r.iso, "/isolinux/txt.cfg");
    assert!(txt.starts_with("default hvseed\n"), "{txt}");
    assert!(txt.contains(&format!(
        "  menu default\n  kernel /install/vmlinuz\n  append initrd=/hvseed/initrd.gz {args}\nlabel install\n"
    )), "{txt}");
    let top = extract_text(&r.iso, "/isolinux/isolinux.cfg");
    assert!(
        top.contains("\ntimeout 50\n") && top.contains("\nui vesamenu.c32\n"),
        "{top}"
    );
    let grub = extract_text(&r.iso, "/boot/grub/grub.cfg");
    assert!(grub.contains(&format!("set default=0\nset timeout=5\nmenuentry \"Unattended install of cluster lab2 (hvseed, host chosen by MAC)\" {{\n\tset gfxpayload=keep\n\tlinux\t/install/vmlinuz {args}\n\tinitrd\t/hvseed/initrd.gz\n}}\nmenuentry \"Install Ubuntu Server\"")), "{grub}");

    // The new initrd is the installer's, byte for byte, then a gzip'd cpio holding
    // exactly the preseed.
    initrd_is_the_installers_and_the_preseed(r, "/install/initrd.gz");
}

#[test]
fn ubuntu_md5sum_txt_checks_out() {
    let Some(r) = remaster_ubuntu() else { return };
    // The fixture is small: extract the whole tree (hvseed itself never does).
    let d = tempfile::tempdir().unwrap();
    extract(&r.iso, "/", &d.path().join("t"));
    let out = Command::new("md5sum")
        .args(["-c", "--strict", "md5sum.txt"])
        .current_dir(d.path().join("t"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "md5sum -c: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in [
        "./isolinux/txt.cfg",
        "./isolinux/isolinux.cfg",
        "./boot/grub/grub.cfg",
        "./hvseed/initrd.gz",
        "./hvseed/SHA256SUMS",
        "./hvseed/hvseed-firstboot",
        "./hvseed/fleet/preseed.cfg",
    ] {
        assert!(
            text.contains(&format!("{f}: OK")),
            "{f} not checked: {text}"
        );
    }
}

#[test]
fn ubuntu_hvseed_dir_matches_what_was_rendered() {
    let Some(r) = remaster_ubuntu() else { return };
    let d = check_hvseed_dir(&r.iso, &r.files, &r.agent);
    std::fs::remove_dir_all(d).unwrap();
}

/// The d-i targets' boot tests, one body: the ISO's default entry timed out into
/// hvseed's, d-i loaded the fleet preseed from hvseed's initrd, its early_command
/// picked the host by the NIC's MAC, set that host's answers with debconf-set (any
/// failure prints `hvseed: ERROR`, which ends the run) and announced it on the console.
fn d_i_boot_picks_the_host_by_mac(r: Option<&'static Remastered>, case: IsoBoot) {
    let Some(r) = r else { return };
    if !qemu_ok() {
        return;
    }
    let log = vm_boot(&r.iso, &case);
    assert!(
        log.contains(&format!("hvseed: installing {}", case.host)),
        "{log}"
    );
}

#[test]
fn ubuntu_bios_boot_picks_the_host_by_mac() {
    // lab-ubuntu1204.yaml: kvm21 has the MAC 00:04:23:aa:bb:21.
    d_i_boot_picks_the_host_by_mac(
        remaster_ubuntu(),
        IsoBoot {
            example: "lab-ubuntu1204.yaml",
            host: "kvm21.lab.example.org",
            uefi: false,
            until: "installing",
            secs: 420,
        },
    );
}

#[test]
fn ubuntu_uefi_boot_picks_the_host_by_mac() {
    // lab-ubuntu1204.yaml: kvm22 has the MAC 00:04:23:aa:bb:22.
    d_i_boot_picks_the_host_by_mac(
        remaster_ubuntu(),
        IsoBoot {
            example: "lab-ubuntu1204.yaml",
            host: "kvm22.lab.example.org",
            uefi: true,
            until: "installing",
            secs: 420,
        },
    );
}

// ------------------------------------------------------------------ Debian 12 layout

fn remaster_debian() -> Option<&'static Remastered> {
    static R: OnceLock<Option<Remastered>> = OnceLock::new();
    R.get_or_init(|| cli_remaster("lab-debian12.yaml", "debian12.iso", None))
        .as_ref()
}

#[test]
fn debian_keeps_boot_records_volume_id_and_the_cd_flag_file() {
    let Some(r) = remaster_debian() else { return };
    let src = fixtures().unwrap().join("debian12.iso");
    assert_eq!(boot_records(&src), boot_records(&r.iso));
    assert_eq!(volume_id(&r.iso), "Debian 12.11.0 amd64 n");
    // The signed GRUB finds the CD by its flag file: it must survive the remaster,
    // as must the EFI image, which holds no menu of its own (nothing to edit).
    let d = tempfile::tempdir().unwrap();
    extract(&r.iso, "/.disk/id", &d.path().join("id"));
    let ids: Vec<_> = std::fs::read_dir(d.path().join("id")).unwrap().collect();
    assert_eq!(ids.len(), 1);
    for f in [
        "/boot/grub/efi.img",
        "/EFI/debian/grub.cfg",
        "/boot/grub/x86_64-efi/grub.cfg",
    ] {
        extract(&src, f, &d.path().join("a"));
        extract(&r.iso, f, &d.path().join("b"));
        assert_eq!(
            std::fs::read(d.path().join("a")).unwrap(),
            std::fs::read(d.path().join("b")).unwrap(),
            "{f} changed"
        );
        std::fs::remove_file(d.path().join("a")).unwrap();
        std::fs::remove_file(d.path().join("b")).unwrap();
    }
}

#[test]
fn debian_menus_and_initrd() {
    let Some(r) = remaster_debian() else { return };
    let args = "priority=critical locale=en_US.UTF-8 keymap=us console=ttyS0,115200n8 ---";
    // isolinux: the entry goes into gtk.cfg, the file with `menu default` (the
    // graphical install, included before txt.cfg), which it takes over.
    let gtk = extract_text(&r.iso, "/isolinux/gtk.cfg");
    assert!(gtk.starts_with("default hvseed\n"), "{gtk}");
    assert!(gtk.contains(&format!(
        "  menu default\n  kernel /install.amd/vmlinuz\n  append initrd=/hvseed/initrd.gz {args}\nlabel installgui\n"
    )), "{gtk}");
    assert_eq!(gtk.matches("\n  menu default\n").count(), 1, "{gtk}");
    assert!(gtk.contains("# menu default  (hvseed"), "{gtk}");
    // isolinux.cfg's `timeout 0` waits for ever: now 5 s, vesamenu kept.
    let top = extract_text(&r.iso, "/isolinux/isolinux.cfg");
    assert!(
        top.contains("\ntimeout 50\n") && top.contains("\ndefault vesamenu.c32\n"),
        "{top}"
    );
    assert!(!top.contains("timeout 0"), "{top}");
    // txt.cfg, the text install, stays as it was.
    let src = fixtures().unwrap().join("debian12.iso");
    assert_eq!(
        extract_text(&r.iso, "/isolinux/txt.cfg"),
        extract_text(&src, "/isolinux/txt.cfg")
    );
    let grub = extract_text(&r.iso, "/boot/grub/grub.cfg");
    assert!(grub.contains(&format!("set default=0\nset timeout=5\nmenuentry \"Unattended install of cluster lab4 (hvseed, host chosen by MAC)\" {{\n\tset gfxpayload=keep\n\tlinux\t/install.amd/vmlinuz {args}\n\tinitrd\t/hvseed/initrd.gz\n}}\nmenuentry --hotkey=g 'Graphical install' {{")), "{grub}");

    // The new initrd is the text installer's, byte for byte, then a gzip'd cpio
    // holding exactly the preseed.
    initrd_is_the_installers_and_the_preseed(r, "/install.amd/initrd.gz");
}

#[test]
fn debian_md5sum_txt_checks_out() {
    let Some(r) = remaster_debian() else { return };
    let d = tempfile::tempdir().unwrap();
    extract(&r.iso, "/", &d.path().join("t"));
    let out = Command::new("md5sum")
        .args(["-c", "--strict", "md5sum.txt"])
        .current_dir(d.path().join("t"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "md5sum -c: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in [
        "./boot/grub/grub.cfg",
        "./hvseed/initrd.gz",
        "./hvseed/SHA256SUMS",
        "./hvseed/hvseed-firstboot",
        "./hvseed/fleet/preseed.cfg",
        "./.disk/info",
    ] {
        assert!(
            text.contains(&format!("{f}: OK")),
            "{f} not checked: {text}"
        );
    }
}

#[test]
fn debian_hvseed_dir_matches_what_was_rendered() {
    let Some(r) = remaster_debian() else { return };
    let d = check_hvseed_dir(&r.iso, &r.files, &r.agent);
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn debian_bios_boot_picks_the_host_by_mac() {
    // lab-debian12.yaml: kvm41 has the MAC 52:54:00:aa:bb:41. isolinux's menu timed out
    // into hvseed's entry; the real d-i 12 loaded the preseed without `auto=true`.
    d_i_boot_picks_the_host_by_mac(
        remaster_debian(),
        IsoBoot {
            example: "lab-debian12.yaml",
            host: "kvm41.lab.example.org",
            uefi: false,
            until: "installing",
            secs: 420,
        },
    );
}

#[test]
fn debian_uefi_boot_through_shim_and_the_signed_grub_picks_the_host_by_mac() {
    // OVMF → shim (bootx64.efi in efi.img) → the signed CD GRUB, which finds the CD by
    // /.disk/id/<uuid> and sources the edited boot/grub/grub.cfg; its timeout boots
    // hvseed's entry and d-i announces kvm42 (52:54:00:aa:bb:42).
    d_i_boot_picks_the_host_by_mac(
        remaster_debian(),
        IsoBoot {
            example: "lab-debian12.yaml",
            host: "kvm42.lab.example.org",
            uefi: true,
            until: "installing",
            secs: 420,
        },
    );
}

// ------------------------------------------------------------------ bad input

// ------------------------------------------------------------------ EL9 layout

fn remaster_el9() -> Option<&'static Remastered> {
    static R: OnceLock<Option<Remastered>> = OnceLock::new();
    R.get_or_init(|| cli_remaster("lab-el9.yaml", "el9.iso", None))
        .as_ref()
}

/// The fixture's volume id, lorax's for Rocky Linux 9.5 (no character to escape).
const EL9_LABEL: &str = "Rocky-9-5-x86_64-dvd";

/// The arguments hvseed's EL9 entry gives the installer, in order.
fn el9_args() -> String {
    format!(
        "inst.stage2=hd:LABEL={EL9_LABEL} inst.repo=hd:LABEL={EL9_LABEL} inst.ks=hd:LABEL={EL9_LABEL}:/hvseed/fleet/ks.cfg console=ttyS0,115200n8"
    )
}

#[test]
fn el9_keeps_boot_records_and_volume_id() {
    let Some(r) = remaster_el9() else { return };
    let src = fixtures().unwrap().join("el9.iso");
    assert_eq!(boot_records(&src), boot_records(&r.iso));
    assert_eq!(volume_id(&r.iso), EL9_LABEL);
}

#[test]
fn el9_menus_start_the_kickstart_by_default() {
    let Some(r) = remaster_el9() else { return };
    let isolinux = extract_text(&r.iso, "/isolinux/isolinux.cfg");
    let ours = isolinux.find("label hvseed").expect(&isolinux);
    assert!(ours < isolinux.find("label linux").unwrap());
    assert!(
        isolinux.contains(&format!(
            "  kernel vmlinuz\n  append initrd=initrd.img {}\n",
            el9_args()
        )),
        "{isolinux}"
    );
    assert!(isolinux.contains("\ntimeout 50\n"), "{isolinux}");
    assert_eq!(
        isolinux.matches("\n  menu default\n").count(),
        1,
        "{isolinux}"
    );
    for label in ["linux", "check", "basic", "rescue", "local"] {
        assert!(
            isolinux.contains(&format!("label {label}\n")),
            "{label} lost"
        );
    }
    let stanza = format!(
        "set default=0\nset timeout=5\nmenuentry \"Unattended install of cluster lab5 (hvseed, host chosen by MAC)\" {{\n\tset gfxpayload=keep\n\tlinux\t/images/pxeboot/vmlinuz {}\n\tinitrd\t/images/pxeboot/initrd.img\n}}\nmenuentry 'Install Rocky Linux 9.5'",
        el9_args()
    );
    let tree_cfg = extract_text(&r.iso, "/EFI/BOOT/grub.cfg");
    assert!(tree_cfg.contains(&stanza), "{tree_cfg}");
    assert!(tree_cfg.contains("# set default=\"1\"") && tree_cfg.contains("# set timeout=60"));
    // The copy inside images/efiboot.img, which a CD or USB stick boots in UEFI mode.
    let d = tempfile::tempdir().unwrap();
    let img = d.path().join("efiboot.img");
    extract(&r.iso, "/images/efiboot.img", &img);
    assert_eq!(mtype(&img, "::/EFI/BOOT/grub.cfg"), tree_cfg);
}

#[test]
fn el9_hvseed_dir_matches_what_was_rendered() {
    let Some(r) = remaster_el9() else { return };
    let d = check_hvseed_dir(&r.iso, &r.files, &r.agent);
    std::fs::remove_dir_all(d).unwrap();
}

/// The kernel's `Command line:` of a boot of the EL9 ISO, which must carry hvseed's
/// arguments naming the medium by its label.
fn el9_boot_passes_the_kickstart(uefi: bool) {
    let Some(r) = remaster_el9() else { return };
    if !qemu_ok() {
        return;
    }
    let log = vm_boot(
        &r.iso,
        &IsoBoot {
            example: "lab-el9.yaml",
            host: "kvm51.lab.example.org",
            uefi,
            until: "installer",
            secs: if uefi { 180 } else { 120 },
        },
    );
    let line = log
        .lines()
        .find(|l| l.contains("Command line:"))
        .unwrap_or_else(|| panic!("{log}"));
    let (kernel, initrd) = if uefi {
        ("BOOT_IMAGE=/images/pxeboot/vmlinuz ", "")
    } else {
        ("", "initrd=initrd.img ")
    };
    assert!(
        line.ends_with(&format!("Command line: {kernel}{initrd}{}", el9_args()))
            || line.ends_with(&format!(
                "Command line: BOOT_IMAGE=vmlinuz {initrd}{}",
                el9_args()
            )),
        "{line}"
    );
}

#[test]
fn el9_bios_boot_passes_the_kickstart() {
    el9_boot_passes_the_kickstart(false);
}

#[test]
fn el9_uefi_boot_through_shim_reads_the_menu_inside_efiboot_img() {
    el9_boot_passes_the_kickstart(true);
}

fn remaster_err(source: &Path, out: &Path, os: hvseed::inventory::Os) -> String {
    let agent = agent().unwrap();
    let payload = synthetic_payload(os, "fleet/ks.cfg");
    let before = sha256_file(source);
    let existed = out.exists();
    let err = hvseed::iso::remaster(source, out, os, &payload, &agent)
        .map(|_| ())
        .unwrap_err();
    assert_eq!(before, sha256_file(source), "the input was modified");
    assert_eq!(
        out.exists(),
        existed,
        "{} was created or removed",
        out.display()
    );
    let leftovers: Vec<_> = std::fs::read_dir(out.parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".partial"))
        .collect();
    assert!(leftovers.is_empty(), "partial files left: {leftovers:?}");
    format!("{err:#}")
}

#[test]
fn bad_inputs_are_refused_and_leave_nothing() {
    let Some(fx) = fixtures() else { return };
    if agent().is_none() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out.iso");
    use hvseed::inventory::Os;

    let truncated = d.path().join("truncated.iso");
    let full = std::fs::read(fx.join("centos6.iso")).unwrap();
    std::fs::write(&truncated, &full[..full.len() / 2]).unwrap();
    let e = remaster_err(&truncated, &out, Os::Centos6);
    assert!(e.contains("is truncated"), "{e}");

    let text = d.path().join("notes.iso");
    std::fs::write(&text, "not an iso\n".repeat(5000)).unwrap();
    let e = remaster_err(&text, &out, Os::Centos6);
    assert!(e.contains("not an ISO 9660 image"), "{e}");

    let e = remaster_err(&fx.join("ubuntu1204.iso"), &out, Os::Centos6);
    assert!(
        e.contains("Ubuntu-Server 12.04.5") && e.contains("os: centos6"),
        "{e}"
    );
    let e = remaster_err(&fx.join("centos6.iso"), &out, Os::Ubuntu1204);
    assert!(
        e.contains("CentOS 6.3 x86_64") && e.contains("os: ubuntu1204"),
        "{e}"
    );
    let e = remaster_err(&fx.join("debian12.iso"), &out, Os::Ubuntu1204);
    assert!(
        e.contains("Debian GNU/Linux 12.11.0") && e.contains("os: ubuntu1204"),
        "{e}"
    );
    let e = remaster_err(&fx.join("ubuntu1204.iso"), &out, Os::Debian12);
    assert!(
        e.contains("Ubuntu-Server 12.04.5")
            && e.contains("os: debian12")
            && e.contains("a Debian 12 amd64 netinst CD"),
        "{e}"
    );

    // EL9 and CentOS 6 DVDs look alike (.treeinfo, isolinux, images/pxeboot): each is
    // refused for the other's inventory, naming what it is.
    let e = remaster_err(&fx.join("el9.iso"), &out, Os::Centos6);
    assert!(
        e.contains("Rocky Linux 9.5 x86_64") && e.contains("os: centos6"),
        "{e}"
    );
    let e = remaster_err(&fx.join("centos6.iso"), &out, Os::El9);
    assert!(
        e.contains("CentOS 6.3 x86_64")
            && e.contains("os: el9")
            && e.contains("a Rocky Linux, AlmaLinux or RHEL 9 x86_64 DVD"),
        "{e}"
    );

    let copy = d.path().join("copy.iso");
    std::fs::copy(fx.join("centos6.iso"), &copy).unwrap();
    let e = remaster_err(&copy, &copy, Os::Centos6);
    assert!(e.contains("is the --source ISO"), "{e}");
    // The same file under another name (a hard link) is refused too.
    let link = d.path().join("link.iso");
    std::fs::hard_link(&copy, &link).unwrap();
    let e = remaster_err(&copy, &link, Os::Centos6);
    assert!(e.contains("is the --source ISO"), "{e}");
}

#[test]
fn a_full_output_filesystem_leaves_no_partial_file() {
    let Some(fx) = fixtures() else { return };
    if agent().is_none() {
        return;
    }
    if !rustix_is_root() {
        eprintln!(
            "\n!!!!!!!! not root: cannot mount a small tmpfs; THIS TEST DID NOT RUN !!!!!!!!\n"
        );
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let mnt = d.path().join("small");
    std::fs::create_dir(&mnt).unwrap();
    let st = Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            "size=4m",
            "hvseed-test",
            mnt.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(st.success(), "mount tmpfs");
    let result = std::panic::catch_unwind(|| {
        remaster_err(
            &fx.join("centos6.iso"),
            &mnt.join("out.iso"),
            hvseed::inventory::Os::Centos6,
        )
    });
    let _ = Command::new("umount").arg(&mnt).status();
    let e = result.unwrap();
    assert!(e.contains("disk is full"), "{e}");
}

fn rustix_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false)
}

fn cli_fails(args: &[&std::ffi::OsStr], src: &Path) -> String {
    let before = sha256_file(src);
    let out = hvseed().arg("iso").args(args).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(before, sha256_file(src), "input modified");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn cli_refuses_out_equal_to_source_and_the_wrong_distribution() {
    let Some(fx) = fixtures() else { return };
    let Some(agent) = agent() else { return };
    let d = tempfile::tempdir().unwrap();
    let copy = d.path().join("in.iso");
    std::fs::copy(fx.join("centos6.iso"), &copy).unwrap();
    let centos = root().join("profiles/examples/lab-centos6.yaml");
    let e = cli_fails(
        &[
            centos.as_os_str(),
            "--source".as_ref(),
            copy.as_os_str(),
            "--out".as_ref(),
            copy.as_os_str(),
            "--firstboot".as_ref(),
            agent.as_os_str(),
        ],
        &copy,
    );
    assert!(e.contains("is the --source ISO"), "{e}");

    let ubuntu_iso = fx.join("ubuntu1204.iso");
    let out = d.path().join("out.iso");
    let e = cli_fails(
        &[
            centos.as_os_str(),
            "--source".as_ref(),
            ubuntu_iso.as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
            "--firstboot".as_ref(),
            agent.as_os_str(),
        ],
        &ubuntu_iso,
    );
    assert!(
        e.contains("Ubuntu-Server 12.04.5") && e.contains("os: centos6"),
        "{e}"
    );
    assert!(!out.exists());
    assert_eq!(
        std::fs::read_dir(d.path()).unwrap().count(),
        1,
        "leftovers in {}",
        d.path().display()
    );
}

#[test]
fn cli_host_puts_only_that_hosts_kickstart_on_the_iso() {
    let Some(r) = cli_remaster(
        "lab-centos6.yaml",
        "centos6.iso",
        Some("kvm2.lab.example.org"),
    ) else {
        return;
    };
    let d = check_hvseed_dir(&r.iso, &r.files, &r.agent);
    assert!(!d.join("hvseed/fleet").exists());
    assert!(!d.join("hvseed/hosts/kvm1.lab.example.org/ks.cfg").exists());
    assert!(d
        .join("hvseed/hosts/kvm1.lab.example.org/plan.json")
        .exists());
    std::fs::remove_dir_all(d).unwrap();
    let isolinux = extract_text(&r.iso, "/isolinux/isolinux.cfg");
    assert!(isolinux.contains("append initrd=initrd.img ks=cdrom:/hvseed/hosts/kvm2.lab.example.org/ks.cfg console=ttyS0,115200n8\n"), "{isolinux}");
    assert!(
        isolinux.contains("menu label ^Unattended install of kvm2.lab.example.org (hvseed)"),
        "{isolinux}"
    );
}

/// xorriso takes any path under /dev for a drive and refuses it unless told it is a
/// plain file: an ISO read from and written to /dev/shm (tmpfs, a common scratch place
/// in CI) must still work.
#[test]
fn output_under_dev_shm_is_written() {
    let Some(fx) = fixtures() else { return };
    let Some(agent) = agent() else { return };
    let shm = Path::new("/dev/shm");
    if !shm.is_dir() {
        eprintln!("\n!!!!!!!! no /dev/shm on this machine: output_under_dev_shm_is_written checks nothing !!!!!!!!\n");
        assert!(std::env::var_os("CI").is_none(), "CI needs /dev/shm");
        return;
    }
    let d = tempfile::tempdir_in(shm).unwrap();
    let src = d.path().join("centos6.iso");
    std::fs::copy(fx.join("centos6.iso"), &src).unwrap();
    let out = d.path().join("lab.iso");
    run_ok(&mut iso_cmd("lab-centos6.yaml", &src, &out, &agent));
    // Read back through a link outside /dev (the test's own xorriso calls take plain
    // paths).
    let elsewhere = tempfile::tempdir().unwrap();
    let link = elsewhere.path().join("lab.iso");
    std::os::unix::fs::symlink(&out, &link).unwrap();
    let text = extract_text(&link, "/isolinux/isolinux.cfg");
    assert!(text.contains("ks=cdrom:/hvseed/fleet/ks.cfg"), "{text}");
}

/// SIGINT (Ctrl-C), SIGTERM and SIGHUP while the ISO is being copied: hvseed stops with
/// status 128 + the signal (130 for Ctrl-C) and leaves neither OUT nor its temporary
/// file.
#[test]
fn ctrl_c_during_the_copy_leaves_no_file() {
    let Some(fx) = fixtures() else { return };
    let Some(agent) = agent() else { return };
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("big.iso");
    std::fs::copy(fx.join("centos6.iso"), &src).unwrap();
    // 4 GiB of trailing holes: still a whole ISO (its volume is shorter than the file)
    // and a copy that lasts long enough to be interrupted.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&src)
        .unwrap()
        .set_len(4 << 30)
        .unwrap();
    for (sig, num) in [("INT", 2), ("TERM", 15), ("HUP", 1)] {
        let out = d.path().join("out.iso");
        let mut child = KillOnDrop(
            iso_cmd("lab-centos6.yaml", &src, &out, &agent)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let partial = || {
            std::fs::read_dir(d.path())
                .unwrap()
                .filter_map(|e| e.ok())
                .find(|e| e.file_name().to_string_lossy().ends_with(".partial"))
                .and_then(|e| e.metadata().ok())
                .is_some_and(|m| m.len() > 0)
        };
        let start = Instant::now();
        while !partial() {
            assert!(
                child.0.try_wait().unwrap().is_none(),
                "hvseed ended before the copy could be interrupted"
            );
            assert!(start.elapsed() < Duration::from_secs(60), "no copy started");
            std::thread::sleep(Duration::from_millis(10));
        }
        let st = Command::new("kill")
            .args([&format!("-{sig}"), &child.0.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
        let status = child.0.wait().unwrap();
        let err = crate::util::stderr_text(&mut child.0);
        let left: Vec<String> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            left,
            vec!["big.iso".to_string()],
            "leftovers after SIG{sig}"
        );
        assert_eq!(status.code(), Some(128 + num), "{err}");
        assert!(err.contains(&format!("interrupted (SIG{sig})")), "{err}");
    }
}

/// A CentOS DVD carries an implanted MD5 (`implantisomd5`) that anaconda's media check
/// reads, and any edit breaks it. The volume descriptor of the session hvseed appends
/// carries none, so a media check of the new ISO says "no checksum" (NA), never a
/// false FAIL.
#[test]
fn centos_implanted_md5_is_dropped_not_left_stale() {
    let Some(fx) = fixtures() else { return };
    let Some(agent) = agent() else { return };
    if !require_tool("implantisomd5", "isomd5sum") {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("dvd.iso");
    std::fs::copy(fx.join("centos6.iso"), &src).unwrap();
    let st = Command::new("implantisomd5")
        .arg(&src)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let check = |iso: &Path| {
        // The verdict goes to stderr.
        let o = Command::new("checkisomd5")
            .arg(iso)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    assert!(
        check(&src).contains("the result is: PASS"),
        "{}",
        check(&src)
    );
    let out = d.path().join("lab.iso");
    run_ok(&mut iso_cmd("lab-centos6.yaml", &src, &out, &agent));
    let text = check(&out);
    assert!(text.contains("the result is: NA"), "{text}");
}

/// The ISO's own texts (its volume id, the first line of `.disk/info`) are input: what
/// hvseed prints of them has its control characters escaped. On 4834b13 an ISO whose
/// .disk/info held `ESC ] 0 ; … BEL ESC [ 2 J CR` set the terminal's title, cleared
/// the screen and forged a line through the closing "wrote OUT: …" message, and a CR
/// in the volume id split a log line.
#[test]
fn iso_texts_are_escaped_when_printed() {
    let Some(fx) = fixtures() else {
        return;
    };
    let Some(agent) = agent() else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("u.iso");
    let mut bytes = std::fs::read(fx.join("ubuntu1204.iso")).unwrap();
    let patch = |bytes: &mut Vec<u8>, at: usize, new: &[u8]| {
        bytes[at..at + new.len()].copy_from_slice(new);
    };
    let old: &[u8] = b"Ubuntu-Server 12.04.5 LTS \"Precise Pangolin\"";
    let at = bytes
        .windows(old.len())
        .position(|w| w == old)
        .expect(".disk/info in the fixture");
    let mut new = b"Ubuntu-Server 12.04.5 \x1b]0;t\x07\x1b[2J\rFAKE".to_vec();
    new.resize(old.len(), b' ');
    patch(&mut bytes, at, &new);
    // The volume id: 32 bytes at 32768 + 40.
    patch(
        &mut bytes,
        32768 + 40,
        b"U\r\n INFO forged line\x1b[2J     ",
    );
    std::fs::write(&src, &bytes).unwrap();
    let o = iso_cmd("lab-ubuntu1204.yaml", &src, &d.path().join("o.iso"), &agent)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("FAKE") && err.contains("forged"), "{err}");
    assert!(
        !o.stderr
            .iter()
            .chain(&o.stdout)
            .any(|&b| b == 0x1b || b == b'\r' || b == 7),
        "{err:?}"
    );
    assert!(!err.contains("\n INFO forged"), "{err:?}");
}
