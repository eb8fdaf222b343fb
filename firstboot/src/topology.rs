//! The network names a plan implies on the host, whatever writes them: the Open
//! vSwitch bridges' default names, the interface that carries the management address
//! and the bridges CloudStack uses.

use crate::plan::{NetworkType, Plan};

/// Where the stock trunk bridge / management fake bridge names default to (Open vSwitch).
pub fn trunk_bridge(plan: &Plan) -> &str {
    plan.network.trunk_bridge.as_deref().unwrap_or("cloudbr")
}

pub fn mgmt_bridge(plan: &Plan) -> &str {
    plan.network.management.bridge.as_deref().unwrap_or("mgmt0")
}

/// The interface that carries the management address.
pub fn mgmt_interface(plan: &Plan) -> String {
    let n = &plan.network;
    match n.kind {
        NetworkType::LinuxBridge => format!("{}.{}", n.trunk_nic, n.management.vlan),
        NetworkType::Openvswitch => mgmt_bridge(plan).to_string(),
    }
}

/// The bridges CloudStack (and the management address, with OVS) use.
pub fn bridges(plan: &Plan) -> Vec<String> {
    let n = &plan.network;
    let mut v = Vec::new();
    if n.kind == NetworkType::Openvswitch {
        v.push(trunk_bridge(plan).to_string());
        v.push(mgmt_bridge(plan).to_string());
    }
    v.push(n.public.bridge.clone());
    if n.private.bridge != n.public.bridge {
        v.push(n.private.bridge.clone());
    }
    v
}
