//! The agent as shipped: a fully static x86-64 binary that runs with no libc at all
//! (CentOS 6.3 has glibc 2.12, Ubuntu 12.04 glibc 2.15; neither matters to it).

mod common;

use std::path::PathBuf;
use std::process::Command;

/// `$HVSEED_FIRSTBOOT`, else the musl release build in cargo's target directory
/// (`$CARGO_TARGET_DIR` or the checkout's `target/`), built here if missing.
fn static_agent() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("HVSEED_FIRSTBOOT") {
        return Some(PathBuf::from(p));
    }
    let root = common::repo_root();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|t| if t.is_absolute() { t } else { root.join(t) })
        .unwrap_or_else(|| root.join("target"));
    let p = target.join("x86_64-unknown-linux-musl/release/hvseed-firstboot");
    if !p.exists() {
        let st = Command::new(env!("CARGO"))
            .args([
                "build",
                "--release",
                "-p",
                "hvseed-firstboot",
                "--target",
                "x86_64-unknown-linux-musl",
            ])
            .current_dir(&root)
            .status()
            .unwrap();
        if !st.success() {
            common::missing(
                "the musl build of hvseed-firstboot failed",
                "rustup target add x86_64-unknown-linux-musl",
            );
            return None;
        }
    }
    Some(p)
}

/// [`static_agent`] for a test that runs it in a chroot, which needs root.
fn static_agent_for_chroot() -> Option<PathBuf> {
    let agent = static_agent()?;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        common::missing("chroot needs root", "run the tests as root");
        return None;
    }
    Some(agent)
}

#[test]
fn it_is_a_static_x86_64_executable_within_4_mib() {
    let Some(agent) = static_agent() else { return };
    let out = Command::new("file").arg("-b").arg(&agent).output();
    let Ok(out) = out else {
        common::missing(
            "`file` (Debian package `file`) is not installed",
            "run scripts/setup.sh test",
        );
        return;
    };
    let desc = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        desc.contains("ELF 64-bit") && desc.contains("x86-64"),
        "{desc}"
    );
    assert!(
        desc.contains("statically linked") || desc.contains("static-pie linked"),
        "not static: {desc}"
    );
    assert!(
        !desc.contains("interpreter"),
        "needs a dynamic loader: {desc}"
    );
    assert!(
        desc.contains(", stripped"),
        "ships with its symbol table: {desc}"
    );
    let size = std::fs::metadata(&agent).unwrap().len();
    assert!(size <= 4 << 20, "{size} bytes is more than 4 MiB");
}

#[test]
fn it_runs_alone_in_an_empty_chroot() {
    let Some(agent) = static_agent_for_chroot() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(&agent, dir.path().join("hvseed-firstboot")).unwrap();
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    let out = common::run_ok(
        Command::new("timeout")
            .args(["20", "chroot"])
            .arg(dir.path())
            .arg("/hvseed-firstboot")
            .arg("--version"),
    );
    assert_eq!(
        out.trim(),
        format!("hvseed-firstboot {}", env!("CARGO_PKG_VERSION"))
    );
}

/// What the kickstart's `%post` does: inside the new system (a chroot with no libc of
/// ours), `/usr/sbin/hvseed-firstboot apply --plan /etc/hvseed/plan.json --root /`.
/// The result must be what an apply from outside with `--root` writes.
#[test]
fn apply_inside_the_chroot_like_post_does() {
    let Some(agent) = static_agent_for_chroot() else {
        return;
    };
    for os in ["centos6", "ubuntu1204", "el9"] {
        let (tmp, inside) = common::fixture_root(os);
        let (_t2, outside) = common::fixture_root(os);
        let plan = common::plan_json(os, "linux-bridge", &["192.168.42.0/24"]);
        for root in [&inside, &outside] {
            std::fs::create_dir_all(root.join("usr/sbin")).unwrap();
            std::fs::copy(&agent, root.join("usr/sbin/hvseed-firstboot")).unwrap();
            std::fs::create_dir_all(root.join("etc/hvseed")).unwrap();
            std::fs::write(root.join("etc/hvseed/plan.json"), plan.to_string()).unwrap();
        }
        let stdout = common::run_ok(
            Command::new("timeout")
                .args(["30", "chroot"])
                .arg(&inside)
                .args([
                    "/usr/sbin/hvseed-firstboot",
                    "apply",
                    "--plan",
                    "/etc/hvseed/plan.json",
                    "--root",
                    "/",
                ]),
        );
        assert!(
            stdout.contains("changed /etc/libvirt/libvirtd.conf"),
            "{stdout}"
        );
        let plan_path = tmp.path().join("plan.json");
        std::fs::write(&plan_path, plan.to_string()).unwrap();
        common::run_ok(
            Command::new(&agent)
                .args(["apply", "--plan"])
                .arg(&plan_path)
                .arg("--root")
                .arg(&outside),
        );
        assert_eq!(
            common::tree_sum(&inside),
            common::tree_sum(&outside),
            "{os}: apply in a chroot and apply with --root differ"
        );
    }
}
