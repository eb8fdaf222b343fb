//! What the builder's tests (`tests/lib.rs`, as `mod support`) and the agent's tests
//! (`firstboot/tests/common`, through `#[path]`) share: the one missing-tool policy,
//! the one way to run a command that must succeed and the one with a deadline. Only std: both crates include it.

#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// Where `cmd` is: a name with a `/` is a path; a bare name is looked up on PATH, then
/// in /usr/sbin, /sbin, /usr/bin and /bin (a plain user's PATH may lack the sbins).
pub fn find_tool(cmd: &str) -> Option<PathBuf> {
    if cmd.contains('/') {
        return Path::new(cmd).exists().then(|| PathBuf::from(cmd));
    }
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from));
    dirs.iter().map(|d| d.join(cmd)).find(|p| p.is_file())
}

/// True if `cmd` is on PATH (or is an existing path).
pub fn cmd_exists(cmd: &str) -> bool {
    if cmd.contains('/') {
        return Path::new(cmd).exists();
    }
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|d| d.join(cmd).is_file()))
        .unwrap_or(false)
}

/// The policy for something a test needs and the machine lacks (`what`, with `how`
/// to get it): under CI (`CI=true`) the test fails; elsewhere a loud notice is printed
/// and the caller returns early.
pub fn missing(what: &str, how: &str) {
    let msg = format!("MISSING TOOL: {what}; {how}");
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg}");
    }
    eprintln!("\n!!!!!!!! {msg}: THIS TEST DID NOT RUN !!!!!!!!\n");
}

/// The path of tool `cmd` from Debian package `package` (see [`find_tool`]), or `None`
/// after [`missing`].
pub fn tool(cmd: &str, package: &str) -> Option<PathBuf> {
    let found = find_tool(cmd);
    if found.is_none() {
        missing(
            &format!("`{cmd}` (Debian package `{package}`) is not installed"),
            "run scripts/setup.sh test",
        );
    }
    found
}

/// True when `cmd` is on PATH or is an existing path; otherwise [`missing`] and false.
/// (Callers run it by name, so a bare name must be on PATH, not only in an sbin.)
#[must_use]
pub fn require_tool(cmd: &str, package: &str) -> bool {
    if cmd_exists(cmd) {
        return true;
    }
    missing(
        &format!("`{cmd}` (Debian package `{package}`) is not installed"),
        "run scripts/setup.sh test",
    );
    false
}

/// Runs `cmd` like [`Command::output`] and returns its stdout; the test fails, showing
/// the command, its stdout and its stderr, unless it exits 0 and prints UTF-8.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap_or_else(|e| panic!("{cmd:?}: stdout: {e}"))
}

/// A child killed and reaped when dropped, however the test ends (a panic included).
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits for `child`; if it still runs after `limit` it is killed and reaped and the
/// test fails naming `what` (a guard against a hang, not a timing requirement).
pub fn wait_within(child: &mut Child, limit: Duration, what: &str) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} hung: killed after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `cmd` with stdin from /dev/null and its output captured, like
/// [`Command::output`], within `limit` (see [`wait_within`]): it never outlives the call.
pub fn output_within(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = KillOnDrop(
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {cmd:?}: {e}")),
    );
    let slurp = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let out = slurp(Box::new(child.0.stdout.take().unwrap()));
    let err = slurp(Box::new(child.0.stderr.take().unwrap()));
    let status = wait_within(&mut child.0, limit, &format!("{cmd:?}"));
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// [`output_within`] with a limit in seconds.
pub fn output_within_secs(cmd: &mut Command, secs: u64) -> Output {
    output_within(cmd, Duration::from_secs(secs))
}
