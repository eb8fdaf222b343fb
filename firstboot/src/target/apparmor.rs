//! AppArmor (Debian and Ubuntu): libvirt's profiles disabled.

use crate::apply::{link, Target};
use crate::files::security::{apparmor_loaded, APPARMOR_PROFILES};
use crate::run::{step, Log};
use crate::verify::Env;

/// A link in `/etc/apparmor.d/disable/` for each profile: not loaded at boot.
pub fn targets<'p>() -> Vec<Target<'p>> {
    APPARMOR_PROFILES
        .iter()
        .map(|p| {
            link(
                &format!("/etc/apparmor.d/disable/{p}"),
                &format!("/etc/apparmor.d/{p}"),
            )
        })
        .collect()
}

/// Unloads each profile the kernel has loaded (`apparmor_parser -R`). The disable
/// links keep them from loading at boot, so after the offline step there is usually
/// nothing to unload; `apparmor_parser -R` of a profile that is not loaded fails (and
/// compiles the profile first: seconds on a slow machine). When the kernel's list
/// cannot be read, every profile is unloaded as before.
pub fn unload(env: &Env, log: &mut Log) {
    let list = env.sys_root.join("kernel/security/apparmor/profiles");
    let loaded = match crate::bounded::read_to_string(&list, crate::bounded::KERNEL_LIMIT, false) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            log.line("AppArmor is not active: no profile to unload");
            return;
        }
        Err(e) => {
            log.line(&format!("warning: cannot read {}: {e}", list.display()));
            None
        }
    };
    for (i, prof) in APPARMOR_PROFILES.iter().enumerate() {
        if let Some(t) = &loaded {
            if apparmor_loaded(t, i).is_empty() {
                log.line(&format!("AppArmor profile {prof} is not loaded"));
                continue;
            }
        }
        let path = env.path(&format!("/etc/apparmor.d/{prof}"));
        step(
            env,
            log,
            "apparmor_parser",
            &["-R", &path.to_string_lossy()],
            None,
        );
    }
}
