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

fn case(os: &str, sources: &[&str]) {
    let Some(ufw) = ufw() else { return };
    let (rules_path, ports) = layout(os);
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
    let ours = read(&root, rules_path);

    // 1. ufw reads them back.
    let d = datadir(&tmp.path().join("ours"), os, &ours);
    let out = Command::new("timeout")
        .arg("30")
        .arg(&ufw)
        .arg(format!("--datadir={}", d.display()))
        .args(["show", "added"])
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{shown}{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
            run_ok(
                Command::new("timeout")
                    .arg("30")
                    .arg(&ufw)
                    .arg(format!("--datadir={}", d2.display()))
                    .args([
                        "allow", "from", s, "to", "any", "port", *port, "proto", "tcp",
                    ]),
            );
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
