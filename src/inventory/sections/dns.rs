//! `dns`: the servers (IPv4) and search domains.

use super::super::model::*;
use super::super::reader::{Checker, Map};
use super::super::rules;
use super::super::schema::*;

pub(in crate::inventory) fn resolve_dns(c: &mut Checker, m: &Map) -> Option<Dns> {
    let s = c.section(m, "dns", DNS_KEYS);
    let servers = c.required(&s, "servers").and_then(|v| {
        c.memo(v, (0, 7), |c| {
            let items = c.items(v, "dns.servers", rules::MAX_DNS_SERVERS)?;
            if items.is_empty() {
                c.error(
                    v,
                    "dns.servers",
                    "the list is empty; name at least one DNS server (IPv4)",
                );
                return None;
            }
            let mut out = Vec::new();
            let mut ok = true;
            for (i, item) in items.iter().enumerate() {
                match c.ipv4(item, &format!("dns.servers[{i}]")) {
                    Some(a) => out.push(a),
                    None => ok = false,
                }
            }
            ok.then(|| List::from(out))
        })
    });
    let search = match s.get("search") {
        None => Some(List::from([])),
        Some(v) => c.checked_list(v, "dns.search", rules::domain, rules::MAX_DNS_SEARCH),
    };
    Some(Dns {
        servers: servers?,
        search: search?,
    })
}
