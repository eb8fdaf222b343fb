//! The checks, each one requirement of a CloudStack KVM host. They are named after what
//! they look at (the CPU, libvirt, iptables, rpm, …), never after a target: a target
//! family lists the ones it needs, in its order, and gives the few that differ (which
//! QEMU binary, which NTP service) their parameters (see [`crate::target`]).

use super::{running_processes, version_at_least, version_in, Check, Context, Verdict};
use crate::exec::Outcome;
use crate::plan::{NetworkType, Plan};
use crate::topology;

/// MemTotal for "4 GB of RAM": a 4 GiB machine shows about 3.7–3.9 GiB in
/// /proc/meminfo once the kernel and firmware have taken their share.
pub const MIN_MEMTOTAL_KB: u64 = 3_600_000;

fn openvswitch(plan: &Plan) -> bool {
    plan.network.kind == NetworkType::Openvswitch
}

/// A 64-bit x86 kernel on a CPU with long mode (the `lm` flag).
pub const X86_64: Check = Check::new("x86-64", |cx| {
    let uname = cx.env.cmd("uname", &["-m"]);
    let arch = uname.stdout().trim().to_string();
    let lm = cx.cpu.flags.iter().any(|f| f == "lm");
    if !uname.success() {
        Err(uname.describe("uname -m"))
    } else if arch == "x86_64" && lm {
        Ok("x86_64 kernel on a 64-bit CPU".into())
    } else {
        Err(format!(
            "kernel is {arch:?}, CPU long mode (lm flag): {lm}; CloudStack needs 64-bit x86"
        ))
    }
});

/// Hardware virtualization: the `vmx` or `svm` CPU flag.
pub const CPU_VIRTUALIZATION: Check = Check::new("cpu-virtualization", |cx| {
    if let Err(e) = cx.cpuinfo {
        return Err(format!("cannot read cpuinfo: {e}"));
    }
    let hv: Vec<&str> = cx
        .cpu
        .flags
        .iter()
        .map(String::as_str)
        .filter(|f| *f == "vmx" || *f == "svm")
        .collect();
    if hv.is_empty() {
        Err("no vmx or svm flag in /proc/cpuinfo: enable VT-x/AMD-V in the firmware".into())
    } else {
        Ok(format!("CPU flag {}", hv.join(", ")))
    }
});

/// 4 GB of RAM (see [`MIN_MEMTOTAL_KB`]).
pub const MEMORY: Check = Check::new("memory", |cx| {
    let m = cx
        .env
        .proc("meminfo")
        .map_err(|e| format!("cannot read meminfo: {e}"))?;
    let kb = m
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok());
    match kb {
        Some(kb) if kb >= MIN_MEMTOTAL_KB => Ok(format!("MemTotal {kb} kB")),
        Some(kb) => Err(format!(
            "MemTotal {kb} kB; CloudStack needs 4 GB (MemTotal ≥ {MIN_MEMTOTAL_KB} kB)"
        )),
        None => Err("no MemTotal line in meminfo".into()),
    }
});

/// The plan's trunk NIC exists.
pub const NIC: Check = Check::new("nic", |cx| {
    let d = cx
        .env
        .proc("net/dev")
        .map_err(|e| format!("cannot read net/dev: {e}"))?;
    let names: Vec<&str> = d
        .lines()
        .filter_map(|l| l.split_once(':').map(|(n, _)| n.trim()))
        .filter(|n| *n != "lo" && !n.contains(' '))
        .collect();
    let trunk = &cx.plan.network.trunk_nic;
    if names.iter().any(|n| n == trunk) {
        Ok(format!(
            "{} interfaces, trunk NIC {trunk} present",
            names.len()
        ))
    } else {
        Err(format!(
            "trunk NIC {trunk} not found (interfaces: {})",
            names.join(" ")
        ))
    }
});

/// `hostname --fqdn` prints the plan's FQDN (CloudStack reports the host by it).
pub const FQDN: Check = Check::new("fqdn", |cx| {
    let fq = cx.env.cmd("hostname", &["--fqdn"]);
    let plan = cx.plan;
    if !fq.success() {
        Err(fq.describe("hostname --fqdn"))
    } else if fq.stdout().trim() == plan.fqdn {
        Ok(format!("hostname --fqdn prints {}", plan.fqdn))
    } else {
        Err(format!(
            "hostname --fqdn prints {:?}, the plan says {}; check /etc/hosts",
            fq.stdout().trim(),
            plan.fqdn
        ))
    }
});

/// An `ntpd` process runs: ntp and openntpd both run as /usr/sbin/ntpd. A process scan
/// instead of `service … status`: precise's openntpd init script has no status.
/// `start` says how to start it, for the failure.
pub fn ntpd_running(cx: &Context, start: &str) -> Verdict {
    match running_processes(cx.env) {
        Err(e) => Err(format!("cannot list processes: {e}")),
        Ok(names) if names.iter().any(|n| n == "ntpd") => Ok("ntpd is running".into()),
        Ok(_) => Err(format!("no ntpd process: start {start}")),
    }
}

/// libvirt ≥ 0.9.4, or ≥ 0.9.11 with Open vSwitch.
pub const LIBVIRT_VERSION: Check = Check::new("libvirt-version", |cx| {
    let ovs = openvswitch(cx.plan);
    let o = cx.env.cmd("libvirtd", &["--version"]);
    let want = if ovs { "0.9.11" } else { "0.9.4" };
    match version_in(o.stdout(), "libvirt)") {
        _ if !o.success() => Err(o.describe("libvirtd --version")),
        Some(v) if version_at_least(&v, want) => {
            let note = if version_at_least(&v, "0.9.10") {
                String::new()
            } else {
                "; below 0.9.10 the agent ignores guest.cpu.mode".to_string()
            };
            Ok(format!("libvirt {v} ≥ {want}{note}"))
        }
        Some(v) => Err(format!(
            "libvirt {v} is older than {want}{}",
            if ovs {
                " (needed for Open vSwitch)"
            } else {
                ""
            }
        )),
        None => Err(format!("no version in {:?}", o.stdout().trim())),
    }
});

/// QEMU ≥ 1.0, from the first of `candidates` that exists. `older_ok` may accept an
/// older version anyway (given the `--version` text and the version), saying why.
pub fn qemu_version(
    cx: &Context,
    candidates: &[String],
    older_ok: impl Fn(&str, &str) -> Option<String>,
) -> Verdict {
    for c in candidates {
        let o = cx.env.cmd(c, &["--version"]);
        if o == Outcome::Missing {
            continue;
        }
        if !o.success() {
            return Err(o.describe(&format!("{c} --version")));
        }
        let text = o.stdout().to_string();
        return match version_in(&text, "version") {
            Some(v) if version_at_least(&v, "1.0") => Ok(format!("QEMU {v} ≥ 1.0")),
            Some(v) => older_ok(&text, &v).ok_or(format!("QEMU {v} is older than 1.0")),
            None => Err(format!("no version in {:?}", text.trim())),
        };
    }
    Err(format!("no QEMU found (tried {})", candidates.join(", ")))
}

/// Open vSwitch ≥ 1.7.1, when the plan uses it.
pub const OPENVSWITCH_VERSION: Check = Check {
    name: "openvswitch-version",
    applies: openvswitch,
    run: |cx| {
        let o = cx.env.cmd("ovs-vsctl", &["--version"]);
        match version_in(o.stdout(), "Open vSwitch)") {
            _ if !o.success() => Err(o.describe("ovs-vsctl --version")),
            Some(v) if version_at_least(&v, "1.7.1") => Ok(format!("Open vSwitch {v} ≥ 1.7.1")),
            Some(v) => Err(format!("Open vSwitch {v} is older than 1.7.1")),
            None => Err("no version in ovs-vsctl --version".into()),
        }
    },
};

/// A LISTEN socket on TCP 16509 in /proc/net/tcp or tcp6 (state 0A).
pub const LIBVIRTD_LISTENING: Check = Check::new("libvirtd-listening", |cx| {
    let mut read_any = false;
    for f in ["net/tcp", "net/tcp6"] {
        let Ok(t) = cx.env.proc(f) else { continue };
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
                return Ok("a socket listens on TCP 16509".into());
            }
        }
    }
    if read_any {
        Err(
            "nothing listens on TCP 16509: check listen_tcp in libvirtd.conf and the --listen flag"
                .into(),
        )
    } else {
        Err("cannot read net/tcp".into())
    }
});

/// Every bridge CloudStack (and, with Open vSwitch, the management address) uses is up.
pub const BRIDGES: Check = Check::new("bridges", |cx| {
    let mut missing = Vec::new();
    let bridges = topology::bridges(cx.plan);
    for br in &bridges {
        let ok = match cx.plan.network.kind {
            NetworkType::LinuxBridge => cx
                .env
                .sys_root
                .join("class/net")
                .join(br)
                .join("bridge")
                .is_dir(),
            NetworkType::Openvswitch => cx.env.cmd("ovs-vsctl", &["br-exists", br]).success(),
        };
        if !ok {
            missing.push(br.as_str());
        }
    }
    if missing.is_empty() {
        Ok(format!("bridges up: {}", bridges.join(", ")))
    } else {
        Err(format!("missing bridges: {}", missing.join(", ")))
    }
});

/// SELinux is not enforcing (`getenforce`).
pub const SELINUX: Check = Check::new("selinux", |cx| {
    let o = cx.env.cmd("getenforce", &[]);
    let mode = o.stdout().trim().to_string();
    if !o.success() {
        Err(o.describe("getenforce"))
    } else if mode.eq_ignore_ascii_case("enforcing") {
        Err("SELinux is enforcing; it must be permissive or disabled".into())
    } else {
        Ok(format!("SELinux is {mode}"))
    }
});

/// No libvirt AppArmor profile is loaded (`<sys>/kernel/security/apparmor/profiles`).
pub const APPARMOR: Check = Check::new("apparmor", |cx| {
    let p = cx.env.sys_root.join("kernel/security/apparmor/profiles");
    match crate::bounded::read_to_string(&p, crate::bounded::KERNEL_LIMIT, false) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok("AppArmor is not active".into()),
        Err(e) => Err(format!("cannot read {}: {e}", p.display())),
        Ok(t) => {
            let loaded = crate::files::security::apparmor_loaded_libvirt(&t);
            if loaded.is_empty() {
                Ok("no libvirt AppArmor profile is loaded".into())
            } else {
                Err(format!("still loaded: {}", loaded.join(", ")))
            }
        }
    }
});

/// The CloudStack ports of the plan's target accepted in the live ruleset's `chain`
/// (`iptables-save`), for each allowed source.
pub fn firewall_accepts(cx: &Context, chain: &str) -> Verdict {
    let o = cx.env.cmd("iptables-save", &["-t", "filter"]);
    if !o.success() {
        return Err(o.describe("iptables-save -t filter"));
    }
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
    let plan = cx.plan;
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
    let ports = plan.os.cloudstack_tcp_ports();
    for port in ports {
        for src in &sources {
            let found = rules.iter().any(|r| {
                let dport = val(r, "--dport").or_else(|| val(r, "--dports"));
                let s = val(r, "-s").map(|s| s.trim_end_matches("/32").to_string());
                dport.as_deref() == Some(*port)
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
        Ok(format!("TCP {} accepted in {chain}", ports.join(", ")))
    } else {
        Err(format!("not accepted in {chain}: {}", missing.join(", ")))
    }
}

/// The package query's verdict: `installed` says whether the query's answer means the
/// package is installed.
fn package_installed(o: &Outcome, installed: bool) -> Verdict {
    if installed {
        Ok(format!("installed: {}", o.stdout().trim()))
    } else if o.success() {
        Err(format!("not installed: {}", o.stdout().trim()))
    } else {
        Err(o.describe("package query for cloudstack-agent"))
    }
}

/// The cloudstack-agent package is installed, by rpm.
pub const RPM_CLOUDSTACK_AGENT: Check = Check::new("cloudstack-agent", |cx| {
    let o = cx.env.cmd("rpm", &["-q", "cloudstack-agent"]);
    package_installed(&o, o.success())
});

/// The cloudstack-agent package is installed, by dpkg.
pub const DPKG_CLOUDSTACK_AGENT: Check = Check::new("cloudstack-agent", |cx| {
    let o = cx.env.cmd(
        "dpkg-query",
        &["-W", "-f=${Status} ${Version}", "cloudstack-agent"],
    );
    let installed = o.success() && o.stdout().starts_with("install ok installed");
    package_installed(&o, installed)
});

/// No VM is defined or running (`virsh list --all`): CloudStack takes only empty hosts.
pub const NO_VMS: Check = Check::new("no-vms", |cx| {
    let o = cx.env.cmd("virsh", &["list", "--all"]);
    if !o.success() {
        return Err(o.describe("virsh list --all"));
    }
    let vms: Vec<String> = o
        .stdout()
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("---"))
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().nth(1).unwrap_or("?").to_string())
        .collect();
    if vms.is_empty() {
        Ok("no VM is defined or running".into())
    } else {
        Err(format!(
            "VMs exist ({}); CloudStack requires a host without VMs",
            vms.join(", ")
        ))
    }
});

/// The CPU facts for the report (all hosts of a cluster need identical CPUs).
pub const CPU_FACTS: Check = Check::new("cpu-facts", |cx| {
    let facts = cx.cpu;
    if facts.count > 0 {
        Ok(format!(
            "{} × {} ({} flags)",
            facts.count,
            facts.model,
            facts.flags.len()
        ))
    } else {
        Err("no processor found in cpuinfo".into())
    }
});

/// Every package in `wanted` is installed, by rpm (`rpm -q` prints each installed one's
/// name and says "package NAME is not installed" for the others, exiting with their
/// count).
pub fn rpm_packages(cx: &Context, wanted: &[&str]) -> Verdict {
    let mut args = vec!["-q", "--qf", "%{NAME}\\n"];
    args.extend(wanted);
    let o = cx.env.cmd("rpm", &args);
    if !matches!(o, Outcome::Exited { .. }) {
        return Err(o.describe("rpm -q"));
    }
    let installed: Vec<&str> = o.stdout().lines().map(str::trim).collect();
    let missing: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|p| !installed.contains(p))
        .collect();
    if missing.is_empty() {
        Ok(format!("installed: {}", wanted.join(", ")))
    } else {
        Err(format!(
            "not installed: {} (dnf install {})",
            missing.join(", "),
            missing.join(" ")
        ))
    }
}

/// Every package in `wanted` is installed, by dpkg: a package missing from the image
/// (the preseed's list, or a mirror without it) is named here rather than found later
/// as a service that does not start.
pub fn dpkg_packages(cx: &Context, wanted: &[&str]) -> Verdict {
    let mut args = vec!["-W", "-f=${Package} ${db:Status-Abbrev}\n"];
    args.extend(wanted);
    // dpkg-query exits 1 when one of them is unknown, and still lists the others.
    let o = cx.env.cmd("dpkg-query", &args);
    if !matches!(o, Outcome::Exited { .. }) {
        return Err(o.describe("dpkg-query -W"));
    }
    let installed: Vec<&str> = o
        .stdout()
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let name = w.next()?;
            (w.next()? == "ii").then_some(name)
        })
        .collect();
    let missing: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|p| !installed.contains(p))
        .collect();
    if missing.is_empty() {
        Ok(format!("installed: {}", wanted.join(", ")))
    } else {
        Err(format!(
            "not installed: {} (apt-get install {})",
            missing.join(", "),
            missing.join(" ")
        ))
    }
}
