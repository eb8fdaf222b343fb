//! Mandatory access control: SELinux's mode in `/etc/selinux/config` (EL) and the
//! libvirt AppArmor profiles to disable (Debian and Ubuntu).

use crate::edit::{Lines, Style};
use crate::plan::{Plan, SelinuxMode};

/// The AppArmor profiles that confine libvirt, under `/etc/apparmor.d/`.
pub const APPARMOR_PROFILES: [&str; 2] = ["usr.sbin.libvirtd", "usr.lib.libvirt.virt-aa-helper"];

/// The names the kernel lists each of [`APPARMOR_PROFILES`] under: precise's profiles
/// are named by the program's path, bookworm's have a name of their own (`profile
/// libvirtd /usr/sbin/libvirtd`, `profile virt-aa-helper /usr/lib/libvirt/virt-aa-helper`,
/// libvirt 9.0's files).
pub const APPARMOR_PROFILE_NAMES: [[&str; 2]; 2] = [
    ["/usr/sbin/libvirtd", "libvirtd"],
    ["/usr/lib/libvirt/virt-aa-helper", "virt-aa-helper"],
];

/// The loaded profiles in `profiles` (the kernel's
/// `/sys/kernel/security/apparmor/profiles`: `NAME (MODE)` per line, a child profile as
/// `PARENT//CHILD`) that belong to the profile file `APPARMOR_PROFILES[i]`.
pub fn apparmor_loaded(profiles: &str, i: usize) -> Vec<&str> {
    profiles
        .lines()
        .filter_map(|l| {
            l.rsplit_once(" (")
                .map_or(l.split_whitespace().next(), |x| Some(x.0))
        })
        .filter(|name| {
            let top = name.split("//").next().unwrap_or(name);
            APPARMOR_PROFILE_NAMES[i].contains(&top)
        })
        .collect()
}

/// Every loaded libvirt profile in `profiles`.
pub fn apparmor_loaded_libvirt(profiles: &str) -> Vec<&str> {
    (0..APPARMOR_PROFILES.len())
        .flat_map(|i| apparmor_loaded(profiles, i))
        .collect()
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libvirt_profiles_by_path_and_by_name() {
        // precise: named by path; bookworm (libvirt 9.0): named, with a child profile.
        let precise = "/usr/sbin/libvirtd (enforce)\n/usr/sbin/tcpdump (enforce)\n";
        assert_eq!(apparmor_loaded(precise, 0), ["/usr/sbin/libvirtd"]);
        assert!(apparmor_loaded(precise, 1).is_empty());
        let bookworm = "libvirtd (enforce)\nlibvirtd//qemu_bridge_helper (enforce)\n\
                        virt-aa-helper (enforce)\n/usr/sbin/chronyd (enforce)\n\
                        libvirt-0f4f (enforce)\n";
        assert_eq!(
            apparmor_loaded(bookworm, 0),
            ["libvirtd", "libvirtd//qemu_bridge_helper"]
        );
        assert_eq!(apparmor_loaded(bookworm, 1), ["virt-aa-helper"]);
        // Guests' own profiles (libvirt-<uuid>) and other programs are not libvirt's.
        assert_eq!(apparmor_loaded_libvirt(bookworm).len(), 3);
        assert!(apparmor_loaded_libvirt("/usr/sbin/libvirtd-x (enforce)\n").is_empty());
    }
}
