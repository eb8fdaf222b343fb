//! Syntax rules for inventory values that end up in kickstart/preseed options, kernel
//! command lines, shell scripts and config files. Each returns `Err(why and how to fix)`.

use std::borrow::Cow;
use std::net::Ipv4Addr;

use hvseed_plan::names::{is_cpu_word, is_domain, is_fqdn, is_interface_name, parse_cidr};

/// The longest value of any kind: an `ssh_authorized_keys` line, the longest kind, may
/// have this many bytes; every other kind has a smaller limit of its own.
pub const MAX_VALUE: usize = 8 * 1024;

/// Limits of the kinds without a syntax that bounds them already.
pub const MAX_URL: usize = 2048;
pub const MAX_SSH_KEY: usize = MAX_VALUE;
pub const MAX_PASSWORD_HASH: usize = 128;

/// Most items in a list (kernel arguments are bounded by their bytes).
pub const MAX_SSH_KEYS: usize = 256;
pub const MAX_PACKAGES: usize = 512;
pub const MAX_REPOSITORIES: usize = 64;
pub const MAX_NTP_SERVERS: usize = 16;
/// resolv.conf: glibc reads 3 name servers and (before 2.26, i.e. on both OSes) 6
/// search domains.
pub const MAX_DNS_SERVERS: usize = 3;
pub const MAX_DNS_SEARCH: usize = 6;
pub const MAX_CPU_FEATURES: usize = 64;
pub const MAX_FIREWALL_SOURCES: usize = 256;

/// A value as messages quote it: whole when short, else its start and its length,
/// so that a message never repeats a long value.
pub fn shown(s: &str) -> Cow<'_, str> {
    const SHOW: usize = 64;
    if s.len() <= SHOW + 16 {
        return Cow::Borrowed(s);
    }
    let mut end = SHOW;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}…({} bytes)", &s[..end], s.len()))
}

/// Refuses `s` when longer than `max` bytes, without quoting it.
fn at_most(s: &str, max: usize, what: &str) -> Result<(), String> {
    if s.len() > max {
        Err(format!(
            "is {} bytes long; {what} may have at most {max}",
            s.len()
        ))
    } else {
        Ok(())
    }
}

/// `cluster:` — used in report and file names: `[a-z0-9-]`, 1–63, no leading/trailing `-`.
pub fn cluster_name(s: &str) -> Result<(), String> {
    if !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
    {
        Ok(())
    } else {
        Err(format!(
            "`{s}` is not a cluster name (use 1-63 of a-z, 0-9 and `-`, e.g. `lab1`)",
            s = shown(s)
        ))
    }
}

/// An http(s) URL without characters that would need quoting anywhere it lands.
pub fn url(s: &str) -> Result<(), String> {
    at_most(s, MAX_URL, "a URL")?;
    let rest = s
        .strip_prefix("http://")
        .or_else(|| s.strip_prefix("https://"))
        .ok_or_else(|| format!("`{s}` is not an http:// or https:// URL", s = shown(s)))?;
    if let Some(c) = s.chars().find(|c| {
        !(c.is_ascii_alphanumeric()
            || matches!(
                c,
                '-' | '.'
                    | '_'
                    | '~'
                    | ':'
                    | '/'
                    | '?'
                    | '#'
                    | '@'
                    | '&'
                    | '*'
                    | '+'
                    | ','
                    | '='
                    | '%'
            ))
    }) {
        return Err(format!(
            "`{s}` contains `{}`, which is not allowed in a URL here (percent-encode it)",
            c.escape_default()
        ));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let hostport = authority.rsplit('@').next().unwrap_or("");
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (hostport, None),
    };
    if host.is_empty() || !hvseed_plan::names::is_host(host) {
        return Err(format!(
            "`{s}` has no valid host name after the scheme",
            s = shown(s)
        ));
    }
    if let Some(p) = port {
        if p.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(format!("`{s}` has an invalid port `{p}`", s = shown(s)));
        }
    }
    Ok(())
}

/// `install.locale`, e.g. `en_US.UTF-8` (language[_TERRITORY][.codeset][@modifier]).
pub fn locale(s: &str) -> Result<(), String> {
    let (main, modifier) = match s.split_once('@') {
        Some((m, md)) => (m, Some(md)),
        None => (s, None),
    };
    let (langterr, codeset) = match main.split_once('.') {
        Some((l, c)) => (l, Some(c)),
        None => (main, None),
    };
    let (lang, terr) = match langterr.split_once('_') {
        Some((l, t)) => (l, Some(t)),
        None => (langterr, None),
    };
    let ok = (2..=3).contains(&lang.len())
        && lang.bytes().all(|b| b.is_ascii_lowercase())
        && terr.is_none_or(|t| t.len() == 2 && t.bytes().all(|b| b.is_ascii_uppercase()))
        && codeset.is_none_or(|c| {
            !c.is_empty()
                && c.len() <= 20
                && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        && modifier.is_none_or(|m| {
            !m.is_empty() && m.len() <= 20 && m.bytes().all(|b| b.is_ascii_lowercase())
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{s}` is not a locale (write it like `en_US.UTF-8`)",
            s = shown(s)
        ))
    }
}

/// `install.keyboard`, e.g. `us`, `de`, `fr-latin1`.
pub fn keyboard(s: &str) -> Result<(), String> {
    if !s.is_empty()
        && s.len() <= 32
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        Ok(())
    } else {
        Err(format!(
            "`{s}` is not a keyboard layout (use a-z, 0-9, `_` and `-`, starting with a letter or digit, e.g. `us`)",
            s = shown(s)
        ))
    }
}

/// `install.timezone`: `UTC` or `Area/City` style (`Europe/Berlin`, `Etc/GMT+5`).
pub fn timezone(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.split('/').all(|p| {
            !p.is_empty()
                && p != "."
                && p != ".."
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-'))
                && p.as_bytes()[0].is_ascii_alphabetic()
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{s}` is not a time zone name (write it like `Etc/UTC` or `Europe/Berlin`)",
            s = shown(s)
        ))
    }
}

fn is_crypt_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'.' || b == b'/'
}

/// `install.root_password_hash`: a SHA-512 crypt(3) string,
/// `$6$[rounds=N$]salt$hash` with a salt of ≤ 16 and a hash of 86 of `[./A-Za-z0-9]`.
pub fn password_hash(s: &str) -> Result<(), String> {
    let hint = "(make one with `openssl passwd -6`, and quote it in YAML)";
    at_most(s, MAX_PASSWORD_HASH, "a `$6$` hash")?;
    let Some(rest) = s.strip_prefix("$6$") else {
        if s.starts_with('$') {
            return Err(format!(
                "is not a SHA-512 crypt string: only `$6$` hashes are accepted {hint}"
            ));
        }
        return Err(format!(
            "looks like a plaintext password, which is refused: give a `$6$` hash {hint}"
        ));
    };
    let rest = match rest.strip_prefix("rounds=") {
        Some(r) => {
            let (n, after) = r
                .split_once('$')
                .ok_or_else(|| format!("has `rounds=` without a value {hint}"))?;
            match n.parse::<u32>() {
                Ok(n) if (1000..=999_999_999).contains(&n) => after,
                _ => {
                    return Err(format!(
                        "has an invalid `rounds={n}` (1000-999999999) {hint}"
                    ))
                }
            }
        }
        None => rest,
    };
    let (salt, hash) = rest
        .split_once('$')
        .ok_or_else(|| format!("is not a complete `$6$salt$hash` string {hint}"))?;
    if salt.is_empty() || salt.len() > 16 || !salt.bytes().all(is_crypt_char) {
        return Err(format!(
            "has an invalid salt (1-16 of `./A-Za-z0-9`) {hint}"
        ));
    }
    if hash.len() != 86 || !hash.bytes().all(is_crypt_char) {
        return Err(format!(
            "has a hash part of {} characters; a `$6$` hash has 86 of `./A-Za-z0-9` {hint}",
            hash.len()
        ));
    }
    Ok(())
}

/// Key types accepted at the start of an `ssh_authorized_keys` line.
pub const SSH_KEY_TYPES: &[&str] = &[
    "ssh-rsa",
    "ssh-dss",
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

/// One `authorized_keys` line: `TYPE BASE64 [comment]`, on one line. The comment is free
/// text and is carried literally (renderers quote it).
pub fn ssh_key(s: &str) -> Result<(), String> {
    at_most(s, MAX_SSH_KEY, "an authorized_keys line")?;
    if s.contains(['\n', '\r', '\0']) {
        return Err(
            "must be a single line (no newlines or NUL bytes); give each key as its own list item"
                .into(),
        );
    }
    let mut words = s.split_ascii_whitespace();
    let ty = words.next().unwrap_or("");
    if !SSH_KEY_TYPES.contains(&ty) {
        return Err(format!(
            "does not start with a key type ({}); paste the line of the .pub file",
            SSH_KEY_TYPES[..3].join(", ") + ", ecdsa-sha2-..."
        ));
    }
    let blob = words.next().unwrap_or("");
    if blob.len() < 16
        || !blob
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
    {
        return Err(format!(
            "has no base64 key after `{ty}`; paste the whole line of the .pub file"
        ));
    }
    if s.bytes().any(|b| b.is_ascii_control() && b != b'\t') {
        return Err("contains control characters".into());
    }
    Ok(())
}

/// `install.disk`: a kernel block device name without `/dev/` (`sda`, `vda`, `xvda`,
/// `nvme0n1`, `cciss/c0d0`).
pub fn disk(s: &str) -> Result<(), String> {
    if let Some(rest) = s.strip_prefix("/dev/") {
        return Err(format!("write the device name without /dev/: `{rest}`"));
    }
    let part_ok = |p: &str| {
        !p.is_empty()
            && p.as_bytes()[0].is_ascii_lowercase()
            && p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    let parts: Vec<&str> = s.split('/').collect();
    if s.len() <= 32 && parts.len() <= 2 && parts.iter().all(|p| part_ok(p)) {
        Ok(())
    } else {
        Err(format!(
            "`{s}` is not a disk device name (e.g. `sda`, `vda`, `nvme0n1`, `cciss/c0d0`)",
            s = shown(s)
        ))
    }
}

/// A package name for `%packages` / `pkgsel/include`.
pub fn package(s: &str) -> Result<(), String> {
    if !s.is_empty()
        && s.len() <= 128
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'+' | b'-'))
    {
        Ok(())
    } else {
        Err(format!(
            "`{s}` is not a package name (letters, digits and `._+-`, starting with a letter or digit)",
            s = shown(s)
        ))
    }
}

/// The characters a kernel argument may hold besides ASCII letters and digits: none that
/// a boot loader splits, expands, quotes or drops (isolinux/pxelinux split on spaces;
/// GRUB 2 expands `$` and reads quotes, `;`, `{`, `}`, `|`, `&`, `<`, `>`; grub-legacy
/// treats `#` specially; shells and menus glob `*`, `?`, `[`, `]`).
pub const KERNEL_ARG_PUNCTUATION: &str = "-_.,:=/+@%~";

/// The longest kernel argument accepted (a kernel command line holds 2048 bytes on
/// x86, and the installer's own arguments need room too).
pub const MAX_KERNEL_ARG: usize = 512;

/// One installer kernel argument (lands on kernel command lines and in every boot
/// menu: isolinux, pxelinux, grub-legacy, GRUB 2). This is the only check: code past
/// `inventory::load` takes [`KernelArg`](super::KernelArg)s as they are.
pub fn kernel_arg(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("is empty; remove it".into());
    }
    at_most(s, MAX_KERNEL_ARG, "a kernel argument")?;
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || KERNEL_ARG_PUNCTUATION.contains(*c)))
    {
        let what = if c.is_whitespace() {
            "a space"
        } else if c.is_control() {
            "a control character"
        } else if !c.is_ascii() {
            "a non-ASCII character"
        } else {
            "a character"
        };
        return Err(format!(
            "`{}` contains {what} (`{}`) that boot loaders would split, expand or drop; use only letters, digits and {} (give each argument as its own list item)",
            s.escape_default(),
            c.escape_default(),
            KERNEL_ARG_PUNCTUATION.chars().map(String::from).collect::<Vec<_>>().join(" ")
        ));
    }
    Ok(())
}

/// `install.extra_repositories[].name`: used as a yum repo id and an apt list file name.
pub fn repo_name(s: &str) -> Result<(), String> {
    if !s.is_empty()
        && s.len() <= 64
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        Ok(())
    } else {
        Err(format!(
            "`{s}` is not a repository name (use A-Z, a-z, 0-9, `_` and `-`, starting with a letter or digit)",
            s = shown(s)
        ))
    }
}

/// A host name or IPv4 address (NTP servers).
pub fn host(s: &str) -> Result<(), String> {
    if s.parse::<Ipv4Addr>().is_ok() || (is_domain(s) && !looks_numeric(s)) {
        Ok(())
    } else {
        Err(format!(
            "`{s}` is not a host name or IPv4 address",
            s = shown(s)
        ))
    }
}

fn looks_numeric(s: &str) -> bool {
    s.split('.').all(|l| l.bytes().all(|b| b.is_ascii_digit()))
}

/// An IPv4 address or a fully qualified name (`cloudstack.management_server`).
pub fn ipv4_or_fqdn(s: &str) -> Result<(), String> {
    if s.parse::<Ipv4Addr>().is_ok() || is_fqdn(s) {
        Ok(())
    } else {
        Err(format!(
            "`{s}` is neither an IPv4 address nor a fully qualified name",
            s = shown(s)
        ))
    }
}

/// A DNS search domain.
pub fn domain(s: &str) -> Result<(), String> {
    if is_domain(s) && !looks_numeric(s) {
        Ok(())
    } else {
        Err(format!("`{s}` is not a domain name", s = shown(s)))
    }
}

/// `cloudstack.version`: `MAJOR.MINOR[.PATCH]`.
pub fn cloudstack_version(s: &str) -> Result<(), String> {
    let parts: Vec<&str> = s.split('.').collect();
    if (2..=4).contains(&parts.len())
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 4 && p.bytes().all(|b| b.is_ascii_digit()))
    {
        Ok(())
    } else {
        Err(format!(
            "`{s}` is not a CloudStack version (write it like \"4.2\")",
            s = shown(s)
        ))
    }
}

/// `cloudstack.version` as `(major, minor)` (the rule above has accepted it).
pub fn cloudstack_major_minor(s: &str) -> Option<(u32, u32)> {
    let mut parts = s.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// `cloudstack.suite`: an apt suite (codename) as it stands in a `deb` line and in
/// the repository's `dists/` path.
pub fn apt_suite(s: &str) -> Result<(), String> {
    if !s.is_empty()
        && s.len() <= 64
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        Ok(())
    } else {
        Err(format!(
            "`{s}` is not an apt suite (a codename such as `jammy`: a-z, 0-9, `.` and `-`, starting with a letter or digit)",
            s = shown(s)
        ))
    }
}

const PGP_BEGIN: &str = "-----BEGIN PGP PUBLIC KEY BLOCK-----";
const PGP_END: &str = "-----END PGP PUBLIC KEY BLOCK-----";

/// Whether `cloudstack.key` holds the key itself rather than a URL.
pub fn is_inline_key(s: &str) -> bool {
    s.trim_start().starts_with(PGP_BEGIN)
}

/// `cloudstack.key`: an http(s) URL of the repository's signing key, or the key as
/// an ASCII-armoured OpenPGP public key block (printable ASCII lines).
pub fn apt_key(s: &str) -> Result<(), String> {
    if !is_inline_key(s) {
        return url(s).map_err(|e| {
            format!("{e}; give the URL of the repository's signing key or paste the key (`{PGP_BEGIN}` … `{PGP_END}`)")
        });
    }
    let t = s.trim();
    if !t.ends_with(PGP_END) {
        return Err(format!(
            "the key does not end with `{PGP_END}`; paste the whole key (in YAML, as a `|` block)"
        ));
    }
    if let Some(c) = t
        .chars()
        .find(|c| !(matches!(c, ' '..='~') || *c == '\n' || *c == '\r' || *c == '\t'))
    {
        return Err(format!(
            "the key holds `{}`, which an ASCII-armoured key never does; paste it as exported (`gpg --armor --export`)",
            c.escape_default()
        ));
    }
    Ok(())
}

/// A CPU model or feature name for `agent.properties`.
pub fn cpu_word(s: &str) -> Result<(), String> {
    if is_cpu_word(s) {
        Ok(())
    } else {
        Err(format!(
            "`{s}` is not a CPU model/feature name (letters, digits and `_.-`, not starting with `-`)",
            s = shown(s)
        ))
    }
}

/// An interface or bridge name.
pub fn interface(s: &str) -> Result<(), String> {
    if is_interface_name(s) {
        Ok(())
    } else {
        Err(format!(
            "`{s}` is not a valid Linux interface name (1-15 of A-Z, a-z, 0-9, `_.-`, not starting with `-`, which commands would read as an option)",
            s = shown(s)
        ))
    }
}

/// An IPv4 network in CIDR form (a bare address means /32); returns it normalised as
/// `a.b.c.d/len`. Host bits must be zero, so a typo in the prefix is not widened.
pub fn cidr(s: &str) -> Result<String, String> {
    let (addr, len) = parse_cidr(s).ok_or_else(|| {
        format!(
            "`{s}` is not an IPv4 network (write it like `192.168.42.0/24`)",
            s = shown(s)
        )
    })?;
    let mask = u32::from(hvseed_plan::names::netmask(len));
    let net = Ipv4Addr::from(u32::from(addr) & mask);
    if net != addr {
        return Err(format!(
            "`{s}` has host bits set; did you mean `{net}/{len}`?",
            s = shown(s)
        ));
    }
    Ok(format!("{addr}/{len}"))
}

/// A host FQDN (stored lowercase).
pub fn fqdn(s: &str) -> Result<(), String> {
    if is_fqdn(s) {
        Ok(())
    } else if !s.contains('.') && hvseed_plan::names::is_label(s) {
        Err(format!(
            "`{s}` is not fully qualified; add the domain, e.g. `{s}.lab.example.org`",
            s = shown(s)
        ))
    } else {
        Err(format!(
            "`{s}` is not a valid fully qualified name (labels of a-z, 0-9 and `-`, separated by dots)",
            s = shown(s)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "$6$hvseedlab$t1.kB9z7B8HKic33ra63fhRD9HftPru4/eGjbd2w882XHzsjLP9FI2Gir7yyCr6VcJISEaAu3gFSDunaEoAuu0";

    #[test]
    fn password_hashes() {
        assert_eq!(password_hash(HASH), Ok(()));
        let rounds = HASH.replacen("$6$", "$6$rounds=5000$", 1);
        assert_eq!(password_hash(&rounds), Ok(()));
        assert!(password_hash("changeme").unwrap_err().contains("plaintext"));
        assert!(password_hash("$1$abc$def")
            .unwrap_err()
            .contains("only `$6$`"));
        assert!(password_hash("$6$salt$short").is_err());
        assert!(password_hash(&HASH.replace("hvseedlab", "waytoolongsaltvalue17")).is_err());
        assert!(password_hash(&HASH.replace('t', "!")).is_err());
        assert!(password_hash(&HASH.replacen("$6$", "$6$rounds=10$", 1)).is_err());
    }

    #[test]
    fn urls() {
        for ok in [
            "http://cloudstack.apt-get.eu/rhel/4.2/",
            "https://mirror.example.org:8080/centos/6.3/os/x86_64",
            "http://192.168.42.5/repo?x=1&y=2",
        ] {
            assert_eq!(url(ok), Ok(()), "{ok}");
        }
        for bad in [
            "ftp://x.org/",
            "http://",
            "http:///path",
            "http://x.org/a b",
            "http://x.org/$(reboot)",
            "http://x.org/'q'",
            "http://x.org:99999/",
            "cloudstack.apt-get.eu/rhel",
        ] {
            assert!(url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn small_syntaxes() {
        assert!(locale("en_US.UTF-8").is_ok());
        assert!(locale("de_DE@euro").is_ok());
        assert!(locale("C").is_err());
        assert!(locale("en_US.UTF-8; reboot").is_err());
        assert!(keyboard("fr-latin1").is_ok());
        assert!(keyboard("US").is_err());
        assert!(timezone("Etc/UTC").is_ok());
        assert!(timezone("America/Argentina/Buenos_Aires").is_ok());
        assert!(timezone("UTC").is_ok());
        assert!(timezone("../etc/passwd").is_err());
        assert!(timezone("Europe/Ber lin").is_err());
        for d in ["sda", "vda", "xvda", "nvme0n1", "cciss/c0d0"] {
            assert!(disk(d).is_ok(), "{d}");
        }
        assert!(disk("/dev/sda").unwrap_err().contains("`sda`"));
        assert!(disk("sda1;rm").is_err());
        assert!(disk("a/b/c").is_err());
        assert!(package("qemu-kvm").is_ok());
        assert!(package("gcc-c++").is_ok());
        assert!(package("-foo").is_err());
        assert!(package("foo bar").is_err());
        assert!(kernel_arg("console=ttyS0,115200n8").is_ok());
        assert!(kernel_arg("keyboard-configuration/layoutcode=us").is_ok());
        assert!(kernel_arg("ip=10.0.0.2::10.0.0.1:255.255.255.0:h:eth0:none").is_ok());
        for bad in [
            "", "a b", "a'b", "a\"b", "a\\b", "a;b", "$x", "`x`", "a\tb", "é",
        ] {
            assert!(kernel_arg(bad).is_err(), "{bad:?}");
        }
        for c in "&*|<>(){}!^#?[]".chars() {
            assert!(kernel_arg(&format!("rd.foo=a{c}b")).is_err(), "{c}");
        }
        assert!(kernel_arg(&"a".repeat(MAX_KERNEL_ARG)).is_ok());
        assert!(kernel_arg(&"a".repeat(MAX_KERNEL_ARG + 1)).is_err());
        assert!(repo_name("openvswitch-el6").is_ok());
        assert!(repo_name("o v").is_err());
        assert!(host("0.pool.ntp.org").is_ok());
        assert!(host("10.0.0.1").is_ok());
        assert!(host("10.0.0.300").is_err());
        assert!(ipv4_or_fqdn("cs.lab.example.org").is_ok());
        assert!(ipv4_or_fqdn("cs").is_err());
        assert!(cloudstack_version("4.2").is_ok());
        assert!(cloudstack_version("4.10.0").is_ok());
        assert!(cloudstack_version("latest").is_err());
        assert_eq!(cidr("10.0.0.0/8"), Ok("10.0.0.0/8".into()));
        assert_eq!(cidr("10.1.2.3"), Ok("10.1.2.3/32".into()));
        assert!(cidr("10.1.2.3/8").unwrap_err().contains("10.0.0.0/8"));
        assert!(fqdn("kvm1").unwrap_err().contains("fully qualified"));
    }

    #[test]
    fn ssh_keys() {
        let k = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBxyz0123456789abcdefghij admin@lab 'x' $(y) `z`; \"q\"";
        assert_eq!(ssh_key(k), Ok(()));
        assert!(ssh_key("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBxyz\nssh-rsa AAAA").is_err());
        assert!(ssh_key("AAAAB3NzaC1yc2E").is_err());
        assert!(ssh_key("ssh-rsa").is_err());
    }
}
