//! CentOS 6 (EL6): SysV init, network scripts, an iptables file, SELinux, ntpd, rpm.

use std::io;

use super::{ifcfg, iptables, selinux, sysv, Family};
use crate::apply::{edit, Target};
use crate::files::{hosts, libvirt, time};
use crate::fsroot::Root;
use crate::plan::Plan;
use crate::run::{step, Log};
use crate::verify::checks::{self, ntpd_running, qemu_version};
use crate::verify::{Check, Context, Env, Verdict};

pub struct El6;

impl Family for El6 {
    fn targets<'p>(&self, plan: &'p Plan, job: bool) -> Vec<Target<'p>> {
        let mut t = vec![edit("/etc/sysconfig/libvirtd", libvirt::sysconfig_libvirtd)];
        t.extend(selinux::targets(plan));
        t.push(edit("/etc/sysconfig/network", move |o| {
            hosts::sysconfig_network(o, plan)
        }));
        t.push(edit("/etc/ntp.conf", move |o| time::ntp_conf(o, plan)));
        t.extend(iptables::targets(plan));
        t.extend(ifcfg::targets(plan));
        if job {
            t.extend(sysv::job());
        }
        t
    }

    fn network_paths(&self, plan: &Plan) -> Vec<String> {
        ifcfg::network_paths(plan)
    }

    fn prepare(&self, env: &Env, log: &mut Log) {
        selinux::set_permissive(env, log);
    }

    fn load_firewall(&self, env: &Env, log: &mut Log) {
        iptables::load(env, log);
    }

    fn network_down(&self, env: &Env, log: &mut Log) {
        ifcfg::network_down(env, log);
    }

    fn network_up(&self, env: &Env, log: &mut Log) {
        ifcfg::network_up(env, log);
    }

    fn restart_libvirtd(&self, env: &Env, log: &mut Log, _changed: &[String]) {
        step(env, log, "service", &["libvirtd", "restart"], None);
    }

    fn disable_job(&self, _env: &Env, root: &Root, _log: &mut Log) -> io::Result<()> {
        sysv::disable_job(root)
    }

    fn checks(&self) -> &'static [Check] {
        CHECKS
    }
}

const CHECKS: &[Check] = &[
    checks::X86_64,
    checks::CPU_VIRTUALIZATION,
    checks::MEMORY,
    checks::NIC,
    checks::FQDN,
    Check::new("ntp", |cx| {
        ntpd_running(cx, "ntpd (service ntpd start; chkconfig ntpd on)")
    }),
    checks::LIBVIRT_VERSION,
    Check::new("qemu-version", qemu),
    checks::OPENVSWITCH_VERSION,
    checks::LIBVIRTD_LISTENING,
    checks::BRIDGES,
    checks::SELINUX,
    iptables::CHECK,
    checks::RPM_CLOUDSTACK_AGENT,
    checks::NO_VMS,
    checks::CPU_FACTS,
];

/// RHEL 6's qemu-kvm, off PATH in /usr/libexec. It is 0.12.1.2 with years of
/// backports; the guide supports CentOS 6.3 with exactly that build, so its 1.0
/// minimum means upstream QEMU.
fn qemu(cx: &Context) -> Verdict {
    let libexec = cx.env.path("/usr/libexec/qemu-kvm").display().to_string();
    qemu_version(cx, &[libexec, "qemu-kvm".into()], |text, v| {
        text.contains("qemu-kvm-0.12.1")
            .then(|| format!("RHEL 6 qemu-kvm {v} (the build CloudStack supports on CentOS 6)"))
    })
}
