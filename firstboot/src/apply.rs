//! `hvseed-firstboot apply`: the offline step. Every new file content is computed
//! first (so a bad file stops the run with ROOT untouched), then written to a temporary
//! file beside its target (staged), and only then are the targets replaced one by one
//! (committed), each original kept once as a backup. If anything fails, every file
//! already written is put back (or removed, if hvseed created it), in reverse order,
//! so ROOT is as it was before.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::bounded;
use crate::files::{agent_properties, hosts, libvirt};
use crate::fsroot::{self, Owner, Root};
use crate::plan::Plan;

/// Why `apply` stopped. Every variant names the file (as the host sees it under ROOT).
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("{root}: cannot use it as the root of the installed system: {source}")]
    Root { root: String, source: io::Error },
    #[error("{path}: cannot read it: {source}; nothing was changed")]
    Read { path: String, source: io::Error },
    #[error("{path}: not a text file (invalid UTF-8); fix or remove it, nothing was changed")]
    NotText { path: String },
    #[error("{path}: cannot finish the interrupted apply that left {undo}: {source}; nothing else was changed")]
    Recover {
        path: String,
        undo: String,
        source: io::Error,
    },
    #[error("{path}: cannot write it: {source}; {rollback}")]
    Write {
        path: String,
        source: io::Error,
        rollback: Rollback,
    },
}

/// What was undone after a write error.
#[derive(Debug, Default)]
pub struct Rollback {
    /// Files already written that were put back, or removed again when hvseed had
    /// created them (`FILE (removed again)`), as the host sees them.
    pub restored: Vec<String>,
    /// Files that could not be undone: `FILE (not put back; its original is PATH: why)`
    /// or `FILE (hvseed created it; not removed: why)`.
    pub failed: Vec<String>,
}

impl Rollback {
    /// True when ROOT is as it was before `apply` started.
    pub fn complete(&self) -> bool {
        self.failed.is_empty()
    }
}

impl std::fmt::Display for Rollback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let restored = || {
            let n = self.restored.len();
            let files = if n == 1 {
                "1 file already written was".to_string()
            } else {
                format!("{n} files already written were")
            };
            format!("{files} put back or removed ({})", self.restored.join(", "))
        };
        if !self.failed.is_empty() {
            write!(
                f,
                "ROOT IS PARTLY CHANGED: could not undo {}",
                self.failed.join("; ")
            )?;
            if !self.restored.is_empty() {
                write!(f, "; the other {}", restored())?;
            }
            return Ok(());
        }
        if !self.restored.is_empty() {
            write!(f, "the {}, ", restored())?;
        }
        write!(f, "nothing was changed")
    }
}

/// One file (or link) hvseed manages.
pub struct Target<'p> {
    /// The path on the installed system.
    pub path: String,
    pub kind: TargetKind<'p>,
}

type EditFn<'p> = Box<dyn Fn(&str) -> String + 'p>;
type EditWithFn<'p> = Box<dyn Fn(&str, Option<&str>) -> String + 'p>;

pub enum TargetKind<'p> {
    /// A text file edited in place (created with `mode` when missing, unless
    /// `only_if_exists`). With `exact_owner` it always ends up root's with `mode`,
    /// whatever it had (a file its reader ignores otherwise).
    Edit {
        edit: EditFn<'p>,
        mode: u32,
        only_if_exists: bool,
        exact_owner: bool,
    },
    /// A text file computed from its own text and another file's (`input`, `None` when
    /// that file does not exist), created with `mode` when missing. The other file is
    /// only read.
    EditWith {
        edit: EditWithFn<'p>,
        input: String,
        mode: u32,
    },
    /// A symlink with this target.
    Link { target: String },
    /// A file hvseed wrote for another plan (e.g. the other network type) and that
    /// this plan does not want: removed if hvseed created it (no backup exists, and
    /// with `marker` the file starts with it, so a file hvseed never touched stays);
    /// if hvseed had replaced someone's file there (its backup exists), that original
    /// is put back.
    Stale { marker: Option<&'static str> },
    /// Someone else's file this plan must not leave where its reader finds it (the
    /// installer's profile of a device hvseed configures differently): removed, its
    /// original kept as the backup (once; a file starting with `marker` is hvseed's and
    /// has no original to keep), so a rollback puts it back.
    Retired { marker: &'static str },
}

/// A text file edited by `f` (created, mode 0644, when missing).
pub fn edit<'p>(path: &str, f: impl Fn(&str) -> String + 'p) -> Target<'p> {
    edit_mode(path, 0o644, f)
}

/// A text file edited by `f`, created with `mode` when missing.
pub fn edit_mode<'p>(path: &str, mode: u32, f: impl Fn(&str) -> String + 'p) -> Target<'p> {
    Target {
        path: path.to_string(),
        kind: TargetKind::Edit {
            edit: Box::new(f),
            mode,
            only_if_exists: false,
            exact_owner: false,
        },
    }
}

/// A text file edited by `f` that is root's with exactly `mode` afterwards, whatever
/// owner and mode it had (NetworkManager ignores a keyfile anyone but root may read).
pub fn edit_exact<'p>(path: &str, mode: u32, f: impl Fn(&str) -> String + 'p) -> Target<'p> {
    Target {
        path: path.to_string(),
        kind: TargetKind::Edit {
            edit: Box::new(f),
            mode,
            only_if_exists: false,
            exact_owner: true,
        },
    }
}

/// A text file edited by `f` only if it exists.
pub fn edit_existing<'p>(path: &str, f: impl Fn(&str) -> String + 'p) -> Target<'p> {
    Target {
        path: path.to_string(),
        kind: TargetKind::Edit {
            edit: Box::new(f),
            mode: 0o644,
            only_if_exists: true,
            exact_owner: false,
        },
    }
}

/// A text file computed by `f` from its own text and from `input`'s (read only),
/// created with `mode` when missing.
pub fn edit_with<'p>(
    path: &str,
    input: &str,
    mode: u32,
    f: impl Fn(&str, Option<&str>) -> String + 'p,
) -> Target<'p> {
    Target {
        path: path.to_string(),
        kind: TargetKind::EditWith {
            edit: Box::new(f),
            input: input.to_string(),
            mode,
        },
    }
}

/// A file this plan does not want, removed if hvseed created it.
pub fn stale<'p>(path: &str) -> Target<'p> {
    Target {
        path: path.to_string(),
        kind: TargetKind::Stale { marker: None },
    }
}

/// A file this plan does not want, removed if hvseed created it, which its text shows
/// by starting with `marker` (a path where other programs write files too).
pub fn stale_marked<'p>(path: &str, marker: &'static str) -> Target<'p> {
    Target {
        path: path.to_string(),
        kind: TargetKind::Stale {
            marker: Some(marker),
        },
    }
}

/// Someone else's file this plan wants gone, kept as the backup (see
/// [`TargetKind::Retired`]); `marker` starts the files hvseed writes there.
pub fn retired<'p>(path: &str, marker: &'static str) -> Target<'p> {
    Target {
        path: path.to_string(),
        kind: TargetKind::Retired { marker },
    }
}

/// A symbolic link to `target`.
pub fn link<'p>(path: &str, target: &str) -> Target<'p> {
    Target {
        path: path.to_string(),
        kind: TargetKind::Link {
            target: target.to_string(),
        },
    }
}

/// Everything `apply` manages for this plan: the files every target has, then its
/// family's ([`crate::target::Family::targets`]). `job` includes the first-boot job
/// (the offline step installs it; `run` leaves it alone so it can disable it).
pub fn targets(plan: &Plan, job: bool) -> Vec<Target<'_>> {
    let mut t = vec![
        edit("/etc/libvirt/libvirtd.conf", libvirt::libvirtd_conf),
        edit("/etc/libvirt/qemu.conf", libvirt::qemu_conf),
        edit("/etc/hosts", move |o| hosts::etc_hosts(o, plan)),
        edit("/etc/cloudstack/agent/agent.properties", move |o| {
            agent_properties::agent_properties(o, plan)
        }),
    ];
    t.extend(crate::target::family(plan.os).targets(plan, job));
    t
}

/// Where the pristine copy of `path` is kept. Beside the file as `<file>.hvseed-orig`,
/// except for network files a service reads by directory: the el6 network service
/// treats every `ifcfg-*` in network-scripts as an interface (it skips only `.orig`,
/// `.bak`, `~`, `.rpm*`), so `ifcfg-eth0.hvseed-orig` would bring the installer's DHCP
/// config back up as a second interface; NetworkManager loads every file in
/// system-connections that is not hidden or named like a backup it knows (`.bak`,
/// `.orig`, `~`, …), `.nmconnection` or not. Those go under /var/lib/hvseed/orig/ with
/// the same name.
pub fn backup_path(path: &str) -> String {
    if path.starts_with("/etc/sysconfig/network-scripts/ifcfg-")
        || path.starts_with(&format!("{}/", crate::files::nm_keyfile::CONNECTIONS_DIR))
    {
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
    /// Removed; with `keep`, the old text is kept as the backup if none exists yet.
    Removed {
        keep: bool,
    },
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

/// A file as it is under ROOT.
struct Existing {
    text: String,
    owner: Owner,
}

/// A file under ROOT as text, with its mode and owner; `None` when it does not exist.
/// `host` is resolved already, so its last component is not followed (O_NOFOLLOW);
/// anything but a regular file within [`bounded::EDIT_LIMIT`] is an error.
fn read_text(host: &Path, shown: &str) -> Result<Option<Existing>, ApplyError> {
    let rerr = |source| ApplyError::Read {
        path: shown.into(),
        source,
    };
    let f = match bounded::open_regular(host, true) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(rerr(source)),
    };
    let meta = f.metadata().map_err(rerr)?;
    let bytes = bounded::read_limited(f, bounded::EDIT_LIMIT).map_err(rerr)?;
    let text = String::from_utf8(bytes).map_err(|_| ApplyError::NotText { path: shown.into() })?;
    Ok(Some(Existing {
        text,
        owner: Owner::of(&meta),
    }))
}

/// Where target `t` is on this system: its path resolved under ROOT; for a link, only
/// its directory is resolved (a link is replaced, not followed).
fn host_path(root: &Root, t: &Target) -> Result<PathBuf, ApplyError> {
    let rerr = |source| ApplyError::Read {
        path: t.path.clone(),
        source,
    };
    match &t.kind {
        TargetKind::Link { .. } => {
            let (dir, name) = t.path.rsplit_once('/').unwrap_or(("", &t.path));
            Ok(root.resolve(dir).map_err(rerr)?.join(name))
        }
        TargetKind::Edit { .. }
        | TargetKind::EditWith { .. }
        | TargetKind::Stale { .. }
        | TargetKind::Retired { .. } => root.resolve(&t.path).map_err(rerr),
    }
}

/// Computes every change for `plan` under `root`, reading but writing nothing.
pub fn compute(plan: &Plan, root: &Root, job: bool) -> Result<Vec<Change>, ApplyError> {
    let mut changes = Vec::new();
    for t in targets(plan, job) {
        let host = host_path(root, &t)?;
        let change = match t.kind {
            TargetKind::Edit {
                edit,
                mode,
                only_if_exists,
                exact_owner,
            } => text_change(t.path, host, (mode, exact_owner), only_if_exists, |old| {
                edit(old)
            })?,
            TargetKind::EditWith { edit, input, mode } => {
                let ihost = root.resolve(&input).map_err(|source| ApplyError::Read {
                    path: input.clone(),
                    source,
                })?;
                let text = read_text(&ihost, &input)?.map(|e| e.text);
                text_change(t.path, host, (mode, false), false, |old| {
                    edit(old, text.as_deref())
                })?
            }
            TargetKind::Link { target } => link_change(t.path, host, target)?,
            TargetKind::Stale { marker } => stale_change(root, t.path, host, marker)?,
            TargetKind::Retired { marker } => {
                read_text(&host, &t.path)?.map(|Existing { text, owner }| Change {
                    new: New::Removed {
                        keep: !text.starts_with(marker),
                    },
                    path: t.path,
                    host_path: host,
                    old: Some(text),
                    owner,
                })
            }
        };
        changes.extend(change);
    }
    Ok(changes)
}

/// A text file's change: `None` when `edit` leaves it as it is (or it is missing and
/// only edited if it exists). `(mode, exact)`: the mode of a new file, or of every
/// file when `exact` (root's too).
fn text_change(
    path: String,
    host: PathBuf,
    (mode, exact): (u32, bool),
    only_if_exists: bool,
    edit: impl Fn(&str) -> String,
) -> Result<Option<Change>, ApplyError> {
    let old = read_text(&host, &path)?;
    if old.is_none() && only_if_exists {
        return Ok(None);
    }
    let new = edit(old.as_ref().map_or("", |e| e.text.as_str()));
    let owner = match &old {
        Some(e) if !exact => e.owner,
        _ => Owner::root(mode),
    };
    if old
        .as_ref()
        .is_some_and(|e| e.text == new && e.owner == owner)
    {
        return Ok(None);
    }
    Ok(Some(Change {
        path,
        host_path: host,
        old: old.map(|e| e.text),
        new: New::Text(new),
        owner,
    }))
}

fn link_change(path: String, host: PathBuf, target: String) -> Result<Option<Change>, ApplyError> {
    if fs::read_link(&host).is_ok_and(|l| l.as_os_str() == target.as_str()) {
        return Ok(None);
    }
    if fs::symlink_metadata(&host).is_ok_and(|m| m.is_dir()) {
        return Err(ApplyError::Read {
            path,
            source: io::Error::new(
                io::ErrorKind::InvalidInput,
                "it is a directory where hvseed puts a symbolic link; remove it",
            ),
        });
    }
    Ok(Some(Change {
        path,
        host_path: host,
        old: None,
        new: New::Link(target),
        owner: Owner::root(0o777),
    }))
}

fn stale_change(
    root: &Root,
    path: String,
    host: PathBuf,
    marker: Option<&str>,
) -> Result<Option<Change>, ApplyError> {
    let backup = root
        .resolve(&backup_path(&path))
        .map_err(|source| ApplyError::Read {
            path: backup_path(&path),
            source,
        })?;
    let current = read_text(&host, &path)?;
    if fs::symlink_metadata(&backup).is_ok() {
        // hvseed replaced someone's file here for another plan: the original comes
        // back (the installer's profile of a device this plan does not configure),
        // instead of hvseed's settings staying behind.
        let Some(orig) = read_text(&backup, &backup_path(&path))? else {
            return Ok(None);
        };
        if current.as_ref().is_some_and(|c| c.text == orig.text) {
            return Ok(None);
        }
        return Ok(Some(Change {
            path,
            host_path: host,
            old: current.map(|c| c.text),
            new: New::Text(orig.text),
            owner: orig.owner,
        }));
    }
    let Some(Existing { text, owner }) = current else {
        return Ok(None);
    };
    if marker.is_some_and(|m| !text.starts_with(m)) {
        return Ok(None);
    }
    Ok(Some(Change {
        path,
        host_path: host,
        old: Some(text),
        new: New::Removed { keep: false },
        owner,
    }))
}

/// Writes the changes: every new content and backup is staged first, then committed;
/// on any error every file already replaced is put back (see [`Staged::commit`]).
pub fn write(changes: &[Change], root: &Root) -> Result<(), ApplyError> {
    stage(changes, root)?.commit()
}

/// One rename (or removal) of the commit, in order.
#[derive(Debug)]
struct Step {
    /// The file as the host sees it.
    shown: String,
    host: PathBuf,
    action: Action,
    /// A backup of another file: not listed among the files put back.
    backup: bool,
}

#[derive(Debug)]
enum Action {
    /// Put the staged temporary file (or symlink) in place of `host`.
    Replace(PathBuf),
    /// Remove `host` (moved aside first, so it can be put back).
    Remove,
}

/// How one committed step is undone.
#[derive(Debug)]
enum Undo {
    /// `host` did not exist: remove it.
    Delete { shown: String, host: PathBuf },
    /// The original is at `aside`: rename it back over `host`.
    Restore {
        shown: String,
        host: PathBuf,
        aside: PathBuf,
    },
}

/// Changes written to temporary files beside their targets, ready to be committed.
/// Dropping it without committing removes the temporaries.
#[derive(Debug)]
pub struct Staged {
    steps: Vec<Step>,
    /// Directories staging created, parents first.
    made_dirs: Vec<PathBuf>,
}

/// Writes every new content (and every first backup) to a temporary file in its
/// target's directory, fsynced, with the final mode and owner. Nothing existing is
/// touched; on an error all temporaries (and directories created for them) are
/// removed again and the error says nothing was changed.
pub fn stage(changes: &[Change], root: &Root) -> Result<Staged, ApplyError> {
    let mut staged = Staged {
        steps: Vec::new(),
        made_dirs: Vec::new(),
    };
    for c in changes {
        let werr = |path: &str| {
            let path = path.to_string();
            move |source| ApplyError::Write {
                path,
                source,
                rollback: Rollback::default(),
            }
        };
        // The first time hvseed replaces or retires someone's file, its text is kept.
        let keep_old = match &c.new {
            New::Text(_) => true,
            New::Removed { keep } => *keep,
            New::Link(_) => false,
        };
        if let (true, Some(old)) = (keep_old, &c.old) {
            let b = backup_path(&c.path);
            let bhost = root.resolve(&b).map_err(werr(&b))?;
            if fs::symlink_metadata(&bhost).is_err() {
                let tmp =
                    fsroot::stage_file(&bhost, old.as_bytes(), c.owner, &mut staged.made_dirs)
                        .map_err(werr(&b))?;
                staged.steps.push(Step {
                    shown: b,
                    host: bhost,
                    action: Action::Replace(tmp),
                    backup: true,
                });
            }
        }
        let action = match &c.new {
            New::Text(text) => Action::Replace(
                fsroot::stage_file(
                    &c.host_path,
                    text.as_bytes(),
                    c.owner,
                    &mut staged.made_dirs,
                )
                .map_err(werr(&c.path))?,
            ),
            New::Link(target) => Action::Replace(
                fsroot::stage_link(&c.host_path, target, &mut staged.made_dirs)
                    .map_err(werr(&c.path))?,
            ),
            New::Removed { .. } => Action::Remove,
        };
        staged.steps.push(Step {
            shown: c.path.clone(),
            host: c.host_path.clone(),
            action,
            backup: false,
        });
    }
    Ok(staged)
}

impl Staged {
    /// Replaces the targets in order. Each original is first hard-linked aside
    /// (`.<name>.hvseed-undo`, or renamed aside where a hard link is impossible), so the
    /// target never goes missing; on the first error every step already done is undone
    /// in reverse, and the error lists what was put back (or, if putting back failed
    /// too, exactly which file is still changed and where its original is).
    pub fn commit(mut self) -> Result<(), ApplyError> {
        let _held = SignalsHeld::hold();
        let steps = std::mem::take(&mut self.steps);
        let mut undo: Vec<Undo> = Vec::new();
        let mut failure = None;
        let mut iter = steps.iter();
        for step in iter.by_ref() {
            match commit_step(step) {
                Ok(Some(u)) => undo.push(u),
                Ok(None) => {}
                Err(StepFailed { error, undo: done }) => {
                    // A step that changed its target before failing (the rename
                    // worked, the directory fsync did not) is undone with the others.
                    undo.extend(done);
                    failure = Some((step, error));
                    break;
                }
            }
        }
        let Some((failed, source)) = failure else {
            // Done: the originals kept aside are not needed any more (the backups
            // hold the pristine ones).
            for u in &undo {
                if let Undo::Restore { aside, .. } = u {
                    let _ = fs::remove_file(aside);
                }
            }
            self.remove_made_dirs_if_empty();
            return Ok(());
        };
        // The failed step left at most its undo (pushed above); it and the later ones
        // leave only temporaries.
        for step in std::iter::once(failed).chain(iter) {
            if let Action::Replace(tmp) = &step.action {
                let _ = fs::remove_file(tmp);
            }
        }
        let mut rollback = Rollback::default();
        let is_backup = |shown: &str| steps.iter().any(|s| s.backup && s.shown == shown);
        for u in undo.iter().rev() {
            match u {
                Undo::Delete { shown, host } => match fs::remove_file(host) {
                    Ok(()) => {
                        let _ = fsroot::sync_parent(host);
                        if !is_backup(shown) {
                            rollback.restored.push(format!("{shown} (removed again)"));
                        }
                    }
                    Err(e) => rollback
                        .failed
                        .push(format!("{shown} (hvseed created it; not removed: {e})")),
                },
                Undo::Restore { shown, host, aside } => match fs::rename(aside, host) {
                    Ok(()) => {
                        let _ = fsroot::sync_parent(host);
                        rollback.restored.push(shown.clone());
                    }
                    Err(e) => rollback.failed.push(format!(
                        "{shown} (not put back; its original is {}: {e})",
                        aside.display()
                    )),
                },
            }
        }
        rollback.restored.reverse();
        self.remove_made_dirs_if_empty();
        Err(ApplyError::Write {
            path: failed.shown.clone(),
            source,
            rollback,
        })
    }

    fn remove_made_dirs_if_empty(&mut self) {
        for d in std::mem::take(&mut self.made_dirs).iter().rev() {
            // Only empty ones go: a directory a committed file now lives in stays.
            let _ = fs::remove_dir(d);
        }
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        for step in &self.steps {
            if let Action::Replace(tmp) = &step.action {
                let _ = fs::remove_file(tmp);
            }
        }
        self.remove_made_dirs_if_empty();
    }
}

/// A failed commit step.
struct StepFailed {
    error: io::Error,
    /// How to undo what the step changed before it failed, if anything.
    undo: Option<Undo>,
}

/// One step of the commit. On error, the undo of what this step already changed (a
/// target renamed into place whose directory fsync then failed) comes with the error,
/// so the rollback puts it back and reports it like the steps before; otherwise
/// nothing of this step is left changed.
fn commit_step(step: &Step) -> Result<Option<Undo>, StepFailed> {
    let bare = |error: io::Error| StepFailed { error, undo: None };
    let changed = |error: io::Error, undo: Undo| StepFailed {
        error,
        undo: Some(undo),
    };
    let host = &step.host;
    let restore = |aside: PathBuf| Undo::Restore {
        shown: step.shown.clone(),
        host: host.clone(),
        aside,
    };
    // Once the target is changed, a failed directory fsync is still an error, and the
    // rollback undoes the change.
    let synced = |undo: Undo| match fsroot::sync_parent(host) {
        Ok(()) => Ok(Some(undo)),
        Err(e) => Err(changed(e, undo)),
    };
    let existing = match fs::symlink_metadata(host) {
        Ok(m) => Some(m),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(bare(e)),
    };
    if existing.as_ref().is_some_and(|m| m.is_dir()) {
        return Err(bare(io::Error::new(
            io::ErrorKind::InvalidInput,
            "it is a directory now (it changed while apply ran)",
        )));
    }
    match &step.action {
        Action::Replace(tmp) => {
            if step.backup && existing.is_some() {
                // A backup appeared meanwhile: the older pristine copy wins.
                let _ = fs::remove_file(tmp);
                return Ok(None);
            }
            let Some(_) = existing else {
                if let Err(e) = fs::rename(tmp, host) {
                    let _ = fs::remove_file(tmp);
                    return Err(bare(e));
                }
                // The file exists now: the rollback removes it again.
                return synced(Undo::Delete {
                    shown: step.shown.clone(),
                    host: host.clone(),
                });
            };
            let aside = fsroot::side_name(host, "undo");
            if let Err(e) = undo_free(&aside) {
                let _ = fs::remove_file(tmp);
                return Err(bare(e));
            }
            let linked = fs::hard_link(host, &aside).is_ok();
            if !linked {
                if let Err(e) = fs::rename(host, &aside) {
                    let _ = fs::remove_file(tmp);
                    return Err(bare(e));
                }
            }
            if let Err(e) = fs::rename(tmp, host) {
                let _ = fs::remove_file(tmp);
                if linked {
                    let _ = fs::remove_file(&aside);
                    return Err(bare(e));
                }
                // The original is aside and the target missing: the rollback renames
                // it back (and says so if it cannot).
                return Err(changed(e, restore(aside)));
            }
            // The file is replaced: the rollback puts the original back.
            synced(restore(aside))
        }
        Action::Remove => {
            if existing.is_none() {
                return Ok(None);
            }
            let aside = fsroot::side_name(host, "undo");
            undo_free(&aside).map_err(bare)?;
            fs::rename(host, &aside).map_err(bare)?;
            synced(restore(aside))
        }
    }
}

/// Finishes what an interrupted commit (a power cut, a kill) left: for every file
/// apply manages (for any plan of this host, the job included), a `.<name>.hvseed-undo`
/// beside it is the original the commit had set aside. The commit sets it aside
/// (hard link, or rename where no link is possible), then renames the new file over
/// the target, and removes the undo files only when every file is in place; a rollback
/// renames the undo back. So:
///
/// - target missing, undo there: the power cut came between the rename aside and the
///   rename into place (or the file was being removed): the undo is the only copy of the
///   original, and it is renamed back.
/// - both there: the undo is stale (either the same inode as the target, before its
///   replacement, or the original of a file already replaced, whose pristine copy is in
///   its `.hvseed-orig`): it is removed.
///
/// Either way the file is then complete, the old or the new one, and the normal apply
/// that follows finishes the job. Returns one line per undo file handled; with
/// `dry_run` it only says what it would do.
pub fn recover(plan: &Plan, root: &Root, dry_run: bool) -> Result<Vec<String>, ApplyError> {
    let mut lines = Vec::new();
    let _held = (!dry_run).then(SignalsHeld::hold);
    for t in targets(plan, true) {
        let host = host_path(root, &t)?;
        let undo = fsroot::side_name(&host, "undo");
        let shown_undo = {
            let (dir, _) = t.path.rsplit_once('/').unwrap_or(("", &t.path));
            format!(
                "{dir}/{}",
                undo.file_name().unwrap_or_default().to_string_lossy()
            )
        };
        let fail = |source| ApplyError::Recover {
            path: t.path.clone(),
            undo: shown_undo.clone(),
            source,
        };
        match fs::symlink_metadata(&undo) {
            // No undo file (or not even the directory: the apply below says what is
            // in the way).
            Err(e)
                if e.kind() == io::ErrorKind::NotFound
                    || e.raw_os_error() == Some(libc::ENOTDIR) =>
            {
                continue
            }
            Err(e) => return Err(fail(e)),
            Ok(m) if m.is_dir() => {
                return Err(fail(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "it is a directory where hvseed keeps an original aside; remove it",
                )))
            }
            Ok(_) => {}
        }
        let target_there = match fs::symlink_metadata(&host) {
            Ok(_) => true,
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => return Err(fail(e)),
        };
        let would = if dry_run { "would " } else { "" };
        if target_there {
            if !dry_run {
                fs::remove_file(&undo).map_err(fail)?;
                fsroot::sync_parent(&host).map_err(fail)?;
            }
            lines.push(format!(
                "{would}remove {shown_undo} (left by an interrupted apply; {} is complete)",
                t.path
            ));
        } else {
            if !dry_run {
                fs::rename(&undo, &host).map_err(fail)?;
                fsroot::sync_parent(&host).map_err(fail)?;
            }
            lines.push(format!(
                "{would}put back {} from {shown_undo} (left by an interrupted apply)",
                t.path
            ));
        }
    }
    Ok(lines)
}

/// SIGINT, SIGTERM and SIGHUP held back (blocked) while this lives, so the commit and
/// its rollback are all-or-nothing for them: a `kill` at shutdown (of `run`) or of
/// `apply` in `%post` takes effect when the guard drops, with every target in place or
/// every original back. Only the calling thread's mask changes: the agent commits from
/// its only thread. `rt_sigprocmask` is as old as Linux 2.2.
struct SignalsHeld {
    old: libc::sigset_t,
}

impl SignalsHeld {
    fn hold() -> SignalsHeld {
        // SAFETY: sigset_t is plain data, initialised by sigemptyset before use;
        // pthread_sigmask only reads `set` and writes `old`.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
                libc::sigaddset(&mut set, sig);
            }
            libc::sigemptyset(&mut old);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
            SignalsHeld { old }
        }
    }
}

impl Drop for SignalsHeld {
    fn drop(&mut self) {
        // SAFETY: restores the mask saved by `hold`; a signal that came meanwhile is
        // delivered now.
        unsafe {
            libc::pthread_sigmask(libc::SIG_SETMASK, &self.old, std::ptr::null_mut());
        }
    }
}

/// An undo file is never overwritten or removed by the commit: it may be the only copy
/// of an original ([`recover`] deals with those before anything is computed).
fn undo_free(aside: &Path) -> io::Result<()> {
    match fs::symlink_metadata(aside) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{} appeared while apply ran (another apply?); run apply again",
                aside.display()
            ),
        )),
    }
}

/// The whole offline step.
pub fn apply(plan: &Plan, root_dir: &Path, opts: Options) -> Result<Outcome, ApplyError> {
    let root = Root::open(root_dir).map_err(|source| ApplyError::Root {
        root: root_dir.display().to_string(),
        source,
    })?;
    let mut text = String::new();
    for l in recover(plan, &root, opts.dry_run)? {
        let _ = writeln!(text, "{l}");
    }
    let changes = compute(plan, &root, opts.job)?;
    for c in &changes {
        let verb = if opts.dry_run {
            "would change"
        } else {
            "changed"
        };
        let what = match (&c.new, &c.old) {
            (New::Link(t), _) => format!(" (symlink to {t})"),
            (New::Text(_), None) => " (new file)".into(),
            (New::Removed { keep: false }, _) => {
                " (removed: written by hvseed for another plan)".into()
            }
            (New::Removed { keep: true }, _) => {
                format!(" (removed, kept as {})", backup_path(&c.path))
            }
            _ => String::new(),
        };
        let _ = writeln!(text, "{verb} {}{what}", c.path);
        if opts.diff {
            match &c.new {
                New::Text(new) => {
                    text.push_str(&crate::diff::unified(&c.path, c.old.as_deref(), new))
                }
                New::Removed { .. } => text.push_str(&crate::diff::deleted(
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
