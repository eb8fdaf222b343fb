//! The network as EL's network scripts (`ifcfg-*`, the `network` service).

use crate::apply::{edit, stale, Target};
use crate::files::ifcfg::{
    ifcfg, ifcfg_files, ifcfg_path, modprobe_blacklist, stale_network_paths, IfcfgFile,
    MODPROBE_BLACKLIST,
};
use crate::plan::{NetworkType, Plan};
use crate::run::{network_step, Log};
use crate::verify::Env;

/// One file per interface, the bridge module blacklist with Open vSwitch, and the
/// files hvseed wrote for another network type removed.
pub fn targets(plan: &Plan) -> Vec<Target<'_>> {
    let mut t = Vec::new();
    for IfcfgFile { device, keys } in ifcfg_files(plan) {
        t.push(edit(&ifcfg_path(&device), move |o| ifcfg(o, &keys)));
    }
    if plan.network.kind == NetworkType::Openvswitch {
        t.push(edit(MODPROBE_BLACKLIST, modprobe_blacklist));
    } else {
        t.push(stale(MODPROBE_BLACKLIST));
    }
    for path in stale_network_paths(plan) {
        t.push(stale(&path));
    }
    t
}

/// The ifcfg files of this plan.
pub fn network_paths(plan: &Plan) -> Vec<String> {
    ifcfg_files(plan)
        .into_iter()
        .map(|f| ifcfg_path(&f.device))
        .collect()
}

pub fn network_down(env: &Env, log: &mut Log) {
    network_step(env, log, "service", &["network", "stop"]);
}

pub fn network_up(env: &Env, log: &mut Log) {
    network_step(env, log, "service", &["network", "start"]);
}
