//! `hvseed pxe`: inventory + install ISO (for debian12: d-i's netboot files, whose
//! installer can boot from the network; the netinst CD's cannot) → a PXE/HTTP tree
//! that installs each host by MAC (DIR/tftp, DIR/http, DIR/dnsmasq.conf, DIR/SHA256SUMS), rewritten incrementally:
//! a re-run touches only files whose content changes and removes those of hosts that
//! left the inventory.
//!
//! Layout of DIR:
//! - `tftp/`: `pxelinux.0`, `ldlinux.c32`, `pxelinux.cfg/{default,01-<mac>}`, the
//!   installer kernel and initrd (`<target>/`, the target's PXE layout), and the UEFI
//!   side, as the target says ([`crate::target::PxeUefi`]): GRUB 2 `grubx64.efi` +
//!   `grub/grub.cfg{,-01-<mac>}`, the ISO's grub-legacy `BOOTX64.efi` +
//!   `efidefault` + `01-<MAC>`, or d-i's signed shim and GRUB under
//!   `debian-installer/amd64/` with `grub/grub.cfg{,-01-<mac>}` there.
//! - `http/`: `hosts/<fqdn>/…` as `hvseed render` lays them out, `hvseed-firstboot`,
//!   and `os/`, the ISO's package tree, when a host installs from `cdrom`.

mod apply;
pub mod beneath;
mod build;
mod bundle;
mod configs;
mod manifest;
mod source;
mod state;
mod syslinux;

pub use configs::{
    installed_marker, installer_args, local_boot_files, mac_file_name, serial_line,
    DI_NETBOOT_SHIM, MEDIA_SHIM, PXE_STATE_DIR,
};
pub use syslinux::banner_version;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};

use crate::http_base::HttpBase;
use crate::inventory::InstallSource;
use crate::target::PxeUefi;
use apply::OsMove;
use build::{Build, PackageTree, OS_DIR};
use manifest::LastRun;
use source::{Iso, Netboot};

/// What `hvseed pxe` takes the installer from.
enum Source {
    Iso(Iso),
    Netboot(Netboot),
}

/// Refuses a `--out` tree or `--bundle` that is, holds or lies inside anything this
/// run reads (see [`crate::overlap`]), before anything is created.
fn check_overlap(c: &Options, agent: &Path, syslinux: &syslinux::Syslinux) -> Result<()> {
    // debian12 takes d-i's netboot files (a directory or netboot.tar.gz), not an ISO.
    let source = if c.source.is_dir() {
        "--source netboot directory"
    } else if c.source.extension().is_some_and(|e| e == "gz") {
        "--source netboot archive"
    } else {
        "--source ISO"
    };
    crate::overlap::Paths::new()
        .input("inventory", Some(&c.inventory))
        .input(source, Some(&c.source))
        .input("first-boot agent", Some(agent))
        .input("pxelinux.0", Some(&syslinux.pxelinux))
        .input("ldlinux.c32", Some(&syslinux.ldlinux))
        .input("--templates", c.templates.as_deref())
        .output("--out", Some(&c.out))
        .output("--bundle", c.bundle.as_deref())
        .check()
}

/// What `hvseed pxe` is asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    /// The inventory file.
    pub inventory: PathBuf,
    /// The distribution's install ISO: installer kernel, initrd and package tree.
    pub source: PathBuf,
    /// The tree to write or update.
    pub out: PathBuf,
    /// The URL under which `out/http` is served to the installers.
    pub http_base: HttpBase,
    /// A reproducible tar.gz of the tree to write as well.
    pub bundle: Option<PathBuf>,
    /// Where pxelinux.0 is; `None`: the default places.
    pub pxelinux_dir: Option<PathBuf>,
    /// Where ldlinux.c32 and the other BIOS modules are; `None`: the default places.
    pub syslinux_modules: Option<PathBuf>,
    /// The first-boot agent; `None`: [`crate::agent::locate`]'s default places.
    pub firstboot: Option<PathBuf>,
    /// Templates that override the built-in ones by file name.
    pub templates: Option<PathBuf>,
    /// Hosts whose PXE entry installs again (`all`: every host).
    pub reinstall: Vec<String>,
    /// Hosts whose PXE entry boots the local disk (`all`: every host).
    pub disarm: Vec<String>,
}
/// `hvseed pxe`.
pub fn run(c: Options) -> Result<ExitCode> {
    let started = std::time::Instant::now();
    // The manifest of an earlier run, if any (read before anything is created), is
    // read on another core while the inventory is loaded, and every file it lists is
    // looked at (`stat`) there too.
    let last = {
        let out = c.out.clone();
        std::thread::spawn(move || LastRun::read(&out))
    };
    let inventory = crate::inventory::load_valid(&c.inventory)?;
    if let Some(why) = crate::target::of(inventory.os).media_pending {
        bail!("{}: `os: {}`: {why}", c.inventory.display(), inventory.os);
    }
    tracing::debug!("inventory loaded: {:.3} s", started.elapsed().as_secs_f64());
    let base = c.http_base.clone();
    let last = last
        .join()
        .map_err(|_| anyhow::anyhow!("reading the manifest panicked"))??;
    let old = &last.manifest;
    if !last.stale.is_empty() {
        tracing::debug!(
            "{} file(s) changed or removed since the last run",
            last.stale.len()
        );
    }
    let syslinux = syslinux::locate(
        c.pxelinux_dir.as_deref(),
        c.syslinux_modules.as_deref(),
        |a, b| old.source_unchanged(a) && old.source_unchanged(b),
    )?;
    tracing::debug!(
        "syslinux {}: {} and {}",
        syslinux.version,
        syslinux.pxelinux.display(),
        syslinux.ldlinux.display()
    );
    let agent = crate::agent::locate(c.firstboot.as_deref())?;
    check_overlap(&c, &agent, &syslinux)?;
    // The source: the install ISO, or for a target whose CD installer cannot
    // netboot, d-i's netboot files (checked as they are opened).
    let target = crate::target::of(inventory.os);
    let source = match target.pxe.uefi {
        PxeUefi::DebianNetboot { release } => {
            let nb = Netboot::open(&c.source, target.title, release)?;
            tracing::info!("{}: {}", c.source.display(), nb.name());
            Source::Netboot(nb)
        }
        PxeUefi::Grub2 | PxeUefi::GrubLegacy { .. } => Source::Iso(Iso::open(&c.source)?),
    };
    if c.out.exists() && !c.out.is_dir() {
        bail!("--out {} exists and is not a directory", c.out.display());
    }
    // Every check that can refuse runs before anything is created or changed: the
    // ISO's flavour first (unless its files in the tree came from this very ISO),
    // checked in a scratch directory outside the tree.
    if let Source::Iso(iso) = &source {
        let iso_identity = format!("{} os={}", iso.identity, inventory.os);
        if old.iso.as_ref().is_none_or(|r| r.identity != iso_identity) {
            let scratch = tempfile::tempdir().context("creating a scratch directory")?;
            iso.check_flavour(inventory.os, scratch.path())?;
        }
    }
    // A --out this run creates goes again, with the parents it created, if the run
    // fails.
    // An interrupt removes it too (it is made while the interrupt list is held).
    let mut created = CreatedDir::new(&c.out);
    let (_, created_guard) = crate::interrupt::track(
        || std::fs::create_dir_all(&c.out),
        |_| {
            created
                .top
                .iter()
                .map(|top| crate::interrupt::Item::Path(top.clone()))
                .collect()
        },
    )
    .with_context(|| format!("creating {}", c.out.display()))?;
    let out = c
        .out
        .canonicalize()
        .with_context(|| format!("resolving {}", c.out.display()))?;
    // Every write and removal below DIR goes through this handle: none follows a link.
    let tree = beneath::Beneath::open(&out)?;
    if let Some(b) = &c.bundle {
        let abs = std::path::absolute(b).unwrap_or_else(|_| b.clone());
        if abs.starts_with(&out) {
            bail!(
                "--bundle {} is inside the tree {}; put it elsewhere",
                b.display(),
                out.display()
            );
        }
    }

    let installed = state::read(&tree, &inventory, &c.reinstall, &c.disarm)?;
    tracing::debug!("manifest read: {:.3} s", started.elapsed().as_secs_f64());
    apply::remove_stale_temporaries(&out);
    let (staging, _staging_guard) = apply::staging_dir(&out)?;
    let mut b = Build::new(&last, staging.path());

    let layout = source::layout(inventory.os);
    let efi_from_source = match &source {
        Source::Iso(iso) => b.iso_files(iso, inventory.os, layout)?,
        Source::Netboot(nb) => b.netboot_files(nb, inventory.os, layout)?,
    };
    b.source_file("tftp/pxelinux.0", &syslinux.pxelinux, 0o644)?;
    b.source_file("tftp/ldlinux.c32", &syslinux.ldlinux, 0o644)?;
    b.source_file("http/hvseed-firstboot", &agent, 0o755)?;
    tracing::debug!("boot files: {:.3} s", started.elapsed().as_secs_f64());
    let efi_boot = match layout.uefi {
        PxeUefi::GrubLegacy { boot_file, .. } => efi_from_source.then_some(boot_file),
        PxeUefi::Grub2 if layout.uefi_media_loaders.is_some() => {
            efi_from_source.then_some(configs::MEDIA_SHIM)
        }
        PxeUefi::Grub2 => b.grub_efi_image()?.then_some("grubx64.efi"),
        PxeUefi::DebianNetboot { .. } => efi_from_source.then_some(configs::DI_NETBOOT_SHIM),
    };

    // A network install cannot read the CD: hosts that install from `cdrom` get the
    // ISO's package tree over HTTP instead.
    let mut inv = inventory;
    let wants_tree = inv
        .hosts
        .iter()
        .any(|h| h.install.source == InstallSource::Cdrom);
    for h in &mut inv.hosts {
        if h.install.source == InstallSource::Cdrom {
            h.install.source = InstallSource::Url(format!("{base}/os").into());
        }
    }
    // The package tree is extracted to the staging directory now and moved into place
    // only once every check passed.
    let os_tree = if wants_tree {
        let Source::Iso(iso) = &source else {
            // (The inventory refuses `cdrom` for such targets.)
            bail!(
                "{} hosts install from a mirror (install.source), not from the CD",
                target.title
            );
        };
        let t = build::package_tree(iso, layout, &tree, staging.path(), old.os_tree.is_some())?;
        b.new.os_tree = Some(iso.identity.clone());
        t
    } else {
        let ours = old.os_tree.is_some()
            && tree
                .open_file(&format!("{OS_DIR}/{}", build::OS_STAMP))?
                .is_some();
        PackageTree {
            sums: BTreeMap::new(),
            change: ours.then_some(OsMove::Remove),
        }
    };

    tracing::debug!("package tree: {:.3} s", started.elapsed().as_secs_f64());
    b.hosts(
        &inv,
        &base,
        c.templates.as_deref(),
        layout,
        efi_boot,
        &installed.now,
    )?;
    tracing::debug!("hosts rendered: {:.3} s", started.elapsed().as_secs_f64());
    let Build {
        mut new, desired, ..
    } = b;
    let desired = build::finish(desired, &inv, efi_boot, &out.join("tftp"), &os_tree.sums)?;
    tracing::debug!("configs and sums: {:.3} s", started.elapsed().as_secs_f64());

    let absent = apply::check_foreign(&tree, old, &desired)?;
    tracing::debug!("foreign check: {:.3} s", started.elapsed().as_secs_f64());
    let modes: Vec<(String, u32)> = match c.bundle {
        Some(_) => desired.iter().map(|e| (e.path.clone(), e.mode)).collect(),
        None => Vec::new(),
    };
    let intent = apply::save_intent(&out, old, &desired, new.os_tree.as_ref())?;
    if let Some(change) = os_tree.change {
        change.apply(&tree, OS_DIR, staging.path())?;
    }
    let applied = apply::apply(&tree, old, &last.stale, desired, &absent)?;
    installed.record(&tree)?;
    tracing::debug!("tree written: {:.3} s", started.elapsed().as_secs_f64());
    new.files = applied.files;
    new.save(&out, intent.as_ref().unwrap_or(old))?;
    tracing::debug!("manifest written: {:.3} s", started.elapsed().as_secs_f64());
    drop(staging);

    let changes = applied.changes;
    for p in &changes.added {
        tracing::debug!("added {p}");
    }
    for p in &changes.updated {
        tracing::debug!("updated {p}");
    }
    for p in &changes.removed {
        tracing::debug!("removed {p}");
    }
    tracing::info!(
        "{}: {} host(s): {} file(s) added, {} updated, {} removed, {} unchanged ({:.2} s)",
        out.display(),
        inv.hosts.len(),
        changes.added.len(),
        changes.updated.len(),
        changes.removed.len(),
        changes.unchanged,
        started.elapsed().as_secs_f64()
    );
    if let Some(bundle_path) = &c.bundle {
        let mut all = modes;
        for p in os_tree.sums.keys() {
            all.push((format!("{OS_DIR}/{p}"), 0o644));
        }
        bundle::write(&tree, &all, bundle_path)?;
        tracing::info!("wrote {}", bundle_path.display());
    }
    created.keep();
    drop(created_guard);
    Ok(ExitCode::SUCCESS)
}

/// The outermost directory of a path that `create_dir_all` is about to create; removed
/// (with all in it, which this run made) when dropped before [`CreatedDir::keep`].
struct CreatedDir {
    top: Option<PathBuf>,
}

impl CreatedDir {
    fn new(path: &Path) -> CreatedDir {
        let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let mut top = None;
        let mut p = Some(abs.as_path());
        while let Some(d) = p {
            if std::fs::symlink_metadata(d).is_ok() {
                break;
            }
            top = Some(d.to_path_buf());
            p = d.parent();
        }
        CreatedDir { top }
    }

    fn keep(&mut self) {
        self.top = None;
    }
}

impl Drop for CreatedDir {
    fn drop(&mut self) {
        if let Some(top) = self.top.take() {
            if let Err(e) = std::fs::remove_dir_all(&top) {
                tracing::warn!("removing {}, which this run created: {e}", top.display());
            }
        }
    }
}
