//! The first-boot job for each init system: a SysV script with its start links, an
//! upstart task and a systemd oneshot unit. Each runs `hvseed-firstboot run` once per
//! boot until the host is ready.

use crate::paths::{AGENT_PATH, JOB_NAME, PLAN_PATH};

pub const SYSV_SCRIPT: &str = "/etc/rc.d/init.d/hvseed-firstboot";
/// The SysV runlevels the first-boot job starts in, and its start link name.
pub const SYSV_RUNLEVELS: [u8; 4] = [2, 3, 4, 5];
pub const SYSV_LINK: &str = "S99hvseed-firstboot";
pub const UPSTART_JOB: &str = "/etc/init/hvseed-firstboot.conf";
pub const UPSTART_OVERRIDE: &str = "/etc/init/hvseed-firstboot.override";
pub const SYSTEMD_UNIT_NAME: &str = "hvseed-firstboot.service";
pub const SYSTEMD_UNIT: &str = "/etc/systemd/system/hvseed-firstboot.service";
/// What `systemctl enable` makes for the unit's `WantedBy=multi-user.target`.
pub const SYSTEMD_WANTS_LINK: &str =
    "/etc/systemd/system/multi-user.target.wants/hvseed-firstboot.service";

/// A SysV script; chkconfig's header says where it starts.
pub fn sysv_script() -> String {
    format!(
        r#"#!/bin/sh
#
# {JOB_NAME}  Makes this host a CloudStack KVM host on its first boot.
#
# chkconfig: 2345 99 01
# description: hvseed's one-shot first-boot job. It runs "{AGENT_PATH} run", which \
#              removes this job's start links once the host is ready; a failed run \
#              is retried on the next boot.
#
### BEGIN INIT INFO
# Provides: {JOB_NAME}
# Required-Start: $local_fs $network
# Default-Start: 2 3 4 5
# Short-Description: hvseed first-boot agent
### END INIT INFO

case "$1" in
    start)
        {AGENT_PATH} run --plan {PLAN_PATH}
        ;;
    stop|status)
        exit 0
        ;;
    *)
        echo "Usage: $0 start" >&2
        exit 2
        ;;
esac
"#
    )
}

/// An upstart task.
pub fn upstart_job() -> String {
    format!(
        r#"# {JOB_NAME} - makes this host a CloudStack KVM host on its first boot
#
# hvseed's one-shot first-boot job. "{AGENT_PATH} run" disables it (with
# {UPSTART_OVERRIDE}) once the host is ready; a failed run is retried on the
# next boot.

description "hvseed first-boot agent"

start on runlevel [2345]
task
console output

exec {AGENT_PATH} run --plan {PLAN_PATH}
"#
    )
}

/// A systemd oneshot unit (its output goes to the journal; the agent writes the
/// console and its log itself). It starts once the network is online (ifupdown's
/// `networking.service`, or NetworkManager-wait-online.service, is ordered before
/// network-online.target) and after Open vSwitch (Debian's openvswitch-switch, EL's
/// openvswitch), whose bridges it brings up; the units `run` stops and restarts
/// (`networking`, `libvirtd` and its sockets) are not ordered against it directly, so
/// their jobs never wait on this one. The agent bounds every command it runs; the start
/// timeout only keeps a hung run from holding the boot for ever.
pub fn systemd_unit() -> String {
    format!(
        r#"# {SYSTEMD_UNIT_NAME}: makes this host a CloudStack KVM host on its first boot.
#
# hvseed's one-shot first-boot job. "{AGENT_PATH} run" disables it
# (systemctl disable) once the host is ready; a failed run is retried on the next
# boot.

[Unit]
Description=hvseed first-boot agent
Wants=network-online.target
After=network-online.target openvswitch-switch.service openvswitch.service
ConditionPathExists={PLAN_PATH}

[Service]
Type=oneshot
ExecStart={AGENT_PATH} run --plan {PLAN_PATH}
StandardOutput=journal
StandardError=journal
TimeoutStartSec=30min

[Install]
WantedBy=multi-user.target
"#
    )
}
