//! Maps a request path onto a file under `DIR/http` without ever leaving it.
//!
//! Two layers, because each catches what the other cannot: the request path is decoded
//! exactly once and refused if any segment could climb (`..`, `.`), smuggle a separator
//! (`\`), end a C string (NUL) or still carry an escape after decoding (`%252e` → `%2e`,
//! which something downstream might decode again); then the joined path is
//! canonicalised and must still lie under the canonical root, which catches symlinks
//! inside the tree that point out of it.

use std::fs::File;
use std::path::{Path, PathBuf};

/// Why a request path is not served.
#[derive(Debug, PartialEq, Eq)]
pub enum PathRefusal {
    /// Malformed or dangerous request path (400).
    BadPath(&'static str),
    /// Resolves outside the served root, through a symlink (403).
    Outside,
    /// Nothing servable there: missing, a directory, or not a regular file (404).
    NotFound,
}

/// A decoded request path: its segments, and whether it named a directory (`/x/`).
#[derive(Debug, PartialEq, Eq)]
pub struct RequestPath {
    pub segments: Vec<String>,
    pub trailing_slash: bool,
}

/// Decodes and checks a request path (the URI's path component, starting with `/`).
pub fn parse(raw: &str) -> Result<RequestPath, PathRefusal> {
    let rest = raw
        .strip_prefix('/')
        .ok_or(PathRefusal::BadPath("the path must start with /"))?;
    if raw.contains('\\') {
        return Err(PathRefusal::BadPath("backslashes are not allowed in paths"));
    }
    let decoded = percent_decode(rest)?;
    if decoded.contains('\\') {
        return Err(PathRefusal::BadPath("backslashes are not allowed in paths"));
    }
    if decoded.contains('%') {
        return Err(PathRefusal::BadPath(
            "a path may not contain an escape that decodes to %",
        ));
    }
    if decoded.chars().any(char::is_control) {
        return Err(PathRefusal::BadPath(
            "control characters (NUL included) are not allowed in paths",
        ));
    }
    let mut segments: Vec<String> = decoded.split('/').map(str::to_owned).collect();
    let trailing_slash = segments.len() > 1 && segments.last().is_some_and(|s| s.is_empty());
    if trailing_slash {
        segments.pop();
    }
    if segments == [""] {
        segments.clear();
    }
    for s in &segments {
        match s.as_str() {
            "" => return Err(PathRefusal::BadPath("empty path segment (//)")),
            "." | ".." => return Err(PathRefusal::BadPath("`.` and `..` are not allowed")),
            _ => {}
        }
    }
    Ok(RequestPath {
        segments,
        trailing_slash,
    })
}

/// `%XX` decoding, once. Bad escapes and non-UTF-8 results are refused rather than
/// passed through, so there is exactly one interpretation of every accepted path.
fn percent_decode(s: &str) -> Result<String, PathRefusal> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or(PathRefusal::BadPath("malformed %-escape"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| PathRefusal::BadPath("the path is not UTF-8"))
}

/// Opens the regular file a checked path names under `root`, which must be canonical.
/// Returns the open file and its canonical path.
pub fn open_under(root: &Path, path: &RequestPath) -> Result<(File, PathBuf), PathRefusal> {
    if path.trailing_slash || path.segments.is_empty() {
        return Err(PathRefusal::NotFound);
    }
    let mut joined = root.to_path_buf();
    joined.extend(&path.segments);
    // Missing, unreadable, a dangling or looping symlink: all simply not there.
    let canonical = joined.canonicalize().map_err(|_| PathRefusal::NotFound)?;
    // The tree belongs to the operator; this guards against links in it, not against
    // a local user racing renames inside it between this check and the open.
    if !canonical.starts_with(root) {
        return Err(PathRefusal::Outside);
    }
    let file = File::open(&canonical).map_err(|_| PathRefusal::NotFound)?;
    // Checked on the open handle, so a directory or device swapped in after the
    // canonicalisation is still refused.
    match file.metadata() {
        Ok(m) if m.is_file() => Ok((file, canonical)),
        _ => Err(PathRefusal::NotFound),
    }
}

/// The Content-Type for a served file, by name: what installers, apt/yum and browsers
/// expect. Unknown names are binary.
pub fn content_type(path: &Path) -> &'static str {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    match name {
        "SHA256SUMS" | "MD5SUMS" | "SHA1SUMS" | "Release" | "Packages" | "Sources"
        | "InRelease" | ".treeinfo" | ".discinfo" | "md5sum.txt" | "TRANS.TBL" => {
            return "text/plain; charset=utf-8"
        }
        _ => {}
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    match ext.as_str() {
        "cfg" | "ks" | "seed" | "preseed" | "txt" | "conf" | "sh" | "repo" | "asc" | "log" => {
            "text/plain; charset=utf-8"
        }
        "json" => "application/json",
        "html" | "htm" => "text/html; charset=utf-8",
        "xml" => "application/xml",
        "css" => "text/css",
        "gz" | "tgz" => "application/gzip",
        "bz2" => "application/x-bzip2",
        "xz" => "application/x-xz",
        "lzma" => "application/x-lzma",
        "rpm" => "application/x-rpm",
        "deb" | "udeb" => "application/vnd.debian.binary-package",
        "iso" => "application/x-iso9660-image",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(raw: &str) -> Vec<String> {
        parse(raw).unwrap().segments
    }

    #[test]
    fn plain_paths_decode_to_segments() {
        assert_eq!(segs("/hosts/a.b.c/ks.cfg"), ["hosts", "a.b.c", "ks.cfg"]);
        assert_eq!(segs("/my%20file"), ["my file"]);
        assert_eq!(segs("/.treeinfo"), [".treeinfo"]);
        assert!(segs("/").is_empty());
        assert!(parse("/hosts/").unwrap().trailing_slash);
    }

    #[test]
    fn every_climbing_form_is_refused() {
        for raw in [
            "/../etc/passwd",
            "/hosts/../../etc/passwd",
            "/%2e%2e/etc/passwd",
            "/%2E%2E%2Fetc%2Fpasswd",
            "/..%2fetc",
            "/%252e%252e/etc/passwd",
            "/..\\etc",
            "/%5c..%5cetc",
            "/ks.cfg%00.json",
            "/a//b",
            "/./a",
            "etc/passwd",
            "/%zz",
            "/%c0%ae%c0%ae/etc",
        ] {
            assert!(
                matches!(parse(raw), Err(PathRefusal::BadPath(_))),
                "{raw} was accepted"
            );
        }
    }

    #[test]
    fn content_types_follow_the_name() {
        let t = |p: &str| content_type(Path::new(p));
        assert_eq!(t("hosts/x/ks.cfg"), "text/plain; charset=utf-8");
        assert_eq!(t("hosts/x/plan.json"), "application/json");
        assert_eq!(t("hvseed-firstboot"), "application/octet-stream");
        assert_eq!(t("repodata/repomd.xml"), "application/xml");
        assert_eq!(t("repodata/x-primary.xml.gz"), "application/gzip");
        assert_eq!(t("SHA256SUMS"), "text/plain; charset=utf-8");
    }
}
