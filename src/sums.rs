//! SHA-256 digests of hvseed's outputs and the one `SHA256SUMS` writer, shared by
//! `hvseed iso` (`/hvseed/SHA256SUMS`) and `hvseed pxe` (`DIR/SHA256SUMS`).

use std::borrow::Cow;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// A SHA-256 digest, written as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// The 64 hex digits, without allocating.
    pub fn hex_bytes(&self) -> [u8; 64] {
        const H: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 64];
        for (i, b) in self.0.iter().enumerate() {
            out[2 * i] = H[(b >> 4) as usize];
            out[2 * i + 1] = H[(b & 15) as usize];
        }
        out
    }

    pub fn hex(&self) -> String {
        String::from_utf8(self.hex_bytes().to_vec()).expect("hex digits are ASCII")
    }

    pub fn from_hex(s: &str) -> Option<Digest> {
        let b = s.as_bytes();
        if b.len() != 64 {
            return None;
        }
        let nibble = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        };
        let mut out = [0u8; 32];
        for (i, pair) in b.chunks_exact(2).enumerate() {
            out[i] = nibble(pair[0])? << 4 | nibble(pair[1])?;
        }
        Some(Digest(out))
    }
}

impl std::fmt::Debug for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.hex())
    }
}

impl std::fmt::Display for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.hex())
    }
}

impl Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let hex = self.hex_bytes();
        s.serialize_str(std::str::from_utf8(&hex).expect("hex digits are ASCII"))
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Digest;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a SHA-256 as 64 hex digits")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Digest, E> {
                // An empty string: a file listed before it was written (format 1).
                if v.is_empty() {
                    return Ok(Digest::default());
                }
                Digest::from_hex(v).ok_or_else(|| E::custom("not a SHA-256"))
            }
        }
        d.deserialize_str(V)
    }
}

pub fn sha256_bytes(b: &[u8]) -> Digest {
    Digest(Sha256::digest(b).into())
}

pub fn sha256_file(p: &Path) -> Result<Digest> {
    let f = fs::File::open(p).with_context(|| format!("reading {}", p.display()))?;
    sha256_reader(f, p)
}

/// SHA-256 of what `r` (read from `shown`, for messages) holds.
pub fn sha256_reader(mut r: impl std::io::Read, shown: &Path) -> Result<Digest> {
    let mut h = Sha256::new();
    std::io::copy(&mut r, &mut h).with_context(|| format!("reading {}", shown.display()))?;
    Ok(Digest(h.finalize().into()))
}

/// `SHA256SUMS` in the format `sha256sum -c` reads, lines sorted by path (names with a
/// backslash or newline escaped the way GNU coreutils does).
pub fn sha256sums(mut sums: Vec<(Cow<'_, str>, Digest)>) -> Vec<u8> {
    // Stable: it merges sorted runs (the tree, then the package tree) without a full
    // sort.
    sums.sort_by(|a, b| a.0.cmp(&b.0));
    let mut s = Vec::with_capacity(sums.iter().map(|(p, _)| p.len() + 68).sum());
    for (path, sha) in &sums {
        if path.contains('\\') || path.contains('\n') {
            let esc = path.replace('\\', "\\\\").replace('\n', "\\n");
            s.push(b'\\');
            s.extend_from_slice(&sha.hex_bytes());
            s.extend_from_slice(b"  ");
            s.extend_from_slice(esc.as_bytes());
        } else {
            s.extend_from_slice(&sha.hex_bytes());
            s.extend_from_slice(b"  ");
            s.extend_from_slice(path.as_bytes());
        }
        s.push(b'\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_read_back_as_written() {
        let d = sha256_bytes(b"hvseed");
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json.len(), 66);
        assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), d);
        assert_eq!(Digest::from_hex(&d.hex().to_uppercase()), Some(d));
        assert!(serde_json::from_str::<Digest>("\"abc\"").is_err());
        assert!(Digest::from_hex(&"g".repeat(64)).is_none());
    }

    #[test]
    fn sums_are_sorted_by_path_and_escaped_like_coreutils() {
        let a = sha256_bytes(b"a");
        let b = sha256_bytes(b"b");
        let s = sha256sums(vec![
            ("z".into(), a),
            ("d\\i\nr".into(), b),
            ("a/b".into(), b),
        ]);
        let want = format!("{b}  a/b\n\\{b}  d\\\\i\\nr\n{a}  z\n");
        assert_eq!(String::from_utf8(s).unwrap(), want);
    }
}
