//! The network as ifupdown's `/etc/network/interfaces` (Debian, and Ubuntu before
//! netplan).

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::apply::{edit, Target};
use crate::files::ifupdown::{
    direct_up_on, ifstate_entries, ifstate_with, ifstate_without, network_interfaces,
    planned_devices, BridgeHost,
};
use crate::fsroot::{self, Owner, Root};
use crate::plan::Plan;
use crate::run::{network_step, secs, Log};
use crate::verify::Env;

pub const INTERFACES: &str = "/etc/network/interfaces";

pub fn targets(plan: &Plan) -> Vec<Target<'_>> {
    vec![edit(INTERFACES, move |o| network_interfaces(o, plan))]
}

pub fn network_paths() -> Vec<String> {
    vec![INTERFACES.to_string()]
}

// `service networking restart` only re-runs `ifup -a` on precise, which skips
// interfaces that are already up; ifdown/ifup really reconfigure them.
pub fn network_down(env: &Env, log: &mut Log) {
    network_step(env, log, "ifdown", &["-a", "--exclude=lo"]);
}

pub fn network_up(env: &Env, log: &mut Log) {
    network_step(env, log, "ifup", &["-a", "--exclude=lo"]);
}

/// Why the planned network was not raised directly.
pub enum DirectError {
    /// Not the installer's network as hvseed expects it (nothing was changed).
    NotApplicable(String),
    /// A step failed (the network may be half changed; ifupdown's state names what
    /// was raised so that `ifdown -a` takes it down).
    Failed(String),
}

const IFSTATE: &str = "/run/network/ifstate";
const IFSTATE_LOCK: &str = "/run/network/.ifstate.lock";
const IP_BATCH: &str = "/run/hvseed-firstboot.ip-batch";

/// The first boot's network change without restarting ifupdown (whose hook scripts,
/// about a hundred shell processes, are most of the agent's time under emulation):
/// the installer's interface on the trunk NIC goes down (its dhclient stopped, its
/// addresses and routes gone with the link), then the planned network comes up with
/// one `ovs-vsctl` transaction and one `ip -batch`, exactly as `ifup -a` builds it
/// from hvseed's stanzas, and ifupdown's state (`/run/network/ifstate*`) says so:
/// a later `ifdown`, `systemctl restart networking` or shutdown works on it as if
/// ifup had raised it. Only from the installer's network: a planned device that
/// exists already, or an interface ifupdown knows under another name, is left to
/// ifupdown (`NotApplicable`).
pub fn direct_restart(
    plan: &Plan,
    env: &Env,
    root: &Root,
    log: &mut Log,
) -> Result<(), DirectError> {
    use DirectError::{Failed, NotApplicable};
    let nic = plan.network.trunk_nic.clone();
    let state_path = root
        .resolve(IFSTATE)
        .map_err(|e| NotApplicable(format!("{IFSTATE}: {e}")))?;
    let state = crate::bounded::read(&state_path, 1 << 20, true)
        .map_err(|e| NotApplicable(format!("{IFSTATE}: {e}")))?;
    let state = String::from_utf8_lossy(&state).into_owned();
    let managed = managed_names(plan);
    let mut installer = Vec::new();
    for (i, li) in ifstate_entries(&state) {
        if !managed.contains(&i) {
            continue;
        }
        if i != nic || li != i {
            return Err(NotApplicable(format!(
                "ifupdown has {i}={li} up, not the installer's network"
            )));
        }
        installer.push(i);
    }
    let net = env.sys_root.join("class/net");
    if !net.join(&nic).exists() {
        return Err(NotApplicable(format!("no network interface {nic}")));
    }
    if let Some(d) = planned_devices(plan)
        .into_iter()
        .find(|d| net.join(d).exists())
    {
        return Err(NotApplicable(format!("{d} exists already")));
    }

    // The installer's network down.
    let start = Instant::now();
    let mut stopped = Vec::new();
    for i in &installer {
        let mut lock = lock_iface(root, i).map_err(Failed)?;
        for pidfile in [
            format!("/run/dhclient.{i}.pid"),
            format!("/run/dhclient6.{i}.pid"),
        ] {
            if let Some(pid) = stop_dhclient(env, root, &pidfile).map_err(Failed)? {
                stopped.push(pid.to_string());
            }
        }
        let lines = [
            format!("addr flush dev {i}"),
            format!("link set dev {i} down"),
        ];
        ip_batch(env, root, &lines).map_err(Failed)?;
        edit_ifstate(root, |s| ifstate_without(s, i)).map_err(Failed)?;
        write_iface_state(&mut lock, "").map_err(Failed)?;
    }
    let dh = if stopped.is_empty() {
        "no dhclient".to_string()
    } else {
        format!(
            "dhclient {} stopped without a DHCP release",
            stopped.join(" ")
        )
    };
    log.line(&format!(
        "installer's network down directly: {} ({dh}) ({})",
        super::joined_or(&installer, " ", "nothing up on the trunk"),
        secs(start.elapsed())
    ));

    // The planned network up; ifupdown's state first, as ifup records an interface
    // before configuring it.
    let start = Instant::now();
    let defaults = root
        .resolve("/etc/default/bridge-utils")
        .ok()
        .and_then(|p| fs::read_to_string(p).ok())
        .unwrap_or_default();
    let ipv6 = env.proc_root.join("sys/net/ipv6/conf").is_dir();
    let up = direct_up_on(plan, BridgeHost::from_default_file(&defaults, ipv6));
    let mut locks = Vec::new();
    for i in &up.ifaces {
        let mut lock = lock_iface(root, i).map_err(Failed)?;
        write_iface_state(&mut lock, i).map_err(Failed)?;
        locks.push(lock);
    }
    edit_ifstate(root, |s| ifstate_with(s, &up.ifaces)).map_err(Failed)?;
    if !up.ovs.is_empty() {
        let t = format!("--timeout={}", env.timeout.as_secs().max(1));
        let mut args: Vec<&str> = vec![&t];
        args.extend(up.ovs.iter().map(String::as_str));
        let o = crate::exec::run("ovs-vsctl", &args, env.timeout * 2, None);
        if !o.success() {
            return Err(Failed(o.describe("ovs-vsctl ... add-br ...")));
        }
    }
    ip_batch(env, root, &up.ip).map_err(Failed)?;
    drop(locks);
    log.line(&format!(
        "planned network up directly: {}ip -batch of {} commands; ifupdown state: {} ({})",
        if up.ovs.is_empty() {
            String::new()
        } else {
            "one ovs-vsctl transaction, ".to_string()
        },
        up.ip.len(),
        up.ifaces.join(" "),
        secs(start.elapsed())
    ));
    Ok(())
}

/// Every interface of the plan marked up in ifupdown's state under its own name and
/// present, with nothing else of the plan up: the network `ifup -a` raised from hvseed's
/// stanzas. The interfaces, space-separated, or None.
pub fn planned_up(plan: &Plan, env: &Env, root: &Root) -> Option<String> {
    let path = root.resolve(IFSTATE).ok()?;
    let state = fs::read_to_string(path).ok()?;
    let entries = ifstate_entries(&state);
    let up = direct_up_on(plan, BridgeHost::default());
    let net = env.sys_root.join("class/net");
    let all_up = up
        .ifaces
        .iter()
        .all(|i| entries.iter().any(|(p, l)| p == i && l == i) && net.join(i).exists());
    let managed = managed_names(plan);
    let stray = entries
        .iter()
        .any(|(p, _)| managed.contains(p) && !up.ifaces.contains(p));
    (all_up && !stray).then(|| up.ifaces.join(" "))
}

fn managed_names(plan: &Plan) -> Vec<String> {
    let mut v = planned_devices(plan);
    v.push(plan.network.trunk_nic.clone());
    v
}

/// Stops the dhclient of `pidfile` (SIGTERM: it exits without releasing its lease,
/// which the installer's DHCP server keeps for this MAC until it expires; a release
/// would run dhclient-script and its hooks, seconds of shell under emulation) and waits
/// for it to exit. Its pid, or None when there was none running.
fn stop_dhclient(env: &Env, root: &Root, pidfile: &str) -> Result<Option<i32>, String> {
    let path = root
        .resolve(pidfile)
        .map_err(|e| format!("{pidfile}: {e}"))?;
    let Ok(text) = fs::read_to_string(&path) else {
        return Ok(None);
    };
    let Ok(pid) = text.trim().parse::<i32>() else {
        return Ok(None);
    };
    let proc_dir = env.proc_root.join(pid.to_string());
    let comm = fs::read_to_string(proc_dir.join("comm")).unwrap_or_default();
    if pid <= 1 || comm.trim() != "dhclient" {
        // Stale: the process is gone (or the pid is another program's now).
        let _ = fs::remove_file(&path);
        return Ok(None);
    }
    // SAFETY: kill(2) with a pid read from dhclient's pid file and checked above.
    if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
        return Err(format!(
            "cannot stop dhclient {pid}: {}",
            std::io::Error::last_os_error()
        ));
    }
    let deadline = Instant::now() + env.timeout;
    while proc_dir.exists() {
        if Instant::now() > deadline {
            return Err(format!("dhclient {pid} did not exit after SIGTERM"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = fs::remove_file(&path);
    Ok(Some(pid))
}

fn ip_batch(env: &Env, root: &Root, lines: &[String]) -> Result<(), String> {
    let path = root
        .resolve(IP_BATCH)
        .map_err(|e| format!("{IP_BATCH}: {e}"))?;
    let mut text = lines.join("\n");
    text.push('\n');
    fsroot::write_atomic(&path, text.as_bytes(), Owner::root(0o600))
        .map_err(|e| format!("{IP_BATCH}: {e}"))?;
    let o = crate::exec::run("ip", &["-batch", "-"], env.timeout * 2, Some(&path));
    let _ = fs::remove_file(&path);
    if o.success() {
        Ok(())
    } else {
        Err(o.describe(&format!("ip -batch ({})", lines.join("; "))))
    }
}

/// Rewrites `/run/network/ifstate` under ifupdown's own lock, as ifupdown does (a new
/// file renamed over the old).
fn edit_ifstate(root: &Root, f: impl FnOnce(&str) -> String) -> Result<(), String> {
    let lock_path = root
        .resolve(IFSTATE_LOCK)
        .map_err(|e| format!("{IFSTATE_LOCK}: {e}"))?;
    let lock = locked(&lock_path, IFSTATE_LOCK)?;
    let path = root
        .resolve(IFSTATE)
        .map_err(|e| format!("{IFSTATE}: {e}"))?;
    let old = fs::read_to_string(&path).unwrap_or_default();
    let new = f(&old);
    fsroot::write_atomic(&path, new.as_bytes(), Owner::root(0o644))
        .map_err(|e| format!("{IFSTATE}: {e}"))?;
    drop(lock);
    Ok(())
}

/// `path` opened (created if need be) and write-locked with fcntl, as ifupdown locks
/// its files; waits up to 30 s for an ifup or ifdown holding it. The lock goes with
/// the file.
fn locked(path: &Path, name: &str) -> Result<fs::File, String> {
    use std::os::unix::io::AsRawFd;
    let f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(path)
        .map_err(|e| format!("{name}: {e}"))?;
    let fl = libc::flock {
        l_type: libc::F_WRLCK as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    // SAFETY: fcntl(F_SETLK) on a descriptor we own with a flock we own.
    while unsafe { libc::fcntl(f.as_raw_fd(), libc::F_SETLK, &fl) } != 0 {
        if Instant::now() > deadline {
            return Err(format!("{name}: held by another ifup or ifdown"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(f)
}

/// ifupdown's lock of one interface, `/run/network/ifstate.IFACE`, which an ifup or
/// ifdown of it holds while it runs (the installer's DHCP interface may still be
/// coming up by hotplug).
fn lock_iface(root: &Root, iface: &str) -> Result<fs::File, String> {
    let p = format!("{IFSTATE}.{}", iface.replace('/', "."));
    let path = root.resolve(&p).map_err(|e| format!("{p}: {e}"))?;
    locked(&path, &p)
}

/// `/run/network/ifstate.IFACE` (held locked): the logical interface while up, an
/// empty line after ifdown.
fn write_iface_state(f: &mut fs::File, logical: &str) -> Result<(), String> {
    use std::io::Write;
    f.set_len(0)
        .and_then(|()| f.write_all(format!("{logical}\n").as_bytes()))
        .map_err(|e| format!("{IFSTATE}.*: {e}"))
}
