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
    places_for(
        std::env::current_exe().ok().as_deref(),
        Path::new(env!("CARGO_MANIFEST_DIR")),
    )
}

/// The places to look for an agent when `hvseed` runs as `exe` and was built from
/// `checkout`, in order: beside `exe`; when `exe` is a cargo build
/// (`<target>/release/hvseed`, `<target>/debug/hvseed`, or with `--target TRIPLE`
/// `<target>/TRIPLE/release/hvseed`), the musl build of that target directory
/// (`<target>/x86_64-unknown-linux-musl/release/hvseed-firstboot`); then the musl build
/// of `checkout`. A place already listed is not repeated.
pub fn places_for(exe: Option<&Path>, checkout: &Path) -> Vec<(String, PathBuf)> {
    let mut places: Vec<(String, PathBuf)> = Vec::new();
    let mut add = |label: &str, path: PathBuf| {
        if !places.iter().any(|(_, p)| p == &path) {
            places.push((label.to_string(), path));
        }
    };
    if let Some(dir) = exe.and_then(Path::parent) {
        add("beside hvseed", dir.join("hvseed-firstboot"));
        if dir
            .file_name()
            .is_some_and(|n| n == "release" || n == "debug")
        {
            if let Some(mut target) = dir.parent() {
                // `cargo build --target TRIPLE` puts the profile under the triple.
                if target
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(is_target_triple)
                {
                    if let Some(t) = target.parent() {
                        target = t;
                    }
                }
                add(
                    "the musl build in hvseed's target directory",
                    target.join(MUSL_BUILD),
                );
            }
        }
    }
    add(
        "this checkout's musl build",
        checkout.join("target").join(MUSL_BUILD),
    );
    places
}

/// Whether a directory name is a target triple cargo makes under its target directory
/// (`x86_64-unknown-linux-gnu`, `aarch64-apple-darwin`, `i686-pc-windows-msvc`): three or
/// four `-`-separated parts, one of them a known operating system.
fn is_target_triple(name: &str) -> bool {
    const SYSTEMS: [&str; 9] = [
        "linux", "darwin", "windows", "freebsd", "netbsd", "openbsd", "android", "none", "ios",
    ];
    let parts: Vec<&str> = name.split('-').collect();
    (3..=4).contains(&parts.len())
        && parts.iter().all(|p| !p.is_empty())
        && parts[1..].iter().any(|p| SYSTEMS.contains(p))
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
    if let Err(e) = check_static_x86_64(path) {
        bail!(
            "the first-boot agent {} ({source}) cannot be used: {e:#}; {}",
            path.display(),
            build_hint()
        );
    }
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

    /// Where hvseed looks, for each way it is run: from a cargo target directory (any
    /// profile, with or without `--target`), or installed.
    #[test]
    fn the_places_follow_where_hvseed_runs_from() {
        let co = Path::new("/src/hvseed");
        let musl = "/src/hvseed/target/x86_64-unknown-linux-musl/release/hvseed-firstboot";
        let paths = |exe: &str| -> Vec<String> {
            places_for(Some(Path::new(exe)), co)
                .into_iter()
                .map(|(_, p)| p.display().to_string())
                .collect()
        };
        for profile in ["release", "debug"] {
            assert_eq!(
                paths(&format!("/b/target/{profile}/hvseed")),
                [
                    format!("/b/target/{profile}/hvseed-firstboot"),
                    "/b/target/x86_64-unknown-linux-musl/release/hvseed-firstboot".into(),
                    musl.to_string(),
                ]
            );
        }
        assert_eq!(
            paths("/b/target/x86_64-unknown-linux-gnu/release/hvseed"),
            [
                "/b/target/x86_64-unknown-linux-gnu/release/hvseed-firstboot",
                "/b/target/x86_64-unknown-linux-musl/release/hvseed-firstboot",
                musl,
            ]
        );
        // A CARGO_TARGET_DIR with dashes in its name is not a triple.
        assert_eq!(
            paths("/b/target-mine/debug/hvseed")[1],
            "/b/target-mine/x86_64-unknown-linux-musl/release/hvseed-firstboot"
        );
        // hvseed built for musl itself: its own directory, listed once.
        assert_eq!(
            paths("/src/hvseed/target/x86_64-unknown-linux-musl/release/hvseed"),
            [musl]
        );
        assert_eq!(
            paths("/usr/local/bin/hvseed"),
            ["/usr/local/bin/hvseed-firstboot", musl]
        );
        assert_eq!(places_for(None, co).len(), 1);
    }

    /// The same with real files: a `--target x86_64-unknown-linux-gnu` build of hvseed
    /// finds the musl agent of its target directory.
    #[test]
    fn a_target_triple_build_finds_the_musl_agent_of_its_target_directory() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        let exe = target.join("x86_64-unknown-linux-gnu/release/hvseed");
        std::fs::create_dir_all(exe.parent().unwrap()).unwrap();
        std::fs::copy("/bin/true", &exe).unwrap();
        let agent = target.join(MUSL_BUILD);
        std::fs::create_dir_all(agent.parent().unwrap()).unwrap();
        std::fs::write(&agent, tiny_static_elf()).unwrap();
        std::fs::set_permissions(&agent, std::fs::Permissions::from_mode(0o755)).unwrap();
        let places = places_for(Some(&exe), &dir.path().join("elsewhere"));
        assert_eq!(search(&places).unwrap(), agent);
    }

    /// The reason an agent cannot be used comes first, the way to get one last.
    #[test]
    fn a_refused_agent_says_why_before_how_to_build_one() {
        let err = format!(
            "{:#}",
            named(Path::new("/bin/sh"), "--firstboot").unwrap_err()
        );
        assert!(
            err.contains("(--firstboot) cannot be used: is dynamically linked"),
            "{err}"
        );
        let why = err.find("dynamically linked").unwrap();
        let hint = err.find("build one with").unwrap();
        assert!(why < hint, "{err}");
        assert!(err.ends_with("or name one with --firstboot PATH"), "{err}");
    }
}
