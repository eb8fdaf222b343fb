//! Finding the build host's pxelinux.0 and ldlinux.c32 and making sure both come from
//! the same syslinux version.
//!
//! pxelinux.0 (the core) and ldlinux.c32 (its ELF half) link against each other's
//! symbols; a pair from different syslinux versions stops at "Failed to load
//! ldlinux.c32" on the machine being installed, which an operator sees only on that
//! machine's screen. So the pair is checked here, where the error can name the files.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Debian's locations (packages `pxelinux` and `syslinux-common`).
pub const DEFAULT_PXELINUX_DIR: &str = "/usr/lib/PXELINUX";
pub const DEFAULT_MODULES_DIR: &str = "/usr/lib/syslinux/modules/bios";

/// The BIOS boot loader files that go to the TFTP root.
#[derive(Debug, Clone)]
pub struct Syslinux {
    pub pxelinux: PathBuf,
    pub ldlinux: PathBuf,
    /// e.g. `6.04`.
    pub version: String,
}

/// Finds pxelinux.0 and ldlinux.c32 and checks that their versions agree, unless
/// `checked_before` says this very pair (same paths, sizes and mtimes) passed already.
pub fn locate(
    pxelinux_dir: Option<&Path>,
    modules_dir: Option<&Path>,
    checked_before: impl Fn(&Path, &Path) -> bool,
) -> Result<Syslinux> {
    let pdir = pxelinux_dir.unwrap_or(Path::new(DEFAULT_PXELINUX_DIR));
    let mdir = modules_dir.unwrap_or(Path::new(DEFAULT_MODULES_DIR));
    let pxelinux = pdir.join("pxelinux.0");
    let ldlinux = mdir.join("ldlinux.c32");
    for (p, flag, pkg) in [
        (&pxelinux, "--pxelinux-dir", "pxelinux"),
        (&ldlinux, "--syslinux-modules", "syslinux-common"),
    ] {
        if !p.is_file() {
            bail!(
                "{} not found; install syslinux's BIOS files (Debian: apt-get install pxelinux \
                 syslinux-common) or point {flag} at the directory holding it (package `{pkg}`)",
                p.display()
            );
        }
    }
    if checked_before(&pxelinux, &ldlinux) {
        return Ok(Syslinux {
            pxelinux,
            ldlinux,
            version: "(checked by an earlier run)".into(),
        });
    }
    let core =
        std::fs::read(&pxelinux).with_context(|| format!("reading {}", pxelinux.display()))?;
    let Some(core_version) = banner_version(&core) else {
        bail!(
            "{}: no PXELINUX version banner in it; is it really syslinux's pxelinux.0?",
            pxelinux.display()
        );
    };
    let module_version = modules_version(&ldlinux, mdir)?;
    match module_version {
        Some(v) if v != core_version => bail!(
            "{} is PXELINUX {core_version} but the modules in {} are syslinux {v}: \
             pxelinux.0 and ldlinux.c32 must come from the same syslinux build or the \
             machine stops at \"Failed to load ldlinux.c32\"; point --pxelinux-dir and \
             --syslinux-modules at one syslinux version",
            pxelinux.display(),
            mdir.display()
        ),
        Some(_) => {}
        None => bail!(
            "cannot tell which syslinux version the modules in {} are (no version string in \
             ldlinux.c32 or its sibling modules); pxelinux.0 is {core_version}: use the \
             modules shipped with that pxelinux.0",
            mdir.display()
        ),
    }
    dpkg_check(&pxelinux, &ldlinux)?;
    Ok(Syslinux {
        pxelinux,
        ldlinux,
        version: core_version,
    })
}

/// `PXELINUX 6.04 PXE 20200816` → `6.04` (the banner pxelinux.0 prints at start).
pub fn banner_version(bytes: &[u8]) -> Option<String> {
    find_version_after(bytes, b"PXELINUX ")
}

/// The syslinux version of a module directory: a `SYSLINUX x.yy` banner or a
/// `syslinux-x.yy` source path compiled into ldlinux.c32, else into another module of
/// the same directory (Debian's ldlinux.c32 carries neither, while e.g. chain.c32
/// holds its build path `.../syslinux-6.04~git.../com32/chain/...`).
fn modules_version(ldlinux: &Path, dir: &Path) -> Result<Option<String>> {
    let version_in = |bytes: &[u8]| {
        find_version_after(bytes, b"SYSLINUX ")
            .or_else(|| find_version_after(bytes, b"syslinux-"))
            .or_else(|| find_version_after(bytes, b"Syslinux "))
    };
    let ld = std::fs::read(ldlinux).with_context(|| format!("reading {}", ldlinux.display()))?;
    if let Some(v) = version_in(&ld) {
        return Ok(Some(v));
    }
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "c32") && p.as_path() != ldlinux)
        .collect();
    names.sort();
    for p in names {
        if let Ok(bytes) = std::fs::read(&p) {
            if let Some(v) = version_in(&bytes) {
                return Ok(Some(v));
            }
        }
    }
    Ok(None)
}

/// `<prefix><digits>.<digits>` anywhere in `bytes` → the version.
fn find_version_after(bytes: &[u8], prefix: &[u8]) -> Option<String> {
    let mut from = 0;
    while let Some(i) = bytes[from..]
        .windows(prefix.len())
        .position(|w| w == prefix)
        .map(|i| i + from)
    {
        let rest = &bytes[i + prefix.len()..];
        let n = rest
            .iter()
            .take_while(|b| b.is_ascii_digit() || **b == b'.')
            .count();
        let v = &rest[..n];
        let dots = v.iter().filter(|b| **b == b'.').count();
        if dots >= 1 && v.first().is_some_and(u8::is_ascii_digit) && v.last() != Some(&b'.') {
            return Some(String::from_utf8_lossy(v).into_owned());
        }
        from = i + 1;
    }
    None
}

/// When both files belong to Debian packages, their source versions must be equal too
/// (catches two builds of the same upstream version).
fn dpkg_check(pxelinux: &Path, ldlinux: &Path) -> Result<()> {
    let source_version = |p: &Path| -> Option<String> {
        let owner = crate::tool::Tool::new("dpkg-query")
            .arg("-S")
            .arg(p)
            .run()
            .ok()?;
        let owner = String::from_utf8_lossy(&owner);
        let pkg = owner.lines().next()?.split(':').next()?.trim().to_string();
        let v = crate::tool::Tool::new("dpkg-query")
            .args(["-W", "-f=${source:Version}", &pkg])
            .run()
            .ok()?;
        Some(String::from_utf8_lossy(&v).trim().to_string())
    };
    if let (Some(a), Some(b)) = (source_version(pxelinux), source_version(ldlinux)) {
        if a != b {
            bail!(
                "{} (syslinux {a}) and {} (syslinux {b}) come from different builds of the \
                 Debian syslinux packages; upgrade both (apt-get install pxelinux \
                 syslinux-common) or point --pxelinux-dir/--syslinux-modules at one build",
                pxelinux.display(),
                ldlinux.display()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_from_banners_and_paths() {
        assert_eq!(
            banner_version(b"\0\0PXELINUX 6.04 PXE 20200816 \0").as_deref(),
            Some("6.04")
        );
        assert_eq!(
            banner_version(b"PXELINUX  x PXELINUX 4.05 "),
            Some("4.05".into())
        );
        assert_eq!(banner_version(b"no banner"), None);
        assert_eq!(
            find_version_after(b"/build/syslinux-6.04~git2019/com32", b"syslinux-").as_deref(),
            Some("6.04")
        );
    }
}
