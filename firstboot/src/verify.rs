//! `hvseed-firstboot verify`: read-only checks that the host meets every CloudStack KVM
//! requirement of the oracle, each with a reason. Commands run with a deadline; a
//! missing command is a failed check. /proc and /sys are read through overridable
//! roots (`HVSEED_PROC`, `HVSEED_SYS`) so tests can feed fake kernel files.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::exec::{self, Outcome};
use crate::files;
use crate::plan::{NetworkType, Os, Plan};
use crate::report::{CheckResult, CpuFacts};

/// MemTotal for "4 GB of RAM": a 4 GiB machine shows about 3.7–3.9 GiB in
/// /proc/meminfo once the kernel and firmware have taken their share.
pub const MIN_MEMTOTAL_KB: u64 = 3_600_000;

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

fn check(name: &str, ok: bool, detail: impl Into<String>) -> CheckResult {
    CheckResult {
        name: name.to_string(),
        ok,
        detail: detail.into(),
    }
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

/// Every check, in a fixed order; and the CPU facts for the report.
pub fn verify(plan: &Plan, env: &Env) -> (Vec<CheckResult>, CpuFacts) {
    let mut out = Vec::new();
    let cpuinfo = env.proc("cpuinfo");
    let facts = cpuinfo.as_deref().map(cpu_facts).unwrap_or_default();

    // Architecture: the kernel's and the CPU's (lm = long mode).
    let uname = env.cmd("uname", &["-m"]);
    let arch = uname.stdout().trim().to_string();
    out.push(match (&uname, facts.flags.iter().any(|f| f == "lm")) {
        (o, lm) if o.success() && arch == "x86_64" && lm => {
            check("x86-64", true, "x86_64 kernel on a 64-bit CPU")
        }
        (o, _) if !o.success() => check("x86-64", false, o.describe("uname -m")),
        (_, lm) => check(
            "x86-64",
            false,
            format!(
                "kernel is {arch:?}, CPU long mode (lm flag): {lm}; CloudStack needs 64-bit x86"
            ),
        ),
    });

    out.push(match &cpuinfo {
        Err(e) => check(
            "cpu-virtualization",
            false,
            format!("cannot read cpuinfo: {e}"),
        ),
        Ok(_) => {
            let hv: Vec<&str> = facts
                .flags
                .iter()
                .map(String::as_str)
                .filter(|f| *f == "vmx" || *f == "svm")
                .collect();
            if hv.is_empty() {
                check(
                    "cpu-virtualization",
                    false,
                    "no vmx or svm flag in /proc/cpuinfo: enable VT-x/AMD-V in the firmware",
                )
            } else {
                check(
                    "cpu-virtualization",
                    true,
                    format!("CPU flag {}", hv.join(", ")),
                )
            }
        }
    });

    out.push(match env.proc("meminfo") {
        Err(e) => check("memory", false, format!("cannot read meminfo: {e}")),
        Ok(m) => {
            let kb = m
                .lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok());
            match kb {
                Some(kb) if kb >= MIN_MEMTOTAL_KB => {
                    check("memory", true, format!("MemTotal {kb} kB"))
                }
                Some(kb) => check(
                    "memory",
                    false,
                    format!(
                        "MemTotal {kb} kB; CloudStack needs 4 GB (MemTotal ≥ {MIN_MEMTOTAL_KB} kB)"
                    ),
                ),
                None => check("memory", false, "no MemTotal line in meminfo"),
            }
        }
    });

    out.push(match env.proc("net/dev") {
        Err(e) => check("nic", false, format!("cannot read net/dev: {e}")),
        Ok(d) => {
            let names: Vec<&str> = d
                .lines()
                .filter_map(|l| l.split_once(':').map(|(n, _)| n.trim()))
                .filter(|n| *n != "lo" && !n.contains(' '))
                .collect();
            let trunk = &plan.network.trunk_nic;
            if names.iter().any(|n| n == trunk) {
                check(
                    "nic",
                    true,
                    format!("{} interfaces, trunk NIC {trunk} present", names.len()),
                )
            } else {
                check(
                    "nic",
                    false,
                    format!(
                        "trunk NIC {trunk} not found (interfaces: {})",
                        names.join(" ")
                    ),
                )
            }
        }
    });

    let fq = env.cmd("hostname", &["--fqdn"]);
    out.push(if !fq.success() {
        check("fqdn", false, fq.describe("hostname --fqdn"))
    } else if fq.stdout().trim() == plan.fqdn {
        check(
            "fqdn",
            true,
            format!("hostname --fqdn prints {}", plan.fqdn),
        )
    } else {
        check(
            "fqdn",
            false,
            format!(
                "hostname --fqdn prints {:?}, the plan says {}; check /etc/hosts",
                fq.stdout().trim(),
                plan.fqdn
            ),
        )
    });

    // Both ntp (el6) and openntpd (precise) run as /usr/sbin/ntpd. A process scan
    // instead of `service … status`: precise's openntpd init script has no status.
    out.push(match running_processes(env) {
        Err(e) => check("ntp", false, format!("cannot list processes: {e}")),
        Ok(names) if names.iter().any(|n| n == "ntpd") => check("ntp", true, "ntpd is running"),
        Ok(_) => {
            let pkg = match plan.os {
                Os::Centos6 => "ntpd (service ntpd start; chkconfig ntpd on)",
                Os::Ubuntu1204 => "openntpd (service openntpd start)",
            };
            check("ntp", false, format!("no ntpd process: start {pkg}"))
        }
    });

    let ovs = plan.network.kind == NetworkType::Openvswitch;
    let o = env.cmd("libvirtd", &["--version"]);
    let want = if ovs { "0.9.11" } else { "0.9.4" };
    out.push(match version_in(o.stdout(), "libvirt)") {
        _ if !o.success() => check("libvirt-version", false, o.describe("libvirtd --version")),
        Some(v) if version_at_least(&v, want) => {
            let note = if version_at_least(&v, "0.9.10") {
                String::new()
            } else {
                "; below 0.9.10 the agent ignores guest.cpu.mode".to_string()
            };
            check(
                "libvirt-version",
                true,
                format!("libvirt {v} ≥ {want}{note}"),
            )
        }
        Some(v) => check(
            "libvirt-version",
            false,
            format!(
                "libvirt {v} is older than {want}{}",
                if ovs {
                    " (needed for Open vSwitch)"
                } else {
                    ""
                }
            ),
        ),
        None => check(
            "libvirt-version",
            false,
            format!("no version in {:?}", o.stdout().trim()),
        ),
    });

    out.push(qemu_check(plan, env));

    if ovs {
        let o = env.cmd("ovs-vsctl", &["--version"]);
        out.push(match version_in(o.stdout(), "Open vSwitch)") {
            _ if !o.success() => check(
                "openvswitch-version",
                false,
                o.describe("ovs-vsctl --version"),
            ),
            Some(v) if version_at_least(&v, "1.7.1") => check(
                "openvswitch-version",
                true,
                format!("Open vSwitch {v} ≥ 1.7.1"),
            ),
            Some(v) => check(
                "openvswitch-version",
                false,
                format!("Open vSwitch {v} is older than 1.7.1"),
            ),
            None => check(
                "openvswitch-version",
                false,
                "no version in ovs-vsctl --version",
            ),
        });
    }

    out.push(listening_check(env));
    out.push(bridges_check(plan, env));
    out.push(match plan.os {
        Os::Centos6 => {
            let o = env.cmd("getenforce", &[]);
            let mode = o.stdout().trim().to_string();
            if !o.success() {
                check("selinux", false, o.describe("getenforce"))
            } else if mode.eq_ignore_ascii_case("enforcing") {
                check(
                    "selinux",
                    false,
                    "SELinux is enforcing; it must be permissive or disabled",
                )
            } else {
                check("selinux", true, format!("SELinux is {mode}"))
            }
        }
        Os::Ubuntu1204 => {
            let p = env.sys_root.join("kernel/security/apparmor/profiles");
            match crate::bounded::read_to_string(&p, crate::bounded::KERNEL_LIMIT, false) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    check("apparmor", true, "AppArmor is not active")
                }
                Err(e) => check(
                    "apparmor",
                    false,
                    format!("cannot read {}: {e}", p.display()),
                ),
                Ok(t) => {
                    let loaded: Vec<&str> = t
                        .lines()
                        .filter_map(|l| l.split_whitespace().next())
                        .filter(|n| *n == "/usr/sbin/libvirtd" || n.ends_with("virt-aa-helper"))
                        .collect();
                    if loaded.is_empty() {
                        check("apparmor", true, "no libvirt AppArmor profile is loaded")
                    } else {
                        check(
                            "apparmor",
                            false,
                            format!("still loaded: {}", loaded.join(", ")),
                        )
                    }
                }
            }
        }
    });
    out.push(firewall_check(plan, env));

    let o = match plan.os {
        Os::Centos6 => env.cmd("rpm", &["-q", "cloudstack-agent"]),
        Os::Ubuntu1204 => env.cmd(
            "dpkg-query",
            &["-W", "-f=${Status} ${Version}", "cloudstack-agent"],
        ),
    };
    let installed = match plan.os {
        Os::Centos6 => o.success(),
        Os::Ubuntu1204 => o.success() && o.stdout().starts_with("install ok installed"),
    };
    out.push(if installed {
        check(
            "cloudstack-agent",
            true,
            format!("installed: {}", o.stdout().trim()),
        )
    } else if o.success() {
        check(
            "cloudstack-agent",
            false,
            format!("not installed: {}", o.stdout().trim()),
        )
    } else {
        check(
            "cloudstack-agent",
            false,
            o.describe("package query for cloudstack-agent"),
        )
    });

    let o = env.cmd("virsh", &["list", "--all"]);
    out.push(if !o.success() {
        check("no-vms", false, o.describe("virsh list --all"))
    } else {
        let vms: Vec<String> = o
            .stdout()
            .lines()
            .skip_while(|l| !l.trim_start().starts_with("---"))
            .skip(1)
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.split_whitespace().nth(1).unwrap_or("?").to_string())
            .collect();
        if vms.is_empty() {
            check("no-vms", true, "no VM is defined or running")
        } else {
            check(
                "no-vms",
                false,
                format!(
                    "VMs exist ({}); CloudStack requires a host without VMs",
                    vms.join(", ")
                ),
            )
        }
    });

    out.push(if facts.count > 0 {
        check(
            "cpu-facts",
            true,
            format!(
                "{} × {} ({} flags)",
                facts.count,
                facts.model,
                facts.flags.len()
            ),
        )
    } else {
        check("cpu-facts", false, "no processor found in cpuinfo")
    });
    (out, facts)
}

/// Command names of the running processes, from `<proc>/<pid>/stat` (`pid (comm) …`;
/// /proc/<pid>/comm does not exist before Linux 2.6.33).
fn running_processes(env: &Env) -> std::io::Result<Vec<String>> {
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

fn qemu_check(plan: &Plan, env: &Env) -> CheckResult {
    let candidates: Vec<String> = match plan.os {
        Os::Centos6 => vec![
            env.path("/usr/libexec/qemu-kvm").display().to_string(),
            "qemu-kvm".into(),
        ],
        Os::Ubuntu1204 => vec!["kvm".into(), "qemu-system-x86_64".into()],
    };
    for c in &candidates {
        let o = env.cmd(c, &["--version"]);
        if o == Outcome::Missing {
            continue;
        }
        if !o.success() {
            return check("qemu-version", false, o.describe(&format!("{c} --version")));
        }
        let text = o.stdout().to_string();
        return match version_in(&text, "version") {
            Some(v) if version_at_least(&v, "1.0") => {
                check("qemu-version", true, format!("QEMU {v} ≥ 1.0"))
            }
            // RHEL 6's qemu-kvm is 0.12.1.2 with years of backports; the guide supports
            // CentOS 6.3 with exactly that build, so its 1.0 minimum means upstream QEMU.
            Some(v) if plan.os == Os::Centos6 && text.contains("qemu-kvm-0.12.1") => check(
                "qemu-version",
                true,
                format!("RHEL 6 qemu-kvm {v} (the build CloudStack supports on CentOS 6)"),
            ),
            Some(v) => check("qemu-version", false, format!("QEMU {v} is older than 1.0")),
            None => check(
                "qemu-version",
                false,
                format!("no version in {:?}", text.trim()),
            ),
        };
    }
    check(
        "qemu-version",
        false,
        format!("no QEMU found (tried {})", candidates.join(", ")),
    )
}

/// A LISTEN socket on TCP 16509 in /proc/net/tcp or tcp6 (state 0A).
fn listening_check(env: &Env) -> CheckResult {
    let mut read_any = false;
    for f in ["net/tcp", "net/tcp6"] {
        let Ok(t) = env.proc(f) else { continue };
        read_any = true;
        for line in t.lines().skip(1) {
            let w: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state)) = (w.get(1), w.get(3)) else {
                continue;
            };
            let port = local
                .rsplit_once(':')
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            if port == Some(16509) && *state == "0A" {
                return check("libvirtd-listening", true, "a socket listens on TCP 16509");
            }
        }
    }
    if read_any {
        check(
            "libvirtd-listening",
            false,
            "nothing listens on TCP 16509: check listen_tcp in libvirtd.conf and the --listen flag",
        )
    } else {
        check("libvirtd-listening", false, "cannot read net/tcp")
    }
}

fn bridges_check(plan: &Plan, env: &Env) -> CheckResult {
    let mut missing = Vec::new();
    let bridges = files::bridges(plan);
    for br in &bridges {
        let ok = match plan.network.kind {
            NetworkType::LinuxBridge => env
                .sys_root
                .join("class/net")
                .join(br)
                .join("bridge")
                .is_dir(),
            NetworkType::Openvswitch => env.cmd("ovs-vsctl", &["br-exists", br]).success(),
        };
        if !ok {
            missing.push(br.as_str());
        }
    }
    if missing.is_empty() {
        check(
            "bridges",
            true,
            format!("bridges up: {}", bridges.join(", ")),
        )
    } else {
        check(
            "bridges",
            false,
            format!("missing bridges: {}", missing.join(", ")),
        )
    }
}

/// The CloudStack ports accepted in the live ruleset (INPUT on el6, ufw's user chain on
/// precise), for each allowed source.
fn firewall_check(plan: &Plan, env: &Env) -> CheckResult {
    let o = env.cmd("iptables-save", &["-t", "filter"]);
    if !o.success() {
        return check("firewall", false, o.describe("iptables-save -t filter"));
    }
    let chain = match plan.os {
        Os::Centos6 => "INPUT",
        Os::Ubuntu1204 => "ufw-user-input",
    };
    let rules: Vec<Vec<&str>> = o
        .stdout()
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|w| w.len() > 2 && w[0] == "-A" && w[1] == chain)
        .collect();
    let val = |r: &[&str], flag: &str| -> Option<String> {
        r.windows(2)
            .find(|w| w[0] == flag)
            .map(|w| w[1].to_string())
    };
    let mut missing = Vec::new();
    let sources: Vec<Option<String>> = if plan.security.firewall_sources.is_empty() {
        vec![None]
    } else {
        plan.security
            .firewall_sources
            .iter()
            .cloned()
            .map(Some)
            .collect()
    };
    for port in crate::plan::CLOUDSTACK_TCP_PORTS {
        for src in &sources {
            let found = rules.iter().any(|r| {
                let dport = val(r, "--dport").or_else(|| val(r, "--dports"));
                let s = val(r, "-s").map(|s| s.trim_end_matches("/32").to_string());
                dport.as_deref() == Some(port)
                    && val(r, "-j").as_deref() == Some("ACCEPT")
                    && (s.is_none()
                        || s == src.as_ref().map(|x| x.trim_end_matches("/32").to_string()))
            });
            if !found {
                missing.push(match src {
                    Some(s) => format!("{port} from {s}"),
                    None => port.to_string(),
                });
            }
        }
    }
    if missing.is_empty() {
        check(
            "firewall",
            true,
            format!(
                "TCP {} accepted in {chain}",
                crate::plan::CLOUDSTACK_TCP_PORTS.join(", ")
            ),
        )
    } else {
        check(
            "firewall",
            false,
            format!("not accepted in {chain}: {}", missing.join(", ")),
        )
    }
}
