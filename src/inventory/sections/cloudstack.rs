//! `cloudstack`: the version, its package repository (with, for the targets that take
//! them from the inventory, the apt suite and how apt trusts it) and the management
//! server.

use super::super::model::*;
use super::super::reader::{Checker, Map};
use super::super::rules;
use super::super::schema::*;
use super::super::yaml::Value;

pub(in crate::inventory) fn resolve_cloudstack(
    c: &mut Checker,
    m: &Map,
    os: Option<Os>,
) -> Option<CloudStack> {
    let s = c.section(m, "cloudstack", CLOUDSTACK_KEYS);
    let target = os.map(crate::target::of);
    let version = c.required(&s, "version").and_then(|v| {
        let t = c.checked(v, "cloudstack.version", rules::cloudstack_version)?;
        let min = target.and_then(|t| t.inventory.min_cloudstack.map(|m| (t, m)));
        if let Some((target, min)) = min {
            let have = rules::cloudstack_major_minor(&t).unwrap_or((0, 0));
            if have < min.version {
                let (major, minor) = min.version;
                c.error(
                    v,
                    "cloudstack.version",
                    format!(
                        "CloudStack {} does not support {} hosts; `os: {}` needs {major}.{minor} or later ({}): write e.g. `version: \"{major}.{minor}\"`",
                        rules::shown(&t),
                        target.title,
                        target.os,
                        min.source
                    ),
                );
                return None;
            }
        }
        Some(t)
    });
    let repository = c
        .required(&s, "repository")
        .and_then(|v| c.checked(v, "cloudstack.repository", rules::url));
    let management_server = c
        .required(&s, "management_server")
        .and_then(|v| c.checked(v, "cloudstack.management_server", rules::ipv4_or_fqdn));
    let apt = match target.map(|t| (t, t.inventory.cloudstack_apt)) {
        // The `os` is unknown: its own finding says so; the keys are not read.
        None => Some(None),
        Some((t, None)) => {
            for key in ["suite", "key", "unauthenticated"] {
                if let Some(n) = s.key_node(key) {
                    c.error(
                        n,
                        &s.child(key),
                        format!(
                            "`cloudstack.{key}` is not a setting of `os: {}` (its install files name the repository's suite themselves); remove it",
                            t.os
                        ),
                    );
                }
            }
            Some(None)
        }
        Some((t, Some(rules_apt))) => {
            resolve_apt(c, &s, rules_apt, t.inventory.apt_key_url_refused).map(Some)
        }
    };
    Some(CloudStack {
        version: version?,
        repository: repository?,
        management_server: management_server?,
        apt: apt?,
    })
}

/// `suite`, and exactly one of `key` and `unauthenticated: true`.
fn resolve_apt(
    c: &mut Checker,
    s: &Map,
    apt: crate::target::CloudstackApt,
    key_url_refused: Option<&'static str>,
) -> Option<AptRepository> {
    let suite = match s.get("suite") {
        None => Some(Text::from(apt.default_suite)),
        Some(v) => c.checked(v, "cloudstack.suite", rules::apt_suite),
    };
    let unauthenticated = match s.get("unauthenticated") {
        None => Some(false),
        Some(v) => match v.value {
            Value::Bool(b) => Some(b),
            _ => {
                c.error(
                    v,
                    "cloudstack.unauthenticated",
                    format!("expected true or false, found {}", v.kind()),
                );
                None
            }
        },
    };
    let key = s
        .get("key")
        .map(|v| (v, c.checked(v, "cloudstack.key", rules::apt_key)));
    let trust = match (key, unauthenticated?) {
        (Some((v, _)), true) => {
            c.error(
                v,
                "cloudstack.key",
                "a signing key and `unauthenticated: true` contradict each other; keep the key and remove `unauthenticated`",
            );
            None
        }
        (Some((v, k)), false) => {
            let k = k?;
            if rules::is_inline_key(&k) {
                Some(AptTrust::KeyInline(k))
            } else if let Some(why) = key_url_refused {
                c.error(v, "cloudstack.key", why);
                None
            } else {
                Some(AptTrust::KeyUrl(k))
            }
        }
        (None, true) => Some(AptTrust::Unauthenticated),
        (None, false) => {
            // Without a key d-i's apt-setup leaves the repository commented out and
            // cloudstack-agent cannot be installed: the key (or the explicit
            // choice to go without) is required.
            c.required(s, "key");
            None
        }
    };
    Some(AptRepository {
        suite: suite?,
        trust: trust?,
    })
}
