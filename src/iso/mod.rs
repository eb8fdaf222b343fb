//! `hvseed iso` (not written yet).

pub fn run(_c: crate::cli::IsoCustomizeConfig) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("`hvseed iso` is not available in this build yet")
}
