//! The firewall as an iptables-save file loaded by `iptables-restore`
//! (`/etc/sysconfig/iptables`, the `iptables` service of EL).

use crate::apply::{edit_mode, Target};
use crate::files::iptables::sysconfig_iptables;
use crate::plan::Plan;
use crate::run::{step, Log};
use crate::verify::checks::firewall_accepts;
use crate::verify::{Check, Env};

pub const SYSCONFIG_IPTABLES: &str = "/etc/sysconfig/iptables";

/// The rules file (root-only, as iptables-save writes it on el6).
pub fn targets(plan: &Plan) -> Vec<Target<'_>> {
    vec![edit_mode(SYSCONFIG_IPTABLES, 0o600, move |o| {
        sysconfig_iptables(o, plan)
    })]
}

/// Loads the rules file.
pub fn load(env: &Env, log: &mut Log) {
    let rules = env.path(SYSCONFIG_IPTABLES);
    step(env, log, "iptables-restore", &[], Some(&rules));
}

/// The CloudStack ports are accepted in INPUT.
pub const CHECK: Check = Check::new("firewall", |cx| firewall_accepts(cx, "INPUT"));
