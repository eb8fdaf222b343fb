//! The harness's own tests: a guest built from a small package list comes up on a
//! tagged VLAN and untagged on its trunk, seen from the namespace only; a rendered
//! preseed's late_command runs against a bookworm root through d-i's own tools.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::di::{self, run_preseed, Preseed};
use super::guest::{Guest, GuestSpec};
use super::image::{self, Extra, RootSpec};
use super::net::{tag, untag, Netns, Trunk, UNTAGGED};
use crate::util::{self, KillOnDrop};

/// A small host: enough to boot with systemd, bring up a VLAN with ifupdown and answer
/// ssh.
const SMOKE_PACKAGES: &[&str] = &[
    "linux-image-amd64",
    "systemd-sysv",
    "ifupdown",
    "vlan",
    "iproute2",
    "iputils-ping",
    "openssh-server",
];

const MAC: &str = "52:54:00:12:34:56";
const VLAN: u16 = 100;
const GUEST_VLAN_IP: &str = "198.51.100.10";
const NS_VLAN_IP: &str = "198.51.100.1";
const GUEST_UNTAGGED_IP: &str = "192.0.2.10";
const NS_UNTAGGED_IP: &str = "192.0.2.1";

fn smoke_spec() -> RootSpec {
    RootSpec::bookworm(SMOKE_PACKAGES)
}

fn interfaces() -> String {
    format!(
        "# Written by hvseed's live-harness test.\n\
         auto lo\n\
         iface lo inet loopback\n\n\
         auto eth0\n\
         iface eth0 inet static\n    address {GUEST_UNTAGGED_IP}/24\n\n\
         auto eth0.{VLAN}\n\
         iface eth0.{VLAN} inet static\n    address {GUEST_VLAN_IP}/24\n"
    )
}

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

/// Boots the smoke image with its NIC on a trunk; from the namespace the guest answers
/// ping and ssh on VLAN 100 (tap `vlan100`, frames tagged on the trunk) and untagged
/// (tap `untagged`).
#[test]
fn qemu_live_guest_answers_on_its_tagged_vlan_and_untagged() {
    if !super::ready("the live harness's QEMU test") {
        return;
    }
    let total = Instant::now();
    let extras = [
        Extra::new("/etc/network/interfaces", 0o644, interfaces()),
        Extra::new("/etc/hostname", 0o644, "hvseed-smoke\n"),
    ];
    let disk = image::image(&smoke_spec(), &extras);
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let overlay = disk.overlay(work.path());

    let ns = Netns::new();
    let trunk = Trunk::new(&ns, work.path(), &[VLAN]);
    ns.ip(&[
        "addr",
        "add",
        &format!("{NS_VLAN_IP}/24"),
        "dev",
        &format!("vlan{VLAN}"),
    ]);
    ns.ip(&[
        "addr",
        "add",
        &format!("{NS_UNTAGGED_IP}/24"),
        "dev",
        UNTAGGED,
    ]);

    let mut guest = Guest::boot(
        &GuestSpec {
            kernel: &disk.kernel,
            initrd: &disk.initrd,
            disk: &overlay,
            mac: MAC,
            trunk: trunk.socket(),
            append: "",
            memory_mib: 2048,
        },
        work.path(),
    );
    let fail = [
        "Kernel panic",
        "emergency mode",
        "Give root password for maintenance",
    ];
    let limit = Duration::from_secs(300);
    let ssh_vlan: SocketAddr = format!("{GUEST_VLAN_IP}:22").parse().unwrap();
    // The guest's ssh on the VLAN, polled while watching the console for a failed boot.
    let deadline = Instant::now() + limit;
    let (banner, _) = loop {
        if let Err(e) = guest.check(&fail) {
            guest.fail(&e);
        }
        match ns.wait_tcp(ssh_vlan, Duration::from_secs(3)) {
            Ok(r) => break r,
            Err(e) if Instant::now() > deadline => {
                guest.fail(&format!("{e}; trunk: {}", trunk.stats()))
            }
            Err(_) => {}
        }
    };
    let to_ssh = guest.uptime();
    assert!(
        banner.starts_with(b"SSH-2.0-OpenSSH"),
        "port 22 on the VLAN answered {:?}",
        String::from_utf8_lossy(&banner)
    );
    if !ns.ping(GUEST_VLAN_IP) {
        guest.fail(&format!(
            "no ping answer on VLAN {VLAN}; trunk: {}",
            trunk.stats()
        ));
    }
    if !ns.ping(GUEST_UNTAGGED_IP) {
        guest.fail(&format!(
            "no ping answer untagged; trunk: {}",
            trunk.stats()
        ));
    }
    let (banner, _) = ns
        .wait_tcp(
            format!("{GUEST_UNTAGGED_IP}:22").parse().unwrap(),
            Duration::from_secs(20),
        )
        .unwrap_or_else(|e| guest.fail(&e));
    assert!(banner.starts_with(b"SSH-2.0-OpenSSH"));
    // The guest's VLAN frames crossed the trunk tagged with its VID: the tagger
    // untagged them onto the VLAN's tap, and its untagged frames onto the other.
    let stats = trunk.stats();
    assert!(
        trunk.frames_from_guest(&format!("vlan{VLAN}")) > 0,
        "{stats}"
    );
    assert!(trunk.frames_from_guest(UNTAGGED) > 0, "{stats}");
    // Nothing of this reached the host's own network: the addresses are only inside.
    let host = Command::new("ip").args(["-o", "addr"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&host.stdout).contains(NS_VLAN_IP));
    eprintln!(
        "live: power-on to ssh on the VLAN {to_ssh:.1?}; whole test {:.1?}; trunk: {stats}",
        total.elapsed()
    );
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

    let root = image::root(&smoke_spec());
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
    let root = image::root(&smoke_spec());
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
