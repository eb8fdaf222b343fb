//! Autoinstall (the subiquity targets, Ubuntu 22.04 and 24.04). Each medium gets the
//! form its installer reads, once (a 10,000-host tree is held in memory):
//! - CD (`Media::Cdrom`): per host the bare body `hosts/<fqdn>/autoinstall.yaml`; for
//!   the cluster the NoCloud seed `nocloud/user-data` + `meta-data`, whose early
//!   command reads `fleet/macs` (lines `<mac> <fqdn>`) and copies the host's body from
//!   the medium to `/autoinstall.yaml`.
//! - HTTP (`Media::Http`, PXE): per host its own NoCloud seed `hosts/<fqdn>/user-data`
//!   (`#cloud-config` with the body under `autoinstall:`) and `meta-data`.

use anyhow::{bail, Result};
use minijinja::{context, Environment};

use super::filters::yaml;
use super::templates::render as render_template;
use super::{HostView, MediaView, RenderedTree};
use crate::inventory::Inventory;

/// A NoCloud `meta-data`: cloud-init requires the file; its `instance-id` names the
/// seed (one per host, one for the cluster's medium).
fn meta_data(instance_id: &str) -> Result<String> {
    Ok(format!("instance-id: {}\n", yaml(instance_id)?))
}

pub(super) fn render(
    env: &Environment<'_>,
    inv: &Inventory,
    media: &MediaView,
    tree: &mut RenderedTree,
    fleet: bool,
) -> Result<()> {
    let cluster = &inv.cluster;
    let mut macs = String::new();
    for h in &inv.hosts {
        let host = HostView::new(h);
        let late = render_template(env, "late.sh", context! { cluster, host, media })?;
        let body = render_template(
            env,
            "autoinstall.yaml",
            context! { cluster, host, media, late },
        )?;
        let dir = format!("hosts/{}", h.fqdn);
        if media.kind == "http" {
            let user_data = render_template(env, "user-data", context! { cluster, host, body })?;
            tree.insert(format!("{dir}/user-data"), user_data.into_bytes());
            tree.insert(
                format!("{dir}/meta-data"),
                meta_data(&format!("hvseed-{}", h.fqdn))?.into_bytes(),
            );
        } else {
            tree.insert(format!("{dir}/autoinstall.yaml"), body.into_bytes());
        }
        // The picker's table: validated MACs (lowercase hex and colons) and names.
        let mac = h.mac.to_ascii_lowercase();
        if !mac.bytes().all(|b| b.is_ascii_hexdigit() || b == b':')
            || h.fqdn.bytes().any(|b| b.is_ascii_whitespace())
        {
            bail!(
                "{}: MAC {mac:?} or name cannot go into the MAC table",
                h.fqdn
            );
        }
        macs.push_str(&format!("{mac} {}\n", h.fqdn));
    }
    if !fleet || media.kind == "http" {
        return Ok(());
    }
    let early = render_template(env, "early.sh", context! { cluster })?;
    let stub = render_template(env, "fleet-user-data", context! { cluster, early })?;
    tree.insert("nocloud/user-data".into(), stub.into_bytes());
    tree.insert(
        "nocloud/meta-data".into(),
        meta_data(&format!("hvseed-{cluster}"))?.into_bytes(),
    );
    tree.insert("fleet/macs".into(), macs.into_bytes());
    Ok(())
}
