//! SELinux (EL): permissive unless the inventory says disabled.

use crate::apply::{edit, Target};
use crate::files::security::{selinux_config, selinux_mode};
use crate::plan::{Plan, SelinuxMode};
use crate::run::{step, Log};
use crate::verify::Env;

/// el6: the inventory's mode (permissive unless it says disabled).
pub fn targets(plan: &Plan) -> Vec<Target<'_>> {
    let mode = selinux_mode(plan);
    vec![edit("/etc/selinux/config", move |o| {
        selinux_config(o, mode)
    })]
}

/// Permissive whatever the plan says: from EL9 on the kernel ignores
/// `SELINUX=disabled` in the config file (it loads no policy but SELinux stays on;
/// only the `selinux=0` kernel argument turns it off, the installer's business), so
/// the file says permissive, which holds either way.
pub fn targets_permissive<'p>() -> Vec<Target<'p>> {
    vec![edit("/etc/selinux/config", |o| {
        selinux_config(o, SelinuxMode::Permissive)
    })]
}

/// Permissive now, without a reboot.
pub fn set_permissive(env: &Env, log: &mut Log) {
    step(env, log, "setenforce", &["permissive"], None);
}
