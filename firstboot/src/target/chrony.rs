//! Time by chrony (Debian 12, EL9 and Ubuntu ≥ 22.04: the CloudStack guide now
//! says chrony everywhere).

use crate::apply::{edit, Target};
use crate::files::time::{chrony_conf, configured_servers};
use crate::plan::Plan;
use crate::verify::{running_processes, Check, Context, Verdict};

/// Debian's place for it, and its unit.
pub const CHRONY_CONF_DEBIAN: &str = "/etc/chrony/chrony.conf";
/// EL's place for it (its unit is chronyd.service).
pub const CHRONY_CONF_EL: &str = "/etc/chrony.conf";

pub fn targets<'p>(plan: &'p Plan, conf: &str) -> Vec<Target<'p>> {
    vec![edit(conf, move |o| chrony_conf(o, plan))]
}

/// chronyd runs, and its configuration names the plan's servers (when the plan has
/// any; without, the distribution's pool is kept): Debian's file and unit name.
pub const CHECK: Check = Check::new("ntp", |cx| running(cx, CHRONY_CONF_DEBIAN, "chrony"));

/// The same with EL's file and unit name.
pub const CHECK_EL: Check = Check::new("ntp", |cx| running(cx, CHRONY_CONF_EL, "chronyd"));

fn running(cx: &Context, conf: &str, unit: &str) -> Verdict {
    let names = running_processes(cx.env).map_err(|e| format!("cannot list processes: {e}"))?;
    if !names.iter().any(|n| n == "chronyd") {
        return Err(format!(
            "no chronyd process: start chrony (systemctl enable --now {unit})"
        ));
    }
    let path = cx.env.path(conf);
    let text = crate::bounded::read_to_string(&path, crate::bounded::EDIT_LIMIT, false)
        .map_err(|e| format!("chronyd runs, but {conf} cannot be read: {e}"))?;
    let servers = configured_servers(&text);
    let want = &cx.plan.ntp_servers;
    if !want.is_empty() && &servers != want {
        return Err(format!(
            "chronyd runs, but {conf} names {} instead of the plan's {}",
            if servers.is_empty() {
                "no server".to_string()
            } else {
                servers.join(", ")
            },
            want.join(", ")
        ));
    }
    Ok(format!("chronyd is running with {}", servers.join(", ")))
}
