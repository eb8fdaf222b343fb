//! The firewall as ufw keeps it (Debian and Ubuntu).

use crate::apply::{edit, edit_mode, Target};
use crate::edit::{Lines, Style};
use crate::files::ufw::{default_ufw, ufw036_logging_low, ufw036_user_rules, ufw_user_rules};
use crate::fsroot::{self, Owner, Root};
use crate::plan::Plan;
use crate::run::{step, Log};
use crate::verify::checks::firewall_accepts;
use crate::verify::{Check, Env};

/// Where ufw keeps the rules `ufw allow` adds: `/lib/ufw/` before ufw 0.35 (precise).
pub const USER_RULES_LIB: &str = "/lib/ufw/user.rules";
/// … and `/etc/ufw/` from 0.35 on (Debian 12, Ubuntu ≥ 22.04).
pub const USER_RULES_ETC: &str = "/etc/ufw/user.rules";
/// ufw 0.36's IPv6 rules beside them.
pub const USER6_RULES_ETC: &str = "/etc/ufw/user6.rules";
/// ufw's own settings: `ENABLED`, `LOGLEVEL`.
pub const UFW_CONF: &str = "/etc/ufw/ufw.conf";
/// ufw's boot-time loader (`ufw.service` runs `ufw-init start quiet`): shell and
/// iptables-restore, no Python.
pub const UFW_INIT: &str = "/lib/ufw/ufw-init";

/// ufw's rules at `user_rules` (mode 0640, as ufw keeps them) and its forward policy.
pub fn targets<'p>(plan: &'p Plan, user_rules: &str) -> Vec<Target<'p>> {
    vec![
        edit_mode(user_rules, 0o640, move |o| ufw_user_rules(o, plan)),
        edit("/etc/default/ufw", default_ufw),
    ]
}

/// ufw 0.36 (Debian 12): both rules files whole, as ufw itself writes them
/// ([`ufw036_user_rules`]), and its forward policy.
pub fn targets_036(plan: &Plan) -> Vec<Target<'_>> {
    vec![
        edit_mode(USER_RULES_ETC, 0o640, move |o| {
            ufw036_user_rules(o, plan, false)
        }),
        edit_mode(USER6_RULES_ETC, 0o640, move |o| {
            ufw036_user_rules(o, plan, true)
        }),
        edit("/etc/default/ufw", default_ufw),
    ]
}

/// Enables ufw, which loads its rules now and at every boot.
pub fn enable(env: &Env, log: &mut Log) {
    step(env, log, "ufw", &["--force", "enable"], None);
}

/// ufw 0.36 enabled without its Python (`ufw --force enable` took 4–11 s of a Debian
/// 12 first boot under TCG): `ENABLED=yes` in ufw.conf, which is all `enable` writes
/// there, then `ufw-init start`, which loads the rules files as ufw's unit does at
/// every boot (`force-reload` when they are loaded already). `ufw enable` also rewrites both rules files and loads its logging
/// rules for `LOGLEVEL`; the offline step wrote the files as ufw writes them with the
/// logging rules of `LOGLEVEL=low`, so when ufw.conf says `low` and both files carry
/// exactly those, the loader gives the rule set `ufw enable` gives (checked against
/// ufw itself: `firstboot/tests/ufw.rs`, and in the live Debian 12 host). Otherwise,
/// or if the loader fails, `ufw --force enable`.
pub fn enable_036(env: &Env, log: &mut Log) {
    let root = match Root::open(&env.root) {
        Ok(r) => r,
        Err(e) => {
            log.line(&format!("warning: {}: {e}", env.root.display()));
            return enable(env, log);
        }
    };
    match loader_ready(&root) {
        Ok(conf) => {
            let written = root.resolve(UFW_CONF).and_then(|p| {
                let owner =
                    std::fs::symlink_metadata(&p).map_or(Owner::root(0o644), |m| Owner::of(&m));
                let mut l = Lines::parse(&conf);
                l.set(Style::Tight, "ENABLED", "yes");
                fsroot::write_atomic(&p, l.text().as_bytes(), owner)
            });
            match written {
                Ok(()) => log.line(&format!("{UFW_CONF}: ENABLED=yes")),
                Err(e) => {
                    log.line(&format!("warning: {UFW_CONF}: {e}"));
                    return enable(env, log);
                }
            }
            // `start` loads the files when ufw's chains are not there (a first boot:
            // ufw.conf said ENABLED=no at boot); with them there it loads nothing and
            // says so, and `force-reload` (which first deletes every chain, one
            // iptables call each: seconds under TCG) loads the files as they are now.
            let init = env.path(UFW_INIT);
            let init = init.to_string_lossy();
            let t = std::time::Instant::now();
            let started = crate::exec::run(&init, &["start"], env.timeout, None);
            let took = crate::run::secs(t.elapsed());
            let loaded = if started.success() && started.stdout().contains("already started") {
                log.line("ufw's rules are loaded already: reloading them");
                step(env, log, &init, &["force-reload"], None)
            } else if started.success() {
                log.line(&format!("ran {init} start ({took})"));
                true
            } else {
                log.line(&format!(
                    "warning: {} ({took})",
                    started.describe(&format!("{init} start"))
                ));
                false
            };
            if !loaded {
                enable(env, log);
            }
        }
        Err(why) => {
            log.line(&format!("{why}: ufw enables itself"));
            enable(env, log);
        }
    }
}

/// ufw.conf's text if its loader gives what `ufw enable` would: `LOGLEVEL=low` and
/// both rules files with exactly the logging rules ufw writes for that level and the
/// default policies of `/etc/default/ufw`; else why not.
fn loader_ready(root: &Root) -> Result<String, String> {
    let read = |p: &str| {
        root.resolve(p)
            .and_then(|h| crate::bounded::read_to_string(&h, crate::bounded::EDIT_LIMIT, true))
            .map_err(|e| format!("{p}: {e}"))
    };
    let conf = read(UFW_CONF)?;
    let level = conf
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("LOGLEVEL="))
        .map(|v| v.trim().trim_matches('"').to_string());
    if level.as_deref() != Some("low") {
        return Err(format!(
            "{UFW_CONF} says LOGLEVEL={}, not low",
            level.unwrap_or_default()
        ));
    }
    let defaults = read("/etc/default/ufw")?;
    let mut blocked = [false; 3];
    for (b, key) in blocked.iter_mut().zip([
        "DEFAULT_INPUT_POLICY=",
        "DEFAULT_OUTPUT_POLICY=",
        "DEFAULT_FORWARD_POLICY=",
    ]) {
        let v = defaults
            .lines()
            .rev()
            .find_map(|l| l.trim().strip_prefix(key))
            .map(|v| v.trim().trim_matches('"').to_ascii_uppercase());
        *b = matches!(v.as_deref(), Some("DROP" | "REJECT"));
    }
    for (path, prefix) in [(USER_RULES_ETC, "ufw"), (USER6_RULES_ETC, "ufw6")] {
        let text = read(path)?;
        let logging: Vec<&str> = text
            .lines()
            .skip_while(|l| l.trim() != "### LOGGING ###")
            .skip(1)
            .take_while(|l| l.trim() != "### END LOGGING ###")
            .collect();
        if logging != ufw036_logging_low(prefix, blocked) {
            return Err(format!(
                "{path} has not ufw's logging rules for LOGLEVEL=low"
            ));
        }
    }
    Ok(conf)
}

/// The CloudStack ports are accepted in ufw's user chain.
pub const CHECK: Check = Check::new("firewall", |cx| firewall_accepts(cx, "ufw-user-input"));
