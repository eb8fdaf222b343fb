//! The network as NetworkManager keyfiles (`nm-settings-keyfile(5)`): one
//! `<id>.nmconnection` per connection profile in `/etc/NetworkManager/system-connections`,
//! root's with mode 0600 (NetworkManager ignores a keyfile others may read).
//!
//! Linux bridges follow the CloudStack guide's nmcli recipe: the trunk NIC without an
//! address, the management VLAN with it, and each bridge (`stp`, `forward-delay` 5 as
//! the guide's ifcfg files say) with its VLAN as a bridge port. Open vSwitch uses
//! NetworkManager's own profiles (`ovs-bridge`, `ovs-port`, `ovs-interface`; EL9 has no
//! `ifup-ovs`): the trunk bridge holds the NIC, and each of the management, public and
//! private bridges is a bridge of its own, joined to the trunk bridge by a pair of patch
//! ports whose trunk side is tagged with its VLAN — what the guide's fake bridges
//! (`ovs-vsctl add-br cloudbr0 cloudbr 200`) are, which NetworkManager cannot make.
//! Every bridge has its internal interface of the same name (the management one with the
//! address), so `ovs-vsctl br-exists` and the kernel both know it.

use crate::plan::{NetworkType, Plan};
use crate::topology::{mgmt_bridge, trunk_bridge};

/// Where NetworkManager keeps the administrator's profiles.
pub const CONNECTIONS_DIR: &str = "/etc/NetworkManager/system-connections";

/// The priority of hvseed's profiles: above the default 0 of any profile the installer
/// left for the same device, so NetworkManager's autoconnect prefers hvseed's.
pub const AUTOCONNECT_PRIORITY: &str = "10";

/// One key of a keyfile section.
pub type Key = (&'static str, String);

/// One connection profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyfile {
    /// `connection.id`, and the file's name.
    pub id: String,
    pub uuid: String,
    /// `[section]` → keys, in file order; `[connection]` first.
    pub sections: Vec<(&'static str, Vec<Key>)>,
    /// `nmcli connection up` activates this profile itself; the others come up as
    /// the controller or port of one that is (a bridge with its ports).
    pub activate: bool,
}

impl Keyfile {
    /// The value of `section.key`.
    pub fn get(&self, section: &str, key: &str) -> Option<&str> {
        self.sections
            .iter()
            .filter(|(s, _)| *s == section)
            .flat_map(|(_, keys)| keys)
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Where the keyfile of profile `id` is.
pub fn keyfile_path(id: &str) -> String {
    format!("{CONNECTIONS_DIR}/{id}.nmconnection")
}

/// A stable UUID for profile `id` of this host: the same plan always gives the same
/// file, so a second apply changes nothing. 128 bits of two FNV-1a hashes of the FQDN
/// and the id, with the version (8, vendor-specific, RFC 9562) and variant bits set.
pub fn profile_uuid(plan: &Plan, id: &str) -> String {
    let hash = |seed: u64| {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
        for b in format!("hvseed\0{}\0{id}", plan.fqdn).bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h
    };
    let (a, b) = (hash(0), hash(0x9e37_79b9_7f4a_7c15));
    let a = (a & !0xf000) | 0x8000;
    let b = (b & !(0xc000_u64 << 48)) | (0x8000_u64 << 48);
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xffff,
        b >> 48,
        b & 0xffff_ffff_ffff
    )
}

/// A keyfile string value (GLib's key-file escapes): backslash, line breaks, tabs and
/// a leading space escaped; in a list item also the `;` separator. Plan values are
/// validated names and addresses already; this keeps a file well-formed whatever it is
/// given.
fn escaped(value: &str, list_item: bool) -> String {
    let mut out = String::new();
    for (i, c) in value.chars().enumerate() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            ' ' if i == 0 => out.push_str("\\s"),
            ';' if list_item => out.push_str("\\;"),
            c => out.push(c),
        }
    }
    out
}

/// A keyfile list (`a;b;`).
fn list<S: AsRef<str>>(items: &[S]) -> String {
    items
        .iter()
        .map(|s| format!("{};", escaped(s.as_ref(), true)))
        .collect()
}

/// The first line of every keyfile hvseed writes: how `apply` tells its own keyfiles
/// from the installer's and the site's.
pub const MARKER: &str =
    "# Written by hvseed-firstboot for this CloudStack KVM host; `apply` rewrites it.\n";

/// The text of a keyfile.
pub fn keyfile_text(kf: &Keyfile) -> String {
    let mut out = format!(
        "{MARKER}\
         # The installer's profile of the same name, if any, is kept as\n\
         # {} (out of NetworkManager's sight).\n",
        crate::apply::backup_path(&keyfile_path(&kf.id))
    );
    for (section, keys) in &kf.sections {
        out.push_str(&format!("\n[{section}]\n"));
        for (k, v) in keys {
            out.push_str(&format!("{k}={v}\n"));
        }
    }
    out
}

/// Builds one profile: `[connection]` with id, uuid, type, interface name, the
/// priority, and the controller (by UUID) for a port.
struct Builder<'p> {
    plan: &'p Plan,
    files: Vec<Keyfile>,
}

impl<'p> Builder<'p> {
    fn uuid(&self, id: &str) -> String {
        profile_uuid(self.plan, id)
    }

    fn add(
        &mut self,
        id: &str,
        kind: &str,
        ifname: &str,
        controller: Option<(&str, &str)>,
        mut rest: Vec<(&'static str, Vec<Key>)>,
        activate: bool,
    ) {
        let uuid = self.uuid(id);
        let mut conn: Vec<Key> = vec![
            ("id", escaped(id, false)),
            ("uuid", uuid.clone()),
            ("type", kind.to_string()),
            ("interface-name", escaped(ifname, false)),
            ("autoconnect-priority", AUTOCONNECT_PRIORITY.to_string()),
        ];
        if let Some((master, port_type)) = controller {
            conn.push(("master", self.uuid(master)));
            conn.push(("slave-type", port_type.to_string()));
        }
        let mut sections = vec![("connection", conn)];
        sections.append(&mut rest);
        self.files.push(Keyfile {
            id: id.to_string(),
            uuid,
            sections,
            activate,
        });
    }

    fn has(&self, id: &str) -> bool {
        self.files.iter().any(|f| f.id == id)
    }
}

fn no_ip() -> Vec<(&'static str, Vec<Key>)> {
    vec![
        ("ipv4", vec![("method", "disabled".into())]),
        ("ipv6", vec![("method", "disabled".into())]),
    ]
}

/// The management address, gateway and DNS (`ipv4.method manual`).
fn mgmt_ip(plan: &Plan) -> Vec<(&'static str, Vec<Key>)> {
    let m = &plan.network.management;
    // `address1=IP/PREFIX,GATEWAY`: the form NetworkManager writes itself.
    let mut v4: Vec<Key> = vec![
        ("method", "manual".into()),
        ("address1", format!("{}/{},{}", m.ip, m.prefix, m.gateway)),
    ];
    if !plan.dns.servers.is_empty() {
        let servers: Vec<String> = plan.dns.servers.iter().map(|s| s.to_string()).collect();
        v4.push(("dns", list(&servers)));
    }
    if !plan.dns.search.is_empty() {
        v4.push(("dns-search", list(&plan.dns.search)));
    }
    vec![("ipv4", v4), ("ipv6", vec![("method", "disabled".into())])]
}

/// The keyfile of the installer's management VLAN profile: anaconda names a VLAN
/// profile `<parent>.<vlan>` (hvseed's el9 kickstart configures the install's network on
/// the management VLAN of the trunk NIC). The Linux-bridge profiles replace it in place;
/// with Open vSwitch the address moves to the management bridge, so this profile, which
/// autoconnects, must not stay where NetworkManager reads it.
pub fn installer_mgmt_path(plan: &Plan) -> String {
    let n = &plan.network;
    keyfile_path(&format!("{}.{}", n.trunk_nic, n.management.vlan))
}

/// The profiles of this plan, controllers before their ports.
pub fn keyfiles(plan: &Plan) -> Vec<Keyfile> {
    let n = &plan.network;
    let nic = n.trunk_nic.as_str();
    let mac = n.mac.to_ascii_uppercase();
    let mut b = Builder {
        plan,
        files: Vec::new(),
    };
    let ethernet = || ("ethernet", vec![("mac-address", mac.clone())]);
    match n.kind {
        NetworkType::LinuxBridge => {
            // The trunk: no address of its own, only its VLANs.
            let mut rest = vec![ethernet()];
            rest.extend(no_ip());
            b.add(nic, "ethernet", nic, None, rest, true);
            let vlan = |id: u16| {
                (
                    "vlan",
                    vec![("id", id.to_string()), ("parent", escaped(nic, false))],
                )
            };
            let mgmt = format!("{nic}.{}", n.management.vlan);
            let mut rest = vec![vlan(n.management.vlan)];
            rest.extend(mgmt_ip(plan));
            b.add(&mgmt, "vlan", &mgmt, None, rest, true);
            for vb in [&n.public, &n.private] {
                if b.has(&vb.bridge) {
                    continue;
                }
                let mut rest = vec![(
                    "bridge",
                    vec![("stp", "true".into()), ("forward-delay", "5".into())],
                )];
                rest.extend(no_ip());
                b.add(&vb.bridge, "bridge", &vb.bridge, None, rest, false);
            }
            for vb in [&n.public, &n.private] {
                let dev = format!("{nic}.{}", vb.vlan);
                if b.has(&dev) {
                    continue;
                }
                b.add(
                    &dev,
                    "vlan",
                    &dev,
                    Some((&vb.bridge, "bridge")),
                    vec![vlan(vb.vlan)],
                    true,
                );
            }
        }
        NetworkType::Openvswitch => {
            let trunk = trunk_bridge(plan);
            b.add(trunk, "ovs-bridge", trunk, None, vec![], false);
            let nic_port = format!("{trunk}-port-{nic}");
            b.add(
                &nic_port,
                "ovs-port",
                nic,
                Some((trunk, "ovs-bridge")),
                vec![],
                false,
            );
            b.add(
                nic,
                "ethernet",
                nic,
                Some((&nic_port, "ovs-port")),
                vec![
                    ethernet(),
                    ("ovs-interface", vec![("type", "system".into())]),
                ],
                true,
            );
            let mgmt = mgmt_bridge(plan);
            for (br, vlan) in [
                (mgmt, n.management.vlan),
                (n.public.bridge.as_str(), n.public.vlan),
                (n.private.bridge.as_str(), n.private.vlan),
            ] {
                if b.has(br) {
                    continue;
                }
                let ip = if br == mgmt { mgmt_ip(plan) } else { no_ip() };
                b.add(br, "ovs-bridge", br, None, vec![], false);
                // The bridge's internal interface, the one the kernel sees.
                let port = format!("{br}-port");
                b.add(
                    &port,
                    "ovs-port",
                    br,
                    Some((br, "ovs-bridge")),
                    vec![],
                    false,
                );
                let mut rest = vec![("ovs-interface", vec![("type", "internal".into())])];
                rest.extend(ip);
                b.add(
                    &format!("{br}-if"),
                    "ovs-interface",
                    br,
                    Some((&port, "ovs-port")),
                    rest,
                    true,
                );
                // The patch pair: untagged on the bridge, VLAN `vlan` on the trunk.
                let (up, down) = (format!("patch{vlan}-trunk"), format!("patch{vlan}-br"));
                for (side_br, side_if, peer, tag) in [
                    (br, down.as_str(), up.as_str(), None),
                    (trunk, up.as_str(), down.as_str(), Some(vlan)),
                ] {
                    let port = format!("{side_br}-port-{side_if}");
                    let tag = tag.map_or_else(Vec::new, |t| {
                        vec![("ovs-port", vec![("tag", t.to_string())])]
                    });
                    b.add(
                        &port,
                        "ovs-port",
                        side_if,
                        Some((side_br, "ovs-bridge")),
                        tag,
                        false,
                    );
                    let mut rest = vec![
                        ("ovs-interface", vec![("type", "patch".into())]),
                        ("ovs-patch", vec![("peer", peer.to_string())]),
                    ];
                    rest.extend(no_ip());
                    b.add(
                        &format!("{side_br}-{side_if}"),
                        "ovs-interface",
                        side_if,
                        Some((&port, "ovs-port")),
                        rest,
                        true,
                    );
                }
            }
        }
    }
    b.files
}

/// Keyfiles hvseed writes for the other network type that this plan does not use:
/// left over, NetworkManager would bring up a second copy of the management address.
pub fn stale_paths(plan: &Plan) -> Vec<String> {
    let wanted: Vec<String> = keyfiles(plan).iter().map(|k| keyfile_path(&k.id)).collect();
    let mut other = plan.clone();
    other.network.kind = match plan.network.kind {
        NetworkType::LinuxBridge => NetworkType::Openvswitch,
        NetworkType::Openvswitch => NetworkType::LinuxBridge,
    };
    let mut v: Vec<String> = keyfiles(&other)
        .iter()
        .map(|k| keyfile_path(&k.id))
        .filter(|p| !wanted.contains(p))
        .collect();
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::test_plan;

    #[test]
    fn uuids_are_stable_well_formed_and_distinct() {
        let p = test_plan();
        let u = profile_uuid(&p, "cloudbr0");
        assert_eq!(u, profile_uuid(&p, "cloudbr0"));
        assert_ne!(u, profile_uuid(&p, "cloudbr1"));
        let groups: Vec<usize> = u.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12], "{u}");
        assert!(u.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
        assert_eq!(&u[14..15], "8", "version: {u}");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"), "variant: {u}");
    }

    #[test]
    fn controllers_come_before_their_ports_and_ids_are_unique() {
        for kind in [NetworkType::LinuxBridge, NetworkType::Openvswitch] {
            let mut p = test_plan();
            p.network.kind = kind;
            let files = keyfiles(&p);
            let mut ids: Vec<&str> = files.iter().map(|k| k.id.as_str()).collect();
            for (i, k) in files.iter().enumerate() {
                if let Some(m) = k.get("connection", "master") {
                    let at = files.iter().position(|c| c.uuid == m).expect("controller");
                    assert!(at < i, "{} before its controller", k.id);
                }
            }
            ids.sort();
            ids.dedup();
            assert_eq!(ids.len(), files.len());
            assert!(stale_paths(&p)
                .iter()
                .all(|s| !files.iter().any(|k| &keyfile_path(&k.id) == s)));
        }
    }

    #[test]
    fn a_value_cannot_break_out_of_its_line() {
        assert_eq!(escaped("a\nb=c", false), "a\\nb=c");
        assert_eq!(list(&["x;y", " z"]), "x\\;y;\\sz;");
    }
}
