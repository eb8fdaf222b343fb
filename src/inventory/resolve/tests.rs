use super::*;
use crate::inventory::diagnostics::MAX_DIAGNOSTICS;
use crate::inventory::yaml::parse;

/// Shared with `tests/inventory_bounds.rs`: the generated fleets' hosts.
#[path = "../../../tests/fleet_hosts.rs"]
mod fleet_hosts;

fn node(text: &str, origin: Origin) -> Node {
    let mut n = parse(text).unwrap();
    n.set_origin(origin);
    n
}

#[test]
fn merge_is_deep_and_keeps_the_winner_position() {
    let d = node(
        "install:\n  disk: sda\n  locale: en_US.UTF-8\nntp_servers: [a.org, b.org]\n",
        Origin::Defaults,
    );
    let h = node(
        "fqdn: x.y.z\ninstall: { disk: sdb }\nntp_servers: [c.org]\n",
        Origin::Host(1),
    );
    let mut c = Checker::new(Path::new("t.yaml"));
    c.host = 1;
    let m = c.merged(&h, Some(&d), "", &["fqdn", "install", "ntp_servers"]);
    let install = c.section(&m, "install", INSTALL_KEYS);
    let disk = install.get("disk").unwrap();
    assert_eq!(disk.scalar_text().as_deref(), Some("sdb"));
    assert_eq!(
        (disk.line, disk.column, disk.origin),
        (
            2,
            "install: { disk: sdb }".find("sdb").unwrap() + 1,
            Origin::Host(1)
        )
    );
    let locale = install.get("locale").unwrap();
    assert_eq!((locale.line, locale.origin), (3, Origin::Defaults));
    // Lists are replaced, not concatenated.
    let Value::Seq(ntp) = &m.get("ntp_servers").unwrap().value else {
        panic!()
    };
    assert_eq!(ntp.len(), 1);
    assert_eq!(ntp[0].origin, Origin::Host(1));
    assert!(m.get("fqdn").unwrap().origin == Origin::Host(1));
    assert!(c.diags.is_empty(), "{:?}", c.diags);
}

/// An inventory of `n` hosts (192.168.0.0/16) with `defaults` (YAML lines under
/// `defaults:`) and host `i`'s extra lines from `extra(i)`.
fn fleet(n: usize, defaults: &str, extra: impl Fn(usize) -> String) -> String {
    let mut t = format!("version: 1\ncluster: big\ndefaults:\n{defaults}hosts:\n");
    for i in 0..n {
        t.push_str(&fleet_hosts::host_item(i, "192.168"));
        t.push_str(&extra(i));
    }
    t
}

const DEFAULTS: &str = "  os: ubuntu1204
  install:
    source: cdrom
    locale: en_US.UTF-8
    keyboard: us
    timezone: Etc/UTC
    root_password_hash: \"$6$salt$t1.kB9z7B8HKic33ra63fhRD9HftPru4/eGjbd2w882XHzsjLP9FI2Gir7yyCr6VcJISEaAu3gFSDunaEoAuu0\"
    disk: sda
  dns: { servers: [192.168.0.1] }
  cloudstack: { version: \"4.2\", repository: \"http://cloudstack.apt-get.eu/ubuntu\", management_server: 192.168.0.5 }
  network:
    trunk_nic: eth0
    management: { vlan: 100, prefix: 16, gateway: 192.168.0.1 }
    public: { vlan: 200 }
    private: { vlan: 300 }
";

fn run(text: &str) -> (Option<Inventory>, Vec<Diagnostic>) {
    resolve(Path::new("big.yaml"), parse(text).unwrap())
}

#[test]
fn large_inventories_resolve_in_parts_with_the_same_results() {
    // Hosts that set a section get their own value, the others the defaults'.
    let text = fleet(1200, DEFAULTS, |i| {
        if i % 7 == 3 {
            "    install: { disk: sdb }\n".into()
        } else {
            String::new()
        }
    });
    let (inv, diags) = run(&text);
    assert!(diags.is_empty(), "{diags:?}");
    let inv = inv.unwrap();
    assert_eq!(inv.hosts.len(), 1200);
    for (i, h) in inv.hosts.iter().enumerate() {
        assert_eq!(h.fqdn, format!("kvm{i}.example.org"));
        assert_eq!(&*h.install.disk, if i % 7 == 3 { "sdb" } else { "sda" });
        assert_eq!(&*h.install.locale, "en_US.UTF-8");
        assert_eq!(h.network.management.vlan, 100);
    }

    // A mistake in the defaults is reported once, at the defaults, however many
    // hosts (and parts) read it; so is a warning.
    let bad = DEFAULTS
        .replace(
            "    trunk_nic: eth0\n",
            "    type: openvswitch\n    trunk_nic: eth0\n",
        )
        .replace("timezone: Etc/UTC", "timezone: Not/AZone!");
    let (inv, diags) = run(&fleet(1200, &bad, |_| String::new()));
    assert!(inv.is_none());
    let tz: Vec<_> = diags
        .iter()
        .filter(|d| d.key == "defaults.install.timezone")
        .collect();
    assert_eq!(tz.len(), 1, "{diags:?}");
    let ovs: Vec<_> = diags
        .iter()
        .filter(|d| d.key == "defaults.network.type")
        .collect();
    assert_eq!(
        (ovs.len(), ovs[0].severity),
        (1, Severity::Warning),
        "{diags:?}"
    );
    assert_eq!(diags.len(), 2, "{diags:?}");
}

#[test]
fn a_key_missing_from_the_defaults_is_reported_per_host_across_parts() {
    // No gateway in the defaults; host 3 sets its own. Every other host is missing
    // it: one finding each, the first MAX_DIAGNOSTICS shown, the rest counted.
    let defaults = DEFAULTS.replace(", gateway: 192.168.0.1 }", " }");
    let text = fleet(700, &defaults, |i| {
        if i == 3 {
            "    network: { management: { gateway: 192.168.0.1 } }\n".into()
        } else {
            String::new()
        }
    });
    let (inv, diags) = run(&text);
    assert!(inv.is_none());
    let missing: Vec<_> = diags
        .iter()
        .filter(|d| d.key.ends_with("].network.management.gateway"))
        .collect();
    assert_eq!(missing.len(), MAX_DIAGNOSTICS, "{:?}", &diags[..3]);
    assert_eq!(missing[0].key, "hosts[0].network.management.gateway");
    assert_eq!(missing[3].key, "hosts[4].network.management.gateway");
    assert!(missing.iter().all(|d| d
        .message
        .starts_with("missing: neither defaults nor this host")));
    let last = diags.last().unwrap();
    assert_eq!(
        last.message,
        "199 more problem(s) not shown; fix the ones above first (is this the right file?)"
    );
    assert_eq!(diags.len(), MAX_DIAGNOSTICS + 1);
}

#[test]
fn a_network_mistake_does_not_hide_the_subnet_checks() {
    // Host 1's public VLAN clashes with management's, and its address is outside
    // the management subnet: both are reported.
    let text = fleet(2, DEFAULTS, |i| {
        if i == 1 {
            "    network: { public: { vlan: 100 } }\n".into()
        } else {
            String::new()
        }
    })
    .replace("ip: 192.168.1.11", "ip: 10.0.0.5");
    let (inv, diags) = run(&text);
    assert!(inv.is_none());
    let keys: Vec<&str> = diags.iter().map(|d| d.key.as_str()).collect();
    assert!(keys.contains(&"hosts[1].network.public.vlan"), "{diags:?}");
    let ip = diags
        .iter()
        .find(|d| d.key == "hosts[1].ip")
        .expect("the ip finding");
    assert!(
        ip.message.contains("outside the management subnet"),
        "{diags:?}"
    );
}

#[test]
fn suggestions() {
    assert_eq!(suggest("trunk_nick", NETWORK_KEYS), Some("trunk_nic"));
    assert_eq!(suggest("dsik", INSTALL_KEYS), Some("disk"));
    assert_eq!(suggest("zzzzzz", INSTALL_KEYS), None);
}
