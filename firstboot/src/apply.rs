//! `hvseed-firstboot apply`: the offline step. Every new file content is computed
//! first (so a bad file stops the run with ROOT untouched), then each changed file is
//! backed up once and replaced atomically.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::files::{self, Keys};
use crate::fsroot::{self, Owner, Root};
use crate::plan::{NetworkType, Os, Plan};

/// Why `apply` stopped. Every variant names the file (as the host sees it under ROOT).
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("{root}: cannot use it as the root of the installed system: {source}")]
    Root { root: String, source: io::Error },
    #[error("{path}: cannot read it: {source}; nothing was changed")]
    Read { path: String, source: io::Error },
    #[error("{path}: not a text file (invalid UTF-8); fix or remove it, nothing was changed")]
    NotText { path: String },
    #[error("{path}: cannot write it: {source}")]
    Write { path: String, source: io::Error },
}

/// One file (or link) hvseed manages.
pub struct Target<'p> {
    /// The path on the installed system.
    pub path: String,
    pub kind: TargetKind<'p>,
}

type EditFn<'p> = Box<dyn Fn(&str) -> String + 'p>;

pub enum TargetKind<'p> {
    /// A text file edited in place (created with `mode` when missing, unless
    /// `only_if_exists`).
    Edit {
        edit: EditFn<'p>,
        mode: u32,
        only_if_exists: bool,
    },
    /// A symlink with this target.
    Link { target: String },
    /// A file hvseed wrote for another plan (e.g. the other network type) and that
    /// this plan does not want. Removed only if hvseed created it (no backup exists).
    Stale,
}

fn edit<'p>(path: &str, f: impl Fn(&str) -> String + 'p) -> Target<'p> {
    Target {
        path: path.to_string(),
        kind: TargetKind::Edit {
            edit: Box::new(f),
            mode: 0o644,
            only_if_exists: false,
        },
    }
}

fn edit_existing<'p>(path: &str, f: impl Fn(&str) -> String + 'p) -> Target<'p> {
    Target {
        path: path.to_string(),
        kind: TargetKind::Edit {
            edit: Box::new(f),
            mode: 0o644,
            only_if_exists: true,
        },
    }
}

fn stale<'p>(path: &str) -> Target<'p> {
    Target {
        path: path.to_string(),
        kind: TargetKind::Stale,
    }
}

fn link<'p>(path: &str, target: &str) -> Target<'p> {
    Target {
        path: path.to_string(),
        kind: TargetKind::Link {
            target: target.to_string(),
        },
    }
}

/// Everything `apply` manages for this plan. `job` includes the first-boot job (the
/// offline step installs it; `run` leaves it alone so it can disable it).
pub fn targets(plan: &Plan, job: bool) -> Vec<Target<'_>> {
    let mut t = vec![
        edit("/etc/libvirt/libvirtd.conf", files::libvirtd_conf),
        edit("/etc/libvirt/qemu.conf", files::qemu_conf),
        edit("/etc/hosts", move |o| files::etc_hosts(o, plan)),
        edit("/etc/cloudstack/agent/agent.properties", move |o| {
            files::agent_properties(o, plan)
        }),
    ];
    match plan.os {
        Os::Centos6 => {
            let mode = files::selinux_mode(plan);
            t.extend([
                edit("/etc/sysconfig/libvirtd", files::sysconfig_libvirtd),
                edit("/etc/selinux/config", move |o| {
                    files::selinux_config(o, mode)
                }),
                edit("/etc/sysconfig/network", move |o| {
                    files::sysconfig_network(o, plan)
                }),
                edit("/etc/ntp.conf", move |o| files::ntp_conf(o, plan)),
                edit("/etc/sysconfig/iptables", move |o| {
                    files::sysconfig_iptables(o, plan)
                }),
            ]);
            if let Some(Target {
                kind: TargetKind::Edit { mode, .. },
                ..
            }) = t.last_mut()
            {
                // iptables-save's file is root-only on el6.
                *mode = 0o600;
            }
            for (dev, keys) in files::ifcfg_files(plan) {
                let keys: Keys = keys;
                t.push(edit(&files::ifcfg_path(&dev), move |o| {
                    files::ifcfg(o, &keys)
                }));
            }
            if plan.network.kind == NetworkType::Openvswitch {
                t.push(edit(files::MODPROBE_BLACKLIST, files::modprobe_blacklist));
            } else {
                t.push(stale(files::MODPROBE_BLACKLIST));
            }
            for path in files::stale_network_paths(plan) {
                t.push(stale(&path));
            }
            if job {
                t.push(Target {
                    path: files::SYSV_SCRIPT.to_string(),
                    kind: TargetKind::Edit {
                        edit: Box::new(|_| files::sysv_script()),
                        mode: 0o755,
                        only_if_exists: false,
                    },
                });
                for rl in files::SYSV_RUNLEVELS {
                    t.push(link(
                        &format!("/etc/rc.d/rc{rl}.d/{}", files::SYSV_LINK),
                        &format!("../init.d/{}", files::JOB_NAME),
                    ));
                }
            }
        }
        Os::Ubuntu1204 => {
            t.extend([
                edit("/etc/default/libvirt-bin", files::default_libvirt_bin),
                edit_existing("/etc/init/libvirt-bin.conf", files::upstart_libvirt_bin),
                edit("/etc/hostname", move |o| files::etc_hostname(o, plan)),
                edit("/etc/network/interfaces", move |o| {
                    files::network_interfaces(o, plan)
                }),
                edit("/lib/ufw/user.rules", move |o| {
                    files::ufw_user_rules(o, plan)
                }),
                edit("/etc/default/ufw", files::default_ufw),
                edit("/etc/openntpd/ntpd.conf", move |o| {
                    files::openntpd_conf(o, plan)
                }),
            ]);
            if let Some(Target {
                kind: TargetKind::Edit { mode, .. },
                ..
            }) = t.iter_mut().find(|x| x.path == "/lib/ufw/user.rules")
            {
                *mode = 0o640;
            }
            for p in files::APPARMOR_PROFILES {
                t.push(link(
                    &format!("/etc/apparmor.d/disable/{p}"),
                    &format!("/etc/apparmor.d/{p}"),
                ));
            }
            if job {
                t.push(edit(files::UPSTART_JOB, |_| files::upstart_job()));
            }
        }
    }
    t
}

/// Where the pristine copy of `path` is kept. Beside the file as `<file>.hvseed-orig`,
/// except for el6 ifcfg files: the network service treats every `ifcfg-*` in
/// network-scripts as an interface (it skips only `.orig`, `.bak`, `~`, `.rpm*`), so
/// `ifcfg-eth0.hvseed-orig` would bring the installer's DHCP config back up as a
/// second interface. Those go under /var/lib/hvseed/orig/ with the same name.
pub fn backup_path(path: &str) -> String {
    if path.starts_with("/etc/sysconfig/network-scripts/ifcfg-") {
        format!("/var/lib/hvseed/orig{path}.hvseed-orig")
    } else {
        format!("{path}.hvseed-orig")
    }
}

/// A change `apply` will make.
#[derive(Debug)]
pub struct Change {
    pub path: String,
    host_path: PathBuf,
    pub old: Option<String>,
    new: New,
    owner: Owner,
}

#[derive(Debug)]
enum New {
    Text(String),
    Link(String),
    Removed,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Options {
    pub dry_run: bool,
    pub diff: bool,
    /// Install the first-boot job too.
    pub job: bool,
}

/// What `apply` did (or would do).
#[derive(Debug, Default)]
pub struct Outcome {
    pub changed: Vec<String>,
    /// Human output: one line per changed file, diffs if asked, and `N changed`.
    pub text: String,
}

fn read_text(host: &Path, shown: &str) -> Result<Option<(String, Owner)>, ApplyError> {
    let meta = match fs::metadata(host) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ApplyError::Read {
                path: shown.into(),
                source,
            })
        }
    };
    let bytes = fs::read(host).map_err(|source| ApplyError::Read {
        path: shown.into(),
        source,
    })?;
    let text = String::from_utf8(bytes).map_err(|_| ApplyError::NotText { path: shown.into() })?;
    Ok(Some((text, Owner::of(&meta))))
}

/// Computes every change for `plan` under `root`, reading but writing nothing.
pub fn compute(plan: &Plan, root: &Root, job: bool) -> Result<Vec<Change>, ApplyError> {
    let mut changes = Vec::new();
    for t in targets(plan, job) {
        let rerr = |source| ApplyError::Read {
            path: t.path.clone(),
            source,
        };
        // A link is replaced, not followed: resolve its directory only.
        let host = match &t.kind {
            TargetKind::Link { .. } => {
                let (dir, name) = t.path.rsplit_once('/').unwrap_or(("", &t.path));
                root.resolve(dir).map_err(rerr)?.join(name)
            }
            TargetKind::Edit { .. } | TargetKind::Stale => root.resolve(&t.path).map_err(rerr)?,
        };
        match t.kind {
            TargetKind::Edit {
                edit,
                mode,
                only_if_exists,
            } => {
                let old = read_text(&host, &t.path)?;
                if old.is_none() && only_if_exists {
                    continue;
                }
                let new = edit(old.as_ref().map_or("", |(s, _)| s.as_str()));
                if old.as_ref().map(|(s, _)| s) == Some(&new) {
                    continue;
                }
                let owner = old.as_ref().map_or(Owner::root(mode), |(_, o)| *o);
                changes.push(Change {
                    path: t.path,
                    host_path: host,
                    old: old.map(|(s, _)| s),
                    new: New::Text(new),
                    owner,
                });
            }
            TargetKind::Link { target } => {
                if fs::read_link(&host).is_ok_and(|l| l.as_os_str() == target.as_str()) {
                    continue;
                }
                changes.push(Change {
                    path: t.path,
                    host_path: host,
                    old: None,
                    new: New::Link(target),
                    owner: Owner::root(0o777),
                });
            }
            TargetKind::Stale => {
                let backup =
                    root.resolve(&backup_path(&t.path))
                        .map_err(|source| ApplyError::Read {
                            path: backup_path(&t.path),
                            source,
                        })?;
                if fs::symlink_metadata(&backup).is_ok() {
                    continue;
                }
                let Some((old, owner)) = read_text(&host, &t.path)? else {
                    continue;
                };
                changes.push(Change {
                    path: t.path,
                    host_path: host,
                    old: Some(old),
                    new: New::Removed,
                    owner,
                });
            }
        }
    }
    Ok(changes)
}

/// Writes the changes: back up the original once, then replace atomically.
pub fn write(changes: &[Change], root: &Root) -> Result<(), ApplyError> {
    for c in changes {
        let werr = |source| ApplyError::Write {
            path: c.path.clone(),
            source,
        };
        match &c.new {
            New::Text(text) => {
                if let Some(old) = &c.old {
                    let b = backup_path(&c.path);
                    let bhost = root.resolve(&b).map_err(werr)?;
                    if fs::symlink_metadata(&bhost).is_err() {
                        fsroot::write_atomic(&bhost, old.as_bytes(), c.owner).map_err(
                            |source| ApplyError::Write {
                                path: b.clone(),
                                source,
                            },
                        )?;
                    }
                }
                fsroot::write_atomic(&c.host_path, text.as_bytes(), c.owner).map_err(werr)?;
            }
            New::Link(target) => fsroot::symlink_atomic(&c.host_path, target).map_err(werr)?,
            New::Removed => fs::remove_file(&c.host_path).map_err(werr)?,
        }
    }
    Ok(())
}

/// The whole offline step.
pub fn apply(plan: &Plan, root_dir: &Path, opts: Options) -> Result<Outcome, ApplyError> {
    let root = Root::open(root_dir).map_err(|source| ApplyError::Root {
        root: root_dir.display().to_string(),
        source,
    })?;
    let changes = compute(plan, &root, opts.job)?;
    let mut text = String::new();
    for c in &changes {
        let verb = if opts.dry_run {
            "would change"
        } else {
            "changed"
        };
        let what = match (&c.new, &c.old) {
            (New::Link(t), _) => format!(" (symlink to {t})"),
            (New::Text(_), None) => " (new file)".into(),
            (New::Removed, _) => " (removed: written by hvseed for another plan)".into(),
            _ => String::new(),
        };
        let _ = writeln!(text, "{verb} {}{what}", c.path);
        if opts.diff {
            match &c.new {
                New::Text(new) => {
                    text.push_str(&crate::diff::unified(&c.path, c.old.as_deref(), new))
                }
                New::Removed => text.push_str(&crate::diff::deleted(
                    &c.path,
                    c.old.as_deref().unwrap_or(""),
                )),
                New::Link(_) => {}
            }
        }
    }
    if !opts.dry_run {
        write(&changes, &root)?;
    }
    let n = changes.len();
    if opts.dry_run {
        let _ = writeln!(text, "{n} to change (dry run, nothing written)");
    } else {
        let _ = writeln!(text, "{n} changed");
    }
    Ok(Outcome {
        changed: changes.into_iter().map(|c| c.path).collect(),
        text,
    })
}
