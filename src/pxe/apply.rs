//! Bringing the tree to what this run wants: the list of files it should hold
//! ([`Desired`], then [`Sorted`]), the refusal to replace files hvseed did not write,
//! the intent manifest written before anything else, and the writes themselves —
//! files rewritten only when their content changes (temporary file + rename, so a
//! reader never sees half a file), files that left the tree removed, and the staging
//! directory where large files (kernel, initrd, the package tree) are prepared and
//! moved in from.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use hvseed_plan::atomic::Flush;

use super::beneath::{Beneath, FileStat, TMP_PREFIX};
use super::manifest::{FileRecord, Manifest, FORMAT};
use crate::sums::{sha256_bytes, sha256_reader, Digest};

/// What a path of the tree should hold.
#[derive(Debug)]
pub enum Want {
    Bytes(Vec<u8>),
    /// A copy of a local file.
    Copy(PathBuf),
    /// A file prepared in the staging directory, moved into place.
    Move(PathBuf),
    /// What the previous run wrote (known unchanged on disk), as the manifest
    /// records it.
    Keep(FileRecord),
}

/// A file of the tree as it should be.
#[derive(Debug)]
pub struct Entry {
    /// Relative to the tree.
    pub path: String,
    pub want: Want,
    pub sha256: Digest,
    /// 0o644, or 0o755 for programs.
    pub mode: u32,
}

impl Entry {
    /// A file of `bytes`, mode 0o644.
    pub fn bytes(path: impl Into<String>, bytes: Vec<u8>) -> Entry {
        Entry {
            path: path.into(),
            sha256: sha256_bytes(&bytes),
            want: Want::Bytes(bytes),
            mode: 0o644,
        }
    }
}

/// The whole tree as it should be, in the order added until [`Desired::into_sorted`].
#[derive(Debug, Default)]
pub struct Desired {
    pub entries: Vec<Entry>,
}

impl Desired {
    pub fn bytes(&mut self, path: impl Into<String>, b: Vec<u8>) {
        self.entries.push(Entry::bytes(path, b));
    }

    pub fn insert(&mut self, path: impl Into<String>, want: Want, sha256: Digest, mode: u32) {
        self.entries.push(Entry {
            path: path.into(),
            want,
            sha256,
            mode,
        });
    }

    /// The entries sorted by path; of a path added twice, the later entry.
    pub fn into_sorted(mut self) -> Sorted {
        // Reversed first, so that the stable sort puts the later of two equal paths
        // first and `dedup_by` keeps it.
        self.entries.reverse();
        self.entries.sort_by(|a, b| a.path.cmp(&b.path));
        self.entries
            .dedup_by(|later, earlier| later.path == earlier.path);
        Sorted(self.entries)
    }
}

/// The whole tree as it should be, sorted by path, one entry a path.
#[derive(Debug)]
pub struct Sorted(Vec<Entry>);

impl Sorted {
    /// Adds file `path` with `bytes` (a path not in the tree yet) at its place.
    pub fn insert_bytes(&mut self, path: &str, bytes: Vec<u8>) {
        let at = self.0.partition_point(|e| e.path.as_str() < path);
        debug_assert!(self.0.get(at).is_none_or(|e| e.path != path));
        self.0.insert(at, Entry::bytes(path, bytes));
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Entry> {
        self.0.iter()
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

/// The files a run wrote or kept, and what changed.
#[derive(Debug)]
pub struct Applied {
    /// The new manifest's file records.
    pub files: BTreeMap<String, FileRecord>,
    pub changes: Changes,
}

/// Refuses to overwrite files hvseed did not write (paths not in the manifest whose
/// content differs from what would be written), and a symbolic link (or a file) where
/// a directory of a path the run writes or removes should be: nothing is changed
/// then. Returns the new paths that do not exist yet, which [`apply`] then creates
/// without looking again.
pub fn check_foreign(tree: &Beneath, old: &Manifest, desired: &Sorted) -> Result<HashSet<String>> {
    // Every directory the run may write in or remove from (kept files are not
    // touched): one `openat` per directory, in sorted order.
    let mut last_dir = None;
    let written = desired
        .iter()
        .filter(|e| !matches!(e.want, Want::Keep(_)))
        .map(|e| &e.path);
    // The manifest's files no longer wanted: both lists are sorted, one pass.
    let mut wanted = desired.iter().map(|e| e.path.as_str()).peekable();
    let removed = old.files.keys().filter(move |p| {
        while wanted.next_if(|w| *w < p.as_str()).is_some() {}
        wanted.peek() != Some(&p.as_str())
    });
    for path in written.chain(removed) {
        let d = path.rsplit_once('/').map_or("", |(d, _)| d);
        if last_dir != Some(d) {
            tree.check_dirs(path)?;
            last_dir = Some(d);
        }
    }
    let mut foreign = Vec::new();
    let mut absent = HashSet::new();
    for e in desired.iter() {
        let path = &e.path;
        if matches!(e.want, Want::Keep(_)) || old.files.contains_key(path) {
            continue;
        }
        match tree.lstat(path)? {
            None => {
                absent.insert(path.clone());
            }
            Some(m) if m.kind == rustix::fs::FileType::RegularFile => {
                let f = tree.open_file(path)?;
                if f.map(|f| sha256_reader(f, &tree.show(path))).transpose()? != Some(e.sha256) {
                    foreign.push(path.clone());
                }
            }
            Some(_) => foreign.push(path.clone()),
        }
    }
    if !foreign.is_empty() {
        let shown: Vec<&str> = foreign.iter().take(5).map(String::as_str).collect();
        bail!(
            "{}: {} file(s) that hvseed did not write would be replaced ({}{}); nothing was \
             changed. Move them away or write the tree to another --out directory",
            tree.path().display(),
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

/// Brings the tree to `desired` (sorted by path, see [`Desired::into_sorted`]);
/// returns the new file records and what changed. `stale`: the manifest's files that
/// are no longer as written ([`Manifest::stale_files`]); `absent`: new paths
/// [`check_foreign`] found missing.
pub fn apply(
    tree: &Beneath,
    old: &Manifest,
    stale: &HashSet<String>,
    desired: Sorted,
    absent: &HashSet<String>,
) -> Result<Applied> {
    let mut files: Vec<(String, FileRecord)> = Vec::with_capacity(desired.0.len());
    let mut changes = Changes::default();
    for e in desired.0 {
        let path = e.path;
        if let Want::Keep(r) = e.want {
            files.push((path, r));
            changes.unchanged += 1;
            continue;
        }
        if let Some(r) = old.files.get(&path) {
            if r.sha256 == e.sha256 && !stale.contains(&path) {
                files.push((path, *r));
                changes.unchanged += 1;
                continue;
            }
        }
        let existing = if absent.contains(&path) {
            None
        } else {
            tree.open_file(&path)?
        };
        // Something else there (a link, say, in place of a file of the manifest's) is
        // replaced by renaming over it, never written through.
        let exists =
            existing.is_some() || (!absent.contains(&path) && tree.lstat(&path)?.is_some());
        // Same content already there (e.g. a file the manifest lost track of, or one
        // touched without being changed): record it, do not rewrite it.
        if let Some(f) = existing {
            if sha256_reader(&f, &tree.show(&path))? == e.sha256 {
                let m = f.metadata()?;
                if m.permissions().mode() & 0o777 != e.mode {
                    f.set_permissions(fs::Permissions::from_mode(e.mode))?;
                }
                files.push((path.clone(), record_of(&f.metadata()?, e.sha256)));
                changes.unchanged += 1;
                continue;
            }
        }
        let st = match e.want {
            // A new path: no reader can be holding an older version, so the file is
            // written in place (an interrupted run leaves it listed in the manifest with
            // no hash, so the next run rewrites it).
            Want::Bytes(b) if !exists => tree.write_new(&path, &b, e.mode)?,
            Want::Bytes(b) => tree.write_atomic(&path, &b, e.mode, false)?,
            Want::Copy(src) => tree.copy_atomic(&src, &path, e.mode)?,
            Want::Move(src) => {
                fs::set_permissions(&src, fs::Permissions::from_mode(e.mode))
                    .with_context(|| format!("chmod {}", src.display()))?;
                tree.move_in(&src, &path)?;
                tree.lstat(&path)?
                    .with_context(|| format!("{} vanished", tree.show(&path).display()))?
            }
            Want::Keep(_) => unreachable!(),
        };
        files.push((path.clone(), record_of_stat(&st, e.sha256)));
        if exists {
            changes.updated.push(path);
        } else {
            changes.added.push(path);
        }
    }
    // The manifest's files that are no longer wanted: both lists are sorted, so one
    // pass over them side by side finds them.
    let mut wanted = files.iter().map(|(p, _)| p.as_str()).peekable();
    for path in old.files.keys() {
        while wanted.next_if(|w| *w < path.as_str()).is_some() {}
        if wanted.peek() == Some(&path.as_str()) {
            continue;
        }
        tree.remove_file(path)?;
        tree.prune_empty_parents(path);
        changes.removed.push(path.clone());
    }
    // Sorted already: the map is built without a search per path.
    Ok(Applied {
        files: files.into_iter().collect(),
        changes,
    })
}

fn record_of_stat(st: &FileStat, sha256: Digest) -> FileRecord {
    FileRecord {
        sha256,
        size: st.size,
        mtime: st.mtime,
        mtime_nsec: st.mtime_nsec,
    }
}

fn record_of(m: &fs::Metadata, sha256: Digest) -> FileRecord {
    FileRecord {
        sha256,
        size: m.len(),
        mtime: m.mtime(),
        mtime_nsec: m.mtime_nsec(),
    }
}

/// Writes `bytes` to a temporary file beside `path` and renames it into place (see
/// [`hvseed_plan::atomic`]; not flushed to disk: the next run checks it).
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let parent = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .with_context(|| format!("writing {}: not a file name", path.display()))?;
    let dir = fs::File::open(parent).with_context(|| format!("opening {}", parent.display()))?;
    let (mut tmp, _guard) = super::beneath::temp_file(dir.as_fd(), parent, 0o600)?;
    tmp.file()
        .write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))?;
    tmp.file()
        .set_permissions(fs::Permissions::from_mode(mode))
        .with_context(|| format!("writing {}", path.display()))?;
    tmp.commit(name, Flush::Later)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// The staging directory in DIR (then the owner tag). It exists for the whole time a
/// run writes DIR, so one left behind by a run that no longer exists says that run
/// was killed and may also have left `.hvseed-tmp-*` files in the tree.
const STAGING_BASE: &str = ".hvseed-staging-";

/// Removes the temporaries a killed run of hvseed (SIGKILL, a power cut) left in
/// `out`: its staging directory and, if there was one, its `.hvseed-tmp-*` files
/// anywhere in the tree. A user's files and a running hvseed's are kept.
pub fn remove_stale_temporaries(out: &Path) {
    let stale = crate::interrupt::remove_stale(out, STAGING_BASE, "");
    // The manifest is written with `.hvseed-tmp-` files in DIR itself, also outside
    // the staging directory's lifetime.
    crate::interrupt::remove_stale(out, TMP_PREFIX, "");
    if stale.is_empty() {
        return;
    }
    let dirs = walkdir::WalkDir::new(out)
        .min_depth(1)
        .into_iter()
        .filter_entry(|e| e.file_type().is_dir())
        .filter_map(|e| e.ok());
    for d in dirs {
        crate::interrupt::remove_stale(d.path(), TMP_PREFIX, "");
    }
}

/// This run's staging directory in `out`, on the interrupt list while the guard lives.
pub fn staging_dir(out: &Path) -> Result<(tempfile::TempDir, crate::interrupt::Guard)> {
    crate::interrupt::temp_dir_in(out, STAGING_BASE)
        .with_context(|| format!("creating a staging directory in {}", out.display()))
}

/// Before writing, lists every path this run may create in the manifest of `out`, so
/// that an interrupted run leaves nothing the next run would take for a user's file.
/// (Kept files are in the manifest already.) Returns the manifest written, if one was.
pub fn save_intent(
    out: &Path,
    old: &Manifest,
    desired: &Sorted,
    os_tree: Option<&String>,
) -> Result<Option<Manifest>> {
    if !desired
        .iter()
        .any(|e| !matches!(e.want, Want::Keep(_)) && !old.files.contains_key(&e.path))
    {
        return Ok(None);
    }
    let mut m = Manifest {
        format: FORMAT,
        ..old.clone()
    };
    for e in desired.iter() {
        m.files.entry(e.path.clone()).or_insert(FileRecord::PENDING);
    }
    m.os_tree = m.os_tree.or(os_tree.cloned());
    m.save(out, old)?;
    Ok(Some(m))
}

/// What happens to http/os once every check passed.
pub enum OsMove {
    /// The new package tree, extracted in the staging directory, goes in.
    Install(PathBuf),
    /// No host installs from the CD any more: hvseed's package tree goes.
    Remove,
}

impl OsMove {
    /// Moves the package tree in or out of `os_dir`; the old tree goes to the staging
    /// directory, which is removed at the end (without following a link).
    pub fn apply(self, tree: &Beneath, os_dir: &str, staging: &Path) -> Result<()> {
        match self {
            OsMove::Install(new) => {
                let dest = tree.show(os_dir);
                // An interrupt waits until the new tree is in place (http/os is never
                // missing).
                let _whole = crate::interrupt::critical();
                tree.move_out(os_dir, &staging.join("os-old"))
                    .with_context(|| format!("moving the old {} away", dest.display()))?;
                tree.move_in(&new, os_dir)
                    .with_context(|| format!("moving the package tree to {}", dest.display()))
            }
            OsMove::Remove => {
                tree.move_out(os_dir, &staging.join("os-gone"))?;
                Ok(())
            }
        }
    }
}
