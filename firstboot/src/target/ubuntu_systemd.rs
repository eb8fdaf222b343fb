//! Ubuntu 22.04 (jammy) and 24.04 (noble), installed by subiquity: systemd, netplan,
//! ufw, AppArmor, chrony, OpenSSH, dpkg, and libvirt's monolithic libvirtd in its
//! traditional mode. Debian 12's pieces with netplan in place of ifupdown; both
//! releases behave the same for hvseed (the installer's network files differ by the
//! cloud-init the medium carries, not by release: [`netplan`] finds them).

use std::io;

use super::{apparmor, chrony, netplan, openssh, systemd, ufw, Family};
use crate::apply::{edit, Target};
use crate::files::{hosts, libvirt};
use crate::fsroot::Root;
use crate::plan::{NetworkType, Plan};
use crate::run::Log;
use crate::verify::checks::{self, dpkg_packages, qemu_version};
use crate::verify::{Check, Env};

pub struct UbuntuSystemd;

impl Family for UbuntuSystemd {
    fn targets<'p>(&self, plan: &'p Plan, job: bool) -> Vec<Target<'p>> {
        // 24.04's libvirtd.service reads LIBVIRTD_ARGS from /etc/default/libvirtd
        // (`EnvironmentFile=-`) over its own `--timeout 120`.
        let mut t = vec![
            edit("/etc/default/libvirtd", libvirt::default_libvirtd),
            edit("/etc/libvirt/libvirt.conf", libvirt::libvirt_conf),
        ];
        t.extend(systemd::masked(&systemd::LIBVIRTD_SOCKETS));
        t.push(edit("/etc/hostname", move |o| hosts::etc_hostname(o, plan)));
        t.extend(netplan::targets(plan));
        t.extend(ufw::targets_036(plan));
        t.extend(chrony::targets(plan, chrony::CHRONY_CONF_DEBIAN));
        t.extend(apparmor::targets());
        t.extend(openssh::targets_password());
        if job {
            t.extend(systemd::job());
        }
        t
    }

    fn network_paths(&self, _plan: &Plan) -> Vec<String> {
        netplan::network_paths()
    }

    fn rolled_back(&self, _plan: &Plan, root: &Root, log: &mut Log) -> io::Result<()> {
        netplan::rolled_back(root, log)
    }

    fn prepare(&self, env: &Env, log: &mut Log) {
        apparmor::unload(env, log);
    }

    fn load_firewall(&self, env: &Env, log: &mut Log) {
        ufw::enable_036(env, log);
    }

    fn network_down(&self, env: &Env, log: &mut Log) {
        netplan::network_down(env, log);
    }

    fn network_up(&self, env: &Env, log: &mut Log) {
        netplan::network_up(env, log);
    }

    fn network_restart(
        &self,
        plan: &Plan,
        env: &Env,
        _root: &Root,
        log: &mut Log,
        changed: &[String],
    ) {
        netplan::network_restart(plan, env, log, changed);
    }

    fn restart_libvirtd(&self, env: &Env, log: &mut Log, changed: &[String]) {
        systemd::restart_libvirtd(env, log, changed, &systemd::LIBVIRTD_SOCKETS);
    }

    fn disable_job(&self, env: &Env, root: &Root, log: &mut Log) -> io::Result<()> {
        systemd::disable_job(env, root, log)
    }

    fn checks(&self) -> &'static [Check] {
        CHECKS
    }
}

/// What an Ubuntu CloudStack host installs (the autoinstall's list, less
/// cloudstack-agent, which has its own check; `qemu-kvm` is a virtual package on noble,
/// `qemu-system-x86` is the real one on both releases).
const PACKAGES: [&str; 7] = [
    "libvirt-daemon-system",
    "qemu-system-x86",
    "netplan.io",
    "ufw",
    "apparmor",
    "chrony",
    "openssh-server",
];

const CHECKS: &[Check] = &[
    checks::X86_64,
    checks::CPU_VIRTUALIZATION,
    checks::MEMORY,
    checks::NIC,
    checks::FQDN,
    Check::new("packages", |cx| {
        let mut want = PACKAGES.to_vec();
        if cx.plan.network.kind == NetworkType::Openvswitch {
            want.push("openvswitch-switch");
        }
        dpkg_packages(cx, &want)
    }),
    chrony::CHECK,
    checks::LIBVIRT_VERSION,
    Check::new("qemu-version", |cx| {
        qemu_version(cx, &["qemu-system-x86_64".into()], |_, _| None)
    }),
    checks::OPENVSWITCH_VERSION,
    systemd::SOCKETS_MASKED,
    systemd::LIBVIRTD_ACTIVE,
    checks::LIBVIRTD_LISTENING,
    netplan::CLOUD_INIT_CHECK,
    checks::BRIDGES,
    checks::APPARMOR,
    ufw::CHECK,
    openssh::CHECK,
    openssh::PASSWORD_CHECK,
    checks::DPKG_CLOUDSTACK_AGENT,
    checks::NO_VMS,
    checks::CPU_FACTS,
];
