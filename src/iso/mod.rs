//! `hvseed iso`: remaster an install ISO of the inventory's target (see
//! [`crate::target`]) into one ISO that installs the whole cluster unattended (BIOS and
//! UEFI): hvseed's files go under `/hvseed/`, a new default boot entry on top of the
//! original menus starts the installer with the install file, and the boot records
//! stay as they were.
//!
//! On the ISO:
//! - `/hvseed/fleet/<install file>` (or with `--host`, `/hvseed/hosts/<fqdn>/...`),
//!   `/hvseed/hosts/<fqdn>/plan.json` for every host, `/hvseed/hvseed-firstboot`,
//!   `/hvseed/SHA256SUMS` (relative paths: `cd /hvseed && sha256sum -c SHA256SUMS`);
//! - a new entry in the target's isolinux menu (and, where another isolinux file
//!   starts gfxboot, the plain menu with a timeout instead), and in its UEFI menu:
//!   a grub-legacy stanza (`BOOTX64.conf`) or a GRUB2 `menuentry` (`grub.cfg`), in the
//!   ISO tree and inside the UEFI image; the entries are the templates of the
//!   top-level `iso/` folder ([`menus`]), their kernel arguments the target's;
//! - for targets whose installer reads its answers from the initrd (d-i):
//!   `/hvseed/initrd.gz` = the installer's initrd + a cpio holding `/preseed.cfg`;
//!   and where the medium lists checksums of its files (`md5sum.txt`), a line for
//!   every file added or changed.

mod fat;
mod initrd;
mod menus;
mod write;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use sha2::Digest;

pub use initrd::{newc, preseed_archive};
use menus::UnattendedEntry;
use write::{Mapping, Session};

use crate::inventory::{Host, Inventory, Os};
use crate::isoread::{self, Identified, IsoFlavour};
use crate::render::{self, Media, RenderOptions};
use crate::target::{BootValues, Target, UefiMenu};

/// What `hvseed iso` is asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    /// The inventory file.
    pub inventory: PathBuf,
    /// The distribution's install ISO (only read).
    pub source: PathBuf,
    /// The remastered ISO to write.
    pub out: PathBuf,
    /// Only this host's install file instead of the fleet file.
    pub host: Option<String>,
    /// The first-boot agent; `None`: [`crate::agent::locate`]'s default places.
    pub firstboot: Option<PathBuf>,
    /// Templates that override the built-in ones by file name.
    pub templates: Option<PathBuf>,
}

/// `hvseed iso INVENTORY --source IN.iso --out OUT.iso [--host FQDN]`.
pub fn run(c: Options) -> Result<ExitCode> {
    let agent = crate::agent::locate(c.firstboot.as_deref())?;
    crate::overlap::Paths::new()
        .input("inventory", Some(&c.inventory))
        .input("--source ISO", Some(&c.source))
        .input("first-boot agent", Some(&agent))
        .input("--templates", c.templates.as_deref())
        .output("--out", Some(&c.out))
        .check()?;
    let inv = crate::inventory::load_valid(&c.inventory)?;
    if let Some(why) = crate::target::of(inv.os).media_pending {
        bail!("{}: `os: {}`: {why}", c.inventory.display(), inv.os);
    }
    // Cheap refusals first, before anything is rendered.
    isoread::check_header(&c.source)?;
    write::check_output(&c.source, &c.out)?;
    let host = c.host.as_deref().map(|f| inv.host_named(f)).transpose()?;
    let tree = render::render_tree(
        &inv,
        &RenderOptions {
            templates: c.templates.clone(),
            media: Media::Cdrom,
        },
    )
    .context("rendering the install files")?;
    let payload = Payload::new(&inv, host, &tree)?;
    let flavour = remaster(&c.source, &c.out, inv.os, &payload, &agent).map_err(|e| {
        // Name the inventory where the mismatch is about it.
        e.context(format!("nothing was written to {}", c.out.display()))
    })?;
    crate::say!(
        "wrote {}: {} with an unattended install of {} as the default boot entry",
        c.out.display(),
        flavour.name(),
        match host {
            Some(h) => h.fqdn.clone(),
            None => format!(
                "cluster {} ({} hosts, chosen by MAC)",
                inv.cluster,
                inv.hosts.len()
            ),
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// The staging directory's name in the temporary directory (then the owner tag).
const STAGE_BASE: &str = "hvseed-iso.";

/// Writes `out`: the install ISO `source` (which must be for `os`) with `payload` under
/// `/hvseed/`, the agent binary as `/hvseed/hvseed-firstboot`, and the new default boot
/// entries. `source` is never modified; on error `out` is not created or replaced.
pub fn remaster(
    source: &Path,
    out: &Path,
    os: Os,
    payload: &Payload,
    agent: &Path,
) -> Result<IsoFlavour> {
    write::check_output(source, out)?;
    let started = std::time::Instant::now();
    // Temporaries left by runs killed outright (SIGKILL, a power cut): the copy beside
    // OUT and the staging directory.
    write::remove_stale_partials(out);
    crate::interrupt::remove_stale(&std::env::temp_dir(), STAGE_BASE, "");
    let (stage, _stage_guard) = crate::interrupt::temp_dir_in(&std::env::temp_dir(), STAGE_BASE)
        .context("creating a temporary directory")?;
    let orig = stage.path().join("orig");
    let Identified {
        volume_id,
        flavour,
        listing,
    } = isoread::identify(source, os, &orig)?;
    if listing.files.iter().any(|f| f.starts_with("/hvseed/")) {
        bail!(
            "{} already has a /hvseed/ directory (it was made by hvseed); remaster the \
             distribution's original ISO instead",
            source.display()
        );
    }
    tracing::info!(
        "{}: {} (volume id \"{volume_id}\")",
        source.display(),
        flavour.name(),
    );
    // A truncated, foreign or already remastered ISO was refused above, before a byte
    // was copied; the copy now runs while the session is prepared (and is removed if
    // anything fails).
    let copy = write::start_copy(source, out)?;

    let mut b = Builder {
        iso: source,
        listing: &listing,
        orig: &orig,
        new: stage.path().join("new"),
        hvseed: stage.path().join("hvseed"),
        session: Session {
            joliet: listing.joliet,
            owned_dirs: vec!["/hvseed".into()],
            executables: vec!["/hvseed/hvseed-firstboot".into()],
            ..Session::default()
        },
        hvseed_files: BTreeMap::new(),
    };
    for (rel, bytes) in &payload.files {
        b.add_hvseed(rel, bytes)?;
    }
    b.boot_entries(payload, flavour.target, flavour.uefi.as_deref(), &volume_id)?;
    b.finish_hvseed(agent)?;
    if let Some(list) = flavour.target.iso.md5sums {
        b.update_md5sums(list)?;
    }
    tracing::debug!(
        "session prepared in {:.3} s",
        started.elapsed().as_secs_f64()
    );
    copy.commit(&b.session, out)?;
    Ok(flavour)
}

/// What goes under `/hvseed/` and how the new boot entry starts the installer.
#[derive(Debug, Clone)]
pub struct Payload {
    /// By path relative to `/hvseed/`: the install file, every host's plan and
    /// authorized_keys.
    pub files: BTreeMap<String, Vec<u8>>,
    /// The install file, relative to `/hvseed/` (`fleet/ks.cfg`, ...).
    pub install_file: String,
    /// The boot menu text of the new entry.
    pub title: String,
    /// `install.kernel_args`, as the inventory checked them.
    pub kernel_args: Vec<String>,
    pub locale: String,
    pub keyboard: String,
}

impl Payload {
    /// The payload for the whole cluster (`host` None) or one host.
    pub fn new(
        inv: &Inventory,
        host: Option<&Host>,
        tree: &render::RenderedTree,
    ) -> Result<Payload> {
        let name = crate::target::of(inv.os).install.file;
        let install_file = match host {
            Some(h) => format!("hosts/{}/{name}", h.fqdn),
            None => format!("fleet/{name}"),
        };
        if !tree.contains_key(&install_file) {
            bail!("rendering produced no {install_file}");
        }
        // Everything the install files fetch from the media (every host's plan and
        // authorized_keys), but only the one install file the boot entry names.
        let is_install_file = |rel: &str| {
            rel.starts_with("fleet/") || rel.strip_suffix(name).is_some_and(|r| r.ends_with('/'))
        };
        let files: BTreeMap<String, Vec<u8>> = tree
            .iter()
            .filter(|(rel, _)| **rel == install_file || !is_install_file(rel))
            .map(|(rel, bytes)| (rel.clone(), bytes.clone()))
            .collect();
        for h in &inv.hosts {
            let plan = format!("hosts/{}/plan.json", h.fqdn);
            if !files.contains_key(&plan) {
                bail!("rendering produced no {plan}");
            }
        }

        // One boot entry serves every host it installs, so their installer settings
        // must agree; with differing ones the first host's are used (and said so).
        let hosts: Vec<&Host> = match host {
            Some(h) => vec![h],
            None => inv.hosts.iter().collect(),
        };
        let first = hosts
            .first()
            .with_context(|| format!("{} has no hosts", inv.path.display()))?;
        let differ: Vec<&str> = hosts
            .iter()
            .filter(|h| {
                h.install.kernel_args != first.install.kernel_args
                    || h.install.locale != first.install.locale
                    || h.install.keyboard != first.install.keyboard
            })
            .map(|h| h.fqdn.as_str())
            .collect();
        if !differ.is_empty() {
            tracing::warn!(
                "install.kernel_args/locale/keyboard of {} differ from {}'s; the ISO's boot \
                 entry uses {}'s (make one ISO per host with --host to use each host's own)",
                differ.join(", "),
                first.fqdn,
                first.fqdn
            );
        }
        // `inventory::load` checked every argument (and the locale and keyboard) with
        // the one kernel-argument rule.
        debug_assert!(first
            .install
            .kernel_args
            .iter()
            .map(|a| a.as_str())
            .chain([&*first.install.locale, &*first.install.keyboard])
            .all(|a| crate::inventory::check_kernel_arg(a).is_ok()));
        let title = match host {
            Some(h) => format!("Unattended install of {} (hvseed)", h.fqdn),
            None => format!(
                "Unattended install of cluster {} (hvseed, host chosen by MAC)",
                inv.cluster
            ),
        };
        Ok(Payload {
            files,
            install_file,
            title,
            kernel_args: first.install.kernel_arg_strings(),
            locale: first.install.locale.to_string(),
            keyboard: first.install.keyboard.to_string(),
        })
    }
}

/// Collects the files of the new session in a staging directory.
struct Builder<'a> {
    iso: &'a Path,
    listing: &'a isoread::Listing,
    /// Files extracted from the ISO (same relative paths).
    orig: &'a Path,
    /// Edited copies of ISO files (same relative paths).
    new: PathBuf,
    /// Staged `/hvseed/` files.
    hvseed: PathBuf,
    session: Session,
    /// Everything under `/hvseed/` (relative path → local file), for SHA256SUMS.
    hvseed_files: BTreeMap<String, PathBuf>,
}

impl Builder<'_> {
    fn extract(&self, files: &[&str]) -> Result<()> {
        isoread::extract(self.iso, files, self.orig, None)?;
        Ok(())
    }

    fn read_orig(&self, iso_path: &str) -> Result<String> {
        let p = self.orig.join(iso_path.trim_start_matches('/'));
        let bytes = std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?;
        String::from_utf8(bytes).with_context(|| format!("{iso_path} on the ISO is not UTF-8 text"))
    }

    /// Stages an edited version of an ISO file and maps it over the original.
    fn replace(&mut self, iso_path: &str, bytes: &[u8]) -> Result<PathBuf> {
        let p = self.new.join(iso_path.trim_start_matches('/'));
        crate::interrupt::create_dir_all(p.parent().unwrap())
            .with_context(|| format!("creating {}", p.parent().unwrap().display()))?;
        crate::interrupt::write(&p, bytes).with_context(|| format!("writing {}", p.display()))?;
        self.session.mappings.push(Mapping {
            local: p.clone(),
            iso: iso_path.to_string(),
        });
        Ok(p)
    }

    /// Maps an extracted (and edited in place) ISO file back over the original.
    fn replace_extracted(&mut self, iso_path: &str) {
        self.session.mappings.push(Mapping {
            local: self.orig.join(iso_path.trim_start_matches('/')),
            iso: iso_path.to_string(),
        });
    }

    fn add_hvseed(&mut self, rel: &str, bytes: &[u8]) -> Result<()> {
        let p = self.hvseed.join(rel);
        crate::interrupt::create_dir_all(p.parent().unwrap())
            .with_context(|| format!("creating {}", p.parent().unwrap().display()))?;
        crate::interrupt::write(&p, bytes).with_context(|| format!("writing {}", p.display()))?;
        self.hvseed_files.insert(rel.to_string(), p);
        Ok(())
    }

    /// Maps every staged `/hvseed/` file and the agent, and writes `SHA256SUMS`.
    fn finish_hvseed(&mut self, agent: &Path) -> Result<()> {
        self.hvseed_files
            .insert("hvseed-firstboot".into(), agent.to_path_buf());
        let sums = self
            .hvseed_files
            .iter()
            .map(|(rel, local)| Ok((rel.as_str().into(), crate::sums::sha256_file(local)?)))
            .collect::<Result<Vec<_>>>()?;
        let p = self.hvseed.join("SHA256SUMS");
        crate::interrupt::write(&p, &crate::sums::sha256sums(sums))
            .with_context(|| format!("writing {}", p.display()))?;
        self.hvseed_files.insert("SHA256SUMS".into(), p);
        for (rel, local) in &self.hvseed_files {
            self.session.mappings.push(Mapping {
                local: local.clone(),
                iso: format!("/hvseed/{rel}"),
            });
        }
        Ok(())
    }

    /// The new default boot entries, in the target's BIOS menu (isolinux) and, with a
    /// UEFI image (`uefi`), its UEFI menu, in the ISO tree and inside the image.
    fn boot_entries(
        &mut self,
        p: &Payload,
        target: &Target,
        uefi: Option<&str>,
        volume_id: &str,
    ) -> Result<()> {
        let medium = &target.iso;
        let mut args: Vec<String> = medium
            .label_args
            .map(|f| f(volume_id, &p.install_file))
            .unwrap_or_default();
        args.extend((medium.args)(&BootValues {
            install_file: &p.install_file,
            locale: &p.locale,
            keyboard: &p.keyboard,
            hostname: None,
            domain: None,
            kernel_args: &p.kernel_args,
        }));
        let entry = UnattendedEntry {
            title: p.title.clone(),
            args,
            initrd: medium
                .initrd_with_install_file
                .map(|_| "/hvseed/initrd.gz".to_string()),
        };
        let bios = medium.bios;
        let mut wanted: Vec<&str> = bios.gfxboot_top.into_iter().collect();
        wanted.push(bios.menu);
        wanted.extend(medium.initrd_with_install_file);
        if let Some(list) = medium.md5sums.filter(|l| self.listing.has(l)) {
            wanted.push(list);
        }
        if let Some(img) = uefi {
            wanted.extend([medium.uefi.config(), img]);
        }
        self.extract(&wanted)?;

        if let Some(orig) = medium.initrd_with_install_file {
            // The installer's initrd with the install file appended as /preseed.cfg.
            let mut initrd = std::fs::read(self.orig.join(orig.trim_start_matches('/')))
                .with_context(|| {
                    format!("reading the extracted {}", orig.trim_start_matches('/'))
                })?;
            initrd.extend(initrd::preseed_archive(&p.files[&p.install_file]));
            self.add_hvseed("initrd.gz", &initrd)?;
        }

        let menu = bios.menu.trim_start_matches('/');
        let cfg = self.read_orig(bios.menu)?;
        let new = menus::isolinux(&cfg, &entry, bios.set_timeout)
            .with_context(|| format!("editing {menu}"))?;
        self.replace(bios.menu, new.as_bytes())?;
        if let Some(top_path) = bios.gfxboot_top {
            let top = self.read_orig(top_path)?;
            let ui = ["vesamenu.c32", "menu.c32"]
                .into_iter()
                .find(|m| self.listing.has(&format!("/isolinux/{m}")));
            let new = match ui {
                Some(ui) => menus::isolinux_gfxboot_top(&top, ui),
                None => {
                    tracing::warn!("isolinux/ has no vesamenu.c32 or menu.c32: the boot menu is left to gfxboot, which may wait for a key");
                    top.clone()
                }
            };
            if new != top {
                self.replace(top_path, new.as_bytes())?;
            }
        }

        let Some(img_path) = uefi else {
            tracing::warn!(
                "{} has no UEFI boot entry{}: the new ISO installs unattended when booted in BIOS mode only",
                self.iso.display(),
                medium.no_uefi_note
            );
            return Ok(());
        };
        match medium.uefi {
            // grub-legacy EFI: `conf` in the tree and every `BOOTX64.conf` inside the
            // image (what UEFI firmware boots from a CD is the FAT image, with its own
            // copy).
            UefiMenu::GrubLegacy { conf } => {
                self.edit_menu(conf, |text| menus::grub_legacy(text, &entry))?;
                let (found, inside) =
                    self.edit_in_fat(img_path, "/bootx64.conf", "fat-BOOTX64.conf", |text| {
                        menus::grub_legacy(text, &entry).map(Some)
                    })?;
                if found == 0 {
                    bail!(
                        "the UEFI boot image {img_path} holds no BOOTX64.conf (it has {}); \
                         hvseed cannot make its UEFI boot unattended",
                        inside.join(", ")
                    );
                }
            }
            // GRUB2: `cfg` in the tree and any `grub.cfg` with a menu inside the image.
            // An EFI GRUB may have its config built in and read grub.cfg from the CD (as
            // Ubuntu's does); if this image carries a grub.cfg of its own, it gets the
            // entry too.
            UefiMenu::Grub2 { cfg } => {
                self.edit_menu(cfg, |text| menus::grub2(text, &entry))?;
                self.edit_in_fat(img_path, "/grub.cfg", "fat-grub.cfg", |text| {
                    // A config that only finds the CD and loads its grub.cfg has no
                    // menuentry.
                    if !text
                        .lines()
                        .any(|l| l.trim_start().starts_with("menuentry"))
                    {
                        return Ok(None);
                    }
                    menus::grub2(text, &entry).map(Some)
                })?;
            }
        }
        Ok(())
    }

    /// The menu `iso_path`, replaced by `edit` of the ISO's own.
    fn edit_menu(&mut self, iso_path: &str, edit: impl Fn(&str) -> Result<String>) -> Result<()> {
        let text = self.read_orig(iso_path)?;
        let new =
            edit(&text).with_context(|| format!("editing {}", iso_path.trim_start_matches('/')))?;
        self.replace(iso_path, new.as_bytes())?;
        Ok(())
    }

    /// Writes `text` as `fat_path` inside the FAT image `img`, through the local file
    /// `local_name` of the session's directory.
    fn write_in_fat(&self, img: &Path, fat_path: &str, local_name: &str, text: &str) -> Result<()> {
        let local = self.new.join(local_name);
        crate::interrupt::create_dir_all(&self.new)?;
        crate::interrupt::write(&local, text.as_bytes())
            .with_context(|| format!("writing {}", local.display()))?;
        fat::write(img, &local, fat_path)
    }

    /// Edits, inside the FAT image `img_path`, every file whose name ends with
    /// `suffix` (in any case) with `edit` (`None`: the file stays as it is), through
    /// the local file `local_name`; the image is replaced in the ISO when a file
    /// changed. Returns how many files matched and the names of all files in the image.
    fn edit_in_fat(
        &mut self,
        img_path: &str,
        suffix: &str,
        local_name: &str,
        edit: impl Fn(&str) -> Result<Option<String>>,
    ) -> Result<(usize, Vec<String>)> {
        let img = self.orig.join(img_path.trim_start_matches('/'));
        let inside = fat::list(&img)?;
        let mut found = 0;
        let mut changed = false;
        for fat_path in &inside {
            if !fat_path.to_ascii_lowercase().ends_with(suffix) {
                continue;
            }
            found += 1;
            let text = fat_text(&img, img_path, fat_path)?;
            let new = edit(&text).with_context(|| format!("editing {fat_path} in {img_path}"))?;
            if let Some(new) = new {
                self.write_in_fat(&img, fat_path, local_name, &new)?;
                changed = true;
            }
        }
        if changed {
            self.replace_extracted(img_path);
        }
        Ok((found, inside))
    }

    /// A medium whose "check disc for defects" compares every file against a list of
    /// checksums (`md5sum.txt`): every file this session adds or replaces gets its line.
    fn update_md5sums(&mut self, list: &str) -> Result<()> {
        if !self.listing.has(list) {
            return Ok(());
        }
        let old = self.read_orig(list)?;
        let mut sums: BTreeMap<String, String> = BTreeMap::new();
        for m in &self.session.mappings {
            let mut f = std::fs::File::open(&m.local)
                .with_context(|| format!("reading {}", m.local.display()))?;
            let mut h = md5::Md5::new();
            std::io::copy(&mut f, &mut h)?;
            sums.insert(format!(".{}", m.iso), format!("{:x}", h.finalize()));
        }
        let new = update_md5sums(&old, &sums, &format!(".{list}"));
        self.replace(list, new.as_bytes())?;
        Ok(())
    }
}

/// The text of `fat_path` inside the FAT image `img` (`img_path` on the medium).
fn fat_text(img: &Path, img_path: &str, fat_path: &str) -> Result<String> {
    String::from_utf8(fat::read(img, fat_path)?)
        .with_context(|| format!("{fat_path} in {img_path} is not UTF-8 text"))
}

/// Replaces the sums of listed files and appends lines for new ones (sorted).
fn update_md5sums(old: &str, sums: &BTreeMap<String, String>, itself: &str) -> String {
    let mut out = String::with_capacity(old.len() + sums.len() * 64);
    let mut seen = std::collections::BTreeSet::new();
    for line in old.lines() {
        match line.split_once("  ") {
            Some((_, path)) if sums.contains_key(path) => {
                out.push_str(&format!("{}  {path}\n", sums[path]));
                seen.insert(path.to_string());
            }
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    for (path, sum) in sums {
        if !seen.contains(path) && path != itself {
            out.push_str(&format!("{sum}  {path}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5sums_replace_and_append() {
        let old = "aaa  ./install/initrd.gz\nbbb  ./isolinux/txt.cfg\n";
        let mut sums = BTreeMap::new();
        sums.insert("./isolinux/txt.cfg".to_string(), "ccc".to_string());
        sums.insert("./hvseed/initrd.gz".to_string(), "ddd".to_string());
        assert_eq!(
            update_md5sums(old, &sums, "./md5sum.txt"),
            "aaa  ./install/initrd.gz\nccc  ./isolinux/txt.cfg\nddd  ./hvseed/initrd.gz\n"
        );
    }
}
