//! EL9 (Rocky Linux, AlmaLinux, RHEL 9): systemd, NetworkManager keyfiles, the iptables
//! service with firewalld masked, SELinux permissive, chrony, OpenSSH, rpm, and
//! libvirt's monolithic libvirtd in its traditional mode where EL9 presets the modular
//! daemons.

use std::io;

use super::{chrony, iptables, nm_keyfile, openssh, selinux, systemd, Family};
use crate::apply::{edit, Target};
use crate::files::{hosts, libvirt};
use crate::fsroot::Root;
use crate::plan::{NetworkType, Plan};
use crate::run::Log;
use crate::verify::checks::{self, qemu_version, rpm_packages};
use crate::verify::{Check, Context, Env, Verdict};

pub struct El9;

/// Every unit the family masks so the monolithic libvirtd owns libvirt's sockets.
fn masked_for_libvirtd() -> Vec<&'static str> {
    let mut v = systemd::LIBVIRTD_SOCKETS.to_vec();
    v.extend(systemd::MODULAR_UNITS);
    v
}

impl Family for El9 {
    fn targets<'p>(&self, plan: &'p Plan, job: bool) -> Vec<Target<'p>> {
        // EL9's libvirt ships no /etc/sysconfig/libvirtd any more; libvirtd.service
        // still reads it (`EnvironmentFile=-`), so it is created when absent
        // (apache/cloudstack PR #7779).
        let mut t = vec![
            edit("/etc/sysconfig/libvirtd", libvirt::sysconfig_libvirtd),
            edit("/etc/libvirt/libvirt.conf", libvirt::libvirt_conf),
        ];
        t.extend(systemd::masked(&masked_for_libvirtd()));
        t.push(systemd::enabled("libvirtd.service", "multi-user.target"));
        t.push(edit("/etc/hostname", move |o| {
            hosts::etc_hostname_fqdn(o, plan)
        }));
        t.extend(nm_keyfile::targets(plan));
        t.extend(iptables::targets(plan));
        t.extend(systemd::masked(&[iptables::FIREWALLD]));
        t.push(systemd::enabled(iptables::SERVICE, "multi-user.target"));
        t.extend(chrony::targets(plan, chrony::CHRONY_CONF_EL));
        t.extend(selinux::targets_permissive());
        t.extend(openssh::targets());
        if job {
            t.extend(systemd::job());
        }
        t
    }

    fn network_paths(&self, plan: &Plan) -> Vec<String> {
        nm_keyfile::network_paths(plan)
    }

    fn prepare(&self, env: &Env, log: &mut Log) {
        selinux::set_permissive_unless_disabled(env, log);
    }

    fn load_firewall(&self, env: &Env, log: &mut Log) {
        iptables::load_service(env, log);
    }

    fn network_down(&self, env: &Env, log: &mut Log) {
        nm_keyfile::network_down(env, log);
    }

    fn network_up(&self, env: &Env, log: &mut Log) {
        nm_keyfile::network_up(env, log);
    }

    fn network_restart(
        &self,
        plan: &Plan,
        env: &Env,
        root: &Root,
        log: &mut Log,
        changed: &[String],
    ) {
        nm_keyfile::network_restart(plan, env, root, log, changed);
    }

    fn restart_libvirtd(&self, env: &Env, log: &mut Log, changed: &[String]) {
        systemd::restart_libvirtd(env, log, changed, &masked_for_libvirtd());
    }

    fn disable_job(&self, env: &Env, root: &Root, log: &mut Log) -> io::Result<()> {
        systemd::disable_job(env, root, log)
    }

    fn checks(&self) -> &'static [Check] {
        CHECKS
    }
}

/// What an EL9 CloudStack host installs (less cloudstack-agent, which has its own
/// check, and the Open vSwitch package, whose name carries its version in the
/// repositories that have it: `ovs-vsctl --version` checks it).
const PACKAGES: [&str; 6] = [
    "libvirt",
    "qemu-kvm",
    "NetworkManager",
    "iptables-nft-services",
    "chrony",
    "openssh-server",
];

fn packages(cx: &Context) -> Verdict {
    let mut want = PACKAGES.to_vec();
    if cx.plan.network.kind == NetworkType::Openvswitch {
        want.push("NetworkManager-ovs");
    }
    rpm_packages(cx, &want)
}

/// EL9's qemu-kvm, off PATH in /usr/libexec.
fn qemu(cx: &Context) -> Verdict {
    let libexec = cx.env.path("/usr/libexec/qemu-kvm").display().to_string();
    qemu_version(cx, &[libexec, "qemu-kvm".into()], |_, _| None)
}

const CHECKS: &[Check] = &[
    checks::X86_64,
    checks::CPU_VIRTUALIZATION,
    checks::MEMORY,
    checks::NIC,
    checks::FQDN,
    Check::new("packages", packages),
    chrony::CHECK_EL,
    checks::LIBVIRT_VERSION,
    Check::new("qemu-version", qemu),
    checks::OPENVSWITCH_VERSION,
    systemd::SOCKETS_MASKED,
    systemd::MODULAR_MASKED,
    systemd::LIBVIRTD_ENABLED,
    systemd::LIBVIRTD_ACTIVE,
    checks::LIBVIRTD_LISTENING,
    nm_keyfile::CHECK,
    checks::BRIDGES,
    checks::SELINUX,
    iptables::FIREWALLD_OFF,
    iptables::CHECK,
    openssh::CHECK,
    checks::RPM_CLOUDSTACK_AGENT,
    checks::NO_VMS,
    checks::CPU_FACTS,
];
