//! `install`: where the system comes from, its locale and keys, the disk to wipe, extra
//! packages, kernel arguments and repositories.

use std::collections::HashMap;

use super::super::diagnostics::path;
use super::super::model::*;
use super::super::reader::{Checker, Map};
use super::super::rules;
use super::super::schema::*;
use super::super::yaml::{Node, Value};

pub(in crate::inventory) fn resolve_install(
    c: &mut Checker,
    m: &Map,
    os: Option<Os>,
) -> Option<Install> {
    let s = c.section(m, "install", INSTALL_KEYS);
    let rules_of = os.map(|os| &crate::target::of(os).inventory);
    let source = match s.get("source") {
        None => Some(InstallSource::Cdrom),
        Some(v) => c.memo(v, (0, 4), |c| {
            let t = c.text(v, "install.source")?;
            if &*t == "cdrom" {
                return Some(InstallSource::Cdrom);
            }
            match rules::url(&t) {
                Ok(()) => Some(InstallSource::Url(t)),
                Err(e) => {
                    c.error(
                        v,
                        "install.source",
                        format!("must be `cdrom` or an http(s) URL of the distribution tree: {e}"),
                    );
                    None
                }
            }
        }),
    };
    // A target whose CD cannot install it (a netinst CD) wants a mirror.
    let source = match (source, rules_of.and_then(|r| r.cdrom_refused)) {
        (Some(InstallSource::Cdrom), Some(why)) => {
            match s.get("source") {
                Some(v) => c.error(v, "install.source", why),
                None => {
                    c.required(&s, "source");
                }
            }
            None
        }
        (source, _) => source,
    };
    let text_or = |c: &mut Checker,
                   key: &str,
                   default: &str,
                   rule: fn(&str) -> Result<(), String>|
     -> Option<Text> {
        match s.get(key) {
            None => Some(default.into()),
            Some(v) => c.checked(v, &s.child(key), rule),
        }
    };
    let locale = text_or(c, "locale", "en_US.UTF-8", rules::locale);
    let keyboard = text_or(c, "keyboard", "us", rules::keyboard).and_then(|k| {
        // A keyboard the target's installer does not take (subiquity: XKB layouts only).
        let why = rules_of
            .and_then(|r| r.keyboard_refused)
            .and_then(|f| f(&k));
        match (why, s.get("keyboard")) {
            (Some(why), Some(v)) => {
                c.error(v, &s.child("keyboard"), why);
                None
            }
            _ => Some(k),
        }
    });
    let timezone = text_or(c, "timezone", "Etc/UTC", rules::timezone);
    let root_password_hash = c
        .required(&s, "root_password_hash")
        .and_then(|v| c.checked(v, "install.root_password_hash", rules::password_hash));
    let disk = c
        .required(&s, "disk")
        .and_then(|v| c.checked(v, "install.disk", rules::disk));
    let list_or_empty = |c: &mut Checker,
                         key: &str,
                         rule: fn(&str) -> Result<(), String>,
                         max: usize|
     -> Option<List<Text>> {
        match s.get(key) {
            None => Some(List::from([])),
            Some(v) => c.checked_list(v, &s.child(key), rule, max),
        }
    };
    let ssh_authorized_keys = list_or_empty(
        c,
        "ssh_authorized_keys",
        rules::ssh_key,
        rules::MAX_SSH_KEYS,
    );
    let extra_packages = list_or_empty(c, "extra_packages", rules::package, rules::MAX_PACKAGES);
    let kernel_args = match s.get("kernel_args") {
        None => Some(List::from([])),
        Some(v) => c
            .memo(v, (0, 5), |c| resolve_kernel_args(c, v))
            .and_then(|args| {
                // Arguments the target's installer takes for itself or would swallow.
                let Some(refused) = rules_of.and_then(|r| r.kernel_arg_refused) else {
                    return Some(args);
                };
                let mut ok = true;
                if let Value::Seq(items) = &v.value {
                    for (i, (item, arg)) in items.iter().zip(args.iter()).enumerate() {
                        if let Some(why) = refused(arg) {
                            c.error(item, &format!("install.kernel_args[{i}]"), why);
                            ok = false;
                        }
                    }
                }
                ok.then_some(args)
            }),
    };
    let extra_repositories = match s.get("extra_repositories") {
        None => Some(List::from([])),
        Some(v) => match rules_of.and_then(|r| r.extra_repositories_refused) {
            Some(why) if !matches!(&v.value, Value::Seq(items) if items.is_empty()) => {
                c.error(v, "install.extra_repositories", why);
                None
            }
            _ => c.memo(v, (0, 6), |c| resolve_repositories(c, v)),
        },
    };
    Some(Install {
        source: source?,
        locale: locale?,
        keyboard: keyboard?,
        timezone: timezone?,
        root_password_hash: root_password_hash?,
        ssh_authorized_keys: ssh_authorized_keys?,
        disk: disk?,
        extra_packages: extra_packages?,
        kernel_args: kernel_args?,
        extra_repositories: extra_repositories?,
    })
}

/// `install.kernel_args`: each checked by the one kernel-argument rule, all of them
/// within [`MAX_KERNEL_ARGS_BYTES`].
pub(in crate::inventory) fn resolve_kernel_args(
    c: &mut Checker,
    v: &Node,
) -> Option<List<KernelArg>> {
    let rel = "install.kernel_args";
    let args = c.parsed_list(v, rel, MAX_KERNEL_ARGS_BYTES / 2, KernelArg::new)?;
    let total: usize = args.iter().map(|a| a.len() + 1).sum();
    if total > MAX_KERNEL_ARGS_BYTES {
        c.error(
            v,
            rel,
            format!("the arguments take {total} bytes of the kernel command line; at most {MAX_KERNEL_ARGS_BYTES} are left for them (the kernel reads 2048, the installer's own arguments need the rest)"),
        );
        return None;
    }
    if let Some(i) = split_console_arg(&args) {
        if let Value::Seq(items) = &v.value {
            c.error(
                &items[i],
                &format!("{rel}[{i}]"),
                format!(
                    "`{}` looks like the rest of `{}`, split by the comma of a YAML flow list; quote the whole argument: \"{},{}\"",
                    args[i], args[i - 1], args[i - 1], args[i]
                ),
            );
        }
        return None;
    }
    Some(args.into())
}

/// `install.extra_repositories`: `{ name, url }` mappings with unique names.
pub(in crate::inventory) fn resolve_repositories(
    c: &mut Checker,
    v: &Node,
) -> Option<List<Repository>> {
    let rel = "install.extra_repositories";
    let items = c.items(v, rel, rules::MAX_REPOSITORIES)?;
    let mut ok = true;
    let mut out = Vec::with_capacity(items.len());
    let mut names: HashMap<Text, String> = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        let irel = format!("{rel}[{i}]");
        let r = c.map(item, &irel, REPO_KEYS);
        if !matches!(item.value, Value::Map(_)) {
            ok = false;
            continue;
        }
        let name = match r.get("name") {
            None => {
                c.error(
                    item,
                    &irel,
                    "missing `name` (a repository id such as `openvswitch`)",
                );
                None
            }
            Some(nv) => c
                .checked(nv, &r.child("name"), rules::repo_name)
                .and_then(|name| {
                    let key = path(nv.origin, &r.child("name"));
                    if let Some(first) = names.get(&name) {
                        c.error(
                            nv,
                            &r.child("name"),
                            format!(
                                "duplicate of {first} (`{name}`); repository names must be unique"
                            ),
                        );
                        None
                    } else {
                        names.insert(name.clone(), key);
                        Some(name)
                    }
                }),
        };
        let url = match r.get("url") {
            None => {
                c.error(
                    item,
                    &irel,
                    "missing `url` (the http(s) URL of the repository)",
                );
                None
            }
            Some(uv) => c.checked(uv, &r.child("url"), rules::url),
        };
        match (name, url) {
            (Some(name), Some(url)) => out.push(Repository { name, url }),
            _ => ok = false,
        }
    }
    ok.then(|| out.into())
}

/// Index of a kernel argument like `115200n8` right after a `console=…` one: the two
/// halves of `console=ttyS0,115200n8` written unquoted in a flow list.
fn split_console_arg(args: &[KernelArg]) -> Option<usize> {
    (1..args.len()).find(|&i| {
        args[i - 1].starts_with("console=")
            && !args[i].contains('=')
            && args[i].starts_with(|c: char| c.is_ascii_digit())
    })
}
