//! One function per verb; `main` calls them. Each returns the process exit code.

use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::cli::{
    InventoryCheckConfig, InventoryRenderConfig, IsoCustomizeConfig, PxeTreeConfig, ServeConfig,
};
use crate::inventory::{self, InventoryError};

/// `hvseed check`: prints every finding; 1 on errors, 0 otherwise.
pub fn check(c: InventoryCheckConfig) -> Result<ExitCode> {
    match inventory::load(&c.inventory) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                crate::say!("{w}");
            }
            crate::say!(
                "{}: ok: cluster {} with {} host(s), {}",
                crate::escape::path(&c.inventory),
                loaded.inventory.cluster,
                loaded.inventory.hosts.len(),
                loaded.inventory.os
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(InventoryError::Invalid { diagnostics, .. }) => {
            for d in &diagnostics {
                crate::say!("{d}");
            }
            Ok(ExitCode::from(1))
        }
    }
}

/// Loads an inventory for a verb that needs a valid one, printing warnings; on errors
/// prints them all and fails.
pub fn load_valid(path: &std::path::Path) -> Result<inventory::Inventory> {
    match inventory::load(path) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                crate::say!("{w}");
            }
            Ok(loaded.inventory)
        }
        Err(e @ InventoryError::Invalid { .. }) => {
            let InventoryError::Invalid { diagnostics, .. } = &e;
            for d in diagnostics {
                crate::say!("{d}");
            }
            Err(e).context("nothing was written")
        }
    }
}

/// `hvseed render`.
pub fn render(c: InventoryRenderConfig) -> Result<ExitCode> {
    crate::render::run(c)
}

/// `hvseed iso`.
pub fn iso(c: IsoCustomizeConfig) -> Result<ExitCode> {
    crate::iso::run(c)
}

/// `hvseed pxe`.
pub fn pxe(c: PxeTreeConfig) -> Result<ExitCode> {
    crate::pxe::run(c)
}

/// `hvseed serve`.
pub fn serve(c: ServeConfig) -> Result<ExitCode> {
    crate::serve::run(c)
}
