//! One atomic file write, for the builder (`hvseed pxe`, `hvseed serve`) and the agent:
//! a new temporary file in the target's directory is filled, fsynced, renamed over the
//! target, and the directory is fsynced. A reader sees the old file or the new one,
//! never half of one, and after a power cut the new name holds the new data.
//!
//! Everything happens relative to an open directory, and the temporary file is created
//! with `O_CREAT | O_EXCL | O_NOFOLLOW`: nothing is written through a link, and a link
//! at the target's name is replaced, not followed. A temporary file that is neither
//! renamed nor kept is removed when its [`Pending`] is dropped, so a failed write leaves
//! nothing behind.
//!
//! Each caller keeps its own needs as a thin layer over this: how the temporary file
//! is named (and tracked for an interrupt), its mode and owner, whether the write must
//! reach the disk before the caller goes on ([`Flush`]).
//!
//! Only `openat`, `fsync`, `renameat` and `unlinkat` are used: all in Linux 2.6.16.

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;

/// Whether a write is on the disk when it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flush {
    /// The file is fsynced before the rename and its directory after it: once the
    /// write returns, a power cut keeps it (reports, the agent's files, markers).
    ToDisk,
    /// The rename is atomic but the kernel writes the data when it likes: for bulk
    /// files that a later run checks and rewrites anyway (a PXE tree's files).
    Later,
}

/// A temporary file being written in a directory, to be renamed over its target
/// ([`Pending::commit`]) or kept for the caller to rename later ([`Pending::keep`]);
/// removed when dropped otherwise.
#[derive(Debug)]
pub struct Pending<'d> {
    dir: BorrowedFd<'d>,
    name: CString,
    file: File,
    /// Whether dropping it removes the temporary file.
    armed: bool,
}

fn c_name(name: &OsStr) -> io::Result<CString> {
    if name.is_empty() || name.as_bytes().contains(&b'/') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is not a file name"),
        ));
    }
    CString::new(name.as_bytes()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} holds a NUL byte"),
        )
    })
}

/// The result of a system call that returns 0 or -1 with `errno`.
fn check(ret: libc::c_int) -> io::Result<()> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

impl<'d> Pending<'d> {
    /// Creates the temporary file `name` in `dir`, for writing, with `mode` (less the
    /// umask). A file, link or anything else already there is an error of kind
    /// [`io::ErrorKind::AlreadyExists`]: the caller picks another name, or removes its
    /// own stale temporary file, and tries again.
    pub fn create(
        dir: BorrowedFd<'d>,
        name: impl AsRef<OsStr>,
        mode: u32,
    ) -> io::Result<Pending<'d>> {
        let cname = c_name(name.as_ref())?;
        let flags =
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        // SAFETY: `dir` is an open descriptor and `cname` a NUL-terminated name.
        let fd =
            unsafe { libc::openat(dir.as_raw_fd(), cname.as_ptr(), flags, mode as libc::c_uint) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just opened and is owned by nothing else.
        let file = unsafe { File::from_raw_fd(fd) };
        Ok(Pending {
            dir,
            name: cname,
            file,
            armed: true,
        })
    }

    /// The temporary file, to fill and to give its mode and owner.
    pub fn file(&mut self) -> &mut File {
        &mut self.file
    }

    /// The temporary file's name in its directory.
    pub fn name(&self) -> &OsStr {
        OsStr::from_bytes(self.name.as_bytes())
    }

    /// Renames the temporary file over `target` (a name in the same directory; a link
    /// there is replaced, not followed). With [`Flush::ToDisk`] the file is fsynced
    /// first and the directory after. On failure the temporary file is removed.
    pub fn commit(mut self, target: impl AsRef<OsStr>, flush: Flush) -> io::Result<()> {
        let target = c_name(target.as_ref())?;
        if flush == Flush::ToDisk {
            self.file.sync_all()?;
        }
        let dir = self.dir.as_raw_fd();
        // SAFETY: both names are NUL-terminated and `dir` is an open descriptor.
        check(unsafe { libc::renameat(dir, self.name.as_ptr(), dir, target.as_ptr()) })?;
        self.armed = false;
        if flush == Flush::ToDisk {
            sync_dir(self.dir)?;
        }
        Ok(())
    }

    /// Leaves the temporary file in place for the caller to rename later (fsynced
    /// with [`Flush::ToDisk`]).
    pub fn keep(mut self, flush: Flush) -> io::Result<()> {
        if flush == Flush::ToDisk {
            self.file.sync_all()?;
        }
        self.armed = false;
        Ok(())
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if self.armed {
            // SAFETY: the name is NUL-terminated and `dir` is an open descriptor.
            unsafe { libc::unlinkat(self.dir.as_raw_fd(), self.name.as_ptr(), 0) };
        }
    }
}

/// fsyncs the open directory `dir`, so that a rename in it survives a power cut.
pub fn sync_dir(dir: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: `dir` is an open descriptor.
    check(unsafe { libc::fsync(dir.as_raw_fd()) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsFd;
    use std::os::unix::fs::PermissionsExt;

    fn open_dir(p: &std::path::Path) -> File {
        File::open(p).unwrap()
    }

    #[test]
    fn a_commit_replaces_the_target_and_leaves_no_temporary_file() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("f"), b"old").unwrap();
        let dir = open_dir(tmp.path());
        for flush in [Flush::ToDisk, Flush::Later] {
            let mut p = Pending::create(dir.as_fd(), ".f.tmp", 0o600).unwrap();
            assert_eq!(p.name(), ".f.tmp");
            p.file().write_all(b"new").unwrap();
            p.commit("f", flush).unwrap();
            assert_eq!(std::fs::read(tmp.path().join("f")).unwrap(), b"new");
            let names: Vec<_> = std::fs::read_dir(tmp.path())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert_eq!(names, ["f"]);
            let mode = std::fs::metadata(tmp.path().join("f"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "{mode:o}");
        }
    }

    #[test]
    fn a_dropped_write_leaves_the_target_as_it_was() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("f"), b"old").unwrap();
        let dir = open_dir(tmp.path());
        let mut p = Pending::create(dir.as_fd(), ".f.tmp", 0o644).unwrap();
        p.file().write_all(b"half").unwrap();
        drop(p);
        assert_eq!(std::fs::read(tmp.path().join("f")).unwrap(), b"old");
        assert!(!tmp.path().join(".f.tmp").exists());
        // A rename that fails (the target is a non-empty directory) removes it too.
        std::fs::create_dir(tmp.path().join("d")).unwrap();
        std::fs::write(tmp.path().join("d/x"), b"x").unwrap();
        let p = Pending::create(dir.as_fd(), ".d.tmp", 0o644).unwrap();
        assert!(p.commit("d", Flush::ToDisk).is_err());
        assert!(!tmp.path().join(".d.tmp").exists());
    }

    #[test]
    fn links_are_replaced_never_written_through() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        std::fs::write(&outside, b"keep").unwrap();
        let d = tmp.path().join("d");
        std::fs::create_dir(&d).unwrap();
        std::os::unix::fs::symlink(&outside, d.join("f")).unwrap();
        std::os::unix::fs::symlink(&outside, d.join(".f.tmp")).unwrap();
        let dir = open_dir(&d);
        // A link at the temporary name is in the way, not followed.
        let e = Pending::create(dir.as_fd(), ".f.tmp", 0o644).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        std::fs::remove_file(d.join(".f.tmp")).unwrap();
        let mut p = Pending::create(dir.as_fd(), ".f.tmp", 0o644).unwrap();
        p.file().write_all(b"mine").unwrap();
        p.commit("f", Flush::ToDisk).unwrap();
        assert_eq!(std::fs::read(&outside).unwrap(), b"keep");
        assert!(std::fs::symlink_metadata(d.join("f")).unwrap().is_file());
        assert_eq!(std::fs::read(d.join("f")).unwrap(), b"mine");
        for bad in ["", "a/b", "../f", "n\0ul"] {
            let e = Pending::create(dir.as_fd(), bad, 0o644).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{bad:?}");
        }
    }

    #[test]
    fn a_kept_temporary_file_stays_for_the_caller() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = open_dir(tmp.path());
        let mut p = Pending::create(dir.as_fd(), ".f.tmp", 0o644).unwrap();
        p.file().write_all(b"staged").unwrap();
        p.keep(Flush::ToDisk).unwrap();
        assert_eq!(std::fs::read(tmp.path().join(".f.tmp")).unwrap(), b"staged");
        assert!(!tmp.path().join("f").exists());
    }
}
