//! Enterprise Linux 9 x86_64 (Rocky Linux, AlmaLinux, RHEL, CentOS Stream 9),
//! installed by anaconda 34 (dracut, `inst.*` arguments) from the DVD or a tree.

use hvseed_plan::plan::Os;

use super::{
    anaconda, BootValues, Install, InventoryRules, IsoMedium, Isolinux, MediaLoaders,
    MinCloudstack, PxeLayout, PxeUefi, ReadIdentity, Recognition, Selinux, Target, UefiMenu,
};
use crate::isoread::Listing;

pub static TARGET: Target = Target {
    os: Os::El9,
    title: "EL9",
    install: Install {
        format: anaconda::FORMAT,
        file: anaconda::INSTALL_FILE,
        templates: &[
            ("ks.cfg", include_str!("../../profiles/el9/ks.cfg")),
            (
                "fleet-ks.cfg",
                include_str!("../../profiles/el9/fleet-ks.cfg"),
            ),
            ("host.ks", include_str!("../../profiles/el9/host.ks")),
            (
                "packages.ks",
                include_str!("../../profiles/el9/packages.ks"),
            ),
            anaconda::FLEET_PRE_SH,
            anaconda::POST_NOCHROOT_SH,
            anaconda::POST_SH,
        ],
    },
    iso: IsoMedium {
        wanted: "a Rocky Linux, AlmaLinux or RHEL 9 x86_64 DVD",
        accepted: "EL 9.x x86_64 DVDs (Rocky Linux, AlmaLinux, RHEL, CentOS Stream)",
        short: "an EL9 DVD",
        identity_files: &["/.discinfo", "/.treeinfo"],
        recognise,
        // lorax's DVD: isolinux for BIOS (`timeout 600`, the `check` entry is the
        // `menu default`), GRUB2 for UEFI in EFI/BOOT/grub.cfg and, for a USB stick or
        // a CD booted in UEFI mode, the same file inside images/efiboot.img.
        bios: Isolinux {
            menu: "/isolinux/isolinux.cfg",
            set_timeout: true,
            gfxboot_top: None,
        },
        uefi: UefiMenu::Grub2 {
            cfg: "/EFI/BOOT/grub.cfg",
        },
        no_uefi_note: "",
        initrd_with_install_file: None,
        md5sums: None,
        args: kernel_args,
        label_args: Some(label_args),
    },
    pxe: PxeLayout {
        kernel: "/images/pxeboot/vmlinuz",
        initrd: "/images/pxeboot/initrd.img",
        tftp_kernel: "tftp/el9/vmlinuz",
        tftp_initrd: "tftp/el9/initrd.img",
        // inst.repo= points at the DVD's tree: .treeinfo names the stage2 image and
        // the two repositories (BaseOS, AppStream) anaconda installs from.
        tree_required: &[
            "/.treeinfo",
            "/images/install.img",
            "/BaseOS/repodata",
            "/BaseOS/Packages",
            "/AppStream/repodata",
            "/AppStream/Packages",
        ],
        tree_optional: &["/.discinfo", "/media.repo"],
        // The DVD's own shim and GRUB (signed), so Secure Boot machines boot too.
        uefi: PxeUefi::Grub2,
        uefi_media_loaders: Some(MediaLoaders {
            shim: "/EFI/BOOT/BOOTX64.EFI",
            grub: "/EFI/BOOT/grubx64.efi",
        }),
        args: pxe_args,
        tree_arg: Some(tree_arg),
    },
    inventory: InventoryRules {
        selinux: Selinux::PermissiveOnly(
            "EL9 ignores `SELINUX=disabled` in /etc/selinux/config (only the `selinux=0` \
             kernel argument disables SELinux, which hvseed does not set); use \
             `permissive` (the default, what CloudStack's guide sets) or remove the key",
        ),
        // EL9's libvirt (9.x-10.x) has guest.cpu.mode and Open vSwitch bridges.
        cpu_mode_warning: None,
        openvswitch_warning: None,
        min_cloudstack: Some(MinCloudstack {
            version: (4, 18),
            source: "EL9 packages and hosts from CloudStack 4.18 on, apache/cloudstack#6844",
        }),
        cloudstack_apt: None,
        cdrom_refused: None,
        extra_repositories_refused: None,
        kernel_arg_refused: Some(kernel_arg_refused),
        apt_key_url_refused: None,
        keyboard_refused: None,
        openvswitch_package_required: Some(
            "EL9's own repositories have no Open vSwitch: add the repository that has it to \
             `install.extra_repositories` (e.g. CentOS's NFV SIG, \
             `http://mirror.stream.centos.org/SIGs/9-stream/nfv/x86_64/openvswitch-2/`) and \
             its versioned package to `install.extra_packages` (e.g. `openvswitch3.3`)",
        ),
    },
    media_pending: None,
};

/// The medium's label as anaconda's `hd:LABEL=` reads it: dracut finds the device as
/// `/dev/disk/by-label/<label>`, whose name udev escapes, so every character outside
/// udev's plain set (`A-Z a-z 0-9 # + - . : = @ _`) is written `\xNN` (lorax's
/// `udev_escape` does the same for the DVD's own menus). A `:` would end the label in
/// `inst.ks=hd:LABEL=<label>:/path`, so it is escaped too.
pub fn label_for_anaconda(label: &str) -> String {
    let mut out = String::with_capacity(label.len());
    for b in label.bytes() {
        if b.is_ascii_alphanumeric() || b"#+-.=@_".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// The DVD's boot entry: stage2 and the packages from the medium itself, found by its
/// label (a CD drive, a virtual CD over IPMI or a USB stick alike), and the kickstart
/// under `/hvseed/` on it. The kickstart names no installation source for
/// `install.source: cdrom`, so `inst.repo` is the medium.
///
/// A label that needs escaping reaches the kernel intact through isolinux; GRUB 2
/// builds differ in what they do with a `\` when they make the kernel's command line
/// (Debian's 2.06 doubles it, later upstream keeps `\xNN`), so the UEFI entry then
/// depends on the medium's GRUB: said as a warning. lorax's own labels
/// (`Rocky-9-5-x86_64-dvd`) need none.
fn label_args(volume_id: &str, install_file: &str) -> Vec<String> {
    let label = label_for_anaconda(volume_id);
    if label != volume_id {
        tracing::warn!(
            "the volume id \"{}\" has characters anaconda's hd:LABEL= needs escaped ({label}); \
             isolinux passes them as they are, but whether the UEFI entry does depends on the \
             medium's GRUB: if its UEFI boot cannot find the medium, give the ISO a label of \
             letters, digits and - _ . only",
            crate::escape::escape(volume_id)
        );
    }
    vec![
        format!("inst.stage2=hd:LABEL={label}"),
        format!("inst.repo=hd:LABEL={label}"),
        format!("inst.ks=hd:LABEL={label}:/hvseed/{install_file}"),
    ]
}

/// The rest of the DVD's entry: the inventory's `install.kernel_args`.
fn kernel_args(v: &BootValues) -> Vec<String> {
    v.kernel_args.to_vec()
}

/// A host's PXE entry: the kickstart over HTTP (with [`tree_arg`] first). dracut
/// brings up the NIC that PXE-booted (BOOTIF, added by the boot files) to fetch it.
fn pxe_args(v: &BootValues) -> Vec<String> {
    let mut args = vec![format!("inst.ks={}", v.install_file)];
    args.extend(v.kernel_args.iter().cloned());
    args
}

/// stage2 and the packages from the host's tree (the DVD's, served under `http/os`,
/// or its mirror).
fn tree_arg(tree: &str) -> String {
    format!("inst.repo={tree}")
}

/// The unprefixed installer options anaconda 34 (EL9) removed: dracut only warns
/// about them (rhinstaller/anaconda `dracut/parse-anaconda-options.sh`,
/// `check_removed_no_inst_arg`) and anaconda ignores them.
const REMOVED_NO_INST: &[&str] = &[
    "ks",
    "ksdevice",
    "kssendmac",
    "kssendsn",
    "repo",
    "method",
    "stage2",
    "lang",
    "keymap",
    "updates",
    "sshd",
    "noverifyssl",
    "dd",
    "askmethod",
    "asknetwork",
    "serial",
    "nousb",
    "ethtool",
];

/// The `inst.*` options hvseed's boot entries set themselves.
const SET_BY_HVSEED: &[&str] = &["inst.ks", "inst.stage2", "inst.repo"];

/// `install.kernel_args` anaconda of EL9 would swallow or that would fight hvseed's.
fn kernel_arg_refused(arg: &str) -> Option<String> {
    let name = arg.split('=').next().unwrap_or(arg);
    if SET_BY_HVSEED.contains(&name) || name.starts_with("inst.ks.") {
        return Some(format!(
            "`{name}` is set by hvseed's boot entries (the kickstart and the medium it installs from); remove it"
        ));
    }
    if REMOVED_NO_INST.contains(&name) {
        let hint = match name {
            "ks" | "repo" | "method" | "stage2" | "ksdevice" => {
                " (hvseed sets the kickstart and the installation source itself; remove it)"
                    .to_string()
            }
            "askmethod" | "serial" | "nousb" | "ethtool" | "asknetwork" => "; remove it".into(),
            _ => format!("; write `inst.{arg}`"),
        };
        return Some(format!(
            "`{name}` is an installer option EL9's anaconda no longer reads (its options all start with `inst.` since anaconda 34; dracut only warns and the installer ignores it){hint}"
        ));
    }
    None
}

fn ini_value(text: &str, section: &str, key: &str) -> Option<String> {
    let mut in_section = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            in_section = t.trim_matches(['[', ']']).trim() == section;
        } else if in_section {
            if let Some((k, v)) = t.split_once('=') {
                if k.trim() == key {
                    return Some(v.trim().to_string());
                }
            }
        }
    }
    None
}

/// The distributions whose DVDs are EL9 (`.treeinfo` `[release] name`, or the older
/// `[general] family`).
const EL_FAMILIES: &[&str] = &[
    "Rocky Linux",
    "AlmaLinux",
    "Red Hat Enterprise Linux",
    "CentOS Stream",
];

/// An EL 9.x x86_64 DVD: productmd's `.treeinfo` names the release, its version and
/// the architecture, and lists the BaseOS and AppStream variants.
fn recognise(listing: &Listing, read: &ReadIdentity) -> Recognition {
    let Some(treeinfo) = read("/.treeinfo") else {
        return Recognition::Other;
    };
    let get = |section: &str, key: &str| ini_value(&treeinfo, section, key);
    let family = get("release", "name")
        .or_else(|| get("general", "family"))
        .unwrap_or_default();
    if !EL_FAMILIES.iter().any(|f| f.eq_ignore_ascii_case(&family)) {
        return Recognition::Other;
    }
    let version = get("release", "version")
        .or_else(|| get("general", "version"))
        .unwrap_or_default();
    let arch = get("tree", "arch")
        .or_else(|| get("general", "arch"))
        .unwrap_or_default();
    let name = crate::escape::escape(format!("{family} {version} {arch}").trim()).into_owned();
    let found = format!("\"{name}\" (from .treeinfo)");
    if !(version == "9" || version.starts_with("9.")) {
        return Recognition::Refused(format!("{found}, not an EL 9.x DVD"));
    }
    if arch != "x86_64" {
        return Recognition::Refused(format!("{found}, not the x86_64 DVD"));
    }
    for need in [
        "/isolinux/isolinux.cfg",
        "/images/pxeboot/vmlinuz",
        "/images/pxeboot/initrd.img",
        "/images/install.img",
    ] {
        if !listing.has(need) {
            return Recognition::Refused(format!(
                "{found} without {} (a boot-only or minimal image? use the DVD)",
                need.trim_start_matches('/')
            ));
        }
    }
    Recognition::Found(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TREEINFO: &str = "[header]\ntype = productmd.treeinfo\nversion = 1.2\n\n[release]\nname = Rocky Linux\nshort = Rocky\nversion = 9.5\n\n[tree]\narch = x86_64\nvariants = AppStream,BaseOS\n\n[general]\narch = x86_64\nfamily = Rocky Linux\nversion = 9.5\n";

    fn dvd() -> Listing {
        Listing::for_tests(&[
            "/.treeinfo",
            "/isolinux/isolinux.cfg",
            "/images/pxeboot/vmlinuz",
            "/images/pxeboot/initrd.img",
            "/images/install.img",
        ])
    }

    #[test]
    fn el9_dvds_are_found_others_refused_or_left_alone() {
        let read = |text: String| move |p: &str| (p == "/.treeinfo").then(|| text.clone());
        let f = recognise(&dvd(), &read(TREEINFO.into()));
        assert_eq!(f, Recognition::Found("Rocky Linux 9.5 x86_64".into()));
        let alma8 = TREEINFO
            .replace("Rocky Linux", "AlmaLinux")
            .replace("9.5", "8.10");
        let Recognition::Refused(why) = recognise(&dvd(), &read(alma8)) else {
            panic!()
        };
        assert!(
            why.contains("AlmaLinux 8.10") && why.contains("not an EL 9"),
            "{why}"
        );
        let arm = TREEINFO.replace("x86_64", "aarch64");
        assert!(
            matches!(recognise(&dvd(), &read(arm)), Recognition::Refused(w) if w.contains("x86_64"))
        );
        // CentOS 6's .treeinfo has only [general] with family CentOS: not claimed.
        let centos6 = "[general]\nfamily = CentOS\nversion = 6.3\narch = x86_64\n";
        assert_eq!(recognise(&dvd(), &read(centos6.into())), Recognition::Other);
        let boot = Listing::for_tests(&["/.treeinfo", "/isolinux/isolinux.cfg"]);
        assert!(
            matches!(recognise(&boot, &read(TREEINFO.into())), Recognition::Refused(w) if w.contains("without images/pxeboot/vmlinuz"))
        );
    }

    #[test]
    fn labels_are_escaped_as_udev_names_them() {
        assert_eq!(
            label_for_anaconda("Rocky-9-5-x86_64-dvd"),
            "Rocky-9-5-x86_64-dvd"
        );
        assert_eq!(label_for_anaconda("EL 9 lab"), "EL\\x209\\x20lab");
        assert_eq!(label_for_anaconda("a:b/c"), "a\\x3ab\\x2fc");
    }

    #[test]
    fn boot_arguments_name_the_medium_or_the_server() {
        assert_eq!(
            label_args("EL9 lab", "fleet/ks.cfg").join(" "),
            "inst.stage2=hd:LABEL=EL9\\x20lab inst.repo=hd:LABEL=EL9\\x20lab inst.ks=hd:LABEL=EL9\\x20lab:/hvseed/fleet/ks.cfg"
        );
        let args = ["console=ttyS0,115200n8".to_string()];
        let v = BootValues {
            install_file: "http://10.0.2.2:8080/hosts/kvm1.lab/ks.cfg",
            locale: "en_US.UTF-8",
            keyboard: "us",
            hostname: Some("kvm1"),
            domain: Some("lab"),
            kernel_args: &args,
        };
        assert_eq!(kernel_args(&v), args);
        assert_eq!(
            pxe_args(&v).join(" "),
            "inst.ks=http://10.0.2.2:8080/hosts/kvm1.lab/ks.cfg console=ttyS0,115200n8"
        );
        assert_eq!(
            tree_arg("http://10.0.2.2:8080/os"),
            "inst.repo=http://10.0.2.2:8080/os"
        );
    }

    #[test]
    fn arguments_anaconda_takes_for_itself_are_refused() {
        for a in [
            "inst.ks=x",
            "inst.stage2=hd:x",
            "inst.repo=x",
            "inst.ks.sendmac",
        ] {
            assert!(
                kernel_arg_refused(a).unwrap().contains("set by hvseed"),
                "{a}"
            );
        }
        let ks = kernel_arg_refused("ks=cdrom:/ks.cfg").unwrap();
        assert!(ks.contains("no longer reads"), "{ks}");
        assert!(kernel_arg_refused("lang=de_DE")
            .unwrap()
            .contains("inst.lang=de_DE"));
        for ok in [
            "console=ttyS0,115200n8",
            "inst.text",
            "ip=dhcp",
            "nomodeset",
        ] {
            assert_eq!(kernel_arg_refused(ok), None, "{ok}");
        }
    }
}
