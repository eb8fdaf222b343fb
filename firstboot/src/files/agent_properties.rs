//! The CloudStack agent's `/etc/cloudstack/agent/agent.properties`.

use crate::edit::{Lines, Style};
use crate::plan::{CpuMode, NetworkType, Plan};

pub const OVS_VIF_DRIVER: &str = "com.cloud.hypervisor.kvm.resource.OvsVifDriver";
pub const BRIDGE_VIF_DRIVER: &str = "com.cloud.hypervisor.kvm.resource.BridgeVifDriver";

/// `/etc/cloudstack/agent/agent.properties` (policy 9).
pub fn agent_properties(old: &str, plan: &Plan) -> String {
    let n = &plan.network;
    let mut l = Lines::parse(old);
    let t = Style::Tight;
    l.set(t, "host", &plan.cloudstack.management_server);
    l.set(t, "port", &plan.cloudstack.port.to_string());
    l.set(t, "public.network.device", &n.public.bridge);
    l.set(t, "private.network.device", &n.private.bridge);
    l.set(t, "guest.network.device", &n.private.bridge);
    l.set(t, "guest.cpu.mode", plan.cpu.mode.as_str());
    match (&plan.cpu.mode, &plan.cpu.model) {
        (CpuMode::Custom, Some(model)) => l.set(t, "guest.cpu.model", model),
        _ => l.remove("guest.cpu.model"),
    }
    if plan.cpu.features.is_empty() {
        l.remove("guest.cpu.features");
    } else {
        l.set(t, "guest.cpu.features", &plan.cpu.features.join(" "));
    }
    match n.kind {
        NetworkType::Openvswitch => {
            l.set(t, "network.bridge.type", "openvswitch");
            l.set(t, "libvirt.vif.driver", OVS_VIF_DRIVER);
        }
        NetworkType::LinuxBridge => {
            if l.get("network.bridge.type").is_some() {
                l.set(t, "network.bridge.type", "native");
            }
            if l.get("libvirt.vif.driver") == Some(OVS_VIF_DRIVER) {
                l.set(t, "libvirt.vif.driver", BRIDGE_VIF_DRIVER);
            }
        }
    }
    l.text()
}
