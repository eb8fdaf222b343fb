//! What `hvseed serve` knows and keeps: the tree's hosts (from their `plan.json`), and
//! per host under `DIR/reports/` the last first-boot report (`<fqdn>.json`) and when an
//! installer last fetched its install file (`<fqdn>.seen`). Every write is atomic
//! ([`hvseed_plan::atomic`]: temporary file, fsync, rename, fsync of the directory),
//! so a crash or restart never leaves a torn file and loses nothing that was
//! acknowledged; and every write goes through [`Beneath`], so a symbolic link in DIR
//! (`reports/` or a report file) never makes the server write outside DIR.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use hvseed_plan::names::is_fqdn;
use hvseed_plan::plan::{Os, Plan};
use hvseed_plan::report::Report;
use serde::{Deserialize, Serialize};

use crate::pxe::beneath::Beneath;

/// Where the reports go, relative to DIR.
const REPORTS: &str = "reports";

/// A host of the tree, as its plan describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostInfo {
    pub fqdn: String,
    pub cluster: String,
    pub os: Os,
    /// The MAC its per-MAC PXE boot files are named after.
    pub mac: String,
}

/// An installer fetched this host's install file: it is being installed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    /// The file fetched (`ks.cfg` or `preseed.cfg`).
    pub file: String,
    /// Seconds since the Unix epoch.
    pub at: u64,
    /// The installer's address.
    pub peer: String,
}

/// A stored report and when it arrived (the file's mtime, seconds since the epoch).
#[derive(Debug, Clone)]
pub struct StoredReport {
    pub report: Report,
    pub received_at: u64,
}

/// The served tree and the hosts found in it.
pub struct Store {
    /// `DIR/http`, canonical.
    pub http: PathBuf,
    /// DIR, where the server writes (under `reports/`).
    pub dir: Beneath,
    hosts: Mutex<BTreeMap<String, HostInfo>>,
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Store {
    pub fn new(http: PathBuf, dir: Beneath) -> Store {
        let store = Store {
            http,
            dir,
            hosts: Mutex::new(BTreeMap::new()),
        };
        store.rescan();
        store
    }

    /// Re-reads every `http/hosts/*/plan.json`; returns the hosts found. A plan that
    /// does not parse, or sits in a directory not named after its fqdn, is skipped with
    /// a warning: the installer could not be sent there correctly either.
    pub fn rescan(&self) -> BTreeMap<String, HostInfo> {
        let found = scan_hosts(&self.http.join("hosts"));
        *self.hosts.lock().unwrap_or_else(|p| p.into_inner()) = found.clone();
        found
    }

    /// The host named `fqdn`. A name not known yet triggers a re-scan if its plan now
    /// exists, so a re-run of `hvseed pxe` is picked up without a restart; unknown
    /// names cost one stat, not a scan.
    pub fn host(&self, fqdn: &str) -> Option<HostInfo> {
        if !is_fqdn(fqdn) {
            return None;
        }
        if let Some(h) = self
            .hosts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(fqdn)
        {
            return Some(h.clone());
        }
        if self
            .http
            .join("hosts")
            .join(fqdn)
            .join("plan.json")
            .is_file()
        {
            return self.rescan().get(fqdn).cloned();
        }
        None
    }

    /// The report's path relative to DIR.
    pub fn report_path(&self, fqdn: &str) -> String {
        format!("{REPORTS}/{fqdn}.json")
    }

    pub fn seen_path(&self, fqdn: &str) -> String {
        format!("{REPORTS}/{fqdn}.seen")
    }

    /// Stores a report that has been checked against its host.
    pub fn store_report(&self, report: &Report) -> Result<PathBuf> {
        let mut text = serde_json::to_vec_pretty(report).context("serializing the report")?;
        text.push(b'\n');
        let path = self.report_path(&report.fqdn);
        self.dir.write_atomic(&path, &text, 0o644, true)?;
        Ok(self.dir.show(&path))
    }

    pub fn record_seen(&self, fqdn: &str, seen: &Seen) -> Result<()> {
        let mut text = serde_json::to_vec_pretty(seen).context("serializing the seen record")?;
        text.push(b'\n');
        self.dir
            .write_atomic(&self.seen_path(fqdn), &text, 0o644, true)
            .map(|_| ())
    }

    /// True when `host` is marked installed (this machine: the marker names its MAC):
    /// its PXE entry boots the local disk.
    pub fn installed(&self, host: &HostInfo) -> bool {
        let Ok(Some(bytes)) = self.dir.read(&crate::pxe::installed_marker(&host.fqdn)) else {
            return false;
        };
        serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v["mac"].as_str().map(crate::pxe::mac_file_name))
            == Some(crate::pxe::mac_file_name(&host.mac))
    }

    /// "PXE just once": `host` was installed (`why`), so its per-MAC PXE boot files
    /// (those the tree has) are replaced, atomically, by ones that boot the local
    /// disk, and the tree's state records it so that `hvseed pxe` keeps them so until
    /// `--reinstall`. Returns false when the host was marked installed already.
    pub fn mark_installed(&self, host: &HostInfo, why: &str) -> Result<bool> {
        let marker = crate::pxe::installed_marker(&host.fqdn);
        if self.installed(host) {
            return Ok(false);
        }
        // The state first: should a boot file fail, the next `hvseed pxe` writes it.
        let text = serde_json::json!({ "at": now(), "by": why, "mac": host.mac });
        self.dir
            .write_atomic(&marker, format!("{text}\n").as_bytes(), 0o644, true)?;
        // pxelinux keeps talking on the serial console the install file set up.
        let pxelinux = self
            .dir
            .read(&crate::pxe::local_boot_files(&host.fqdn, &host.mac, None)[0].0)?
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let serial = crate::pxe::serial_line(&pxelinux);
        for (path, content) in crate::pxe::local_boot_files(&host.fqdn, &host.mac, serial) {
            if self.dir.lstat(&path)?.is_some() {
                self.dir
                    .write_atomic(&path, content.as_bytes(), 0o644, true)?;
            }
        }
        Ok(true)
    }

    /// The stored report of `fqdn`, if any. An unreadable one is logged and ignored:
    /// the page shows the host as if it had not reported, which a new report fixes.
    pub fn report(&self, fqdn: &str) -> Option<StoredReport> {
        let rel = self.report_path(fqdn);
        let path = self.dir.show(&rel);
        let (text, received_at) = self.read_file(&rel)?;
        match serde_json::from_slice::<Report>(&text) {
            Ok(report) => Some(StoredReport {
                report,
                received_at,
            }),
            Err(e) => {
                tracing::warn!("{}: ignoring unreadable report: {e}", path.display());
                None
            }
        }
    }

    pub fn seen(&self, fqdn: &str) -> Option<Seen> {
        let rel = self.seen_path(fqdn);
        let path = self.dir.show(&rel);
        let (text, _) = self.read_file(&rel)?;
        match serde_json::from_slice(&text) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!("{}: ignoring unreadable record: {e}", path.display());
                None
            }
        }
    }
}

impl Store {
    /// A file of DIR (not through a link) and its mtime in seconds since the epoch;
    /// `None` when it is missing or unreadable (which is logged).
    fn read_file(&self, rel: &str) -> Option<(Vec<u8>, u64)> {
        let read = || -> Result<Option<(Vec<u8>, u64)>> {
            let Some(mut f) = self.dir.open_file(rel)? else {
                return Ok(None);
            };
            let at = f
                .metadata()?
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs());
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut f, &mut v)?;
            Ok(Some((v, at)))
        };
        match read() {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("{e:#}");
                None
            }
        }
    }
}

fn scan_hosts(hosts_dir: &Path) -> BTreeMap<String, HostInfo> {
    let mut found = BTreeMap::new();
    let entries = match std::fs::read_dir(hosts_dir) {
        Ok(e) => e,
        Err(e) => {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!("reading {}: {e}", hosts_dir.display());
            }
            return found;
        }
    };
    for entry in entries.flatten() {
        let plan_path = entry.path().join("plan.json");
        if !plan_path.is_file() {
            continue;
        }
        let plan = match Plan::load(&plan_path) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!("skipping host: {e}");
                continue;
            }
        };
        if entry.file_name().to_str() != Some(plan.fqdn.as_str()) {
            tracing::warn!(
                "{}: skipping host: its fqdn {:?} does not match its directory",
                plan_path.display(),
                plan.fqdn
            );
            continue;
        }
        found.insert(
            plan.fqdn.clone(),
            HostInfo {
                fqdn: plan.fqdn,
                cluster: plan.cluster,
                os: plan.os,
                mac: plan.network.mac,
            },
        );
    }
    found
}
