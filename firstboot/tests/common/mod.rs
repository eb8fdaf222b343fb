//! Helpers for the agent's tests: fixture roots, plans, and small independent parsers
//! of the formats the agent writes (so tests read the files the way their consumers
//! do instead of grepping for the literals the agent wrote).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::{Digest, Sha256};

/// Shared with the builder's tests: the missing-tool policy and commands with a deadline.
#[path = "../../../tests/support.rs"]
mod support;
#[allow(unused_imports)]
pub use support::{missing, run_ok, tool};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A temp copy of `tests/fixtures/roots/<os>` (the copy keeps links and modes).
pub fn fixture_root(os: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let src = repo_root().join("tests/fixtures/roots").join(os);
    let dst = tmp.path().join("root");
    let st = Command::new("cp")
        .arg("-a")
        .arg(&src)
        .arg(&dst)
        .status()
        .unwrap();
    assert!(st.success(), "copying {}", src.display());
    // git keeps only 644/755; restore the stock modes the agent must preserve.
    for (path, mode) in [
        ("etc/sysconfig/iptables", 0o600),
        ("lib/ufw/user.rules", 0o640),
        ("etc/ufw/user.rules", 0o640),
        ("etc/shadow", 0o640),
        (
            "etc/NetworkManager/system-connections/eth0.nmconnection",
            0o600,
        ),
        (
            "etc/NetworkManager/system-connections/eth0.100.nmconnection",
            0o600,
        ),
        (
            "etc/NetworkManager/system-connections/eth1.nmconnection",
            0o600,
        ),
        ("etc/netplan/00-installer-config.yaml", 0o600),
        ("etc/cloud/cloud.cfg.d/90-installer-network.cfg", 0o600),
    ] {
        let p = dst.join(path);
        if p.exists() {
            fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
        }
    }
    (tmp, dst)
}

/// netplan's generator (`generate --root-dir`), unpacked (not installed) by
/// `scripts/setup.sh test` into `.netplan/` of the checkout, as a command with its
/// library's path set, or None after [`missing`].
pub fn netplan_generate() -> Option<Command> {
    let base = repo_root().join(".netplan");
    let exe = base.join("usr/libexec/netplan/generate");
    if exe.is_file() {
        let mut c = Command::new(exe);
        c.env("LD_LIBRARY_PATH", base.join("usr/lib/x86_64-linux-gnu"));
        return Some(c);
    }
    missing(
        "netplan's generator (bookworm's netplan.io, unpacked into .netplan/) is not there",
        "run scripts/setup.sh test",
    );
    None
}

const OVS_VSCTL: &str = "/usr/bin/ovs-vsctl";

/// The systemd-networkd files (and Open vSwitch units) netplan's generator writes for
/// `root`'s /etc/netplan (a copy of it, modes kept, in a scratch root), by name; and
/// its stderr. Panics when it refuses the files.
pub fn netplan_networkd(root: &Path) -> Option<(BTreeMap<String, String>, String)> {
    let mut gen = netplan_generate()?;
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir_all(tmp.path().join("etc")).unwrap();
    let st = Command::new("cp")
        .arg("-a")
        .arg(root.join("etc/netplan"))
        .arg(tmp.path().join("etc/netplan"))
        .status()
        .unwrap();
    assert!(st.success());
    let root = tmp.path();
    let out = if Path::new(OVS_VSCTL).exists() {
        gen.arg("--root-dir").arg(root).output().unwrap()
    } else {
        // The generator refuses `openvswitch:` unless the machine it runs on has an
        // executable /usr/bin/ovs-vsctl (it only checks; the units it writes call it at
        // boot). Rather than installing Open vSwitch's daemon here, it runs in a mount
        // namespace of its own whose /usr/bin holds only a stand-in that always fails.
        let bin = tempfile::tempdir().unwrap();
        let stub = bin.path().join("ovs-vsctl");
        fs::write(&stub, "#!/bin/sh\nexit 1\n").unwrap();
        fs::set_permissions(&stub, fs::Permissions::from_mode(0o755)).unwrap();
        let unshare = tool("unshare", "util-linux")?;
        let g = gen.get_program().to_owned();
        Command::new(unshare)
            .args(["--mount", "--propagation", "private", "/bin/sh", "-c"])
            .arg("mount --bind \"$1\" /usr/bin && exec \"$2\" --root-dir \"$3\"")
            .arg("sh")
            .arg(bin.path())
            .arg(g)
            .arg(root)
            .envs(gen.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))))
            .output()
            .unwrap()
    };
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "netplan generate refused: {stderr}");
    let mut files = BTreeMap::new();
    for dir in ["run/systemd/network", "run/systemd/system"] {
        let Ok(entries) = fs::read_dir(root.join(dir)) else {
            continue;
        };
        for e in entries {
            let e = e.unwrap();
            if e.file_type().unwrap().is_file() {
                files.insert(
                    e.file_name().to_string_lossy().into_owned(),
                    fs::read_to_string(e.path()).unwrap(),
                );
            }
        }
    }
    Some((files, stderr))
}

/// NetworkManager's nmcli, unpacked (not installed) by `scripts/setup.sh test` into
/// `.nm/` of the checkout, or None after [`missing`].
pub fn nmcli() -> Option<PathBuf> {
    let p = repo_root().join(".nm/usr/bin/nmcli");
    if p.is_file() {
        return Some(p);
    }
    missing(
        "nmcli (bookworm's network-manager, unpacked into .nm/) is not there",
        "run scripts/setup.sh test",
    );
    None
}

/// A parsed NetworkManager keyfile: `[section]` → (key, value) in file order.
pub type Keyfile = BTreeMap<String, Vec<(String, String)>>;

/// A NetworkManager keyfile, parsed.
pub fn keyfile(text: &str) -> Keyfile {
    let mut m: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut cur: Option<String> = None;
    for line in text.lines() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        if let Some(name) = t.strip_prefix('[').and_then(|x| x.strip_suffix(']')) {
            m.entry(name.to_string()).or_default();
            cur = Some(name.to_string());
            continue;
        }
        let (k, v) = t
            .split_once('=')
            .unwrap_or_else(|| panic!("not key=value: {t}"));
        let sec = cur
            .clone()
            .unwrap_or_else(|| panic!("key outside a section: {t}"));
        m.get_mut(&sec)
            .unwrap()
            .push((k.to_string(), v.to_string()));
    }
    m
}

/// The plan `hvseed render` writes for the lab's first host
/// (profiles/examples/lab-centos6.yaml, kvm1.lab.example.org): the builder's render
/// test keeps it current as this insta snapshot, so the agent's tests start from the
/// bytes the builder really writes instead of a copy of them.
const LAB_PLAN_SNAPSHOT: &str =
    "tests/snapshots/lib__render__example-lab-centos6__hosts_kvm1_lab_example_org_plan_json.snap";

/// The lab's first host as its plan (see [`LAB_PLAN_SNAPSHOT`]).
pub fn lab_plan() -> serde_json::Value {
    let path = repo_root().join(LAB_PLAN_SNAPSHOT);
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    // An insta snapshot: a `---` header block, then the rendered file.
    let body = text
        .splitn(3, "---\n")
        .nth(2)
        .unwrap_or_else(|| panic!("{}: no insta header", path.display()));
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The lab host (VLAN 100/200/300 on eth0) for `os` and network `net`, with the
/// firewall `sources` and what the agent's tests add to it: a second NTP and DNS
/// server and a custom CPU model with features.
pub fn plan_json(os: &str, net: &str, sources: &[&str]) -> serde_json::Value {
    let mut p = lab_plan();
    p["os"] = serde_json::json!(os);
    p["network"]["type"] = serde_json::json!(net);
    p["security"]["selinux"] = if os == "centos6" {
        serde_json::json!("permissive")
    } else {
        serde_json::Value::Null
    };
    p["security"]["firewall_sources"] = serde_json::json!(sources);
    p["ntp_servers"] = serde_json::json!(["0.pool.ntp.org", "ntp1.lab.example.org"]);
    p["dns"]["servers"] = serde_json::json!(["192.168.42.1", "192.168.42.2"]);
    p["cpu"] =
        serde_json::json!({"mode": "custom", "model": "SandyBridge", "features": ["vmx", "aes"]});
    p
}

pub fn write_plan(dir: &Path, plan: &serde_json::Value) -> PathBuf {
    let p = dir.join("plan.json");
    fs::write(&p, serde_json::to_string_pretty(plan).unwrap()).unwrap();
    p
}

/// The agent built by cargo for the tests (the host's own target).
pub fn agent() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hvseed-firstboot"))
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap()
}

/// How long a test lets the agent run before it counts as hung (a guard against a
/// hang in CI, not a timing requirement: the agent should answer in well under 1 s).
pub const HANG_GUARD: std::time::Duration = std::time::Duration::from_secs(60);

/// Runs `cmd` (stdin from /dev/null, output captured) and kills it if it is still
/// running after [`HANG_GUARD`], failing the test; it never outlives the call.
pub fn run_guarded(cmd: &mut Command) -> Output {
    support::output_within(cmd, HANG_GUARD)
}

/// Waits for `child`, killing it (and failing the test) after [`HANG_GUARD`].
pub fn wait_guarded(child: &mut std::process::Child, what: &str) -> std::process::ExitStatus {
    support::wait_within(child, HANG_GUARD, what)
}

/// Makes a FIFO at `path` (replacing a file there).
pub fn mkfifo(path: &Path) {
    let _ = fs::remove_file(path);
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: mkfifo with a valid NUL-terminated path.
    assert_eq!(
        unsafe { libc::mkfifo(c.as_ptr(), 0o644) },
        0,
        "mkfifo {}",
        path.display()
    );
}

/// sha256 over every entry under `dir`: path, type, mode, content or link target.
pub fn tree_sum(dir: &Path) -> String {
    let mut entries = Vec::new();
    collect(dir, dir, &mut entries);
    entries.sort();
    let mut h = Sha256::new();
    for e in entries {
        h.update(e.as_bytes());
        h.update(b"\n");
    }
    format!("{:x}", h.finalize())
}

fn collect(base: &Path, dir: &Path, out: &mut Vec<String>) {
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        let rel = p.strip_prefix(base).unwrap().display().to_string();
        let m = fs::symlink_metadata(&p).unwrap();
        if m.file_type().is_symlink() {
            out.push(format!(
                "L {rel} -> {}",
                fs::read_link(&p).unwrap().display()
            ));
        } else if m.is_dir() {
            out.push(format!("D {rel} {:o}", m.mode()));
            collect(base, &p, out);
        } else if !m.is_file() {
            // A FIFO or device a test put there: reading it could block.
            out.push(format!("S {rel} {:o} {}", m.mode(), m.rdev()));
        } else {
            let data = fs::read(&p).unwrap();
            out.push(format!(
                "F {rel} {:o} {:x}",
                m.mode(),
                Sha256::digest(&data)
            ));
        }
    }
}

pub fn read(root: &Path, path: &str) -> String {
    let p = root.join(path.trim_start_matches('/'));
    fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A shell-sourced `KEY=VALUE` file (ifcfg, sysconfig) as the shell reads it: the last
/// assignment wins, one level of quotes is removed. Returns keys in file order too.
pub fn shell_vars(text: &str) -> (BTreeMap<String, String>, Vec<String>) {
    let mut map = BTreeMap::new();
    let mut order = Vec::new();
    for line in text.lines() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let (k, v) = t
            .split_once('=')
            .unwrap_or_else(|| panic!("not KEY=VALUE: {t}"));
        assert!(
            k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "bad shell name {k:?}"
        );
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|x| x.strip_suffix('"'))
            .or_else(|| v.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')))
            .unwrap_or(v);
        map.insert(k.to_string(), v.to_string());
        order.push(k.to_string());
    }
    (map, order)
}

/// libvirt's config syntax: `key = value`, `#` comments; the last one wins.
pub fn libvirt_conf(text: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for line in text.lines() {
        let t = line.split('#').next().unwrap().trim();
        if t.is_empty() {
            continue;
        }
        let (k, v) = t.split_once('=').unwrap_or_else(|| panic!("bad line {t}"));
        map.insert(k.trim().to_string(), v.trim().to_string());
    }
    map
}

/// Java properties (the subset agent.properties uses): `key=value`, `#` comments.
pub fn properties(text: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for line in text.lines() {
        let t = line.trim_start();
        if t.is_empty() || t.starts_with('#') || t.starts_with('!') {
            continue;
        }
        let (k, v) = t.split_once('=').unwrap_or((t, ""));
        map.insert(k.trim().to_string(), v.trim_start().to_string());
    }
    map
}

/// iptables-save format: table → list of rules as token lists (only `-A` lines).
pub fn iptables_save(text: &str) -> BTreeMap<String, Vec<Vec<String>>> {
    let mut tables: BTreeMap<String, Vec<Vec<String>>> = BTreeMap::new();
    let mut cur: Option<String> = None;
    for line in text.lines() {
        let t = line.trim();
        if let Some(name) = t.strip_prefix('*') {
            cur = Some(name.to_string());
            tables.entry(name.to_string()).or_default();
        } else if t == "COMMIT" {
            cur = None;
        } else if t.starts_with("-A ") {
            let table = cur.clone().expect("rule outside a table");
            tables
                .get_mut(&table)
                .unwrap()
                .push(t.split_whitespace().map(str::to_string).collect());
        } else {
            assert!(
                t.is_empty() || t.starts_with('#') || t.starts_with(':'),
                "unexpected line in iptables-save file: {t}"
            );
        }
    }
    tables
}

/// The value after `flag` in a rule.
pub fn opt<'a>(rule: &'a [String], flag: &str) -> Option<&'a str> {
    rule.windows(2)
        .find(|w| w[0] == flag)
        .map(|w| w[1].as_str())
}

/// interfaces(5): iface name → (method, options), plus the `auto` names.
#[derive(Debug, Default)]
pub struct Interfaces {
    pub ifaces: BTreeMap<String, (String, Vec<(String, String)>)>,
    pub auto: Vec<String>,
    pub allow: Vec<(String, String)>,
}

pub fn interfaces(text: &str) -> Interfaces {
    let mut r = Interfaces::default();
    let mut cur: Option<String> = None;
    for line in text.lines() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let w: Vec<&str> = t.split_whitespace().collect();
        match w[0] {
            "iface" => {
                assert!(
                    !r.ifaces.contains_key(w[1]),
                    "interface {} declared twice",
                    w[1]
                );
                r.ifaces
                    .insert(w[1].to_string(), (w[3].to_string(), Vec::new()));
                cur = Some(w[1].to_string());
            }
            "auto" => {
                r.auto.extend(w[1..].iter().map(|s| s.to_string()));
                cur = None;
            }
            x if x.starts_with("allow-") => {
                for n in &w[1..] {
                    r.allow.push((x[6..].to_string(), n.to_string()));
                }
                cur = None;
            }
            "mapping" | "source" => cur = None,
            _ => {
                let name = cur
                    .clone()
                    .unwrap_or_else(|| panic!("option outside iface: {t}"));
                r.ifaces
                    .get_mut(&name)
                    .unwrap()
                    .1
                    .push((w[0].to_string(), w[1..].join(" ")));
            }
        }
    }
    r
}

impl Interfaces {
    pub fn opt(&self, iface: &str, key: &str) -> Option<&str> {
        self.ifaces
            .get(iface)?
            .1
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Lines of `old` that are comments must all still be in `new`, in order.
pub fn assert_comments_kept(path: &str, old: &str, new: &str) {
    let mut it = new.lines();
    for line in old.lines().filter(|l| l.trim_start().starts_with('#')) {
        assert!(
            it.any(|n| n == line),
            "{path}: comment line {line:?} was lost or reordered"
        );
    }
}

/// The values of `keys` after `sh` sources `file`, as the el6 network scripts and init
/// scripts do (`. ifcfg-eth0`): proves the file is valid shell and says what it means.
pub fn sourced(file: &Path, keys: &[String]) -> BTreeMap<String, String> {
    let mut script = String::from(". \"$0\" || exit 9\n");
    for k in keys {
        script.push_str(&format!("printf '%s=%s\\n' {k} \"${{{k}}}\"\n"));
    }
    run_ok(Command::new("sh").arg("-c").arg(&script).arg(file))
        .lines()
        .filter_map(|l| {
            l.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect()
}
