//! AppArmor (Debian and Ubuntu): libvirt's profiles disabled.

use crate::apply::{link, Target};
use crate::files::security::APPARMOR_PROFILES;
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

/// Unloads each profile now (`apparmor_parser -R`).
pub fn unload(env: &Env, log: &mut Log) {
    for prof in APPARMOR_PROFILES {
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
