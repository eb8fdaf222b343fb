//! The host's name: `/etc/hosts` (every target), `/etc/sysconfig/network` (EL6) and
//! `/etc/hostname` (Debian and Ubuntu: the short name; EL9: the FQDN).

use crate::edit::{Lines, Style};
use crate::plan::Plan;

/// el6 `/etc/sysconfig/network` (policy 8).
pub fn sysconfig_network(old: &str, plan: &Plan) -> String {
    let mut l = Lines::parse(old);
    if l.get("NETWORKING").is_none() {
        l.set(Style::Tight, "NETWORKING", "yes");
    }
    l.set(Style::Tight, "HOSTNAME", &plan.fqdn);
    l.text()
}

/// precise `/etc/hostname`: the short name, as Debian wants it; `hostname --fqdn`
/// finds the FQDN through /etc/hosts.
pub fn etc_hostname(_old: &str, plan: &Plan) -> String {
    format!("{}\n", plan.hostname)
}

/// EL9 `/etc/hostname`: the FQDN, as anaconda writes it there (`hostname` prints it
/// too; `hostname --fqdn` still goes through /etc/hosts).
pub fn etc_hostname_fqdn(_old: &str, plan: &Plan) -> String {
    format!("{}\n", plan.fqdn)
}

/// One address line of `/etc/hosts`, comment left out.
struct HostsEntry {
    addr: String,
    hosts: Vec<String>,
}

/// `/etc/hosts`: `IP FQDN SHORT` (policy 8). Other lines must not name this host: d-i's
/// `127.0.1.1 fqdn short` (or an installer adding the name to `127.0.0.1`) would make
/// `hostname --fqdn` resolve to a loopback address, which CloudStack then reports as
/// the host's IP. The host's names are taken off such lines; a line left with no name
/// is commented out, so `localhost` keeps resolving.
pub fn etc_hosts(old: &str, plan: &Plan) -> String {
    let ip = plan.network.management.ip.to_string();
    let ours = format!("{ip}\t{}\t{}", plan.fqdn, plan.hostname);
    let mut l = Lines::parse(old);
    let names = |line: &str| -> Option<HostsEntry> {
        let body = line.split('#').next().unwrap_or("");
        let mut w = body.split_whitespace();
        let addr = w.next()?.to_string();
        Some(HostsEntry {
            addr,
            hosts: w.map(str::to_string).collect(),
        })
    };
    let mut placed = false;
    let mut i = 0;
    while i < l.lines.len() {
        let Some(HostsEntry { addr, hosts }) = names(&l.lines[i]) else {
            i += 1;
            continue;
        };
        if addr == ip {
            if placed {
                l.lines.remove(i);
                continue;
            }
            l.lines[i] = ours.clone();
            placed = true;
        } else if hosts.iter().any(|h| *h == plan.fqdn || *h == plan.hostname) {
            let kept: Vec<&String> = hosts
                .iter()
                .filter(|h| **h != plan.fqdn && **h != plan.hostname)
                .collect();
            let line = &l.lines[i];
            l.lines[i] = if kept.is_empty() {
                format!("#{line}")
            } else {
                let sep = if line.contains('\t') { "\t" } else { " " };
                let comment = line.find('#').map(|c| format!(" {}", &line[c..]));
                let names: Vec<&str> = kept.iter().map(|h| h.as_str()).collect();
                format!(
                    "{addr}{sep}{}{}",
                    names.join(" "),
                    comment.unwrap_or_default()
                )
            };
        }
        i += 1;
    }
    if !placed {
        let after = l
            .lines
            .iter()
            .rposition(|line| names(line).is_some_and(|e| e.addr.starts_with("127.")));
        match after {
            Some(i) => l.lines.insert(i + 1, ours),
            None => l.lines.insert(0, ours),
        }
    }
    l.text()
}
