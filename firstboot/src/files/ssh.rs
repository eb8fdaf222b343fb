//! OpenSSH's server: root may log in, as CloudStack's Add Host needs (it logs in as
//! root with a password or a key). Debian 12, Ubuntu ≥ 22.04 and EL9 ship
//! `PermitRootLogin prohibit-password`; hvseed says otherwise in a drop-in, and reads
//! the effective setting back the way sshd does.

/// The drop-in. sshd takes the first value it reads for a keyword, and Debian's
/// `sshd_config` includes `sshd_config.d/*.conf` on its first lines, in lexical order:
/// the `00-` prefix puts it before drop-ins named in the usual way.
pub const SSHD_DROP_IN: &str = "/etc/ssh/sshd_config.d/00-hvseed-root-login.conf";
pub const SSHD_CONFIG: &str = "/etc/ssh/sshd_config";
pub const SHADOW: &str = "/etc/shadow";

/// Whether root has a password it can log in with, from `/etc/shadow`'s text: a
/// crypt(3) hash, not empty and not locked (`!…`) or disabled (`*`).
pub fn root_has_password(shadow: &str) -> bool {
    shadow.lines().any(|l| {
        let mut f = l.split(':');
        f.next() == Some("root")
            && f.next()
                .is_some_and(|h| !h.is_empty() && !h.starts_with('!') && !h.starts_with('*'))
    })
}

/// The `PermitRootLogin` value hvseed wants: `yes` when root has a password (the
/// inventory's `install.root_password_hash`, set by the installer), else
/// `prohibit-password` (keys only).
pub fn permit_root_login(root_password: bool) -> &'static str {
    if root_password {
        "yes"
    } else {
        "prohibit-password"
    }
}

/// The drop-in's text (the whole file is hvseed's).
pub fn sshd_drop_in(root_password: bool) -> String {
    let how = if root_password {
        "with its password or a key"
    } else {
        "with a key only (root has no password)"
    };
    format!(
        "# Written by hvseed-firstboot: CloudStack adds a KVM host by logging in as root\n\
         # over SSH; root may log in {how}.\n\
         PermitRootLogin {}\n",
        permit_root_login(root_password)
    )
}

/// The drop-in's text where password logins must be allowed explicitly (Ubuntu: the
/// installer's cloud-init writes `PasswordAuthentication` into
/// `sshd_config.d/50-cloud-init.conf` after its `ssh_pwauth`): with a root password,
/// also `PasswordAuthentication yes`, which the `00-` drop-in sets before cloud-init's.
pub fn sshd_drop_in_password(root_password: bool) -> String {
    let mut s = sshd_drop_in(root_password);
    if root_password {
        s.push_str("PasswordAuthentication yes\n");
    }
    s
}

/// One line of an sshd configuration: keyword (lowercase) and its arguments.
pub fn sshd_directive(line: &str) -> Option<(String, Vec<String>)> {
    let t = line.trim();
    if t.is_empty() || t.starts_with('#') {
        return None;
    }
    // `Keyword value` or `Keyword=value`.
    let (k, rest) = match t.find(|c: char| c.is_whitespace() || c == '=') {
        Some(i) => (
            &t[..i],
            t[i..].trim_start_matches(|c: char| c.is_whitespace() || c == '='),
        ),
        None => (t, ""),
    };
    let args = rest
        .split_whitespace()
        .map(|a| a.trim_matches('"').to_string())
        .collect();
    Some((k.to_ascii_lowercase(), args))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_locked_or_empty_root_password_is_no_password() {
        assert!(root_has_password("root:$6$salt$hash:19700:0:99999:7:::\n"));
        assert!(!root_has_password("root:*:19700:0:99999:7:::\n"));
        assert!(!root_has_password("root:!$6$x$y:19700:0:99999:7:::\n"));
        assert!(!root_has_password("root::19700:0:99999:7:::\n"));
        assert!(!root_has_password("daemon:$6$a$b:1::::::\n"));
    }

    #[test]
    fn directives_in_both_spellings() {
        assert_eq!(
            sshd_directive("  PermitRootLogin=yes"),
            Some(("permitrootlogin".into(), vec!["yes".into()]))
        );
        assert_eq!(
            sshd_directive("Include /etc/ssh/sshd_config.d/*.conf"),
            Some((
                "include".into(),
                vec!["/etc/ssh/sshd_config.d/*.conf".into()]
            ))
        );
        assert_eq!(sshd_directive("#PermitRootLogin prohibit-password"), None);
    }
}
