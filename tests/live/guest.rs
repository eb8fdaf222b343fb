//! A QEMU guest under TCG booting a built root's own kernel and initrd from a disk
//! image, its one NIC on a [`Trunk`](super::net::Trunk). One guest at a time across
//! all test processes (two TCG guests on two cores starve each other): the guest holds
//! `util::one_qemu` for its life, as every QEMU of the tests does. QEMU runs as
//! `hvseed vm` runs it ([`hvseed::vm::Guest`]): in its own process group, killed when
//! the guest is dropped (a panic included) and, through the parent-death signal, if
//! the test process itself is killed.

use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
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
    qemu: hvseed::vm::Guest,
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
        // One TCG thread for both vCPUs: with multi-threaded TCG (QEMU 7.2 here) a
        // guest hung early in 1 of 5 boots with a vCPU halted and its timer never
        // delivered (RCU stall reports, QEMU idle), and booted more slowly while the
        // two cores were busy (58-63 s to `login:` against 42-49 s).
        let mut args: Vec<OsString> = [
            "-accel",
            "tcg,thread=single",
            "-cpu",
            "max",
            "-smp",
            "2",
            "-display",
            "none",
            "-monitor",
            "none",
            "-no-reboot",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        let mut push = |a: &str, v: OsString| {
            args.push(a.into());
            args.push(v);
        };
        push("-m", spec.memory_mib.to_string().into());
        push("-serial", format!("file:{}", console.display()).into());
        push("-kernel", spec.kernel.into());
        push("-initrd", spec.initrd.into());
        push(
            "-append",
            format!(
                "root=/dev/vda rw console=ttyS0 net.ifnames=0 {}",
                spec.append
            )
            .trim_end()
            .into(),
        );
        push(
            "-drive",
            format!(
                "file={},if=virtio,format={disk_format}",
                spec.disk.display()
            )
            .into(),
        );
        push(
            "-netdev",
            format!(
                "stream,id=trunk,server=off,addr.type=unix,addr.path={}",
                spec.trunk.display()
            )
            .into(),
        );
        push(
            "-device",
            format!("virtio-net-pci,netdev=trunk,mac={}", spec.mac).into(),
        );
        let qemu = hvseed::vm::Guest::start("qemu-system-x86_64", &args)
            .unwrap_or_else(|e| panic!("{e:#}"));
        Guest {
            qemu,
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
            if let Some(st) = self.qemu.exited() {
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
        if let Some(st) = self.qemu.exited() {
            return Err(format!("QEMU exited ({st}): {}", self.qemu_stderr()));
        }
        Ok(())
    }

    /// Waits at most `limit` for QEMU to exit (the guest powered off: `-no-reboot`
    /// also ends it on a reboot).
    pub fn wait_exit(&mut self, limit: Duration) -> Result<(), String> {
        let start = Instant::now();
        loop {
            if self.qemu.exited().is_some() {
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
        self.qemu.stderr_tail()
    }

    /// Panics with `msg` and QEMU's stderr (the console follows as the guest is
    /// dropped).
    pub fn fail(&self, msg: &str) -> ! {
        panic!("{msg}\n---- qemu stderr ----\n{}", self.qemu_stderr())
    }
}

impl Drop for Guest {
    /// QEMU is stopped when `qemu` drops, after this.
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- serial console of the guest (last 80 lines) ----\n{}\n----",
                self.console_tail(80)
            );
        }
    }
}
