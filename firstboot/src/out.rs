//! The agent's stdout and stderr. A full disk, a closed pipe or a closed descriptor
//! behind them is an ordinary condition: what the agent prints is a log of what it did,
//! and losing the log must never change what it does or its exit status (a
//! `%post --erroronfail` would otherwise fail a host that is configured). So nothing
//! here panics, SIGPIPE is ignored, and write errors are dropped, except for the text
//! of `--help` and `--version`, which is all those do (see [`product`]).

use std::io::Write;

/// Call first in `main`: SIGPIPE ignored (a closed pipe is then EPIPE, which is
/// dropped), and descriptors 0–2 opened on /dev/null when they are closed, so a file
/// the agent opens later can never become its stdout or stderr.
pub fn init() {
    // SAFETY: signal(2) with SIG_IGN, fcntl(F_GETFD) and open(2) of a constant path
    // have no memory-safety preconditions.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        for fd in 0..3 {
            if libc::fcntl(fd, libc::F_GETFD) == -1 {
                let flags = if fd == 0 {
                    libc::O_RDONLY
                } else {
                    libc::O_WRONLY
                };
                let new = libc::open(c"/dev/null".as_ptr(), flags);
                if new >= 0 && new != fd {
                    libc::dup2(new, fd);
                    libc::close(new);
                }
            }
        }
    }
}

/// Writes `text` to stdout; errors (EPIPE, ENOSPC, EBADF …) are ignored.
pub fn stdout(text: &str) {
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(text.as_bytes());
    let _ = o.flush();
}

/// Writes `text` to stdout when it is the product itself (`--help`, `--version`), not
/// a log: the caller reports the error and exits 1, as `hvseed --help` does.
pub fn product(text: &str) -> std::io::Result<()> {
    let mut o = std::io::stdout().lock();
    o.write_all(text.as_bytes())?;
    o.flush()
}

/// Writes `text` to stderr; errors are ignored.
pub fn stderr(text: &str) {
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}
