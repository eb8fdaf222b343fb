//! Writing a rendered tree: everything goes to a temporary directory beside the
//! destination, which is then moved into place, so `--out DIR` is never half-written.
//! `DIR/.hvseed-render` lists what hvseed wrote; a `DIR` holding anything else is
//! refused unless `--force`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::RenderedTree;

/// The manifest: one relative path per line, the files hvseed wrote into the directory.
pub const MANIFEST: &str = ".hvseed-render";

/// Writes `tree` as `out`, replacing an earlier render of hvseed's.
pub fn write_tree(out: &Path, tree: &RenderedTree, force: bool) -> Result<()> {
    if let Ok(meta) = std::fs::symlink_metadata(out) {
        if !meta.is_dir() {
            if !force {
                bail!(
                    "{} exists and is not a directory; remove it or use --force to replace it",
                    out.display()
                );
            }
        } else if !force {
            let foreign = foreign_files(out)?;
            if !foreign.is_empty() {
                let shown: Vec<String> = foreign
                    .iter()
                    .take(5)
                    .map(|p| p.display().to_string())
                    .collect();
                bail!(
                    "{} holds {} file(s) hvseed did not write (e.g. {}); choose another --out \
                     directory or use --force to replace it",
                    out.display(),
                    foreign.len(),
                    shown.join(", ")
                );
            }
        }
    }
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).with_context(|| format!("creating {}", parent.display()))?;
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    remove_stale(&parent, &name, out);
    let (tmp, _tmp_guard) = crate::interrupt::temp_dir_in(&parent, &tmp_base(&name))
        .with_context(|| format!("creating a temporary directory in {}", parent.display()))?;
    let mut made: HashSet<PathBuf> = HashSet::new();
    let mut manifest = String::new();
    for (rel, bytes) in tree {
        let path = tmp.path().join(rel);
        if let Some(dir) = path.parent() {
            if made.insert(dir.to_path_buf()) {
                crate::interrupt::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
        }
        crate::interrupt::write(&path, bytes.as_ref())
            .with_context(|| format!("writing {}", path.display()))?;
        manifest.push_str(rel);
        manifest.push('\n');
    }
    crate::interrupt::write(&tmp.path().join(MANIFEST), manifest.as_bytes())
        .with_context(|| format!("writing {}", tmp.path().join(MANIFEST).display()))?;
    // Move the old tree aside, the new one in, then drop the old one; an interrupt
    // waits for the two renames (it then removes the old tree).
    let whole = crate::interrupt::critical();
    let mut old_guard = None;
    let old = if std::fs::symlink_metadata(out).is_ok() {
        let (old, guard) = crate::interrupt::temp_dir_in(&parent, &old_base(&name))
            .with_context(|| format!("creating a temporary directory in {}", parent.display()))?;
        old_guard = Some(guard);
        let aside = old.path().join("old");
        std::fs::rename(out, &aside)
            .with_context(|| format!("moving the previous {} aside", out.display()))?;
        Some(old)
    } else {
        None
    };
    let tmp_path = tmp.keep();
    if let Err(e) = std::fs::rename(&tmp_path, out) {
        if let Some(old) = &old {
            let _ = std::fs::rename(old.path().join("old"), out);
        }
        let _ = std::fs::remove_dir_all(&tmp_path);
        return Err(e).with_context(|| format!("moving the new render into {}", out.display()));
    }
    drop(whole);
    drop(old);
    drop(old_guard);
    Ok(())
}

/// `.NAME.hvseed-tmp-`: the new tree being written (then the owner tag).
fn tmp_base(name: &str) -> String {
    format!(".{name}.hvseed-tmp-")
}

/// `.NAME.hvseed-old-`: the previous tree, moved aside (then the owner tag).
fn old_base(name: &str) -> String {
    format!(".{name}.hvseed-old-")
}

/// Removes what a run of hvseed that no longer exists left beside `out`. If it died
/// between moving the previous tree aside and the new one in, `out` is missing and
/// the previous tree is put back first.
fn remove_stale(parent: &Path, name: &str, out: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    let base = old_base(name);
    for e in entries.flatten() {
        if crate::interrupt::is_stale(&e.file_name(), &base, "")
            && std::fs::symlink_metadata(out).is_err()
            && std::fs::rename(e.path().join("old"), out).is_ok()
        {
            tracing::warn!(
                "put back {}, which an interrupted run of hvseed had moved aside",
                out.display()
            );
        }
    }
    crate::interrupt::remove_stale(parent, &base, "");
    crate::interrupt::remove_stale(parent, &tmp_base(name), "");
}

/// Files (and symlinks) under `dir` that the manifest does not list.
fn foreign_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let listed: HashSet<String> = match std::fs::read_to_string(dir.join(MANIFEST)) {
        Ok(s) => s.lines().map(str::to_string).collect(),
        Err(_) => HashSet::new(),
    };
    let mut foreign = Vec::new();
    for e in walkdir::WalkDir::new(dir).min_depth(1) {
        let e = e.with_context(|| format!("reading {}", dir.display()))?;
        if e.file_type().is_dir() {
            continue;
        }
        let rel = e.path().strip_prefix(dir).unwrap_or(e.path());
        let rel_s = rel.to_string_lossy();
        if rel_s == MANIFEST && !listed.is_empty() {
            continue;
        }
        if !listed.contains(rel_s.as_ref()) {
            foreign.push(rel.to_path_buf());
        }
    }
    foreign.sort();
    Ok(foreign)
}
