//! "PXE just once": which hosts are installed, as the markers under
//! [`PXE_STATE_DIR`] record it, changed by `--reinstall` and `--disarm`. An installed
//! host's PXE entries boot its local disk.

use std::collections::{BTreeMap, HashSet};

use anyhow::{bail, Context, Result};

use super::beneath::Beneath;
use super::configs::{self, mac_file_name, PXE_STATE_DIR};
use crate::inventory::Inventory;

/// Which hosts are installed ("PXE just once", see [`PXE_STATE_DIR`]): as the
/// tree records it, and as it is to be after this run's `--reinstall`/`--disarm`.
pub struct PxeState {
    /// Installed after this run.
    pub now: HashSet<String>,
    /// Markers to write (`--disarm`, by FQDN with the MAC) and to remove
    /// (`--reinstall`, a marker of another MAC, hosts that left the inventory) once
    /// the tree is written.
    disarm: Vec<Marker>,
    rearm: Vec<String>,
}

/// The marker of a host `--disarm` marks installed, for the machine with `mac`.
#[derive(Debug)]
struct Marker {
    fqdn: String,
    mac: String,
}

/// Reads the hosts' PXE state and applies `--reinstall` / `--disarm` (FQDNs of the
/// inventory's hosts, or `all`).
pub fn read(
    tree: &Beneath,
    inv: &Inventory,
    reinstall: &[String],
    disarm: &[String],
) -> Result<PxeState> {
    let names: HashSet<&str> = inv.hosts.iter().map(|h| h.fqdn.as_str()).collect();
    let pick = |flag: &str, given: &[String]| -> Result<HashSet<String>> {
        let mut out = HashSet::new();
        for g in given {
            if g == "all" {
                out.extend(names.iter().map(|n| n.to_string()));
            } else if names.contains(g.as_str()) {
                out.insert(g.clone());
            } else {
                bail!(
                    "--{flag} {g:?}: no host of {} has that fqdn; give a host's fqdn or `all`",
                    inv.path.display()
                );
            }
        }
        Ok(out)
    };
    let rearm = pick("reinstall", reinstall)?;
    let disarm = pick("disarm", disarm)?;
    if let Some(both) = rearm.intersection(&disarm).next() {
        bail!("{both} is given to both --reinstall and --disarm; give it to one of them");
    }
    // The markers there are (one listing, not a look-up per host).
    let mut markers = HashSet::new();
    if tree.dir(PXE_STATE_DIR, false)?.is_some() {
        let dir = tree.show(PXE_STATE_DIR);
        for e in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let name = e?.file_name();
            if let Some(fqdn) = name.to_str().and_then(|n| n.strip_suffix(".installed")) {
                markers.insert(fqdn.to_string());
            }
        }
    }
    // A marker counts for the machine it was written for: a host whose MAC changed
    // (new hardware under the same name) is installed again.
    let mut now = HashSet::new();
    let mut stale = Vec::new();
    for h in inv.hosts.iter().filter(|h| markers.contains(&h.fqdn)) {
        let Some(bytes) = tree.read(&configs::installed_marker(&h.fqdn))? else {
            continue;
        };
        let mac = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v["mac"].as_str().map(mac_file_name));
        if mac == Some(mac_file_name(&h.mac)) {
            now.insert(h.fqdn.clone());
        } else {
            tracing::info!(
                "{}: installed with another MAC: its PXE entry is armed again",
                h.fqdn
            );
            stale.push(h.fqdn.clone());
        }
    }
    // Markers of hosts that left the inventory go.
    stale.extend(markers.into_iter().filter(|m| !names.contains(m.as_str())));
    let mut rearm: Vec<String> = rearm.into_iter().filter(|h| now.contains(h)).collect();
    let disarm: Vec<String> = disarm.into_iter().filter(|h| !now.contains(h)).collect();
    for h in &rearm {
        now.remove(h);
        tracing::info!("{h}: PXE entry armed: its next PXE boot installs it");
    }
    for h in &disarm {
        now.insert(h.clone());
        tracing::info!("{h}: PXE entry disarmed: it boots from its local disk");
    }
    rearm.extend(stale);
    let macs: BTreeMap<&str, &str> = inv
        .hosts
        .iter()
        .map(|h| (h.fqdn.as_str(), h.mac.as_str()))
        .collect();
    let disarm = disarm
        .into_iter()
        .map(|fqdn| {
            let mac = macs[fqdn.as_str()].to_string();
            Marker { fqdn, mac }
        })
        .collect();
    Ok(PxeState { now, disarm, rearm })
}

impl PxeState {
    /// Writes the state this run changed.
    pub fn record(&self, tree: &Beneath) -> Result<()> {
        for h in &self.rearm {
            tree.remove_file(&configs::installed_marker(h))?;
        }
        for Marker { fqdn: h, mac } in &self.disarm {
            let text = serde_json::json!({
                "at": std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
                "by": "hvseed pxe --disarm",
                "mac": mac,
            });
            tree.write_atomic(
                &configs::installed_marker(h),
                format!("{text}\n").as_bytes(),
                0o644,
                true,
            )?;
        }
        Ok(())
    }
}
