//! Writing the PXE tree incrementally: a manifest of every file hvseed wrote (path,
//! SHA-256, size, mtime), files rewritten only when their content changes (temp file +
//! rename, so a reader never sees half a file), files that left the tree removed —
//! only ever files the manifest lists, never anything a user put there.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The manifest's file name in the tree's root.
pub const MANIFEST: &str = ".hvseed-pxe-manifest.json";
const FORMAT: u32 = 1;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    /// Every file hvseed wrote, by path relative to the tree.
    pub files: BTreeMap<String, FileRecord>,
    /// Per host (FQDN): the key of everything its rendered files depend on, and those
    /// files, so an unchanged host is not rendered again.
    pub hosts: BTreeMap<String, HostRecord>,
    /// The ISO the boot files were extracted from.
    pub iso: Option<IsoRecord>,
    /// SHA-256 of local source files (pxelinux.0, the agent, ...) by path, valid while
    /// their size and mtime are unchanged.
    pub sources: BTreeMap<String, SourceRecord>,
    /// Files built by hvseed (the GRUB EFI image) by tree path, with what they were
    /// built from.
    pub derived: BTreeMap<String, String>,
    /// The package tree extracted under http/os (its own stamp lists its files).
    pub os_tree: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    pub sha256: String,
    pub size: u64,
    pub mtime: i64,
    pub mtime_nsec: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostRecord {
    pub key: String,
    pub files: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IsoRecord {
    pub identity: String,
    pub files: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SourceRecord {
    pub size: u64,
    pub mtime: i64,
    pub mtime_nsec: i64,
    pub sha256: String,
}

impl Manifest {
    /// Reads `DIR/.hvseed-pxe-manifest.json`; an absent one is an empty manifest.
    pub fn load(dir: &Path) -> Result<Manifest> {
        let p = dir.join(MANIFEST);
        match fs::read(&p) {
            Ok(bytes) => {
                let m: Manifest = serde_json::from_slice(&bytes).with_context(|| {
                    format!(
                        "reading {}: not a manifest hvseed can read; if the tree is damaged, \
                         remove the directory and run again",
                        p.display()
                    )
                })?;
                if m.format != FORMAT {
                    bail!(
                        "{}: manifest format {} is not {FORMAT}; this tree was written by \
                         another hvseed version: write it to a new directory",
                        p.display(),
                        m.format
                    );
                }
                Ok(m)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Manifest {
                format: FORMAT,
                ..Manifest::default()
            }),
            Err(e) => Err(e).with_context(|| format!("reading {}", p.display())),
        }
    }

    pub fn save(&self, dir: &Path) -> Result<()> {
        let bytes = serde_json::to_vec(self).context("serialising the manifest")?;
        let path = dir.join(MANIFEST);
        if fs::read(&path).is_ok_and(|old| old == bytes) {
            return Ok(());
        }
        write_atomic(&path, &bytes, 0o644)
    }

    /// True when the local source file `src` was used by the last run and still has
    /// the size and mtime it had then.
    pub fn source_unchanged(&self, src: &Path) -> bool {
        let key = src.to_string_lossy();
        self.sources.get(key.as_ref()).is_some_and(|r| {
            fs::metadata(src).is_ok_and(|m| {
                m.len() == r.size && m.mtime() == r.mtime && m.mtime_nsec() == r.mtime_nsec
            })
        })
    }

    /// True when `path` is in the manifest and the file on disk still has the size and
    /// mtime recorded when hvseed wrote it.
    pub fn unchanged_on_disk(&self, dir: &Path, path: &str) -> bool {
        self.files
            .get(path)
            .is_some_and(|r| stat_matches(&dir.join(path), r))
    }
}

pub fn stat_matches(full: &Path, r: &FileRecord) -> bool {
    fs::symlink_metadata(full).is_ok_and(|m| {
        m.is_file() && m.len() == r.size && m.mtime() == r.mtime && m.mtime_nsec() == r.mtime_nsec
    })
}

fn record(full: &Path, sha256: String) -> Result<FileRecord> {
    let m = fs::metadata(full).with_context(|| format!("reading {}", full.display()))?;
    Ok(record_of(&m, sha256))
}

fn record_of(m: &fs::Metadata, sha256: String) -> FileRecord {
    FileRecord {
        sha256,
        size: m.len(),
        mtime: m.mtime(),
        mtime_nsec: m.mtime_nsec(),
    }
}

pub fn hex(bytes: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(H[(b >> 4) as usize] as char);
        s.push(H[(b & 15) as usize] as char);
    }
    s
}

pub fn sha256_bytes(b: &[u8]) -> String {
    hex(&Sha256::digest(b))
}

pub fn sha256_file(p: &Path) -> Result<String> {
    let mut f = fs::File::open(p).with_context(|| format!("reading {}", p.display()))?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).with_context(|| format!("reading {}", p.display()))?;
    Ok(hex(&h.finalize()))
}

/// What a path of the tree should hold.
#[derive(Debug)]
pub enum Want {
    Bytes(Vec<u8>),
    /// A copy of a local file.
    Copy(PathBuf),
    /// A file prepared in the staging directory, moved into place.
    Move(PathBuf),
    /// What the previous run wrote (known unchanged on disk).
    Keep,
}

#[derive(Debug)]
pub struct Entry {
    pub want: Want,
    pub sha256: String,
    /// 0o644, or 0o755 for programs.
    pub mode: u32,
}

/// The whole tree as it should be, by relative path.
#[derive(Debug, Default)]
pub struct Desired {
    pub entries: BTreeMap<String, Entry>,
}

impl Desired {
    pub fn bytes(&mut self, path: impl Into<String>, b: Vec<u8>) {
        let sha256 = sha256_bytes(&b);
        self.entries.insert(
            path.into(),
            Entry {
                want: Want::Bytes(b),
                sha256,
                mode: 0o644,
            },
        );
    }

    pub fn insert(&mut self, path: impl Into<String>, want: Want, sha256: String, mode: u32) {
        self.entries
            .insert(path.into(), Entry { want, sha256, mode });
    }
}

/// What a run changed.
#[derive(Debug, Default)]
pub struct Changes {
    pub added: Vec<String>,
    pub updated: Vec<String>,
    pub removed: Vec<String>,
    pub unchanged: usize,
}

/// Refuses to overwrite files hvseed did not write (paths not in the manifest whose
/// content differs from what would be written). Returns the new paths that do not
/// exist yet, which [`apply`] then creates without looking again.
pub fn check_foreign(
    dir: &Path,
    old: &Manifest,
    desired: &Desired,
) -> Result<std::collections::HashSet<String>> {
    let mut foreign = Vec::new();
    let mut absent = std::collections::HashSet::new();
    for (path, e) in &desired.entries {
        if old.files.contains_key(path) {
            continue;
        }
        let full = dir.join(path);
        match fs::symlink_metadata(&full) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                absent.insert(path.clone());
            }
            Err(_) => {}
            Ok(m) if m.is_file() => {
                if sha256_file(&full)? != e.sha256 {
                    foreign.push(path.clone());
                }
            }
            Ok(_) => foreign.push(path.clone()),
        }
    }
    if !foreign.is_empty() {
        let shown: Vec<&str> = foreign.iter().take(5).map(String::as_str).collect();
        bail!(
            "{}: {} file(s) that hvseed did not write would be replaced ({}{}); nothing was \
             changed. Move them away or write the tree to another --out directory",
            dir.display(),
            foreign.len(),
            shown.join(", "),
            if foreign.len() > shown.len() {
                ", ..."
            } else {
                ""
            }
        );
    }
    Ok(absent)
}

/// Brings the tree to `desired`; returns the new file records and what changed.
/// `absent`: new paths [`check_foreign`] found missing.
pub fn apply(
    dir: &Path,
    old: &Manifest,
    desired: Desired,
    absent: &std::collections::HashSet<String>,
) -> Result<(BTreeMap<String, FileRecord>, Changes)> {
    let mut files = BTreeMap::new();
    let mut changes = Changes::default();
    let mut made_dirs = std::collections::HashSet::new();
    for (path, e) in desired.entries {
        let full = dir.join(&path);
        if let Want::Keep = e.want {
            let r = old
                .files
                .get(&path)
                .with_context(|| format!("internal: {path} kept but not in the manifest"))?;
            files.insert(path, r.clone());
            changes.unchanged += 1;
            continue;
        }
        if let Some(r) = old.files.get(&path) {
            if r.sha256 == e.sha256 && stat_matches(&full, r) {
                files.insert(path, r.clone());
                changes.unchanged += 1;
                continue;
            }
        }
        let exists = !absent.contains(&path) && full.is_file();
        // Same content already there (e.g. a file the manifest lost track of, or one
        // touched without being changed): record it, do not rewrite it.
        if exists && sha256_file(&full)? == e.sha256 {
            let m = fs::metadata(&full)?;
            if m.permissions().mode() & 0o777 != e.mode {
                fs::set_permissions(&full, fs::Permissions::from_mode(e.mode))?;
            }
            files.insert(path.clone(), record(&full, e.sha256)?);
            changes.unchanged += 1;
            continue;
        }
        if let Some(parent) = full.parent() {
            if !made_dirs.contains(parent) {
                fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
                made_dirs.insert(parent.to_path_buf());
            }
        }
        let record = match e.want {
            // A new path: no reader can be holding an older version, so the file is
            // written in place (an interrupted run leaves it listed in the manifest with
            // no hash, so the next run rewrites it).
            Want::Bytes(b) if !exists => {
                let m = write_new(&full, &b, e.mode)?;
                record_of(&m, e.sha256)
            }
            Want::Bytes(b) => {
                write_atomic(&full, &b, e.mode)?;
                record(&full, e.sha256)?
            }
            Want::Copy(src) => {
                copy_atomic(&src, &full, e.mode)?;
                record(&full, e.sha256)?
            }
            Want::Move(src) => {
                fs::set_permissions(&src, fs::Permissions::from_mode(e.mode))
                    .with_context(|| format!("chmod {}", src.display()))?;
                fs::rename(&src, &full)
                    .with_context(|| format!("moving {} to {}", src.display(), full.display()))?;
                record(&full, e.sha256)?
            }
            Want::Keep => unreachable!(),
        };
        files.insert(path.clone(), record);
        if exists {
            changes.updated.push(path);
        } else {
            changes.added.push(path);
        }
    }
    for path in old.files.keys() {
        if files.contains_key(path) {
            continue;
        }
        let full = dir.join(path);
        match fs::remove_file(&full) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("removing {}", full.display())),
        }
        prune_empty_parents(dir, &full);
        changes.removed.push(path.clone());
    }
    Ok((files, changes))
}

/// Removes the directories above `removed` that are now empty, up to (not including)
/// the tree's root.
fn prune_empty_parents(root: &Path, removed: &Path) {
    let mut p = removed.parent();
    while let Some(d) = p {
        if d == root || !d.starts_with(root) || fs::remove_dir(d).is_err() {
            break;
        }
        p = d.parent();
    }
}

/// Creates `path` (which must not exist) with `bytes`; returns its metadata.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<fs::Metadata> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))?;
    // The umask may have taken bits the TFTP/HTTP servers need.
    let m = f.metadata()?;
    if m.permissions().mode() & 0o777 != mode {
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        return Ok(f.metadata()?);
    }
    Ok(m)
}

/// Writes `bytes` to a temporary file beside `path` and renames it into place.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let parent = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".hvseed-tmp-")
        .tempfile_in(parent)
        .with_context(|| format!("creating a temporary file in {}", parent.display()))?;
    tmp.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))?;
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(mode))?;
    tmp.persist(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn copy_atomic(src: &Path, path: &Path, mode: u32) -> Result<()> {
    let parent = path.parent().unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".hvseed-tmp-")
        .tempfile_in(parent)
        .with_context(|| format!("creating a temporary file in {}", parent.display()))?;
    fs::copy(src, tmp.path())
        .with_context(|| format!("copying {} to {}", src.display(), path.display()))?;
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(mode))?;
    tmp.persist(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// `SHA256SUMS` in the format `sha256sum -c` reads (names with a backslash or newline
/// escaped the way GNU coreutils does).
pub fn sha256sums(sums: &BTreeMap<String, String>) -> Vec<u8> {
    let mut s = String::new();
    for (path, sha) in sums {
        if path.contains('\\') || path.contains('\n') {
            let esc = path.replace('\\', "\\\\").replace('\n', "\\n");
            s.push_str(&format!("\\{sha}  {esc}\n"));
        } else {
            s.push_str(&format!("{sha}  {path}\n"));
        }
    }
    s.into_bytes()
}
