//! What targets installed by anaconda (EL6's loader + anaconda) share: the kickstart
//! format and how a boot entry hands the kickstart over.

use super::{BootValues, Format};

pub const FORMAT: Format = Format::Kickstart;
/// The kickstart's name under `hosts/<fqdn>/` and `fleet/`.
pub const INSTALL_FILE: &str = "ks.cfg";

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
