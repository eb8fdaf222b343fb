//! `network`: the trunk NIC, the bridge type, and the management, public and private
//! VLANs with their bridges.

use super::super::cross_host::{HostLocs, Subnet};
use super::super::diagnostics::{Loc, Severity};
use super::super::model::*;
use super::super::reader::{Checker, Map};
use super::super::rules;
use super::super::schema::*;
use super::super::yaml::Node;

/// A bridge only Open vSwitch has (`rel`; `v` where it is set): set on linux-bridge it
/// is refused with `refusal`; set otherwise it is checked; unset it is `default` on
/// openvswitch and nothing on linux-bridge. It carries the place it was set (`None` for
/// a default); `None` after an error.
fn ovs_bridge(
    c: &mut Checker,
    v: Option<&Node>,
    kind: Option<NetworkType>,
    rel: &str,
    default: &str,
    refusal: &str,
) -> Option<Option<(Text, Option<Loc>)>> {
    match (v, kind) {
        (Some(v), Some(NetworkType::LinuxBridge)) => {
            c.error(v, rel, refusal);
            None
        }
        (Some(v), _) => c
            .checked(v, rel, rules::interface)
            .map(|b| Some((b, Some(Loc::of(v, rel))))),
        (None, _) => Some((kind == Some(NetworkType::Openvswitch)).then(|| (default.into(), None))),
    }
}

pub(in crate::inventory) fn resolve_network(
    c: &mut Checker,
    m: &Map,
    os: Option<Os>,
    locs: &mut HostLocs,
) -> Option<Network> {
    let s = c.section(m, "network", NETWORK_KEYS);
    let kind = match s.get("type") {
        None => Some(NetworkType::LinuxBridge),
        Some(v) => {
            let k = c.choice(
                v,
                "network.type",
                &[
                    ("linux-bridge", NetworkType::LinuxBridge),
                    ("openvswitch", NetworkType::Openvswitch),
                ],
            );
            let warning = os.and_then(|os| crate::target::of(os).inventory.openvswitch_warning);
            if let (Some(NetworkType::Openvswitch), Some(w)) = (k, warning) {
                c.warn(v, "network.type", w);
            }
            k
        }
    };
    let mut ok = true;
    let trunk_nic = c.required(&s, "trunk_nic").and_then(|v| {
        let nic = c.checked(v, "network.trunk_nic", rules::interface)?;
        Some((nic, v))
    });
    let trunk_bridge = ovs_bridge(
        c,
        s.get("trunk_bridge"),
        kind,
        "network.trunk_bridge",
        "cloudbr",
        "only used with `type: openvswitch`; remove it (linux-bridge puts each VLAN on its own bridge)",
    );

    let ms = c.section(&s, "management", MANAGEMENT_KEYS);
    let mvlan = c.required(&ms, "vlan").and_then(|v| {
        let id = c.uint(v, "network.management.vlan", 1, 4094, "VLAN id")? as u16;
        Some((id, Loc::of(v, "network.management.vlan")))
    });
    let prefix = c.required(&ms, "prefix").and_then(|v| {
        let p = c.uint(v, "network.management.prefix", 1, 30, "prefix length")? as u8;
        Some(p)
    });
    let gateway = c.required(&ms, "gateway").and_then(|v| {
        let g = c.ipv4(v, "network.management.gateway")?;
        Some((g, Loc::of(v, "network.management.gateway")))
    });
    if let (Some(p), Some((g, gl))) = (prefix, &gateway) {
        locs.subnet = Some(Subnet {
            gateway: *g,
            prefix: p,
            at: gl.clone(),
        });
    }
    let mbridge = ovs_bridge(
        c,
        ms.get("bridge"),
        kind,
        "network.management.bridge",
        "mgmt0",
        "only used with `type: openvswitch` (the fake bridge for management); remove it for linux-bridge",
    );

    let vlan_bridge = |c: &mut Checker, name: &str, default_bridge: &str| {
        let vs = c.section(&s, name, VLAN_BRIDGE_KEYS);
        let rel = format!("network.{name}");
        let vlan = c.required(&vs, "vlan").and_then(|v| {
            let id = c.uint(v, &format!("{rel}.vlan"), 1, 4094, "VLAN id")? as u16;
            Some((id, Loc::of(v, &format!("{rel}.vlan"))))
        });
        let bridge = match vs.get("bridge") {
            None => Some((Text::from(default_bridge), None)),
            Some(v) => c
                .checked(v, &format!("{rel}.bridge"), rules::interface)
                .map(|b| (b, Some(Loc::of(v, &format!("{rel}.bridge"))))),
        };
        (vlan, bridge)
    };
    let (pvlan, pbridge) = vlan_bridge(c, "public", "cloudbr0");
    let (qvlan, qbridge) = vlan_bridge(c, "private", "cloudbr1");

    // VLAN ids distinct.
    let vlans: Vec<(&str, &(u16, Loc))> = [
        ("management", &mvlan),
        ("public", &pvlan),
        ("private", &qvlan),
    ]
    .into_iter()
    .filter_map(|(n, v)| v.as_ref().map(|v| (n, v)))
    .collect();
    for (i, (_, (id, at))) in vlans.iter().enumerate() {
        if let Some((first, _)) = vlans[..i].iter().find(|(_, (other, _))| other == id) {
            c.error_at(at, format!("VLAN {id} is already the {first} VLAN; management, public and private need distinct VLANs"));
            ok = false;
        }
    }
    // Bridge names distinct (and distinct from the trunk NIC).
    let mut bridges: Vec<(Text, String, Option<Loc>)> = Vec::new();
    if let Some(Some((b, at))) = &trunk_bridge {
        bridges.push((b.clone(), "network.trunk_bridge".into(), at.clone()));
    }
    if let Some(Some((b, at))) = &mbridge {
        bridges.push((b.clone(), "network.management.bridge".into(), at.clone()));
    }
    if let Some((b, at)) = &pbridge {
        bridges.push((b.clone(), "network.public.bridge".into(), at.clone()));
    }
    if let Some((b, at)) = &qbridge {
        bridges.push((b.clone(), "network.private.bridge".into(), at.clone()));
    }
    for i in 0..bridges.len() {
        let (b, rel, at) = &bridges[i];
        let clash = bridges[..i]
            .iter()
            .find(|(o, _, _)| o == b)
            .map(|(_, r, _)| r.clone())
            .or_else(|| {
                trunk_nic
                    .as_ref()
                    .filter(|(nic, _)| nic == b)
                    .map(|_| "network.trunk_nic".to_string())
            });
        if let Some(other) = clash {
            let msg = format!(
                "bridge name `{b}` is also used by {other}; every bridge needs its own name"
            );
            match at {
                Some(at) => c.error_at(at, msg),
                None => {
                    let at = s.key_node("type").or_else(|| m.key_node("network"));
                    match at {
                        Some(n) => c.error(
                            n,
                            rel,
                            format!("{msg} (this is the default; set it explicitly)"),
                        ),
                        None => c.push_at(Severity::Error, 0, 0, rel.clone(), msg),
                    }
                }
            }
            ok = false;
        }
    }
    // Linux bridge: `<nic>.<vlan>` must itself be a valid interface name.
    if kind == Some(NetworkType::LinuxBridge) {
        if let Some((nic, v)) = &trunk_nic {
            let max_vlan = vlans.iter().map(|(_, (id, _))| *id).max().unwrap_or(1);
            let sub = format!("{nic}.{max_vlan}");
            if !hvseed_plan::names::is_interface_name(&sub) {
                c.error(v, "network.trunk_nic", format!("`{sub}` (the VLAN interface) would be longer than 15 characters; Linux cannot name it"));
                ok = false;
            }
        }
    }
    if !ok {
        return None;
    }
    Some(Network {
        kind: kind?,
        trunk_nic: trunk_nic?.0,
        trunk_bridge: trunk_bridge?.map(|t| t.0),
        management: Management {
            vlan: mvlan?.0,
            prefix: prefix?,
            gateway: gateway?.0,
            bridge: mbridge?.map(|t| t.0),
        },
        public: VlanBridge {
            vlan: pvlan?.0,
            bridge: pbridge?.0,
        },
        private: VlanBridge {
            vlan: qvlan?.0,
            bridge: qbridge?.0,
        },
    })
}
