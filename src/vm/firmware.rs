//! UEFI firmware for `--uefi`, found the way QEMU's management tools find it: through
//! the firmware descriptors (QEMU's `docs/interop/firmware.json`) installed in
//! `/usr/share/qemu/firmware/*.json`, never by guessing file names.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

/// Where distributions install the descriptors (QEMU's system-wide location).
pub const DESCRIPTOR_DIR: &str = "/usr/share/qemu/firmware";

/// The firmware for one run: read-only code and the template of its variable store,
/// which is copied per run (the copy has the template's size, as the code expects).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uefi {
    pub descriptor: PathBuf,
    pub code: PathBuf,
    pub vars_template: PathBuf,
}

#[derive(Debug, Deserialize)]
struct Descriptor {
    #[serde(rename = "interface-types")]
    interface_types: Vec<String>,
    mapping: Mapping,
    targets: Vec<Target>,
    #[serde(default)]
    features: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Mapping {
    device: String,
    executable: Option<FlashFile>,
    #[serde(rename = "nvram-template")]
    nvram_template: Option<FlashFile>,
}

#[derive(Debug, Deserialize)]
struct FlashFile {
    filename: PathBuf,
    format: String,
}

#[derive(Debug, Deserialize)]
struct Target {
    architecture: String,
    machines: Vec<String>,
}

/// Features that need a machine set-up hvseed does not make (SMM, Secure Boot with
/// enrolled keys, confidential guests).
const UNWANTED: &[&str] = &[
    "requires-smm",
    "secure-boot",
    "enrolled-keys",
    "amd-sev-es",
    "amd-sev-snp",
    "intel-tdx",
];

/// The machine type hvseed's guests use (`-machine pc`, an i440fx).
pub const MACHINE_PREFIX: &str = "pc-i440fx-";

/// The first descriptor in `dir` (by file name: the descriptors' own priority order)
/// for UEFI on x86_64 flash, for an i440fx machine, without SMM or Secure Boot, whose
/// code and variable template exist.
pub fn find(dir: &Path) -> Result<Uefi> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| {
            format!(
                "reading QEMU's firmware descriptors in {}: install OVMF (Debian/Ubuntu: \
                 apt-get install ovmf) for --uefi",
                dir.display()
            )
        })?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    names.sort();
    let mut skipped = Vec::new();
    for p in &names {
        match suitable(p) {
            Ok(u) => return Ok(u),
            Err(why) => skipped.push(format!("{}: {why}", p.display())),
        }
    }
    bail!(
        "no UEFI firmware for x86_64 without Secure Boot among QEMU's firmware descriptors in \
         {}{}: install OVMF (Debian/Ubuntu: apt-get install ovmf)",
        dir.display(),
        if skipped.is_empty() {
            String::new()
        } else {
            format!(" ({})", skipped.join("; "))
        }
    )
}

fn suitable(p: &Path) -> std::result::Result<Uefi, String> {
    let bytes = std::fs::read(p).map_err(|e| e.to_string())?;
    let d: Descriptor = serde_json::from_slice(&bytes).map_err(|e| format!("not read: {e}"))?;
    if !d.interface_types.iter().any(|t| t == "uefi") {
        return Err("not UEFI".into());
    }
    if d.mapping.device != "flash" {
        return Err(format!("device {}", d.mapping.device));
    }
    if !d.targets.iter().any(|t| {
        t.architecture == "x86_64"
            && t.machines.iter().any(|m| {
                m.strip_suffix('*').is_some_and(|pre| {
                    MACHINE_PREFIX.starts_with(pre) || pre.starts_with(MACHINE_PREFIX)
                })
            })
    }) {
        return Err("not for x86_64 i440fx machines".into());
    }
    if let Some(f) = d.features.iter().find(|f| UNWANTED.contains(&f.as_str())) {
        return Err(format!("needs {f}"));
    }
    let (Some(code), Some(vars)) = (d.mapping.executable, d.mapping.nvram_template) else {
        return Err("no executable or nvram-template".into());
    };
    if code.format != "raw" || vars.format != "raw" {
        return Err("not raw".into());
    }
    for f in [&code.filename, &vars.filename] {
        if !f.is_file() {
            return Err(format!("{} is missing", f.display()));
        }
    }
    Ok(Uefi {
        descriptor: p.to_path_buf(),
        code: code.filename,
        vars_template: vars.filename,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The descriptors this machine's OVMF package installed: the secure-boot ones
    /// (SMM, enrolled keys) come first by name and are passed over.
    #[test]
    fn picks_the_plain_edk2_descriptor_of_this_machine() {
        let dir = Path::new(DESCRIPTOR_DIR);
        if !dir.join("60-edk2-x86_64.json").is_file() {
            crate::say!(
                "skipped: {DESCRIPTOR_DIR} has no 60-edk2-x86_64.json (apt-get install ovmf)"
            );
            return;
        }
        let u = find(dir).unwrap();
        assert_eq!(u.descriptor, dir.join("60-edk2-x86_64.json"));
        assert_eq!(u.code, Path::new("/usr/share/OVMF/OVMF_CODE_4M.fd"));
        assert_eq!(
            u.vars_template,
            Path::new("/usr/share/OVMF/OVMF_VARS_4M.fd")
        );
    }

    #[test]
    fn only_secure_boot_or_missing_files_is_a_clear_error() {
        let d = tempfile::tempdir().unwrap();
        let src = Path::new(DESCRIPTOR_DIR);
        for n in [
            "40-edk2-x86_64-secure-enrolled.json",
            "50-edk2-x86_64-secure.json",
        ] {
            if src.join(n).is_file() {
                std::fs::copy(src.join(n), d.path().join(n)).unwrap();
            }
        }
        std::fs::write(
            d.path().join("70-gone.json"),
            r#"{"interface-types":["uefi"],"mapping":{"device":"flash","executable":{"filename":"/nonexistent/CODE.fd","format":"raw"},"nvram-template":{"filename":"/nonexistent/VARS.fd","format":"raw"}},"targets":[{"architecture":"x86_64","machines":["pc-i440fx-*"]}],"features":[]}"#,
        )
        .unwrap();
        let e = find(d.path()).unwrap_err().to_string();
        assert!(e.contains("no UEFI firmware"), "{e}");
        assert!(e.contains("/nonexistent/CODE.fd is missing"), "{e}");
        assert!(e.contains("apt-get install ovmf"), "{e}");
        let e = find(&d.path().join("none")).unwrap_err().to_string();
        assert!(e.contains("apt-get install ovmf"), "{e}");
    }
}
