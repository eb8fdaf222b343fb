//! Inventory → per-host kickstart / preseed / plan and the whole-cluster ("fleet")
//! install file (minijinja templates from profiles/, strict undefined).

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::inventory::Inventory;

/// Where the installer finds hvseed's files (plans, the first-boot agent) while it
/// installs a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Media {
    /// Under `/hvseed/` on the install CD (what `hvseed iso` writes).
    Cdrom,
    /// Under this base URL, laid out like `hvseed pxe`'s `http/` directory.
    Http { base: String },
}

#[derive(Debug, Clone)]
pub struct RenderOptions {
    /// Templates that override the built-in ones by file name.
    pub templates: Option<PathBuf>,
    pub media: Media,
}

/// Rendered files by path relative to the output directory (`hosts/<fqdn>/ks.cfg`,
/// `hosts/<fqdn>/plan.json`, `fleet/ks.cfg`, ...).
pub type RenderedTree = BTreeMap<String, Vec<u8>>;

/// Renders every file for every host, in memory.
pub fn render_tree(_inventory: &Inventory, _opts: &RenderOptions) -> anyhow::Result<RenderedTree> {
    anyhow::bail!("rendering is not written yet")
}

/// `hvseed render` (not written yet).
pub fn run(_c: crate::cli::InventoryRenderConfig) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("`hvseed render` is not available in this build yet")
}
