//! What targets installed by anaconda share: the kickstart format, the scripts every
//! kickstart runs (the fleet `%pre` that picks the host by MAC, the `%post` steps that
//! put the agent in place and run its offline step) and how EL6's loader is handed
//! the kickstart (EL9's dracut-based anaconda takes `inst.*` arguments: `el9.rs`).

use super::{BootValues, Format};

pub const FORMAT: Format = Format::Kickstart;
/// The kickstart's name under `hosts/<fqdn>/` and `fleet/`.
pub const INSTALL_FILE: &str = "ks.cfg";

/// The fleet kickstart's `%pre` (sh): finds the host by the MACs in sysfs and writes
/// its own lines for `%include`.
pub const FLEET_PRE_SH: (&str, &str) = (
    "fleet-pre.sh",
    include_str!("../../profiles/anaconda/fleet-pre.sh"),
);
/// `%post --nochroot`: the agent (and, for the fleet file, the host's plan and keys)
/// from the install media into the new system.
pub const POST_NOCHROOT_SH: (&str, &str) = (
    "post-nochroot.sh",
    include_str!("../../profiles/anaconda/post-nochroot.sh"),
);
/// `%post`: the plan and keys (per-host file), then the agent's offline step.
pub const POST_SH: (&str, &str) = ("post.sh", include_str!("../../profiles/anaconda/post.sh"));

/// The ISO's boot entry: `ks=cdrom:` is what EL6's loader documents for a kickstart
/// on the boot CD (a virtual CD over IPMI is the common case); it needs no volume
/// label that a user might change.
pub fn iso_args(v: &BootValues) -> Vec<String> {
    let mut args = vec![format!("ks=cdrom:/hvseed/{}", v.install_file)];
    args.extend(v.kernel_args.iter().cloned());
    args
}

/// A host's PXE entry: the loader brings up the NIC that PXE-booted (BOOTIF) to
/// fetch `ks=`.
pub fn pxe_args(v: &BootValues) -> Vec<String> {
    let mut args = vec![
        format!("ks={}", v.install_file),
        "ksdevice=bootif".into(),
        "text".into(),
    ];
    args.extend(v.kernel_args.iter().cloned());
    args
}
