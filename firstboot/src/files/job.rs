//! The first-boot job for each init system: a SysV script with its start links and an
//! upstart task. Each runs `hvseed-firstboot run` once per boot until the host is ready.

use crate::paths::{AGENT_PATH, JOB_NAME, PLAN_PATH};

pub const SYSV_SCRIPT: &str = "/etc/rc.d/init.d/hvseed-firstboot";
/// The SysV runlevels the first-boot job starts in, and its start link name.
pub const SYSV_RUNLEVELS: [u8; 4] = [2, 3, 4, 5];
pub const SYSV_LINK: &str = "S99hvseed-firstboot";
pub const UPSTART_JOB: &str = "/etc/init/hvseed-firstboot.conf";
pub const UPSTART_OVERRIDE: &str = "/etc/init/hvseed-firstboot.override";

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
