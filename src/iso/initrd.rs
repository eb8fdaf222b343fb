//! The initrd that carries the preseed: a gzip'd newc cpio holding `/preseed.cfg`,
//! appended to the installer's own initrd. d-i loads `/preseed.cfg` from its initrd
//! before the first question; the kernel unpacks concatenated archives in turn, which
//! works with any boot loader (Ubuntu 12.04's GRUB 1.99 included), unlike a second
//! initrd argument.

use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;

/// A newc ("070701") cpio archive of regular files (`name`, mode, bytes), root-owned,
/// mtime 0 so the result is reproducible.
pub fn newc(files: &[(&str, u32, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (ino, (name, mode, data)) in (1u32..).zip(files) {
        header(&mut out, ino, 0o100000 | mode, data.len() as u32, name);
        out.extend_from_slice(data);
        pad4(&mut out);
    }
    header(&mut out, 0, 0, 0, "TRAILER!!!");
    out
}

fn header(out: &mut Vec<u8>, ino: u32, mode: u32, size: u32, name: &str) {
    let fields = [
        ino,
        mode,
        0, // uid
        0, // gid
        1, // nlink
        0, // mtime
        size,
        0, // devmajor
        0, // devminor
        0, // rdevmajor
        0, // rdevminor
        name.len() as u32 + 1,
        0, // check
    ];
    out.extend_from_slice(b"070701");
    for f in fields {
        out.extend_from_slice(format!("{f:08X}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    pad4(out);
}

fn pad4(out: &mut Vec<u8>) {
    while out.len() % 4 != 0 {
        out.push(0);
    }
}

/// gzip of a newc archive holding `preseed.cfg` (mode 0644).
pub fn preseed_archive(preseed: &[u8]) -> Vec<u8> {
    let cpio = newc(&[("preseed.cfg", 0o644, preseed)]);
    let mut gz = GzEncoder::new(Vec::new(), Compression::best());
    gz.write_all(&cpio).expect("writing to memory");
    gz.finish().expect("writing to memory")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The system's cpio reads our archive back: the independent check of the format.
    #[test]
    fn cpio_lists_and_extracts_the_preseed() {
        if !std::path::Path::new("/usr/bin/cpio").exists() {
            eprintln!("MISSING TOOL: cpio (Debian package `cpio`): test skipped");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let body = b"d-i debian-installer/locale string en_US.UTF-8\nodd length!";
        let gz = preseed_archive(body);
        let mut d = flate2::read::GzDecoder::new(&gz[..]);
        let mut cpio = Vec::new();
        std::io::Read::read_to_end(&mut d, &mut cpio).unwrap();
        crate::tool::Tool::new("cpio")
            .args(["-idm", "--quiet", "--directory"])
            .arg(dir.path())
            .run_with_stdin(Some(&cpio))
            .unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(std::fs::read(dir.path().join("preseed.cfg")).unwrap(), body);
    }
}
