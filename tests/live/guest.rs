//! A QEMU guest under TCG booting a built root's own kernel and initrd from a disk
//! image, its one NIC on a [`Trunk`](super::net::Trunk). One guest at a time across
//! all test processes (two TCG guests on two cores starve each other): the guest holds
//! `util::one_qemu` for its life, as every QEMU of the tests does. QEMU runs in its own process group and
//! dies with the test: killed when the guest is dropped (a panic included) and, through
//! the parent-death signal, if the test process itself is killed.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::image::tail;
use crate::util::one_qemu;

/// How to boot.
pub struct GuestSpec<'a> {
    pub kernel: &'a Path,
    pub initrd: &'a Path,
    /// The disk (a per-test overlay: see `Disk::overlay`); qcow2 or raw by extension.
    pub disk: &'a Path,
    pub mac: &'a str,
    /// The trunk's unix socket (`Trunk::socket`).
    pub trunk: &'a Path,
    /// Kernel arguments after `root=/dev/vda rw console=ttyS0 net.ifnames=0`.
    pub append: &'a str,
    /// The guest's memory (`-m`), MiB.
    pub memory_mib: u32,
}

pub struct Guest {
    child: Child,
    console: PathBuf,
    started: Instant,
    _one_at_a_time: File,
}

impl Guest {
    /// Starts QEMU (after waiting for the global lock); its serial console goes to
    /// `dir/console.log`.
    pub fn boot(spec: &GuestSpec, dir: &Path) -> Guest {
        let waited = Instant::now();
        let lock = one_qemu();
        if waited.elapsed() > Duration::from_secs(1) {
            eprintln!(
                "live: waited {:.1?} for the one-QEMU lock (another guest was running)",
                waited.elapsed()
            );
        }
        let console = dir.join("console.log");
        let disk_format = if spec.disk.extension().is_some_and(|e| e == "qcow2") {
            "qcow2"
        } else {
            "raw"
        };
        let mut cmd = Command::new("qemu-system-x86_64");
        // One TCG thread for both vCPUs: with multi-threaded TCG (QEMU 7.2 here) a
        // guest hung early in 1 of 5 boots with a vCPU halted and its timer never
        // delivered (RCU stall reports, QEMU idle), and booted more slowly while the
        // two cores were busy (58-63 s to `login:` against 42-49 s).
        cmd.args(["-accel", "tcg,thread=single", "-cpu", "max", "-smp", "2"])
            .arg("-m")
            .arg(spec.memory_mib.to_string())
            .args(["-display", "none", "-monitor", "none", "-no-reboot"])
            .arg("-serial")
            .arg(format!("file:{}", console.display()))
            .arg("-kernel")
            .arg(spec.kernel)
            .arg("-initrd")
            .arg(spec.initrd)
            .arg("-append")
            .arg(
                format!(
                    "root=/dev/vda rw console=ttyS0 net.ifnames=0 {}",
                    spec.append
                )
                .trim_end(),
            )
            .arg("-drive")
            .arg(format!(
                "file={},if=virtio,format={disk_format}",
                spec.disk.display()
            ))
            .arg("-netdev")
            .arg(format!(
                "stream,id=trunk,server=off,addr.type=unix,addr.path={}",
                spec.trunk.display()
            ))
            .arg("-device")
            .arg(format!("virtio-net-pci,netdev=trunk,mac={}", spec.mac))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(dir.join("qemu.stderr")).unwrap())
            .process_group(0);
        // SAFETY: prctl only, between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("starting qemu-system-x86_64");
        Guest {
            child,
            console,
            started: Instant::now(),
            _one_at_a_time: lock,
        }
    }

    /// The serial console so far.
    pub fn console(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.console).unwrap_or_default()).into_owned()
    }

    /// Time since QEMU started.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Waits until the console shows `needle` (time since power-on), at most `limit`;
    /// fails early if QEMU exits or the console shows one of `fail` (a kernel panic,
    /// an emergency shell).
    pub fn wait_console(
        &mut self,
        needle: &str,
        fail: &[&str],
        limit: Duration,
    ) -> Result<Duration, String> {
        let start = Instant::now();
        loop {
            let text = self.console();
            if text.contains(needle) {
                return Ok(self.uptime());
            }
            if let Some(f) = fail.iter().find(|f| text.contains(**f)) {
                return Err(format!("the console shows {f:?} before {needle:?}"));
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                return Err(format!(
                    "QEMU exited ({st}) before {needle:?}: {}",
                    self.qemu_stderr()
                ));
            }
            if start.elapsed() > limit {
                return Err(format!("{needle:?} not on the console within {limit:?}"));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// An error if QEMU has exited or the console shows one of `fail`.
    pub fn check(&mut self, fail: &[&str]) -> Result<(), String> {
        let text = self.console();
        if let Some(f) = fail.iter().find(|f| text.contains(**f)) {
            return Err(format!("the console shows {f:?}"));
        }
        if let Ok(Some(st)) = self.child.try_wait() {
            return Err(format!("QEMU exited ({st}): {}", self.qemu_stderr()));
        }
        Ok(())
    }

    /// Waits at most `limit` for QEMU to exit (the guest powered off: `-no-reboot`
    /// also ends it on a reboot).
    pub fn wait_exit(&mut self, limit: Duration) -> Result<(), String> {
        let start = Instant::now();
        loop {
            if let Ok(Some(_)) = self.child.try_wait() {
                return Ok(());
            }
            if start.elapsed() > limit {
                return Err(format!("QEMU still running {limit:?} after the power-off"));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The last `n` lines of the console, for failure messages.
    pub fn console_tail(&self, n: usize) -> String {
        tail(&self.console(), n)
    }

    fn qemu_stderr(&self) -> String {
        let p = self.console.with_file_name("qemu.stderr");
        std::fs::read_to_string(p).unwrap_or_default()
    }

    /// Panics with `msg` and QEMU's stderr (the console follows as the guest is
    /// dropped).
    pub fn fail(&self, msg: &str) -> ! {
        panic!("{msg}\n---- qemu stderr ----\n{}", self.qemu_stderr())
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        let pgid = self.child.id() as i32;
        // SAFETY: kill(2) of the process group QEMU leads.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "---- serial console of the guest (last 80 lines) ----\n{}\n----",
                self.console_tail(80)
            );
        }
    }
}
