//! Time servers: ntpd's `/etc/ntp.conf`, OpenNTPD's `ntpd.conf` and chrony's
//! `chrony.conf`.

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

/// chrony's `chrony.conf` (Debian 12: `/etc/chrony/chrony.conf`): the stock `pool`
/// line gives way to the plan's servers (`iburst`, as Debian's pool line has it); the
/// `sourcedir` lines (DHCP-provided servers, `sources.d`) stay.
pub fn chrony_conf(old: &str, plan: &Plan) -> String {
    replace_servers(old, &plan.ntp_servers, |s| format!("server {s} iburst"))
}

/// The servers a chrony.conf (or ntp.conf) names, in order: the first word after each
/// `server`/`servers`/`pool`/`peer` line's keyword.
pub fn configured_servers(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            match w.next() {
                Some("server" | "servers" | "pool" | "peer") => w.next().map(str::to_string),
                _ => None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::test_plan as plan;

    #[test]
    fn chrony_keeps_its_sourcedirs_and_reads_back_the_servers() {
        let old = "confdir /etc/chrony/conf.d\npool 2.debian.pool.ntp.org iburst\n\
                   sourcedir /run/chrony-dhcp\n";
        let mut p = plan();
        p.ntp_servers = vec!["ntp1.example.org".into(), "10.0.0.1".into()];
        let new = chrony_conf(old, &p);
        assert_eq!(
            new,
            "confdir /etc/chrony/conf.d\nserver ntp1.example.org iburst\n\
             server 10.0.0.1 iburst\nsourcedir /run/chrony-dhcp\n"
        );
        assert_eq!(configured_servers(&new), p.ntp_servers);
        assert_eq!(chrony_conf(&new, &p), new);
    }

    #[test]
    fn no_ntp_servers_in_the_plan_keeps_the_stock_ones() {
        let old = "servers pool.ntp.org\n";
        assert_eq!(openntpd_conf(old, &plan()), old);
    }
}
