//! The network as ifupdown's `/etc/network/interfaces` (Debian, and Ubuntu before
//! netplan).

use crate::apply::{edit, Target};
use crate::files::ifupdown::network_interfaces;
use crate::plan::Plan;
use crate::run::{network_step, Log};
use crate::verify::Env;

pub const INTERFACES: &str = "/etc/network/interfaces";

pub fn targets(plan: &Plan) -> Vec<Target<'_>> {
    vec![edit(INTERFACES, move |o| network_interfaces(o, plan))]
}

pub fn network_paths() -> Vec<String> {
    vec![INTERFACES.to_string()]
}

// `service networking restart` only re-runs `ifup -a` on precise, which skips
// interfaces that are already up; ifdown/ifup really reconfigure them.
pub fn network_down(env: &Env, log: &mut Log) {
    network_step(env, log, "ifdown", &["-a", "--exclude=lo"]);
}

pub fn network_up(env: &Env, log: &mut Log) {
    network_step(env, log, "ifup", &["-a", "--exclude=lo"]);
}
