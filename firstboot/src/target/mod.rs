//! What differs between target families: the files a family writes, its runtime steps
//! (MAC and firewall, network restart, libvirtd restart, how the first-boot job is
//! disabled) and its checks. The shared steps — computing, staging and committing the
//! files with backups and rollback (`apply`), the first-boot run with its gateway check
//! and network rollback (`run`), running the checks (`verify`) and the report — never
//! name a target: they ask the plan's [`Family`], which [`family`] maps from its `Os`.
//!
//! A family is composed of pieces named after the tool they drive, shared by every
//! family whose systems use that tool: [`sysv`], [`upstart`] and [`systemd`] (the
//! first-boot job and how it is disabled; systemd also masks libvirtd's sockets),
//! [`ifcfg`], [`ifupdown`], [`nm_keyfile`] and [`netplan`] (the network files and how
//! the network is restarted),
//! [`iptables`] and [`ufw`] (the firewall files and how they are loaded), [`selinux`]
//! and [`apparmor`] (the MAC files and the runtime step), [`chrony`] (time) and
//! [`openssh`] (root's SSH login), with the file contents in [`crate::files`] and the
//! shared checks in [`crate::verify::checks`].

pub mod apparmor;
pub mod chrony;
pub mod debian_systemd;
pub mod el6;
pub mod el9;
pub mod ifcfg;
pub mod ifupdown;
pub mod iptables;
pub mod netplan;
pub mod nm_keyfile;
pub mod openssh;
pub mod selinux;
pub mod systemd;
pub mod sysv;
pub mod ubuntu_systemd;
pub mod ubuntu_upstart;
pub mod ufw;
pub mod upstart;

use std::io;

use crate::apply::Target;
use crate::fsroot::Root;
use crate::plan::{Os, Plan};
use crate::run::Log;
use crate::verify::{Check, Env};

/// One target family: the systems that behave the same for hvseed.
pub trait Family: Sync {
    /// The files this family writes besides the shared ones (libvirtd.conf, qemu.conf,
    /// /etc/hosts, agent.properties), in the order `apply` lists them. `job` adds the
    /// first-boot job.
    fn targets<'p>(&self, plan: &'p Plan, job: bool) -> Vec<Target<'p>>;

    /// The network files `run` puts back when the management gateway is lost.
    fn network_paths(&self, plan: &Plan) -> Vec<String>;

    /// What a rollback does after putting `network_paths` back, before the network
    /// comes up again: a network the installer left for another program to write at
    /// boot is written as that program would.
    fn rolled_back(&self, _plan: &Plan, _root: &Root, _log: &mut Log) -> io::Result<()> {
        Ok(())
    }

    /// What only the running system can do before the network restart: the MAC policy.
    fn prepare(&self, env: &Env, log: &mut Log);

    /// Loads hvseed's firewall (enabled at boot from then on). `run` does this only once
    /// the host is on its planned network: the rules accept the management network's
    /// sources only, and a host rolled back onto the installer's network must stay
    /// reachable there.
    fn load_firewall(&self, env: &Env, log: &mut Log);

    /// Takes the network down with the files as they are now. Down and up are separate
    /// so a rollback can take it down with hvseed's files (which name the VLANs and
    /// bridges to remove) and up with the restored ones.
    fn network_down(&self, env: &Env, log: &mut Log);

    /// Brings the network up with the files as they are now.
    fn network_up(&self, env: &Env, log: &mut Log);

    /// Moves the host from the network it booted on to the plan's (the files written
    /// already): down, then up, unless the family has a faster way.
    /// `changed`: the paths this run's `apply` changed.
    fn network_restart(
        &self,
        _plan: &Plan,
        env: &Env,
        _root: &Root,
        log: &mut Log,
        _changed: &[String],
    ) {
        self.network_down(env, log);
        self.network_up(env, log);
    }

    /// Restarts libvirtd so it reads its new configuration. `changed`: the paths this
    /// run's `apply` changed (normally none: the offline step wrote them before this
    /// boot); a family may skip a restart that would change nothing.
    fn restart_libvirtd(&self, env: &Env, log: &mut Log, changed: &[String]);

    /// Keeps the first-boot job from running again.
    fn disable_job(&self, env: &Env, root: &Root, log: &mut Log) -> io::Result<()>;

    /// The checks, in report order.
    fn checks(&self) -> &'static [Check];
}

/// `items` joined with `sep` for a log line, or `none` when there are none.
pub(crate) fn joined_or<S: AsRef<str>>(items: &[S], sep: &str, none: &str) -> String {
    if items.is_empty() {
        return none.to_string();
    }
    items
        .iter()
        .map(AsRef::as_ref)
        .collect::<Vec<_>>()
        .join(sep)
}

/// The family of each target: the one place that maps an `Os` to its family.
pub fn family(os: Os) -> &'static dyn Family {
    match os {
        Os::Centos6 => &el6::El6,
        Os::Ubuntu1204 => &ubuntu_upstart::UbuntuUpstart,
        Os::Debian12 => &debian_systemd::DebianSystemd,
        Os::El9 => &el9::El9,
        Os::Ubuntu2204 | Os::Ubuntu2404 => &ubuntu_systemd::UbuntuSystemd,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What every CloudStack KVM host must prove, whatever its target: 64-bit x86 with
    /// hardware virtualization, 4 GB, the trunk NIC, a resolvable FQDN, time sync,
    /// libvirt and QEMU new enough, libvirtd on TCP, the bridges, the firewall open,
    /// the agent package, no VMs, and the CPU facts for the cluster.
    const EVERY_HOST: &[&str] = &[
        "x86-64",
        "cpu-virtualization",
        "memory",
        "nic",
        "fqdn",
        "ntp",
        "libvirt-version",
        "qemu-version",
        "libvirtd-listening",
        "bridges",
        "firewall",
        "cloudstack-agent",
        "no-vms",
        "cpu-facts",
    ];

    #[test]
    fn every_family_checks_every_requirement_once() {
        for os in [
            Os::Centos6,
            Os::Ubuntu1204,
            Os::Debian12,
            Os::El9,
            Os::Ubuntu2204,
            Os::Ubuntu2404,
        ] {
            let names: Vec<&str> = family(os).checks().iter().map(|c| c.name).collect();
            for want in EVERY_HOST {
                assert!(names.contains(want), "{os}: no {want} check in {names:?}");
            }
            let mut unique = names.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(
                unique.len(),
                names.len(),
                "{os}: a check twice in {names:?}"
            );
        }
    }
}
