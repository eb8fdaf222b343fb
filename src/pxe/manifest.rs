//! The manifest of the last run, `DIR/.hvseed-pxe-manifest.json`: every file hvseed
//! wrote (path, SHA-256, size, mtime), per host the key of its inputs, and the sources
//! (ISO, local files, derived images) the tree was made from. Only files it lists are
//! ever replaced or removed, never anything a user put in the tree.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::sums::Digest;

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
        super::apply::write_atomic(&dir.join(MANIFEST), &bytes, 0o644)
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
    pub fn stale_files(&self, dir: &Path) -> HashSet<String> {
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

/// The last run as the tree records it: its manifest, and the files it lists that are
/// no longer as written.
#[derive(Debug, Default)]
pub struct LastRun {
    pub manifest: Manifest,
    /// Files of `manifest` that are missing or changed on disk ([`Manifest::stale_files`]).
    pub stale: HashSet<String>,
}

impl LastRun {
    /// Reads the manifest of `out` and looks at (`stat`) every file it lists; a tree
    /// that does not exist yet has an empty manifest.
    pub fn read(out: &Path) -> Result<LastRun> {
        if out.is_dir() {
            let manifest = Manifest::load(out)?;
            let stale = manifest.stale_files(out);
            Ok(LastRun { manifest, stale })
        } else {
            Ok(LastRun {
                manifest: Manifest::empty(),
                stale: HashSet::new(),
            })
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sums::sha256_bytes;

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
