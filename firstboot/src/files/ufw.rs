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

/// The chains ufw 0.36 declares at the top of `user.rules` (`ufw-…`) and `user6.rules`
/// (`ufw6-…`) whenever it writes them (`backend_iptables._write_rules`; the two limit
/// chains because the kernel can rate-limit).
const UFW036_CHAINS: [&str; 16] = [
    "user-input",
    "user-output",
    "user-forward",
    "before-logging-input",
    "before-logging-output",
    "before-logging-forward",
    "user-logging-input",
    "user-logging-output",
    "user-logging-forward",
    "after-logging-input",
    "after-logging-output",
    "after-logging-forward",
    "logging-deny",
    "logging-allow",
    "user-limit",
    "user-limit-accept",
];

/// The default policies (`/etc/default/ufw`) the agent's rules files assume: incoming
/// dropped (Debian's default), outgoing and forwarded accepted (hvseed sets the
/// forward policy, [`default_ufw`]). Blocked: input, output, forward.
pub const UFW036_BLOCKED: [bool; 3] = [true, false, false];

/// ufw 0.36's logging rules for `LOGLEVEL=low` (its default, Debian's `ufw.conf`) with
/// the default policies `blocked` (input, output, forward), as it writes them into the
/// `### LOGGING ###` section of the rules files of chain prefix `p`: a blocked
/// direction's packets are logged (`_get_logging_rules`).
pub fn ufw036_logging_low(p: &str, blocked: [bool; 3]) -> Vec<String> {
    let limit = "-m limit --limit 3/min --limit-burst 10";
    let mut v = Vec::new();
    for (dir, b) in ["input", "output", "forward"].iter().zip(blocked) {
        if b {
            v.push(format!(
                "-A {p}-after-logging-{dir} -j LOG --log-prefix \"[UFW BLOCK] \" {limit}"
            ));
        }
    }
    v.push(format!(
        "-I {p}-logging-deny -m conntrack --ctstate INVALID -j RETURN {limit}"
    ));
    v.push(format!(
        "-A {p}-logging-deny -j LOG --log-prefix \"[UFW BLOCK] \" {limit}"
    ));
    v.push(format!(
        "-A {p}-logging-allow -j LOG --log-prefix \"[UFW ALLOW] \" {limit}"
    ));
    v
}

/// The lines strictly between `begin` and `end`, if `text` has both.
fn section<'a>(text: &'a str, begin: &str, end: &str) -> Option<Vec<&'a str>> {
    let lines: Vec<&str> = text.lines().collect();
    let b = lines.iter().position(|l| l.trim() == begin)?;
    let e = b + lines[b..].iter().position(|l| l.trim() == end)?;
    Some(lines[b + 1..e].to_vec())
}

/// ufw 0.36's (Debian 12) `user.rules` (`v6` false, with hvseed's rules) or
/// `user6.rules` (`v6` true: hvseed's rules are IPv4 only, as before) whole, as ufw
/// itself writes them after `ufw allow` or `ufw enable` (`_write_rules`): every chain
/// declared, each rule's `### tuple ###` line and its iptables lines, the
/// `### LOGGING ###` section for the log level and the `### RATE LIMITING ###` rules.
/// ufw rebuilds these files from their tuples, so the rules already in `old` are kept
/// (tuple and lines), and so are its logging and rate-limiting sections when it has
/// them; a file that has none yet (the package's stock one) gets those of
/// `LOGLEVEL=low`. Written so, `ufw enable` would leave them as they are, and ufw's
/// boot-time loader (`ufw-init`) loads the same rules as `ufw enable` (see
/// `target::ufw::enable_036`).
pub fn ufw036_user_rules(old: &str, plan: &Plan, v6: bool) -> String {
    let p = if v6 { "ufw6" } else { "ufw" };
    // The rules already there: each tuple line with the rule lines after it.
    let mut blocks: Vec<Vec<String>> = Vec::new();
    let mut in_block = false;
    for l in old.lines() {
        if l.starts_with("### tuple ###") {
            blocks.push(vec![l.trim_end().to_string()]);
            in_block = true;
        } else if in_block && !l.trim().is_empty() && !l.starts_with("###") {
            blocks.last_mut().unwrap().push(l.trim_end().to_string());
        } else {
            in_block = false;
        }
    }
    if !v6 {
        for ps in port_sources(plan) {
            let UfwRule { tuple, rule } = ufw_rule(ps);
            if !blocks.iter().any(|b| norm(&b[0]) == tuple) {
                blocks.push(vec![tuple, rule]);
            }
        }
    }
    let logging = section(old, "### LOGGING ###", "### END LOGGING ###")
        .map(|v| v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .unwrap_or_else(|| ufw036_logging_low(p, UFW036_BLOCKED));
    let limiting = section(old, "### RATE LIMITING ###", "### END RATE LIMITING ###")
        .map(|v| v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .unwrap_or_else(|| {
            vec![
                format!("-A {p}-user-limit -m limit --limit 3/minute -j LOG --log-prefix \"[UFW LIMIT BLOCK] \""),
                format!("-A {p}-user-limit -j REJECT"),
                format!("-A {p}-user-limit-accept -j ACCEPT"),
            ]
        });
    let mut out = String::from("*filter\n");
    for c in UFW036_CHAINS {
        out.push_str(&format!(":{p}-{c} - [0:0]\n"));
    }
    out.push_str("### RULES ###\n");
    for b in &blocks {
        out.push('\n');
        for l in b {
            out.push_str(l);
            out.push('\n');
        }
    }
    out.push_str("\n### END RULES ###\n\n### LOGGING ###\n");
    for l in &logging {
        out.push_str(l);
        out.push('\n');
    }
    out.push_str("### END LOGGING ###\n\n### RATE LIMITING ###\n");
    for l in &limiting {
        out.push_str(l);
        out.push('\n');
    }
    out.push_str("### END RATE LIMITING ###\nCOMMIT\n");
    out
}
