//! The firewall as an iptables-save file loaded by `iptables-restore`
//! (`/etc/sysconfig/iptables`, the `iptables` service of EL): on el6 by the SysV
//! service, on EL9 by `iptables.service` (iptables-nft-services) with firewalld masked,
//! as the CloudStack guide has it.

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

/// EL9's unit that loads the rules file at boot, and the firewall it replaces.
pub const SERVICE: &str = "iptables.service";
pub const FIREWALLD: &str = "firewalld.service";

/// Loads the rules file through systemd: firewalld stopped first (it is masked from the
/// offline step on, but a run that wrote the files itself finds it running, and its
/// own tables would reject what the rules accept), then `iptables.service` restarted,
/// which loads `/etc/sysconfig/iptables` and is active from then on.
pub fn load_service(env: &Env, log: &mut Log) {
    step(env, log, "systemctl", &["stop", FIREWALLD], None);
    step(env, log, "systemctl", &["restart", SERVICE], None);
}

/// firewalld is not running (`systemctl is-active`), so only hvseed's rules filter.
pub const FIREWALLD_OFF: Check = Check::new("firewalld-off", |cx| {
    let o = cx.env.cmd("systemctl", &["is-active", FIREWALLD]);
    let state = o.stdout().trim().to_string();
    if state.is_empty() {
        return Err(o.describe(&format!("systemctl is-active {FIREWALLD}")));
    }
    if matches!(state.as_str(), "active" | "activating" | "reloading") {
        return Err(format!(
            "{FIREWALLD} is {state}; the CloudStack guide uses iptables instead \
             (systemctl mask --now {FIREWALLD}; systemctl enable --now {SERVICE})"
        ));
    }
    Ok(format!("{FIREWALLD} is {state}"))
});

/// The CloudStack ports are accepted in INPUT.
pub const CHECK: Check = Check::new("firewall", |cx| firewall_accepts(cx, "INPUT"));
