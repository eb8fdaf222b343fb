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

/// Permissive now, unless SELinux is off altogether (`getenforce` says Disabled: EL9
/// booted with `selinux=0`), where `setenforce` can only fail.
pub fn set_permissive_unless_disabled(env: &Env, log: &mut Log) {
    let o = env.cmd("getenforce", &[]);
    if o.success() && o.stdout().trim().eq_ignore_ascii_case("disabled") {
        log.line("SELinux is disabled (selinux=0 on the kernel command line): no setenforce");
        return;
    }
    set_permissive(env, log);
}

/// Permissive now, without a reboot.
pub fn set_permissive(env: &Env, log: &mut Log) {
    step(env, log, "setenforce", &["permissive"], None);
}
