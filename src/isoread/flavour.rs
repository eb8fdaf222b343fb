//! Which install medium an ISO is, read from its own files: each target of
//! [`crate::target::TARGETS`] recognises its own media (`.treeinfo`/`.discinfo`,
//! `.disk/info`, ...), plus the boot files hvseed edits. Anything else is described,
//! not guessed at.

use hvseed_plan::plan::Os;

use super::Listing;
use crate::target::{self, Recognition, Target};

/// The files that identify a medium, of every target; extracted first (each is a few
/// hundred bytes).
pub fn identity_files() -> Vec<&'static str> {
    let mut files: Vec<&'static str> = Vec::new();
    for t in target::TARGETS {
        for f in t.iso.identity_files {
            if !files.contains(f) {
                files.push(f);
            }
        }
    }
    files
}

/// An install medium hvseed knows how to remaster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsoFlavour {
    pub target: &'static Target,
    /// What the medium calls itself (`CentOS 6.3 x86_64`, the first line of
    /// `.disk/info`), escaped for printing.
    pub name: String,
    /// The UEFI El Torito image (`images/efiboot.img`, `boot/grub/efi.img`) when the
    /// ISO also has the target's UEFI menu file.
    pub uefi: Option<String>,
}

impl IsoFlavour {
    pub fn os(&self) -> Os {
        self.target.os
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Decides what the ISO is. `read` returns the text of an identity file if the ISO has
/// it. The first target that recognises the medium wins; if none does, Err carries a
/// description of what was found (preferring what `want`'s target says about it), for
/// the refusal message.
pub fn detect(
    listing: &Listing,
    read: &dyn Fn(&str) -> Option<String>,
    want: Os,
) -> Result<IsoFlavour, String> {
    let mut refusals: Vec<(Os, String)> = Vec::new();
    for t in target::TARGETS {
        match (t.iso.recognise)(listing, read) {
            Recognition::Found(name) => {
                let uefi = listing
                    .uefi_image()
                    .filter(|_| listing.has(t.iso.uefi.config()))
                    .map(str::to_string);
                return Ok(IsoFlavour {
                    target: t,
                    name,
                    uefi,
                });
            }
            Recognition::Refused(why) => refusals.push((t.os, why)),
            Recognition::Other => {}
        }
    }
    if let Some(i) = refusals.iter().position(|(os, _)| *os == want) {
        return Err(refusals.swap_remove(i).1);
    }
    if let Some((_, why)) = refusals.into_iter().next() {
        return Err(why);
    }
    let files: Vec<&str> = identity_files()
        .into_iter()
        .map(|f| f.trim_start_matches('/'))
        .collect();
    let media: Vec<&str> = target::TARGETS.iter().map(|t| t.iso.short).collect();
    Err(format!(
        "no {}, so not {}",
        target::either(&files),
        target::either(&media)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn centos_with_its_uefi_menu() {
        let l = Listing::centos6_dvd_for_tests();
        let f = detect(
            &l,
            &|p| (p == "/.discinfo").then(|| "1341569670.5\nCentOS 6.3\nx86_64\n".to_string()),
            Os::Centos6,
        )
        .unwrap();
        assert_eq!(f.os(), Os::Centos6);
        assert_eq!(f.name(), "CentOS 6.3 x86_64");
        assert_eq!(f.uefi.as_deref(), Some("/images/efiboot.img"));
        // Without the grub-legacy menu the UEFI image is not one hvseed can edit.
        let l = Listing::for_tests(&["/.discinfo", "/isolinux/isolinux.cfg"]);
        let f = detect(
            &l,
            &|p| (p == "/.discinfo").then(|| "1341569670.5\nCentOS 6.3\nx86_64\n".to_string()),
            Os::Centos6,
        )
        .unwrap();
        assert_eq!(f.uefi, None);
    }

    #[test]
    fn nothing_known() {
        let err = detect(
            &Listing::for_tests(&["/boot.catalog"]),
            &|_| None,
            Os::Centos6,
        )
        .unwrap_err();
        assert!(
            err.contains("no .discinfo, .treeinfo or .disk/info"),
            "{err}"
        );
        assert!(
            err.contains("a CentOS 6 DVD, an Ubuntu 12.04 CD, a Debian 12 CD, an EL9 DVD, an Ubuntu 22.04 ISO or an Ubuntu 24.04 ISO"),
            "{err}"
        );
    }
}
