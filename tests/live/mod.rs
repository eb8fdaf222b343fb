//! The live-host harness: real Debian roots and disk images ([`image`]), a private
//! network namespace with a userspace 802.1Q tagger ([`net`]), QEMU guests booting
//! those images ([`guest`]), and a preseed's commands run as d-i runs them against a
//! root ([`di`]). `smoke` is the harness's own test. docs/testing.md ("Live hosts")
//! says how it fits together, what it costs and what needs root.

#![allow(dead_code)]

mod debian12;
pub mod di;
pub mod guest;
pub mod image;
pub mod install;
pub mod net;
mod smoke;

use std::path::Path;

use crate::support::{missing, tool};

/// True if this machine can run live tests: root (namespaces, taps, mounts,
/// `mmdebstrap --mode=root`) and the tools. Otherwise [`missing`] (a failure under
/// `CI=true`, a loud notice elsewhere) and false.
pub fn ready(what: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        missing(
            &format!("{what} needs root (network namespaces, tap devices, private mounts, mmdebstrap --mode=root)"),
            "run the live tests as root, as CI does",
        );
        return false;
    }
    for (cmd, package) in [
        ("mmdebstrap", "mmdebstrap"),
        ("qemu-system-x86_64", "qemu-system-x86"),
        ("qemu-img", "qemu-utils"),
        ("mkfs.ext4", "e2fsprogs"),
        ("ip", "iproute2"),
        ("ping", "iputils-ping"),
        ("unshare", "util-linux"),
        ("cpio", "cpio"),
    ] {
        if tool(cmd, package).is_none() {
            return false;
        }
    }
    if !Path::new("/dev/net/tun").exists() {
        missing(
            &format!("{what} needs /dev/net/tun"),
            "load the tun module (modprobe tun)",
        );
        return false;
    }
    true
}
