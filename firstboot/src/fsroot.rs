//! The installed system's file tree, seen from outside: every path is resolved under
//! ROOT the way a chroot would see it, so a symlink inside ROOT (absolute or with `..`)
//! can never lead a write out of ROOT — `/target/etc -> /etc` lands in `/target/etc`,
//! not in the build machine's `/etc`.

use std::ffi::OsString;
use std::fs;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use hvseed_plan::atomic::{Flush, Pending};

/// Symlinks followed while resolving one path before giving up (Linux uses 40 too).
const MAX_LINKS: usize = 40;

/// A root directory (`/` on the live system, `/mnt/sysimage` or `/target` offline).
#[derive(Debug, Clone)]
pub struct Root {
    dir: PathBuf,
}

impl Root {
    /// Opens ROOT; it must be an existing directory.
    pub fn open(dir: &Path) -> io::Result<Root> {
        let meta = fs::metadata(dir)?;
        if !meta.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                "not a directory",
            ));
        }
        Ok(Root {
            dir: dir.to_path_buf(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The host path of `inside` (an absolute path as the installed system sees it),
    /// following symlinks as the installed system would, clamped to ROOT.
    pub fn resolve(&self, inside: &str) -> io::Result<PathBuf> {
        let mut done: Vec<OsString> = Vec::new();
        let mut todo: Vec<OsString> = components_rev(Path::new(inside));
        let mut links = 0;
        while let Some(comp) = todo.pop() {
            if comp == "." || comp.is_empty() {
                continue;
            }
            if comp == ".." {
                done.pop();
                continue;
            }
            let candidate = self.join(&done).join(&comp);
            match fs::symlink_metadata(&candidate) {
                Ok(m) if m.file_type().is_symlink() => {
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(io::Error::other(format!(
                            "too many levels of symbolic links resolving {inside}"
                        )));
                    }
                    let target = fs::read_link(&candidate)?;
                    if target.is_absolute() {
                        done.clear();
                    }
                    todo.extend(components_rev(&target));
                }
                Ok(_) => done.push(comp),
                Err(e) if e.kind() == io::ErrorKind::NotFound => done.push(comp),
                Err(e) => return Err(e),
            }
        }
        Ok(self.join(&done))
    }

    fn join(&self, parts: &[OsString]) -> PathBuf {
        let mut p = self.dir.clone();
        for c in parts {
            p.push(c);
        }
        p
    }
}

/// Components of `p` in reverse order (so `pop` yields them first to last); the root
/// and prefix components are dropped, `.` and `..` are kept for the resolver.
fn components_rev(p: &Path) -> Vec<OsString> {
    let mut v: Vec<OsString> = p
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_os_string()),
            Component::ParentDir => Some("..".into()),
            Component::CurDir => Some(".".into()),
            Component::RootDir | Component::Prefix(_) => None,
        })
        .collect();
    v.reverse();
    v
}

/// Mode and owner a file keeps when it is replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

impl Owner {
    pub fn of(meta: &fs::Metadata) -> Owner {
        Owner {
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
        }
    }

    /// Root-owned with `mode`, for files that did not exist.
    pub fn root(mode: u32) -> Owner {
        Owner {
            mode,
            uid: 0,
            gid: 0,
        }
    }
}

/// Replaces `path` with `data` atomically ([`hvseed_plan::atomic`]): a temporary file
/// in the same directory is written, given `owner`'s mode and owner, fsynced and
/// renamed over `path`; then the directory is fsynced so the rename survives a power
/// cut.
pub fn write_atomic(path: &Path, data: &[u8], owner: Owner) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let dir = fs::File::open(dir)?;
    let name = path.file_name().ok_or_else(|| not_a_file(path))?;
    let pending = write_temp(&dir, path, data, owner)?;
    pending.commit(name, Flush::ToDisk)
}

/// Creates the temporary file beside `path` (`.<name>.hvseed-tmp`, in `dir`, its open
/// directory; one left by an earlier, interrupted run is replaced) with `data` and
/// `owner`'s mode and owner. Dropped unrenamed, it is removed again.
fn write_temp<'d>(
    dir: &'d fs::File,
    path: &Path,
    data: &[u8],
    owner: Owner,
) -> io::Result<Pending<'d>> {
    let tmp = temp_name(path);
    remove_stale(&tmp)?;
    let name = tmp.file_name().ok_or_else(|| not_a_file(path))?;
    let mut pending = Pending::create(dir.as_fd(), name, owner.mode)?;
    let f = pending.file();
    f.set_permissions(fs::Permissions::from_mode(owner.mode))?;
    set_owner(f, owner)?;
    f.write_all(data)?;
    Ok(pending)
}

fn not_a_file(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{} is not a file's path", path.display()),
    )
}

/// Creates (or replaces) a symlink `path -> target` atomically.
pub fn symlink_atomic(path: &Path, target: &str) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let tmp = temp_name(path);
    let _ = fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)?;
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(dir)
}

fn temp_name(path: &Path) -> PathBuf {
    side_name(path, "tmp")
}

/// `.<name>.hvseed-<what>` beside `path`: hvseed's own temporary names.
pub fn side_name(path: &Path, what: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.hvseed-{what}"))
}

/// Creates `dir` and its missing parents, recording each directory it created
/// (parents first) so a failed apply can remove them again. The parent of each new
/// directory is fsynced, so the directory survives a power cut with what is renamed
/// into it.
pub fn create_dirs(dir: &Path, made: &mut Vec<PathBuf>) -> io::Result<()> {
    let mut missing = Vec::new();
    let mut cur = dir;
    loop {
        match fs::symlink_metadata(cur) {
            Ok(m) if m.is_dir() => break,
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::NotADirectory,
                    format!("{} is not a directory", cur.display()),
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                missing.push(cur.to_path_buf());
                match cur.parent() {
                    Some(p) => cur = p,
                    None => break,
                }
            }
            Err(e) => return Err(e),
        }
    }
    for d in missing.into_iter().rev() {
        match fs::create_dir(&d) {
            Ok(()) => {
                made.push(d.clone());
                sync_parent(&d)?;
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && d.is_dir() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Writes `data` to a new temporary file beside `path` (`.<name>.hvseed-tmp`) with
/// `owner`'s mode and owner, fsynced; returns its path. `path` itself is not touched.
/// A temporary left by an earlier, interrupted run is replaced.
pub fn stage_file(
    path: &Path,
    data: &[u8],
    owner: Owner,
    made: &mut Vec<PathBuf>,
) -> io::Result<PathBuf> {
    let dir = path.parent().unwrap_or(Path::new("."));
    create_dirs(dir, made)?;
    let dir = fs::File::open(dir)?;
    let pending = write_temp(&dir, path, data, owner)?;
    pending.keep(Flush::ToDisk)?;
    Ok(temp_name(path))
}

/// A new symlink `-> target` beside `path`, to be renamed over it; returns its path.
pub fn stage_link(path: &Path, target: &str, made: &mut Vec<PathBuf>) -> io::Result<PathBuf> {
    let dir = path.parent().unwrap_or(Path::new("."));
    create_dirs(dir, made)?;
    let tmp = temp_name(path);
    remove_stale(&tmp)?;
    std::os::unix::fs::symlink(target, &tmp)?;
    Ok(tmp)
}

/// Removes an old temporary of ours; a directory there is an error (not ours).
fn remove_stale(tmp: &Path) -> io::Result<()> {
    match fs::symlink_metadata(tmp) {
        Ok(m) if m.is_dir() => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{} is in the way (a directory where hvseed writes its temporary file); remove it",
                tmp.display()
            ),
        )),
        Ok(_) => fs::remove_file(tmp),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// fsyncs the directory holding `path`, so a rename in it survives a power cut.
pub fn sync_parent(path: &Path) -> io::Result<()> {
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// chown only when it would change something: tests run as a normal user too, and an
/// unprivileged chown to one's own ids is a no-op anyway.
fn set_owner(f: &fs::File, owner: Owner) -> io::Result<()> {
    let meta = f.metadata()?;
    if meta.uid() == owner.uid && meta.gid() == owner.gid {
        return Ok(());
    }
    match std::os::unix::fs::fchown(f, Some(owner.uid), Some(owner.gid)) {
        Ok(()) => Ok(()),
        // Not root (a test, or a user trying --dry-run-like runs on a copy): keep the
        // caller's ids rather than failing the whole apply.
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Ok(()),
        Err(e) => Err(e),
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}
