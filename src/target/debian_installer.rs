//! What targets installed by debian-installer share: the preseed format and how a
//! boot entry answers the questions d-i asks before it reads the preseed.

use super::{BootValues, Format, Recognition};
use crate::isoread::Listing;

pub const FORMAT: Format = Format::Preseed;
/// The preseed's name under `hosts/<fqdn>/` and `fleet/`.
pub const INSTALL_FILE: &str = "preseed.cfg";
/// The preseed's early and late scripts (`profiles/debian-installer/`): every d-i
/// target runs the same ones, only the shell and the static agent.
pub const EARLY_SH: (&str, &str) = (
    "early.sh",
    include_str!("../../profiles/debian-installer/early.sh"),
);
pub const LATE_SH: (&str, &str) = (
    "late.sh",
    include_str!("../../profiles/debian-installer/late.sh"),
);

/// The ISO's boot entry: the preseed is inside the initrd (`/preseed.cfg`, read before
/// the first question), so the command line only makes d-i ask nothing.
pub fn iso_args(v: &BootValues) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "auto=true".into(),
        "priority=critical".into(),
        format!("locale={}", v.locale),
        format!("keyboard-configuration/layoutcode={}", v.keyboard),
        "console-setup/ask_detect=false".into(),
    ];
    args.extend(v.kernel_args.iter().cloned());
    args.push("--".into());
    args
}

/// A host's PXE entry. `url=` is fetched after d-i's DHCP, so what d-i asks before
/// that goes on the command line (boot-media.md): locale, keyboard, hostname.
pub fn pxe_args(v: &BootValues) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "auto=true".into(),
        "priority=critical".into(),
        format!("url={}", v.install_file),
        format!("locale={}", v.locale),
        format!("keyboard-configuration/layoutcode={}", v.keyboard),
        format!("keyboard-configuration/xkb-keymap={}", v.keyboard),
        "console-setup/ask_detect=false".into(),
        format!("hostname={}", v.hostname.unwrap_or_default()),
        format!("domain={}", v.domain.unwrap_or_default()),
        // BOOTIF (from IPAPPEND 2, or written into the GRUB file) picks the NIC:
        // d-i's netcfg reads BOOTIF=01-<mac> from /proc/cmdline, finds the
        // interface with that MAC and makes it the default; with the question
        // preseeded to `auto` it is not asked and that default is used
        // (netcfg's netcfg-common.c: get_bootif, find_bootif_iface,
        // netcfg_get_interface).
        "netcfg/choose_interface=auto".into(),
    ];
    args.extend(v.kernel_args.iter().cloned());
    args
}

/// The last step of recognising a d-i CD: `name` if the medium has every file of
/// `needed` (the installer's kernel, initrd and the isolinux menus hvseed edits), else
/// a refusal naming what is missing, what was `found` and `which_cd` to use instead.
pub fn with_installer(
    listing: &Listing,
    needed: &[&str],
    found: &str,
    which_cd: &str,
    name: String,
) -> Recognition {
    let gone: Vec<&str> = needed
        .iter()
        .filter(|f| !listing.has(f))
        .map(|f| f.trim_start_matches('/'))
        .collect();
    if gone.is_empty() {
        Recognition::Found(name)
    } else {
        Recognition::Refused(format!("{found} without {} ({which_cd})", gone.join(", ")))
    }
}
