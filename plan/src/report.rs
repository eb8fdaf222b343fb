//! The first-boot report: what `hvseed-firstboot run` found on the host. Written to
//! `/var/lib/hvseed/report.json` and POSTed to the plan's `report_url`, where
//! `hvseed serve` stores it and shows it on the fleet page.

use serde::{Deserialize, Serialize};

/// The report schema this build reads and writes.
pub const REPORT_SCHEMA: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// Always [`REPORT_SCHEMA`].
    pub schema: u32,
    pub cluster: String,
    pub fqdn: String,
    /// `hvseed-firstboot` version that wrote it.
    pub agent_version: String,
    /// `ready` when every check passed, `failed` otherwise.
    pub status: ReportStatus,
    /// Seconds since the Unix epoch when the run finished.
    pub finished_at: u64,
    /// Every verify check, in the order they ran.
    pub checks: Vec<CheckResult>,
    /// What the host offers guests: compared across a cluster (identical CPUs are
    /// required for live migration).
    pub cpu: CpuFacts,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportStatus {
    Ready,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckResult {
    /// Stable identifier, e.g. `libvirtd-listening`.
    pub name: String,
    pub ok: bool,
    /// Why it passed or failed, for a human.
    pub detail: String,
}

/// A check as one line, as `verify` prints it and `run` logs it:
/// `ok   name: detail` or `FAIL name: detail`.
impl std::fmt::Display for CheckResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mark = if self.ok { "ok  " } else { "FAIL" };
        write!(f, "{mark} {}: {}", self.name, self.detail)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CpuFacts {
    /// `model name` from /proc/cpuinfo.
    pub model: String,
    /// `flags` from /proc/cpuinfo, sorted.
    pub flags: Vec<String>,
    /// Number of logical CPUs.
    pub count: u32,
}
