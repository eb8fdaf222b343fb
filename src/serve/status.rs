//! The fleet status: each host's state and, per cluster, whether the CPUs of the hosts
//! that reported match (CloudStack needs identical CPUs in a cluster for live
//! migration). Served as JSON (`/status.json`) and as an HTML page (`/`).

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use super::store::{now, HostInfo, Seen, Store};

/// `GET /status.json`. Shape (every key always present; `null` where noted):
///
/// ```json
/// {
///   "generated_at": 1764343200,
///   "clusters": [{
///     "name": "lab",
///     "hosts": [{
///       "fqdn": "kvm1.lab.example", "os": "centos6",
///       "state": "not-seen | installing | ready | failed",
///       "seen": {"file": "ks.cfg", "at": 1764340000, "peer": "10.0.0.5:41234"} | null,
///       "report": {"received_at": 1764341000, "finished_at": 1764340990,
///                  "agent_version": "0.1.0",
///                  "failed_checks": [{"name": "kvm-module", "detail": "..."}],
///                  "cpu": {"model": "...", "count": 8}} | null
///     }],
///     "cpu": {"reported": 2, "consistent": false,
///             "model": "..." | null, "flags": ["..."] | null,
///             "differing": [{"fqdn": "...", "model": "...",
///                            "missing_flags": ["..."], "extra_flags": ["..."]}]}
///   }]
/// }
/// ```
///
/// `state` is `ready`/`failed` from the last report, unless an installer fetched the
/// host's install file after that report arrived (a reinstall): then `installing`.
/// A host's CPU flags are not listed per host: the cluster's `cpu` has the common set
/// and how each other host differs from it. There, `model`/`flags` are those most
/// reporting hosts share (ties: the group holding the alphabetically first host),
/// `differing` lists every other reporting host with how it differs, and `consistent`
/// is true when no host differs.
#[derive(Debug, Serialize)]
pub struct Status {
    pub generated_at: u64,
    pub clusters: Vec<ClusterStatus>,
}

#[derive(Debug, Serialize)]
pub struct ClusterStatus {
    pub name: String,
    pub hosts: Vec<HostStatus>,
    pub cpu: CpuConsistency,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostState {
    NotSeen,
    Installing,
    Ready,
    Failed,
}

impl HostState {
    fn as_str(self) -> &'static str {
        match self {
            HostState::NotSeen => "not seen",
            HostState::Installing => "installing",
            HostState::Ready => "ready",
            HostState::Failed => "failed",
        }
    }
}

#[derive(Debug, Serialize)]
pub struct HostStatus {
    pub fqdn: String,
    pub os: String,
    pub state: HostState,
    /// "armed": the host's next PXE boot installs it; "disarmed": it boots its disk.
    pub pxe: &'static str,
    pub seen: Option<Seen>,
    pub report: Option<ReportSummary>,
}

#[derive(Debug, Serialize)]
pub struct ReportSummary {
    pub received_at: u64,
    pub finished_at: u64,
    pub agent_version: String,
    pub failed_checks: Vec<FailedCheck>,
    pub cpu: CpuSummary,
    /// The host's CPU flags, sorted: compared per cluster, not repeated per host in
    /// the output (a fleet's status would be mostly flag lists otherwise).
    #[serde(skip)]
    pub flags: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct CpuSummary {
    pub model: String,
    pub count: u32,
}

#[derive(Debug, Serialize)]
pub struct FailedCheck {
    pub name: String,
    pub detail: String,
}

#[derive(Debug, Serialize)]
pub struct CpuConsistency {
    pub reported: usize,
    pub consistent: bool,
    pub model: Option<String>,
    pub flags: Option<Vec<String>>,
    pub differing: Vec<CpuDifference>,
}

#[derive(Debug, Serialize)]
pub struct CpuDifference {
    pub fqdn: String,
    pub model: String,
    pub missing_flags: Vec<String>,
    pub extra_flags: Vec<String>,
}

/// Reads the tree's hosts afresh (so the page follows re-runs of `hvseed pxe`) and
/// every stored report and seen record.
pub fn collect(store: &Store) -> Status {
    let hosts = store.rescan();
    let mut by_cluster: BTreeMap<String, Vec<HostInfo>> = BTreeMap::new();
    for h in hosts.into_values() {
        by_cluster.entry(h.cluster.clone()).or_default().push(h);
    }
    let clusters = by_cluster
        .into_iter()
        .map(|(name, hosts)| {
            let hosts: Vec<HostStatus> = hosts.iter().map(|h| host_status(store, h)).collect();
            let cpu = cpu_consistency(&hosts);
            ClusterStatus { name, hosts, cpu }
        })
        .collect();
    Status {
        generated_at: now(),
        clusters,
    }
}

fn host_status(store: &Store, h: &HostInfo) -> HostStatus {
    let seen = store.seen(&h.fqdn);
    let stored = store.report(&h.fqdn);
    let state = match (&seen, &stored) {
        (Some(s), Some(r)) if s.at > r.received_at => HostState::Installing,
        (_, Some(r)) => match r.report.status {
            hvseed_plan::report::ReportStatus::Ready => HostState::Ready,
            hvseed_plan::report::ReportStatus::Failed => HostState::Failed,
        },
        (Some(_), None) => HostState::Installing,
        (None, None) => HostState::NotSeen,
    };
    let report = stored.map(|r| ReportSummary {
        received_at: r.received_at,
        finished_at: r.report.finished_at,
        agent_version: r.report.agent_version,
        failed_checks: r
            .report
            .checks
            .into_iter()
            .filter(|c| !c.ok)
            .map(|c| FailedCheck {
                name: c.name,
                detail: c.detail,
            })
            .collect(),
        cpu: CpuSummary {
            model: r.report.cpu.model,
            count: r.report.cpu.count,
        },
        flags: {
            let mut f = r.report.cpu.flags;
            f.sort();
            f.dedup();
            f
        },
    });
    HostStatus {
        fqdn: h.fqdn.clone(),
        os: h.os.to_string(),
        state,
        pxe: if store.installed(h) {
            "disarmed"
        } else {
            "armed"
        },
        seen,
        report,
    }
}

fn cpu_consistency(hosts: &[HostStatus]) -> CpuConsistency {
    // (model, sorted flags) → hosts with exactly that CPU, in fqdn order.
    let mut groups: BTreeMap<(String, Vec<String>), Vec<&str>> = BTreeMap::new();
    for h in hosts {
        if let Some(r) = &h.report {
            groups
                .entry((r.cpu.model.clone(), r.flags.clone()))
                .or_default()
                .push(&h.fqdn);
        }
    }
    let reported = groups.values().map(Vec::len).sum();
    let Some(((model, flags), _)) = groups
        .iter()
        .max_by(|a, b| a.1.len().cmp(&b.1.len()).then_with(|| b.1[0].cmp(a.1[0])))
    else {
        return CpuConsistency {
            reported: 0,
            consistent: true,
            model: None,
            flags: None,
            differing: Vec::new(),
        };
    };
    let mut differing = Vec::new();
    for ((m, f), members) in &groups {
        if (m, f) == (model, flags) {
            continue;
        }
        for fqdn in members {
            differing.push(CpuDifference {
                fqdn: (*fqdn).to_owned(),
                model: m.clone(),
                missing_flags: flags.iter().filter(|x| !f.contains(x)).cloned().collect(),
                extra_flags: f.iter().filter(|x| !flags.contains(x)).cloned().collect(),
            });
        }
    }
    differing.sort_by(|a, b| a.fqdn.cmp(&b.fqdn));
    CpuConsistency {
        reported,
        consistent: differing.is_empty(),
        model: Some(model.clone()),
        flags: Some(flags.clone()),
        differing,
    }
}

/// HTML-escapes text for element content and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// `2025-11-28 15:04:05 UTC` from seconds since the epoch: the agent's log timestamp,
/// spelled for people.
pub fn utc(secs: u64) -> String {
    let iso = hvseed_plan::time::utc(secs);
    let (date, time) = iso.split_once('T').unwrap_or((&iso, ""));
    format!("{date} {} UTC", time.trim_end_matches('Z'))
}

/// `GET /`: the fleet page. Every value from the tree or a report is escaped.
pub fn html(status: &Status) -> String {
    let mut o = String::new();
    o.push_str(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"refresh\" content=\"15\">\n<title>hvseed fleet</title>\n<style>\n\
         body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}\n\
         td,th{border:1px solid #bbb;padding:.3em .6em;text-align:left;vertical-align:top}\n\
         .not-seen{color:#666}.installing{color:#a60}.ready{color:#070}.failed{color:#b00}\n\
         .mismatch{color:#b00;font-weight:bold}.match{color:#070}\n</style>\n</head>\n<body>\n\
         <h1>hvseed fleet</h1>\n",
    );
    let _ = writeln!(
        o,
        "<p>Generated {}. Machine-readable: <a href=\"/status.json\">status.json</a>.</p>",
        utc(status.generated_at)
    );
    if status.clusters.is_empty() {
        o.push_str("<p>No hosts in this tree (no <code>hosts/*/plan.json</code>).</p>\n");
    }
    for c in &status.clusters {
        let _ = writeln!(o, "<h2>Cluster {}</h2>", escape(&c.name));
        let count = |st: HostState| c.hosts.iter().filter(|h| h.state == st).count();
        let _ = writeln!(
            o,
            "<p>{} host(s): {} ready, {} failed, {} installing, {} not seen.</p>",
            c.hosts.len(),
            count(HostState::Ready),
            count(HostState::Failed),
            count(HostState::Installing),
            count(HostState::NotSeen)
        );
        cpu_html(&mut o, &c.cpu);
        o.push_str(
            "<table>\n<tr><th>host</th><th>os</th><th>state</th><th>PXE entry</th>\
             <th>details</th></tr>\n",
        );
        for h in &c.hosts {
            let state = serde_json::to_value(h.state)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            let _ = write!(
                o,
                "<tr id=\"{}\"><td>{}</td><td>{}</td><td class=\"{state}\">{}</td>\
                 <td>{}</td><td>",
                escape(&h.fqdn),
                escape(&h.fqdn),
                escape(&h.os),
                h.state.as_str(),
                h.pxe
            );
            host_details_html(&mut o, h);
            o.push_str("</td></tr>\n");
        }
        o.push_str("</table>\n");
    }
    o.push_str("</body>\n</html>\n");
    o
}

fn cpu_html(o: &mut String, cpu: &CpuConsistency) {
    if cpu.reported == 0 {
        o.push_str("<p>CPU: no host has reported yet.</p>\n");
        return;
    }
    let model = escape(cpu.model.as_deref().unwrap_or_default());
    if cpu.consistent {
        let _ = writeln!(
            o,
            "<p class=\"match\">CPU: model and flags match across the {} reporting host(s): {model}</p>",
            cpu.reported
        );
        return;
    }
    let _ = writeln!(
        o,
        "<p class=\"mismatch\">CPU MISMATCH: {} of {} reporting host(s) differ from the most common CPU ({model}); live migration between them can fail.</p>\n<ul>",
        cpu.differing.len(),
        cpu.reported
    );
    for d in &cpu.differing {
        let _ = write!(o, "<li>{}:", escape(&d.fqdn));
        if cpu.model.as_deref() != Some(d.model.as_str()) {
            let _ = write!(o, " model {}", escape(&d.model));
        }
        if !d.missing_flags.is_empty() {
            let _ = write!(o, " missing flags {}", escape(&d.missing_flags.join(" ")));
        }
        if !d.extra_flags.is_empty() {
            let _ = write!(o, " extra flags {}", escape(&d.extra_flags.join(" ")));
        }
        o.push_str("</li>\n");
    }
    o.push_str("</ul>\n");
}

fn host_details_html(o: &mut String, h: &HostStatus) {
    if let Some(s) = &h.seen {
        let _ = write!(
            o,
            "fetched {} at {} from {}",
            escape(&s.file),
            utc(s.at),
            escape(&s.peer)
        );
    }
    if let Some(r) = &h.report {
        if h.seen.is_some() {
            o.push_str("<br>");
        }
        let _ = write!(
            o,
            "reported at {} by agent {}; CPU {} \u{d7} {}",
            utc(r.received_at),
            escape(&r.agent_version),
            r.cpu.count,
            escape(&r.cpu.model)
        );
        if !r.failed_checks.is_empty() {
            o.push_str("<ul>");
            for c in &r.failed_checks {
                let _ = write!(
                    o,
                    "<li><b>{}</b>: {}</li>",
                    escape(&c.name),
                    escape(&c.detail)
                );
            }
            o.push_str("</ul>");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn utc_formats_known_instants() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        // `date -u -d @951782400` → 2000-02-29 00:00:00 (a leap day).
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_764_343_445), "2025-11-28 15:24:05 UTC");
    }
}
