//! Finding the static first-boot agent (`hvseed-firstboot`) to put on install media.
//!
//! Order: `--firstboot PATH`, `$HVSEED_FIRSTBOOT`, a `hvseed-firstboot` beside the
//! running `hvseed`, then `target/x86_64-unknown-linux-musl/release/hvseed-firstboot`
//! of the checkout hvseed was built from. The first candidate that exists must be a
//! static x86-64 ELF: a dynamically linked agent would not start on CentOS 6.3's
//! glibc 2.12, so it is refused rather than shipped.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

const BUILD_HINT: &str = "build it with `rustup target add x86_64-unknown-linux-musl && \
cargo build --release -p hvseed-firstboot --target x86_64-unknown-linux-musl`, \
or name one with --firstboot PATH";

/// Locates the agent binary, checking that it is a static x86-64 executable.
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf> {
    let mut candidates: Vec<(String, PathBuf)> = Vec::new();
    if let Some(p) = explicit {
        candidates.push(("--firstboot".into(), p.to_path_buf()));
    } else if let Some(p) = std::env::var_os("HVSEED_FIRSTBOOT").filter(|p| !p.is_empty()) {
        candidates.push(("HVSEED_FIRSTBOOT".into(), PathBuf::from(p)));
    } else {
        if let Some(dir) = std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(Path::to_path_buf))
        {
            candidates.push(("beside hvseed".into(), dir.join("hvseed-firstboot")));
        }
        candidates.push((
            "this checkout's musl build".into(),
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("target/x86_64-unknown-linux-musl/release/hvseed-firstboot"),
        ));
    }
    let explicit_source =
        explicit.is_some() || std::env::var_os("HVSEED_FIRSTBOOT").is_some_and(|p| !p.is_empty());
    for (source, path) in &candidates {
        if !path.exists() {
            if explicit_source {
                bail!(
                    "the first-boot agent {} ({source}) does not exist; {BUILD_HINT}",
                    path.display()
                );
            }
            continue;
        }
        check_static_x86_64(path)
            .with_context(|| format!("the first-boot agent {} ({source})", path.display()))?;
        tracing::debug!("first-boot agent: {} ({source})", path.display());
        return Ok(path.clone());
    }
    let looked: Vec<String> = candidates
        .iter()
        .map(|(_, p)| p.display().to_string())
        .collect();
    bail!(
        "no first-boot agent found (looked at {}); {BUILD_HINT}",
        looked.join(", ")
    )
}

/// Reads the ELF header and program headers: x86-64, executable, no `PT_INTERP`
/// (no dynamic loader) and no `PT_DYNAMIC` with needed libraries is what "static" means
/// here. A static-pie binary has `PT_DYNAMIC` for its own relocations but no
/// interpreter, and runs without a libc; it is accepted.
pub fn check_static_x86_64(path: &Path) -> Result<()> {
    let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if data.len() < 64 || &data[..4] != b"\x7fELF" {
        bail!("is not an ELF executable");
    }
    if data[4] != 2 || data[5] != 1 {
        bail!("is not a 64-bit little-endian ELF");
    }
    let u16_at = |o: usize| u16::from_le_bytes([data[o], data[o + 1]]);
    let u32_at = |o: usize| u32::from_le_bytes(data[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(data[o..o + 8].try_into().unwrap());
    if u16_at(18) != 62 {
        bail!("is not an x86-64 binary (e_machine {})", u16_at(18));
    }
    let phoff = u64_at(32) as usize;
    let phentsize = u16_at(54) as usize;
    let phnum = u16_at(56) as usize;
    for i in 0..phnum {
        let off = phoff + i * phentsize;
        if off + 4 > data.len() {
            bail!("has a truncated program header table");
        }
        if u32_at(off) == 3 {
            bail!("is dynamically linked (it asks for a program interpreter); it must be a static musl build");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dynamic_binary_is_refused() {
        // /bin/sh on the build machine is a glibc binary with an interpreter.
        let err = check_static_x86_64(Path::new("/bin/sh"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("dynamically linked"), "{err}");
    }

    #[test]
    fn a_text_file_is_refused() {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), "#!/bin/sh\necho hi\n").unwrap();
        let err = check_static_x86_64(f.path()).unwrap_err().to_string();
        assert!(err.contains("not an ELF"), "{err}");
    }
}
