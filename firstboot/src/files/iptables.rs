//! The firewall as iptables-save text: EL6's `/etc/sysconfig/iptables`, loaded by
//! `iptables-restore`.

use super::{norm, port_sources, PortSource};
use crate::edit::Lines;
use crate::plan::Plan;

/// The iptables-save line that opens a port (to a source).
pub fn iptables_rule(PortSource { port, source }: PortSource) -> String {
    match source {
        Some(s) => format!("-A INPUT -s {s} -p tcp -m tcp --dport {port} -j ACCEPT"),
        None => format!("-A INPUT -p tcp -m tcp --dport {port} -j ACCEPT"),
    }
}

/// el6 `/etc/sysconfig/iptables` (iptables-save format, policy 6): the port rules go
/// before the first INPUT REJECT/DROP of the filter table; the FORWARD REJECT that
/// would reject bridged guest traffic is removed.
pub fn sysconfig_iptables(old: &str, plan: &Plan) -> String {
    let mut l = Lines::parse(old);
    if !l.lines.iter().any(|x| x.trim() == "*filter") {
        if l.lines.last().is_some_and(|x| !x.trim().is_empty()) {
            l.lines.push(String::new());
        }
        for x in [
            "*filter",
            ":INPUT ACCEPT [0:0]",
            ":FORWARD ACCEPT [0:0]",
            ":OUTPUT ACCEPT [0:0]",
            "COMMIT",
        ] {
            l.lines.push(x.to_string());
        }
    }
    let start = l.lines.iter().position(|x| x.trim() == "*filter").unwrap();
    let end = start
        + l.lines[start..]
            .iter()
            .position(|x| x.trim() == "COMMIT")
            .unwrap_or(l.lines.len() - start);
    let mut table: Vec<String> = l.lines[start..end].to_vec();
    table.retain(|x| {
        let w: Vec<&str> = x.split_whitespace().collect();
        !(w.first() == Some(&"-A") && w.get(1) == Some(&"FORWARD") && w.contains(&"REJECT"))
    });
    let present: Vec<String> = table.iter().map(|x| norm(x)).collect();
    let missing: Vec<String> = port_sources(plan)
        .into_iter()
        .map(iptables_rule)
        .filter(|r| !present.contains(r))
        .collect();
    let block = table
        .iter()
        .position(|x| {
            let w: Vec<&str> = x.split_whitespace().collect();
            w.first() == Some(&"-A")
                && w.get(1) == Some(&"INPUT")
                && w.windows(2)
                    .any(|p| p[0] == "-j" && matches!(p[1], "REJECT" | "DROP"))
        })
        .unwrap_or(table.len());
    for (k, r) in missing.into_iter().enumerate() {
        table.insert(block + k, r);
    }
    l.lines.splice(start..end, table);
    l.text()
}
