//! Debian 12 (bookworm): systemd, ifupdown, ufw, AppArmor, chrony, OpenSSH, dpkg, and
//! libvirt's monolithic libvirtd in its traditional mode.

use std::io;

use super::{apparmor, chrony, ifupdown, openssh, systemd, ufw, Family};
use crate::apply::{edit, Target};
use crate::files::{hosts, libvirt};
use crate::fsroot::Root;
use crate::plan::{NetworkType, Plan};
use crate::run::{network_step, Log};
use crate::verify::checks::{self, dpkg_packages, qemu_version};
use crate::verify::{Check, Env};

pub struct DebianSystemd;

impl Family for DebianSystemd {
    fn targets<'p>(&self, plan: &'p Plan, job: bool) -> Vec<Target<'p>> {
        let mut t = vec![
            edit("/etc/default/libvirtd", libvirt::default_libvirtd),
            edit("/etc/libvirt/libvirt.conf", libvirt::libvirt_conf),
        ];
        t.extend(systemd::masked(&systemd::LIBVIRTD_SOCKETS));
        t.push(edit("/etc/hostname", move |o| hosts::etc_hostname(o, plan)));
        t.extend(ifupdown::targets(plan));
        t.extend(ufw::targets_036(plan));
        t.extend(chrony::targets(plan, chrony::CHRONY_CONF_DEBIAN));
        t.extend(apparmor::targets());
        t.extend(openssh::targets());
        if job {
            t.extend(systemd::job());
        }
        t
    }

    fn network_paths(&self, _plan: &Plan) -> Vec<String> {
        ifupdown::network_paths()
    }

    fn prepare(&self, env: &Env, log: &mut Log) {
        apparmor::unload(env, log);
    }

    fn load_firewall(&self, env: &Env, log: &mut Log) {
        ufw::enable_036(env, log);
    }

    // ifupdown under systemd: networking.service's stop is `ifdown -a` and marks
    // hotplug interfaces for its start, which runs `ifup -a` and then brings those up
    // too (d-i writes the installer's NIC as `allow-hotplug`, which a bare `ifup -a`
    // skips: a rollback must bring it back).
    fn network_down(&self, env: &Env, log: &mut Log) {
        network_step(env, log, "systemctl", &["stop", "networking.service"]);
    }

    fn network_up(&self, env: &Env, log: &mut Log) {
        network_step(env, log, "systemctl", &["start", "networking.service"]);
    }

    // The installer's network down and the plan's up directly (iproute2, one
    // Open vSwitch transaction, ifupdown's state kept), which skips ifupdown's hook
    // scripts; anything unexpected, and any failure, goes the ifupdown way. A rollback
    // uses networking.service both ways.
    fn network_restart(
        &self,
        plan: &Plan,
        env: &Env,
        root: &Root,
        log: &mut Log,
        changed: &[String],
    ) {
        // The offline step wrote the network files before this boot, so ifupdown
        // raised the planned network at boot from them: when this run changed none of
        // them, a restart would tear down and rebuild the same network.
        let files = self.network_paths(plan);
        if !changed.iter().any(|c| files.contains(c)) {
            if let Some(up) = ifupdown::planned_up(plan, env, root) {
                log.line(&format!(
                    "the planned network is up already (ifupdown raised {up} at boot from \
                     the files this run left unchanged): no network restart"
                ));
                return;
            }
        }
        match ifupdown::direct_restart(plan, env, root, log) {
            Ok(()) => return,
            Err(ifupdown::DirectError::NotApplicable(why)) => log.line(&format!(
                "the network is changed through networking.service: {why}"
            )),
            Err(ifupdown::DirectError::Failed(why)) => log.line(&format!(
                "warning: the planned network could not be raised directly ({why}); \
                 restarting networking.service instead"
            )),
        }
        self.network_down(env, log);
        self.network_up(env, log);
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

/// What a Debian 12 CloudStack host installs (the preseed's list, less
/// cloudstack-agent, which has its own check).
const PACKAGES: [&str; 8] = [
    "libvirt-daemon-system",
    "qemu-system-x86",
    "bridge-utils",
    "vlan",
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
    checks::BRIDGES,
    checks::APPARMOR,
    ufw::CHECK,
    openssh::CHECK,
    checks::DPKG_CLOUDSTACK_AGENT,
    checks::NO_VMS,
    checks::CPU_FACTS,
];
