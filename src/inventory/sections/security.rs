//! `security`: SELinux (the EL targets) and the sources the firewall lets in.

use super::super::model::*;
use super::super::reader::{Checker, Map};
use super::super::rules;
use super::super::schema::*;
use crate::target::Selinux;

pub(in crate::inventory) fn resolve_security(
    c: &mut Checker,
    m: &Map,
    os: Option<Os>,
) -> Option<Security> {
    let s = c.section(m, "security", SECURITY_KEYS);
    let rule = os.map(|os| crate::target::of(os).inventory.selinux);
    let selinux = match (s.get("selinux"), rule) {
        (Some(v), Some(Selinux::Refused(why))) => {
            c.error(v, "security.selinux", why);
            None
        }
        (Some(v), Some(Selinux::PermissiveOnly(why)))
            if v.scalar_text().as_deref() == Some("disabled") =>
        {
            c.error(v, "security.selinux", why);
            None
        }
        (Some(v), _) => {
            if v.scalar_text().as_deref() == Some("enforcing") {
                c.error(v, "security.selinux", "CloudStack's KVM agent does not work with SELinux enforcing; use `permissive` or `disabled`");
                None
            } else {
                c.choice(
                    v,
                    "security.selinux",
                    &[
                        ("permissive", SelinuxMode::Permissive),
                        ("disabled", SelinuxMode::Disabled),
                    ],
                )
                .map(Some)
            }
        }
        (None, Some(Selinux::Default(mode))) => Some(Some(mode)),
        (None, Some(Selinux::PermissiveOnly(_))) => Some(Some(SelinuxMode::Permissive)),
        (None, _) => Some(None),
    };
    let firewall_sources = match s.get("firewall_sources") {
        None => Some(List::from([])),
        Some(v) => c.memo(v, (0, 8), |c| {
            let rel = "security.firewall_sources";
            c.parsed_list(v, rel, rules::MAX_FIREWALL_SOURCES, |t| {
                rules::cidr(t).map(Text::from)
            })
            .map(List::from)
        }),
    };
    Some(Security {
        selinux: selinux?,
        firewall_sources: firewall_sources?,
    })
}
