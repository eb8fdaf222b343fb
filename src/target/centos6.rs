//! CentOS 6.x (tested with 6.3) x86_64, installed by anaconda from the DVD or a tree.

use hvseed_plan::plan::{Os, SelinuxMode};

use super::{
    anaconda, Install, InventoryRules, IsoMedium, Isolinux, PxeLayout, PxeUefi, ReadIdentity,
    Recognition, Selinux, Target, UefiMenu,
};
use crate::isoread::Listing;

pub static TARGET: Target = Target {
    os: Os::Centos6,
    title: "CentOS 6",
    install: Install {
        format: anaconda::FORMAT,
        file: anaconda::INSTALL_FILE,
        templates: &[
            ("ks.cfg", include_str!("../../profiles/centos6/ks.cfg")),
            (
                "fleet-ks.cfg",
                include_str!("../../profiles/centos6/fleet-ks.cfg"),
            ),
            ("host.ks", include_str!("../../profiles/centos6/host.ks")),
            (
                "packages.ks",
                include_str!("../../profiles/centos6/packages.ks"),
            ),
            anaconda::FLEET_PRE_SH,
            anaconda::POST_NOCHROOT_SH,
            anaconda::POST_SH,
        ],
    },
    iso: IsoMedium {
        wanted: "a CentOS 6.3 x86_64 DVD",
        accepted: "CentOS 6.x x86_64 DVDs",
        short: "a CentOS 6 DVD",
        identity_files: &["/.discinfo", "/.treeinfo"],
        recognise,
        // isolinux on every DVD; grub-legacy EFI from 6.3 on.
        bios: Isolinux {
            menu: "/isolinux/isolinux.cfg",
            set_timeout: true,
            gfxboot_top: None,
        },
        uefi: UefiMenu::GrubLegacy {
            conf: "/EFI/BOOT/BOOTX64.conf",
        },
        no_uefi_note: " (CentOS 6.2 and older DVDs have none)",
        initrd_with_install_file: None,
        md5sums: None,
        args: anaconda::iso_args,
        label_args: None,
    },
    pxe: PxeLayout {
        kernel: "/images/pxeboot/vmlinuz",
        initrd: "/images/pxeboot/initrd.img",
        tftp_kernel: "tftp/centos6/vmlinuz",
        tftp_initrd: "tftp/centos6/initrd.img",
        // EL6's loader fetches stage2 (images/install.img) from the `url` tree, then
        // yum reads repodata/ and Packages/.
        tree_required: &[
            "/.treeinfo",
            "/images/install.img",
            "/repodata",
            "/Packages",
        ],
        tree_optional: &["/.discinfo", "/images/updates.img", "/images/product.img"],
        // The grub-legacy EFI loader on CentOS 6 ISOs: the only loader that boots the
        // EL6 kernel under UEFI (boot-media.md).
        uefi: PxeUefi::GrubLegacy {
            loader: "/EFI/BOOT/BOOTX64.efi",
            boot_file: "BOOTX64.efi",
            missing_note: "CentOS 6.2 and older have none",
        },
        uefi_media_loaders: None,
        args: anaconda::pxe_args,
        tree_arg: None,
    },
    inventory: InventoryRules {
        selinux: Selinux::Default(SelinuxMode::Permissive),
        // EL6.3's libvirt is 0.9.10: guest.cpu.mode works; Open vSwitch bridges are
        // a libvirt 0.9.11 feature that EL6 backported.
        cpu_mode_warning: None,
        openvswitch_warning: None,
        min_cloudstack: None,
        cloudstack_apt: None,
        cdrom_refused: None,
        extra_repositories_refused: None,
        kernel_arg_refused: None,
        apt_key_url_refused: None,
        keyboard_refused: None,
        openvswitch_package_required: None,
    },
    media_pending: None,
};

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

/// A CentOS 6.x x86_64 DVD: `.treeinfo` (or `.discinfo` alone) names the family,
/// version and architecture.
fn recognise(listing: &Listing, read: &ReadIdentity) -> Recognition {
    let treeinfo = read("/.treeinfo");
    let discinfo = read("/.discinfo");
    if treeinfo.is_none() && discinfo.is_none() {
        return Recognition::Other;
    }
    let (family, version, arch, from) = match &treeinfo {
        Some(t) => (
            ini_value(t, "general", "family").unwrap_or_default(),
            ini_value(t, "general", "version").unwrap_or_default(),
            ini_value(t, "general", "arch").unwrap_or_default(),
            ".treeinfo",
        ),
        None => {
            let d = discinfo.as_deref().unwrap_or("");
            let lines: Vec<&str> = d.lines().map(str::trim).collect();
            // Line 2 is "CentOS 6.3" on some DVDs and just "6.3" on others.
            let l2 = lines.get(1).copied().unwrap_or("");
            let (family, version) = match l2.rsplit_once(' ') {
                Some((f, v)) => (f.to_string(), v.to_string()),
                None => (String::new(), l2.to_string()),
            };
            (
                family,
                version,
                lines.get(2).copied().unwrap_or("").to_string(),
                ".discinfo",
            )
        }
    };
    let name = crate::escape::escape(format!("{family} {version} {arch}").trim()).into_owned();
    let found = format!("\"{name}\" (from {from})");
    if !family.eq_ignore_ascii_case("centos") || !(version == "6" || version.starts_with("6.")) {
        return Recognition::Refused(format!("{found}, not a CentOS 6.x DVD"));
    }
    if arch != "x86_64" {
        return Recognition::Refused(format!("{found}, not the x86_64 DVD"));
    }
    if !listing.has("/isolinux/isolinux.cfg") {
        return Recognition::Refused(format!("{found} without isolinux/isolinux.cfg"));
    }
    Recognition::Found(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn centos_from_discinfo_alone() {
        let l = Listing::centos6_dvd_for_tests();
        let f = recognise(&l, &|p| {
            (p == "/.discinfo").then(|| "1341569670.5\n6.3\nx86_64\n1\n".to_string())
        });
        // Without a family on line 2 this is not known to be CentOS.
        assert!(matches!(f, Recognition::Refused(_)), "{f:?}");
        let f = recognise(&l, &|p| {
            (p == "/.discinfo").then(|| "1341569670.5\nCentOS 6.3\nx86_64\n".to_string())
        });
        assert_eq!(f, Recognition::Found("CentOS 6.3 x86_64".into()));
    }

    #[test]
    fn centos_7_is_described_and_refused() {
        let l = Listing::for_tests(&["/.treeinfo", "/isolinux/isolinux.cfg"]);
        let f = recognise(&l, &|p| {
            (p == "/.treeinfo")
                .then(|| "[general]\nfamily = CentOS\nversion = 7\narch = x86_64\n".to_string())
        });
        let Recognition::Refused(err) = f else {
            panic!("{f:?}")
        };
        assert!(
            err.contains("CentOS 7 x86_64") && err.contains("not a CentOS 6.x"),
            "{err}"
        );
    }

    #[test]
    fn other_media_are_not_claimed() {
        let l = Listing::for_tests(&["/.disk/info"]);
        assert_eq!(
            recognise(&l, &|p| (p == "/.disk/info").then(|| "Ubuntu".into())),
            Recognition::Other
        );
    }
}
