//! The install ISO as `hvseed pxe` uses it: its identity (to reuse what was extracted
//! before), its flavour and what the installer needs from it per flavour ([`Layout`]);
//! the reading itself is [`crate::isoread`]'s, shared with `hvseed iso`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::inventory::Os;
use crate::isoread;

/// An ISO 9660 image on disk.
#[derive(Debug, Clone)]
pub struct Iso {
    pub path: PathBuf,
    /// Size, modification time and volume id: what decides whether files extracted
    /// from it earlier can be reused.
    pub identity: String,
}

/// What the installer needs from the ISO for one flavour.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
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
}

pub const CENTOS6: Layout = Layout {
    kernel: "/images/pxeboot/vmlinuz",
    initrd: "/images/pxeboot/initrd.img",
    tftp_kernel: "tftp/centos6/vmlinuz",
    tftp_initrd: "tftp/centos6/initrd.img",
    // EL6's loader fetches stage2 (images/install.img) from the `url` tree, then yum
    // reads repodata/ and Packages/.
    tree_required: &[
        "/.treeinfo",
        "/images/install.img",
        "/repodata",
        "/Packages",
    ],
    tree_optional: &["/.discinfo", "/images/updates.img", "/images/product.img"],
};

pub const UBUNTU1204: Layout = Layout {
    kernel: "/install/netboot/ubuntu-installer/amd64/linux",
    initrd: "/install/netboot/ubuntu-installer/amd64/initrd.gz",
    tftp_kernel: "tftp/ubuntu1204/linux",
    tftp_initrd: "tftp/ubuntu1204/initrd.gz",
    // A Debian mirror: d-i's netboot initrd downloads its udebs and the packages from
    // dists/ and pool/.
    tree_required: &["/dists", "/pool"],
    tree_optional: &["/.disk"],
};

pub fn layout(os: Os) -> Layout {
    match os {
        Os::Centos6 => CENTOS6,
        Os::Ubuntu1204 => UBUNTU1204,
        // debian12: builder side pending
        Os::Debian12 => {
            unreachable!("debian12: builder side pending (the inventory does not accept it yet)")
        }
    }
}

/// The grub-legacy EFI loader on CentOS 6 ISOs (the only loader that boots the EL6
/// kernel under UEFI; see boot-media.md).
pub const CENTOS6_EFI_LOADER: &str = "/EFI/BOOT/BOOTX64.efi";

impl Iso {
    /// Checks that `path` is a complete ISO 9660 image and computes its identity.
    pub fn open(path: &Path) -> Result<Iso> {
        let volid = isoread::check_header(path)?.volume_id;
        let meta =
            std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        Ok(Iso {
            path: path.to_path_buf(),
            identity: format!("size={} mtime_ns={mtime} volid={volid}", meta.len()),
        })
    }

    /// Checks from the ISO's own files that it is the installer of `os` (the same
    /// recognition as `hvseed iso`).
    pub fn check_flavour(&self, os: Os, scratch: &Path) -> Result<()> {
        let probe = scratch.join("identity");
        let found = isoread::identify(&self.path, os, &probe)?;
        tracing::info!(
            "{}: {} (volume id \"{}\")",
            self.path.display(),
            found.flavour.name(),
            found.volume_id
        );
        let _ = std::fs::remove_dir_all(&probe);
        Ok(())
    }

    /// Which of `paths` (files or directories, absolute inside the ISO) it lacks.
    pub fn missing<'p>(&self, paths: &[&'p str]) -> Result<Vec<&'p str>> {
        isoread::missing(&self.path, paths)
    }

    /// Extracts files or directories (`(path in the ISO, local path)`), made writable
    /// for the owner so that hvseed can replace or remove them later.
    pub fn extract(&self, pairs: &[(&str, &Path)]) -> Result<()> {
        isoread::extract_to(&self.path, pairs)
    }
}
