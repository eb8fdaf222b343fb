//! The first-boot job as a SysV init script with start links (chkconfig systems).

use std::fs;
use std::io;

use crate::apply::{edit_mode, link, Target};
use crate::files::job::{sysv_script, SYSV_LINK, SYSV_RUNLEVELS, SYSV_SCRIPT};
use crate::fsroot::Root;
use crate::paths::JOB_NAME;

/// The script and its start link in each runlevel.
pub fn job<'p>() -> Vec<Target<'p>> {
    let mut t = vec![edit_mode(SYSV_SCRIPT, 0o755, |_| sysv_script())];
    for rl in SYSV_RUNLEVELS {
        t.push(link(
            &format!("/etc/rc.d/rc{rl}.d/{SYSV_LINK}"),
            &format!("../init.d/{JOB_NAME}"),
        ));
    }
    t
}

/// Removes the start links (the script stays, for a manual re-run).
pub fn disable_job(root: &Root) -> io::Result<()> {
    for rl in SYSV_RUNLEVELS {
        let dir = root.resolve(&format!("/etc/rc.d/rc{rl}.d"))?;
        match fs::remove_file(dir.join(SYSV_LINK)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}
