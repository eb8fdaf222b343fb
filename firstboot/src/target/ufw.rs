//! The firewall as ufw keeps it (Debian and Ubuntu).

use crate::apply::{edit, edit_mode, Target};
use crate::files::ufw::{default_ufw, ufw_user_rules};
use crate::plan::Plan;
use crate::run::{step, Log};
use crate::verify::checks::firewall_accepts;
use crate::verify::{Check, Env};

/// Where ufw keeps the rules `ufw allow` adds: `/lib/ufw/` before ufw 0.35 (precise).
pub const USER_RULES_LIB: &str = "/lib/ufw/user.rules";
/// … and `/etc/ufw/` from 0.35 on (Debian 12, Ubuntu ≥ 22.04).
pub const USER_RULES_ETC: &str = "/etc/ufw/user.rules";

/// ufw's rules at `user_rules` (mode 0640, as ufw keeps them) and its forward policy.
pub fn targets<'p>(plan: &'p Plan, user_rules: &str) -> Vec<Target<'p>> {
    vec![
        edit_mode(user_rules, 0o640, move |o| ufw_user_rules(o, plan)),
        edit("/etc/default/ufw", default_ufw),
    ]
}

/// Enables ufw, which loads its rules now and at every boot.
pub fn enable(env: &Env, log: &mut Log) {
    step(env, log, "ufw", &["--force", "enable"], None);
}

/// The CloudStack ports are accepted in ufw's user chain.
pub const CHECK: Check = Check::new("firewall", |cx| firewall_accepts(cx, "ufw-user-input"));
