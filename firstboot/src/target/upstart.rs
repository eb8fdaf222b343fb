//! The first-boot job as an upstart task, and libvirt-bin's upstart job (Ubuntu before
//! systemd).

use std::io;

use crate::apply::{edit, edit_existing, Target};
use crate::files::job::{upstart_job, UPSTART_JOB, UPSTART_OVERRIDE};
use crate::files::libvirt::upstart_libvirt_bin;
use crate::fsroot::{self, Owner, Root};

/// The task.
pub fn job<'p>() -> Vec<Target<'p>> {
    vec![edit(UPSTART_JOB, |_| upstart_job())]
}

/// `/etc/init/libvirt-bin.conf` gets libvirtd's `-l` on its exec line (if the package
/// installed it).
pub fn libvirt_bin<'p>() -> Target<'p> {
    edit_existing("/etc/init/libvirt-bin.conf", upstart_libvirt_bin)
}

/// An override file saying `manual`: upstart no longer starts the task.
pub fn disable_job(root: &Root) -> io::Result<()> {
    fsroot::write_atomic(
        &root.resolve(UPSTART_OVERRIDE)?,
        b"manual\n",
        Owner::root(0o644),
    )
}
