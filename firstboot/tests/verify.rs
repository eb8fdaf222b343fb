//! `verify` and `run` against fake kernel files (HVSEED_PROC / HVSEED_SYS) and fake
//! commands first on PATH — the host's real programs never run.

mod common;

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// A fake host: bin/ (the only PATH entry), proc/, sys/, root/.
struct FakeHost {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    root: PathBuf,
    plan: PathBuf,
}

const CPUINFO: &str = "processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) CPU E5-2620 0 @ 2.00GHz
flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr lm vmx aes sse4_2

processor\t: 1
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) CPU E5-2620 0 @ 2.00GHz
flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr lm vmx aes sse4_2
";

const NET_DEV: &str = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:    1000      10    0    0    0     0          0         0     1000      10    0    0    0     0       0          0
  eth0: 2000000    2000    0    0    0     0          0         0  1000000    1000    0    0    0     0       0          0
eth0.100:  100      1    0    0    0     0          0         0      100       1    0    0    0     0       0          0
";

const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 9120 1 0000000000000000 100 0 0 10 0
   1: 00000000:407D 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 9921 1 0000000000000000 100 0 0 10 0
";

fn script(path: &Path, body: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

fn iptables_out(os: &str, sources: &[&str]) -> String {
    let mut s = String::from("*filter\n:INPUT ACCEPT [0:0]\n");
    let srcs: Vec<Option<&str>> = if sources.is_empty() {
        vec![None]
    } else {
        sources.iter().map(|s| Some(*s)).collect()
    };
    let ports: &[&str] = if os != "centos6" && os != "ubuntu1204" {
        &["22", "1798", "16509", "16514", "5900:6100", "49152:49216"]
    } else {
        &["22", "1798", "16509", "5900:6100", "49152:49216"]
    };
    for port in ports {
        for src in &srcs {
            let src = src.map(|s| format!(" -s {s}")).unwrap_or_default();
            if os == "centos6" || os == "el9" {
                s += &format!("-A INPUT{src} -p tcp -m tcp --dport {port} -j ACCEPT\n");
            } else if port.contains(':') {
                s += &format!(
                    "-A ufw-user-input -p tcp -m multiport --dports {port}{src} -j ACCEPT\n"
                );
            } else {
                s += &format!("-A ufw-user-input -p tcp --dport {port}{src} -j ACCEPT\n");
            }
        }
    }
    s + "-A INPUT -j REJECT --reject-with icmp-host-prohibited\nCOMMIT\n"
}

impl FakeHost {
    /// `run`, which must pass (its stderr shown if not).
    fn run_passes(&self) {
        let out = self.cmd("run").output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The service manager's calls the run made (systemctl, service, ufw-init, netplan:
    /// the fakes' log), less the `is-active` queries.
    fn service_calls(&self) -> Vec<String> {
        fs::read_to_string(self.dir.join("systemctl.log"))
            .unwrap()
            .lines()
            .filter(|l| !l.contains("is-active"))
            .map(str::to_string)
            .collect()
    }

    /// A host that passes every check for `os`/`net`.
    fn new(os: &str, net: &str) -> FakeHost {
        let (tmp, root) = fixture_root(os);
        let dir = tmp.path().to_path_buf();
        let plan = write_plan(&dir, &plan_json(os, net, &[]));
        let bin = dir.join("bin");
        fs::create_dir_all(dir.join("proc/net")).unwrap();
        fs::write(dir.join("proc/cpuinfo"), CPUINFO).unwrap();
        fs::write(
            dir.join("proc/meminfo"),
            "MemTotal:        8061404 kB\nMemFree:  100 kB\n",
        )
        .unwrap();
        fs::write(dir.join("proc/net/dev"), NET_DEV).unwrap();
        fs::write(dir.join("proc/net/tcp"), TCP).unwrap();
        // Debian 12 and Ubuntu >= 22.04 have the same fakes (systemd, dpkg, chrony).
        let debian = matches!(os, "debian12" | "ubuntu2204" | "ubuntu2404");
        let timed = if debian || os == "el9" {
            "chronyd"
        } else {
            "ntpd"
        };
        for (pid, comm) in [(1, "init"), (812, timed), (901, "libvirtd")] {
            fs::create_dir_all(dir.join(format!("proc/{pid}"))).unwrap();
            fs::write(
                dir.join(format!("proc/{pid}/stat")),
                format!("{pid} ({comm}) S 1 {pid} {pid} 0 -1 4202752 0 0 0 0\n"),
            )
            .unwrap();
        }
        for br in ["cloudbr0", "cloudbr1"] {
            fs::create_dir_all(dir.join("sys/class/net").join(br).join("bridge")).unwrap();
        }
        script(&bin.join("uname"), "echo x86_64");
        script(&bin.join("hostname"), "echo kvm1.lab.example.org");
        script(
            &bin.join("service"),
            "echo \"$@\" >> \"${0%/*}/../service.log\"; exit 0",
        );
        if !debian {
            script(&bin.join("libvirtd"), "echo 'libvirtd (libvirt) 0.9.13'");
        }
        script(
            &bin.join("iptables-save"),
            &format!("cat <<'EOF'\n{}EOF", iptables_out(os, &[])),
        );
        script(
            &bin.join("virsh"),
            "echo ' Id    Name                           State'\necho '----------------------------------------------------'\necho",
        );
        script(
            &bin.join("cat"),
            "while IFS= read -r l; do printf '%s\\n' \"$l\"; done",
        );
        if net == "openvswitch" {
            script(
                &bin.join("ovs-vsctl"),
                "case \"$1\" in --version) echo 'ovs-vsctl (Open vSwitch) 1.7.1'; echo 'Compiled Jan 1 2013';; br-exists) exit 0;; esac",
            );
        }
        if os == "centos6" {
            script(
                &root.join("usr/libexec/qemu-kvm"),
                "echo 'QEMU PC emulator version 0.12.1 (qemu-kvm-0.12.1.2), Copyright (c) 2003-2008 Fabrice Bellard'",
            );
            script(&bin.join("getenforce"), "echo Permissive");
            script(&bin.join("rpm"), "echo cloudstack-agent-4.2.0-1.el6.x86_64");
        } else if debian {
            script(&bin.join("libvirtd"), "echo 'libvirtd (libvirt) 9.0.0'");
            script(
                &bin.join("qemu-system-x86_64"),
                "echo 'QEMU emulator version 7.2.15 (Debian 1:7.2+dfsg-7+deb12u13)'",
            );
            // dpkg-query as Debian's: the agent's package, or one `name ii ` line per
            // installed package (exit 1 and a message for an unknown one); the names
            // in ../missing are not installed.
            script(
                &bin.join("dpkg-query"),
                "d=\"${0%/*}/..\"; case \"$2\" in *Status-Abbrev*) shift 2; rc=0\n\
                 for p; do gone=; if [ -e \"$d/missing\" ]; then \
                 while read -r m; do [ \"$m\" = \"$p\" ] && gone=1; done < \"$d/missing\"; fi\n\
                 if [ -n \"$gone\" ]; then \
                 echo \"dpkg-query: no packages found matching $p\" >&2; rc=1; \
                 else echo \"$p ii \"; fi; done; exit $rc;; \
                 *) printf 'install ok installed 4.20.0.0';; esac",
            );
            // systemctl: logged; is-active prints one state per unit, as systemctl
            // does: a service's from ../libvirtd-state (active), a socket's from
            // ../sockets-state (inactive).
            script(
                &bin.join("systemctl"),
                "d=\"${0%/*}/..\"; echo \"systemctl $*\" >> \"$d/systemctl.log\"\n\
                 case \"$1\" in is-active) shift; rc=0; for u in \"$@\"; do \
                 case \"$u\" in *.socket) s=inactive; f=sockets-state;; *) s=active; f=libvirtd-state;; esac; \
                 [ -e \"$d/$f\" ] && read -r s < \"$d/$f\"; \
                 echo \"$s\"; [ \"$s\" = active ] || rc=3; done; exit $rc;; \
                 restart) [ ! -e \"$d/libvirtd-state\" ];; *) exit 0;; esac",
            );
            if net == "openvswitch" {
                script(
                    &bin.join("ovs-vsctl"),
                    "case \"$1\" in --version) echo 'ovs-vsctl (Open vSwitch) 3.1.0';; br-exists) exit 0;; esac",
                );
            }
        } else if os == "el9" {
            script(&bin.join("libvirtd"), "echo 'libvirtd (libvirt) 10.0.0'");
            script(
                &root.join("usr/libexec/qemu-kvm"),
                "echo 'QEMU emulator version 8.2.0 (qemu-kvm-8.2.0-11.el9_4.6)'",
            );
            script(&bin.join("getenforce"), "echo Permissive");
            // rpm as EL's: `-q --qf '%{NAME}\n' P...` prints each installed name and
            // "package P is not installed" for the others (../missing), exiting with
            // their count; `-q cloudstack-agent` prints the package.
            script(
                &bin.join("rpm"),
                "d=\"${0%/*}/..\"; case \"$2\" in --qf) shift 3; rc=0\n\
                 for p; do gone=; if [ -e \"$d/missing\" ]; then \
                 while read -r m; do [ \"$m\" = \"$p\" ] && gone=1; done < \"$d/missing\"; fi\n\
                 if [ -n \"$gone\" ]; then echo \"package $p is not installed\"; rc=$((rc+1)); \
                 else echo \"$p\"; fi; done; exit $rc;; \
                 *) echo cloudstack-agent-4.20.0.0-1.el9.noarch;; esac",
            );
            // systemctl: logged; is-active prints one state per unit: libvirtd's from
            // ../libvirtd-state (active), firewalld's from ../firewalld-state
            // (inactive), every other unit's from ../units-state (inactive).
            script(
                &bin.join("systemctl"),
                "d=\"${0%/*}/..\"; echo \"systemctl $*\" >> \"$d/systemctl.log\"\n\
                 case \"$1\" in is-active) shift; rc=0; for u in \"$@\"; do \
                 case \"$u\" in libvirtd.service) s=active; f=libvirtd-state;; \
                 firewalld.service) s=inactive; f=firewalld-state;; *) s=inactive; f=units-state;; esac; \
                 [ -e \"$d/$f\" ] && read -r s < \"$d/$f\"; \
                 echo \"$s\"; [ \"$s\" = active ] || rc=3; done; exit $rc;; \
                 restart) [ \"$2\" != libvirtd.service ] || [ ! -e \"$d/libvirtd-state\" ];; *) exit 0;; esac",
            );
            // nmcli: logged; NetworkManager's active profiles are the UUIDs in
            // ../nm-active. `networking off` deactivates all, `networking on`
            // activates every keyfile's profile but those with autoconnect=false,
            // `connection up uuid U` activates U.
            script(
                &bin.join("nmcli"),
                &format!(
                    "d=\"${{0%/*}}/..\"; echo \"nmcli $*\" >> \"$d/nmcli.log\"; list=\"$d/nm-active\"\n\
                     case \"$*\" in \
                     '-t -f UUID,STATE connection show --active') \
                     [ -e \"$list\" ] && while read -r u; do echo \"$u:activated\"; done < \"$list\";; \
                     'networking off') : > \"$list\";; \
                     'networking on') : > \"$list\"; for f in '{}'/*.nmconnection; do u=; a=1; \
                     while IFS= read -r l; do case \"$l\" in uuid=*) u=\"${{l#uuid=}}\";; \
                     autoconnect=false) a=;; esac; done < \"$f\"; \
                     [ -n \"$a\" ] && [ -n \"$u\" ] && echo \"$u\" >> \"$list\"; done;; \
                     'connection up uuid '*) echo \"$4\" >> \"$list\";; esac; exit 0",
                    root.join("etc/NetworkManager/system-connections").display()
                ),
            );
            if net == "openvswitch" {
                script(
                    &bin.join("ovs-vsctl"),
                    "case \"$1\" in --version) echo 'ovs-vsctl (Open vSwitch) 3.3.1';; br-exists) exit 0;; esac",
                );
            }
        } else {
            script(&bin.join("kvm"), "echo 'QEMU emulator version 1.0 (qemu-kvm-1.0), Copyright (c) 2003-2008 Fabrice Bellard'");
            script(
                &bin.join("dpkg-query"),
                "printf 'install ok installed 4.2.0'",
            );
        }
        FakeHost {
            _tmp: tmp,
            dir,
            root,
            plan,
        }
    }

    fn bin(&self, name: &str, body: &str) {
        script(&self.dir.join("bin").join(name), body);
    }

    fn cmd(&self, verb: &str) -> Command {
        let mut c = agent();
        c.arg(verb)
            .arg("--plan")
            .arg(&self.plan)
            .arg("--root")
            .arg(&self.root)
            .env_clear()
            .env("PATH", self.dir.join("bin"))
            .env("HVSEED_PROC", self.dir.join("proc"))
            .env("HVSEED_SYS", self.dir.join("sys"))
            .env("HVSEED_CMD_TIMEOUT", "5");
        c
    }

    /// verify --json → name → (ok, detail), and the exit status.
    fn verify(&self) -> (bool, std::collections::BTreeMap<String, (bool, String)>) {
        let out = self.cmd("verify").arg("--json").output().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{e}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        assert_eq!(v["ok"].as_bool().unwrap(), out.status.success());
        (out.status.success(), checks_by_name(&v))
    }
}

const CENTOS_CHECKS: [&str; 15] = [
    "x86-64",
    "cpu-virtualization",
    "memory",
    "nic",
    "fqdn",
    "ntp",
    "libvirt-version",
    "qemu-version",
    "libvirtd-listening",
    "bridges",
    "selinux",
    "firewall",
    "cloudstack-agent",
    "no-vms",
    "cpu-facts",
];

#[test]
fn verify_passes_on_a_good_centos6_host() {
    let h = FakeHost::new("centos6", "linux-bridge");
    let (ok, m) = h.verify();
    assert!(ok, "{m:#?}");
    let names: Vec<&str> = m.keys().map(String::as_str).collect();
    let mut want = CENTOS_CHECKS.to_vec();
    want.sort();
    assert_eq!(names, want);
    assert!(m["qemu-version"].1.contains("0.12.1"), "{m:?}");
    assert!(m["cpu-facts"]
        .1
        .starts_with("2 × Intel(R) Xeon(R) CPU E5-2620"));
    // The human form says the same.
    let out = h.cmd("verify").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("15 checks, 0 failed"));
}

#[test]
fn verify_passes_on_a_good_ubuntu_ovs_host() {
    let h = FakeHost::new("ubuntu1204", "openvswitch");
    let (ok, m) = h.verify();
    assert!(ok, "{m:#?}");
    assert!(m.contains_key("openvswitch-version") && m.contains_key("apparmor"));
}

#[test]
fn verify_fails_each_check_with_a_reason() {
    let h = FakeHost::new("centos6", "linux-bridge");
    fs::write(h.dir.join("proc/cpuinfo"), CPUINFO.replace(" vmx", "")).unwrap();
    fs::write(h.dir.join("proc/meminfo"), "MemTotal:        2048000 kB\n").unwrap();
    fs::write(h.dir.join("proc/net/tcp"), TCP.replace(":407D", ":407E")).unwrap();
    fs::remove_dir_all(h.dir.join("sys/class/net/cloudbr1")).unwrap();
    h.bin("hostname", "echo localhost.localdomain");
    h.bin("getenforce", "echo Enforcing");
    h.bin("libvirtd", "echo 'libvirtd (libvirt) 0.9.2'");
    fs::remove_dir_all(h.dir.join("proc/812")).unwrap();
    h.bin(
        "iptables-save",
        "echo '*filter'; echo '-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT'; echo COMMIT",
    );
    h.bin(
        "virsh",
        "echo ' Id    Name                           State'\necho '----------------------------------------------------'\necho ' 3     i-2-3-VM                       running'\necho ' -     v-1-VM                         shut off'",
    );
    fs::remove_file(h.dir.join("bin/rpm")).unwrap();
    let (ok, m) = h.verify();
    assert!(!ok);
    let failed = |name: &str, needle: &str| {
        let (ok, detail) = &m[name];
        assert!(!ok, "{name} should fail");
        assert!(
            detail.contains(needle),
            "{name}: {detail:?} lacks {needle:?}"
        );
    };
    failed("cpu-virtualization", "no vmx or svm");
    failed("memory", "2048000 kB");
    failed("libvirtd-listening", "16509");
    failed("bridges", "cloudbr1");
    failed("fqdn", "localhost.localdomain");
    failed("selinux", "enforcing");
    failed("libvirt-version", "0.9.2 is older than 0.9.4");
    failed("ntp", "no ntpd process");
    failed("firewall", "1798");
    failed("no-vms", "i-2-3-VM, v-1-VM");
    failed("cloudstack-agent", "command not found");
    assert!(m["x86-64"].0 && m["qemu-version"].0 && m["cpu-facts"].0);
}

#[test]
fn verify_ovs_needs_new_enough_libvirt_and_openvswitch() {
    let h = FakeHost::new("ubuntu1204", "openvswitch");
    h.bin("libvirtd", "echo 'libvirtd (libvirt) 0.9.8'");
    h.bin("ovs-vsctl", "case \"$1\" in --version) echo 'ovs-vsctl (Open vSwitch) 1.4.0';; br-exists) [ \"$2\" != mgmt0 ];; esac");
    fs::create_dir_all(h.dir.join("sys/kernel/security/apparmor")).unwrap();
    fs::write(
        h.dir.join("sys/kernel/security/apparmor/profiles"),
        "/usr/sbin/libvirtd (enforce)\n/usr/sbin/tcpdump (enforce)\n",
    )
    .unwrap();
    let (ok, m) = h.verify();
    assert!(!ok);
    assert!(
        m["libvirt-version"].1.contains("older than 0.9.11"),
        "{m:?}"
    );
    assert!(m["openvswitch-version"]
        .1
        .contains("1.4.0 is older than 1.7.1"));
    assert!(m["bridges"].1.contains("mgmt0"));
    assert!(m["apparmor"].1.contains("/usr/sbin/libvirtd"));
}

#[test]
fn a_missing_or_hanging_command_is_a_failed_check_not_a_hang() {
    let h = FakeHost::new("centos6", "linux-bridge");
    fs::remove_file(h.dir.join("bin/hostname")).unwrap();
    // exec: the shell becomes sleep, and the agent must kill it at the deadline.
    let sleep = Command::new("sh")
        .args(["-c", "command -v sleep"])
        .output()
        .unwrap();
    let sleep = String::from_utf8(sleep.stdout).unwrap();
    h.bin("virsh", &format!("exec {} 60", sleep.trim()));
    let start = std::time::Instant::now();
    let out = h
        .cmd("verify")
        .arg("--json")
        .env("HVSEED_CMD_TIMEOUT", "1")
        .output()
        .unwrap();
    assert!(
        start.elapsed().as_secs() < 30,
        "the deadline was not enforced"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let checks = checks_by_name(&v);
    assert!(!checks["fqdn"].0);
    assert!(checks["fqdn"].1.contains("command not found"));
    assert!(!checks["no-vms"].0);
    assert!(checks["no-vms"].1.contains("did not finish in time"));
    assert!(!out.status.success());
}

// ------------------------------------------------------------------ run

/// `verify --json`'s report `v` → check name → (ok, detail).
fn checks_by_name(v: &serde_json::Value) -> std::collections::BTreeMap<String, (bool, String)> {
    let mut m = std::collections::BTreeMap::new();
    for c in v["checks"].as_array().unwrap() {
        m.insert(
            c["name"].as_str().unwrap().to_string(),
            (
                c["ok"].as_bool().unwrap(),
                c["detail"].as_str().unwrap().to_string(),
            ),
        );
    }
    m
}

fn offline_apply(h: &FakeHost) {
    run_ok(
        agent()
            .arg("apply")
            .arg("--plan")
            .arg(&h.plan)
            .arg("--root")
            .arg(&h.root),
    );
    fs::create_dir_all(h.root.join("var/lib")).unwrap();
}

fn runtime_fakes(h: &FakeHost) {
    for c in [
        "setenforce",
        "iptables-restore",
        "apparmor_parser",
        "ufw",
        "ifup",
        "ifdown",
    ] {
        h.bin(
            c,
            &format!("echo {c} \"$@\" >> \"${{0%/*}}/../runtime.log\""),
        );
    }
}

#[test]
fn run_on_a_good_host_reports_ready_and_disables_its_job() {
    let h = FakeHost::new("centos6", "linux-bridge");
    offline_apply(&h);
    runtime_fakes(&h);
    h.bin("ping", "exit 0");
    // hvseed serve stand-in: one POST, recorded.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = s.read(&mut chunk).unwrap();
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf).to_string();
            if let Some(i) = text.find("\r\n\r\n") {
                let len: usize = text
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length: "))
                    .unwrap()
                    .trim()
                    .parse()
                    .unwrap();
                if buf.len() >= i + 4 + len {
                    use std::io::Write;
                    s.write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
                        .unwrap();
                    return text;
                }
            }
            if n == 0 {
                return text;
            }
        }
    });
    let mut plan: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&h.plan).unwrap()).unwrap();
    plan["report_url"] = format!("http://127.0.0.1:{port}/report/kvm1.lab.example.org").into();
    fs::write(&h.plan, plan.to_string()).unwrap();

    let out = h.cmd("run").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let report: hvseed_firstboot::report::Report =
        serde_json::from_str(&read(&h.root, "/var/lib/hvseed/report.json")).unwrap();
    assert_eq!(report.status, hvseed_firstboot::report::ReportStatus::Ready);
    assert_eq!(report.fqdn, "kvm1.lab.example.org");
    assert_eq!(report.cpu.count, 2);
    assert!(report.cpu.flags.contains(&"vmx".to_string()));
    assert_eq!(report.checks[0].name, "network-gateway");
    // The runtime part ran, through the distribution's tools.
    let rt = fs::read_to_string(h.dir.join("runtime.log")).unwrap();
    assert!(rt.contains("setenforce permissive"));
    assert!(rt.contains("iptables-restore"));
    let svc = fs::read_to_string(h.dir.join("service.log")).unwrap();
    assert!(
        svc.contains("network stop") && svc.contains("network start"),
        "{svc}"
    );
    assert!(svc.contains("libvirtd restart"), "{svc}");
    // The job is disabled, the log is written, the report reached the server.
    for rl in 2..=5 {
        assert!(fs::symlink_metadata(
            h.root
                .join(format!("etc/rc.d/rc{rl}.d/S99hvseed-firstboot"))
        )
        .is_err());
    }
    assert!(read(&h.root, "/var/log/hvseed-firstboot.log").contains("host is ready"));
    let req = server.join().unwrap();
    assert!(
        req.starts_with("POST /report/kvm1.lab.example.org HTTP/1.1\r\n"),
        "{req}"
    );
    let body = &req[req.find("\r\n\r\n").unwrap() + 4..];
    let posted: hvseed_firstboot::report::Report = serde_json::from_str(body).unwrap();
    assert_eq!(posted, report);
}

#[test]
fn run_rolls_the_network_back_when_the_gateway_is_lost() {
    for os in ["centos6", "ubuntu1204"] {
        let h = FakeHost::new(os, "linux-bridge");
        offline_apply(&h);
        runtime_fakes(&h);
        // The first network start loses the gateway; after the rollback's start it
        // answers again (service on centos6, ifdown/ifup on ubuntu1204).
        for name in ["service", "ifup", "ifdown"] {
            h.bin(
                name,
                &format!(
                    "d=\"${{0%/*}}/..\"; echo \"{name} $*\" >> \"$d/network.log\"\n\
                     case \"{name} $*\" in \"service network start\"|\"ifup -a --exclude=lo\")\n\
                     if [ -e \"$d/start1\" ]; then : > \"$d/start2\"; else : > \"$d/start1\"; fi;; esac\nexit 0"
                ),
            );
        }
        h.bin(
            "ping",
            "d=\"${0%/*}/..\"; echo ping >> \"$d/ping.log\"; [ -e \"$d/start2\" ]",
        );
        let before: Vec<(String, Option<String>)> = match os {
            "centos6" => ["ifcfg-eth0", "ifcfg-eth0.100", "ifcfg-cloudbr0"]
                .iter()
                .map(|f| {
                    let p = format!("/etc/sysconfig/network-scripts/{f}");
                    let orig = repo_root()
                        .join("tests/fixtures/roots/centos6")
                        .join(&p[1..]);
                    (p, fs::read_to_string(orig).ok())
                })
                .collect(),
            _ => vec![(
                "/etc/network/interfaces".into(),
                Some(read(
                    &repo_root().join("tests/fixtures/roots/ubuntu1204"),
                    "/etc/network/interfaces",
                )),
            )],
        };
        // The documented setting, not an environment backdoor, shortens the wait.
        fs::create_dir_all(h.root.join("etc/hvseed")).unwrap();
        fs::write(
            h.root.join("etc/hvseed/firstboot.conf"),
            "gateway_tries = 2\n",
        )
        .unwrap();
        let out = h.cmd("run").output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{os}: {err}");
        // Two rounds as the setting says, then one after the rollback (it answers).
        let pings = fs::read_to_string(h.dir.join("ping.log")).unwrap();
        assert_eq!(pings.lines().count(), 3, "{os}: {pings}");
        // Files are back as the installer wrote them; hvseed's new ones moved away.
        for (p, orig) in &before {
            match orig {
                Some(text) => assert_eq!(&read(&h.root, p), text, "{os}: {p} restored"),
                None => assert!(!h.root.join(&p[1..]).exists(), "{os}: {p} removed"),
            }
        }
        if os == "centos6" {
            assert!(h
                .root
                .join("var/lib/hvseed/failed/etc_sysconfig_network-scripts_ifcfg-eth0.100")
                .exists());
        }
        let net = fs::read_to_string(h.dir.join("network.log")).unwrap();
        let want: &[&str] = match os {
            "centos6" => &[
                "service network stop",
                "service network start",
                "service network stop",
                "service network start",
            ],
            _ => &[
                "ifdown -a --exclude=lo",
                "ifup -a --exclude=lo",
                "ifdown -a --exclude=lo",
                "ifup -a --exclude=lo",
            ],
        };
        let got: Vec<&str> = net
            .lines()
            .filter(|l| l.contains(" network ") || l.starts_with("if"))
            .collect();
        assert_eq!(got, want, "{os}: down/up, then down, rollback, up");
        let report: hvseed_firstboot::report::Report =
            serde_json::from_str(&read(&h.root, "/var/lib/hvseed/report.json")).unwrap();
        assert_eq!(
            report.status,
            hvseed_firstboot::report::ReportStatus::Failed
        );
        let gw = &report.checks[0];
        assert_eq!(gw.name, "network-gateway");
        assert!(!gw.ok && gw.detail.contains("restored"), "{gw:?}");
        // The job stays enabled so the next boot retries.
        match os {
            "centos6" => {
                assert!(fs::metadata(h.root.join("etc/rc3.d/S99hvseed-firstboot")).is_ok())
            }
            _ => {
                assert!(h.root.join("etc/init/hvseed-firstboot.conf").exists());
                assert!(!h.root.join("etc/init/hvseed-firstboot.override").exists());
            }
        }
        let log = read(&h.root, "/var/log/hvseed-firstboot.log");
        assert!(log.contains("unreachable"));
        // hvseed's firewall accepts the management network's sources only: not loaded
        // while the installer's network is in use, which keeps the host reachable there.
        let rt = fs::read_to_string(h.dir.join("runtime.log")).unwrap_or_default();
        assert!(
            !rt.contains("iptables-restore") && !rt.contains("ufw --force enable"),
            "{os}: firewall loaded after the rollback: {rt}"
        );
        assert!(log.contains("firewall is not loaded"), "{os}: {log}");
    }
}

/// A fake apparmor_parser whose `-R` takes the libvirt profiles off the kernel's list.
fn unloads_from_the_list(h: &FakeHost) {
    h.bin(
        "apparmor_parser",
        "d=\"${0%/*}/..\"; echo apparmor_parser \"$@\" >> \"$d/runtime.log\"\n\
         f=\"$d/sys/kernel/security/apparmor/profiles\"; out=\n\
         while IFS= read -r l; do case \"$l\" in *libvirtd*|*virt-aa-helper*) ;; *) out=\"$out$l\n\"; esac; done < \"$f\"\n\
         printf '%s' \"$out\" > \"$f\"",
    );
}

#[test]
fn run_on_ubuntu_disables_the_upstart_job_on_success() {
    let h = FakeHost::new("ubuntu1204", "linux-bridge");
    offline_apply(&h);
    runtime_fakes(&h);
    h.bin("ping", "exit 0");
    // precise names its profiles by path; only libvirtd's is loaded.
    fs::create_dir_all(h.dir.join("sys/kernel/security/apparmor")).unwrap();
    fs::write(
        h.dir.join("sys/kernel/security/apparmor/profiles"),
        "/usr/sbin/libvirtd (enforce)\n/sbin/dhclient (enforce)\n",
    )
    .unwrap();
    unloads_from_the_list(&h);
    h.run_passes();
    assert_eq!(
        read(&h.root, "/etc/init/hvseed-firstboot.override").trim(),
        "manual"
    );
    let rt = fs::read_to_string(h.dir.join("runtime.log")).unwrap();
    assert!(rt.contains("ufw --force enable"));
    assert!(rt.contains("apparmor_parser -R") && rt.contains("usr.sbin.libvirtd"));
    assert!(
        !rt.contains("virt-aa-helper"),
        "a profile not loaded was unloaded: {rt}"
    );
    let svc = fs::read_to_string(h.dir.join("service.log")).unwrap();
    assert!(svc.contains("libvirt-bin restart"), "{svc}");
    assert!(
        rt.contains("ifdown -a --exclude=lo") && rt.contains("ifup -a --exclude=lo"),
        "{rt}"
    );
}

#[test]
fn run_reports_an_apply_failure_and_leaves_the_network_alone() {
    let h = FakeHost::new("centos6", "linux-bridge");
    offline_apply(&h);
    runtime_fakes(&h);
    h.bin("ping", "exit 0");
    fs::remove_file(h.root.join("etc/ntp.conf")).unwrap();
    fs::create_dir(h.root.join("etc/ntp.conf")).unwrap();
    let out = h.cmd("run").output().unwrap();
    assert!(!out.status.success());
    let report: hvseed_firstboot::report::Report =
        serde_json::from_str(&read(&h.root, "/var/lib/hvseed/report.json")).unwrap();
    assert_eq!(
        report.status,
        hvseed_firstboot::report::ReportStatus::Failed
    );
    assert_eq!(report.checks[0].name, "apply");
    assert!(
        report.checks[0].detail.contains("/etc/ntp.conf"),
        "{:?}",
        report.checks[0]
    );
    let svc = fs::read_to_string(h.dir.join("service.log")).unwrap_or_default();
    assert!(
        !svc.contains("network"),
        "network touched after a failed apply: {svc}"
    );
    assert!(fs::symlink_metadata(h.root.join("etc/rc.d/rc3.d/S99hvseed-firstboot")).is_ok());
    // Each log line carries a UTC timestamp.
    let log = read(&h.root, "/var/log/hvseed-firstboot.log");
    assert!(
        log.lines()
            .all(|l| l.len() > 21 && l.as_bytes()[10] == b'T' && l[..20].ends_with('Z')),
        "{log}"
    );
}

/// The real machine running the tests: real /proc, real programs (most of them missing
/// here). Whatever it finds, verify must answer with well-formed JSON and not crash.
#[test]
fn verify_on_the_build_machine_answers_without_crashing() {
    let tmp = tempfile::tempdir().unwrap();
    let plan = write_plan(tmp.path(), &plan_json("centos6", "linux-bridge", &[]));
    let out = agent()
        .args(["verify", "--json", "--plan"])
        .arg(&plan)
        .env("HVSEED_CMD_TIMEOUT", "5")
        .output()
        .unwrap();
    assert!(matches!(out.status.code(), Some(0 | 1)), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let checks = v["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 15);
    assert!(checks
        .iter()
        .all(|c| !c["detail"].as_str().unwrap().is_empty()));
    // This machine's cpuinfo has at least one CPU.
    assert!(v["cpu"]["count"].as_u64().unwrap() >= 1);
}

// ------------------------------------- a full or closed stdout/stderr (defect 6)

#[derive(Debug, Clone, Copy)]
enum Output {
    /// Pipes read by the test.
    Normal,
    /// stdout and stderr on /dev/full (ENOSPC on every write).
    Full,
    /// stdout and stderr on a pipe nobody reads any more (EPIPE, SIGPIPE).
    ClosedPipe,
    /// stdout and stderr closed (`>&- 2>&-`).
    Closed,
}

/// Runs `cmd` with its stdout and stderr as `how`; the exit code.
fn exit_code_with(cmd: &mut Command, how: Output) -> Option<i32> {
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::os::unix::process::CommandExt;
    use std::process::Stdio;
    cmd.stdin(Stdio::null());
    match how {
        Output::Normal => {
            return run_guarded(cmd).status.code();
        }
        Output::Full => {
            let f = fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap();
            cmd.stdout(f.try_clone().unwrap()).stderr(f);
        }
        Output::ClosedPipe => {
            let mut fds = [0; 2];
            // SAFETY: pipe2 fills two descriptors we then own.
            assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
            // SAFETY: both descriptors are fresh and owned by nobody else.
            let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
            drop(r);
            cmd.stdout(w.try_clone().unwrap()).stderr(w);
        }
        Output::Closed => {
            // SAFETY: close(2) only, between fork and exec.
            unsafe {
                cmd.pre_exec(|| {
                    libc::close(1);
                    libc::close(2);
                    Ok(())
                });
            }
        }
    }
    let mut child = cmd.spawn().unwrap();
    wait_guarded(&mut child, &format!("{cmd:?} with output {how:?}")).code()
}

/// Every verb on a fresh fake host with its output as `how`: the exit codes, the
/// tree ROOT ends up as (without the timestamped log) and the report's checks.
fn every_verb(how: Output) -> (Vec<(String, Option<i32>)>, String, String) {
    let h = FakeHost::new("centos6", "linux-bridge");
    runtime_fakes(&h);
    h.bin("ping", "exit 0");
    let mut codes = Vec::new();
    let mut go = |name: &str, cmd: &mut Command| {
        codes.push((name.to_string(), exit_code_with(cmd, how)));
    };
    go(
        "apply --dry-run --diff",
        h.cmd("apply").args(["--dry-run", "--diff"]),
    );
    go("apply", &mut h.cmd("apply"));
    fs::create_dir_all(h.root.join("var/lib")).unwrap();
    go("verify", &mut h.cmd("verify"));
    go("verify --json", h.cmd("verify").arg("--json"));
    go("run", &mut h.cmd("run"));
    go("--version", agent().arg("--version"));
    go("--help", agent().arg("--help"));
    go("bad argument", agent().arg("--bogus"));
    go(
        "missing plan",
        agent()
            .args(["apply", "--plan", "/nonexistent", "--root"])
            .arg(&h.root),
    );
    let report = read(&h.root, "/var/lib/hvseed/report.json");
    let report: hvseed_firstboot::report::Report = serde_json::from_str(&report).unwrap();
    let checks = format!("{:?} {:?}", report.status, report.checks);
    fs::remove_file(h.root.join("var/lib/hvseed/report.json")).unwrap();
    fs::remove_file(h.root.join("var/log/hvseed-firstboot.log")).unwrap();
    (codes, tree_sum(&h.root), checks)
}

#[test]
fn a_full_or_closed_output_changes_neither_the_exit_status_nor_the_host() {
    let normal = every_verb(Output::Normal);
    let want: Vec<Option<i32>> = vec![
        Some(0),
        Some(0),
        Some(0),
        Some(0),
        Some(0),
        Some(0),
        Some(0),
        Some(1),
        Some(1),
    ];
    assert_eq!(
        normal.0.iter().map(|(_, c)| *c).collect::<Vec<_>>(),
        want,
        "{:?}",
        normal.0
    );
    for how in [Output::Full, Output::ClosedPipe, Output::Closed] {
        let got = every_verb(how);
        // `--version` and `--help` print nothing but their text: when it cannot be
        // written they fail (1), as `hvseed --help` does; a closed stdout is /dev/null
        // to the agent (its descriptors 0-2 are reopened there), so that one succeeds.
        let lost = matches!(how, Output::Full | Output::ClosedPipe);
        let want: Vec<(String, Option<i32>)> = normal
            .0
            .iter()
            .map(|(name, code)| match name.as_str() {
                "--version" | "--help" if lost => (name.clone(), Some(1)),
                _ => (name.clone(), *code),
            })
            .collect();
        assert_eq!(got.0, want, "{how:?}: exit codes");
        assert_eq!(got.1, normal.1, "{how:?}: ROOT differs");
        assert_eq!(got.2, normal.2, "{how:?}: report differs");
    }
}

// --------------------------------------- run after a failed apply (defect 8)

#[test]
fn run_puts_back_what_a_failed_apply_replaced_and_leaves_the_network_alone() {
    let h = FakeHost::new("centos6", "linux-bridge");
    offline_apply(&h);
    runtime_fakes(&h);
    h.bin("ping", "exit 0");
    // /etc/hosts and /etc/ntp.conf need changes again; ntp.conf (after hosts in
    // apply's order) cannot be written: a directory is in the way of its temporary.
    let fixture = repo_root().join("tests/fixtures/roots/centos6");
    for p in ["etc/hosts", "etc/ntp.conf"] {
        fs::copy(fixture.join(p), h.root.join(p)).unwrap();
    }
    fs::create_dir_all(h.root.join("etc/.ntp.conf.hvseed-tmp/x")).unwrap();
    let out = run_guarded(&mut h.cmd("run"));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        read(&h.root, "/etc/hosts"),
        fs::read_to_string(fixture.join("etc/hosts")).unwrap(),
        "/etc/hosts was left changed"
    );
    let report: hvseed_firstboot::report::Report =
        serde_json::from_str(&read(&h.root, "/var/lib/hvseed/report.json")).unwrap();
    let a = &report.checks[0];
    assert_eq!(a.name, "apply");
    assert!(!a.ok);
    assert!(
        a.detail.starts_with("/etc/ntp.conf: cannot write it")
            && a.detail.contains("nothing was changed"),
        "{a:?}"
    );
    let svc = fs::read_to_string(h.dir.join("service.log")).unwrap_or_default();
    assert!(!svc.contains("network"), "network touched: {svc}");
    assert!(fs::symlink_metadata(h.root.join("etc/rc.d/rc3.d/S99hvseed-firstboot")).is_ok());
}

// ------------------------------------------ bounded kernel files (defect 12)

#[test]
fn fifos_in_proc_and_sys_fail_their_checks_instead_of_hanging() {
    for os in ["centos6", "ubuntu1204"] {
        let h = FakeHost::new(os, "linux-bridge");
        mkfifo(&h.dir.join("proc/cpuinfo"));
        mkfifo(&h.dir.join("proc/net/tcp"));
        mkfifo(&h.dir.join("proc/812/stat"));
        fs::create_dir_all(h.dir.join("sys/kernel/security/apparmor")).unwrap();
        mkfifo(&h.dir.join("sys/kernel/security/apparmor/profiles"));
        let out = run_guarded(h.cmd("verify").arg("--json"));
        assert_eq!(out.status.code(), Some(1));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let checks = checks_by_name(&v);
        let get = |n: &str| {
            checks
                .get(n)
                .unwrap_or_else(|| panic!("{os}: no check {n}: {v}"))
        };
        let cpu = get("cpu-virtualization");
        assert!(!cpu.0);
        assert!(cpu.1.contains("it is a FIFO"), "{os}: {cpu:?}");
        assert!(!get("libvirtd-listening").0);
        assert!(!get("ntp").0, "{os}: the ntpd stat is a FIFO");
        if os == "ubuntu1204" {
            let aa = get("apparmor");
            assert!(!aa.0, "{aa:?}");
            assert!(aa.1.contains("it is a FIFO"), "{aa:?}");
        }
        // The rest of the report is still there.
        assert!(get("memory").0);
        // run reads the same files, and iptables-restore's input is opened safely too.
        if os == "centos6" {
            offline_apply(&h);
            runtime_fakes(&h);
            h.bin("ping", "exit 0");
            // Its log and console are written, never waited on.
            fs::create_dir_all(h.root.join("var/log")).unwrap();
            fs::create_dir_all(h.root.join("dev")).unwrap();
            mkfifo(&h.root.join("var/log/hvseed-firstboot.log"));
            mkfifo(&h.root.join("dev/console"));
            let out = run_guarded(&mut h.cmd("run"));
            assert_eq!(out.status.code(), Some(1));
            assert!(
                String::from_utf8_lossy(&out.stderr).contains("report written"),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// A console that takes its time (a serial line whose buffer is full): `run` waits for
/// it instead of losing lines. The console is a pipe the test reads only once it is
/// full (or `run` has finished without waiting); a warning line longer than the pipe
/// holds must still arrive whole, like every other line on stderr.
#[test]
fn a_full_console_slows_run_down_instead_of_losing_lines() {
    use std::os::unix::io::{AsRawFd, FromRawFd};
    let h = FakeHost::new("centos6", "linux-bridge");
    offline_apply(&h);
    runtime_fakes(&h);
    h.bin("ping", "exit 0");
    // setenforce fails with a 200,000-byte message: the warning is one long line.
    h.bin(
        "setenforce",
        "s=xxxxxxxxxx; s=$s$s$s$s$s$s$s$s$s$s; s=$s$s$s$s$s$s$s$s$s$s\n\
         s=$s$s$s$s$s$s$s$s$s$s; s=$s$s$s$s$s$s$s$s$s$s; printf '%s%s\\n' \"$s\" \"$s\" >&2; exit 1",
    );
    fs::create_dir_all(h.root.join("dev")).unwrap();
    let console = h.root.join("dev/console");
    mkfifo(&console);
    let c = std::ffi::CString::new(console.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: open with a valid NUL-terminated path; the descriptor is owned below.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC,
        )
    };
    assert!(fd >= 0, "opening the console FIFO");
    // SAFETY: fd is a fresh descriptor nothing else owns.
    let reader = unsafe { fs::File::from_raw_fd(fd) };
    // A write end of our own, to ask the pipe whether it has room (POLLOUT); closed
    // before reading so that EOF comes when run is done.
    // SAFETY: as above; the reader exists, so a non-blocking open for writing works.
    let wfd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_WRONLY | libc::O_NONBLOCK | libc::O_CLOEXEC,
        )
    };
    assert!(wfd >= 0, "opening the console FIFO for writing");
    // SAFETY: wfd is a fresh descriptor nothing else owns.
    let probe = unsafe { fs::File::from_raw_fd(wfd) };

    let mut child = h
        .cmd("run")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let err_thread = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stderr.read_to_end(&mut v);
        v
    });
    // Not read until the pipe is full or run is done: a blocking console holds run up
    // here, a non-blocking one drops what does not fit.
    let deadline = std::time::Instant::now() + HANG_GUARD;
    loop {
        let mut p = libc::pollfd {
            fd: probe.as_raw_fd(),
            events: libc::POLLOUT,
            revents: 0,
        };
        // SAFETY: poll on one valid pollfd, without waiting.
        let n = unsafe { libc::poll(&mut p, 1, 0) };
        if n == 0 || child.try_wait().unwrap().is_some() {
            break;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the console never filled and run never finished");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    drop(probe);
    // SAFETY: fcntl on our descriptor with integer arguments.
    unsafe { libc::fcntl(reader.as_raw_fd(), libc::F_SETFL, 0) };
    let read_thread = std::thread::spawn(move || {
        let mut v = Vec::new();
        let mut r = reader;
        let _ = r.read_to_end(&mut v);
        v
    });
    wait_guarded(&mut child, "hvseed-firstboot run");
    let shown = String::from_utf8(read_thread.join().unwrap()).unwrap();
    let err = String::from_utf8(err_thread.join().unwrap()).unwrap();
    let logged: String = err
        .lines()
        .filter(|l| l.starts_with("hvseed-firstboot: "))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(
        logged.len() > 200_000 && logged.contains("setenforce"),
        "the warning is not longer than the pipe: {}",
        logged.len()
    );
    assert!(
        shown == logged,
        "the console lost lines: {} of {} bytes arrived",
        shown.len(),
        logged.len()
    );
}

// ------------------------------------------------------------------ debian12

const DEBIAN12_CHECKS: [&str; 20] = [
    "x86-64",
    "cpu-virtualization",
    "memory",
    "nic",
    "fqdn",
    "packages",
    "ntp",
    "libvirt-version",
    "qemu-version",
    "openvswitch-version",
    "libvirtd-sockets-masked",
    "libvirtd-running",
    "libvirtd-listening",
    "bridges",
    "apparmor",
    "firewall",
    "root-ssh-login",
    "cloudstack-agent",
    "no-vms",
    "cpu-facts",
];

/// A Debian 12 host after the installer's late_command ran `apply`.
fn debian12(net: &str) -> FakeHost {
    let h = FakeHost::new("debian12", net);
    offline_apply(&h);
    h
}

#[test]
fn verify_passes_on_a_good_debian12_host() {
    let h = debian12("openvswitch");
    let (ok, m) = h.verify();
    assert!(ok, "{m:#?}");
    let names: Vec<&str> = m.keys().map(String::as_str).collect();
    let mut want = DEBIAN12_CHECKS.to_vec();
    want.sort();
    assert_eq!(names, want);
    assert!(m["packages"].1.contains("openvswitch-switch"), "{m:?}");
    assert!(
        m["root-ssh-login"].1.contains("00-hvseed-root-login.conf"),
        "{m:?}"
    );
    assert!(m["ntp"].1.contains("ntp1.lab.example.org"), "{m:?}");
    assert!(m["firewall"].1.contains("16514"), "{m:?}");
}

#[test]
fn verify_fails_each_debian12_check_with_a_reason() {
    let h = debian12("linux-bridge");
    // An earlier drop-in wins over hvseed's (sshd keeps the first value).
    fs::write(
        h.root.join("etc/ssh/sshd_config.d/00-aaa-site.conf"),
        "PermitRootLogin=no\n",
    )
    .unwrap();
    fs::remove_file(h.root.join("etc/systemd/system/libvirtd-tcp.socket")).unwrap();
    fs::write(h.dir.join("libvirtd-state"), "failed\n").unwrap();
    fs::write(h.dir.join("missing"), "vlan\nbridge-utils\n").unwrap();
    let conf = read(&h.root, "/etc/chrony/chrony.conf");
    fs::write(
        h.root.join("etc/chrony/chrony.conf"),
        conf.replace("server ntp1.lab.example.org iburst\n", ""),
    )
    .unwrap();
    h.bin(
        "iptables-save",
        &format!("cat <<'EOF'\n{}EOF", iptables_out("ubuntu1204", &[])),
    );
    let (ok, m) = h.verify();
    assert!(!ok);
    let failed = |name: &str, needle: &str| {
        let (ok, detail) = &m[name];
        assert!(!ok, "{name} should fail: {detail}");
        assert!(
            detail.contains(needle),
            "{name}: {detail:?} lacks {needle:?}"
        );
    };
    failed(
        "root-ssh-login",
        "PermitRootLogin no (/etc/ssh/sshd_config.d/00-aaa-site.conf)",
    );
    failed("libvirtd-sockets-masked", "libvirtd-tcp.socket");
    failed("libvirtd-running", "libvirtd.service is failed");
    failed("packages", "not installed: bridge-utils, vlan");
    failed(
        "ntp",
        "instead of the plan's 0.pool.ntp.org, ntp1.lab.example.org",
    );
    failed("firewall", "not accepted in ufw-user-input: 16514");
    assert!(
        m["bridges"].0 && m["apparmor"].0 && m["cloudstack-agent"].0,
        "{m:#?}"
    );
}

/// The runtime steps through systemd, for a debian12 host; ufw's boot-time loader in
/// the root logs beside systemctl, with the `ENABLED` it finds in ufw.conf.
fn debian12_runtime(h: &FakeHost) {
    runtime_fakes(h);
    // systemctl from FakeHost::new logs every call; keep it.
    let init = h.root.join("lib/ufw/ufw-init");
    fs::create_dir_all(init.parent().unwrap()).unwrap();
    fs::write(
        &init,
        format!(
            "#!/bin/sh\n. '{}'\necho \"ufw-init $* ENABLED=$ENABLED\" >> '{}'\n\
             [ -e \"${{0%/*}}/loaded\" ] && [ \"$1\" = start ] && \
             echo \"Firewall already started, use 'force-reload'\"; exit 0\n",
            h.root.join("etc/ufw/ufw.conf").display(),
            h.dir.join("systemctl.log").display()
        ),
    )
    .unwrap();
    fs::set_permissions(&init, fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn run_on_debian12_uses_systemd_and_disables_its_unit_when_ready() {
    let h = debian12("linux-bridge");
    debian12_runtime(&h);
    // ufw logs beside systemctl, so the order of the two shows.
    h.bin(
        "ufw",
        "d=\"${0%/*}/..\"; echo \"ufw $*\" >> \"$d/systemctl.log\"; echo \"ufw $*\" >> \"$d/runtime.log\"",
    );
    h.bin("ping", "exit 0");
    // bookworm names its profiles; only virt-aa-helper's is loaded.
    fs::create_dir_all(h.dir.join("sys/kernel/security/apparmor")).unwrap();
    fs::write(
        h.dir.join("sys/kernel/security/apparmor/profiles"),
        "virt-aa-helper (enforce)\n/usr/sbin/chronyd (enforce)\n",
    )
    .unwrap();
    unloads_from_the_list(&h);
    let wants = h
        .root
        .join("etc/systemd/system/multi-user.target.wants/hvseed-firstboot.service");
    assert!(fs::symlink_metadata(&wants).is_ok());
    h.run_passes();
    let calls = h.service_calls();
    assert_eq!(
        calls,
        [
            "systemctl stop networking.service",
            "systemctl start networking.service",
            // Once the gateway answered on the planned network: ufw enabled, its
            // rules loaded by its own loader.
            "ufw-init start ENABLED=yes",
            // libvirtd started at boot with the files of the offline step, its sockets
            // masked and inactive: no restart.
            "systemctl disable hvseed-firstboot.service",
        ]
    );
    let rt = fs::read_to_string(h.dir.join("runtime.log")).unwrap();
    assert!(!rt.contains("ufw --force enable"), "{rt}");
    assert!(read(&h.root, "/etc/ufw/ufw.conf").contains("\nENABLED=yes\n"));
    assert!(rt.contains("apparmor_parser -R") && rt.contains("usr.lib.libvirt.virt-aa-helper"));
    assert!(
        !rt.contains("usr.sbin.libvirtd"),
        "a profile not loaded was unloaded: {rt}"
    );
    let log = read(&h.root, "/var/log/hvseed-firstboot.log");
    assert!(log.contains("AppArmor profile usr.sbin.libvirtd is not loaded"));
    // Each step, the gateway wait, the checks and the whole run say how long they took.
    for step in [
        "ran systemctl start networking.service (",
        "management gateway 192.168.42.1 answers (",
        "checks ran (",
        "report written to /var/lib/hvseed/report.json: Ready (",
    ] {
        let line = log
            .lines()
            .find(|l| l.contains(step))
            .unwrap_or_else(|| panic!("no {step:?} line in the log:\n{log}"));
        let took = line.split(step).nth(1).unwrap();
        let secs = took.split(" s").next().unwrap();
        assert!(secs.parse::<f64>().is_ok() && secs.contains('.'), "{line}");
    }
    // The fake systemctl does not remove the link: the agent makes sure it is gone.
    assert!(fs::symlink_metadata(&wants).is_err(), "unit still enabled");
    assert!(h
        .root
        .join("etc/systemd/system/hvseed-firstboot.service")
        .exists());
}

#[test]
fn run_on_debian12_rolls_back_a_lost_gateway_and_keeps_its_unit() {
    let h = debian12("linux-bridge");
    debian12_runtime(&h);
    fs::create_dir_all(h.root.join("etc/hvseed")).unwrap();
    fs::write(
        h.root.join("etc/hvseed/firstboot.conf"),
        "gateway_tries = 1\n",
    )
    .unwrap();
    // The gateway answers only once the installer's files are back (its address).
    let installer = read(
        &repo_root().join("tests/fixtures/roots/debian12"),
        "/etc/network/interfaces",
    );
    h.bin(
        "ping",
        &format!(
            "while read -r l; do [ \"$l\" = 'address 192.168.40.11/24' ] && exit 0; done < '{}'; exit 1",
            h.root.join("etc/network/interfaces").display()
        ),
    );
    let out = h.cmd("run").output().unwrap();
    assert!(!out.status.success());
    assert_eq!(read(&h.root, "/etc/network/interfaces"), installer);
    let sc = fs::read_to_string(h.dir.join("systemctl.log")).unwrap();
    let net: Vec<&str> = sc.lines().filter(|l| l.contains("networking")).collect();
    assert_eq!(
        net,
        [
            "systemctl stop networking.service",
            "systemctl start networking.service",
            "systemctl stop networking.service",
            "systemctl start networking.service",
        ]
    );
    assert!(!sc.contains("disable"), "{sc}");
    let rt = fs::read_to_string(h.dir.join("runtime.log")).unwrap_or_default();
    assert!(
        !rt.contains("ufw --force enable"),
        "ufw enabled after the rollback: {rt}"
    );
    let report: hvseed_firstboot::report::Report =
        serde_json::from_str(&read(&h.root, "/var/lib/hvseed/report.json")).unwrap();
    let gw = &report.checks[0];
    assert!(
        !gw.ok && gw.detail.contains("gateway reachable now: true"),
        "{gw:?}"
    );
    assert!(fs::symlink_metadata(
        h.root
            .join("etc/systemd/system/multi-user.target.wants/hvseed-firstboot.service")
    )
    .is_ok());
}

#[test]
fn run_on_debian12_rolls_back_bridges_that_cannot_be_created() {
    let h = debian12("linux-bridge");
    debian12_runtime(&h);
    h.bin("ping", "exit 0");
    // bridge-utils missing: ifup cannot make the bridges; the gateway still answers.
    fs::remove_dir_all(h.dir.join("sys/class/net/cloudbr0")).unwrap();
    fs::write(h.dir.join("missing"), "bridge-utils\n").unwrap();
    let out = h.cmd("run").output().unwrap();
    assert!(!out.status.success());
    let report: hvseed_firstboot::report::Report =
        serde_json::from_str(&read(&h.root, "/var/lib/hvseed/report.json")).unwrap();
    let by = |n: &str| report.checks.iter().find(|c| c.name == n).unwrap();
    let gw = by("network-gateway");
    assert!(
        !gw.ok && gw.detail.contains("bridges cloudbr0 missing") && gw.detail.contains("restored"),
        "{gw:?}"
    );
    assert!(by("packages").detail.contains("bridge-utils"));
    assert_eq!(
        read(&h.root, "/etc/network/interfaces"),
        read(
            &repo_root().join("tests/fixtures/roots/debian12"),
            "/etc/network/interfaces"
        )
    );
}

/// ufw's rules loaded already (a later boot, ENABLED=yes at boot): the loader's `start`
/// loads nothing, so the agent reloads them.
#[test]
fn run_on_debian12_reloads_ufw_rules_loaded_already() {
    let h = debian12("linux-bridge");
    debian12_runtime(&h);
    h.bin("ping", "exit 0");
    fs::write(h.root.join("lib/ufw/loaded"), "").unwrap();
    h.run_passes();
    let sc = fs::read_to_string(h.dir.join("systemctl.log")).unwrap();
    let ufw: Vec<&str> = sc.lines().filter(|l| l.starts_with("ufw")).collect();
    assert_eq!(
        ufw,
        [
            "ufw-init start ENABLED=yes",
            "ufw-init force-reload ENABLED=yes"
        ]
    );
}

/// ufw's loader gives what `ufw enable` gives only with the logging rules the agent
/// wrote: another log level, or another default policy, and ufw enables itself.
#[test]
fn run_on_debian12_lets_ufw_enable_itself_for_another_log_level_or_policy() {
    for (file, from, to) in [
        ("/etc/ufw/ufw.conf", "LOGLEVEL=low", "LOGLEVEL=medium"),
        (
            "/etc/default/ufw",
            "DEFAULT_OUTPUT_POLICY=\"ACCEPT\"",
            "DEFAULT_OUTPUT_POLICY=\"DROP\"",
        ),
    ] {
        let h = debian12("linux-bridge");
        debian12_runtime(&h);
        h.bin(
            "ufw",
            "d=\"${0%/*}/..\"; echo \"ufw $*\" >> \"$d/systemctl.log\"",
        );
        h.bin("ping", "exit 0");
        let text = read(&h.root, file);
        assert!(text.contains(from), "{file}: {text}");
        fs::write(
            h.root.join(file.trim_start_matches('/')),
            text.replace(from, to),
        )
        .unwrap();
        h.run_passes();
        let sc = fs::read_to_string(h.dir.join("systemctl.log")).unwrap();
        assert!(sc.contains("ufw --force enable"), "{file}: {sc}");
        assert!(!sc.contains("ufw-init"), "{file}: {sc}");
        assert!(read(&h.root, "/var/log/hvseed-firstboot.log").contains("ufw enables itself"));
    }
}

/// libvirtd is restarted (the units re-read, its sockets stopped) when one of its
/// files changed in this run, or when one of its sockets is active; and only then.
#[test]
fn run_on_debian12_restarts_libvirtd_when_its_files_changed_or_a_socket_is_active() {
    let restart = [
        "systemctl daemon-reload",
        "systemctl stop libvirtd.socket libvirtd-ro.socket libvirtd-admin.socket \
         libvirtd-tcp.socket libvirtd-tls.socket",
        "systemctl restart libvirtd.service",
    ];
    let calls = |h: &FakeHost| -> Vec<String> {
        h.run_passes();
        fs::read_to_string(h.dir.join("systemctl.log"))
            .unwrap()
            .lines()
            .filter(|l| !l.contains("is-active") && !l.contains("networking"))
            .filter(|l| !l.contains("disable") && !l.starts_with("ufw"))
            .map(str::to_owned)
            .collect()
    };
    // A socket still active (started before the masks): restarted.
    let h = debian12("linux-bridge");
    debian12_runtime(&h);
    h.bin("ping", "exit 0");
    fs::write(h.dir.join("sockets-state"), "active\n").unwrap();
    assert_eq!(calls(&h), restart);
    assert!(read(&h.root, "/var/log/hvseed-firstboot.log").contains("restarting it"));
    // libvirtd.conf changed since the offline step: this run puts it back and restarts.
    let h = debian12("openvswitch");
    debian12_runtime(&h);
    h.bin("ping", "exit 0");
    let conf = h.root.join("etc/libvirt/libvirtd.conf");
    let text = fs::read_to_string(&conf).unwrap();
    fs::write(&conf, text.replace("listen_tcp = 1", "listen_tcp = 0")).unwrap();
    assert_eq!(calls(&h), restart);
    assert!(read(&h.root, "/var/log/hvseed-firstboot.log")
        .contains("changed by this run: /etc/libvirt/libvirtd.conf: restarting libvirtd"));
    // Neither: libvirtd keeps running.
    let h = debian12("linux-bridge");
    debian12_runtime(&h);
    h.bin("ping", "exit 0");
    assert!(calls(&h).is_empty());
    assert!(read(&h.root, "/var/log/hvseed-firstboot.log").contains("no restart"));
}

#[test]
fn run_on_debian12_reports_a_libvirtd_that_does_not_come_back() {
    let h = debian12("linux-bridge");
    debian12_runtime(&h);
    h.bin("ping", "exit 0");
    fs::write(h.dir.join("libvirtd-state"), "failed\n").unwrap();
    fs::write(h.dir.join("proc/net/tcp"), TCP.replace(":407D", ":407E")).unwrap();
    let out = h.cmd("run").output().unwrap();
    assert!(!out.status.success());
    let report: hvseed_firstboot::report::Report =
        serde_json::from_str(&read(&h.root, "/var/lib/hvseed/report.json")).unwrap();
    let by = |n: &str| report.checks.iter().find(|c| c.name == n).unwrap();
    assert!(by("network-gateway").ok);
    let lv = by("libvirtd-running");
    assert!(
        !lv.ok && lv.detail.contains("journalctl -u libvirtd"),
        "{lv:?}"
    );
    assert!(!by("libvirtd-listening").ok);
    // The network stays as planned (it works), the unit stays enabled for the next boot.
    assert!(read(&h.root, "/etc/network/interfaces").contains("# hvseed: begin"));
    assert!(fs::symlink_metadata(
        h.root
            .join("etc/systemd/system/multi-user.target.wants/hvseed-firstboot.service")
    )
    .is_ok());
}

#[test]
fn a_bad_settings_file_is_a_failed_check_naming_file_line_and_fix() {
    let h = debian12("linux-bridge");
    debian12_runtime(&h);
    h.bin("ping", "exit 0");
    fs::create_dir_all(h.root.join("etc/hvseed")).unwrap();
    fs::write(
        h.root.join("etc/hvseed/firstboot.conf"),
        "# lab\ngateway_tries = 0\n",
    )
    .unwrap();
    let out = h.cmd("run").output().unwrap();
    assert!(!out.status.success());
    let report: hvseed_firstboot::report::Report =
        serde_json::from_str(&read(&h.root, "/var/lib/hvseed/report.json")).unwrap();
    let s = report.checks.iter().find(|c| c.name == "settings").unwrap();
    assert!(
        !s.ok
            && s.detail
                .starts_with("/etc/hvseed/firstboot.conf:2: gateway_tries:")
            && s.detail.contains("1 to 60"),
        "{s:?}"
    );
}

/// bookworm's libvirt profiles are named `libvirtd` (with the child
/// `libvirtd//qemu_bridge_helper`) and `virt-aa-helper`, not by path as on precise:
/// a loaded one fails the check. The live Debian 12 host showed the names.
#[test]
fn verify_on_debian12_sees_libvirts_profiles_by_their_names() {
    let h = debian12("linux-bridge");
    fs::create_dir_all(h.dir.join("sys/kernel/security/apparmor")).unwrap();
    let list = h.dir.join("sys/kernel/security/apparmor/profiles");
    fs::write(
        &list,
        "libvirtd (enforce)\nlibvirtd//qemu_bridge_helper (enforce)\n/usr/sbin/chronyd (enforce)\n",
    )
    .unwrap();
    let (_, m) = h.verify();
    assert!(!m["apparmor"].0, "{:?}", m["apparmor"]);
    assert!(
        m["apparmor"]
            .1
            .contains("libvirtd, libvirtd//qemu_bridge_helper"),
        "{:?}",
        m["apparmor"]
    );
    fs::write(
        &list,
        "/usr/sbin/chronyd (enforce)\nlibvirt-5f2a (enforce)\n",
    )
    .unwrap();
    let (_, m) = h.verify();
    assert!(m["apparmor"].0, "{:?}", m["apparmor"]);
}

/// With AppArmor not active there is nothing to unload: no apparmor_parser call.
#[test]
fn run_on_debian12_without_apparmor_unloads_nothing() {
    let h = debian12("linux-bridge");
    debian12_runtime(&h);
    h.bin("ping", "exit 0");
    let _ = h.cmd("run").output().unwrap();
    let rt = fs::read_to_string(h.dir.join("runtime.log")).unwrap_or_default();
    assert!(!rt.contains("apparmor_parser"), "{rt}");
    assert!(read(&h.root, "/var/log/hvseed-firstboot.log")
        .contains("AppArmor is not active: no profile to unload"));
}

/// The installer's network as ifupdown left it on a fresh Debian 12 host: `lo` and the
/// trunk NIC (DHCP) up, with a stale dhclient pid file; no planned device yet. `ip` and
/// `ovs-vsctl` log what they are given, and `ip` makes the bridges it adds appear.
fn debian12_installer_network(h: &FakeHost) {
    let run = h.root.join("run/network");
    fs::create_dir_all(&run).unwrap();
    fs::write(run.join("ifstate"), "lo=lo\neth0=eth0\n").unwrap();
    fs::write(run.join("ifstate.lo"), "lo\n").unwrap();
    fs::write(run.join("ifstate.eth0"), "eth0\n").unwrap();
    fs::write(h.root.join("run/dhclient.eth0.pid"), "999999\n").unwrap();
    let net = h.dir.join("sys/class/net");
    for br in ["cloudbr0", "cloudbr1"] {
        fs::remove_dir_all(net.join(br)).unwrap();
    }
    fs::create_dir_all(net.join("eth0")).unwrap();
    h.bin(
        "ip",
        &format!(
            "echo \"ip $*\" >> '{log}'\n\
             while read -r a b c d rest; do\n\
               echo \"  $a $b $c $d $rest\" >> '{log}'\n\
               if [ \"$a $b $c\" = 'link add name' ]; then /bin/mkdir -p '{net}'/\"$d\"/bridge; fi\n\
             done",
            log = h.dir.join("net.log").display(),
            net = net.display()
        ),
    );
    h.bin(
        "ovs-vsctl",
        &format!(
            "case \"$1\" in --version) echo 'ovs-vsctl (Open vSwitch) 3.1.0'; exit 0;; br-exists) exit 0;; esac\n\
             echo \"ovs-vsctl $*\" >> '{}'\n\
             for a in \"$@\"; do case $a in --*|add-br|add-port|cloudbr|eth0|[0-9]*) ;; *) /bin/mkdir -p '{}'/\"$a\";; esac; done",
            h.dir.join("net.log").display(),
            net.display()
        ),
    );
}

/// A debian12 host at its first boot: the offline step applied, runtime fakes, the
/// installer's network up (or ifupdown's `ifstate` as given) and a gateway that answers.
fn debian12_first_boot(net: &str, ifstate: Option<&str>) -> FakeHost {
    let h = debian12(net);
    debian12_runtime(&h);
    debian12_installer_network(&h);
    if let Some(state) = ifstate {
        fs::write(h.root.join("run/network/ifstate"), state).unwrap();
    }
    h.bin("ping", "exit 0");
    h
}

#[test]
fn run_on_debian12_raises_the_planned_network_directly_and_keeps_ifupdowns_state() {
    let h = debian12_first_boot("linux-bridge", None);
    let out = h.cmd("run").output().unwrap();
    let log = read(&h.root, "/var/log/hvseed-firstboot.log");
    assert!(out.status.success(), "{log}");
    let sc = fs::read_to_string(h.dir.join("systemctl.log")).unwrap();
    assert!(!sc.contains("networking"), "{sc}");
    let net = fs::read_to_string(h.dir.join("net.log")).unwrap();
    // Two ip runs: the installer's NIC down, then the planned network in the order
    // ifup -a raises its stanzas.
    let want = [
        "ip -batch -",
        "  addr flush dev eth0 ",
        "  link set dev eth0 down",
        "ip -batch -",
        "  link set dev eth0 up",
        "  link add link eth0 name eth0.100 type vlan id 100",
    ];
    assert_eq!(
        net.lines().take(want.len()).collect::<Vec<_>>(),
        want,
        "{net}"
    );
    for l in [
        "  addr add 192.168.42.11/24 broadcast + dev eth0.100 label eth0.100\n",
        "  route add default via 192.168.42.1 dev eth0.100 onlink\n",
        "  link add name cloudbr0 type bridge\n",
        "  link set dev eth0.200 master cloudbr0\n",
        "  link set dev cloudbr0 type bridge stp_state 0 forward_delay 500\n",
        "  link set dev eth0.300 master cloudbr1\n",
    ] {
        assert!(net.contains(l), "{l:?} not in\n{net}");
    }
    // ifupdown's state as `ifup -a` leaves it: `ifdown -a` takes down what is listed,
    // the newest first.
    assert_eq!(
        read(&h.root, "/run/network/ifstate"),
        "lo=lo\neth0=eth0\neth0.100=eth0.100\ncloudbr0=cloudbr0\ncloudbr1=cloudbr1\n"
    );
    assert_eq!(read(&h.root, "/run/network/ifstate.cloudbr1"), "cloudbr1\n");
    assert_eq!(read(&h.root, "/run/network/ifstate.eth0.100"), "eth0.100\n");
    assert!(!h.root.join("run/dhclient.eth0.pid").exists());
    assert!(
        log.contains("installer's network down directly: eth0"),
        "{log}"
    );
    assert!(log.contains("planned network up directly"), "{log}");
}

#[test]
fn run_on_debian12_raises_open_vswitch_in_one_transaction() {
    let h = debian12_first_boot("openvswitch", None);
    let out = h.cmd("run").output().unwrap();
    let log = read(&h.root, "/var/log/hvseed-firstboot.log");
    let net = fs::read_to_string(h.dir.join("net.log")).unwrap_or_default();
    assert!(out.status.success(), "{log}\n{net}");
    let ovs: Vec<&str> = net.lines().filter(|l| l.starts_with("ovs-vsctl")).collect();
    assert_eq!(ovs.len(), 1, "{net}");
    assert!(
        ovs[0].contains(
            "-- --may-exist add-br cloudbr -- --may-exist add-port cloudbr eth0 \
             -- --may-exist add-br mgmt0 cloudbr 100 -- --may-exist add-br cloudbr0 cloudbr 200 \
             -- --may-exist add-br cloudbr1 cloudbr 300"
        ),
        "{net}"
    );
    assert_eq!(
        read(&h.root, "/run/network/ifstate"),
        "lo=lo\ncloudbr=cloudbr\neth0=eth0\nmgmt0=mgmt0\ncloudbr0=cloudbr0\ncloudbr1=cloudbr1\n"
    );
    assert!(
        net.contains("  addr add 192.168.42.11/24 broadcast + dev mgmt0 label mgmt0"),
        "{net}"
    );
}

#[test]
fn run_on_debian12_leaves_a_network_already_planned_to_ifupdown() {
    let h = debian12_first_boot(
        "linux-bridge",
        Some("lo=lo\neth0=eth0\neth0.100=eth0.100\n"),
    );
    let _ = h.cmd("run").output().unwrap();
    let log = read(&h.root, "/var/log/hvseed-firstboot.log");
    assert!(
        log.contains(
            "the network is changed through networking.service: ifupdown has eth0.100=eth0.100 up"
        ),
        "{log}"
    );
    let sc = fs::read_to_string(h.dir.join("systemctl.log")).unwrap();
    assert!(
        sc.contains("systemctl stop networking.service\nsystemctl start networking.service\n"),
        "{sc}"
    );
}

#[test]
fn run_on_debian12_leaves_the_network_ifupdown_raised_at_boot_from_unchanged_files() {
    // The offline step's files were in place at boot: ifup -a raised them.
    let h = debian12_first_boot(
        "linux-bridge",
        Some("lo=lo\neth0=eth0\neth0.100=eth0.100\ncloudbr0=cloudbr0\ncloudbr1=cloudbr1\n"),
    );
    let net = h.dir.join("sys/class/net");
    for d in ["eth0.100", "cloudbr0/bridge", "cloudbr1/bridge"] {
        fs::create_dir_all(net.join(d)).unwrap();
    }
    let out = h.cmd("run").output().unwrap();
    let log = read(&h.root, "/var/log/hvseed-firstboot.log");
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("the planned network is up already (ifupdown raised eth0 eth0.100 cloudbr0 cloudbr1 at boot"),
        "{log}"
    );
    let sc = fs::read_to_string(h.dir.join("systemctl.log")).unwrap();
    assert!(!sc.contains("networking"), "{sc}");
    assert!(!h.dir.join("net.log").exists(), "ip ran");

    // One of them missing from ifupdown's state: not what ifup -a raised.
    fs::write(
        h.root.join("run/network/ifstate"),
        "lo=lo\neth0=eth0\neth0.100=eth0.100\ncloudbr0=cloudbr0\n",
    )
    .unwrap();
    let _ = h.cmd("run").output().unwrap();
    let sc = fs::read_to_string(h.dir.join("systemctl.log")).unwrap();
    assert!(sc.contains("systemctl stop networking.service"), "{sc}");
}

// ------------------------------------------------------------------ el9

const EL9_CHECKS: [&str; 24] = [
    "x86-64",
    "cpu-virtualization",
    "memory",
    "nic",
    "fqdn",
    "packages",
    "ntp",
    "libvirt-version",
    "qemu-version",
    "openvswitch-version",
    "libvirtd-sockets-masked",
    "libvirt-modular-daemons-masked",
    "libvirtd-enabled",
    "libvirtd-running",
    "libvirtd-listening",
    "network-profiles",
    "bridges",
    "selinux",
    "firewalld-off",
    "firewall",
    "root-ssh-login",
    "cloudstack-agent",
    "no-vms",
    "cpu-facts",
];

/// hvseed's keyfiles under `root`: id → uuid.
fn el9_profiles(root: &Path) -> std::collections::BTreeMap<String, String> {
    let mut m = std::collections::BTreeMap::new();
    let dir = root.join("etc/NetworkManager/system-connections");
    for e in fs::read_dir(dir).unwrap() {
        let text = fs::read_to_string(e.unwrap().path()).unwrap();
        if !text.starts_with("# Written by hvseed-firstboot") {
            continue;
        }
        let kf = keyfile(&text);
        let get = |k: &str| {
            kf["connection"]
                .iter()
                .find(|(key, _)| key == k)
                .unwrap()
                .1
                .clone()
        };
        m.insert(get("id"), get("uuid"));
    }
    m
}

/// The `uuid=` of a keyfile's text.
fn keyfile_uuid(text: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix("uuid="))
        .unwrap()
        .to_string()
}

/// An EL9 host after anaconda's %post ran `apply` and it booted: NetworkManager
/// autoconnected every profile of the keyfiles (hvseed's and the site's).
fn el9(net: &str) -> FakeHost {
    let h = FakeHost::new("el9", net);
    offline_apply(&h);
    run_ok(
        Command::new(h.dir.join("bin/nmcli"))
            .args(["networking", "on"])
            .env("PATH", h.dir.join("bin")),
    );
    fs::remove_file(h.dir.join("nmcli.log")).unwrap();
    h
}

/// The nmcli calls of a run, less the queries.
fn nmcli_calls(h: &FakeHost) -> Vec<String> {
    fs::read_to_string(h.dir.join("nmcli.log"))
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.contains("--active"))
        .map(str::to_string)
        .collect()
}

#[test]
fn verify_passes_on_a_good_el9_host() {
    for net in ["linux-bridge", "openvswitch"] {
        let h = el9(net);
        let (ok, m) = h.verify();
        assert!(ok, "{net}: {m:#?}");
        let names: Vec<&str> = m.keys().map(String::as_str).collect();
        let mut want = EL9_CHECKS.to_vec();
        if net == "linux-bridge" {
            want.retain(|c| *c != "openvswitch-version");
        }
        want.sort();
        assert_eq!(names, want, "{net}");
        assert!(m["firewall"].1.contains("16514"), "{m:?}");
        assert!(m["qemu-version"].1.contains("8.2.0"), "{m:?}");
        assert!(m["ntp"].1.contains("ntp1.lab.example.org"), "{m:?}");
        assert!(
            m["root-ssh-login"].1.contains("00-hvseed-root-login.conf"),
            "{m:?}"
        );
        let profiles = &m["network-profiles"].1;
        if net == "openvswitch" {
            assert!(m["packages"].1.contains("NetworkManager-ovs"), "{m:?}");
            assert!(profiles.contains("mgmt0-if"), "{profiles}");
        } else {
            assert!(profiles.contains("eth0.100"), "{profiles}");
        }
    }
}

#[test]
fn verify_fails_each_el9_check_with_a_reason() {
    let h = el9("linux-bridge");
    fs::remove_file(h.root.join("etc/systemd/system/virtproxyd.socket")).unwrap();
    fs::remove_file(
        h.root
            .join("etc/systemd/system/multi-user.target.wants/libvirtd.service"),
    )
    .unwrap();
    fs::write(h.dir.join("firewalld-state"), "active\n").unwrap();
    fs::write(h.dir.join("missing"), "iptables-nft-services\n").unwrap();
    // NetworkManager did not activate the management VLAN.
    let mgmt = &el9_profiles(&h.root)["eth0.100"];
    let active = fs::read_to_string(h.dir.join("nm-active")).unwrap();
    fs::write(
        h.dir.join("nm-active"),
        active.replace(&format!("{mgmt}\n"), ""),
    )
    .unwrap();
    h.bin("getenforce", "echo Enforcing");
    h.bin(
        "iptables-save",
        &format!("cat <<'EOF'\n{}EOF", iptables_out("centos6", &[])),
    );
    let (ok, m) = h.verify();
    assert!(!ok);
    let failed = |name: &str, needle: &str| {
        let (ok, detail) = &m[name];
        assert!(!ok, "{name} should fail: {detail}");
        assert!(
            detail.contains(needle),
            "{name}: {detail:?} lacks {needle:?}"
        );
    };
    failed("libvirt-modular-daemons-masked", "virtproxyd.socket");
    failed("libvirtd-enabled", "systemctl enable libvirtd.service");
    failed("firewalld-off", "firewalld.service is active");
    failed("packages", "not installed: iptables-nft-services");
    failed(
        "network-profiles",
        "eth0.100 (/etc/NetworkManager/system-connections/eth0.100.nmconnection)",
    );
    failed("selinux", "enforcing");
    failed("firewall", "not accepted in INPUT: 16514");
    assert!(
        m["libvirtd-sockets-masked"].0 && m["bridges"].0 && m["cloudstack-agent"].0,
        "{m:#?}"
    );
}

#[test]
fn run_on_el9_leaves_the_network_networkmanager_raised_at_boot_and_disables_its_unit() {
    let h = el9("linux-bridge");
    runtime_fakes(&h);
    h.bin("ping", "exit 0");
    h.run_passes();
    // NetworkManager activated hvseed's profiles at boot from the files this run did
    // not change: nothing to reload or bring up.
    assert_eq!(nmcli_calls(&h), Vec::<String>::new());
    let log = read(&h.root, "/var/log/hvseed-firstboot.log");
    assert!(log.contains("the planned network is up already"), "{log}");
    let calls = h.service_calls();
    assert_eq!(
        calls,
        [
            // Once the gateway answered on the planned network.
            "systemctl stop firewalld.service",
            "systemctl restart iptables.service",
            // libvirtd started at boot with the files of the offline step and nothing
            // it replaces is active: no restart.
            "systemctl disable hvseed-firstboot.service",
        ]
    );
    let rt = fs::read_to_string(h.dir.join("runtime.log")).unwrap();
    assert!(rt.contains("setenforce permissive"), "{rt}");
    assert!(!rt.contains("iptables-restore"), "{rt}");
    let report: hvseed_firstboot::report::Report =
        serde_json::from_str(&read(&h.root, "/var/lib/hvseed/report.json")).unwrap();
    assert_eq!(report.status, hvseed_firstboot::report::ReportStatus::Ready);
    assert!(fs::symlink_metadata(
        h.root
            .join("etc/systemd/system/multi-user.target.wants/hvseed-firstboot.service")
    )
    .is_err());
}

/// An EL9 host booted with `selinux=0`: nothing to set (setenforce would fail).
#[test]
fn run_on_el9_leaves_a_disabled_selinux_alone() {
    let h = el9("linux-bridge");
    runtime_fakes(&h);
    h.bin("ping", "exit 0");
    h.bin("getenforce", "echo Disabled");
    h.run_passes();
    let rt = fs::read_to_string(h.dir.join("runtime.log")).unwrap_or_default();
    assert!(!rt.contains("setenforce"), "{rt}");
    let log = read(&h.root, "/var/log/hvseed-firstboot.log");
    assert!(log.contains("SELinux is disabled"), "{log}");
}

#[test]
fn run_on_el9_brings_up_each_profile_networkmanager_has_not_activated() {
    let h = el9("linux-bridge");
    runtime_fakes(&h);
    h.bin("ping", "exit 0");
    // Only the installer's network and the site's eth1 are up.
    fs::write(h.dir.join("nm-active"), "").unwrap();
    h.run_passes();
    let ids = el9_profiles(&h.root);
    let up = |id: &str| format!("nmcli connection up uuid {}", ids[id]);
    // The trunk first (it replaces the installer's profile on eth0), then the
    // management VLAN, then the bridge ports, which bring their bridges.
    assert_eq!(
        nmcli_calls(&h),
        [up("eth0"), up("eth0.100"), up("eth0.200"), up("eth0.300")]
    );
}

/// A keyfile this run rewrote (here: one that went missing) would leave its active
/// profile on the old settings: NetworkManager's connections are restarted.
#[test]
fn run_on_el9_restarts_networkmanagers_connections_when_it_changed_a_keyfile() {
    let h = el9("linux-bridge");
    runtime_fakes(&h);
    h.bin("ping", "exit 0");
    fs::remove_file(
        h.root
            .join("etc/NetworkManager/system-connections/cloudbr1.nmconnection"),
    )
    .unwrap();
    h.run_passes();
    assert_eq!(
        nmcli_calls(&h),
        [
            "nmcli networking off",
            "nmcli connection reload",
            "nmcli networking on"
        ]
    );
    let log = read(&h.root, "/var/log/hvseed-firstboot.log");
    assert!(
        log.contains(
            "changed by this run: /etc/NetworkManager/system-connections/cloudbr1.nmconnection"
        ),
        "{log}"
    );
}

#[test]
fn run_on_el9_restarts_libvirtd_when_a_modular_daemon_is_active() {
    let h = el9("linux-bridge");
    runtime_fakes(&h);
    h.bin("ping", "exit 0");
    fs::write(h.dir.join("units-state"), "active\n").unwrap();
    let out = h.cmd("run").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let sc = fs::read_to_string(h.dir.join("systemctl.log")).unwrap();
    let stop = sc
        .lines()
        .find(|l| l.starts_with("systemctl stop libvirtd.socket"))
        .unwrap_or_else(|| panic!("{sc}\n{err}"));
    for u in [
        "virtproxyd.socket",
        "virtqemud.service",
        "virtstoraged-admin.socket",
    ] {
        assert!(stop.split_whitespace().any(|w| w == u), "{stop}");
    }
    assert!(sc.contains("systemctl restart libvirtd.service"), "{sc}");
}

/// An EL9 host (`el9(net)`) whose first boot tries its gateway once, with no profile
/// active yet.
fn el9_one_gateway_try(net: &str) -> FakeHost {
    let h = el9(net);
    runtime_fakes(&h);
    fs::write(h.dir.join("nm-active"), "").unwrap();
    fs::create_dir_all(h.root.join("etc/hvseed")).unwrap();
    fs::write(
        h.root.join("etc/hvseed/firstboot.conf"),
        "gateway_tries = 1\n",
    )
    .unwrap();
    h
}

/// The gateway answers only once the profile `uuid` is active.
fn el9_gateway_behind(h: &FakeHost, uuid: &str) {
    h.bin(
        "ping",
        &format!(
            "while read -r u; do [ \"$u\" = '{uuid}' ] && exit 0; done < '{}'; exit 1",
            h.dir.join("nm-active").display()
        ),
    );
}

#[test]
fn run_on_el9_rolls_back_a_lost_gateway_and_keeps_its_unit() {
    let h = el9_one_gateway_try("linux-bridge");
    // A PXE install: anaconda marked the trunk NIC's DHCP profile, which the
    // initramfs had used, to autoconnect. The gateway answers only once that profile is
    // back and active.
    let keyfile = "etc/NetworkManager/system-connections/eth0.nmconnection";
    let backup = h
        .root
        .join("var/lib/hvseed/orig")
        .join(format!("{keyfile}.hvseed-orig"));
    let installer = fs::read_to_string(&backup)
        .unwrap()
        .replace("autoconnect=false\n", "");
    fs::write(&backup, &installer).unwrap();
    el9_gateway_behind(&h, &keyfile_uuid(&installer));
    let ids = el9_profiles(&h.root);
    let out = h.cmd("run").output().unwrap();
    assert!(!out.status.success());
    assert_eq!(read(&h.root, keyfile), installer);
    assert_eq!(
        read(
            &h.root,
            "/etc/NetworkManager/system-connections/eth0.100.nmconnection"
        ),
        read(
            &repo_root().join("tests/fixtures/roots/el9"),
            "/etc/NetworkManager/system-connections/eth0.100.nmconnection"
        )
    );
    // hvseed's own profiles are out of NetworkManager's directory.
    for id in ["eth0.200", "eth0.300", "cloudbr0", "cloudbr1"] {
        let name = format!("{id}.nmconnection");
        assert!(!h
            .root
            .join("etc/NetworkManager/system-connections")
            .join(&name)
            .exists());
        assert!(h
            .root
            .join(format!(
                "var/lib/hvseed/failed/etc_NetworkManager_system-connections_{name}"
            ))
            .exists());
    }
    let calls = nmcli_calls(&h);
    let up = |id: &str| format!("nmcli connection up uuid {}", ids[id]);
    assert_eq!(
        calls,
        [
            up("eth0"),
            up("eth0.100"),
            up("eth0.200"),
            up("eth0.300"),
            "nmcli networking off".to_string(),
            "nmcli connection reload".to_string(),
            "nmcli networking on".to_string(),
        ]
    );
    let sc = fs::read_to_string(h.dir.join("systemctl.log")).unwrap();
    assert!(
        !sc.contains("iptables.service"),
        "hvseed's firewall loaded after the rollback: {sc}"
    );
    assert!(!sc.contains("disable"), "{sc}");
    let report: hvseed_firstboot::report::Report =
        serde_json::from_str(&read(&h.root, "/var/lib/hvseed/report.json")).unwrap();
    let gw = &report.checks[0];
    assert!(
        !gw.ok && gw.detail.contains("gateway reachable now: true"),
        "{gw:?}"
    );
    assert!(fs::symlink_metadata(
        h.root
            .join("etc/systemd/system/multi-user.target.wants/hvseed-firstboot.service")
    )
    .is_ok());
    // The next boot's apply puts the planned profiles back for another try.
    offline_apply(&h);
    assert_eq!(el9_profiles(&h.root), ids);
}

/// A DVD install with Open vSwitch: the installer's management VLAN profile, which
/// autoconnects, was retired by the offline step (kept only as its backup); when the
/// gateway is lost, the rollback restores it and the host is reachable on its management
/// address again.
#[test]
fn run_on_el9_openvswitch_rolls_back_to_the_installers_management_vlan() {
    let h = el9_one_gateway_try("openvswitch");
    let keyfile = "/etc/NetworkManager/system-connections/eth0.100.nmconnection";
    assert!(!h.root.join(&keyfile[1..]).exists(), "retired offline");
    let installer = read(&repo_root().join("tests/fixtures/roots/el9"), keyfile);
    el9_gateway_behind(&h, &keyfile_uuid(&installer));
    let out = h.cmd("run").output().unwrap();
    assert!(!out.status.success());
    assert_eq!(read(&h.root, keyfile), installer);
    for id in ["mgmt0-if", "cloudbr0", "cloudbr1"] {
        assert!(!h
            .root
            .join("etc/NetworkManager/system-connections")
            .join(format!("{id}.nmconnection"))
            .exists());
    }
    let report: hvseed_firstboot::report::Report =
        serde_json::from_str(&read(&h.root, "/var/lib/hvseed/report.json")).unwrap();
    let gw = &report.checks[0];
    assert!(
        !gw.ok && gw.detail.contains("gateway reachable now: true"),
        "{gw:?}"
    );
    // The next boot's apply retires it again.
    offline_apply(&h);
    assert!(!h.root.join(&keyfile[1..]).exists());
}

/// Debian 12's checks, and the two Ubuntu ≥ 22.04 adds: cloud-init's network off and
/// sshd taking root's password.
fn ubuntu_checks() -> Vec<&'static str> {
    let mut v = DEBIAN12_CHECKS.to_vec();
    v.extend(["cloud-init-network", "root-ssh-password"]);
    v.sort();
    v
}

/// An Ubuntu 22.04 / 24.04 host after the autoinstall's late command ran `apply`, with
/// systemd's runtime fakes and a `netplan` that logs beside systemctl.
fn ubuntu(os: &str, net: &str) -> FakeHost {
    let h = FakeHost::new(os, net);
    offline_apply(&h);
    debian12_runtime(&h);
    h.bin(
        "netplan",
        "echo \"netplan $*\" >> \"${0%/*}/../systemctl.log\"",
    );
    h
}

/// The devices networkd raised at boot from hvseed's netplan file.
fn planned_devices_up(h: &FakeHost, net: &str) {
    let devs: &[&str] = if net == "linux-bridge" {
        &[
            "eth0", "eth0.100", "eth0.200", "eth0.300", "cloudbr0", "cloudbr1",
        ]
    } else {
        &["eth0", "cloudbr", "mgmt0", "cloudbr0", "cloudbr1"]
    };
    for d in devs {
        fs::create_dir_all(h.dir.join("sys/class/net").join(d)).unwrap();
    }
}

#[test]
fn verify_passes_on_good_ubuntu2204_and_2404_hosts() {
    for (os, net) in [
        ("ubuntu2204", "linux-bridge"),
        ("ubuntu2404", "openvswitch"),
    ] {
        let h = ubuntu(os, net);
        let (ok, m) = h.verify();
        assert!(ok, "{os}: {m:#?}");
        let names: Vec<&str> = m.keys().map(String::as_str).collect();
        let mut want = ubuntu_checks();
        if net == "linux-bridge" {
            want.retain(|c| *c != "openvswitch-version");
        }
        assert_eq!(names, want, "{os}");
        assert!(m["packages"].1.contains("netplan.io"), "{m:?}");
        assert!(
            m["root-ssh-password"].1.contains(
                "PasswordAuthentication yes (/etc/ssh/sshd_config.d/00-hvseed-root-login.conf)"
            ),
            "{m:?}"
        );
        assert!(m["cloud-init-network"].1.contains("disabled"), "{m:?}");
        assert!(m["firewall"].1.contains("16514"), "{m:?}");
    }
}

#[test]
fn verify_fails_ubuntu_checks_with_a_reason() {
    let h = ubuntu("ubuntu2404", "linux-bridge");
    // A drop-in read before hvseed's refuses passwords; cloud-init's network is on.
    fs::write(
        h.root.join("etc/ssh/sshd_config.d/00-aaa-site.conf"),
        "PasswordAuthentication no\n",
    )
    .unwrap();
    fs::remove_file(h.root.join("etc/cloud/cloud.cfg.d/99-hvseed-network.cfg")).unwrap();
    let (ok, m) = h.verify();
    assert!(!ok);
    let (pw_ok, pw) = &m["root-ssh-password"];
    assert!(
        !pw_ok
            && pw.contains("PasswordAuthentication no (/etc/ssh/sshd_config.d/00-aaa-site.conf)"),
        "{pw}"
    );
    let (ci_ok, ci) = &m["cloud-init-network"];
    assert!(
        !ci_ok && ci.contains("99-hvseed-network.cfg") && ci.contains("50-cloud-init.yaml"),
        "{ci}"
    );
    assert!(m["root-ssh-login"].0, "{m:#?}");
}

#[test]
fn run_on_ubuntu_leaves_the_network_networkd_raised_at_boot_and_disables_its_unit() {
    for os in ["ubuntu2204", "ubuntu2404"] {
        let h = ubuntu(os, "linux-bridge");
        planned_devices_up(&h, "linux-bridge");
        h.bin("ping", "exit 0");
        let out = h.cmd("run").output().unwrap();
        assert!(
            out.status.success(),
            "{os}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let calls = h.service_calls();
        assert_eq!(
            calls,
            [
                "ufw-init start ENABLED=yes",
                "systemctl disable hvseed-firstboot.service",
            ],
            "{os}"
        );
        let log = read(&h.root, "/var/log/hvseed-firstboot.log");
        assert!(log.contains("the planned network is up already"), "{log}");
    }
}

#[test]
fn run_on_ubuntu_applies_netplan_when_the_planned_network_is_not_up() {
    let h = ubuntu("ubuntu2204", "openvswitch");
    h.bin("ping", "exit 0");
    h.run_passes();
    let calls = h.service_calls();
    assert_eq!(
        calls,
        [
            "netplan apply",
            "ufw-init start ENABLED=yes",
            "systemctl disable hvseed-firstboot.service",
        ]
    );
}

/// The installer's network in `layout`: "jammy" (00-installer-config.yaml and
/// cloud-init's network disabled by subiquity), "cloud-init" (90-installer-network.cfg
/// only, not rendered yet, as when the offline step runs), "rendered" (also the
/// 50-cloud-init.yaml cloud-init renders from it at boot, as on a host booted once).
fn installer_network_layout(root: &Path, layout: &str) {
    let fixtures = repo_root().join("tests/fixtures/roots");
    let yaml = root.join("etc/netplan/00-installer-config.yaml");
    let nonet = root.join("etc/cloud/cloud.cfg.d/subiquity-disable-cloudinit-networking.cfg");
    let cfg = root.join("etc/cloud/cloud.cfg.d/90-installer-network.cfg");
    for f in [&yaml, &nonet, &cfg] {
        let _ = fs::remove_file(f);
    }
    let put = |path: &Path, text: &str| {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
    };
    if layout == "jammy" {
        let from = fixtures.join("ubuntu2204");
        put(&yaml, &read(&from, "/etc/netplan/00-installer-config.yaml"));
        put(
            &nonet,
            &read(
                &from,
                "/etc/cloud/cloud.cfg.d/subiquity-disable-cloudinit-networking.cfg",
            ),
        );
        return;
    }
    let text = read(
        &fixtures.join("ubuntu2404"),
        "/etc/cloud/cloud.cfg.d/90-installer-network.cfg",
    );
    put(&cfg, &text);
    if layout == "rendered" {
        // cloud-init's netplan renderer: its header, then the network document.
        let doc = text.split_once("network:\n").unwrap().1;
        put(
            &root.join("etc/netplan/50-cloud-init.yaml"),
            &format!(
                "# This file is generated from information provided by the datasource.  Changes\n\
                 # to it will not persist across an instance reboot.  To disable cloud-init's\n\
                 # network configuration capabilities, write a file\n\
                 # /etc/cloud/cloud.cfg.d/99-disable-network-config.cfg with the following:\n\
                 # network: {{config: disabled}}\nnetwork:\n{doc}"
            ),
        );
    }
}

/// A lost gateway on every installer layout, whichever release (a 22.04 medium with a
/// newer cloud-init leaves 24.04's layout): the installer's network comes back as it
/// was (its netplan file from the backup; on cloud-init's layout with nothing rendered
/// yet, the file cloud-init renders from 90-installer-network.cfg), hvseed's files go
/// to /var/lib/hvseed/failed, netplan applies the result, no firewall is loaded and the
/// unit stays enabled. netplan's generator reads the restored network.
#[test]
fn run_on_ubuntu_rolls_back_a_lost_gateway_on_both_installer_layouts() {
    for (os, layout) in [
        ("ubuntu2204", "jammy"),
        ("ubuntu2404", "cloud-init"),
        ("ubuntu2204", "cloud-init"),
        ("ubuntu2404", "rendered"),
    ] {
        let h = FakeHost::new(os, "linux-bridge");
        installer_network_layout(&h.root, layout);
        let keep = tempfile::tempdir().unwrap();
        let orig = keep.path().join("root");
        assert!(Command::new("cp")
            .arg("-a")
            .arg(&h.root)
            .arg(&orig)
            .status()
            .unwrap()
            .success());
        offline_apply(&h);
        debian12_runtime(&h);
        h.bin(
            "netplan",
            "echo \"netplan $*\" >> \"${0%/*}/../systemctl.log\"",
        );
        let os = format!("{os} ({layout})");
        fs::create_dir_all(h.root.join("etc/hvseed")).unwrap();
        fs::write(
            h.root.join("etc/hvseed/firstboot.conf"),
            "gateway_tries = 1\n",
        )
        .unwrap();
        // The gateway answers only without hvseed's file and with an installer's.
        let np = h.root.join("etc/netplan");
        h.bin(
            "ping",
            &format!(
                "[ -e '{0}/60-hvseed.yaml' ] && exit 1; \
                 [ -e '{0}/00-installer-config.yaml' ] || [ -e '{0}/50-cloud-init.yaml' ]",
                np.display()
            ),
        );
        let out = h.cmd("run").output().unwrap();
        assert!(!out.status.success(), "{os}");
        let calls = h.service_calls();
        assert_eq!(calls, ["netplan apply", "netplan apply"], "{os}");
        let mode = |p: &str| {
            fs::metadata(h.root.join(&p[1..]))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        let cfg = "/etc/cloud/cloud.cfg.d/90-installer-network.cfg";
        let restored = match layout {
            "jammy" | "rendered" => {
                let f = if layout == "jammy" {
                    "/etc/netplan/00-installer-config.yaml"
                } else {
                    "/etc/netplan/50-cloud-init.yaml"
                };
                assert_eq!(read(&h.root, f), read(&orig, f), "{os}");
                f
            }
            _ => {
                let f = "/etc/netplan/50-cloud-init.yaml";
                assert_eq!(read(&h.root, f), read(&orig, cfg), "{os}");
                f
            }
        };
        if layout != "jammy" {
            assert_eq!(read(&h.root, cfg), read(&orig, cfg), "{os}: untouched");
        }
        assert_eq!(mode(restored), 0o600, "{os}: {restored}");
        for gone in [
            "etc/netplan/60-hvseed.yaml",
            "etc/cloud/cloud.cfg.d/99-hvseed-network.cfg",
        ] {
            assert!(!h.root.join(gone).exists(), "{os}: {gone}");
            let moved = format!("var/lib/hvseed/failed/{}", gone.replace('/', "_"));
            assert!(h.root.join(&moved).exists(), "{os}: {moved}");
        }
        assert!(
            !calls.iter().any(|c| c.contains("ufw")),
            "{os}: firewall loaded: {calls:?}"
        );
        let report: hvseed_firstboot::report::Report =
            serde_json::from_str(&read(&h.root, "/var/lib/hvseed/report.json")).unwrap();
        let gw = &report.checks[0];
        assert!(
            !gw.ok && gw.detail.contains("gateway reachable now: true"),
            "{os}: {gw:?}"
        );
        assert!(fs::symlink_metadata(
            h.root
                .join("etc/systemd/system/multi-user.target.wants/hvseed-firstboot.service")
        )
        .is_ok());
        // netplan reads the installer's network back: the management VLAN's address.
        if let Some((files, stderr)) = netplan_networkd(&h.root) {
            assert_eq!(stderr.trim(), "", "{os}");
            let nw = &files["10-netplan-eth0.100.network"];
            assert!(
                nw.lines().any(|l| l == "Address=192.168.42.11/24"),
                "{os}: {nw}"
            );
        }
        // The next boot's run puts hvseed's network back, the installer's retired again.
        run_ok(
            agent()
                .arg("apply")
                .arg("--plan")
                .arg(&h.plan)
                .arg("--root")
                .arg(&h.root),
        );
        let names: Vec<String> = fs::read_dir(&np)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".yaml"))
            .collect();
        assert_eq!(names, ["60-hvseed.yaml"], "{os}");
    }
}
