//! No verb writes over its own inputs (issue 10, defect 1): an output that is an
//! input, holds one, or lies inside one is refused before anything is written, whether
//! it is named by the same path, a symlink, a hard link or a `..` detour. Each case
//! runs with inputs that would otherwise succeed, so the refusal is what keeps them.

use std::path::Path;
use std::process::Output;

use crate::util::{agent, hvseed, root};

fn copy(from: &Path, to: &Path) -> Vec<u8> {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(from, to).unwrap();
    std::fs::read(to).unwrap()
}

/// Asserts hvseed refused with the overlap message and `input` still holds `bytes`.
fn refused(o: &Output, says: &str, input: &Path, bytes: &[u8]) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "exit status; stderr:\n{err}");
    assert!(err.contains(says), "expected `{says}` in:\n{err}");
    assert!(err.contains("nothing was written"), "{err}");
    assert!(
        std::fs::read(input).unwrap() == bytes,
        "{} was changed",
        input.display()
    );
}

/// Asserts that `o` succeeded: the runs that show the inputs would work but for the
/// overlap (the refused command with its output elsewhere).
fn succeeded(o: &Output) {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// A scratch directory for a `hvseed pxe` case, or `None` (the case does not run)
/// when the tools it needs are missing.
fn pxe_scratch() -> Option<tempfile::TempDir> {
    crate::pxe::tools().then(|| tempfile::tempdir().unwrap())
}

fn render(inv: &Path, out: &Path, extra: &[&str]) -> Output {
    hvseed()
        .arg("render")
        .arg(inv)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn render_never_replaces_the_directory_that_holds_its_inventory() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let inv = out.join("lab.yaml");
    let bytes = copy(&root().join("profiles/examples/lab-centos6.yaml"), &inv);
    // A first render into a fresh sibling works (the inventory is valid).
    succeeded(&render(&inv, &tmp.path().join("elsewhere"), &[]));
    // --force on the directory holding the inventory: refused, by path, via `..`, and
    // via a symlink to the directory.
    let link = tmp.path().join("out-link");
    std::os::unix::fs::symlink(&out, &link).unwrap();
    // `new/..` inside it: `new` does not exist, the run would make it and climb back.
    for o in [out.clone(), out.join("../out"), link, out.join("new/..")] {
        let r = render(&inv, &o, &["--force"]);
        refused(&r, "contains the inventory", &inv, &bytes);
    }
    // The inventory named through a symlink that points into --out.
    let via = tmp.path().join("via.yaml");
    std::os::unix::fs::symlink(&inv, &via).unwrap();
    refused(
        &render(&via, &out, &["--force"]),
        "contains the inventory",
        &inv,
        &bytes,
    );
    assert_eq!(
        std::fs::read_dir(&out).unwrap().count(),
        1,
        "--out was written"
    );
}

#[test]
fn render_never_writes_inside_its_templates() {
    let tmp = tempfile::tempdir().unwrap();
    let templates = tmp.path().join("templates");
    let post = templates.join("post.sh");
    let bytes = copy(&root().join("profiles/anaconda/post.sh"), &post);
    let r = render(
        &root().join("profiles/examples/lab-centos6.yaml"),
        &templates.join("out"),
        &["--templates", templates.to_str().unwrap()],
    );
    refused(&r, "is inside the --templates", &post, &bytes);
    assert!(!templates.join("out").exists());
}

#[test]
fn iso_out_is_never_the_inventory_the_source_or_the_agent() {
    let (Some(fixtures), Some(agent)) = (crate::iso::fixtures(), agent()) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let inv = tmp.path().join("lab.yaml");
    let inv_bytes = copy(&root().join("profiles/examples/lab-centos6.yaml"), &inv);
    let src = fixtures.join("centos6.iso");
    let my_agent = tmp.path().join("hvseed-firstboot");
    let agent_bytes = copy(&agent, &my_agent);
    let hard = tmp.path().join("agent-hard-link");
    std::fs::hard_link(&my_agent, &hard).unwrap();
    let sym = tmp.path().join("inventory-symlink.iso");
    std::os::unix::fs::symlink(&inv, &sym).unwrap();
    let iso = |out: &Path| {
        hvseed()
            .arg("iso")
            .arg(&inv)
            .arg("--source")
            .arg(&src)
            .arg("--out")
            .arg(out)
            .arg("--firstboot")
            .arg(&my_agent)
            .output()
            .unwrap()
    };
    refused(&iso(&inv), "is the inventory", &inv, &inv_bytes);
    refused(&iso(&sym), "is the inventory", &inv, &inv_bytes);
    refused(
        &iso(&hard),
        "is the first-boot agent",
        &my_agent,
        &agent_bytes,
    );
    refused(
        &iso(&my_agent),
        "is the first-boot agent",
        &my_agent,
        &agent_bytes,
    );
    // The control: the same command with a fresh --out works.
    succeeded(&iso(&tmp.path().join("lab.iso")));
}

#[test]
fn pxe_bundle_and_tree_never_overwrite_an_input() {
    let Some(tmp) = pxe_scratch() else { return };
    let inv = tmp.path().join("lab.yaml");
    let inv_bytes = copy(&root().join("tests/fixtures/pxe/ubuntu1204.yaml"), &inv);
    let src = tmp.path().join("source.iso");
    let src_bytes = copy(&crate::pxe::ubuntu_iso(), &src);
    let pxe = |inv: &Path, out: &Path, bundle: Option<&Path>| {
        let mut c = hvseed();
        c.arg("pxe")
            .arg(inv)
            .arg("--source")
            .arg(&src)
            .arg("--out")
            .arg(out)
            .args(["--http-base", "http://127.0.0.1:1"])
            .arg("--firstboot")
            .arg(crate::util::agent().unwrap());
        if let Some(b) = bundle {
            c.arg("--bundle").arg(b);
        }
        c.output().unwrap()
    };
    let tree = tmp.path().join("tree");
    refused(&pxe(&inv, &tree, Some(&src)), "--bundle", &src, &src_bytes);
    refused(
        &pxe(&inv, &tree, Some(&inv)),
        "is the inventory",
        &inv,
        &inv_bytes,
    );
    // The same through a directory the run would create, then `..`: the bundle's
    // parent is made before the bundle is renamed over `new/../lab.yaml`.
    let detour = tmp.path().join("new/../lab.yaml");
    refused(
        &pxe(&inv, &tree, Some(&detour)),
        "is the inventory",
        &inv,
        &inv_bytes,
    );
    assert!(!tree.exists(), "the refused runs created --out");
    assert!(
        !tmp.path().join("new").exists(),
        "the refused run made new/"
    );
    // A tree that holds the inventory (or the ISO) is refused as --out.
    let holder = tmp.path().join("holder");
    let inside = holder.join("http/lab.yaml");
    let inside_bytes = copy(&inv, &inside);
    refused(
        &pxe(&inside, &holder, None),
        "contains the inventory",
        &inside,
        &inside_bytes,
    );
    refused(
        &pxe(&inside, &holder.join("new/.."), None),
        "contains the inventory",
        &inside,
        &inside_bytes,
    );
    assert!(!holder.join("new").exists(), "the refused run made new/");
    // The control: with a bundle elsewhere the same run succeeds.
    succeeded(&pxe(&inv, &tree, Some(&tmp.path().join("tree.tar.gz"))));
    assert!(std::fs::read(&src).unwrap() == src_bytes);
}

/// debian12 takes d-i's netboot files: a `--out` inside that directory is refused, and
/// the message names it as the netboot directory it is, not as an ISO.
#[test]
fn pxe_tree_never_lands_inside_its_netboot_directory() {
    let Some(tmp) = pxe_scratch() else { return };
    let netboot = tmp.path().join("netboot");
    let cp = std::process::Command::new("cp")
        .arg("-r")
        .arg(crate::pxe::NETBOOT)
        .arg(&netboot)
        .status()
        .unwrap();
    assert!(cp.success());
    let version = netboot.join("version.info");
    let bytes = std::fs::read(&version).unwrap();
    let pxe = |out: &Path| {
        hvseed()
            .arg("pxe")
            .arg(root().join(crate::pxe::DEBIAN_INV))
            .arg("--source")
            .arg(&netboot)
            .arg("--out")
            .arg(out)
            .args(["--http-base", "http://127.0.0.1:1"])
            .arg("--firstboot")
            .arg(crate::util::agent().unwrap())
            .output()
            .unwrap()
    };
    let inside = netboot.join("tree");
    refused(
        &pxe(&inside),
        "is inside the --source netboot directory",
        &version,
        &bytes,
    );
    assert!(!inside.exists(), "the refused run created --out");
    // The control: the same run with --out elsewhere succeeds.
    succeeded(&pxe(&tmp.path().join("tree")));
}

/// pxelinux.0 and ldlinux.c32 are inputs too, wherever `--pxelinux-dir` and
/// `--syslinux-modules` point: a `--bundle` that is one of them (by name or a hard
/// link) and an `--out` that is a directory holding one are refused.
#[test]
fn pxe_never_writes_over_its_pxelinux_or_bios_modules() {
    let Some(tmp) = pxe_scratch() else { return };
    let pxelinux_dir = tmp.path().join("pxelinux");
    let modules_dir = tmp.path().join("bios");
    let pxelinux = pxelinux_dir.join("pxelinux.0");
    let ldlinux = modules_dir.join("ldlinux.c32");
    let pxelinux_bytes = copy(Path::new("/usr/lib/PXELINUX/pxelinux.0"), &pxelinux);
    // The whole modules directory: its version is read from ldlinux.c32's siblings too.
    let cp = std::process::Command::new("cp")
        .arg("-r")
        .arg("/usr/lib/syslinux/modules/bios")
        .arg(&modules_dir)
        .status()
        .unwrap();
    assert!(cp.success());
    let ldlinux_bytes = std::fs::read(&ldlinux).unwrap();
    let listing = |dir: &Path| {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        names
    };
    let modules = listing(&modules_dir);
    let hard = tmp.path().join("pxelinux-hard-link");
    std::fs::hard_link(&pxelinux, &hard).unwrap();
    let pxe = |out: &Path, bundle: Option<&Path>| {
        let mut c = hvseed();
        c.arg("pxe")
            .arg(root().join("tests/fixtures/pxe/ubuntu1204.yaml"))
            .arg("--source")
            .arg(crate::pxe::ubuntu_iso())
            .arg("--out")
            .arg(out)
            .args(["--http-base", "http://127.0.0.1:1"])
            .arg("--firstboot")
            .arg(crate::util::agent().unwrap())
            .arg("--pxelinux-dir")
            .arg(&pxelinux_dir)
            .arg("--syslinux-modules")
            .arg(&modules_dir);
        if let Some(b) = bundle {
            c.arg("--bundle").arg(b);
        }
        c.output().unwrap()
    };
    let tree = tmp.path().join("tree");
    for b in [&pxelinux, &hard] {
        refused(
            &pxe(&tree, Some(b)),
            "is the pxelinux.0",
            &pxelinux,
            &pxelinux_bytes,
        );
    }
    refused(
        &pxe(&tree, Some(&ldlinux)),
        "is the ldlinux.c32",
        &ldlinux,
        &ldlinux_bytes,
    );
    // --out: the pxelinux directory itself, and the modules directory through a
    // directory the run would create and `..`.
    refused(
        &pxe(&pxelinux_dir, None),
        "contains the pxelinux.0",
        &pxelinux,
        &pxelinux_bytes,
    );
    refused(
        &pxe(&modules_dir.join("new/.."), None),
        "contains the ldlinux.c32",
        &ldlinux,
        &ldlinux_bytes,
    );
    assert!(!tree.exists(), "the refused runs created --out");
    assert!(
        !modules_dir.join("new").exists(),
        "the refused run made new/"
    );
    assert_eq!(
        listing(&pxelinux_dir),
        ["pxelinux.0"],
        "pxelinux/ was written"
    );
    assert_eq!(listing(&modules_dir), modules, "bios/ was written");
    // The control: the same options with the tree and bundle elsewhere succeed, and the
    // tree serves the copies named by the options.
    succeeded(&pxe(&tree, Some(&tmp.path().join("tree.tar.gz"))));
    assert!(std::fs::read(tree.join("tftp/pxelinux.0")).unwrap() == pxelinux_bytes);
    assert!(std::fs::read(tree.join("tftp/ldlinux.c32")).unwrap() == ldlinux_bytes);
    assert!(std::fs::read(&pxelinux).unwrap() == pxelinux_bytes);
}

/// Runs `cmd` in a mount namespace of its own (`unshare -m`, mounts private) in which
/// `dir` is bind-mounted on `view`: the mount ends with the command and is never seen
/// outside it.
fn with_bind_mount(dir: &Path, view: &Path, cmd: &mut std::process::Command) -> Output {
    let mut c = std::process::Command::new("unshare");
    c.args(["--mount", "--propagation", "private", "sh", "-ec"])
        .arg("mount --bind \"$1\" \"$2\"; shift 2; exec \"$@\"")
        .arg("sh")
        .arg(dir)
        .arg(view)
        .arg(cmd.get_program())
        .args(cmd.get_args());
    c.output().unwrap()
}

/// A bind mount makes one directory reachable under two paths: an output named by
/// the other path is still the input's directory (same device and inode) and is
/// refused. Runs in a private mount namespace (needs root and `unshare`).
#[test]
fn an_input_directory_under_a_bind_mount_is_still_an_input() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        crate::support::missing(
            "root (a bind mount in a private mount namespace)",
            "run the suite as root",
        );
        return;
    }
    if !crate::support::require_tool("unshare", "util-linux") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("in");
    let inv = dir.join("lab.yaml");
    let inv_bytes = copy(&root().join("profiles/examples/lab-centos6.yaml"), &inv);
    let view = tmp.path().join("view");
    std::fs::create_dir(&view).unwrap();
    let render = |inv: &Path, out: &Path, extra: &[&std::ffi::OsStr]| {
        let mut c = hvseed();
        c.arg("render").arg(inv).arg("--out").arg(out).args(extra);
        c
    };
    let force: &[&std::ffi::OsStr] = &["--force".as_ref()];
    // --out is the inventory's directory under the mount's path, and the other way
    // round: the inventory named under the mount, --out its real directory.
    for (inv_path, out) in [(&inv, &view), (&view.join("lab.yaml"), &dir)] {
        let o = with_bind_mount(&dir, &view, &mut render(inv_path, out, force));
        refused(&o, "contains the inventory", &inv, &inv_bytes);
    }
    // --out under the mount's path of the --templates directory: inside it.
    let templates = tmp.path().join("templates");
    let post = templates.join("post.sh");
    let post_bytes = copy(&root().join("profiles/anaconda/post.sh"), &post);
    let o = with_bind_mount(
        &templates,
        &view,
        &mut render(
            &inv,
            &view.join("out"),
            &["--templates".as_ref(), templates.as_os_str()],
        ),
    );
    refused(&o, "is inside the --templates", &post, &post_bytes);
    assert!(
        !templates.join("out").exists(),
        "the refused run wrote out/"
    );
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        1,
        "in/ was written"
    );
    // The control: with the mount in place, --out elsewhere works.
    let out = tmp.path().join("out");
    succeeded(&with_bind_mount(
        &dir,
        &view,
        &mut render(&view.join("lab.yaml"), &out, &[]),
    ));
    assert!(out.is_dir());
    // The mounts stayed in their namespaces.
    assert_eq!(
        std::fs::read_dir(&view).unwrap().count(),
        0,
        "a mount leaked"
    );
}
