//! Files inside the FAT images of an ISO (the UEFI El Torito image), read and written
//! with mtools on an extracted copy of the image: no root, no loop mount.
//!
//! Every mtools command runs with `MTOOLS_SKIP_CHECK=1`: mtools refuses FAT images
//! whose geometry it finds odd (common for El Torito images); the check guards
//! floppies, not images.

use std::path::Path;

use anyhow::{Context, Result};

use crate::tool::Tool;

/// An mtools program, with the geometry check off (see the module's header).
fn mtools(program: &str) -> Tool {
    Tool::new(program).env("MTOOLS_SKIP_CHECK", "1")
}

/// Every file in the image, as `::/DIR/NAME`.
pub fn list(img: &Path) -> Result<Vec<String>> {
    let out = mtools("mdir")
        .args(["-/", "-b", "-i"])
        .arg(img)
        .arg("::/")
        .run()
        .with_context(|| format!("listing the FAT image {}", img.display()))?;
    Ok(String::from_utf8_lossy(&out)
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("::/") && !l.ends_with('/'))
        .map(str::to_string)
        .collect())
}

/// The bytes of `path` (`::/...`) in the image.
pub fn read(img: &Path, path: &str) -> Result<Vec<u8>> {
    mtools("mcopy")
        .args(["-n", "-i"])
        .arg(img)
        .args([path, "-"])
        .run()
        .with_context(|| format!("reading {path} from the FAT image {}", img.display()))
}

/// Replaces `path` (`::/...`) in the image with the local file `local`.
pub fn write(img: &Path, local: &Path, path: &str) -> Result<()> {
    mtools("mcopy")
        .args(["-o", "-i"])
        .arg(img)
        .arg(local)
        .arg(path)
        .run()
        .with_context(|| {
            format!(
                "writing {path} into the FAT image {} (is the image full?)",
                img.display()
            )
        })?;
    Ok(())
}
