//! Shared test helpers: paths, running hvseed, and loud handling of missing tools.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The checkout's root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `hvseed` binary under test.
pub fn hvseed() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hvseed"))
}

/// True if `cmd` is on PATH (or is an existing path).
pub fn cmd_exists(cmd: &str) -> bool {
    if cmd.contains('/') {
        return Path::new(cmd).exists();
    }
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|d| d.join(cmd).is_file()))
        .unwrap_or(false)
}

/// Returns true when the tool is there. When it is missing: under CI (`CI=true`) the
/// test fails; elsewhere it prints a loud notice and the caller returns early.
#[must_use]
pub fn require_tool(cmd: &str, package: &str) -> bool {
    if cmd_exists(cmd) {
        return true;
    }
    let msg = format!(
        "MISSING TOOL: `{cmd}` (Debian package `{package}`) is not installed; run scripts/setup.sh test"
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg}");
    }
    eprintln!("\n!!!!!!!! {msg}: THIS TEST DID NOT RUN !!!!!!!!\n");
    false
}

/// pykickstart's ksvalidator: `$HVSEED_KSVALIDATOR`, else `.venv/bin/ksvalidator`.
pub fn ksvalidator() -> Option<PathBuf> {
    let p = std::env::var_os("HVSEED_KSVALIDATOR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".venv/bin/ksvalidator"));
    if require_tool(p.to_str().unwrap(), "pykickstart (pip, in .venv)") {
        Some(p)
    } else {
        None
    }
}

/// The Python that has pykickstart: `$HVSEED_PYTHON`, else `.venv/bin/python`.
pub fn kickstart_python() -> Option<PathBuf> {
    let p = std::env::var_os("HVSEED_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".venv/bin/python"));
    if require_tool(p.to_str().unwrap(), "pykickstart (pip, in .venv)") {
        Some(p)
    } else {
        None
    }
}
