//! The source of `hvseed pxe`: the install ISO (its identity, to reuse what was
//! extracted before, its flavour and what the installer needs from it per flavour,
//! [`Layout`]; the reading itself is [`crate::isoread`]'s, shared with `hvseed iso`),
//! or, for a target whose CD installer cannot netboot, d-i's netboot files
//! ([`Netboot`]).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use std::io::Read as _;

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

/// What the installer needs from the ISO: the target's PXE layout.
pub use crate::target::PxeLayout as Layout;

pub fn layout(os: Os) -> &'static Layout {
    &crate::target::of(os).pxe
}

impl Iso {
    /// Checks that `path` is a complete ISO 9660 image and computes its identity.
    pub fn open(path: &Path) -> Result<Iso> {
        let volid = isoread::check_header(path)?.volume_id;
        let meta =
            std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
        let mtime = mtime_ns(&meta);
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

/// debian-installer's netboot files, the source of `hvseed pxe` for targets whose CD
/// installer cannot netboot ([`crate::target::PxeUefi::DebianNetboot`]): Debian's
/// `netboot.tar.gz`, or a directory laid out like it (its unpacked contents, or
/// `/usr/lib/debian-installer/images/12/amd64/text` of the
/// `debian-installer-12-netboot-amd64` package).
#[derive(Debug, Clone)]
pub struct Netboot {
    pub path: PathBuf,
    /// Where the files are: the directory holding `debian-installer/`, or the tarball.
    form: NetbootForm,
    /// What decides whether files taken from it earlier can be reused.
    pub identity: String,
    /// `version.info`'s text.
    pub version_info: String,
}

#[derive(Debug, Clone)]
enum NetbootForm {
    Dir(PathBuf),
    Tar,
}

/// The files of the netboot tree hvseed takes, relative to its root.
pub const NETBOOT_VERSION: &str = "version.info";

impl Netboot {
    /// Opens `path` (a directory or a `.tar.gz`) and reads its `version.info`.
    /// `wanted` names the release in messages ("Debian 12"); `major` is the release
    /// `version.info` must name (`Debian version:  12 (bookworm)`).
    pub fn open(path: &Path, wanted: &str, major: &str) -> Result<Netboot> {
        let help = format!(
            "give d-i's netboot files of the same {wanted} point release as --source: \
             Debian's netboot.tar.gz, its unpacked directory, or \
             /usr/lib/debian-installer/images/{major}/amd64/text from the \
             debian-installer-{major}-netboot-amd64 package (a netinst CD's installer \
             cannot boot from the network)"
        );
        let meta =
            std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
        let (form, version_info, identity) = if meta.is_dir() {
            // The directory itself, or its `text/` flavour (the package's amd64/).
            let root = [path.to_path_buf(), path.join("text")]
                .into_iter()
                .find(|r| r.join("debian-installer").is_dir())
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "{} has no debian-installer/ directory; {help}",
                        path.display()
                    )
                })?;
            let info = std::fs::read_to_string(root.join(NETBOOT_VERSION)).map_err(|_| {
                anyhow::anyhow!("{} has no {NETBOOT_VERSION}; {help}", root.display())
            })?;
            let mut identity = format!("netboot dir {}", root.display());
            for f in NETBOOT_FILES {
                if let Ok(m) = std::fs::metadata(root.join(f)) {
                    identity.push_str(&format!(" {f}={}:{}", m.len(), mtime_ns(&m)));
                }
            }
            (NetbootForm::Dir(root), info, identity)
        } else {
            if isoread::check_header(path).is_ok() {
                bail!("{} is an ISO image; {help}", path.display());
            }
            let info = read_from_tar(path, &[NETBOOT_VERSION], None)
                .with_context(|| format!("reading {}; {help}", path.display()))?
                .remove(NETBOOT_VERSION)
                .ok_or_else(|| {
                    anyhow::anyhow!("{} holds no {NETBOOT_VERSION}; {help}", path.display())
                })?;
            let info = String::from_utf8_lossy(&info).into_owned();
            let mtime = mtime_ns(&meta);
            (
                NetbootForm::Tar,
                info,
                format!(
                    "netboot tar {} size={} mtime_ns={mtime}",
                    path.display(),
                    meta.len()
                ),
            )
        };
        let version = info_value(&version_info, "Debian version:").unwrap_or_default();
        if version.split_whitespace().next() != Some(major) {
            bail!(
                "{}: its {NETBOOT_VERSION} says \"Debian version: {}\", not {wanted}; {help}",
                path.display(),
                crate::escape::escape(&version)
            );
        }
        Ok(Netboot {
            path: path.to_path_buf(),
            form,
            identity: format!("{identity} {}", crate::escape::escape(version_info.trim())),
            version_info,
        })
    }

    /// What it is, for messages ("Debian 12 (bookworm), installer build 20230607+deb12u15").
    pub fn name(&self) -> String {
        let v = info_value(&self.version_info, "Debian version:").unwrap_or_default();
        let b = info_value(&self.version_info, "Installer build:").unwrap_or_default();
        crate::escape::escape(&format!("Debian {v}, installer build {b}")).into_owned()
    }

    /// Copies the `wanted` files (paths relative to the netboot root) that it has into
    /// `dir` under their base names; returns the ones copied.
    pub fn extract<'w>(&self, wanted: &[&'w str], dir: &Path) -> Result<Vec<&'w str>> {
        let mut got = Vec::new();
        match &self.form {
            NetbootForm::Dir(root) => {
                for w in wanted {
                    let src = root.join(w);
                    // A regular file (following the tree's own links): a directory or a
                    // dangling link counts as absent.
                    if std::fs::metadata(&src).is_ok_and(|m| m.is_file()) {
                        std::fs::copy(&src, dir.join(base_name(w)))
                            .with_context(|| format!("copying {}", src.display()))?;
                        got.push(*w);
                    }
                }
            }
            NetbootForm::Tar => {
                let files = read_from_tar(&self.path, wanted, Some(dir))
                    .with_context(|| format!("reading {}", self.path.display()))?;
                got.extend(wanted.iter().filter(|w| files.contains_key(**w)));
            }
        }
        Ok(got)
    }
}

/// The netboot files `hvseed pxe` may take (the identity of a directory covers them).
const NETBOOT_FILES: &[&str] = &[
    NETBOOT_VERSION,
    "debian-installer/amd64/linux",
    "debian-installer/amd64/initrd.gz",
    "debian-installer/amd64/bootnetx64.efi",
    "debian-installer/amd64/grubx64.efi",
];

/// A file's modification time in nanoseconds since the epoch (0 where the file system
/// gives none), part of a source's identity.
fn mtime_ns(meta: &std::fs::Metadata) -> u128 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

fn base_name(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

/// The value after `key` on its line of `version.info`.
fn info_value(info: &str, key: &str) -> Option<String> {
    info.lines()
        .find_map(|l| l.trim().strip_prefix(key).map(|v| v.trim().to_string()))
}

/// Reads the regular files `wanted` (relative paths, with or without a leading `./`
/// in the archive) from a `.tar.gz`: written into `into` under their base names, or
/// returned in memory when `into` is `None` (small files only).
fn read_from_tar(
    tar_gz: &Path,
    wanted: &[&str],
    into: Option<&Path>,
) -> Result<std::collections::BTreeMap<String, Vec<u8>>> {
    let f = std::fs::File::open(tar_gz)?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(std::io::BufReader::new(f)));
    let mut out = std::collections::BTreeMap::new();
    for entry in archive.entries().context("not a tar.gz archive")? {
        let mut entry = entry.context("a damaged tar.gz archive")?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let name = entry.path()?.to_string_lossy().into_owned();
        let name = name.trim_start_matches("./");
        let Some(w) = wanted.iter().find(|w| **w == name) else {
            continue;
        };
        match into {
            Some(dir) => {
                let dest = dir.join(base_name(w));
                let mut file = std::fs::File::create(&dest)
                    .with_context(|| format!("writing {}", dest.display()))?;
                std::io::copy(&mut entry, &mut file)
                    .with_context(|| format!("writing {}", dest.display()))?;
                out.insert(w.to_string(), Vec::new());
            }
            None => {
                let mut buf = Vec::new();
                (&mut entry).take(1 << 20).read_to_end(&mut buf)?;
                out.insert(w.to_string(), buf);
            }
        }
        if out.len() == wanted.len() {
            break;
        }
    }
    Ok(out)
}
