//! Integration tests for the inventory reader and `hvseed check`: the examples pass,
//! every rule of the inventory contract gives a message naming FILE:LINE:COL and the
//! key path (positions are computed from the fixture text), the output of `check` is
//! pinned by snapshots, and hostile files fail with one error.

use std::path::{Path, PathBuf};

use hvseed::inventory::{self, Diagnostic, InventoryError, Severity};

use crate::util::{hvseed, root};

const HASH: &str = "$6$hvseedlab$t1.kB9z7B8HKic33ra63fhRD9HftPru4/eGjbd2w882XHzsjLP9FI2Gir7yyCr6VcJISEaAu3gFSDunaEoAuu0";

/// A small valid inventory every rule test starts from.
fn base() -> String {
    format!(
        r#"version: 1
cluster: t1
defaults:
  os: centos6
  install:
    root_password_hash: "{HASH}"
    disk: sda
  dns:
    servers: [192.168.42.1]
  cloudstack:
    version: "4.2"
    repository: http://cloudstack.apt-get.eu/rhel/4.2/
    management_server: 192.168.42.5
  network:
    trunk_nic: eth0
    management: {{ vlan: 100, prefix: 24, gateway: 192.168.42.1 }}
    public: {{ vlan: 200, bridge: cloudbr0 }}
    private: {{ vlan: 300, bridge: cloudbr1 }}
hosts:
  - fqdn: kvm1.lab.example.org
    mac: "00:04:23:aa:bb:01"
    ip: 192.168.42.11
  - fqdn: kvm2.lab.example.org
    mac: "00-04-23-AA-BB-02"
    ip: 192.168.42.12
"#
    )
}

/// A list of the inventory as plain strings, for comparisons.
fn strs<T: AsRef<str>>(v: &[T]) -> Vec<&str> {
    v.iter().map(|s| s.as_ref()).collect()
}

/// `base()` with `from` replaced by `to` (which must occur).
fn edit(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "fixture lacks {from:?}");
    text.replacen(from, to, 1)
}

/// An inventory written to its own temporary directory.
struct Case {
    _dir: tempfile::TempDir,
    path: PathBuf,
    text: String,
}

fn case(text: &str) -> Case {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inv.yaml");
    std::fs::write(&path, text).unwrap();
    Case {
        _dir: dir,
        path,
        text: text.to_string(),
    }
}

/// 1-based (line, column) of `token` on the `nth` (0-based) line containing `line_has`.
fn at_nth(text: &str, line_has: &str, nth: usize, token: &str) -> (usize, usize) {
    let (i, line) = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains(line_has))
        .nth(nth)
        .unwrap_or_else(|| panic!("no line {nth} with {line_has:?}"));
    let col = line
        .find(token)
        .unwrap_or_else(|| panic!("no {token:?} in {line:?}"));
    (i + 1, col + 1)
}

/// Like [`at`] for the first line that ends with `line_end`.
fn at_end(text: &str, line_end: &str, token: &str) -> (usize, usize) {
    let (i, line) = text
        .lines()
        .enumerate()
        .find(|(_, l)| l.ends_with(line_end))
        .unwrap_or_else(|| panic!("no line ending with {line_end:?}"));
    (i + 1, line.find(token).unwrap() + 1)
}

fn at(text: &str, line_has: &str, token: &str) -> (usize, usize) {
    at_nth(text, line_has, 0, token)
}

/// Every finding `load` reports (errors and warnings), and whether it accepted the file.
fn findings(c: &Case) -> (bool, Vec<Diagnostic>) {
    match inventory::load(&c.path) {
        Ok(l) => (true, l.warnings),
        Err(InventoryError::Invalid { diagnostics, .. }) => (false, diagnostics),
    }
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

/// Asserts that the case has a finding of `severity` at `pos` for `key` whose message
/// contains `needle`, both from the library and in `hvseed check`'s output (as
/// `FILE:LINE:COL: [warning: ]key: message`) with the right exit status.
fn expect(c: &Case, severity: Severity, pos: (usize, usize), key: &str, needle: &str) {
    let (ok, diags) = findings(c);
    let found = diags.iter().find(|d| {
        d.severity == severity
            && (d.line, d.column) == pos
            && d.key == key
            && d.message.contains(needle)
    });
    let Some(d) = found else {
        panic!(
            "expected {severity:?} at {}:{} for {key} containing {needle:?}; got:\n{}\n--- file:\n{}",
            pos.0,
            pos.1,
            diags
                .iter()
                .map(|d| format!("{d:?}"))
                .collect::<Vec<_>>()
                .join("\n"),
            c.text
        )
    };
    let has_errors = diags.iter().any(|d| d.severity == Severity::Error);
    assert_eq!(ok, !has_errors);
    let sev = if severity == Severity::Warning {
        "warning: "
    } else {
        ""
    };
    let line = format!(
        "{}:{}:{}: {sev}{key}: {}",
        c.path.display(),
        pos.0,
        pos.1,
        d.message
    );
    assert_eq!(d.to_string(), line);
    let (code, err) = check(&c.path);
    assert!(err.lines().any(|l| l == line), "{line}\nnot in:\n{err}");
    assert_eq!(code, if has_errors { 1 } else { 0 }, "{err}");
}

fn expect_error(c: &Case, pos: (usize, usize), key: &str, needle: &str) {
    expect(c, Severity::Error, pos, key, needle)
}

fn expect_warning(c: &Case, pos: (usize, usize), key: &str, needle: &str) {
    expect(c, Severity::Warning, pos, key, needle)
}

fn errors(c: &Case) -> Vec<Diagnostic> {
    findings(c)
        .1
        .into_iter()
        .filter(|d| d.severity == Severity::Error)
        .collect()
}

// ---------------------------------------------------------------- the examples

fn examples() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("profiles/examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    v.sort();
    v
}

#[test]
fn examples_pass_check_without_warnings() {
    let ex = examples();
    assert!(ex.len() >= 3, "{ex:?}");
    for p in ex {
        let (code, err) = check(&p);
        assert_eq!(code, 0, "{}: {err}", p.display());
        assert!(!err.contains("warning"), "{err}");
        assert!(err.contains(": ok: cluster "), "{err}");
    }
}

#[test]
fn base_fixture_is_valid() {
    let c = case(&base());
    let (ok, diags) = findings(&c);
    assert!(ok && diags.is_empty(), "{diags:?}");
}

#[test]
fn centos_example_resolves_to_the_lab_facts() {
    let inv = inventory::load(&root().join("profiles/examples/lab-centos6.yaml"))
        .unwrap()
        .inventory;
    assert_eq!(inv.cluster, "lab1");
    assert_eq!(inv.os, inventory::Os::Centos6);
    assert_eq!(inv.hosts.len(), 2);
    let h0 = &inv.hosts[0];
    let h = &inv.hosts[1];
    assert_eq!(h0.fqdn, "kvm1.lab.example.org");
    assert_eq!(h0.ip.to_string(), "192.168.42.11");
    assert_eq!(h.mac, "00:04:23:aa:bb:02");
    assert_eq!(&*h.install.disk, "sdb");
    assert_eq!(&*h0.install.disk, "sda");
    assert_eq!(strs(&h.install.kernel_args), ["console=ttyS0,115200n8"]);
    assert_eq!(strs(&h.install.ssh_authorized_keys), Vec::<&str>::new());
    assert_eq!(h.network.kind, inventory::NetworkType::LinuxBridge);
    assert_eq!(&*h.network.trunk_nic, "eth0");
    assert_eq!(h.network.trunk_bridge, None);
    assert_eq!(h.network.management.vlan, 100);
    assert_eq!(h.network.management.prefix, 24);
    assert_eq!(h.network.management.gateway.to_string(), "192.168.42.1");
    assert_eq!(h.network.management.bridge, None);
    assert_eq!(
        (h.network.public.vlan, h.network.public.bridge.as_ref()),
        (200, "cloudbr0")
    );
    assert_eq!(
        (h.network.private.vlan, h.network.private.bridge.as_ref()),
        (300, "cloudbr1")
    );
    assert_eq!(h.security.selinux, Some(inventory::SelinuxMode::Permissive));
    assert_eq!(h.cpu.mode, inventory::CpuMode::HostModel);
}

#[test]
fn openvswitch_example_gets_its_bridges_and_repository() {
    let inv = inventory::load(&root().join("profiles/examples/lab-openvswitch.yaml"))
        .unwrap()
        .inventory;
    let h = &inv.hosts[1];
    assert_eq!(h.network.kind, inventory::NetworkType::Openvswitch);
    assert_eq!(h.network.trunk_bridge.as_deref(), Some("cloudbr"));
    assert_eq!(h.network.management.bridge.as_deref(), Some("mgmt0"));
    assert_eq!(h.mac, "00:04:23:aa:bb:32");
    assert_eq!(h.install.extra_repositories.len(), 1);
    assert_eq!(&*h.install.extra_repositories[0].name, "openvswitch");
    assert_eq!(h.cpu.model.as_deref(), Some("SandyBridge"));
    assert_eq!(
        strs(&h.security.firewall_sources),
        ["192.168.42.0/24", "10.10.0.0/16"]
    );
}

#[test]
fn ubuntu_example_has_no_selinux_and_default_cpu_mode() {
    let inv = inventory::load(&root().join("profiles/examples/lab-ubuntu1204.yaml"))
        .unwrap()
        .inventory;
    assert_eq!(inv.os, inventory::Os::Ubuntu1204);
    for h in &inv.hosts {
        assert_eq!(h.security.selinux, None);
        assert_eq!(h.cpu.mode, inventory::CpuMode::HostModel);
    }
    assert_eq!(&*inv.hosts[1].install.disk, "vda");
}

#[test]
fn defaults_apply_when_keys_are_absent() {
    let inv = inventory::load(&case(&base()).path).unwrap().inventory;
    let h = &inv.hosts[0];
    assert_eq!(h.install.source, inventory::InstallSource::Cdrom);
    assert_eq!(&*h.install.locale, "en_US.UTF-8");
    assert_eq!(&*h.install.keyboard, "us");
    assert_eq!(&*h.install.timezone, "Etc/UTC");
    assert!(h.install.ssh_authorized_keys.is_empty());
    assert!(h.install.extra_packages.is_empty());
    assert!(h.install.kernel_args.is_empty());
    assert!(h.install.extra_repositories.is_empty());
    assert_eq!(strs(&h.ntp_servers), inventory::DEFAULT_NTP);
    assert!(h.dns.search.is_empty());
    assert_eq!(h.cpu.mode, inventory::CpuMode::HostModel);
    assert_eq!(h.cpu.model, None);
    assert_eq!(h.network.kind, inventory::NetworkType::LinuxBridge);
    assert_eq!(h.security.selinux, Some(inventory::SelinuxMode::Permissive));
    assert!(h.security.firewall_sources.is_empty());

    // Open vSwitch gets its default bridge names.
    let t = edit(
        &base(),
        "    trunk_nic: eth0",
        "    type: openvswitch\n    trunk_nic: eth0",
    );
    let inv = inventory::load(&case(&t).path).unwrap().inventory;
    let n = &inv.hosts[0].network;
    assert_eq!(n.trunk_bridge.as_deref(), Some("cloudbr"));
    assert_eq!(n.management.bridge.as_deref(), Some("mgmt0"));
}

#[test]
fn host_override_is_a_deep_merge() {
    let t = edit(
        &base(),
        "    ip: 192.168.42.12\n",
        "    ip: 192.168.42.12\n    install: { disk: sdb }\n    dns: { search: [b.example.org] }\n",
    );
    let inv = inventory::load(&case(&t).path).unwrap().inventory;
    let (h0, h1) = (&inv.hosts[0], &inv.hosts[1]);
    assert_eq!(&*h0.install.disk, "sda");
    assert_eq!(&*h1.install.disk, "sdb");
    // The rest of `install` and `dns` still comes from the defaults.
    assert_eq!(&*h1.install.root_password_hash, HASH);
    assert_eq!(h1.dns.servers, h0.dns.servers);
    assert_eq!(strs(&h1.dns.search), ["b.example.org"]);
}

// ------------------------------------------------ rules of inventory-v1.md, one each

#[test]
fn rule_fqdn_must_be_fully_qualified() {
    let t = edit(&base(), "fqdn: kvm2.lab.example.org", "fqdn: kvm2");
    let c = case(&t);
    expect_error(
        &c,
        at(&t, "fqdn: kvm2", "kvm2"),
        "hosts[1].fqdn",
        "not fully qualified",
    );
    let t = edit(
        &base(),
        "fqdn: kvm2.lab.example.org",
        "fqdn: kvm_2.lab.example.org",
    );
    let c = case(&t);
    expect_error(
        &c,
        at(&t, "fqdn: kvm_2", "kvm_2"),
        "hosts[1].fqdn",
        "not a valid fully qualified name",
    );
}

#[test]
fn rule_fqdn_unique() {
    let t = edit(
        &base(),
        "fqdn: kvm2.lab.example.org",
        "fqdn: KVM1.lab.example.org",
    );
    let c = case(&t);
    expect_error(
        &c,
        at(&t, "fqdn: KVM1", "KVM1"),
        "hosts[1].fqdn",
        "duplicate of hosts[0].fqdn",
    );
}

#[test]
fn rule_mac_unique_in_any_spelling() {
    let t = edit(&base(), "\"00-04-23-AA-BB-02\"", "\"00-04-23-AA-BB-01\"");
    let c = case(&t);
    expect_error(
        &c,
        at(&t, "00-04-23-AA-BB-01", "\""),
        "hosts[1].mac",
        "duplicate of hosts[0].mac",
    );
}

#[test]
fn rule_mac_must_parse() {
    let t = edit(&base(), "\"00-04-23-AA-BB-02\"", "\"00-04-23-AA-BB\"");
    let c = case(&t);
    expect_error(
        &c,
        at(&t, "00-04-23-AA-BB\"", "\""),
        "hosts[1].mac",
        "is not a MAC address",
    );
    let t = edit(&base(), "\"00-04-23-AA-BB-02\"", "\"ff:ff:ff:ff:ff:ff\"");
    let c = case(&t);
    expect_error(&c, at(&t, "ff:ff", "\""), "hosts[1].mac", "multicast");
}

#[test]
fn rule_ip_unique() {
    let t = edit(&base(), "ip: 192.168.42.12", "ip: 192.168.42.11");
    let c = case(&t);
    expect_error(
        &c,
        at_nth(&t, "ip: 192.168.42.11", 1, "192"),
        "hosts[1].ip",
        "duplicate of hosts[0].ip",
    );
}

#[test]
fn rule_ip_inside_management_subnet() {
    let t = edit(&base(), "ip: 192.168.42.12", "ip: 192.168.43.12");
    let c = case(&t);
    expect_error(
        &c,
        at(&t, "ip: 192.168.43.12", "192"),
        "hosts[1].ip",
        "outside the management subnet 192.168.42.0/24",
    );
}

#[test]
fn rule_ip_not_network_broadcast_or_gateway() {
    for (ip, what) in [
        ("192.168.42.0", "network address"),
        ("192.168.42.255", "broadcast address"),
        ("192.168.42.1", "is the management gateway"),
    ] {
        let t = edit(&base(), "ip: 192.168.42.12", &format!("ip: {ip}"));
        let c = case(&t);
        expect_error(
            &c,
            at_end(&t, &format!("ip: {ip}"), "192"),
            "hosts[1].ip",
            what,
        );
    }
}

#[test]
fn rule_gateway_not_network_or_broadcast() {
    let t = edit(
        &base(),
        "gateway: 192.168.42.1 ",
        "gateway: 192.168.42.255 ",
    );
    let c = case(&t);
    expect_error(
        &c,
        at(&t, "gateway:", "192"),
        "defaults.network.management.gateway",
        "broadcast address of 192.168.42.0/24",
    );
    let t = edit(&base(), "gateway: 192.168.42.1 ", "gateway: 192.168.42.0 ");
    let c = case(&t);
    expect_error(
        &c,
        at(&t, "gateway:", "192"),
        "defaults.network.management.gateway",
        "network address",
    );
}

#[test]
fn rule_no_host_in_subnet_names_the_gateway() {
    let t = edit(&base(), "gateway: 192.168.42.1 ", "gateway: 192.168.24.1 ");
    let c = case(&t);
    expect_error(
        &c,
        at(&t, "gateway:", "192"),
        "defaults.network.management.gateway",
        "no host ip lies in the management subnet 192.168.24.0/24 that gateway 192.168.24.1",
    );
    // Only the gateway is blamed, not each host.
    assert_eq!(errors(&c).len(), 1, "{:?}", errors(&c));
}

#[test]
fn rule_vlan_range() {
    for bad in ["0", "4095"] {
        let t = edit(
            &base(),
            "public: { vlan: 200",
            &format!("public: {{ vlan: {bad}"),
        );
        let c = case(&t);
        expect_error(
            &c,
            at(&t, "public:", bad),
            "defaults.network.public.vlan",
            "out of range (use 1-4094)",
        );
    }
}

#[test]
fn rule_vlans_distinct() {
    let t = edit(&base(), "private: { vlan: 300", "private: { vlan: 100");
    let c = case(&t);
    expect_error(
        &c,
        at(&t, "private:", "100"),
        "defaults.network.private.vlan",
        "already the management VLAN",
    );
}

#[test]
fn rule_bridge_names_valid() {
    let t = edit(&base(), "bridge: cloudbr0", "bridge: cloudbr0-way-too-long");
    let c = case(&t);
    expect_error(
        &c,
        at(&t, "public:", "cloudbr0"),
        "defaults.network.public.bridge",
        "not a valid Linux interface name",
    );
    let t = edit(&base(), "bridge: cloudbr0", "bridge: \"br 0\"");
    let c = case(&t);
    expect_error(
        &c,
        at(&t, "public:", "\"br 0\""),
        "defaults.network.public.bridge",
        "not a valid Linux interface name",
    );
}

#[test]
fn rule_bridge_names_distinct() {
    let t = edit(&base(), "bridge: cloudbr1", "bridge: cloudbr0");
    let c = case(&t);
    expect_error(
        &c,
        at(&t, "private:", "cloudbr0"),
        "defaults.network.private.bridge",
        "also used by network.public.bridge",
    );
}

#[test]
fn rule_trunk_nic_valid() {
    let t = edit(&base(), "trunk_nic: eth0", "trunk_nic: \"eth0;reboot\"");
    let c = case(&t);
    expect_error(
        &c,
        at(&t, "trunk_nic", "\""),
        "defaults.network.trunk_nic",
        "not a valid Linux interface name",
    );
}

#[test]
fn rule_cpu_model_iff_custom() {
    let t = edit(
        &base(),
        "  network:\n",
        "  cpu: { mode: custom }\n  network:\n",
    );
    let c = case(&t);
    expect_error(
        &c,
        at(&t, "mode: custom", "custom"),
        "defaults.cpu.mode",
        "needs `cpu.model`",
    );
    let t = edit(
        &base(),
        "  network:\n",
        "  cpu: { mode: host-model, model: SandyBridge }\n  network:\n",
    );
    let c = case(&t);
    expect_error(
        &c,
        at(&t, "model: SandyBridge", "SandyBridge"),
        "defaults.cpu.model",
        "only used with `mode: custom`",
    );
    let t = edit(
        &base(),
        "  network:\n",
        "  cpu: { mode: custom, model: SandyBridge }\n  network:\n",
    );
    let inv = inventory::load(&case(&t).path).unwrap().inventory;
    assert_eq!(inv.hosts[0].cpu.model.as_deref(), Some("SandyBridge"));
}

#[test]
fn rule_selinux_only_for_centos6() {
    let t = edit(&base(), "os: centos6", "os: ubuntu1204");
    let t = edit(
        &t,
        "  network:\n",
        "  security: { selinux: disabled }\n  network:\n",
    );
    let c = case(&t);
    expect_error(
        &c,
        at(&t, "selinux:", "disabled"),
        "defaults.security.selinux",
        "centos6 only",
    );
    let t = edit(
        &base(),
        "  network:\n",
        "  security: { selinux: enforcing }\n  network:\n",
    );
    let c = case(&t);
    expect_error(
        &c,
        at(&t, "selinux:", "enforcing"),
        "defaults.security.selinux",
        "permissive",
    );
}

#[test]
fn rule_os_is_cluster_wide() {
    let t = edit(
        &base(),
        "    ip: 192.168.42.12\n",
        "    ip: 192.168.42.12\n    os: ubuntu1204\n",
    );
    let c = case(&t);
    expect_error(
        &c,
        at(&t, "os: ubuntu1204", "os"),
        "hosts[1].os",
        "same for every host",
    );
    let t = edit(&base(), "os: centos6", "os: centos7");
    let c = case(&t);
    expect_error(
        &c,
        at(&t, "os: centos7", "centos7"),
        "defaults.os",
        "did you mean `centos6`?",
    );
}

#[test]
fn rule_host_overriding_cpu_warns() {
    let t = edit(
        &base(),
        "    ip: 192.168.42.12\n",
        "    ip: 192.168.42.12\n    cpu: { mode: host-passthrough }\n",
    );
    let c = case(&t);
    expect_warning(
        &c,
        at(&t, "cpu: {", "cpu"),
        "hosts[1].cpu",
        "live migration",
    );
}

#[test]
fn rule_urls_parse() {
    let t = edit(
        &base(),
        "repository: http://cloudstack.apt-get.eu/rhel/4.2/",
        "repository: cloudstack.apt-get.eu/rhel/4.2/",
    );
    let c = case(&t);
    expect_error(
        &c,
        at(&t, "repository:", "cloudstack"),
        "defaults.cloudstack.repository",
        "not an http:// or https:// URL",
    );
    let t = edit(
        &base(),
        "    disk: sda\n",
        "    disk: sda\n    source: \"http://mirror.example.org/centos/$(reboot)\"\n",
    );
    let c = case(&t);
    expect_error(
        &c,
        at(&t, "source:", "\""),
        "defaults.install.source",
        "must be `cdrom` or an http(s) URL",
    );
    let t = edit(
        &base(),
        "    disk: sda\n",
        "    disk: sda\n    source: https://mirror.example.org/centos/6.3/os/x86_64/\n",
    );
    let inv = inventory::load(&case(&t).path).unwrap().inventory;
    assert_eq!(
        inv.hosts[0].install.source,
        inventory::InstallSource::Url("https://mirror.example.org/centos/6.3/os/x86_64/".into())
    );
}

#[test]
fn rule_root_password_hash_is_sha512_crypt() {
    let t = edit(&base(), &format!("\"{HASH}\""), "changeme");
    let c = case(&t);
    expect_error(
        &c,
        at(&t, "root_password_hash", "changeme"),
        "defaults.install.root_password_hash",
        "openssl passwd -6",
    );
    let t = edit(&base(), &format!("\"{HASH}\""), "\"$1$abc$defdefdef\"");
    let c = case(&t);
    expect_error(
        &c,
        at(&t, "root_password_hash", "\""),
        "defaults.install.root_password_hash",
        "only `$6$`",
    );
}

#[test]
fn rule_ubuntu_with_openvswitch_warns() {
    let t = edit(&base(), "os: centos6", "os: ubuntu1204");
    let t = edit(
        &t,
        "    trunk_nic: eth0",
        "    type: openvswitch\n    trunk_nic: eth0",
    );
    let c = case(&t);
    expect_warning(
        &c,
        at(&t, "type: openvswitch", "openvswitch"),
        "defaults.network.type",
        "0.9.11",
    );
}

#[test]
fn rule_ubuntu_with_cpu_mode_warns() {
    let t = edit(&base(), "os: centos6", "os: ubuntu1204");
    let t = edit(
        &t,
        "  network:\n",
        "  cpu:\n    mode: host-model\n  network:\n",
    );
    let c = case(&t);
    expect_warning(
        &c,
        at(&t, "mode: host-model", "host-model"),
        "defaults.cpu.mode",
        "0.9.10",
    );
}

#[test]
fn rule_unknown_keys_suggest_the_nearest() {
    let t = edit(&base(), "trunk_nic: eth0", "trunk_nick: eth0");
    let c = case(&t);
    expect_error(
        &c,
        at(&t, "trunk_nick", "trunk_nick"),
        "defaults.network.trunk_nick",
        "did you mean `trunk_nic`?",
    );
    let t = edit(
        &base(),
        "    ip: 192.168.42.12\n",
        "    ip: 192.168.42.12\n    instal: { disk: sdb }\n",
    );
    let c = case(&t);
    expect_error(
        &c,
        at(&t, "instal:", "instal"),
        "hosts[1].instal",
        "did you mean `install`?",
    );
    let t = edit(&base(), "cluster: t1", "cluster: t1\nhost: []");
    let c = case(&t);
    expect_error(
        &c,
        at(&t, "host: []", "host"),
        "host",
        "did you mean `hosts`?",
    );
}

#[test]
fn rule_required_keys_named_with_a_fix() {
    let t = edit(&base(), "    disk: sda\n", "");
    let c = case(&t);
    expect_error(
        &c,
        at(&t, "  install:", "install"),
        "defaults.install.disk",
        "disk: sda",
    );
    // Given for one host only: the other host is blamed.
    let t = edit(
        &t,
        "    ip: 192.168.42.12\n",
        "    ip: 192.168.42.12\n    install: { disk: sdb }\n",
    );
    let c = case(&t);
    expect_error(
        &c,
        at(&t, "- fqdn: kvm1", "fqdn"),
        "hosts[0].install.disk",
        "neither defaults nor this host",
    );
    let t = edit(&base(), "    ip: 192.168.42.12\n", "");
    let c = case(&t);
    expect_error(
        &c,
        at(&t, "- fqdn: kvm2", "fqdn"),
        "hosts[1].ip",
        "management address",
    );
}

#[test]
fn rule_version_must_be_1() {
    let t = edit(&base(), "version: 1", "version: 2");
    let c = case(&t);
    expect_error(
        &c,
        at(&t, "version: 2", "2"),
        "version",
        "write `version: 1`",
    );
}

#[test]
fn rule_host_only_keys_not_in_defaults() {
    let t = edit(
        &base(),
        "  os: centos6",
        "  os: centos6\n  ip: 192.168.42.9",
    );
    let c = case(&t);
    expect_error(
        &c,
        at(&t, "  ip: 192.168.42.9", "ip"),
        "defaults.ip",
        "set it in each entry of `hosts`",
    );
}

#[test]
fn all_errors_are_collected_in_file_order() {
    let t = edit(&base(), "trunk_nic: eth0", "trunk_nic: \"eth 0\"");
    let t = edit(&t, "vlan: 200", "vlan: 5000");
    let t = edit(&t, "fqdn: kvm2.lab.example.org", "fqdn: kvm2");
    let t = edit(&t, "ip: 192.168.42.12", "ip: 192.168.42.300");
    let c = case(&t);
    let errs = errors(&c);
    let keys: Vec<&str> = errs.iter().map(|d| d.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "defaults.network.trunk_nic",
            "defaults.network.public.vlan",
            "hosts[1].fqdn",
            "hosts[1].ip"
        ],
        "{errs:?}"
    );
}

#[test]
fn errors_in_defaults_are_reported_once() {
    let hosts: String = (2..50)
        .map(|i| {
            format!("  - fqdn: kvm{i}.lab.example.org\n    mac: \"00:04:23:aa:bc:{i:02x}\"\n    ip: 192.168.42.{}\n", i + 100)
        })
        .collect();
    let t = format!("{}{hosts}", edit(&base(), "disk: sda", "disk: /dev/sda").replace("  - fqdn: kvm2.lab.example.org\n    mac: \"00-04-23-AA-BB-02\"\n    ip: 192.168.42.12\n", ""));
    let c = case(&t);
    let errs = errors(&c);
    assert_eq!(errs.len(), 1, "{errs:?}");
    expect_error(
        &c,
        at(&t, "disk:", "/dev"),
        "defaults.install.disk",
        "without /dev/: `sda`",
    );
}

// ------------------------------------------------ hvseed's added keys and values

#[test]
fn kernel_args_refuse_spaces_quotes_and_shell() {
    for bad in [
        "\"a b\"", "\"a'b\"", "'a\"b'", "'a\\b'", "\"a;b\"", "\"$x\"", "\"`x`\"", "\"\"",
    ] {
        let t = edit(
            &base(),
            "    disk: sda\n",
            &format!("    disk: sda\n    kernel_args: [console=tty0, {bad}]\n"),
        );
        let c = case(&t);
        expect_error(
            &c,
            at(&t, "kernel_args", bad),
            "defaults.install.kernel_args[1]",
            "",
        );
    }
    let t = edit(
        &base(),
        "    disk: sda\n",
        "    disk: sda\n    kernel_args: console=ttyS0\n",
    );
    let c = case(&t);
    expect_error(
        &c,
        at(&t, "kernel_args", "console"),
        "defaults.install.kernel_args",
        "write it as a list",
    );
}

#[test]
fn kernel_args_split_by_a_flow_list_comma_are_caught() {
    // In a YAML flow list the comma separates items: [console=ttyS0,115200n8] is two.
    let t = edit(
        &base(),
        "    disk: sda\n",
        "    disk: sda\n    kernel_args: [console=ttyS0,115200n8]\n",
    );
    let c = case(&t);
    expect_error(
        &c,
        at(&t, "kernel_args", "115200n8"),
        "defaults.install.kernel_args[1]",
        "\"console=ttyS0,115200n8\"",
    );
    let t = edit(
        &base(),
        "    disk: sda\n",
        "    disk: sda\n    kernel_args: [\"console=ttyS0,115200n8\"]\n",
    );
    let inv = inventory::load(&case(&t).path).unwrap().inventory;
    assert_eq!(
        strs(&inv.hosts[0].install.kernel_args),
        ["console=ttyS0,115200n8"]
    );
}

#[test]
fn extra_repositories_need_unique_names_and_urls() {
    let repos = "    extra_repositories:\n      - { name: ovs, url: http://a.example.org/el6/ }\n      - { name: ovs, url: \"ftp://b.example.org/\" }\n      - { name: \"bad name\", url: http://c.example.org/ }\n      - { url: http://d.example.org/ }\n";
    let t = edit(
        &base(),
        "    disk: sda\n",
        &format!("    disk: sda\n{repos}"),
    );
    let c = case(&t);
    expect_error(
        &c,
        at_nth(&t, "name: ovs", 1, "ovs"),
        "defaults.install.extra_repositories[1].name",
        "duplicate of defaults.install.extra_repositories[0].name",
    );
    expect_error(
        &c,
        at(&t, "ftp:", "\"ftp"),
        "defaults.install.extra_repositories[1].url",
        "http",
    );
    expect_error(
        &c,
        at(&t, "bad name", "\"bad"),
        "defaults.install.extra_repositories[2].name",
        "not a repository name",
    );
    expect_error(
        &c,
        at(&t, "d.example.org", "{"),
        "defaults.install.extra_repositories[3]",
        "missing `name`",
    );
}

#[test]
fn ssh_keys_are_single_lines_with_a_key_type() {
    let t = edit(&base(), "    disk: sda\n", "    disk: sda\n    ssh_authorized_keys:\n      - \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAbc admin\\nssh-rsa AAAA\"\n      - \"AAAAB3NzaC1yc2EAAAADAQABAAABAQ admin\"\n");
    let c = case(&t);
    expect_error(
        &c,
        at(&t, "ssh-ed25519", "\""),
        "defaults.install.ssh_authorized_keys[0]",
        "single line",
    );
    expect_error(
        &c,
        at(&t, "AAAAB3", "\""),
        "defaults.install.ssh_authorized_keys[1]",
        "key type",
    );
    // Shell and quote characters in the comment are kept literally.
    let key =
        r#"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAbcdefghijklmnop it's "me" $(reboot) `id`; x"#;
    let t = edit(
        &base(),
        "    disk: sda\n",
        &format!(
            "    disk: sda\n    ssh_authorized_keys: ['{}']\n",
            key.replace('\'', "''")
        ),
    );
    let inv = inventory::load(&case(&t).path).unwrap().inventory;
    assert_eq!(strs(&inv.hosts[0].install.ssh_authorized_keys), [key]);
}

#[test]
fn values_that_land_in_files_are_checked() {
    let cases: &[(&str, &str, &str, &str, &str)] = &[
        (
            "    disk: sda\n",
            "    disk: sda\n    locale: \"en_US.UTF-8; reboot\"\n",
            "locale:",
            "defaults.install.locale",
            "not a locale",
        ),
        (
            "    disk: sda\n",
            "    disk: sda\n    keyboard: \"us$(id)\"\n",
            "keyboard:",
            "defaults.install.keyboard",
            "not a keyboard layout",
        ),
        (
            "    disk: sda\n",
            "    disk: sda\n    timezone: ../../etc/passwd\n",
            "timezone:",
            "defaults.install.timezone",
            "not a time zone",
        ),
        (
            "    disk: sda\n",
            "    disk: sda\n    extra_packages: [vim, \"rm -rf\"]\n",
            "extra_packages:",
            "defaults.install.extra_packages[1]",
            "not a package name",
        ),
        (
            "servers: [192.168.42.1]",
            "servers: [dns.example.org]",
            "servers:",
            "defaults.dns.servers[0]",
            "not an IPv4 address",
        ),
        (
            "servers: [192.168.42.1]",
            "servers: [192.168.42.1]\n    search: [\"a b.org\"]",
            "search:",
            "defaults.dns.search[0]",
            "not a domain name",
        ),
        (
            "  dns:\n",
            "  ntp_servers: [\"pool ntp\"]\n  dns:\n",
            "ntp_servers:",
            "defaults.ntp_servers[0]",
            "not a host name or IPv4",
        ),
        (
            "  dns:\n",
            "  ntp_servers: []\n  dns:\n",
            "ntp_servers:",
            "defaults.ntp_servers",
            "need NTP",
        ),
        (
            "management_server: 192.168.42.5",
            "management_server: cs",
            "management_server:",
            "defaults.cloudstack.management_server",
            "neither an IPv4 address nor a fully qualified name",
        ),
        (
            "version: \"4.2\"",
            "version: latest",
            "version: latest",
            "defaults.cloudstack.version",
            "not a CloudStack version",
        ),
        (
            "  network:\n",
            "  security: { firewall_sources: [10.1.2.3/8] }\n  network:\n",
            "firewall_sources",
            "defaults.security.firewall_sources[0]",
            "did you mean `10.0.0.0/8`?",
        ),
        (
            "  network:\n",
            "  cpu: { features: [vmx, \"a b\"] }\n  network:\n",
            "features",
            "defaults.cpu.features[1]",
            "not a CPU model/feature name",
        ),
        (
            "cluster: t1",
            "cluster: Lab_1",
            "cluster:",
            "cluster",
            "not a cluster name",
        ),
    ];
    for (from, to, line_has, key, needle) in cases {
        let t = edit(&base(), from, to);
        let c = case(&t);
        let line = t.lines().find(|l| l.contains(line_has)).unwrap();
        // The value's position: the list item or the value after `key: `.
        let last = key.rsplit('.').next().unwrap();
        let token = if let Some(i) = last.find('[') {
            let idx: usize = last[i + 1..last.len() - 1].parse().unwrap();
            let inner = &line[line.find('[').unwrap() + 1..line.rfind(']').unwrap()];
            inner.split(", ").nth(idx).unwrap().to_string()
        } else {
            line.split_once(": ").unwrap().1.to_string()
        };
        expect_error(&c, at(&t, line_has, &token), key, needle);
    }
}

#[test]
fn cloudstack_version_as_a_number_keeps_its_digits() {
    let t = edit(&base(), "version: \"4.2\"", "version: 4.10");
    let inv = inventory::load(&case(&t).path).unwrap().inventory;
    assert_eq!(&*inv.hosts[0].cloudstack.version, "4.10");
}

#[test]
fn linux_bridge_refuses_openvswitch_only_keys() {
    let t = edit(
        &base(),
        "    trunk_nic: eth0",
        "    trunk_nic: eth0\n    trunk_bridge: cloudbr",
    );
    let c = case(&t);
    expect_error(
        &c,
        at(&t, "trunk_bridge", "cloudbr"),
        "defaults.network.trunk_bridge",
        "only used with `type: openvswitch`",
    );
    let t = edit(
        &base(),
        "gateway: 192.168.42.1 }",
        "gateway: 192.168.42.1, bridge: mgmt0 }",
    );
    let c = case(&t);
    expect_error(
        &c,
        at(&t, "bridge: mgmt0", "mgmt0"),
        "defaults.network.management.bridge",
        "only used with `type: openvswitch`",
    );
}

#[test]
fn host_override_errors_point_at_the_host() {
    let t = edit(
        &base(),
        "    ip: 192.168.42.12\n",
        "    ip: 192.168.42.12\n    install: { disk: \"sd b\" }\n",
    );
    let c = case(&t);
    expect_error(
        &c,
        at(&t, "disk: \"sd b\"", "\"sd b\""),
        "hosts[1].install.disk",
        "not a disk device name",
    );
}

// ------------------------------------------------------------------ hostile input

/// Asserts exactly one error, naming the file, whose message contains `needle`.
fn expect_single_error(path: &Path, needle: &str) {
    let diags = match inventory::load(path) {
        Ok(_) => panic!("{} was accepted", path.display()),
        Err(InventoryError::Invalid { diagnostics, .. }) => diagnostics,
    };
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert!(diags[0].message.contains(needle), "{:?}", diags[0]);
    let (code, err) = check(path);
    assert_eq!(code, 1);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with(&path.display().to_string()), "{err}");
}

#[test]
fn hostile_billion_laughs() {
    let mut t = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    let mut prev = 'a';
    for name in 'b'..='j' {
        let refs = vec![format!("*{prev}"); 9].join(",");
        t.push_str(&format!("{name}: &{name} [{refs}]\n"));
        prev = name;
    }
    let c = case(&t);
    expect_single_error(&c.path, "alias");
}

#[test]
fn hostile_wide_alias_replay() {
    let items = vec!["xxxxxxxxxx"; 900].join(",");
    let refs = vec!["*a"; 900].join(",");
    let c = case(&format!("a: &a [{items}]\nb: [{refs}]\n"));
    expect_single_error(&c.path, "alias");
}

#[test]
fn hostile_huge_file_is_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.yaml");
    // Sparse: 100 MB without writing them.
    std::fs::File::create(&path)
        .unwrap()
        .set_len(100_000_000)
        .unwrap();
    expect_single_error(&path, "larger than 16 MiB");
}

#[test]
fn hostile_non_utf8() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("latin1.yaml");
    std::fs::write(&path, b"version: 1\ncluster: caf\xe9\n").unwrap();
    expect_single_error(&path, "not UTF-8");
    let d = match inventory::load(&path) {
        Err(InventoryError::Invalid { diagnostics, .. }) => diagnostics[0].clone(),
        Ok(_) => unreachable!(),
    };
    assert_eq!((d.line, d.column), (2, "cluster: caf".len() + 1));
}

#[test]
fn hostile_deep_nesting() {
    let c = case(&format!("{}{}\n", "[".repeat(10_000), "]".repeat(10_000)));
    expect_single_error(&c.path, "nested deeper");
    let block: String = (0..2_000)
        .map(|i| format!("{}k:\n", " ".repeat(i)))
        .collect();
    let c = case(&block);
    expect_single_error(&c.path, "nested deeper");
}

#[test]
fn hostile_missing_file_and_directory() {
    let dir = tempfile::tempdir().unwrap();
    expect_single_error(&dir.path().join("nope.yaml"), "no such file");
    expect_single_error(dir.path(), "is a directory");
}

#[test]
fn hostile_empty_and_wrong_shape() {
    expect_single_error(&case("").path, "the file is empty");
    expect_single_error(&case("# only a comment\n").path, "the file is empty");
    expect_single_error(&case("- a\n- b\n").path, "holds a list");
    expect_single_error(&case("just text\n").path, "holds a string");
    expect_single_error(
        &case("a: 1\n---\nb: 2\n").path,
        "more than one YAML document",
    );
    expect_single_error(&case("a: 1\na: 2\n").path, "duplicate key `a`");
    let c = case("version: 1\n  cluster: [\n");
    expect_single_error(&c.path, "invalid YAML");
}

// ------------------------------------------------------------------- snapshots

/// `hvseed check` run from the checkout root on a relative path, stderr + exit code.
fn check_output(rel: &str) -> String {
    let out = hvseed()
        .current_dir(root())
        .arg("check")
        .arg(rel)
        .output()
        .expect("run hvseed check");
    format!(
        "exit: {}\n{}",
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn snapshot_check_of_examples() {
    for p in examples() {
        let name = p.file_stem().unwrap().to_string_lossy().into_owned();
        let rel = format!("profiles/examples/{name}.yaml");
        insta::assert_snapshot!(format!("check_{name}"), check_output(&rel));
    }
}

#[test]
fn snapshot_check_of_invalid_inventories() {
    let dir = root().join("tests/fixtures/inventories");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    names.sort();
    assert!(names.len() >= 4, "{names:?}");
    for n in names {
        let rel = format!("tests/fixtures/inventories/{n}");
        let stem = n.trim_end_matches(".yaml").to_string();
        insta::assert_snapshot!(format!("check_{stem}"), check_output(&rel));
    }
}

#[test]
fn snapshot_check_of_hostile_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let bomb = dir.path().join("bomb.yaml");
    let mut t = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    let mut prev = 'a';
    for name in 'b'..='j' {
        t.push_str(&format!(
            "{name}: &{name} [{}]\n",
            vec![format!("*{prev}"); 9].join(",")
        ));
        prev = name;
    }
    std::fs::write(&bomb, t).unwrap();
    let latin1 = dir.path().join("latin1.yaml");
    std::fs::write(&latin1, b"version: 1\ncluster: caf\xe9\n").unwrap();
    let mut out = String::new();
    for p in [
        bomb,
        latin1,
        dir.path().join("missing.yaml"),
        dir.path().to_path_buf(),
    ] {
        out.push_str(&check(&p).1);
    }
    // The temporary directory differs on every run.
    let out = out.replace(&dir.path().display().to_string(), "[TMP]");
    insta::assert_snapshot!("check_hostile", out);
}

#[test]
fn anchors_aliases_and_merge_keys_keep_text_as_written() {
    let t = edit(
        &base(),
        "    ip: 192.168.42.11\n",
        "    ip: 192.168.42.11\n    install: &inst { disk: sdb, keyboard: no }\n",
    );
    let t = edit(
        &t,
        "    ip: 192.168.42.12\n",
        "    ip: 192.168.42.12\n    <<: { install: *inst }\n",
    );
    let t = edit(&t, "version: \"4.2\"", "version: 4.10");
    let t = edit(&t, "\"00-04-23-AA-BB-02\"", "00:04:23:00:00:02");
    let inv = inventory::load(&case(&t).path).unwrap().inventory;
    for h in &inv.hosts {
        assert_eq!(&*h.install.disk, "sdb");
        assert_eq!(&*h.install.keyboard, "no");
        assert_eq!(&*h.cloudstack.version, "4.10");
    }
    assert_eq!(inv.hosts[1].mac, "00:04:23:00:00:02");
}

#[test]
fn version_and_alias_mistakes_are_explained() {
    let t = edit(&base(), "version: 1", "version: \"1\"");
    let c = case(&t);
    expect_error(&c, at(&t, "version: \"1\"", "\""), "version", "as a number");
    let t = edit(&base(), "    disk: sda\n", "    disk: *disk\n");
    let c = case(&t);
    expect_single_error(&c.path, "not defined before it");
}

#[test]
fn hostile_many_problems_are_capped() {
    let t: String = (0..5_000).map(|i| format!("k{i}: v\n")).collect();
    let c = case(&t);
    let (code, err) = check(&c.path);
    assert_eq!(code, 1);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 501, "{}", lines.len());
    let last = lines.last().unwrap();
    assert!(last.contains("more problem(s) not shown"), "{last}");
}

#[test]
fn defaults_are_checked_even_without_hosts() {
    let t = base();
    let t = edit(
        &t[..t.find("hosts:").unwrap()],
        "disk: sda",
        "disk: /dev/sda",
    );
    let c = case(&t);
    expect_error(
        &c,
        at(&t, "disk:", "/dev"),
        "defaults.install.disk",
        "without /dev/",
    );
    expect_error(
        &c,
        at(&t, "version", "version"),
        "hosts",
        "at least one host",
    );
    assert_eq!(errors(&c).len(), 2, "{:?}", errors(&c));
}

#[test]
fn host_overriding_the_management_subnet_is_checked_against_its_own() {
    let t = edit(
        &base(),
        "    ip: 192.168.42.12\n",
        "    ip: 10.1.0.12\n    network: { management: { gateway: 10.1.0.1, prefix: 16 } }\n",
    );
    let inv = inventory::load(&case(&t).path).unwrap().inventory;
    let m = &inv.hosts[1].network.management;
    assert_eq!(
        (m.gateway.to_string().as_str(), m.prefix, m.vlan),
        ("10.1.0.1", 16, 100)
    );
    let t = edit(&t, "gateway: 10.1.0.1,", "gateway: 10.2.0.1,");
    let t = edit(&t, "prefix: 16 }", "prefix: 24 }");
    let c = case(&t);
    expect_error(
        &c,
        at(&t, "gateway: 10.2.0.1", "10.2"),
        "hosts[1].network.management.gateway",
        "no host ip lies in the management subnet 10.2.0.0/24",
    );
}

// ------------------------------------------------- names that would be read as options

#[test]
fn names_starting_with_a_dash_are_refused() {
    // Interface and bridge names become `ifcfg-<name>`, `auto <name>` and arguments of
    // ifup, brctl and ovs-vsctl; none may start with `-`.
    for (from, to, line_has, key) in [
        (
            "trunk_nic: eth0",
            "trunk_nic: \"--help\"",
            "trunk_nic",
            "defaults.network.trunk_nic",
        ),
        (
            "bridge: cloudbr0",
            "bridge: \"-rf\"",
            "public:",
            "defaults.network.public.bridge",
        ),
        (
            "bridge: cloudbr1",
            "bridge: \"-\"",
            "private:",
            "defaults.network.private.bridge",
        ),
    ] {
        let t = edit(&base(), from, to);
        let c = case(&t);
        expect_error(
            &c,
            at(&t, line_has, "\""),
            key,
            "not starting with `-`, which commands would read as an option",
        );
    }
    // Open vSwitch bridges, a CPU word, a repository id and a keyboard layout too.
    let ovs = edit(
        &base(),
        "    trunk_nic: eth0\n",
        "    type: openvswitch\n    trunk_nic: eth0\n    trunk_bridge: \"-rf\"\n",
    );
    let ovs = edit(
        &ovs,
        "management: { vlan: 100,",
        "management: { bridge: \"--all\", vlan: 100,",
    );
    let c = case(&ovs);
    expect_error(
        &c,
        at(&ovs, "trunk_bridge", "\""),
        "defaults.network.trunk_bridge",
        "not starting with `-`",
    );
    expect_error(
        &c,
        at(&ovs, "management:", "\"--all\""),
        "defaults.network.management.bridge",
        "not starting with `-`",
    );
    let t = edit(
        &base(),
        "  network:\n",
        "  cpu: { mode: custom, model: \"-x\" }\n  network:\n",
    );
    let c = case(&t);
    expect_error(
        &c,
        at(&t, "model:", "\"-x\""),
        "defaults.cpu.model",
        "not starting with `-`",
    );
    let t = edit(
        &base(),
        "    disk: sda\n",
        "    disk: sda\n    keyboard: \"-us\"\n    extra_repositories: [{ name: \"-o\", url: \"http://x.example.org/\" }]\n",
    );
    let c = case(&t);
    expect_error(
        &c,
        at(&t, "keyboard:", "\""),
        "defaults.install.keyboard",
        "starting with a letter or digit",
    );
    expect_error(
        &c,
        at(&t, "extra_repositories:", "\"-o\""),
        "defaults.install.extra_repositories[0].name",
        "starting with a letter or digit",
    );
}

// ------------------------------------------- kernel arguments: one rule, in the loader

#[test]
fn kernel_args_with_boot_loader_syntax_are_refused_by_check() {
    for ch in "&*|<>(){}!^#?[]".chars() {
        let arg = format!("rd.foo=a{ch}b");
        let t = edit(
            &base(),
            "    disk: sda\n",
            &format!("    disk: sda\n    kernel_args: [console=tty0, \"{arg}\"]\n"),
        );
        let c = case(&t);
        expect_error(
            &c,
            at(&t, "kernel_args", "\"rd.foo"),
            "defaults.install.kernel_args[1]",
            &format!("`{arg}` contains a character (`{ch}`) that boot loaders would split, expand or drop"),
        );
    }
}

#[test]
fn every_verb_refuses_a_bad_kernel_arg_the_same_way() {
    let t = edit(
        &base(),
        "    disk: sda\n",
        "    disk: sda\n    kernel_args: [\"rd.foo=a&b#c\"]\n",
    );
    let c = case(&t);
    let (code, check_err) = check(&c.path);
    assert_eq!(code, 1, "{check_err}");
    let (line, col) = at(&t, "kernel_args", "\"rd.foo");
    let want = format!(
        "{}:{line}:{col}: defaults.install.kernel_args[0]: `rd.foo=a&b#c` contains a character (`&`)",
        c.path.display()
    );
    assert!(
        check_err.lines().any(|l| l.starts_with(&want)),
        "{want}\nnot in:\n{check_err}"
    );
    let dir = c.path.parent().unwrap();
    // A stand-in ISO: the verbs must stop at the inventory, before looking at it.
    let iso = dir.join("source.iso");
    std::fs::write(&iso, b"not an iso").unwrap();
    let runs: [(&str, Vec<std::ffi::OsString>); 3] = [
        ("render", vec!["--out".into(), dir.join("r").into()]),
        (
            "iso",
            vec![
                "--source".into(),
                iso.clone().into(),
                "--out".into(),
                dir.join("o.iso").into(),
            ],
        ),
        (
            "pxe",
            vec![
                "--source".into(),
                iso.clone().into(),
                "--out".into(),
                dir.join("p").into(),
                "--http-base".into(),
                "http://127.0.0.1:1".into(),
            ],
        ),
    ];
    for (verb, args) in runs {
        let out = hvseed()
            .arg(verb)
            .arg(&c.path)
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{verb}: {err}");
        // The same findings as `check`, then the verb's one-line refusal.
        let findings: Vec<&str> = err.lines().filter(|l| !l.starts_with("error: ")).collect();
        let check_lines: Vec<&str> = check_err.lines().collect();
        assert_eq!(findings, check_lines, "{verb}");
        assert!(err.contains("nothing was written"), "{verb}: {err}");
    }
    for p in ["r", "o.iso", "p"] {
        assert!(!dir.join(p).exists(), "{p} was written");
    }
}

// ------------------------------------------------ no terminal controls from the input

/// Asserts that `out` holds no control character but `\n` ending lines: no C0 byte,
/// no DEL, no C1 (U+0080-U+009F) and no bidirectional override.
fn assert_no_controls(out: &str) {
    for (i, c) in out.char_indices() {
        let bad = (c.is_control() && c != '\n')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        assert!(!bad, "control {c:?} at byte {i} of:\n{out:?}");
    }
}

#[test]
fn diagnostics_escape_control_characters_from_the_input() {
    // A keyboard value that sets the window title, clears the screen and forges an
    // "ok" line; an unknown key and a comment in an ssh key with C1 controls and
    // DEL; a file name with an escape sequence.
    let t = edit(
        &base(),
        "    disk: sda\n",
        "    disk: sda\n    keyboard: \"\\e]0;pwned\\a\\e[2J\\r\\ninv.yaml: ok: cluster t1 with 2 host(s), centos6\"\n    \"x\\e[31m\\u009b\\x7f\": 1\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inv\x1b[2J\r.yaml");
    std::fs::write(&path, &t).unwrap();
    let out = hvseed().arg("check").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).expect("UTF-8 output");
    assert_no_controls(&err);
    let shown = format!("{}/inv\\x1b[2J\\r.yaml", dir.path().display());
    let (line, col) = at(&t, "keyboard:", "\"");
    let keyboard = format!(
        "{shown}:{line}:{col}: defaults.install.keyboard: `\\x1b]0;pwned\\x07\\x1b[2J\\r\\ninv.yaml: ok: cluster t1 with 2 host(s), centos6` is not a keyboard layout"
    );
    assert!(
        err.lines().any(|l| l.starts_with(&keyboard)),
        "{keyboard}\nnot in:\n{err}"
    );
    let (line, col) = at(&t, "\"x\\e", "\"");
    let key = format!(
        "{shown}:{line}:{col}: defaults.install.x\\x1b[31m\\u{{9b}}\\x7f: unknown key `x\\x1b[31m\\u{{9b}}\\x7f`"
    );
    assert!(
        err.lines().any(|l| l.starts_with(&key)),
        "{key}\nnot in:\n{err}"
    );
    // One line per finding: nothing forged a line of its own.
    assert_eq!(err.lines().count(), 2, "{err}");
    assert!(!err.lines().any(|l| l.starts_with("inv.yaml: ok")), "{err}");

    // The same for a verb's final error line (the file name is quoted there too).
    let out = hvseed()
        .arg("render")
        .arg(&path)
        .arg("--out")
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).expect("UTF-8 output");
    assert_no_controls(&err);
    assert!(
        err.contains(&format!(
            "error: nothing was written: {shown} has 2 error(s)"
        )),
        "{err}"
    );
    // And for a file that cannot be read at all.
    let missing = dir.path().join("no\x1b]0;x\x07such.yaml");
    let out = hvseed().arg("check").arg(&missing).output().unwrap();
    let err = String::from_utf8(out.stderr).expect("UTF-8 output");
    assert_no_controls(&err);
    assert!(err.contains("no\\x1b]0;x\\x07such.yaml"), "{err}");
}

// ------------------------------------------------------------- value length limits

#[test]
fn every_value_has_a_length_limit_with_a_located_message() {
    let key = |comment: usize| {
        format!(
            "\"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHvseed {}\"",
            "c".repeat(comment)
        )
    };
    let long_url = format!("http://mirror.example.org/{}", "p".repeat(2100));
    let cases: Vec<(String, &str, &str, &str)> = vec![
        (
            format!("    keyboard: {}\n", "k".repeat(1 << 20)),
            "keyboard:",
            "defaults.install.keyboard",
            "is 1048576 bytes long; no inventory value may be longer than 8 KiB",
        ),
        (
            format!("    ssh_authorized_keys: [{}]\n", key(8200)),
            "ssh_authorized_keys:",
            "defaults.install.ssh_authorized_keys[0]",
            "no inventory value may be longer than 8 KiB",
        ),
        (
            format!("    source: {long_url}\n"),
            "source:",
            "defaults.install.source",
            "a URL may have at most 2048",
        ),
        (
            format!("    kernel_args: [{}]\n", "a".repeat(600)),
            "kernel_args:",
            "defaults.install.kernel_args[0]",
            "a kernel argument may have at most 512",
        ),
        (
            format!(
                "    ssh_authorized_keys: [{}]\n",
                vec![key(1); 257].join(", ")
            ),
            "ssh_authorized_keys:",
            "defaults.install.ssh_authorized_keys",
            "has 257 items; at most 256 are allowed here",
        ),
    ];
    for (lines, line_has, k, needle) in cases {
        let t = edit(
            &base(),
            "    disk: sda\n",
            &format!("    disk: sda\n{lines}"),
        );
        let c = case(&t);
        let value_at = at(&t, line_has, line_has);
        let col = t.lines().nth(value_at.0 - 1).unwrap();
        // The value starts after `key: ` (and `[` for a list item, not for the list).
        let start = col.find(": ").unwrap() + 2;
        let start = if k.ends_with(']') { start + 1 } else { start };
        expect_error(&c, (value_at.0, start + 1), k, needle);
    }
    // A password hash, a name and a list of the host's own.
    let t = edit(
        &base(),
        "    ip: 192.168.42.12\n",
        &format!(
            "    ip: 192.168.42.12\n    install: {{ root_password_hash: \"$6${}\" }}\n    dns: {{ servers: [10.0.0.1, 10.0.0.2, 10.0.0.3, 10.0.0.4] }}\n",
            "s".repeat(200)
        ),
    );
    let t = edit(
        &t,
        "kvm2.lab.example.org",
        &format!("{}.lab.example.org", "k".repeat(300)),
    );
    let c = case(&t);
    expect_error(
        &c,
        at(&t, "root_password_hash: \"$6$s", "\"$6$"),
        "hosts[1].install.root_password_hash",
        "a `$6$` hash may have at most 128",
    );
    expect_error(
        &c,
        at(&t, "servers: [10.0.0.1, 10.0.0.2", "["),
        "hosts[1].dns.servers",
        "has 4 items; at most 3 are allowed here",
    );
    // The message quotes the start of a long value, never all of it.
    expect_error(
        &c,
        at(&t, "kkkk", "kkk"),
        "hosts[1].fqdn",
        &format!(
            "`{}…(316 bytes)` is not a valid fully qualified name",
            "k".repeat(64)
        ),
    );
}

// ------------------------------------------------------------------- debian12

/// `base()` as a Debian 12 cluster: a mirror, CloudStack 4.20 from the jammy suite,
/// signed with the release key.
fn base_debian12() -> String {
    let t = edit(&base(), "os: centos6", "os: debian12");
    let t = edit(
        &t,
        "  install:\n",
        "  install:\n    source: http://deb.debian.org/debian\n",
    );
    let t = edit(&t, "version: \"4.2\"", "version: \"4.20\"");
    edit(
        &t,
        "    repository: http://cloudstack.apt-get.eu/rhel/4.2/\n",
        "    repository: https://download.cloudstack.org/ubuntu\n    key: https://download.cloudstack.org/release.asc\n",
    )
}

#[test]
fn debian12_example_resolves_to_its_repository_settings() {
    let inv = inventory::load(&root().join("profiles/examples/lab-debian12.yaml"))
        .unwrap()
        .inventory;
    assert_eq!(inv.os, inventory::Os::Debian12);
    for h in &inv.hosts {
        let apt = h.cloudstack.apt.as_ref().unwrap();
        assert_eq!(&*apt.suite, "jammy");
        assert_eq!(
            apt.trust,
            inventory::AptTrust::KeyUrl("https://download.cloudstack.org/release.asc".into())
        );
        assert_eq!(h.security.selinux, None);
    }
    let c = case(&base_debian12());
    let (ok, diags) = findings(&c);
    assert!(ok && diags.is_empty(), "{diags:?}");
    // The suite defaults to jammy (download.cloudstack.org has no Debian suite).
    let inv = inventory::load(&c.path).unwrap().inventory;
    assert_eq!(
        &*inv.hosts[0].cloudstack.apt.as_ref().unwrap().suite,
        "jammy"
    );
}

#[test]
fn debian12_refuses_cloudstack_older_than_4_20() {
    for old in ["4.19", "4.2", "4.19.1", "3.20"] {
        let t = edit(&base_debian12(), "\"4.20\"", &format!("\"{old}\""));
        let c = case(&t);
        expect_error(
            &c,
            at(&t, "version: \"", "\""),
            "defaults.cloudstack.version",
            "needs 4.20 or later (Debian 12 hosts are supported from CloudStack 4.20 on, apache/cloudstack#9810): write e.g. `version: \"4.20\"`",
        );
    }
    for ok in ["4.20.1", "4.21", "5.0"] {
        let t = edit(&base_debian12(), "\"4.20\"", &format!("\"{ok}\""));
        assert!(findings(&case(&t)).0, "{ok}");
    }
    // The seed targets keep their 4.2.
    assert!(findings(&case(&base())).0);
}

#[test]
fn debian12_repository_needs_a_key_or_an_explicit_unauthenticated() {
    let keyless = edit(
        &base_debian12(),
        "    key: https://download.cloudstack.org/release.asc\n",
        "",
    );
    let c = case(&keyless);
    expect_error(
        &c,
        at(&keyless, "cloudstack:", "cloudstack"),
        "defaults.cloudstack.key",
        "`unauthenticated: true`",
    );
    let t = edit(
        &keyless,
        "    management_server:",
        "    unauthenticated: true\n    management_server:",
    );
    let inv = inventory::load(&case(&t).path).unwrap().inventory;
    assert_eq!(
        inv.hosts[0].cloudstack.apt.as_ref().unwrap().trust,
        inventory::AptTrust::Unauthenticated
    );
    let t = edit(
        &keyless,
        "    management_server:",
        "    unauthenticated: yes please\n    management_server:",
    );
    let c = case(&t);
    expect_error(
        &c,
        at(&t, "unauthenticated:", "yes"),
        "defaults.cloudstack.unauthenticated",
        "expected true or false",
    );
    let t = edit(
        &base_debian12(),
        "    management_server:",
        "    unauthenticated: true\n    management_server:",
    );
    let c = case(&t);
    expect_error(
        &c,
        at(&t, "key:", "https"),
        "defaults.cloudstack.key",
        "contradict",
    );
    // A key pasted inline: armoured, printable, complete.
    let inline = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n      mQINBFxyz\n      =abcd\n      -----END PGP PUBLIC KEY BLOCK-----";
    let t = edit(
        &base_debian12(),
        "key: https://download.cloudstack.org/release.asc",
        &format!("key: |\n      {inline}"),
    );
    let inv = inventory::load(&case(&t).path).unwrap().inventory;
    assert!(matches!(
        &inv.hosts[0].cloudstack.apt.as_ref().unwrap().trust,
        inventory::AptTrust::KeyInline(k) if k.starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBFxyz\n")
    ));
    let t = edit(
        &base_debian12(),
        "key: https://download.cloudstack.org/release.asc",
        "key: \"-----BEGIN PGP PUBLIC KEY BLOCK-----\\nmQINB\"",
    );
    let c = case(&t);
    expect_error(
        &c,
        at(&t, "key:", "\"-----"),
        "defaults.cloudstack.key",
        "does not end with",
    );
    let t = edit(
        &base_debian12(),
        "key: https://download.cloudstack.org/release.asc",
        "key: ftp://example.org/release.asc",
    );
    let c = case(&t);
    expect_error(
        &c,
        at(&t, "key:", "ftp"),
        "defaults.cloudstack.key",
        "signing key",
    );
}

#[test]
fn debian12_suite_is_checked_and_only_where_it_applies() {
    let t = edit(
        &base_debian12(),
        "    management_server:",
        "    suite: \"jammy main\"\n    management_server:",
    );
    let c = case(&t);
    expect_error(
        &c,
        at(&t, "suite:", "\"jammy"),
        "defaults.cloudstack.suite",
        "is not an apt suite",
    );
    let t = edit(
        &base(),
        "    management_server:",
        "    suite: jammy\n    management_server:",
    );
    let c = case(&t);
    expect_error(
        &c,
        at(&t, "suite:", "suite"),
        "defaults.cloudstack.suite",
        "is not a setting of `os: centos6`",
    );
}

#[test]
fn debian12_needs_a_mirror_and_refuses_extra_repositories() {
    let t = edit(
        &base_debian12(),
        "    source: http://deb.debian.org/debian\n",
        "",
    );
    let c = case(&t);
    expect_error(
        &c,
        at(&t, "install:", "install"),
        "defaults.install.source",
        "netinst CD holds the base system only",
    );
    let t = edit(
        &base_debian12(),
        "source: http://deb.debian.org/debian",
        "source: cdrom",
    );
    let c = case(&t);
    expect_error(
        &c,
        at(&t, "source:", "cdrom"),
        "defaults.install.source",
        "e.g. `source: http://deb.debian.org/debian`",
    );
    let t = edit(
        &base_debian12(),
        "    disk: sda\n",
        "    disk: sda\n    extra_repositories: [{ name: ovs, url: http://repo.example.org/ }]\n",
    );
    let c = case(&t);
    expect_error(
        &c,
        at(&t, "extra_repositories:", "["),
        "defaults.install.extra_repositories",
        "signing key",
    );
}

// ------------------------------------------------------------------- el9

/// `base()` as an EL9 cluster: from the DVD, CloudStack 4.20 from its `el/9` repository.
fn base_el9() -> String {
    let t = edit(&base(), "os: centos6", "os: el9");
    let t = edit(&t, "version: \"4.2\"", "version: \"4.20\"");
    edit(
        &t,
        "http://cloudstack.apt-get.eu/rhel/4.2/",
        "https://download.cloudstack.org/el/9/4.20/",
    )
}

#[test]
fn el9_example_resolves_with_selinux_permissive() {
    for example in ["lab-el9.yaml", "lab-el9-openvswitch.yaml"] {
        let inv = inventory::load(&root().join("profiles/examples").join(example))
            .unwrap()
            .inventory;
        assert_eq!(inv.os, inventory::Os::El9);
        for h in &inv.hosts {
            assert_eq!(h.security.selinux, Some(inventory::SelinuxMode::Permissive));
            assert_eq!(h.cloudstack.apt, None);
        }
    }
    let c = case(&base_el9());
    let (ok, diags) = findings(&c);
    assert!(ok && diags.is_empty(), "{diags:?}");
    let inv = inventory::load(&c.path).unwrap().inventory;
    assert_eq!(
        inv.hosts[0].security.selinux,
        Some(inventory::SelinuxMode::Permissive)
    );
}

#[test]
fn el9_refuses_cloudstack_older_than_4_18() {
    for old in ["4.17", "4.2", "4.17.2"] {
        let t = edit(&base_el9(), "\"4.20\"", &format!("\"{old}\""));
        expect_error(
            &case(&t),
            at(&t, "version: \"", "\""),
            "defaults.cloudstack.version",
            "`os: el9` needs 4.18 or later (EL9 packages and hosts from CloudStack 4.18 on, apache/cloudstack#6844): write e.g. `version: \"4.18\"`",
        );
    }
    for ok in ["4.18", "4.19.1", "4.22"] {
        let t = edit(&base_el9(), "\"4.20\"", &format!("\"{ok}\""));
        assert!(findings(&case(&t)).0, "{ok}");
    }
}

#[test]
fn el9_refuses_selinux_disabled() {
    let t = edit(
        &base_el9(),
        "  network:\n",
        "  security:\n    selinux: disabled\n  network:\n",
    );
    expect_error(
        &case(&t),
        at(&t, "selinux:", "disabled"),
        "defaults.security.selinux",
        "EL9 ignores `SELINUX=disabled` in /etc/selinux/config (only the `selinux=0` kernel argument disables SELinux, which hvseed does not set); use `permissive`",
    );
    let t = edit(&t, "selinux: disabled", "selinux: permissive");
    assert!(findings(&case(&t)).0);
}

#[test]
fn el9_refuses_kernel_args_anaconda_takes_or_swallows() {
    let t = edit(
        &base_el9(),
        "    disk: sda\n",
        "    disk: sda\n    kernel_args: [\"console=ttyS0,115200n8\", \"ks=cdrom:/ks.cfg\", \"inst.repo=http://x.example/\", lang=de_DE]\n",
    );
    let c = case(&t);
    expect_error(
        &c,
        at(&t, "kernel_args:", "\"ks="),
        "defaults.install.kernel_args[1]",
        "`ks` is an installer option EL9's anaconda no longer reads",
    );
    expect_error(
        &c,
        at(&t, "kernel_args:", "\"inst.repo"),
        "defaults.install.kernel_args[2]",
        "`inst.repo` is set by hvseed's boot entries",
    );
    expect_error(
        &c,
        at(&t, "kernel_args:", "lang="),
        "defaults.install.kernel_args[3]",
        "write `inst.lang=de_DE`",
    );
    assert_eq!(errors(&c).len(), 3, "{:?}", errors(&c));
    // The same arguments are fine for CentOS 6's loader.
    let t = edit(&t, "os: el9", "os: centos6");
    let t = edit(&t, "\"4.20\"", "\"4.2\"");
    assert!(findings(&case(&t)).0);
}

#[test]
fn el9_openvswitch_needs_the_versioned_package_and_its_repository() {
    let ovs = edit(
        &base_el9(),
        "  network:\n",
        "  network:\n    type: openvswitch\n",
    );
    let c = case(&ovs);
    expect_error(
        &c,
        at(&ovs, "type:", "openvswitch"),
        "defaults.network.type",
        "(no versioned `openvswitch` package and no extra repository): EL9's own repositories have no Open vSwitch",
    );
    let pkg = edit(
        &ovs,
        "    disk: sda\n",
        "    disk: sda\n    extra_packages: [openvswitch3.3]\n",
    );
    expect_error(
        &case(&pkg),
        at(&pkg, "type:", "openvswitch"),
        "defaults.network.type",
        "no `install.extra_repositories`",
    );
    let both = edit(
        &pkg,
        "    disk: sda\n",
        "    disk: sda\n    extra_repositories: [{ name: nfv, url: \"http://mirror.stream.centos.org/SIGs/9-stream/nfv/x86_64/openvswitch-2/\" }]\n",
    );
    let (ok, diags) = findings(&case(&both));
    assert!(ok && diags.is_empty(), "{diags:?}");
    // An unversioned name is not the extra repository's package.
    let plain = edit(&both, "[openvswitch3.3]", "[openvswitch]");
    expect_error(
        &case(&plain),
        at(&plain, "type:", "openvswitch"),
        "defaults.network.type",
        "no versioned `openvswitch` package in `install.extra_packages`",
    );
}
