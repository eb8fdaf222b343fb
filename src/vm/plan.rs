//! What a run boots: every check before a guest starts (host, media built for this
//! inventory and target, firmware, disk ownership), and the QEMU command line.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use super::console::{Expect, Milestone};
use super::firmware::{self, Uefi};
use super::net::GuestNet;
use super::{Boot, Options};
use crate::http_base::HttpBase;
use crate::inventory::{Host, Inventory};
use crate::target::{BootValues, PxeUefi};

/// The QEMU binary (looked up on PATH).
pub const QEMU: &str = "qemu-system-x86_64";

/// Beside a disk hvseed created: says so. A disk without it is never written.
pub const DISK_MARKER_SUFFIX: &str = ".hvseed-vm";
const DISK_MARKER_TEXT: &str = "hvseed vm created this disk image; hvseed vm may overwrite it\n";

/// Everything a run needs, checked.
#[derive(Debug)]
pub struct Prepared {
    pub fqdn: String,
    pub cluster: String,
    pub mac: String,
    pub expect: Expect,
    pub media: Media,
    pub uefi: Option<Uefi>,
    pub disk: Disk,
    /// Milestones this run cannot reach, each with why (said before booting).
    pub unreachable: Vec<(Milestone, String)>,
    /// The trunk NIC's index when it is `ethN` (NICs before it get throwaway MACs).
    pub nic_index: usize,
    pub disk_if: &'static str,
    /// The management VLAN, carried into a namespace of this run (None: it cannot be).
    pub vlan: Option<super::tagger::Management>,
    /// `--boot disk --kernel …`: the kernel QEMU starts instead of the disk's loader.
    pub direct: Option<super::Direct>,
    /// `--netns`: the caller's namespace that gets the host's networks, untagged too.
    pub netns: Option<String>,
    /// The management network's VLAN id.
    pub management_vlan: u16,
}

#[derive(Debug)]
pub enum Media {
    Iso(PathBuf),
    Pxe {
        dir: PathBuf,
        net: GuestNet,
        bootfile: String,
    },
    None,
}

/// The disk the guest gets.
#[derive(Debug)]
pub struct Disk {
    pub path: PathBuf,
    /// Attached with `snapshot=on`: a disk hvseed did not create, only booted.
    pub snapshot: bool,
    /// Created by this run (at `path`, plus its marker); `None` for a given disk.
    pub create_gib: Option<u64>,
    /// `raw`, or `qcow2` for a given image that starts with qcow2's magic.
    pub format: &'static str,
    /// `--disk-from`: created by this run as a qcow2 overlay on this image (its
    /// absolute path and format), which is only read.
    pub backing: Option<(PathBuf, &'static str)>,
}

pub fn prepare(o: &Options, scratch: &Path) -> Result<Prepared> {
    let inv = crate::inventory::load_valid(&o.inventory)?;
    let host = inv.host_named(&o.host)?;
    let mac = match &o.mac {
        None => host.mac.clone(),
        Some(m) => hvseed_plan::names::normalize_mac(m).ok_or_else(|| {
            anyhow!("--mac {m}: not a MAC address; write it as 52:54:00:12:34:56")
        })?,
    };
    which(QEMU).ok_or_else(|| {
        anyhow!(
            "{QEMU} is not on PATH: install QEMU (Debian/Ubuntu: apt-get install qemu-system-x86)"
        )
    })?;
    let uefi = if o.uefi {
        Some(firmware::find(Path::new(firmware::DESCRIPTOR_DIR))?)
    } else {
        None
    };
    let target = crate::target::of(inv.os);
    let (media, installer_args) = match &o.boot {
        Boot::Iso(iso) => iso_media(&inv, host, iso, scratch)?,
        Boot::Pxe(dir) => pxe_media(&inv, host, dir, o.uefi, &mac)?,
        Boot::Disk => (Media::None, Vec::new()),
    };
    if let Some(d) = &o.direct {
        for (what, f) in [
            ("--kernel", Some(&d.kernel)),
            ("--initrd", d.initrd.as_ref()),
        ] {
            if let Some(f) = f {
                if !f.is_file() {
                    bail!("{what} {}: no such file", f.display());
                }
            }
        }
    }
    let disk = disk(o, &inv)?;
    let mut unreachable = Vec::new();
    let m = &host.network.management;
    if let Some(name) = &o.netns {
        if matches!(o.boot, Boot::Pxe(_)) {
            bail!(
                "--netns gives the untagged side to namespace {name}, where QEMU's TFTP and \
                 the embedded server do not answer: boot a PXE tree without --netns"
            );
        }
        if let Some(why) = super::tagger::unavailable() {
            bail!("--netns {name}: {why}");
        }
        super::tagger::Netns::existing(name)?;
    }
    let vlan = match super::tagger::unavailable() {
        None => Some(super::tagger::Management {
            vlan: m.vlan,
            gateway: m.gateway,
            prefix: m.prefix,
        }),
        Some(why) => {
            unreachable.push((
                Milestone::Ready,
                format!(
                    "{}'s management network is VLAN {}, which QEMU's user network drops, and \
                     {why}: the installed host cannot reach its gateway {}, so its first-boot \
                     agent rolls back instead of reporting ready (run hvseed vm as root to \
                     carry the VLAN)",
                    host.fqdn, m.vlan, m.gateway
                ),
            ));
            None
        }
    };
    if matches!(o.boot, Boot::Disk) {
        for m in [
            Milestone::Installer,
            Milestone::Installing,
            Milestone::Installed,
        ] {
            unreachable.push((m, "--boot disk starts no installer".into()));
        }
    }
    let stranger = !inv.hosts.iter().any(|h| h.mac == mac);
    if stranger {
        crate::say!(
            "hvseed vm: MAC {mac} is not in {}: the run passes if the media start no kernel and \
             the firmware finds nothing more to boot (--until does not apply)",
            inv.path.display()
        );
    } else if mac != host.mac {
        bail!(
            "--mac {mac} belongs to another host of {}: boot that host with --host instead",
            inv.path.display()
        );
    }
    let nic_index = host
        .network
        .trunk_nic
        .strip_prefix("eth")
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|n| *n < 8)
        .unwrap_or(0);
    let disk_if = match o.disk_bus {
        Some(super::DiskBus::Virtio) => "virtio",
        Some(super::DiskBus::Ide) => "ide",
        None if host.install.disk.starts_with("vd") => "virtio",
        None => "ide",
    };
    let _ = target;
    Ok(Prepared {
        fqdn: host.fqdn.clone(),
        cluster: inv.cluster.clone(),
        mac,
        expect: Expect {
            fqdn: host.fqdn.clone(),
            installer_args,
            stranger,
        },
        media,
        uefi,
        disk,
        unreachable,
        nic_index,
        disk_if,
        vlan,
        direct: o.direct.clone(),
        netns: o.netns.clone(),
        management_vlan: m.vlan,
    })
}

/// The ISO must be hvseed's, for this inventory's target, and carry this host's plan
/// as this inventory renders it now.
fn iso_media(
    inv: &Inventory,
    host: &Host,
    iso: &Path,
    scratch: &Path,
) -> Result<(Media, Vec<String>)> {
    crate::isoread::check_header(iso)?;
    let target = crate::target::of(inv.os);
    let file = target.install.file;
    let sums = "/hvseed/SHA256SUMS";
    let plan = format!("/hvseed/hosts/{}/plan.json", host.fqdn);
    let fleet = format!("/hvseed/fleet/{file}");
    let own = format!("/hvseed/hosts/{}/{file}", host.fqdn);
    let missing = crate::isoread::missing(iso, &[sums, &plan, &fleet, &own])?;
    if missing.contains(&sums) {
        bail!(
            "{} is not an ISO written by `hvseed iso` (it has no /hvseed/SHA256SUMS): write one \
             with `hvseed iso {} --source INSTALL.iso --out OUT.iso`",
            iso.display(),
            inv.path.display()
        );
    }
    if missing.contains(&plan.as_str()) {
        bail!(
            "{} was not written for {} (it has no /hvseed/hosts/{}/plan.json): write it again \
             with `hvseed iso {} …`",
            iso.display(),
            inv.path.display(),
            host.fqdn,
            inv.path.display()
        );
    }
    let local = scratch.join("plan.json");
    crate::isoread::extract_to(iso, &[(&plan, &local)])?;
    let on_iso = std::fs::read_to_string(&local)
        .with_context(|| format!("reading {plan} from {}", iso.display()))?;
    compare_plan(
        inv,
        host,
        &on_iso,
        None,
        &format!("{}:{plan}", iso.display()),
        "iso",
    )?;
    let install_file = if !missing.contains(&fleet.as_str()) {
        format!("fleet/{file}")
    } else if !missing.contains(&own.as_str()) {
        format!("hosts/{}/{file}", host.fqdn)
    } else {
        bail!(
            "{} holds no install file for {} (neither {fleet} nor {own}): it was written with \
             --host for another host; write it again for this one",
            iso.display(),
            host.fqdn
        );
    };
    // The fleet ISO's entry carries the first host's installer settings (as `hvseed
    // iso` writes it).
    let first = if install_file.starts_with("fleet/") {
        inv.hosts.first().unwrap_or(host)
    } else {
        host
    };
    let args = (target.iso.args)(&BootValues {
        install_file: &install_file,
        locale: &first.install.locale,
        keyboard: &first.install.keyboard,
        hostname: None,
        domain: None,
        kernel_args: &first.install.kernel_arg_strings(),
    });
    Ok((Media::Iso(iso.to_path_buf()), args))
}

/// The media's plan of the host against this inventory's: another inventory, another
/// target or an older render are refused, naming the difference.
fn compare_plan(
    inv: &Inventory,
    host: &Host,
    on_media: &str,
    report_url: Option<String>,
    what: &str,
    verb: &str,
) -> Result<()> {
    let theirs = hvseed_plan::plan::Plan::from_json(on_media, what)
        .with_context(|| format!("{what}: not a plan hvseed can read"))?;
    if theirs.os != inv.os {
        bail!(
            "{what} is for os {} but {} is os {}: the media were built for another target; \
             write them again with `hvseed {verb} {}`",
            theirs.os,
            inv.path.display(),
            inv.os,
            inv.path.display()
        );
    }
    if theirs.cluster != inv.cluster {
        bail!(
            "{what} is for cluster {} but {} is cluster {}: the media were built from another \
             inventory",
            theirs.cluster,
            inv.path.display(),
            inv.cluster
        );
    }
    let ours = host.plan(inv, report_url);
    if ours.to_json() != on_media {
        bail!(
            "{what} differs from the plan {} gives {} now: the inventory changed since the \
             media were written; write them again with `hvseed {verb} {}`",
            inv.path.display(),
            host.fqdn,
            inv.path.display()
        );
    }
    Ok(())
}

/// A PXE tree of this inventory: its http-base is read back from the host's plan (its
/// report URL), mapped into the guest's network; its TFTP side boots the firmware's
/// loader.
fn pxe_media(
    inv: &Inventory,
    host: &Host,
    dir: &Path,
    uefi: bool,
    mac: &str,
) -> Result<(Media, Vec<String>)> {
    let tftp = dir.join("tftp");
    let plan_path = dir.join("http/hosts").join(&host.fqdn).join("plan.json");
    if !tftp.is_dir() || !dir.join("http").is_dir() {
        bail!(
            "{} is not a tree written by `hvseed pxe` (it needs tftp/ and http/): write one \
             with `hvseed pxe {} --out {} …`",
            dir.display(),
            inv.path.display(),
            dir.display()
        );
    }
    let text = std::fs::read_to_string(&plan_path).map_err(|e| {
        anyhow!(
            "reading {}: {e}; the tree was not written for {} (or not for this host): write it \
             again with `hvseed pxe {} …`",
            plan_path.display(),
            inv.path.display(),
            inv.path.display()
        )
    })?;
    let what = plan_path.display().to_string();
    let plan = hvseed_plan::plan::Plan::from_json(&text, &what)
        .with_context(|| format!("{what}: not a plan hvseed can read"))?;
    let url = plan
        .report_url
        .clone()
        .ok_or_else(|| anyhow!("{what} has no report URL: not a plan of a PXE tree"))?;
    let base_text = url
        .strip_suffix(&format!("/report/{}", host.fqdn))
        .ok_or_else(|| {
            anyhow!(
                "{what}: report URL {url} is not <http-base>/report/{}",
                host.fqdn
            )
        })?;
    let base: HttpBase = base_text
        .parse()
        .map_err(|e| anyhow!("{what}: http-base {base_text}: {e}"))?;
    compare_plan(inv, host, &text, Some(url.clone()), &what, "pxe")?;
    let net = GuestNet::for_base(&base)?;
    let target = crate::target::of(inv.os);
    let bootfile = if uefi {
        match target.pxe.uefi {
            PxeUefi::GrubLegacy { boot_file, .. } => boot_file.to_string(),
            // What the tree's DHCP side hands a UEFI machine: the medium's own shim
            // when the tree has it (it loads the medium's GRUB beside it), else the
            // GRUB image hvseed built.
            PxeUefi::Grub2
                if target.pxe.uefi_media_loaders.is_some()
                    && tftp.join(crate::pxe::MEDIA_SHIM).is_file() =>
            {
                crate::pxe::MEDIA_SHIM.into()
            }
            PxeUefi::Grub2 => "grubx64.efi".into(),
            PxeUefi::DebianNetboot { .. } => crate::pxe::DI_NETBOOT_SHIM.into(),
        }
    } else {
        "pxelinux.0".into()
    };
    if !tftp.join(&bootfile).is_file() {
        bail!(
            "{} has no {} for {} boots: {}",
            dir.display(),
            Path::new("tftp").join(&bootfile).display(),
            if uefi { "UEFI" } else { "BIOS" },
            if uefi {
                "its source had no UEFI network loader (see `hvseed pxe`'s warnings); boot it without --uefi"
            } else {
                "write the tree again with `hvseed pxe`"
            }
        );
    }
    let mut args = crate::pxe::installer_args(inv, host, base.as_str())?;
    args.push(format!("BOOTIF=01-{}", mac.replace(':', "-")));
    Ok((
        Media::Pxe {
            dir: dir.to_path_buf(),
            net,
            bootfile,
        },
        args,
    ))
}

/// The disk rule: a disk hvseed created (its marker beside it) may be written; any
/// other existing file is only booted (`--boot disk`, through a snapshot) and never
/// installed to.
fn disk(o: &Options, inv: &Inventory) -> Result<Disk> {
    if let Some(image) = &o.disk_from {
        return overlay(o, image);
    }
    let gib = o.disk_size_gib.unwrap_or(default_disk_gib(inv.os));
    let Some(path) = &o.disk else {
        return Ok(Disk {
            path: PathBuf::new(),
            snapshot: false,
            create_gib: Some(gib),
            format: "raw",
            backing: None,
        });
    };
    let marker = marker_of(path);
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if matches!(o.boot, Boot::Disk) {
                bail!("--boot disk: {} does not exist", path.display());
            }
            Ok(Disk {
                path: path.clone(),
                snapshot: false,
                create_gib: Some(gib),
                format: "raw",
                backing: None,
            })
        }
        Err(e) => Err(e).with_context(|| format!("--disk {}", path.display())),
        Ok(m) if !m.is_file() => bail!(
            "--disk {} is not a regular file; hvseed vm writes only disk images it created",
            path.display()
        ),
        Ok(_) => {
            let ours = std::fs::read_to_string(&marker).is_ok_and(|t| t == DISK_MARKER_TEXT);
            let format = image_format(path)?;
            if ours {
                Ok(Disk {
                    path: path.clone(),
                    snapshot: false,
                    create_gib: None,
                    format,
                    backing: None,
                })
            } else if matches!(o.boot, Boot::Disk) {
                Ok(Disk {
                    path: path.clone(),
                    snapshot: true,
                    create_gib: None,
                    format,
                    backing: None,
                })
            } else {
                bail!(
                    "--disk {} exists and hvseed vm did not create it (no {} beside it): an \
                     install would overwrite it. Give a path that does not exist yet (hvseed \
                     creates it), or boot it without installing: --boot disk",
                    path.display(),
                    marker.display()
                )
            }
        }
    }
}

/// `--disk-from IMAGE --disk PATH`: PATH, which must not exist yet, becomes a qcow2
/// overlay on IMAGE (created by the run, with the marker); IMAGE is only read.
fn overlay(o: &Options, image: &Path) -> Result<Disk> {
    let path = o
        .disk
        .as_ref()
        .context("--disk-from IMAGE needs --disk PATH (the overlay to create)")?;
    match std::fs::metadata(image) {
        Ok(m) if m.is_file() => {}
        Ok(_) => bail!("--disk-from {}: not a regular file", image.display()),
        Err(e) => bail!("--disk-from {}: {e}", image.display()),
    }
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("--disk {}", path.display())),
        Ok(_) => bail!(
            "--disk {} exists: --disk-from creates a new overlay there and replaces nothing; \
             boot the overlay a run created before with --disk {} alone, or give a new path",
            path.display(),
            path.display()
        ),
    }
    which("qemu-img").ok_or_else(|| {
        anyhow!(
            "--disk-from needs qemu-img to create the overlay (Debian/Ubuntu: apt-get install \
             qemu-utils)"
        )
    })?;
    let format = image_format(image)?;
    let image =
        std::fs::canonicalize(image).with_context(|| format!("--disk-from {}", image.display()))?;
    Ok(Disk {
        path: path.clone(),
        snapshot: false,
        create_gib: None,
        format: "qcow2",
        backing: Some((image, format)),
    })
}

/// Creates `path` as a qcow2 overlay on `image` (of `format`) and its marker; refuses
/// to replace anything. The overlay is as large as the image.
pub fn create_overlay(path: &Path, image: &Path, format: &str) -> Result<()> {
    // Claimed first (a race with another writer loses here, not in qemu-img).
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("creating the disk image {}", path.display()))?;
    let made = crate::tool::Tool::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", "-F", format, "-b"])
        .arg(image)
        .arg(path)
        .deadline(std::time::Duration::from_secs(60))
        .run();
    if let Err(e) = made {
        let _ = std::fs::remove_file(path);
        return Err(e).with_context(|| {
            format!(
                "creating {} as an overlay on {}",
                path.display(),
                image.display()
            )
        });
    }
    std::fs::write(marker_of(path), DISK_MARKER_TEXT)
        .with_context(|| format!("writing {}", marker_of(path).display()))?;
    Ok(())
}

/// `qcow2` when the image starts with qcow2's magic (`QFI\xfb`), else `raw` (QEMU is
/// never left to guess: a raw image could claim any format in its first bytes, but a
/// raw image is never written by a run that reads it as qcow2 without that magic).
fn image_format(path: &Path) -> Result<&'static str> {
    use std::io::Read as _;
    let mut head = [0u8; 4];
    let mut f = std::fs::File::open(path).with_context(|| format!("--disk {}", path.display()))?;
    let n = f
        .read(&mut head)
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(if n == 4 && head == *b"QFI\xfb" {
        "qcow2"
    } else {
        "raw"
    })
}

pub fn marker_of(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(DISK_MARKER_SUFFIX);
    PathBuf::from(s)
}

/// Creates a sparse raw disk image of `gib` GiB and its marker; refuses to replace
/// anything.
pub fn create_disk(path: &Path, gib: u64) -> Result<()> {
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("creating the disk image {}", path.display()))?;
    f.set_len(gib << 30)
        .with_context(|| format!("sizing {} to {gib} GiB", path.display()))?;
    std::fs::write(marker_of(path), DISK_MARKER_TEXT)
        .with_context(|| format!("writing {}", marker_of(path).display()))?;
    Ok(())
}

/// A disk large enough for the target's install (sparse: it costs what is written).
pub fn default_disk_gib(os: crate::inventory::Os) -> u64 {
    use crate::inventory::Os;
    match os {
        Os::Centos6 | Os::Ubuntu1204 => 16,
        _ => 20,
    }
}

/// `program` found on PATH (or as given, with a `/`).
pub fn which(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return Path::new(program).is_file().then(|| PathBuf::from(program));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| {
            use std::os::unix::fs::PermissionsExt;
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// The QEMU arguments (after the program name).
pub struct Command<'a> {
    pub p: &'a Prepared,
    pub accel: &'static str,
    pub memory_mib: u32,
    pub cpus: u32,
    pub log: &'a Path,
    pub vars: Option<&'a Path>,
    /// SeaBIOS's debug port (what it shows on the screen) to this file (BIOS only).
    pub firmware_log: Option<&'a Path>,
    /// `hvseed vm-relay ADDR` for PXE's guestfwd.
    pub relay: Option<String>,
    /// Exit on a reboot (no milestone after `installed` is wanted).
    pub no_reboot: bool,
    /// The `-netdev` of the VLAN tagger's trunk ([`super::tagger::Trunk::netdev`]):
    /// the trunk NIC then sits on a QEMU hub with both the user network (untagged
    /// frames: DHCP, TFTP, the http-base for the installer) and the trunk (tagged
    /// frames: the VLANs in the namespace); each side drops what is not its own.
    pub trunk: Option<String>,
    /// The trunk carries untagged frames too (`--netns`): the trunk NIC is on the
    /// trunk alone (its netdev `id=n0`), with no user network.
    pub trunk_only: bool,
}

impl Command<'_> {
    pub fn args(&self) -> Vec<OsString> {
        let p = self.p;
        let mut a: Vec<OsString> = Vec::new();
        let mut push = |s: String| a.push(s.into());
        push("-machine".into());
        push("pc".into());
        push("-accel".into());
        // Several vCPUs under TCG on one thread: with one thread per vCPU (QEMU 7.2) a
        // Debian 12 guest hung early in 1 of 5 boots, a vCPU halted and its timer never
        // delivered, and booted more slowly on a busy two-core machine.
        push(if self.accel == "tcg" && self.cpus > 1 {
            "tcg,thread=single".into()
        } else {
            self.accel.into()
        });
        if self.accel == "kvm" {
            push("-cpu".into());
            push("host".into());
        } else if matches!(p.media, Media::None) {
            // An installed system under TCG: every CPU feature QEMU emulates (RDRAND
            // among them, so the kernel's random pool is ready at once) rather than
            // the bare qemu64 model installers are booted with.
            push("-cpu".into());
            push("max".into());
        }
        push("-m".into());
        push(self.memory_mib.to_string());
        push("-smp".into());
        push(self.cpus.to_string());
        for x in [
            "-nodefaults",
            "-display",
            "none",
            "-monitor",
            "none",
            "-vga",
            "std",
        ] {
            push(x.into());
        }
        push("-serial".into());
        push(format!(
            "file:{}",
            super::net::qemu_opt(&self.log.to_string_lossy())
        ));
        if self.no_reboot {
            push("-no-reboot".into());
        }
        if let (None, Some(fw)) = (&p.uefi, self.firmware_log) {
            push("-chardev".into());
            push(format!(
                "file,id=fw,path={}",
                super::net::qemu_opt(&fw.to_string_lossy())
            ));
            push("-device".into());
            push("isa-debugcon,iobase=0x402,chardev=fw".into());
        }
        if let (Some(u), Some(vars)) = (&p.uefi, self.vars) {
            push("-drive".into());
            push(format!(
                "if=pflash,format=raw,readonly=on,file={}",
                super::net::qemu_opt(&u.code.to_string_lossy())
            ));
            push("-drive".into());
            push(format!(
                "if=pflash,format=raw,file={}",
                super::net::qemu_opt(&vars.to_string_lossy())
            ));
        }
        // The NICs come first: the trunk NIC gets the PCI slot the target's names expect
        // (slot 3 after the VGA: ens3, eth0).
        let pxe = matches!(p.media, Media::Pxe { .. });
        let (disk_index, media_index) = if pxe { (2, 1) } else { (1, 2) };
        // NICs before the trunk NIC (its name ethN): present, on a network of their own
        // that reaches nothing.
        for i in 0..p.nic_index {
            push("-netdev".into());
            push(format!("user,id=x{i},restrict=on"));
            push("-device".into());
            push(format!("e1000,netdev=x{i},mac=52:54:00:00:ff:{i:02x}"));
        }
        let user = if self.trunk.is_some() { "u0" } else { "n0" };
        match (&self.trunk, self.trunk_only) {
            // The trunk's netdev is the NIC's (`id=n0`).
            (Some(trunk), true) => {
                push("-netdev".into());
                push(trunk.clone());
            }
            _ => {
                push("-netdev".into());
                match (&p.media, &self.relay) {
                    (Media::Pxe { dir, net, bootfile }, Some(relay)) => {
                        push(net.netdev(user, &dir.join("tftp").to_string_lossy(), bootfile, relay))
                    }
                    _ => push(format!("user,id={user}")),
                }
            }
        }
        if let (Some(trunk), false) = (&self.trunk, self.trunk_only) {
            for x in [
                "hubport,id=u0p,hubid=0,netdev=u0".to_string(),
                trunk.clone(),
                "hubport,id=t0p,hubid=0,netdev=t0".into(),
                "hubport,id=n0,hubid=0".into(),
            ] {
                push("-netdev".into());
                push(x);
            }
        }
        push("-device".into());
        // An installed virtio machine (its install disk vd*) booted from its disk gets a
        // virtio NIC; an installer boot keeps the e1000, which every firmware's network
        // boot and every installer's kernel knows.
        let nic = if matches!(p.media, Media::None) && p.disk_if == "virtio" {
            "virtio-net-pci"
        } else {
            "e1000"
        };
        push(format!(
            "{nic},netdev=n0,mac={}{}",
            p.mac,
            if pxe {
                format!(",bootindex={media_index}")
            } else {
                String::new()
            }
        ));
        // The disk boots first when it holds a system; a blank one falls through to the
        // media (the way a rack's machines are set up: disk, then CD or network).
        push("-drive".into());
        push(format!(
            "file={},if=none,id=disk0,format={}{}",
            super::net::qemu_opt(&p.disk.path.to_string_lossy()),
            p.disk.format,
            if p.disk.snapshot { ",snapshot=on" } else { "" }
        ));
        push("-device".into());
        push(match p.disk_if {
            "virtio" => format!("virtio-blk-pci,drive=disk0,bootindex={disk_index}"),
            _ => format!("ide-hd,drive=disk0,bus=ide.0,bootindex={disk_index}"),
        });
        if let Some(d) = &p.direct {
            push("-kernel".into());
            push(d.kernel.to_string_lossy().into_owned());
            if let Some(i) = &d.initrd {
                push("-initrd".into());
                push(i.to_string_lossy().into_owned());
            }
            push("-append".into());
            push(d.append.clone());
        }
        if let Media::Iso(iso) = &p.media {
            push("-drive".into());
            push(format!(
                "file={},if=none,id=cd0,media=cdrom,readonly=on",
                super::net::qemu_opt(&iso.to_string_lossy())
            ));
            push("-device".into());
            push(format!(
                "ide-cd,drive=cd0,bus=ide.1,bootindex={media_index}"
            ));
        }
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prepared(media: Media, snapshot: bool, disk_if: &'static str) -> Prepared {
        Prepared {
            fqdn: "kvm21.lab.example.org".into(),
            cluster: "lab2".into(),
            mac: "52:54:00:12:34:21".into(),
            expect: Expect {
                fqdn: "kvm21.lab.example.org".into(),
                installer_args: vec![],
                stranger: false,
            },
            media,
            uefi: None,
            disk: Disk {
                path: PathBuf::from("/d/disk,1.img"),
                snapshot,
                create_gib: None,
                format: "raw",
                backing: None,
            },
            unreachable: vec![],
            nic_index: 0,
            disk_if,
            vlan: None,
            direct: None,
            netns: None,
            management_vlan: 100,
        }
    }

    fn line(p: &Prepared, relay: Option<String>, no_reboot: bool) -> String {
        Command {
            p,
            accel: "tcg",
            memory_mib: 1024,
            cpus: 1,
            log: Path::new("/l/serial.log"),
            vars: None,
            firmware_log: None,
            relay,
            no_reboot,
            trunk: None,
            trunk_only: false,
        }
        .args()
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
    }

    /// The NIC before the disk (the trunk NIC in PCI slot 3: ens3/eth0), the ISO's CD
    /// after a blank disk in the boot order, commas in paths doubled for QEMU.
    #[test]
    fn iso_boot_command_line() {
        let p = prepared(Media::Iso(PathBuf::from("/m/lab.iso")), false, "ide");
        let l = line(&p, None, true);
        assert_eq!(
            l,
            "-machine pc -accel tcg -m 1024 -smp 1 -nodefaults -display none -monitor none \
             -vga std -serial file:/l/serial.log -no-reboot \
             -netdev user,id=n0 -device e1000,netdev=n0,mac=52:54:00:12:34:21 \
             -drive file=/d/disk,,1.img,if=none,id=disk0,format=raw \
             -device ide-hd,drive=disk0,bus=ide.0,bootindex=1 \
             -drive file=/m/lab.iso,if=none,id=cd0,media=cdrom,readonly=on \
             -device ide-cd,drive=cd0,bus=ide.1,bootindex=2"
        );
    }

    /// PXE first, then the disk; the guestfwd relay; a disk hvseed did not create is
    /// attached through a snapshot (never written); `vd*` install disks are virtio.
    #[test]
    fn pxe_and_foreign_disk_command_lines() {
        let net = GuestNet::for_base(&"http://10.0.0.2:8080".parse().unwrap()).unwrap();
        let p = prepared(
            Media::Pxe {
                dir: PathBuf::from("/t"),
                net,
                bootfile: "pxelinux.0".into(),
            },
            false,
            "virtio",
        );
        let l = line(&p, Some("/bin/hvseed vm-relay 127.0.0.1:5".into()), false);
        assert!(!l.contains("-no-reboot"), "{l}");
        assert!(l.contains("-netdev user,id=n0,net=10.0.0.0/24,host=10.0.0.1,dns=10.0.0.3,dhcpstart=10.0.0.15,tftp=/t/tftp,bootfile=pxelinux.0,guestfwd=tcp:10.0.0.2:8080-cmd:/bin/hvseed vm-relay 127.0.0.1:5 -device e1000,netdev=n0,mac=52:54:00:12:34:21,bootindex=1"), "{l}");
        assert!(
            l.contains("-device virtio-blk-pci,drive=disk0,bootindex=2"),
            "{l}"
        );
        let mut p = prepared(Media::None, true, "ide");
        p.nic_index = 1;
        let l = line(&p, None, false);
        assert!(l.contains("format=raw,snapshot=on"), "{l}");
        assert!(l.contains("-netdev user,id=x0,restrict=on -device e1000,netdev=x0,mac=52:54:00:00:ff:00 -netdev user,id=n0"), "{l}");
    }

    /// `--boot disk --kernel`: the image's own kernel, initrd and command line; a qcow2
    /// image as qcow2; a virtio machine's NIC virtio; two vCPUs under TCG on one thread.
    #[test]
    fn direct_kernel_disk_boot_command_line() {
        let mut p = prepared(Media::None, false, "virtio");
        p.disk.format = "qcow2";
        p.direct = Some(crate::vm::Direct {
            kernel: PathBuf::from("/i/vmlinuz"),
            initrd: Some(PathBuf::from("/i/initrd.img")),
            append: "root=/dev/vda rw console=ttyS0".into(),
        });
        let l = Command {
            p: &p,
            accel: "tcg",
            memory_mib: 4096,
            cpus: 2,
            log: Path::new("/l/serial.log"),
            vars: None,
            firmware_log: None,
            relay: None,
            no_reboot: true,
            trunk: Some("stream,id=t0,server=off,addr.type=unix,addr.path=/s/trunk.sock".into()),
            trunk_only: false,
        }
        .args();
        let l: Vec<String> = l.iter().map(|a| a.to_string_lossy().into_owned()).collect();
        let at = |x: &str| {
            l.iter()
                .position(|a| a == x)
                .unwrap_or_else(|| panic!("{x}: {l:?}"))
        };
        assert_eq!(l[at("-accel") + 1], "tcg,thread=single");
        assert_eq!(l[at("-cpu") + 1], "max");
        assert_eq!(l[at("-kernel") + 1], "/i/vmlinuz");
        assert_eq!(l[at("-initrd") + 1], "/i/initrd.img");
        assert_eq!(l[at("-append") + 1], "root=/dev/vda rw console=ttyS0");
        let j = l.join(" ");
        assert!(j.contains("format=qcow2"), "{j}");
        assert!(
            j.contains("-device virtio-net-pci,netdev=n0,mac=52:54:00:12:34:21 "),
            "{j}"
        );
        assert!(j.contains("-netdev user,id=u0 -netdev hubport,id=u0p,hubid=0,netdev=u0 -netdev stream,id=t0,server=off,addr.type=unix,addr.path=/s/trunk.sock -netdev hubport,id=t0p,hubid=0,netdev=t0 -netdev hubport,id=n0,hubid=0 "), "{j}");
        // One vCPU keeps QEMU's default TCG; an installer boot keeps the e1000.
        let mut iso = prepared(Media::Iso(PathBuf::from("/m/lab.iso")), false, "virtio");
        iso.direct = None;
        let l = line(&iso, None, true);
        assert!(l.contains("-accel tcg -m"), "{l}");
        assert!(!l.contains("-cpu"), "{l}");
        assert!(l.contains("-device e1000,netdev=n0"), "{l}");
    }
}
