//! The boot loader configurations of the PXE tree: pxelinux (BIOS) and the target's
//! UEFI loader, GRUB 2 or grub-legacy EFI ([`crate::target::PxeUefi`]), one per host
//! by MAC plus a default that boots the local disk; and the dnsmasq snippet. The
//! files are the templates `iso/{pxelinux,grub2,grub-legacy}/*` ([`crate::bootmenu`]).
//!
//! Every inventory value that lands on a kernel command line is checked here for that
//! place (printable ASCII, no whitespace, quotes or backslashes) even though the
//! inventory loader checked it already: a stray space would split one argument into
//! two that the installer then obeys.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{bail, Result};

use minijinja::context;

use crate::bootmenu;
use crate::inventory::{Host, InstallSource, Inventory, Os};
use crate::target::{self, BootValues, PxeUefi};

use super::source::Layout;

/// `00:04:23:aa:bb:01` → `01-00-04-23-aa-bb-01` (pxelinux's and GRUB 2's per-client
/// file name: ARP type 1 = Ethernet, then the MAC, lowercase, dashes).
pub fn mac_file_name(mac: &str) -> String {
    format!("01-{}", mac.to_ascii_lowercase().replace(':', "-"))
}

/// Where each loader looks for a host's file, relative to the tree.
pub fn pxelinux_path(mac: &str) -> String {
    format!("tftp/pxelinux.cfg/{}", mac_file_name(mac))
}

pub fn grub2_path(mac: &str) -> String {
    format!("tftp/grub/grub.cfg-{}", mac_file_name(mac))
}

/// The medium's own shim and GRUB in the TFTP root ([`crate::target::MediaLoaders`]):
/// the DHCP boot file is the shim, which loads the GRUB beside it; that GRUB's prefix
/// is the TFTP root, where it looks for the host's file and then `grub.cfg`.
pub const MEDIA_SHIM: &str = "BOOTX64.EFI";
pub const MEDIA_GRUB: &str = "grubx64.efi";
pub const MEDIA_GRUB_CFG: &str = "tftp/grub.cfg";

pub fn media_grub_path(mac: &str) -> String {
    format!("{MEDIA_GRUB_CFG}-{}", mac_file_name(mac))
}

/// d-i's signed UEFI network loaders in the TFTP root, where d-i's netboot tree has
/// them ([`PxeUefi::DebianNetboot`]): the DHCP boot file is the shim, which loads the
/// GRUB beside it; that GRUB's prefix is built in as `/debian-installer/amd64/grub`.
pub const DI_NETBOOT_SHIM: &str = "debian-installer/amd64/bootnetx64.efi";
pub const DI_NETBOOT_GRUB: &str = "debian-installer/amd64/grubx64.efi";
/// The one file that GRUB reads (no per-MAC lookup: it runs `normal` with a config
/// argument, which skips GRUB's network search); hvseed's picks the host's file by
/// `$net_default_mac`.
pub const DI_NETBOOT_GRUB_CFG: &str = "tftp/debian-installer/amd64/grub/grub.cfg";

pub fn di_netboot_path(mac: &str) -> String {
    format!("{DI_NETBOOT_GRUB_CFG}-{}", mac_file_name(mac))
}

/// grub-legacy EFI (RHEL/CentOS 6 `BOOTX64.efi`, grub 0.97 with Red Hat's EFI PXE
/// patch) looks for its config over TFTP in the directory of the DHCP boot file, in
/// this order: a UUID name (never matches in practice), `01-` + the MAC in UPPER case
/// with dashes, the client IP in upper-case hex shortened one digit at a time, then
/// `efidefault` (efi/pxe.c `grub_efi_pxe_get_config_path` of grub-0.97-efipxe.patch:
/// `hex[] = "0123456789ABCDEF"`, `"01-%c%c-..."`, `"(nd)/efidefault"`); kernel and
/// initrd paths are taken relative to that directory too. Cobbler and Beaker lay out
/// EL6 UEFI trees the same way. With the loader in the TFTP root its requests start
/// with `/` (`/01-…`, `//centos6/vmlinuz`); dnsmasq 2.90's TFTP server resolves both
/// inside its tftp-root (tried with curl's TFTP client). The IP-in-hex names are not
/// written: the address the firmware gets by DHCP is not in the inventory.
pub fn grub_legacy_path(mac: &str) -> String {
    format!("tftp/{}", mac_file_name(mac).to_ascii_uppercase())
}

/// A host's file for the target's UEFI loader.
fn uefi_path(layout: &Layout, mac: &str) -> String {
    match layout.uefi {
        PxeUefi::Grub2 if layout.uefi_media_loaders.is_some() => media_grub_path(mac),
        PxeUefi::Grub2 => grub2_path(mac),
        PxeUefi::GrubLegacy { .. } => grub_legacy_path(mac),
        PxeUefi::DebianNetboot { .. } => di_netboot_path(mac),
    }
}

/// A host's boot loader files by MAC: pxelinux's, and with a UEFI loader in the tree
/// that loader's (GRUB 2's or grub-legacy's, as `os`'s target boots).
pub fn host_boot_paths(os: Os, efi: bool, mac: &str) -> Vec<String> {
    let mut paths = vec![pxelinux_path(mac)];
    if efi {
        paths.push(uefi_path(&target::of(os).pxe, mac));
    }
    paths
}

/// "PXE just once": where the state of a host's PXE entry is kept, relative to the
/// tree. A file `pxe-state/<fqdn>.installed` (JSON: `at`, `by`, and the `mac` of the
/// machine installed) means the host was installed (its
/// installer fetched its install file from `hvseed serve`, its agent reported, or
/// `hvseed pxe --disarm` said so): its per-MAC boot files then boot the local disk,
/// and every run of `hvseed pxe` keeps them so until `--reinstall` removes the file.
pub const PXE_STATE_DIR: &str = "pxe-state";

pub fn installed_marker(fqdn: &str) -> String {
    format!("{PXE_STATE_DIR}/{fqdn}.installed")
}

/// The local-boot versions of a host's per-MAC boot files, for each loader whose
/// file may be in the tree: (path, content). They depend on the host's name, MAC and
/// pxelinux `SERIAL` directive only (`hvseed serve` takes that from the host's
/// install file, see [`serial_line`]), so `hvseed serve` writes the same bytes as
/// `hvseed pxe`.
pub fn local_boot_files(fqdn: &str, mac: &str, serial: Option<&str>) -> [(String, String); 5] {
    let ctx = context! { fqdn, serial };
    [
        (
            pxelinux_path(mac),
            bootmenu::render("pxelinux/installed.cfg", ctx.clone()),
        ),
        // GRUB 2 on UEFI: `exit` returns to the firmware, which boots the next entry
        // of its boot order (the installed system), as the fleet-wide grub.cfg does.
        (
            grub2_path(mac),
            bootmenu::render("grub2/pxe-installed.cfg", ctx.clone()),
        ),
        // grub-legacy EFI: `quit` leaves the loader, the firmware boots the next entry.
        (
            grub_legacy_path(mac),
            bootmenu::render("grub-legacy/pxe-installed.conf", ctx.clone()),
        ),
        // d-i's signed GRUB: the same GRUB 2 file, where its grub.cfg sources it.
        (
            di_netboot_path(mac),
            bootmenu::render("grub2/pxe-installed.cfg", ctx.clone()),
        ),
        // The medium's own GRUB (EL9): the same GRUB 2 file, in the TFTP root.
        (
            media_grub_path(mac),
            bootmenu::render("grub2/pxe-installed.cfg", ctx),
        ),
    ]
}

/// The pxelinux `SERIAL <port> <baud>` line of a host's pxelinux file, if it has one
/// of that form (what [`serial_directive`] writes).
pub fn serial_line(pxelinux_file: &str) -> Option<&str> {
    pxelinux_file.lines().find(|l| {
        let mut w = l.split(' ');
        w.next() == Some("SERIAL")
            && w.next().is_some_and(|p| p.parse::<u8>().is_ok())
            && w.next().is_some_and(|b| b.parse::<u32>().is_ok())
            && w.next().is_none()
    })
}

/// The host's pxelinux `SERIAL` directive (from `install.kernel_args`), if any.
pub fn host_serial(host: &Host) -> Option<String> {
    serial_directive(&host.install.kernel_args)
}

/// One kernel-command-line argument, checked for pxelinux/GRUB lines.
fn arg_ok(a: &str) -> bool {
    !a.is_empty()
        && a.bytes()
            .all(|b| b.is_ascii_graphic() && !b"'\"\\`".contains(&b))
}

/// The installer's command line for `host`, as its target starts the installer
/// with the host's install file (without BOOTIF, which pxelinux appends itself via
/// `IPAPPEND 2` and GRUB files carry explicitly).
pub fn installer_args(inv: &Inventory, host: &Host, base: &str) -> Result<Vec<String>> {
    let target = target::of(inv.os);
    let url = format!("{base}/hosts/{}/{}", host.fqdn, target.install.file);
    // The inventory checked install.kernel_args, the locale and the keyboard with its
    // one kernel-argument rule, and `HttpBase` (crate::http_base) the --http-base.
    let args = (target.pxe.args)(&BootValues {
        install_file: &url,
        locale: &host.install.locale,
        keyboard: &host.install.keyboard,
        hostname: Some(host.short_name()),
        domain: Some(host.domain()),
        kernel_args: &host.install.kernel_arg_strings(),
    });
    // `hvseed pxe` made a `cdrom` source the URL of the DVD's tree it serves.
    let mut args = args;
    if let (Some(tree_arg), InstallSource::Url(tree)) = (target.pxe.tree_arg, &host.install.source)
    {
        args.insert(0, tree_arg(tree));
    }
    debug_assert!(args.iter().all(|a| arg_ok(a)), "{args:?}");
    Ok(args)
}

/// `console=ttyS1,115200n8` → pxelinux's `SERIAL 1 115200`, so that what pxelinux
/// says reaches the same serial console the installer will use.
fn serial_directive<A: AsRef<str>>(kernel_args: &[A]) -> Option<String> {
    kernel_args.iter().rev().find_map(|a| {
        let v = a.as_ref().strip_prefix("console=ttyS")?;
        let (port, rest) = v.split_once(',').unwrap_or((v, "9600"));
        let port: u8 = port.parse().ok()?;
        let baud: u32 = rest
            .chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .ok()?;
        Some(format!("SERIAL {port} {baud}"))
    })
}

/// What every per-host boot file is told about its host (the header says who it
/// installs and that it wipes the disk).
fn host_context(
    inv: &Inventory,
    host: &Host,
    layout: &Layout,
    args: Vec<String>,
) -> minijinja::Value {
    context! {
        fqdn => &host.fqdn,
        cluster => &inv.cluster,
        mac => &host.mac,
        os => target::of(inv.os).title,
        disk => &*host.install.disk,
        serial => serial_directive(&host.install.kernel_args),
        kernel => layout.tftp_kernel.trim_start_matches("tftp/"),
        initrd => layout.tftp_initrd.trim_start_matches("tftp/"),
        args,
    }
}

/// pxelinux's per-host file (BIOS).
pub fn pxelinux_host(inv: &Inventory, host: &Host, layout: &Layout, args: &[String]) -> String {
    bootmenu::render(
        "pxelinux/host.cfg",
        host_context(inv, host, layout, args.to_vec()),
    )
}

/// pxelinux's fallback for every MAC without a file: the local disk.
pub fn pxelinux_default(inv: &Inventory) -> String {
    let serial = inv
        .hosts
        .iter()
        .find_map(|h| serial_directive(&h.install.kernel_args));
    bootmenu::render(
        "pxelinux/default.cfg",
        context! { cluster => &inv.cluster, serial },
    )
}

/// The host's file for the target's UEFI loader: (path, content).
pub fn uefi_host(
    inv: &Inventory,
    host: &Host,
    layout: &Layout,
    args: &[String],
) -> (String, String) {
    let text = match layout.uefi {
        PxeUefi::Grub2 => grub2_host(inv, host, layout, args),
        PxeUefi::GrubLegacy { .. } => grub_legacy_host(inv, host, layout, args),
        // The same GRUB 2 file; d-i's GRUB's root is the TFTP server too.
        PxeUefi::DebianNetboot { .. } => grub2_host(inv, host, layout, args),
    };
    (uefi_path(layout, &host.mac), text)
}

/// The fallback file of the target's UEFI loader: (path, content).
pub fn uefi_default(inv: &Inventory) -> (&'static str, String) {
    let layout = &target::of(inv.os).pxe;
    match layout.uefi {
        PxeUefi::Grub2 if layout.uefi_media_loaders.is_some() => {
            (MEDIA_GRUB_CFG, grub2_default(inv))
        }
        PxeUefi::Grub2 => ("tftp/grub/grub.cfg", grub2_default(inv)),
        PxeUefi::GrubLegacy { .. } => ("tftp/efidefault", grub_legacy_default(inv)),
        PxeUefi::DebianNetboot { .. } => (DI_NETBOOT_GRUB_CFG, di_netboot_default(inv)),
    }
}

/// GRUB 2 single-quotes everything: `$`, `;`, `{` and the like stay literal.
fn grub_quote(a: &str) -> String {
    format!("'{a}'")
}

/// GRUB 2's per-host file (UEFI, [`PxeUefi::Grub2`]), found by GRUB's own network lookup: with
/// its prefix on TFTP, GRUB's `normal` tries `$prefix/grub.cfg-01-<mac>`, then
/// `grub.cfg-<IP in hex>` shortened one digit at a time, then `grub.cfg`
/// (grub-core/net/net.c grub_net_search_config_file, called from
/// grub-core/normal/main.c when the prefix starts with `(tftp`; upstream since
/// GRUB 2.04, so the GRUB image hvseed builds from the build host's GRUB has it).
pub fn grub2_host(inv: &Inventory, host: &Host, layout: &Layout, args: &[String]) -> String {
    let mut line: Vec<String> = args.iter().map(|a| grub_quote(a)).collect();
    // GRUB has no IPAPPEND: the interface goes into the file itself (boot-media.md).
    line.push(grub_quote(&format!("BOOTIF={}", mac_file_name(&host.mac))));
    bootmenu::render("grub2/pxe-host.cfg", host_context(inv, host, layout, line))
}

/// GRUB 2's fallback (`grub.cfg`): back to the firmware, which boots the next device.
pub fn grub2_default(inv: &Inventory) -> String {
    bootmenu::render(
        "grub2/pxe-default.cfg",
        context! { cluster => &inv.cluster },
    )
}

/// d-i's signed GRUB reads only its `grub.cfg` ([`DI_NETBOOT_GRUB_CFG`]): this one
/// splits `$net_default_mac` (the MAC of the NIC GRUB booted from, lower-case hex with
/// colons) with `regexp` and sources the host's `grub.cfg-01-<mac>`, whose entry
/// boots once this file ends (it sets `timeout=0`); a machine without a file (the
/// `source` prints an error and goes on) leaves GRUB, as GRUB 2's fallback does.
pub fn di_netboot_default(inv: &Inventory) -> String {
    bootmenu::render(
        "grub2/pxe-di-default.cfg",
        context! { cluster => &inv.cluster },
    )
}

/// grub-legacy EFI's per-host file (UEFI). `root (nd)` is the network device the
/// loader came from; there is no IPAPPEND, so `ksdevice=` names the MAC.
pub fn grub_legacy_host(inv: &Inventory, host: &Host, layout: &Layout, args: &[String]) -> String {
    let args: Vec<String> = args
        .iter()
        .map(|a| {
            if a == "ksdevice=bootif" {
                format!("ksdevice={}", host.mac)
            } else {
                a.clone()
            }
        })
        .collect();
    bootmenu::render(
        "grub-legacy/pxe-host.conf",
        host_context(inv, host, layout, args),
    )
}

/// grub-legacy EFI's fallback (`efidefault`): leave the loader, so the firmware boots
/// the next device.
pub fn grub_legacy_default(inv: &Inventory) -> String {
    bootmenu::render(
        "grub-legacy/pxe-default.conf",
        context! { cluster => &inv.cluster },
    )
}

/// The UEFI boot file name in the TFTP root, if the tree has one.
pub struct EfiBoot<'a> {
    pub file: &'a str,
}

/// A path as a dnsmasq configuration value: refuse what dnsmasq would split or cut.
fn dnsmasq_path(p: &Path) -> Result<String> {
    let s = p.to_str().unwrap_or("");
    if s.is_empty()
        || !s.starts_with('/')
        || !s
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b",#\"'\\".contains(&b))
    {
        bail!(
            "the output directory {} cannot be written into dnsmasq.conf (it needs an \
             absolute path without spaces, commas, quotes, '#' or backslashes); choose a \
             plainer --out",
            p.display()
        );
    }
    Ok(s.to_string())
}

/// The dnsmasq snippet a user includes (`conf-file=DIR/dnsmasq.conf`).
pub fn dnsmasq(inv: &Inventory, tftp_root: &Path, efi: Option<EfiBoot<'_>>) -> Result<String> {
    let root = dnsmasq_path(tftp_root)?;
    let mut s = String::new();
    let _ = write!(
        s,
        "# hvseed: PXE boot for cluster {c} ({n} host(s)), written by `hvseed pxe`.\n\
         # Include it in your dnsmasq configuration: conf-file={root_parent}/dnsmasq.conf\n\
         #\n\
         # Addresses: each host's inventory `ip` is its management address on a TAGGED VLAN.\n\
         # The PXE firmware and the installer do DHCP on the trunk NIC's untagged (native)\n\
         # VLAN, a different network, so that address is NOT handed out here. dhcp-host\n\
         # gives each known MAC its hostname and the tag `hvseed`; the address comes from\n\
         # the dhcp-range you configure for the provisioning network, e.g.\n\
         #   dhcp-range=10.0.0.100,10.0.0.199,12h\n\
         # Only tagged (known) machines get a boot file, so other PXE clients on this\n\
         # dnsmasq are left alone; a known machine without its pxelinux file still boots\n\
         # from its local disk (pxelinux.cfg/default).\n\
         # tftp-root is where this tree was written; change it if you move the tree.\n\
         enable-tftp\n\
         tftp-root={root}\n",
        c = inv.cluster,
        n = inv.hosts.len(),
        root_parent = tftp_root.parent().unwrap_or(tftp_root).display(),
    );
    match &efi {
        Some(e) => {
            // RFC 4578 option 93 (client-arch): 7 and 9 are x86-64 UEFI.
            let _ = write!(
                s,
                "dhcp-match=set:efi-x86_64,option:client-arch,7\n\
                 dhcp-match=set:efi-x86_64,option:client-arch,9\n\
                 dhcp-boot=tag:hvseed,tag:!efi-x86_64,pxelinux.0\n\
                 dhcp-boot=tag:hvseed,tag:efi-x86_64,{}\n",
                e.file
            );
        }
        None => {
            s.push_str("dhcp-boot=tag:hvseed,pxelinux.0\n");
        }
    }
    for h in &inv.hosts {
        let _ = writeln!(s, "dhcp-host={},set:hvseed,{}", h.mac, h.short_name());
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_follow_each_loader() {
        assert_eq!(
            pxelinux_path("00:04:23:AA:bb:01"),
            "tftp/pxelinux.cfg/01-00-04-23-aa-bb-01"
        );
        assert_eq!(
            grub2_path("00:04:23:aa:bb:01"),
            "tftp/grub/grub.cfg-01-00-04-23-aa-bb-01"
        );
        assert_eq!(
            grub_legacy_path("00:04:23:aa:bb:01"),
            "tftp/01-00-04-23-AA-BB-01"
        );
    }

    #[test]
    fn serial_console_follows_the_kernel_args() {
        let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            serial_directive(&a(&["quiet", "console=ttyS1,57600n8"])).as_deref(),
            Some("SERIAL 1 57600")
        );
        assert_eq!(serial_directive(&a(&["console=tty0"])), None);
        assert!(
            !arg_ok("a b") && !arg_ok("x'y") && !arg_ok("") && arg_ok("console=ttyS0,115200n8")
        );
    }
}
