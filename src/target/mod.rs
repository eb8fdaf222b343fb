//! Installer targets: everything the builder knows about one `os` value of the
//! inventory, one module per target, registered in [`TARGETS`]. The generic code
//! (`render`, `iso`, `isoread`, `pxe`, `inventory`) asks [`of`] for the target of an
//! inventory's `os` and reads what it needs from the [`Target`] table: it never names
//! a target. What targets of one installer share lives in a family module
//! ([`anaconda`] for kickstart installs, [`debian_installer`] for preseeded d-i).
//!
//! Adding a target (docs/architecture.md, "How to add an OS target"): a variant of
//! `hvseed_plan::plan::Os`, a module here with its `TARGET`, its templates in
//! `profiles/<target>/`, and one line in [`TARGETS`].

mod anaconda;
mod centos6;
mod debian12;
mod debian_installer;
mod el9;
mod subiquity;
mod ubuntu1204;
mod ubuntu2204;
mod ubuntu2404;

use std::sync::OnceLock;

use hvseed_plan::plan::{Os, SelinuxMode};

use crate::isoread::Listing;

/// Every target hvseed installs, in the order they are listed to users.
pub static TARGETS: &[&Target] = &[
    &centos6::TARGET,
    &ubuntu1204::TARGET,
    &debian12::TARGET,
    &el9::TARGET,
    &ubuntu2204::TARGET,
    &ubuntu2404::TARGET,
];

/// The target of an `os` value.
pub fn of(os: Os) -> &'static Target {
    TARGETS
        .iter()
        .copied()
        .find(|t| t.os == os)
        .unwrap_or_else(|| panic!("os {os} is not registered in target::TARGETS"))
}

/// The `os` values as the inventory's `os` key accepts them.
pub fn os_choices() -> &'static [(&'static str, Os)] {
    static CHOICES: OnceLock<Vec<(&'static str, Os)>> = OnceLock::new();
    CHOICES.get_or_init(|| TARGETS.iter().map(|t| (t.os.as_str(), t.os)).collect())
}

/// What to write when the inventory has no `os`: "add `os: a` or `os: b`".
pub fn os_missing_hint() -> &'static str {
    static HINT: OnceLock<String> = OnceLock::new();
    HINT.get_or_init(|| {
        let each: Vec<String> = TARGETS.iter().map(|t| format!("`os: {}`", t.os)).collect();
        format!("add {}", each.join(" or "))
    })
}

/// "a or b", "a, b or c".
pub fn either(items: &[&str]) -> String {
    match items.split_last() {
        None => String::new(),
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

/// One installer target.
#[derive(Debug)]
pub struct Target {
    /// The inventory's `os` value (and the plan's).
    pub os: Os,
    /// How boot files name the installed system ("CentOS 6").
    pub title: &'static str,
    pub install: Install,
    pub iso: IsoMedium,
    pub pxe: PxeLayout,
    pub inventory: InventoryRules,
    /// Why `hvseed iso` and `hvseed pxe` cannot build boot media for this target yet
    /// (they refuse before reading anything else); `None`: they can.
    pub media_pending: Option<&'static str>,
}

/// Targets are one per `os` value.
impl PartialEq for Target {
    fn eq(&self, other: &Target) -> bool {
        self.os == other.os
    }
}
impl Eq for Target {}

/// The install file the target's installer reads, and the templates that make it.
#[derive(Debug)]
pub struct Install {
    pub format: Format,
    /// Its name under `hosts/<fqdn>/` and `fleet/` (`ks.cfg`, `preseed.cfg`).
    pub file: &'static str,
    /// The templates from `profiles/<target>/`, compiled in: (name, source). The
    /// names are what `--templates DIR` overrides.
    pub templates: &'static [(&'static str, &'static str)],
}

/// How the install file is put together from the templates (render/).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// anaconda kickstart: `ks.cfg` from `host.ks` and `packages.ks` per host, the
    /// fleet file finds the host by MAC in `%pre`.
    Kickstart,
    /// debian-installer preseed: `preseed.cfg` from `settings.cfg`, the fleet file
    /// sets each host's answers with `debconf-set` in early_command.
    Preseed,
    /// subiquity autoinstall (cloud-init NoCloud): per host the bare body
    /// `autoinstall.yaml` and its NoCloud seed `user-data` + `meta-data`; for the
    /// cluster a seed whose early command finds the host by MAC and copies its body
    /// to `/autoinstall.yaml`, which subiquity re-reads after the early commands.
    Autoinstall,
}

/// What the installer's boot entry gets from hvseed, for its kernel arguments.
#[derive(Debug, Clone)]
pub struct BootValues<'a> {
    /// Where the installer fetches its install file: `cdrom:/hvseed/fleet/ks.cfg`
    /// style for the ISO, an `http(s)://` URL for PXE.
    pub install_file: &'a str,
    pub locale: &'a str,
    pub keyboard: &'a str,
    /// Only known for one host (PXE): its short name and its domain.
    pub hostname: Option<&'a str>,
    pub domain: Option<&'a str>,
    /// `install.kernel_args`, as the inventory checked them.
    pub kernel_args: &'a [String],
}

/// How an install ISO of this target is recognised and remastered.
#[derive(Debug)]
pub struct IsoMedium {
    /// What to give as `--source` ("a CentOS 6.3 x86_64 DVD").
    pub wanted: &'static str,
    /// The media accepted, plural ("CentOS 6.x x86_64 DVDs").
    pub accepted: &'static str,
    /// The medium in a refusal that found none ("a CentOS 6 DVD").
    pub short: &'static str,
    /// The small files that identify the medium (extracted before [`Self::recognise`]).
    pub identity_files: &'static [&'static str],
    /// Decides from the file list and the identity files (`read` gives their text)
    /// whether the ISO is this target's medium.
    pub recognise: fn(&Listing, &ReadIdentity) -> Recognition,
    /// The BIOS boot menu hvseed edits.
    pub bios: Isolinux,
    /// The UEFI boot menu hvseed edits, when the ISO has a UEFI El Torito image.
    pub uefi: UefiMenu,
    /// Said when the ISO has no UEFI boot entry, after "has no UEFI boot entry".
    pub no_uefi_note: &'static str,
    /// The installer initrd that gets the install file appended as `/preseed.cfg`
    /// (as `/hvseed/initrd.gz`); `None`: the boot entry names the install file.
    pub initrd_with_install_file: Option<&'static str>,
    /// A checksum list of the medium's files (`md5sum.txt`) that must list every
    /// file added or changed.
    pub md5sums: Option<&'static str>,
    /// The boot entry's kernel arguments (`install_file` is the path under `/hvseed/`).
    pub args: fn(&BootValues) -> Vec<String>,
    /// For installers that find their medium by its volume label: the arguments that
    /// name it, from the label and the install file's path under `/hvseed/`; they go
    /// before [`Self::args`].
    pub label_args: Option<fn(&str, &str) -> Vec<String>>,
}

/// Gives the text of an identity file (`/.disk/info`) if the ISO has it.
pub type ReadIdentity<'r> = dyn Fn(&str) -> Option<String> + 'r;

/// What [`IsoMedium::recognise`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recognition {
    /// Not this target's kind of medium at all.
    Other,
    /// This target's medium: its name (`CentOS 6.3 x86_64`), escaped for printing.
    Found(String),
    /// This kind of medium, but not one hvseed can use: what was found and why not.
    Refused(String),
}

/// isolinux: the file with the installer's `label` stanzas and, if another file sets
/// the menu up with gfxboot (which ignores `menu default` and waits), that file.
#[derive(Debug, Clone, Copy)]
pub struct Isolinux {
    pub menu: &'static str,
    /// Add a `timeout` to `menu` when it has none.
    pub set_timeout: bool,
    pub gfxboot_top: Option<&'static str>,
}

/// The UEFI boot menu of the ISO.
#[derive(Debug, Clone, Copy)]
pub enum UefiMenu {
    /// grub-legacy EFI (EL6): this `BOOTX64.conf`, and every `bootx64.conf` inside
    /// the UEFI image (at least one).
    GrubLegacy { conf: &'static str },
    /// GRUB2: this `grub.cfg`, and any `grub.cfg` with a menu inside the UEFI image.
    Grub2 { cfg: &'static str },
}

impl UefiMenu {
    /// The menu file the ISO must have for its UEFI boot to count.
    pub fn config(&self) -> &'static str {
        match self {
            UefiMenu::GrubLegacy { conf } => conf,
            UefiMenu::Grub2 { cfg } => cfg,
        }
    }
}

/// What `hvseed pxe` takes from the ISO and how its boot files start the installer.
#[derive(Debug)]
pub struct PxeLayout {
    /// Installer kernel and initrd paths inside the ISO.
    pub kernel: &'static str,
    pub initrd: &'static str,
    /// Where they go under `tftp/`.
    pub tftp_kernel: &'static str,
    pub tftp_initrd: &'static str,
    /// The package tree (a network install's repository / mirror), paths inside the
    /// ISO, the first ones required.
    pub tree_required: &'static [&'static str],
    pub tree_optional: &'static [&'static str],
    /// The UEFI loader of the tree.
    pub uefi: PxeUefi,
    /// With [`PxeUefi::Grub2`]: the medium's own signed loaders instead of the GRUB
    /// image hvseed builds, so machines with Secure Boot on boot too.
    pub uefi_media_loaders: Option<MediaLoaders>,
    /// The installer's kernel arguments (`install_file` is the URL of the host's
    /// install file; BOOTIF is added by the boot files).
    pub args: fn(&BootValues) -> Vec<String>,
    /// For installers that take the installation tree on the command line: the
    /// argument naming it (the URL of `install.source`, or of the DVD's tree that
    /// `hvseed pxe` serves for `cdrom`); it goes first.
    pub tree_arg: Option<fn(&str) -> String>,
}

/// The UEFI network boot loader of a PXE tree.
#[derive(Debug, Clone, Copy)]
pub enum PxeUefi {
    /// The ISO's own grub-legacy EFI loader (EL6), copied to `tftp/<boot_file>`; it
    /// reads `01-<MAC>` and `efidefault` from the TFTP root.
    GrubLegacy {
        loader: &'static str,
        boot_file: &'static str,
        /// Said when the ISO lacks the loader.
        missing_note: &'static str,
    },
    /// A GRUB 2 image hvseed builds from this machine's GRUB (`tftp/grubx64.efi`),
    /// reading `grub/grub.cfg-01-<mac>` and `grub/grub.cfg`.
    Grub2,
    /// d-i's own netboot loaders (shim `bootnetx64.efi` and the signed GRUB
    /// `grubx64.efi`, from the netboot files `hvseed pxe` takes as its source). That
    /// GRUB reads only `debian-installer/amd64/grub/grub.cfg` (its prefix is built in,
    /// with no per-MAC lookup), so that file picks the host's
    /// `grub.cfg-01-<mac>` with `regexp` on `$net_default_mac`.
    DebianNetboot {
        /// The Debian release the netboot files' `version.info` must name ("12").
        release: &'static str,
    },
}

/// The medium's signed UEFI loaders (EL9's DVD: `EFI/BOOT/BOOTX64.EFI`, shim, and
/// `EFI/BOOT/grubx64.efi`), paths inside the ISO. `hvseed pxe` puts them in the TFTP
/// root as `BOOTX64.EFI` (the DHCP boot file) and `grubx64.efi`, which shim loads from
/// the directory it came from. That GRUB's prefix is the directory of its boot file,
/// the TFTP root: it reads `grub.cfg-01-<mac>`, then `grub.cfg` there (the network
/// lookup of GRUB 2.04 and later; RHEL's GRUB, as Red Hat's UEFI PXE setup lays it
/// out with grub.cfg beside shim and grubx64.efi).
#[derive(Debug, Clone, Copy)]
pub struct MediaLoaders {
    pub shim: &'static str,
    pub grub: &'static str,
}

/// Inventory rules that depend on the target.
#[derive(Debug)]
pub struct InventoryRules {
    pub selinux: Selinux,
    /// A warning on `cpu.mode` (the target's stock libvirt lacks `guest.cpu.mode`).
    pub cpu_mode_warning: Option<&'static str>,
    /// A warning on `network.type: openvswitch`.
    pub openvswitch_warning: Option<&'static str>,
    /// The oldest `cloudstack.version` the target supports, if CloudStack has one.
    pub min_cloudstack: Option<MinCloudstack>,
    /// The CloudStack apt repository's settings from the inventory
    /// (`cloudstack.suite`, `key`, `unauthenticated`); `None`: the target's templates
    /// fix them and the keys are refused.
    pub cloudstack_apt: Option<CloudstackApt>,
    /// Why `install.source: cdrom` (also the default) cannot install this target; the
    /// message asks for a mirror URL.
    pub cdrom_refused: Option<&'static str>,
    /// Why `install.extra_repositories` cannot be used with this target.
    pub extra_repositories_refused: Option<&'static str>,
    /// Why an `install.keyboard` value cannot be given to this target's installer, as
    /// a sentence with the fix.
    pub keyboard_refused: Option<fn(&str) -> Option<String>>,
    /// Why `cloudstack.key` cannot be a URL (the installer takes the key inline only).
    pub apt_key_url_refused: Option<&'static str>,
    /// Why an `install.kernel_args` item cannot be given to this target's installer
    /// (one it takes for itself or would swallow), as a sentence with the fix.
    pub kernel_arg_refused: Option<fn(&str) -> Option<String>>,
    /// With `network.type: openvswitch`, the Open vSwitch package must come from an
    /// extra repository under a versioned name (`openvswitch3.3`): an
    /// `install.extra_packages` item starting with `openvswitch` and a digit, and at
    /// least one `install.extra_repositories`. The text says where to get one.
    pub openvswitch_package_required: Option<&'static str>,
}

/// The oldest CloudStack release with support for a target.
#[derive(Debug, Clone, Copy)]
pub struct MinCloudstack {
    /// `(major, minor)`, as `cloudstack.version` is compared.
    pub version: (u32, u32),
    /// Where that is documented (said in the refusal).
    pub source: &'static str,
}

/// The target's defaults for the CloudStack apt repository.
#[derive(Debug, Clone, Copy)]
pub struct CloudstackApt {
    /// `cloudstack.suite` when the inventory has none.
    pub default_suite: &'static str,
}

/// Whether `security.selinux` applies.
#[derive(Debug, Clone, Copy)]
pub enum Selinux {
    /// It does; this mode when the key is absent.
    Default(SelinuxMode),
    /// It does not: the key is an error with this message.
    Refused(&'static str),
    /// Only `permissive` (the default): `disabled` is an error with this message.
    PermissiveOnly(&'static str),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_os_value_has_exactly_one_target() {
        for t in TARGETS {
            assert_eq!(TARGETS.iter().filter(|u| u.os == t.os).count(), 1);
            assert!(std::ptr::eq(of(t.os), *t));
        }
        assert_eq!(os_choices().len(), TARGETS.len());
    }

    #[test]
    fn template_names_are_unique_within_a_target() {
        for t in TARGETS {
            let mut names: Vec<&str> = t.install.templates.iter().map(|(n, _)| *n).collect();
            let n = names.len();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), n, "{}", t.os);
            assert!(
                names.contains(&t.install.file),
                "{}: no template named like its install file",
                t.os
            );
        }
    }

    #[test]
    fn lists_read_as_prose() {
        assert_eq!(either(&["a"]), "a");
        assert_eq!(either(&["a", "b"]), "a or b");
        assert_eq!(either(&["a", "b", "c"]), "a, b or c");
    }
}
