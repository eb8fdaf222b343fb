//! The Ubuntu 22.04/24.04 targets' autoinstall files (`hvseed render`), checked
//! against their consumers: every NoCloud user-data by Debian's cloud-init (`cloud-init
//! schema`), every install-time `network:` by netplan's own generator, every file
//! re-read as YAML 1.1 (PyYAML, as subiquity and cloud-init read it) with its types
//! asserted against subiquity's autoinstall reference, the picker against a fake sysfs
//! and /cdrom, the late command against a fake /target, and golden snapshots.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use hvseed::inventory::*;
use hvseed::render::{render_tree, RenderedTree};

use crate::render::{
    assert_agent_applied, assert_plan_and_keys_installed, cd, fake_media, fake_sysfs, hostile,
    http, lab, lab_variant, run_script, sh_syntax_ok, text, tmpdir, write_exec, write_tree,
};
use crate::util;

/// A real ASCII-armoured OpenPGP key made for the tests (`gpg --quick-gen-key`), as
/// a user pastes CloudStack's release key.
pub(crate) const LAB_KEY_BLOCK: &str = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEaxdbshYJKwYBBAHaRw8BAQdA6mMhDxXckwkZEwm8P1KexEKlljfhT37Vu0U9\nc8G3XWq0OWh2c2VlZCBleGFtcGxlIGtleSAocmVwbGFjZSBtZSkgPGV4YW1wbGVA\nbGFiLmV4YW1wbGUub3JnPoiQBBMWCAA4FiEEvgHVFMNToZC7EnH5Tg3uAySCje8F\nAmsXW7ICGwMFCwkIBwIGFQoJCAsCBBYCAwECHgECF4AACgkQTg3uAySCje+7YwEA\nxE1iL15vE7VMsQFJSn3x4QrEu18tJkOPfwHbBeQ4o/sBAJcsKPQYzXeBxhHkciJl\nV5V/eQmMqGnz22H2QCSmdxMJ\n=1pfW\n-----END PGP PUBLIC KEY BLOCK-----";

const UBUNTU: [Os; 2] = [Os::Ubuntu2204, Os::Ubuntu2404];

fn inventories() -> Vec<(String, Inventory, hvseed::render::RenderOptions)> {
    let mut v = Vec::new();
    for os in UBUNTU {
        v.push((format!("lab-{os}"), lab(os), cd()));
        v.push((format!("variant-{os}"), lab_variant(os), http()));
        v.push((format!("hostile-{os}"), hostile(os), cd()));
    }
    v
}

/// The file parsed as YAML 1.1 by PyYAML's `safe_load` (what subiquity and cloud-init
/// use), as JSON.
fn yaml11(file: &Path) -> Value {
    let out = util::run_ok(Command::new("python3").args([
        "-c",
        "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1], encoding='utf-8'))))",
    ]).arg(file));
    serde_json::from_str(&out).unwrap()
}

/// Host `fqdn`'s autoinstall body as subiquity reads it: the bare body on a CD tree,
/// the seed's `autoinstall:` (its only key, after the `#cloud-config` header, with a
/// `meta-data` beside it) on an HTTP tree.
fn body_of(tree: &RenderedTree, fqdn: &str) -> Value {
    let dir = tmpdir();
    let d = format!("hosts/{fqdn}");
    if let Some(body) = tree.get(&format!("{d}/autoinstall.yaml")) {
        assert!(
            !tree.contains_key(&format!("{d}/user-data")),
            "{fqdn}: both forms"
        );
        let f = dir.path().join("autoinstall.yaml");
        std::fs::write(&f, body).unwrap();
        return yaml11(&f);
    }
    let seed = text(tree, &format!("{d}/user-data"));
    assert!(seed.starts_with("#cloud-config\n"), "{fqdn}");
    let f = dir.path().join("user-data");
    std::fs::write(&f, seed).unwrap();
    let user_data = yaml11(&f);
    let keys: Vec<&String> = user_data.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["autoinstall"], "{fqdn}");
    let m = dir.path().join("meta-data");
    std::fs::write(&m, &tree[&format!("{d}/meta-data")]).unwrap();
    assert_eq!(
        yaml11(&m)["instance-id"],
        format!("hvseed-{fqdn}"),
        "{fqdn}"
    );
    user_data["autoinstall"].clone()
}

fn rendered(
    inv: &Inventory,
    opts: &hvseed::render::RenderOptions,
) -> (RenderedTree, tempfile::TempDir) {
    let tree = render_tree(inv, opts).unwrap();
    let dir = tmpdir();
    write_tree(&tree, dir.path());
    (tree, dir)
}

/// Top-level keys of subiquity's autoinstall reference that hvseed writes (and all
/// it may write: `interactive-sections` would bring up prompts, `early-commands`
/// belong to the fleet seed only).
const BODY_KEYS: &[&str] = &[
    "version",
    "locale",
    "keyboard",
    "timezone",
    "refresh-installer",
    "identity",
    "ssh",
    "user-data",
    "storage",
    "network",
    "apt",
    "packages",
    "late-commands",
    "shutdown",
];

/// A key path (`a.b.c`, `*` for any key or index) and the kind of value it must hold.
type Typed = (&'static str, fn(&Value) -> bool);

/// Every leaf of `v` is a string, except the paths in `typed` (`a.b.c`, `*` for any
/// key or index), which must hold a JSON value of the given kind.
fn assert_leaves(v: &Value, path: &str, typed: &[Typed], what: &str) {
    let matches = |pat: &str| {
        let (p, q): (Vec<&str>, Vec<&str>) = (pat.split('.').collect(), path.split('.').collect());
        p.len() == q.len() && p.iter().zip(&q).all(|(a, b)| *a == "*" || a == b)
    };
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                assert_leaves(
                    x,
                    &format!("{path}{}{k}", if path.is_empty() { "" } else { "." }),
                    typed,
                    what,
                );
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                assert_leaves(x, &format!("{path}.{i}"), typed, what);
            }
        }
        leaf => match typed.iter().find(|(p, _)| matches(p)) {
            Some((_, ok)) => assert!(ok(leaf), "{what}: {path} = {leaf}"),
            None => assert!(leaf.is_string(), "{what}: {path} = {leaf} is not a string"),
        },
    }
}

const TYPED: &[Typed] = &[
    ("version", |v| v == &Value::from(1)),
    ("refresh-installer.update", Value::is_boolean),
    ("ssh.install-server", Value::is_boolean),
    ("ssh.allow-pw", Value::is_boolean),
    ("user-data.disable_root", |v| v == &Value::Bool(false)),
    ("network.version", |v| v == &Value::from(2)),
    ("network.ethernets.*.dhcp4", Value::is_boolean),
    ("network.ethernets.*.dhcp6", Value::is_boolean),
    ("network.vlans.*.id", Value::is_u64),
    ("apt.geoip", Value::is_boolean),
];

#[test]
fn bodies_read_back_as_yaml_1_1_with_the_inventorys_values() {
    for (name, inv, opts) in inventories() {
        let (tree, dir) = rendered(&inv, &opts);
        for h in &inv.hosts {
            let what = format!("{name}: {}", h.fqdn);
            let body = body_of(&tree, &h.fqdn);
            let keys: Vec<&str> = body
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            for k in &keys {
                assert!(BODY_KEYS.contains(k), "{what}: unexpected key {k}");
            }
            assert_eq!(keys.len(), BODY_KEYS.len(), "{what}: {keys:?}");
            assert_leaves(&body, "", TYPED, &what);
            let hash = h.install.root_password_hash.to_string();
            assert_eq!(body["identity"]["hostname"], h.short_name(), "{what}");
            assert_eq!(body["identity"]["username"], "hvseed", "{what}");
            assert_eq!(body["identity"]["password"], hash.as_str(), "{what}");
            assert_eq!(body["locale"], h.install.locale.to_string(), "{what}");
            assert_eq!(body["timezone"], h.install.timezone.to_string(), "{what}");
            assert_eq!(
                body["keyboard"]["layout"],
                h.install.keyboard.to_string(),
                "{what}"
            );
            assert_eq!(body["storage"]["layout"]["name"], "direct");
            assert_eq!(
                body["storage"]["layout"]["match"]["path"],
                format!("/dev/{}", h.install.disk),
                "{what}"
            );
            assert_eq!(body["shutdown"], "reboot");
            // Root's password, without a shell: the list form.
            assert_eq!(
                body["late-commands"][0],
                serde_json::json!([
                    "curtin",
                    "in-target",
                    "--",
                    "usermod",
                    "--password",
                    hash,
                    "root"
                ]),
                "{what}"
            );
            assert!(body["late-commands"][1].is_string(), "{what}");
            assert_eq!(body["late-commands"].as_array().unwrap().len(), 2);
            // The install-time network: the trunk by MAC, the management VLAN static.
            let eth = &body["network"]["ethernets"][h.network.trunk_nic.to_string()];
            assert_eq!(eth["match"]["macaddress"], h.mac.as_str(), "{what}");
            let vlan = &body["network"]["vlans"][format!("vlan{}", h.network.management.vlan)];
            assert_eq!(vlan["id"], h.network.management.vlan, "{what}");
            assert_eq!(
                vlan["addresses"][0],
                format!("{}/{}", h.ip, h.network.management.prefix),
                "{what}"
            );
            assert_eq!(
                vlan["routes"][0]["via"],
                h.network.management.gateway.to_string()
            );
            // CloudStack's repository for the release's suite, with the pasted key as
            // it was pasted.
            let apt = h.cloudstack.apt.as_ref().unwrap();
            let src = &body["apt"]["sources"]["cloudstack"];
            let trusted = if apt.trust == AptTrust::Unauthenticated {
                "[trusted=yes] "
            } else {
                ""
            };
            assert_eq!(
                src["source"],
                format!(
                    "deb {trusted}{} {} {}",
                    h.cloudstack.repository, apt.suite, h.cloudstack.version
                ),
                "{what}"
            );
            match &apt.trust {
                AptTrust::KeyInline(k) => {
                    assert_eq!(src["key"], format!("{}\n", k.trim()), "{what}")
                }
                _ => assert!(src.get("key").is_none(), "{what}"),
            }
            let source = match &h.install.source {
                InstallSource::Url(u) => u.to_string(),
                InstallSource::Cdrom => unreachable!("refused by check"),
            };
            assert_eq!(body["apt"]["primary"][0]["uri"], source, "{what}");
            // `fallback` is in 24.04's schema only.
            let fallback = body["apt"].get("fallback");
            match inv.os {
                Os::Ubuntu2404 => assert_eq!(fallback, Some(&Value::from("abort")), "{what}"),
                _ => assert_eq!(fallback, None, "{what}"),
            }
            let packages: Vec<&str> = body["packages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_str().unwrap())
                .collect();
            for p in [
                "libvirt-daemon-system",
                "qemu-system-x86",
                "chrony",
                "ufw",
                "cloudstack-agent",
                "openssh-server",
            ] {
                assert!(packages.contains(&p), "{what}: {p}");
            }
            let ovs = h.network.kind == NetworkType::Openvswitch;
            assert_eq!(packages.contains(&"openvswitch-switch"), ovs, "{what}");
            assert_eq!(packages.contains(&"bridge-utils"), !ovs, "{what}");
            for p in h.install.extra_packages.iter() {
                assert!(packages.contains(&p.as_ref()), "{what}: {p}");
            }
        }
        if !tree.contains_key("nocloud/user-data") {
            // PXE: every host has its own seed, and no picker.
            assert!(!tree
                .keys()
                .any(|k| k.starts_with("nocloud/") || k.starts_with("fleet/")));
            continue;
        }
        // The fleet seed: version and the picker only.
        let stub = yaml11(&dir.path().join("nocloud/user-data"));
        let a = stub["autoinstall"].as_object().unwrap();
        assert_eq!(
            a.keys().collect::<Vec<_>>(),
            ["early-commands", "version"],
            "{name}"
        );
        assert_eq!(a["version"], 1);
        assert_eq!(
            yaml11(&dir.path().join("nocloud/meta-data"))["instance-id"],
            format!("hvseed-{}", inv.cluster)
        );
        let macs = text(&tree, "fleet/macs");
        let want: String = inv
            .hosts
            .iter()
            .map(|h| format!("{} {}\n", h.mac.to_lowercase(), h.fqdn))
            .collect();
        assert_eq!(macs, want, "{name}");
    }
}

/// Debian's cloud-init and the Python that runs it (`scripts/setup.sh`: unpacked,
/// never installed): `$HVSEED_CLOUD_INIT` / `$HVSEED_CLOUD_INIT_PYTHON`, else
/// `.cloud-init` and `.venv-cloud-init` in the checkout.
fn cloud_init() -> Option<(PathBuf, PathBuf)> {
    let tree = std::env::var_os("HVSEED_CLOUD_INIT")
        .map(PathBuf::from)
        .unwrap_or_else(|| util::root().join(".cloud-init"));
    let python = std::env::var_os("HVSEED_CLOUD_INIT_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| util::root().join(".venv-cloud-init/bin/python"));
    let lib = tree.join("usr/lib/python3/dist-packages");
    if lib.join("cloudinit/cmd/main.py").is_file() && python.is_file() {
        Some((lib, python))
    } else {
        util::missing(
            "Debian's cloud-init, unpacked, with its Python dependencies",
            "run scripts/setup.sh test",
        );
        None
    }
}

fn cloud_init_schema(ci: &(PathBuf, PathBuf), file: &Path) -> (bool, String) {
    let out = util::output_within_secs(
        Command::new(&ci.1)
            .env("PYTHONPATH", &ci.0)
            .args([
                "-c",
                "from cloudinit.cmd.main import main; main()",
                "schema",
                "--config-file",
            ])
            .arg(file),
        60,
    );
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn every_user_data_passes_cloud_init_schema() {
    let Some(ci) = cloud_init() else { return };
    for (name, inv, opts) in inventories() {
        let (tree, dir) = rendered(&inv, &opts);
        for k in tree.keys().filter(|k| k.ends_with("user-data")) {
            let (ok, said) = cloud_init_schema(&ci, &dir.path().join(k));
            assert!(
                ok && said.contains("Valid cloud-config"),
                "{name}: {k}: {said}"
            );
        }
    }
    // The checker is not blind: a string version and a lost header are refused.
    let (tree, dir) = rendered(&lab(Os::Ubuntu2404), &cd());
    let good = text(&tree, "nocloud/user-data");
    for bad in [
        good.replace("  version: 1\n", "  version: \"1\"\n"),
        good.replacen("#cloud-config\n", "", 1),
    ] {
        assert_ne!(bad, good);
        let f = dir.path().join("bad-user-data");
        std::fs::write(&f, bad).unwrap();
        let (ok, said) = cloud_init_schema(&ci, &f);
        assert!(!ok, "{said}");
    }
}

fn netplan_generate() -> Option<(PathBuf, PathBuf)> {
    let tree = std::env::var_os("HVSEED_NETPLAN")
        .map(PathBuf::from)
        .unwrap_or_else(|| util::root().join(".netplan"));
    let generate = tree.join("usr/libexec/netplan/generate");
    if generate.is_file() {
        Some((generate, tree.join("usr/lib/x86_64-linux-gnu")))
    } else {
        util::missing(
            "netplan.io's generator, unpacked",
            "run scripts/setup.sh test",
        );
        None
    }
}

#[test]
fn every_install_network_passes_netplans_generator() {
    let Some((generate, lib)) = netplan_generate() else {
        return;
    };
    for (name, inv, opts) in inventories() {
        let (tree, dir) = rendered(&inv, &opts);
        for h in &inv.hosts {
            let body = body_of(&tree, &h.fqdn);
            let root = dir.path().join(format!("netplan-{}", h.fqdn));
            let file = root.join("etc/netplan/00-installer-config.yaml");
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            // JSON is YAML: the network section exactly as PyYAML read it.
            std::fs::write(
                &file,
                serde_json::json!({ "network": body["network"] }).to_string(),
            )
            .unwrap();
            std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .unwrap();
            let out = util::output_within_secs(
                Command::new(&generate)
                    .env("LD_LIBRARY_PATH", &lib)
                    .arg("--root-dir")
                    .arg(&root),
                30,
            );
            let said = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success() && said.trim().is_empty(),
                "{name}: {}: {said}",
                h.fqdn
            );
            let vlan = format!("vlan{}", h.network.management.vlan);
            let network = std::fs::read_to_string(
                root.join(format!("run/systemd/network/10-netplan-{vlan}.network")),
            )
            .unwrap();
            assert!(
                network.contains(&format!(
                    "Address={}/{}\n",
                    h.ip, h.network.management.prefix
                )),
                "{network}"
            );
            assert!(
                network.contains(&format!("Gateway={}\n", h.network.management.gateway)),
                "{network}"
            );
            let netdev = std::fs::read_to_string(
                root.join(format!("run/systemd/network/10-netplan-{vlan}.netdev")),
            )
            .unwrap();
            assert!(
                netdev.contains(&format!("Id={}\n", h.network.management.vlan)),
                "{netdev}"
            );
            let trunk = std::fs::read_to_string(root.join(format!(
                "run/systemd/network/10-netplan-{}.network",
                h.network.trunk_nic
            )))
            .unwrap();
            assert!(
                trunk.contains(&format!("MACAddress={}", h.mac.to_lowercase()))
                    && trunk.contains(&format!("VLAN={vlan}")),
                "{trunk}"
            );
        }
    }
}

/// The late script of host `fqdn`'s body (its second late command), as subiquity
/// reads it.
pub(crate) fn late_command(tree: &RenderedTree, fqdn: &str) -> String {
    body_of(tree, fqdn)["late-commands"][1]
        .as_str()
        .unwrap()
        .to_string()
}

/// The picker as subiquity runs it: the fleet seed's one early command.
fn picker(dir: &Path) -> String {
    let stub = yaml11(&dir.join("nocloud/user-data"));
    stub["autoinstall"]["early-commands"][0]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn the_picker_copies_each_hosts_body_and_stops_unknown_machines() {
    for os in UBUNTU {
        let inv = lab_variant(os);
        let (tree, dir) = rendered(&inv, &cd());
        let script = picker(dir.path());
        for sh in ["sh", "bash"] {
            sh_syntax_ok(sh, &script, "picker");
        }
        let media = fake_media(&tree, dir.path());
        for h in &inv.hosts {
            let run = tmpdir();
            let sys = fake_sysfs(
                run.path(),
                &[
                    ("lo", "00:00:00:00:00:00"),
                    ("eth0", "52:54:00:00:00:99"),
                    ("eth1", &h.mac.to_uppercase()),
                ],
            );
            let root = run.path().join("root");
            std::fs::create_dir_all(&root).unwrap();
            let r = run_script(
                &script,
                run.path(),
                &[
                    ("HVSEED_SYSFS", &sys),
                    ("HVSEED_CDROM", &media),
                    ("HVSEED_ROOT", &root),
                ],
                &[],
            );
            assert_eq!(r.code, Some(0), "{os}: {}: {}", h.fqdn, r.stderr);
            assert_eq!(
                std::fs::read(root.join("autoinstall.yaml")).unwrap(),
                tree[&format!("hosts/{}/autoinstall.yaml", h.fqdn)]
            );
            assert!(
                r.console.contains(&format!("this machine is {}", h.fqdn)),
                "{}",
                r.console
            );
        }
        // An unknown machine and a medium without the table: exit 1, said on the
        // console, nothing written.
        let run = tmpdir();
        let sys = fake_sysfs(
            run.path(),
            &[("lo", "00:00:00:00:00:00"), ("eth0", "52:54:00:00:00:99")],
        );
        let root = run.path().join("root");
        std::fs::create_dir_all(&root).unwrap();
        let r = run_script(
            &script,
            run.path(),
            &[
                ("HVSEED_SYSFS", &sys),
                ("HVSEED_CDROM", &media),
                ("HVSEED_ROOT", &root),
            ],
            &[],
        );
        assert_eq!(r.code, Some(1), "{}", r.stderr);
        assert!(
            r.console.contains("52:54:00:00:00:99") && r.console.contains("no disk was touched"),
            "{}",
            r.console
        );
        assert_eq!(std::fs::read_dir(&root).unwrap().count(), 0);
        let empty = run.path().join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        let r = run_script(
            &script,
            run.path(),
            &[
                ("HVSEED_SYSFS", &sys),
                ("HVSEED_CDROM", &empty),
                ("HVSEED_ROOT", &root),
            ],
            &[],
        );
        assert_eq!(r.code, Some(1), "{}", r.stderr);
        assert_eq!(std::fs::read_dir(&root).unwrap().count(), 0);
    }
}

#[test]
fn the_late_commands_install_the_agent_and_set_roots_password() {
    for os in UBUNTU {
        let inv = hostile(os);
        let (tree, dir) = rendered(&inv, &cd());
        let media = fake_media(&tree, dir.path());
        for h in &inv.hosts {
            let body = body_of(&tree, &h.fqdn);
            let late = body["late-commands"][1].as_str().unwrap();
            for sh in ["sh", "bash"] {
                sh_syntax_ok(sh, late, "late");
            }
            let run = tmpdir();
            let root = run.path().join("target");
            std::fs::create_dir_all(&root).unwrap();
            let r = run_script(
                late,
                run.path(),
                &[
                    ("HVSEED_TARGET", &root),
                    ("HVSEED_MEDIA", &media.join("hvseed")),
                ],
                &[],
            );
            assert_eq!(r.code, Some(0), "{os}: {}{}", r.stderr, r.console);
            assert_plan_and_keys_installed(&root, &tree, &h.fqdn);
            assert_agent_applied(run.path(), &root);
            // A medium without the plan: the install stops, said on the console.
            let broken = run.path().join("broken");
            std::fs::create_dir_all(&broken).unwrap();
            std::fs::copy(
                media.join("hvseed/hvseed-firstboot"),
                broken.join("hvseed-firstboot"),
            )
            .unwrap();
            let r = run_script(
                late,
                run.path(),
                &[
                    ("HVSEED_TARGET", &run.path().join("t2")),
                    ("HVSEED_MEDIA", &broken),
                ],
                &[],
            );
            assert_eq!(r.code, Some(1), "{}", r.stderr);
            assert!(
                r.console.contains("ERROR") && r.console.contains("plan.json"),
                "{}",
                r.console
            );
            // The usermod command runs as a list (no shell): curtin gets the hash as
            // one argument, byte for byte.
            let argv: Vec<String> = body["late-commands"][0]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_string())
                .collect();
            let bin = run.path().join("bin");
            write_exec(
                &bin.join("curtin"),
                "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done > \"$CURTIN_LOG\"\n",
            );
            let log = run.path().join("curtin.log");
            let st = Command::new(&argv[0])
                .args(&argv[1..])
                .env(
                    "PATH",
                    format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
                )
                .env("CURTIN_LOG", &log)
                .status()
                .unwrap();
            assert!(st.success());
            assert_eq!(
                std::fs::read_to_string(&log).unwrap(),
                format!(
                    "in-target\n--\nusermod\n--password\n{}\nroot\n",
                    h.install.root_password_hash
                )
            );
        }
    }
}

#[test]
fn golden_autoinstall_outputs() {
    let wanted = ["variant-ubuntu2404", "hostile-ubuntu2404"];
    for (name, inv, opts) in inventories()
        .into_iter()
        .filter(|(n, _, _)| wanted.contains(&n.as_str()))
    {
        let tree = render_tree(&inv, &opts).unwrap();
        for (k, v) in &tree {
            if k.ends_with("plan.json") || k.ends_with("authorized_keys") {
                continue;
            }
            let snap = format!("{name}__{}", k.replace(['/', '.'], "_"));
            insta::assert_snapshot!(snap, String::from_utf8(v.clone()).unwrap());
        }
    }
}

/// `hvseed check` on the example with one change: refused at the changed line, with
/// the field and the fix.
#[test]
fn check_refuses_what_subiquity_cannot_honour() {
    let src = std::fs::read_to_string(util::root().join("profiles/examples/lab-ubuntu2204.yaml"))
        .unwrap();
    let key_start = src.find("    key: |\n").unwrap();
    let key_end = src[key_start..].find("    management_server:").unwrap() + key_start;
    let key_url = format!(
        "{}    key: https://download.cloudstack.org/release.asc\n{}",
        &src[..key_start],
        &src[key_end..]
    );
    let cases: Vec<(String, &str, &str, &str)> = vec![
        (
            src.replace("source: http://archive.ubuntu.com/ubuntu", "source: cdrom"),
            "source: cdrom",
            "install.source",
            "Ubuntu archive mirror",
        ),
        (
            src.replace("version: \"4.20\"", "version: \"4.18\""),
            "version: \"4.18\"",
            "cloudstack.version",
            "needs 4.19 or later",
        ),
        (key_url, "key: https://", "cloudstack.key", "as `key: |`"),
        (
            src.replace("kernel_args: [\"console=ttyS0,115200n8\"]", "kernel_args: [\"url=http://x/\"]"),
            "kernel_args: [\"url=",
            "kernel_args[0]",
            "set by hvseed's boot entries",
        ),
        (
            src.replace("kernel_args: [\"console=ttyS0,115200n8\"]", "kernel_args: [autoinstall]"),
            "kernel_args: [autoinstall]",
            "kernel_args[0]",
            "remove it",
        ),
        (
            src.replace("keyboard: us", "keyboard: fr-latin1"),
            "keyboard: fr-latin1",
            "install.keyboard",
            "`keyboard: fr`",
        ),
        (
            src.replace("    extra_packages: [ipmitool]\n", "    extra_packages: [ipmitool]\n    extra_repositories: [{name: x, url: \"http://r.example.org/x\"}]\n"),
            "extra_repositories:",
            "install.extra_repositories",
            "remove",
        ),
    ];
    let dir = tmpdir();
    for (i, (text, at, field, fix)) in cases.iter().enumerate() {
        assert_ne!(text, &src, "case {i}");
        let line = text.lines().position(|l| l.contains(at)).unwrap() + 1;
        let f = dir.path().join(format!("bad{i}.yaml"));
        std::fs::write(&f, text).unwrap();
        let out = util::output_within_secs(util::hvseed().arg("check").arg(&f), 30);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "case {i}: {err}");
        let want = format!("{}:{line}:", f.display());
        assert!(
            err.lines()
                .any(|l| l.starts_with(&want) && l.contains(field) && l.contains(fix)),
            "case {i}: want {want} {field} … {fix} in\n{err}"
        );
    }
}

/// Every layout code of this machine's XKB rules (xkb-data's `evdev.lst`, the list
/// subiquity's keyboard layouts come from) passes the keyboard rule, and the examples'
/// layouts are among them.
#[test]
fn xkb_layouts_pass_the_keyboard_rule() {
    let lst = Path::new("/usr/share/X11/xkb/rules/evdev.lst");
    let Ok(text) = std::fs::read_to_string(lst) else {
        util::missing(
            "/usr/share/X11/xkb/rules/evdev.lst (Debian package `xkb-data`)",
            "run scripts/setup.sh test",
        );
        return;
    };
    let layouts: Vec<&str> = text
        .split("! layout\n")
        .nth(1)
        .unwrap()
        .lines()
        .take_while(|l| !l.starts_with('!'))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(
        layouts.len() > 50 && layouts.contains(&"us") && layouts.contains(&"de"),
        "{layouts:?}"
    );
    for os in UBUNTU {
        let t = hvseed::target::of(os);
        let refused = t.inventory.keyboard_refused.unwrap();
        for l in &layouts {
            assert_eq!(refused(l), None, "{os}: {l}");
        }
    }
    for name in ["lab-ubuntu2204", "lab-ubuntu2404-openvswitch"] {
        let inv = hvseed::inventory::load_valid(
            &util::root().join(format!("profiles/examples/{name}.yaml")),
        )
        .unwrap();
        for h in &inv.hosts {
            assert!(
                layouts.contains(&h.install.keyboard.as_ref()),
                "{name}: {}",
                h.install.keyboard
            );
        }
    }
}

/// `hvseed iso` and `hvseed pxe` say they cannot build these targets' media yet,
/// before reading the source.
#[test]
fn media_verbs_refuse_ubuntu_autoinstall_targets_for_now() {
    let Some(agent) = util::agent() else { return };
    let dir = tmpdir();
    let inv = util::root().join("profiles/examples/lab-ubuntu2404-openvswitch.yaml");
    for verb in ["iso", "pxe"] {
        let out = util::output_within_secs(
            util::hvseed()
                .arg(verb)
                .arg(&inv)
                .arg("--source")
                .arg(dir.path().join("none.iso"))
                .arg("--out")
                .arg(dir.path().join(format!("out-{verb}")))
                .args(if verb == "pxe" {
                    &["--http-base", "http://10.0.2.2:8080/"][..]
                } else {
                    &[]
                })
                .arg("--firstboot")
                .arg(&agent),
            30,
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{verb}: {err}");
        assert!(
            err.contains("does not remaster Ubuntu live-server ISOs"),
            "{verb}: {err}"
        );
        assert!(!dir.path().join(format!("out-{verb}")).exists(), "{verb}");
    }
}
