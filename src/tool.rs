//! The one place that runs external programs (xorriso, mtools, cpio, ...): logs the full
//! command line at debug level, keeps stderr, and shows it only when the program fails.

use std::ffi::OsString;

use anyhow::{bail, Context, Result};

/// A program with its arguments, run through duct.
#[derive(Debug, Clone)]
pub struct Tool {
    program: OsString,
    args: Vec<OsString>,
    /// Set in the program's environment only (never in hvseed's own).
    env: Vec<(OsString, OsString)>,
    deadline: Option<std::time::Duration>,
}

impl Tool {
    pub fn new(program: impl Into<OsString>) -> Tool {
        Tool {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            deadline: None,
        }
    }

    pub fn arg(mut self, a: impl Into<OsString>) -> Tool {
        self.args.push(a.into());
        self
    }

    pub fn args<I, A>(mut self, args: I) -> Tool
    where
        I: IntoIterator<Item = A>,
        A: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable for the program alone.
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Tool {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Stops the program (SIGKILL) and fails if it has not finished within `d`: for
    /// reads of an input that should take seconds, where a damaged input could make the
    /// program run on (xorriso loops forever on an ISO whose directory contains itself).
    pub fn deadline(mut self, d: std::time::Duration) -> Tool {
        self.deadline = Some(d);
        self
    }

    /// The command line as a user could paste it into a shell, with the variables
    /// set by [`Tool::env`] in front (`NAME=value program args`).
    pub fn command_line(&self) -> String {
        let vars = self.env.iter().map(|(k, v)| {
            format!(
                "{}={}",
                k.to_string_lossy(),
                shell_words_quote(&v.to_string_lossy())
            )
        });
        vars.chain(
            std::iter::once(&self.program)
                .chain(self.args.iter())
                .map(|a| shell_words_quote(&a.to_string_lossy())),
        )
        .collect::<Vec<_>>()
        .join(" ")
    }

    /// Runs the program, returning its stdout; on failure the error carries the command
    /// line, the exit status and the program's stderr.
    pub fn run(&self) -> Result<Vec<u8>> {
        self.run_with_stdin(None)
    }

    /// Like [`Tool::run`], feeding `stdin` to the program.
    pub fn run_with_stdin(&self, stdin: Option<&[u8]>) -> Result<Vec<u8>> {
        let line = self.command_line();
        tracing::debug!("running: {line}");
        let mut expr = duct::cmd(&self.program, &self.args)
            .stdout_capture()
            .stderr_capture()
            .unchecked()
            .before_spawn(|cmd| {
                own_group_dying_with_hvseed(cmd);
                Ok(())
            });
        for (k, v) in &self.env {
            expr = expr.env(k, v);
        }
        if let Some(input) = stdin {
            expr = expr.stdin_bytes(input.to_vec());
        }
        // Started under the interrupt list's lock and listed there, so that an
        // interrupt kills it (and whatever it started) before hvseed exits.
        let started = crate::interrupt::track(
            || expr.start(),
            |h| {
                h.pids()
                    .into_iter()
                    .map(crate::interrupt::Item::Child)
                    .collect()
            },
        );
        let out = started
            .and_then(|(handle, guard)| {
                let out = match self.deadline {
                    None => handle.into_output().map(Some),
                    Some(d) => wait_within(handle, d),
                };
                drop(guard);
                out
            })
            .with_context(|| {
                format!(
                    "running {}: is it installed?",
                    self.program.to_string_lossy()
                )
            })?;
        let Some(out) = out else {
            bail!(
                "`{line}` did not finish within {} s and was stopped",
                self.deadline.unwrap_or_default().as_secs()
            );
        };
        if !out.status.success() {
            bail!(
                "`{line}` failed ({}):\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim_end()
            );
        }
        Ok(out.stdout)
    }
}

/// Waits for `handle` at most `d`; None (after killing and reaping it) when it ran on.
fn wait_within(
    handle: duct::Handle,
    d: std::time::Duration,
) -> std::io::Result<Option<std::process::Output>> {
    let until = std::time::Instant::now() + d;
    loop {
        if handle.try_wait()?.is_some() {
            return handle.into_output().map(Some);
        }
        if std::time::Instant::now() >= until {
            // The child leads a process group of its own: end the group, so that
            // nothing it started keeps the output pipes open (wait would hang).
            for pid in handle.pids() {
                if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
                    let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
                }
            }
            handle.kill()?;
            let _ = handle.wait();
            return Ok(None);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Puts a child in a process group of its own (a Ctrl-C at the terminal reaches only
/// hvseed, which then ends the whole group, see [`crate::interrupt`]) and has the
/// kernel kill it if hvseed dies first (SIGKILL leaves no handler to do it).
pub(crate) fn own_group_dying_with_hvseed(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    cmd.process_group(0);
    let parent = rustix::process::getpid();
    // SAFETY: the hook runs in the child between fork and exec and makes only raw
    // system calls (prctl, getppid): no allocation, no lock.
    unsafe {
        cmd.pre_exec(move || {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
            // hvseed died before the prctl: the child would outlive it.
            if rustix::process::getppid() != Some(parent) {
                return Err(std::io::Error::from(rustix::io::Errno::SRCH));
            }
            Ok(())
        });
    }
}

/// True when `s` is not empty and each of its bytes is an ASCII letter or digit or
/// one of `extra`: a word that needs no quotes where those bytes are plain.
pub fn is_plain_word(s: &str, extra: &[u8]) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
}

/// Quotes one word for a POSIX shell when it needs it (log lines, messages and the
/// templates' `shell` filter): a plain word stays as it is (easier to read); anything
/// else is single-quoted, a `'` inside written `'\''`.
pub fn shell_words_quote(s: &str) -> String {
    if is_plain_word(s, b"-_./=:,@+%") {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_names_the_command_and_shows_stderr() {
        let err = Tool::new("sh")
            .args(["-c", "echo oops >&2; exit 3"])
            .run()
            .unwrap_err()
            .to_string();
        assert!(err.contains("sh -c 'echo oops >&2; exit 3'"), "{err}");
        assert!(err.contains("oops"), "{err}");
    }

    #[test]
    fn quoting_survives_a_shell() {
        let nasty = "a'b\"c $(x) `y`;\nz";
        let out = Tool::new("sh")
            .args(["-c", &format!("printf %s {}", shell_words_quote(nasty))])
            .run()
            .unwrap();
        assert_eq!(out, nasty.as_bytes());
    }

    #[test]
    fn env_reaches_the_program_only_and_shows_in_the_command_line() {
        let name = "HVSEED_TOOL_ENV_TEST";
        let tool = Tool::new("sh")
            .args(["-c", &format!("printf %s \"${name}\"")])
            .env(name, "a b");
        let out = tool.run().unwrap();
        assert_eq!(out, b"a b");
        assert!(std::env::var_os(name).is_none());
        assert!(
            tool.command_line()
                .starts_with(&format!("{name}='a b' sh -c ")),
            "{}",
            tool.command_line()
        );
    }
}
