//! Kickstarts (the anaconda targets): one per host (`hosts/<fqdn>/ks.cfg`, the plan
//! and ssh keys inline) and one for the cluster (`fleet/ks.cfg`, which finds the host
//! by MAC in `%pre` and takes its plan from the media).

use anyhow::Result;
use minijinja::{context, Environment};
use serde::Serialize;

use super::templates::render as render_template;
use super::{split_common, HostView, MediaView, RenderedTree};
use crate::inventory::Inventory;

#[derive(Serialize)]
struct FleetHost {
    mac: String,
    fqdn: String,
    /// This host's own kickstart command lines (not shared by every host).
    commands: String,
    /// This host's own `%packages` lines.
    packages: String,
}

fn lines(v: &[String]) -> String {
    let mut s = v.join("\n");
    if !s.is_empty() {
        s.push('\n');
    }
    s
}

pub(super) fn render(
    env: &Environment<'_>,
    inv: &Inventory,
    media: &MediaView,
    tree: &mut RenderedTree,
    fleet: bool,
) -> Result<()> {
    let mut all_commands = Vec::with_capacity(inv.hosts.len());
    let mut all_packages = Vec::with_capacity(inv.hosts.len());
    for h in &inv.hosts {
        let host = HostView::new(h);
        let commands = render_template(env, "host.ks", context! { host, media })?;
        let packages = render_template(env, "packages.ks", context! { host })?;
        let plan_key = format!("hosts/{}/plan.json", h.fqdn);
        let plan_json = String::from_utf8_lossy(&tree[&plan_key]).into_owned();
        let keys_key = format!("hosts/{}/authorized_keys", h.fqdn);
        let authorized_keys = String::from_utf8_lossy(&tree[&keys_key]).into_owned();
        let ks = render_template(
            env,
            "ks.cfg",
            context! {
                host,
                cluster => inv.cluster,
                commands => commands.trim_end(),
                packages => packages.trim_end(),
                plan_json,
                authorized_keys,
                media,
                fleet => false,
            },
        )?;
        tree.insert(format!("hosts/{}/ks.cfg", h.fqdn), ks.into_bytes());
        all_commands.push(commands);
        all_packages.push(packages);
    }
    if !fleet {
        return Ok(());
    }
    let (common_commands, own_commands) = split_common(&all_commands);
    let (common_packages, own_packages) = split_common(&all_packages);
    let hosts: Vec<FleetHost> = inv
        .hosts
        .iter()
        .zip(own_commands.iter().zip(own_packages.iter()))
        .map(|(h, (c, p))| FleetHost {
            mac: h.mac.clone(),
            fqdn: h.fqdn.clone(),
            commands: lines(c),
            packages: lines(p),
        })
        .collect();
    let fleet = render_template(
        env,
        "fleet-ks.cfg",
        context! {
            cluster => inv.cluster,
            commands => common_commands.join("\n"),
            packages => common_packages.join("\n"),
            hosts,
            media,
            fleet => true,
        },
    )?;
    tree.insert("fleet/ks.cfg".into(), fleet.into_bytes());
    Ok(())
}
