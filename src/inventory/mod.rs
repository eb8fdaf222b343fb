//! YAML inventory → typed, validated [`Inventory`]. Errors carry file:line:column and
//! the key path, and all of them are collected before anything is reported.

mod cross_host;
mod diagnostics;
mod model;
mod plan;
mod reader;
mod resolve;
mod rules;
mod schema;
mod sections;
mod yaml;

pub use diagnostics::{Diagnostic, Severity};
pub use model::*;

use std::io::Read;
use std::path::{Path, PathBuf};

/// Why an inventory was refused.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// The inventory has errors; `diagnostics` holds all of them (and the warnings),
    /// in file order.
    #[error("{} has {} error(s)", crate::escape::path(.path), .diagnostics.iter().filter(|d| d.severity == Severity::Error).count())]
    Invalid {
        path: PathBuf,
        diagnostics: Vec<Diagnostic>,
    },
}

/// An inventory that passed, with the warnings found on the way.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub inventory: Inventory,
    pub warnings: Vec<Diagnostic>,
}

pub use rules::{kernel_arg as check_kernel_arg, MAX_KERNEL_ARG};
pub use schema::DEFAULT_NTP;
pub use yaml::MAX_FILE_BYTES;

/// Reads, parses and validates an inventory file.
///
/// Files larger than [`MAX_FILE_BYTES`], non-UTF-8 text, malformed YAML and inputs that
/// exceed the parser's limits (alias bombs, deep nesting) give a single error.
pub fn load(path: &Path) -> Result<Loaded, InventoryError> {
    let fail = |line: usize, column: usize, message: String| InventoryError::Invalid {
        path: path.to_path_buf(),
        diagnostics: vec![Diagnostic {
            severity: Severity::Error,
            file: path.to_path_buf(),
            line,
            column,
            key: String::new(),
            message,
        }],
    };
    let t0 = std::time::Instant::now();
    let text = read_text(path).map_err(|(l, c, m)| fail(l, c, m))?;
    let root = yaml::parse(&text).map_err(|e| fail(e.line, e.column, e.message))?;
    tracing::debug!("inventory parsed: {:.3} s", t0.elapsed().as_secs_f64());
    let (inventory, diagnostics) = resolve::resolve(path, root);
    tracing::debug!("inventory resolved: {:.3} s", t0.elapsed().as_secs_f64());
    match inventory {
        Some(inventory) => Ok(Loaded {
            inventory,
            warnings: diagnostics,
        }),
        None => Err(InventoryError::Invalid {
            path: path.to_path_buf(),
            diagnostics,
        }),
    }
}

/// Loads an inventory for a verb that needs a valid one: prints its warnings; on
/// errors prints every finding and fails, saying that nothing was written.
pub fn load_valid(path: &Path) -> anyhow::Result<Inventory> {
    use anyhow::Context as _;
    match load(path) {
        Ok(loaded) => {
            print_findings(&loaded.warnings);
            Ok(loaded.inventory)
        }
        Err(e) => {
            let InventoryError::Invalid { diagnostics, .. } = &e;
            print_findings(diagnostics);
            Err(e).context("nothing was written")
        }
    }
}

/// `hvseed check`: prints every finding and a summary of a valid inventory; exit
/// status 1 on errors, 0 otherwise.
pub fn check(path: &Path) -> std::process::ExitCode {
    match load(path) {
        Ok(loaded) => {
            print_findings(&loaded.warnings);
            crate::say!(
                "{}: ok: cluster {} with {} host(s), {}",
                crate::escape::path(path),
                loaded.inventory.cluster,
                loaded.inventory.hosts.len(),
                loaded.inventory.os
            );
            std::process::ExitCode::SUCCESS
        }
        Err(InventoryError::Invalid { diagnostics, .. }) => {
            print_findings(&diagnostics);
            std::process::ExitCode::from(1)
        }
    }
}

/// One line per finding on stderr ([`Diagnostic`]'s `Display` escapes what it quotes).
fn print_findings(diagnostics: &[Diagnostic]) {
    for d in diagnostics {
        crate::say!("{d}");
    }
}

/// Reads the file as UTF-8 text, refusing directories and files over the size cap
/// before reading them whole.
fn read_text(path: &Path) -> Result<String, (usize, usize, String)> {
    let io_msg = |e: std::io::Error| {
        let why = match e.kind() {
            std::io::ErrorKind::NotFound => "no such file (check the path)".to_string(),
            std::io::ErrorKind::PermissionDenied => {
                "permission denied (check the file's permissions)".to_string()
            }
            _ => e.to_string(),
        };
        (0, 0, format!("cannot read the inventory: {why}"))
    };
    let file = std::fs::File::open(path).map_err(io_msg)?;
    let meta = file.metadata().map_err(io_msg)?;
    if meta.is_dir() {
        return Err((
            0,
            0,
            "is a directory; give the path of an inventory YAML file".into(),
        ));
    }
    let too_big = || {
        (
            0,
            0,
            format!(
                "the file is larger than {} MiB, the most an inventory may be; is this the right file?",
                MAX_FILE_BYTES / (1024 * 1024)
            ),
        )
    };
    if meta.len() > MAX_FILE_BYTES {
        return Err(too_big());
    }
    // `take` also bounds what is read from files whose size the metadata does not
    // tell (pipes, devices).
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io_msg)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_big());
    }
    String::from_utf8(bytes).map_err(|e| {
        let bad = e.utf8_error().valid_up_to();
        let bytes = e.as_bytes();
        let before = &bytes[..bad];
        let line = before.iter().filter(|b| **b == b'\n').count() + 1;
        let line_start = before
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |p| p + 1);
        let column = String::from_utf8_lossy(&before[line_start..])
            .chars()
            .count()
            + 1;
        (
            line,
            column,
            format!(
                "the file is not UTF-8 text (byte 0x{:02x}); save it as UTF-8",
                bytes[bad]
            ),
        )
    })
}
