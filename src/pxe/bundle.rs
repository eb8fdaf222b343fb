//! A reproducible tar.gz of the tree: entries sorted by path, every mtime 0, owner
//! root (0/0), fixed modes, no timestamp or file name in the gzip header — the same
//! tree gives the same bytes, so a bundle can be checksummed and compared in CI.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};

/// The temporary file beside the bundle (then the owner tag).
const BUNDLE_BASE: &str = ".hvseed-bundle-";

/// `files`: (path relative to the tree, mode), any order.
pub fn write(tree: &super::beneath::Beneath, files: &[(String, u32)], out: &Path) -> Result<()> {
    let mut files = files.to_vec();
    files.sort();
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    crate::interrupt::remove_stale(parent, BUNDLE_BASE, "");
    let (tmp, _guard) = crate::interrupt::temp_file_in(parent, BUNDLE_BASE, "")
        .with_context(|| format!("creating a temporary file in {}", parent.display()))?;
    let gz = flate2::GzBuilder::new().mtime(0).operating_system(3).write(
        std::io::BufWriter::new(tmp.reopen()?),
        flate2::Compression::default(),
    );
    let mut tar = tar::Builder::new(gz);
    tar.mode(tar::HeaderMode::Deterministic);
    let mut dirs_done = std::collections::BTreeSet::new();
    for (rel, mode) in &files {
        // Parent directories first, once each, so the archive unpacks anywhere.
        let mut prefix = String::new();
        for comp in rel
            .split('/')
            .collect::<Vec<_>>()
            .split_last()
            .map(|x| x.1)
            .unwrap_or(&[])
        {
            prefix.push_str(comp);
            prefix.push('/');
            if dirs_done.insert(prefix.clone()) {
                let mut h = header(tar::EntryType::Directory, 0o755, 0);
                tar.append_data(&mut h, &prefix, std::io::empty())
                    .with_context(|| format!("adding {prefix} to the bundle"))?;
            }
        }
        // Read without following a link anywhere on the way.
        let f = tree.open_file(rel)?.with_context(|| {
            format!(
                "{} is not a regular file of the tree any more",
                tree.show(rel).display()
            )
        })?;
        let len = f.metadata()?.len();
        let mut h = header(tar::EntryType::Regular, *mode, len);
        tar.append_data(&mut h, rel, std::io::BufReader::new(f))
            .with_context(|| format!("adding {rel} to the bundle"))?;
    }
    let gz = tar.into_inner().context("writing the bundle")?;
    let mut w = gz.finish().context("writing the bundle")?;
    std::io::Write::flush(&mut w).context("writing the bundle")?;
    drop(w);
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o644))?;
    tmp.persist(out)
        .with_context(|| format!("writing {}", out.display()))?;
    Ok(())
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    let _ = h.set_username("root");
    let _ = h.set_groupname("root");
    h
}
