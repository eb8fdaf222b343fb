//! Finding the static first-boot agent (`hvseed-firstboot`) to put on install media.
//!
//! An agent the user names — `--firstboot PATH`, else `$HVSEED_FIRSTBOOT` — is the only
//! one considered: it must exist and be a static x86-64 ELF, or hvseed stops. Otherwise
//! hvseed looks in order at a `hvseed-firstboot` beside the running `hvseed`, the musl
//! build in the target directory the running `hvseed` was built in, and the musl build
//! of the checkout hvseed was built from, and takes the first static x86-64 one; an
//! unusable one (missing, dynamically linked — e.g. `target/release/hvseed-firstboot`
//! after a plain `cargo build --release` — or not x86-64) is skipped with a debug log,
//! and when none is usable the error says why for each and the command that builds one.
//! A dynamically linked agent would not start on CentOS 6.3's glibc 2.12, so it is
//! never shipped.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Builds the agent hvseed looks for (run in hvseed's checkout).
pub const BUILD_COMMAND: &str =
    "cargo build --release -p hvseed-firstboot --target x86_64-unknown-linux-musl";

/// Where the musl build lands, relative to a cargo target directory.
const MUSL_BUILD: &str = "x86_64-unknown-linux-musl/release/hvseed-firstboot";

/// The exact commands that build a usable agent, with the checkout when it is known.
fn build_hint() -> String {
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cd = if checkout.join("firstboot/Cargo.toml").is_file() {
        format!("cd {} && ", checkout.display())
    } else {
        String::new()
    };
    format!(
        "build one with `{cd}rustup target add x86_64-unknown-linux-musl && {BUILD_COMMAND}`, \
         or name one with --firstboot PATH"
    )
}

/// Locates the agent binary, checking that it is a static x86-64 executable.
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        return named(p, "--firstboot");
    }
    if let Some(p) = std::env::var_os("HVSEED_FIRSTBOOT").filter(|p| !p.is_empty()) {
        return named(Path::new(&p), "HVSEED_FIRSTBOOT");
    }
    search(&default_places())
}

/// The places hvseed looks by itself, in order (see the module documentation).
fn default_places() -> Vec<(String, PathBuf)> {
    let mut places: Vec<(String, PathBuf)> = Vec::new();
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        places.push(("beside hvseed".into(), dir.join("hvseed-firstboot")));
        // hvseed run from `target/release` or `target/debug`: the musl build of the same
        // target directory.
        if dir
            .file_name()
            .is_some_and(|n| n == "release" || n == "debug")
        {
            if let Some(target) = dir.parent() {
                places.push((
                    "the musl build in hvseed's target directory".into(),
                    target.join(MUSL_BUILD),
                ));
            }
        }
    }
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join(MUSL_BUILD);
    if !places.iter().any(|(_, p)| p == &checkout) {
        places.push(("this checkout's musl build".into(), checkout));
    }
    places
}

/// An agent the user named: it must exist and be static; there is no fallback.
pub fn named(path: &Path, source: &str) -> Result<PathBuf> {
    if !path.exists() {
        bail!(
            "the first-boot agent {} ({source}) does not exist; {}",
            path.display(),
            build_hint()
        );
    }
    check_static_x86_64(path).with_context(|| {
        format!(
            "the first-boot agent {} ({source}) cannot be used; {}",
            path.display(),
            build_hint()
        )
    })?;
    tracing::debug!("first-boot agent: {} ({source})", path.display());
    Ok(path.to_path_buf())
}

/// The first usable agent of `places` (label, path), in order; unusable ones are
/// skipped with a debug log, and the error says why for each.
pub fn search(places: &[(String, PathBuf)]) -> Result<PathBuf> {
    let mut skipped: Vec<String> = Vec::new();
    for (source, path) in places {
        let why = if !path.exists() {
            "not there".to_string()
        } else {
            match check_static_x86_64(path) {
                Ok(()) => {
                    tracing::debug!("first-boot agent: {} ({source})", path.display());
                    return Ok(path.clone());
                }
                Err(e) => format!("{e:#}"),
            }
        };
        tracing::debug!(
            "first-boot agent: skipping {} ({source}): {why}",
            path.display()
        );
        skipped.push(format!("{} ({source}): {why}", path.display()));
    }
    bail!(
        "no static x86-64 first-boot agent found (looked at {}); {}",
        skipped.join("; "),
        build_hint()
    )
}

/// Reads the ELF header and program headers: x86-64, executable, no `PT_INTERP`
/// (no dynamic loader) and no `PT_DYNAMIC` with needed libraries is what "static" means
/// here. A static-pie binary has `PT_DYNAMIC` for its own relocations but no
/// interpreter, and runs without a libc; it is accepted.
pub fn check_static_x86_64(path: &Path) -> Result<()> {
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if !meta.is_file() {
        bail!("is not a regular file");
    }
    // The agent is ~1 MiB; anything far larger is not it (and is not read whole).
    if meta.len() > 256 << 20 {
        bail!("is larger than 256 MiB, not an hvseed-firstboot build");
    }
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
        // Checked: a damaged header's offsets must not overflow (a panic, not a skip).
        let off = i
            .checked_mul(phentsize)
            .and_then(|o| o.checked_add(phoff))
            .filter(|o| o.checked_add(4).is_some_and(|end| end <= data.len()));
        let Some(off) = off else {
            bail!("has a truncated program header table");
        };
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

    /// A complete static x86-64 Linux executable that exits 0: an ELF header, one
    /// PT_LOAD program header, and `mov eax, 60; xor edi, edi; syscall` (exit(0)).
    fn tiny_static_elf() -> Vec<u8> {
        let base: u64 = 0x40_0000;
        let code: &[u8] = &[0xb8, 0x3c, 0, 0, 0, 0x31, 0xff, 0x0f, 0x05];
        let size = (64 + 56 + code.len()) as u64;
        let mut e = Vec::new();
        e.extend_from_slice(b"\x7fELF\x02\x01\x01\x00");
        e.extend_from_slice(&[0; 8]);
        e.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
        e.extend_from_slice(&62u16.to_le_bytes()); // EM_X86_64
        e.extend_from_slice(&1u32.to_le_bytes());
        e.extend_from_slice(&(base + 64 + 56).to_le_bytes()); // entry
        e.extend_from_slice(&64u64.to_le_bytes()); // phoff
        e.extend_from_slice(&0u64.to_le_bytes()); // shoff
        e.extend_from_slice(&0u32.to_le_bytes());
        for v in [64u16, 56, 1, 64, 0, 0] {
            e.extend_from_slice(&v.to_le_bytes()); // ehsize phentsize phnum shentsize shnum shstrndx
        }
        e.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
        e.extend_from_slice(&5u32.to_le_bytes()); // R+X
        e.extend_from_slice(&0u64.to_le_bytes()); // offset
        e.extend_from_slice(&base.to_le_bytes()); // vaddr
        e.extend_from_slice(&base.to_le_bytes()); // paddr
        e.extend_from_slice(&size.to_le_bytes()); // filesz
        e.extend_from_slice(&size.to_le_bytes()); // memsz
        e.extend_from_slice(&0x1000u64.to_le_bytes()); // align
        e.extend_from_slice(code);
        e
    }

    /// A damaged file where hvseed looks by itself (a truncated or garbage
    /// `e_phoff`) is skipped with a reason, never a panic (offset arithmetic overflow).
    #[test]
    fn a_garbage_program_header_offset_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        for phoff in [u64::MAX, u64::MAX - 3, 1 << 62] {
            let mut e = tiny_static_elf();
            e[32..40].copy_from_slice(&phoff.to_le_bytes());
            let p = dir.path().join("hvseed-firstboot");
            std::fs::write(&p, &e).unwrap();
            let r = std::panic::catch_unwind(|| check_static_x86_64(&p));
            let err = format!("{:#}", r.expect("panicked").unwrap_err());
            assert!(err.contains("truncated program header"), "{err}");
            let r = std::panic::catch_unwind(|| search(&[("beside hvseed".into(), p.clone())]));
            assert!(r.expect("search panicked").is_err());
        }
    }

    /// Three places: nothing, a dynamic build (a copy of /bin/true, as after a plain
    /// `cargo build --release`), a static one.
    fn places(dir: &Path) -> Vec<(String, PathBuf)> {
        use std::os::unix::fs::PermissionsExt;
        let missing = dir.join("missing/hvseed-firstboot");
        let dynamic = dir.join("release/hvseed-firstboot");
        let stat = dir.join("musl/hvseed-firstboot");
        std::fs::create_dir_all(dynamic.parent().unwrap()).unwrap();
        std::fs::create_dir_all(stat.parent().unwrap()).unwrap();
        std::fs::copy("/bin/true", &dynamic).unwrap();
        std::fs::write(&stat, tiny_static_elf()).unwrap();
        std::fs::set_permissions(&stat, std::fs::Permissions::from_mode(0o755)).unwrap();
        vec![
            ("nowhere".into(), missing),
            ("beside hvseed".into(), dynamic),
            ("the musl build".into(), stat),
        ]
    }

    #[test]
    fn the_tiny_static_elf_is_a_real_static_executable() {
        let dir = tempfile::tempdir().unwrap();
        let p = places(dir.path());
        check_static_x86_64(&p[2].1).unwrap();
        #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
        {
            // ETXTBSY: another test thread may fork while the file was open for writing.
            let mut tries = 0;
            let status = loop {
                match std::process::Command::new(&p[2].1).status() {
                    Err(e) if e.raw_os_error() == Some(26) && tries < 50 => {
                        tries += 1;
                        std::thread::sleep(std::time::Duration::from_millis(20));
                    }
                    other => break other.unwrap(),
                }
            };
            assert!(status.success());
        }
        // And /bin/true is what the builder must refuse.
        let err = format!("{:#}", check_static_x86_64(&p[1].1).unwrap_err());
        assert!(err.contains("dynamically linked"), "{err}");
    }

    #[test]
    fn search_skips_missing_and_dynamic_agents_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let p = places(dir.path());
        assert_eq!(search(&p).unwrap(), p[2].1);
        // Order: the first usable one wins, even if a later one is usable too.
        let mut two = p.clone();
        let other = dir.path().join("other/hvseed-firstboot");
        std::fs::create_dir_all(other.parent().unwrap()).unwrap();
        std::fs::copy(&p[2].1, &other).unwrap();
        two.push(("later".into(), other.clone()));
        assert_eq!(search(&two).unwrap(), p[2].1);
        two.swap(2, 3);
        assert_eq!(search(&two).unwrap(), other);
    }

    #[test]
    fn when_none_is_usable_the_error_says_why_for_each_and_how_to_build_one() {
        let dir = tempfile::tempdir().unwrap();
        let p = places(dir.path());
        let err = format!("{:#}", search(&p[..2]).unwrap_err());
        assert!(
            err.starts_with("no static x86-64 first-boot agent found"),
            "{err}"
        );
        assert!(
            err.contains(&format!("{} (nowhere): not there", p[0].1.display())),
            "{err}"
        );
        assert!(
            err.contains(&format!(
                "{} (beside hvseed): is dynamically linked",
                p[1].1.display()
            )),
            "{err}"
        );
        assert!(err.contains(BUILD_COMMAND), "{err}");
        assert!(
            err.contains("rustup target add x86_64-unknown-linux-musl"),
            "{err}"
        );
    }

    #[test]
    fn a_named_agent_that_is_not_static_stays_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = places(dir.path());
        // A usable one exists elsewhere, but the user named the dynamic one.
        let err = format!("{:#}", named(&p[1].1, "--firstboot").unwrap_err());
        assert!(err.contains("(--firstboot) cannot be used"), "{err}");
        assert!(err.contains("dynamically linked"), "{err}");
        assert!(err.contains(BUILD_COMMAND), "{err}");
        let err = format!("{:#}", named(&p[0].1, "HVSEED_FIRSTBOOT").unwrap_err());
        assert!(err.contains("(HVSEED_FIRSTBOOT) does not exist"), "{err}");
        assert!(err.contains(BUILD_COMMAND), "{err}");
        assert_eq!(named(&p[2].1, "--firstboot").unwrap(), p[2].1);
    }

    #[test]
    fn the_default_places_are_beside_hvseed_then_musl_builds() {
        let places = default_places();
        let exe_dir = std::env::current_exe()
            .unwrap()
            .parent()
            .unwrap()
            .to_path_buf();
        assert_eq!(places[0].1, exe_dir.join("hvseed-firstboot"));
        assert!(places
            .last()
            .unwrap()
            .1
            .ends_with("target/x86_64-unknown-linux-musl/release/hvseed-firstboot"));
    }
}
