//! Integration tests for `hvseed vm` that need no real guest: refusals before any guest
//! starts, the KVM probe's deadline and the guest's end on SIGTERM, each against a fake
//! `qemu-system-x86_64` first on PATH that records that it ran and then sleeps. The
//! real boots through `hvseed vm` are the QEMU tests of `iso` and `pxe`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::util::{hvseed, output_within_secs, require_tool, root, KillOnDrop};

/// A directory with a fake QEMU (it appends its pid to `pids` and sleeps) and the PATH
/// that finds it first.
struct FakeQemu {
    dir: tempfile::TempDir,
}

impl FakeQemu {
    fn new() -> FakeQemu {
        FakeQemu::with_console("")
    }

    /// A fake QEMU that writes `console` (shell `printf` format) to its `-serial
    /// file:PATH` before it sleeps.
    fn with_console(console: &str) -> FakeQemu {
        FakeQemu::script(&format!(
            "[ -n \"$log\" ] && printf '{console}' >> \"$log\"\nexec sleep 600\n"
        ))
    }

    /// A fake QEMU behind which a KVM works for the probe and hangs the guest: the
    /// probe guest (its firmware's debug port to `file,id=dbg,path=…`) prints
    /// SeaBIOS's banner there; a guest under `-accel kvm` shows nothing; under TCG it
    /// writes `console` to its serial log.
    fn stalling_under_kvm(console: &str) -> FakeQemu {
        FakeQemu::script(&format!(
            "if [ -n \"$dbg\" ]; then printf 'SeaBIOS (version fake)\\n' >> \"$dbg\"\n\
             elif [ \"$accel\" = tcg ]; then printf '{console}' >> \"$log\"; fi\nexec sleep 600\n"
        ))
    }

    /// A fake QEMU: records its pid, finds its serial log (`$log`), the probe's debug
    /// port file (`$dbg`), its accelerator (`$accel`) and the VLAN trunk's socket
    /// (`$trunk`), then runs `rest`.
    fn script(rest: &str) -> FakeQemu {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let q = bin.join("qemu-system-x86_64");
        std::fs::write(
            &q,
            format!(
                "#!/bin/sh\necho $$ >> {}\nprev=\n\
                 for a; do case $a in file:*) log=${{a#file:}};; file,id=dbg,path=*) dbg=${{a#*path=}};; \
                 stream,*addr.path=*) trunk=${{a#*addr.path=}};; esac; \
                 [ \"$prev\" = -accel ] && accel=$a; prev=$a; done\n{rest}",
                dir.path().join("pids").display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&q, std::fs::Permissions::from_mode(0o755)).unwrap();
        FakeQemu { dir }
    }

    fn path(&self) -> String {
        format!(
            "{}:{}",
            self.dir.path().join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        )
    }

    fn pids(&self) -> Vec<u32> {
        std::fs::read_to_string(self.dir.path().join("pids"))
            .unwrap_or_default()
            .lines()
            .map(|l| l.parse().unwrap())
            .collect()
    }

    /// No fake QEMU this test started runs any more.
    fn assert_all_dead(&self) {
        for pid in self.pids() {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let state = stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .next();
            assert!(
                stat.is_empty() || state == Some("Z"),
                "QEMU {pid} still runs: {stat}"
            );
        }
    }

    fn vm(&self, args: &[&str]) -> Command {
        let mut c = hvseed();
        c.arg("vm").args(args).env("PATH", self.path());
        c
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// An ISO of `dir`'s files (`xorriso -as mkisofs`).
fn iso_of(dir: &Path, out: &Path) {
    let o = Command::new("xorriso")
        .args(["-as", "mkisofs", "-quiet", "-R", "-J", "-o"])
        .arg(out)
        .arg(dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
}

/// `hvseed render INV` (for the CD, or with `--http-base BASE`) into `out`.
fn render(inv: &Path, out: &Path, base: Option<&str>) {
    let mut c = hvseed();
    c.arg("render").arg(inv).arg("--out").arg(out);
    if let Some(b) = base {
        c.args(["--http-base", b]);
    }
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
}

/// What `hvseed iso` puts under /hvseed/ as far as `hvseed vm` reads it: the render
/// tree and a SHA256SUMS.
fn hvseed_like_iso(inv: &Path, tmp: &Path, name: &str) -> PathBuf {
    let tree = tmp.join(format!("{name}-tree"));
    render(inv, &tree.join("hvseed"), None);
    std::fs::write(tree.join("hvseed/SHA256SUMS"), "").unwrap();
    let iso = tmp.join(format!("{name}.iso"));
    iso_of(&tree, &iso);
    iso
}

fn examples(name: &str) -> PathBuf {
    root().join("profiles/examples").join(name)
}

/// The host every run here boots (the ubuntu1204 example's first).
const KVM21: &str = "kvm21.lab.example.org";

/// The ubuntu1204 example and an ISO of it like `hvseed iso`'s, in a temporary
/// directory.
struct UbuntuIso {
    tmp: tempfile::TempDir,
    inv: PathBuf,
    iso: PathBuf,
}

impl UbuntuIso {
    /// `None` (the test does not run) without xorriso to make the ISO.
    fn new() -> Option<UbuntuIso> {
        if !require_tool("xorriso", "xorriso") {
            return None;
        }
        let tmp = tempfile::tempdir().unwrap();
        let inv = examples("lab-ubuntu1204.yaml");
        let iso = hvseed_like_iso(&inv, tmp.path(), "ubuntu");
        Some(UbuntuIso { tmp, inv, iso })
    }

    /// `hvseed vm`'s arguments to boot [`KVM21`] from the ISO, then `more`.
    fn args<'a>(&'a self, more: &[&'a str]) -> Vec<&'a str> {
        let base = [
            self.inv.to_str().unwrap(),
            "--host",
            KVM21,
            "--iso",
            self.iso.to_str().unwrap(),
        ];
        [&base[..], more].concat()
    }
}

/// Every bad input is refused with a clear message before any guest starts (the fake
/// QEMU never runs) and writes nothing; the one good input of the same shape does start
/// the guest, so the refusals are not a blanket "no".
#[test]
fn bad_input_is_refused_before_any_guest_starts() {
    let fake = FakeQemu::new();
    let Some(u) = UbuntuIso::new() else { return };
    let t = u.tmp.path();
    let iso_s = u.iso.to_str().unwrap();

    // `hvseed vm INVENTORY --host HOST MEDIA…` (with PATH as `path`, if given) exits 1
    // saying each of `want`, and no guest starts.
    let refused = |inv: &Path, host: &str, media: &[&str], want: &[&str], path: Option<&str>| {
        let inv = inv.to_str().unwrap();
        let args = [&[inv, "--host", host], media].concat();
        // Bounded, should a refusal not happen and the fake guest start.
        let mut c = fake.vm(&[&args[..], &["--timeout", "5", "--accel", "tcg"]].concat());
        if let Some(p) = path {
            c.env("PATH", p);
        }
        let o = output_within_secs(&mut c, 60);
        let all = text(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {all}");
        for w in want {
            assert!(all.contains(w), "{args:?}: no {w:?} in: {all}");
        }
        assert!(fake.pids().is_empty(), "{args:?} started QEMU: {all}");
    };

    // A host not in the inventory: its hosts are named.
    refused(
        &u.inv,
        "kvm99.lab.example.org",
        &["--iso", iso_s],
        &[
            "--host kvm99.lab.example.org is not in",
            "kvm21.lab.example.org, kvm22.lab.example.org",
        ],
        None,
    );
    // --kernel belongs to --boot disk; a kernel that is not there is named.
    refused(
        &u.inv,
        KVM21,
        &["--iso", iso_s, "--kernel", iso_s],
        &["--kernel boots an installed disk without its boot loader: use it with --boot disk"],
        None,
    );
    refused(
        &u.inv,
        KVM21,
        &[
            "--boot",
            "disk",
            "--disk",
            iso_s,
            "--kernel",
            "/nonexistent/vmlinuz",
        ],
        &["--kernel /nonexistent/vmlinuz: no such file"],
        None,
    );
    // An ISO hvseed did not write.
    let plain_dir = t.join("plain");
    std::fs::create_dir(&plain_dir).unwrap();
    std::fs::write(plain_dir.join("README"), "a CD").unwrap();
    let plain = t.join("plain.iso");
    iso_of(&plain_dir, &plain);
    let not_hvseeds = ["is not an ISO written by `hvseed iso`"];
    refused(
        &u.inv,
        KVM21,
        &["--iso", plain.to_str().unwrap()],
        &not_hvseeds,
        None,
    );
    // An ISO of another inventory (another cluster's hosts).
    let centos = examples("lab-centos6.yaml");
    let centos_iso = hvseed_like_iso(&centos, t, "centos");
    let others = [
        "was not written for",
        "no /hvseed/hosts/kvm21.lab.example.org/plan.json",
    ];
    refused(
        &u.inv,
        KVM21,
        &["--iso", centos_iso.to_str().unwrap()],
        &others,
        None,
    );
    // An ISO for another target: ubuntu1204's plan of a host the centos6 inventory has.
    let mixed = t.join("mixed");
    render(&centos, &mixed.join("hvseed"), None);
    std::fs::write(mixed.join("hvseed/SHA256SUMS"), "").unwrap();
    std::fs::copy(
        t.join("ubuntu-tree/hvseed/hosts/kvm21.lab.example.org/plan.json"),
        mixed.join("hvseed/hosts/kvm1.lab.example.org/plan.json"),
    )
    .unwrap();
    let mixed_iso = t.join("mixed.iso");
    iso_of(&mixed, &mixed_iso);
    let another_target = [
        "is for os ubuntu1204 but",
        "is os centos6",
        "another target",
    ];
    let media = ["--iso", mixed_iso.to_str().unwrap()];
    refused(
        &centos,
        "kvm1.lab.example.org",
        &media,
        &another_target,
        None,
    );
    // The inventory changed since the ISO was written.
    let changed = t.join("changed.yaml");
    std::fs::write(
        &changed,
        std::fs::read_to_string(&u.inv)
            .unwrap()
            .replace("0.ubuntu.pool.ntp.org", "2.ubuntu.pool.ntp.org"),
    )
    .unwrap();
    let stale = [
        "differs from the plan",
        "the inventory changed since the media were written",
    ];
    refused(&changed, KVM21, &["--iso", iso_s], &stale, None);
    // A disk that exists and that hvseed vm did not create: never written.
    let disk = t.join("precious.img");
    std::fs::write(&disk, b"somebody's data").unwrap();
    let media = ["--iso", iso_s, "--disk", disk.to_str().unwrap()];
    let not_ours = ["exists and hvseed vm did not create it", "--boot disk"];
    refused(&u.inv, KVM21, &media, &not_ours, None);
    assert_eq!(std::fs::read(&disk).unwrap(), b"somebody's data");
    // A PXE tree whose http-base is a host name: no address for the guest to reach.
    let tree = t.join("pxe");
    render(
        &u.inv,
        &tree.join("http"),
        Some("http://pxe.lab.example.org:8080"),
    );
    std::fs::create_dir(tree.join("tftp")).unwrap();
    std::fs::write(tree.join("tftp/pxelinux.0"), "").unwrap();
    let host_name = [
        "names a host, not an IPv4 address",
        "--http-base http://ADDRESS:PORT",
    ];
    refused(
        &u.inv,
        KVM21,
        &["--pxe", tree.to_str().unwrap()],
        &host_name,
        None,
    );
    // No QEMU at all.
    let empty = t.join("empty-bin");
    std::fs::create_dir(&empty).unwrap();
    let no_qemu = [
        "qemu-system-x86_64 is not on PATH",
        "apt-get install qemu-system-x86",
    ];
    let path = format!("{}:/usr/bin/xorriso-only-not-here", empty.display());
    refused(&u.inv, KVM21, &["--iso", iso_s], &no_qemu, Some(&path));

    // The good input of the same shape starts the guest (the fake one, which never
    // shows a milestone: the timeout ends the run, exit 1, the guest killed).
    let o = output_within_secs(
        &mut fake.vm(&u.args(&["--accel", "tcg", "--timeout", "3", "--json"])),
        60,
    );
    let all = text(&o);
    assert_eq!(o.status.code(), Some(1), "{all}");
    assert_eq!(fake.pids().len(), 1, "{all}");
    assert!(
        all.contains("installing not reached within --timeout 3 s"),
        "{all}"
    );
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["ok"], false);
    assert_eq!(summary["accel"], "tcg");
    assert!(Path::new(summary["serial_log"].as_str().unwrap()).is_file());
    fake.assert_all_dead();
}

/// True when this process runs as root (what carrying a VLAN takes).
fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The namespaces named like `hvseed vm`'s.
fn vm_netns() -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("hvseed-vm-"))
                .collect()
        })
        .unwrap_or_default()
}

/// The network namespace `hvseed vm` said it carried the VLAN into.
fn carried_netns(all: &str) -> Option<String> {
    let rest = all.split("carried into network namespace ").nth(1)?;
    Some(
        rest.split_whitespace()
            .next()?
            .trim_end_matches(',')
            .to_string(),
    )
}

/// The host's management VLAN: as root, `hvseed vm` carries it into a namespace of the
/// run (the gateway's address on the tap `vlan100`, QEMU's NIC on a hub joined to the
/// trunk's socket) and deletes that namespace afterwards; where it cannot (no `ip` on
/// PATH; as root, a tagger that fails to start), it says before booting that `ready`
/// cannot be reached, and why, and goes on.
#[test]
fn the_management_vlan_is_carried_as_root_and_its_absence_said_otherwise() {
    let Some(u) = UbuntuIso::new() else { return };
    if is_root() {
        // The fake QEMU connects to the trunk as QEMU does; meanwhile the namespace
        // answers as kvm21's gateway on the tap of VLAN 100.
        let fake = FakeQemu::script(
            "[ -S \"$trunk\" ] && echo \"$trunk\" > \"$0.trunk\"\nexec sleep 600\n",
        );
        let mut child = KillOnDrop(
            fake.vm(&u.args(&["--accel", "tcg", "--timeout", "20"]))
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let start = Instant::now();
        while fake.pids().is_empty() {
            assert!(start.elapsed() < Duration::from_secs(30), "no guest");
            std::thread::sleep(Duration::from_millis(50));
        }
        let ns = std::fs::read_dir("/run/netns")
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .find(|n| n.starts_with(&format!("hvseed-vm-{}-", child.0.id())))
            .expect("the run's namespace");
        let addrs = output_within_secs(
            Command::new("ip").args(["-n", &ns, "-o", "-4", "addr", "show", "dev", "vlan100"]),
            10,
        );
        assert!(
            String::from_utf8_lossy(&addrs.stdout).contains("inet 192.168.42.1/24"),
            "{}",
            text(&addrs)
        );
        let st = Command::new("kill")
            .args(["-INT", &child.0.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
        assert_eq!(child.0.wait().unwrap().code(), Some(130));
        let all = crate::util::stderr_text(&mut child.0);
        assert_eq!(carried_netns(&all).as_deref(), Some(ns.as_str()), "{all}");
        assert!(
            all.contains("VLAN 100 carried into network namespace")
                && all.contains("which answers as the gateway 192.168.42.1"),
            "{all}"
        );
        assert!(!all.contains("cannot reach ready"), "{all}");
        let socket = std::fs::read_to_string(fake.dir.path().join("bin/qemu-system-x86_64.trunk"))
            .expect("QEMU was given the trunk's socket, and it existed");
        assert!(socket.trim_end().ends_with("/trunk.sock"), "{socket}");
        assert!(!Path::new(socket.trim_end()).exists(), "{socket} is left");
        assert!(!Path::new("/run/netns").join(&ns).exists(), "{ns} is left");
        fake.assert_all_dead();
    }

    // As root, but the tagger cannot be set up (here: TMPDIR too long for the trunk's
    // unix socket): said, and the run goes on to the milestones it can reach.
    if is_root() {
        let fake = FakeQemu::new();
        let before = vm_netns();
        let long = u.tmp.path().join("t".repeat(100));
        std::fs::create_dir_all(&long).unwrap();
        let o = output_within_secs(
            fake.vm(&u.args(&["--accel", "tcg", "--timeout", "3"]))
                .env("TMPDIR", &long),
            60,
        );
        let all = text(&o);
        assert_eq!(o.status.code(), Some(1), "{all}");
        assert!(
            all.contains("hvseed vm: cannot reach ready: kvm21.lab.example.org's management network is VLAN 100, which QEMU's user network drops, and carrying it failed"),
            "{all}"
        );
        assert!(
            all.contains("installing not reached within --timeout 3 s"),
            "{all}"
        );
        assert_eq!(fake.pids().len(), 1, "{all}");
        // New namespaces of runs that have ended (others' runs may be going on).
        let left: Vec<String> = vm_netns()
            .into_iter()
            .filter(|n| !before.contains(n))
            .filter(|n| {
                let pid = n.split('-').nth(2).unwrap_or("");
                !Path::new(&format!("/proc/{pid}")).exists()
            })
            .collect();
        assert!(left.is_empty(), "namespaces left: {left:?}");
        fake.assert_all_dead();
    }

    // Without `ip` (only the tools the run needs on PATH).
    let fake = FakeQemu::new();
    let tools = u.tmp.path().join("tools");
    std::fs::create_dir_all(&tools).unwrap();
    for t in ["xorriso", "sleep"] {
        let found = ["/usr/bin", "/bin"]
            .iter()
            .map(|d| Path::new(d).join(t))
            .find(|p| p.exists())
            .unwrap();
        let _ = std::os::unix::fs::symlink(found, tools.join(t));
    }
    let o = output_within_secs(
        fake.vm(&u.args(&["--accel", "tcg", "--timeout", "3", "--json"]))
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    fake.dir.path().join("bin").display(),
                    tools.display()
                ),
            ),
        60,
    );
    let all = text(&o);
    assert_eq!(o.status.code(), Some(1), "{all}");
    let said = if is_root() {
        "carrying its VLANs takes `ip`"
    } else {
        "carrying its VLANs takes root"
    };
    assert!(
        all.contains(
            "hvseed vm: cannot reach ready: kvm21.lab.example.org's management network is VLAN 100"
        ) && all.contains(said),
        "{all}"
    );
    assert!(carried_netns(&all).is_none(), "{all}");
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["unreachable"][0]["milestone"], "ready", "{summary}");
    fake.assert_all_dead();
}

/// A KVM that accepts a guest and then hangs (the fake QEMU never prints its
/// firmware's banner): `--accel kvm` fails after the probe's deadline, `auto` warns
/// and goes on under TCG; both within bounds, with no QEMU left running.
#[test]
fn a_hanging_kvm_is_found_by_the_probe_within_its_deadline() {
    if std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_err()
    {
        crate::util::missing(
            "/dev/kvm cannot be opened: no KVM to probe",
            "a machine with /dev/kvm",
        );
        return;
    }
    let fake = FakeQemu::new();
    let Some(u) = UbuntuIso::new() else { return };

    let start = Instant::now();
    let o = output_within_secs(&mut fake.vm(&u.args(&["--accel", "kvm"])), 60);
    let took = start.elapsed();
    let all = text(&o);
    assert_eq!(o.status.code(), Some(1), "{all}");
    assert!(
        all.contains("--accel kvm: a probe guest under KVM showed no sign of life within 10 s"),
        "{all}"
    );
    assert!(took < Duration::from_secs(25), "{took:?}");
    assert_eq!(fake.pids().len(), 1, "only the probe ran: {all}");
    fake.assert_all_dead();

    let start = Instant::now();
    let o = output_within_secs(
        &mut fake.vm(&u.args(&["--accel", "auto", "--timeout", "15", "--json"])),
        60,
    );
    let took = start.elapsed();
    let all = text(&o);
    assert_eq!(o.status.code(), Some(1), "{all}");
    assert!(
        all.contains("KVM is not usable") && all.contains("using TCG"),
        "{all}"
    );
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["accel"], "tcg", "{summary}");
    // The probe's 10 s count against --timeout: the whole run ends at 15 s.
    assert!(took < Duration::from_secs(25), "{took:?}");
    assert_eq!(fake.pids().len(), 3, "probe, then the guest: {all}");
    fake.assert_all_dead();
}

/// SIGTERM (as CI runners send on cancel) ends hvseed with 143 and the guest with it,
/// and leaves none of the run's temporary files (its scratch directory, QEMU's
/// messages, the serial log of its own choosing).
#[test]
fn sigterm_kills_the_guest() {
    let fake = FakeQemu::new();
    let Some(u) = UbuntuIso::new() else { return };
    let tmpdir = u.tmp.path().join("tmp");
    std::fs::create_dir(&tmpdir).unwrap();
    let mut child = KillOnDrop(
        fake.vm(&u.args(&["--accel", "tcg"]))
            .env("TMPDIR", &tmpdir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let start = Instant::now();
    while fake.pids().is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the guest never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = fake.pids()[0];
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    let st = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let status = child.0.wait().unwrap();
    assert_eq!(status.code(), Some(143), "{status}");
    let err = crate::util::stderr_text(&mut child.0);
    assert!(
        err.contains("interrupted (SIGTERM): stopped 1 program(s)"),
        "{err}"
    );
    fake.assert_all_dead();
    let left: Vec<_> = std::fs::read_dir(&tmpdir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "left in TMPDIR: {left:?}");
}

/// The run loop end to end on a console the fake QEMU writes: the milestone reached
/// ends the run with exit 0 and its time, `--console` copies the console (without its
/// escape sequences) to stderr, and the guest is stopped.
#[test]
fn a_milestone_on_the_console_ends_the_run_and_console_shows_it() {
    let fake = FakeQemu::with_console(
        "SeaBIOS (version x)\\r\\n\\033[1;44mhvseed: installing kvm21.lab.example.org\\033[0m\\r\\n",
    );
    let Some(u) = UbuntuIso::new() else { return };
    let log = u.tmp.path().join("serial.log");
    let start = Instant::now();
    let o = output_within_secs(
        &mut fake.vm(&u.args(&[
            "--accel",
            "tcg",
            "--console",
            "--json",
            "--log",
            log.to_str().unwrap(),
        ])),
        60,
    );
    let all = text(&o);
    assert!(o.status.success(), "{all}");
    assert!(start.elapsed() < Duration::from_secs(20), "{all}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("\nhvseed: installing kvm21.lab.example.org\n"),
        "{err}"
    );
    assert!(!err.contains('\u{1b}'), "{err}");
    assert!(
        err.contains("hvseed vm: kvm21.lab.example.org reached installing after"),
        "{err}"
    );
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["ok"], true);
    assert_eq!(
        summary["milestones"][0]["milestone"], "installing",
        "{summary}"
    );
    assert_eq!(summary["serial_log"], log.to_str().unwrap());
    assert!(std::fs::read_to_string(&log)
        .unwrap()
        .contains("hvseed: installing kvm21"));
    fake.assert_all_dead();
}

/// Without `--log`, the serial log lives in a directory of hvseed's own under TMPDIR:
/// removed after a run that reached its milestone, kept (and named) after one that
/// failed, so CI machines do not collect a directory per run.
#[test]
fn a_log_of_its_own_is_removed_after_success_and_kept_after_failure() {
    let Some(u) = UbuntuIso::new() else { return };
    let run = |console: &str, tmpdir: &Path| {
        let fake = FakeQemu::with_console(console);
        std::fs::create_dir_all(tmpdir).unwrap();
        let o = output_within_secs(
            fake.vm(&u.args(&["--accel", "tcg", "--json"]))
                .env("TMPDIR", tmpdir),
            60,
        );
        fake.assert_all_dead();
        let left: Vec<String> = std::fs::read_dir(tmpdir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("hvseed-vm-"))
            .collect();
        (o, left)
    };
    let (o, left) = run(
        "hvseed: installing kvm21.lab.example.org\\r\\n",
        &u.tmp.path().join("ok"),
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(left.is_empty(), "left behind: {left:?}");
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(summary["serial_log"].is_null(), "{summary}");

    let (o, left) = run(
        "Kernel panic - not syncing\\r\\n",
        &u.tmp.path().join("failed"),
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(left.len(), 1, "{left:?}");
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let log = summary["serial_log"].as_str().unwrap();
    assert!(std::fs::read_to_string(log)
        .unwrap()
        .contains("Kernel panic"));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(log),
        "{}",
        text(&o)
    );
}

/// A KVM that passes the probe and then hangs the guest (nothing on the console or the
/// firmware's port for 45 s before a kernel): `--accel auto` stops that guest, boots
/// again under TCG, reaches the milestone there, and the JSON summary carries the
/// warning of the fallback.
#[test]
fn a_guest_stalled_under_kvm_is_booted_again_under_tcg_and_the_summary_says_so() {
    if std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_err()
    {
        crate::util::missing(
            "/dev/kvm cannot be opened: no KVM to fall back from",
            "a machine with /dev/kvm",
        );
        return;
    }
    let fake = FakeQemu::stalling_under_kvm("hvseed: installing kvm21.lab.example.org\\r\\n");
    let Some(u) = UbuntuIso::new() else { return };
    let start = Instant::now();
    let o = output_within_secs(
        &mut fake.vm(&u.args(&["--accel", "auto", "--timeout", "120", "--json"])),
        150,
    );
    let took = start.elapsed();
    let all = text(&o);
    assert!(o.status.success(), "{all}");
    assert!(
        all.contains("the guest showed nothing for 45 s under KVM before a kernel started"),
        "{all}"
    );
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["ok"], true, "{summary}");
    assert_eq!(summary["accel"], "tcg", "{summary}");
    let warning = summary["accel_warning"].as_str().unwrap_or_default();
    assert!(
        warning.contains("under KVM") && warning.contains("booted again under TCG"),
        "{summary}"
    );
    assert_eq!(
        summary["milestones"][0]["milestone"], "installing",
        "{summary}"
    );
    assert!(
        took >= Duration::from_secs(45) && took < Duration::from_secs(90),
        "{took:?}"
    );
    assert_eq!(
        fake.pids().len(),
        3,
        "probe, the stalled guest, the TCG guest: {all}"
    );
    fake.assert_all_dead();
}

/// `hvseed vm-relay ADDR` on its own, as QEMU's guestfwd runs it: what arrives on its
/// stdin reaches a server at ADDR, the server's reply comes out on its stdout, and it
/// ends when the server closes; with nothing listening it fails naming the address.
#[test]
fn vm_relay_copies_one_connection_both_ways() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        use std::io::{BufRead, Write};
        let (conn, _) = listener.accept().unwrap();
        let mut line = String::new();
        std::io::BufReader::new(&conn).read_line(&mut line).unwrap();
        (&conn)
            .write_all(format!("got {}", line.to_uppercase()).as_bytes())
            .unwrap();
        line
    });
    let mut child = KillOnDrop(
        hvseed()
            .args(["vm-relay", &addr.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    {
        use std::io::Write;
        let mut stdin = child.0.stdin.take().unwrap();
        stdin.write_all(b"GET /ks hvseed\n").unwrap();
        // stdin stays open, as QEMU keeps the guest's side open: the server's close
        // ends the relay.
        let got = server.join().unwrap();
        assert_eq!(got, "GET /ks hvseed\n");
        let start = Instant::now();
        while child.0.try_wait().unwrap().is_none() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the relay runs on"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        drop(stdin);
    }
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.0.stdout.take().unwrap(), &mut out).unwrap();
    assert_eq!(out, "got GET /KS HVSEED\n");
    assert!(child.0.wait().unwrap().success());

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let o = output_within_secs(
        hvseed()
            .args(["vm-relay", &addr.to_string()])
            .stdin(Stdio::null()),
        20,
    );
    assert!(!o.status.success());
    assert!(
        text(&o).contains(&format!("connecting to {addr}")),
        "{}",
        text(&o)
    );
}

/// The arguments the fake QEMU was last started with (one a line in `$0.args`).
fn last_args(fake: &FakeQemu) -> String {
    std::fs::read_to_string(fake.dir.path().join("bin/qemu-system-x86_64.args")).unwrap_or_default()
}

/// What `qemu-img info` says of an image.
fn qemu_img_info(path: &Path) -> serde_json::Value {
    let o = output_within_secs(
        Command::new("qemu-img")
            .args(["info", "--output=json", "-U"])
            .arg(path),
        30,
    );
    assert!(o.status.success(), "qemu-img info: {}", text(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// `--disk-from IMAGE --disk NEW`: NEW is created as a qcow2 overlay on IMAGE (as
/// `qemu-img info` reads it) with hvseed's marker, and attached writable; IMAGE is
/// never written. A later run with `--disk NEW` alone writes NEW (no snapshot);
/// `--disk-from` onto a path that exists replaces nothing and starts no guest; a
/// foreign image is still booted only through a snapshot. `--disk-bus` picks the bus
/// over the install disk's (`sda`: IDE) default.
#[test]
fn disk_from_creates_an_overlay_of_its_own_and_never_writes_the_image() {
    if !require_tool("qemu-img", "qemu-utils") {
        return;
    }
    let fake = FakeQemu::script(
        "printf '%s\\n' \"$@\" > \"$0.args\"\n\
         [ -n \"$log\" ] && printf 'hvseed-firstboot: report written to /var/lib/hvseed/report.json: Ready\\n' >> \"$log\"\n\
         exec sleep 600\n",
    );
    let tmp = tempfile::tempdir().unwrap();
    let inv = examples("lab-ubuntu1204.yaml");
    let inv = inv.to_str().unwrap();
    let image = tmp.path().join("installed.img");
    std::fs::write(&image, vec![0x5au8; 1 << 20]).unwrap();
    let overlay = tmp.path().join("boot,1.qcow2");
    let (image_s, overlay_s) = (image.to_str().unwrap(), overlay.to_str().unwrap());
    let vm = |more: &[&str]| {
        let args = [
            &[inv, "--host", KVM21, "--boot", "disk", "--until", "ready"][..],
            more,
            &["--accel", "tcg", "--timeout", "20"],
        ]
        .concat();
        let o = output_within_secs(&mut fake.vm(&args), 60);
        (o.status.code(), text(&o))
    };

    let (code, all) = vm(&[
        "--disk-from",
        image_s,
        "--disk",
        overlay_s,
        "--disk-bus",
        "virtio",
    ]);
    assert_eq!(code, Some(0), "{all}");
    let info = qemu_img_info(&overlay);
    assert_eq!(info["format"], "qcow2", "{info}");
    assert_eq!(info["backing-filename"], image_s, "{info}");
    assert_eq!(info["backing-filename-format"], "raw", "{info}");
    assert_eq!(info["virtual-size"], 1 << 20, "{info}");
    assert!(
        std::fs::read_to_string(tmp.path().join("boot,1.qcow2.hvseed-vm"))
            .unwrap()
            .contains("hvseed vm created this disk image"),
        "no marker beside the overlay"
    );
    let args = last_args(&fake);
    assert!(
        args.contains(&format!(
            "file={},if=none,id=disk0,format=qcow2\n",
            overlay_s.replace(',', ",,")
        )),
        "{args}"
    );
    assert!(args.contains("virtio-blk-pci,drive=disk0"), "{args}");
    assert_eq!(std::fs::read(&image).unwrap(), vec![0x5au8; 1 << 20]);

    // Not again onto the overlay: nothing replaced, no guest.
    let before = std::fs::read(&overlay).unwrap();
    let (code, all) = vm(&["--disk-from", image_s, "--disk", overlay_s]);
    assert_eq!(code, Some(1), "{all}");
    assert!(
        all.contains(&format!(
            "--disk {overlay_s} exists: --disk-from creates a new overlay"
        )) && all.contains("with --disk"),
        "{all}"
    );
    assert_eq!(fake.pids().len(), 1, "{all}");
    assert_eq!(std::fs::read(&overlay).unwrap(), before);

    // The overlay booted again: written (ours), its bus IDE by default for `sda`.
    let (code, all) = vm(&["--disk", overlay_s]);
    assert_eq!(code, Some(0), "{all}");
    let args = last_args(&fake);
    assert!(
        args.contains(",id=disk0,format=qcow2\n") && args.contains("ide-hd,drive=disk0"),
        "{args}"
    );
    // The image itself, not hvseed's: through a snapshot only.
    let (code, all) = vm(&["--disk", image_s]);
    assert_eq!(code, Some(0), "{all}");
    assert!(
        last_args(&fake).contains(",id=disk0,format=raw,snapshot=on\n"),
        "{}",
        last_args(&fake)
    );
    assert_eq!(std::fs::read(&image).unwrap(), vec![0x5au8; 1 << 20]);
    assert_eq!(fake.pids().len(), 3);
    fake.assert_all_dead();
}

/// A network namespace of the test's own, deleted when dropped.
struct TestNetns(String);

impl TestNetns {
    fn new() -> TestNetns {
        let name = format!("hvseed-test-callers-{}", std::process::id());
        let st = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .unwrap();
        assert!(st.success(), "ip netns add {name}");
        TestNetns(name)
    }

    fn ip(&self, args: &[&str]) -> String {
        let o = output_within_secs(Command::new("ip").arg("-n").arg(&self.0).args(args), 10);
        assert!(
            o.status.success(),
            "ip -n {} {args:?}: {}",
            self.0,
            text(&o)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Frames the tap `tap` received (from the guest), if it exists.
    fn rx(&self, tap: &str) -> Option<u64> {
        let o = output_within_secs(
            Command::new("ip")
                .args(["netns", "exec", &self.0, "cat"])
                .arg(format!("/sys/class/net/{tap}/statistics/rx_packets")),
            10,
        );
        String::from_utf8_lossy(&o.stdout).trim().parse().ok()
    }
}

impl Drop for TestNetns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// `--netns NAME` (as root): the trunk NIC is on the tagger's trunk alone (no user
/// network), its frames reach the caller's namespace, untagged ones on the caller's
/// own persistent tap `untagged` (its address kept) and the management VLAN's on the
/// tap `vlan100` made for the run, to which no address is added; after the run the
/// namespace and the caller's tap are as they were and the run's tap is gone. A
/// namespace that does not exist, or --netns with a PXE tree, is refused before any
/// guest starts.
#[test]
fn netns_carries_the_hosts_networks_into_the_callers_namespace() {
    if !is_root() || !require_tool("ip", "iproute2") {
        return;
    }
    let python = std::env::var("HVSEED_PYTHON").unwrap_or_else(|_| "python3".into());
    // The fake QEMU sends an untagged frame and one tagged 100 on the trunk, as
    // QEMU's `-netdev stream` frames them (a 4-byte big-endian length first).
    let fake = FakeQemu::script(&format!(
        "printf '%s\\n' \"$@\" > \"$0.args\"\n\
         [ -S \"$trunk\" ] && exec {python} -c 'import socket,struct,sys,time\n\
s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])\n\
src=bytes.fromhex(\"525400123421\"); dst=b\"\\xff\"*6\n\
fs=(dst+src+b\"\\x88\\xb5\"+bytes(46), dst+src+b\"\\x81\\x00\\x00\\x64\\x88\\xb5\"+bytes(46))\n\
[s.sendall(struct.pack(\">I\", len(f))+f) for f in fs]\n\
time.sleep(600)' \"$trunk\"\nexec sleep 600\n"
    ));
    let ns = TestNetns::new();
    ns.ip(&["tuntap", "add", "dev", "untagged", "mode", "tap"]);
    ns.ip(&["addr", "add", "10.77.0.1/24", "dev", "untagged"]);
    ns.ip(&["link", "set", "untagged", "up"]);
    let tmp = tempfile::tempdir().unwrap();
    let image = tmp.path().join("installed.img");
    std::fs::write(&image, vec![0u8; 1 << 20]).unwrap();
    let inv = examples("lab-ubuntu1204.yaml");
    let base = [
        inv.to_str().unwrap(),
        "--host",
        KVM21,
        "--accel",
        "tcg",
        "--until",
        "ready",
    ];
    let mut child = KillOnDrop(
        fake.vm(&[
            &base[..],
            &["--boot", "disk", "--disk", image.to_str().unwrap()],
            &["--netns", &ns.0, "--timeout", "60"],
        ]
        .concat())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let start = Instant::now();
    while ns.rx("untagged").unwrap_or(0) < 1 || ns.rx("vlan100").unwrap_or(0) < 1 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the frames did not reach the taps: untagged {:?}, vlan100 {:?}",
            ns.rx("untagged"),
            ns.rx("vlan100")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(ns.rx("untagged"), Some(1));
    assert_eq!(ns.rx("vlan100"), Some(1));
    assert!(
        !ns.ip(&["-4", "-o", "addr", "show", "dev", "vlan100"])
            .contains("inet"),
        "an address was added to the caller's namespace"
    );
    let args = last_args(&fake);
    assert!(
        args.contains("stream,id=n0,server=off,addr.type=unix,addr.path="),
        "{args}"
    );
    assert!(
        args.contains("e1000,netdev=n0,mac=00:04:23:aa:bb:21\n"),
        "{args}"
    );
    assert!(!args.contains("user,id="), "{args}");
    let st = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    child.0.wait().unwrap();
    let all = crate::util::stderr_text(&mut child.0);
    assert!(
        all.contains(&format!(
            "the host's networks are carried into network namespace {}: VLAN 100",
            ns.0
        )),
        "{all}"
    );
    assert!(
        Path::new("/run/netns").join(&ns.0).exists(),
        "the namespace was deleted"
    );
    assert!(
        ns.ip(&["-4", "-o", "addr", "show", "dev", "untagged"])
            .contains("inet 10.77.0.1/24"),
        "the caller's tap lost its address"
    );
    assert!(ns.rx("vlan100").is_none(), "the run's tap vlan100 is left");
    fake.assert_all_dead();

    for (more, want) in [
        (
            vec![
                "--boot",
                "disk",
                "--disk",
                image.to_str().unwrap(),
                "--netns",
                "hvseed-no-such-ns",
            ],
            "--netns hvseed-no-such-ns: there is no network namespace hvseed-no-such-ns",
        ),
        (
            vec!["--pxe", tmp.path().to_str().unwrap(), "--netns", &ns.0],
            "--netns",
        ),
    ] {
        let o = output_within_secs(
            &mut fake.vm(&[&base[..], &more[..], &["--timeout", "5"]].concat()),
            60,
        );
        let all = text(&o);
        assert!(!o.status.success(), "{more:?}: {all}");
        assert!(all.contains(want), "{more:?}: {all}");
        assert_eq!(fake.pids().len(), 1, "{more:?} started QEMU: {all}");
    }
}
