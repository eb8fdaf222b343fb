//! OpenSSH's server (Debian 12, EL9 and Ubuntu ≥ 22.04): root may log in over
//! SSH, as CloudStack's Add Host needs.

use std::path::Path;

use crate::apply::{edit_with, Target};
use crate::files::ssh::{
    permit_root_login, root_has_password, sshd_directive, sshd_drop_in, sshd_drop_in_password,
    SHADOW, SSHD_CONFIG, SSHD_DROP_IN,
};
use crate::verify::{Check, Env};

/// The drop-in, `yes` or `prohibit-password` after whether root has a password in
/// /etc/shadow (only read; the password itself is never copied anywhere).
pub fn targets<'p>() -> Vec<Target<'p>> {
    vec![edit_with(SSHD_DROP_IN, SHADOW, 0o644, |_, shadow| {
        sshd_drop_in(shadow.is_some_and(root_has_password))
    })]
}

/// The same drop-in with `PasswordAuthentication yes` when root has a password
/// (Ubuntu, where cloud-init sets it from the installer's `ssh.allow-pw`).
pub fn targets_password<'p>() -> Vec<Target<'p>> {
    vec![edit_with(SSHD_DROP_IN, SHADOW, 0o644, |_, shadow| {
        sshd_drop_in_password(shadow.is_some_and(root_has_password))
    })]
}

/// sshd's effective `PermitRootLogin` (outside `Match` blocks) as sshd reads it:
/// `sshd_config` with its `Include`s expanded in place (a glob's files in lexical
/// order), the first value read wins; OpenSSH's default is `prohibit-password`. Also
/// says which file set it.
pub fn effective_permit_root_login(env: &Env) -> Result<(String, String), String> {
    effective(env, "permitrootlogin", "prohibit-password")
}

/// sshd's effective value of `keyword` (lowercase), read as [`effective_permit_root_login`]
/// reads its own, or OpenSSH's `default`.
pub fn effective(env: &Env, keyword: &str, default: &str) -> Result<(String, String), String> {
    let mut found = None;
    read_sshd(env, SSHD_CONFIG, 0, keyword, &mut found)?;
    Ok(found.unwrap_or_else(|| (default.to_string(), "OpenSSH's default".to_string())))
}

fn read_sshd(
    env: &Env,
    file: &str,
    depth: u32,
    keyword: &str,
    found: &mut Option<(String, String)>,
) -> Result<(), String> {
    if depth > 8 {
        return Err(format!("{file}: Include nested too deeply"));
    }
    let text = crate::bounded::read_to_string(&env.path(file), crate::bounded::EDIT_LIMIT, false)
        .map_err(|e| format!("cannot read {file}: {e}"))?;
    for line in text.lines() {
        if found.is_some() {
            return Ok(());
        }
        let Some((key, args)) = sshd_directive(line) else {
            continue;
        };
        match key.as_str() {
            // What follows applies only to some connections: not root's general right.
            "match" => return Ok(()),
            k if k == keyword => {
                if let Some(v) = args.first() {
                    *found = Some((v.clone(), file.to_string()));
                }
            }
            "include" => {
                for pattern in &args {
                    let pattern = if pattern.starts_with('/') {
                        pattern.clone()
                    } else {
                        format!("/etc/ssh/{pattern}")
                    };
                    for f in glob_files(env, &pattern)? {
                        read_sshd(env, &f, depth + 1, keyword, found)?;
                        if found.is_some() {
                            return Ok(());
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// The files a `dir/prefix*suffix` pattern (or a plain path) names, in lexical order.
fn glob_files(env: &Env, pattern: &str) -> Result<Vec<String>, String> {
    let (dir, name) = pattern.rsplit_once('/').unwrap_or(("", pattern));
    let Some((pre, post)) = name.split_once('*') else {
        return Ok(if env.path(pattern).exists() {
            vec![pattern.to_string()]
        } else {
            vec![]
        });
    };
    let entries = match std::fs::read_dir(env.path(dir)) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(format!("cannot list {dir}: {e}")),
    };
    let mut v: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.len() >= pre.len() + post.len() && n.starts_with(pre) && n.ends_with(post))
        .map(|n| format!("{dir}/{n}"))
        .filter(|p| Path::new(&env.path(p)).is_file())
        .collect();
    v.sort();
    Ok(v)
}

/// Root may log in over SSH: `PermitRootLogin yes`, or `prohibit-password` when root
/// has no password (keys only).
pub const CHECK: Check = Check::new("root-ssh-login", |cx| {
    let (value, from) = effective_permit_root_login(cx.env)?;
    let shadow =
        crate::bounded::read_to_string(&cx.env.path(SHADOW), crate::bounded::EDIT_LIMIT, false)
            .map_err(|e| format!("cannot read {SHADOW}: {e}"))?;
    let password = root_has_password(&shadow);
    let want = permit_root_login(password);
    let keys_ok = matches!(value.as_str(), "prohibit-password" | "without-password");
    match value.as_str() {
        "yes" => Ok(format!("PermitRootLogin yes ({from})")),
        _ if keys_ok && !password => Ok(format!(
            "PermitRootLogin {value} ({from}); root has no password: keys only"
        )),
        _ => Err(format!(
            "PermitRootLogin {value} ({from}) keeps root{} out; CloudStack's Add Host logs \
             in as root: set PermitRootLogin {want} first in sshd's configuration ({SSHD_DROP_IN})",
            if keys_ok { "'s password" } else { "" }
        )),
    }
});

/// With a root password, sshd takes it: `PasswordAuthentication` is effectively `yes`
/// (OpenSSH's default; the installer's cloud-init may have written `no`).
pub const PASSWORD_CHECK: Check = Check::new("root-ssh-password", |cx| {
    let shadow =
        crate::bounded::read_to_string(&cx.env.path(SHADOW), crate::bounded::EDIT_LIMIT, false)
            .map_err(|e| format!("cannot read {SHADOW}: {e}"))?;
    if !root_has_password(&shadow) {
        return Ok("root has no password: keys only".into());
    }
    let (value, from) = effective(cx.env, "passwordauthentication", "yes")?;
    if value.eq_ignore_ascii_case("yes") {
        Ok(format!("PasswordAuthentication yes ({from})"))
    } else {
        Err(format!(
            "PasswordAuthentication {value} ({from}) refuses root's password, which \
             CloudStack's Add Host logs in with: set PasswordAuthentication yes first in \
             sshd's configuration ({SSHD_DROP_IN})"
        ))
    }
});
