//! `cloudstack`: the version, its package repository and the management server.

use super::super::model::*;
use super::super::reader::{Checker, Map};
use super::super::rules;
use super::super::schema::*;

pub(in crate::inventory) fn resolve_cloudstack(c: &mut Checker, m: &Map) -> Option<CloudStack> {
    let s = c.section(m, "cloudstack", CLOUDSTACK_KEYS);
    let version = c
        .required(&s, "version")
        .and_then(|v| c.checked(v, "cloudstack.version", rules::cloudstack_version));
    let repository = c
        .required(&s, "repository")
        .and_then(|v| c.checked(v, "cloudstack.repository", rules::url));
    let management_server = c
        .required(&s, "management_server")
        .and_then(|v| c.checked(v, "cloudstack.management_server", rules::ipv4_or_fqdn));
    Some(CloudStack {
        version: version?,
        repository: repository?,
        management_server: management_server?,
    })
}
