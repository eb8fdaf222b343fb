//! The network as NetworkManager keyfiles, driven with `nmcli` (EL9): the profiles
//! (root's, mode 0600), the other network type's removed, and how NetworkManager is
//! told about them.

use std::time::Instant;

use crate::apply::{edit_exact, retired, stale_marked, Target};
use crate::files::nm_keyfile::{
    installer_mgmt_path, keyfile_path, keyfile_text, keyfiles, stale_paths, Keyfile, MARKER,
};
use crate::fsroot::Root;
use crate::plan::Plan;
use crate::run::{network_step, secs, Log};
use crate::verify::{Check, Env};

/// One keyfile per profile, and hvseed's keyfiles for the other network type removed
/// (or, where hvseed had replaced the installer's, the installer's put back). The
/// installer's management VLAN profile, when this plan does not replace it in place
/// (Open vSwitch), is retired: removed and kept as the backup, so that it does not
/// raise a second copy of the management address beside the bridge's, and a rollback
/// brings it back.
pub fn targets(plan: &Plan) -> Vec<Target<'_>> {
    let mut t = Vec::new();
    let wanted: Vec<String> = keyfiles(plan).iter().map(|k| keyfile_path(&k.id)).collect();
    for kf in keyfiles(plan) {
        let text = keyfile_text(&kf);
        t.push(edit_exact(&keyfile_path(&kf.id), 0o600, move |_| {
            text.clone()
        }));
    }
    let installer = installer_mgmt_path(plan);
    for path in stale_paths(plan) {
        if path != installer {
            t.push(stale_marked(&path, MARKER));
        }
    }
    if !wanted.contains(&installer) {
        t.push(retired(&installer, MARKER));
    }
    t
}

/// The keyfiles of this plan, and the installer's management VLAN profile: a rollback
/// puts each back as the installer wrote it (or moves hvseed's away).
pub fn network_paths(plan: &Plan) -> Vec<String> {
    let mut v: Vec<String> = keyfiles(plan).iter().map(|k| keyfile_path(&k.id)).collect();
    let installer = installer_mgmt_path(plan);
    if !v.contains(&installer) {
        v.push(installer);
    }
    v
}

/// Every device NetworkManager manages down (`nmcli networking off`), as stopping a
/// network service does; a rollback then changes the files under it.
pub fn network_down(env: &Env, log: &mut Log) {
    network_step(env, log, "nmcli", &["networking", "off"]);
}

/// NetworkManager reads the keyfiles as they are now and brings up what autoconnects
/// (hvseed's profiles first, by their priority; after a rollback, the installer's).
pub fn network_up(env: &Env, log: &mut Log) {
    network_step(env, log, "nmcli", &["connection", "reload"]);
    network_step(env, log, "nmcli", &["networking", "on"]);
}

/// The UUIDs of the active connections and their states
/// (`nmcli -t -f UUID,STATE connection show --active`), or why nmcli cannot say.
fn active(env: &Env) -> Result<Vec<(String, String)>, String> {
    let args = ["-t", "-f", "UUID,STATE", "connection", "show", "--active"];
    let o = env.cmd("nmcli", &args);
    if !o.success() {
        return Err(o.describe(&format!("nmcli {}", args.join(" "))));
    }
    Ok(o.stdout()
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(u, s)| (u.trim().to_string(), s.trim().to_string()))
        .collect())
}

/// The profiles `nmcli connection up` must activate that are not activated now.
fn not_activated<'k>(files: &'k [Keyfile], active: &[(String, String)]) -> Vec<&'k Keyfile> {
    files
        .iter()
        .filter(|k| k.activate)
        .filter(|k| !active.iter().any(|(u, s)| *u == k.uuid && s == "activated"))
        .collect()
}

/// The first boot's network change. The offline step wrote the keyfiles before this
/// boot, so NetworkManager normally activated hvseed's profiles at boot already (they
/// autoconnect, ahead of the installer's by their priority): then nothing is done, and
/// a profile NetworkManager has not activated is brought up with `nmcli connection up`
/// (a port brings its bridge), which replaces the installer's profile on its device.
/// When this run changed a keyfile, an active profile would keep its old settings:
/// NetworkManager's connections are restarted (down, re-read, up) as the other
/// families restart their network service.
pub fn network_restart(plan: &Plan, env: &Env, _root: &Root, log: &mut Log, changed: &[String]) {
    let files = keyfiles(plan);
    let paths = network_paths(plan);
    let ours: Vec<&String> = changed.iter().filter(|c| paths.contains(c)).collect();
    if !ours.is_empty() {
        log.line(&format!(
            "changed by this run: {}: restarting NetworkManager's connections",
            super::joined_or(&ours, ", ", "")
        ));
        network_down(env, log);
        network_up(env, log);
        return;
    }
    let start = Instant::now();
    let todo = match active(env) {
        Ok(a) => not_activated(&files, &a),
        Err(why) => {
            log.line(&format!(
                "warning: {why}; activating every profile of hvseed's"
            ));
            files.iter().filter(|k| k.activate).collect()
        }
    };
    if todo.is_empty() {
        log.line(&format!(
            "the planned network is up already (NetworkManager activated hvseed's {} profiles \
             at boot from the files this run left unchanged; {}): no network restart",
            files.iter().filter(|k| k.activate).count(),
            secs(start.elapsed())
        ));
        return;
    }
    for k in todo {
        network_step(env, log, "nmcli", &["connection", "up", "uuid", &k.uuid]);
    }
}

/// Every profile hvseed activates is active in NetworkManager
/// (`nmcli connection show --active`): a profile NetworkManager ignored (a keyfile others
/// may read) or could not activate shows here by name.
pub const CHECK: Check = Check::new("network-profiles", |cx| {
    let files = keyfiles(cx.plan);
    let a = active(cx.env)?;
    let down: Vec<String> = not_activated(&files, &a)
        .iter()
        .map(|k| format!("{} ({})", k.id, keyfile_path(&k.id)))
        .collect();
    if down.is_empty() {
        Ok(format!(
            "NetworkManager has activated {}",
            files
                .iter()
                .filter(|k| k.activate)
                .map(|k| k.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    } else {
        Err(format!(
            "not activated: {}; see `nmcli connection up ID` and `journalctl -u NetworkManager`",
            down.join(", ")
        ))
    }
});
