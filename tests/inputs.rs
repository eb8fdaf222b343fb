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
    let ok = render(&inv, &tmp.path().join("elsewhere"), &[]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
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
    let bytes = copy(&root().join("profiles/centos6/post.sh"), &post);
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
    let o = iso(&tmp.path().join("lab.iso"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn pxe_bundle_and_tree_never_overwrite_an_input() {
    if !crate::pxe::tools() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
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
    let o = pxe(&inv, &tree, Some(&tmp.path().join("tree.tar.gz")));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(std::fs::read(&src).unwrap() == src_bytes);
}

/// debian12 takes d-i's netboot files: a `--out` inside that directory is refused, and
/// the message names it as the netboot directory it is, not as an ISO.
#[test]
fn pxe_tree_never_lands_inside_its_netboot_directory() {
    if !crate::pxe::tools() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
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
    let o = pxe(&tmp.path().join("tree"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}
