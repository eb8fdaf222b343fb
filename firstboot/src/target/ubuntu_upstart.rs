//! Ubuntu 12.04 (precise): upstart, ifupdown, ufw, AppArmor, OpenNTPD, dpkg, and
//! libvirt as `libvirt-bin`.

use std::io;

use super::{apparmor, ifupdown, ufw, upstart, Family};
use crate::apply::{edit, Target};
use crate::files::{hosts, libvirt, time};
use crate::fsroot::Root;
use crate::plan::Plan;
use crate::run::{step, Log};
use crate::verify::checks::{self, ntpd_running, qemu_version};
use crate::verify::{Check, Env};

pub struct UbuntuUpstart;

impl Family for UbuntuUpstart {
    fn targets<'p>(&self, plan: &'p Plan, job: bool) -> Vec<Target<'p>> {
        let mut t = vec![
            edit("/etc/default/libvirt-bin", libvirt::default_libvirt_bin),
            upstart::libvirt_bin(),
            edit("/etc/hostname", move |o| hosts::etc_hostname(o, plan)),
        ];
        t.extend(ifupdown::targets(plan));
        t.extend(ufw::targets(plan, ufw::USER_RULES_LIB));
        t.push(edit("/etc/openntpd/ntpd.conf", move |o| {
            time::openntpd_conf(o, plan)
        }));
        t.extend(apparmor::targets());
        if job {
            t.extend(upstart::job());
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
        ufw::enable(env, log);
    }

    fn network_down(&self, env: &Env, log: &mut Log) {
        ifupdown::network_down(env, log);
    }

    fn network_up(&self, env: &Env, log: &mut Log) {
        ifupdown::network_up(env, log);
    }

    fn restart_libvirtd(&self, env: &Env, log: &mut Log, _changed: &[String]) {
        step(env, log, "service", &["libvirt-bin", "restart"], None);
    }

    fn disable_job(&self, _env: &Env, root: &Root, _log: &mut Log) -> io::Result<()> {
        upstart::disable_job(root)
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
        ntpd_running(cx, "openntpd (service openntpd start)")
    }),
    checks::LIBVIRT_VERSION,
    Check::new("qemu-version", |cx| {
        qemu_version(cx, &["kvm".into(), "qemu-system-x86_64".into()], |_, _| {
            None
        })
    }),
    checks::OPENVSWITCH_VERSION,
    checks::LIBVIRTD_LISTENING,
    checks::BRIDGES,
    checks::APPARMOR,
    ufw::CHECK,
    checks::DPKG_CLOUDSTACK_AGENT,
    checks::NO_VMS,
    checks::CPU_FACTS,
];
