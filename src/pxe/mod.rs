//! `hvseed pxe` (not written yet).

pub fn run(_c: crate::cli::PxeTreeConfig) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("`hvseed pxe` is not available in this build yet")
}
