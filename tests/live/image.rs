//! Debian roots built with `mmdebstrap` and raw ext4 disk images made from them
//! (`mkfs.ext4 -d`, no loop device), cached outside the checkout by the SHA-256 of all
//! their inputs and shared by every test process: an entry is built in a temporary
//! directory under the cache and renamed into place while the cache's lock is held, so
//! a reader sees a whole entry or none.

use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use sha2::{Digest, Sha256};

use crate::support::output_within_secs;
use crate::util::lock_file;

/// The source of this module: part of every cache key, so a change to how roots and
/// images are built builds them again.
const BUILDER: &str = include_str!("image.rs");

/// The mirror apt uses on these machines (and Debian's default).
pub const DEBIAN_MIRROR: &str = "http://deb.debian.org/debian";

/// Size of a disk image (sparse: only what `mkfs.ext4 -d` writes takes space).
const DISK_BYTES: u64 = 6 << 30;

/// The cache: `$HVSEED_TEST_CACHE`, else `/var/tmp/hvseed-test-cache` (kept across runs
/// and reboots, outside the checkout; remove it to start over).
pub fn cache_dir() -> PathBuf {
    std::env::var_os("HVSEED_TEST_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/hvseed-test-cache"))
}

/// What `mmdebstrap` is asked for: everything that decides the root's contents.
#[derive(Clone, Debug)]
pub struct RootSpec {
    pub suite: String,
    pub mirror: String,
    /// `mmdebstrap --variant` (`important` is what d-i installs before tasks).
    pub variant: String,
    /// `--include`: the packages on top of the variant.
    pub packages: Vec<String>,
    /// Packages `apt-get install`ed (without Recommends, as mmdebstrap installs) on a
    /// copy of the root of everything else (this list empty), so that roots differing
    /// by a few packages share one `mmdebstrap` run: the Linux-bridge and Open vSwitch
    /// hosts differ by `openvswitch-switch` only.
    pub layer: Vec<String>,
}

impl RootSpec {
    /// Debian 12 from [`DEBIAN_MIRROR`], variant `important`, plus `packages`.
    pub fn bookworm<S: AsRef<str>>(packages: &[S]) -> RootSpec {
        RootSpec {
            suite: "bookworm".into(),
            mirror: DEBIAN_MIRROR.into(),
            variant: "important".into(),
            packages: packages.iter().map(|p| p.as_ref().to_owned()).collect(),
            layer: Vec::new(),
        }
    }

    /// This root with `layer` installed on top of it by `apt-get`.
    pub fn with_layer<S: AsRef<str>>(mut self, layer: &[S]) -> RootSpec {
        self.layer = layer.iter().map(|p| p.as_ref().to_owned()).collect();
        self
    }

    /// The root the layer goes on.
    fn base(&self) -> RootSpec {
        RootSpec {
            layer: Vec::new(),
            ..self.clone()
        }
    }

    fn key(&self) -> String {
        let mut h = Sha256::new();
        for part in [&self.suite, &self.mirror, &self.variant] {
            field(&mut h, part.as_bytes());
        }
        for list in [&self.packages, &self.layer] {
            field(&mut h, &(list.len() as u64).to_be_bytes());
            for p in list {
                field(&mut h, p.as_bytes());
            }
        }
        field(&mut h, BUILDER.as_bytes());
        hex(&h.finalize()[..12])
    }
}

/// A file put into an image on top of its root.
#[derive(Clone, Debug)]
pub struct Extra {
    /// Absolute path inside the root, e.g. `/etc/network/interfaces`.
    pub path: String,
    pub mode: u32,
    pub contents: Vec<u8>,
}

impl Extra {
    pub fn new(path: &str, mode: u32, contents: impl Into<Vec<u8>>) -> Extra {
        assert!(
            path.starts_with('/') && !path.split('/').any(|c| c == ".."),
            "an extra file's path must be absolute without `..`: {path}"
        );
        Extra {
            path: path.into(),
            mode,
            contents: contents.into(),
        }
    }
}

/// A built root in the cache: read-only by convention (copy it with [`Root::copy_to`]
/// before changing anything).
#[derive(Clone, Debug)]
pub struct Root {
    pub key: String,
    /// The root file system tree.
    pub tree: PathBuf,
    /// How long the build took, if this call built it (`None`: it came from the cache).
    pub built_in: Option<std::time::Duration>,
}

impl Root {
    /// The root's own kernel (`/boot/vmlinuz-*`; exactly one is expected).
    pub fn kernel(&self) -> PathBuf {
        only_match(&self.tree.join("boot"), "vmlinuz-")
    }

    /// The root's own initrd (`/boot/initrd.img-*`).
    pub fn initrd(&self) -> PathBuf {
        only_match(&self.tree.join("boot"), "initrd.img-")
    }

    /// A private copy of the tree at `dest` (which must not exist): reflinked where
    /// the file system can, owners, modes and links kept.
    pub fn copy_to(&self, dest: &Path) {
        copy_tree(&self.tree, dest);
    }
}

/// A disk image in the cache with the kernel and initrd to boot it.
#[derive(Clone, Debug)]
pub struct Disk {
    pub key: String,
    /// Raw ext4 image of the whole root (no partition table: `root=/dev/vda`).
    pub image: PathBuf,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    /// How long making the image took, if this call made it.
    pub built_in: Option<std::time::Duration>,
}

impl Disk {
    /// A qcow2 overlay in `dir` backed by the cached image: the guest writes there, never
    /// into the cache.
    pub fn overlay(&self, dir: &Path) -> PathBuf {
        let out = dir.join("disk.qcow2");
        let o = output_within_secs(
            Command::new("qemu-img")
                .args(["create", "-q", "-f", "qcow2", "-F", "raw", "-b"])
                .arg(&self.image)
                .arg(&out),
            60,
        );
        assert!(o.status.success(), "qemu-img create: {}", lossy(&o.stderr));
        out
    }
}

/// The root `spec` asks for: from the cache, or built now with `mmdebstrap` (about a
/// minute; other processes wait on the cache's lock meanwhile), or with its layer
/// installed on a copy of its base root (itself from the cache or built first).
pub fn root(spec: &RootSpec) -> Root {
    let key = spec.key();
    let entry = cache_dir().join(format!("root-{key}"));
    let tree = entry.join("tree");
    // The base first, under its own hold of the lock (`flock` does not nest).
    let base = (!spec.layer.is_empty() && !entry.is_dir()).then(|| root(&spec.base()));
    let lock = CacheLock::take();
    if entry.is_dir() {
        return Root {
            key,
            tree,
            built_in: None,
        };
    }
    let start = Instant::now();
    let tmp = lock.temporary();
    if let Some(base) = base {
        base.copy_to(&tmp.join("tree"));
        install_layer(&tmp.join("tree"), &spec.layer);
        std::fs::write(tmp.join("spec.txt"), format!("{spec:#?}\n")).unwrap();
        std::fs::rename(&tmp, &entry).unwrap();
        eprintln!(
            "live: built root {key} ({} on root {}) in {:.1?}",
            spec.layer.join(","),
            base.key,
            start.elapsed()
        );
        return Root {
            key,
            tree,
            built_in: Some(start.elapsed()),
        };
    }
    let mut cmd = Command::new("mmdebstrap");
    cmd.arg("--quiet")
        .arg(format!("--variant={}", spec.variant))
        .arg("--mode=root")
        .arg("--format=directory");
    if !spec.packages.is_empty() {
        cmd.arg(format!("--include={}", spec.packages.join(",")));
    }
    cmd.arg(&spec.suite).arg(tmp.join("tree")).arg(&spec.mirror);
    let o = output_within_secs(&mut cmd, 1200);
    assert!(
        o.status.success(),
        "mmdebstrap {} {} failed ({}):\n{}",
        spec.suite,
        spec.packages.join(","),
        o.status,
        tail(&lossy(&o.stderr), 60)
    );
    let spec_text = format!("{spec:#?}\n");
    std::fs::write(tmp.join("spec.txt"), spec_text).unwrap();
    std::fs::rename(&tmp, &entry).unwrap();
    eprintln!(
        "live: built root {key} with mmdebstrap in {:.1?}",
        start.elapsed()
    );
    Root {
        key,
        tree,
        built_in: Some(start.elapsed()),
    }
}

/// `apt-get install` of `packages` in the root `tree` as mmdebstrap installs its
/// `--include` list: without Recommends, with `/proc`, `/sys` and `/dev` mounted in a
/// private mount namespace (gone with the process, whatever happens), services kept
/// from starting by a `policy-rc.d`, the root's `resolv.conf` (the build machine's,
/// copied by mmdebstrap) for the mirror; then apt's lists and cache emptied as
/// mmdebstrap leaves them.
fn install_layer(tree: &Path, packages: &[String]) {
    let policy = tree.join("usr/sbin/policy-rc.d");
    assert!(!policy.exists(), "{} exists", policy.display());
    std::fs::write(&policy, "#!/bin/sh\nexit 101\n").unwrap();
    std::fs::set_permissions(&policy, std::fs::Permissions::from_mode(0o755)).unwrap();
    let script = format!(
        "set -e; r=\"$1\"; mount -t proc proc \"$r/proc\"; mount -t sysfs sysfs \"$r/sys\"; \
         mount --rbind /dev \"$r/dev\"; \
         chroot \"$r\" apt-get -q update; \
         chroot \"$r\" apt-get -q -y -o APT::Install-Recommends=false install {}; \
         chroot \"$r\" apt-get -q -o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts=/dev/null update; \
         chroot \"$r\" apt-get clean; rm -rf \"$r/var/lib/apt/lists/auxfiles\"",
        packages.join(" ")
    );
    let o = output_within_secs(
        Command::new("unshare")
            .args([
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                &script,
                "sh",
            ])
            .arg(tree)
            .env("DEBIAN_FRONTEND", "noninteractive"),
        1200,
    );
    std::fs::remove_file(&policy).unwrap();
    assert!(
        o.status.success(),
        "apt-get install {} on a copy of the root failed ({}):\n{}{}",
        packages.join(" "),
        o.status,
        tail(&lossy(&o.stdout), 40),
        tail(&lossy(&o.stderr), 40)
    );
}

/// The disk image of `spec`'s root with `extras` written on top: from the cache, or
/// made now (the root first if needed).
pub fn image(spec: &RootSpec, extras: &[Extra]) -> Disk {
    prepared_image(spec, extras, &[], |_| {})
}

/// Like [`image`], and `prepare` runs on the staged tree after the extras are written
/// and before the image is made (an installer's late_command, say). `inputs` are
/// everything `prepare` depends on besides the tree: they are part of the key, so a
/// change to any of them makes the image again. `prepare` runs while the cache's lock
/// is held and must not build roots or images itself.
pub fn prepared_image(
    spec: &RootSpec,
    extras: &[Extra],
    inputs: &[&[u8]],
    prepare: impl FnOnce(&Path),
) -> Disk {
    let root = root(spec);
    let mut h = Sha256::new();
    field(&mut h, root.key.as_bytes());
    for e in extras {
        field(&mut h, e.path.as_bytes());
        field(&mut h, &e.mode.to_be_bytes());
        field(&mut h, &e.contents);
    }
    field(&mut h, &(inputs.len() as u64).to_be_bytes());
    for i in inputs {
        field(&mut h, i);
    }
    field(&mut h, BUILDER.as_bytes());
    let key = hex(&h.finalize()[..12]);
    let entry = cache_dir().join(format!("disk-{key}"));
    let disk = |built_in| Disk {
        key: key.clone(),
        image: entry.join("disk.img"),
        kernel: entry.join("vmlinuz"),
        initrd: entry.join("initrd.img"),
        built_in,
    };
    let lock = CacheLock::take();
    if entry.is_dir() {
        return disk(None);
    }
    let start = Instant::now();
    let tmp = lock.temporary();
    let stage = tmp.join("stage");
    root.copy_to(&stage);
    for e in extras {
        write_extra(&stage, e);
    }
    prepare(&stage);
    make_disk(&stage, &tmp.join("disk.img"));
    std::fs::copy(root.kernel(), tmp.join("vmlinuz")).unwrap();
    std::fs::copy(root.initrd(), tmp.join("initrd.img")).unwrap();
    std::fs::remove_dir_all(&stage).unwrap();
    std::fs::rename(&tmp, &entry).unwrap();
    eprintln!("live: made disk image {key} in {:.1?}", start.elapsed());
    disk(Some(start.elapsed()))
}

/// Makes the raw ext4 image `out` holding the tree `dir` (owners, modes, links and
/// device nodes as they are), without a loop device: `truncate` + `mkfs.ext4 -d`.
pub fn make_disk(dir: &Path, out: &Path) {
    File::create(out).unwrap().set_len(DISK_BYTES).unwrap();
    let o = output_within_secs(
        Command::new("mkfs.ext4")
            .args(["-q", "-F", "-L", "hvseed-root", "-d"])
            .arg(dir)
            .arg(out),
        600,
    );
    assert!(
        o.status.success(),
        "mkfs.ext4 -d {}: {}",
        dir.display(),
        lossy(&o.stderr)
    );
}

/// Writes `e` into the tree `root` (directories made as needed, owned by root).
pub fn write_extra(root: &Path, e: &Extra) {
    let path = root.join(e.path.trim_start_matches('/'));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    // A symbolic link of the root at this path is replaced, not followed.
    let _ = std::fs::remove_file(&path);
    std::fs::write(&path, &e.contents).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(e.mode)).unwrap();
}

/// `cp -a --reflink=auto SRC DEST`.
pub fn copy_tree(src: &Path, dest: &Path) {
    assert!(!dest.exists(), "{} exists", dest.display());
    let o = output_within_secs(
        Command::new("cp")
            .args(["-a", "--reflink=auto", "--"])
            .arg(src)
            .arg(dest),
        600,
    );
    assert!(
        o.status.success(),
        "cp -a {} {}: {}",
        src.display(),
        dest.display(),
        lossy(&o.stderr)
    );
}

/// The cache's lock (`flock` on `CACHE/.lock`, see [`lock_file`]). While it is held, nothing else builds:
/// temporaries of a build that was killed are removed when it is taken.
struct CacheLock {
    _file: File,
    dir: PathBuf,
}

impl CacheLock {
    fn take() -> CacheLock {
        let dir = cache_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let file = lock_file(&dir.join(".lock"));
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            if e.file_name().to_string_lossy().starts_with(".tmp-") {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        CacheLock { _file: file, dir }
    }

    /// A fresh temporary directory in the cache, renamed into place by the caller.
    fn temporary(&self) -> PathBuf {
        tempfile::Builder::new()
            .prefix(".tmp-")
            .tempdir_in(&self.dir)
            .unwrap()
            .keep()
    }
}

fn only_match(dir: &Path, prefix: &str) -> PathBuf {
    let found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .map(|e| e.path())
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one {prefix}* in {}: {found:?}",
        dir.display()
    );
    found.into_iter().next().unwrap()
}

/// A length-prefixed field, so that no two different input lists hash alike.
fn field(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_be_bytes());
    h.update(bytes);
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The last `n` lines of `s`.
pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
