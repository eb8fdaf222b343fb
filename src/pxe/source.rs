//! The install ISO as `hvseed pxe` uses it: its identity (to reuse what was extracted
//! before), its flavour (CentOS 6 or Ubuntu 12.04, recognised as `hvseed iso` does)
//! and single-file and directory extraction with xorriso (`-osirrox on -indev ISO
//! -extract`), never unpacking more than the files named.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::inventory::Os;
use crate::tool::Tool;

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
    }
}

/// The grub-legacy EFI loader on CentOS 6 ISOs (the only loader that boots the EL6
/// kernel under UEFI; see boot-media.md).
pub const CENTOS6_EFI_LOADER: &str = "/EFI/BOOT/BOOTX64.efi";

impl Iso {
    /// Checks that `path` is a complete ISO 9660 image and computes its identity.
    pub fn open(path: &Path) -> Result<Iso> {
        let volid = crate::iso::check_header(path)?;
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
        let found = crate::iso::identify(&self.path, os, &probe)?;
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
        let out = Tool::new("xorriso")
            .args(["-osirrox", "on", "-indev"])
            .arg(crate::iso::xorriso_file(&self.path))
            .arg("-lsd")
            .args(paths.iter().copied())
            .run()
            .with_context(|| format!("listing {}", self.path.display()))?;
        let text = String::from_utf8_lossy(&out);
        let found: std::collections::HashSet<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix('\'')?.strip_suffix('\''))
            .collect();
        Ok(paths
            .iter()
            .copied()
            .filter(|p| !found.contains(p))
            .collect())
    }

    /// Extracts files or directories (`(path in the ISO, local path)`) in one xorriso
    /// run. Extracted files are read-only in the ISO; they are made writable for the
    /// owner so that hvseed can replace or remove them later.
    pub fn extract(&self, pairs: &[(&str, &Path)]) -> Result<()> {
        let mut t = Tool::new("xorriso")
            .args(["-osirrox", "on", "-indev"])
            .arg(crate::iso::xorriso_file(&self.path));
        for (inside, local) in pairs {
            t = t.arg("-extract").arg(*inside).arg(*local);
        }
        if let Err(e) = t.run() {
            let e = e.context(format!("extracting from {}", self.path.display()));
            // xorriso's message names the errno of its last failed call, which after a
            // short write is not always ENOSPC: a full disk is said in so many words.
            let full = pairs
                .iter()
                .filter_map(|(_, l)| l.ancestors().find(|a| a.is_dir()))
                .find_map(full_disk);
            return Err(match full {
                Some(why) => e.context(why),
                None => e,
            });
        }
        for (_, local) in pairs {
            make_writable(local)?;
        }
        Ok(())
    }
}

/// "No space left on device …" when the file system holding `dir` has no room left
/// (less than 1 MiB or no inode), else `None`.
fn full_disk(dir: &Path) -> Option<String> {
    let st = rustix::fs::statvfs(dir).ok()?;
    let free = st.f_bavail.saturating_mul(st.f_frsize);
    (free < 1 << 20 || (st.f_files > 0 && st.f_favail == 0)).then(|| {
        format!(
            "{} (the file system of {} has {free} bytes and {} inodes free): free some \
             space or write --out to another disk",
            std::io::Error::from_raw_os_error(rustix::io::Errno::NOSPC.raw_os_error()),
            dir.display(),
            st.f_favail
        )
    })
}

fn make_writable(p: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for e in walkdir::WalkDir::new(p) {
        let e = e.with_context(|| format!("reading {}", p.display()))?;
        let meta = e.metadata()?;
        let mode = meta.permissions().mode();
        let want = if meta.is_dir() {
            mode | 0o755
        } else {
            (mode | 0o644) & !0o022
        };
        if want != mode {
            std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(want))
                .with_context(|| format!("chmod {}", e.path().display()))?;
        }
    }
    Ok(())
}
