//! `--http-base`: the URL under which a `hvseed pxe` tree's `http/` is served, as
//! `hvseed render` and `hvseed pxe` take it. It lands unquoted on kernel command lines
//! and in kickstarts and preseeds, so only plain http(s) URLs are accepted.

use std::fmt;
use std::str::FromStr;

/// A plain http(s) URL without a trailing `/`: a host (and port, path) of letters,
/// digits and `-._~:/@%+=,[]` only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpBase(String);

/// Why a string is not an [`HttpBase`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "not a plain http(s) URL; give the URL the installers reach DIR/http under, e.g. \
     http://10.0.0.2:8080 (letters, digits and -._~:/@%+=,[] only)"
)]
pub struct BadHttpBase;

impl HttpBase {
    /// The URL without a trailing `/`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for HttpBase {
    type Err = BadHttpBase;

    fn from_str(s: &str) -> Result<Self, BadHttpBase> {
        let b = s.trim_end_matches('/');
        let rest = b
            .strip_prefix("http://")
            .or_else(|| b.strip_prefix("https://"));
        let ok = rest.is_some_and(|r| {
            !r.is_empty()
                && !r.starts_with('/')
                && r.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"-._~:/@%+=,[]".contains(&c))
        });
        if !ok {
            return Err(BadHttpBase);
        }
        Ok(HttpBase(b.to_string()))
    }
}

impl fmt::Display for HttpBase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_urls_only_without_the_trailing_slash() {
        let b: HttpBase = "http://10.0.0.2:8080/".parse().unwrap();
        assert_eq!(b.as_str(), "http://10.0.0.2:8080");
        assert_eq!(b.to_string(), "http://10.0.0.2:8080");
        let b: HttpBase = "https://[fd00::2]:8443/hv/".parse().unwrap();
        assert_eq!(b.as_str(), "https://[fd00::2]:8443/hv");
        for bad in [
            "ftp://x",
            "http://",
            "http:///x",
            "http://x/'$(id)'",
            "http://x y",
            "http://h/$(id)",
            "",
        ] {
            assert_eq!(bad.parse::<HttpBase>(), Err(BadHttpBase), "{bad}");
        }
    }
}
