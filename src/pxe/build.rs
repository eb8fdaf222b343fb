//! Building the tree this run wants ([`Desired`]): the boot files from the ISO and
//! local sources, every host's files (rendered again only when its inputs changed),
//! the fleet-wide files, `SHA256SUMS`, and the package tree a network install of a
//! `cdrom` host reads, extracted once per ISO.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::apply::{Desired, Entry, OsMove, Sorted, Want};
use super::beneath::Beneath;
use super::configs;
use super::manifest::{FileRecord, HostRecord, IsoRecord, LastRun, Manifest, SourceRecord};
use super::source::{self, Iso};
use crate::http_base::HttpBase;
use crate::inventory::{Host, Inventory, Os};
use crate::render::{Media, RenderOptions};
use crate::sums::{sha256_bytes, sha256_file, Digest};
use crate::target::PxeUefi;

/// Where the package tree goes under http/ and its stamp file.
pub const OS_DIR: &str = "http/os";
pub const OS_STAMP: &str = ".hvseed-stamp.json";

/// One run's work in progress.
pub struct Build<'a> {
    old: &'a Manifest,
    /// Files of `old` that are no longer as written.
    stale: &'a HashSet<String>,
    /// The manifest this run writes (its file records come from [`super::apply`]).
    pub new: Manifest,
    pub desired: Desired,
    staging: &'a Path,
}

impl<'a> Build<'a> {
    /// A build against the tree as `last` left it, preparing large files in `staging`.
    pub fn new(last: &'a LastRun, staging: &'a Path) -> Build<'a> {
        Build {
            old: &last.manifest,
            stale: &last.stale,
            new: Manifest::empty(),
            desired: Desired::default(),
            staging,
        }
    }

    /// True when the last run wrote `path` and it is still as written (the manifest
    /// thread looked at every listed file once).
    fn unchanged_on_disk(&self, path: &str) -> bool {
        self.old.files.contains_key(path) && !self.stale.contains(path)
    }

    /// A copy of a local file; its hash is reused while its size and mtime stay.
    pub fn source_file(&mut self, path: &str, src: &Path, mode: u32) -> Result<()> {
        let m = std::fs::metadata(src).with_context(|| format!("reading {}", src.display()))?;
        let key = src.to_string_lossy().into_owned();
        let sha = match self.old.sources.get(&key) {
            Some(r)
                if r.size == m.len() && r.mtime == m.mtime() && r.mtime_nsec == m.mtime_nsec() =>
            {
                r.sha256
            }
            _ => sha256_file(src)?,
        };
        self.new.sources.insert(
            key,
            SourceRecord {
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

    /// The last run's installer files, kept as they are when they came from the same
    /// source (`identity`), include the layout's kernel and initrd and are unchanged on
    /// disk; then they are this run's record too, which is returned.
    fn keep_installer(&mut self, identity: &str, layout: &source::Layout) -> Option<&'a IsoRecord> {
        let old: &'a Manifest = self.old;
        let r = old.iso.as_ref()?;
        let expected_ok = r.files.iter().any(|f| f == layout.tftp_kernel)
            && r.files.iter().any(|f| f == layout.tftp_initrd);
        if r.identity != identity
            || !expected_ok
            || !r.files.iter().all(|f| self.unchanged_on_disk(f))
        {
            return None;
        }
        for f in &r.files {
            let rec = self.old.files[f];
            self.desired
                .insert(f.clone(), Want::Keep(rec), rec.sha256, 0o644);
        }
        self.new.iso = Some(r.clone());
        Some(r)
    }

    /// The installer kernel and initrd (and, for a target whose UEFI loader comes from
    /// the ISO, that loader) from the ISO, extracted again only when the ISO or the
    /// files on disk changed. Returns whether the tree has the ISO's EFI loader.
    pub fn iso_files(&mut self, iso: &Iso, os: Os, layout: &source::Layout) -> Result<bool> {
        let identity = format!("{} os={os}", iso.identity);
        // The ISO's UEFI loaders: (path in the ISO, file in tftp/), the first the
        // DHCP boot file; and what to say when the ISO lacks them.
        let (iso_loaders, missing_note): (Vec<(&str, &str)>, &str) =
            match (layout.uefi, layout.uefi_media_loaders) {
                (
                    PxeUefi::GrubLegacy {
                        loader,
                        boot_file,
                        missing_note,
                    },
                    _,
                ) => (vec![(loader, boot_file)], missing_note),
                (PxeUefi::Grub2, Some(m)) => (
                    vec![(m.shim, configs::MEDIA_SHIM), (m.grub, configs::MEDIA_GRUB)],
                    "a boot-only or otherwise cut-down image",
                ),
                (PxeUefi::Grub2 | PxeUefi::DebianNetboot { .. }, _) => (vec![], ""),
            };
        if let Some(r) = self.keep_installer(&identity, layout) {
            return Ok(iso_loaders
                .first()
                .is_some_and(|(_, file)| r.files.contains(&format!("tftp/{file}"))));
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
            sha256_file(&kernel)?,
            0o644,
        );
        self.desired.insert(
            layout.tftp_initrd,
            Want::Move(initrd.clone()),
            sha256_file(&initrd)?,
            0o644,
        );
        let mut efi = false;
        if !iso_loaders.is_empty() {
            let paths: Vec<&str> = iso_loaders.iter().map(|(p, _)| *p).collect();
            let absent = iso.missing(&paths)?;
            if absent.is_empty() {
                for (iso_path, boot_file) in &iso_loaders {
                    let loader = self.staging.join(boot_file);
                    let tree_path = format!("tftp/{boot_file}");
                    iso.extract(&[(iso_path, &loader)])
                        .context("extracting the EFI loader")?;
                    self.desired.insert(
                        tree_path.as_str(),
                        Want::Move(loader.clone()),
                        sha256_file(&loader)?,
                        0o644,
                    );
                    files.push(tree_path);
                }
                efi = true;
            } else {
                tracing::warn!(
                    "{}: no {} on this ISO ({missing_note}): the tree boots BIOS \
                     machines only",
                    iso.path.display(),
                    absent.join(" or "),
                );
            }
        }
        self.new.iso = Some(IsoRecord { identity, files });
        Ok(efi)
    }

    /// The installer kernel and initrd and d-i's signed UEFI network loaders (shim and
    /// GRUB, [`PxeUefi::DebianNetboot`]) from d-i's netboot files, taken again only when
    /// the source or the files on disk changed. Returns whether the tree has the UEFI
    /// loaders.
    pub fn netboot_files(
        &mut self,
        nb: &source::Netboot,
        os: Os,
        layout: &source::Layout,
    ) -> Result<bool> {
        let identity = format!("{} os={os}", nb.identity);
        let loaders = [
            (
                configs::DI_NETBOOT_SHIM,
                format!("tftp/{}", configs::DI_NETBOOT_SHIM),
            ),
            (
                configs::DI_NETBOOT_GRUB,
                format!("tftp/{}", configs::DI_NETBOOT_GRUB),
            ),
        ];
        if let Some(r) = self.keep_installer(&identity, layout) {
            return Ok(loaders.iter().all(|(_, p)| r.files.contains(p)));
        }
        let dir = self.staging.join("netboot");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let kernel = layout.kernel.trim_start_matches('/');
        let initrd = layout.initrd.trim_start_matches('/');
        let got = nb
            .extract(&[kernel, initrd, loaders[0].0, loaders[1].0], &dir)
            .context("taking the installer from the netboot files")?;
        let missing: Vec<&str> = [kernel, initrd]
            .into_iter()
            .filter(|f| !got.contains(f))
            .collect();
        if !missing.is_empty() {
            bail!(
                "{}: the netboot files lack {}; give d-i's whole netboot tree \
                 (netboot.tar.gz or the debian-installer-12-netboot-amd64 package's files)",
                nb.path.display(),
                missing.join(" and ")
            );
        }
        let name = |p: &str| dir.join(p.rsplit('/').next().unwrap_or(p));
        let mut files = Vec::new();
        for (from, to) in [(kernel, layout.tftp_kernel), (initrd, layout.tftp_initrd)] {
            let local = name(from);
            let sha = sha256_file(&local)?;
            self.desired.insert(to, Want::Move(local), sha, 0o644);
            files.push(to.to_string());
        }
        let efi = loaders.iter().all(|(from, _)| got.contains(from));
        if efi {
            for (from, to) in &loaders {
                let local = name(from);
                let sha = sha256_file(&local)?;
                self.desired
                    .insert(to.as_str(), Want::Move(local), sha, 0o644);
                files.push(to.clone());
            }
        } else {
            tracing::warn!(
                "{}: no {} and {} in the netboot files: the tree boots BIOS machines only",
                nb.path.display(),
                loaders[0].0,
                loaders[1].0
            );
        }
        self.new.iso = Some(IsoRecord { identity, files });
        Ok(efi)
    }

    /// GRUB 2's EFI image for UEFI PXE ([`PxeUefi::Grub2`]), built with the build host's
    /// `grub-mkimage` (Ubuntu 12.04's GRUB 1.99 has no per-MAC config lookup; the
    /// lookup hvseed relies on is in GRUB ≥ 2.04). Its prefix `/grub` on the TFTP
    /// device it was loaded from makes GRUB look for `grub/grub.cfg-01-<mac>`.
    /// Missing GRUB → a warning and a BIOS-only tree.
    pub fn grub_efi_image(&mut self) -> Result<bool> {
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
            // `exit` (grub.cfg leaves GRUB for the next boot device on a machine that
            // is not a host of the cluster; without it GRUB stops at its prompt).
            "minicmd",
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
        let sha = sha256_file(&img)?;
        self.desired.insert(PATH, Want::Move(img), sha, 0o644);
        self.new.derived.insert(PATH.into(), key);
        Ok(true)
    }

    /// Every host's files — kickstart/preseed, plan and keys under http/hosts/ and its
    /// boot loader files under tftp/ — made only for hosts whose inputs changed since
    /// the last run; an unchanged host's files are kept as they are on disk.
    pub fn hosts(
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
            let key = sha256_of(&(global, h, installed.contains(&h.fqdn)));
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
                        .map(|(p, r)| Entry {
                            path: p.to_string(),
                            want: Want::Keep(*r),
                            sha256: r.sha256,
                            mode: 0o644,
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
                .insert(h.fqdn.clone(), HostRecord { key, count });
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
        for RenderedHost { fqdn, files } in rendered.into_iter().flatten() {
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
    h: &Host,
    os: Os,
    efi: bool,
) -> Option<Vec<(&'m str, &'m FileRecord)>> {
    use std::ops::Bound;
    let prefix = format!("http/hosts/{}/", h.fqdn);
    let mut files: Vec<(&str, &FileRecord)> = old
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

/// A host's files as (tree path, content).
struct RenderedHost {
    fqdn: String,
    files: Vec<(String, Vec<u8>)>,
}

/// The files of `hosts` (a part of `inv`'s hosts) by host: http/hosts/<fqdn>/... as
/// `hvseed render` makes them for HTTP media, and the host's boot loader files.
fn host_files(
    inv: &Inventory,
    hosts: &[&Host],
    opts: &RenderOptions,
    base: &str,
    layout: &source::Layout,
    efi_boot: Option<&str>,
    installed: &HashSet<String>,
) -> Result<Vec<RenderedHost>> {
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
        if efi_boot.is_some() {
            let (path, text) = configs::uefi_host(inv, h, layout, &args);
            files.push((path, text.into_bytes()));
        }
    }
    Ok(by_host
        .into_iter()
        .map(|(fqdn, files)| RenderedHost { fqdn, files })
        .collect())
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
) -> Result<Digest> {
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
            s.push_str(&format!("template {} {}\n", p.display(), sha256_file(&p)?));
        }
    }
    Ok(sha256_bytes(s.as_bytes()))
}

/// SHA-256 of a value's derived `Hash` (see [`Sha256Hasher`]).
pub fn sha256_of<T: std::hash::Hash + ?Sized>(v: &T) -> Digest {
    let mut h = Sha256Hasher(Sha256::new());
    v.hash(&mut h);
    Digest(h.0.finalize().into())
}

/// A [`std::hash::Hasher`] that feeds everything into SHA-256: a derived `Hash` of a
/// value gives a stable digest of it (within one hvseed binary) without formatting it.
pub struct Sha256Hasher(pub Sha256);

impl std::hash::Hasher for Sha256Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
    fn finish(&self) -> u64 {
        unreachable!("use the digest, not a u64")
    }
}

/// The stamp of an extracted package tree: the ISO it came from and every file's
/// SHA-256 (for SHA256SUMS without hashing gigabytes on each run).
#[derive(Debug, Serialize, Deserialize)]
struct OsStamp {
    identity: String,
    sums: BTreeMap<String, Digest>,
}

/// The package tree under http/os this run wants.
pub struct PackageTree {
    /// Its files' SHA-256 by path relative to http/os (none when no host needs it).
    pub sums: BTreeMap<String, Digest>,
    /// What happens to http/os once every check passed.
    pub change: Option<OsMove>,
}

/// The ISO's package tree under http/os, extracted once per ISO: its files' SHA-256
/// by path relative to http/os, and the new tree extracted in the staging directory
/// when it has to replace http/os ([`OsMove::Install`]).
pub fn package_tree(
    iso: &Iso,
    layout: &source::Layout,
    tree: &Beneath,
    staging: &Path,
    ours: bool,
) -> Result<PackageTree> {
    let dest = tree.show(OS_DIR);
    let stamp_rel = format!("{OS_DIR}/{OS_STAMP}");
    // Read without following a link on the way: a linked http/os is refused here.
    let stamp_bytes = tree.read(&stamp_rel)?;
    if let Some(bytes) = &stamp_bytes {
        if let Ok(stamp) = serde_json::from_slice::<OsStamp>(bytes) {
            if stamp.identity == iso.identity {
                return Ok(PackageTree {
                    sums: stamp.sums,
                    change: None,
                });
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
            sums.insert(rel, sha256_file(e.path())?);
        }
    }
    let stamp = OsStamp {
        identity: iso.identity.clone(),
        sums,
    };
    super::apply::write_atomic(&new.join(OS_STAMP), &serde_json::to_vec(&stamp)?, 0o644)?;
    Ok(PackageTree {
        sums: stamp.sums,
        change: Some(OsMove::Install(new)),
    })
}

/// The tree's list completed with the fleet-wide files (one line per host each: the
/// default boot menus and dnsmasq.conf) and `SHA256SUMS` of every file, the package
/// tree's (`os_sums`) included.
pub fn finish(
    desired: Desired,
    inv: &Inventory,
    efi_boot: Option<&str>,
    tftp_root: &Path,
    os_sums: &BTreeMap<String, Digest>,
) -> Result<Sorted> {
    // The fleet-wide files are made on another core while the tree's list is sorted.
    let (fleet, desired) = std::thread::scope(|s| {
        let fleet = s.spawn(|| -> Result<Vec<(&str, String)>> {
            let mut files = vec![("tftp/pxelinux.cfg/default", configs::pxelinux_default(inv))];
            if efi_boot.is_some() {
                files.push(configs::uefi_default(inv));
            }
            let efi = efi_boot.map(|file| configs::EfiBoot { file });
            files.push(("dnsmasq.conf", configs::dnsmasq(inv, tftp_root, efi)?));
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
        desired.insert_bytes(path, text.into_bytes());
    }
    let mut sums: Vec<(Cow<str>, Digest)> = desired
        .iter()
        .map(|e| (Cow::Borrowed(e.path.as_str()), e.sha256))
        .collect();
    for (p, s) in os_sums {
        sums.push((Cow::Owned(format!("{OS_DIR}/{p}")), *s));
    }
    let sums = crate::sums::sha256sums(sums);
    desired.insert_bytes("SHA256SUMS", sums);
    Ok(desired)
}
