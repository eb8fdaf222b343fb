//! The ufw rules file checked by ufw itself: ufw (0.36 from Debian here; 12.04 has
//! 0.31, same tuple format) must read back every rule the agent wrote, and `ufw allow`
//! must write exactly the same lines for the same rules.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn ufw() -> Option<PathBuf> {
    for p in ["/usr/sbin/ufw", "/sbin/ufw"] {
        if Path::new(p).exists() {
            return Some(p.into());
        }
    }
    let msg =
        "MISSING TOOL: `ufw` (Debian package `ufw`) is not installed; run scripts/setup.sh test";
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg}");
    }
    eprintln!("\n!!!!!!!! {msg}: THIS TEST DID NOT RUN !!!!!!!!\n");
    None
}

/// A ufw data dir (`--datadir`) holding `user_rules` as ufw 0.36 expects it
/// (etc/ufw/user.rules) plus ufw's stock files. ufw.conf says ENABLED=no, so ufw only
/// edits files and never touches this machine's firewall.
fn datadir(dir: &Path, os: &str, user_rules: &str) -> PathBuf {
    let d = dir.to_path_buf();
    fs::create_dir_all(d.join("etc/ufw/applications.d")).unwrap();
    fs::create_dir_all(d.join("etc/default")).unwrap();
    fs::create_dir_all(d.join("lib/ufw")).unwrap();
    for f in fs::read_dir("/usr/share/ufw/iptables").unwrap() {
        let f = f.unwrap();
        fs::copy(f.path(), d.join("etc/ufw").join(f.file_name())).unwrap();
    }
    let fixture = repo_root().join("tests/fixtures/roots").join(os);
    fs::copy(fixture.join("etc/ufw/ufw.conf"), d.join("etc/ufw/ufw.conf")).unwrap();
    fs::copy(fixture.join("etc/default/ufw"), d.join("etc/default/ufw")).unwrap();
    fs::write(d.join("etc/ufw/user.rules"), user_rules).unwrap();
    d
}

fn rule_lines(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut v = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if l.starts_with("### tuple ###") {
            v.push(l.to_string());
            v.push(lines[i + 1].to_string());
        }
    }
    v
}

/// Where `os` keeps ufw's user rules, and the ports its hosts open.
fn layout(os: &str) -> (&'static str, &'static [&'static str]) {
    match os {
        "ubuntu1204" => (
            "/lib/ufw/user.rules",
            &["22", "1798", "16509", "5900:6100", "49152:49216"],
        ),
        _ => (
            "/etc/ufw/user.rules",
            &["22", "1798", "16509", "16514", "5900:6100", "49152:49216"],
        ),
    }
}

/// `ufw --datadir=D` under a 30 s `timeout`: ufw working on the files in `d` only.
fn ufw_in(ufw: &Path, d: &Path) -> Command {
    let mut c = Command::new("timeout");
    c.arg("30")
        .arg(ufw)
        .arg(format!("--datadir={}", d.display()));
    c
}

/// The agent's offline step on `os`'s fixture root (ufw's stock files) with a plan
/// that opens the hosts' ports to `sources`: (tempdir, root).
fn applied(os: &str, sources: &[&str]) -> (tempfile::TempDir, PathBuf) {
    let (tmp, root) = fixture_root(os);
    let plan = write_plan(tmp.path(), &plan_json(os, "linux-bridge", sources));
    run_ok(
        agent()
            .arg("apply")
            .arg("--plan")
            .arg(&plan)
            .arg("--root")
            .arg(&root),
    );
    (tmp, root)
}

fn case(os: &str, sources: &[&str]) {
    let Some(ufw) = ufw() else { return };
    let (rules_path, ports) = layout(os);
    let (tmp, root) = applied(os, sources);
    let ours = read(&root, rules_path);

    // 1. ufw reads them back.
    let d = datadir(&tmp.path().join("ours"), os, &ours);
    let shown = run_ok(ufw_in(&ufw, &d).args(["show", "added"]));
    let srcs: Vec<&str> = if sources.is_empty() {
        vec!["any"]
    } else {
        sources.to_vec()
    };
    let mut want = Vec::new();
    for port in ports {
        for s in &srcs {
            want.push(if *s == "any" {
                format!("ufw allow {port}/tcp")
            } else {
                format!("ufw allow from {s} to any port {port} proto tcp")
            });
        }
    }
    let got: Vec<&str> = shown.lines().filter(|l| l.starts_with("ufw ")).collect();
    assert_eq!(got, want, "ufw show added:\n{shown}");

    // 2. ufw writes the same lines for the same rules, starting from the stock file.
    let stock = read(
        &repo_root().join("tests/fixtures/roots").join(os),
        rules_path,
    );
    let d2 = datadir(&tmp.path().join("theirs"), os, &stock);
    for port in ports {
        for s in &srcs {
            run_ok(ufw_in(&ufw, &d2).args([
                "allow", "from", s, "to", "any", "port", *port, "proto", "tcp",
            ]));
        }
    }
    let theirs = fs::read_to_string(d2.join("etc/ufw/user.rules")).unwrap();
    assert_eq!(rule_lines(&ours), rule_lines(&theirs));
}

#[test]
fn ufw_reads_back_the_rules_open_to_any() {
    case("ubuntu1204", &[]);
}

#[test]
fn ufw_reads_back_the_rules_restricted_to_sources() {
    case("ubuntu1204", &["192.168.42.0/24", "10.1.0.0/16"]);
}

/// Debian 12's stock user.rules (ufw 0.36's template, no `### END RULES ###` yet) and
/// its ports with libvirt's TLS port.
#[test]
fn ufw_reads_back_the_debian12_rules_open_to_any() {
    case("debian12", &[]);
}

#[test]
fn ufw_reads_back_the_debian12_rules_restricted_to_sources() {
    case("debian12", &["192.168.42.0/24"]);
}

/// Ubuntu 22.04 and 24.04 (ufw 0.36.1 and 0.36.2) keep the same files as Debian 12.
#[test]
fn ufw_reads_back_the_ubuntu2204_and_2404_rules() {
    case("ubuntu2204", &[]);
    case("ubuntu2404", &["192.168.42.0/24", "10.1.0.0/16"]);
}

/// The agent writes Debian 12's rules files whole, as ufw 0.36 itself writes them:
/// ufw rewriting them (`ufw logging low`, which writes both files from the rules it
/// read, as `ufw enable` does) leaves them byte for byte as they were.
fn debian12_files_are_ufws_own(sources: &[&str]) {
    let Some(ufw) = ufw() else { return };
    let (tmp, root) = applied("debian12", sources);
    let ours4 = read(&root, "/etc/ufw/user.rules");
    let ours6 = read(&root, "/etc/ufw/user6.rules");
    let d = datadir(&tmp.path().join("d"), "debian12", &ours4);
    fs::write(d.join("etc/ufw/user6.rules"), &ours6).unwrap();
    // The forward policy the agent set decides which directions ufw logs.
    fs::copy(root.join("etc/default/ufw"), d.join("etc/default/ufw")).unwrap();
    run_ok(ufw_in(&ufw, &d).args(["logging", "low"]));
    assert_eq!(
        fs::read_to_string(d.join("etc/ufw/user.rules")).unwrap(),
        ours4,
        "ufw rewrote user.rules"
    );
    assert_eq!(
        fs::read_to_string(d.join("etc/ufw/user6.rules")).unwrap(),
        ours6,
        "ufw rewrote user6.rules"
    );
    assert!(ours4.contains("### LOGGING ###\n-A ufw-after-logging-input"));
}

#[test]
fn debian12_rules_files_are_what_ufw_writes_open_to_any() {
    debian12_files_are_ufws_own(&[]);
}

#[test]
fn debian12_rules_files_are_what_ufw_writes_restricted_to_sources() {
    debian12_files_are_ufws_own(&["192.168.42.0/24", "10.1.0.0/16"]);
}

/// On Debian 12 the agent loads its firewall with `ENABLED=yes` and ufw's boot-time
/// loader (`ufw-init start`) instead of `ufw --force enable` (Python, seconds on
/// a slow host). With the agent's files over this machine's /etc/ufw (ufw 0.36, as
/// Debian 12's) in a private mount and network namespace, both load the same IPv4 and
/// IPv6 rule sets, `iptables-save` for `iptables-save`.
#[test]
fn debian12_ufw_init_loads_what_ufw_enable_loads() {
    if ufw().is_none() {
        return;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 || !Path::new("/lib/ufw/ufw-init").exists() {
        let msg = "debian12_ufw_init_loads_what_ufw_enable_loads needs root (namespaces) \
                   and /lib/ufw/ufw-init";
        assert!(std::env::var("CI").map_or(true, |v| v != "true"), "{msg}");
        eprintln!("\n!!!!!!!! {msg}: THIS TEST DID NOT RUN !!!!!!!!\n");
        return;
    }
    let (tmp, root) = applied("debian12", &["192.168.42.0/24"]);
    let t = tmp.path();
    let etc = t.join("etc-ufw");
    run_ok(Command::new("cp").arg("-a").arg("/etc/ufw").arg(&etc));
    for f in ["user.rules", "user6.rules", "ufw.conf"] {
        fs::copy(root.join("etc/ufw").join(f), etc.join(f)).unwrap();
        fs::copy(root.join("etc/ufw").join(f), t.join(format!("agent.{f}"))).unwrap();
    }
    fs::copy(root.join("etc/default/ufw"), t.join("default-ufw")).unwrap();
    let script = r#"set -e
t="$1"
norm() { sed -e 's/\[[0-9]*:[0-9]*\]/[0:0]/' -e '/^#/d'; }
mount --bind "$t/etc-ufw" /etc/ufw
mount --bind "$t/default-ufw" /etc/default/ufw
ip link set lo up
ufw --force enable >/dev/null
iptables-save | norm > "$t/enable4"; ip6tables-save | norm > "$t/enable6"
ufw --force disable >/dev/null
iptables-save | norm > "$t/disabled4"
for f in user.rules user6.rules ufw.conf; do cat "$t/agent.$f" > "/etc/ufw/$f"; done
sed 's/^ENABLED=.*/ENABLED=yes/' "$t/agent.ufw.conf" > /etc/ufw/ufw.conf
/lib/ufw/ufw-init start
iptables-save | norm > "$t/init4"; ip6tables-save | norm > "$t/init6"
"#;
    run_ok(
        Command::new("timeout")
            .arg("60")
            .args(["unshare", "--mount", "--net", "--propagation", "private"])
            .args(["sh", "-c", script, "sh"])
            .arg(t),
    );
    let r = |f: &str| fs::read_to_string(t.join(f)).unwrap();
    assert!(
        r("enable4")
            .contains("-A ufw-user-input -p tcp -m tcp --dport 16509 -s 192.168.42.0/24 -j ACCEPT")
            || r("enable4").contains(
                "-A ufw-user-input -s 192.168.42.0/24 -p tcp -m tcp --dport 16509 -j ACCEPT"
            ),
        "{}",
        r("enable4")
    );
    assert!(r("enable4").contains("[UFW BLOCK]"), "{}", r("enable4"));
    assert!(
        !r("disabled4").contains("ufw-user-input"),
        "{}",
        r("disabled4")
    );
    assert_eq!(r("init4"), r("enable4"), "IPv4 rules");
    assert_eq!(r("init6"), r("enable6"), "IPv6 rules");
}
