//! SELinux (EL): permissive unless the inventory says disabled.

use crate::apply::{edit, Target};
use crate::files::security::{selinux_config, selinux_mode};
use crate::plan::Plan;
use crate::run::{step, Log};
use crate::verify::Env;

pub fn targets(plan: &Plan) -> Vec<Target<'_>> {
    let mode = selinux_mode(plan);
    vec![edit("/etc/selinux/config", move |o| {
        selinux_config(o, mode)
    })]
}

/// Permissive now, without a reboot.
pub fn set_permissive(env: &Env, log: &mut Log) {
    step(env, log, "setenforce", &["permissive"], None);
}
