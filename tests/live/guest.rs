//! A live host booted through `hvseed vm` itself ([`hvseed::vm::start`]: the checks,
//! disk, networks and QEMU command line of `hvseed vm --boot disk --disk-from IMAGE
//! --disk DISK --kernel … --netns NAME`), left running for the test to check from
//! outside. One guest at a time across all test processes (two TCG guests on two cores
//! starve each other): the guest holds `util::one_qemu` for its life, as every QEMU of
//! the tests does. QEMU runs in its own process group, killed when the guest is dropped
//! (a panic included) and, through the parent-death signal, if the test process itself
//! is killed.

use std::fs::File;
use std::path::Path;
use std::time::{Duration, Instant};

use super::image::tail;
use crate::util::one_qemu;

/// How to boot.
pub struct GuestSpec<'a> {
    /// The inventory and the host of it to boot (its MAC on its trunk NIC).
    pub inventory: &'a Path,
    pub fqdn: &'a str,
    pub kernel: &'a Path,
    pub initrd: &'a Path,
    /// The disk the guest writes: created by `hvseed vm` as an overlay on `image` when
    /// it does not exist yet (`--disk-from`), booted and written again when it does.
    pub disk: &'a Path,
    pub image: &'a Path,
    /// The test's network namespace, where the trunk's taps are (`--netns`).
    pub netns: &'a str,
    /// Kernel arguments after `root=/dev/vda rw console=ttyS0 net.ifnames=0`.
    pub append: &'a str,
    /// The guest's memory (`--memory`), MiB.
    pub memory_mib: u32,
}

pub struct Guest {
    run: hvseed::vm::Running,
    started: Instant,
    _one_at_a_time: File,
}

impl Guest {
    /// Starts the guest (after waiting for the global lock); its serial console goes to
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
        let o = hvseed::vm::Options {
            inventory: spec.inventory.into(),
            host: spec.fqdn.into(),
            boot: hvseed::vm::Boot::Disk,
            mac: None,
            disk: Some(spec.disk.into()),
            disk_from: (!spec.disk.exists()).then(|| spec.image.into()),
            disk_bus: Some(hvseed::vm::DiskBus::Virtio),
            netns: Some(spec.netns.into()),
            direct: Some(hvseed::vm::Direct {
                kernel: spec.kernel.into(),
                initrd: Some(spec.initrd.into()),
                append: format!(
                    "root=/dev/vda rw console=ttyS0 net.ifnames=0 {}",
                    spec.append
                )
                .trim_end()
                .into(),
            }),
            disk_size_gib: None,
            memory_mib: spec.memory_mib,
            cpus: 2,
            uefi: false,
            accel: hvseed::vm::Accel::Tcg,
            until: hvseed::vm::Milestone::Ready,
            timeout: Duration::from_secs(3600),
            console: false,
            log: Some(dir.join("console.log")),
            json: false,
        };
        let run = hvseed::vm::start(&o).unwrap_or_else(|e| panic!("hvseed vm: {e:#}"));
        Guest {
            run,
            started: Instant::now(),
            _one_at_a_time: lock,
        }
    }

    /// The serial console so far.
    pub fn console(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(self.run.log()).unwrap_or_default()).into_owned()
    }

    /// Time since QEMU started.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// An error if QEMU has exited or the console shows one of `fail`.
    pub fn check(&mut self, fail: &[&str]) -> Result<(), String> {
        let text = self.console();
        if let Some(f) = fail.iter().find(|f| text.contains(**f)) {
            return Err(format!("the console shows {f:?}"));
        }
        if let Some(st) = self.run.guest().exited() {
            return Err(format!("QEMU exited ({st}): {}", self.run.stderr_tail()));
        }
        Ok(())
    }

    /// Waits at most `limit` for QEMU to exit (the guest powered off).
    pub fn wait_exit(&mut self, limit: Duration) -> Result<(), String> {
        let start = Instant::now();
        loop {
            if self.run.guest().exited().is_some() {
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

    /// Panics with `msg` and QEMU's stderr (the console follows as the guest is
    /// dropped).
    pub fn fail(&self, msg: &str) -> ! {
        panic!("{msg}\n---- qemu stderr ----\n{}", self.run.stderr_tail())
    }
}

impl Drop for Guest {
    /// QEMU is stopped when `run` drops, after this.
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- serial console of the guest (last 80 lines) ----\n{}\n----",
                self.console_tail(80)
            );
        }
    }
}
