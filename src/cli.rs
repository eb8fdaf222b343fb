//! Command-line types (clap derive; their `///` comments are the help text), each
//! turned into the options of the module that carries the verb out, and the log's
//! set-up. The only module that knows clap.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::http_base::HttpBase;

/// Turn one YAML inventory into unattended installs of CloudStack KVM hosts.
///
/// hvseed reads a cluster inventory (see docs/inventory.md), renders a CentOS 6.3
/// kickstart or Ubuntu 12.04 preseed plus a first-boot plan for every host, and puts
/// them on a remastered install ISO or a PXE tree. Hosts install untouched and come up
/// meeting every CloudStack KVM requirement.
#[derive(Debug, Parser)]
#[command(name = "hvseed", version, propagate_version = true)]
#[command(after_help = "Examples:\n  \
    hvseed check profiles/examples/lab-centos6.yaml\n  \
    hvseed render profiles/examples/lab-centos6.yaml --out out/\n  \
    hvseed iso lab.yaml --source CentOS-6.3-x86_64-bin-DVD1.iso --out lab.iso\n  \
    hvseed pxe lab.yaml --source CentOS-6.3-x86_64-bin-DVD1.iso --out /srv/hvseed --http-base http://10.0.0.2:8080\n  \
    hvseed serve /srv/hvseed --listen 0.0.0.0:8080")]
pub struct Cli {
    /// More log output on stderr (-v: debug, -vv: trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Validate an inventory; print every error and warning as FILE:LINE:COL: key: message.
    ///
    /// Exit status 0 when the inventory is valid (warnings may be printed), 1 when it has
    /// errors.
    Check(InventoryCheckConfig),
    /// Render kickstarts/preseeds and plans for every host into a directory.
    Render(InventoryRenderConfig),
    /// Remaster a CentOS 6.3, Ubuntu 12.04 or Debian 12 install ISO into one unattended ISO for the cluster.
    Iso(IsoCustomizeConfig),
    /// Write a PXE (TFTP + HTTP) tree that installs each host by its MAC.
    Pxe(PxeTreeConfig),
    /// Serve a PXE tree's HTTP side and collect first-boot reports.
    Serve(ServeConfig),
    /// Boot one host of the inventory in QEMU from its ISO or PXE tree and watch the
    /// install's milestones on the serial console.
    ///
    /// Exit status 0 when the milestone of --until was reached, 1 when not (the last
    /// console lines and the serial log's path are printed).
    Vm(VmConfig),
    /// (internal) Relays one guest connection of `hvseed vm --pxe` to its server.
    #[command(hide = true, name = "vm-relay")]
    VmRelay(VmRelayConfig),
}

/// `hvseed check INVENTORY`
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  hvseed check profiles/examples/lab-centos6.yaml")]
pub struct InventoryCheckConfig {
    /// The inventory file (YAML, format version 1).
    pub inventory: PathBuf,
}

/// `hvseed render INVENTORY --out DIR`
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  hvseed render profiles/examples/lab-centos6.yaml --out out/")]
pub struct InventoryRenderConfig {
    /// The inventory file (YAML, format version 1).
    pub inventory: PathBuf,
    /// Output directory: DIR/hosts/<fqdn>/{ks.cfg|preseed.cfg,plan.json} and DIR/fleet/.
    #[arg(long, short)]
    pub out: PathBuf,
    /// Replace an existing DIR even if it holds files hvseed did not write.
    #[arg(long, short)]
    pub force: bool,
    /// Directory of templates that override the built-in ones by file name.
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
    /// Base URL the installed files are served from (as `hvseed pxe` lays them out);
    /// without it the files are expected under /hvseed/ on the install CD.
    #[arg(long, value_name = "URL")]
    pub http_base: Option<HttpBase>,
}

/// `hvseed iso INVENTORY --source IN.iso --out OUT.iso`
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  hvseed iso lab.yaml --source CentOS-6.3-x86_64-bin-DVD1.iso --out lab.iso"
)]
pub struct IsoCustomizeConfig {
    /// The inventory file (YAML, format version 1).
    pub inventory: PathBuf,
    /// The distribution's install ISO (never modified).
    #[arg(long)]
    pub source: PathBuf,
    /// Where to write the remastered ISO (written to a temporary file, then renamed).
    #[arg(long, short)]
    pub out: PathBuf,
    /// Put only this host's install file on the ISO instead of the fleet file.
    #[arg(long, value_name = "FQDN")]
    pub host: Option<String>,
    /// The static first-boot agent to put on the ISO (default: HVSEED_FIRSTBOOT, then
    /// beside hvseed, then this checkout's musl build).
    #[arg(long, value_name = "PATH")]
    pub firstboot: Option<PathBuf>,
    /// Directory of templates that override the built-in ones by file name.
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
}

/// `hvseed pxe INVENTORY --source IN.iso --out DIR --http-base URL`
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  hvseed pxe lab.yaml --source CentOS-6.3-x86_64-bin-DVD1.iso --out /srv/hvseed \\\n      --http-base http://10.0.0.2:8080\n  hvseed pxe lab-debian12.yaml --source netboot.tar.gz --out /srv/hvseed \\\n      --http-base http://10.0.0.2:8080\n\nos: debian12 takes d-i's netboot files instead of an ISO (the netinst CD's installer\ncannot boot from the network): Debian's netboot.tar.gz of the same 12.x point release,\nits unpacked directory, or /usr/lib/debian-installer/images/12/amd64/text from the\ndebian-installer-12-netboot-amd64 package."
)]
pub struct PxeTreeConfig {
    /// The inventory file (YAML, format version 1).
    pub inventory: PathBuf,
    /// The distribution's install ISO: its installer kernel and initrd are extracted.
    /// For os: debian12, d-i's netboot files instead (netboot.tar.gz or its directory;
    /// see below).
    #[arg(long, value_name = "ISO|NETBOOT")]
    pub source: PathBuf,
    /// The tree to write or update (DIR/tftp, DIR/http, DIR/dnsmasq.conf).
    #[arg(long, short)]
    pub out: PathBuf,
    /// The URL under which DIR/http is served to the installers (e.g. by `hvseed serve`).
    #[arg(long, value_name = "URL")]
    pub http_base: HttpBase,
    /// Also write a reproducible tar.gz of the tree.
    #[arg(long, value_name = "FILE.tar.gz")]
    pub bundle: Option<PathBuf>,
    /// Directory holding pxelinux.0 (default: /usr/lib/PXELINUX).
    #[arg(long, value_name = "DIR")]
    pub pxelinux_dir: Option<PathBuf>,
    /// Directory holding ldlinux.c32 and the other BIOS modules (default:
    /// /usr/lib/syslinux/modules/bios).
    #[arg(long, value_name = "DIR")]
    pub syslinux_modules: Option<PathBuf>,
    /// The static first-boot agent to serve (default: HVSEED_FIRSTBOOT, then beside
    /// hvseed, then this checkout's musl build).
    #[arg(long, value_name = "PATH")]
    pub firstboot: Option<PathBuf>,
    /// Directory of templates that override the built-in ones by file name.
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
    /// Arm the host's PXE entry again ("all": every host), so that its next PXE boot
    /// installs it (wiping install.disk). A host's entry boots the local disk once it
    /// was installed (see --disarm). Repeatable.
    #[arg(long, value_name = "FQDN")]
    pub reinstall: Vec<String>,
    /// Mark the host as installed ("all": every host): its PXE entry boots the local
    /// disk. `hvseed serve` does this by itself when the installer fetches the host's
    /// install file; with another web server, run this after the install. Repeatable.
    #[arg(long, value_name = "FQDN")]
    pub disarm: Vec<String>,
}

/// `hvseed serve DIR --listen ADDR:PORT`
#[derive(Debug, Args)]
#[command(after_help = "Serves:\n  \
    GET  /<path>          files of DIR/http (kickstarts, preseeds, plans, the agent, packages)\n  \
    POST /report/<fqdn>   first-boot reports, stored in DIR/reports/<fqdn>.json\n  \
    GET  /                the fleet page: each host's state, CPU match per cluster\n  \
    GET  /status.json     the same as JSON\n\n\
    Example:\n  hvseed serve /srv/hvseed --listen 0.0.0.0:8080")]
pub struct ServeConfig {
    /// A tree written by `hvseed pxe` (its http/ is served; reports go to DIR/reports/).
    pub dir: PathBuf,
    /// Address and port to listen on (port 0: any free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
}

/// `hvseed vm INVENTORY --host FQDN (--iso ISO | --pxe DIR | --boot disk --disk IMAGE)`
#[derive(Debug, Args)]
#[command(after_help = "Milestones (--until):\n  \
    installer   the installer's kernel started with hvseed's arguments\n  \
    installing  hvseed's early script picked the host (`hvseed: installing <fqdn>`)\n  \
    installed   hvseed's late script handed over to the agent and the installer rebooted\n  \
    ready       the first-boot agent reported ready\n\n\
    A failure on the console (`hvseed: ERROR`, a kernel panic, an installer error, no\n\
    boot device) ends the run early. The guest is stopped on every path.\n\n\
    Examples:\n  \
    hvseed vm lab.yaml --host kvm21.lab.example.org --iso lab.iso --until installing\n  \
    hvseed vm lab.yaml --host kvm21.lab.example.org --pxe /srv/hvseed --uefi --json")]
#[command(group(clap::ArgGroup::new("media").args(["iso", "pxe"])))]
pub struct VmConfig {
    /// The inventory file (YAML, format version 1).
    pub inventory: PathBuf,
    /// The host to boot (its MAC on its trunk NIC).
    #[arg(long, value_name = "FQDN")]
    pub host: String,
    /// An ISO written by `hvseed iso` for this inventory.
    #[arg(long, value_name = "ISO")]
    pub iso: Option<PathBuf>,
    /// A tree written by `hvseed pxe` for this inventory: QEMU's TFTP serves its tftp/,
    /// an embedded `hvseed serve` its http/ at the tree's --http-base address.
    #[arg(long, value_name = "DIR")]
    pub pxe: Option<PathBuf>,
    /// `media` (the ISO or the PXE tree) or `disk` (boot --disk, an installed image,
    /// without an installer).
    #[arg(long, default_value = "media", value_parser = ["media", "disk"])]
    pub boot: String,
    /// The disk image: created (sparse) if absent and kept; an existing file is
    /// written only if hvseed vm created it (a `.hvseed-vm` marker beside it); with
    /// --boot disk any image is booted through a snapshot, never written.
    #[arg(long, value_name = "PATH")]
    pub disk: Option<PathBuf>,
    /// With --boot disk: boot this kernel (QEMU's -kernel) instead of the disk's boot
    /// loader, for an image that has none.
    #[arg(long, value_name = "PATH")]
    pub kernel: Option<PathBuf>,
    /// With --kernel: its initrd.
    #[arg(long, value_name = "PATH", requires = "kernel")]
    pub initrd: Option<PathBuf>,
    /// With --kernel: its command line (default `console=ttyS0`; name the root
    /// device, e.g. `root=/dev/sda rw console=ttyS0`).
    #[arg(long, value_name = "ARGS", requires = "kernel")]
    pub append: Option<String>,
    /// Create --disk (a path that does not exist yet) as a qcow2 overlay on IMAGE, with
    /// hvseed vm's marker: IMAGE is only read; later runs with --disk alone write the
    /// overlay (an installed image booted again, its changes kept). Needs qemu-img.
    #[arg(long, value_name = "IMAGE", requires = "disk")]
    pub disk_from: Option<PathBuf>,
    /// The disk's bus: virtio (/dev/vda, much faster under TCG) or ide (/dev/sda);
    /// default virtio when the host's install disk is vd*, else ide.
    #[arg(long, value_name = "virtio|ide")]
    pub disk_bus: Option<crate::vm::DiskBus>,
    /// Carry the host's networks into the caller's network namespace NAME (as root)
    /// instead of one of the run's own: frames tagged n go to the tap vlan<n>, untagged
    /// frames to the tap `untagged` (not QEMU's user network); a persistent tap of that
    /// name the caller made there is used (its addresses and servers stay across runs),
    /// else one is made for the run. No address is added there; the namespace is left
    /// as it was. Not with --pxe.
    #[arg(long, value_name = "NAME", conflicts_with = "pxe")]
    pub netns: Option<String>,
    /// Size of a disk hvseed creates, in GiB (default: enough for the target).
    #[arg(long, value_name = "GiB")]
    pub disk_size: Option<u64>,
    /// Guest memory in MiB.
    #[arg(long, default_value_t = 1024)]
    pub memory: u32,
    /// Guest CPUs.
    #[arg(long, default_value_t = 1)]
    pub cpus: u32,
    /// Boot with UEFI firmware (found through QEMU's firmware descriptors).
    #[arg(long)]
    pub uefi: bool,
    /// auto (KVM if a probe guest runs under it, else TCG with a warning), kvm or tcg.
    #[arg(long, default_value = "auto", value_name = "auto|kvm|tcg")]
    pub accel: crate::vm::Accel,
    /// The milestone to reach: installer, installing, installed or ready.
    #[arg(long, default_value = "installing", value_name = "MILESTONE")]
    pub until: crate::vm::Milestone,
    /// Bound on the whole run, in seconds.
    #[arg(long, default_value_t = 1800, value_name = "SECONDS")]
    pub timeout: u64,
    /// Also show the serial console on stderr.
    #[arg(long)]
    pub console: bool,
    /// Write the serial log here (default: a new temporary directory, removed when the
    /// run succeeds and kept, with its path printed, when it fails).
    #[arg(long, value_name = "PATH")]
    pub log: Option<PathBuf>,
    /// Boot with this MAC instead of the host's: media tested against a machine the
    /// inventory does not know (what it should do is refuse or boot locally).
    #[arg(long, value_name = "MAC")]
    pub mac: Option<String>,
    /// Print a JSON summary on stdout (milestones with their times, the outcome).
    #[arg(long)]
    pub json: bool,
}

/// `hvseed vm-relay ADDR` (run by QEMU for `hvseed vm --pxe`).
#[derive(Debug, Args)]
pub struct VmRelayConfig {
    pub addr: SocketAddr,
}

impl TryFrom<VmConfig> for crate::vm::Options {
    type Error = anyhow::Error;
    fn try_from(c: VmConfig) -> anyhow::Result<Self> {
        let boot = match (c.boot.as_str(), c.iso, c.pxe) {
            ("disk", None, None) => {
                if c.disk.is_none() {
                    anyhow::bail!("--boot disk needs --disk IMAGE (an installed system's disk)");
                }
                crate::vm::Boot::Disk
            }
            ("disk", _, _) => anyhow::bail!("--boot disk boots --disk alone: drop --iso/--pxe"),
            (_, Some(iso), None) => crate::vm::Boot::Iso(iso),
            (_, None, Some(dir)) => crate::vm::Boot::Pxe(dir),
            _ => anyhow::bail!(
                "give the media to boot: --iso ISO or --pxe DIR (or --boot disk --disk IMAGE)"
            ),
        };
        if c.kernel.is_some() && !matches!(boot, crate::vm::Boot::Disk) {
            anyhow::bail!(
                "--kernel boots an installed disk without its boot loader: use it with --boot disk --disk IMAGE"
            );
        }
        let direct = c.kernel.map(|kernel| crate::vm::Direct {
            kernel,
            initrd: c.initrd,
            append: c.append.unwrap_or_else(|| "console=ttyS0".into()),
        });
        if c.timeout == 0 || c.memory < 128 || c.cpus == 0 || c.disk_size == Some(0) {
            anyhow::bail!(
                "--timeout, --memory (MiB, at least 128), --cpus and --disk-size must be positive"
            );
        }
        Ok(crate::vm::Options {
            inventory: c.inventory,
            host: c.host,
            boot,
            mac: c.mac,
            disk: c.disk,
            disk_from: c.disk_from,
            disk_bus: c.disk_bus,
            netns: c.netns,
            direct,
            disk_size_gib: c.disk_size,
            memory_mib: c.memory,
            cpus: c.cpus,
            uefi: c.uefi,
            accel: c.accel,
            until: c.until,
            timeout: std::time::Duration::from_secs(c.timeout),
            console: c.console,
            log: c.log,
            json: c.json,
        })
    }
}

// Each verb's arguments become the options of the module that carries it out, which
// knows nothing of clap.

impl From<InventoryRenderConfig> for crate::render::Options {
    fn from(c: InventoryRenderConfig) -> Self {
        crate::render::Options {
            inventory: c.inventory,
            out: c.out,
            force: c.force,
            templates: c.templates,
            http_base: c.http_base,
        }
    }
}

impl From<IsoCustomizeConfig> for crate::iso::Options {
    fn from(c: IsoCustomizeConfig) -> Self {
        crate::iso::Options {
            inventory: c.inventory,
            source: c.source,
            out: c.out,
            host: c.host,
            firstboot: c.firstboot,
            templates: c.templates,
        }
    }
}

impl From<PxeTreeConfig> for crate::pxe::Options {
    fn from(c: PxeTreeConfig) -> Self {
        crate::pxe::Options {
            inventory: c.inventory,
            source: c.source,
            out: c.out,
            http_base: c.http_base,
            bundle: c.bundle,
            pxelinux_dir: c.pxelinux_dir,
            syslinux_modules: c.syslinux_modules,
            firstboot: c.firstboot,
            templates: c.templates,
            reinstall: c.reinstall,
            disarm: c.disarm,
        }
    }
}

impl From<ServeConfig> for crate::serve::Options {
    fn from(c: ServeConfig) -> Self {
        crate::serve::Options {
            dir: c.dir,
            listen: c.listen,
        }
    }
}

/// The log's writer: stderr, with every write error (a closed pipe, a full disk, a
/// closed descriptor) dropped, so that a log line that cannot be shown never fails,
/// panics or stalls the work it reports on.
#[derive(Debug, Clone, Copy, Default)]
pub struct LossyStderr;

impl std::io::Write for LossyStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().lock().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LossyStderr {
    type Writer = LossyStderr;

    fn make_writer(&'a self) -> LossyStderr {
        LossyStderr
    }
}

/// The log's writer for `serve`: lines are handed to a thread that writes them to
/// stderr, so a stderr nobody reads (a full pipe, e.g. `hvseed serve ... | less` left
/// alone) never holds up a request. Lines that do not fit in the queue
/// ([`LOG_QUEUE_LINES`], [`LOG_QUEUE_BYTES`]) are dropped and counted; the count is logged once stderr
/// takes lines again.
#[derive(Debug, Clone, Copy, Default)]
pub struct QueuedStderr;

/// Log lines waiting for a slow stderr before new ones are dropped.
pub const LOG_QUEUE_LINES: usize = 4096;
/// Bytes of those lines, at most: a line quotes the request's path, which a client
/// chooses (up to 64 KiB), so a bound in lines alone let 4,096 of them hold 250 MiB.
pub const LOG_QUEUE_BYTES: usize = 4 << 20;

enum LogMsg {
    Line(Vec<u8>),
    Flush(std::sync::mpsc::SyncSender<()>),
}

static LOG_QUEUE: std::sync::OnceLock<std::sync::mpsc::SyncSender<LogMsg>> =
    std::sync::OnceLock::new();
static LOG_DROPPED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
/// Bytes of the lines in the queue (see [`LOG_QUEUE_BYTES`]).
static LOG_QUEUED_BYTES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl QueuedStderr {
    fn start() {
        LOG_QUEUE.get_or_init(|| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<LogMsg>(LOG_QUEUE_LINES);
            let spawned = std::thread::Builder::new()
                .name("log".into())
                .spawn(move || {
                    use std::io::Write as _;
                    for msg in rx {
                        match msg {
                            LogMsg::Line(line) => {
                                let _ = LossyStderr.write_all(&line);
                                LOG_QUEUED_BYTES
                                    .fetch_sub(line.len(), std::sync::atomic::Ordering::Relaxed);
                            }
                            LogMsg::Flush(ack) => {
                                let _ = ack.try_send(());
                            }
                        }
                        let dropped = LOG_DROPPED.swap(0, std::sync::atomic::Ordering::Relaxed);
                        if dropped > 0 {
                            crate::say!(
                                "hvseed: {dropped} log line(s) dropped: stderr was not being read"
                            );
                        }
                    }
                });
            if spawned.is_err() {
                // No thread: a sender whose receiver is gone; every line is dropped
                // rather than written in place (which could block).
                let (tx, _) = std::sync::mpsc::sync_channel(0);
                return tx;
            }
            tx
        });
    }
}

impl std::io::Write for QueuedStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        use std::sync::atomic::Ordering::Relaxed;
        let sent = LOG_QUEUE.get().map(|tx| {
            let queued = LOG_QUEUED_BYTES.fetch_add(buf.len(), Relaxed);
            let sent = queued.saturating_add(buf.len()) <= LOG_QUEUE_BYTES
                && tx.try_send(LogMsg::Line(buf.to_vec())).is_ok();
            if !sent {
                LOG_QUEUED_BYTES.fetch_sub(buf.len(), Relaxed);
            }
            sent
        });
        match sent {
            Some(true) => {}
            Some(false) => {
                LOG_DROPPED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            None => {
                let _ = LossyStderr.write(buf);
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for QueuedStderr {
    type Writer = QueuedStderr;

    fn make_writer(&'a self) -> QueuedStderr {
        QueuedStderr
    }
}

/// Waits (at most `timeout`) until the lines queued by [`QueuedStderr`] are written;
/// for the end of `serve`, whose last lines say how it stopped.
pub fn flush_log(timeout: std::time::Duration) {
    let Some(tx) = LOG_QUEUE.get() else {
        return;
    };
    let deadline = std::time::Instant::now() + timeout;
    let (ack_tx, ack_rx) = std::sync::mpsc::sync_channel(1);
    let mut msg = LogMsg::Flush(ack_tx);
    loop {
        match tx.try_send(msg) {
            Ok(()) => break,
            Err(std::sync::mpsc::TrySendError::Full(m)) => msg = m,
            Err(std::sync::mpsc::TrySendError::Disconnected(_)) => return,
        }
        if std::time::Instant::now() >= deadline {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let _ = ack_rx.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()));
}

/// Logs go to stderr (coloured only when it is a terminal): info and up by default,
/// `-v` debug, `-vv` trace, `-q` errors only; `RUST_LOG` overrides all of these.
/// A log line that cannot be written is dropped ([`LossyStderr`]); with `queued`
/// (`serve`), lines are written by a thread of their own ([`QueuedStderr`]).
pub fn init_logging(verbose: u8, quiet: bool, queued: bool) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .without_time()
        // Its own report of a failed write would go to stderr with `eprintln!`, which
        // panics when stderr is the very thing that failed.
        .log_internal_errors(false);
    if queued {
        QueuedStderr::start();
        builder.with_writer(QueuedStderr).init();
    } else {
        builder.with_writer(LossyStderr).init();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definitions_are_consistent() {
        Cli::command().debug_assert();
    }
}
