//! Syntax of the names and addresses that hvseed puts into files, command lines and
//! shell scripts. The builder validates inventory values with these, and the agent
//! re-checks plans with the same functions, so both sides agree on what is safe.
//!
//! No name accepted here starts with `-`: names become command arguments (`ifup`,
//! `ovs-vsctl`, `brctl`) and file names (`ifcfg-<name>`), where a leading `-` would be
//! read as an option.

use std::net::Ipv4Addr;

/// One RFC 1123 label: 1–63 of `[A-Za-z0-9-]`, not starting or ending with `-`.
pub fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// A domain name: dot-separated labels, at most 253 characters, no trailing dot.
pub fn is_domain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_label)
}

/// A fully qualified name: a domain name with at least one dot whose top label is not
/// all digits (so an IPv4 address is not taken for a name).
pub fn is_fqdn(s: &str) -> bool {
    is_domain(s)
        && s.contains('.')
        && !s
            .rsplit('.')
            .next()
            .is_some_and(|top| top.bytes().all(|b| b.is_ascii_digit()))
}

/// A host given by name or by IPv4 address.
pub fn is_host(s: &str) -> bool {
    s.parse::<Ipv4Addr>().is_ok()
        || (is_domain(s) && !s.split('.').all(|l| l.bytes().all(|b| b.is_ascii_digit())))
}

/// A Linux interface name: 1–15 bytes of `[A-Za-z0-9_.-]`, not `.` or `..`, not
/// starting with `-`. (The kernel allows more; these are the ones that are safe
/// unquoted in ifcfg files, interfaces(5), shell and as command arguments.)
pub fn is_interface_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s != "."
        && s != ".."
        && !s.starts_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// A MAC in hvseed's normal form: six lowercase hex pairs separated by `:`.
pub fn is_mac(s: &str) -> bool {
    s.len() == 17
        && s.split(':').count() == 6
        && s.split(':')
            .all(|p| p.len() == 2 && p.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

/// Normalises the common spellings of a MAC (`00:04:23:AA:BB:01`, `00-04-23-aa-bb-01`,
/// `0004.23aa.bb01`, `000423aabb01`) to lowercase colon form.
pub fn normalize_mac(s: &str) -> Option<String> {
    let hex: String = s
        .chars()
        .filter(|c| !matches!(c, ':' | '-' | '.'))
        .collect();
    let seps: Vec<char> = s.chars().filter(|c| matches!(c, ':' | '-' | '.')).collect();
    let layout_ok = match seps.len() {
        0 => true,
        5 => seps.iter().all(|&c| c == seps[0]) && s.split(seps[0]).all(|p| p.len() == 2),
        2 => seps.iter().all(|&c| c == '.') && s.split('.').all(|p| p.len() == 4),
        _ => false,
    };
    if !layout_ok || hex.len() != 12 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let hex = hex.to_ascii_lowercase();
    let pairs: Vec<&str> = (0..6).map(|i| &hex[i * 2..i * 2 + 2]).collect();
    Some(pairs.join(":"))
}

/// The dotted netmask of a prefix length (0–32).
pub fn netmask(prefix: u8) -> Ipv4Addr {
    let bits = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix.min(32)))
    };
    Ipv4Addr::from(bits)
}

/// Parses `a.b.c.d/len` (or a bare address, taken as /32).
pub fn parse_cidr(s: &str) -> Option<(Ipv4Addr, u8)> {
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (
            a,
            l.parse::<u8>()
                .ok()
                .filter(|l| *l <= 32 && !l.to_string().is_empty())?,
        ),
        None => (s, 32),
    };
    Some((addr.parse().ok()?, len))
}

/// A libvirt CPU model or feature name (`SandyBridge`, `Westmere-IBRS`, `vmx`, `sse4.2`),
/// not starting with `-`.
pub fn is_cpu_word(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && !s.starts_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_in_common_spellings_normalise() {
        for s in [
            "00:04:23:AA:BB:01",
            "00-04-23-aa-bb-01",
            "0004.23aa.bb01",
            "000423AABB01",
        ] {
            assert_eq!(
                normalize_mac(s).as_deref(),
                Some("00:04:23:aa:bb:01"),
                "{s}"
            );
        }
        for s in [
            "00:04:23:aa:bb",
            "00:04:23:aa:bb:0g",
            "00:04-23:aa:bb:01",
            "0:04:23:aa:bb:011",
        ] {
            assert_eq!(normalize_mac(s), None, "{s}");
        }
    }

    #[test]
    fn names() {
        assert!(is_fqdn("kvm1.lab.example.org"));
        assert!(!is_fqdn("kvm1"));
        assert!(!is_fqdn("192.168.1.1"));
        assert!(!is_fqdn("-a.example.org"));
        assert!(is_interface_name("eth0.100"));
        assert!(!is_interface_name("averyveryverylongname"));
        assert!(!is_interface_name("eth 0"));
        // A leading `-` would be an option to ifup, ovs-vsctl, brctl.
        for opt in ["-rf", "--help", "-", "-eth0"] {
            assert!(!is_interface_name(opt), "{opt}");
            assert!(!is_cpu_word(opt), "{opt}");
            assert!(!is_label(opt), "{opt}");
            assert!(!is_domain(opt), "{opt}");
            assert!(!is_host(opt), "{opt}");
        }
        assert!(is_interface_name("eth0-1"));
        assert_eq!(netmask(24), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(netmask(0), Ipv4Addr::new(0, 0, 0, 0));
        assert_eq!(netmask(32), Ipv4Addr::new(255, 255, 255, 255));
        assert_eq!(
            parse_cidr("10.0.0.0/8"),
            Some((Ipv4Addr::new(10, 0, 0, 0), 8))
        );
        assert_eq!(parse_cidr("10.0.0.0/33"), None);
    }
}
