//! Writing the new ISO safely and fast: copy the source next to the output (in-kernel
//! `copy_file_range`, reflinked where the filesystem allows; in a background thread
//! while the new session is prepared), then let xorriso append
//! one small session to the copy in place (`-dev COPY -boot_image any replay ...
//! -commit`), and rename the copy over the output only when all of it succeeded.
//! Measured (docs/benchmarks.md, "iso"): this costs a copy plus well under a second,
//! where rewriting the whole image (`-indev/-outdev`) costs ~4× a copy. Memory stays
//! flat: the copy runs in the kernel and xorriso only holds the directory tree.

use std::fs::File;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context, Result};

use crate::tool::Tool;

/// Refuses outputs that would destroy the input or something that is not a plain file.
pub fn check_output(source: &Path, out: &Path) -> Result<()> {
    std::fs::metadata(source).with_context(|| format!("reading {}", source.display()))?;
    out.file_name()
        .with_context(|| format!("--out {} names no file", out.display()))?;
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    parent
        .canonicalize()
        .with_context(|| format!("the directory of --out {} does not exist", out.display()))?;
    // The same rule as every verb's: by device and inode, through links.
    crate::overlap::check(
        &[crate::overlap::Input {
            role: "--source ISO",
            path: source,
        }],
        &[crate::overlap::Output {
            role: "--out",
            path: out,
        }],
    )?;
    if let Ok(m) = std::fs::symlink_metadata(out) {
        if !m.is_file() {
            bail!(
                "--out {} exists and is not a regular file; hvseed writes an ISO file \
                 (copy it to a USB stick afterwards, e.g. with dd)",
                out.display()
            );
        }
    }
    Ok(())
}

/// One file to add or replace in the new session.
#[derive(Debug, Clone)]
pub struct Mapping {
    pub local: PathBuf,
    /// Absolute path in the ISO.
    pub iso: String,
}

/// What the new session changes.
#[derive(Debug, Clone, Default)]
pub struct Session {
    pub mappings: Vec<Mapping>,
    /// ISO directories whose files get `chmod a+r,u+w` + root ownership.
    pub owned_dirs: Vec<String>,
    /// ISO paths that are made executable.
    pub executables: Vec<String>,
    /// Keep a Joliet tree (the source had one).
    pub joliet: bool,
}

/// The copy of the source ISO beside `out`, made by a background thread while hvseed
/// prepares the new session (listing the ISO, extracting and editing the menus, building
/// the initrd), so the two overlap on a machine with more than one core. Dropping it
/// without [`PendingCopy::commit`] stops the copy and removes the temporary file.
pub struct PendingCopy {
    source: PathBuf,
    cancel: Arc<AtomicBool>,
    copier: Option<std::thread::JoinHandle<Result<()>>>,
    tmp: Option<tempfile::NamedTempFile>,
    /// Keeps the temporary file on the interrupt list (dropped after `tmp`).
    _guard: crate::interrupt::Guard,
}

/// The temporary file's name beside `OUT`: `.OUT.hvseed-PID-START-XXXXXX.partial`.
fn partial_base(out: &Path) -> String {
    format!(
        ".{}.hvseed-",
        out.file_name().unwrap_or_default().to_string_lossy()
    )
}

/// Removes the temporary files beside `out` left by runs of hvseed that no longer
/// exist (killed with SIGKILL, a power cut); a user's file or a running hvseed's
/// temporary file is kept.
pub fn remove_stale_partials(out: &Path) {
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    crate::interrupt::remove_stale(dir, &partial_base(out), ".partial");
}

/// Starts copying `source` to a temporary file in the directory of `out`.
pub fn start_copy(source: &Path, out: &Path) -> Result<PendingCopy> {
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let (tmp, guard) = crate::interrupt::temp_file_in(dir, &partial_base(out), ".partial")
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    let dst = tmp
        .as_file()
        .try_clone()
        .with_context(|| format!("opening {}", tmp.path().display()))?;
    let cancel = Arc::new(AtomicBool::new(false));
    let copier = {
        let (source, dst_path, cancel) = (
            source.to_path_buf(),
            tmp.path().to_path_buf(),
            Arc::clone(&cancel),
        );
        std::thread::Builder::new()
            .name("iso-copy".into())
            .spawn(move || copy_with_progress(&source, &dst, &dst_path, &cancel))
            .context("starting the copy")?
    };
    Ok(PendingCopy {
        source: source.to_path_buf(),
        cancel,
        copier: Some(copier),
        tmp: Some(tmp),
        _guard: guard,
    })
}

impl PendingCopy {
    /// Waits for the copy, appends `session` to it in place with xorriso and renames
    /// it to `out`.
    pub fn commit(mut self, session: &Session, out: &Path) -> Result<()> {
        let copier = self.copier.take().expect("commit runs once");
        let tmp = self.tmp.take().expect("commit runs once");
        let waited = std::time::Instant::now();
        let copied = copier
            .join()
            .map_err(|_| anyhow::anyhow!("the copy thread panicked"))?;
        tracing::debug!(
            "waited {:.3} s for the copy after preparing the session",
            waited.elapsed().as_secs_f64()
        );
        copied.with_context(|| {
            format!(
                "copying {} to {}",
                self.source.display(),
                tmp.path().display()
            )
        })?;

        let mut tool = Tool::new("xorriso")
            .args(["-abort_on", "FAILURE", "-return_with", "SORRY", "32"])
            // xorriso fsyncs an output file by default, which here would force the
            // whole fresh copy to disk and cost about half a copy again; a plain cp
            // does not either, and the rename below only happens after xorriso
            // succeeded.
            .args(["-stdio_sync", "off", "-dev"])
            .arg(crate::isoread::xorriso_file(tmp.path()))
            .args(["-boot_image", "any", "replay"]);
        if session.joliet {
            tool = tool.args(["-joliet", "on"]);
        }
        for m in &session.mappings {
            tool = tool.arg("-map").arg(&m.local).arg(&m.iso);
        }
        for d in &session.owned_dirs {
            tool = tool
                .args(["-chown_r", "0", d, "--", "-chgrp_r", "0", d, "--"])
                .args(["-chmod_r", "a+r,u+w,go-w", d, "--"]);
        }
        for x in &session.executables {
            tool = tool.args(["-chmod", "a+x", x, "--"]);
        }
        tool = tool.arg("-commit");
        tracing::info!(
            "adding {} file(s) to the copy (xorriso)",
            session.mappings.len()
        );
        let started = std::time::Instant::now();
        tool.run()
            .with_context(|| format!("writing the new session to {}", tmp.path().display()))?;
        tracing::debug!(
            "xorriso wrote the session in {:.3} s",
            started.elapsed().as_secs_f64()
        );

        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644))
            .with_context(|| format!("chmod {}", tmp.path().display()))?;
        let _whole = crate::interrupt::critical();
        tmp.persist(out)
            .map_err(|e| e.error)
            .with_context(|| format!("renaming the finished ISO to {}", out.display()))?;
        Ok(())
    }
}

impl Drop for PendingCopy {
    /// Stops an unfinished copy; the temporary file goes with `tmp`, after the thread
    /// that writes it has ended.
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
        if let Some(c) = self.copier.take() {
            let _ = c.join();
        }
    }
}

/// Chunk size for the copy (one `copy_file_range` call each). A loop of such calls on
/// a cached 4 GiB file here took a median 4.4 s with 64 MiB calls and ~2.5 s with 1 GiB
/// calls or one call for the whole file (`cp` makes one call); past ~2 GiB every
/// writer is throttled to the disk's writeback speed (docs/benchmarks.md). 1 GiB still
/// moves the progress bar every second or so.
const CHUNK: u64 = 1 << 30;

fn copy_with_progress(
    source: &Path,
    dst: &File,
    dst_path: &Path,
    cancel: &AtomicBool,
) -> Result<()> {
    let src = File::open(source).with_context(|| format!("opening {}", source.display()))?;
    let total = src.metadata()?.len();
    let bar = std::io::stderr().is_terminal().then(|| {
        let b = indicatif::ProgressBar::new(total);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "copying {bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .expect("static template"),
        );
        b
    });
    tracing::info!(
        "copying {} ({} MiB) to {}",
        source.display(),
        total >> 20,
        dst_path.display()
    );
    let mut done = 0u64;
    let mut next_log = total / 4;
    let mut w = dst;
    loop {
        if cancel.load(Ordering::Relaxed) {
            bail!("stopped");
        }
        // io::copy between files uses copy_file_range (no user-space buffer), also for
        // a `take` of one.
        let n = std::io::copy(&mut (&src).take(CHUNK), &mut w).map_err(|e| {
            if e.kind() == std::io::ErrorKind::StorageFull {
                anyhow::anyhow!(
                    "the disk is full ({} MiB needed for the new ISO): free some space or \
                     write --out to another disk",
                    (total >> 20) + 1
                )
            } else {
                anyhow::Error::new(e)
            }
        })?;
        if n == 0 {
            break;
        }
        done += n;
        match &bar {
            Some(b) => b.set_position(done),
            None if done >= next_log && done < total => {
                tracing::info!("copied {}% ({} MiB)", done * 100 / total.max(1), done >> 20);
                next_log += total / 4;
            }
            None => {}
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if done != total {
        bail!("copied {done} bytes but {} has {total}", source.display());
    }
    tracing::debug!("copied {} MiB", total >> 20);
    Ok(())
}
