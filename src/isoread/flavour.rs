//! Which install medium an ISO is, read from its own files: `.treeinfo`/`.discinfo` for
//! CentOS 6.x DVDs, `.disk/info` for Ubuntu 12.04.x server CDs, plus the boot files
//! hvseed edits. Anything else is described, not guessed at.

use hvseed_plan::plan::Os;

use super::Listing;

/// The files that identify a medium; extracted first (each is a few hundred bytes).
pub const IDENTITY_FILES: [&str; 3] = ["/.discinfo", "/.treeinfo", "/.disk/info"];

/// An install medium hvseed knows how to remaster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IsoFlavour {
    /// A CentOS 6.x x86_64 DVD: isolinux, and (from 6.3 on) grub-legacy EFI.
    Centos6 {
        /// e.g. `CentOS 6.3 x86_64`.
        name: String,
        /// `EFI/BOOT/BOOTX64.conf` and the UEFI El Torito image (`images/efiboot.img`).
        uefi: Option<String>,
    },
    /// An Ubuntu 12.04.x amd64 server (or alternate) CD: isolinux and GRUB2 EFI.
    Ubuntu1204 {
        /// The first line of `.disk/info`.
        name: String,
        /// The UEFI El Torito image (`boot/grub/efi.img`), with `boot/grub/grub.cfg`.
        uefi: Option<String>,
    },
}

impl IsoFlavour {
    pub fn os(&self) -> Os {
        match self {
            IsoFlavour::Centos6 { .. } => Os::Centos6,
            IsoFlavour::Ubuntu1204 { .. } => Os::Ubuntu1204,
        }
    }

    pub fn name(&self) -> &str {
        match self {
            IsoFlavour::Centos6 { name, .. } | IsoFlavour::Ubuntu1204 { name, .. } => name,
        }
    }
}

fn ini_value(text: &str, section: &str, key: &str) -> Option<String> {
    let mut in_section = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            in_section = t.trim_matches(['[', ']']).trim() == section;
        } else if in_section {
            if let Some((k, v)) = t.split_once('=') {
                if k.trim() == key {
                    return Some(v.trim().to_string());
                }
            }
        }
    }
    None
}

/// Decides what the ISO is. `read` returns the text of an identity file if the ISO has
/// it. Err carries a description of what was found, for the refusal message.
pub fn detect(
    listing: &Listing,
    read: &dyn Fn(&str) -> Option<String>,
) -> Result<IsoFlavour, String> {
    let missing = |files: &[&str]| -> Vec<String> {
        files
            .iter()
            .filter(|f| !listing.has(f))
            .map(|f| f.trim_start_matches('/').to_string())
            .collect()
    };
    if let Some(info) = read("/.disk/info") {
        // The ISO's text, shown in messages: its control characters escaped.
        let name = crate::escape::escape(info.lines().next().unwrap_or("").trim()).into_owned();
        let found = format!("\"{name}\" (from .disk/info)");
        if !name.starts_with("Ubuntu") || !name.contains(" 12.04") {
            return Err(format!("{found}, not an Ubuntu 12.04.x CD"));
        }
        if !name.contains("amd64") {
            return Err(format!("{found}, not the amd64 (x86-64) CD"));
        }
        let gone = missing(&[
            "/install/vmlinuz",
            "/install/initrd.gz",
            "/isolinux/isolinux.cfg",
            "/isolinux/txt.cfg",
        ]);
        if !gone.is_empty() {
            return Err(format!(
                "{found} without {} (a desktop live CD has no debian-installer; use the server CD)",
                gone.join(", ")
            ));
        }
        let uefi = listing
            .uefi_image()
            .filter(|_| listing.has("/boot/grub/grub.cfg"))
            .map(str::to_string);
        return Ok(IsoFlavour::Ubuntu1204 { name, uefi });
    }
    let treeinfo = read("/.treeinfo");
    let discinfo = read("/.discinfo");
    if treeinfo.is_some() || discinfo.is_some() {
        let (family, version, arch, from) = match &treeinfo {
            Some(t) => (
                ini_value(t, "general", "family").unwrap_or_default(),
                ini_value(t, "general", "version").unwrap_or_default(),
                ini_value(t, "general", "arch").unwrap_or_default(),
                ".treeinfo",
            ),
            None => {
                let d = discinfo.as_deref().unwrap_or("");
                let lines: Vec<&str> = d.lines().map(str::trim).collect();
                // Line 2 is "CentOS 6.3" on some DVDs and just "6.3" on others.
                let l2 = lines.get(1).copied().unwrap_or("");
                let (family, version) = match l2.rsplit_once(' ') {
                    Some((f, v)) => (f.to_string(), v.to_string()),
                    None => (String::new(), l2.to_string()),
                };
                (
                    family,
                    version,
                    lines.get(2).copied().unwrap_or("").to_string(),
                    ".discinfo",
                )
            }
        };
        let name = crate::escape::escape(format!("{family} {version} {arch}").trim()).into_owned();
        let found = format!("\"{name}\" (from {from})");
        if !family.eq_ignore_ascii_case("centos") || !(version == "6" || version.starts_with("6."))
        {
            return Err(format!("{found}, not a CentOS 6.x DVD"));
        }
        if arch != "x86_64" {
            return Err(format!("{found}, not the x86_64 DVD"));
        }
        let gone = missing(&["/isolinux/isolinux.cfg"]);
        if !gone.is_empty() {
            return Err(format!("{found} without {}", gone.join(", ")));
        }
        let uefi = listing
            .uefi_image()
            .filter(|_| listing.has("/EFI/BOOT/BOOTX64.conf"))
            .map(str::to_string);
        return Ok(IsoFlavour::Centos6 { name, uefi });
    }
    Err(
        "no .disk/info, .treeinfo or .discinfo, so neither a CentOS 6 DVD nor an Ubuntu 12.04 CD"
            .into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(files: &[&str]) -> Listing {
        Listing {
            files: files.iter().map(|s| s.to_string()).collect(),
            boot_images: vec![("/images/efiboot.img".into(), "UEFI".into())],
            joliet: false,
        }
    }

    #[test]
    fn centos_from_discinfo_alone() {
        let l = listing(&[
            "/.discinfo",
            "/isolinux/isolinux.cfg",
            "/EFI/BOOT/BOOTX64.conf",
        ]);
        let f = detect(&l, &|p| {
            (p == "/.discinfo").then(|| "1341569670.5\n6.3\nx86_64\n1\n".to_string())
        });
        // Without a family on line 2 this is not known to be CentOS.
        assert!(f.is_err());
        let f = detect(&l, &|p| {
            (p == "/.discinfo").then(|| "1341569670.5\nCentOS 6.3\nx86_64\n".to_string())
        })
        .unwrap();
        assert_eq!(
            f,
            IsoFlavour::Centos6 {
                name: "CentOS 6.3 x86_64".into(),
                uefi: Some("/images/efiboot.img".into())
            }
        );
    }

    #[test]
    fn centos_7_is_described_and_refused() {
        let l = listing(&["/.treeinfo", "/isolinux/isolinux.cfg"]);
        let err = detect(&l, &|p| {
            (p == "/.treeinfo")
                .then(|| "[general]\nfamily = CentOS\nversion = 7\narch = x86_64\n".to_string())
        })
        .unwrap_err();
        assert!(
            err.contains("CentOS 7 x86_64") && err.contains("not a CentOS 6.x"),
            "{err}"
        );
    }

    #[test]
    fn ubuntu_desktop_is_refused_with_a_reason() {
        let l = listing(&["/.disk/info", "/isolinux/isolinux.cfg"]);
        let err = detect(&l, &|p| {
            (p == "/.disk/info").then(|| {
                "Ubuntu 12.04.5 LTS \"Precise Pangolin\" - Release amd64 (20140806.1)".to_string()
            })
        })
        .unwrap_err();
        assert!(
            err.contains("install/initrd.gz") && err.contains("server CD"),
            "{err}"
        );
    }

    #[test]
    fn nothing_known() {
        let err = detect(&listing(&["/boot.catalog"]), &|_| None).unwrap_err();
        assert!(err.contains("no .disk/info"), "{err}");
    }
}
