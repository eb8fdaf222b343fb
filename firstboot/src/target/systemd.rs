//! systemd (Debian 12, EL9 and Ubuntu ≥ 22.04): the first-boot job as a
//! oneshot unit, libvirtd in its traditional mode (its sockets masked, so it may listen
//! on TCP itself; on EL9 also the modular daemons masked and libvirtd.service enabled),
//! and restarting units with `systemctl`.

use std::fs;
use std::io;

use crate::apply::{edit, link, Target};
use crate::files::job::{systemd_unit, SYSTEMD_UNIT, SYSTEMD_UNIT_NAME, SYSTEMD_WANTS_LINK};
use crate::fsroot::Root;
use crate::run::{step, Log};
use crate::verify::{Check, Env};

/// libvirtd's socket units. A socket-activated libvirtd refuses `--listen`, and
/// CloudStack needs it listening on TCP: all five are masked, as the CloudStack 4.20
/// guide does with `systemctl mask` (modern-targets, "libvirt on systemd distros";
/// the names are those of Debian 12's libvirt-daemon-system 9.0).
pub const LIBVIRTD_SOCKETS: [&str; 5] = [
    "libvirtd.socket",
    "libvirtd-ro.socket",
    "libvirtd-admin.socket",
    "libvirtd-tcp.socket",
    "libvirtd-tls.socket",
];

/// libvirt's modular daemons that stand in for the monolithic libvirtd where a
/// distribution presets them (EL9): the QEMU, network and storage drivers' daemons with
/// their sockets, and virtproxyd's sockets, which bind libvirtd's own
/// `/run/libvirt/libvirt-sock*` and TCP/TLS ports and pass clients on to the modular
/// daemons. All masked, as `cloudstack-setup-agent` masks the QEMU, network and storage
/// ones (modern-targets, "libvirt on systemd distros"). The names are those of
/// libvirt's own packaging, `libvirt.spec.in` of libvirt 10.0 (RHEL 9.4): `%files
/// daemon-driver-qemu`, `daemon-driver-network`, `daemon-driver-storage-core` and
/// `daemon-proxy` list each of them in `%{_unitdir}`.
pub const MODULAR_UNITS: [&str; 17] = [
    "virtqemud.service",
    "virtqemud.socket",
    "virtqemud-ro.socket",
    "virtqemud-admin.socket",
    "virtnetworkd.service",
    "virtnetworkd.socket",
    "virtnetworkd-ro.socket",
    "virtnetworkd-admin.socket",
    "virtstoraged.service",
    "virtstoraged.socket",
    "virtstoraged-ro.socket",
    "virtstoraged-admin.socket",
    "virtproxyd.socket",
    "virtproxyd-ro.socket",
    "virtproxyd-admin.socket",
    "virtproxyd-tcp.socket",
    "virtproxyd-tls.socket",
];

/// Where the administrator's units and masks live.
const ETC_UNITS: &str = "/etc/systemd/system";
/// Where packaged units live (EL; Debian's /lib is the same directory).
const LIB_UNITS: &str = "/usr/lib/systemd/system";

/// The link `systemctl enable` makes for a packaged `unit` with `WantedBy=target`.
pub fn wants_link(unit: &str, target: &str) -> String {
    format!("{ETC_UNITS}/{target}.wants/{unit}")
}

/// `unit` (packaged, `WantedBy=target`) enabled: the link `systemctl enable` makes.
pub fn enabled<'p>(unit: &str, target: &str) -> Target<'p> {
    link(&wants_link(unit, target), &format!("{LIB_UNITS}/{unit}"))
}

/// The unit and its enablement link (what `systemctl enable` makes).
pub fn job<'p>() -> Vec<Target<'p>> {
    vec![
        edit(SYSTEMD_UNIT, |_| systemd_unit()),
        link(SYSTEMD_WANTS_LINK, SYSTEMD_UNIT),
    ]
}

/// Each of `units` masked: a link to /dev/null in /etc/systemd/system, which is what
/// `systemctl mask` writes.
pub fn masked<'p>(units: &[&str]) -> Vec<Target<'p>> {
    units
        .iter()
        .map(|u| link(&format!("{ETC_UNITS}/{u}"), "/dev/null"))
        .collect()
}

/// `systemctl disable` of the job; its enablement link must be gone afterwards (if
/// systemctl cannot run, the link is removed here, which is all `disable` does for a
/// unit with only a `WantedBy=`).
pub fn disable_job(env: &Env, root: &Root, log: &mut Log) -> io::Result<()> {
    step(env, log, "systemctl", &["disable", SYSTEMD_UNIT_NAME], None);
    // The link itself, not what it points to: only its directory is resolved.
    let (dir, name) = SYSTEMD_WANTS_LINK
        .rsplit_once('/')
        .unwrap_or(("", SYSTEMD_WANTS_LINK));
    let wants = root.resolve(dir)?.join(name);
    match fs::remove_file(&wants) {
        Ok(()) => {
            log.line(&format!("removed {SYSTEMD_WANTS_LINK}"));
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// What decides whether libvirtd must be restarted: its configuration, its defaults
/// file, the masks of `units` (its sockets, and the modular daemons where they are
/// masked) and its enablement.
fn libvirtd_input(path: &str, units: &[&str]) -> bool {
    path.starts_with("/etc/libvirt/")
        || path == "/etc/default/libvirtd"
        || path == "/etc/sysconfig/libvirtd"
        || path == wants_link("libvirtd.service", "multi-user.target")
        || units.iter().any(|u| path == format!("{ETC_UNITS}/{u}"))
}

/// libvirtd in its traditional mode with hvseed's configuration. The offline step
/// wrote the configuration and the socket masks before this boot, so systemd started
/// libvirtd.service at boot with `--listen` and no socket: when this run changed none
/// of libvirtd's files, libvirtd.service is active and none of its sockets is, a
/// restart would change nothing and is skipped (on Debian 12 under TCG it took 3–5 s).
/// Otherwise: systemd re-reads the units (the masks may be new), the sockets still
/// active are stopped (masking does not stop them, and libvirtd refuses `--listen`
/// while systemd hands it sockets), then `systemctl restart libvirtd`. `masked`: the
/// units the family masks ([`LIBVIRTD_SOCKETS`], and [`MODULAR_UNITS`] where the
/// modular daemons are preset), each of which must be inactive.
pub fn restart_libvirtd(env: &Env, log: &mut Log, changed: &[String], masked: &[&str]) {
    let ours: Vec<&String> = changed
        .iter()
        .filter(|p| libvirtd_input(p, masked))
        .collect();
    if ours.is_empty() {
        let mut args = vec!["is-active", "libvirtd.service"];
        args.extend(masked);
        // `is-active` prints one state per unit and exits non-zero unless all are
        // active: only its output counts.
        let o = env.cmd("systemctl", &args);
        let states: Vec<&str> = o.stdout().lines().map(str::trim).collect();
        if states.len() == args.len() - 1
            && states[0] == "active"
            && states[1..]
                .iter()
                .all(|s| *s != "active" && *s != "activating")
        {
            log.line(
                "libvirtd.service has run since boot with hvseed's configuration (unchanged by \
                 this run) and none of the units it replaces is active: no restart",
            );
            return;
        }
        log.line(&format!(
            "libvirtd.service and the units it replaces are {}: restarting it",
            super::joined_or(&states, ", ", "in an unknown state")
        ));
    } else {
        log.line(&format!(
            "changed by this run: {}: restarting libvirtd",
            super::joined_or(&ours, ", ", "")
        ));
    }
    step(env, log, "systemctl", &["daemon-reload"], None);
    let mut args = vec!["stop"];
    args.extend(masked);
    step(env, log, "systemctl", &args, None);
    step(
        env,
        log,
        "systemctl",
        &["restart", "libvirtd.service"],
        None,
    );
}

/// Each of `units` is masked (a link to /dev/null in /etc/systemd/system); `why` says
/// what an unmasked one breaks.
fn units_masked(cx: &crate::verify::Context, units: &[&str], why: &str) -> crate::verify::Verdict {
    let mut not = Vec::new();
    for u in units {
        let p = cx.env.path(&format!("{ETC_UNITS}/{u}"));
        if !fs::read_link(&p).is_ok_and(|t| t.as_os_str() == "/dev/null") {
            not.push(*u);
        }
    }
    if !not.is_empty() {
        Err(format!(
            "not masked: {} (systemctl mask {}; {why})",
            not.join(", "),
            not.join(" ")
        ))
    } else {
        Ok(format!("masked: {}", units.join(", ")))
    }
}

/// libvirtd's sockets are masked.
pub const SOCKETS_MASKED: Check = Check::new("libvirtd-sockets-masked", |cx| {
    units_masked(
        cx,
        &LIBVIRTD_SOCKETS,
        "libvirtd refuses --listen under socket activation",
    )
});

/// The modular daemons are masked (EL9 presets them).
pub const MODULAR_MASKED: Check = Check::new("libvirt-modular-daemons-masked", |cx| {
    units_masked(
        cx,
        &MODULAR_UNITS,
        "virtproxyd's sockets take libvirtd's, and the CloudStack agent needs the monolithic \
         libvirtd",
    )
});

/// libvirtd.service is enabled (`systemctl enable`'s link for `WantedBy=multi-user.target`),
/// so it starts at boot where the distribution presets it disabled (EL9).
pub const LIBVIRTD_ENABLED: Check = Check::new("libvirtd-enabled", |cx| {
    let l = wants_link("libvirtd.service", "multi-user.target");
    match fs::read_link(cx.env.path(&l)) {
        Ok(t)
            if t.as_os_str()
                .to_string_lossy()
                .ends_with("/libvirtd.service") =>
        {
            Ok(format!("{l} -> {}", t.display()))
        }
        Ok(t) => Err(format!(
            "{l} points to {}, not libvirtd.service (systemctl reenable libvirtd.service)",
            t.display()
        )),
        Err(_) => Err(format!(
            "libvirtd.service is not enabled: no {l} (systemctl enable libvirtd.service)"
        )),
    }
});

/// libvirtd.service is running (`systemctl is-active`): a libvirtd that did not come
/// back after the restart fails here with systemd's word for its state.
pub const LIBVIRTD_ACTIVE: Check = Check::new("libvirtd-running", |cx| {
    let o = cx.env.cmd("systemctl", &["is-active", "libvirtd.service"]);
    let state = o.stdout().trim().to_string();
    if o.success() && state == "active" {
        return Ok("libvirtd.service is active".into());
    }
    if state.is_empty() {
        return Err(o.describe("systemctl is-active libvirtd.service"));
    }
    Err(format!(
        "libvirtd.service is {state}; see `systemctl status libvirtd` and `journalctl -u libvirtd`"
    ))
});
