//! The firewall as ufw keeps it: `user.rules` (what `ufw allow` writes; `/lib/ufw/` on
//! precise, `/etc/ufw/` since ufw 0.35) and `/etc/default/ufw`.

use super::{norm, port_sources, PortSource};
use crate::edit::{Lines, Style};
use crate::plan::Plan;

/// ufw's own spelling of one rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UfwRule {
    /// The `### tuple ###` line ufw reads back
    /// (`action proto dport dst sport src direction`).
    pub tuple: String,
    /// The iptables line it loads.
    pub rule: String,
}

/// The rule `ufw allow` writes to open a port (to a source).
pub fn ufw_rule(PortSource { port, source }: PortSource) -> UfwRule {
    let src = source.unwrap_or("0.0.0.0/0");
    let tuple = format!("### tuple ### allow tcp {port} 0.0.0.0/0 any {src} in");
    let dport = if port.contains(':') || port.contains(',') {
        format!("-m multiport --dports {port}")
    } else {
        format!("--dport {port}")
    };
    let rule = match source {
        Some(s) => format!("-A ufw-user-input -p tcp {dport} -s {s} -j ACCEPT"),
        None => format!("-A ufw-user-input -p tcp {dport} -j ACCEPT"),
    };
    UfwRule { tuple, rule }
}

const UFW_USER_RULES: &str = "*filter
:ufw-user-input - [0:0]
:ufw-user-output - [0:0]
:ufw-user-forward - [0:0]
:ufw-user-limit - [0:0]
:ufw-user-limit-accept - [0:0]
### RULES ###

### END RULES ###
-A ufw-user-input -j RETURN
-A ufw-user-output -j RETURN
-A ufw-user-forward -j RETURN
-A ufw-user-limit -m limit --limit 3/minute -j LOG --log-prefix \"[UFW LIMIT]: \"
-A ufw-user-limit -j REJECT
-A ufw-user-limit-accept -j ACCEPT
COMMIT
";

/// ufw's `user.rules`: one tuple + rule pair per port (and source) between
/// `### RULES ###` and `### END RULES ###`, as `ufw allow` would write them. ufw 0.36's
/// stock file (Debian 12: `/usr/share/ufw/iptables/user.rules`, copied by the package)
/// has no `### END RULES ###` until ufw first rewrites it: the marker goes right after
/// `### RULES ###`, where ufw puts it, and the stock rate-limit rules stay below it.
pub fn ufw_user_rules(old: &str, plan: &Plan) -> String {
    let has = |marker: &str| old.lines().any(|x| x.trim() == marker);
    let base = if has("### RULES ###") {
        old
    } else {
        UFW_USER_RULES
    };
    let mut l = Lines::parse(base);
    if !l.lines.iter().any(|x| x.trim() == "### END RULES ###") {
        let rules = l
            .lines
            .iter()
            .position(|x| x.trim() == "### RULES ###")
            .unwrap_or(0);
        l.lines.splice(
            rules + 1..rules + 1,
            [String::new(), "### END RULES ###".into()],
        );
    }
    let present: Vec<String> = l.lines.iter().map(|x| norm(x)).collect();
    let mut at = l
        .lines
        .iter()
        .position(|x| x.trim() == "### END RULES ###")
        .unwrap();
    for ps in port_sources(plan) {
        let UfwRule { tuple, rule } = ufw_rule(ps);
        if present.contains(&tuple) {
            continue;
        }
        for x in [tuple, rule, String::new()] {
            l.lines.insert(at, x);
            at += 1;
        }
    }
    l.text()
}

/// precise `/etc/default/ufw`: once ufw is enabled, its default FORWARD policy (DROP)
/// would drop bridged guest traffic — the same reason the FORWARD REJECT goes on el6.
pub fn default_ufw(old: &str) -> String {
    let mut l = Lines::parse(old);
    l.set(Style::Tight, "DEFAULT_FORWARD_POLICY", "\"ACCEPT\"");
    l.text()
}
