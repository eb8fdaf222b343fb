//! Running the host's own programs (service, ping, virsh, …) with a deadline: a program
//! that hangs is killed with its whole process group, a program that is missing is an
//! answer ("not installed"), never a panic. Programs are found on PATH, so tests put
//! fake ones first on PATH.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// What became of one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It ran to the end (any exit status).
    Exited {
        code: Option<i32>,
        stdout: String,
        stderr: String,
    },
    /// Not on PATH.
    Missing,
    /// Killed after the deadline.
    TimedOut,
    /// Could not be started for another reason.
    Failed(String),
}

impl Outcome {
    pub fn success(&self) -> bool {
        matches!(self, Outcome::Exited { code: Some(0), .. })
    }

    pub fn stdout(&self) -> &str {
        match self {
            Outcome::Exited { stdout, .. } => stdout,
            _ => "",
        }
    }

    /// A short description for logs and check details.
    pub fn describe(&self, cmdline: &str) -> String {
        match self {
            Outcome::Exited { code, stderr, .. } => {
                let err = stderr.trim();
                let code = code.map_or("a signal".to_string(), |c| format!("status {c}"));
                if err.is_empty() {
                    format!("`{cmdline}` exited with {code}")
                } else {
                    format!("`{cmdline}` exited with {code}: {}", first_line(err))
                }
            }
            Outcome::Missing => format!("`{cmdline}`: command not found"),
            Outcome::TimedOut => format!("`{cmdline}` did not finish in time and was killed"),
            Outcome::Failed(e) => format!("`{cmdline}` could not be started: {e}"),
        }
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// Runs `program args…` with `timeout`, stdin from `stdin` (or /dev/null).
pub fn run(program: &str, args: &[&str], timeout: Duration, stdin: Option<&Path>) -> Outcome {
    let input = match stdin {
        // Not File::open: a FIFO there would hang the agent before the command starts.
        Some(p) => match crate::bounded::open_regular(p, false) {
            Ok(f) => Stdio::from(f),
            Err(e) => return Outcome::Failed(format!("{}: {e}", p.display())),
        },
        None => Stdio::null(),
    };
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(input)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so a timeout kills what it started too.
        .process_group(0);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Outcome::Missing,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let out = reader(child.stdout.take());
    let err = reader(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() >= deadline => break None,
            Ok(None) => thread::sleep(Duration::from_millis(5)),
            Err(e) => return Outcome::Failed(e.to_string()),
        }
    };
    match status {
        Some(status) => {
            // A daemon the program started may keep the pipes open for ever: wait a
            // little for the end of its output, then take what came.
            let grace = Instant::now() + OUTPUT_GRACE;
            Outcome::Exited {
                code: status.code(),
                stdout: out.take(grace),
                stderr: err.take(grace),
            }
        }
        None => {
            let pgid = child.id() as libc::pid_t;
            // SAFETY: kill(2) with a negative pid signals the process group we created.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
            let _ = child.kill();
            let _ = child.wait();
            Outcome::TimedOut
        }
    }
}

/// How long output is still read after the program exited.
const OUTPUT_GRACE: Duration = Duration::from_secs(2);
/// The most of one stream that is kept: enough for any answer the agent parses.
const OUTPUT_LIMIT: usize = 1 << 20;

/// One stream of a child, read on a thread: kept up to [`OUTPUT_LIMIT`], the rest read
/// and dropped so the child never blocks on a full pipe.
struct Captured {
    buf: Arc<Mutex<Vec<u8>>>,
    done: mpsc::Receiver<()>,
}

impl Captured {
    /// What was read, once the stream ended or `deadline` passed.
    fn take(self, deadline: Instant) -> String {
        let _ = self
            .done
            .recv_timeout(deadline.saturating_duration_since(Instant::now()));
        let buf = self.buf.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&buf).into_owned()
    }
}

fn reader<R: Read + Send + 'static>(src: Option<R>) -> Captured {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let (tx, done) = mpsc::channel();
    let shared = Arc::clone(&buf);
    thread::spawn(move || {
        if let Some(mut s) = src {
            let mut chunk = [0u8; 8192];
            loop {
                match s.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => {
                        if let Ok(mut b) = shared.lock() {
                            let room = OUTPUT_LIMIT.saturating_sub(b.len());
                            b.extend_from_slice(&chunk[..n.min(room)]);
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
        }
        let _ = tx.send(());
    });
    Captured { buf, done }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kills the background process a test started, on every path.
    struct KillOnDrop(std::path::PathBuf);

    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            if let Some(pid) = std::fs::read_to_string(&self.0)
                .ok()
                .and_then(|s| s.trim().parse::<libc::pid_t>().ok())
            {
                // SAFETY: kill(2) of the pid our own child wrote down.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
        }
    }

    #[test]
    fn a_daemon_that_keeps_the_output_open_does_not_hang_the_agent() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let _guard = KillOnDrop(pidfile.clone());
        let script = format!(
            "echo started; sleep 600 & echo $! > '{}'; echo done",
            pidfile.display()
        );
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let _ = tx.send(run("sh", &["-c", &script], Duration::from_secs(30), None));
        });
        // A guard against a hang, not a timing requirement.
        let o = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("run() waited for the background process's output");
        assert!(o.success(), "{o:?}");
        assert_eq!(o.stdout(), "started\ndone\n");
    }
}
