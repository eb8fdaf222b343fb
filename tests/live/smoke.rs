//! The harness's own tests: the tagger moves 802.1Q headers and nothing else; a
//! rendered preseed's late_command runs against a bookworm root (the Debian 12 hosts'
//! own, [`super::install::host_root`]) through d-i's own tools. That a guest answers on
//! its tagged VLAN and untagged through the tagger, seen from the namespace only, is
//! checked by the Debian 12 hosts' boots (`debian12.rs`).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::di::{self, run_preseed, Preseed};
use super::image;
use super::net::{tag, untag, Netns};
use crate::util::{self, KillOnDrop};

#[test]
fn tagger_moves_the_vlan_header_and_nothing_else() {
    let dst = [0xffu8; 6];
    let src = [0x52u8, 0x54, 0, 0x12, 0x34, 0x56];
    let mut plain = Vec::new();
    plain.extend_from_slice(&dst);
    plain.extend_from_slice(&src);
    plain.extend_from_slice(&[0x08, 0x06]); // ARP
    plain.extend_from_slice(&[7u8; 28]);
    let tagged = tag(&plain, Some(100));
    assert_eq!(&tagged[12..16], &[0x81, 0x00, 0x00, 0x64]);
    assert_eq!(&tagged[..12], &plain[..12]);
    assert_eq!(&tagged[16..], &plain[12..]);
    assert_eq!(untag(&tagged), (Some(100), plain.clone()));
    // Priority bits are not part of the VLAN; VID 0 is a priority tag only.
    let mut prio = tagged.clone();
    prio[14] = 0xa0;
    assert_eq!(untag(&prio), (Some(100), plain.clone()));
    prio[14..16].copy_from_slice(&[0xa0, 0x00]);
    assert_eq!(untag(&prio), (None, plain.clone()));
    assert_eq!(untag(&plain), (None, plain.clone()));
    assert_eq!(tag(&plain, None), plain);
    assert_eq!(untag(&tag(&plain, Some(4094))).0, Some(4094));
}

/// Where the Ubuntu 12.04 example's first host finds hvseed's files.
#[derive(Clone, Copy, PartialEq)]
enum Source {
    /// An initrd preseed and `/hvseed/` on the CD at `/cdrom`, as `hvseed iso` makes.
    Cd,
    /// `preseed/url` and files from `hvseed serve` over the tree `hvseed pxe` lays out
    /// (`http/hosts/…`, `http/hvseed-firstboot`), in the test's namespace.
    Http,
}

const SERVE_IP: &str = "10.9.0.1";

/// The first host of `profiles/examples/lab-ubuntu1204.yaml`, rendered (with
/// `--http-base` for [`Source::Http`]), its preseed's commands run by d-i's own tools
/// against a bookworm root: the agent, the plan and root's keys land in /target with
/// their modes, and the agent's offline step ran there (the network configuration it
/// wrote carries the plan's management address).
fn ubuntu1204_late_command(source: Source) {
    if !super::ready("the late_command runner's test") || !di::available() {
        return;
    }
    let Some(agent) = util::agent() else {
        return;
    };
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let work = work.path();
    let fqdn = "kvm21.lab.example.org";
    let base = format!("http://{SERVE_IP}:8080");
    let out = work.join("render");
    let mut render = util::hvseed();
    render
        .arg("render")
        .arg(util::root().join("profiles/examples/lab-ubuntu1204.yaml"))
        .arg("--out")
        .arg(&out);
    if source == Source::Http {
        render.args(["--http-base", &base]);
    }
    let o = util::output_within_secs(&mut render, 120);
    assert!(
        o.status.success(),
        "render: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    // The files as the media carry them: /hvseed/ on the CD, http/ of a PXE tree.
    let files = match source {
        Source::Cd => work.join("cdrom/hvseed"),
        Source::Http => work.join("pxe/http"),
    };
    std::fs::create_dir_all(&files).unwrap();
    image::copy_tree(&out.join("hosts"), &files.join("hosts"));
    std::fs::copy(&agent, files.join("hvseed-firstboot")).unwrap();

    let root = super::install::host_root();
    let target = work.join("target");
    root.copy_to(&target);
    let ns = Netns::new();
    let _serve;
    let preseed_file = out.join(format!("hosts/{fqdn}/preseed.cfg"));
    let preseed_url = format!("{base}/hosts/{fqdn}/preseed.cfg");
    let (preseed, media, netns) = match source {
        Source::Cd => (
            Preseed::Initrd(&preseed_file),
            Some(work.join("cdrom")),
            None,
        ),
        Source::Http => {
            ns.ip(&["addr", "add", &format!("{SERVE_IP}/32"), "dev", "lo"]);
            _serve = KillOnDrop(
                ns.command(env!("CARGO_BIN_EXE_hvseed"))
                    .arg("serve")
                    .arg(work.join("pxe"))
                    .args(["--listen", &format!("{SERVE_IP}:8080")])
                    .env("NO_COLOR", "1")
                    .env_remove("RUST_LOG")
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(std::fs::File::create(work.join("serve.log")).unwrap())
                    .spawn()
                    .unwrap(),
            );
            ns.wait_tcp(
                format!("{SERVE_IP}:8080").parse().unwrap(),
                Duration::from_secs(30),
            )
            .unwrap();
            (Preseed::Url(&preseed_url), None, Some(&ns))
        }
    };
    let start = Instant::now();
    let run = run_preseed(preseed, &target, media.as_deref(), netns, &work.join("di"));
    eprintln!("live: late_command run in {:.1?}", start.elapsed());
    let describe = || {
        let serve = std::fs::read_to_string(work.join("serve.log")).unwrap_or_default();
        format!("{}\n---- hvseed serve ----\n{serve}", run.describe())
    };
    assert!(run.status.success(), "{}", describe());
    for q in ["preseed/early_command", "preseed/late_command"] {
        assert!(
            run.output.contains(&format!("hvseed-di: {q} exited 0")),
            "{}",
            describe()
        );
    }
    assert!(
        run.console.contains(&format!("hvseed: installing {fqdn}")),
        "{}",
        describe()
    );
    assert!(
        run.console.contains(&format!(
            "hvseed: {fqdn}: handed over to the first-boot agent"
        )),
        "{}",
        describe()
    );
    let same = |in_target: &str, source: &Path, mode: u32| {
        use std::os::unix::fs::PermissionsExt;
        let p = target.join(in_target);
        assert_eq!(
            std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}\n{}", p.display(), describe())),
            std::fs::read(source).unwrap(),
            "{in_target}"
        );
        let m = std::fs::metadata(&p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(m, mode, "mode of {in_target}: {m:o}");
    };
    let host = files.join("hosts").join(fqdn);
    same("usr/sbin/hvseed-firstboot", &agent, 0o755);
    same("etc/hvseed/plan.json", &host.join("plan.json"), 0o600);
    same(
        "root/.ssh/authorized_keys",
        &host.join("authorized_keys"),
        0o600,
    );
    if source == Source::Http {
        // d-i fetched the preseed itself, and the late script the rest, over HTTP.
        let log = std::fs::read_to_string(work.join("serve.log")).unwrap();
        for path in [
            format!("/hosts/{fqdn}/preseed.cfg"),
            "/hvseed-firstboot".into(),
            format!("/hosts/{fqdn}/plan.json"),
        ] {
            assert!(
                log.contains(&format!("GET {path:?} 200")),
                "{path}: {}",
                describe()
            );
        }
    }
    // The agent's offline step: an address of the plan is in the network configuration
    // it wrote into /target (not in the root as mmdebstrap left it).
    let plan_text = std::fs::read_to_string(host.join("plan.json")).unwrap();
    let written =
        std::fs::read_to_string(target.join("etc/network/interfaces")).unwrap_or_default();
    let before =
        std::fs::read_to_string(root.tree.join("etc/network/interfaces")).unwrap_or_default();
    assert_ne!(
        written, before,
        "the agent did not write /etc/network/interfaces"
    );
    let ip = written
        .lines()
        .filter_map(|l| l.trim().strip_prefix("address "))
        .map(|a| a.split('/').next().unwrap().to_owned())
        .find(|a| plan_text.contains(&format!("\"{a}")));
    assert!(
        ip.is_some(),
        "no address of the plan in /etc/network/interfaces:\n{written}"
    );
    // The cached root is untouched.
    assert!(!root.tree.join("usr/sbin/hvseed-firstboot").exists());
}

#[test]
fn live_ubuntu1204_late_command_from_the_cd_lands_the_agent_and_plan_in_target() {
    ubuntu1204_late_command(Source::Cd);
}

#[test]
fn live_ubuntu1204_late_command_over_http_lands_the_agent_and_plan_in_target() {
    ubuntu1204_late_command(Source::Http);
}

/// A preseed written here: its late_command uses d-i's `in-target`, which runs the
/// command chrooted into /target with /proc mounted there (the package database it
/// reads is the root's, checked against `dpkg-query --admindir` from outside), and
/// leaves no policy-rc.d or mounts behind; a failing late_command is seen as failed.
#[test]
fn live_in_target_runs_in_the_root_and_a_failure_is_seen() {
    if !super::ready("the late_command runner's test") || !di::available() {
        return;
    }
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let root = super::install::host_root();
    let target = work.path().join("target");
    root.copy_to(&target);
    let preseed = work.path().join("preseed.cfg");
    std::fs::write(
        &preseed,
        "d-i debian-installer/locale string en_US.UTF-8\n\
         d-i preseed/late_command string in-target sh -c 'dpkg-query -W -f=\"\\${Version}\" openssh-server > /root/sshd-version; \
         test -r /proc/1/status && test -e /usr/sbin/policy-rc.d && echo ok > /root/chrooted'; \
         echo late-done > /dev/console\n",
    )
    .unwrap();
    let run = run_preseed(
        Preseed::Initrd(&preseed),
        &target,
        None,
        None,
        &work.path().join("di"),
    );
    assert!(run.status.success(), "{}", run.describe());
    assert!(
        run.output
            .contains("hvseed-di: preseed/early_command is empty"),
        "{}",
        run.describe()
    );
    assert!(run.console.contains("late-done"), "{}", run.describe());
    let expected = Command::new("dpkg-query")
        .arg(format!(
            "--admindir={}",
            target.join("var/lib/dpkg").display()
        ))
        .args(["-W", "-f=${Version}", "openssh-server"])
        .output()
        .unwrap();
    assert!(expected.status.success());
    assert_eq!(
        std::fs::read(target.join("root/sshd-version")).unwrap(),
        expected.stdout,
        "{}",
        run.describe()
    );
    assert_eq!(
        std::fs::read_to_string(target.join("root/chrooted")).unwrap(),
        "ok\n"
    );
    assert!(
        !target.join("usr/sbin/policy-rc.d").exists(),
        "in-target left policy-rc.d"
    );
    assert!(
        target.join("proc").read_dir().unwrap().next().is_none(),
        "/target/proc left mounted"
    );

    let failing = work.path().join("failing.cfg");
    std::fs::write(
        &failing,
        "d-i preseed/late_command string in-target false\n",
    )
    .unwrap();
    let run = run_preseed(
        Preseed::Initrd(&failing),
        &target,
        None,
        None,
        &work.path().join("di2"),
    );
    assert!(!run.status.success(), "{}", run.describe());
    assert!(
        run.output
            .contains("hvseed-di: preseed/late_command exited 1"),
        "{}",
        run.describe()
    );
}
