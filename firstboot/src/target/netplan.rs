//! The network as netplan (Ubuntu ≥ 22.04), applied with `netplan apply`: hvseed's
//! file, the installer's netplan files moved aside (kept as their backups, so a
//! rollback puts them back), and cloud-init's network rendering disabled.
//!
//! Which installer files there are is decided by what exists, not by the release:
//! subiquity writes `/etc/netplan/00-installer-config.yaml` with a cloud-init whose
//! netplan directory is writable (22.04 media up to cloud-init 23.4), and otherwise
//! leaves the network to cloud-init in `/etc/cloud/cloud.cfg.d/90-installer-network.cfg`,
//! rendered to `/etc/netplan/50-cloud-init.yaml` at the first boot (24.04, and 22.04
//! media with cloud-init ≥ 24.1). Both are handled wherever they are found.

use std::fs;

use crate::apply::{edit, edit_exact, retired, Target};
use crate::files::netplan::{
    cloud_init_disable, netplan_of_cloud_cfg, netplan_yaml, planned_devices, CLOUD_INIT_DISABLE,
    CLOUD_INIT_YAML, HVSEED_YAML, INSTALLER_CLOUD_CFG, INSTALLER_YAML, MARKER,
};
use crate::fsroot::{self, Owner, Root};
use crate::plan::Plan;
use crate::run::{network_step, Log};
use crate::verify::{Check, Env};

/// hvseed's netplan file (root's, 0600), cloud-init's network off, and the installer's
/// netplan files retired: netplan merges every file, and the installer's definition of
/// the trunk NIC (DHCP, or the management address on it) would merge with hvseed's.
pub fn targets(plan: &Plan) -> Vec<Target<'_>> {
    let text = netplan_yaml(plan);
    vec![
        edit_exact(HVSEED_YAML, 0o600, move |_| text.clone()),
        edit(CLOUD_INIT_DISABLE, cloud_init_disable),
        retired(INSTALLER_YAML, MARKER),
        retired(CLOUD_INIT_YAML, MARKER),
    ]
}

/// hvseed's two files and both installer netplan files: a rollback moves hvseed's away
/// and puts back each installer file that had been retired.
pub fn network_paths() -> Vec<String> {
    [
        HVSEED_YAML,
        CLOUD_INIT_DISABLE,
        INSTALLER_YAML,
        CLOUD_INIT_YAML,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// After a rollback on cloud-init's layout there is no netplan file left: the
/// installer's network was in `90-installer-network.cfg`, which cloud-init renders
/// only at boot (and hvseed had kept it from doing so). Its network document is what
/// cloud-init would have written to `50-cloud-init.yaml`: it is written there (0600, as
/// cloud-init writes it) so that `netplan apply` brings the installer's network back
/// now; at the next boot cloud-init, no longer disabled, renders the same file again.
pub fn rolled_back(root: &Root, log: &mut Log) -> std::io::Result<()> {
    let exists = |p: &str| root.resolve(p).map(|h| h.exists());
    if exists(INSTALLER_YAML)? || exists(CLOUD_INIT_YAML)? {
        return Ok(());
    }
    let cfg_path = root.resolve(INSTALLER_CLOUD_CFG)?;
    let cfg = match crate::bounded::read_to_string(&cfg_path, crate::bounded::EDIT_LIMIT, true) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            log.line(&format!(
                "warning: no installer network file ({INSTALLER_YAML}, {CLOUD_INIT_YAML} or \
                 {INSTALLER_CLOUD_CFG}) to restore"
            ));
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    let Some(doc) = netplan_of_cloud_cfg(&cfg) else {
        log.line(&format!(
            "warning: {INSTALLER_CLOUD_CFG} holds more than a network: key; \
             {CLOUD_INIT_YAML} is left to cloud-init at the next boot"
        ));
        return Ok(());
    };
    let host = root.resolve(CLOUD_INIT_YAML)?;
    if let Some(dir) = host.parent() {
        fs::create_dir_all(dir)?;
    }
    fsroot::write_atomic(&host, doc.as_bytes(), Owner::root(0o600))?;
    log.line(&format!(
        "wrote {CLOUD_INIT_YAML} from {INSTALLER_CLOUD_CFG}, as cloud-init renders it at boot"
    ));
    Ok(())
}

/// netplan has no "down": `netplan apply` with the files as they are then removes the
/// virtual devices (VLANs, bridges, Open vSwitch ports) that the previous files made and
/// the new ones do not.
pub fn network_down(_env: &Env, log: &mut Log) {
    log.line("netplan apply removes the devices the restored files no longer name");
}

/// `netplan apply` (`netplan try` needs a terminal and refuses bridges with
/// parameters).
pub fn network_up(env: &Env, log: &mut Log) {
    network_step(env, log, "netplan", &["apply"]);
}

/// Every device of the plan present: the network networkd raised at boot from the
/// files this run left unchanged. The devices, space-separated, or None.
pub fn planned_up(plan: &Plan, env: &Env) -> Option<String> {
    let net = env.sys_root.join("class/net");
    let mut devs = vec![plan.network.trunk_nic.clone()];
    devs.extend(planned_devices(plan));
    devs.iter()
        .all(|d| net.join(d).exists())
        .then(|| devs.join(" "))
}

/// The first boot's network change: nothing when networkd raised the planned network
/// at boot already (the offline step wrote the files before it) and this run changed
/// none of them, else `netplan apply`.
pub fn network_restart(plan: &Plan, env: &Env, log: &mut Log, changed: &[String]) {
    let files = network_paths();
    if !changed.iter().any(|c| files.contains(c)) {
        if let Some(up) = planned_up(plan, env) {
            log.line(&format!(
                "the planned network is up already (networkd raised {up} at boot from the \
                 files this run left unchanged): no network restart"
            ));
            return;
        }
    }
    network_up(env, log);
}

/// cloud-init will not render a network of its own beside hvseed's file: the last
/// `network:` of `cloud.cfg.d` (read in lexical order, later files win) says
/// `config: disabled`.
pub const CLOUD_INIT_CHECK: Check = Check::new("cloud-init-network", |cx| {
    let dir = cx.env.path("/etc/cloud/cloud.cfg.d");
    let mut names: Vec<String> = match fs::read_dir(&dir) {
        Ok(e) => e
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".cfg"))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok("no /etc/cloud/cloud.cfg.d: cloud-init is not installed".into())
        }
        Err(e) => return Err(format!("cannot list /etc/cloud/cloud.cfg.d: {e}")),
    };
    names.sort();
    let mut last = None;
    for n in &names {
        let text = crate::bounded::read_to_string(&dir.join(n), crate::bounded::EDIT_LIMIT, false)
            .map_err(|e| format!("cannot read /etc/cloud/cloud.cfg.d/{n}: {e}"))?;
        for line in text.lines() {
            let l = line.trim_end();
            if let Some(rest) = l.strip_prefix("network:") {
                let disabled = rest.replace(' ', "") == "{config:disabled}";
                last = Some((n.clone(), disabled));
            } else if l.trim_start().replace(' ', "") == "config:disabled" {
                if let Some((f, _)) = &last {
                    if f == n {
                        last = Some((n.clone(), true));
                    }
                }
            }
        }
    }
    match last {
        Some((f, true)) => Ok(format!(
            "cloud-init's network is disabled (/etc/cloud/cloud.cfg.d/{f})"
        )),
        _ => Err(format!(
            "cloud-init's network is not disabled: it renders {CLOUD_INIT_YAML} at boot \
             beside {HVSEED_YAML}; write `network: {{config: disabled}}` to {CLOUD_INIT_DISABLE}"
        )),
    }
});
