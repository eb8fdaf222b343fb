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
fn datadir(dir: &Path, user_rules: &str) -> PathBuf {
    let d = dir.to_path_buf();
    fs::create_dir_all(d.join("etc/ufw/applications.d")).unwrap();
    fs::create_dir_all(d.join("etc/default")).unwrap();
    fs::create_dir_all(d.join("lib/ufw")).unwrap();
    for f in fs::read_dir("/usr/share/ufw/iptables").unwrap() {
        let f = f.unwrap();
        fs::copy(f.path(), d.join("etc/ufw").join(f.file_name())).unwrap();
    }
    let fixture = repo_root().join("tests/fixtures/roots/ubuntu1204");
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

fn case(sources: &[&str]) {
    let Some(ufw) = ufw() else { return };
    let (tmp, root) = fixture_root("ubuntu1204");
    let plan = write_plan(
        tmp.path(),
        &plan_json("ubuntu1204", "linux-bridge", sources),
    );
    run_ok(
        agent()
            .arg("apply")
            .arg("--plan")
            .arg(&plan)
            .arg("--root")
            .arg(&root),
    );
    let ours = read(&root, "/lib/ufw/user.rules");

    // 1. ufw reads them back.
    let d = datadir(&tmp.path().join("ours"), &ours);
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
    for port in ["22", "1798", "16509", "5900:6100", "49152:49216"] {
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
    let stock =
        fs::read_to_string(repo_root().join("tests/fixtures/roots/ubuntu1204/lib/ufw/user.rules"))
            .unwrap();
    let d2 = datadir(&tmp.path().join("theirs"), &stock);
    for port in ["22", "1798", "16509", "5900:6100", "49152:49216"] {
        for s in &srcs {
            let st = Command::new("timeout")
                .arg("30")
                .arg(&ufw)
                .arg(format!("--datadir={}", d2.display()))
                .args([
                    "allow", "from", s, "to", "any", "port", port, "proto", "tcp",
                ])
                .output()
                .unwrap();
            assert!(
                st.status.success(),
                "{}",
                String::from_utf8_lossy(&st.stderr)
            );
        }
    }
    let theirs = fs::read_to_string(d2.join("etc/ufw/user.rules")).unwrap();
    assert_eq!(rule_lines(&ours), rule_lines(&theirs));
}

#[test]
fn ufw_reads_back_the_rules_open_to_any() {
    case(&[]);
}

#[test]
fn ufw_reads_back_the_rules_restricted_to_sources() {
    case(&["192.168.42.0/24", "10.1.0.0/16"]);
}
