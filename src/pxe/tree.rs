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
use sha2::{Digest as _, Sha256};

use super::beneath::{Beneath, FileStat};
pub use crate::sums::{sha256_bytes, sha256_file, sha256_reader, sha256sums, Digest};

/// The manifest's file name in the tree's root.
pub const MANIFEST: &str = ".hvseed-pxe-manifest.json";
/// The format written. Format 1 (hvseed before per-host file lists were dropped) is
/// still read: its hosts are then rendered again once, and files whose content did not
/// change are kept as they are.
pub const FORMAT: u32 = 2;
const FORMATS_READ: &[u32] = &[1, 2];

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Manifest {
    pub format: u32,
    /// Every file hvseed wrote, by path relative to the tree.
    #[serde(deserialize_with = "map_in_bulk")]
    pub files: BTreeMap<String, FileRecord>,
    /// Per host (FQDN): the key of everything its rendered files depend on and how
    /// many files it has (those under `http/hosts/<fqdn>/` and its boot loader files
    /// by MAC), so an unchanged host is not rendered again.
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

/// A relative path of plain names (no `..`, `.`, empty or absolute parts).
fn inside_tree(path: &str) -> bool {
    !path.is_empty()
        && path
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

/// Appends the decimal digits of `n`.
fn push_int(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    push_uint(out, n.unsigned_abs());
}

fn push_uint(out: &mut Vec<u8>, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// Reads a JSON object into a map built in one go (the manifest writes its keys
/// sorted) rather than by a search per key.
fn map_in_bulk<'de, D, V>(d: D) -> Result<BTreeMap<String, V>, D::Error>
where
    D: serde::Deserializer<'de>,
    V: Deserialize<'de>,
{
    struct Vis<V>(std::marker::PhantomData<V>);
    impl<'de, V: Deserialize<'de>> serde::de::Visitor<'de> for Vis<V> {
        type Value = BTreeMap<String, V>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a map of files")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut a: A,
        ) -> Result<Self::Value, A::Error> {
            let mut v: Vec<(String, V)> = Vec::with_capacity(a.size_hint().unwrap_or(0));
            while let Some(e) = a.next_entry()? {
                v.push(e);
            }
            Ok(v.into_iter().collect())
        }
    }
    d.deserialize_map(Vis(std::marker::PhantomData))
}

/// A file as hvseed wrote it. A file listed before it was written (so that an
/// interrupted run leaves nothing unaccounted for) has size `u64::MAX`, which no file
/// on disk matches. In the manifest: `[sha256, size, mtime, mtime_nsec]` (format 1
/// wrote an object with those names, which is still read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileRecord {
    pub sha256: Digest,
    pub size: u64,
    pub mtime: i64,
    pub mtime_nsec: i64,
}

impl Serialize for FileRecord {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (self.sha256, self.size, self.mtime, self.mtime_nsec).serialize(s)
    }
}

impl<'de> Deserialize<'de> for FileRecord {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(field_identifier, rename_all = "snake_case")]
        enum Field {
            Sha256,
            Size,
            Mtime,
            MtimeNsec,
        }
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = FileRecord;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("[sha256, size, mtime, mtime_nsec]")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<FileRecord, A::Error> {
                let missing = || serde::de::Error::custom("a file record needs 4 values");
                Ok(FileRecord {
                    sha256: a.next_element()?.ok_or_else(missing)?,
                    size: a.next_element()?.ok_or_else(missing)?,
                    mtime: a.next_element()?.ok_or_else(missing)?,
                    mtime_nsec: a.next_element()?.ok_or_else(missing)?,
                })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<FileRecord, A::Error> {
                let mut r = FileRecord::PENDING;
                let mut seen = 0;
                while let Some(k) = a.next_key::<Field>()? {
                    seen += 1;
                    match k {
                        Field::Sha256 => r.sha256 = a.next_value()?,
                        Field::Size => r.size = a.next_value()?,
                        Field::Mtime => r.mtime = a.next_value()?,
                        Field::MtimeNsec => r.mtime_nsec = a.next_value()?,
                    }
                }
                if seen != 4 {
                    return Err(serde::de::Error::custom("a file record needs 4 values"));
                }
                Ok(r)
            }
        }
        d.deserialize_any(V)
    }
}

impl FileRecord {
    /// The record of a path this run is about to create.
    pub const PENDING: FileRecord = FileRecord {
        sha256: Digest([0; 32]),
        size: u64::MAX,
        mtime: 0,
        mtime_nsec: 0,
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRecord {
    pub key: Digest,
    /// How many files the host has; 0 (also in a format-1 manifest) means render it
    /// again.
    #[serde(default)]
    pub count: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IsoRecord {
    pub identity: String,
    pub files: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceRecord {
    pub size: u64,
    pub mtime: i64,
    pub mtime_nsec: i64,
    pub sha256: Digest,
}

impl Manifest {
    /// The manifest of a tree hvseed has not written yet.
    pub fn empty() -> Manifest {
        Manifest {
            format: FORMAT,
            ..Manifest::default()
        }
    }

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
                if !FORMATS_READ.contains(&m.format) {
                    bail!(
                        "{}: manifest format {} is not one this hvseed reads ({FORMATS_READ:?}); \
                         this tree was written by another hvseed version: write it to a new \
                         directory",
                        p.display(),
                        m.format
                    );
                }
                // hvseed removes the files its manifest lists when they leave the tree:
                // a path that could point outside the tree is refused, not followed.
                let iso_files = m.iso.iter().flat_map(|r| r.files.iter());
                if let Some(bad) = m.files.keys().chain(iso_files).find(|f| !inside_tree(f)) {
                    bail!(
                        "{}: lists {bad:?}, which is not a path inside the tree; hvseed did not \
                         write this manifest: remove the directory (or the manifest) and run \
                         again",
                        p.display()
                    );
                }
                Ok(m)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Manifest::empty()),
            Err(e) => Err(e).with_context(|| format!("reading {}", p.display())),
        }
    }

    /// Writes the manifest unless it equals `on_disk`, what the tree's manifest holds
    /// now (as loaded, or as last saved by this run).
    pub fn save(&self, dir: &Path, on_disk: &Manifest) -> Result<()> {
        if self == on_disk && dir.join(MANIFEST).is_file() {
            return Ok(());
        }
        let bytes = self.to_json().context("serialising the manifest")?;
        write_atomic(&dir.join(MANIFEST), &bytes, 0o644)
    }

    /// The manifest as JSON, what `serde_json` would write for it; the file map (tens
    /// of thousands of records) is written directly, about twice as fast.
    fn to_json(&self) -> serde_json::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.files.len() * 130 + 4096);
        out.extend_from_slice(format!("{{\"format\":{},\"files\":{{", self.format).as_bytes());
        for (i, (path, r)) in self.files.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            serde_json::to_writer(&mut out, path)?;
            out.extend_from_slice(b":[\"");
            out.extend_from_slice(&r.sha256.hex_bytes());
            out.extend_from_slice(b"\",");
            push_uint(&mut out, r.size);
            out.push(b',');
            push_int(&mut out, r.mtime);
            out.push(b',');
            push_int(&mut out, r.mtime_nsec);
            out.push(b']');
        }
        out.extend_from_slice(b"},\"hosts\":");
        serde_json::to_writer(&mut out, &self.hosts)?;
        out.extend_from_slice(b",\"iso\":");
        serde_json::to_writer(&mut out, &self.iso)?;
        out.extend_from_slice(b",\"sources\":");
        serde_json::to_writer(&mut out, &self.sources)?;
        out.extend_from_slice(b",\"derived\":");
        serde_json::to_writer(&mut out, &self.derived)?;
        out.extend_from_slice(b",\"os_tree\":");
        serde_json::to_writer(&mut out, &self.os_tree)?;
        out.push(b'}');
        Ok(out)
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

    /// The recorded files that are no longer as hvseed wrote them: missing, or of
    /// another size, mtime or type (all of them when the tree cannot be read).
    pub fn stale_files(&self, dir: &Path) -> std::collections::HashSet<String> {
        let Ok(stat) = TreeStat::open(dir) else {
            return self.files.keys().cloned().collect();
        };
        // On every core: one `stat` per file, tens of thousands of them.
        let files: Vec<(&String, &FileRecord)> = self.files.iter().collect();
        crate::par::par_chunks(&files, 1024, |_, part| {
            part.iter()
                .filter(|(p, r)| !stat.matches(p, r))
                .map(|(p, _)| (*p).clone())
                .collect::<Vec<String>>()
        })
        .into_iter()
        .flatten()
        .collect()
    }
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

#[derive(Debug)]
pub struct Entry {
    pub want: Want,
    pub sha256: Digest,
    /// 0o644, or 0o755 for programs.
    pub mode: u32,
}

/// The whole tree as it should be: (relative path, entry), in the order added until
/// [`Desired::into_sorted`].
#[derive(Debug, Default)]
pub struct Desired {
    pub entries: Vec<(String, Entry)>,
}

impl Desired {
    pub fn bytes(&mut self, path: impl Into<String>, b: Vec<u8>) {
        let sha256 = sha256_bytes(&b);
        self.entries.push((
            path.into(),
            Entry {
                want: Want::Bytes(b),
                sha256,
                mode: 0o644,
            },
        ));
    }

    pub fn insert(&mut self, path: impl Into<String>, want: Want, sha256: Digest, mode: u32) {
        self.entries
            .push((path.into(), Entry { want, sha256, mode }));
    }

    /// The entries sorted by path; of a path added twice, the later entry.
    pub fn into_sorted(mut self) -> Vec<(String, Entry)> {
        // Reversed first, so that the stable sort puts the later of two equal paths
        // first and `dedup_by` keeps it.
        self.entries.reverse();
        self.entries.sort_by(|a, b| a.0.cmp(&b.0));
        self.entries.dedup_by(|later, earlier| later.0 == earlier.0);
        self.entries
    }
}

/// Adds file `path` with `bytes` to `desired` (sorted by path, without `path`) at its
/// place.
pub fn insert_sorted(desired: &mut Vec<(String, Entry)>, path: &str, bytes: Vec<u8>) {
    let at = desired.partition_point(|(p, _)| p.as_str() < path);
    debug_assert!(desired.get(at).is_none_or(|(p, _)| p != path));
    let sha256 = sha256_bytes(&bytes);
    let e = Entry {
        want: Want::Bytes(bytes),
        sha256,
        mode: 0o644,
    };
    desired.insert(at, (path.to_string(), e));
}

/// `stat`s files of the tree relative to directories opened once (for tens of
/// thousands of files, the kernel then walks two path components instead of the
/// whole absolute path each time).
pub struct TreeStat {
    root: std::os::fd::OwnedFd,
    /// `http/hosts` and `tftp`, when they exist.
    subdirs: Vec<(&'static str, std::os::fd::OwnedFd)>,
}

impl TreeStat {
    pub fn open(dir: &Path) -> Result<TreeStat> {
        use rustix::fs::{Mode, OFlags};
        let open = |p: &Path| {
            rustix::fs::open(
                p,
                OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
                Mode::empty(),
            )
        };
        let root = open(dir).with_context(|| format!("opening {}", dir.display()))?;
        let subdirs = ["http/hosts/", "tftp/"]
            .into_iter()
            .filter_map(|s| Some((s, open(&dir.join(s)).ok()?)))
            .collect();
        Ok(TreeStat { root, subdirs })
    }

    /// True when the file at `path` (relative to the tree) is a regular file with the
    /// size and mtime of `r`.
    pub fn matches(&self, path: &str, r: &FileRecord) -> bool {
        let (fd, rel) = self
            .subdirs
            .iter()
            .find_map(|(prefix, fd)| Some((fd, path.strip_prefix(prefix)?)))
            .unwrap_or((&self.root, path));
        rustix::fs::statat(fd, rel, rustix::fs::AtFlags::SYMLINK_NOFOLLOW).is_ok_and(|st| {
            rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::RegularFile
                && st.st_size as u64 == r.size
                && st.st_mtime == r.mtime
                && st.st_mtime_nsec as i64 == r.mtime_nsec
        })
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
/// content differs from what would be written), and a symbolic link (or a file) where
/// a directory of a path the run writes or removes should be: nothing is changed
/// then. Returns the new paths that do not exist yet, which [`apply`] then creates
/// without looking again.
pub fn check_foreign(
    tree: &Beneath,
    old: &Manifest,
    desired: &[(String, Entry)],
) -> Result<std::collections::HashSet<String>> {
    // Every directory the run may write in or remove from (kept files are not
    // touched): one `openat` per directory, in sorted order.
    let mut last_dir = None;
    let written = desired
        .iter()
        .filter(|(_, e)| !matches!(e.want, Want::Keep(_)))
        .map(|(p, _)| p);
    // The manifest's files no longer wanted: both lists are sorted, one pass.
    let mut wanted = desired.iter().map(|(p, _)| p.as_str()).peekable();
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
    let mut absent = std::collections::HashSet::new();
    for (path, e) in desired {
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
    stale: &std::collections::HashSet<String>,
    desired: Vec<(String, Entry)>,
    absent: &std::collections::HashSet<String>,
) -> Result<(BTreeMap<String, FileRecord>, Changes)> {
    let mut files: Vec<(String, FileRecord)> = Vec::with_capacity(desired.len());
    let mut changes = Changes::default();
    for (path, e) in desired {
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
    Ok((files.into_iter().collect(), changes))
}

/// Temporary files beside the files they replace: `.hvseed-tmp-` + the owner tag
/// ([`crate::interrupt::temp_prefix`]) + random characters.
pub const TMP_BASE: &str = super::beneath::TMP_PREFIX;

/// A temporary file in `parent`, on the interrupt list while the guard lives.
fn temp_beside(parent: &Path) -> Result<(tempfile::NamedTempFile, crate::interrupt::Guard)> {
    crate::interrupt::track(
        || {
            tempfile::Builder::new()
                .prefix(&crate::interrupt::temp_prefix(TMP_BASE))
                .tempfile_in(parent)
        },
        |t| vec![crate::interrupt::Item::Path(t.path().to_path_buf())],
    )
    .with_context(|| format!("creating a temporary file in {}", parent.display()))
}

/// Writes `bytes` to a temporary file beside `path` and renames it into place.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let parent = path.parent().unwrap_or(Path::new("."));
    let (mut tmp, _guard) = temp_beside(parent)?;
    tmp.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))?;
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(mode))?;
    tmp.persist(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_format_1_manifest_is_read_and_its_hosts_are_rendered_again() {
        let dir = tempfile::tempdir().unwrap();
        let sha = sha256_bytes(b"x").hex();
        let v1 = format!(
            r#"{{"format":1,"files":{{"a":{{"sha256":"{sha}","size":1,"mtime":2,"mtime_nsec":3}},
            "b":{{"sha256":"","size":18446744073709551615,"mtime":0,"mtime_nsec":0}}}},
            "hosts":{{"h.example.org":{{"key":"{sha}","files":["a"]}}}},"iso":null,
            "sources":{{}},"derived":{{}},"os_tree":null}}"#
        );
        std::fs::write(dir.path().join(MANIFEST), v1).unwrap();
        let m = Manifest::load(dir.path()).unwrap();
        assert_eq!(m.files["a"].sha256.hex(), sha);
        assert_eq!(
            (
                m.files["a"].size,
                m.files["a"].mtime,
                m.files["a"].mtime_nsec
            ),
            (1, 2, 3)
        );
        assert_eq!(m.files["b"], FileRecord::PENDING);
        // No file count: the host cannot be kept as it is.
        assert_eq!(m.hosts["h.example.org"].count, 0);
        // Saved and read back, it is the same.
        m.save(dir.path(), &Manifest::empty()).unwrap();
        let again = Manifest::load(dir.path()).unwrap();
        assert_eq!(again, m);
        let text = std::fs::read_to_string(dir.path().join(MANIFEST)).unwrap();
        assert!(text.contains(&format!(r#""a":["{sha}",1,2,3]"#)), "{text}");
        // Written directly, it is the JSON serde writes for it.
        assert_eq!(text, serde_json::to_string(&m).unwrap());
        let mut odd = m.clone();
        let r = FileRecord {
            size: u64::MAX,
            mtime: i64::MIN,
            mtime_nsec: 0,
            ..odd.files["a"]
        };
        odd.files.insert("quote\" back\\ nl\n tab\t é".into(), r);
        assert_eq!(odd.to_json().unwrap(), serde_json::to_vec(&odd).unwrap());
        for bad in ["../outside", "/etc/passwd", "a//b", "a/./b", ""] {
            let mut evil = m.clone();
            evil.files.insert(bad.into(), FileRecord::PENDING);
            std::fs::write(dir.path().join(MANIFEST), evil.to_json().unwrap()).unwrap();
            let e = Manifest::load(dir.path()).unwrap_err();
            assert!(
                format!("{e:#}").contains("not a path inside the tree"),
                "{e:#}"
            );
        }
        std::fs::write(dir.path().join(MANIFEST), r#"{"format":9}"#).unwrap();
        let e = Manifest::load(dir.path()).unwrap_err();
        assert!(format!("{e:#}").contains("format 9"), "{e:#}");
    }
}
