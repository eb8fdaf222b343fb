//! Ubuntu 12.04.x amd64 server (or alternate) CD, installed by debian-installer.

use hvseed_plan::plan::Os;

use super::{
    debian_installer, Install, InventoryRules, IsoMedium, Isolinux, PxeLayout, PxeUefi,
    ReadIdentity, Recognition, Selinux, Target, UefiMenu,
};
use crate::isoread::Listing;

pub static TARGET: Target = Target {
    os: Os::Ubuntu1204,
    title: "Ubuntu 12.04",
    install: Install {
        format: debian_installer::FORMAT,
        file: debian_installer::INSTALL_FILE,
        templates: &[
            (
                "preseed.cfg",
                include_str!("../../profiles/ubuntu1204/preseed.cfg"),
            ),
            (
                "settings.cfg",
                include_str!("../../profiles/ubuntu1204/settings.cfg"),
            ),
            debian_installer::EARLY_SH,
            debian_installer::LATE_SH,
        ],
    },
    iso: IsoMedium {
        wanted: "an Ubuntu 12.04.x amd64 server CD",
        accepted: "Ubuntu 12.04.x amd64 server CDs",
        short: "an Ubuntu 12.04 CD",
        identity_files: &["/.disk/info"],
        recognise,
        // isolinux's entries are in txt.cfg; isolinux.cfg starts gfxboot. UEFI:
        // GRUB2 with boot/grub/grub.cfg.
        bios: Isolinux {
            menu: "/isolinux/txt.cfg",
            set_timeout: false,
            gfxboot_top: Some("/isolinux/isolinux.cfg"),
        },
        uefi: UefiMenu::Grub2 {
            cfg: "/boot/grub/grub.cfg",
        },
        no_uefi_note: "",
        initrd_with_install_file: Some("/install/initrd.gz"),
        md5sums: Some("/md5sum.txt"),
        args: debian_installer::iso_args,
        label_args: None,
    },
    pxe: PxeLayout {
        kernel: "/install/netboot/ubuntu-installer/amd64/linux",
        initrd: "/install/netboot/ubuntu-installer/amd64/initrd.gz",
        tftp_kernel: "tftp/ubuntu1204/linux",
        tftp_initrd: "tftp/ubuntu1204/initrd.gz",
        // A Debian mirror: d-i's netboot initrd downloads its udebs and the packages
        // from dists/ and pool/.
        tree_required: &["/dists", "/pool"],
        tree_optional: &["/.disk"],
        // Ubuntu 12.04's GRUB 1.99 has no per-MAC config lookup: the image is built
        // from the build host's GRUB.
        uefi: PxeUefi::Grub2,
        uefi_media_loaders: None,
        args: debian_installer::pxe_args,
        tree_arg: None,
    },
    inventory: InventoryRules {
        selinux: Selinux::Refused(
            "SELinux settings apply to centos6 only; remove this key (Ubuntu 12.04 uses \
             AppArmor, which hvseed configures itself)",
        ),
        cpu_mode_warning: Some(
            "Ubuntu 12.04's stock libvirt (0.9.8) is older than 0.9.10, which \
             guest.cpu.mode needs: CloudStack will ignore it unless a newer libvirt is \
             installed",
        ),
        openvswitch_warning: Some(
            "Ubuntu 12.04's stock libvirt (0.9.8) is older than 0.9.11, which Open vSwitch \
             bridges need: install a newer libvirt (e.g. from the Ubuntu Cloud Archive) or \
             use linux-bridge",
        ),
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

/// `.disk/info` names the CD; a server CD has debian-installer and isolinux's menus.
fn recognise(listing: &Listing, read: &ReadIdentity) -> Recognition {
    let Some(info) = read("/.disk/info") else {
        return Recognition::Other;
    };
    // The ISO's text, shown in messages: its control characters escaped.
    let name = crate::escape::escape(info.lines().next().unwrap_or("").trim()).into_owned();
    let found = format!("\"{name}\" (from .disk/info)");
    if !name.starts_with("Ubuntu") || !name.contains(" 12.04") {
        return Recognition::Refused(format!("{found}, not an Ubuntu 12.04.x CD"));
    }
    if !name.contains("amd64") {
        return Recognition::Refused(format!("{found}, not the amd64 (x86-64) CD"));
    }
    debian_installer::with_installer(
        listing,
        &[
            "/install/vmlinuz",
            "/install/initrd.gz",
            "/isolinux/isolinux.cfg",
            "/isolinux/txt.cfg",
        ],
        &found,
        "a desktop live CD has no debian-installer; use the server CD",
        name,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ubuntu_desktop_is_refused_with_a_reason() {
        let l = Listing::for_tests(&["/.disk/info", "/isolinux/isolinux.cfg"]);
        let f = recognise(&l, &|p| {
            (p == "/.disk/info").then(|| {
                "Ubuntu 12.04.5 LTS \"Precise Pangolin\" - Release amd64 (20140806.1)".to_string()
            })
        });
        let Recognition::Refused(err) = f else {
            panic!("{f:?}")
        };
        assert!(
            err.contains("install/initrd.gz") && err.contains("server CD"),
            "{err}"
        );
    }
}
