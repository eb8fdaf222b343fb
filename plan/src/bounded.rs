//! Reading the agent's inputs without trusting them: every file is opened with
//! `O_NONBLOCK` (so a FIFO or a device cannot hang the open), checked with `fstat` to
//! be a regular file, and read up to a size limit. A plan that is `/dev/zero`, a FIFO
//! at `/etc/hosts` or a runaway file gives a clear error instead of a hang or an
//! out-of-memory kill.
//!
//! Only `open`, `fstat`, `fcntl` and `read` are used: all older than Linux 2.6.32.

use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::Path;

/// The largest plan the agent reads (a real plan is a few KiB).
pub const PLAN_LIMIT: u64 = 1 << 20;
/// The largest file under ROOT the agent edits or restores (stock files are < 64 KiB;
/// a site's `/etc/hosts` may be long, but not this long).
pub const EDIT_LIMIT: u64 = 8 << 20;
/// The largest /proc or /sys file `verify` reads (cpuinfo of a 256-CPU host is
/// ~400 KiB; net/tcp of a busy host a few MiB).
pub const KERNEL_LIMIT: u64 = 32 << 20;
/// The largest `/proc/<pid>/stat` (one line).
pub const STAT_LIMIT: u64 = 64 << 10;

/// What kind of file is in the way, for messages.
pub fn kind_name(ft: &fs::FileType) -> &'static str {
    if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_symlink() {
        "a symbolic link"
    } else {
        "not a regular file"
    }
}

fn not_regular(ft: &fs::FileType) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "it is {}, not a regular file; replace it with a regular file",
            kind_name(ft)
        ),
    )
}

/// Opens `path` for reading without blocking on a FIFO or device and without
/// following a symlink in its last component when `nofollow`; refuses anything but a
/// regular file. The returned file reads in blocking mode again.
pub fn open_regular(path: &Path, nofollow: bool) -> io::Result<File> {
    let mut flags = libc::O_NONBLOCK | libc::O_NOCTTY;
    if nofollow {
        flags |= libc::O_NOFOLLOW;
    }
    let f = match fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)
    {
        Ok(f) => f,
        // O_NOFOLLOW on a symlink: ELOOP. Say what it is rather than "too many links".
        Err(e) if nofollow && e.raw_os_error() == Some(libc::ELOOP) => {
            return match fs::symlink_metadata(path) {
                Ok(m) if m.file_type().is_symlink() => Err(not_regular(&m.file_type())),
                _ => Err(e),
            }
        }
        Err(e) => return Err(e),
    };
    let meta = f.metadata()?;
    if !meta.file_type().is_file() {
        return Err(not_regular(&meta.file_type()));
    }
    // Back to blocking reads (a regular file ignores O_NONBLOCK, but a child given this
    // file as stdin should not see it).
    let fd = f.as_raw_fd();
    // SAFETY: fcntl on a descriptor we own, with integer arguments only.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        if fl >= 0 {
            libc::fcntl(fd, libc::F_SETFL, fl & !libc::O_NONBLOCK);
        }
    }
    Ok(f)
}

/// Reads all of an open file, refusing more than `limit` bytes.
pub fn read_limited(mut f: impl Read, limit: u64) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    f.by_ref().take(limit + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "it is larger than {}, the most hvseed-firstboot reads from such a file",
                human(limit)
            ),
        ));
    }
    Ok(buf)
}

/// A regular file's bytes, at most `limit`.
pub fn read(path: &Path, limit: u64, nofollow: bool) -> io::Result<Vec<u8>> {
    read_limited(open_regular(path, nofollow)?, limit)
}

/// A regular file as text (invalid UTF-8 is an `InvalidData` error), at most `limit`.
pub fn read_to_string(path: &Path, limit: u64, nofollow: bool) -> io::Result<String> {
    String::from_utf8(read(path, limit, nofollow)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "it is not valid UTF-8"))
}

fn human(n: u64) -> String {
    if n >= 1 << 20 && n % (1 << 20) == 0 {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n % (1 << 10) == 0 {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_devices_fifos_directories_and_big_files() {
        let e = read(Path::new("/dev/zero"), 10, false).unwrap_err();
        assert!(e.to_string().contains("a character device"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let e = read(dir.path(), 10, false).unwrap_err();
        assert!(e.to_string().contains("a directory"), "{e}");
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo with a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        let e = read(&fifo, 10, true).unwrap_err();
        assert!(e.to_string().contains("a FIFO"), "{e}");
        let big = dir.path().join("big");
        fs::write(&big, vec![b'x'; 11]).unwrap();
        let e = read(&big, 10, false).unwrap_err();
        assert!(e.to_string().contains("larger than 10 bytes"), "{e}");
        assert_eq!(read(&big, 11, false).unwrap().len(), 11);
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&big, &link).unwrap();
        assert!(read(&link, 11, false).is_ok());
        let e = read(&link, 11, true).unwrap_err();
        assert!(e.to_string().contains("a symbolic link"), "{e}");
    }
}
