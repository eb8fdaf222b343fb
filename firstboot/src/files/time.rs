//! Time servers: ntpd's `/etc/ntp.conf` and OpenNTPD's `ntpd.conf`.

use crate::edit::Lines;
use crate::plan::Plan;

/// Replaces the `server`/`servers`/`pool` lines of an ntpd or OpenNTPD configuration
/// with the inventory's servers, at the place of the first one (policy 7). ntpd's
/// local clock pseudo-server (127.127.x.x) is not a time source to replace.
fn replace_servers(old: &str, servers: &[String], render: impl Fn(&str) -> String) -> String {
    if servers.is_empty() {
        return Lines::parse(old).text();
    }
    let l = Lines::parse(old);
    let is_server = |line: &str| {
        let mut w = line.split_whitespace();
        matches!(w.next(), Some("server" | "servers" | "pool"))
            && !w.next().is_some_and(|h| h.starts_with("127.127."))
    };
    let first = l.lines.iter().position(|x| is_server(x));
    let mut out: Vec<String> = Vec::new();
    for (i, line) in l.lines.iter().enumerate() {
        if Some(i) == first {
            out.extend(servers.iter().map(|s| render(s)));
        }
        if !is_server(line) {
            out.push(line.clone());
        }
    }
    if first.is_none() {
        out.extend(servers.iter().map(|s| render(s)));
    }
    Lines { lines: out }.text()
}

/// el6 `/etc/ntp.conf`.
pub fn ntp_conf(old: &str, plan: &Plan) -> String {
    replace_servers(old, &plan.ntp_servers, |s| format!("server {s} iburst"))
}

/// precise `/etc/openntpd/ntpd.conf`.
pub fn openntpd_conf(old: &str, plan: &Plan) -> String {
    replace_servers(old, &plan.ntp_servers, |s| format!("server {s}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::test_plan as plan;

    #[test]
    fn no_ntp_servers_in_the_plan_keeps_the_stock_ones() {
        let old = "servers pool.ntp.org\n";
        assert_eq!(openntpd_conf(old, &plan()), old);
    }
}
