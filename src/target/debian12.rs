//! Debian 12 (bookworm) amd64, installed by debian-installer from the netinst CD or
//! from d-i's netboot files (PXE).

use hvseed_plan::plan::Os;

use super::{
    debian_installer, BootValues, CloudstackApt, Install, InventoryRules, IsoMedium, Isolinux,
    MinCloudstack, PxeLayout, PxeUefi, ReadIdentity, Recognition, Selinux, Target, UefiMenu,
};
use crate::isoread::Listing;

pub static TARGET: Target = Target {
    os: Os::Debian12,
    title: "Debian 12",
    install: Install {
        format: debian_installer::FORMAT,
        file: debian_installer::INSTALL_FILE,
        templates: &[
            (
                "preseed.cfg",
                include_str!("../../profiles/debian12/preseed.cfg"),
            ),
            (
                "settings.cfg",
                include_str!("../../profiles/debian12/settings.cfg"),
            ),
            debian_installer::EARLY_SH,
            debian_installer::LATE_SH,
        ],
    },
    iso: IsoMedium {
        wanted: "a Debian 12 amd64 netinst CD",
        accepted: "Debian 12.x amd64 netinst (or DVD) CDs",
        short: "a Debian 12 CD",
        identity_files: &["/.disk/info"],
        recognise,
        // isolinux.cfg includes menu.cfg, which includes gtk.cfg ("Graphical install",
        // the `menu default`) before txt.cfg; isolinux.cfg's `timeout 0` waits for
        // ever. The entry goes into gtk.cfg (taking over `menu default` and
        // `default installgui`), the timeout into isolinux.cfg.
        bios: Isolinux {
            menu: "/isolinux/gtk.cfg",
            set_timeout: false,
            gfxboot_top: Some("/isolinux/isolinux.cfg"),
        },
        // UEFI: shim and the signed GRUB in boot/grub/efi.img find the CD by its
        // `.disk/id/<uuid>` file and source boot/grub/grub.cfg (the image holds no
        // menu of its own), so only that file is edited.
        uefi: UefiMenu::Grub2 {
            cfg: "/boot/grub/grub.cfg",
        },
        no_uefi_note: "",
        initrd_with_install_file: Some("/install.amd/initrd.gz"),
        md5sums: Some("/md5sum.txt"),
        args: iso_args,
        label_args: None,
    },
    pxe: PxeLayout {
        // d-i's netboot flavour (netboot.tar.gz or the
        // debian-installer-12-netboot-amd64 package), not the CD: the CD's
        // install.amd/ initrd cannot netboot.
        kernel: "/debian-installer/amd64/linux",
        initrd: "/debian-installer/amd64/initrd.gz",
        tftp_kernel: "tftp/debian12/linux",
        tftp_initrd: "tftp/debian12/initrd.gz",
        // Packages come from the mirror of `install.source` (a URL, required).
        tree_required: &[],
        tree_optional: &[],
        uefi: PxeUefi::DebianNetboot { release: "12" },
        uefi_media_loaders: None,
        args: pxe_args,
        tree_arg: None,
    },
    inventory: InventoryRules {
        selinux: Selinux::Refused(
            "SELinux settings apply to centos6 only; remove this key (Debian 12 uses \
             AppArmor, which hvseed configures itself)",
        ),
        // bookworm's libvirt is 9.0: guest.cpu.mode and Open vSwitch bridges work.
        cpu_mode_warning: None,
        openvswitch_warning: None,
        min_cloudstack: Some(MinCloudstack {
            version: (4, 20),
            source: "Debian 12 hosts are supported from CloudStack 4.20 on, apache/cloudstack#9810",
        }),
        // download.cloudstack.org has no Debian suite; Debian 12 hosts use the
        // Ubuntu 22.04 (jammy) packages.
        cloudstack_apt: Some(CloudstackApt {
            default_suite: "jammy",
        }),
        cdrom_refused: Some(
            "a Debian 12 netinst CD holds the base system only, not libvirt, QEMU or the \
             CloudStack agent: set `install.source` to a Debian mirror, e.g. \
             `source: http://deb.debian.org/debian`",
        ),
        extra_repositories_refused: Some(
            "d-i of Debian 12 leaves an apt repository without a signing key commented \
             out, and extra repositories have no key setting: remove \
             `install.extra_repositories` (install such packages after the first boot)",
        ),
        kernel_arg_refused: None,
        apt_key_url_refused: None,
        keyboard_refused: None,
        openvswitch_package_required: None,
    },
    media_pending: None,
};

/// The CD's boot entry: the preseed is the initrd's `/preseed.cfg` (read before the
/// first question), so the command line only makes d-i ask nothing. No `auto=true`:
/// it holds locale and keyboard selection back until a preseed file or URL has been
/// loaded (d-i's S60auto-install, localechooser.isinstallable), and the CD loads
/// neither. `locale` and `keymap` are d-i's aliases (`debian-installer/locale`,
/// `keyboard-configuration/xkb-keymap`); `---` ends the installer's arguments (what
/// follows it would be copied to the installed system's boot loader).
fn iso_args(v: &BootValues) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "priority=critical".into(),
        format!("locale={}", v.locale),
        format!("keymap={}", v.keyboard),
    ];
    args.extend(v.kernel_args.iter().cloned());
    args.push("---".into());
    args
}

/// A host's PXE entry: `url=` is fetched after d-i's DHCP, so what d-i asks before
/// that goes on the command line (locale, keymap, hostname, domain); BOOTIF, added
/// by the boot files, picks the NIC (`netcfg/choose_interface=auto`: netcfg makes the
/// BOOTIF interface the default and, preseeded, does not ask).
fn pxe_args(v: &BootValues) -> Vec<String> {
    let (hostname, domain) = (v.hostname.unwrap_or_default(), v.domain.unwrap_or_default());
    let mut args: Vec<String> = vec![
        "auto=true".into(),
        "priority=critical".into(),
        format!("url={}", v.install_file),
        format!("locale={}", v.locale),
        format!("keymap={}", v.keyboard),
        format!("hostname={hostname}"),
        format!("domain={domain}"),
        "netcfg/choose_interface=auto".into(),
    ];
    args.extend(v.kernel_args.iter().cloned());
    args.push("---".into());
    args
}

/// `.disk/info` names the CD (`Debian GNU/Linux 12.11.0 "Bookworm" - Official amd64
/// NETINST with firmware 20250517-09:51`); the CD has d-i's kernel and initrd and
/// isolinux's menus.
fn recognise(listing: &Listing, read: &ReadIdentity) -> Recognition {
    let Some(info) = read("/.disk/info") else {
        return Recognition::Other;
    };
    let name = crate::escape::escape(info.lines().next().unwrap_or("").trim()).into_owned();
    if !name.starts_with("Debian GNU/Linux") {
        return Recognition::Other;
    }
    let found = format!("\"{name}\" (from .disk/info)");
    let version = name
        .trim_start_matches("Debian GNU/Linux")
        .split_whitespace()
        .next()
        .unwrap_or("");
    if version.split('.').next() != Some("12") {
        return Recognition::Refused(format!("{found}, not a Debian 12.x CD"));
    }
    if !name.split_whitespace().any(|w| w == "amd64") {
        return Recognition::Refused(format!("{found}, not the amd64 (x86-64) CD"));
    }
    debian_installer::with_installer(
        listing,
        &[
            "/install.amd/vmlinuz",
            "/install.amd/initrd.gz",
            "/isolinux/isolinux.cfg",
            "/isolinux/gtk.cfg",
        ],
        &found,
        "a live CD has no debian-installer; use the netinst CD",
        name,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const NETINST: &[&str] = &[
        "/.disk/info",
        "/install.amd/vmlinuz",
        "/install.amd/initrd.gz",
        "/isolinux/isolinux.cfg",
        "/isolinux/gtk.cfg",
    ];

    fn info(text: &'static str) -> impl Fn(&str) -> Option<String> {
        move |p| (p == "/.disk/info").then(|| text.to_string())
    }

    #[test]
    fn netinst_is_found_others_refused_or_left_alone() {
        let netinst = Listing::for_tests(NETINST);
        let live = Listing::for_tests(&["/.disk/info", "/isolinux/isolinux.cfg"]);
        // The CD's files, its .disk/info and what recognise says: `Found` (true) or
        // `Refused` (false) with this text in it, or `Other` (None).
        let cases = [
            (
                &netinst,
                "Debian GNU/Linux 12.11.0 \"Bookworm\" - Official amd64 NETINST with firmware 20250517-09:51",
                Some((true, "12.11.0")),
            ),
            (
                &netinst,
                "Debian GNU/Linux 11.7.0 \"Bullseye\" - Official amd64 NETINST 20230429-11:49",
                Some((false, "not a Debian 12")),
            ),
            (
                &netinst,
                "Debian GNU/Linux 12.11.0 \"Bookworm\" - Official arm64 NETINST 20250517-09:51",
                Some((false, "amd64")),
            ),
            (
                &netinst,
                "Ubuntu 12.04.5 LTS \"Precise Pangolin\" - Release amd64 (20140806.1)",
                None,
            ),
            (
                &live,
                "Debian GNU/Linux 12.11.0 \"Bookworm\" - Official amd64 LIVE 20250517",
                Some((false, "install.amd/initrd.gz")),
            ),
        ];
        for (listing, disk_info, want) in cases {
            let f = recognise(listing, &info(disk_info));
            let as_wanted = match (&f, want) {
                (Recognition::Found(name), Some((true, text))) => name.contains(text),
                (Recognition::Refused(why), Some((false, text))) => why.contains(text),
                (Recognition::Other, None) => true,
                _ => false,
            };
            assert!(as_wanted, "{disk_info}: {f:?}, wanted {want:?}");
        }
    }

    #[test]
    fn boot_arguments_use_bookworms_aliases_and_separator() {
        let args = ["console=ttyS0,115200n8".to_string()];
        let v = BootValues {
            install_file: "http://10.0.2.2:8080/hosts/kvm1.lab/preseed.cfg",
            locale: "en_US.UTF-8",
            keyboard: "de",
            hostname: Some("kvm1"),
            domain: Some("lab"),
            kernel_args: &args,
        };
        assert_eq!(
            iso_args(&v).join(" "),
            "priority=critical locale=en_US.UTF-8 keymap=de console=ttyS0,115200n8 ---"
        );
        let p = pxe_args(&v).join(" ");
        assert!(
            p.contains(" url=http://10.0.2.2:8080/hosts/kvm1.lab/preseed.cfg "),
            "{p}"
        );
        assert!(p.contains(" hostname=kvm1 domain=lab "), "{p}");
        assert!(p.ends_with(" ---"), "{p}");
    }
}
