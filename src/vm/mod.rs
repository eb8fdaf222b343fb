//! `hvseed vm INVENTORY --host FQDN (--iso ISO | --pxe DIR | --boot disk --disk IMAGE)`:
//! boots one host of the inventory in QEMU the way a rack would boot it, and watches
//! its serial console (and, for PXE, its reports) for the milestones of its install.
//!
//! - `plan.rs`: what to boot: the checks of the inventory, host, media and disk before
//!   any guest starts, and the QEMU command line;
//! - `firmware.rs`: UEFI firmware from QEMU's firmware descriptors;
//! - `net.rs`: the user network that makes a PXE tree's http-base reach the embedded
//!   server;
//! - `console.rs`: which console lines mean which milestone, and which end the run;
//! - `accel.rs`: KVM when it works (a probe guest with a deadline), else TCG;
//! - `run.rs`: the run loop: start, watch, stop the guest on every path, summarise.
//!
//! See docs/testing.md ("Test your media in CI" in the README) for what each target
//! reaches here.

mod accel;
pub mod console;
pub mod firmware;
pub mod net;
mod plan;
mod run;
pub mod tagger;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;

pub use accel::Accel;
pub use console::Milestone;
pub use run::{Guest, Running};

/// What to boot the host from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Boot {
    /// A remastered ISO written by `hvseed iso` for this inventory.
    Iso(PathBuf),
    /// A PXE tree written by `hvseed pxe` for this inventory.
    Pxe(PathBuf),
    /// The disk given with `--disk` (an installed image), without an installer.
    Disk,
}

/// The bus the disk is attached to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskBus {
    /// `virtio-blk-pci` (`/dev/vda`): much faster under TCG.
    Virtio,
    /// `ide-hd` (`/dev/sda`), which every installer's kernel knows.
    Ide,
}

impl std::str::FromStr for DiskBus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "virtio" => Ok(DiskBus::Virtio),
            "ide" => Ok(DiskBus::Ide),
            _ => Err(format!("{s:?}: give virtio or ide")),
        }
    }
}

/// `--boot disk` with the image's own kernel (`-kernel`, `-initrd`, `-append`), for a
/// disk image without a boot loader (a root made with debootstrap or mmdebstrap, as
/// hvseed's live tests make).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Direct {
    pub kernel: PathBuf,
    pub initrd: Option<PathBuf>,
    /// The kernel's command line (its root device, `console=ttyS0` for the console).
    pub append: String,
}

/// What `hvseed vm` is asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    pub inventory: PathBuf,
    pub host: String,
    pub boot: Boot,
    /// Boot with this MAC instead of the host's (media tested against a machine the
    /// inventory does not know).
    pub mac: Option<String>,
    /// The disk to install to or boot; kept after the run.
    pub disk: Option<PathBuf>,
    /// `--boot disk` through this kernel instead of the disk's boot loader.
    pub direct: Option<Direct>,
    /// Create `disk` as a qcow2 overlay on this image (read, never written), with the
    /// marker that lets later runs write it: an installed image booted several times,
    /// its changes kept from one run to the next.
    pub disk_from: Option<PathBuf>,
    /// The disk's bus (default: virtio when the host's install disk is `vd*`, else IDE).
    pub disk_bus: Option<DiskBus>,
    /// The host's networks in the caller's network namespace of this name (`--netns`).
    pub netns: Option<String>,
    /// Size of a disk hvseed creates, in GiB (default: the target's).
    pub disk_size_gib: Option<u64>,
    pub memory_mib: u32,
    pub cpus: u32,
    pub uefi: bool,
    pub accel: Accel,
    pub until: Milestone,
    pub timeout: Duration,
    /// Also copy the console to stderr.
    pub console: bool,
    /// The serial log (default: a file in a new temporary directory, kept).
    pub log: Option<PathBuf>,
    /// Print a JSON summary on stdout.
    pub json: bool,
}

/// `hvseed vm`: exit 0 when the milestone was reached, 1 when not (with the console's
/// last lines and the log's path); errors before any guest starts are `Err`.
pub fn run(o: Options) -> Result<ExitCode> {
    run::run(o)
}

/// Starts the guest as [`run`] does and leaves it running for the caller to watch
/// (stopped when the [`Running`] is dropped): for programs that check an installed
/// host from outside, such as hvseed's live-host tests.
pub fn start(o: &Options) -> Result<Running> {
    run::start(o)
}

/// `hvseed vm-relay ADDR`: what QEMU's `guestfwd=…-cmd:` runs for each connection
/// of the guest to the http-base: copies stdin to a TCP connection to `ADDR` (the
/// embedded server) and the connection's replies to stdout.
pub fn relay(addr: std::net::SocketAddr) -> Result<ExitCode> {
    use anyhow::Context as _;
    use std::net::Shutdown;
    let conn = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .with_context(|| format!("connecting to {addr}"))?;
    let up = conn.try_clone().context("cloning the connection")?;
    let to_server = std::thread::spawn(move || {
        pump(std::io::stdin().lock(), &up);
        let _ = up.shutdown(Shutdown::Write);
    });
    pump(&conn, std::io::stdout().lock());
    // The server closed: the guest's connection ends with it (QEMU closes the socket
    // when this command exits), whatever the guest still sends.
    drop(to_server);
    Ok(ExitCode::SUCCESS)
}

/// Copies `from` to `to`, flushing each piece so that nothing waits in a buffer,
/// until `from` ends or either side fails.
fn pump(mut from: impl std::io::Read, mut to: impl std::io::Write) {
    let mut buf = [0u8; 16384];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).and_then(|()| to.flush()).is_err() {
                    break;
                }
            }
        }
    }
}
