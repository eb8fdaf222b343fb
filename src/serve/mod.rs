//! `hvseed serve` (not written yet).

pub fn run(_c: crate::cli::ServeConfig) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("`hvseed serve` is not available in this build yet")
}
