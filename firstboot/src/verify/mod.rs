//! `hvseed-firstboot verify`: read-only checks that the host meets every CloudStack KVM
//! requirement of the oracle, each with a reason. Commands run with a deadline; a
//! missing command is a failed check. /proc and /sys are read through overridable
//! roots (`HVSEED_PROC`, `HVSEED_SYS`) so tests can feed fake kernel files.
//!
//! `verify` is a list of [`Check`]s, each a small named item that says what it found or
//! why the host fails it; the shared ones are in [`checks`], and the target family
//! ([`crate::target::Family::checks`]) lists the ones its hosts need, in report order.

pub mod checks;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::exec::{self, Outcome};
use crate::plan::Plan;
use crate::report::{CheckResult, CpuFacts};

pub use checks::MIN_MEMTOTAL_KB;

/// Where the checks look.
#[derive(Debug, Clone)]
pub struct Env {
    /// The installed system (`/` on the live host).
    pub root: PathBuf,
    pub proc_root: PathBuf,
    pub sys_root: PathBuf,
    /// Deadline for each external command.
    pub timeout: Duration,
}

impl Env {
    /// The live system, with the test overrides `HVSEED_PROC`, `HVSEED_SYS` and
    /// `HVSEED_CMD_TIMEOUT` (seconds) applied.
    pub fn from_env(root: &Path) -> Env {
        let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
        Env {
            root: root.to_path_buf(),
            proc_root: var("HVSEED_PROC").map_or_else(|| PathBuf::from("/proc"), PathBuf::from),
            sys_root: var("HVSEED_SYS").map_or_else(|| PathBuf::from("/sys"), PathBuf::from),
            timeout: var("HVSEED_CMD_TIMEOUT")
                .and_then(|v| v.to_str()?.parse::<f64>().ok())
                .filter(|s| *s > 0.0)
                .map_or(Duration::from_secs(30), Duration::from_secs_f64),
        }
    }

    pub fn cmd(&self, program: &str, args: &[&str]) -> Outcome {
        exec::run(program, args, self.timeout, None)
    }

    fn proc(&self, rel: &str) -> std::io::Result<String> {
        crate::bounded::read_to_string(
            &self.proc_root.join(rel),
            crate::bounded::KERNEL_LIMIT,
            false,
        )
    }

    /// A path of the installed system.
    pub fn path(&self, inside: &str) -> PathBuf {
        self.root.join(inside.trim_start_matches('/'))
    }
}

/// What a check found (`Ok`) or why the host fails it, with the fix (`Err`); either
/// way the text goes into the report.
pub type Verdict = Result<String, String>;

/// One requirement of a CloudStack KVM host, checked read-only.
#[derive(Clone, Copy)]
pub struct Check {
    /// Its name in the report (`x86-64`, `firewall`, …).
    pub name: &'static str,
    /// Whether this plan needs it (the Open vSwitch version only with Open vSwitch).
    pub applies: fn(&Plan) -> bool,
    pub run: fn(&Context) -> Verdict,
}

fn every_plan(_: &Plan) -> bool {
    true
}

impl Check {
    /// A check every plan needs.
    pub const fn new(name: &'static str, run: fn(&Context) -> Verdict) -> Check {
        Check {
            name,
            applies: every_plan,
            run,
        }
    }

    fn result(&self, cx: &Context) -> CheckResult {
        let (ok, detail) = match (self.run)(cx) {
            Ok(found) => (true, found),
            Err(why) => (false, why),
        };
        CheckResult {
            name: self.name.to_string(),
            ok,
            detail,
        }
    }
}

/// What every check may look at: the plan, the system, and /proc/cpuinfo (read once).
pub struct Context<'a> {
    pub plan: &'a Plan,
    pub env: &'a Env,
    pub cpuinfo: &'a std::io::Result<String>,
    pub cpu: &'a CpuFacts,
}

/// The checks' results, in order, and the CPU facts for the report.
#[derive(Debug)]
pub struct Verified {
    pub checks: Vec<CheckResult>,
    pub cpu: CpuFacts,
}

/// Every check the plan's target family lists, in its order.
pub fn verify(plan: &Plan, env: &Env) -> Verified {
    let cpuinfo = env.proc("cpuinfo");
    let cpu = cpuinfo.as_deref().map(cpu_facts).unwrap_or_default();
    let cx = Context {
        plan,
        env,
        cpuinfo: &cpuinfo,
        cpu: &cpu,
    };
    let checks = crate::target::family(plan.os)
        .checks()
        .iter()
        .filter(|c| (c.applies)(plan))
        .map(|c| c.result(&cx))
        .collect();
    Verified { checks, cpu }
}

/// Dotted version numbers compared numerically (`0.9.10` > `0.9.8`).
pub fn version_at_least(found: &str, want: &str) -> bool {
    let parse = |s: &str| -> Vec<u64> {
        s.split('.')
            .map(|p| {
                p.chars()
                    .take_while(char::is_ascii_digit)
                    .collect::<String>()
                    .parse()
                    .unwrap_or(0)
            })
            .collect()
    };
    let (mut a, mut b) = (parse(found), parse(want));
    let n = a.len().max(b.len());
    a.resize(n, 0);
    b.resize(n, 0);
    a >= b
}

/// The first word that looks like a version (`1.7.1`, `0.9.10`) after `after`.
fn version_in(text: &str, after: &str) -> Option<String> {
    let rest = match text.find(after) {
        Some(i) => &text[i + after.len()..],
        None => text,
    };
    rest.split(|c: char| c.is_whitespace() || c == ',' || c == '(' || c == ')')
        .find(|w| {
            w.contains('.')
                && w.chars().next().is_some_and(|c| c.is_ascii_digit())
                && w.chars().all(|c| c.is_ascii_digit() || c == '.')
        })
        .map(str::to_string)
}

/// CPU facts from /proc/cpuinfo.
pub fn cpu_facts(cpuinfo: &str) -> CpuFacts {
    let mut facts = CpuFacts::default();
    let mut flags = BTreeSet::new();
    for line in cpuinfo.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        match k.trim() {
            "processor" => facts.count += 1,
            "model name" if facts.model.is_empty() => facts.model = v.trim().to_string(),
            "flags" => flags.extend(v.split_whitespace().map(str::to_string)),
            _ => {}
        }
    }
    facts.flags = flags.into_iter().collect();
    facts
}

/// Command names of the running processes, from `<proc>/<pid>/stat` (`pid (comm) …`;
/// /proc/<pid>/comm does not exist before Linux 2.6.33).
pub fn running_processes(env: &Env) -> std::io::Result<Vec<String>> {
    let mut names = Vec::new();
    for e in std::fs::read_dir(&env.proc_root)? {
        let e = e?;
        let name = e.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        // A process may exit while we look; that is not an error.
        let Ok(stat) = crate::bounded::read_to_string(
            &e.path().join("stat"),
            crate::bounded::STAT_LIMIT,
            false,
        ) else {
            continue;
        };
        if let (Some(a), Some(b)) = (stat.find('('), stat.rfind(')')) {
            if a < b {
                names.push(stat[a + 1..b].to_string());
            }
        }
    }
    Ok(names)
}
