//! Running the host's own programs (service, ping, virsh, …) with a deadline: a program
//! that hangs is killed with its whole process group, a program that is missing is an
//! answer ("not installed"), never a panic. Programs are found on PATH, so tests put
//! fake ones first on PATH.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
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
        Some(status) => Outcome::Exited {
            code: status.code(),
            stdout: out.join().unwrap_or_default(),
            stderr: err.join().unwrap_or_default(),
        },
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

fn reader<R: Read + Send + 'static>(src: Option<R>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut s) = src {
            // At most 1 MiB: enough for any answer we parse, bounded if something floods.
            let _ = s.by_ref().take(1 << 20).read_to_end(&mut buf);
            let _ = std::io::copy(&mut s, &mut std::io::sink());
        }
        String::from_utf8_lossy(&buf).into_owned()
    })
}
