//! Mandatory access control: SELinux's mode in `/etc/selinux/config` (EL) and the
//! libvirt AppArmor profiles to disable (Debian and Ubuntu).

use crate::edit::{Lines, Style};
use crate::plan::{Plan, SelinuxMode};

/// The AppArmor profiles that confine libvirt, under `/etc/apparmor.d/`.
pub const APPARMOR_PROFILES: [&str; 2] = ["usr.sbin.libvirtd", "usr.lib.libvirt.virt-aa-helper"];

/// el6 `/etc/selinux/config` (policy 4).
pub fn selinux_config(old: &str, mode: SelinuxMode) -> String {
    let mut l = Lines::parse(old);
    l.set(Style::Tight, "SELINUX", mode.as_str());
    l.text()
}

/// says disabled).
pub fn selinux_mode(plan: &Plan) -> SelinuxMode {
    plan.security.selinux.unwrap_or(SelinuxMode::Permissive)
}
