//! A Debian 12 CloudStack host installed ([`super::install`]) and first-booted for real
//! under QEMU: systemd, ifupdown, libvirt, Open vSwitch, ufw, AppArmor and chrony of
//! bookworm, the agent's `run` as the first-boot unit, booted through `hvseed vm`
//! ([`super::guest`]). Its NIC is on a trunk: `hvseed vm --netns` carries the
//! management VLAN and the installer's untagged network to the taps of the test's
//! namespace. Everything is checked from outside the guest: the report
//! `hvseed serve` received, virsh over TCP, ping, TCP connects, ssh as root.

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use super::guest::{Guest, GuestSpec};
use super::image::{lossy, Disk, Extra};
use super::install::{
    self, installed_disk, render, NetKind, Rendered, FQDN, INSTALLER_NET, PLACEHOLDER_VERSION,
};
use super::net::{Netns, UNTAGGED};
use crate::support::output_within_secs;
use crate::util::{self, KillOnDrop};

const FAIL: &[&str] = &[
    "Kernel panic",
    "emergency mode",
    "Give root password for maintenance",
];

/// The site's agent setting written onto the host (docs/firstboot.md): this lab's
/// gateway answers at once, or never.
const FIRSTBOOT_CONF: &str =
    "# The test lab's gateway answers within seconds, or never.\ngateway_tries = 3\n";

/// CloudStack needs 4 GB (the `memory` check).
const GUEST_MIB: u32 = 4096;

/// A port hvseed does not open.
const CLOSED_PORT: u16 = 8080;

/// Checks that cannot pass here without a placeholder, and why.
const CANNOT_PASS_HERE: &[(&str, &str)] = &[(
    "cloudstack-agent",
    "the CloudStack repository is not reachable here",
)];

/// Lines of the agent on the serial console with the time (since power-on) this test
/// first saw them: the outside view of the first-boot run, for the time split.
#[derive(Default)]
struct Timeline {
    seen: usize,
    lines: Vec<(Duration, String)>,
}

impl Timeline {
    fn poll(&mut self, guest: &Guest) {
        let text = guest.console();
        let lines: Vec<&str> = text.lines().collect();
        // A last line without its newline may still be growing.
        let done = if text.ends_with('\n') {
            lines.len()
        } else {
            lines.len().saturating_sub(1)
        };
        for l in &lines[self.seen.min(done)..done] {
            if let Some(i) = l.find("hvseed-firstboot: ") {
                self.lines
                    .push((guest.uptime(), l[i..].trim_end().to_owned()));
            }
        }
        self.seen = self.seen.max(done);
    }

    fn first(&self, needle: &str) -> Option<Duration> {
        self.lines
            .iter()
            .find(|(_, l)| l.contains(needle))
            .map(|(t, _)| *t)
    }

    fn last(&self, needle: &str) -> Option<Duration> {
        self.lines
            .iter()
            .rev()
            .find(|(_, l)| l.contains(needle))
            .map(|(t, _)| *t)
    }

    fn text(&self) -> String {
        self.lines
            .iter()
            .map(|(t, l)| format!("{:7.1}s {l}\n", t.as_secs_f64()))
            .collect()
    }
}

/// One live host: its disk, namespace (with the taps of its trunk) and `hvseed serve`.
struct Lab {
    work: tempfile::TempDir,
    r: Rendered,
    disk: Disk,
    ns: Netns,
    serve_dir: PathBuf,
    _serve: KillOnDrop,
    /// The installer network's DHCP server (answers again after a rollback).
    _dhcp: KillOnDrop,
    key: PathBuf,
}

/// Sets up a host of `kind`; `mgmt_gateway`: whether the namespace answers as the
/// management gateway on its VLAN. None when live tests cannot run here (said loudly).
fn lab(kind: NetKind, placeholders: &[&str], mgmt_gateway: bool) -> Option<Lab> {
    if !super::ready("the Debian 12 live host test") || !super::di::available() {
        return None;
    }
    if crate::support::tool("virsh", "libvirt-clients").is_none()
        || crate::support::tool("ssh", "openssh-client").is_none()
    {
        return None;
    }
    let agent = util::agent()?;
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let r = render(work.path(), kind);
    let extras = [Extra::new(
        "/etc/hvseed/firstboot.conf",
        0o644,
        FIRSTBOOT_CONF,
    )];
    let disk = installed_disk(&r, kind, &agent, &extras, placeholders, work.path());
    if let Some(t) = disk.built_in {
        eprintln!(
            "live: debian12 {} image made in {t:.1?}",
            kind.inventory_value()
        );
    }

    // The trunk's taps, made here before any boot so that their addresses, the DHCP
    // server and `hvseed serve` are in place first and stay across boots: `hvseed vm
    // --netns` carries the guest's frames to them.
    let ns = Netns::new();
    let vlan = r.management_vlan();
    ns.persistent_taps(&[&format!("vlan{vlan}"), UNTAGGED]);
    if mgmt_gateway {
        ns.ip(&[
            "addr",
            "add",
            &format!(
                "{}/{}",
                r.management_gateway(),
                r.plan["network"]["management"]["prefix"]
            ),
            "dev",
            &format!("vlan{vlan}"),
        ]);
    }
    ns.ip(&[
        "addr",
        "add",
        &format!("{}/{}", INSTALLER_NET.gateway, INSTALLER_NET.prefix),
        "dev",
        UNTAGGED,
    ]);
    let dhcp = install::dhcp_server(&ns, UNTAGGED, &r.mac(), work.path());
    let serve_dir = work.path().join("serve");
    install::serve_tree(&r, &agent, &serve_dir);
    let serve = install::serve(&ns, &serve_dir, &work.path().join("serve.log"));
    let key = work.path().join("id_ed25519");
    std::fs::copy(util::root().join(install::TEST_KEY), &key).unwrap();
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    Some(Lab {
        work,
        r,
        disk,
        ns,
        serve_dir,
        _serve: serve,
        _dhcp: dhcp,
        key,
    })
}

impl Lab {
    fn boot(&self, name: &str) -> Guest {
        let dir = self.work.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        // The first boot's overlay on the cached image, written by the boots after.
        let overlay = self.work.path().join("disk.qcow2");
        Guest::boot(
            &GuestSpec {
                inventory: &self.work.path().join("inventory.yaml"),
                fqdn: FQDN,
                kernel: &self.disk.kernel,
                initrd: &self.disk.initrd,
                disk: &overlay,
                image: &self.disk.image,
                netns: self.ns.name(),
                append: "",
                memory_mib: GUEST_MIB,
            },
            &dir,
        )
    }

    fn report_path(&self) -> PathBuf {
        self.serve_dir.join("reports").join(format!("{FQDN}.json"))
    }

    /// Waits for the report to reach `hvseed serve`; the time since power-on.
    fn wait_report(
        &self,
        guest: &mut Guest,
        timeline: &mut Timeline,
        limit: Duration,
    ) -> (serde_json::Value, Duration) {
        let start = Instant::now();
        loop {
            timeline.poll(guest);
            if let Err(e) = guest.check(FAIL) {
                guest.fail(&format!("{e}\n{}", timeline.text()));
            }
            if let Ok(bytes) = std::fs::read(self.report_path()) {
                if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) {
                    let at = guest.uptime();
                    // The agent's own lines up to the end of its run.
                    let until = Instant::now() + Duration::from_secs(15);
                    while Instant::now() < until && timeline.first("first-boot job").is_none() {
                        std::thread::sleep(Duration::from_millis(200));
                        timeline.poll(guest);
                    }
                    return (v, at);
                }
            }
            if start.elapsed() > limit {
                guest.fail(&format!(
                    "no report at {} within {limit:?}; trunk: {}\n---- agent ----\n{}\n---- hvseed serve ----\n{}",
                    self.report_path().display(),
                    self.ns.tap_stats(),
                    timeline.text(),
                    std::fs::read_to_string(self.work.path().join("serve.log")).unwrap_or_default()
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `ssh root@ip cmd` from the namespace with the inventory's (test) key.
    fn ssh(&self, ip: &str, cmd: &str) -> Output {
        output_within_secs(
            self.ns.command("ssh").arg("-i").arg(&self.key).args([
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "BatchMode=yes",
                "-o",
                "ConnectTimeout=10",
                "-o",
                "LogLevel=ERROR",
                // One connection for all the calls: each key exchange takes seconds
                // under TCG.
                "-o",
                "ControlMaster=auto",
                "-o",
                &format!("ControlPath={}/ssh-%h", self.work.path().display()),
                "-o",
                "ControlPersist=30",
                &format!("root@{ip}"),
                cmd,
            ]),
            60,
        )
    }

    /// `ssh`, which must succeed; its stdout.
    fn ssh_ok(&self, guest: &Guest, ip: &str, cmd: &str) -> String {
        let o = self.ssh(ip, cmd);
        if !o.status.success() {
            guest.fail(&format!(
                "ssh root@{ip} {cmd:?}: {}\n{}{}",
                o.status,
                lossy(&o.stdout),
                lossy(&o.stderr)
            ));
        }
        lossy(&o.stdout)
    }

    /// Waits until ssh logs in as root on `ip`.
    fn wait_ssh(&self, guest: &mut Guest, ip: &str, limit: Duration) -> Duration {
        let start = Instant::now();
        loop {
            if let Err(e) = guest.check(FAIL) {
                guest.fail(&e);
            }
            if self
                .ns
                .wait_tcp(format!("{ip}:22").parse().unwrap(), Duration::from_secs(3))
                .is_ok()
                && self.ssh(ip, "true").status.success()
            {
                return guest.uptime();
            }
            if start.elapsed() > limit {
                guest.fail(&format!(
                    "no ssh login on {ip} within {limit:?}; trunk: {}",
                    self.ns.tap_stats()
                ));
            }
        }
    }
}

/// bookworm's libvirtd profile, loaded by hand (its `disable/` link out of the way for
/// the moment), fails the agent's `apparmor` check under the kernel's name for it; once
/// unloaded the check passes again.
fn apparmor_check_sees_a_loaded_libvirtd_profile(lab: &Lab, guest: &Guest, ip: &str) {
    let profile = "/etc/apparmor.d/usr.sbin.libvirtd";
    let link = "/etc/apparmor.d/disable/usr.sbin.libvirtd";
    let loaded = lab.ssh_ok(
        guest,
        ip,
        &format!(
            "t=$(readlink {link}) && rm {link} && apparmor_parser -r {profile}; rc=$?; \
             ln -s \"$t\" {link}; grep libvirtd /sys/kernel/security/apparmor/profiles; exit $rc"
        ),
    );
    eprintln!("live: loaded by hand: {}", loaded.trim());
    let verify = |guest: &Guest| -> serde_json::Value {
        let o = lab.ssh(
            ip,
            "hvseed-firstboot verify --plan /etc/hvseed/plan.json --json",
        );
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
            guest.fail(&format!(
                "verify --json: {e}: {}{}",
                lossy(&o.stdout),
                lossy(&o.stderr)
            ))
        })
    };
    let aa = |v: &serde_json::Value| {
        checks(v)
            .into_iter()
            .find(|(n, _, _)| n == "apparmor")
            .expect("no apparmor check")
    };
    let (_, ok, detail) = aa(&verify(guest));
    assert!(
        !ok && detail.contains("libvirtd"),
        "apparmor with libvirtd loaded: {detail}"
    );
    lab.ssh_ok(guest, ip, &format!("apparmor_parser -R {profile}"));
    let (_, ok, detail) = aa(&verify(guest));
    assert!(ok, "apparmor after unloading: {detail}");
}

/// The firewall the agent loaded (ufw's boot-time loader over the files it wrote) is
/// what ufw's own `ufw --force enable` loads from them, rule for rule
/// (`iptables-save`, `ip6tables-save`, counters aside), and ufw leaves both rules files
/// as the agent wrote them.
fn firewall_is_what_ufw_enable_loads(lab: &Lab, guest: &Guest, ip: &str) {
    let out = lab.ssh_ok(
        guest,
        ip,
        "set -e; norm() { sed -e 's/\\[[0-9]*:[0-9]*\\]/[0:0]/' -e '/^#/d'; }; \
         iptables-save | norm > /run/agent4; ip6tables-save | norm > /run/agent6; \
         cp /etc/ufw/user.rules /etc/ufw/user6.rules /run/; \
         ufw --force disable >/dev/null; ufw --force enable >/dev/null; \
         iptables-save | norm | diff /run/agent4 - >&2; ip6tables-save | norm | diff /run/agent6 - >&2; \
         cmp /run/user.rules /etc/ufw/user.rules >&2; cmp /run/user6.rules /etc/ufw/user6.rules >&2; \
         grep -c . /run/agent4",
    );
    eprintln!(
        "live: ufw --force enable loads the agent's {} IPv4 lines, and the same IPv6 lines",
        out.trim()
    );
}

/// The report's checks as (name, ok, detail).
fn checks(report: &serde_json::Value) -> Vec<(String, bool, String)> {
    report["checks"]
        .as_array()
        .expect("report without checks")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["ok"].as_bool().unwrap(),
                c["detail"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

fn describe_checks(report: &serde_json::Value) -> String {
    checks(report)
        .iter()
        .map(|(n, ok, d)| format!("{} {n}: {d}\n", if *ok { "ok  " } else { "FAIL" }))
        .collect()
}

/// A TCP connect from the namespace that gets no answer within `limit` (a firewall
/// drop; a closed but unfiltered port answers with a reset at once).
fn connect_times_out(ns: &Netns, addr: SocketAddr, limit: Duration) -> Result<(), String> {
    ns.run(move || match TcpStream::connect_timeout(&addr, limit) {
        Ok(_) => Err(format!("{addr} accepted a connection")),
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => Ok(()),
        Err(e) => Err(format!("{addr}: {e} (answered, not dropped)")),
    })
}

/// The network as the guest's `ip`, `bridge`, IPv6 sysctls and `ovs-vsctl` show it,
/// without what changes by itself or with each device's creation (interface indexes,
/// timers, address lifetimes; the MAC, and so the IPv6 link-local address, Open
/// vSwitch draws at random for each internal port it creates, ifupdown's or not),
/// sorted.
const NET_SNAPSHOT: &str = r#"ovsint=" $(ovs-vsctl --bare --columns=name find interface type=internal 2>/dev/null | tr '\n' ' ') "
{
ip -d -o link show | sed -E 's/^[0-9]+: //; s/ (hello_timer|tcn_timer|topology_change_timer|gc_timer|hold_timer|message_age_timer|forward_delay_timer) +[0-9.]+//g; / openvswitch /s#link/ether [0-9a-f:]+#link/ether (random)#'
ip -o addr show | sed -E 's/^[0-9]+: //; s/valid_lft.*//; s/[ \\]+$//' | while read -r dev rest; do
  case "$ovsint" in *" $dev "*) rest=$(echo "$rest" | sed -E 's/fe80::[0-9a-f:]+/fe80::(random)/');; esac
  echo "$dev $rest"
done
ip -4 route show
ip -6 route show | sed -E 's/ expires [0-9]+sec//'
bridge link show | sed -E 's/^[0-9]+: //'
grep -H . /proc/sys/net/ipv6/conf/*/disable_ipv6 /proc/sys/net/ipv6/conf/*/addr_gen_mode
if command -v ovs-vsctl >/dev/null; then
  ovs-vsctl -f csv --no-headings --columns=name,tag,trunks,vlan_mode,fake_bridge list port
  ovs-vsctl -f csv --no-headings --columns=name,type list interface
  for b in $(ovs-vsctl list-br); do echo "$b $(ovs-vsctl br-to-parent $b) $(ovs-vsctl br-to-vlan $b)"; done
fi
} | sort
"#;

/// The guest's network snapshot now, then `systemctl restart networking` and the
/// snapshot again, in the background (the restart takes the network away from ssh).
fn restart_and_snapshot() -> String {
    format!(
            "cat > /run/hvseed-net-snapshot <<'EOF'\n{NET_SNAPSHOT}EOF\n\
             cat /run/network/ifstate > /run/hvseed-ifstate-agent; \
             sh /run/hvseed-net-snapshot > /run/hvseed-net-agent; \
             setsid sh -c 'systemctl restart networking.service > /run/hvseed-net-restart.log 2>&1; \
             echo \"exit $?\" >> /run/hvseed-net-restart.log; sleep 3; \
             sh /run/hvseed-net-snapshot > /run/hvseed-net-ifupdown.tmp; \
             mv /run/hvseed-net-ifupdown.tmp /run/hvseed-net-ifupdown' \
             < /dev/null > /dev/null 2>&1 &"
        )
}

/// The agent left the network without restarting ifupdown (raised by ifupdown at boot
/// from unchanged files, or by the agent directly): in the guest, `systemctl restart
/// networking` (ifdown -a by ifupdown's state, then ifup -a from the files) must take
/// it all down and build exactly the same network again.
fn ifupdown_builds_the_same_network(lab: &Lab, guest: &Guest, ip: &str) {
    lab.ssh_ok(guest, ip, &restart_and_snapshot());
    let started = Instant::now();
    loop {
        let o = lab.ssh(ip, "test -e /run/hvseed-net-ifupdown");
        if o.status.success() {
            break;
        }
        if started.elapsed() > Duration::from_secs(180) {
            guest.fail("no network snapshot 180 s after `systemctl restart networking`");
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    eprintln!(
        "live: systemctl restart networking after the agent: {:.1?}",
        started.elapsed()
    );
    let restart = lab.ssh_ok(guest, ip, "cat /run/hvseed-net-restart.log");
    let agent = lab.ssh_ok(guest, ip, "cat /run/hvseed-net-agent");
    let again = lab.ssh_ok(guest, ip, "cat /run/hvseed-net-ifupdown");
    let diff = lab.ssh(
        ip,
        "diff -u /run/hvseed-net-agent /run/hvseed-net-ifupdown; \
         echo ---; cat /run/hvseed-ifstate-agent; echo ---; cat /run/network/ifstate",
    );
    let diff = lossy(&diff.stdout);
    eprintln!("live: the agent's network against ifupdown's:\n{diff}");
    assert!(restart.trim_end().ends_with("exit 0"), "{restart}");
    assert_eq!(
        agent, again,
        "the agent's network differs from what ifupdown builds:\n{diff}"
    );
}

/// The time split of a first boot, from the console lines as this test saw them.
fn time_split(t: &Timeline, report_at: Duration) -> String {
    let start = t.first("starting for").unwrap_or_default();
    let net_up = t
        .first("network up directly")
        .or_else(|| t.first("no network restart"))
        .or_else(|| t.first("ran systemctl start networking.service"));
    let gw = t.first("management gateway").filter(|_| net_up.is_some());
    let wait = match (net_up, gw) {
        (Some(a), Some(b)) => b.saturating_sub(a),
        _ => Duration::ZERO,
    };
    let agent_end = t.last("report sent").unwrap_or(report_at);
    let agent = agent_end.saturating_sub(start);
    format!(
        "power-on to report {:.1}s = boot to the agent's start {:.1}s + the agent {:.1}s \
         (its steps {:.1}s, waiting for the gateway {:.1}s) + delivery {:.1}s",
        report_at.as_secs_f64(),
        start.as_secs_f64(),
        agent.as_secs_f64(),
        agent.saturating_sub(wait).as_secs_f64(),
        wait.as_secs_f64(),
        report_at.saturating_sub(agent_end).as_secs_f64(),
    )
}

/// Seconds of the day of an agent log line's `YYYY-MM-DDTHH:MM:SSZ` stamp.
fn day_secs(stamp: &str) -> Option<i64> {
    let hms = stamp.split('T').nth(1)?.trim_end_matches('Z');
    let mut it = hms.split(':').map(|x| x.parse::<i64>().ok());
    Some(it.next()?? * 3600 + it.next()?? * 60 + it.next()??)
}

/// The same split from the agent's own log (`/var/log/hvseed-firstboot.log`, whole
/// seconds of the guest's clock, which QEMU's RTC set from this machine's):
/// power-on (this machine's clock) to the agent's start, the agent's run, and the wait
/// for the gateway within it.
fn log_split(log: &str, power_on_epoch: u64) -> String {
    let at = |needle: &str| {
        log.lines()
            .find(|l| l.contains(needle))
            .and_then(|l| day_secs(l.split_whitespace().next()?))
    };
    let on = day_secs(&hvseed_firstboot::time::utc(power_on_epoch)).unwrap_or(0);
    let (Some(start), Some(end)) = (at("starting for"), at("report written")) else {
        return format!("(no start or report line in the log:\n{log})");
    };
    let wait = match (
        at("network up directly")
            .or_else(|| at("no network restart"))
            .or_else(|| at("ran systemctl start networking.service")),
        at("management gateway"),
    ) {
        (Some(a), Some(b)) => b - a,
        _ => 0,
    };
    format!(
        "boot {}s + the agent {}s (its steps {}s, waiting for the gateway {}s)",
        start - on,
        end - start,
        end - start - wait,
        wait
    )
}

/// Boots a host whose management gateway answers; everything checked from outside.
fn first_boot(kind: NetKind) {
    // With Open vSwitch the host reaches `ready` (a placeholder stands in for the
    // cloudstack-agent package) and is booted a second time; with Linux bridges it
    // reports the one check that cannot pass here.
    let placeholders: &[&str] = match kind {
        NetKind::Openvswitch => &["cloudstack-agent"],
        NetKind::LinuxBridge => &[],
    };
    let total = Instant::now();
    let Some(lab) = lab(kind, placeholders, true) else {
        return;
    };
    let ip = lab.r.management_ip();
    let gw = lab.r.management_gateway();
    let mut guest = lab.boot("boot1");
    let power_on = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut timeline = Timeline::default();
    let (report, report_at) = lab.wait_report(&mut guest, &mut timeline, Duration::from_secs(420));
    let all = describe_checks(&report);
    eprintln!(
        "live: debian12 {} report {} at {:.1?}:\n{all}---- agent (console) ----\n{}",
        kind.inventory_value(),
        report["status"],
        report_at,
        timeline.text()
    );

    // Every check passes except those that cannot here, each named with its reason.
    let mut expected_failures = Vec::new();
    for (name, ok, detail) in checks(&report) {
        match CANNOT_PASS_HERE.iter().find(|(n, _)| *n == name) {
            Some((_, why)) if placeholders.is_empty() => {
                assert!(
                    !ok && (detail.contains("not installed")
                        || detail.contains(&format!("no packages found matching {name}"))),
                    "{name} ({why}) was expected to fail: {detail}\n{all}"
                );
                expected_failures.push(name);
            }
            Some(_) => assert!(
                ok && detail.contains(PLACEHOLDER_VERSION),
                "{name}: the placeholder is not what the check saw: {detail}\n{all}"
            ),
            None => assert!(ok, "check {name} failed: {detail}\n{all}"),
        }
    }
    for (name, _) in CANNOT_PASS_HERE {
        assert!(
            checks(&report).iter().any(|(n, _, _)| n == name),
            "the report has no {name} check:\n{all}"
        );
    }
    assert!(
        checks(&report)
            .iter()
            .any(|(n, ok, _)| n == "network-gateway" && *ok),
        "{all}"
    );
    let want_status = if expected_failures.is_empty() {
        "ready"
    } else {
        "failed"
    };
    assert_eq!(report["status"], want_status, "{all}");
    assert_eq!(report["fqdn"], FQDN);

    // libvirtd answers on TCP over the management VLAN, with no domain defined.
    let o = output_within_secs(
        lab.ns
            .command("virsh")
            .args(["-c", &format!("qemu+tcp://{ip}/system"), "list", "--all"]),
        60,
    );
    let listing = lossy(&o.stdout);
    if !o.status.success() {
        guest.fail(&format!("virsh over TCP: {}{listing}", lossy(&o.stderr)));
    }
    let domains: Vec<&str> = listing
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("---"))
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert!(
        listing.contains("Name") && domains.is_empty(),
        "virsh list --all: {listing}"
    );

    // The host and its gateway answer each other on the management VLAN.
    assert!(lab.ns.ping(&ip), "no ping answer from {ip}");
    let o = lab.ssh(&ip, &format!("ping -c 2 -W 2 {gw}"));
    assert!(
        o.status.success(),
        "the host cannot ping its gateway: {}",
        lossy(&o.stdout)
    );
    assert!(
        lab.ns
            .frames_from_guest(&format!("vlan{}", lab.r.management_vlan()))
            > 0
    );
    // Nothing of this reached this machine's own network: the addresses are only in
    // the namespace.
    let host = output_within_secs(std::process::Command::new("ip").args(["-o", "addr"]), 30);
    let host = lossy(&host.stdout);
    for a in [&gw, &INSTALLER_NET.gateway.to_string(), &ip] {
        assert!(
            !host.contains(&format!("inet {a}/")),
            "{a} is on this machine:\n{host}"
        );
    }

    // A port hvseed did not open: dropped (no reset), within a few seconds.
    connect_times_out(
        &lab.ns,
        format!("{ip}:{CLOSED_PORT}").parse().unwrap(),
        Duration::from_secs(4),
    )
    .unwrap_or_else(|e| guest.fail(&e));

    // Root logs in over SSH with the inventory's key.
    assert_eq!(lab.ssh_ok(&guest, &ip, "id -u").trim(), "0");

    // The bridges on the VLAN sub-interfaces.
    let n = &lab.r.plan["network"];
    let bridges = [
        (
            n["public"]["bridge"].as_str().unwrap(),
            n["public"]["vlan"].as_u64().unwrap(),
        ),
        (
            n["private"]["bridge"].as_str().unwrap(),
            n["private"]["vlan"].as_u64().unwrap(),
        ),
    ];
    let nic = n["trunk_nic"].as_str().unwrap();
    match kind {
        NetKind::LinuxBridge => {
            for (br, vlan) in bridges {
                let ports = lab.ssh_ok(&guest, &ip, &format!("ls /sys/class/net/{br}/brif"));
                eprintln!("live: {br} ports: {}", ports.trim());
                assert_eq!(ports.trim(), format!("{nic}.{vlan}"), "ports of {br}");
                let link = lab.ssh_ok(&guest, &ip, &format!("ip -d -o link show {nic}.{vlan}"));
                assert!(
                    link.contains(&format!("vlan protocol 802.1Q id {vlan} ")),
                    "{nic}.{vlan}: {link}"
                );
            }
            let mgmt = lab.ssh_ok(
                &guest,
                &ip,
                &format!("ip -o -4 addr show {nic}.{}", lab.r.management_vlan()),
            );
            assert!(mgmt.contains(&format!("inet {ip}/")), "{mgmt}");
            apparmor_check_sees_a_loaded_libvirtd_profile(&lab, &guest, &ip);
            firewall_is_what_ufw_enable_loads(&lab, &guest, &ip);
        }
        NetKind::Openvswitch => {
            let show = lab.ssh_ok(&guest, &ip, "ovs-vsctl show");
            eprintln!("live: ovs-vsctl show in the guest:\n{show}");
            let trunk_br = lab.ssh_ok(&guest, &ip, &format!("ovs-vsctl port-to-br {nic}"));
            for (br, vlan) in bridges {
                let parent = lab.ssh_ok(&guest, &ip, &format!("ovs-vsctl br-to-parent {br}"));
                let tag = lab.ssh_ok(&guest, &ip, &format!("ovs-vsctl br-to-vlan {br}"));
                eprintln!("live: {br}: parent {} tag {}", parent.trim(), tag.trim());
                assert_eq!(parent.trim(), trunk_br.trim(), "parent of {br}");
                assert_eq!(tag.trim(), vlan.to_string(), "tag of {br}");
            }
            // The management address sits on a fake bridge tagged with its VLAN.
            let dev = lab.ssh_ok(
                &guest,
                &ip,
                &format!("ip -o -4 addr show | grep ' inet {ip}/' | cut -d' ' -f2"),
            );
            let tag = lab.ssh_ok(&guest, &ip, &format!("ovs-vsctl br-to-vlan {}", dev.trim()));
            eprintln!("live: management on {} tag {}", dev.trim(), tag.trim());
            assert_eq!(tag.trim(), lab.r.management_vlan().to_string());
        }
    }

    let agent_log = lab.ssh_ok(&guest, &ip, "cat /var/log/hvseed-firstboot.log");
    eprintln!("live: the agent's log:\n{agent_log}");
    ifupdown_builds_the_same_network(&lab, &guest, &ip);
    let from_log = log_split(&agent_log, power_on);
    let enabled = lab.ssh(&ip, "systemctl is-enabled hvseed-firstboot.service");
    let enabled = lossy(&enabled.stdout);
    if want_status == "ready" {
        assert_eq!(enabled.trim(), "disabled", "the job after a ready report");
        // The next boot: the job does not run again.
        let _ = lab.ssh(&ip, "systemctl poweroff");
        guest
            .wait_exit(Duration::from_secs(120))
            .unwrap_or_else(|e| guest.fail(&e));
        drop(guest);
        let mut again = lab.boot("boot2");
        let to_ssh = lab.wait_ssh(&mut again, &ip, Duration::from_secs(300));
        let runs = lab.ssh_ok(
            &again,
            &ip,
            "grep -c 'starting for' /var/log/hvseed-firstboot.log",
        );
        assert_eq!(runs.trim(), "1", "the agent ran again at the second boot");
        let state = lab.ssh_ok(&again, &ip, "systemctl show -p ActiveState -p ExecMainStartTimestampMonotonic hvseed-firstboot.service");
        assert!(
            state.contains("ExecMainStartTimestampMonotonic=0"),
            "{state}"
        );
        assert!(
            !again.console().contains("hvseed-firstboot: starting"),
            "the job ran at the second boot"
        );
        eprintln!("live: second boot: ssh at {to_ssh:.1?}, the job did not run");
    } else {
        assert_eq!(enabled.trim(), "enabled", "the job after a failed report");
    }
    eprintln!(
        "live: debian12 {} bench: {}; from the agent's log: {from_log}; whole test {:.1?}",
        kind.inventory_value(),
        time_split(&timeline, report_at),
        total.elapsed()
    );
}

#[test]
fn qemu_live_debian12_linux_bridge_host_first_boot() {
    first_boot(NetKind::LinuxBridge);
}

#[test]
fn qemu_live_debian12_openvswitch_host_first_boot_ready_and_not_again() {
    first_boot(NetKind::Openvswitch);
}

/// A management gateway that never answers: the host gets its installer network back,
/// reports `failed` with the reason over it, and stays reachable there.
#[test]
fn qemu_live_debian12_lost_gateway_rolls_back_to_the_installer_network() {
    let Some(lab) = lab(NetKind::LinuxBridge, &[], false) else {
        return;
    };
    let mut guest = lab.boot("boot1");
    let mut timeline = Timeline::default();
    let (report, at) = lab.wait_report(&mut guest, &mut timeline, Duration::from_secs(420));
    let all = describe_checks(&report);
    eprintln!(
        "live: debian12 rollback report {} at {at:.1?}:\n{all}---- agent (console) ----\n{}",
        report["status"],
        timeline.text()
    );
    assert_eq!(report["status"], "failed", "{all}");
    let gw = checks(&report)
        .into_iter()
        .find(|(n, _, _)| n == "network-gateway")
        .unwrap_or_else(|| panic!("no network-gateway check:\n{all}"));
    assert!(!gw.1, "{all}");
    assert!(
        gw.2.contains(&format!(
            "management gateway {} unreachable",
            lab.r.management_gateway()
        )) && gw.2.contains("installer's network files were restored"),
        "{}",
        gw.2
    );
    // Reachable on the installer's network (ping and ssh, untagged on the trunk), with
    // exactly its files.
    let inst = INSTALLER_NET.ip.to_string();
    if let Err(e) = lab.ns.wait_ping(&inst, Duration::from_secs(20)) {
        guest.fail(&format!("{e}; trunk: {}", lab.ns.tap_stats()));
    }
    let interfaces = lab.ssh_ok(&guest, &inst, "cat /etc/network/interfaces");
    let netcfg = install::netcfg_files(&lab.r.plan, INSTALLER_NET);
    assert_eq!(
        interfaces.as_bytes(),
        &netcfg[0].contents[..],
        "/etc/network/interfaces after the rollback"
    );
    let links = lab.ssh_ok(&guest, &inst, "ip -o link show");
    let nic = lab.r.plan["network"]["trunk_nic"].as_str().unwrap();
    for gone in [
        format!("{nic}.{}", lab.r.management_vlan()),
        "cloudbr0".into(),
        "cloudbr1".into(),
    ] {
        assert!(
            !links.contains(&format!(" {gone}:")) && !links.contains(&format!(" {gone}@")),
            "{gone} left behind:\n{links}"
        );
    }
    let addr = lab.ssh_ok(&guest, &inst, &format!("ip -o -4 addr show {nic}"));
    assert!(
        addr.contains(&format!("inet {inst}/{}", INSTALLER_NET.prefix)),
        "{addr}"
    );
    let enabled = lab.ssh(&inst, "systemctl is-enabled hvseed-firstboot.service");
    assert_eq!(
        lossy(&enabled.stdout).trim(),
        "enabled",
        "the job must run again"
    );
    assert!(lab.ns.frames_from_guest(UNTAGGED) > 0);
    eprintln!("live: rollback: {}", time_split(&timeline, at));
}

#[test]
fn live_time_split_reads_the_agents_log_stamps() {
    let log = "2026-12-07T19:58:40Z hvseed-firstboot: starting for kvm41.lab.example.org (debian12)\n\
               2026-12-07T19:58:55Z hvseed-firstboot: ran systemctl start networking.service\n\
               2026-12-07T19:58:58Z hvseed-firstboot: management gateway 192.168.42.1 answers\n\
               2026-12-07T19:59:05Z hvseed-firstboot: report written to /var/lib/hvseed/report.json: Ready\n";
    // 19:58:00 UTC on that day.
    let on = 1_796_673_480;
    assert_eq!(hvseed_firstboot::time::utc(on), "2026-12-07T19:58:00Z");
    assert_eq!(
        log_split(log, on),
        "boot 40s + the agent 25s (its steps 22s, waiting for the gateway 3s)"
    );
}
