//! `hvseed pxe`: inventory + install ISO → a PXE/HTTP tree that installs each host by
//! MAC (DIR/tftp, DIR/http, DIR/dnsmasq.conf, DIR/SHA256SUMS), rewritten incrementally:
//! a re-run touches only files whose content changes and removes those of hosts that
//! left the inventory.
//!
//! Layout of DIR:
//! - `tftp/`: `pxelinux.0`, `ldlinux.c32`, `pxelinux.cfg/{default,01-<mac>}`, the
//!   installer kernel and initrd (`centos6/` or `ubuntu1204/`), and the UEFI side:
//!   GRUB 2 `grubx64.efi` + `grub/grub.cfg{,-01-<mac>}` (Ubuntu) or the ISO's
//!   grub-legacy `BOOTX64.efi` + `efidefault` + `01-<MAC>` (CentOS 6).
//! - `http/`: `hosts/<fqdn>/…` as `hvseed render` lays them out, `hvseed-firstboot`,
//!   and `os/`, the ISO's package tree, when a host installs from `cdrom`.

pub mod beneath;
mod bundle;
mod configs;
mod source;
mod syslinux;
mod tree;

pub use configs::{installed_marker, local_boot_files, mac_file_name, serial_line, PXE_STATE_DIR};
pub use syslinux::banner_version;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::http_base::HttpBase;
use crate::inventory::{InstallSource, Inventory, Os};
use crate::render::{Media, RenderOptions};
use source::Iso;
use tree::{Desired, Manifest, Want};

/// Refuses a `--out` tree or `--bundle` that is, holds or lies inside anything this
/// run reads (see [`crate::overlap`]), before anything is created.
fn check_overlap(c: &Options, agent: &Path, syslinux: &syslinux::Syslinux) -> Result<()> {
    crate::overlap::Paths::new()
        .input("inventory", Some(&c.inventory))
        .input("--source ISO", Some(&c.source))
        .input("first-boot agent", Some(agent))
        .input("pxelinux.0", Some(&syslinux.pxelinux))
        .input("ldlinux.c32", Some(&syslinux.ldlinux))
        .input("--templates", c.templates.as_deref())
        .output("--out", Some(&c.out))
        .output("--bundle", c.bundle.as_deref())
        .check()
}

/// Where the package tree goes under http/ and its stamp file.
const OS_DIR: &str = "http/os";
const OS_STAMP: &str = ".hvseed-stamp.json";

/// The staging directory in DIR (then the owner tag). It exists for the whole time a
/// run writes DIR, so one left behind by a run that no longer exists says that run
/// was killed and may also have left `.hvseed-tmp-*` files in the tree.
const STAGING_BASE: &str = ".hvseed-staging-";

/// Removes the temporaries a killed run of hvseed (SIGKILL, a power cut) left in
/// `out`: its staging directory and, if there was one, its `.hvseed-tmp-*` files
/// anywhere in the tree. A user's files and a running hvseed's are kept.
fn remove_stale_temporaries(out: &Path) {
    let stale = crate::interrupt::remove_stale(out, STAGING_BASE, "");
    // The manifest is written with `.hvseed-tmp-` files in DIR itself, also outside
    // the staging directory's lifetime.
    crate::interrupt::remove_stale(out, tree::TMP_BASE, "");
    if stale.is_empty() {
        return;
    }
    let dirs = walkdir::WalkDir::new(out)
        .min_depth(1)
        .into_iter()
        .filter_entry(|e| e.file_type().is_dir())
        .filter_map(|e| e.ok());
    for d in dirs {
        crate::interrupt::remove_stale(d.path(), tree::TMP_BASE, "");
    }
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
    let manifest = {
        let out = c.out.clone();
        std::thread::spawn(move || -> Result<(Manifest, HashSet<String>)> {
            if out.is_dir() {
                let m = Manifest::load(&out)?;
                let stale = m.stale_files(&out);
                Ok((m, stale))
            } else {
                Ok((Manifest::empty(), Default::default()))
            }
        })
    };
    let inventory = crate::inventory::load_valid(&c.inventory)?;
    tracing::debug!("inventory loaded: {:.3} s", started.elapsed().as_secs_f64());
    let base = c.http_base.clone();
    let (old, stale): (Manifest, HashSet<String>) = manifest
        .join()
        .map_err(|_| anyhow::anyhow!("reading the manifest panicked"))??;
    if !stale.is_empty() {
        tracing::debug!(
            "{} file(s) changed or removed since the last run",
            stale.len()
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
    let iso = Iso::open(&c.source)?;
    if c.out.exists() && !c.out.is_dir() {
        bail!("--out {} exists and is not a directory", c.out.display());
    }
    // Every check that can refuse runs before anything is created or changed: the
    // ISO's flavour first (unless its files in the tree came from this very ISO),
    // checked in a scratch directory outside the tree.
    let iso_identity = format!("{} os={}", iso.identity, inventory.os);
    if old.iso.as_ref().is_none_or(|r| r.identity != iso_identity) {
        let scratch = tempfile::tempdir().context("creating a scratch directory")?;
        iso.check_flavour(inventory.os, scratch.path())?;
    }
    // A --out this run creates goes again, with the parents it created, if the run
    // fails.
    // An interrupt removes it too (it is made while the interrupt list is held).
    let mut created = CreatedDir::new(&c.out);
    let (_, created_guard) = crate::interrupt::track(
        || std::fs::create_dir_all(&c.out),
        |_| {
            created
                .0
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

    let installed = pxe_state(&tree, &inventory, &c.reinstall, &c.disarm)?;
    tracing::debug!("manifest read: {:.3} s", started.elapsed().as_secs_f64());
    remove_stale_temporaries(&out);
    let (staging, _staging_guard) = crate::interrupt::track(
        || {
            tempfile::Builder::new()
                .prefix(&crate::interrupt::temp_prefix(STAGING_BASE))
                .tempdir_in(&out)
        },
        |t| vec![crate::interrupt::Item::Path(t.path().to_path_buf())],
    )
    .with_context(|| format!("creating a staging directory in {}", out.display()))?;
    let mut b = Build {
        old: &old,
        stale: &stale,
        new: Manifest::empty(),
        desired: Desired::default(),
        staging: staging.path(),
    };

    let layout = source::layout(inventory.os);
    let efi_from_iso = b.iso_files(&iso, inventory.os, &layout)?;
    b.source_file("tftp/pxelinux.0", &syslinux.pxelinux, 0o644)?;
    b.source_file("tftp/ldlinux.c32", &syslinux.ldlinux, 0o644)?;
    b.source_file("http/hvseed-firstboot", &agent, 0o755)?;
    tracing::debug!("boot files: {:.3} s", started.elapsed().as_secs_f64());
    let efi_boot = match inventory.os {
        Os::Centos6 => efi_from_iso.then_some("BOOTX64.efi"),
        Os::Ubuntu1204 => b.grub_efi_image()?.then_some("grubx64.efi"),
        // debian12: builder side pending
        Os::Debian12 => bail!("os: debian12 has no installer files in this hvseed yet; install with centos6 or ubuntu1204"),
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
    let (os_sums, os_move) = if wants_tree {
        let (sums, pending) =
            package_tree(&iso, &layout, &tree, staging.path(), old.os_tree.is_some())?;
        b.new.os_tree = Some(iso.identity.clone());
        (sums, pending.map(OsMove::Install))
    } else {
        let ours =
            old.os_tree.is_some() && tree.open_file(&format!("{OS_DIR}/{OS_STAMP}"))?.is_some();
        (BTreeMap::new(), ours.then_some(OsMove::Remove))
    };

    tracing::debug!("package tree: {:.3} s", started.elapsed().as_secs_f64());
    b.hosts(
        &inv,
        &base,
        c.templates.as_deref(),
        &layout,
        efi_boot,
        &installed.now,
    )?;
    tracing::debug!("hosts rendered: {:.3} s", started.elapsed().as_secs_f64());
    // The fleet-wide files (one line per host each) are made on another core while
    // the tree's list is sorted.
    let Build {
        mut new, desired, ..
    } = b;
    let tftp_root = out.join("tftp");
    let (fleet, desired) = std::thread::scope(|s| {
        let fleet = s.spawn(|| -> Result<Vec<(&str, String)>> {
            let mut files = vec![("tftp/pxelinux.cfg/default", configs::pxelinux_default(&inv))];
            match (inv.os, efi_boot.is_some()) {
                (Os::Ubuntu1204, true) => {
                    files.push(("tftp/grub/grub.cfg", configs::grub2_default(&inv)))
                }
                (Os::Centos6, true) => {
                    files.push(("tftp/efidefault", configs::grub_legacy_default(&inv)))
                }
                _ => {}
            }
            let efi = efi_boot.map(|file| configs::EfiBoot { file });
            files.push(("dnsmasq.conf", configs::dnsmasq(&inv, &tftp_root, efi)?));
            Ok(files)
        });
        let desired = desired.into_sorted();
        (
            fleet.join().expect("the fleet files' thread panicked"),
            desired,
        )
    });
    let mut desired = desired;
    for (path, text) in fleet? {
        tree::insert_sorted(&mut desired, path, text.into_bytes());
    }
    let mut sums: Vec<(Cow<str>, tree::Digest)> = desired
        .iter()
        .map(|(p, e)| (Cow::Borrowed(p.as_str()), e.sha256))
        .collect();
    for (p, s) in &os_sums {
        sums.push((Cow::Owned(format!("{OS_DIR}/{p}")), *s));
    }
    let sums = tree::sha256sums(sums);
    tree::insert_sorted(&mut desired, "SHA256SUMS", sums);
    tracing::debug!("configs and sums: {:.3} s", started.elapsed().as_secs_f64());

    let absent = tree::check_foreign(&tree, &old, &desired)?;
    tracing::debug!("foreign check: {:.3} s", started.elapsed().as_secs_f64());
    let modes: Vec<(String, u32)> = match c.bundle {
        Some(_) => desired.iter().map(|(p, e)| (p.clone(), e.mode)).collect(),
        None => Vec::new(),
    };
    // Before writing, list every path this run may create, so that an interrupted run
    // leaves nothing the next run would take for a user's file. (Kept files are in the
    // manifest already.)
    let mut intent = None;
    if desired
        .iter()
        .any(|(p, e)| !matches!(e.want, Want::Keep(_)) && !old.files.contains_key(p))
    {
        let mut m = Manifest {
            format: tree::FORMAT,
            ..old.clone()
        };
        for (p, _) in &desired {
            m.files
                .entry(p.clone())
                .or_insert(tree::FileRecord::PENDING);
        }
        m.os_tree = m.os_tree.or(new.os_tree.clone());
        m.save(&out, &old)?;
        intent = Some(m);
    }
    match os_move {
        Some(OsMove::Install(new)) => install_package_tree(&tree, &new, staging.path())?,
        Some(OsMove::Remove) => remove_package_tree(&tree, staging.path())?,
        None => {}
    }
    let (files, changes) = tree::apply(&tree, &old, &stale, desired, &absent)?;
    installed.record(&tree)?;
    tracing::debug!("tree written: {:.3} s", started.elapsed().as_secs_f64());
    new.files = files;
    new.save(&out, intent.as_ref().unwrap_or(&old))?;
    tracing::debug!("manifest written: {:.3} s", started.elapsed().as_secs_f64());
    drop(staging);

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
        for p in os_sums.keys() {
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
struct CreatedDir(Option<PathBuf>);

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
        CreatedDir(top)
    }

    fn keep(&mut self) {
        self.0 = None;
    }
}

impl Drop for CreatedDir {
    fn drop(&mut self) {
        if let Some(top) = self.0.take() {
            if let Err(e) = std::fs::remove_dir_all(&top) {
                tracing::warn!("removing {}, which this run created: {e}", top.display());
            }
        }
    }
}

/// What happens to http/os once every check passed.
enum OsMove {
    /// The new package tree, extracted in the staging directory, goes in.
    Install(PathBuf),
    /// No host installs from the CD any more: hvseed's package tree goes.
    Remove,
}

/// One run's work in progress.
struct Build<'a> {
    old: &'a Manifest,
    /// Files of `old` that are no longer as written.
    stale: &'a HashSet<String>,
    new: Manifest,
    desired: Desired,
    staging: &'a Path,
}

impl Build<'_> {
    /// True when the last run wrote `path` and it is still as written (the manifest
    /// thread looked at every listed file once).
    fn unchanged_on_disk(&self, path: &str) -> bool {
        self.old.files.contains_key(path) && !self.stale.contains(path)
    }

    /// A copy of a local file; its hash is reused while its size and mtime stay.
    fn source_file(&mut self, path: &str, src: &Path, mode: u32) -> Result<()> {
        let m = std::fs::metadata(src).with_context(|| format!("reading {}", src.display()))?;
        let key = src.to_string_lossy().into_owned();
        let sha = match self.old.sources.get(&key) {
            Some(r)
                if r.size == m.len() && r.mtime == m.mtime() && r.mtime_nsec == m.mtime_nsec() =>
            {
                r.sha256
            }
            _ => tree::sha256_file(src)?,
        };
        self.new.sources.insert(
            key,
            tree::SourceRecord {
                size: m.len(),
                mtime: m.mtime(),
                mtime_nsec: m.mtime_nsec(),
                sha256: sha,
            },
        );
        self.desired
            .insert(path, Want::Copy(src.to_path_buf()), sha, mode);
        Ok(())
    }

    /// The installer kernel and initrd (and CentOS's grub-legacy EFI loader) from the
    /// ISO, extracted again only when the ISO or the files on disk changed. Returns
    /// whether the tree has the CentOS EFI loader.
    fn iso_files(&mut self, iso: &Iso, os: Os, layout: &source::Layout) -> Result<bool> {
        let identity = format!("{} os={os}", iso.identity);
        if let Some(r) = &self.old.iso {
            let expected_ok = r.files.iter().any(|f| f == layout.tftp_kernel)
                && r.files.iter().any(|f| f == layout.tftp_initrd);
            if r.identity == identity
                && expected_ok
                && r.files.iter().all(|f| self.unchanged_on_disk(f))
            {
                for f in &r.files {
                    let rec = self.old.files[f];
                    self.desired
                        .insert(f.clone(), Want::Keep(rec), rec.sha256, 0o644);
                }
                self.new.iso = Some(r.clone());
                return Ok(r.files.iter().any(|f| f == "tftp/BOOTX64.efi"));
            }
        }
        // (The ISO's flavour was checked before anything was created.)
        let kernel = self.staging.join("kernel");
        let initrd = self.staging.join("initrd");
        let missing = iso.missing(&[layout.kernel, layout.initrd])?;
        if !missing.is_empty() {
            bail!(
                "{}: the installer kernel and initrd for PXE ({}) are not on this ISO; give \
                 the full {os} install ISO",
                iso.path.display(),
                missing.join(" and ")
            );
        }
        // A failure here is xorriso's own (a full disk, a damaged image): its message
        // is the error.
        iso.extract(&[(layout.kernel, &kernel), (layout.initrd, &initrd)])
            .context("extracting the installer kernel and initrd")?;
        let mut files = vec![
            layout.tftp_kernel.to_string(),
            layout.tftp_initrd.to_string(),
        ];
        self.desired.insert(
            layout.tftp_kernel,
            Want::Move(kernel.clone()),
            tree::sha256_file(&kernel)?,
            0o644,
        );
        self.desired.insert(
            layout.tftp_initrd,
            Want::Move(initrd.clone()),
            tree::sha256_file(&initrd)?,
            0o644,
        );
        let mut efi = false;
        if os == Os::Centos6 {
            let loader = self.staging.join("BOOTX64.efi");
            if iso.missing(&[source::CENTOS6_EFI_LOADER])?.is_empty() {
                iso.extract(&[(source::CENTOS6_EFI_LOADER, &loader)])
                    .context("extracting the EFI loader")?;
                self.desired.insert(
                    "tftp/BOOTX64.efi",
                    Want::Move(loader.clone()),
                    tree::sha256_file(&loader)?,
                    0o644,
                );
                files.push("tftp/BOOTX64.efi".into());
                efi = true;
            } else {
                tracing::warn!(
                    "{}: no {} on this ISO (CentOS 6.2 and older have none): the tree \
                     boots BIOS machines only",
                    iso.path.display(),
                    source::CENTOS6_EFI_LOADER
                );
            }
        }
        self.new.iso = Some(tree::IsoRecord { identity, files });
        Ok(efi)
    }

    /// GRUB 2's EFI image for UEFI PXE (Ubuntu), built with the build host's
    /// `grub-mkimage` (Ubuntu 12.04's GRUB 1.99 has no per-MAC config lookup; the
    /// lookup hvseed relies on is in GRUB ≥ 2.04). Its prefix `/grub` on the TFTP
    /// device it was loaded from makes GRUB look for `grub/grub.cfg-01-<mac>`.
    /// Missing GRUB → a warning and a BIOS-only tree.
    fn grub_efi_image(&mut self) -> Result<bool> {
        const PATH: &str = "tftp/grubx64.efi";
        let dir = Path::new("/usr/lib/grub/x86_64-efi");
        const MODULES: &[&str] = &[
            "efinet",
            "tftp",
            "net",
            "normal",
            "configfile",
            "linux",
            "echo",
            "sleep",
            "all_video",
            "gzio",
            "serial",
            "terminal",
            "test",
        ];
        let stamp = dir.join("normal.mod");
        let meta = std::fs::metadata(&stamp);
        let key = meta.as_ref().ok().map(|m| {
            format!(
                "{} size={} mtime={}.{} modules={}",
                stamp.display(),
                m.len(),
                m.mtime(),
                m.mtime_nsec(),
                MODULES.join(",")
            )
        });
        // The image of the last run, from the same modules and still as written: kept
        // (without asking for grub-mkimage, which only a rebuild needs).
        if let Some(key) = key
            .as_ref()
            .filter(|k| self.old.derived.get(PATH) == Some(*k))
        {
            if self.unchanged_on_disk(PATH) {
                let rec = self.old.files[PATH];
                self.desired
                    .insert(PATH, Want::Keep(rec), rec.sha256, 0o644);
                self.new.derived.insert(PATH.into(), key.clone());
                return Ok(true);
            }
        }
        let (Some(key), true) = (
            key,
            crate::tool::Tool::new("grub-mkimage")
                .arg("--version")
                .run()
                .is_ok(),
        ) else {
            tracing::warn!(
                "no GRUB 2 EFI modules ({}) or grub-mkimage on this machine (Debian: \
                 apt-get install grub-efi-amd64-bin grub-common): the tree boots BIOS \
                 machines only",
                dir.display()
            );
            return Ok(false);
        };
        let img = self.staging.join("grubx64.efi");
        crate::tool::Tool::new("grub-mkimage")
            .args(["-O", "x86_64-efi", "-p", "/grub", "-d"])
            .arg(dir)
            .arg("-o")
            .arg(&img)
            .args(MODULES.iter().copied())
            .run()
            .context("building the GRUB EFI image for UEFI PXE")?;
        let sha = tree::sha256_file(&img)?;
        self.desired.insert(PATH, Want::Move(img), sha, 0o644);
        self.new.derived.insert(PATH.into(), key);
        Ok(true)
    }

    /// Every host's files — kickstart/preseed, plan and keys under http/hosts/ and its
    /// boot loader files under tftp/ — made only for hosts whose inputs changed since
    /// the last run; an unchanged host's files are kept as they are on disk.
    fn hosts(
        &mut self,
        inv: &Inventory,
        http_base: &HttpBase,
        templates: Option<&Path>,
        layout: &source::Layout,
        efi_boot: Option<&str>,
        installed: &HashSet<String>,
    ) -> Result<()> {
        let t0 = std::time::Instant::now();
        let base = http_base.as_str();
        let global = global_key(inv, base, templates, efi_boot)?;
        // Per host: the key of its inputs, and its files from the last run if they can
        // stay (same key, every file on disk as written): a hash and a few `stat`s a
        // host, spread over the cores.
        let (old, stale) = (self.old, self.stale);
        let (os, efi) = (inv.os, efi_boot.is_some());
        let checked = crate::par::par_map(&inv.hosts, HOSTS_PER_THREAD, |h| {
            let key = tree::sha256_of(&(global, h, installed.contains(&h.fqdn)));
            let kept = old
                .hosts
                .get(&h.fqdn)
                .filter(|r| r.key == key && r.count > 0)
                .and_then(|r| {
                    let files = recorded_host_files(old, h, os, efi)?;
                    (files.len() == r.count && files.iter().all(|(p, _)| !stale.contains(*p)))
                        .then_some(files)
                })
                .map(|files| {
                    files
                        .into_iter()
                        .map(|(p, r)| {
                            let e = tree::Entry {
                                want: Want::Keep(*r),
                                sha256: r.sha256,
                                mode: 0o644,
                            };
                            (p.to_string(), e)
                        })
                        .collect::<Vec<_>>()
                });
            (key, kept)
        });
        tracing::debug!(
            "host keys and files checked: {:.3} s",
            t0.elapsed().as_secs_f64()
        );
        let mut to_render = Vec::new();
        for (h, (key, kept)) in inv.hosts.iter().zip(checked) {
            let count = match kept {
                Some(files) => {
                    let n = files.len();
                    self.desired.entries.extend(files);
                    n
                }
                None => {
                    to_render.push(h);
                    0
                }
            };
            self.new
                .hosts
                .insert(h.fqdn.clone(), tree::HostRecord { key, count });
        }
        if to_render.is_empty() {
            return Ok(());
        }
        tracing::debug!(
            "{} host(s) kept, rendering {}: {:.3} s",
            inv.hosts.len() - to_render.len(),
            to_render.len(),
            t0.elapsed().as_secs_f64()
        );
        let opts = RenderOptions {
            templates: templates.map(Path::to_path_buf),
            media: Media::Http {
                base: http_base.clone(),
            },
        };
        // Hosts render independently of each other: one part of them per core.
        let rendered = crate::par::par_chunks(&to_render, HOSTS_PER_THREAD, |_, part| {
            host_files(inv, part, &opts, base, layout, efi_boot, installed)
        })
        .into_iter()
        .collect::<Result<Vec<_>>>()?;
        for (fqdn, files) in rendered.into_iter().flatten() {
            let r = self
                .new
                .hosts
                .get_mut(&fqdn)
                .expect("every rendered host was recorded above");
            for (path, bytes) in files {
                r.count += 1;
                self.desired.bytes(path, bytes);
            }
        }
        Ok(())
    }
}

/// The files the manifest records for `h` (those under `http/hosts/<fqdn>/` and its
/// boot loader files by MAC), or `None` when one of its boot files is not recorded.
/// The caller compares the number with what the host's record says it had.
fn recorded_host_files<'m>(
    old: &'m Manifest,
    h: &crate::inventory::Host,
    os: Os,
    efi: bool,
) -> Option<Vec<(&'m str, &'m tree::FileRecord)>> {
    use std::ops::Bound;
    let prefix = format!("http/hosts/{}/", h.fqdn);
    let mut files: Vec<(&str, &tree::FileRecord)> = old
        .files
        .range::<str, _>((Bound::Included(prefix.as_str()), Bound::Unbounded))
        .take_while(|(p, _)| p.starts_with(&prefix))
        .map(|(p, r)| (p.as_str(), r))
        .collect();
    for p in configs::host_boot_paths(os, efi, &h.mac) {
        let (p, r) = old.files.get_key_value(p.as_str())?;
        files.push((p.as_str(), r));
    }
    Some(files)
}

/// Per host (FQDN): its files as (tree path, content).
type HostFiles = Vec<(String, Vec<(String, Vec<u8>)>)>;

/// The files of `hosts` (a part of `inv`'s hosts) by host: http/hosts/<fqdn>/... as
/// `hvseed render` makes them for HTTP media, and the host's boot loader files.
fn host_files(
    inv: &Inventory,
    hosts: &[&crate::inventory::Host],
    opts: &RenderOptions,
    base: &str,
    layout: &source::Layout,
    efi_boot: Option<&str>,
    installed: &HashSet<String>,
) -> Result<HostFiles> {
    let sub = Inventory {
        path: inv.path.clone(),
        version: inv.version,
        cluster: inv.cluster.clone(),
        os: inv.os,
        hosts: hosts.iter().map(|h| (*h).clone()).collect(),
    };
    let mut by_host: BTreeMap<String, Vec<(String, Vec<u8>)>> = BTreeMap::new();
    let rendered = crate::render::render_host_files(&sub, opts)
        .with_context(|| format!("rendering {}", inv.path.display()))?;
    for (rel, bytes) in rendered {
        let Some(rest) = rel.strip_prefix("hosts/") else {
            continue;
        };
        let fqdn = rest.split('/').next().unwrap_or_default().to_string();
        by_host
            .entry(fqdn)
            .or_default()
            .push((format!("http/{rel}"), bytes));
    }
    for h in &sub.hosts {
        let args = configs::installer_args(inv, h, base)?;
        let files = by_host.entry(h.fqdn.clone()).or_default();
        if installed.contains(&h.fqdn) {
            // Installed: the host's entries boot its local disk.
            let serial = configs::host_serial(h);
            let local = configs::local_boot_files(&h.fqdn, &h.mac, serial.as_deref());
            for p in configs::host_boot_paths(inv.os, efi_boot.is_some(), &h.mac) {
                let (_, text) = local
                    .iter()
                    .find(|(lp, _)| *lp == p)
                    .expect("a local version of every boot file");
                files.push((p, text.clone().into_bytes()));
            }
            continue;
        }
        files.push((
            configs::pxelinux_path(&h.mac),
            configs::pxelinux_host(inv, h, layout, &args).into_bytes(),
        ));
        match (inv.os, efi_boot.is_some()) {
            (Os::Ubuntu1204, true) => files.push((
                configs::grub2_path(&h.mac),
                configs::grub2_host(inv, h, layout, &args).into_bytes(),
            )),
            (Os::Centos6, true) => files.push((
                configs::grub_legacy_path(&h.mac),
                configs::grub_legacy_host(inv, h, layout, &args).into_bytes(),
            )),
            _ => {}
        }
    }
    Ok(by_host.into_iter().collect())
}

/// Which hosts are installed ("PXE just once", see [`configs::PXE_STATE_DIR`]): as the
/// tree records it, and as it is to be after this run's `--reinstall`/`--disarm`.
struct PxeState {
    /// Installed after this run.
    now: HashSet<String>,
    /// Markers to write (`--disarm`, by FQDN with the MAC) and to remove
    /// (`--reinstall`, a marker of another MAC, hosts that left the inventory) once
    /// the tree is written.
    disarm: Vec<(String, String)>,
    rearm: Vec<String>,
}

/// Reads the hosts' PXE state and applies `--reinstall` / `--disarm` (FQDNs of the
/// inventory's hosts, or `all`).
fn pxe_state(
    tree: &beneath::Beneath,
    inv: &Inventory,
    reinstall: &[String],
    disarm: &[String],
) -> Result<PxeState> {
    let names: HashSet<&str> = inv.hosts.iter().map(|h| h.fqdn.as_str()).collect();
    let pick = |flag: &str, given: &[String]| -> Result<HashSet<String>> {
        let mut out = HashSet::new();
        for g in given {
            if g == "all" {
                out.extend(names.iter().map(|n| n.to_string()));
            } else if names.contains(g.as_str()) {
                out.insert(g.clone());
            } else {
                bail!(
                    "--{flag} {g:?}: no host of {} has that fqdn; give a host's fqdn or `all`",
                    inv.path.display()
                );
            }
        }
        Ok(out)
    };
    let rearm = pick("reinstall", reinstall)?;
    let disarm = pick("disarm", disarm)?;
    if let Some(both) = rearm.intersection(&disarm).next() {
        bail!("{both} is given to both --reinstall and --disarm; give it to one of them");
    }
    // The markers there are (one listing, not a look-up per host).
    let mut markers = HashSet::new();
    if tree.dir(configs::PXE_STATE_DIR, false)?.is_some() {
        let dir = tree.show(configs::PXE_STATE_DIR);
        for e in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let name = e?.file_name();
            if let Some(fqdn) = name.to_str().and_then(|n| n.strip_suffix(".installed")) {
                markers.insert(fqdn.to_string());
            }
        }
    }
    // A marker counts for the machine it was written for: a host whose MAC changed
    // (new hardware under the same name) is installed again.
    let mut now = HashSet::new();
    let mut stale = Vec::new();
    for h in inv.hosts.iter().filter(|h| markers.contains(&h.fqdn)) {
        let Some(bytes) = tree.read(&configs::installed_marker(&h.fqdn))? else {
            continue;
        };
        let mac = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v["mac"].as_str().map(mac_file_name));
        if mac == Some(mac_file_name(&h.mac)) {
            now.insert(h.fqdn.clone());
        } else {
            tracing::info!(
                "{}: installed with another MAC: its PXE entry is armed again",
                h.fqdn
            );
            stale.push(h.fqdn.clone());
        }
    }
    // Markers of hosts that left the inventory go.
    stale.extend(markers.into_iter().filter(|m| !names.contains(m.as_str())));
    let mut rearm: Vec<String> = rearm.into_iter().filter(|h| now.contains(h)).collect();
    let disarm: Vec<String> = disarm.into_iter().filter(|h| !now.contains(h)).collect();
    for h in &rearm {
        now.remove(h);
        tracing::info!("{h}: PXE entry armed: its next PXE boot installs it");
    }
    for h in &disarm {
        now.insert(h.clone());
        tracing::info!("{h}: PXE entry disarmed: it boots from its local disk");
    }
    rearm.extend(stale);
    let macs: BTreeMap<&str, &str> = inv
        .hosts
        .iter()
        .map(|h| (h.fqdn.as_str(), h.mac.as_str()))
        .collect();
    let disarm = disarm
        .into_iter()
        .map(|h| {
            let mac = macs[h.as_str()].to_string();
            (h, mac)
        })
        .collect();
    Ok(PxeState { now, disarm, rearm })
}

impl PxeState {
    /// Writes the state this run changed.
    fn record(&self, tree: &beneath::Beneath) -> Result<()> {
        for h in &self.rearm {
            tree.remove_file(&configs::installed_marker(h))?;
        }
        for (h, mac) in &self.disarm {
            let text = serde_json::json!({
                "at": std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
                "by": "hvseed pxe --disarm",
                "mac": mac,
            });
            tree.write_atomic(
                &configs::installed_marker(h),
                format!("{text}\n").as_bytes(),
                0o644,
                true,
            )?;
        }
        Ok(())
    }
}

/// The fewest hosts a thread of bulk per-host work (checking, rendering) takes (see
/// [`crate::par`]).
const HOSTS_PER_THREAD: usize = 128;

/// What every host's files depend on besides the host itself: the cluster, the URL,
/// the UEFI loader, the templates, and this hvseed (its templates are compiled in).
fn global_key(
    inv: &Inventory,
    base: &str,
    templates: Option<&Path>,
    efi_boot: Option<&str>,
) -> Result<tree::Digest> {
    let mut s = format!(
        "hvseed {}\ncluster {}\nos {}\nbase {base}\nefi {efi_boot:?}\n",
        env!("CARGO_PKG_VERSION"),
        inv.cluster,
        inv.os
    );
    if let Ok(exe) = std::env::current_exe() {
        if let Ok(m) = std::fs::metadata(&exe) {
            s.push_str(&format!(
                "exe {} {} {}.{}\n",
                exe.display(),
                m.len(),
                m.mtime(),
                m.mtime_nsec()
            ));
        }
    }
    if let Some(dir) = templates {
        let mut entries: Vec<PathBuf> = walkdir::WalkDir::new(dir)
            .into_iter()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_file())
            .map(|e| e.into_path())
            .collect();
        entries.sort();
        for p in entries {
            s.push_str(&format!(
                "template {} {}\n",
                p.display(),
                tree::sha256_file(&p)?
            ));
        }
    }
    Ok(tree::sha256_bytes(s.as_bytes()))
}

/// The stamp of an extracted package tree: the ISO it came from and every file's
/// SHA-256 (for SHA256SUMS without hashing gigabytes on each run).
#[derive(Debug, Serialize, Deserialize)]
struct OsStamp {
    identity: String,
    sums: BTreeMap<String, tree::Digest>,
}

/// The ISO's package tree under http/os, extracted once per ISO; returns its
/// files' SHA-256 by path relative to http/os, and the new tree extracted in the
/// staging directory when it has to replace http/os ([`install_package_tree`]).
fn package_tree(
    iso: &Iso,
    layout: &source::Layout,
    tree: &beneath::Beneath,
    staging: &Path,
    ours: bool,
) -> Result<(BTreeMap<String, tree::Digest>, Option<PathBuf>)> {
    let dest = tree.show(OS_DIR);
    let stamp_rel = format!("{OS_DIR}/{OS_STAMP}");
    // Read without following a link on the way: a linked http/os is refused here.
    let stamp_bytes = tree.read(&stamp_rel)?;
    if let Some(bytes) = &stamp_bytes {
        if let Ok(stamp) = serde_json::from_slice::<OsStamp>(bytes) {
            if stamp.identity == iso.identity {
                return Ok((stamp.sums, None));
            }
        }
    }
    if tree.lstat(OS_DIR)?.is_some() && !ours && stamp_bytes.is_none() {
        bail!(
            "{} exists and was not written by hvseed; move it away so that the ISO's \
             package tree can go there",
            dest.display()
        );
    }
    tracing::info!(
        "extracting the package tree of {} to {} (once per ISO)",
        iso.path.display(),
        dest.display()
    );
    let new = staging.join("os");
    crate::interrupt::create_dir_all(&new)?;
    let locals: Vec<PathBuf> = layout
        .tree_required
        .iter()
        .map(|p| new.join(p.trim_start_matches('/')))
        .collect();
    let pairs: Vec<(&str, &Path)> = layout
        .tree_required
        .iter()
        .copied()
        .zip(locals.iter().map(PathBuf::as_path))
        .collect();
    let missing = iso.missing(layout.tree_required)?;
    if !missing.is_empty() {
        bail!(
            "{}: no package tree ({} missing) on this ISO for a network install; give the \
             full DVD/server ISO or set install.source to a mirror URL",
            iso.path.display(),
            missing.join(", ")
        );
    }
    iso.extract(&pairs)
        .context("extracting the package tree for a network install")?;
    let absent = iso.missing(layout.tree_optional)?;
    for p in layout.tree_optional.iter().filter(|p| !absent.contains(p)) {
        let local = new.join(p.trim_start_matches('/'));
        if let Some(parent) = local.parent() {
            crate::interrupt::create_dir_all(parent)?;
        }
        iso.extract(&[(p, &local)])
            .context("extracting the package tree for a network install")?;
    }
    let mut sums = BTreeMap::new();
    for e in walkdir::WalkDir::new(&new).sort_by_file_name() {
        let e = e?;
        if e.file_type().is_file() {
            let rel = e
                .path()
                .strip_prefix(&new)
                .expect("under the staging dir")
                .to_string_lossy()
                .into_owned();
            sums.insert(rel, tree::sha256_file(e.path())?);
        }
    }
    let stamp = OsStamp {
        identity: iso.identity.clone(),
        sums,
    };
    tree::write_atomic(&new.join(OS_STAMP), &serde_json::to_vec(&stamp)?, 0o644)?;
    Ok((stamp.sums, Some(new)))
}

/// Moves a package tree [`package_tree`] extracted into http/os; the old tree goes to
/// the staging directory, which is removed at the end.
fn install_package_tree(tree: &beneath::Beneath, new: &Path, staging: &Path) -> Result<()> {
    let dest = tree.show(OS_DIR);
    // An interrupt waits until the new tree is in place (http/os is never missing).
    let _whole = crate::interrupt::critical();
    tree.move_out(OS_DIR, &staging.join("os-old"))
        .with_context(|| format!("moving the old {} away", dest.display()))?;
    tree.move_in(new, OS_DIR)
        .with_context(|| format!("moving the package tree to {}", dest.display()))
}

/// No host installs from the CD any more: the package tree hvseed extracted goes (moved
/// to the staging directory, removed with it without following a link).
fn remove_package_tree(tree: &beneath::Beneath, staging: &Path) -> Result<()> {
    tree.move_out(OS_DIR, &staging.join("os-gone"))?;
    Ok(())
}
