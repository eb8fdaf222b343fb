//! The builder as a process (docs/media.md, "On failure and interrupt"): interrupts
//! (SIGINT, SIGTERM, SIGHUP sent to hvseed's pid alone) leave no temporary file, no
//! temporary directory and no running child program; a run killed outright leaves
//! temporaries the next run removes (a user's files of the same look are kept); and a
//! closed or full stdout/stderr never panics a verb nor costs `serve` a request.
//!
//! Points "during the run" are made exact with a stand-in `xorriso` first on PATH that,
//! for one chosen call, starts a long `sleep` (in its process group) instead of
//! returning, and says so in a file; every other call runs the real xorriso.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{exchange, hvseed, root, run_ok, KillOnDrop};

const SIGNALS: [(&str, i32); 3] = [("INT", 2), ("TERM", 15), ("HUP", 1)];

/// Kills a process group when dropped (the stand-in's, whatever the test did): unlike
/// [`KillOnDrop`], it reaches the children the leader started.
struct GroupKilled(u32);

impl Drop for GroupKilled {
    fn drop(&mut self) {
        // The group, and the leader itself in case it leads no group.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0), &self.0.to_string()])
            .stderr(Stdio::null())
            .status();
    }
}

fn send(pid: u32, sig: &str) {
    let st = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success(), "kill -{sig} {pid}");
}

/// Field `n` (1-based, proc(5)) of /proc/PID/stat, or None if the process is gone.
fn stat_field(pid: &str, n: usize) -> Option<String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 1..];
    rest.split_ascii_whitespace().nth(n - 3).map(str::to_string)
}

/// Processes of process group `pgid` that have not ended (zombies have).
fn live_in_group(pgid: u32) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
        .filter(|p| {
            stat_field(p, 5).is_some_and(|g| g == pgid.to_string())
                && stat_field(p, 3).is_some_and(|s| s != "Z" && s != "X")
        })
        .collect()
}

/// Waits (a bounded while: killed processes take a moment to be torn down) until no
/// process of group `pgid` runs; fails naming those that do.
fn assert_group_gone(pgid: u32) {
    let start = Instant::now();
    loop {
        let mut live = live_in_group(pgid);
        // The leader itself, also if it was not made a group leader.
        if stat_field(&pgid.to_string(), 3).is_some_and(|s| s != "Z" && s != "X") {
            live.push(pgid.to_string());
        }
        if live.is_empty() {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "processes of the child's group still run: {live:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A directory holding a stand-in `xorriso` that pauses (starts `sleep 600` and waits
/// for it) on the call whose arguments include `pattern`, after writing its pid to
/// `DIR/paused`; every other call runs the real xorriso.
/// With `grandchild`, the stand-in also leaves a `sleep` of its own running in the
/// background (in its process group): hvseed must end the whole group.
fn pausing_xorriso(pattern: &str, grandchild: bool) -> tempfile::TempDir {
    let real = Command::new("sh")
        .args(["-c", "command -v xorriso"])
        .output()
        .unwrap();
    let real = String::from_utf8(real.stdout).unwrap().trim().to_string();
    assert!(!real.is_empty(), "xorriso not found");
    let d = tempfile::tempdir().unwrap();
    let script = format!(
        "#!/bin/sh\nfor a in \"$@\"; do\n  if [ \"$a\" = '{pattern}' ]; then\n    \
         echo $$ > '{}/paused.tmp' && mv '{0}/paused.tmp' '{0}/paused'\n    \
         {bg}exec sleep 600\n  fi\ndone\nexec '{real}' \"$@\"\n",
        d.path().display(),
        bg = if grandchild { "sleep 600 &\n    " } else { "" },
    );
    let p = d.path().join("xorriso");
    std::fs::write(&p, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    d
}

fn path_with(dir: &Path) -> std::ffi::OsString {
    let mut paths = vec![dir.to_path_buf()];
    paths.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(paths).unwrap()
}

/// Waits until the stand-in xorriso paused; returns its pid (= its process group).
fn wait_paused(stand_in: &Path, child: &mut Child) -> u32 {
    let start = Instant::now();
    loop {
        if let Ok(s) = std::fs::read_to_string(stand_in.join("paused")) {
            return s.trim().parse().unwrap();
        }
        if let Some(st) = child.try_wait().unwrap() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            panic!("hvseed ended ({st}) before xorriso paused:\n{err}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "xorriso never ran"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Every name under `dir`, relative, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = walkdir::WalkDir::new(dir)
        .min_depth(1)
        .into_iter()
        .map(|e| {
            e.unwrap()
                .path()
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    v.sort();
    v
}

/// The names hvseed gives its temporaries (docs/media.md).
fn hvseed_temporaries(names: &[String]) -> Vec<&String> {
    names
        .iter()
        .filter(|n| {
            let base = n.rsplit('/').next().unwrap();
            [
                ".hvseed-staging-",
                ".hvseed-tmp-",
                ".hvseed-bundle-",
                "hvseed-iso.",
            ]
            .iter()
            .any(|p| base.starts_with(p))
                || base.contains(".hvseed-tmp-")
                || base.contains(".hvseed-old-")
                || base.ends_with(".partial")
        })
        .collect()
}

/// Waits for the interrupted child; returns its status and stderr.
fn wait_with_stderr(child: &mut Child) -> (std::process::ExitStatus, String) {
    let status = child.wait().unwrap();
    (status, crate::util::stderr_text(child))
}

/// Starts `cmd` with the stand-in xorriso in `stand_in` first on PATH (stdout to
/// /dev/null, stderr as given) and waits until the stand-in paused; returns the run
/// and the pid the stand-in wrote (its process group, as the run's pid namespace
/// numbers it).
fn start_until_paused(cmd: &mut Command, stand_in: &Path, stderr: Stdio) -> (KillOnDrop, u32) {
    let mut child = KillOnDrop(
        cmd.env("PATH", path_with(stand_in))
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap(),
    );
    let pgid = wait_paused(stand_in, &mut child.0);
    (child, pgid)
}

/// Kills a paused run with SIGKILL, which no cleanup survives; checks that nothing of
/// the stand-in's process group runs.
fn kill_paused(child: &mut Child, pgid: u32) {
    let _group = GroupKilled(pgid);
    send(child.id(), "KILL");
    child.wait().unwrap();
    assert_group_gone(pgid);
}

/// The names in `dir` (not below it), in directory order.
fn names_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// Checks the exit status (128 + the signal) and the message of an interrupted run.
fn assert_ended_by((status, err): &(std::process::ExitStatus, String), sig: (&str, i32)) {
    assert_eq!(status.code(), Some(128 + sig.1), "SIG{}: {err}", sig.0);
    assert!(
        err.contains(&format!("interrupted (SIG{})", sig.0)),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

// ------------------------------------------------------------------ iso

/// The ISO fixtures' directory and the agent, or `None` (said loudly) if either is
/// missing.
fn iso_inputs() -> Option<(PathBuf, PathBuf)> {
    Some((crate::iso::fixtures()?, crate::util::agent()?))
}

/// `DIR/tmp` (the run's TMPDIR) and `DIR/out` (where it writes), both created.
fn tmp_and_out(dir: &Path) -> (PathBuf, PathBuf) {
    let (tmp, out) = (dir.join("tmp"), dir.join("out"));
    std::fs::create_dir(&tmp).unwrap();
    std::fs::create_dir(&out).unwrap();
    (tmp, out)
}

/// SIGINT, SIGTERM and SIGHUP while xorriso writes the new session: hvseed kills
/// xorriso's whole process group, removes the copy beside OUT and its staging
/// directory, and exits 128 + the signal.
#[test]
fn iso_interrupted_during_xorriso_leaves_nothing_running_and_no_file() {
    let Some((fx, agent)) = iso_inputs() else {
        return;
    };
    // The last run gets SIGINT the way a terminal's Ctrl-C sends it: to hvseed's whole
    // process group.
    let runs = SIGNALS
        .iter()
        .map(|s| (*s, false))
        .chain([(SIGNALS[0], true)]);
    for (sig, to_group) in runs {
        let d = tempfile::tempdir().unwrap();
        let (tmpdir, outdir) = tmp_and_out(d.path());
        let stand_in = pausing_xorriso("-commit", true);
        let mut cmd = crate::iso::iso_cmd(
            "lab-centos6.yaml",
            &fx.join("centos6.iso"),
            &outdir.join("lab.iso"),
            &agent,
        );
        cmd.env("TMPDIR", &tmpdir);
        if to_group {
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
        }
        let (mut child, pgid) = start_until_paused(&mut cmd, stand_in.path(), Stdio::piped());
        let _group = GroupKilled(pgid);
        assert_eq!(
            hvseed_temporaries(&listing(&outdir)).len(),
            1,
            "the copy exists while xorriso runs"
        );
        if to_group {
            let st = Command::new("kill")
                .args([&format!("-{}", sig.0), "--", &format!("-{}", child.0.id())])
                .status()
                .unwrap();
            assert!(st.success());
        } else {
            send(child.0.id(), sig.0);
        }
        let ended = wait_with_stderr(&mut child.0);
        assert_group_gone(pgid);
        assert_eq!(listing(&outdir), Vec::<String>::new(), "SIG{}", sig.0);
        assert_eq!(listing(&tmpdir), Vec::<String>::new(), "SIG{}", sig.0);
        assert_ended_by(&ended, sig);
    }
}

/// A run killed with SIGKILL cannot clean up: its xorriso dies with it (the kernel's
/// parent-death signal), and the next run removes the copy and the staging directory
/// it left, but not a user's files of the same look nor a running hvseed's.
#[test]
fn iso_next_run_removes_what_a_killed_run_left() {
    let Some((fx, agent)) = iso_inputs() else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let (tmpdir, outdir) = tmp_and_out(d.path());
    let out = outdir.join("lab.iso");
    let stand_in = pausing_xorriso("-commit", false);
    let (mut child, pgid) = start_until_paused(
        crate::iso::iso_cmd("lab-centos6.yaml", &fx.join("centos6.iso"), &out, &agent)
            .env("TMPDIR", &tmpdir),
        stand_in.path(),
        Stdio::null(),
    );
    kill_paused(&mut child.0, pgid);
    let left = listing(&outdir);
    assert_eq!(hvseed_temporaries(&left).len(), 1, "{left:?}");
    let staged = std::fs::read_dir(&tmpdir).unwrap().count();
    assert_eq!(staged, 1, "the killed run's staging directory");
    // A user's files, and one named as this (running) test process would name it.
    let me = own_tag();
    let users = [
        ".lab.iso.hvseed-notes.partial".to_string(),
        ".lab.iso.1234.partial".to_string(),
        format!(".lab.iso.hvseed-{me}-AbCdEf.partial"),
    ];
    for u in &users {
        std::fs::write(outdir.join(u), b"mine").unwrap();
    }
    std::fs::write(tmpdir.join(format!("hvseed-iso.{me}-AbCdEf")), b"mine").unwrap();
    let o = crate::iso::iso_cmd("lab-centos6.yaml", &fx.join("centos6.iso"), &out, &agent)
        .env("TMPDIR", &tmpdir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert_eq!(
        err.matches("left by an interrupted run of hvseed").count(),
        2,
        "each removal is logged: {err}"
    );
    let mut want: Vec<String> = users.to_vec();
    want.push("lab.iso".into());
    want.sort();
    assert_eq!(listing(&outdir), want);
    assert_eq!(
        listing(&tmpdir),
        vec![format!("hvseed-iso.{me}-AbCdEf")],
        "only the killed run's staging directory goes"
    );
}

/// A run in another pid namespace (a container sharing the directory; a machine
/// sharing it over NFS is the same case) is live although no process of its pid and
/// start time runs here: a run here leaves its temporaries alone. (On 4834b13 the
/// container's pid 1 was taken for this machine's init, started at another time, and
/// the live run's copy and staging directory were removed.)
#[test]
fn a_live_run_in_another_pid_namespace_keeps_its_temporaries() {
    let Some((fx, agent)) = iso_inputs() else {
        return;
    };
    let userns = Command::new("unshare")
        .args(["-Urpf", "--mount-proc", "--kill-child", "true"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !userns {
        println!("skipped: unshare cannot make a user and pid namespace here");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let (tmpdir, outdir) = tmp_and_out(d.path());
    let out = outdir.join("lab.iso");
    let stand_in = pausing_xorriso("-commit", false);
    let iso = crate::iso::iso_cmd("lab-centos6.yaml", &fx.join("centos6.iso"), &out, &agent);
    // (The stand-in's pid is the namespace's: no GroupKilled here; `--kill-child`
    // ends the namespace with the run.)
    let (_child, _) = start_until_paused(
        Command::new("unshare")
            .args(["-Urpf", "--mount-proc", "--kill-child"])
            .arg(iso.get_program())
            .args(iso.get_args())
            .env("TMPDIR", &tmpdir),
        stand_in.path(),
        Stdio::piped(),
    );
    let before = (listing(&outdir), listing(&tmpdir));
    assert_eq!(hvseed_temporaries(&before.0).len(), 1, "{before:?}");
    assert!(!before.1.is_empty(), "the live run's staging directory");
    // A run here on the same OUT and TMPDIR; it looks for stale temporaries, then
    // stops on an ISO of another release.
    let o = crate::iso::iso_cmd("lab-centos6.yaml", &fx.join("ubuntu1204.iso"), &out, &agent)
        .env("TMPDIR", &tmpdir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert_eq!(
        (listing(&outdir), listing(&tmpdir)),
        before,
        "the live run's temporaries stay: {err}"
    );
}

/// This test process's owner tag as hvseed writes it: `PID-STARTTIME-NODE`.
fn own_tag() -> String {
    let pid = std::process::id().to_string();
    format!("{pid}-{}-{}", stat_field(&pid, 22).unwrap(), node())
}

/// This machine's and pid namespace's part of an owner tag (the same for every
/// process here).
fn node() -> String {
    hvseed::interrupt::owner()
        .rsplit('-')
        .next()
        .unwrap()
        .to_string()
}

// ------------------------------------------------------------------ pxe

/// SIGINT, SIGTERM and SIGHUP while the package tree is extracted: no staging
/// directory, no temporary file in DIR, no xorriso left; a later run completes the
/// tree.
#[test]
fn pxe_interrupted_during_extraction_leaves_no_tree_it_made_and_nothing_running() {
    let Some((inv, iso, agent)) = pxe_inputs() else {
        return;
    };
    for sig in SIGNALS {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("tree");
        let stand_in = pausing_xorriso("/pool", true);
        let (mut child, pgid) = start_until_paused(
            &mut pxe_cmd(&inv, &iso, &out, &agent),
            stand_in.path(),
            Stdio::piped(),
        );
        let _group = GroupKilled(pgid);
        assert_eq!(
            hvseed_temporaries(&listing(&out)).len(),
            1,
            "the staging directory exists"
        );
        send(child.0.id(), sig.0);
        let ended = wait_with_stderr(&mut child.0);
        assert_group_gone(pgid);
        // A first run made --out: it goes whole, staging directory and all.
        assert!(
            !out.exists(),
            "SIG{}: an interrupted first run left {:?}",
            sig.0,
            listing(&out)
        );
        assert_ended_by(&ended, sig);
        run_ok(&mut pxe_cmd(&inv, &iso, &out, &agent));
        assert!(out.join("http/os/pool").is_dir());
    }
}

/// A pxe run killed with SIGKILL leaves its staging directory (and may leave
/// `.hvseed-tmp-*` files in the tree); the next run removes them, and keeps a user's
/// file of the same look.
#[test]
fn pxe_next_run_removes_what_a_killed_run_left() {
    let Some((inv, iso, agent)) = pxe_inputs() else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("tree");
    run_ok(&mut pxe_cmd(&inv, &iso, &out, &agent));
    // A different ISO identity makes the next run extract again; the stand-in
    // pauses it there, and it is killed.
    let stamp = out.join("http/os/.hvseed-stamp.json");
    std::fs::remove_file(&stamp).unwrap();
    let stand_in = pausing_xorriso("/pool", false);
    let (mut child, pgid) = start_until_paused(
        &mut pxe_cmd(&inv, &iso, &out, &agent),
        stand_in.path(),
        Stdio::null(),
    );
    kill_paused(&mut child.0, pgid);
    let staging: Vec<String> = names_in(&out)
        .into_iter()
        .filter(|n| n.starts_with(".hvseed-staging-"))
        .collect();
    assert_eq!(staging.len(), 1, "the killed run's staging directory");
    // What the killed run would have left beside a file it was replacing: its
    // temporary file, named with the run's tag (PID-START) as its staging directory.
    let tag = staging[0]
        .trim_start_matches(".hvseed-staging-")
        .rsplit_once('-')
        .map(|(t, _)| t.to_string())
        .unwrap_or_else(|| "4194303-1".into());
    let dead_tmp = out.join(format!("tftp/pxelinux.cfg/.hvseed-tmp-{tag}-Zz9Yy8"));
    std::fs::write(&dead_tmp, b"half").unwrap();
    let user = out.join("tftp/.hvseed-tmp-notes");
    std::fs::write(&user, b"mine").unwrap();
    // And beside the bundle it was writing.
    let dead_bundle = d.path().join(format!(".hvseed-bundle-{tag}-Qq1Ww2"));
    std::fs::write(&dead_bundle, b"half").unwrap();
    let bundle = d.path().join("tree.tar.gz");
    let o = pxe_cmd(&inv, &iso, &out, &agent)
        .arg("--bundle")
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(bundle.is_file());
    assert!(!dead_bundle.exists());
    let err = String::from_utf8_lossy(&o.stderr);
    let left = listing(&out);
    assert!(
        !left.iter().any(|n| n.contains(".hvseed-staging-")),
        "{left:?}\n{err}"
    );
    assert!(!dead_tmp.exists(), "{err}");
    // The user's file is foreign to the tree: it is kept (and may be reported).
    assert!(user.exists(), "{err}");
}

/// The Ubuntu PXE inventory, its fixture ISO and the agent, or `None` (said loudly) if
/// a tool or the agent is missing.
fn pxe_inputs() -> Option<(PathBuf, PathBuf, PathBuf)> {
    if !crate::pxe::tools() {
        return None;
    }
    let agent = crate::util::agent()?;
    Some((
        root().join(crate::pxe::UBUNTU_INV),
        crate::pxe::ubuntu_iso(),
        agent,
    ))
}

fn pxe_cmd(inv: &Path, iso: &Path, out: &Path, agent: &Path) -> Command {
    let mut c = hvseed();
    c.arg("pxe")
        .arg(inv)
        .arg("--source")
        .arg(iso)
        .arg("--out")
        .arg(out)
        .args(["--http-base", "http://127.0.0.1:1"])
        .arg("--firstboot")
        .arg(agent)
        .env("NO_COLOR", "1");
    c
}

// ------------------------------------------------------------------ render

/// An inventory of `n` hosts (enough for writing the tree to take a while).
fn big_inventory(dir: &Path, n: usize) -> PathBuf {
    let example =
        std::fs::read_to_string(root().join("profiles/examples/lab-centos6.yaml")).unwrap();
    let head = example[..example.find("\nhosts:").unwrap()].replace("prefix: 24", "prefix: 16");
    assert!(n <= 50_000);
    let mut s = format!("{head}\nhosts:\n");
    for i in 0..n {
        s.push_str(&format!(
            "  - fqdn: kvm{i:05}.lab.example.org\n    mac: \"02:00:00:{:02x}:{:02x}:{:02x}\"\n    ip: 192.168.{}.{}\n",
            (i >> 16) & 255,
            (i >> 8) & 255,
            i & 255,
            50 + i / 250,
            1 + i % 250
        ));
    }
    let p = dir.join(format!("big-{n}.yaml"));
    std::fs::write(&p, s).unwrap();
    p
}

/// SIGINT, SIGTERM and SIGHUP while the tree is written (and, with an earlier render
/// in DIR, around moving it aside): no `.DIR.hvseed-*` directory is left and DIR is
/// the earlier render, whole, or the new one, whole.
/// `hvseed render INV --out OUT`.
fn render_cmd(inv: &Path, out: &Path) -> Command {
    let mut c = hvseed();
    c.arg("render").arg(inv).arg("--out").arg(out);
    c
}

#[test]
fn render_interrupted_while_writing_leaves_no_temporary_and_a_whole_dir() {
    let d = tempfile::tempdir().unwrap();
    let mut n = 2000;
    for sig in SIGNALS {
        let parent = d.path().join(format!("p-{}", sig.0));
        std::fs::create_dir(&parent).unwrap();
        let out = parent.join("out");
        run_ok(&mut render_cmd(
            &root().join("profiles/examples/lab-centos6.yaml"),
            &out,
        ));
        let before = listing(&out);
        // The run is interrupted once its temporary directory appears; a run that
        // ends first is repeated with more hosts.
        let mut interrupted = None;
        for _ in 0..5 {
            let inv = big_inventory(d.path(), n);
            let mut child = KillOnDrop(
                render_cmd(&inv, &out)
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap(),
            );
            let tmp_seen = loop {
                if std::fs::read_dir(&parent).unwrap().flatten().any(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with(".out.hvseed-tmp-")
                }) {
                    break true;
                }
                if child.0.try_wait().unwrap().is_some() {
                    break false;
                }
                std::thread::sleep(Duration::from_millis(1));
            };
            if tmp_seen {
                send(child.0.id(), sig.0);
                let status_err = wait_with_stderr(&mut child.0);
                // Done before the signal arrived: the tree is complete; else 128+sig.
                if status_err.0.success() {
                    n *= 2;
                    continue;
                }
                interrupted = Some(status_err);
                break;
            }
            n *= 2;
        }
        let Some(ended) = interrupted else {
            panic!("no render lasted long enough to be interrupted");
        };
        assert_eq!(names_in(&parent), vec!["out".to_string()], "SIG{}", sig.0);
        let now = listing(&out);
        let manifest = std::fs::read_to_string(out.join(".hvseed-render")).unwrap();
        let listed = manifest.lines().count();
        assert!(
            now == before || listed >= n,
            "DIR is neither the earlier render nor a whole new one ({} files)",
            now.len()
        );
        for rel in manifest.lines() {
            assert!(out.join(rel).is_file(), "{rel} listed but missing");
        }
        assert_ended_by(&ended, sig);
    }
}

/// What a render killed with SIGKILL leaves beside DIR goes with the next run; a
/// user's directory of the same look stays; a DIR the killed run had moved aside is
/// put back first.
#[test]
fn render_next_run_removes_what_a_killed_run_left() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out");
    let inv = root().join("profiles/examples/lab-centos6.yaml");
    run_ok(&mut render_cmd(&inv, &out));
    let before = listing(&out);
    // A dead run's tag: a finished process's pid and start time.
    let mut dead = Command::new("sleep").arg("0.2").spawn().unwrap();
    let pid = dead.id().to_string();
    let tag = format!("{pid}-{}-{}", stat_field(&pid, 22).unwrap(), node());
    dead.wait().unwrap();
    // The killed run had written half a new tree and moved DIR aside.
    let half = d.path().join(format!(".out.hvseed-tmp-{tag}-AbC123"));
    std::fs::create_dir_all(half.join("hosts")).unwrap();
    let aside = d.path().join(format!(".out.hvseed-old-{tag}-DeF456"));
    std::fs::create_dir(&aside).unwrap();
    std::fs::rename(&out, aside.join("old")).unwrap();
    let user = d.path().join(".out.hvseed-tmp-mine");
    std::fs::create_dir(&user).unwrap();
    let running = d
        .path()
        .join(format!(".out.hvseed-tmp-{}-XyZ789", own_tag()));
    std::fs::create_dir(&running).unwrap();
    // Only a check of DIR: the next render finds it back first.
    let o = render_cmd(&root().join("tests/fixtures/pxe/ubuntu1204.yaml"), &out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("put back"), "{err}");
    assert_ne!(listing(&out), before, "the new render is in place");
    let mut names = names_in(d.path());
    names.sort();
    let mut want = vec![
        ".out.hvseed-tmp-mine".to_string(),
        format!(".out.hvseed-tmp-{}-XyZ789", own_tag()),
        "out".to_string(),
    ];
    want.sort();
    assert_eq!(names, want);
}

// ------------------------------------------------------------------ output errors

/// A pipe whose reading end is already closed: writes to it fail with EPIPE. (The
/// reading end is a child's stdin; the child has exited.)
fn closed_pipe() -> OwnedFd {
    let mut reader = Command::new("true").stdin(Stdio::piped()).spawn().unwrap();
    let w = reader.stdin.take().unwrap();
    reader.wait().unwrap();
    w.into()
}

fn dev_full() -> Stdio {
    std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap()
        .into()
}

/// Runs hvseed with stdout/stderr as given; returns the exit code.
fn code_with(args: &[&std::ffi::OsStr], stdout: Stdio, stderr: Stdio) -> Option<i32> {
    hvseed()
        .args(args)
        .stdout(stdout)
        .stderr(stderr)
        .status()
        .unwrap()
        .code()
}

/// Every verb with stdout and stderr a full disk (/dev/full) or a closed pipe: no panic
/// (exit 101), and the exit code says whether the work was done: `check` its verdict,
/// `render` 0 with the tree written, a refused input 1, `--help` 1 (its text is the
/// product).
#[test]
fn verbs_with_a_full_or_closed_output_exit_with_their_own_status() {
    let d = tempfile::tempdir().unwrap();
    let good = root().join("profiles/examples/lab-centos6.yaml");
    let bad = d.path().join("bad.yaml");
    std::fs::write(&bad, "version: 1\ncluster: x\nhosts: [}\n").unwrap();
    type MakeOutput = fn() -> Stdio;
    let outs: [(&str, MakeOutput); 2] = [
        ("/dev/full", dev_full),
        ("a closed pipe", || closed_pipe().into()),
    ];
    for (what, make) in outs {
        for name in ["stderr", "stdout", "both"] {
            let ctx = format!("{name} to {what}");
            let run = |args: &[&std::ffi::OsStr]| {
                let (o, e) = match name {
                    "stdout" => (make(), Stdio::null()),
                    "stderr" => (Stdio::null(), make()),
                    _ => (make(), make()),
                };
                code_with(args, o, e)
            };
            assert_eq!(run(&["check".as_ref(), good.as_os_str()]), Some(0), "{ctx}");
            assert_eq!(run(&["check".as_ref(), bad.as_os_str()]), Some(1), "{ctx}");
            let out = d.path().join(format!("r-{name}-{}", what.len()));
            assert_eq!(
                run(&[
                    "render".as_ref(),
                    good.as_os_str(),
                    "--out".as_ref(),
                    out.as_os_str()
                ]),
                Some(0),
                "{ctx}"
            );
            assert!(out.join(".hvseed-render").is_file(), "{ctx}");
            assert_eq!(
                run(&[
                    "render".as_ref(),
                    bad.as_os_str(),
                    "--out".as_ref(),
                    out.as_os_str()
                ]),
                Some(1),
                "{ctx}"
            );
            for verb in ["iso", "pxe"] {
                let never = d.path().join("never");
                let mut args: Vec<&std::ffi::OsStr> = vec![
                    verb.as_ref(),
                    bad.as_os_str(),
                    "--source".as_ref(),
                    bad.as_os_str(),
                    "--out".as_ref(),
                    never.as_os_str(),
                ];
                if verb == "pxe" {
                    args.push("--http-base".as_ref());
                    args.push("http://127.0.0.1:1".as_ref());
                }
                assert_eq!(run(&args), Some(1), "{verb} {ctx}");
                assert!(!never.exists());
            }
            assert_eq!(
                run(&["serve".as_ref(), d.path().join("none").as_os_str()]),
                Some(1),
                "{ctx}"
            );
            let help = run(&["--help".as_ref()]);
            assert_eq!(help, Some(if name == "stderr" { 0 } else { 1 }), "{ctx}");
        }
    }
    // With stdout full and stderr readable: no panic message, the work done.
    let r = d.path().join("r-last");
    for args in [
        vec!["check", good.to_str().unwrap()],
        vec![
            "render",
            good.to_str().unwrap(),
            "--out",
            r.to_str().unwrap(),
        ],
    ] {
        let o = hvseed()
            .args(&args)
            .stdout(dev_full())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

// ------------------------------------------------------------------ serve

/// A free port on 127.0.0.1 (bound, read, released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn serve_tree() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("http/hosts")).unwrap();
    std::fs::write(d.path().join("http/hello.txt"), b"hello from the tree\n").unwrap();
    d
}

/// `hvseed serve TREE` with `args` on a free port of 127.0.0.1, its stderr a pipe the
/// caller takes.
fn serve_with_piped_stderr(tree: &Path, args: &[&str]) -> (std::net::SocketAddr, KillOnDrop) {
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let child = hvseed()
        .arg("serve")
        .arg(tree)
        .args(["--listen", &addr.to_string()])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (addr, KillOnDrop(child))
}

fn get_ok(addr: std::net::SocketAddr, i: usize) {
    let r = exchange(
        addr,
        b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 200, "request {i}");
    assert_eq!(r.body, b"hello from the tree\n", "request {i}");
    let r = exchange(
        addr,
        b"GET /missing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 404, "request {i}");
}

/// Waits until `addr` accepts connections (the server's log may be unreadable).
fn wait_listening(addr: std::net::SocketAddr, child: &mut Child) {
    let start = Instant::now();
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(child.try_wait().unwrap().is_none(), "hvseed serve exited");
        assert!(start.elapsed() < Duration::from_secs(30), "never listened");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `serve` logs every request; once its stderr is a closed pipe, it keeps answering
/// every request correctly (before the fix, four answers, then silence).
#[test]
fn serve_answers_after_its_stderr_pipe_closed() {
    let tree = serve_tree();
    let (addr, mut child) = serve_with_piped_stderr(tree.path(), &["-v"]);
    let mut log = child.0.stderr.take().unwrap();
    let mut first = [0u8; 16];
    log.read_exact(&mut first).unwrap();
    wait_listening(addr, &mut child.0);
    for i in 0..20 {
        get_ok(addr, i);
    }
    drop(log);
    for i in 20..300 {
        get_ok(addr, i);
    }
    assert!(child.0.try_wait().unwrap().is_none(), "serve exited");
}

/// `serve` started with stderr a closed pipe, or with no stderr at all, serves.
#[test]
fn serve_starts_and_answers_without_a_usable_stderr() {
    let tree = serve_tree();
    for how in ["closed pipe", "closed descriptor"] {
        let port = free_port();
        let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut cmd = match how {
            "closed pipe" => {
                let mut c = hvseed();
                c.stderr(Stdio::from(closed_pipe()));
                c
            }
            _ => {
                let mut c = Command::new("sh");
                c.args(["-c", "exec \"$0\" \"$@\" 2>&-"])
                    .arg(env!("CARGO_BIN_EXE_hvseed"))
                    .stderr(Stdio::null());
                c
            }
        };
        let child = cmd
            .arg("serve")
            .arg(tree.path())
            .args(["--listen", &addr.to_string(), "-v"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let mut child = KillOnDrop(child);
        wait_listening(addr, &mut child.0);
        for i in 0..100 {
            get_ok(addr, i);
        }
        assert!(
            child.0.try_wait().unwrap().is_none(),
            "serve exited ({how})"
        );
    }
}

/// `iso` and `pxe` with stdout and stderr a full disk or a closed pipe: the work is
/// done and the exit status says so (0), whatever happened to the log.
#[test]
fn iso_and_pxe_with_a_full_or_closed_output_do_their_work() {
    let Some((fx, agent)) = iso_inputs() else {
        return;
    };
    if !crate::pxe::tools() {
        return;
    }
    let inv = root().join(crate::pxe::UBUNTU_INV);
    let pxe_iso = crate::pxe::ubuntu_iso();
    type MakeOutput = fn() -> Stdio;
    let outs: [(&str, MakeOutput); 2] = [
        ("/dev/full", dev_full),
        ("a closed pipe", || closed_pipe().into()),
    ];
    for (what, make) in outs {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("lab.iso");
        let st = crate::iso::iso_cmd("lab-centos6.yaml", &fx.join("centos6.iso"), &out, &agent)
            .stdout(make())
            .stderr(make())
            .status()
            .unwrap();
        assert_eq!(st.code(), Some(0), "iso, output to {what}");
        assert!(out.is_file(), "iso, output to {what}");
        let tree = d.path().join("tree");
        let st = pxe_cmd(&inv, &pxe_iso, &tree, &agent)
            .stdout(make())
            .stderr(make())
            .status()
            .unwrap();
        assert_eq!(st.code(), Some(0), "pxe, output to {what}");
        assert!(tree.join("SHA256SUMS").is_file(), "pxe, output to {what}");
    }
}

/// `serve` with a stderr pipe that nobody reads (it fills after 64 KiB of log lines):
/// it keeps answering every request; the lines that did not fit are dropped.
#[test]
fn serve_answers_while_nobody_reads_its_stderr() {
    let tree = serve_tree();
    let (addr, mut child) = serve_with_piped_stderr(tree.path(), &["-v"]);
    // Held open, not read for now.
    let log = child.0.stderr.take().unwrap();
    wait_listening(addr, &mut child.0);
    // Each request logs a line of well over 50 bytes: 3,000 pairs of them overflow a
    // pipe (64 KiB) and the queue (4,096 lines) behind it.
    for i in 0..3000 {
        get_ok(addr, i);
    }
    assert!(child.0.try_wait().unwrap().is_none(), "serve exited");
    // Read from now on: a line says how many lines were lost.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(log).lines().map_while(Result::ok) {
            if line.contains("log line(s) dropped") {
                let _ = tx.send(line);
            }
        }
    });
    let start = Instant::now();
    let line = loop {
        get_ok(addr, 0);
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(100)) {
            break l;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no line about dropped log lines"
        );
    };
    let n: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    assert!(n > 0, "{line}");
}

/// Resident memory of `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

/// The log queue is bounded in bytes, not only in lines: while nobody reads serve's
/// stderr, requests for long paths (each logged, a line of some 60 KiB) do not pile
/// up hundreds of MiB (4,096 of them held 250 MiB on 4834b13).
#[test]
fn serve_log_queue_holds_little_memory_while_nobody_reads_its_stderr() {
    let tree = serve_tree();
    let (addr, mut child) = serve_with_piped_stderr(tree.path(), &[]);
    let _log = child.0.stderr.take().unwrap();
    wait_listening(addr, &mut child.0);
    let before = rss_kib(child.0.id());
    let long = "a".repeat(60 * 1024);
    let request = format!("GET /{long} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    for i in 0..4500 {
        let r = exchange(addr, request.as_bytes());
        assert_eq!(r.status, 404, "request {i}");
    }
    let grown = rss_kib(child.0.id()).saturating_sub(before);
    assert!(
        grown < 64 * 1024,
        "serve grew by {} MiB while its stderr was not read",
        grown / 1024
    );
}
