//! What targets installed by subiquity (Ubuntu 22.04 and 24.04 live-server) share:
//! the autoinstall format delivered through cloud-init's NoCloud datasource, the
//! templates in `profiles/subiquity/`, the kernel arguments subiquity, casper and
//! cloud-init take for themselves, and how the live-server ISO names itself.

use super::{BootValues, Format, Recognition};
use crate::isoread::Listing;

/// The [`Target`](super::Target) of one Ubuntu live-server release: everything but
/// the release (`"22.04"`), its codename (`"jammy"`) and its `profiles/` folder
/// (`"ubuntu2204"`, which holds the release's `release.yaml`) is the family's.
macro_rules! ubuntu_target {
    ($os:expr, $release:literal, $codename:literal, $dir:literal) => {
        super::Target {
            os: $os,
            title: concat!("Ubuntu ", $release),
            install: super::Install {
                format: super::subiquity::FORMAT,
                file: super::subiquity::INSTALL_FILE,
                templates: &[
                    super::subiquity::TEMPLATES[0],
                    super::subiquity::TEMPLATES[1],
                    super::subiquity::TEMPLATES[2],
                    super::subiquity::TEMPLATES[3],
                    super::subiquity::TEMPLATES[4],
                    (
                        "release.yaml",
                        include_str!(concat!("../../profiles/", $dir, "/release.yaml")),
                    ),
                ],
            },
            iso: super::IsoMedium {
                wanted: concat!("an Ubuntu ", $release, " amd64 live-server ISO"),
                accepted: concat!("Ubuntu ", $release, ".x amd64 live-server ISOs"),
                short: concat!("an Ubuntu ", $release, " ISO"),
                identity_files: &["/.disk/info"],
                recognise: |listing, read| {
                    super::subiquity::recognise(
                        listing,
                        read("/.disk/info"),
                        $release,
                        concat!("Ubuntu ", $release),
                    )
                },
                // Not used while `media_pending` is set: the live-server ISO has no
                // isolinux; BIOS and UEFI both read boot/grub/grub.cfg.
                bios: super::Isolinux {
                    menu: "/boot/grub/grub.cfg",
                    set_timeout: false,
                    gfxboot_top: None,
                },
                uefi: super::UefiMenu::Grub2 {
                    cfg: "/boot/grub/grub.cfg",
                },
                no_uefi_note: "",
                initrd_with_install_file: None,
                md5sums: Some("/md5sum.txt"),
                args: super::subiquity::iso_args,
                label_args: None,
            },
            pxe: super::PxeLayout {
                kernel: "/casper/vmlinuz",
                initrd: "/casper/initrd",
                tftp_kernel: concat!("tftp/", $dir, "/vmlinuz"),
                tftp_initrd: concat!("tftp/", $dir, "/initrd"),
                tree_required: &[],
                tree_optional: &[],
                uefi: super::PxeUefi::Grub2,
                uefi_media_loaders: None,
                args: super::subiquity::pxe_args,
                tree_arg: None,
            },
            inventory: super::InventoryRules {
                selinux: super::Selinux::Refused(
                    "SELinux settings apply to centos6 only; remove this key (Ubuntu uses \
                     AppArmor, which hvseed configures itself)",
                ),
                cpu_mode_warning: None,
                openvswitch_warning: None,
                min_cloudstack: Some(super::MinCloudstack {
                    version: (4, 19),
                    source: concat!(
                        "Ubuntu ",
                        $release,
                        " hosts are supported from CloudStack 4.19 on, \
                         cloudstack-documentation@4.19 source/releasenotes/compat.rst"
                    ),
                }),
                cloudstack_apt: Some(super::CloudstackApt {
                    default_suite: $codename,
                }),
                cdrom_refused: Some(super::subiquity::CDROM_REFUSED),
                extra_repositories_refused: Some(super::subiquity::EXTRA_REPOSITORIES_REFUSED),
                kernel_arg_refused: Some(super::subiquity::kernel_arg_refused),
                apt_key_url_refused: Some(super::subiquity::APT_KEY_URL_REFUSED),
                keyboard_refused: Some(super::subiquity::keyboard_refused),
                openvswitch_package_required: None,
            },
            media_pending: Some(super::subiquity::MEDIA_PENDING),
        }
    };
}
pub(super) use ubuntu_target;

pub const FORMAT: Format = Format::Autoinstall;
/// The bare autoinstall body's name under `hosts/<fqdn>/` (the fleet medium's early
/// command copies it to `/autoinstall.yaml`).
pub const INSTALL_FILE: &str = "autoinstall.yaml";
/// The family's templates (`profiles/subiquity/`); each release adds its `release.yaml`.
pub const TEMPLATES: [(&str, &str); 5] = [
    (
        "autoinstall.yaml",
        include_str!("../../profiles/subiquity/autoinstall.yaml"),
    ),
    (
        "user-data",
        include_str!("../../profiles/subiquity/user-data"),
    ),
    (
        "fleet-user-data",
        include_str!("../../profiles/subiquity/fleet-user-data"),
    ),
    (
        "early.sh",
        include_str!("../../profiles/subiquity/early.sh"),
    ),
    ("late.sh", include_str!("../../profiles/subiquity/late.sh")),
];

/// Why `hvseed iso` and `hvseed pxe` refuse these targets for now.
pub const MEDIA_PENDING: &str = "hvseed does not remaster Ubuntu live-server ISOs or build \
     their PXE trees yet; `hvseed render` writes the NoCloud seeds (hosts/<fqdn>/user-data \
     and meta-data, nocloud/ for the whole cluster), which can be served or put on a \
     medium by hand";

/// `install.source: cdrom` (and its default).
pub const CDROM_REFUSED: &str = "the Ubuntu live-server ISO's package pool holds the base \
     system and drivers only, not libvirt, QEMU or the CloudStack agent: set \
     `install.source` to an Ubuntu archive mirror, e.g. `source: http://archive.ubuntu.com/ubuntu`";

/// `cloudstack.key` given as a URL: curtin writes only a key it is given inline.
pub const APT_KEY_URL_REFUSED: &str = "subiquity's apt configuration (curtin) takes a \
     repository key only inline, it does not fetch one: paste the ASCII-armoured key \
     (`-----BEGIN PGP PUBLIC KEY BLOCK-----` …) as `key: |` instead of its URL";

/// Extra repositories have no key setting in the inventory, and curtin refuses an
/// unsigned source only at install time (apt-get update fails).
pub const EXTRA_REPOSITORIES_REFUSED: &str = "autoinstall's apt sources need a signing \
     key, and extra repositories have no key setting: remove \
     `install.extra_repositories` (install such packages after the first boot)";

/// Kernel arguments hvseed's boot entries set for subiquity, or that casper or
/// cloud-init would read in their place: `url` is also cloud-init's legacy
/// `cloud-config-url` (cloud-init `cmd/main.py` `parse_cmdline_url`), `ip` is casper's
/// network setup, `ds` the NoCloud seed.
const SET_BY_HVSEED: &[&str] = &[
    "autoinstall",
    "ds",
    "url",
    "iso-url",
    "cloud-config-url",
    "ip",
    "netboot",
    "boot",
    "subiquity.autoinstallpath",
];

/// An `install.kernel_args` item subiquity's boot entries cannot carry, with the fix.
pub fn kernel_arg_refused(arg: &str) -> Option<String> {
    let name = arg.split('=').next().unwrap_or(arg);
    if SET_BY_HVSEED.contains(&name) {
        return Some(format!(
            "`{name}` is set by hvseed's boot entries (the autoinstall seed, casper's network and medium) or would be read by cloud-init in their place; remove it"
        ));
    }
    if arg == "---" || arg == "--" {
        return Some(
            "`---` ends the installer's arguments and is written by hvseed after them; remove it"
                .into(),
        );
    }
    if arg.contains(';') {
        return Some(format!(
            "`{arg}` contains `;`, which GRUB's menu reads as the end of a command and cloud-init as a separator of `ds=` fields; remove it"
        ));
    }
    None
}

/// `install.keyboard` becomes autoinstall's `keyboard.layout`, an XKB layout code:
/// subiquity 24.04 stops the install on a layout not in its XKB list (subiquity
/// `models/keyboard.py` `validate_setting`, "Unknown keyboard layout"). No XKB layout
/// code has a `-`; console keymaps (`fr-latin1`, `de-latin1-nodeadkeys`) do.
pub fn keyboard_refused(keyboard: &str) -> Option<String> {
    let layout = keyboard.split('-').next().unwrap_or(keyboard);
    keyboard.contains('-').then(|| {
        format!(
            "`{keyboard}` is a console keymap, but subiquity takes an XKB layout code and stops the install on one it does not know; write the layout, e.g. `keyboard: {layout}`"
        )
    })
}

/// The boot entry's arguments after the seed's: `autoinstall` (no "Continue with
/// autoinstall?" prompt), the inventory's, then `---`.
pub fn iso_args(v: &BootValues) -> Vec<String> {
    let mut args = vec!["autoinstall".to_string()];
    args.extend(v.kernel_args.iter().cloned());
    args.push("---".into());
    args
}

/// A host's network boot: casper's DHCP, the ISO by HTTP and the host's own seed.
pub fn pxe_args(v: &BootValues) -> Vec<String> {
    let mut args = vec![
        "ip=dhcp".to_string(),
        "autoinstall".to_string(),
        format!("ds=nocloud-net;s={}", v.install_file),
    ];
    args.extend(v.kernel_args.iter().cloned());
    args.push("---".into());
    args
}

/// `.disk/info` of a live-server ISO: `Ubuntu-Server 22.04.5 LTS "Jammy Jellyfish" -
/// Release amd64 (20240911)`. `release` is `22.04` or `24.04`; desktop ISOs, other
/// releases and other architectures are refused.
pub fn recognise(
    listing: &Listing,
    info: Option<String>,
    release: &str,
    title: &str,
) -> Recognition {
    let Some(info) = info else {
        return Recognition::Other;
    };
    let name = crate::escape::escape(info.lines().next().unwrap_or("").trim()).into_owned();
    if !name.starts_with("Ubuntu") {
        return Recognition::Other;
    }
    let found = format!("\"{name}\" (from .disk/info)");
    let Some(rest) = name.strip_prefix("Ubuntu-Server ") else {
        return Recognition::Refused(format!(
            "{found}, not an Ubuntu Server (live-server) ISO; use ubuntu-{release}.x-live-server-amd64.iso"
        ));
    };
    let version = rest.split_whitespace().next().unwrap_or("");
    if version != release && !version.starts_with(&format!("{release}.")) {
        return Recognition::Refused(format!("{found}, not an {title} ISO"));
    }
    if !name.split_whitespace().any(|w| w == "amd64") {
        return Recognition::Refused(format!("{found}, not the amd64 (x86-64) ISO"));
    }
    let gone: Vec<&str> = ["/casper/vmlinuz", "/casper/initrd", "/boot/grub/grub.cfg"]
        .into_iter()
        .filter(|f| !listing.has(f))
        .map(|f| f.trim_start_matches('/'))
        .collect();
    if gone.is_empty() {
        Recognition::Found(name)
    } else {
        Recognition::Refused(format!("{found} without {}", gone.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_server_isos_are_told_apart() {
        let full = Listing::for_tests(&[
            "/.disk/info",
            "/casper/vmlinuz",
            "/casper/initrd",
            "/boot/grub/grub.cfg",
        ]);
        let bare = Listing::for_tests(&["/.disk/info", "/boot/grub/grub.cfg"]);
        let jammy = "Ubuntu-Server 22.04.5 LTS \"Jammy Jellyfish\" - Release amd64 (20240911)";
        let noble = "Ubuntu-Server 24.04.1 LTS \"Noble Numbat\" - Release amd64 (20240827)";
        let check = |l: &Listing, info: &str, release: &str| {
            recognise(l, Some(info.to_string()), release, "Ubuntu X")
        };
        assert!(
            matches!(check(&full, jammy, "22.04"), Recognition::Found(n) if n.contains("22.04.5"))
        );
        assert!(matches!(
            check(&full, noble, "24.04"),
            Recognition::Found(_)
        ));
        assert!(
            matches!(check(&full, noble, "22.04"), Recognition::Refused(w) if w.contains("not an Ubuntu X"))
        );
        assert!(matches!(
            check(&full, "Ubuntu 24.04.1 LTS \"Noble Numbat\" - Release amd64 (20240827)", "24.04"),
            Recognition::Refused(w) if w.contains("live-server")
        ));
        assert!(matches!(
            check(&full, "Ubuntu-Server 24.04.1 LTS \"Noble Numbat\" - Release arm64 (20240827)", "24.04"),
            Recognition::Refused(w) if w.contains("amd64")
        ));
        assert!(
            matches!(check(&bare, jammy, "22.04"), Recognition::Refused(w) if w.contains("casper/vmlinuz"))
        );
        assert_eq!(
            check(
                &full,
                "Debian GNU/Linux 12.11.0 \"Bookworm\" - Official amd64 NETINST",
                "22.04"
            ),
            Recognition::Other
        );
    }

    #[test]
    fn kernel_args_subiquity_takes_are_refused() {
        for bad in [
            "autoinstall",
            "ds=nocloud",
            "url=http://x/",
            "ip=dhcp",
            "---",
            "a;b",
        ] {
            assert!(kernel_arg_refused(bad).is_some(), "{bad}");
        }
        for ok in ["console=ttyS0,115200n8", "nomodeset", "net.ifnames=0"] {
            assert_eq!(kernel_arg_refused(ok), None, "{ok}");
        }
    }
}
