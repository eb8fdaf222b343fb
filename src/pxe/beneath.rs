//! Writing inside a directory without ever leaving it, whatever it contains.
//!
//! Every file `hvseed pxe` and `hvseed serve` create, replace, move or remove under
//! their DIR goes through [`Beneath`]: it holds DIR open and reaches a path one
//! component at a time with `openat(…, O_NOFOLLOW | O_DIRECTORY)`, so a symbolic link
//! (or anything but a directory) where a directory of the path should be is refused
//! with a message naming it, never followed. The last component is never followed
//! either: files are created with `O_EXCL | O_NOFOLLOW`, replaced by renaming a
//! temporary file over the name ([`hvseed_plan::atomic`]: a link there is replaced,
//! not its target), removed with `unlinkat`. (`openat2(RESOLVE_BENEATH)` would do the walk in the
//! kernel, but only from Linux 5.6 on.)
//!
//! DIR itself is what the user named: it may be a link to the real directory.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{anyhow, bail, Context, Result};
use hvseed_plan::atomic::{Flush, Pending};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat, CWD};
use rustix::io::Errno;

/// The prefix of temporary files beside the file they replace.
pub const TMP_PREFIX: &str = ".hvseed-tmp-";

/// A directory that writes never leave (see the module's documentation).
pub struct Beneath {
    root: OwnedFd,
    path: PathBuf,
    /// The directories of the last path reached, outermost first, open: paths reached
    /// in sorted order (as the tree's are written) cost one `openat` per new directory.
    stack: Mutex<Vec<(String, OwnedFd)>>,
}

impl std::fmt::Debug for Beneath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Beneath").field("path", &self.path).finish()
    }
}

fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

/// The directory part and the name of a relative path (`a/b/c` → `a/b`, `c`).
fn split(rel: &str) -> (&str, &str) {
    match rel.rsplit_once('/') {
        Some((d, n)) => (d, n),
        None => ("", rel),
    }
}

fn check_rel(rel: &str) -> Result<()> {
    if rel.is_empty()
        || rel
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
    {
        bail!("{rel:?} is not a plain relative path");
    }
    Ok(())
}

/// A file's record: regular file, size and modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStat {
    pub kind: FileType,
    pub size: u64,
    pub mtime: i64,
    pub mtime_nsec: i64,
    pub mode: u32,
}

impl From<Stat> for FileStat {
    fn from(st: Stat) -> FileStat {
        FileStat {
            kind: FileType::from_raw_mode(st.st_mode),
            size: st.st_size as u64,
            mtime: st.st_mtime,
            mtime_nsec: st.st_mtime_nsec as i64,
            mode: st.st_mode & 0o7777,
        }
    }
}

impl Beneath {
    /// Opens DIR (which must exist and be a directory).
    pub fn open(path: &Path) -> Result<Beneath> {
        let root = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .with_context(|| format!("opening {}", path.display()))?;
        Ok(Beneath {
            root,
            path: path.to_path_buf(),
            stack: Mutex::new(Vec::new()),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// DIR/rel, for messages.
    pub fn show(&self, rel: &str) -> PathBuf {
        if rel.is_empty() {
            self.path.clone()
        } else {
            self.path.join(rel)
        }
    }

    /// Why `name` in `parent` (reached as `rel`) cannot be walked through.
    fn refusal(&self, parent: BorrowedFd<'_>, name: &str, rel: &str, err: Errno) -> anyhow::Error {
        let shown = self.show(rel);
        match rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Symlink => {
                let target = rustix::fs::readlinkat(parent, name, Vec::new())
                    .map(|t| format!(" (to {})", t.to_string_lossy()))
                    .unwrap_or_default();
                anyhow!(
                    "{} is a symbolic link{target}; hvseed writes only inside {} and never \
                     follows a link there: remove the link (rm {}) and run again",
                    shown.display(),
                    self.path.display(),
                    shown.display()
                )
            }
            Ok(_) => anyhow!(
                "{} is not a directory, but hvseed needs a directory there: move it away and \
                 run again",
                shown.display()
            ),
            Err(_) => anyhow!("opening {}: {err}", shown.display()),
        }
    }

    /// Drops the open handles of `rel` and what is under it (it is being moved or
    /// removed).
    fn forget(&self, rel: &str) {
        self.stack
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(p, _)| p != rel && !p.starts_with(&format!("{rel}/")));
    }

    /// The directory `rel` ("" for DIR), created (mode 0755) where missing when
    /// `create`; `None` when it does not exist and `create` is false. A symbolic link
    /// or other non-directory on the way is an error.
    pub fn dir(&self, rel: &str, create: bool) -> Result<Option<OwnedFd>> {
        if rel.is_empty() {
            return Ok(Some(self.root.try_clone()?));
        }
        check_rel(rel)?;
        let mut stack = self.stack.lock().unwrap_or_else(|p| p.into_inner());
        // Keep the open ancestors of `rel`.
        while let Some((top, _)) = stack.last() {
            if rel == top || rel.starts_with(&format!("{top}/")) {
                break;
            }
            stack.pop();
        }
        if let Some((top, fd)) = stack.last() {
            if top == rel {
                return Ok(Some(fd.try_clone()?));
            }
        }
        let done = stack.last().map_or(0, |(top, _)| top.len() + 1);
        for comp in rel[done..].split('/') {
            let here = match stack.last() {
                Some((top, _)) => format!("{top}/{comp}"),
                None => comp.to_string(),
            };
            let parent = stack.last().map_or(self.root.as_fd(), |(_, fd)| fd.as_fd());
            let fd = match rustix::fs::openat(parent, comp, dir_flags(), Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::NOENT) if create => {
                    match rustix::fs::mkdirat(parent, comp, Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => {
                            return Err(e).with_context(|| {
                                format!("creating {}", self.show(&here).display())
                            })
                        }
                    }
                    rustix::fs::openat(parent, comp, dir_flags(), Mode::empty())
                        .map_err(|e| self.refusal(parent, comp, &here, e))?
                }
                Err(Errno::NOENT) => return Ok(None),
                Err(e) => return Err(self.refusal(parent, comp, &here, e)),
            };
            stack.push((here, fd));
        }
        Ok(Some(stack.last().expect("pushed above").1.try_clone()?))
    }

    /// Checks that every directory of `rel` that exists is a real directory (no link).
    pub fn check_dirs(&self, rel: &str) -> Result<()> {
        let (d, _) = split(rel);
        self.dir(d, false).map(|_| ())
    }

    /// The file `rel`'s record without following a link; `None` when it (or a
    /// directory above it) does not exist.
    pub fn lstat(&self, rel: &str) -> Result<Option<FileStat>> {
        check_rel(rel)?;
        let (d, name) = split(rel);
        let Some(dir) = self.dir(d, false)? else {
            return Ok(None);
        };
        match rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(st.into())),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", self.show(rel).display())),
        }
    }

    /// Opens the regular file `rel` for reading; `None` when it is missing, or is not
    /// a regular file (a link included: it is not followed).
    pub fn open_file(&self, rel: &str) -> Result<Option<File>> {
        check_rel(rel)?;
        let (d, name) = split(rel);
        let Some(dir) = self.dir(d, false)? else {
            return Ok(None);
        };
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
        match rustix::fs::openat(&dir, name, flags, Mode::empty()) {
            Ok(fd) => {
                let f = File::from(fd);
                let m = f
                    .metadata()
                    .with_context(|| format!("reading {}", self.show(rel).display()))?;
                Ok(m.is_file().then_some(f))
            }
            Err(Errno::NOENT | Errno::LOOP | Errno::NXIO) => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", self.show(rel).display())),
        }
    }

    /// Reads the regular file `rel` whole (see [`Beneath::open_file`]).
    pub fn read(&self, rel: &str) -> Result<Option<Vec<u8>>> {
        let Some(mut f) = self.open_file(rel)? else {
            return Ok(None);
        };
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut f, &mut v)
            .with_context(|| format!("reading {}", self.show(rel).display()))?;
        Ok(Some(v))
    }

    /// Creates `rel`, which must not exist, with `bytes` and `mode`; returns its
    /// record. Missing directories are created.
    pub fn write_new(&self, rel: &str, bytes: &[u8], mode: u32) -> Result<FileStat> {
        check_rel(rel)?;
        let (d, name) = split(rel);
        let dir = self.dir(d, true)?.expect("created");
        let shown = || self.show(rel).display().to_string();
        let fd = rustix::fs::openat(
            &dir,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode),
        )
        .with_context(|| format!("creating {}", shown()))?;
        let mut f = File::from(fd);
        f.write_all(bytes)
            .with_context(|| format!("writing {}", shown()))?;
        finish(&f, mode).with_context(|| format!("writing {}", shown()))
    }

    /// Writes `rel` atomically: a temporary file beside it ([`temp_file`]), filled by
    /// `fill`, renamed over it (a link there is replaced, not followed). With `sync`,
    /// the file and the directory are flushed to disk too.
    fn replace(
        &self,
        rel: &str,
        mode: u32,
        sync: bool,
        fill: impl FnOnce(&mut File) -> Result<()>,
    ) -> Result<FileStat> {
        check_rel(rel)?;
        let (d, name) = split(rel);
        let dir = self.dir(d, true)?.expect("created");
        let (mut tmp, _guard) = temp_file(dir.as_fd(), &self.show(d), mode)?;
        let shown = || self.show(rel).display().to_string();
        fill(tmp.file())?;
        let st = finish(tmp.file(), mode).with_context(|| format!("writing {}", shown()))?;
        let flush = if sync { Flush::ToDisk } else { Flush::Later };
        tmp.commit(name, flush)
            .with_context(|| format!("renaming into {}", shown()))?;
        Ok(st)
    }

    /// Writes `bytes` to `rel` atomically (see [`Beneath::replace`]).
    pub fn write_atomic(&self, rel: &str, bytes: &[u8], mode: u32, sync: bool) -> Result<FileStat> {
        self.replace(rel, mode, sync, |f| {
            f.write_all(bytes)
                .with_context(|| format!("writing {}", self.show(rel).display()))
        })
    }

    /// Copies the local file `src` (outside DIR) to `rel` atomically.
    pub fn copy_atomic(&self, src: &Path, rel: &str, mode: u32) -> Result<FileStat> {
        let mut from = File::open(src).with_context(|| format!("reading {}", src.display()))?;
        self.replace(rel, mode, false, |f| {
            std::io::copy(&mut from, f).map(|_| ()).with_context(|| {
                format!("copying {} to {}", src.display(), self.show(rel).display())
            })
        })
    }

    /// Moves `src` (a file or directory hvseed made, by its own path) to `rel`,
    /// replacing a file (or link) there. Missing directories are created.
    pub fn move_in(&self, src: &Path, rel: &str) -> Result<()> {
        check_rel(rel)?;
        let (d, name) = split(rel);
        let dir = self.dir(d, true)?.expect("created");
        self.forget(rel);
        rustix::fs::renameat(CWD, src, &dir, name)
            .with_context(|| format!("moving {} to {}", src.display(), self.show(rel).display()))
    }

    /// Moves `rel` (whatever it is; a link itself, not its target) out to `dest`, a
    /// path hvseed made (its staging directory). False when `rel` does not exist.
    pub fn move_out(&self, rel: &str, dest: &Path) -> Result<bool> {
        check_rel(rel)?;
        let (d, name) = split(rel);
        let Some(dir) = self.dir(d, false)? else {
            return Ok(false);
        };
        self.forget(rel);
        match rustix::fs::renameat(&dir, name, CWD, dest) {
            Ok(()) => Ok(true),
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(e).with_context(|| {
                format!("moving {} to {}", self.show(rel).display(), dest.display())
            }),
        }
    }

    /// Sets the permission bits of the regular file `rel` (not following a link).
    pub fn chmod(&self, rel: &str, mode: u32) -> Result<()> {
        let f = self
            .open_file(rel)?
            .with_context(|| format!("{} is not a regular file", self.show(rel).display()))?;
        rustix::fs::fchmod(&f, Mode::from_raw_mode(mode))
            .with_context(|| format!("chmod {}", self.show(rel).display()))
    }

    /// Removes the file (or link) `rel`; false when it was not there.
    pub fn remove_file(&self, rel: &str) -> Result<bool> {
        check_rel(rel)?;
        let (d, name) = split(rel);
        let Some(dir) = self.dir(d, false)? else {
            return Ok(false);
        };
        match rustix::fs::unlinkat(&dir, name, AtFlags::empty()) {
            Ok(()) => Ok(true),
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(e).with_context(|| format!("removing {}", self.show(rel).display())),
        }
    }

    /// Removes the now empty directories above `rel`, up to (not including) DIR.
    pub fn prune_empty_parents(&self, rel: &str) {
        let mut d = split(rel).0;
        while !d.is_empty() {
            let (up, name) = split(d);
            let Ok(Some(parent)) = self.dir(up, false) else {
                return;
            };
            // Its open handle goes first: it must not be reused once it is removed.
            self.forget(d);
            if rustix::fs::unlinkat(&parent, name, AtFlags::REMOVEDIR).is_err() {
                return;
            }
            d = up;
        }
    }
}

/// A new temporary file in the open directory `dir` (`shown` in messages) with
/// `mode`, on the interrupt list while the guard lives. Its name carries the run's
/// owner tag ([`crate::interrupt::temp_prefix`]), so a later run can tell a killed
/// run's leftovers from a live run's.
pub fn temp_file<'d>(
    dir: BorrowedFd<'d>,
    shown: &Path,
    mode: u32,
) -> Result<(Pending<'d>, crate::interrupt::Guard)> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let prefix = crate::interrupt::temp_prefix(TMP_PREFIX);
    for _ in 0..100 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |t| t.subsec_nanos());
        let name = format!("{prefix}{}x{nanos:x}", N.fetch_add(1, Ordering::Relaxed));
        let made = crate::interrupt::track(
            || Pending::create(dir, &name, mode),
            |_| vec![crate::interrupt::Item::Path(shown.join(&name))],
        );
        match made {
            Ok(made) => return Ok(made),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("creating a temporary file in {}", shown.display()))
            }
        }
    }
    bail!(
        "creating a temporary file in {}: no free name",
        shown.display()
    )
}

/// Gives `f` exactly `mode` (the umask may have taken bits the TFTP/HTTP servers
/// need) and returns its record.
fn finish(f: &File, mode: u32) -> std::io::Result<FileStat> {
    let st: FileStat = rustix::fs::fstat(f)?.into();
    if st.mode != mode {
        rustix::fs::fchmod(f, Mode::from_raw_mode(mode))?;
        return Ok(rustix::fs::fstat(f)?.into());
    }
    Ok(st)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_on_the_way_are_refused_and_the_last_one_is_replaced_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("tree");
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(dir.join("a")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("f"), b"keep").unwrap();
        std::os::unix::fs::symlink(&outside, dir.join("a/link")).unwrap();
        std::os::unix::fs::symlink(outside.join("f"), dir.join("a/file")).unwrap();
        let b = Beneath::open(&dir).unwrap();
        for op in [
            b.write_atomic("a/link/f", b"x", 0o644, false).map(|_| ()),
            b.write_new("a/link/g", b"x", 0o644).map(|_| ()),
            b.remove_file("a/link/f").map(|_| ()),
            b.lstat("a/link/f").map(|_| ()),
            b.dir("a/link/sub", true).map(|_| ()),
        ] {
            let e = format!("{:#}", op.unwrap_err());
            assert!(e.contains("a/link is a symbolic link"), "{e}");
        }
        assert!(b.open_file("a/file").unwrap().is_none());
        assert!(b.write_new("a/file", b"x", 0o644).is_err());
        b.write_atomic("a/file", b"mine", 0o644, true).unwrap();
        assert_eq!(std::fs::read(outside.join("f")).unwrap(), b"keep");
        assert_eq!(std::fs::read(dir.join("a/file")).unwrap(), b"mine");
        assert!(std::fs::symlink_metadata(dir.join("a/file"))
            .unwrap()
            .is_file());
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 1);
        // A plain file where a directory should be.
        let e = format!("{:#}", b.write_new("a/file/x", b"x", 0o644).unwrap_err());
        assert!(e.contains("is not a directory"), "{e}");
        // Removal through a link removes the link only.
        assert!(b.remove_file("a/link").unwrap());
        assert!(outside.join("f").exists());
        for bad in ["../x", "/etc/passwd", "a//b", "a/./b", ""] {
            assert!(b.write_new(bad, b"x", 0o644).is_err(), "{bad}");
        }
    }
}
