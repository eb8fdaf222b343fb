//! Ubuntu 24.04 LTS (noble) amd64, installed by subiquity's autoinstall from the
//! live-server ISO (family: [`super::subiquity`]).

use hvseed_plan::plan::Os;

use super::{
    subiquity, CloudstackApt, Install, InventoryRules, IsoMedium, Isolinux, Listing, MinCloudstack,
    PxeLayout, PxeUefi, ReadIdentity, Recognition, Selinux, Target, UefiMenu,
};

pub static TARGET: Target = Target {
    os: Os::Ubuntu2404,
    title: "Ubuntu 24.04",
    install: Install {
        format: subiquity::FORMAT,
        file: subiquity::INSTALL_FILE,
        templates: &[
            subiquity::TEMPLATES[0],
            subiquity::TEMPLATES[1],
            subiquity::TEMPLATES[2],
            subiquity::TEMPLATES[3],
            subiquity::TEMPLATES[4],
            (
                "release.yaml",
                include_str!("../../profiles/ubuntu2404/release.yaml"),
            ),
        ],
    },
    iso: IsoMedium {
        wanted: "an Ubuntu 24.04 amd64 live-server ISO",
        accepted: "Ubuntu 24.04.x amd64 live-server ISOs",
        short: "an Ubuntu 24.04 ISO",
        identity_files: &["/.disk/info"],
        recognise,
        // Not used while `media_pending` is set: the live-server ISO has no
        // isolinux; BIOS and UEFI both read boot/grub/grub.cfg.
        bios: Isolinux {
            menu: "/boot/grub/grub.cfg",
            set_timeout: false,
            gfxboot_top: None,
        },
        uefi: UefiMenu::Grub2 {
            cfg: "/boot/grub/grub.cfg",
        },
        no_uefi_note: "",
        initrd_with_install_file: None,
        md5sums: Some("/md5sum.txt"),
        args: subiquity::iso_args,
        label_args: None,
    },
    pxe: PxeLayout {
        kernel: "/casper/vmlinuz",
        initrd: "/casper/initrd",
        tftp_kernel: "tftp/ubuntu2404/vmlinuz",
        tftp_initrd: "tftp/ubuntu2404/initrd",
        tree_required: &[],
        tree_optional: &[],
        uefi: PxeUefi::Grub2,
        uefi_media_loaders: None,
        args: subiquity::pxe_args,
        tree_arg: None,
    },
    inventory: InventoryRules {
        selinux: Selinux::Refused(
            "SELinux settings apply to centos6 only; remove this key (Ubuntu uses \
             AppArmor, which hvseed configures itself)",
        ),
        cpu_mode_warning: None,
        openvswitch_warning: None,
        min_cloudstack: Some(MinCloudstack {
            version: (4, 19),
            source: "Ubuntu 24.04 hosts are supported from CloudStack 4.19 on, \
                     cloudstack-documentation@4.19 source/releasenotes/compat.rst",
        }),
        cloudstack_apt: Some(CloudstackApt {
            default_suite: "noble",
        }),
        cdrom_refused: Some(subiquity::CDROM_REFUSED),
        extra_repositories_refused: Some(subiquity::EXTRA_REPOSITORIES_REFUSED),
        kernel_arg_refused: Some(subiquity::kernel_arg_refused),
        apt_key_url_refused: Some(subiquity::APT_KEY_URL_REFUSED),
        keyboard_refused: Some(subiquity::keyboard_refused),
        openvswitch_package_required: None,
    },
    media_pending: Some(subiquity::MEDIA_PENDING),
};

/// `.disk/info`: `Ubuntu-Server 24.04.N LTS "Noble Numbat" - Release amd64 (…)`.
fn recognise(listing: &Listing, read: &ReadIdentity) -> Recognition {
    subiquity::recognise(listing, read("/.disk/info"), "24.04", "Ubuntu 24.04")
}
