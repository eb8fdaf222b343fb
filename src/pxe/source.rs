//! The install ISO as `hvseed pxe` uses it: its identity (to reuse what was extracted
//! before), its flavour and what the installer needs from it per flavour ([`Layout`]);
//! the reading itself is [`crate::isoread`]'s, shared with `hvseed iso`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::inventory::Os;
use crate::isoread;

/// An ISO 9660 image on disk.
#[derive(Debug, Clone)]
pub struct Iso {
    pub path: PathBuf,
    /// Size, modification time and volume id: what decides whether files extracted
    /// from it earlier can be reused.
    pub identity: String,
}

/// What the installer needs from the ISO: the target's PXE layout.
pub use crate::target::PxeLayout as Layout;

pub fn layout(os: Os) -> &'static Layout {
    &crate::target::of(os).pxe
}

impl Iso {
    /// Checks that `path` is a complete ISO 9660 image and computes its identity.
    pub fn open(path: &Path) -> Result<Iso> {
        let volid = isoread::check_header(path)?.volume_id;
        let meta =
            std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        Ok(Iso {
            path: path.to_path_buf(),
            identity: format!("size={} mtime_ns={mtime} volid={volid}", meta.len()),
        })
    }

    /// Checks from the ISO's own files that it is the installer of `os` (the same
    /// recognition as `hvseed iso`).
    pub fn check_flavour(&self, os: Os, scratch: &Path) -> Result<()> {
        let probe = scratch.join("identity");
        let found = isoread::identify(&self.path, os, &probe)?;
        tracing::info!(
            "{}: {} (volume id \"{}\")",
            self.path.display(),
            found.flavour.name(),
            found.volume_id
        );
        let _ = std::fs::remove_dir_all(&probe);
        Ok(())
    }

    /// Which of `paths` (files or directories, absolute inside the ISO) it lacks.
    pub fn missing<'p>(&self, paths: &[&'p str]) -> Result<Vec<&'p str>> {
        isoread::missing(&self.path, paths)
    }

    /// Extracts files or directories (`(path in the ISO, local path)`), made writable
    /// for the owner so that hvseed can replace or remove them later.
    pub fn extract(&self, pairs: &[(&str, &Path)]) -> Result<()> {
        isoread::extract_to(&self.path, pairs)
    }
}
