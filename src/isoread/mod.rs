//! Reading an install ISO without unpacking it, for `hvseed iso` and `hvseed pxe`: a
//! sanity check of its ISO 9660 header, the list of its files near the top of the tree
//! and its boot records, which installer it is ([`identify`], [`IsoFlavour`]), and
//! extraction of the files and directories named (never the whole tree), all with
//! xorriso (`-osirrox on -indev ISO`).

mod flavour;

pub use flavour::IsoFlavour;

use std::collections::BTreeSet;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

use crate::inventory::Os;
use crate::tool::Tool;

/// The primary volume descriptor sits in logical sector 16 of 2048 bytes.
const PVD_OFFSET: u64 = 16 * 2048;

/// What the ISO 9660 header says about the file.
#[derive(Debug, Clone)]
pub struct Header {
    pub volume_id: String,
}

/// Checks that `path` is a complete ISO 9660 image before any tool reads it, so a
/// truncated download or a wrong file gets a clear message instead of xorriso's.
pub fn check_header(path: &Path) -> Result<Header> {
    let mut f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let meta = f
        .metadata()
        .with_context(|| format!("reading {}", path.display()))?;
    if !meta.is_file() {
        bail!(
            "{} is not a regular file; give the path of an .iso file",
            path.display()
        );
    }
    let len = meta.len();
    let not_iso = |why: String| {
        anyhow::anyhow!(
            "{} is not an ISO 9660 image ({why}); give the distribution's install ISO \
             (`file {}` says what it is)",
            path.display(),
            crate::tool::shell_words_quote(&path.display().to_string())
        )
    };
    if len < PVD_OFFSET + 2048 {
        return Err(not_iso(format!(
            "it has {len} bytes, fewer than the 34816 that hold the volume descriptor"
        )));
    }
    let mut pvd = [0u8; 2048];
    f.seek(SeekFrom::Start(PVD_OFFSET))
        .and_then(|_| f.read_exact(&mut pvd))
        .with_context(|| format!("reading {}", path.display()))?;
    if &pvd[1..6] != b"CD001" || pvd[0] != 1 {
        return Err(not_iso(
            "no primary volume descriptor \"CD001\" at byte 32768".into(),
        ));
    }
    let blocks = u32::from_le_bytes(pvd[80..84].try_into().unwrap()) as u64;
    let block_size = u16::from_le_bytes(pvd[128..130].try_into().unwrap()) as u64;
    let volume_bytes = blocks * block_size;
    if block_size == 0 || volume_bytes > len {
        bail!(
            "{} is truncated: its volume descriptor says {volume_bytes} bytes but the file has \
             {len}; download the ISO again and compare its checksum",
            path.display()
        );
    }
    // Only shown and compared, never written back: escaped here, once, as the ISO's
    // bytes are input like any other (docs: a CR or an ESC sequence would forge or
    // clear lines of hvseed's output).
    let volume_id =
        crate::escape::escape(String::from_utf8_lossy(&pvd[40..72]).trim_end()).into_owned();
    Ok(Header { volume_id })
}

/// An install ISO as read from its own files.
#[derive(Debug)]
pub struct Identified {
    /// The volume id from the ISO 9660 header.
    pub volume_id: String,
    pub flavour: IsoFlavour,
    /// Its files and boot records.
    pub listing: Listing,
}

/// Checks that `source` is a complete ISO 9660 image and, from its own files
/// (`.disk/info`, `.treeinfo`, `.discinfo` and the boot files), that it is the install
/// medium of `os`; refuses anything else with a message that says what was found.
/// Reads only the file list and the identity files, which it extracts into `scratch`.
/// Shared by `hvseed iso` and `hvseed pxe`.
pub fn identify(source: &Path, os: Os, scratch: &Path) -> Result<Identified> {
    identify_within(source, os, scratch, IDENTIFY_DEADLINE)
}

/// How long reading an ISO's file list and identity files may take. A DVD's take a
/// few seconds even from a slow disk; a damaged directory tree can make xorriso read
/// on without end (a directory that contains itself), so it is stopped.
pub const IDENTIFY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(120);

/// [`identify`] with another limit on the time xorriso may take for each read.
pub fn identify_within(
    source: &Path,
    os: Os,
    scratch: &Path,
    deadline: std::time::Duration,
) -> Result<Identified> {
    let header = check_header(source)?;
    let listing = list(source, deadline).map_err(|e| {
        e.context(format!(
            "{} could not be read as an install ISO (damaged? compare its checksum with \
             the distribution's)",
            source.display()
        ))
    })?;
    let present: Vec<&str> = flavour::identity_files()
        .into_iter()
        .filter(|f| listing.has(f))
        .collect();
    extract(source, &present, scratch, Some(deadline))?;
    // Identity files are a few lines; a damaged ISO may claim any size, so at most
    // 64 KiB of each is read.
    let read = |p: &str| {
        use std::io::Read;
        let f = std::fs::File::open(scratch.join(p.trim_start_matches('/'))).ok()?;
        let mut text = String::new();
        f.take(64 * 1024).read_to_string(&mut text).ok()?;
        Some(text)
    };
    let flavour = flavour::detect(&listing, &read, os).map_err(|found| {
        let accepted: Vec<&str> = crate::target::TARGETS
            .iter()
            .map(|t| t.iso.accepted)
            .collect();
        anyhow!(
            "{} is not an install ISO hvseed can use: found {found} (volume id \"{}\"); \
             hvseed takes {}",
            source.display(),
            header.volume_id,
            accepted.join(" and ")
        )
    })?;
    if flavour.os() != os {
        bail!(
            "{} is {} but the inventory installs os: {os}; give {} as --source (or change \
             `os` in the inventory)",
            source.display(),
            flavour.name(),
            crate::target::of(os).iso.wanted,
        );
    }
    Ok(Identified {
        volume_id: header.volume_id,
        flavour,
        listing,
    })
}

/// An image file as a xorriso drive address: `stdio:` makes xorriso take it as a
/// plain file wherever it is (without it, a path under /dev, such as /dev/shm, is
/// refused as a drive).
pub fn xorriso_file(path: &Path) -> String {
    format!("stdio:{}", path.display())
}

/// Files and boot records of an ISO, as xorriso reports them.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// Paths of regular files up to three directories deep, absolute (`/isolinux/isolinux.cfg`).
    pub files: BTreeSet<String>,
    /// El Torito boot image paths with their platform (`BIOS` / `UEFI`).
    pub boot_images: Vec<(String, String)>,
    /// The ISO has a Joliet tree (kept in the new session).
    pub joliet: bool,
}

#[cfg(test)]
impl Listing {
    /// A listing of `files` whose UEFI El Torito image is `/images/efiboot.img`.
    pub(crate) fn for_tests(files: &[&str]) -> Listing {
        Listing {
            files: files.iter().map(|s| s.to_string()).collect(),
            boot_images: vec![("/images/efiboot.img".into(), "UEFI".into())],
            joliet: false,
        }
    }

    /// The files of a CentOS 6.3 DVD that recognition reads: `.discinfo`, the isolinux
    /// menu and the UEFI menu.
    pub(crate) fn centos6_dvd_for_tests() -> Listing {
        Listing::for_tests(&[
            "/.discinfo",
            "/isolinux/isolinux.cfg",
            "/EFI/BOOT/BOOTX64.conf",
        ])
    }
}

impl Listing {
    pub fn has(&self, path: &str) -> bool {
        self.files.contains(path)
    }

    /// The path of the UEFI El Torito image, if the ISO has one.
    pub fn uefi_image(&self) -> Option<&str> {
        self.boot_images
            .iter()
            .find(|(_, p)| p == "UEFI")
            .map(|(path, _)| path.as_str())
    }
}

/// Lists the ISO's files (three levels deep: enough for every boot file, and cheap on
/// a DVD whose thousands of packages sit deeper or in one directory) and boot records.
pub fn list(iso: &Path, deadline: Duration) -> Result<Listing> {
    let out = Tool::new("xorriso")
        .deadline(deadline)
        .args(["-abort_on", "FAILURE", "-indev"])
        .arg(xorriso_file(iso))
        .args(["-toc", "-report_el_torito", "plain"])
        .args(["-find", "/", "-maxdepth", "3", "-type", "f"])
        .run()
        .with_context(|| format!("reading the file list of {}", iso.display()))?;
    Ok(parse_listing(&String::from_utf8_lossy(&out)))
}

fn unquote(s: &str) -> Option<String> {
    let s = s.trim();
    let inner = s.strip_prefix('\'')?.strip_suffix('\'')?;
    // xorriso quotes a ' inside a name as '"'"'.
    Some(inner.replace("'\"'\"'", "'"))
}

fn parse_listing(text: &str) -> Listing {
    let mut l = Listing::default();
    let mut images: Vec<(u32, String, String)> = Vec::new();
    let mut platforms: Vec<(u32, String)> = Vec::new();
    for line in text.lines() {
        if let Some(p) = unquote(line) {
            l.files.insert(p);
        } else if let Some(rest) = line.strip_prefix("ISO offers   :") {
            l.joliet = rest.split_whitespace().any(|w| w == "Joliet");
        } else if let Some(rest) = line.strip_prefix("El Torito boot img :") {
            let w: Vec<&str> = rest.split_whitespace().collect();
            if let (Some(n), Some(pf)) = (w.first().and_then(|n| n.parse().ok()), w.get(1)) {
                platforms.push((n, pf.to_string()));
            }
        } else if let Some(rest) = line.strip_prefix("El Torito img path :") {
            let rest = rest.trim_start();
            if let Some((n, path)) = rest.split_once(char::is_whitespace) {
                if let Ok(n) = n.parse() {
                    images.push((n, path.trim().to_string(), String::new()));
                }
            }
        }
    }
    for (n, path, _) in images {
        let pf = platforms
            .iter()
            .find(|(m, _)| *m == n)
            .map(|(_, p)| p.clone())
            .unwrap_or_default();
        l.boot_images.push((path, pf));
    }
    l
}

/// Copies the named files out of the ISO into `dest` (same relative paths), made
/// writable. Never the whole tree: only these files are read.
pub fn extract(
    iso: &Path,
    files: &[&str],
    dest: &Path,
    deadline: Option<Duration>,
) -> Result<Vec<PathBuf>> {
    if files.is_empty() {
        return Ok(Vec::new());
    }
    let mut tool = Tool::new("xorriso");
    if let Some(d) = deadline {
        tool = tool.deadline(d);
    }
    tool = tool
        .args(["-abort_on", "FAILURE", "-osirrox", "on", "-indev"])
        .arg(xorriso_file(iso))
        .args(["-extract_l", "/"])
        .arg(dest);
    for f in files {
        tool = tool.arg(*f);
    }
    tool.arg("--")
        .run()
        .with_context(|| format!("extracting {} from {}", files.join(", "), iso.display()))?;
    let mut paths = Vec::new();
    for f in files {
        let p = dest.join(f.trim_start_matches('/'));
        // xorriso gives extracted files the ISO's (read-only) permissions.
        let mut perm = std::fs::metadata(&p)
            .with_context(|| format!("{f} was not extracted from {}", iso.display()))?
            .permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perm.set_readonly(false);
        std::fs::set_permissions(&p, perm).with_context(|| format!("chmod {}", p.display()))?;
        paths.push(p);
    }
    Ok(paths)
}

/// Which of `paths` (files or directories, absolute inside the ISO) `iso` lacks.
pub fn missing<'p>(iso: &Path, paths: &[&'p str]) -> Result<Vec<&'p str>> {
    let out = Tool::new("xorriso")
        .args(["-osirrox", "on", "-indev"])
        .arg(xorriso_file(iso))
        .arg("-lsd")
        .args(paths.iter().copied())
        .run()
        .with_context(|| format!("listing {}", iso.display()))?;
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
pub fn extract_to(iso: &Path, pairs: &[(&str, &Path)]) -> Result<()> {
    let mut t = Tool::new("xorriso")
        .args(["-osirrox", "on", "-indev"])
        .arg(xorriso_file(iso));
    for (inside, local) in pairs {
        t = t.arg("-extract").arg(*inside).arg(*local);
    }
    if let Err(e) = t.run() {
        let e = e.context(format!("extracting from {}", iso.display()));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_parses_files_boot_images_and_joliet() {
        let text = "Boot record  : El Torito , MBR isohybrid cyl-align-on GPT\n\
ISO offers   : Rock_Ridge Joliet\n\
El Torito boot img :   1  BIOS  y   none  0x0000  0x00      4         729\n\
El Torito boot img :   2  UEFI  y   none  0x0000  0x00   2744          43\n\
El Torito img path :   1  /isolinux/isolinux.bin\n\
El Torito img path :   2  /images/efiboot.img\n\
'/.discinfo'\n'/isolinux/isolinux.cfg'\n'/odd/it'\"'\"'s'\n";
        let l = parse_listing(text);
        assert!(l.joliet);
        assert!(l.has("/.discinfo") && l.has("/isolinux/isolinux.cfg") && l.has("/odd/it's"));
        assert_eq!(l.uefi_image(), Some("/images/efiboot.img"));
        assert_eq!(
            l.boot_images[0],
            ("/isolinux/isolinux.bin".into(), "BIOS".into())
        );
    }

    #[test]
    fn a_text_file_is_not_an_iso() {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), "hello\n".repeat(10000)).unwrap();
        let err = check_header(f.path()).unwrap_err().to_string();
        assert!(
            err.contains("not an ISO 9660 image") && err.contains("CD001"),
            "{err}"
        );
    }
}
