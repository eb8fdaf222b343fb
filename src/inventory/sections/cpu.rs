//! `cpu`: the CPU model CloudStack offers guests.

use super::super::model::*;
use super::super::reader::{Checker, Map};
use super::super::rules;
use super::super::schema::*;

pub(in crate::inventory) fn resolve_cpu(c: &mut Checker, m: &Map, os: Option<Os>) -> Option<Cpu> {
    let s = c.section(m, "cpu", CPU_KEYS);
    let mode_node = s.get("mode");
    let mode = match mode_node {
        None => Some(CpuMode::HostModel),
        Some(v) => c.choice(
            v,
            "cpu.mode",
            &[
                ("custom", CpuMode::Custom),
                ("host-model", CpuMode::HostModel),
                ("host-passthrough", CpuMode::HostPassthrough),
            ],
        ),
    };
    let warning = os.and_then(|os| crate::target::of(os).inventory.cpu_mode_warning);
    if let (Some(v), Some(warning)) = (mode_node, warning) {
        c.warn(v, "cpu.mode", warning);
    }
    let model = match s.get("model") {
        None => None,
        Some(v) => c.checked(v, "cpu.model", rules::cpu_word).map(|m| (m, v)),
    };
    let mut ok = true;
    match (mode, &model) {
        (Some(CpuMode::Custom), None) if s.get("model").is_none() => {
            let at = mode_node.expect("custom mode was read from a node");
            c.error(
                at,
                "cpu.mode",
                "mode `custom` needs `cpu.model` (a libvirt CPU model such as `SandyBridge`)",
            );
            ok = false;
        }
        (Some(CpuMode::HostModel | CpuMode::HostPassthrough), Some((_, v))) => {
            c.error(
                v,
                "cpu.model",
                "a CPU model is only used with `mode: custom`; remove it or set `mode: custom`",
            );
            ok = false;
        }
        _ => {}
    }
    let features = match s.get("features") {
        None => Some(List::from([])),
        Some(v) => c.checked_list(v, "cpu.features", rules::cpu_word, rules::MAX_CPU_FEATURES),
    };
    if !ok {
        return None;
    }
    let mode = mode?;
    let model = match mode {
        CpuMode::Custom => Some(model?.0),
        _ => None,
    };
    Some(Cpu {
        mode,
        model,
        features: features?,
    })
}
