//! A preseed's `early_command` and `late_command` run the way Debian's installer runs
//! them, against a built root at `/target`. The environment is d-i's own: the Debian 12
//! netboot initrd (package `debian-installer-12-netboot-amd64`, the same one the QEMU
//! installer tests boot) unpacked and entered with `chroot`, in a private mount
//! namespace (`unshare -m`), so nothing is mounted on the host. Inside it, d-i's
//! `debconf-set-selections` loads the preseed as `/preseed.cfg` (where an initrd
//! preseed lives), d-i's `debconf-get` reads the commands back, and each runs with
//! d-i's busybox `sh -c` (as its `preseed_command` does, without `log-output`, so the
//! output is captured here and the exit status is seen). `in-target` is d-i's own
//! (`/bin/in-target` with `/lib/chroot-setup.sh`: `policy-rc.d`, a diverted
//! `start-stop-daemon`, `/proc`, `/sys`, `/dev/pts` and `/run` in `/target`, then
//! `chroot /target`). The host's `/dev` is bound in, except `/dev/console`, which is a
//! file here ([`DiRun::console`]). Install media, when given, are at `/cdrom` read-only
//! (d-i's cdrom-detect mounts the CD there); with a namespace the whole run is inside it,
//! for preseeds that fetch from an HTTP base.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

use super::image::{lossy, tail};
use super::net::Netns;
use crate::support::{missing, output_within_secs};

/// This file's source, for the keys of images built through it.
pub const SOURCE: &str = include_str!("di.rs");

/// The Debian 12 installer's netboot initrd.
pub const DI_INITRD: &str =
    "/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64/initrd.gz";

/// Where d-i finds the preseed.
#[derive(Clone, Copy, Debug)]
pub enum Preseed<'a> {
    /// A file, put at `/preseed.cfg` as in an initrd (ISOs remastered by `hvseed iso`).
    Initrd(&'a Path),
    /// `preseed/url` (a PXE install's `url=`), fetched by d-i itself: pass a namespace
    /// in which the server answers.
    Url(&'a str),
}

/// What a run did.
#[derive(Debug)]
pub struct DiRun {
    /// The status of the last command run (late_command's, or the first that failed).
    pub status: ExitStatus,
    /// stdout and stderr of the installer side, with `hvseed-di:` lines saying what ran.
    pub output: String,
    /// What the commands wrote to `/dev/console`.
    pub console: String,
}

impl DiRun {
    pub fn describe(&self) -> String {
        format!(
            "status {}\n---- output (last 60 lines) ----\n{}\n---- /dev/console ----\n{}",
            self.status,
            tail(&self.output, 60),
            tail(&self.console, 60)
        )
    }
}

/// True if d-i's initrd is installed; otherwise [`missing`] and false.
pub fn available() -> bool {
    if Path::new(DI_INITRD).is_file() {
        return true;
    }
    missing(
        &format!(
            "{DI_INITRD} (Debian package `debian-installer-12-netboot-amd64`) is not installed"
        ),
        "run scripts/setup.sh test",
    );
    false
}

/// Loads `preseed` and runs its `preseed/early_command`, then its
/// `preseed/late_command`, as d-i would, with `target` (a root tree the caller owns; it
/// is changed) at `/target`, `media` at `/cdrom`, inside `netns` if given. `work` is a
/// fresh scratch directory.
pub fn run_preseed(
    preseed: Preseed,
    target: &Path,
    media: Option<&Path>,
    netns: Option<&Netns>,
    work: &Path,
) -> DiRun {
    let di = work.join("d-i");
    std::fs::create_dir_all(&di).unwrap();
    let o = output_within_secs(
        Command::new("sh")
            .arg("-c")
            .arg("gzip -dc \"$1\" | cpio -id --quiet --no-absolute-filenames")
            .arg("sh")
            .arg(DI_INITRD)
            .current_dir(&di),
        120,
    );
    assert!(
        o.status.success(),
        "unpacking {DI_INITRD}: {}",
        lossy(&o.stderr)
    );
    let url = match preseed {
        Preseed::Initrd(file) => {
            std::fs::copy(file, di.join("preseed.cfg")).unwrap();
            String::new()
        }
        Preseed::Url(url) => url.to_owned(),
    };
    std::fs::write(di.join("hvseed-di.sh"), DRIVER).unwrap();
    std::fs::write(di.join("hvseed-di-url.sh"), LOAD_URL).unwrap();
    std::fs::set_permissions(
        di.join("hvseed-di-url.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let console = work.join("console");
    std::fs::write(&console, "").unwrap();

    let mut cmd = match netns {
        Some(ns) => {
            let mut c = ns.command("unshare");
            c.args(["-m", "--propagation", "private"]);
            c
        }
        None => {
            let mut c = Command::new("unshare");
            c.args(["-m", "--propagation", "private"]);
            c
        }
    };
    cmd.args(["sh", "-c", MOUNTS, "sh"])
        .arg(&di)
        .arg(target)
        .arg(media.map(PathBuf::from).unwrap_or_default())
        .arg(&console)
        .arg(url);
    let o = output_within_secs(&mut cmd, 900);
    let mut output = lossy(&o.stdout);
    output.push_str(&lossy(&o.stderr));
    DiRun {
        status: o.status,
        output,
        console: lossy(&std::fs::read(&console).unwrap_or_default()),
    }
}

/// Run by the host's `sh` in the private mount namespace: d-i's mounts, then d-i.
const MOUNTS: &str = r#"set -e
di=$1 target=$2 media=$3 console=$4 url=$5
mount -t proc proc "$di/proc"
mount -t sysfs sysfs "$di/sys"
mkdir -p "$di/dev" "$di/run" "$di/target" "$di/cdrom"
mount --rbind /dev "$di/dev"
mount --bind "$console" "$di/dev/console"
mount -t tmpfs -o mode=0755 tmpfs "$di/run"
mount --rbind "$target" "$di/target"
if [ -n "$media" ]; then
    mount --bind "$media" "$di/cdrom"
    mount -o remount,bind,ro "$di/cdrom"
fi
exec chroot "$di" /bin/sh /hvseed-di.sh "$url"
"#;

/// Run by d-i's `sh` inside the installer environment.
const DRIVER: &str = r#"export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mkdir -p /var/lib/preseed /var/log /var/run /tmp
# d-i's startup (S20templates): the installer's questions.
debconf-loadtemplate d-i /var/lib/dpkg/info/*.templates || { echo "hvseed-di: debconf-loadtemplate failed"; exit 90; }
url=$1
if [ -z "$url" ]; then
    # d-i's startup (S30initrd-preseed): the preseed, through its own parser.
    debconf-set-selections /preseed.cfg || { echo "hvseed-di: debconf-set-selections rejected the preseed"; exit 91; }
else
    # network-preseed: preseed/url (as from the kernel's url=), fetched and loaded.
    debconf-set preseed/url "$url" || { echo "hvseed-di: debconf-set preseed/url failed"; exit 93; }
    /hvseed-di-url.sh || { echo "hvseed-di: loading $url failed"; exit 94; }
    debconf-get preseed/late_command >/dev/null || { echo "hvseed-di: nothing loaded from $url"; exit 95; }
fi
for q in preseed/early_command preseed/late_command; do
    cmd=$(debconf-get "$q") || { echo "hvseed-di: debconf-get $q failed"; exit 92; }
    if [ -z "$cmd" ]; then
        echo "hvseed-di: $q is empty"
        continue
    fi
    echo "hvseed-di: running $q"
    sh -c "$cmd"
    rc=$?
    echo "hvseed-di: $q exited $rc"
    [ "$rc" = 0 ] || exit "$rc"
done
"#;

/// network-preseed's loading step, a debconf client like it (`confmodule` starts the
/// frontend and runs this again under it).
const LOAD_URL: &str = r#"#!/bin/sh
set -e
. /usr/share/debconf/confmodule
. /lib/preseed/preseed.sh
preseed preseed/url
"#;
